/*
 * retention.h - the node's retention runner: evaluates the retention rules
 * (store/metastore_policy.c) and proposes what they delete as Retain commands.
 *
 * One thread per node (never an event loop, never the Raft or committer thread) runs a
 * retention pass on demand (pt_retention_request, POST /admin/retention/run) in any region,
 * and every cfg.retention_interval_ms on the region that is the Raft leader (a single region
 * always). A pass streams over the store (pt_metastore_retention_plan: bounded memory),
 * gathers up to PT_COMMAND_RETAIN_MAX tags and manifests and proposes them as one Retain,
 * waits for its answer, and goes on. The FSM re-checks every item at apply, so a push racing
 * the pass wins. A dry run proposes nothing and reports exactly the plan; a real run reports
 * what the applied commands deleted.
 *
 * Threads: start and stop on the main thread (committer replies come to its loop); request
 * and status from any thread.
 */
#ifndef PT_RETENTION_H
#define PT_RETENTION_H

#include <uv.h>

struct pt_node;
struct pt_retention;

/* Starts the runner of node (borrowed; ms, committer and cfg set). loop is the main loop
 * (borrowed, running until pt_retention_stop). *out lives until exit. PT_E_NOMEM,
 * PT_E_INTERNAL (no thread). */
int pt_retention_start(struct pt_node *node, uv_loop_t *loop, struct pt_retention **out);
/* Stops the thread (a pass ends at its next step); main thread, before the committer stops.
 * NULL is a no-op. */
void pt_retention_stop(struct pt_retention *r);
/* Asks for a pass now (dry_run: report only). 0, or PT_E_EXISTS when one runs. */
int pt_retention_request(struct pt_retention *r, int dry_run);
/* The runner's state and last report as JSON (admin_api.h, GET /admin/retention/run);
 * owned (free()), NULL on allocation failure. */
char *pt_retention_status_json(struct pt_retention *r);

#endif
