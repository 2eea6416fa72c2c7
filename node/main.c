/*
 * main.c - the `portolan` command: argv, subcommands, exit codes. No logic lives here.
 *
 *   portolan serve [flags]    run a registry node (see `portolan serve --help`)
 *   portolan cluster ...      inspect and change a cluster (see `portolan cluster help`)
 *   portolan replication ...  blob replication of the regions or of one image
 *   portolan user|token|auth ...  users, access tokens, anonymous access, signing keys
 *   portolan audit ...        verify or follow the audit log
 *   portolan backup ...       a consistent backup of a running region (on its volume)
 *   portolan restore ...      a new data directory from a backup (offline)
 *   portolan gc ...           run or inspect garbage collection of blobs
 *   portolan quota|throttle ...   storage quotas, request throttling
 *   portolan repo list ...    repositories and their usage
 *   portolan version          print the version
 *   portolan help             print this summary
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "config.h"
#include "log.h"
#include "server.h"

extern char **environ;

static void usage(FILE *out)
{
    fprintf(out, "usage: portolan <command> [flags]\n\n"
                 "commands:\n"
                 "  serve         run a registry node (portolan serve --help lists its flags)\n"
                 "  cluster       status, add, remove, transfer-leader (portolan cluster help)\n"
                 "  replication   status of blob replication (portolan replication help)\n"
                 "  user          add, remove, list users, change passwords (portolan user help)\n"
                 "  token         create, list, revoke, disable, enable access tokens\n"
                 "  auth          anonymous pull rules, whoami, rotate-key (portolan auth help)\n"
                 "  audit         verify or tail the audit log (portolan audit help)\n"
                 "  backup        back up a running region (portolan backup --help)\n"
                 "  restore       a data directory from a backup (portolan restore --help)\n"
                 "  gc            garbage collection of blobs (portolan gc help)\n"
                 "  quota         storage quotas: set, list, remove (portolan quota help)\n"
                 "  throttle      request limits: set, list, remove (portolan throttle help)\n"
                 "  repo list     repositories, with --usage their bytes, blobs, manifests, tags\n"
                 "  version       print the version\n"
                 "  help          print this help\n");
}

static int serve(int argc, char **argv)
{
    for (int i = 0; i < argc; i++) {
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: portolan serve [flags]\n\n");
            pt_config_usage(stdout);
            return 0;
        }
    }
    struct pt_config cfg;
    char err[512] = "";
    pt_config_defaults(&cfg);
    if (pt_config_parse(&cfg, argc, argv, environ, err, sizeof(err)) != 0 ||
        pt_config_validate(&cfg, err, sizeof(err)) != 0) {
        fprintf(stderr, "portolan serve: %s\n", err);
        return 2;
    }
    pt_log_set_level(cfg.log_level);
    return pt_server_run(&cfg) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "serve") == 0)
        return serve(argc - 2, argv + 2);
    if (strcmp(cmd, "cluster") == 0)
        return pt_cli_cluster(argc - 2, argv + 2, stdout, stderr);
    if (strcmp(cmd, "replication") == 0)
        return pt_cli_replication(argc - 2, argv + 2, stdout, stderr);
    if (strcmp(cmd, "user") == 0)
        return pt_cli_user(argc - 2, argv + 2, stdout, stderr);
    if (strcmp(cmd, "token") == 0)
        return pt_cli_token(argc - 2, argv + 2, stdout, stderr);
    if (strcmp(cmd, "backup") == 0)
        return pt_cli_backup(argc - 2, argv + 2, stdout, stderr);
    if (strcmp(cmd, "restore") == 0)
        return pt_cli_restore(argc - 2, argv + 2, stdout, stderr);
    if (strcmp(cmd, "auth") == 0)
        return pt_cli_auth(argc - 2, argv + 2, stdout, stderr);
    if (strcmp(cmd, "audit") == 0)
        return pt_cli_audit(argc - 2, argv + 2, stdout, stderr);
    if (strcmp(cmd, "gc") == 0)
        return pt_cli_gc(argc - 2, argv + 2, stdout, stderr);
    if (strcmp(cmd, "quota") == 0)
        return pt_cli_quota(argc - 2, argv + 2, stdout, stderr);
    if (strcmp(cmd, "throttle") == 0)
        return pt_cli_throttle(argc - 2, argv + 2, stdout, stderr);
    if (strcmp(cmd, "repo") == 0 && argc > 2 && strcmp(argv[2], "list") == 0)
        return pt_cli_repo_list(argc - 3, argv + 3, stdout, stderr);
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("portolan %s\n", PT_VERSION);
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "portolan: unknown command '%s'\n", cmd);
    usage(stderr);
    return 2;
}
