/*
 * test_transport_handshake.c - the handshake of the Raft transport (replication/transport.c)
 * on real sockets and one libuv loop: raw clients speaking anything but a valid HELLO are
 * dropped, and the accepted HELLO is answered with exactly the documented WELCOME bytes;
 * silent peers time out on both sides; closing cancels pending connects (RAFT_CANCELED, before
 * the close callback) and inbound handshakes in progress; inbound handshakes beyond the limit
 * wait in the backlog; a held transport refuses raft channels until the hold ends. Every test ends
 * with uv_loop_close() == 0, i.e. no handle left open; ASan checks that no memory is left behind.
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

struct bad_case {
    const char *what;
    size_t len;
};

/* ---- Tests -------------------------------------------------------------------------------- */

/* (c) raw clients: anything but a valid HELLO is dropped at once, nothing reaches raft; a
 * valid HELLO gets exactly the documented WELCOME. */
static void test_rejects_bad_handshakes(void **state)
{
    struct pt_side a;
    struct pt_probe p;
    unsigned ports[1];
    char addr_a[64];
    unsigned char msg[1024];
    size_t len;
    (void)state;

    pt_loopback_free_ports(ports, 1);
    snprintf(addr_a, sizeof(addr_a), "localhost:%u", ports[0]);
    pt_side_init(&a, &loop, CLUSTER, 1, addr_a);
    pt_side_listen(&a);

    struct bad_case cases[12];
    unsigned char bufs[12][1024];
    int n = 0;

    memcpy(bufs[n], "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    cases[n++] = (struct bad_case){"http request", 27};
    memcpy(bufs[n], "\x89PTRAFX\n", 8);
    memset(bufs[n] + 8, 0, 8);
    cases[n++] = (struct bad_case){"wrong magic", 16};
    len = pt_probe_hello(bufs[n], 2, 1, 9, CLUSTER, "peer:7000", -1);
    cases[n++] = (struct bad_case){"version 2", len};
    len = pt_probe_hello(bufs[n], 1, 2, 9, CLUSTER, "peer:7000", -1);
    cases[n++] = (struct bad_case){"welcome instead of hello", len};
    len = pt_probe_hello(bufs[n], 1, 1, 9, CLUSTER, "peer:7000", 1000000);
    cases[n++] = (struct bad_case){"body too large", len};
    len = pt_probe_hello(bufs[n], 1, 1, 9, CLUSTER, "peer:7000", 5);
    cases[n++] = (struct bad_case){"body too small", len};
    len = pt_probe_hello(bufs[n], 1, 1, 9, "other", "peer:7000", -1);
    cases[n++] = (struct bad_case){"other cluster", len};
    len = pt_probe_hello(bufs[n], 1, 1, 9, CLUSTER "x", "peer:7000", -1);
    cases[n++] = (struct bad_case){"cluster id with a suffix", len};
    len = pt_probe_hello(bufs[n], 1, 1, 0, CLUSTER, "peer:7000", -1);
    cases[n++] = (struct bad_case){"server id 0", len};
    len = pt_probe_hello(bufs[n], 1, 1, 1, CLUSTER, "peer:7000", -1);
    cases[n++] = (struct bad_case){"acceptor's own id", len};
    len = pt_probe_hello(bufs[n], 1, 1, 9, CLUSTER, "no port", -1);
    cases[n++] = (struct bad_case){"malformed address", len};
    len = pt_probe_hello(bufs[n], 1, 1, 9, CLUSTER, "peer:7000", 12 + strlen(CLUSTER) + 9 + 3);
    cases[n++] = (struct bad_case){"lengths do not add up", len};

    for (int i = 0; i < n; i++) {
        pt_probe_start(&p, &loop, ports[0], bufs[i], cases[i].len);
        /* well before the 5 s handshake timeout */
        if (!RUN_UNTIL_GE(&p.ended, 1, 2000))
            fail_msg("case \"%s\": connection not dropped", cases[i].what);
        if (p.in_len != 0)
            fail_msg("case \"%s\": got %zu bytes back", cases[i].what, p.in_len);
        pt_probe_close(&p);
    }
    assert_int_equal(a.n_accepted, 0);

    /* A valid HELLO, sent in two pieces' worth of bytes at once: WELCOME comes back. */
    len = pt_probe_hello(msg, 1, 1, 9, CLUSTER, "peer.example:7000", -1);
    pt_probe_start(&p, &loop, ports[0], msg, len);
    size_t clen = strlen(CLUSTER);
    int want = (int)(16 + 10 + clen);
    unsigned char expect[128];
    memcpy(expect, "\x89PTRAFT\n\x00\x01\x02\x00", 12);
    expect[12] = 0;
    expect[13] = 0;
    expect[14] = 0;
    expect[15] = (unsigned char)(10 + clen);
    memset(expect + 16, 0, 8);
    expect[23] = 1; /* acceptor id */
    expect[24] = 0;
    expect[25] = (unsigned char)clen;
    memcpy(expect + 26, CLUSTER, clen);
    for (int i = 0; i < 200 && (int)p.in_len < want; i++)
        RUN_FOR(10);
    assert_int_equal((int)p.in_len, want);
    assert_memory_equal(p.in, expect, (size_t)want);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 1, 2000));
    assert_int_equal(a.accepted_id, 9);
    assert_string_equal(a.accepted_address, "peer.example:7000");
    assert_int_equal(p.ended, 0);
    pt_probe_close(&p);

    pt_side_close(&a);
}

/* Silent peers: both sides give up after the handshake timeout. */
static void test_handshake_timeouts(void **state)
{
    struct pt_side a, b;
    struct pt_loopback_silent s;
    struct pt_probe p;
    struct pt_outcome o;
    unsigned ports[3];
    char addr_a[64], addr_b[64], addr_s[64];
    uint64_t start;
    (void)state;

    pt_loopback_free_ports(ports, 3);
    snprintf(addr_a, sizeof(addr_a), "localhost:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "localhost:%u", ports[1]);
    snprintf(addr_s, sizeof(addr_s), "localhost:%u", ports[2]);
    pt_side_init(&a, &loop, CLUSTER, 1, addr_a);
    assert_int_equal(pt_transport_set_timeout(&a.t, 200), 0);
    pt_side_listen(&a);

    /* inbound: a client that sends half a header and then nothing */
    uv_update_time(&loop);
    start = uv_now(&loop);
    pt_probe_start(&p, &loop, ports[0], "\x89PTRAFT\n", 8);
    assert_true(RUN_UNTIL_GE(&p.ended, 1, 3000));
    assert_true(p.ended_at - start >= 150);
    assert_int_equal(a.n_accepted, 0);
    pt_probe_close(&p);

    /* outbound: a server that accepts and never answers */
    pt_loopback_silent_start(&s, &loop, ports[2]);
    pt_side_init(&b, &loop, CLUSTER, 2, addr_b);
    assert_int_equal(pt_transport_set_timeout(&b.t, 200), 0);
    uv_update_time(&loop);
    start = uv_now(&loop);
    pt_side_connect_and_wait(&b, &o, 1, addr_s);
    assert_int_equal(o.status, RAFT_NOCONNECTION);
    assert_true(uv_now(&loop) - start >= 150);
    assert_int_equal(s.n, 1);

    pt_loopback_silent_stop(&s);
    pt_side_close(&a);
    pt_side_close(&b);
}

/* (d) closing cancels: a connect waiting for the handshake, a connect still resolving, and an
 * inbound handshake in progress. Callbacks come after close() returns, connects before the
 * close callback. */
static void test_close_cancels(void **state)
{
    struct pt_side a, b, c;
    struct pt_loopback_silent s;
    struct pt_probe p;
    struct pt_outcome o;
    unsigned ports[4];
    char addr_a[64], addr_b[64], addr_c[64], addr_s[64];
    (void)state;

    pt_loopback_free_ports(ports, 4);
    snprintf(addr_a, sizeof(addr_a), "localhost:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "localhost:%u", ports[1]);
    snprintf(addr_c, sizeof(addr_c), "localhost:%u", ports[2]);
    snprintf(addr_s, sizeof(addr_s), "localhost:%u", ports[3]);

    /* connected at the TCP level, waiting for the WELCOME */
    pt_loopback_silent_start(&s, &loop, ports[3]);
    pt_side_init(&b, &loop, CLUSTER, 2, addr_b);
    memset(&o, 0, sizeof(o));
    o.req.data = &o;
    assert_int_equal(b.t.connect(&b.t, &o.req, 1, addr_s, pt_side_connect_cb), 0);
    assert_true(RUN_UNTIL_GE(&s.n, 1, 2000));
    RUN_FOR(20);
    assert_int_equal(o.calls, 0);
    b.t.close(&b.t, pt_side_close_cb);
    assert_int_equal(o.calls, 0);
    assert_int_equal(b.closed, 0);
    assert_true(RUN_UNTIL_GE(&b.closed, 1, 2000));
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, RAFT_CANCELED);
    assert_null(o.stream);
    assert_true(o.seq < b.close_seq);
    pt_transport_close(&b.t);
    pt_loopback_silent_stop(&s);

    /* still resolving the name */
    pt_side_init(&c, &loop, CLUSTER, 3, addr_c);
    memset(&o, 0, sizeof(o));
    o.req.data = &o;
    assert_int_equal(c.t.connect(&c.t, &o.req, 1, addr_a, pt_side_connect_cb), 0);
    c.t.close(&c.t, pt_side_close_cb);
    assert_int_equal(o.calls, 0);
    assert_true(RUN_UNTIL_GE(&c.closed, 1, 5000));
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, RAFT_CANCELED);
    assert_true(o.seq < c.close_seq);
    assert_int_equal(c.t.connect(&c.t, &o.req, 1, addr_a, pt_side_connect_cb), RAFT_CANCELED);
    pt_transport_close(&c.t);

    /* an inbound handshake in progress: the client is dropped, raft never hears of it */
    pt_side_init(&a, &loop, CLUSTER, 1, addr_a);
    pt_side_listen(&a);
    pt_probe_start(&p, &loop, ports[0], "", 0);
    assert_true(RUN_UNTIL_GE(&p.connected, 1, 2000));
    RUN_FOR(50);
    a.t.close(&a.t, pt_side_close_cb);
    assert_true(RUN_UNTIL_GE(&a.closed, 1, 2000));
    assert_true(RUN_UNTIL_GE(&p.ended, 1, 2000));
    assert_int_equal(a.n_accepted, 0);
    pt_transport_close(&a.t);
    pt_probe_close(&p);
}

/* Inbound handshakes beyond PT_TRANSPORT_MAX_INBOUND wait in the backlog: with timeout T,
 * the first accepted connection frees its slot no earlier than T after the start, so the
 * surplus cannot be dropped before 2T; all are dropped eventually. The probes come from twelve
 * addresses, fewer than PT_TRANSPORT_MAX_INBOUND_PER_SOURCE from each. */
#define EXTRA 6
static void test_inbound_limit(void **state)
{
    enum { N = PT_TRANSPORT_MAX_INBOUND + EXTRA, T = 300 };
    struct pt_side a;
    struct pt_probe *p = calloc(N, sizeof(*p));
    unsigned ports[1];
    char addr_a[64];
    uint64_t start;
    int ended = 0, late = 0;
    (void)state;

    assert_non_null(p);
    pt_loopback_free_ports(ports, 1);
    snprintf(addr_a, sizeof(addr_a), "127.0.0.1:%u", ports[0]);
    pt_side_init(&a, &loop, CLUSTER, 1, addr_a);
    assert_int_equal(pt_transport_set_timeout(&a.t, T), 0);
    pt_side_listen(&a);

    uv_update_time(&loop);
    start = uv_now(&loop);
    _Static_assert(N / 12 + 1 < PT_TRANSPORT_MAX_INBOUND_PER_SOURCE, "probes per address");
    for (int i = 0; i < N; i++) {
        char src[32];
        snprintf(src, sizeof(src), "127.0.0.%d", 2 + i % 12);
        pt_probe_start_from(&p[i], &loop, src, ports[0], "", 0);
    }
    RUN_FOR(T * 7 / 4);
    for (int i = 0; i < N; i++)
        ended += p[i].ended;
    if (uv_now(&loop) - start < 2 * T)
        assert_true(ended <= PT_TRANSPORT_MAX_INBOUND);
    for (int i = 0; i < N; i++) {
        assert_true(RUN_UNTIL_GE(&p[i].ended, 1, 4000));
        assert_true(p[i].ended_at - start >= T - 50);
        late += p[i].ended_at - start >= 2 * T - 50;
    }
    /* the surplus waited for a slot, then for a full timeout of its own */
    assert_true(late >= EXTRA);
    for (int i = 0; i < N; i++)
        pt_probe_close(&p[i]);
    assert_int_equal(a.n_accepted, 0);
    pt_side_close(&a);
    free(p);
}

/* Idle connections from one address beyond PT_TRANSPORT_MAX_INBOUND_PER_SOURCE end the oldest
 * ones at once, not after the (long) time-out, and a real peer from that same address still
 * completes its handshake while the flood holds its slots. */
static void test_inbound_per_source(void **state)
{
    enum { N = 2 * PT_TRANSPORT_MAX_INBOUND, T = 60000 };
    struct pt_side a, b;
    struct pt_outcome o;
    struct pt_probe *p = calloc(N, sizeof(*p));
    unsigned ports[2];
    char addr_a[64], addr_b[64];
    int ended = 0;
    (void)state;

    assert_non_null(p);
    pt_loopback_free_ports(ports, 2);
    snprintf(addr_a, sizeof(addr_a), "127.0.0.1:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "127.0.0.1:%u", ports[1]);
    pt_side_init(&a, &loop, CLUSTER, 1, addr_a);
    assert_int_equal(pt_transport_set_timeout(&a.t, T), 0);
    pt_side_listen(&a);
    for (int i = 0; i < N; i++)
        pt_probe_start(&p[i], &loop, ports[0], "", 0);
    /* every probe but the last few accepted is ended long before the time-out */
    for (int round = 0; round < 200 && ended < N - PT_TRANSPORT_MAX_INBOUND_PER_SOURCE; round++) {
        RUN_FOR(100);
        ended = 0;
        for (int i = 0; i < N; i++)
            ended += p[i].ended;
    }
    assert_true(ended >= N - PT_TRANSPORT_MAX_INBOUND_PER_SOURCE);

    pt_side_init(&b, &loop, CLUSTER, 2, addr_b);
    pt_side_connect_and_wait(&b, &o, 1, addr_a);
    assert_int_equal(o.status, 0);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 1, 5000));
    uv_close((uv_handle_t *)o.stream, pt_loopback_free_stream_cb);

    for (int i = 0; i < N; i++)
        pt_probe_close(&p[i]);
    pt_side_close(&b);
    pt_side_close(&a);
    free(p);
}

/* A held transport (pt_transport_hold_raft: a region restarted less than an election timeout
 * ago) refuses raft channels until the hold ends, then accepts them again. */
static void test_raft_hold(void **state)
{
    struct pt_side a, b;
    struct pt_outcome o;
    unsigned ports[2];
    char addr_a[64], addr_b[64];
    (void)state;

    pt_loopback_free_ports(ports, 2);
    snprintf(addr_a, sizeof(addr_a), "127.0.0.1:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "127.0.0.1:%u", ports[1]);
    pt_side_init(&a, &loop, CLUSTER, 1, addr_a);
    pt_side_listen(&a);
    pt_transport_hold_raft(&a.t, 60000);
    pt_side_init(&b, &loop, CLUSTER, 2, addr_b);
    pt_side_connect_and_wait(&b, &o, 1, addr_a);
    assert_int_not_equal(o.status, 0);
    assert_null(o.stream);
    RUN_FOR(100);
    assert_int_equal(a.n_accepted, 0);

    pt_transport_hold_raft(&a.t, 0);
    pt_side_connect_and_wait(&b, &o, 1, addr_a);
    assert_int_equal(o.status, 0);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 1, 5000));
    uv_close((uv_handle_t *)o.stream, pt_loopback_free_stream_cb);

    pt_side_close(&b);
    pt_side_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_rejects_bad_handshakes, pt_side_setup,
                                                 pt_side_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_handshake_timeouts, pt_side_setup,
                                                 pt_side_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_close_cancels, pt_side_setup,
                                                 pt_side_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_inbound_per_source, pt_side_setup,
                                                 pt_side_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_inbound_limit, pt_side_setup,
                                                 pt_side_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_raft_hold, pt_side_setup, pt_side_teardown,
                                                 &loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
