/*
 * test_backup.c - a backup of the stores (store/backup.h): the checkpoint holds the metadata
 * at its applied index, every linked blob the store holds is a hard link of the blob file
 * (once, however many repositories link it), blobs the store lacks are counted as missing,
 * backup.json is written, a second backup in the same second gets its own name, and
 * pt_blobstore_link_out refuses an existing destination and reports an absent blob.
 */
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

#include "backup.h"
#include "blobstore.h"
#include "digest.h"
#include "err.h"
#include "metastore.h"
#include "support/bs_fixture.h"

/* Stores data as a blob; *d its digest. */
static void put_blob(struct pt_bs_fixture *f, const char *data, struct pt_digest *d)
{
    struct pt_upload u;
    pt_digest_of(data, strlen(data), d);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, data, strlen(data)), 0);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, d), 0);
}

static void link_blob(struct pt_metastore_batch *b, const char *repo, const struct pt_digest *d,
                      uint64_t size)
{
    char text[PT_DIGEST_STR_MAX + 1];
    pt_digest_format(d, text);
    assert_int_equal(pt_metastore_batch_blob_link(b, repo, text, size), 0);
}

static ino_t inode_of(const char *path)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    return st.st_ino;
}

static void test_backup_links_blobs_and_checkpoints(void **state)
{
    struct pt_bs_fixture *f = *state;
    struct pt_digest d1, d2, absent;
    char path[PATH_MAX + 64], orig[PATH_MAX], meta[PATH_MAX];

    put_blob(f, "first blob", &d1);
    put_blob(f, "second", &d2);
    pt_digest_of("never stored", 12, &absent);

    struct pt_metastore *ms;
    snprintf(meta, sizeof meta, "%s/meta", f->dir);
    assert_int_equal(pt_metastore_open(meta, &ms), 0);
    struct pt_metastore_batch *b;
    assert_int_equal(pt_metastore_batch_new(ms, &b), 0);
    link_blob(b, "a", &d1, 10);
    link_blob(b, "b", &d1, 10); /* the same blob in a second repository */
    link_blob(b, "a", &d2, 6);
    link_blob(b, "c", &absent, 12);
    assert_int_equal(pt_metastore_batch_commit(b, 7), 0);
    pt_metastore_batch_free(b);

    struct pt_backup_result r;
    assert_int_equal(pt_backup_create(ms, f->bs, f->dir, "r1", 86400000 + 1500, &r), 0);
    assert_string_equal(r.name, "19700102T000001Z");
    assert_int_equal(r.applied_index, 7);
    assert_int_equal(r.blobs, 2);
    assert_int_equal(r.blob_bytes, 16);
    assert_int_equal(r.missing_blobs, 1);

    /* Hard links of the blob files, laid out as in the store. */
    snprintf(path, sizeof path, "%s/backups/%s/blobs/sha256/%.2s/%s", f->dir, r.name, d1.hex,
             d1.hex);
    pt_bs_blob_path(f, &d1, orig);
    assert_true(inode_of(path) == inode_of(orig));
    snprintf(path, sizeof path, "%s/backups/%s/blobs/sha256/%.2s/%s", f->dir, r.name, absent.hex,
             absent.hex);
    assert_int_equal(access(path, F_OK), -1);

    /* backup.json, written last. */
    snprintf(path, sizeof path, "%s/backups/%s/backup.json", f->dir, r.name);
    FILE *fp = fopen(path, "r");
    assert_non_null(fp);
    char text[512] = "";
    assert_true(fread(text, 1, sizeof text - 1, fp) > 0);
    fclose(fp);
    assert_non_null(
        strstr(text, "\"format\":1,\"region\":\"r1\",\"created\":\"1970-01-02T00:00:01Z\""));
    assert_non_null(strstr(text, "\"applied_index\":7,\"blobs\":2,\"blob_bytes\":16,"
                                 "\"missing_blobs\":1"));

    /* A write after the backup is not in its checkpoint. */
    assert_int_equal(pt_metastore_batch_new(ms, &b), 0);
    link_blob(b, "later", &d2, 6);
    assert_int_equal(pt_metastore_batch_commit(b, 8), 0);
    pt_metastore_batch_free(b);
    struct pt_metastore *cp;
    snprintf(path, sizeof path, "%s/backups/%s/meta", f->dir, r.name);
    assert_int_equal(pt_metastore_open(path, &cp), 0);
    assert_int_equal(pt_metastore_applied_index(cp), 7);
    char d1text[PT_DIGEST_STR_MAX + 1], d2text[PT_DIGEST_STR_MAX + 1];
    pt_digest_format(&d1, d1text);
    pt_digest_format(&d2, d2text);
    uint64_t size;
    assert_int_equal(pt_metastore_blob_linked(cp, "b", d1text, &size), 0);
    assert_int_equal(size, 10);
    assert_int_not_equal(pt_metastore_blob_linked(cp, "later", d2text, &size), 0);
    pt_metastore_close(cp);

    /* A second backup in the same second has a name of its own. */
    struct pt_backup_result r2;
    assert_int_equal(pt_backup_create(ms, f->bs, f->dir, "r1", 86400000 + 1900, &r2), 0);
    assert_string_equal(r2.name, "19700102T000001Z-1");
    assert_int_equal(r2.applied_index, 8);
    assert_int_equal(r2.blobs, 2);
    pt_metastore_close(ms);
}

static void test_link_out_refusals(void **state)
{
    struct pt_bs_fixture *f = *state;
    struct pt_digest d, absent;
    char dir[PATH_MAX];
    uint64_t size = 0;

    put_blob(f, "payload", &d);
    pt_digest_of("absent", 6, &absent);
    snprintf(dir, sizeof dir, "%s/out", f->dir);
    assert_int_equal(mkdir(dir, 0700), 0);
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    assert_true(fd >= 0);
    assert_int_equal(pt_blobstore_link_out(f->bs, &d, fd, "x", &size), 0);
    assert_int_equal(size, 7);
    assert_int_equal(pt_blobstore_link_out(f->bs, &d, fd, "x", &size), PT_E_CONFLICT);
    assert_int_equal(pt_blobstore_link_out(f->bs, &absent, fd, "y", &size), PT_E_BLOB_UNKNOWN);
    close(fd);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_backup_links_blobs_and_checkpoints, pt_bs_setup,
                                        pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_link_out_refusals, pt_bs_setup, pt_bs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
