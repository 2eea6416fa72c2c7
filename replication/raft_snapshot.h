/*
 * raft_snapshot.h - Raft snapshots by reference: the state lives in a file, raft stores and
 * sends only a small descriptor of it (DESIGN.md section 3).
 *
 * Files: <raft dir>-snapshots/<applied index>.pts (e.g. <data dir>/raft-snapshots/; not inside
 * the raft directory, whose every entry raft_uv lists as its own), the metastore's snapshot stream
 * (format at the top of node/store/metastore_snapshot.c). A file only ever appears under that name
 * complete and verified: it is written (or fetched) as <name>.tmp, fsynced, renamed, and the
 * directory fsynced. Two snapshots at the same applied index hold the same state, hence the
 * same bytes, so the name is the identity.
 *
 * Descriptor (PT_SNAPDESC_LEN = 72 bytes, integers little-endian), the only data raft keeps
 * in its snapshot and sends in InstallSnapshot:
 *
 *     0   8  magic "PTLNSDSC"
 *     8   4  version (1)
 *    12   4  flags (0)
 *    16   8  applied index (names the file)
 *    24   8  file size in bytes
 *    32  32  SHA-256 of the whole file
 *    64   8  raft id of the region that wrote the file (serves it)
 *
 * A stream snapshot of the previous version (magic "PTLNSNAP") is told apart by its magic, so
 * a region of this version installs what a leader of the previous one sends; the reverse does
 * not hold (a region of the previous version refuses a descriptor): in a rolling upgrade, the
 * leader's region goes last.
 * Threads: the functions that touch files block; they run on the thread pool (or in
 * restore, on the raft loop, see raft_fsm.c). The others are pure.
 */
#ifndef PT_RAFT_SNAPSHOT_H
#define PT_RAFT_SNAPSHOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pt_metastore;
struct pt_metastore_pin;

#define PT_SNAPDESC_LEN     72
#define PT_SNAPDESC_VERSION 1
/* Longest file name: 20 digits, ".pts", ".tmp". */
#define PT_SNAPFILE_NAME_MAX 32
/* Restores write the store in batches of about this many bytes. */
#define PT_SNAPFILE_BATCH (4u << 20)
/* Bound on a snapshot file a region accepts to fetch (the raft message bound of before). */
#define PT_SNAPFILE_SIZE_MAX (UINT64_C(64) << 30)

struct pt_snapdesc {
    uint64_t index; /* the metastore's applied index */
    uint64_t size;  /* of the file */
    unsigned char sha256[32];
    uint64_t source; /* raft id of the writer */
};

/* Encodes d into out. */
void pt_snapdesc_encode(const struct pt_snapdesc *d, unsigned char out[PT_SNAPDESC_LEN]);
/* Whether buf (len bytes, borrowed) starts like a descriptor (magic only). */
bool pt_snapdesc_is(const void *buf, size_t len);
/* Parses a descriptor: 0, or PT_E_CORRUPT for anything but exactly PT_SNAPDESC_LEN bytes
 * with the magic, version 1, flags 0, a non-zero index and source, and 0 < size <=
 * PT_SNAPFILE_SIZE_MAX. */
int pt_snapdesc_parse(const void *buf, size_t len, struct pt_snapdesc *d);

/* "<index>.pts" into out (cap >= PT_SNAPFILE_NAME_MAX). */
void pt_snapfile_name(uint64_t index, char *out, size_t cap);
/* The index a file name stands for: 0, or PT_E_NAME_INVALID for anything but 1 to 20
 * decimal digits without a leading zero, a non-zero value that fits, then ".pts" (so never
 * a path, "..", or a temporary file). name is len bytes, not necessarily NUL-terminated. */
int pt_snapfile_parse_name(const char *name, size_t len, uint64_t *index);
/* "<dir>-snapshots" (dir: the raft directory) into out; PT_E_TOO_LARGE if it does not fit. */
int pt_snapfile_dir(const char *dir, char *out, size_t cap);

/*
 * Writes the stream of pin (borrowed) as <sdir>/<index>.pts (sdir created if missing):
 * temporary name, fsync, rename, fsync of sdir. *d gets the descriptor (source = source).
 * 0, or PT_E_IO / PT_E_NOMEM / the store's error; nothing is left under the final name on
 * failure. Blocks: thread pool.
 */
int pt_snapfile_write(const char *sdir, struct pt_metastore_pin *pin, uint64_t source,
                      struct pt_snapdesc *d);
/* Whether <sdir>/<d->index>.pts exists with d->size bytes (it was verified before it got its
 * name). */
bool pt_snapfile_have(const char *sdir, const struct pt_snapdesc *d);
/*
 * Restores ms from the file of d in batches of PT_SNAPFILE_BATCH, checking its size and
 * SHA-256 against d (pt_metastore_restore_stream). PT_E_NOT_FOUND when the file is missing.
 */
int pt_snapfile_restore(struct pt_metastore *ms, const char *sdir, const struct pt_snapdesc *d);
/*
 * Deletes snapshot files of sdir but the newest `keep` (by index) and those whose index is
 * in busy[0..n_busy); also temporary files older than every kept one. Returns how many were
 * deleted. Blocks (a few unlinks).
 */
int pt_snapfile_prune(const char *sdir, unsigned keep, const uint64_t *busy, size_t n_busy);

#endif
