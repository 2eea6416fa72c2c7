/*
 * tokens.c - `portolan token create|list|revoke|disable|enable` (usage in args.c, contract
 * in base/admin_api.h):
 *
 *   token create --grant G... [--id ID] [--expires D] [--description T]
 *                                  POST   /admin/tokens {"id"?,"grants","expires_in_s"?,
 *                                                        "description"?}
 *   token list                     GET    /admin/tokens
 *   token revoke ID                DELETE /admin/tokens/ID
 *   token disable ID | enable ID   POST   /admin/tokens/ID/disable | /enable
 *
 * create prints the new secret once, with a line saying it will not be shown again; the
 * secret is checked (printable ASCII, bounded) before it reaches the terminal.
 */
#include "cli.h"
#include "cli_int.h"

#include "admin_api.h"

#include <stdlib.h>
#include <string.h>

#define CELL_MAX 512
enum { T_ID, T_OWNER, T_STATE, T_EXPIRES, T_CREATED, T_GRANTS, T_DESCRIPTION, T_COLUMNS };
static const char *const token_headers[T_COLUMNS] = {"ID",      "OWNER",  "STATE",      "EXPIRES",
                                                     "CREATED", "GRANTS", "DESCRIPTION"};

static int list(const struct cli_opts *o, FILE *out, FILE *err)
{
    struct cli_xfer x = {0};
    json_t *doc = NULL, *tokens, *t;
    char(*cells)[T_COLUMNS][CELL_MAX] = NULL;
    size_t n, i;
    int rc = PT_CLI_FAILED;

    switch (
        cli_get_list(&x, o, PT_ADMIN_PREFIX PT_ADMIN_TOKENS, "tokens", out, err, &doc, &tokens)) {
    case 0:
        rc = PT_CLI_OK;
        goto out;
    case -1:
        goto out;
    }
    n = json_array_size(tokens);
    cells = calloc(n ? n : 1, sizeof *cells);
    if (cells == NULL)
        goto out;
    json_array_foreach(tokens, i, t)
    {
        const char *owner = cli_json_str(t, "owner", CLI_NAME_MAX);
        cli_clean(cells[i][T_ID], CELL_MAX, cli_json_str(t, "id", CLI_NAME_MAX), CLI_NAME_MAX);
        cli_clean(cells[i][T_OWNER], CELL_MAX, owner && owner[0] ? owner : "-", CLI_NAME_MAX);
        snprintf(cells[i][T_STATE], CELL_MAX, "%s",
                 json_is_true(json_object_get(t, "disabled")) ? "disabled" : "active");
        cli_time_cell(cells[i][T_EXPIRES], CELL_MAX, json_object_get(t, "expires"), "never");
        cli_time_cell(cells[i][T_CREATED], CELL_MAX, json_object_get(t, "created"), "-");
        cli_grants_cell(cells[i][T_GRANTS], CELL_MAX, json_object_get(t, "grants"));
        const char *d = cli_json_str(t, "description", CLI_DESCRIPTION_MAX);
        cli_clean(cells[i][T_DESCRIPTION], CELL_MAX, d && d[0] ? d : "-", 80);
    }
    cli_print_rows(out, token_headers, T_COLUMNS, (const char *)cells, CELL_MAX, n);
    rc = PT_CLI_OK;
out:
    free(cells);
    json_decref(doc);
    cli_xfer_cleanup(&x);
    return rc;
}

/* A secret the terminal may show: printable ASCII, no space, at most CLI_SECRET_MAX. */
static bool secret_printable(const char *s)
{
    size_t n = s ? strlen(s) : 0;

    if (n == 0 || n > CLI_SECRET_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (s[i] <= 0x20 || s[i] >= 0x7f)
            return false;
    }
    return true;
}

static int create(const struct cli_opts *o, FILE *out, FILE *err)
{
    const char *title = cli_cmd_titles[o->cmd];
    struct cli_xfer x = {0};
    json_t *body = json_object(), *grants = cli_grants_json(o), *doc = NULL;
    char id[CLI_NAME_MAX + 1], when[64], g[CELL_MAX];
    int rc = PT_CLI_FAILED;

    if (body == NULL || grants == NULL || json_object_set_new(body, "grants", grants) != 0) {
        json_decref(grants);
        goto out;
    }
    if ((o->token_id != NULL && json_object_set_new(body, "id", json_string(o->token_id)) != 0) ||
        (o->expires_s > 0 &&
         json_object_set_new(body, "expires_in_s", json_integer((json_int_t)o->expires_s)) != 0) ||
        (o->description != NULL &&
         json_object_set_new(body, "description", json_string(o->description)) != 0)) {
        fprintf(err, "portolan %s: the description is not UTF-8\n", title);
        rc = PT_CLI_USAGE;
        goto out;
    }
    if (cli_request(&x, o, "POST", o->region, PT_ADMIN_PREFIX PT_ADMIN_TOKENS, body, true, err) !=
        0)
        goto out;
    doc = cli_xfer_json(&x);
    const char *secret = cli_json_str(doc, "secret", CLI_SECRET_MAX);
    if (!secret_printable(secret)) {
        fprintf(err, "portolan %s: %s: answer has no usable \"secret\"\n", title, x.url);
        goto out;
    }
    if (o->json) {
        cli_print_json(out, doc);
    } else {
        cli_clean(id, sizeof id, cli_json_str(doc, "id", CLI_NAME_MAX), CLI_NAME_MAX);
        fprintf(out, "token %s created, grants: %s, expires: %s\n", id,
                cli_grants_cell(g, sizeof g,
                                json_object_get(doc, "grants") ? json_object_get(doc, "grants")
                                                               : grants),
                cli_time_cell(when, sizeof when, json_object_get(doc, "expires"), "never"));
        fprintf(out, "secret: %s\n", secret);
    }
    /* With --json the note goes to err, so the output stays one JSON document. */
    fprintf(o->json ? err : out, "This secret will not be shown again: store it now (it is the "
                                 "password of the token's id).\n");
    rc = PT_CLI_OK;
out:
    json_decref(doc);
    json_decref(body);
    cli_xfer_cleanup(&x);
    return rc;
}

int cli_token_run(const struct cli_opts *o, FILE *out, FILE *err)
{
    struct cli_xfer x = {0};
    char path[CLI_URL_MAX];
    const char *method = "POST", *done;

    switch (o->cmd) {
    case CMD_TOKEN_CREATE:
        return create(o, out, err);
    case CMD_TOKEN_LIST:
        return list(o, out, err);
    case CMD_TOKEN_REVOKE:
        snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_TOKENS "/%s", o->arg);
        method = "DELETE";
        done = "revoked";
        break;
    case CMD_TOKEN_DISABLE:
        snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_TOKENS "/%s" PT_ADMIN_TOKEN_DISABLE,
                 o->arg);
        done = "disabled";
        break;
    case CMD_TOKEN_ENABLE:
        snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_TOKENS "/%s" PT_ADMIN_TOKEN_ENABLE,
                 o->arg);
        done = "enabled";
        break;
    default:
        return PT_CLI_FAILED;
    }
    int rc = cli_request(&x, o, method, o->region, path, NULL, true, err);
    cli_xfer_cleanup(&x);
    if (rc != 0)
        return PT_CLI_FAILED;
    fprintf(out, "token %s %s\n", o->arg, done);
    return PT_CLI_OK;
}
