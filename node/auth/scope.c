/*
 * scope.c - Docker token scopes (see scope.h for the grammar).
 *
 * A scope string is split on spaces; each scope is split at its first ':' (end of the
 * resource type) and its last ':' (start of the actions), so the resource name is whatever
 * lies between. Only then is each part checked, so a malformed scope is refused whole.
 */
#include "scope.h"

#include <string.h>

#include "err.h"
#include "reference.h"

static int type_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '(' || c == ')' || c == '.' ||
           c == '_' || c == '-';
}

static int action_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-';
}

static int word_is(const char *w, size_t n, const char *lit)
{
    return n == strlen(lit) && memcmp(w, lit, n) == 0;
}

/* Action bits of a[0..n) ("pull,push"); PT_E_NAME_INVALID for a character outside the
 * action grammar or a "*" glued to other characters. */
static int parse_actions(const char *a, size_t n, unsigned *bits)
{
    size_t i = 0;

    *bits = 0;
    while (i <= n) {
        size_t start = i, wl;
        while (i < n && a[i] != ',')
            i++;
        wl = i - start;
        if (word_is(a + start, wl, "*")) {
            *bits |= PT_ACTIONS_DOCKER_ALL;
        } else {
            size_t k;
            for (k = start; k < i; k++)
                if (!action_char((unsigned char)a[k]))
                    return PT_E_NAME_INVALID;
            if (word_is(a + start, wl, "pull"))
                *bits |= PT_ACTION_PULL;
            else if (word_is(a + start, wl, "push"))
                *bits |= PT_ACTION_PUSH;
            else if (word_is(a + start, wl, "delete"))
                *bits |= PT_ACTION_DELETE;
            /* other words (and empty ones) grant nothing and are ignored */
        }
        i++; /* past the ',' (or past the end, which ends the loop) */
    }
    return 0;
}

/* Adds one scope s[0..len) (no spaces in it) to out[0..*n). */
static int parse_one(const char *s, size_t len, struct pt_scope *out, size_t max, size_t *n)
{
    const char *c1, *c2;
    size_t tl, nl, i;
    unsigned bits;
    int registry;

    if (len > PT_SCOPE_TEXT_MAX)
        return PT_E_NAME_INVALID;
    c1 = memchr(s, ':', len);
    if (c1 == NULL)
        return PT_E_NAME_INVALID;
    c2 = s + len;
    while (c2[-1] != ':')
        c2--;
    c2--; /* the last ':' */
    if (c2 == c1)
        return PT_E_NAME_INVALID; /* only one ':' */
    tl = (size_t)(c1 - s);
    nl = (size_t)(c2 - c1 - 1);
    if (tl == 0 || nl == 0)
        return PT_E_NAME_INVALID;
    for (i = 0; i < tl; i++)
        if (!type_char((unsigned char)s[i]))
            return PT_E_NAME_INVALID;
    for (i = 0; i < nl; i++) {
        unsigned char ch = (unsigned char)c1[1 + i];
        if (ch <= 0x20 || ch >= 0x7f)
            return PT_E_NAME_INVALID;
    }
    if (parse_actions(c2 + 1, (size_t)(s + len - c2 - 1), &bits) != 0)
        return PT_E_NAME_INVALID;

    if (word_is(s, tl, "repository")) {
        if (pt_name_validate(c1 + 1, nl) != 0)
            return PT_E_NAME_INVALID;
        registry = 0;
    } else if (word_is(s, tl, "registry") && word_is(c1 + 1, nl, "catalog")) {
        registry = 1;
    } else {
        return 0; /* a resource this registry does not know: grants nothing, skipped */
    }

    for (i = 0; i < *n; i++) {
        if (out[i].registry == registry && strlen(out[i].name) == nl &&
            memcmp(out[i].name, c1 + 1, nl) == 0) {
            out[i].actions |= bits;
            return 0;
        }
    }
    if (*n >= max)
        return PT_E_TOO_LARGE;
    out[*n].registry = registry;
    memcpy(out[*n].name, c1 + 1, nl); /* nl <= PT_NAME_MAX (validated) or 7 ("catalog") */
    out[*n].name[nl] = '\0';
    out[*n].actions = bits;
    (*n)++;
    return 0;
}

int pt_scope_parse(const char *s, size_t len, struct pt_scope *out, size_t max, size_t *n)
{
    size_t i = 0;
    int rc;

    *n = 0;
    if (len > PT_SCOPE_INPUT_MAX)
        return PT_E_TOO_LARGE;
    while (i < len) {
        size_t start;
        while (i < len && s[i] == ' ')
            i++;
        start = i;
        while (i < len && s[i] != ' ')
            i++;
        if (i > start && (rc = parse_one(s + start, i - start, out, max, n)) != 0) {
            *n = 0;
            return rc;
        }
    }
    return 0;
}

size_t pt_scope_actions_format(unsigned actions, char *buf, size_t size)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{PT_ACTION_PULL, "pull"}, {PT_ACTION_PUSH, "push"}, {PT_ACTION_DELETE, "delete"}};
    size_t len = 0, i;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        size_t nl;
        if (!(actions & names[i].bit))
            continue;
        if (len > 0) {
            if (len + 1 < size)
                buf[len] = ',';
            len++;
        }
        nl = strlen(names[i].name);
        if (len < size)
            memcpy(buf + len, names[i].name, len + nl < size ? nl : size - len - 1);
        len += nl;
    }
    if (size > 0)
        buf[len < size ? len : size - 1] = '\0';
    return len;
}

int pt_scope_format(const char *repo, size_t len, unsigned actions, char *out, size_t size)
{
    static const char prefix[] = "repository:";
    char acts[32];
    size_t al, total;

    if (pt_name_validate(repo, len) != 0)
        return PT_E_NAME_INVALID;
    if (!(actions & PT_ACTIONS_DOCKER_ALL))
        actions = PT_ACTION_PULL;
    al = pt_scope_actions_format(actions, acts, sizeof(acts));
    total = sizeof(prefix) - 1 + len + 1 + al;
    if (total + 1 > size)
        return PT_E_TOO_LARGE;
    memcpy(out, prefix, sizeof(prefix) - 1);
    memcpy(out + sizeof(prefix) - 1, repo, len);
    out[sizeof(prefix) - 1 + len] = ':';
    memcpy(out + sizeof(prefix) + len, acts, al);
    out[total] = '\0';
    return (int)total;
}
