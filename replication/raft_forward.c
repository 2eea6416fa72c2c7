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
 *
 * Leader changes. Every write carries a write id (pt_raft_node_propose stamps it) and the FSM
 * applies an id at most once (fsm.h), so a write whose fate is unknown can simply be proposed
 * again: if its first entry commits after all, the second applies nothing and yields the
 * first outcome. Hence a pending write follows the leader:
 *   - a follower that learns of a new leader (another leader id, a new term) or loses the
 *     leader sends every forwarded write still unanswered again at once, through
 *     pt_raft_node__route: to the new leader, or after waiting for one at most an election
 *     timeout (LEADER_WAIT_MS), then 503 UNAVAILABLE; the old leader's late answer is dropped;
 *   - a forwarded write refused (the region does not lead), failed (its channel closed, no
 *     answer) or answered PT_E_UNAVAILABLE (the leader lost leadership before applying it) is
 *     sent again the same way, the region that failed it asked again only after RETRY_MS;
 *   - on the leader, an appended entry whose leadership is lost before it applies: a peer's
 *     Propose is refused (pt_raft_node__refuse_propose) so that its sender sends it again, a
 *     local proposer's write is routed again (to the next leader);
 *   - a leader asked for a write id it applied already answers at once with the first index
 *     and status, without appending.
 * Each write keeps its first deadline (the write timeout) through all of this, so none waits
 * longer than it; none waits it out either while a leader exists and answers. A forwarded
 * read simply goes to the new leader. A write without an id (proposed by an older version)
 * is never sent twice: it is answered 503 at once when its leader changes.
 */
#include <raft.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "diskspace.h"
#include "err.h"
#include "peer.h"
#include "peer.pb-c.h"
#include "raft_fsm.h"
#include "raft_node_int.h"

/* A follower's request to the leader, in n->forwards until the peer layer answers it. */
struct forward {
    struct forward *next;
    struct pt_raft_node *n;
    int is_write;
    pt_raft_node_cb cb;
    void *arg;
    uint64_t deadline; /* loop time by which the request is answered (kept when sent again) */
    uint64_t to, term; /* the leader it went to, and the term then */
    int answered;      /* cb ran already, or the write was sent again: the reply is dropped */
    int has_id;        /* a write with a write id: safe to send again */
    void *cmd;         /* a write's command (owned), to send again */
    size_t len;
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
    struct pt_raft_node *n = la->n;
    n->inflight--;
    int st = status != 0 ? pt_raft_fsm_err(status) : pt_raft_fsm_status(result);
    uint64_t index = status != 0 ? 0 : req->index;
    if (st == PT_E_UNAVAILABLE && status != 0 && la->has_id && !n->stopping) {
        /* Appended, then leadership was lost: its fate is unknown, but its write id makes it
         * safe to propose again, to the next leader. */
        if (la->call != NULL) {
            pt_raft_node__refuse_propose(la->call);
        } else {
            pt_raft_node__route(n, 1, la->cmd, la->len, n->cfg.self_id, 0, la->cb, la->arg);
            la->cmd = NULL;
        }
    } else if (la->call != NULL) {
        pt_raft_node__reply_propose(la->call, st, index);
    } else {
        la->cb(la->arg, st, index);
    }
    free(la->cmd);
    free(la);
}

/* Leader: raft_apply. Returns 0, or a PT_E_* (then nothing was started; buf is freed). */
void pt_raft_node__refuse_propose(struct pt_peer_call *call)
{
    Portolan__ProposeResult res = PORTOLAN__PROPOSE_RESULT__INIT;
    res.status = PT_E_UNAVAILABLE;
    uint8_t buf[32];
    size_t len = portolan__propose_result__pack(&res, buf);
    pt_peer_reply(call, PT_E_UNAVAILABLE, buf, len);
}

void pt_raft_node__fail_apply(struct leader_apply *la, int status)
{
    raft_free(la->entry.base);
    free(la->cmd);
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
    /* a leader below its free-space reserve could not apply the entry: refused up front */
    if (pt_disk_low(len))
        return PT_E_DISK_FULL;
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
    const uint8_t *id;
    size_t id_len;
    la->has_id = pt_command_write_id(buf, len, &id, &id_len);
    if (la->has_id && call == NULL) {
        /* a local proposer's write is routed again should leadership be lost */
        la->cmd = malloc(len > 0 ? len : 1);
        if (la->cmd == NULL) {
            raft_free(la->entry.base);
            free(la);
            return PT_E_NOMEM;
        }
        memcpy(la->cmd, buf, len);
        la->len = len;
    }
    *n->queue_tail = la;
    n->queue_tail = &la->next;
    return 0;
}

/* How long writes are sent again to a leader that does not answer at all (no channel, no
 * reply) before they are refused at once: about an election timeout. */
#define UNREACHABLE_MS 1000

/* A write refused by a lock or an immutable tag rule (fsm_policy.c) is answered once this
 * region applied its entry too, so the words of the refusal, drawn from this region's state,
 * name the lock or rule that refused it. The refusal stands whatever the wait gives. */
struct refusal {
    pt_raft_node_cb cb;
    void *arg;
    int status;
};

static void on_refusal_applied(void *arg, int status, uint64_t index)
{
    (void)status;
    struct refusal *r = arg;
    r->cb(r->arg, r->status, index);
    free(r);
}

/* 1 when it took over answering f's refusal, else 0 (the caller answers). */
static int policy_refusal(struct pt_raft_node *n, int status, uint64_t index, uint64_t remaining,
                          const struct forward *f)
{
    if ((status != PT_E_LOCKED && status != PT_E_IMMUTABLE) || index == 0)
        return 0;
    struct refusal *r = malloc(sizeof(*r));
    if (r == NULL)
        return 0;
    *r = (struct refusal){f->cb, f->arg, status};
    pt_raft_node__wait_applied(n, index, remaining, on_refusal_applied, r);
    return 1;
}

/* Sends f's write again (its command moves on; f is dropped when its reply comes), to the
 * current leader, avoiding `avoid` for RETRY_MS. */
static void send_again(struct forward *f, uint64_t avoid)
{
    void *cmd = f->cmd;
    f->cmd = NULL;
    f->answered = 1;
    pt_raft_node__route(f->n, 1, cmd, f->len, avoid, f->deadline, f->cb, f->arg);
}

static void on_forward_reply(void *arg, int status, const void *body, size_t len)
{
    struct forward *f = arg;
    struct pt_raft_node *n = f->n;
    uint64_t now = uv_now(n->loop);
    uint64_t remaining = f->deadline > now ? f->deadline - now : 1;
    for (struct forward **pf = &n->forwards; *pf != NULL; pf = &(*pf)->next) {
        if (*pf == f) {
            *pf = f->next;
            break;
        }
    }
    /* Sent again once: refused unappended (a body without a transport error, see
     * pt_raft_node__refuse_propose), or its fate unknown (no answer, channel lost) and its
     * write id makes a second proposal harmless. */
    int again = f->is_write && !f->answered && now < f->deadline && !n->stopping &&
                status == PT_E_UNAVAILABLE && (len > 0 || f->has_id);
    if (status == PT_E_UNAVAILABLE && len == 0) {
        /* No answer from f->to: sent again only while it has been unreachable for less than
         * UNREACHABLE_MS (a dropped channel, a link coming back), then refused at once. */
        if (n->unreachable_id != f->to) {
            n->unreachable_id = f->to;
            n->unreachable_since = now;
        }
        again = again && now - n->unreachable_since < UNREACHABLE_MS;
    } else if (n->unreachable_id == f->to) {
        n->unreachable_id = 0;
    }
    if (f->answered) {
        /* answered, or sent again, when the leader changed */
    } else if (again) {
        send_again(f, f->to);
    } else if (status != 0) {
        f->cb(f->arg, PT_E_UNAVAILABLE, 0);
    } else if (f->is_write) {
        Portolan__ProposeResult *res = portolan__propose_result__unpack(NULL, len, body);
        if (res == NULL)
            f->cb(f->arg, PT_E_UNAVAILABLE, 0);
        else if (res->status == PT_E_UNAVAILABLE && f->has_id && now < f->deadline && !n->stopping)
            send_again(f, f->to); /* the leader lost leadership before applying it */
        else if (res->status != 0 && !policy_refusal(n, res->status, res->index, remaining, f))
            f->cb(f->arg, res->status, res->index);
        else if (res->status == 0)
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
    free(f->cmd);
    free(f);
}

void pt_raft_node__check_forwards(struct pt_raft_node *n)
{
    uint64_t leader = pt_raft_node__leader_id(n);
    for (struct forward *f = n->forwards; f != NULL; f = f->next) {
        if (f->answered || (leader == f->to && n->raft.current_term == f->term))
            continue;
        /* The leader it went to stepped down, or this region lost it. (New forwards go to the
         * list's head, never after f.) */
        if (f->is_write && f->has_id && !n->stopping) {
            send_again(f, 0);
        } else if (f->is_write) {
            f->answered = 1;
            f->cb(f->arg, PT_E_UNAVAILABLE, 0); /* no id: its fate is unknown */
        } else {
            f->answered = 1;
            pt_raft_node__route(n, 0, NULL, 0, 0, f->deadline, f->cb, f->arg);
        }
    }
}

void pt_raft_node__forward(struct pt_raft_node *n, uint64_t to, int is_write, const void *buf,
                           size_t len, uint64_t deadline, pt_raft_node_cb cb, void *arg)
{
    uint64_t now = uv_now(n->loop);
    unsigned timeout = is_write ? n->cfg.write_timeout_ms : n->cfg.read_index_timeout_ms;
    if (deadline == 0)
        deadline = now + timeout;
    else
        timeout = deadline > now ? (unsigned)(deadline - now) : 1;
    struct forward *f = calloc(1, sizeof(*f));
    if (f == NULL) {
        cb(arg, PT_E_NOMEM, 0);
        return;
    }
    f->n = n;
    f->is_write = is_write;
    f->cb = cb;
    f->arg = arg;
    f->deadline = deadline;
    f->to = to;
    f->term = n->raft.current_term;
    if (is_write) {
        const uint8_t *id;
        size_t id_len;
        f->has_id = pt_command_write_id(buf, len, &id, &id_len);
        f->cmd = malloc(len > 0 ? len : 1);
        f->len = len;
        if (f->cmd == NULL) {
            free(f);
            cb(arg, PT_E_NOMEM, 0);
            return;
        }
        memcpy(f->cmd, buf, len);
    }
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
        free(f->cmd);
        free(f);
        cb(arg, PT_E_UNAVAILABLE, 0);
        return;
    }
    f->next = n->forwards;
    n->forwards = f;
}

/* An entry raft_apply refused (this region stopped leading, or hands leadership over) was
 * never appended, so it can go to the next leader without risk of applying twice: a peer's
 * Propose is refused so that its sender proposes it again; a local one is routed again here.
 * Returns 0 once it is handed on (la freed), or RAFT_NOTLEADER (nothing done). */
static int not_appended(struct leader_apply *la)
{
    struct pt_raft_node *n = la->n;
    const void *cmd;
    size_t len;
    void *copy = NULL;
    if (la->call != NULL) {
        pt_raft_node__refuse_propose(la->call);
    } else if (pt_raft_entry_unframe(&la->entry, &cmd, &len) == 0 &&
               (copy = malloc(len > 0 ? len : 1)) != NULL) {
        memcpy(copy, cmd, len);
        pt_raft_node__route(n, 1, copy, len, n->cfg.self_id, 0, la->cb, la->arg);
    } else {
        return RAFT_NOTLEADER;
    }
    raft_free(la->entry.base);
    free(la->cmd);
    free(la);
    return 0;
}

/* Starts the next round once the previous one is done (after each loop pass): every entry
 * queued meanwhile is appended at once, with one barrier for the reads that queued up.
 * canonical/raft 0.15 commits only when a majority has stored the leader's last entry, so a
 * steady trickle of single appends would keep the commit index from moving; rounds make the
 * appends arrive in bursts that commit together (group commit across regions). */
void pt_raft_node__flush_round(struct pt_raft_node *n)
{
    /* A new leader may not know which entries of earlier terms are committed (a follower
     * told "applied at i" by the old leader can wait for i forever if no write comes): it
     * commits a barrier at the start of its term (Raft dissertation 6.4: "each leader
     * commit[s] a blank no-op entry into the log at the start of its term"). */
    int opening = raft_state(&n->raft) == RAFT_LEADER && n->noop_term != n->raft.current_term;
    if (n->inflight > 0 ||
        (n->queue == NULL && n->next_readers == NULL && !opening && !n->lease_renew))
        return;
    struct leader_apply *q = n->queue;
    n->queue = NULL;
    n->queue_tail = &n->queue;
    while (q != NULL) {
        struct leader_apply *la = q;
        q = la->next;
        int rv = n->stopping ? RAFT_NOTLEADER
                             : raft_apply(&n->raft, &la->req, &la->entry, 1, on_leader_applied);
        if (rv == RAFT_NOTLEADER && !n->stopping && not_appended(la) == 0)
            continue; /* handed on to the next leader */
        if (rv != 0) {
            pt_raft_node__fail_apply(la,
                                     rv == RAFT_NOTLEADER ? PT_E_UNAVAILABLE : pt_raft_fsm_err(rv));
            continue;
        }
        la->entry.base = NULL; /* raft's now */
        n->inflight++;
    }
    /* the barrier of the reads, the term's opening, or a renewal of the read lease */
    if (raft_state(&n->raft) != RAFT_LEADER)
        n->lease_renew = 0;
    if ((n->next_readers != NULL || opening || n->lease_renew) && !n->barrier_inflight &&
        !n->stopping) {
        n->noop_term = n->raft.current_term;
        pt_raft_node__start_barrier(n);
    }
}

void pt_raft_node_propose(struct pt_raft_node *n, void *buf, size_t len, pt_raft_node_cb cb,
                          void *arg)
{
    int rv = pt_raft_node__stamp(n, &buf, &len);
    if (rv != 0) {
        free(buf);
        cb(arg, rv, 0);
        return;
    }
    pt_raft_node__route(n, 1, buf, len, 0, 0, cb, arg);
}
