/*
 * blob_sync.h - blob replication between regions (DESIGN.md section 5).
 *
 * Every region converges to holding every blob: `blob_locations` (replicated) says which
 * regions hold which blob verified; this service fetches each blob this region lacks from the
 * nearest holder (lowest RTT on the BULK peer channels), verifies its digest, renames it into
 * the blob store and proposes BlobStored{this region}. It also serves the blobs this region
 * holds to the other regions.
 *
 * - Transfers pull a blob with BlobWant/BlobChunk (proto/peer.proto) over the BULK channels of
 *   the raft transport, at most PT_BLOB_SYNC_WINDOW pieces in flight each: that window bounds
 *   memory on both sides and keeps a long link full. The bytes go to an upload session whose
 *   id is named after the digest (blob_sync_session.c), hashed as they are written; its state is
 * recorded (local_blobs column family) every PT_BLOB_SYNC_SYNC_EVERY bytes after an fdatasync, so a
 *   transfer resumes from its last durable offset after a dropped link, a crash or a restart.
 *   A blob whose digest does not verify is discarded and fetched again.
 * - Background: a scan of the store's index of the blobs this region lacks
 *   (pt_metastore_missing_page: it costs what is missing, not what the registry holds; after
 *   every change to replicated state, at most every PT_BLOB_SYNC_SCAN_MS, and on a timer only
 *   while something is missing) lists what is missing; up to `concurrency`
 *   background transfers run at once; `bandwidth` caps the bytes received per
 *   second over all transfers.
 * - On demand: a client GET of a blob this region lacks attaches to that blob's transfer
 *   (started at once, ahead of the background queue, if none runs): pt_blob_sync_feed. One
 *   transfer per digest, whatever the number of readers.
 *
 * Threads: everything runs on the raft loop (the committer's thread), except struct
 * pt_blob_feed, which is shared with the HTTP workers and guarded by its own mutex.
 * Disk I/O and hashing run on the libuv thread pool, never on the loop.
 */
#ifndef PT_BLOB_SYNC_H
#define PT_BLOB_SYNC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include <raft.h>
#include <raft/uv.h>

#include "bounds.h"
#include "digest.h"
#include "mailbox.h"

struct pt_metastore;
struct pt_blobstore;
struct pt_blob_sync;

/* Largest piece one BlobWant may ask for, and the piece a transfer asks for. */
#define PT_BLOB_SYNC_CHUNK_MAX (4u * 1024 * 1024)
#define PT_BLOB_SYNC_CHUNK     (1u * 1024 * 1024)
/* Pieces in flight per transfer (12 MiB: a 100 MB/s link with a 100 ms RTT stays full). */
#define PT_BLOB_SYNC_WINDOW 12
/* Bytes between two durable records of a transfer's progress. */
#define PT_BLOB_SYNC_SYNC_EVERY (16u * 1024 * 1024)
/* Shortest interval between two scans for missing blobs, and the longest while some are
 * missing (a region in sync scans only after a change). */
#define PT_BLOB_SYNC_SCAN_MS   50
#define PT_BLOB_SYNC_RESCAN_MS 30000
/* Missing blobs remembered per scan (the rest are found by later scans). */
#define PT_BLOB_SYNC_QUEUE_MAX 4096
/* Reads of blobs served to other regions in flight at once; beyond, TOOMANYREQUESTS. */
#define PT_BLOB_SYNC_SERVE_MAX 128

struct pt_blob_sync_config {
    char region[64];      /* this region's name, as BlobStored records it */
    uint64_t self_id;     /* this region's raft id */
    unsigned concurrency; /* background transfers at once (0 = 4) */
    uint64_t bandwidth;   /* bytes per second received over all transfers (0 = unlimited) */
    /* Whether server id is a current member; blob requests from others are refused
     * (PT_E_DENIED). NULL: any region that holds a channel. Runs on the loop. */
    bool (*is_member)(void *member_arg, uint64_t id);
    void *member_arg;
};

/*
 * Proposes an encoded portolan.Command (buf transferred: free()) through raft; done(arg,
 * status) exactly once on the loop, never from inside the call. Given by raft_node.c.
 */
typedef void (*pt_blob_sync_done_cb)(void *arg, int status, uint64_t index);
typedef void (*pt_blob_sync_propose_fn)(void *propose_arg, void *buf, size_t len,
                                        pt_blob_sync_done_cb done, void *arg);

/*
 * Starts the service on loop (the raft loop) and transport t (borrowed; the BULK channels
 * are registered on it here, so call after raft_init and before raft_start). ms and bs are
 * borrowed and must outlive the service; cfg is copied. Returns 0 or PT_E_*.
 */
int pt_blob_sync_start(uv_loop_t *loop, struct raft_uv_transport *t, struct pt_metastore *ms,
                       struct pt_blobstore *bs, const struct pt_blob_sync_config *cfg,
                       pt_blob_sync_propose_fn propose, void *propose_arg,
                       struct pt_blob_sync **out);

/* The address (borrowed, copied) and name (borrowed, copied) of region id: where its blobs
 * are fetched from, and how blob_locations names it. Call for every other region. */
int pt_blob_sync_set_region(struct pt_blob_sync *s, uint64_t id, const char *name,
                            const char *address);

/* Replicated state changed (an entry was applied or a snapshot restored): scan again soon. */
void pt_blob_sync_changed(struct pt_blob_sync *s);

/* This region's replication status as JSON (owned: free()), the shape of GET
 * /admin/replication (node/api_admin.c); NULL when out of memory. */
char *pt_blob_sync_status_json(struct pt_blob_sync *s);

/* Stops every transfer (their progress stays recorded) and the BULK channels; cb(arg) once
 * everything is closed, then s is freed. Feeds still referenced fail. */
void pt_blob_sync_stop(struct pt_blob_sync *s, void (*cb)(void *arg), void *arg);

/* ---- Feeds: readers of a blob that is still arriving --------------------------------- */

enum { PT_FEED_RUNNING = 0, PT_FEED_DONE, PT_FEED_FAILED };

/* A reader waiting for more bytes: posted to its mailbox when the feed moves on. Embedded in
 * the reader's own state; borrowed by the feed from pt_blob_feed_wait until posted or
 * withdrawn. */
struct pt_feed_waiter {
    struct pt_mail mail;
    struct pt_feed_waiter *next;
    struct pt_mailbox *mailbox; /* where to post mail */
    pt_mail_cb cb;              /* its callback */
};

/*
 * One blob being fetched, shared between the raft loop (which writes it) and any number of
 * readers on HTTP workers. Reference counted; the fields below the lock are read under it.
 */
struct pt_blob_feed {
    atomic_uint refs;
    pthread_mutex_t lock;
    int fd;           /* read-only, the transfer's file (stays valid once renamed); const */
    uint64_t size;    /* the blob's size; const */
    uint64_t written; /* bytes [0, written) are in the file */
    int state;        /* PT_FEED_*; DONE: all bytes verified and stored */
    int error;        /* FAILED: why (PT_E_*) */
    struct pt_feed_waiter *waiters;
};

/*
 * Raft loop: attaches to the transfer of digest (borrowed), starting it now if none runs.
 * size is the blob's size from the repo link (blob_locations' wins). The HTTP side gets here
 * through a committer job (PT_JOB_BLOB_FEED).
 * On success *feed holds a reference the caller releases with pt_blob_feed_release.
 * PT_E_BLOB_UNKNOWN when no other region holds it; PT_E_UNAVAILABLE when stopping.
 */
int pt_blob_sync_feed(struct pt_blob_sync *s, const char *digest, uint64_t size,
                      struct pt_blob_feed **feed);

/* Any thread: how far a reader may read now. *avail gets the bytes readable ([0, avail)),
 * held back by one byte until the blob verified, so that no reader finishes a blob that may
 * turn out corrupt. Returns the feed's state; for FAILED, *error gets why. When RUNNING and
 * the reader has read everything available, w (may be NULL) is registered and posted once
 * more is (or the state changes). */
int pt_blob_feed_poll(struct pt_blob_feed *f, uint64_t pos, uint64_t *avail, int *error,
                      struct pt_feed_waiter *w);
/* Any thread: withdraws w if still registered; 1 if it was (it will never be posted), 0 if it
 * was posted already (its mail callback is pending or ran). */
int pt_blob_feed_withdraw(struct pt_blob_feed *f, struct pt_feed_waiter *w);
/* Any thread: drops a reference; the last one closes the file and frees f. */
void pt_blob_feed_release(struct pt_blob_feed *f);

/*
 * Writes to id the upload session id of the transfer of blob *d (borrowed): the hex of a
 * sha256 digest, "512-" and the first 60 hex of a sha512 one (blob_sync_session.c).
 */
void pt_blob_sync_session_id(const struct pt_digest *d, char id[PT_UPLOAD_ID_MAX + 1]);

/*
 * For the start-up sweep of upload files: 1 if id (borrowed) names the session of a transfer
 * recorded in ms (borrowed), or when that cannot be read (the file is kept); 0 if not. Blocks
 * on the database: off the event loop.
 */
int pt_blob_sync_session_live(struct pt_metastore *ms, const char *id);

#endif
