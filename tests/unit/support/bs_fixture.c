/*
 * bs_fixture.c - the blob store tests' store, fault-injecting syscalls and file helpers (see
 * bs_fixture.h).
 */
#include <dirent.h>
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

#include "bs_fixture.h"
#include "tmpdir.h"

struct pt_bs_faults pt_bs_fault;

static ssize_t fake_pwrite(int fd, const void *buf, size_t len, off_t off)
{
    pt_bs_fault.pwrite_calls++;
    if (pt_bs_fault.pwrite_fail_at == pt_bs_fault.pwrite_calls) {
        errno = pt_bs_fault.pwrite_errno;
        return -1;
    }
    if (pt_bs_fault.pwrite_eintr && pt_bs_fault.pwrite_calls % 2 == 1) {
        errno = EINTR;
        return -1;
    }
    if (pt_bs_fault.pwrite_zero) {
        if (pt_bs_fault.pwrite_calls > 1000)
            fail_msg("pwrite retried without progress");
        return 0;
    }
    if (pt_bs_fault.pwrite_cap > 0 && len > pt_bs_fault.pwrite_cap)
        len = pt_bs_fault.pwrite_cap;
    return pwrite(fd, buf, len, off);
}

static int fake_fsync(int fd)
{
    if (++pt_bs_fault.fsync_calls == pt_bs_fault.fsync_fail_at) {
        errno = EIO;
        return -1;
    }
    return fsync(fd);
}

static int fake_fdatasync(int fd)
{
    if (++pt_bs_fault.fdatasync_calls == pt_bs_fault.fdatasync_fail_at) {
        errno = EIO;
        return -1;
    }
    return fdatasync(fd);
}

static int fake_ftruncate(int fd, off_t len)
{
    pt_bs_fault.ftruncate_calls++;
    if (pt_bs_fault.ftruncate_fail) {
        errno = EIO;
        return -1;
    }
    return ftruncate(fd, len);
}

static int fake_renameat(int odfd, const char *op, int ndfd, const char *np)
{
    pt_bs_fault.rename_calls++;
    if (pt_bs_fault.rename_fail) {
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

int pt_bs_setup(void **state)
{
    struct pt_bs_fixture *f = calloc(1, sizeof(*f));
    assert_non_null(f);
    pt_tmpdir_create(f->dir, sizeof(f->dir), "pt_blobstore_");
    f->open_fds = count_fds();
    assert_int_equal(pt_blobstore_open(f->dir, &f->bs), 0);
    memset(&pt_bs_fault, 0, sizeof(pt_bs_fault));
    install_fakes(f->bs);
    *state = f;
    return 0;
}

int pt_bs_teardown(void **state)
{
    struct pt_bs_fixture *f = *state;
    pt_blobstore_close(f->bs);
    assert_int_equal(count_fds(), f->open_fds);
    assert_int_equal(pt_tmpdir_remove(f->dir), 0);
    free(f);
    return 0;
}

void pt_bs_restart(struct pt_bs_fixture *f)
{
    pt_blobstore_close(f->bs);
    f->bs = NULL;
    assert_int_equal(pt_blobstore_open(f->dir, &f->bs), 0);
    install_fakes(f->bs);
}

void pt_bs_fill(unsigned char *buf, size_t len, uint32_t seed)
{
    uint32_t x = seed * 2654435761u + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 17;
        x ^= x << 5;
        buf[i] = (unsigned char)x;
    }
}

void pt_bs_upload_path(const struct pt_bs_fixture *f, const char *id, char *out)
{
    snprintf(out, PATH_MAX, "%s/uploads/%s", f->dir, id);
}

void pt_bs_blob_path(const struct pt_bs_fixture *f, const struct pt_digest *d, char *out)
{
    snprintf(out, PATH_MAX, "%s/blobs/%s/%.2s/%s", f->dir, pt_digest_algo_name(d->algo), d->hex,
             d->hex);
}

long long pt_bs_file_size(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return -1;
    return (long long)st.st_size;
}

long long pt_bs_upload_size(const struct pt_bs_fixture *f, const char *id)
{
    char path[PATH_MAX];
    pt_bs_upload_path(f, id, path);
    return pt_bs_file_size(path);
}

void pt_bs_write_file(const char *path, const void *buf, size_t len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, buf, len), (ssize_t)len);
    close(fd);
}

void pt_bs_assert_blob(struct pt_bs_fixture *f, const struct pt_digest *d,
                       const unsigned char *data, size_t len)
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

void pt_bs_append_ok(struct pt_bs_fixture *f, struct pt_upload *u, const void *buf, size_t len)
{
    assert_int_equal(pt_blobstore_upload_append(f->bs, u, buf, len), 0);
}
