/*
 * quota.c - `portolan quota set|list|remove` (storage quotas; the contract of /admin/quotas
 * is base/admin_api.h):
 *
 *   quota set PATTERN SIZE     POST   /admin/quotas {"pattern", "limit"}
 *   quota list                 GET    /admin/quotas   (PATTERN LIMIT USED PERCENT REPOSITORY)
 *   quota remove PATTERN       DELETE /admin/quotas?pattern=<percent-encoded>
 *
 * PATTERN is "*" (the whole registry) or a repository pattern (each matching repository on
 * its own); SIZE is bytes or an integer with KiB, MiB, GiB or TiB ("10GiB").
 */
#include "cli.h"
#include "cli_int.h"

#include "admin_api.h"
#include "units.h"

#include <stdlib.h>
#include <string.h>

enum verb { V_SET, V_LIST, V_REMOVE };

struct quota_args {
    enum verb verb;
    const char *pattern;
    uint64_t limit;
};

static int quota_list(const struct cli_opts *o, FILE *out, FILE *err)
{
    static const char *const hdr[] = {"PATTERN", "LIMIT", "USED", "PERCENT", "REPOSITORY"};
    struct cli_xfer x = {0};
    json_t *doc = NULL, *items, *q;
    char(*cells)[5][CLI_PATTERN_MAX + 1] = NULL;
    size_t i, n;
    int rc = PT_CLI_FAILED;
    switch (
        cli_get_list(&x, o, PT_ADMIN_PREFIX PT_ADMIN_QUOTAS, "quotas", out, err, &doc, &items)) {
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
    json_array_foreach(items, i, q)
    {
        const char *repo = cli_json_str(q, "repository", CLI_PATTERN_MAX);
        double pct = json_number_value(json_object_get(q, "percent"));
        cli_clean(cells[i][0], sizeof cells[i][0], cli_json_str(q, "pattern", CLI_PATTERN_MAX),
                  CLI_PATTERN_MAX);
        cli_bytes_cell(cells[i][1], sizeof cells[i][1], cli_json_uint(q, "limit"));
        cli_bytes_cell(cells[i][2], sizeof cells[i][2], cli_json_uint(q, "used"));
        snprintf(cells[i][3], sizeof cells[i][3], "%.1f%%", pct);
        if (repo != NULL)
            cli_clean(cells[i][4], sizeof cells[i][4], repo, CLI_PATTERN_MAX);
        else
            snprintf(cells[i][4], sizeof cells[i][4], "%s",
                     json_object_get(q, "repository") != NULL ? "-" : "(registry)");
    }
    if (n == 0)
        fprintf(out, "no storage quota: repositories may grow without limit\n");
    else
        cli_print_rows(out, hdr, 5, (const char *)cells, sizeof cells[0][0], n);
    char total[32];
    fprintf(out, "registry: %s in %lld blobs\n",
            cli_bytes_cell(total, sizeof total,
                           cli_json_uint(json_object_get(doc, "registry"), "bytes")),
            cli_json_uint(json_object_get(doc, "registry"), "blobs"));
    rc = PT_CLI_OK;
out:
    free(cells);
    json_decref(doc);
    cli_xfer_cleanup(&x);
    return rc;
}

static int quota_run(const struct cli_opts *o, const void *arg, FILE *out, FILE *err)
{
    const struct quota_args *a = arg;
    struct cli_xfer x = {0};
    char path[CLI_URL_MAX], size[32];
    char *esc = NULL;
    json_t *body = NULL, *doc = NULL;
    int rc = PT_CLI_FAILED;
    switch (a->verb) {
    case V_LIST:
        return quota_list(o, out, err);
    case V_SET:
        body = json_pack("{s:s,s:I}", "pattern", a->pattern, "limit", (json_int_t)a->limit);
        if (body == NULL || cli_request(&x, o, "POST", o->region, PT_ADMIN_PREFIX PT_ADMIN_QUOTAS,
                                        body, true, err) != 0)
            goto out;
        doc = cli_xfer_json(&x);
        if (o->json)
            cli_print_json(out, doc);
        else
            fprintf(out, "quota of %s set to %s\n", a->pattern,
                    cli_bytes_cell(size, sizeof size, (long long)a->limit));
        break;
    case V_REMOVE:
        esc = curl_easy_escape(NULL, a->pattern, 0);
        if (esc == NULL)
            goto out;
        snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_QUOTAS "?pattern=%s", esc);
        if (cli_request(&x, o, "DELETE", o->region, path, NULL, true, err) != 0)
            goto out;
        fprintf(out, "quota of %s removed\n", a->pattern);
        break;
    }
    rc = PT_CLI_OK;
out:
    curl_free(esc);
    json_decref(body);
    json_decref(doc);
    cli_xfer_cleanup(&x);
    return rc;
}

void pt_cli_quota_usage(FILE *out)
{
    fprintf(out,
            "usage: portolan quota <command> --region URL [flags]\n\n"
            "commands:\n"
            "  set PATTERN SIZE  limit the distinct blobs of every repository matching PATTERN\n"
            "                    (or, for \"*\", of the whole registry) to SIZE (bytes, or\n"
            "                    KiB, MiB, GiB, TiB: 10GiB); pushes past it get 403 DENIED\n"
            "  list              every quota: limit, usage, percent, fullest repository\n"
            "  remove PATTERN    remove the quota of PATTERN\n\n"
            "flags of every command:\n"
            "  --region URL      client URL of any region, e.g. http://127.0.0.1:5001\n"
            "  --json            print JSON\n"
            "  --cacert FILE     PEM CA certificates for https URLs (default: the system's)\n"
            "  --timeout D       time limit of the admin request (default 5s)\n"
            "  --user NAME [--password-stdin]   credentials of an administrator\n");
}

/* "*" or the characters and shape of a repository pattern (the server checks its grammar). */
static bool quota_pattern_ok(const char *s)
{
    size_t n = strlen(s);
    if (strcmp(s, "*") == 0)
        return true;
    if (n == 0 || n > CLI_PATTERN_MAX || s[0] == '/' || s[n - 1] == '/' || strstr(s, "//"))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-' || c == '/' || c == '*'))
            return false;
    }
    return true;
}

int pt_cli_quota(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 1 || argv[0] == NULL) {
        pt_cli_quota_usage(err);
        return PT_CLI_USAGE;
    }
    if (cli_policy_help(argc, argv)) {
        pt_cli_quota_usage(out);
        return PT_CLI_OK;
    }
    struct cli_opts o;
    struct cli_policy_args pa;
    struct quota_args a = {0};
    int rc = cli_policy_parse(&o, CMD_QUOTA, argc, argv, NULL, 0, &pa, err);
    if (rc != 0)
        return rc;
    const char *verb = pa.n_operands > 0 ? pa.operands[0] : "";
    size_t want = 0;
    if (strcmp(verb, "set") == 0) {
        a.verb = V_SET;
        want = 3;
    } else if (strcmp(verb, "list") == 0) {
        a.verb = V_LIST;
        want = 1;
    } else if (strcmp(verb, "remove") == 0) {
        a.verb = V_REMOVE;
        want = 2;
    } else {
        fprintf(err, "portolan quota: unknown command \"%.64s\"\n", verb);
        pt_cli_quota_usage(err);
        return PT_CLI_USAGE;
    }
    if (pa.n_operands != want) {
        fprintf(err, "portolan quota %s: expected %s\n", verb,
                a.verb == V_SET      ? "PATTERN SIZE"
                : a.verb == V_REMOVE ? "PATTERN"
                                     : "no argument");
        return PT_CLI_USAGE;
    }
    if (want >= 2) {
        a.pattern = pa.operands[1];
        if (!quota_pattern_ok(a.pattern)) {
            fprintf(err,
                    "portolan quota %s: \"%.64s\": not \"*\" or a repository pattern (lower "
                    "case, digits, . _ - / and *)\n",
                    verb, a.pattern);
            return PT_CLI_USAGE;
        }
    }
    if (want == 3 && pt_units_parse_size(pa.operands[2], &a.limit) != 0) {
        fprintf(err, "portolan quota set: \"%.64s\": expected bytes or KiB, MiB, GiB, TiB\n",
                pa.operands[2]);
        return PT_CLI_USAGE;
    }
    return cli_policy_run(&o, quota_run, &a, out, err);
}
