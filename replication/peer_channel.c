/*
 * peer_channel.c - one open peer channel: frames in, frames out.
 *
 * Role: a channel is a byte stream that the transport handed over (pt_transport_connect_peer,
 * or the peer-accept hook for inbound ones), carrying proto/peer.proto's PeerFrame messages in
 * both directions. This file frames them, writes them within the channel's limits, reads and
 * splits them, and passes each one on: requests and responses to the RPC machinery
 * (peer_rpc.c). It knows nothing of what the bodies mean.
 *
 * Wire: each frame is a PeerFrame behind a 4-byte big-endian length (base/bytes.h) of at most
 * PT_PEERS_FRAME_MAX; a longer one, or one that does not decode, closes the channel. Any
 * channel carries requests and responses in both directions; a response goes back on the
 * channel its request came on.
 *
 * Design: struct conn owns the stream (raft_malloc'd by the transport, so raft_free'd here),
 * a growable input buffer that holds at most one partial frame plus one read chunk (grown to
 * the whole frame under way once its length is known, and dropped after a large one), the
 * calls it carries (sent) and the incoming calls not answered yet. A channel whose unsent
 * bytes would pass PT_PEERS_WRITE_MAX is closed: the peer does not read. What input buffers
 * hold beyond BUF_FREE (two read chunks) is charged to one budget for the whole process
 * (PT_PEERS_PARTIAL_BUDGET, an atomic counter: channels of several loops share it), so frames
 * announced large and sent slowly on many channels cannot hold more than that together; the
 * channel whose frame would pass it is closed, as one with a frame too long is.
 *
 * Invariants: a conn is freed only in its stream's close callback; a closing conn has no calls
 * and no incoming calls left and is no peer's `out`.
 * Threads: the loop thread given to pt_peers_init.
 */
#include "peer.h"

#include <jansson.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "log.h"
#include "metrics.h"
#include "peer_int.h"
#include "bytes.h"

_Static_assert(PT_PEERS_FRAME_MAX <= UINT32_MAX - PREFIX, "frame length fits its prefix");
_Static_assert(PT_PEERS_FRAME_MAX + PREFIX + READ_CHUNK <= (size_t)UINT32_MAX,
               "read buffer sizes fit uv_buf_t");

/* Input buffer room not charged to the budget. */
#define BUF_FREE (2 * READ_CHUNK)

static atomic_size_t partial_bytes; /* charged by every channel of the process */

/* Charges c's input buffer at capacity cap; false, with nothing changed, over the budget. */
static bool charge(struct conn *c, size_t cap)
{
    size_t want = cap > BUF_FREE ? cap - BUF_FREE : 0;
    size_t cur = atomic_load(&partial_bytes);

    if (want <= c->charged) {
        atomic_fetch_sub(&partial_bytes, c->charged - want);
        c->charged = want;
        return true;
    }
    do {
        if (cur + (want - c->charged) > PT_PEERS_PARTIAL_BUDGET)
            return false;
    } while (!atomic_compare_exchange_weak(&partial_bytes, &cur, cur + (want - c->charged)));
    c->charged = want;
    return true;
}

/* ---- Writing ------------------------------------------------------------------------------ */

/* Encodes one frame behind its length prefix; NULL when out of memory or too long. */
struct outbuf *peer_encode_frame(uint64_t call_id, uint32_t type, bool response, int status,
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
    pt_put_be32(ob->data, (uint32_t)n);
    portolan__peer_frame__pack(&f, ob->data + PREFIX);
    ob->len = PREFIX + n;
    ob->conn = NULL;
    return ob;
}

static void write_cb(uv_write_t *req, int status)
{
    struct outbuf *ob = (struct outbuf *)req;
    struct conn *c = ob->conn;

    free(ob);
    if (c->closing)
        return;
    if (status != 0) {
        peer_conn_close(c, PT_LOG_DEBUG, uv_strerror(status));
        return;
    }
    if (c->peer->out == c)
        peer_pump(c->peer);
}

/* Writes ob (transferred) to c; on failure closes c and returns an error. */
int peer_conn_write(struct conn *c, struct outbuf *ob)
{
    uv_buf_t buf = uv_buf_init((char *)ob->data, (unsigned)ob->len);
    int rv;

    if (uv_stream_get_write_queue_size(c->stream) + ob->len > PT_PEERS_WRITE_MAX) {
        free(ob);
        peer_conn_close(c, PT_LOG_WARN, "peer does not read (write limit)");
        return PT_E_UNAVAILABLE;
    }
    ob->conn = c;
    rv = uv_write(&ob->req, c->stream, &buf, 1, write_cb);
    if (rv != 0) {
        free(ob);
        peer_conn_close(c, PT_LOG_DEBUG, uv_strerror(rv));
        return PT_E_UNAVAILABLE;
    }
    return 0;
}

int peer_send_frame(struct conn *c, uint64_t call_id, uint32_t type, bool response, int status,
                    const void *body, size_t len)
{
    struct outbuf *ob = peer_encode_frame(call_id, type, response, status, body, len);
    if (ob == NULL) {
        peer_conn_close(c, PT_LOG_ERROR, "out of memory");
        return PT_E_NOMEM;
    }
    return peer_conn_write(c, ob);
}

/* ---- Reading ------------------------------------------------------------------------------ */

static void handle_frame(struct conn *c, const unsigned char *data, size_t len)
{
    Portolan__PeerFrame *f = portolan__peer_frame__unpack(NULL, len, data);

    if (f == NULL) {
        peer_conn_close(c, PT_LOG_WARN, "malformed frame");
        return;
    }
    if (f->response)
        peer_handle_response(c, f);
    else
        peer_handle_request(c, f);
    portolan__peer_frame__free_unpacked(f, NULL);
}

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    size_t need = c->in_len + READ_CHUNK;
    (void)suggested;

    if (c->in_len >= PREFIX) {
        /* the whole frame under way, whose length the last parse checked */
        size_t total = PREFIX + (size_t)pt_get_be32(c->in);
        if (total > need && total <= PREFIX + PT_PEERS_FRAME_MAX)
            need = total;
    }
    if (need > c->in_cap) {
        unsigned char *in;
        if (!charge(c, need)) {
            c->over_budget = true;
            *buf = uv_buf_init(NULL, 0); /* read_cb gets UV_ENOBUFS */
            return;
        }
        in = realloc(c->in, need);
        if (in == NULL) {
            (void)charge(c, c->in_cap);
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
        uint32_t len = pt_get_be32(c->in + off);
        if (len > PT_PEERS_FRAME_MAX) {
            pt_metrics_peer_refused(PT_METRICS_PEER_FRAME);
            peer_conn_close(c, PT_LOG_WARN, "frame too long");
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
        (void)charge(c, 0);
    }
}

static void read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct conn *c = stream->data;
    (void)buf;

    if (nread == 0 || c->closing)
        return;
    if (nread == UV_ENOBUFS && c->over_budget) {
        pt_metrics_peer_refused(PT_METRICS_PEER_FRAME);
        peer_conn_close(c, PT_LOG_WARN, "frames under way over the memory budget");
        return;
    }
    if (nread < 0) {
        peer_conn_close(c, nread == UV_ENOBUFS ? PT_LOG_ERROR : PT_LOG_DEBUG,
                        nread == UV_EOF ? "closed by peer" : uv_strerror((int)nread));
        return;
    }
    c->in_len += (size_t)nread;
    c->last_rx = uv_now(c->p->loop);
    parse(c);
}

/* ---- Life cycle --------------------------------------------------------------------------- */

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
    (void)charge(c, 0);
    free(c);
    peer_handle_closed(p);
}

/* Closes c: its calls fail, its incoming calls are orphaned, an outbound peer backs off. */
void peer_conn_close(struct conn *c, int level, const char *reason)
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
        peer_call_fail_later(c->sent.head, PT_E_UNAVAILABLE);
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
struct conn *peer_conn_open(struct pt_peers *p, struct peer *peer, uv_stream_t *stream,
                            bool outbound)
{
    struct conn *c = calloc(1, sizeof(*c));
    int rv;

    if (c == NULL) {
        uv_close((uv_handle_t *)stream, peer_free_stream_cb);
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
        peer_conn_close(c, PT_LOG_WARN, uv_strerror(rv));
        return NULL;
    }
    peer_send_ping(c);
    return c->closing ? NULL : c;
}
