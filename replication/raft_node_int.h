/*
 * raft_node_int.h - what the pieces of the Raft node (raft_node.c, raft_forward.c,
 * raft_read_index.c, raft_membership.c, raft_status.c) share: the node's struct and the
 * internal functions one piece calls in another. Not for use outside replication/raft_*.c.
 *
 * Threads: everything here is owned by, and runs on, the committer's loop (n->loop).
 * Names: pt_raft_node__<verb> (double underscore) are internal to the module.
 */
#ifndef PT_RAFT_NODE_INT_H
#define PT_RAFT_NODE_INT_H

#include <raft.h>
#include <raft/uv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "raft_fsm.h"
#include "raft_node.h"
#include "read_lease.h"

struct pt_peers;
struct pt_peer_call;
struct pt_blob_sync;
struct waiter;     /* raft_node.c */
struct forward;    /* raft_forward.c */
struct snap_fetch; /* raft_node_snap.c */
struct change;     /* raft_membership.c */

struct leader_apply {
    struct raft_apply req;
    struct leader_apply *next; /* queue of entries waiting for the next round */
    struct raft_buffer entry;  /* framed command, until handed to raft_apply */
    struct pt_raft_node *n;
    pt_raft_node_cb cb; /* local proposer, or NULL when answering a peer */
    void *arg;
    struct pt_peer_call *call;
    int has_id; /* the command carries a write id (command.h) */
    void *cmd;  /* a local proposer's command with a write id (owned), to route it again */
    size_t len;
};

struct reader {
    struct reader *next;
    pt_raft_node_cb cb;
    void *arg;
    struct pt_peer_call *call; /* a follower's ReadIndex, answered with the index */
    uint64_t index;            /* a lease read's read point (n->lease_readers) */
};

/* A read index that may end early (pt_raft_node_catch_up). Two references: the read index
 * and the list. */
struct catch_up {
    struct catch_up *next;
    int (*present)(struct pt_metastore *ms, const void *key, size_t len);
    const void *key;
    size_t len;
    pt_raft_node_cb cb;
    void *arg;
    int done;
    int refs;
};

struct pt_raft_node {
    uv_loop_t *loop;
    struct pt_metastore *ms;
    struct pt_raft_node_config cfg;
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport transport;
    struct pt_raft_fsm fsm;
    int (*fsm_apply)(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result);
    int (*fsm_restore)(struct raft_fsm *fsm, struct raft_buffer *buf);
    struct pt_peers *peers;
    struct pt_blob_sync *blobs; /* NULL without a blob store */
    uv_timer_t tick;
    struct waiter *waiters;
    struct catch_up *catch_ups;
    uint64_t catch_up_seen; /* applied index when the catch-ups were last asked */
    struct raft_barrier barrier;
    int barrier_inflight;
    struct leader_apply *queue, **queue_tail; /* entries for the next round */
    unsigned inflight;                        /* entries and barriers of this round */
    uv_check_t check;                         /* after each loop pass: waiters, next round */
    struct reader *reading, *next_readers;
    /* Read lease (raft_read_index.c, read_lease.h), the leader's: */
    struct pt_read_lease lease;
    uint64_t lease_epoch;         /* bumped to drop every lease (pt_raft_node__drop_lease) */
    uint64_t lease_conf;          /* raft's configuration index the epoch was last checked at */
    uint64_t lease_hold_ns;       /* no lease from a round started before (after a transfer) */
    uint64_t lease_read_ns;       /* the last read at this leader (renewal follows reads) */
    int lease_renew;              /* the next round starts a barrier even without readers */
    uint64_t barrier_t0_ns;       /* the in-flight barrier's start (lease clock, ns) */
    uint64_t barrier_term;        /* ... its term */
    uint64_t barrier_epoch;       /* ... and the lease epoch then */
    struct reader *lease_readers; /* local lease reads, answered after this loop pass */
    /* A follower's reads of this loop pass, sent to batch_to as one ReadIndex: */
    struct reader *batch_readers;
    uint64_t batch_to;
    struct forward *forwards; /* a follower's Proposes and ReadIndexes awaiting the leader */
    uint64_t noop_term;       /* the term whose opening barrier was started (see flush_round) */
    int stopping;
    unsigned ticks;
    uint64_t disk_transfer_ms;  /* when leadership was last handed away for a full disk */
    uint64_t leader_seen_ms;    /* when a leader was last known (loop time), for the waiters */
    unsigned closing;           /* handles and services still closing */
    uint64_t unreachable_id;    /* a leader whose forwards failed without answer, or 0 */
    uint64_t unreachable_since; /* loop time of the first of those failures */
    uint8_t write_nonce[8];     /* drawn at start: this process's part of every write id */
    uint64_t write_counter;     /* writes stamped so far */
    int catch_up_inflight;      /* the start-up catch-up read is running (raft_node.c) */
    void (*stop_cb)(void *arg);
    void *stop_arg;
    /* Raft snapshot files between regions (raft_node_snap.c): */
    int (*io_start)(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                    raft_io_recv_cb recv); /* raft_uv's own */
    raft_io_recv_cb raft_recv;             /* raft's, given to io_start */
    struct snap_fetch *snap_fetch;         /* the fetch running, or NULL */
    unsigned snap_serving;                 /* pieces being read for peers */
    unsigned snap_works;                   /* work items queued (fetch writes, serves) */
    uint64_t snap_n_fetches, snap_n_fetched, snap_n_fetch_failed, snap_fetch_bytes;
    uint64_t snap_n_dropped; /* InstallSnapshots dropped (a fetch running, bad descriptor) */
    uint64_t snap_n_served, snap_served_bytes, snap_n_serve_refused;
    /* A cluster bootstrapped from a region's state (raft_seed.c): */
    int seeding;
    int seed_barrier_inflight;
    struct raft_barrier seed_barrier;
    unsigned snapshot_every;  /* the threshold raft is given outside seeding */
    struct change *promoting; /* a standby being caught up before it votes (raft_membership.c) */
};

/* Puts a fresh write id (region id, write_nonce, write_counter; PT_COMMAND_WRITE_ID_LEN
 * bytes) in front of the encoded command *buf (owned, reallocated) unless it has one.
 * Returns 0 or PT_E_* (then *buf is unchanged, still owned by the caller). raft_node.c */
int pt_raft_node__stamp(struct pt_raft_node *n, void **buf, size_t *len);
/* The configured region of id (cfg.cluster), or NULL. raft_node.c */
const struct pt_cluster_region *pt_raft_node__member(const struct pt_raft_node *n, uint64_t id);
/* The leader this region knows of, 0 when none. raft_node.c */
uint64_t pt_raft_node__leader_id(struct pt_raft_node *n);
/* cb(arg, 0, index) once the local FSM has applied index (at once if it has), or
 * PT_E_UNAVAILABLE after timeout_ms. raft_node.c */
void pt_raft_node__wait_applied(struct pt_raft_node *n, uint64_t index, uint64_t timeout_ms,
                                pt_raft_node_cb cb, void *arg);
/* Routes a write (buf: owned, free()) or a read to the leader, waiting a little for one
 * when none is known (until this region has known none for LEADER_WAIT_MS, about an election
 * timeout, or RESEND_LEADER_WAIT_MS for a write sent again: then PT_E_UNAVAILABLE, so at the
 * next tick in a region that has been without a leader that long already), or
 * when it is `avoid` (a leader that just refused it or did not answer; 0: none), which is
 * asked again after RETRY_MS if it still leads. until: the loop time by which the request
 * must be answered (a write sent again keeps its first deadline), 0 for a new request. cb
 * exactly once, never from inside the call. raft_node.c */
void pt_raft_node__route(struct pt_raft_node *n, int is_write, void *buf, size_t len,
                         uint64_t avoid, uint64_t until, pt_raft_node_cb cb, void *arg);

/* Snapshot files, raft_node_snap.c. Switches the FSM to snapshots by reference in
 * <cfg.dir>/snapshots and wraps io.start to hold InstallSnapshots until their file is here
 * (before raft_start). 0 or PT_E_IO / PT_E_TOO_LARGE. */
int pt_raft_node__snap_init(struct pt_raft_node *n);
/* Answers a SnapshotWant (body borrowed) from region from on call. */
void pt_raft_node__snap_serve(struct pt_raft_node *n, uint64_t from, const void *body, size_t len,
                              struct pt_peer_call *call);
/* Each tick: promotes a standby added as a voter once it caught up, or ends that addition
 * (leadership lost, removed, too slow, stopping). raft_membership.c */
void pt_raft_node__membership_tick(struct pt_raft_node *n);
/* Seeding, raft_seed.c. Before bootstrap: refuses (PT_E_CONFIG, logged) to join or to
 * bootstrap with other regions from a store that holds state, else makes that state the new
 * log's state at its first index. 0 or PT_E_*. */
int pt_raft_node__seed_prepare(struct pt_raft_node *n);
/* After raft_start: enters seeding when the seed's first entry is still in raft's log. */
void pt_raft_node__seed_started(struct pt_raft_node *n);
/* Each second: ends seeding once that entry is in a snapshot (then n->snapshot_every is
 * raft's threshold again), else starts a barrier while leading. */
void pt_raft_node__seed_tick(struct pt_raft_node *n);
/* Whether regions may not be added yet (they would be sent a log without the seed). */
bool pt_raft_node__seeding(const struct pt_raft_node *n);
/* Drops one of the references pt_raft_node_stop counts in n->closing (raft_node.c). */
void pt_raft_node__maybe_stopped(struct pt_raft_node *n);

/* Writes, raft_forward.c. */
/* Leader: queues an entry (buf borrowed, copied) for the next round; the local proposer cb
 * or the peer's call is answered once it is applied. Returns 0, or PT_E_* (nothing queued,
 * nothing called). */
int pt_raft_node__leader_apply(struct pt_raft_node *n, const void *buf, size_t len,
                               pt_raft_node_cb cb, void *arg, struct pt_peer_call *call);
/* Answers a queued entry that was never handed to raft with status, and frees it. */
void pt_raft_node__fail_apply(struct leader_apply *la, int status);
/* Answers a peer's Propose call. */
void pt_raft_node__reply_propose(struct pt_peer_call *call, int status, uint64_t index);
/* Answers a peer's Propose call that was never appended here (this region does not lead):
 * PT_E_UNAVAILABLE with a ProposeResult body, which a local failure never has, so the
 * sender knows it may propose it again to another leader. */
void pt_raft_node__refuse_propose(struct pt_peer_call *call);
/* After each loop pass: a forward whose leader changed since it was sent (new leader id or
 * term, or none known) is sent again at once when it is a write with a write id (the old
 * leader's answer is dropped), answered PT_E_UNAVAILABLE when it is a write without one (its
 * fate is unknown), and asked again when it is a read. */
void pt_raft_node__check_forwards(struct pt_raft_node *n);
/* Follower: sends a write (buf borrowed) or a ReadIndex to leader `to`, to be answered by
 * deadline (loop time; 0: the write or read timeout from now); cb exactly once. */
void pt_raft_node__forward(struct pt_raft_node *n, uint64_t to, int is_write, const void *buf,
                           size_t len, uint64_t deadline, pt_raft_node_cb cb, void *arg);
/* After each loop pass: starts the next round if the previous one is done. */
void pt_raft_node__flush_round(struct pt_raft_node *n);

/* Reads, raft_read_index.c. */
/* Answers a list of readers (local or a peer's ReadIndex) and frees it. */
void pt_raft_node__finish_readers(struct reader *r, int status, uint64_t index);
/* Leader: a barrier for the reads of n->next_readers. */
void pt_raft_node__start_barrier(struct pt_raft_node *n);
/* Leader: joins the next barrier batch; answers cb, or call when non-NULL. */
void pt_raft_node__leader_read(struct pt_raft_node *n, pt_raft_node_cb cb, void *arg,
                               struct pt_peer_call *call);
void pt_raft_node__catch_up_release(struct catch_up *c);
/* Drops the leader's read lease at once; none is granted again from a confirmation round
 * started less than hold_ms from now (0: from the next round). Called when this node starts
 * a leadership transfer (its target campaigns with the disrupt-leader flag, which followers
 * honour even while they know this leader) or a membership change. */
void pt_raft_node__drop_lease(struct pt_raft_node *n, uint64_t hold_ms);
/* The hold after a transfer this node started, in election timeouts: its target's disrupting
 * campaign, at most an election timeout after the transfer began (raft's transfer time-out)
 * plus the candidate's randomized timeout (under two), is over by then. */
#define PT_LEASE_TRANSFER_HOLD_ELECTIONS 3
/* Follower: joins the reads of this loop pass that go to leader `to` as one ReadIndex
 * (sent by pt_raft_node__flush_reads); cb exactly once, never from inside the call. */
void pt_raft_node__follower_read(struct pt_raft_node *n, uint64_t to, pt_raft_node_cb cb,
                                 void *arg);
/* After each loop pass: answers this pass's lease reads and sends the follower's batch. */
void pt_raft_node__flush_reads(struct pt_raft_node *n);
/* At stop: fails every read held for the next pass. */
void pt_raft_node__fail_reads(struct pt_raft_node *n);
/* On the tick: renews the lease in the background while reads keep coming. */
void pt_raft_node__lease_tick(struct pt_raft_node *n);
/* After entries were applied: ends the catch-ups whose key is there now. */
void pt_raft_node__check_catch_ups(struct pt_raft_node *n);

/* Membership, raft_membership.c. */
/* Gives the peer layer (and blob sync) the addresses of regions only Raft knows of. */
void pt_raft_node__sync_peer_addresses(struct pt_raft_node *n);
/* Whether id is a server of raft's current configuration (any role): a member. */
bool pt_raft_node__in_configuration(const struct pt_raft_node *n, uint64_t id);
/* The transport's identity callback (arg: the node): writes the region name of id and returns
 * 0 when id is a member, PT_TRANSPORT_PEER_ONLY for a region being added (peer channels only),
 * else PT_E_NOT_FOUND (raft_membership.c). */
int pt_raft_node__identity(void *arg, uint64_t id, char name[PT_CLUSTER_NAME_MAX + 1]);
/* pt_transport_member_cb over the raft configuration: its index-th server (relays may only
 * tunnel to, and through, current members). */
int pt_raft_node__member_at(void *arg, size_t index, uint64_t *id,
                            char address[PT_CLUSTER_ADDRESS_MAX + 1]);

#endif
