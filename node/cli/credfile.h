/*
 * credfile.h - the credential files registry clients write (podman/buildah/skopeo auth.json,
 * docker's config.json), read by the admin client to find a user and password for a URL.
 *
 *   {"auths": {"registry.example:5000": {"auth": "<base64 of user:password>"}, ...}}
 *
 * A key matches a URL when, without an "https://" or "http://" prefix and anything from its
 * first '/' on, it equals the URL's host:port (host compared without case); a URL without a
 * port, or with its scheme's default port, also matches a key of the host alone.
 *
 * Pure functions on bytes the caller read (bounded by CLI_AUTHFILE_MAX), fuzzed by
 * tests/fuzz/fuzz_credfile.c. Any thread.
 */
#ifndef PT_CLI_CREDFILE_H
#define PT_CLI_CREDFILE_H

#include <stddef.h>

#define CLI_AUTHFILE_MAX  (1024 * 1024) /* larger auth files are not read */
#define CLI_USER_MAX      256           /* user names (and token ids) from any source */
#define CLI_SECRET_MAX    1024          /* passwords and token secrets from any source */
#define CLI_AUTHORITY_MAX 300           /* host:port of a URL */

/*
 * Writes the host:port of url (borrowed, "http://" or "https://" URL; user info dropped, host
 * lower-cased) into out (size bytes) and, into alt, the same without the port when the URL
 * has none or its scheme's default (else ""). Returns 0, or -1 for a URL without a scheme or
 * host, or one that does not fit.
 */
int cli_url_authority(const char *url, char *out, size_t size, char *alt, size_t alt_size);

/*
 * Looks up authority (and alt when not "", both from cli_url_authority) in the auth file
 * data[0..len) (borrowed, not NUL-terminated). On a match, writes the decoded user (at most
 * CLI_USER_MAX bytes) and secret (at most CLI_SECRET_MAX bytes) NUL-terminated into user and
 * secret (CLI_USER_MAX + 1 and CLI_SECRET_MAX + 1 bytes) and returns 0. Returns 1 when the file
 * has no entry for the URL, -1 with a static reason in *why when the file is not JSON, is over
 * CLI_AUTHFILE_MAX, or the matching entry's "auth" is not base64 of "user:password" within
 * the bounds. secret is zeroed whenever the result is not 0.
 */
int cli_authfile_find(const char *data, size_t len, const char *authority, const char *alt,
                      char *user, char *secret, const char **why);

/* Decodes standard base64 (padding optional, no whitespace) of in[0..len) into out (at most
 * max bytes); returns the decoded length, or -1 for bad input or output over max. */
long cli_base64_decode(const char *in, size_t len, unsigned char *out, size_t max);

#endif
