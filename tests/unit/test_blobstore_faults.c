/*
 * test_blobstore_faults.c - the filesystem blob store when its syscalls fail.
 *
 * Faults are injected through the store's syscall table (the fakes of support/bs_fixture.h
 * count calls and fail the chosen one): a failed fsync or rename keeps the upload committable,
 * a failed directory fsync after the rename leaves a complete blob, a failed or stalled write
 * rolls the session back, short writes and EINTR are retried, and the size limit is checked
 * before anything is written.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "blobstore.h"
#include "digest.h"
#include "err.h"
#include "support/bs_fixture.h"

static void test_fsync_failure_keeps_upload(void **state)
{
    struct pt_bs_fixture *f = *state;
    unsigned char data[10000];
    struct pt_digest want;
    struct pt_upload u, before;
    char path[PATH_MAX];

    pt_bs_fill(data, sizeof(data), 15);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, data, sizeof(data));
    before = u;

    pt_bs_fault.fsync_calls = 0;
    pt_bs_fault.fsync_fail_at = 1; /* the upload file's fsync before the rename */
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), PT_E_IO);
    assert_int_equal(pt_bs_fault.rename_calls, 0);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);
    pt_bs_blob_path(f, &want, path);
    assert_int_equal(pt_bs_file_size(path), -1);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(pt_bs_upload_size(f, u.id), (long long)sizeof(data));

    pt_bs_fault.fsync_fail_at = 0;
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    pt_bs_assert_blob(f, &want, data, sizeof(data));
}

static void test_rename_failure_keeps_upload(void **state)
{
    struct pt_bs_fixture *f = *state;
    unsigned char data[3333];
    struct pt_digest want;
    struct pt_upload u, before;

    pt_bs_fill(data, sizeof(data), 16);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, data, sizeof(data));
    before = u;

    pt_bs_fault.rename_fail = 1;
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), PT_E_IO);
    assert_int_equal(pt_bs_fault.rename_calls, 1);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(pt_bs_upload_size(f, u.id), (long long)sizeof(data));

    pt_bs_fault.rename_fail = 0;
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    pt_bs_assert_blob(f, &want, data, sizeof(data));
}

static void test_dir_fsync_failure_after_rename(void **state)
{
    struct pt_bs_fixture *f = *state;
    unsigned char data[512];
    struct pt_digest want;
    struct pt_upload u;

    pt_bs_fill(data, sizeof(data), 17);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, data, sizeof(data));

    pt_bs_fault.fsync_calls = 0;
    pt_bs_fault.fsync_fail_at = 2; /* the directory's fsync after the rename */
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), PT_E_IO);
    assert_int_equal(pt_bs_fault.rename_calls, 1);
    /* The blob is complete and verified even though its durability is unknown. */
    pt_bs_assert_blob(f, &want, data, sizeof(data));
    assert_int_equal(pt_bs_upload_size(f, u.id), -1);
}

static void test_pwrite_failure_rolls_back(void **state)
{
    struct pt_bs_fixture *f = *state;
    unsigned char data[9000];
    struct pt_digest want;
    struct pt_upload u, before;

    pt_bs_fill(data, sizeof(data), 18);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, data, 1000);
    before = u;

    /* Half the chunk lands, then the disk is full. */
    pt_bs_fault.pwrite_calls = 0;
    pt_bs_fault.pwrite_cap = 2000;
    pt_bs_fault.pwrite_fail_at = 2;
    pt_bs_fault.pwrite_errno = ENOSPC;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, data + 1000, 4000), PT_E_DISK_FULL);
    assert_int_equal(pt_bs_fault.pwrite_calls, 2);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(pt_bs_upload_size(f, u.id), 1000);

    pt_bs_fault.pwrite_errno = EIO;
    pt_bs_fault.pwrite_calls = 0;
    pt_bs_fault.pwrite_fail_at = 1;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, data + 1000, 4000), PT_E_IO);
    assert_memory_equal(&u, &before, sizeof(u));

    /* A write that makes no progress is an error, not a hang. */
    pt_bs_fault.pwrite_fail_at = 0;
    pt_bs_fault.pwrite_zero = 1;
    pt_bs_fault.pwrite_calls = 0;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, data + 1000, 10), PT_E_IO);
    assert_int_equal(pt_bs_fault.pwrite_calls, 1);
    assert_memory_equal(&u, &before, sizeof(u));
    pt_bs_fault.pwrite_zero = 0;

    /* fdatasync failing rolls back too. */
    pt_bs_fault.fdatasync_calls = 0;
    pt_bs_fault.fdatasync_fail_at = 1;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, data + 1000, 4000), PT_E_IO);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(pt_bs_upload_size(f, u.id), 1000);

    /* If the cut-back fails as well, the stale tail is overwritten or cut later. */
    pt_bs_fault.fdatasync_calls = 0;
    pt_bs_fault.ftruncate_fail = 1;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, data + 1000, 4000), PT_E_IO);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(pt_bs_upload_size(f, u.id), 5000);
    pt_bs_fault.ftruncate_fail = 0;
    pt_bs_fault.fdatasync_fail_at = 0;

    /* Short writes and EINTR are retried transparently. */
    pt_bs_fault.pwrite_calls = 0;
    pt_bs_fault.pwrite_cap = 777;
    pt_bs_fault.pwrite_eintr = 1;
    pt_bs_append_ok(f, &u, data + 1000, sizeof(data) - 1000);
    assert_true(pt_bs_fault.pwrite_calls >= (int)(2 * ((sizeof(data) - 1000 + 776) / 777)));
    assert_int_equal(u.offset, sizeof(data));
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    pt_bs_assert_blob(f, &want, data, sizeof(data));
}

static void test_size_limit(void **state)
{
    struct pt_bs_fixture *f = *state;
    struct pt_upload u, before;

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    u.offset = PT_UPLOAD_SIZE_MAX - 1;
    before = u;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, "ab", 2), PT_E_TOO_LARGE);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(pt_bs_fault.pwrite_calls, 0);
    u.offset = PT_UPLOAD_SIZE_MAX + 1;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, "a", 1), PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(pt_blobstore_upload_repair(f->bs, &u), PT_E_BLOB_UPLOAD_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fsync_failure_keeps_upload, pt_bs_setup,
                                        pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_rename_failure_keeps_upload, pt_bs_setup,
                                        pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_dir_fsync_failure_after_rename, pt_bs_setup,
                                        pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_pwrite_failure_rolls_back, pt_bs_setup,
                                        pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_size_limit, pt_bs_setup, pt_bs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
