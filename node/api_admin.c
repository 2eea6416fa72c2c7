/*
 * api_admin.c - operator endpoints under /admin/ (the contract `portolan cluster` relies on,
 * written down in node/cli.c):
 *   GET /admin/cluster          the configured regions and this region's status
 *   GET /admin/cluster/self     this region's status: role, term, commit and applied index,
 *                               leader, last contact with it
 *   GET /admin/state-digest     SHA-256 over every replicated column family, with the applied
 *                               index: equal in regions that have applied the same log
 * The status comes from the committer thread (which owns Raft) as JSON text; the digest reads
 * the whole metadata store, so it runs in the thread pool.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_common.h"
#include "async.h"
#include "committer.h"
#include "err.h"
#include "http.h"
#include "metastore.h"
#include "node.h"

static int ref_is(const struct pt_route *rt, const char *s)
{
    return rt->ref_len == strlen(s) && memcmp(rt->ref, s, rt->ref_len) == 0;
}

static void on_status(h2o_req_t *req, struct pt_proposal *p, void *data)
{
    (void)data;
    if (p->status != 0 || p->text == NULL) {
        pt_http_error(req, p->status != 0 ? p->status : PT_E_NOMEM, NULL, NULL);
        return;
    }
    pt_http_send(req, 200, "application/json", p->text, strlen(p->text));
}

struct digest_op {
    struct pt_async async;
    uv_work_t work;
    struct pt_metastore *ms;
    int status;
    uint64_t applied;
    char hex[65];
};

static void digest_work(uv_work_t *work)
{
    struct digest_op *op = work->data;
    op->applied = pt_metastore_applied_index(op->ms);
    op->status = pt_metastore_state_digest(op->ms, op->hex);
}

static void digest_after(uv_work_t *work, int status)
{
    struct digest_op *op = work->data;
    h2o_req_t *req = pt_async_unbind(&op->async);
    if (req != NULL && (status != 0 || op->status != 0)) {
        pt_http_error(req, op->status != 0 ? op->status : PT_E_INTERNAL, NULL, NULL);
    } else if (req != NULL) {
        char body[160];
        int n = snprintf(body, sizeof(body), "{\"applied_index\":%llu,\"digest\":\"%s\"}",
                         (unsigned long long)op->applied, op->hex);
        pt_http_send(req, 200, "application/json", body, (size_t)n);
    }
    free(op);
}

static void state_digest(struct pt_worker *w, h2o_req_t *req)
{
    struct digest_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    op->ms = w->node->ms;
    op->work.data = op;
    pt_async_bind(&op->async, req);
    uv_queue_work(&w->loop, &op->work, digest_work, digest_after);
}

void pt_api_admin(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    int get = pt_http_method_is(req, "GET") || pt_http_is_head(req);
    int kind = -1;
    if (ref_is(rt, "cluster"))
        kind = PT_JOB_MEMBERS;
    else if (ref_is(rt, "cluster/self"))
        kind = PT_JOB_STATUS;
    else if (ref_is(rt, "state-digest") && get) {
        state_digest(w, req);
        return;
    }
    if (kind < 0) {
        pt_http_error(req, PT_E_NOT_FOUND, NULL, NULL);
        return;
    }
    if (!get) {
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
        return;
    }
    if (pt_api_job(w, req, kind, NULL, 0, on_status, NULL, 0) != 0)
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
}
