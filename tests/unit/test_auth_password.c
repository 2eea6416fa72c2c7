/*
 * test_auth_password.c - yescrypt password hashes and access token secrets
 * (node/auth/password.c). Each yescrypt hash costs tens of milliseconds: the tests make few.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "password.h"
#include "support/auth_keys.h"

static void test_hash_and_verify(void **state)
{
    (void)state;
    char h1[PT_PASSWORD_HASH_MAX], h2[PT_PASSWORD_HASH_MAX];
    assert_int_equal(pt_password_hash("correct horse", 13, h1, sizeof(h1)), 0);
    assert_memory_equal(h1, "$y$", 3);
    assert_true(pt_password_hash_valid(h1));
    assert_true(pt_password_verify("correct horse", 13, h1));
    assert_false(pt_password_verify("correct horsE", 13, h1));
    assert_false(pt_password_verify("correct hors", 12, h1));
    /* length-delimited: trailing bytes beyond len are not part of the password */
    assert_true(pt_password_verify("correct horse battery", 13, h1));
    /* a fresh salt every time */
    assert_int_equal(pt_password_hash("correct horse", 13, h2, sizeof(h2)), 0);
    assert_string_not_equal(h1, h2);
    assert_true(pt_password_verify("correct horse", 13, h2));

    /* a hash made elsewhere with libxcrypt's defaults */
    assert_true(
        pt_password_verify(PT_TEST_PASSWORD, strlen(PT_TEST_PASSWORD), PT_TEST_PASSWORD_HASH));
    assert_false(pt_password_verify("hunter3", 7, PT_TEST_PASSWORD_HASH));
}

static void test_refusals(void **state)
{
    (void)state;
    char h[PT_PASSWORD_HASH_MAX];
    char *big = malloc(PT_PASSWORD_MAX + 1);
    assert_non_null(big);
    memset(big, 'p', PT_PASSWORD_MAX + 1);
    assert_int_equal(pt_password_hash(big, PT_PASSWORD_MAX + 1, h, sizeof(h)), PT_E_CONFIG);
    assert_false(pt_password_verify(big, PT_PASSWORD_MAX + 1, PT_TEST_PASSWORD_HASH));
    /* the longest password is hashed (pre-hashed past libxcrypt's limit): every byte counts */
    assert_int_equal(pt_password_hash(big, PT_PASSWORD_MAX, h, sizeof(h)), 0);
    assert_true(pt_password_verify(big, PT_PASSWORD_MAX, h));
    big[PT_PASSWORD_MAX - 1] = 'q';
    assert_false(pt_password_verify(big, PT_PASSWORD_MAX, h));
    assert_false(pt_password_verify(big, PT_PASSWORD_MAX - 1, h));
    /* both sides of the limit */
    assert_int_equal(pt_password_hash(big, 511, h, sizeof(h)), 0);
    assert_true(pt_password_verify(big, 511, h));
    assert_false(pt_password_verify(big, 512, h));
    assert_int_equal(pt_password_hash(big, 512, h, sizeof(h)), 0);
    assert_true(pt_password_verify(big, 512, h));
    assert_false(pt_password_verify(big, 511, h));
    free(big);
    assert_int_equal(pt_password_hash("", 0, h, sizeof(h)), PT_E_CONFIG);
    assert_int_equal(pt_password_hash("a\0b", 3, h, sizeof(h)), PT_E_CONFIG);
    assert_false(pt_password_verify("", 0, PT_TEST_PASSWORD_HASH));
    /* a NUL inside cannot pass for the prefix before it */
    assert_false(pt_password_verify("hunter2\0x", 9, PT_TEST_PASSWORD_HASH));
    /* an output buffer too small for the hash */
    assert_int_equal(pt_password_hash("pw", 2, h, 10), PT_E_INTERNAL);
    /* malformed stored hashes never verify (and are never handed to crypt as a setting) */
    assert_false(pt_password_verify("pw", 2, ""));
    assert_false(pt_password_verify("pw", 2, "*0"));
    assert_false(pt_password_verify("pw", 2, "$1$abc$def"));
    assert_false(pt_password_verify("pw", 2, NULL));
}

static bool b64url_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static void test_secrets(void **state)
{
    (void)state;
    char s1[PT_SECRET_MAX], s2[PT_SECRET_MAX];
    assert_int_equal(pt_secret_generate(s1, sizeof(s1)), 0);
    assert_int_equal(pt_secret_generate(s2, sizeof(s2)), 0);
    assert_int_equal(strlen(s1), PT_SECRET_LEN);
    assert_memory_equal(s1, "ptk_", 4);
    for (size_t i = 4; i < PT_SECRET_LEN; i++)
        assert_true(b64url_char(s1[i]));
    assert_string_not_equal(s1, s2);
    assert_int_equal(pt_secret_generate(s1, PT_SECRET_LEN), PT_E_TOO_LARGE);

    /* SHA-256 of "abc" (FIPS 180-2 example) */
    char h[PT_SECRET_HASH_MAX];
    pt_secret_hash("abc", 3, h);
    assert_string_equal(h,
                        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(pt_secret_hash_valid(h));

    pt_secret_hash(s2, strlen(s2), h);
    assert_true(pt_secret_verify(s2, strlen(s2), h));
    assert_false(pt_secret_verify(s2, strlen(s2) - 1, h));
    s2[10] ^= 1;
    assert_false(pt_secret_verify(s2, strlen(s2), h));
    assert_false(pt_secret_verify(s2, strlen(s2), "sha256:00"));
    assert_false(pt_secret_verify("", 0, h));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hash_and_verify),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_secrets),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
