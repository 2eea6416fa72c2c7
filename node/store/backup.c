/*
 * backup.c - a consistent backup of a running region's stores; layout and design in backup.h.
 *
 * Steps: mkdir backups/.<name>.partial; checkpoint the metadata store into it (meta/); open
 * that checkpoint and, for every blob link it holds, hard-link the blob into blobs/ (a digest
 * linked by several repositories is linked once); write backup.json and fsync it; rename the
 * directory to <name> and fsync backups/. A failure leaves only the .partial directory.
 */
#include "backup.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "blobstore.h"
#include "digest.h"
#include "err.h"
#include "fileio.h"
#include "log.h"
#include "metastore.h"

#define PATH_MAX_LEN 4200

struct walk {
    struct pt_blobstore *bs;
    int blobs_fd; /* <backup>/blobs */
    struct pt_backup_result *out;
};

static int mkdir_at(int dir, const char *name)
{
    return mkdirat(dir, name, 0750) == 0 || errno == EEXIST ? 0 : PT_E_IO;
}

/* cb of pt_metastore_foreach_blob_link: links one blob into <backup>/blobs. */
static int link_one(const char *digest, uint64_t size, void *arg)
{
    struct walk *wk = arg;
    struct pt_digest d;
    (void)size;
    if (pt_digest_parse(digest, strlen(digest), &d) != 0)
        return PT_E_CORRUPT;
    const char *algo = pt_digest_algo_name(d.algo);
    char dir[16], name[PT_DIGEST_HEX_MAX + 24];
    snprintf(dir, sizeof dir, "%s/%.2s", algo, d.hex);
    if (mkdir_at(wk->blobs_fd, algo) != 0 || mkdir_at(wk->blobs_fd, dir) != 0)
        return PT_E_IO;
    snprintf(name, sizeof name, "%s/%s", dir, d.hex);
    uint64_t got = 0;
    int rv = pt_blobstore_link_out(wk->bs, &d, wk->blobs_fd, name, &got);
    if (rv == PT_E_CONFLICT) /* linked by another repository: there already */
        return 0;
    if (rv == PT_E_BLOB_UNKNOWN) {
        wk->out->missing_blobs++;
        pt_log(PT_LOG_WARN, "backup: blob not held by this region", "{s:s}", "digest", digest);
        return 0;
    }
    if (rv != 0)
        return rv;
    wk->out->blobs++;
    wk->out->blob_bytes += got;
    return 0;
}

static int write_manifest(const char *path, const char *region, const char *created,
                          const struct pt_backup_result *r)
{
    char text[512];
    int n = snprintf(text, sizeof text,
                     "{\"format\":1,\"region\":\"%s\",\"created\":\"%s\",\"applied_index\":%" PRIu64
                     ",\"blobs\":%" PRIu64 ",\"blob_bytes\":%" PRIu64 ",\"missing_blobs\":%" PRIu64
                     "}\n",
                     region, created, r->applied_index, r->blobs, r->blob_bytes, r->missing_blobs);
    if (n < 0 || (size_t)n >= sizeof text)
        return PT_E_INTERNAL;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0640);
    if (fd < 0)
        return PT_E_IO;
    int rv = pt_write_all(fd, text, (size_t)n) == 0 && fsync(fd) == 0 ? 0 : PT_E_IO;
    close(fd);
    return rv;
}

int pt_backup_create(struct pt_metastore *ms, struct pt_blobstore *bs, const char *data_dir,
                     const char *region, int64_t now_ms, struct pt_backup_result *out)
{
    char root[PATH_MAX_LEN], partial[PATH_MAX_LEN + 48], path[PATH_MAX_LEN + 48], created[32];
    memset(out, 0, sizeof *out);
    time_t secs = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (snprintf(root, sizeof root, "%s/backups", data_dir) >= (int)sizeof root)
        return PT_E_IO;
    if (mkdir(root, 0750) != 0 && errno != EEXIST)
        return PT_E_IO;
    /* A name not taken yet, by a finished backup or one being written. */
    int rv = PT_E_IO;
    for (unsigned i = 0; i < 100 && rv != 0; i++) {
        char base[24];
        strftime(base, sizeof base, "%Y%m%dT%H%M%SZ", &tm);
        if (i == 0)
            snprintf(out->name, sizeof out->name, "%s", base);
        else
            snprintf(out->name, sizeof out->name, "%s-%u", base, i);
        snprintf(path, sizeof path, "%s/%s", root, out->name);
        snprintf(partial, sizeof partial, "%s/.%s.partial", root, out->name);
        struct stat st;
        if (stat(path, &st) == 0)
            continue;
        if (mkdir(partial, 0750) == 0)
            rv = 0;
        else if (errno != EEXIST)
            return PT_E_IO;
    }
    if (rv != 0)
        return rv;

    char meta[PATH_MAX_LEN + 64];
    snprintf(meta, sizeof meta, "%s/meta", partial);
    if ((rv = pt_metastore_checkpoint(ms, meta)) != 0)
        return rv;
    struct pt_metastore *cp;
    if ((rv = pt_metastore_open(meta, &cp)) != 0)
        return rv;
    out->applied_index = pt_metastore_applied_index(cp);
    char blobs[PATH_MAX_LEN + 64];
    snprintf(blobs, sizeof blobs, "%s/blobs", partial);
    struct walk wk = {.bs = bs, .out = out, .blobs_fd = -1};
    if (mkdir(blobs, 0750) != 0 ||
        (wk.blobs_fd = open(blobs, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        pt_metastore_close(cp);
        return PT_E_IO;
    }
    rv = pt_metastore_foreach_blob_link(cp, link_one, &wk);
    pt_metastore_close(cp);
    /* The links' directory entries reach the disk with the directories' fsync: syncfs covers
     * them all at once (one filesystem: the data directory's). */
    if (rv == 0 && syncfs(wk.blobs_fd) != 0)
        rv = PT_E_IO;
    close(wk.blobs_fd);
    if (rv != 0)
        return rv;
    char manifest[PATH_MAX_LEN + 64];
    snprintf(manifest, sizeof manifest, "%s/backup.json", partial);
    if ((rv = write_manifest(manifest, region, created, out)) != 0)
        return rv;
    if (rename(partial, path) != 0 || pt_fsync_parent(path) != 0)
        return PT_E_IO;
    pt_log(PT_LOG_INFO, "backup written", "{s:s,s:I,s:I,s:I,s:I}", "path", path, "applied_index",
           (json_int_t)out->applied_index, "blobs", (json_int_t)out->blobs, "blob_bytes",
           (json_int_t)out->blob_bytes, "missing_blobs", (json_int_t)out->missing_blobs);
    return 0;
}
