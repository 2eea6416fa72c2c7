/*
 * test_digest.c - digest parsing, formatting and hashing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "digest.h"
#include "err.h"

/* sha256("") and sha256("abc") (FIPS 180-2 test vectors) */
#define EMPTY_HEX "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define ABC_HEX   "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"

static int parse(const char *s)
{
    struct pt_digest d;
    return pt_digest_parse(s, strlen(s), &d);
}

static void test_parse_valid(void **state)
{
    struct pt_digest d;
    const char *s = "sha256:" EMPTY_HEX;

    (void)state;
    memset(&d, 'x', sizeof(d));
    assert_int_equal(pt_digest_parse(s, strlen(s), &d), 0);
    assert_string_equal(d.hex, EMPTY_HEX);
    assert_int_equal(strlen(d.hex), PT_DIGEST_HEX_LEN);
    assert_int_equal(strlen(s), PT_DIGEST_STR_LEN);
}

static void test_parse_length_delimited(void **state)
{
    /* Only s[0..len) is looked at: trailing bytes beyond len are ignored. */
    char buf[PT_DIGEST_STR_LEN + 8];
    struct pt_digest d;

    (void)state;
    memcpy(buf, "sha256:" ABC_HEX "&junk", PT_DIGEST_STR_LEN + 6);
    assert_int_equal(pt_digest_parse(buf, PT_DIGEST_STR_LEN, &d), 0);
    assert_string_equal(d.hex, ABC_HEX);
    /* but a length one too long sees the '&' */
    assert_int_equal(pt_digest_parse(buf, PT_DIGEST_STR_LEN + 1, &d), PT_E_DIGEST_INVALID);
    /* and one too short is 63 hex */
    assert_int_equal(pt_digest_parse(buf, PT_DIGEST_STR_LEN - 1, &d), PT_E_DIGEST_INVALID);
}

static void test_parse_invalid_leaves_output(void **state)
{
    struct pt_digest d;

    (void)state;
    memcpy(d.hex, ABC_HEX, sizeof(d.hex));
    assert_int_equal(pt_digest_parse("sha256:zz", 9, &d), PT_E_DIGEST_INVALID);
    assert_string_equal(d.hex, ABC_HEX);
}

static void test_parse_wrong_length(void **state)
{
    char buf[300];

    (void)state;
    /* 63 hex */
    snprintf(buf, sizeof(buf), "sha256:%.63s", EMPTY_HEX);
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    /* 65 hex */
    snprintf(buf, sizeof(buf), "sha256:%s0", EMPTY_HEX);
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    /* 128 hex, as sha512 would have, under sha256 */
    snprintf(buf, sizeof(buf), "sha256:%s%s", EMPTY_HEX, EMPTY_HEX);
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha256:"), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha256:a"), PT_E_DIGEST_INVALID);
}

static void test_parse_uppercase_hex(void **state)
{
    char buf[100];

    (void)state;
    snprintf(buf, sizeof(buf), "sha256:%s", EMPTY_HEX);
    buf[7] = 'E';
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    snprintf(buf, sizeof(buf), "sha256:%s", EMPTY_HEX);
    buf[PT_DIGEST_STR_LEN - 1] = 'F'; /* last char 5 -> F */
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    /* uppercase algorithm */
    assert_int_equal(parse("SHA256:" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("Sha256:" EMPTY_HEX), PT_E_DIGEST_INVALID);
}

static void test_parse_non_hex(void **state)
{
    char buf[100];

    (void)state;
    /* grammatical encoded chars that are not hex */
    snprintf(buf, sizeof(buf), "sha256:%s", EMPTY_HEX);
    buf[10] = 'g';
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    buf[10] = '=';
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    buf[10] = '_';
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    buf[10] = '-';
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    /* non-grammatical */
    buf[10] = '/';
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    buf[10] = ' ';
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    buf[10] = '%';
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    buf[10] = (char)0xc3;
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
}

static void test_parse_embedded_nul(void **state)
{
    char buf[PT_DIGEST_STR_LEN];
    struct pt_digest d;

    (void)state;
    memcpy(buf, "sha256:" EMPTY_HEX, PT_DIGEST_STR_LEN);
    buf[20] = '\0';
    assert_int_equal(pt_digest_parse(buf, PT_DIGEST_STR_LEN, &d), PT_E_DIGEST_INVALID);
}

static void test_parse_other_algorithms(void **state)
{
    char buf[300];

    (void)state;
    snprintf(buf, sizeof(buf), "sha512:%s%s", EMPTY_HEX, EMPTY_HEX);
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha512:" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha384:" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("md5:d41d8cd98f00b204e9800998ecf8427e"), PT_E_DIGEST_INVALID);
    /* grammatical multi-component algorithms are still not sha256 */
    assert_int_equal(parse("sha256+b64u:LCa0a2j_xo_5m0U8HTBBNBNCLXBkg7-g-YpeiGJm564"),
                     PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha256.x:" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("xsha256:" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha25:" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha2566:" EMPTY_HEX), PT_E_DIGEST_INVALID);
}

static void test_parse_bad_grammar(void **state)
{
    (void)state;
    assert_int_equal(parse(""), PT_E_DIGEST_INVALID);
    assert_int_equal(parse(":"), PT_E_DIGEST_INVALID);
    assert_int_equal(parse(":" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse(EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha256"), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha256::" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha256 :" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse(" sha256:" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha256: " EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha256:" EMPTY_HEX " "), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha256:" EMPTY_HEX "\n"), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("+sha256:" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha256+:" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha..256:" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha256:" EMPTY_HEX ":"), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha256%3A" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("../../etc/passwd"), PT_E_DIGEST_INVALID);
}

static void test_parse_too_long(void **state)
{
    char buf[400];
    struct pt_digest d;

    (void)state;
    memset(buf, 'a', sizeof(buf));
    memcpy(buf, "sha256:", 7);
    assert_int_equal(pt_digest_parse(buf, 255, &d), PT_E_DIGEST_INVALID);
    assert_int_equal(pt_digest_parse(buf, 256, &d), PT_E_DIGEST_INVALID);
    assert_int_equal(pt_digest_parse(buf, sizeof(buf), &d), PT_E_DIGEST_INVALID);
    assert_int_equal(pt_digest_parse(NULL, 0, &d), PT_E_DIGEST_INVALID);
}

static void test_format_roundtrip(void **state)
{
    struct pt_digest d, d2;
    char out[PT_DIGEST_STR_LEN + 1];

    (void)state;
    assert_int_equal(pt_digest_parse("sha256:" ABC_HEX, PT_DIGEST_STR_LEN, &d), 0);
    memset(out, 'x', sizeof(out));
    pt_digest_format(&d, out);
    assert_string_equal(out, "sha256:" ABC_HEX);
    assert_int_equal(out[PT_DIGEST_STR_LEN], '\0');
    assert_int_equal(pt_digest_parse(out, strlen(out), &d2), 0);
    assert_true(pt_digest_equal(&d, &d2));
}

static void test_of_vectors(void **state)
{
    struct pt_digest d;
    static const char million_a_hex[] =
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";
    char *big;

    (void)state;
    pt_digest_of("", 0, &d);
    assert_string_equal(d.hex, EMPTY_HEX);
    pt_digest_of(NULL, 0, &d);
    assert_string_equal(d.hex, EMPTY_HEX);
    pt_digest_of("abc", 3, &d);
    assert_string_equal(d.hex, ABC_HEX);
    pt_digest_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq", 56, &d);
    assert_string_equal(d.hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    big = malloc(1000000);
    assert_non_null(big);
    memset(big, 'a', 1000000);
    pt_digest_of(big, 1000000, &d);
    assert_string_equal(d.hex, million_a_hex);
    free(big);
}

static void test_from_raw(void **state)
{
    unsigned char raw[PT_DIGEST_RAW_LEN];
    struct pt_digest d;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(raw); i++)
        raw[i] = (unsigned char)(i * 8 + 7);
    pt_digest_from_raw(raw, &d);
    assert_string_equal(d.hex, "070f171f272f373f474f575f676f777f878f979fa7afb7bfc7cfd7dfe7eff7ff");
    memset(raw, 0, sizeof(raw));
    pt_digest_from_raw(raw, &d);
    assert_string_equal(d.hex, "0000000000000000000000000000000000000000000000000000000000000000");
    /* and what from_raw produces always parses back */
    assert_int_equal(pt_digest_parse("sha256:" EMPTY_HEX, PT_DIGEST_STR_LEN, &d), 0);
}

static void test_equal(void **state)
{
    struct pt_digest a, b;

    (void)state;
    pt_digest_of("abc", 3, &a);
    pt_digest_of("abc", 3, &b);
    assert_true(pt_digest_equal(&a, &b));
    pt_digest_of("abd", 3, &b);
    assert_false(pt_digest_equal(&a, &b));
    assert_int_equal(pt_digest_parse("sha256:" ABC_HEX, PT_DIGEST_STR_LEN, &b), 0);
    assert_true(pt_digest_equal(&a, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_length_delimited),
        cmocka_unit_test(test_parse_invalid_leaves_output),
        cmocka_unit_test(test_parse_wrong_length),
        cmocka_unit_test(test_parse_uppercase_hex),
        cmocka_unit_test(test_parse_non_hex),
        cmocka_unit_test(test_parse_embedded_nul),
        cmocka_unit_test(test_parse_other_algorithms),
        cmocka_unit_test(test_parse_bad_grammar),
        cmocka_unit_test(test_parse_too_long),
        cmocka_unit_test(test_format_roundtrip),
        cmocka_unit_test(test_of_vectors),
        cmocka_unit_test(test_from_raw),
        cmocka_unit_test(test_equal),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
