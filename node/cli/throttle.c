/*
 * throttle.c - `portolan throttle set|list|remove` (request throttling; the contract of
 * /admin/throttles is base/admin_api.h):
 *
 *   throttle set SUBJECT [--tier T] [--reads-per-minute N] [--writes-per-minute N]
 *                [--read-bytes-per-second SIZE] [--write-bytes-per-second SIZE]
 *                              POST   /admin/throttles
 *   throttle list              GET    /admin/throttles
 *   throttle remove SUBJECT    DELETE /admin/throttles?subject=
 *
 * SUBJECT is "default", "anonymous", "user:NAME" or "token:ID". A tier (basic, standard,
 * premium, custom) gives every value; a flag replaces one (0 = no limit). Each region counts
 * requests on its own with the replicated limits.
 */
#include "cli.h"
#include "cli_int.h"

#include "admin_api.h"
#include "units.h"

#include <stdlib.h>
#include <string.h>

enum verb { V_SET, V_LIST, V_REMOVE };
enum { FL_TIER, FL_READS, FL_WRITES, FL_READ_BPS, FL_WRITE_BPS, FL_COUNT };

static const struct cli_policy_flag own[FL_COUNT] = {
    [FL_TIER] = {"--tier", true},
    [FL_READS] = {"--reads-per-minute", true},
    [FL_WRITES] = {"--writes-per-minute", true},
    [FL_READ_BPS] = {"--read-bytes-per-second", true},
    [FL_WRITE_BPS] = {"--write-bytes-per-second", true},
};
static const char *const fields[FL_COUNT] = {
    [FL_READS] = "reads_per_minute",
    [FL_WRITES] = "writes_per_minute",
    [FL_READ_BPS] = "read_bytes_per_second",
    [FL_WRITE_BPS] = "write_bytes_per_second",
};

struct throttle_args {
    enum verb verb;
    const char *subject;
    const char *tier; /* NULL: custom */
    bool set[FL_COUNT];
    uint64_t v[FL_COUNT];
};

static void fmt_rate(char *cell, size_t len, long long v, const char *unit, bool bytes)
{
    char b[32];
    if (v == 0)
        snprintf(cell, len, "-");
    else if (bytes)
        snprintf(cell, len, "%s/s", cli_bytes_cell(b, sizeof b, v));
    else
        snprintf(cell, len, "%lld%s", v, unit);
}

static int throttle_list(const struct cli_opts *o, FILE *out, FILE *err)
{
    static const char *const hdr[] = {"SUBJECT", "TIER", "READS", "WRITES", "READ BW", "WRITE BW"};
    struct cli_xfer x = {0};
    json_t *doc = NULL, *items, *t;
    char(*cells)[6][96] = NULL;
    size_t i, n;
    int rc = PT_CLI_FAILED;
    switch (cli_get_list(&x, o, PT_ADMIN_PREFIX PT_ADMIN_THROTTLES, "throttles", out, err, &doc,
                         &items)) {
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
    json_array_foreach(items, i, t)
    {
        cli_clean(cells[i][0], sizeof cells[i][0], cli_json_str(t, "subject", 80), 80);
        cli_clean(cells[i][1], sizeof cells[i][1], cli_json_str(t, "tier", 16), 16);
        fmt_rate(cells[i][2], sizeof cells[i][2], cli_json_uint(t, "reads_per_minute"), "/min",
                 false);
        fmt_rate(cells[i][3], sizeof cells[i][3], cli_json_uint(t, "writes_per_minute"), "/min",
                 false);
        fmt_rate(cells[i][4], sizeof cells[i][4], cli_json_uint(t, "read_bytes_per_second"), "",
                 true);
        fmt_rate(cells[i][5], sizeof cells[i][5], cli_json_uint(t, "write_bytes_per_second"), "",
                 true);
    }
    if (n == 0)
        fprintf(out, "no throttling: requests are not limited\n");
    else
        cli_print_rows(out, hdr, 6, (const char *)cells, sizeof cells[0][0], n);
    rc = PT_CLI_OK;
out:
    free(cells);
    json_decref(doc);
    cli_xfer_cleanup(&x);
    return rc;
}

static int throttle_run(const struct cli_opts *o, const void *arg, FILE *out, FILE *err)
{
    const struct throttle_args *a = arg;
    struct cli_xfer x = {0};
    char path[CLI_URL_MAX];
    char *esc = NULL;
    json_t *body = NULL, *doc = NULL;
    int rc = PT_CLI_FAILED;
    switch (a->verb) {
    case V_LIST:
        return throttle_list(o, out, err);
    case V_SET:
        body = json_pack("{s:s}", "subject", a->subject);
        if (body == NULL)
            goto out;
        if (a->tier != NULL)
            json_object_set_new(body, "tier", json_string(a->tier));
        for (int f = FL_READS; f < FL_COUNT; f++)
            if (a->set[f])
                json_object_set_new(body, fields[f], json_integer((json_int_t)a->v[f]));
        if (cli_request(&x, o, "POST", o->region, PT_ADMIN_PREFIX PT_ADMIN_THROTTLES, body, true,
                        err) != 0)
            goto out;
        doc = cli_xfer_json(&x);
        if (o->json) {
            cli_print_json(out, doc);
        } else {
            char r[48], w[48], rb[48], wb[48], tier[20];
            fmt_rate(r, sizeof r, cli_json_uint(doc, "reads_per_minute"), "/min", false);
            fmt_rate(w, sizeof w, cli_json_uint(doc, "writes_per_minute"), "/min", false);
            fmt_rate(rb, sizeof rb, cli_json_uint(doc, "read_bytes_per_second"), "", true);
            fmt_rate(wb, sizeof wb, cli_json_uint(doc, "write_bytes_per_second"), "", true);
            fprintf(out, "throttle of %s set (%s): reads %s, writes %s, read %s, write %s\n",
                    a->subject, cli_clean(tier, sizeof tier, cli_json_str(doc, "tier", 16), 16), r,
                    w, rb, wb);
        }
        break;
    case V_REMOVE:
        esc = curl_easy_escape(NULL, a->subject, 0);
        if (esc == NULL)
            goto out;
        snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_THROTTLES "?subject=%s", esc);
        if (cli_request(&x, o, "DELETE", o->region, path, NULL, true, err) != 0)
            goto out;
        fprintf(out, "throttle of %s removed\n", a->subject);
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

void pt_cli_throttle_usage(FILE *out)
{
    fprintf(out,
            "usage: portolan throttle <command> --region URL [flags]\n\n"
            "commands:\n"
            "  set SUBJECT [limits]  the request limits of SUBJECT: default (everyone without\n"
            "                    limits of their own), anonymous (per client address),\n"
            "                    user:NAME or token:ID\n"
            "     --tier T       basic, standard, premium (presets, README) or custom\n"
            "     --reads-per-minute N, --writes-per-minute N (0 = no limit)\n"
            "     --read-bytes-per-second SIZE, --write-bytes-per-second SIZE (bytes, KiB,\n"
            "                    MiB, ...; 0 = no limit)\n"
            "  list              every subject's limits\n"
            "  remove SUBJECT    remove SUBJECT's limits\n\n"
            "flags of every command:\n"
            "  --region URL      client URL of any region, e.g. http://127.0.0.1:5001\n"
            "  --json            print JSON\n"
            "  --cacert FILE     PEM CA certificates for https URLs (default: the system's)\n"
            "  --timeout D       time limit of the admin request (default 5s)\n"
            "  --user NAME [--password-stdin]   credentials of an administrator\n");
}

/* The characters of a subject (the server checks its grammar). */
static bool subject_ok(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > 80)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':'))
            return false;
    }
    return true;
}

int pt_cli_throttle(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 1 || argv[0] == NULL) {
        pt_cli_throttle_usage(err);
        return PT_CLI_USAGE;
    }
    if (cli_policy_help(argc, argv)) {
        pt_cli_throttle_usage(out);
        return PT_CLI_OK;
    }
    struct cli_opts o;
    struct cli_policy_args pa;
    struct throttle_args a = {0};
    int rc = cli_policy_parse(&o, CMD_THROTTLE, argc, argv, own, FL_COUNT, &pa, err);
    if (rc != 0)
        return rc;
    const char *verb = pa.n_operands > 0 ? pa.operands[0] : "";
    a.verb = strcmp(verb, "set") == 0 ? V_SET : strcmp(verb, "list") == 0 ? V_LIST : V_REMOVE;
    if (a.verb == V_REMOVE && strcmp(verb, "remove") != 0) {
        fprintf(err, "portolan throttle: unknown command \"%.64s\"\n", verb);
        pt_cli_throttle_usage(err);
        return PT_CLI_USAGE;
    }
    size_t want = a.verb == V_LIST ? 1 : 2;
    if (pa.n_operands != want) {
        fprintf(err, "portolan throttle %s: expected %s\n", verb,
                want == 2 ? "SUBJECT" : "no argument");
        return PT_CLI_USAGE;
    }
    for (int f = 0; f < FL_COUNT; f++) {
        if (pa.values[f] != NULL && a.verb != V_SET) {
            fprintf(err, "portolan throttle %s: unknown flag \"%s\"\n", verb, own[f].name);
            return PT_CLI_USAGE;
        }
    }
    if (want == 2) {
        a.subject = pa.operands[1];
        if (!subject_ok(a.subject)) {
            fprintf(err,
                    "portolan throttle %s: \"%.64s\": expected default, anonymous, user:NAME or "
                    "token:ID\n",
                    verb, a.subject);
            return PT_CLI_USAGE;
        }
    }
    a.tier = pa.values[FL_TIER];
    for (int f = FL_READS; f < FL_COUNT; f++) {
        const char *v = pa.values[f], *end;
        if (v == NULL)
            continue;
        int bad = f == FL_READS || f == FL_WRITES ? pt_units_parse_digits(v, &end, &a.v[f]) != 0 ||
                                                        *end != '\0' || a.v[f] > UINT32_MAX
                                                  : pt_units_parse_size(v, &a.v[f]) != 0;
        if (bad) {
            fprintf(err, "portolan throttle set: %s: \"%.64s\": expected %s\n", own[f].name, v,
                    f == FL_READS || f == FL_WRITES ? "a number 0..4294967295"
                                                    : "bytes or KiB, MiB, GiB (0 = no limit)");
            return PT_CLI_USAGE;
        }
        a.set[f] = true;
    }
    return cli_policy_run(&o, throttle_run, &a, out, err);
}
