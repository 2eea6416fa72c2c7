/*
 * fuzz_auth_header.c - libFuzzer driver for node/auth/credentials.h.
 *
 * Input layout: the whole input is an Authorization header value, handed over as an
 * unterminated heap copy of exactly its length, so AddressSanitizer sees any read past its
 * end. The same bytes also go to pt_base64_decode with both alphabets.
 *
 * Checks beyond memory safety:
 * - pt_auth_header_parse: on failure the struct is all zeros; on success a Basic result has a
 *   non-empty user of at most 128 bytes and a password of at most 1024, both NUL-terminated
 *   and free of control characters, and base64 of "user:password" is exactly the credentials
 *   in the input; a Bearer result points inside the input, at most 8192 bytes of b64token
 *   characters, with nothing but spaces and tabs after it.
 * - pt_base64_decode: a successful decode encodes back to exactly the input (one accepted
 *   encoding per byte string), and a decode into one byte less room fails with TOO_LARGE.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "credentials.h"
#include "err.h"
#include "fuzz_check.h"

static int all_zero(const void *p, size_t n)
{
    const unsigned char *u = p;
    size_t i;

    for (i = 0; i < n; i++)
        if (u[i] != 0)
            return 0;
    return 1;
}

static int no_ctl(const char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s == 0x7f)
            return 0;
    return 1;
}

static void check_header(const char *v, size_t len)
{
    static char userpass[PT_AUTH_USER_MAX + 1 + PT_AUTH_PASSWORD_MAX + 1];
    static char enc[PT_BASE64_LEN(sizeof(userpass)) + 1];
    struct pt_auth_header h;
    int rc = pt_auth_header_parse(v, len, &h);

    if (rc != 0) {
        PT_FUZZ_CHECK(rc == PT_E_UNAUTHORIZED);
        PT_FUZZ_CHECK(all_zero(&h, sizeof(h)));
        return;
    }
    if (h.scheme == PT_AUTH_BASIC) {
        size_t ul = strnlen(h.user, sizeof(h.user)), pl = strnlen(h.password, sizeof(h.password));
        size_t el;
        const char *cred;
        PT_FUZZ_CHECK(ul >= 1 && ul <= PT_AUTH_USER_MAX && pl <= PT_AUTH_PASSWORD_MAX);
        PT_FUZZ_CHECK(no_ctl(h.user) && no_ctl(h.password) && strchr(h.user, ':') == NULL);
        PT_FUZZ_CHECK(h.token == NULL && h.token_len == 0);
        memcpy(userpass, h.user, ul);
        userpass[ul] = ':';
        memcpy(userpass + ul + 1, h.password, pl);
        el = pt_base64_encode(userpass, ul + 1 + pl, enc, sizeof(enc));
        PT_FUZZ_CHECK(el > 0);
        PT_FUZZ_CHECK(strncasecmp(v, "basic ", 6) == 0);
        cred = v + 6;
        while (cred < v + len && *cred == ' ')
            cred++;
        PT_FUZZ_CHECK((size_t)(v + len - cred) >= el && memcmp(cred, enc, el) == 0);
        for (const char *p = cred + el; p < v + len; p++)
            PT_FUZZ_CHECK(*p == ' ' || *p == '\t');
        pt_auth_header_clear(&h);
        PT_FUZZ_CHECK(all_zero(&h, sizeof(h)));
    } else {
        size_t i;
        PT_FUZZ_CHECK(h.scheme == PT_AUTH_BEARER);
        PT_FUZZ_CHECK(strncasecmp(v, "bearer ", 7) == 0);
        PT_FUZZ_CHECK(h.token > v + 6 && h.token + h.token_len <= v + len);
        PT_FUZZ_CHECK(h.token_len >= 1 && h.token_len <= PT_AUTH_BEARER_MAX);
        PT_FUZZ_CHECK(h.user[0] == '\0' && h.password[0] == '\0');
        for (i = 0; i < h.token_len; i++)
            PT_FUZZ_CHECK(h.token[i] != ' ' && h.token[i] != '\t' && h.token[i] != ',');
        for (const char *p = h.token + h.token_len; p < v + len; p++)
            PT_FUZZ_CHECK(*p == ' ' || *p == '\t');
    }
}

static void check_base64(const char *in, size_t len, int url)
{
    size_t cap = len, n = cap, n2, el;
    unsigned char *out = malloc(cap + 1);
    char *enc = malloc(len + 8);
    int rc;

    PT_FUZZ_CHECK(out != NULL && enc != NULL);
    rc = pt_base64_decode(in, len, url, out, &n);
    if (rc == 0) {
        el = url ? pt_base64url_encode(out, n, enc, len + 8)
                 : pt_base64_encode(out, n, enc, len + 8);
        PT_FUZZ_CHECK(el == len && memcmp(enc, in, len) == 0);
        if (n > 0) {
            n2 = n - 1;
            PT_FUZZ_CHECK(pt_base64_decode(in, len, url, out, &n2) == PT_E_TOO_LARGE);
        }
    } else {
        PT_FUZZ_CHECK(rc == PT_E_UNAUTHORIZED && n == 0);
    }
    free(out);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *v = malloc(size ? size : 1);

    PT_FUZZ_CHECK(v != NULL);
    memcpy(v, data, size);
    check_header(v, size);
    check_base64(v, size, 0);
    check_base64(v, size, 1);
    free(v);
    return 0;
}
