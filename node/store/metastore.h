/*
 * metastore.h - the node's metadata store: repositories, manifests, tags, blob links,
 * referrers, blob locations, regions and access control records (replicated), plus upload
 * sessions (local to this region).
 *
 * One RocksDB database with one column family per record kind (DESIGN.md section 3; the key
 * schema and value encodings are drawn at the top of metastore_codec.c).
 *
 * Writers: replicated column families change only through a struct pt_metastore_batch or a
 * snapshot restore (pt_metastore_restore), and only the FSM (replication/fsm.c,
 * replication/raft_fsm.c) uses them: HTTP handlers read replicated state and write upload
 * records, nothing else. Batches and restores run on one thread at a time (the apply thread);
 * their read-check-write sequences rely on being the only writer of replicated state.
 *
 * Threads: a struct pt_metastore is shared by every thread of the node. All read functions
 * and the upload functions may be called concurrently from any thread (RocksDB handles are
 * thread-safe and the handle itself holds no mutable state besides an atomic copy of the
 * applied index). pt_metastore_close must run after every other call has returned.
 *
 * Errors: 0 on success or a negative PT_E_* (node/err.h). RocksDB failures become PT_E_IO, or
 * PT_E_CORRUPT when RocksDB reports corruption or a stored value does not decode.
 * Lookups whose key is malformed (too long, empty, not a sha256 or sha512 digest) cannot match any
 * record and report the same miss error as an absent record.
 *
 * Ownership: every string argument is borrowed for the duration of the call. Every buffer
 * returned through an out-parameter is owned by the caller and released with free() or the
 * named *_free function.
 */
#ifndef PT_METASTORE_H
#define PT_METASTORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "access.h"
#include "bounds.h"
#include "digest.h"

/* Limits of stored names (bytes, without the terminating NUL). The shared ones are defined once
 * in base/bounds.h and oci/digest.h; these names say which of them the store applies. Digests are
 * "sha256:" + 64 or "sha512:" + 128 lowercase hex (PT_METASTORE_DIGEST_MAX is the longer). Upload
 * record ids are bounded by PT_UPLOAD_ID_MAX (bounds.h), the id of the upload session they belong
 * to. */
#define PT_METASTORE_REPO_MAX       PT_NAME_MAX
#define PT_METASTORE_TAG_MAX        PT_TAG_MAX
#define PT_METASTORE_DIGEST_MAX     PT_DIGEST_STR_MAX
#define PT_METASTORE_MEDIA_TYPE_MAX 127
#define PT_METASTORE_MANIFEST_MAX   PT_MANIFEST_MAX_BYTES /* manifest body, referrer annotations */
#define PT_METASTORE_REGION_MAX     PT_CLUSTER_NAME_MAX
#define PT_METASTORE_REGIONS_MAX    PT_CLUSTER_REGIONS_MAX /* regions recorded per blob */
#define PT_METASTORE_UPLOAD_VAL_MAX (64u << 10)
/* Listings return at most this many entries per call, whatever the caller asks for. */
#define PT_METASTORE_LIST_MAX 10000

struct pt_metastore;

/* Opens (creating dir, the database and missing column families as needed) the store in dir
 * (borrowed). On success *out is owned by the caller until pt_metastore_close. When there is
 * no space to open it for writing (a full disk: RocksDB must write a table file and a MANIFEST
 * to open), it opens read-only: reads serve everything acknowledged, and every write (batch
 * commit, restore, local records) is refused with PT_E_DISK_FULL without halting, until the
 * node is restarted with space (pt_metastore_read_only tells). */
int pt_metastore_open(const char *dir, struct pt_metastore **out);
/* True when the store was opened read-only (above). Any thread. */
bool pt_metastore_read_only(struct pt_metastore *ms);
/* Closes and frees ms (NULL is a no-op). Staged, uncommitted batches must be freed first. */
void pt_metastore_close(struct pt_metastore *ms);

struct pt_manifest_rec {
    char media_type[PT_METASTORE_MEDIA_TYPE_MAX + 1];
    char artifact_type[PT_METASTORE_MEDIA_TYPE_MAX + 1]; /* "" if none */
    char subject[PT_DIGEST_STR_MAX + 1];                 /* "" if none */
    void *body; /* owned: free with pt_manifest_rec_free; NUL-terminated copy */
    size_t len; /* body length, terminating NUL excluded */
};

/* Manifest of repo by digest ("sha256:..." or "sha512:..."). PT_E_MANIFEST_UNKNOWN on a miss. On
 * success *out is filled and its body must be released with pt_manifest_rec_free; on failure *out
 * holds no allocation (body NULL). */
int pt_metastore_get_manifest(struct pt_metastore *ms, const char *repo, const char *digest,
                              struct pt_manifest_rec *out);
/* Frees r->body and resets it to NULL (r itself is the caller's; NULL is a no-op). */
void pt_manifest_rec_free(struct pt_manifest_rec *r);

/* Digest that tag points at in repo, NUL-terminated. PT_E_MANIFEST_UNKNOWN on a miss. */
int pt_metastore_get_tag(struct pt_metastore *ms, const char *repo, const char *tag,
                         char digest_out[PT_METASTORE_DIGEST_MAX + 1]);

/* 1 if repo exists, 0 if not, negative on error. */
int pt_metastore_repo_exists(struct pt_metastore *ms, const char *repo);

/*
 * Lexically (byte-wise) sorted listing of the tags of repo that sort after last ("" or NULL
 * = from the start), at most n of them (capped at PT_METASTORE_LIST_MAX). *more is set to 1 if more
 * follow, else 0. On success *names is an owned array of *count owned strings (NULL when
 * *count is 0); free with pt_strv_free. PT_E_NAME_UNKNOWN if repo does not exist.
 */
int pt_metastore_list_tags(struct pt_metastore *ms, const char *repo, const char *last, size_t n,
                           char ***names, size_t *count, int *more);
/* Same as pt_metastore_list_tags over repository names. */
int pt_metastore_list_repos(struct pt_metastore *ms, const char *last, size_t n, char ***names,
                            size_t *count, int *more);
/* Frees the n strings of v and v itself (NULL is a no-op). */
void pt_strv_free(char **v, size_t n);

/* Size of digest if it is linked into repo. PT_E_BLOB_UNKNOWN if not. size may be NULL. */
int pt_metastore_blob_linked(struct pt_metastore *ms, const char *repo, const char *digest,
                             uint64_t *size);
/* Size of digest if any region holds it verified. PT_E_BLOB_UNKNOWN if none. size may be NULL. */
int pt_metastore_blob_location(struct pt_metastore *ms, const char *digest, uint64_t *size);
/* Size of digest and the regions (byte-wise sorted) that hold it. PT_E_BLOB_UNKNOWN if none.
 * *regions is an owned array of *count owned strings; free with pt_strv_free. */
int pt_metastore_blob_regions(struct pt_metastore *ms, const char *digest, uint64_t *size,
                              char ***regions, size_t *count);

struct pt_referrer {
    char digest[PT_DIGEST_STR_MAX + 1];
    char media_type[PT_METASTORE_MEDIA_TYPE_MAX + 1];
    char artifact_type[PT_METASTORE_MEDIA_TYPE_MAX + 1];
    uint64_t size;
    char *annotations; /* owned JSON object text (NUL-terminated), or NULL if none */
};

/*
 * Manifests in repo whose subject is subject, sorted by referrer digest, at most max (capped at
 * PT_METASTORE_LIST_MAX). If artifact_type_filter (borrowed) is not NULL only referrers with
 * exactly that artifact type are returned. On success *out is an owned array of *count
 * entries (NULL when *count is 0); free with pt_referrers_free. PT_E_NAME_UNKNOWN if repo does
 * not exist; an unknown subject gives an empty list.
 */
int pt_metastore_list_referrers(struct pt_metastore *ms, const char *repo, const char *subject,
                                const char *artifact_type_filter, size_t max,
                                struct pt_referrer **out, size_t *count);
/*
 * One page of the same listing: the referrers whose digest sorts after `after` (borrowed; NULL
 * or "" = from the first), at most max of them (capped at PT_METASTORE_LIST_MAX), examining
 * at most PT_METASTORE_LIST_MAX records whatever the filter keeps, so a page costs a bounded
 * walk. next gets the digest to continue after when more may follow (the last record
 * examined, kept or not), else "". Errors and ownership as pt_metastore_list_referrers.
 */
int pt_metastore_referrers_page(struct pt_metastore *ms, const char *repo, const char *subject,
                                const char *artifact_type_filter, const char *after, size_t max,
                                struct pt_referrer **out, size_t *count,
                                char next[PT_METASTORE_DIGEST_MAX + 1]);
/* Frees the annotations of the n entries and r itself (NULL is a no-op). */
void pt_referrers_free(struct pt_referrer *r, size_t n);

/* Index of the last command applied to replicated state (0 before the first). Any thread. */
uint64_t pt_metastore_applied_index(struct pt_metastore *ms);
/* Counter of changes to the access control records (users, tokens, anonymous rules, signing
 * keys, revoked token ids): moves after every committed batch that touched one and after every
 * snapshot restore, never backwards; starts at 1 on open. Readers (node/auth/directory.c)
 * reload when it moved. Any thread (atomic). */
uint64_t pt_metastore_auth_generation(struct pt_metastore *ms);

/* Local (not replicated) upload session records: opaque bytes keyed by upload id (1 to
 * PT_UPLOAD_ID_MAX bytes; values up to PT_METASTORE_UPLOAD_VAL_MAX bytes, else
 * PT_E_TOO_LARGE; a bad id gives PT_E_BLOB_UPLOAD_INVALID; a put below the free-space reserve
 * of base/diskspace.h, or any write to a read-only store, gives PT_E_DISK_FULL). Written with
 * sync=0: they reach
 * disk with the next pt_metastore_sync or WAL flush. */
int pt_metastore_upload_put(struct pt_metastore *ms, const char *id, const void *val, size_t len);
/* *val: owned copy (free()), *len its length. PT_E_BLOB_UPLOAD_UNKNOWN on a miss. */
int pt_metastore_upload_get(struct pt_metastore *ms, const char *id, void **val, size_t *len);
/* Deletes the record; deleting an absent record succeeds. */
int pt_metastore_upload_delete(struct pt_metastore *ms, const char *id);
/* Calls cb for every upload record in id order; id and val are borrowed for the duration of
 * the call. cb may put or delete upload records (iteration runs on a snapshot). cb returns 0
 * to continue; a non-zero value stops the iteration and is returned. */
int pt_metastore_upload_foreach(struct pt_metastore *ms,
                                int (*cb)(const char *id, const void *val, size_t len, void *arg),
                                void *arg);

/* Makes every write so far durable (rocksdb_flush_wal with sync). Blocks: never call it from
 * an event loop thread. */
int pt_metastore_sync(struct pt_metastore *ms);

/* Backups (backup.h): writes a consistent copy of the whole store into dir (borrowed; must not
 * exist, its parent must), a RocksDB checkpoint: the memtables are flushed first, table files
 * are hard-linked where dir is on the same filesystem, the rest copied. Any thread; blocks.
 * 0 or PT_E_IO. */
int pt_metastore_checkpoint(struct pt_metastore *ms, const char *dir);

/* Calls cb(digest, size, arg) for every blob link (repository, digest) in key order, so once
 * per repository linking a digest; stops at the first non-zero cb return and returns it.
 * digest is borrowed for the call. Any thread; 0 or PT_E_IO / PT_E_CORRUPT. */
int pt_metastore_foreach_blob_link(struct pt_metastore *ms,
                                   int (*cb)(const char *digest, uint64_t size, void *arg),
                                   void *arg);

/* For tests and debugging: SHA-256 (lowercase hex, NUL-terminated) over every replicated
 * column family except meta, keys and values in order, read from one snapshot. Two stores that
 * applied the same commands have the same digest. */
int pt_metastore_state_digest(struct pt_metastore *ms, char hex_out[65]);

/*
 * ---- snapshots of replicated state (Raft snapshots, DESIGN.md section 3) -----------------
 * A snapshot is every replicated column family (default, repos, manifests, tags, repo_blobs,
 * referrers, blob_locations, meta) and the applied index, read from one consistent RocksDB
 * snapshot into one self-describing, versioned, SHA-256-checksummed byte stream (the format
 * is drawn at the top of metastore_snapshot.c). Local families (uploads, local_blobs) are never
 * part of it. Two stores with the same replicated state and applied index give identical streams.
 *
 * Size: the stream lives in memory. It is 56 bytes plus, per family, 9 bytes and its name,
 * plus, per record, 8 bytes and the key and value: about the size of the replicated data,
 * which manifest bodies (each at most PT_METASTORE_MANIFEST_MAX) dominate. Building it may
 * briefly take up to twice that while the buffer grows; restoring holds the stream plus a
 * RocksDB WriteBatch of about the same size.
 */
#define PT_METASTORE_SNAPSHOT_VERSION 1

/*
 * Serializes the replicated state. On success *buf (owned by the caller, released with free())
 * holds *len bytes and *index is the applied index the stream carries. PT_E_NOMEM, PT_E_IO,
 * PT_E_CORRUPT (a stored record beyond the limits restore accepts). Any thread; it runs
 * concurrently with writers and sees the state between two commits.
 */
int pt_metastore_snapshot(struct pt_metastore *ms, void **buf, size_t *len, uint64_t *index);
/* Same, with the buffer grown by realloc_fn and released on failure by free_fn (e.g.
 * raft_realloc and raft_free): *buf is released with free_fn's allocator. */
int pt_metastore_snapshot_with(struct pt_metastore *ms, void *(*realloc_fn)(void *, size_t),
                               void (*free_fn)(void *), void **buf, size_t *len, uint64_t *index);
/* Checks the header and checksum of a stream (buf borrowed, len bytes) and reads its applied
 * index into *index. PT_E_CORRUPT if it is damaged, truncated or of an unknown version. */
int pt_metastore_snapshot_index(const void *buf, size_t len, uint64_t *index);
/*
 * Replaces every replicated column family and the applied index with the contents of the
 * stream (buf borrowed, len bytes) in one atomic WriteBatch (sync=0): range deletions of the
 * current records, then the stream's records. Local families are untouched. A stream that is
 * damaged, truncated, of an unknown version, or whose records break the format (unknown or
 * missing family, keys out of order, a record beyond the limits) is refused with PT_E_CORRUPT
 * and nothing changes; PT_E_NOMEM and PT_E_IO also leave the store unchanged (a failed write
 * halts it); a halted store refuses with its halting error. Runs on the
 * apply thread with no batch in use; concurrent readers see the old or the new state.
 */
int pt_metastore_restore(struct pt_metastore *ms, const void *buf, size_t len);

/*
 * ---- snapshots that never hold the whole state (metastore_snapfile.c) -------------------
 * A pin is a consistent view (a RocksDB snapshot) of the store and its applied index, cheap
 * to take on the apply thread; its stream (the same format as above) is then written from
 * any thread in pieces while writes go on, and a stream is restored from a read function in
 * batches of a few MiB. Neither direction holds more than a few MiB of it.
 */
struct pt_metastore_pin;
/* Pins the current state: *out (owned; pt_metastore_unpin) or PT_E_NOMEM / PT_E_IO. */
int pt_metastore_pin(struct pt_metastore *ms, struct pt_metastore_pin **out);
/* The applied index the pinned state carries. */
uint64_t pt_metastore_pin_index(const struct pt_metastore_pin *pin);
/* Releases the view (NULL is a no-op). The store must still be open. */
void pt_metastore_unpin(struct pt_metastore_pin *pin);
/*
 * Writes the stream of pin (borrowed) through write_fn(arg, bytes, n) (0 or a PT_E_* that
 * stops the write) in pieces of at most 1 MiB; *size gets its length and sha256_out the
 * SHA-256 of all of it (trailer included). Returns 0, PT_E_NOMEM, PT_E_IO, PT_E_CORRUPT (a
 * stored record beyond the limits restore accepts) or write_fn's error. Any thread, while
 * writers go on; the pin must outlive the call.
 */
int pt_metastore_pin_write(struct pt_metastore_pin *pin,
                           int (*write_fn)(void *arg, const void *p, size_t n), void *arg,
                           uint64_t *size, unsigned char sha256_out[32]);
/*
 * Replaces the replicated state with the stream read through read_fn(read_arg) (see
 * snapstream.h), writing it in batches of about batch_bytes. The first write clears the
 * replicated families and the applied index (the store then claims index 0); the applied
 * index is written last, with a synced batch, only once the stream checked out whole and,
 * when given, its size is want_size (0: any) and its SHA-256 want_sha256 (NULL: any).
 * Returns 0 (*index_out, may be NULL, gets the index), PT_E_CORRUPT, PT_E_NOMEM, PT_E_IO,
 * PT_E_DISK_FULL (opened read-only) or the halting error. A failure before the first write
 * (a bad header) changes nothing; after it, the store stays at index 0 and is halted. Runs on
 * the apply thread with no batch in use; readers see a partial state while it runs.
 */
int pt_metastore_restore_stream(struct pt_metastore *ms,
                                int (*read_fn)(void *arg, void *buf, size_t cap, size_t *got),
                                void *read_arg, size_t batch_bytes, uint64_t want_size,
                                const unsigned char *want_sha256, uint64_t *index_out);

/*
 * ---- for the FSM only --------------------------------------------------------------------
 * A batch stages writes to replicated column families; reads through a batch see the staged
 * writes over the database. Nothing is visible to other readers until pt_metastore_batch_commit
 * (or _commit_durable), which writes everything atomically together with the applied index. Only
 * one batch may be in use at a time, from one thread. Writers validate their key components and
 * return PT_E_NAME_INVALID (repo), PT_E_TAG_INVALID (tag), PT_E_DIGEST_INVALID (any digest),
 * PT_E_MANIFEST_INVALID (media or artifact type, empty body), PT_E_MANIFEST_TOO_LARGE (body
 * or annotations) or PT_E_INTERNAL (region) without staging anything.
 */
struct pt_metastore_batch;

/* *out is owned by the caller until pt_metastore_batch_free. */
int pt_metastore_batch_new(struct pt_metastore *ms, struct pt_metastore_batch **out);
/* Frees b, discarding staged writes (NULL is a no-op). */
void pt_metastore_batch_free(struct pt_metastore_batch *b);
/* Discards every staged write; b stays usable. */
void pt_metastore_batch_clear(struct pt_metastore_batch *b);
/* Writes the staged writes and, if index != 0, index as the applied index, atomically
 * (sync=0: the Raft log is the durable record); then clears b. On failure nothing is visible,
 * b is cleared and the store is halted (below). */
int pt_metastore_batch_commit(struct pt_metastore_batch *b, uint64_t index);
/* The same as one synced write (WAL fsync): the writes are on disk before any reader can see
 * them, and visible when this returns 0. On failure (write or fsync) nothing is visible in this
 * process and the store is halted; after a restart a write whose fsync failed may still be
 * found in the WAL. Blocks for the fsync: not for an event loop that must stay responsive. */
int pt_metastore_batch_commit_durable(struct pt_metastore_batch *b, uint64_t index);
/* Makes the state this store holds the state of a new Raft log at index (non-zero): the
 * applied index becomes index and every write id (which counts indexes of the log it was
 * applied in) is dropped, in one synced write. For a region whose state did not come from
 * the log it now joins: a single region or a restored backup bootstrapping a cluster
 * (replication/raft_seed.c). 0, or PT_E_* (the store is then halted). */
int pt_metastore_rebase(struct pt_metastore *ms, uint64_t index);
/* Savepoints, for staging several commands into one batch: mark remembers what is staged so
 * far; undo discards everything staged since the last mark and forgets that mark
 * (PT_E_INTERNAL if there is none). Commit and clear forget every mark. */
void pt_metastore_batch_mark(struct pt_metastore_batch *b);
int pt_metastore_batch_undo(struct pt_metastore_batch *b);

/*
 * Halting. Once a replicated write failed (a commit or a restore) or the FSM found it cannot
 * apply the next command (pt_metastore_halt), replicated state must not change any more in
 * this process: whatever follows would be applied on top of a state that lacks an entry.
 * pt_metastore_halted returns 0, or the first error that halted the store (any thread); a
 * halted store refuses every commit and restore with that error until it is reopened. Reads
 * and local records (uploads, transfers) keep working.
 */
void pt_metastore_halt(struct pt_metastore *ms, int err);
int pt_metastore_halted(struct pt_metastore *ms);
/* Test seam (fault injection): the next batch commit fails with err (e.g. PT_E_IO) exactly as
 * a failed RocksDB write or WAL fsync does: nothing is written and the store halts. 0 cancels. */
void pt_metastore_fail_next_commit(struct pt_metastore *ms, int err);

/* Creates repo with creation time time_ms unless it exists. */
int pt_metastore_batch_repo_ensure(struct pt_metastore_batch *b, const char *repo, int64_t time_ms);
/* Manifest record without its body: out->body is NULL, out->len is the body length. out may
 * be NULL to test existence. PT_E_MANIFEST_UNKNOWN on a miss. */
int pt_metastore_batch_manifest_get(struct pt_metastore_batch *b, const char *repo,
                                    const char *digest, struct pt_manifest_rec *out);
/* Stages the manifest record (overwriting). artifact_type and subject may be "" (none);
 * body (len bytes, borrowed) is copied. */
int pt_metastore_batch_manifest_put(struct pt_metastore_batch *b, const char *repo,
                                    const char *digest, const char *media_type,
                                    const char *artifact_type, const char *subject,
                                    const void *body, size_t len);
int pt_metastore_batch_manifest_delete(struct pt_metastore_batch *b, const char *repo,
                                       const char *digest);
/* PT_E_MANIFEST_UNKNOWN on a miss. */
int pt_metastore_batch_tag_get(struct pt_metastore_batch *b, const char *repo, const char *tag,
                               char digest_out[PT_METASTORE_DIGEST_MAX + 1]);
int pt_metastore_batch_tag_put(struct pt_metastore_batch *b, const char *repo, const char *tag,
                               const char *digest, int64_t time_ms);
int pt_metastore_batch_tag_delete(struct pt_metastore_batch *b, const char *repo, const char *tag);
/* Stages the deletion of every tag of repo (staged or stored) that points at digest. */
int pt_metastore_batch_tags_delete_to(struct pt_metastore_batch *b, const char *repo,
                                      const char *digest);
/* PT_E_BLOB_UNKNOWN if digest is not linked into repo. size may be NULL. */
int pt_metastore_batch_blob_linked(struct pt_metastore_batch *b, const char *repo,
                                   const char *digest, uint64_t *size);
int pt_metastore_batch_blob_link(struct pt_metastore_batch *b, const char *repo, const char *digest,
                                 uint64_t size);
int pt_metastore_batch_blob_unlink(struct pt_metastore_batch *b, const char *repo,
                                   const char *digest);
/* Stages the referrers entry repo/subject/r->digest. r and annotations (ann_len bytes,
 * may be 0) are borrowed; r->annotations is ignored. */
int pt_metastore_batch_referrer_put(struct pt_metastore_batch *b, const char *repo,
                                    const char *subject, const struct pt_referrer *r,
                                    const void *annotations, size_t ann_len);
int pt_metastore_batch_referrer_delete(struct pt_metastore_batch *b, const char *repo,
                                       const char *subject, const char *digest);
/* Adds region to the holders of digest (kept sorted, without duplicates). PT_E_SIZE_INVALID if
 * the blob is recorded with another size; PT_E_INTERNAL if the region list is full. */
int pt_metastore_batch_blob_stored(struct pt_metastore_batch *b, const char *digest, uint64_t size,
                                   const char *region);

/*
 * ---- garbage collection of blobs (metastore_gc.c draws its records) ---------------------
 * The FSM keeps an index of which manifests reference which blobs and when each blob was last
 * linked into each repository; a marking pass and the apply of CollectBlobs decide with the
 * same rule (evaluate in metastore_gc.c): a link of a blob to repository R is garbage when no
 * manifest of R references the blob and it was linked at least grace_ms before now; the blob is
 * garbage when, those links removed, no repository links it and no manifest references it.
 * A store without a complete index (built once at open) refuses with PT_E_UNAVAILABLE.
 */
struct pt_gc_verdict {
    int referenced;         /* 1 if some manifest of some repository references the blob */
    unsigned links_removed; /* links that are garbage (removed, when collecting) */
    unsigned links_kept;    /* links that are referenced or younger than the grace */
    int located;            /* 1 if a blob_locations record exists */
    int collected;          /* 1 if the blob itself is garbage (record removed, when collecting) */
    uint64_t size;          /* its size, from blob_locations (0 if not located) */
};

/* 0 if some region holds digest (staged writes included), PT_E_BLOB_UNKNOWN if none. */
int pt_metastore_batch_blob_location(struct pt_metastore_batch *b, const char *digest);
/* 1 if digest was collected and not stored by an upload since, as a LinkBlob proposed at
 * proposed_ms can tell (LinkBlob refuses it): its collected-blob record is there, or that
 * record was forgotten (pt_metastore_batch_gc_forget: no region holds digest and proposed_ms
 * is at or before the newest forgotten collection); 0 if not, negative on error;
 * PT_E_DIGEST_INVALID. revive forgets that (an upload stored it). */
int pt_metastore_batch_blob_collected(struct pt_metastore_batch *b, const char *digest,
                                      int64_t proposed_ms);
int pt_metastore_batch_blob_revive(struct pt_metastore_batch *b, const char *digest);
/* The shortest time after its collection a collected-blob record is kept (the smallest
 * CollectBlobs.forget_after_ms): far longer than any proposal is in flight. */
#define PT_GC_FORGET_MIN_MS (24LL * 3600 * 1000)
/* Stages forgetting, oldest collection first, at most max collected-blob records of
 * collections at least after_ms before now_ms, and remembers the newest collection forgotten;
 * *forgotten says how many. PT_E_CONFIG if after_ms < PT_GC_FORGET_MIN_MS. */
int pt_metastore_batch_gc_forget(struct pt_metastore_batch *b, int64_t now_ms, int64_t after_ms,
                                 size_t max, size_t *forgotten);
/* 1 if pt_metastore_batch_gc_forget would forget something as of now_ms, 0 if not, negative
 * on error. Any thread. */
int pt_metastore_gc_forgettable(struct pt_metastore *ms, int64_t now_ms, int64_t after_ms);
/* Stages the references of manifest (in repo) to digests[0..n) (borrowed). */
int pt_metastore_batch_blob_refs_put(struct pt_metastore_batch *b, const char *repo,
                                     const char *manifest, const char *const *digests, size_t n);
/* Stages the removal of every reference of manifest (in repo). */
int pt_metastore_batch_blob_refs_delete(struct pt_metastore_batch *b, const char *repo,
                                        const char *manifest);
/* Records that manifest (in repo) was pushed at time_ms (the grace of an orphan referrer);
 * pt_metastore_batch_blob_refs_delete removes it with the references. */
int pt_metastore_batch_manifest_pushed(struct pt_metastore_batch *b, const char *repo,
                                       const char *manifest, int64_t time_ms);
/* Deletes (as DeleteManifest) the referrer digest of subject in repo if, re-checked as of
 * now_ms, its referrers entry exists, subject is no manifest of repo any more, no tag of repo
 * names it and it was pushed at least grace_ms before (*deleted = 1); else stages nothing. */
int pt_metastore_batch_gc_referrer(struct pt_metastore_batch *b, const char *repo,
                                   const char *subject, const char *digest, int64_t now_ms,
                                   int64_t grace_ms, int *deleted);
/* Children of image indexes (manifest lists). put stages that manifest `index` of repo names
 * children[0..n) (borrowed digests) and that none of them is an orphan any more; delete
 * removes the records of index's children and records, as of now_ms, each child that no
 * other index of repo names any more as an orphan (pt_metastore_batch_gc_child). */
int pt_metastore_batch_children_put(struct pt_metastore_batch *b, const char *repo,
                                    const char *index, const char *const *children, size_t n);
int pt_metastore_batch_children_delete(struct pt_metastore_batch *b, const char *repo,
                                       const char *index, int64_t now_ms);
/* Forgets that digest of repo is an orphan child (it was pushed again). */
int pt_metastore_batch_orphan_clear(struct pt_metastore_batch *b, const char *repo,
                                    const char *digest);
/* Re-checks the orphan child digest of repo as of now_ms: when it is still a manifest of repo,
 * no index of repo names it, no tag names it and it became an orphan at least grace_ms
 * before, deletes it as DeleteManifest does (*deleted = 1); the orphan record goes unless it
 * is only too young (a manifest gone, named again or tagged is no orphan). */
int pt_metastore_batch_gc_child(struct pt_metastore_batch *b, const char *repo, const char *digest,
                                int64_t now_ms, int64_t grace_ms, int *deleted);
/* Marking of orphan children: calls cb for each orphan record that pt_metastore_batch_gc_child
 * would act on as of now_ms (delete, or drop the record), strings borrowed for the call. A
 * non-zero return from cb stops the walk and is returned. PT_E_UNAVAILABLE without the index
 * of children. */
int pt_metastore_gc_mark_children(struct pt_metastore *ms, int64_t now_ms, int64_t grace_ms,
                                  int (*cb)(const char *repo, const char *digest, void *arg),
                                  void *arg);
/* Marking of referrers: calls cb for every referrer that pt_metastore_batch_gc_referrer would
 * delete as of now_ms (strings borrowed for the call), walking the referrers family with an
 * iterator. A non-zero return from cb stops the walk and is returned. Checking "no tag names
 * it" walks the repository's tags. */
int pt_metastore_gc_mark_referrers(struct pt_metastore *ms, int64_t now_ms, int64_t grace_ms,
                                   int (*cb)(const char *repo, const char *subject,
                                             const char *digest, void *arg),
                                   void *arg);
/* Records that digest was (re)linked into repo at time_ms (the command's time). */
int pt_metastore_batch_blob_link_time(struct pt_metastore_batch *b, const char *repo,
                                      const char *digest, int64_t time_ms);
/* Re-checks digest as of now_ms and stages what is garbage: the garbage links (repo_blobs and
 * their index records), and, when the blob is garbage, its blob_locations record plus a local
 * record telling this region to delete the file (pt_metastore_gc_pending_first). *out says
 * what was found. PT_E_DIGEST_INVALID, PT_E_CONFIG (grace_ms < 0), PT_E_UNAVAILABLE (no
 * index), I/O errors. */
int pt_metastore_batch_gc_collect(struct pt_metastore_batch *b, const char *digest, int64_t now_ms,
                                  int64_t grace_ms, struct pt_gc_verdict *out);
/* The same verdict, read from the database without staging anything (any thread). */
int pt_metastore_gc_check(struct pt_metastore *ms, const char *digest, int64_t now_ms,
                          int64_t grace_ms, struct pt_gc_verdict *out);
/*
 * Marking: walks blob_locations in digest order from just after `after` (NULL or "" = from
 * the start) with an iterator, and calls cb with each digest and its verdict as of now_ms
 * (borrowed for the call). A non-zero return from cb stops the walk and is returned. Any thread
 * (it reads; never an event loop: each blob costs a few RocksDB reads). PT_E_UNAVAILABLE
 * without an index.
 */
int pt_metastore_gc_mark(struct pt_metastore *ms, const char *after, int64_t now_ms,
                         int64_t grace_ms,
                         int (*cb)(const char *digest, const struct pt_gc_verdict *v, void *arg),
                         void *arg);
/* The first (digest order) blob whose file this region is to delete, with the time of the
 * entry that collected it. PT_E_NOT_FOUND if none. */
int pt_metastore_gc_pending_first(struct pt_metastore *ms,
                                  char digest_out[PT_METASTORE_DIGEST_MAX + 1], int64_t *time_ms);
/* The same, for the first record after digest `after` (borrowed, may be digest_out; NULL or
 * "" = the first).
 * A drain walks the records with it instead of seeking from the start each time: the deleted
 * records before `after` are tombstones until a compaction, and seeking past all of them for
 * every record made a drain quadratic in the records it deleted. */
int pt_metastore_gc_pending_next(struct pt_metastore *ms, const char *after,
                                 char digest_out[PT_METASTORE_DIGEST_MAX + 1], int64_t *time_ms);
/* Forgets that record (done, or nothing to do). */
int pt_metastore_gc_pending_delete(struct pt_metastore *ms, const char *digest);

/* ---- transfers of blobs from other regions (local to this region) ---------------------- */

/* Opaque record (at most PT_METASTORE_UPLOAD_VAL_MAX bytes) of the transfer of digest in
 * progress, owned by replication/blob_sync.c. get: *val owned (free()); PT_E_NOT_FOUND when
 * there is none. */
int pt_metastore_transfer_put(struct pt_metastore *ms, const char *digest, const void *val,
                              size_t len);
int pt_metastore_transfer_get(struct pt_metastore *ms, const char *digest, void **val, size_t *len);
int pt_metastore_transfer_delete(struct pt_metastore *ms, const char *digest);
/* The first digest, in byte order, of a recorded transfer that starts with prefix (borrowed),
 * into digest_out. PT_E_NOT_FOUND if there is none. */
int pt_metastore_transfer_first(struct pt_metastore *ms, const char *prefix,
                                char digest_out[PT_METASTORE_DIGEST_MAX + 1]);

/*
 * Calls cb for every blob that some region holds and `region` (borrowed) does not, in digest
 * order: its size and the holders' names (borrowed for the call, byte-wise sorted). A non-zero
 * return from cb stops the walk and is returned. Reads one consistent view.
 */
int pt_metastore_missing_foreach(struct pt_metastore *ms, const char *region,
                                 int (*cb)(const char *digest, uint64_t size,
                                           const char *const *holders, size_t n, void *arg),
                                 void *arg);

/*
 * The index of the blobs `region` lacks (metastore_missing.c): kept by the store, local to
 * this region, changed in the same write as every change of blob_locations and rebuilt by
 * snapshot restores, so it always agrees with pt_metastore_missing_foreach.
 *
 * pt_metastore_missing_index keeps the index for region (borrowed) from now on: a store whose
 * index is for region already returns at once; otherwise (a store of an older version, or
 * kept for another region) the index is built from blob_locations in one synced write, once.
 * Call it at start, before any batch. PT_E_CONFIG for a bad name, PT_E_DISK_FULL read-only.
 */
int pt_metastore_missing_index(struct pt_metastore *ms, const char *region);
/* Calls cb for the missing blobs whose digest sorts after `after` ("" or NULL: from the
 * first), at most max of them, in digest order, like pt_metastore_missing_foreach (holders
 * read as of the call); *count is how many. PT_E_UNAVAILABLE when the index is not kept for
 * region. Any thread. */
int pt_metastore_missing_page(struct pt_metastore *ms, const char *region, const char *after,
                              size_t max,
                              int (*cb)(const char *digest, uint64_t size,
                                        const char *const *holders, size_t n, void *arg),
                              void *arg, size_t *count);
/* How many blobs region lacks and their bytes, from the index alone (one walk of it: as
 * costly as what is missing). PT_E_UNAVAILABLE when the index is not kept for region. */
int pt_metastore_missing_totals(struct pt_metastore *ms, const char *region, uint64_t *blobs,
                                uint64_t *bytes);

/* ---- regions of the cluster (replicated; written by the FSM only) ---------------------- */

struct pt_region_rec {
    uint64_t id;
    char name[PT_CLUSTER_NAME_MAX + 1];
    char address[PT_CLUSTER_ADDRESS_MAX + 1];
    char url[PT_CLUSTER_URL_MAX + 1];
};

/* All region records in id order: *out owned (free()), *count entries. */
int pt_metastore_list_regions(struct pt_metastore *ms, struct pt_region_rec **out, size_t *count);
int pt_metastore_batch_region_put(struct pt_metastore_batch *b, const struct pt_region_rec *r);
int pt_metastore_batch_region_delete(struct pt_metastore_batch *b, uint64_t id);

/*
 * ---- write ids (replicated; written by the FSM only) -----------------------------------
 * The outcome of every command applied with a write id (replication/command.h), so that the
 * FSM applies an id at most once: the index it was applied at and its status (0 or the
 * PT_E_* of its failed precondition). Kept in the meta family, so they travel in snapshots,
 * and expired by index distance (pt_metastore_batch_write_ids_expire), never by clock.
 * Ids are 1..PT_METASTORE_WRITE_ID_MAX bytes (PT_E_CONFIG otherwise).
 */
#define PT_METASTORE_WRITE_ID_MAX 32
/* 1 with *index and *status (either may be NULL) when id (id_len bytes, borrowed) is
 * recorded, 0 when it is not, or a negative PT_E_*. Any thread. */
int pt_metastore_write_id_get(struct pt_metastore *ms, const void *id, size_t id_len,
                              uint64_t *index, int *status);
/* The same through a batch (staged writes over the database). */
int pt_metastore_batch_write_id_get(struct pt_metastore_batch *b, const void *id, size_t id_len,
                                    uint64_t *index, int *status);
/* Records id as applied at index (non-zero) with status. */
int pt_metastore_batch_write_id_put(struct pt_metastore_batch *b, const void *id, size_t id_len,
                                    uint64_t index, int status);
/* Stages the removal of the ids recorded at an index below `below`, oldest first, at most max
 * of them. Returns how many, or a negative PT_E_*. */
int pt_metastore_batch_write_ids_expire(struct pt_metastore_batch *b, uint64_t below, size_t max);
/* Number of recorded ids (for tests and status). */
int pt_metastore_write_id_count(struct pt_metastore *ms, uint64_t *count);

/*
 * ---- access control records (replicated; written by the FSM only) -----------------------
 * Users, access tokens, anonymous pull rules, token signing public keys and revoked token ids
 * (node/auth/). Every field is validated with the grammar of oci/access.h when staged and
 * again when read back (a stored record that breaks it is PT_E_CORRUPT). Writers return
 * PT_E_CONFIG for a malformed record without staging anything. Each committed batch that
 * staged one of them, and each restore, moves pt_metastore_auth_generation.
 */
#define PT_METASTORE_AUTH_GRANTS_MAX 32  /* grants per user or token */
#define PT_METASTORE_AUTH_TEXT_MAX   255 /* token description */
#define PT_METASTORE_AUTH_DER_MAX    512 /* DER SubjectPublicKeyInfo of a signing key */
/* Most records of each kind the FSM creates (every region holds them all in memory). */
#define PT_METASTORE_AUTH_USERS_MAX   10000
#define PT_METASTORE_AUTH_TOKENS_MAX  10000
#define PT_METASTORE_AUTH_ANON_MAX    1000
#define PT_METASTORE_AUTH_KEYS_MAX    1000
#define PT_METASTORE_AUTH_REVOKED_MAX 100000

/* Kinds of access control records. */
enum pt_auth_rec_kind {
    PT_AUTH_REC_ANONYMOUS,
    PT_AUTH_REC_REVOKED,
    PT_AUTH_REC_KEY,
    PT_AUTH_REC_TOKEN,
    PT_AUTH_REC_USER,
};

struct pt_auth_grant_rec {
    char pattern[PT_ACCESS_PATTERN_MAX + 1]; /* pt_access_pattern_valid */
    uint32_t actions;                        /* pt_access_actions_valid */
};

struct pt_auth_user_rec {
    char name[PT_ACCESS_NAME_MAX + 1];
    char password_hash[PT_ACCESS_HASH_MAX + 1];
    int64_t created_ms;
    int disabled;
    size_t n_grants;
    struct pt_auth_grant_rec grants[PT_METASTORE_AUTH_GRANTS_MAX];
};

struct pt_auth_token_rec {
    char id[PT_ACCESS_NAME_MAX + 1];
    char secret_hash[PT_ACCESS_SECRET_HASH_LEN + 1];
    int64_t created_ms;
    int64_t expires_ms; /* 0: never */
    int disabled;
    char description[PT_METASTORE_AUTH_TEXT_MAX + 1];
    char owner[PT_ACCESS_NAME_MAX + 1]; /* "" or a user name */
    size_t n_grants;
    struct pt_auth_grant_rec grants[PT_METASTORE_AUTH_GRANTS_MAX];
};

struct pt_auth_key_rec {
    char kid[PT_ACCESS_NAME_MAX + 1]; /* pt_access_id_valid */
    char region[PT_METASTORE_REGION_MAX + 1];
    int64_t created_ms;
    int64_t not_after_ms; /* 0: not retired */
    size_t der_len;       /* 1..PT_METASTORE_AUTH_DER_MAX */
    unsigned char der[PT_METASTORE_AUTH_DER_MAX];
};

struct pt_auth_revoked_rec {
    char jti[PT_ACCESS_NAME_MAX + 1]; /* pt_access_id_valid */
    int64_t expires_ms;
};

/* Callbacks of pt_metastore_auth_load, each may be NULL (that kind is skipped). Records are
 * borrowed for the call; a non-zero return stops the walk and is returned. */
struct pt_metastore_auth_visitor {
    int (*user)(void *arg, const struct pt_auth_user_rec *r);
    int (*token)(void *arg, const struct pt_auth_token_rec *r);
    int (*anonymous)(void *arg, const char *pattern);
    int (*key)(void *arg, const struct pt_auth_key_rec *r);
    int (*revoked)(void *arg, const struct pt_auth_revoked_rec *r);
};

/* Walks every access control record of one consistent view, each kind in byte-wise order of
 * its name. 0, a callback's return, PT_E_IO, PT_E_CORRUPT. */
int pt_metastore_auth_load(struct pt_metastore *ms, const struct pt_metastore_auth_visitor *v,
                           void *arg);
/* Point reads: 0 and *out, or PT_E_NOT_FOUND (also for a malformed name). */
int pt_metastore_auth_user_get(struct pt_metastore *ms, const char *name,
                               struct pt_auth_user_rec *out);
int pt_metastore_auth_token_get(struct pt_metastore *ms, const char *id,
                                struct pt_auth_token_rec *out);
int pt_metastore_auth_key_get(struct pt_metastore *ms, const char *kid,
                              struct pt_auth_key_rec *out);

/* The same reads through a batch (staged writes over the database). */
int pt_metastore_batch_auth_user_get(struct pt_metastore_batch *b, const char *name,
                                     struct pt_auth_user_rec *out);
int pt_metastore_batch_auth_token_get(struct pt_metastore_batch *b, const char *id,
                                      struct pt_auth_token_rec *out);
int pt_metastore_batch_auth_key_get(struct pt_metastore_batch *b, const char *kid,
                                    struct pt_auth_key_rec *out);
/* 1 if any user record exists (staged writes included), 0 if none, or a negative error. */
int pt_metastore_batch_auth_has_users(struct pt_metastore_batch *b);
/* Number of records of kind (staged writes included), counting no further than limit; or a
 * negative error. */
long pt_metastore_batch_auth_count(struct pt_metastore_batch *b, enum pt_auth_rec_kind kind,
                                   size_t limit);
/* 1 if the record of kind named name exists (staged writes included), 0 if not (also for a
 * malformed name), or a negative error. */
int pt_metastore_batch_auth_exists(struct pt_metastore_batch *b, enum pt_auth_rec_kind kind,
                                   const char *name);
/* Creates or replaces a record (r borrowed). */
int pt_metastore_batch_auth_user_put(struct pt_metastore_batch *b,
                                     const struct pt_auth_user_rec *r);
int pt_metastore_batch_auth_token_put(struct pt_metastore_batch *b,
                                      const struct pt_auth_token_rec *r);
int pt_metastore_batch_auth_anonymous_put(struct pt_metastore_batch *b, const char *pattern);
int pt_metastore_batch_auth_key_put(struct pt_metastore_batch *b, const struct pt_auth_key_rec *r);
int pt_metastore_batch_auth_revoked_put(struct pt_metastore_batch *b,
                                        const struct pt_auth_revoked_rec *r);
/* Deletes a record; an absent one is not an error. PT_E_CONFIG for a malformed name. */
int pt_metastore_batch_auth_user_delete(struct pt_metastore_batch *b, const char *name);
int pt_metastore_batch_auth_token_delete(struct pt_metastore_batch *b, const char *id);
int pt_metastore_batch_auth_anonymous_delete(struct pt_metastore_batch *b, const char *pattern);
/* Deletes every revoked token id whose expires_ms <= now_ms (staged writes included). */
int pt_metastore_batch_auth_revoked_purge(struct pt_metastore_batch *b, int64_t now_ms);

/* ---- storage quotas, usage and throttling settings (metastore_quota.c,
 * metastore_throttle.c; key schema drawn there) ------------------------------------------ */

#define PT_METASTORE_QUOTAS_MAX           256
#define PT_METASTORE_QUOTA_PATTERN_MAX    PT_ACCESS_PATTERN_MAX
#define PT_QUOTA_REGISTRY                 "*" /* the quota pattern of the whole registry */
#define PT_METASTORE_THROTTLES_MAX        1024
#define PT_METASTORE_THROTTLE_SUBJECT_MAX (6 + PT_ACCESS_NAME_MAX) /* "token:" + id */

struct pt_quota_rec {
    char pattern[PT_METASTORE_QUOTA_PATTERN_MAX + 1];
    uint64_t limit; /* bytes */
};

/* Distinct blobs charged to a repository (or the registry) and their bytes. */
struct pt_usage {
    uint64_t bytes;
    uint64_t blobs;
};

/* Why an addition was refused: the quota, its limit, the usage it was checked against and
 * the bytes the addition would have added. */
struct pt_quota_refusal {
    char pattern[PT_METASTORE_QUOTA_PATTERN_MAX + 1];
    uint64_t limit, used, adding;
};

/* "*" or a repository pattern (oci/access.h). */
bool pt_metastore_quota_pattern_valid(const char *pattern);
/* Every quota, byte-wise sorted by pattern: *out owned (free), NULL when n is 0. */
int pt_metastore_quota_list(struct pt_metastore *ms, struct pt_quota_rec **out, size_t *n);
/* Usage of repo (zeros for a repository without blobs) or of the whole registry. */
int pt_metastore_usage_repo(struct pt_metastore *ms, const char *repo, struct pt_usage *out);
int pt_metastore_usage_registry(struct pt_metastore *ms, struct pt_usage *out);
/* Repositories with blobs after `after` (NULL: from the first), byte-wise sorted, at most max;
 * cb returns nonzero to stop (a negative value is returned). */
int pt_metastore_usage_list(struct pt_metastore *ms, const char *after, size_t max,
                            int (*cb)(void *arg, const char *repo, const struct pt_usage *u),
                            void *arg);
/* Manifests and tags of repo, each counted no further than cap. */
int pt_metastore_repo_counts(struct pt_metastore *ms, const char *repo, size_t cap,
                             uint64_t *manifests, uint64_t *tags);
/* Whether size bytes of digest (NULL: a blob not known yet, counted fully) may be added to
 * repo now: 0, or PT_E_QUOTA_EXCEEDED with *out (may be NULL) naming the quota
 * (metastore_quota.c has the rule). A read of the database, for checks before the FSM's. */
int pt_metastore_quota_admit(struct pt_metastore *ms, const char *repo, const char *digest,
                             uint64_t size, struct pt_quota_refusal *out);
/* The same rule through b for digests[0..n) (each counted once; sizes NULL: the size of
 * each one's link in repo, else its location). */
int pt_metastore_batch_quota_admit(struct pt_metastore_batch *b, const char *repo,
                                   const char *const *digests, const uint64_t *sizes, size_t n,
                                   struct pt_quota_refusal *out);
/* Creates or replaces the quota of pattern: PT_E_CONFIG for a bad pattern, PT_E_TOO_LARGE for
 * a new one past PT_METASTORE_QUOTAS_MAX. */
int pt_metastore_batch_quota_put(struct pt_metastore_batch *b, const char *pattern, uint64_t limit);
/* Deletes it (an absent one is not an error); PT_E_CONFIG for a bad pattern. */
int pt_metastore_batch_quota_delete(struct pt_metastore_batch *b, const char *pattern);

enum pt_throttle_tier {
    PT_THROTTLE_TIER_CUSTOM,
    PT_THROTTLE_TIER_BASIC,
    PT_THROTTLE_TIER_STANDARD,
    PT_THROTTLE_TIER_PREMIUM,
    PT_THROTTLE_TIER_COUNT
};

/* One identity's (or the default) limits; 0 = no limit on that one. */
struct pt_throttle_rec {
    char subject[PT_METASTORE_THROTTLE_SUBJECT_MAX + 1];
    unsigned tier; /* enum pt_throttle_tier */
    uint32_t reads_per_minute, writes_per_minute;
    uint64_t read_bytes_per_second, write_bytes_per_second;
};

/* "default", "anonymous", "user:<name>" or "token:<id>". */
bool pt_metastore_throttle_subject_valid(const char *subject);
/* Every record, byte-wise sorted by subject: *out owned (free), NULL when n is 0. */
int pt_metastore_throttle_list(struct pt_metastore *ms, struct pt_throttle_rec **out, size_t *n);
/* The record of subject, or PT_E_NOT_FOUND. */
int pt_metastore_throttle_get(struct pt_metastore *ms, const char *subject,
                              struct pt_throttle_rec *out);
/* Creates or replaces r (borrowed): PT_E_CONFIG when malformed, PT_E_TOO_LARGE for a new one
 * past PT_METASTORE_THROTTLES_MAX. Moves the auth generation once committed. */
int pt_metastore_batch_throttle_put(struct pt_metastore_batch *b, const struct pt_throttle_rec *r);
int pt_metastore_batch_throttle_delete(struct pt_metastore_batch *b, const char *subject);
/* ---- repository locks, immutable tag rules, retention rules (metastore_policy.c) ---------
 * Replicated records in the default column family (written only by the FSM). Repository
 * patterns follow oci/access.h, tag patterns oci/tagglob.h. */
#define PT_POLICY_LOCKS_MAX     10000 /* lock records in the registry */
#define PT_POLICY_TAG_RULES_MAX 1000
#define PT_POLICY_RETENTION_MAX 1000
#define PT_POLICY_KEEP_LAST_MAX 10000 /* keep_last of one retention rule */
#define PT_POLICY_MSG_MAX       512   /* a refusal's message, with its NUL */

/* The lock of a repository (tag and digest ""), of repo:tag or of repo@digest. */
struct pt_lock_rec {
    char repo[PT_METASTORE_REPO_MAX + 1];
    char tag[PT_METASTORE_TAG_MAX + 1];
    char digest[PT_METASTORE_DIGEST_MAX + 1];
    int write_enabled, delete_enabled;
};

struct pt_tag_rule_rec {
    char repo_pattern[PT_ACCESS_PATTERN_MAX + 1];
    char tag_pattern[PT_METASTORE_TAG_MAX + 1];
};

struct pt_retention_rec {
    char repo_pattern[PT_ACCESS_PATTERN_MAX + 1];
    int64_t untagged_older_than_ms; /* 0: off */
    uint32_t keep_last;             /* 0: off */
    char tag_pattern[PT_METASTORE_TAG_MAX + 1];
};

/* Stages a lock (validated: PT_E_CONFIG; a new one past PT_POLICY_LOCKS_MAX: PT_E_TOO_LARGE).
 * Both flags set removes the record. r borrowed. */
int pt_metastore_batch_lock_put(struct pt_metastore_batch *b, const struct pt_lock_rec *r);
/* Stages (put) or removes an immutable tag rule; PT_E_CONFIG when malformed, PT_E_TOO_LARGE
 * past PT_POLICY_TAG_RULES_MAX; removing an absent rule is a no-op. */
int pt_metastore_batch_tag_rule_put(struct pt_metastore_batch *b, const char *repo_pattern,
                                    const char *tag_pattern, bool put);
/* Stages (replaces) the retention rule of r->repo_pattern, or removes it (a no-op if
 * absent). PT_E_CONFIG when malformed (both parts off, negative age, keep_last over its max),
 * PT_E_TOO_LARGE past PT_POLICY_RETENTION_MAX. */
int pt_metastore_batch_retention_put(struct pt_metastore_batch *b,
                                     const struct pt_retention_rec *r);
int pt_metastore_batch_retention_delete(struct pt_metastore_batch *b, const char *repo_pattern);

/* What a write would do, for the policy checks. */
enum pt_policy_act {
    PT_POLICY_PUSH,            /* store a manifest in repo (digest: the manifest) */
    PT_POLICY_TAG_WRITE,       /* point repo:tag at digest */
    PT_POLICY_TAG_DELETE,      /* delete repo:tag */
    PT_POLICY_MANIFEST_DELETE, /* delete repo@digest and every tag naming it */
    PT_POLICY_BLOB_DELETE,     /* unlink a blob from repo */
};

/* The checks of the locks and the immutable tag rules, through b's staged writes (the FSM) or
 * the committed state (pt_metastore_policy_explain, for the message of a refusal the FSM
 * made). Strings borrowed; tag / digest may be NULL where act does not use them. Returns 0
 * (allowed), PT_E_LOCKED, PT_E_IMMUTABLE or a negative I/O error; explain writes a message
 * naming the lock or rule into msg (cap bytes) on a refusal. */
int pt_metastore_batch_policy_check(struct pt_metastore_batch *b, enum pt_policy_act act,
                                    const char *repo, const char *tag, const char *digest);
int pt_metastore_policy_explain(struct pt_metastore *ms, enum pt_policy_act act, const char *repo,
                                const char *tag, const char *digest, char *msg, size_t cap);

/* Listings of the records (committed state), in key order; a callback returning non-zero
 * stops the walk and that value is returned. repo NULL: every lock, else those of repo. */
int pt_metastore_locks_list(struct pt_metastore *ms, const char *repo,
                            int (*cb)(const struct pt_lock_rec *r, void *arg), void *arg);
int pt_metastore_tag_rules_list(struct pt_metastore *ms,
                                int (*cb)(const struct pt_tag_rule_rec *r, void *arg), void *arg);
int pt_metastore_retention_list(struct pt_metastore *ms,
                                int (*cb)(const struct pt_retention_rec *r, void *arg), void *arg);

/*
 * Retention. pt_metastore_retention_plan walks every repository matched by a retention rule
 * (every matching rule applies) as of now_ms and reports what the rules would delete: for
 * keep_last, the matching tags past the keep_last most recently updated (ties: by tag name)
 * that no lock or immutable rule holds; for untagged_older_than_ms, the manifests that are (or,
 * with those tags gone, would be) untagged, pushed at least that long before now_ms, not
 * delete-locked, with no referrer, no subject still present and not a child of another
 * manifest of the repository. tag_cb and man_cb (return non-zero to stop) see one item at a
 * time; memory is bounded by the rules (keep_last entries per rule and repository), never
 * by the number of tags or manifests. Tags of a repository come before its manifests.
 *
 * At apply, pt_metastore_batch_retain_tag re-checks a tag (it still names digest, and may
 * be deleted) and pt_metastore_batch_retain_manifests the manifests items[0..n) (the same rule
 * as the plan, through the batch, as of now_ms), setting *ok / ok[i] to 1 when the item may go
 * (the FSM deletes it) or 0 when it stays. Both return 0 or a negative I/O error. The checks
 * that need every tag or manifest of a repository (tagged? a child of an index?) are one walk
 * per repository and call, whatever the number of items, so the apply costs O(items + tags and
 * manifests of their repositories), never their product.
 */
int pt_metastore_retention_plan(struct pt_metastore *ms, int64_t now_ms,
                                int (*tag_cb)(const char *repo, const char *tag, const char *digest,
                                              void *arg),
                                int (*man_cb)(const char *repo, const char *digest,
                                              int64_t older_than_ms, void *arg),
                                void *arg);
int pt_metastore_batch_retain_tag(struct pt_metastore_batch *b, const char *repo, const char *tag,
                                  const char *digest, int *ok);
/* One manifest of a Retain (strings borrowed). */
struct pt_retain_item {
    const char *repo, *digest;
    int64_t older_than_ms;
};
/* Most manifests one pt_metastore_batch_retain_manifests call re-checks, and the most the plan
 * gathers before it filters them (PT_E_TOO_LARGE past it). */
#define PT_POLICY_RETAIN_BATCH_MAX 1000
int pt_metastore_batch_retain_manifests(struct pt_metastore_batch *b,
                                        const struct pt_retain_item *items, size_t n,
                                        int64_t now_ms, int *ok);

#endif
