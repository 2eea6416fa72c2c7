/*
 * peer_rpc.c - request/response calls over peer channels: the answer is always exactly one.
 *
 * Role: pt_peers_request sends a request to a server id and guarantees one answer: the status
 * and body the peer replied with, or PT_E_UNAVAILABLE from here (no channel, queue full,
 * timeout, channel closed, service closed). pt_peer_reply answers an incoming request on the
 * channel it came on. The frames themselves are peer_channel.c's business; which channel a
 * peer's requests go on is peer.c's.
 *
 * Design:
 * - struct call: one outgoing request. It owns its encoded frame until it is written (the
 *   write then owns it) and a timer: the timeout, or a 0 ms timer to report a failure decided
 *   inside an API call, so no callback fires from inside one. A written call sits in its
 *   channel's `sent` list and in a hash table by call id, where its answer finds it.
 * - Requests wait in peer->queue while the outbound channel is CONNECTING, or while it is OPEN
 *   until the channel has a free in-flight slot (PT_PEERS_INFLIGHT_MAX) and its unsent bytes
 *   are below PT_PEERS_WRITE_HIGH (peer_pump); in BACKOFF they fail at once.
 * - struct pt_peer_call: one incoming request, handed to the application; it points at its
 *   channel until the channel closes, so a late pt_peer_reply is dropped safely. A channel
 *   answers PT_E_TOOMANYREQUESTS beyond PT_PEERS_INFLIGHT_MAX unanswered ones.
 *
 * Invariants:
 * - A request callback fires exactly once, never from inside pt_peers_request, pt_peer_reply,
 *   pt_peers_set_address or pt_peers_close; once it fired the call is in no list and its
 *   timer closes, which frees it.
 * - A call is in at most one place: its peer's queue (QUEUED), or its channel's sent list and
 *   the hash (SENT); FAILING and DONE calls are in none.
 * Threads: the loop thread given to pt_peers_init.
 */
#include "peer.h"

#include <assert.h>
#include <stdbool.h>
#include <stdlib.h>

#include "err.h"
#include "log.h"
#include "peer_int.h"

/* A status as it may leave or enter this module: 0 or a PT_E_* value, else PT_E_INTERNAL. */
static int sane_status(int status)
{
    if (status == 0 || (status > PT__ERR_BASE && status < PT__ERR_END))
        return status;
    return PT_E_INTERNAL;
}

static void list_push(struct call_list *l, struct call *c)
{
    c->next = NULL;
    c->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = c;
    else
        l->head = c;
    l->tail = c;
    l->n++;
    l->bytes += c->size;
}

static void list_remove(struct call_list *l, struct call *c)
{
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        l->tail = c->prev;
    c->prev = c->next = NULL;
    l->n--;
    l->bytes -= c->size;
}

static struct call **hash_slot(struct pt_peers *p, uint64_t id)
{
    return &p->hash[id % HASH_BUCKETS];
}

static void hash_add(struct pt_peers *p, struct call *c)
{
    struct call **slot = hash_slot(p, c->id);
    c->hnext = *slot;
    *slot = c;
}

static void hash_remove(struct pt_peers *p, struct call *c)
{
    for (struct call **pp = hash_slot(p, c->id); *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == c) {
            *pp = c->hnext;
            c->hnext = NULL;
            return;
        }
    }
}

static struct call *hash_find(struct pt_peers *p, uint64_t id)
{
    for (struct call *c = *hash_slot(p, id); c != NULL; c = c->hnext) {
        if (c->id == id)
            return c;
    }
    return NULL;
}

/* ---- Outgoing calls ----------------------------------------------------------------------- */

static void call_close_cb(uv_handle_t *h)
{
    struct call *c = h->data;
    struct pt_peers *p = c->p;
    free(c->frame);
    free(c);
    peer_handle_closed(p);
}

/* Takes c out of the queue or channel it is in. */
static void call_detach(struct call *c)
{
    if (c->state == CALL_QUEUED) {
        list_remove(&c->peer->queue, c);
    } else if (c->state == CALL_SENT) {
        list_remove(&c->conn->sent, c);
        hash_remove(c->p, c);
        c->conn = NULL;
    }
}

/* Fires c's callback (c detached) and releases it. */
static void call_complete(struct call *c, int status, const void *body, size_t len)
{
    assert(c->state != CALL_DONE);
    c->state = CALL_DONE;
    uv_timer_stop(&c->timer);
    c->cb(c->arg, status, len > 0 ? body : NULL, len);
    uv_close((uv_handle_t *)&c->timer, call_close_cb);
}

static void call_timer_cb(uv_timer_t *timer)
{
    struct call *c = timer->data;
    struct peer *peer = c->peer;
    bool was_sent = c->state == CALL_SENT;

    if (c->state == CALL_FAILING) {
        call_complete(c, c->status, NULL, 0);
        return;
    }
    call_detach(c); /* timed out */
    call_complete(c, PT_E_UNAVAILABLE, NULL, 0);
    if (was_sent && peer != NULL)
        peer_pump(peer); /* its in-flight slot is free */
}

/* Detaches c and reports status from its timer, on a later loop iteration. */
void peer_call_fail_later(struct call *c, int status)
{
    call_detach(c);
    c->state = CALL_FAILING;
    c->status = status;
    uv_timer_start(&c->timer, call_timer_cb, 0, 0);
}

void peer_fail_queue(struct peer *peer)
{
    while (peer->queue.head != NULL)
        peer_call_fail_later(peer->queue.head, PT_E_UNAVAILABLE);
}

/* Writes queued requests of peer on its outbound channel, as far as the limits allow. */
void peer_pump(struct peer *peer)
{
    struct conn *c = peer->out;
    struct call *call;

    if (c == NULL || c->closing)
        return;
    while ((call = peer->queue.head) != NULL && c->sent.n < PT_PEERS_INFLIGHT_MAX &&
           uv_stream_get_write_queue_size(c->stream) < PT_PEERS_WRITE_HIGH) {
        struct outbuf *ob = call->frame;
        list_remove(&peer->queue, call);
        call->frame = NULL;
        call->state = CALL_SENT;
        call->conn = c;
        list_push(&c->sent, call);
        hash_add(c->p, call);
        if (peer_conn_write(c, ob) != 0)
            return; /* c closed: call failed with the rest of c->sent, the queue with c */
    }
}

/* ---- Incoming frames ---------------------------------------------------------------------- */

void peer_handle_request(struct conn *c, const Portolan__PeerFrame *f)
{
    struct pt_peers *p = c->p;
    struct pt_peer_call *call;

    if (f->type == TYPE_INVALID) {
        peer_conn_close(c, PT_LOG_WARN, "request without a type");
        return;
    }
    if (f->type == TYPE_PING) {
        peer_answer_ping(c, f);
        return;
    }
    if (p->on_request == NULL) {
        (void)peer_send_frame(c, f->call_id, f->type, true, PT_E_UNSUPPORTED, NULL, 0);
        return;
    }
    if (c->n_incoming >= PT_PEERS_INFLIGHT_MAX) {
        (void)peer_send_frame(c, f->call_id, f->type, true, PT_E_TOOMANYREQUESTS, NULL, 0);
        return;
    }
    call = calloc(1, sizeof(*call));
    if (call == NULL) {
        (void)peer_send_frame(c, f->call_id, f->type, true, PT_E_NOMEM, NULL, 0);
        return;
    }
    call->conn = c;
    call->id = f->call_id;
    call->type = f->type;
    call->next = c->incoming;
    if (c->incoming != NULL)
        c->incoming->prev = call;
    c->incoming = call;
    c->n_incoming++;
    p->on_request(p->arg, c->peer->id, f->type, f->body.len > 0 ? f->body.data : NULL, f->body.len,
                  call);
}

void peer_handle_response(struct conn *c, const Portolan__PeerFrame *f)
{
    struct call *call;

    if (f->type == TYPE_PING) {
        peer_take_pong(c, f);
        return;
    }
    call = hash_find(c->p, f->call_id);
    if (call == NULL || call->conn != c)
        return; /* answered after its timeout: dropped */
    call_detach(call);
    call_complete(call, sane_status(f->status), f->body.data, f->body.len);
    if (c->peer->out == c)
        peer_pump(c->peer);
}

/* ---- API ---------------------------------------------------------------------------------- */

int pt_peers_request(struct pt_peers *p, uint64_t to, uint32_t type, const void *body, size_t len,
                     unsigned timeout_ms, pt_peer_reply_cb cb, void *arg)
{
    struct peer *peer;
    struct call *c;

    if (p->closing)
        return PT_E_UNAVAILABLE;
    if (to == 0 || to == p->self_id || type == TYPE_INVALID || type == TYPE_PING ||
        timeout_ms == 0 || timeout_ms > PT_PEERS_TIMEOUT_MAX_MS || cb == NULL ||
        (body == NULL && len > 0))
        return PT_E_CONFIG;
    if (len > PT_PEERS_BODY_MAX)
        return PT_E_TOO_LARGE;
    c = calloc(1, sizeof(*c));
    if (c == NULL)
        return PT_E_NOMEM;
    c->id = p->next_call_id;
    c->frame = peer_encode_frame(c->id, type, false, 0, body, len);
    if (c->frame == NULL) {
        free(c);
        return PT_E_NOMEM;
    }
    p->next_call_id++;
    c->p = p;
    c->state = CALL_NEW;
    c->size = c->frame->len;
    c->cb = cb;
    c->arg = arg;
    uv_timer_init(p->loop, &c->timer);
    c->timer.data = c;
    p->n_handles++;
    uv_timer_start(&c->timer, call_timer_cb, timeout_ms, 0);

    peer = peer_find(p, to);
    if (peer == NULL || peer->address[0] == '\0' || peer->state == PEER_BACKOFF ||
        peer->queue.n >= PT_PEERS_QUEUE_MAX ||
        peer->queue.bytes + c->size > PT_PEERS_QUEUE_BYTES_MAX) {
        peer_call_fail_later(c, PT_E_UNAVAILABLE);
        return 0;
    }
    peer->used = true;
    c->peer = peer;
    c->state = CALL_QUEUED;
    list_push(&peer->queue, c);
    if (peer->state == PEER_IDLE)
        peer_connect(peer); /* on failure the queue, c included, fails */
    else if (peer->state == PEER_OPEN)
        peer_pump(peer);
    return 0;
}

void pt_peer_reply(struct pt_peer_call *call, int status, const void *body, size_t len)
{
    struct conn *c = call->conn;

    if (c != NULL) {
        if (call->prev != NULL)
            call->prev->next = call->next;
        else
            c->incoming = call->next;
        if (call->next != NULL)
            call->next->prev = call->prev;
        c->n_incoming--;
        if (body == NULL)
            len = 0;
        if (len > PT_PEERS_BODY_MAX) {
            status = PT_E_TOO_LARGE;
            body = NULL;
            len = 0;
        }
        (void)peer_send_frame(c, call->id, call->type, true, sane_status(status), body, len);
    }
    free(call);
}
