/*
 * gc.h - the node's garbage collector of blobs: marking passes that propose CollectBlobs
 * through the committer, and the deletion of the files of collected blobs in this region.
 *
 * One thread per node (never an event loop, never the Raft or committer thread) runs:
 *   - passes: on demand (pt_gc_request, POST /admin/gc) in any region, and every
 *     cfg.gc_interval_ms on the region that is the Raft leader (a single region always);
 *   - after every collection this region applied (local records written by the FSM in the
 *     same batch, node/store/metastore_gc.c): deleting those blobs' files;
 *   - a local sweep (once caught up with the commit index it knows) of blob files that no
 *     location record names for this region and that are older than the grace (files left by
 *     a crash, replicas fetched while their blob was collected, collections this region
 *     skipped by installing a snapshot).
 * The rules of what is garbage are metastore_gc.c's; the reasons the file deletion is safe
 * against a concurrent upload of the same digest are pt_blobstore_remove_blob_before's.
 *
 * Threads: pt_gc_start and pt_gc_stop run on the main thread (its loop carries the mailbox
 * committer replies come to); request and status from any thread.
 */
#ifndef PT_GC_H
#define PT_GC_H

#include <uv.h>

struct pt_node;
struct pt_gc;

/* Starts the collector of node (borrowed; ms, bs, committer and cfg set). loop is the main
 * loop (borrowed, running until pt_gc_stop). *out lives until exit. PT_E_NOMEM,
 * PT_E_INTERNAL (no thread). */
int pt_gc_start(struct pt_node *node, uv_loop_t *loop, struct pt_gc **out);
/* Stops the thread (a pass in progress ends at its next step); main thread, before the
 * committer stops. Its mailbox is closed with it. */
void pt_gc_stop(struct pt_gc *gc);
/* Asks for a pass now (dry_run: mark and report only). 0, or PT_E_EXISTS when one runs. */
int pt_gc_request(struct pt_gc *gc, int dry_run);
/* The collector's state as JSON (admin_api.h, GET /admin/gc); owned (free()), NULL on
 * allocation failure. */
char *pt_gc_status_json(struct pt_gc *gc);

#endif
