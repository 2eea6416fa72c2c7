/*
 * async.c - request-bound asynchronous operations (see async.h).
 */
#include "async.h"

static void on_pool_dispose(void *p)
{
    struct pt_async **anchor = p;
    if (*anchor != NULL) {
        (*anchor)->req = NULL;
        (*anchor)->anchor = NULL;
    }
}

void pt_async_bind(struct pt_async *a, h2o_req_t *req)
{
    a->req = req;
    a->anchor = h2o_mem_alloc_shared(&req->pool, sizeof(*a->anchor), on_pool_dispose);
    *a->anchor = a;
}

h2o_req_t *pt_async_unbind(struct pt_async *a)
{
    h2o_req_t *req = a->req;
    if (a->anchor != NULL)
        *a->anchor = NULL;
    a->anchor = NULL;
    a->req = NULL;
    return req;
}
