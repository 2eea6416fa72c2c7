/*
 * tagglob.c - tag patterns (see tagglob.h): validation and an iterative glob match.
 */
#include "tagglob.h"

static int tag_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

int pt_tag_glob_valid(const char *p, size_t len)
{
    if (len == 0 || len > PT_TAG_GLOB_MAX)
        return 0;
    for (size_t i = 0; i < len; i++)
        if (!tag_char(p[i]) && p[i] != '*')
            return 0;
    return 1;
}

int pt_tag_glob_match(const char *p, size_t plen, const char *tag, size_t tlen)
{
    size_t pi = 0, ti = 0;
    size_t star = (size_t)-1, mark = 0; /* the last star seen and where its run began */
    while (ti < tlen) {
        if (pi < plen && p[pi] == '*') {
            star = pi++;
            mark = ti;
        } else if (pi < plen && p[pi] == tag[ti]) {
            pi++;
            ti++;
        } else if (star != (size_t)-1) {
            pi = star + 1; /* the star takes one more character */
            ti = ++mark;
        } else {
            return 0;
        }
    }
    while (pi < plen && p[pi] == '*')
        pi++;
    return pi == plen;
}
