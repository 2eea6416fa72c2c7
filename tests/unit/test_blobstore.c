/*
 * test_blobstore.c - unit tests for the filesystem blob store (node/store/blobstore.c): its
 * layout on disk, upload sessions and their ids, and blobs once stored.
 *
 * Opening creates the layout and clears tmp/; sessions get random (or prefixed, or chosen) ids
 * that can never leave uploads/; abort and the sweep of dead sessions remove their files; stored
 * blobs are found, opened and removed by digest. Each test runs against a fresh store in its own
 * temporary directory (support/bs_fixture.h). Committing uploads is tested in
 * test_blobstore_commit.c, failing syscalls in test_blobstore_faults.c.
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

static void test_open_creates_layout_and_clears_tmp(void **state)
{
    struct pt_bs_fixture *f = *state;
    char path[PATH_MAX], sub[PATH_MAX];
    struct stat st;
    const char *tmp = pt_blobstore_tmp_dir(f->bs);

    snprintf(path, sizeof(path), "%s/tmp", f->dir);
    assert_string_equal(tmp, path);
    const char *dirs[] = {"blobs",           "blobs/sha256", "blobs/sha256/00", "blobs/sha256/7f",
                          "blobs/sha256/ff", "blobs/sha512", "blobs/sha512/00", "blobs/sha512/ff",
                          "uploads",         "tmp"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", f->dir, dirs[i]);
        assert_int_equal(stat(path, &st), 0);
        assert_true(S_ISDIR(st.st_mode));
    }

    /* Spill files, a nested directory and a symlink left in tmp/ are gone after a restart;
     * the symlink's target outside tmp/ survives. */
    snprintf(path, sizeof(path), "%s/spill.1", tmp);
    pt_bs_write_file(path, "abc", 3);
    snprintf(path, sizeof(path), "%s/nested", tmp);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/nested/deeper", tmp);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/nested/deeper/f", tmp);
    pt_bs_write_file(path, "x", 1);
    snprintf(path, sizeof(path), "%s/keep", f->dir);
    pt_bs_write_file(path, "k", 1);
    snprintf(sub, sizeof(sub), "%s/link", tmp);
    assert_int_equal(symlink(path, sub), 0);

    pt_bs_restart(f);
    tmp = pt_blobstore_tmp_dir(f->bs);
    snprintf(path, sizeof(path), "%s/spill.1", tmp);
    assert_int_equal(pt_bs_file_size(path), -1);
    snprintf(path, sizeof(path), "%s/nested", tmp);
    assert_int_equal(lstat(path, &st), -1);
    snprintf(path, sizeof(path), "%s/link", tmp);
    assert_int_equal(lstat(path, &st), -1);
    snprintf(path, sizeof(path), "%s/keep", f->dir);
    assert_int_equal(pt_bs_file_size(path), 1);
    assert_int_equal(stat(tmp, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

static void test_open_errors(void **state)
{
    struct pt_bs_fixture *f = *state;
    struct pt_blobstore *bs = NULL;
    char path[PATH_MAX];
    char *longdir = malloc(PATH_MAX + 10);

    assert_int_equal(pt_blobstore_open(NULL, &bs), PT_E_CONFIG);
    assert_int_equal(pt_blobstore_open("", &bs), PT_E_CONFIG);
    assert_non_null(longdir);
    memset(longdir, 'a', PATH_MAX + 9);
    longdir[PATH_MAX + 9] = '\0';
    assert_int_equal(pt_blobstore_open(longdir, &bs), PT_E_CONFIG);
    free(longdir);

    /* A regular file where the directory should be. */
    snprintf(path, sizeof(path), "%s/file", f->dir);
    pt_bs_write_file(path, "x", 1);
    assert_int_equal(pt_blobstore_open(path, &bs), PT_E_IO);
    /* A missing parent. */
    snprintf(path, sizeof(path), "%s/no/such", f->dir);
    assert_int_equal(pt_blobstore_open(path, &bs), PT_E_IO);
    assert_null(bs);
    pt_blobstore_close(NULL);
}

static void test_begin(void **state)
{
    struct pt_bs_fixture *f = *state;
    struct pt_upload a, b;
    char repo[PT_UPLOAD_REPO_MAX + 2];

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "library/alpine", 1234, &a), 0);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "library/alpine", 1235, &b), 0);
    assert_string_not_equal(a.id, b.id);
    assert_int_equal(strlen(a.id), 36);
    for (size_t i = 0; i < 36; i++) {
        if (i == 8 || i == 13 || i == 18 || i == 23)
            assert_int_equal(a.id[i], '-');
        else
            assert_non_null(strchr("0123456789abcdef", a.id[i]));
    }
    assert_int_equal(a.id[14], '4');           /* version 4 */
    assert_non_null(strchr("89ab", a.id[19])); /* RFC 4122 variant */
    assert_string_equal(a.repo, "library/alpine");
    assert_int_equal(a.offset, 0);
    assert_int_equal(a.created_ms, 1234);
    assert_int_equal(a.updated_ms, 1234);
    assert_int_equal(pt_bs_upload_size(f, a.id), 0);
    assert_int_equal(pt_bs_upload_size(f, b.id), 0);

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "", 1, &a), PT_E_NAME_INVALID);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, NULL, 1, &a), PT_E_NAME_INVALID);
    memset(repo, 'r', PT_UPLOAD_REPO_MAX + 1);
    repo[PT_UPLOAD_REPO_MAX + 1] = '\0';
    assert_int_equal(pt_blobstore_upload_begin(f->bs, repo, 1, &a), PT_E_NAME_INVALID);
    repo[PT_UPLOAD_REPO_MAX] = '\0';
    assert_int_equal(pt_blobstore_upload_begin(f->bs, repo, 1, &a), 0);
    assert_int_equal(strlen(a.repo), PT_UPLOAD_REPO_MAX);
}

static void test_prefix_and_chosen_ids(void **state)
{
    struct pt_bs_fixture *f = *state;
    struct pt_upload a, b;
    static const char hex[] = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    char buf[8];
    int fd;

    /* a cluster's session ids start with the region's prefix */
    assert_int_equal(pt_blobstore_set_id_prefix(f->bs, "Z-"), PT_E_CONFIG);
    assert_int_equal(pt_blobstore_set_id_prefix(f->bs, "0123456789abcdef012345678"), PT_E_CONFIG);
    assert_int_equal(pt_blobstore_set_id_prefix(f->bs, "2a-"), 0);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &a), 0);
    assert_int_equal(strlen(a.id), 39);
    assert_memory_equal(a.id, "2a-", 3);
    assert_int_equal(a.id[3 + 14], '4');

    /* a chosen id: created empty, emptied again when begun again, readable while written */
    assert_int_equal(pt_blobstore_upload_begin_id(f->bs, "@t", "no/slash", 1, &b),
                     PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(pt_blobstore_upload_begin_id(f->bs, "@t", hex, 5, &b), 0);
    assert_string_equal(b.id, hex);
    assert_int_equal(b.offset, 0);
    assert_int_equal(b.created_ms, 5);
    assert_int_equal(pt_blobstore_upload_append(f->bs, &b, "abc", 3), 0);
    assert_int_equal(pt_blobstore_upload_open_read(f->bs, hex, &fd), 0);
    assert_int_equal(pread(fd, buf, sizeof(buf), 0), 3);
    assert_memory_equal(buf, "abc", 3);
    assert_int_equal(pt_blobstore_upload_begin_id(f->bs, "@t", hex, 6, &b), 0);
    assert_int_equal(pt_bs_upload_size(f, hex), 0);
    assert_int_equal(pt_blobstore_upload_append(f->bs, &b, "xyz", 3), 0);
    /* the reader's descriptor follows the file into blobs/ */
    struct pt_digest d;
    assert_int_equal(
        pt_digest_parse("sha256:3608bca1e44ea6c4d268eb6db02260269892c0b42b86bbf1e77a6fa16c3c9282",
                        71, &d),
        0);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &b, &d), 0);
    assert_int_equal(pread(fd, buf, sizeof(buf), 0), 3);
    assert_memory_equal(buf, "xyz", 3);
    close(fd);
    assert_int_equal(pt_blobstore_upload_open_read(f->bs, hex, &fd), PT_E_BLOB_UPLOAD_UNKNOWN);
}

static void test_abort(void **state)
{
    struct pt_bs_fixture *f = *state;
    struct pt_upload u;
    char path[PATH_MAX];

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, "abc", 3);
    assert_int_equal(pt_blobstore_upload_abort(f->bs, u.id), 0);
    assert_int_equal(pt_bs_upload_size(f, u.id), -1);
    assert_int_equal(pt_blobstore_upload_abort(f->bs, u.id), 0);
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, "d", 1), PT_E_BLOB_UPLOAD_UNKNOWN);

    /* Ids that could leave uploads/ are refused. */
    snprintf(path, sizeof(path), "%s/victim", f->dir);
    pt_bs_write_file(path, "v", 1);
    assert_int_equal(pt_blobstore_upload_abort(f->bs, "../victim"), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(pt_blobstore_upload_abort(f->bs, ""), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(pt_blobstore_upload_abort(f->bs, "ABC"), PT_E_BLOB_UPLOAD_UNKNOWN);
    char long_id[PT_UPLOAD_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(pt_blobstore_upload_abort(f->bs, long_id), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(pt_bs_file_size(path), 1);

    strcpy(u.id, "../victim");
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, "d", 1), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(pt_blobstore_upload_repair(f->bs, &u), PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(pt_bs_file_size(path), 1);
}

static void test_stat_open_remove(void **state)
{
    struct pt_bs_fixture *f = *state;
    unsigned char data[2048];
    struct pt_digest want, bogus;
    struct pt_upload u;
    uint64_t size = 77;
    int fd = -1;

    pt_bs_fill(data, sizeof(data), 14);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &size), PT_E_BLOB_UNKNOWN);
    assert_int_equal(size, 77);
    assert_int_equal(pt_blobstore_open_blob(f->bs, &want, &fd, &size), PT_E_BLOB_UNKNOWN);
    assert_int_equal(fd, -1);
    assert_int_equal(pt_blobstore_remove_blob(f->bs, &want), PT_E_BLOB_UNKNOWN);

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, data, sizeof(data));
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    pt_bs_assert_blob(f, &want, data, sizeof(data));

    /* A reader that opened the blob keeps reading it after removal. */
    assert_int_equal(pt_blobstore_open_blob(f->bs, &want, &fd, &size), 0);
    assert_int_equal(pt_blobstore_remove_blob(f->bs, &want), 0);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &size), PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_blobstore_remove_blob(f->bs, &want), PT_E_BLOB_UNKNOWN);
    unsigned char got[2048];
    assert_int_equal(pread(fd, got, sizeof(got), 0), (ssize_t)sizeof(got));
    assert_memory_equal(got, data, sizeof(data));
    close(fd);

    memset(&bogus, 0, sizeof(bogus));
    memcpy(bogus.hex, "../../../../etc/passwd", 22);
    assert_int_equal(pt_blobstore_stat(f->bs, &bogus, &size), PT_E_DIGEST_INVALID);
    assert_int_equal(pt_blobstore_open_blob(f->bs, &bogus, &fd, &size), PT_E_DIGEST_INVALID);
    assert_int_equal(pt_blobstore_remove_blob(f->bs, &bogus), PT_E_DIGEST_INVALID);
}

struct live_set {
    const char *ids[4];
    int calls;
};

static int is_live(const char *id, void *arg)
{
    struct live_set *s = arg;
    s->calls++;
    for (int i = 0; i < 4; i++)
        if (s->ids[i] != NULL && strcmp(s->ids[i], id) == 0)
            return 1;
    return 0;
}

static void test_sweep(void **state)
{
    struct pt_bs_fixture *f = *state;
    struct pt_upload a, b, c;
    struct live_set live = {{NULL}, 0};
    char path[PATH_MAX];
    struct stat st;

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &a), 0);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &b), 0);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &c), 0);
    pt_bs_append_ok(f, &a, "aaaa", 4);
    pt_bs_append_ok(f, &c, "cc", 2);
    snprintf(path, sizeof(path), "%s/uploads/Not-An-Id", f->dir);
    pt_bs_write_file(path, "j", 1);
    snprintf(path, sizeof(path), "%s/uploads/abc", f->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/uploads/abc/inner", f->dir);
    pt_bs_write_file(path, "j", 1);

    live.ids[0] = a.id;
    live.ids[1] = c.id;
    live.ids[2] = "Not-An-Id"; /* malformed names are never asked about, never kept */
    pt_bs_restart(f);
    assert_int_equal(pt_blobstore_sweep_uploads(f->bs, is_live, &live), 0);
    assert_int_equal(live.calls, 3);
    assert_int_equal(pt_bs_upload_size(f, a.id), 4);
    assert_int_equal(pt_bs_upload_size(f, b.id), -1);
    assert_int_equal(pt_bs_upload_size(f, c.id), 2);
    snprintf(path, sizeof(path), "%s/uploads/Not-An-Id", f->dir);
    assert_int_equal(lstat(path, &st), -1);
    snprintf(path, sizeof(path), "%s/uploads/abc", f->dir);
    assert_int_equal(lstat(path, &st), -1);

    /* Nothing live: everything goes. */
    live.ids[0] = live.ids[1] = live.ids[2] = NULL;
    assert_int_equal(pt_blobstore_sweep_uploads(f->bs, is_live, &live), 0);
    assert_int_equal(pt_bs_upload_size(f, a.id), -1);
    assert_int_equal(pt_bs_upload_size(f, c.id), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_layout_and_clears_tmp, pt_bs_setup,
                                        pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_begin, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_prefix_and_chosen_ids, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_abort, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_stat_open_remove, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_sweep, pt_bs_setup, pt_bs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
