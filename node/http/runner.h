/*
 * runner.h - the thread of a background runner of the node (the garbage collector, the
 * retention runner): runs on request or on a schedule, and proposes its commands through
 * the committer one at a time, waiting for each answer.
 *
 * Design: the owner embeds a struct pt_runner and writes the thread's main function; the
 * runner holds what every such thread needs: the lock and condition the owner's status
 * shares, the request (a run or a dry run), the stop flag, and the one proposal in flight
 * with the mailbox its answer comes back through (on the main loop).
 *
 * Invariants: at most one proposal in flight; `requested`, `running`, `stop` and
 * `prop_done` change only under `lock`. The proposal stays borrowed by the committer from
 * submit to its answer, so a runner whose thread stopped while one was in flight lives
 * until exit (its owner is never freed).
 *
 * Threads: pt_runner_init, pt_runner_spawn and pt_runner_stop on the main thread (its loop
 * carries the mailbox); pt_runner_request from any thread; the rest on the runner's thread.
 */
#ifndef PT_RUNNER_H
#define PT_RUNNER_H

#include <jansson.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "committer.h"
#include "mailbox.h"

struct pt_node;

struct pt_runner {
    struct pt_node *node; /* borrowed */
    pthread_t thread;
    pthread_mutex_t lock; /* guards the fields below and whatever status the owner keeps */
    pthread_cond_t cond;  /* signalled on a request, a stop and a proposal's answer */
    struct pt_mailbox mailbox;
    struct pt_proposal prop; /* the one in flight */
    int prop_done;
    int stop;
    int requested; /* 1 = a run, 2 = a dry run, 0 = none */
    int running;   /* a run is taken or in progress: set when a request is taken (and by the
                      owner at a scheduled run), cleared by the owner at its end */
    int dry_run;   /* the run in progress, or else the last one, is a dry run */
};

/* Sets r up for node (borrowed; committer set) with its mailbox on loop (the main loop,
 * borrowed, running until pt_runner_stop). 0, or PT_E_NOMEM (nothing to undo). */
int pt_runner_init(struct pt_runner *r, struct pt_node *node, uv_loop_t *loop);
/* Starts the thread: main(arg). 0, or PT_E_INTERNAL (no thread: the mailbox is closed on
 * the loop, so r and its owner must stay allocated). */
int pt_runner_spawn(struct pt_runner *r, void *(*main)(void *), void *arg);
/* Stops the thread (the owner's run ends at its next pt_runner_stopping) and closes the
 * mailbox; main thread, before the committer stops. */
void pt_runner_stop(struct pt_runner *r);
/* Asks for a run now (dry_run: report only). 0, or PT_E_EXISTS while one runs or waits. */
int pt_runner_request(struct pt_runner *r, int dry_run);

/* Runner thread: waits up to wait_ms (0: not at all) for a request or the stop. Returns 1 on
 * stop; else 0 with the request taken into *req (0 none, 1 a run, 2 a dry run). A request
 * taken sets running and dry_run at once, so that a status never shows the run as over
 * before the owner has started it; the owner then runs it and clears running. */
int pt_runner_wait(struct pt_runner *r, int64_t wait_ms, int *req);
/* Runner thread: 1 once pt_runner_stop was called. */
int pt_runner_stopping(struct pt_runner *r);
/* Runner thread: submits a committer job of kind (enum pt_job_kind) with buf (moved to the
 * committer) and waits for its answer: r->prop holds its outputs. Its status, or
 * PT_E_UNAVAILABLE when stopping first. */
int pt_runner_propose(struct pt_runner *r, int kind, void *buf, size_t len);
/* Runner thread: the raft node's status document (owned by the caller), or NULL when it
 * could not be had. */
json_t *pt_runner_raft_status(struct pt_runner *r);
/* Runner thread: 1 if this region runs scheduled work: a single region, or the Raft
 * leader. */
int pt_runner_leads(struct pt_runner *r);

#endif
