/*
 * raft_node.c - the core of a region's Raft membership (see raft_node.h): start and stop,
 * canonical/raft's wiring, the waiters, and the routing of writes and reads to the leader.
 *
 * Pieces, all on the committer's loop:
 *   raft      canonical/raft over raft_uv (log + snapshots under cfg.dir) and our transport
 *             (transport.c: names resolved at every connect, cluster handshake)
 *   fsm       pt_raft_fsm over the metastore; its apply is wrapped here so that every applied
 *             entry wakes the waiters of that index
 *   peers     request/response RPC to the other regions on the same port (peer.c):
 *             Propose (follower -> leader), ReadIndex (follower -> leader), Ping (RTT)
 *   blobs     blob replication (blob_sync.c) on the same port's BULK channels; told of
 *             every applied entry, so that it looks for blobs this region lacks
 *
 * The rest of the module lives next to this file, one concept each, sharing the struct in
 * raft_node_int.h: writes (raft_forward.c: the leader's rounds of appends, forwarding from a
 * follower), reads (raft_read_index.c: the leader's read lease, batched barriers, a
 * follower's batched ReadIndex, catch-ups; the read path is described there), membership
 * (raft_membership.c) and the status view (raft_status.c).
 *
 * Waiters: a follower's forwarded write and a follower's read both end with "wait until the
 * local FSM has applied index i"; a write or read made while no leader is known waits for
 * one. They sit in one list, checked after every loop pass and by a tick that fails those
 * past their deadline (a region cut off right after the leader answered must not hang its
 * client).
 */
#include "raft_node.h"

#include <errno.h>
#include <jansson.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>

#include "blob_sync.h"
#include "bytes.h"
#include "command.h"
#include "diskspace.h"
#include "clock.h"
#include "err.h"
#include "log.h"
#include "metastore.h"
#include "peer.h"
#include "peer.pb-c.h"
#include "raft_fsm.h"
#include "raft_node_int.h"
#include "transport.h"

#define TICK_MS        50
#define LEADER_WAIT_MS 1000 /* how long a write or read waits for a leader to be known */
#define RETRY_MS       100  /* before asking again a leader that refused or did not answer */
/* How long a write sent again (its leader changed or was lost) waits for the next leader:
 * the longest randomized election timeout, so that the region whose own timer fired first
 * still hears of the winner of the election that the others start up to a timeout later. */
#define RESEND_LEADER_WAIT_MS (2 * ELECTION_MS)
#define SNAPSHOT_EVERY        8192
#define SNAPSHOT_TRAIL        2048
#define HEARTBEAT_MS          100  /* how soon idle followers learn of commits */
#define ELECTION_MS           1000 /* randomized to [1000, 2000) ms, plus pre-vote and vote */
#define CONNECT_RETRY_MS      100  /* raft_uv's wait between connection attempts to one server */

struct waiter {
    struct waiter *next;
    uint64_t index;    /* 0 while waiting for a leader (then: dispatch) */
    uint64_t avoid;    /* index 0: a leader that refused it or did not answer, or 0 */
    uint64_t retry_at; /* index 0: when `avoid` may be asked again (loop time, ms) */
    uint64_t until;    /* index 0: the request's own deadline, handed on (0: none yet) */
    uint64_t deadline; /* loop time, ms */
    pt_raft_node_cb cb;
    void *arg;
    /* what to do once a leader is known (index == 0) */
    int is_write;
    void *buf;
    size_t len;
};

const struct pt_cluster_region *pt_raft_node__member(const struct pt_raft_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->cfg.cluster.nregions; i++)
        if (n->cfg.cluster.regions[i].id == id)
            return &n->cfg.cluster.regions[i];
    return NULL;
}

int pt_raft_node__stamp(struct pt_raft_node *n, void **buf, size_t *len)
{
    const uint8_t *id;
    size_t id_len;
    if (pt_command_write_id(*buf, *len, &id, &id_len))
        return 0;
    uint8_t fresh[PT_COMMAND_WRITE_ID_LEN];
    pt_put_be64(fresh, n->cfg.self_id);
    memcpy(fresh + 8, n->write_nonce, sizeof(n->write_nonce));
    pt_put_be64(fresh + 16, ++n->write_counter);
    return pt_command_stamp(buf, len, fresh, sizeof(fresh));
}

uint64_t pt_raft_node__leader_id(struct pt_raft_node *n)
{
    raft_id id = 0;
    const char *address = NULL;
    raft_leader(&n->raft, &id, &address);
    return id;
}

/* Waiters ----------------------------------------------------------------------------- */

static void add_waiter(struct pt_raft_node *n, struct waiter *w)
{
    w->next = n->waiters;
    n->waiters = w;
}

static void dispatch(struct pt_raft_node *n, struct waiter *w);

/* Wakes waiters whose index is applied, dispatches those that waited for a leader, and
 * fails the ones past their deadline. A wait for an index also fails once this region has
 * known no leader for an election timeout: only a leader's messages bring its applied index
 * forward, and an election that takes longer than that is not a quick handover (a transfer
 * or an election settles well within it), so the wait could only run out its timeout. That
 * is also how a region removed from the cluster learns it: the leader stops sending it
 * anything, its election timer fires and no leader follows, so a write it forwarded just
 * before its removal is answered 503 then, not after the whole write timeout. */
static void check_waiters(struct pt_raft_node *n, int expire)
{
    uint64_t applied = raft_last_applied(&n->raft);
    uint64_t now = uv_now(n->loop);
    uint64_t leader = pt_raft_node__leader_id(n);
    if (leader != 0)
        n->leader_seen_ms = now;
    int leaderless = leader == 0 && now - n->leader_seen_ms >= ELECTION_MS;
    struct waiter **pw = &n->waiters, *ready = NULL;
    while (*pw != NULL) {
        struct waiter *w = *pw;
        int routable = w->index == 0 && leader != 0 && (leader != w->avoid || now >= w->retry_at);
        int done = (w->index != 0 && (w->index <= applied || leaderless)) || routable ||
                   n->stopping || (expire && now >= w->deadline);
        if (done) {
            *pw = w->next;
            w->next = ready;
            ready = w;
        } else {
            pw = &w->next;
        }
    }
    while (ready != NULL) {
        struct waiter *w = ready;
        ready = w->next;
        if (w->index != 0 && w->index <= applied) {
            w->cb(w->arg, 0, w->index);
        } else if (w->index == 0 && leader != 0 && (leader != w->avoid || now >= w->retry_at) &&
                   !n->stopping) {
            dispatch(n, w);
            continue; /* dispatch owns w */
        } else {
            free(w->buf);
            w->cb(w->arg, PT_E_UNAVAILABLE, 0);
        }
        free(w);
    }
}

void pt_raft_node__wait_applied(struct pt_raft_node *n, uint64_t index, uint64_t timeout_ms,
                                pt_raft_node_cb cb, void *arg)
{
    if (raft_last_applied(&n->raft) >= index) {
        cb(arg, 0, index);
        return;
    }
    struct waiter *w = calloc(1, sizeof(*w));
    if (w == NULL) {
        cb(arg, PT_E_NOMEM, 0);
        return;
    }
    w->index = index;
    w->deadline = uv_now(n->loop) + timeout_ms;
    w->cb = cb;
    w->arg = arg;
    add_waiter(n, w);
}

static int wrapped_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct pt_raft_fsm *f = fsm->data;
    struct pt_raft_node *n =
        (struct pt_raft_node *)((char *)f - offsetof(struct pt_raft_node, fsm));
    /* Waiters are woken by on_check, after raft has advanced its applied index (it does so
     * once this returns) and for barrier entries, which never reach the FSM. */
    uint64_t before = n->fsm.n_blob_changes;
    int rv = n->fsm_apply(fsm, buf, result);
    if (n->blobs != NULL && n->fsm.n_blob_changes != before)
        pt_blob_sync_changed(n->blobs);
    return rv;
}

static int wrapped_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct pt_raft_fsm *f = fsm->data;
    struct pt_raft_node *n =
        (struct pt_raft_node *)((char *)f - offsetof(struct pt_raft_node, fsm));
    int rv = n->fsm_restore(fsm, buf);
    if (rv == 0) /* at start from the local snapshot, or one installed by the leader */
        pt_log(PT_LOG_INFO, "raft snapshot restored", "{s:I}", "applied_index",
               (json_int_t)pt_metastore_applied_index(n->ms));
    if (n->blobs != NULL)
        pt_blob_sync_changed(n->blobs);
    return rv;
}

/* Full disk (base/diskspace.h). Entries held back by the FSM below the reserve (raft_fsm.h)
 * are written here once space is back, without waiting for the next entry. A leader below its
 * reserve hands leadership to the most up-to-date voter (at most every DISK_TRANSFER_MS): it
 * can apply nothing, so it would answer no write. */
#define DISK_TRANSFER_MS 30000

static void on_disk_transferred(void *arg, int status, uint64_t index)
{
    (void)arg;
    (void)index;
    if (status != 0)
        pt_log(PT_LOG_WARN, "leadership transfer away from a full disk failed", "{s:s}", "error",
               pt_err_message(status));
}

static void watch_disk(struct pt_raft_node *n)
{
    if (n->fsm.pending != NULL && !pt_disk_low(n->fsm.pending_bytes)) {
        uint64_t before = n->fsm.n_blob_changes;
        (void)pt_raft_fsm_drain(&n->fsm); /* a failure halts the store and is logged there */
        if (n->blobs != NULL && n->fsm.n_blob_changes != before)
            pt_blob_sync_changed(n->blobs);
    }
    uint64_t now = uv_now(n->loop);
    if (pt_raft_node__leader_id(n) == n->cfg.self_id && n->raft.configuration.n > 1 &&
        now - n->disk_transfer_ms >= DISK_TRANSFER_MS && pt_disk_low(0)) {
        n->disk_transfer_ms = now;
        pt_log(PT_LOG_WARN, "free disk space below the reserve: handing leadership over", NULL);
        pt_raft_node_transfer(n, 0, on_disk_transferred, n);
    }
}

/* Start-up catch-up (raft_node.h): one read index at a time until one completes. A read
 * index is the leader's commit index confirmed by a barrier, and it completes once this
 * region has applied that far; a failure (no leader, time-out while a long log or a snapshot
 * is being applied) is retried from the next tick with a fresh read point. */
static void on_caught_up(void *arg, int status, uint64_t index)
{
    struct pt_raft_node *n = arg;
    n->catch_up_inflight = 0;
    if (status != 0 || n->stopping)
        return;
    atomic_store(n->cfg.progress, PT_RAFT_CAUGHT_UP);
    pt_log(PT_LOG_INFO, "caught up with the leader", "{s:I,s:I}", "read_index", (json_int_t)index,
           "applied_index", (json_int_t)raft_last_applied(&n->raft));
}

static void catch_up_at_start(struct pt_raft_node *n)
{
    if (n->cfg.progress == NULL || n->catch_up_inflight || n->stopping ||
        atomic_load(n->cfg.progress) == PT_RAFT_CAUGHT_UP)
        return;
    if (pt_raft_node__leader_id(n) == 0 || !pt_raft_node__in_configuration(n, n->cfg.self_id))
        return;
    if (atomic_load(n->cfg.progress) == PT_RAFT_NO_LEADER)
        atomic_store(n->cfg.progress, PT_RAFT_CATCHING_UP);
    n->catch_up_inflight = 1;
    pt_raft_node_read_index(n, on_caught_up, n);
}

static void on_tick(uv_timer_t *t)
{
    struct pt_raft_node *n = t->data;
    if (pt_raft_node__leader_id(n) != 0)
        n->leader_seen_ms = uv_now(n->loop);
    catch_up_at_start(n);
    pt_raft_node__lease_tick(n);
    pt_raft_node__membership_tick(n);
    if (n->waiters != NULL)
        check_waiters(n, 1);
    if (++n->ticks % (1000 / TICK_MS) == 0) {
        pt_raft_node__sync_peer_addresses(n);
        watch_disk(n);
        pt_raft_node__seed_tick(n);
    }
}
static void on_check(uv_check_t *h)
{
    struct pt_raft_node *n = h->data;
    if (n->waiters != NULL)
        check_waiters(n, 0);
    if (n->forwards != NULL)
        pt_raft_node__check_forwards(n);
    if (n->catch_ups != NULL)
        pt_raft_node__check_catch_ups(n);
    pt_raft_node__flush_round(n);
    pt_raft_node__flush_reads(n);
}

/* Entry points ------------------------------------------------------------------------ */

/* Routes a write or read to the leader (itself or a peer); w is consumed. */
static void dispatch(struct pt_raft_node *n, struct waiter *w)
{
    uint64_t leader = pt_raft_node__leader_id(n);
    if (leader == n->cfg.self_id) {
        if (w->is_write) {
            int rv = pt_raft_node__leader_apply(n, w->buf, w->len, w->cb, w->arg, NULL);
            if (rv != 0)
                w->cb(w->arg, rv, 0);
        } else {
            pt_raft_node__leader_read(n, w->cb, w->arg, NULL);
        }
    } else if (!w->is_write && w->until == 0) {
        pt_raft_node__follower_read(n, leader, w->cb, w->arg); /* one ReadIndex per pass */
    } else {
        pt_raft_node__forward(n, leader, w->is_write, w->buf, w->len, w->until, w->cb, w->arg);
    }
    free(w->buf);
    free(w);
}

void pt_raft_node__route(struct pt_raft_node *n, int is_write, void *buf, size_t len,
                         uint64_t avoid, uint64_t until, pt_raft_node_cb cb, void *arg)
{
    struct waiter *w = calloc(1, sizeof(*w));
    if (w == NULL || n->stopping) {
        free(w);
        free(buf);
        cb(arg, n->stopping ? PT_E_UNAVAILABLE : PT_E_NOMEM, 0);
        return;
    }
    w->is_write = is_write;
    w->buf = buf;
    w->len = len;
    w->cb = cb;
    w->arg = arg;
    w->until = until;
    uint64_t leader = pt_raft_node__leader_id(n), now = uv_now(n->loop);
    if (leader != 0 && leader != avoid) {
        dispatch(n, w);
        return;
    }
    /* No leader known (an election, or this region is cut off), or only the one that just
     * refused it or failed to answer: wait a little for another, or ask that one again after
     * RETRY_MS; no longer than the request's own deadline. */
    w->index = 0;
    w->avoid = avoid;
    w->retry_at = now + RETRY_MS;
    /* counted from when a leader was last known: a region that has known none for that long
     * already (cut off, or the cluster has lost its majority) answers at the next tick */
    if (leader != 0)
        n->leader_seen_ms = now;
    w->deadline = n->leader_seen_ms + (until != 0 ? RESEND_LEADER_WAIT_MS : LEADER_WAIT_MS);
    if (w->deadline < now)
        w->deadline = now;
    if (until != 0 && until < w->deadline)
        w->deadline = until;
    add_waiter(n, w);
}

/* Requests from other regions. */
static void on_peer_request(void *arg, uint64_t from, uint32_t type, const void *body, size_t len,
                            struct pt_peer_call *call)
{
    struct pt_raft_node *n = arg;
    if (!pt_raft_node__in_configuration(n, from)) {
        /* A region being added holds a channel, but writes come from members only. */
        pt_log(PT_LOG_WARN, "peer request from a region that is not a member refused", "{s:I,s:i}",
               "from", (json_int_t)from, "type", (int)type);
        pt_peer_reply(call, PT_E_DENIED, NULL, 0);
        return;
    }
    if (type == PORTOLAN__PEER_TYPE__PEER_SNAPSHOT_WANT) {
        /* any region serves the snapshot files it wrote, leader or not */
        pt_raft_node__snap_serve(n, from, body, len, call);
        return;
    }
    if (n->stopping || pt_raft_node__leader_id(n) != n->cfg.self_id) {
        if (type == PORTOLAN__PEER_TYPE__PEER_PROPOSE)
            pt_raft_node__refuse_propose(call); /* never appended: the sender may go elsewhere */
        else
            pt_peer_reply(call, PT_E_UNAVAILABLE, NULL, 0);
        return;
    }
    if (type == PORTOLAN__PEER_TYPE__PEER_PROPOSE) {
        Portolan__Propose *msg = portolan__propose__unpack(NULL, len, body);
        if (msg == NULL) {
            pt_peer_reply(call, PT_E_CORRUPT, NULL, 0);
            return;
        }
        /* a write sent again whose first proposal was applied: its first outcome */
        const uint8_t *id;
        size_t id_len;
        uint64_t first = 0;
        int status = 0;
        if (pt_command_write_id(msg->command.data, msg->command.len, &id, &id_len) &&
            pt_metastore_write_id_get(n->ms, id, id_len, &first, &status) == 1) {
            portolan__propose__free_unpacked(msg, NULL);
            pt_raft_node__reply_propose(call, status, first);
            return;
        }
        int rv =
            pt_raft_node__leader_apply(n, msg->command.data, msg->command.len, NULL, NULL, call);
        portolan__propose__free_unpacked(msg, NULL);
        if (rv != 0)
            pt_raft_node__reply_propose(call, rv, 0);
    } else if (type == PORTOLAN__PEER_TYPE__PEER_READ_INDEX) {
        pt_raft_node__leader_read(n, NULL, NULL, call);
    } else {
        pt_peer_reply(call, PT_E_UNSUPPORTED, NULL, 0);
    }
}

static bool is_member(void *arg, uint64_t id)
{
    return pt_raft_node__in_configuration(arg, id);
}

static void propose_for_blobs(void *arg, void *buf, size_t len, pt_blob_sync_done_cb done,
                              void *done_arg)
{
    pt_raft_node_propose(arg, buf, len, done, done_arg);
}

int pt_raft_node_blob_feed(struct pt_raft_node *n, const char *digest, uint64_t size,
                           struct pt_blob_feed **feed)
{
    if (n->blobs == NULL || n->stopping)
        return PT_E_UNAVAILABLE;
    return pt_blob_sync_feed(n->blobs, digest, size, feed);
}

/* Start and stop ---------------------------------------------------------------------- */

void pt_raft_node__maybe_stopped(struct pt_raft_node *n)
{
    if (--n->closing > 0)
        return;
    void (*cb)(void *) = n->stop_cb;
    void *arg = n->stop_arg;
    pt_raft_fsm_release(&n->fsm); /* entries held back on a full disk: raft's log keeps them */
    free(n);
    if (cb != NULL)
        cb(arg);
}

static void on_tick_closed(uv_handle_t *h)
{
    pt_raft_node__maybe_stopped(h->data);
}

static void on_peers_closed(void *arg)
{
    pt_raft_node__maybe_stopped(arg);
}

static void on_blobs_stopped(void *arg)
{
    struct pt_raft_node *n = arg;
    n->blobs = NULL;
    pt_raft_node__maybe_stopped(n);
}

static void on_raft_closed(struct raft *r)
{
    struct pt_raft_node *n =
        (struct pt_raft_node *)((char *)r - offsetof(struct pt_raft_node, raft));
    raft_uv_close(&n->io);
    pt_transport_close(&n->transport);
    if (n->peers != NULL)
        pt_peers_close(n->peers, on_peers_closed, n);
    else
        pt_raft_node__maybe_stopped(n);
}

void pt_raft_node_stop(struct pt_raft_node *n, void (*cb)(void *arg), void *arg)
{
    n->stopping = 1;
    n->stop_cb = cb;
    n->stop_arg = arg;
    check_waiters(n, 1);
    /* ends an addition waiting to promote */
    pt_raft_node__membership_tick(n);
    while (n->catch_ups != NULL) { /* their read indexes end them */
        struct catch_up *c = n->catch_ups;
        n->catch_ups = c->next;
        pt_raft_node__catch_up_release(c);
    }
    struct reader *pending = n->next_readers;
    n->next_readers = NULL;
    pt_raft_node__finish_readers(pending, PT_E_UNAVAILABLE, 0);
    pt_raft_node__fail_reads(n);
    struct leader_apply *q = n->queue;
    n->queue = NULL;
    n->queue_tail = &n->queue;
    while (q != NULL) {
        struct leader_apply *la = q;
        q = la->next;
        pt_raft_node__fail_apply(la, PT_E_UNAVAILABLE);
    }
    /* tick timer, check handle, then raft (+ peers), and snapshot work items in the pool */
    n->closing = 3 + n->snap_works;
    if (n->blobs != NULL) {
        /* its proposals still in raft complete as raft closes */
        n->closing++;
        pt_blob_sync_stop(n->blobs, on_blobs_stopped, n);
    }
    uv_close((uv_handle_t *)&n->tick, on_tick_closed);
    uv_close((uv_handle_t *)&n->check, on_tick_closed);
    raft_close(&n->raft, on_raft_closed);
}

static void set_flag(void *arg)
{
    *(int *)arg = 1;
}

static int bootstrap(struct pt_raft_node *n)
{
    struct raft_configuration conf;
    raft_configuration_init(&conf);
    int rv = 0;
    /* pt_cluster_role values are canonical/raft's role constants. */
    for (size_t i = 0; i < n->cfg.cluster.nregions && rv == 0; i++) {
        const struct pt_cluster_region *m = &n->cfg.cluster.regions[i];
        rv = raft_configuration_add(&conf, m->id, m->address, m->role);
    }
    if (rv == 0)
        rv = raft_bootstrap(&n->raft, &conf);
    raft_configuration_close(&conf);
    return rv == RAFT_CANTBOOTSTRAP ? 0 : rv;
}

int pt_raft_node_start(uv_loop_t *loop, struct pt_metastore *ms,
                       const struct pt_raft_node_config *cfg, struct pt_raft_node **out)
{
    const struct pt_cluster_region *me = NULL;
    for (size_t i = 0; i < cfg->cluster.nregions; i++)
        if (cfg->cluster.regions[i].id == cfg->self_id)
            me = &cfg->cluster.regions[i];
    if (me == NULL)
        return PT_E_CONFIG;
    if (mkdir(cfg->dir, 0750) != 0 && errno != EEXIST)
        return PT_E_IO;

    struct pt_raft_node *n = calloc(1, sizeof(*n));
    if (n == NULL)
        return PT_E_NOMEM;
    n->loop = loop;
    n->ms = ms;
    n->cfg = *cfg;
    n->queue_tail = &n->queue;
    /* Write ids need only differ from those of this region's earlier processes; should the
     * kernel have no entropy yet, the clock still tells processes apart. */
    if (getrandom(n->write_nonce, sizeof(n->write_nonce), GRND_NONBLOCK) !=
        (ssize_t)sizeof(n->write_nonce))
        pt_put_be64(n->write_nonce, uv_hrtime() ^ (uint64_t)uv_os_getpid() << 32);
    int rv = pt_transport_init(&n->transport, loop, cfg->cluster.cluster_id);
    if (rv != 0)
        goto err_after_alloc;
    if (cfg->bind[0] != '\0' && (rv = pt_transport_set_bind_address(&n->transport, cfg->bind)) != 0)
        goto err_after_transport;
    pt_transport_set_identity(&n->transport, pt_raft_node__identity, n);
    /* Bridge partitions: a region this one cannot reach is reached through another member
     * (only with peer TLS; without it the transport neither serves nor uses relays). */
    pt_transport_set_relay(&n->transport, pt_raft_node__member_at, n);
    if (cfg->peer_tls_cert[0] != '\0') {
        char err[512];
        rv = pt_transport_set_tls(&n->transport, cfg->peer_tls_cert, cfg->peer_tls_key,
                                  cfg->peer_tls_ca, err, sizeof(err));
        if (rv != 0) {
            pt_log(PT_LOG_ERROR, "peer TLS not configured", "{s:s}", "error", err);
            goto err_after_transport;
        }
    }
    if (raft_uv_init(&n->io, loop, cfg->dir, &n->transport) != 0) {
        rv = PT_E_IO;
        goto err_after_transport;
    }
    /* raft_uv dials a lost follower or leader again this long after a failed attempt (its
     * default, 1 s, is most of a heal's delay); the transport bounds each attempt. */
    raft_uv_set_connect_retry_delay(&n->io, CONNECT_RETRY_MS);
    pt_raft_fsm_init(&n->fsm, ms, &n->raft);
    n->fsm_apply = n->fsm.fsm.apply;
    n->fsm.fsm.apply = wrapped_apply;
    n->fsm_restore = n->fsm.fsm.restore;
    n->fsm.fsm.restore = wrapped_restore;
    if ((rv = pt_raft_node__snap_init(n)) != 0)
        goto err_after_io;
    if (raft_init(&n->raft, &n->io, &n->fsm.fsm, cfg->self_id, me->address) != 0) {
        rv = PT_E_INTERNAL;
        goto err_after_io;
    }
    raft_set_heartbeat_timeout(&n->raft, HEARTBEAT_MS);
    raft_set_election_timeout(&n->raft, ELECTION_MS);
    /* Pre-vote (dissertation 9.6): a region cut off from the majority does not inflate its
     * term, so healing the partition does not depose a working leader. */
    raft_set_pre_vote(&n->raft, true);
    unsigned every = cfg->snapshot_every > 0 ? cfg->snapshot_every : SNAPSHOT_EVERY;
    n->snapshot_every = every;
    raft_set_snapshot_threshold(&n->raft, every);
    raft_set_snapshot_trailing(&n->raft, every / 4);
    if ((rv = pt_peers_init(&n->peers, loop, &n->transport, PT_CHANNEL_PEER, cfg->self_id,
                            on_peer_request, n)) != 0)
        goto err_after_raft;
    if (cfg->blobs != NULL) {
        struct pt_blob_sync_config bc = {.self_id = cfg->self_id,
                                         .concurrency = cfg->replication_concurrency,
                                         .bandwidth = cfg->replication_bandwidth,
                                         .is_member = is_member,
                                         .member_arg = n};
        snprintf(bc.region, sizeof(bc.region), "%s", me->name);
        if ((rv = pt_blob_sync_start(loop, &n->transport, ms, cfg->blobs, &bc, propose_for_blobs, n,
                                     &n->blobs)) != 0)
            goto err_after_raft;
    }
    /* The cluster file is this node's view of the others: it wins over the addresses raft
     * learns from handshakes (which would bypass a proxy or NAT in between). */
    for (size_t i = 0; i < cfg->cluster.nregions; i++) {
        const struct pt_cluster_region *r = &cfg->cluster.regions[i];
        if (r->id == cfg->self_id)
            continue;
        pt_peers_set_address(n->peers, r->id, r->address);
        pt_transport_set_route(&n->transport, r->id, r->address);
        if (n->blobs != NULL)
            pt_blob_sync_set_region(n->blobs, r->id, r->name, r->address);
    }
    /* A leader may answer reads from its lease until an election timeout after this region
     * last acknowledged it (read_lease.h), and raft forgets that leader across a restart: no
     * inbound raft channel (hence no vote) until this process is an election timeout old. */
    int64_t age = pt_clock_process_age_ms();
    pt_transport_hold_raft(&n->transport, age >= 0 && age < ELECTION_MS
                                              ? (uint64_t)(ELECTION_MS - age)
                                              : (age < 0 ? ELECTION_MS : 0));
    if ((rv = pt_raft_node__seed_prepare(n)) != 0)
        goto err_after_raft;
    if ((!cfg->join && (rv = bootstrap(n)) != 0) || (rv = raft_start(&n->raft)) != 0) {
        pt_log(PT_LOG_ERROR, "raft start failed", "{s:s}", "error", raft_errmsg(&n->raft));
        rv = PT_E_INTERNAL;
        goto err_after_raft;
    }
    pt_raft_node__seed_started(n);
    uv_timer_init(loop, &n->tick);
    n->tick.data = n;
    n->leader_seen_ms = uv_now(loop);
    uv_timer_start(&n->tick, on_tick, TICK_MS, TICK_MS);
    uv_check_init(loop, &n->check);
    n->check.data = n;
    uv_check_start(&n->check, on_check);
    pt_log(PT_LOG_INFO, "raft started", "{s:s,s:I,s:s,s:i}", "cluster_id", cfg->cluster.cluster_id,
           "id", (json_int_t)cfg->self_id, "address", me->address, "members",
           (int)cfg->cluster.nregions);
    *out = n;
    return 0;

err_after_raft:
    /* raft_init succeeded: raft_close is the only way back. The loop is not running yet
     * (the caller starts its thread only on success), so turn it here until raft is closed. */
    {
        int closed = 0;
        n->closing = 1;
        n->stop_cb = set_flag;
        n->stop_arg = &closed;
        if (n->blobs != NULL) {
            n->closing++;
            pt_blob_sync_stop(n->blobs, on_blobs_stopped, n);
        }
        raft_close(&n->raft, on_raft_closed);
        while (!closed)
            uv_run(loop, UV_RUN_ONCE);
    }
    return rv;
err_after_io:
    raft_uv_close(&n->io);
err_after_transport:
    pt_transport_close(&n->transport);
err_after_alloc:
    free(n);
    return rv;
}
