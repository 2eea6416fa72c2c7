/*
 * digest.h - content digests ("sha256:<64 lowercase hex>" or "sha512:<128 lowercase hex>").
 *
 * Portolan addresses every blob and manifest by a digest. The OCI image-spec registers two
 * algorithms, sha256 and sha512 (image-spec "descriptor.md", section "Registered algorithms"),
 * and both are accepted wherever the distribution-spec allows a digest. Any other algorithm is
 * refused: a registry may refuse algorithms it does not support (same section). sha256 stays
 * the canonical algorithm: a manifest pushed by tag is addressed by its SHA-256.
 *
 * A parsed digest is kept as its algorithm and its lowercase hex characters, so two digests
 * compare with the algorithm and a memcmp, and the string form is the algorithm's name away.
 * Buffers for the string form are PT_DIGEST_STR_MAX + 1 bytes: they hold either algorithm.
 *
 * Invariant: a struct pt_digest filled by any function here has algo PT_DIGEST_SHA256 and
 * exactly 64 characters of [0-9a-f], or algo PT_DIGEST_SHA512 and exactly 128, followed by a
 * NUL.
 */
#ifndef PT_DIGEST_H
#define PT_DIGEST_H

#include <stddef.h>

enum pt_digest_algo {
    PT_DIGEST_SHA256 = 0,
    PT_DIGEST_SHA512 = 1,
};
#define PT_DIGEST_ALGO_COUNT 2

#define PT_DIGEST_SHA256_HEX_LEN 64
#define PT_DIGEST_SHA512_HEX_LEN 128
#define PT_DIGEST_HEX_MAX        PT_DIGEST_SHA512_HEX_LEN
#define PT_DIGEST_STR_MAX        135 /* "sha512:" + 128 hex, the longest digest string */
#define PT_DIGEST_RAW_LEN        32  /* a raw SHA-256 value (pt_digest_from_raw) */
#define PT_DIGEST_INPUT_MAX      255 /* longest digest string looked at before refusing it */

struct pt_digest {
    enum pt_digest_algo algo;
    char hex[PT_DIGEST_HEX_MAX + 1]; /* lowercase hex, NUL-terminated; length by algo */
};

/*
 * Parse "algorithm:encoded" per the OCI image-spec descriptor grammar:
 *   digest    ::= algorithm ":" encoded
 *   algorithm ::= component (separator component)*
 *   component ::= [a-z0-9]+
 *   separator ::= [+._-]
 *   encoded   ::= [a-zA-Z0-9=_-]+
 * Only sha256 with exactly 64 and sha512 with exactly 128 lowercase hex characters are
 * accepted. Anything else (bad grammar, another algorithm, uppercase hex, wrong length, a NUL
 * inside s[0..len), len > 255) returns PT_E_DIGEST_INVALID and leaves *out untouched.
 * s is borrowed and need not be NUL-terminated; out is borrowed.
 */
int pt_digest_parse(const char *s, size_t len, struct pt_digest *out);

/* Write "<algorithm>:<hex>" and a NUL into out, which must hold PT_DIGEST_STR_MAX + 1 bytes.
 * Returns the length written (71 or 135). Both pointers are borrowed. */
size_t pt_digest_format(const struct pt_digest *d, char *out);

/* Number of hex characters of a digest of algo (64 or 128). */
size_t pt_digest_hex_len(enum pt_digest_algo algo);

/* Name of algo as it prefixes a digest string ("sha256" or "sha512"); static storage. */
const char *pt_digest_algo_name(enum pt_digest_algo algo);

/* SHA-256 of buf[0..len) (OpenSSL EVP): the canonical digest. Runs on the calling thread:
 * meant for small inputs such as manifests; large blobs are hashed off the event loop by their
 * caller. Pointers borrowed. */
void pt_digest_of(const void *buf, size_t len, struct pt_digest *out);

/* As pt_digest_of, with the algorithm algo. */
void pt_digest_of_algo(const void *buf, size_t len, enum pt_digest_algo algo,
                       struct pt_digest *out);

/*
 * Incremental hashing of input too large to hold at once (a blob file read in slices):
 * pt_digest_stream_init, any number of pt_digest_stream_update, then pt_digest_stream_final,
 * which fills *out and releases the state. pt_digest_stream_free releases a stream abandoned
 * before final (harmless after final). init returns PT_E_NOMEM when OpenSSL cannot allocate
 * its context; update and final return PT_E_INTERNAL if OpenSSL fails. The struct is the
 * caller's (embed it); it owns an OpenSSL context between init and final/free.
 */
struct pt_digest_stream {
    enum pt_digest_algo algo;
    void *ctx; /* EVP_MD_CTX, owned */
};
int pt_digest_stream_init(struct pt_digest_stream *st, enum pt_digest_algo algo);
int pt_digest_stream_update(struct pt_digest_stream *st, const void *buf, size_t len);
int pt_digest_stream_final(struct pt_digest_stream *st, struct pt_digest *out);
void pt_digest_stream_free(struct pt_digest_stream *st);

/* Fill *out (algo sha256) from a 32-byte raw SHA-256 value. Pointers borrowed. */
void pt_digest_from_raw(const unsigned char raw[PT_DIGEST_RAW_LEN], struct pt_digest *out);

/* 1 when a and b are the same digest (same algorithm, same hex), else 0. Pointers borrowed. */
int pt_digest_equal(const struct pt_digest *a, const struct pt_digest *b);

#endif
