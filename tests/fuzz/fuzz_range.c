/*
 * fuzz_range.c - libFuzzer driver for node/oci/range.h.
 *
 * Input layout: byte 0 picks the blob size offered to pt_range_parse (its low 4 bits index
 * sizes[] below, so the ASCII digits '0'..'9' and ':'..'?' select entries 0..15; entry 15
 * reads the size from the next 8 input bytes, little-endian). The rest is the header value,
 * handed to both parsers as an unterminated heap copy of exactly its length, so
 * AddressSanitizer sees any read past its end.
 *
 * Both parsers are compared with reference parsers written here from range.h's contract
 * alone, with compiler-checked overflow arithmetic instead of the library's cursor. Beyond
 * agreeing with them: outputs are untouched unless 0 is returned, a Content-Range gives
 * start <= end, and a Range gives start <= end < size.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fuzz_check.h"
#include "range.h"

#define SIZE_FROM_INPUT 15

static const uint64_t sizes[16] = {
    0,
    1,
    2,
    10,
    100,
    1000,
    4096,
    (uint64_t)1 << 20,
    (uint64_t)1 << 32,
    9007199254740991ull, /* 2^53 - 1, the largest size a manifest may declare */
    UINT64_MAX - 1,
    UINT64_MAX,
    7,
    65535,
    18446744073709551ull, /* UINT64_MAX / 1000: near the overflow edge of a decimal parse */
    0,                    /* SIZE_FROM_INPUT */
};

static const uint64_t sentinel = 0xa5a5a5a5a5a5a5a5ull;

/* 1 if s[*pos..len) starts with lit (lower case), ignoring ASCII case; advances past it. */
static int take_ci(const char *s, size_t len, size_t *pos, const char *lit)
{
    size_t n = strlen(lit);
    size_t i;

    if (len - *pos < n)
        return 0;
    for (i = 0; i < n; i++) {
        char c = s[*pos + i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != lit[i])
            return 0;
    }
    *pos += n;
    return 1;
}

static int take(const char *s, size_t len, size_t *pos, char ch)
{
    if (*pos < len && s[*pos] == ch) {
        (*pos)++;
        return 1;
    }
    return 0;
}

/* Reads 1*DIGIT; returns the digit count, with *v the value or UINT64_MAX and *big = 1 when it
 * does not fit. */
static size_t take_num(const char *s, size_t len, size_t *pos, uint64_t *v, int *big)
{
    size_t n = 0;
    uint64_t x = 0;

    *big = 0;
    while (*pos < len && s[*pos] >= '0' && s[*pos] <= '9') {
        uint64_t d = (uint64_t)(s[*pos] - '0');
        if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, d, &x))
            *big = 1;
        (*pos)++;
        n++;
    }
    *v = *big ? UINT64_MAX : x;
    return n;
}

static int ref_content_range(const char *s, size_t len, uint64_t *start, uint64_t *end)
{
    size_t pos = 0;
    uint64_t a, b, total;
    int big, rfc = 0;

    if (len == 0 || len > PT_RANGE_HEADER_MAX)
        return PT_E_RANGE_INVALID;
    if (take_ci(s, len, &pos, "bytes "))
        rfc = 1;
    else
        take_ci(s, len, &pos, "bytes=");
    if (take_num(s, len, &pos, &a, &big) == 0 || big)
        return PT_E_RANGE_INVALID;
    if (!take(s, len, &pos, '-'))
        return PT_E_RANGE_INVALID;
    if (take_num(s, len, &pos, &b, &big) == 0 || big || b < a)
        return PT_E_RANGE_INVALID;
    if (rfc) {
        if (!take(s, len, &pos, '/'))
            return PT_E_RANGE_INVALID;
        if (!take(s, len, &pos, '*') &&
            (take_num(s, len, &pos, &total, &big) == 0 || big || total <= b))
            return PT_E_RANGE_INVALID;
    }
    if (pos != len)
        return PT_E_RANGE_INVALID;
    *start = a;
    *end = b;
    return 0;
}

static int ref_range(const char *s, size_t len, uint64_t size, uint64_t *start, uint64_t *end)
{
    size_t pos = 0, na, nb;
    uint64_t a, b;
    int big;

    if (len > PT_RANGE_HEADER_MAX || !take_ci(s, len, &pos, "bytes="))
        return 1;
    na = take_num(s, len, &pos, &a, &big);
    if (!take(s, len, &pos, '-'))
        return 1;
    nb = take_num(s, len, &pos, &b, &big);
    if (pos != len || (na == 0 && nb == 0))
        return 1;
    if (na == 0) {
        if (b == 0 || size == 0)
            return PT_E_RANGE_INVALID;
        *start = b >= size ? 0 : size - b;
        *end = size - 1;
        return 0;
    }
    if (nb > 0 && b < a)
        return 1;
    if (a >= size)
        return PT_E_RANGE_INVALID;
    *start = a;
    *end = nb == 0 || b >= size ? size - 1 : b;
    return 0;
}

static void fuzz_content_range(const char *s, size_t len)
{
    uint64_t start = sentinel, end = sentinel;
    uint64_t rstart = 0, rend = 0;
    int rc, ref;

    rc = pt_content_range_parse(s, len, &start, &end);
    ref = ref_content_range(s, len, &rstart, &rend);
    PT_FUZZ_CHECK(rc == ref);
    if (rc != 0) {
        PT_FUZZ_CHECK(start == sentinel && end == sentinel);
        return;
    }
    PT_FUZZ_CHECK(start == rstart && end == rend);
    PT_FUZZ_CHECK(start <= end);
}

static void fuzz_range(const char *s, size_t len, uint64_t size)
{
    uint64_t start = sentinel, end = sentinel;
    uint64_t rstart = 0, rend = 0;
    int rc, ref;

    rc = pt_range_parse(s, len, size, &start, &end);
    ref = ref_range(s, len, size, &rstart, &rend);
    PT_FUZZ_CHECK(rc == ref);
    if (rc != 0) {
        PT_FUZZ_CHECK(start == sentinel && end == sentinel);
        return;
    }
    PT_FUZZ_CHECK(start == rstart && end == rend);
    PT_FUZZ_CHECK(start <= end && end < size);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint64_t blob_size;
    size_t skip = 1;
    size_t len;
    char *s;

    if (size < 1)
        return 0;
    blob_size = sizes[data[0] & 0x0f];
    if ((data[0] & 0x0f) == SIZE_FROM_INPUT) {
        size_t i;

        if (size < 9)
            return 0;
        blob_size = 0;
        for (i = 0; i < 8; i++)
            blob_size |= (uint64_t)data[1 + i] << (8 * i);
        skip = 9;
    }

    len = size - skip;
    s = malloc(len > 0 ? len : 1);
    if (s == NULL)
        return 0;
    memcpy(s, data + skip, len);

    fuzz_content_range(s, len);
    fuzz_range(s, len, blob_size);

    free(s);
    return 0;
}
