/*
 * blob_sync.c - blob replication between regions: the service (see blob_sync.h).
 *
 * Pieces, all on the raft loop (blob_sync_int.h lists the files):
 *   bulk       a pt_peers service on the transport's BULK channels: this region's requests
 *              for pieces of blobs (blob_sync_transfers.c), and the other regions' requests
 *              to this one (blob_sync_serve.c).
 *   queue      the blobs this region lacks, as the last scan of their index found them
 *              (sorted by digest), with when each was first seen missing and when it may be
 *              tried again after a failure (blob_sync_scan.c).
 *   transfers  one per digest being fetched: background ones (at most `concurrency`) and
 *              on-demand ones (a client is waiting; never queued behind the others), joined
 *              by readers through feeds (blob_sync_feeds.c).
 *
 * This file holds the service itself: start and stop, the regions it knows, the tick (every
 * TICK_MS: the bandwidth tokens, each transfer's retries, scans, metrics every second), the
 * status, and the count of what is pending. Work items, proposals and handles each count
 * once in `pending` until their callback ran.
 *
 * Invariants: the service is freed when stopping and nothing is pending (work items,
 * proposals, handles); a transfer is freed only when nothing of it is pending either.
 */
#include "blob_sync_int.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include "err.h"
#include "log.h"
#include "metrics.h"
#include "transport.h"

int64_t bsync_wall_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

struct region *bsync_region_by_id(struct pt_blob_sync *s, uint64_t id)
{
    for (unsigned i = 0; i < s->nregions; i++)
        if (s->regions[i].id == id)
            return &s->regions[i];
    return NULL;
}

/* ---- What is pending -------------------------------------------------------------------- */

void bsync_queue_work(struct pt_blob_sync *s, uv_work_t *work, uv_work_cb fn,
                      uv_after_work_cb after)
{
    s->pending++;
    int rv = uv_queue_work(s->loop, work, fn, after);
    if (rv != 0) { /* only for a NULL callback: cannot happen */
        pt_log(PT_LOG_ERROR, "blob sync: work not queued", "{s:s}", "error", uv_strerror(rv));
        abort();
    }
}

void bsync_done(struct pt_blob_sync *s)
{
    s->pending--;
    bsync_maybe_stopped(s);
}

/* ---- Tick, progress and metrics --------------------------------------------------------- */

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

/* Bytes still missing: those of the last scan less what active transfers hold already. */
static uint64_t bytes_behind(const struct pt_blob_sync *s, uint64_t received)
{
    return s->behind_bytes > received ? s->behind_bytes - received : 0;
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
    v[PT_METRICS_REPL_BEHIND_BYTES] = bytes_behind(s, received);
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
    for (struct transfer *t = s->transfers; t != NULL; t = t->next)
        bsync_transfer_tick(t, now);
    if (++s->ticks % (1000 / TICK_MS) == 0)
        publish_metrics(s);
    /* nothing missing and nothing fetched: only a change (dirty) starts a scan */
    int behind = s->behind_blobs > 0 || s->nqueue > 0;
    for (struct transfer *t = s->transfers; t != NULL && !behind; t = t->next)
        behind = t->state != T_DONE;
    if (!s->scanning && ((s->dirty && now - s->last_scan_ms >= PT_BLOB_SYNC_SCAN_MS) ||
                         (behind && now - s->last_scan_ms >= PT_BLOB_SYNC_RESCAN_MS)))
        bsync_start_scan(s);
    else if (!s->scanning)
        bsync_schedule(s); /* retries whose time came */
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
    int rv =
        pt_peers_init(&s->bulk, loop, t, PT_CHANNEL_BULK, cfg->self_id, bsync_serve_request, s);
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
    struct region *r = bsync_region_by_id(s, id);
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
        bsync_start_scan(s); /* else the tick starts it once the interval passed */
}

char *pt_blob_sync_status_json(struct pt_blob_sync *s)
{
    uint64_t oldest, received;
    json_t *active = json_array();
    for (struct transfer *t = s->transfers; t != NULL; t = t->next) {
        if (t->state == T_DONE)
            continue;
        struct region *r = bsync_region_by_id(s, t->holder);
        static const char *const names[] = {"opening",    "fetching", "committing",
                                            "announcing", "waiting",  "done"};
        json_array_append_new(active,
                              json_pack("{s:s,s:I,s:I,s:s,s:s,s:b}", "digest", t->digest, "size",
                                        (json_int_t)t->size, "offset", (json_int_t)t->offset,
                                        "from", r != NULL ? r->name : "", "state", names[t->state],
                                        "on_demand", t->demand));
    }
    progress(s, &received, &oldest);
    uint64_t behind = bytes_behind(s, received);
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

void bsync_maybe_stopped(struct pt_blob_sync *s)
{
    if (!s->stopping || s->pending > 0)
        return;
    while (s->transfers != NULL) {
        struct transfer *t = s->transfers;
        s->transfers = t->next;
        bsync_transfer_free(t);
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
    bsync_done(h->data);
}

static void on_bulk_closed(void *arg)
{
    bsync_done(arg);
}

void pt_blob_sync_stop(struct pt_blob_sync *s, void (*cb)(void *arg), void *arg)
{
    s->stopping = 1;
    s->stop_cb = cb;
    s->stop_arg = arg;
    for (struct transfer *t = s->transfers; t != NULL; t = t->next)
        bsync_transfer_stop(t);
    s->pending += 2;
    uv_close((uv_handle_t *)&s->tick, on_tick_closed);
    pt_peers_close(s->bulk, on_bulk_closed, s);
}
