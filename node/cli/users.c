/*
 * users.c - `portolan user add|remove|list|passwd` (usage in args.c, contract in
 * base/admin_api.h):
 *
 *   user add NAME [--grant G]... [--admin]  POST   /admin/users {"name","password","grants"}
 *   user remove NAME                        DELETE /admin/users/NAME
 *   user list                               GET    /admin/users
 *   user passwd NAME                        PUT    /admin/users/NAME/password {"password"}
 *
 * The new password comes from standard input with --password-stdin (the line after the
 * --user password when both are read there) or is asked twice on the terminal; an empty one
 * is refused before any request. It is never printed; the request body that carried it is
 * zeroed when the request is cleaned up (client.c).
 */
#include "cli.h"
#include "cli_int.h"

#include "admin_api.h"

#include <stdlib.h>
#include <string.h>

json_t *cli_grants_json(const struct cli_opts *o)
{
    static const char *const names[] = {"pull", "push", "delete", "admin"};
    json_t *arr = json_array();

    if (arr == NULL)
        return NULL;
    for (size_t i = 0; i < o->n_grants; i++) {
        json_t *acts = json_array();
        for (unsigned b = 0; acts != NULL && b < 4; b++) {
            if (o->grants[i].actions & (1u << b))
                json_array_append_new(acts, json_string(names[b]));
        }
        if (acts == NULL ||
            json_array_append_new(arr, json_pack("{s:s,s:o}", "pattern", o->grants[i].pattern,
                                                 "actions", acts)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

/* The new password of user add / passwd into buf (CLI_SECRET_MAX + 1 bytes). */
static int new_password(const struct cli_opts *o, char *buf, size_t size, FILE *err)
{
    const char *title = cli_cmd_titles[o->cmd], *why = NULL;
    char prompt[CLI_NAME_MAX + 32];

    if (o->password_stdin) {
        if (cli_read_secret_line(cli_input(), buf, size, &why) != 0) {
            fprintf(err, "portolan %s: new password: %s\n", title, why);
            return -1;
        }
        if (buf[0] == '\0') {
            fprintf(err, "portolan %s: the new password is empty\n", title);
            return -1;
        }
        return 0;
    }
    snprintf(prompt, sizeof prompt, "new password for %s: ", o->arg);
    if (cli_prompt_secret(prompt, true, buf, size, &why) != 0) {
        fprintf(err, "portolan %s: new password: %s\n", title, why);
        return -1;
    }
    return 0;
}

#define CELL_MAX 512
enum { U_NAME, U_STATE, U_CREATED, U_GRANTS, U_COLUMNS };
static const char *const user_headers[U_COLUMNS] = {"NAME", "STATE", "CREATED", "GRANTS"};

static int list(const struct cli_opts *o, FILE *out, FILE *err)
{
    struct cli_xfer x = {0};
    json_t *doc = NULL, *users, *u;
    char(*cells)[U_COLUMNS][CELL_MAX] = NULL;
    size_t n, i;
    int rc = PT_CLI_FAILED;

    switch (cli_get_list(&x, o, PT_ADMIN_PREFIX PT_ADMIN_USERS, "users", out, err, &doc, &users)) {
    case 0:
        rc = PT_CLI_OK;
        goto out;
    case -1:
        goto out;
    }
    n = json_array_size(users);
    cells = calloc(n ? n : 1, sizeof *cells);
    if (cells == NULL)
        goto out;
    json_array_foreach(users, i, u)
    {
        cli_clean(cells[i][U_NAME], CELL_MAX, cli_json_str(u, "name", CLI_NAME_MAX), CLI_NAME_MAX);
        snprintf(cells[i][U_STATE], CELL_MAX, "%s",
                 json_is_true(json_object_get(u, "disabled")) ? "disabled" : "active");
        cli_time_cell(cells[i][U_CREATED], CELL_MAX, json_object_get(u, "created"), "-");
        cli_grants_cell(cells[i][U_GRANTS], CELL_MAX, json_object_get(u, "grants"));
    }
    cli_print_rows(out, user_headers, U_COLUMNS, (const char *)cells, CELL_MAX, n);
    rc = PT_CLI_OK;
out:
    free(cells);
    json_decref(doc);
    cli_xfer_cleanup(&x);
    return rc;
}

int cli_user_run(const struct cli_opts *o, FILE *out, FILE *err)
{
    struct cli_xfer x = {0};
    char path[CLI_URL_MAX], pw[CLI_SECRET_MAX + 1] = "", g[CELL_MAX];
    json_t *body = NULL, *doc = NULL;
    int rc = PT_CLI_FAILED;

    if (o->cmd == CMD_USER_LIST)
        return list(o, out, err);
    snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_USERS "/%s", o->arg);
    switch (o->cmd) {
    case CMD_USER_ADD: {
        struct cli_opts with_admin = *o;
        if (o->admin && with_admin.n_grants < CLI_GRANTS_MAX) {
            snprintf(with_admin.grants[with_admin.n_grants].pattern, CLI_PATTERN_MAX + 1, "**");
            with_admin.grants[with_admin.n_grants++].actions = CLI_ADMIN;
        } else if (o->admin) {
            fprintf(err, "portolan %s: at most %d grants with --admin's\n", cli_cmd_titles[o->cmd],
                    CLI_GRANTS_MAX);
            return PT_CLI_USAGE;
        }
        json_t *grants = cli_grants_json(&with_admin);
        explicit_bzero(&with_admin.cred, sizeof with_admin.cred);
        if (grants == NULL || new_password(o, pw, sizeof pw, err) != 0) {
            json_decref(grants);
            goto out;
        }
        body = json_pack("{s:s,s:s,s:o}", "name", o->arg, "password", pw, "grants", grants);
        if (body == NULL)
            goto out;
        if (cli_request(&x, o, "POST", o->region, PT_ADMIN_PREFIX PT_ADMIN_USERS, body, true,
                        err) != 0)
            goto out;
        doc = cli_xfer_json(&x);
        if (o->json)
            cli_print_json(out, doc);
        else
            fprintf(out, "user %s added, grants: %s\n", o->arg,
                    cli_grants_cell(g, sizeof g, json_object_get(body, "grants")));
        break;
    }
    case CMD_USER_REMOVE:
        if (cli_request(&x, o, "DELETE", o->region, path, NULL, true, err) != 0)
            goto out;
        fprintf(out, "user %s removed\n", o->arg);
        break;
    case CMD_USER_PASSWD:
        if (new_password(o, pw, sizeof pw, err) != 0)
            goto out;
        body = json_pack("{s:s}", "password", pw);
        if (body == NULL)
            goto out;
        snprintf(path, sizeof path, PT_ADMIN_PREFIX PT_ADMIN_USERS "/%s" PT_ADMIN_USER_PASSWORD,
                 o->arg);
        if (cli_request(&x, o, "PUT", o->region, path, body, true, err) != 0)
            goto out;
        fprintf(out, "password of %s changed\n", o->arg);
        break;
    default:
        goto out;
    }
    rc = PT_CLI_OK;
out:
    explicit_bzero(pw, sizeof pw);
    json_decref(doc);
    json_decref(body);
    cli_xfer_cleanup(&x);
    return rc;
}
