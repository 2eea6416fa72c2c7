/*
 * directory.c - the in-memory view of access control (see directory.h).
 *
 * Views: a struct view is an immutable copy of every access control record, sorted by name
 * for binary search, built by one walk of the metastore (pt_metastore_auth_load reads one
 * consistent RocksDB view). The directory points at the current view; a caller takes a
 * reference under `mu` (a pointer copy and an increment), uses the view without any lock,
 * and drops the reference with an atomic decrement; the last reference frees it. A reload
 * (serialized by `reload_mu`) builds the new view first, then swaps the pointer under `mu`,
 * so readers never wait for RocksDB.
 *
 * Freshness: the view remembers the metastore's auth generation it was built at, read
 * before the walk. The metastore moves the generation after a commit is visible, so a
 * view built at generation g holds at least everything committed before g; if a commit lands
 * during the walk the generation has moved past g and the next call reloads again. The
 * check on every call is one atomic load of each counter.
 *
 * Login cache (login_cache.c): successful logins keyed by a per-process HMAC of name and
 * secret, tagged with the view generation they were checked against and an expiry (now + 60
 * s, the caller's clock); an entry of another generation is dead, so any change of the
 * records drops every remembered login at once. A hit still checks that the identity is
 * active in the current view (a token may expire within the 60 s). Failures are never
 * remembered.
 *
 * Unknown user names cost one password verification against a fixed dummy hash, so the time
 * a wrong login takes does not tell whether the name exists.
 */
#include "directory.h"

#include <openssl/crypto.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "buf.h"
#include "directory_int.h"
#include "err.h"
#include "login_cache.h"
#include "password.h"

/* ---- views ----------------------------------------------------------------------------- */

static void view_free(struct view *v)
{
    for (size_t i = 0; i < v->n_users; i++)
        free(v->users[i].grants);
    for (size_t i = 0; i < v->n_tokens; i++)
        free(v->tokens[i].grants);
    free(v->users);
    free(v->tokens);
    free(v->anon);
    free(v->keys);
    free(v->revoked);
    free(v);
}

void dir_view_put(struct view *v)
{
    if (v != NULL && atomic_fetch_sub(&v->refs, 1) == 1)
        view_free(v);
}

/* Owned copy of n grants (NULL for none); false on allocation failure. *all gets their
 * union. */
static bool grants_copy(struct pt_grant **out, unsigned *all, const struct pt_auth_grant_rec *g,
                        size_t n)
{
    *out = NULL;
    *all = 0;
    if (n == 0)
        return true;
    struct pt_grant *v = malloc(n * sizeof(*v));
    if (v == NULL)
        return false;
    for (size_t i = 0; i < n; i++) {
        memcpy(v[i].pattern, g[i].pattern, sizeof(v[i].pattern));
        v[i].actions = g[i].actions;
        *all |= g[i].actions;
    }
    *out = v;
    return true;
}

static int on_user(void *arg, const struct pt_auth_user_rec *r)
{
    struct view *v = arg;
    if (v->n_users == v->cap_users &&
        pt_array_grow(&v->users, &v->cap_users, sizeof(*v->users), 16, 0) != 0)
        return PT_E_NOMEM;
    struct duser *u = &v->users[v->n_users];
    memset(u, 0, sizeof(*u));
    memcpy(u->name, r->name, sizeof(u->name));
    memcpy(u->hash, r->password_hash, sizeof(u->hash));
    u->disabled = r->disabled;
    u->created_ms = r->created_ms;
    if (!grants_copy(&u->grants, &u->all, r->grants, r->n_grants))
        return PT_E_NOMEM;
    u->n_grants = r->n_grants;
    v->n_users++;
    return 0;
}

static int on_token(void *arg, const struct pt_auth_token_rec *r)
{
    struct view *v = arg;
    if (v->n_tokens == v->cap_tokens &&
        pt_array_grow(&v->tokens, &v->cap_tokens, sizeof(*v->tokens), 16, 0) != 0)
        return PT_E_NOMEM;
    struct dtoken *t = &v->tokens[v->n_tokens];
    memset(t, 0, sizeof(*t));
    memcpy(t->id, r->id, sizeof(t->id));
    memcpy(t->hash, r->secret_hash, sizeof(t->hash));
    memcpy(t->description, r->description, sizeof(t->description));
    memcpy(t->owner, r->owner, sizeof(t->owner));
    t->disabled = r->disabled;
    t->created_ms = r->created_ms;
    t->expires_ms = r->expires_ms;
    if (!grants_copy(&t->grants, &t->all, r->grants, r->n_grants))
        return PT_E_NOMEM;
    t->n_grants = r->n_grants;
    v->n_tokens++;
    return 0;
}

static int on_anonymous(void *arg, const char *pattern)
{
    struct view *v = arg;
    if (v->n_anon == v->cap_anon &&
        pt_array_grow(&v->anon, &v->cap_anon, sizeof(*v->anon), 8, 0) != 0)
        return PT_E_NOMEM;
    struct danon *a = &v->anon[v->n_anon++];
    a->len = strlen(pattern); /* validated by the store: at most PT_AUTH_PATTERN_MAX */
    memcpy(a->pattern, pattern, a->len + 1);
    return 0;
}

static int on_key(void *arg, const struct pt_auth_key_rec *r)
{
    struct view *v = arg;
    if (v->n_keys == v->cap_keys &&
        pt_array_grow(&v->keys, &v->cap_keys, sizeof(*v->keys), 4, 0) != 0)
        return PT_E_NOMEM;
    v->keys[v->n_keys++] = *r;
    return 0;
}

static int on_revoked(void *arg, const struct pt_auth_revoked_rec *r)
{
    struct view *v = arg;
    if (v->n_revoked == v->cap_revoked &&
        pt_array_grow(&v->revoked, &v->cap_revoked, sizeof(*v->revoked), 16, 0) != 0)
        return PT_E_NOMEM;
    v->revoked[v->n_revoked++] = *r;
    return 0;
}

/* Every array is sorted by its first member, a NUL-terminated name. */
static int cmp_name(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static int view_load(struct pt_metastore *ms, uint64_t gen, struct view **out)
{
    static const struct pt_metastore_auth_visitor visitor = {
        .user = on_user,
        .token = on_token,
        .anonymous = on_anonymous,
        .key = on_key,
        .revoked = on_revoked,
    };
    struct view *v = calloc(1, sizeof(*v));
    if (v == NULL)
        return PT_E_NOMEM;
    atomic_init(&v->refs, 1);
    v->gen = gen;
    int rv = pt_metastore_auth_load(ms, &visitor, v);
    if (rv != 0) {
        view_free(v);
        return rv;
    }
    /* the store walks in byte-wise key order already; sorting again keeps the binary
     * searches below independent of that */
    if (v->n_users > 1)
        qsort(v->users, v->n_users, sizeof(*v->users), cmp_name);
    if (v->n_tokens > 1)
        qsort(v->tokens, v->n_tokens, sizeof(*v->tokens), cmp_name);
    if (v->n_anon > 1)
        qsort(v->anon, v->n_anon, sizeof(*v->anon), cmp_name);
    if (v->n_keys > 1)
        qsort(v->keys, v->n_keys, sizeof(*v->keys), cmp_name);
    if (v->n_revoked > 1)
        qsort(v->revoked, v->n_revoked, sizeof(*v->revoked), cmp_name);
    *out = v;
    return 0;
}

/* Binary search of name in a sorted array of n elements of size bytes (name first). */
void *dir_find(const void *base, size_t n, size_t size, const char *name)
{
    if (n == 0 || name == NULL)
        return NULL;
    return bsearch(name, base, n, size, cmp_name);
}

struct duser *dir_find_user(const struct view *v, const char *name)
{
    return dir_find(v->users, v->n_users, sizeof(*v->users), name);
}

struct dtoken *dir_find_token(const struct view *v, const char *id)
{
    return dir_find(v->tokens, v->n_tokens, sizeof(*v->tokens), id);
}

static bool token_live(const struct dtoken *t, int64_t now_ms)
{
    return !t->disabled && (t->expires_ms == 0 || now_ms < t->expires_ms);
}

struct pt_auth_dir {
    struct pt_metastore *ms;
    pthread_mutex_t mu;        /* guards cur (the pointer and taking a reference) */
    pthread_mutex_t reload_mu; /* one reload at a time */
    struct view *cur;
    _Atomic uint64_t gen; /* cur->gen, readable without mu */
    struct pt_login_cache *cache;
    _Atomic uint64_t hits, verifications;
};

/* ---- open, close, reload --------------------------------------------------------------- */

int pt_auth_dir_open(struct pt_metastore *ms, struct pt_auth_dir **out)
{
    struct pt_auth_dir *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return PT_E_NOMEM;
    d->ms = ms;
    int rv = pt_login_cache_create(PT_AUTH_LOGIN_CACHE_MAX, PT_AUTH_LOGIN_CACHE_TTL_MS, &d->cache);
    if (rv != 0)
        goto err;
    uint64_t gen = pt_metastore_auth_generation(ms);
    rv = view_load(ms, gen, &d->cur);
    if (rv != 0)
        goto err_after_cache;
    atomic_init(&d->gen, gen);
    pthread_mutex_init(&d->mu, NULL);
    pthread_mutex_init(&d->reload_mu, NULL);
    *out = d;
    return 0;

err_after_cache:
    pt_login_cache_free(d->cache);
err:
    free(d);
    return rv;
}

void pt_auth_dir_close(struct pt_auth_dir *d)
{
    if (d == NULL)
        return;
    dir_view_put(d->cur);
    pt_login_cache_free(d->cache);
    pthread_mutex_destroy(&d->mu);
    pthread_mutex_destroy(&d->reload_mu);
    free(d);
}

int pt_auth_dir_refresh(struct pt_auth_dir *d)
{
    uint64_t want = pt_metastore_auth_generation(d->ms);
    if (want == atomic_load(&d->gen))
        return 0;
    pthread_mutex_lock(&d->reload_mu);
    int rv = 0;
    want = pt_metastore_auth_generation(d->ms);
    if (want != atomic_load(&d->gen)) {
        struct view *v;
        rv = view_load(d->ms, want, &v);
        if (rv == 0) {
            pthread_mutex_lock(&d->mu);
            struct view *old = d->cur;
            d->cur = v;
            atomic_store(&d->gen, want);
            pthread_mutex_unlock(&d->mu);
            dir_view_put(old);
        }
    }
    pthread_mutex_unlock(&d->reload_mu);
    return rv;
}

uint64_t pt_auth_dir_generation(struct pt_auth_dir *d)
{
    return atomic_load(&d->gen);
}

uint64_t pt_auth_dir_cache_hits(struct pt_auth_dir *d)
{
    return atomic_load(&d->hits);
}

uint64_t pt_auth_dir_verifications(struct pt_auth_dir *d)
{
    return atomic_load(&d->verifications);
}

/* The current view (after a refresh), with a reference the caller drops with view_put. A
 * failed reload keeps the previous view. */
struct view *dir_view_get(struct pt_auth_dir *d)
{
    (void)pt_auth_dir_refresh(d);
    pthread_mutex_lock(&d->mu);
    struct view *v = d->cur;
    atomic_fetch_add(&v->refs, 1);
    pthread_mutex_unlock(&d->mu);
    return v;
}

/* ---- questions ------------------------------------------------------------------------- */

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[PT_PASSWORD_HASH_MAX];

static void dummy_init(void)
{
    if (pt_password_hash("portolan-unknown-user", 21, dummy_hash, sizeof(dummy_hash)) != 0)
        dummy_hash[0] = '\0'; /* verification then fails fast; only the timing differs */
}

static bool active_in(const struct view *v, const struct pt_identity *id, int64_t now_ms)
{
    switch (id->kind) {
    case PT_IDENTITY_ANONYMOUS:
        return true;
    case PT_IDENTITY_USER: {
        const struct duser *u = dir_find_user(v, id->name);
        return u != NULL && !u->disabled;
    }
    case PT_IDENTITY_TOKEN: {
        const struct dtoken *t = dir_find_token(v, id->name);
        return t != NULL && token_live(t, now_ms);
    }
    }
    return false;
}

static void identity_set(struct pt_identity *out, enum pt_identity_kind kind, const char *name)
{
    memset(out, 0, sizeof(*out));
    out->kind = kind;
    memcpy(out->name, name, strlen(name) + 1); /* a stored name: at most PT_AUTH_NAME_MAX */
}

int pt_auth_dir_login_cached(struct pt_auth_dir *d, const char *name, size_t name_len,
                             const char *secret, size_t secret_len, int64_t now_ms,
                             struct pt_identity *out)
{
    if (!pt_auth_name_valid(name, name_len) || secret == NULL || secret_len == 0 ||
        secret_len > PT_PASSWORD_MAX || memchr(secret, '\0', secret_len) != NULL)
        return PT_E_NOT_FOUND;
    unsigned char mac[PT_LOGIN_MAC_LEN];
    if (pt_login_cache_mac(d->cache, name, name_len, secret, secret_len, mac) != 0)
        return PT_E_NOT_FOUND;
    struct view *v = dir_view_get(d);
    struct pt_identity id;
    int rv = PT_E_NOT_FOUND;
    if (pt_login_cache_get(d->cache, mac, v->gen, now_ms, &id) && active_in(v, &id, now_ms)) {
        atomic_fetch_add_explicit(&d->hits, 1, memory_order_relaxed);
        *out = id;
        rv = 0;
    }
    dir_view_put(v);
    OPENSSL_cleanse(mac, sizeof(mac));
    return rv;
}

int pt_auth_dir_login(struct pt_auth_dir *d, const char *name, size_t name_len, const char *secret,
                      size_t secret_len, int64_t now_ms, struct pt_identity *out)
{
    if (!pt_auth_name_valid(name, name_len) || secret == NULL || secret_len == 0 ||
        secret_len > PT_PASSWORD_MAX || memchr(secret, '\0', secret_len) != NULL)
        return PT_E_UNAUTHORIZED;
    char z[PT_AUTH_NAME_MAX + 1];
    memcpy(z, name, name_len);
    z[name_len] = '\0';
    unsigned char mac[PT_LOGIN_MAC_LEN];
    int rv = pt_login_cache_mac(d->cache, name, name_len, secret, secret_len, mac);
    if (rv != 0)
        return PT_E_UNAVAILABLE;

    struct view *v = dir_view_get(d);
    struct pt_identity id;
    if (pt_login_cache_get(d->cache, mac, v->gen, now_ms, &id) && active_in(v, &id, now_ms)) {
        atomic_fetch_add_explicit(&d->hits, 1, memory_order_relaxed);
        *out = id;
        dir_view_put(v);
        return 0;
    }

    rv = PT_E_UNAUTHORIZED;
    atomic_fetch_add_explicit(&d->verifications, 1, memory_order_relaxed);
    const struct dtoken *t = NULL;
    if (secret_len > 4 && memcmp(secret, PT_SECRET_PREFIX, 4) == 0)
        t = dir_find_token(v, z);
    if (t != NULL) {
        if (pt_secret_verify(secret, secret_len, t->hash) && token_live(t, now_ms)) {
            identity_set(&id, PT_IDENTITY_TOKEN, t->id);
            rv = 0;
        }
    } else {
        const struct duser *u = dir_find_user(v, z);
        if (u != NULL) {
            int ok = pt_password_check(secret, secret_len, u->hash);
            if (ok == 1 && !u->disabled) {
                identity_set(&id, PT_IDENTITY_USER, u->name);
                rv = 0;
            } else if (ok < 0) {
                rv = PT_E_UNAVAILABLE; /* could not hash now: no verdict on the password */
            }
        } else {
            pthread_once(&dummy_once, dummy_init);
            (void)pt_password_verify(secret, secret_len, dummy_hash);
        }
    }
    if (rv == 0) {
        pt_login_cache_put(d->cache, mac, v->gen, now_ms, &id);
        *out = id;
    }
    dir_view_put(v);
    OPENSSL_cleanse(mac, sizeof(mac));
    return rv;
}

/* Action bits of a grant list on repo (ADMIN -> all). */
static unsigned grants_allow(const struct pt_grant *g, size_t n, unsigned all, const char *repo,
                             size_t len)
{
    if (all & PT_ACTION_ADMIN)
        return PT_ACTIONS_ALL;
    unsigned bits = 0;
    for (size_t i = 0; i < n && bits != all; i++)
        if ((g[i].actions & ~bits) != 0 &&
            pt_access_pattern_match(g[i].pattern, strlen(g[i].pattern), repo, len))
            bits |= g[i].actions;
    return bits;
}

unsigned pt_auth_dir_allowed(struct pt_auth_dir *d, const struct pt_identity *id, const char *repo,
                             size_t len, int64_t now_ms)
{
    if (id == NULL || repo == NULL || len == 0 || memchr(repo, '\0', len) != NULL)
        return 0;
    struct view *v = dir_view_get(d);
    unsigned bits = 0;
    switch (id->kind) {
    case PT_IDENTITY_ANONYMOUS:
        for (size_t i = 0; i < v->n_anon; i++) {
            if (pt_access_pattern_match(v->anon[i].pattern, v->anon[i].len, repo, len)) {
                bits = PT_ACTION_PULL;
                break;
            }
        }
        break;
    case PT_IDENTITY_USER: {
        const struct duser *u = dir_find_user(v, id->name);
        if (u != NULL && !u->disabled)
            bits = grants_allow(u->grants, u->n_grants, u->all, repo, len);
        break;
    }
    case PT_IDENTITY_TOKEN: {
        const struct dtoken *t = dir_find_token(v, id->name);
        if (t != NULL && token_live(t, now_ms))
            bits = grants_allow(t->grants, t->n_grants, t->all, repo, len);
        break;
    }
    }
    dir_view_put(v);
    return bits;
}

int pt_auth_dir_is_admin(struct pt_auth_dir *d, const struct pt_identity *id, int64_t now_ms)
{
    if (id == NULL)
        return 0;
    struct view *v = dir_view_get(d);
    int admin = 0;
    if (id->kind == PT_IDENTITY_USER) {
        const struct duser *u = dir_find_user(v, id->name);
        admin = u != NULL && !u->disabled && (u->all & PT_ACTION_ADMIN) != 0;
    } else if (id->kind == PT_IDENTITY_TOKEN) {
        const struct dtoken *t = dir_find_token(v, id->name);
        admin = t != NULL && token_live(t, now_ms) && (t->all & PT_ACTION_ADMIN) != 0;
    }
    dir_view_put(v);
    return admin;
}

int pt_auth_dir_active(struct pt_auth_dir *d, const struct pt_identity *id, int64_t now_ms)
{
    if (id == NULL)
        return 0;
    struct view *v = dir_view_get(d);
    int active = active_in(v, id, now_ms);
    dir_view_put(v);
    return active;
}

int pt_auth_dir_has_users(struct pt_auth_dir *d)
{
    struct view *v = dir_view_get(d);
    int any = v->n_users > 0;
    dir_view_put(v);
    return any;
}

int pt_auth_dir_anonymous_any(struct pt_auth_dir *d)
{
    struct view *v = dir_view_get(d);
    int any = v->n_anon > 0;
    dir_view_put(v);
    return any;
}

int pt_auth_dir_signing_key(struct pt_auth_dir *d, const char *kid, int64_t now_ms,
                            unsigned char *der, size_t *len)
{
    struct view *v = dir_view_get(d);
    const struct pt_auth_key_rec *k = dir_find(v->keys, v->n_keys, sizeof(*v->keys), kid);
    int rv;
    if (k == NULL)
        rv = PT_E_NOT_FOUND;
    else if (k->not_after_ms != 0 && now_ms > k->not_after_ms)
        rv = PT_E_DENIED;
    else if (*len < k->der_len)
        rv = PT_E_TOO_LARGE;
    else {
        memcpy(der, k->der, k->der_len);
        *len = k->der_len;
        rv = 0;
    }
    dir_view_put(v);
    return rv;
}

int pt_auth_dir_jwt_revoked(struct pt_auth_dir *d, const char *jti)
{
    struct view *v = dir_view_get(d);
    int revoked = dir_find(v->revoked, v->n_revoked, sizeof(*v->revoked), jti) != NULL;
    dir_view_put(v);
    return revoked;
}
