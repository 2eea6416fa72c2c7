/*
 * cli_run.c - a subcommand run in-process with its output captured in memory (see
 * cli_run.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "cli_run.h"

struct pt_cli_run pt_cli_run_capture(pt_cli_cmd_fn cmd, int argc, char **argv)
{
    struct pt_cli_run r = {0};
    size_t ol = 0, el = 0;
    FILE *out = open_memstream(&r.out, &ol), *err = open_memstream(&r.err, &el);

    assert_non_null(out);
    assert_non_null(err);
    r.rc = cmd(argc, argv, out, err);
    assert_int_equal(fclose(out), 0);
    assert_int_equal(fclose(err), 0);
    return r;
}

void pt_cli_run_free(struct pt_cli_run *r)
{
    free(r->out);
    free(r->err);
}

void pt_cli_run_expect_in(const char *hay, const char *needle)
{
    if (strstr(hay, needle) == NULL)
        fail_msg("\"%s\" not found in:\n%s", needle, hay);
}
