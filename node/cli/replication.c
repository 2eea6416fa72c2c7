/*
 * replication.c - `portolan replication status [IMAGE]` (usage in cli.h).
 *
 * Without an image: the membership is read as for `cluster status` (a single region, which
 * has no member list, is the queried URL alone) and every member is asked for its blob
 * replication status (GET /admin/replication) at once; a member must answer with its own
 * region name. The table shows per region whether it is in sync, how far behind it is and
 * how many transfers run; --json gives {"regions": [each status, or {"region", "url",
 * "error"}]}. A region that did not answer makes the command fail (exit 1) after printing.
 *
 * With an image: one request to --region (GET /admin/replication/image), whose answer says
 * which regions hold every blob of the image and what the others lack. At most
 * PT_ADMIN_IMAGE_REGIONS_MAX regions are accepted; names and digests are cleaned before they
 * are printed.
 */
#include "cli.h"
#include "cli_int.h"

#include "admin_api.h"

#include <stdlib.h>
#include <string.h>

#define MISSING_SHOWN_MAX 5 /* missing digests listed per region */

/* ---- every region ---------------------------------------------------------------------- */

/*
 * Takes one region's /admin/replication answer. A region known from the member list must
 * answer with its own name; the region of a single-region node (no member list) is named by
 * its answer.
 */
static void accept_replication(struct cli_member *m, json_t *doc, const void *arg)
{
    const char *region = cli_json_str(doc, "region", PT_CLUSTER_NAME_MAX);
    char c1[80];

    (void)arg;
    if (!json_is_object(doc)) {
        snprintf(m->error, sizeof m->error, "answer is not a JSON object");
    } else if (pt_ident_check_region(region, NULL) != 0) {
        snprintf(m->error, sizeof m->error, "answer names no valid region");
    } else if (m->entry != NULL && strcmp(region, m->name) != 0) {
        snprintf(m->error, sizeof m->error, "its URL answers as region %s",
                 cli_clean(c1, sizeof c1, region, PT_CLUSTER_NAME_MAX));
    } else if (!json_is_boolean(json_object_get(doc, "in_sync"))) {
        snprintf(m->error, sizeof m->error, "answer has no in_sync");
    } else {
        if (m->entry == NULL)
            memcpy(m->name, region, strlen(region) + 1);
        m->self = doc;
        return;
    }
    json_decref(doc);
}

enum rcolumn { R_REGION, R_STATE, R_BLOBS, R_BYTES, R_OLDEST, R_ACTIVE };
#define NRCOLUMNS 6
static const char *const rheaders[NRCOLUMNS] = {"REGION",       "STATE",          "BLOBS-BEHIND",
                                                "BYTES-BEHIND", "OLDEST-MISSING", "ACTIVE"};
#define RCELL_MAX 80

static void print_regions_table(FILE *out, const struct cli_member *ms, size_t n)
{
    char(*cells)[RCELL_MAX] = calloc(n ? n * NRCOLUMNS : 1, sizeof *cells);
    size_t in_sync = 0;

    if (cells == NULL) {
        fprintf(out, "out of memory\n");
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct cli_member *m = &ms[i];
        char(*row)[RCELL_MAX] = cells + i * NRCOLUMNS;
        json_t *active = json_object_get(m->self, "active");
        bool sync = json_is_true(json_object_get(m->self, "in_sync"));

        snprintf(row[R_REGION], RCELL_MAX, "%s", m->name);
        snprintf(row[R_STATE], RCELL_MAX, "%s",
                 m->self == NULL ? "unreachable"
                 : sync          ? "in-sync"
                                 : "behind");
        cli_num_cell(row[R_BLOBS], RCELL_MAX, cli_json_uint(m->self, "blobs_behind"));
        cli_bytes_cell(row[R_BYTES], RCELL_MAX, cli_json_uint(m->self, "bytes_behind"));
        cli_age_cell(row[R_OLDEST], RCELL_MAX, json_object_get(m->self, "oldest_missing_age_s"));
        if (json_is_array(active))
            snprintf(row[R_ACTIVE], RCELL_MAX, "%zu", json_array_size(active));
        else
            snprintf(row[R_ACTIVE], RCELL_MAX, "-");
        in_sync += m->self != NULL && sync;
    }
    fprintf(out, "replication: %zu of %zu region%s in sync\n", in_sync, n, n == 1 ? "" : "s");
    cli_print_rows(out, rheaders, NRCOLUMNS, (const char *)cells, RCELL_MAX, n);
    cli_members_print_errors(out, ms, n);
    free(cells);
}

/* {"regions": [each region's status, or {"region", "url", "error"}]} */
static json_t *regions_json(const struct cli_member *ms, size_t n)
{
    json_t *regions = json_array();

    for (size_t i = 0; regions != NULL && i < n; i++) {
        const struct cli_member *m = &ms[i];
        /* A region known by no valid name (single region, bad member entry) is null. */
        bool named = pt_ident_check_region(m->name, NULL) == 0;
        json_t *r = m->self != NULL ? json_incref(m->self)
                                    : json_pack("{s:o,s:s,s:s}", "region",
                                                named ? json_string(m->name) : json_null(), "url",
                                                m->url, "error", m->error);
        if (r == NULL || json_array_append_new(regions, r) != 0) {
            json_decref(regions);
            return NULL;
        }
    }
    return regions != NULL ? json_pack("{s:o}", "regions", regions) : NULL;
}

int cli_replication_regions(const struct cli_opts *o, FILE *out, FILE *err)
{
    const char *title = cli_cmd_titles[o->cmd];
    struct cli_member *ms = NULL;
    json_t *doc = NULL;
    size_t n = 0;
    int rc = PT_CLI_FAILED;

    if (cli_members_fetch(o, true, &doc, &ms, &n, err) != 0)
        goto out;
    cli_members_ask(ms, n, o, PT_ADMIN_PREFIX PT_ADMIN_REPLICATION, accept_replication, NULL);
    rc = PT_CLI_OK;
    for (size_t i = 0; i < n; i++) {
        if (ms[i].self == NULL)
            rc = PT_CLI_FAILED;
    }
    if (o->json) {
        json_t *all = regions_json(ms, n);
        if (all == NULL) {
            fprintf(err, "portolan %s: out of memory\n", title);
            rc = PT_CLI_FAILED;
            goto out;
        }
        cli_print_json(out, all);
        json_decref(all);
    } else {
        print_regions_table(out, ms, n);
    }
out:
    cli_members_free(ms, n);
    json_decref(doc);
    return rc;
}

/* ---- one image ------------------------------------------------------------------------- */

/* Whether the array holds the string name. */
static bool holds(const json_t *array, const char *name)
{
    const json_t *v;
    size_t i;

    json_array_foreach(array, i, v)
    {
        if (json_is_string(v) && strcmp(json_string_value(v), name) == 0)
            return true;
    }
    return false;
}

/* Prints the per-image document: one row per region, then what each incomplete region lacks. */
static void print_image(FILE *out, const struct cli_opts *o, json_t *doc)
{
    static const char *const hdr[] = {"REGION", "STATE", "BLOBS-MISSING", "BYTES-MISSING"};
    json_t *regions = json_object_get(doc, "regions"), *blobs = json_object_get(doc, "blobs");
    json_t *complete = json_object_get(doc, "complete"), *missing = json_object_get(doc, "missing");
    size_t n = json_array_size(regions), nblobs = json_array_size(blobs), i, j;
    char(*cells)[RCELL_MAX] = calloc(n ? n * 4 : 1, sizeof *cells);
    char c1[RCELL_MAX], c2[RCELL_MAX];
    long long total = 0;
    json_t *v, *b;

    if (cells == NULL) {
        fprintf(out, "out of memory\n");
        return;
    }
    json_array_foreach(blobs, i, b)
    {
        long long size = cli_json_uint(b, "size");
        if (size > 0 && total <= INT64_MAX - size)
            total += size;
    }
    fprintf(out, "image %s%s%s (%s): %zu blob%s, %s\n", o->image_name,
            o->image_by_digest ? "@" : ":", o->image_ref,
            cli_clean(c1, sizeof c1, cli_json_str(doc, "digest", 128), 128), nblobs,
            nblobs == 1 ? "" : "s", cli_bytes_cell(c2, sizeof c2, total));
    json_array_foreach(regions, i, v)
    {
        char(*row)[RCELL_MAX] = cells + i * 4;
        const char *name = json_string_value(v);
        json_t *gap = json_object_get(missing, name ? name : "");
        bool done = name != NULL && holds(complete, name);

        cli_clean(row[0], RCELL_MAX, name ? name : "?", PT_CLUSTER_NAME_MAX);
        snprintf(row[1], RCELL_MAX, "%s", done ? "complete" : gap ? "missing" : "unknown");
        cli_num_cell(row[2], RCELL_MAX, done ? 0 : cli_json_uint(gap, "blobs"));
        cli_bytes_cell(row[3], RCELL_MAX, done ? 0 : cli_json_uint(gap, "bytes"));
    }
    cli_print_rows(out, hdr, 4, (const char *)cells, RCELL_MAX, n);
    free(cells);
    /* Per incomplete region, the first digests it lacks. */
    json_array_foreach(regions, i, v)
    {
        const char *name = json_string_value(v);
        size_t shown = 0, lacking = 0;

        if (name == NULL || json_object_get(missing, name) == NULL)
            continue;
        json_array_foreach(blobs, j, b)
        {
            if (holds(json_object_get(b, "regions"), name))
                continue;
            if (lacking++ == 0)
                fprintf(out, "%s lacks:", cli_clean(c1, sizeof c1, name, PT_CLUSTER_NAME_MAX));
            if (shown < MISSING_SHOWN_MAX) {
                fprintf(out, " %s", cli_clean(c2, sizeof c2, cli_json_str(b, "digest", 128), 128));
                shown++;
            }
        }
        if (lacking > shown)
            fprintf(out, " (and %zu more)", lacking - shown);
        if (lacking > 0)
            fputc('\n', out);
    }
}

int cli_replication_image(const struct cli_opts *o, FILE *out, FILE *err)
{
    const char *title = cli_cmd_titles[o->cmd];
    struct cli_xfer x = {0};
    json_t *doc = NULL;
    char path[PT_NAME_MAX + PT_DIGEST_INPUT_MAX + 64];
    int rc = PT_CLI_FAILED;

    snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_REPLICATION_IMAGE "?name=%s&reference=%s",
             o->image_name, o->image_ref);
    if (cli_request(&x, o, "GET", o->region, path, NULL, false, err) != 0)
        goto out;
    doc = cli_xfer_json(&x);
    if (!json_is_object(doc) || !json_is_array(json_object_get(doc, "regions")) ||
        !json_is_array(json_object_get(doc, "blobs")) ||
        !json_is_array(json_object_get(doc, "complete")) ||
        !json_is_object(json_object_get(doc, "missing"))) {
        fprintf(err,
                "portolan %s: %s: answer is not an image replication document "
                "(regions, blobs, complete, missing)\n",
                title, x.url);
        goto out;
    }
    if (json_array_size(json_object_get(doc, "regions")) > PT_ADMIN_IMAGE_REGIONS_MAX) {
        fprintf(err, "portolan %s: %s: answer lists more than %d regions\n", title, x.url,
                PT_ADMIN_IMAGE_REGIONS_MAX);
        goto out;
    }
    if (o->json)
        cli_print_json(out, doc);
    else
        print_image(out, o, doc);
    rc = PT_CLI_OK;
out:
    json_decref(doc);
    cli_xfer_cleanup(&x);
    return rc;
}
