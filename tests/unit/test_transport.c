/*
 * test_transport.c - the Raft transport (replication/transport.c) on real sockets and one libuv
 * loop, seen from the side that connects and listens: addresses are parsed and checked;
 * connecting by name ("localhost:PORT") and by IPv6 literal hands both sides a working stream
 * with the right peer id and address; wrong peers (other cluster, other server id),
 * unresolvable names, refused connections and malformed addresses fail with the right RAFT_*
 * code; listen honours the bind address and refuses a port in use, a second listen and an own
 * name that does not resolve; and allocation failures are survived. The handshake itself is
 * tested in test_transport_handshake.c, peer channels in test_transport_channels.c, raft over
 * the transport in test_transport_raft.c. Every test ends with uv_loop_close() == 0, i.e. no
 * handle left open; ASan checks that no memory is left behind.
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

/* ---- Tests -------------------------------------------------------------------------------- */

static void test_parse_address(void **state)
{
    char host[PT_HOST_MAX + 1];
    unsigned port = 0;
    char long_name[300];
    (void)state;

    assert_int_equal(pt_transport_parse_address("localhost:7000", host, sizeof(host), &port), 0);
    assert_string_equal(host, "localhost");
    assert_int_equal(port, 7000);
    assert_int_equal(pt_transport_parse_address("10.1.2.3:1", host, sizeof(host), &port), 0);
    assert_string_equal(host, "10.1.2.3");
    assert_int_equal(port, 1);
    assert_int_equal(pt_transport_parse_address("[::1]:65535", host, sizeof(host), &port), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 65535);
    assert_int_equal(pt_transport_parse_address("[fe80::1%eth0]:7000", host, sizeof(host), &port),
                     0);
    assert_string_equal(host, "fe80::1%eth0");
    assert_int_equal(pt_transport_parse_address("node-1.portolan_peers.svc.cluster.local:7000",
                                                host, sizeof(host), &port),
                     0);
    assert_string_equal(host, "node-1.portolan_peers.svc.cluster.local");

    const char *bad[] = {"",           "localhost",     "localhost:", ":7000",        "host:0",
                         "host:65536", "host:99999999", "host:7a",    "host:+7",      "::1:7000",
                         "[::1]",      "[::1]7000",     "[]:7000",    "[1.2.3.4]:7",  "[::1%]:7000",
                         "[::g]:7000", "a b:7000",      "a/b:7000",   "h\xc3\xa9:70", "[::1]:7000x",
                         "host:-1",    "[::1%a b]:7"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (pt_transport_parse_address(bad[i], host, sizeof(host), &port) != PT_E_CONFIG)
            fail_msg("accepted bad address \"%s\"", bad[i]);
    }
    assert_int_equal(pt_transport_parse_address(NULL, host, sizeof(host), &port), PT_E_CONFIG);
    /* host too long for the caller's buffer, and longer than a DNS name may be */
    assert_int_equal(pt_transport_parse_address("abcdef:1", host, 6, &port), PT_E_CONFIG);
    assert_int_equal(pt_transport_parse_address("abcdef:1", host, 7, &port), 0);
    memset(long_name, 'a', 254);
    strcpy(long_name + 254, ":1");
    assert_int_equal(pt_transport_parse_address(long_name, host, sizeof(host), &port), PT_E_CONFIG);
    strcpy(long_name + 253, ":1");
    assert_int_equal(pt_transport_parse_address(long_name, host, sizeof(host), &port), 0);
}

static void test_init_errors(void **state)
{
    struct raft_uv_transport t;
    char long_id[PT_CLUSTER_ID_MAX + 2];
    int marker;
    (void)state;

    assert_int_equal(pt_transport_init(&t, &loop, ""), PT_E_CONFIG);
    assert_int_equal(pt_transport_init(&t, &loop, NULL), PT_E_CONFIG);
    assert_int_equal(pt_transport_init(&t, &loop, "has space"), PT_E_CONFIG);
    assert_int_equal(pt_transport_init(&t, &loop, "tab\there"), PT_E_CONFIG);
    memset(long_id, 'c', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(pt_transport_init(&t, &loop, long_id), PT_E_CONFIG);
    long_id[PT_CLUSTER_ID_MAX] = '\0';

    t.data = &marker;
    assert_int_equal(pt_transport_init(&t, &loop, long_id), 0);
    assert_ptr_equal(t.data, &marker); /* raft_uv's field survives */
    assert_non_null(t.init);
    assert_non_null(t.listen);
    assert_non_null(t.connect);
    assert_non_null(t.close);

    assert_int_equal(t.init(&t, 1, "no-port"), RAFT_INVALID);
    assert_true(t.errmsg[0] != '\0');
    assert_int_equal(t.init(&t, 0, "localhost:7000"), RAFT_INVALID);
    /* connect and listen before a successful init are refused */
    struct pt_outcome o;
    memset(&o, 0, sizeof(o));
    o.req.data = &o;
    assert_int_equal(t.connect(&t, &o.req, 2, "localhost:7000", pt_side_connect_cb), RAFT_INVALID);
    assert_int_equal(pt_transport_set_timeout(&t, 0), PT_E_CONFIG);
    assert_int_equal(pt_transport_set_timeout(&t, 600001), PT_E_CONFIG);
    assert_int_equal(pt_transport_set_timeout(&t, 250), 0);
    assert_int_equal(pt_transport_set_bind_address(&t, "0.0.0.0"), PT_E_CONFIG);
    assert_int_equal(pt_transport_set_bind_address(&t, "0.0.0.0:7000"), 0);
    assert_int_equal(t.listen(&t, pt_side_accept_cb), RAFT_INVALID);
    RUN_FOR(10);
    assert_int_equal(o.calls, 0);
    /* never listened nor connected: released without t.close */
    pt_transport_close(&t);
}

/* (a) a name is resolved at connect; both sides get the stream and the right identity. */
static void test_connect_by_name(void **state)
{
    struct pt_side a, b;
    struct pt_outcome o;
    unsigned ports[2];
    char addr_a[64], addr_b[64];
    (void)state;

    pt_loopback_free_ports(ports, 2);
    snprintf(addr_a, sizeof(addr_a), "localhost:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "localhost:%u", ports[1]);
    pt_side_init(&a, &loop, CLUSTER, 1, addr_a);
    pt_side_listen(&a);
    pt_side_init(&b, &loop, CLUSTER, 2, addr_b);

    pt_side_connect_and_wait(&b, &o, 1, addr_a);
    assert_int_equal(o.status, 0);
    assert_non_null(o.stream);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 1, 2000));
    assert_int_equal(a.accepted_id, 2);
    assert_string_equal(a.accepted_address, addr_b);

    pt_side_check_data_flows(o.stream, a.accepted[0], "raft bytes after the handshake");

    /* a second connection, this time to the IPv4 literal */
    struct pt_outcome o2;
    char lit_a[64];
    snprintf(lit_a, sizeof(lit_a), "127.0.0.1:%u", ports[0]);
    pt_side_connect_and_wait(&b, &o2, 1, lit_a);
    assert_int_equal(o2.status, 0);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 2, 2000));
    pt_side_check_data_flows(o2.stream, a.accepted[1], "second stream");

    uv_close((uv_handle_t *)o.stream, pt_loopback_free_stream_cb);
    uv_close((uv_handle_t *)o2.stream, pt_loopback_free_stream_cb);
    pt_side_close(&a);
    pt_side_close(&b);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o2.calls, 1);
}

/* (a) the same over an IPv6 literal, when the host has ::1. */
static void test_connect_ipv6_literal(void **state)
{
    struct pt_side a, b;
    struct pt_outcome o;
    unsigned ports[2];
    char addr_a[64], addr_b[64];
    int rv;
    (void)state;

    pt_loopback_free_ports(ports, 2);
    snprintf(addr_a, sizeof(addr_a), "[::1]:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "[::1]:%u", ports[1]);
    pt_side_init(&a, &loop, CLUSTER, 1, addr_a);
    rv = a.t.listen(&a.t, pt_side_accept_cb);
    if (rv != 0) {
        assert_int_equal(rv, RAFT_IOERR);
        pt_side_close(&a);
        skip();
    }
    pt_side_init(&b, &loop, CLUSTER, 2, addr_b);
    pt_side_connect_and_wait(&b, &o, 1, addr_a);
    assert_int_equal(o.status, 0);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 1, 2000));
    assert_int_equal(a.accepted_id, 2);
    assert_string_equal(a.accepted_address, addr_b);
    pt_side_check_data_flows(o.stream, a.accepted[0], "over ipv6");
    uv_close((uv_handle_t *)o.stream, pt_loopback_free_stream_cb);
    pt_side_close(&a);
    pt_side_close(&b);
}

/* The connecting side refuses an acceptor that is not the server it asked for, and the
 * acceptor refuses a peer of another cluster. */
static void test_refuses_wrong_peer(void **state)
{
    struct pt_side a, b, c;
    struct pt_outcome o;
    unsigned ports[3];
    char addr_a[64], addr_b[64], addr_c[64];
    int accepted_before;
    (void)state;

    pt_loopback_free_ports(ports, 3);
    snprintf(addr_a, sizeof(addr_a), "localhost:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "localhost:%u", ports[1]);
    snprintf(addr_c, sizeof(addr_c), "localhost:%u", ports[2]);
    pt_side_init(&a, &loop, CLUSTER, 1, addr_a);
    pt_side_listen(&a);
    pt_side_init(&b, &loop, CLUSTER, 2, addr_b);
    pt_side_init(&c, &loop, "another-cluster", 3, addr_c);

    /* b believes server 7 lives at a's address (an IP reused by another member) */
    pt_side_connect_and_wait(&b, &o, 7, addr_a);
    assert_int_equal(o.status, RAFT_NOCONNECTION);
    RUN_FOR(50);

    /* c is of another cluster: a drops it before answering, nothing reaches a's raft */
    accepted_before = a.n_accepted;
    pt_side_connect_and_wait(&c, &o, 1, addr_a);
    assert_int_equal(o.status, RAFT_NOCONNECTION);
    RUN_FOR(50);
    assert_int_equal(a.n_accepted, accepted_before);

    pt_side_close(&a);
    pt_side_close(&b);
    pt_side_close(&c);
}

/* (b) unresolvable names, refused connections and malformed addresses. */
static void test_connect_failures(void **state)
{
    struct pt_side b;
    struct pt_outcome o, bad;
    unsigned ports[2];
    char addr_b[64], refused[64];
    (void)state;

    pt_loopback_free_ports(ports, 2);
    snprintf(addr_b, sizeof(addr_b), "localhost:%u", ports[0]);
    snprintf(refused, sizeof(refused), "localhost:%u", ports[1]); /* nobody listens */
    pt_side_init(&b, &loop, CLUSTER, 2, addr_b);

    pt_side_connect_and_wait(&b, &o, 1, "portolan-peer.invalid:7000");
    assert_int_equal(o.status, RAFT_NOCONNECTION);
    assert_null(o.stream);

    pt_side_connect_and_wait(&b, &o, 1, refused);
    assert_int_equal(o.status, RAFT_NOCONNECTION);
    assert_null(o.stream);

    /* synchronous refusals never call the callback */
    memset(&bad, 0, sizeof(bad));
    bad.req.data = &bad;
    assert_int_equal(b.t.connect(&b.t, &bad.req, 1, "no-port", pt_side_connect_cb), RAFT_INVALID);
    assert_int_equal(b.t.connect(&b.t, &bad.req, 1, "[::1]", pt_side_connect_cb), RAFT_INVALID);
    assert_int_equal(b.t.connect(&b.t, &bad.req, 1, "host:70000", pt_side_connect_cb),
                     RAFT_INVALID);
    assert_int_equal(b.t.connect(&b.t, &bad.req, 1, "bad name:1", pt_side_connect_cb),
                     RAFT_INVALID);
    assert_int_equal(b.t.connect(&b.t, &bad.req, 0, refused, pt_side_connect_cb), RAFT_INVALID);
    RUN_FOR(20);
    assert_int_equal(bad.calls, 0);

    pt_side_close(&b);
    assert_int_equal(o.calls, 1);
    assert_int_equal(bad.calls, 0);
}

/* listen: the bind address replaces the raft address for listening only; a port in use, a
 * second listen and an own name that does not resolve are refused. */
static void test_listen_errors(void **state)
{
    struct pt_side a, b, c;
    struct pt_outcome o;
    unsigned ports[2];
    char addr[64], bind_addr[64], lit[64], addr_b[64];
    (void)state;

    pt_loopback_free_ports(ports, 2);
    snprintf(addr, sizeof(addr), "portolan-self.invalid:%u", ports[0]);
    snprintf(bind_addr, sizeof(bind_addr), "127.0.0.1:%u", ports[0]);
    snprintf(lit, sizeof(lit), "127.0.0.1:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "localhost:%u", ports[1]);

    /* the own name does not resolve: listen fails, close still completes */
    pt_side_init(&c, &loop, CLUSTER, 3, addr);
    assert_int_equal(c.t.listen(&c.t, pt_side_accept_cb), RAFT_IOERR);
    assert_non_null(strstr(c.t.errmsg, "portolan-self.invalid"));
    pt_side_close(&c);

    /* with a bind address it listens, and peers reach it */
    pt_side_init(&a, &loop, CLUSTER, 1, addr);
    assert_int_equal(pt_transport_set_bind_address(&a.t, bind_addr), 0);
    pt_side_listen(&a);
    assert_int_equal(a.t.listen(&a.t, pt_side_accept_cb), RAFT_INVALID);
    pt_side_init(&b, &loop, CLUSTER, 2, addr_b);
    pt_side_connect_and_wait(&b, &o, 1, lit);
    assert_int_equal(o.status, 0);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 1, 2000));
    assert_string_equal(a.accepted_address, addr_b);
    uv_close((uv_handle_t *)o.stream, pt_loopback_free_stream_cb);

    /* the port is taken */
    pt_side_init(&c, &loop, CLUSTER, 3, lit);
    assert_int_equal(c.t.listen(&c.t, pt_side_accept_cb), RAFT_IOERR);
    assert_non_null(strstr(c.t.errmsg, "listen on 127.0.0.1:"));
    pt_side_close(&c);

    pt_side_close(&a);
    pt_side_close(&b);
}

/* Allocation failures, injected through raft's heap (the transport allocates from it). */
static bool heap_fail;

static void *h_malloc(void *data, size_t n)
{
    (void)data;
    return heap_fail ? NULL : malloc(n);
}

static void h_free(void *data, void *ptr)
{
    (void)data;
    free(ptr);
}

static void *h_calloc(void *data, size_t n, size_t size)
{
    (void)data;
    return heap_fail ? NULL : calloc(n, size);
}

static void *h_realloc(void *data, void *ptr, size_t n)
{
    (void)data;
    return heap_fail ? NULL : realloc(ptr, n);
}

static void *h_aligned_alloc(void *data, size_t alignment, size_t n)
{
    (void)data;
    return heap_fail ? NULL : aligned_alloc(alignment, n);
}

static void h_aligned_free(void *data, size_t alignment, void *ptr)
{
    (void)data;
    (void)alignment;
    free(ptr);
}

/* Out of memory: connect fails synchronously with RAFT_NOMEM; inbound connections are
 * accepted and dropped (several at once share one spare handle) and the listener keeps
 * working once memory is back. */
static void test_out_of_memory(void **state)
{
    struct raft_heap heap = {NULL,      h_malloc,        h_free,        h_calloc,
                             h_realloc, h_aligned_alloc, h_aligned_free};
    struct pt_side a, b;
    struct pt_outcome o, none;
    struct pt_probe p[3];
    unsigned ports[2];
    char addr_a[64], addr_b[64];
    unsigned char msg[512];
    size_t len;
    (void)state;

    pt_loopback_free_ports(ports, 2);
    snprintf(addr_a, sizeof(addr_a), "127.0.0.1:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "127.0.0.1:%u", ports[1]);
    raft_heap_set(&heap);
    heap_fail = true;
    assert_int_equal(pt_transport_init(&a.t, &loop, CLUSTER), PT_E_NOMEM);
    heap_fail = false;
    pt_side_init(&a, &loop, CLUSTER, 1, addr_a);
    pt_side_listen(&a);
    pt_side_init(&b, &loop, CLUSTER, 2, addr_b);

    heap_fail = true;
    memset(&none, 0, sizeof(none));
    none.req.data = &none;
    assert_int_equal(b.t.connect(&b.t, &none.req, 1, addr_a, pt_side_connect_cb), RAFT_NOMEM);
    for (int i = 0; i < 3; i++)
        pt_probe_start(&p[i], &loop, ports[0], "", 0);
    for (int i = 0; i < 3; i++)
        assert_true(RUN_UNTIL_GE(&p[i].ended, 1, 2000));
    heap_fail = false;
    for (int i = 0; i < 3; i++)
        pt_probe_close(&p[i]);
    assert_int_equal(none.calls, 0);
    assert_int_equal(a.n_accepted, 0);

    pt_side_connect_and_wait(&b, &o, 1, addr_a);
    assert_int_equal(o.status, 0);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 1, 2000));
    uv_close((uv_handle_t *)o.stream, pt_loopback_free_stream_cb);
    len = pt_probe_hello(msg, 1, 1, 9, CLUSTER, "peer:7000", -1);
    pt_probe_start(&p[0], &loop, ports[0], msg, len);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 2, 2000));
    pt_probe_close(&p[0]);

    pt_side_close(&a);
    pt_side_close(&b);
    raft_heap_set_default();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_parse_address, pt_side_setup,
                                                 pt_side_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_init_errors, pt_side_setup, pt_side_teardown,
                                                 &loop),
        cmocka_unit_test_prestate_setup_teardown(test_connect_by_name, pt_side_setup,
                                                 pt_side_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_connect_ipv6_literal, pt_side_setup,
                                                 pt_side_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_refuses_wrong_peer, pt_side_setup,
                                                 pt_side_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_connect_failures, pt_side_setup,
                                                 pt_side_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_listen_errors, pt_side_setup,
                                                 pt_side_teardown, &loop),
        cmocka_unit_test_prestate_setup_teardown(test_out_of_memory, pt_side_setup,
                                                 pt_side_teardown, &loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
