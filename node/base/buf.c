/*
 * buf.c - the growable byte buffer (buf.h).
 */
#include "buf.h"

#include "err.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define BUF_MIN_CAP 256

bool pt_buf_reserve(struct pt_buf *b, size_t extra)
{
    if (b->nomem)
        return false;
    if (extra < b->cap - b->len) /* keeps one spare byte */
        return true;
    if (extra > SIZE_MAX / 2 - b->len - 1) {
        b->nomem = true;
        return false;
    }
    size_t cap = b->cap ? b->cap : BUF_MIN_CAP;
    while (cap - b->len <= extra)
        cap *= 2;
    void *p = b->realloc_fn != NULL ? b->realloc_fn(b->p, cap) : realloc(b->p, cap);
    if (p == NULL) {
        b->nomem = true;
        return false;
    }
    b->p = p;
    b->cap = cap;
    return true;
}

void pt_buf_append(struct pt_buf *b, const void *src, size_t n)
{
    if (!pt_buf_reserve(b, n))
        return;
    if (n > 0)
        memcpy(b->p + b->len, src, n);
    b->len += n;
}

int pt_array_grow(void *arrp, size_t *cap, size_t size, size_t first, size_t max)
{
    size_t ncap = *cap ? *cap * 2 : first;
    void *arr, *p;

    if (max != 0 && ncap > max)
        ncap = max;
    if (ncap <= *cap || ncap > SIZE_MAX / size)
        return PT_E_NOMEM;
    memcpy(&arr, arrp, sizeof arr);
    p = realloc(arr, ncap * size);
    if (p == NULL)
        return PT_E_NOMEM;
    memcpy(arrp, &p, sizeof p);
    *cap = ncap;
    return 0;
}
