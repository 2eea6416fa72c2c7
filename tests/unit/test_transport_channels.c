/*
 * test_transport_channels.c - peer channels over the Raft transport (replication/transport.c),
 * on real sockets and one libuv loop: a HELLO with flag PEER (or BULK) reaches the peer-accept
 * hook of that channel and never raft, refused while no hook is set; the WELCOME echoes the
 * flag and a WELCOME with other flags is refused by the connecting side; unknown flag bits
 * are refused; raft connections are unaffected; closing cancels a pending peer connect. The
 * test ends with uv_loop_close() == 0, i.e. no handle left open; ASan checks that no memory is
 * left behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <uv.h>

#include <raft.h>
#include <raft/uv.h>

#include "err.h"
#include "support/handshake_probe.h"
#include "support/loop.h"
#include "support/loopback.h"
#include "support/transport_side.h"
#include "transport.h"

#define CLUSTER "test-cluster"

static uv_loop_t loop;

/* ---- Loop helpers ------------------------------------------------------------------------- */

#define RUN_UNTIL_GE(ptr, n, ms) PT_LOOP_RUN_UNTIL_GE(&loop, (ptr), (n), (ms))
#define RUN_FOR(ms)              PT_LOOP_RUN_FOR(&loop, (ms))

/* ---- (f) Peer channels -------------------------------------------------------------------- */

struct peer_side {
    int accepted;
    uint64_t id;
    char address[PT_CLUSTER_ADDRESS_MAX + 1];
    uv_stream_t *streams[4];
};

static void peer_accept_cb(void *arg, uint64_t id, const char *address, uv_stream_t *stream)
{
    struct peer_side *ps = arg;
    assert_non_null(stream);
    assert_true(ps->accepted < 4);
    ps->streams[ps->accepted++] = stream;
    ps->id = id;
    snprintf(ps->address, sizeof(ps->address), "%s", address);
}

struct peer_outcome {
    int calls;
    int status;
    uv_stream_t *stream;
    int seq;
};

static void peer_connect_cb(void *arg, int status, uv_stream_t *stream)
{
    struct peer_outcome *o = arg;
    o->calls++;
    o->status = status;
    o->stream = stream;
    o->seq = ++pt_side_seq;
    if (status != 0)
        assert_null(stream);
    else
        assert_non_null(stream);
}

static void channel_connect_and_wait(struct pt_side *s, struct peer_outcome *o, uint64_t id,
                                     const char *address, int channel)
{
    memset(o, 0, sizeof(*o));
    assert_int_equal(pt_transport_connect_peer(&s->t, id, address, channel, peer_connect_cb, o), 0);
    assert_int_equal(o->calls, 0); /* never from inside connect */
    assert_true(RUN_UNTIL_GE(&o->calls, 1, 5000));
    assert_int_equal(o->calls, 1);
}

static void peer_connect_and_wait(struct pt_side *s, struct peer_outcome *o, uint64_t id,
                                  const char *address)
{
    channel_connect_and_wait(s, o, id, address, PT_CHANNEL_PEER);
}

/* Accepts one connection and writes fixed bytes to it at once. */
struct answerer {
    uv_tcp_t server;
    uv_tcp_t client;
    uv_write_t w;
    unsigned char out[256];
    size_t out_len;
    int n;
    int closed;
};

static void answerer_conn_cb(uv_stream_t *server, int status)
{
    struct answerer *a = server->data;
    uv_buf_t b = uv_buf_init((char *)a->out, (unsigned)a->out_len);
    assert_int_equal(status, 0);
    assert_int_equal(a->n, 0);
    uv_tcp_init(&loop, &a->client);
    a->client.data = a;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&a->client), 0);
    a->n++;
    assert_int_equal(uv_write(&a->w, (uv_stream_t *)&a->client, &b, 1, pt_probe_write_cb), 0);
}

static void answerer_close_cb(uv_handle_t *h)
{
    struct answerer *a = h->data;
    a->closed++;
}

/* A WELCOME from server id with the given flags, for CLUSTER. */
static void answerer_start(struct answerer *a, unsigned port, uint64_t id, unsigned char flags)
{
    struct sockaddr_in sa;
    size_t clen = strlen(CLUSTER);

    memset(a, 0, sizeof(*a));
    memcpy(a->out, "\x89PTRAFT\n\x00\x01\x02", 11);
    a->out[11] = flags;
    a->out[15] = (unsigned char)(10 + clen);
    for (int i = 0; i < 8; i++)
        a->out[16 + i] = (unsigned char)(id >> (56 - 8 * i));
    a->out[25] = (unsigned char)clen;
    memcpy(a->out + 26, CLUSTER, clen);
    a->out_len = 26 + clen;
    assert_int_equal(uv_ip4_addr("127.0.0.1", (int)port, &sa), 0);
    uv_tcp_init(&loop, &a->server);
    a->server.data = a;
    assert_int_equal(uv_tcp_bind(&a->server, (struct sockaddr *)&sa, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&a->server, 16, answerer_conn_cb), 0);
}

static void answerer_stop(struct answerer *a)
{
    int want = 1 + a->n;
    if (a->n > 0)
        uv_close((uv_handle_t *)&a->client, answerer_close_cb);
    uv_close((uv_handle_t *)&a->server, answerer_close_cb);
    assert_true(RUN_UNTIL_GE(&a->closed, want, 2000));
}

/* Peer channels share the raft listener: HELLO flag PEER routes a connection to the peer-accept
 * hook instead of raft (refused while no hook is set), the WELCOME echoes the flag, unknown
 * flag bits are refused, a WELCOME with other flags is refused by the connecting side, raft
 * connections are unaffected, and closing cancels a pending peer connect. */
static void test_peer_channel(void **state)
{
    struct pt_side a, b, c;
    struct peer_side ps, bulk;
    struct peer_outcome po;
    struct pt_outcome o;
    struct pt_probe p;
    struct pt_loopback_silent s;
    struct answerer ans;
    struct raft_uv_transport bare;
    unsigned ports[5];
    char addr_a[64], addr_b[64], addr_c[64], addr_s[64], addr_w[64];
    unsigned char msg[512];
    size_t len;
    (void)state;

    pt_loopback_free_ports(ports, 5);
    snprintf(addr_a, sizeof(addr_a), "localhost:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "localhost:%u", ports[1]);
    snprintf(addr_c, sizeof(addr_c), "localhost:%u", ports[2]);
    snprintf(addr_s, sizeof(addr_s), "127.0.0.1:%u", ports[3]);
    snprintf(addr_w, sizeof(addr_w), "127.0.0.1:%u", ports[4]);
    memset(&ps, 0, sizeof(ps));
    pt_side_init(&a, &loop, CLUSTER, 1, addr_a);
    pt_side_listen(&a);
    pt_side_init(&b, &loop, CLUSTER, 2, addr_b);

    /* synchronous refusals never call the callback */
    memset(&po, 0, sizeof(po));
    assert_int_equal(pt_transport_connect_peer(&b.t, 1, addr_a, PT_CHANNEL_PEER, NULL, &po),
                     PT_E_CONFIG);
    assert_int_equal(
        pt_transport_connect_peer(&b.t, 0, addr_a, PT_CHANNEL_PEER, peer_connect_cb, &po),
        PT_E_CONFIG);
    assert_int_equal(
        pt_transport_connect_peer(&b.t, 1, "no-port", PT_CHANNEL_PEER, peer_connect_cb, &po),
        PT_E_CONFIG);
    memset(&bare, 0, sizeof(bare));
    assert_int_equal(pt_transport_init(&bare, &loop, CLUSTER), 0);
    assert_int_equal(
        pt_transport_connect_peer(&bare, 1, addr_a, PT_CHANNEL_PEER, peer_connect_cb, &po),
        PT_E_INTERNAL);
    pt_transport_close(&bare);
    RUN_FOR(20);
    assert_int_equal(po.calls, 0);

    /* no hook on a: the peer channel is refused, raft hears nothing */
    peer_connect_and_wait(&b, &po, 1, addr_a);
    assert_int_equal(po.status, PT_E_UNAVAILABLE);
    RUN_FOR(20);
    assert_int_equal(a.n_accepted, 0);

    /* with the hook: the channel reaches it, not raft, and carries bytes both ways */
    pt_transport_set_peer_accept(&a.t, PT_CHANNEL_PEER, peer_accept_cb, &ps);
    peer_connect_and_wait(&b, &po, 1, addr_a);
    assert_int_equal(po.status, 0);
    assert_true(RUN_UNTIL_GE(&ps.accepted, 1, 2000));
    assert_int_equal(ps.id, 2);
    assert_string_equal(ps.address, addr_b);
    assert_int_equal(a.n_accepted, 0);
    pt_side_check_data_flows(po.stream, ps.streams[0], "peer request");
    pt_side_check_data_flows(ps.streams[0], po.stream, "peer response");
    uv_close((uv_handle_t *)po.stream, pt_loopback_free_stream_cb);

    /* a raft connection still reaches raft, and only raft */
    pt_side_connect_and_wait(&b, &o, 1, addr_a);
    assert_int_equal(o.status, 0);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 1, 2000));
    assert_int_equal(ps.accepted, 1);
    uv_close((uv_handle_t *)o.stream, pt_loopback_free_stream_cb);

    /* a BULK channel needs its own hook: refused while only PEER's is set, then it reaches
     * the BULK hook and not PEER's */
    channel_connect_and_wait(&b, &po, 1, addr_a, PT_CHANNEL_BULK);
    assert_int_equal(po.status, PT_E_UNAVAILABLE);
    RUN_FOR(20);
    assert_int_equal(ps.accepted, 1);
    memset(&bulk, 0, sizeof(bulk));
    pt_transport_set_peer_accept(&a.t, PT_CHANNEL_BULK, peer_accept_cb, &bulk);
    channel_connect_and_wait(&b, &po, 1, addr_a, PT_CHANNEL_BULK);
    assert_int_equal(po.status, 0);
    assert_true(RUN_UNTIL_GE(&bulk.accepted, 1, 2000));
    assert_int_equal(bulk.id, 2);
    assert_int_equal(ps.accepted, 1);
    pt_side_check_data_flows(po.stream, bulk.streams[0], "bulk request");
    uv_close((uv_handle_t *)po.stream, pt_loopback_free_stream_cb);
    uv_close((uv_handle_t *)bulk.streams[0], pt_loopback_free_stream_cb);
    pt_transport_set_peer_accept(&a.t, PT_CHANNEL_BULK, NULL, NULL);
    assert_int_equal(pt_transport_connect_peer(&b.t, 1, addr_a, 2, peer_connect_cb, &po),
                     PT_E_CONFIG);

    /* raw HELLOs: reserved flag bits, and BULK without PEER, are refused; PEER gets a WELCOME
     * echoing it */
    len = pt_probe_hello(msg, 1, 1, 9, CLUSTER, "peer:7000", -1);
    msg[11] = 0x02;
    pt_probe_start(&p, &loop, ports[0], msg, len);
    assert_true(RUN_UNTIL_GE(&p.ended, 1, 2000));
    assert_int_equal(p.in_len, 0);
    pt_probe_close(&p);
    for (unsigned flags = 4; flags <= 0x80; flags <<= 1) {
        len = pt_probe_hello(msg, 1, 1, 9, CLUSTER, "peer:7000", -1);
        msg[11] = (unsigned char)(flags | 0x01);
        pt_probe_start(&p, &loop, ports[0], msg, len);
        if (!RUN_UNTIL_GE(&p.ended, 1, 2000))
            fail_msg("flags 0x%02x: connection not dropped", flags | 0x01);
        assert_int_equal(p.in_len, 0);
        pt_probe_close(&p);
    }
    len = pt_probe_hello(msg, 1, 1, 9, CLUSTER, "peer.example:7000", -1);
    msg[11] = 0x01;
    pt_probe_start(&p, &loop, ports[0], msg, len);
    assert_true(RUN_UNTIL_GE(&ps.accepted, 2, 2000));
    assert_int_equal(ps.id, 9);
    assert_string_equal(ps.address, "peer.example:7000");
    for (int i = 0; i < 200 && p.in_len < 16 + 10 + strlen(CLUSTER); i++)
        RUN_FOR(10);
    assert_int_equal(p.in_len, 16 + 10 + strlen(CLUSTER));
    assert_memory_equal(p.in, "\x89PTRAFT\n\x00\x01\x02\x01", 12);
    pt_probe_close(&p);
    assert_int_equal(a.n_accepted, 1);

    /* the hook cleared: refused again */
    pt_transport_set_peer_accept(&a.t, PT_CHANNEL_PEER, NULL, NULL);
    peer_connect_and_wait(&b, &po, 1, addr_a);
    assert_int_equal(po.status, PT_E_UNAVAILABLE);
    RUN_FOR(20);
    assert_int_equal(ps.accepted, 2);

    /* an acceptor whose WELCOME does not echo PEER is not the channel we asked for */
    answerer_start(&ans, ports[4], 1, 0x00);
    peer_connect_and_wait(&b, &po, 1, addr_w);
    assert_int_equal(po.status, PT_E_UNAVAILABLE);
    answerer_stop(&ans);

    /* closing cancels a pending peer connect before the close callback; later ones refused */
    pt_loopback_silent_start(&s, &loop, ports[3]);
    pt_side_init(&c, &loop, CLUSTER, 3, addr_c);
    memset(&po, 0, sizeof(po));
    assert_int_equal(
        pt_transport_connect_peer(&c.t, 1, addr_s, PT_CHANNEL_PEER, peer_connect_cb, &po), 0);
    assert_true(RUN_UNTIL_GE(&s.n, 1, 2000));
    c.t.close(&c.t, pt_side_close_cb);
    assert_int_equal(po.calls, 0);
    assert_true(RUN_UNTIL_GE(&c.closed, 1, 2000));
    assert_int_equal(po.calls, 1);
    assert_int_equal(po.status, PT_TRANSPORT_CANCELED);
    assert_true(po.seq < c.close_seq);
    assert_int_equal(
        pt_transport_connect_peer(&c.t, 1, addr_a, PT_CHANNEL_PEER, peer_connect_cb, &po),
        PT_E_UNAVAILABLE);
    pt_transport_close(&c.t);
    pt_loopback_silent_stop(&s);

    for (int i = 0; i < ps.accepted; i++)
        uv_close((uv_handle_t *)ps.streams[i], pt_loopback_free_stream_cb);
    pt_side_close(&a);
    pt_side_close(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_peer_channel, pt_side_setup, pt_side_teardown,
                                                 &loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
