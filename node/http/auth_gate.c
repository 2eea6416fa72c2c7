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
 *   /healthz, /metrics, /token    open
 * Refusals: no credentials -> 401 + challenge; a token lacking a scope its identity holds ->
 * 401 + challenge with error="insufficient_scope" (the client fetches a wider token);
 * otherwise -> 403 DENIED. Every refusal after credentials were given is audited.
 *
 * The yescrypt check of a Basic password runs on the worker loop (a few milliseconds); the
 * directory remembers successful checks for a minute, failures are throttled by the limiter.
 */
#include "auth_gate.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include "api.h"
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

int pt_auth_login(struct pt_worker *w, h2o_req_t *req, const char *name, const char *secret,
                  struct pt_identity *out, unsigned *retry_after)
{
    struct pt_auth_service *s = w->node->auth;
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    int64_t now = pt_clock_wall_ms();
    char ukey[PT_AUTH_NAME_MAX * 2 + 8], akey[80];
    snprintf(ukey, sizeof(ukey), "u:%s", name);
    snprintf(akey, sizeof(akey), "a:%s", ctx != NULL ? ctx->client : "-");
    unsigned wait_u = pt_limiter_check(s->limiter, ukey, now);
    unsigned wait_a = pt_limiter_check(s->limiter, akey, now);
    if (wait_u > 0 || wait_a > 0) {
        *retry_after = wait_u > wait_a ? wait_u : wait_a;
        pt_metrics_auth(PT_METRICS_AUTH_LOGIN_LIMITED);
        pt_http_audit(w, req, "login", NULL, NULL, 429, name);
        return PT_E_TOOMANYREQUESTS;
    }
    int rv = pt_auth_dir_login(s->dir, name, strlen(name), secret, strlen(secret), now, out);
    if (rv != 0) {
        pt_limiter_fail(s->limiter, ukey, now);
        pt_limiter_fail(s->limiter, akey, now);
        pt_metrics_auth(PT_METRICS_AUTH_LOGIN_FAILED);
        pt_http_audit(w, req, "login", NULL, NULL, 401, name);
        return PT_E_UNAUTHORIZED;
    }
    pt_limiter_success(s->limiter, ukey);
    pt_metrics_auth(PT_METRICS_AUTH_LOGIN_OK);
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

/* Reads the credentials into ctx. Returns 0, or 1 when it answered req (bad or limited). */
static int authenticate(struct pt_worker *w, h2o_req_t *req, struct pt_auth_ctx *ctx,
                        const struct pt_route *rt, const char *scope)
{
    h2o_iovec_t v = pt_http_req_header(req, "authorization");
    if (v.base == NULL)
        return 0;
    ctx->given = 1;
    struct pt_auth_header h;
    int rv = pt_auth_header_parse(v.base, v.len, &h);
    if (rv != 0) {
        pt_auth_header_clear(&h);
        return unauthorized(w, req, ctx, rt, scope, NULL);
    }
    if (h.scheme == PT_AUTH_BASIC) {
        unsigned retry = 0;
        rv = pt_auth_login(w, req, h.user, h.password, &ctx->id, &retry);
        pt_auth_header_clear(&h);
        if (rv == PT_E_TOOMANYREQUESTS) {
            pt_http_headerf(req, "Retry-After", "%u", retry);
            pt_http_error(req, PT_E_TOOMANYREQUESTS, "too many failed logins: try again later",
                          NULL);
            return 1;
        }
        if (rv != 0) {
            pt_auth_challenge(w, req, scope, NULL);
            return 1;
        }
        ctx->scheme = PT_AUTH_BASIC;
        return 0;
    }
    if (h.scheme == PT_AUTH_BEARER) {
        struct pt_jwt_claims *c = h2o_mem_alloc_pool(&req->pool, sizeof(*c));
        memset(c, 0, sizeof(*c));
        rv = verify_bearer(w, h.token, h.token_len, c);
        pt_auth_header_clear(&h);
        if (rv != 0)
            return unauthorized(w, req, ctx, rt, scope, "invalid_token");
        ctx->claims = c;
        ctx->scheme = PT_AUTH_BEARER;
        ctx->id.kind = c->sub_kind == PT_JWT_SUB_USER    ? PT_IDENTITY_USER
                       : c->sub_kind == PT_JWT_SUB_TOKEN ? PT_IDENTITY_TOKEN
                                                         : PT_IDENTITY_ANONYMOUS;
        snprintf(ctx->id.name, sizeof(ctx->id.name), "%.*s", PT_AUTH_NAME_MAX, c->sub);
        if (!pt_auth_dir_active(w->node->auth->dir, &ctx->id, pt_clock_wall_ms()))
            return unauthorized(w, req, ctx, rt, scope, "invalid_token");
        return 0;
    }
    pt_auth_header_clear(&h);
    return unauthorized(w, req, ctx, rt, scope, NULL);
}

int pt_auth_gate(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt,
                 const char *request_id)
{
    struct pt_auth_ctx *ctx = attach_ctx(req, request_id);
    struct pt_auth_service *s = w->node->auth;
    if (s == NULL)
        return 0;
    ctx->enforced = 1;
    unsigned need_actions;
    enum need_kind need = needed(req, rt, &need_actions);
    if (need == NEED_OPEN)
        return 0;

    char scope_buf[PT_SCOPE_TEXT_MAX];
    const char *scope = NULL;
    if (need == NEED_REPO &&
        pt_scope_format(rt->name, rt->name_len, need_actions, scope_buf, sizeof(scope_buf)) > 0)
        scope = scope_buf;
    else if (need == NEED_CATALOG)
        scope = PT_SCOPE_CATALOG;
    if (authenticate(w, req, ctx, rt, scope))
        return 1;

    int anonymous = ctx->id.kind == PT_IDENTITY_ANONYMOUS;
    int64_t now = pt_clock_wall_ms();
    switch (need) {
    case NEED_ANY:
        if (!ctx->given)
            return unauthorized(w, req, ctx, rt, NULL, NULL);
        break;
    case NEED_CATALOG:
        if (anonymous)
            return ctx->given ? deny(w, req, ctx, rt, "the catalog needs a user or token")
                              : unauthorized(w, req, ctx, rt, scope, NULL);
        if (ctx->claims != NULL && !token_has_catalog(ctx->claims))
            return unauthorized(w, req, ctx, rt, scope, "insufficient_scope");
        break;
    case NEED_IDENTITY:
    case NEED_USER:
    case NEED_ADMIN:
        if (anonymous)
            return ctx->given ? deny(w, req, ctx, rt, "the admin API needs a user or token")
                              : unauthorized(w, req, ctx, rt, NULL, NULL);
        if (need != NEED_IDENTITY && ctx->scheme != PT_AUTH_BASIC)
            return deny(w, req, ctx, rt, "the admin API takes Basic credentials");
        if (need == NEED_ADMIN && !pt_auth_dir_is_admin(s->dir, &ctx->id, now))
            return deny(w, req, ctx, rt, "administrators only");
        break;
    case NEED_REPO: {
        unsigned dir = pt_auth_dir_allowed(s->dir, &ctx->id, rt->name, rt->name_len, now);
        unsigned have = dir;
        if (ctx->claims != NULL)
            have &= token_actions(ctx->claims, rt->name, rt->name_len);
        if ((have & need_actions) == need_actions)
            break;
        if (!ctx->given)
            return unauthorized(w, req, ctx, rt, scope, NULL);
        if (ctx->claims != NULL && (dir & need_actions) == need_actions)
            return unauthorized(w, req, ctx, rt, scope, "insufficient_scope");
        return deny(w, req, ctx, rt, NULL);
    }
    default:
        break;
    }
    pt_metrics_auth(PT_METRICS_AUTH_ALLOWED);
    return 0;
}
