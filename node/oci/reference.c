/*
 * reference.c - matchers for repository names and tags.
 *
 * The name grammar reads as: one or more runs of [a-z0-9]+, each pair of runs joined by one
 * separator, where a separator is ".", "_", "__", one or more "-", or "/" (which starts a new
 * path component). Because every separator must be followed by a run, the matcher only needs
 * to alternate "run, separator, run, ..." and finish on a run; that also rules out empty
 * components ("a//b"), leading or trailing separators, "." and ".." components, and "___".
 */
#include "reference.h"

#include "err.h"

static int is_lower_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static int is_alnum(unsigned char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

int pt_name_validate(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;

    if (s == NULL || len == 0 || len > PT_NAME_MAX)
        return PT_E_NAME_INVALID;
    for (;;) {
        size_t start = i;

        /* a run of [a-z0-9]+ */
        while (i < len && is_lower_alnum(u[i]))
            i++;
        if (i == start)
            return PT_E_NAME_INVALID;
        if (i == len)
            return 0;
        /* a separator, which must be followed by another run */
        switch (u[i]) {
        case '/':
        case '.':
            i++;
            break;
        case '_':
            i++;
            if (i < len && u[i] == '_')
                i++;
            break;
        case '-':
            while (i < len && u[i] == '-')
                i++;
            break;
        default:
            return PT_E_NAME_INVALID;
        }
    }
}

int pt_tag_validate(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i;

    if (s == NULL || len == 0 || len > PT_TAG_MAX)
        return PT_E_TAG_INVALID;
    if (!is_alnum(u[0]) && u[0] != '_')
        return PT_E_TAG_INVALID;
    for (i = 1; i < len; i++) {
        if (!is_alnum(u[i]) && u[i] != '_' && u[i] != '.' && u[i] != '-')
            return PT_E_TAG_INVALID;
    }
    return 0;
}
