/*
 * cli_run.h - running a `portolan` subcommand (node/cli/cli.h: pt_cli_cluster,
 * pt_cli_replication, ...) in-process from a unit test and keeping what it printed.
 *
 * Design: the command's out and err streams are open_memstream buffers, so a test sees the
 * exact text and exit status a user would, without a child process. The caller then looks
 * for lines in that text with pt_cli_run_expect_in.
 */
#ifndef PT_TEST_CLI_RUN_H
#define PT_TEST_CLI_RUN_H

#include <stdio.h>

/* A subcommand's entry point, as node/cli/cli.h declares them: argv borrowed, out and err the
 * streams it prints to (borrowed). Returns its PT_CLI_* exit status. */
typedef int (*pt_cli_cmd_fn)(int argc, char **argv, FILE *out, FILE *err);

/* What one run printed and returned. out and err are owned, NUL-terminated, freed by
 * pt_cli_run_free. */
struct pt_cli_run {
    int rc;
    char *out, *err;
};

/* Runs cmd with argc and argv (borrowed) and returns its exit status and output (owned by
 * the caller). Fails the test if the streams cannot be opened or closed. */
struct pt_cli_run pt_cli_run_capture(pt_cli_cmd_fn cmd, int argc, char **argv);

/* Frees what r (borrowed) owns; r's text pointers are left dangling. */
void pt_cli_run_free(struct pt_cli_run *r);

/* Fails the test, showing both, unless needle (borrowed) occurs in hay (borrowed). */
void pt_cli_run_expect_in(const char *hay, const char *needle);

/* Runs cmd with the string literals that follow as its argv. */
#define PT_CLI_RUN(cmd, ...)                                                                       \
    ({                                                                                             \
        char *argv_[] = {__VA_ARGS__};                                                             \
        pt_cli_run_capture((cmd), (int)(sizeof argv_ / sizeof argv_[0]), argv_);                   \
    })

#endif
