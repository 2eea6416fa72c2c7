/*
 * fuzz_query.c - libFuzzer driver for node/oci/query.h.
 *
 * Input layout (two selector bytes, low 4 bits each, so ASCII '0'..'9' and ':'..'?' read as
 * 0..15 and seed files stay printable):
 *   byte 0  the key looked up: keys[] below (the parameters registry routes read, plus edge
 *           cases: empty, a space, a byte above 0x7f);
 *   byte 1  bits 0-1: the occurrence index (0..3); bits 2-3: the output capacity, caps[];
 *   rest    the query string, passed as an unterminated heap copy of exactly its length.
 * The output buffer is also allocated at exactly its capacity, so a write past cap or a read
 * past the query is an AddressSanitizer report.
 *
 * pt_query_get is compared with a reference written from query.h alone: split on '&', skip
 * empty pairs, split each at its first '=', percent-decode the whole key (a bad escape or a
 * decoded NUL means no match), compare, then decode the value of the idx-th match. The results
 * (return code and decoded bytes) must be identical, and a successful result is a C string of
 * the returned length within cap. pt_query_pagination is compared the same way, using the
 * reference decoder for both "n" and "last".
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz_check.h"
#include "query.h"

static const char *const keys[16] = {
    "n",   "last", "digest", "mount", "from", "artifactType", "",   " ",
    "a b", "a&b",  "a=b",    "%",     "+",    "\xff",         "nn", "LAST",
};

static const size_t caps[4] = {PT_QUERY_MAX + 1, 1, 8, 0};

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

/* Form-urldecodes s[0..len) into dst (room for len bytes). Returns the decoded length, or -1
 * for a truncated or non-hex escape or a decoded NUL. */
static long ref_decode(const char *s, size_t len, char *dst)
{
    size_t i = 0, o = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        if (c == '%') {
            int hi, lo;
            if (len - i < 3)
                return -1;
            hi = hexval((unsigned char)s[i + 1]);
            lo = hexval((unsigned char)s[i + 2]);
            if (hi < 0 || lo < 0)
                return -1;
            c = (unsigned char)(hi * 16 + lo);
            i += 3;
        } else {
            if (c == '+')
                c = ' ';
            i++;
        }
        if (c == '\0')
            return -1;
        dst[o++] = (char)c;
    }
    return (long)o;
}

/* The reference pt_query_get. scratch has room for qlen bytes. */
static int ref_get(const char *q, size_t qlen, const char *key, size_t idx, char *out, size_t cap,
                   char *scratch)
{
    size_t pos = 0, seen = 0;

    if (qlen > PT_QUERY_MAX)
        return PT_E_TOO_LARGE;
    while (pos < qlen) {
        size_t end = pos, eq;
        long klen, vlen;

        while (end < qlen && q[end] != '&')
            end++;
        eq = pos;
        while (eq < end && q[eq] != '=')
            eq++;
        klen = ref_decode(q + pos, eq - pos, scratch);
        if (end > pos && klen >= 0 && (size_t)klen == strlen(key) &&
            memcmp(scratch, key, (size_t)klen) == 0 && seen++ == idx) {
            size_t vstart = eq < end ? eq + 1 : end;
            vlen = ref_decode(q + vstart, end - vstart, scratch);
            if (vlen < 0 || (size_t)vlen + 1 > cap)
                return PT_E_TOO_LARGE;
            memcpy(out, scratch, (size_t)vlen);
            out[vlen] = '\0';
            return (int)vlen;
        }
        pos = end + 1;
    }
    return PT_E_NOT_FOUND;
}

/* The reference pt_query_pagination; compares with the real one. */
static void check_pagination(const char *q, size_t qlen, size_t cap, char *scratch)
{
    char *last = malloc(cap > 0 ? cap : 1);
    char *ref_last = malloc(qlen + 1);
    char nbuf[PT_QUERY_N_DIGITS + 1];
    const size_t dflt = 100, max = 1000;
    size_t n = 0, ref_n = 0;
    int rc, ref = 0, nlen;

    if (last == NULL || ref_last == NULL)
        goto out;
    rc = pt_query_pagination(q, qlen, dflt, max, &n, last, cap);
    PT_FUZZ_CHECK(rc == 0 || rc == PT_E_PAGINATION_NUMBER_INVALID);

    nlen = ref_get(q, qlen, "n", 0, nbuf, sizeof(nbuf), scratch);
    if (nlen == PT_E_NOT_FOUND) {
        ref_n = dflt;
    } else if (nlen <= 0) {
        ref = PT_E_PAGINATION_NUMBER_INVALID;
    } else {
        uint64_t v = 0;
        int i;

        for (i = 0; i < nlen && ref == 0; i++) {
            if (nbuf[i] < '0' || nbuf[i] > '9')
                ref = PT_E_PAGINATION_NUMBER_INVALID;
            else
                v = v * 10 + (uint64_t)(nbuf[i] - '0');
        }
        ref_n = v > max ? max : (size_t)v;
    }
    if (ref == 0 && cap == 0)
        ref = PT_E_PAGINATION_NUMBER_INVALID;
    if (ref == 0) {
        int llen = ref_get(q, qlen, "last", 0, ref_last, cap, scratch);
        if (llen == PT_E_NOT_FOUND)
            ref_last[0] = '\0';
        else if (llen < 0)
            ref = PT_E_PAGINATION_NUMBER_INVALID;
    }

    PT_FUZZ_CHECK(rc == ref);
    if (rc == 0) {
        PT_FUZZ_CHECK(n == ref_n);
        PT_FUZZ_CHECK(n <= max);
        PT_FUZZ_CHECK(memchr(last, '\0', cap) != NULL);
        PT_FUZZ_CHECK(strcmp(last, ref_last) == 0);
    }
out:
    free(last);
    free(ref_last);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *key;
    size_t idx, cap, qlen;
    char *q = NULL, *out = NULL, *ref_out = NULL, *scratch = NULL;
    int rc, ref;

    if (size < 2)
        return 0;
    key = keys[data[0] & 0x0f];
    idx = data[1] & 0x03;
    cap = caps[(data[1] >> 2) & 0x03];
    qlen = size - 2;

    q = malloc(qlen > 0 ? qlen : 1);
    out = malloc(cap > 0 ? cap : 1);
    ref_out = malloc(cap > 0 ? cap : 1);
    scratch = malloc(qlen > 0 ? qlen : 1);
    if (q == NULL || out == NULL || ref_out == NULL || scratch == NULL)
        goto out;
    memcpy(q, data + 2, qlen);

    rc = pt_query_get(q, qlen, key, idx, out, cap);
    ref = ref_get(q, qlen, key, idx, ref_out, cap, scratch);
    PT_FUZZ_CHECK(rc == ref);
    if (rc >= 0) {
        PT_FUZZ_CHECK((size_t)rc < cap);
        PT_FUZZ_CHECK(out[rc] == '\0');
        PT_FUZZ_CHECK(strlen(out) == (size_t)rc);
        PT_FUZZ_CHECK(memcmp(out, ref_out, (size_t)rc + 1) == 0);
    } else {
        PT_FUZZ_CHECK(rc == PT_E_NOT_FOUND || rc == PT_E_TOO_LARGE);
    }

    check_pagination(q, qlen, cap, scratch);
out:
    free(q);
    free(out);
    free(ref_out);
    free(scratch);
    return 0;
}
