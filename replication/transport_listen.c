/*
 * transport_listen.c - inbound side of the raft transport: listen, accept, hand off by kind.
 *
 * Role: transport->listen binds every address this server's own address (or the bind
 * address) resolves to, accepts connections within the inbound limit, and, once a
 * connection's HELLO passed the handshake, hands the stream to its taker by channel kind:
 * raft's accept callback (no PEER flag), or the peer-channel callback set for PT_CHANNEL_PEER
 * or PT_CHANNEL_BULK with pt_transport_set_peer_accept.
 *
 * Design:
 * - The own address is resolved once, synchronously, when raft starts listening, and every
 *   resulting address is listened on (IPv6 sockets are v6-only so both families coexist).
 * - At most PT_TRANSPORT_MAX_INBOUND inbound handshakes run at once: beyond that a listener
 *   stops accepting (it is "stalled") and connections wait in the kernel's backlog until a
 *   slot frees (transport_resume_stalled, called when an inbound conn is freed).
 * - At most PT_TRANSPORT_MAX_INBOUND_PER_SOURCE of them come from one IP address: accepting
 *   one more from that address ends the oldest handshake from it (counted in
 *   portolan_peer_refused_total{reason="handshake_limit"}). A flood of idle connections from
 *   one address thus drains from the backlog as fast as it is accepted instead of holding
 *   every slot for a handshake time-out, and a real peer's handshake, which completes in a
 *   few round trips, gets a slot at once.
 * - If memory runs out, a new connection is accepted into a spare handle and closed at once,
 *   so a listener never stalls for good.
 * - A peer channel whose kind has no callback is refused, also when the callback was cleared
 *   while its handshake ran (transport_served is checked again before the hand-off).
 * Threads: the raft loop thread.
 */
#include "transport.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "metrics.h"
#include "transport_int.h"

#define LISTEN_BACKLOG 128

/* The peer-channel kind of a handshake's flags (PEER set). */
static int channel_of(unsigned char flags)
{
    return (flags & FLAG_BULK) ? PT_CHANNEL_BULK : PT_CHANNEL_PEER;
}

/* Whether an inbound connection with these flags has a taker: raft, or a peer-channel hook. */
bool transport_served(const struct transport *t, unsigned char flags)
{
    return !(flags & FLAG_PEER) || t->peer_accept_cb[channel_of(flags)] != NULL;
}

bool transport_raft_held(const struct transport *t, unsigned char flags)
{
    return !(flags & (FLAG_PEER | FLAG_RELAY)) && uv_now(t->loop) < t->raft_hold_ms;
}

void pt_transport_hold_raft(struct raft_uv_transport *super, uint64_t ms)
{
    struct transport *t = super->impl;
    t->raft_hold_ms = uv_now(t->loop) + ms;
}

void transport_in_succeed(struct conn *c)
{
    struct transport *t = c->t;
    uv_stream_t *stream;

    uv_timer_stop(&c->timer);
    transport_log_authenticated(c);
    if (c->pump != NULL && !(c->flags & FLAG_RELAY))
        transport_tls_pump_list(c->pump, c->peer_id);
    stream = transport_seam_detach(c);
    c->done = true;
    c->status = 0;
    transport_conn_close_timer(
        c); /* c, and peer_address with it, lives until the timer is closed */
    if (c->flags & FLAG_RELAY)
        transport_relay_serve(t, c->peer_id, c->relay_target, stream);
    else if (c->flags & FLAG_PEER)
        t->peer_accept_cb[channel_of(c->flags)](t->peer_accept_arg[channel_of(c->flags)],
                                                c->peer_id, c->peer_address, stream);
    else
        t->accept_cb(t->super, c->peer_id, c->peer_address, stream);
}

void pt_transport_set_peer_accept(struct raft_uv_transport *super, int channel,
                                  pt_transport_peer_accept_cb cb, void *arg)
{
    struct transport *t = super->impl;
    if (t == NULL || channel < 0 || channel >= PT_CHANNELS)
        return; /* released by pt_transport_close, or no such kind */
    t->peer_accept_cb[channel] = cb;
    t->peer_accept_arg[channel] = cb != NULL ? arg : NULL;
}

static void spare_close_cb(uv_handle_t *handle)
{
    struct transport *t = handle->data;
    t->spare_busy = false;
    transport_resume_stalled(t);
    transport_maybe_closed(t);
}

/* Takes l's waiting connection without memory for it: accept into the spare handle and close
 * it. If the spare is still closing, l stays stalled until spare_close_cb. */
static void drop_one(struct transport *t, struct listener *l)
{
    if (t->spare_busy) {
        l->stalled = true;
        return;
    }
    uv_tcp_init(t->loop, &t->spare);
    t->spare.data = t;
    t->spare_busy = true;
    (void)uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&t->spare);
    uv_close((uv_handle_t *)&t->spare, spare_close_cb);
    pt_log(PT_LOG_ERROR, "raft transport: out of memory, inbound connection dropped", NULL);
}

/* Ends the oldest handshake from c's address when c makes one too many from it. */
static void limit_source(struct transport *t, struct conn *c)
{
    struct conn *oldest = NULL;
    unsigned n = 0;

    if (c->source[0] == '\0')
        return;
    for (struct conn *o = t->conns; o != NULL; o = o->next) {
        if (o == c || o->role != ROLE_IN || o->done || strcmp(o->source, c->source) != 0)
            continue;
        n++;
        if (oldest == NULL || o->seq < oldest->seq)
            oldest = o;
    }
    if (n < PT_TRANSPORT_MAX_INBOUND_PER_SOURCE)
        return;
    pt_metrics_peer_refused(PT_METRICS_PEER_HANDSHAKE_LIMIT);
    transport_handshake_fail(oldest, PT_LOG_DEBUG, "too many handshakes from one address", 0);
}

static void accept_one(struct transport *t, struct listener *l)
{
    struct sockaddr_storage ss;
    int sslen = sizeof(ss);
    struct conn *c;
    uv_tcp_t *tcp;
    int rv;

    c = raft_calloc(1, sizeof(*c));
    tcp = raft_malloc(sizeof(*tcp));
    if (c == NULL || tcp == NULL) {
        raft_free(c);
        raft_free(tcp);
        drop_one(t, l);
        return;
    }
    c->t = t;
    c->role = ROLE_IN;
    uv_tcp_init(t->loop, tcp);
    tcp->data = c;
    c->tcp = tcp;
    transport_conn_link(c);
    snprintf(c->remote, sizeof(c->remote), "?");

    rv = uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)tcp);
    if (rv != 0) {
        transport_handshake_fail(c, PT_LOG_DEBUG, "accept", rv);
        return;
    }
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &sslen) == 0) {
        transport_sockaddr_text((struct sockaddr *)&ss, c->remote, sizeof(c->remote));
        if (uv_ip_name((struct sockaddr *)&ss, c->source, sizeof(c->source)) != 0)
            c->source[0] = '\0';
    }
    c->seq = ++t->accept_seq;
    uv_timer_start(&c->timer, transport_timeout_cb, t->timeout_ms, 0);
    transport_seam_start(c);
    limit_source(t, c);
}

/* Accepts what stalled listeners hold, as far as the inbound limit allows. */
void transport_resume_stalled(struct transport *t)
{
    if (t->closing)
        return;
    for (unsigned i = 0; i < t->n_listeners; i++) {
        struct listener *l = &t->listeners[i];
        if (!l->stalled || uv_is_closing((uv_handle_t *)&l->tcp))
            continue;
        if (t->n_inbound >= PT_TRANSPORT_MAX_INBOUND)
            return;
        l->stalled = false;
        accept_one(t, l);
    }
}

static void listener_cb(uv_stream_t *server, int status)
{
    struct listener *l = server->data;
    struct transport *t = l->t;

    if (status != 0) {
        pt_log(PT_LOG_WARN, "raft transport: accept failed", "{s:s}", "error", uv_strerror(status));
        return;
    }
    if (t->closing)
        return;
    if (t->n_inbound >= PT_TRANSPORT_MAX_INBOUND) {
        l->stalled = true; /* libuv stops polling this listener until uv_accept */
        return;
    }
    accept_one(t, l);
}

static void listener_close_cb(uv_handle_t *handle)
{
    struct listener *l = handle->data;
    struct transport *t = l->t;
    t->n_listeners_open--;
    transport_maybe_closed(t);
}

void transport_close_listeners(struct transport *t)
{
    for (unsigned i = 0; i < t->n_listeners; i++) {
        uv_handle_t *h = (uv_handle_t *)&t->listeners[i].tcp;
        if (!uv_is_closing(h))
            uv_close(h, listener_close_cb);
    }
}

static bool same_sockaddr(const struct sockaddr *a, const struct sockaddr *b)
{
    if (a->sa_family != b->sa_family)
        return false;
    if (a->sa_family == AF_INET)
        return memcmp(a, b, sizeof(struct sockaddr_in)) == 0;
    return memcmp(a, b, sizeof(struct sockaddr_in6)) == 0;
}

/* Implementation of raft_uv_transport->listen: resolves the bind (or raft) address once,
 * synchronously, and listens on each distinct address. A failure leaves the listeners closing;
 * transport->close must still run (raft_close does it). */
int transport_listen(struct raft_uv_transport *super, raft_uv_accept_cb cb)
{
    struct transport *t = super->impl;
    const char *address = t->bind_address[0] != '\0' ? t->bind_address : t->address;
    char host[PT_HOST_MAX + 1], port_text[8];
    const struct sockaddr *bound[PT_TRANSPORT_MAX_ADDRESSES];
    struct addrinfo hints;
    uv_getaddrinfo_t gai;
    unsigned port, n_bound = 0;
    int rv;

    if (t->listening || t->closing || t->address[0] == '\0') {
        snprintf(super->errmsg, RAFT_ERRMSG_BUF_SIZE, "transport cannot listen in this state");
        return RAFT_INVALID;
    }
    if (pt_transport_parse_address(address, host, sizeof(host), &port) != 0) {
        snprintf(super->errmsg, RAFT_ERRMSG_BUF_SIZE, "invalid listen address");
        return RAFT_INVALID;
    }
    snprintf(port_text, sizeof(port_text), "%u", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    rv = uv_getaddrinfo(t->loop, &gai, NULL, host, port_text, &hints);
    if (rv != 0) {
        snprintf(super->errmsg, RAFT_ERRMSG_BUF_SIZE, "resolve %.200s: %s", address,
                 uv_strerror(rv));
        return RAFT_IOERR;
    }
    t->listening = true;
    t->accept_cb = cb;
    for (struct addrinfo *ai = gai.addrinfo; ai != NULL; ai = ai->ai_next) {
        struct listener *l;
        bool seen = false;

        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        for (unsigned i = 0; i < n_bound && !seen; i++)
            seen = same_sockaddr(bound[i], ai->ai_addr);
        if (seen || t->n_listeners == PT_TRANSPORT_MAX_ADDRESSES)
            continue;
        l = &t->listeners[t->n_listeners];
        l->t = t;
        l->stalled = false;
        uv_tcp_init(t->loop, &l->tcp);
        l->tcp.data = l;
        t->n_listeners++;
        t->n_listeners_open++;
        rv = uv_tcp_bind(&l->tcp, ai->ai_addr, ai->ai_family == AF_INET6 ? UV_TCP_IPV6ONLY : 0);
        if (rv == 0)
            rv = uv_listen((uv_stream_t *)&l->tcp, LISTEN_BACKLOG, listener_cb);
        if (rv == UV_EADDRNOTAVAIL || rv == UV_EAFNOSUPPORT) {
            /* e.g. a name that also resolves to ::1 on a host without IPv6 */
            uv_close((uv_handle_t *)&l->tcp, listener_close_cb);
            continue;
        }
        if (rv != 0) {
            char where[REMOTE_MAX];
            transport_sockaddr_text(ai->ai_addr, where, sizeof(where));
            snprintf(super->errmsg, RAFT_ERRMSG_BUF_SIZE, "listen on %s: %s", where,
                     uv_strerror(rv));
            uv_freeaddrinfo(gai.addrinfo);
            transport_close_listeners(t);
            return RAFT_IOERR;
        }
        bound[n_bound++] = ai->ai_addr;
    }
    uv_freeaddrinfo(gai.addrinfo);
    if (n_bound == 0) {
        snprintf(super->errmsg, RAFT_ERRMSG_BUF_SIZE,
                 "listen: %.200s resolves to no usable address", address);
        transport_close_listeners(t);
        return RAFT_IOERR;
    }
    return 0;
}
