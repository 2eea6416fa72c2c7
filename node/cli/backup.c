/*
 * backup.c - `portolan backup --region URL [--json]` (usage in args.c): asks the region for a
 * consistent backup (POST /admin/backup, an administrator's request; the region writes it
 * under its own data directory, store/backup.h) and prints where it is and what it holds.
 */
#include "cli.h"
#include "cli_int.h"

#include "admin_api.h"

#include <inttypes.h>

int cli_backup_run(const struct cli_opts *o, FILE *out, FILE *err)
{
    struct cli_xfer x = {0};
    int rc = PT_CLI_FAILED;
    json_t *doc = NULL;

    if (cli_request(&x, o, "POST", o->region, PT_ADMIN_PREFIX PT_ADMIN_BACKUP, NULL, true, err) !=
        0)
        goto out;
    doc = cli_xfer_json(&x);
    const char *path = cli_json_str(doc, "path", 4200);
    long long applied = cli_json_uint(doc, "applied_index");
    long long blobs = cli_json_uint(doc, "blobs");
    long long bytes = cli_json_uint(doc, "blob_bytes");
    long long missing = cli_json_uint(doc, "missing_blobs");
    if (path == NULL || applied < 0 || blobs < 0 || bytes < 0 || missing < 0) {
        fprintf(err, "portolan backup: %s: answer is not a backup document\n", x.url);
        goto out;
    }
    if (o->json) {
        cli_print_json(out, doc);
    } else {
        char clean[4200];
        fprintf(out,
                "backup at applied index %lld: %lld blobs (%lld bytes), %lld missing\n"
                "written by the region into %s\n",
                applied, blobs, bytes, missing, cli_clean(clean, sizeof clean, path, 4199));
        if (missing > 0)
            fprintf(out, "incomplete: the region does not hold %lld linked blobs yet\n", missing);
    }
    rc = PT_CLI_OK;
out:
    json_decref(doc);
    cli_xfer_cleanup(&x);
    return rc;
}
