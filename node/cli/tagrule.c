/*
 * tagrule.c - `portolan tag-rule add|list|remove`: immutable tag rules (base/admin_api.h,
 * /admin/tag-rules). A tag matching TAG-PATTERN (glob, '*') in a repository matching
 * REPO-PATTERN never moves to another digest once written and is never deleted.
 *
 *   tag-rule add REPO-PATTERN TAG-PATTERN      POST   /admin/tag-rules
 *   tag-rule list                              GET    /admin/tag-rules
 *   tag-rule remove REPO-PATTERN TAG-PATTERN   DELETE /admin/tag-rules?repo_pattern=&tag_pattern=
 */
#include "cli.h"
#include "cli_int.h"

#include "admin_api.h"

#include <stdlib.h>
#include <string.h>

void pt_cli_tag_rule_usage(FILE *out)
{
    fprintf(out,
            "usage: portolan tag-rule <command> --region URL [flags]\n\n"
            "commands:\n"
            "  add REPO-PATTERN TAG-PATTERN     tags matching TAG-PATTERN ('*' globs) in the\n"
            "                                   repositories matching REPO-PATTERN (e.g. team/*)\n"
            "                                   become immutable: never moved, never deleted\n"
            "  list                             the rules\n"
            "  remove REPO-PATTERN TAG-PATTERN  remove a rule\n\n"
            "flags:\n"
            "  --region URL, --user NAME, --password-stdin, --cacert FILE, --timeout DURATION,\n"
            "  --json\n");
}

static int list(const struct cli_opts *o, FILE *out, FILE *err)
{
    static const char *const hdr[] = {"REPOSITORIES", "TAGS"};
    struct cli_xfer x = {0};
    json_t *doc = NULL, *rules, *r;
    char(*cells)[CLI_PATTERN_MAX + 1] = NULL;
    size_t n, i;
    int rc = PT_CLI_FAILED;
    switch (
        cli_get_list(&x, o, PT_ADMIN_PREFIX PT_ADMIN_TAG_RULES, "rules", out, err, &doc, &rules)) {
    case 0:
        rc = PT_CLI_OK;
        goto out;
    case -1:
        goto out;
    }
    n = json_array_size(rules);
    cells = calloc(n ? 2 * n : 1, sizeof *cells);
    if (cells == NULL)
        goto out;
    json_array_foreach(rules, i, r)
    {
        cli_clean(cells[2 * i], sizeof cells[0], cli_json_str(r, "repo_pattern", CLI_PATTERN_MAX),
                  CLI_PATTERN_MAX);
        cli_clean(cells[2 * i + 1], sizeof cells[0],
                  cli_json_str(r, "tag_pattern", CLI_PATTERN_MAX), CLI_PATTERN_MAX);
    }
    if (n == 0)
        fprintf(out, "no immutable tag rules\n");
    else
        cli_print_rows(out, hdr, 2, (const char *)cells, sizeof cells[0], n);
    rc = PT_CLI_OK;
out:
    free(cells);
    json_decref(doc);
    cli_xfer_cleanup(&x);
    return rc;
}

int pt_cli_tag_rule(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 1 || argv[0] == NULL) {
        pt_cli_tag_rule_usage(err);
        return PT_CLI_USAGE;
    }
    const char *sub = argv[0];
    for (int i = 0; i < argc; i++)
        if (argv[i] != NULL && (strcmp(argv[i], "help") == 0 || strcmp(argv[i], "--help") == 0 ||
                                strcmp(argv[i], "-h") == 0)) {
            pt_cli_tag_rule_usage(out);
            return PT_CLI_OK;
        }
    bool add = strcmp(sub, "add") == 0, rm = strcmp(sub, "remove") == 0,
         ls = strcmp(sub, "list") == 0;
    if (!add && !rm && !ls) {
        fprintf(err, "portolan tag-rule: unknown command \"%.64s\"\n", sub);
        pt_cli_tag_rule_usage(err);
        return PT_CLI_USAGE;
    }
    const char *ops[2];
    size_t nops;
    struct cli_opts o;
    int rc = cli_policy_begin(&o, CMD_TAG_RULE, sub, argc - 1, argv + 1, NULL, 0, ops, ls ? 0 : 2,
                              &nops, err);
    if (rc != PT_CLI_OK)
        return rc;
    struct cli_xfer x = {0};
    json_t *body = NULL;
    char *e1 = NULL, *e2 = NULL;
    if (ls) {
        rc = list(&o, out, err);
    } else if (nops != 2) {
        fprintf(err, "portolan tag-rule %s: name REPO-PATTERN and TAG-PATTERN\n", sub);
        rc = PT_CLI_USAGE;
    } else if (add) {
        body = json_pack("{s:s,s:s}", "repo_pattern", ops[0], "tag_pattern", ops[1]);
        rc = body != NULL && cli_request(&x, &o, "POST", o.region,
                                         PT_ADMIN_PREFIX PT_ADMIN_TAG_RULES, body, true, err) == 0
                 ? PT_CLI_OK
                 : PT_CLI_FAILED;
        if (rc == PT_CLI_OK)
            fprintf(out, "tags %s of %s are immutable\n", ops[1], ops[0]);
    } else {
        char path[CLI_URL_MAX];
        e1 = curl_easy_escape(NULL, ops[0], 0);
        e2 = curl_easy_escape(NULL, ops[1], 0);
        rc = PT_CLI_FAILED;
        if (e1 != NULL && e2 != NULL) {
            snprintf(path, sizeof path,
                     PT_ADMIN_PREFIX PT_ADMIN_TAG_RULES "?repo_pattern=%s&tag_pattern=%s", e1, e2);
            if (cli_request(&x, &o, "DELETE", o.region, path, NULL, true, err) == 0) {
                fprintf(out, "rule removed: tags %s of %s\n", ops[1], ops[0]);
                rc = PT_CLI_OK;
            }
        }
    }
    curl_free(e1);
    curl_free(e2);
    json_decref(body);
    cli_xfer_cleanup(&x);
    cli_policy_end(&o);
    return rc;
}
