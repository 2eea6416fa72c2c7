/*
 * test_transport_relay.c - connections tunneled through another member
 * (replication/transport_relay.c, the splice of transport_tls.c), on real sockets and one
 * libuv loop with mutual TLS: A (region-a) cannot reach X (region-c) directly (its route to X
 * names a port that listens but never answers: the attempt times out, as over a link that
 * dropped), so its raft connection to X goes through B (region-b) and X
 * authenticates A as over a direct connection; bytes flow both ways through the pumps, B's
 * splice and the inner TLS. Refused are a relay to a server that is not a member (as B knows
 * the membership), a relay requested over a connection that itself arrived through a relay
 * (a fake relay of the test's own writes the preamble in front of A's connection to B), and a
 * relay over the per-source limit; a direct path that is refused (nothing listens: a server
 * down) is not relayed. Each refusal counts in
 * portolan_peer_refused_total{reason="relay"}. The test ends with every transport closed; ASan
 * checks that no memory, descriptor or thread is left.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <uv.h>

#include <raft.h>
#include <raft/uv.h>

#include "bytes.h"
#include "cli.h"
#include "err.h"
#include "metrics.h"
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

/* One side's view of the membership: ids and raft addresses (an id 0 ends the list). */
struct members {
    uint64_t id[5];
    char address[5][64];
};

static const char *const regions[5] = {"", "region-a", "region-b", "region-c", "region-d"};

static int identity_cb(void *arg, uint64_t id, char name[PT_CLUSTER_NAME_MAX + 1])
{
    const struct members *m = arg;
    for (size_t i = 0; i < 5 && m->id[i] != 0; i++) {
        if (m->id[i] == id) {
            snprintf(name, PT_CLUSTER_NAME_MAX + 1, "%s", regions[id]);
            return 0;
        }
    }
    return PT_E_NOT_FOUND;
}

static int member_cb(void *arg, size_t index, uint64_t *id,
                     char address[PT_CLUSTER_ADDRESS_MAX + 1])
{
    const struct members *m = arg;
    if (index >= 5 || m->id[index] == 0)
        return PT_E_NOT_FOUND;
    *id = m->id[index];
    snprintf(address, PT_CLUSTER_ADDRESS_MAX + 1, "%s", m->address[index]);
    return 0;
}

static void side(struct pt_side *s, uint64_t id, const char *address, struct members *m)
{
    char cert[512], key[512], ca[512], err[512] = "";
    pt_side_init(s, &loop, CLUSTER, id, address);
    snprintf(cert, sizeof(cert), "%s/certs/%s.pem", dir, regions[id]);
    snprintf(key, sizeof(key), "%s/certs/%s-key.pem", dir, regions[id]);
    snprintf(ca, sizeof(ca), "%s/certs/ca.pem", dir);
    if (pt_transport_set_tls(&s->t, cert, key, ca, err, sizeof(err)) != 0)
        fail_msg("%s", err);
    pt_transport_set_identity(&s->t, identity_cb, m);
    pt_transport_set_relay(&s->t, member_cb, m);
}

static void close_stream(uv_stream_t *s)
{
    uv_close((uv_handle_t *)s, pt_loopback_free_stream_cb);
}

/* portolan_peer_refused_total{reason="relay"} now. */
static unsigned long long relay_refusals(void)
{
    char *text = NULL, *at;
    size_t len = 0;
    unsigned long long n = 0;
    assert_int_equal(pt_metrics_render(&text, &len), 0);
    at = strstr(text, "portolan_peer_refused_total{reason=\"relay\"} ");
    assert_non_null(at);
    n = strtoull(at + strlen("portolan_peer_refused_total{reason=\"relay\"} "), NULL, 10);
    free(text);
    return n;
}

/* A relay of the test's own: accepts one connection on lfd, dials port, writes the preamble
 * a relay writes (origin 1, relay 2), then copies bytes both ways until either side ends. */
struct fake_relay {
    int lfd;
    unsigned port;
    pthread_t th;
};

static void *fake_relay_main(void *arg)
{
    struct fake_relay *f = arg;
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)f->port)};
    unsigned char pre[24], buf[16384];
    int a = accept(f->lfd, NULL, NULL), x = socket(AF_INET, SOCK_STREAM, 0);

    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (a >= 0 && x >= 0 && connect(x, (struct sockaddr *)&sin, sizeof(sin)) == 0) {
        memcpy(pre, "\x89PTRELY\n", 8);
        pt_put_be64(pre + 8, 1);
        pt_put_be64(pre + 16, 2);
        if (write(x, pre, sizeof(pre)) == (ssize_t)sizeof(pre)) {
            for (;;) {
                struct pollfd pf[2] = {{.fd = a, .events = POLLIN}, {.fd = x, .events = POLLIN}};
                ssize_t n = 0;
                if (poll(pf, 2, 10000) <= 0)
                    break;
                if (pf[0].revents)
                    n = read(a, buf, sizeof(buf)), n = n > 0 ? write(x, buf, (size_t)n) : -1;
                else
                    n = read(x, buf, sizeof(buf)), n = n > 0 ? write(a, buf, (size_t)n) : -1;
                if (n <= 0)
                    break;
            }
        }
    }
    if (a >= 0)
        close(a);
    if (x >= 0)
        close(x);
    return NULL;
}

static void fake_relay_start(struct fake_relay *f, unsigned listen_port, unsigned to_port)
{
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)listen_port)};
    int one = 1;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    f->port = to_port;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    (void)setsockopt(f->lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(f->lfd, 4), 0);
    assert_int_equal(pthread_create(&f->th, NULL, fake_relay_main, f), 0);
}

/* Connects a to id until an attempt completes or fails twice in a row; returns the status of
 * the last attempt (the first one, direct, times out: a's route to id is a silent port). */
static int connect_through(struct pt_side *a, struct pt_outcome *o, raft_id id, const char *address)
{
    pt_side_connect_and_wait(a, o, id, address);
    if (o->status == 0)
        return 0;
    pt_side_connect_and_wait(a, o, id, address);
    return o->status;
}

static void test_relay(void **state)
{
    struct pt_side a, b, x;
    struct pt_outcome o, kept[PT_TRANSPORT_RELAY_PER_SOURCE];
    struct members ma = {.id = {1, 2, 3, 4}}, mb = {.id = {1, 2, 3}}, mx = {.id = {1, 2, 3}};
    unsigned ports[5];
    unsigned long long refused;
    (void)state;

    pt_tmpdir_create(dir, sizeof(dir), "pt-trelay");
    char out[512];
    char *argv[] = {"--out",  out, "--regions", "region-a,region-b,region-c,region-d",
                    "--days", "2"};
    FILE *devnull = fopen("/dev/null", "w");
    assert_non_null(devnull);
    snprintf(out, sizeof(out), "%s/certs", dir);
    assert_int_equal(cli_certs(6, argv, devnull, stderr), PT_CLI_OK);
    fclose(devnull);

    /* ports: a, b, x, a silent one (a's route to x and to id 4: it listens, never accepts),
     * the fake relay's */
    pt_loopback_free_ports(ports, 5);
    for (int i = 0; i < 3; i++) {
        snprintf(ma.address[i], sizeof(ma.address[i]), "127.0.0.1:%u", ports[i]);
        snprintf(mb.address[i], sizeof(mb.address[i]), "127.0.0.1:%u", ports[i]);
        snprintf(mx.address[i], sizeof(mx.address[i]), "127.0.0.1:%u", ports[i]);
    }
    snprintf(ma.address[3], sizeof(ma.address[3]), "127.0.0.1:%u", ports[3]);
    char silent_address[64];
    snprintf(silent_address, sizeof(silent_address), "127.0.0.1:%u", ports[3]);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_port = htons((uint16_t)ports[3])};
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int silent = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(silent >= 0);
    assert_int_equal(bind(silent, (struct sockaddr *)&sin, sizeof(sin)), 0);
    assert_int_equal(listen(silent, 64), 0);

    side(&a, 1, ma.address[0], &ma);
    assert_int_equal(pt_transport_set_timeout(&a.t, 500), 0);
    side(&b, 2, mb.address[1], &mb);
    side(&x, 3, mx.address[2], &mx);
    pt_side_listen(&b);
    pt_side_listen(&x);
    assert_int_equal(pt_transport_set_route(&a.t, 3, silent_address), 0);
    assert_int_equal(pt_transport_set_route(&a.t, 4, silent_address), 0);

    /* a cannot reach x: the direct attempt fails, the next goes through b; x authenticates a
     * (id 1, region-a's certificate) and bytes flow both ways */
    assert_int_equal(connect_through(&a, &o, 3, mx.address[2]), 0);
    assert_true(RUN_UNTIL_GE(&x.n_accepted, 1, 5000));
    assert_int_equal(x.accepted_id, 1);
    assert_int_equal(b.n_accepted, 0); /* b only spliced */
    assert_int_equal(pt_transport_relay_of(&a.t, 3), 2);
    pt_side_check_data_flows(o.stream, x.accepted[0], "raft entries");
    pt_side_check_data_flows(x.accepted[0], o.stream, "and back");
    kept[0] = o;

    /* up to the per-source limit, then refused */
    for (int i = 1; i < PT_TRANSPORT_RELAY_PER_SOURCE; i++) {
        pt_side_connect_and_wait(&a, &kept[i], 3, mx.address[2]);
        assert_int_equal(kept[i].status, 0);
    }
    assert_true(RUN_UNTIL_GE(&x.n_accepted, PT_TRANSPORT_RELAY_PER_SOURCE, 5000));
    refused = relay_refusals();
    pt_side_connect_and_wait(&a, &o, 3, mx.address[2]);
    assert_int_equal(o.status, RAFT_NOCONNECTION);
    assert_true(relay_refusals() > refused);
    for (int i = 0; i < PT_TRANSPORT_RELAY_PER_SOURCE; i++)
        close_stream(kept[i].stream);

    /* id 4 is a member for a, not for b: b refuses to tunnel to it */
    refused = relay_refusals();
    assert_int_equal(connect_through(&a, &o, 4, silent_address), RAFT_NOCONNECTION);
    assert_true(relay_refusals() > refused);

    /* a's connection to b arrives through a relay (the fake one): b relays no further */
    struct fake_relay f;
    struct members ma2 = {.id = {1, 2, 3}};
    struct pt_side a2;
    fake_relay_start(&f, ports[4], ports[1]);
    memcpy(ma2.address, ma.address, sizeof(ma2.address));
    snprintf(ma2.address[1], sizeof(ma2.address[1]), "127.0.0.1:%u", ports[4]);
    side(&a2, 1, ma2.address[0], &ma2);
    assert_int_equal(pt_transport_set_timeout(&a2.t, 500), 0);
    assert_int_equal(pt_transport_set_route(&a2.t, 3, silent_address), 0);
    refused = relay_refusals();
    assert_int_equal(connect_through(&a2, &o, 3, mx.address[2]), RAFT_NOCONNECTION);
    assert_true(relay_refusals() > refused);
    assert_int_equal(pthread_join(f.th, NULL), 0);
    close(f.lfd);

    /* a refusal (nothing listens) is a server down, not a silent path: no relay is tried */
    struct pt_side a3;
    char refused_address[64];
    snprintf(refused_address, sizeof(refused_address), "127.0.0.1:%u", ports[4]);
    side(&a3, 1, ma.address[0], &ma);
    assert_int_equal(pt_transport_set_route(&a3.t, 3, refused_address), 0);
    assert_int_equal(connect_through(&a3, &o, 3, mx.address[2]), RAFT_NOCONNECTION);
    assert_int_equal(pt_transport_relay_of(&a3.t, 3), 0);

    assert_int_equal(x.n_accepted, PT_TRANSPORT_RELAY_PER_SOURCE);
    pt_side_close(&a3);
    pt_side_close(&a2);
    pt_side_close(&a);
    pt_side_close(&b);
    pt_side_close(&x);
    close(silent);
    assert_int_equal(pt_tmpdir_remove(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_prestate_setup_teardown(test_relay, pt_side_setup, pt_side_teardown,
                                                 &loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
