/*
 * api_token.c - GET|POST /token: the token server of access control (README "Access
 * control"), in the shape of CNCF Distribution's token authentication specification
 * (docs/spec/auth/token.md) and its OAuth2 variant (docs/spec/auth/oauth.md).
 *
 *   GET /token?service=&scope=...&offline_token=true&client_id=
 *       Authorization: Basic (a user, or a token id + secret), or none (anonymous: a token
 *       with the anonymous rules' pull grants). offline_token=true adds a refresh_token.
 *   POST /token (application/x-www-form-urlencoded)
 *       grant_type=password&username=&password=  (access_type=offline adds a refresh_token)
 *       grant_type=refresh_token&refresh_token=
 *       and scope=, service=, client_id=
 *   200 {"token", "access_token", "expires_in", "issued_at"[, "refresh_token"]}
 *
 * The access granted is the requested scope intersected with what the identity holds now; a
 * scope it lacks is not an error, it is just not in the token ("registry:catalog:*" is granted
 * to any user or token). Bad credentials: 401 under the login limiter (429 + Retry-After).
 * A refresh token is a JWT of its own kind ("typ":"refresh", no access) that only this
 * endpoint accepts. Responses carry Cache-Control: no-store.
 */
#include <jansson.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api.h"
#include "audit_hook.h"
#include "auth_gate.h"
#include "clock.h"
#include "credentials.h"
#include "err.h"
#include "http.h"
#include "jwt.h"
#include "query.h"
#include "scope.h"
#include "worker.h"

#define TOKEN_BODY_MAX (16 * 1024)

/* The request's parameters: the query (GET) or the form body (POST). */
struct params {
    const char *p;
    size_t len;
};

static int param(const struct params *ps, const char *key, size_t idx, char *out, size_t cap)
{
    return pt_query_get(ps->p, ps->len, key, idx, out, cap);
}

/* Every scope parameter (each may hold several, space-separated). 0 or PT_E_INVALID. */
static int read_scopes(const struct params *ps, struct pt_scope *scopes, size_t *n)
{
    *n = 0;
    for (size_t i = 0;; i++) {
        char *v = malloc(PT_SCOPE_INPUT_MAX + 1);
        if (v == NULL)
            return PT_E_NOMEM;
        int len = param(ps, "scope", i, v, PT_SCOPE_INPUT_MAX + 1);
        if (len == PT_E_NOT_FOUND) {
            free(v);
            return 0;
        }
        size_t got = 0;
        int rv = len < 0 ? PT_E_INVALID
                         : pt_scope_parse(v, (size_t)len, scopes + *n, PT_SCOPE_MAX - *n, &got);
        free(v);
        if (rv != 0)
            return PT_E_INVALID;
        *n += got;
    }
}

static void iso_time(int64_t secs, char *buf, size_t size)
{
    time_t t = (time_t)secs;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Fills the identity part of c. */
static void set_subject(struct pt_jwt_claims *c, const struct pt_identity *id)
{
    c->sub_kind = id->kind == PT_IDENTITY_USER    ? PT_JWT_SUB_USER
                  : id->kind == PT_IDENTITY_TOKEN ? PT_JWT_SUB_TOKEN
                                                  : PT_JWT_SUB_ANONYMOUS;
    snprintf(c->sub, sizeof(c->sub), "%s", id->kind == PT_IDENTITY_ANONYMOUS ? "" : id->name);
}

static void issue(struct pt_worker *w, h2o_req_t *req, const struct pt_identity *id,
                  const struct pt_scope *scopes, size_t n_scopes, int offline)
{
    struct pt_auth_service *s = w->node->auth;
    const struct pt_config *cfg = &w->node->cfg;
    int64_t now_ms = pt_clock_wall_ms(), now = now_ms / 1000;
    struct pt_jwt_claims *c = calloc(1, sizeof(*c));
    char *token = NULL, *refresh = NULL;
    if (c == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    snprintf(c->iss, sizeof(c->iss), "portolan/%s", cfg->region);
    snprintf(c->aud, sizeof(c->aud), "%s", cfg->auth_service);
    set_subject(c, id);
    c->iat = now;
    c->nbf = now;
    c->exp = now + (int64_t)(cfg->token_ttl_ms / 1000);
    char granted_text[1024] = "";
    size_t gt = 0;
    for (size_t i = 0; i < n_scopes && c->n_access < PT_JWT_ACCESS_MAX; i++) {
        const struct pt_scope *sc = &scopes[i];
        unsigned got;
        if (sc->registry)
            got = id->kind != PT_IDENTITY_ANONYMOUS && pt_auth_dir_active(s->dir, id, now_ms)
                      ? PT_ACTIONS_DOCKER_ALL
                      : 0;
        else
            got = sc->actions & pt_auth_dir_allowed(s->dir, id, sc->name, strlen(sc->name), now_ms);
        got &= PT_ACTIONS_DOCKER_ALL;
        if (got == 0)
            continue;
        struct pt_jwt_access *a = &c->access[c->n_access++];
        a->registry = sc->registry;
        snprintf(a->name, sizeof(a->name), "%s", sc->registry ? "catalog" : sc->name);
        a->actions = got;
        char acts[64];
        pt_scope_actions_format(got, acts, sizeof(acts));
        int k = snprintf(granted_text + gt, sizeof(granted_text) - gt, "%s%s:%s:%s", gt ? " " : "",
                         sc->registry ? "registry" : "repository", a->name, acts);
        if (k > 0 && gt + (size_t)k < sizeof(granted_text))
            gt += (size_t)k;
    }
    struct pt_jwt_key *key = pt_auth_service_key(s);
    int rv = pt_jwt_sign(key, c, &token);
    if (rv == 0 && offline && id->kind != PT_IDENTITY_ANONYMOUS) {
        struct pt_jwt_claims *r = calloc(1, sizeof(*r));
        if (r == NULL) {
            rv = PT_E_NOMEM;
        } else {
            memcpy(r->iss, c->iss, sizeof(r->iss));
            memcpy(r->aud, c->aud, sizeof(r->aud));
            set_subject(r, id);
            r->iat = now;
            r->nbf = now;
            r->exp = now + (int64_t)(cfg->refresh_token_ttl_ms / 1000);
            r->refresh = 1;
            rv = pt_jwt_jti_generate(r->jti, sizeof(r->jti));
            if (rv == 0)
                rv = pt_jwt_sign(key, r, &refresh);
            free(r);
        }
    }
    if (rv != 0) {
        free(c);
        free(token);
        free(refresh);
        pt_http_error(req, rv == PT_E_NOMEM ? rv : PT_E_INTERNAL, "cannot sign the token", NULL);
        return;
    }
    char issued[32];
    iso_time(now, issued, sizeof(issued));
    json_t *o = json_pack("{s:s,s:s,s:I,s:s}", "token", token, "access_token", token, "expires_in",
                          (json_int_t)(c->exp - now), "issued_at", issued);
    if (o != NULL && refresh != NULL)
        json_object_set_new(o, "refresh_token", json_string(refresh));
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    free(token);
    free(refresh);
    free(c);
    if (text == NULL) {
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    pt_http_audit(w, req, "token", NULL, NULL, 200, granted_text[0] ? granted_text : "no access");
    pt_http_header(req, "Cache-Control", "no-store", 8);
    pt_http_send(req, 200, "application/json", text, strlen(text));
    OPENSSL_cleanse(text, strlen(text));
    free(text);
}

/* A failed login on /token: 401 (or 429 with Retry-After). */
static void refuse_login(h2o_req_t *req, int rv, unsigned retry)
{
    pt_http_header(req, "Cache-Control", "no-store", 8);
    if (rv == PT_E_TOOMANYREQUESTS) {
        pt_http_headerf(req, "Retry-After", "%u", retry);
        pt_http_error(req, PT_E_TOOMANYREQUESTS, "too many failed logins: try again later", NULL);
        return;
    }
    if (rv == PT_E_UNAVAILABLE) { /* no verdict on the credentials (auth_gate.c) */
        pt_http_header(req, "Retry-After", "1", 1);
        pt_http_error(req, rv, "the credentials could not be checked now: retry", NULL);
        return;
    }
    pt_http_header(req, "WWW-Authenticate", "Basic realm=\"portolan\"", 22);
    pt_http_error(req, PT_E_UNAUTHORIZED, "invalid user name or password", NULL);
}

/* Checks a refresh token and sets *id from it. 0 or PT_E_UNAUTHORIZED. */
static int use_refresh(struct pt_worker *w, const char *tok, size_t len, struct pt_identity *id)
{
    struct pt_auth_service *s = w->node->auth;
    struct pt_jwt_claims *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PT_E_NOMEM;
    int64_t now = pt_clock_wall_ms();
    int rv =
        pt_jwt_verify(tok, len, w->node->cfg.auth_service, now / 1000, pt_auth_key_lookup, s, c);
    if (rv == 0 && (!c->refresh || pt_auth_dir_jwt_revoked(s->dir, c->jti)))
        rv = PT_E_UNAUTHORIZED;
    if (rv == 0) {
        id->kind = c->sub_kind == PT_JWT_SUB_USER    ? PT_IDENTITY_USER
                   : c->sub_kind == PT_JWT_SUB_TOKEN ? PT_IDENTITY_TOKEN
                                                     : PT_IDENTITY_ANONYMOUS;
        snprintf(id->name, sizeof(id->name), "%.*s", PT_AUTH_NAME_MAX, c->sub);
        if (id->kind == PT_IDENTITY_ANONYMOUS || !pt_auth_dir_active(s->dir, id, now))
            rv = PT_E_UNAUTHORIZED;
    }
    free(c);
    return rv;
}

static int check_service(struct pt_worker *w, h2o_req_t *req, const struct params *ps)
{
    char svc[256];
    int n = param(ps, "service", 0, svc, sizeof(svc));
    if (n == PT_E_NOT_FOUND || (n >= 0 && strcmp(svc, w->node->cfg.auth_service) == 0))
        return 0;
    pt_http_error(req, PT_E_INVALID,
                  "unknown service: this registry's service is named in its "
                  "WWW-Authenticate challenge",
                  NULL);
    return -1;
}

static int flag_true(const struct params *ps, const char *key, const char *want)
{
    char v[16];
    return param(ps, key, 0, v, sizeof(v)) >= 0 && strcmp(v, want) == 0;
}

/* What /token issues once a login succeeded (carried through the thread pool). */
struct pending {
    struct pt_scope scopes[PT_SCOPE_MAX];
    size_t n;
    int offline;
};

static void on_login(struct pt_worker *w, h2o_req_t *req, int status, unsigned retry_after,
                     void *data)
{
    struct pending *p = data;
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    if (status != 0) {
        refuse_login(req, status, retry_after);
        return;
    }
    issue(w, req, &ctx->id, p->scopes, p->n, p->offline);
}

/* Logs in name/secret and then issues; answers req in every case. */
static void login_then_issue(struct pt_worker *w, h2o_req_t *req, const char *name,
                             const char *secret, const struct pending *p)
{
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    int rv = ctx != NULL ? pt_auth_login(w, req, name, secret, &ctx->id, on_login, p, sizeof(*p))
                         : PT_E_INTERNAL;
    if (rv != 0)
        pt_http_error(req, rv, NULL, NULL);
}

static void token_get(struct pt_worker *w, h2o_req_t *req)
{
    h2o_iovec_t q = pt_http_query(req);
    struct params ps = {q.base, q.len};
    struct pt_scope scopes[PT_SCOPE_MAX];
    size_t n = 0;
    if (check_service(w, req, &ps) != 0)
        return;
    if (read_scopes(&ps, scopes, &n) != 0) {
        pt_http_error(req, PT_E_INVALID, "invalid scope", NULL);
        return;
    }
    struct pt_identity anon = {.kind = PT_IDENTITY_ANONYMOUS};
    int offline = flag_true(&ps, "offline_token", "true");
    h2o_iovec_t v = pt_http_req_header(req, "authorization");
    if (v.base == NULL) {
        issue(w, req, &anon, scopes, n, offline);
        return;
    }
    struct pt_auth_header h;
    if (pt_auth_header_parse(v.base, v.len, &h) != 0 || h.scheme != PT_AUTH_BASIC) {
        pt_auth_header_clear(&h);
        refuse_login(req, PT_E_UNAUTHORIZED, 0);
        return;
    }
    struct pending *p = malloc(sizeof(*p));
    if (p == NULL) {
        pt_auth_header_clear(&h);
        pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        return;
    }
    memcpy(p->scopes, scopes, n * sizeof(scopes[0]));
    p->n = n;
    p->offline = offline;
    login_then_issue(w, req, h.user, h.password, p);
    pt_auth_header_clear(&h);
    free(p);
}

static void token_post(struct pt_worker *w, h2o_req_t *req)
{
    size_t len = req->entity.base != NULL ? req->entity.len : 0;
    if (len > TOKEN_BODY_MAX) {
        pt_http_error(req, PT_E_TOO_LARGE, NULL, NULL);
        return;
    }
    struct params ps = {len > 0 ? req->entity.base : "", len};
    struct pt_scope scopes[PT_SCOPE_MAX];
    size_t n = 0;
    if (check_service(w, req, &ps) != 0)
        return;
    if (read_scopes(&ps, scopes, &n) != 0) {
        pt_http_error(req, PT_E_INVALID, "invalid scope", NULL);
        return;
    }
    struct pt_auth_ctx *ctx = pt_auth_ctx_of(req);
    struct pt_identity scratch = {.kind = PT_IDENTITY_ANONYMOUS};
    struct pt_identity *id = ctx != NULL ? &ctx->id : &scratch;
    char grant[32];
    if (param(&ps, "grant_type", 0, grant, sizeof(grant)) < 0) {
        pt_http_error(req, PT_E_INVALID, "grant_type must be password or refresh_token", NULL);
        return;
    }
    if (strcmp(grant, "password") == 0) {
        char user[PT_AUTH_NAME_MAX * 2 + 1];
        char *pw = malloc(PT_AUTH_PASSWORD_MAX + 1);
        if (pw == NULL) {
            pt_http_error(req, PT_E_NOMEM, NULL, NULL);
            return;
        }
        int ul = param(&ps, "username", 0, user, sizeof(user));
        int pl = param(&ps, "password", 0, pw, PT_AUTH_PASSWORD_MAX + 1);
        struct pending *p = malloc(sizeof(*p));
        if (p == NULL) {
            pt_http_error(req, PT_E_NOMEM, NULL, NULL);
        } else if (ul <= 0 || pl <= 0) {
            refuse_login(req, PT_E_UNAUTHORIZED, 0);
        } else {
            memcpy(p->scopes, scopes, n * sizeof(scopes[0]));
            p->n = n;
            p->offline = flag_true(&ps, "access_type", "offline");
            login_then_issue(w, req, user, pw, p);
        }
        free(p);
        OPENSSL_cleanse(pw, PT_AUTH_PASSWORD_MAX + 1);
        free(pw);
        return;
    }
    if (strcmp(grant, "refresh_token") == 0) {
        char *tok = malloc(PT_JWT_MAX + 1);
        if (tok == NULL) {
            pt_http_error(req, PT_E_NOMEM, NULL, NULL);
            return;
        }
        int tl = param(&ps, "refresh_token", 0, tok, PT_JWT_MAX + 1);
        int rv = tl > 0 ? use_refresh(w, tok, (size_t)tl, id) : PT_E_UNAUTHORIZED;
        free(tok);
        if (rv != 0) {
            pt_http_audit(w, req, "login", NULL, NULL, 401, "refresh token refused");
            pt_http_header(req, "Cache-Control", "no-store", 8);
            pt_http_error(req, PT_E_UNAUTHORIZED, "invalid refresh token", NULL);
            return;
        }
        issue(w, req, id, scopes, n, 0);
        return;
    }
    pt_http_error(req, PT_E_INVALID, "grant_type must be password or refresh_token", NULL);
}

void pt_api_token(struct pt_worker *w, h2o_req_t *req, const struct pt_route *rt)
{
    (void)rt;
    if (w->node->auth == NULL) {
        pt_http_error(req, PT_E_NOT_FOUND, "access control is off: no tokens are needed", NULL);
        return;
    }
    if (pt_http_method_is(req, "GET"))
        token_get(w, req);
    else if (pt_http_method_is(req, "POST"))
        token_post(w, req);
    else
        pt_http_error(req, PT_E_METHOD, NULL, NULL);
}
