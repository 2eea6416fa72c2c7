/*
 * backup.h - a consistent backup of a running region's stores (README "Backup and restore").
 *
 * Layout, under the region's data directory (the same filesystem, so nearly everything is a
 * hard link and a backup costs almost no space or time until the originals change):
 *
 *   <data>/backups/
 *   |-- .<name>.partial/        a backup being written (left behind only by a crash)
 *   `-- <name>/                 name = UTC time of the backup, YYYYMMDDTHHMMSSZ[-N]
 *       |-- meta/               RocksDB checkpoint of the metadata store: every record,
 *       |                       consistent at one applied index (memtables flushed first)
 *       |-- blobs/<algo>/<xx>/<hex>
 *       |                       every blob a repository links in that checkpoint: hard links
 *       |                       of the verified, immutable blob files (copies across
 *       |                       filesystems), laid out as in the blob store
 *       `-- backup.json         written last: {"format":1,"region","created","applied_index",
 *                               "blobs","blob_bytes","missing_blobs"}
 *
 * Design: blobs are content-addressed and never change, so linking them after the checkpoint
 * cannot catch a blob in a state other than the one the checkpoint refers to; the blobs listed
 * are the ones the checkpoint links (not the live store's), read from the checkpoint itself.
 * A cluster region may lack blob bytes that other regions hold (replicated in the background):
 * such blobs are counted in missing_blobs (and logged); a backup with missing_blobs 0 is
 * complete. Upload sessions are local and not restored (their records are dropped at restore);
 * the Raft log is not part of a backup.
 *
 * Threads: blocking file I/O: run on a thread pool, never on an event loop.
 */
#ifndef PT_BACKUP_H
#define PT_BACKUP_H

#include <stdint.h>

struct pt_metastore;
struct pt_blobstore;

#define PT_BACKUP_NAME_MAX 31

struct pt_backup_result {
    char name[PT_BACKUP_NAME_MAX + 1]; /* the directory under <data>/backups */
    uint64_t applied_index;            /* the checkpoint's */
    uint64_t blobs;                    /* blob files in the backup */
    uint64_t blob_bytes;               /* their total size */
    uint64_t missing_blobs;            /* linked blobs this region does not hold */
};

/* Writes a backup of ms and bs (borrowed) into <data_dir>/backups/<name> (see the file
 * comment). region (borrowed) is recorded in backup.json; now_ms names the backup. 0 and *out,
 * or PT_E_IO / PT_E_NOMEM / PT_E_CORRUPT (nothing is left but a .partial directory). */
int pt_backup_create(struct pt_metastore *ms, struct pt_blobstore *bs, const char *data_dir,
                     const char *region, int64_t now_ms, struct pt_backup_result *out);

#endif
