/*
 * raft_node.h - one region's membership in the Raft cluster (DESIGN.md sections 1, 4, 6).
 *
 * Owns canonical/raft (raft_uv over our transport, the metastore FSM) and the peer RPC
 * layer, all on one loop: the committer's thread. Everything here runs on that thread; the
 * HTTP workers reach it only through the committer's queue.
 *
 * What it gives the rest of the node:
 * - propose: a write is applied through Raft. On the leader it is raft_apply'd; a follower
 *   forwards it to the leader and, once the leader answers with the entry's index, waits
 *   until its own FSM has applied that far, so the client reads its write back from the
 *   region that accepted it. No known leader, or no answer within the write timeout, fails
 *   fast with PT_E_UNAVAILABLE: a cut-off region refuses writes instead of queueing them.
 *   Every write is stamped with a write id (command.h), which the FSM applies at most once,
 *   so a write in flight follows the leader: when the leader changes (or is lost, or fails
 *   to answer) the write is proposed again at once to the new one, which answers with the
 *   first outcome should the first proposal have committed after all; with no leader known
 *   for about an election timeout it is answered PT_E_UNAVAILABLE. No write waits out the
 *   write timeout while a leader exists and answers (raft_forward.c).
 * - read_index: a linearizable read point. A leader holding its read lease answers with its
 *   commit index at once (no round trip); without one it confirms its leadership with one
 *   raft_barrier shared by every read that arrived before the barrier started (reads that
 *   arrive meanwhile wait for the next one), which also grants the next lease. A follower
 *   asks the leader for that index (one request for all the reads of a loop pass) and waits
 *   until it has applied that far. Then the caller reads its local state. See
 *   raft_read_index.c for the lease and what it assumes.
 * - status: this region's view (role, term, indexes, leader, last contact) as JSON.
 * - start-up catch-up (readiness, /readyz): once a leader is known, the node asks for a read
 *   index (the leader's commit index, confirmed by its lease or a barrier) and waits until
 *   its own FSM has applied that far, retrying until one such read completes; it then publishes
 *   PT_RAFT_CAUGHT_UP in cfg.progress. A region that joins (cfg.join) gets no leader, hence
 *   no read index, before the leader has added it, so it is not caught up before it is a
 *   member that has applied the leader's log (a snapshot, then the entries after it).
 */
#ifndef PT_RAFT_NODE_H
#define PT_RAFT_NODE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "cluster_config.h"

struct pt_metastore;
struct pt_blobstore;
struct pt_blob_feed;
struct pt_raft_node;

/* Start-up progress published in cfg.progress (any thread may read it). */
enum pt_raft_progress {
    PT_RAFT_NO_LEADER = 0, /* no leader known since start */
    PT_RAFT_CATCHING_UP,   /* a leader is known; not yet applied up to its commit index */
    PT_RAFT_CAUGHT_UP,     /* applied everything committed when the catch-up read began */
};

struct pt_raft_node_config {
    struct pt_cluster_config cluster; /* the regions; bootstrapped on first start */
    uint64_t self_id;
    char bind[262]; /* listen here instead of the own address ("" = the own address) */
    char dir[4096]; /* raft log and snapshots; created if missing */
    unsigned write_timeout_ms;
    unsigned read_index_timeout_ms;
    int join;                   /* 1: never bootstrap; wait to be added by the cluster's leader */
    unsigned snapshot_every;    /* entries between snapshots (0 = default) */
    struct pt_blobstore *blobs; /* borrowed; NULL: no blob replication */
    unsigned replication_concurrency; /* background blob transfers (0 = default) */
    uint64_t replication_bandwidth;   /* bytes/s received by blob transfers (0 = unlimited) */
    /* Peer TLS (all three, or none: plain TCP): this region's certificate (PEM chain, with
     * SAN DNS:<region name>), its key, and the cluster CA. See transport.h. */
    char peer_tls_cert[4096];
    char peer_tls_key[4096];
    char peer_tls_ca[4096];
    /* Borrowed, may be NULL; must outlive the node. Written on the loop thread with the
     * enum pt_raft_progress values, only ever upwards; read by any thread. */
    _Atomic int *progress;
};

/* Completion of a propose or read_index: status 0 or PT_E_*, index the log index the caller
 * can rely on (the write's entry, or the read point). Runs on the loop thread. */
typedef void (*pt_raft_node_cb)(void *arg, int status, uint64_t index);

/* Starts raft on loop (the calling thread's). cfg is copied, ms borrowed (must outlive the
 * node). Returns 0 or PT_E_*; *out is owned until pt_raft_node_stop's callback. */
int pt_raft_node_start(uv_loop_t *loop, struct pt_metastore *ms,
                       const struct pt_raft_node_config *cfg, struct pt_raft_node **out);

/* Proposes an encoded command; buf ownership moves to the node (free()). cb runs exactly
 * once, never from inside this call. */
void pt_raft_node_propose(struct pt_raft_node *n, void *buf, size_t len, pt_raft_node_cb cb,
                          void *arg);

/* Waits for a linearizable read point (see the file comment); cb exactly once, never from
 * inside this call, with PT_E_UNAVAILABLE when no leader answers in time. */
void pt_raft_node_read_index(struct pt_raft_node *n, pt_raft_node_cb cb, void *arg);

/* A read index that ends early: after entries are applied, present(ms, key, len) is asked
 * (on the loop; key borrowed until cb) and once it returns non-zero cb fires with status 0,
 * without waiting for the leader. For a miss of something immutable (a blob link, a manifest
 * by digest) that another region wrote a moment ago: it usually arrives before the read
 * index would. Otherwise exactly pt_raft_node_read_index. */
void pt_raft_node_catch_up(struct pt_raft_node *n,
                           int (*present)(struct pt_metastore *ms, const void *key, size_t len),
                           const void *key, size_t len, pt_raft_node_cb cb, void *arg);
/* Membership (Raft dissertation chapter 4), leader only, one change at a time: adds a
 * region (as a spare, then its role; a voter is a standby until it has caught up, however
 * long its snapshot takes, up to an hour: adding it again resumes that, removing it ends it),
 * removes one, or hands leadership to id (0 = the most up-to-date voter). The region's name,
 * address and URL are recorded in replicated state first (PutRegion) so that every region
 * can describe it; removal deletes the record after the region left. cb exactly once, never
 * from inside the call; status PT_E_UNAVAILABLE when this region is not the leader,
 * PT_E_NOT_FOUND / PT_E_CONFLICT for an unknown or duplicate id or address. Strings are
 * copied. cb's index is the region's id; for a transfer, the leader's id after it. */
void pt_raft_node_add(struct pt_raft_node *n, uint64_t id, const char *name, const char *address,
                      const char *url, int role, pt_raft_node_cb cb, void *arg);
void pt_raft_node_remove(struct pt_raft_node *n, uint64_t id, pt_raft_node_cb cb, void *arg);
void pt_raft_node_transfer(struct pt_raft_node *n, uint64_t id, pt_raft_node_cb cb, void *arg);

/* JSON text (owned: free()) of this region's status, or of the whole configuration when
 * members is non-zero (see the admin API in node/http/api_admin.c). NULL on allocation failure. */
char *pt_raft_node_status_json(struct pt_raft_node *n, int members);

/* Blob replication (blob_sync.h): attaches to the transfer of digest (borrowed) of size
 * bytes, starting it if none runs; *feed is a reference (pt_blob_feed_release). PT_E_UNAVAILABLE
 * without blob replication or while stopping, PT_E_BLOB_UNKNOWN when no region holds it. */
int pt_raft_node_blob_feed(struct pt_raft_node *n, const char *digest, uint64_t size,
                           struct pt_blob_feed **feed);
/* This region's blob replication status as JSON (owned: free()); NULL without blob
 * replication or out of memory. */
char *pt_raft_node_replication_json(struct pt_raft_node *n);
/* Stops raft and the peer layer; cb(arg) once every handle is closed, then n is freed.
 * Pending proposals and reads complete with PT_E_UNAVAILABLE before that. */
void pt_raft_node_stop(struct pt_raft_node *n, void (*cb)(void *arg), void *arg);

#endif
