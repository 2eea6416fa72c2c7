/*
 * peer.c - request/response RPC between nodes over the transport's peer channels (peer.h).
 *
 * Role: turns the byte streams that transport.c hands over (pt_transport_connect_peer, and the
 * peer-accept hook for inbound ones) into calls: a request gets exactly one answer, from the
 * peer or from here (PT_E_UNAVAILABLE). It knows nothing of what the bodies mean; forwarding
 * and read indexes are built on top of it.
 *
 * Wire: frames of proto/peer.proto's PeerFrame, each behind a 4-byte big-endian length of at
 * most PT_PEERS_FRAME_MAX. Any channel carries requests and responses in both directions; a
 * response goes back on the channel its request came on. This node sends its own requests on
 * its one outbound channel per peer only. Pings (type PING, call id 0) go out on every channel
 * every PT_PEERS_PING_MS and at once when it opens; the Pong echoes the sender's monotonic
 * clock, so the RTT needs no state per ping.
 *
 * Design:
 * - struct peer: one per server id, created by pt_peers_set_address or by an inbound channel,
 *   kept until close (at most PT_PEERS_MAX). Its outbound channel goes IDLE -> CONNECTING ->
 *   OPEN; a failed attempt or a dropped channel goes to BACKOFF (a timer), after which a peer
 *   that was ever asked something is reconnected. Requests wait in peer->queue while
 *   CONNECTING, or while OPEN until the channel has a free in-flight slot and its unsent
 *   bytes are below PT_PEERS_WRITE_HIGH; in BACKOFF they fail at once.
 * - struct call: one outgoing request. It owns its encoded frame until it is written (the
 *   write then owns it) and a timer: the timeout, or a 0 ms timer to report a failure decided
 *   inside an API call, so no callback fires from inside one. A written call sits in its
 *   channel's `sent` list and in a hash table by call id, where its answer finds it.
 * - struct conn: one open channel. It owns the stream (raft_malloc'd by the transport, so
 *   raft_free'd here), a growable input buffer that holds at most one partial frame plus one
 *   read chunk, the calls it carries (sent) and the incoming calls not answered yet.
 * - struct pt_peer_call: one incoming request, handed to the application; it points at its
 *   channel until the channel closes, so a late pt_peer_reply is dropped safely.
 * - A connection attempt has its own small record (struct attempt) because the transport
 *   cannot cancel one attempt: pt_peers_close orphans it, and when the transport completes it
 *   the record closes the stream, if any, and frees itself.
 *
 * Invariants:
 * - A request callback fires exactly once, never from inside pt_peers_request, pt_peer_reply,
 *   pt_peers_set_address or pt_peers_close; once it fired the call is in no list and its
 *   timer closes, which frees it.
 * - A call is in at most one place: its peer's queue (QUEUED), or its channel's sent list and
 *   the hash (SENT); FAILING and DONE calls are in none.
 * - A conn is freed only in its stream's close callback; a closing conn has no calls and no
 *   incoming calls left and is no peer's `out`.
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
#include "peer.pb-c.h"
#include "transport.h"

#define PREFIX       4
#define READ_CHUNK   (64 * 1024)
#define HASH_BUCKETS 1024
#define TYPE_INVALID PORTOLAN__PEER_TYPE__PEER_INVALID
#define TYPE_PING    PORTOLAN__PEER_TYPE__PEER_PING
/* A ping sample above this is not believed (a clock that went wrong, or a forged pong). */
#define RTT_SAMPLE_MAX_US (60LL * 1000 * 1000)
/* Ping and Pong encode to at most 11 bytes (one tag, one 10-byte varint). */
#define PING_BUF 16

_Static_assert(PT_PEERS_FRAME_MAX <= UINT32_MAX - PREFIX, "frame length fits its prefix");
_Static_assert(PT_PEERS_FRAME_MAX + PREFIX + READ_CHUNK <= (size_t)UINT32_MAX,
               "read buffer sizes fit uv_buf_t");

enum { PEER_IDLE, PEER_CONNECTING, PEER_OPEN, PEER_BACKOFF };
enum { CALL_NEW, CALL_QUEUED, CALL_SENT, CALL_FAILING, CALL_DONE };

struct conn;
struct peer;

/* One frame being written: the length prefix and the encoded PeerFrame. */
struct outbuf {
    uv_write_t req;
    struct conn *conn;
    size_t len; /* bytes in data */
    unsigned char data[];
};

/* One outgoing request; see the file comment. */
struct call {
    struct pt_peers *p;
    struct call *prev, *next; /* peer->queue or conn->sent */
    struct call *hnext;       /* hash chain while SENT */
    struct peer *peer;        /* NULL when sent to no known peer */
    struct conn *conn;        /* SENT: the channel it was written to */
    uint64_t id;
    int state;
    int status;           /* FAILING: the status to report */
    size_t size;          /* bytes of the encoded frame */
    struct outbuf *frame; /* owned until written */
    pt_peer_reply_cb cb;
    void *arg;
    uv_timer_t timer;
};

struct call_list {
    struct call *head, *tail;
    unsigned n;
    size_t bytes;
};

struct pt_peer_call {
    struct conn *conn; /* NULL once the channel closed: the answer is dropped */
    struct pt_peer_call *prev, *next;
    uint64_t id;
    uint32_t type;
};

struct conn {
    struct pt_peers *p;
    struct conn *prev, *next; /* p->conns, oldest first */
    struct peer *peer;
    bool outbound;
    bool closing;
    uv_stream_t *stream;
    unsigned char *in; /* bytes received and not consumed: in[0..in_len) */
    size_t in_len, in_cap;
    struct call_list sent;
    struct pt_peer_call *incoming;
    unsigned n_incoming;
    uint64_t last_rx; /* loop time of the last byte received, ms */
};

/* A connection attempt in the transport; peer NULL once orphaned by pt_peers_close. */
struct attempt {
    struct peer *peer;
};

struct peer {
    struct pt_peers *p;
    struct peer *next;
    uint64_t id;
    char address[PT_TRANSPORT_ADDRESS_MAX + 1]; /* empty: not known */
    int state;
    bool used;               /* asked something once: keep a channel open */
    struct conn *out;        /* OPEN: the outbound channel */
    struct attempt *attempt; /* CONNECTING */
    struct call_list queue;
    unsigned backoff_ms; /* the next backoff */
    uv_timer_t backoff;
    unsigned n_open; /* open channels to this peer, both directions */
    int64_t rtt_us;  /* -1: unknown */
};

struct pt_peers {
    uv_loop_t *loop;
    struct raft_uv_transport *t;
    int channel; /* PT_CHANNEL_* this service runs on */
    uint64_t self_id;
    pt_peer_request_cb on_request;
    void *arg;
    struct peer *peers;
    unsigned n_peers;
    struct conn *conns, *conns_tail;
    struct call *hash[HASH_BUCKETS];
    uint64_t next_call_id;
    uv_timer_t tick;
    unsigned n_handles; /* handles open, close callbacks pending included */
    bool closing;
    void (*close_cb)(void *arg);
    void *close_arg;
};

static void conn_close(struct conn *c, int level, const char *reason);
static void pump(struct peer *peer);
static void peer_down(struct peer *peer);

/* ---- Small helpers ------------------------------------------------------------------------ */

static void put32(unsigned char *b, uint32_t v)
{
    b[0] = (unsigned char)(v >> 24);
    b[1] = (unsigned char)(v >> 16);
    b[2] = (unsigned char)(v >> 8);
    b[3] = (unsigned char)v;
}

static uint32_t get32(const unsigned char *b)
{
    return ((uint32_t)b[0] << 24) | ((uint32_t)b[1] << 16) | ((uint32_t)b[2] << 8) | b[3];
}

static int64_t now_us(void)
{
    return (int64_t)(uv_hrtime() / 1000);
}

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

/* Encodes one frame behind its length prefix; NULL when out of memory or too long. */
static struct outbuf *encode_frame(uint64_t call_id, uint32_t type, bool response, int status,
                                   const void *body, size_t len)
{
    Portolan__PeerFrame f = PORTOLAN__PEER_FRAME__INIT;
    struct outbuf *ob;
    size_t n;

    f.call_id = call_id;
    f.type = type;
    f.response = response;
    f.status = status;
    f.body.data = (uint8_t *)body;
    f.body.len = body != NULL ? len : 0;
    n = portolan__peer_frame__get_packed_size(&f);
    if (n > PT_PEERS_FRAME_MAX)
        return NULL;
    ob = malloc(sizeof(*ob) + PREFIX + n);
    if (ob == NULL)
        return NULL;
    put32(ob->data, (uint32_t)n);
    portolan__peer_frame__pack(&f, ob->data + PREFIX);
    ob->len = PREFIX + n;
    ob->conn = NULL;
    return ob;
}

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

static void handle_closed(struct pt_peers *p)
{
    assert(p->n_handles > 0);
    p->n_handles--;
    maybe_closed(p);
}

static void tick_close_cb(uv_handle_t *h)
{
    handle_closed(h->data);
}

static void backoff_close_cb(uv_handle_t *h)
{
    struct peer *peer = h->data;
    handle_closed(peer->p);
}

static void free_stream_cb(uv_handle_t *h)
{
    raft_free(h);
}

/* ---- Outgoing calls ----------------------------------------------------------------------- */

static void call_close_cb(uv_handle_t *h)
{
    struct call *c = h->data;
    struct pt_peers *p = c->p;
    free(c->frame);
    free(c);
    handle_closed(p);
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
        pump(peer); /* its in-flight slot is free */
}

/* Detaches c and reports status from its timer, on a later loop iteration. */
static void call_fail_later(struct call *c, int status)
{
    call_detach(c);
    c->state = CALL_FAILING;
    c->status = status;
    uv_timer_start(&c->timer, call_timer_cb, 0, 0);
}

static void fail_queue(struct peer *peer)
{
    while (peer->queue.head != NULL)
        call_fail_later(peer->queue.head, PT_E_UNAVAILABLE);
}

/* ---- Channels: writing -------------------------------------------------------------------- */

static void write_cb(uv_write_t *req, int status)
{
    struct outbuf *ob = (struct outbuf *)req;
    struct conn *c = ob->conn;

    free(ob);
    if (c->closing)
        return;
    if (status != 0) {
        conn_close(c, PT_LOG_DEBUG, uv_strerror(status));
        return;
    }
    if (c->peer->out == c)
        pump(c->peer);
}

/* Writes ob (transferred) to c; on failure closes c and returns an error. */
static int conn_write(struct conn *c, struct outbuf *ob)
{
    uv_buf_t buf = uv_buf_init((char *)ob->data, (unsigned)ob->len);
    int rv;

    if (uv_stream_get_write_queue_size(c->stream) + ob->len > PT_PEERS_WRITE_MAX) {
        free(ob);
        conn_close(c, PT_LOG_WARN, "peer does not read (write limit)");
        return PT_E_UNAVAILABLE;
    }
    ob->conn = c;
    rv = uv_write(&ob->req, c->stream, &buf, 1, write_cb);
    if (rv != 0) {
        free(ob);
        conn_close(c, PT_LOG_DEBUG, uv_strerror(rv));
        return PT_E_UNAVAILABLE;
    }
    return 0;
}

static int send_frame(struct conn *c, uint64_t call_id, uint32_t type, bool response, int status,
                      const void *body, size_t len)
{
    struct outbuf *ob = encode_frame(call_id, type, response, status, body, len);
    if (ob == NULL) {
        conn_close(c, PT_LOG_ERROR, "out of memory");
        return PT_E_NOMEM;
    }
    return conn_write(c, ob);
}

static void send_ping(struct conn *c)
{
    Portolan__Ping ping = PORTOLAN__PING__INIT;
    uint8_t buf[PING_BUF];
    size_t n;

    ping.sent_us = now_us();
    n = portolan__ping__pack(&ping, buf);
    (void)send_frame(c, 0, TYPE_PING, false, 0, buf, n);
}

/* Writes queued requests of peer on its outbound channel, as far as the limits allow. */
static void pump(struct peer *peer)
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
        if (conn_write(c, ob) != 0)
            return; /* c closed: call failed with the rest of c->sent, the queue with c */
    }
}

/* ---- Channels: reading -------------------------------------------------------------------- */

static void answer_ping(struct conn *c, const Portolan__PeerFrame *f)
{
    Portolan__Ping *ping = portolan__ping__unpack(NULL, f->body.len, f->body.data);
    Portolan__Pong pong = PORTOLAN__PONG__INIT;
    uint8_t buf[PING_BUF];
    size_t n;

    if (ping == NULL) {
        conn_close(c, PT_LOG_WARN, "malformed ping");
        return;
    }
    pong.sent_us = ping->sent_us;
    portolan__ping__free_unpacked(ping, NULL);
    n = portolan__pong__pack(&pong, buf);
    (void)send_frame(c, f->call_id, TYPE_PING, true, 0, buf, n);
}

static void take_pong(struct conn *c, const Portolan__PeerFrame *f)
{
    Portolan__Pong *pong = portolan__pong__unpack(NULL, f->body.len, f->body.data);
    struct peer *peer = c->peer;
    int64_t now = now_us(), sent, sample;

    if (pong == NULL) {
        conn_close(c, PT_LOG_WARN, "malformed pong");
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

static void handle_request(struct conn *c, const Portolan__PeerFrame *f)
{
    struct pt_peers *p = c->p;
    struct pt_peer_call *call;

    if (f->type == TYPE_INVALID) {
        conn_close(c, PT_LOG_WARN, "request without a type");
        return;
    }
    if (f->type == TYPE_PING) {
        answer_ping(c, f);
        return;
    }
    if (p->on_request == NULL) {
        (void)send_frame(c, f->call_id, f->type, true, PT_E_UNSUPPORTED, NULL, 0);
        return;
    }
    if (c->n_incoming >= PT_PEERS_INFLIGHT_MAX) {
        (void)send_frame(c, f->call_id, f->type, true, PT_E_TOOMANYREQUESTS, NULL, 0);
        return;
    }
    call = calloc(1, sizeof(*call));
    if (call == NULL) {
        (void)send_frame(c, f->call_id, f->type, true, PT_E_NOMEM, NULL, 0);
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

static void handle_response(struct conn *c, const Portolan__PeerFrame *f)
{
    struct call *call;

    if (f->type == TYPE_PING) {
        take_pong(c, f);
        return;
    }
    call = hash_find(c->p, f->call_id);
    if (call == NULL || call->conn != c)
        return; /* answered after its timeout: dropped */
    call_detach(call);
    call_complete(call, sane_status(f->status), f->body.data, f->body.len);
    if (c->peer->out == c)
        pump(c->peer);
}

static void handle_frame(struct conn *c, const unsigned char *data, size_t len)
{
    Portolan__PeerFrame *f = portolan__peer_frame__unpack(NULL, len, data);

    if (f == NULL) {
        conn_close(c, PT_LOG_WARN, "malformed frame");
        return;
    }
    if (f->response)
        handle_response(c, f);
    else
        handle_request(c, f);
    portolan__peer_frame__free_unpacked(f, NULL);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    size_t need = c->in_len + READ_CHUNK;
    (void)suggested;

    if (c->in_len >= PREFIX) {
        /* the whole frame under way, whose length the last parse checked */
        size_t total = PREFIX + (size_t)get32(c->in);
        if (total > need && total <= PREFIX + PT_PEERS_FRAME_MAX)
            need = total;
    }
    if (need > c->in_cap) {
        unsigned char *in = realloc(c->in, need);
        if (in == NULL) {
            *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
            return;
        }
        c->in = in;
        c->in_cap = need;
    }
    *buf = uv_buf_init((char *)c->in + c->in_len, (unsigned)(c->in_cap - c->in_len));
}

/* Handles every complete frame in c->in and keeps the partial one at its start. */
static void parse(struct conn *c)
{
    size_t off = 0;

    while (!c->closing && c->in_len - off >= PREFIX) {
        uint32_t len = get32(c->in + off);
        if (len > PT_PEERS_FRAME_MAX) {
            conn_close(c, PT_LOG_WARN, "frame too long");
            return;
        }
        if (c->in_len - off - PREFIX < len)
            break;
        handle_frame(c, c->in + off + PREFIX, len);
        off += PREFIX + len;
    }
    if (c->closing)
        return; /* the buffer goes with c */
    if (off > 0) {
        memmove(c->in, c->in + off, c->in_len - off);
        c->in_len -= off;
    }
    if (c->in_len == 0 && c->in_cap > 2 * READ_CHUNK) {
        free(c->in); /* a large frame passed: do not keep its buffer */
        c->in = NULL;
        c->in_cap = 0;
    }
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    (void)buf;

    if (nread == 0 || c->closing)
        return;
    if (nread < 0) {
        conn_close(c, nread == UV_ENOBUFS ? PT_LOG_ERROR : PT_LOG_DEBUG,
                   nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
        return;
    }
    c->in_len += (size_t)nread;
    c->last_rx = uv_now(c->p->loop);
    parse(c);
}

/* ---- Channels: life cycle ----------------------------------------------------------------- */

static void conn_close_cb(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct pt_peers *p = c->p;

    raft_free(h);
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        p->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    else
        p->conns_tail = c->prev;
    free(c->in);
    free(c);
    handle_closed(p);
}

/* Closes c: its calls fail, its incoming calls are orphaned, an outbound peer backs off. */
static void conn_close(struct conn *c, int level, const char *reason)
{
    struct peer *peer = c->peer;

    if (c->closing)
        return;
    c->closing = true;
    if (pt_log_enabled(level)) {
        pt_log(level, "peer channel closed", "{s:I,s:s,s:s}", "peer_id", (json_int_t)peer->id,
               "direction", c->outbound ? "out" : "in", "reason", reason);
    }
    uv_read_stop(c->stream);
    uv_close((uv_handle_t *)c->stream, conn_close_cb);
    while (c->sent.head != NULL)
        call_fail_later(c->sent.head, PT_E_UNAVAILABLE);
    for (struct pt_peer_call *call = c->incoming; call != NULL; call = call->next)
        call->conn = NULL;
    c->incoming = NULL;
    c->n_incoming = 0;
    if (--peer->n_open == 0)
        peer->rtt_us = -1;
    if (peer->out == c) {
        peer->out = NULL;
        peer_down(peer);
    }
}

/* Takes over stream (transferred) as a channel to peer; NULL (stream closed) on failure. */
static struct conn *conn_open(struct pt_peers *p, struct peer *peer, uv_stream_t *stream,
                              bool outbound)
{
    struct conn *c = calloc(1, sizeof(*c));
    int rv;

    if (c == NULL) {
        uv_close((uv_handle_t *)stream, free_stream_cb);
        pt_log(PT_LOG_ERROR, "peer channel dropped: out of memory", NULL);
        return NULL;
    }
    c->p = p;
    c->peer = peer;
    c->outbound = outbound;
    c->stream = stream;
    c->last_rx = uv_now(p->loop);
    stream->data = c;
    c->prev = p->conns_tail;
    if (p->conns_tail != NULL)
        p->conns_tail->next = c;
    else
        p->conns = c;
    p->conns_tail = c;
    p->n_handles++;
    peer->n_open++;
    if (outbound) {
        peer->out = c;
        peer->state = PEER_OPEN;
        peer->backoff_ms = PT_PEERS_BACKOFF_MIN_MS;
    }
    if (pt_log_enabled(PT_LOG_DEBUG)) {
        pt_log(PT_LOG_DEBUG, "peer channel open", "{s:I,s:s}", "peer_id", (json_int_t)peer->id,
               "direction", outbound ? "out" : "in");
    }
    rv = uv_read_start(stream, alloc_cb, read_cb);
    if (rv != 0) {
        conn_close(c, PT_LOG_WARN, uv_strerror(rv));
        return NULL;
    }
    send_ping(c);
    return c->closing ? NULL : c;
}

/* ---- Peers and their outbound channel ----------------------------------------------------- */

static struct peer *peer_find(struct pt_peers *p, uint64_t id)
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

static void peer_connect(struct peer *peer);

static void backoff_cb(uv_timer_t *timer)
{
    struct peer *peer = timer->data;

    peer->state = PEER_IDLE;
    if (peer->used && peer->address[0] != '\0')
        peer_connect(peer);
}

/* The outbound channel failed or dropped: fail what waits for it and back off. */
static void peer_down(struct peer *peer)
{
    peer->state = PEER_IDLE;
    fail_queue(peer);
    if (peer->p->closing)
        return;
    peer->state = PEER_BACKOFF;
    uv_timer_start(&peer->backoff, backoff_cb, peer->backoff_ms, 0);
    peer->backoff_ms *= 2;
    if (peer->backoff_ms > PT_PEERS_BACKOFF_MAX_MS)
        peer->backoff_ms = PT_PEERS_BACKOFF_MAX_MS;
}

static void connected_cb(void *arg, int status, uv_stream_t *stream)
{
    struct attempt *a = arg;
    struct peer *peer = a->peer;

    free(a);
    if (peer == NULL) { /* orphaned by pt_peers_close */
        if (stream != NULL)
            uv_close((uv_handle_t *)stream, free_stream_cb);
        return;
    }
    peer->attempt = NULL;
    if (status != 0) {
        if (pt_log_enabled(PT_LOG_DEBUG)) {
            pt_log(PT_LOG_DEBUG, "peer channel not opened", "{s:I,s:s,s:s}", "peer_id",
                   (json_int_t)peer->id, "address", peer->address, "error",
                   status == PT_TRANSPORT_CANCELED ? "canceled" : pt_err_message(status));
        }
        peer_down(peer);
        return;
    }
    if (conn_open(peer->p, peer, stream, true) == NULL) {
        if (peer->state == PEER_CONNECTING)
            peer_down(peer); /* else conn_close already did */
        return;
    }
    pump(peer);
}

/* Starts the outbound channel of an IDLE peer; a failure to start backs off at once. */
static void peer_connect(struct peer *peer)
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
        if (pt_log_enabled(PT_LOG_DEBUG)) {
            pt_log(PT_LOG_DEBUG, "peer channel not opened", "{s:I,s:s,s:s}", "peer_id",
                   (json_int_t)peer->id, "address", peer->address, "error", pt_err_message(rv));
        }
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
        uv_close((uv_handle_t *)stream, free_stream_cb);
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
        conn_close(oldest, PT_LOG_INFO, "replaced by a newer inbound channel");
    (void)conn_open(p, peer, stream, false);
}

static void tick_cb(uv_timer_t *timer)
{
    struct pt_peers *p = timer->data;
    uint64_t now = uv_now(p->loop);

    for (struct conn *c = p->conns; c != NULL; c = c->next) {
        if (c->closing)
            continue;
        if (now - c->last_rx >= PT_PEERS_IDLE_MS)
            conn_close(c, PT_LOG_WARN, "silent peer (idle limit)");
        else
            send_ping(c);
    }
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
    uv_timer_start(&p->tick, tick_cb, PT_PEERS_PING_MS, PT_PEERS_PING_MS);
    p->n_handles = 1;
    pt_transport_set_peer_accept(t, channel, accept_cb, p);
    *out = p;
    return 0;
}

int pt_peers_set_address(struct pt_peers *p, uint64_t id, const char *address)
{
    char host[PT_TRANSPORT_HOST_MAX + 1];
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
    c->frame = encode_frame(c->id, type, false, 0, body, len);
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
        call_fail_later(c, PT_E_UNAVAILABLE);
        return 0;
    }
    peer->used = true;
    c->peer = peer;
    c->state = CALL_QUEUED;
    list_push(&peer->queue, c);
    if (peer->state == PEER_IDLE)
        peer_connect(peer); /* on failure the queue, c included, fails */
    else if (peer->state == PEER_OPEN)
        pump(peer);
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
        (void)send_frame(c, call->id, call->type, true, sane_status(status), body, len);
    }
    free(call);
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

int64_t pt_peers_rtt_us(struct pt_peers *p, uint64_t id)
{
    struct peer *peer = peer_find(p, id);
    return peer != NULL ? peer->rtt_us : -1;
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
        fail_queue(peer);
        uv_close((uv_handle_t *)&peer->backoff, backoff_close_cb);
    }
    for (struct conn *c = p->conns; c != NULL; c = c->next)
        conn_close(c, PT_LOG_DEBUG, "shutdown");
}
