/*
 * metastore_local.c - records local to this region, never replicated: upload sessions
 * (uploads family, keyed by upload id) and transfers of blobs from other regions in progress
 * (local_blobs family, keyed by digest).
 *
 * Both are opaque values of at most PT_METASTORE_UPLOAD_VAL_MAX bytes whose format belongs to
 * their owners (the upload API with blobstore_upload.c's session encoding,
 * replication/blob_sync.c). They are written straight to the database with sync=0, outside any
 * batch: the HTTP workers and the blob sync thread write them concurrently with the FSM, and they
 * reach disk with the next pt_metastore_sync or WAL flush. Snapshots and the state digest never
 * include them.
 *
 * A key that is malformed (an upload id longer than PT_UPLOAD_ID_MAX or empty, a string that
 * is not a sha256 or sha512 digest) cannot name a record: writes refuse it, reads report a miss,
 * deletes succeed.
 */
#include <stdlib.h>
#include <string.h>

#include "diskspace.h"
#include "err.h"
#include "metastore_int.h"

/* Local records: opaque values of at most PT_METASTORE_UPLOAD_VAL_MAX bytes under key. */
static int local_put(struct pt_metastore *ms, enum cf cf, const char *key, const void *val,
                     size_t len)
{
    if (len > PT_METASTORE_UPLOAD_VAL_MAX)
        return PT_E_TOO_LARGE;
    /* below the free-space reserve (or read-only) RocksDB is not written: it must never meet
     * ENOSPC */
    if (ms->read_only || pt_disk_low(len))
        return PT_E_DISK_FULL;
    char *err = NULL;
    rocksdb_put_cf(ms->db, ms->wo, ms->cf[cf], key, strlen(key), val, len, &err);
    return err != NULL ? ms_rdb_err(err) : 0;
}

/* 0 with *val owned (NUL-terminated copy), `missing` when there is none, or an error. */
static int local_get(struct pt_metastore *ms, enum cf cf, const char *key, void **val, size_t *len,
                     int missing)
{
    char *v;
    size_t vlen;
    int rv = ms_get_raw(ms, NULL, cf, key, strlen(key), &v, &vlen);
    if (rv <= 0)
        return rv == 0 ? missing : rv;
    char *copy = ms_copy_z(v, vlen);
    rocksdb_free(v);
    if (copy == NULL)
        return PT_E_NOMEM;
    *val = copy;
    *len = vlen;
    return 0;
}

static int local_delete(struct pt_metastore *ms, enum cf cf, const char *key)
{
    if (ms->read_only)
        return PT_E_DISK_FULL;
    char *err = NULL;
    rocksdb_delete_cf(ms->db, ms->wo, ms->cf[cf], key, strlen(key), &err);
    return err != NULL ? ms_rdb_err(err) : 0;
}

/* ---- upload sessions ----------------------------------------------------------------- */

int pt_metastore_upload_put(struct pt_metastore *ms, const char *id, const void *val, size_t len)
{
    if (!ms_name_ok(id, PT_UPLOAD_ID_MAX))
        return PT_E_BLOB_UPLOAD_INVALID;
    return local_put(ms, CF_UPLOADS, id, val, len);
}

int pt_metastore_upload_get(struct pt_metastore *ms, const char *id, void **val, size_t *len)
{
    *val = NULL;
    *len = 0;
    if (!ms_name_ok(id, PT_UPLOAD_ID_MAX))
        return PT_E_BLOB_UPLOAD_UNKNOWN;
    return local_get(ms, CF_UPLOADS, id, val, len, PT_E_BLOB_UPLOAD_UNKNOWN);
}

int pt_metastore_upload_delete(struct pt_metastore *ms, const char *id)
{
    return ms_name_ok(id, PT_UPLOAD_ID_MAX) ? local_delete(ms, CF_UPLOADS, id) : 0;
}

int pt_metastore_upload_foreach(struct pt_metastore *ms,
                                int (*cb)(const char *id, const void *val, size_t len, void *arg),
                                void *arg)
{
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, CF_UPLOADS, NULL, 0, NULL, &ro);
    int rv = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        char id[PT_UPLOAD_ID_MAX + 1];
        if ((rv = ms_key_text(k, klen, id, PT_UPLOAD_ID_MAX)) != 0)
            break;
        rv = cb(id, v, vlen, arg);
        if (rv != 0)
            break;
    }
    int irv = ms_iter_free(it, ro);
    return rv != 0 ? rv : irv;
}

/* ---- transfers from other regions ---------------------------------------------------- */

int pt_metastore_transfer_put(struct pt_metastore *ms, const char *digest, const void *val,
                              size_t len)
{
    return ms_digest_ok(digest) ? local_put(ms, CF_LOCAL_BLOBS, digest, val, len)
                                : PT_E_DIGEST_INVALID;
}

int pt_metastore_transfer_get(struct pt_metastore *ms, const char *digest, void **val, size_t *len)
{
    *val = NULL;
    *len = 0;
    if (!ms_digest_ok(digest))
        return PT_E_NOT_FOUND;
    return local_get(ms, CF_LOCAL_BLOBS, digest, val, len, PT_E_NOT_FOUND);
}

int pt_metastore_transfer_delete(struct pt_metastore *ms, const char *digest)
{
    return ms_digest_ok(digest) ? local_delete(ms, CF_LOCAL_BLOBS, digest) : 0;
}

int pt_metastore_transfer_first(struct pt_metastore *ms, const char *prefix,
                                char digest_out[PT_METASTORE_DIGEST_MAX + 1])
{
    size_t plen = strlen(prefix);
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, CF_LOCAL_BLOBS, NULL, 0, NULL, &ro);
    int rv = PT_E_NOT_FOUND;
    rocksdb_iter_seek(it, prefix, plen);
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen >= plen && klen <= PT_METASTORE_DIGEST_MAX && memcmp(k, prefix, plen) == 0 &&
            memchr(k, '\0', klen) == NULL) {
            memcpy(digest_out, k, klen);
            digest_out[klen] = '\0';
            rv = 0;
        }
    }
    int irv = ms_iter_free(it, ro);
    return irv != 0 ? irv : rv;
}
