/*
 * raft_membership.c - membership changes (Raft dissertation chapter 4), leader only, one at a
 * time: adding a region (as a spare, then its assigned role), removing one, handing
 * leadership over; and keeping the peer layer's addresses in step with the configuration.
 *
 * A region's name, address and URL are recorded in replicated state (PutRegion) before it is
 * added, so that every region can describe it; its record is deleted (DeleteRegion) after it
 * left. Both go through the leader's own log (pt_raft_node__leader_apply).
 *
 * A voter is added in three steps: a spare, at once a standby (replicated to, never counted:
 * it receives the snapshot and the log), and a voter once its match index is within
 * PROMOTE_SLACK entries of the leader's log (checked each tick, pt_raft_node__membership_tick),
 * when raft's own catch-up round is short. raft 0.15 alone would promote a spare straight away
 * in catch-up rounds each bounded by 5 s, and abort (RAFT_NOCONNECTION) a region that needs
 * longer to fetch and restore a large snapshot; meanwhile it refuses every other change. Here a
 * region may take up to PROMOTE_WAIT_MS, and a remove (the way to give up on it) is accepted
 * while it catches up. Adding an existing standby or spare again, at the same address, as a
 * voter resumes its promotion (after a leader change, a timeout).
 */
#include <jansson.h>
#include <raft.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blob_sync.h"
#include "command.h"
#include "err.h"
#include "log.h"
#include "metastore.h"
#include "peer.h"
#include "raft_fsm.h"
#include "raft_node_int.h"
#include "transport.h"

/* A standby this close to the leader's last index is assigned the voter role. */
#define PROMOTE_SLACK 1024
/* How long a new voter may take to catch up as a standby (the bound of a snapshot fetch). */
#define PROMOTE_WAIT_MS (60u * 60 * 1000)

struct change {
    struct raft_change req;
    struct raft_transfer transfer;
    struct pt_raft_node *n;
    uint64_t id;
    int role;
    uint64_t deadline; /* loop time by which a standby being promoted must have caught up */
    char address[262];
    pt_raft_node_cb cb;
    void *arg;
};

static int change_err(int rv)
{
    switch (rv) {
    case RAFT_NOTLEADER:
    case RAFT_LEADERSHIPLOST:
        return PT_E_UNAVAILABLE;
    case RAFT_BADID:
    case RAFT_NOTFOUND:
        return PT_E_NOT_FOUND;
    case RAFT_DUPLICATEID:
    case RAFT_DUPLICATEADDRESS:
    case RAFT_BADROLE:
        return PT_E_CONFLICT;
    case RAFT_CANTCHANGE:
        return PT_E_TOOMANYREQUESTS; /* another change is still in progress */
    default:
        return pt_raft_fsm_err(rv);
    }
}

static void change_done(struct change *c, int status)
{
    c->cb(c->arg, status, c->id);
    free(c);
}

static void on_assigned(struct raft_change *req, int status)
{
    struct change *c = req->data;
    change_done(c, status != 0 ? change_err(status) : 0);
}

/* The index of server id in raft's configuration, or the configuration's size if absent. */
static unsigned server_index(const struct pt_raft_node *n, uint64_t id)
{
    unsigned i = 0;
    while (i < n->raft.configuration.n && n->raft.configuration.servers[i].id != id)
        i++;
    return i;
}

/* Waits (membership tick) for the standby c->id to catch up, then promotes it. */
static void wait_promotion(struct change *c)
{
    if (c->deadline == 0)
        c->deadline = uv_now(c->n->loop) + PROMOTE_WAIT_MS;
    c->n->promoting = c;
}

static void on_promoted(struct raft_change *req, int status)
{
    struct change *c = req->data;
    /* raft gave up on a catch-up round: the region is still a standby, wait again */
    if (status == RAFT_NOCONNECTION && uv_now(c->n->loop) < c->deadline && !c->n->stopping &&
        raft_state(&c->n->raft) == RAFT_LEADER) {
        wait_promotion(c);
        return;
    }
    change_done(c, status != 0 ? change_err(status) : 0);
}

static void on_standby(struct raft_change *req, int status)
{
    struct change *c = req->data;
    if (status != 0)
        change_done(c, change_err(status));
    else
        wait_promotion(c);
}

/* Assigns c->role: a voter through the standby role (file comment). */
static void assign(struct change *c)
{
    pt_raft_node__drop_lease(c->n, 0);
    unsigned i = server_index(c->n, c->id);
    int rv;
    if (c->role == RAFT_VOTER && i < c->n->raft.configuration.n &&
        c->n->raft.configuration.servers[i].role == RAFT_STANDBY) {
        wait_promotion(c);
        return;
    }
    if (c->role == RAFT_VOTER)
        rv = raft_assign(&c->n->raft, &c->req, c->id, RAFT_STANDBY, on_standby);
    else
        rv = raft_assign(&c->n->raft, &c->req, c->id, c->role, on_assigned);
    if (rv != 0)
        change_done(c, change_err(rv));
}

static void on_added(struct raft_change *req, int status)
{
    struct change *c = req->data;
    if (status != 0 || c->role == RAFT_SPARE) {
        change_done(c, status != 0 ? change_err(status) : 0);
        return;
    }
    assign(c);
}

void pt_raft_node__membership_tick(struct pt_raft_node *n)
{
    struct change *c = n->promoting;
    if (c == NULL)
        return;
    unsigned i = server_index(n, c->id);
    int rv = 0;
    if (n->stopping || raft_state(&n->raft) != RAFT_LEADER)
        rv = PT_E_UNAVAILABLE; /* a standby now: adding it again resumes (file comment) */
    else if (i == n->raft.configuration.n)
        rv = PT_E_NOT_FOUND; /* removed meanwhile */
    else if (uv_now(n->loop) >= c->deadline) {
        rv = PT_E_UNAVAILABLE;
        pt_log(PT_LOG_WARN,
               "a region added as a voter did not catch up in time: it stays a standby", "{s:I}",
               "id", (json_int_t)c->id);
    }
    if (rv != 0) {
        n->promoting = NULL;
        change_done(c, rv);
        return;
    }
    raft_index match = n->raft.leader_state.progress[i].match_index;
    if (match + PROMOTE_SLACK < raft_last_index(&n->raft))
        return;
    rv = raft_assign(&n->raft, &c->req, c->id, RAFT_VOTER, on_promoted);
    if (rv == RAFT_CANTCHANGE)
        return; /* another change (a remove) is being committed: next tick */
    n->promoting = NULL;
    if (rv != 0)
        change_done(c, change_err(rv));
}

static struct change *new_change(struct pt_raft_node *n, uint64_t id, pt_raft_node_cb cb, void *arg)
{
    struct change *c = calloc(1, sizeof(*c));
    if (c == NULL) {
        cb(arg, PT_E_NOMEM, 0);
        return NULL;
    }
    c->n = n;
    c->id = id;
    c->cb = cb;
    c->arg = arg;
    c->req.data = c;
    c->transfer.data = c;
    return c;
}

/* Proposes a command of one region operation through the leader's own log. */
static int propose_region(struct pt_raft_node *n, Portolan__Op *op, pt_raft_node_cb cb, void *arg)
{
    Portolan__Op *ops[1] = {op};
    Portolan__Command cmd = PORTOLAN__COMMAND__INIT;
    cmd.version = PT_COMMAND_VERSION;
    cmd.time_ms = (int64_t)uv_now(n->loop);
    const struct pt_cluster_region *me = pt_raft_node__member(n, n->cfg.self_id);
    cmd.region = me != NULL ? (char *)me->name : "";
    cmd.n_ops = 1;
    cmd.ops = ops;
    void *buf;
    size_t len;
    int rv = pt_command_encode(&cmd, &buf, &len);
    if (rv != 0)
        return rv;
    rv = pt_raft_node__leader_apply(n, buf, len, cb, arg, NULL);
    free(buf);
    return rv;
}

static void on_region_recorded(void *arg, int status, uint64_t index)
{
    struct change *c = arg;
    (void)index;
    if (status != 0) {
        change_done(c, status);
        return;
    }
    pt_peers_set_address(c->n->peers, c->id, c->address);
    pt_raft_node__drop_lease(c->n, 0);
    int rv = raft_add(&c->n->raft, &c->req, c->id, c->address, on_added);
    if (rv != 0)
        change_done(c, change_err(rv));
}

void pt_raft_node_add(struct pt_raft_node *n, uint64_t id, const char *name, const char *address,
                      const char *url, int role, pt_raft_node_cb cb, void *arg)
{
    struct change *c = new_change(n, id, cb, arg);
    if (c == NULL)
        return;
    c->role = role;
    if (role != RAFT_VOTER && role != RAFT_STANDBY && role != RAFT_SPARE) {
        change_done(c, PT_E_CONFLICT);
        return;
    }
    /* not while seeding: the region would be sent a log that lacks the seeded state */
    if (pt_raft_node__leader_id(n) != n->cfg.self_id || pt_raft_node__seeding(n)) {
        change_done(c, PT_E_UNAVAILABLE);
        return;
    }
    if (n->promoting != NULL) {
        change_done(c, PT_E_TOOMANYREQUESTS); /* one addition at a time */
        return;
    }
    snprintf(c->address, sizeof(c->address), "%s", address);
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        if (s->id == id && strcmp(s->address, address) == 0 && role == RAFT_VOTER &&
            s->role != RAFT_VOTER) {
            assign(c); /* a standby or spare left by an earlier addition */
            return;
        }
        if (s->id == id || strcmp(s->address, address) == 0) {
            change_done(c, PT_E_CONFLICT);
            return;
        }
    }
    Portolan__PutRegion pr = PORTOLAN__PUT_REGION__INIT;
    pr.id = id;
    pr.name = (char *)name;
    pr.address = c->address;
    pr.url = (char *)url;
    Portolan__Op op = PORTOLAN__OP__INIT;
    op.op_case = PORTOLAN__OP__OP_PUT_REGION;
    op.put_region = &pr;
    int rv = propose_region(n, &op, on_region_recorded, c);
    if (rv != 0)
        change_done(c, rv);
}

static void on_region_forgotten(void *arg, int status, uint64_t index)
{
    struct change *c = arg;
    (void)index;
    change_done(c, status);
}

static void on_removed(struct raft_change *req, int status)
{
    struct change *c = req->data;
    if (status != 0) {
        change_done(c, change_err(status));
        return;
    }
    Portolan__DeleteRegion dr = PORTOLAN__DELETE_REGION__INIT;
    dr.id = c->id;
    Portolan__Op op = PORTOLAN__OP__INIT;
    op.op_case = PORTOLAN__OP__OP_DELETE_REGION;
    op.delete_region = &dr;
    int rv = propose_region(c->n, &op, on_region_forgotten, c);
    if (rv != 0)
        change_done(c, rv);
}

void pt_raft_node_remove(struct pt_raft_node *n, uint64_t id, pt_raft_node_cb cb, void *arg)
{
    struct change *c = new_change(n, id, cb, arg);
    if (c == NULL)
        return;
    pt_raft_node__drop_lease(n, 0); /* a new majority: confirmed again by the next round */
    int rv = raft_remove(&n->raft, &c->req, id, on_removed);
    if (rv != 0)
        change_done(c, change_err(rv));
}

static void on_transferred(struct raft_transfer *req)
{
    struct change *c = req->data;
    uint64_t leader = pt_raft_node__leader_id(c->n);
    /* raft_transfer reports no status: success is the target (or someone else) leading. */
    c->id = leader;
    change_done(c, leader != 0 && leader != c->n->cfg.self_id ? 0 : PT_E_UNAVAILABLE);
}

void pt_raft_node_transfer(struct pt_raft_node *n, uint64_t id, pt_raft_node_cb cb, void *arg)
{
    struct change *c = new_change(n, id, cb, arg);
    if (c == NULL)
        return;
    /* the target campaigns with the disrupt-leader flag: no read from the lease meanwhile */
    pt_raft_node__drop_lease(n,
                             PT_LEASE_TRANSFER_HOLD_ELECTIONS * (uint64_t)n->raft.election_timeout);
    int rv = raft_transfer(&n->raft, &c->transfer, id, on_transferred);
    if (rv != 0)
        change_done(c, change_err(rv));
}

/* Keeps the peer layer's addresses in step with Raft's configuration (regions added later
 * are only known there), and tells blob sync their names (from the region records). */
void pt_raft_node__sync_peer_addresses(struct pt_raft_node *n)
{
    struct pt_region_rec *recs = NULL;
    size_t nrecs = 0;
    int have_recs = 0;
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        if (s->id == n->cfg.self_id || pt_raft_node__member(n, s->id) != NULL)
            continue;
        pt_peers_set_address(n->peers, s->id, s->address);
        if (n->blobs == NULL)
            continue;
        if (!have_recs)
            have_recs = pt_metastore_list_regions(n->ms, &recs, &nrecs) == 0;
        for (size_t j = 0; j < nrecs; j++)
            if (recs[j].id == s->id && recs[j].name[0] != '\0')
                pt_blob_sync_set_region(n->blobs, s->id, recs[j].name, s->address);
    }
    free(recs);
}

bool pt_raft_node__in_configuration(const struct pt_raft_node *n, uint64_t id)
{
    return server_index(n, id) < n->raft.configuration.n;
}

/* The transport's identity callback (pt_transport_set_identity): who may hold a connection.
 * Before raft has a configuration (first start, or a region waiting to be added), the regions
 * of the cluster file; afterwards the servers of raft's configuration and the regions being
 * added (recorded by PutRegion before raft_add), these for peer channels only
 * (PT_TRANSPORT_PEER_ONLY): no vote or append of a server outside the configuration reaches
 * raft. Names come from the cluster file, else from the region records. */
int pt_raft_node__identity(void *arg, uint64_t id, char name[PT_CLUSTER_NAME_MAX + 1])
{
    struct pt_raft_node *n = arg;
    const struct pt_cluster_region *file = pt_raft_node__member(n, id);
    bool known =
        n->raft.configuration.n == 0 ? file != NULL : pt_raft_node__in_configuration(n, id);
    struct pt_region_rec *recs = NULL;
    size_t nrecs = 0;
    int rv = PT_E_NOT_FOUND;

    if (known && file != NULL) {
        snprintf(name, PT_CLUSTER_NAME_MAX + 1, "%s", file->name);
        return 0;
    }
    if (n->raft.configuration.n == 0 || pt_metastore_list_regions(n->ms, &recs, &nrecs) != 0)
        return PT_E_NOT_FOUND;
    for (size_t i = 0; i < nrecs; i++) {
        if (recs[i].id == id && recs[i].name[0] != '\0') {
            snprintf(name, PT_CLUSTER_NAME_MAX + 1, "%s", recs[i].name);
            rv = known ? 0 : PT_TRANSPORT_PEER_ONLY; /* being added: no raft channel yet */
        }
    }
    free(recs);
    return rv;
}

int pt_raft_node__member_at(void *arg, size_t index, uint64_t *id,
                            char address[PT_CLUSTER_ADDRESS_MAX + 1])
{
    struct pt_raft_node *n = arg;
    if (index >= n->raft.configuration.n)
        return PT_E_NOT_FOUND;
    *id = n->raft.configuration.servers[index].id;
    snprintf(address, PT_CLUSTER_ADDRESS_MAX + 1, "%s",
             n->raft.configuration.servers[index].address);
    return 0;
}
