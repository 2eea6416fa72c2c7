/*
 * cli.c - the entry points of `portolan cluster|replication|user|token|auth|audit ...`
 * (cli.h): pick the command, answer help, parse its arguments (args.c), find the credentials
 * (credentials.c), and run it between libcurl's global set-up and clean-up. `portolan backup`
 * is a command of its own; `portolan restore` (restore.c) is local like `cluster certs`.
 *
 * The commands live in cluster.c, replication.c, users.c, tokens.c, access.c and auditlog.c;
 * what they share is listed in cli_int.h.
 * The admin API's HTTP contract is written in base/admin_api.h.
 */
#include "cli.h"
#include "cli_int.h"

#include <string.h>

/* Runs command c with the arguments that follow its name (argv[0..argc), borrowed); usage
 * prints the help of c's group. */
static int run(enum cli_cmd c, int argc, char **argv, FILE *out, FILE *err, void (*usage)(FILE *))
{
    struct cli_opts o;
    int rc;

    for (int i = 0; i < argc; i++) {
        if (argv[i] != NULL && (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)) {
            usage(out);
            return PT_CLI_OK;
        }
    }
    rc = cli_args_parse(&o, c, argc, argv, err);
    if (rc != 0)
        return rc;
    if (c == CMD_AUDIT_VERIFY || c == CMD_AUDIT_TAIL)
        return cli_audit_run(&o, out, err);
    rc = cli_cred_resolve(&o, err);
    if (rc != 0)
        goto out;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(err, "portolan %s: cannot initialise libcurl\n", cli_cmd_titles[c]);
        rc = PT_CLI_FAILED;
        goto out;
    }
    if (c >= CMD_USER_ADD && c <= CMD_USER_PASSWD)
        rc = cli_user_run(&o, out, err);
    else if (c >= CMD_TOKEN_CREATE && c <= CMD_TOKEN_ENABLE)
        rc = cli_token_run(&o, out, err);
    else if (c >= CMD_ANON_LIST && c <= CMD_ROTATE_KEY)
        rc = cli_access_run(&o, out, err);
    else if (c == CMD_BACKUP)
        rc = cli_backup_run(&o, out, err);
    else if (c == CMD_GC_RUN || c == CMD_GC_STATUS)
        rc = cli_gc_run(&o, out, err);
    else if (c == CMD_STATUS)
        rc = cli_cluster_status(&o, out, err);
    else if (c == CMD_REPLICATION && o.has_image)
        rc = cli_replication_image(&o, out, err);
    else if (c == CMD_REPLICATION)
        rc = cli_replication_regions(&o, out, err);
    else
        rc = cli_cluster_change(&o, out, err);
    curl_global_cleanup();
out:
    explicit_bzero(&o.cred, sizeof o.cred);
    return rc;
}

static bool is_help(const char *a)
{
    return strcmp(a, "help") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

int pt_cli_cluster(int argc, char **argv, FILE *out, FILE *err)
{
    size_t c;

    if (argc < 1 || argv[0] == NULL) {
        pt_cli_cluster_usage(err);
        return PT_CLI_USAGE;
    }
    if (is_help(argv[0])) {
        pt_cli_cluster_usage(out);
        return PT_CLI_OK;
    }
    if (strcmp(argv[0], "certs") == 0)
        return cli_certs(argc - 1, argv + 1, out, err); /* local: no region is asked */
    for (c = 0; c < CLI_CLUSTER_CMDS; c++) {
        if (strcmp(argv[0], cli_cmd_names[c]) == 0)
            break;
    }
    if (c == CLI_CLUSTER_CMDS) {
        fprintf(err, "portolan cluster: unknown command \"%.64s\"\n", argv[0]);
        pt_cli_cluster_usage(err);
        return PT_CLI_USAGE;
    }
    return run((enum cli_cmd)c, argc - 1, argv + 1, out, err, pt_cli_cluster_usage);
}

int pt_cli_replication(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 1 || argv[0] == NULL) {
        pt_cli_replication_usage(err);
        return PT_CLI_USAGE;
    }
    if (is_help(argv[0])) {
        pt_cli_replication_usage(out);
        return PT_CLI_OK;
    }
    if (strcmp(argv[0], cli_cmd_names[CMD_REPLICATION]) != 0) {
        fprintf(err, "portolan replication: unknown command \"%.64s\"\n", argv[0]);
        pt_cli_replication_usage(err);
        return PT_CLI_USAGE;
    }
    return run(CMD_REPLICATION, argc - 1, argv + 1, out, err, pt_cli_replication_usage);
}

/*
 * Runs a command of a group whose commands are first..last in enum cli_cmd: argv[0] names
 * it (for words that take two, like "anonymous list", argv[0] and argv[1]).
 */
static int run_group(const char *group, enum cli_cmd first, enum cli_cmd last, int argc,
                     char **argv, FILE *out, FILE *err, void (*usage)(FILE *))
{
    if (argc < 1 || argv[0] == NULL) {
        usage(err);
        return PT_CLI_USAGE;
    }
    if (is_help(argv[0])) {
        usage(out);
        return PT_CLI_OK;
    }
    for (int c = (int)first; c <= (int)last; c++) {
        const char *name = cli_cmd_names[c], *sp = strchr(name, ' ');
        if (sp == NULL && strcmp(argv[0], name) == 0)
            return run((enum cli_cmd)c, argc - 1, argv + 1, out, err, usage);
        if (sp != NULL && argc >= 2 && argv[1] != NULL &&
            strncmp(argv[0], name, (size_t)(sp - name)) == 0 && argv[0][sp - name] == '\0' &&
            strcmp(argv[1], sp + 1) == 0)
            return run((enum cli_cmd)c, argc - 2, argv + 2, out, err, usage);
    }
    fprintf(err, "portolan %s: unknown command \"%.64s\"\n", group, argv[0]);
    usage(err);
    return PT_CLI_USAGE;
}

int pt_cli_backup(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc >= 1 && argv[0] != NULL && is_help(argv[0])) {
        pt_cli_backup_usage(out);
        return PT_CLI_OK;
    }
    return run(CMD_BACKUP, argc, argv, out, err, pt_cli_backup_usage);
}

int pt_cli_user(int argc, char **argv, FILE *out, FILE *err)
{
    return run_group("user", CMD_USER_ADD, CMD_USER_PASSWD, argc, argv, out, err,
                     pt_cli_user_usage);
}

int pt_cli_token(int argc, char **argv, FILE *out, FILE *err)
{
    return run_group("token", CMD_TOKEN_CREATE, CMD_TOKEN_ENABLE, argc, argv, out, err,
                     pt_cli_token_usage);
}

int pt_cli_auth(int argc, char **argv, FILE *out, FILE *err)
{
    return run_group("auth", CMD_ANON_LIST, CMD_ROTATE_KEY, argc, argv, out, err,
                     pt_cli_auth_usage);
}

int pt_cli_audit(int argc, char **argv, FILE *out, FILE *err)
{
    return run_group("audit", CMD_AUDIT_VERIFY, CMD_AUDIT_TAIL, argc, argv, out, err,
                     pt_cli_audit_usage);
}

int pt_cli_gc(int argc, char **argv, FILE *out, FILE *err)
{
    if (argc < 1 || argv[0] == NULL) {
        pt_cli_gc_usage(err);
        return PT_CLI_USAGE;
    }
    if (is_help(argv[0])) {
        pt_cli_gc_usage(out);
        return PT_CLI_OK;
    }
    enum cli_cmd c = strcmp(argv[0], "run") == 0      ? CMD_GC_RUN
                     : strcmp(argv[0], "status") == 0 ? CMD_GC_STATUS
                                                      : CMD_COUNT;
    if (c == CMD_COUNT) {
        fprintf(err, "portolan gc: unknown command \"%.64s\"\n", argv[0]);
        pt_cli_gc_usage(err);
        return PT_CLI_USAGE;
    }
    return run(c, argc - 1, argv + 1, out, err, pt_cli_gc_usage);
}
