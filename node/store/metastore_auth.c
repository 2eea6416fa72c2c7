/*
 * metastore_auth.c - the access control records of the metadata store: users, access tokens,
 * anonymous pull rules, token signing keys and revoked token ids (see metastore.h).
 *
 * Key schema (column family default, next to the region records; the codec's table in
 * metastore_codec.c lists them too):
 *
 *   "auth/anon/" <pattern>   v1
 *   "auth/jti/" <jti>        v1 i64:expires_ms
 *   "auth/key/" <kid>        v1 i64:created_ms i64:not_after_ms s8:region u32:len der[len]
 *   "auth/token/" <id>       v1 i64:created_ms i64:expires_ms u8:disabled s8:secret_hash
 *                            s8:description s8:owner u8:n (s8:pattern u8:actions) * n
 *   "auth/user/" <name>      v1 i64:created_ms u8:disabled s8:password_hash
 *                            u8:n (s8:pattern u8:actions) * n
 *
 * The names are the whole rest of the key (no NUL inside), so byte-wise key order is name
 * order and one iterator over "auth/" .. "auth0" sees every record of one consistent view.
 * Being in the default family, the records travel in snapshots and count in the state digest
 * with no code of their own in metastore_snapshot.c.
 *
 * Validation: every writer checks every field with the grammar of oci/access.h before it
 * builds a key, and every decoder checks them again, so readers (node/auth/directory.c) can
 * trust a record they are handed. Every staged write sets the batch's auth flag, which moves
 * the auth generation at commit (metastore_batch.c).
 */
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "bytes.h"
#include "err.h"
#include "metastore_int.h"

enum kind { K_ANON, K_JTI, K_KEY, K_TOKEN, K_USER, K_COUNT };
_Static_assert((int)K_ANON == PT_AUTH_REC_ANONYMOUS && (int)K_JTI == PT_AUTH_REC_REVOKED &&
                   (int)K_KEY == PT_AUTH_REC_KEY && (int)K_TOKEN == PT_AUTH_REC_TOKEN &&
                   (int)K_USER == PT_AUTH_REC_USER,
               "the public kinds are the key kinds");

static const struct {
    const char *prefix;
    size_t len;
} kinds[K_COUNT] = {
    [K_ANON] = {"auth/anon/", 10},   [K_JTI] = {"auth/jti/", 9},    [K_KEY] = {"auth/key/", 9},
    [K_TOKEN] = {"auth/token/", 11}, [K_USER] = {"auth/user/", 10},
};

/* Longest key: the anonymous prefix and a maximal pattern. */
#define AUTH_KEY_MAX (16 + PT_ACCESS_PATTERN_MAX)

/* Checks name for kind and writes its key; 0 or PT_E_CONFIG. */
static int auth_key(enum kind k, const char *name, char key[AUTH_KEY_MAX], size_t *klen)
{
    /* Names, ids and kids sit in PT_ACCESS_NAME_MAX + 1 arrays; only patterns are longer. */
    size_t n = strnlen(name, k == K_ANON ? PT_ACCESS_PATTERN_MAX + 1 : PT_ACCESS_NAME_MAX + 1);
    bool ok;
    switch (k) {
    case K_ANON:
        ok = pt_access_pattern_valid(name, n);
        break;
    case K_JTI:
    case K_KEY:
        ok = pt_access_id_valid(name, n);
        break;
    default:
        ok = pt_access_name_valid(name, n);
        break;
    }
    if (!ok)
        return PT_E_CONFIG;
    memcpy(key, kinds[k].prefix, kinds[k].len);
    memcpy(key + kinds[k].len, name, n);
    *klen = kinds[k].len + n;
    return 0;
}

/* ---- values ---------------------------------------------------------------------------- */

static void enc_u8(struct pt_buf *e, uint8_t v)
{
    pt_buf_append(e, &v, 1);
}

static void enc_i64(struct pt_buf *e, int64_t v)
{
    unsigned char b[8];
    pt_put_le64(b, (uint64_t)v);
    pt_buf_append(e, b, 8);
}

static void enc_str8(struct pt_buf *e, const char *s)
{
    size_t n = strlen(s); /* validated by the caller: at most 255 */
    enc_u8(e, (uint8_t)n);
    pt_buf_append(e, s, n);
}

static void enc_grants(struct pt_buf *e, const struct pt_auth_grant_rec *g, size_t n)
{
    enc_u8(e, (uint8_t)n);
    for (size_t i = 0; i < n; i++) {
        enc_str8(e, g[i].pattern);
        enc_u8(e, (uint8_t)g[i].actions);
    }
}

static bool grants_ok(const struct pt_auth_grant_rec *g, size_t n)
{
    if (n > PT_METASTORE_AUTH_GRANTS_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        size_t len = strnlen(g[i].pattern, sizeof(g[i].pattern));
        if (!pt_access_pattern_valid(g[i].pattern, len) || !pt_access_actions_valid(g[i].actions))
            return false;
    }
    return true;
}

static uint8_t dec_u8(struct dec *d)
{
    const unsigned char *p = ms_dec_raw(d, 1);
    return p != NULL ? p[0] : 0;
}

static int64_t dec_i64(struct dec *d)
{
    return (int64_t)ms_dec_u64(d);
}

/* Reads the version byte; false (and d bad) for an unknown one. */
static bool dec_version(struct dec *d)
{
    if (dec_u8(d) == REC_VERSION)
        return true;
    d->bad = true;
    return false;
}

static void dec_flag(struct dec *d, int *out)
{
    uint8_t v = dec_u8(d);
    if (v > 1)
        d->bad = true;
    *out = v;
}

static void dec_grants(struct dec *d, struct pt_auth_grant_rec *g, size_t *n)
{
    *n = dec_u8(d);
    if (*n > PT_METASTORE_AUTH_GRANTS_MAX) {
        d->bad = true;
        *n = 0;
        return;
    }
    for (size_t i = 0; i < *n && !d->bad; i++) {
        ms_dec_str8(d, g[i].pattern, sizeof(g[i].pattern));
        g[i].actions = dec_u8(d);
    }
    if (!d->bad && !grants_ok(g, *n))
        d->bad = true;
}

/* Copies the name part of key k (after kind's prefix) into out (cap bytes). */
static int key_name(enum kind kind, const char *k, size_t klen, char *out, size_t cap)
{
    if (klen <= kinds[kind].len)
        return PT_E_CORRUPT;
    return ms_key_text(k + kinds[kind].len, klen - kinds[kind].len, out, cap - 1);
}

static int dec_user(const char *k, size_t klen, const char *v, size_t vlen,
                    struct pt_auth_user_rec *r)
{
    memset(r, 0, sizeof(*r));
    int rv = key_name(K_USER, k, klen, r->name, sizeof(r->name));
    if (rv != 0)
        return rv;
    struct dec d;
    ms_dec_init(&d, v, vlen);
    if (dec_version(&d)) {
        r->created_ms = dec_i64(&d);
        dec_flag(&d, &r->disabled);
        ms_dec_str8(&d, r->password_hash, sizeof(r->password_hash));
        dec_grants(&d, r->grants, &r->n_grants);
    }
    rv = ms_dec_finish(&d);
    if (rv == 0 && (!pt_access_name_valid(r->name, strlen(r->name)) ||
                    !pt_access_password_hash_valid(r->password_hash)))
        rv = PT_E_CORRUPT;
    return rv;
}

static int dec_token(const char *k, size_t klen, const char *v, size_t vlen,
                     struct pt_auth_token_rec *r)
{
    memset(r, 0, sizeof(*r));
    int rv = key_name(K_TOKEN, k, klen, r->id, sizeof(r->id));
    if (rv != 0)
        return rv;
    struct dec d;
    ms_dec_init(&d, v, vlen);
    if (dec_version(&d)) {
        r->created_ms = dec_i64(&d);
        r->expires_ms = dec_i64(&d);
        dec_flag(&d, &r->disabled);
        ms_dec_str8(&d, r->secret_hash, sizeof(r->secret_hash));
        ms_dec_str8(&d, r->description, sizeof(r->description));
        ms_dec_str8(&d, r->owner, sizeof(r->owner));
        dec_grants(&d, r->grants, &r->n_grants);
    }
    rv = ms_dec_finish(&d);
    if (rv == 0 && (!pt_access_name_valid(r->id, strlen(r->id)) ||
                    !pt_access_secret_hash_valid(r->secret_hash) || r->expires_ms < 0 ||
                    (r->owner[0] != '\0' && !pt_access_name_valid(r->owner, strlen(r->owner)))))
        rv = PT_E_CORRUPT;
    return rv;
}

static int dec_key(const char *k, size_t klen, const char *v, size_t vlen,
                   struct pt_auth_key_rec *r)
{
    memset(r, 0, sizeof(*r));
    int rv = key_name(K_KEY, k, klen, r->kid, sizeof(r->kid));
    if (rv != 0)
        return rv;
    struct dec d;
    ms_dec_init(&d, v, vlen);
    if (dec_version(&d)) {
        r->created_ms = dec_i64(&d);
        r->not_after_ms = dec_i64(&d);
        ms_dec_str8(&d, r->region, sizeof(r->region));
        r->der_len = ms_dec_u32(&d);
        if (r->der_len == 0 || r->der_len > sizeof(r->der)) {
            d.bad = true;
        } else {
            const unsigned char *p = ms_dec_raw(&d, r->der_len);
            if (p != NULL)
                memcpy(r->der, p, r->der_len);
        }
    }
    rv = ms_dec_finish(&d);
    if (rv == 0 && (!pt_access_id_valid(r->kid, strlen(r->kid)) || r->not_after_ms < 0))
        rv = PT_E_CORRUPT;
    return rv;
}

static int dec_revoked(const char *k, size_t klen, const char *v, size_t vlen,
                       struct pt_auth_revoked_rec *r)
{
    memset(r, 0, sizeof(*r));
    int rv = key_name(K_JTI, k, klen, r->jti, sizeof(r->jti));
    if (rv != 0)
        return rv;
    struct dec d;
    ms_dec_init(&d, v, vlen);
    if (dec_version(&d))
        r->expires_ms = dec_i64(&d);
    rv = ms_dec_finish(&d);
    if (rv == 0 && !pt_access_id_valid(r->jti, strlen(r->jti)))
        rv = PT_E_CORRUPT;
    return rv;
}

static int dec_anon(const char *k, size_t klen, const char *v, size_t vlen,
                    char pattern[PT_ACCESS_PATTERN_MAX + 1])
{
    int rv = key_name(K_ANON, k, klen, pattern, PT_ACCESS_PATTERN_MAX + 1);
    if (rv != 0)
        return rv;
    struct dec d;
    ms_dec_init(&d, v, vlen);
    dec_version(&d);
    rv = ms_dec_finish(&d);
    if (rv == 0 && !pt_access_pattern_valid(pattern, strlen(pattern)))
        rv = PT_E_CORRUPT;
    return rv;
}

/* ---- reads ----------------------------------------------------------------------------- */

/* Point lookup of kind/name through wb (may be NULL) decoded by dec into out. */
static int auth_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, enum kind kind,
                    const char *name, void *out)
{
    char key[AUTH_KEY_MAX];
    size_t klen;
    if (auth_key(kind, name, key, &klen) != 0)
        return PT_E_NOT_FOUND;
    char *v;
    size_t vlen;
    int rv = ms_get_raw(ms, wb, CF_DEFAULT, key, klen, &v, &vlen);
    if (rv <= 0)
        return rv == 0 ? PT_E_NOT_FOUND : rv;
    switch (kind) {
    case K_USER:
        rv = dec_user(key, klen, v, vlen, out);
        break;
    case K_TOKEN:
        rv = dec_token(key, klen, v, vlen, out);
        break;
    case K_KEY:
        rv = dec_key(key, klen, v, vlen, out);
        break;
    default:
        rv = PT_E_INTERNAL;
        break;
    }
    rocksdb_free(v);
    return rv;
}

int pt_metastore_auth_user_get(struct pt_metastore *ms, const char *name,
                               struct pt_auth_user_rec *out)
{
    return auth_get(ms, NULL, K_USER, name, out);
}

int pt_metastore_auth_token_get(struct pt_metastore *ms, const char *id,
                                struct pt_auth_token_rec *out)
{
    return auth_get(ms, NULL, K_TOKEN, id, out);
}

int pt_metastore_auth_key_get(struct pt_metastore *ms, const char *kid, struct pt_auth_key_rec *out)
{
    return auth_get(ms, NULL, K_KEY, kid, out);
}

int pt_metastore_batch_auth_user_get(struct pt_metastore_batch *b, const char *name,
                                     struct pt_auth_user_rec *out)
{
    return auth_get(b->ms, b->wb, K_USER, name, out);
}

int pt_metastore_batch_auth_token_get(struct pt_metastore_batch *b, const char *id,
                                      struct pt_auth_token_rec *out)
{
    return auth_get(b->ms, b->wb, K_TOKEN, id, out);
}

int pt_metastore_batch_auth_key_get(struct pt_metastore_batch *b, const char *kid,
                                    struct pt_auth_key_rec *out)
{
    return auth_get(b->ms, b->wb, K_KEY, kid, out);
}

/* The kind of an "auth/..." key, or K_COUNT for none. */
static enum kind key_kind(const char *k, size_t klen)
{
    for (int i = 0; i < K_COUNT; i++)
        if (klen > kinds[i].len && memcmp(k, kinds[i].prefix, kinds[i].len) == 0)
            return (enum kind)i;
    return K_COUNT;
}

/* One record to its visitor callback. The records are large (grants): one of each kind is
 * allocated per walk, in scratch. */
struct scratch {
    struct pt_auth_user_rec user;
    struct pt_auth_token_rec token;
    struct pt_auth_key_rec key;
    struct pt_auth_revoked_rec revoked;
    char pattern[PT_ACCESS_PATTERN_MAX + 1];
};

static int visit(const struct pt_metastore_auth_visitor *v, void *arg, struct scratch *s,
                 const char *k, size_t klen, const char *val, size_t vlen)
{
    int rv;
    switch (key_kind(k, klen)) {
    case K_USER:
        if (v->user == NULL)
            return 0;
        rv = dec_user(k, klen, val, vlen, &s->user);
        return rv != 0 ? rv : v->user(arg, &s->user);
    case K_TOKEN:
        if (v->token == NULL)
            return 0;
        rv = dec_token(k, klen, val, vlen, &s->token);
        return rv != 0 ? rv : v->token(arg, &s->token);
    case K_KEY:
        if (v->key == NULL)
            return 0;
        rv = dec_key(k, klen, val, vlen, &s->key);
        return rv != 0 ? rv : v->key(arg, &s->key);
    case K_JTI:
        if (v->revoked == NULL)
            return 0;
        rv = dec_revoked(k, klen, val, vlen, &s->revoked);
        return rv != 0 ? rv : v->revoked(arg, &s->revoked);
    case K_ANON:
        if (v->anonymous == NULL)
            return 0;
        rv = dec_anon(k, klen, val, vlen, s->pattern);
        return rv != 0 ? rv : v->anonymous(arg, s->pattern);
    default:
        return PT_E_CORRUPT; /* an "auth/" key of no known kind */
    }
}

int pt_metastore_auth_load(struct pt_metastore *ms, const struct pt_metastore_auth_visitor *v,
                           void *arg)
{
    struct scratch *s = malloc(sizeof(*s));
    if (s == NULL)
        return PT_E_NOMEM;
    char upper[MS_AUTH_PREFIX_LEN];
    memcpy(upper, MS_AUTH_PREFIX, MS_AUTH_PREFIX_LEN);
    upper[MS_AUTH_PREFIX_LEN - 1]++; /* "auth0": just past every "auth/..." key */
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, CF_DEFAULT, upper, MS_AUTH_PREFIX_LEN, NULL, &ro);
    int rv = 0;
    for (rocksdb_iter_seek(it, MS_AUTH_PREFIX, MS_AUTH_PREFIX_LEN); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *val = rocksdb_iter_value(it, &vlen);
        rv = visit(v, arg, s, k, klen, val, vlen);
        if (rv != 0)
            break;
    }
    int irv = ms_iter_free(it, ro);
    free(s);
    return rv != 0 ? rv : irv;
}

/* ---- writes ---------------------------------------------------------------------------- */

/* Stages e under kind/name, marking the batch. */
static int auth_put(struct pt_metastore_batch *b, enum kind kind, const char *name,
                    struct pt_buf *e)
{
    char key[AUTH_KEY_MAX];
    size_t klen;
    int rv = auth_key(kind, name, key, &klen);
    if (rv != 0) {
        free(e->p);
        return rv;
    }
    b->auth = true;
    return ms_stage_put(b, CF_DEFAULT, key, klen, e);
}

static int auth_delete(struct pt_metastore_batch *b, enum kind kind, const char *name)
{
    char key[AUTH_KEY_MAX];
    size_t klen;
    int rv = auth_key(kind, name, key, &klen);
    if (rv != 0)
        return rv;
    b->auth = true;
    ms_stage_delete(b, CF_DEFAULT, key, klen);
    return 0;
}

static bool text_ok(const char *s, size_t cap)
{
    return strnlen(s, cap) < cap;
}

int pt_metastore_batch_auth_user_put(struct pt_metastore_batch *b, const struct pt_auth_user_rec *r)
{
    if (!text_ok(r->password_hash, sizeof(r->password_hash)) ||
        !pt_access_password_hash_valid(r->password_hash) || !grants_ok(r->grants, r->n_grants) ||
        (r->disabled != 0 && r->disabled != 1))
        return PT_E_CONFIG;
    struct pt_buf e = {0};
    enc_u8(&e, REC_VERSION);
    enc_i64(&e, r->created_ms);
    enc_u8(&e, (uint8_t)r->disabled);
    enc_str8(&e, r->password_hash);
    enc_grants(&e, r->grants, r->n_grants);
    return auth_put(b, K_USER, r->name, &e);
}

int pt_metastore_batch_auth_token_put(struct pt_metastore_batch *b,
                                      const struct pt_auth_token_rec *r)
{
    if (!text_ok(r->secret_hash, sizeof(r->secret_hash)) ||
        !pt_access_secret_hash_valid(r->secret_hash) || !grants_ok(r->grants, r->n_grants) ||
        (r->disabled != 0 && r->disabled != 1) || r->expires_ms < 0 ||
        !text_ok(r->description, sizeof(r->description)) || !text_ok(r->owner, sizeof(r->owner)) ||
        (r->owner[0] != '\0' && !pt_access_name_valid(r->owner, strlen(r->owner))))
        return PT_E_CONFIG;
    struct pt_buf e = {0};
    enc_u8(&e, REC_VERSION);
    enc_i64(&e, r->created_ms);
    enc_i64(&e, r->expires_ms);
    enc_u8(&e, (uint8_t)r->disabled);
    enc_str8(&e, r->secret_hash);
    enc_str8(&e, r->description);
    enc_str8(&e, r->owner);
    enc_grants(&e, r->grants, r->n_grants);
    return auth_put(b, K_TOKEN, r->id, &e);
}

int pt_metastore_batch_auth_anonymous_put(struct pt_metastore_batch *b, const char *pattern)
{
    struct pt_buf e = {0};
    enc_u8(&e, REC_VERSION);
    return auth_put(b, K_ANON, pattern, &e);
}

int pt_metastore_batch_auth_key_put(struct pt_metastore_batch *b, const struct pt_auth_key_rec *r)
{
    if (!text_ok(r->region, sizeof(r->region)) || !ms_region_ok(r->region) || r->der_len == 0 ||
        r->der_len > sizeof(r->der) || r->not_after_ms < 0)
        return PT_E_CONFIG;
    struct pt_buf e = {0};
    enc_u8(&e, REC_VERSION);
    enc_i64(&e, r->created_ms);
    enc_i64(&e, r->not_after_ms);
    enc_str8(&e, r->region);
    unsigned char n[4];
    pt_put_le32(n, (uint32_t)r->der_len);
    pt_buf_append(&e, n, 4);
    pt_buf_append(&e, r->der, r->der_len);
    return auth_put(b, K_KEY, r->kid, &e);
}

int pt_metastore_batch_auth_revoked_put(struct pt_metastore_batch *b,
                                        const struct pt_auth_revoked_rec *r)
{
    struct pt_buf e = {0};
    enc_u8(&e, REC_VERSION);
    enc_i64(&e, r->expires_ms);
    return auth_put(b, K_JTI, r->jti, &e);
}

int pt_metastore_batch_auth_user_delete(struct pt_metastore_batch *b, const char *name)
{
    return auth_delete(b, K_USER, name);
}

int pt_metastore_batch_auth_token_delete(struct pt_metastore_batch *b, const char *id)
{
    return auth_delete(b, K_TOKEN, id);
}

int pt_metastore_batch_auth_anonymous_delete(struct pt_metastore_batch *b, const char *pattern)
{
    return auth_delete(b, K_ANON, pattern);
}

/*
 * Walks the records of kind through a base+delta iterator (staged writes merged over the
 * database). The delta side is not limited by the base's bounds, so the prefix is checked on
 * every key. cb returns 1 to stop, 0 to go on, or a negative error.
 */
static int batch_walk(struct pt_metastore_batch *b, enum kind kind,
                      int (*cb)(void *arg, const char *k, size_t klen, const char *v, size_t vlen),
                      void *arg)
{
    struct pt_metastore *ms = b->ms;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *base = rocksdb_create_iterator_cf(ms->db, ro, ms->cf[CF_DEFAULT]);
    /* takes over base's underlying iterator and frees its wrapper */
    rocksdb_iterator_t *it =
        rocksdb_writebatch_wi_create_iterator_with_base_cf(b->wb, base, ms->cf[CF_DEFAULT]);
    int rv = 0;
    for (rocksdb_iter_seek(it, kinds[kind].prefix, kinds[kind].len); rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < kinds[kind].len || memcmp(k, kinds[kind].prefix, kinds[kind].len) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vlen);
        rv = cb(arg, k, klen, v, vlen);
        if (rv != 0)
            break;
    }
    int irv = ms_iter_free(it, ro);
    if (rv < 0)
        return rv;
    return irv != 0 ? irv : rv;
}

static int any_cb(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
    (void)arg, (void)k, (void)klen, (void)v, (void)vlen;
    return 1;
}

int pt_metastore_batch_auth_has_users(struct pt_metastore_batch *b)
{
    return batch_walk(b, K_USER, any_cb, NULL);
}

struct count {
    size_t n, limit;
};

static int count_cb(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
    (void)k, (void)klen, (void)v, (void)vlen;
    struct count *c = arg;
    return ++c->n >= c->limit ? 1 : 0;
}

long pt_metastore_batch_auth_count(struct pt_metastore_batch *b, enum pt_auth_rec_kind kind,
                                   size_t limit)
{
    if ((int)kind < 0 || (int)kind >= K_COUNT)
        return PT_E_INTERNAL;
    if (limit == 0)
        return 0;
    struct count c = {0, limit};
    int rv = batch_walk(b, (enum kind)kind, count_cb, &c);
    return rv < 0 ? rv : (long)c.n;
}

int pt_metastore_batch_auth_exists(struct pt_metastore_batch *b, enum pt_auth_rec_kind kind,
                                   const char *name)
{
    char key[AUTH_KEY_MAX];
    size_t klen;
    if ((int)kind < 0 || (int)kind >= K_COUNT || auth_key((enum kind)kind, name, key, &klen) != 0)
        return 0;
    char *v;
    size_t vlen;
    int rv = ms_get_raw(b->ms, b->wb, CF_DEFAULT, key, klen, &v, &vlen);
    if (rv > 0)
        rocksdb_free(v);
    return rv;
}

/* Expired revoked ids collected while walking; deleted once the iterator is gone (the batch
 * must not change while it is iterated). */
struct purge {
    int64_t now_ms;
    char (*jti)[PT_ACCESS_NAME_MAX + 1];
    size_t n, cap;
};

static int purge_cb(void *arg, const char *k, size_t klen, const char *v, size_t vlen)
{
    struct purge *p = arg;
    struct pt_auth_revoked_rec r;
    int rv = dec_revoked(k, klen, v, vlen, &r);
    if (rv != 0)
        return rv;
    if (r.expires_ms > p->now_ms)
        return 0;
    if (p->n == p->cap && (rv = pt_array_grow(&p->jti, &p->cap, sizeof(*p->jti), 16, 0)) != 0)
        return rv;
    memcpy(p->jti[p->n++], r.jti, sizeof(r.jti));
    return 0;
}

int pt_metastore_batch_auth_revoked_purge(struct pt_metastore_batch *b, int64_t now_ms)
{
    struct purge p = {.now_ms = now_ms};
    int rv = batch_walk(b, K_JTI, purge_cb, &p);
    for (size_t i = 0; rv == 0 && i < p.n; i++)
        rv = auth_delete(b, K_JTI, p.jti[i]);
    free(p.jti);
    return rv;
}
