/*
 * raft_forward.c - writes: the leader's rounds of appends, and a follower's forwarding of a
 * write to the leader (Propose over peer.c). See raft_node.h for what a caller is promised.
 *
 * Leader: pt_raft_node__leader_apply queues an entry; after each loop pass
 * pt_raft_node__flush_round hands every queued entry to raft_apply at once, with one barrier
 * for the reads that queued up meanwhile (raft_read_index.c). A proposer, local or a peer's
 * Propose call, is answered once its entry is applied, with the entry's index.
 *
 * Follower: pt_raft_node__forward sends the write (or a read's ReadIndex) to the leader and,
 * once the leader answers with an index, waits until the local FSM has applied that far
 * (pt_raft_node__wait_applied), so the client reads its own write back from this region.
 */
#include <raft.h>
#include <stdlib.h>

#include "err.h"
#include "peer.h"
#include "peer.pb-c.h"
#include "raft_fsm.h"
#include "raft_node_int.h"

struct forward {
    struct pt_raft_node *n;
    int is_write;
    pt_raft_node_cb cb;
    void *arg;
    uint64_t deadline;
};

void pt_raft_node__reply_propose(struct pt_peer_call *call, int status, uint64_t index)
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
        pt_raft_node__reply_propose(la->call, st, index);
    else
        la->cb(la->arg, st, index);
    free(la);
}

/* Leader: raft_apply. Returns 0, or a PT_E_* (then nothing was started; buf is freed). */
void pt_raft_node__fail_apply(struct leader_apply *la, int status)
{
    raft_free(la->entry.base);
    if (la->call != NULL)
        pt_raft_node__reply_propose(la->call, status, 0);
    else
        la->cb(la->arg, status, 0);
    free(la);
}

/* Leader: queues an entry for the next round. Returns 0, or PT_E_* (nothing queued). */
int pt_raft_node__leader_apply(struct pt_raft_node *n, const void *buf, size_t len,
                               pt_raft_node_cb cb, void *arg, struct pt_peer_call *call)
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
            pt_raft_node__wait_applied(n, res->index, remaining, f->cb, f->arg);
        if (res != NULL)
            portolan__propose_result__free_unpacked(res, NULL);
    } else {
        Portolan__ReadIndexResult *res = portolan__read_index_result__unpack(NULL, len, body);
        if (res == NULL)
            f->cb(f->arg, PT_E_UNAVAILABLE, 0);
        else
            pt_raft_node__wait_applied(n, res->index, remaining, f->cb, f->arg);
        if (res != NULL)
            portolan__read_index_result__free_unpacked(res, NULL);
    }
    free(f);
}

void pt_raft_node__forward(struct pt_raft_node *n, uint64_t to, int is_write, const void *buf,
                           size_t len, pt_raft_node_cb cb, void *arg)
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

/* Starts the next round once the previous one is done (after each loop pass): every entry
 * queued meanwhile is appended at once, with one barrier for the reads that queued up.
 * canonical/raft 0.15 commits only when a majority has stored the leader's last entry, so a
 * steady trickle of single appends would keep the commit index from moving; rounds make the
 * appends arrive in bursts that commit together (group commit across regions). */
void pt_raft_node__flush_round(struct pt_raft_node *n)
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
            pt_raft_node__fail_apply(la,
                                     rv == RAFT_NOTLEADER ? PT_E_UNAVAILABLE : pt_raft_fsm_err(rv));
            continue;
        }
        la->entry.base = NULL; /* raft's now */
        n->inflight++;
    }
    if (n->next_readers != NULL && !n->barrier_inflight && !n->stopping)
        pt_raft_node__start_barrier(n);
}

void pt_raft_node_propose(struct pt_raft_node *n, void *buf, size_t len, pt_raft_node_cb cb,
                          void *arg)
{
    pt_raft_node__submit(n, 1, buf, len, cb, arg);
}
