/*
 * credentials.c - Authorization header parsing and base64 (see credentials.h).
 *
 * Everything here walks length-delimited input with explicit bounds checks before each
 * write; the only copy of a secret is the decoded Basic password in the caller's struct,
 * and the intermediate decode buffer is wiped before returning.
 */
#include "credentials.h"

#include <stdint.h>
#include <string.h>

#include <openssl/crypto.h>

#include "err.h"

static const char b64_std[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
static const char b64_url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of c in the alphabet, or -1. No table: branches on ranges, both alphabets. */
static int b64_value(unsigned char c, int url)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == (url ? '-' : '+'))
        return 62;
    if (c == (url ? '_' : '/'))
        return 63;
    return -1;
}

int pt_base64_decode(const char *in, size_t len, int url, unsigned char *out, size_t *out_len)
{
    size_t cap = *out_len, n = 0, i, data_len = len, need;
    uint32_t acc = 0;
    unsigned bits = 0;

    *out_len = 0;
    if (!url) {
        /* Padded: whole quantums, '=' only as the last one or two characters. */
        if (len % 4 != 0)
            return PT_E_UNAUTHORIZED;
        if (len > 0 && in[len - 1] == '=') {
            data_len--;
            if (in[len - 2] == '=')
                data_len--;
        }
    } else if (len % 4 == 1) {
        return PT_E_UNAUTHORIZED; /* one character cannot end a quantum */
    }
    need = data_len / 4 * 3 + (data_len % 4 ? data_len % 4 - 1 : 0);
    if (!url && data_len % 4 == 1)
        return PT_E_UNAUTHORIZED; /* "x===" style */
    if (need > cap)
        return PT_E_TOO_LARGE;
    for (i = 0; i < data_len; i++) {
        int v = b64_value((unsigned char)in[i], url);
        if (v < 0)
            return PT_E_UNAUTHORIZED;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0)
        return PT_E_UNAUTHORIZED; /* leftover bits must be zero: one encoding per value */
    *out_len = n;
    return 0;
}

static size_t encode(const char *alphabet, int pad, const unsigned char *in, size_t len, char *out,
                     size_t out_size)
{
    size_t need = pad ? PT_BASE64_LEN(len) : PT_BASE64URL_LEN(len), i, o = 0;

    if (out_size > 0)
        out[0] = '\0';
    if (len == 0 || need + 1 > out_size || need < len)
        return 0;
    for (i = 0; i + 2 < len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        out[o++] = alphabet[(v >> 6) & 63];
        out[o++] = alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0);
        out[o++] = alphabet[v >> 18];
        out[o++] = alphabet[(v >> 12) & 63];
        if (i + 1 < len)
            out[o++] = alphabet[(v >> 6) & 63];
        else if (pad)
            out[o++] = '=';
        if (pad)
            out[o++] = '=';
    }
    out[o] = '\0';
    return o;
}

size_t pt_base64url_encode(const void *in, size_t len, char *out, size_t out_size)
{
    return encode(b64_url, 0, in, len, out, out_size);
}

size_t pt_base64_encode(const void *in, size_t len, char *out, size_t out_size)
{
    return encode(b64_std, 1, in, len, out, out_size);
}

/* RFC 7230 token characters are what a scheme is made of; we only need to know where it
 * ends, so compare case-insensitively against the two schemes we speak. */
static int scheme_is(const char *v, size_t n, const char *name)
{
    size_t i;

    if (n != strlen(name))
        return 0;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c - 'A' + 'a');
        if (c != (unsigned char)name[i])
            return 0;
    }
    return 1;
}

/* RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=" */
static int b64token_valid(const char *t, size_t n)
{
    size_t i = 0;

    while (i < n) {
        unsigned char c = (unsigned char)t[i];
        if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/')
            i++;
        else
            break;
    }
    if (i == 0)
        return 0;
    while (i < n && t[i] == '=')
        i++;
    return i == n;
}

static int has_ctl(const unsigned char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] == 0x7f)
            return 1;
    return 0;
}

/* RFC 7617 section 2: user-pass = user-id ":" password, base64 in the standard alphabet. */
static int parse_basic(const char *t, size_t n, struct pt_auth_header *out)
{
    unsigned char buf[PT_AUTH_BASIC_B64_MAX / 4 * 3];
    size_t blen = sizeof(buf);
    const unsigned char *colon;
    size_t ulen, plen;
    int rc = PT_E_UNAUTHORIZED;

    if (n > PT_AUTH_BASIC_B64_MAX)
        return PT_E_UNAUTHORIZED;
    if (pt_base64_decode(t, n, 0, buf, &blen) != 0)
        goto out;
    colon = memchr(buf, ':', blen);
    if (colon == NULL)
        goto out;
    ulen = (size_t)(colon - buf);
    plen = blen - ulen - 1;
    if (ulen == 0 || ulen > PT_AUTH_USER_MAX || plen > PT_AUTH_PASSWORD_MAX)
        goto out;
    if (has_ctl(buf, blen))
        goto out;
    out->scheme = PT_AUTH_BASIC;
    memcpy(out->user, buf, ulen);
    out->user[ulen] = '\0';
    memcpy(out->password, colon + 1, plen);
    out->password[plen] = '\0';
    rc = 0;
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    return rc;
}

int pt_auth_header_parse(const char *v, size_t len, struct pt_auth_header *out)
{
    size_t s_end = 0, t_start, t_end = len;
    int rc;

    memset(out, 0, sizeof(*out));
    if (len == 0 || memchr(v, '\0', len) != NULL)
        return PT_E_UNAUTHORIZED;
    while (s_end < len && v[s_end] != ' ')
        s_end++;
    t_start = s_end;
    while (t_start < len && v[t_start] == ' ')
        t_start++;
    while (t_end > t_start && (v[t_end - 1] == ' ' || v[t_end - 1] == '\t'))
        t_end--;
    if (t_start == s_end || t_end == t_start)
        return PT_E_UNAUTHORIZED; /* no space after the scheme, or no credentials */
    if (scheme_is(v, s_end, "basic")) {
        rc = parse_basic(v + t_start, t_end - t_start, out);
    } else if (scheme_is(v, s_end, "bearer")) {
        rc = PT_E_UNAUTHORIZED;
        if (t_end - t_start <= PT_AUTH_BEARER_MAX && b64token_valid(v + t_start, t_end - t_start)) {
            out->scheme = PT_AUTH_BEARER;
            out->token = v + t_start;
            out->token_len = t_end - t_start;
            rc = 0;
        }
    } else {
        rc = PT_E_UNAUTHORIZED;
    }
    if (rc != 0)
        pt_auth_header_clear(out);
    return rc;
}

void pt_auth_header_clear(struct pt_auth_header *h)
{
    OPENSSL_cleanse(h, sizeof(*h));
}
