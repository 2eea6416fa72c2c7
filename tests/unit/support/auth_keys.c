/*
 * auth_keys.c - test keys for the access control tests (see auth_keys.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "auth_keys.h"

static void ec_der(const char *curve, unsigned char *der, size_t *len)
{
    EVP_PKEY *pk = EVP_EC_gen(curve);
    assert_non_null(pk);
    int n = i2d_PUBKEY(pk, NULL);
    assert_true(n > 0 && (size_t)n <= *len);
    unsigned char *p = der;
    assert_int_equal(i2d_PUBKEY(pk, &p), n);
    *len = (size_t)n;
    EVP_PKEY_free(pk);
}

void pt_test_p256_der(unsigned char *der, size_t *len)
{
    ec_der("P-256", der, len);
}

void pt_test_p384_der(unsigned char *der, size_t *len)
{
    ec_der("P-384", der, len);
}
