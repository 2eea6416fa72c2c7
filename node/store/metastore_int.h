/*
 * metastore_int.h - what the pieces of the metadata store share (private to metastore*.c).
 *
 * The store (metastore.h) is split by concept:
 *   metastore.c           the database: open/close, column families, options, RocksDB errors,
 *                         point lookups and iterators, the applied index, WAL sync
 *   metastore_codec.c     the key schema (drawn there, once) and the key and value encoders
 *                         and decoders of every record kind; validation of key components
 *   metastore_read.c      reads of replicated records: repositories, manifests, tags, blob
 *                         links, referrers, blob locations, regions, paginated listings
 *   metastore_batch.c     struct pt_metastore_batch: the FSM's staged writes and their commit
 *   metastore_snapshot.c  the snapshot stream of the replicated families (serialize, check,
 *                         restore) and the state digest
 *   metastore_local.c     records local to this region: upload sessions, blob transfers
 *   metastore_auth.c      access control records (replicated): key schema, codec, reads and
 *                         batch writes
 *   metastore_gc.c        garbage collection of blobs: the reference and link index the FSM
 *                         keeps, the rule (marking and re-check at apply), files to delete
 *   metastore_quota.c     storage quotas and the usage the FSM keeps with every link and
 *                         reference (replicated), the admission rule, usage listings
 *   metastore_throttle.c  request throttling settings (replicated)
 *   metastore_policy.c    repository locks, immutable tag rules, retention rules (replicated):
 *                         records, listings, the checks the FSM makes
 *   metastore_retention.c the retention plan and the re-check of a Retain at apply
 *   metastore_missing.c   the index of the blobs this region lacks (local), kept with every
 *                         change of blob_locations
 *
 * Names shared between the pieces start with ms_ (functions) or MS_ (constants); everything
 * else stays static in its file. The threading and ownership rules are metastore.h's: reads
 * take a write batch (rocksdb_writebatch_wi_t, may be NULL) so the FSM's batch and the plain
 * readers share one lookup per record kind.
 */
#ifndef PT_METASTORE_INT_H
#define PT_METASTORE_INT_H

#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "metastore.h"

/* Column families, in the order the snapshot stream and the state digest walk them. */
enum cf {
    CF_DEFAULT,
    CF_REPOS,
    CF_MANIFESTS,
    CF_TAGS,
    CF_REPO_BLOBS,
    CF_REFERRERS,
    CF_BLOB_LOCATIONS,
    CF_META, /* replicated: [CF_DEFAULT, CF_META]; hashed by the state digest: [.., CF_META) */
    CF_UPLOADS,
    CF_LOCAL_BLOBS,
    CF_COUNT
};

/* RocksDB names of the families, indexed by enum cf (metastore.c). */
extern const char *const ms_cf_names[CF_COUNT];

/* Version byte that opens every replicated value. */
#define REC_VERSION 1
/* Longest key: referrers, <repo> \0 <subject> \0 <referrer>. */
#define KEY_MAX (PT_METASTORE_REPO_MAX + 2 * PT_METASTORE_DIGEST_MAX + 2)

/* The one meta record (CF_META): the index of the last applied command. */
#define MS_APPLIED_KEY     "applied_index"
#define MS_APPLIED_KEY_LEN (sizeof(MS_APPLIED_KEY) - 1)

/* Region records (CF_DEFAULT): "region/" then the id, 8 bytes big-endian. */
#define MS_REGION_PREFIX     "region/"
#define MS_REGION_PREFIX_LEN (sizeof(MS_REGION_PREFIX) - 1)
#define MS_REGION_KEY_LEN    (MS_REGION_PREFIX_LEN + 8)

struct pt_metastore {
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_readoptions_t *ro;       /* no bound, no snapshot: shared by point lookups */
    rocksdb_writeoptions_t *wo;      /* sync=0 */
    rocksdb_writeoptions_t *wo_sync; /* sync=1: durable before visible */
    _Atomic uint64_t applied;
    _Atomic uint64_t auth_gen; /* pt_metastore_auth_generation */
    _Atomic int halted;        /* 0, or the first error that halted replicated writes */
    _Atomic int fail_next;     /* test seam: the next commit fails with this error */
    bool read_only;            /* opened read-only (no space to open for writing); set at open */
    /* The region the index of missing blobs is kept for ("" = none): read from its marker at
     * open, set by pt_metastore_missing_index before any batch (metastore_missing.c). */
    char missing_region[PT_METASTORE_REGION_MAX + 1];
};

/* A batch (metastore_batch.c); auth is set by every staged access control write and moves
 * the auth generation once the batch is committed. */
struct pt_metastore_batch {
    struct pt_metastore *ms;
    rocksdb_writebatch_wi_t *wb;
    bool auth;
};

/* Stages e (consumed: freed on every path) under key in cf. 0 or PT_E_NOMEM. */
int ms_stage_put(struct pt_metastore_batch *b, enum cf cf, const char *key, size_t klen,
                 struct pt_buf *e);
void ms_stage_delete(struct pt_metastore_batch *b, enum cf cf, const char *key, size_t klen);

/* Access control records (CF_DEFAULT): "auth/" + kind + "/" + name (metastore_auth.c). */
#define MS_AUTH_PREFIX     "auth/"
#define MS_AUTH_PREFIX_LEN (sizeof(MS_AUTH_PREFIX) - 1)

/* ---- the database (metastore.c) -------------------------------------------------------- */

/* Translates and frees a RocksDB error string. */
int ms_rdb_err(char *err);

/* Point lookup through wb (staged writes over the database) or, with wb NULL, the database.
 * Returns 1 with *val owned (rocksdb_free), 0 on a miss, or a negative error. */
int ms_get_raw(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, enum cf cf, const char *key,
               size_t klen, char **val, size_t *vlen);

/* Iterator over cf bounded above by upper (ulen bytes, 0 = unbounded), reading snap if not
 * NULL. upper must outlive the iterator; *ro_out must be destroyed after the iterator. */
rocksdb_iterator_t *ms_iter_new(struct pt_metastore *ms, enum cf cf, const char *upper, size_t ulen,
                                const rocksdb_snapshot_t *snap, rocksdb_readoptions_t **ro_out);

/* Destroys it and ro; returns the iterator's error, if any. */
int ms_iter_free(rocksdb_iterator_t *it, rocksdb_readoptions_t *ro);

/* Reads the applied index through ro (0 if none was recorded). */
int ms_applied_at(struct pt_metastore *ms, const rocksdb_readoptions_t *ro, uint64_t *index);

/* ---- key components and keys (metastore_codec.c) --------------------------------------- */

/* 1..max bytes before the NUL. */
bool ms_name_ok(const char *s, size_t max);
/* "sha256:" + 64 or "sha512:" + 128 lowercase hex. */
bool ms_digest_ok(const char *s);
/* A region name: 1..PT_METASTORE_REGION_MAX bytes. */
bool ms_region_ok(const char *s);

/* Joins a, b and c (c may be NULL) with NUL separators into key (KEY_MAX bytes); the
 * components were validated by the caller. Returns the key length. */
size_t ms_key_join(char *key, const char *a, const char *b, const char *c);
/* Copies a key that is one whole string, k[0..klen) (borrowed), into out (at least max + 1
 * bytes) with its NUL. Returns 0, or PT_E_CORRUPT when it is empty, longer than max or holds
 * a NUL. */
int ms_key_text(const char *k, size_t klen, char *out, size_t max);

/* Writes the region key of id (MS_REGION_KEY_LEN bytes) to key; returns its length. */
size_t ms_region_key(uint64_t id, char *key);

/* Owned NUL-terminated copy of n bytes (NULL on allocation failure). */
char *ms_copy_z(const void *src, size_t n);

/* ---- values (metastore_codec.c) -------------------------------------------------------- */

/* Growable output buffer of an encoded value; p is owned. Encoding failures are sticky
 * (nomem) and reported once by ms_enc_finish. */
/* Record values are encoded into a growable buffer, struct pt_buf (base/buf.h). */

/* Returns 0, or PT_E_NOMEM after freeing the buffer. */
int ms_enc_finish(struct pt_buf *e);

/* Reader over a borrowed value; errors are sticky (bad) and reported by ms_dec_finish. */
struct dec {
    const unsigned char *p;
    size_t len, off;
    bool bad;
};

void ms_dec_init(struct dec *d, const char *v, size_t len);
/* The next n bytes (borrowed from the value), or NULL and bad when fewer remain. */
const unsigned char *ms_dec_raw(struct dec *d, size_t n);
uint32_t ms_dec_u32(struct dec *d);
uint64_t ms_dec_u64(struct dec *d);
/* Copies a s8 string into out (cap bytes, NUL-terminated); too long or NUL inside = bad. */
void ms_dec_str8(struct dec *d, char *out, size_t cap);
/* 0 if every field decoded and the value is used up exactly, else PT_E_CORRUPT. */
int ms_dec_finish(const struct dec *d);

/* Regions that hold one blob (a blob_locations value). */
struct location {
    uint64_t size;
    size_t n;
    char regions[PT_METASTORE_REGIONS_MAX][PT_METASTORE_REGION_MAX + 1];
};

/* Encoders append one whole value (version byte first) to e; the strings were validated. */
void ms_enc_size(struct pt_buf *e, uint64_t v); /* repos, repo_blobs, meta */
void ms_enc_manifest(struct pt_buf *e, const char *media_type, const char *artifact_type,
                     const char *subject, const void *body, size_t len);
void ms_enc_tag(struct pt_buf *e, int64_t updated_ms, const char *digest);
void ms_enc_referrer(struct pt_buf *e, const struct pt_referrer *r, const void *annotations,
                     size_t ann_len);
void ms_enc_location(struct pt_buf *e, const struct location *loc);
void ms_enc_region(struct pt_buf *e, const struct pt_region_rec *r);

/* Decoders: 0, PT_E_CORRUPT (see metastore_codec.c) or PT_E_NOMEM for the owned copies. */
int ms_dec_size(const char *v, size_t vlen, uint64_t *size); /* size may be NULL */
/* With want_body the body is copied into out->body, else left NULL. */
int ms_dec_manifest(const char *v, size_t vlen, struct pt_manifest_rec *out, bool want_body);
int ms_dec_tag(const char *v, size_t vlen, char digest[PT_METASTORE_DIGEST_MAX + 1],
               int64_t *updated_ms);
/* r->digest is filled by the caller from the key; r->annotations is owned on success. */
int ms_dec_referrer(const char *v, size_t vlen, struct pt_referrer *r);
int ms_dec_location(const char *v, size_t vlen, struct location *loc);
/* Key and value of a region record. */
int ms_dec_region(const char *k, size_t klen, const char *v, size_t vlen, struct pt_region_rec *r);

/* ---- the garbage collection index (metastore_gc.c) -------------------------------------- */

/* Stages the link index record of repo/digest with time_ms; with keep_existing only if there
 * is none yet. */
int ms_gc_link_put(struct pt_metastore_batch *b, const char *repo, const char *digest,
                   int64_t time_ms, bool keep_existing);
void ms_gc_link_delete(struct pt_metastore_batch *b, const char *repo, const char *digest);
/* Push time of repo@digest (components validated) into *time_ms: 1, 0 when none is recorded
 * (pushed before the index existed), or a negative error. */
int ms_gc_pushed_at(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                    const char *digest, int64_t *time_ms);
/* At open: builds the index of a store written before it existed, once (0 if it is there). */
int ms_gc_index_build(struct pt_metastore *ms);

/* ---- the index of blobs this region lacks (metastore_missing.c) ------------------------ */

/* At open: reads which region the index is kept for (none is no error). */
int ms_missing_load(struct pt_metastore *ms);
/* The location of digest (validated) was staged as loc: stages its index record (put when the
 * index's region is not among loc's holders, else delete). No-op without an index. */
int ms_missing_located(struct pt_metastore_batch *b, const char *digest,
                       const struct location *loc);
/* The location of digest (validated) was deleted: stages the removal of its index record. */
void ms_missing_gone(struct pt_metastore_batch *b, const char *digest);
/* Snapshot restore: stages, into wb, the removal of the whole index... */
void ms_missing_restore_clear(struct pt_metastore *ms, rocksdb_writebatch_t *wb);
/* ..then the index record of one restored blob_locations record (k, v borrowed). */
/* Stages, into wb, the deletion of every record of cf (metastore_snapshot.c). */
int ms_stage_clear(struct pt_metastore *ms, rocksdb_writebatch_t *wb, enum cf cf);
int ms_missing_restore_put(struct pt_metastore *ms, rocksdb_writebatch_t *wb, const char *k,
                           size_t klen, const char *v, size_t vlen);

/* ---- lookups shared by readers and batches (metastore_read.c) --------------------------- */

int ms_manifest_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                    const char *digest, struct pt_manifest_rec *out, bool want_body);
int ms_tag_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
               const char *tag, char digest_out[PT_METASTORE_DIGEST_MAX + 1]);
/* 1 if repo exists, 0 if not (or malformed), negative on error. */
int ms_repo_exists(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo);
int ms_blob_linked(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                   const char *digest, uint64_t *size);
/* 1 with *loc filled, 0 if no region holds digest (or digest is malformed), negative error. */
int ms_location_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *digest,
                    struct location *loc);

/* ---- usage (metastore_quota.c) ---------------------------------------------------------- */

/* Charges digest (size bytes) to repo unless it is charged already (names validated). */
int ms_usage_charge(struct pt_metastore_batch *b, const char *repo, const char *digest,
                    uint64_t size);
/* The same with the size of repo's link of digest, else its location's. */
int ms_usage_charge_ref(struct pt_metastore_batch *b, const char *repo, const char *digest);
/* Releases digest's charge to repo once repo neither links nor references it (staged writes
 * included); a blob charged to no repository leaves the registry total. */
int ms_usage_release(struct pt_metastore_batch *b, const char *repo, const char *digest);
/* At open, after ms_gc_index_build: builds the usage records of an older store, once. */
int ms_usage_index_build(struct pt_metastore *ms);
/* ---- locks and rules, shared by metastore_policy.c and metastore_retention.c ---------- */
/* Calls cb on every record of cf under prefix (plen bytes) through wb (NULL: the database);
 * cb returns non-zero to stop, and that value is returned (an iterator error wins over a
 * clean end). */
int ms_policy_walk(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, enum cf cf,
                   const char *prefix, size_t plen,
                   int (*cb)(const char *k, size_t klen, const char *v, size_t vlen, void *arg),
                   void *arg);
/* The flags of the lock of repo, repo:tag or repo@digest (1/1 when there is none): 0 or a
 * negative error. Components validated by the caller. */
int ms_policy_lock_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                       const char *tag, const char *digest, int *write_enabled,
                       int *delete_enabled);
/* pt_metastore_batch_policy_check through wb (NULL: the database), without words. */
int ms_policy_check(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, enum pt_policy_act act,
                    const char *repo, const char *tag, const char *digest);

#endif
