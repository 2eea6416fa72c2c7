/*
 * test_blobstore_commit.c - an upload of the filesystem blob store becoming a blob.
 *
 * Chunked appends give the blob a one-shot upload gives, empty blobs and sha512 digests work,
 * a session survives a restart through its encoded state (and a damaged encoding is refused),
 * a wrong digest keeps the upload for a retry, repair and commit cope with a file longer than
 * the session says, and committing a blob that already exists keeps the installed file.
 * A body written and hashed apart (put + hash + advance) commits like appends; verification
 * after a machine restart accepts a file that hashes to its session and refuses one that lost
 * or changed bytes; the boot note tells a restart of the machine from one of the process.
 * Restarts are simulated by encoding the session, closing the store, reopening it and decoding
 * (support/bs_fixture.h).
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

static void test_chunked_commit_matches_one_shot(void **state)
{
    struct pt_bs_fixture *f = *state;
    static const size_t chunks[] = {0, 1, 63, 64, 65, 127, 4096, 100000, 3, 65536, 1};
    size_t total = 0, off = 0;
    unsigned char *data;
    struct pt_digest want;
    struct pt_upload u;
    char path[PATH_MAX];

    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++)
        total += chunks[i];
    total += 1 << 20; /* one large chunk at the end */
    data = malloc(total);
    assert_non_null(data);
    pt_bs_fill(data, total, 7);
    pt_digest_of(data, total, &want);

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        pt_bs_append_ok(f, &u, data + off, chunks[i]);
        off += chunks[i];
        assert_int_equal(u.offset, off);
        assert_int_equal(pt_bs_upload_size(f, u.id), (long long)off);
    }
    pt_bs_append_ok(f, &u, data + off, total - off);
    assert_int_equal(u.offset, total);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);

    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    assert_int_equal(pt_bs_upload_size(f, u.id), -1);
    pt_bs_assert_blob(f, &want, data, total);
    pt_bs_blob_path(f, &want, path);
    assert_int_equal(pt_bs_file_size(path), (long long)total);
    /* One fdatasync per non-empty append; file and directory fsync at commit. */
    assert_int_equal(pt_bs_fault.fdatasync_calls, 11);
    assert_int_equal(pt_bs_fault.fsync_calls, 2);
    assert_int_equal(pt_bs_fault.rename_calls, 1);
    free(data);
}

static void test_empty_blob(void **state)
{
    struct pt_bs_fixture *f = *state;
    struct pt_digest want;
    struct pt_upload u;

    pt_digest_of("", 0, &want);
    assert_string_equal(want.hex,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    pt_bs_assert_blob(f, &want, (const unsigned char *)"", 0);
}

static void test_resume_after_restart(void **state)
{
    struct pt_bs_fixture *f = *state;
    enum { TOTAL = 300001, CUT = 150037 };
    unsigned char *data = malloc(TOTAL);
    unsigned char *enc = malloc(pt_upload_encoded_size());
    struct pt_upload u, back;
    struct pt_digest want;

    assert_non_null(data);
    assert_non_null(enc);
    assert_int_equal(pt_upload_encoded_size(), 458);
    pt_bs_fill(data, TOTAL, 11);
    pt_digest_of(data, TOTAL, &want);

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "team/app", 42, &u), 0);
    pt_bs_append_ok(f, &u, data, 1000);
    pt_bs_append_ok(f, &u, data + 1000, CUT - 1000);
    u.updated_ms = 99;
    pt_upload_encode(&u, enc);

    /* Restart: only the encoded state survives. */
    pt_bs_restart(f);
    memset(&back, 0xa5, sizeof(back));
    assert_int_equal(pt_upload_decode(enc, pt_upload_encoded_size(), &back), 0);
    assert_string_equal(back.id, u.id);
    assert_string_equal(back.repo, "team/app");
    assert_int_equal(back.offset, CUT);
    assert_int_equal(back.created_ms, 42);
    assert_int_equal(back.updated_ms, 99);
    assert_memory_equal(&back.sha, &u.sha, sizeof(u.sha));

    /* Re-encoding the decoded state gives the same bytes. */
    unsigned char *again = malloc(pt_upload_encoded_size());
    assert_non_null(again);
    pt_upload_encode(&back, again);
    assert_memory_equal(again, enc, pt_upload_encoded_size());
    free(again);

    assert_int_equal(pt_blobstore_upload_repair(f->bs, &back), 0);
    pt_bs_append_ok(f, &back, data + CUT, TOTAL - CUT);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &back, &want), 0);
    pt_bs_assert_blob(f, &want, data, TOTAL);
    free(enc);
    free(data);
}

static void test_decode_rejects_corruption(void **state)
{
    struct pt_bs_fixture *f = *state;
    size_t n = pt_upload_encoded_size();
    unsigned char *good = malloc(n), *bad = malloc(n + 1);
    struct pt_upload u, out;
    unsigned char data[100];

    assert_non_null(good);
    assert_non_null(bad);
    pt_bs_fill(data, sizeof(data), 3);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 5, &u), 0);
    pt_bs_append_ok(f, &u, data, sizeof(data));
    pt_upload_encode(&u, good);
    memset(&out, 0, sizeof(out));
    strcpy(out.id, "untouched");

#define EXPECT_CORRUPT(mutation)                                                                   \
    do {                                                                                           \
        memcpy(bad, good, n);                                                                      \
        mutation;                                                                                  \
        assert_int_equal(pt_upload_decode(bad, n, &out), PT_E_CORRUPT);                            \
        assert_string_equal(out.id, "untouched");                                                  \
    } while (0)

    assert_int_equal(pt_upload_decode(good, n - 1, &out), PT_E_CORRUPT);
    memcpy(bad, good, n);
    bad[n] = 0;
    assert_int_equal(pt_upload_decode(bad, n + 1, &out), PT_E_CORRUPT);
    EXPECT_CORRUPT(bad[0] = 2);                 /* version */
    EXPECT_CORRUPT(bad[1] = 0);                 /* empty id */
    EXPECT_CORRUPT(bad[1] = 65);                /* id too long */
    EXPECT_CORRUPT(bad[1] = 37);                /* id length covers a zero byte */
    EXPECT_CORRUPT(bad[2] = '/');               /* id character */
    EXPECT_CORRUPT(bad[2] = 'A');               /* upper-case hex */
    EXPECT_CORRUPT(bad[2 + 40] = 1);            /* id padding */
    EXPECT_CORRUPT(bad[66] = 0);                /* empty repo */
    EXPECT_CORRUPT(bad[66] = 5);                /* repo length covers zero bytes */
    EXPECT_CORRUPT(bad[67 + 200] = 'x');        /* repo padding */
    EXPECT_CORRUPT(bad[322] ^= 1);              /* offset disagrees with the hash */
    EXPECT_CORRUPT(memset(bad + 322, 0xff, 8)); /* offset past the maximum */
    EXPECT_CORRUPT(bad[378] ^= 8);              /* bit count Nl */
    EXPECT_CORRUPT(bad[382] = 1);               /* bit count Nh */
    EXPECT_CORRUPT(bad[450] ^= 1);              /* buffered byte count */
    EXPECT_CORRUPT(bad[454] = 20);              /* md_len */
#undef EXPECT_CORRUPT

    /* Timestamps are free-form; the hash words and buffered bytes cannot be checked. */
    memcpy(bad, good, n);
    memset(bad + 330, 0xff, 8);
    assert_int_equal(pt_upload_decode(bad, n, &out), 0);
    assert_int_equal(out.created_ms, -1);
    assert_int_equal(pt_upload_decode(good, n, &out), 0);
    assert_string_equal(out.id, u.id);
    free(good);
    free(bad);
}

static void test_wrong_digest_keeps_upload(void **state)
{
    struct pt_bs_fixture *f = *state;
    unsigned char data[5000];
    struct pt_digest want, wrong;
    struct pt_upload u, before;

    pt_bs_fill(data, sizeof(data), 5);
    pt_digest_of(data, sizeof(data), &want);
    pt_digest_of(data, sizeof(data) - 1, &wrong);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, data, sizeof(data));
    before = u;

    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &wrong), PT_E_DIGEST_INVALID);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(pt_bs_upload_size(f, u.id), (long long)sizeof(data));
    assert_int_equal(pt_blobstore_stat(f->bs, &wrong, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);

    /* A malformed expected digest is refused before anything else. */
    struct pt_digest bogus = want;
    bogus.hex[0] = '.';
    bogus.hex[1] = '.';
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &bogus), PT_E_DIGEST_INVALID);
    bogus = want;
    bogus.hex[10] = 'A';
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &bogus), PT_E_DIGEST_INVALID);

    /* The client retries with the right digest. */
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    pt_bs_assert_blob(f, &want, data, sizeof(data));
    assert_int_equal(pt_bs_upload_size(f, u.id), -1);
}

/*
 * An upload closed with a sha512 digest: verified by rehashing the file (larger than the
 * rehash buffer, and with bytes past the offset that are not part of it), installed under
 * blobs/sha512/, and a separate blob from the same bytes under sha256.
 */
static void test_sha512_commit(void **state)
{
    struct pt_bs_fixture *f = *state;
    size_t total = 700000;
    unsigned char *data = malloc(total), junk[100];
    struct pt_digest want, wrong, as256;
    struct pt_upload u, before, v;
    char path[PATH_MAX];
    int fd;

    assert_non_null(data);
    pt_bs_fill(data, total, 21);
    pt_bs_fill(junk, sizeof(junk), 22);
    pt_digest_of_algo(data, total, PT_DIGEST_SHA512, &want);
    pt_digest_of_algo(data, total - 1, PT_DIGEST_SHA512, &wrong);
    pt_digest_of(data, total, &as256);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, data, 300000);
    pt_bs_append_ok(f, &u, data + 300000, total - 300000);
    /* bytes past the session's offset (a write whose state was never kept) */
    pt_bs_upload_path(f, u.id, path);
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    before = u;

    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &wrong), PT_E_DIGEST_INVALID);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_true(pt_bs_upload_size(f, u.id) >= (long long)total);
    assert_int_equal(pt_blobstore_stat(f->bs, &wrong, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);

    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    pt_bs_assert_blob(f, &want, data, total);
    pt_bs_blob_path(f, &want, path);
    assert_non_null(strstr(path, "/blobs/sha512/"));
    assert_int_equal(pt_bs_file_size(path), (long long)total);
    assert_int_equal(pt_bs_upload_size(f, u.id), -1);
    assert_int_equal(pt_blobstore_stat(f->bs, &as256, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);

    /* the same bytes again: the installed blob stays, the upload goes */
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 2, &v), 0);
    pt_bs_append_ok(f, &v, data, total);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &v, &want), 0);
    assert_int_equal(pt_bs_upload_size(f, v.id), -1);
    /* and under sha256 they are a second file */
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 3, &v), 0);
    pt_bs_append_ok(f, &v, data, total);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &v, &as256), 0);
    pt_bs_assert_blob(f, &as256, data, total);

    /* a sha512 digest with a sha256 length is malformed */
    struct pt_digest bogus = want;
    bogus.hex[64] = '\0';
    assert_int_equal(pt_blobstore_stat(f->bs, &bogus, &(uint64_t){0}), PT_E_DIGEST_INVALID);

    assert_int_equal(pt_blobstore_remove_blob(f->bs, &want), 0);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);
    pt_bs_assert_blob(f, &as256, data, total);
    free(data);
}

static void test_repair(void **state)
{
    struct pt_bs_fixture *f = *state;
    unsigned char data[777], junk[300];
    struct pt_digest want;
    struct pt_upload u, v;
    char path[PATH_MAX];
    int fd;

    pt_bs_fill(data, sizeof(data), 9);
    pt_bs_fill(junk, sizeof(junk), 10);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, data, 500);

    /* Bytes written after the last saved state (crash between write and DB update). */
    pt_bs_upload_path(f, u.id, path);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, junk, sizeof(junk), 500), (ssize_t)sizeof(junk));
    close(fd);
    assert_int_equal(pt_bs_upload_size(f, u.id), 800);
    assert_int_equal(pt_blobstore_upload_repair(f->bs, &u), 0);
    assert_int_equal(pt_bs_upload_size(f, u.id), 500);
    assert_int_equal(pt_blobstore_upload_repair(f->bs, &u), 0); /* idempotent */

    pt_bs_append_ok(f, &u, data + 500, sizeof(data) - 500);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    pt_bs_assert_blob(f, &want, data, sizeof(data));

    /* A file shorter than the state cannot be resumed, nor appended to, nor committed. */
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &v), 0);
    pt_bs_append_ok(f, &v, data, 400);
    pt_bs_upload_path(f, v.id, path);
    assert_int_equal(truncate(path, 399), 0);
    assert_int_equal(pt_blobstore_upload_repair(f->bs, &v), PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(pt_blobstore_upload_append(f->bs, &v, data, 1), PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(v.offset, 400);
    assert_int_equal(pt_bs_upload_size(f, v.id), 399);
    pt_digest_of(data, 400, &want);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &v, &want), PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);

    /* A missing file cannot be resumed. */
    assert_int_equal(unlink(path), 0);
    assert_int_equal(pt_blobstore_upload_repair(f->bs, &v), PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(pt_blobstore_upload_append(f->bs, &v, data, 1), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &v, &want), PT_E_BLOB_UPLOAD_UNKNOWN);
}

static void test_commit_cuts_stale_tail(void **state)
{
    struct pt_bs_fixture *f = *state;
    unsigned char data[1000];
    struct pt_digest want;
    struct pt_upload u;
    char path[PATH_MAX];

    pt_bs_fill(data, sizeof(data), 12);
    pt_digest_of(data, 600, &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, data, 600);
    pt_bs_upload_path(f, u.id, path);
    assert_int_equal(truncate(path, 1000), 0);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    pt_bs_assert_blob(f, &want, data, 600);
}

static void test_commit_existing_blob(void **state)
{
    struct pt_bs_fixture *f = *state;
    unsigned char data[4096];
    struct pt_digest want;
    struct pt_upload a, b;
    struct stat st1, st2;
    char path[PATH_MAX];

    pt_bs_fill(data, sizeof(data), 13);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "one", 1, &a), 0);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "two", 1, &b), 0);
    pt_bs_append_ok(f, &a, data, sizeof(data));
    pt_bs_append_ok(f, &b, data, 1000);
    pt_bs_append_ok(f, &b, data + 1000, sizeof(data) - 1000);

    assert_int_equal(pt_blobstore_upload_commit(f->bs, &a, &want), 0);
    pt_bs_blob_path(f, &want, path);
    assert_int_equal(stat(path, &st1), 0);
    pt_bs_fault.rename_calls = 0;
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &b, &want), 0);
    assert_int_equal(pt_bs_fault.rename_calls, 0);
    assert_int_equal(pt_bs_upload_size(f, b.id), -1);
    assert_int_equal(stat(path, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino); /* installed file kept, not replaced */
    pt_bs_assert_blob(f, &want, data, sizeof(data));

    /* Committing an already-committed session again finds nothing to commit. */
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &a, &want), PT_E_BLOB_UPLOAD_UNKNOWN);
}

static void test_put_hash_advance_commits(void **state)
{
    struct pt_bs_fixture *f = *state;
    size_t len = (9u << 20) + 77; /* more than one writeback piece, not aligned */
    unsigned char *data = malloc(len);
    struct pt_digest want;
    struct pt_upload u, before;
    SHA256_CTX sha;

    assert_non_null(data);
    pt_bs_fill(data, len, 11);
    pt_digest_of(data, len, &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, data, 100);
    before = u;
    assert_int_equal(pt_blobstore_upload_put(f->bs, &u, data + 100, len - 100), 0);
    assert_memory_equal(&u, &before, sizeof(u)); /* put leaves the session alone */
    assert_int_equal(pt_bs_upload_size(f, u.id), (long long)len);
    pt_upload_hash(&u, data + 100, len - 100, &sha);
    assert_memory_equal(&u, &before, sizeof(u));
    pt_upload_advance(&u, &sha, len - 100);
    assert_int_equal(u.offset, len);
    assert_int_equal(pt_blobstore_upload_verify(f->bs, &u), 0);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    pt_bs_assert_blob(f, &want, data, len);
    free(data);
}

static void test_ingest_commits(void **state)
{
    struct pt_bs_fixture *f = *state;
    size_t len = (9u << 20) + 77; /* pieces of 256 KiB and writeback every 8 MiB, unaligned */
    unsigned char *data = malloc(len);
    struct pt_digest want;
    struct pt_upload u;
    double hash_s = -1;

    assert_non_null(data);
    pt_bs_fill(data, len, 12);
    pt_digest_of(data, len, &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, data, 3);
    assert_int_equal(pt_blobstore_upload_ingest(f->bs, &u, data + 3, len - 3, &hash_s), 0);
    assert_true(hash_s >= 0);
    assert_int_equal(u.offset, len);
    assert_int_equal(pt_bs_upload_size(f, u.id), (long long)len);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    pt_bs_assert_blob(f, &want, data, len);
    free(data);
}

static void test_put_refuses_short_file(void **state)
{
    struct pt_bs_fixture *f = *state;
    struct pt_upload u;
    char path[PATH_MAX];

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, "abcdef", 6);
    pt_bs_upload_path(f, u.id, path);
    assert_int_equal(truncate(path, 3), 0);
    assert_int_equal(pt_blobstore_upload_put(f->bs, &u, "gh", 2), PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(pt_bs_upload_size(f, u.id), 3);
}

static void test_verify_after_power_loss(void **state)
{
    struct pt_bs_fixture *f = *state;
    unsigned char data[5000];
    struct pt_upload u, gone;
    char path[PATH_MAX];
    int fd;

    pt_bs_fill(data, sizeof(data), 3);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    pt_bs_append_ok(f, &u, data, sizeof(data));
    assert_int_equal(pt_blobstore_upload_verify(f->bs, &u), 0);
    pt_bs_upload_path(f, u.id, path);

    /* a byte that never reached the disk reads back as something else */
    unsigned char other = (unsigned char)(data[4095] ^ 0xff);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, &other, 1, 4095), 1);
    close(fd);
    assert_int_equal(pt_blobstore_upload_verify(f->bs, &u), PT_E_BLOB_UPLOAD_INVALID);

    /* the tail lost: shorter than the record */
    assert_int_equal(truncate(path, 4000), 0);
    assert_int_equal(pt_blobstore_upload_verify(f->bs, &u), PT_E_BLOB_UPLOAD_INVALID);

    gone = u;
    snprintf(gone.id, sizeof(gone.id), "%s", "0123abcd");
    assert_int_equal(pt_blobstore_upload_verify(f->bs, &gone), PT_E_BLOB_UPLOAD_INVALID);
}

static void test_boot_note(void **state)
{
    struct pt_bs_fixture *f = *state;
    char path[PATH_MAX];

    assert_int_equal(pt_blobstore_boot_changed(f->bs), 1); /* never noted */
    assert_int_equal(pt_blobstore_boot_note(f->bs), 0);
    assert_int_equal(pt_blobstore_boot_changed(f->bs), 0);
    pt_bs_restart(f); /* the process restarts, the machine does not */
    assert_int_equal(pt_blobstore_boot_changed(f->bs), 0);
    snprintf(path, sizeof(path), "%s/boot_id", f->dir);
    pt_bs_write_file(path, "00000000-0000-0000-0000-000000000000\n", 37);
    assert_int_equal(pt_blobstore_boot_changed(f->bs), 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_sha512_commit, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_chunked_commit_matches_one_shot, pt_bs_setup,
                                        pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_empty_blob, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_restart, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_decode_rejects_corruption, pt_bs_setup,
                                        pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_wrong_digest_keeps_upload, pt_bs_setup,
                                        pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_repair, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_commit_cuts_stale_tail, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_commit_existing_blob, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_put_hash_advance_commits, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_put_refuses_short_file, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_ingest_commits, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_verify_after_power_loss, pt_bs_setup, pt_bs_teardown),
        cmocka_unit_test_setup_teardown(test_boot_note, pt_bs_setup, pt_bs_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
