/*
 * repo_usage.c - `portolan repo list [--usage] [--last NAME] [--n N]`: the repositories that
 * hold blobs, one page (GET /admin/repos, base/admin_api.h), byte-wise by name.
 *
 * Without --usage one name a line; with it a table of bytes, blobs, manifests and tags. When
 * the page is full, the command that prints the next one goes to err.
 */
#include "cli.h"
#include "cli_int.h"

#include "admin_api.h"
#include "reference.h"
#include "units.h"

#include <stdlib.h>
#include <string.h>

enum { FL_USAGE, FL_LAST, FL_N, FL_COUNT };

static const struct cli_policy_flag own[FL_COUNT] = {
    [FL_USAGE] = {"--usage", false},
    [FL_LAST] = {"--last", true},
    [FL_N] = {"--n", true},
};

struct repo_args {
    bool usage;
    const char *last;
    uint64_t n;
};

static int repo_run(const struct cli_opts *o, const void *arg, FILE *out, FILE *err)
{
    static const char *const hdr[] = {"REPOSITORY", "BYTES", "BLOBS", "MANIFESTS", "TAGS"};
    const struct repo_args *a = arg;
    struct cli_xfer x = {0};
    char path[CLI_URL_MAX];
    json_t *doc = NULL, *items, *r;
    char(*cells)[5][PT_NAME_MAX + 1] = NULL;
    size_t i, n;
    int rc = PT_CLI_FAILED;
    snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_REPOS "?n=%llu%s%s",
             (unsigned long long)a->n, a->last != NULL ? "&last=" : "",
             a->last != NULL ? a->last : "");
    switch (cli_get_list(&x, o, path, "repositories", out, err, &doc, &items)) {
    case 0:
        rc = PT_CLI_OK;
        goto out;
    case -1:
        goto out;
    }
    n = json_array_size(items);
    cells = calloc(n ? n : 1, sizeof *cells);
    if (cells == NULL)
        goto out;
    json_array_foreach(items, i, r)
    {
        cli_clean(cells[i][0], sizeof cells[i][0], cli_json_str(r, "name", PT_NAME_MAX),
                  PT_NAME_MAX);
        cli_bytes_cell(cells[i][1], sizeof cells[i][1], cli_json_uint(r, "bytes"));
        cli_num_cell(cells[i][2], sizeof cells[i][2], cli_json_uint(r, "blobs"));
        cli_num_cell(cells[i][3], sizeof cells[i][3], cli_json_uint(r, "manifests"));
        cli_num_cell(cells[i][4], sizeof cells[i][4], cli_json_uint(r, "tags"));
        if (!a->usage)
            fprintf(out, "%s\n", cells[i][0]);
    }
    if (a->usage && n > 0)
        cli_print_rows(out, hdr, 5, (const char *)cells, sizeof cells[0][0], n);
    if (n == 0)
        fprintf(out, "no repository holds blobs%s\n", a->last != NULL ? " after that name" : "");
    const char *next = cli_json_str(doc, "next", PT_NAME_MAX);
    char clean[PT_NAME_MAX + 1];
    if (next != NULL)
        fprintf(err, "more: portolan repo list%s --last %s\n", a->usage ? " --usage" : "",
                cli_clean(clean, sizeof clean, next, PT_NAME_MAX));
    rc = PT_CLI_OK;
out:
    free(cells);
    json_decref(doc);
    cli_xfer_cleanup(&x);
    return rc;
}

void pt_cli_repo_list_usage(FILE *out)
{
    fprintf(out,
            "usage: portolan repo list --region URL [--usage] [--last NAME] [--n N] [flags]\n\n"
            "  the repositories that hold blobs, by name, one page of N (default 100, at most\n"
            "  1000) after NAME; --usage adds bytes and blobs (distinct, as quotas count\n"
            "  them), manifests and tags\n\n"
            "flags:\n"
            "  --region URL      client URL of any region, e.g. http://127.0.0.1:5001\n"
            "  --json            print JSON\n"
            "  --cacert FILE     PEM CA certificates for https URLs (default: the system's)\n"
            "  --timeout D       time limit of the admin request (default 5s)\n"
            "  --user NAME [--password-stdin]   credentials of an administrator\n");
}

int pt_cli_repo_list(int argc, char **argv, FILE *out, FILE *err)
{
    if (cli_policy_help(argc, argv)) {
        pt_cli_repo_list_usage(out);
        return PT_CLI_OK;
    }
    struct cli_opts o;
    struct cli_policy_args pa;
    struct repo_args a = {.n = 100};
    int rc = cli_policy_parse(&o, CMD_REPO_LIST, argc, argv, own, FL_COUNT, &pa, err);
    if (rc != 0)
        return rc;
    if (pa.n_operands != 0) {
        fprintf(err, "portolan repo list: unexpected argument \"%.64s\"\n", pa.operands[0]);
        return PT_CLI_USAGE;
    }
    a.usage = pa.values[FL_USAGE] != NULL;
    a.last = pa.values[FL_LAST];
    if (a.last != NULL && pt_name_validate(a.last, strlen(a.last)) != 0) {
        fprintf(err, "portolan repo list: --last: \"%.64s\": not a repository name\n", a.last);
        return PT_CLI_USAGE;
    }
    const char *end;
    if (pa.values[FL_N] != NULL && (pt_units_parse_digits(pa.values[FL_N], &end, &a.n) != 0 ||
                                    *end != '\0' || a.n == 0 || a.n > 1000)) {
        fprintf(err, "portolan repo list: --n: expected 1..1000\n");
        return PT_CLI_USAGE;
    }
    return cli_policy_run(&o, repo_run, &a, out, err);
}
