/*
 * async.h - ties asynchronous work (thread-pool jobs, proposals) to an h2o request that may
 * go away before the work finishes.
 *
 * A handler that answers later embeds struct pt_async in a malloc'd operation and binds it
 * to the request. If the client disconnects, h2o disposes the request's pool, which clears
 * op->async.req; the operation's completion (always on the same loop thread) then sees NULL,
 * skips the response and just frees the operation. The operation is therefore never freed
 * by the request and the request is never touched after it is gone.
 */
#ifndef PT_ASYNC_H
#define PT_ASYNC_H

#define H2O_USE_LIBUV 1
#include <h2o.h>

struct pt_async {
    h2o_req_t *req;           /* NULL once the request is gone; loop thread only */
    struct pt_async **anchor; /* slot in req's pool that points back here */
};

/* Binds a to req (loop thread). */
void pt_async_bind(struct pt_async *a, h2o_req_t *req);
/* Detaches a from its request (if still alive) and returns the request or NULL. After this
 * the operation may be freed without the request noticing. */
h2o_req_t *pt_async_unbind(struct pt_async *a);

#endif
