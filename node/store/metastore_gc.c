/*
 * metastore_gc.c - what garbage collection of blobs needs from the metadata store: the index of
 * blob references and links the FSM keeps, the decision whether a blob is garbage (the same
 * code marks and re-checks at apply), and the local list of files to delete.
 *
 * Records (replicated ones in the default column family, so they travel in snapshots and count
 * in the state digest like every other replicated record):
 *
 *   key                                               value
 *   ------------------------------------------------  ---------------------------------------
 *   "gc/ref/"  <digest> \0 <repo> \0 <manifest>        v1           manifest of repo references
 *                                                                   blob digest (PutManifest's
 *                                                                   blob list: config, layers)
 *   "gc/mref/" <repo> \0 <manifest> \0 <digest>        v1           the same, by manifest (what
 *                                                                   DeleteManifest removes)
 *   "gc/link/" <digest> \0 <repo>                      v1 i64:ms    digest is linked into repo
 *                                                                   (mirrors repo_blobs, by
 *                                                                   digest), last linked at ms
 *   "gc/mtime/" <repo> \0 <manifest>                   v1 i64:ms    manifest pushed at ms (the
 *                                                                   grace of an orphan referrer;
 *                                                                   absent = before the index)
 *   "gc/dead/" <digest>                                v1 [i64:ms]  collected (by the entry of
 *                                                                   time ms), and not stored by
 *                                                                   an upload since: LinkBlob
 *                                                                   refuses it (the proposer saw
 *                                                                   it before the collection);
 *                                                                   records without a time come
 *                                                                   from before the time was kept
 *   "gc/deadt/" <16 hex digits: ms> <digest>          v1           the same by time: what
 *                                                                   forgetting walks, oldest
 *                                                                   first
 *   "gc/forgot"                                        v1 i64:ms    the newest collection whose
 *                                                                   records were forgotten
 *   "gc/child/" <repo> \0 <child> \0 <index>           v1           index (a manifest of repo)
 *                                                                   names child manifest
 *   "gc/mchild/" <repo> \0 <index> \0 <child>          v1           the same, by index
 *   "gc/orphan/" <repo> \0 <child>                     v1 i64:ms    child lost the last index
 *                                                                   naming it at ms (deleted
 *                                                                   by a pass after the grace
 *                                                                   unless tagged or named
 *                                                                   again)
 *   "gc/indexed"                                       v1           the records above are
 *                                                                   complete (but children)
 *   "gc/indexed-children"                              v1           the children records are
 *                                                                   complete
 *   (local_blobs, local to the region)
 *   "~gc/" <digest>                                    v1 i64:ms    blob collected by the entry
 *                                                                   of time ms: its file is to
 *                                                                   be deleted here
 *
 * The decision (evaluate): a link of digest to repo R is garbage when no manifest of R
 * references digest and it was last linked at least grace before now; the blob itself is
 * garbage when, those links gone, no repository links it and no manifest anywhere references
 * it. Marking (pt_metastore_gc_mark) runs it over the database; apply
 * (pt_metastore_batch_gc_collect) runs it again through the FSM's batch, as of the entry's own
 * time, and stages the removals. Neither ever holds more than one blob's records in memory.
 *
 * Existing data: a store written before these records existed lacks them; open builds them
 * once (gc_index_build: every manifest body parsed for its blobs, every repo_blobs record
 * mirrored with time 0) and writes "gc/indexed"; the children records, added later, are
 * built the same way under their own "gc/indexed-children". Collection refuses to act on a
 * store without that record (PT_E_UNAVAILABLE), so a missing index never looks like
 * "unreferenced".
 *
 * Children: DeleteManifest of an index records each child no other index of the repository
 * names as an orphan; a pass deletes it after the grace unless it was tagged, named by an
 * index or pushed again meanwhile (those drop the record), re-checked at apply like blobs.
 *
 * Forgetting: "gc/dead/" records would otherwise grow with every collection. Each carries its
 * collection's time and is listed by time ("gc/deadt/"), so forgetting the old ones walks
 * only what it forgets (at most a bound per command); "gc/forgot" keeps the newest forgotten
 * collection, so that a LinkBlob older than it of a blob no region holds is still refused.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "err.h"
#include "log.h"
#include "manifest.h"
#include "metastore_int.h"

#define GC_REF      "gc/ref/"
#define GC_MREF     "gc/mref/"
#define GC_LINK     "gc/link/"
#define GC_INDEXED  "gc/indexed"
#define GC_MTIME    "gc/mtime/"
#define GC_DEAD     "gc/dead/"
#define GC_DEADT    "gc/deadt/"
#define GC_FORGOT   "gc/forgot"
#define GC_PENDING  "~gc/"
#define GC_CHILD    "gc/child/"
#define GC_MCHILD   "gc/mchild/"
#define GC_ORPHAN   "gc/orphan/"
#define GC_CINDEXED "gc/indexed-children"
#define GC_KEY_MAX  (24 + PT_METASTORE_REPO_MAX + 2 * PT_METASTORE_DIGEST_MAX + 2)

/* prefix + a + "\0" + b [+ "\0" + c] into key; returns the length. Components validated. */
static size_t gc_key(char *key, const char *prefix, const char *a, const char *b, const char *c)
{
    size_t p = strlen(prefix);
    memcpy(key, prefix, p);
    return p + ms_key_join(key + p, a, b, c);
}

/* prefix + a + "\0" [+ b + "\0"]: the prefix of every key under a (and b). */
static size_t gc_prefix(char *key, const char *prefix, const char *a, const char *b)
{
    size_t n = strlen(prefix), an = strlen(a);
    memcpy(key, prefix, n);
    memcpy(key + n, a, an);
    n += an;
    key[n++] = '\0';
    if (b != NULL) {
        size_t bn = strlen(b);
        memcpy(key + n, b, bn);
        n += bn;
        key[n++] = '\0';
    }
    return n;
}

static void enc_time(struct pt_buf *e, int64_t ms)
{
    unsigned char v[9];
    v[0] = REC_VERSION;
    pt_put_le64(v + 1, (uint64_t)ms);
    pt_buf_append(e, v, sizeof(v));
}

static int dec_time(const char *v, size_t vlen, int64_t *ms)
{
    if (vlen != 9 || (unsigned char)v[0] != REC_VERSION)
        return PT_E_CORRUPT;
    *ms = (int64_t)pt_get_le64((const unsigned char *)v + 1);
    return 0;
}

static int stage_flag(struct pt_metastore_batch *b, const char *key, size_t klen)
{
    struct pt_buf e = {0};
    unsigned char v = REC_VERSION;
    pt_buf_append(&e, &v, 1);
    return ms_stage_put(b, CF_DEFAULT, key, klen, &e);
}

/* Iterator over CF_DEFAULT through wb's staged writes (wb may be NULL: the database). */
static rocksdb_iterator_t *iter_default(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb,
                                        rocksdb_readoptions_t **ro)
{
    *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *base = rocksdb_create_iterator_cf(ms->db, *ro, ms->cf[CF_DEFAULT]);
    if (wb == NULL)
        return base;
    return rocksdb_writebatch_wi_create_iterator_with_base_cf(wb, base, ms->cf[CF_DEFAULT]);
}

/* 1 if it is on a key that starts with prefix (plen bytes). */
static int at_prefix(rocksdb_iterator_t *it, const char *prefix, size_t plen)
{
    if (!rocksdb_iter_valid(it))
        return 0;
    size_t klen;
    const char *k = rocksdb_iter_key(it, &klen);
    return klen >= plen && memcmp(k, prefix, plen) == 0;
}

/* 1 if some key starts with prefix, 0 if none, negative on error. */
static int any_with_prefix(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *prefix,
                           size_t plen)
{
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_default(ms, wb, &ro);
    rocksdb_iter_seek(it, prefix, plen);
    int found = at_prefix(it, prefix, plen);
    int rv = ms_iter_free(it, ro);
    return rv != 0 ? rv : found;
}

/* ---- the index, kept by the FSM ------------------------------------------------------- */

int pt_metastore_batch_blob_refs_put(struct pt_metastore_batch *b, const char *repo,
                                     const char *manifest, const char *const *digests, size_t n)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!ms_digest_ok(manifest))
        return PT_E_DIGEST_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!ms_digest_ok(digests[i]))
            return PT_E_DIGEST_INVALID;
    char key[GC_KEY_MAX];
    for (size_t i = 0; i < n; i++) {
        int rv = stage_flag(b, key, gc_key(key, GC_REF, digests[i], repo, manifest));
        if (rv == 0)
            rv = stage_flag(b, key, gc_key(key, GC_MREF, repo, manifest, digests[i]));
        if (rv == 0)
            rv = ms_usage_charge_ref(b, repo, digests[i]);
        if (rv != 0)
            return rv;
    }
    return 0;
}

int pt_metastore_batch_blob_refs_delete(struct pt_metastore_batch *b, const char *repo,
                                        const char *manifest)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!ms_digest_ok(manifest))
        return PT_E_DIGEST_INVALID;
    char prefix[GC_KEY_MAX], key[GC_KEY_MAX];
    size_t plen = gc_prefix(prefix, GC_MREF, repo, manifest);
    /* collect first: staging deletes while iterating the batch would move the iterator */
    char(*digests)[PT_METASTORE_DIGEST_MAX + 1] = NULL;
    size_t n = 0, cap = 0;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_default(b->ms, b->wb, &ro);
    int rv = 0;
    for (rocksdb_iter_seek(it, prefix, plen); at_prefix(it, prefix, plen); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (n == cap && (rv = pt_array_grow(&digests, &cap, sizeof(*digests), 16,
                                            PT_MANIFEST_MAX_REFS + 1)) != 0)
            break;
        if ((rv = ms_key_text(k + plen, klen - plen, digests[n], PT_METASTORE_DIGEST_MAX)) != 0)
            break;
        n++;
    }
    int irv = ms_iter_free(it, ro);
    if (rv == 0)
        rv = irv;
    for (size_t i = 0; rv == 0 && i < n; i++) {
        ms_stage_delete(b, CF_DEFAULT, key, gc_key(key, GC_MREF, repo, manifest, digests[i]));
        ms_stage_delete(b, CF_DEFAULT, key, gc_key(key, GC_REF, digests[i], repo, manifest));
    }
    /* after every reference is gone: a digest listed twice is released once */
    for (size_t i = 0; rv == 0 && i < n; i++)
        rv = ms_usage_release(b, repo, digests[i]);
    if (rv == 0)
        ms_stage_delete(b, CF_DEFAULT, key, gc_key(key, GC_MTIME, repo, manifest, NULL));
    free(digests);
    return rv;
}

int pt_metastore_batch_manifest_pushed(struct pt_metastore_batch *b, const char *repo,
                                       const char *manifest, int64_t time_ms)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!ms_digest_ok(manifest))
        return PT_E_DIGEST_INVALID;
    char key[GC_KEY_MAX];
    struct pt_buf e = {0};
    enc_time(&e, time_ms);
    return ms_stage_put(b, CF_DEFAULT, key, gc_key(key, GC_MTIME, repo, manifest, NULL), &e);
}

int ms_gc_link_put(struct pt_metastore_batch *b, const char *repo, const char *digest,
                   int64_t time_ms, bool keep_existing)
{
    char key[GC_KEY_MAX];
    size_t klen = gc_key(key, GC_LINK, digest, repo, NULL);
    if (keep_existing) {
        char *v;
        size_t vlen;
        int rv = ms_get_raw(b->ms, b->wb, CF_DEFAULT, key, klen, &v, &vlen);
        if (rv < 0)
            return rv;
        if (rv == 1) {
            rocksdb_free(v);
            return 0;
        }
    }
    struct pt_buf e = {0};
    enc_time(&e, time_ms);
    return ms_stage_put(b, CF_DEFAULT, key, klen, &e);
}

void ms_gc_link_delete(struct pt_metastore_batch *b, const char *repo, const char *digest)
{
    char key[GC_KEY_MAX];
    ms_stage_delete(b, CF_DEFAULT, key, gc_key(key, GC_LINK, digest, repo, NULL));
}

int pt_metastore_batch_blob_link_time(struct pt_metastore_batch *b, const char *repo,
                                      const char *digest, int64_t time_ms)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    return ms_gc_link_put(b, repo, digest, time_ms, false);
}

int pt_metastore_batch_blob_location(struct pt_metastore_batch *b, const char *digest)
{
    struct location loc;
    int rv = ms_location_get(b->ms, b->wb, digest, &loc);
    return rv < 0 ? rv : rv == 1 ? 0 : PT_E_BLOB_UNKNOWN;
}

static size_t dead_key(char *key, const char *digest)
{
    size_t n = strlen(GC_DEAD), dn = strlen(digest);
    memcpy(key, GC_DEAD, n);
    memcpy(key + n, digest, dn);
    return n + dn;
}

/* "gc/deadt/" + 16 hex digits of ms + digest (validated) into key; returns the length. */
static size_t deadt_key(char *key, int64_t ms, const char *digest)
{
    size_t n = strlen(GC_DEADT);
    memcpy(key, GC_DEADT, n);
    snprintf(key + n, 17, "%016llx", (unsigned long long)(uint64_t)ms);
    n += 16;
    size_t dn = strlen(digest);
    memcpy(key + n, digest, dn);
    return n + dn;
}

/* The time of a collected-blob record's value: 0 and *t, 1 when it has none (older format). */
static int dead_time(const char *v, size_t vlen, int64_t *t)
{
    if (vlen == 1 && (unsigned char)v[0] == REC_VERSION)
        return 1;
    return dec_time(v, vlen, t);
}

/* The newest forgotten collection's time into *t: 1, or 0 when none was forgotten. */
static int forgot_until(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, int64_t *t)
{
    char *v;
    size_t vlen;
    int rv = ms_get_raw(ms, wb, CF_DEFAULT, GC_FORGOT, strlen(GC_FORGOT), &v, &vlen);
    if (rv != 1)
        return rv;
    rv = dec_time(v, vlen, t);
    rocksdb_free(v);
    return rv != 0 ? rv : 1;
}

int pt_metastore_batch_blob_collected(struct pt_metastore_batch *b, const char *digest,
                                      int64_t proposed_ms)
{
    if (!ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    char key[GC_KEY_MAX], *v;
    size_t vlen;
    int rv = ms_get_raw(b->ms, b->wb, CF_DEFAULT, key, dead_key(key, digest), &v, &vlen);
    if (rv != 0) {
        if (rv == 1)
            rocksdb_free(v);
        return rv;
    }
    int64_t until = 0;
    if ((rv = forgot_until(b->ms, b->wb, &until)) <= 0 || proposed_ms > until)
        return rv < 0 ? rv : 0;
    struct location loc;
    rv = ms_location_get(b->ms, b->wb, digest, &loc);
    return rv < 0 ? rv : !rv;
}

int pt_metastore_batch_blob_revive(struct pt_metastore_batch *b, const char *digest)
{
    if (!ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    char key[GC_KEY_MAX], *v;
    size_t vlen, klen = dead_key(key, digest);
    int rv = ms_get_raw(b->ms, b->wb, CF_DEFAULT, key, klen, &v, &vlen);
    if (rv <= 0)
        return rv;
    int64_t t = 0;
    rv = dead_time(v, vlen, &t);
    rocksdb_free(v);
    if (rv < 0)
        return rv;
    ms_stage_delete(b, CF_DEFAULT, key, klen);
    if (rv == 0)
        ms_stage_delete(b, CF_DEFAULT, key, deadt_key(key, t, digest));
    return 0;
}

/* Walks the records by time of collections at or before cutoff, oldest first, calling cb
 * with each one's time and digest until it returns non-zero (returned) or max were seen. */
static int walk_forgettable(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, int64_t cutoff,
                            size_t max, int (*cb)(int64_t t, const char *digest, void *arg),
                            void *arg)
{
    size_t plen = strlen(GC_DEADT);
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_default(ms, wb, &ro);
    int rv = 0;
    size_t seen = 0;
    for (rocksdb_iter_seek(it, GC_DEADT, plen);
         rv == 0 && seen < max && at_prefix(it, GC_DEADT, plen); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        char hex[17], digest[PT_METASTORE_DIGEST_MAX + 1];
        if (klen < plen + 16 ||
            ms_key_text(k + plen + 16, klen - plen - 16, digest, PT_METASTORE_DIGEST_MAX) != 0 ||
            !ms_digest_ok(digest)) {
            rv = PT_E_CORRUPT;
            break;
        }
        memcpy(hex, k + plen, 16);
        hex[16] = '\0';
        int64_t t = (int64_t)strtoull(hex, NULL, 16);
        if (t > cutoff)
            break; /* in time order: none after it is old enough */
        rv = cb(t, digest, arg);
        seen++;
    }
    int irv = ms_iter_free(it, ro);
    return rv != 0 ? rv : irv;
}

struct forget_list {
    size_t n;
    int64_t *times;
    char (*digests)[PT_METASTORE_DIGEST_MAX + 1];
};

static int forget_cb(int64_t t, const char *digest, void *arg)
{
    struct forget_list *l = arg;
    l->times[l->n] = t;
    memcpy(l->digests[l->n++], digest, strlen(digest) + 1);
    return 0;
}

static int any_cb(int64_t t, const char *digest, void *arg)
{
    (void)t;
    (void)digest;
    (void)arg;
    return 1;
}

/* now_ms - after_ms without overflow (the earliest time representable otherwise). */
static int64_t forget_cutoff(int64_t now_ms, int64_t after_ms)
{
    return now_ms < INT64_MIN + after_ms ? INT64_MIN : now_ms - after_ms;
}

int pt_metastore_batch_gc_forget(struct pt_metastore_batch *b, int64_t now_ms, int64_t after_ms,
                                 size_t max, size_t *forgotten)
{
    *forgotten = 0;
    if (after_ms < PT_GC_FORGET_MIN_MS)
        return PT_E_CONFIG;
    if (max == 0)
        return 0;
    int64_t cutoff = forget_cutoff(now_ms, after_ms);
    /* listed first: staging deletes while iterating the batch would move the iterator */
    struct forget_list l = {.times = calloc(max, sizeof(*l.times)),
                            .digests = calloc(max, sizeof(*l.digests))};
    int rv = l.times != NULL && l.digests != NULL ? 0 : PT_E_NOMEM;
    if (rv == 0)
        rv = walk_forgettable(b->ms, b->wb, cutoff, max, forget_cb, &l);
    int64_t newest = INT64_MIN;
    for (size_t i = 0; rv == 0 && i < l.n; i++) {
        char key[GC_KEY_MAX], *v;
        size_t vlen, klen = dead_key(key, l.digests[i]);
        int64_t t = 0;
        rv = ms_get_raw(b->ms, b->wb, CF_DEFAULT, key, klen, &v, &vlen);
        if (rv == 1) {
            int dt = dead_time(v, vlen, &t);
            rocksdb_free(v);
            if (dt < 0) {
                rv = dt;
                break;
            }
            if (dt == 0 && t == l.times[i])
                ms_stage_delete(b, CF_DEFAULT, key, klen);
            rv = 0;
        } else if (rv < 0) {
            break;
        }
        ms_stage_delete(b, CF_DEFAULT, key, deadt_key(key, l.times[i], l.digests[i]));
        if (l.times[i] > newest)
            newest = l.times[i];
    }
    int64_t until = 0;
    int had = rv == 0 && l.n > 0 ? forgot_until(b->ms, b->wb, &until) : 0;
    if (had < 0)
        rv = had;
    if (rv == 0 && l.n > 0 && (had == 0 || newest > until)) {
        struct pt_buf e = {0};
        enc_time(&e, newest);
        rv = ms_stage_put(b, CF_DEFAULT, GC_FORGOT, strlen(GC_FORGOT), &e);
    }
    if (rv == 0)
        *forgotten = l.n;
    free(l.times);
    free(l.digests);
    return rv;
}

int pt_metastore_gc_forgettable(struct pt_metastore *ms, int64_t now_ms, int64_t after_ms)
{
    int rv = walk_forgettable(ms, NULL, forget_cutoff(now_ms, after_ms), 1, any_cb, NULL);
    return rv;
}

/* ---- the decision --------------------------------------------------------------------- */

/* Evaluates digest (validated) as of now_ms through wb (NULL: the database). With b set it
 * also stages the removals. out is written. */
static int evaluate(struct pt_metastore *ms, struct pt_metastore_batch *b, const char *digest,
                    int64_t now_ms, int64_t grace_ms, struct pt_gc_verdict *out)
{
    rocksdb_writebatch_wi_t *wb = b != NULL ? b->wb : NULL;
    memset(out, 0, sizeof(*out));
    char prefix[GC_KEY_MAX], rprefix[GC_KEY_MAX];
    size_t plen = gc_prefix(prefix, GC_LINK, digest, NULL);
    size_t rlen = gc_prefix(rprefix, GC_REF, digest, NULL);
    int rv = any_with_prefix(ms, wb, rprefix, rlen);
    if (rv < 0)
        return rv;
    out->referenced = rv;

    /* the links, collected first (at most one per repository, each checked by point reads) */
    char(*repos)[PT_METASTORE_REPO_MAX + 1] = NULL;
    int64_t *times = NULL;
    size_t n = 0, cap = 0, tcap = 0;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_default(ms, wb, &ro);
    rv = 0;
    for (rocksdb_iter_seek(it, prefix, plen); at_prefix(it, prefix, plen); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        if (n == cap && (rv = pt_array_grow(&repos, &cap, sizeof(*repos), 4, SIZE_MAX / 512)) != 0)
            break;
        if (n == tcap &&
            (rv = pt_array_grow(&times, &tcap, sizeof(*times), 4, SIZE_MAX / 512)) != 0)
            break;
        if ((rv = ms_key_text(k + plen, klen - plen, repos[n], PT_METASTORE_REPO_MAX)) != 0 ||
            (rv = dec_time(v, vlen, &times[n])) != 0)
            break;
        n++;
    }
    int irv = ms_iter_free(it, ro);
    if (rv == 0)
        rv = irv;
    for (size_t i = 0; rv == 0 && i < n; i++) {
        char rp[GC_KEY_MAX];
        size_t rpl = gc_prefix(rp, GC_REF, digest, repos[i]);
        int used = any_with_prefix(ms, wb, rp, rpl);
        if (used < 0) {
            rv = used;
            break;
        }
        /* overflow-safe "linked at least grace before now" */
        bool old = times[i] <= now_ms && now_ms - times[i] >= grace_ms;
        if (used || !old) {
            out->links_kept++;
            continue;
        }
        out->links_removed++;
        if (b != NULL) {
            if ((rv = pt_metastore_batch_blob_unlink(b, repos[i], digest)) != 0)
                break;
        }
    }
    free(repos);
    free(times);
    if (rv != 0)
        return rv;

    struct location loc;
    rv = ms_location_get(ms, wb, digest, &loc);
    if (rv < 0)
        return rv;
    out->located = rv;
    out->size = rv == 1 ? loc.size : 0;
    out->collected = out->located && !out->referenced && out->links_kept == 0;
    if (b == NULL || !out->collected)
        return 0;
    ms_stage_delete(b, CF_BLOB_LOCATIONS, digest, strlen(digest));
    ms_missing_gone(b, digest);
    /* a record left by an earlier collection (a replica only can re-locate a blob without
     * reviving it) goes, with its entry by time */
    if ((rv = pt_metastore_batch_blob_revive(b, digest)) != 0)
        return rv;
    char key[GC_KEY_MAX];
    struct pt_buf dv = {0};
    enc_time(&dv, now_ms);
    if ((rv = ms_stage_put(b, CF_DEFAULT, key, dead_key(key, digest), &dv)) != 0 ||
        (rv = stage_flag(b, key, deadt_key(key, now_ms, digest))) != 0)
        return rv;
    size_t klen = strlen(GC_PENDING);
    memcpy(key, GC_PENDING, klen);
    memcpy(key + klen, digest, strlen(digest));
    klen += strlen(digest);
    struct pt_buf e = {0};
    enc_time(&e, now_ms);
    return ms_stage_put(b, CF_LOCAL_BLOBS, key, klen, &e);
}

static int indexed(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb)
{
    char *v;
    size_t vlen;
    int rv = ms_get_raw(ms, wb, CF_DEFAULT, GC_INDEXED, strlen(GC_INDEXED), &v, &vlen);
    if (rv == 1)
        rocksdb_free(v);
    return rv;
}

int pt_metastore_batch_gc_collect(struct pt_metastore_batch *b, const char *digest, int64_t now_ms,
                                  int64_t grace_ms, struct pt_gc_verdict *out)
{
    memset(out, 0, sizeof(*out));
    if (!ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    if (grace_ms < 0)
        return PT_E_CONFIG;
    int rv = indexed(b->ms, b->wb);
    if (rv <= 0)
        return rv < 0 ? rv : PT_E_UNAVAILABLE;
    return evaluate(b->ms, b, digest, now_ms, grace_ms, out);
}

int pt_metastore_gc_check(struct pt_metastore *ms, const char *digest, int64_t now_ms,
                          int64_t grace_ms, struct pt_gc_verdict *out)
{
    memset(out, 0, sizeof(*out));
    if (!ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    return evaluate(ms, NULL, digest, now_ms, grace_ms, out);
}

int pt_metastore_gc_mark(struct pt_metastore *ms, const char *after, int64_t now_ms,
                         int64_t grace_ms,
                         int (*cb)(const char *digest, const struct pt_gc_verdict *v, void *arg),
                         void *arg)
{
    int rv = indexed(ms, NULL);
    if (rv <= 0)
        return rv < 0 ? rv : PT_E_UNAVAILABLE;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, CF_BLOB_LOCATIONS, NULL, 0, NULL, &ro);
    rv = 0;
    size_t alen = after != NULL ? strlen(after) : 0;
    if (alen > 0) {
        rocksdb_iter_seek(it, after, alen);
        if (rocksdb_iter_valid(it)) {
            size_t klen;
            const char *k = rocksdb_iter_key(it, &klen);
            if (klen == alen && memcmp(k, after, alen) == 0)
                rocksdb_iter_next(it);
        }
    } else {
        rocksdb_iter_seek_to_first(it);
    }
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        char digest[PT_METASTORE_DIGEST_MAX + 1];
        struct pt_gc_verdict v;
        if ((rv = ms_key_text(k, klen, digest, PT_METASTORE_DIGEST_MAX)) != 0 ||
            (rv = evaluate(ms, NULL, digest, now_ms, grace_ms, &v)) != 0 ||
            (rv = cb(digest, &v, arg)) != 0)
            break;
    }
    int irv = ms_iter_free(it, ro);
    return rv != 0 ? rv : irv;
}

/* ---- referrers whose subject is gone --------------------------------------------------- */

/* 1 if some tag of repo names digest (staged writes included), 0 if none, negative error. */
static int tagged(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                  const char *digest)
{
    char prefix[PT_METASTORE_REPO_MAX + 1];
    size_t plen = strlen(repo) + 1;
    memcpy(prefix, repo, plen);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *it = rocksdb_create_iterator_cf(ms->db, ro, ms->cf[CF_TAGS]);
    if (wb != NULL)
        it = rocksdb_writebatch_wi_create_iterator_with_base_cf(wb, it, ms->cf[CF_TAGS]);
    int rv = 0, found = 0;
    for (rocksdb_iter_seek(it, prefix, plen); !found && at_prefix(it, prefix, plen);
         rocksdb_iter_next(it)) {
        size_t vlen;
        const char *v = rocksdb_iter_value(it, &vlen);
        char d[PT_METASTORE_DIGEST_MAX + 1];
        int64_t t;
        if ((rv = ms_dec_tag(v, vlen, d, &t)) != 0)
            break;
        found = strcmp(d, digest) == 0;
    }
    int irv = ms_iter_free(it, ro);
    return rv != 0 ? rv : irv != 0 ? irv : found;
}

/* 1 if the referrer digest of subject in repo is garbage as of now_ms: its referrers entry
 * exists, the subject is gone, no tag names it and it was pushed at least grace_ms before. */
static int referrer_garbage(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                            const char *subject, const char *digest, int64_t now_ms,
                            int64_t grace_ms)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX) || !ms_digest_ok(subject) || !ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    char key[GC_KEY_MAX];
    char *v;
    size_t vlen;
    int rv =
        ms_get_raw(ms, wb, CF_REFERRERS, key, ms_key_join(key, repo, subject, digest), &v, &vlen);
    if (rv <= 0)
        return rv;
    rocksdb_free(v);
    rv = ms_manifest_get(ms, wb, repo, subject, NULL, false);
    if (rv != PT_E_MANIFEST_UNKNOWN)
        return rv < 0 && rv != PT_E_MANIFEST_UNKNOWN ? rv : 0;
    rv = ms_get_raw(ms, wb, CF_DEFAULT, key, gc_key(key, GC_MTIME, repo, digest, NULL), &v, &vlen);
    if (rv < 0)
        return rv;
    if (rv == 1) {
        int64_t t = 0;
        rv = dec_time(v, vlen, &t);
        rocksdb_free(v);
        if (rv != 0)
            return rv;
        if (t > now_ms || now_ms - t < grace_ms)
            return 0;
    }
    rv = tagged(ms, wb, repo, digest);
    return rv < 0 ? rv : !rv;
}

int pt_metastore_batch_gc_referrer(struct pt_metastore_batch *b, const char *repo,
                                   const char *subject, const char *digest, int64_t now_ms,
                                   int64_t grace_ms, int *deleted)
{
    *deleted = 0;
    if (grace_ms < 0)
        return PT_E_CONFIG;
    int rv = indexed(b->ms, b->wb);
    if (rv <= 0)
        return rv < 0 ? rv : PT_E_UNAVAILABLE;
    rv = referrer_garbage(b->ms, b->wb, repo, subject, digest, now_ms, grace_ms);
    if (rv <= 0)
        return rv;
    if ((rv = pt_metastore_batch_manifest_delete(b, repo, digest)) != 0 ||
        (rv = pt_metastore_batch_referrer_delete(b, repo, subject, digest)) != 0 ||
        (rv = pt_metastore_batch_blob_refs_delete(b, repo, digest)) != 0 ||
        (rv = pt_metastore_batch_children_delete(b, repo, digest, now_ms)) != 0)
        return rv;
    *deleted = 1;
    return 0;
}

int pt_metastore_gc_mark_referrers(struct pt_metastore *ms, int64_t now_ms, int64_t grace_ms,
                                   int (*cb)(const char *repo, const char *subject,
                                             const char *digest, void *arg),
                                   void *arg)
{
    int rv = indexed(ms, NULL);
    if (rv <= 0)
        return rv < 0 ? rv : PT_E_UNAVAILABLE;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, CF_REFERRERS, NULL, 0, NULL, &ro);
    rv = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *s1 = memchr(k, '\0', klen);
        const char *s2 = s1 != NULL ? memchr(s1 + 1, '\0', klen - (size_t)(s1 + 1 - k)) : NULL;
        if (s2 == NULL) {
            rv = PT_E_CORRUPT;
            break;
        }
        char repo[PT_METASTORE_REPO_MAX + 1], subject[PT_METASTORE_DIGEST_MAX + 1],
            digest[PT_METASTORE_DIGEST_MAX + 1];
        if ((rv = ms_key_text(k, (size_t)(s1 - k), repo, PT_METASTORE_REPO_MAX)) != 0 ||
            (rv = ms_key_text(s1 + 1, (size_t)(s2 - s1 - 1), subject, PT_METASTORE_DIGEST_MAX)) !=
                0 ||
            (rv = ms_key_text(s2 + 1, klen - (size_t)(s2 + 1 - k), digest,
                              PT_METASTORE_DIGEST_MAX)) != 0)
            break;
        int g = referrer_garbage(ms, NULL, repo, subject, digest, now_ms, grace_ms);
        if (g < 0) {
            rv = g;
            break;
        }
        if (g == 1 && (rv = cb(repo, subject, digest, arg)) != 0)
            break;
    }
    int irv = ms_iter_free(it, ro);
    return rv != 0 ? rv : irv;
}

/* ---- children of deleted indexes ------------------------------------------------------- */

static int children_indexed(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb)
{
    char *v;
    size_t vlen;
    int rv = ms_get_raw(ms, wb, CF_DEFAULT, GC_CINDEXED, strlen(GC_CINDEXED), &v, &vlen);
    if (rv == 1)
        rocksdb_free(v);
    return rv;
}

int pt_metastore_batch_children_put(struct pt_metastore_batch *b, const char *repo,
                                    const char *index, const char *const *children, size_t n)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!ms_digest_ok(index))
        return PT_E_DIGEST_INVALID;
    for (size_t i = 0; i < n; i++)
        if (!ms_digest_ok(children[i]))
            return PT_E_DIGEST_INVALID;
    char key[GC_KEY_MAX];
    for (size_t i = 0; i < n; i++) {
        int rv = stage_flag(b, key, gc_key(key, GC_CHILD, repo, children[i], index));
        if (rv == 0)
            rv = stage_flag(b, key, gc_key(key, GC_MCHILD, repo, index, children[i]));
        if (rv != 0)
            return rv;
        ms_stage_delete(b, CF_DEFAULT, key, gc_key(key, GC_ORPHAN, repo, children[i], NULL));
    }
    return 0;
}

int pt_metastore_batch_orphan_clear(struct pt_metastore_batch *b, const char *repo,
                                    const char *digest)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    char key[GC_KEY_MAX];
    ms_stage_delete(b, CF_DEFAULT, key, gc_key(key, GC_ORPHAN, repo, digest, NULL));
    return 0;
}

int pt_metastore_batch_children_delete(struct pt_metastore_batch *b, const char *repo,
                                       const char *index, int64_t now_ms)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!ms_digest_ok(index))
        return PT_E_DIGEST_INVALID;
    char prefix[GC_KEY_MAX], key[GC_KEY_MAX];
    size_t plen = gc_prefix(prefix, GC_MCHILD, repo, index);
    /* listed first: staging deletes while iterating the batch would move the iterator */
    char(*children)[PT_METASTORE_DIGEST_MAX + 1] = NULL;
    size_t n = 0, cap = 0;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_default(b->ms, b->wb, &ro);
    int rv = 0;
    for (rocksdb_iter_seek(it, prefix, plen); at_prefix(it, prefix, plen); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (n == cap && (rv = pt_array_grow(&children, &cap, sizeof(*children), 16,
                                            PT_MANIFEST_MAX_REFS + 1)) != 0)
            break;
        if ((rv = ms_key_text(k + plen, klen - plen, children[n], PT_METASTORE_DIGEST_MAX)) != 0)
            break;
        n++;
    }
    int irv = ms_iter_free(it, ro);
    if (rv == 0)
        rv = irv;
    for (size_t i = 0; rv == 0 && i < n; i++) {
        ms_stage_delete(b, CF_DEFAULT, key, gc_key(key, GC_MCHILD, repo, index, children[i]));
        ms_stage_delete(b, CF_DEFAULT, key, gc_key(key, GC_CHILD, repo, children[i], index));
        char cp[GC_KEY_MAX];
        int named = any_with_prefix(b->ms, b->wb, cp, gc_prefix(cp, GC_CHILD, repo, children[i]));
        if (named < 0) {
            rv = named;
            break;
        }
        if (named)
            continue;
        struct pt_buf e = {0};
        enc_time(&e, now_ms);
        rv = ms_stage_put(b, CF_DEFAULT, key, gc_key(key, GC_ORPHAN, repo, children[i], NULL), &e);
    }
    free(children);
    return rv;
}

/* What to do with the orphan record of digest in repo as of now_ms: 2 delete the manifest,
 * 1 drop the record (no orphan any more), 0 keep it (too young, or no record). */
static int child_verdict(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                         const char *digest, int64_t now_ms, int64_t grace_ms)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX) || !ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    char key[GC_KEY_MAX], *v;
    size_t vlen;
    int rv =
        ms_get_raw(ms, wb, CF_DEFAULT, key, gc_key(key, GC_ORPHAN, repo, digest, NULL), &v, &vlen);
    if (rv <= 0)
        return rv;
    int64_t t = 0;
    rv = dec_time(v, vlen, &t);
    rocksdb_free(v);
    if (rv != 0)
        return rv;
    rv = ms_manifest_get(ms, wb, repo, digest, NULL, false);
    if (rv == PT_E_MANIFEST_UNKNOWN)
        return 1;
    if (rv != 0)
        return rv;
    char cp[GC_KEY_MAX];
    int named = any_with_prefix(ms, wb, cp, gc_prefix(cp, GC_CHILD, repo, digest));
    if (named != 0)
        return named < 0 ? named : 1;
    int tag = tagged(ms, wb, repo, digest);
    if (tag != 0)
        return tag < 0 ? tag : 1;
    return t <= now_ms && now_ms - t >= grace_ms ? 2 : 0;
}

int pt_metastore_batch_gc_child(struct pt_metastore_batch *b, const char *repo, const char *digest,
                                int64_t now_ms, int64_t grace_ms, int *deleted)
{
    *deleted = 0;
    if (grace_ms < 0)
        return PT_E_CONFIG;
    int rv = children_indexed(b->ms, b->wb);
    if (rv <= 0)
        return rv < 0 ? rv : PT_E_UNAVAILABLE;
    int verdict = child_verdict(b->ms, b->wb, repo, digest, now_ms, grace_ms);
    if (verdict <= 0)
        return verdict;
    if (verdict == 2) {
        struct pt_manifest_rec rec;
        if ((rv = pt_metastore_batch_manifest_get(b, repo, digest, &rec)) != 0 ||
            (rv = pt_metastore_batch_manifest_delete(b, repo, digest)) != 0 ||
            (rv = pt_metastore_batch_blob_refs_delete(b, repo, digest)) != 0 ||
            (rv = pt_metastore_batch_children_delete(b, repo, digest, now_ms)) != 0)
            return rv;
        if (rec.subject[0] != '\0' &&
            (rv = pt_metastore_batch_referrer_delete(b, repo, rec.subject, digest)) != 0)
            return rv;
        *deleted = 1;
    }
    return pt_metastore_batch_orphan_clear(b, repo, digest);
}

int pt_metastore_gc_mark_children(struct pt_metastore *ms, int64_t now_ms, int64_t grace_ms,
                                  int (*cb)(const char *repo, const char *digest, void *arg),
                                  void *arg)
{
    int rv = children_indexed(ms, NULL);
    if (rv <= 0)
        return rv < 0 ? rv : PT_E_UNAVAILABLE;
    size_t plen = strlen(GC_ORPHAN);
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_default(ms, NULL, &ro);
    rv = 0;
    for (rocksdb_iter_seek(it, GC_ORPHAN, plen); at_prefix(it, GC_ORPHAN, plen);
         rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *sep = memchr(k + plen, '\0', klen - plen);
        char repo[PT_METASTORE_REPO_MAX + 1], digest[PT_METASTORE_DIGEST_MAX + 1];
        if (sep == NULL ||
            (rv = ms_key_text(k + plen, (size_t)(sep - k) - plen, repo, PT_METASTORE_REPO_MAX)) !=
                0 ||
            (rv = ms_key_text(sep + 1, klen - (size_t)(sep + 1 - k), digest,
                              PT_METASTORE_DIGEST_MAX)) != 0) {
            rv = rv != 0 ? rv : PT_E_CORRUPT;
            break;
        }
        int verdict = child_verdict(ms, NULL, repo, digest, now_ms, grace_ms);
        if (verdict < 0) {
            rv = verdict;
            break;
        }
        if (verdict > 0 && (rv = cb(repo, digest, arg)) != 0)
            break;
    }
    int irv = ms_iter_free(it, ro);
    return rv != 0 ? rv : irv;
}

/* ---- files to delete (local) ----------------------------------------------------------- */

int pt_metastore_gc_pending_first(struct pt_metastore *ms,
                                  char digest_out[PT_METASTORE_DIGEST_MAX + 1], int64_t *time_ms)
{
    return pt_metastore_gc_pending_next(ms, NULL, digest_out, time_ms);
}

int pt_metastore_gc_pending_next(struct pt_metastore *ms, const char *after,
                                 char digest_out[PT_METASTORE_DIGEST_MAX + 1], int64_t *time_ms)
{
    size_t plen = strlen(GC_PENDING);
    size_t alen = after != NULL ? strnlen(after, PT_METASTORE_DIGEST_MAX + 1) : 0;
    if (alen > PT_METASTORE_DIGEST_MAX)
        return PT_E_DIGEST_INVALID;
    char start[GC_KEY_MAX];
    memcpy(start, GC_PENDING, plen);
    memcpy(start + plen, after != NULL ? after : "", alen);
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, CF_LOCAL_BLOBS, NULL, 0, NULL, &ro);
    int rv = PT_E_NOT_FOUND;
    rocksdb_iter_seek(it, start, plen + alen);
    if (alen > 0 && rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen == plen + alen && memcmp(k, start, klen) == 0)
            rocksdb_iter_next(it);
    }
    if (at_prefix(it, GC_PENDING, plen)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        rv = ms_key_text(k + plen, klen - plen, digest_out, PT_METASTORE_DIGEST_MAX);
        if (rv == 0)
            rv = dec_time(v, vlen, time_ms);
        if (rv == 0 && !ms_digest_ok(digest_out))
            rv = PT_E_CORRUPT;
    }
    int irv = ms_iter_free(it, ro);
    return irv != 0 ? irv : rv;
}

int pt_metastore_gc_pending_delete(struct pt_metastore *ms, const char *digest)
{
    if (pt_metastore_read_only(ms))
        return PT_E_DISK_FULL;
    char key[GC_KEY_MAX];
    size_t klen = strlen(GC_PENDING), dlen = strnlen(digest, PT_METASTORE_DIGEST_MAX + 1);
    if (dlen > PT_METASTORE_DIGEST_MAX)
        return PT_E_DIGEST_INVALID;
    memcpy(key, GC_PENDING, klen);
    memcpy(key + klen, digest, dlen);
    char *err = NULL;
    rocksdb_delete_cf(ms->db, ms->wo, ms->cf[CF_LOCAL_BLOBS], key, klen + dlen, &err);
    return err != NULL ? ms_rdb_err(err) : 0;
}

/* ---- building the index of an older store --------------------------------------------- */

/* Stages the refs (refs set) and the children records (kids set) of one stored manifest (key
 * <repo>\0<digest>, value a manifest record). */
static int index_manifest(struct pt_metastore_batch *b, const char *k, size_t klen, const char *v,
                          size_t vlen, bool refs, bool kids)
{
    const char *sep = memchr(k, '\0', klen);
    if (sep == NULL)
        return PT_E_CORRUPT;
    char repo[PT_METASTORE_REPO_MAX + 1], digest[PT_METASTORE_DIGEST_MAX + 1];
    int rv = ms_key_text(k, (size_t)(sep - k), repo, PT_METASTORE_REPO_MAX);
    if (rv == 0)
        rv = ms_key_text(sep + 1, klen - (size_t)(sep - k) - 1, digest, PT_METASTORE_DIGEST_MAX);
    struct pt_manifest_rec rec = {0};
    if (rv == 0)
        rv = ms_dec_manifest(v, vlen, &rec, true);
    if (rv != 0)
        return rv;
    struct pt_manifest_info info;
    rv = pt_manifest_parse(rec.body, rec.len, rec.media_type, &info);
    pt_manifest_rec_free(&rec);
    if (rv != 0) {
        /* stored manifests were parsed when pushed; one that does not parse references
         * nothing the registry can tell (logged, not fatal) */
        pt_log(PT_LOG_WARN, "gc index: a stored manifest does not parse", "{s:s,s:s}", "repo", repo,
               "digest", digest);
        return 0;
    }
    for (size_t i = 0; refs && rv == 0 && i < info.nblobs; i++) {
        char d[PT_METASTORE_DIGEST_MAX + 1];
        pt_digest_format(&info.blobs[i].digest, d);
        const char *one = d;
        rv = pt_metastore_batch_blob_refs_put(b, repo, digest, &one, 1);
    }
    for (size_t i = 0; kids && rv == 0 && i < info.nchildren; i++) {
        char d[PT_METASTORE_DIGEST_MAX + 1];
        pt_digest_format(&info.children[i].digest, d);
        const char *one = d;
        rv = pt_metastore_batch_children_put(b, repo, digest, &one, 1);
    }
    pt_manifest_info_free(&info);
    return rv;
}

/* Stages the link index record of one repo_blobs record (time 0: linked before any pass). */
static int index_link(struct pt_metastore_batch *b, const char *k, size_t klen)
{
    const char *sep = memchr(k, '\0', klen);
    if (sep == NULL)
        return PT_E_CORRUPT;
    char repo[PT_METASTORE_REPO_MAX + 1], digest[PT_METASTORE_DIGEST_MAX + 1];
    int rv = ms_key_text(k, (size_t)(sep - k), repo, PT_METASTORE_REPO_MAX);
    if (rv == 0)
        rv = ms_key_text(sep + 1, klen - (size_t)(sep - k) - 1, digest, PT_METASTORE_DIGEST_MAX);
    if (rv == 0 && !ms_digest_ok(digest))
        rv = PT_E_CORRUPT;
    return rv != 0 ? rv : ms_gc_link_put(b, repo, digest, 0, true);
}

static int index_family(struct pt_metastore_batch *b, enum cf cf, bool refs, bool kids)
{
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(b->ms, cf, NULL, 0, NULL, &ro);
    int rv = 0;
    for (rocksdb_iter_seek_to_first(it); rv == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        rv = cf == CF_MANIFESTS ? index_manifest(b, k, klen, v, vlen, refs, kids)
                                : index_link(b, k, klen);
    }
    int irv = ms_iter_free(it, ro);
    return rv != 0 ? rv : irv;
}

int ms_gc_index_build(struct pt_metastore *ms)
{
    if (ms->read_only)
        return 0;
    int refs = indexed(ms, NULL), kids = children_indexed(ms, NULL);
    if (refs < 0 || kids < 0)
        return refs < 0 ? refs : kids;
    if (refs && kids)
        return 0;
    struct pt_metastore_batch *b;
    int rv = pt_metastore_batch_new(ms, &b);
    if (rv != 0)
        return rv;
    rv = index_family(b, CF_MANIFESTS, !refs, !kids);
    if (rv == 0 && !refs)
        rv = index_family(b, CF_REPO_BLOBS, true, false);
    if (rv == 0 && !refs)
        rv = stage_flag(b, GC_INDEXED, strlen(GC_INDEXED));
    if (rv == 0 && !kids)
        rv = stage_flag(b, GC_CINDEXED, strlen(GC_CINDEXED));
    if (rv == 0) {
        /* not through batch_commit: the applied index does not move, and a failure here
         * leaves the store as it was (the build runs again at the next open) */
        char *err = NULL;
        rocksdb_write_writebatch_wi(ms->db, ms->wo_sync, b->wb, &err);
        if (err != NULL)
            rv = ms_rdb_err(err);
    }
    pt_metastore_batch_free(b);
    return rv;
}

int ms_gc_pushed_at(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                    const char *digest, int64_t *time_ms)
{
    char key[GC_KEY_MAX];
    char *v;
    size_t vlen;
    int rv =
        ms_get_raw(ms, wb, CF_DEFAULT, key, gc_key(key, GC_MTIME, repo, digest, NULL), &v, &vlen);
    if (rv <= 0)
        return rv;
    rv = dec_time(v, vlen, time_ms);
    rocksdb_free(v);
    return rv != 0 ? rv : 1;
}
