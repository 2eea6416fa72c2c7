/*
 * gc.c - the garbage collector's thread (see gc.h for what it does and when).
 *
 * A pass first deletes the untagged children of deleted indexes that no index names any more
 * (pt_metastore_gc_mark_children, proposed as CollectBlobs with children), then untagged
 * referrers whose subject is gone (pt_metastore_gc_mark_referrers,
 * proposed as CollectBlobs with referrers; re-checked at apply), then
 * pt_metastore_gc_mark walks every located blob in digest order (an iterator, one
 * blob's records at a time), paced to cfg.gc_rate blobs per second; candidates (a blob that
 * is garbage, or has garbage links) are gathered up to PT_COMMAND_COLLECT_MAX and proposed as
 * one CollectBlobs command with the proposer's clock and cfg.gc_grace_ms; the thread waits
 * for its answer, then goes on from the last digest. The FSM re-checks every candidate as of
 * the command's own position in the log, so anything pushed, linked or referenced between
 * marking and apply is kept. A dry run proposes nothing and reports what would go.
 *
 * Forgetting: each collection leaves a record that refuses a mount decided before it; every
 * batch proposed also forgets up to PT_COMMAND_COLLECT_MAX of those older than
 * GC_FORGET_AFTER_MS, and a pass ends with at most GC_FORGET_ROUNDS commands that forget the
 * rest, so the records stay bounded by what a week collects.
 *
 * Deleting files: the FSM writes a local record for every blob it collected (same batch as
 * the collection), so the deletion survives a crash; the thread takes those records one by
 * one: a blob recorded again for this region since (uploaded again) keeps its file; otherwise
 * the file goes if it is older than the collection's time minus the grace (a file younger
 * than that was installed since, or is a fresh replica: the sweep takes it later if still
 * unreferenced), and the record is dropped.
 *
 * State: struct pt_gc is owned by its thread except the fields under run.lock (request, status
 * figures, stop) read by the admin API; the thread, its requests and its one proposal in
 * flight are runner.h's.
 */
#include "gc.h"

#include <stddef.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "blobstore.h"
#include "clock.h"
#include "command.h"
#include "committer.h"
#include "digest.h"
#include "err.h"
#include "log.h"
#include "metastore.h"
#include "metrics.h"
#include "runner.h"
#include "worker.h"

/* Digests of the last pass kept for the status (what was removed, or would be). */
#define GC_REPORT_MAX 1000
/* The thread looks for collected blobs' files to delete this often (ms). */
#define GC_POLL_MS 1000
/* Most records of collected blobs one drain handles before the thread looks around again. */
#define GC_DRAIN_MAX 4096
/* The records of collected blobs that refuse a mount decided before the collection are kept
 * this long, and at most GC_FORGET_ROUNDS commands of them forgotten after a pass beyond
 * those its batches forget (metastore_gc.c). */
#define GC_FORGET_AFTER_MS (7 * PT_GC_FORGET_MIN_MS)
#define GC_FORGET_ROUNDS   16
/* The collector thread's nice value (its marking is CPU work; the request workers come first). */
#define GC_NICE 10

struct gc_blob {
    char digest[PT_DIGEST_STR_MAX + 1];
    uint64_t size;
};

struct pt_gc {
    struct pt_node *node;
    struct pt_runner run; /* thread, lock, request (1 = a pass, 2 = a dry run), proposal */
    /* status, under run.lock */
    const char *phase;
    uint64_t visited, candidates, collected, bytes, links_removed, referrers, children;
    int64_t started_ms, finished_ms;
    int last_status;
    char last_error[128];
    struct gc_blob *report; /* GC_REPORT_MAX */
    size_t nreport;
    int report_truncated;
    uint64_t files_deleted, files_bytes, swept; /* since start, this region */
    /* the thread's own */
    int64_t next_pass_ms, next_sweep_ms;
    struct gc_blob *batch; /* PT_COMMAND_COLLECT_MAX candidates */
    size_t nbatch;
    int64_t pace_start_ms;
    uint64_t paced;
};

/* 1 if this region's state has caught up with what it knows is committed: a single region,
 * or a leader or follower whose applied index reached its commit index. The sweep waits for
 * it: a region replaying its log after a restart may not have applied yet the BlobStored of a
 * file it holds. */
static int caught_up(struct pt_gc *gc)
{
    if (!pt_committer_is_cluster(gc->node->committer))
        return 1;
    json_t *o = pt_runner_raft_status(&gc->run);
    const char *role = json_string_value(json_object_get(o, "role"));
    json_t *commit = json_object_get(o, "commit_index"),
           *applied = json_object_get(o, "applied_index");
    int ok = role != NULL && (strcmp(role, "leader") == 0 || strcmp(role, "follower") == 0) &&
             json_is_integer(commit) && json_is_integer(applied) &&
             json_integer_value(applied) >= json_integer_value(commit);
    json_decref(o);
    return ok;
}

/* ---- a pass ------------------------------------------------------------------------------ */

/* Sleeps so that no more than gc_rate items per second go by (0: no limit). */
static void pace(struct pt_gc *gc)
{
    unsigned rate = gc->node->cfg.gc_rate;
    if (rate == 0)
        return;
    gc->paced++;
    int64_t due = gc->pace_start_ms + (int64_t)(gc->paced * 1000 / rate);
    int64_t now = pt_clock_mono_ms();
    if (due > now) {
        struct timespec ts = {.tv_sec = (due - now) / 1000,
                              .tv_nsec = ((due - now) % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
}

static void report_add(struct pt_gc *gc, const char *digest, uint64_t size)
{
    /* under lock */
    if (gc->nreport == GC_REPORT_MAX) {
        gc->report_truncated = 1;
        return;
    }
    snprintf(gc->report[gc->nreport].digest, sizeof(gc->report[0].digest), "%s", digest);
    gc->report[gc->nreport++].size = size;
}

struct mark_ctx {
    struct pt_gc *gc;
    char last[PT_DIGEST_STR_MAX + 1];
    int full;
};

static int mark_cb(const char *digest, const struct pt_gc_verdict *v, void *arg)
{
    struct mark_ctx *mc = arg;
    struct pt_gc *gc = mc->gc;
    pace(gc);
    pthread_mutex_lock(&gc->run.lock);
    int stop = gc->run.stop;
    gc->visited++;
    int candidate = v->collected || v->links_removed > 0;
    gc->candidates += (uint64_t)candidate;
    if (candidate && gc->run.dry_run) {
        gc->links_removed += v->links_removed;
        if (v->collected) {
            gc->collected++;
            gc->bytes += v->size;
            report_add(gc, digest, v->size);
        }
    }
    pthread_mutex_unlock(&gc->run.lock);
    if (stop)
        return PT_E_UNAVAILABLE;
    if (!candidate || gc->run.dry_run)
        return 0;
    snprintf(gc->batch[gc->nbatch].digest, sizeof(gc->batch[0].digest), "%s", digest);
    gc->batch[gc->nbatch++].size = v->collected ? v->size : 0;
    if (gc->nbatch < PT_COMMAND_COLLECT_MAX)
        return 0;
    snprintf(mc->last, sizeof(mc->last), "%s", digest);
    mc->full = 1;
    return 1;
}

/* Proposes the gathered candidates and counts what the collection removed. */
static int propose_batch(struct pt_gc *gc)
{
    if (gc->nbatch == 0)
        return 0;
    const char **digests = malloc(gc->nbatch * sizeof(*digests));
    if (digests == NULL)
        return PT_E_NOMEM;
    for (size_t i = 0; i < gc->nbatch; i++)
        digests[i] = gc->batch[i].digest;
    struct pt_command_builder b;
    void *buf = NULL;
    size_t len = 0;
    int rv = pt_command_builder_init(&b, pt_clock_wall_ms(), gc->node->cfg.region);
    if (rv == 0) {
        rv = pt_command_add_collect_blobs(&b, digests, gc->nbatch,
                                          (int64_t)gc->node->cfg.gc_grace_ms);
        /* every batch also forgets as many old records as it can make */
        if (rv == 0)
            rv = pt_command_add_forget_collected(&b, GC_FORGET_AFTER_MS);
        if (rv == 0)
            rv = pt_command_builder_encode(&b, &buf, &len);
        pt_command_builder_free(&b);
    }
    free(digests);
    if (rv == 0)
        rv = pt_runner_propose(&gc->run, PT_JOB_PROPOSE, buf, len);
    else
        free(buf);
    if (rv != 0)
        return rv;
    /* the reply comes once this region applied the entry: a blob no region holds now went */
    pthread_mutex_lock(&gc->run.lock);
    for (size_t i = 0; i < gc->nbatch; i++) {
        if (pt_metastore_blob_location(gc->node->ms, gc->batch[i].digest, NULL) !=
            PT_E_BLOB_UNKNOWN)
            continue;
        gc->collected++;
        gc->bytes += gc->batch[i].size;
        report_add(gc, gc->batch[i].digest, gc->batch[i].size);
    }
    pthread_mutex_unlock(&gc->run.lock);
    gc->nbatch = 0;
    return 0;
}

/* Forgets the records of blobs collected long ago (the collections of batches forget as
 * many as they make; this catches up with the rest), at most GC_FORGET_ROUNDS commands. */
static int forget_collected(struct pt_gc *gc)
{
    int rv = 0;
    for (int round = 0; rv == 0 && round < GC_FORGET_ROUNDS; round++) {
        int any = pt_metastore_gc_forgettable(gc->node->ms, pt_clock_wall_ms(), GC_FORGET_AFTER_MS);
        if (any <= 0)
            return any;
        struct pt_command_builder b;
        void *buf = NULL;
        size_t len = 0;
        rv = pt_command_builder_init(&b, pt_clock_wall_ms(), gc->node->cfg.region);
        if (rv == 0) {
            rv = pt_command_add_forget_collected(&b, GC_FORGET_AFTER_MS);
            if (rv == 0)
                rv = pt_command_builder_encode(&b, &buf, &len);
            pt_command_builder_free(&b);
        }
        if (rv == 0)
            rv = pt_runner_propose(&gc->run, PT_JOB_PROPOSE, buf, len);
        else
            free(buf);
    }
    return rv;
}

/* ---- referrers whose subject is gone ------------------------------------------------------ */

struct orphan {
    char repo[PT_METASTORE_REPO_MAX + 1];
    char subject[PT_DIGEST_STR_MAX + 1];
    char digest[PT_DIGEST_STR_MAX + 1];
};

struct ref_ctx {
    struct pt_gc *gc;
    struct orphan *v; /* PT_COMMAND_COLLECT_MAX */
    size_t n;
    int full;
};

static int ref_cb(const char *repo, const char *subject, const char *digest, void *arg)
{
    struct ref_ctx *rc = arg;
    pace(rc->gc);
    if (pt_runner_stopping(&rc->gc->run))
        return PT_E_UNAVAILABLE;
    struct orphan *o = &rc->v[rc->n++];
    snprintf(o->repo, sizeof(o->repo), "%s", repo);
    snprintf(o->subject, sizeof(o->subject), "%s", subject);
    snprintf(o->digest, sizeof(o->digest), "%s", digest);
    if (rc->n < PT_COMMAND_COLLECT_MAX)
        return 0;
    rc->full = 1;
    return 1;
}

/* Deletes untagged referrers whose subject is gone (first, so that their blobs are garbage
 * for the blob marking that follows). Rounds of at most PT_COMMAND_COLLECT_MAX; a round that
 * deletes nothing ends it (what the apply kept would be found again). */
static int collect_referrers(struct pt_gc *gc, int dry_run)
{
    struct ref_ctx rc = {.gc = gc, .v = calloc(PT_COMMAND_COLLECT_MAX, sizeof(struct orphan))};
    struct pt_command_referrer *refs = calloc(PT_COMMAND_COLLECT_MAX, sizeof(*refs));
    int rv = rc.v != NULL && refs != NULL ? 0 : PT_E_NOMEM;
    for (int round = 0; rv == 0 && round < 1000; round++) {
        rc.n = 0;
        rc.full = 0;
        rv = pt_metastore_gc_mark_referrers(gc->node->ms, pt_clock_wall_ms(),
                                            (int64_t)gc->node->cfg.gc_grace_ms, ref_cb, &rc);
        if (rv == 1)
            rv = 0;
        if (rv != 0 || rc.n == 0)
            break;
        if (dry_run) {
            pthread_mutex_lock(&gc->run.lock);
            gc->referrers += rc.n;
            pthread_mutex_unlock(&gc->run.lock);
            break;
        }
        for (size_t i = 0; i < rc.n; i++)
            refs[i] = (struct pt_command_referrer){rc.v[i].repo, rc.v[i].subject, rc.v[i].digest};
        struct pt_command_builder b;
        void *buf = NULL;
        size_t len = 0;
        rv = pt_command_builder_init(&b, pt_clock_wall_ms(), gc->node->cfg.region);
        if (rv == 0) {
            rv = pt_command_add_collect_referrers(&b, refs, rc.n,
                                                  (int64_t)gc->node->cfg.gc_grace_ms);
            if (rv == 0)
                rv = pt_command_builder_encode(&b, &buf, &len);
            pt_command_builder_free(&b);
        }
        if (rv == 0)
            rv = pt_runner_propose(&gc->run, PT_JOB_PROPOSE, buf, len);
        else
            free(buf);
        size_t deleted = 0;
        for (size_t i = 0; rv == 0 && i < rc.n; i++)
            deleted += pt_metastore_get_manifest(gc->node->ms, rc.v[i].repo, rc.v[i].digest,
                                                 NULL) == PT_E_MANIFEST_UNKNOWN;
        pthread_mutex_lock(&gc->run.lock);
        gc->referrers += deleted;
        pthread_mutex_unlock(&gc->run.lock);
        if (deleted == 0 || !rc.full)
            break;
    }
    free(rc.v);
    free(refs);
    return rv;
}

/* ---- children of deleted indexes --------------------------------------------------------- */

struct child_ctx {
    struct pt_gc *gc;
    struct orphan *v; /* PT_COMMAND_COLLECT_MAX; subject unused */
    size_t n;
    int full;
};

static int child_cb(const char *repo, const char *digest, void *arg)
{
    struct child_ctx *cc = arg;
    pace(cc->gc);
    if (pt_runner_stopping(&cc->gc->run))
        return PT_E_UNAVAILABLE;
    struct orphan *o = &cc->v[cc->n++];
    snprintf(o->repo, sizeof(o->repo), "%s", repo);
    snprintf(o->digest, sizeof(o->digest), "%s", digest);
    if (cc->n < PT_COMMAND_COLLECT_MAX)
        return 0;
    cc->full = 1;
    return 1;
}

/* Deletes the children of deleted indexes that nothing names any more (first of all: their
 * referrers and blobs are then garbage for the phases that follow), and drops the records of
 * those named or tagged again. Rounds of at most PT_COMMAND_COLLECT_MAX; a round that changes
 * no record ends it. */
static int collect_children(struct pt_gc *gc, int dry_run)
{
    struct child_ctx cc = {.gc = gc, .v = calloc(PT_COMMAND_COLLECT_MAX, sizeof(struct orphan))};
    struct pt_command_child *kids = calloc(PT_COMMAND_COLLECT_MAX, sizeof(*kids));
    int rv = cc.v != NULL && kids != NULL ? 0 : PT_E_NOMEM;
    for (int round = 0; rv == 0 && round < 1000; round++) {
        cc.n = 0;
        cc.full = 0;
        rv = pt_metastore_gc_mark_children(gc->node->ms, pt_clock_wall_ms(),
                                           (int64_t)gc->node->cfg.gc_grace_ms, child_cb, &cc);
        if (rv == 1)
            rv = 0;
        if (rv != 0 || cc.n == 0)
            break;
        if (dry_run) {
            size_t doomed = 0;
            for (size_t i = 0; i < cc.n; i++)
                doomed += pt_metastore_get_manifest(gc->node->ms, cc.v[i].repo, cc.v[i].digest,
                                                    NULL) == 0;
            pthread_mutex_lock(&gc->run.lock);
            gc->children += doomed; /* at most: one tagged meanwhile is kept */
            pthread_mutex_unlock(&gc->run.lock);
            break;
        }
        for (size_t i = 0; i < cc.n; i++)
            kids[i] = (struct pt_command_child){cc.v[i].repo, cc.v[i].digest};
        struct pt_command_builder b;
        void *buf = NULL;
        size_t len = 0;
        rv = pt_command_builder_init(&b, pt_clock_wall_ms(), gc->node->cfg.region);
        if (rv == 0) {
            rv =
                pt_command_add_collect_children(&b, kids, cc.n, (int64_t)gc->node->cfg.gc_grace_ms);
            if (rv == 0)
                rv = pt_command_builder_encode(&b, &buf, &len);
            pt_command_builder_free(&b);
        }
        if (rv == 0)
            rv = pt_runner_propose(&gc->run, PT_JOB_PROPOSE, buf, len);
        else
            free(buf);
        size_t deleted = 0;
        for (size_t i = 0; rv == 0 && i < cc.n; i++)
            deleted += pt_metastore_get_manifest(gc->node->ms, cc.v[i].repo, cc.v[i].digest,
                                                 NULL) == PT_E_MANIFEST_UNKNOWN;
        pthread_mutex_lock(&gc->run.lock);
        gc->children += deleted;
        pthread_mutex_unlock(&gc->run.lock);
        if (!cc.full)
            break;
    }
    free(cc.v);
    free(kids);
    return rv;
}

static void run_pass(struct pt_gc *gc, int dry_run)
{
    int64_t start = pt_clock_wall_ms(), mono = pt_clock_mono_ms();
    pthread_mutex_lock(&gc->run.lock);
    gc->run.running = 1;
    gc->run.dry_run = dry_run;
    gc->phase = "referrers";
    gc->visited = gc->candidates = gc->collected = gc->bytes = gc->links_removed = 0;
    gc->referrers = gc->children = 0;
    gc->nreport = 0;
    gc->report_truncated = 0;
    gc->started_ms = start;
    gc->last_error[0] = '\0';
    pthread_mutex_unlock(&gc->run.lock);
    gc->pace_start_ms = mono;
    gc->paced = 0;
    gc->nbatch = 0;

    struct mark_ctx mc = {.gc = gc};
    int rv = collect_children(gc, dry_run);
    if (rv == 0)
        rv = collect_referrers(gc, dry_run);
    pthread_mutex_lock(&gc->run.lock);
    gc->phase = "marking";
    pthread_mutex_unlock(&gc->run.lock);
    while (rv == 0) {
        mc.full = 0;
        char after[PT_DIGEST_STR_MAX + 1];
        memcpy(after, mc.last, sizeof(after));
        rv = pt_metastore_gc_mark(gc->node->ms, after, pt_clock_wall_ms(),
                                  (int64_t)gc->node->cfg.gc_grace_ms, mark_cb, &mc);
        if (rv == 1)
            rv = 0;
        if (rv == 0 && !dry_run)
            rv = propose_batch(gc);
        if (!mc.full)
            break;
    }
    if (rv == 0 && !dry_run)
        rv = forget_collected(gc);

    int64_t end = pt_clock_wall_ms();
    pthread_mutex_lock(&gc->run.lock);
    gc->run.running = 0;
    gc->phase = "idle";
    gc->finished_ms = end;
    gc->last_status = rv;
    if (rv != 0)
        snprintf(gc->last_error, sizeof(gc->last_error), "%s", pt_err_message(rv));
    uint64_t collected = gc->collected, bytes = gc->bytes, visited = gc->visited;
    pthread_mutex_unlock(&gc->run.lock);
    if (!dry_run)
        pt_metrics_gc_pass(end, (uint64_t)(pt_clock_mono_ms() - mono));
    pt_log(rv == 0 ? PT_LOG_INFO : PT_LOG_WARN, "garbage collection pass",
           "{s:b,s:I,s:I,s:I,s:I,s:s}", "dry_run", dry_run, "blobs_examined", (json_int_t)visited,
           "blobs_collected", (json_int_t)collected, "bytes", (json_int_t)bytes, "duration_ms",
           (json_int_t)(pt_clock_mono_ms() - mono), "result", rv == 0 ? "ok" : pt_err_message(rv));
}

/* ---- files ----------------------------------------------------------------------------- */

/* 1 if the location record of digest names this region, 0 if not, negative if unknown. */
static int held_here(struct pt_gc *gc, const char *digest)
{
    char **regions = NULL;
    size_t n = 0;
    int rv = pt_metastore_blob_regions(gc->node->ms, digest, NULL, &regions, &n);
    if (rv == PT_E_BLOB_UNKNOWN)
        return 0;
    if (rv != 0)
        return rv;
    int held = 0;
    for (size_t i = 0; i < n; i++)
        held |= strcmp(regions[i], gc->node->cfg.region) == 0;
    pt_strv_free(regions, n);
    return held;
}

/* Removes the file of d if older than before_ms and not held here; counts it. */
static void remove_file(struct pt_gc *gc, const struct pt_digest *d, const char *digest,
                        int64_t before_ms)
{
    int held = held_here(gc, digest);
    if (held != 0)
        return; /* recorded here again, or unknown: never delete on not knowing */
    uint64_t size = 0;
    if (pt_blobstore_stat(gc->node->bs, d, &size) != 0)
        return;
    int rv = pt_blobstore_remove_blob_before(gc->node->bs, d, before_ms);
    if (rv == 0) {
        pthread_mutex_lock(&gc->run.lock);
        gc->files_deleted++;
        gc->files_bytes += size;
        pthread_mutex_unlock(&gc->run.lock);
        pt_metrics_gc_reclaimed(1, size);
        pt_log(PT_LOG_INFO, "blob file removed", "{s:s,s:I}", "digest", digest, "size",
               (json_int_t)size);
    } else if (rv < 0 && rv != PT_E_BLOB_UNKNOWN) {
        pt_log(PT_LOG_WARN, "cannot remove a blob file", "{s:s,s:s}", "digest", digest, "error",
               pt_err_message(rv));
    }
}

/* Deletes the files of the blobs this region's applied collections named, at most
 * GC_DRAIN_MAX records a call (the thread answers requests and stops between calls), walking
 * them in digest order from where the call started. Returns how many records were handled. */
static unsigned drain(struct pt_gc *gc)
{
    unsigned n = 0;
    int64_t grace = (int64_t)gc->node->cfg.gc_grace_ms;
    char digest[PT_DIGEST_STR_MAX + 1] = "";
    while (n < GC_DRAIN_MAX) {
        int64_t t;
        if (pt_runner_stopping(&gc->run) ||
            pt_metastore_gc_pending_next(gc->node->ms, digest, digest, &t) != 0)
            break;
        struct pt_digest d;
        if (pt_digest_parse(digest, strlen(digest), &d) == 0)
            remove_file(gc, &d, digest, t - grace);
        if (pt_metastore_gc_pending_delete(gc->node->ms, digest) != 0)
            break;
        n++;
    }
    return n;
}

static int sweep_cb(const struct pt_digest *d, int64_t mtime_ms, uint64_t size, void *arg)
{
    struct pt_gc *gc = arg;
    (void)size;
    if (pt_runner_stopping(&gc->run))
        return PT_E_UNAVAILABLE;
    int64_t before = pt_clock_wall_ms() - (int64_t)gc->node->cfg.gc_grace_ms;
    if (mtime_ms >= before)
        return 0;
    pace(gc);
    char digest[PT_DIGEST_STR_MAX + 1];
    pt_digest_format(d, digest);
    pthread_mutex_lock(&gc->run.lock);
    uint64_t was = gc->files_deleted;
    pthread_mutex_unlock(&gc->run.lock);
    remove_file(gc, d, digest, before);
    pthread_mutex_lock(&gc->run.lock);
    gc->swept += gc->files_deleted - was;
    pthread_mutex_unlock(&gc->run.lock);
    return 0;
}

/* Removes blob files no location record names for this region, older than the grace. */
static void sweep(struct pt_gc *gc)
{
    gc->pace_start_ms = pt_clock_mono_ms();
    gc->paced = 0;
    int rv = pt_blobstore_foreach_blob(gc->node->bs, sweep_cb, gc);
    if (rv != 0 && rv != PT_E_UNAVAILABLE)
        pt_log(PT_LOG_WARN, "blob sweep failed", "{s:s}", "error", pt_err_message(rv));
}

/* ---- the thread ------------------------------------------------------------------------ */

static void *gc_main(void *arg)
{
    struct pt_gc *gc = arg;
    /* below the request workers: a pass takes what CPU they leave (a thread's nice value is
     * its own on Linux); without the right to, it runs at the node's */
    if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), GC_NICE) != 0)
        pt_log(PT_LOG_DEBUG, "garbage collector priority unchanged", NULL);
    const struct pt_config *cfg = &gc->node->cfg;
    int64_t sweep_every = (int64_t)cfg->gc_grace_ms;
    if (sweep_every < 5000)
        sweep_every = 5000;
    if (sweep_every > 3600000)
        sweep_every = 3600000;
    int64_t now = pt_clock_mono_ms();
    gc->next_pass_ms = cfg->gc_interval_ms > 0 ? now + (int64_t)cfg->gc_interval_ms : 0;
    gc->next_sweep_ms = now + sweep_every;
    unsigned drained = 0;
    for (;;) {
        int req;
        if (pt_runner_wait(&gc->run, drained < GC_DRAIN_MAX ? GC_POLL_MS : 0, &req))
            break;
        drained = drain(gc);
        int sweep_now = drained > 0;
        now = pt_clock_mono_ms();
        int scheduled = gc->next_pass_ms != 0 && now >= gc->next_pass_ms;
        if (scheduled)
            gc->next_pass_ms = now + (int64_t)cfg->gc_interval_ms;
        if (req != 0 || (scheduled && pt_runner_leads(&gc->run))) {
            run_pass(gc, req == 2);
            drained = drain(gc);
            sweep_now = 1;
        }
        /* the sweep once the records are drained (a full drain goes on at once) */
        if (drained < GC_DRAIN_MAX && (sweep_now || now >= gc->next_sweep_ms) && caught_up(gc)) {
            sweep(gc);
            gc->next_sweep_ms = pt_clock_mono_ms() + sweep_every;
        }
    }
    return NULL;
}

int pt_gc_start(struct pt_node *node, uv_loop_t *loop, struct pt_gc **out)
{
    struct pt_gc *gc = calloc(1, sizeof(*gc));
    if (gc == NULL)
        return PT_E_NOMEM;
    gc->node = node;
    gc->phase = "idle";
    gc->report = calloc(GC_REPORT_MAX, sizeof(*gc->report));
    gc->batch = calloc(PT_COMMAND_COLLECT_MAX, sizeof(*gc->batch));
    if (gc->report == NULL || gc->batch == NULL || pt_runner_init(&gc->run, node, loop) != 0) {
        free(gc->report);
        free(gc->batch);
        free(gc);
        return PT_E_NOMEM;
    }
    if (pt_runner_spawn(&gc->run, gc_main, gc) != 0)
        return PT_E_INTERNAL; /* gc stays allocated: the mailbox closes on the loop */
    *out = gc;
    return 0;
}

void pt_gc_stop(struct pt_gc *gc)
{
    if (gc == NULL)
        return;
    pt_runner_stop(&gc->run);
}

int pt_gc_request(struct pt_gc *gc, int dry_run)
{
    return pt_runner_request(&gc->run, dry_run);
}

char *pt_gc_status_json(struct pt_gc *gc)
{
    pthread_mutex_lock(&gc->run.lock);
    json_t *blobs = json_array();
    for (size_t i = 0; blobs != NULL && i < gc->nreport; i++)
        json_array_append_new(blobs, json_pack("{s:s,s:I}", "digest", gc->report[i].digest, "size",
                                               (json_int_t)gc->report[i].size));
    const struct pt_config *cfg = &gc->node->cfg;
    json_t *o = json_pack(
        "{s:s,s:b,s:b,s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:o,s:b,s:s,s:I,s:I,s:I,s:I,s:I,"
        "s:I}",
        "region", cfg->region, "running", gc->run.running || gc->run.requested != 0, "dry_run",
        gc->run.running ? gc->run.dry_run : gc->run.requested == 2 || gc->run.dry_run, "phase",
        gc->run.requested != 0 && !gc->run.running ? "starting" : gc->phase, "blobs_examined",
        (json_int_t)gc->visited, "candidates", (json_int_t)gc->candidates, "blobs_collected",
        (json_int_t)gc->collected, "bytes_reclaimed", (json_int_t)gc->bytes, "links_removed",
        (json_int_t)gc->links_removed, "referrers_deleted", (json_int_t)gc->referrers,
        "children_deleted", (json_int_t)gc->children, "started_ms", (json_int_t)gc->started_ms,
        "finished_ms", (json_int_t)gc->finished_ms, "blobs", blobs != NULL ? blobs : json_array(),
        "truncated", gc->report_truncated, "error", gc->last_error, "files_deleted_total",
        (json_int_t)gc->files_deleted, "file_bytes_deleted_total", (json_int_t)gc->files_bytes,
        "files_swept_total", (json_int_t)gc->swept, "grace_ms", (json_int_t)cfg->gc_grace_ms,
        "interval_ms", (json_int_t)cfg->gc_interval_ms, "rate", (json_int_t)cfg->gc_rate);
    pthread_mutex_unlock(&gc->run.lock);
    char *text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    return text;
}
