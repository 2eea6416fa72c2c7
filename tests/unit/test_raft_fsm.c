/*
 * test_raft_fsm.c - the canonical/raft FSM adapter (replication/raft_fsm.c) called the way raft
 * calls it, without a running cluster.
 *
 * Snapshot and restore hand buffers across the boundary with raft's allocator, a damaged or
 * already applied snapshot is refused or skipped, results and errors translate both ways. Then
 * apply is called the way raft calls it after a failure: a server whose apply failed (a write
 * failure injected through the metastore's fault seam, or a committed entry that does not
 * decode) refuses that entry when raft offers it again, and everything after it, even once the
 * fault is gone, until its store is reopened. The clusters are in test_raft_fsm_cluster.c, the
 * snapshot stream itself in test_raft_fsm_snapshot.c.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <raft.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "command.h"
#include "diskspace.h"
#include "err.h"
#include "log.h"
#include "metastore.h"
#include "raft_fsm.h"
#include "support/fsm_cluster.h"
#include "support/workload.h"

/* ---- adapter callbacks without a cluster --------------------------------------------------- */

static void test_adapter_callbacks(void **state)
{
    struct pt_fsm_cluster *f = *state;
    pt_workload_push(f->ms[0], 1, 11);
    struct pt_raft_fsm *src = &f->fsm[0], *dst = &f->fsm[1];
    pt_raft_fsm_init(src, f->ms[0], NULL);
    pt_raft_fsm_init(dst, f->ms[1], NULL);
    assert_int_equal(src->fsm.version, 1);
    assert_ptr_equal(src->fsm.data, src);

    struct raft_buffer *bufs;
    unsigned n_bufs;
    assert_int_equal(src->fsm.snapshot(&src->fsm, &bufs, &n_bufs), 0);
    assert_int_equal(n_bufs, 1);
    assert_int_equal(src->n_snapshots, 1);
    struct raft_buffer copy = {.base = raft_malloc(bufs[0].len), .len = bufs[0].len};
    memcpy(copy.base, bufs[0].base, copy.len);

    /* a damaged snapshot is refused and stays the caller's */
    struct raft_buffer bad = {.base = raft_malloc(copy.len), .len = copy.len};
    memcpy(bad.base, copy.base, copy.len);
    ((unsigned char *)bad.base)[copy.len / 2] ^= 1;
    int devnull = open("/dev/null", O_WRONLY);
    assert_true(devnull >= 0);
    int saved = pt_log_set_fd(devnull); /* the refusal is logged; keep test output clean */
    assert_int_equal(dst->fsm.restore(&dst->fsm, &bad), RAFT_CORRUPT);
    pt_log_set_fd(saved);
    close(devnull);
    raft_free(bad.base);
    assert_int_equal(pt_metastore_applied_index(f->ms[1]), 0);

    /* restore takes the buffer (freed with raft_free: the sanitizer checks both ways) */
    assert_int_equal(dst->fsm.restore(&dst->fsm, &bufs[0]), 0);
    raft_free(bufs); /* the array stays with raft, as in raft's own restore path */
    assert_int_equal(dst->n_restored, 1);
    char a[65], b[65];
    pt_workload_state(f->ms[0], a);
    pt_workload_state(f->ms[1], b);
    assert_string_equal(a, b);

    /* a snapshot the store has already applied is skipped, and the buffer still taken */
    pt_workload_push(f->ms[1], 11, 13);
    pt_workload_state(f->ms[1], b);
    assert_int_equal(dst->fsm.restore(&dst->fsm, &copy), 0);
    assert_int_equal(dst->n_restore_skipped, 1);
    pt_workload_assert_unchanged(f->ms[1], b, 12);

    /* apply without an attached raft instance cannot know its index */
    struct pt_command_builder cb;
    pt_workload_push_cmd(&cb, 20);
    struct raft_buffer entry;
    assert_int_equal(pt_command_encode_with(&cb.msg, raft_malloc, &entry.base, &entry.len), 0);
    pt_command_builder_free(&cb);
    void *result = (void *)1;
    assert_int_equal(dst->fsm.apply(&dst->fsm, &entry, &result), RAFT_INVALID);
    assert_null(result);
    raft_free(entry.base);

    /* results and errors across the boundary */
    assert_int_equal(pt_raft_fsm_status(NULL), 0);
    assert_int_equal(pt_raft_fsm_status((void *)(intptr_t)PT_E_MANIFEST_UNKNOWN),
                     PT_E_MANIFEST_UNKNOWN);
    assert_int_equal(pt_raft_fsm_err(0), 0);
    assert_int_equal(pt_raft_fsm_err(RAFT_NOTLEADER), PT_E_UNAVAILABLE);
    assert_int_equal(pt_raft_fsm_err(RAFT_LEADERSHIPLOST), PT_E_UNAVAILABLE);
    assert_int_equal(pt_raft_fsm_err(RAFT_NOMEM), PT_E_NOMEM);
    assert_int_equal(pt_raft_fsm_err(RAFT_CORRUPT), PT_E_CORRUPT);
    assert_int_equal(pt_raft_fsm_err(RAFT_IOERR), PT_E_IO);
    assert_int_equal(pt_raft_fsm_err(RAFT_TOOBIG), PT_E_TOO_LARGE);
    assert_int_equal(pt_raft_fsm_err(RAFT_MALFORMED), PT_E_INTERNAL);
}

/* raft 0.15 leaves last_applied before an entry whose apply failed and offers the same entry
 * again at its next commit: that retry, and any restore, must be refused. */
static void test_adapter_apply_failure(void **state)
{
    struct pt_fsm_cluster *f = *state;
    /* server 0 over ms[0], never started: last_applied 0, next index 1 */
    pt_fsm_cluster_grow(f, 0, 0);
    struct pt_raft_fsm *a = &f->fsm[0];
    struct pt_command_builder cb;
    pt_workload_push_cmd(&cb, 1);
    void *cmd;
    size_t cmd_len;
    assert_int_equal(pt_command_encode(&cb.msg, &cmd, &cmd_len), 0);
    pt_command_builder_free(&cb);
    struct raft_buffer entry;
    assert_int_equal(pt_raft_entry_frame(cmd, cmd_len, &entry), 0);
    free(cmd);

    int devnull = open("/dev/null", O_WRONLY);
    assert_true(devnull >= 0);
    int saved = pt_log_set_fd(devnull);
    pt_metastore_fail_next_commit(f->ms[0], PT_E_IO);
    void *result = (void *)1;
    assert_int_equal(a->fsm.apply(&a->fsm, &entry, &result), RAFT_IOERR);
    assert_null(result);
    /* the fault is gone; the entry offered again is still refused */
    assert_int_equal(a->fsm.apply(&a->fsm, &entry, &result), RAFT_IOERR);
    assert_int_equal(a->fsm.apply(&a->fsm, &entry, &result), RAFT_IOERR);
    assert_int_equal(pt_metastore_halted(f->ms[0]), PT_E_IO);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 0);
    assert_int_equal(a->n_applied, 0);
    assert_int_equal(pt_metastore_repo_exists(f->ms[0], "team/app1"), 0);

    /* and so is a snapshot, which stays raft's */
    pt_workload_push(f->ms[1], 1, 4);
    struct raft_buffer snap;
    uint64_t index;
    assert_int_equal(pt_metastore_snapshot_with(f->ms[1], raft_realloc, raft_free, &snap.base,
                                                &snap.len, &index),
                     0);
    assert_int_equal(a->fsm.restore(&a->fsm, &snap), RAFT_IOERR);
    raft_free(snap.base);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 0);

    /* a committed entry that does not decode stops the log as well */
    struct pt_raft_fsm *b = &f->fsm[1];
    pt_raft_fsm_init(b, f->ms[2], pt_fsm_cluster_srv(f, 0));
    unsigned char junk[16] = {3}; /* a 3-byte command that is not one */
    struct raft_buffer bad = {.base = junk, .len = sizeof(junk)};
    assert_int_equal(b->fsm.apply(&b->fsm, &bad, &result), RAFT_CORRUPT);
    assert_int_equal(pt_metastore_halted(f->ms[2]), PT_E_CORRUPT);
    assert_int_equal(b->fsm.apply(&b->fsm, &entry, &result), RAFT_CORRUPT);
    assert_int_equal(pt_metastore_applied_index(f->ms[2]), 0);
    pt_log_set_fd(saved);
    close(devnull);

    /* after a restart the entry applies at the index it failed at */
    pt_fsm_cluster_reopen(f, 0);
    a->ms = f->ms[0];
    assert_int_equal(a->fsm.apply(&a->fsm, &entry, &result), 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 1);
    assert_int_equal(a->n_applied, 1);
    assert_int_equal(pt_metastore_repo_exists(f->ms[0], "team/app1"), 1);
    raft_free(entry.base);
}

/* Below the free-space reserve an entry is held back, not failed (a failed apply makes raft
 * 0.15 turn the server unavailable): apply answers 0 with the status PT_E_DISK_FULL, writes
 * nothing, keeps every later entry behind it, refuses snapshots, and drains in order once
 * space is back. */
static void test_adapter_disk_full(void **state)
{
    struct pt_fsm_cluster *f = *state;
    pt_fsm_cluster_grow(f, 0, 0);
    struct pt_raft_fsm *a = &f->fsm[0];
    struct raft *srv = pt_fsm_cluster_srv(f, 0);
    struct raft_buffer entries[3];
    for (int i = 0; i < 3; i++) {
        struct pt_command_builder cb;
        pt_workload_push_cmd(&cb, (unsigned)i + 1);
        void *cmd;
        size_t cmd_len;
        assert_int_equal(pt_command_encode(&cb.msg, &cmd, &cmd_len), 0);
        pt_command_builder_free(&cb);
        assert_int_equal(pt_raft_entry_frame(cmd, cmd_len, &entries[i]), 0);
        free(cmd);
    }
    char dir[] = "/tmp/pt-test-disk-XXXXXX";
    assert_non_null(mkdtemp(dir));
    const char *paths[] = {dir};
    struct pt_disk_reserve r = {.bytes = 0};
    int devnull = open("/dev/null", O_WRONLY);
    assert_true(devnull >= 0);
    int saved = pt_log_set_fd(devnull);
    pt_disk_init(paths, 1, &r);
    pt_disk_set_simulated_use(UINT64_MAX / 2); /* nothing free */

    void *result = NULL;
    for (int i = 0; i < 2; i++) {
        assert_int_equal(a->fsm.apply(&a->fsm, &entries[i], &result), 0);
        assert_int_equal(pt_raft_fsm_status(result), PT_E_DISK_FULL);
        srv->last_applied++; /* what raft does after apply returned 0 */
    }
    assert_int_equal(a->n_pending, 2);
    assert_true(a->disk_stopped);
    assert_int_equal(pt_metastore_halted(f->ms[0]), 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 0);
    assert_int_equal(pt_metastore_repo_exists(f->ms[0], "team/app1"), 0);
    struct raft_buffer *bufs;
    unsigned n_bufs;
    assert_int_equal(a->fsm.snapshot(&a->fsm, &bufs, &n_bufs), RAFT_BUSY);
    assert_int_equal(pt_raft_fsm_drain(a), 0); /* still no space: nothing moves */
    assert_int_equal(a->n_pending, 2);

    /* space is back: the held entries are written in order, then the next one directly */
    pt_disk_set_simulated_use(0);
    assert_int_equal(pt_raft_fsm_drain(a), 2);
    assert_int_equal(a->n_pending, 0);
    assert_false(a->disk_stopped);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 2);
    assert_int_equal(a->fsm.apply(&a->fsm, &entries[2], &result), 0);
    assert_int_equal(pt_raft_fsm_status(result), 0);
    assert_int_equal(pt_metastore_applied_index(f->ms[0]), 3);
    assert_int_equal(pt_metastore_repo_exists(f->ms[0], "team/app1"), 1);
    assert_int_equal(pt_metastore_halted(f->ms[0]), 0);

    pt_disk_init(NULL, 0, &r); /* watch nothing again */
    pt_log_set_fd(saved);
    close(devnull);
    rmdir(dir);
    for (int i = 0; i < 3; i++)
        raft_free(entries[i].base);
}

int main(void)
{
    static unsigned two = 2, four = 4;
#define TEST(fn, stores)                                                                           \
    cmocka_unit_test_prestate_setup_teardown(fn, pt_fsm_cluster_setup, pt_fsm_cluster_teardown,    \
                                             &stores)
    const struct CMUnitTest tests[] = {
        TEST(test_adapter_callbacks, two),
        TEST(test_adapter_apply_failure, four),
        TEST(test_adapter_disk_full, two),
    };
#undef TEST
    return cmocka_run_group_tests(tests, NULL, NULL);
}
