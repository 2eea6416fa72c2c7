/*
 * api_base.c - the small endpoints: /v2/ (distribution-spec end-1: the API version check),
 * /healthz (200 while the node serves) and /metrics (Prometheus text, base/metrics.h).
 */
#include <stdlib.h>

#include "api.h"
#include "err.h"
#include "http.h"
#include "metrics.h"

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
