/*
 * metastore_policy.c - repository locks, immutable tag rules and retention rules: their
 * records and listings, and the checks the FSM makes before a write or a delete (the
 * retention rule at work is metastore_retention.c's).
 *
 * Records (column family default, so they travel in snapshots and count in the state digest
 * with no code of their own; metastore_codec.c's table lists them too):
 *
 *   key                                               value
 *   ------------------------------------------------  ------------------------------------------
 *   "policy/lock/" <repo> \0                          v1 u8:write_enabled u8:delete_enabled
 *   "policy/lock/" <repo> \0 ":" <tag>                  (the same, for one tag)
 *   "policy/lock/" <repo> \0 "@" <digest>               (the same, for one manifest)
 *   "policy/tagrule/" <repo pattern> \0 <tag pattern> v1
 *   "policy/retention/" <repo pattern>                v1 i64:untagged_older_than_ms
 *                                                     u32:keep_last s8:tag_pattern
 *
 * A lock with both flags enabled is no lock: it is never stored. Names and patterns are whole
 * key components without NUL, so key order is name order and the locks of one repository are
 * one key range.
 *
 * The checks (check() below) read through an optional write batch: the FSM passes its own,
 * so the check and the write it guards are one step of the log in every region; the HTTP
 * layer passes none to explain a refusal the FSM made (its state is at least as new). The
 * rules:
 *   push to repo               the repository's write lock
 *   move repo:tag to another   the repository's write lock; the tag's write lock; the write
 *   digest                     lock of the manifest it names now; an immutable rule matching
 *                              it (a tag not yet written, or re-put at the same digest, is no
 *                              move: idempotent pushes work)
 *   delete repo:tag            the repository's and the tag's delete locks; immutable rules
 *   delete repo@digest         the repository's and the manifest's delete locks; and, for
 *                              each tag naming it, the tag's delete lock and immutable rules
 *   unlink a blob              the repository's delete lock
 *
 * Retention: metastore.h and metastore_retention.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "access.h"
#include "bytes.h"
#include "err.h"
#include "manifest.h"
#include "metastore_int.h"
#include "reference.h"
#include "tagglob.h"

#define P_LOCK      "policy/lock/"
#define P_TAGRULE   "policy/tagrule/"
#define P_RETENTION "policy/retention/"
#define POLICY_KEY_MAX                                                                             \
    (24 + PT_ACCESS_PATTERN_MAX + PT_METASTORE_REPO_MAX + PT_METASTORE_DIGEST_MAX + 4)

/* ---- keys and iteration ---------------------------------------------------------------- */

/* Iterator over cf through wb's staged writes (wb may be NULL: the database). */
static rocksdb_iterator_t *iter_cf(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, enum cf cf,
                                   rocksdb_readoptions_t **ro)
{
    *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *base = rocksdb_create_iterator_cf(ms->db, *ro, ms->cf[cf]);
    if (wb == NULL)
        return base;
    return rocksdb_writebatch_wi_create_iterator_with_base_cf(wb, base, ms->cf[cf]);
}

static int at_prefix(rocksdb_iterator_t *it, const char *prefix, size_t plen)
{
    if (!rocksdb_iter_valid(it))
        return 0;
    size_t klen;
    const char *k = rocksdb_iter_key(it, &klen);
    return klen >= plen && memcmp(k, prefix, plen) == 0;
}

/* Calls cb on every record of cf under prefix (through wb). cb returns non-zero to stop
 * (that value is returned); the iterator's error wins over a clean end. */
static int walk(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, enum cf cf,
                const char *prefix, size_t plen,
                int (*cb)(const char *k, size_t klen, const char *v, size_t vlen, void *arg),
                void *arg)
{
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_cf(ms, wb, cf, &ro);
    int rv = 0;
    for (rocksdb_iter_seek(it, prefix, plen); at_prefix(it, prefix, plen); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        if ((rv = cb(k, klen, v, vlen, arg)) != 0)
            break;
    }
    int irv = ms_iter_free(it, ro);
    return rv < 0 ? rv : irv != 0 ? irv : rv;
}

static int count_cb(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    (void)k, (void)klen, (void)v, (void)vlen;
    size_t *n = arg;
    (*n)++;
    return 0;
}

/* PT_E_TOO_LARGE when key is new and max records exist under prefix already. */
static int room_for(struct pt_metastore_batch *b, const char *prefix, const char *key, size_t klen,
                    size_t max)
{
    char *v;
    size_t vlen;
    int rv = ms_get_raw(b->ms, b->wb, CF_DEFAULT, key, klen, &v, &vlen);
    if (rv != 0) {
        if (rv == 1)
            rocksdb_free(v);
        return rv < 0 ? rv : 0;
    }
    size_t n = 0;
    rv = walk(b->ms, b->wb, CF_DEFAULT, prefix, strlen(prefix), count_cb, &n);
    if (rv != 0)
        return rv;
    return n >= max ? PT_E_TOO_LARGE : 0;
}

/* "policy/lock/" repo \0 [":" tag | "@" digest]; components validated by the caller. */
static size_t lock_key(char *key, const char *repo, const char *tag, const char *digest)
{
    size_t n = sizeof(P_LOCK) - 1, rl = strlen(repo);
    memcpy(key, P_LOCK, n);
    memcpy(key + n, repo, rl);
    n += rl;
    key[n++] = '\0';
    const char *ref = tag != NULL && tag[0] != '\0' ? tag : digest;
    if (ref != NULL && ref[0] != '\0') {
        key[n++] = ref == tag ? ':' : '@';
        size_t l = strlen(ref);
        memcpy(key + n, ref, l);
        n += l;
    }
    return n;
}

static size_t two_key(char *key, const char *prefix, const char *a, const char *b)
{
    size_t n = strlen(prefix), al = strlen(a);
    memcpy(key, prefix, n);
    memcpy(key + n, a, al);
    n += al;
    if (b != NULL) {
        size_t bl = strlen(b);
        key[n++] = '\0';
        memcpy(key + n, b, bl);
        n += bl;
    }
    return n;
}

static bool repo_pattern_ok(const char *p)
{
    size_t n = strnlen(p, PT_ACCESS_PATTERN_MAX + 1);
    return pt_access_pattern_valid(p, n);
}

static bool tag_pattern_ok(const char *p)
{
    size_t n = strnlen(p, PT_METASTORE_TAG_MAX + 1);
    return n <= PT_METASTORE_TAG_MAX && pt_tag_glob_valid(p, n);
}

static bool tag_ok(const char *t)
{
    return ms_name_ok(t, PT_METASTORE_TAG_MAX) && pt_tag_validate(t, strlen(t)) == 0;
}

/* ---- writes ---------------------------------------------------------------------------- */

int pt_metastore_batch_lock_put(struct pt_metastore_batch *b, const struct pt_lock_rec *r)
{
    bool has_tag = r->tag[0] != '\0', has_digest = r->digest[0] != '\0';
    if (!ms_name_ok(r->repo, PT_METASTORE_REPO_MAX) ||
        pt_name_validate(r->repo, strlen(r->repo)) != 0 || (has_tag && has_digest) ||
        (has_tag && !tag_ok(r->tag)) || (has_digest && !ms_digest_ok(r->digest)))
        return PT_E_CONFIG;
    char key[POLICY_KEY_MAX];
    size_t klen = lock_key(key, r->repo, r->tag, r->digest);
    if (r->write_enabled && r->delete_enabled) {
        ms_stage_delete(b, CF_DEFAULT, key, klen);
        return 0;
    }
    int rv = room_for(b, P_LOCK, key, klen, PT_POLICY_LOCKS_MAX);
    if (rv != 0)
        return rv;
    struct pt_buf e = {0};
    unsigned char v[3] = {REC_VERSION, r->write_enabled != 0, r->delete_enabled != 0};
    pt_buf_append(&e, v, sizeof(v));
    return ms_stage_put(b, CF_DEFAULT, key, klen, &e);
}

int pt_metastore_batch_tag_rule_put(struct pt_metastore_batch *b, const char *repo_pattern,
                                    const char *tag_pattern, bool put)
{
    if (!repo_pattern_ok(repo_pattern) || !tag_pattern_ok(tag_pattern))
        return PT_E_CONFIG;
    char key[POLICY_KEY_MAX];
    size_t klen = two_key(key, P_TAGRULE, repo_pattern, tag_pattern);
    if (!put) {
        ms_stage_delete(b, CF_DEFAULT, key, klen);
        return 0;
    }
    int rv = room_for(b, P_TAGRULE, key, klen, PT_POLICY_TAG_RULES_MAX);
    if (rv != 0)
        return rv;
    struct pt_buf e = {0};
    unsigned char v = REC_VERSION;
    pt_buf_append(&e, &v, 1);
    return ms_stage_put(b, CF_DEFAULT, key, klen, &e);
}

int pt_metastore_batch_retention_put(struct pt_metastore_batch *b, const struct pt_retention_rec *r)
{
    if (!repo_pattern_ok(r->repo_pattern) || !tag_pattern_ok(r->tag_pattern) ||
        r->untagged_older_than_ms < 0 || r->keep_last > PT_POLICY_KEEP_LAST_MAX ||
        (r->untagged_older_than_ms == 0 && r->keep_last == 0))
        return PT_E_CONFIG;
    char key[POLICY_KEY_MAX];
    size_t klen = two_key(key, P_RETENTION, r->repo_pattern, NULL);
    int rv = room_for(b, P_RETENTION, key, klen, PT_POLICY_RETENTION_MAX);
    if (rv != 0)
        return rv;
    struct pt_buf e = {0};
    unsigned char v[13];
    v[0] = REC_VERSION;
    pt_put_le64(v + 1, (uint64_t)r->untagged_older_than_ms);
    pt_put_le32(v + 9, r->keep_last);
    pt_buf_append(&e, v, sizeof(v));
    unsigned char n = (unsigned char)strlen(r->tag_pattern);
    pt_buf_append(&e, &n, 1);
    pt_buf_append(&e, r->tag_pattern, n);
    return ms_stage_put(b, CF_DEFAULT, key, klen, &e);
}

int pt_metastore_batch_retention_delete(struct pt_metastore_batch *b, const char *repo_pattern)
{
    if (!repo_pattern_ok(repo_pattern))
        return PT_E_CONFIG;
    char key[POLICY_KEY_MAX];
    ms_stage_delete(b, CF_DEFAULT, key, two_key(key, P_RETENTION, repo_pattern, NULL));
    return 0;
}

/* ---- decoding -------------------------------------------------------------------------- */

static int dec_lock(const char *k, size_t klen, const char *v, size_t vlen, struct pt_lock_rec *r)
{
    memset(r, 0, sizeof(*r));
    size_t p = sizeof(P_LOCK) - 1;
    const char *nul = memchr(k + p, '\0', klen - p);
    if (nul == NULL || vlen != 3 || (unsigned char)v[0] != REC_VERSION)
        return PT_E_CORRUPT;
    size_t rl = (size_t)(nul - (k + p));
    if (rl == 0 || rl > PT_METASTORE_REPO_MAX)
        return PT_E_CORRUPT;
    memcpy(r->repo, k + p, rl);
    const char *ref = nul + 1;
    size_t refl = klen - p - rl - 1;
    if (refl > 0) {
        char *out = ref[0] == ':' ? r->tag : ref[0] == '@' ? r->digest : NULL;
        size_t cap = ref[0] == ':' ? sizeof(r->tag) : sizeof(r->digest);
        if (out == NULL || refl - 1 == 0 || refl - 1 >= cap || memchr(ref + 1, '\0', refl - 1))
            return PT_E_CORRUPT;
        memcpy(out, ref + 1, refl - 1);
    }
    r->write_enabled = v[1] != 0;
    r->delete_enabled = v[2] != 0;
    return 0;
}

static int dec_tag_rule(const char *k, size_t klen, const char *v, size_t vlen,
                        struct pt_tag_rule_rec *r)
{
    memset(r, 0, sizeof(*r));
    size_t p = sizeof(P_TAGRULE) - 1;
    const char *nul = memchr(k + p, '\0', klen - p);
    if (nul == NULL || vlen != 1 || (unsigned char)v[0] != REC_VERSION)
        return PT_E_CORRUPT;
    size_t rl = (size_t)(nul - (k + p)), tl = klen - p - rl - 1;
    if (rl == 0 || rl >= sizeof(r->repo_pattern) || tl == 0 || tl >= sizeof(r->tag_pattern) ||
        memchr(nul + 1, '\0', tl))
        return PT_E_CORRUPT;
    memcpy(r->repo_pattern, k + p, rl);
    memcpy(r->tag_pattern, nul + 1, tl);
    return 0;
}

static int dec_retention(const char *k, size_t klen, const char *v, size_t vlen,
                         struct pt_retention_rec *r)
{
    memset(r, 0, sizeof(*r));
    size_t p = sizeof(P_RETENTION) - 1;
    if (klen - p == 0 || klen - p >= sizeof(r->repo_pattern) || memchr(k + p, '\0', klen - p))
        return PT_E_CORRUPT;
    memcpy(r->repo_pattern, k + p, klen - p);
    const unsigned char *u = (const unsigned char *)v;
    if (vlen < 14 || u[0] != REC_VERSION || vlen != 14u + u[13] || u[13] == 0 ||
        u[13] >= sizeof(r->tag_pattern) || memchr(v + 14, '\0', u[13]))
        return PT_E_CORRUPT;
    r->untagged_older_than_ms = (int64_t)pt_get_le64(u + 1);
    r->keep_last = pt_get_le32(u + 9);
    memcpy(r->tag_pattern, v + 14, u[13]);
    return 0;
}

/* ---- listings -------------------------------------------------------------------------- */

struct list_ctx {
    int kind; /* 0 lock, 1 tag rule, 2 retention */
    void *cb;
    void *arg;
};

static int list_cb(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    struct list_ctx *c = arg;
    union {
        struct pt_lock_rec lock;
        struct pt_tag_rule_rec rule;
        struct pt_retention_rec ret;
    } u;
    int rv;
    switch (c->kind) {
    case 0:
        if ((rv = dec_lock(k, klen, v, vlen, &u.lock)) != 0)
            return rv;
        return ((int (*)(const struct pt_lock_rec *, void *))c->cb)(&u.lock, c->arg);
    case 1:
        if ((rv = dec_tag_rule(k, klen, v, vlen, &u.rule)) != 0)
            return rv;
        return ((int (*)(const struct pt_tag_rule_rec *, void *))c->cb)(&u.rule, c->arg);
    default:
        if ((rv = dec_retention(k, klen, v, vlen, &u.ret)) != 0)
            return rv;
        return ((int (*)(const struct pt_retention_rec *, void *))c->cb)(&u.ret, c->arg);
    }
}

int pt_metastore_locks_list(struct pt_metastore *ms, const char *repo,
                            int (*cb)(const struct pt_lock_rec *r, void *arg), void *arg)
{
    struct list_ctx c = {0, (void *)cb, arg};
    char prefix[POLICY_KEY_MAX];
    size_t plen = sizeof(P_LOCK) - 1;
    memcpy(prefix, P_LOCK, plen);
    if (repo != NULL) {
        if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
            return 0;
        plen = lock_key(prefix, repo, NULL, NULL);
    }
    return walk(ms, NULL, CF_DEFAULT, prefix, plen, list_cb, &c);
}

int pt_metastore_tag_rules_list(struct pt_metastore *ms,
                                int (*cb)(const struct pt_tag_rule_rec *r, void *arg), void *arg)
{
    struct list_ctx c = {1, (void *)cb, arg};
    return walk(ms, NULL, CF_DEFAULT, P_TAGRULE, sizeof(P_TAGRULE) - 1, list_cb, &c);
}

int pt_metastore_retention_list(struct pt_metastore *ms,
                                int (*cb)(const struct pt_retention_rec *r, void *arg), void *arg)
{
    struct list_ctx c = {2, (void *)cb, arg};
    return walk(ms, NULL, CF_DEFAULT, P_RETENTION, sizeof(P_RETENTION) - 1, list_cb, &c);
}

/* ---- the checks ------------------------------------------------------------------------ */

/* The lock record of the key (flags stay 1/1 when there is none): 0 or negative. */
static int lock_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                    const char *tag, const char *digest, int *write_enabled, int *delete_enabled)
{
    *write_enabled = *delete_enabled = 1;
    char key[POLICY_KEY_MAX];
    size_t klen = lock_key(key, repo, tag, digest);
    char *v;
    size_t vlen;
    int rv = ms_get_raw(ms, wb, CF_DEFAULT, key, klen, &v, &vlen);
    if (rv <= 0)
        return rv;
    if (vlen != 3 || (unsigned char)v[0] != REC_VERSION) {
        rocksdb_free(v);
        return PT_E_CORRUPT;
    }
    *write_enabled = v[1] != 0;
    *delete_enabled = v[2] != 0;
    rocksdb_free(v);
    return 0;
}

struct rule_match {
    const char *repo, *tag;
    struct pt_tag_rule_rec hit;
};

static int rule_match_cb(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    struct rule_match *m = arg;
    struct pt_tag_rule_rec r;
    int rv = dec_tag_rule(k, klen, v, vlen, &r);
    if (rv != 0)
        return rv;
    if (pt_access_pattern_match(r.repo_pattern, strlen(r.repo_pattern), m->repo, strlen(m->repo)) &&
        pt_tag_glob_match(r.tag_pattern, strlen(r.tag_pattern), m->tag, strlen(m->tag))) {
        m->hit = r;
        return 1;
    }
    return 0;
}

/* 1 with *hit when an immutable rule matches repo:tag, 0 when none, negative error. */
static int immutable(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                     const char *tag, struct pt_tag_rule_rec *hit)
{
    struct rule_match m = {.repo = repo, .tag = tag};
    int rv = walk(ms, wb, CF_DEFAULT, P_TAGRULE, sizeof(P_TAGRULE) - 1, rule_match_cb, &m);
    if (rv == 1)
        *hit = m.hit;
    return rv;
}

struct msg {
    char *p;
    size_t cap;
};

static int refuse(struct msg *m, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Words the refusal err into m (when it wants words) and returns err. */
static int refuse(struct msg *m, int err, const char *fmt, ...)
{
    if (m->p != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(m->p, m->cap, fmt, ap);
        va_end(ap);
    }
    return err;
}

/* May repo:tag be deleted (tag delete lock, immutable rules)? The repository's lock is the
 * caller's. */
static int check_tag_delete(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                            const char *tag, struct msg *m)
{
    int we, de;
    int rv = lock_get(ms, wb, repo, tag, NULL, &we, &de);
    if (rv != 0)
        return rv;
    if (!de)
        return refuse(m, PT_E_LOCKED, "tag %s:%s is locked for deletes", repo, tag);
    struct pt_tag_rule_rec r;
    rv = immutable(ms, wb, repo, tag, &r);
    if (rv < 0)
        return rv;
    if (rv == 1 && m->p != NULL)
        snprintf(m->p, m->cap, "tag %s of %s is immutable (rule %s:%s)", tag, repo, r.repo_pattern,
                 r.tag_pattern);
    return rv == 1 ? PT_E_IMMUTABLE : 0;
}

struct tags_to {
    struct pt_metastore *ms;
    rocksdb_writebatch_wi_t *wb;
    const char *repo, *digest;
    size_t rlen;
    struct msg *m;
};

static int tags_to_cb(const char *k, size_t klen, const char *v, size_t vlen, void *arg)
{
    struct tags_to *t = arg;
    char d[PT_METASTORE_DIGEST_MAX + 1], tag[PT_METASTORE_TAG_MAX + 1];
    int rv = ms_dec_tag(v, vlen, d, NULL);
    if (rv != 0)
        return rv;
    if (strcmp(d, t->digest) != 0)
        return 0;
    if (klen - t->rlen > PT_METASTORE_TAG_MAX)
        return PT_E_CORRUPT;
    memcpy(tag, k + t->rlen, klen - t->rlen);
    tag[klen - t->rlen] = '\0';
    return check_tag_delete(t->ms, t->wb, t->repo, tag, t->m);
}

static int check(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, enum pt_policy_act act,
                 const char *repo, const char *tag, const char *digest, struct msg *m)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX) ||
        (tag != NULL && tag[0] != '\0' && !ms_name_ok(tag, PT_METASTORE_TAG_MAX)) ||
        (digest != NULL && digest[0] != '\0' && !ms_digest_ok(digest)))
        return 0; /* names no record: the operation itself refuses it */
    int we, de;
    int rv = lock_get(ms, wb, repo, NULL, NULL, &we, &de);
    if (rv != 0)
        return rv;
    bool writes = act == PT_POLICY_PUSH || act == PT_POLICY_TAG_WRITE;
    if (writes && !we)
        return refuse(m, PT_E_LOCKED, "repository %s is locked for writes", repo);
    if (!writes && !de)
        return refuse(m, PT_E_LOCKED, "repository %s is locked for deletes", repo);
    switch (act) {
    case PT_POLICY_TAG_WRITE: {
        if (tag == NULL || digest == NULL)
            return 0;
        char cur[PT_METASTORE_DIGEST_MAX + 1];
        rv = ms_tag_get(ms, wb, repo, tag, cur);
        if (rv == PT_E_MANIFEST_UNKNOWN || (rv == 0 && strcmp(cur, digest) == 0))
            return 0; /* a new tag, or no move */
        if (rv != 0)
            return rv;
        if ((rv = lock_get(ms, wb, repo, tag, NULL, &we, &de)) != 0)
            return rv;
        if (!we)
            return refuse(m, PT_E_LOCKED, "tag %s:%s is locked for writes", repo, tag);
        if ((rv = lock_get(ms, wb, repo, NULL, cur, &we, &de)) != 0)
            return rv;
        if (!we)
            return refuse(m, PT_E_LOCKED, "manifest %s@%s is locked for writes (tag %s stays)",
                          repo, cur, tag);
        struct pt_tag_rule_rec r;
        rv = immutable(ms, wb, repo, tag, &r);
        if (rv < 0)
            return rv;
        if (rv == 1 && m->p != NULL)
            snprintf(m->p, m->cap, "tag %s of %s is immutable (rule %s:%s)", tag, repo,
                     r.repo_pattern, r.tag_pattern);
        return rv == 1 ? PT_E_IMMUTABLE : 0;
    }
    case PT_POLICY_TAG_DELETE:
        return tag != NULL ? check_tag_delete(ms, wb, repo, tag, m) : 0;
    case PT_POLICY_MANIFEST_DELETE: {
        if (digest == NULL)
            return 0;
        if ((rv = lock_get(ms, wb, repo, NULL, digest, &we, &de)) != 0)
            return rv;
        if (!de)
            return refuse(m, PT_E_LOCKED, "manifest %s@%s is locked for deletes", repo, digest);
        char prefix[PT_METASTORE_REPO_MAX + 2];
        size_t rlen = strlen(repo) + 1;
        memcpy(prefix, repo, rlen);
        struct tags_to t = {ms, wb, repo, digest, rlen, m};
        return walk(ms, wb, CF_TAGS, prefix, rlen, tags_to_cb, &t);
    }
    default:
        return 0;
    }
}

int pt_metastore_batch_policy_check(struct pt_metastore_batch *b, enum pt_policy_act act,
                                    const char *repo, const char *tag, const char *digest)
{
    struct msg m = {NULL, 0};
    return check(b->ms, b->wb, act, repo, tag, digest, &m);
}

int pt_metastore_policy_explain(struct pt_metastore *ms, enum pt_policy_act act, const char *repo,
                                const char *tag, const char *digest, char *msg, size_t cap)
{
    struct msg m = {msg, cap};
    if (cap > 0)
        msg[0] = '\0';
    return check(ms, NULL, act, repo, tag, digest, &m);
}

/* ---- shared with metastore_retention.c ------------------------------------------------ */

int ms_policy_walk(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, enum cf cf,
                   const char *prefix, size_t plen,
                   int (*cb)(const char *k, size_t klen, const char *v, size_t vlen, void *arg),
                   void *arg)
{
    return walk(ms, wb, cf, prefix, plen, cb, arg);
}

int ms_policy_lock_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                       const char *tag, const char *digest, int *write_enabled, int *delete_enabled)
{
    return lock_get(ms, wb, repo, tag, digest, write_enabled, delete_enabled);
}

int ms_policy_check(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, enum pt_policy_act act,
                    const char *repo, const char *tag, const char *digest)
{
    struct msg m = {NULL, 0};
    return check(ms, wb, act, repo, tag, digest, &m);
}
