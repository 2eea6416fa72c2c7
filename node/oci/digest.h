/*
 * digest.h - content digests ("sha256:<64 lowercase hex>").
 *
 * Portolan addresses every blob and manifest by its SHA-256 digest. A parsed digest is kept
 * as its 64 lowercase hex characters, so two digests compare with memcmp and the string form
 * is a fixed prefix away. Only sha256 is accepted: the OCI image-spec registers sha256 and
 * sha512, and a registry may refuse algorithms it does not support (image-spec
 * "descriptor.md", section "Digests"); refusing sha512 keeps a single key space in storage.
 *
 * Invariant: a struct pt_digest filled by any function here holds exactly 64 characters of
 * [0-9a-f] followed by a NUL.
 */
#ifndef PT_DIGEST_H
#define PT_DIGEST_H

#include <stddef.h>

#define PT_DIGEST_HEX_LEN   64
#define PT_DIGEST_STR_LEN   71 /* "sha256:" + 64 hex */
#define PT_DIGEST_RAW_LEN   32
#define PT_DIGEST_INPUT_MAX 255 /* longest digest string looked at before refusing it */

struct pt_digest {
    char hex[PT_DIGEST_HEX_LEN + 1]; /* lowercase sha256 hex, NUL-terminated */
};

/*
 * Parse "algorithm:encoded" per the OCI image-spec descriptor grammar:
 *   digest    ::= algorithm ":" encoded
 *   algorithm ::= component (separator component)*
 *   component ::= [a-z0-9]+
 *   separator ::= [+._-]
 *   encoded   ::= [a-zA-Z0-9=_-]+
 * Only sha256 with exactly 64 lowercase hex characters is accepted. Anything else (bad
 * grammar, another algorithm, uppercase hex, wrong length, a NUL inside s[0..len), len > 255)
 * returns PT_E_DIGEST_INVALID and leaves *out untouched.
 * s is borrowed and need not be NUL-terminated; out is borrowed.
 */
int pt_digest_parse(const char *s, size_t len, struct pt_digest *out);

/* Write "sha256:<hex>" and a NUL into out, which must hold PT_DIGEST_STR_LEN + 1 bytes.
 * Both pointers are borrowed. */
void pt_digest_format(const struct pt_digest *d, char *out);

/* SHA-256 of buf[0..len) (OpenSSL EVP). Runs on the calling thread: meant for small inputs such
 * as manifests; large blobs are hashed off the event loop by their caller. Pointers borrowed. */
void pt_digest_of(const void *buf, size_t len, struct pt_digest *out);

/* Fill *out from a 32-byte raw SHA-256 value. Pointers borrowed. */
void pt_digest_from_raw(const unsigned char raw[PT_DIGEST_RAW_LEN], struct pt_digest *out);

/* 1 when a and b are the same digest, else 0. Pointers borrowed. */
int pt_digest_equal(const struct pt_digest *a, const struct pt_digest *b);

#endif
