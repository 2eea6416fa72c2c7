/*
 * raft_read_index.c - linearizable read points (Raft dissertation 6.4), batched.
 *
 * The leader serves every read that arrived before a barrier started with that one barrier;
 * reads arriving while it is in flight wait for the next (started by the next round,
 * raft_forward.c). The barrier commits an entry of the leader's term, which proves it is
 * still the leader and that its applied index covers every write acknowledged before the
 * read. A follower asks the leader for that index (ReadIndex, raft_forward.c) and waits until
 * it has applied that far.
 *
 * Catch-ups (pt_raft_node_catch_up): a read index that ends early once a key it looks for
 * has been applied locally; each holds two references, its read index and the node's list.
 */
#include <raft.h>
#include <stdlib.h>

#include "err.h"
#include "peer.h"
#include "peer.pb-c.h"
#include "raft_node_int.h"

void pt_raft_node__finish_readers(struct reader *r, int status, uint64_t index)
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
    pt_raft_node__finish_readers(done, status != 0 ? PT_E_UNAVAILABLE : 0,
                                 raft_last_applied(&n->raft));
}

void pt_raft_node__start_barrier(struct pt_raft_node *n)
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
        pt_raft_node__finish_readers(done, PT_E_UNAVAILABLE, 0);
    }
}

/* Leader: joins the next barrier batch. */
void pt_raft_node__leader_read(struct pt_raft_node *n, pt_raft_node_cb cb, void *arg,
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
