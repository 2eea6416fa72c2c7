/*
 * peer_ping.c - pings on peer channels: round-trip times and dead-channel detection.
 *
 * Role: every open channel is pinged when it opens and then every PT_PEERS_PING_MS, in both
 * directions; the answers give pt_peers_rtt_us, which blob sync uses to pick the nearest
 * holder. A channel that received nothing for PT_PEERS_IDLE_MS is closed as dead; with relays
 * (peer TLS) already after PT_PEERS_SILENT_MS, and the transport is told the link went silent
 * unless an outbound channel to that peer received something meanwhile (the path this node
 * takes is fine, e.g. a channel the peer opened through a relay since cut: only it ends).
 * Pings are answered inside the service, never passed to the request callback.
 *
 * Design: a Ping (type PING, call id 0) carries the sender's monotonic clock and the Pong
 * echoes it, so the RTT needs no state per ping. The peer's RTT is smoothed (7/8 old + 1/8
 * new) over every channel open to it and forgotten when the last one closes. A sample that is
 * not a plausible reading of our own clock (future, negative, over RTT_SAMPLE_MAX_US) is
 * ignored; a Ping or Pong that does not decode closes the channel.
 * Threads: the loop thread given to pt_peers_init.
 */
#include "peer.h"

#include <stdint.h>

#include "clock.h"
#include "log.h"
#include "peer_int.h"

/* A ping sample above this is not believed (a clock that went wrong, or a forged pong). */
#define RTT_SAMPLE_MAX_US (60LL * 1000 * 1000)
/* Ping and Pong encode to at most 11 bytes (one tag, one 10-byte varint). */
#define PING_BUF 16

void peer_send_ping(struct conn *c)
{
    Portolan__Ping ping = PORTOLAN__PING__INIT;
    uint8_t buf[PING_BUF];
    size_t n;

    ping.sent_us = pt_clock_mono_us();
    n = portolan__ping__pack(&ping, buf);
    (void)peer_send_frame(c, 0, TYPE_PING, false, 0, buf, n);
}

void peer_answer_ping(struct conn *c, const Portolan__PeerFrame *f)
{
    Portolan__Ping *ping = portolan__ping__unpack(NULL, f->body.len, f->body.data);
    Portolan__Pong pong = PORTOLAN__PONG__INIT;
    uint8_t buf[PING_BUF];
    size_t n;

    if (ping == NULL) {
        peer_conn_close(c, PT_LOG_WARN, "malformed ping");
        return;
    }
    pong.sent_us = ping->sent_us;
    portolan__ping__free_unpacked(ping, NULL);
    n = portolan__pong__pack(&pong, buf);
    (void)peer_send_frame(c, f->call_id, TYPE_PING, true, 0, buf, n);
}

void peer_take_pong(struct conn *c, const Portolan__PeerFrame *f)
{
    Portolan__Pong *pong = portolan__pong__unpack(NULL, f->body.len, f->body.data);
    struct peer *peer = c->peer;
    int64_t now = pt_clock_mono_us(), sent, sample;

    if (pong == NULL) {
        peer_conn_close(c, PT_LOG_WARN, "malformed pong");
        return;
    }
    sent = pong->sent_us;
    portolan__pong__free_unpacked(pong, NULL);
    if (sent <= 0 || sent > now || now - sent > RTT_SAMPLE_MAX_US)
        return; /* not a clock reading of ours */
    sample = now - sent;
    if (peer->rtt_us < 0)
        peer->rtt_us = sample;
    else
        peer->rtt_us += (sample - peer->rtt_us) / 8;
}

/* Whether an outbound channel to peer other than skip (open, not closing) received a byte
 * less than PT_PEERS_SILENT_MS before now: then the path this node takes to peer is not
 * silent, only skip is. (An inbound channel proves nothing about that path: the peer may
 * have opened it through a relay.) */
static bool peer_heard_elsewhere(struct pt_peers *p, const struct peer *peer,
                                 const struct conn *skip, uint64_t now)
{
    for (const struct conn *c = p->conns; c != NULL; c = c->next)
        if (c != skip && c->outbound && !c->closing && c->peer == peer &&
            now - c->last_rx < PT_PEERS_SILENT_MS)
            return true;
    return false;
}

void peer_tick_cb(uv_timer_t *timer)
{
    struct pt_peers *p = timer->data;
    uint64_t now = uv_now(p->loop);

    pt_transport_probe_direct(p->t); /* back from relays once the direct path returns */
    for (struct conn *c = p->conns; c != NULL; c = c->next) {
        if (c->closing)
            continue;
        if (now - c->last_rx >= PT_PEERS_SILENT_MS && c->peer != NULL &&
            pt_transport_relays(p->t) && peer_heard_elsewhere(p, c->peer, c, now)) {
            /* a stale channel while the peer answers on an outbound one: the path this node
             * takes is not silent, only this channel ends */
            peer_conn_close(c, PT_LOG_WARN, "silent channel (the peer answers on another)");
        } else if (now - c->last_rx >= PT_PEERS_SILENT_MS && c->peer != NULL &&
                   pt_transport_relays(p->t)) {
            /* the link to this peer went silent: end its connections (raft's too), which go
             * through a relay from now on; this channel ends with them */
            pt_transport_peer_silent(p->t, c->peer->id);
            peer_conn_close(c, PT_LOG_WARN, "silent peer (relayed from now on)");
        } else if (now - c->last_rx >= PT_PEERS_IDLE_MS) {
            peer_conn_close(c, PT_LOG_WARN, "silent peer (idle limit)");
        } else
            peer_send_ping(c);
    }
}

int64_t pt_peers_rtt_us(struct pt_peers *p, uint64_t id)
{
    struct peer *peer = peer_find(p, id);
    return peer != NULL ? peer->rtt_us : -1;
}
