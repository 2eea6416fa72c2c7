/*
 * transport.c - Raft's network transport: named peers, a cluster handshake, clean cancellation.
 *
 * Role: implements `struct raft_uv_transport` for raft_uv (canonical/raft 0.15). raft_uv asks
 * it to listen on this server's address and to connect to a peer (id, "host:port"); it gets
 * back libuv streams it then reads Raft messages from (inbound) or writes them to (outbound).
 * What raft_uv does with a stream is its business; the transport only opens streams and proves
 * that the other end is a server of the same cluster. The same port carries peer channels
 * (replication/peer.c), told apart by the handshake's flags.
 *
 * This file is the glue: the methods raft_uv calls to set the transport up and tear it down
 * (init, close; listen and connect live in transport_listen.c and transport_connect.c), the
 * pt_transport_* settings, and the connection records the other pieces share. The pieces and
 * what each owns are listed in transport_int.h; the wire format is at the top of
 * transport_handshake.c.
 *
 * Design:
 * - One `struct conn` tracks one connection being set up, in either direction. It owns a
 *   deadline timer, the TCP handle (raft_malloc'd, because raft_uv frees the streams it is
 *   given with raft_free), and for outbound ones the getaddrinfo request and its results.
 *   It is linked into t->conns from its start until it is freed, so closing the transport
 *   can cancel every attempt still under way.
 * - transport_conn_finish decides a conn's outcome and starts closing what it owns; the conn
 *   is freed, and a failed connect's callback fires, only once all of it is closed
 *   (transport_conn_maybe_free).
 *
 * Invariants:
 * - A connect callback (raft's or a peer channel's) fires exactly once, never from inside
 *   transport->connect, pt_transport_connect_peer or transport->close. Success fires as soon
 *   as the handshake completes (the stream is then the caller's); failure and cancellation
 *   fire once everything the attempt owned is closed.
 * - After transport->close: no accept callback of either kind; every pending connect
 *   completes with RAFT_CANCELED (a peer channel's with PT_TRANSPORT_CANCELED); the close
 *   callback fires only when every handle (listeners, timers, TCP handles, the spare) is
 *   closed and no getaddrinfo is outstanding, after all connect callbacks.
 * - A conn is freed only when its timer and TCP handle are closed and its getaddrinfo has
 *   returned; a handed-off stream is no longer the conn's.
 * Threads: everything runs on the raft loop thread.
 */
#include "transport.h"

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "transport_int.h"

#define TIMEOUT_MAX_MS 600000

static bool valid_cluster_id(const char *id, size_t *len)
{
    size_t n = id == NULL ? 0 : strnlen(id, PT_CLUSTER_ID_MAX + 1);
    if (n == 0 || n > PT_CLUSTER_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (id[i] < 0x21 || id[i] > 0x7e)
            return false;
    }
    *len = n;
    return true;
}

/* ---- Connection records ------------------------------------------------------------------- */

/* The peer-channel form of a failed connect's RAFT_* outcome. */
static int peer_status(int raft_status)
{
    switch (raft_status) {
    case RAFT_CANCELED:
        return PT_TRANSPORT_CANCELED;
    case RAFT_NOMEM:
        return PT_E_NOMEM;
    default:
        return PT_E_UNAVAILABLE;
    }
}

void transport_conn_link(struct conn *c)
{
    struct transport *t = c->t;
    uv_timer_init(t->loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    c->prev = NULL;
    c->next = t->conns;
    if (t->conns != NULL)
        t->conns->prev = c;
    t->conns = c;
    if (c->role == ROLE_IN)
        t->n_inbound++;
}

static void conn_unlink(struct conn *c)
{
    struct transport *t = c->t;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        t->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    if (c->role == ROLE_IN)
        t->n_inbound--;
}

/* Frees c once nothing it owns is still open; fires a failed connect's callback. */
void transport_conn_maybe_free(struct conn *c)
{
    struct transport *t = c->t;
    struct raft_uv_connect *req;
    pt_transport_peer_connect_cb peer_cb;
    void *peer_arg;
    int status, role;

    if (c->gai_active || c->tcp != NULL || c->timer_open)
        return;
    if (c->role == ROLE_OUT && c->status != 0)
        transport_relay_outcome(c, c->status);
    conn_unlink(c);
    transport_tls_pump_release(c->pump);
    if (c->ai != NULL)
        uv_freeaddrinfo(c->ai);
    req = c->req;
    peer_cb = c->peer_cb;
    peer_arg = c->peer_arg;
    status = c->status;
    role = c->role;
    raft_free(c);
    if (req != NULL) {
        assert(status != 0);
        req->cb(req, NULL, status);
    } else if (peer_cb != NULL) {
        assert(status != 0);
        peer_cb(peer_arg, peer_status(status), NULL);
    }
    if (role == ROLE_IN)
        transport_resume_stalled(t);
    transport_maybe_closed(t);
}

static void timer_close_cb(uv_handle_t *handle)
{
    struct conn *c = handle->data;
    c->timer_open = false;
    transport_conn_maybe_free(c);
}

void transport_conn_close_timer(struct conn *c)
{
    if (c->timer_open && !uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, timer_close_cb);
}

/* Decides c's outcome (status: RAFT_* for an outbound req) and closes what it owns. */
void transport_conn_finish(struct conn *c, int status)
{
    if (c->done)
        return;
    c->done = true;
    c->status = status;
    if (c->gai_active)
        (void)uv_cancel((uv_req_t *)&c->gai); /* if already running, its callback waits */
    transport_seam_close(c);
    transport_conn_close_timer(c);
}

void transport_conn_tcp_closed(struct conn *c)
{
    if (c->done)
        transport_conn_maybe_free(c);
    else
        transport_attempt_next(c);
}

/* ---- Life cycle --------------------------------------------------------------------------- */

/* Implementation of raft_uv_transport->init. */
static int transport_init(struct raft_uv_transport *super, raft_id id, const char *address)
{
    struct transport *t = super->impl;
    char host[PT_HOST_MAX + 1];
    unsigned port;

    if (id == 0) {
        snprintf(super->errmsg, RAFT_ERRMSG_BUF_SIZE, "invalid server id 0");
        return RAFT_INVALID;
    }
    if (pt_transport_parse_address(address, host, sizeof(host), &port) != 0) {
        snprintf(super->errmsg, RAFT_ERRMSG_BUF_SIZE,
                 "invalid address: want host:port, [ipv6]:port or a.b.c.d:port");
        return RAFT_INVALID;
    }
    t->id = id;
    snprintf(t->address, sizeof(t->address), "%s", address);
    return 0;
}

void transport_maybe_closed(struct transport *t)
{
    raft_uv_transport_close_cb cb;

    if (!t->closing || t->close_fired)
        return;
    if (t->n_listeners_open != 0 || t->conns != NULL || t->spare_busy || t->relay_handles != 0)
        return;
    t->close_fired = true;
    cb = t->close_cb;
    if (cb != NULL)
        cb(t->super); /* may release the transport: touch nothing after this */
}

/* Implementation of raft_uv_transport->close. */
static void transport_close(struct raft_uv_transport *super, raft_uv_transport_close_cb cb)
{
    struct transport *t = super->impl;
    struct conn *c;

    assert(!t->closing);
    t->closing = true;
    t->close_cb = cb;
    transport_close_listeners(t);
    /* transport_conn_finish never frees synchronously: every conn not done still has its timer
     * open. */
    for (c = t->conns; c != NULL; c = c->next) {
        if (!c->done)
            transport_conn_finish(c, RAFT_CANCELED);
    }
    transport_maybe_closed(t);
}

int pt_transport_init(struct raft_uv_transport *super, uv_loop_t *loop, const char *cluster_id)
{
    void *data = super->data;
    struct transport *t;
    size_t cluster_len = 0;

    memset(super, 0, sizeof(*super));
    super->data = data;
    if (loop == NULL || !valid_cluster_id(cluster_id, &cluster_len))
        return PT_E_CONFIG;
    t = raft_calloc(1, sizeof(*t));
    if (t == NULL)
        return PT_E_NOMEM;
    t->super = super;
    t->loop = loop;
    memcpy(t->cluster_id, cluster_id, cluster_len);
    t->cluster_len = cluster_len;
    t->timeout_ms = PT_TRANSPORT_TIMEOUT_MS;
    super->impl = t;
    super->init = transport_init;
    super->listen = transport_listen;
    super->connect = transport_connect;
    super->close = transport_close;
    return 0;
}

void pt_transport_close(struct raft_uv_transport *super)
{
    struct transport *t = super->impl;
    if (t == NULL)
        return;
    assert(t->n_listeners_open == 0 && t->conns == NULL && !t->spare_busy && t->relay_handles == 0);
    transport_tls_free(t);
    raft_free(t);
    super->impl = NULL;
}

int pt_transport_set_bind_address(struct raft_uv_transport *super, const char *address)
{
    struct transport *t = super->impl;
    char host[PT_HOST_MAX + 1];
    unsigned port;

    if (pt_transport_parse_address(address, host, sizeof(host), &port) != 0)
        return PT_E_CONFIG;
    snprintf(t->bind_address, sizeof(t->bind_address), "%s", address);
    return 0;
}

int pt_transport_set_route(struct raft_uv_transport *super, uint64_t id, const char *address)
{
    struct transport *t = super->impl;
    char host[PT_HOST_MAX + 1];
    unsigned port;
    size_t i;

    if (id == 0 || pt_transport_parse_address(address, host, sizeof(host), &port) != 0)
        return PT_E_CONFIG;
    for (i = 0; i < t->nroutes && t->routes[i].id != id; i++)
        ;
    if (i == PT_TRANSPORT_MAX_ROUTES)
        return PT_E_TOO_LARGE;
    if (i == t->nroutes)
        t->nroutes++;
    t->routes[i].id = id;
    snprintf(t->routes[i].address, sizeof(t->routes[i].address), "%s", address);
    return 0;
}

int pt_transport_set_timeout(struct raft_uv_transport *super, unsigned timeout_ms)
{
    struct transport *t = super->impl;
    if (timeout_ms == 0 || timeout_ms > TIMEOUT_MAX_MS)
        return PT_E_CONFIG;
    t->timeout_ms = timeout_ms;
    return 0;
}

int pt_transport_set_tls(struct raft_uv_transport *super, const char *cert, const char *key,
                         const char *ca, char *errbuf, size_t errlen)
{
    struct transport *t = super->impl;
    if (t == NULL || cert == NULL || key == NULL || ca == NULL) {
        snprintf(errbuf, errlen, "peer TLS: certificate, key and CA are all required");
        return PT_E_CONFIG;
    }
    return transport_tls_load(t, cert, key, ca, errbuf, errlen);
}

void pt_transport_set_identity(struct raft_uv_transport *super, pt_transport_identity_cb cb,
                               void *arg)
{
    struct transport *t = super->impl;
    if (t == NULL)
        return;
    t->identity_cb = cb;
    t->identity_arg = cb != NULL ? arg : NULL;
}
