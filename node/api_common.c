/*
 * api_common.c - shared handler plumbing and the small endpoints: /v2/ (end-1), /healthz
 * and /metrics.
 */
#include "api_common.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "api.h"
#include "async.h"
#include "command.h"
#include "committer.h"
#include "err.h"
#include "http.h"
#include "metrics.h"
#include "node.h"

struct commit_op {
    struct pt_async async;
    struct pt_proposal proposal;
    pt_api_commit_cb cb;
    size_t data_size;
    _Alignas(max_align_t) unsigned char data[];
};

int64_t pt_api_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

char *pt_api_name(h2o_req_t *req, const struct pt_route *rt)
{
    char *s = h2o_mem_alloc_pool(&req->pool, rt->name_len + 1);
    memcpy(s, rt->name, rt->name_len);
    s[rt->name_len] = '\0';
    return s;
}

static void on_committed(struct pt_proposal *p)
{
    struct commit_op *op = (struct commit_op *)((char *)p - offsetof(struct commit_op, proposal));
    h2o_req_t *req = pt_async_unbind(&op->async);
    if (req != NULL)
        op->cb(req, p->status, op->data);
    free(op);
}

int pt_api_commit(struct pt_worker *w, h2o_req_t *req, Portolan__Command *cmd, pt_api_commit_cb cb,
                  const void *data, size_t data_size)
{
    cmd->version = PT_COMMAND_VERSION;
    cmd->time_ms = pt_api_now_ms();
    cmd->region = w->node->cfg.region;
    void *buf;
    size_t len;
    int rv = pt_command_encode(cmd, &buf, &len);
    if (rv != 0)
        return rv;
    struct commit_op *op = malloc(sizeof(*op) + data_size);
    if (op == NULL) {
        free(buf);
        return PT_E_NOMEM;
    }
    op->cb = cb;
    op->data_size = data_size;
    if (data_size > 0)
        memcpy(op->data, data, data_size);
    pt_async_bind(&op->async, req);
    op->proposal.reply_to = &w->mailbox;
    op->proposal.done_cb = on_committed;
    op->proposal.buf = buf;
    op->proposal.len = len;
    pt_committer_propose(w->node->committer, &op->proposal);
    return 0;
}

void pt_api_base(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    (void)w;
    (void)rt;
    if (!pt_http_method_is(req, "GET") && !pt_http_is_head(req)) {
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
        return;
    }
    pt_http_send(req, 200, "application/json", "{}", 2);
}

void pt_api_healthz(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    (void)w;
    (void)rt;
    pt_http_send(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
}

void pt_api_metrics(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    (void)w;
    (void)rt;
    char *text;
    size_t len;
    if (pt_metrics_render(&text, &len) != 0) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    pt_http_send(req, 200, "text/plain; version=0.0.4", text, len);
    free(text);
}
