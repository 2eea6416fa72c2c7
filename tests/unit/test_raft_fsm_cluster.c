/*
 * test_raft_fsm_cluster.c - real clusters over the raft FSM adapter, in raft's deterministic
 * in-process fixture (raft/fixture.h).
 *
 * Every server has the real FSM over its own RocksDB metastore in a temporary directory
 * (support/fsm_cluster.h), time is simulated, and each test checks that the state digests of
 * all servers converge and are equal, and equal to the state of the same workload applied
 * directly (support/workload.h), through elections, leader loss, partitions, snapshot
 * installation on a lagging follower and membership changes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <raft.h>
#include <raft/fixture.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "err.h"
#include "metastore.h"
#include "raft_fsm.h"
#include "support/fsm_cluster.h"
#include "support/text_digest.h"
#include "support/workload.h"

#define STEP_MS 20000 /* simulated time allowed for any one wait */

static void apply_done_cb(struct raft_apply *a, int status, void *result)
{
    struct pt_fsm_cluster_req *r = a->data;
    r->done++;
    r->status = status;
    r->result = status == 0 ? pt_raft_fsm_status(result) : 0;
}

/* Proposes b (freed) on server i, which must accept it into its log. */
static struct pt_fsm_cluster_req *propose(struct pt_fsm_cluster *f, unsigned i,
                                          struct pt_command_builder *b)
{
    assert_true(f->n_reqs < PT_FSM_CLUSTER_MAX_REQS);
    struct pt_fsm_cluster_req *r = &f->reqs[f->n_reqs++];
    memset(r, 0, sizeof(*r));
    r->apply.data = r;
    void *cmd;
    size_t cmd_len;
    assert_int_equal(pt_command_encode(&b->msg, &cmd, &cmd_len), 0);
    pt_command_builder_free(b);
    struct raft_buffer buf;
    assert_int_equal(pt_raft_entry_frame(cmd, cmd_len, &buf), 0);
    free(cmd);
    assert_int_equal(buf.len % 8, 0);
    int rv = raft_apply(pt_fsm_cluster_srv(f, i), &r->apply, &buf, 1, apply_done_cb);
    if (rv != 0)
        raft_free(buf.base);
    assert_int_equal(rv, 0);
    return r;
}

static unsigned leader(struct pt_fsm_cluster *f)
{
    assert_true(raft_fixture_step_until_has_leader(&f->rf, STEP_MS));
    unsigned l = raft_fixture_leader_index(&f->rf);
    assert_true(l < f->n);
    return l;
}

/* Proposes workload commands first..last-1 on the leader; returns the last request. */
static struct pt_fsm_cluster_req *push(struct pt_fsm_cluster *f, unsigned first, unsigned last)
{
    unsigned l = leader(f);
    struct pt_fsm_cluster_req *r = NULL;
    for (unsigned k = first; k < last; k++) {
        struct pt_command_builder b;
        pt_workload_push_cmd(&b, k);
        r = propose(f, l, &b);
    }
    return r;
}

struct wait {
    unsigned mask; /* servers that must have applied */
    raft_index index;
    const struct pt_fsm_cluster_req
        *req; /* or, when set: this request's callback must have fired */
};

static bool waited(struct raft_fixture *rf, void *arg)
{
    const struct wait *w = arg;
    if (w->req != NULL)
        return w->req->done > 0;
    for (unsigned i = 0; i < rf->n; i++)
        if ((w->mask & (1u << i)) && raft_last_applied(raft_fixture_get(rf, i)) < w->index)
            return false;
    return true;
}

static void wait_req(struct pt_fsm_cluster *f, const struct pt_fsm_cluster_req *r)
{
    struct wait w = {.req = r};
    assert_true(raft_fixture_step_until(&f->rf, waited, &w, STEP_MS));
}

/* Steps until every server of mask has applied the leader's last entry, then checks that
 * their state digests and applied indices are equal; hex gets the common digest. */
static void converge(struct pt_fsm_cluster *f, unsigned mask, char hex[65])
{
    struct wait w = {.mask = mask, .index = raft_last_index(pt_fsm_cluster_srv(f, leader(f)))};
    assert_true(raft_fixture_step_until(&f->rf, waited, &w, STEP_MS));
    bool first = true;
    uint64_t applied = 0;
    for (unsigned i = 0; i < f->n; i++) {
        if (!(mask & (1u << i)))
            continue;
        char h[65];
        pt_workload_state(f->ms[i], h);
        uint64_t a = pt_metastore_applied_index(f->ms[i]);
        assert_true(a > 0 && a <= raft_last_applied(pt_fsm_cluster_srv(f, i)));
        if (first) {
            memcpy(hex, h, sizeof(h));
            applied = a;
            first = false;
        }
        assert_string_equal(h, hex);
        assert_int_equal(a, applied);
    }
}

/* The state a single store (the last one, outside the cluster) reaches by applying workload
 * commands 1..n-1 in order. */
static void expected_state(struct pt_fsm_cluster *f, unsigned n, char hex[65])
{
    struct pt_metastore *ms = f->ms[f->n_stores - 1];
    pt_workload_push(ms, 1, n);
    pt_workload_state(ms, hex);
}

/* Cuts (or restores) the link between servers i and j in both directions: sends fail at
 * once (disconnect) and messages already in flight are dropped (saturate), which is also what
 * the fixture's leader-stability check looks at. */
static void link_set(struct pt_fsm_cluster *f, unsigned i, unsigned j, bool up)
{
    if (up) {
        raft_fixture_reconnect(&f->rf, i, j);
        raft_fixture_reconnect(&f->rf, j, i);
        raft_fixture_desaturate(&f->rf, i, j);
        raft_fixture_desaturate(&f->rf, j, i);
    } else {
        raft_fixture_disconnect(&f->rf, i, j);
        raft_fixture_disconnect(&f->rf, j, i);
        raft_fixture_saturate(&f->rf, i, j);
        raft_fixture_saturate(&f->rf, j, i);
    }
}

/* Cuts (or restores) every link of server i. */
static void isolate(struct pt_fsm_cluster *f, unsigned i, bool cut)
{
    for (unsigned j = 0; j < f->n; j++)
        if (j != i)
            link_set(f, i, j, !cut);
}

/* Kills server i, the leader, and waits for the others to elect a new one. */
static unsigned kill_leader(struct pt_fsm_cluster *f, unsigned i)
{
    raft_fixture_kill(&f->rf, i);
    assert_true(raft_fixture_step_until_has_no_leader(&f->rf, STEP_MS));
    unsigned l = leader(f);
    assert_int_not_equal(l, i);
    return l;
}

static void test_cluster_apply(void **state)
{
    struct pt_fsm_cluster *f = *state;
    pt_fsm_cluster_start(f, 3, 0, 0);
    unsigned l = leader(f);
    /* one leader, and every server knows it */
    for (unsigned i = 0; i < 3; i++) {
        raft_id id;
        const char *addr;
        raft_leader(pt_fsm_cluster_srv(f, i), &id, &addr);
        assert_int_equal(id, pt_fsm_cluster_srv(f, l)->id);
        assert_int_equal(raft_state(pt_fsm_cluster_srv(f, i)),
                         i == l ? RAFT_LEADER : RAFT_FOLLOWER);
    }

    struct pt_fsm_cluster_req *last = push(f, 1, 21);
    struct pt_command_builder b;
    pt_workload_bad_tag_cmd(&b, "ghost");
    struct pt_fsm_cluster_req *bad = propose(f, l, &b);
    char hex[65], want[65];
    converge(f, 7, hex);
    for (unsigned i = 0; i < 21; i++) {
        assert_int_equal(f->reqs[i].done, 1);
        assert_int_equal(f->reqs[i].status, 0);
    }
    assert_int_equal(last->result, 0);
    /* a failed precondition comes back through the result, identically applied everywhere */
    assert_int_equal(bad->status, 0);
    assert_int_equal(bad->result, PT_E_MANIFEST_UNKNOWN);
    expected_state(f, 21, want);
    assert_string_equal(hex, want);
    for (unsigned i = 0; i < 3; i++) {
        char digest[PT_DIGEST_STR_MAX + 1];
        assert_int_equal(pt_metastore_get_tag(f->ms[i], "team/app0", "ghost", digest),
                         PT_E_MANIFEST_UNKNOWN);
        assert_int_equal(f->fsm[i].n_applied, 21);
        assert_int_equal(f->fsm[i].n_skipped, 0);
        /* the store's index is the raft index of the last command */
        assert_int_equal(pt_metastore_applied_index(f->ms[i]), bad->apply.index);
    }
}

static void test_cluster_leader_loss(void **state)
{
    struct pt_fsm_cluster *f = *state;
    pt_fsm_cluster_start(f, 3, 0, 0);
    raft_fixture_elect(&f->rf, 0);
    push(f, 1, 6);
    char h1[65], h2[65], h3[65], want[65];
    converge(f, 7, h1);

    /* deposed: another server is elected and carries on */
    raft_fixture_depose(&f->rf);
    assert_true(raft_fixture_step_until_has_no_leader(&f->rf, STEP_MS));
    raft_fixture_elect(&f->rf, 1);
    assert_int_equal(leader(f), 1);
    push(f, 6, 11);
    converge(f, 7, h2);
    assert_string_not_equal(h1, h2);

    /* killed: the two others elect a leader among themselves and carry on without it */
    unsigned l = kill_leader(f, 1);
    assert_true(l == 0 || l == 2);
    push(f, 11, 16);
    converge(f, 5, h3);
    char dead[65];
    pt_workload_state(f->ms[1], dead);
    assert_string_equal(dead, h2); /* it missed everything since it died */

    /* back: it catches up with what it missed */
    raft_fixture_revive(&f->rf, 1);
    push(f, 16, 18);
    converge(f, 7, h3);
    expected_state(f, 18, want);
    assert_string_equal(h3, want);
    for (unsigned i = 0; i < f->n_reqs; i++)
        assert_int_equal(f->reqs[i].status, 0);
}

static void test_cluster_partition(void **state)
{
    struct pt_fsm_cluster *f = *state;
    pt_fsm_cluster_start(f, 3, 0, 0);
    raft_fixture_elect(&f->rf, 0);
    push(f, 1, 4);
    char h[65], cut[65], want[65];
    converge(f, 7, h);

    /* a follower cut off: the majority commits without it, it changes nothing meanwhile */
    isolate(f, 2, true);
    push(f, 4, 9);
    converge(f, 3, h);
    pt_workload_state(f->ms[2], cut);
    assert_string_not_equal(cut, h);
    assert_true(pt_metastore_applied_index(f->ms[2]) < pt_metastore_applied_index(f->ms[0]));
    isolate(f, 2, false);
    converge(f, 7, h);

    /* the leader cut off: what it accepts alone is never committed; the majority elects a
     * new leader and goes on; after healing everyone holds the majority's history */
    isolate(f, 0, true);
    struct pt_command_builder b;
    assert_int_equal(pt_command_builder_init(&b, PT_WORKLOAD_T0, "eu-west"), 0);
    char d[PT_DIGEST_STR_MAX + 1], body[64];
    pt_workload_body(1, body);
    pt_text_digest(body, d);
    assert_int_equal(pt_command_add_put_tag(&b, "team/app1", "orphan", d), 0);
    struct pt_fsm_cluster_req *orphan = propose(f, 0, &b);
    wait_req(f, orphan); /* the old leader steps down and gives up on it */
    assert_int_not_equal(orphan->status, 0);
    assert_int_equal(pt_raft_fsm_err(orphan->status), PT_E_UNAVAILABLE);
    unsigned l = leader(f);
    assert_true(l == 1 || l == 2);
    push(f, 9, 14);
    converge(f, 6, h);
    isolate(f, 0, false);
    push(f, 14, 15);
    converge(f, 7, h);
    expected_state(f, 15, want);
    assert_string_equal(h, want);
    for (unsigned i = 0; i < 3; i++) {
        char digest[PT_DIGEST_STR_MAX + 1];
        assert_int_equal(pt_metastore_get_tag(f->ms[i], "team/app1", "orphan", digest),
                         PT_E_MANIFEST_UNKNOWN);
    }
}

static void test_cluster_snapshot_install(void **state)
{
    struct pt_fsm_cluster *f = *state;
    pt_fsm_cluster_start(f, 3, 4, 2);
    raft_fixture_elect(&f->rf, 0);
    push(f, 1, 4);
    char h[65], want[65];
    converge(f, 7, h);
    uint64_t applied_before = f->fsm[2].n_applied;

    /* follower 2 falls behind by far more than the leader keeps in its log */
    isolate(f, 2, true);
    push(f, 4, 34);
    converge(f, 3, h);
    assert_true(f->fsm[0].n_snapshots >= 1);
    assert_true(pt_fsm_cluster_srv(f, 0)->log.offset > pt_metastore_applied_index(f->ms[2]));

    isolate(f, 2, false);
    converge(f, 7, h);
    expected_state(f, 34, want);
    assert_string_equal(h, want);
    /* it caught up through InstallSnapshot, not by replaying every entry */
    assert_true(raft_fixture_n_recv(&f->rf, 2, RAFT_IO_INSTALL_SNAPSHOT) >= 1);
    assert_true(f->fsm[2].n_restored >= 1);
    assert_true(f->fsm[2].n_applied - applied_before < 30);

    /* and it keeps following the log afterwards */
    push(f, 34, 40);
    converge(f, 7, h);
    expected_state(f, 40, want);
    assert_string_equal(h, want);
}

/* The same through snapshots by reference: raft 0.15 drives the version 3 callbacks (the
 * file written through the fixture's async work), stores and sends only the descriptor, and
 * the lagging server restores the file it names. */
static void test_cluster_snapshot_files(void **state)
{
    struct pt_fsm_cluster *f = *state;
    snprintf(f->snapshot_dir, sizeof(f->snapshot_dir), "%s/raft-snapshots", f->dir);
    pt_fsm_cluster_start(f, 3, 4, 2);
    raft_fixture_elect(&f->rf, 0);
    push(f, 1, 4);
    char h[65], want[65];
    converge(f, 7, h);

    isolate(f, 2, true);
    push(f, 4, 34);
    converge(f, 3, h);
    assert_true(f->fsm[0].n_snapshots >= 1);
    assert_int_equal(f->fsm[0].n_snapshot_failed, 0);
    assert_null(f->fsm[0].job); /* every pinned state released */
    assert_true(pt_fsm_cluster_srv(f, 0)->log.offset > pt_metastore_applied_index(f->ms[2]));

    isolate(f, 2, false);
    converge(f, 7, h);
    expected_state(f, 34, want);
    assert_string_equal(h, want);
    assert_true(raft_fixture_n_recv(&f->rf, 2, RAFT_IO_INSTALL_SNAPSHOT) >= 1);
    assert_true(f->fsm[2].n_restored_files >= 1);

    push(f, 34, 40);
    converge(f, 7, h);
    expected_state(f, 40, want);
    assert_string_equal(h, want);
}

static void change_cb(struct raft_change *req, int status)
{
    int *out = req->data;
    *out = status == 0 ? 1 : -1;
}

static bool change_done(struct raft_fixture *rf, void *arg)
{
    (void)rf;
    return *(int *)arg != 0;
}

static int role_of(struct raft *r, raft_id id)
{
    for (unsigned i = 0; i < r->configuration.n; i++)
        if (r->configuration.servers[i].id == id)
            return r->configuration.servers[i].role;
    return -1;
}

static void test_cluster_membership(void **state)
{
    struct pt_fsm_cluster *f = *state;
    pt_fsm_cluster_start(f, 3, 8, 2);
    raft_fixture_elect(&f->rf, 0);
    push(f, 1, 26);
    char h[65], want[65];
    converge(f, 7, h);
    assert_true(pt_fsm_cluster_srv(f, 0)->log.offset > 0); /* the log no longer starts at index 1 */

    /* a pristine fourth server joins as a spare, then becomes a voter */
    pt_fsm_cluster_grow(f, 8, 2);
    struct raft *fresh = pt_fsm_cluster_srv(f, 3);
    assert_int_equal(raft_start(fresh), 0);
    int done = 0;
    struct raft_change change = {.data = &done};
    assert_int_equal(
        raft_add(pt_fsm_cluster_srv(f, 0), &change, fresh->id, fresh->address, change_cb), 0);
    assert_true(raft_fixture_step_until(&f->rf, change_done, &done, STEP_MS));
    assert_int_equal(done, 1);
    assert_int_equal(role_of(pt_fsm_cluster_srv(f, 0), fresh->id), RAFT_SPARE);
    done = 0;
    assert_int_equal(
        raft_assign(pt_fsm_cluster_srv(f, 0), &change, fresh->id, RAFT_VOTER, change_cb), 0);
    assert_true(raft_fixture_step_until(&f->rf, change_done, &done, STEP_MS));
    assert_int_equal(done, 1);
    assert_int_equal(role_of(pt_fsm_cluster_srv(f, 0), fresh->id), RAFT_VOTER);

    push(f, 26, 31);
    converge(f, 15, h);
    expected_state(f, 31, want);
    assert_string_equal(h, want);
    assert_true(f->fsm[3].n_restored >= 1); /* it started from a snapshot */

    /* four voters need three: with one of the originals gone, commits need the new voter */
    raft_fixture_kill(&f->rf, 2);
    struct pt_fsm_cluster_req *r = push(f, 31, 33);
    wait_req(f, r);
    assert_int_equal(r->status, 0);
    converge(f, 11, h);
    /* and a voter that loses the cluster stops commits: kill the new one too */
    raft_fixture_kill(&f->rf, 3);
    struct pt_command_builder b;
    pt_workload_push_cmd(&b, 33);
    struct pt_fsm_cluster_req *stuck = propose(f, raft_fixture_leader_index(&f->rf), &b);
    raft_fixture_step_until_elapsed(&f->rf, 3000);
    assert_true(stuck->done == 0 || stuck->status != 0);
    char now[65];
    pt_workload_state(f->ms[0], now);
    assert_string_equal(now, h);
}

int main(void)
{
    static unsigned four = 4, five = 5;
#define TEST(fn, stores)                                                                           \
    cmocka_unit_test_prestate_setup_teardown(fn, pt_fsm_cluster_setup, pt_fsm_cluster_teardown,    \
                                             &stores)
    const struct CMUnitTest tests[] = {
        TEST(test_cluster_apply, four),          TEST(test_cluster_leader_loss, four),
        TEST(test_cluster_partition, four),      TEST(test_cluster_snapshot_install, four),
        TEST(test_cluster_snapshot_files, four), TEST(test_cluster_membership, five),
    };
#undef TEST
    return cmocka_run_group_tests(tests, NULL, NULL);
}
