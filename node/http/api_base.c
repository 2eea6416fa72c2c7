/*
 * api_base.c - the small endpoints: /v2/ (distribution-spec end-1: the API version check),
 * /healthz (200 while the node serves), /readyz (200 while it serves current data) and
 * /metrics (Prometheus text, base/metrics.h).
 *
 * /healthz answers 200 as long as the node serves (liveness): a disk below its free-space
 * reserve still serves reads, so it stays 200 and says so in its details:
 *   {"status":"ok","disk":{"state":"ok"|"low","free_bytes":N,"reserve_bytes":N}}
 * ("disk" only when the watcher watches a data directory, base/diskspace.h; with
 * "metadata":"read-only" when the metadata store could only be opened read-only).
 *
 * /readyz (readiness: may a load balancer send clients here?) answers 200 {"ready":true} or
 * 503 {"ready":false,"reason":"..."}; GET and HEAD, open like /healthz. Not ready, in this
 * order of precedence:
 *   - "draining": SIGTERM was received (server.c); the region finishes what it has and stops;
 *   - "store halted": a failed metadata write stopped this region applying (metastore.h);
 *   - "metadata read-only": the metadata store could only be opened read-only;
 *   - "disk below reserve": uploads and pushes would be refused here (base/diskspace.h),
 *     while another region with room takes them; reads keep working for clients that stay;
 *   - cluster, after start until caught up (raft_node.h): "no leader known yet", then
 *     "catching up with the leader": until this region has applied everything the leader
 *     had committed when the catch-up read began (a read index), so that a region restarted
 *     or added late never serves a state older than what clients already saw elsewhere.
 * Once caught up it stays ready while it runs, even without a leader (a partition, an
 * election): it keeps serving local reads (tag reads with the stale warning, or 503 as
 * stale_fallback says) and refuses writes with 503 UNAVAILABLE at once, which clients retry;
 * taking every region out of a Service in an election would turn a short write outage into
 * a full one. portolan_ready (metrics.h) mirrors the answer at each scrape.
 */
#include <jansson.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "api_quota.h"
#include "buf.h"
#include "diskspace.h"
#include "err.h"
#include "http.h"
#include "metastore.h"
#include "metrics.h"
#include "raft_node.h"
#include "worker.h"

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
    (void)rt;
    struct pt_disk_state d;
    pt_disk_sample(&d);
    json_t *root = json_pack("{s:s}", "status", "ok");
    json_t *disk = d.watching ? json_pack("{s:s,s:I,s:I}", "state", d.low ? "low" : "ok",
                                          "free_bytes", (json_int_t)d.free_bytes, "reserve_bytes",
                                          (json_int_t)d.reserve_bytes)
                              : NULL;
    if (disk != NULL && w->node->ms != NULL && pt_metastore_read_only(w->node->ms))
        json_object_set_new(disk, "metadata", json_string("read-only"));
    if (root != NULL && disk != NULL)
        json_object_set_new(root, "disk", disk);
    else
        json_decref(disk);
    char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    if (text == NULL) {
        pt_http_send(req, 200, "application/json", "{\"status\":\"ok\"}", 15);
        return;
    }
    pt_http_send(req, 200, "application/json", text, strlen(text));
    free(text);
}

int pt_api_ready(struct pt_node *node, const char **reason)
{
    struct pt_disk_state d;
    if (atomic_load(&node->draining)) {
        *reason = "draining";
        return 0;
    }
    if (node->ms != NULL && pt_metastore_halted(node->ms) != 0) {
        *reason = "store halted";
        return 0;
    }
    if (node->ms != NULL && pt_metastore_read_only(node->ms)) {
        *reason = "metadata read-only";
        return 0;
    }
    pt_disk_sample(&d);
    if (d.watching && d.low) {
        *reason = "disk below reserve";
        return 0;
    }
    switch (atomic_load(&node->progress)) {
    case PT_RAFT_CAUGHT_UP:
        *reason = NULL;
        return 1;
    case PT_RAFT_CATCHING_UP:
        *reason = "catching up with the leader";
        return 0;
    default:
        *reason = "no leader known yet";
        return 0;
    }
}

void pt_api_readyz(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    (void)rt;
    if (!pt_http_method_is(req, "GET") && !pt_http_is_head(req)) {
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
        return;
    }
    const char *reason;
    int ready = pt_api_ready(w->node, &reason);
    pt_metrics_ready(ready);
    char body[128];
    int len = ready ? snprintf(body, sizeof body, "{\"ready\":true}")
                    : snprintf(body, sizeof body, "{\"ready\":false,\"reason\":\"%s\"}", reason);
    pt_http_send(req, ready ? 200 : 503, "application/json", body, (size_t)len);
}

void pt_api_metrics(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    (void)rt;
    const char *reason;
    pt_metrics_ready(pt_api_ready(w->node, &reason));
    char *text;
    size_t len;
    if (pt_metrics_render(&text, &len) != 0) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    struct pt_buf b = {0};
    pt_buf_append(&b, text, len);
    free(text);
    pt_api_quota_metrics(w->node, &b); /* usage and quota series (api_quota.c) */
    if (b.nomem || b.p == NULL) {
        free(b.p);
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    pt_http_send(req, 200, "text/plain; version=0.0.4", b.p, b.len);
    free(b.p);
}
