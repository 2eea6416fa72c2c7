/*
 * test_diskspace.c - the free-space reserve (node/base/diskspace.h): the syntax of
 * --disk-reserve, the reserve a setting gives on a filesystem, the low flag and the refusal
 * counter as sampled on a real directory (with the simulated-use seam standing in for a full
 * disk), their /metrics series, and the FSM's refusal below the reserve, which leaves the store
 * writable once space returns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "diskspace.h"
#include "err.h"
#include "fsm.h"
#include "log.h"
#include "metastore.h"
#include "metrics.h"
#include "units.h"

static void test_reserve_syntax(void **state)
{
    (void)state;
    struct pt_disk_reserve r;
    assert_int_equal(pt_disk_reserve_parse("", &r), 0);
    assert_true(r.automatic);
    assert_int_equal(pt_disk_reserve_parse("auto", &r), 0);
    assert_true(r.automatic);
    assert_int_equal(pt_disk_reserve_parse("2GiB", &r), 0);
    assert_false(r.automatic);
    assert_int_equal(r.bytes, 2 * PT_GIB);
    assert_int_equal(r.percent_x100, 0);
    assert_int_equal(pt_disk_reserve_parse("0", &r), 0);
    assert_int_equal(r.bytes, 0);
    assert_int_equal(pt_disk_reserve_parse("5%", &r), 0);
    assert_int_equal(r.percent_x100, 500);
    assert_int_equal(pt_disk_reserve_parse("2.5%", &r), 0);
    assert_int_equal(r.percent_x100, 250);
    assert_int_equal(pt_disk_reserve_parse("0.25%", &r), 0);
    assert_int_equal(r.percent_x100, 25);
    assert_int_equal(pt_disk_reserve_parse("50%", &r), 0);
    assert_int_equal(r.percent_x100, 5000);

    const char *bad[] = {"%",
                         "0%",
                         "51%",
                         "100%",
                         "-1%",
                         "5.%",
                         "5.123%",
                         "5%%",
                         "x%",
                         " 5%",
                         "5 %",
                         "GiB",
                         "1.5GB",
                         "auto ",
                         "1e3",
                         "99999999999999999999%",
                         "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(pt_disk_reserve_parse(bad[i], &r), PT_E_CONFIG);
}

static void test_reserve_bytes(void **state)
{
    (void)state;
    struct pt_disk_reserve autom = {.automatic = true}, pct = {.percent_x100 = 1000},
                           fixed = {.bytes = 123};
    /* auto: 5%, at most 2 GiB */
    assert_int_equal(pt_disk_reserve_bytes(&autom, 10 * PT_GIB), 10 * PT_GIB / 10000 * 500);
    assert_int_equal(pt_disk_reserve_bytes(&autom, 1000 * PT_GIB), 2 * PT_GIB);
    assert_int_equal(pt_disk_reserve_bytes(&pct, 100 * PT_MIB), 100 * PT_MIB / 10000 * 1000);
    assert_int_equal(pt_disk_reserve_bytes(&fixed, PT_TIB), 123);
}

static int count(const char *text, const char *needle)
{
    int n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p++)
        n++;
    return n;
}

static void test_watcher(void **state)
{
    (void)state;
    struct pt_disk_state d;
    struct pt_disk_reserve r = {.bytes = PT_MIB};
    /* not watching: never low, no series */
    pt_disk_init(NULL, 0, &r);
    assert_false(pt_disk_low(UINT64_MAX / 4));
    pt_disk_sample(&d);
    assert_false(d.watching);
    char *text;
    size_t len;
    assert_int_equal(pt_metrics_render(&text, &len), 0);
    assert_int_equal(count(text, "portolan_disk_"), 0);
    free(text);

    char dir[] = "/tmp/pt-test-disk-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char missing[64];
    snprintf(missing, sizeof missing, "%s/not/yet", dir); /* measured on dir */
    const char *paths[] = {dir, missing};
    int devnull = open("/dev/null", O_WRONLY);
    assert_true(devnull >= 0);
    int saved = pt_log_set_fd(devnull);
    pt_disk_init(paths, 2, &r);
    pt_disk_sample(&d);
    assert_true(d.watching);
    if (d.free_bytes < 64 * PT_MIB) {
        /* the machine's own disk is nearly full: the checks below need headroom */
        pt_log_set_fd(saved);
        close(devnull);
        rmdir(dir);
        pt_disk_init(NULL, 0, &r);
        skip();
    }
    assert_false(d.low);
    assert_int_equal(d.reserve_bytes, PT_MIB);
    assert_false(pt_disk_low(0));
    assert_true(pt_disk_low(d.free_bytes)); /* a write that would eat into the reserve */
    pt_disk_sample(&d);
    assert_false(d.low); /* the flag is about the disk, not about that write */

    pt_disk_set_simulated_use(d.free_bytes - PT_MIB / 2);
    assert_true(pt_disk_low(0));
    pt_disk_refused();
    pt_disk_refused();
    pt_disk_sample(&d);
    assert_true(d.low);
    assert_true(d.free_bytes <= PT_MIB);
    assert_true(d.refusals >= 2);
    assert_int_equal(pt_metrics_render(&text, &len), 0);
    assert_non_null(strstr(text, "portolan_disk_low 1\n"));
    assert_non_null(strstr(text, "portolan_disk_reserve_bytes 1048576\n"));
    assert_non_null(strstr(text, "# TYPE portolan_disk_refusals_total counter\n"));
    assert_non_null(strstr(text, "# TYPE portolan_disk_free_bytes gauge\n"));
    free(text);

    pt_disk_set_simulated_use(0);
    assert_false(pt_disk_low(0));
    assert_int_equal(pt_metrics_render(&text, &len), 0);
    assert_non_null(strstr(text, "portolan_disk_low 0\n"));
    free(text);

    pt_disk_init(NULL, 0, &r);
    pt_log_set_fd(saved);
    close(devnull);
    rmdir(dir);
}

/* The FSM refuses below the reserve without halting, in both apply paths. */
static void test_fsm_refuses_without_halting(void **state)
{
    (void)state;
    char dir[] = "/tmp/pt-test-disk-XXXXXX";
    assert_non_null(mkdtemp(dir));
    char meta[64];
    snprintf(meta, sizeof meta, "%s/meta", dir);
    struct pt_metastore *ms;
    assert_int_equal(pt_metastore_open(meta, &ms), 0);
    assert_false(pt_metastore_read_only(ms));

    struct pt_command_builder b;
    assert_int_equal(pt_command_builder_init(&b, 1000, "local"), 0);
    assert_int_equal(pt_command_add_link_blob(&b, "team/app",
                                              "sha256:0000000000000000000000000000000000000000"
                                              "000000000000000000000000",
                                              10),
                     0);
    void *cmd;
    size_t len;
    assert_int_equal(pt_command_builder_encode(&b, &cmd, &len), 0);
    pt_command_builder_free(&b);

    const char *paths[] = {dir};
    struct pt_disk_reserve r = {.bytes = 0};
    int devnull = open("/dev/null", O_WRONLY);
    assert_true(devnull >= 0);
    int saved = pt_log_set_fd(devnull);
    pt_disk_init(paths, 1, &r);
    pt_disk_set_simulated_use(UINT64_MAX / 2);

    struct pt_fsm_result res;
    assert_int_equal(pt_fsm_apply(ms, cmd, len, 1, &res), PT_E_DISK_FULL);
    struct pt_fsm_cmd group = {.buf = cmd, .len = len};
    assert_int_equal(pt_fsm_apply_group(ms, &group, 1), PT_E_DISK_FULL);
    assert_int_equal(group.result.status, PT_E_DISK_FULL);
    assert_int_equal(group.index, 0);
    assert_int_equal(pt_metastore_upload_put(ms, "u1", "x", 1), PT_E_DISK_FULL);
    assert_int_equal(pt_metastore_halted(ms), 0);
    assert_int_equal(pt_metastore_applied_index(ms), 0);

    pt_disk_set_simulated_use(0);
    assert_int_equal(pt_fsm_apply_group(ms, &group, 1), 0);
    assert_int_equal(group.result.status, 0);
    assert_int_equal(pt_metastore_applied_index(ms), 1);
    assert_int_equal(pt_metastore_blob_linked(ms, "team/app",
                                              "sha256:0000000000000000000000000000000000000000"
                                              "000000000000000000000000",
                                              NULL),
                     0);
    assert_int_equal(pt_metastore_upload_put(ms, "u1", "x", 1), 0);

    pt_disk_init(NULL, 0, &r);
    pt_log_set_fd(saved);
    close(devnull);
    free(cmd);
    pt_metastore_close(ms);
    char rm[128];
    snprintf(rm, sizeof rm, "rm -rf %s", dir);
    assert_int_equal(system(rm), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reserve_syntax),
        cmocka_unit_test(test_reserve_bytes),
        cmocka_unit_test(test_watcher),
        cmocka_unit_test(test_fsm_refuses_without_halting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
