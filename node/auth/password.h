/*
 * password.h - password hashing (yescrypt) and access token secrets.
 *
 * Role: the only place that turns a password or a token secret into what the replicated
 * state stores, and checks one against the other.
 *
 * Design: passwords are hashed with yescrypt through libcrypt (crypt_gensalt_rn("$y$", 0)
 * then crypt_rn), the default of Debian's libxcrypt: slow on purpose, so verification costs
 * milliseconds and belongs off the event loops (the directory caches successes). Token
 * secrets are 32 random bytes (OpenSSL RAND_bytes), shown once as "ptk_" + 43 base64url
 * characters; since they carry 256 bits of entropy the stored form is a plain SHA-256
 * ("sha256:" + 64 lowercase hex).
 *
 * Invariants: passwords longer than PT_PASSWORD_MAX bytes or holding a NUL are refused, never
 * hashed. Comparisons of hashes run in constant time. Nothing here logs.
 *
 * Threads: every function is reentrant (crypt_rn works on a caller-provided area).
 */
#ifndef PT_AUTH_PASSWORD_H
#define PT_AUTH_PASSWORD_H

#include <stddef.h>

#define PT_PASSWORD_HASH_MAX 256
#define PT_PASSWORD_MAX      1024 /* longer passwords are refused, never hashed */

#define PT_SECRET_PREFIX   "ptk_"
#define PT_SECRET_MAX      64 /* buffer for a secret: "ptk_" + 43 chars + NUL fits */
#define PT_SECRET_LEN      47 /* strlen of a generated secret */
#define PT_SECRET_HASH_MAX 72 /* "sha256:" + 64 hex + NUL */

/*
 * Hashes pw[0..len) (borrowed) with yescrypt and a fresh random salt into out (out_size bytes,
 * at least PT_PASSWORD_HASH_MAX to hold any hash), NUL-terminated.
 * 0; PT_E_CONFIG for an empty password, one over PT_PASSWORD_MAX bytes or holding a NUL;
 * PT_E_NOMEM; PT_E_INTERNAL if libcrypt fails or the hash does not fit.
 */
int pt_password_hash(const char *pw, size_t len, char *out, size_t out_size);

/* 1 if pw[0..len) (borrowed) hashes to hash (borrowed, NUL-terminated, from
 * pt_password_hash), else 0 (also for an over-long password or a malformed hash). The final
 * comparison is constant-time. */
int pt_password_verify(const char *pw, size_t len, const char *hash);
/* The same, telling a failure to hash apart: 1 (match), 0 (no match, over-long password,
 * malformed hash), or PT_E_NOMEM / PT_E_INTERNAL when the hash could not be computed (memory,
 * libxcrypt): not a wrong password, so no failed login to count. */
int pt_password_check(const char *pw, size_t len, const char *hash);

/* 1 if hash (borrowed, NUL-terminated) looks like a stored password hash: "$y$" yescrypt
 * setting, salt and hash in crypt's base64 alphabet, shorter than PT_PASSWORD_HASH_MAX. */
int pt_password_hash_valid(const char *hash);

/* Writes a fresh secret ("ptk_" + 43 base64url chars, NUL-terminated) into out (size bytes,
 * at least PT_SECRET_MAX). 0, PT_E_TOO_LARGE if size is too small, PT_E_INTERNAL if the
 * random generator fails. */
int pt_secret_generate(char *out, size_t size);

/* Stored form of secret[0..len) (borrowed): "sha256:" + 64 lowercase hex, NUL-terminated. */
void pt_secret_hash(const char *secret, size_t len, char out[PT_SECRET_HASH_MAX]);

/* 1 if hash (borrowed, NUL-terminated) is a well-formed pt_secret_hash output, else 0. */
int pt_secret_hash_valid(const char *hash);

/* 1 if secret[0..len) hashes to hash (constant-time comparison), else 0. */
int pt_secret_verify(const char *secret, size_t len, const char *hash);

#endif
