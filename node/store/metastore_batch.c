/*
 * metastore_batch.c - the FSM's write batches (struct pt_metastore_batch): staged writes to
 * the replicated column families and their atomic commit with the applied index.
 *
 * A batch wraps a RocksDB WriteBatchWithIndex, so reads through it (the ms_*_get lookups of
 * metastore_read.c with the batch's wb) see its staged writes over the database: a command
 * that checks and then writes, or several commands staged into one batch, read their own
 * writes. Every writer validates its key components before staging anything (metastore.h
 * lists the errors) and encodes its value with the codec (metastore_codec.c), so a batch
 * holds only well-formed records.
 *
 * Threads and ordering: only the FSM uses batches, one at a time, on the apply thread; their
 * read-check-write sequences (repo_ensure, blob_stored, tags_delete_to) rely on being the only
 * writer of replicated state. Commit writes with sync=0: the Raft log is the durable record.
 */
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "err.h"
#include "metastore_int.h"

/* ---- batch life cycle ---------------------------------------------------------------- */

int pt_metastore_batch_new(struct pt_metastore *ms, struct pt_metastore_batch **out)
{
    struct pt_metastore_batch *b = malloc(sizeof(*b));
    if (b == NULL)
        return PT_E_NOMEM;
    b->ms = ms;
    b->wb = rocksdb_writebatch_wi_create(0, 1);
    b->auth = false;
    *out = b;
    return 0;
}

void pt_metastore_batch_free(struct pt_metastore_batch *b)
{
    if (b == NULL)
        return;
    rocksdb_writebatch_wi_destroy(b->wb);
    free(b);
}

void pt_metastore_batch_clear(struct pt_metastore_batch *b)
{
    rocksdb_writebatch_wi_clear(b->wb);
    b->auth = false;
}

void pt_metastore_batch_mark(struct pt_metastore_batch *b)
{
    rocksdb_writebatch_wi_set_save_point(b->wb);
}

int pt_metastore_batch_undo(struct pt_metastore_batch *b)
{
    char *err = NULL;
    rocksdb_writebatch_wi_rollback_to_save_point(b->wb, &err);
    if (err == NULL)
        return 0;
    free(err);
    return PT_E_INTERNAL; /* no mark: a caller's bug */
}

void pt_metastore_halt(struct pt_metastore *ms, int err)
{
    int none = 0;
    atomic_compare_exchange_strong(&ms->halted, &none, err);
}

int pt_metastore_halted(struct pt_metastore *ms)
{
    return atomic_load(&ms->halted);
}

void pt_metastore_fail_next_commit(struct pt_metastore *ms, int err)
{
    atomic_store(&ms->fail_next, err);
}

/* Writes b's staged writes and the applied index with wo; halts ms on failure. */
static int batch_write(struct pt_metastore_batch *b, uint64_t index, rocksdb_writeoptions_t *wo)
{
    struct pt_metastore *ms = b->ms;
    int rv = pt_metastore_halted(ms);
    if (rv == 0 && ms->read_only) {
        rocksdb_writebatch_wi_clear(b->wb); /* refused, not failed: the store does not halt */
        return PT_E_DISK_FULL;
    }
    if (rv == 0)
        rv = atomic_exchange(&ms->fail_next, 0);
    if (rv != 0)
        goto err;
    if (index != 0) {
        struct pt_buf e = {0};
        ms_enc_size(&e, index);
        rv = ms_enc_finish(&e);
        if (rv != 0)
            goto err;
        rocksdb_writebatch_wi_put_cf(b->wb, ms->cf[CF_META], MS_APPLIED_KEY, MS_APPLIED_KEY_LEN,
                                     (const char *)e.p, e.len);
        free(e.p);
    }
    char *err = NULL;
    rocksdb_write_writebatch_wi(ms->db, wo, b->wb, &err);
    if (err != NULL) {
        rv = ms_rdb_err(err);
        goto err;
    }
    rocksdb_writebatch_wi_clear(b->wb);
    if (index != 0)
        atomic_store(&ms->applied, index);
    if (b->auth)
        atomic_fetch_add(&ms->auth_gen, 1); /* after the write: readers reload what it wrote */
    b->auth = false;
    return 0;

err:
    rocksdb_writebatch_wi_clear(b->wb);
    b->auth = false;
    pt_metastore_halt(ms, rv);
    return rv;
}

int pt_metastore_batch_commit(struct pt_metastore_batch *b, uint64_t index)
{
    return batch_write(b, index, b->ms->wo);
}

int pt_metastore_batch_commit_durable(struct pt_metastore_batch *b, uint64_t index)
{
    return batch_write(b, index, b->ms->wo_sync);
}

int ms_stage_put(struct pt_metastore_batch *b, enum cf cf, const char *key, size_t klen,
                 struct pt_buf *e)
{
    int rv = ms_enc_finish(e);
    if (rv != 0)
        return rv;
    rocksdb_writebatch_wi_put_cf(b->wb, b->ms->cf[cf], key, klen, (const char *)e->p, e->len);
    free(e->p);
    e->p = NULL;
    return 0;
}

void ms_stage_delete(struct pt_metastore_batch *b, enum cf cf, const char *key, size_t klen)
{
    rocksdb_writebatch_wi_delete_cf(b->wb, b->ms->cf[cf], key, klen);
}

/* ---- repositories and manifests ------------------------------------------------------ */

int pt_metastore_batch_repo_ensure(struct pt_metastore_batch *b, const char *repo, int64_t time_ms)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    int rv = ms_repo_exists(b->ms, b->wb, repo);
    if (rv != 0)
        return rv < 0 ? rv : 0;
    struct pt_buf e = {0};
    ms_enc_size(&e, (uint64_t)time_ms);
    return ms_stage_put(b, CF_REPOS, repo, strlen(repo), &e);
}

int pt_metastore_batch_manifest_get(struct pt_metastore_batch *b, const char *repo,
                                    const char *digest, struct pt_manifest_rec *out)
{
    return ms_manifest_get(b->ms, b->wb, repo, digest, out, false);
}

int pt_metastore_batch_manifest_put(struct pt_metastore_batch *b, const char *repo,
                                    const char *digest, const char *media_type,
                                    const char *artifact_type, const char *subject,
                                    const void *body, size_t len)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!ms_digest_ok(digest) || (subject[0] != '\0' && !ms_digest_ok(subject)))
        return PT_E_DIGEST_INVALID;
    if (!ms_name_ok(media_type, PT_METASTORE_MEDIA_TYPE_MAX) ||
        strnlen(artifact_type, PT_METASTORE_MEDIA_TYPE_MAX + 1) > PT_METASTORE_MEDIA_TYPE_MAX ||
        len == 0)
        return PT_E_MANIFEST_INVALID;
    if (len > PT_METASTORE_MANIFEST_MAX)
        return PT_E_MANIFEST_TOO_LARGE;
    char key[KEY_MAX];
    size_t klen = ms_key_join(key, repo, digest, NULL);
    struct pt_buf e = {0};
    ms_enc_manifest(&e, media_type, artifact_type, subject, body, len);
    return ms_stage_put(b, CF_MANIFESTS, key, klen, &e);
}

int pt_metastore_batch_manifest_delete(struct pt_metastore_batch *b, const char *repo,
                                       const char *digest)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    char key[KEY_MAX];
    ms_stage_delete(b, CF_MANIFESTS, key, ms_key_join(key, repo, digest, NULL));
    return 0;
}

/* ---- tags ---------------------------------------------------------------------------- */

int pt_metastore_batch_tag_get(struct pt_metastore_batch *b, const char *repo, const char *tag,
                               char digest_out[PT_METASTORE_DIGEST_MAX + 1])
{
    return ms_tag_get(b->ms, b->wb, repo, tag, digest_out);
}

static int tag_key(const char *repo, const char *tag, char *key, size_t *klen)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!ms_name_ok(tag, PT_METASTORE_TAG_MAX))
        return PT_E_TAG_INVALID;
    *klen = ms_key_join(key, repo, tag, NULL);
    return 0;
}

int pt_metastore_batch_tag_put(struct pt_metastore_batch *b, const char *repo, const char *tag,
                               const char *digest, int64_t time_ms)
{
    char key[KEY_MAX];
    size_t klen;
    int rv = tag_key(repo, tag, key, &klen);
    if (rv != 0)
        return rv;
    if (!ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    struct pt_buf e = {0};
    ms_enc_tag(&e, time_ms, digest);
    return ms_stage_put(b, CF_TAGS, key, klen, &e);
}

int pt_metastore_batch_tag_delete(struct pt_metastore_batch *b, const char *repo, const char *tag)
{
    char key[KEY_MAX];
    size_t klen;
    int rv = tag_key(repo, tag, key, &klen);
    if (rv != 0)
        return rv;
    ms_stage_delete(b, CF_TAGS, key, klen);
    return 0;
}

/*
 * Walks the tags of repo through a base+delta iterator (staged writes merged over the
 * database), collecting the keys that point at digest, and stages their deletion once the
 * iterator is gone (the batch must not change while it is iterated). The delta side is not
 * limited by the base's bounds, so the prefix is checked on every key.
 */
int pt_metastore_batch_tags_delete_to(struct pt_metastore_batch *b, const char *repo,
                                      const char *digest)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    struct pt_metastore *ms = b->ms;
    char prefix[PT_METASTORE_REPO_MAX + 1];
    size_t plen = strlen(repo) + 1;
    memcpy(prefix, repo, plen);

    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *base = rocksdb_create_iterator_cf(ms->db, ro, ms->cf[CF_TAGS]);
    /* takes over base's underlying iterator and frees its wrapper */
    rocksdb_iterator_t *it =
        rocksdb_writebatch_wi_create_iterator_with_base_cf(b->wb, base, ms->cf[CF_TAGS]);
    char **keys = NULL;
    size_t *klens = NULL;
    size_t n = 0, kcap = 0, lcap = 0;
    int rv = 0;
    for (rocksdb_iter_seek(it, prefix, plen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, prefix, plen) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vlen);
        char target[PT_METASTORE_DIGEST_MAX + 1];
        rv = ms_dec_tag(v, vlen, target, NULL);
        if (rv != 0)
            break;
        if (strcmp(target, digest) != 0)
            continue;
        if (n == kcap && (rv = pt_array_grow(&keys, &kcap, sizeof(*keys), 8, 0)) != 0)
            break;
        if (n == lcap && (rv = pt_array_grow(&klens, &lcap, sizeof(*klens), 8, 0)) != 0)
            break;
        keys[n] = ms_copy_z(k, klen);
        if (keys[n] == NULL) {
            rv = PT_E_NOMEM;
            break;
        }
        klens[n++] = klen;
    }
    int irv = ms_iter_free(it, ro);
    if (rv == 0)
        rv = irv;
    for (size_t i = 0; i < n; i++) {
        if (rv == 0)
            ms_stage_delete(b, CF_TAGS, keys[i], klens[i]);
        free(keys[i]);
    }
    free(keys);
    free(klens);
    return rv;
}

/* ---- blob links ---------------------------------------------------------------------- */

int pt_metastore_batch_blob_linked(struct pt_metastore_batch *b, const char *repo,
                                   const char *digest, uint64_t *size)
{
    return ms_blob_linked(b->ms, b->wb, repo, digest, size);
}

static int blob_key(const char *repo, const char *digest, char *key, size_t *klen)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    *klen = ms_key_join(key, repo, digest, NULL);
    return 0;
}

int pt_metastore_batch_blob_link(struct pt_metastore_batch *b, const char *repo, const char *digest,
                                 uint64_t size)
{
    char key[KEY_MAX];
    size_t klen;
    int rv = blob_key(repo, digest, key, &klen);
    if (rv != 0)
        return rv;
    struct pt_buf e = {0};
    ms_enc_size(&e, size);
    rv = ms_stage_put(b, CF_REPO_BLOBS, key, klen, &e);
    if (rv == 0)
        rv = ms_gc_link_put(b, repo, digest, 0, true);
    return rv != 0 ? rv : ms_usage_charge(b, repo, digest, size);
}

int pt_metastore_batch_blob_unlink(struct pt_metastore_batch *b, const char *repo,
                                   const char *digest)
{
    char key[KEY_MAX];
    size_t klen;
    int rv = blob_key(repo, digest, key, &klen);
    if (rv != 0)
        return rv;
    ms_stage_delete(b, CF_REPO_BLOBS, key, klen);
    ms_gc_link_delete(b, repo, digest);
    return ms_usage_release(b, repo, digest);
}

/* ---- referrers ----------------------------------------------------------------------- */

static int referrer_key(const char *repo, const char *subject, const char *digest, char *key,
                        size_t *klen)
{
    if (!ms_name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!ms_digest_ok(subject) || !ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    *klen = ms_key_join(key, repo, subject, digest);
    return 0;
}

int pt_metastore_batch_referrer_put(struct pt_metastore_batch *b, const char *repo,
                                    const char *subject, const struct pt_referrer *r,
                                    const void *annotations, size_t ann_len)
{
    char key[KEY_MAX];
    size_t klen;
    int rv = referrer_key(repo, subject, r->digest, key, &klen);
    if (rv != 0)
        return rv;
    if (!ms_name_ok(r->media_type, PT_METASTORE_MEDIA_TYPE_MAX) ||
        strnlen(r->artifact_type, sizeof(r->artifact_type)) > PT_METASTORE_MEDIA_TYPE_MAX)
        return PT_E_MANIFEST_INVALID;
    if (ann_len > PT_METASTORE_MANIFEST_MAX)
        return PT_E_MANIFEST_TOO_LARGE;
    struct pt_buf e = {0};
    ms_enc_referrer(&e, r, annotations, ann_len);
    return ms_stage_put(b, CF_REFERRERS, key, klen, &e);
}

int pt_metastore_batch_referrer_delete(struct pt_metastore_batch *b, const char *repo,
                                       const char *subject, const char *digest)
{
    char key[KEY_MAX];
    size_t klen;
    int rv = referrer_key(repo, subject, digest, key, &klen);
    if (rv != 0)
        return rv;
    ms_stage_delete(b, CF_REFERRERS, key, klen);
    return 0;
}

/* ---- blob locations ------------------------------------------------------------------ */

int pt_metastore_batch_blob_stored(struct pt_metastore_batch *b, const char *digest, uint64_t size,
                                   const char *region)
{
    if (!ms_digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    if (!ms_region_ok(region))
        return PT_E_INTERNAL;
    struct location *loc = malloc(sizeof(*loc));
    if (loc == NULL)
        return PT_E_NOMEM;
    int rv = ms_location_get(b->ms, b->wb, digest, loc);
    if (rv < 0)
        goto out;
    if (rv == 0) {
        loc->size = size;
        loc->n = 0;
    } else if (loc->size != size) {
        rv = PT_E_SIZE_INVALID;
        goto out;
    }
    size_t at = 0;
    int cmp = 1;
    while (at < loc->n && (cmp = strcmp(loc->regions[at], region)) < 0)
        at++;
    if (at < loc->n && cmp == 0) {
        rv = 0; /* already recorded */
        goto out;
    }
    if (loc->n == PT_METASTORE_REGIONS_MAX) {
        rv = PT_E_INTERNAL;
        goto out;
    }
    memmove(loc->regions[at + 1], loc->regions[at], (loc->n - at) * sizeof(loc->regions[0]));
    strcpy(loc->regions[at], region);
    loc->n++;

    struct pt_buf e = {0};
    ms_enc_location(&e, loc);
    rv = ms_stage_put(b, CF_BLOB_LOCATIONS, digest, strlen(digest), &e);
    if (rv == 0)
        rv = ms_missing_located(b, digest, loc);
out:
    free(loc);
    return rv;
}

/* ---- regions of the cluster ---------------------------------------------------------- */

int pt_metastore_batch_region_put(struct pt_metastore_batch *b, const struct pt_region_rec *r)
{
    if (r->id == 0 || strnlen(r->name, sizeof(r->name)) == sizeof(r->name) ||
        strnlen(r->address, sizeof(r->address)) == sizeof(r->address) ||
        strnlen(r->url, sizeof(r->url)) == sizeof(r->url))
        return PT_E_CONFIG;
    char key[32];
    size_t klen = ms_region_key(r->id, key);
    struct pt_buf e = {0};
    ms_enc_region(&e, r);
    return ms_stage_put(b, CF_DEFAULT, key, klen, &e);
}

int pt_metastore_batch_region_delete(struct pt_metastore_batch *b, uint64_t id)
{
    char key[32];
    size_t klen = ms_region_key(id, key);
    ms_stage_delete(b, CF_DEFAULT, key, klen);
    return 0;
}

int pt_metastore_rebase(struct pt_metastore *ms, uint64_t index)
{
    if (index == 0)
        return PT_E_INTERNAL;
    struct pt_metastore_batch *b;
    int rv = pt_metastore_batch_new(ms, &b);
    if (rv != 0)
        return rv;
    /* the ids are bounded by the FSM's window: a few passes at most */
    while ((rv = pt_metastore_batch_write_ids_expire(b, UINT64_MAX, 65536)) == 65536)
        ;
    if (rv >= 0)
        rv = pt_metastore_batch_commit_durable(b, index);
    pt_metastore_batch_free(b);
    return rv;
}
