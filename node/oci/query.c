/*
 * query.c - form-urlencoded query parsing.
 *
 * Pairs are walked in order without copying: a key is compared with the wanted one while it
 * is decoded, one byte at a time, and only the value of the matching occurrence is decoded
 * into the caller's buffer. Decoding never writes past cap and never produces a NUL byte,
 * so out is always a C string the caller can hand to validators.
 */
#include "query.h"

#include <stdint.h>
#include <string.h>

#include "err.h"

static int hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * Decode the byte at s[*i] (advancing *i past it, or past a "%XY" escape). Returns the byte
 * (0..255) or -1 for a truncated or non-hex escape.
 */
static int decode_byte(const char *s, size_t len, size_t *i)
{
    unsigned char c = (unsigned char)s[*i];
    int hi, lo;

    if (c == '+') {
        (*i)++;
        return ' ';
    }
    if (c != '%') {
        (*i)++;
        return c;
    }
    if (len - *i < 3)
        return -1;
    hi = hexval((unsigned char)s[*i + 1]);
    lo = hexval((unsigned char)s[*i + 2]);
    if (hi < 0 || lo < 0)
        return -1;
    *i += 3;
    return hi * 16 + lo;
}

/* 1 when the encoded key k[0..klen) decodes exactly to the NUL-terminated want. */
static int key_matches(const char *k, size_t klen, const char *want)
{
    size_t i = 0;
    size_t j = 0;

    while (i < klen) {
        int c = decode_byte(k, klen, &i);
        if (c <= 0 || want[j] == '\0' || (unsigned char)want[j] != (unsigned)c)
            return 0;
        j++;
    }
    return want[j] == '\0';
}

/* Decode v[0..vlen) into out; returns the length or PT_E_TOO_LARGE. */
static int decode_value(const char *v, size_t vlen, char *out, size_t cap)
{
    size_t i = 0;
    size_t o = 0;

    if (cap == 0)
        return PT_E_TOO_LARGE;
    while (i < vlen) {
        int c = decode_byte(v, vlen, &i);
        if (c <= 0 || o + 1 >= cap)
            return PT_E_TOO_LARGE;
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return (int)o;
}

int pt_query_get(const char *q, size_t qlen, const char *key, size_t idx, char *out, size_t cap)
{
    size_t pos = 0;
    size_t seen = 0;

    if (qlen > PT_QUERY_MAX)
        return PT_E_TOO_LARGE;
    if (q == NULL || key == NULL)
        return PT_E_NOT_FOUND;
    while (pos < qlen) {
        const char *pair = q + pos;
        const char *amp = memchr(pair, '&', qlen - pos);
        size_t plen = amp == NULL ? qlen - pos : (size_t)(amp - pair);
        const char *eq = memchr(pair, '=', plen);
        size_t klen = eq == NULL ? plen : (size_t)(eq - pair);

        pos += plen + 1;
        if (plen == 0 || !key_matches(pair, klen, key))
            continue;
        if (seen++ < idx)
            continue;
        if (eq == NULL)
            return decode_value(pair, 0, out, cap);
        return decode_value(eq + 1, plen - klen - 1, out, cap);
    }
    return PT_E_NOT_FOUND;
}

int pt_query_pagination(const char *q, size_t qlen, size_t dflt, size_t max, size_t *n, char *last,
                        size_t last_cap)
{
    char buf[PT_QUERY_N_DIGITS + 1];
    int rc;

    rc = pt_query_get(q, qlen, "n", 0, buf, sizeof(buf));
    if (rc == PT_E_NOT_FOUND) {
        *n = dflt;
    } else if (rc <= 0) {
        return PT_E_PAGINATION_NUMBER_INVALID;
    } else {
        uint64_t v = 0;
        int i;

        for (i = 0; i < rc; i++) {
            if (buf[i] < '0' || buf[i] > '9')
                return PT_E_PAGINATION_NUMBER_INVALID;
            v = v * 10 + (uint64_t)(buf[i] - '0'); /* at most 10 digits: no overflow */
        }
        *n = v > (uint64_t)max ? max : (size_t)v;
    }

    if (last_cap == 0)
        return PT_E_PAGINATION_NUMBER_INVALID;
    rc = pt_query_get(q, qlen, "last", 0, last, last_cap);
    if (rc == PT_E_NOT_FOUND) {
        last[0] = '\0';
        return 0;
    }
    return rc < 0 ? PT_E_PAGINATION_NUMBER_INVALID : 0;
}
