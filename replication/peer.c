/*
 * peer.c - request/response RPC between nodes over the transport's peer channels (peer.h).
 *
 * Role: turns the byte streams that the transport hands over (pt_transport_connect_peer, and
 * the peer-accept hook for inbound ones) into calls: a request gets exactly one answer, from
 * the peer or from here (PT_E_UNAVAILABLE). It knows nothing of what the bodies mean;
 * forwarding and read indexes are built on top of it.
 *
 * This file keeps the peer table, each peer's outbound channel and the service's life cycle.
 * The other pieces (listed in peer_int.h): peer_channel.c (frames on one channel), peer_rpc.c
 * (calls and answers), peer_ping.c (RTT and the idle limit).
 *
 * Design:
 * - struct peer: one per server id, created by pt_peers_set_address or by an inbound channel,
 *   kept until close (at most PT_PEERS_MAX). Its outbound channel goes IDLE -> CONNECTING ->
 *   OPEN; a failed attempt or a dropped channel goes to BACKOFF (a timer, doubling from
 *   PT_PEERS_BACKOFF_MIN_MS to _MAX_MS, each wait jittered down to half), after which a peer that
 * was ever asked something is reconnected. This node sends its own requests on its one outbound
 * channel per peer only.
 * - Inbound channels: at most PT_PEERS_INBOUND_PER_PEER per peer; a newer one closes the
 *   oldest (a restarted peer).
 * - A connection attempt has its own small record (struct attempt) because the transport
 *   cannot cancel one attempt: pt_peers_close orphans it, and when the transport completes it
 *   the record closes the stream, if any, and frees itself.
 *
 * Invariants:
 * - p is freed when every handle it opened (tick timer, backoff timers, streams, call timers)
 *   has run its close callback; then the close callback fires.
 * Threads: everything runs on the loop thread given to pt_peers_init.
 */
#include "peer.h"

#include <assert.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "peer_int.h"
#include "transport.h"

/* ---- Shutdown bookkeeping ----------------------------------------------------------------- */

/* Frees p and fires the close callback once closing and every handle is closed. */
static void maybe_closed(struct pt_peers *p)
{
    void (*cb)(void *arg);
    void *arg;

    if (!p->closing || p->n_handles != 0)
        return;
    while (p->peers != NULL) {
        struct peer *peer = p->peers;
        p->peers = peer->next;
        free(peer);
    }
    cb = p->close_cb;
    arg = p->close_arg;
    free(p);
    if (cb != NULL)
        cb(arg);
}

void peer_handle_closed(struct pt_peers *p)
{
    assert(p->n_handles > 0);
    p->n_handles--;
    maybe_closed(p);
}

static void tick_close_cb(uv_handle_t *h)
{
    peer_handle_closed(h->data);
}

static void backoff_close_cb(uv_handle_t *h)
{
    struct peer *peer = h->data;
    peer_handle_closed(peer->p);
}

void peer_free_stream_cb(uv_handle_t *h)
{
    raft_free(h);
}

/* ---- Peers and their outbound channel ----------------------------------------------------- */

struct peer *peer_find(struct pt_peers *p, uint64_t id)
{
    for (struct peer *peer = p->peers; peer != NULL; peer = peer->next) {
        if (peer->id == id)
            return peer;
    }
    return NULL;
}

/* The peer of id, created if needed; NULL when PT_PEERS_MAX are known or out of memory. */
static struct peer *peer_get(struct pt_peers *p, uint64_t id)
{
    struct peer *peer = peer_find(p, id);

    if (peer != NULL)
        return peer;
    if (p->n_peers >= PT_PEERS_MAX)
        return NULL;
    peer = calloc(1, sizeof(*peer));
    if (peer == NULL)
        return NULL;
    peer->p = p;
    peer->id = id;
    peer->state = PEER_IDLE;
    peer->backoff_ms = PT_PEERS_BACKOFF_MIN_MS;
    peer->rtt_us = -1;
    uv_timer_init(p->loop, &peer->backoff);
    peer->backoff.data = peer;
    p->n_handles++;
    peer->next = p->peers;
    p->peers = peer;
    p->n_peers++;
    return peer;
}

static void backoff_cb(uv_timer_t *timer)
{
    struct peer *peer = timer->data;

    peer->state = PEER_IDLE;
    if (peer->used && peer->address[0] != '\0')
        peer_connect(peer);
}

/* The outbound channel failed or dropped: fail what waits for it and back off. */
void peer_down(struct peer *peer)
{
    peer->state = PEER_IDLE;
    peer_fail_queue(peer);
    if (peer->p->closing)
        return;
    peer->state = PEER_BACKOFF;
    /* xorshift64: jitter needs no more than a cheap sequence per service */
    uint64_t x = peer->p->jitter;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    peer->p->jitter = x;
    unsigned half = peer->backoff_ms / 2;
    uv_timer_start(&peer->backoff, backoff_cb, half + x % (peer->backoff_ms - half + 1), 0);
    peer->backoff_ms *= 2;
    if (peer->backoff_ms > PT_PEERS_BACKOFF_MAX_MS)
        peer->backoff_ms = PT_PEERS_BACKOFF_MAX_MS;
}

/* The outbound channel to peer could not be opened, because of error. */
static void log_not_opened(const struct peer *peer, const char *error)
{
    if (pt_log_enabled(PT_LOG_DEBUG)) {
        pt_log(PT_LOG_DEBUG, "peer channel not opened", "{s:I,s:s,s:s}", "peer_id",
               (json_int_t)peer->id, "address", peer->address, "error", error);
    }
}

static void connected_cb(void *arg, int status, uv_stream_t *stream)
{
    struct attempt *a = arg;
    struct peer *peer = a->peer;

    free(a);
    if (peer == NULL) { /* orphaned by pt_peers_close */
        if (stream != NULL)
            uv_close((uv_handle_t *)stream, peer_free_stream_cb);
        return;
    }
    peer->attempt = NULL;
    if (status != 0) {
        log_not_opened(peer, status == PT_TRANSPORT_CANCELED ? "canceled" : pt_err_message(status));
        peer_down(peer);
        return;
    }
    if (peer_conn_open(peer->p, peer, stream, true) == NULL) {
        if (peer->state == PEER_CONNECTING)
            peer_down(peer); /* else peer_conn_close already did */
        return;
    }
    peer_pump(peer);
}

/* Starts the outbound channel of an IDLE peer; a failure to start backs off at once. */
void peer_connect(struct peer *peer)
{
    struct pt_peers *p = peer->p;
    struct attempt *a = malloc(sizeof(*a));
    int rv = PT_E_NOMEM;

    assert(peer->state == PEER_IDLE);
    if (a != NULL) {
        a->peer = peer;
        rv = pt_transport_connect_peer(p->t, peer->id, peer->address, p->channel, connected_cb, a);
    }
    if (rv != 0) {
        free(a);
        log_not_opened(peer, pt_err_message(rv));
        peer_down(peer);
        return;
    }
    peer->attempt = a;
    peer->state = PEER_CONNECTING;
}

/* Transport hook: an inbound peer channel from server id. */
static void accept_cb(void *arg, uint64_t id, const char *address, uv_stream_t *stream)
{
    struct pt_peers *p = arg;
    struct peer *peer;
    struct conn *oldest = NULL;
    unsigned n = 0;

    peer = p->closing ? NULL : peer_get(p, id);
    if (peer == NULL) {
        pt_log(PT_LOG_WARN, "inbound peer channel refused", "{s:I,s:s,s:s}", "peer_id",
               (json_int_t)id, "address", address, "reason",
               p->closing ? "closing" : "too many peers or out of memory");
        uv_close((uv_handle_t *)stream, peer_free_stream_cb);
        return;
    }
    for (struct conn *c = p->conns; c != NULL; c = c->next) {
        if (c->peer == peer && !c->outbound && !c->closing) {
            if (oldest == NULL)
                oldest = c;
            n++;
        }
    }
    if (n >= PT_PEERS_INBOUND_PER_PEER)
        peer_conn_close(oldest, PT_LOG_INFO, "replaced by a newer inbound channel");
    (void)peer_conn_open(p, peer, stream, false);
}

/* ---- API ---------------------------------------------------------------------------------- */

int pt_peers_init(struct pt_peers **out, uv_loop_t *loop, struct raft_uv_transport *t, int channel,
                  uint64_t self_id, pt_peer_request_cb on_request, void *arg)
{
    struct pt_peers *p;

    if (out == NULL || loop == NULL || t == NULL || t->impl == NULL || self_id == 0 ||
        channel < 0 || channel >= PT_CHANNELS)
        return PT_E_CONFIG;
    p = calloc(1, sizeof(*p));
    if (p == NULL)
        return PT_E_NOMEM;
    p->loop = loop;
    p->t = t;
    p->channel = channel;
    p->self_id = self_id;
    p->on_request = on_request;
    p->arg = arg;
    p->next_call_id = 1; /* 0 is the pings' */
    uv_timer_init(loop, &p->tick);
    p->tick.data = p;
    p->jitter = (uv_hrtime() ^ (self_id * 0x9e3779b97f4a7c15ull)) | 1;
    uv_timer_start(&p->tick, peer_tick_cb, PT_PEERS_PING_MS, PT_PEERS_PING_MS);
    p->n_handles = 1;
    pt_transport_set_peer_accept(t, channel, accept_cb, p);
    *out = p;
    return 0;
}

int pt_peers_set_address(struct pt_peers *p, uint64_t id, const char *address)
{
    char host[PT_HOST_MAX + 1];
    struct peer *peer;
    unsigned port;

    if (p->closing)
        return PT_E_UNAVAILABLE;
    if (id == 0 || id == p->self_id ||
        pt_transport_parse_address(address, host, sizeof(host), &port) != 0)
        return PT_E_CONFIG;
    peer = peer_get(p, id);
    if (peer == NULL)
        return p->n_peers >= PT_PEERS_MAX ? PT_E_CONFIG : PT_E_NOMEM;
    if (strcmp(peer->address, address) == 0)
        return 0;
    snprintf(peer->address, sizeof(peer->address), "%s", address);
    if (peer->state == PEER_BACKOFF) {
        uv_timer_stop(&peer->backoff);
        peer->state = PEER_IDLE;
        peer->backoff_ms = PT_PEERS_BACKOFF_MIN_MS;
        if (peer->used)
            peer_connect(peer);
    }
    return 0;
}

void pt_peers_keep_open(struct pt_peers *p, uint64_t id)
{
    struct peer *peer = p->closing ? NULL : peer_find(p, id);

    if (peer == NULL || peer->address[0] == '\0' || peer->used)
        return;
    peer->used = true;
    if (peer->state == PEER_IDLE)
        peer_connect(peer);
}

void pt_peers_close(struct pt_peers *p, void (*cb)(void *arg), void *arg)
{
    assert(!p->closing);
    p->closing = true;
    p->close_cb = cb;
    p->close_arg = arg;
    pt_transport_set_peer_accept(p->t, p->channel, NULL, NULL);
    uv_close((uv_handle_t *)&p->tick, tick_close_cb);
    for (struct peer *peer = p->peers; peer != NULL; peer = peer->next) {
        if (peer->attempt != NULL) {
            peer->attempt->peer = NULL; /* the transport completes it; it cleans up */
            peer->attempt = NULL;
        }
        peer->state = PEER_IDLE;
        peer_fail_queue(peer);
        uv_close((uv_handle_t *)&peer->backoff, backoff_close_cb);
    }
    for (struct conn *c = p->conns; c != NULL; c = c->next)
        peer_conn_close(c, PT_LOG_DEBUG, "shutdown");
}
