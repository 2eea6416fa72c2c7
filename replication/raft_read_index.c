/*
 * raft_read_index.c - linearizable read points: the leader's read lease, batched barriers
 * (Raft dissertation 6.4) when no lease holds, and a follower's batched ReadIndex.
 *
 * Role: every linearizable read (a tag GET, a catch-up, the start-up catch-up) ends here with
 * an index i such that every write acknowledged before the read began is at or below i; the
 * caller answers once the local FSM has applied i.
 *
 * Design. The read path, in the order a read meets it:
 *   1. Leader, lease held (no round trip). A barrier started at monotonic time t0 and
 *      committed proves that a majority of voters heard from this leader at t0 or later; in
 *      canonical/raft 0.15 such a follower refuses every vote and pre-vote (without the
 *      disrupt-leader flag) until its election timer, at least election_timeout, fires. So
 *      no other leader can exist before t0 + election_timeout, and with room for clock drift
 *      and loop latency (read_lease.h: 1000 ms * 0.9 - 100 ms = 800 ms) this leader reads
 *      alone until then: the read point is raft's commit index now (or the last command
 *      below it, read_point), answered once applied (at once for a follower's ReadIndex).
 *      PT_METRICS_READ_LEASE.
 *   2. Leader, no lease (a new term, a lease lapsed, being dropped): the read joins the next
 *      barrier batch (flush_round, raft_forward.c); that barrier, committed, answers it with
 *      the applied index, and - being a confirmation round - grants the next lease.
 *      PT_METRICS_READ_INDEX.
 *   3. Follower: every read of one loop pass goes to the leader as one ReadIndex
 *      (PT_METRICS_READ_FORWARDED), which the leader answers from its lease (1.) without a
 *      round of its own: one round trip, then the wait until this region has applied it.
 * Renewal: while reads arrive, a lease with less than half its length left asks the next
 * round for a barrier (also from the tick, so that a steady stream of reads never meets an
 * expired lease); an idle leader lets it lapse and its first read pays one round trip.
 * Dropping: the lease belongs to a term and a lease epoch. A new term or losing leadership
 * ends it (checked at every read); the epoch is bumped (pt_raft_node__drop_lease) when this
 * node starts a leadership transfer - its target campaigns with the disrupt-leader flag,
 * which followers honour while they still know this leader, so no lease is granted again
 * for three election timeouts - and whenever raft's configuration changes or is uncommitted.
 * A stalled loop needs no care: each read compares the lease's end with the time taken then
 * (lease_now_ns: CLOCK_BOOTTIME, which also counts a suspended machine), never with the
 * loop's cached time.
 * Assumption (that of every lease): clocks' rates differ by less than 10 %. A voter that
 * restarts forgets its leader; it refuses raft channels (pt_transport_hold_raft, so it votes
 * for nobody) until its process is an election timeout old (raft_node.c).
 *
 * Catch-ups (pt_raft_node_catch_up): a read index that ends early once a key it looks for
 * has been applied locally; each holds two references, its read index and the node's list.
 *
 * Threads: all on the committer's loop (n->loop).
 */
#include <raft.h>
#include <stdlib.h>
#include <time.h>

#include "err.h"
#include "metastore.h"
#include "metrics.h"
#include "peer.h"
#include "peer.pb-c.h"
#include "raft_node_int.h"
#include "read_lease.h"

#define NS_PER_MS 1000000ull

/* The lease's clock: monotonic, and running while the machine is suspended (a leader woken
 * from a suspend must find its lease over; CLOCK_MONOTONIC would not have moved). */
static uint64_t lease_now_ns(void)
{
    struct timespec ts;
    if (clock_gettime(CLOCK_BOOTTIME, &ts) != 0)
        return UINT64_MAX; /* no clock: every lease is over */
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void reply_index(struct pt_peer_call *call, int status, uint64_t index)
{
    Portolan__ReadIndexResult res = PORTOLAN__READ_INDEX_RESULT__INIT;
    res.index = index;
    uint8_t buf[16];
    size_t len = portolan__read_index_result__pack(&res, buf);
    pt_peer_reply(call, status != 0 ? PT_E_UNAVAILABLE : 0, buf, len);
}

/* The lease epoch, bumped first if raft's configuration changed (or is being changed) since
 * it was last looked at. */
static uint64_t lease_epoch(struct pt_raft_node *n)
{
    if (n->raft.configuration_index != n->lease_conf ||
        n->raft.configuration_uncommitted_index != 0) {
        n->lease_conf = n->raft.configuration_index;
        n->lease_epoch++;
    }
    return n->lease_epoch;
}

static uint64_t lease_length_ns(const struct pt_raft_node *n)
{
    uint64_t end = pt_read_lease_end(1, n->raft.election_timeout, PT_READ_LEASE_DRIFT_PPM,
                                     PT_READ_LEASE_MARGIN_MS);
    return end != 0 ? end - 1 : 0;
}

/* The leader's read point: raft's commit index or, when everything committed is applied and
 * nothing is held back on a full disk, the last command applied: later entries are barriers
 * or configurations, which change nothing a read sees, so the state is the same. A follower
 * has usually applied that command already, so it need not wait to hear that the lease's own
 * renewal barriers committed. */
static uint64_t read_point(struct pt_raft_node *n)
{
    uint64_t commit = n->raft.commit_index;
    if (raft_last_applied(&n->raft) != commit || n->fsm.pending != NULL)
        return commit;
    uint64_t last = pt_metastore_applied_index(n->ms);
    return last != 0 && last < commit ? last : commit;
}

/* Whether this node may read alone at now_ns (see the top of the file). */
static int lease_holds(struct pt_raft_node *n, uint64_t now_ns)
{
    if (raft_state(&n->raft) != RAFT_LEADER || n->stopping)
        return 0;
    if (n->raft.transfer != NULL) { /* a transfer started elsewhere than pt_raft_node_transfer */
        pt_raft_node__drop_lease(n, PT_LEASE_TRANSFER_HOLD_ELECTIONS * n->raft.election_timeout);
        return 0;
    }
    uint64_t epoch = lease_epoch(n);
    return pt_read_lease_holds(&n->lease, now_ns, n->raft.current_term, epoch);
}

void pt_raft_node__drop_lease(struct pt_raft_node *n, uint64_t hold_ms)
{
    n->lease_epoch++;
    n->lease.end_ns = 0;
    uint64_t hold = lease_now_ns() + hold_ms * NS_PER_MS;
    if (hold_ms > 0 && hold > n->lease_hold_ns)
        n->lease_hold_ns = hold;
}

void pt_raft_node__lease_tick(struct pt_raft_node *n)
{
    if (raft_state(&n->raft) != RAFT_LEADER || n->barrier_inflight || n->stopping)
        return;
    uint64_t now = lease_now_ns(), length = lease_length_ns(n);
    /* reads came within the last lease: keep one ready for the next */
    if (n->lease_read_ns != 0 && now - n->lease_read_ns < length &&
        pt_read_lease_wants_renewal(&n->lease, now, length))
        n->lease_renew = 1;
}

void pt_raft_node__finish_readers(struct reader *r, int status, uint64_t index)
{
    while (r != NULL) {
        struct reader *next = r->next;
        if (r->call != NULL) {
            reply_index(r->call, status, index);
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
    /* Committed: a majority stored an entry made after barrier_t0_ns (a confirmation round).
     * A round started before a transfer's hold ends grants nothing. */
    if (status == 0 && raft_state(&n->raft) == RAFT_LEADER &&
        n->raft.current_term == n->barrier_term && n->raft.transfer == NULL &&
        lease_epoch(n) == n->barrier_epoch && n->barrier_t0_ns >= n->lease_hold_ns)
        pt_read_lease_confirm(&n->lease,
                              pt_read_lease_end(n->barrier_t0_ns, n->raft.election_timeout,
                                                PT_READ_LEASE_DRIFT_PPM, PT_READ_LEASE_MARGIN_MS),
                              n->barrier_term, n->barrier_epoch);
    pt_raft_node__finish_readers(done, status != 0 ? PT_E_UNAVAILABLE : 0, read_point(n));
}

void pt_raft_node__start_barrier(struct pt_raft_node *n)
{
    n->reading = n->next_readers;
    n->next_readers = NULL;
    n->barrier_inflight = 1;
    n->lease_renew = 0;
    n->barrier.data = n;
    /* before the entry exists: every follower that stores it heard from us after t0 */
    n->barrier_t0_ns = lease_now_ns();
    n->barrier_term = n->raft.current_term;
    n->barrier_epoch = lease_epoch(n);
    int rv = raft_barrier(&n->raft, &n->barrier, on_barrier);
    if (rv == 0)
        n->inflight++;
    if (rv != 0) {
        struct reader *done = n->reading;
        n->reading = NULL;
        n->barrier_inflight = 0;
        pt_raft_node__finish_readers(done, PT_E_UNAVAILABLE, 0);
    }
}

/* Leader: answered from the lease when it holds, else joins the next barrier batch. */
void pt_raft_node__leader_read(struct pt_raft_node *n, pt_raft_node_cb cb, void *arg,
                               struct pt_peer_call *call)
{
    uint64_t now = lease_now_ns();
    n->lease_read_ns = now;
    if (lease_holds(n, now)) {
        pt_metrics_raft_read(PT_METRICS_READ_LEASE);
        if (pt_read_lease_wants_renewal(&n->lease, now, lease_length_ns(n)))
            n->lease_renew = 1;
        uint64_t index = read_point(n);
        if (call != NULL) {
            reply_index(call, 0, index); /* the follower waits until it has applied it */
            return;
        }
        struct reader *r = calloc(1, sizeof(*r));
        if (r == NULL) {
            cb(arg, PT_E_NOMEM, 0);
            return;
        }
        r->cb = cb;
        r->arg = arg;
        r->index = index;
        r->next = n->lease_readers;
        n->lease_readers = r; /* answered after this pass (cb never from inside the call) */
        return;
    }
    pt_metrics_raft_read(PT_METRICS_READ_INDEX);
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

struct read_batch {
    struct reader *readers;
};

static void on_batch_read(void *arg, int status, uint64_t index)
{
    struct read_batch *b = arg;
    pt_raft_node__finish_readers(b->readers, status, index);
    free(b);
}

static void send_batch(struct pt_raft_node *n)
{
    struct reader *readers = n->batch_readers;
    n->batch_readers = NULL;
    struct read_batch *b = calloc(1, sizeof(*b));
    if (b == NULL) {
        pt_raft_node__finish_readers(readers, PT_E_NOMEM, 0);
        return;
    }
    b->readers = readers;
    pt_metrics_raft_read(PT_METRICS_READ_FORWARDED);
    pt_raft_node__forward(n, n->batch_to, 0, NULL, 0, 0, on_batch_read, b);
}

void pt_raft_node__follower_read(struct pt_raft_node *n, uint64_t to, pt_raft_node_cb cb, void *arg)
{
    if (n->batch_readers != NULL && n->batch_to != to)
        send_batch(n); /* the leader changed within the pass */
    struct reader *r = calloc(1, sizeof(*r));
    if (r == NULL) {
        pt_raft_node__forward(n, to, 0, NULL, 0, 0, cb, arg); /* alone */
        return;
    }
    r->cb = cb;
    r->arg = arg;
    r->next = n->batch_readers;
    n->batch_readers = r;
    n->batch_to = to;
}

void pt_raft_node__flush_reads(struct pt_raft_node *n)
{
    struct reader *r = n->lease_readers;
    n->lease_readers = NULL;
    while (r != NULL) {
        struct reader *next = r->next;
        pt_raft_node__wait_applied(n, r->index, n->cfg.read_index_timeout_ms, r->cb, r->arg);
        free(r);
        r = next;
    }
    if (n->batch_readers != NULL)
        send_batch(n);
}

void pt_raft_node__fail_reads(struct pt_raft_node *n)
{
    struct reader *lease = n->lease_readers, *batch = n->batch_readers;
    n->lease_readers = NULL;
    n->batch_readers = NULL;
    pt_raft_node__finish_readers(lease, PT_E_UNAVAILABLE, 0);
    pt_raft_node__finish_readers(batch, PT_E_UNAVAILABLE, 0);
}

static void catch_up_finish(struct catch_up *c, int status, uint64_t index)
{
    if (c->done)
        return;
    c->done = 1;
    c->cb(c->arg, status, index);
}

void pt_raft_node__catch_up_release(struct catch_up *c)
{
    if (--c->refs == 0)
        free(c);
}

static void on_catch_up_read(void *arg, int status, uint64_t index)
{
    struct catch_up *c = arg;
    catch_up_finish(c, status, index);
    pt_raft_node__catch_up_release(c);
}

/* After entries were applied: a catch-up whose key is there now is done. */
void pt_raft_node__check_catch_ups(struct pt_raft_node *n)
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
            pt_raft_node__catch_up_release(c);
        } else {
            pp = &c->next;
        }
    }
}

void pt_raft_node_read_index(struct pt_raft_node *n, pt_raft_node_cb cb, void *arg)
{
    pt_raft_node__route(n, 0, NULL, 0, 0, 0, cb, arg);
}

void pt_raft_node_catch_up(struct pt_raft_node *n,
                           int (*present)(struct pt_metastore *ms, const void *key, size_t len),
                           const void *key, size_t len, pt_raft_node_cb cb, void *arg)
{
    struct catch_up *c = n->stopping ? NULL : calloc(1, sizeof(*c));
    if (c == NULL) {
        pt_raft_node__route(n, 0, NULL, 0, 0, 0, cb, arg); /* a plain read index */
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
    pt_raft_node__route(n, 0, NULL, 0, 0, 0, on_catch_up_read, c);
}
