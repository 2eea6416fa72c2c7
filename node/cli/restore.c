/*
 * restore.c - `portolan restore --from BACKUP --data-dir DIR`: makes a new data directory from
 * a backup written by `portolan backup` (layout in store/backup.h), offline, with no node
 * running on DIR. README "Backup and restore".
 *
 * Design: DIR must not exist or be empty. The metadata checkpoint is copied into DIR/meta:
 * its table files (*.sst, immutable) are hard-linked where BACKUP and DIR share a
 * filesystem, everything else (MANIFEST, CURRENT, OPTIONS, WAL) is copied, since RocksDB
 * rewrites those in place; LOCK and the info LOG are left behind. Every blob is hashed and
 * must match its name before it is linked (or copied) into DIR/blobs/<algo>/<xx>/<hex>: a
 * damaged backup is refused, never served. The result is the data directory of a single
 * region (no raft/: the Raft log is not part of a backup): `portolan serve --data-dir DIR`
 * serves the backed-up state. Upload sessions in progress at backup time are expired by the
 * node at start (their data files are not in the backup).
 *
 * Limits: names read from BACKUP are checked (hex of the algorithm's length, fan-out
 * directory = its first two characters, meta entries without '/'); backup.json at most 4 KiB.
 * Errors name the file; a failed restore leaves DIR for the operator to remove.
 */
#include "cli.h"
#include "cli_int.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define PATHLEN        4352
#define MANIFEST_MAX   4096
#define COPY_BUF_BYTES (1 << 16)

struct restore {
    FILE *err;
    uint64_t blobs, bytes, meta_files;
};

static int fail(struct restore *r, const char *what, const char *path)
{
    fprintf(r->err, "portolan restore: %s: %s%s%s\n", path, what, errno != 0 ? ": " : "",
            errno != 0 ? strerror(errno) : "");
    return -1;
}

/* out = a "/" b (out holds PATHLEN bytes); -1 (reported) when too long. */
static int join(struct restore *r, char *out, const char *a, const char *b)
{
    int n = snprintf(out, PATHLEN, "%s/%s", a, b);
    if (n < 0 || n >= PATHLEN) {
        errno = 0;
        return fail(r, "path too long", a);
    }
    return 0;
}

/* Copies src to the new file dst (fsync'd). */
static int copy_file(struct restore *r, const char *src, const char *dst)
{
    int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return fail(r, "cannot open", src);
    int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (out < 0) {
        close(in);
        return fail(r, "cannot create", dst);
    }
    static char buf[COPY_BUF_BYTES];
    int rv = 0;
    for (;;) {
        ssize_t n = read(in, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            if (n < 0)
                rv = fail(r, "read failed", src);
            break;
        }
        for (ssize_t off = 0; off < n && rv == 0;) {
            ssize_t w = write(out, buf + off, (size_t)(n - off));
            if (w < 0 && errno != EINTR)
                rv = fail(r, "write failed", dst);
            else if (w > 0)
                off += w;
        }
        if (rv != 0)
            break;
    }
    if (rv == 0 && fsync(out) != 0)
        rv = fail(r, "fsync failed", dst);
    close(in);
    close(out);
    return rv;
}

/* A hard link of src at dst, or a copy across filesystems. */
static int link_or_copy(struct restore *r, const char *src, const char *dst)
{
    if (link(src, dst) == 0)
        return 0;
    if (errno != EXDEV && errno != EPERM && errno != EMLINK)
        return fail(r, "cannot link", dst);
    errno = 0;
    return copy_file(r, src, dst);
}

static int make_dir(struct restore *r, const char *path)
{
    if (mkdir(path, 0750) == 0 || errno == EEXIST)
        return 0;
    return fail(r, "cannot create the directory", path);
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

static int restore_meta(struct restore *r, const char *from, const char *to)
{
    DIR *d = opendir(from);
    if (d == NULL)
        return fail(r, "cannot read the metadata checkpoint", from);
    int rv = make_dir(r, to);
    struct dirent *e;
    while (rv == 0 && (e = readdir(d)) != NULL) {
        char src[PATHLEN], dst[PATHLEN];
        struct stat st;
        if (e->d_name[0] == '.' || strcmp(e->d_name, "LOCK") == 0 ||
            strncmp(e->d_name, "LOG", 3) == 0 || ends_with(e->d_name, ".dbtmp"))
            continue;
        if (join(r, src, from, e->d_name) != 0 || join(r, dst, to, e->d_name) != 0) {
            rv = -1;
            break;
        }
        if (lstat(src, &st) != 0 || !S_ISREG(st.st_mode)) {
            errno = 0;
            rv = fail(r, "not a regular file", src);
            break;
        }
        rv = ends_with(e->d_name, ".sst") ? link_or_copy(r, src, dst) : copy_file(r, src, dst);
        r->meta_files++;
    }
    closedir(d);
    return rv;
}

/* Hashes path with algo; 0 when it matches hex. */
static int verify_blob(struct restore *r, const char *path, enum pt_digest_algo algo,
                       const char *hex, uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return fail(r, "cannot open", path);
    struct pt_digest_stream ds;
    if (pt_digest_stream_init(&ds, algo) != 0) {
        close(fd);
        errno = 0;
        return fail(r, "cannot hash", path);
    }
    static char buf[COPY_BUF_BYTES];
    int rv = 0;
    *size = 0;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            rv = fail(r, "read failed", path);
        if (n <= 0)
            break;
        *size += (uint64_t)n;
        pt_digest_stream_update(&ds, buf, (size_t)n);
    }
    close(fd);
    struct pt_digest got;
    if (pt_digest_stream_final(&ds, &got) != 0 && rv == 0) {
        errno = 0;
        rv = fail(r, "cannot hash", path);
    }
    pt_digest_stream_free(&ds);
    if (rv == 0 && strcmp(got.hex, hex) != 0) {
        errno = 0;
        rv = fail(r, "content does not match its digest (damaged backup)", path);
    }
    return rv;
}

static bool hex_name(const char *s, size_t len)
{
    if (strlen(s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* One fan-out directory blobs/<algo>/<xx> of the backup. */
static int restore_fanout(struct restore *r, const char *from, const char *to,
                          enum pt_digest_algo algo, const char *xx)
{
    DIR *d = opendir(from);
    if (d == NULL)
        return fail(r, "cannot read", from);
    int rv = make_dir(r, to);
    struct dirent *e;
    while (rv == 0 && (e = readdir(d)) != NULL) {
        char src[PATHLEN], dst[PATHLEN];
        uint64_t size;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (join(r, src, from, e->d_name) != 0 || join(r, dst, to, e->d_name) != 0) {
            rv = -1;
            break;
        }
        if (!hex_name(e->d_name, pt_digest_hex_len(algo)) || memcmp(e->d_name, xx, 2) != 0) {
            errno = 0;
            rv = fail(r, "not a blob of this directory", src);
            break;
        }
        if ((rv = verify_blob(r, src, algo, e->d_name, &size)) == 0 &&
            (rv = link_or_copy(r, src, dst)) == 0) {
            r->blobs++;
            r->bytes += size;
        }
    }
    closedir(d);
    return rv;
}

static int restore_blobs(struct restore *r, const char *from, const char *to)
{
    int rv = make_dir(r, to);
    for (int a = 0; a < PT_DIGEST_ALGO_COUNT && rv == 0; a++) {
        const char *algo = pt_digest_algo_name((enum pt_digest_algo)a);
        char src[PATHLEN], dst[PATHLEN];
        if (join(r, src, from, algo) != 0 || join(r, dst, to, algo) != 0)
            return -1;
        DIR *d = opendir(src);
        if (d == NULL) {
            if (errno == ENOENT)
                continue;
            return fail(r, "cannot read", src);
        }
        rv = make_dir(r, dst);
        struct dirent *e;
        while (rv == 0 && (e = readdir(d)) != NULL) {
            char s2[PATHLEN], d2[PATHLEN];
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            if (join(r, s2, src, e->d_name) != 0 || join(r, d2, dst, e->d_name) != 0) {
                rv = -1;
                break;
            }
            if (!hex_name(e->d_name, 2)) {
                errno = 0;
                rv = fail(r, "not a fan-out directory", s2);
                break;
            }
            rv = restore_fanout(r, s2, d2, (enum pt_digest_algo)a, e->d_name);
        }
        closedir(d);
    }
    return rv;
}

/* Reads and checks BACKUP/backup.json; *applied its applied index. */
static int read_manifest(struct restore *r, const char *from, long long *applied)
{
    char path[PATHLEN];
    if (join(r, path, from, "backup.json") != 0)
        return -1;
    struct stat st;
    if (stat(path, &st) != 0)
        return fail(r, "no backup.json: not a finished backup", path);
    if (st.st_size > MANIFEST_MAX) {
        errno = 0;
        return fail(r, "larger than 4 KiB", path);
    }
    json_error_t je;
    json_t *doc = json_load_file(path, 0, &je);
    long long format = cli_json_uint(doc, "format");
    *applied = cli_json_uint(doc, "applied_index");
    json_decref(doc);
    if (format != 1 || *applied < 0) {
        errno = 0;
        return fail(r, "not a backup manifest of format 1", path);
    }
    return 0;
}

void pt_cli_restore_usage(FILE *out)
{
    fprintf(out, "usage: portolan restore --from BACKUP --data-dir DIR\n\n"
                 "  makes DIR (new, or empty) the data directory of a single region holding the\n"
                 "  backup written by `portolan backup` (a copy of <data dir>/backups/<name>):\n"
                 "  the metadata and every blob, each blob checked against its digest. Then run\n"
                 "  `portolan serve --data-dir DIR`. Offline: no node may run on DIR. Files are\n"
                 "  hard-linked from BACKUP where both are on one filesystem (keep BACKUP\n"
                 "  unchanged), else copied.\n\n"
                 "exit status: 0 ok, 1 failed (DIR is left for you to remove), 2 usage error\n");
}

int pt_cli_restore(int argc, char **argv, FILE *out, FILE *err)
{
    const char *from = NULL, *dir = NULL;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0) {
            pt_cli_restore_usage(out);
            return PT_CLI_OK;
        }
        const char **slot = strcmp(a, "--from") == 0       ? &from
                            : strcmp(a, "--data-dir") == 0 ? &dir
                                                           : NULL;
        if (slot == NULL || i + 1 >= argc || *slot != NULL) {
            fprintf(err, "portolan restore: %s \"%.64s\"\n",
                    slot == NULL ? "unexpected argument" : "missing or repeated value of", a);
            pt_cli_restore_usage(err);
            return PT_CLI_USAGE;
        }
        *slot = argv[++i];
    }
    if (from == NULL || dir == NULL || strlen(from) > 4000 || strlen(dir) > 4000) {
        fprintf(err, "portolan restore: --from and --data-dir are required (paths up to 4000 "
                     "bytes)\n");
        return PT_CLI_USAGE;
    }
    struct restore r = {.err = err};
    long long applied;
    errno = 0;
    if (read_manifest(&r, from, &applied) != 0)
        return PT_CLI_FAILED;
    if (mkdir(dir, 0750) != 0) {
        DIR *d = errno == EEXIST ? opendir(dir) : NULL;
        struct dirent *e;
        int entries = 0;
        while (d != NULL && (e = readdir(d)) != NULL)
            entries += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
        if (d != NULL)
            closedir(d);
        if (d == NULL || entries > 0) {
            if (d != NULL)
                errno = 0;
            fail(&r, "must be a new or empty directory", dir);
            return PT_CLI_FAILED;
        }
    }
    char src[PATHLEN], dst[PATHLEN];
    errno = 0;
    if (join(&r, src, from, "meta") != 0 || join(&r, dst, dir, "meta") != 0 ||
        restore_meta(&r, src, dst) != 0)
        return PT_CLI_FAILED;
    if (join(&r, src, from, "blobs") != 0 || join(&r, dst, dir, "blobs") != 0 ||
        restore_blobs(&r, src, dst) != 0)
        return PT_CLI_FAILED;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || syncfs(fd) != 0) {
        if (fd >= 0)
            close(fd);
        fail(&r, "cannot sync", dir);
        return PT_CLI_FAILED;
    }
    close(fd);
    fprintf(out,
            "restored applied index %lld: %" PRIu64 " metadata files, %" PRIu64 " blobs (%" PRIu64
            " bytes) into %s\n"
            "start it with: portolan serve --data-dir %s\n",
            applied, r.meta_files, r.blobs, r.bytes, dir, dir);
    return PT_CLI_OK;
}
