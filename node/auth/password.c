/*
 * password.c - yescrypt password hashes and access token secrets (see password.h).
 *
 * crypt_rn works on a struct crypt_data (about 32 KiB) that is allocated per call and wiped
 * afterwards, so concurrent callers share nothing and no password stays in freed memory we
 * own. The salt comes from crypt_gensalt_rn with a NULL random source: libxcrypt then reads
 * the kernel's generator itself (getrandom). Cost parameter 0 takes yescrypt's default.
 *
 * Passwords of CRYPT_MAX_PASSPHRASE_SIZE bytes or more (libxcrypt's limit, below
 * PT_PASSWORD_MAX) are pre-hashed with SHA-512 first (phrase_of).
 *
 * A verification recomputes the hash with the stored setting and compares the two strings
 * with CRYPTO_memcmp over the stored length, so the time spent does not depend on where they
 * differ.
 */
#include "password.h"

#include <crypt.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "err.h"

_Static_assert(PT_PASSWORD_HASH_MAX == PT_ACCESS_HASH_MAX + 1, "one bound for password hashes");
_Static_assert(PT_SECRET_HASH_MAX == PT_ACCESS_SECRET_HASH_LEN + 1, "one form of secret hashes");

/* A password may be hashed: 1..PT_PASSWORD_MAX bytes without NUL. */
static bool password_ok(const char *pw, size_t len)
{
    return pw != NULL && len > 0 && len <= PT_PASSWORD_MAX && memchr(pw, '\0', len) == NULL;
}

int pt_password_hash_valid(const char *hash)
{
    return pt_access_password_hash_valid(hash);
}

/* The phrase handed to crypt_rn for pw[0..len), NUL-terminated, into a buffer from malloc
 * (NULL on allocation failure). libxcrypt takes phrases shorter than
 * CRYPT_MAX_PASSPHRASE_SIZE only; a longer password is replaced by "sha512:" and the hex of
 * its SHA-512, 135 characters (pre-hashing, as bcrypt deployments do: knowing that phrase
 * means knowing the password's digest). */
static char *phrase_of(const char *pw, size_t len)
{
    if (len < CRYPT_MAX_PASSPHRASE_SIZE) {
        char *z = malloc(len + 1);
        if (z != NULL) {
            memcpy(z, pw, len);
            z[len] = '\0';
        }
        return z;
    }
    static const char hex[] = "0123456789abcdef";
    unsigned char md[64];
    unsigned int n = 0;
    if (EVP_Digest(pw, len, md, &n, EVP_sha512(), NULL) != 1 || n != sizeof(md))
        return NULL;
    char *z = malloc(7 + 2 * sizeof(md) + 1);
    if (z != NULL) {
        memcpy(z, "sha512:", 7);
        for (size_t i = 0; i < sizeof(md); i++) {
            z[7 + 2 * i] = hex[md[i] >> 4];
            z[8 + 2 * i] = hex[md[i] & 15];
        }
        z[7 + 2 * sizeof(md)] = '\0';
    }
    OPENSSL_cleanse(md, sizeof(md));
    return z;
}

/* crypt_rn of pw with setting; the result is copied into out (out_size). 0, PT_E_NOMEM,
 * PT_E_INTERNAL. */
static int run_crypt(const char *pw, size_t len, const char *setting, char *out, size_t out_size)
{
    struct crypt_data *cd = calloc(1, sizeof(*cd));
    char *z = phrase_of(pw, len);
    if (cd == NULL || z == NULL) {
        free(cd);
        free(z);
        return PT_E_NOMEM;
    }
    size_t zlen = strlen(z);
    int rv = PT_E_INTERNAL;
    const char *h = crypt_rn(z, setting, cd, (int)sizeof(*cd));
    /* libxcrypt reports failure with NULL or a hash starting with '*' */
    if (h != NULL && h[0] != '*') {
        size_t n = strlen(h);
        if (n < out_size) {
            memcpy(out, h, n + 1);
            rv = 0;
        }
    }
    OPENSSL_cleanse(z, zlen);
    OPENSSL_cleanse(cd, sizeof(*cd));
    free(z);
    free(cd);
    return rv;
}

int pt_password_hash(const char *pw, size_t len, char *out, size_t out_size)
{
    if (!password_ok(pw, len))
        return PT_E_CONFIG;
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (crypt_gensalt_rn("$y$", 0, NULL, 0, setting, (int)sizeof(setting)) == NULL)
        return PT_E_INTERNAL;
    char h[CRYPT_OUTPUT_SIZE];
    int rv = run_crypt(pw, len, setting, h, sizeof(h));
    if (rv != 0)
        return rv;
    if (!pt_password_hash_valid(h) || strlen(h) >= out_size)
        return PT_E_INTERNAL;
    memcpy(out, h, strlen(h) + 1);
    return 0;
}

int pt_password_verify(const char *pw, size_t len, const char *hash)
{
    return pt_password_check(pw, len, hash) == 1;
}

int pt_password_check(const char *pw, size_t len, const char *hash)
{
    if (!password_ok(pw, len) || !pt_password_hash_valid(hash))
        return 0;
    char h[CRYPT_OUTPUT_SIZE];
    int rv = run_crypt(pw, len, hash, h, sizeof(h));
    if (rv != 0)
        return rv;
    size_t n = strlen(hash);
    /* the lengths are public (the stored setting fixes them); the bytes are compared in
     * constant time */
    int eq = strlen(h) == n && CRYPTO_memcmp(h, hash, n) == 0;
    OPENSSL_cleanse(h, sizeof(h));
    return eq;
}

/* ---- token secrets --------------------------------------------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int pt_secret_generate(char *out, size_t size)
{
    if (size < PT_SECRET_LEN + 1)
        return PT_E_TOO_LARGE;
    unsigned char r[32];
    if (RAND_bytes(r, sizeof(r)) != 1)
        return PT_E_INTERNAL;
    memcpy(out, PT_SECRET_PREFIX, 4);
    size_t o = 4;
    /* base64url without padding: 10 groups of 3 bytes, then 2 bytes -> 3 chars */
    size_t i = 0;
    for (; i + 3 <= sizeof(r); i += 3) {
        uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8 | r[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    uint32_t v = (uint32_t)r[i] << 16 | (uint32_t)r[i + 1] << 8;
    out[o++] = b64url[(v >> 18) & 63];
    out[o++] = b64url[(v >> 12) & 63];
    out[o++] = b64url[(v >> 6) & 63];
    out[o] = '\0';
    OPENSSL_cleanse(r, sizeof(r));
    return 0;
}

void pt_secret_hash(const char *secret, size_t len, char out[PT_SECRET_HASH_MAX])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (EVP_Digest(secret, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) {
        /* not reachable with a working libcrypto; an empty string matches no stored hash */
        out[0] = '\0';
        return;
    }
    memcpy(out, "sha256:", 7);
    for (size_t i = 0; i < 32; i++) {
        out[7 + 2 * i] = hex[md[i] >> 4];
        out[8 + 2 * i] = hex[md[i] & 15];
    }
    out[71] = '\0';
}

int pt_secret_hash_valid(const char *hash)
{
    return pt_access_secret_hash_valid(hash);
}

int pt_secret_verify(const char *secret, size_t len, const char *hash)
{
    if (secret == NULL || len == 0 || len > PT_SECRET_MAX || !pt_secret_hash_valid(hash))
        return 0;
    char h[PT_SECRET_HASH_MAX];
    pt_secret_hash(secret, len, h);
    return h[0] != '\0' && CRYPTO_memcmp(h, hash, PT_SECRET_HASH_MAX) == 0;
}
