/*
 * metastore_snapshot.c - snapshots of the replicated state (Raft snapshots, DESIGN.md section
 * 3): the stream that serializes the replicated column families, its check, its restore, and
 * the state digest that tests compare across stores.
 *
 * Snapshot stream (pt_metastore_snapshot / pt_metastore_restore), version 1:
 *
 *   "PTLNSNAP"  u32:version  u64:applied_index  u32:n_families
 *   per family, in enum order default .. meta:  s8:name  u64:n_records
 *       per record, keys strictly ascending byte-wise:  u32:klen key  u32:vlen value
 *   sha256 (32 bytes) of everything before it
 *
 *   Integers little-endian, s8 = u8 length + bytes. Keys are 1 to KEY_MAX bytes, values at
 *   most SNAP_VALUE_MAX. The meta family carries every meta record except "applied_index",
 *   which travels in the header (and is written back only when non-zero, as batch commits
 *   do). Records are copied verbatim: their encodings are the codec's (metastore_codec.c).
 *   Names and counts make the stream readable without this code; a reader refuses versions,
 *   families or orders it does not know.
 *
 * Both directions work on one consistent view: the stream is read from one RocksDB snapshot,
 * and a restore stages range deletions of every replicated family and the stream's records
 * into one WriteBatch written atomically, so readers see the old or the new state. Local
 * families (uploads, local_blobs) are never part of either.
 *
 * State digest: SHA-256 over the replicated families except meta (the applied index differs
 * between stores that hold the same state), framed as drawn above pt_metastore_state_digest.
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "err.h"
#include "metastore_int.h"

/* ---- snapshot stream ----------------------------------------------------------------- */

static const char snap_magic[8] = {'P', 'T', 'L', 'N', 'S', 'N', 'A', 'P'};
#define SNAP_HEADER_LEN (sizeof(snap_magic) + 4 + 8 + 4)
#define SNAP_SUM_LEN    32
#define SNAP_N_FAMILIES (CF_META + 1) /* default .. meta */
/* Largest value of any replicated record: a manifest (or referrer) with a maximal body and
 * its three s8 strings and framing, or a full blob_locations list; both fit. */
#define SNAP_VALUE_MAX (PT_METASTORE_MANIFEST_MAX + 1024)

/* The snapshot is written into a struct pt_buf (base/buf.h) through raft's allocator. */
static void snapw_raw(struct pt_buf *w, const void *src, size_t n)
{
    pt_buf_append(w, src, n);
}

static void snapw_u32(struct pt_buf *w, uint32_t v)
{
    unsigned char b[4];
    pt_put_le32(b, v);
    snapw_raw(w, b, 4);
}

static void snapw_u64(struct pt_buf *w, uint64_t v)
{
    unsigned char b[8];
    pt_put_le64(b, v);
    snapw_raw(w, b, 8);
}

static int sha256(const void *p, size_t n, unsigned char md[SNAP_SUM_LEN])
{
    unsigned int mdlen = 0;
    if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != SNAP_SUM_LEN)
        return PT_E_INTERNAL;
    return 0;
}

static bool is_applied_key(enum cf cf, const char *k, size_t klen)
{
    return cf == CF_META && klen == MS_APPLIED_KEY_LEN && memcmp(k, MS_APPLIED_KEY, klen) == 0;
}

/* Writes one family (name, count, records) of the snapshot snap into w. */
static int snap_family(struct pt_metastore *ms, enum cf cf, const rocksdb_snapshot_t *snap,
                       struct pt_buf *w)
{
    size_t nlen = strlen(ms_cf_names[cf]);
    unsigned char n8 = (unsigned char)nlen;
    snapw_raw(w, &n8, 1);
    snapw_raw(w, ms_cf_names[cf], nlen);
    size_t count_at = w->len;
    snapw_u64(w, 0); /* patched below */

    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, cf, NULL, 0, snap, &ro);
    uint64_t count = 0;
    int rv = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it) && !w->nomem;
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        if (is_applied_key(cf, k, klen))
            continue;
        if (klen == 0 || klen > KEY_MAX || vlen > SNAP_VALUE_MAX) {
            rv = PT_E_CORRUPT; /* restore would refuse it: do not produce it */
            break;
        }
        snapw_u32(w, (uint32_t)klen);
        snapw_raw(w, k, klen);
        snapw_u32(w, (uint32_t)vlen);
        snapw_raw(w, v, vlen);
        count++;
    }
    int irv = ms_iter_free(it, ro);
    if (rv == 0)
        rv = irv;
    if (rv == 0 && !w->nomem)
        pt_put_le64(w->p + count_at, count);
    return rv;
}

int pt_metastore_snapshot_with(struct pt_metastore *ms, void *(*realloc_fn)(void *, size_t),
                               void (*free_fn)(void *), void **buf, size_t *len, uint64_t *index)
{
    *buf = NULL;
    *len = 0;
    *index = 0;
    struct pt_buf w = {.realloc_fn = realloc_fn};
    const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(ms->db);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, snap);
    uint64_t applied = 0;
    int rv = ms_applied_at(ms, ro, &applied);
    rocksdb_readoptions_destroy(ro);

    snapw_raw(&w, snap_magic, sizeof(snap_magic));
    snapw_u32(&w, PT_METASTORE_SNAPSHOT_VERSION);
    snapw_u64(&w, applied);
    snapw_u32(&w, SNAP_N_FAMILIES);
    for (int cf = CF_DEFAULT; cf < SNAP_N_FAMILIES && rv == 0; cf++)
        rv = snap_family(ms, cf, snap, &w);
    rocksdb_release_snapshot(ms->db, snap);

    unsigned char md[SNAP_SUM_LEN];
    if (rv == 0 && !w.nomem)
        rv = sha256(w.p, w.len, md);
    if (rv == 0)
        snapw_raw(&w, md, sizeof(md));
    if (rv == 0 && w.nomem)
        rv = PT_E_NOMEM;
    if (rv != 0) {
        free_fn(w.p);
        return rv;
    }
    /* give back the growth slack; keeping the larger buffer is fine if that fails */
    unsigned char *p = realloc_fn(w.p, w.len);
    *buf = p != NULL ? p : w.p;
    *len = w.len;
    *index = applied;
    return 0;
}

int pt_metastore_snapshot(struct pt_metastore *ms, void **buf, size_t *len, uint64_t *index)
{
    return pt_metastore_snapshot_with(ms, realloc, free, buf, len, index);
}

/* Checks magic, version and checksum; *index is the header's applied index. */
static int snap_check(const void *buf, size_t len, uint64_t *index)
{
    if (buf == NULL || len < SNAP_HEADER_LEN + SNAP_SUM_LEN)
        return PT_E_CORRUPT;
    const unsigned char *p = buf;
    if (memcmp(p, snap_magic, sizeof(snap_magic)) != 0)
        return PT_E_CORRUPT;
    unsigned char md[SNAP_SUM_LEN];
    int rv = sha256(p, len - SNAP_SUM_LEN, md);
    if (rv != 0)
        return rv;
    if (memcmp(md, p + len - SNAP_SUM_LEN, SNAP_SUM_LEN) != 0)
        return PT_E_CORRUPT;
    struct dec d;
    ms_dec_init(&d, (const char *)p + sizeof(snap_magic), SNAP_HEADER_LEN - sizeof(snap_magic));
    uint32_t version = ms_dec_u32(&d);
    *index = ms_dec_u64(&d);
    uint32_t n_families = ms_dec_u32(&d);
    if (version != PT_METASTORE_SNAPSHOT_VERSION || n_families != SNAP_N_FAMILIES)
        return PT_E_CORRUPT;
    return ms_dec_finish(&d);
}

int pt_metastore_snapshot_index(const void *buf, size_t len, uint64_t *index)
{
    uint64_t i;
    int rv = snap_check(buf, len, &i);
    if (rv == 0)
        *index = i;
    return rv;
}

/* Stages the deletion of every record of cf: the range from the empty key (the smallest) to
 * the successor of the last key (the last key followed by a 0 byte). */
int ms_stage_clear(struct pt_metastore *ms, rocksdb_writebatch_t *wb, enum cf cf)
{
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(ms, cf, NULL, 0, NULL, &ro);
    rocksdb_iter_seek_to_last(it);
    int rv = 0;
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        char *end = malloc(klen + 1);
        if (end == NULL) {
            rv = PT_E_NOMEM;
        } else {
            memcpy(end, k, klen);
            end[klen] = '\0';
            rocksdb_writebatch_delete_range_cf(wb, ms->cf[cf], "", 0, end, klen + 1);
            free(end);
        }
    }
    int irv = ms_iter_free(it, ro);
    return rv != 0 ? rv : irv;
}

/* Parses one family of the stream and stages its records. */
static int restore_family(struct pt_metastore *ms, rocksdb_writebatch_t *wb, enum cf cf,
                          struct dec *d)
{
    char name[256];
    ms_dec_str8(d, name, sizeof(name));
    uint64_t count = ms_dec_u64(d);
    if (d->bad || strcmp(name, ms_cf_names[cf]) != 0)
        return PT_E_CORRUPT;
    const unsigned char *prev = NULL;
    size_t prev_len = 0;
    /* every record takes at least 8 bytes, so a bad count runs out of input and stops */
    for (uint64_t i = 0; i < count; i++) {
        uint32_t klen = ms_dec_u32(d);
        const unsigned char *k = ms_dec_raw(d, klen);
        uint32_t vlen = ms_dec_u32(d);
        const unsigned char *v = ms_dec_raw(d, vlen);
        if (d->bad || klen == 0 || klen > KEY_MAX || vlen > SNAP_VALUE_MAX ||
            is_applied_key(cf, (const char *)k, klen))
            return PT_E_CORRUPT;
        if (prev != NULL) {
            size_t n = prev_len < klen ? prev_len : klen;
            int c = memcmp(prev, k, n);
            if (c > 0 || (c == 0 && prev_len >= klen))
                return PT_E_CORRUPT; /* not strictly ascending */
        }
        prev = k;
        prev_len = klen;
        rocksdb_writebatch_put_cf(wb, ms->cf[cf], (const char *)k, klen, (const char *)v, vlen);
        /* the local index of missing blobs follows in the same batch */
        int rv = cf == CF_BLOB_LOCATIONS
                     ? ms_missing_restore_put(ms, wb, (const char *)k, klen, (const char *)v, vlen)
                     : 0;
        if (rv != 0)
            return rv;
    }
    return 0;
}

int pt_metastore_restore(struct pt_metastore *ms, const void *buf, size_t len)
{
    uint64_t index;
    int rv = pt_metastore_halted(ms);
    if (rv == 0 && ms->read_only)
        return PT_E_DISK_FULL;
    if (rv == 0)
        rv = snap_check(buf, len, &index);
    if (rv != 0)
        return rv;
    struct dec d;
    ms_dec_init(&d, (const char *)buf + SNAP_HEADER_LEN, len - SNAP_HEADER_LEN - SNAP_SUM_LEN);

    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (int cf = CF_DEFAULT; cf < SNAP_N_FAMILIES && rv == 0; cf++)
        rv = ms_stage_clear(ms, wb, cf);
    if (rv == 0)
        ms_missing_restore_clear(ms, wb);
    for (int cf = CF_DEFAULT; cf < SNAP_N_FAMILIES && rv == 0; cf++)
        rv = restore_family(ms, wb, cf, &d);
    if (rv == 0)
        rv = ms_dec_finish(&d);
    if (rv == 0 && index != 0) {
        struct pt_buf e = {0};
        ms_enc_size(&e, index);
        rv = ms_enc_finish(&e);
        if (rv == 0)
            rocksdb_writebatch_put_cf(wb, ms->cf[CF_META], MS_APPLIED_KEY, MS_APPLIED_KEY_LEN,
                                      (const char *)e.p, e.len);
        free(e.p);
    }
    if (rv == 0) {
        char *err = NULL;
        rocksdb_write(ms->db, ms->wo, wb, &err);
        if (err != NULL) {
            rv = ms_rdb_err(err);
            pt_metastore_halt(ms, rv);
        }
    }
    rocksdb_writebatch_destroy(wb);
    if (rv != 0)
        return rv;
    atomic_store(&ms->applied, index);
    atomic_fetch_add(&ms->auth_gen, 1); /* the access control records may all have changed */
    return 0;
}

/* ---- state digest -------------------------------------------------------------------- */

static void hash_u32(EVP_MD_CTX *ctx, uint32_t v)
{
    unsigned char b[4];
    pt_put_le32(b, v);
    EVP_DigestUpdate(ctx, b, 4);
}

/*
 * Hashed stream, per column family in enum order from CF_DEFAULT up to (excluding) CF_META:
 *   u32 name length, name, then per record: u8 1, u32 key length, key, u32 value length,
 *   value; then u8 0 closing the family. Lengths are framed so no two states collide.
 */
int pt_metastore_state_digest(struct pt_metastore *ms, char hex_out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return PT_E_NOMEM;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return PT_E_INTERNAL;
    }
    const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(ms->db);
    int rv = 0;
    static const unsigned char one = 1, zero = 0;
    for (int cf = CF_DEFAULT; cf < CF_META && rv == 0; cf++) {
        hash_u32(ctx, (uint32_t)strlen(ms_cf_names[cf]));
        EVP_DigestUpdate(ctx, ms_cf_names[cf], strlen(ms_cf_names[cf]));
        rocksdb_readoptions_t *ro;
        rocksdb_iterator_t *it = ms_iter_new(ms, cf, NULL, 0, snap, &ro);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t klen, vlen;
            const char *k = rocksdb_iter_key(it, &klen);
            const char *v = rocksdb_iter_value(it, &vlen);
            EVP_DigestUpdate(ctx, &one, 1);
            hash_u32(ctx, (uint32_t)klen);
            EVP_DigestUpdate(ctx, k, klen);
            hash_u32(ctx, (uint32_t)vlen);
            EVP_DigestUpdate(ctx, v, vlen);
        }
        EVP_DigestUpdate(ctx, &zero, 1);
        rv = ms_iter_free(it, ro);
    }
    rocksdb_release_snapshot(ms->db, snap);
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (rv == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != sizeof(md)))
        rv = PT_E_INTERNAL;
    EVP_MD_CTX_free(ctx);
    if (rv != 0)
        return rv;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(md); i++) {
        hex_out[2 * i] = hex[md[i] >> 4];
        hex_out[2 * i + 1] = hex[md[i] & 15];
    }
    hex_out[64] = '\0';
    return 0;
}
