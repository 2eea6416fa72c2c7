/*
 * blob_sync.c - blob replication between regions (see blob_sync.h).
 *
 * Pieces, all on the raft loop:
 *   bulk       a pt_peers service on the transport's BULK channels: this region's requests
 *              for pieces of blobs, and the other regions' requests to this one (serve_*).
 *   queue      the blobs this region lacks, as the last scan of blob_locations found them
 *              (sorted by digest), with when each was first seen missing and when it may be
 *              tried again after a failure.
 *   transfers  one per digest being fetched: background ones (at most `concurrency`) and
 *              on-demand ones (a client is waiting; never queued behind the others).
 *
 * A transfer:
 *   OPENING     (pool) the blob may be here already (stored, but not yet recorded); else its
 *               recorded session is repaired and resumed, or a new one begins at offset 0.
 *   FETCHING    BlobWants go to the holder with the lowest RTT, up to PT_BLOB_SYNC_WINDOW
 *               in flight; answers wait in `ready` (sorted by offset) until the piece at the
 *               session's offset is there, then (pool) the contiguous run is written and
 *               hashed; every PT_BLOB_SYNC_SYNC_EVERY bytes the file is fdatasync'd and the
 *               session recorded. An error from the holder bumps `generation` (answers of
 *               older generations are dropped), drops what waits in `ready`, and asks again
 *               from the session's offset: of another holder, or of the same one later.
 *   COMMITTING  (pool) the upload commit verifies the digest and renames the file into
 *               blobs/; a mismatch discards the session and the transfer begins again.
 *   ANNOUNCING  BlobStored{this region} is proposed; when it fails (no quorum) the blob is
 *               found again by a later scan, present, and announced again.
 *   WAITING     nothing to do until retry_ms (no holder reachable, or an I/O error).
 *   DONE        kept until its last BlobWant answer came back, then freed.
 *
 * Invariants: a transfer's session (u) is touched by the loop only while no work item runs
 * (busy == 0). A transfer is freed only when DONE, not busy and with no BlobWant in flight.
 * The service is freed when stopping and nothing is pending (work items, proposals, handles).
 */
#include "blob_sync.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

#include "blobstore.h"
#include "command.h"
#include "digest.h"
#include "err.h"
#include "log.h"
#include "metastore.h"
#include "metrics.h"
#include "peer.h"
#include "peer.pb-c.h"
#include "transport.h"

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

struct want {
    char digest[PT_DIGEST_STR_LEN + 1];
    uint64_t size;
    unsigned nholders;
    uint64_t holders[MAX_HOLDERS];
    uint64_t first_ms; /* loop time it was first seen missing */
    uint64_t retry_ms; /* loop time before which it is not started again */
    unsigned failures;
};

struct chunk {
    struct chunk *next;
    uint64_t offset;
    Portolan__BlobChunk *msg; /* owned; the bytes are msg->data */
};

struct transfer {
    struct pt_blob_sync *s;
    struct transfer *next;
    char digest[PT_DIGEST_STR_LEN + 1];
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

struct want_call {
    struct transfer *t;
    unsigned generation;
    uint64_t offset;
    uint32_t len;
};

struct serve {
    struct pt_blob_sync *s;
    uv_work_t work;
    struct pt_peer_call *call;
    struct pt_digest d;
    uint64_t offset;
    uint32_t len;
    int rv;
    uint64_t size;
    size_t got;
    unsigned char *buf;
};

struct scan {
    struct pt_blob_sync *s;
    uv_work_t work;
    char region[64];
    struct region regions[MAX_REGIONS];
    unsigned nregions;
    struct want *wants; /* up to PT_BLOB_SYNC_QUEUE_MAX, sorted by digest */
    size_t n;
    uint64_t total_blobs, total_bytes;
    int rv;
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
        char digest[PT_DIGEST_STR_LEN + 1];
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

static void pump(struct transfer *t);
static void schedule(struct pt_blob_sync *s);
static void start_open(struct transfer *t);
static void maybe_write(struct transfer *t);
static void maybe_free(struct transfer *t);
static void maybe_stopped(struct pt_blob_sync *s);
static void announce(struct transfer *t);

static int64_t wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static struct region *region_by_id(struct pt_blob_sync *s, uint64_t id)
{
    for (unsigned i = 0; i < s->nregions; i++)
        if (s->regions[i].id == id)
            return &s->regions[i];
    return NULL;
}

/* ---- Feeds ------------------------------------------------------------------------------ */

static struct pt_blob_feed *feed_new(uint64_t size)
{
    struct pt_blob_feed *f = calloc(1, sizeof(*f));
    if (f == NULL)
        return NULL;
    atomic_init(&f->refs, 1);
    pthread_mutex_init(&f->lock, NULL);
    f->fd = -1;
    f->size = size;
    f->state = PT_FEED_RUNNING;
    return f;
}

/* Loop: publishes progress (fd once, written, state) and wakes every waiting reader. */
static void feed_update(struct pt_blob_feed *f, int fd, uint64_t written, int state, int error)
{
    pthread_mutex_lock(&f->lock);
    if (fd >= 0 && f->fd < 0)
        f->fd = fd;
    else if (fd >= 0)
        close(fd);
    if (written > f->written)
        f->written = written;
    if (f->state == PT_FEED_RUNNING) {
        f->state = state;
        f->error = error;
    }
    struct pt_feed_waiter *w = f->waiters;
    f->waiters = NULL;
    pthread_mutex_unlock(&f->lock);
    while (w != NULL) {
        struct pt_feed_waiter *next = w->next;
        pt_mailbox_post(w->mailbox, &w->mail, w->cb);
        w = next;
    }
}

int pt_blob_feed_poll(struct pt_blob_feed *f, uint64_t pos, uint64_t *avail, int *error,
                      struct pt_feed_waiter *w)
{
    pthread_mutex_lock(&f->lock);
    int state = f->state;
    uint64_t a = f->written;
    if (state == PT_FEED_DONE)
        a = f->size;
    else if (f->size > 0 && a >= f->size)
        a = f->size - 1; /* the last byte waits for the digest */
    if (f->fd < 0)
        a = 0;
    *avail = a;
    *error = f->error;
    if (state == PT_FEED_RUNNING && pos >= a && w != NULL) {
        w->next = f->waiters;
        f->waiters = w;
    }
    pthread_mutex_unlock(&f->lock);
    return state;
}

int pt_blob_feed_withdraw(struct pt_blob_feed *f, struct pt_feed_waiter *w)
{
    int found = 0;
    pthread_mutex_lock(&f->lock);
    for (struct pt_feed_waiter **pp = &f->waiters; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == w) {
            *pp = w->next;
            found = 1;
            break;
        }
    }
    pthread_mutex_unlock(&f->lock);
    return found;
}

void pt_blob_feed_release(struct pt_blob_feed *f)
{
    if (f == NULL || atomic_fetch_sub(&f->refs, 1) != 1)
        return;
    if (f->fd >= 0)
        close(f->fd);
    pthread_mutex_destroy(&f->lock);
    free(f);
}

static struct pt_blob_feed *feed_ref(struct pt_blob_feed *f)
{
    atomic_fetch_add(&f->refs, 1);
    return f;
}

/* ---- Work items ------------------------------------------------------------------------- */

static void queue_work(struct pt_blob_sync *s, uv_work_t *work, uv_work_cb fn,
                       uv_after_work_cb after)
{
    s->pending++;
    int rv = uv_queue_work(s->loop, work, fn, after);
    if (rv != 0) { /* only for a NULL callback: cannot happen */
        pt_log(PT_LOG_ERROR, "blob sync: work not queued", "{s:s}", "error", uv_strerror(rv));
        abort();
    }
}

static void work_done(struct pt_blob_sync *s)
{
    s->pending--;
    maybe_stopped(s);
}

/* ---- Holders ---------------------------------------------------------------------------- */

/* The holder to ask: the reachable one with the lowest RTT, not avoided; 0 if none. */
static uint64_t pick_holder(struct transfer *t)
{
    struct pt_blob_sync *s = t->s;
    uint64_t now = uv_now(s->loop), best = 0;
    int64_t best_rtt = 0;
    for (unsigned i = 0; i < t->nholders; i++) {
        struct region *r = region_by_id(s, t->holders[i]);
        if (r == NULL || r->avoid_until > now)
            continue;
        int64_t rtt = pt_peers_rtt_us(s->bulk, r->id);
        if (rtt < 0)
            rtt = INT64_MAX / 2; /* not measured yet: after every measured one */
        if (best == 0 || rtt < best_rtt) {
            best = r->id;
            best_rtt = rtt;
        }
    }
    return best;
}

static void avoid_holder(struct pt_blob_sync *s, uint64_t id)
{
    struct region *r = region_by_id(s, id);
    if (r != NULL)
        r->avoid_until = uv_now(s->loop) + HOLDER_AVOID_MS;
}

/* ---- Transfers: life cycle -------------------------------------------------------------- */

static struct transfer *transfer_find(struct pt_blob_sync *s, const char *digest)
{
    for (struct transfer *t = s->transfers; t != NULL; t = t->next)
        if (t->state != T_DONE && strcmp(t->digest, digest) == 0)
            return t;
    return NULL;
}

/* Frees every piece of *list and empties it. */
static void free_chunks(struct chunk **list)
{
    while (*list != NULL) {
        struct chunk *c = *list;
        *list = c->next;
        portolan__blob_chunk__free_unpacked(c->msg, NULL);
        free(c);
    }
}

static void drop_ready(struct transfer *t)
{
    free_chunks(&t->ready);
    t->ready_bytes = 0;
}

static struct want *queue_find(struct pt_blob_sync *s, const char *digest)
{
    size_t lo = 0, hi = s->nqueue;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = strcmp(s->queue[mid].digest, digest);
        if (c == 0)
            return &s->queue[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

/* Ends t: DONE, its feed failed with error unless it completed, freed when nothing is left in
 * flight. retry_ms > 0 keeps the blob from being started again before then. */
static void transfer_end(struct transfer *t, int error, uint64_t retry_ms)
{
    struct pt_blob_sync *s = t->s;
    if (t->feed != NULL) {
        feed_update(t->feed, -1, 0, PT_FEED_FAILED, error != 0 ? error : PT_E_UNAVAILABLE);
        pt_blob_feed_release(t->feed);
        t->feed = NULL;
    }
    struct want *w = queue_find(s, t->digest);
    if (w != NULL && retry_ms > 0) {
        w->retry_ms = retry_ms;
        w->failures++;
    }
    t->state = T_DONE;
    t->generation++;
    drop_ready(t);
    maybe_free(t);
    if (!s->stopping)
        schedule(s);
}

static void maybe_free(struct transfer *t)
{
    if (t->state != T_DONE || t->busy || t->syncing || t->inflight > 0)
        return;
    struct pt_blob_sync *s = t->s;
    for (struct transfer **pp = &s->transfers; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    }
    free(t);
    maybe_stopped(s);
}

static struct transfer *transfer_new(struct pt_blob_sync *s, const char *digest, uint64_t size,
                                     const uint64_t *holders, unsigned nholders, int demand)
{
    struct transfer *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if (pt_digest_parse(digest, strlen(digest), &t->d) != 0) {
        free(t);
        return NULL;
    }
    t->feed = feed_new(size);
    if (t->feed == NULL) {
        free(t);
        return NULL;
    }
    t->s = s;
    snprintf(t->digest, sizeof(t->digest), "%s", digest);
    t->size = size;
    t->demand = demand;
    t->nholders = nholders < MAX_HOLDERS ? nholders : MAX_HOLDERS;
    memcpy(t->holders, holders, t->nholders * sizeof(*holders));
    t->backoff_ms = RETRY_MIN_MS;
    t->progress_ms = uv_now(s->loop);
    t->fd = -1;
    t->next = s->transfers;
    s->transfers = t;
    start_open(t);
    return t;
}

/* Something went wrong fetching: ask again from the session's offset, of another holder now
 * or of any holder after a backoff. */
static void fetch_failed(struct transfer *t, int status, uint64_t holder)
{
    struct pt_blob_sync *s = t->s;
    t->generation++;
    drop_ready(t);
    t->want_next = t->offset; /* a run being written moves it on when it completes */
    if (t->busy && t->writing != NULL) {
        for (struct chunk *c = t->writing; c != NULL; c = c->next)
            t->want_next = c->offset + c->msg->data.len;
    }
    if (status != PT_E_TOOMANYREQUESTS && holder != 0)
        avoid_holder(s, holder);
    t->holder = status == PT_E_TOOMANYREQUESTS ? holder : pick_holder(t);
    if (t->holder == 0 || status == PT_E_TOOMANYREQUESTS) {
        t->state = T_WAITING;
        t->retry_ms =
            uv_now(s->loop) + (status == PT_E_TOOMANYREQUESTS ? BUSY_RETRY_MS : t->backoff_ms);
        if (status != PT_E_TOOMANYREQUESTS && t->backoff_ms < RETRY_MAX_MS)
            t->backoff_ms *= 2;
        return;
    }
    if (pt_log_enabled(PT_LOG_INFO)) {
        pt_log(PT_LOG_INFO, "blob transfer switches holder", "{s:s,s:I,s:I,s:s}", "digest",
               t->digest, "offset", (json_int_t)t->want_next, "holder", (json_int_t)t->holder,
               "reason", pt_err_message(status));
    }
    s->resumed++;
    pump(t);
}

/* After a work item: a transfer that ended meanwhile, or whose service is stopping, goes no
 * further (1: ended here, or freed when nothing else is pending); 0: carry on. */
static int abandoned(struct transfer *t)
{
    if (t->state == T_DONE) {
        maybe_free(t);
        return 1;
    }
    if (t->s->stopping) {
        transfer_end(t, PT_E_UNAVAILABLE, 0);
        return 1;
    }
    return 0;
}

/* ---- Transfers: opening ----------------------------------------------------------------- */

static void open_work(uv_work_t *work)
{
    struct transfer *t = work->data;
    struct pt_blob_sync *s = t->s;
    uint64_t size;
    void *val = NULL;
    size_t len;
    int rv;

    t->present = 0;
    t->fd = -1;
    if (pt_blobstore_open_blob(s->bs, &t->d, &t->fd, &size) == 0) {
        t->present = 1;
        t->work_rv = size == t->size ? 0 : PT_E_SIZE_INVALID;
        return;
    }
    rv = pt_metastore_transfer_get(s->ms, t->digest, &val, &len);
    if (rv == 0) {
        rv = pt_upload_decode(val, len, &t->u);
        free(val);
        if (rv == 0 && (strcmp(t->u.id, t->d.hex) != 0 || t->u.offset > t->size))
            rv = PT_E_CORRUPT;
        if (rv == 0)
            rv = pt_blobstore_upload_repair(s->bs, &t->u);
    }
    if (rv != 0) { /* no usable session: begin one */
        rv = pt_blobstore_upload_begin_id(s->bs, TRANSFER_REPO, t->d.hex, wall_ms(), &t->u);
        if (rv == 0) {
            unsigned char buf[512];
            size_t n = pt_upload_encoded_size();
            if (n > sizeof(buf)) {
                rv = PT_E_INTERNAL;
            } else {
                pt_upload_encode(&t->u, buf);
                rv = pt_metastore_transfer_put(s->ms, t->digest, buf, n);
            }
        }
    }
    if (rv == 0)
        rv = pt_blobstore_upload_open_read(s->bs, t->u.id, &t->fd);
    t->work_rv = rv;
}

static void after_open(uv_work_t *work, int status)
{
    struct transfer *t = work->data;
    struct pt_blob_sync *s = t->s;
    (void)status;
    t->busy = 0;
    int fd = t->fd;
    t->fd = -1;
    if (abandoned(t)) {
        if (fd >= 0)
            close(fd);
        work_done(s);
        return;
    }
    if (t->work_rv != 0) {
        if (fd >= 0)
            close(fd);
        pt_log(PT_LOG_ERROR, "blob transfer cannot start", "{s:s,s:s}", "digest", t->digest,
               "error", pt_err_message(t->work_rv));
        transfer_end(t, t->work_rv, uv_now(s->loop) + RETRY_MAX_MS);
        work_done(s);
        return;
    }
    if (t->present) {
        feed_update(t->feed, fd, t->size, PT_FEED_DONE, 0);
        announce(t);
        work_done(s);
        return;
    }
    t->offset = t->u.offset;
    feed_update(t->feed, fd, t->offset, PT_FEED_RUNNING, 0);
    t->durable = t->offset;
    t->want_next = t->offset;
    if (t->u.offset > 0) {
        s->resumed++;
        pt_log(PT_LOG_INFO, "blob transfer resumed", "{s:s,s:I,s:I}", "digest", t->digest, "offset",
               (json_int_t)t->u.offset, "size", (json_int_t)t->size);
    }
    t->state = T_FETCHING;
    t->holder = pick_holder(t);
    if (t->holder == 0) {
        t->state = T_WAITING;
        t->retry_ms = uv_now(s->loop) + t->backoff_ms;
    }
    maybe_write(t); /* a blob already complete (or empty) goes straight to its commit */
    pump(t);
    work_done(s);
}

static void start_open(struct transfer *t)
{
    t->state = T_OPENING;
    t->busy = 1;
    t->work.data = t;
    queue_work(t->s, &t->work, open_work, after_open);
}

/* ---- Transfers: fetching ---------------------------------------------------------------- */

static void on_chunk(void *arg, int status, const void *body, size_t len)
{
    struct want_call *wc = arg;
    struct transfer *t = wc->t;
    struct pt_blob_sync *s = t->s;
    unsigned generation = wc->generation;
    uint64_t offset = wc->offset;
    uint32_t want = wc->len;
    uint64_t holder = t->holder;
    free(wc);
    t->inflight--;
    if (s->stopping || t->state != T_FETCHING || generation != t->generation) {
        maybe_free(t);
        return;
    }
    Portolan__BlobChunk *msg = NULL;
    if (status == 0) {
        msg = portolan__blob_chunk__unpack(NULL, len, body);
        uint64_t expect = t->size - offset < want ? t->size - offset : want;
        if (msg == NULL || msg->offset != offset || msg->size != t->size || msg->data.len != expect)
            status = msg != NULL && msg->size != t->size ? PT_E_SIZE_INVALID : PT_E_CORRUPT;
    }
    if (status != 0) {
        if (msg != NULL)
            portolan__blob_chunk__free_unpacked(msg, NULL);
        if (status != PT_E_TOOMANYREQUESTS && pt_log_enabled(PT_LOG_INFO)) {
            pt_log(PT_LOG_INFO, "blob piece failed", "{s:s,s:I,s:I,s:s}", "digest", t->digest,
                   "offset", (json_int_t)offset, "holder", (json_int_t)holder, "error",
                   pt_err_message(status));
        }
        fetch_failed(t, status, holder);
        return;
    }
    struct chunk *c = malloc(sizeof(*c));
    if (c == NULL) {
        portolan__blob_chunk__free_unpacked(msg, NULL);
        fetch_failed(t, PT_E_NOMEM, 0);
        return;
    }
    c->offset = offset;
    c->msg = msg;
    struct chunk **pp = &t->ready;
    while (*pp != NULL && (*pp)->offset < offset)
        pp = &(*pp)->next;
    c->next = *pp;
    *pp = c;
    t->ready_bytes += msg->data.len;
    s->bytes_received += msg->data.len;
    t->backoff_ms = RETRY_MIN_MS;
    t->progress_ms = uv_now(s->loop);
    maybe_write(t);
    pump(t);
}

/* Asks for the next pieces, as far as the window and the bandwidth limit allow. */
static void pump(struct transfer *t)
{
    struct pt_blob_sync *s = t->s;
    while (t->state == T_FETCHING && t->holder != 0 && t->want_next < t->size &&
           t->inflight < PT_BLOB_SYNC_WINDOW &&
           t->ready_bytes + (size_t)t->inflight * PT_BLOB_SYNC_CHUNK <
               (size_t)PT_BLOB_SYNC_WINDOW * PT_BLOB_SYNC_CHUNK &&
           (s->cfg.bandwidth == 0 || s->tokens > 0)) {
        uint64_t left = t->size - t->want_next;
        uint32_t n = left < PT_BLOB_SYNC_CHUNK ? (uint32_t)left : PT_BLOB_SYNC_CHUNK;
        Portolan__BlobWant bw = PORTOLAN__BLOB_WANT__INIT;
        bw.digest = t->digest;
        bw.offset = t->want_next;
        bw.length = n;
        unsigned char buf[128];
        size_t blen = portolan__blob_want__pack(&bw, buf);
        struct want_call *wc = malloc(sizeof(*wc));
        if (wc == NULL)
            return; /* the next answer or tick tries again */
        wc->t = t;
        wc->generation = t->generation;
        wc->offset = t->want_next;
        wc->len = n;
        int rv = pt_peers_request(s->bulk, t->holder, PORTOLAN__PEER_TYPE__PEER_BLOB_WANT, buf,
                                  blen, REQUEST_TIMEOUT, on_chunk, wc);
        if (rv != 0) {
            free(wc);
            fetch_failed(t, rv, t->holder);
            return;
        }
        t->inflight++;
        t->want_next += n;
        if (s->cfg.bandwidth > 0)
            s->tokens -= n;
    }
}

/* ---- Transfers: writing ----------------------------------------------------------------- */

static void write_work(uv_work_t *work)
{
    struct transfer *t = work->data;
    struct pt_blob_sync *s = t->s;
    int rv = 0;
    for (struct chunk *c = t->writing; c != NULL && rv == 0; c = c->next)
        rv = pt_blobstore_upload_write(s->bs, &t->u, c->msg->data.data, c->msg->data.len);
    t->work_rv = rv;
}

/* Makes the session as of `snap` durable and records it, while the writes go on: the record
 * never claims more than is on disk (snap was taken before the fdatasync started). */
static void sync_work(uv_work_t *work)
{
    struct transfer *t = work->data;
    struct pt_blob_sync *s = t->s;
    int rv = pt_blobstore_upload_sync(s->bs, &t->snap);
    if (rv == 0) {
        unsigned char buf[512];
        t->snap.updated_ms = wall_ms();
        pt_upload_encode(&t->snap, buf);
        rv = pt_metastore_transfer_put(s->ms, t->digest, buf, pt_upload_encoded_size());
    }
    t->sync_rv = rv;
}

static void after_sync(uv_work_t *work, int status)
{
    struct transfer *t = work->data;
    struct pt_blob_sync *s = t->s;
    (void)status;
    t->syncing = 0;
    if (t->sync_rv == 0)
        t->durable = t->snap.offset;
    else if (!s->stopping && t->state != T_DONE)
        pt_log(PT_LOG_WARN, "blob transfer progress not recorded", "{s:s,s:s}", "digest", t->digest,
               "error", pt_err_message(t->sync_rv));
    if (t->state == T_DONE || s->stopping)
        maybe_free(t);
    else
        maybe_write(t); /* a commit may have waited for it */
    work_done(s);
}

/* Every PT_BLOB_SYNC_SYNC_EVERY bytes, records the progress in the background. */
static void maybe_sync(struct transfer *t)
{
    if (t->syncing || t->busy || t->offset - t->durable < PT_BLOB_SYNC_SYNC_EVERY ||
        t->offset == t->size)
        return;
    t->snap = t->u;
    t->syncing = 1;
    t->sync_work.data = t;
    queue_work(t->s, &t->sync_work, sync_work, after_sync);
}

static void commit_work(uv_work_t *work);
static void after_commit(uv_work_t *work, int status);

static void after_write(uv_work_t *work, int status)
{
    struct transfer *t = work->data;
    struct pt_blob_sync *s = t->s;
    (void)status;
    t->busy = 0;
    free_chunks(&t->writing);
    if (abandoned(t)) {
        work_done(s);
        return;
    }
    if (t->work_rv != 0) {
        pt_log(PT_LOG_ERROR, "blob transfer write failed", "{s:s,s:s}", "digest", t->digest,
               "error", pt_err_message(t->work_rv));
        transfer_end(t, t->work_rv, uv_now(s->loop) + RETRY_MAX_MS);
        work_done(s);
        return;
    }
    t->offset = t->u.offset;
    feed_update(t->feed, -1, t->offset, PT_FEED_RUNNING, 0);
    maybe_sync(t);
    maybe_write(t);
    pump(t);
    work_done(s);
}

/* Writes the run of ready pieces that starts at the session's offset; at the end, commits. */
static void maybe_write(struct transfer *t)
{
    if (t->busy || (t->state != T_FETCHING && t->state != T_WAITING))
        return;
    if (t->u.offset == t->size) {
        if (t->syncing)
            return; /* after_sync comes back here */
        t->state = T_COMMITTING;
        t->busy = 1;
        t->work.data = t;
        queue_work(t->s, &t->work, commit_work, after_commit);
        return;
    }
    if (t->ready == NULL || t->ready->offset != t->u.offset)
        return;
    struct chunk **tail = &t->writing;
    uint64_t next = t->u.offset;
    size_t bytes = 0;
    while (t->ready != NULL && t->ready->offset == next && bytes < WRITE_BATCH) {
        struct chunk *c = t->ready;
        t->ready = c->next;
        c->next = NULL;
        *tail = c;
        tail = &c->next;
        next += c->msg->data.len;
        bytes += c->msg->data.len;
        t->ready_bytes -= c->msg->data.len;
    }
    t->busy = 1;
    t->work.data = t;
    queue_work(t->s, &t->work, write_work, after_write);
}

/* ---- Transfers: commit and announce ----------------------------------------------------- */

static void commit_work(uv_work_t *work)
{
    struct transfer *t = work->data;
    struct pt_blob_sync *s = t->s;
    int rv = pt_blobstore_upload_commit(s->bs, &t->u, &t->d);
    if (rv == PT_E_DIGEST_INVALID) {
        pt_blobstore_upload_abort(s->bs, t->u.id);
        pt_metastore_transfer_delete(s->ms, t->digest);
    } else if (rv == 0 || rv == PT_E_IO) {
        /* PT_E_IO here may mean only the directory fsync failed: the blob is in place
         * (verified); the next scan finds it present either way. */
        pt_metastore_transfer_delete(s->ms, t->digest);
    }
    t->work_rv = rv;
}

static void on_announced(void *arg, int status, uint64_t index)
{
    struct transfer *t = arg;
    struct pt_blob_sync *s = t->s;
    (void)index;
    if (status != 0 && !s->stopping) {
        pt_log(PT_LOG_WARN, "blob stored here but not recorded yet", "{s:s,s:s}", "digest",
               t->digest, "error", pt_err_message(status));
    } else if (status == 0) {
        unsigned i = s->recent_next++ % RECENT;
        memcpy(s->recent[i].digest, t->digest, sizeof(t->digest));
        s->recent[i].at_ms = uv_now(s->loop);
        /* no longer missing: the status says so at once, not only after the next scan */
        struct want *w = queue_find(s, t->digest);
        if (w != NULL) {
            size_t k = (size_t)(w - s->queue);
            memmove(w, w + 1, (s->nqueue - k - 1) * sizeof(*w));
            s->nqueue--;
            s->behind_blobs -= s->behind_blobs > 0;
            s->behind_bytes -= s->behind_bytes >= t->size ? t->size : s->behind_bytes;
        }
    }
    transfer_end(t, 0, status != 0 ? uv_now(s->loop) + RETRY_MIN_MS : 0);
    s->pending--; /* last: transfer_end may not end the service under it */
    maybe_stopped(s);
}

static void announce(struct transfer *t)
{
    struct pt_blob_sync *s = t->s;
    struct pt_command_builder b;
    void *buf = NULL;
    size_t len = 0;
    int rv = pt_command_builder_init(&b, wall_ms(), s->cfg.region);
    if (rv == 0) {
        rv = pt_command_add_blob_stored(&b, t->digest, t->size, s->cfg.region);
        if (rv == 0)
            rv = pt_command_builder_encode(&b, &buf, &len);
        pt_command_builder_free(&b);
    }
    if (rv != 0) {
        transfer_end(t, 0, uv_now(s->loop) + RETRY_MAX_MS);
        return;
    }
    t->state = T_ANNOUNCING;
    s->pending++;
    s->propose(s->propose_arg, buf, len, on_announced, t);
}

static void after_commit(uv_work_t *work, int status)
{
    struct transfer *t = work->data;
    struct pt_blob_sync *s = t->s;
    (void)status;
    t->busy = 0;
    int rv = t->work_rv;
    if (rv == 0) {
        s->blobs_fetched++;
        feed_update(t->feed, -1, t->size, PT_FEED_DONE, 0);
        pt_log(PT_LOG_INFO, "blob replicated", "{s:s,s:I}", "digest", t->digest, "size",
               (json_int_t)t->size);
        if (s->stopping)
            transfer_end(t, 0, 0);
        else
            announce(t);
    } else if (rv == PT_E_DIGEST_INVALID) {
        s->verify_failures++;
        pt_log(PT_LOG_WARN, "replicated blob failed verification; fetching it again", "{s:s,s:I}",
               "digest", t->digest, "holder", (json_int_t)t->holder);
        if (++t->verify_failures >= 2 && t->holder != 0)
            avoid_holder(s, t->holder);
        /* readers of the bad bytes fail; a new transfer begins from offset 0 */
        feed_update(t->feed, -1, 0, PT_FEED_FAILED, PT_E_DIGEST_INVALID);
        pt_blob_feed_release(t->feed);
        t->feed = s->stopping ? NULL : feed_new(t->size);
        if (t->feed == NULL) {
            transfer_end(t, PT_E_NOMEM, uv_now(s->loop) + RETRY_MIN_MS);
        } else {
            t->generation++;
            drop_ready(t);
            memset(&t->u, 0, sizeof(t->u));
            t->offset = 0;
            start_open(t);
        }
    } else {
        pt_log(PT_LOG_ERROR, "blob transfer commit failed", "{s:s,s:s}", "digest", t->digest,
               "error", pt_err_message(rv));
        transfer_end(t, rv, uv_now(s->loop) + RETRY_MIN_MS);
    }
    work_done(s);
}

/* ---- Scans and scheduling --------------------------------------------------------------- */

/* The ids of the regions named (up to MAX_HOLDERS, in order; unknown names are skipped). */
static unsigned holder_ids(const struct region *regions, unsigned nregions,
                           const char *const *names, size_t n, uint64_t *ids)
{
    unsigned k = 0;
    for (size_t i = 0; i < n && k < MAX_HOLDERS; i++) {
        for (unsigned j = 0; j < nregions; j++) {
            if (strcmp(regions[j].name, names[i]) == 0) {
                ids[k++] = regions[j].id;
                break;
            }
        }
    }
    return k;
}

static int scan_cb(const char *digest, uint64_t size, const char *const *holders, size_t n,
                   void *arg)
{
    struct scan *sc = arg;
    sc->total_blobs++;
    sc->total_bytes += size;
    if (sc->n >= PT_BLOB_SYNC_QUEUE_MAX)
        return 0;
    struct want *w = &sc->wants[sc->n];
    memset(w, 0, sizeof(*w));
    snprintf(w->digest, sizeof(w->digest), "%s", digest);
    w->size = size;
    w->nholders = holder_ids(sc->regions, sc->nregions, holders, n, w->holders);
    sc->n++;
    return 0;
}

static void scan_work(uv_work_t *work)
{
    struct scan *sc = work->data;
    sc->rv = pt_metastore_missing_foreach(sc->s->ms, sc->region, scan_cb, sc);
}

static void after_scan(uv_work_t *work, int status)
{
    struct scan *sc = work->data;
    struct pt_blob_sync *s = sc->s;
    (void)status;
    s->scanning = 0;
    if (sc->rv != 0 && !s->stopping)
        pt_log(PT_LOG_ERROR, "blob sync: scan failed", "{s:s}", "error", pt_err_message(sc->rv));
    if (sc->rv == 0 && !s->stopping) {
        /* carry over what the old queue knew (both are sorted by digest) */
        uint64_t now = uv_now(s->loop);
        size_t j = 0;
        for (size_t i = 0; i < sc->n; i++) {
            struct want *w = &sc->wants[i];
            while (j < s->nqueue && strcmp(s->queue[j].digest, w->digest) < 0)
                j++;
            if (j < s->nqueue && strcmp(s->queue[j].digest, w->digest) == 0) {
                w->first_ms = s->queue[j].first_ms;
                w->retry_ms = s->queue[j].retry_ms;
                w->failures = s->queue[j].failures;
            } else {
                w->first_ms = now;
            }
        }
        free(s->queue);
        s->queue = sc->wants;
        s->nqueue = sc->n;
        sc->wants = NULL;
        s->behind_blobs = sc->total_blobs;
        s->behind_bytes = sc->total_bytes;
        /* an active transfer learns of new holders */
        for (struct transfer *t = s->transfers; t != NULL; t = t->next) {
            struct want *w = queue_find(s, t->digest);
            if (w != NULL && t->state != T_DONE) {
                memcpy(t->holders, w->holders, w->nholders * sizeof(*w->holders));
                t->nholders = w->nholders;
            }
        }
        schedule(s);
    }
    free(sc->wants);
    free(sc);
    work_done(s);
}

static void start_scan(struct pt_blob_sync *s)
{
    struct scan *sc = calloc(1, sizeof(*sc));
    if (sc == NULL)
        return;
    sc->wants = malloc(PT_BLOB_SYNC_QUEUE_MAX * sizeof(*sc->wants));
    if (sc->wants == NULL) {
        free(sc);
        return;
    }
    sc->s = s;
    snprintf(sc->region, sizeof(sc->region), "%s", s->cfg.region);
    memcpy(sc->regions, s->regions, s->nregions * sizeof(*s->regions));
    sc->nregions = s->nregions;
    s->scanning = 1;
    s->dirty = 0;
    s->last_scan_ms = uv_now(s->loop);
    sc->work.data = sc;
    queue_work(s, &sc->work, scan_work, after_scan);
}

/* Whether digest was recorded as stored here after the current queue's scan began. */
static int stored_lately(struct pt_blob_sync *s, const char *digest)
{
    for (unsigned i = 0; i < RECENT; i++)
        if (s->recent[i].at_ms >= s->last_scan_ms && strcmp(s->recent[i].digest, digest) == 0)
            return 1;
    return 0;
}

static unsigned background_active(struct pt_blob_sync *s)
{
    unsigned n = 0;
    for (struct transfer *t = s->transfers; t != NULL; t = t->next)
        n += t->state != T_DONE && !t->demand;
    return n;
}

/* Starts background transfers up to the limit. */
static void schedule(struct pt_blob_sync *s)
{
    unsigned limit = s->cfg.concurrency > 0 ? s->cfg.concurrency : DEFAULT_PARALLEL;
    unsigned active = background_active(s);
    uint64_t now = uv_now(s->loop);
    for (size_t i = 0; i < s->nqueue && active < limit; i++) {
        struct want *w = &s->queue[i];
        if (w->retry_ms > now || w->nholders == 0 || transfer_find(s, w->digest) != NULL ||
            stored_lately(s, w->digest))
            continue;
        if (transfer_new(s, w->digest, w->size, w->holders, w->nholders, 0) != NULL)
            active++;
    }
}

/* Progress of the active transfers and the age of the oldest missing blob. */
static void progress(struct pt_blob_sync *s, uint64_t *received, uint64_t *oldest_ms)
{
    uint64_t now = uv_now(s->loop);
    *received = 0;
    *oldest_ms = 0;
    for (struct transfer *t = s->transfers; t != NULL; t = t->next)
        if (t->state != T_DONE)
            *received += t->offset;
    for (size_t i = 0; i < s->nqueue; i++)
        if (now - s->queue[i].first_ms > *oldest_ms)
            *oldest_ms = now - s->queue[i].first_ms;
}

static void publish_metrics(struct pt_blob_sync *s)
{
    uint64_t received, oldest, v[PT_METRICS_REPL_N];
    progress(s, &received, &oldest);
    v[PT_METRICS_REPL_RECEIVED] = s->bytes_received;
    v[PT_METRICS_REPL_SENT] = s->bytes_sent;
    v[PT_METRICS_REPL_FETCHED] = s->blobs_fetched;
    v[PT_METRICS_REPL_VERIFY_FAILURES] = s->verify_failures;
    v[PT_METRICS_REPL_QUEUE] = s->nqueue;
    v[PT_METRICS_REPL_BEHIND_BLOBS] = s->behind_blobs;
    v[PT_METRICS_REPL_BEHIND_BYTES] = s->behind_bytes > received ? s->behind_bytes - received : 0;
    v[PT_METRICS_REPL_OLDEST_MS] = oldest;
    pt_metrics_replication(v);
}

static void on_tick(uv_timer_t *timer)
{
    struct pt_blob_sync *s = timer->data;
    uint64_t now = uv_now(s->loop);
    if (s->cfg.bandwidth > 0) {
        s->tokens += (double)s->cfg.bandwidth * (double)(now - s->tokens_ms) / 1000.0;
        if (s->tokens > (double)s->cfg.bandwidth / 4)
            s->tokens = (double)s->cfg.bandwidth / 4; /* bursts of at most 250 ms */
    }
    s->tokens_ms = now;
    for (struct transfer *t = s->transfers; t != NULL; t = t->next) {
        if (t->demand && t->state == T_WAITING && now - t->progress_ms >= STALL_MS) {
            /* its readers give up; a new feed serves whoever asks next */
            struct pt_blob_feed *fresh = feed_new(t->size);
            if (fresh != NULL) {
                int fd = t->feed->fd >= 0 ? dup(t->feed->fd) : -1;
                if (fd >= 0)
                    feed_update(fresh, fd, t->offset, PT_FEED_RUNNING, 0);
                feed_update(t->feed, -1, 0, PT_FEED_FAILED, PT_E_UNAVAILABLE);
                pt_blob_feed_release(t->feed);
                t->feed = fresh;
            }
            t->demand = 0;
            t->progress_ms = now;
        }
        if (t->state == T_WAITING && t->retry_ms <= now) {
            t->holder = pick_holder(t);
            if (t->holder != 0) {
                t->state = T_FETCHING;
                if (t->want_next > 0)
                    s->resumed++; /* goes on from where it stopped */
                maybe_write(t);
            } else {
                t->retry_ms = now + t->backoff_ms;
                if (t->backoff_ms < RETRY_MAX_MS)
                    t->backoff_ms *= 2;
            }
        }
        pump(t);
    }
    if (++s->ticks % (1000 / TICK_MS) == 0)
        publish_metrics(s);
    if (!s->scanning && ((s->dirty && now - s->last_scan_ms >= PT_BLOB_SYNC_SCAN_MS) ||
                         now - s->last_scan_ms >= PT_BLOB_SYNC_RESCAN_MS))
        start_scan(s);
    else if (!s->scanning)
        schedule(s); /* retries whose time came */
}

/* ---- Serving other regions -------------------------------------------------------------- */

static void serve_work(uv_work_t *work)
{
    struct serve *sv = work->data;
    int fd;
    sv->rv = pt_blobstore_open_blob(sv->s->bs, &sv->d, &fd, &sv->size);
    if (sv->rv != 0)
        return;
    if (sv->offset > sv->size) {
        sv->rv = PT_E_RANGE_INVALID;
        close(fd);
        return;
    }
    uint64_t left = sv->size - sv->offset;
    size_t want = left < sv->len ? (size_t)left : sv->len;
    sv->buf = malloc(want > 0 ? want : 1);
    if (sv->buf == NULL) {
        sv->rv = PT_E_NOMEM;
        close(fd);
        return;
    }
    while (sv->got < want) {
        ssize_t n = pread(fd, sv->buf + sv->got, want - sv->got, (off_t)(sv->offset + sv->got));
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            sv->rv = PT_E_IO;
            break;
        }
        sv->got += (size_t)n;
    }
    close(fd);
}

static void after_serve(uv_work_t *work, int status)
{
    struct serve *sv = work->data;
    struct pt_blob_sync *s = sv->s;
    (void)status;
    s->serving--;
    if (sv->rv != 0) {
        pt_peer_reply(sv->call, sv->rv, NULL, 0);
    } else {
        Portolan__BlobChunk bc = PORTOLAN__BLOB_CHUNK__INIT;
        bc.offset = sv->offset;
        bc.size = sv->size;
        bc.data.data = sv->buf;
        bc.data.len = sv->got;
        size_t n = portolan__blob_chunk__get_packed_size(&bc);
        unsigned char *out = malloc(n);
        if (out == NULL) {
            pt_peer_reply(sv->call, PT_E_NOMEM, NULL, 0);
        } else {
            portolan__blob_chunk__pack(&bc, out);
            pt_peer_reply(sv->call, 0, out, n);
            s->bytes_sent += sv->got;
            free(out);
        }
    }
    free(sv->buf);
    free(sv);
    work_done(s);
}

static void on_bulk_request(void *arg, uint64_t from, uint32_t type, const void *body, size_t len,
                            struct pt_peer_call *call)
{
    struct pt_blob_sync *s = arg;
    (void)from;
    if (type != PORTOLAN__PEER_TYPE__PEER_BLOB_WANT) {
        pt_peer_reply(call, PT_E_UNSUPPORTED, NULL, 0);
        return;
    }
    if (s->stopping) {
        pt_peer_reply(call, PT_E_UNAVAILABLE, NULL, 0);
        return;
    }
    if (s->serving >= PT_BLOB_SYNC_SERVE_MAX) {
        pt_peer_reply(call, PT_E_TOOMANYREQUESTS, NULL, 0);
        return;
    }
    Portolan__BlobWant *bw = portolan__blob_want__unpack(NULL, len, body);
    struct serve *sv = bw != NULL ? calloc(1, sizeof(*sv)) : NULL;
    int rv = bw == NULL ? PT_E_CORRUPT : sv == NULL ? PT_E_NOMEM : 0;
    if (rv == 0 && pt_digest_parse(bw->digest, strlen(bw->digest), &sv->d) != 0)
        rv = PT_E_DIGEST_INVALID;
    if (rv == 0 && (bw->length == 0 || bw->length > PT_BLOB_SYNC_CHUNK_MAX))
        rv = PT_E_RANGE_INVALID;
    if (rv != 0) {
        free(sv);
        if (bw != NULL)
            portolan__blob_want__free_unpacked(bw, NULL);
        pt_peer_reply(call, rv, NULL, 0);
        return;
    }
    sv->s = s;
    sv->call = call;
    sv->offset = bw->offset;
    sv->len = bw->length;
    portolan__blob_want__free_unpacked(bw, NULL);
    s->serving++;
    sv->work.data = sv;
    queue_work(s, &sv->work, serve_work, after_serve);
}

/* ---- API -------------------------------------------------------------------------------- */

int pt_blob_sync_start(uv_loop_t *loop, struct raft_uv_transport *t, struct pt_metastore *ms,
                       struct pt_blobstore *bs, const struct pt_blob_sync_config *cfg,
                       pt_blob_sync_propose_fn propose, void *propose_arg,
                       struct pt_blob_sync **out)
{
    if (cfg->region[0] == '\0' || propose == NULL || bs == NULL)
        return PT_E_CONFIG;
    struct pt_blob_sync *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return PT_E_NOMEM;
    s->loop = loop;
    s->ms = ms;
    s->bs = bs;
    s->cfg = *cfg;
    s->propose = propose;
    s->propose_arg = propose_arg;
    int rv = pt_peers_init(&s->bulk, loop, t, PT_CHANNEL_BULK, cfg->self_id, on_bulk_request, s);
    if (rv != 0) {
        free(s);
        return rv;
    }
    uv_timer_init(loop, &s->tick);
    s->tick.data = s;
    uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
    s->tokens_ms = uv_now(loop);
    s->dirty = 1;
    s->last_scan_ms = uv_now(loop) - PT_BLOB_SYNC_SCAN_MS;
    *out = s;
    return 0;
}

int pt_blob_sync_set_region(struct pt_blob_sync *s, uint64_t id, const char *name,
                            const char *address)
{
    if (id == s->cfg.self_id)
        return 0;
    struct region *r = region_by_id(s, id);
    if (r == NULL) {
        if (s->nregions >= MAX_REGIONS)
            return PT_E_CONFIG;
        r = &s->regions[s->nregions++];
        memset(r, 0, sizeof(*r));
        r->id = id;
    }
    snprintf(r->name, sizeof(r->name), "%s", name);
    int rv = pt_peers_set_address(s->bulk, id, address);
    if (rv == 0)
        pt_peers_keep_open(s->bulk, id); /* RTTs known before the first transfer */
    s->dirty = 1;
    return rv;
}

void pt_blob_sync_changed(struct pt_blob_sync *s)
{
    s->dirty = 1;
    if (!s->scanning && !s->stopping && uv_now(s->loop) - s->last_scan_ms >= PT_BLOB_SYNC_SCAN_MS)
        start_scan(s); /* else the tick starts it once the interval passed */
}

int pt_blob_sync_feed(struct pt_blob_sync *s, const char *digest, uint64_t size,
                      struct pt_blob_feed **feed)
{
    if (s->stopping)
        return PT_E_UNAVAILABLE;
    struct transfer *t = transfer_find(s, digest);
    if (t == NULL) {
        char **names = NULL;
        size_t n = 0;
        uint64_t holders[MAX_HOLDERS], recorded = size;
        int rv = pt_metastore_blob_regions(s->ms, digest, &recorded, &names, &n);
        if (rv != 0)
            return rv;
        unsigned nholders =
            holder_ids(s->regions, s->nregions, (const char *const *)names, n, holders);
        pt_strv_free(names, n);
        if (nholders == 0)
            return PT_E_BLOB_UNKNOWN;
        t = transfer_new(s, digest, recorded, holders, nholders, 1);
        if (t == NULL)
            return PT_E_NOMEM;
    }
    t->demand = 1;
    if (t->state == T_WAITING)
        t->retry_ms = 0; /* someone waits: try again at the next tick */
    *feed = feed_ref(t->feed);
    return 0;
}

char *pt_blob_sync_status_json(struct pt_blob_sync *s)
{
    uint64_t oldest, received;
    json_t *active = json_array();
    for (struct transfer *t = s->transfers; t != NULL; t = t->next) {
        if (t->state == T_DONE)
            continue;
        struct region *r = region_by_id(s, t->holder);
        static const char *const names[] = {"opening",    "fetching", "committing",
                                            "announcing", "waiting",  "done"};
        json_array_append_new(active,
                              json_pack("{s:s,s:I,s:I,s:s,s:s,s:b}", "digest", t->digest, "size",
                                        (json_int_t)t->size, "offset", (json_int_t)t->offset,
                                        "from", r != NULL ? r->name : "", "state", names[t->state],
                                        "on_demand", t->demand));
    }
    progress(s, &received, &oldest);
    uint64_t behind = s->behind_bytes > received ? s->behind_bytes - received : 0;
    json_t *o =
        json_pack("{s:s,s:b,s:I,s:I,s:f,s:o,s:I,s:I,s:I,s:I,s:I,s:I}", "region", s->cfg.region,
                  "in_sync", s->behind_blobs == 0 && json_array_size(active) == 0, "blobs_behind",
                  (json_int_t)s->behind_blobs, "bytes_behind", (json_int_t)behind,
                  "oldest_missing_age_s", (double)oldest / 1000.0, "active", active, "queue",
                  (json_int_t)s->nqueue, "bytes_received_total", (json_int_t)s->bytes_received,
                  "bytes_sent_total", (json_int_t)s->bytes_sent, "blobs_fetched_total",
                  (json_int_t)s->blobs_fetched, "verify_failures_total",
                  (json_int_t)s->verify_failures, "resumed_total", (json_int_t)s->resumed);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}

/* ---- Stop ------------------------------------------------------------------------------- */

static void maybe_stopped(struct pt_blob_sync *s)
{
    if (!s->stopping || s->pending > 0)
        return;
    while (s->transfers != NULL) {
        struct transfer *t = s->transfers;
        s->transfers = t->next;
        drop_ready(t);
        pt_blob_feed_release(t->feed);
        free(t);
    }
    free(s->queue);
    void (*cb)(void *) = s->stop_cb;
    void *arg = s->stop_arg;
    free(s);
    if (cb != NULL)
        cb(arg);
}

static void on_tick_closed(uv_handle_t *h)
{
    struct pt_blob_sync *s = h->data;
    s->pending--;
    maybe_stopped(s);
}

static void on_bulk_closed(void *arg)
{
    struct pt_blob_sync *s = arg;
    s->pending--;
    maybe_stopped(s);
}

void pt_blob_sync_stop(struct pt_blob_sync *s, void (*cb)(void *arg), void *arg)
{
    s->stopping = 1;
    s->stop_cb = cb;
    s->stop_arg = arg;
    for (struct transfer *t = s->transfers; t != NULL; t = t->next) {
        if (t->feed != NULL)
            feed_update(t->feed, -1, 0, PT_FEED_FAILED, PT_E_UNAVAILABLE);
        t->generation++;
        drop_ready(t);
    }
    s->pending += 2;
    uv_close((uv_handle_t *)&s->tick, on_tick_closed);
    pt_peers_close(s->bulk, on_bulk_closed, s);
}
