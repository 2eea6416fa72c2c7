/*
 * jwt.h - ES256 JSON Web Tokens in the shape of the Docker token authentication specification.
 *
 * Role: each region holds one ES256 key pair (EC P-256) in a PEM file; /token signs access
 * and refresh tokens with it, and every region verifies a token with the public key the
 * cluster published under the token's kid (the lookup callback), so a token issued by one
 * region works in all of them.
 *
 * Design: JWS compact serialization (RFC 7515) with header {"alg":"ES256","typ":"JWT",
 * "kid":...}; the signature is the raw r||s 64 bytes of RFC 7518 section 3.4 (OpenSSL's DER
 * ECDSA-Sig-Value is converted both ways). Claims (Docker token spec, "JSON Web Token"
 * section, and RFC 7519): iss, sub, aud, exp, nbf, iat, jti and access[{type, name,
 * actions}]; a refresh token carries "typ":"refresh" and no access. The identity travels in
 * "sub" as "user:<name>" or "token:<id>" (anonymous: ""). JSON goes through jansson with
 * duplicate keys refused. Verification refuses, before any signature work: tokens over
 * PT_JWT_MAX bytes, anything but exactly three base64url parts, a header whose alg is not
 * exactly "ES256" (so never "none"), a "crit" header, or a kid the lookup does not know.
 *
 * Key file: PEM PKCS#8 private key, created mode 0600 through a temporary file, fsync and
 * rename; a key file readable or writable by group or others is refused, as is any key but
 * EC P-256. The kid is the base64url text of the first 16 bytes of SHA-256 over the DER
 * SubjectPublicKeyInfo (22 characters).
 *
 * Threads: a struct pt_jwt_key is immutable after load and may be used by any number of
 * threads at once; pt_jwt_sign keeps no state between calls; pt_jwt_verify keeps only a
 * small mutex-guarded cache of parsed public keys (decoding one costs more than verifying).
 * Secrets: the private key never leaves this module; tokens are bearer secrets and are never
 * logged here.
 */
#ifndef PT_AUTH_JWT_H
#define PT_AUTH_JWT_H

#include <stddef.h>
#include <stdint.h>

#include "auth_vocab.h"

#define PT_JWT_MAX         8192 /* longest token text accepted */
#define PT_JWT_LEEWAY_S    60   /* clock skew allowed on exp, nbf and iat */
#define PT_JWT_KID_LEN     22   /* base64url of 16 bytes */
#define PT_JWT_SPKI_MAX    128  /* DER SubjectPublicKeyInfo of a P-256 key is 91 bytes */
#define PT_JWT_ACCESS_MAX  16
#define PT_JWT_KEYFILE_MAX 16384 /* longest key file read */

/* sub_kind values: the same numbers as enum pt_identity_kind (directory.h). */
#define PT_JWT_SUB_ANONYMOUS 0
#define PT_JWT_SUB_USER      1
#define PT_JWT_SUB_TOKEN     2

struct pt_jwt_key; /* one region's ES256 key pair */

/*
 * Loads the PEM private key at path, or creates it when the file does not exist (EC P-256,
 * mode 0600, written to a temporary file next to it, fsync'ed, renamed into place, directory
 * fsync'ed). Returns 0 and *out (owned; free with pt_jwt_key_free), PT_E_CONFIG for a key file
 * readable or writable by group/others, not a regular file, not PEM, or not an EC P-256 key,
 * PT_E_IO for a file system error, PT_E_NOMEM. Blocks (file I/O): call at startup or off-loop.
 */
int pt_jwt_key_load_or_create(const char *path, struct pt_jwt_key **out);

/* A fresh in-memory EC P-256 key (tests, key rotation before writing). 0, PT_E_NOMEM,
 * PT_E_INTERNAL. *out owned. */
int pt_jwt_key_generate(struct pt_jwt_key **out);

/* A key from PEM text pem[0..len) (PKCS#8 private key). 0, PT_E_CONFIG (not PEM, not EC
 * P-256), PT_E_NOMEM. *out owned. */
int pt_jwt_key_from_pem(const char *pem, size_t len, struct pt_jwt_key **out);

/* Writes k as PEM PKCS#8 to path, created 0600 atomically (temporary file, fsync, rename,
 * directory fsync); an existing file is replaced. 0, PT_E_IO, PT_E_NOMEM. */
int pt_jwt_key_save(const struct pt_jwt_key *k, const char *path);

void pt_jwt_key_free(struct pt_jwt_key *k); /* NULL is fine */

/* base64url of the first 16 bytes of SHA-256(DER SPKI); PT_JWT_KID_LEN chars, NUL-terminated,
 * owned by k. */
const char *pt_jwt_key_kid(const struct pt_jwt_key *k);

/* Copies the DER SubjectPublicKeyInfo into der; *len is its capacity on entry and the length
 * on return. 0 or PT_E_TOO_LARGE (capacity below the length; PT_JWT_SPKI_MAX is enough). */
int pt_jwt_key_public_der(const struct pt_jwt_key *k, unsigned char *der, size_t *len);

/* The kid of a DER SubjectPublicKeyInfo der[0..len) (out holds PT_JWT_KID_LEN + 1 bytes). */
void pt_jwt_kid_of_der(const unsigned char *der, size_t len, char out[PT_JWT_KID_LEN + 1]);

struct pt_jwt_access {
    int registry;     /* 0: type "repository"; 1: type "registry" (name "catalog") */
    char name[256];   /* NUL-terminated */
    unsigned actions; /* PT_ACTION_* bits: "pull" "push" "delete" "admin"; "*" = pull,push,delete */
};

struct pt_jwt_claims {
    char iss[256];                  /* issuer (the region's service URL or name) */
    char sub[PT_AUTH_NAME_MAX + 8]; /* the identity's NAME only ("alice"); "" for anonymous */
    char aud[256];                  /* the service the token is for */
    char jti[64];                   /* unique id (base64url, pt_jwt_jti_generate) */
    char kid[64];                   /* verify: the header's kid; sign: ignored (the key's) */
    int sub_kind;                   /* PT_JWT_SUB_*: "sub" is "user:<name>"/"token:<id>"/"" */
    int64_t exp, nbf, iat;          /* seconds since the epoch; nbf 0 = absent */
    int refresh;                    /* 1: a refresh token (no access, "typ":"refresh") */
    struct pt_jwt_access access[PT_JWT_ACCESS_MAX];
    size_t n_access;
};

/* Writes a new random jti (16 random bytes, base64url, 22 chars) into out (size >= 23).
 * 0, or PT_E_INTERNAL when the random generator fails. */
int pt_jwt_jti_generate(char *out, size_t size);

/*
 * Signs claims c with k (header {"alg":"ES256","typ":"JWT","kid":<k's kid>}). An empty c->jti
 * gets a random one in the token (c is not changed: set it with pt_jwt_jti_generate first when
 * the caller needs it, e.g. for revocation). Returns 0 and *out (NUL-terminated, owned, from
 * malloc), PT_E_INTERNAL for claims that the verifier would refuse (sub not a valid name for
 * its kind, n_access over the maximum, access on a refresh token, an access name empty or not
 * NUL-terminated) or a crypto failure, PT_E_NOMEM. k and c borrowed.
 */
int pt_jwt_sign(const struct pt_jwt_key *k, const struct pt_jwt_claims *c, char **out);

/*
 * Looks up the public key for kid (NUL-terminated, at most 63 chars): copies its DER
 * SubjectPublicKeyInfo into der (capacity *len, PT_JWT_SPKI_MAX bytes) and sets *len. Returns 0,
 * or any negative value when the kid is unknown or its key is retired (the token is refused).
 */
typedef int (*pt_jwt_key_lookup)(void *arg, const char *kid, unsigned char *der, size_t *len);

/*
 * Verifies tok[0..len) (need not be NUL-terminated; borrowed): structure, header (alg exactly
 * ES256, kid known to lookup(arg, kid, ...)), the ES256 signature (raw r||s, 64 bytes) over
 * the first two parts, exp (required: now_s <= exp + leeway), nbf (if present: nbf <= now_s +
 * leeway), iat (required: iat <= now_s + leeway), aud == expected_aud (a string, or an array
 * holding it), sub and access well-formed (at most PT_JWT_ACCESS_MAX entries, known types and
 * actions). Returns 0 and *out, or PT_E_UNAUTHORIZED for every refusal (and PT_E_NOMEM when
 * memory runs out). On failure *out is zeroed. Revocation (jti) is the caller's check.
 */
int pt_jwt_verify(const char *tok, size_t len, const char *expected_aud, int64_t now_s,
                  pt_jwt_key_lookup lookup, void *arg, struct pt_jwt_claims *out);

/* Verification keeps the last few public keys it parsed (by their DER bytes, process-wide);
 * this drops them (tests, shutdown). Thread-safe. */
void pt_jwt_pubkey_cache_clear(void);

#endif
