/*
 * raft_snapshot.c - snapshot descriptors and the snapshot files they name (raft_snapshot.h).
 *
 * Design: the descriptor is a fixed 72-byte record checked field by field; the file name is
 * derived from the index alone and parsed back strictly, so a name a peer sends can only
 * ever open a file of the snapshots directory. Files are written through a plain fd with
 * write(2) in the pieces pt_metastore_pin_write hands over (1 MiB), and read back for a
 * restore with read(2) into the stream reader's buffer.
 */
#include "raft_snapshot.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bytes.h"
#include "err.h"
#include "metastore.h"

static const char desc_magic[8] = {'P', 'T', 'L', 'N', 'S', 'D', 'S', 'C'};

void pt_snapdesc_encode(const struct pt_snapdesc *d, unsigned char out[PT_SNAPDESC_LEN])
{
    memcpy(out, desc_magic, 8);
    pt_put_le32(out + 8, PT_SNAPDESC_VERSION);
    pt_put_le32(out + 12, 0);
    pt_put_le64(out + 16, d->index);
    pt_put_le64(out + 24, d->size);
    memcpy(out + 32, d->sha256, 32);
    pt_put_le64(out + 64, d->source);
}

bool pt_snapdesc_is(const void *buf, size_t len)
{
    return buf != NULL && len >= 8 && memcmp(buf, desc_magic, 8) == 0;
}

int pt_snapdesc_parse(const void *buf, size_t len, struct pt_snapdesc *d)
{
    const unsigned char *p = buf;
    if (!pt_snapdesc_is(buf, len) || len != PT_SNAPDESC_LEN)
        return PT_E_CORRUPT;
    if (pt_get_le32(p + 8) != PT_SNAPDESC_VERSION || pt_get_le32(p + 12) != 0)
        return PT_E_CORRUPT;
    struct pt_snapdesc t;
    t.index = pt_get_le64(p + 16);
    t.size = pt_get_le64(p + 24);
    memcpy(t.sha256, p + 32, 32);
    t.source = pt_get_le64(p + 64);
    if (t.index == 0 || t.source == 0 || t.size == 0 || t.size > PT_SNAPFILE_SIZE_MAX)
        return PT_E_CORRUPT;
    *d = t;
    return 0;
}

void pt_snapfile_name(uint64_t index, char *out, size_t cap)
{
    snprintf(out, cap, "%" PRIu64 ".pts", index);
}

int pt_snapfile_parse_name(const char *name, size_t len, uint64_t *index)
{
    if (name == NULL || len < 5 || len > 24 || memcmp(name + len - 4, ".pts", 4) != 0 ||
        name[0] == '0')
        return PT_E_NAME_INVALID;
    uint64_t v = 0;
    for (size_t i = 0; i < len - 4; i++) {
        if (name[i] < '0' || name[i] > '9')
            return PT_E_NAME_INVALID;
        unsigned dgt = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10)
            return PT_E_NAME_INVALID;
        v = v * 10 + dgt;
    }
    *index = v;
    return 0;
}

int pt_snapfile_dir(const char *dir, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s-snapshots", dir);
    return n < 0 || (size_t)n >= cap ? PT_E_TOO_LARGE : 0;
}

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
