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
/* sha512("") and sha512("abc") (FIPS 180-2 test vectors) */
#define EMPTY_HEX512                                                                               \
    "cf83e1357eefb8bdf1542850d66d8007d620e4050b5715dc83f4a921d36ce9ce"                             \
    "47d0d13c5d85f2b0ff8318d2877eec2f63b931bd47417a81a538327af927da3e"
#define ABC_HEX512                                                                                 \
    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"                             \
    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f"
/* the lengths of a sha256 and a sha512 digest string */
#define STR256 71
#define STR512 135

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
    assert_int_equal(d.algo, PT_DIGEST_SHA256);
    assert_int_equal(strlen(d.hex), PT_DIGEST_SHA256_HEX_LEN);
    assert_int_equal(strlen(s), STR256);
}

static void test_parse_sha512(void **state)
{
    struct pt_digest d;
    const char *s = "sha512:" ABC_HEX512;
    char buf[STR512 + 8];

    (void)state;
    memset(&d, 'x', sizeof(d));
    assert_int_equal(pt_digest_parse(s, strlen(s), &d), 0);
    assert_int_equal(d.algo, PT_DIGEST_SHA512);
    assert_string_equal(d.hex, ABC_HEX512);
    assert_int_equal(strlen(d.hex), PT_DIGEST_SHA512_HEX_LEN);
    assert_int_equal(strlen(s), STR512);
    assert_int_equal(STR512, PT_DIGEST_STR_MAX);
    /* length-delimited: trailing bytes are not looked at, one more is */
    memcpy(buf, "sha512:" ABC_HEX512 "&junk", STR512 + 6);
    assert_int_equal(pt_digest_parse(buf, STR512, &d), 0);
    assert_int_equal(pt_digest_parse(buf, STR512 + 1, &d), PT_E_DIGEST_INVALID);
    assert_int_equal(pt_digest_parse(buf, STR512 - 1, &d), PT_E_DIGEST_INVALID);
    /* 127 and 129 hex, uppercase hex, non-hex, uppercase algorithm */
    snprintf(buf, sizeof(buf), "sha512:%.127s", ABC_HEX512);
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    snprintf(buf, sizeof(buf), "sha512:%s0", ABC_HEX512);
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    snprintf(buf, sizeof(buf), "sha512:%s", ABC_HEX512);
    buf[STR512 - 1] = 'F';
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    buf[STR512 - 1] = 'g';
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("SHA512:" ABC_HEX512), PT_E_DIGEST_INVALID);
    /* 64 hex under sha512 and 128 under sha256 */
    assert_int_equal(parse("sha512:" ABC_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha256:" ABC_HEX512), PT_E_DIGEST_INVALID);
    /* an embedded NUL */
    memcpy(buf, "sha512:" ABC_HEX512, STR512);
    buf[100] = '\0';
    assert_int_equal(pt_digest_parse(buf, STR512, &d), PT_E_DIGEST_INVALID);
}

static void test_sha512_format_hash_equal(void **state)
{
    struct pt_digest d, d2, e;
    char out[PT_DIGEST_STR_MAX + 1];
    static const char million_a_hex512[] =
        "e718483d0ce769644e2e42c7bc15b4638e1f98b13b2044285632a803afa973ebde0ff244877ea60a4cb0432ce5"
        "77c31beb009c5c2c49aa2e4eadb217ad8cc09b";
    char *big;

    (void)state;
    assert_int_equal(pt_digest_hex_len(PT_DIGEST_SHA256), 64);
    assert_int_equal(pt_digest_hex_len(PT_DIGEST_SHA512), 128);
    assert_string_equal(pt_digest_algo_name(PT_DIGEST_SHA512), "sha512");
    assert_int_equal(pt_digest_parse("sha512:" EMPTY_HEX512, STR512, &d), 0);
    memset(out, 'x', sizeof(out));
    assert_int_equal(pt_digest_format(&d, out), STR512);
    assert_string_equal(out, "sha512:" EMPTY_HEX512);
    assert_int_equal(pt_digest_parse(out, strlen(out), &d2), 0);
    assert_true(pt_digest_equal(&d, &d2));

    /* hashing */
    pt_digest_of_algo("", 0, PT_DIGEST_SHA512, &e);
    assert_int_equal(e.algo, PT_DIGEST_SHA512);
    assert_string_equal(e.hex, EMPTY_HEX512);
    assert_true(pt_digest_equal(&d, &e));
    pt_digest_of_algo(NULL, 0, PT_DIGEST_SHA512, &e);
    assert_string_equal(e.hex, EMPTY_HEX512);
    pt_digest_of_algo("abc", 3, PT_DIGEST_SHA512, &e);
    assert_string_equal(e.hex, ABC_HEX512);
    pt_digest_of_algo("abc", 3, PT_DIGEST_SHA256, &e);
    assert_int_equal(e.algo, PT_DIGEST_SHA256);
    assert_string_equal(e.hex, ABC_HEX);

    /* streaming, in uneven slices, agrees with the one-shot hash */
    big = malloc(1000000);
    assert_non_null(big);
    memset(big, 'a', 1000000);
    struct pt_digest_stream st;
    assert_int_equal(pt_digest_stream_init(&st, PT_DIGEST_SHA512), 0);
    for (size_t off = 0; off < 1000000;) {
        size_t n = 1000000 - off < 77777 ? 1000000 - off : 77777;
        assert_int_equal(pt_digest_stream_update(&st, big + off, n), 0);
        off += n;
    }
    assert_int_equal(pt_digest_stream_final(&st, &e), 0);
    assert_null(st.ctx);
    assert_string_equal(e.hex, million_a_hex512);
    pt_digest_of_algo(big, 1000000, PT_DIGEST_SHA512, &d2);
    assert_true(pt_digest_equal(&e, &d2));
    assert_int_equal(pt_digest_stream_init(&st, PT_DIGEST_SHA256), 0);
    assert_int_equal(pt_digest_stream_update(&st, "abc", 3), 0);
    assert_int_equal(pt_digest_stream_final(&st, &e), 0);
    assert_string_equal(e.hex, ABC_HEX);
    /* abandoned before final */
    assert_int_equal(pt_digest_stream_init(&st, PT_DIGEST_SHA512), 0);
    pt_digest_stream_free(&st);
    pt_digest_stream_free(&st);
    free(big);

    /* equal looks at the algorithm: a sha512 digest whose first 64 hex are a sha256 one */
    char text[PT_DIGEST_STR_MAX + 1];
    snprintf(text, sizeof(text), "sha512:%s%s", ABC_HEX, ABC_HEX);
    assert_int_equal(pt_digest_parse(text, strlen(text), &d), 0);
    assert_int_equal(pt_digest_parse("sha256:" ABC_HEX, STR256, &d2), 0);
    assert_false(pt_digest_equal(&d, &d2));
    assert_false(pt_digest_equal(&d2, &d));
}

static void test_parse_length_delimited(void **state)
{
    /* Only s[0..len) is looked at: trailing bytes beyond len are ignored. */
    char buf[STR256 + 8];
    struct pt_digest d;

    (void)state;
    memcpy(buf, "sha256:" ABC_HEX "&junk", STR256 + 6);
    assert_int_equal(pt_digest_parse(buf, STR256, &d), 0);
    assert_string_equal(d.hex, ABC_HEX);
    /* but a length one too long sees the '&' */
    assert_int_equal(pt_digest_parse(buf, STR256 + 1, &d), PT_E_DIGEST_INVALID);
    /* and one too short is 63 hex */
    assert_int_equal(pt_digest_parse(buf, STR256 - 1, &d), PT_E_DIGEST_INVALID);
}

static void test_parse_invalid_leaves_output(void **state)
{
    struct pt_digest d;

    (void)state;
    memcpy(d.hex, ABC_HEX, sizeof(ABC_HEX));
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
    buf[STR256 - 1] = 'F'; /* last char 5 -> F */
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
    char buf[STR256];
    struct pt_digest d;

    (void)state;
    memcpy(buf, "sha256:" EMPTY_HEX, STR256);
    buf[20] = '\0';
    assert_int_equal(pt_digest_parse(buf, STR256, &d), PT_E_DIGEST_INVALID);
}

static void test_parse_other_algorithms(void **state)
{
    char buf[300];

    (void)state;
    /* sha512 is accepted with its 128 hex (test_parse_sha512); sha384 and the rest are not */
    snprintf(buf, sizeof(buf), "sha384:%s%.32s", EMPTY_HEX, EMPTY_HEX);
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    snprintf(buf, sizeof(buf), "sha384:%s%s", EMPTY_HEX, EMPTY_HEX);
    assert_int_equal(parse(buf), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha512:" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha384:" EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("sha513:" EMPTY_HEX EMPTY_HEX), PT_E_DIGEST_INVALID);
    assert_int_equal(parse("md5:d41d8cd98f00b204e9800998ecf8427e"), PT_E_DIGEST_INVALID);
    /* grammatical multi-component algorithms are still neither sha256 nor sha512 */
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
    char out[PT_DIGEST_STR_MAX + 1];

    (void)state;
    assert_int_equal(pt_digest_parse("sha256:" ABC_HEX, STR256, &d), 0);
    memset(out, 'x', sizeof(out));
    pt_digest_format(&d, out);
    assert_string_equal(out, "sha256:" ABC_HEX);
    assert_int_equal(out[STR256], '\0');
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
    assert_int_equal(pt_digest_parse("sha256:" EMPTY_HEX, STR256, &d), 0);
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
    assert_int_equal(pt_digest_parse("sha256:" ABC_HEX, STR256, &b), 0);
    assert_true(pt_digest_equal(&a, &b));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_valid),
        cmocka_unit_test(test_parse_sha512),
        cmocka_unit_test(test_sha512_format_hash_equal),
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
