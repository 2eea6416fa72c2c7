/*
 * credentials.h - the Authorization request header and the base64 codecs it needs.
 *
 * Role: turn a client-controlled Authorization value into either a Basic user/password pair
 * (RFC 7617) or a borrowed Bearer token (RFC 6750), refusing anything malformed or over the
 * bounds before a single byte reaches the directory or the JWT verifier. Pure functions, no
 * allocation, no I/O; fuzzed by tests/fuzz/fuzz_auth_header.c.
 *
 * Design: one pass over length-delimited input (never reads past v[len - 1], a NUL inside the
 * value is refused). The scheme is matched case-insensitively, then one or more spaces, then
 * the credentials (token68 for Basic, b64token for Bearer), then optional trailing spaces or
 * tabs. Basic credentials are decoded into the struct (user before the first ':', password
 * after it); neither may contain a control character.
 *
 * Invariants: after a successful parse, scheme is BASIC or BEARER; for BASIC user and password
 * are NUL-terminated, user non-empty and at most PT_AUTH_USER_MAX bytes, password at most
 * PT_AUTH_PASSWORD_MAX bytes, token NULL; for BEARER token points into v, 1 <= token_len <=
 * PT_AUTH_BEARER_MAX, user and password empty. On failure *out is zeroed (scheme NONE).
 *
 * Threads: none (pure).
 * Secrets: the struct holds a password; callers wipe it with pt_auth_header_clear() when done.
 */
#ifndef PT_AUTH_CREDENTIALS_H
#define PT_AUTH_CREDENTIALS_H

#include <stddef.h>

#include "auth_vocab.h"

#define PT_AUTH_USER_MAX     (PT_AUTH_NAME_MAX * 2) /* 128 bytes */
#define PT_AUTH_PASSWORD_MAX 1024
#define PT_AUTH_BEARER_MAX   8192
/* Longest Basic token68 looked at: base64 of user ':' password at their maxima. */
#define PT_AUTH_BASIC_B64_MAX (((PT_AUTH_USER_MAX + 1 + PT_AUTH_PASSWORD_MAX + 2) / 3) * 4)

enum pt_auth_scheme { PT_AUTH_NONE = 0, PT_AUTH_BASIC, PT_AUTH_BEARER };

struct pt_auth_header {
    enum pt_auth_scheme scheme;
    char user[PT_AUTH_NAME_MAX * 2 + 1]; /* Basic: user-id, NUL-terminated */
    char password[1025];                 /* Basic: password, NUL-terminated (a secret) */
    const char *token;                   /* Bearer: borrowed from the parsed value */
    size_t token_len;
};

/*
 * Parses an Authorization header value v[0..len) (need not be NUL-terminated; borrowed, and
 * out->token keeps pointing into it). Returns 0 and fills *out, or PT_E_UNAUTHORIZED for an
 * unknown scheme, anything malformed (bad base64, no ':' in Basic, an empty user, control
 * characters, bad b64token characters) or over the bounds (user 128, password 1024, bearer
 * token 8192 bytes). out is borrowed.
 */
int pt_auth_header_parse(const char *v, size_t len, struct pt_auth_header *out);

/* Overwrites the password (and everything else) in h with zeros, in a way the compiler keeps. */
void pt_auth_header_clear(struct pt_auth_header *h);

/*
 * Decodes base64 in[0..len): url = 0 the standard alphabet (RFC 4648 section 4) with the
 * padding required, url = 1 the URL-safe alphabet (section 5) without padding (as JWTs use it).
 * Non-zero bits left over in the last character are refused, so each byte string has exactly
 * one accepted encoding. *out_len is the capacity of out on entry and the number of bytes
 * written on return. Returns 0, PT_E_UNAUTHORIZED for malformed input, or PT_E_TOO_LARGE when
 * out cannot hold the result (nothing useful is in out then). All pointers borrowed.
 */
int pt_base64_decode(const char *in, size_t len, int url, unsigned char *out, size_t *out_len);

/* Length of the base64url (unpadded) text of n bytes, without the NUL. */
#define PT_BASE64URL_LEN(n) (((n)*4 + 2) / 3)
/* Length of the standard padded base64 text of n bytes, without the NUL. */
#define PT_BASE64_LEN(n) ((((n) + 2) / 3) * 4)

/*
 * Writes the unpadded base64url text of in[0..len) and a NUL into out. Returns the length
 * written (PT_BASE64URL_LEN(len)), or 0 and writes nothing when out_size cannot hold it and
 * the NUL (an empty input also returns 0, with out[0] = NUL when out_size > 0).
 */
size_t pt_base64url_encode(const void *in, size_t len, char *out, size_t out_size);

/* Same as pt_base64url_encode with the standard alphabet and padding (PT_BASE64_LEN(len)). */
size_t pt_base64_encode(const void *in, size_t len, char *out, size_t out_size);

#endif
