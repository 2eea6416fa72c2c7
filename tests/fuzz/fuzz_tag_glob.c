/*
 * fuzz_tag_glob.c - libFuzzer driver for node/oci/tagglob.h: tag patterns of immutable tag
 * rules and retention rules.
 *
 * Input layout: the input up to the first newline is the pattern, the rest the tag. Each part
 * is handed over as a heap copy of exactly its length, so AddressSanitizer sees any read past
 * its end.
 *
 * Checks, against reference code written here from tagglob.h's contract alone:
 *   - pt_tag_glob_valid agrees with the grammar (1..PT_TAG_GLOB_MAX bytes of [A-Za-z0-9._-*]);
 *   - pt_tag_glob_match agrees with a dynamic-programming glob for every valid pattern (for an
 *     invalid one it only has to return 0 or 1 without reading out of bounds);
 *   - a pattern matches itself with every '*' removed, and "*" matches everything.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "tagglob.h"

static int ref_valid(const char *p, size_t n)
{
    if (n == 0 || n > PT_TAG_GLOB_MAX)
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = p[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '.' || c == '-' || c == '*'))
            return 0;
    }
    return 1;
}

/* dp[j]: pattern prefix i matches tag prefix j (rolled over i). */
static int ref_match(const char *p, size_t pn, const char *t, size_t tn)
{
    unsigned char *dp = calloc(tn + 1, 1), *nx = calloc(tn + 1, 1);
    PT_FUZZ_CHECK(dp != NULL && nx != NULL);
    dp[0] = 1;
    for (size_t i = 0; i < pn; i++) {
        memset(nx, 0, tn + 1);
        for (size_t j = 0; j <= tn; j++) {
            if (p[i] == '*')
                nx[j] = dp[j] || (j > 0 && nx[j - 1]);
            else
                nx[j] = j > 0 && dp[j - 1] && p[i] == t[j - 1];
        }
        unsigned char *s = dp;
        dp = nx;
        nx = s;
    }
    int r = dp[tn];
    free(dp);
    free(nx);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size);
    size_t pn = nl != NULL ? (size_t)(nl - data) : size;
    size_t tn = nl != NULL ? size - pn - 1 : 0;
    if (pn > 512 || tn > 512)
        return 0;
    char *p = malloc(pn + 1), *t = malloc(tn + 1);
    PT_FUZZ_CHECK(p != NULL && t != NULL);
    memcpy(p, data, pn);
    if (tn > 0)
        memcpy(t, nl + 1, tn);
    int valid = pt_tag_glob_valid(p, pn);
    PT_FUZZ_CHECK(valid == ref_valid(p, pn));
    int m = pt_tag_glob_match(p, pn, t, tn);
    PT_FUZZ_CHECK(m == 0 || m == 1);
    if (valid) {
        PT_FUZZ_CHECK(m == ref_match(p, pn, t, tn));
        char *lit = malloc(pn + 1);
        PT_FUZZ_CHECK(lit != NULL);
        size_t ln = 0;
        for (size_t i = 0; i < pn; i++)
            if (p[i] != '*')
                lit[ln++] = p[i];
        PT_FUZZ_CHECK(pt_tag_glob_match(p, pn, lit, ln) == 1);
        free(lit);
    }
    PT_FUZZ_CHECK(pt_tag_glob_match("*", 1, t, tn) == 1);
    free(p);
    free(t);
    return 0;
}
