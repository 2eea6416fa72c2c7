/*
 * api_auth_users.c - users and access tokens of the admin API (base/admin_api.h):
 *   POST/GET /admin/users, DELETE /admin/users/<name>, PUT /admin/users/<name>/password,
 *   POST/GET /admin/tokens, DELETE /admin/tokens/<id>, POST /admin/tokens/<id>/disable|enable
 *
 * Reads come from the directory (auth/directory.h, this region's applied state). Changes are
 * replicated commands (replication/command.h) answered once applied here. Passwords are
 * hashed (yescrypt, in the thread pool) before proposing: no plain password enters the log.
 * Token secrets are generated here, returned once in the 201 answer, and only their SHA-256
 * is proposed.
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

/* JSON ---------------------------------------------------------------------------------------- */

static json_t *actions_json(unsigned actions)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {{PT_ACTION_PULL, "pull"},
                 {PT_ACTION_PUSH, "push"},
                 {PT_ACTION_DELETE, "delete"},
                 {PT_ACTION_ADMIN, "admin"}};
    json_t *a = json_array();
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
        if (actions & names[i].bit)
            json_array_append_new(a, json_string(names[i].name));
    return a;
}

static json_t *grants_json(const struct pt_grant *g, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_pack("{s:s,s:o}", "pattern", g[i].pattern, "actions",
                                           actions_json(g[i].actions)));
    return a;
}

/* RFC 3339 (UTC, milliseconds) of ms since the epoch; null for 0 (never). */
static json_t *time_json(int64_t ms)
{
    if (ms <= 0)
        return json_null();
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    char buf[40], out[48];
    gmtime_r(&s, &tm);
    strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(out, sizeof(out), "%s.%03dZ", buf, (int)(ms % 1000));
    return json_string(out);
}

static json_t *user_json(const struct pt_auth_user_info *u)
{
    return json_pack("{s:s,s:o,s:b,s:o}", "name", u->name, "grants",
                     grants_json(u->grants, u->n_grants), "disabled", u->disabled, "created",
                     time_json(u->created_ms));
}

static json_t *token_json(const struct pt_auth_token_info *t)
{
    return json_pack("{s:s,s:o,s:b,s:o,s:o,s:s,s:s}", "id", t->id, "grants",
                     grants_json(t->grants, t->n_grants), "disabled", t->disabled, "expires",
                     time_json(t->expires_ms), "created", time_json(t->created_ms), "owner",
                     t->owner, "description", t->description);
}

/* Reads "grants": [{"pattern", "actions": ["pull", ...]} or "pattern:pull,push", ...].
 * Sends the error itself. 0 or -1. */
static int parse_grants(h2o_req_t *req, json_t *arr, struct pt_grant *out, size_t *n)
{
    *n = 0;
    if (arr == NULL)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > PT_AUTH_GRANTS_MAX) {
        pt_http_error(req, PT_E_INVALID, "grants must be an array of at most 32 grants", NULL);
        return -1;
    }
    size_t i;
    json_t *g;
    json_array_foreach(arr, i, g)
    {
        struct pt_grant *o = &out[*n];
        if (json_is_string(g)) {
            if (pt_grant_parse(json_string_value(g), o->pattern, sizeof(o->pattern), &o->actions) !=
                0) {
                pt_http_error(req, PT_E_INVALID, "invalid grant", json_string_value(g));
                return -1;
            }
            (*n)++;
            continue;
        }
        const char *pattern = json_string_value(json_object_get(g, "pattern"));
        json_t *acts = json_object_get(g, "actions");
        if (pattern == NULL || !pt_pattern_valid(pattern, strlen(pattern))) {
            pt_http_error(req, PT_E_INVALID, "invalid grant pattern",
                          pattern != NULL ? pattern : "missing");
            return -1;
        }
        if (!json_is_array(acts) || json_array_size(acts) == 0) {
            pt_http_error(req, PT_E_INVALID, "a grant needs actions: pull, push, delete, admin",
                          pattern);
            return -1;
        }
        /* "pattern:actions" through the one grant grammar */
        char text[PT_AUTH_PATTERN_MAX + 64];
        size_t used = (size_t)snprintf(text, sizeof(text), "%s:", pattern);
        size_t j;
        json_t *a;
        json_array_foreach(acts, j, a)
        {
            const char *s = json_string_value(a);
            if (s == NULL || strlen(s) > 16 || used + strlen(s) + 2 >= sizeof(text)) {
                pt_http_error(req, PT_E_INVALID, "invalid grant action", pattern);
                return -1;
            }
            used += (size_t)snprintf(text + used, sizeof(text) - used, "%s%s", j ? "," : "", s);
        }
        if (pt_grant_parse(text, o->pattern, sizeof(o->pattern), &o->actions) != 0) {
            pt_http_error(req, PT_E_INVALID, "invalid grant actions (pull, push, delete, admin, *)",
                          pattern);
            return -1;
        }
        (*n)++;
    }
    return 0;
}

static void to_command_grants(const struct pt_grant *g, size_t n, struct pt_command_grant *out)
{
    for (size_t i = 0; i < n; i++) {
        out[i].pattern = g[i].pattern;
        out[i].actions = g[i].actions;
    }
}

/* Users ------------------------------------------------------------------------------------- */

static int password_ok(h2o_req_t *req, const char *pw)
{
    if (pw == NULL || pw[0] == '\0' || strlen(pw) > PT_PASSWORD_MAX) {
        pt_http_error(req, PT_E_INVALID, "password must be 1 to 1024 bytes", NULL);
        return 0;
    }
    return 1;
}

/* A user written with a new password: the yescrypt hash is made in the thread pool (tens of
 * milliseconds), then the PutUser is proposed from the loop. */
struct put_user_op {
    struct pt_async async;
    uv_work_t work;
    struct pt_worker *w;
    int status;
    int created; /* 1: a new user (201 with its object), 0: a password change (204) */
    struct pt_auth_user_info u;
    char password[PT_PASSWORD_MAX + 1];
    char hash[PT_PASSWORD_HASH_MAX];
};

static void put_user_work(uv_work_t *work)
{
    struct put_user_op *op = work->data;
    op->status = pt_password_hash(op->password, strlen(op->password), op->hash, sizeof(op->hash));
    OPENSSL_cleanse(op->password, sizeof(op->password));
}

static void put_user_after(uv_work_t *work, int status)
{
    struct put_user_op *op = work->data;
    h2o_req_t *req = pt_async_unbind(&op->async);
    if (req != NULL && (status != 0 || op->status != 0)) {
        pt_http_error(req, PT_E_INTERNAL, "cannot hash the password", NULL);
    } else if (req != NULL) {
        struct pt_command_grant cg[PT_AUTH_GRANTS_MAX];
        to_command_grants(op->u.grants, op->u.n_grants, cg);
        struct pt_command_builder b;
        if (pt_admin_begin(op->w, req, &b) == 0)
            pt_admin_commit(op->w, req, &b,
                            pt_command_add_put_user(&b, op->u.name, op->hash, cg, op->u.n_grants,
                                                    op->u.disabled, 0),
                            op->created ? 201 : 204, op->created ? user_json(&op->u) : NULL);
    }
    OPENSSL_cleanse(op, sizeof(*op));
    free(op);
}

/* Starts the hash of password for u (copied); answers req in every case. */
static void put_user(struct pt_worker *w, h2o_req_t *req, const struct pt_auth_user_info *u,
                     const char *password, int created)
{
    struct put_user_op *op = calloc(1, sizeof(*op));
    if (op == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    op->w = w;
    op->u = *u;
    op->created = created;
    snprintf(op->password, sizeof(op->password), "%s", password);
    op->work.data = op;
    pt_async_bind(&op->async, req);
    if (uv_queue_work(&w->loop, &op->work, put_user_work, put_user_after) != 0) {
        pt_async_unbind(&op->async);
        OPENSSL_cleanse(op, sizeof(*op));
        free(op);
        pt_http_error(req, PT_E_INTERNAL, NULL, NULL);
    }
}

void pt_admin_user_add(struct pt_worker *w, h2o_req_t *req)
{
    struct pt_auth_service *s = w->node->auth;
    json_t *o = pt_admin_body(req);
    if (o == NULL)
        return;
    const char *name = json_string_value(json_object_get(o, "name"));
    const char *pw = json_string_value(json_object_get(o, "password"));
    struct pt_grant *grants = malloc(sizeof(*grants) * PT_AUTH_GRANTS_MAX);
    struct pt_auth_user_info *u = malloc(sizeof(*u));
    size_t n = 0;
    if (grants == NULL || u == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
    } else if (name == NULL || !pt_auth_name_valid(name, strlen(name))) {
        pt_http_error(req, PT_E_INVALID, "name must match [a-z0-9][a-z0-9._-]{0,63}", NULL);
    } else if (!password_ok(req, pw) ||
               parse_grants(req, json_object_get(o, "grants"), grants, &n) != 0) {
        /* answered */
    } else if (pt_auth_dir_user(s->dir, name, u) == 0) {
        pt_http_error(req, PT_E_EXISTS, "a user of this name exists", name);
    } else {
        memset(u, 0, sizeof(*u));
        snprintf(u->name, sizeof(u->name), "%s", name);
        memcpy(u->grants, grants, n * sizeof(*grants));
        u->n_grants = n;
        u->created_ms = pt_clock_wall_ms();
        put_user(w, req, u, pw, 1);
    }
    free(grants);
    free(u);
    json_decref(o); /* the password's copy goes with it */
}

void pt_admin_users_list(struct pt_worker *w, h2o_req_t *req)
{
    struct pt_auth_user_info *v = NULL;
    size_t n = 0;
    if (pt_auth_dir_users(w->node->auth->dir, &v, &n) != 0) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, user_json(&v[i]));
    free(v);
    pt_admin_send_json(req, 200, json_pack("{s:o}", "users", a));
}

static int holds_admin(const struct pt_auth_user_info *u)
{
    for (size_t i = 0; i < u->n_grants; i++)
        if (u->grants[i].actions & PT_ACTION_ADMIN)
            return 1;
    return 0;
}

/* 1 when name is the only active user holding admin. */
static int last_admin(struct pt_worker *w, const char *name)
{
    struct pt_auth_user_info *v = NULL;
    size_t n = 0, admins = 0;
    int is = 0;
    if (pt_auth_dir_users(w->node->auth->dir, &v, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (v[i].disabled || !holds_admin(&v[i]))
            continue;
        admins++;
        if (strcmp(v[i].name, name) == 0)
            is = 1;
    }
    free(v);
    return is && admins == 1;
}

void pt_admin_user_delete(struct pt_worker *w, h2o_req_t *req, const char *name)
{
    struct pt_auth_user_info u;
    if (pt_auth_dir_user(w->node->auth->dir, name, &u) != 0) {
        pt_http_error(req, PT_E_NOT_FOUND, "no such user", name);
        return;
    }
    if (last_admin(w, name)) {
        pt_http_error(req, PT_E_EXISTS, "the last administrator cannot be removed", name);
        return;
    }
    struct pt_command_builder b;
    if (pt_admin_begin(w, req, &b) == 0)
        pt_admin_commit(w, req, &b, pt_command_add_delete_user(&b, name), 204, NULL);
}

void pt_admin_user_password(struct pt_worker *w, h2o_req_t *req, const char *name)
{
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    int self = ctx != NULL && ctx->id.kind == PT_IDENTITY_USER && strcmp(ctx->id.name, name) == 0;
    if (!self && !pt_auth_is_admin(w, req)) {
        pt_http_error(req, PT_E_DENIED, "only the user itself or an administrator", NULL);
        return;
    }
    struct pt_auth_user_info u;
    if (pt_auth_dir_user(w->node->auth->dir, name, &u) != 0) {
        pt_http_error(req, PT_E_NOT_FOUND, "no such user", name);
        return;
    }
    json_t *o = pt_admin_body(req);
    if (o == NULL)
        return;
    const char *pw = json_string_value(json_object_get(o, "password"));
    if (password_ok(req, pw))
        put_user(w, req, &u, pw, 0);
    json_decref(o);
}

/* Tokens ------------------------------------------------------------------------------------ */

void pt_admin_token_add(struct pt_worker *w, h2o_req_t *req)
{
    struct pt_auth_service *s = w->node->auth;
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    json_t *o = pt_admin_body(req);
    if (o == NULL)
        return;
    const char *id = json_string_value(json_object_get(o, "id"));
    const char *desc = json_string_value(json_object_get(o, "description"));
    json_t *ttl = json_object_get(o, "expires_in_s");
    struct pt_grant *grants = malloc(sizeof(*grants) * PT_AUTH_GRANTS_MAX);
    struct pt_auth_token_info *t = calloc(1, sizeof(*t));
    size_t n = 0;
    char idbuf[PT_AUTH_NAME_MAX + 1];
    if (id == NULL) {
        unsigned char r[6];
        if (RAND_bytes(r, sizeof(r)) != 1) {
            pt_http_error(req, PT_E_INTERNAL, NULL, NULL);
            goto out;
        }
        snprintf(idbuf, sizeof(idbuf), "t-%02x%02x%02x%02x%02x%02x", r[0], r[1], r[2], r[3], r[4],
                 r[5]);
        id = idbuf;
    }
    if (grants == NULL || t == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
    } else if (!pt_auth_name_valid(id, strlen(id))) {
        pt_http_error(req, PT_E_INVALID, "id must match [a-z0-9][a-z0-9._-]{0,63}", NULL);
    } else if (desc != NULL && strlen(desc) >= sizeof(t->description)) {
        pt_http_error(req, PT_E_INVALID, "description longer than 255 bytes", NULL);
    } else if (ttl != NULL && (!json_is_integer(ttl) || json_integer_value(ttl) <= 0 ||
                               json_integer_value(ttl) > 10LL * 365 * 86400)) {
        pt_http_error(req, PT_E_INVALID, "expires_in_s must be a positive number of seconds", NULL);
    } else if (parse_grants(req, json_object_get(o, "grants"), grants, &n) != 0) {
        /* answered */
    } else if (n == 0) {
        pt_http_error(req, PT_E_INVALID, "a token needs at least one grant", NULL);
    } else if (pt_auth_dir_token(s->dir, id, t) == 0) {
        pt_http_error(req, PT_E_EXISTS, "a token of this id exists", id);
    } else {
        char secret[PT_SECRET_MAX], hash[PT_SECRET_HASH_MAX];
        if (pt_secret_generate(secret, sizeof(secret)) != 0) {
            pt_http_error(req, PT_E_INTERNAL, "cannot generate a secret", NULL);
            goto out;
        }
        pt_secret_hash(secret, strlen(secret), hash);
        int64_t now = pt_clock_wall_ms();
        memset(t, 0, sizeof(*t));
        snprintf(t->id, sizeof(t->id), "%s", id);
        memcpy(t->grants, grants, n * sizeof(*grants));
        t->n_grants = n;
        t->created_ms = now;
        t->expires_ms = ttl != NULL ? now + json_integer_value(ttl) * 1000 : 0;
        snprintf(t->description, sizeof(t->description), "%s", desc != NULL ? desc : "");
        snprintf(t->owner, sizeof(t->owner), "%s", ctx != NULL ? ctx->id.name : "");
        json_t *body = token_json(t);
        json_object_set_new(body, "secret", json_string(secret));
        struct pt_command_grant cg[PT_AUTH_GRANTS_MAX];
        to_command_grants(grants, n, cg);
        struct pt_command_builder b;
        if (pt_admin_begin(w, req, &b) == 0)
            pt_admin_commit(w, req, &b,
                            pt_command_add_put_token(&b, t->id, hash, cg, n, t->expires_ms, 0,
                                                     t->description, t->owner),
                            201, body);
        else
            json_decref(body);
        OPENSSL_cleanse(secret, sizeof(secret));
    }
out:
    free(grants);
    free(t);
    json_decref(o);
}

void pt_admin_tokens_list(struct pt_worker *w, h2o_req_t *req)
{
    struct pt_auth_token_info *v = NULL;
    size_t n = 0;
    if (pt_auth_dir_tokens(w->node->auth->dir, &v, &n) != 0) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, token_json(&v[i]));
    free(v);
    pt_admin_send_json(req, 200, json_pack("{s:o}", "tokens", a));
}

void pt_admin_token_delete(struct pt_worker *w, h2o_req_t *req, const char *id)
{
    struct pt_auth_token_info *t = malloc(sizeof(*t));
    if (t == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    int rv = pt_auth_dir_token(w->node->auth->dir, id, t);
    free(t);
    if (rv != 0) {
        pt_http_error(req, PT_E_NOT_FOUND, "no such token", id);
        return;
    }
    struct pt_command_builder b;
    if (pt_admin_begin(w, req, &b) == 0)
        pt_admin_commit(w, req, &b, pt_command_add_delete_token(&b, id), 204, NULL);
}

/* The stored record (with its secret's hash) is read from the metastore: a PutToken replaces
 * the whole record and the directory never hands out hashes. */
void pt_admin_token_set_disabled(struct pt_worker *w, h2o_req_t *req, const char *id, int disabled)
{
    struct pt_auth_token_rec *t = malloc(sizeof(*t));
    if (t == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    if (pt_metastore_auth_token_get(w->node->ms, id, t) != 0) {
        pt_http_error(req, PT_E_NOT_FOUND, "no such token", id);
    } else {
        struct pt_command_grant cg[PT_METASTORE_AUTH_GRANTS_MAX];
        for (size_t i = 0; i < t->n_grants; i++) {
            cg[i].pattern = t->grants[i].pattern;
            cg[i].actions = t->grants[i].actions;
        }
        struct pt_command_builder b;
        if (pt_admin_begin(w, req, &b) == 0)
            pt_admin_commit(w, req, &b,
                            pt_command_add_put_token(&b, id, t->secret_hash, cg, t->n_grants,
                                                     t->expires_ms, disabled, t->description,
                                                     t->owner),
                            204, NULL);
    }
    OPENSSL_cleanse(t, sizeof(*t));
    free(t);
}
