/*
 * api_auth_admin.c - the admin API of access control (base/admin_api.h): the dispatch of its
 * routes, anonymous rules, signing key rotation and whoami (users and tokens:
 * api_auth_users.c).
 *
 * The gate (auth_gate.c) already required an administrator with Basic credentials for every
 * route here except whoami and a user's own password change, which api_auth_users.c checks.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "admin_api.h"
#include "api.h"
#include "api_common.h"
#include "async.h"
#include "auth_gate.h"
#include "clock.h"
#include "command.h"
#include "err.h"
#include "http.h"
#include "metastore.h"
#include "password.h"
#include "query.h"
#include "worker.h"

#include "api_auth_int.h"

/* Anonymous rules ----------------------------------------------------------------------------- */

static void anonymous_list(struct pt_worker *w, h2o_req_t *req)
{
    char(*p)[PT_AUTH_PATTERN_MAX + 1] = NULL;
    size_t n = 0;
    if (pt_auth_dir_anonymous(w->node->auth->dir, &p, &n) != 0) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(p[i]));
    free(p);
    pt_admin_send_json(req, 200, json_pack("{s:o}", "rules", a));
}

static void anonymous_add(struct pt_worker *w, h2o_req_t *req)
{
    json_t *o = pt_admin_body(req);
    if (o == NULL)
        return;
    const char *pattern = json_string_value(json_object_get(o, "pattern"));
    if (pattern == NULL || !pt_pattern_valid(pattern, strlen(pattern))) {
        pt_http_error(req, PT_E_INVALID, "invalid repository pattern",
                      pattern != NULL ? pattern : "missing");
    } else {
        struct pt_command_builder b;
        if (pt_admin_begin(w, req, &b) == 0)
            pt_admin_commit(w, req, &b, pt_command_add_put_anonymous(&b, pattern), 201,
                            json_pack("{s:s}", "pattern", pattern));
    }
    json_decref(o);
}

static void anonymous_delete(struct pt_worker *w, h2o_req_t *req)
{
    h2o_iovec_t q = pt_http_query(req);
    char pattern[PT_AUTH_PATTERN_MAX + 1];
    int n = pt_query_get(q.base, q.len, "pattern", 0, pattern, sizeof(pattern));
    if (n <= 0 || !pt_pattern_valid(pattern, (size_t)n)) {
        pt_http_error(req, PT_E_INVALID, "?pattern= must name a repository pattern", NULL);
        return;
    }
    char(*p)[PT_AUTH_PATTERN_MAX + 1] = NULL;
    size_t count = 0;
    int found = 0;
    if (pt_auth_dir_anonymous(w->node->auth->dir, &p, &count) == 0)
        for (size_t i = 0; i < count; i++)
            found |= strcmp(p[i], pattern) == 0;
    free(p);
    if (!found) {
        pt_http_error(req, PT_E_NOT_FOUND, "no such anonymous rule", pattern);
        return;
    }
    struct pt_command_builder b;
    if (pt_admin_begin(w, req, &b) == 0)
        pt_admin_commit(w, req, &b, pt_command_add_delete_anonymous(&b, pattern), 204, NULL);
}

/* Key rotation ------------------------------------------------------------------------------ */

/* A new key is made and written in the thread pool (file I/O with fsync), then published
 * together with the retirement of the old one; the region signs with the new key once the
 * command is applied. Tokens signed with the old key stay valid until they expire. */
struct rotate_op {
    struct pt_async async;
    uv_work_t work;
    struct pt_worker *w;
    struct pt_jwt_key *key;
    int status;
    char path[4400];
};

struct rotate_done {
    struct pt_jwt_key *key;
    char kid[PT_JWT_KID_LEN + 1];
};

static void rotate_work(uv_work_t *work)
{
    struct rotate_op *op = work->data;
    op->status = pt_jwt_key_generate(&op->key);
    if (op->status == 0)
        op->status = pt_jwt_key_save(op->key, op->path);
}

static void on_rotated(h2o_req_t *req, int status, void *data)
{
    struct rotate_done *d = data;
    struct pt_worker *w = pt_worker_of(req);
    if (status != 0) {
        /* the file already holds the new key: it is published at the next start */
        pt_jwt_key_free(d->key);
        pt_http_error(req, status, "the new key could not be published", NULL);
        return;
    }
    pt_auth_service_set_key(w->node->auth, d->key);
    char body[64];
    int n = snprintf(body, sizeof(body), "{\"kid\":\"%s\"}", d->kid);
    pt_http_send(req, 201, "application/json", body, (size_t)n);
}

static void rotate_after(uv_work_t *work, int status)
{
    struct rotate_op *op = work->data;
    h2o_req_t *req = pt_async_unbind(&op->async);
    struct pt_worker *w = op->w;
    if (req == NULL || status != 0 || op->status != 0) {
        if (req != NULL)
            pt_http_error(req, op->status != 0 ? op->status : PT_E_INTERNAL,
                          "cannot create the new signing key", NULL);
        /* A key already written stays in the file and is published at the next start. */
        pt_jwt_key_free(op->key);
        free(op);
        return;
    }
    struct pt_auth_service *s = w->node->auth;
    struct pt_jwt_key *old = pt_auth_service_key(s);
    unsigned char der[PT_JWT_SPKI_MAX];
    size_t len = sizeof(der);
    struct rotate_done d = {.key = op->key};
    snprintf(d.kid, sizeof(d.kid), "%s", pt_jwt_key_kid(op->key));
    free(op);
    if (pt_jwt_key_public_der(d.key, der, &len) != 0) {
        pt_jwt_key_free(d.key);
        pt_http_error(req, PT_E_INTERNAL, NULL, NULL);
        return;
    }
    int64_t not_after = pt_clock_wall_ms() + (int64_t)w->node->cfg.token_ttl_ms + 60000;
    struct pt_command_builder b;
    if (pt_api_command(w, &b) != 0) {
        pt_jwt_key_free(d.key);
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    int added = pt_command_add_put_signing_key(&b, d.kid, w->node->cfg.region, der, len);
    if (added == 0)
        added = pt_command_add_retire_signing_key(&b, pt_jwt_key_kid(old), not_after);
    int rv = pt_api_commit(w, req, &b, added, on_rotated, &d, sizeof(d));
    if (rv != 0) {
        pt_jwt_key_free(d.key);
        pt_http_error(req, rv, NULL, NULL);
    }
}

static void keys_rotate(struct pt_worker *w, h2o_req_t *req)
{
    struct rotate_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    op->w = w;
    op->work.data = op;
    snprintf(op->path, sizeof(op->path), "%s", w->node->auth->key_path);
    pt_async_bind(&op->async, req);
    uv_queue_work(&w->loop, &op->work, rotate_work, rotate_after);
}

/* whoami ------------------------------------------------------------------------------------ */

static void whoami(struct pt_worker *w, h2o_req_t *req)
{
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    static const char *const kinds[] = {"anonymous", "user", "token"};
    char who[PT_AUTH_NAME_MAX + 16];
    pt_auth_identity_text(&ctx->id, who, sizeof(who));
    pt_admin_send_json(req, 200,
                       json_pack("{s:s,s:s,s:s,s:b}", "identity", who, "name", ctx->id.name, "kind",
                                 kinds[ctx->id.kind <= PT_IDENTITY_TOKEN ? ctx->id.kind : 0],
                                 "admin", pt_auth_is_admin(w, req)));
}

/* Dispatch ---------------------------------------------------------------------------------- */

static int ref_is(const struct pt_route *rt, const char *s)
{
    return rt->ref_len == strlen(s) && memcmp(rt->ref, s, rt->ref_len) == 0;
}

/* rt->ref without prefix when it starts with it and the rest is a name, into out. */
static int ref_name(const struct pt_route *rt, const char *prefix, const char *suffix, char *out,
                    size_t size)
{
    size_t pl = strlen(prefix), sl = strlen(suffix);
    if (rt->ref_len <= pl + sl || memcmp(rt->ref, prefix, pl) != 0 ||
        memcmp(rt->ref + rt->ref_len - sl, suffix, sl) != 0)
        return 0;
    size_t n = rt->ref_len - pl - sl;
    if (n >= size || memchr(rt->ref + pl, '/', n) != NULL)
        return 0;
    memcpy(out, rt->ref + pl, n);
    out[n] = '\0';
    return 1;
}

int pt_api_auth_admin(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    int get = pt_http_method_is(req, "GET") || pt_http_is_head(req);
    int post = pt_http_method_is(req, "POST"), del = pt_http_method_is(req, "DELETE");
    char name[PT_AUTH_NAME_MAX + 2];
    int users = ref_is(rt, PT_ADMIN_USERS), tokens = ref_is(rt, PT_ADMIN_TOKENS);
    int anon = ref_is(rt, PT_ADMIN_ANONYMOUS), rotate = ref_is(rt, PT_ADMIN_KEYS_ROTATE);
    int me = ref_is(rt, PT_ADMIN_WHOAMI);
    int pw = ref_name(rt, PT_ADMIN_USERS "/", "/password", name, sizeof(name));
    int user = !pw && ref_name(rt, PT_ADMIN_USERS "/", "", name, sizeof(name));
    int tdis = ref_name(rt, PT_ADMIN_TOKENS "/", "/disable", name, sizeof(name));
    int tena = !tdis && ref_name(rt, PT_ADMIN_TOKENS "/", "/enable", name, sizeof(name));
    int token = !tdis && !tena && ref_name(rt, PT_ADMIN_TOKENS "/", "", name, sizeof(name));
    if (!(users || tokens || anon || rotate || me || pw || user || tdis || tena || token) ||
        (rt->ref_len >= 5 && memcmp(rt->ref, "auth/", 5) != 0 && !users && !tokens && !pw &&
         !user && !tdis && !tena && !token))
        return 0;
    if (w->node->auth == NULL) {
        pt_http_error(req, PT_E_NOT_FOUND, "access control is off on this region", NULL);
        return 1;
    }
    if (users && post)
        pt_admin_user_add(w, req);
    else if (users && get)
        pt_admin_users_list(w, req);
    else if (user && del)
        pt_admin_user_delete(w, req, name);
    else if (pw && pt_http_method_is(req, "PUT"))
        pt_admin_user_password(w, req, name);
    else if (tokens && post)
        pt_admin_token_add(w, req);
    else if (tokens && get)
        pt_admin_tokens_list(w, req);
    else if (token && del)
        pt_admin_token_delete(w, req, name);
    else if ((tdis || tena) && post)
        pt_admin_token_set_disabled(w, req, name, tdis);
    else if (anon && get)
        anonymous_list(w, req);
    else if (anon && post)
        anonymous_add(w, req);
    else if (anon && del)
        anonymous_delete(w, req);
    else if (rotate && post)
        keys_rotate(w, req);
    else if (me && get)
        whoami(w, req);
    else
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
    return 1;
}
