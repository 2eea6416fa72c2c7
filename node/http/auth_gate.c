/*
 * auth_gate.c - the access-control gate (auth_gate.h): credentials, the actions a route
 * needs, the decision, and the 401 challenge.
 *
 * Actions by route and method (CNCF Distribution's registry/handlers/app.go does the same):
 *   /v2/                          any accepted credentials (Basic or a token, anonymous too);
 *                                 without them 401 with the challenge, as Distribution does
 *   manifests, blobs, tags,       GET/HEAD: pull; PUT/POST/PATCH: push; DELETE: delete
 *   referrers, uploads
 *   uploads POST ?mount=&from=    push on the name; the mount itself needs pull on `from`
 *                                 (else api_upload.c falls back to a plain upload session)
 *   /v2/_catalog                  a user or token (not anonymous); filtered by pull
 *   /admin/auth/whoami            any accepted credentials
 *   /admin/users/<name>/password  a user (itself, or an administrator: api_auth_admin.c)
 *   /admin/...                    admin, with Basic credentials (a Bearer token's scopes do
 *                                 not speak of administration)
 *   /healthz, /readyz, /metrics,  open
 *   /token
 * Refusals: no credentials, or an anonymous token -> 401 + challenge (logging in may help);
 * a token lacking a scope its identity holds -> 401 + challenge with
 * error="insufficient_scope" (the client fetches a wider token); a user or token lacking the
 * action -> 403 DENIED. Every refusal after credentials were given is audited.
 *
 * The yescrypt check of a Basic password runs on the worker loop (a few milliseconds); the
 * directory remembers successful checks for a minute, failures are throttled by the limiter.
 *
 * Throttling (throttle.h): a registry request (/v2/...) the gate lets through, with access
 * control on or off, is then counted against its identity's token buckets ("user:x",
 * "token:x", or the client address when anonymous); over a limit it gets 429 TOOMANYREQUESTS
 * with Retry-After instead of reaching its handler. Nothing is counted until a limit is set.
 */
#include "auth_gate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <uv.h>

#include "api.h"
#include "async.h"
#include "audit_hook.h"
#include "clock.h"
#include "cluster_config.h"
#include "credentials.h"
#include "err.h"
#include "http.h"
#include "limiter.h"
#include "log.h"
#include "metrics.h"
#include "scope.h"
#include "throttle.h"
#include "token_cache.h"
#include "worker.h"

#define CTX_ENV_NAME "PT_AUTH_CTX"

/* Service ------------------------------------------------------------------------------- */

int pt_auth_service_create(struct pt_node *node, struct pt_auth_service **out)
{
    const struct pt_config *cfg = &node->cfg;
    struct pt_auth_service *s = calloc(1, sizeof(*s));
    char dir[4200];
    int rv;
    if (s == NULL)
        return PT_E_NOMEM;
    pthread_mutex_init(&s->key_lock, NULL);
    if ((rv = pt_auth_dir_open(node->ms, &s->dir)) != 0) {
        pt_log(PT_LOG_ERROR, "cannot open the access-control directory", "{s:i}", "error", rv);
        goto fail;
    }
    if ((rv = pt_token_cache_create(PT_TOKEN_CACHE_DEFAULT, &s->cache)) != 0 ||
        (rv = pt_limiter_create(cfg->login_burst, cfg->login_window_ms, &s->limiter)) != 0)
        goto fail;
    snprintf(dir, sizeof(dir), "%s/auth", cfg->data_dir);
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        pt_log(PT_LOG_ERROR, "cannot create the auth directory", "{s:s}", "dir", dir);
        rv = PT_E_IO;
        goto fail;
    }
    snprintf(s->key_path, sizeof(s->key_path), "%s/signing-key.pem", dir);
    if ((rv = pt_jwt_key_load_or_create(s->key_path, &s->key)) != 0) {
        pt_log(PT_LOG_ERROR, "cannot load or create the token signing key", "{s:s,s:s}", "file",
               s->key_path, "hint",
               "the file must be a PEM EC P-256 private key readable by its owner only");
        goto fail;
    }
    const char *base = cfg->public_url;
    if (base[0] == '\0' && node->cluster != NULL) {
        const struct pt_cluster_region *me = pt_cluster_config_find(node->cluster, cfg->region);
        if (me != NULL)
            base = me->url;
    }
    snprintf(s->realm_base, sizeof(s->realm_base), "%s", base);
    size_t n = strlen(s->realm_base);
    while (n > 0 && s->realm_base[n - 1] == '/')
        s->realm_base[--n] = '\0';
    *out = s;
    return 0;
fail:
    pt_auth_service_free(s);
    return rv != 0 ? rv : PT_E_INTERNAL;
}

void pt_auth_service_free(struct pt_auth_service *s)
{
    if (s == NULL)
        return;
    pt_auth_dir_close(s->dir);
    pt_token_cache_free(s->cache);
    pt_limiter_free(s->limiter);
    pt_jwt_key_free(s->key);
    for (size_t i = 0; i < s->n_old; i++)
        pt_jwt_key_free(s->old[i]);
    pthread_mutex_destroy(&s->key_lock);
    free(s);
}

struct pt_jwt_key *pt_auth_service_key(struct pt_auth_service *s)
{
    pthread_mutex_lock(&s->key_lock);
    struct pt_jwt_key *k = s->key;
    pthread_mutex_unlock(&s->key_lock);
    return k;
}

void pt_auth_service_set_key(struct pt_auth_service *s, struct pt_jwt_key *k)
{
    pthread_mutex_lock(&s->key_lock);
    if (s->n_old == PT_AUTH_OLD_KEYS_MAX) {
        /* The oldest replaced key is long retired: tokens live minutes, rotations are rare.
         * It is kept allocated (a reader may hold it) and only dropped from the fallback. */
        memmove(s->old, s->old + 1, (PT_AUTH_OLD_KEYS_MAX - 1) * sizeof(s->old[0]));
        s->n_old--;
    }
    s->old[s->n_old++] = s->key;
    s->key = k;
    pthread_mutex_unlock(&s->key_lock);
}

static int copy_public(const struct pt_jwt_key *k, unsigned char *der, size_t *len)
{
    return pt_jwt_key_public_der(k, der, len);
}

int pt_auth_key_lookup(void *arg, const char *kid, unsigned char *der, size_t *len)
{
    struct pt_auth_service *s = arg;
    int rv = pt_auth_dir_signing_key(s->dir, kid, pt_clock_wall_ms(), der, len);
    if (rv != PT_E_NOT_FOUND)
        return rv;
    /* Not (yet) published: this process's own keys. A retired key is never found here
     * because retirement publishes it first. */
    rv = PT_E_NOT_FOUND;
    pthread_mutex_lock(&s->key_lock);
    if (strcmp(pt_jwt_key_kid(s->key), kid) == 0)
        rv = copy_public(s->key, der, len);
    pthread_mutex_unlock(&s->key_lock);
    return rv;
}

/* Context -------------------------------------------------------------------------------- */

struct pt_auth_ctx *pt_auth_ctx_of(h2o_req_t *req)
{
    for (size_t i = 0; i + 1 < req->env.size; i += 2) {
        h2o_iovec_t k = req->env.entries[i];
        if (k.len == sizeof(CTX_ENV_NAME) - 1 && memcmp(k.base, CTX_ENV_NAME, k.len) == 0 &&
            req->env.entries[i + 1].len == sizeof(struct pt_auth_ctx))
            return (struct pt_auth_ctx *)(void *)req->env.entries[i + 1].base;
    }
    return NULL;
}

static void client_address(h2o_req_t *req, char *buf, size_t size)
{
    struct sockaddr_storage ss;
    snprintf(buf, size, "-");
    if (req->conn == NULL || req->conn->callbacks->get_peername == NULL)
        return;
    socklen_t sl = req->conn->callbacks->get_peername(req->conn, (struct sockaddr *)&ss);
    if (sl == 0)
        return;
    if (ss.ss_family == AF_INET)
        inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr, buf, (socklen_t)size);
    else if (ss.ss_family == AF_INET6)
        inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&ss)->sin6_addr, buf, (socklen_t)size);
}

static struct pt_auth_ctx *attach_ctx(h2o_req_t *req, const char *request_id)
{
    struct pt_auth_ctx *ctx = h2o_mem_alloc_pool(&req->pool, sizeof(*ctx));
    memset(ctx, 0, sizeof(*ctx));
    snprintf(ctx->request_id, sizeof(ctx->request_id), "%s", request_id);
    client_address(req, ctx->client, sizeof(ctx->client));
    h2o_vector_reserve(&req->pool, &req->env, req->env.size + 2);
    req->env.entries[req->env.size++] = h2o_iovec_init(H2O_STRLIT(CTX_ENV_NAME));
    req->env.entries[req->env.size++] = h2o_iovec_init(ctx, sizeof(*ctx));
    return ctx;
}

const char *pt_auth_identity_text(const struct pt_identity *id, char *buf, size_t size)
{
    switch (id->kind) {
    case PT_IDENTITY_USER:
        snprintf(buf, size, "user:%s", id->name);
        break;
    case PT_IDENTITY_TOKEN:
        snprintf(buf, size, "token:%s", id->name);
        break;
    default:
        snprintf(buf, size, "anonymous");
        break;
    }
    return buf;
}

/* Decisions ----------------------------------------------------------------------------- */

/* Actions a Bearer token's access list grants on repo. */
static unsigned token_actions(const struct pt_jwt_claims *c, const char *repo, size_t len)
{
    unsigned a = 0;
    for (size_t i = 0; i < c->n_access; i++) {
        const struct pt_jwt_access *e = &c->access[i];
        if (!e->registry && strlen(e->name) == len && memcmp(e->name, repo, len) == 0)
            a |= e->actions;
    }
    return a;
}

static int token_has_catalog(const struct pt_jwt_claims *c)
{
    for (size_t i = 0; i < c->n_access; i++)
        if (c->access[i].registry)
            return 1;
    return 0;
}

unsigned pt_auth_actions(struct pt_worker *w, h2o_req_t *req, const char *repo, size_t len)
{
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    struct pt_auth_service *s = w->node->auth;
    if (ctx == NULL || !ctx->enforced || s == NULL)
        return PT_ACTIONS_ALL;
    unsigned a = pt_auth_dir_allowed(s->dir, &ctx->id, repo, len, pt_clock_wall_ms());
    if (ctx->claims != NULL)
        a &= token_actions(ctx->claims, repo, len);
    return a;
}

unsigned pt_auth_identity_actions(struct pt_worker *w, h2o_req_t *req, const char *repo, size_t len)
{
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    struct pt_auth_service *s = w->node->auth;
    if (ctx == NULL || !ctx->enforced || s == NULL)
        return PT_ACTIONS_ALL;
    return pt_auth_dir_allowed(s->dir, &ctx->id, repo, len, pt_clock_wall_ms());
}

int pt_auth_is_admin(struct pt_worker *w, h2o_req_t *req)
{
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    struct pt_auth_service *s = w->node->auth;
    if (ctx == NULL || !ctx->enforced || s == NULL)
        return 1;
    return ctx->id.kind != PT_IDENTITY_ANONYMOUS &&
           pt_auth_dir_is_admin(s->dir, &ctx->id, pt_clock_wall_ms());
}

void pt_auth_realm_base(struct pt_worker *w, h2o_req_t *req, char *buf, size_t size)
{
    struct pt_auth_service *s = w->node->auth;
    if (s != NULL && s->realm_base[0] != '\0') {
        snprintf(buf, size, "%s", s->realm_base);
        return;
    }
    const char *scheme = req->scheme != NULL && req->scheme->name.len == 5 ? "https" : "http";
    if (w->node->ssl_ctx != NULL)
        scheme = "https";
    /* The Host header is the client's; only characters of a host[:port] go into the header. */
    size_t n = req->authority.len < 255 ? req->authority.len : 255;
    char host[256];
    size_t j = 0;
    for (size_t i = 0; i < n; i++) {
        char c = req->authority.base[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '.' || c == '-' || c == ':' || c == '[' || c == ']')
            host[j++] = c;
    }
    host[j] = '\0';
    snprintf(buf, size, "%s://%s", scheme, j > 0 ? host : "localhost");
}

void pt_auth_challenge(struct pt_worker *w, h2o_req_t *req, const char *scope, const char *error)
{
    char base[1100];
    pt_auth_realm_base(w, req, base, sizeof(base));
    char v[2048];
    int n = snprintf(v, sizeof(v), "Bearer realm=\"%s/token\",service=\"%s\"", base,
                     w->node->cfg.auth_service);
    if (scope != NULL && n > 0 && (size_t)n < sizeof(v))
        n += snprintf(v + n, sizeof(v) - (size_t)n, ",scope=\"%s\"", scope);
    if (error != NULL && n > 0 && (size_t)n < sizeof(v))
        snprintf(v + n, sizeof(v) - (size_t)n, ",error=\"%s\"", error);
    pt_http_header(req, "WWW-Authenticate", v, strlen(v));
    pt_metrics_auth(PT_METRICS_AUTH_UNAUTHORIZED);
    pt_http_error(req, PT_E_UNAUTHORIZED, NULL, NULL);
}

/* Credentials ----------------------------------------------------------------------------- */

/* A password check in the thread pool: yescrypt takes tens of milliseconds, which no event
 * loop may spend. The limiter is asked before (on the loop) and told after (on the loop). */
struct login_op {
    struct pt_async async;
    uv_work_t work;
    struct pt_worker *w;
    struct pt_identity *out; /* in the request's pool: written only while it lives */
    pt_auth_login_cb cb;
    struct pt_identity id;
    int status;
    int64_t now;
    char name[PT_AUTH_USER_MAX + 1];
    char secret[PT_AUTH_PASSWORD_MAX + 1];
    _Alignas(max_align_t) unsigned char data[];
};

static void limiter_keys(h2o_req_t *req, const char *name, char *ukey, size_t ulen, char *akey,
                         size_t alen)
{
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    snprintf(ukey, ulen, "u:%s", name);
    snprintf(akey, alen, "a:%s", ctx != NULL ? ctx->client : "-");
}

static void login_work(uv_work_t *work)
{
    struct login_op *op = work->data;
    struct pt_auth_service *s = op->w->node->auth;
    op->status = pt_auth_dir_login(s->dir, op->name, strlen(op->name), op->secret,
                                   strlen(op->secret), op->now, &op->id);
    OPENSSL_cleanse(op->secret, sizeof(op->secret));
}

static void login_after(uv_work_t *work, int status)
{
    struct login_op *op = work->data;
    h2o_req_t *req = pt_async_unbind(&op->async);
    struct pt_worker *w = op->w;
    struct pt_auth_service *s = w->node->auth;
    /* Only a verdict on the credentials is a failed login; a check that could not run (the
     * pool cancelled it, memory, the password hash) is answered 503 and counts nowhere, so a
     * busy node does not lock valid users out. */
    int rv = status != 0 || (op->status != 0 && op->status != PT_E_UNAUTHORIZED) ? PT_E_UNAVAILABLE
                                                                                 : op->status;
    char ukey[PT_AUTH_USER_MAX + 8], akey[80];
    if (req != NULL) {
        limiter_keys(req, op->name, ukey, sizeof(ukey), akey, sizeof(akey));
        if (rv == PT_E_UNAVAILABLE) {
            pt_log(PT_LOG_WARN, "a login could not be checked", "{s:s}", "error",
                   pt_err_message(status != 0 ? PT_E_INTERNAL : op->status));
        } else if (rv != 0) {
            pt_limiter_fail(s->limiter, ukey, op->now);
            pt_limiter_fail(s->limiter, akey, op->now);
            pt_metrics_auth(PT_METRICS_AUTH_LOGIN_FAILED);
            pt_http_audit(w, req, "login", NULL, NULL, 401, op->name);
        } else {
            pt_limiter_success(s->limiter, ukey);
            pt_metrics_auth(PT_METRICS_AUTH_LOGIN_OK);
            *op->out = op->id;
        }
        op->cb(w, req, rv, 0, op->data);
    }
    OPENSSL_cleanse(op->secret, sizeof(op->secret));
    free(op);
}

int pt_auth_login(struct pt_worker *w, h2o_req_t *req, const char *name, const char *secret,
                  struct pt_identity *out, pt_auth_login_cb cb, const void *data, size_t data_size)
{
    struct pt_auth_service *s = w->node->auth;
    int64_t now = pt_clock_wall_ms();
    char ukey[PT_AUTH_USER_MAX + 8], akey[80];
    limiter_keys(req, name, ukey, sizeof(ukey), akey, sizeof(akey));
    unsigned wait_u = pt_limiter_check(s->limiter, ukey, now);
    unsigned wait_a = pt_limiter_check(s->limiter, akey, now);
    if (wait_u > 0 || wait_a > 0) {
        pt_metrics_auth(PT_METRICS_AUTH_LOGIN_LIMITED);
        pt_http_audit(w, req, "login", NULL, NULL, 429, name);
        cb(w, req, PT_E_TOOMANYREQUESTS, wait_u > wait_a ? wait_u : wait_a, (void *)data);
        return 0;
    }
    if (strlen(name) > PT_AUTH_USER_MAX || strlen(secret) > PT_AUTH_PASSWORD_MAX) {
        cb(w, req, PT_E_UNAUTHORIZED, 0, (void *)data);
        return 0;
    }
    /* Credentials a client repeats on every request were verified moments ago: answer from
     * the cache on the loop; only a miss pays the thread pool and the password hash. */
    if (pt_auth_dir_login_cached(s->dir, name, strlen(name), secret, strlen(secret), now, out) ==
        0) {
        cb(w, req, 0, 0, (void *)data);
        return 0;
    }
    struct login_op *op = calloc(1, sizeof(*op) + data_size);
    if (op == NULL)
        return PT_E_NOMEM;
    op->w = w;
    op->out = out;
    op->cb = cb;
    op->now = now;
    snprintf(op->name, sizeof(op->name), "%s", name);
    snprintf(op->secret, sizeof(op->secret), "%s", secret);
    if (data_size > 0)
        memcpy(op->data, data, data_size);
    op->work.data = op;
    pt_async_bind(&op->async, req);
    if (uv_queue_work(&w->loop, &op->work, login_work, login_after) != 0) {
        pt_async_unbind(&op->async);
        OPENSSL_cleanse(op->secret, sizeof(op->secret));
        free(op);
        return PT_E_INTERNAL;
    }
    return 0;
}

/* Verifies a Bearer access token: 0 and *claims, or PT_E_UNAUTHORIZED. */
static int verify_bearer(struct pt_worker *w, const char *tok, size_t len,
                         struct pt_jwt_claims *claims)
{
    struct pt_auth_service *s = w->node->auth;
    int64_t now = pt_clock_wall_ms();
    pt_auth_dir_refresh(s->dir);
    uint64_t gen = pt_auth_dir_generation(s->dir);
    if (pt_token_cache_get(s->cache, tok, len, now / 1000, gen, claims)) {
        pt_metrics_auth(PT_METRICS_AUTH_CACHE_HIT);
    } else {
        pt_metrics_auth(PT_METRICS_AUTH_CACHE_MISS);
        if (pt_jwt_verify(tok, len, w->node->cfg.auth_service, now / 1000, pt_auth_key_lookup, s,
                          claims) != 0)
            return PT_E_UNAUTHORIZED;
        if (claims->refresh || pt_auth_dir_jwt_revoked(s->dir, claims->jti))
            return PT_E_UNAUTHORIZED;
        pt_token_cache_put(s->cache, tok, len, gen, claims);
    }
    if (claims->refresh)
        return PT_E_UNAUTHORIZED;
    return 0;
}

enum need_kind {
    NEED_OPEN,     /* no check */
    NEED_ANY,      /* accepted credentials, anonymous token included (/v2/) */
    NEED_REPO,     /* actions on a repository */
    NEED_CATALOG,  /* a user or token */
    NEED_IDENTITY, /* a user or token, Bearer accepted (whoami) */
    NEED_USER,     /* a user or token with Basic credentials (own password) */
    NEED_ADMIN,    /* an administrator with Basic credentials */
};

static int ref_is(const struct pt_route *rt, const char *s)
{
    return rt->ref_len == strlen(s) && memcmp(rt->ref, s, rt->ref_len) == 0;
}

static enum need_kind needed(h2o_req_t *req, const struct pt_route *rt, unsigned *actions)
{
    int read = pt_http_method_is(req, "GET") || pt_http_is_head(req);
    *actions = 0;
    switch (rt->id) {
    case PT_ROUTE_BASE:
        return NEED_ANY;
    case PT_ROUTE_CATALOG:
        return NEED_CATALOG;
    case PT_ROUTE_TAGS:
    case PT_ROUTE_REFERRERS:
        *actions = PT_ACTION_PULL;
        return NEED_REPO;
    case PT_ROUTE_MANIFEST:
    case PT_ROUTE_BLOB:
        *actions = read                               ? PT_ACTION_PULL
                   : pt_http_method_is(req, "DELETE") ? PT_ACTION_DELETE
                   : rt->id == PT_ROUTE_MANIFEST      ? PT_ACTION_PUSH
                                                      : PT_ACTION_PULL;
        return NEED_REPO;
    case PT_ROUTE_UPLOADS:
    case PT_ROUTE_UPLOAD:
        *actions = PT_ACTION_PUSH;
        return NEED_REPO;
    case PT_ROUTE_ADMIN: {
        static const char users[] = "users/", pw[] = "/password";
        if (ref_is(rt, "auth/whoami"))
            return NEED_IDENTITY;
        if (rt->ref_len > sizeof(users) - 1 + sizeof(pw) - 1 &&
            memcmp(rt->ref, users, sizeof(users) - 1) == 0 &&
            memcmp(rt->ref + rt->ref_len - (sizeof(pw) - 1), pw, sizeof(pw) - 1) == 0 &&
            pt_http_method_is(req, "PUT"))
            return NEED_USER;
        return NEED_ADMIN;
    }
    default:
        return NEED_OPEN;
    }
}

/* Refuses with 403 and audits. */
static int deny(struct pt_worker *w, h2o_req_t *req, struct pt_auth_ctx *ctx,
                const struct pt_route *rt, const char *message)
{
    char *repo = rt->name != NULL ? pt_api_name(req, rt) : NULL;
    ctx->denied_action = "denied";
    pt_metrics_auth(PT_METRICS_AUTH_DENIED);
    pt_http_audit(w, req, "denied", repo, NULL, 403, NULL);
    pt_http_error(req, PT_E_DENIED, message, NULL);
    return 1;
}

/* 401 with the challenge; audited when credentials were given. */
static int unauthorized(struct pt_worker *w, h2o_req_t *req, struct pt_auth_ctx *ctx,
                        const struct pt_route *rt, const char *scope, const char *error)
{
    if (ctx->given) {
        char *repo = rt->name != NULL ? pt_api_name(req, rt) : NULL;
        pt_http_audit(w, req, "unauthorized", repo, NULL, 401, NULL);
    }
    pt_auth_challenge(w, req, scope, error);
    return 1;
}

/* Throttling ------------------------------------------------------------------------------ */

void pt_auth_throttle_key(const struct pt_auth_ctx *ctx, char *key, size_t klen, char *subject,
                          size_t slen)
{
    int anonymous = ctx == NULL || ctx->id.kind == PT_IDENTITY_ANONYMOUS;
    if (anonymous) {
        snprintf(key, klen, "addr:%s", ctx != NULL ? ctx->client : "-");
        snprintf(subject, slen, "anonymous");
    } else {
        pt_auth_identity_text(&ctx->id, subject, slen);
        snprintf(key, klen, "%s", subject);
    }
}

/* Calls cont, unless req is a registry request over its identity's limits (throttle.h):
 * then answers 429 TOOMANYREQUESTS with Retry-After. */
static void admit(struct pt_worker *w, h2o_req_t *req, struct pt_auth_ctx *ctx,
                  const struct pt_route *rt, pt_auth_gate_cont cont)
{
    struct pt_throttle *t = w->node->throttle;
    if (t == NULL || rt->id > PT_ROUTE_REFERRERS) { /* /v2/ routes only */
        cont(w, req, rt);
        return;
    }
    char key[PT_THROTTLE_KEY_MAX + 1], subject[PT_THROTTLE_KEY_MAX + 1];
    pt_auth_throttle_key(ctx, key, sizeof(key), subject, sizeof(subject));
    int read = pt_http_method_is(req, "GET") || pt_http_is_head(req);
    uint64_t bytes = !read && req->entity.base != NULL ? req->entity.len : 0;
    unsigned wait = pt_throttle_admit(t, key, subject, read ? PT_THROTTLE_READ : PT_THROTTLE_WRITE,
                                      bytes, pt_clock_mono_ms());
    if (wait == 0) {
        cont(w, req, rt);
        return;
    }
    pt_metrics_throttled(read);
    pt_http_headerf(req, "Retry-After", "%u", wait);
    pt_http_error(req, PT_E_TOOMANYREQUESTS,
                  read ? "read rate limit reached: retry later"
                       : "write rate limit reached: retry later",
                  NULL);
}

/* Where a decision goes on once the identity is known (after a login in the thread pool). */
struct gate_state {
    struct pt_route rt; /* borrows from req->path, which lives as long as req */
    pt_auth_gate_cont cont;
    enum need_kind need;
    unsigned need_actions;
    char scope[PT_SCOPE_TEXT_MAX];
};

static const char *scope_of(const struct gate_state *g)
{
    return g->scope[0] != '\0' ? g->scope : NULL;
}

/* The decision for a known identity: calls g->cont or answers req. */
static void decide(struct pt_worker *w, h2o_req_t *req, struct pt_auth_ctx *ctx,
                   const struct gate_state *g)
{
    struct pt_auth_service *s = w->node->auth;
    const struct pt_route *rt = &g->rt;
    const char *scope = scope_of(g);
    int anonymous = ctx->id.kind == PT_IDENTITY_ANONYMOUS;
    int64_t now = pt_clock_wall_ms();
    switch (g->need) {
    case NEED_ANY:
        if (!ctx->given) {
            unauthorized(w, req, ctx, rt, NULL, NULL);
            return;
        }
        break;
    case NEED_CATALOG:
        if (anonymous) {
            unauthorized(w, req, ctx, rt, scope, NULL);
            return;
        }
        if (ctx->claims != NULL && !token_has_catalog(ctx->claims)) {
            unauthorized(w, req, ctx, rt, scope, "insufficient_scope");
            return;
        }
        break;
    case NEED_IDENTITY:
    case NEED_USER:
    case NEED_ADMIN:
        if (anonymous) {
            unauthorized(w, req, ctx, rt, NULL, NULL);
            return;
        }
        if (g->need != NEED_IDENTITY && ctx->scheme != PT_AUTH_BASIC) {
            deny(w, req, ctx, rt, "the admin API takes Basic credentials");
            return;
        }
        if (g->need == NEED_ADMIN && !pt_auth_dir_is_admin(s->dir, &ctx->id, now)) {
            deny(w, req, ctx, rt, "administrators only");
            return;
        }
        break;
    case NEED_REPO: {
        unsigned dir = pt_auth_dir_allowed(s->dir, &ctx->id, rt->name, rt->name_len, now);
        unsigned have = dir;
        if (ctx->claims != NULL)
            have &= token_actions(ctx->claims, rt->name, rt->name_len);
        if ((have & g->need_actions) == g->need_actions)
            break;
        if (!ctx->given || anonymous)
            unauthorized(w, req, ctx, rt, scope, NULL);
        else if (ctx->claims != NULL && (dir & g->need_actions) == g->need_actions)
            unauthorized(w, req, ctx, rt, scope, "insufficient_scope");
        else
            deny(w, req, ctx, rt, NULL);
        return;
    }
    default:
        break;
    }
    pt_metrics_auth(PT_METRICS_AUTH_ALLOWED);
    admit(w, req, ctx, rt, g->cont);
}

static void on_gate_login(struct pt_worker *w, h2o_req_t *req, int status, unsigned retry_after,
                          void *data)
{
    struct gate_state *g = data;
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    if (status == PT_E_TOOMANYREQUESTS) {
        pt_http_headerf(req, "Retry-After", "%u", retry_after);
        pt_http_error(req, PT_E_TOOMANYREQUESTS, "too many failed logins: try again later", NULL);
        return;
    }
    if (status == PT_E_UNAVAILABLE) {
        pt_http_header(req, "Retry-After", "1", 1);
        pt_http_error(req, status, "the credentials could not be checked now: retry", NULL);
        return;
    }
    if (status != 0) {
        pt_auth_challenge(w, req, scope_of(g), NULL);
        return;
    }
    ctx->scheme = PT_AUTH_BASIC;
    decide(w, req, ctx, g);
}

/* Reads the credentials into ctx and decides (now, or after a login in the thread pool). */
static void authenticate(struct pt_worker *w, h2o_req_t *req, struct pt_auth_ctx *ctx,
                         const struct gate_state *g)
{
    const struct pt_route *rt = &g->rt;
    const char *scope = scope_of(g);
    h2o_iovec_t v = pt_http_req_header(req, "authorization");
    if (v.base == NULL) {
        decide(w, req, ctx, g);
        return;
    }
    ctx->given = 1;
    struct pt_auth_header h;
    int rv = pt_auth_header_parse(v.base, v.len, &h);
    if (rv != 0) {
        pt_auth_header_clear(&h);
        unauthorized(w, req, ctx, rt, scope, NULL);
        return;
    }
    if (h.scheme == PT_AUTH_BASIC) {
        rv = pt_auth_login(w, req, h.user, h.password, &ctx->id, on_gate_login, g, sizeof(*g));
        pt_auth_header_clear(&h);
        if (rv != 0)
            pt_http_error(req, rv, NULL, NULL);
        return;
    }
    if (h.scheme == PT_AUTH_BEARER) {
        struct pt_jwt_claims *c = h2o_mem_alloc_pool(&req->pool, sizeof(*c));
        memset(c, 0, sizeof(*c));
        rv = verify_bearer(w, h.token, h.token_len, c);
        pt_auth_header_clear(&h);
        if (rv != 0) {
            unauthorized(w, req, ctx, rt, scope, "invalid_token");
            return;
        }
        ctx->claims = c;
        ctx->scheme = PT_AUTH_BEARER;
        ctx->id.kind = c->sub_kind == PT_JWT_SUB_USER    ? PT_IDENTITY_USER
                       : c->sub_kind == PT_JWT_SUB_TOKEN ? PT_IDENTITY_TOKEN
                                                         : PT_IDENTITY_ANONYMOUS;
        snprintf(ctx->id.name, sizeof(ctx->id.name), "%.*s", PT_AUTH_NAME_MAX, c->sub);
        if (!pt_auth_dir_active(w->node->auth->dir, &ctx->id, pt_clock_wall_ms())) {
            unauthorized(w, req, ctx, rt, scope, "invalid_token");
            return;
        }
        decide(w, req, ctx, g);
        return;
    }
    pt_auth_header_clear(&h);
    unauthorized(w, req, ctx, rt, scope, NULL);
}

void pt_auth_gate(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                  const char *request_id, pt_auth_gate_cont cont)
{
    struct pt_auth_ctx *ctx = attach_ctx(req, request_id);
    struct pt_auth_service *s = w->node->auth;
    struct gate_state g;
    if (s == NULL) {
        admit(w, req, ctx, rt, cont);
        return;
    }
    ctx->enforced = 1;
    g.need = needed(req, rt, &g.need_actions);
    if (g.need == NEED_OPEN) {
        admit(w, req, ctx, rt, cont);
        return;
    }
    g.rt = *rt;
    g.cont = cont;
    g.scope[0] = '\0';
    if (g.need == NEED_REPO &&
        pt_scope_format(rt->name, rt->name_len, g.need_actions, g.scope, sizeof(g.scope)) <= 0)
        g.scope[0] = '\0';
    else if (g.need == NEED_CATALOG)
        snprintf(g.scope, sizeof(g.scope), "%s", PT_SCOPE_CATALOG);
    authenticate(w, req, ctx, &g);
}
