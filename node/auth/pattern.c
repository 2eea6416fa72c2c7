/*
 * pattern.c - identity names, repository patterns and grants (see pattern.h).
 *
 * The grammar itself (names, patterns, matching) lives in oci/access.c, where the store and
 * the FSM reach it too; this file adds the textual forms: grants and action lists.
 */
#include "pattern.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "access.h"
#include "err.h"

_Static_assert(PT_AUTH_NAME_MAX == PT_ACCESS_NAME_MAX, "one bound for names");
_Static_assert(PT_AUTH_PATTERN_MAX == PT_ACCESS_PATTERN_MAX, "one bound for patterns");
_Static_assert(PT_ACTIONS_ALL == PT_ACCESS_ACTIONS_ALL, "one set of action bits");

int pt_auth_name_valid(const char *s, size_t len)
{
    return pt_access_name_valid(s, len);
}

int pt_pattern_valid(const char *p, size_t len)
{
    return pt_access_pattern_valid(p, len);
}

int pt_pattern_match(const char *pattern, const char *repo, size_t repo_len)
{
    if (pattern == NULL || repo == NULL)
        return 0;
    size_t plen = strnlen(pattern, PT_AUTH_PATTERN_MAX + 1);
    if (!pt_access_pattern_valid(pattern, plen) || memchr(repo, '\0', repo_len) != NULL)
        return 0;
    return pt_access_pattern_match(pattern, plen, repo, repo_len);
}

int pt_actions_valid(unsigned actions)
{
    return pt_access_actions_valid(actions);
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
