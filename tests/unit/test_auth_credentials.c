/*
 * test_auth_credentials.c - Authorization header parsing (Basic, Bearer) and base64.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "credentials.h"
#include "err.h"

static int parse(const char *v, struct pt_auth_header *h)
{
    return pt_auth_header_parse(v, strlen(v), h);
}

/* "Basic " + base64(text) into out. */
static void basic_of(const char *text, size_t len, char *out, size_t size)
{
    size_t n;

    assert_true(size > 6);
    memcpy(out, "Basic ", 6);
    n = pt_base64_encode(text, len, out + 6, size - 6);
    assert_true(n > 0 || len == 0);
}

static void test_base64_vectors(void **state)
{
    /* RFC 4648 section 10 */
    static const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    static const char *std[] = {"", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy"};
    static const char *url[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE", "Zm9vYmFy"};
    char enc[32];
    unsigned char dec[32];
    size_t i, n;

    (void)state;
    for (i = 0; i < 7; i++) {
        size_t pl = strlen(plain[i]);
        assert_int_equal(pt_base64_encode(plain[i], pl, enc, sizeof(enc)), strlen(std[i]));
        assert_string_equal(enc, std[i]);
        assert_int_equal(pt_base64url_encode(plain[i], pl, enc, sizeof(enc)), strlen(url[i]));
        assert_string_equal(enc, url[i]);
        n = sizeof(dec);
        assert_int_equal(pt_base64_decode(std[i], strlen(std[i]), 0, dec, &n), 0);
        assert_int_equal(n, pl);
        assert_memory_equal(dec, plain[i], pl);
        n = sizeof(dec);
        assert_int_equal(pt_base64_decode(url[i], strlen(url[i]), 1, dec, &n), 0);
        assert_int_equal(n, pl);
        assert_memory_equal(dec, plain[i], pl);
    }
}

static void test_base64_alphabets(void **state)
{
    static const unsigned char bytes[] = {0xfb, 0xff, 0xbf};
    char enc[8];
    unsigned char dec[8];
    size_t n = sizeof(dec);

    (void)state;
    pt_base64_encode(bytes, 3, enc, sizeof(enc));
    assert_string_equal(enc, "+/+/");
    pt_base64url_encode(bytes, 3, enc, sizeof(enc));
    assert_string_equal(enc, "-_-_");
    assert_int_equal(pt_base64_decode("-_-_", 4, 0, dec, &n), PT_E_UNAUTHORIZED);
    n = sizeof(dec);
    assert_int_equal(pt_base64_decode("+/+/", 4, 1, dec, &n), PT_E_UNAUTHORIZED);
    n = sizeof(dec);
    assert_int_equal(pt_base64_decode("-_-_", 4, 1, dec, &n), 0);
    assert_memory_equal(dec, bytes, 3);
}

static void test_base64_refusals(void **state)
{
    static const char *bad_std[] = {"Zg=", "Zg", "Z===", "Zh==", "Zm9=", "Z=g=", "Zm 9", "=Zg="};
    static const char *bad_url[] = {"Z", "Zh", "Zm9", "Zg==", "Zm9vY"};
    unsigned char dec[16];
    size_t i, n;

    (void)state;
    for (i = 0; i < sizeof(bad_std) / sizeof(bad_std[0]); i++) {
        n = sizeof(dec);
        assert_int_equal(pt_base64_decode(bad_std[i], strlen(bad_std[i]), 0, dec, &n),
                         PT_E_UNAUTHORIZED);
        assert_int_equal(n, 0);
    }
    for (i = 0; i < sizeof(bad_url) / sizeof(bad_url[0]); i++) {
        n = sizeof(dec);
        assert_int_equal(pt_base64_decode(bad_url[i], strlen(bad_url[i]), 1, dec, &n),
                         PT_E_UNAUTHORIZED);
    }
    /* capacity */
    n = 5;
    assert_int_equal(pt_base64_decode("Zm9vYmFy", 8, 0, dec, &n), PT_E_TOO_LARGE);
    n = 6;
    assert_int_equal(pt_base64_decode("Zm9vYmFy", 8, 0, dec, &n), 0);
    assert_int_equal(n, 6);
    /* encoder capacity: the text and its NUL must fit */
    char out[5];
    assert_int_equal(pt_base64_encode("foo", 3, out, 4), 0);
    assert_int_equal(pt_base64_encode("foo", 3, out, 5), 4);
}

static void test_basic(void **state)
{
    struct pt_auth_header h;
    char v[64];

    (void)state;
    basic_of("alice:s3cret:with:colons", 24, v, sizeof(v));
    assert_int_equal(parse(v, &h), 0);
    assert_int_equal(h.scheme, PT_AUTH_BASIC);
    assert_string_equal(h.user, "alice");
    assert_string_equal(h.password, "s3cret:with:colons");
    assert_null(h.token);
    pt_auth_header_clear(&h);
    assert_int_equal(h.password[0], 0);

    /* scheme case, several spaces, trailing whitespace */
    assert_int_equal(parse("bAsIc   YWxpY2U6cHc= \t", &h), 0);
    assert_string_equal(h.user, "alice");
    assert_string_equal(h.password, "pw");

    /* empty password is a parse success (the directory refuses it) */
    basic_of("bob:", 4, v, sizeof(v));
    assert_int_equal(parse(v, &h), 0);
    assert_string_equal(h.user, "bob");
    assert_string_equal(h.password, "");
}

static void test_basic_refusals(void **state)
{
    struct pt_auth_header h;
    char v[4096], text[2048];

    (void)state;
    assert_int_equal(parse("Basic", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(parse("Basic ", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(parse("Basic\tYWxpY2U6cHc=", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(parse("Basic YWxpY2U6cHc", &h), PT_E_UNAUTHORIZED); /* no padding */
    assert_int_equal(parse("Basic YWxpY2U6cHc=x", &h), PT_E_UNAUTHORIZED);
    basic_of("nocolon", 7, v, sizeof(v));
    assert_int_equal(parse(v, &h), PT_E_UNAUTHORIZED);
    basic_of(":pw", 3, v, sizeof(v));
    assert_int_equal(parse(v, &h), PT_E_UNAUTHORIZED);
    basic_of("al\x01ice:pw", 9, v, sizeof(v));
    assert_int_equal(parse(v, &h), PT_E_UNAUTHORIZED);
    basic_of("alice:p\nw", 9, v, sizeof(v));
    assert_int_equal(parse(v, &h), PT_E_UNAUTHORIZED);
    basic_of("alice:p\0w", 9, v, sizeof(v));
    assert_int_equal(parse(v, &h), PT_E_UNAUTHORIZED);
    assert_int_equal(h.scheme, PT_AUTH_NONE);

    /* user: 128 bytes pass, 129 do not */
    memset(text, 'u', 128);
    memcpy(text + 128, ":pw", 3);
    basic_of(text, 131, v, sizeof(v));
    assert_int_equal(parse(v, &h), 0);
    assert_int_equal(strlen(h.user), 128);
    memset(text, 'u', 129);
    memcpy(text + 129, ":pw", 3);
    basic_of(text, 132, v, sizeof(v));
    assert_int_equal(parse(v, &h), PT_E_UNAUTHORIZED);

    /* password: 1024 bytes pass, 1025 do not */
    memcpy(text, "u:", 2);
    memset(text + 2, 'p', 1025);
    basic_of(text, 2 + 1024, v, sizeof(v));
    assert_int_equal(parse(v, &h), 0);
    assert_int_equal(strlen(h.password), 1024);
    basic_of(text, 2 + 1025, v, sizeof(v));
    assert_int_equal(parse(v, &h), PT_E_UNAUTHORIZED);
    assert_int_equal(h.password[0], 0);
}

static void test_bearer(void **state)
{
    struct pt_auth_header h;
    const char *v = "Bearer eyJhbGciOiJFUzI1NiJ9.e30.c2ln-_~+/==  ";
    char *big;

    (void)state;
    assert_int_equal(parse(v, &h), 0);
    assert_int_equal(h.scheme, PT_AUTH_BEARER);
    assert_ptr_equal(h.token, v + 7);
    assert_int_equal(h.token_len, strlen("eyJhbGciOiJFUzI1NiJ9.e30.c2ln-_~+/=="));
    assert_string_equal(h.user, "");
    assert_int_equal(parse("BEARER abc", &h), 0);

    assert_int_equal(parse("Bearer", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(parse("Bearer ", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(parse("Bearer ab cd", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(parse("Bearer ab=c", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(parse("Bearer =", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(parse("Bearer a,b", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(pt_auth_header_parse("Bearer a\0b", 10, &h), PT_E_UNAUTHORIZED);
    assert_null(h.token);

    /* 8192 bytes pass, 8193 do not */
    big = malloc(7 + 8193 + 1);
    assert_non_null(big);
    memcpy(big, "Bearer ", 7);
    memset(big + 7, 'a', 8193);
    assert_int_equal(pt_auth_header_parse(big, 7 + 8192, &h), 0);
    assert_int_equal(h.token_len, 8192);
    assert_int_equal(pt_auth_header_parse(big, 7 + 8193, &h), PT_E_UNAUTHORIZED);
    free(big);
}

static void test_other_schemes(void **state)
{
    struct pt_auth_header h;

    (void)state;
    assert_int_equal(parse("", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(parse("Digest username=\"a\"", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(parse("Basicx YWxpY2U6cHc=", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(parse(" Basic YWxpY2U6cHc=", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(parse("YWxpY2U6cHc=", &h), PT_E_UNAUTHORIZED);
    assert_int_equal(h.scheme, PT_AUTH_NONE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_base64_vectors),  cmocka_unit_test(test_base64_alphabets),
        cmocka_unit_test(test_base64_refusals), cmocka_unit_test(test_basic),
        cmocka_unit_test(test_basic_refusals),  cmocka_unit_test(test_bearer),
        cmocka_unit_test(test_other_schemes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
