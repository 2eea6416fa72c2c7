/*
 * repo.c - `portolan repo lock|unlock|show` (base/admin_api.h, /admin/locks):
 *
 *   repo lock REF [--no-write] [--no-delete]   POST /admin/locks; REF is repo, repo:tag or
 *                                              repo@digest; no flag: both writes and deletes
 *   repo unlock REF                            POST /admin/locks with both flags enabled
 *   repo show REPO                             GET  /admin/locks?repo=REPO: its locks and the
 *                                              immutable tag and retention rules that match
 */
#include "cli.h"
#include "cli_int.h"

#include "admin_api.h"
#include "reference.h"

#include <stdlib.h>
#include <string.h>

void pt_cli_repo_usage(FILE *out)
{
    fprintf(out,
            "usage: portolan repo <command> --region URL [flags]\n\n"
            "commands:\n"
            "  lock REF [--no-write] [--no-delete]\n"
            "                    lock a repository (REF = REPO), a tag (REPO:TAG) or a manifest\n"
            "                    (REPO@DIGEST); with no flag, for writes and deletes\n"
            "  unlock REF        remove the lock of REF\n"
            "  show REPO         the locks of REPO and the immutable tag and retention rules\n"
            "                    that match it\n\n"
            "flags:\n"
            "  --region URL      a region's client URL (any region: the change is replicated)\n"
            "  --user NAME, --password-stdin, --cacert FILE, --timeout DURATION, --json\n");
}

/* Splits REF into repo and tag or digest (into the given buffers). 0, or -1 (said on err). */
static int split_ref(const char *ref, char *repo, char *tag, char *digest, FILE *err)
{
    tag[0] = digest[0] = '\0';
    const char *at = strchr(ref, '@');
    const char *slash = strrchr(ref, '/');
    const char *colon = strrchr(ref, ':');
    size_t n = strlen(ref);
    if (at != NULL) {
        n = (size_t)(at - ref);
        snprintf(digest, PT_DIGEST_STR_MAX + 1, "%s", at + 1);
    } else if (colon != NULL && (slash == NULL || colon > slash)) {
        n = (size_t)(colon - ref);
        snprintf(tag, PT_TAG_MAX + 1, "%s", colon + 1);
    }
    if (n == 0 || n > PT_NAME_MAX || pt_name_validate(ref, n) != 0) {
        fprintf(err, "portolan repo: \"%.64s\" is not a repository name\n", ref);
        return -1;
    }
    memcpy(repo, ref, n);
    repo[n] = '\0';
    if (at != NULL) {
        struct pt_digest d;
        if (strlen(at + 1) > PT_DIGEST_STR_MAX ||
            pt_digest_parse(digest, strlen(digest), &d) != 0) {
            fprintf(err, "portolan repo: \"%.80s\" is not a digest\n", at + 1);
            return -1;
        }
    } else if (tag[0] != '\0' || colon > slash) {
        if (strlen(colon + 1) > PT_TAG_MAX || pt_tag_validate(tag, strlen(tag)) != 0) {
            fprintf(err, "portolan repo: \"%.80s\" is not a tag\n", colon + 1);
            return -1;
        }
    }
    return 0;
}

static void print_lock(FILE *out, const json_t *l)
{
    char repo[PT_NAME_MAX + 1], ref[PT_DIGEST_STR_MAX + 2];
    const char *tag = cli_json_str(l, "tag", PT_TAG_MAX);
    const char *digest = cli_json_str(l, "digest", PT_DIGEST_STR_MAX);
    cli_clean(repo, sizeof repo, cli_json_str(l, "repo", PT_NAME_MAX), PT_NAME_MAX);
    ref[0] = '\0';
    if (tag != NULL)
        snprintf(ref, sizeof ref, ":%s", tag);
    else if (digest != NULL)
        snprintf(ref, sizeof ref, "@%s", digest);
    bool we = json_is_true(json_object_get(l, "write_enabled"));
    bool de = json_is_true(json_object_get(l, "delete_enabled"));
    char clean[sizeof ref];
    fprintf(out, "  %s%s  writes %s, deletes %s\n", repo,
            cli_clean(clean, sizeof clean, ref, sizeof ref - 1), we ? "enabled" : "LOCKED",
            de ? "enabled" : "LOCKED");
}

static int show(const struct cli_opts *o, const char *repo, FILE *out, FILE *err)
{
    struct cli_xfer x = {0};
    char path[CLI_URL_MAX];
    json_t *doc = NULL, *v;
    size_t i;
    char *esc = curl_easy_escape(NULL, repo, 0);
    int rc = PT_CLI_FAILED;
    if (esc == NULL)
        goto out;
    snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_LOCKS "?repo=%s", esc);
    if (cli_request(&x, o, "GET", o->region, path, NULL, false, err) != 0)
        goto out;
    doc = cli_xfer_json(&x);
    if (!json_is_array(json_object_get(doc, "locks"))) {
        fprintf(err, "portolan repo show: %s: answer has no \"locks\"\n", x.url);
        goto out;
    }
    if (o->json) {
        cli_print_json(out, doc);
        rc = PT_CLI_OK;
        goto out;
    }
    fprintf(out, "repository: %s\nlocks:%s\n", repo,
            json_array_size(json_object_get(doc, "locks")) == 0 ? " none" : "");
    json_array_foreach(json_object_get(doc, "locks"), i, v) print_lock(out, v);
    fprintf(out, "immutable tag rules:%s\n",
            json_array_size(json_object_get(doc, "tag_rules")) == 0 ? " none" : "");
    json_array_foreach(json_object_get(doc, "tag_rules"), i, v)
    {
        char rp[CLI_PATTERN_MAX + 1], tp[PT_TAG_MAX + 1];
        fprintf(out, "  %s  tags %s\n",
                cli_clean(rp, sizeof rp, cli_json_str(v, "repo_pattern", CLI_PATTERN_MAX),
                          CLI_PATTERN_MAX),
                cli_clean(tp, sizeof tp, cli_json_str(v, "tag_pattern", PT_TAG_MAX), PT_TAG_MAX));
    }
    fprintf(out, "retention rules:%s\n",
            json_array_size(json_object_get(doc, "retention")) == 0 ? " none" : "");
    json_array_foreach(json_object_get(doc, "retention"), i, v)
    {
        char rp[CLI_PATTERN_MAX + 1], tp[PT_TAG_MAX + 1];
        fprintf(out, "  %s  untagged older than %llds, keep last %lld of tags %s\n",
                cli_clean(rp, sizeof rp, cli_json_str(v, "repo_pattern", CLI_PATTERN_MAX),
                          CLI_PATTERN_MAX),
                (long long)json_integer_value(json_object_get(v, "untagged_older_than_ms")) / 1000,
                (long long)json_integer_value(json_object_get(v, "keep_last")),
                cli_clean(tp, sizeof tp, cli_json_str(v, "tag_pattern", PT_TAG_MAX), PT_TAG_MAX));
    }
    rc = PT_CLI_OK;
out:
    curl_free(esc);
    json_decref(doc);
    cli_xfer_cleanup(&x);
    return rc;
}

static int set_lock(const struct cli_opts *o, const char *ref, bool we, bool de, FILE *out,
                    FILE *err)
{
    char repo[PT_NAME_MAX + 1], tag[PT_TAG_MAX + 1], digest[PT_DIGEST_STR_MAX + 1];
    if (split_ref(ref, repo, tag, digest, err) != 0)
        return PT_CLI_USAGE;
    json_t *body =
        json_pack("{s:s,s:b,s:b}", "repo", repo, "write_enabled", we, "delete_enabled", de);
    if (body == NULL)
        return PT_CLI_FAILED;
    if (tag[0] != '\0')
        json_object_set_new(body, "tag", json_string(tag));
    if (digest[0] != '\0')
        json_object_set_new(body, "digest", json_string(digest));
    struct cli_xfer x = {0};
    int rc = cli_request(&x, o, "POST", o->region, PT_ADMIN_PREFIX PT_ADMIN_LOCKS, body, true, err)
                 ? PT_CLI_FAILED
                 : PT_CLI_OK;
    if (rc == PT_CLI_OK && we && de)
        fprintf(out, "%s unlocked\n", ref);
    else if (rc == PT_CLI_OK)
        fprintf(out, "%s locked:%s%s\n", ref, we ? "" : " no writes", de ? "" : " no deletes");
    json_decref(body);
    cli_xfer_cleanup(&x);
    return rc;
}

int pt_cli_repo(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 1 || argv[0] == NULL) {
        pt_cli_repo_usage(err);
        return PT_CLI_USAGE;
    }
    const char *sub = argv[0];
    for (int i = 0; i < argc; i++)
        if (argv[i] != NULL && (strcmp(argv[i], "help") == 0 || strcmp(argv[i], "--help") == 0 ||
                                strcmp(argv[i], "-h") == 0)) {
            pt_cli_repo_usage(out);
            return PT_CLI_OK;
        }
    bool lock = strcmp(sub, "lock") == 0, unlock = strcmp(sub, "unlock") == 0,
         show_ = strcmp(sub, "show") == 0;
    if (!lock && !unlock && !show_) {
        fprintf(err, "portolan repo: unknown command \"%.64s\"\n", sub);
        pt_cli_repo_usage(err);
        return PT_CLI_USAGE;
    }
    struct cli_extra ex[] = {{"--no-write", false, false, NULL},
                             {"--no-delete", false, false, NULL}};
    size_t nex = lock ? 2 : 0, nops;
    const char *ops[1];
    struct cli_opts o;
    int rc = cli_policy_begin(&o, CMD_REPO, sub, argc - 1, argv + 1, ex, nex, ops, 1, &nops, err);
    if (rc != PT_CLI_OK)
        return rc;
    if (nops != 1) {
        fprintf(err, "portolan repo %s: name a %s\n", sub, show_ ? "repository" : "REF");
        rc = PT_CLI_USAGE;
    } else if (show_) {
        rc = show(&o, ops[0], out, err);
    } else if (unlock) {
        rc = set_lock(&o, ops[0], true, true, out, err);
    } else {
        bool nw = ex[0].given, nd = ex[1].given;
        if (!nw && !nd)
            nw = nd = true;
        rc = set_lock(&o, ops[0], !nw, !nd, out, err);
    }
    cli_policy_end(&o);
    return rc;
}
