/*
 * transport_handshake.c - the raft transport's handshake: HELLO / WELCOME and their checks.
 *
 * Role: proves, before raft or the peer layer sees a byte, that the other end of a new
 * connection is a server of this cluster (and, outbound, the very server we meant to reach),
 * and learns which kind of channel the connection is for. Driven by the stream seam
 * (transport_stream.c) in both directions; on success it hands the connection to the connect
 * piece (transport_out_succeed) or to the listen piece (transport_in_succeed).
 *
 * Handshake wire format (version 1). Every integer is big-endian. Each side sends one message:
 * the connecting side a HELLO, the accepting side, once it accepted the HELLO, a WELCOME.
 * Each message is a 16-byte header followed by a body:
 *
 *     header   off len
 *               0   8  magic  0x89 'P' 'T' 'R' 'A' 'F' 'T' 0x0a
 *               8   2  protocol version (1)
 *              10   1  type: 1 HELLO, 2 WELCOME
 *              11   1  flags: bit 0 (0x01) PEER, bit 1 (0x02) BULK (only with PEER),
 *                      bit 2 (0x04) RELAY (alone); every other bit is reserved, sent as 0
 *              12   4  body length in bytes
 *
 *     HELLO     0   8  sender's raft server id (non-zero, not the receiver's own id)
 *     body      8   2  cluster id length C (1..64)
 *              10   2  address length A (1..261)
 *              12   C  cluster id
 *            12+C   A  sender's raft address, "host:port" (no terminating NUL)
 *
 *    (RELAY  12+C+A 8  the server id to tunnel to; see transport_relay.c)
 *
 *     WELCOME   0   8  acceptor's raft server id (the id the connecting side asked for)
 *     body      8   2  cluster id length C (1..64)
 *              10   C  cluster id
 *
 * The body length must equal exactly what the lengths inside it add up to. The acceptor
 * drops the connection, silently, on any mismatch: wrong magic (a random client), another
 * version, a reserved flag bit set, another cluster id, a malformed address. The connecting
 * side drops it when the WELCOME carries another cluster or another server id than the one it
 * meant to reach (a reused IP), or other flags than its HELLO.
 *
 * Flags select what the connection carries after the handshake. Without PEER it belongs to
 * raft: raft_uv's own message framing flows from the connecting to the accepting side only.
 * With PEER it is a peer channel: it goes to the callback set with
 * pt_transport_set_peer_accept for its kind (refused when none is set) and carries the peer
 * protocol of replication/peer.c in both directions. BULK marks the kind that carries blob
 * bytes (PT_CHANNEL_BULK), so that a transfer never queues ahead of a forwarded write on the
 * same TCP stream. The WELCOME echoes the HELLO's flags. A future
 * protocol version keeps the header layout; an acceptor refuses versions and flag bits it
 * does not know, so a new kind of channel never reaches code that does not speak it.
 *
 * RELAY asks the acceptor to tunnel the connection to a member (transport_relay.c): once it
 * answered WELCOME it splices bytes to that member, writing first a 24-byte preamble (the
 * magic "\x89PTRELY\n", the origin's server id, its own) that the member's pump reads before
 * the TLS; the origin then runs TLS and HELLO / WELCOME with that member inside. A RELAY
 * HELLO on a connection that arrived with a preamble is refused (one hop), and so is an
 * inner HELLO from another server id than the preamble names.
 *
 * Membership and identity: with pt_transport_set_identity, the acceptor refuses a HELLO whose
 * server id the callback does not know (neither a member nor a region being added), for
 * every channel kind, and a raft channel from a region being added (not yet in the raft
 * configuration, so no vote or append of its reaches raft); with TLS, it also refuses one whose
 * certificate (verified by the pump, transport_tls.c) does not name that id's region. The
 * connecting side's check of the server's certificate happens in the TLS handshake itself.
 *
 * Design: each side reads the 16-byte header first, checks it, then reads exactly the body
 * length it announced (at most MSG_MAX bytes in all). Every handshake ends within the
 * transport's timeout (transport_timeout_cb); a failure is logged at debug level when the
 * other end is not one of ours (bad magic, a closed socket) and as a warning when it is one
 * of ours speaking another dialect or claiming another cluster.
 * Threads: the raft loop thread.
 */
#include "transport.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "transport_int.h"
#include "bytes.h"

/* One outbound address failed: close its socket, the next address follows. */
static void attempt_fail(struct conn *c)
{
    uv_timer_stop(&c->timer);
    transport_seam_close(c);
}

/* Logs why a handshake failed and drops the connection (inbound) or the address (outbound). */
void transport_handshake_fail(struct conn *c, int level, const char *reason, int uv_err)
{
    char tls_reason[160];

    /* The TLS pump ended the connection: its reason is the one worth telling. */
    if (c->pump != NULL &&
        transport_tls_pump_error(c->pump, tls_reason, sizeof(tls_reason), &level) != NULL) {
        reason = tls_reason;
        uv_err = 0;
        if (transport_tls_pump_timed_out(c->pump))
            c->timed_out = true; /* a silent path, as when our own deadline passes */
    }
    if (pt_log_enabled(level)) {
        pt_log(level,
               c->role == ROLE_IN ? "raft transport: inbound connection refused"
                                  : "raft transport: connection attempt failed",
               "{s:s,s:s,s:s,s:I}", "remote", c->remote, "reason", reason, "error",
               uv_err != 0 ? uv_strerror(uv_err) : "", "peer_id", (json_int_t)c->peer_id);
    }
    if (c->role == ROLE_IN)
        transport_conn_finish(c, RAFT_NOCONNECTION);
    else
        attempt_fail(c);
}

static void encode_header(unsigned char *p, int type, unsigned char flags, size_t body_len)
{
    memcpy(p, MAGIC, MAGIC_LEN);
    pt_put_be16(p + 8, VERSION);
    p[10] = (unsigned char)type;
    p[11] = flags;
    pt_put_be32(p + 12, (uint32_t)body_len);
}

static void encode_hello(struct conn *c)
{
    struct transport *t = c->t;
    size_t alen = strlen(t->address);
    size_t body = HELLO_FIXED + t->cluster_len + alen;
    unsigned char *p = c->out + HEADER_LEN;

    if (c->flags & FLAG_RELAY)
        body += RELAY_TARGET_LEN;
    encode_header(c->out, TYPE_HELLO, c->flags, body);
    pt_put_be64(p, t->id);
    pt_put_be16(p + 8, (uint16_t)t->cluster_len);
    pt_put_be16(p + 10, (uint16_t)alen);
    memcpy(p + HELLO_FIXED, t->cluster_id, t->cluster_len);
    memcpy(p + HELLO_FIXED + t->cluster_len, t->address, alen);
    if (c->flags & FLAG_RELAY)
        pt_put_be64(p + HELLO_FIXED + t->cluster_len + alen, c->peer_id); /* the target */
    c->out_len = HEADER_LEN + body;
}

static void encode_welcome(struct conn *c)
{
    struct transport *t = c->t;
    size_t body = WELCOME_FIXED + t->cluster_len;
    unsigned char *p = c->out + HEADER_LEN;

    encode_header(c->out, TYPE_WELCOME, c->flags, body);
    pt_put_be64(p, t->id);
    pt_put_be16(p + 8, (uint16_t)t->cluster_len);
    memcpy(p + WELCOME_FIXED, t->cluster_id, t->cluster_len);
    c->out_len = HEADER_LEN + body;
}

static const char *check_hello(struct conn *c, const unsigned char *p, size_t len)
{
    struct transport *t = c->t;
    struct transport_hello h;
    const char *why;
    uint64_t origin;

    if (c->flags & FLAG_RELAY) { /* the server id to tunnel to follows the usual body */
        if (len < HELLO_FIXED + RELAY_TARGET_LEN)
            return "malformed hello";
        len -= RELAY_TARGET_LEN;
        c->relay_target = pt_get_be64(p + len);
    }
    why = transport_parse_hello(p, len, &h);
    c->peer_id = h.id;
    if (why != NULL)
        return why;
    if (h.cluster_len != t->cluster_len || memcmp(h.cluster, t->cluster_id, h.cluster_len) != 0)
        return "cluster id mismatch";
    if (h.id == t->id)
        return "invalid server id";
    if (t->identity_cb != NULL) {
        int who = t->identity_cb(t->identity_arg, h.id, c->peer_name);
        if (who < 0)
            return "unknown server id (not a member)";
        if (c->pump != NULL && !transport_tls_pump_names(c->pump, c->peer_name))
            return "certificate does not name the region of this server id";
        if (who == PT_TRANSPORT_PEER_ONLY && !(c->flags & FLAG_PEER))
            return "raft channel from a region not in the raft configuration";
    }
    /* Through a relay, the relay vouches for whom it tunnels: the same server must speak. */
    if (c->pump != NULL && transport_tls_pump_relayed(c->pump, &origin) && origin != h.id)
        return "relayed for another server id";
    if ((c->flags & FLAG_RELAY) && (why = transport_relay_check(c)) != NULL)
        return why;
    memcpy(c->peer_address, h.address, sizeof(c->peer_address));
    return NULL;
}

static const char *check_welcome(struct conn *c, const unsigned char *p, size_t len)
{
    struct transport *t = c->t;
    uint64_t id;
    const unsigned char *cluster;
    size_t clen;
    const char *why = transport_parse_welcome(p, len, &id, &cluster, &clen);

    if (why != NULL)
        return why;
    if (clen != t->cluster_len || memcmp(cluster, t->cluster_id, clen) != 0)
        return "cluster id mismatch";
    if (id != (c->via != 0 && !c->inner ? c->via : c->peer_id))
        return "server id mismatch";
    return NULL;
}

/* The other side's WELCOME arrived and our HELLO is written: the connection is ours, or, from a
 * relay, the tunnel is open and the handshake with the server tunneled to starts inside it, a
 * TLS client of its own over the relay's plaintext. */
static void out_welcomed(struct conn *c)
{
    struct transport *t = c->t;
    int rv;

    if (c->via == 0 || c->inner) {
        transport_out_succeed(c);
        return;
    }
    c->inner = true;
    c->welcomed = false;
    c->flags = c->inner_flags;
    if (t->identity_cb == NULL || t->identity_cb(t->identity_arg, c->peer_id, c->peer_name) < 0) {
        transport_handshake_fail(c, PT_LOG_WARN, "no region known for this server id", 0);
        return;
    }
    rv = transport_seam_start_tls(c);
    if (rv != 0) {
        transport_handshake_fail(c, PT_LOG_ERROR, "tls setup (relayed)", rv);
        return;
    }
    transport_conn_ready(c);
}

/* The byte stream is up: outbound sends its HELLO, both sides wait for the other's message. */
void transport_conn_ready(struct conn *c)
{
    int rv;

    c->in_got = 0;
    c->in_want = HEADER_LEN;
    if (c->role == ROLE_OUT) {
        encode_hello(c);
        rv = transport_seam_write(c);
        if (rv != 0) {
            transport_handshake_fail(c, PT_LOG_DEBUG, "write hello", rv);
            return;
        }
    }
    rv = transport_seam_read(c);
    if (rv != 0)
        transport_handshake_fail(c, PT_LOG_DEBUG, "read", rv);
}

void transport_conn_wrote(struct conn *c, int status)
{
    if (c->done || c->tcp_closing)
        return; /* closing: the close callback takes it from here */
    if (status != 0) {
        transport_handshake_fail(c, PT_LOG_DEBUG, "write", status);
        return;
    }
    if (c->role == ROLE_OUT) {
        if (c->welcomed)
            out_welcomed(c);
    } else if (!transport_served(c->t, c->flags)) {
        transport_handshake_fail(c, PT_LOG_DEBUG, "peer channel not served", 0); /* hook cleared */
    } else {
        transport_in_succeed(c);
    }
}

void transport_conn_read(struct conn *c, int status)
{
    const char *why;
    size_t body_len = 0;
    unsigned char flags = 0;
    int level = PT_LOG_WARN;
    int rv;

    if (c->done || c->tcp_closing)
        return;
    if (status != 0) {
        transport_handshake_fail(c, PT_LOG_DEBUG, status == UV_EOF ? "closed by peer" : "read",
                                 status);
        return;
    }
    if (c->in_got == HEADER_LEN) {
        why = transport_check_header(c->in, c->role == ROLE_IN ? TYPE_HELLO : TYPE_WELCOME,
                                     &body_len, &flags, &level);
        if (why == NULL && c->role == ROLE_IN) {
            c->flags = flags;
        } else if (why == NULL && flags != c->flags) {
            why = "flags mismatch";
        }
        if (why != NULL) {
            transport_handshake_fail(c, level, why, 0);
            return;
        }
        c->in_want = HEADER_LEN + body_len;
        rv = transport_seam_read(c);
        if (rv != 0)
            transport_handshake_fail(c, PT_LOG_DEBUG, "read", rv);
        return;
    }
    if (c->role == ROLE_IN) {
        why = check_hello(c, c->in + HEADER_LEN, c->in_want - HEADER_LEN);
        if (why == NULL && !transport_served(c->t, c->flags))
            why = "peer channel not served";
        if (why == NULL && transport_raft_held(c->t, c->flags)) {
            why = "raft channel held: this region started less than an election timeout ago";
            level = PT_LOG_DEBUG;
        }
        if (why != NULL) {
            transport_handshake_fail(c, level, why, 0);
            return;
        }
        encode_welcome(c);
        rv = transport_seam_write(c);
        if (rv != 0)
            transport_handshake_fail(c, PT_LOG_DEBUG, "write welcome", rv);
        return;
    }
    why = check_welcome(c, c->in + HEADER_LEN, c->in_want - HEADER_LEN);
    if (why != NULL) {
        transport_handshake_fail(c, PT_LOG_WARN, why, 0);
        return;
    }
    c->welcomed = true;
    if (!c->writing)
        out_welcomed(c); /* else when the HELLO's write callback has run */
}

void transport_timeout_cb(uv_timer_t *timer)
{
    struct conn *c = timer->data;
    c->timed_out = true;
    transport_handshake_fail(c, PT_LOG_DEBUG, "timed out", 0);
}

/* Logs the identity a TLS connection authenticated (region and server id, never key
 * material), once per connection, when it is handed over. */
void transport_log_authenticated(const struct conn *c)
{
    const char *kind = !(c->flags & FLAG_PEER) ? "raft" : (c->flags & FLAG_BULK) ? "bulk" : "peer";
    if (c->pump == NULL || !pt_log_enabled(PT_LOG_INFO))
        return;
    pt_log(PT_LOG_INFO, "raft transport: peer authenticated", "{s:s,s:I,s:s,s:s,s:s}", "region",
           c->peer_name, "peer_id", (json_int_t)c->peer_id, "channel", kind, "direction",
           c->role == ROLE_IN ? "inbound" : "outbound", "remote", c->remote);
}
