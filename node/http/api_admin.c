/*
 * api_admin.c - operator endpoints under /admin/ (the contract `portolan cluster` relies on,
 * written down in node/cli.c):
 *   GET /admin/cluster          the configured regions and this region's status
 *   GET /admin/cluster/self     this region's status: role, term, commit and applied index,
 *                               leader, last contact with it
 *   GET /admin/replication      this region's blob replication status (replication/blob_sync.c)
 *   GET /admin/replication/image?name=&reference=   which regions hold every blob of an image
 *   GET /admin/state-digest     SHA-256 over every replicated column family, with the applied
 *                               index: equal in regions that have applied the same log
 *   POST /admin/cluster/regions {"id","address","role"?,"name"?,"url"?}   add a region (leader)
 *   DELETE /admin/cluster/regions/<id>                                   remove a region (leader)
 *   POST /admin/cluster/transfer-leader {"id"?}                           hand over leadership
 *   POST /admin/backup          a consistent backup of this region into <data>/backups/<name>
 *                               (store/backup.h), in the thread pool, one at a time (else 429):
 *                               201 {"name","path","applied_index","blobs","blob_bytes",
 *                               "missing_blobs"}; audited like every admin request
 *   GET /admin/gc, POST /admin/gc[?dry_run=true]   garbage collection of blobs (gc.h)
 *   /admin/locks, /admin/tag-rules, /admin/retention[/run]   locks, immutable tags and
 *                               retention (api_policy.c)
 * Membership changes run on the leader; elsewhere they answer 503 UNAVAILABLE naming the
 * leader's region in the detail.
 * The status comes from the committer thread (which owns Raft) as JSON text; the digest reads
 * the whole metadata store, so it runs in the thread pool.
 */
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_common.h"
#include "api_quota.h"
#include "async.h"
#include "backup.h"
#include "clock.h"
#include "log.h"
#include "addr.h"
#include "admin_api.h"
#include "cluster_config.h"
#include "ident.h"
#include "committer.h"
#include "err.h"
#include "gc.h"
#include "http.h"
#include "metastore.h"
#include "query.h"
#include "worker.h"

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

/* A single region holds every blob it serves: always in sync, nothing moves. */
static void single_region_replication(struct pt_worker *w, h2o_req_t *req)
{
    json_t *o = json_pack("{s:s,s:b,s:i,s:i,s:f,s:[],s:i,s:i,s:i,s:i,s:i,s:i}", "region",
                          w->node->cfg.region, "in_sync", 1, "blobs_behind", 0, "bytes_behind", 0,
                          "oldest_missing_age_s", 0.0, "active", "queue", 0, "bytes_received_total",
                          0, "bytes_sent_total", 0, "blobs_fetched_total", 0,
                          "verify_failures_total", 0, "resumed_total", 0);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (text == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    pt_http_send(req, 200, "application/json", text, strlen(text));
    free(text);
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

/* POST /admin/backup --------------------------------------------------------------------- */

static _Atomic int backup_running; /* one backup at a time, node-wide */

struct backup_op {
    uv_work_t work;
    struct pt_async async;
    struct pt_node *node;
    int64_t now_ms;
    int status;
    struct pt_backup_result result;
};

static void backup_work(uv_work_t *work)
{
    struct backup_op *op = work->data;
    op->status = pt_backup_create(op->node->ms, op->node->bs, op->node->cfg.data_dir,
                                  op->node->cfg.region, op->now_ms, &op->result);
}

static void backup_after(uv_work_t *work, int status)
{
    struct backup_op *op = work->data;
    atomic_store(&backup_running, 0);
    h2o_req_t *req = pt_async_unbind(&op->async);
    if (status != 0 || op->status != 0)
        pt_log(PT_LOG_ERROR, "backup failed", "{s:s}", "error",
               pt_err_message(op->status != 0 ? op->status : PT_E_INTERNAL));
    if (req != NULL && (status != 0 || op->status != 0)) {
        pt_http_error(req, op->status != 0 ? op->status : PT_E_INTERNAL, "backup failed", NULL);
    } else if (req != NULL) {
        char path[4200];
        snprintf(path, sizeof path, "%s/backups/%s", op->node->cfg.data_dir, op->result.name);
        json_t *o =
            json_pack("{s:s,s:s,s:I,s:I,s:I,s:I}", "name", op->result.name, "path", path,
                      "applied_index", (json_int_t)op->result.applied_index, "blobs",
                      (json_int_t)op->result.blobs, "blob_bytes", (json_int_t)op->result.blob_bytes,
                      "missing_blobs", (json_int_t)op->result.missing_blobs);
        char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
        json_decref(o);
        if (text == NULL)
            pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        else
            pt_http_send(req, 201, "application/json", text, strlen(text));
        free(text);
    }
    free(op);
}

static void backup(struct pt_worker *w, h2o_req_t *req)
{
    if (atomic_exchange(&backup_running, 1)) {
        pt_http_error(req, PT_E_TOOMANYREQUESTS, "a backup is already running", NULL);
        return;
    }
    struct backup_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        atomic_store(&backup_running, 0);
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    op->node = w->node;
    op->now_ms = pt_clock_wall_ms();
    op->work.data = op;
    pt_async_bind(&op->async, req);
    if (uv_queue_work(&w->loop, &op->work, backup_work, backup_after) != 0) {
        atomic_store(&backup_running, 0);
        pt_async_unbind(&op->async);
        free(op);
        pt_http_error(req, PT_E_INTERNAL, NULL, NULL);
    }
}

#define ADMIN_BODY_MAX 4096

static void on_changed(h2o_req_t *req, struct pt_proposal *p, void *data)
{
    (void)data;
    if (p->status != 0) {
        const char *msg =
            p->status == PT_E_UNAVAILABLE ? "not the leader, or the change could not be committed: "
                                            "send it to the leader (see /admin/cluster/self)"
            : p->status == PT_E_TOOMANYREQUESTS ? "another membership change is in progress"
                                                : NULL;
        pt_http_error(req, p->status, msg, NULL);
        return;
    }
    if (p->kind == PT_JOB_ADD) {
        char body[96];
        int n = snprintf(body, sizeof(body), "{\"id\":%llu}", (unsigned long long)p->target);
        pt_http_send(req, 201, "application/json", body, (size_t)n);
    } else {
        pt_http_send_empty(req, 202);
    }
}

/* Parses the request body as a JSON object; sends the error itself on failure. */
static json_t *body_json(h2o_req_t *req)
{
    size_t len = req->entity.base != NULL ? req->entity.len : 0;
    if (len > ADMIN_BODY_MAX) {
        pt_http_error(req, PT_E_TOO_LARGE, NULL, NULL);
        return NULL;
    }
    json_t *o =
        len > 0 ? json_loadb(req->entity.base, len, JSON_REJECT_DUPLICATES, NULL) : json_object();
    if (!json_is_object(o)) {
        json_decref(o);
        pt_http_error(req, PT_E_UNSUPPORTED, "the body must be a JSON object", NULL);
        return NULL;
    }
    return o;
}

/* A missing role means voter. */
static int parse_role(const char *s, int *role)
{
    if (s == NULL) {
        *role = PT_CLUSTER_VOTER;
        return 0;
    }
    return pt_ident_parse_role(s, role);
}

static void add_region(struct pt_worker *w, h2o_req_t *req)
{
    json_t *o = body_json(req);
    if (o == NULL)
        return;
    json_t *id = json_object_get(o, "id");
    const char *address = json_string_value(json_object_get(o, "address"));
    const char *why = NULL;
    int role;
    if (!json_is_integer(id) || json_integer_value(id) <= 0) {
        pt_http_error(req, PT_E_UNSUPPORTED, "id must be a positive integer", NULL);
    } else if (address == NULL || pt_addr_check_peer(address, &why) != 0) {
        pt_http_error(req, PT_E_UNSUPPORTED, "address must be host:port", why);
    } else if (parse_role(json_string_value(json_object_get(o, "role")), &role) != 0) {
        pt_http_error(req, PT_E_UNSUPPORTED, "role must be voter, standby or spare", NULL);
    } else {
        const char *name = json_string_value(json_object_get(o, "name"));
        const char *url = json_string_value(json_object_get(o, "url"));
        struct pt_region_rec *r = calloc(1, sizeof(*r));
        if (r == NULL || (name != NULL && strlen(name) >= sizeof(r->name)) ||
            (url != NULL && strlen(url) >= sizeof(r->url))) {
            free(r);
            pt_http_error(req, PT_E_UNSUPPORTED, "name or url too long", NULL);
        } else {
            r->id = (uint64_t)json_integer_value(id);
            snprintf(r->name, sizeof(r->name), "%s", name != NULL ? name : "");
            snprintf(r->address, sizeof(r->address), "%s", address);
            snprintf(r->url, sizeof(r->url), "%s", url != NULL ? url : "");
            if (pt_api_job_member(w, req, PT_JOB_ADD, r, sizeof(*r), r->id, role, on_changed) != 0)
                pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        }
    }
    json_decref(o);
}

static void transfer_leader(struct pt_worker *w, h2o_req_t *req)
{
    json_t *o = body_json(req);
    if (o == NULL)
        return;
    json_t *id = json_object_get(o, "id");
    if (id != NULL && (!json_is_integer(id) || json_integer_value(id) < 0))
        pt_http_error(req, PT_E_UNSUPPORTED, "id must be a positive integer", NULL);
    else if (pt_api_job_member(w, req, PT_JOB_TRANSFER, NULL, 0,
                               id != NULL ? (uint64_t)json_integer_value(id) : 0, 0,
                               on_changed) != 0)
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
    json_decref(o);
}

static void remove_region(struct pt_worker *w, h2o_req_t *req, const char *id_text, size_t len)
{
    uint64_t id = 0;
    for (size_t i = 0; i < len; i++) {
        if (id_text[i] < '0' || id_text[i] > '9' || id > (UINT64_MAX - 9) / 10) {
            pt_http_error(req, PT_E_NOT_FOUND, NULL, NULL);
            return;
        }
        id = id * 10 + (uint64_t)(id_text[i] - '0');
    }
    if (len == 0 || id == 0) {
        pt_http_error(req, PT_E_NOT_FOUND, NULL, NULL);
        return;
    }
    if (pt_api_job_member(w, req, PT_JOB_REMOVE, NULL, 0, id, 0, on_changed) != 0)
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
}

/* GET /admin/gc: the collector's state; POST /admin/gc[?dry_run=true]: a pass now (202 with
 * the state; 409 EXISTS when one runs). */
static int gc_start(void *gc, int dry_run)
{
    return pt_gc_request(gc, dry_run);
}

static char *gc_status(void *gc)
{
    return pt_gc_status_json(gc);
}

static void gc_route(struct pt_worker *w, h2o_req_t *req)
{
    pt_api_job_route(req, w->node->gc, gc_start, gc_status, "a garbage collection pass is running");
}

void pt_api_admin(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    static const char regions[] = "cluster/regions/";
    if (pt_api_policy_admin(w, req, rt) || pt_api_auth_admin(w, req, rt))
        return;
    if (pt_api_quota_admin(w, req, rt))
        return;
    if (ref_is(rt, "cluster/regions") && pt_http_method_is(req, "POST")) {
        add_region(w, req);
        return;
    }
    if (ref_is(rt, PT_ADMIN_BACKUP) && pt_http_method_is(req, "POST")) {
        backup(w, req);
        return;
    }
    if (ref_is(rt, "cluster/transfer-leader") && pt_http_method_is(req, "POST")) {
        transfer_leader(w, req);
        return;
    }
    if (rt->ref_len > sizeof(regions) - 1 && memcmp(rt->ref, regions, sizeof(regions) - 1) == 0 &&
        pt_http_method_is(req, "DELETE")) {
        remove_region(w, req, rt->ref + sizeof(regions) - 1, rt->ref_len - (sizeof(regions) - 1));
        return;
    }
    if (ref_is(rt, PT_ADMIN_GC)) {
        gc_route(w, req);
        return;
    }
    if (ref_is(rt, "replication/image")) {
        pt_api_replication_image(w, req);
        return;
    }

    int get = pt_http_method_is(req, "GET") || pt_http_is_head(req);
    int kind = -1;
    if (ref_is(rt, "cluster"))
        kind = PT_JOB_MEMBERS;
    else if (ref_is(rt, "cluster/self"))
        kind = PT_JOB_STATUS;
    else if (ref_is(rt, "replication"))
        kind = PT_JOB_REPLICATION;
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
    if (kind == PT_JOB_REPLICATION && !pt_committer_is_cluster(w->node->committer)) {
        single_region_replication(w, req);
        return;
    }
    if (pt_api_job(w, req, kind, NULL, 0, on_status, NULL, 0) != 0)
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
}
