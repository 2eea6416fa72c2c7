/*
 * members.c - a cluster's membership as the admin client sees it, and asking every member
 * for something at once.
 *
 * Design: the region named by --region answers GET /admin/cluster with the members of Raft's
 * configuration; each entry becomes a struct cli_member, every field checked on its own (a
 * member the server knows only partly still shows its id and address), and only members
 * whose every field is valid are asked anything. cli_members_ask then sends one GET to every
 * such member through one multi handle, each with a short time limit, so one dead region
 * costs SELF_TIMEOUT_MS, not one per region; the command's accept callback judges each 200
 * answer, every other outcome becomes the member's error.
 *
 * Limits: at most PT_CLUSTER_REGIONS_MAX members (a longer list is refused); names,
 * addresses and URLs are checked with the cluster file's rules before they are used or
 * printed.
 */
#include "cli_int.h"

#include "addr.h"
#include "admin_api.h"

#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#define SELF_TIMEOUT_MS 2000 /* one member's answer during cli_members_ask */

/*
 * Checks one member entry of /admin/cluster and fills m's fields. Each field is taken on its
 * own, so a member the server knows only partly (say, no client URL yet) still shows its id
 * and address; only a member with every field valid is asked for its view.
 */
static void member_read(struct cli_member *m, json_t *entry)
{
    const char *name = cli_json_str(entry, "name", PT_CLUSTER_NAME_MAX);
    const char *address = cli_json_str(entry, "address", PT_CLUSTER_ADDRESS_MAX);
    const char *url = cli_json_str(entry, "url", PT_CLUSTER_URL_MAX);
    const char *role = cli_json_str(entry, "role", 16);
    long long id = cli_json_uint(entry, "id");
    const char *field = NULL, *why = NULL;
    int r = PT_CLUSTER_VOTER;

    m->entry = entry;
    m->lag = -1;
    m->state = "unreachable";
    if (id > 0)
        m->id = (uint64_t)id;
    if (pt_addr_check_peer(address, NULL) == 0)
        memcpy(m->address, address, strlen(address) + 1);
    if (pt_ident_check_region(name, NULL) == 0)
        memcpy(m->name, name, strlen(name) + 1);
    else if (m->id != 0)
        snprintf(m->name, sizeof m->name, "#%" PRIu64, m->id);
    else
        snprintf(m->name, sizeof m->name, "?");

    if (!json_is_object(entry)) {
        field = "entry";
        why = "not an object";
    } else if (pt_ident_check_region(name, &why) != 0) {
        field = "name";
    } else if (m->id == 0) {
        field = "id";
        why = "missing or not a positive integer";
    } else if (pt_addr_check_peer(address, &why) != 0) {
        field = "address";
    } else if (cli_take_url(m->url, url ? url : "", &why) != 0) {
        field = "url";
    } else if (role != NULL && pt_ident_parse_role(role, &r) != 0) {
        field = "role";
        why = "not voter, standby or spare";
    }
    if (field != NULL) {
        snprintf(m->error, sizeof m->error, "incomplete member entry: %s: %s", field, why);
        return;
    }
    m->role = pt_ident_role_name(r);
    m->valid = true;
}

/* A single region (no Raft, no member list): the queried URL, by no name yet. */
static void member_single(struct cli_member *m, const char *url)
{
    snprintf(m->name, sizeof m->name, "?");
    memcpy(m->url, url, strlen(url) + 1);
    m->valid = true;
    snprintf(m->error, sizeof m->error, "no answer");
}

int cli_members_fetch(const struct cli_opts *o, bool single_ok, json_t **doc,
                      struct cli_member **ms, size_t *n, FILE *err)
{
    const char *title = cli_cmd_titles[o->cmd];
    struct cli_xfer x = {0};
    struct cli_member *m = NULL;
    json_t *d = NULL, *regions;
    size_t count;
    bool single;
    const char *path = PT_ADMIN_PREFIX PT_ADMIN_CLUSTER;

    if (cli_request(&x, o, "GET", o->region, path, NULL, false, err) != 0)
        goto err;
    d = cli_xfer_json(&x);
    regions = json_object_get(d, "regions");
    single = single_ok && regions == NULL;
    if (!json_is_object(d) || !(single || json_is_array(regions)) ||
        (!single_ok &&
         pt_ident_check_cluster_id(cli_json_str(d, "cluster_id", PT_CLUSTER_ID_MAX), NULL) != 0)) {
        fprintf(err, "portolan %s: %s: answer is not a cluster document%s\n", title, x.url,
                single_ok ? "" : " (cluster_id, self, regions)");
        goto err;
    }
    count = single ? 1 : json_array_size(regions);
    if (count > PT_CLUSTER_REGIONS_MAX) {
        fprintf(err, "portolan %s: %s: %zu regions, more than %d\n", title, x.url, count,
                PT_CLUSTER_REGIONS_MAX);
        goto err;
    }
    m = calloc(count ? count : 1, sizeof *m);
    if (m == NULL) {
        fprintf(err, "portolan %s: out of memory\n", title);
        goto err;
    }
    if (single)
        member_single(&m[0], o->region);
    for (size_t i = 0; !single && i < count; i++)
        member_read(&m[i], json_array_get(regions, i));
    cli_xfer_cleanup(&x);
    *doc = d;
    *ms = m;
    *n = count;
    return 0;
err:
    json_decref(d);
    cli_xfer_cleanup(&x);
    return -1;
}

void cli_members_ask(struct cli_member *ms, size_t n, const struct cli_opts *o, const char *path,
                     cli_accept_cb accept, const void *arg)
{
    uint64_t timeout = o->timeout_ms < SELF_TIMEOUT_MS ? o->timeout_ms : SELF_TIMEOUT_MS;
    struct cli_xfer *xs[PT_CLUSTER_REGIONS_MAX];
    size_t nx = 0;

    for (size_t i = 0; i < n; i++) {
        struct cli_member *m = &ms[i];

        if (!m->valid || m->self != NULL)
            continue;
        if (nx == PT_CLUSTER_REGIONS_MAX) {
            snprintf(m->error, sizeof m->error, "more than %d regions", PT_CLUSTER_REGIONS_MAX);
            continue;
        }
        if (cli_xfer_setup(&m->x, "GET", m->url, path, NULL, o, timeout) != 0) {
            snprintf(m->error, sizeof m->error, "%s",
                     m->x.errbuf[0] ? m->x.errbuf : "cannot start the request");
            cli_xfer_cleanup(&m->x);
            continue;
        }
        xs[nx++] = &m->x;
    }
    cli_xfer_run_all(xs, nx);
    for (size_t i = 0; i < n; i++) {
        struct cli_member *m = &ms[i];
        char why[CLI_WHY_MAX];

        if (m->x.h == NULL)
            continue;
        if (cli_xfer_finish(&m->x, why, sizeof why) != 0) {
            snprintf(m->error, sizeof m->error, "%s", why);
        } else if (m->x.status != 200) {
            json_t *doc = cli_xfer_json(&m->x);
            json_t *e = json_array_get(json_object_get(doc, "errors"), 0);
            const char *code = cli_json_str(e, "code", 64);
            char c[80];
            snprintf(m->error, sizeof m->error, "HTTP %ld%s%s", m->x.status, code ? " " : "",
                     code ? cli_clean(c, sizeof c, code, 64) : "");
            json_decref(doc);
        } else {
            accept(m, cli_xfer_json(&m->x), arg);
        }
        cli_xfer_cleanup(&m->x);
    }
}

void cli_members_print_errors(FILE *out, const struct cli_member *ms, size_t n)
{
    char c1[sizeof ms->error];

    for (size_t i = 0; i < n; i++) {
        if (ms[i].self == NULL)
            fprintf(out, "%s: %s\n", ms[i].name, cli_clean(c1, sizeof c1, ms[i].error, sizeof c1));
    }
}

void cli_members_free(struct cli_member *ms, size_t n)
{
    for (size_t i = 0; ms != NULL && i < n; i++) {
        cli_xfer_cleanup(&ms[i].x);
        json_decref(ms[i].self);
    }
    free(ms);
}
