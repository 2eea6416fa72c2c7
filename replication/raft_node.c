/*
 * raft_node.c - Raft membership of one region (see raft_node.h).
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
 * Waiters: a follower's forwarded write and a follower's read both end with "wait until the
 * local FSM has applied index i". They sit in one list, checked after every apply and by a
 * tick that fails those past their deadline (a region cut off right after the leader
 * answered must not hang its client).
 *
 * Read index batching (Raft dissertation 6.4): the leader serves every read that arrived
 * before a barrier started with that one barrier; reads arriving while it is in flight wait
 * for the next. The barrier commits an entry of the leader's term, which proves it is still
 * the leader and that its applied index covers every write acknowledged before the read.
 */
#include "raft_node.h"

#include <errno.h>
#include <jansson.h>
#include <raft.h>
#include <raft/uv.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "blob_sync.h"
#include "command.h"
#include "err.h"
#include "log.h"
#include "metastore.h"
#include "peer.h"
#include "peer.pb-c.h"
#include "raft_fsm.h"
#include "transport.h"

#define TICK_MS        50
#define LEADER_WAIT_MS 1000 /* how long a write or read waits for a leader to be known */
#define SNAPSHOT_EVERY 8192
#define SNAPSHOT_TRAIL 2048
#define HEARTBEAT_MS   100  /* how soon idle followers learn of commits */
#define ELECTION_MS    1000 /* randomized to [1000, 2000) ms, plus pre-vote and vote */

struct waiter {
    struct waiter *next;
    uint64_t index;    /* 0 while waiting for a leader (then: dispatch) */
    uint64_t deadline; /* loop time, ms */
    pt_raft_node_cb cb;
    void *arg;
    /* what to do once a leader is known (index == 0) */
    int is_write;
    void *buf;
    size_t len;
};

struct leader_apply {
    struct raft_apply req;
    struct leader_apply *next; /* queue of entries waiting for the next round */
    struct raft_buffer entry;  /* framed command, until handed to raft_apply */
    struct pt_raft_node *n;
    pt_raft_node_cb cb; /* local proposer, or NULL when answering a peer */
    void *arg;
    struct pt_peer_call *call;
};

struct reader {
    struct reader *next;
    pt_raft_node_cb cb;
    void *arg;
    struct pt_peer_call *call; /* a follower's ReadIndex, answered with the index */
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

struct forward {
    struct pt_raft_node *n;
    int is_write;
    pt_raft_node_cb cb;
    void *arg;
    uint64_t deadline;
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
    int stopping;
    unsigned ticks;
    unsigned closing; /* handles and services still closing */
    void (*stop_cb)(void *arg);
    void *stop_arg;
};

static const struct pt_cluster_region *member(const struct pt_raft_node *n, uint64_t id)
{
    for (size_t i = 0; i < n->cfg.cluster.nregions; i++)
        if (n->cfg.cluster.regions[i].id == id)
            return &n->cfg.cluster.regions[i];
    return NULL;
}

static uint64_t leader_id(struct pt_raft_node *n)
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
 * fails the ones past their deadline. */
static void check_waiters(struct pt_raft_node *n, int expire)
{
    uint64_t applied = raft_last_applied(&n->raft);
    uint64_t now = uv_now(n->loop);
    uint64_t leader = leader_id(n);
    struct waiter **pw = &n->waiters, *ready = NULL;
    while (*pw != NULL) {
        struct waiter *w = *pw;
        int done = (w->index != 0 && w->index <= applied) || (w->index == 0 && leader != 0) ||
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
        } else if (w->index == 0 && leader != 0 && !n->stopping) {
            dispatch(n, w);
            continue; /* dispatch owns w */
        } else {
            free(w->buf);
            w->cb(w->arg, PT_E_UNAVAILABLE, 0);
        }
        free(w);
    }
}

static void wait_applied(struct pt_raft_node *n, uint64_t index, uint64_t timeout_ms,
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
    if (n->blobs != NULL)
        pt_blob_sync_changed(n->blobs);
    return rv;
}

static void sync_peer_addresses(struct pt_raft_node *n);

static void on_tick(uv_timer_t *t)
{
    struct pt_raft_node *n = t->data;
    if (n->waiters != NULL)
        check_waiters(n, 1);
    if (++n->ticks % (1000 / TICK_MS) == 0)
        sync_peer_addresses(n);
}

/* Writes ------------------------------------------------------------------------------ */

static void reply_propose(struct pt_peer_call *call, int status, uint64_t index)
{
    Portolan__ProposeResult res = PORTOLAN__PROPOSE_RESULT__INIT;
    res.status = status;
    res.index = index;
    uint8_t buf[32];
    size_t len = portolan__propose_result__pack(&res, buf);
    pt_peer_reply(call, 0, buf, len);
}

static void on_leader_applied(struct raft_apply *req, int status, void *result)
{
    struct leader_apply *la = req->data;
    la->n->inflight--;
    int st = status != 0 ? pt_raft_fsm_err(status) : pt_raft_fsm_status(result);
    uint64_t index = status != 0 ? 0 : req->index;
    if (la->call != NULL)
        reply_propose(la->call, st, index);
    else
        la->cb(la->arg, st, index);
    free(la);
}

/* Leader: raft_apply. Returns 0, or a PT_E_* (then nothing was started; buf is freed). */
static void fail_apply(struct leader_apply *la, int status)
{
    raft_free(la->entry.base);
    if (la->call != NULL)
        reply_propose(la->call, status, 0);
    else
        la->cb(la->arg, status, 0);
    free(la);
}

/* Leader: queues an entry for the next round. Returns 0, or PT_E_* (nothing queued). */
static int leader_apply(struct pt_raft_node *n, const void *buf, size_t len, pt_raft_node_cb cb,
                        void *arg, struct pt_peer_call *call)
{
    struct leader_apply *la = calloc(1, sizeof(*la));
    if (la == NULL || pt_raft_entry_frame(buf, len, &la->entry) != 0) {
        free(la);
        return PT_E_NOMEM;
    }
    la->n = n;
    la->cb = cb;
    la->arg = arg;
    la->call = call;
    la->req.data = la;
    *n->queue_tail = la;
    n->queue_tail = &la->next;
    return 0;
}

static void on_forward_reply(void *arg, int status, const void *body, size_t len)
{
    struct forward *f = arg;
    struct pt_raft_node *n = f->n;
    uint64_t remaining = f->deadline > uv_now(n->loop) ? f->deadline - uv_now(n->loop) : 1;
    if (status != 0) {
        f->cb(f->arg, PT_E_UNAVAILABLE, 0);
    } else if (f->is_write) {
        Portolan__ProposeResult *res = portolan__propose_result__unpack(NULL, len, body);
        if (res == NULL)
            f->cb(f->arg, PT_E_UNAVAILABLE, 0);
        else if (res->status != 0)
            f->cb(f->arg, res->status, res->index);
        else
            wait_applied(n, res->index, remaining, f->cb, f->arg);
        if (res != NULL)
            portolan__propose_result__free_unpacked(res, NULL);
    } else {
        Portolan__ReadIndexResult *res = portolan__read_index_result__unpack(NULL, len, body);
        if (res == NULL)
            f->cb(f->arg, PT_E_UNAVAILABLE, 0);
        else
            wait_applied(n, res->index, remaining, f->cb, f->arg);
        if (res != NULL)
            portolan__read_index_result__free_unpacked(res, NULL);
    }
    free(f);
}

static void forward(struct pt_raft_node *n, uint64_t to, int is_write, const void *buf, size_t len,
                    pt_raft_node_cb cb, void *arg)
{
    unsigned timeout = is_write ? n->cfg.write_timeout_ms : n->cfg.read_index_timeout_ms;
    struct forward *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        cb(arg, PT_E_NOMEM, 0);
        return;
    }
    f->n = n;
    f->is_write = is_write;
    f->cb = cb;
    f->arg = arg;
    f->deadline = uv_now(n->loop) + timeout;
    uint8_t *body = NULL;
    size_t blen = 0;
    if (is_write) {
        Portolan__Propose msg = PORTOLAN__PROPOSE__INIT;
        msg.command.data = (uint8_t *)buf;
        msg.command.len = len;
        blen = portolan__propose__get_packed_size(&msg);
        body = malloc(blen > 0 ? blen : 1);
        if (body != NULL)
            portolan__propose__pack(&msg, body);
    } else {
        Portolan__ReadIndex msg = PORTOLAN__READ_INDEX__INIT;
        blen = portolan__read_index__get_packed_size(&msg);
        body = malloc(blen > 0 ? blen : 1);
        if (body != NULL)
            portolan__read_index__pack(&msg, body);
    }
    uint32_t type =
        is_write ? PORTOLAN__PEER_TYPE__PEER_PROPOSE : PORTOLAN__PEER_TYPE__PEER_READ_INDEX;
    int rv = body != NULL
                 ? pt_peers_request(n->peers, to, type, body, blen, timeout, on_forward_reply, f)
                 : PT_E_NOMEM;
    free(body);
    if (rv != 0) {
        free(f);
        cb(arg, PT_E_UNAVAILABLE, 0);
    }
}

/* Reads ------------------------------------------------------------------------------- */

static void start_barrier(struct pt_raft_node *n);

static void finish_readers(struct reader *r, int status, uint64_t index)
{
    while (r != NULL) {
        struct reader *next = r->next;
        if (r->call != NULL) {
            Portolan__ReadIndexResult res = PORTOLAN__READ_INDEX_RESULT__INIT;
            res.index = index;
            uint8_t buf[16];
            size_t len = portolan__read_index_result__pack(&res, buf);
            pt_peer_reply(r->call, status != 0 ? PT_E_UNAVAILABLE : 0, buf, len);
        } else {
            r->cb(r->arg, status, index);
        }
        free(r);
        r = next;
    }
}

static void on_barrier(struct raft_barrier *req, int status)
{
    struct pt_raft_node *n = req->data;
    struct reader *done = n->reading;
    n->reading = NULL;
    n->barrier_inflight = 0;
    n->inflight--;
    finish_readers(done, status != 0 ? PT_E_UNAVAILABLE : 0, raft_last_applied(&n->raft));
}

static void start_barrier(struct pt_raft_node *n)
{
    n->reading = n->next_readers;
    n->next_readers = NULL;
    n->barrier_inflight = 1;
    n->barrier.data = n;
    int rv = raft_barrier(&n->raft, &n->barrier, on_barrier);
    if (rv == 0)
        n->inflight++;
    if (rv != 0) {
        struct reader *done = n->reading;
        n->reading = NULL;
        n->barrier_inflight = 0;
        finish_readers(done, PT_E_UNAVAILABLE, 0);
    }
}

/* Leader: joins the next barrier batch. */
static void leader_read(struct pt_raft_node *n, pt_raft_node_cb cb, void *arg,
                        struct pt_peer_call *call)
{
    struct reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        if (call != NULL)
            pt_peer_reply(call, PT_E_NOMEM, NULL, 0);
        else
            cb(arg, PT_E_NOMEM, 0);
        return;
    }
    r->cb = cb;
    r->arg = arg;
    r->call = call;
    r->next = n->next_readers;
    n->next_readers = r; /* the next round's barrier serves it (see flush_round) */
}

/* Starts the next round once the previous one is done (after each loop pass): every entry
 * queued meanwhile is appended at once, with one barrier for the reads that queued up.
 * canonical/raft 0.15 commits only when a majority has stored the leader's last entry, so a
 * steady trickle of single appends would keep the commit index from moving; rounds make the
 * appends arrive in bursts that commit together (group commit across regions). */
static void flush_round(struct pt_raft_node *n)
{
    if (n->inflight > 0 || (n->queue == NULL && n->next_readers == NULL))
        return;
    struct leader_apply *q = n->queue;
    n->queue = NULL;
    n->queue_tail = &n->queue;
    while (q != NULL) {
        struct leader_apply *la = q;
        q = la->next;
        int rv = n->stopping ? RAFT_NOTLEADER
                             : raft_apply(&n->raft, &la->req, &la->entry, 1, on_leader_applied);
        if (rv != 0) {
            fail_apply(la, rv == RAFT_NOTLEADER ? PT_E_UNAVAILABLE : pt_raft_fsm_err(rv));
            continue;
        }
        la->entry.base = NULL; /* raft's now */
        n->inflight++;
    }
    if (n->next_readers != NULL && !n->barrier_inflight && !n->stopping)
        start_barrier(n);
}

static void catch_up_finish(struct catch_up *c, int status, uint64_t index)
{
    if (c->done)
        return;
    c->done = 1;
    c->cb(c->arg, status, index);
}

static void catch_up_release(struct catch_up *c)
{
    if (--c->refs == 0)
        free(c);
}

static void on_catch_up_read(void *arg, int status, uint64_t index)
{
    struct catch_up *c = arg;
    catch_up_finish(c, status, index);
    catch_up_release(c);
}

/* After entries were applied: a catch-up whose key is there now is done. */
static void check_catch_ups(struct pt_raft_node *n)
{
    uint64_t applied = raft_last_applied(&n->raft);
    int changed = applied != n->catch_up_seen;
    n->catch_up_seen = applied;
    for (struct catch_up **pp = &n->catch_ups; *pp != NULL;) {
        struct catch_up *c = *pp;
        if (changed && !c->done && c->present(n->ms, c->key, c->len))
            catch_up_finish(c, 0, applied);
        if (c->done) {
            *pp = c->next;
            catch_up_release(c);
        } else {
            pp = &c->next;
        }
    }
}

static void on_check(uv_check_t *h)
{
    struct pt_raft_node *n = h->data;
    if (n->waiters != NULL)
        check_waiters(n, 0);
    if (n->catch_ups != NULL)
        check_catch_ups(n);
    flush_round(n);
}

/* Entry points ------------------------------------------------------------------------ */

/* Routes a write or read to the leader (itself or a peer); w is consumed. */
static void dispatch(struct pt_raft_node *n, struct waiter *w)
{
    uint64_t leader = leader_id(n);
    if (leader == n->cfg.self_id) {
        if (w->is_write) {
            int rv = leader_apply(n, w->buf, w->len, w->cb, w->arg, NULL);
            if (rv != 0)
                w->cb(w->arg, rv, 0);
        } else {
            leader_read(n, w->cb, w->arg, NULL);
        }
    } else {
        forward(n, leader, w->is_write, w->buf, w->len, w->cb, w->arg);
    }
    free(w->buf);
    free(w);
}

static void submit(struct pt_raft_node *n, int is_write, void *buf, size_t len, pt_raft_node_cb cb,
                   void *arg)
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
    if (leader_id(n) != 0) {
        dispatch(n, w);
        return;
    }
    /* No leader known (an election, or this region is cut off): wait a little for one. */
    w->index = 0;
    w->deadline = uv_now(n->loop) + LEADER_WAIT_MS;
    add_waiter(n, w);
}

void pt_raft_node_propose(struct pt_raft_node *n, void *buf, size_t len, pt_raft_node_cb cb,
                          void *arg)
{
    submit(n, 1, buf, len, cb, arg);
}

void pt_raft_node_read_index(struct pt_raft_node *n, pt_raft_node_cb cb, void *arg)
{
    submit(n, 0, NULL, 0, cb, arg);
}

void pt_raft_node_catch_up(struct pt_raft_node *n,
                           int (*present)(struct pt_metastore *ms, const void *key, size_t len),
                           const void *key, size_t len, pt_raft_node_cb cb, void *arg)
{
    struct catch_up *c = n->stopping ? NULL : calloc(1, sizeof(*c));
    if (c == NULL) {
        submit(n, 0, NULL, 0, cb, arg); /* a plain read index */
        return;
    }
    c->present = present;
    c->key = key;
    c->len = len;
    c->cb = cb;
    c->arg = arg;
    c->refs = 2;
    c->next = n->catch_ups;
    n->catch_ups = c;
    n->catch_up_seen = raft_last_applied(&n->raft);
    submit(n, 0, NULL, 0, on_catch_up_read, c);
}

/* Requests from other regions. */
static void on_peer_request(void *arg, uint64_t from, uint32_t type, const void *body, size_t len,
                            struct pt_peer_call *call)
{
    struct pt_raft_node *n = arg;
    (void)from;
    if (n->stopping || leader_id(n) != n->cfg.self_id) {
        pt_peer_reply(call, PT_E_UNAVAILABLE, NULL, 0);
        return;
    }
    if (type == PORTOLAN__PEER_TYPE__PEER_PROPOSE) {
        Portolan__Propose *msg = portolan__propose__unpack(NULL, len, body);
        if (msg == NULL) {
            pt_peer_reply(call, PT_E_CORRUPT, NULL, 0);
            return;
        }
        int rv = leader_apply(n, msg->command.data, msg->command.len, NULL, NULL, call);
        portolan__propose__free_unpacked(msg, NULL);
        if (rv != 0)
            reply_propose(call, rv, 0);
    } else if (type == PORTOLAN__PEER_TYPE__PEER_READ_INDEX) {
        leader_read(n, NULL, NULL, call);
    } else {
        pt_peer_reply(call, PT_E_UNSUPPORTED, NULL, 0);
    }
}

/* Membership ---------------------------------------------------------------------------- */

struct change {
    struct raft_change req;
    struct raft_transfer transfer;
    struct pt_raft_node *n;
    uint64_t id;
    int role;
    char address[262];
    pt_raft_node_cb cb;
    void *arg;
};

static int change_err(int rv)
{
    switch (rv) {
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST:
        return PT_E_UNAVAILABLE;
    case RAFT_BADID:
    case RAFT_NOTFOUND:
        return PT_E_NOT_FOUND;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
    case RAFT_BADROLE:
        return PT_E_CONFLICT;
    case RAFT_CANTCHANGE:
        return PT_E_TOOMANYREQUESTS; /* another change is still in progress */
    default:
        return pt_raft_fsm_err(rv);
    }
}

static void change_done(struct change *c, int status)
{
    c->cb(c->arg, status, c->id);
    free(c);
}

static void on_assigned(struct raft_change *req, int status)
{
    struct change *c = req->data;
    change_done(c, status != 0 ? change_err(status) : 0);
}

static void on_added(struct raft_change *req, int status)
{
    struct change *c = req->data;
    if (status != 0 || c->role == RAFT_SPARE) {
        change_done(c, status != 0 ? change_err(status) : 0);
        return;
    }
    int rv = raft_assign(&c->n->raft, &c->req, c->id, c->role, on_assigned);
    if (rv != 0)
        change_done(c, change_err(rv));
}

static struct change *new_change(struct pt_raft_node *n, uint64_t id, pt_raft_node_cb cb, void *arg)
{
    struct change *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        cb(arg, PT_E_NOMEM, 0);
        return NULL;
    }
    c->n = n;
    c->id = id;
    c->cb = cb;
    c->arg = arg;
    c->req.data = c;
    c->transfer.data = c;
    return c;
}

/* Proposes a command of one region operation through the leader's own log. */
static int propose_region(struct pt_raft_node *n, Portolan__Op *op, pt_raft_node_cb cb, void *arg)
{
    Portolan__Op *ops[1] = {op};
    Portolan__Command cmd = PORTOLAN__COMMAND__INIT;
    cmd.version = PT_COMMAND_VERSION;
    cmd.time_ms = (int64_t)uv_now(n->loop);
    const struct pt_cluster_region *me = member(n, n->cfg.self_id);
    cmd.region = me != NULL ? (char *)me->name : "";
    cmd.n_ops = 1;
    cmd.ops = ops;
    void *buf;
    size_t len;
    int rv = pt_command_encode(&cmd, &buf, &len);
    if (rv != 0)
        return rv;
    rv = leader_apply(n, buf, len, cb, arg, NULL);
    free(buf);
    return rv;
}

static void on_region_recorded(void *arg, int status, uint64_t index)
{
    struct change *c = arg;
    (void)index;
    if (status != 0) {
        change_done(c, status);
        return;
    }
    pt_peers_set_address(c->n->peers, c->id, c->address);
    int rv = raft_add(&c->n->raft, &c->req, c->id, c->address, on_added);
    if (rv != 0)
        change_done(c, change_err(rv));
}

void pt_raft_node_add(struct pt_raft_node *n, uint64_t id, const char *name, const char *address,
                      const char *url, int role, pt_raft_node_cb cb, void *arg)
{
    struct change *c = new_change(n, id, cb, arg);
    if (c == NULL)
        return;
    c->role = role;
    if (role != RAFT_VOTER && role != RAFT_STANDBY && role != RAFT_SPARE) {
        change_done(c, PT_E_CONFLICT);
        return;
    }
    if (leader_id(n) != n->cfg.self_id) {
        change_done(c, PT_E_UNAVAILABLE);
        return;
    }
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        if (n->raft.configuration.servers[i].id == id ||
            strcmp(n->raft.configuration.servers[i].address, address) == 0) {
            change_done(c, PT_E_CONFLICT);
            return;
        }
    }
    snprintf(c->address, sizeof(c->address), "%s", address);
    Portolan__PutRegion pr = PORTOLAN__PUT_REGION__INIT;
    pr.id = id;
    pr.name = (char *)name;
    pr.address = c->address;
    pr.url = (char *)url;
    Portolan__Op op = PORTOLAN__OP__INIT;
    op.op_case = PORTOLAN__OP__OP_PUT_REGION;
    op.put_region = &pr;
    int rv = propose_region(n, &op, on_region_recorded, c);
    if (rv != 0)
        change_done(c, rv);
}

static void on_region_forgotten(void *arg, int status, uint64_t index)
{
    struct change *c = arg;
    (void)index;
    change_done(c, status);
}

static void on_removed(struct raft_change *req, int status)
{
    struct change *c = req->data;
    if (status != 0) {
        change_done(c, change_err(status));
        return;
    }
    Portolan__DeleteRegion dr = PORTOLAN__DELETE_REGION__INIT;
    dr.id = c->id;
    Portolan__Op op = PORTOLAN__OP__INIT;
    op.op_case = PORTOLAN__OP__OP_DELETE_REGION;
    op.delete_region = &dr;
    int rv = propose_region(c->n, &op, on_region_forgotten, c);
    if (rv != 0)
        change_done(c, rv);
}

void pt_raft_node_remove(struct pt_raft_node *n, uint64_t id, pt_raft_node_cb cb, void *arg)
{
    struct change *c = new_change(n, id, cb, arg);
    if (c == NULL)
        return;
    int rv = raft_remove(&n->raft, &c->req, id, on_removed);
    if (rv != 0)
        change_done(c, change_err(rv));
}

static void on_transferred(struct raft_transfer *req)
{
    struct change *c = req->data;
    uint64_t leader = leader_id(c->n);
    /* raft_transfer reports no status: success is the target (or someone else) leading. */
    change_done(c, leader != 0 && leader != c->n->cfg.self_id ? 0 : PT_E_UNAVAILABLE);
}

void pt_raft_node_transfer(struct pt_raft_node *n, uint64_t id, pt_raft_node_cb cb, void *arg)
{
    struct change *c = new_change(n, id, cb, arg);
    if (c == NULL)
        return;
    int rv = raft_transfer(&n->raft, &c->transfer, id, on_transferred);
    if (rv != 0)
        change_done(c, change_err(rv));
}

/* Keeps the peer layer's addresses in step with Raft's configuration (regions added later
 * are only known there), and tells blob sync their names (from the region records). */
static void sync_peer_addresses(struct pt_raft_node *n)
{
    struct pt_region_rec *recs = NULL;
    size_t nrecs = 0;
    int have_recs = 0;
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        if (s->id == n->cfg.self_id || member(n, s->id) != NULL)
            continue;
        pt_peers_set_address(n->peers, s->id, s->address);
        if (n->blobs == NULL)
            continue;
        if (!have_recs)
            have_recs = pt_metastore_list_regions(n->ms, &recs, &nrecs) == 0;
        for (size_t j = 0; j < nrecs; j++)
            if (recs[j].id == s->id && recs[j].name[0] != '\0')
                pt_blob_sync_set_region(n->blobs, s->id, recs[j].name, s->address);
    }
    free(recs);
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

char *pt_raft_node_replication_json(struct pt_raft_node *n)
{
    return n->blobs != NULL ? pt_blob_sync_status_json(n->blobs) : NULL;
}

/* Status ------------------------------------------------------------------------------ */

static const char *role_name(struct pt_raft_node *n)
{
    switch (raft_state(&n->raft)) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_FOLLOWER:
        break;
    default:
        return "unavailable";
    }
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        if (s->id == n->cfg.self_id)
            return s->role == RAFT_STANDBY ? "standby"
                   : s->role == RAFT_SPARE ? "spare"
                                           : "follower";
    }
    return "follower";
}

static const char *conf_role(int role)
{
    return role == RAFT_STANDBY ? "standby" : role == RAFT_SPARE ? "spare" : "voter";
}

static json_t *self_json(struct pt_raft_node *n, const struct pt_region_rec *recs, size_t nrecs)
{
    const struct pt_cluster_region *me = member(n, n->cfg.self_id);
    uint64_t leader = leader_id(n);
    const char *leader_name, *leader_url;
    pt_cluster_config_describe(&n->cfg.cluster, recs, nrecs, leader, &leader_name, &leader_url);
    json_int_t contact = -1;
    if (raft_state(&n->raft) == RAFT_LEADER)
        contact = 0;
    else if (leader != 0)
        contact = (json_int_t)(n->io.time(&n->io) - n->raft.election_timer_start);
    return json_pack(
        "{s:s,s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:s,s:s,s:I,s:s,s:s}", "cluster_id",
        n->cfg.cluster.cluster_id, "region", me != NULL ? me->name : "", "id",
        (json_int_t)n->cfg.self_id, "role", role_name(n), "term", (json_int_t)n->raft.current_term,
        "commit_index", (json_int_t)n->raft.commit_index, "applied_index",
        (json_int_t)raft_last_applied(&n->raft), "leader_id", (json_int_t)leader, "leader_region",
        leader_name, "leader_url", leader_url, "last_contact_ms", contact, "address",
        me != NULL ? me->address : "", "url", me != NULL ? me->url : "");
}

char *pt_raft_node_status_json(struct pt_raft_node *n, int members)
{
    struct pt_region_rec *recs = NULL;
    size_t nrecs = 0;
    if (pt_metastore_list_regions(n->ms, &recs, &nrecs) != 0)
        nrecs = 0;
    json_t *self = self_json(n, recs, nrecs);
    json_t *root = self;
    if (members && self != NULL) {
        json_t *regions = json_array();
        for (unsigned i = 0; i < n->raft.configuration.n; i++) {
            const struct raft_server *s = &n->raft.configuration.servers[i];
            const char *name, *url;
            pt_cluster_config_describe(&n->cfg.cluster, recs, nrecs, s->id, &name, &url);
            json_array_append_new(regions, json_pack("{s:s,s:I,s:s,s:s,s:s}", "name", name, "id",
                                                     (json_int_t)s->id, "address", s->address,
                                                     "url", url, "role", conf_role(s->role)));
        }
        root = json_pack("{s:s,s:o,s:o}", "cluster_id", n->cfg.cluster.cluster_id, "self", self,
                         "regions", regions);
    }
    free(recs);
    char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}

/* Start and stop ---------------------------------------------------------------------- */

static void maybe_stopped(struct pt_raft_node *n)
{
    if (--n->closing > 0)
        return;
    void (*cb)(void *) = n->stop_cb;
    void *arg = n->stop_arg;
    free(n);
    if (cb != NULL)
        cb(arg);
}

static void on_tick_closed(uv_handle_t *h)
{
    maybe_stopped(h->data);
}

static void on_peers_closed(void *arg)
{
    maybe_stopped(arg);
}

static void on_blobs_stopped(void *arg)
{
    struct pt_raft_node *n = arg;
    n->blobs = NULL;
    maybe_stopped(n);
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
        maybe_stopped(n);
}

void pt_raft_node_stop(struct pt_raft_node *n, void (*cb)(void *arg), void *arg)
{
    n->stopping = 1;
    n->stop_cb = cb;
    n->stop_arg = arg;
    check_waiters(n, 1);
    while (n->catch_ups != NULL) { /* their read indexes end them */
        struct catch_up *c = n->catch_ups;
        n->catch_ups = c->next;
        catch_up_release(c);
    }
    struct reader *pending = n->next_readers;
    n->next_readers = NULL;
    finish_readers(pending, PT_E_UNAVAILABLE, 0);
    struct leader_apply *q = n->queue;
    n->queue = NULL;
    n->queue_tail = &n->queue;
    while (q != NULL) {
        struct leader_apply *la = q;
        q = la->next;
        fail_apply(la, PT_E_UNAVAILABLE);
    }
    n->closing = 3; /* tick timer, check handle, then raft (+ peers) */
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
    int rv = pt_transport_init(&n->transport, loop, cfg->cluster.cluster_id);
    if (rv != 0)
        goto err_after_alloc;
    if (cfg->bind[0] != '\0' && (rv = pt_transport_set_bind_address(&n->transport, cfg->bind)) != 0)
        goto err_after_transport;
    if (raft_uv_init(&n->io, loop, cfg->dir, &n->transport) != 0) {
        rv = PT_E_IO;
        goto err_after_transport;
    }
    pt_raft_fsm_init(&n->fsm, ms, &n->raft);
    n->fsm_apply = n->fsm.fsm.apply;
    n->fsm.fsm.apply = wrapped_apply;
    n->fsm_restore = n->fsm.fsm.restore;
    n->fsm.fsm.restore = wrapped_restore;
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
    raft_set_snapshot_threshold(&n->raft, every);
    raft_set_snapshot_trailing(&n->raft, every / 4);
    if ((rv = pt_peers_init(&n->peers, loop, &n->transport, PT_CHANNEL_PEER, cfg->self_id,
                            on_peer_request, n)) != 0)
        goto err_after_raft;
    if (cfg->blobs != NULL) {
        struct pt_blob_sync_config bc = {.self_id = cfg->self_id,
                                         .concurrency = cfg->replication_concurrency,
                                         .bandwidth = cfg->replication_bandwidth};
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
    if ((!cfg->join && (rv = bootstrap(n)) != 0) || (rv = raft_start(&n->raft)) != 0) {
        pt_log(PT_LOG_ERROR, "raft start failed", "{s:s}", "error", raft_errmsg(&n->raft));
        rv = PT_E_INTERNAL;
        goto err_after_raft;
    }
    uv_timer_init(loop, &n->tick);
    n->tick.data = n;
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
