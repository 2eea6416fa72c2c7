/*
 * test_peer_channels.c - the channels of the peer RPC service (replication/peer.c) over real
 * transports on loopback and one libuv loop, between nodes of support/peer_node.h and raw
 * peer channels opened straight through the transport: raft connections still reach raft
 * while peer channels never do, and are refused once the peers closed; malformed or oversized
 * frames close the channel while the node keeps serving others; and incoming requests beyond
 * the in-flight limit are refused with PT_E_TOOMANYREQUESTS, answers going back on the
 * channel the request came on.
 * Every test ends with uv_loop_close() == 0 (no handle left open); ASan checks memory.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include <raft.h>
#include <raft/uv.h>

#include "err.h"
#include "peer.h"
#include "peer.pb-c.h"
#include "support/loop.h"
#include "support/loopback.h"
#include "support/peer_node.h"
#include "transport.h"

static uv_loop_t loop;

/* ---- Loop helpers ------------------------------------------------------------------------- */

#define RUN_UNTIL_GE(ptr, n, ms) PT_LOOP_RUN_UNTIL_GE(&loop, (ptr), (n), (ms))
#define RUN_FOR(ms)              PT_LOOP_RUN_FOR(&loop, (ms))

/* ---- Tests -------------------------------------------------------------------------------- */

struct outcome {
    struct raft_uv_connect req;
    int calls;
    int status;
    uv_stream_t *stream;
};

static void raft_connect_cb(struct raft_uv_connect *req, uv_stream_t *stream, int status)
{
    struct outcome *o = req->data;
    o->calls++;
    o->status = status;
    o->stream = stream;
}

struct peer_outcome {
    int calls;
    int status;
    uv_stream_t *stream;
};

static void peer_connect_cb(void *arg, int status, uv_stream_t *stream)
{
    struct peer_outcome *o = arg;
    o->calls++;
    o->status = status;
    o->stream = stream;
}

/* Both kinds of connection on one port: raft's reach the raft accept callback, peer channels
 * never do; after pt_peers_close, peer channels are refused by the transport. */
static void test_channels_separate(void **state)
{
    struct pt_peer_node a, b;
    struct outcome o;
    struct peer_outcome po;
    struct pt_peer_answer r;
    unsigned ports[2];
    (void)state;

    memset(&o, 0, sizeof(o));
    memset(&po, 0, sizeof(po));
    memset(&r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 2);
    pt_peer_node_start(&a, 1, ports[0]);
    pt_peer_node_start(&b, 2, ports[1]);
    pt_peer_node_link(&a, &b);

    o.req.data = &o;
    assert_int_equal(b.net.t.connect(&b.net.t, &o.req, 1, a.net.address, raft_connect_cb), 0);
    assert_true(RUN_UNTIL_GE(&o.calls, 1, 2000));
    assert_int_equal(o.status, 0);
    assert_true(RUN_UNTIL_GE(&a.net.raft_accepted, 1, 2000));

    pt_peer_node_propose(&b, 1, "over the peer channel", 2000, &r);
    assert_true(RUN_UNTIL_GE(&r.calls, 1, 2000));
    assert_int_equal(r.status, 0);
    assert_int_equal(a.requests, 1);
    RUN_FOR(50);
    assert_int_equal(a.net.raft_accepted, 1);

    /* a's peers closed: the transport refuses peer channels, raft ones still work */
    pt_peer_node_close_peers(&a);
    assert_int_equal(pt_transport_connect_peer(&b.net.t, 1, a.net.address, PT_CHANNEL_PEER,
                                               peer_connect_cb, &po),
                     0);
    assert_true(RUN_UNTIL_GE(&po.calls, 1, 2000));
    assert_int_equal(po.status, PT_E_UNAVAILABLE);
    uv_close((uv_handle_t *)o.stream, pt_loopback_free_stream_cb);
    memset(&o, 0, sizeof(o));
    o.req.data = &o;
    assert_int_equal(b.net.t.connect(&b.net.t, &o.req, 1, a.net.address, raft_connect_cb), 0);
    assert_true(RUN_UNTIL_GE(&o.calls, 1, 2000));
    assert_int_equal(o.status, 0);
    assert_true(RUN_UNTIL_GE(&a.net.raft_accepted, 2, 2000));
    uv_close((uv_handle_t *)o.stream, pt_loopback_free_stream_cb);

    pt_peer_node_stop(&a);
    pt_peer_node_stop(&b);
    pt_peer_answers_free(&r, 1);
}

struct sink {
    unsigned char buf[256];
    size_t len;
    int ended;
};

static void sink_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct sink *s = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)s->buf + s->len, (unsigned)(sizeof(s->buf) - s->len));
}

static void sink_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct sink *s = stream->data;
    (void)buf;
    if (nread > 0) {
        s->len += (size_t)nread;
        if (s->len == sizeof(s->buf))
            s->len = 0; /* only the end matters */
    } else if (nread < 0) {
        s->ended = 1;
        uv_read_stop(stream);
    }
}

static void ignore_write_cb(uv_write_t *w, int status)
{
    (void)status;
    free(w);
}

static void raw_write(uv_stream_t *stream, const void *bytes, size_t len)
{
    uv_write_t *w = malloc(sizeof(*w) + len);
    uv_buf_t b;
    assert_non_null(w);
    memcpy(w + 1, bytes, len);
    b = uv_buf_init((char *)(w + 1), (unsigned)len);
    assert_int_equal(uv_write(w, stream, &b, 1, ignore_write_cb), 0);
}

/* Frames that break the protocol close the channel: an announced length beyond the limit,
 * bytes that do not decode, a request without a type. The node keeps serving others. */
static void test_protocol_errors(void **state)
{
    struct pt_peer_node a, b;
    struct pt_loopback_transport x;
    struct peer_outcome po;
    struct sink sink;
    struct pt_peer_answer r;
    unsigned ports[3];
    /* a valid request frame of type ECHO, call id 5, body "hi" */
    Portolan__PeerFrame f = PORTOLAN__PEER_FRAME__INIT;
    unsigned char good[64];
    size_t good_len;
    (void)state;

    f.call_id = 5;
    f.type = PT_PEER_NODE_ECHO;
    f.body.data = (uint8_t *)"hi";
    f.body.len = 2;
    good_len = portolan__peer_frame__pack(&f, good + 4);
    good[0] = good[1] = good[2] = 0;
    good[3] = (unsigned char)good_len;
    good_len += 4;

    memset(&r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 3);
    pt_peer_node_start(&a, 1, ports[0]);
    pt_peer_node_start(&b, 2, ports[1]);
    pt_peer_node_link(&a, &b);
    pt_loopback_transport_init(&x, &loop, PT_PEER_NODE_CLUSTER, 9, ports[2]);

    const struct {
        const char *what;
        const unsigned char *bytes;
        size_t len;
    } bad[] = {
        {"length beyond the limit", (const unsigned char *)"\x01\x00\x00\x01", 4},
        {"does not decode", (const unsigned char *)"\x00\x00\x00\x03\xff\xff\xff", 7},
        {"request without a type", (const unsigned char *)"\x00\x00\x00\x02\x08\x07", 6},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        memset(&po, 0, sizeof(po));
        memset(&sink, 0, sizeof(sink));
        assert_int_equal(pt_transport_connect_peer(&x.t, 1, a.net.address, PT_CHANNEL_PEER,
                                                   peer_connect_cb, &po),
                         0);
        assert_true(RUN_UNTIL_GE(&po.calls, 1, 2000));
        assert_int_equal(po.status, 0);
        po.stream->data = &sink;
        assert_int_equal(uv_read_start(po.stream, sink_alloc_cb, sink_read_cb), 0);
        /* a well-formed request first: answered on this channel */
        raw_write(po.stream, good, good_len);
        raw_write(po.stream, bad[i].bytes, bad[i].len);
        if (!RUN_UNTIL_GE(&sink.ended, 1, 2000))
            fail_msg("case \"%s\": channel not closed", bad[i].what);
        assert_int_equal(a.last_from, 9);
        assert_int_equal(a.last_type, PT_PEER_NODE_ECHO);
        uv_close((uv_handle_t *)po.stream, pt_loopback_free_stream_cb);
    }
    assert_int_equal(a.requests, 3);

    /* a still serves b */
    assert_int_equal(pt_peer_node_request(&b, 1, PT_PEER_NODE_ECHO, "ok", 2, 2000, &r), 0);
    assert_true(RUN_UNTIL_GE(&r.calls, 1, 2000));
    assert_int_equal(r.status, 0);

    pt_loopback_transport_close(&x, &loop, 2000);
    pt_peer_node_stop(&a);
    pt_peer_node_stop(&b);
    pt_peer_answers_free(&r, 1);
}

struct collector {
    unsigned char *buf;
    size_t len, cap;
    int ended;
};

static void collector_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct collector *c = h->data;
    (void)suggested;
    if (c->cap - c->len < 4096) {
        c->cap = c->cap * 2 + 65536;
        c->buf = realloc(c->buf, c->cap);
        assert_non_null(c->buf);
    }
    *buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(c->cap - c->len));
}

static void collector_read_cb(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct collector *c = stream->data;
    (void)buf;
    if (nread > 0) {
        c->len += (size_t)nread;
    } else if (nread < 0) {
        c->ended = 1;
        uv_read_stop(stream);
    }
}

/* Decodes the responses (pongs aside) in c into ids/statuses; returns how many. */
static int collected_responses(const struct collector *c, uint64_t *ids, int *statuses, int max)
{
    size_t off = 0;
    int n = 0;

    while (c->len - off >= 4) {
        size_t len = ((size_t)c->buf[off] << 24) | ((size_t)c->buf[off + 1] << 16) |
                     ((size_t)c->buf[off + 2] << 8) | c->buf[off + 3];
        Portolan__PeerFrame *f;
        if (c->len - off - 4 < len)
            break;
        f = portolan__peer_frame__unpack(NULL, len, c->buf + off + 4);
        assert_non_null(f);
        if (f->response && f->type != PORTOLAN__PEER_TYPE__PEER_PING) {
            assert_true(n < max);
            ids[n] = f->call_id;
            statuses[n] = f->status;
            n++;
        }
        portolan__peer_frame__free_unpacked(f, NULL);
        off += 4 + len;
    }
    return n;
}

struct responses_at_least {
    const struct collector *c;
    int n;
};

static bool responses_pred(void *arg)
{
    struct responses_at_least *w = arg;
    uint64_t ids[8];
    int statuses[8];
    return collected_responses(w->c, ids, statuses, 8) >= w->n;
}

/* The server side of the in-flight limit, seen from a raw channel that ignores it: requests
 * beyond PT_PEERS_INFLIGHT_MAX unanswered are refused at once with PT_E_TOOMANYREQUESTS; an
 * answer frees a slot; answers go back on the channel the request came on. */
static void test_incoming_limit(void **state)
{
    enum { N = PT_PEERS_INFLIGHT_MAX + 1 };
    struct pt_peer_node a;
    struct pt_loopback_transport x;
    struct peer_outcome po;
    struct collector col;
    unsigned ports[2];
    unsigned char *frames = malloc(N * 64);
    size_t frames_len = 0;
    uint64_t ids[8];
    int statuses[8];
    Portolan__Propose pr = PORTOLAN__PROPOSE__INIT;
    uint8_t body[16];
    size_t body_len;
    (void)state;

    assert_non_null(frames);
    pr.command.data = (uint8_t *)"hold";
    pr.command.len = 4;
    body_len = portolan__propose__pack(&pr, body);
    for (int i = 1; i <= N; i++) {
        Portolan__PeerFrame f = PORTOLAN__PEER_FRAME__INIT;
        size_t n;
        f.call_id = (uint64_t)i;
        f.type = PT_PEER_NODE_PROPOSE;
        f.body.data = body;
        f.body.len = body_len;
        n = portolan__peer_frame__pack(&f, frames + frames_len + 4);
        frames[frames_len] = frames[frames_len + 1] = frames[frames_len + 2] = 0;
        frames[frames_len + 3] = (unsigned char)n;
        frames_len += 4 + n;
    }

    memset(&col, 0, sizeof(col));
    memset(&po, 0, sizeof(po));
    pt_loopback_free_ports(ports, 2);
    pt_peer_node_start(&a, 1, ports[0]);
    pt_loopback_transport_init(&x, &loop, PT_PEER_NODE_CLUSTER, 9, ports[1]);
    assert_int_equal(
        pt_transport_connect_peer(&x.t, 1, a.net.address, PT_CHANNEL_PEER, peer_connect_cb, &po),
        0);
    assert_true(RUN_UNTIL_GE(&po.calls, 1, 2000));
    assert_int_equal(po.status, 0);
    po.stream->data = &col;
    assert_int_equal(uv_read_start(po.stream, collector_alloc_cb, collector_read_cb), 0);

    raw_write(po.stream, frames, frames_len);
    assert_true(RUN_UNTIL_GE(&a.n_held, PT_PEERS_INFLIGHT_MAX, 2000));
    assert_true(
        pt_loop_run_until(&loop, responses_pred, &(struct responses_at_least){&col, 1}, 2000));
    assert_int_equal(collected_responses(&col, ids, statuses, 8), 1);
    assert_int_equal(ids[0], N);
    assert_int_equal(statuses[0], PT_E_TOOMANYREQUESTS);
    assert_int_equal(a.n_held, PT_PEERS_INFLIGHT_MAX);
    assert_int_equal(a.last_from, 9);

    pt_peer_node_reply(a.held[0], PT_E_DENIED, NULL, 0);
    assert_true(
        pt_loop_run_until(&loop, responses_pred, &(struct responses_at_least){&col, 2}, 2000));
    assert_int_equal(collected_responses(&col, ids, statuses, 8), 2);
    assert_int_equal(ids[1], 1);
    assert_int_equal(statuses[1], PT_E_DENIED);
    a.held[0] = a.held[--a.n_held];

    /* the channel goes away: what a still holds is answered into the void */
    uv_close((uv_handle_t *)po.stream, pt_loopback_free_stream_cb);
    RUN_FOR(50);
    pt_loopback_transport_close(&x, &loop, 2000);
    pt_peer_node_stop(&a);
    free(col.buf);
    free(frames);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_channels_separate, pt_peer_node_setup,
                                                 pt_peer_node_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_protocol_errors, pt_peer_node_setup,
                                                 pt_peer_node_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_incoming_limit, pt_peer_node_setup,
                                                 pt_peer_node_teardown, &loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
