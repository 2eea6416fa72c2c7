/*
 * blobstore.c - content-addressed blob storage on the local filesystem.
 *
 * On-disk layout under the data directory given to pt_blobstore_open:
 *
 *   <dir>/
 *   |-- blobs/
 *   |   |-- sha256/
 *   |   |   |-- 00/ .. ff/       all 256 fan-out directories, created at open
 *   |   |   |   `-- <64 hex>     verified, immutable blob files
 *   |   `-- sha512/
 *   |       |-- 00/ .. ff/       the same for blobs addressed by sha512 digests
 *   |       |   `-- <128 hex>
 *   |-- uploads/
 *   |   `-- <upload id>          in-progress upload data, bytes [0, offset) of the session
 *   |                            (blobstore_upload.c)
 *   |-- tmp/                     request-body spill files of the HTTP server (cleared at open)
 *   `-- boot_id                  the kernel boot id of the last start (blobstore_upload.c)
 *
 * Invariant: a file under blobs/ is always complete and verified. Its bytes were appended to
 * uploads/<id> (the session state that covers them recorded after they were written), their
 * hash compared with the digest the client named, the file fsync'd, rename()'d
 * into blobs/<algorithm>/<xx>/<hex> and that directory fsync'd. rename() is atomic, so a crash at
 * any instant leaves either no blob or the whole verified blob; never a partial one.
 *
 * This file owns the blob side: the tree, blob paths, stat/open/remove of blobs, and the last
 * step of a commit, installing a verified upload file as a blob. Upload sessions (their files,
 * their serialised state, begin/append/commit) are blobstore_upload.c's.
 *
 * Blob names are built from validated input only: digests are exactly 64 (sha256) or 128
 * (sha512) lower-case hex digits (blobstore_blob_name), and the algorithm picks one of the two
 * directories held open, so no request can name a path outside blobs/. The same bytes pushed
 * under both algorithms are two blobs, one file in each tree. Directories are
 * held open as fds and addressed with the *at() calls.
 *
 * Threads: every function blocks on file I/O and runs on worker threads, never on an event
 * loop. The store is immutable after open (fds, paths; the syscall table changes only in tests,
 * between calls), so concurrent calls need no lock. Two sessions committing the same digest at
 * once are harmless: both renames install identical verified content. Readers keep an opened blob
 * readable across removal.
 *
 * Fault injection: pwrite, ftruncate, fsync, fdatasync and renameat go through the per-store
 * table struct pt_blobstore_sys so tests can make them fail at chosen points.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "blobstore_int.h"
#include "err.h"

static const struct pt_blobstore_sys default_sys = {
    .pwrite_fn = pwrite,
    .ftruncate_fn = ftruncate,
    .fsync_fn = fsync,
    .fdatasync_fn = fdatasync,
    .renameat_fn = renameat,
};

int blobstore_io_err(int e)
{
    switch (e) {
    case ENOMEM:
        return PT_E_NOMEM;
    case ENOSPC:
    case EDQUOT:
        return PT_E_DISK_FULL;
    default:
        return PT_E_IO;
    }
}

int blobstore_blob_name(const struct pt_digest *d, char name[BLOB_NAME_SIZE])
{
    size_t hex_len;
    if (d->algo != PT_DIGEST_SHA256 && d->algo != PT_DIGEST_SHA512)
        return PT_E_DIGEST_INVALID;
    hex_len = pt_digest_hex_len(d->algo);
    for (size_t i = 0; i < hex_len; i++) {
        char c = d->hex[i];
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return PT_E_DIGEST_INVALID;
    }
    if (d->hex[hex_len] != '\0')
        return PT_E_DIGEST_INVALID;
    name[0] = d->hex[0];
    name[1] = d->hex[1];
    name[2] = '/';
    memcpy(name + 3, d->hex, hex_len + 1);
    return 0;
}

/*
 * Creates directory name under parent if missing (setting *created) and opens it.
 * Returns the fd or a negative PT_E_* code.
 */
static int ensure_dir(int parent, const char *name, int *created)
{
    int fd;
    if (mkdirat(parent, name, DIR_MODE) == 0)
        *created = 1;
    else if (errno != EEXIST)
        return blobstore_io_err(errno);
    fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return blobstore_io_err(errno);
    return fd;
}

int blobstore_each_entry(int dfd, int (*fn)(int dirfd, const struct dirent *e, void *arg),
                         void *arg)
{
    struct dirent *e;
    DIR *d;
    int rv = 0;
    int fd = openat(dfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return blobstore_io_err(errno);
    d = fdopendir(fd);
    if (d == NULL) {
        rv = blobstore_io_err(errno);
        close(fd);
        return rv;
    }
    for (;;) {
        errno = 0;
        e = readdir(d);
        if (e == NULL) {
            if (errno != 0)
                rv = blobstore_io_err(errno);
            break;
        }
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        rv = fn(dirfd(d), e, arg);
        if (rv != 0)
            break;
    }
    closedir(d);
    return rv;
}

static int remove_child(int dfd, const struct dirent *e, void *arg)
{
    return blobstore_remove_entry(dfd, e->d_name, *(const int *)arg);
}

/* Removes everything inside the directory dfd (borrowed), descending at most depth levels. */
static int remove_children(int dfd, int depth)
{
    return blobstore_each_entry(dfd, remove_child, &depth);
}

int blobstore_remove_entry(int dfd, const char *name, int depth)
{
    int sub, rv;
    if (unlinkat(dfd, name, 0) == 0 || errno == ENOENT)
        return 0;
    if (errno != EISDIR && errno != EPERM)
        return blobstore_io_err(errno);
    if (depth == 0)
        return PT_E_IO;
    sub = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        return blobstore_io_err(errno);
    rv = remove_children(sub, depth - 1);
    close(sub);
    if (rv != 0)
        return rv;
    if (unlinkat(dfd, name, AT_REMOVEDIR) != 0 && errno != ENOENT)
        return blobstore_io_err(errno);
    return 0;
}

/* Creates blobs/<algorithm>/00 .. ff in the directory dfd; fsyncs it if any was new. */
static int create_fanout(struct pt_blobstore *bs, int dfd)
{
    static const char hex[] = "0123456789abcdef";
    int created = 0;
    for (int i = 0; i < 256; i++) {
        char name[3] = {hex[i >> 4], hex[i & 15], '\0'};
        if (mkdirat(dfd, name, DIR_MODE) == 0)
            created = 1;
        else if (errno != EEXIST)
            return blobstore_io_err(errno);
    }
    if (created && bs->sys.fsync_fn(dfd) != 0)
        return blobstore_io_err(errno);
    return 0;
}

/* Opens the tree of an allocated bs whose root is set; fills the fds. */
static int open_tree(struct pt_blobstore *bs)
{
    int root_created = 0, blobs_created = 0, tmp_fd, blobs_parent, rv;

    bs->root_fd = open(bs->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (bs->root_fd < 0)
        return blobstore_io_err(errno);

    blobs_parent = ensure_dir(bs->root_fd, "blobs", &root_created);
    if (blobs_parent < 0)
        return blobs_parent;
    for (int a = 0; a < PT_DIGEST_ALGO_COUNT; a++) {
        bs->blobs_fd[a] = ensure_dir(blobs_parent, pt_digest_algo_name(a), &blobs_created);
        if (bs->blobs_fd[a] < 0) {
            close(blobs_parent);
            return bs->blobs_fd[a];
        }
    }
    if (blobs_created && bs->sys.fsync_fn(blobs_parent) != 0) {
        rv = blobstore_io_err(errno);
        close(blobs_parent);
        return rv;
    }
    close(blobs_parent);
    for (int a = 0; a < PT_DIGEST_ALGO_COUNT; a++) {
        rv = create_fanout(bs, bs->blobs_fd[a]);
        if (rv != 0)
            return rv;
    }

    bs->uploads_fd = ensure_dir(bs->root_fd, "uploads", &root_created);
    if (bs->uploads_fd < 0)
        return bs->uploads_fd;

    tmp_fd = ensure_dir(bs->root_fd, "tmp", &root_created);
    if (tmp_fd < 0)
        return tmp_fd;
    rv = remove_children(tmp_fd, REMOVE_DEPTH_MAX);
    close(tmp_fd);
    if (rv != 0)
        return rv;

    if (root_created && bs->sys.fsync_fn(bs->root_fd) != 0)
        return blobstore_io_err(errno);
    return 0;
}

int pt_blobstore_open(const char *dir, struct pt_blobstore **out)
{
    struct pt_blobstore *bs;
    size_t len;
    int rv;

    if (dir == NULL)
        return PT_E_CONFIG;
    len = strnlen(dir, PATH_MAX);
    if (len == 0 || len >= PATH_MAX - sizeof("/tmp"))
        return PT_E_CONFIG;
    if (mkdir(dir, DIR_MODE) != 0 && errno != EEXIST)
        return blobstore_io_err(errno);

    bs = calloc(1, sizeof(*bs));
    if (bs == NULL)
        return PT_E_NOMEM;
    bs->root_fd = bs->uploads_fd = -1;
    for (int a = 0; a < PT_DIGEST_ALGO_COUNT; a++)
        bs->blobs_fd[a] = -1;
    bs->sys = default_sys;

    bs->root = realpath(dir, NULL);
    if (bs->root == NULL) {
        rv = blobstore_io_err(errno);
        goto err_after_alloc;
    }
    len = strlen(bs->root);
    if (len >= PATH_MAX - sizeof("/tmp")) {
        rv = PT_E_CONFIG;
        goto err_after_alloc;
    }
    bs->tmp_path = malloc(len + sizeof("/tmp"));
    if (bs->tmp_path == NULL) {
        rv = PT_E_NOMEM;
        goto err_after_alloc;
    }
    memcpy(bs->tmp_path, bs->root, len);
    memcpy(bs->tmp_path + len, "/tmp", sizeof("/tmp"));

    rv = open_tree(bs);
    if (rv != 0)
        goto err_after_alloc;
    *out = bs;
    return 0;

err_after_alloc:
    pt_blobstore_close(bs);
    return rv;
}

void pt_blobstore_close(struct pt_blobstore *bs)
{
    if (bs == NULL)
        return;
    if (bs->uploads_fd >= 0)
        close(bs->uploads_fd);
    for (int a = 0; a < PT_DIGEST_ALGO_COUNT; a++) {
        if (bs->blobs_fd[a] >= 0)
            close(bs->blobs_fd[a]);
    }
    if (bs->root_fd >= 0)
        close(bs->root_fd);
    free(bs->tmp_path);
    free(bs->root);
    free(bs);
}

const char *pt_blobstore_tmp_dir(const struct pt_blobstore *bs)
{
    return bs->tmp_path;
}

struct pt_blobstore_sys *pt_blobstore_sys(struct pt_blobstore *bs)
{
    return &bs->sys;
}

/* ---- blobs --------------------------------------------------------------------------- */

/* Opens blobs/<algorithm>/<xx> (parent: that algorithm's directory) for the blob name
 * "xx/<hex>". */
static int open_fanout(struct pt_blobstore *bs, int parent, const char *name)
{
    char sub[3] = {name[0], name[1], '\0'};
    int dfd = openat(parent, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0)
        return dfd;
    if (errno != ENOENT)
        return blobstore_io_err(errno);
    /* Fan-out directories are made at open; recreate one lost since. */
    if (mkdirat(parent, sub, DIR_MODE) == 0) {
        if (bs->sys.fsync_fn(parent) != 0)
            return blobstore_io_err(errno);
    } else if (errno != EEXIST) {
        return blobstore_io_err(errno);
    }
    dfd = openat(parent, sub, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    return dfd >= 0 ? dfd : blobstore_io_err(errno);
}

int blobstore_install(struct pt_blobstore *bs, int fd, const char *id, enum pt_digest_algo algo,
                      const char name[BLOB_NAME_SIZE])
{
    const char *leaf = name + 3;
    struct stat st;
    int dfd, rv;

    dfd = open_fanout(bs, bs->blobs_fd[algo], name);
    if (dfd < 0) {
        rv = dfd;
        goto err_after_fd;
    }

    /* Same digest, same bytes: keep the installed file (open readers, inode), touched so the
     * garbage collector, which only removes files older than the collection that named them
     * (pt_blobstore_remove_blob_before), keeps it. Gone meanwhile (ENOENT): install ours. */
    if (fstatat(dfd, leaf, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
        (!S_ISREG(st.st_mode) || utimensat(dfd, leaf, NULL, AT_SYMLINK_NOFOLLOW) == 0 ||
         errno != ENOENT)) {
        if (!S_ISREG(st.st_mode)) {
            rv = PT_E_CORRUPT;
            goto err_after_dfd;
        }
        close(fd);
        if (unlinkat(bs->uploads_fd, id, 0) != 0 && errno != ENOENT) {
            rv = blobstore_io_err(errno);
            close(dfd);
            return rv;
        }
        /* It may have been renamed in by a concurrent commit whose dir sync is pending. */
        rv = bs->sys.fsync_fn(dfd) != 0 ? blobstore_io_err(errno) : 0;
        close(dfd);
        return rv;
    }
    if (errno != ENOENT) {
        rv = blobstore_io_err(errno);
        goto err_after_dfd;
    }

    if (futimens(fd, NULL) != 0 || bs->sys.fsync_fn(fd) != 0) {
        rv = blobstore_io_err(errno);
        goto err_after_dfd;
    }
    close(fd);
    if (bs->sys.renameat_fn(bs->uploads_fd, id, dfd, leaf) != 0) {
        rv = errno == ENOENT ? PT_E_BLOB_UPLOAD_UNKNOWN : blobstore_io_err(errno);
        close(dfd);
        return rv;
    }
    rv = bs->sys.fsync_fn(dfd) != 0 ? blobstore_io_err(errno) : 0;
    close(dfd);
    return rv;

err_after_dfd:
    close(dfd);
err_after_fd:
    close(fd);
    return rv;
}

int pt_blobstore_stat(struct pt_blobstore *bs, const struct pt_digest *d, uint64_t *size)
{
    char name[BLOB_NAME_SIZE];
    struct stat st;
    int rv = blobstore_blob_name(d, name);
    if (rv != 0)
        return rv;
    if (fstatat(bs->blobs_fd[d->algo], name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return errno == ENOENT || errno == ENOTDIR ? PT_E_BLOB_UNKNOWN : blobstore_io_err(errno);
    if (!S_ISREG(st.st_mode))
        return PT_E_BLOB_UNKNOWN;
    *size = (uint64_t)st.st_size;
    return 0;
}

int pt_blobstore_open_blob(struct pt_blobstore *bs, const struct pt_digest *d, int *fd,
                           uint64_t *size)
{
    char name[BLOB_NAME_SIZE];
    struct stat st;
    int f, rv = blobstore_blob_name(d, name);
    if (rv != 0)
        return rv;
    f = openat(bs->blobs_fd[d->algo], name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (f < 0)
        return errno == ENOENT || errno == ENOTDIR || errno == ELOOP ? PT_E_BLOB_UNKNOWN
                                                                     : blobstore_io_err(errno);
    if (fstat(f, &st) != 0) {
        rv = blobstore_io_err(errno);
        close(f);
        return rv;
    }
    if (!S_ISREG(st.st_mode)) {
        close(f);
        return PT_E_BLOB_UNKNOWN;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* Copies the open file in to a new file dest_name of dir: the fallback of a hard link across
 * filesystems. */
static int copy_out(int in, int dir, const char *dest_name)
{
    int out = openat(dir, dest_name, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (out < 0)
        return errno == EEXIST ? PT_E_CONFLICT : blobstore_io_err(errno);
    char buf[1 << 16];
    int rv = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof(buf));
        if (n == 0)
            break;
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rv = blobstore_io_err(errno);
            break;
        }
        for (ssize_t off = 0; off < n && rv == 0;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno != EINTR)
                rv = blobstore_io_err(errno);
            else if (w > 0)
                off += w;
        }
        if (rv != 0)
            break;
    }
    if (rv == 0 && fsync(out) != 0)
        rv = blobstore_io_err(errno);
    close(out);
    if (rv != 0)
        unlinkat(dir, dest_name, 0);
    return rv;
}

int pt_blobstore_link_out(struct pt_blobstore *bs, const struct pt_digest *d, int dest_dirfd,
                          const char *dest_name, uint64_t *size)
{
    char name[BLOB_NAME_SIZE];
    int rv = blobstore_blob_name(d, name);
    if (rv != 0)
        return rv;
    struct stat st;
    if (fstatat(bs->blobs_fd[d->algo], name, &st, 0) != 0 || !S_ISREG(st.st_mode))
        return errno == ENOENT || errno == ENOTDIR || !S_ISREG(st.st_mode)
                   ? PT_E_BLOB_UNKNOWN
                   : blobstore_io_err(errno);
    *size = (uint64_t)st.st_size;
    if (linkat(bs->blobs_fd[d->algo], name, dest_dirfd, dest_name, 0) == 0)
        return 0;
    if (errno == EEXIST)
        return PT_E_CONFLICT;
    if (errno == ENOENT)
        return PT_E_BLOB_UNKNOWN;
    if (errno != EXDEV && errno != EPERM && errno != EMLINK)
        return blobstore_io_err(errno);
    int in = openat(bs->blobs_fd[d->algo], name, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return errno == ENOENT ? PT_E_BLOB_UNKNOWN : blobstore_io_err(errno);
    rv = copy_out(in, dest_dirfd, dest_name);
    close(in);
    return rv;
}

int pt_blobstore_remove_blob(struct pt_blobstore *bs, const struct pt_digest *d)
{
    char name[BLOB_NAME_SIZE];
    int rv = blobstore_blob_name(d, name);
    if (rv != 0)
        return rv;
    if (unlinkat(bs->blobs_fd[d->algo], name, 0) != 0)
        return errno == ENOENT || errno == ENOTDIR || errno == EISDIR ? PT_E_BLOB_UNKNOWN
                                                                      : blobstore_io_err(errno);
    return 0;
}

int pt_blobstore_remove_blob_before(struct pt_blobstore *bs, const struct pt_digest *d,
                                    int64_t before_ms)
{
    char name[BLOB_NAME_SIZE], aside[PATH_MAX];
    int rv = blobstore_blob_name(d, name);
    if (rv != 0)
        return rv;
    if (snprintf(aside, sizeof(aside), "%s/gc-%s", bs->tmp_path, name + 3) >= (int)sizeof(aside))
        return PT_E_INTERNAL;
    int bfd = bs->blobs_fd[d->algo];
    /* aside first (atomic): a commit of the same digest from now on installs a new file */
    if (renameat(bfd, name, AT_FDCWD, aside) != 0)
        return errno == ENOENT || errno == ENOTDIR ? PT_E_BLOB_UNKNOWN : blobstore_io_err(errno);
    struct stat st;
    if (stat(aside, &st) != 0)
        return blobstore_io_err(errno);
    int64_t mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    if (mtime_ms >= before_ms) {
        /* installed or touched by a commit since: put back (identical bytes if another file
         * took its place meanwhile) */
        if (renameat(AT_FDCWD, aside, bfd, name) != 0)
            return blobstore_io_err(errno);
        return 1;
    }
    if (unlink(aside) != 0)
        return blobstore_io_err(errno);
    return 0;
}

struct walk_ctx {
    enum pt_digest_algo algo;
    int (*cb)(const struct pt_digest *d, int64_t mtime_ms, uint64_t size, void *arg);
    void *arg;
};

static int walk_blob(int dirfd, const struct dirent *e, void *arg)
{
    struct walk_ctx *w = arg;
    size_t n = strlen(e->d_name);
    if (n != pt_digest_hex_len(w->algo))
        return 0;
    struct pt_digest d = {.algo = w->algo};
    memcpy(d.hex, e->d_name, n);
    d.hex[n] = '\0';
    char name[BLOB_NAME_SIZE];
    if (blobstore_blob_name(&d, name) != 0)
        return 0; /* not a blob's name: not ours to judge */
    struct stat st;
    if (fstatat(dirfd, e->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(st.st_mode))
        return 0;
    int64_t mtime_ms = (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000;
    return w->cb(&d, mtime_ms, (uint64_t)st.st_size, w->arg);
}

static int walk_fanout(int dirfd, const struct dirent *e, void *arg)
{
    if (strlen(e->d_name) != 2)
        return 0;
    int fd = openat(dirfd, e->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    int rv = blobstore_each_entry(fd, walk_blob, arg);
    close(fd);
    return rv;
}

int pt_blobstore_foreach_blob(struct pt_blobstore *bs,
                              int (*cb)(const struct pt_digest *d, int64_t mtime_ms, uint64_t size,
                                        void *arg),
                              void *arg)
{
    for (int a = 0; a < PT_DIGEST_ALGO_COUNT; a++) {
        struct walk_ctx w = {.algo = (enum pt_digest_algo)a, .cb = cb, .arg = arg};
        int rv = blobstore_each_entry(bs->blobs_fd[a], walk_fanout, &w);
        if (rv != 0)
            return rv;
    }
    return 0;
}
