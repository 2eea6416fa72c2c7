/*
 * cli.h - `portolan cluster ...` and `portolan replication status`: the operator's client for
 * a cluster's admin API.
 *
 *   portolan cluster status          --region URL [--json] [--cacert FILE] [--timeout DURATION]
 *   portolan cluster add             --region URL --name N --id I --address A --url U
 *                                    [--role voter|standby] [--json] [--cacert FILE]
 *   portolan cluster remove          --region URL --id I [--json] [--cacert FILE]
 *   portolan cluster transfer-leader --region URL [--id I] [--json] [--cacert FILE]
 *   portolan replication status [NAME:TAG | NAME@DIGEST] --region URL [--json] [--cacert FILE]
 *                                    [--timeout DURATION]
 *
 * --region is the client URL of any region of the cluster; the admin requests go there (a
 * region may redirect membership changes to the leader). status then asks every configured
 * region for its own view, in parallel with a short time limit each, and prints one table
 * (or with --json one merged document). replication status without an image asks every
 * region of the cluster for its blob replication status in the same way, one line per region
 * (--json: {"regions": [each status, or {"region", "url", "error"}]}); with an image it
 * prints which regions hold all of its blobs and what each other region lacks. The HTTP
 * contract these commands expect from a node is written in base/admin_api.h; how the client
 * is built, in cli/cli_int.h.
 *
 * The access control commands (user, token, auth) and the audit log's (audit) are below.
 *
 * Exit codes: PT_CLI_OK (0) when the request succeeded, PT_CLI_FAILED (1) when it could not
 * be sent, the region answered with an error, or (replication status) some region did not
 * answer, PT_CLI_USAGE (2) for bad arguments.
 */
#ifndef PT_CLI_H
#define PT_CLI_H

#include <stdio.h>

enum { PT_CLI_OK = 0, PT_CLI_FAILED = 1, PT_CLI_USAGE = 2 };

/*
 * Runs one `portolan cluster` command. argv[0..argc) (borrowed) starts with the subcommand
 * ("status", "add", "remove", "transfer-leader", "help"). Results go to out, messages and
 * errors to err (both borrowed). Blocks until the requests finished or timed out. Uses
 * libcurl's global state (curl_global_init/cleanup), so it must not run while another
 * thread of the process uses libcurl. Returns PT_CLI_OK, PT_CLI_FAILED or PT_CLI_USAGE.
 */
int pt_cli_cluster(int argc, char **argv, FILE *out, FILE *err);

/* Writes the usage of every `portolan cluster` command to out (borrowed). */
void pt_cli_cluster_usage(FILE *out);

/* Runs one `portolan replication` command: argv[0] is "status" (or "help"), then the optional
 * image and the flags. Same conventions and return values as pt_cli_cluster. */
int pt_cli_replication(int argc, char **argv, FILE *out, FILE *err);

/* Writes the usage of `portolan replication status` to out (borrowed). */
void pt_cli_replication_usage(FILE *out);

/*
 * The access control commands, with the conventions of pt_cli_cluster: argv[0] is the
 * command ("add", "list", ...; for pt_cli_auth "anonymous" and its verb, "whoami",
 * "rotate-key"), then its operand and flags. Each request carries the credentials found as
 * the usage texts describe; secrets are read from standard input (pt_cli_set_input) or the
 * terminal and never printed, except the secret of a new token, once.
 *
 *   portolan user add NAME [--grant G]... [--admin] | remove NAME | list | passwd NAME
 *   portolan token create --grant G [--grant G]... [--id ID] [--expires 30d]
 *                         [--description TEXT] | list | revoke ID | disable ID | enable ID
 *   portolan auth anonymous list | anonymous add PATTERN | anonymous remove PATTERN |
 *                 whoami | rotate-key
 *   every one: --region URL [--user NAME [--password-stdin]] [--json] [--cacert FILE]
 *              [--timeout D]
 */
int pt_cli_user(int argc, char **argv, FILE *out, FILE *err);
int pt_cli_token(int argc, char **argv, FILE *out, FILE *err);
int pt_cli_auth(int argc, char **argv, FILE *out, FILE *err);
void pt_cli_user_usage(FILE *out);
void pt_cli_token_usage(FILE *out);
void pt_cli_auth_usage(FILE *out);

/*
 * `portolan audit verify [--data-dir DIR | FILE...]` and `portolan audit tail [--data-dir DIR]
 * [-n N] [--follow]`: the region's audit log (audit/audit.h), read from local files. Same
 * conventions; verify returns PT_CLI_FAILED when the chain is broken. tail --follow returns
 * only when out cannot be written or the log cannot be read.
 */
int pt_cli_audit(int argc, char **argv, FILE *out, FILE *err);
void pt_cli_audit_usage(FILE *out);

/*
 * `portolan backup --region URL [--json]`: a consistent backup written by the region under its
 * data directory (store/backup.h, POST /admin/backup); `portolan restore --from DIR --data-dir
 * DIR`: makes a new data directory from a backup, offline (restore.c). Same conventions.
 */
int pt_cli_backup(int argc, char **argv, FILE *out, FILE *err);
void pt_cli_backup_usage(FILE *out);
int pt_cli_restore(int argc, char **argv, FILE *out, FILE *err);
void pt_cli_restore_usage(FILE *out);
/* `portolan gc run [--dry-run]` and `portolan gc status` (garbage collection of blobs, GET and
 * POST /admin/gc): argv[0] is "run", "status" or "help", then the flags. Same conventions;
 * run returns PT_CLI_FAILED when the pass ended with an error. */
int pt_cli_gc(int argc, char **argv, FILE *out, FILE *err);
void pt_cli_gc_usage(FILE *out);

/* `portolan quota set|list|remove`, `portolan throttle set|list|remove` and `portolan repo
 * list [--usage]` (storage quotas, request throttling, repository usage; /admin/quotas,
 * /admin/throttles, /admin/repos): argv[0] is the verb (repo: after "list"), then operands
 * and flags. Same conventions. */
int pt_cli_quota(int argc, char **argv, FILE *out, FILE *err);
void pt_cli_quota_usage(FILE *out);
int pt_cli_throttle(int argc, char **argv, FILE *out, FILE *err);
void pt_cli_throttle_usage(FILE *out);
int pt_cli_repo_list(int argc, char **argv, FILE *out, FILE *err);
void pt_cli_repo_list_usage(FILE *out);

/* Sets the stream secrets are read from (borrowed; NULL restores stdin). For tests. */
void pt_cli_set_input(FILE *in);

#endif
