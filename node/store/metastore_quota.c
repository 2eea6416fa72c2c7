/*
 * metastore_quota.c - storage quotas and the usage they are checked against (replicated
 * records in the default column family, so they travel in snapshots and count in the state
 * digest like every other replicated record).
 *
 *   key                                          value
 *   -------------------------------------------  -----------------------------------------
 *   "policy/quota/" <pattern>                    v1 u64:limit_bytes
 *                                                ("*": the whole registry; any other
 *                                                repository pattern (oci/access.h): each
 *                                                matching repository on its own)
 *   "usage/total"                                v1 u64:bytes u64:blobs  distinct blobs of
 *                                                the registry (charged to some repository)
 *   "usage/repo/" <repo>                         v1 u64:bytes u64:blobs  distinct blobs
 *                                                charged to repo (absent = none)
 *   "usage/charge/" <repo> \0 <digest>           v1 u64:size  digest is charged to repo
 *   "usage/blob/" <digest>                       v1 u64:size u64:repos  repositories that
 *                                                digest is charged to (absent = none)
 *   "usage/indexed"                              v1  the usage records are complete
 *
 * What is charged: a blob is charged to a repository while the repository links it
 * (repo_blobs: an upload or a mount) or one of its manifests references it (the reference
 * index of metastore_gc.c). The batch keeps the records in the same WriteBatch as the writes
 * that change them: pt_metastore_batch_blob_link and blob_refs_put charge (ms_usage_charge),
 * blob_unlink and blob_refs_delete release (ms_usage_release, which keeps the charge while a
 * link or a reference is left). So usage goes down only when the last link and reference of a
 * blob in a repository go: UnlinkBlob, or a garbage collection pass that removes a link no
 * manifest references any more (a deleted manifest's blobs stay charged until then: the
 * pass after the grace). Each charge records the size it added, so a release subtracts
 * exactly that.
 *
 * Decision (admit): adding blobs to repo is refused with PT_E_QUOTA_EXCEEDED when, for a
 * quota matching repo, the usage of repo plus the sizes of the given blobs not yet charged to
 * it (each digest once) exceeds the limit, or, for "*", the registry total plus the sizes of
 * the blobs charged nowhere exceeds it. Adding nothing new is always admitted, also over a
 * quota lowered since. The FSM asks with its batch (linearizable with the write); HTTP
 * handlers ask the database before they keep an upload's bytes.
 *
 * Existing data: a store written before these records existed lacks them; open builds them
 * once (ms_usage_index_build, after the reference index) from repo_blobs and the reference
 * index and writes "usage/indexed"; every region does the same from the same replicated
 * state.
 *
 * Bounds: at most PT_METASTORE_QUOTAS_MAX quotas (a replacement always works).
 */
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "err.h"
#include "metastore_int.h"

#define Q_PREFIX      "policy/quota/"
#define U_TOTAL       "usage/total"
#define U_REPO        "usage/repo/"
#define U_CHARGE      "usage/charge/"
#define U_BLOB        "usage/blob/"
#define U_INDEXED     "usage/indexed"
#define GC_REF_PREFIX "gc/ref/"
#define U_KEY_MAX     (32 + PT_METASTORE_REPO_MAX + PT_METASTORE_DIGEST_MAX + 2)

/* ---- keys and values -------------------------------------------------------------------- */

static size_t key2(char *key, const char *prefix, const char *a, const char *b)
{
    size_t n = strlen(prefix), an = strlen(a);
    memcpy(key, prefix, n);
    memcpy(key + n, a, an);
    n += an;
    if (b != NULL) {
        size_t bn = strlen(b);
        key[n++] = '\0';
        memcpy(key + n, b, bn);
        n += bn;
    }
    return n;
}

static void enc_pair(struct pt_buf *e, uint64_t a, uint64_t b)
{
    unsigned char v[17];
    v[0] = REC_VERSION;
    pt_put_le64(v + 1, a);
    pt_put_le64(v + 9, b);
    pt_buf_append(e, v, sizeof(v));
}

/* 1 with *a (and *b for pair records, b NULL: a u64 record) read, 0 absent, negative error. */
static int get_rec(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *key,
                   size_t klen, uint64_t *a, uint64_t *b)
{
    char *v;
    size_t vlen;
    int rv = ms_get_raw(ms, wb, CF_DEFAULT, key, klen, &v, &vlen);
    if (rv != 1) {
        *a = 0;
        if (b != NULL)
            *b = 0;
        return rv;
    }
    size_t want = b != NULL ? 17 : 9;
    rv = vlen == want && (unsigned char)v[0] == REC_VERSION ? 1 : PT_E_CORRUPT;
    if (rv == 1) {
        *a = pt_get_le64((const unsigned char *)v + 1);
        if (b != NULL)
            *b = pt_get_le64((const unsigned char *)v + 9);
    }
    rocksdb_free(v);
    return rv;
}

static int put_pair(struct pt_metastore_batch *b, const char *key, size_t klen, uint64_t x,
                    uint64_t y)
{
    struct pt_buf e = {0};
    enc_pair(&e, x, y);
    return ms_stage_put(b, CF_DEFAULT, key, klen, &e);
}

static int put_u64(struct pt_metastore_batch *b, const char *key, size_t klen, uint64_t x)
{
    struct pt_buf e = {0};
    ms_enc_size(&e, x);
    return ms_stage_put(b, CF_DEFAULT, key, klen, &e);
}

static uint64_t sub_sat(uint64_t a, uint64_t b)
{
    return a > b ? a - b : 0;
}

/* Adds (bytes, blobs) to the pair record at key, or subtracts them (sign < 0); a pair that
 * reaches no blobs is deleted. */
static int pair_add(struct pt_metastore_batch *b, const char *key, size_t klen, uint64_t bytes,
                    int sign)
{
    uint64_t have, blobs;
    int rv = get_rec(b->ms, b->wb, key, klen, &have, &blobs);
    if (rv < 0)
        return rv;
    if (sign > 0)
        return put_pair(b, key, klen, have + bytes, blobs + 1);
    have = sub_sat(have, bytes);
    blobs = sub_sat(blobs, 1);
    if (blobs == 0) {
        ms_stage_delete(b, CF_DEFAULT, key, klen);
        return 0;
    }
    return put_pair(b, key, klen, have, blobs);
}

/* ---- charges ---------------------------------------------------------------------------- */

/* 1 if repo links digest or a manifest of repo references it (staged writes included). */
static int holds(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                 const char *digest)
{
    int rv = ms_blob_linked(ms, wb, repo, digest, NULL);
    if (rv == 0)
        return 1;
    if (rv != PT_E_BLOB_UNKNOWN)
        return rv;
    char prefix[U_KEY_MAX];
    size_t plen = key2(prefix, GC_REF_PREFIX, digest, repo);
    prefix[plen++] = '\0';
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ms->db, ro, ms->cf[CF_DEFAULT]);
    if (wb != NULL)
        it = rocksdb_writebatch_wi_create_iterator_with_base_cf(wb, it, ms->cf[CF_DEFAULT]);
    rocksdb_iter_seek(it, prefix, plen);
    int found = 0;
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        found = klen >= plen && memcmp(k, prefix, plen) == 0;
    }
    rv = ms_iter_free(it, ro);
    return rv != 0 ? rv : found;
}

int ms_usage_charge(struct pt_metastore_batch *b, const char *repo, const char *digest,
                    uint64_t size)
{
    char key[U_KEY_MAX];
    size_t klen = key2(key, U_CHARGE, repo, digest);
    uint64_t have;
    int rv = get_rec(b->ms, b->wb, key, klen, &have, NULL);
    if (rv != 0)
        return rv < 0 ? rv : 0; /* charged already */
    if ((rv = put_u64(b, key, klen, size)) != 0)
        return rv;
    klen = key2(key, U_REPO, repo, NULL);
    if ((rv = pair_add(b, key, klen, size, 1)) != 0)
        return rv;
    uint64_t bsize, repos;
    klen = key2(key, U_BLOB, digest, NULL);
    rv = get_rec(b->ms, b->wb, key, klen, &bsize, &repos);
    if (rv < 0)
        return rv;
    if (rv == 1)
        return put_pair(b, key, klen, bsize, repos + 1);
    if ((rv = put_pair(b, key, klen, size, 1)) != 0)
        return rv;
    return pair_add(b, U_TOTAL, strlen(U_TOTAL), size, 1);
}

int ms_usage_release(struct pt_metastore_batch *b, const char *repo, const char *digest)
{
    char key[U_KEY_MAX];
    size_t klen = key2(key, U_CHARGE, repo, digest);
    uint64_t size;
    int rv = get_rec(b->ms, b->wb, key, klen, &size, NULL);
    if (rv <= 0)
        return rv; /* not charged */
    rv = holds(b->ms, b->wb, repo, digest);
    if (rv != 0)
        return rv < 0 ? rv : 0; /* still linked or referenced */
    ms_stage_delete(b, CF_DEFAULT, key, klen);
    klen = key2(key, U_REPO, repo, NULL);
    if ((rv = pair_add(b, key, klen, size, -1)) != 0)
        return rv;
    uint64_t bsize, repos;
    klen = key2(key, U_BLOB, digest, NULL);
    rv = get_rec(b->ms, b->wb, key, klen, &bsize, &repos);
    if (rv <= 0)
        return rv;
    if (repos > 1)
        return put_pair(b, key, klen, bsize, repos - 1);
    ms_stage_delete(b, CF_DEFAULT, key, klen);
    return pair_add(b, U_TOTAL, strlen(U_TOTAL), bsize, -1);
}

/* The size to charge for digest in repo: its link's, else its location's, else 0. */
static int charge_size(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                       const char *digest, uint64_t *size)
{
    int rv = ms_blob_linked(ms, wb, repo, digest, size);
    if (rv != PT_E_BLOB_UNKNOWN)
        return rv;
    struct location loc;
    rv = ms_location_get(ms, wb, digest, &loc);
    *size = rv == 1 ? loc.size : 0;
    return rv < 0 ? rv : 0;
}

int ms_usage_charge_ref(struct pt_metastore_batch *b, const char *repo, const char *digest)
{
    uint64_t size;
    int rv = charge_size(b->ms, b->wb, repo, digest, &size);
    return rv != 0 ? rv : ms_usage_charge(b, repo, digest, size);
}

/* ---- quotas ----------------------------------------------------------------------------- */

bool pt_metastore_quota_pattern_valid(const char *pattern)
{
    size_t n = strnlen(pattern, PT_METASTORE_QUOTA_PATTERN_MAX + 1);
    if (n == 0 || n > PT_METASTORE_QUOTA_PATTERN_MAX)
        return false;
    return strcmp(pattern, PT_QUOTA_REGISTRY) == 0 || pt_access_pattern_valid(pattern, n);
}

/* Walks the quotas through wb (may be NULL); cb returns nonzero to stop (negative: error). */
static int quota_walk(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb,
                      int (*cb)(void *arg, const struct pt_quota_rec *q), void *arg)
{
    size_t plen = strlen(Q_PREFIX);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ms->db, ro, ms->cf[CF_DEFAULT]);
    if (wb != NULL)
        it = rocksdb_writebatch_wi_create_iterator_with_base_cf(wb, it, ms->cf[CF_DEFAULT]);
    int rv = 0;
    for (rocksdb_iter_seek(it, Q_PREFIX, plen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, Q_PREFIX, plen) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vlen);
        struct pt_quota_rec q;
        if ((rv = ms_key_text(k + plen, klen - plen, q.pattern, PT_METASTORE_QUOTA_PATTERN_MAX)) !=
            0)
            break;
        if (vlen != 9 || (unsigned char)v[0] != REC_VERSION ||
            !pt_metastore_quota_pattern_valid(q.pattern)) {
            rv = PT_E_CORRUPT;
            break;
        }
        q.limit = pt_get_le64((const unsigned char *)v + 1);
        if ((rv = cb(arg, &q)) != 0)
            break;
    }
    int irv = ms_iter_free(it, ro);
    if (rv < 0)
        return rv;
    return irv != 0 ? irv : 0;
}

struct quota_list {
    struct pt_quota_rec *v;
    size_t n, cap;
    int err;
};

static int list_cb(void *arg, const struct pt_quota_rec *q)
{
    struct quota_list *l = arg;
    if (l->n == l->cap && (l->err = pt_array_grow(&l->v, &l->cap, sizeof(*l->v), 8,
                                                  PT_METASTORE_QUOTAS_MAX + 1)) != 0)
        return -1;
    l->v[l->n++] = *q;
    return 0;
}

int pt_metastore_quota_list(struct pt_metastore *ms, struct pt_quota_rec **out, size_t *n)
{
    struct quota_list l = {0};
    int rv = quota_walk(ms, NULL, list_cb, &l);
    if (rv != 0 || l.err != 0) {
        free(l.v);
        *out = NULL;
        *n = 0;
        return l.err != 0 ? l.err : rv;
    }
    *out = l.v;
    *n = l.n;
    return 0;
}

static int usage_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                     struct pt_usage *out)
{
    char key[U_KEY_MAX];
    size_t klen = repo != NULL ? key2(key, U_REPO, repo, NULL) : key2(key, U_TOTAL, "", NULL);
    int rv = get_rec(ms, wb, key, klen, &out->bytes, &out->blobs);
    return rv < 0 ? rv : 0;
}

int pt_metastore_usage_repo(struct pt_metastore *ms, const char *repo, struct pt_usage *out)
{
    memset(out, 0, sizeof(*out));
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    return usage_get(ms, NULL, repo, out);
}

int pt_metastore_usage_registry(struct pt_metastore *ms, struct pt_usage *out)
{
    memset(out, 0, sizeof(*out));
    return usage_get(ms, NULL, NULL, out);
}

struct admit {
    const char *repo;
    struct pt_usage repo_use, total_use;
    uint64_t add_repo, add_total;
    struct pt_quota_refusal *out;
    int refused;
};

static int admit_cb(void *arg, const struct pt_quota_rec *q)
{
    struct admit *a = arg;
    uint64_t used, add;
    if (strcmp(q->pattern, PT_QUOTA_REGISTRY) == 0) {
        used = a->total_use.bytes;
        add = a->add_total;
    } else if (pt_access_pattern_match(q->pattern, strlen(q->pattern), a->repo, strlen(a->repo))) {
        used = a->repo_use.bytes;
        add = a->add_repo;
    } else {
        return 0;
    }
    if (add == 0 || (used <= q->limit && add <= q->limit - used))
        return 0;
    a->refused = 1;
    if (a->out != NULL) {
        memcpy(a->out->pattern, q->pattern, sizeof(q->pattern));
        a->out->limit = q->limit;
        a->out->used = used;
        a->out->adding = add;
    }
    return 1;
}

/* The admission of digests[0..n) (sizes: each one's size, or NULL: looked up) into repo, as
 * of wb (NULL: the database). A digest NULL is a blob not known yet (counted fully). */
static int admit(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                 const char *const *digests, const uint64_t *sizes, size_t n,
                 struct pt_quota_refusal *out)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    struct admit a = {.repo = repo, .out = out};
    for (size_t i = 0; i < n; i++) {
        const char *d = digests[i];
        uint64_t size = sizes != NULL ? sizes[i] : 0;
        int dup = 0;
        for (size_t j = 0; d != NULL && j < i && !dup; j++)
            dup = digests[j] != NULL && strcmp(digests[j], d) == 0;
        if (dup)
            continue;
        int charged_here = 0, charged_anywhere = 0;
        if (d != NULL) {
            if (!ms_digest_ok(d))
                return PT_E_DIGEST_INVALID;
            char key[U_KEY_MAX];
            uint64_t x, y;
            int rv = get_rec(ms, wb, key, key2(key, U_CHARGE, repo, d), &x, NULL);
            if (rv < 0)
                return rv;
            charged_here = rv;
            rv = get_rec(ms, wb, key, key2(key, U_BLOB, d, NULL), &x, &y);
            if (rv < 0)
                return rv;
            charged_anywhere = rv;
            if (sizes == NULL && !charged_here && (rv = charge_size(ms, wb, repo, d, &size)) != 0)
                return rv;
        }
        if (!charged_here)
            a.add_repo += size;
        if (!charged_anywhere)
            a.add_total += size;
    }
    if (a.add_repo == 0 && a.add_total == 0)
        return 0;
    int rv = usage_get(ms, wb, repo, &a.repo_use);
    if (rv == 0)
        rv = usage_get(ms, wb, NULL, &a.total_use);
    if (rv == 0)
        rv = quota_walk(ms, wb, admit_cb, &a);
    if (rv != 0)
        return rv;
    return a.refused ? PT_E_QUOTA_EXCEEDED : 0;
}

int pt_metastore_quota_admit(struct pt_metastore *ms, const char *repo, const char *digest,
                             uint64_t size, struct pt_quota_refusal *out)
{
    return admit(ms, NULL, repo, &digest, &size, 1, out);
}

int pt_metastore_batch_quota_admit(struct pt_metastore_batch *b, const char *repo,
                                   const char *const *digests, const uint64_t *sizes, size_t n,
                                   struct pt_quota_refusal *out)
{
    return admit(b->ms, b->wb, repo, digests, sizes, n, out);
}

static int count_cb(void *arg, const struct pt_quota_rec *q)
{
    (void)q;
    ++*(size_t *)arg;
    return 0;
}

int pt_metastore_batch_quota_put(struct pt_metastore_batch *b, const char *pattern, uint64_t limit)
{
    if (!pt_metastore_quota_pattern_valid(pattern))
        return PT_E_CONFIG;
    char key[U_KEY_MAX];
    size_t klen = key2(key, Q_PREFIX, pattern, NULL);
    uint64_t old;
    int rv = get_rec(b->ms, b->wb, key, klen, &old, NULL);
    if (rv < 0)
        return rv;
    if (rv == 0) {
        size_t n = 0;
        if ((rv = quota_walk(b->ms, b->wb, count_cb, &n)) != 0)
            return rv;
        if (n >= PT_METASTORE_QUOTAS_MAX)
            return PT_E_TOO_LARGE;
    }
    return put_u64(b, key, klen, limit);
}

int pt_metastore_batch_quota_delete(struct pt_metastore_batch *b, const char *pattern)
{
    if (!pt_metastore_quota_pattern_valid(pattern))
        return PT_E_CONFIG;
    char key[U_KEY_MAX];
    ms_stage_delete(b, CF_DEFAULT, key, key2(key, Q_PREFIX, pattern, NULL));
    return 0;
}

/* ---- listings --------------------------------------------------------------------------- */

int pt_metastore_usage_list(struct pt_metastore *ms, const char *after, size_t max,
                            int (*cb)(void *arg, const char *repo, const struct pt_usage *u),
                            void *arg)
{
    size_t plen = strlen(U_REPO);
    char start[U_KEY_MAX];
    if (after != NULL && !ms_name_ok(after, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    size_t slen = key2(start, U_REPO, after != NULL ? after : "", NULL);
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, CF_DEFAULT, NULL, 0, NULL, &ro);
    int rv = 0;
    size_t n = 0;
    rocksdb_iter_seek(it, start, slen);
    for (; rocksdb_iter_valid(it) && n < max; rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, U_REPO, plen) != 0)
            break;
        if (after != NULL && klen == slen && memcmp(k, start, slen) == 0)
            continue;
        const char *v = rocksdb_iter_value(it, &vlen);
        char repo[PT_METASTORE_REPO_MAX + 1];
        struct pt_usage u;
        if ((rv = ms_key_text(k + plen, klen - plen, repo, PT_METASTORE_REPO_MAX)) != 0)
            break;
        if (vlen != 17 || (unsigned char)v[0] != REC_VERSION) {
            rv = PT_E_CORRUPT;
            break;
        }
        u.bytes = pt_get_le64((const unsigned char *)v + 1);
        u.blobs = pt_get_le64((const unsigned char *)v + 9);
        n++;
        if ((rv = cb(arg, repo, &u)) != 0)
            break;
    }
    int irv = ms_iter_free(it, ro);
    if (rv < 0)
        return rv;
    return irv != 0 ? irv : 0;
}

/* Keys under prefix (plen bytes) in cf, counting no further than cap. */
static long count_prefix(struct pt_metastore *ms, enum cf cf, const char *prefix, size_t plen,
                         size_t cap)
{
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, cf, NULL, 0, NULL, &ro);
    size_t n = 0;
    for (rocksdb_iter_seek(it, prefix, plen); rocksdb_iter_valid(it) && n < cap;
         rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, prefix, plen) != 0)
            break;
        n++;
    }
    int rv = ms_iter_free(it, ro);
    return rv != 0 ? rv : (long)n;
}

int pt_metastore_repo_counts(struct pt_metastore *ms, const char *repo, size_t cap,
                             uint64_t *manifests, uint64_t *tags)
{
    *manifests = *tags = 0;
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    char prefix[PT_METASTORE_REPO_MAX + 1];
    size_t plen = strlen(repo) + 1;
    memcpy(prefix, repo, plen);
    long m = count_prefix(ms, CF_MANIFESTS, prefix, plen, cap);
    if (m < 0)
        return (int)m;
    long t = count_prefix(ms, CF_TAGS, prefix, plen, cap);
    if (t < 0)
        return (int)t;
    *manifests = (uint64_t)m;
    *tags = (uint64_t)t;
    return 0;
}

/* ---- building the records of an older store ------------------------------------------- */

/* Charges every link (repo_blobs) and every reference (gc/ref/ digest \0 repo \0 manifest). */
static int index_all(struct pt_metastore_batch *b)
{
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(b->ms, CF_REPO_BLOBS, NULL, 0, NULL, &ro);
    int rv = 0;
    for (rocksdb_iter_seek_to_first(it); rv == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        const char *sep = memchr(k, '\0', klen);
        char repo[PT_METASTORE_REPO_MAX + 1], digest[PT_METASTORE_DIGEST_MAX + 1];
        uint64_t size;
        if (sep == NULL) {
            rv = PT_E_CORRUPT;
            break;
        }
        if ((rv = ms_key_text(k, (size_t)(sep - k), repo, PT_METASTORE_REPO_MAX)) == 0 &&
            (rv = ms_key_text(sep + 1, klen - (size_t)(sep - k) - 1, digest,
                              PT_METASTORE_DIGEST_MAX)) == 0 &&
            (rv = ms_dec_size(v, vlen, &size)) == 0)
            rv = ms_usage_charge(b, repo, digest, size);
    }
    int irv = ms_iter_free(it, ro);
    if (rv != 0 || irv != 0)
        return rv != 0 ? rv : irv;
    size_t plen = strlen(GC_REF_PREFIX);
    it = ms_iter_new(b->ms, CF_DEFAULT, NULL, 0, NULL, &ro);
    for (rocksdb_iter_seek(it, GC_REF_PREFIX, plen); rv == 0 && rocksdb_iter_valid(it);
         rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, GC_REF_PREFIX, plen) != 0)
            break;
        const char *d = k + plen, *end = k + klen;
        const char *s1 = memchr(d, '\0', (size_t)(end - d));
        const char *s2 = s1 != NULL ? memchr(s1 + 1, '\0', (size_t)(end - s1 - 1)) : NULL;
        char repo[PT_METASTORE_REPO_MAX + 1], digest[PT_METASTORE_DIGEST_MAX + 1];
        if (s2 == NULL) {
            rv = PT_E_CORRUPT;
            break;
        }
        if ((rv = ms_key_text(d, (size_t)(s1 - d), digest, PT_METASTORE_DIGEST_MAX)) == 0 &&
            (rv = ms_key_text(s1 + 1, (size_t)(s2 - s1 - 1), repo, PT_METASTORE_REPO_MAX)) == 0)
            rv = ms_usage_charge_ref(b, repo, digest);
    }
    irv = ms_iter_free(it, ro);
    return rv != 0 ? rv : irv;
}

int ms_usage_index_build(struct pt_metastore *ms)
{
    if (ms->read_only)
        return 0;
    char *v;
    size_t vlen;
    int rv = ms_get_raw(ms, NULL, CF_DEFAULT, U_INDEXED, strlen(U_INDEXED), &v, &vlen);
    if (rv != 0) {
        if (rv == 1)
            rocksdb_free(v);
        return rv < 0 ? rv : 0;
    }
    struct pt_metastore_batch *b;
    if ((rv = pt_metastore_batch_new(ms, &b)) != 0)
        return rv;
    rv = index_all(b);
    if (rv == 0) {
        struct pt_buf e = {0};
        unsigned char one = REC_VERSION;
        pt_buf_append(&e, &one, 1);
        rv = ms_stage_put(b, CF_DEFAULT, U_INDEXED, strlen(U_INDEXED), &e);
    }
    if (rv == 0) {
        /* as the reference index: not through batch_commit (the applied index stays) */
        char *err = NULL;
        rocksdb_write_writebatch_wi(ms->db, ms->wo_sync, b->wb, &err);
        if (err != NULL)
            rv = ms_rdb_err(err);
    }
    pt_metastore_batch_free(b);
    return rv;
}
