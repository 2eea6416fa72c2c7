/*
 * api.h - the registry's HTTP handlers, one file per resource (api_*.c), called by the
 * dispatcher in server.c once the route is known and validated.
 *
 * Contract shared by every handler: the route (borrowed, pointing into req->path) has a
 * valid repository name and reference; the handler sends exactly one response, either before
 * returning or later from a callback on the same loop after checking that the request is
 * still alive (see pt_async in async.h).
 */
#ifndef PT_API_H
#define PT_API_H

#define H2O_USE_LIBUV 1
#include <h2o.h>

#include "router.h"

struct pt_worker;
struct pt_node;

void pt_api_base(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
void pt_api_catalog(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
void pt_api_tags(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
void pt_api_manifest(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
/* The manifest route when the router refused its reference as a tag (PT_E_TAG_INVALID; rt's
 * name is valid, its reference is not): PUT gets 400 TAG_INVALID, GET, HEAD and DELETE the
 * 404 of an unknown manifest (or repository). */
void pt_api_manifest_bad_tag(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
void pt_api_blob(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
void pt_api_uploads(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
void pt_api_upload(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
void pt_api_referrers(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
void pt_api_healthz(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
void pt_api_readyz(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
/* 1 when node is ready to serve current data (README "Probes"), else 0 with *reason (static
 * text) saying why. Any thread. */
int pt_api_ready(struct pt_node *node, const char **reason);
void pt_api_metrics(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
void pt_api_admin(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
void pt_api_replication_image(struct pt_worker *w, h2o_req_t *req);
/* GET|POST /token (api_token.c). */
void pt_api_token(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);
/* The access-control routes under /admin/ (api_auth_admin.c): 1 when rt is one of them (and
 * req was answered), 0 otherwise. */
int pt_api_auth_admin(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);

/* Copies the route's repository name into a NUL-terminated string in req's pool. */
char *pt_api_name(h2o_req_t *req, const struct pt_route *rt);

/* The admin routes of locks, immutable tag rules and retention (api_policy.c): answers req and
 * returns 1 when rt is one of them, else 0 (nothing sent). */
int pt_api_policy_admin(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt);

#endif
