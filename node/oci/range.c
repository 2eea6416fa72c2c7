/*
 * range.c - Content-Range and Range header parsing.
 *
 * A small cursor walks the value; numbers are read with an explicit overflow check against
 * UINT64_MAX. The two headers differ in how they treat bad input: an upload's Content-Range
 * that cannot be read must fail the request (416 RANGE_INVALID, distribution-spec), while a
 * download's Range that cannot be read must be ignored (RFC 9110 section 14.2: "a server MAY
 * ignore the Range header field"), which is why pt_range_parse has a third outcome.
 */
#include "range.h"

#include <string.h>
#include <strings.h>

#include "err.h"

struct cursor {
    const char *s;
    size_t len;
    size_t pos;
};

static int at_end(const struct cursor *c)
{
    return c->pos == c->len;
}

static int eat(struct cursor *c, char ch)
{
    if (c->pos < c->len && c->s[c->pos] == ch) {
        c->pos++;
        return 1;
    }
    return 0;
}

static int eat_word_ci(struct cursor *c, const char *word)
{
    size_t n = strlen(word);
    if (c->len - c->pos >= n && strncasecmp(c->s + c->pos, word, n) == 0) {
        c->pos += n;
        return 1;
    }
    return 0;
}

enum num_result { NUM_NONE, NUM_OK, NUM_OVERFLOW };

/* Read 1*DIGIT into *v. On overflow all digits are still consumed and *v is UINT64_MAX. */
static enum num_result read_num(struct cursor *c, uint64_t *v)
{
    size_t start = c->pos;
    int overflow = 0;
    uint64_t x = 0;

    while (c->pos < c->len && c->s[c->pos] >= '0' && c->s[c->pos] <= '9') {
        unsigned d = (unsigned)(c->s[c->pos] - '0');
        if (x > (UINT64_MAX - d) / 10)
            overflow = 1;
        else
            x = x * 10 + d;
        c->pos++;
    }
    if (c->pos == start)
        return NUM_NONE;
    *v = overflow ? UINT64_MAX : x;
    return overflow ? NUM_OVERFLOW : NUM_OK;
}

int pt_content_range_parse(const char *s, size_t len, uint64_t *start, uint64_t *end)
{
    struct cursor c = {s, len, 0};
    uint64_t a, b, total;
    int rfc_form = 0;

    if (s == NULL || len == 0 || len > PT_RANGE_HEADER_MAX)
        return PT_E_RANGE_INVALID;
    if (eat_word_ci(&c, "bytes ")) {
        rfc_form = 1;
    } else if (eat_word_ci(&c, "bytes=")) {
        rfc_form = 0;
    }
    if (read_num(&c, &a) != NUM_OK || !eat(&c, '-') || read_num(&c, &b) != NUM_OK)
        return PT_E_RANGE_INVALID;
    if (rfc_form) {
        if (!eat(&c, '/'))
            return PT_E_RANGE_INVALID;
        if (!eat(&c, '*')) {
            if (read_num(&c, &total) != NUM_OK || total <= b)
                return PT_E_RANGE_INVALID;
        }
    }
    if (!at_end(&c) || b < a)
        return PT_E_RANGE_INVALID;
    *start = a;
    *end = b;
    return 0;
}

int pt_range_parse(const char *s, size_t len, uint64_t size, uint64_t *start, uint64_t *end)
{
    struct cursor c = {s, len, 0};
    uint64_t a = 0, b = 0;
    enum num_result ra, rb;

    if (s == NULL || len > PT_RANGE_HEADER_MAX)
        return 1;
    if (!eat_word_ci(&c, "bytes="))
        return 1;
    ra = read_num(&c, &a);
    if (!eat(&c, '-'))
        return 1;
    rb = read_num(&c, &b);
    if (!at_end(&c))
        return 1; /* trailing bytes, including ',' for several ranges */

    if (ra == NUM_NONE) {
        /* suffix-range: "-n", the last n bytes */
        if (rb == NUM_NONE)
            return 1;
        if (b == 0 || size == 0)
            return PT_E_RANGE_INVALID;
        *start = b >= size ? 0 : size - b;
        *end = size - 1;
        return 0;
    }
    /* int-range: "a-" or "a-b" (saturated values keep their meaning: see range.h) */
    if (rb != NUM_NONE && b < a)
        return 1;
    if (a >= size)
        return PT_E_RANGE_INVALID;
    *start = a;
    *end = (rb == NUM_NONE || b >= size) ? size - 1 : b;
    return 0;
}
