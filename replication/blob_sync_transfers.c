/*
 * blob_sync_transfers.c - one blob fetched from the other regions, on the raft loop.
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
 *   ANNOUNCING  BlobStored{this region, replica} is proposed; when it fails (no quorum) the
 *               blob is found again by a later scan, present, and announced again. When the
 *               blob was collected meanwhile it is refused (PT_E_BLOB_UNKNOWN) and the transfer
 *               ends: the file is left to the garbage collector's local sweep.
 *   WAITING     nothing to do until retry_ms (no holder reachable, or an I/O error).
 *   (a scan that finds the blob of a FETCHING or WAITING transfer collected, recorded nowhere,
 *   ends it and removes its session: bsync_transfer_abandon)
 *   DONE        kept until its last BlobWant answer came back, then freed.
 *
 * The session is an upload (blobstore.h) named after the digest (pt_blob_sync_session_id), in
 * the repo TRANSFER_REPO; its record (local_blobs column family) is what a restart resumes from.
 *
 * Invariants: a transfer's session (u) is touched by the loop only while no work item runs
 * (busy == 0). A transfer is freed only when DONE, not busy and with no BlobWant in flight.
 * Each BlobWant encodes into a buffer whose room is checked first (bsync_encode_want).
 */
#include "blob_sync_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "err.h"
#include "log.h"
#include "metastore.h"

struct want_call {
    struct transfer *t;
    unsigned generation;
    uint64_t offset;
    uint32_t len;
};

static void pump(struct transfer *t);
static void start_open(struct transfer *t);
static void maybe_write(struct transfer *t);
static void maybe_free(struct transfer *t);
static void announce(struct transfer *t);

/* ---- Holders ---------------------------------------------------------------------------- */

/* The holder to ask: the reachable one with the lowest RTT, not avoided; 0 if none. */
static uint64_t pick_holder(struct transfer *t)
{
    struct pt_blob_sync *s = t->s;
    uint64_t now = uv_now(s->loop), best = 0;
    int64_t best_rtt = 0;
    for (unsigned i = 0; i < t->nholders; i++) {
        struct region *r = bsync_region_by_id(s, t->holders[i]);
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
    struct region *r = bsync_region_by_id(s, id);
    if (r != NULL)
        r->avoid_until = uv_now(s->loop) + HOLDER_AVOID_MS;
}

/* No holder to ask now: wait, twice as long as the last time (up to RETRY_MAX_MS). */
static void wait_backoff(struct transfer *t, uint64_t now)
{
    t->retry_ms = now + t->backoff_ms;
    if (t->backoff_ms < RETRY_MAX_MS)
        t->backoff_ms *= 2;
}

/* ---- Life cycle ------------------------------------------------------------------------- */

struct transfer *bsync_transfer_find(struct pt_blob_sync *s, const char *digest)
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

/* Forgets every piece asked for so far: answers still in flight are dropped when they come
 * (a new generation), those waiting in `ready` are freed now. */
static void forget_pieces(struct transfer *t)
{
    t->generation++;
    free_chunks(&t->ready);
    t->ready_bytes = 0;
}

/* Fails t's feed with error (its readers give up) and gives t a fresh one for whoever asks
 * next; keep: the fresh feed serves the bytes already in the file. PT_E_NOMEM (t's feed
 * unchanged) when out of memory. */
static int renew_feed(struct transfer *t, int error, int keep)
{
    struct pt_blob_feed *fresh = bsync_feed_new(t->size);
    if (fresh == NULL)
        return PT_E_NOMEM;
    if (keep) {
        int fd = t->feed->fd >= 0 ? dup(t->feed->fd) : -1;
        if (fd >= 0)
            bsync_feed_update(fresh, fd, t->offset, PT_FEED_RUNNING, 0);
    }
    bsync_feed_update(t->feed, -1, 0, PT_FEED_FAILED, error);
    pt_blob_feed_release(t->feed);
    t->feed = fresh;
    return 0;
}

/* Ends t: DONE, its feed failed with error unless it completed, freed when nothing is left in
 * flight. retry_ms > 0 keeps the blob from being started again before then. */
static void transfer_end(struct transfer *t, int error, uint64_t retry_ms)
{
    struct pt_blob_sync *s = t->s;
    if (t->feed != NULL) {
        bsync_feed_update(t->feed, -1, 0, PT_FEED_FAILED, error != 0 ? error : PT_E_UNAVAILABLE);
        pt_blob_feed_release(t->feed);
        t->feed = NULL;
    }
    struct want *w = bsync_queue_find(s, t->digest);
    if (w != NULL && retry_ms > 0) {
        w->retry_ms = retry_ms;
        w->failures++;
    }
    t->state = T_DONE;
    forget_pieces(t);
    maybe_free(t);
    if (!s->stopping)
        bsync_schedule(s);
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
    bsync_maybe_stopped(s);
}

struct transfer *bsync_transfer_new(struct pt_blob_sync *s, const char *digest, uint64_t size,
                                    const uint64_t *holders, unsigned nholders, int demand)
{
    struct transfer *t = calloc(1, sizeof(*t));
    if (t == NULL)
        return NULL;
    if (pt_digest_parse(digest, strlen(digest), &t->d) != 0) {
        free(t);
        return NULL;
    }
    t->feed = bsync_feed_new(size);
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
    forget_pieces(t);
    t->want_next = t->offset; /* a run being written moves it on when it completes */
    if (t->busy && t->writing != NULL) {
        for (struct chunk *c = t->writing; c != NULL; c = c->next)
            t->want_next = c->offset + c->msg->data.len;
    }
    if (status != PT_E_TOOMANYREQUESTS && holder != 0)
        avoid_holder(s, holder);
    t->holder = status == PT_E_TOOMANYREQUESTS ? holder : pick_holder(t);
    if (status == PT_E_TOOMANYREQUESTS) {
        t->state = T_WAITING;
        t->retry_ms = uv_now(s->loop) + BUSY_RETRY_MS;
        return;
    }
    if (t->holder == 0) {
        t->state = T_WAITING;
        wait_backoff(t, uv_now(s->loop));
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

void bsync_transfer_tick(struct transfer *t, uint64_t now)
{
    struct pt_blob_sync *s = t->s;
    if (t->demand && t->state == T_WAITING && now - t->progress_ms >= STALL_MS) {
        /* its readers give up; a new feed serves whoever asks next */
        (void)renew_feed(t, PT_E_UNAVAILABLE, 1);
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
            wait_backoff(t, now);
        }
    }
    pump(t);
}

void bsync_transfer_stop(struct transfer *t)
{
    if (t->feed != NULL)
        bsync_feed_update(t->feed, -1, 0, PT_FEED_FAILED, PT_E_UNAVAILABLE);
    forget_pieces(t);
}

void bsync_transfer_free(struct transfer *t)
{
    forget_pieces(t);
    pt_blob_feed_release(t->feed);
    free(t);
}

struct drop {
    uv_work_t work;
    struct pt_blob_sync *s;
    char id[PT_UPLOAD_ID_MAX + 1];
    char digest[PT_DIGEST_STR_MAX + 1];
};

static void drop_work(uv_work_t *work)
{
    struct drop *d = work->data;
    if (d->id[0] != '\0')
        pt_blobstore_upload_abort(d->s->bs, d->id);
    pt_metastore_transfer_delete(d->s->ms, d->digest);
}

static void after_drop(uv_work_t *work, int status)
{
    struct drop *d = work->data;
    struct pt_blob_sync *s = d->s;
    (void)status;
    free(d);
    bsync_done(s);
}

void bsync_transfer_abandon(struct transfer *t)
{
    struct pt_blob_sync *s = t->s;
    if (t->busy || t->syncing || (t->state != T_FETCHING && t->state != T_WAITING))
        return;
    struct drop *d = calloc(1, sizeof(*d));
    if (d == NULL)
        return; /* a later scan tries again */
    d->s = s;
    snprintf(d->id, sizeof(d->id), "%s", t->u.id);
    snprintf(d->digest, sizeof(d->digest), "%s", t->digest);
    pt_log(PT_LOG_INFO, "blob transfer abandoned: the blob was collected", "{s:s}", "digest",
           t->digest);
    transfer_end(t, PT_E_BLOB_UNKNOWN, 0);
    d->work.data = d;
    bsync_queue_work(s, &d->work, drop_work, after_drop);
}

/* ---- Opening ---------------------------------------------------------------------------- */

/* Pool: records session u of digest (local_blobs), which a restart resumes from. */
static int record_session(struct pt_blob_sync *s, const char *digest, const struct pt_upload *u)
{
    unsigned char buf[512];
    size_t n = pt_upload_encoded_size();
    if (n > sizeof(buf))
        return PT_E_INTERNAL;
    pt_upload_encode(u, buf);
    return pt_metastore_transfer_put(s->ms, digest, buf, n);
}

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
    char id[PT_UPLOAD_ID_MAX + 1];
    pt_blob_sync_session_id(&t->d, id);
    if (rv == 0) {
        rv = pt_upload_decode(val, len, &t->u);
        free(val);
        if (rv == 0 && (strcmp(t->u.id, id) != 0 || t->u.offset > t->size))
            rv = PT_E_CORRUPT;
        if (rv == 0)
            rv = pt_blobstore_upload_repair(s->bs, &t->u);
    }
    if (rv != 0) { /* no usable session: begin one */
        rv = pt_blobstore_upload_begin_id(s->bs, TRANSFER_REPO, id, bsync_wall_ms(), &t->u);
        if (rv == 0)
            rv = record_session(s, t->digest, &t->u);
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
        bsync_done(s);
        return;
    }
    if (t->work_rv != 0) {
        if (fd >= 0)
            close(fd);
        pt_log(PT_LOG_ERROR, "blob transfer cannot start", "{s:s,s:s}", "digest", t->digest,
               "error", pt_err_message(t->work_rv));
        transfer_end(t, t->work_rv, uv_now(s->loop) + RETRY_MAX_MS);
        bsync_done(s);
        return;
    }
    if (t->present) {
        bsync_feed_update(t->feed, fd, t->size, PT_FEED_DONE, 0);
        announce(t);
        bsync_done(s);
        return;
    }
    t->offset = t->u.offset;
    bsync_feed_update(t->feed, fd, t->offset, PT_FEED_RUNNING, 0);
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
    bsync_done(s);
}

static void start_open(struct transfer *t)
{
    t->state = T_OPENING;
    t->busy = 1;
    t->work.data = t;
    bsync_queue_work(t->s, &t->work, open_work, after_open);
}

/* ---- Fetching --------------------------------------------------------------------------- */

int bsync_encode_want(const char *digest, uint64_t offset, uint32_t length, void *buf, size_t cap,
                      size_t *len)
{
    Portolan__BlobWant bw = PORTOLAN__BLOB_WANT__INIT;
    bw.digest = (char *)digest;
    bw.offset = offset;
    bw.length = length;
    size_t n = portolan__blob_want__get_packed_size(&bw);
    if (n > cap)
        return PT_E_TOO_LARGE;
    *len = portolan__blob_want__pack(&bw, buf);
    return 0;
}

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
        unsigned char buf[WANT_BUF];
        size_t blen;
        int rv = bsync_encode_want(t->digest, t->want_next, n, buf, sizeof(buf), &blen);
        if (rv != 0) { /* handled as a request that could not be sent */
            fetch_failed(t, rv, t->holder);
            return;
        }
        struct want_call *wc = malloc(sizeof(*wc));
        if (wc == NULL)
            return; /* the next answer or tick tries again */
        wc->t = t;
        wc->generation = t->generation;
        wc->offset = t->want_next;
        wc->len = n;
        rv = pt_peers_request(s->bulk, t->holder, PORTOLAN__PEER_TYPE__PEER_BLOB_WANT, buf, blen,
                              REQUEST_TIMEOUT, on_chunk, wc);
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

/* ---- Writing ---------------------------------------------------------------------------- */

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
        t->snap.updated_ms = bsync_wall_ms();
        rv = record_session(s, t->digest, &t->snap);
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
    bsync_done(s);
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
    bsync_queue_work(t->s, &t->sync_work, sync_work, after_sync);
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
        bsync_done(s);
        return;
    }
    if (t->work_rv != 0) {
        pt_log(PT_LOG_ERROR, "blob transfer write failed", "{s:s,s:s}", "digest", t->digest,
               "error", pt_err_message(t->work_rv));
        transfer_end(t, t->work_rv, uv_now(s->loop) + RETRY_MAX_MS);
        bsync_done(s);
        return;
    }
    t->offset = t->u.offset;
    bsync_feed_update(t->feed, -1, t->offset, PT_FEED_RUNNING, 0);
    maybe_sync(t);
    maybe_write(t);
    pump(t);
    bsync_done(s);
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
        bsync_queue_work(t->s, &t->work, commit_work, after_commit);
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
    bsync_queue_work(t->s, &t->work, write_work, after_write);
}

/* ---- Commit and announce ---------------------------------------------------------------- */

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
    if (status == PT_E_BLOB_UNKNOWN) {
        /* collected while it was fetched: not recorded; the file is an orphan that the
         * garbage collector's local sweep removes once older than the grace */
        pt_log(PT_LOG_INFO, "replicated blob was collected meanwhile", "{s:s}", "digest",
               t->digest);
        transfer_end(t, 0, 0);
        bsync_done(s);
        return;
    }
    if (status != 0 && !s->stopping) {
        pt_log(PT_LOG_WARN, "blob stored here but not recorded yet", "{s:s,s:s}", "digest",
               t->digest, "error", pt_err_message(status));
    } else if (status == 0) {
        bsync_queue_stored(s, t->digest, t->size);
    }
    transfer_end(t, 0, status != 0 ? uv_now(s->loop) + RETRY_MIN_MS : 0);
    bsync_done(s); /* last: transfer_end may not end the service under it */
}

static void announce(struct transfer *t)
{
    struct pt_blob_sync *s = t->s;
    struct pt_command_builder b;
    void *buf = NULL;
    size_t len = 0;
    int rv = pt_command_builder_init(&b, bsync_wall_ms(), s->cfg.region);
    if (rv == 0) {
        rv = pt_command_add_blob_replica(&b, t->digest, t->size, s->cfg.region);
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
        bsync_feed_update(t->feed, -1, t->size, PT_FEED_DONE, 0);
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
        if (s->stopping || renew_feed(t, PT_E_DIGEST_INVALID, 0) != 0) {
            transfer_end(t, PT_E_DIGEST_INVALID, uv_now(s->loop) + RETRY_MIN_MS);
        } else {
            forget_pieces(t);
            memset(&t->u, 0, sizeof(t->u));
            t->offset = 0;
            start_open(t);
        }
    } else {
        pt_log(PT_LOG_ERROR, "blob transfer commit failed", "{s:s,s:s}", "digest", t->digest,
               "error", pt_err_message(rv));
        transfer_end(t, rv, uv_now(s->loop) + RETRY_MIN_MS);
    }
    bsync_done(s);
}
