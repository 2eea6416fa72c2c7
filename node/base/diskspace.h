/*
 * diskspace.h - the free-space reserve of the node's data directory.
 *
 * Role: RocksDB aborts the process when one of its writes meets ENOSPC, and a blob write that
 * fills the disk starves the metadata that must follow it. So the node never lets its data
 * filesystems fill up: below a reserve of free space (--disk-reserve) every write that needs
 * space (uploads, chunks, manifest and tag writes, blob replication, Raft apply) is refused
 * before it starts, reads go on, and writes resume by themselves once space returns.
 *
 * Design: one process-wide watcher (like metrics.h), because every layer above base asks it
 * (store, replication, http). It watches up to PT_DISK_PATHS directories (data dir, blobs,
 * meta, raft: each may be its own mount) and calls statvfs on each: at every pt_disk_check
 * (a few microseconds, so "before every write" is the sampling rule, with no staleness) and
 * from pt_disk_sample (metrics, healthz). The state is the tightest filesystem: the smallest
 * free space minus its reserve. A reserve is either bytes or a percentage of the filesystem;
 * the default is 2 GiB or 5% of the filesystem, whichever is smaller.
 *
 * Threads: every function is safe from any thread after pt_disk_init (relaxed atomics);
 * pt_disk_init runs once at start-up before other threads use the watcher. Without
 * pt_disk_init the watcher watches nothing and never reports low (unit tests, tools).
 */
#ifndef PT_DISKSPACE_H
#define PT_DISKSPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PT_DISK_PATHS    4
#define PT_DISK_PATH_MAX 4096
/* Seconds a refused client is told to wait (Retry-After). */
#define PT_DISK_RETRY_AFTER 30

/* A reserve: bytes if percent_x100 is 0, else percent_x100 / 100 percent of the filesystem
 * (1..5000 = 0.01% to 50%); auto = the default (min of 2 GiB and 5%). */
struct pt_disk_reserve {
    bool automatic;
    uint64_t bytes;
    unsigned percent_x100;
};

/* Parses "" or "auto" (the default), a size ("2GiB", "500MiB", "0" = no reserve) or a
 * percentage ("5%", "2.5%", at most 50%). s is borrowed. Returns 0 or PT_E_CONFIG. */
int pt_disk_reserve_parse(const char *s, struct pt_disk_reserve *out);

/* The reserve in bytes on a filesystem of total bytes. */
uint64_t pt_disk_reserve_bytes(const struct pt_disk_reserve *r, uint64_t total);

/* Watches paths[0..n) (borrowed; copied; n cut to PT_DISK_PATHS; a path that does not exist
 * yet is measured on its nearest existing ancestor) with reserve r (copied), then samples
 * once. */
void pt_disk_init(const char *const *paths, size_t n, const struct pt_disk_reserve *r);

/* Samples now and returns true when any watched filesystem has less free space (for an
 * unprivileged writer: f_bavail) than its reserve plus need bytes (need: the size of the
 * write about to happen, 0 if unknown). Low is also reported when statvfs fails. */
bool pt_disk_low(uint64_t need);

/* Counts one refused write (portolan_disk_refusals_total). */
void pt_disk_refused(void);

/* The state at the last sample. */
struct pt_disk_state {
    bool watching; /* pt_disk_init was called with at least one path */
    bool low;      /* free < reserve on the tightest filesystem */
    uint64_t free_bytes;
    uint64_t reserve_bytes;
    uint64_t refusals;
};
/* Samples now (if watching) and fills *out. */
void pt_disk_sample(struct pt_disk_state *out);

/* Test seam: extra bytes treated as used on every watched filesystem (0 = none). */
void pt_disk_set_simulated_use(uint64_t bytes);

#endif
