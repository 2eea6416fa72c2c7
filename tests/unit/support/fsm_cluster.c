/*
 * fsm_cluster.c - stores, raft fixture and FSM adapters of the raft FSM tests (see
 * fsm_cluster.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>

#include "fsm_cluster.h"
#include "tmpdir.h"

int pt_fsm_cluster_setup(void **state)
{
    struct pt_fsm_cluster *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    f->n_stores = *(const unsigned *)*state;
    assert_true(f->n_stores >= 1 && f->n_stores <= PT_FSM_CLUSTER_MAX_SERVERS);
    pt_tmpdir_create(f->dir, sizeof(f->dir), "pt_raft_fsm_");
    for (unsigned i = 0; i < f->n_stores; i++) {
        snprintf(f->db[i], sizeof(f->db[i]), "%s/server%u", f->dir, i);
        assert_int_equal(pt_metastore_open(f->db[i], &f->ms[i]), 0);
    }
    assert_int_equal(raft_fixture_initialize(&f->rf), 0);
    *state = f;
    return 0;
}

int pt_fsm_cluster_teardown(void **state)
{
    struct pt_fsm_cluster *f = *state;
    raft_fixture_close(&f->rf); /* fires pending apply callbacks; reqs are still alive */
    for (unsigned i = 0; i < f->n_stores; i++)
        pt_metastore_close(f->ms[i]);
    pt_tmpdir_remove(f->dir);
    free(f);
    return 0;
}

void pt_fsm_cluster_reopen(struct pt_fsm_cluster *f, int i)
{
    pt_metastore_close(f->ms[i]);
    assert_int_equal(pt_metastore_open(f->db[i], &f->ms[i]), 0);
}

struct raft *pt_fsm_cluster_srv(struct pt_fsm_cluster *f, unsigned i)
{
    return raft_fixture_get(&f->rf, i);
}

/* io->async_work for the fixture: the work and its callback run inside the call. */
static int run_work_now(struct raft_io *io, struct raft_io_async_work *req,
                        raft_io_async_work_cb cb)
{
    (void)io;
    req->cb = cb;
    cb(req, req->work(req));
    return 0;
}

void pt_fsm_cluster_grow(struct pt_fsm_cluster *f, unsigned threshold, unsigned trailing)
{
    unsigned i = f->n;
    assert_true(i + 1 < f->n_stores); /* the last store is never a server */
    pt_raft_fsm_init(&f->fsm[i], f->ms[i], NULL);
    assert_int_equal(raft_fixture_grow(&f->rf, &f->fsm[i].fsm), 0);
    pt_raft_fsm_attach(&f->fsm[i], pt_fsm_cluster_srv(f, i));
    if (f->snapshot_dir[0] != '\0') {
        /* raft_init refuses a version 3 FSM on an io without async_work, which the fixture's
         * io of libraft 0.15 lacks: switch after raft_init, with the work run at once */
        struct raft_io *io = pt_fsm_cluster_srv(f, i)->io;
        if (io->version < 2 || io->async_work == NULL) {
            io->version = 2;
            io->async_work = run_work_now;
        }
        assert_int_equal(pt_raft_fsm_use_files(&f->fsm[i], f->snapshot_dir, i + 1), 0);
    }
    if (threshold != 0) {
        raft_set_snapshot_threshold(pt_fsm_cluster_srv(f, i), threshold);
        raft_set_snapshot_trailing(pt_fsm_cluster_srv(f, i), trailing);
    }
    f->n++;
}

void pt_fsm_cluster_start(struct pt_fsm_cluster *f, unsigned n, unsigned threshold,
                          unsigned trailing)
{
    for (unsigned i = 0; i < n; i++)
        pt_fsm_cluster_grow(f, threshold, trailing);
    struct raft_configuration conf;
    assert_int_equal(raft_fixture_configuration(&f->rf, n, &conf), 0);
    assert_int_equal(raft_fixture_bootstrap(&f->rf, &conf), 0);
    raft_configuration_close(&conf);
    assert_int_equal(raft_fixture_start(&f->rf), 0);
}
