/*
 * metastore_snapfile.c - snapshots of the replicated state that never hold the whole state:
 * a pinned RocksDB view streamed out in pieces, and a stream restored in bounded batches.
 *
 * Role: the store side of Raft snapshots kept in files (replication/raft_snapshot.c names,
 * stores and ships the files). The stream is the one drawn at the top of metastore_snapshot.c,
 * byte for byte, so a stream written here restores through pt_metastore_restore and one
 * written there restores through pt_metastore_restore_stream.
 *
 * Design:
 * - A pin is a RocksDB snapshot plus the applied index read through it. Taking one costs a
 *   few microseconds (it runs on the raft loop); writing its stream runs on any thread while
 *   writers go on, and sees exactly the state at the pin.
 * - The stream carries each family's record count before its records, so each family is
 *   walked twice over the same pinned view: once to count, once to write. Output goes through
 *   a buffer of WRITE_CHUNK bytes; nothing else grows with the state.
 * - Restore (crash safety): the first write clears every replicated family and the index of
 *   missing blobs and deletes the applied index, so from then on the store claims index 0
 *   ("restoring"); records follow in WriteBatches of about batch_bytes; the applied index is
 *   written with the last batch only, after the stream's checksum (and the caller's expected
 *   size and SHA-256) matched. A crash or a bad stream in between leaves a store at index 0,
 *   which raft restores again from its snapshot at the next start; a failure after the first
 *   write also halts the store (pt_metastore_halt) so nothing is applied onto the partial
 *   state in this process.
 * Threads: pin/unpin and restore on the apply thread; pt_metastore_pin_write on any thread.
 */
#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "err.h"
#include "metastore_int.h"
#include "snapstream.h"

#define SNAP_N_FAMILIES (CF_META + 1)
#define SNAP_VALUE_MAX  (PT_METASTORE_MANIFEST_MAX + 1024) /* as metastore_snapshot.c */
#define WRITE_CHUNK     (1u << 20)

struct pt_metastore_pin {
    struct pt_metastore *ms;
    const rocksdb_snapshot_t *snap;
    uint64_t applied;
};

int pt_metastore_pin(struct pt_metastore *ms, struct pt_metastore_pin **out)
{
    *out = NULL;
    struct pt_metastore_pin *p = malloc(sizeof(*p));
    if (p == NULL)
        return PT_E_NOMEM;
    p->ms = ms;
    p->snap = rocksdb_create_snapshot(ms->db);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, p->snap);
    int rv = ms_applied_at(ms, ro, &p->applied);
    rocksdb_readoptions_destroy(ro);
    if (rv != 0) {
        pt_metastore_unpin(p);
        return rv;
    }
    *out = p;
    return 0;
}

uint64_t pt_metastore_pin_index(const struct pt_metastore_pin *pin)
{
    return pin->applied;
}

void pt_metastore_unpin(struct pt_metastore_pin *pin)
{
    if (pin == NULL)
        return;
    rocksdb_release_snapshot(pin->ms->db, pin->snap);
    free(pin);
}

/* Buffered output with a running SHA-256. */
struct out {
    int (*write_fn)(void *arg, const void *p, size_t n);
    void *arg;
    unsigned char *buf;
    size_t len;
    uint64_t total;
    EVP_MD_CTX *ctx;
    int err; /* sticky */
};

static void out_flush(struct out *o)
{
    if (o->err == 0 && o->len > 0) {
        EVP_DigestUpdate(o->ctx, o->buf, o->len);
        o->err = o->write_fn(o->arg, o->buf, o->len);
        o->total += o->len;
    }
    o->len = 0;
}

static void out_raw(struct out *o, const void *p, size_t n)
{
    const unsigned char *s = p;
    while (n > 0 && o->err == 0) {
        if (o->len == WRITE_CHUNK)
            out_flush(o);
        size_t k = WRITE_CHUNK - o->len < n ? WRITE_CHUNK - o->len : n;
        memcpy(o->buf + o->len, s, k);
        o->len += k;
        s += k;
        n -= k;
    }
}

static void out_u32(struct out *o, uint32_t v)
{
    unsigned char b[4];
    pt_put_le32(b, v);
    out_raw(o, b, 4);
}

static void out_u64(struct out *o, uint64_t v)
{
    unsigned char b[8];
    pt_put_le64(b, v);
    out_raw(o, b, 8);
}

static bool skip_record(enum cf cf, const char *k, size_t klen)
{
    return cf == CF_META && klen == MS_APPLIED_KEY_LEN && memcmp(k, MS_APPLIED_KEY, klen) == 0;
}

/* One pass over family cf of the pin: counts its records (o NULL) or writes them. */
static int walk_family(struct pt_metastore_pin *pin, enum cf cf, struct out *o, uint64_t *count)
{
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = ms_iter_new(pin->ms, cf, NULL, 0, pin->snap, &ro);
    int rv = 0;
    *count = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it) && (o == NULL || o->err == 0);
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        if (skip_record(cf, k, klen))
            continue;
        if (klen == 0 || klen > KEY_MAX || vlen > SNAP_VALUE_MAX) {
            rv = PT_E_CORRUPT; /* restore would refuse it: do not produce it */
            break;
        }
        if (o != NULL) {
            out_u32(o, (uint32_t)klen);
            out_raw(o, k, klen);
            out_u32(o, (uint32_t)vlen);
            out_raw(o, v, vlen);
        }
        (*count)++;
    }
    int irv = ms_iter_free(it, ro);
    return rv != 0 ? rv : irv;
}

int pt_metastore_pin_write(struct pt_metastore_pin *pin,
                           int (*write_fn)(void *arg, const void *p, size_t n), void *arg,
                           uint64_t *size, unsigned char sha256_out[32])
{
    static const char magic[8] = {'P', 'T', 'L', 'N', 'S', 'N', 'A', 'P'};
    struct out o = {.write_fn = write_fn, .arg = arg};
    o.buf = malloc(WRITE_CHUNK);
    o.ctx = EVP_MD_CTX_new();
    int rv = 0;
    if (o.buf == NULL || o.ctx == NULL)
        rv = PT_E_NOMEM;
    else if (EVP_DigestInit_ex(o.ctx, EVP_sha256(), NULL) != 1)
        rv = PT_E_INTERNAL;
    if (rv == 0) {
        out_raw(&o, magic, sizeof(magic));
        out_u32(&o, PT_METASTORE_SNAPSHOT_VERSION);
        out_u64(&o, pin->applied);
        out_u32(&o, SNAP_N_FAMILIES);
    }
    for (int cf = CF_DEFAULT; cf < SNAP_N_FAMILIES && rv == 0 && o.err == 0; cf++) {
        uint64_t count, written;
        rv = walk_family(pin, cf, NULL, &count);
        if (rv != 0)
            break;
        size_t nlen = strlen(ms_cf_names[cf]);
        unsigned char n8 = (unsigned char)nlen;
        out_raw(&o, &n8, 1);
        out_raw(&o, ms_cf_names[cf], nlen);
        out_u64(&o, count);
        rv = walk_family(pin, cf, &o, &written);
        if (rv == 0 && written != count)
            rv = PT_E_INTERNAL; /* the pinned view cannot change between the passes */
    }
    out_flush(&o);
    if (rv == 0)
        rv = o.err;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    EVP_MD_CTX *file = EVP_MD_CTX_new();
    if (rv == 0 && file == NULL)
        rv = PT_E_NOMEM;
    /* the stream ends with the SHA-256 of what precedes it; the file's own SHA-256 covers
     * that trailer too */
    if (rv == 0 && (EVP_MD_CTX_copy_ex(file, o.ctx) != 1 ||
                    EVP_DigestFinal_ex(o.ctx, md, &mdlen) != 1 || mdlen != 32))
        rv = PT_E_INTERNAL;
    if (rv == 0) {
        EVP_DigestUpdate(file, md, 32);
        rv = write_fn(arg, md, 32);
    }
    if (rv == 0 && (EVP_DigestFinal_ex(file, sha256_out, &mdlen) != 1 || mdlen != 32))
        rv = PT_E_INTERNAL;
    if (rv == 0)
        *size = o.total + 32;
    EVP_MD_CTX_free(file);
    EVP_MD_CTX_free(o.ctx);
    free(o.buf);
    return rv;
}

/* ---- restore in batches --------------------------------------------------------------- */

static const struct pt_snapstream_format format = {
    .families = ms_cf_names,
    .n_families = SNAP_N_FAMILIES,
    .meta_family = CF_META,
    .applied_key = MS_APPLIED_KEY,
    .applied_key_len = MS_APPLIED_KEY_LEN,
    .key_max = KEY_MAX,
    .value_max = SNAP_VALUE_MAX,
    .version = PT_METASTORE_SNAPSHOT_VERSION,
};

struct restore {
    struct pt_metastore *ms;
    rocksdb_writebatch_t *wb;
    size_t staged, batch_bytes;
    bool started; /* the clearing write is done: the store is "restoring" */
    uint64_t batches;
};

static int restore_write(struct restore *r)
{
    char *err = NULL;
    rocksdb_write(r->ms->db, r->ms->wo, r->wb, &err);
    rocksdb_writebatch_clear(r->wb);
    r->staged = 0;
    r->batches++;
    return err != NULL ? ms_rdb_err(err) : 0;
}

static int restore_begin_cb(void *arg, uint64_t index)
{
    struct restore *r = arg;
    (void)index;
    int rv = 0;
    for (int cf = CF_DEFAULT; cf < SNAP_N_FAMILIES && rv == 0; cf++)
        rv = ms_stage_clear(r->ms, r->wb, cf);
    if (rv != 0)
        return rv;
    ms_missing_restore_clear(r->ms, r->wb);
    rocksdb_writebatch_delete_cf(r->wb, r->ms->cf[CF_META], MS_APPLIED_KEY, MS_APPLIED_KEY_LEN);
    r->started = true;
    atomic_store(&r->ms->applied, 0);
    rv = restore_write(r);
    atomic_fetch_add(&r->ms->auth_gen, 1); /* the access control records are gone */
    return rv;
}

static int restore_record_cb(void *arg, unsigned family, const void *k, size_t klen, const void *v,
                             size_t vlen)
{
    struct restore *r = arg;
    rocksdb_writebatch_put_cf(r->wb, r->ms->cf[family], k, klen, v, vlen);
    int rv =
        family == CF_BLOB_LOCATIONS ? ms_missing_restore_put(r->ms, r->wb, k, klen, v, vlen) : 0;
    if (rv != 0)
        return rv;
    r->staged += klen + vlen + 16;
    return r->staged >= r->batch_bytes ? restore_write(r) : 0;
}

int pt_metastore_restore_stream(struct pt_metastore *ms, pt_snapstream_read_fn read_fn,
                                void *read_arg, size_t batch_bytes, uint64_t want_size,
                                const unsigned char *want_sha256, uint64_t *index_out)
{
    int rv = pt_metastore_halted(ms);
    if (rv == 0 && ms->read_only)
        return PT_E_DISK_FULL;
    if (rv != 0)
        return rv;
    struct restore r = {.ms = ms, .batch_bytes = batch_bytes > 0 ? batch_bytes : 1};
    r.wb = rocksdb_writebatch_create();
    struct pt_snapstream_sink sink = {
        .begin = restore_begin_cb, .record = restore_record_cb, .arg = &r};
    struct pt_snapstream_info info;
    rv = pt_snapstream_read(&format, read_fn, read_arg, &sink, &info);
    if (rv == 0 && want_size != 0 && info.size != want_size)
        rv = PT_E_CORRUPT;
    if (rv == 0 && want_sha256 != NULL && memcmp(info.file_sha256, want_sha256, 32) != 0)
        rv = PT_E_CORRUPT;
    if (rv == 0 && info.index != 0) {
        struct pt_buf e = {0};
        ms_enc_size(&e, info.index);
        rv = ms_enc_finish(&e);
        if (rv == 0)
            rocksdb_writebatch_put_cf(r.wb, ms->cf[CF_META], MS_APPLIED_KEY, MS_APPLIED_KEY_LEN,
                                      (const char *)e.p, e.len);
        free(e.p);
    }
    if (rv == 0) {
        /* the last batch makes the index authoritative: durable before it is claimed */
        char *err = NULL;
        rocksdb_write(ms->db, ms->wo_sync, r.wb, &err);
        if (err != NULL)
            rv = ms_rdb_err(err);
    }
    rocksdb_writebatch_destroy(r.wb);
    if (rv != 0) {
        if (r.started)
            pt_metastore_halt(ms, rv);
        return rv;
    }
    atomic_store(&ms->applied, info.index);
    atomic_fetch_add(&ms->auth_gen, 1);
    if (index_out != NULL)
        *index_out = info.index;
    return 0;
}
