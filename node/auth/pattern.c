/*
 * pattern.c - identity names, repository patterns and grants (see pattern.h).
 *
 * Matching splits pattern and repository at '/' and compares component by component; inside
 * a component '*' globs are matched with the classic iterative algorithm (remember the last
 * star and retry one byte further), so the cost is bounded by the product of the lengths and
 * nothing recurses.
 */
#include "pattern.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "err.h"

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_name_char(char c)
{
    return is_lower_alnum(c) || c == '.' || c == '_' || c == '-';
}

int pt_auth_name_valid(const char *s, size_t len)
{
    if (s == NULL || len == 0 || len > PT_AUTH_NAME_MAX || !is_lower_alnum(s[0]))
        return 0;
    for (size_t i = 1; i < len; i++)
        if (!is_name_char(s[i]))
            return 0;
    return 1;
}

int pt_pattern_valid(const char *p, size_t len)
{
    if (p == NULL || len == 0 || len > PT_AUTH_PATTERN_MAX)
        return 0;
    size_t start = 0;
    while (start <= len) {
        size_t end = start;
        while (end < len && p[end] != '/')
            end++;
        size_t n = end - start;
        if (n == 0)
            return 0; /* empty component: leading, trailing or double slash */
        const char *c = p + start;
        if (n == 2 && c[0] == '*' && c[1] == '*') {
            if (end != len)
                return 0; /* "**" only as the last component */
        } else {
            for (size_t i = 0; i < n; i++) {
                if (c[i] == '*') {
                    if (i + 1 < n && c[i + 1] == '*')
                        return 0; /* "**" inside a component */
                } else if (!is_name_char(c[i])) {
                    return 0;
                }
            }
        }
        start = end + 1;
    }
    return 1;
}

/* Glob match of one component: '*' matches any run of bytes (the component holds no '/'). */
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

int pt_pattern_match(const char *pattern, const char *repo, size_t repo_len)
{
    if (pattern == NULL || repo == NULL || repo_len == 0)
        return 0;
    size_t plen = strnlen(pattern, PT_AUTH_PATTERN_MAX + 1);
    if (!pt_pattern_valid(pattern, plen) || memchr(repo, '\0', repo_len) != NULL)
        return 0;
    size_t pi = 0, ri = 0;
    for (;;) {
        size_t pe = pi;
        while (pe < plen && pattern[pe] != '/')
            pe++;
        if (pe - pi == 2 && pattern[pi] == '*' && pattern[pi + 1] == '*')
            return 1; /* last component: matches whatever is left, even nothing */
        if (ri > repo_len)
            return 0; /* repository ran out of components */
        size_t re = ri;
        while (re < repo_len && repo[re] != '/')
            re++;
        if (!glob_match(pattern + pi, pe - pi, repo + ri, re - ri))
            return 0;
        if (pe == plen)
            return re == repo_len;
        pi = pe + 1;
        ri = re + 1;
    }
}

int pt_actions_valid(unsigned actions)
{
    return actions != 0 && (actions & ~(unsigned)PT_ACTIONS_ALL) == 0;
}

unsigned pt_actions_effective(unsigned actions)
{
    actions &= PT_ACTIONS_ALL;
    if (actions & PT_ACTION_ADMIN)
        return PT_ACTIONS_ALL;
    return actions;
}

/* Bits of one action name s[0..n), or 0 if unknown. */
static unsigned action_bits(const char *s, size_t n)
{
    static const struct {
        const char *name;
        unsigned bits;
    } names[] = {
        {"pull", PT_ACTION_PULL},
        {"push", PT_ACTION_PUSH},
        {"delete", PT_ACTION_DELETE},
        {"admin", PT_ACTION_ADMIN},
        {"*", PT_ACTION_PULL | PT_ACTION_PUSH | PT_ACTION_DELETE},
    };
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (strlen(names[i].name) == n && memcmp(names[i].name, s, n) == 0)
            return names[i].bits;
    return 0;
}

/* Writes "**" into pattern. */
static int whole_registry(char *pattern, size_t pattern_size)
{
    if (pattern_size < 3)
        return PT_E_CONFIG;
    memcpy(pattern, "**", 3);
    return 0;
}

int pt_grant_parse(const char *text, char *pattern, size_t pattern_size, unsigned *actions)
{
    if (text == NULL || pattern == NULL || actions == NULL)
        return PT_E_CONFIG;
    size_t len = strnlen(text, PT_AUTH_PATTERN_MAX + 64);
    if (len == PT_AUTH_PATTERN_MAX + 64)
        return PT_E_CONFIG;
    if (len == 5 && memcmp(text, "admin", 5) == 0) {
        *actions = PT_ACTION_ADMIN;
        return whole_registry(pattern, pattern_size);
    }
    const char *colon = memchr(text, ':', len);
    if (colon == NULL)
        return PT_E_CONFIG;
    size_t plen = (size_t)(colon - text);
    if (!pt_pattern_valid(text, plen))
        return PT_E_CONFIG;
    unsigned bits = 0;
    const char *a = colon + 1, *end = text + len;
    for (;;) {
        const char *comma = memchr(a, ',', (size_t)(end - a));
        const char *stop = comma != NULL ? comma : end;
        unsigned b = action_bits(a, (size_t)(stop - a));
        if (b == 0)
            return PT_E_CONFIG;
        bits |= b;
        if (comma == NULL)
            break;
        a = comma + 1;
    }
    *actions = bits;
    if (bits & PT_ACTION_ADMIN) {
        bool everything =
            (plen == 1 && text[0] == '*') || (plen == 2 && text[0] == '*' && text[1] == '*');
        if (!everything)
            return PT_E_CONFIG; /* admin is registry-wide */
        return whole_registry(pattern, pattern_size);
    }
    if (plen + 1 > pattern_size)
        return PT_E_CONFIG;
    memcpy(pattern, text, plen);
    pattern[plen] = '\0';
    return 0;
}

void pt_actions_format(unsigned actions, char *buf, size_t size)
{
    static const char *const names[] = {"pull", "push", "delete", "admin"};
    if (size == 0)
        return;
    buf[0] = '\0';
    size_t used = 0;
    for (unsigned i = 0; i < 4; i++) {
        if (!(actions & (1u << i)))
            continue;
        int n = snprintf(buf + used, size - used, "%s%s", used > 0 ? "," : "", names[i]);
        if (n < 0 || (size_t)n >= size - used) {
            buf[size - 1] = '\0';
            return;
        }
        used += (size_t)n;
    }
}
