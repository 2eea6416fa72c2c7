/*
 * audit_hook.c - audit records from HTTP requests (audit_hook.h).
 *
 * Finished writes are recognised at the end of the request from route, method and final
 * status, the way Distribution's notifications do it from its handlers' outcomes:
 *   PUT manifests/<ref>            201  -> "push"   (reference: the tag or digest)
 *   DELETE manifests/<ref>         202  -> "delete" (a tag or a manifest)
 *   PUT blobs/uploads/<id>?digest= 201  -> "push"   (reference: the blob digest)
 *   POST blobs/uploads/?digest=    201  -> "push"   (monolithic upload)
 *   POST blobs/uploads/?mount=     201  -> "mount"  (cross-repository mount)
 *   DELETE blobs/<digest>          202  -> "delete"
 *   POST|PUT|DELETE /admin/...     any  -> "admin <METHOD> <path>" with the status
 */
#include "audit_hook.h"

#include <stdio.h>
#include <string.h>

#include "audit.h"
#include "auth_gate.h"
#include "http.h"
#include "query.h"
#include "reference.h"
#include "worker.h"

void pt_http_audit(struct pt_worker *w, h2o_req_t *req, const char *action, const char *repo,
                   const char *ref, int status, const char *detail)
{
    if (w->node->audit == NULL)
        return;
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    char who[PT_AUTH_NAME_MAX + 16] = "anonymous";
    if (ctx != NULL)
        pt_auth_identity_text(&ctx->id, who, sizeof(who));
    struct pt_audit_event ev = {
        .identity = who,
        .client = ctx != NULL ? ctx->client : NULL,
        .action = action,
        .repository = repo,
        .reference = ref,
        .status = status,
        .request_id = ctx != NULL ? ctx->request_id : NULL,
        .detail = detail,
    };
    pt_audit_record(w->node->audit, &ev);
}

/* The decoded value of query parameter key into buf; NULL when absent or bad. */
static const char *query_value(h2o_req_t *req, const char *key, char *buf, size_t size)
{
    h2o_iovec_t q = pt_http_query(req);
    return pt_query_get(q.base, q.len, key, 0, buf, size) >= 0 ? buf : NULL;
}

void pt_http_audit_done(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    if (w->node->audit == NULL || pt_http_method_is(req, "GET") || pt_http_is_head(req))
        return;
    int status = req->res.status;
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    if (ctx != NULL && ctx->denied_action != NULL)
        return; /* recorded by the gate */
    char repo[PT_NAME_MAX + 1] = "", ref[PT_NAME_MAX + 1] = "";
    if (rt->name != NULL && rt->name_len < sizeof(repo))
        memcpy(repo, rt->name, rt->name_len), repo[rt->name_len] = '\0';
    if (rt->ref != NULL && rt->ref_len < sizeof(ref))
        memcpy(ref, rt->ref, rt->ref_len), ref[rt->ref_len] = '\0';
    int del = pt_http_method_is(req, "DELETE");
    char digest[256];
    switch (rt->id) {
    case PT_ROUTE_MANIFEST:
        if (!del && status == 201)
            pt_http_audit(w, req, "push", repo, ref, status, "manifest");
        else if (del && status == 202)
            pt_http_audit(w, req, "delete", repo, ref, status,
                          rt->ref_is_digest ? "manifest" : "tag");
        break;
    case PT_ROUTE_BLOB:
        if (del && status == 202)
            pt_http_audit(w, req, "delete", repo, ref, status, "blob");
        break;
    case PT_ROUTE_UPLOAD:
        if (pt_http_method_is(req, "PUT") && status == 201)
            pt_http_audit(w, req, "push", repo, query_value(req, "digest", digest, sizeof(digest)),
                          status, "blob");
        break;
    case PT_ROUTE_UPLOADS:
        if (status != 201)
            break;
        if (query_value(req, "mount", digest, sizeof(digest)) != NULL)
            pt_http_audit(w, req, "mount", repo, digest, status, "blob");
        else
            pt_http_audit(w, req, "push", repo, query_value(req, "digest", digest, sizeof(digest)),
                          status, "blob");
        break;
    case PT_ROUTE_ADMIN: {
        char action[96];
        snprintf(action, sizeof(action), "admin %.*s", (int)req->method.len, req->method.base);
        char path[300];
        snprintf(path, sizeof(path), "/admin/%s", ref);
        pt_http_audit(w, req, action, NULL, NULL, status, path);
        break;
    }
    default:
        break;
    }
}
