/*
 * test_readyz.c - readiness (pt_api_ready, api_base.c): a region is ready once caught up and
 * not draining, with a working metadata store; the reasons come in their documented order
 * (draining, store halted, then the start-up catch-up: no leader known yet, catching up).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "err.h"
#include "metastore.h"
#include "raft_node.h"
#include "support/tmpdir.h"
#include "worker.h"

static struct pt_node node;

static const char *reason_of(int *ready)
{
    const char *reason = "unset";
    *ready = pt_api_ready(&node, &reason);
    return reason;
}

static void test_catch_up_then_ready(void **state)
{
    int ready;
    (void)state;
    memset(&node, 0, sizeof node);
    assert_string_equal(reason_of(&ready), "no leader known yet");
    assert_int_equal(ready, 0);
    atomic_store(&node.progress, PT_RAFT_CATCHING_UP);
    assert_string_equal(reason_of(&ready), "catching up with the leader");
    assert_int_equal(ready, 0);
    atomic_store(&node.progress, PT_RAFT_CAUGHT_UP);
    assert_null(reason_of(&ready));
    assert_int_equal(ready, 1);
}

static void test_draining_wins(void **state)
{
    int ready;
    (void)state;
    memset(&node, 0, sizeof node);
    atomic_store(&node.draining, 1);
    assert_string_equal(reason_of(&ready), "draining");
    assert_int_equal(ready, 0);
    atomic_store(&node.progress, PT_RAFT_CAUGHT_UP);
    assert_string_equal(reason_of(&ready), "draining");
    assert_int_equal(ready, 0);
}

static void test_halted_store(void **state)
{
    char dir[256], meta[300];
    int ready;
    (void)state;
    memset(&node, 0, sizeof node);
    pt_tmpdir_create(dir, sizeof dir, "pt_readyz_");
    snprintf(meta, sizeof meta, "%s/meta", dir);
    assert_int_equal(pt_metastore_open(meta, &node.ms), 0);
    atomic_store(&node.progress, PT_RAFT_CAUGHT_UP);
    assert_null(reason_of(&ready));
    assert_int_equal(ready, 1);
    pt_metastore_halt(node.ms, PT_E_IO);
    assert_string_equal(reason_of(&ready), "store halted");
    assert_int_equal(ready, 0);
    atomic_store(&node.draining, 1);
    assert_string_equal(reason_of(&ready), "draining");
    pt_metastore_close(node.ms);
    node.ms = NULL;
    assert_int_equal(pt_tmpdir_remove(dir), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_catch_up_then_ready),
        cmocka_unit_test(test_draining_wins),
        cmocka_unit_test(test_halted_store),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
