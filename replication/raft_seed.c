/*
 * raft_seed.c - a region whose store already holds state bootstraps a cluster from it: a
 * single region given a cluster file, or a data directory made by `portolan restore`.
 *
 * Role: the FSM skips every entry at or below the store's applied index (raft_fsm.c: the
 * store may be ahead of raft after a restart). A store whose index came from elsewhere (the
 * single-region committer, a backup) and a fresh Raft log starting at 1 would make it skip the
 * cluster's first writes, acknowledged and never applied. Here the state becomes the log's
 * state instead, and regions added later receive it as a snapshot, never by replaying a log
 * that does not hold it.
 *
 * Design:
 * - Before bootstrap (pt_raft_node__seed_prepare): a fresh raft directory (raft_uv has
 *   written no metadata file yet) over a store with an applied index is a seed. Refused when
 *   this region is to join a cluster (its state would be overwritten or, worse, skipped into)
 *   and when the cluster file lists any other region (those would bootstrap the same first
 *   entry without the state, and could elect a leader among themselves). Otherwise the marker
 *   <raft dir>-seed is made durable, then the store is rebased to index 1, the bootstrap
 *   configuration's index (pt_metastore_rebase); every blob file this region has is recorded
 *   as held by it under its name in the cluster file (claim_blobs), so that other regions
 *   fetch it from here; then raft bootstraps. A crash between these
 *   steps finds a fresh raft directory and a non-empty store again and repeats them.
 * - After start (pt_raft_node__seed_started): while the marker exists and raft still holds
 *   entry 1 in its log, the region is seeding: a new region would be sent entry 1 onwards
 *   (raft sends a snapshot only for entries it no longer holds), so additions are refused
 *   (PT_E_UNAVAILABLE, pt_raft_node__seeding) and snapshots are taken after every entry,
 *   keeping one entry behind, until entry 1 is gone (raft_node's tick calls
 *   pt_raft_node__seed_tick, which also starts a barrier each second while leading, so the
 *   snapshot does not wait for a write). Then the usual threshold and trailing come back.
 *   The marker is removed at the first start whose loaded log no longer begins at entry 1: until
 *   then a restart may load entry 1 again from raft_uv's open segment, and seeds again.
 * Threads: the raft loop (pt_raft_node_start's thread before the loop runs, for prepare).
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blobstore.h"
#include "digest.h"
#include "err.h"
#include "fileio.h"
#include "log.h"
#include "metastore.h"
#include "raft_node_int.h"

/* Raft index of the bootstrap configuration entry: the seeded state's index. */
#define SEED_INDEX 1
/* Blob holders recorded per write while claiming the blob files. */
#define CLAIM_BATCH 4096

static int marker_path(const struct pt_raft_node *n, char *out, size_t cap)
{
    int w = snprintf(out, cap, "%s-seed", n->cfg.dir);
    return w < 0 || (size_t)w >= cap ? PT_E_TOO_LARGE : 0;
}

static bool has_file(const char *dir, const char *name)
{
    char p[4096];
    int w = snprintf(p, sizeof(p), "%s/%s", dir, name);
    struct stat st;
    return w > 0 && (size_t)w < sizeof(p) && stat(p, &st) == 0;
}

/* raft_uv writes its term and vote to metadata1 / metadata2 from its first bootstrap or
 * vote on: without either, the directory holds no Raft state. */
static bool raft_dir_fresh(const char *dir)
{
    return !has_file(dir, "metadata1") && !has_file(dir, "metadata2");
}

static int make_marker(const char *path)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0)
        return PT_E_IO;
    int rv = fsync(fd) == 0 ? 0 : PT_E_IO;
    close(fd);
    return rv == 0 && pt_fsync_parent(path) == 0 ? 0 : PT_E_IO;
}

struct claim {
    struct pt_metastore *ms;
    struct pt_metastore_batch *b;
    const char *region;
    size_t staged;
    uint64_t claimed;
};

static int claim_one(const struct pt_digest *d, int64_t mtime_ms, uint64_t size, void *arg)
{
    (void)mtime_ms;
    struct claim *c = arg;
    char digest[PT_DIGEST_STR_MAX + 1];
    pt_digest_format(d, digest);
    uint64_t recorded;
    int rv = pt_metastore_blob_location(c->ms, digest, &recorded);
    if (rv == PT_E_BLOB_UNKNOWN || (rv == 0 && recorded != size))
        return 0; /* not in the state (left for the garbage sweep), or not that blob */
    if (rv == 0)
        rv = pt_metastore_batch_blob_stored(c->b, digest, size, c->region);
    if (rv == 0 && ++c->staged == CLAIM_BATCH) {
        rv = pt_metastore_batch_commit(c->b, SEED_INDEX);
        c->claimed += c->staged;
        c->staged = 0;
    }
    return rv;
}

/* Records this region (under its name in the cluster file) as a holder of every blob file it
 * has that the state knows: the state names the holders under their earlier names (a single
 * region's "local", the regions of a backed-up cluster), which the cluster's other regions
 * would never find among its members. Earlier names stay listed; readers skip non-members. */
static int claim_blobs(struct pt_raft_node *n, const char *region, uint64_t *claimed)
{
    *claimed = 0;
    if (n->cfg.blobs == NULL)
        return 0;
    struct claim c = {.ms = n->ms, .region = region};
    int rv = pt_metastore_batch_new(n->ms, &c.b);
    if (rv != 0)
        return rv;
    rv = pt_blobstore_foreach_blob(n->cfg.blobs, claim_one, &c);
    if (rv == 0)
        rv = pt_metastore_batch_commit_durable(c.b, SEED_INDEX);
    pt_metastore_batch_free(c.b);
    *claimed = c.claimed + c.staged;
    return rv;
}

int pt_raft_node__seed_prepare(struct pt_raft_node *n)
{
    uint64_t have = pt_metastore_applied_index(n->ms);
    if (have == 0 || !raft_dir_fresh(n->cfg.dir))
        return 0;
    if (n->cfg.join) {
        pt_log(PT_LOG_ERROR,
               "a region joining a cluster starts on an empty data directory; this one holds "
               "state (remove it, or bootstrap a cluster of this region alone from it)",
               "{s:I}", "applied_index", (json_int_t)have);
        return PT_E_CONFIG;
    }
    if (n->cfg.cluster.nregions != 1) {
        pt_log(PT_LOG_ERROR,
               "a data directory that holds state bootstraps a cluster of its own region "
               "alone: list only this region in the cluster file, then add the others with "
               "`portolan cluster add`",
               "{s:I,s:i}", "applied_index", (json_int_t)have, "regions_listed",
               (int)n->cfg.cluster.nregions);
        return PT_E_CONFIG;
    }
    char marker[4096];
    int rv = marker_path(n, marker, sizeof(marker));
    if (rv == 0)
        rv = make_marker(marker);
    if (rv == 0)
        rv = pt_metastore_rebase(n->ms, SEED_INDEX);
    uint64_t claimed = 0;
    if (rv == 0)
        rv = claim_blobs(n, n->cfg.cluster.regions[0].name, &claimed);
    if (rv != 0) {
        pt_log(PT_LOG_ERROR, "bootstrapping a cluster from this region's state failed", "{s:s}",
               "error", pt_err_message(rv));
        return rv;
    }
    pt_log(PT_LOG_INFO,
           "bootstrapping a cluster from this region's state: regions added later install a "
           "snapshot of it",
           "{s:I,s:I}", "previous_applied_index", (json_int_t)have, "blobs_held",
           (json_int_t)claimed);
    return 0;
}

void pt_raft_node__seed_started(struct pt_raft_node *n)
{
    char marker[4096];
    struct stat st;
    if (marker_path(n, marker, sizeof(marker)) != 0 || stat(marker, &st) != 0)
        return;
    if (n->raft.log.offset >= SEED_INDEX) {
        /* the log raft loaded no longer begins with entry 1: nor will any later one */
        if (unlink(marker) == 0)
            (void)pt_fsync_parent(marker);
        return;
    }
    n->seeding = 1;
    raft_set_snapshot_threshold(&n->raft, 1);
    /* not 0: raft_uv takes a trailing of 0 for an installed snapshot and moves its next
     * append index to the snapshot's */
    raft_set_snapshot_trailing(&n->raft, 1);
}

static void on_seed_barrier(struct raft_barrier *req, int status)
{
    (void)status; /* the next tick starts another one while still seeding */
    struct pt_raft_node *n = req->data;
    n->seed_barrier_inflight = 0;
}

void pt_raft_node__seed_tick(struct pt_raft_node *n)
{
    if (!n->seeding)
        return;
    if (n->raft.log.offset >= SEED_INDEX) {
        n->seeding = 0;
        raft_set_snapshot_threshold(&n->raft, n->snapshot_every);
        raft_set_snapshot_trailing(&n->raft, n->snapshot_every / 4);
        pt_log(PT_LOG_INFO, "cluster seeded: its first entries are in a snapshot", "{s:I}",
               "snapshot_index", (json_int_t)n->raft.log.snapshot.last_index);
        return;
    }
    if (!n->seed_barrier_inflight && pt_raft_node__leader_id(n) == n->cfg.self_id) {
        n->seed_barrier.data = n;
        if (raft_barrier(&n->raft, &n->seed_barrier, on_seed_barrier) == 0)
            n->seed_barrier_inflight = 1;
    }
}

bool pt_raft_node__seeding(const struct pt_raft_node *n)
{
    return n->seeding != 0;
}
