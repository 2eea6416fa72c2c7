/*
 * blob_sync_scan.c - the queue of blobs this region lacks, and what starts their transfers.
 *
 * A scan reads the store's index of the blobs this region lacks (pt_metastore_missing_page,
 * on the thread pool: its cost is what is missing, not what the registry holds) and keeps the
 * first PT_BLOB_SYNC_QUEUE_MAX of them, sorted by digest, with the ids of the regions that
 * hold them; the rest are found by later scans. A store that keeps no index for this region
 * (opened without pt_metastore_missing_index) is walked whole instead. The blob_sync tick
 * starts a scan after every change to replicated state (at most every PT_BLOB_SYNC_SCAN_MS),
 * and every PT_BLOB_SYNC_RESCAN_MS while something is missing or being fetched (retries,
 * holders that came back); an idle region in sync scans nothing. A new queue replaces the old one
 * but keeps what the old one knew of each blob: when it was first seen missing (the age in the
 * status) and when it may be tried again after a failure. Active transfers learn of new holders.
 *
 * Scheduling starts background transfers in digest order up to `concurrency` at once, passing
 * over blobs waiting for a retry, with no holder, with a transfer already, or stored here
 * after the scan began (`recent`: the scan could not have seen their BlobStored).
 */
#include "blob_sync_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "metastore.h"

#define SCAN_ACTIVE_MAX 64

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
    /* transfers running when the scan began, and whether their blob is recorded anywhere */
    char active[SCAN_ACTIVE_MAX][PT_DIGEST_STR_MAX + 1];
    int collected[SCAN_ACTIVE_MAX];
    unsigned nactive;
};

struct want *bsync_queue_find(struct pt_blob_sync *s, const char *digest)
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

void bsync_queue_stored(struct pt_blob_sync *s, const char *digest, uint64_t size)
{
    unsigned i = s->recent_next++ % RECENT;
    snprintf(s->recent[i].digest, sizeof(s->recent[i].digest), "%s", digest);
    s->recent[i].at_ms = uv_now(s->loop);
    /* no longer missing: the status says so at once, not only after the next scan */
    struct want *w = bsync_queue_find(s, digest);
    if (w != NULL) {
        size_t k = (size_t)(w - s->queue);
        memmove(w, w + 1, (s->nqueue - k - 1) * sizeof(*w));
        s->nqueue--;
        s->behind_blobs -= s->behind_blobs > 0;
        s->behind_bytes -= s->behind_bytes >= size ? size : s->behind_bytes;
    }
}

unsigned bsync_holder_ids(const struct region *regions, unsigned nregions, const char *const *names,
                          size_t n, uint64_t *ids)
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
    w->nholders = bsync_holder_ids(sc->regions, sc->nregions, holders, n, w->holders);
    sc->n++;
    return 0;
}

static void scan_work(uv_work_t *work)
{
    struct scan *sc = work->data;
    size_t n;
    sc->rv = pt_metastore_missing_page(sc->s->ms, sc->region, NULL, PT_BLOB_SYNC_QUEUE_MAX, scan_cb,
                                       sc, &n);
    if (sc->rv == 0)
        sc->rv =
            pt_metastore_missing_totals(sc->s->ms, sc->region, &sc->total_blobs, &sc->total_bytes);
    if (sc->rv == PT_E_UNAVAILABLE) {
        sc->n = 0;
        sc->total_blobs = sc->total_bytes = 0;
        sc->rv = pt_metastore_missing_foreach(sc->s->ms, sc->region, scan_cb, sc);
    }
    /* a blob no region holds any more was collected: its transfer is abandoned */
    for (unsigned i = 0; sc->rv == 0 && i < sc->nactive; i++)
        sc->collected[i] =
            pt_metastore_blob_location(sc->s->ms, sc->active[i], NULL) == PT_E_BLOB_UNKNOWN;
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
            struct want *w = bsync_queue_find(s, t->digest);
            if (w != NULL && t->state != T_DONE) {
                memcpy(t->holders, w->holders, w->nholders * sizeof(*w->holders));
                t->nholders = w->nholders;
            }
        }
        for (unsigned i = 0; i < sc->nactive; i++) {
            struct transfer *t = sc->collected[i] ? bsync_transfer_find(s, sc->active[i]) : NULL;
            if (t != NULL)
                bsync_transfer_abandon(t);
        }
        bsync_schedule(s);
    }
    free(sc->wants);
    free(sc);
    bsync_done(s);
}

void bsync_start_scan(struct pt_blob_sync *s)
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
    for (struct transfer *t = s->transfers; t != NULL && sc->nactive < SCAN_ACTIVE_MAX;
         t = t->next) {
        if (t->state != T_DONE)
            snprintf(sc->active[sc->nactive++], sizeof(sc->active[0]), "%s", t->digest);
    }
    s->scanning = 1;
    s->dirty = 0;
    s->last_scan_ms = uv_now(s->loop);
    sc->work.data = sc;
    bsync_queue_work(s, &sc->work, scan_work, after_scan);
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

void bsync_schedule(struct pt_blob_sync *s)
{
    unsigned limit = s->cfg.concurrency > 0 ? s->cfg.concurrency : DEFAULT_PARALLEL;
    unsigned active = background_active(s);
    uint64_t now = uv_now(s->loop);
    for (size_t i = 0; i < s->nqueue && active < limit; i++) {
        struct want *w = &s->queue[i];
        if (w->retry_ms > now || w->nholders == 0 || bsync_transfer_find(s, w->digest) != NULL ||
            stored_lately(s, w->digest))
            continue;
        if (bsync_transfer_new(s, w->digest, w->size, w->holders, w->nholders, 0) != NULL)
            active++;
    }
}
