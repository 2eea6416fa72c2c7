/*
 * http.h - small response helpers shared by the API handlers.
 *
 * Every helper writes into req's memory pool, so nothing here needs freeing. A response is
 * started exactly once per request: after pt_http_send*, pt_http_error or pt_http_stream_*
 * the handler must not touch the response again.
 */
#ifndef PT_HTTP_H
#define PT_HTTP_H

#include <stddef.h>
#include <stdint.h>
#define H2O_USE_LIBUV 1
#include <h2o.h>

/* The headers every registry response carries. */
#define PT_HTTP_API_VERSION "registry/2.0"

/* OCI error response: {"errors":[{"code":..., "message":..., "detail":...}]} with err's HTTP
 * status (err.h). message NULL means err's default message; detail NULL omits it. A 503
 * UNAVAILABLE (no leader, no quorum: a state that an election or a healed link ends within
 * seconds) carries Retry-After: PT_HTTP_UNAVAILABLE_RETRY_AFTER; a 507 the disk's. */
#define PT_HTTP_UNAVAILABLE_RETRY_AFTER 1
void pt_http_error(h2o_req_t *req, int err, const char *message, const char *detail);

/* Adds a response header; name and value are copied into req's pool. */
void pt_http_header(h2o_req_t *req, const char *name, const char *value, size_t len);
void pt_http_headerf(h2o_req_t *req, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sends status with a body (copied into the pool). For HEAD requests only the headers go out,
 * with the Content-Length of the body. content_type may be NULL. */
void pt_http_send(h2o_req_t *req, int status, const char *content_type, const void *body,
                  size_t len);
/* Sends status with an empty body (Content-Length: 0). */
void pt_http_send_empty(h2o_req_t *req, int status);

/* Reason phrase for an HTTP status; static storage. */
const char *pt_http_reason(int status);

int pt_http_is_head(const h2o_req_t *req);
int pt_http_method_is(const h2o_req_t *req, const char *method);
/* Value of request header name (case-insensitive), or {NULL, 0}. Borrowed from req. */
h2o_iovec_t pt_http_req_header(const h2o_req_t *req, const char *name);

/* The query string of req without '?', or {"" , 0}. Borrowed from req. */
h2o_iovec_t pt_http_query(const h2o_req_t *req);

#endif
