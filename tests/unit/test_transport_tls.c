/*
 * test_transport_tls.c - mutual TLS and the identity check of the Raft transport
 * (replication/transport_tls.c, transport_handshake.c), on real sockets and one libuv loop,
 * with certificates made by `portolan cluster certs` (node/cli/certs.c, called directly):
 * a region whose certificate names the region of its server id completes raft and PEER
 * connections and bytes flow both ways through the pumps; refused are a valid certificate
 * claiming another server id, a server id the identity callback does not know, a server whose
 * certificate does not name the region dialed, and a certificate of another CA. Without TLS
 * the identity callback still refuses unknown ids. The test ends with uv_loop_close() == 0 (no
 * handle left open); ASan checks that no memory, descriptor-owning pump or thread is left.
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

#include "cli.h"
#include "err.h"
#include "support/loop.h"
#include "support/loopback.h"
#include "support/tmpdir.h"
#include "support/transport_side.h"
#include "transport.h"

int cli_certs(int argc, char **argv, FILE *out, FILE *err); /* node/cli/cli_int.h */

#define CLUSTER "test-cluster"

static uv_loop_t loop;
static char dir[256];

#define RUN_UNTIL_GE(ptr, n, ms) PT_LOOP_RUN_UNTIL_GE(&loop, (ptr), (n), (ms))

/* Server ids 1..3 are region-a..region-c, 4 is region-d being added; anything else is
 * unknown. */
static int identity_cb(void *arg, uint64_t id, char name[PT_CLUSTER_NAME_MAX + 1])
{
    const char *const *names = arg;
    if (id == 4) {
        snprintf(name, PT_CLUSTER_NAME_MAX + 1, "region-d");
        return PT_TRANSPORT_PEER_ONLY;
    }
    if (id < 1 || id > 3)
        return PT_E_NOT_FOUND;
    snprintf(name, PT_CLUSTER_NAME_MAX + 1, "%s", names[id - 1]);
    return 0;
}

static const char *const truth[3] = {"region-a", "region-b", "region-c"};
static const char *const liar[3] = {"region-c", "region-b", "region-a"};

static void make_certs(const char *sub, const char *regions)
{
    char out[512];
    char *argv[] = {"--out", out, "--regions", (char *)regions, "--days", "2"};
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    snprintf(out, sizeof(out), "%s/%s", dir, sub);
    assert_int_equal(cli_certs(6, argv, devnull, stderr), PT_CLI_OK);
    fclose(devnull);
}

/* Sets s up with TLS: the certificate of region in certs directory sub, the CA of ca_sub. */
static void side_tls(struct pt_side *s, uint64_t id, const char *address, const char *sub,
                     const char *region, const char *ca_sub, const char *const *names)
{
    char cert[512], key[512], ca[512], err[512] = "";
    pt_side_init(s, &loop, CLUSTER, id, address);
    snprintf(cert, sizeof(cert), "%s/%s/%s.pem", dir, sub, region);
    snprintf(key, sizeof(key), "%s/%s/%s-key.pem", dir, sub, region);
    snprintf(ca, sizeof(ca), "%s/%s/ca.pem", dir, ca_sub);
    if (pt_transport_set_tls(&s->t, cert, key, ca, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    pt_transport_set_identity(&s->t, identity_cb, (void *)names);
}

static void close_stream(uv_stream_t *s)
{
    uv_close((uv_handle_t *)s, pt_loopback_free_stream_cb);
}

struct peer_got {
    int calls, status, accepted;
    uv_stream_t *stream, *in;
};

static void peer_connect_cb(void *arg, int status, uv_stream_t *stream)
{
    struct peer_got *g = arg;
    g->calls++;
    g->status = status;
    g->stream = stream;
}

static void peer_accept_cb(void *arg, uint64_t id, const char *address, uv_stream_t *stream)
{
    struct peer_got *g = arg;
    (void)address;
    assert_int_equal(id, 2);
    g->accepted++;
    g->in = stream;
}

static void test_mutual_tls(void **state)
{
    struct pt_side a, b, liar_b, c_as_b, stranger, other_ca;
    struct pt_outcome o;
    struct peer_got pg;
    unsigned ports[2];
    char addr_a[64], addr_b[64], err[256];
    (void)state;

    pt_tmpdir_create(dir, sizeof(dir), "pt-ttls");
    make_certs("certs", "region-a,region-b,region-c,region-x");
    make_certs("other", "region-b");
    pt_loopback_free_ports(ports, 2);
    snprintf(addr_a, sizeof(addr_a), "127.0.0.1:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "127.0.0.1:%u", ports[1]);

    /* a file that does not load is named; nothing is kept */
    pt_side_init(&stranger, &loop, CLUSTER, 9, addr_b);
    assert_int_equal(pt_transport_set_tls(&stranger.t, "/nonexistent.pem", "/nonexistent.pem",
                                          "/nonexistent.pem", err, sizeof(err)),
                     PT_E_CONFIG);
    assert_non_null(strstr(err, "peer_tls_cert"));
    pt_side_close(&stranger);

    side_tls(&a, 1, addr_a, "certs", "region-a", "certs", truth);
    pt_side_listen(&a);
    memset(&pg, 0, sizeof(pg));
    pt_transport_set_peer_accept(&a.t, PT_CHANNEL_PEER, peer_accept_cb, &pg);

    /* region-b with its own certificate: raft and PEER connections complete, bytes flow
     * through both pumps in both directions */
    side_tls(&b, 2, addr_b, "certs", "region-b", "certs", truth);
    pt_side_connect_and_wait(&b, &o, 1, addr_a);
    assert_int_equal(o.status, 0);
    assert_true(RUN_UNTIL_GE(&a.n_accepted, 1, 5000));
    assert_int_equal(a.accepted_id, 2);
    pt_side_check_data_flows(o.stream, a.accepted[0], "raft entries");
    pt_side_check_data_flows(a.accepted[0], o.stream, "and back");
    close_stream(o.stream);
    assert_int_equal(
        pt_transport_connect_peer(&b.t, 1, addr_a, PT_CHANNEL_PEER, peer_connect_cb, &pg), 0);
    assert_true(RUN_UNTIL_GE(&pg.calls, 1, 5000));
    assert_int_equal(pg.status, 0);
    assert_true(RUN_UNTIL_GE(&pg.accepted, 1, 5000));
    pt_side_check_data_flows(pg.stream, pg.in, "a forwarded write");
    pt_side_check_data_flows(pg.in, pg.stream, "its index");
    close_stream(pg.stream);
    close_stream(pg.in);

    /* the server's certificate must name the region dialed: b thinks id 1 is region-c */
    side_tls(&liar_b, 2, addr_b, "certs", "region-b", "certs", liar);
    pt_side_connect_and_wait(&liar_b, &o, 1, addr_a);
    assert_int_equal(o.status, RAFT_NOCONNECTION);

    /* region-c's valid certificate claiming region-b's id, as raft and as PEER */
    side_tls(&c_as_b, 2, addr_b, "certs", "region-c", "certs", truth);
    pt_side_connect_and_wait(&c_as_b, &o, 1, addr_a);
    assert_int_equal(o.status, RAFT_NOCONNECTION);
    memset(&pg, 0, sizeof(pg));
    assert_int_equal(
        pt_transport_connect_peer(&c_as_b.t, 1, addr_a, PT_CHANNEL_PEER, peer_connect_cb, &pg), 0);
    assert_true(RUN_UNTIL_GE(&pg.calls, 1, 8000));
    assert_int_equal(pg.status, PT_E_UNAVAILABLE);

    /* a valid certificate of the cluster CA for a server id that is not a member */
    side_tls(&stranger, 9, addr_b, "certs", "region-x", "certs", truth);
    pt_side_connect_and_wait(&stranger, &o, 1, addr_a);
    assert_int_equal(o.status, RAFT_NOCONNECTION);

    /* region-b's name from another CA */
    side_tls(&other_ca, 2, addr_b, "other", "region-b", "certs", truth);
    pt_side_connect_and_wait(&other_ca, &o, 1, addr_a);
    assert_int_equal(o.status, RAFT_NOCONNECTION);

    assert_int_equal(a.n_accepted, 1); /* none of the refused reached raft */
    assert_int_equal(pg.accepted, 0);
    pt_side_close(&other_ca);
    pt_side_close(&stranger);
    pt_side_close(&c_as_b);
    pt_side_close(&liar_b);
    pt_side_close(&b);
    pt_side_close(&a);
    assert_int_equal(pt_tmpdir_remove(dir), 0);
}

static void added_accept_cb(void *arg, uint64_t id, const char *address, uv_stream_t *stream)
{
    struct peer_got *g = arg;
    (void)address;
    assert_int_equal(id, 4);
    g->accepted++;
    g->in = stream;
}

/* Without TLS the identity callback alone bounds who may connect; a region being added
 * (PT_TRANSPORT_PEER_ONLY) gets peer channels but no raft channel. */
static void test_identity_without_tls(void **state)
{
    struct pt_side a, b, stranger, added;
    struct pt_outcome o;
    struct peer_got pg;
    unsigned ports[2];
    char addr_a[64], addr_b[64];
    (void)state;

    pt_loopback_free_ports(ports, 2);
    snprintf(addr_a, sizeof(addr_a), "127.0.0.1:%u", ports[0]);
    snprintf(addr_b, sizeof(addr_b), "127.0.0.1:%u", ports[1]);
    pt_side_init(&a, &loop, CLUSTER, 1, addr_a);
    pt_transport_set_identity(&a.t, identity_cb, (void *)truth);
    pt_side_listen(&a);
    pt_side_init(&b, &loop, CLUSTER, 2, addr_b);
    pt_side_connect_and_wait(&b, &o, 1, addr_a);
    assert_int_equal(o.status, 0);
    pt_side_check_data_flows(o.stream, a.accepted[0], "plain");
    close_stream(o.stream);
    pt_side_init(&stranger, &loop, CLUSTER, 7, addr_b);
    pt_side_connect_and_wait(&stranger, &o, 1, addr_a);
    assert_int_equal(o.status, RAFT_NOCONNECTION);
    assert_int_equal(a.n_accepted, 1);

    memset(&pg, 0, sizeof(pg));
    pt_transport_set_peer_accept(&a.t, PT_CHANNEL_PEER, added_accept_cb, &pg);
    pt_side_init(&added, &loop, CLUSTER, 4, addr_b);
    pt_side_connect_and_wait(&added, &o, 1, addr_a);
    assert_int_equal(o.status, RAFT_NOCONNECTION); /* no raft channel before it is a member */
    assert_int_equal(a.n_accepted, 1);
    assert_int_equal(
        pt_transport_connect_peer(&added.t, 1, addr_a, PT_CHANNEL_PEER, peer_connect_cb, &pg), 0);
    assert_true(RUN_UNTIL_GE(&pg.calls, 1, 5000));
    assert_int_equal(pg.status, 0);
    assert_true(RUN_UNTIL_GE(&pg.accepted, 1, 5000));
    pt_side_check_data_flows(pg.stream, pg.in, "a peer request from a region being added");
    close_stream(pg.stream);
    close_stream(pg.in);
    pt_side_close(&added);
    pt_side_close(&stranger);
    pt_side_close(&b);
    pt_side_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_mutual_tls, pt_side_setup, pt_side_teardown,
                                                 &loop),
        cmocka_unit_test_prestate_setup_teardown(test_identity_without_tls, pt_side_setup,
                                                 pt_side_teardown, &loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
