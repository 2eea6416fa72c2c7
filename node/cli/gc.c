/*
 * gc.c - `portolan gc run [--dry-run]` and `portolan gc status` (usage in cli.h; the contract
 * of GET and POST /admin/gc is base/admin_api.h).
 *
 * run: POST /admin/gc (with ?dry_run=true) to --region, then GET /admin/gc every
 * POLL_MS until the pass is no longer running; each time the figures moved, one progress line
 * goes to err. Then out gets one line per blob removed (or that would be) with its size, and
 * the total ("N blobs, X reclaimed"); --json prints the final document instead. A pass that
 * ended with an error fails the command. status: one GET, printed as "key: value" lines or
 * JSON. Digests and texts from the answer are cleaned before they are printed.
 */
#include "cli.h"
#include "cli_int.h"

#include "admin_api.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_MS      500
#define DIGEST_SHOWN 140 /* longest digest text printed */

static json_t *get_status(const struct cli_opts *o, FILE *err)
{
    struct cli_xfer x = {0};
    json_t *doc = NULL;
    if (cli_request(&x, o, "GET", o->region, PT_ADMIN_PREFIX PT_ADMIN_GC, NULL, false, err) == 0)
        doc = cli_xfer_json(&x);
    if (doc != NULL && !json_is_object(doc)) {
        json_decref(doc);
        doc = NULL;
    }
    if (doc == NULL && x.url[0] != '\0')
        fprintf(err, "portolan %s: %s: answer is not a JSON object\n", cli_cmd_titles[o->cmd],
                x.url);
    cli_xfer_cleanup(&x);
    return doc;
}

static long long num(const json_t *doc, const char *key)
{
    return cli_json_uint(doc, key);
}

static void progress(FILE *err, const json_t *doc)
{
    char bytes[32];
    fprintf(err, "gc: %s, %lld blobs examined, %lld candidates, %lld %s (%s)\n",
            json_is_true(json_object_get(doc, "running")) ? "running" : "done",
            num(doc, "blobs_examined"), num(doc, "candidates"), num(doc, "blobs_collected"),
            json_is_true(json_object_get(doc, "dry_run")) ? "would be collected" : "collected",
            cli_bytes_cell(bytes, sizeof bytes, num(doc, "bytes_reclaimed")));
}

static void print_result(FILE *out, const json_t *doc)
{
    bool dry = json_is_true(json_object_get(doc, "dry_run"));
    json_t *blobs = json_object_get(doc, "blobs");
    size_t i;
    json_t *b;
    char d[DIGEST_SHOWN + 1], size[32], total[32];
    json_array_foreach(blobs, i, b)
    {
        fprintf(out, "%s %s %s\n", dry ? "would remove" : "removed",
                cli_clean(d, sizeof d, cli_json_str(b, "digest", DIGEST_SHOWN), DIGEST_SHOWN),
                cli_bytes_cell(size, sizeof size, cli_json_uint(b, "size")));
    }
    if (json_is_true(json_object_get(doc, "truncated")))
        fprintf(out, "(the list stops at %zu blobs)\n", json_array_size(blobs));
    fprintf(out, "%lld blob%s, %s %s\n", num(doc, "blobs_collected"),
            num(doc, "blobs_collected") == 1 ? "" : "s",
            cli_bytes_cell(total, sizeof total, num(doc, "bytes_reclaimed")),
            dry ? "would be reclaimed" : "reclaimed");
}

static void print_status(FILE *out, const json_t *doc)
{
    char region[80], error[200], b1[32], b2[32];
    fprintf(
        out,
        "region: %s\nrunning: %s\nlast pass: %lld blobs examined, %lld collected (%s)%s\n"
        "manifests deleted: %lld referrers of deleted subjects, %lld children of deleted "
        "indexes\n"
        "error: %s\nfiles deleted in this region: %lld (%s), %lld by the sweep\n"
        "grace: %llds, interval: %llds, rate: %lld blobs/s\n",
        cli_clean(region, sizeof region, cli_json_str(doc, "region", 63), 63),
        json_is_true(json_object_get(doc, "running")) ? "yes" : "no", num(doc, "blobs_examined"),
        num(doc, "blobs_collected"), cli_bytes_cell(b1, sizeof b1, num(doc, "bytes_reclaimed")),
        json_is_true(json_object_get(doc, "dry_run")) ? " (dry run)" : "",
        num(doc, "referrers_deleted"), num(doc, "children_deleted"),
        cli_clean(error, sizeof error, cli_json_str(doc, "error", 127), 127)[0] ? error : "none",
        num(doc, "files_deleted_total"),
        cli_bytes_cell(b2, sizeof b2, num(doc, "file_bytes_deleted_total")),
        num(doc, "files_swept_total"), num(doc, "grace_ms") / 1000, num(doc, "interval_ms") / 1000,
        num(doc, "rate"));
}

int cli_gc_run(const struct cli_opts *o, FILE *out, FILE *err)
{
    const char *title = cli_cmd_titles[o->cmd];
    json_t *doc = NULL;
    int rc = PT_CLI_FAILED;

    if (o->cmd == CMD_GC_RUN) {
        struct cli_xfer x = {0};
        const char *path =
            o->dry_run ? PT_ADMIN_PREFIX PT_ADMIN_GC "?dry_run=true" : PT_ADMIN_PREFIX PT_ADMIN_GC;
        int r = cli_request(&x, o, "POST", o->region, path, NULL, true, err);
        cli_xfer_cleanup(&x);
        if (r != 0)
            return PT_CLI_FAILED;
        long long last = -1;
        for (;;) {
            doc = get_status(o, err);
            if (doc == NULL)
                return PT_CLI_FAILED;
            long long moved = num(doc, "blobs_examined") + num(doc, "blobs_collected");
            bool running = json_is_true(json_object_get(doc, "running"));
            if (moved != last || !running)
                progress(err, doc);
            last = moved;
            if (!running)
                break;
            json_decref(doc);
            doc = NULL;
            struct timespec ts = {.tv_sec = 0, .tv_nsec = POLL_MS * 1000000L};
            nanosleep(&ts, NULL);
        }
    } else if ((doc = get_status(o, err)) == NULL) {
        return PT_CLI_FAILED;
    }
    if (o->json)
        cli_print_json(out, doc);
    else if (o->cmd == CMD_GC_RUN)
        print_result(out, doc);
    else
        print_status(out, doc);
    const char *e = cli_json_str(doc, "error", 127);
    rc = o->cmd == CMD_GC_RUN && e != NULL && e[0] != '\0' ? PT_CLI_FAILED : PT_CLI_OK;
    if (rc != PT_CLI_OK)
        fprintf(err, "portolan %s: the pass failed: %s\n", title, e);
    json_decref(doc);
    return rc;
}
