/*
 * framing.c - request-smuggling check on a raw HTTP/1 head (see framing.h).
 *
 * Design: one pass over the lines after the request line, stopping at the blank line; only
 * Content-Length and Transfer-Encoding lines are looked at. The head is never copied.
 */
#include "framing.h"

#include <string.h>
#include <strings.h>

struct framing {
    unsigned content_length;
    unsigned transfer_encoding;
    int differ;
    const char *first;
    size_t first_len;
};

static void framing_line(struct framing *f, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    if (colon == NULL)
        return;
    size_t nlen = (size_t)(colon - line);
    const char *v = colon + 1, *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
        end--;
    if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
        f->transfer_encoding++;
    } else if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
        size_t vlen = (size_t)(end - v);
        if (memchr(v, ',', vlen) != NULL)
            f->differ = 1;
        if (f->content_length++ == 0) {
            f->first = v;
            f->first_len = vlen;
        } else if (vlen != f->first_len || memcmp(v, f->first, vlen) != 0) {
            f->differ = 1;
        }
    }
}

int pt_http_framing_ambiguous(const char *head, size_t len)
{
    if (head == NULL || len == 0)
        return 0;
    const char *end = head + len;
    struct framing f = {0};
    const char *nl = memchr(head, '\n', len); /* skips the request line */
    while (nl != NULL && nl + 1 < end) {
        const char *line = nl + 1;
        nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = (size_t)((nl != NULL ? nl : end) - line);
        if (n == 0 || (n == 1 && line[0] == '\r'))
            break; /* the blank line ends the head */
        framing_line(&f, line, n);
    }
    return f.differ || (f.content_length > 0 && f.transfer_encoding > 0);
}
