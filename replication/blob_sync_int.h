/*
 * blob_sync_int.h - what the pieces of blob replication share (private to replication/
 * blob_sync*.c; the API is blob_sync.h).
 *
 * The module is one service in five files, each one concept:
 *   blob_sync.c            the service: start, regions, tick, status and metrics, stop
 *   blob_sync_scan.c       the queue of missing blobs: scans of blob_locations, scheduling
 *   blob_sync_transfers.c  one blob fetched: open, BlobWant/BlobChunk window, write, record,
 *                          verify, announce
 *   blob_sync_serve.c      other regions' BlobWants answered from this region's blob store
 *   blob_sync_feeds.c      readers of a blob still arriving (pt_blob_feed, pt_blob_sync_feed)
 * and blob_sync_wire.h declares the BlobWant encoding apart, for the tests.
 *
 * Threads: everything here is owned by the raft loop, except struct pt_blob_feed (its own
 * mutex, see blob_sync.h). Names shared between the files carry the bsync_ prefix: global
 * across the module, not part of its API.
 */
#ifndef PT_BLOB_SYNC_INT_H
#define PT_BLOB_SYNC_INT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "blob_sync.h"
#include "blob_sync_wire.h"
#include "blobstore.h"
#include "digest.h"
#include "peer.h"
#include "peer.pb-c.h"

#define TICK_MS          50
#define MAX_HOLDERS      16
#define MAX_REGIONS      PT_PEERS_MAX
#define REQUEST_TIMEOUT  60000 /* ms for one piece, however slow the link */
#define BUSY_RETRY_MS    100   /* the holder said TOOMANYREQUESTS */
#define RETRY_MIN_MS     500   /* a transfer that found no holder, or failed, waits this.. */
#define RETRY_MAX_MS     10000 /* ..doubling up to this */
#define HOLDER_AVOID_MS  5000  /* a holder that failed is passed over for this long */
#define WRITE_BATCH      (4u * 1024 * 1024)
#define TRANSFER_REPO    "@transfer" /* the session's repo: never a repository name */
#define DEFAULT_PARALLEL 4
#define RECENT           256 /* blobs recorded as stored here lately, see `recent` */
/* Readers of a blob that made no progress for this long get an error (503) instead of
 * waiting on: no holder reachable. The transfer itself goes on. */
#define STALL_MS 30000

enum { T_OPENING, T_FETCHING, T_COMMITTING, T_ANNOUNCING, T_WAITING, T_DONE };

struct region {
    uint64_t id;
    char name[64];
    uint64_t avoid_until; /* loop time (ms) */
};

/* A blob this region lacks, as a scan found it. */
struct want {
    char digest[PT_DIGEST_STR_MAX + 1];
    uint64_t size;
    unsigned nholders;
    uint64_t holders[MAX_HOLDERS];
    uint64_t first_ms; /* loop time it was first seen missing */
    uint64_t retry_ms; /* loop time before which it is not started again */
    unsigned failures;
};

/* A piece received, waiting to be written. */
struct chunk {
    struct chunk *next;
    uint64_t offset;
    Portolan__BlobChunk *msg; /* owned; the bytes are msg->data */
};

/* One digest being fetched (blob_sync_transfers.c); owned by s->transfers. */
struct transfer {
    struct pt_blob_sync *s;
    struct transfer *next;
    char digest[PT_DIGEST_STR_MAX + 1];
    struct pt_digest d;
    uint64_t size;
    int demand; /* started for a waiting client: outside the background limit */
    int state;
    unsigned nholders;
    uint64_t holders[MAX_HOLDERS];
    uint64_t holder; /* the region asked now, 0 = none chosen */
    struct pt_upload u;
    uint64_t durable;   /* offset of the last durable record (loop) */
    uint64_t offset;    /* u.offset as of the last work item: the loop's own copy */
    uint64_t want_next; /* next offset to ask for */
    unsigned inflight;  /* BlobWants in flight, of every generation */
    unsigned generation;
    struct chunk *ready;
    size_t ready_bytes;
    int busy; /* a work item runs */
    uint64_t retry_ms;
    uint64_t progress_ms; /* loop time of the last piece received (or of the start) */
    unsigned backoff_ms;
    unsigned verify_failures; /* in a row, from the current holder */
    struct pt_blob_feed *feed;
    /* the work item */
    uv_work_t work;
    int work_rv;
    int present;           /* OPENING found the blob stored already */
    int fd;                /* OPENING: the read descriptor for the feed */
    struct chunk *writing; /* the run being written */
    /* the background record of progress (sync_work) */
    uv_work_t sync_work;
    struct pt_upload snap; /* the session as of the sync's start */
    int syncing;
    int sync_rv;
};

struct pt_blob_sync {
    uv_loop_t *loop;
    struct pt_metastore *ms;
    struct pt_blobstore *bs;
    struct pt_blob_sync_config cfg;
    pt_blob_sync_propose_fn propose;
    void *propose_arg;
    struct pt_peers *bulk;
    uv_timer_t tick;
    struct region regions[MAX_REGIONS];
    unsigned nregions;
    struct want *queue; /* owned; sorted by digest */
    size_t nqueue;
    uint64_t behind_blobs, behind_bytes; /* as of the last scan */
    struct transfer *transfers;
    /* Blobs whose BlobStored committed lately, with the loop time: a scan that started
     * before that still lists them as missing, so schedule passes them over. */
    struct {
        char digest[PT_DIGEST_STR_MAX + 1];
        uint64_t at_ms;
    } recent[RECENT];
    unsigned recent_next;
    unsigned ticks;
    int dirty;    /* replicated state changed since the last scan started */
    int scanning; /* a scan runs */
    uint64_t last_scan_ms;
    double tokens; /* bandwidth limit: bytes that may be asked for now */
    uint64_t tokens_ms;
    unsigned serving;
    /* counters, for status and metrics */
    uint64_t bytes_received, bytes_sent, blobs_fetched, verify_failures, resumed;
    int stopping;
    unsigned pending; /* work items, proposals and handles not finished */
    void (*stop_cb)(void *arg);
    void *stop_arg;
};

/* The blob of t was collected (no region is recorded as its holder): a transfer that is
 * fetching or waiting ends, and its session (file and record) is removed on the pool; one in
 * another state is left alone (a later scan looks again; an announcement is refused). */
void bsync_transfer_abandon(struct transfer *t);

/* ---- blob_sync.c: the service ---------------------------------------------------------- */

/* Wall-clock time in ms: only for the records kept (session times, command timestamps). */
int64_t bsync_wall_ms(void);
/* The region of raft id `id`, or NULL. */
struct region *bsync_region_by_id(struct pt_blob_sync *s, uint64_t id);
/* Queues a work item counted in s->pending; its after callback ends with bsync_done(s). */
void bsync_queue_work(struct pt_blob_sync *s, uv_work_t *work, uv_work_cb fn,
                      uv_after_work_cb after);
/* One pending thing (work item, proposal, handle) finished: s may be freed here. */
void bsync_done(struct pt_blob_sync *s);
/* Frees s (and calls its stop callback) when stopping and nothing is pending. */
void bsync_maybe_stopped(struct pt_blob_sync *s);

/* ---- blob_sync_scan.c: the queue of missing blobs --------------------------------------- */

/* The queued want for digest (borrowed), or NULL. */
struct want *bsync_queue_find(struct pt_blob_sync *s, const char *digest);
/* BlobStored{this region} committed for digest: it leaves the queue at once, and scans begun
 * before now do not bring it back. */
void bsync_queue_stored(struct pt_blob_sync *s, const char *digest, uint64_t size);
/* The ids of the regions named (up to MAX_HOLDERS, in order; unknown names are skipped). */
unsigned bsync_holder_ids(const struct region *regions, unsigned nregions, const char *const *names,
                          size_t n, uint64_t *ids);
/* Starts a scan of blob_locations on the thread pool (none when out of memory). */
void bsync_start_scan(struct pt_blob_sync *s);
/* Starts background transfers up to the limit. */
void bsync_schedule(struct pt_blob_sync *s);

/* ---- blob_sync_transfers.c: one blob fetched -------------------------------------------- */

/* The transfer of digest (borrowed) that is not DONE, or NULL. */
struct transfer *bsync_transfer_find(struct pt_blob_sync *s, const char *digest);
/* Starts fetching digest (borrowed, copied) from holders (borrowed, copied): the transfer,
 * owned by s->transfers, or NULL (out of memory, bad digest). */
struct transfer *bsync_transfer_new(struct pt_blob_sync *s, const char *digest, uint64_t size,
                                    const uint64_t *holders, unsigned nholders, int demand);
/* The tick's share of t (now: loop time): stalled readers, retries whose time came, and more
 * pieces asked for. Never frees t. */
void bsync_transfer_tick(struct transfer *t, uint64_t now);
/* The service stops: t's readers fail and its answers still to come are dropped. */
void bsync_transfer_stop(struct transfer *t);
/* Frees t (already unlinked) once the service stopped: nothing of it is pending. */
void bsync_transfer_free(struct transfer *t);

/* ---- blob_sync_serve.c: serving other regions ------------------------------------------- */

/* The BULK channels' request callback (pt_peers_init): answers a BlobWant. */
void bsync_serve_request(void *arg, uint64_t from, uint32_t type, const void *body, size_t len,
                         struct pt_peer_call *call);

/* ---- blob_sync_feeds.c: readers of a blob still arriving -------------------------------- */

/* A feed of size bytes, RUNNING, no file yet, one reference (returned owned); NULL. */
struct pt_blob_feed *bsync_feed_new(uint64_t size);
/* Publishes progress (fd once: transferred, closed if the feed has one; written, state) and
 * wakes every waiting reader. A feed that left RUNNING keeps its state. */
void bsync_feed_update(struct pt_blob_feed *f, int fd, uint64_t written, int state, int error);
/* Takes one more reference to f (returned). */
struct pt_blob_feed *bsync_feed_ref(struct pt_blob_feed *f);

#endif
