/*
 * raft_snapshot.c - the snapshot files descriptors name (raft_snapshot.h); the descriptors
 * and names themselves are raft_snapdesc.c's.
 *
 * Design: files are written through a plain fd with
 * write(2) in the pieces pt_metastore_pin_write hands over (1 MiB), and read back for a
 * restore with read(2) into the stream reader's buffer.
 */
#include "raft_snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "err.h"
#include "metastore.h"

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return PT_E_IO;
    int rv = fsync(fd) == 0 ? 0 : PT_E_IO;
    close(fd);
    return rv;
}

static int write_cb(void *arg, const void *p, size_t n)
{
    int fd = *(int *)arg;
    const char *s = p;
    while (n > 0) {
        ssize_t w = write(fd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return errno == ENOSPC ? PT_E_DISK_FULL : PT_E_IO;
        s += w;
        n -= (size_t)w;
    }
    return 0;
}

int pt_snapfile_write(const char *sdir, struct pt_metastore_pin *pin, uint64_t source,
                      struct pt_snapdesc *d)
{
    char name[PT_SNAPFILE_NAME_MAX], path[4200], tmp[4200];
    uint64_t index = pt_metastore_pin_index(pin);
    if (index == 0)
        return PT_E_INTERNAL; /* nothing applied: no file may claim index 0 */
    pt_snapfile_name(index, name, sizeof(name));
    int n1 = snprintf(path, sizeof(path), "%s/%s", sdir, name);
    int n2 = snprintf(tmp, sizeof(tmp), "%s/%s.tmp", sdir, name);
    if (n1 < 0 || n2 < 0 || (size_t)n2 >= sizeof(tmp))
        return PT_E_TOO_LARGE;
    if (mkdir(sdir, 0700) != 0 && errno != EEXIST)
        return PT_E_IO;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return PT_E_IO;
    struct pt_snapdesc t = {.index = index, .source = source};
    int rv = pt_metastore_pin_write(pin, write_cb, &fd, &t.size, t.sha256);
    if (rv == 0 && fsync(fd) != 0)
        rv = PT_E_IO;
    if (close(fd) != 0 && rv == 0)
        rv = PT_E_IO;
    if (rv == 0 && rename(tmp, path) != 0)
        rv = PT_E_IO;
    if (rv != 0) {
        unlink(tmp);
        return rv;
    }
    rv = fsync_dir(sdir);
    if (rv == 0)
        *d = t;
    return rv;
}

bool pt_snapfile_have(const char *sdir, const struct pt_snapdesc *d)
{
    char name[PT_SNAPFILE_NAME_MAX], path[4200];
    pt_snapfile_name(d->index, name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s", sdir, name);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == d->size;
}

static int read_cb(void *arg, void *buf, size_t cap, size_t *got)
{
    int fd = *(int *)arg;
    for (;;) {
        ssize_t r = read(fd, buf, cap);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0)
            return PT_E_IO;
        *got = (size_t)r;
        return 0;
    }
}

int pt_snapfile_restore(struct pt_metastore *ms, const char *sdir, const struct pt_snapdesc *d)
{
    char name[PT_SNAPFILE_NAME_MAX], path[4200];
    pt_snapfile_name(d->index, name, sizeof(name));
    snprintf(path, sizeof(path), "%s/%s", sdir, name);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? PT_E_NOT_FOUND : PT_E_IO;
    uint64_t index = 0;
    int rv = pt_metastore_restore_stream(ms, read_cb, &fd, PT_SNAPFILE_BATCH, d->size, d->sha256,
                                         &index);
    close(fd);
    if (rv == 0 && index != d->index)
        rv = PT_E_CORRUPT;
    return rv;
}

static int cmp_u64_desc(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? 1 : (x > y ? -1 : 0);
}

#define PRUNE_SCAN_MAX 1024

int pt_snapfile_prune(const char *sdir, unsigned keep, const uint64_t *busy, size_t n_busy)
{
    DIR *dir = opendir(sdir);
    if (dir == NULL)
        return 0;
    uint64_t idx[PRUNE_SCAN_MAX];
    size_t n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL && n < PRUNE_SCAN_MAX) {
        uint64_t i;
        if (pt_snapfile_parse_name(e->d_name, strlen(e->d_name), &i) == 0)
            idx[n++] = i;
    }
    closedir(dir);
    qsort(idx, n, sizeof(idx[0]), cmp_u64_desc);
    int deleted = 0;
    for (size_t k = keep; k < n; k++) {
        bool in_use = false;
        for (size_t b = 0; b < n_busy; b++)
            in_use = in_use || busy[b] == idx[k];
        if (in_use)
            continue;
        char name[PT_SNAPFILE_NAME_MAX], path[4200];
        pt_snapfile_name(idx[k], name, sizeof(name));
        snprintf(path, sizeof(path), "%s/%s", sdir, name);
        if (unlink(path) == 0)
            deleted++;
        snprintf(path, sizeof(path), "%s/%s.tmp", sdir, name);
        unlink(path); /* a write or fetch of it that died */
    }
    return deleted;
}
