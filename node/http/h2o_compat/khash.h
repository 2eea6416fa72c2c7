/*
 * khash.h - the names h2o 2.2.5's <h2o/http2_internal.h> takes from klib's khash.h, which the
 * Debian package does not install.
 *
 * Role: lets worker.c read the public fields of h2o_http2_conn_t and h2o_http2_stream_t (the
 * connection state, the write buffer, the stream state) to bound rapid-reset streams.
 * Design: the stream table is only ever reached through h2o's own code; here its type is left
 * incomplete and the lookup helpers are declared but never defined, so the one inline helper
 * of the header that walks the table compiles but cannot be linked if anything calls it.
 * Invariants: nothing in Portolan touches h2o_http2_conn_t::streams.
 */
#ifndef PT_H2O_COMPAT_KHASH_H
#define PT_H2O_COMPAT_KHASH_H

#include <stdint.h>

typedef uint32_t khint_t;
typedef khint_t khiter_t;

#define khash_t(name) kh_##name##_t

#define KHASH_MAP_INIT_INT64(name, khval_t)                                                        \
    typedef struct kh_##name##_s kh_##name##_t;                                                    \
    khint_t pt_kh_get_unavailable_##name(const kh_##name##_t *h, int64_t key);                     \
    khint_t pt_kh_end_unavailable_##name(const kh_##name##_t *h);                                  \
    khval_t pt_kh_val_unavailable_##name(const kh_##name##_t *h, khint_t i);

#define kh_get(name, h, k) pt_kh_get_unavailable_##name(h, k)
#define kh_end(h)          pt_kh_end_unavailable_h2o_http2_stream_t(h)
#define kh_val(h, i)       pt_kh_val_unavailable_h2o_http2_stream_t(h, i)

#endif
