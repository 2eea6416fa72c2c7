/*
 * api_base.c - the small endpoints: /v2/ (distribution-spec end-1: the API version check),
 * /healthz (200 while the node serves) and /metrics (Prometheus text, base/metrics.h).
 *
 * /healthz answers 200 as long as the node serves (liveness): a disk below its free-space
 * reserve still serves reads, so it stays 200 and says so in its details:
 *   {"status":"ok","disk":{"state":"ok"|"low","free_bytes":N,"reserve_bytes":N}}
 * ("disk" only when the watcher watches a data directory, base/diskspace.h; with
 * "metadata":"read-only" when the metadata store could only be opened read-only).
 */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "diskspace.h"
#include "err.h"
#include "http.h"
#include "metastore.h"
#include "metrics.h"
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
