/*
 * retention.c - `portolan retention add|list|remove|run` (base/admin_api.h, /admin/retention):
 *
 *   retention add REPO-PATTERN [--untagged-older-than AGE] [--keep-last N [--tags PATTERN]]
 *                                     POST /admin/retention (replaces the rule of the pattern)
 *   retention list                    GET  /admin/retention
 *   retention remove REPO-PATTERN     DELETE /admin/retention?repo_pattern=
 *   retention run [--dry-run]         POST /admin/retention/run, then GET it every POLL_MS
 *                                     until the run is over; prints what was (or would be)
 *                                     deleted, one line each
 *
 * AGE is seconds or a number with s, m, h or d ("30d", "2h", "10s").
 */
#include "cli.h"
#include "cli_int.h"

#include "admin_api.h"
#include "units.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define POLL_MS 200

void pt_cli_retention_usage(FILE *out)
{
    fprintf(out,
            "usage: portolan retention <command> --region URL [flags]\n\n"
            "commands:\n"
            "  add REPO-PATTERN [--untagged-older-than AGE] [--keep-last N [--tags PATTERN]]\n"
            "                    the retention rule of the repositories matching REPO-PATTERN\n"
            "                    (\"**\": every repository): delete untagged manifests pushed\n"
            "                    more than AGE ago (30d, 2h, 10s); keep only the N most recently\n"
            "                    updated tags matching PATTERN (default '*'), delete the others\n"
            "  list              the rules\n"
            "  remove REPO-PATTERN\n"
            "  run [--dry-run]   evaluate the rules now and print what was deleted (or, with\n"
            "                    --dry-run, exactly what would be)\n\n"
            "Locked, delete-locked and immutable tags and manifests are never deleted, nor a\n"
            "manifest an index or a referrer still needs.\n\n"
            "flags:\n"
            "  --region URL, --user NAME, --password-stdin, --cacert FILE, --timeout DURATION,\n"
            "  --json\n");
}

/* AGE: a duration of units.h or a number of days ("30d"). 0 or -1. */
static int parse_age(const char *s, uint64_t *ms)
{
    size_t n = strlen(s);
    if (n >= 2 && s[n - 1] == 'd') {
        const char *end;
        uint64_t v;
        if (pt_units_parse_digits(s, &end, &v) != 0 || end != s + n - 1 ||
            v > UINT64_MAX / PT_DAY_MS / 4)
            return -1;
        *ms = v * PT_DAY_MS;
        return 0;
    }
    return pt_units_parse_duration(s, ms) == 0 ? 0 : -1;
}

static int list(const struct cli_opts *o, FILE *out, FILE *err)
{
    static const char *const hdr[] = {"REPOSITORIES", "UNTAGGED OLDER THAN", "KEEP LAST", "TAGS"};
    struct cli_xfer x = {0};
    json_t *doc = NULL, *rules, *r;
    char(*cells)[CLI_PATTERN_MAX + 1] = NULL;
    size_t n, i;
    int rc = PT_CLI_FAILED;
    switch (
        cli_get_list(&x, o, PT_ADMIN_PREFIX PT_ADMIN_RETENTION, "rules", out, err, &doc, &rules)) {
    case 0:
        rc = PT_CLI_OK;
        goto out;
    case -1:
        goto out;
    }
    n = json_array_size(rules);
    cells = calloc(n ? 4 * n : 1, sizeof *cells);
    if (cells == NULL)
        goto out;
    json_array_foreach(rules, i, r)
    {
        json_int_t age = json_integer_value(json_object_get(r, "untagged_older_than_ms"));
        json_int_t keep = json_integer_value(json_object_get(r, "keep_last"));
        cli_clean(cells[4 * i], sizeof cells[0], cli_json_str(r, "repo_pattern", CLI_PATTERN_MAX),
                  CLI_PATTERN_MAX);
        if (age > 0)
            pt_units_format_duration((uint64_t)age, cells[4 * i + 1], sizeof cells[0]);
        else
            snprintf(cells[4 * i + 1], sizeof cells[0], "-");
        if (keep > 0)
            snprintf(cells[4 * i + 2], sizeof cells[0], "%lld", (long long)keep);
        else
            snprintf(cells[4 * i + 2], sizeof cells[0], "-");
        cli_clean(cells[4 * i + 3], sizeof cells[0],
                  cli_json_str(r, "tag_pattern", CLI_PATTERN_MAX), CLI_PATTERN_MAX);
    }
    if (n == 0)
        fprintf(out, "no retention rules\n");
    else
        cli_print_rows(out, hdr, 4, (const char *)cells, sizeof cells[0], n);
    rc = PT_CLI_OK;
out:
    free(cells);
    json_decref(doc);
    cli_xfer_cleanup(&x);
    return rc;
}

static json_t *get_status(const struct cli_opts *o, FILE *err)
{
    struct cli_xfer x = {0};
    json_t *doc = NULL;
    if (cli_request(&x, o, "GET", o->region, PT_ADMIN_PREFIX PT_ADMIN_RETENTION_RUN, NULL, false,
                    err) == 0)
        doc = cli_xfer_json(&x);
    cli_xfer_cleanup(&x);
    if (doc != NULL && !json_is_object(doc)) {
        json_decref(doc);
        doc = NULL;
    }
    if (doc == NULL)
        fprintf(err, "portolan retention run: no status document\n");
    return doc;
}

static int run(const struct cli_opts *o, bool dry, FILE *out, FILE *err)
{
    struct cli_xfer x = {0};
    int r = cli_request(&x, o, "POST", o->region,
                        dry ? PT_ADMIN_PREFIX PT_ADMIN_RETENTION_RUN "?dry_run=true"
                            : PT_ADMIN_PREFIX PT_ADMIN_RETENTION_RUN,
                        NULL, true, err);
    cli_xfer_cleanup(&x);
    if (r != 0)
        return PT_CLI_FAILED;
    json_t *doc;
    for (;;) {
        if ((doc = get_status(o, err)) == NULL)
            return PT_CLI_FAILED;
        if (!json_is_true(json_object_get(doc, "running")))
            break;
        json_decref(doc);
        struct timespec ts = {.tv_sec = 0, .tv_nsec = POLL_MS * 1000000L};
        nanosleep(&ts, NULL);
    }
    const char *e = cli_json_str(doc, "error", 127);
    int rc = e != NULL && e[0] != '\0' ? PT_CLI_FAILED : PT_CLI_OK;
    if (o->json) {
        cli_print_json(out, doc);
    } else {
        size_t i;
        json_t *v;
        const char *verb = dry ? "would delete" : "deleted";
        json_array_foreach(json_object_get(doc, "tags"), i, v)
        {
            char repo[PT_NAME_MAX + 1], tag[PT_TAG_MAX + 1], d[PT_DIGEST_STR_MAX + 1];
            fprintf(out, "%s tag %s:%s (%s)\n", verb,
                    cli_clean(repo, sizeof repo, cli_json_str(v, "repo", PT_NAME_MAX), PT_NAME_MAX),
                    cli_clean(tag, sizeof tag, cli_json_str(v, "tag", PT_TAG_MAX), PT_TAG_MAX),
                    cli_clean(d, sizeof d, cli_json_str(v, "digest", PT_DIGEST_STR_MAX),
                              PT_DIGEST_STR_MAX));
        }
        json_array_foreach(json_object_get(doc, "manifests"), i, v)
        {
            char repo[PT_NAME_MAX + 1], d[PT_DIGEST_STR_MAX + 1];
            fprintf(out, "%s manifest %s@%s\n", verb,
                    cli_clean(repo, sizeof repo, cli_json_str(v, "repo", PT_NAME_MAX), PT_NAME_MAX),
                    cli_clean(d, sizeof d, cli_json_str(v, "digest", PT_DIGEST_STR_MAX),
                              PT_DIGEST_STR_MAX));
        }
        fprintf(out, "%s: %lld tags, %lld manifests%s\n", dry ? "dry run" : "retention run",
                (long long)json_integer_value(json_object_get(doc, "tags_deleted")),
                (long long)json_integer_value(json_object_get(doc, "manifests_deleted")),
                json_is_true(json_object_get(doc, "truncated")) ? " (list truncated)" : "");
    }
    if (rc != PT_CLI_OK)
        fprintf(err, "portolan retention run: the run failed: %s\n", e);
    json_decref(doc);
    return rc;
}

int pt_cli_retention(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 1 || argv[0] == NULL) {
        pt_cli_retention_usage(err);
        return PT_CLI_USAGE;
    }
    const char *sub = argv[0];
    for (int i = 0; i < argc; i++)
        if (argv[i] != NULL && (strcmp(argv[i], "help") == 0 || strcmp(argv[i], "--help") == 0 ||
                                strcmp(argv[i], "-h") == 0)) {
            pt_cli_retention_usage(out);
            return PT_CLI_OK;
        }
    bool add = strcmp(sub, "add") == 0, rm = strcmp(sub, "remove") == 0,
         ls = strcmp(sub, "list") == 0, rn = strcmp(sub, "run") == 0;
    if (!add && !rm && !ls && !rn) {
        fprintf(err, "portolan retention: unknown command \"%.64s\"\n", sub);
        pt_cli_retention_usage(err);
        return PT_CLI_USAGE;
    }
    struct cli_extra ex[] = {{"--untagged-older-than", true, false, NULL},
                             {"--keep-last", true, false, NULL},
                             {"--tags", true, false, NULL},
                             {"--dry-run", false, false, NULL}};
    struct cli_extra *mine = add ? ex : rn ? ex + 3 : NULL;
    size_t nmine = add ? 3 : rn ? 1 : 0;
    const char *ops[1];
    size_t nops;
    uint64_t age = 0;
    unsigned long keep = 0;
    struct cli_opts o;
    int rc = cli_policy_begin(&o, CMD_RETENTION, sub, argc - 1, argv + 1, mine, nmine, ops,
                              add || rm ? 1 : 0, &nops, err);
    if (rc != PT_CLI_OK)
        return rc;
    struct cli_xfer x = {0};
    json_t *body = NULL;
    char *esc = NULL;
    if (ls) {
        rc = list(&o, out, err);
    } else if (rn) {
        rc = run(&o, ex[3].given, out, err);
    } else if (nops != 1) {
        fprintf(err, "portolan retention %s: name REPO-PATTERN\n", sub);
        rc = PT_CLI_USAGE;
    } else if (add) {
        char *end = NULL;
        if (ex[0].given && (parse_age(ex[0].value, &age) != 0 || age == 0)) {
            fprintf(err, "portolan retention add: --untagged-older-than: not an age: \"%.32s\"\n",
                    ex[0].value);
            rc = PT_CLI_USAGE;
        } else if (ex[1].given &&
                   ((keep = strtoul(ex[1].value, &end, 10)) == 0 || *end != '\0' || keep > 10000)) {
            fprintf(err, "portolan retention add: --keep-last takes 1 to 10000\n");
            rc = PT_CLI_USAGE;
        } else if (!ex[0].given && !ex[1].given) {
            fprintf(err, "portolan retention add: give --untagged-older-than or --keep-last\n");
            rc = PT_CLI_USAGE;
        } else {
            body = json_pack("{s:s,s:I,s:I,s:s}", "repo_pattern", ops[0], "untagged_older_than_ms",
                             (json_int_t)age, "keep_last", (json_int_t)keep, "tag_pattern",
                             ex[2].given ? ex[2].value : "*");
            rc = body != NULL &&
                         cli_request(&x, &o, "POST", o.region, PT_ADMIN_PREFIX PT_ADMIN_RETENTION,
                                     body, true, err) == 0
                     ? PT_CLI_OK
                     : PT_CLI_FAILED;
            if (rc == PT_CLI_OK)
                fprintf(out, "retention rule of %s set\n", ops[0]);
        }
    } else {
        char path[CLI_URL_MAX];
        rc = PT_CLI_FAILED;
        if ((esc = curl_easy_escape(NULL, ops[0], 0)) != NULL) {
            snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_RETENTION "?repo_pattern=%s", esc);
            if (cli_request(&x, &o, "DELETE", o.region, path, NULL, true, err) == 0) {
                fprintf(out, "retention rule of %s removed\n", ops[0]);
                rc = PT_CLI_OK;
            }
        }
    }
    curl_free(esc);
    json_decref(body);
    cli_xfer_cleanup(&x);
    cli_policy_end(&o);
    return rc;
}
