/*
 * fsm_cluster.h - the fixture of the raft FSM adapter tests: up to PT_FSM_CLUSTER_MAX_SERVERS
 * metastores in a temporary directory, and a canonical/raft in-process fixture (raft/fixture.h)
 * whose servers run the real FSM adapter over them.
 *
 * Design: the state a test is given by cmocka's prestate names how many metastores it needs
 * (opening one costs about 0.1 s under the sanitizers, so tests open only what they use).
 * Servers are grown into the raft fixture one at a time, server i over ms[i]; the last store is
 * never a server: tests apply the workload to it directly to compute the state the servers must
 * reach. The fixture also holds the raft_apply requests tests make, so that they outlive
 * raft_fixture_close, which fires the pending callbacks.
 *
 * Ownership: the fixture owns the stores, the raft fixture and the requests; everything is
 * closed and the directory removed by pt_fsm_cluster_teardown.
 */
#ifndef PT_TEST_FSM_CLUSTER_H
#define PT_TEST_FSM_CLUSTER_H

#include <raft.h>
#include <raft/fixture.h>

#include "metastore.h"
#include "raft_fsm.h"

#define PT_FSM_CLUSTER_MAX_SERVERS 5
#define PT_FSM_CLUSTER_MAX_REQS    256

/* One raft_apply request and what its callback reported. */
struct pt_fsm_cluster_req {
    struct raft_apply apply;
    int done;   /* callback invocations */
    int status; /* the callback's RAFT_* status */
    int result; /* pt_raft_fsm_status of the result, when status is 0 */
};

struct pt_fsm_cluster {
    unsigned n_stores; /* metastores opened, ms[0 .. n_stores-1] */
    char dir[256];
    char db[PT_FSM_CLUSTER_MAX_SERVERS][300];
    struct pt_metastore *ms[PT_FSM_CLUSTER_MAX_SERVERS];
    struct pt_raft_fsm fsm[PT_FSM_CLUSTER_MAX_SERVERS];
    struct raft_fixture rf;
    unsigned n; /* servers grown into rf */
    struct pt_fsm_cluster_req reqs[PT_FSM_CLUSTER_MAX_REQS];
    unsigned n_reqs;
    /* Non-empty: servers grown from then on take snapshots by reference (fsm version 3,
     * pt_raft_fsm_use_files) into this one directory, which every server reads, as if each
     * file had been fetched already; their io's async_work runs the work at once. */
    char snapshot_dir[300];
};

/* cmocka setup: *state points at an unsigned count of metastores to open (1..MAX_SERVERS);
 * replaced by the new fixture (owned, freed by pt_fsm_cluster_teardown). */
int pt_fsm_cluster_setup(void **state);

/* cmocka teardown: closes the raft fixture and the stores, removes the directory. */
int pt_fsm_cluster_teardown(void **state);

/* Closes and reopens metastore i, as after a restart; f->ms[i] changes. */
void pt_fsm_cluster_reopen(struct pt_fsm_cluster *f, int i);

/* Server i of the raft fixture (borrowed). */
struct raft *pt_fsm_cluster_srv(struct pt_fsm_cluster *f, unsigned i);

/* Adds server i = f->n with its FSM over ms[i]; snapshot settings 0 keep raft's defaults. */
void pt_fsm_cluster_grow(struct pt_fsm_cluster *f, unsigned threshold, unsigned trailing);

/* n voters, bootstrapped and started. */
void pt_fsm_cluster_start(struct pt_fsm_cluster *f, unsigned n, unsigned threshold,
                          unsigned trailing);

#endif
