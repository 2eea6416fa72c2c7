/*
 * buf.h - the one growable byte buffer (encoders of records and snapshots, the metrics text,
 * an HTTP response body read by the client), and the one way a growable array grows.
 *
 * A struct pt_buf is embedded by its user and starts zeroed (or with realloc_fn set, for a
 * buffer that must come from another allocator, e.g. raft_malloc's). Appending doubles the
 * capacity as needed and always leaves room for one more byte, so a text user can terminate
 * it with a NUL. A failed allocation sets nomem and makes every later append a no-op, so an
 * encoder appends freely and checks once at the end. The buffer's memory belongs to its user
 * (free with the allocator's free, or take p over).
 *
 * Threads: one buffer, one thread at a time.
 */
#ifndef PT_BUF_H
#define PT_BUF_H

#include <stdbool.h>
#include <stddef.h>

struct pt_buf {
    unsigned char *p; /* len bytes written; NULL until the first append */
    size_t len, cap;
    bool nomem;                          /* an append failed: later appends do nothing */
    void *(*realloc_fn)(void *, size_t); /* NULL: realloc */
};

/* Makes room for extra more bytes (and one spare byte). Returns true, or false with nomem set
 * when that fails (b unchanged otherwise). */
bool pt_buf_reserve(struct pt_buf *b, size_t extra);

/* Appends src[0..n) (borrowed); sets nomem when it cannot. */
void pt_buf_append(struct pt_buf *b, const void *src, size_t n);

/*
 * Grows an array of elements of size bytes whose pointer is at arrp (a T ** passed as void *)
 * and whose capacity is *cap, when it is full: to first elements, then by doubling, never
 * beyond max (0: no bound but memory). Returns 0, or PT_E_NOMEM when the array cannot grow
 * (already max elements, or no memory); the array and *cap are then unchanged.
 */
int pt_array_grow(void *arrp, size_t *cap, size_t size, size_t first, size_t max);

#endif
