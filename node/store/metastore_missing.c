/*
 * metastore_missing.c - the index of the blobs this region lacks (local to the region).
 *
 * Role: blob replication (replication/blob_sync*.c) needs the blobs some region holds and this
 * one does not. Walking blob_locations for them costs as much as the registry holds blobs,
 * after every change; this index holds only the missing ones, so reading it costs as much as
 * is missing.
 *
 * Design: one record per missing blob in the local family local_blobs,
 *     "~missing/" <digest>  ->  u8 version, u64 size
 * and one marker, "~missing-region" -> the region name the index is kept for. The records are
 * local, not replicated: each region needs only its own set, so replicated per-region records
 * would store every blob once per region and make a region's arrival one write over every blob
 * of the registry. Local records cannot travel with a snapshot, so a restore rebuilds them in
 * its own WriteBatch from the blob_locations records it writes.
 *
 * Invariants: with the marker present, for every digest: a record exists iff blob_locations
 * holds the digest and the marker's region is not among its holders. Every write of
 * blob_locations (pt_metastore_batch_blob_stored, the collection of a blob, a snapshot
 * restore) stages the change of the index in the same RocksDB batch, so a crash leaves both or
 * neither. A store opened with no marker, or with another region's, is (re)built at once by
 * pt_metastore_missing_index, in one WriteBatch with its marker; a store written by a version
 * without the index has no marker, and the index is built at the first open that names the
 * region. Region records (add, remove) change no holder list, so they leave the index as is:
 * holders that are no longer regions of the cluster are skipped by the reader.
 *
 * Threads: pt_metastore_missing_index runs before any batch (at start, one thread); the index
 * is then written by the apply thread only and read from any thread.
 */
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "metastore_int.h"

#define MISSING_PREFIX     "~missing/"
#define MISSING_PREFIX_LEN (sizeof(MISSING_PREFIX) - 1)
#define MISSING_UPPER      "~missing0" /* just past every "~missing/..." key */
#define MISSING_MARKER     "~missing-region"
#define MISSING_KEY_MAX    (MISSING_PREFIX_LEN + PT_METASTORE_DIGEST_MAX)

static size_t missing_key(char *key, const char *digest, size_t dlen)
{
    memcpy(key, MISSING_PREFIX, MISSING_PREFIX_LEN);
    memcpy(key + MISSING_PREFIX_LEN, digest, dlen);
    return MISSING_PREFIX_LEN + dlen;
}

static bool holds(const struct location *loc, const char *region)
{
    for (size_t i = 0; i < loc->n; i++)
        if (strcmp(loc->regions[i], region) == 0)
            return true;
    return false;
}

int ms_missing_load(struct pt_metastore *ms)
{
    char *v;
    size_t vlen;
    ms->missing_region[0] = '\0';
    int rv =
        ms_get_raw(ms, NULL, CF_LOCAL_BLOBS, MISSING_MARKER, strlen(MISSING_MARKER), &v, &vlen);
    if (rv <= 0)
        return rv;
    rv = ms_key_text(v, vlen, ms->missing_region, PT_METASTORE_REGION_MAX);
    rocksdb_free(v);
    if (rv != 0)
        ms->missing_region[0] = '\0'; /* a damaged marker: the index is rebuilt */
    return 0;
}

/* Stages the removal of the index record key (klen bytes) only if it exists: a blind delete
 * for every blob stored here would leave a tombstone per blob in the index's range, which
 * every scan then walks until a compaction drops it, so that a scan would cost what the
 * region ever stored instead of what it lacks. */
static int drop_record(struct pt_metastore_batch *b, const char *key, size_t klen)
{
    char *v;
    size_t vlen;
    int rv = ms_get_raw(b->ms, b->wb, CF_LOCAL_BLOBS, key, klen, &v, &vlen);
    if (rv <= 0)
        return rv;
    rocksdb_free(v);
    ms_stage_delete(b, CF_LOCAL_BLOBS, key, klen);
    return 0;
}

int ms_missing_located(struct pt_metastore_batch *b, const char *digest, const struct location *loc)
{
    struct pt_metastore *ms = b->ms;
    if (ms->missing_region[0] == '\0')
        return 0;
    char key[MISSING_KEY_MAX];
    size_t klen = missing_key(key, digest, strlen(digest));
    if (holds(loc, ms->missing_region))
        return drop_record(b, key, klen);
    struct pt_buf e = {0};
    ms_enc_size(&e, loc->size);
    return ms_stage_put(b, CF_LOCAL_BLOBS, key, klen, &e);
}

void ms_missing_gone(struct pt_metastore_batch *b, const char *digest)
{
    if (b->ms->missing_region[0] == '\0')
        return;
    char key[MISSING_KEY_MAX];
    ms_stage_delete(b, CF_LOCAL_BLOBS, key, missing_key(key, digest, strlen(digest)));
}

void ms_missing_restore_clear(struct pt_metastore *ms, rocksdb_writebatch_t *wb)
{
    if (ms->missing_region[0] != '\0')
        rocksdb_writebatch_delete_range_cf(wb, ms->cf[CF_LOCAL_BLOBS], MISSING_PREFIX,
                                           MISSING_PREFIX_LEN, MISSING_UPPER,
                                           strlen(MISSING_UPPER));
}

/* Stages into wb the index record of the blob_locations record k/v, decoded through loc. */
static int put_from_location(struct pt_metastore *ms, rocksdb_writebatch_t *wb, const char *region,
                             const char *k, size_t klen, const char *v, size_t vlen,
                             struct location *loc)
{
    if (klen == 0 || klen > PT_METASTORE_DIGEST_MAX)
        return PT_E_CORRUPT;
    int rv = ms_dec_location(v, vlen, loc);
    if (rv != 0 || holds(loc, region))
        return rv;
    char key[MISSING_KEY_MAX];
    size_t n = missing_key(key, k, klen);
    struct pt_buf e = {0};
    ms_enc_size(&e, loc->size);
    if ((rv = ms_enc_finish(&e)) != 0)
        return rv;
    rocksdb_writebatch_put_cf(wb, ms->cf[CF_LOCAL_BLOBS], key, n, (const char *)e.p, e.len);
    free(e.p);
    return 0;
}

int ms_missing_restore_put(struct pt_metastore *ms, rocksdb_writebatch_t *wb, const char *k,
                           size_t klen, const char *v, size_t vlen)
{
    if (ms->missing_region[0] == '\0')
        return 0;
    struct location *loc = malloc(sizeof(*loc));
    if (loc == NULL)
        return PT_E_NOMEM;
    int rv = put_from_location(ms, wb, ms->missing_region, k, klen, v, vlen, loc);
    free(loc);
    return rv;
}

int pt_metastore_missing_index(struct pt_metastore *ms, const char *region)
{
    if (!ms_region_ok(region))
        return PT_E_CONFIG;
    if (strcmp(ms->missing_region, region) == 0)
        return 0;
    if (ms->read_only)
        return PT_E_DISK_FULL;
    struct location *loc = malloc(sizeof(*loc));
    if (loc == NULL)
        return PT_E_NOMEM;
    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    rocksdb_writebatch_delete_range_cf(wb, ms->cf[CF_LOCAL_BLOBS], MISSING_PREFIX,
                                       MISSING_PREFIX_LEN, MISSING_UPPER, strlen(MISSING_UPPER));
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, CF_BLOB_LOCATIONS, NULL, 0, NULL, &ro);
    int rv = 0;
    for (rocksdb_iter_seek_to_first(it); rv == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        rv = put_from_location(ms, wb, region, k, klen, v, vlen, loc);
    }
    int irv = ms_iter_free(it, ro);
    if (rv == 0)
        rv = irv;
    if (rv == 0) {
        rocksdb_writebatch_put_cf(wb, ms->cf[CF_LOCAL_BLOBS], MISSING_MARKER,
                                  strlen(MISSING_MARKER), region, strlen(region));
        char *err = NULL;
        rocksdb_write(ms->db, ms->wo_sync, wb, &err);
        if (err != NULL)
            rv = ms_rdb_err(err);
    }
    rocksdb_writebatch_destroy(wb);
    free(loc);
    if (rv == 0)
        strcpy(ms->missing_region, region);
    return rv;
}

/* The index is kept for region: 0, else PT_E_UNAVAILABLE. */
static int kept_for(struct pt_metastore *ms, const char *region)
{
    return ms->missing_region[0] != '\0' && strcmp(ms->missing_region, region) == 0
               ? 0
               : PT_E_UNAVAILABLE;
}

int pt_metastore_missing_page(struct pt_metastore *ms, const char *region, const char *after,
                              size_t max,
                              int (*cb)(const char *digest, uint64_t size,
                                        const char *const *holders, size_t n, void *arg),
                              void *arg, size_t *count)
{
    *count = 0;
    int rv = kept_for(ms, region);
    if (rv != 0)
        return rv;
    size_t alen = after != NULL ? strnlen(after, PT_METASTORE_DIGEST_MAX + 1) : 0;
    if (alen > PT_METASTORE_DIGEST_MAX)
        return PT_E_DIGEST_INVALID;
    struct location *loc = malloc(sizeof(*loc));
    if (loc == NULL)
        return PT_E_NOMEM;
    char start[MISSING_KEY_MAX];
    size_t slen = missing_key(start, after != NULL ? after : "", alen);
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it =
        ms_iter_new(ms, CF_LOCAL_BLOBS, MISSING_UPPER, strlen(MISSING_UPPER), NULL, &ro);
    rocksdb_iter_seek(it, start, slen);
    if (alen > 0 && rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen == slen && memcmp(k, start, slen) == 0)
            rocksdb_iter_next(it);
    }
    for (; rv == 0 && *count < max && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        char digest[PT_METASTORE_DIGEST_MAX + 1];
        if (klen <= MISSING_PREFIX_LEN ||
            (rv = ms_key_text(k + MISSING_PREFIX_LEN, klen - MISSING_PREFIX_LEN, digest,
                              PT_METASTORE_DIGEST_MAX)) != 0) {
            rv = PT_E_CORRUPT;
            break;
        }
        /* the holders as of now: a record read just before a commit may be gone since */
        int found = ms_location_get(ms, NULL, digest, loc);
        if (found < 0) {
            rv = found;
            break;
        }
        if (found == 0 || holds(loc, region))
            continue;
        const char *holders[PT_METASTORE_REGIONS_MAX];
        for (size_t i = 0; i < loc->n; i++)
            holders[i] = loc->regions[i];
        rv = cb(digest, loc->size, holders, loc->n, arg);
        ++*count;
    }
    int irv = ms_iter_free(it, ro);
    free(loc);
    return rv != 0 ? rv : irv;
}

int pt_metastore_missing_totals(struct pt_metastore *ms, const char *region, uint64_t *blobs,
                                uint64_t *bytes)
{
    *blobs = *bytes = 0;
    int rv = kept_for(ms, region);
    if (rv != 0)
        return rv;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it =
        ms_iter_new(ms, CF_LOCAL_BLOBS, MISSING_UPPER, strlen(MISSING_UPPER), NULL, &ro);
    for (rocksdb_iter_seek(it, MISSING_PREFIX, MISSING_PREFIX_LEN);
         rv == 0 && rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t vlen;
        const char *v = rocksdb_iter_value(it, &vlen);
        uint64_t size;
        if ((rv = ms_dec_size(v, vlen, &size)) == 0) {
            ++*blobs;
            *bytes += size;
        }
    }
    int irv = ms_iter_free(it, ro);
    return rv != 0 ? rv : irv;
}
