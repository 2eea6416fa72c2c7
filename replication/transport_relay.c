/*
 * transport_relay.c - tunnels through another member when the direct path to a server fails.
 *
 * Role: bridge partitions. With links A-B and B-C up and A-C down, A cannot reach C, but B
 * reaches both. A then opens its connection to C *through* B: the connection to B carries a
 * HELLO with the RELAY flag naming C's server id; B, once it authenticated A (mutual TLS, a
 * member), dials C's raft address as it knows it (never an address A names), writes a RELAYED
 * preamble (A's id, its own) and splices bytes both ways without parsing them. A then runs a
 * second TLS client inside the first (TLS in TLS: transport_seam_start_tls over the plaintext
 * end of the pump to B) and the normal HELLO / WELCOME with C inside it, so C authenticates A
 * exactly as over a direct connection, and B sees only ciphertext. Raft and peer channels
 * alike are tunneled: the whole of transport_connect / pt_transport_connect_peer goes through
 * here.
 *
 * Design:
 * - Serving (B): transport_relay_check refuses, before the WELCOME, a request from a server
 *   that is not a member, one that arrived through a relay itself (its pump saw the RELAYED
 *   preamble: one hop only), one naming a target that is not a current member or is B or the
 *   requester, and one over the limits (PT_TRANSPORT_RELAY_PER_SOURCE per requester,
 *   PT_TRANSPORT_RELAY_MAX in all); each refusal counts in
 *   portolan_peer_refused_total{reason="relay"}. transport_relay_serve dials the target
 *   (name resolution, the connect time limit, routes: a raw outbound conn, no TLS of B's own)
 *   and hands both sockets to a splice thread (transport_tls.c) with 64 KiB per direction and
 *   back-pressure, an idle limit and a lifetime. Without TLS no relay is served.
 * - Using (A): every outbound attempt asks transport_relay_choose. While the last direct
 *   attempt to that server failed less than PT_TRANSPORT_DIRECT_RETRY_MS ago, the attempt goes
 *   through a relay: the one that worked last, else the members in turn. Only a direct
 *   attempt that timed out counts (a refusal or a close means the server is down or
 *   restarting, which a relay does not help with). A link that went silent (3 s without a
 *   byte on a peer channel) counts as a failed direct path, and its connections are ended
 *   (pt_transport_peer_silent, from the peer layer after PT_PEERS_SILENT_MS). Every
 *   PT_TRANSPORT_DIRECT_RETRY_MS a probe (a direct PEER channel, closed at once) checks the
 *   direct path; once it connects, the tunneled connections end and raft and the peer layer
 *   dial directly again.
 * Threads: the raft loop thread (the splice threads are transport_tls.c's).
 */
#include "transport.h"

#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bytes.h"
#include "err.h"
#include "log.h"
#include "metrics.h"
#include "transport_int.h"

static void relay_close(struct transport *t, uv_stream_t *s);

/* The path record of server id, created when create is set (NULL when the table is full). */
static struct relay_path *path_of(struct transport *t, raft_id id, bool create)
{
    for (unsigned i = 0; i < t->n_paths; i++)
        if (t->paths[i].id == id)
            return &t->paths[i];
    if (!create || t->n_paths == PT_TRANSPORT_MAX_ROUTES)
        return NULL;
    struct relay_path *p = &t->paths[t->n_paths++];
    memset(p, 0, sizeof(*p));
    p->id = id;
    return p;
}

/* Writes the raft address of member id into address; false when id is not a member. */
static bool member_address(struct transport *t, raft_id id, char *address)
{
    uint64_t mid;
    for (size_t i = 0; t->member_cb(t->member_arg, i, &mid, address) == 0; i++)
        if (mid == id)
            return true;
    return false;
}

raft_id transport_relay_choose(struct transport *t, raft_id id, char *address)
{
    struct relay_path *p;
    raft_id cand[PT_TRANSPORT_MAX_ROUTES];
    size_t n = 0, k;
    uint64_t mid;
    char a[PT_CLUSTER_ADDRESS_MAX + 1];

    if (t->member_cb == NULL || t->tls == NULL)
        return 0;
    p = path_of(t, id, false);
    if (p == NULL || !p->direct_failed ||
        uv_now(t->loop) - p->direct_failed_at >= PT_TRANSPORT_DIRECT_RETRY_MS)
        return 0;
    for (size_t i = 0; n < PT_TRANSPORT_MAX_ROUTES && t->member_cb(t->member_arg, i, &mid, a) == 0;
         i++)
        if (mid != t->id && mid != id)
            cand[n++] = mid;
    if (n == 0)
        return 0;
    for (k = 0; k < n && cand[k] != p->via; k++)
        ;
    if (k == n) /* no relay worked last: the members in turn */
        k = p->next++ % n;
    if (!member_address(t, cand[k], address))
        return 0;
    for (size_t i = 0; i < t->nroutes; i++)
        if (t->routes[i].id == cand[k])
            snprintf(address, PT_CLUSTER_ADDRESS_MAX + 1, "%s", t->routes[i].address);
    return cand[k];
}

void transport_relay_outcome(struct conn *c, int status)
{
    struct transport *t = c->t;
    struct relay_path *p;

    if (c->raw || status == RAFT_CANCELED)
        return;
    /* Only a path that went silent (an attempt timed out) calls for a relay: a server that
     * refuses or closes (down, restarting) is not reached any better through another. */
    p = path_of(t, c->peer_id, status != 0 && c->via == 0 && c->timed_out);
    if (p == NULL)
        return;
    if (c->via == 0) {
        if (status == 0) {
            p->direct_failed = false;
            p->via = 0;
        } else if (c->timed_out) {
            p->direct_failed = true;
            p->direct_failed_at = uv_now(t->loop);
        } else if (p->probing ||
                   uv_now(t->loop) - p->direct_failed_at >= PT_TRANSPORT_DIRECT_RETRY_MS) {
            p->direct_failed_at = uv_now(t->loop); /* still not back: keep the relay */
        }
        return;
    }
    if (status == 0) {
        if (p->via != c->via && pt_log_enabled(PT_LOG_INFO)) {
            pt_log(PT_LOG_INFO, "raft transport: connected through a relay", "{s:I,s:I}", "peer_id",
                   (json_int_t)c->peer_id, "via", (json_int_t)c->via);
        }
        p->via = c->via;
    } else if (p->via == c->via) {
        p->via = 0; /* the next attempt tries another member */
    }
}

bool pt_transport_relays(struct raft_uv_transport *super)
{
    struct transport *t = super->impl;
    return t != NULL && t->member_cb != NULL && t->tls != NULL;
}

void pt_transport_peer_silent(struct raft_uv_transport *super, uint64_t id)
{
    struct transport *t = super->impl;
    struct relay_path *p;
    unsigned n;

    if (t == NULL || t->member_cb == NULL || t->tls == NULL)
        return;
    p = path_of(t, id, true);
    if (p != NULL) {
        if (!p->direct_failed || p->via == 0) { /* the direct path went silent */
            p->direct_failed = true;
            p->direct_failed_at = uv_now(t->loop);
        }
        p->via = 0; /* a relay that went silent: the next attempt tries another */
    }
    n = transport_tls_end_peer(t, id, false);
    if (pt_log_enabled(PT_LOG_INFO)) {
        pt_log(PT_LOG_INFO, "raft transport: link silent, connections ended", "{s:I,s:i}",
               "peer_id", (json_int_t)id, "connections", (int)n);
    }
}

struct probe {
    struct transport *t;
    raft_id id;
};

/* A probe of the direct path completed: when it connected, the tunneled connections to the
 * server end, and raft and the peer layer dial it directly again. */
static void probe_cb(void *arg, int status, uv_stream_t *stream)
{
    struct probe *pr = arg;
    struct transport *t = pr->t;
    struct relay_path *p = path_of(t, pr->id, false);

    if (p != NULL)
        p->probing = false;
    if (status == 0) {
        unsigned n = transport_tls_end_peer(t, pr->id, true);
        if (pt_log_enabled(PT_LOG_INFO)) {
            pt_log(PT_LOG_INFO, "raft transport: direct path back, relayed connections ended",
                   "{s:I,s:i}", "peer_id", (json_int_t)pr->id, "connections", (int)n);
        }
        t->relay_handles++;
        relay_close(t, stream);
    }
    free(pr);
}

void pt_transport_probe_direct(struct raft_uv_transport *super)
{
    struct transport *t = super->impl;
    char errmsg[RAFT_ERRMSG_BUF_SIZE];
    char address[PT_CLUSTER_ADDRESS_MAX + 1];

    if (t == NULL || t->closing || t->member_cb == NULL || t->tls == NULL ||
        t->peer_accept_cb[PT_CHANNEL_PEER] == NULL)
        return;
    for (unsigned i = 0; i < t->n_paths; i++) {
        struct relay_path *p = &t->paths[i];
        struct probe *pr;
        struct conn *c;

        if (!p->direct_failed || p->probing ||
            uv_now(t->loop) - p->direct_failed_at < PT_TRANSPORT_DIRECT_RETRY_MS ||
            !member_address(t, p->id, address))
            continue;
        pr = malloc(sizeof(*pr));
        if (pr == NULL)
            return;
        pr->t = t;
        pr->id = p->id;
        /* past the retry time, transport_relay_choose picks the direct path */
        if (transport_out_start(t, p->id, address, FLAG_PEER, false, &c, errmsg) != 0) {
            free(pr);
            continue;
        }
        c->peer_cb = probe_cb;
        c->peer_arg = pr;
        p->probing = true;
    }
}

uint64_t pt_transport_relay_of(struct raft_uv_transport *super, uint64_t id)
{
    struct transport *t = super->impl;
    struct relay_path *p = t != NULL ? path_of(t, id, false) : NULL;
    return p != NULL && p->direct_failed ? p->via : 0;
}

void pt_transport_set_relay(struct raft_uv_transport *super, pt_transport_member_cb cb, void *arg)
{
    struct transport *t = super->impl;
    if (t == NULL)
        return;
    t->member_cb = cb;
    t->member_arg = cb != NULL ? arg : NULL;
}

const char *transport_relay_check(struct conn *c)
{
    struct transport *t = c->t;
    char name[PT_CLUSTER_NAME_MAX + 1];
    char address[PT_CLUSTER_ADDRESS_MAX + 1];
    uint64_t origin;
    const char *why = NULL;

    if (t->member_cb == NULL || t->tls == NULL || c->pump == NULL)
        why = "relay not served (relays need peer TLS)";
    else if (t->identity_cb == NULL || t->identity_cb(t->identity_arg, c->peer_id, name) != 0)
        why = "relay requested by a non-member";
    else if (transport_tls_pump_relayed(c->pump, &origin))
        why = "relay of a relayed connection";
    else if (c->relay_target == t->id || c->relay_target == c->peer_id)
        why = "relay to itself";
    else if (!member_address(t, c->relay_target, address))
        why = "relay to a non-member";
    else if (!transport_tls_relay_room(t, c->peer_id))
        why = "relay limit reached";
    if (why != NULL)
        pt_metrics_peer_refused(PT_METRICS_PEER_RELAY);
    return why;
}

/* A relay being set up: the origin's stream, waiting for the leg to the target. */
struct relay {
    struct transport *t;
    raft_id source, target;
    uv_stream_t *origin; /* owned */
};

static void relay_handle_closed(uv_handle_t *h)
{
    struct transport *t = h->data;
    raft_free(h);
    t->relay_handles--;
    transport_maybe_closed(t);
}

static void relay_close(struct transport *t, uv_stream_t *s)
{
    s->data = t;
    uv_close((uv_handle_t *)s, relay_handle_closed);
}

/* A duplicate of s's descriptor (-1 on failure). */
static int dup_stream(uv_stream_t *s)
{
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)s, &fd) != 0)
        return -1;
    return fcntl(fd, F_DUPFD_CLOEXEC, 0);
}

static void relay_leg_cb(void *arg, int status, uv_stream_t *stream)
{
    struct relay *r = arg;
    struct transport *t = r->t;
    unsigned char pre[RELAYED_LEN];
    int fa = -1, fx = -1, rv = status;

    if (status == 0) {
        t->relay_handles++;
        fa = dup_stream(r->origin);
        fx = dup_stream(stream);
        memcpy(pre, RELAYED_MAGIC, MAGIC_LEN);
        pt_put_be64(pre + MAGIC_LEN, r->source);
        pt_put_be64(pre + MAGIC_LEN + 8, t->id);
        rv = fa < 0 || fx < 0 ? PT_E_UNAVAILABLE
                              : transport_tls_splice_start(t, r->source, fa, fx, pre);
        if (rv != 0) {
            if (fa >= 0)
                close(fa);
            if (fx >= 0)
                close(fx);
        }
        relay_close(t, stream); /* the splice holds duplicates */
    }
    if (rv != 0 && pt_log_enabled(PT_LOG_DEBUG)) {
        pt_log(PT_LOG_DEBUG, "raft transport: relay not established", "{s:I,s:I,s:i}", "source",
               (json_int_t)r->source, "target", (json_int_t)r->target, "status", rv);
    }
    if (rv == PT_E_TOO_LARGE)
        pt_metrics_peer_refused(PT_METRICS_PEER_RELAY);
    relay_close(t, r->origin);
    free(r);
}

void transport_relay_serve(struct transport *t, raft_id source, raft_id target, uv_stream_t *stream)
{
    char address[PT_CLUSTER_ADDRESS_MAX + 1];
    char errmsg[RAFT_ERRMSG_BUF_SIZE];
    struct relay *r = calloc(1, sizeof(*r));
    struct conn *leg;

    t->relay_handles++;
    if (r == NULL || !member_address(t, target, address) ||
        transport_out_start(t, target, address, 0, true, &leg, errmsg) != 0) {
        free(r);
        relay_close(t, stream);
        return;
    }
    r->t = t;
    r->source = source;
    r->target = target;
    r->origin = stream;
    leg->peer_cb = relay_leg_cb;
    leg->peer_arg = r;
}
