/*
 * routes.c - route -> handler table (routes.h). Each resource's handler lives in its own
 * api_*.c (CNCF Distribution's layout: routes declared apart from handlers).
 */
#include "routes.h"

#include "api.h"
#include "err.h"
#include "http.h"

typedef void (*handler_fn)(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);

static const handler_fn handlers[PT_ROUTE__COUNT] = {
    [PT_ROUTE_BASE] = pt_api_base,       [PT_ROUTE_CATALOG] = pt_api_catalog,
    [PT_ROUTE_TAGS] = pt_api_tags,       [PT_ROUTE_MANIFEST] = pt_api_manifest,
    [PT_ROUTE_BLOB] = pt_api_blob,       [PT_ROUTE_UPLOADS] = pt_api_uploads,
    [PT_ROUTE_UPLOAD] = pt_api_upload,   [PT_ROUTE_REFERRERS] = pt_api_referrers,
    [PT_ROUTE_HEALTHZ] = pt_api_healthz, [PT_ROUTE_READYZ] = pt_api_readyz,
    [PT_ROUTE_METRICS] = pt_api_metrics, [PT_ROUTE_ADMIN] = pt_api_admin,
    [PT_ROUTE_TOKEN] = pt_api_token,
};

void pt_routes_dispatch(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    handler_fn fn = (unsigned)rt->id < PT_ROUTE__COUNT ? handlers[rt->id] : NULL;

    if (fn == NULL) {
        pt_http_error(req, PT_E_NOT_FOUND, NULL, NULL);
        return;
    }
    fn(w, req, rt);
}
