/*
 * api_common.c - shared handler plumbing: committer jobs on behalf of a request, commands
 * proposed for it, linearizable tag reads and the catch-up of a read by digest.
 */
#include "api_common.h"

#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "api.h"
#include "async.h"
#include "clock.h"
#include "blob_sync.h"
#include "command.h"
#include "committer.h"
#include "diskspace.h"
#include "err.h"
#include "http.h"
#include "query.h"
#include "worker.h"

struct job_op {
    struct pt_async async;
    struct pt_proposal proposal;
    struct pt_worker *w;
    pt_api_job_cb cb;
    _Alignas(max_align_t) unsigned char data[];
};

char *pt_api_name(h2o_req_t *req, const struct pt_route *rt)
{
    char *s = h2o_mem_alloc_pool(&req->pool, rt->name_len + 1);
    memcpy(s, rt->name, rt->name_len);
    s[rt->name_len] = '\0';
    return s;
}

static void on_job_done(struct pt_proposal *p)
{
    struct job_op *op = (struct job_op *)((char *)p - offsetof(struct job_op, proposal));
    h2o_req_t *req = pt_async_unbind(&op->async);
    if (req != NULL)
        op->cb(req, p, op->data);
    if (p->kind == PT_JOB_BLOB_FEED)
        pt_blob_feed_release(p->out); /* not taken: the request went away */
    free(p->text);
    free(op);
}

static int submit_job(struct pt_worker *w, h2o_req_t *req, int kind, void *buf, size_t len,
                      uint64_t target, int role, pt_api_job_cb cb, const void *data,
                      size_t data_size)
{
    struct job_op *op = malloc(sizeof(*op) + data_size);
    if (op == NULL) {
        free(buf);
        return PT_E_NOMEM;
    }
    memset(&op->proposal, 0, sizeof(op->proposal));
    op->w = w;
    op->cb = cb;
    if (data_size > 0)
        memcpy(op->data, data, data_size);
    pt_async_bind(&op->async, req);
    op->proposal.reply_to = &w->mailbox;
    op->proposal.done_cb = on_job_done;
    op->proposal.kind = kind;
    op->proposal.buf = buf;
    op->proposal.len = len;
    op->proposal.target = target;
    op->proposal.role = role;
    pt_committer_submit(w->node->committer, &op->proposal);
    return 0;
}

int pt_api_job(struct pt_worker *w, h2o_req_t *req, int kind, void *buf, size_t len,
               pt_api_job_cb cb, const void *data, size_t data_size)
{
    return submit_job(w, req, kind, buf, len, 0, 0, cb, data, data_size);
}

int pt_api_job_target(struct pt_worker *w, h2o_req_t *req, int kind, void *buf, size_t len,
                      uint64_t target, pt_api_job_cb cb, const void *data, size_t data_size)
{
    return submit_job(w, req, kind, buf, len, target, 0, cb, data, data_size);
}

int pt_api_job_member(struct pt_worker *w, h2o_req_t *req, int kind, void *buf, size_t len,
                      uint64_t target, int role, pt_api_job_cb cb)
{
    return submit_job(w, req, kind, buf, len, target, role, cb, NULL, 0);
}

struct commit_data {
    pt_api_commit_cb cb;
    _Alignas(max_align_t) unsigned char data[];
};

static void on_committed(h2o_req_t *req, struct pt_proposal *p, void *data)
{
    struct commit_data *cd = data;
    cd->cb(req, p->status, cd->data);
}

int pt_api_command(struct pt_worker *w, struct pt_command_builder *b)
{
    return pt_command_builder_init(b, pt_clock_wall_ms(), w->node->cfg.region);
}

int pt_api_commit(struct pt_worker *w, h2o_req_t *req, struct pt_command_builder *b, int added,
                  pt_api_commit_cb cb, const void *data, size_t data_size)
{
    void *buf;
    size_t len;
    int rv = added != 0 ? added : pt_command_builder_encode(b, &buf, &len);
    pt_command_builder_free(b);
    if (rv != 0)
        return rv;
    /* Below the free-space reserve no metadata write starts: RocksDB must never meet ENOSPC. */
    if (pt_disk_low(len)) {
        free(buf);
        return PT_E_DISK_FULL;
    }
    /* The caller's data travels behind the callback in the job's own copy. */
    struct commit_data *cd = malloc(sizeof(*cd) + data_size);
    if (cd == NULL) {
        free(buf);
        return PT_E_NOMEM;
    }
    cd->cb = cb;
    if (data_size > 0)
        memcpy(cd->data, data, data_size);
    rv = pt_api_job(w, req, PT_JOB_PROPOSE, buf, len, on_committed, cd, sizeof(*cd) + data_size);
    free(cd);
    return rv;
}

struct tag_read {
    struct pt_route rt;
    pt_api_read_cb cont;
    const char *unconfirmed; /* a catch-up whose read index failed: 503 with this message */
};

static void on_read_index(h2o_req_t *req, struct pt_proposal *p, void *data)
{
    struct tag_read *tr = data;
    struct pt_worker *w = pt_worker_of(req);
    if (p->status != 0) {
        if (!w->node->cfg.stale_fallback) {
            pt_http_error(req, PT_E_UNAVAILABLE,
                          "no quorum: this region cannot confirm the latest tags", NULL);
            return;
        }
        static const char warning[] = "110 - \"stale: no quorum\"";
        pt_http_header(req, "Warning", warning, sizeof(warning) - 1);
    }
    tr->cont(w, req, &tr->rt);
}

static void on_caught_up(h2o_req_t *req, struct pt_proposal *p, void *data)
{
    struct tag_read *tr = data;
    if (p->status != 0 && tr->unconfirmed != NULL) {
        pt_http_error(req, PT_E_UNAVAILABLE, tr->unconfirmed, NULL);
        return;
    }
    tr->cont(pt_worker_of(req), req, &tr->rt);
}

int pt_api_catch_up(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                    const char *digest, pt_api_read_cb cont)
{
    if (!pt_committer_is_cluster(w->node->committer))
        return -1;
    struct tag_read tr = {.rt = *rt, .cont = cont};
    if (digest == NULL) {
        /* the leader's state must confirm a miss before the client hears of it */
        tr.unconfirmed = "no quorum: this region cannot confirm with the leader that the "
                         "referenced blobs or manifests are unknown";
        return pt_api_job(w, req, PT_JOB_READ_INDEX, NULL, 0, on_caught_up, &tr, sizeof(tr)) == 0
                   ? 0
                   : -1;
    }
    /* "repo\0digest": the committer ends the wait as soon as that arrives */
    size_t rlen = rt->name_len, dlen = strlen(digest);
    char *key = malloc(rlen + 1 + dlen + 1);
    if (key == NULL)
        return -1;
    memcpy(key, rt->name, rlen);
    key[rlen] = '\0';
    memcpy(key + rlen + 1, digest, dlen + 1);
    return pt_api_job(w, req, PT_JOB_CATCH_UP, key, rlen + 1 + dlen + 1, on_caught_up, &tr,
                      sizeof(tr)) == 0
               ? 0
               : -1;
}

void pt_api_tag_read(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                     pt_api_read_cb cont)
{
    if (!pt_committer_is_cluster(w->node->committer) ||
        w->node->cfg.tag_reads != PT_TAG_READS_LINEARIZABLE) {
        cont(w, req, rt);
        return;
    }
    struct tag_read tr = {.rt = *rt, .cont = cont};
    if (pt_api_job(w, req, PT_JOB_READ_INDEX, NULL, 0, on_read_index, &tr, sizeof(tr)) != 0)
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
}

void pt_api_job_route(h2o_req_t *req, void *job, int (*start)(void *job, int dry_run),
                      char *(*status)(void *job), const char *busy)
{
    int post = pt_http_method_is(req, "POST");
    if (!post && !pt_http_method_is(req, "GET") && !pt_http_is_head(req)) {
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
        return;
    }
    if (post) {
        h2o_iovec_t q = pt_http_query(req);
        char v[8] = "";
        int n = pt_query_get(q.base, q.len, "dry_run", 0, v, sizeof(v));
        int dry = n >= 0 && (strcmp(v, "true") == 0 || strcmp(v, "1") == 0);
        if (n != PT_E_NOT_FOUND && !dry &&
            (n < 0 || (strcmp(v, "false") != 0 && strcmp(v, "0") != 0))) {
            pt_http_error(req, PT_E_INVALID, "dry_run must be true or false", NULL);
            return;
        }
        int rv = start(job, dry);
        if (rv != 0) {
            pt_http_error(req, rv, busy, NULL);
            return;
        }
    }
    char *text = status(job);
    if (text == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    pt_http_send(req, post ? 202 : 200, "application/json", text, strlen(text));
    free(text);
}
