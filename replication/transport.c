/*
 * transport.c - Raft's network transport: named peers, a cluster handshake, clean cancellation.
 *
 * Role: implements `struct raft_uv_transport` for raft_uv (canonical/raft 0.15). raft_uv asks
 * it to listen on this server's address and to connect to a peer (id, "host:port"); it gets
 * back libuv streams it then reads Raft messages from (inbound) or writes them to (outbound).
 * What raft_uv does with a stream is its business; this file only opens streams and proves
 * that the other end is a server of the same cluster.
 *
 * Handshake wire format (version 1). Every integer is big-endian. Each side sends one message:
 * the connecting side a HELLO, the accepting side, once it accepted the HELLO, a WELCOME.
 * Each message is a 16-byte header followed by a body:
 *
 *     header   off len
 *               0   8  magic  0x89 'P' 'T' 'R' 'A' 'F' 'T' 0x0a
 *               8   2  protocol version (1)
 *              10   1  type: 1 HELLO, 2 WELCOME
 *              11   1  flags: bit 0 (0x01) PEER, bit 1 (0x02) BULK (only with PEER);
 *                      every other bit is reserved, sent as 0
 *              12   4  body length in bytes
 *
 *     HELLO     0   8  sender's raft server id (non-zero, not the receiver's own id)
 *     body      8   2  cluster id length C (1..64)
 *              10   2  address length A (1..261)
 *              12   C  cluster id
 *            12+C   A  sender's raft address, "host:port" (no terminating NUL)
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
 * Design:
 * - Names are resolved at every connection attempt with uv_getaddrinfo (thread pool, result
 *   on the raft loop), never cached: raft_uv retries a failed connection every second, so a
 *   peer whose pod IP changed is found again at the next attempt. Each returned address is
 *   tried in order (up to PT_TRANSPORT_MAX_ADDRESSES) until one completes the handshake.
 *   The own address is resolved once, synchronously, when raft starts listening, and every
 *   resulting address is listened on (IPv6 sockets are v6-only so both families coexist).
 * - One `struct conn` tracks one connection being set up, in either direction. It owns a
 *   deadline timer, the TCP handle (raft_malloc'd, because raft_uv frees the streams it is
 *   given with raft_free), and for outbound ones the getaddrinfo request and its results.
 *   Reads ask libuv for exactly the bytes still missing from the current message, so no byte
 *   of what follows the handshake is ever consumed here.
 * - Limits: messages at most MSG_MAX bytes; every handshake (outbound: per address, TCP
 *   connect included) ends within the timeout - name resolution itself is bounded by the
 *   resolver's own timeouts (resolv.conf), and cannot be interrupted once a thread-pool
 *   thread runs it, so closing waits for such a lookup to return; at most PT_TRANSPORT_MAX_INBOUND
 * inbound handshakes run at once - beyond that a listener stops accepting and connections wait in
 *   the kernel's backlog until a slot frees. If memory runs out, a new connection is accepted
 *   into a spare handle and closed at once, so a listener never stalls for good.
 * - Stream seam: the handshake never calls libuv stream functions itself; it goes through
 *   seam_start / seam_write / seam_read / seam_detach / seam_close. Plain TCP implements each
 *   with a libuv call. TLS belongs there: seam_start runs the TLS handshake and then calls
 *   conn_ready, reads and writes pass through the TLS engine, and seam_detach hands raft the
 *   plaintext end of a socketpair that the engine pumps, so raft keeps a uv_stream_t.
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

#include <arpa/inet.h>
#include <assert.h>
#include <jansson.h>
#include <netdb.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "err.h"
#include "log.h"

#define MAGIC          "\x89PTRAFT\n"
#define MAGIC_LEN      8
#define VERSION        1
#define TYPE_HELLO     1
#define TYPE_WELCOME   2
#define FLAG_PEER      0x01
#define FLAG_BULK      0x02
#define FLAGS_KNOWN    (FLAG_PEER | FLAG_BULK)
#define HEADER_LEN     16
#define HELLO_FIXED    12
#define WELCOME_FIXED  10
#define HELLO_BODY_MAX (HELLO_FIXED + PT_TRANSPORT_CLUSTER_ID_MAX + PT_TRANSPORT_ADDRESS_MAX)
#define MSG_MAX        (HEADER_LEN + HELLO_BODY_MAX)
#define LISTEN_BACKLOG 128
#define TIMEOUT_MAX_MS 600000
#define KEEPALIVE_S    30
/* "[v6%zone]:port" of a socket address, for logs. */
#define REMOTE_MAX (INET6_ADDRSTRLEN + 32)

_Static_assert(sizeof(MAGIC) - 1 == MAGIC_LEN, "magic is 8 bytes");
_Static_assert(PT_TRANSPORT_ADDRESS_MAX <= UINT16_MAX, "address length fits its field");

enum { ROLE_IN = 1, ROLE_OUT };

struct transport;

struct listener {
    uv_tcp_t tcp;
    struct transport *t;
    bool stalled; /* libuv holds an accepted connection until we call uv_accept */
};

/* One connection being set up; see the file comment. */
struct conn {
    struct transport *t;
    struct conn *prev, *next; /* in t->conns */
    int role;
    raft_id peer_id;     /* OUT: the id asked for; IN: the id the HELLO announced */
    unsigned char flags; /* OUT: the HELLO's flags; IN: the flags of the HELLO received */
    char peer_address[PT_TRANSPORT_ADDRESS_MAX + 1]; /* IN: from the HELLO */
    char remote[REMOTE_MAX];                         /* socket address, for logs */

    /* Outbound only. */
    struct raft_uv_connect *req;          /* raft channel: NULL once its callback fired */
    pt_transport_peer_connect_cb peer_cb; /* peer channel: NULL once it fired */
    void *peer_arg;
    char host[PT_TRANSPORT_HOST_MAX + 1];
    char port[8];
    uv_getaddrinfo_t gai;
    bool gai_active;
    struct addrinfo *ai;      /* resolved list, owned (uv_freeaddrinfo) */
    struct addrinfo *ai_next; /* next address to try */
    unsigned attempts;
    uv_connect_t connect;
    bool welcomed; /* a valid WELCOME arrived */

    uv_timer_t timer;
    bool timer_open; /* initialised and its close callback not run yet */
    uv_tcp_t *tcp;   /* owned until handed off; freed in its close callback */
    bool tcp_closing;
    uv_write_t write;
    bool writing;
    bool done;  /* outcome decided: only closing is left */
    int status; /* RAFT_* outcome reported to req */
    size_t out_len, in_want, in_got;
    unsigned char out[MSG_MAX];
    unsigned char in[MSG_MAX];
};

struct transport {
    struct raft_uv_transport *super;
    uv_loop_t *loop;
    char cluster_id[PT_TRANSPORT_CLUSTER_ID_MAX + 1];
    size_t cluster_len;
    raft_id id;
    char address[PT_TRANSPORT_ADDRESS_MAX + 1];      /* raft address; empty before init */
    char bind_address[PT_TRANSPORT_ADDRESS_MAX + 1]; /* empty: listen on address */
    unsigned timeout_ms;
    raft_uv_accept_cb accept_cb;
    /* by channel kind; NULL: peer channels of that kind are refused */
    pt_transport_peer_accept_cb peer_accept_cb[PT_CHANNELS];
    void *peer_accept_arg[PT_CHANNELS];
    size_t nroutes; /* node-local address overrides, by server id */
    struct {
        raft_id id;
        char address[PT_TRANSPORT_ADDRESS_MAX + 1];
    } routes[PT_TRANSPORT_MAX_ROUTES];
    struct listener listeners[PT_TRANSPORT_MAX_ADDRESSES];
    unsigned n_listeners;      /* slots initialised */
    unsigned n_listeners_open; /* slots whose close callback has not run */
    uv_tcp_t spare;            /* accepts and drops a connection when memory runs out */
    bool spare_busy;
    struct conn *conns;
    unsigned n_inbound;
    bool listening;
    bool closing;
    bool close_fired;
    raft_uv_transport_close_cb close_cb;
};

/* ---- Small helpers ------------------------------------------------------------------------ */

static void put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static void put32(unsigned char *p, uint32_t v)
{
    put16(p, (uint16_t)(v >> 16));
    put16(p + 2, (uint16_t)v);
}

static void put64(unsigned char *p, uint64_t v)
{
    put32(p, (uint32_t)(v >> 32));
    put32(p + 4, (uint32_t)v);
}

static uint16_t get16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint32_t get32(const unsigned char *p)
{
    return ((uint32_t)get16(p) << 16) | get16(p + 2);
}

static uint64_t get64(const unsigned char *p)
{
    return ((uint64_t)get32(p) << 32) | get32(p + 4);
}

static bool is_digit(char ch)
{
    return ch >= '0' && ch <= '9';
}

static bool is_name_char(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '.' ||
           ch == '-' || ch == '_';
}

static bool is_v6_char(char ch)
{
    return is_digit(ch) || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F') || ch == ':' ||
           ch == '.';
}

static bool valid_cluster_id(const char *id, size_t *len)
{
    size_t n = id == NULL ? 0 : strnlen(id, PT_TRANSPORT_CLUSTER_ID_MAX + 1);
    if (n == 0 || n > PT_TRANSPORT_CLUSTER_ID_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (id[i] < 0x21 || id[i] > 0x7e)
            return false;
    }
    *len = n;
    return true;
}

/* "ip:port" or "[ip]:port" of sa, or "?" when it has no printable form. */
static void sockaddr_text(const struct sockaddr *sa, char *buf, size_t size)
{
    char ip[INET6_ADDRSTRLEN + 16];
    if (uv_ip_name(sa, ip, sizeof(ip)) != 0) {
        snprintf(buf, size, "?");
    } else if (sa->sa_family == AF_INET6) {
        snprintf(buf, size, "[%s]:%u", ip,
                 (unsigned)ntohs(((const struct sockaddr_in6 *)sa)->sin6_port));
    } else {
        snprintf(buf, size, "%s:%u", ip,
                 (unsigned)ntohs(((const struct sockaddr_in *)sa)->sin_port));
    }
}

int pt_transport_parse_address(const char *address, char *host, size_t host_size, unsigned *port)
{
    const char *h, *p;
    size_t len, hlen, plen;
    unsigned long value = 0;

    if (address == NULL || host == NULL || port == NULL)
        return PT_E_CONFIG;
    len = strnlen(address, PT_TRANSPORT_ADDRESS_MAX + 1);
    if (len == 0 || len > PT_TRANSPORT_ADDRESS_MAX)
        return PT_E_CONFIG;
    if (address[0] == '[') {
        const char *end = memchr(address, ']', len);
        const char *zone;
        if (end == NULL || end[1] != ':')
            return PT_E_CONFIG;
        h = address + 1;
        hlen = (size_t)(end - h);
        p = end + 2;
        zone = memchr(h, '%', hlen);
        for (const char *s = h; s < (zone != NULL ? zone : end); s++) {
            if (!is_v6_char(*s))
                return PT_E_CONFIG;
        }
        if (zone != NULL) {
            if (zone + 1 == end)
                return PT_E_CONFIG;
            for (const char *s = zone + 1; s < end; s++) {
                if (!is_name_char(*s))
                    return PT_E_CONFIG;
            }
        }
        if (memchr(h, ':', hlen) == NULL)
            return PT_E_CONFIG;
    } else {
        const char *colon = strrchr(address, ':');
        if (colon == NULL)
            return PT_E_CONFIG;
        h = address;
        hlen = (size_t)(colon - address);
        p = colon + 1;
        for (size_t i = 0; i < hlen; i++) {
            if (!is_name_char(h[i]))
                return PT_E_CONFIG;
        }
    }
    if (hlen == 0 || hlen > PT_TRANSPORT_HOST_MAX || hlen >= host_size)
        return PT_E_CONFIG;
    plen = strlen(p);
    if (plen == 0 || plen > 5)
        return PT_E_CONFIG;
    for (size_t i = 0; i < plen; i++) {
        if (!is_digit(p[i]))
            return PT_E_CONFIG;
        value = value * 10 + (unsigned long)(p[i] - '0');
    }
    if (value == 0 || value > 65535)
        return PT_E_CONFIG;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (unsigned)value;
    return 0;
}

/* ---- Connection bookkeeping --------------------------------------------------------------- */

static void transport_maybe_closed(struct transport *t);
static void resume_stalled(struct transport *t);
static void attempt_next(struct conn *c);
static void conn_ready(struct conn *c);
static void conn_wrote(struct conn *c, int status);
static void conn_read(struct conn *c, int status);
static void conn_tcp_closed(struct conn *c);

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

static void conn_link(struct conn *c)
{
    struct transport *t = c->t;
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
static void conn_maybe_free(struct conn *c)
{
    struct transport *t = c->t;
    struct raft_uv_connect *req;
    pt_transport_peer_connect_cb peer_cb;
    void *peer_arg;
    int status, role;

    if (c->gai_active || c->tcp != NULL || c->timer_open)
        return;
    conn_unlink(c);
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
        resume_stalled(t);
    transport_maybe_closed(t);
}

static void timer_close_cb(uv_handle_t *handle)
{
    struct conn *c = handle->data;
    c->timer_open = false;
    conn_maybe_free(c);
}

static void close_timer(struct conn *c)
{
    if (c->timer_open && !uv_is_closing((uv_handle_t *)&c->timer))
        uv_close((uv_handle_t *)&c->timer, timer_close_cb);
}

/* ---- Stream seam (plain TCP; see the file comment) ---------------------------------------- */

static void seam_tcp_close_cb(uv_handle_t *handle)
{
    struct conn *c = handle->data;
    raft_free(handle);
    c->tcp = NULL;
    c->tcp_closing = false;
    c->writing = false;
    conn_tcp_closed(c);
}

/* Closes c->tcp; conn_tcp_closed(c) runs once it is closed. */
static void seam_close(struct conn *c)
{
    if (c->tcp == NULL || c->tcp_closing)
        return;
    c->tcp_closing = true;
    uv_close((uv_handle_t *)c->tcp, seam_tcp_close_cb);
}

/* The peer is reachable: set socket options, then start the handshake. */
static void seam_start(struct conn *c)
{
    /* Raft messages are small and latency-bound; keepalive notices a peer that vanished
     * without closing an otherwise idle inbound stream. Failures only cost performance. */
    (void)uv_tcp_nodelay(c->tcp, 1);
    (void)uv_tcp_keepalive(c->tcp, 1, KEEPALIVE_S);
    conn_ready(c);
}

static void seam_write_cb(uv_write_t *req, int status)
{
    struct conn *c = req->data;
    c->writing = false;
    conn_wrote(c, status);
}

/* Writes c->out[0..out_len); conn_wrote(c, status) follows unless this returns an error. */
static int seam_write(struct conn *c)
{
    uv_buf_t buf = uv_buf_init((char *)c->out, (unsigned)c->out_len);
    int rv;
    c->write.data = c;
    rv = uv_write(&c->write, (uv_stream_t *)c->tcp, &buf, 1, seam_write_cb);
    if (rv == 0)
        c->writing = true;
    return rv;
}

static void seam_alloc_cb(uv_handle_t *handle, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = handle->data;
    (void)suggested;
    assert(c->in_got < c->in_want && c->in_want <= sizeof(c->in));
    *buf = uv_buf_init((char *)c->in + c->in_got, (unsigned)(c->in_want - c->in_got));
}

static void seam_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    (void)buf;
    if (nread == 0)
        return;
    if (nread < 0) {
        uv_read_stop(stream);
        conn_read(c, (int)nread);
        return;
    }
    c->in_got += (size_t)nread;
    if (c->in_got < c->in_want)
        return;
    uv_read_stop(stream);
    conn_read(c, 0);
}

/* Reads until c->in holds c->in_want bytes; conn_read(c, status) follows unless this returns
 * an error. Never reads past in_want. */
static int seam_read(struct conn *c)
{
    return uv_read_start((uv_stream_t *)c->tcp, seam_alloc_cb, seam_read_cb);
}

/* Gives up the stream: it is raft's from now on (raft_uv closes it and raft_frees it). */
static uv_stream_t *seam_detach(struct conn *c)
{
    uv_stream_t *stream = (uv_stream_t *)c->tcp;
    uv_read_stop(stream);
    stream->data = NULL;
    c->tcp = NULL;
    return stream;
}

/* ---- Outcomes ----------------------------------------------------------------------------- */

/* Decides c's outcome (status: RAFT_* for an outbound req) and closes what it owns. */
static void conn_finish(struct conn *c, int status)
{
    if (c->done)
        return;
    c->done = true;
    c->status = status;
    if (c->gai_active)
        (void)uv_cancel((uv_req_t *)&c->gai); /* if already running, its callback waits */
    seam_close(c);
    close_timer(c);
}

/* One outbound address failed: close its socket, the next address follows. */
static void attempt_fail(struct conn *c)
{
    uv_timer_stop(&c->timer);
    seam_close(c);
}

/* Logs why a handshake failed and drops the connection (inbound) or the address (outbound). */
static void handshake_fail(struct conn *c, int level, const char *reason, int uv_err)
{
    if (pt_log_enabled(level)) {
        pt_log(level,
               c->role == ROLE_IN ? "raft transport: inbound connection refused"
                                  : "raft transport: connection attempt failed",
               "{s:s,s:s,s:s,s:I}", "remote", c->remote, "reason", reason, "error",
               uv_err != 0 ? uv_strerror(uv_err) : "", "peer_id", (json_int_t)c->peer_id);
    }
    if (c->role == ROLE_IN)
        conn_finish(c, RAFT_NOCONNECTION);
    else
        attempt_fail(c);
}

static void conn_tcp_closed(struct conn *c)
{
    if (c->done)
        conn_maybe_free(c);
    else
        attempt_next(c);
}

static void out_succeed(struct conn *c)
{
    struct raft_uv_connect *req = c->req;
    pt_transport_peer_connect_cb peer_cb = c->peer_cb;
    void *peer_arg = c->peer_arg;
    uv_stream_t *stream;

    uv_timer_stop(&c->timer);
    stream = seam_detach(c);
    c->req = NULL;
    c->peer_cb = NULL;
    c->done = true;
    c->status = 0;
    close_timer(c);
    if (req != NULL)
        req->cb(req, stream, 0);
    else
        peer_cb(peer_arg, 0, stream);
}

/* The peer-channel kind of a handshake's flags (PEER set). */
static int channel_of(unsigned char flags)
{
    return (flags & FLAG_BULK) ? PT_CHANNEL_BULK : PT_CHANNEL_PEER;
}

/* Whether an inbound connection with these flags has a taker: raft, or a peer-channel hook. */
static bool served(const struct transport *t, unsigned char flags)
{
    return !(flags & FLAG_PEER) || t->peer_accept_cb[channel_of(flags)] != NULL;
}

static void in_succeed(struct conn *c)
{
    struct transport *t = c->t;
    uv_stream_t *stream;

    uv_timer_stop(&c->timer);
    stream = seam_detach(c);
    c->done = true;
    c->status = 0;
    close_timer(c); /* c, and peer_address with it, lives until the timer is closed */
    if (c->flags & FLAG_PEER)
        t->peer_accept_cb[channel_of(c->flags)](t->peer_accept_arg[channel_of(c->flags)],
                                                c->peer_id, c->peer_address, stream);
    else
        t->accept_cb(t->super, c->peer_id, c->peer_address, stream);
}

/* ---- Handshake messages ------------------------------------------------------------------- */

static void encode_header(unsigned char *p, int type, unsigned char flags, size_t body_len)
{
    memcpy(p, MAGIC, MAGIC_LEN);
    put16(p + 8, VERSION);
    p[10] = (unsigned char)type;
    p[11] = flags;
    put32(p + 12, (uint32_t)body_len);
}

static void encode_hello(struct conn *c)
{
    struct transport *t = c->t;
    size_t alen = strlen(t->address);
    size_t body = HELLO_FIXED + t->cluster_len + alen;
    unsigned char *p = c->out + HEADER_LEN;

    encode_header(c->out, TYPE_HELLO, c->flags, body);
    put64(p, t->id);
    put16(p + 8, (uint16_t)t->cluster_len);
    put16(p + 10, (uint16_t)alen);
    memcpy(p + HELLO_FIXED, t->cluster_id, t->cluster_len);
    memcpy(p + HELLO_FIXED + t->cluster_len, t->address, alen);
    c->out_len = HEADER_LEN + body;
}

static void encode_welcome(struct conn *c)
{
    struct transport *t = c->t;
    size_t body = WELCOME_FIXED + t->cluster_len;
    unsigned char *p = c->out + HEADER_LEN;

    encode_header(c->out, TYPE_WELCOME, c->flags, body);
    put64(p, t->id);
    put16(p + 8, (uint16_t)t->cluster_len);
    memcpy(p + WELCOME_FIXED, t->cluster_id, t->cluster_len);
    c->out_len = HEADER_LEN + body;
}

/* Checks a header; returns NULL, the body length and the flags, or the reason for refusing it
 * (and whether that reason deserves a warning: a peer of ours speaking another dialect). */
static const char *check_header(const unsigned char *p, int type, size_t *body_len,
                                unsigned char *flags, int *level)
{
    size_t min = type == TYPE_HELLO ? HELLO_FIXED + 2 : WELCOME_FIXED + 1;
    size_t max = type == TYPE_HELLO ? HELLO_BODY_MAX : WELCOME_FIXED + PT_TRANSPORT_CLUSTER_ID_MAX;
    uint32_t len;

    *level = PT_LOG_DEBUG;
    if (memcmp(p, MAGIC, MAGIC_LEN) != 0)
        return "bad magic";
    *level = PT_LOG_WARN;
    if (get16(p + 8) != VERSION)
        return "unsupported protocol version";
    if (p[10] != type)
        return "unexpected message type";
    if ((p[11] & ~FLAGS_KNOWN) != 0 || (p[11] & (FLAG_PEER | FLAG_BULK)) == FLAG_BULK)
        return "unknown flags";
    len = get32(p + 12);
    if (len < min || len > max)
        return "bad body length";
    *body_len = len;
    *flags = p[11];
    return NULL;
}

static const char *check_hello(struct conn *c, const unsigned char *p, size_t len)
{
    struct transport *t = c->t;
    char host[PT_TRANSPORT_HOST_MAX + 1];
    unsigned port;
    uint64_t id = get64(p);
    size_t clen = get16(p + 8), alen = get16(p + 10);

    c->peer_id = id;
    if (clen == 0 || clen > PT_TRANSPORT_CLUSTER_ID_MAX || alen == 0 ||
        alen > PT_TRANSPORT_ADDRESS_MAX || HELLO_FIXED + clen + alen != len)
        return "malformed hello";
    if (clen != t->cluster_len || memcmp(p + HELLO_FIXED, t->cluster_id, clen) != 0)
        return "cluster id mismatch";
    if (id == 0 || id == t->id)
        return "invalid server id";
    if (memchr(p + HELLO_FIXED + clen, '\0', alen) != NULL)
        return "invalid address";
    memcpy(c->peer_address, p + HELLO_FIXED + clen, alen);
    c->peer_address[alen] = '\0';
    if (pt_transport_parse_address(c->peer_address, host, sizeof(host), &port) != 0)
        return "invalid address";
    return NULL;
}

static const char *check_welcome(struct conn *c, const unsigned char *p, size_t len)
{
    struct transport *t = c->t;
    size_t clen = get16(p + 8);

    if (clen == 0 || WELCOME_FIXED + clen != len)
        return "malformed welcome";
    if (clen != t->cluster_len || memcmp(p + WELCOME_FIXED, t->cluster_id, clen) != 0)
        return "cluster id mismatch";
    if (get64(p) != c->peer_id)
        return "server id mismatch";
    return NULL;
}

/* The byte stream is up: outbound sends its HELLO, both sides wait for the other's message. */
static void conn_ready(struct conn *c)
{
    int rv;

    c->in_got = 0;
    c->in_want = HEADER_LEN;
    if (c->role == ROLE_OUT) {
        encode_hello(c);
        rv = seam_write(c);
        if (rv != 0) {
            handshake_fail(c, PT_LOG_DEBUG, "write hello", rv);
            return;
        }
    }
    rv = seam_read(c);
    if (rv != 0)
        handshake_fail(c, PT_LOG_DEBUG, "read", rv);
}

static void conn_wrote(struct conn *c, int status)
{
    if (c->done || c->tcp_closing)
        return; /* closing: the close callback takes it from here */
    if (status != 0) {
        handshake_fail(c, PT_LOG_DEBUG, "write", status);
        return;
    }
    if (c->role == ROLE_OUT) {
        if (c->welcomed)
            out_succeed(c);
    } else if (!served(c->t, c->flags)) {
        handshake_fail(c, PT_LOG_DEBUG, "peer channel not served", 0); /* hook cleared */
    } else {
        in_succeed(c);
    }
}

static void conn_read(struct conn *c, int status)
{
    const char *why;
    size_t body_len = 0;
    unsigned char flags = 0;
    int level = PT_LOG_WARN;
    int rv;

    if (c->done || c->tcp_closing)
        return;
    if (status != 0) {
        handshake_fail(c, PT_LOG_DEBUG, status == UV_EOF ? "closed by peer" : "read", status);
        return;
    }
    if (c->in_got == HEADER_LEN) {
        why = check_header(c->in, c->role == ROLE_IN ? TYPE_HELLO : TYPE_WELCOME, &body_len, &flags,
                           &level);
        if (why == NULL && c->role == ROLE_IN) {
            c->flags = flags;
        } else if (why == NULL && flags != c->flags) {
            why = "flags mismatch";
        }
        if (why != NULL) {
            handshake_fail(c, level, why, 0);
            return;
        }
        c->in_want = HEADER_LEN + body_len;
        rv = seam_read(c);
        if (rv != 0)
            handshake_fail(c, PT_LOG_DEBUG, "read", rv);
        return;
    }
    if (c->role == ROLE_IN) {
        why = check_hello(c, c->in + HEADER_LEN, c->in_want - HEADER_LEN);
        if (why == NULL && !served(c->t, c->flags))
            why = "peer channel not served";
        if (why != NULL) {
            handshake_fail(c, PT_LOG_WARN, why, 0);
            return;
        }
        encode_welcome(c);
        rv = seam_write(c);
        if (rv != 0)
            handshake_fail(c, PT_LOG_DEBUG, "write welcome", rv);
        return;
    }
    why = check_welcome(c, c->in + HEADER_LEN, c->in_want - HEADER_LEN);
    if (why != NULL) {
        handshake_fail(c, PT_LOG_WARN, why, 0);
        return;
    }
    c->welcomed = true;
    if (!c->writing)
        out_succeed(c); /* else when the HELLO's write callback has run */
}

static void timeout_cb(uv_timer_t *timer)
{
    struct conn *c = timer->data;
    handshake_fail(c, PT_LOG_DEBUG, "timed out", 0);
}

/* ---- Outbound ----------------------------------------------------------------------------- */

static void connect_cb(uv_connect_t *req, int status)
{
    struct conn *c = req->data;
    if (c->done || c->tcp_closing)
        return;
    if (status != 0) {
        handshake_fail(c, PT_LOG_DEBUG, "connect", status);
        return;
    }
    seam_start(c);
}

/* Tries the next resolved address; finishes with RAFT_NOCONNECTION when none is left. */
static void attempt_next(struct conn *c)
{
    struct transport *t = c->t;
    struct addrinfo *ai;
    uv_tcp_t *tcp;
    int rv;

    while ((ai = c->ai_next) != NULL && c->attempts < PT_TRANSPORT_MAX_ADDRESSES) {
        c->ai_next = ai->ai_next;
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        c->attempts++;
        sockaddr_text(ai->ai_addr, c->remote, sizeof(c->remote));
        tcp = raft_malloc(sizeof(*tcp));
        if (tcp == NULL) {
            conn_finish(c, RAFT_NOMEM);
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
            handshake_fail(c, PT_LOG_DEBUG, "connect", rv); /* next address once closed */
            return;
        }
        uv_timer_start(&c->timer, timeout_cb, t->timeout_ms, 0);
        return;
    }
    conn_finish(c, RAFT_NOCONNECTION);
}

static void gai_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    struct conn *c = req->data;

    c->gai_active = false;
    if (c->done) {
        if (res != NULL)
            uv_freeaddrinfo(res);
        conn_maybe_free(c);
        return;
    }
    if (status != 0) {
        if (pt_log_enabled(PT_LOG_DEBUG)) {
            pt_log(PT_LOG_DEBUG, "raft transport: cannot resolve peer", "{s:s,s:s,s:I}", "host",
                   c->host, "error", uv_strerror(status), "peer_id", (json_int_t)c->peer_id);
        }
        conn_finish(c, RAFT_NOCONNECTION);
        return;
    }
    c->ai = res;
    c->ai_next = res;
    attempt_next(c);
}

/* Starts an outbound connection to server id at address with the given HELLO flags: returns
 * 0 with *out linked and resolving, or a RAFT_* code with the reason in errmsg (then nothing
 * is left behind). The caller sets the callback of *out before returning to the loop. */
static int out_start(struct transport *t, raft_id id, const char *address, unsigned char flags,
                     struct conn **out, char *errmsg)
{
    struct addrinfo hints;
    struct conn *c;
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
    c->flags = flags;

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
    uv_timer_init(t->loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    conn_link(c);
    *out = c;
    return 0;
}

/* Implementation of raft_uv_transport->connect. */
static int transport_connect(struct raft_uv_transport *super, struct raft_uv_connect *req,
                             raft_id id, const char *address, raft_uv_connect_cb cb)
{
    struct conn *c;
    int rv;

    rv = out_start(super->impl, id, address, 0, &c, super->errmsg);
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
    rv = out_start(t, id, address, channel == PT_CHANNEL_BULK ? FLAG_PEER | FLAG_BULK : FLAG_PEER,
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

void pt_transport_set_peer_accept(struct raft_uv_transport *super, int channel,
                                  pt_transport_peer_accept_cb cb, void *arg)
{
    struct transport *t = super->impl;
    if (t == NULL || channel < 0 || channel >= PT_CHANNELS)
        return; /* released by pt_transport_close, or no such kind */
    t->peer_accept_cb[channel] = cb;
    t->peer_accept_arg[channel] = cb != NULL ? arg : NULL;
}

/* ---- Inbound ------------------------------------------------------------------------------ */

static void spare_close_cb(uv_handle_t *handle)
{
    struct transport *t = handle->data;
    t->spare_busy = false;
    resume_stalled(t);
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
    uv_timer_init(t->loop, &c->timer);
    c->timer.data = c;
    c->timer_open = true;
    uv_tcp_init(t->loop, tcp);
    tcp->data = c;
    c->tcp = tcp;
    conn_link(c);
    snprintf(c->remote, sizeof(c->remote), "?");

    rv = uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)tcp);
    if (rv != 0) {
        handshake_fail(c, PT_LOG_DEBUG, "accept", rv);
        return;
    }
    if (uv_tcp_getpeername(tcp, (struct sockaddr *)&ss, &sslen) == 0)
        sockaddr_text((struct sockaddr *)&ss, c->remote, sizeof(c->remote));
    uv_timer_start(&c->timer, timeout_cb, t->timeout_ms, 0);
    seam_start(c);
}

/* Accepts what stalled listeners hold, as far as the inbound limit allows. */
static void resume_stalled(struct transport *t)
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

static void close_listeners(struct transport *t)
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
static int transport_listen(struct raft_uv_transport *super, raft_uv_accept_cb cb)
{
    struct transport *t = super->impl;
    const char *address = t->bind_address[0] != '\0' ? t->bind_address : t->address;
    char host[PT_TRANSPORT_HOST_MAX + 1], port_text[8];
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
            sockaddr_text(ai->ai_addr, where, sizeof(where));
            snprintf(super->errmsg, RAFT_ERRMSG_BUF_SIZE, "listen on %s: %s", where,
                     uv_strerror(rv));
            uv_freeaddrinfo(gai.addrinfo);
            close_listeners(t);
            return RAFT_IOERR;
        }
        bound[n_bound++] = ai->ai_addr;
    }
    uv_freeaddrinfo(gai.addrinfo);
    if (n_bound == 0) {
        snprintf(super->errmsg, RAFT_ERRMSG_BUF_SIZE,
                 "listen: %.200s resolves to no usable address", address);
        close_listeners(t);
        return RAFT_IOERR;
    }
    return 0;
}

/* ---- Life cycle --------------------------------------------------------------------------- */

/* Implementation of raft_uv_transport->init. */
static int transport_init(struct raft_uv_transport *super, raft_id id, const char *address)
{
    struct transport *t = super->impl;
    char host[PT_TRANSPORT_HOST_MAX + 1];
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

static void transport_maybe_closed(struct transport *t)
{
    raft_uv_transport_close_cb cb;

    if (!t->closing || t->close_fired)
        return;
    if (t->n_listeners_open != 0 || t->conns != NULL || t->spare_busy)
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
    close_listeners(t);
    /* conn_finish never frees synchronously: every conn not done still has its timer open. */
    for (c = t->conns; c != NULL; c = c->next) {
        if (!c->done)
            conn_finish(c, RAFT_CANCELED);
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
    assert(t->n_listeners_open == 0 && t->conns == NULL && !t->spare_busy);
    raft_free(t);
    super->impl = NULL;
}

int pt_transport_set_bind_address(struct raft_uv_transport *super, const char *address)
{
    struct transport *t = super->impl;
    char host[PT_TRANSPORT_HOST_MAX + 1];
    unsigned port;

    if (pt_transport_parse_address(address, host, sizeof(host), &port) != 0)
        return PT_E_CONFIG;
    snprintf(t->bind_address, sizeof(t->bind_address), "%s", address);
    return 0;
}

int pt_transport_set_route(struct raft_uv_transport *super, uint64_t id, const char *address)
{
    struct transport *t = super->impl;
    char host[PT_TRANSPORT_HOST_MAX + 1];
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
