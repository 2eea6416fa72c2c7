/*
 * test_peer.c - the peer RPC service (replication/peer.c) over real transports on loopback and
 * one libuv loop, between nodes of support/peer_node.h (a listening transport and a pt_peers
 * whose handler answers Propose and ReadIndex, echoes, holds "hold" proposals for the test to
 * answer later and refuses unknown types).
 *
 * Covered: round trips in both directions with typed bodies, peer-replied errors, large
 * bodies and synchronous argument errors; a thousand concurrent requests and the per-peer
 * queue limit; flow control by the in-flight limit; timeouts when the handler never answers
 * (a late answer is dropped); an unreachable peer failing fast, then fast again in backoff;
 * reconnecting once the other node restarts; RTT known after the first ping, on both ends;
 * closing with requests held, queued and connecting (all fail before the close callback, none
 * from inside it, late answers on the other node are dropped); and the transport closed and
 * released before the peers. What travels on the channels themselves (raft's kept apart,
 * malformed frames, the incoming limit) is tested in test_peer_channels.c.
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

static uint64_t now_ms(void)
{
    uv_update_time(&loop);
    return uv_now(&loop);
}

/* ---- Waiting for answers ------------------------------------------------------------------ */

struct all_answered {
    const struct pt_peer_answer *a;
    int n;
};

static bool all_answered_pred(void *arg)
{
    const struct all_answered *w = arg;
    for (int i = 0; i < w->n; i++) {
        if (w->a[i].calls == 0)
            return false;
    }
    return true;
}

#define RUN_UNTIL_ANSWERED(arr, n, ms)                                                             \
    pt_loop_run_until(&loop, all_answered_pred, &(struct all_answered){(arr), (n)}, (ms))

struct rtt_known {
    struct pt_peers *p;
    uint64_t id;
};

static bool rtt_known_pred(void *arg)
{
    struct rtt_known *k = arg;
    return pt_peers_rtt_us(k->p, k->id) >= 0;
}

/* ---- Tests -------------------------------------------------------------------------------- */

/* Round trips both ways with typed bodies, errors the peer replies, a large body, requests
 * to a peer without an address, and synchronous refusals (no callback). */
static void test_round_trip(void **state)
{
    struct pt_peer_node a, b;
    struct pt_peer_answer r[8];
    unsigned ports[2];
    size_t big_len = 3 * 1024 * 1024 + 7;
    unsigned char *big = malloc(big_len);
    (void)state;

    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (unsigned char)(i * 31 + (i >> 11));
    memset(r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 2);
    pt_peer_node_start(&a, 1, ports[0]);
    pt_peer_node_start(&b, 2, ports[1]);
    pt_peer_node_link(&a, &b);

    /* a -> b: Propose -> ProposeResult */
    pt_peer_node_propose(&a, 2, "put tag", 2000, &r[0]);
    assert_true(RUN_UNTIL_GE(&r[0].calls, 1, 3000));
    assert_int_equal(r[0].status, 0);
    assert_int_equal(pt_peer_answer_index(&r[0]), 1);
    assert_int_equal(b.last_from, 1);
    assert_int_equal(b.last_type, PT_PEER_NODE_PROPOSE);

    /* b -> a: ReadIndex with an empty body, and a large echo */
    assert_int_equal(pt_peer_node_request(&b, 1, PT_PEER_NODE_READ_INDEX, NULL, 0, 2000, &r[1]), 0);
    assert_int_equal(pt_peer_node_request(&b, 1, PT_PEER_NODE_ECHO, big, big_len, 5000, &r[2]), 0);
    assert_true(RUN_UNTIL_ANSWERED(&r[1], 2, 5000));
    assert_int_equal(r[1].status, 0);
    assert_int_equal(a.last_from, 2);
    assert_int_equal(r[2].status, 0);
    assert_int_equal(r[2].len, big_len);
    assert_memory_equal(r[2].body, big, big_len);

    /* errors answered by the peer reach the caller with their body */
    pt_peer_node_propose(&a, 2, "deny", 2000, &r[3]);
    assert_int_equal(pt_peer_node_request(&a, 2, 77, "x", 1, 2000, &r[4]), 0);
    assert_true(RUN_UNTIL_ANSWERED(&r[3], 2, 3000));
    assert_int_equal(r[3].status, PT_E_DENIED);
    assert_int_equal(r[3].len, 2);
    assert_memory_equal(r[3].body, "no", 2);
    assert_int_equal(r[4].status, PT_E_UNSUPPORTED);

    /* a peer with no address fails, asynchronously */
    assert_int_equal(pt_peer_node_request(&a, 9, PT_PEER_NODE_ECHO, "x", 1, 2000, &r[5]), 0);
    assert_true(RUN_UNTIL_GE(&r[5].calls, 1, 500));
    assert_int_equal(r[5].status, PT_E_UNAVAILABLE);

    /* synchronous refusals never call back */
    struct pt_peer_answer none;
    memset(&none, 0, sizeof(none));
    assert_int_equal(pt_peer_node_request(&a, 0, PT_PEER_NODE_ECHO, "x", 1, 1000, &none),
                     PT_E_CONFIG);
    assert_int_equal(pt_peer_node_request(&a, 1, PT_PEER_NODE_ECHO, "x", 1, 1000, &none),
                     PT_E_CONFIG);
    assert_int_equal(pt_peer_node_request(&a, 2, 0, "x", 1, 1000, &none), PT_E_CONFIG);
    assert_int_equal(
        pt_peer_node_request(&a, 2, PORTOLAN__PEER_TYPE__PEER_PING, NULL, 0, 1000, &none),
        PT_E_CONFIG);
    assert_int_equal(pt_peer_node_request(&a, 2, PT_PEER_NODE_ECHO, "x", 1, 0, &none), PT_E_CONFIG);
    assert_int_equal(
        pt_peer_node_request(&a, 2, PT_PEER_NODE_ECHO, "x", 1, PT_PEERS_TIMEOUT_MAX_MS + 1, &none),
        PT_E_CONFIG);
    assert_int_equal(pt_peer_node_request(&a, 2, PT_PEER_NODE_ECHO, NULL, 1, 1000, &none),
                     PT_E_CONFIG);
    assert_int_equal(pt_peers_request(a.peers, 2, PT_PEER_NODE_ECHO, "x", 1, 1000, NULL, &none),
                     PT_E_CONFIG);
    assert_int_equal(
        pt_peer_node_request(&a, 2, PT_PEER_NODE_ECHO, big, PT_PEERS_BODY_MAX + 1, 1000, &none),
        PT_E_TOO_LARGE);
    assert_int_equal(pt_peers_set_address(a.peers, 0, b.net.address), PT_E_CONFIG);
    assert_int_equal(pt_peers_set_address(a.peers, 1, b.net.address), PT_E_CONFIG);
    assert_int_equal(pt_peers_set_address(a.peers, 3, "no-port"), PT_E_CONFIG);
    assert_int_equal(pt_peers_set_address(a.peers, 3, NULL), PT_E_CONFIG);
    RUN_FOR(20);
    assert_int_equal(none.calls, 0);

    /* one answer each, and raft never saw a peer channel */
    for (int i = 0; i < 6; i++)
        assert_int_equal(r[i].calls, 1);
    assert_int_equal(a.net.raft_accepted, 0);
    assert_int_equal(b.net.raft_accepted, 0);

    pt_peer_node_stop(&a);
    pt_peer_node_stop(&b);
    pt_peer_answers_free(r, 8);
    free(big);
}

/* Many requests at once: all answered, each with its own body; beyond the per-peer queue
 * limit the surplus fails fast; the in-flight limit caps what the other node holds at once. */
static void test_many_concurrent(void **state)
{
    enum { N = 1000, EXTRA = 10, HOLD = PT_PEERS_INFLIGHT_MAX + 44 };
    struct pt_peer_node a, b, c;
    struct pt_peer_answer *r = calloc(PT_PEERS_QUEUE_MAX + EXTRA, sizeof(*r));
    unsigned ports[3];
    int failed = 0;
    (void)state;

    assert_non_null(r);
    pt_loopback_free_ports(ports, 3);
    pt_peer_node_start(&a, 1, ports[0]);
    pt_peer_node_start(&b, 2, ports[1]);
    pt_peer_node_start(&c, 3, ports[2]);
    pt_peer_node_link(&a, &b);
    pt_peer_node_link(&a, &c);

    for (uint64_t i = 0; i < N; i++) {
        unsigned char body[16];
        memcpy(body, &i, 8);
        memcpy(body + 8, "payload!", 8);
        assert_int_equal(
            pt_peer_node_request(&a, 2, PT_PEER_NODE_ECHO, body, sizeof(body), 5000, &r[i]), 0);
    }
    assert_true(RUN_UNTIL_ANSWERED(r, N, 5000));
    for (uint64_t i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, 0);
        assert_int_equal(r[i].len, 16);
        assert_memory_equal(r[i].body, &i, 8);
    }
    assert_int_equal(b.requests, N);
    pt_peer_answers_free(r, N);
    memset(r, 0, (PT_PEERS_QUEUE_MAX + EXTRA) * sizeof(*r));

    /* while the channel to c opens, the queue takes PT_PEERS_QUEUE_MAX requests */
    for (int i = 0; i < PT_PEERS_QUEUE_MAX + EXTRA; i++)
        assert_int_equal(pt_peer_node_request(&a, 3, PT_PEER_NODE_ECHO, "q", 1, 5000, &r[i]), 0);
    assert_true(RUN_UNTIL_ANSWERED(r, PT_PEERS_QUEUE_MAX + EXTRA, 5000));
    for (int i = 0; i < PT_PEERS_QUEUE_MAX + EXTRA; i++) {
        assert_int_equal(r[i].calls, 1);
        failed += r[i].status == PT_E_UNAVAILABLE;
        if (i < PT_PEERS_QUEUE_MAX)
            assert_int_equal(r[i].status, 0);
    }
    assert_int_equal(failed, EXTRA);
    pt_peer_answers_free(r, PT_PEERS_QUEUE_MAX + EXTRA);
    memset(r, 0, (PT_PEERS_QUEUE_MAX + EXTRA) * sizeof(*r));

    /* flow control: b holds every proposal; a never has more than the limit in flight */
    for (int i = 0; i < HOLD; i++)
        pt_peer_node_propose(&a, 2, "hold", 5000, &r[i]);
    assert_true(RUN_UNTIL_GE(&b.n_held, PT_PEERS_INFLIGHT_MAX, 3000));
    RUN_FOR(100);
    assert_int_equal(b.n_held, PT_PEERS_INFLIGHT_MAX);
    for (int round = 0; round < 2; round++) {
        int n = b.n_held;
        for (int i = 0; i < n; i++)
            pt_peer_node_reply(b.held[i], 0, "ok", 2);
        b.n_held = 0;
        if (round == 0)
            assert_true(RUN_UNTIL_GE(&b.n_held, HOLD - PT_PEERS_INFLIGHT_MAX, 3000));
    }
    assert_true(RUN_UNTIL_ANSWERED(r, HOLD, 3000));
    for (int i = 0; i < HOLD; i++)
        assert_int_equal(r[i].status, 0);

    pt_peer_node_stop(&a);
    pt_peer_node_stop(&b);
    pt_peer_node_stop(&c);
    pt_peer_answers_free(r, PT_PEERS_QUEUE_MAX + EXTRA);
    free(r);
}

/* A handler that never answers: the request times out; the late answer is dropped and the
 * channel keeps working. */
static void test_timeout(void **state)
{
    struct pt_peer_node a, b;
    struct pt_peer_answer r[2];
    unsigned ports[2];
    uint64_t start;
    (void)state;

    memset(r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 2);
    pt_peer_node_start(&a, 1, ports[0]);
    pt_peer_node_start(&b, 2, ports[1]);
    pt_peer_node_link(&a, &b);

    start = now_ms();
    pt_peer_node_propose(&a, 2, "hold", 200, &r[0]);
    assert_true(RUN_UNTIL_GE(&r[0].calls, 1, 2000));
    assert_int_equal(r[0].status, PT_E_UNAVAILABLE);
    assert_true(r[0].at - start >= 190);
    assert_int_equal(b.n_held, 1);

    pt_peer_node_reply(b.held[0], 0, "late", 4);
    b.n_held = 0;
    pt_peer_node_propose(&a, 2, "after", 2000, &r[1]);
    assert_true(RUN_UNTIL_GE(&r[1].calls, 1, 2000));
    assert_int_equal(r[1].status, 0);
    assert_int_equal(r[0].calls, 1);

    pt_peer_node_stop(&a);
    pt_peer_node_stop(&b);
    pt_peer_answers_free(r, 2);
}

/* A peer nobody listens for: the first request fails as soon as the connection is refused,
 * well before its timeout, and requests during the backoff fail at once. */
static void test_peer_down(void **state)
{
    struct pt_peer_node a;
    struct pt_peer_answer r[2];
    unsigned ports[2];
    char down[64];
    uint64_t start;
    (void)state;

    memset(r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 2);
    pt_peer_node_start(&a, 1, ports[0]);
    snprintf(down, sizeof(down), "127.0.0.1:%u", ports[1]);
    assert_int_equal(pt_peers_set_address(a.peers, 2, down), 0);

    start = now_ms();
    assert_int_equal(pt_peer_node_request(&a, 2, PT_PEER_NODE_ECHO, "x", 1, 5000, &r[0]), 0);
    assert_true(RUN_UNTIL_GE(&r[0].calls, 1, 3000));
    assert_int_equal(r[0].status, PT_E_UNAVAILABLE);
    assert_true(r[0].at - start < 1000);

    start = now_ms();
    assert_int_equal(pt_peer_node_request(&a, 2, PT_PEER_NODE_ECHO, "x", 1, 5000, &r[1]), 0);
    assert_true(RUN_UNTIL_GE(&r[1].calls, 1, 1000));
    assert_int_equal(r[1].status, PT_E_UNAVAILABLE);
    assert_true(r[1].at - start < PT_PEERS_BACKOFF_MIN_MS);
    assert_int_equal(pt_peers_rtt_us(a.peers, 2), -1);

    pt_peer_node_stop(&a);
    pt_peer_answers_free(r, 2);
}

/* The other node restarts on the same address: requests fail while it is away, then the
 * channel comes back by itself and requests succeed again. */
static void test_reconnect(void **state)
{
    struct pt_peer_node a, b;
    struct pt_peer_answer r, down, back[40];
    unsigned ports[2];
    int ok = -1;
    (void)state;

    memset(&r, 0, sizeof(r));
    memset(&down, 0, sizeof(down));
    memset(back, 0, sizeof(back));
    pt_loopback_free_ports(ports, 2);
    pt_peer_node_start(&a, 1, ports[0]);
    pt_peer_node_start(&b, 2, ports[1]);
    pt_peer_node_link(&a, &b);

    pt_peer_node_propose(&a, 2, "first", 2000, &r);
    assert_true(RUN_UNTIL_GE(&r.calls, 1, 2000));
    assert_int_equal(r.status, 0);

    pt_peer_node_stop(&b);
    RUN_FOR(50);
    assert_int_equal(pt_peers_rtt_us(a.peers, 2), -1); /* no channel open to b */
    assert_int_equal(pt_peer_node_request(&a, 2, PT_PEER_NODE_ECHO, "x", 1, 2000, &down), 0);
    assert_true(RUN_UNTIL_GE(&down.calls, 1, 1000));
    assert_int_equal(down.status, PT_E_UNAVAILABLE);
    RUN_FOR(300); /* a retries and backs off meanwhile */

    pt_peer_node_start(&b, 2, ports[1]);
    assert_int_equal(pt_peers_set_address(b.peers, 1, a.net.address), 0);
    for (int i = 0; i < 40 && ok < 0; i++) {
        assert_int_equal(pt_peer_node_request(&a, 2, PT_PEER_NODE_ECHO, "again", 5, 1000, &back[i]),
                         0);
        assert_true(RUN_UNTIL_GE(&back[i].calls, 1, 2000));
        if (back[i].status == 0)
            ok = i;
        else
            RUN_FOR(100);
    }
    assert_true(ok >= 0);
    assert_int_equal(back[ok].len, 5);
    assert_memory_equal(back[ok].body, "again", 5);
    assert_int_equal(b.last_from, 1);

    pt_peer_node_stop(&a);
    pt_peer_node_stop(&b);
    pt_peer_answers_free(&r, 1);
    pt_peer_answers_free(back, 40);
}

/* The RTT is unknown before any channel, known after the first ping on both ends. */
static void test_rtt(void **state)
{
    struct pt_peer_node a, b;
    struct pt_peer_answer r;
    unsigned ports[2];
    int64_t rtt;
    (void)state;

    memset(&r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 2);
    pt_peer_node_start(&a, 1, ports[0]);
    pt_peer_node_start(&b, 2, ports[1]);
    pt_peer_node_link(&a, &b);
    assert_int_equal(pt_peers_rtt_us(a.peers, 2), -1);
    assert_int_equal(pt_peers_rtt_us(a.peers, 77), -1);

    assert_int_equal(pt_peer_node_request(&a, 2, PT_PEER_NODE_ECHO, "x", 1, 2000, &r), 0);
    assert_true(RUN_UNTIL_GE(&r.calls, 1, 2000));
    /* a channel pings as it opens: well before the 1 s ping interval */
    assert_true(pt_loop_run_until(&loop, rtt_known_pred, &(struct rtt_known){a.peers, 2}, 500));
    assert_true(pt_loop_run_until(&loop, rtt_known_pred, &(struct rtt_known){b.peers, 1}, 500));
    rtt = pt_peers_rtt_us(a.peers, 2);
    assert_true(rtt >= 0 && rtt < 500000);
    /* pings are answered inside peer.c: the handler saw one request only */
    RUN_FOR(1100);
    assert_int_equal(b.requests, 1);
    assert_int_equal(a.requests, 0);
    assert_true(pt_peers_rtt_us(a.peers, 2) >= 0);

    pt_peer_node_stop(&a);
    pt_peer_node_stop(&b);
    pt_peer_answers_free(&r, 1);
}

/* Closing with requests held by the other node and queued behind a connection that never
 * completes its handshake: every callback fires after pt_peers_close returns and before its
 * callback; late answers on the other node are dropped; the attempt left in the transport is
 * cleaned up when the transport closes. Then the other node closes while it still holds an
 * incoming call, and answers it afterwards. */
static void test_close_pending(void **state)
{
    enum { HELD = 3, QUEUED = 4 };
    struct pt_peer_node a, b, c;
    struct pt_loopback_silent s;
    struct pt_peer_answer held[HELD], queued[QUEUED], r, r2;
    unsigned ports[4];
    char silent_addr[64];
    (void)state;

    memset(held, 0, sizeof(held));
    memset(queued, 0, sizeof(queued));
    memset(&r, 0, sizeof(r));
    memset(&r2, 0, sizeof(r2));
    pt_loopback_free_ports(ports, 4);
    pt_peer_node_start(&a, 1, ports[0]);
    pt_peer_node_start(&b, 2, ports[1]);
    pt_peer_node_link(&a, &b);

    /* server 3 accepts TCP and never answers the handshake */
    pt_loopback_silent_start(&s, &loop, ports[2]);
    snprintf(silent_addr, sizeof(silent_addr), "127.0.0.1:%u", ports[2]);
    assert_int_equal(pt_peers_set_address(a.peers, 3, silent_addr), 0);

    for (int i = 0; i < HELD; i++)
        pt_peer_node_propose(&a, 2, "hold", 10000, &held[i]);
    for (int i = 0; i < QUEUED; i++)
        assert_int_equal(pt_peer_node_request(&a, 3, PT_PEER_NODE_ECHO, "q", 1, 10000, &queued[i]),
                         0);
    assert_true(RUN_UNTIL_GE(&b.n_held, HELD, 2000));
    assert_true(RUN_UNTIL_GE(&s.n, 1, 2000));

    pt_peer_node_close_peers(&a);
    for (int i = 0; i < HELD; i++) {
        assert_int_equal(held[i].calls, 1);
        assert_int_equal(held[i].status, PT_E_UNAVAILABLE);
        assert_true(held[i].seq < a.peers_close_seq);
    }
    for (int i = 0; i < QUEUED; i++) {
        assert_int_equal(queued[i].calls, 1);
        assert_int_equal(queued[i].status, PT_E_UNAVAILABLE);
        assert_true(queued[i].seq < a.peers_close_seq);
    }
    /* b's channel from a closes; answering now is dropped quietly */
    RUN_FOR(50);
    for (int i = 0; i < HELD; i++)
        pt_peer_node_reply(b.held[i], 0, "late", 4);
    b.n_held = 0;
    RUN_FOR(20);
    /* the attempt to server 3 is still in a's transport: closing it completes it */
    pt_peer_node_stop(&a);

    /* b closes while holding a call from c, and answers it afterwards */
    pt_peer_node_start(&c, 3, ports[3]);
    pt_peer_node_link(&b, &c);
    pt_peer_node_propose(&c, 2, "hold", 5000, &r);
    assert_true(RUN_UNTIL_GE(&b.n_held, 1, 2000));
    pt_peer_node_close_peers(&b);
    pt_peer_node_reply(b.held[0], 0, "after close", 11); /* b's pt_peers is gone: dropped */
    b.n_held = 0;
    assert_true(RUN_UNTIL_GE(&r.calls, 1, 2000));
    assert_int_equal(r.status, PT_E_UNAVAILABLE);
    assert_int_equal(pt_peer_node_request(&c, 2, PT_PEER_NODE_ECHO, "x", 1, 1000, &r2), 0);
    assert_true(RUN_UNTIL_GE(&r2.calls, 1, 2000));
    assert_int_equal(r2.status, PT_E_UNAVAILABLE);
    pt_peer_node_stop(&b);
    pt_peer_node_stop(&c);

    pt_loopback_silent_stop(&s);
    pt_peer_answers_free(held, HELD);
    pt_peer_answers_free(queued, QUEUED);
    pt_peer_answers_free(&r, 1);
    pt_peer_answers_free(&r2, 1);
}

/* Shutdown in the other order (raft_close and pt_transport_close before pt_peers_close): the
 * open channel keeps working, reconnecting through the released transport fails cleanly, and
 * pt_peers_close still completes. */
static void test_transport_closed_first(void **state)
{
    struct pt_peer_node a, b;
    struct pt_peer_answer r[3];
    unsigned ports[2];
    (void)state;

    memset(r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 2);
    pt_peer_node_start(&a, 1, ports[0]);
    pt_peer_node_start(&b, 2, ports[1]);
    pt_peer_node_link(&a, &b);
    pt_peer_node_propose(&a, 2, "first", 2000, &r[0]);
    assert_true(RUN_UNTIL_GE(&r[0].calls, 1, 2000));
    assert_int_equal(r[0].status, 0);

    pt_loopback_transport_close(&a.net, &loop, 2000);
    pt_peer_node_propose(&a, 2, "second", 2000, &r[1]);
    assert_true(RUN_UNTIL_GE(&r[1].calls, 1, 2000));
    assert_int_equal(r[1].status, 0);

    pt_peer_node_close_peers(&b); /* a's channel drops; a retries through the released transport */
    RUN_FOR(400);
    assert_int_equal(pt_peer_node_request(&a, 2, PT_PEER_NODE_ECHO, "x", 1, 2000, &r[2]), 0);
    assert_true(RUN_UNTIL_GE(&r[2].calls, 1, 2000));
    assert_int_equal(r[2].status, PT_E_UNAVAILABLE);
    pt_peer_node_close_peers(&a);
    pt_peer_node_stop(&b);
    pt_peer_answers_free(r, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_round_trip, pt_peer_node_setup,
                                                 pt_peer_node_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_many_concurrent, pt_peer_node_setup,
                                                 pt_peer_node_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_timeout, pt_peer_node_setup,
                                                 pt_peer_node_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_peer_down, pt_peer_node_setup,
                                                 pt_peer_node_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_reconnect, pt_peer_node_setup,
                                                 pt_peer_node_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_rtt, pt_peer_node_setup,
                                                 pt_peer_node_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_close_pending, pt_peer_node_setup,
                                                 pt_peer_node_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_transport_closed_first, pt_peer_node_setup,
                                                 pt_peer_node_teardown, &loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
