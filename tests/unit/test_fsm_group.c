/*
 * test_fsm_group.c - group commit in the FSM (several commands in one synced write): later
 * commands see earlier ones, a failed precondition or an undecodable command stays alone, and
 * a failed write (injected through the metastore's fault seam) leaves nothing visible and
 * halts the store until it is reopened.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "command.h"
#include "digest.h"
#include "err.h"
#include "fsm.h"
#include "metastore.h"
#include "support/ff_fixture.h"
#include "support/text_digest.h"

static void group_cmd(struct pt_command_builder *b, struct pt_fsm_cmd *cmd)
{
    void *buf;
    assert_int_equal(pt_command_builder_encode(b, &buf, &cmd->len), 0);
    pt_command_builder_free(b);
    cmd->buf = buf;
    cmd->index = 12345;
}

static void group_free(struct pt_fsm_cmd *cmds, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free((void *)cmds[i].buf);
}

static int devnull = -1;

/* Sends the log to /dev/null (the failures below are logged on purpose) until loud(). */
static int quiet(void)
{
    devnull = open("/dev/null", O_WRONLY);
    assert_true(devnull >= 0);
    return pt_log_set_fd(devnull);
}

static void loud(int saved)
{
    pt_log_set_fd(saved);
    close(devnull);
}

static void test_group(void **state)
{
    struct pt_ff_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1], m[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("blob", d);
    pt_text_digest("{}", m);
    struct pt_command_builder b;
    struct pt_fsm_cmd cmds[4];

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0); /* index 1 */

    /* 0: unlinks the blob; 1: a manifest over it (fails: the unlink is seen); 2: does not
     * decode; 3: links it again and stores the manifest (sees 0, not 1) */
    pt_ff_builder(&b, PT_FF_T0 + 1);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", d), 0);
    group_cmd(&b, &cmds[0]);
    pt_ff_builder(&b, PT_FF_T0 + 2);
    const char *blobs[] = {d};
    pt_ff_add_manifest(&b, "r", "{}", "latest", NULL, blobs, 1, NULL, 0);
    group_cmd(&b, &cmds[1]);
    cmds[2] = (struct pt_fsm_cmd){.buf = strdup("junk"), .len = 4, .index = 7};
    pt_ff_builder(&b, PT_FF_T0 + 3);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    pt_ff_add_manifest(&b, "r", "{}", "v1", NULL, blobs, 1, NULL, 0);
    group_cmd(&b, &cmds[3]);

    assert_int_equal(pt_fsm_apply_group(f->ms[0], cmds, 4), 0);
    assert_int_equal(cmds[0].index, 2);
    assert_int_equal(cmds[0].result.status, 0);
    assert_int_equal(cmds[1].index, 3); /* a failed precondition still takes an index */
    assert_int_equal(cmds[1].result.status, PT_E_MANIFEST_BLOB_UNKNOWN);
    assert_int_equal(cmds[2].index, 0); /* refused alone: no index */
    assert_int_equal(cmds[2].result.status, PT_E_CORRUPT);
    assert_int_equal(cmds[3].index, 4);
    assert_int_equal(cmds[3].result.status, 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 4);
    char tag[PT_DIGEST_STR_MAX + 1];
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "latest", tag), PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_get_tag(f->ms[0], "r", "v1", tag), 0);
    assert_string_equal(tag, m);
    group_free(cmds, 4);

    /* the same commands one by one give the same state */
    char one[65], many[65];
    pt_ff_digest_state(f->ms[0], many);
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    assert_int_equal(pt_ff_apply_to(f->ms[1], &b, 1), 0);
    pt_ff_builder(&b, PT_FF_T0 + 1);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", d), 0);
    assert_int_equal(pt_ff_apply_to(f->ms[1], &b, 2), 0);
    pt_ff_builder(&b, PT_FF_T0 + 2);
    pt_ff_add_manifest(&b, "r", "{}", "latest", NULL, blobs, 1, NULL, 0);
    assert_int_equal(pt_ff_apply_to(f->ms[1], &b, 3), PT_E_MANIFEST_BLOB_UNKNOWN);
    pt_ff_builder(&b, PT_FF_T0 + 3);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    pt_ff_add_manifest(&b, "r", "{}", "v1", NULL, blobs, 1, NULL, 0);
    assert_int_equal(pt_ff_apply_to(f->ms[1], &b, 4), 0);
    pt_ff_digest_state(f->ms[1], one);
    assert_string_equal(one, many);

    /* a group of nothing but undecodable commands writes nothing */
    cmds[0] = (struct pt_fsm_cmd){.buf = strdup("junk"), .len = 4};
    assert_int_equal(pt_fsm_apply_group(f->ms[0], cmds, 1), 0);
    assert_int_equal(cmds[0].result.status, PT_E_CORRUPT);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 4);
    group_free(cmds, 1);
    assert_int_equal(pt_metastore_halted(f->ms[0]), 0);
}

static void test_group_write_failure(void **state)
{
    struct pt_ff_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1], e[PT_DIGEST_STR_MAX + 1], before[65], after[65];
    pt_text_digest("blob", d);
    pt_text_digest("else", e);
    struct pt_command_builder b;
    struct pt_fsm_cmd cmds[3];

    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    assert_int_equal(pt_ff_apply(f, &b), 0);
    pt_ff_digest_state(f->ms[0], before);

    /* the group's one synced write fails (a WAL write or fsync error): no command of it is
     * visible, every one carries the error, the index stays */
    pt_ff_builder(&b, PT_FF_T0 + 1);
    assert_int_equal(pt_command_add_link_blob(&b, "r", e, 4), 0);
    group_cmd(&b, &cmds[0]);
    pt_ff_builder(&b, PT_FF_T0 + 2);
    assert_int_equal(pt_command_add_unlink_blob(&b, "r", d), 0);
    group_cmd(&b, &cmds[1]);
    pt_ff_builder(&b, PT_FF_T0 + 3);
    assert_int_equal(pt_command_add_delete_tag(&b, "r", "absent"), 0);
    group_cmd(&b, &cmds[2]);
    int saved = quiet();
    pt_metastore_fail_next_commit(f->ms[0], PT_E_IO);
    assert_int_equal(pt_fsm_apply_group(f->ms[0], cmds, 3), PT_E_IO);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(cmds[i].index, 0);
        assert_int_equal(cmds[i].result.status, PT_E_IO);
    }
    pt_ff_digest_state(f->ms[0], after);
    assert_string_equal(before, after);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 1);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", e, NULL), PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), 0);

    /* the log stopped: the next group and a single apply at that index are refused, even
     * though the fault is gone, and nothing changes */
    assert_int_equal(pt_metastore_halted(f->ms[0]), PT_E_IO);
    assert_int_equal(pt_fsm_apply_group(f->ms[0], cmds, 3), PT_E_IO);
    assert_int_equal(cmds[0].index, 0);
    struct pt_fsm_result res;
    assert_int_equal(pt_fsm_apply(f->ms[0], cmds[0].buf, cmds[0].len, 2, &res), PT_E_IO);
    assert_int_equal(res.status, PT_E_IO);
    loud(saved);
    pt_ff_digest_state(f->ms[0], after);
    assert_string_equal(before, after);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 1);

    /* a restart (reopen) goes on from the last durable index */
    pt_metastore_close(f->ms[0]);
    assert_int_equal(pt_metastore_open(f->db[0], &f->ms[0]), 0);
    assert_int_equal(pt_metastore_halted(f->ms[0]), 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 1);
    assert_int_equal(pt_fsm_apply_group(f->ms[0], cmds, 3), 0);
    assert_int_equal(cmds[0].index, 2);
    assert_int_equal(cmds[1].index, 3);
    assert_int_equal(cmds[2].index, 4);
    assert_int_equal(cmds[2].result.status, PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", e, NULL), 0);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), PT_E_BLOB_UNKNOWN);
    group_free(cmds, 3);
}

/* A single apply (the Raft path) whose write fails halts the store as well. */
static void test_apply_write_failure(void **state)
{
    struct pt_ff_fixture *f = *state;
    char d[PT_DIGEST_STR_MAX + 1];
    pt_text_digest("blob", d);
    struct pt_command_builder b;
    struct pt_fsm_cmd cmd;
    pt_ff_builder(&b, PT_FF_T0);
    assert_int_equal(pt_command_add_link_blob(&b, "r", d, 4), 0);
    group_cmd(&b, &cmd);

    int saved = quiet();
    pt_metastore_fail_next_commit(f->ms[0], PT_E_IO);
    struct pt_fsm_result res;
    assert_int_equal(pt_fsm_apply(f->ms[0], cmd.buf, cmd.len, 1, &res), PT_E_IO);
    assert_int_equal(pt_fsm_apply(f->ms[0], cmd.buf, cmd.len, 1, &res), PT_E_IO);
    assert_int_equal(pt_fsm_apply(f->ms[0], cmd.buf, cmd.len, 2, &res), PT_E_IO);
    loud(saved);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 0);
    assert_int_equal(pt_metastore_blob_linked(f->ms[0], "r", d, NULL), PT_E_BLOB_UNKNOWN);
    /* a halted store takes no snapshot restore either */
    void *snap;
    size_t len;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot(f->ms[1], &snap, &len, &index), 0);
    assert_int_equal(pt_metastore_restore(f->ms[0], snap, len), PT_E_IO);
    free(snap);
    free((void *)cmd.buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_group, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_group_write_failure, pt_ff_setup, pt_ff_teardown),
        cmocka_unit_test_setup_teardown(test_apply_write_failure, pt_ff_setup, pt_ff_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
