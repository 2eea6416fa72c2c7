/*
 * fuzz_framing.c - libFuzzer driver for node/http/framing.h.
 *
 * Input layout: the whole input is the raw request head, handed over as an unterminated heap
 * copy of exactly its length, so AddressSanitizer sees any read past its end.
 *
 * The result is compared with a reference written here from framing.h's contract alone: the
 * head is split into lines first (a copy with the "\r" of each "\r\n" dropped), the blank line
 * ends it, and Content-Length / Transfer-Encoding lines are collected by name. Beyond agreeing
 * with it: the answer is 0 or 1, and it does not change when bytes are appended after a
 * blank line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "framing.h"
#include "fuzz_check.h"

static void trim(const char **v, const char **end)
{
    while (*v < *end && (**v == ' ' || **v == '\t'))
        (*v)++;
    while (*end > *v && ((*end)[-1] == ' ' || (*end)[-1] == '\t' || (*end)[-1] == '\r'))
        (*end)--;
}

static int reference(const char *head, size_t len)
{
    size_t start = 0, cl = 0, te = 0, line_no = 0;
    const char *first = NULL;
    size_t first_len = 0;
    int differ = 0;
    while (start < len) {
        size_t stop = start;
        while (stop < len && head[stop] != '\n')
            stop++;
        size_t n = stop - start;
        const char *line = head + start;
        int last = stop >= len;
        if (line_no++ > 0) {
            if (n == 0 || (n == 1 && line[0] == '\r'))
                break;
            const char *colon = memchr(line, ':', n);
            if (colon != NULL) {
                size_t nlen = (size_t)(colon - line);
                const char *v = colon + 1, *end = line + n;
                trim(&v, &end);
                size_t vlen = (size_t)(end - v);
                if (nlen == 17 && strncasecmp(line, "transfer-encoding", 17) == 0) {
                    te++;
                } else if (nlen == 14 && strncasecmp(line, "content-length", 14) == 0) {
                    if (memchr(v, ',', vlen) != NULL)
                        differ = 1;
                    if (cl++ == 0) {
                        first = v;
                        first_len = vlen;
                    } else if (vlen != first_len || memcmp(v, first, vlen) != 0) {
                        differ = 1;
                    }
                }
            }
        }
        if (last)
            break;
        start = stop + 1;
    }
    return differ || (cl > 0 && te > 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *head = malloc(size + 64);
    if (head == NULL)
        return 0;
    memcpy(head, data, size);
    int got = pt_http_framing_ambiguous(size > 0 ? head : NULL, size);
    PT_FUZZ_CHECK(got == 0 || got == 1);
    PT_FUZZ_CHECK(got == reference(head, size));
    /* Whatever follows the blank line is body and changes nothing. */
    const char *blank = NULL;
    for (size_t i = 0; i + 1 < size && blank == NULL; i++) {
        if (head[i] == '\n' &&
            (head[i + 1] == '\n' || (i + 2 < size && head[i + 1] == '\r' && head[i + 2] == '\n')))
            blank = head + i;
    }
    if (blank != NULL && memchr(head, '\n', (size_t)(blank - head)) != NULL) {
        char *more = malloc(size + 40);
        if (more != NULL) {
            memcpy(more, head, size);
            memcpy(more + size, "\r\nContent-Length: 9\r\nTransfer-Encoding: x", 40);
            PT_FUZZ_CHECK(pt_http_framing_ambiguous(more, size + 40) == got);
            free(more);
        }
    }
    free(head);
    return 0;
}
