/*
 * args.c - the command line of `portolan cluster ...` and `portolan replication status`:
 * command names, the flags each command takes, the checks of their values, the image
 * argument, and the usage texts that describe them.
 *
 * Design: one table of flags, each with the set of commands that accept it, so a flag given
 * to the wrong command is refused the same way as an unknown one. Values are checked here
 * with the rules the cluster file uses (ident.h, addr.h) and the registry's own grammar for
 * names, tags and digests, so the commands never see an argument they would have to refuse.
 * Flags are "--flag value" or "--flag=value"; a value never starts with "--".
 */
#include "cli.h"
#include "cli_int.h"

#include "addr.h"
#include "reference.h"
#include "units.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_TIMEOUT_MS 5000   /* one admin request */
#define BACKUP_TIMEOUT_MS  600000 /* `portolan backup`: the region links every blob first */
#define ADD_TIMEOUT_MS     600000 /* `portolan cluster add`: a voter catches up before it answers */

const char *const cli_cmd_names[] = {
    [CMD_STATUS] = "status",
    [CMD_ADD] = "add",
    [CMD_REMOVE] = "remove",
    [CMD_TRANSFER] = "transfer-leader",
    [CMD_REPLICATION] = "status",
    [CMD_USER_ADD] = "add",
    [CMD_USER_REMOVE] = "remove",
    [CMD_USER_LIST] = "list",
    [CMD_USER_PASSWD] = "passwd",
    [CMD_TOKEN_CREATE] = "create",
    [CMD_TOKEN_LIST] = "list",
    [CMD_TOKEN_REVOKE] = "revoke",
    [CMD_TOKEN_DISABLE] = "disable",
    [CMD_TOKEN_ENABLE] = "enable",
    [CMD_ANON_LIST] = "anonymous list",
    [CMD_ANON_ADD] = "anonymous add",
    [CMD_ANON_REMOVE] = "anonymous remove",
    [CMD_WHOAMI] = "whoami",
    [CMD_ROTATE_KEY] = "rotate-key",
    [CMD_AUDIT_VERIFY] = "verify",
    [CMD_AUDIT_TAIL] = "tail",
    [CMD_BACKUP] = "backup",
    [CMD_GC_RUN] = "run",
    [CMD_GC_STATUS] = "status",
    [CMD_QUOTA] = "quota",
    [CMD_THROTTLE] = "throttle",
    [CMD_REPO_LIST] = "list",
    [CMD_REPO] = "repo",
    [CMD_TAG_RULE] = "tag-rule",
    [CMD_RETENTION] = "retention",
};
const char *const cli_cmd_titles[] = {
    [CMD_STATUS] = "cluster status",
    [CMD_ADD] = "cluster add",
    [CMD_REMOVE] = "cluster remove",
    [CMD_TRANSFER] = "cluster transfer-leader",
    [CMD_REPLICATION] = "replication status",
    [CMD_USER_ADD] = "user add",
    [CMD_USER_REMOVE] = "user remove",
    [CMD_USER_LIST] = "user list",
    [CMD_USER_PASSWD] = "user passwd",
    [CMD_TOKEN_CREATE] = "token create",
    [CMD_TOKEN_LIST] = "token list",
    [CMD_TOKEN_REVOKE] = "token revoke",
    [CMD_TOKEN_DISABLE] = "token disable",
    [CMD_TOKEN_ENABLE] = "token enable",
    [CMD_ANON_LIST] = "auth anonymous list",
    [CMD_ANON_ADD] = "auth anonymous add",
    [CMD_ANON_REMOVE] = "auth anonymous remove",
    [CMD_WHOAMI] = "auth whoami",
    [CMD_ROTATE_KEY] = "auth rotate-key",
    [CMD_AUDIT_VERIFY] = "audit verify",
    [CMD_AUDIT_TAIL] = "audit tail",
    [CMD_BACKUP] = "backup",
    [CMD_GC_RUN] = "gc run",
    [CMD_GC_STATUS] = "gc status",
    [CMD_QUOTA] = "quota",
    [CMD_THROTTLE] = "throttle",
    [CMD_REPO_LIST] = "repo list",
    [CMD_REPO] = "repo",
    [CMD_TAG_RULE] = "tag-rule",
    [CMD_RETENTION] = "retention",
};

/* Flags and the commands that take them (bit per enum cli_cmd). */
#define BIT(c) (UINT64_C(1) << (c))
#define CLUSTER_CMDS                                                                               \
    (BIT(CMD_STATUS) | BIT(CMD_ADD) | BIT(CMD_REMOVE) | BIT(CMD_TRANSFER) | BIT(CMD_REPLICATION))
#define AUDIT_CMDS (BIT(CMD_AUDIT_VERIFY) | BIT(CMD_AUDIT_TAIL))
#define ALL_CMDS   ((UINT64_C(1) << CMD_COUNT) - 1)
_Static_assert(CMD_COUNT < 64, "a command mask is 64 bits");
#define ADMIN_CMDS (ALL_CMDS & ~AUDIT_CMDS) /* every command that speaks the admin API */
/* Commands with one NAME, ID or PATTERN operand. */
#define OPERAND_CMDS                                                                               \
    (BIT(CMD_USER_ADD) | BIT(CMD_USER_REMOVE) | BIT(CMD_USER_PASSWD) | BIT(CMD_TOKEN_REVOKE) |     \
     BIT(CMD_TOKEN_DISABLE) | BIT(CMD_TOKEN_ENABLE) | BIT(CMD_ANON_ADD) | BIT(CMD_ANON_REMOVE))
#define PATTERN_CMDS (BIT(CMD_ANON_ADD) | BIT(CMD_ANON_REMOVE))

static const struct {
    const char *name;
    bool has_value;
    uint64_t cmds;
} flags[] = {
    [F_REGION] = {"--region", true, ADMIN_CMDS},
    [F_JSON] = {"--json", false, ADMIN_CMDS},
    [F_CACERT] = {"--cacert", true, ADMIN_CMDS},
    [F_TIMEOUT] = {"--timeout", true, ADMIN_CMDS},
    [F_NAME] = {"--name", true, BIT(CMD_ADD)},
    [F_ID] = {"--id", true, BIT(CMD_ADD) | BIT(CMD_REMOVE) | BIT(CMD_TRANSFER)},
    [F_ADDRESS] = {"--address", true, BIT(CMD_ADD)},
    [F_URL] = {"--url", true, BIT(CMD_ADD)},
    [F_ROLE] = {"--role", true, BIT(CMD_ADD)},
    [F_USER] = {"--user", true, ADMIN_CMDS},
    [F_PASSWORD_STDIN] = {"--password-stdin", false, ADMIN_CMDS},
    [F_GRANT] = {"--grant", true, BIT(CMD_USER_ADD) | BIT(CMD_TOKEN_CREATE)},
    [F_ADMIN] = {"--admin", false, BIT(CMD_USER_ADD)},
    [F_TOKEN_ID] = {"--id", true, BIT(CMD_TOKEN_CREATE)},
    [F_EXPIRES] = {"--expires", true, BIT(CMD_TOKEN_CREATE)},
    [F_DESCRIPTION] = {"--description", true, BIT(CMD_TOKEN_CREATE)},
    [F_DATA_DIR] = {"--data-dir", true, AUDIT_CMDS},
    [F_LINES] = {"-n", true, BIT(CMD_AUDIT_TAIL)},
    [F_FOLLOW] = {"--follow", false, BIT(CMD_AUDIT_TAIL)},
    [F_DRY_RUN] = {"--dry-run", false, BIT(CMD_GC_RUN)},
};
#define NFLAGS (sizeof flags / sizeof flags[0])

int cli_take_url(char *dst, const char *src, const char **why)
{
    size_t n = strnlen(src, PT_CLUSTER_URL_MAX + 2);

    if (n > 0 && src[n - 1] == '/')
        n--;
    if (n > PT_CLUSTER_URL_MAX) {
        *why = "longer than 511 bytes";
        return -1;
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
    return pt_addr_check_url(dst, why) == 0 ? 0 : -1;
}

/* A user name or token id: [a-z0-9][a-z0-9._-]{0,63}, as the server's pt_auth_name_valid. */
static bool name_valid(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > CLI_NAME_MAX ||
        !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= '0' && s[0] <= '9')))
        return false;
    for (size_t i = 1; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A repository pattern's characters and shape (the server checks its grammar): 1..255 bytes
 * of lower case, digits, . _ - / and *, no empty path component. */
static bool pattern_valid(const char *s)
{
    size_t n = strlen(s);

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

/* "PATTERN:ACTIONS" (actions pull, push, delete, admin, "*" = pull,push,delete, comma
 * separated), or "admin" / "*:admin" / "**:admin" for the registry-wide admin grant. */
static int parse_grant(const char *v, struct cli_grant *g, const char **why)
{
    static const struct {
        const char *name;
        unsigned bits;
    } actions[] = {{"pull", CLI_PULL},
                   {"push", CLI_PUSH},
                   {"delete", CLI_DELETE},
                   {"admin", CLI_ADMIN},
                   {"*", CLI_PULL | CLI_PUSH | CLI_DELETE}};
    const char *colon = strrchr(v, ':'), *p;
    size_t plen;

    g->actions = 0;
    if (strcmp(v, "admin") == 0) {
        snprintf(g->pattern, sizeof g->pattern, "**");
        g->actions = CLI_ADMIN;
        return 0;
    }
    if (colon == NULL) {
        *why = "expected PATTERN:ACTIONS, e.g. 'team/*:pull,push'";
        return -1;
    }
    plen = (size_t)(colon - v);
    if (plen > CLI_PATTERN_MAX) {
        *why = "pattern longer than 255 bytes";
        return -1;
    }
    memcpy(g->pattern, v, plen);
    g->pattern[plen] = '\0';
    for (p = colon + 1;;) {
        size_t n = strcspn(p, ","), a;
        for (a = 0; a < sizeof actions / sizeof actions[0]; a++) {
            if (strlen(actions[a].name) == n && strncmp(actions[a].name, p, n) == 0)
                break;
        }
        if (a == sizeof actions / sizeof actions[0]) {
            *why = "actions are pull, push, delete, admin or *, separated by commas";
            return -1;
        }
        g->actions |= actions[a].bits;
        if (p[n] == '\0')
            break;
        p += n + 1;
    }
    if (g->actions & CLI_ADMIN) {
        /* Admin is registry-wide: only on every repository. */
        if (strcmp(g->pattern, "*") != 0 && strcmp(g->pattern, "**") != 0) {
            *why = "admin is registry-wide: use 'admin' or '**:admin'";
            return -1;
        }
        snprintf(g->pattern, sizeof g->pattern, "**");
    }
    if (!pattern_valid(g->pattern)) {
        *why = "pattern: lower case, digits, . _ - / and * (e.g. team/*, app-*, public/**)";
        return -1;
    }
    return 0;
}

/* "30d", "12h", "90m", "3600s" or plain seconds, at most ten years. */
static int parse_expires(const char *v, uint64_t *secs)
{
    static const struct {
        char suffix;
        uint64_t mul;
    } units[] = {{'\0', 1}, {'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}, {'w', 7 * 86400}};
    const char *end;
    uint64_t n;

    if (pt_units_parse_digits(v, &end, &n) != 0 || (end[0] != '\0' && end[1] != '\0'))
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (units[i].suffix == end[0]) {
            if (n == 0 || n > 3650ull * 86400 / units[i].mul)
                return -1;
            *secs = n * units[i].mul;
            return 0;
        }
    }
    return -1;
}

static int set_flag(struct cli_opts *o, enum cli_flag f, const char *v, FILE *err)
{
    const char *why = NULL;
    const char *name = flags[f].name;

    switch (f) {
    case F_REGION:
        if (cli_take_url(o->region, v, &why) != 0)
            goto bad;
        break;
    case F_JSON:
        o->json = true;
        break;
    case F_CACERT:
        if (v[0] == '\0') {
            why = "missing file name";
            goto bad;
        }
        o->cacert = v;
        break;
    case F_TIMEOUT:
        if (pt_units_parse_duration(v, &o->timeout_ms) != 0 || o->timeout_ms == 0 ||
            o->timeout_ms > 3600 * 1000) {
            why = "expected a duration 1s..1h (seconds, or an s/m/h suffix)";
            goto bad;
        }
        break;
    case F_NAME:
        if (pt_ident_check_region(v, &why) != 0)
            goto bad;
        memcpy(o->added.name, v, strlen(v) + 1);
        break;
    case F_ID:
        if (pt_ident_parse_server_id(v, &o->added.id) != 0) {
            why = "expected a server id 1..9223372036854775807";
            goto bad;
        }
        break;
    case F_ADDRESS:
        if (pt_addr_check_peer(v, &why) != 0)
            goto bad;
        memcpy(o->added.address, v, strlen(v) + 1);
        break;
    case F_URL:
        if (cli_take_url(o->added.url, v, &why) != 0)
            goto bad;
        break;
    case F_ROLE:
        if (pt_ident_parse_role(v, &o->added.role) != 0 || o->added.role == PT_CLUSTER_SPARE) {
            why = "expected voter or standby";
            goto bad;
        }
        break;
    case F_USER:
        if (v[0] == '\0' || strlen(v) > CLI_USER_MAX || strchr(v, ':') != NULL) {
            why = "expected a user name or token id (no ':')";
            goto bad;
        }
        o->user = v;
        break;
    case F_PASSWORD_STDIN:
        o->password_stdin = true;
        break;
    case F_GRANT:
        if (o->n_grants == CLI_GRANTS_MAX) {
            why = "at most 32 grants";
            goto bad;
        }
        if (parse_grant(v, &o->grants[o->n_grants], &why) != 0)
            goto bad;
        o->n_grants++;
        break;
    case F_ADMIN:
        o->admin = true;
        break;
    case F_TOKEN_ID:
        if (!name_valid(v)) {
            why = "expected [a-z0-9][a-z0-9._-]{0,63}";
            goto bad;
        }
        o->token_id = v;
        break;
    case F_EXPIRES:
        if (parse_expires(v, &o->expires_s) != 0) {
            why = "expected a duration with s, m, h, d or w (e.g. 30d), at most ten years";
            goto bad;
        }
        break;
    case F_DESCRIPTION:
        if (strlen(v) > CLI_DESCRIPTION_MAX) {
            why = "longer than 255 bytes";
            goto bad;
        }
        o->description = v;
        break;
    case F_DATA_DIR:
        if (v[0] == '\0' || strlen(v) > 3000) {
            why = "expected a directory";
            goto bad;
        }
        o->data_dir = v;
        break;
    case F_LINES: {
        const char *end;
        uint64_t n;
        if (pt_units_parse_digits(v, &end, &n) != 0 || *end != '\0' || n > 100000) {
            why = "expected a number of lines 0..100000";
            goto bad;
        }
        o->lines = (unsigned long)n;
        break;
    }
    case F_FOLLOW:
        o->follow = true;
        break;
    case F_DRY_RUN:
        o->dry_run = true;
        break;
    }
    o->given |= 1u << f;
    return 0;
bad:
    fprintf(err, "portolan %s: %s: \"%.64s\": %s\n", cli_cmd_titles[o->cmd], name, v, why);
    return PT_CLI_USAGE;
}

/*
 * The image argument of `replication status`: NAME:TAG, NAME@DIGEST or NAME (the tag then is
 * "latest"), each part checked with the registry's own grammar. Names, tags and sha256 or
 * sha512 digests hold only characters a query value may carry as they are, so they go into the
 * request URL unescaped.
 */
static int parse_image(struct cli_opts *o, const char *a, FILE *err)
{
    const char *at = strchr(a, '@'), *colon = strrchr(a, ':'), *slash = strrchr(a, '/');
    const char *ref = "latest";
    size_t nlen = strlen(a);
    struct pt_digest d;

    if (at != NULL) {
        nlen = (size_t)(at - a);
        ref = at + 1;
        if (pt_digest_parse(ref, strlen(ref), &d) != 0) {
            fprintf(err, "portolan %s: \"%.80s\": not a sha256 digest after '@'\n",
                    cli_cmd_titles[o->cmd], a);
            return PT_CLI_USAGE;
        }
        o->image_by_digest = true;
    } else if (colon != NULL && (slash == NULL || colon > slash)) {
        nlen = (size_t)(colon - a);
        ref = colon + 1;
        if (pt_tag_validate(ref, strlen(ref)) != 0) {
            fprintf(err, "portolan %s: \"%.80s\": not a valid tag after ':'\n",
                    cli_cmd_titles[o->cmd], a);
            return PT_CLI_USAGE;
        }
    }
    if (pt_name_validate(a, nlen) != 0) {
        fprintf(err,
                "portolan %s: \"%.80s\": not NAME:TAG or NAME@DIGEST with a repository name "
                "(lower case, digits, separators . _ - /)\n",
                cli_cmd_titles[o->cmd], a);
        return PT_CLI_USAGE;
    }
    memcpy(o->image_name, a, nlen);
    o->image_name[nlen] = '\0';
    snprintf(o->image_ref, sizeof o->image_ref, "%s", ref);
    o->has_image = true;
    return 0;
}

/* A word that is not a flag: the command's operand (NAME, ID, PATTERN) or a file of audit
 * verify. */
static int take_operand(struct cli_opts *o, const char *a, FILE *err)
{
    const char *cmd = cli_cmd_titles[o->cmd];

    if (o->cmd == CMD_AUDIT_VERIFY) {
        if (o->n_files == CLI_FILES_MAX) {
            fprintf(err, "portolan %s: at most %d files\n", cmd, CLI_FILES_MAX);
            return PT_CLI_USAGE;
        }
        o->files[o->n_files++] = a;
        return 0;
    }
    if (!(OPERAND_CMDS & BIT(o->cmd)) || o->arg != NULL) {
        fprintf(err, "portolan %s: unexpected argument \"%.64s\"\n", cmd, a);
        return PT_CLI_USAGE;
    }
    if ((PATTERN_CMDS & BIT(o->cmd)) ? !pattern_valid(a) : !name_valid(a)) {
        fprintf(err, "portolan %s: \"%.64s\": %s\n", cmd, a,
                (PATTERN_CMDS & BIT(o->cmd))
                    ? "not a repository pattern (lower case, digits, . _ - / and *)"
                    : "expected [a-z0-9][a-z0-9._-]{0,63}");
        return PT_CLI_USAGE;
    }
    o->arg = a;
    return 0;
}

int cli_args_parse(struct cli_opts *o, enum cli_cmd c, int argc, char **argv, FILE *err)
{
    const char *cmd = cli_cmd_titles[c];

    *o = (struct cli_opts){.cmd = c,
                           .timeout_ms = DEFAULT_TIMEOUT_MS,
                           .added = {.role = PT_CLUSTER_VOTER},
                           .lines = 10};

    for (int i = 0; i < argc;) {
        const char *a = argv[i], *eq, *v;
        size_t nlen;
        size_t f;

        if (a != NULL && a[0] != '-' && o->cmd == CMD_REPLICATION && !o->has_image) {
            int rc = parse_image(o, a, err);
            if (rc != 0)
                return rc;
            i++;
            continue;
        }
        if (a != NULL && a[0] != '-' && o->cmd != CMD_REPLICATION) {
            int rc = take_operand(o, a, err);
            if (rc != 0)
                return rc;
            i++;
            continue;
        }
        /* The one short flag is -n (audit tail); any other single dash word is no flag. */
        if (a == NULL || a[0] != '-' || a[1] == '\0' || strcmp(a, "--") == 0 ||
            (a[1] != '-' && (strcmp(a, "-n") != 0 || o->cmd != CMD_AUDIT_TAIL))) {
            fprintf(err, "portolan %s: unexpected argument \"%.64s\"\n", cmd, a ? a : "");
            return PT_CLI_USAGE;
        }
        eq = strchr(a, '=');
        nlen = eq ? (size_t)(eq - a) : strlen(a);
        /* The same name may be two flags for different commands (--id). */
        for (f = 0; f < NFLAGS; f++) {
            if (strlen(flags[f].name) == nlen && memcmp(flags[f].name, a, nlen) == 0 &&
                (flags[f].cmds & BIT(o->cmd)))
                break;
        }
        if (f == NFLAGS) {
            fprintf(err, "portolan %s: unknown flag \"%.*s\"\n", cmd, (int)(nlen < 64 ? nlen : 64),
                    a);
            return PT_CLI_USAGE;
        }
        if (!flags[f].has_value) {
            if (eq != NULL) {
                fprintf(err, "portolan %s: %s takes no value\n", cmd, flags[f].name);
                return PT_CLI_USAGE;
            }
            v = "";
            i++;
        } else if (eq != NULL) {
            v = eq + 1;
            i++;
        } else {
            if (i + 1 >= argc || argv[i + 1] == NULL || strncmp(argv[i + 1], "--", 2) == 0) {
                fprintf(err, "portolan %s: %s: missing value\n", cmd, flags[f].name);
                return PT_CLI_USAGE;
            }
            v = argv[i + 1];
            i += 2;
        }
        int rc = set_flag(o, (enum cli_flag)f, v, err);
        if (rc != 0)
            return rc;
    }

    unsigned need = (ADMIN_CMDS & BIT(o->cmd)) ? 1u << F_REGION : 0;
    if (o->cmd == CMD_TOKEN_CREATE)
        need |= 1u << F_GRANT;
    if (o->cmd == CMD_ADD)
        need |= (1u << F_NAME) | (1u << F_ID) | (1u << F_ADDRESS) | (1u << F_URL);
    if (o->cmd == CMD_REMOVE)
        need |= 1u << F_ID;
    for (size_t f = 0; f < NFLAGS; f++) {
        if ((need & (1u << f)) && !(o->given & (1u << f))) {
            fprintf(err, "portolan %s: %s is required\n", cmd, flags[f].name);
            return PT_CLI_USAGE;
        }
    }
    if ((OPERAND_CMDS & BIT(o->cmd)) && o->arg == NULL) {
        fprintf(err, "portolan %s: %s is required\n", cmd,
                (PATTERN_CMDS & BIT(o->cmd))                               ? "PATTERN"
                : o->cmd >= CMD_TOKEN_REVOKE && o->cmd <= CMD_TOKEN_ENABLE ? "ID"
                                                                           : "NAME");
        return PT_CLI_USAGE;
    }
    if (o->cmd == CMD_BACKUP && !(o->given & (1u << F_TIMEOUT)))
        o->timeout_ms = BACKUP_TIMEOUT_MS;
    if (o->cmd == CMD_ADD && !(o->given & (1u << F_TIMEOUT)))
        o->timeout_ms = ADD_TIMEOUT_MS;
    if (o->cmd == CMD_AUDIT_VERIFY && o->n_files > 0 && o->data_dir != NULL) {
        fprintf(err, "portolan %s: give --data-dir or files, not both\n", cmd);
        return PT_CLI_USAGE;
    }
    if (o->password_stdin && o->user == NULL && o->cmd != CMD_USER_ADD &&
        o->cmd != CMD_USER_PASSWD) {
        fprintf(err, "portolan %s: --password-stdin reads the password of --user NAME\n", cmd);
        return PT_CLI_USAGE;
    }
    return 0;
}

/* ---- usage ---------------------------------------------------------------------------- */

void pt_cli_cluster_usage(FILE *out)
{
    fprintf(out, "usage: portolan cluster <command> --region URL [flags]\n\n"
                 "commands:\n"
                 "  status            membership and raft state of every region, as a table\n"
                 "  add               add a region: --name N --id I --address HOST:PORT --url URL\n"
                 "                    [--role voter|standby] (default voter; a voter is a standby\n"
                 "                    until it has caught up, and add waits for that)\n"
                 "  remove            remove a region: --id I\n"
                 "  transfer-leader   hand leadership to --id I, or to a voter the leader picks\n"
                 "  certs             make the peer port's TLS certificates (no --region):\n"
                 "                    --out DIR --regions a,b,c [--days N] [--ca DIR]\n\n"
                 "flags of every command:\n"
                 "  --region URL      client URL of any region, e.g. http://127.0.0.1:5001\n"
                 "  --json            print JSON (status: every region's view merged)\n"
                 "  --cacert FILE     PEM CA certificates for https URLs (default: the system's)\n"
                 "  --timeout D       time limit of the admin request (default 5s, add 10m; each\n"
                 "                    region's view during status gets at most 2s)\n\n"
                 "exit status: 0 ok, 1 request failed, 2 usage error\n");
}

void pt_cli_gc_usage(FILE *out)
{
    fprintf(out,
            "usage: portolan gc <command> --region URL [flags]\n\n"
            "commands:\n"
            "  run [--dry-run]   run a garbage collection pass now in that region and wait for\n"
            "                    it: progress on stderr, then every blob removed (or, with\n"
            "                    --dry-run, that would be) and the bytes reclaimed\n"
            "  status            the collector's state and its last pass\n\n"
            "flags of every command:\n"
            "  --region URL      client URL of any region, e.g. http://127.0.0.1:5001\n"
            "  --json            print the final JSON document (GET /admin/gc)\n"
            "  --cacert FILE     PEM CA certificates for https URLs (default: the system's)\n"
            "  --timeout D       time limit of each admin request (default 5s)\n"
            "  --user NAME [--password-stdin]   credentials of an administrator\n");
}

void pt_cli_replication_usage(FILE *out)
{
    fprintf(out,
            "usage: portolan replication status [NAME:TAG | NAME@DIGEST] --region URL [flags]\n\n"
            "  without an image  blob replication of every region: in sync or how far\n"
            "                    behind (blobs, bytes, oldest missing), active transfers\n"
            "  with an image     which regions hold every blob of the image, and what\n"
            "                    each other region lacks (NAME alone means NAME:latest)\n\n"
            "flags:\n"
            "  --region URL      client URL of any region, e.g. http://127.0.0.1:5001\n"
            "  --json            print JSON (without an image: {\"regions\": [each region's\n"
            "                    status, or its error]})\n"
            "  --cacert FILE     PEM CA certificates for https URLs (default: the system's)\n"
            "  --timeout D       time limit of the admin request (default 5s; each region's\n"
            "                    status gets at most 2s)\n\n"
            "exit status: 0 ok, 1 request failed or a region unreachable, 2 usage error\n");
}

/* The credential flags and sources every access control command shares. */
static void credentials_usage(FILE *out)
{
    fprintf(out,
            "credentials (the first that applies):\n"
            "  --user NAME --password-stdin   NAME (a user, or a token id) and its password or\n"
            "                    token secret as the first line of standard input (--user\n"
            "                    alone prompts on the terminal)\n"
            "  PORTOLAN_USER and PORTOLAN_PASSWORD in the environment\n"
            "  the auth file of registry clients (podman login, docker login) with an entry\n"
            "                    for the --region host:port: $REGISTRY_AUTH_FILE,\n"
            "                    $XDG_RUNTIME_DIR/containers/auth.json,\n"
            "                    ~/.config/containers/auth.json, ~/.docker/config.json\n\n"
            "flags of every command:\n"
            "  --region URL      client URL of any region, e.g. https://registry.example:5000\n"
            "  --json            print the server's JSON answer\n"
            "  --cacert FILE     PEM CA certificates for https URLs (default: the system's)\n"
            "  --timeout D       time limit of the admin request (default 5s)\n\n"
            "exit status: 0 ok, 1 request failed or refused, 2 usage error\n");
}

void pt_cli_user_usage(FILE *out)
{
    fprintf(out,
            "usage: portolan user <command> --region URL [flags]\n\n"
            "commands:\n"
            "  add NAME [--grant 'team/*:pull,push']... [--admin]\n"
            "                    create a user; the new password comes from standard input\n"
            "                    with --password-stdin (after the --user password when --user\n"
            "                    is given too), else it is asked twice on the terminal\n"
            "  remove NAME       delete a user\n"
            "  list              users, their grants and state\n"
            "  passwd NAME       set NAME's password (same input as add); a user may change\n"
            "                    its own, an administrator anyone's\n\n"
            "grants: PATTERN:ACTIONS with actions pull, push, delete, * (all three), and\n"
            "  'admin' for administration of the whole registry; patterns are repository\n"
            "  names where a component may be * (one component, or a glob: app-*) and the\n"
            "  last may be ** (any depth), e.g. team/*, public/**, **\n\n");
    credentials_usage(out);
}

void pt_cli_token_usage(FILE *out)
{
    fprintf(out, "usage: portolan token <command> --region URL [flags]\n\n"
                 "commands:\n"
                 "  create --grant 'team/*:pull,push' [--grant ...] [--id ID] [--expires 30d]\n"
                 "         [--description TEXT]\n"
                 "                    create an access token for machines (CI); its secret is\n"
                 "                    printed once and never again (use it as the password of\n"
                 "                    the token's id)\n"
                 "  list              tokens, their grants, owner and expiry\n"
                 "  revoke ID         delete a token\n"
                 "  disable ID        refuse a token until enabled again\n"
                 "  enable ID\n\n");
    credentials_usage(out);
}

void pt_cli_auth_usage(FILE *out)
{
    fprintf(out, "usage: portolan auth <command> --region URL [flags]\n\n"
                 "commands:\n"
                 "  anonymous list            repository patterns anyone may pull\n"
                 "  anonymous add PATTERN     allow anonymous pulls of PATTERN (e.g. public/**)\n"
                 "  anonymous remove PATTERN\n"
                 "  whoami                    the identity the credentials name\n"
                 "  rotate-key                new token signing key for the region\n\n");
    credentials_usage(out);
}

void pt_cli_backup_usage(FILE *out)
{
    fprintf(out, "usage: portolan backup --region URL [flags]\n\n"
                 "  asks the region (an administrator's request) for a consistent backup of its\n"
                 "  metadata and of every blob it links, written by the region into\n"
                 "  <its data dir>/backups/<UTC time>/ (hard links: little space, little time);\n"
                 "  copy that directory off the volume, then restore it with `portolan restore`.\n"
                 "  The backup's missing_blobs counts blobs the region does not hold (a cluster\n"
                 "  region that has not replicated them yet): 0 means complete.\n"
                 "  --timeout defaults to 10m here.\n\n");
    credentials_usage(out);
}

void pt_cli_audit_usage(FILE *out)
{
    fprintf(out,
            "usage: portolan audit <command>\n\n"
            "commands:\n"
            "  verify [--data-dir DIR | FILE...]\n"
            "                    check the hash chain of the audit log (DIR/audit/audit.log and\n"
            "                    its rotated files, or the FILEs given oldest first); prints\n"
            "                    the first edited, removed or reordered line\n"
            "  tail [--data-dir DIR] [-n N] [--follow]\n"
            "                    print the last N lines (default 10), then with --follow the\n"
            "                    new ones as they come (across rotations)\n\n"
            "--data-dir defaults to ./portolan-data, as for portolan serve.\n"
            "exit status: 0 ok, 1 chain broken or files unreadable, 2 usage error\n");
}
