/*
 * access.c - `portolan auth anonymous list|add|remove`, `auth whoami` and `auth rotate-key`
 * (usage in args.c, contract in base/admin_api.h):
 *
 *   auth anonymous list            GET    /admin/auth/anonymous
 *   auth anonymous add PATTERN     POST   /admin/auth/anonymous {"pattern"}
 *   auth anonymous remove PATTERN  DELETE /admin/auth/anonymous?pattern=<percent-encoded>
 *   auth whoami                    GET    /admin/auth/whoami
 *   auth rotate-key                POST   /admin/auth/keys/rotate
 */
#include "cli.h"
#include "cli_int.h"

#include "admin_api.h"

#include <stdlib.h>
#include <string.h>

static int anonymous_list(const struct cli_opts *o, FILE *out, FILE *err)
{
    static const char *const hdr[] = {"ANONYMOUS PULL"};
    struct cli_xfer x = {0};
    json_t *doc = NULL, *rules, *r;
    char(*cells)[CLI_PATTERN_MAX + 1] = NULL;
    size_t n, i;
    int rc = PT_CLI_FAILED;

    switch (
        cli_get_list(&x, o, PT_ADMIN_PREFIX PT_ADMIN_ANONYMOUS, "rules", out, err, &doc, &rules)) {
    case 0:
        rc = PT_CLI_OK;
        goto out;
    case -1:
        goto out;
    }
    n = json_array_size(rules);
    cells = calloc(n ? n : 1, sizeof *cells);
    if (cells == NULL)
        goto out;
    json_array_foreach(rules, i, r)
    {
        cli_clean(cells[i], sizeof cells[i], json_string_value(r), CLI_PATTERN_MAX);
    }
    if (n == 0)
        fprintf(out, "no anonymous access: every request needs credentials\n");
    else
        cli_print_rows(out, hdr, 1, (const char *)cells, sizeof cells[0], n);
    rc = PT_CLI_OK;
out:
    free(cells);
    json_decref(doc);
    cli_xfer_cleanup(&x);
    return rc;
}

static int whoami(const struct cli_opts *o, FILE *out, FILE *err)
{
    struct cli_xfer x = {0};
    json_t *doc = NULL;
    char id[CLI_NAME_MAX + 16], kind[16];
    int rc = PT_CLI_FAILED;

    if (cli_request(&x, o, "GET", o->region, PT_ADMIN_PREFIX PT_ADMIN_WHOAMI, NULL, false, err) !=
        0)
        goto out;
    doc = cli_xfer_json(&x);
    if (cli_json_str(doc, "identity", CLI_NAME_MAX + 8) == NULL) {
        fprintf(err, "portolan %s: %s: answer has no \"identity\"\n", cli_cmd_titles[o->cmd],
                x.url);
        goto out;
    }
    if (o->json) {
        cli_print_json(out, doc);
    } else {
        fprintf(
            out, "identity: %s\nkind: %s\nadmin: %s\n",
            cli_clean(id, sizeof id, cli_json_str(doc, "identity", CLI_NAME_MAX + 8), sizeof id),
            cli_clean(kind, sizeof kind, cli_json_str(doc, "kind", 12), 12),
            json_is_true(json_object_get(doc, "admin")) ? "yes" : "no");
        if (o->cred.have)
            fprintf(out, "credentials from: %s\n", o->cred.source);
    }
    rc = PT_CLI_OK;
out:
    json_decref(doc);
    cli_xfer_cleanup(&x);
    return rc;
}

int cli_access_run(const struct cli_opts *o, FILE *out, FILE *err)
{
    struct cli_xfer x = {0};
    char path[CLI_URL_MAX], kid[80];
    json_t *body = NULL, *doc = NULL;
    char *esc = NULL;
    int rc = PT_CLI_FAILED;

    switch (o->cmd) {
    case CMD_ANON_LIST:
        return anonymous_list(o, out, err);
    case CMD_WHOAMI:
        return whoami(o, out, err);
    case CMD_ANON_ADD:
        body = json_pack("{s:s}", "pattern", o->arg);
        if (body == NULL || cli_request(&x, o, "POST", o->region,
                                        PT_ADMIN_PREFIX PT_ADMIN_ANONYMOUS, body, true, err) != 0)
            goto out;
        fprintf(out, "anonymous pull allowed on %s\n", o->arg);
        break;
    case CMD_ANON_REMOVE:
        esc = curl_easy_escape(NULL, o->arg, 0);
        if (esc == NULL)
            goto out;
        snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_ANONYMOUS "?pattern=%s", esc);
        if (cli_request(&x, o, "DELETE", o->region, path, NULL, true, err) != 0)
            goto out;
        fprintf(out, "anonymous pull removed from %s\n", o->arg);
        break;
    case CMD_ROTATE_KEY:
        if (cli_request(&x, o, "POST", o->region, PT_ADMIN_PREFIX PT_ADMIN_KEYS_ROTATE, NULL, true,
                        err) != 0)
            goto out;
        doc = cli_xfer_json(&x);
        if (o->json)
            cli_print_json(out, doc);
        else
            fprintf(out, "new signing key: %s\n",
                    cli_clean(kid, sizeof kid, cli_json_str(doc, "kid", 64), 64));
        break;
    default:
        goto out;
    }
    rc = PT_CLI_OK;
out:
    curl_free(esc);
    json_decref(doc);
    json_decref(body);
    cli_xfer_cleanup(&x);
    return rc;
}
