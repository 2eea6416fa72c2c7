/*
 * cli.c - the entry points of `portolan cluster ...` and `portolan replication ...` (cli.h):
 * pick the command, answer help, parse its arguments (args.c), and run it between libcurl's
 * global set-up and clean-up.
 *
 * The commands live in cluster.c and replication.c; what they share is listed in cli_int.h.
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
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(err, "portolan %s: cannot initialise libcurl\n", cli_cmd_titles[c]);
        return PT_CLI_FAILED;
    }
    if (c == CMD_STATUS)
        rc = cli_cluster_status(&o, out, err);
    else if (c == CMD_REPLICATION && o.has_image)
        rc = cli_replication_image(&o, out, err);
    else if (c == CMD_REPLICATION)
        rc = cli_replication_regions(&o, out, err);
    else
        rc = cli_cluster_change(&o, out, err);
    curl_global_cleanup();
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
