/*
 * cluster.c - `portolan cluster status|add|remove|transfer-leader` (usage in cli.h).
 *
 * status reads the membership from the region named by --region, then asks every other
 * member for its own view (GET /admin/cluster/self) at once (cli_members_ask); the queried
 * region contributes the "self" object of its /admin/cluster answer instead of a second
 * request. A view counts only when it answers with the member's id and the cluster's id.
 * From the views it derives each member's state (leader, voter, ..., unreachable) and lag
 * (the leader's commit index minus the member's applied index), and prints one table, or
 * with --json one merged document.
 *
 * Membership changes (add, remove, transfer-leader) run on the leader only, so they first ask
 * the named region's /admin/cluster/self for the leader's URL and send the change there; the
 * region may still redirect it (method and body kept, see client.c).
 */
#include "cli.h"
#include "cli_int.h"

#include "admin_api.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

/* ---- status ---------------------------------------------------------------------------- */

/* Checks a region's own view against its member entry; takes the reference to self. */
static void accept_self(struct cli_member *m, json_t *self, const char *cluster_id)
{
    const char *cid = cli_json_str(self, "cluster_id", PT_CLUSTER_ID_MAX);
    const char *region = cli_json_str(self, "region", PT_CLUSTER_NAME_MAX);
    long long id = cli_json_uint(self, "id");
    char c1[80], c2[80];

    if (!json_is_object(self)) {
        snprintf(m->error, sizeof m->error, "answer is not a JSON object");
    } else if (id < 0) {
        snprintf(m->error, sizeof m->error, "answer has no id");
    } else if (id != (long long)m->id) {
        snprintf(m->error, sizeof m->error, "its URL answers as id %lld (%s), not id %" PRIu64, id,
                 cli_clean(c1, sizeof c1, region ? region : "?", PT_CLUSTER_NAME_MAX), m->id);
    } else if (cid == NULL || strcmp(cid, cluster_id) != 0) {
        snprintf(m->error, sizeof m->error, "it belongs to cluster \"%s\", not \"%s\"",
                 cli_clean(c1, sizeof c1, cid ? cid : "?", PT_CLUSTER_ID_MAX),
                 cli_clean(c2, sizeof c2, cluster_id, PT_CLUSTER_ID_MAX));
    } else {
        m->self = self;
        return;
    }
    json_decref(self);
}

/* The cli_accept_cb of /admin/cluster/self; arg is the cluster id. */
static void accept_view(struct cli_member *m, json_t *doc, const void *arg)
{
    if (doc == NULL)
        snprintf(m->error, sizeof m->error, "answer is not JSON");
    else
        accept_self(m, doc, arg);
}

/* Sets every member's state and lag; returns the leader's member, or NULL. */
static struct cli_member *settle(struct cli_member *ms, size_t n)
{
    static const char *const reported[] = {"candidate", "unavailable"};
    struct cli_member *leader = NULL;

    for (size_t i = 0; i < n; i++) {
        struct cli_member *m = &ms[i];
        const char *role = cli_json_str(m->self, "role", 16);

        if (m->self == NULL) {
            m->state = "unreachable";
            continue;
        }
        m->state = m->role;
        if (role != NULL && strcmp(role, "leader") == 0) {
            m->state = "leader";
            if (leader == NULL ||
                cli_json_uint(m->self, "term") > cli_json_uint(leader->self, "term"))
                leader = m;
        }
        for (size_t r = 0; role != NULL && r < 2; r++) {
            if (strcmp(role, reported[r]) == 0)
                m->state = reported[r];
        }
    }
    /* With two regions claiming leadership (an old leader that has not heard of the new
     * term yet), the higher term is the leader; the other shows as a voter. */
    for (size_t i = 0; i < n; i++) {
        if (&ms[i] != leader && ms[i].state != NULL && strcmp(ms[i].state, "leader") == 0)
            ms[i].state = ms[i].role;
    }
    if (leader != NULL) {
        long long commit = cli_json_uint(leader->self, "commit_index");
        for (size_t i = 0; i < n; i++) {
            long long applied = cli_json_uint(ms[i].self, "applied_index");
            if (ms[i].self != NULL && commit >= 0 && applied >= 0)
                ms[i].lag = commit > applied ? commit - applied : 0;
        }
    }
    return leader;
}

enum column { C_REGION, C_ID, C_ROLE, C_TERM, C_COMMIT, C_APPLIED, C_LAG, C_CONTACT, C_ADDRESS };
#define NCOLUMNS 9
static const char *const headers[NCOLUMNS] = {"REGION",  "ID",  "ROLE",         "TERM",   "COMMIT",
                                              "APPLIED", "LAG", "LAST-CONTACT", "ADDRESS"};
#define CELL_MAX (PT_CLUSTER_ADDRESS_MAX + 1)

static void print_table(FILE *out, const struct cli_member *ms, size_t n, const char *cluster_id,
                        const struct cli_member *leader)
{
    char(*cells)[NCOLUMNS][CELL_MAX] = calloc(n ? n : 1, sizeof *cells);

    if (cells == NULL) {
        fprintf(out, "out of memory\n");
        return;
    }
    if (leader != NULL)
        fprintf(out, "cluster %s: leader %s (id %" PRIu64 "), term %lld\n", cluster_id,
                leader->name, leader->id, cli_json_uint(leader->self, "term"));
    else
        fprintf(out, "cluster %s: no leader reachable\n", cluster_id);
    for (size_t i = 0; i < n; i++) {
        const struct cli_member *m = &ms[i];
        char(*row)[CELL_MAX] = cells[i];

        snprintf(row[C_REGION], CELL_MAX, "%s", m->name);
        if (m->id != 0)
            snprintf(row[C_ID], CELL_MAX, "%" PRIu64, m->id);
        else
            snprintf(row[C_ID], CELL_MAX, "-");
        snprintf(row[C_ROLE], CELL_MAX, "%s", m->state);
        cli_num_cell(row[C_TERM], CELL_MAX, cli_json_uint(m->self, "term"));
        cli_num_cell(row[C_COMMIT], CELL_MAX, cli_json_uint(m->self, "commit_index"));
        cli_num_cell(row[C_APPLIED], CELL_MAX, cli_json_uint(m->self, "applied_index"));
        cli_num_cell(row[C_LAG], CELL_MAX, m->lag);
        cli_num_cell(row[C_CONTACT], CELL_MAX,
                     m == leader ? -1 : cli_json_uint(m->self, "last_contact_ms"));
        snprintf(row[C_ADDRESS], CELL_MAX, "%s", m->address[0] ? m->address : "-");
    }
    cli_print_rows(out, headers, NCOLUMNS, (const char *)cells, CELL_MAX, n);
    /* Links that go through a relay (a bridge partition), as each region reports them. */
    for (size_t i = 0; i < n; i++) {
        json_t *relays = json_object_get(ms[i].self, "relays"), *r;
        size_t k;
        json_array_foreach(relays, k, r)
        {
            long long to = cli_json_uint(r, "to"), via = cli_json_uint(r, "via");
            const char *to_name = "?", *via_name = "?";
            for (size_t j = 0; j < n; j++) {
                if ((long long)ms[j].id == to)
                    to_name = ms[j].name;
                if ((long long)ms[j].id == via)
                    via_name = ms[j].name;
            }
            fprintf(out, "%s reaches %s through %s (relay)\n", ms[i].name, to_name, via_name);
        }
    }
    /* Every member without a view is unreachable: why follows the table. */
    cli_members_print_errors(out, ms, n);
    free(cells);
}

/* The merged document of --json: the cluster answer plus every region's view. */
static json_t *merged_json(const struct cli_member *ms, size_t n, json_t *doc, const char *base,
                           const struct cli_member *leader)
{
    json_t *out = json_object(), *regions = json_array();

    if (out == NULL || regions == NULL) {
        json_decref(out);
        json_decref(regions);
        return NULL;
    }
    json_object_set(out, "cluster_id", json_object_get(doc, "cluster_id"));
    json_object_set_new(out, "queried", json_string(base));
    json_object_set(out, "self", json_object_get(doc, "self"));
    if (leader != NULL)
        json_object_set_new(
            out, "leader",
            json_pack("{s:s,s:I,s:I,s:I}", "region", leader->name, "id", (json_int_t)leader->id,
                      "term", (json_int_t)cli_json_uint(leader->self, "term"), "commit_index",
                      (json_int_t)cli_json_uint(leader->self, "commit_index")));
    else
        json_object_set_new(out, "leader", json_null());
    for (size_t i = 0; i < n; i++) {
        const struct cli_member *m = &ms[i];
        json_t *r = json_is_object(m->entry) ? json_copy(m->entry) : json_object();

        if (r == NULL)
            continue;
        json_object_set_new(r, "state", json_string(m->state));
        json_object_set_new(r, "lag", m->lag >= 0 ? json_integer(m->lag) : json_null());
        json_object_set(r, "self", m->self ? m->self : json_null());
        if (m->self == NULL)
            json_object_set_new(r, "error", json_string(m->error));
        json_array_append_new(regions, r);
    }
    json_object_set_new(out, "regions", regions);
    return out;
}

int cli_cluster_status(const struct cli_opts *o, FILE *out, FILE *err)
{
    struct cli_member *ms = NULL;
    json_t *doc = NULL, *self;
    const char *cluster_id;
    size_t n = 0;
    int rc = PT_CLI_FAILED;

    if (cli_members_fetch(o, false, &doc, &ms, &n, err) != 0)
        goto out;
    cluster_id = cli_json_str(doc, "cluster_id", PT_CLUSTER_ID_MAX);
    self = json_object_get(doc, "self");
    /* The queried region's own view came with the answer. */
    for (size_t i = 0; i < n; i++) {
        if (ms[i].valid && json_is_object(self) && cli_json_uint(self, "id") == (long long)ms[i].id)
            accept_self(&ms[i], json_incref(self), cluster_id);
    }
    cli_members_ask(ms, n, o, PT_ADMIN_PREFIX PT_ADMIN_CLUSTER_SELF, accept_view, cluster_id);
    const struct cli_member *leader = settle(ms, n);
    if (o->json) {
        json_t *merged = merged_json(ms, n, doc, o->region, leader);
        if (merged == NULL) {
            fprintf(err, "portolan %s: out of memory\n", cli_cmd_titles[o->cmd]);
            goto out;
        }
        cli_print_json(out, merged);
        json_decref(merged);
    } else {
        print_table(out, ms, n, cluster_id, leader);
    }
    rc = PT_CLI_OK;
out:
    cli_members_free(ms, n);
    json_decref(doc);
    return rc;
}

/* ---- membership changes ---------------------------------------------------------------- */

/* The leader's client URL as the region at base sees it, into leader (cap bytes); base itself
 * when that region leads or knows no leader. */
static void find_leader(const struct cli_opts *o, const char *base, char *leader, size_t cap)
{
    struct cli_xfer x = {0};
    char why[CLI_WHY_MAX];

    snprintf(leader, cap, "%s", base);
    if (cli_xfer_setup(&x, "GET", base, PT_ADMIN_PREFIX PT_ADMIN_CLUSTER_SELF, NULL, o,
                       o->timeout_ms) == 0 &&
        cli_xfer_run(&x, why, sizeof why) == 0 && x.status == 200) {
        json_t *doc = cli_xfer_json(&x);
        const char *role = cli_json_str(doc, "role", 32);
        const char *url = cli_json_str(doc, "leader_url", PT_CLUSTER_URL_MAX);
        if (role != NULL && strcmp(role, "leader") != 0 && url != NULL && url[0] != '\0')
            snprintf(leader, cap, "%s", url);
        json_decref(doc);
    }
    cli_xfer_cleanup(&x);
}

int cli_cluster_change(const struct cli_opts *o, FILE *out, FILE *err)
{
    const char *cmd = cli_cmd_titles[o->cmd];
    const char *method = "POST";
    char path[64];
    json_t *body = NULL, *doc = NULL;
    struct cli_xfer x = {0};
    char leader[PT_CLUSTER_URL_MAX + 1];
    int rc = PT_CLI_FAILED;

    switch (o->cmd) {
    case CMD_ADD:
        snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_REGIONS);
        body = json_pack("{s:s,s:I,s:s,s:s,s:s}", "name", o->added.name, "id",
                         (json_int_t)o->added.id, "address", o->added.address, "url", o->added.url,
                         "role", pt_ident_role_name(o->added.role));
        break;
    case CMD_REMOVE:
        method = "DELETE";
        snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_REGIONS "/%" PRIu64, o->added.id);
        break;
    default:
        snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_TRANSFER_LEADER);
        if (o->given & (1u << F_ID))
            body = json_pack("{s:I}", "id", (json_int_t)o->added.id);
        else
            body = json_object();
        break;
    }
    if (o->cmd != CMD_REMOVE && body == NULL) {
        fprintf(err, "portolan %s: out of memory\n", cmd);
        return PT_CLI_FAILED;
    }
    find_leader(o, o->region, leader, sizeof leader);
    if (cli_request(&x, o, method, leader, path, body, true, err) != 0)
        goto out;
    doc = cli_xfer_json(&x);
    if (o->json) {
        cli_print_json(out, doc);
    } else if (o->cmd == CMD_ADD) {
        fprintf(out, "added region %s (id %" PRIu64 ", %s) (HTTP %ld)\n", o->added.name,
                o->added.id, pt_ident_role_name(o->added.role), x.status);
    } else if (o->cmd == CMD_REMOVE) {
        fprintf(out, "removal of region id %" PRIu64 " accepted (HTTP %ld)\n", o->added.id,
                x.status);
    } else if (o->given & (1u << F_ID)) {
        fprintf(out, "leadership transfer to id %" PRIu64 " accepted (HTTP %ld)\n", o->added.id,
                x.status);
    } else {
        fprintf(out, "leadership transfer accepted (HTTP %ld)\n", x.status);
    }
    rc = PT_CLI_OK;
out:
    json_decref(doc);
    json_decref(body);
    cli_xfer_cleanup(&x);
    return rc;
}
