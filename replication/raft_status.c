/*
 * raft_status.c - this region's view of the cluster as JSON: its role, term, indexes, leader
 * and last contact, the configuration's regions (named from the cluster file, else from the
 * replicated region records), and blob replication's status.
 */
#include <jansson.h>
#include <raft.h>
#include <stdlib.h>

#include "blob_sync.h"
#include "err.h"
#include "ident.h"
#include "metastore.h"
#include "raft_node_int.h"
#include "transport.h"

char *pt_raft_node_replication_json(struct pt_raft_node *n)
{
    return n->blobs != NULL ? pt_blob_sync_status_json(n->blobs) : NULL;
}

static const char *role_name(struct pt_raft_node *n)
{
    switch (raft_state(&n->raft)) {
    case RAFT_LEADER:
        return "leader";
    case RAFT_CANDIDATE:
        return "candidate";
    case RAFT_FOLLOWER:
        break;
    default:
        return "unavailable";
    }
    for (unsigned i = 0; i < n->raft.configuration.n; i++) {
        const struct raft_server *s = &n->raft.configuration.servers[i];
        if (s->id == n->cfg.self_id)
            return s->role == RAFT_STANDBY ? "standby"
                   : s->role == RAFT_SPARE ? "spare"
                                           : "follower";
    }
    return "follower";
}

static json_t *self_json(struct pt_raft_node *n, const struct pt_region_rec *recs, size_t nrecs)
{
    const struct pt_cluster_region *me = pt_raft_node__member(n, n->cfg.self_id);
    uint64_t leader = pt_raft_node__leader_id(n);
    const char *leader_name, *leader_url;
    pt_cluster_config_describe(&n->cfg.cluster, recs, nrecs, leader, &leader_name, &leader_url);
    json_int_t contact = -1;
    if (raft_state(&n->raft) == RAFT_LEADER)
        contact = 0;
    else if (leader != 0)
        contact = (json_int_t)(n->io.time(&n->io) - n->raft.election_timer_start);
    json_t *o = json_pack(
        "{s:s,s:s,s:I,s:s,s:I,s:I,s:I,s:I,s:s,s:s,s:I,s:s,s:s}", "cluster_id",
        n->cfg.cluster.cluster_id, "region", me != NULL ? me->name : "", "id",
        (json_int_t)n->cfg.self_id, "role", role_name(n), "term", (json_int_t)n->raft.current_term,
        "commit_index", (json_int_t)n->raft.commit_index, "applied_index",
        (json_int_t)raft_last_applied(&n->raft), "leader_id", (json_int_t)leader, "leader_region",
        leader_name, "leader_url", leader_url, "last_contact_ms", contact, "address",
        me != NULL ? me->address : "", "url", me != NULL ? me->url : "");
    int halted = pt_metastore_halted(n->ms);
    if (o != NULL && halted != 0) /* this region stopped applying: a failed store write */
        json_object_set_new(o, "halted", json_string(pt_err_message(halted)));
    if (o != NULL && n->fsm.pending != NULL) /* committed, held back below the disk reserve */
        json_object_set_new(o, "disk_held_entries", json_integer((json_int_t)n->fsm.n_pending));
    /* raft snapshot files: written, restored, fetched from and served to other regions */
    if (o != NULL)
        json_object_set_new(
            o, "snapshots",
            json_pack("{s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I}", "taken",
                      (json_int_t)n->fsm.n_snapshots, "failed",
                      (json_int_t)n->fsm.n_snapshot_failed, "last_bytes",
                      (json_int_t)n->fsm.snapshot_bytes, "restored", (json_int_t)n->fsm.n_restored,
                      "restored_files", (json_int_t)n->fsm.n_restored_files, "fetches",
                      (json_int_t)n->snap_n_fetches, "fetched", (json_int_t)n->snap_n_fetched,
                      "fetch_failed", (json_int_t)n->snap_n_fetch_failed, "fetch_bytes",
                      (json_int_t)n->snap_fetch_bytes, "dropped", (json_int_t)n->snap_n_dropped,
                      "served_pieces", (json_int_t)n->snap_n_served, "served_bytes",
                      (json_int_t)n->snap_served_bytes, "serve_refused",
                      (json_int_t)n->snap_n_serve_refused));
    /* regions this one reaches through another (a bridge partition): [{"to": id, "via": id}] */
    json_t *relays = o != NULL ? json_array() : NULL;
    for (unsigned i = 0; relays != NULL && i < n->raft.configuration.n; i++) {
        uint64_t to = n->raft.configuration.servers[i].id;
        uint64_t via = pt_transport_relay_of(&n->transport, to);
        if (via != 0)
            json_array_append_new(
                relays, json_pack("{s:I,s:I}", "to", (json_int_t)to, "via", (json_int_t)via));
    }
    if (relays != NULL)
        json_object_set_new(o, "relays", relays);
    return o;
}

char *pt_raft_node_status_json(struct pt_raft_node *n, int members)
{
    struct pt_region_rec *recs = NULL;
    size_t nrecs = 0;
    if (pt_metastore_list_regions(n->ms, &recs, &nrecs) != 0)
        nrecs = 0;
    json_t *self = self_json(n, recs, nrecs);
    json_t *root = self;
    if (members && self != NULL) {
        json_t *regions = json_array();
        for (unsigned i = 0; i < n->raft.configuration.n; i++) {
            const struct raft_server *s = &n->raft.configuration.servers[i];
            const char *name, *url;
            pt_cluster_config_describe(&n->cfg.cluster, recs, nrecs, s->id, &name, &url);
            json_array_append_new(regions,
                                  json_pack("{s:s,s:I,s:s,s:s,s:s}", "name", name, "id",
                                            (json_int_t)s->id, "address", s->address, "url", url,
                                            "role", pt_ident_role_name(s->role)));
        }
        root = json_pack("{s:s,s:o,s:o}", "cluster_id", n->cfg.cluster.cluster_id, "self", self,
                         "regions", regions);
    }
    free(recs);
    char *text = root != NULL ? json_dumps(root, JSON_COMPACT) : NULL;
    json_decref(root);
    return text;
}
