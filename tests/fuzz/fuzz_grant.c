/*
 * fuzz_grant.c - libFuzzer driver for node/auth/pattern.h (over node/oci/access.h): grants,
 * repository patterns and pattern matching.
 *
 * Input layout: the input up to the first newline is the grant text / pattern, the rest (after
 * the newline) the repository name. Each part is handed over as a heap copy of exactly its
 * length (and, where the API takes a C string, a separate NUL-terminated copy), so
 * AddressSanitizer sees any read past its end.
 *
 * Checks, against reference code written here from pattern.h's contract alone:
 *   - pt_pattern_valid agrees with a reference validator (components split on '/', each a
 *     non-empty run of [a-z0-9._-*] without "**", or "**" as the last component only);
 *   - pt_pattern_match agrees with a reference matcher (per component, a dynamic-programming
 *     glob; a last "**" takes any number of remaining components) and is 0 for an invalid
 *     pattern or a repository that is empty or holds a NUL;
 *   - pt_grant_parse on success gives a valid pattern and valid action bits, admin only on
 *     "**", and the grant formatted back with pt_actions_format parses to the same result;
 *     pt_actions_format always NUL-terminates within its size;
 *   - pt_auth_name_valid agrees with its grammar.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz_check.h"
#include "pattern.h"

static int name_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
}

static int ref_valid(const char *p, size_t len)
{
    if (len == 0 || len > PT_AUTH_PATTERN_MAX)
        return 0;
    size_t start = 0;
    for (;;) {
        const char *slash = memchr(p + start, '/', len - start);
        size_t end = slash != NULL ? (size_t)(slash - p) : len;
        size_t n = end - start;
        if (n == 0)
            return 0;
        if (n == 2 && p[start] == '*' && p[start + 1] == '*') {
            if (end != len)
                return 0;
        } else {
            for (size_t i = start; i < end; i++) {
                if (p[i] == '*') {
                    if (i + 1 < end && p[i + 1] == '*')
                        return 0;
                } else if (!name_char((unsigned char)p[i])) {
                    return 0;
                }
            }
        }
        if (end == len)
            return 1;
        start = end + 1;
    }
}

/* Glob of g[0..gn) against s[0..sn) by dynamic programming over prefixes. */
static int ref_glob(const char *g, size_t gn, const char *s, size_t sn)
{
    unsigned char *row = calloc(sn + 1, 1), *next = calloc(sn + 1, 1);
    PT_FUZZ_CHECK(row != NULL && next != NULL);
    row[0] = 1; /* the empty glob matches the empty prefix */
    for (size_t i = 0; i < gn; i++) {
        memset(next, 0, sn + 1);
        for (size_t j = 0; j <= sn; j++) {
            if (g[i] == '*')
                next[j] = row[j] || (j > 0 && next[j - 1]);
            else
                next[j] = j > 0 && row[j - 1] && s[j - 1] == g[i];
        }
        unsigned char *t = row;
        row = next;
        next = t;
    }
    int m = row[sn];
    free(row);
    free(next);
    return m;
}

static int ref_match(const char *p, size_t plen, const char *r, size_t rlen)
{
    if (!ref_valid(p, plen) || rlen == 0 || memchr(r, '\0', rlen) != NULL)
        return 0;
    size_t pi = 0, ri = 0;
    int r_done = 0; /* the repository's components are used up */
    for (;;) {
        const char *ps = memchr(p + pi, '/', plen - pi);
        size_t pe = ps != NULL ? (size_t)(ps - p) : plen;
        if (pe == plen && pe - pi == 2 && p[pi] == '*' && p[pi + 1] == '*')
            return 1;
        if (r_done)
            return 0;
        const char *rs = memchr(r + ri, '/', rlen - ri);
        size_t re = rs != NULL ? (size_t)(rs - r) : rlen;
        if (!ref_glob(p + pi, pe - pi, r + ri, re - ri))
            return 0;
        if (pe == plen)
            return re == rlen;
        pi = pe + 1;
        if (re == rlen)
            r_done = 1;
        else
            ri = re + 1;
    }
}

static int ref_name(const char *s, size_t len)
{
    if (len == 0 || len > PT_AUTH_NAME_MAX)
        return 0;
    if (!((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!name_char((unsigned char)s[i]))
            return 0;
    return 1;
}

static char *copy(const uint8_t *p, size_t n, int nul)
{
    char *c = malloc(n + (nul ? 1 : 0) + 1); /* +1: malloc(0) may return NULL */
    PT_FUZZ_CHECK(c != NULL);
    if (n > 0)
        memcpy(c, p, n);
    if (nul)
        c[n] = '\0';
    return c;
}

static void check_grant(const char *text)
{
    char pattern[PT_AUTH_PATTERN_MAX + 1];
    unsigned actions = 0xdead;
    if (pt_grant_parse(text, pattern, sizeof(pattern), &actions) != 0)
        return;
    size_t plen = strnlen(pattern, sizeof(pattern));
    PT_FUZZ_CHECK(plen < sizeof(pattern));
    PT_FUZZ_CHECK(ref_valid(pattern, plen));
    PT_FUZZ_CHECK(pt_actions_valid(actions));
    if (actions & PT_ACTION_ADMIN)
        PT_FUZZ_CHECK(strcmp(pattern, "**") == 0);

    /* formatted back, it parses to the same grant */
    char names[64], again[PT_AUTH_PATTERN_MAX + 80], p2[PT_AUTH_PATTERN_MAX + 1];
    pt_actions_format(actions, names, sizeof(names));
    PT_FUZZ_CHECK(strlen(names) < sizeof(names));
    memcpy(again, pattern, plen);
    again[plen] = ':';
    strcpy(again + plen + 1, names);
    unsigned a2 = 0;
    PT_FUZZ_CHECK(pt_grant_parse(again, p2, sizeof(p2), &a2) == 0);
    PT_FUZZ_CHECK(strcmp(p2, pattern) == 0);
    PT_FUZZ_CHECK(a2 == actions);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t plen = nl != NULL ? (size_t)(nl - data) : size;
    size_t rlen = nl != NULL ? size - plen - 1 : 0;
    const uint8_t *rdata = nl != NULL ? nl + 1 : data + size;

    char *p_exact = copy(data, plen, 0);
    char *p_z = copy(data, plen, 1);
    char *r_exact = copy(rdata, rlen, 0);

    int valid = pt_pattern_valid(p_exact, plen);
    PT_FUZZ_CHECK(valid == ref_valid(p_exact, plen));
    PT_FUZZ_CHECK(pt_auth_name_valid(p_exact, plen) == ref_name(p_exact, plen));

    /* the C-string pattern is what pt_pattern_match sees: up to its first NUL */
    size_t zlen = strlen(p_z);
    int m = pt_pattern_match(p_z, r_exact, rlen);
    PT_FUZZ_CHECK(m == ref_match(p_z, zlen, r_exact, rlen));
    if (m)
        PT_FUZZ_CHECK(ref_valid(p_z, zlen) && rlen > 0);

    check_grant(p_z);

    /* any bits format into any size without overflow */
    char small[8];
    unsigned bits = size > 0 ? data[0] : 0;
    for (size_t n = 0; n <= sizeof(small); n++) {
        memset(small, 'x', sizeof(small));
        pt_actions_format(bits, small, n);
        if (n > 0)
            PT_FUZZ_CHECK(memchr(small, '\0', n) != NULL);
    }

    free(p_exact);
    free(p_z);
    free(r_exact);
    return 0;
}
