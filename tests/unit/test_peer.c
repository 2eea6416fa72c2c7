/*
 * test_peer.c - the peer RPC service (replication/peer.c) over real transports on loopback and
 * one libuv loop. Each node is a transport listening like raft_start makes it (with a raft
 * accept callback that counts and drops) plus a pt_peers whose request handler answers
 * Propose and ReadIndex, echoes type ECHO, holds "hold" proposals for the test to answer
 * later and refuses unknown types.
 *
 * Covered: round trips in both directions with typed bodies, peer-replied errors, large
 * bodies and synchronous argument errors; a thousand concurrent requests and the per-peer
 * queue limit; flow control by the in-flight limit; timeouts when the handler never answers
 * (a late answer is dropped); an unreachable peer failing fast, then fast again in backoff;
 * reconnecting once the other node restarts; RTT known after the first ping, on both ends;
 * closing with requests held, queued and connecting (all fail before the close callback, none
 * from inside it, late answers on the other node are dropped); raft connections still reaching
 * raft while peer channels never do; malformed or oversized frames closing the channel; and
 * incoming requests beyond the in-flight limit refused with PT_E_TOOMANYREQUESTS; and the
 * transport closed and released before the peers.
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
#include "transport.h"

#define CLUSTER      "peer-test"
#define T_PROPOSE    PORTOLAN__PEER_TYPE__PEER_PROPOSE
#define T_READ_INDEX PORTOLAN__PEER_TYPE__PEER_READ_INDEX
#define T_ECHO       100 /* not in the enum: peer.c passes any type through */
#define MAX_HELD     512

static uv_loop_t loop;
static int seq;     /* orders callbacks across objects */
static bool in_api; /* set while the test is inside a pt_peers call */

/* ---- Loop helpers ------------------------------------------------------------------------- */

#define RUN_UNTIL_GE(ptr, n, ms) PT_LOOP_RUN_UNTIL_GE(&loop, (ptr), (n), (ms))
#define RUN_FOR(ms)              PT_LOOP_RUN_FOR(&loop, (ms))

static uint64_t now_ms(void)
{
    uv_update_time(&loop);
    return uv_now(&loop);
}

/* ---- Nodes: a listening transport and its pt_peers ---------------------------------------- */

struct node {
    struct pt_loopback_transport net; /* counts raft connections, which it drops */
    struct pt_peers *peers;
    uint64_t id;
    int peers_closed;
    int peers_close_seq;
    /* request handler */
    int requests;
    uint64_t last_from;
    uint32_t last_type;
    uint64_t next_index;
    struct pt_peer_call *held[MAX_HELD];
    int n_held;
};

static void reply(struct pt_peer_call *call, int status, const void *body, size_t len)
{
    in_api = true;
    pt_peer_reply(call, status, body, len);
    in_api = false;
}

static void on_request(void *arg, uint64_t from, uint32_t type, const void *body, size_t len,
                       struct pt_peer_call *call)
{
    struct node *n = arg;
    uint8_t out[64];

    assert_false(in_api);
    assert_non_null(call);
    n->requests++;
    n->last_from = from;
    n->last_type = type;
    switch (type) {
    case T_PROPOSE: {
        Portolan__Propose *pr = portolan__propose__unpack(NULL, len, body);
        Portolan__ProposeResult res = PORTOLAN__PROPOSE_RESULT__INIT;
        assert_non_null(pr);
        if (pr->command.len == 4 && memcmp(pr->command.data, "hold", 4) == 0) {
            assert_true(n->n_held < MAX_HELD);
            n->held[n->n_held++] = call;
        } else if (pr->command.len == 4 && memcmp(pr->command.data, "deny", 4) == 0) {
            reply(call, PT_E_DENIED, "no", 2);
        } else {
            res.index = ++n->next_index;
            reply(call, 0, out, portolan__propose_result__pack(&res, out));
        }
        portolan__propose__free_unpacked(pr, NULL);
        return;
    }
    case T_READ_INDEX: {
        Portolan__ReadIndexResult res = PORTOLAN__READ_INDEX_RESULT__INIT;
        assert_int_equal(len, 0);
        res.index = n->next_index;
        reply(call, 0, out, portolan__read_index_result__pack(&res, out));
        return;
    }
    case T_ECHO:
        reply(call, 0, body, len);
        return;
    default:
        reply(call, PT_E_UNSUPPORTED, NULL, 0);
    }
}

static void peers_close_cb(void *arg)
{
    struct node *n = arg;
    assert_false(in_api);
    n->peers_closed++;
    n->peers_close_seq = ++seq;
    n->peers = NULL;
}

static void node_start(struct node *n, uint64_t id, unsigned port)
{
    memset(n, 0, sizeof(*n));
    n->id = id;
    pt_loopback_transport_init(&n->net, &loop, CLUSTER, id, port);
    assert_int_equal(pt_peers_init(&n->peers, &loop, &n->net.t, PT_CHANNEL_PEER, id, on_request, n),
                     0);
    pt_loopback_transport_listen(&n->net);
}

static void node_close_peers(struct node *n)
{
    in_api = true;
    pt_peers_close(n->peers, peers_close_cb, n);
    in_api = false;
    assert_int_equal(n->peers_closed, 0);
    assert_true(RUN_UNTIL_GE(&n->peers_closed, 1, 5000));
    assert_int_equal(n->peers_closed, 1);
}

/* Answers what the handler still holds (dropped if the channel is gone), closes the peers
 * (unless already closed) and the transport, and releases the transport. */
static void node_stop(struct node *n)
{
    for (int i = 0; i < n->n_held; i++)
        reply(n->held[i], 0, NULL, 0);
    n->n_held = 0;
    if (n->peers != NULL)
        node_close_peers(n);
    pt_loopback_transport_close(&n->net, &loop, 5000);
}

static void link_nodes(struct node *a, struct node *b)
{
    assert_int_equal(pt_peers_set_address(a->peers, b->id, b->net.address), 0);
    assert_int_equal(pt_peers_set_address(b->peers, a->id, a->net.address), 0);
}

/* ---- Requests ----------------------------------------------------------------------------- */

struct answer {
    int calls;
    int status;
    int seq;
    uint64_t at;
    size_t len;
    unsigned char *body; /* copy, freed by answers_free */
};

static void answer_cb(void *arg, int status, const void *body, size_t len)
{
    struct answer *a = arg;
    assert_false(in_api); /* never from inside an API call */
    a->calls++;
    a->status = status;
    a->seq = ++seq;
    a->at = uv_now(&loop);
    if (len == 0) {
        assert_null(body);
    } else {
        assert_non_null(body);
        free(a->body);
        a->body = malloc(len);
        assert_non_null(a->body);
        memcpy(a->body, body, len);
    }
    a->len = len;
}

static void answers_free(struct answer *a, int n)
{
    for (int i = 0; i < n; i++) {
        free(a[i].body);
        a[i].body = NULL;
    }
}

static int request(struct node *from, uint64_t to, uint32_t type, const void *body, size_t len,
                   unsigned timeout_ms, struct answer *a)
{
    int rv;
    in_api = true;
    rv = pt_peers_request(from->peers, to, type, body, len, timeout_ms, answer_cb, a);
    in_api = false;
    if (rv == 0)
        assert_int_equal(a->calls, 0);
    return rv;
}

static void propose(struct node *from, uint64_t to, const char *command, unsigned timeout_ms,
                    struct answer *a)
{
    Portolan__Propose pr = PORTOLAN__PROPOSE__INIT;
    uint8_t buf[128];
    size_t n;

    pr.command.data = (uint8_t *)command;
    pr.command.len = strlen(command);
    n = portolan__propose__pack(&pr, buf);
    assert_int_equal(request(from, to, T_PROPOSE, buf, n, timeout_ms, a), 0);
}

static uint64_t result_index(const struct answer *a)
{
    Portolan__ProposeResult *res = portolan__propose_result__unpack(NULL, a->len, a->body);
    uint64_t index;
    assert_non_null(res);
    assert_int_equal(res->status, 0);
    index = res->index;
    portolan__propose_result__free_unpacked(res, NULL);
    return index;
}

struct all_answered {
    const struct answer *a;
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

/* ---- Fixture ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    seq = 0;
    in_api = false;
    return uv_loop_init(&loop);
}

static int teardown(void **state)
{
    (void)state;
    uv_run(&loop, UV_RUN_NOWAIT);
    /* 0 only if every handle the test, the transports and the peers opened was closed */
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

/* ---- Tests -------------------------------------------------------------------------------- */

/* Round trips both ways with typed bodies, errors the peer replies, a large body, requests
 * to a peer without an address, and synchronous refusals (no callback). */
static void test_round_trip(void **state)
{
    struct node a, b;
    struct answer r[8];
    unsigned ports[2];
    size_t big_len = 3 * 1024 * 1024 + 7;
    unsigned char *big = malloc(big_len);
    (void)state;

    assert_non_null(big);
    for (size_t i = 0; i < big_len; i++)
        big[i] = (unsigned char)(i * 31 + (i >> 11));
    memset(r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 2);
    node_start(&a, 1, ports[0]);
    node_start(&b, 2, ports[1]);
    link_nodes(&a, &b);

    /* a -> b: Propose -> ProposeResult */
    propose(&a, 2, "put tag", 2000, &r[0]);
    assert_true(RUN_UNTIL_GE(&r[0].calls, 1, 3000));
    assert_int_equal(r[0].status, 0);
    assert_int_equal(result_index(&r[0]), 1);
    assert_int_equal(b.last_from, 1);
    assert_int_equal(b.last_type, T_PROPOSE);

    /* b -> a: ReadIndex with an empty body, and a large echo */
    assert_int_equal(request(&b, 1, T_READ_INDEX, NULL, 0, 2000, &r[1]), 0);
    assert_int_equal(request(&b, 1, T_ECHO, big, big_len, 5000, &r[2]), 0);
    assert_true(RUN_UNTIL_ANSWERED(&r[1], 2, 5000));
    assert_int_equal(r[1].status, 0);
    assert_int_equal(a.last_from, 2);
    assert_int_equal(r[2].status, 0);
    assert_int_equal(r[2].len, big_len);
    assert_memory_equal(r[2].body, big, big_len);

    /* errors answered by the peer reach the caller with their body */
    propose(&a, 2, "deny", 2000, &r[3]);
    assert_int_equal(request(&a, 2, 77, "x", 1, 2000, &r[4]), 0);
    assert_true(RUN_UNTIL_ANSWERED(&r[3], 2, 3000));
    assert_int_equal(r[3].status, PT_E_DENIED);
    assert_int_equal(r[3].len, 2);
    assert_memory_equal(r[3].body, "no", 2);
    assert_int_equal(r[4].status, PT_E_UNSUPPORTED);

    /* a peer with no address fails, asynchronously */
    assert_int_equal(request(&a, 9, T_ECHO, "x", 1, 2000, &r[5]), 0);
    assert_true(RUN_UNTIL_GE(&r[5].calls, 1, 500));
    assert_int_equal(r[5].status, PT_E_UNAVAILABLE);

    /* synchronous refusals never call back */
    struct answer none;
    memset(&none, 0, sizeof(none));
    assert_int_equal(request(&a, 0, T_ECHO, "x", 1, 1000, &none), PT_E_CONFIG);
    assert_int_equal(request(&a, 1, T_ECHO, "x", 1, 1000, &none), PT_E_CONFIG);
    assert_int_equal(request(&a, 2, 0, "x", 1, 1000, &none), PT_E_CONFIG);
    assert_int_equal(request(&a, 2, PORTOLAN__PEER_TYPE__PEER_PING, NULL, 0, 1000, &none),
                     PT_E_CONFIG);
    assert_int_equal(request(&a, 2, T_ECHO, "x", 1, 0, &none), PT_E_CONFIG);
    assert_int_equal(request(&a, 2, T_ECHO, "x", 1, PT_PEERS_TIMEOUT_MAX_MS + 1, &none),
                     PT_E_CONFIG);
    assert_int_equal(request(&a, 2, T_ECHO, NULL, 1, 1000, &none), PT_E_CONFIG);
    assert_int_equal(pt_peers_request(a.peers, 2, T_ECHO, "x", 1, 1000, NULL, &none), PT_E_CONFIG);
    assert_int_equal(request(&a, 2, T_ECHO, big, PT_PEERS_BODY_MAX + 1, 1000, &none),
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

    node_stop(&a);
    node_stop(&b);
    answers_free(r, 8);
    free(big);
}

/* Many requests at once: all answered, each with its own body; beyond the per-peer queue
 * limit the surplus fails fast; the in-flight limit caps what the other node holds at once. */
static void test_many_concurrent(void **state)
{
    enum { N = 1000, EXTRA = 10, HOLD = PT_PEERS_INFLIGHT_MAX + 44 };
    struct node a, b, c;
    struct answer *r = calloc(PT_PEERS_QUEUE_MAX + EXTRA, sizeof(*r));
    unsigned ports[3];
    int failed = 0;
    (void)state;

    assert_non_null(r);
    pt_loopback_free_ports(ports, 3);
    node_start(&a, 1, ports[0]);
    node_start(&b, 2, ports[1]);
    node_start(&c, 3, ports[2]);
    link_nodes(&a, &b);
    link_nodes(&a, &c);

    for (uint64_t i = 0; i < N; i++) {
        unsigned char body[16];
        memcpy(body, &i, 8);
        memcpy(body + 8, "payload!", 8);
        assert_int_equal(request(&a, 2, T_ECHO, body, sizeof(body), 5000, &r[i]), 0);
    }
    assert_true(RUN_UNTIL_ANSWERED(r, N, 5000));
    for (uint64_t i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, 1);
        assert_int_equal(r[i].status, 0);
        assert_int_equal(r[i].len, 16);
        assert_memory_equal(r[i].body, &i, 8);
    }
    assert_int_equal(b.requests, N);
    answers_free(r, N);
    memset(r, 0, (PT_PEERS_QUEUE_MAX + EXTRA) * sizeof(*r));

    /* while the channel to c opens, the queue takes PT_PEERS_QUEUE_MAX requests */
    for (int i = 0; i < PT_PEERS_QUEUE_MAX + EXTRA; i++)
        assert_int_equal(request(&a, 3, T_ECHO, "q", 1, 5000, &r[i]), 0);
    assert_true(RUN_UNTIL_ANSWERED(r, PT_PEERS_QUEUE_MAX + EXTRA, 5000));
    for (int i = 0; i < PT_PEERS_QUEUE_MAX + EXTRA; i++) {
        assert_int_equal(r[i].calls, 1);
        failed += r[i].status == PT_E_UNAVAILABLE;
        if (i < PT_PEERS_QUEUE_MAX)
            assert_int_equal(r[i].status, 0);
    }
    assert_int_equal(failed, EXTRA);
    answers_free(r, PT_PEERS_QUEUE_MAX + EXTRA);
    memset(r, 0, (PT_PEERS_QUEUE_MAX + EXTRA) * sizeof(*r));

    /* flow control: b holds every proposal; a never has more than the limit in flight */
    for (int i = 0; i < HOLD; i++)
        propose(&a, 2, "hold", 5000, &r[i]);
    assert_true(RUN_UNTIL_GE(&b.n_held, PT_PEERS_INFLIGHT_MAX, 3000));
    RUN_FOR(100);
    assert_int_equal(b.n_held, PT_PEERS_INFLIGHT_MAX);
    for (int round = 0; round < 2; round++) {
        int n = b.n_held;
        for (int i = 0; i < n; i++)
            reply(b.held[i], 0, "ok", 2);
        b.n_held = 0;
        if (round == 0)
            assert_true(RUN_UNTIL_GE(&b.n_held, HOLD - PT_PEERS_INFLIGHT_MAX, 3000));
    }
    assert_true(RUN_UNTIL_ANSWERED(r, HOLD, 3000));
    for (int i = 0; i < HOLD; i++)
        assert_int_equal(r[i].status, 0);

    node_stop(&a);
    node_stop(&b);
    node_stop(&c);
    answers_free(r, PT_PEERS_QUEUE_MAX + EXTRA);
    free(r);
}

/* A handler that never answers: the request times out; the late answer is dropped and the
 * channel keeps working. */
static void test_timeout(void **state)
{
    struct node a, b;
    struct answer r[2];
    unsigned ports[2];
    uint64_t start;
    (void)state;

    memset(r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 2);
    node_start(&a, 1, ports[0]);
    node_start(&b, 2, ports[1]);
    link_nodes(&a, &b);

    start = now_ms();
    propose(&a, 2, "hold", 200, &r[0]);
    assert_true(RUN_UNTIL_GE(&r[0].calls, 1, 2000));
    assert_int_equal(r[0].status, PT_E_UNAVAILABLE);
    assert_true(r[0].at - start >= 190);
    assert_int_equal(b.n_held, 1);

    reply(b.held[0], 0, "late", 4);
    b.n_held = 0;
    propose(&a, 2, "after", 2000, &r[1]);
    assert_true(RUN_UNTIL_GE(&r[1].calls, 1, 2000));
    assert_int_equal(r[1].status, 0);
    assert_int_equal(r[0].calls, 1);

    node_stop(&a);
    node_stop(&b);
    answers_free(r, 2);
}

/* A peer nobody listens for: the first request fails as soon as the connection is refused,
 * well before its timeout, and requests during the backoff fail at once. */
static void test_peer_down(void **state)
{
    struct node a;
    struct answer r[2];
    unsigned ports[2];
    char down[64];
    uint64_t start;
    (void)state;

    memset(r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 2);
    node_start(&a, 1, ports[0]);
    snprintf(down, sizeof(down), "127.0.0.1:%u", ports[1]);
    assert_int_equal(pt_peers_set_address(a.peers, 2, down), 0);

    start = now_ms();
    assert_int_equal(request(&a, 2, T_ECHO, "x", 1, 5000, &r[0]), 0);
    assert_true(RUN_UNTIL_GE(&r[0].calls, 1, 3000));
    assert_int_equal(r[0].status, PT_E_UNAVAILABLE);
    assert_true(r[0].at - start < 1000);

    start = now_ms();
    assert_int_equal(request(&a, 2, T_ECHO, "x", 1, 5000, &r[1]), 0);
    assert_true(RUN_UNTIL_GE(&r[1].calls, 1, 1000));
    assert_int_equal(r[1].status, PT_E_UNAVAILABLE);
    assert_true(r[1].at - start < PT_PEERS_BACKOFF_MIN_MS);
    assert_int_equal(pt_peers_rtt_us(a.peers, 2), -1);

    node_stop(&a);
    answers_free(r, 2);
}

/* The other node restarts on the same address: requests fail while it is away, then the
 * channel comes back by itself and requests succeed again. */
static void test_reconnect(void **state)
{
    struct node a, b;
    struct answer r, down, back[40];
    unsigned ports[2];
    int ok = -1;
    (void)state;

    memset(&r, 0, sizeof(r));
    memset(&down, 0, sizeof(down));
    memset(back, 0, sizeof(back));
    pt_loopback_free_ports(ports, 2);
    node_start(&a, 1, ports[0]);
    node_start(&b, 2, ports[1]);
    link_nodes(&a, &b);

    propose(&a, 2, "first", 2000, &r);
    assert_true(RUN_UNTIL_GE(&r.calls, 1, 2000));
    assert_int_equal(r.status, 0);

    node_stop(&b);
    RUN_FOR(50);
    assert_int_equal(pt_peers_rtt_us(a.peers, 2), -1); /* no channel open to b */
    assert_int_equal(request(&a, 2, T_ECHO, "x", 1, 2000, &down), 0);
    assert_true(RUN_UNTIL_GE(&down.calls, 1, 1000));
    assert_int_equal(down.status, PT_E_UNAVAILABLE);
    RUN_FOR(300); /* a retries and backs off meanwhile */

    node_start(&b, 2, ports[1]);
    assert_int_equal(pt_peers_set_address(b.peers, 1, a.net.address), 0);
    for (int i = 0; i < 40 && ok < 0; i++) {
        assert_int_equal(request(&a, 2, T_ECHO, "again", 5, 1000, &back[i]), 0);
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

    node_stop(&a);
    node_stop(&b);
    answers_free(&r, 1);
    answers_free(back, 40);
}

/* The RTT is unknown before any channel, known after the first ping on both ends. */
static void test_rtt(void **state)
{
    struct node a, b;
    struct answer r;
    unsigned ports[2];
    int64_t rtt;
    (void)state;

    memset(&r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 2);
    node_start(&a, 1, ports[0]);
    node_start(&b, 2, ports[1]);
    link_nodes(&a, &b);
    assert_int_equal(pt_peers_rtt_us(a.peers, 2), -1);
    assert_int_equal(pt_peers_rtt_us(a.peers, 77), -1);

    assert_int_equal(request(&a, 2, T_ECHO, "x", 1, 2000, &r), 0);
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

    node_stop(&a);
    node_stop(&b);
    answers_free(&r, 1);
}

/* Closing with requests held by the other node and queued behind a connection that never
 * completes its handshake: every callback fires after pt_peers_close returns and before its
 * callback; late answers on the other node are dropped; the attempt left in the transport is
 * cleaned up when the transport closes. Then the other node closes while it still holds an
 * incoming call, and answers it afterwards. */
static void test_close_pending(void **state)
{
    enum { HELD = 3, QUEUED = 4 };
    struct node a, b, c;
    struct pt_loopback_silent s;
    struct answer held[HELD], queued[QUEUED], r, r2;
    unsigned ports[4];
    char silent_addr[64];
    (void)state;

    memset(held, 0, sizeof(held));
    memset(queued, 0, sizeof(queued));
    memset(&r, 0, sizeof(r));
    memset(&r2, 0, sizeof(r2));
    pt_loopback_free_ports(ports, 4);
    node_start(&a, 1, ports[0]);
    node_start(&b, 2, ports[1]);
    link_nodes(&a, &b);

    /* server 3 accepts TCP and never answers the handshake */
    pt_loopback_silent_start(&s, &loop, ports[2]);
    snprintf(silent_addr, sizeof(silent_addr), "127.0.0.1:%u", ports[2]);
    assert_int_equal(pt_peers_set_address(a.peers, 3, silent_addr), 0);

    for (int i = 0; i < HELD; i++)
        propose(&a, 2, "hold", 10000, &held[i]);
    for (int i = 0; i < QUEUED; i++)
        assert_int_equal(request(&a, 3, T_ECHO, "q", 1, 10000, &queued[i]), 0);
    assert_true(RUN_UNTIL_GE(&b.n_held, HELD, 2000));
    assert_true(RUN_UNTIL_GE(&s.n, 1, 2000));

    node_close_peers(&a);
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
        reply(b.held[i], 0, "late", 4);
    b.n_held = 0;
    RUN_FOR(20);
    /* the attempt to server 3 is still in a's transport: closing it completes it */
    node_stop(&a);

    /* b closes while holding a call from c, and answers it afterwards */
    node_start(&c, 3, ports[3]);
    link_nodes(&b, &c);
    propose(&c, 2, "hold", 5000, &r);
    assert_true(RUN_UNTIL_GE(&b.n_held, 1, 2000));
    node_close_peers(&b);
    reply(b.held[0], 0, "after close", 11); /* b's pt_peers is gone: dropped */
    b.n_held = 0;
    assert_true(RUN_UNTIL_GE(&r.calls, 1, 2000));
    assert_int_equal(r.status, PT_E_UNAVAILABLE);
    assert_int_equal(request(&c, 2, T_ECHO, "x", 1, 1000, &r2), 0);
    assert_true(RUN_UNTIL_GE(&r2.calls, 1, 2000));
    assert_int_equal(r2.status, PT_E_UNAVAILABLE);
    node_stop(&b);
    node_stop(&c);

    pt_loopback_silent_stop(&s);
    answers_free(held, HELD);
    answers_free(queued, QUEUED);
    answers_free(&r, 1);
    answers_free(&r2, 1);
}

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
    struct node a, b;
    struct outcome o;
    struct peer_outcome po;
    struct answer r;
    unsigned ports[2];
    (void)state;

    memset(&o, 0, sizeof(o));
    memset(&po, 0, sizeof(po));
    memset(&r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 2);
    node_start(&a, 1, ports[0]);
    node_start(&b, 2, ports[1]);
    link_nodes(&a, &b);

    o.req.data = &o;
    assert_int_equal(b.net.t.connect(&b.net.t, &o.req, 1, a.net.address, raft_connect_cb), 0);
    assert_true(RUN_UNTIL_GE(&o.calls, 1, 2000));
    assert_int_equal(o.status, 0);
    assert_true(RUN_UNTIL_GE(&a.net.raft_accepted, 1, 2000));

    propose(&b, 1, "over the peer channel", 2000, &r);
    assert_true(RUN_UNTIL_GE(&r.calls, 1, 2000));
    assert_int_equal(r.status, 0);
    assert_int_equal(a.requests, 1);
    RUN_FOR(50);
    assert_int_equal(a.net.raft_accepted, 1);

    /* a's peers closed: the transport refuses peer channels, raft ones still work */
    node_close_peers(&a);
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

    node_stop(&a);
    node_stop(&b);
    answers_free(&r, 1);
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
    struct node a, b;
    struct pt_loopback_transport x;
    struct peer_outcome po;
    struct sink sink;
    struct answer r;
    unsigned ports[3];
    /* a valid request frame of type ECHO, call id 5, body "hi" */
    Portolan__PeerFrame f = PORTOLAN__PEER_FRAME__INIT;
    unsigned char good[64];
    size_t good_len;
    (void)state;

    f.call_id = 5;
    f.type = T_ECHO;
    f.body.data = (uint8_t *)"hi";
    f.body.len = 2;
    good_len = portolan__peer_frame__pack(&f, good + 4);
    good[0] = good[1] = good[2] = 0;
    good[3] = (unsigned char)good_len;
    good_len += 4;

    memset(&r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 3);
    node_start(&a, 1, ports[0]);
    node_start(&b, 2, ports[1]);
    link_nodes(&a, &b);
    pt_loopback_transport_init(&x, &loop, CLUSTER, 9, ports[2]);

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
        assert_int_equal(a.last_type, T_ECHO);
        uv_close((uv_handle_t *)po.stream, pt_loopback_free_stream_cb);
    }
    assert_int_equal(a.requests, 3);

    /* a still serves b */
    assert_int_equal(request(&b, 1, T_ECHO, "ok", 2, 2000, &r), 0);
    assert_true(RUN_UNTIL_GE(&r.calls, 1, 2000));
    assert_int_equal(r.status, 0);

    pt_loopback_transport_close(&x, &loop, 2000);
    node_stop(&a);
    node_stop(&b);
    answers_free(&r, 1);
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
    struct node a;
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
        f.type = T_PROPOSE;
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
    node_start(&a, 1, ports[0]);
    pt_loopback_transport_init(&x, &loop, CLUSTER, 9, ports[1]);
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

    reply(a.held[0], PT_E_DENIED, NULL, 0);
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
    node_stop(&a);
    free(col.buf);
    free(frames);
}

/* Shutdown in the other order (raft_close and pt_transport_close before pt_peers_close): the
 * open channel keeps working, reconnecting through the released transport fails cleanly, and
 * pt_peers_close still completes. */
static void test_transport_closed_first(void **state)
{
    struct node a, b;
    struct answer r[3];
    unsigned ports[2];
    (void)state;

    memset(r, 0, sizeof(r));
    pt_loopback_free_ports(ports, 2);
    node_start(&a, 1, ports[0]);
    node_start(&b, 2, ports[1]);
    link_nodes(&a, &b);
    propose(&a, 2, "first", 2000, &r[0]);
    assert_true(RUN_UNTIL_GE(&r[0].calls, 1, 2000));
    assert_int_equal(r[0].status, 0);

    pt_loopback_transport_close(&a.net, &loop, 2000);
    propose(&a, 2, "second", 2000, &r[1]);
    assert_true(RUN_UNTIL_GE(&r[1].calls, 1, 2000));
    assert_int_equal(r[1].status, 0);

    node_close_peers(&b); /* a's channel drops; a retries through the released transport */
    RUN_FOR(400);
    assert_int_equal(request(&a, 2, T_ECHO, "x", 1, 2000, &r[2]), 0);
    assert_true(RUN_UNTIL_GE(&r[2].calls, 1, 2000));
    assert_int_equal(r[2].status, PT_E_UNAVAILABLE);
    node_close_peers(&a);
    node_stop(&b);
    answers_free(r, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_down, setup, teardown),
        cmocka_unit_test_setup_teardown(test_reconnect, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rtt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_pending, setup, teardown),
        cmocka_unit_test_setup_teardown(test_channels_separate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_protocol_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_incoming_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transport_closed_first, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
