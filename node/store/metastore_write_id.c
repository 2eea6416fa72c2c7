/*
 * metastore_write_id.c - the write ids the FSM applied (see metastore.h, "write ids").
 *
 * Role: lets the FSM apply a replicated write at most once when its proposer sends it again
 * (to a new leader, after an answer was lost).
 * Design: two records per id in the meta family (replicated, carried by snapshots, not part
 * of the state digest, which hashes the families before it):
 *   "wid/k/" + id                      -> version, index (u64), status (u32: the PT_E_* as
 *                                         two's complement)
 *   "wid/i/" + index (8 bytes BE) + id -> version
 * The second orders the ids by the index they were applied at, so expiry walks the oldest
 * first and stops at the first one still inside the window.
 * Invariants: both records exist together; every change goes through the FSM's batch, so
 * every region holds the same ids.
 * Threads: reads on any thread; batch functions on the apply thread (metastore_batch.c).
 */
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "err.h"
#include "metastore_int.h"

#define WID_KEY_PREFIX   "wid/k/"
#define WID_INDEX_PREFIX "wid/i/"
#define WID_PREFIX_LEN   6
#define WID_KEY_MAX      (WID_PREFIX_LEN + 8 + PT_METASTORE_WRITE_ID_MAX)
#define WID_VALUE_LEN    (1 + 8 + 4)

static int id_key(const void *id, size_t id_len, char *key, size_t *klen)
{
    if (id_len == 0 || id_len > PT_METASTORE_WRITE_ID_MAX)
        return PT_E_CONFIG;
    memcpy(key, WID_KEY_PREFIX, WID_PREFIX_LEN);
    memcpy(key + WID_PREFIX_LEN, id, id_len);
    *klen = WID_PREFIX_LEN + id_len;
    return 0;
}

static size_t index_key(uint64_t index, const void *id, size_t id_len, char *key)
{
    memcpy(key, WID_INDEX_PREFIX, WID_PREFIX_LEN);
    pt_put_be64((unsigned char *)key + WID_PREFIX_LEN, index);
    memcpy(key + WID_PREFIX_LEN + 8, id, id_len);
    return WID_PREFIX_LEN + 8 + id_len;
}

static int get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const void *id, size_t id_len,
               uint64_t *index, int *status)
{
    char key[WID_KEY_MAX];
    size_t klen;
    int rv = id_key(id, id_len, key, &klen);
    if (rv != 0)
        return rv;
    char *v = NULL;
    size_t vlen = 0;
    rv = ms_get_raw(ms, wb, CF_META, key, klen, &v, &vlen);
    if (rv <= 0)
        return rv;
    const unsigned char *p = (const unsigned char *)v;
    if (vlen != WID_VALUE_LEN || p[0] != REC_VERSION) {
        rocksdb_free(v);
        return PT_E_CORRUPT;
    }
    if (index != NULL)
        *index = pt_get_be64(p + 1);
    if (status != NULL)
        *status = (int)(int32_t)pt_get_be32(p + 9);
    rocksdb_free(v);
    return 1;
}

int pt_metastore_write_id_get(struct pt_metastore *ms, const void *id, size_t id_len,
                              uint64_t *index, int *status)
{
    return get(ms, NULL, id, id_len, index, status);
}

int pt_metastore_batch_write_id_get(struct pt_metastore_batch *b, const void *id, size_t id_len,
                                    uint64_t *index, int *status)
{
    return get(b->ms, b->wb, id, id_len, index, status);
}

int pt_metastore_batch_write_id_put(struct pt_metastore_batch *b, const void *id, size_t id_len,
                                    uint64_t index, int status)
{
    char key[WID_KEY_MAX];
    size_t klen;
    int rv = id_key(id, id_len, key, &klen);
    if (rv != 0)
        return rv;
    if (index == 0)
        return PT_E_CONFIG;
    unsigned char v[WID_VALUE_LEN];
    v[0] = REC_VERSION;
    pt_put_be64(v + 1, index);
    pt_put_be32(v + 9, (uint32_t)(int32_t)status);
    rocksdb_writebatch_wi_put_cf(b->wb, b->ms->cf[CF_META], key, klen, (const char *)v, sizeof(v));
    char ikey[WID_KEY_MAX];
    size_t ilen = index_key(index, id, id_len, ikey);
    unsigned char version = REC_VERSION;
    rocksdb_writebatch_wi_put_cf(b->wb, b->ms->cf[CF_META], ikey, ilen, (const char *)&version, 1);
    return 0;
}

/* Walks the index records through a base+delta iterator (staged writes over the database)
 * and collects the keys to delete; they are staged once the iterator is gone. */
int pt_metastore_batch_write_ids_expire(struct pt_metastore_batch *b, uint64_t below, size_t max)
{
    struct pt_metastore *ms = b->ms;
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *base = rocksdb_create_iterator_cf(ms->db, ro, ms->cf[CF_META]);
    /* takes over base's underlying iterator and frees its wrapper */
    rocksdb_iterator_t *it =
        rocksdb_writebatch_wi_create_iterator_with_base_cf(b->wb, base, ms->cf[CF_META]);
    char(*keys)[WID_KEY_MAX] = NULL;
    size_t *klens = NULL;
    size_t n = 0, kcap = 0, lcap = 0;
    int rv = 0;
    for (rocksdb_iter_seek(it, WID_INDEX_PREFIX, WID_PREFIX_LEN); rocksdb_iter_valid(it) && n < max;
         rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < WID_PREFIX_LEN || memcmp(k, WID_INDEX_PREFIX, WID_PREFIX_LEN) != 0)
            break;
        if (klen <= WID_PREFIX_LEN + 8 || klen > WID_KEY_MAX) {
            rv = PT_E_CORRUPT;
            break;
        }
        if (pt_get_be64((const unsigned char *)k + WID_PREFIX_LEN) >= below)
            break;
        if (n == kcap && (rv = pt_array_grow(&keys, &kcap, sizeof(*keys), 16, 0)) != 0)
            break;
        if (n == lcap && (rv = pt_array_grow(&klens, &lcap, sizeof(*klens), 16, 0)) != 0)
            break;
        memcpy(keys[n], k, klen);
        klens[n++] = klen;
    }
    int irv = ms_iter_free(it, ro);
    if (rv == 0)
        rv = irv;
    for (size_t i = 0; i < n && rv == 0; i++) {
        size_t id_len = klens[i] - WID_PREFIX_LEN - 8;
        char key[WID_KEY_MAX];
        size_t klen = 0;
        (void)id_key(keys[i] + WID_PREFIX_LEN + 8, id_len, key, &klen); /* length checked */
        ms_stage_delete(b, CF_META, key, klen);
        ms_stage_delete(b, CF_META, keys[i], klens[i]);
    }
    free(keys);
    free(klens);
    return rv != 0 ? rv : (int)n;
}

int pt_metastore_write_id_count(struct pt_metastore *ms, uint64_t *count)
{
    static const char upper[] = "wid/j"; /* just past every "wid/i/..." key */
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, CF_META, upper, sizeof(upper) - 1, NULL, &ro);
    uint64_t c = 0;
    for (rocksdb_iter_seek(it, WID_INDEX_PREFIX, WID_PREFIX_LEN); rocksdb_iter_valid(it);
         rocksdb_iter_next(it))
        c++;
    int rv = ms_iter_free(it, ro);
    *count = rv == 0 ? c : 0;
    return rv;
}
