/*
 * worker.h - the services one Portolan node shares between its threads, and the per-thread
 * state of an HTTP worker.
 *
 * Ownership: struct pt_node is created by server.c at start-up (worker.c holds the functions below)
 * and lives until exit; its services are thread-safe (RocksDB, the blob store's files) or owned by
 * one thread (the committer owns the apply thread). struct pt_worker is owned by its HTTP loop
 * thread; other threads reach it only through its mailbox.
 */
#ifndef PT_WORKER_H
#define PT_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>
#define H2O_USE_LIBUV 1
#include <h2o.h>

#include "config.h"
#include "mailbox.h"

struct pt_metastore;
struct pt_blobstore;
struct pt_committer;
struct pt_gc;
struct pt_cluster_config;
struct pt_auth_service;
struct pt_audit;

struct pt_node {
    struct pt_config cfg;
    /* Readiness (/readyz, api_base.c); any thread. progress: the start-up catch-up (enum
     * pt_raft_progress, raft_node.h; a single region is caught up once its stores are open);
     * draining: 1 from SIGTERM on (server.c). */
    _Atomic int progress;
    _Atomic int draining;
    /* shutdown: how long the workers wait for open connections to finish (server.c) */
    _Atomic unsigned drain_timeout_ms;
    struct pt_metastore *ms;
    struct pt_blobstore *bs;
    struct pt_committer *committer;
    struct pt_gc *gc; /* garbage collection of blobs (gc.h); lives until exit */
    h2o_globalconf_t h2o;
    struct pt_worker *workers; /* cfg.threads of them */
    SSL_CTX *ssl_ctx;
    int64_t started_ms;
    /* cluster: this region's raft id and the cluster file (read-only after start-up) */
    uint64_t region_id;
    const struct pt_cluster_config *cluster;
    /* access control (auth_gate.h); NULL when cfg.auth is off. Thread-safe. */
    struct pt_auth_service *auth;
    /* request throttling (throttle.h); thread-safe, lives until exit (NULL: none) */
    struct pt_throttle *throttle;
    /* the audit log (audit/audit.h); NULL when cfg.audit is off. Thread-safe. */
    struct pt_audit *audit;
    /* the port of cfg.metrics_listen (0: /metrics is served on the client port) */
    unsigned metrics_port;
    /* open client connections per peer address, and in all (worker.c; owner: this mutex) */
    pthread_mutex_t conn_lock;
    struct pt_addr_count **addr_table;
    unsigned conn_total;
    /* upload ids with an operation in flight (owner: this mutex; any thread). */
    pthread_mutex_t busy_lock;
    struct pt_busy_upload *busy;
};

struct pt_worker {
    struct pt_node *node;
    unsigned index;
    pthread_t thread;
    uv_loop_t loop;
    uv_tcp_t listener;
    uv_tcp_t metrics_listener; /* worker 0 only, with cfg.metrics_listen */
    int metrics_open;
    uv_async_t stop;
    uv_timer_t drain; /* shutdown: waits for connections to close */
    unsigned drain_ms;
    int stopping; /* shutdown began: idle connections are closed at once (worker.c) */
    int clean;    /* shut down with every handle closed */
    struct pt_mailbox mailbox;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept;
    unsigned connections;
    struct pt_conn *conns;         /* open client connections of this loop (worker.c) */
    struct pt_conn **conn_by_sock; /* the same, by h2o socket (worker.c) */
    uv_timer_t sweep;              /* closes stalled and idle connections (worker.c) */
};

/* The worker that owns req's connection (req->conn->ctx is embedded in the worker). */
struct pt_worker *pt_worker_of(h2o_req_t *req);

/* Connection guard (worker.c): per-address caps at accept, a header time-out, an idle time-out and
 * a bound on HTTP/2 streams reset before their response (rapid reset). */

/* Sets up the node-wide address table; PT_E_NOMEM. Call once before any worker starts. */
int pt_conn_guard_init(struct pt_node *node);
/* Sets up w's tables and sweep timer on its loop; PT_E_NOMEM. */
int pt_conn_guard_worker_init(struct pt_worker *w);
/* Closes the sweep timer and frees w's tables (loop thread, at shutdown, once w has no
 * connection left). */
void pt_conn_guard_worker_close(struct pt_worker *w);
/* libuv connection callback of the client listeners: accepts, applies the caps, hands the socket
 * to h2o. listener->data is the worker. */
void pt_conn_guard_on_connection(uv_stream_t *listener, int status);
/* Sweeps w's connections now (loop thread); see worker.c. */
void pt_conn_guard_sweep(struct pt_worker *w);
/* A request of req's connection reached the handler / was disposed (loop thread). */
void pt_conn_guard_request_start(h2o_req_t *req);
/* Returns 1 when the finished request is one of an HTTP/2 rapid-reset pattern that must not be
 * logged line by line (it is counted instead); may start a GOAWAY on the connection. */
int pt_conn_guard_request_done(h2o_req_t *req);

/* Marks an upload as having an operation in flight: 0, or -1 when one already is. */
int pt_node_upload_acquire(struct pt_node *node, const char *id);
void pt_node_upload_release(struct pt_node *node, const char *id);

#endif
