/*
 * transport_connect.c - outgoing connections of the raft transport: resolve, dial, retry.
 *
 * Role: transport->connect (raft's channel) and pt_transport_connect_peer (peer channels)
 * start here. Each resolves the peer's name, dials the addresses it resolves to one after
 * another until one completes the handshake, and fires its callback exactly once: with the
 * stream on success (transport_out_succeed), or, once everything the attempt owned is closed,
 * with RAFT_NOCONNECTION / RAFT_CANCELED (a peer channel: PT_E_UNAVAILABLE /
 * PT_TRANSPORT_CANCELED).
 *
 * Design:
 * - Names are resolved at every connection attempt with uv_getaddrinfo (thread pool, result
 *   on the raft loop), never cached: raft_uv retries a failed connection every second, so a
 *   peer whose pod IP changed is found again at the next attempt. Each returned address is
 *   tried in order (up to PT_TRANSPORT_MAX_ADDRESSES) until one completes the handshake.
 * - A route set with pt_transport_set_route wins over the address the caller names.
 * - Limits: every address attempt (TCP connect plus handshake) ends within the timeout, its
 *   TCP connect within PT_TRANSPORT_CONNECT_TIMEOUT_MS (a link that comes back is dialed
 *   afresh by the next attempt instead of waiting for the kernel's SYN retries). Name
 *   resolution itself is bounded by the resolver's own timeouts (resolv.conf), and cannot be
 *   interrupted once a thread-pool thread runs it, so closing waits for such a lookup to
 *   return.
 * Threads: the raft loop thread.
 */
#include "transport.h"

#include <jansson.h>
#include <poll.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "err.h"
#include "log.h"
#include "transport_int.h"

void transport_out_succeed(struct conn *c)
{
    struct raft_uv_connect *req = c->req;
    pt_transport_peer_connect_cb peer_cb = c->peer_cb;
    void *peer_arg = c->peer_arg;
    uv_stream_t *stream;

    uv_timer_stop(&c->timer);
    transport_log_authenticated(c);
    transport_relay_outcome(c, 0);
    if (c->pump != NULL)
        transport_tls_pump_list(c->pump, c->peer_id);
    stream = transport_seam_detach(c);
    c->req = NULL;
    c->peer_cb = NULL;
    c->done = true;
    c->status = 0;
    transport_conn_close_timer(c);
    if (req != NULL)
        req->cb(req, stream, 0);
    else
        peer_cb(peer_arg, 0, stream);
}

static void connect_cb(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->done || c->tcp_closing)
        return;
    if (status != 0) {
        transport_handshake_fail(c, PT_LOG_DEBUG, "connect", status);
        return;
    }
    if (c->raw) {
        transport_out_succeed(c); /* a relay's leg: the bytes are the origin's */
        return;
    }
    /* connected: the rest of the attempt's time for the handshake */
    uint64_t spent = uv_now(c->t->loop) - c->attempt_start;
    if (c->t->timeout_ms > spent)
        uv_timer_start(&c->timer, transport_timeout_cb, c->t->timeout_ms - spent, 0);
    transport_seam_start(c);
}

/* The TCP connect's share of the attempt ran out. A loop that stalled (a slow apply, a busy
 * machine) runs its timers before it polls, so the connect may have completed unseen: a
 * socket that is writable without error is connected, and its callback follows in this loop
 * pass; it keeps the rest of the attempt's time. Anything else fails the attempt. */
static void connect_timeout_cb(uv_timer_t *timer)
{
    struct conn *c = timer->data;
    uv_os_fd_t fd;
    if (c->tcp != NULL && !c->tcp_closing && uv_fileno((uv_handle_t *)c->tcp, &fd) == 0) {
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int err = 0;
        socklen_t elen = sizeof(err);
        uint64_t spent = uv_now(c->t->loop) - c->attempt_start;
        if (poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLOUT) &&
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) == 0 && err == 0 &&
            c->t->timeout_ms > spent) {
            uv_timer_start(&c->timer, transport_timeout_cb, c->t->timeout_ms - spent, 0);
            return;
        }
    }
    transport_timeout_cb(timer);
}

/* Tries the next resolved address; finishes with RAFT_NOCONNECTION when none is left. */
void transport_attempt_next(struct conn *c)
{
    struct transport *t = c->t;
    struct addrinfo *ai;
    uv_tcp_t *tcp;
    int rv;

    if (c->via != 0) { /* an earlier address of the relay may have got as far as the tunnel */
        c->inner = false;
        c->flags = FLAG_RELAY;
    }
    while ((ai = c->ai_next) != NULL && c->attempts < PT_TRANSPORT_MAX_ADDRESSES) {
        c->ai_next = ai->ai_next;
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        c->attempts++;
        transport_sockaddr_text(ai->ai_addr, c->remote, sizeof(c->remote));
        tcp = raft_malloc(sizeof(*tcp));
        if (tcp == NULL) {
            transport_conn_finish(c, RAFT_NOMEM);
            return;
        }
        rv = uv_tcp_init(t->loop, tcp);
        if (rv != 0) {
            raft_free(tcp);
            continue;
        }
        tcp->data = c;
        c->tcp = tcp;
        c->welcomed = false;
        c->connect.data = c;
        rv = uv_tcp_connect(&c->connect, tcp, ai->ai_addr, connect_cb);
        if (rv != 0) {
            transport_handshake_fail(c, PT_LOG_DEBUG, "connect", rv); /* next address once closed */
            return;
        }
        c->attempt_start = uv_now(t->loop);
        uv_timer_start(&c->timer, connect_timeout_cb,
                       t->timeout_ms < PT_TRANSPORT_CONNECT_TIMEOUT_MS
                           ? t->timeout_ms
                           : PT_TRANSPORT_CONNECT_TIMEOUT_MS,
                       0);
        return;
    }
    transport_conn_finish(c, RAFT_NOCONNECTION);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct conn *c = req->data;

    c->gai_active = false;
    if (c->done) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        transport_conn_maybe_free(c);
        return;
    }
    if (status != 0) {
        if (pt_log_enabled(PT_LOG_DEBUG)) {
            pt_log(PT_LOG_DEBUG, "raft transport: cannot resolve peer", "{s:s,s:s,s:I}", "host",
                   c->host, "error", uv_strerror(status), "peer_id", (json_int_t)c->peer_id);
        }
        transport_conn_finish(c, RAFT_NOCONNECTION);
        return;
    }
    c->ai = res;
    c->ai_next = res;
    transport_attempt_next(c);
}

int transport_out_start(struct transport *t, raft_id id, const char *address, unsigned char flags,
                        bool raw, struct conn **out, char *errmsg)
{
    char via_address[PT_CLUSTER_ADDRESS_MAX + 1];
    struct addrinfo hints;
    struct conn *c;
    raft_id via = 0;
    unsigned port;
    int rv;

    if (t->closing) {
        snprintf(errmsg, RAFT_ERRMSG_BUF_SIZE, "transport is closing");
        return RAFT_CANCELED;
    }
    if (id == 0 || t->address[0] == '\0') {
        snprintf(errmsg, RAFT_ERRMSG_BUF_SIZE, "invalid server id 0 or transport not initialised");
        return RAFT_INVALID;
    }
    /* A route set for this server (this node's own view of it) wins over the address raft
     * learned from the configuration or from the server's handshake. */
    for (size_t i = 0; i < t->nroutes; i++)
        if (t->routes[i].id == id)
            address = t->routes[i].address;
    /* The direct path failed a moment ago: through another member that reaches id. */
    if (!raw && (via = transport_relay_choose(t, id, via_address)) != 0)
        address = via_address;
    c = raft_calloc(1, sizeof(*c));
    if (c == NULL) {
        snprintf(errmsg, RAFT_ERRMSG_BUF_SIZE, "out of memory");
        return RAFT_NOMEM;
    }
    if (pt_transport_parse_address(address, c->host, sizeof(c->host), &port) != 0) {
        raft_free(c);
        snprintf(errmsg, RAFT_ERRMSG_BUF_SIZE, "invalid peer address");
        return RAFT_INVALID;
    }
    snprintf(c->port, sizeof(c->port), "%u", port);
    size_t rlen = strnlen(address, sizeof(c->remote) - 1); /* for logs: may be cut short */
    memcpy(c->remote, address, rlen);
    c->remote[rlen] = '\0';
    c->t = t;
    c->role = ROLE_OUT;
    c->peer_id = id;
    c->raw = raw;
    c->via = via;
    c->inner_flags = flags;
    c->flags = via != 0 ? FLAG_RELAY : flags;

    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_protocol = IPPROTO_TCP;
    hints.ai_flags = AI_NUMERICSERV;
    c->gai.data = c;
    rv = uv_getaddrinfo(t->loop, &c->gai, gai_cb, c->host, c->port, &hints);
    if (rv != 0) {
        raft_free(c);
        snprintf(errmsg, RAFT_ERRMSG_BUF_SIZE, "resolve %.200s: %s", address, uv_strerror(rv));
        return RAFT_NOCONNECTION;
    }
    c->gai_active = true;
    transport_conn_link(c);
    *out = c;
    return 0;
}

/* Implementation of raft_uv_transport->connect. */
int transport_connect(struct raft_uv_transport *super, struct raft_uv_connect *req, raft_id id,
                      const char *address, raft_uv_connect_cb cb)
{
    struct conn *c;
    int rv;

    rv = transport_out_start(super->impl, id, address, 0, false, &c, super->errmsg);
    if (rv != 0)
        return rv;
    req->cb = cb;
    c->req = req;
    return 0;
}

int pt_transport_connect_peer(struct raft_uv_transport *super, uint64_t id, const char *address,
                              int channel, pt_transport_peer_connect_cb cb, void *arg)
{
    struct transport *t = super->impl;
    char errmsg[RAFT_ERRMSG_BUF_SIZE];
    struct conn *c;
    int rv;

    if (cb == NULL || id == 0 || channel < 0 || channel >= PT_CHANNELS)
        return PT_E_CONFIG;
    if (t == NULL)
        return PT_E_UNAVAILABLE; /* released by pt_transport_close */
    if (!t->closing && t->address[0] == '\0')
        return PT_E_INTERNAL; /* t->init has not run */
    rv = transport_out_start(t, id, address,
                             channel == PT_CHANNEL_BULK ? FLAG_PEER | FLAG_BULK : FLAG_PEER, false,
                             &c, errmsg);
    switch (rv) {
    case 0:
        c->peer_cb = cb;
        c->peer_arg = arg;
        return 0;
    case RAFT_INVALID:
        return PT_E_CONFIG;
    case RAFT_NOMEM:
        return PT_E_NOMEM;
    default: /* closing, or the lookup could not start */
        if (pt_log_enabled(PT_LOG_DEBUG)) {
            pt_log(PT_LOG_DEBUG, "raft transport: peer channel not opened", "{s:s,s:I}", "error",
                   errmsg, "peer_id", (json_int_t)id);
        }
        return PT_E_UNAVAILABLE;
    }
}
