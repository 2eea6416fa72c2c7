/*
 * test_transport_raft.c - three raft servers (canonical/raft over raft_uv) talking through the
 * Raft transport (replication/transport.c) on loopback and one libuv loop: they elect a
 * leader, commit entries that every server applies, and shut down. The test ends with
 * uv_loop_close() == 0, i.e. no handle left open; ASan checks that no memory is left behind.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

#include <raft.h>
#include <raft/uv.h>

#include "support/loop.h"
#include "support/loopback.h"
#include "support/transport_side.h"
#include "transport.h"

static uv_loop_t loop;

/* ---- Loop helpers ------------------------------------------------------------------------- */

#define RUN_UNTIL_GE(ptr, n, ms) PT_LOOP_RUN_UNTIL_GE(&loop, (ptr), (n), (ms))
#define RUN_FOR(ms)              PT_LOOP_RUN_FOR(&loop, (ms))

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
        cmocka_unit_test_prestate_setup_teardown(test_raft_cluster, pt_side_setup, pt_side_teardown,
                                                 &loop),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
