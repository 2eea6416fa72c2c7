/*
 * test_transport.c - the Raft transport (replication/transport.c) on real sockets and one libuv
 * loop: connecting by name ("localhost:PORT") and by IPv6 literal hands both sides a working
 * stream with the right peer id and address; wrong peers (other cluster, other server id),
 * unresolvable names, refused connections and malformed addresses fail with the right RAFT_*
 * code; raw clients speaking anything but a valid HELLO are dropped, and the accepted HELLO is
 * answered with exactly the documented WELCOME bytes; silent peers time out on both sides;
 * inbound handshakes beyond the limit wait in the backlog; closing cancels pending connects
 * (RAFT_CANCELED, before the close callback); peer channels (HELLO flag PEER) reach the
 * peer-accept hook and never raft, unknown flag bits are refused; and three raft servers over
 * this transport elect a leader, commit entries and shut down. Every test ends with
 * uv_loop_close() == 0, i.e. no handle left open; ASan checks that no memory is left behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <ftw.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <raft.h>
#include <raft/uv.h>

#include "err.h"
#include "support/loop.h"
#include "support/loopback.h"
#include "transport.h"

#define CLUSTER "test-cluster"

static uv_loop_t loop;
static int seq; /* orders callbacks across objects */

/* ---- Loop helpers ------------------------------------------------------------------------- */

#define RUN_UNTIL_GE(ptr, n, ms) PT_LOOP_RUN_UNTIL_GE(&loop, (ptr), (n), (ms))
#define RUN_FOR(ms)              PT_LOOP_RUN_FOR(&loop, (ms))

/* ---- A transport driven by hand (playing raft_uv's part) ---------------------------------- */

struct side {
    struct raft_uv_transport t;
    int n_accepted;
    raft_id accepted_id;
    char accepted_address[PT_CLUSTER_ADDRESS_MAX + 1];
    uv_stream_t *accepted[8];
    int closed;
    int close_seq;
};

struct outcome {
    struct raft_uv_connect req;
    int calls;
    int status;
    uv_stream_t *stream;
    int seq;
};

static void accept_cb(struct raft_uv_transport *t, raft_id id, const char *address,
                      uv_stream_t *stream)
{
    struct side *s = t->data;
    assert_non_null(stream);
    assert_true(s->n_accepted < 8);
    s->accepted[s->n_accepted++] = stream;
    s->accepted_id = id;
    snprintf(s->accepted_address, sizeof(s->accepted_address), "%s", address);
}

static void connect_cb(struct raft_uv_connect *req, uv_stream_t *stream, int status)
{
    struct outcome *o = req->data;
    o->calls++;
    o->status = status;
    o->stream = stream;
    o->seq = ++seq;
    if (status != 0)
        assert_null(stream);
}

static void transport_close_cb(struct raft_uv_transport *t)
{
    struct side *s = t->data;
    s->closed++;
    s->close_seq = ++seq;
}

static void side_init(struct side *s, const char *cluster, raft_id id, const char *address)
{
    memset(s, 0, sizeof(*s));
    s->t.data = s;
    assert_int_equal(pt_transport_init(&s->t, &loop, cluster), 0);
    assert_ptr_equal(s->t.data, s);
    assert_int_equal(s->t.init(&s->t, id, address), 0);
}

static void side_listen(struct side *s)
{
    assert_int_equal(s->t.listen(&s->t, accept_cb), 0);
}

/* Closes the streams it accepted, then the transport, and releases it. */
static void side_close(struct side *s)
{
    for (int i = 0; i < s->n_accepted; i++)
        uv_close((uv_handle_t *)s->accepted[i], pt_loopback_free_stream_cb);
    s->t.close(&s->t, transport_close_cb);
    assert_true(RUN_UNTIL_GE(&s->closed, 1, 5000));
    assert_int_equal(s->closed, 1);
    pt_transport_close(&s->t);
}

static void connect_and_wait(struct side *s, struct outcome *o, raft_id id, const char *address)
{
    memset(o, 0, sizeof(*o));
    o->req.data = o;
    assert_int_equal(s->t.connect(&s->t, &o->req, id, address, connect_cb), 0);
    assert_int_equal(o->calls, 0); /* never from inside connect */
    assert_true(RUN_UNTIL_GE(&o->calls, 1, 5000));
}

/* ---- Stream I/O for the tests ------------------------------------------------------------- */

struct reader {
    char buf[128];
    size_t len;
    int ended;
};

static void reader_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct reader *r = h->data;
    (void)suggested;
    *buf = uv_buf_init(r->buf + r->len, (unsigned)(sizeof(r->buf) - r->len));
}

static void reader_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct reader *r = s->data;
    (void)buf;
    if (nread > 0)
        r->len += (size_t)nread;
    else if (nread < 0) {
        r->ended = 1;
        uv_read_stop(s);
    }
}

static void write_done_cb(uv_write_t *w, int status)
{
    *(int *)w->data = status == 0 ? 1 : -1;
}

/* Sends text over from, reads it back on to. */
static void check_data_flows(uv_stream_t *from, uv_stream_t *to, const char *text)
{
    struct reader r = {.len = 0};
    uv_write_t w;
    int wrote = 0;
    uv_buf_t buf = uv_buf_init((char *)text, (unsigned)strlen(text));
    int len_target = (int)strlen(text);
    int got = 0;

    to->data = &r;
    assert_int_equal(uv_read_start(to, reader_alloc_cb, reader_read_cb), 0);
    w.data = &wrote;
    assert_int_equal(uv_write(&w, from, &buf, 1, write_done_cb), 0);
    for (int i = 0; i < 200 && (int)r.len < len_target; i++)
        RUN_FOR(10);
    assert_true(RUN_UNTIL_GE(&wrote, 1, 2000));
    got = (int)r.len;
    assert_int_equal(got, len_target);
    assert_memory_equal(r.buf, text, r.len);
    uv_read_stop(to);
    to->data = NULL;
}

/* ---- Raw clients and servers that speak bytes, not the transport -------------------------- */

struct probe {
    uv_tcp_t tcp;
    uv_connect_t conn;
    uv_write_t w;
    unsigned char out[1024];
    size_t out_len;
    unsigned char in[512];
    size_t in_len;
    int connected; /* 1 once connected */
    int ended;     /* 1 once the read side ended (EOF or error) */
    int closed;
    uint64_t ended_at;
};

static void probe_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct probe *p = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)p->in + p->in_len, (unsigned)(sizeof(p->in) - p->in_len));
}

static void probe_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct probe *p = s->data;
    (void)buf;
    if (nread > 0) {
        p->in_len += (size_t)nread;
    } else if (nread < 0) {
        p->ended = 1;
        p->ended_at = uv_now(&loop);
        uv_read_stop(s);
    }
}

static void probe_write_cb(uv_write_t *w, int status)
{
    (void)w;
    (void)status; /* the server may drop us before everything is written */
}

static void probe_connect_cb(uv_connect_t *c, int status)
{
    struct probe *p = c->data;
    assert_int_equal(status, 0);
    p->connected = 1;
    if (p->out_len > 0) {
        uv_buf_t b = uv_buf_init((char *)p->out, (unsigned)p->out_len);
        assert_int_equal(uv_write(&p->w, (uv_stream_t *)&p->tcp, &b, 1, probe_write_cb), 0);
    }
    assert_int_equal(uv_read_start((uv_stream_t *)&p->tcp, probe_alloc_cb, probe_read_cb), 0);
}

static void probe_start(struct probe *p, unsigned port, const void *bytes, size_t len)
{
    struct sockaddr_in sa;
    memset(p, 0, sizeof(*p));
    assert_true(len <= sizeof(p->out));
    memcpy(p->out, bytes, len);
    p->out_len = len;
    assert_int_equal(uv_ip4_addr("127.0.0.1", (int)port, &sa), 0);
    uv_tcp_init(&loop, &p->tcp);
    p->tcp.data = p;
    p->conn.data = p;
    assert_int_equal(uv_tcp_connect(&p->conn, &p->tcp, (struct sockaddr *)&sa, probe_connect_cb),
                     0);
}

static void probe_close_cb(uv_handle_t *h)
{
    struct probe *p = h->data;
    p->closed = 1;
}

static void probe_close(struct probe *p)
{
    uv_close((uv_handle_t *)&p->tcp, probe_close_cb);
    assert_true(RUN_UNTIL_GE(&p->closed, 1, 2000));
}

/* A handshake message as transport.c documents it. */
static size_t make_hello(unsigned char *p, unsigned version, unsigned type, uint64_t id,
                         const char *cluster, const char *address, long body_len)
{
    size_t clen = strlen(cluster), alen = strlen(address);
    size_t natural = 12 + clen + alen;
    uint32_t blen = body_len >= 0 ? (uint32_t)body_len : (uint32_t)natural;

    memcpy(p, "\x89PTRAFT\n", 8);
    p[8] = (unsigned char)(version >> 8);
    p[9] = (unsigned char)version;
    p[10] = (unsigned char)type;
    p[11] = 0;
    for (int i = 0; i < 4; i++)
        p[12 + i] = (unsigned char)(blen >> (24 - 8 * i));
    for (int i = 0; i < 8; i++)
        p[16 + i] = (unsigned char)(id >> (56 - 8 * i));
    p[24] = (unsigned char)(clen >> 8);
    p[25] = (unsigned char)clen;
    p[26] = (unsigned char)(alen >> 8);
    p[27] = (unsigned char)alen;
    memcpy(p + 28, cluster, clen);
    memcpy(p + 28 + clen, address, alen);
    /* pad to the announced body length when it is longer than the content (bounded) */
    if (blen > natural && blen - natural < 512) {
        memset(p + 16 + natural, 'x', blen - natural);
        return 16 + blen;
    }
    return 16 + natural;
}

struct bad_case {
    const char *what;
    size_t len;
};

/* ---- Fixture ------------------------------------------------------------------------------ */

static int setup(void **state)
{
    (void)state;
    seq = 0;
    return uv_loop_init(&loop);
}

static int teardown(void **state)
{
    (void)state;
    uv_run(&loop, UV_RUN_NOWAIT);
    /* 0 only if every handle the test and the transport opened was closed */
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

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
    struct outcome o;
    memset(&o, 0, sizeof(o));
    o.req.data = &o;
    assert_int_equal(t.connect(&t, &o.req, 2, "localhost:7000", connect_cb), RAFT_INVALID);
    assert_int_equal(pt_transport_set_timeout(&t, 0), PT_E_CONFIG);
    assert_int_equal(pt_transport_set_timeout(&t, 600001), PT_E_CONFIG);
    assert_int_equal(pt_transport_set_timeout(&t, 250), 0);
    assert_int_equal(pt_transport_set_bind_address(&t, "0.0.0.0"), PT_E_CONFIG);
    assert_int_equal(pt_transport_set_bind_address(&t, "0.0.0.0:7000"), 0);
    assert_int_equal(t.listen(&t, accept_cb), RAFT_INVALID);
    RUN_FOR(10);
    assert_int_equal(o.calls, 0);
    /* never listened nor connected: released without t.close */
    pt_transport_close(&t);
}

/* (a) a name is resolved at connect; both sides get the stream and the right identity. */
static void test_connect_by_name(void **state)
{
    struct side a, b;
    struct outcome o;
    unsigned ports[2];
    char addr_a[64], addr_b[64];
    (void)state;

    pt_loopback_free_ports(ports, 2);
    snprintf(addr_a, sizeof(addr_a), "localhost:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "localhost:%u", ports[1]);
    side_init(&a, CLUSTER, 1, addr_a);
    side_listen(&a);
    side_init(&b, CLUSTER, 2, addr_b);

    connect_and_wait(&b, &o, 1, addr_a);
    assert_int_equal(o.status, 0);
    assert_non_null(o.stream);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 1, 2000));
    assert_int_equal(a.accepted_id, 2);
    assert_string_equal(a.accepted_address, addr_b);

    check_data_flows(o.stream, a.accepted[0], "raft bytes after the handshake");

    /* a second connection, this time to the IPv4 literal */
    struct outcome o2;
    char lit_a[64];
    snprintf(lit_a, sizeof(lit_a), "127.0.0.1:%u", ports[0]);
    connect_and_wait(&b, &o2, 1, lit_a);
    assert_int_equal(o2.status, 0);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 2, 2000));
    check_data_flows(o2.stream, a.accepted[1], "second stream");

    uv_close((uv_handle_t *)o.stream, pt_loopback_free_stream_cb);
    uv_close((uv_handle_t *)o2.stream, pt_loopback_free_stream_cb);
    side_close(&a);
    side_close(&b);
    assert_int_equal(o.calls, 1);
    assert_int_equal(o2.calls, 1);
}

/* (a) the same over an IPv6 literal, when the host has ::1. */
static void test_connect_ipv6_literal(void **state)
{
    struct side a, b;
    struct outcome o;
    unsigned ports[2];
    char addr_a[64], addr_b[64];
    int rv;
    (void)state;

    pt_loopback_free_ports(ports, 2);
    snprintf(addr_a, sizeof(addr_a), "[::1]:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "[::1]:%u", ports[1]);
    side_init(&a, CLUSTER, 1, addr_a);
    rv = a.t.listen(&a.t, accept_cb);
    if (rv != 0) {
        assert_int_equal(rv, RAFT_IOERR);
        side_close(&a);
        skip();
    }
    side_init(&b, CLUSTER, 2, addr_b);
    connect_and_wait(&b, &o, 1, addr_a);
    assert_int_equal(o.status, 0);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 1, 2000));
    assert_int_equal(a.accepted_id, 2);
    assert_string_equal(a.accepted_address, addr_b);
    check_data_flows(o.stream, a.accepted[0], "over ipv6");
    uv_close((uv_handle_t *)o.stream, pt_loopback_free_stream_cb);
    side_close(&a);
    side_close(&b);
}

/* The connecting side refuses an acceptor that is not the server it asked for, and the
 * acceptor refuses a peer of another cluster. */
static void test_refuses_wrong_peer(void **state)
{
    struct side a, b, c;
    struct outcome o;
    unsigned ports[3];
    char addr_a[64], addr_b[64], addr_c[64];
    int accepted_before;
    (void)state;

    pt_loopback_free_ports(ports, 3);
    snprintf(addr_a, sizeof(addr_a), "localhost:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "localhost:%u", ports[1]);
    snprintf(addr_c, sizeof(addr_c), "localhost:%u", ports[2]);
    side_init(&a, CLUSTER, 1, addr_a);
    side_listen(&a);
    side_init(&b, CLUSTER, 2, addr_b);
    side_init(&c, "another-cluster", 3, addr_c);

    /* b believes server 7 lives at a's address (an IP reused by another member) */
    connect_and_wait(&b, &o, 7, addr_a);
    assert_int_equal(o.status, RAFT_NOCONNECTION);
    RUN_FOR(50);

    /* c is of another cluster: a drops it before answering, nothing reaches a's raft */
    accepted_before = a.n_accepted;
    connect_and_wait(&c, &o, 1, addr_a);
    assert_int_equal(o.status, RAFT_NOCONNECTION);
    RUN_FOR(50);
    assert_int_equal(a.n_accepted, accepted_before);

    side_close(&a);
    side_close(&b);
    side_close(&c);
}

/* (b) unresolvable names, refused connections and malformed addresses. */
static void test_connect_failures(void **state)
{
    struct side b;
    struct outcome o, bad;
    unsigned ports[2];
    char addr_b[64], refused[64];
    (void)state;

    pt_loopback_free_ports(ports, 2);
    snprintf(addr_b, sizeof(addr_b), "localhost:%u", ports[0]);
    snprintf(refused, sizeof(refused), "localhost:%u", ports[1]); /* nobody listens */
    side_init(&b, CLUSTER, 2, addr_b);

    connect_and_wait(&b, &o, 1, "portolan-peer.invalid:7000");
    assert_int_equal(o.status, RAFT_NOCONNECTION);
    assert_null(o.stream);

    connect_and_wait(&b, &o, 1, refused);
    assert_int_equal(o.status, RAFT_NOCONNECTION);
    assert_null(o.stream);

    /* synchronous refusals never call the callback */
    memset(&bad, 0, sizeof(bad));
    bad.req.data = &bad;
    assert_int_equal(b.t.connect(&b.t, &bad.req, 1, "no-port", connect_cb), RAFT_INVALID);
    assert_int_equal(b.t.connect(&b.t, &bad.req, 1, "[::1]", connect_cb), RAFT_INVALID);
    assert_int_equal(b.t.connect(&b.t, &bad.req, 1, "host:70000", connect_cb), RAFT_INVALID);
    assert_int_equal(b.t.connect(&b.t, &bad.req, 1, "bad name:1", connect_cb), RAFT_INVALID);
    assert_int_equal(b.t.connect(&b.t, &bad.req, 0, refused, connect_cb), RAFT_INVALID);
    RUN_FOR(20);
    assert_int_equal(bad.calls, 0);

    side_close(&b);
    assert_int_equal(o.calls, 1);
    assert_int_equal(bad.calls, 0);
}

/* (c) raw clients: anything but a valid HELLO is dropped at once, nothing reaches raft; a
 * valid HELLO gets exactly the documented WELCOME. */
static void test_rejects_bad_handshakes(void **state)
{
    struct side a;
    struct probe p;
    unsigned ports[1];
    char addr_a[64];
    unsigned char msg[1024];
    size_t len;
    (void)state;

    pt_loopback_free_ports(ports, 1);
    snprintf(addr_a, sizeof(addr_a), "localhost:%u", ports[0]);
    side_init(&a, CLUSTER, 1, addr_a);
    side_listen(&a);

    struct bad_case cases[12];
    unsigned char bufs[12][1024];
    int n = 0;

    memcpy(bufs[n], "GET / HTTP/1.1\r\nHost: x\r\n\r\n", 27);
    cases[n++] = (struct bad_case){"http request", 27};
    memcpy(bufs[n], "\x89PTRAFX\n", 8);
    memset(bufs[n] + 8, 0, 8);
    cases[n++] = (struct bad_case){"wrong magic", 16};
    len = make_hello(bufs[n], 2, 1, 9, CLUSTER, "peer:7000", -1);
    cases[n++] = (struct bad_case){"version 2", len};
    len = make_hello(bufs[n], 1, 2, 9, CLUSTER, "peer:7000", -1);
    cases[n++] = (struct bad_case){"welcome instead of hello", len};
    len = make_hello(bufs[n], 1, 1, 9, CLUSTER, "peer:7000", 1000000);
    cases[n++] = (struct bad_case){"body too large", len};
    len = make_hello(bufs[n], 1, 1, 9, CLUSTER, "peer:7000", 5);
    cases[n++] = (struct bad_case){"body too small", len};
    len = make_hello(bufs[n], 1, 1, 9, "other", "peer:7000", -1);
    cases[n++] = (struct bad_case){"other cluster", len};
    len = make_hello(bufs[n], 1, 1, 9, CLUSTER "x", "peer:7000", -1);
    cases[n++] = (struct bad_case){"cluster id with a suffix", len};
    len = make_hello(bufs[n], 1, 1, 0, CLUSTER, "peer:7000", -1);
    cases[n++] = (struct bad_case){"server id 0", len};
    len = make_hello(bufs[n], 1, 1, 1, CLUSTER, "peer:7000", -1);
    cases[n++] = (struct bad_case){"acceptor's own id", len};
    len = make_hello(bufs[n], 1, 1, 9, CLUSTER, "no port", -1);
    cases[n++] = (struct bad_case){"malformed address", len};
    len = make_hello(bufs[n], 1, 1, 9, CLUSTER, "peer:7000", 12 + strlen(CLUSTER) + 9 + 3);
    cases[n++] = (struct bad_case){"lengths do not add up", len};

    for (int i = 0; i < n; i++) {
        probe_start(&p, ports[0], bufs[i], cases[i].len);
        /* well before the 5 s handshake timeout */
        if (!RUN_UNTIL_GE(&p.ended, 1, 2000))
            fail_msg("case \"%s\": connection not dropped", cases[i].what);
        if (p.in_len != 0)
            fail_msg("case \"%s\": got %zu bytes back", cases[i].what, p.in_len);
        probe_close(&p);
    }
    assert_int_equal(a.n_accepted, 0);

    /* A valid HELLO, sent in two pieces' worth of bytes at once: WELCOME comes back. */
    len = make_hello(msg, 1, 1, 9, CLUSTER, "peer.example:7000", -1);
    probe_start(&p, ports[0], msg, len);
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
    probe_close(&p);

    side_close(&a);
}

/* Silent peers: both sides give up after the handshake timeout. */
static void test_handshake_timeouts(void **state)
{
    struct side a, b;
    struct pt_loopback_silent s;
    struct probe p;
    struct outcome o;
    unsigned ports[3];
    char addr_a[64], addr_b[64], addr_s[64];
    uint64_t start;
    (void)state;

    pt_loopback_free_ports(ports, 3);
    snprintf(addr_a, sizeof(addr_a), "localhost:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "localhost:%u", ports[1]);
    snprintf(addr_s, sizeof(addr_s), "localhost:%u", ports[2]);
    side_init(&a, CLUSTER, 1, addr_a);
    assert_int_equal(pt_transport_set_timeout(&a.t, 200), 0);
    side_listen(&a);

    /* inbound: a client that sends half a header and then nothing */
    uv_update_time(&loop);
    start = uv_now(&loop);
    probe_start(&p, ports[0], "\x89PTRAFT\n", 8);
    assert_true(RUN_UNTIL_GE(&p.ended, 1, 3000));
    assert_true(p.ended_at - start >= 150);
    assert_int_equal(a.n_accepted, 0);
    probe_close(&p);

    /* outbound: a server that accepts and never answers */
    pt_loopback_silent_start(&s, &loop, ports[2]);
    side_init(&b, CLUSTER, 2, addr_b);
    assert_int_equal(pt_transport_set_timeout(&b.t, 200), 0);
    uv_update_time(&loop);
    start = uv_now(&loop);
    connect_and_wait(&b, &o, 1, addr_s);
    assert_int_equal(o.status, RAFT_NOCONNECTION);
    assert_true(uv_now(&loop) - start >= 150);
    assert_int_equal(s.n, 1);

    pt_loopback_silent_stop(&s);
    side_close(&a);
    side_close(&b);
}

/* (d) closing cancels: a connect waiting for the handshake, a connect still resolving, and an
 * inbound handshake in progress. Callbacks come after close() returns, connects before the
 * close callback. */
static void test_close_cancels(void **state)
{
    struct side a, b, c;
    struct pt_loopback_silent s;
    struct probe p;
    struct outcome o;
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
    side_init(&b, CLUSTER, 2, addr_b);
    memset(&o, 0, sizeof(o));
    o.req.data = &o;
    assert_int_equal(b.t.connect(&b.t, &o.req, 1, addr_s, connect_cb), 0);
    assert_true(RUN_UNTIL_GE(&s.n, 1, 2000));
    RUN_FOR(20);
    assert_int_equal(o.calls, 0);
    b.t.close(&b.t, transport_close_cb);
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
    side_init(&c, CLUSTER, 3, addr_c);
    memset(&o, 0, sizeof(o));
    o.req.data = &o;
    assert_int_equal(c.t.connect(&c.t, &o.req, 1, addr_a, connect_cb), 0);
    c.t.close(&c.t, transport_close_cb);
    assert_int_equal(o.calls, 0);
    assert_true(RUN_UNTIL_GE(&c.closed, 1, 5000));
    assert_int_equal(o.calls, 1);
    assert_int_equal(o.status, RAFT_CANCELED);
    assert_true(o.seq < c.close_seq);
    assert_int_equal(c.t.connect(&c.t, &o.req, 1, addr_a, connect_cb), RAFT_CANCELED);
    pt_transport_close(&c.t);

    /* an inbound handshake in progress: the client is dropped, raft never hears of it */
    side_init(&a, CLUSTER, 1, addr_a);
    side_listen(&a);
    probe_start(&p, ports[0], "", 0);
    assert_true(RUN_UNTIL_GE(&p.connected, 1, 2000));
    RUN_FOR(50);
    a.t.close(&a.t, transport_close_cb);
    assert_true(RUN_UNTIL_GE(&a.closed, 1, 2000));
    assert_true(RUN_UNTIL_GE(&p.ended, 1, 2000));
    assert_int_equal(a.n_accepted, 0);
    pt_transport_close(&a.t);
    probe_close(&p);
}

/* Inbound handshakes beyond PT_TRANSPORT_MAX_INBOUND wait in the backlog: with timeout T,
 * the first accepted connection frees its slot no earlier than T after the start, so the
 * surplus cannot be dropped before 2T; all are dropped eventually. */
#define EXTRA 6
static void test_inbound_limit(void **state)
{
    enum { N = PT_TRANSPORT_MAX_INBOUND + EXTRA, T = 300 };
    struct side a;
    struct probe *p = calloc(N, sizeof(*p));
    unsigned ports[1];
    char addr_a[64];
    uint64_t start;
    int ended = 0, late = 0;
    (void)state;

    assert_non_null(p);
    pt_loopback_free_ports(ports, 1);
    snprintf(addr_a, sizeof(addr_a), "127.0.0.1:%u", ports[0]);
    side_init(&a, CLUSTER, 1, addr_a);
    assert_int_equal(pt_transport_set_timeout(&a.t, T), 0);
    side_listen(&a);

    uv_update_time(&loop);
    start = uv_now(&loop);
    for (int i = 0; i < N; i++)
        probe_start(&p[i], ports[0], "", 0);
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
        probe_close(&p[i]);
    assert_int_equal(a.n_accepted, 0);
    side_close(&a);
    free(p);
}

/* listen: the bind address replaces the raft address for listening only; a port in use, a
 * second listen and an own name that does not resolve are refused. */
static void test_listen_errors(void **state)
{
    struct side a, b, c;
    struct outcome o;
    unsigned ports[2];
    char addr[64], bind_addr[64], lit[64], addr_b[64];
    (void)state;

    pt_loopback_free_ports(ports, 2);
    snprintf(addr, sizeof(addr), "portolan-self.invalid:%u", ports[0]);
    snprintf(bind_addr, sizeof(bind_addr), "127.0.0.1:%u", ports[0]);
    snprintf(lit, sizeof(lit), "127.0.0.1:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "localhost:%u", ports[1]);

    /* the own name does not resolve: listen fails, close still completes */
    side_init(&c, CLUSTER, 3, addr);
    assert_int_equal(c.t.listen(&c.t, accept_cb), RAFT_IOERR);
    assert_non_null(strstr(c.t.errmsg, "portolan-self.invalid"));
    side_close(&c);

    /* with a bind address it listens, and peers reach it */
    side_init(&a, CLUSTER, 1, addr);
    assert_int_equal(pt_transport_set_bind_address(&a.t, bind_addr), 0);
    side_listen(&a);
    assert_int_equal(a.t.listen(&a.t, accept_cb), RAFT_INVALID);
    side_init(&b, CLUSTER, 2, addr_b);
    connect_and_wait(&b, &o, 1, lit);
    assert_int_equal(o.status, 0);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 1, 2000));
    assert_string_equal(a.accepted_address, addr_b);
    uv_close((uv_handle_t *)o.stream, pt_loopback_free_stream_cb);

    /* the port is taken */
    side_init(&c, CLUSTER, 3, lit);
    assert_int_equal(c.t.listen(&c.t, accept_cb), RAFT_IOERR);
    assert_non_null(strstr(c.t.errmsg, "listen on 127.0.0.1:"));
    side_close(&c);

    side_close(&a);
    side_close(&b);
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
    struct side a, b;
    struct outcome o, none;
    struct probe p[3];
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
    side_init(&a, CLUSTER, 1, addr_a);
    side_listen(&a);
    side_init(&b, CLUSTER, 2, addr_b);

    heap_fail = true;
    memset(&none, 0, sizeof(none));
    none.req.data = &none;
    assert_int_equal(b.t.connect(&b.t, &none.req, 1, addr_a, connect_cb), RAFT_NOMEM);
    for (int i = 0; i < 3; i++)
        probe_start(&p[i], ports[0], "", 0);
    for (int i = 0; i < 3; i++)
        assert_true(RUN_UNTIL_GE(&p[i].ended, 1, 2000));
    heap_fail = false;
    for (int i = 0; i < 3; i++)
        probe_close(&p[i]);
    assert_int_equal(none.calls, 0);
    assert_int_equal(a.n_accepted, 0);

    connect_and_wait(&b, &o, 1, addr_a);
    assert_int_equal(o.status, 0);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 1, 2000));
    uv_close((uv_handle_t *)o.stream, pt_loopback_free_stream_cb);
    len = make_hello(msg, 1, 1, 9, CLUSTER, "peer:7000", -1);
    probe_start(&p[0], ports[0], msg, len);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 2, 2000));
    probe_close(&p[0]);

    side_close(&a);
    side_close(&b);
    raft_heap_set_default();
}

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
    o->seq = ++seq;
    if (status != 0)
        assert_null(stream);
    else
        assert_non_null(stream);
}

static void channel_connect_and_wait(struct side *s, struct peer_outcome *o, uint64_t id,
                                     const char *address, int channel)
{
    memset(o, 0, sizeof(*o));
    assert_int_equal(pt_transport_connect_peer(&s->t, id, address, channel, peer_connect_cb, o), 0);
    assert_int_equal(o->calls, 0); /* never from inside connect */
    assert_true(RUN_UNTIL_GE(&o->calls, 1, 5000));
    assert_int_equal(o->calls, 1);
}

static void peer_connect_and_wait(struct side *s, struct peer_outcome *o, uint64_t id,
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
    assert_int_equal(uv_write(&a->w, (uv_stream_t *)&a->client, &b, 1, probe_write_cb), 0);
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
    struct side a, b, c;
    struct peer_side ps, bulk;
    struct peer_outcome po;
    struct outcome o;
    struct probe p;
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
    side_init(&a, CLUSTER, 1, addr_a);
    side_listen(&a);
    side_init(&b, CLUSTER, 2, addr_b);

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
    check_data_flows(po.stream, ps.streams[0], "peer request");
    check_data_flows(ps.streams[0], po.stream, "peer response");
    uv_close((uv_handle_t *)po.stream, pt_loopback_free_stream_cb);

    /* a raft connection still reaches raft, and only raft */
    connect_and_wait(&b, &o, 1, addr_a);
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
    check_data_flows(po.stream, bulk.streams[0], "bulk request");
    uv_close((uv_handle_t *)po.stream, pt_loopback_free_stream_cb);
    uv_close((uv_handle_t *)bulk.streams[0], pt_loopback_free_stream_cb);
    pt_transport_set_peer_accept(&a.t, PT_CHANNEL_BULK, NULL, NULL);
    assert_int_equal(pt_transport_connect_peer(&b.t, 1, addr_a, 2, peer_connect_cb, &po),
                     PT_E_CONFIG);

    /* raw HELLOs: reserved flag bits, and BULK without PEER, are refused; PEER gets a WELCOME
     * echoing it */
    len = make_hello(msg, 1, 1, 9, CLUSTER, "peer:7000", -1);
    msg[11] = 0x02;
    probe_start(&p, ports[0], msg, len);
    assert_true(RUN_UNTIL_GE(&p.ended, 1, 2000));
    assert_int_equal(p.in_len, 0);
    probe_close(&p);
    for (unsigned flags = 4; flags <= 0x80; flags <<= 1) {
        len = make_hello(msg, 1, 1, 9, CLUSTER, "peer:7000", -1);
        msg[11] = (unsigned char)(flags | 0x01);
        probe_start(&p, ports[0], msg, len);
        if (!RUN_UNTIL_GE(&p.ended, 1, 2000))
            fail_msg("flags 0x%02x: connection not dropped", flags | 0x01);
        assert_int_equal(p.in_len, 0);
        probe_close(&p);
    }
    len = make_hello(msg, 1, 1, 9, CLUSTER, "peer.example:7000", -1);
    msg[11] = 0x01;
    probe_start(&p, ports[0], msg, len);
    assert_true(RUN_UNTIL_GE(&ps.accepted, 2, 2000));
    assert_int_equal(ps.id, 9);
    assert_string_equal(ps.address, "peer.example:7000");
    for (int i = 0; i < 200 && p.in_len < 16 + 10 + strlen(CLUSTER); i++)
        RUN_FOR(10);
    assert_int_equal(p.in_len, 16 + 10 + strlen(CLUSTER));
    assert_memory_equal(p.in, "\x89PTRAFT\n\x00\x01\x02\x01", 12);
    probe_close(&p);
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
    side_init(&c, CLUSTER, 3, addr_c);
    memset(&po, 0, sizeof(po));
    assert_int_equal(
        pt_transport_connect_peer(&c.t, 1, addr_s, PT_CHANNEL_PEER, peer_connect_cb, &po), 0);
    assert_true(RUN_UNTIL_GE(&s.n, 1, 2000));
    c.t.close(&c.t, transport_close_cb);
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
    side_close(&a);
    side_close(&b);
}

/* ---- (e) Three raft servers over the transport -------------------------------------------- */

#define N_NODES   3
#define N_ENTRIES 5

struct node {
    struct raft raft;
    struct raft_io io;
    struct raft_uv_transport t;
    struct raft_fsm fsm;
    char dir[64];
    char address[64];
    unsigned applied;
    uint64_t sum;
    int closed;
};

static int fsm_apply(struct raft_fsm *fsm, const struct raft_buffer *buf, void **result)
{
    struct node *n = fsm->data;
    uint64_t v;
    if (buf->len != sizeof(v))
        return RAFT_MALFORMED;
    memcpy(&v, buf->base, sizeof(v));
    n->applied++;
    n->sum += v;
    *result = NULL;
    return 0;
}

static int fsm_snapshot(struct raft_fsm *fsm, struct raft_buffer *bufs[], unsigned *n_bufs)
{
    struct node *n = fsm->data;
    uint64_t state[2] = {n->applied, n->sum};
    *bufs = raft_malloc(sizeof(**bufs));
    if (*bufs == NULL)
        return RAFT_NOMEM;
    (*bufs)[0].base = raft_malloc(sizeof(state));
    if ((*bufs)[0].base == NULL) {
        raft_free(*bufs);
        return RAFT_NOMEM;
    }
    memcpy((*bufs)[0].base, state, sizeof(state));
    (*bufs)[0].len = sizeof(state);
    *n_bufs = 1;
    return 0;
}

static int fsm_restore(struct raft_fsm *fsm, struct raft_buffer *buf)
{
    struct node *n = fsm->data;
    uint64_t state[2];
    if (buf->len != sizeof(state))
        return RAFT_MALFORMED;
    memcpy(state, buf->base, sizeof(state));
    n->applied = (unsigned)state[0];
    n->sum = state[1];
    raft_free(buf->base);
    return 0;
}

static void raft_closed_cb(struct raft *r)
{
    struct node *n = r->data;
    n->closed++;
}

struct applied {
    struct raft_apply req;
    int calls;
    int status;
};

static void apply_cb(struct raft_apply *req, int status, void *result)
{
    struct applied *a = req->data;
    (void)result;
    a->calls++;
    a->status = status;
}

static bool leader_pred(void *arg)
{
    struct node *nodes = arg;
    for (int i = 0; i < N_NODES; i++) {
        if (raft_state(&nodes[i].raft) == RAFT_LEADER)
            return true;
    }
    return false;
}

static bool all_applied_pred(void *arg)
{
    struct node *nodes = arg;
    for (int i = 0; i < N_NODES; i++) {
        if (nodes[i].applied < N_ENTRIES)
            return false;
    }
    return true;
}

static bool applies_done_pred(void *arg)
{
    struct applied *a = arg;
    for (int i = 0; i < N_ENTRIES; i++) {
        if (a[i].calls == 0)
            return false;
    }
    return true;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void test_raft_cluster(void **state)
{
    struct node *nodes = calloc(N_NODES, sizeof(*nodes));
    struct raft_configuration conf;
    struct applied applies[N_ENTRIES];
    struct node *leader = NULL;
    unsigned ports[N_NODES];
    int closed = 0;
    (void)state;

    assert_non_null(nodes);
    pt_loopback_free_ports(ports, N_NODES);
    raft_configuration_init(&conf);
    for (int i = 0; i < N_NODES; i++) {
        snprintf(nodes[i].address, sizeof(nodes[i].address), "localhost:%u", ports[i]);
        assert_int_equal(
            raft_configuration_add(&conf, (raft_id)(i + 1), nodes[i].address, RAFT_VOTER), 0);
    }
    for (int i = 0; i < N_NODES; i++) {
        struct node *n = &nodes[i];
        snprintf(n->dir, sizeof(n->dir), "/tmp/pt-transport-XXXXXX");
        assert_non_null(mkdtemp(n->dir));
        n->fsm.version = 1;
        n->fsm.data = n;
        n->fsm.apply = fsm_apply;
        n->fsm.snapshot = fsm_snapshot;
        n->fsm.restore = fsm_restore;
        assert_int_equal(pt_transport_init(&n->t, &loop, "e2e-cluster"), 0);
        assert_int_equal(raft_uv_init(&n->io, &loop, n->dir, &n->t), 0);
        raft_uv_set_connect_retry_delay(&n->io, 50);
        raft_uv_set_segment_size(&n->io, 256 * 1024);
        assert_int_equal(raft_init(&n->raft, &n->io, &n->fsm, (raft_id)(i + 1), n->address), 0);
        n->raft.data = n;
        raft_set_election_timeout(&n->raft, 300);
        raft_set_heartbeat_timeout(&n->raft, 50);
        assert_int_equal(raft_bootstrap(&n->raft, &conf), 0);
    }
    raft_configuration_close(&conf);
    for (int i = 0; i < N_NODES; i++)
        assert_int_equal(raft_start(&nodes[i].raft), 0);

    assert_true(pt_loop_run_until(&loop, leader_pred, nodes, 5000));
    for (int i = 0; i < N_NODES; i++) {
        if (raft_state(&nodes[i].raft) == RAFT_LEADER)
            leader = &nodes[i];
    }
    assert_non_null(leader);

    memset(applies, 0, sizeof(applies));
    for (int i = 0; i < N_ENTRIES; i++) {
        struct raft_buffer buf;
        uint64_t v = (uint64_t)(i + 1);
        buf.len = sizeof(v);
        buf.base = raft_malloc(buf.len);
        assert_non_null(buf.base);
        memcpy(buf.base, &v, sizeof(v));
        applies[i].req.data = &applies[i];
        assert_int_equal(raft_apply(&leader->raft, &applies[i].req, &buf, 1, apply_cb), 0);
    }
    assert_true(pt_loop_run_until(&loop, applies_done_pred, applies, 3000));
    for (int i = 0; i < N_ENTRIES; i++) {
        assert_int_equal(applies[i].calls, 1);
        assert_int_equal(applies[i].status, 0);
    }
    /* followers apply once the next heartbeat carries the commit index */
    assert_true(pt_loop_run_until(&loop, all_applied_pred, nodes, 3000));
    for (int i = 0; i < N_NODES; i++) {
        assert_int_equal(nodes[i].applied, N_ENTRIES);
        assert_int_equal(nodes[i].sum, N_ENTRIES * (N_ENTRIES + 1) / 2);
    }

    for (int i = 0; i < N_NODES; i++)
        raft_close(&nodes[i].raft, raft_closed_cb);
    for (int i = 0; i < N_NODES; i++) {
        assert_true(RUN_UNTIL_GE(&nodes[i].closed, 1, 5000));
        closed += nodes[i].closed;
    }
    assert_int_equal(closed, N_NODES);
    for (int i = 0; i < N_NODES; i++) {
        raft_uv_close(&nodes[i].io);
        pt_transport_close(&nodes[i].t);
        assert_int_equal(nftw(nodes[i].dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
    }
    free(nodes);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_parse_address, setup, teardown),
        cmocka_unit_test_setup_teardown(test_init_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_by_name, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_ipv6_literal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refuses_wrong_peer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_failures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rejects_bad_handshakes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_handshake_timeouts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_close_cancels, setup, teardown),
        cmocka_unit_test_setup_teardown(test_inbound_limit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_listen_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_out_of_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_peer_channel, setup, teardown),
        cmocka_unit_test_setup_teardown(test_raft_cluster, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
