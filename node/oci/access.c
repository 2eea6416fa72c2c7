/*
 * access.c - the grammar of access control records (see access.h).
 *
 * Matching splits pattern and repository at '/' and compares component by component; inside
 * a component '*' globs are matched with the classic iterative algorithm (remember the last
 * star and retry one byte further on a mismatch), so nothing recurses and the cost is
 * bounded by the product of the lengths.
 */
#include "access.h"

#include <stdbool.h>
#include <string.h>

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_name_char(char c)
{
    return is_lower_alnum(c) || c == '.' || c == '_' || c == '-';
}

int pt_access_name_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > PT_ACCESS_NAME_MAX || !is_lower_alnum(s[0]))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!is_name_char(s[i]))
            return 0;
    return 1;
}

int pt_access_id_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > PT_ACCESS_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!(is_name_char(c) || (c >= 'A' && c <= 'Z')))
            return 0;
    }
    return 1;
}

static bool is_double_star(const char *c, size_t n)
{
    return n == 2 && c[0] == '*' && c[1] == '*';
}

int pt_access_pattern_valid(const char *p, size_t len)
{
    if (p == NULL || len == 0 || len > PT_ACCESS_PATTERN_MAX)
        return 0;
    size_t start = 0;
    while (start <= len) {
        size_t end = start;
        while (end < len && p[end] != '/')
            end++;
        size_t n = end - start;
        const char *c = p + start;
        if (n == 0)
            return 0; /* empty component: leading, trailing or double slash */
        if (is_double_star(c, n)) {
            if (end != len)
                return 0; /* only as the last component */
        } else {
            for (size_t i = 0; i < n; i++) {
                if (c[i] == '*') {
                    if (i + 1 < n && c[i + 1] == '*')
                        return 0; /* a double star inside a component */
                } else if (!is_name_char(c[i])) {
                    return 0;
                }
            }
        }
        start = end + 1;
    }
    return 1;
}

/* Glob match of one component: '*' matches any run of bytes (a component holds no '/'). */
static bool glob_match(const char *g, size_t gn, const char *s, size_t sn)
{
    size_t gi = 0, si = 0, star = (size_t)-1, mark = 0;
    while (si < sn) {
        if (gi < gn && g[gi] == '*') {
            star = gi++;
            mark = si;
        } else if (gi < gn && g[gi] == s[si]) {
            gi++;
            si++;
        } else if (star != (size_t)-1) {
            gi = star + 1;
            si = ++mark;
        } else {
            return false;
        }
    }
    while (gi < gn && g[gi] == '*')
        gi++;
    return gi == gn;
}

int pt_access_pattern_match(const char *p, size_t plen, const char *repo, size_t repo_len)
{
    if (p == NULL || repo == NULL || plen == 0 || repo_len == 0)
        return 0;
    size_t pi = 0, ri = 0;
    for (;;) {
        size_t pe = pi;
        while (pe < plen && p[pe] != '/')
            pe++;
        if (pe == plen && is_double_star(p + pi, pe - pi))
            return 1; /* the last component matches whatever is left, even nothing */
        if (ri > repo_len)
            return 0; /* the repository has fewer components */
        size_t re = ri;
        while (re < repo_len && repo[re] != '/')
            re++;
        if (!glob_match(p + pi, pe - pi, repo + ri, re - ri))
            return 0;
        if (pe == plen)
            return re == repo_len;
        pi = pe + 1;
        ri = re + 1;
    }
}

int pt_access_actions_valid(unsigned actions)
{
    return actions != 0 && (actions & ~(unsigned)PT_ACCESS_ACTIONS_ALL) == 0;
}

/* crypt(3)'s base64 alphabet: ./0-9A-Za-z */
static bool is_crypt64(char c)
{
    return c == '.' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
           (c >= 'a' && c <= 'z');
}

int pt_access_password_hash_valid(const char *h)
{
    if (h == NULL)
        return 0;
    size_t n = strnlen(h, PT_ACCESS_HASH_MAX + 1);
    if (n > PT_ACCESS_HASH_MAX || n < 4 || memcmp(h, "$y$", 3) != 0)
        return 0;
    /* $y$<params>$<salt>$<hash>: three non-empty fields after the prefix */
    size_t fields = 1;
    for (size_t i = 3; i < n; i++) {
        if (h[i] == '$') {
            if (h[i - 1] == '$')
                return 0;
            fields++;
        } else if (!is_crypt64(h[i])) {
            return 0;
        }
    }
    return fields == 3 && h[n - 1] != '$';
}

int pt_access_secret_hash_valid(const char *h)
{
    if (h == NULL || strnlen(h, PT_ACCESS_SECRET_HASH_LEN + 1) != PT_ACCESS_SECRET_HASH_LEN ||
        memcmp(h, "sha256:", 7) != 0)
        return 0;
    for (size_t i = 7; i < PT_ACCESS_SECRET_HASH_LEN; i++) {
        char c = h[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return 0;
    }
    return 1;
}
