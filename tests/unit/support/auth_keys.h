/*
 * auth_keys.h - access control material for the tests: a known password hash and fresh EC
 * P-256 public keys in the DER form signing key records carry.
 */
#ifndef PT_TEST_AUTH_KEYS_H
#define PT_TEST_AUTH_KEYS_H

#include <stddef.h>

/* yescrypt hash of PT_TEST_PASSWORD (made once with libxcrypt's defaults). */
#define PT_TEST_PASSWORD "hunter2"
#define PT_TEST_PASSWORD_HASH                                                                      \
    "$y$j9T$ndkvEwjvdFy/Tb4A0vBMa0$IhOBvx2OXR9h8B/nJ1NfVuDwSFyW8CGLI/ETz0Q1qF7"

/* Writes the DER SubjectPublicKeyInfo of a new P-256 key into der (*len bytes available on
 * entry, the length on return); asserts on failure. */
void pt_test_p256_der(unsigned char *der, size_t *len);

/* The same for a P-384 key (a key of the wrong curve). */
void pt_test_p384_der(unsigned char *der, size_t *len);

#endif
