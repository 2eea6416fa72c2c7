/*
 * test_blobstore.c - unit tests for the filesystem blob store (node/blobstore.c).
 *
 * Each test runs against a fresh store in its own temporary directory. Restarts are simulated
 * by encoding the session, closing the store, reopening it and decoding. Faults are injected
 * through the store's syscall table: the fakes below count calls and fail the chosen one.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
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

struct fixture {
    char dir[256]; /* short, so every path built from it fits in PATH_MAX */
    struct pt_blobstore *bs;
    int open_fds; /* before the store was opened: every test must end with as many */
};

/* Fault plan for the fake syscalls; reset before every test. A *_fail_at of n fails the n-th
 * call (1-based); 0 never fails. */
static struct {
    int pwrite_calls, pwrite_fail_at, pwrite_errno;
    size_t pwrite_cap; /* >0: write at most this many bytes per call */
    int pwrite_eintr;  /* odd-numbered calls fail with EINTR */
    int pwrite_zero;   /* return 0 (no progress) */
    int fsync_calls, fsync_fail_at;
    int fdatasync_calls, fdatasync_fail_at;
    int ftruncate_calls, ftruncate_fail;
    int rename_calls, rename_fail;
} fault;

static ssize_t fake_pwrite(int fd, const void *buf, size_t len, off_t off)
{
    fault.pwrite_calls++;
    if (fault.pwrite_fail_at == fault.pwrite_calls) {
        errno = fault.pwrite_errno;
        return -1;
    }
    if (fault.pwrite_eintr && fault.pwrite_calls % 2 == 1) {
        errno = EINTR;
        return -1;
    }
    if (fault.pwrite_zero) {
        if (fault.pwrite_calls > 1000)
            fail_msg("pwrite retried without progress");
        return 0;
    }
    if (fault.pwrite_cap > 0 && len > fault.pwrite_cap)
        len = fault.pwrite_cap;
    return pwrite(fd, buf, len, off);
}

static int fake_fsync(int fd)
{
    if (++fault.fsync_calls == fault.fsync_fail_at) {
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}

static int fake_fdatasync(int fd)
{
    if (++fault.fdatasync_calls == fault.fdatasync_fail_at) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static int fake_ftruncate(int fd, off_t len)
{
    fault.ftruncate_calls++;
    if (fault.ftruncate_fail) {
        errno = EIO;
        return -1;
    }
    return ftruncate(fd, len);
}

static int fake_renameat(int odfd, const char *op, int ndfd, const char *np)
{
    fault.rename_calls++;
    if (fault.rename_fail) {
        errno = EXDEV;
        return -1;
    }
    return renameat(odfd, op, ndfd, np);
}

static void install_fakes(struct pt_blobstore *bs)
{
    struct pt_blobstore_sys *sys = pt_blobstore_sys(bs);
    sys->pwrite_fn = fake_pwrite;
    sys->fsync_fn = fake_fsync;
    sys->fdatasync_fn = fake_fdatasync;
    sys->ftruncate_fn = fake_ftruncate;
    sys->renameat_fn = fake_renameat;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Number of open file descriptors of this process. */
static int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    assert_non_null(d);
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    const char *base = getenv("TMPDIR");
    assert_non_null(f);
    int n = snprintf(f->dir, sizeof(f->dir), "%s/pt_blobstore_XXXXXX", base ? base : "/tmp");
    assert_true(n > 0 && (size_t)n < sizeof(f->dir));
    assert_non_null(mkdtemp(f->dir));
    f->open_fds = count_fds();
    assert_int_equal(pt_blobstore_open(f->dir, &f->bs), 0);
    memset(&fault, 0, sizeof(fault));
    install_fakes(f->bs);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    pt_blobstore_close(f->bs);
    assert_int_equal(count_fds(), f->open_fds);
    assert_int_equal(nftw(f->dir, rm_cb, 16, FTW_DEPTH | FTW_PHYS), 0);
    free(f);
    return 0;
}

/* Closes and reopens the store, as after a process restart. */
static void restart(struct fixture *f)
{
    pt_blobstore_close(f->bs);
    f->bs = NULL;
    assert_int_equal(pt_blobstore_open(f->dir, &f->bs), 0);
    install_fakes(f->bs);
}

/* Deterministic pseudo-random bytes. */
static void fill(unsigned char *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
}

static void upload_path(const struct fixture *f, const char *id, char *out)
{
    snprintf(out, PATH_MAX, "%s/uploads/%s", f->dir, id);
}

static void blob_path(const struct fixture *f, const struct pt_digest *d, char *out)
{
    snprintf(out, PATH_MAX, "%s/blobs/%s/%.2s/%s", f->dir, pt_digest_algo_name(d->algo), d->hex,
             d->hex);
}

/* Size of path, or -1 if it does not exist. */
static long long file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (long long)st.st_size;
}

static long long upload_size(const struct fixture *f, const char *id)
{
    char path[PATH_MAX];
    upload_path(f, id, path);
    return file_size(path);
}

static void write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

/* Asserts that the stored blob d holds exactly data[0, len). */
static void assert_blob(struct fixture *f, const struct pt_digest *d, const unsigned char *data,
                        size_t len)
{
    uint64_t size = 0;
    int fd = -1;
    unsigned char *got = malloc(len + 1);
    assert_non_null(got);
    assert_int_equal(pt_blobstore_stat(f->bs, d, &size), 0);
    assert_int_equal(size, len);
    assert_int_equal(pt_blobstore_open_blob(f->bs, d, &fd, &size), 0);
    assert_int_equal(size, len);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    assert_int_equal(pread(fd, got, len + 1, 0), (ssize_t)len);
    assert_memory_equal(got, data, len);
    close(fd);
    free(got);
}

static void append_ok(struct fixture *f, struct pt_upload *u, const void *buf, size_t len)
{
    assert_int_equal(pt_blobstore_upload_append(f->bs, u, buf, len), 0);
}

static void test_open_creates_layout_and_clears_tmp(void **state)
{
    struct fixture *f = *state;
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
    write_file(path, "abc", 3);
    snprintf(path, sizeof(path), "%s/nested", tmp);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/nested/deeper", tmp);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/nested/deeper/f", tmp);
    write_file(path, "x", 1);
    snprintf(path, sizeof(path), "%s/keep", f->dir);
    write_file(path, "k", 1);
    snprintf(sub, sizeof(sub), "%s/link", tmp);
    assert_int_equal(symlink(path, sub), 0);

    restart(f);
    tmp = pt_blobstore_tmp_dir(f->bs);
    snprintf(path, sizeof(path), "%s/spill.1", tmp);
    assert_int_equal(file_size(path), -1);
    snprintf(path, sizeof(path), "%s/nested", tmp);
    assert_int_equal(lstat(path, &st), -1);
    snprintf(path, sizeof(path), "%s/link", tmp);
    assert_int_equal(lstat(path, &st), -1);
    snprintf(path, sizeof(path), "%s/keep", f->dir);
    assert_int_equal(file_size(path), 1);
    assert_int_equal(stat(tmp, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
}

static void test_open_errors(void **state)
{
    struct fixture *f = *state;
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
    write_file(path, "x", 1);
    assert_int_equal(pt_blobstore_open(path, &bs), PT_E_IO);
    /* A missing parent. */
    snprintf(path, sizeof(path), "%s/no/such", f->dir);
    assert_int_equal(pt_blobstore_open(path, &bs), PT_E_IO);
    assert_null(bs);
    pt_blobstore_close(NULL);
}

static void test_begin(void **state)
{
    struct fixture *f = *state;
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
    assert_int_equal(upload_size(f, a.id), 0);
    assert_int_equal(upload_size(f, b.id), 0);

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
    struct fixture *f = *state;
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
    assert_int_equal(upload_size(f, hex), 0);
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

static void test_chunked_commit_matches_one_shot(void **state)
{
    struct fixture *f = *state;
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
    fill(data, total, 7);
    pt_digest_of(data, total, &want);

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    for (size_t i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        append_ok(f, &u, data + off, chunks[i]);
        off += chunks[i];
        assert_int_equal(u.offset, off);
        assert_int_equal(upload_size(f, u.id), (long long)off);
    }
    append_ok(f, &u, data + off, total - off);
    assert_int_equal(u.offset, total);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);

    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    assert_int_equal(upload_size(f, u.id), -1);
    assert_blob(f, &want, data, total);
    blob_path(f, &want, path);
    assert_int_equal(file_size(path), (long long)total);
    /* One fdatasync per non-empty append; file and directory fsync at commit. */
    assert_int_equal(fault.fdatasync_calls, 11);
    assert_int_equal(fault.fsync_calls, 2);
    assert_int_equal(fault.rename_calls, 1);
    free(data);
}

static void test_empty_blob(void **state)
{
    struct fixture *f = *state;
    struct pt_digest want;
    struct pt_upload u;

    pt_digest_of("", 0, &want);
    assert_string_equal(want.hex,
                        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    assert_blob(f, &want, (const unsigned char *)"", 0);
}

static void test_resume_after_restart(void **state)
{
    struct fixture *f = *state;
    enum { TOTAL = 300001, CUT = 150037 };
    unsigned char *data = malloc(TOTAL);
    unsigned char *enc = malloc(pt_upload_encoded_size());
    struct pt_upload u, back;
    struct pt_digest want;

    assert_non_null(data);
    assert_non_null(enc);
    assert_int_equal(pt_upload_encoded_size(), 458);
    fill(data, TOTAL, 11);
    pt_digest_of(data, TOTAL, &want);

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "team/app", 42, &u), 0);
    append_ok(f, &u, data, 1000);
    append_ok(f, &u, data + 1000, CUT - 1000);
    u.updated_ms = 99;
    pt_upload_encode(&u, enc);

    /* Restart: only the encoded state survives. */
    restart(f);
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
    append_ok(f, &back, data + CUT, TOTAL - CUT);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &back, &want), 0);
    assert_blob(f, &want, data, TOTAL);
    free(enc);
    free(data);
}

static void test_decode_rejects_corruption(void **state)
{
    struct fixture *f = *state;
    size_t n = pt_upload_encoded_size();
    unsigned char *good = malloc(n), *bad = malloc(n + 1);
    struct pt_upload u, out;
    unsigned char data[100];

    assert_non_null(good);
    assert_non_null(bad);
    fill(data, sizeof(data), 3);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 5, &u), 0);
    append_ok(f, &u, data, sizeof(data));
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
    struct fixture *f = *state;
    unsigned char data[5000];
    struct pt_digest want, wrong;
    struct pt_upload u, before;

    fill(data, sizeof(data), 5);
    pt_digest_of(data, sizeof(data), &want);
    pt_digest_of(data, sizeof(data) - 1, &wrong);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    append_ok(f, &u, data, sizeof(data));
    before = u;

    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &wrong), PT_E_DIGEST_INVALID);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(upload_size(f, u.id), (long long)sizeof(data));
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
    assert_blob(f, &want, data, sizeof(data));
    assert_int_equal(upload_size(f, u.id), -1);
}

/*
 * An upload closed with a sha512 digest: verified by rehashing the file (larger than the
 * rehash buffer, and with bytes past the offset that are not part of it), installed under
 * blobs/sha512/, and a separate blob from the same bytes under sha256.
 */
static void test_sha512_commit(void **state)
{
    struct fixture *f = *state;
    size_t total = 700000;
    unsigned char *data = malloc(total), junk[100];
    struct pt_digest want, wrong, as256;
    struct pt_upload u, before, v;
    char path[PATH_MAX];
    int fd;

    assert_non_null(data);
    fill(data, total, 21);
    fill(junk, sizeof(junk), 22);
    pt_digest_of_algo(data, total, PT_DIGEST_SHA512, &want);
    pt_digest_of_algo(data, total - 1, PT_DIGEST_SHA512, &wrong);
    pt_digest_of(data, total, &as256);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    append_ok(f, &u, data, 300000);
    append_ok(f, &u, data + 300000, total - 300000);
    /* bytes past the session's offset (a write whose state was never kept) */
    upload_path(f, u.id, path);
    fd = open(path, O_WRONLY | O_APPEND);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
    close(fd);
    before = u;

    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &wrong), PT_E_DIGEST_INVALID);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_true(upload_size(f, u.id) >= (long long)total);
    assert_int_equal(pt_blobstore_stat(f->bs, &wrong, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);

    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    assert_blob(f, &want, data, total);
    blob_path(f, &want, path);
    assert_non_null(strstr(path, "/blobs/sha512/"));
    assert_int_equal(file_size(path), (long long)total);
    assert_int_equal(upload_size(f, u.id), -1);
    assert_int_equal(pt_blobstore_stat(f->bs, &as256, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);

    /* the same bytes again: the installed blob stays, the upload goes */
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 2, &v), 0);
    append_ok(f, &v, data, total);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &v, &want), 0);
    assert_int_equal(upload_size(f, v.id), -1);
    /* and under sha256 they are a second file */
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 3, &v), 0);
    append_ok(f, &v, data, total);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &v, &as256), 0);
    assert_blob(f, &as256, data, total);

    /* a sha512 digest with a sha256 length is malformed */
    struct pt_digest bogus = want;
    bogus.hex[64] = '\0';
    assert_int_equal(pt_blobstore_stat(f->bs, &bogus, &(uint64_t){0}), PT_E_DIGEST_INVALID);

    assert_int_equal(pt_blobstore_remove_blob(f->bs, &want), 0);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);
    assert_blob(f, &as256, data, total);
    free(data);
}

static void test_repair(void **state)
{
    struct fixture *f = *state;
    unsigned char data[777], junk[300];
    struct pt_digest want;
    struct pt_upload u, v;
    char path[PATH_MAX];
    int fd;

    fill(data, sizeof(data), 9);
    fill(junk, sizeof(junk), 10);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    append_ok(f, &u, data, 500);

    /* Bytes written after the last saved state (crash between write and DB update). */
    upload_path(f, u.id, path);
    fd = open(path, O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(pwrite(fd, junk, sizeof(junk), 500), (ssize_t)sizeof(junk));
    close(fd);
    assert_int_equal(upload_size(f, u.id), 800);
    assert_int_equal(pt_blobstore_upload_repair(f->bs, &u), 0);
    assert_int_equal(upload_size(f, u.id), 500);
    assert_int_equal(pt_blobstore_upload_repair(f->bs, &u), 0); /* idempotent */

    append_ok(f, &u, data + 500, sizeof(data) - 500);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    assert_blob(f, &want, data, sizeof(data));

    /* A file shorter than the state cannot be resumed, nor appended to, nor committed. */
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &v), 0);
    append_ok(f, &v, data, 400);
    upload_path(f, v.id, path);
    assert_int_equal(truncate(path, 399), 0);
    assert_int_equal(pt_blobstore_upload_repair(f->bs, &v), PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(pt_blobstore_upload_append(f->bs, &v, data, 1), PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(v.offset, 400);
    assert_int_equal(upload_size(f, v.id), 399);
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
    struct fixture *f = *state;
    unsigned char data[1000];
    struct pt_digest want;
    struct pt_upload u;
    char path[PATH_MAX];

    fill(data, sizeof(data), 12);
    pt_digest_of(data, 600, &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    append_ok(f, &u, data, 600);
    upload_path(f, u.id, path);
    assert_int_equal(truncate(path, 1000), 0);
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    assert_blob(f, &want, data, 600);
}

static void test_commit_existing_blob(void **state)
{
    struct fixture *f = *state;
    unsigned char data[4096];
    struct pt_digest want;
    struct pt_upload a, b;
    struct stat st1, st2;
    char path[PATH_MAX];

    fill(data, sizeof(data), 13);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "one", 1, &a), 0);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "two", 1, &b), 0);
    append_ok(f, &a, data, sizeof(data));
    append_ok(f, &b, data, 1000);
    append_ok(f, &b, data + 1000, sizeof(data) - 1000);

    assert_int_equal(pt_blobstore_upload_commit(f->bs, &a, &want), 0);
    blob_path(f, &want, path);
    assert_int_equal(stat(path, &st1), 0);
    fault.rename_calls = 0;
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &b, &want), 0);
    assert_int_equal(fault.rename_calls, 0);
    assert_int_equal(upload_size(f, b.id), -1);
    assert_int_equal(stat(path, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino); /* installed file kept, not replaced */
    assert_blob(f, &want, data, sizeof(data));

    /* Committing an already-committed session again finds nothing to commit. */
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &a, &want), PT_E_BLOB_UPLOAD_UNKNOWN);
}

static void test_abort(void **state)
{
    struct fixture *f = *state;
    struct pt_upload u;
    char path[PATH_MAX];

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    append_ok(f, &u, "abc", 3);
    assert_int_equal(pt_blobstore_upload_abort(f->bs, u.id), 0);
    assert_int_equal(upload_size(f, u.id), -1);
    assert_int_equal(pt_blobstore_upload_abort(f->bs, u.id), 0);
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, "d", 1), PT_E_BLOB_UPLOAD_UNKNOWN);

    /* Ids that could leave uploads/ are refused. */
    snprintf(path, sizeof(path), "%s/victim", f->dir);
    write_file(path, "v", 1);
    assert_int_equal(pt_blobstore_upload_abort(f->bs, "../victim"), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(pt_blobstore_upload_abort(f->bs, ""), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(pt_blobstore_upload_abort(f->bs, "ABC"), PT_E_BLOB_UPLOAD_UNKNOWN);
    char long_id[PT_UPLOAD_ID_MAX + 2];
    memset(long_id, 'a', sizeof(long_id) - 1);
    long_id[sizeof(long_id) - 1] = '\0';
    assert_int_equal(pt_blobstore_upload_abort(f->bs, long_id), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(file_size(path), 1);

    strcpy(u.id, "../victim");
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, "d", 1), PT_E_BLOB_UPLOAD_UNKNOWN);
    assert_int_equal(pt_blobstore_upload_repair(f->bs, &u), PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(file_size(path), 1);
}

static void test_stat_open_remove(void **state)
{
    struct fixture *f = *state;
    unsigned char data[2048];
    struct pt_digest want, bogus;
    struct pt_upload u;
    uint64_t size = 77;
    int fd = -1;

    fill(data, sizeof(data), 14);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &size), PT_E_BLOB_UNKNOWN);
    assert_int_equal(size, 77);
    assert_int_equal(pt_blobstore_open_blob(f->bs, &want, &fd, &size), PT_E_BLOB_UNKNOWN);
    assert_int_equal(fd, -1);
    assert_int_equal(pt_blobstore_remove_blob(f->bs, &want), PT_E_BLOB_UNKNOWN);

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    append_ok(f, &u, data, sizeof(data));
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    assert_blob(f, &want, data, sizeof(data));

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
    struct fixture *f = *state;
    struct pt_upload a, b, c;
    struct live_set live = {{NULL}, 0};
    char path[PATH_MAX];
    struct stat st;

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &a), 0);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &b), 0);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &c), 0);
    append_ok(f, &a, "aaaa", 4);
    append_ok(f, &c, "cc", 2);
    snprintf(path, sizeof(path), "%s/uploads/Not-An-Id", f->dir);
    write_file(path, "j", 1);
    snprintf(path, sizeof(path), "%s/uploads/abc", f->dir);
    assert_int_equal(mkdir(path, 0755), 0);
    snprintf(path, sizeof(path), "%s/uploads/abc/inner", f->dir);
    write_file(path, "j", 1);

    live.ids[0] = a.id;
    live.ids[1] = c.id;
    live.ids[2] = "Not-An-Id"; /* malformed names are never asked about, never kept */
    restart(f);
    assert_int_equal(pt_blobstore_sweep_uploads(f->bs, is_live, &live), 0);
    assert_int_equal(live.calls, 3);
    assert_int_equal(upload_size(f, a.id), 4);
    assert_int_equal(upload_size(f, b.id), -1);
    assert_int_equal(upload_size(f, c.id), 2);
    snprintf(path, sizeof(path), "%s/uploads/Not-An-Id", f->dir);
    assert_int_equal(lstat(path, &st), -1);
    snprintf(path, sizeof(path), "%s/uploads/abc", f->dir);
    assert_int_equal(lstat(path, &st), -1);

    /* Nothing live: everything goes. */
    live.ids[0] = live.ids[1] = live.ids[2] = NULL;
    assert_int_equal(pt_blobstore_sweep_uploads(f->bs, is_live, &live), 0);
    assert_int_equal(upload_size(f, a.id), -1);
    assert_int_equal(upload_size(f, c.id), -1);
}

/* Fault injection. */

static void test_fsync_failure_keeps_upload(void **state)
{
    struct fixture *f = *state;
    unsigned char data[10000];
    struct pt_digest want;
    struct pt_upload u, before;
    char path[PATH_MAX];

    fill(data, sizeof(data), 15);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    append_ok(f, &u, data, sizeof(data));
    before = u;

    fault.fsync_calls = 0;
    fault.fsync_fail_at = 1; /* the upload file's fsync before the rename */
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), PT_E_IO);
    assert_int_equal(fault.rename_calls, 0);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);
    blob_path(f, &want, path);
    assert_int_equal(file_size(path), -1);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(upload_size(f, u.id), (long long)sizeof(data));

    fault.fsync_fail_at = 0;
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    assert_blob(f, &want, data, sizeof(data));
}

static void test_rename_failure_keeps_upload(void **state)
{
    struct fixture *f = *state;
    unsigned char data[3333];
    struct pt_digest want;
    struct pt_upload u, before;

    fill(data, sizeof(data), 16);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    append_ok(f, &u, data, sizeof(data));
    before = u;

    fault.rename_fail = 1;
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), PT_E_IO);
    assert_int_equal(fault.rename_calls, 1);
    assert_int_equal(pt_blobstore_stat(f->bs, &want, &(uint64_t){0}), PT_E_BLOB_UNKNOWN);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(upload_size(f, u.id), (long long)sizeof(data));

    fault.rename_fail = 0;
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    assert_blob(f, &want, data, sizeof(data));
}

static void test_dir_fsync_failure_after_rename(void **state)
{
    struct fixture *f = *state;
    unsigned char data[512];
    struct pt_digest want;
    struct pt_upload u;

    fill(data, sizeof(data), 17);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    append_ok(f, &u, data, sizeof(data));

    fault.fsync_calls = 0;
    fault.fsync_fail_at = 2; /* the directory's fsync after the rename */
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), PT_E_IO);
    assert_int_equal(fault.rename_calls, 1);
    /* The blob is complete and verified even though its durability is unknown. */
    assert_blob(f, &want, data, sizeof(data));
    assert_int_equal(upload_size(f, u.id), -1);
}

static void test_pwrite_failure_rolls_back(void **state)
{
    struct fixture *f = *state;
    unsigned char data[9000];
    struct pt_digest want;
    struct pt_upload u, before;

    fill(data, sizeof(data), 18);
    pt_digest_of(data, sizeof(data), &want);
    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    append_ok(f, &u, data, 1000);
    before = u;

    /* Half the chunk lands, then the disk is full. */
    fault.pwrite_calls = 0;
    fault.pwrite_cap = 2000;
    fault.pwrite_fail_at = 2;
    fault.pwrite_errno = ENOSPC;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, data + 1000, 4000), PT_E_UNAVAILABLE);
    assert_int_equal(fault.pwrite_calls, 2);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(upload_size(f, u.id), 1000);

    fault.pwrite_errno = EIO;
    fault.pwrite_calls = 0;
    fault.pwrite_fail_at = 1;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, data + 1000, 4000), PT_E_IO);
    assert_memory_equal(&u, &before, sizeof(u));

    /* A write that makes no progress is an error, not a hang. */
    fault.pwrite_fail_at = 0;
    fault.pwrite_zero = 1;
    fault.pwrite_calls = 0;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, data + 1000, 10), PT_E_IO);
    assert_int_equal(fault.pwrite_calls, 1);
    assert_memory_equal(&u, &before, sizeof(u));
    fault.pwrite_zero = 0;

    /* fdatasync failing rolls back too. */
    fault.fdatasync_calls = 0;
    fault.fdatasync_fail_at = 1;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, data + 1000, 4000), PT_E_IO);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(upload_size(f, u.id), 1000);

    /* If the cut-back fails as well, the stale tail is overwritten or cut later. */
    fault.fdatasync_calls = 0;
    fault.ftruncate_fail = 1;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, data + 1000, 4000), PT_E_IO);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(upload_size(f, u.id), 5000);
    fault.ftruncate_fail = 0;
    fault.fdatasync_fail_at = 0;

    /* Short writes and EINTR are retried transparently. */
    fault.pwrite_calls = 0;
    fault.pwrite_cap = 777;
    fault.pwrite_eintr = 1;
    append_ok(f, &u, data + 1000, sizeof(data) - 1000);
    assert_true(fault.pwrite_calls >= (int)(2 * ((sizeof(data) - 1000 + 776) / 777)));
    assert_int_equal(u.offset, sizeof(data));
    assert_int_equal(pt_blobstore_upload_commit(f->bs, &u, &want), 0);
    assert_blob(f, &want, data, sizeof(data));
}

static void test_size_limit(void **state)
{
    struct fixture *f = *state;
    struct pt_upload u, before;

    assert_int_equal(pt_blobstore_upload_begin(f->bs, "r", 1, &u), 0);
    u.offset = PT_UPLOAD_SIZE_MAX - 1;
    before = u;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, "ab", 2), PT_E_TOO_LARGE);
    assert_memory_equal(&u, &before, sizeof(u));
    assert_int_equal(fault.pwrite_calls, 0);
    u.offset = PT_UPLOAD_SIZE_MAX + 1;
    assert_int_equal(pt_blobstore_upload_append(f->bs, &u, "a", 1), PT_E_BLOB_UPLOAD_INVALID);
    assert_int_equal(pt_blobstore_upload_repair(f->bs, &u), PT_E_BLOB_UPLOAD_INVALID);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_layout_and_clears_tmp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        cmocka_unit_test_setup_teardown(test_begin, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sha512_commit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_prefix_and_chosen_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_chunked_commit_matches_one_shot, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resume_after_restart, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_rejects_corruption, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wrong_digest_keeps_upload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_repair, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_cuts_stale_tail, setup, teardown),
        cmocka_unit_test_setup_teardown(test_commit_existing_blob, setup, teardown),
        cmocka_unit_test_setup_teardown(test_abort, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stat_open_remove, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fsync_failure_keeps_upload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_rename_failure_keeps_upload, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir_fsync_failure_after_rename, setup, teardown),
        cmocka_unit_test_setup_teardown(test_pwrite_failure_rolls_back, setup, teardown),
        cmocka_unit_test_setup_teardown(test_size_limit, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
