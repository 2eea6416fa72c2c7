/*
 * blobstore.h - content-addressed blob storage on the local filesystem.
 *
 * A registry node keeps every blob as one file named by its digest (sha256 or sha512), and every
 * upload in progress as one file named by its session id (the layout is drawn at the top of
 * blobstore.c). A file under blobs/ is always complete and verified: uploads are written, hashed,
 * fsync'd and only then renamed into place.
 *
 * Threads: every function here does blocking file I/O (writes, fsync, rename, directory scans)
 * and must run on a worker thread (uv_queue_work), never on an event loop. After
 * pt_blobstore_open returns, one struct pt_blobstore may be used by any number of threads at
 * once. One struct pt_upload must be used by one thread at a time; the caller serializes the
 * operations on one upload session (the OCI protocol already orders them by offset).
 *
 * Errors are negative PT_E_* codes (err.h); file-system failures map to PT_E_IO, PT_E_NOMEM,
 * or PT_E_DISK_FULL when the disk or quota is full. Writes of blob data are refused with
 * PT_E_DISK_FULL before they start while free space is below the reserve (diskspace.h).
 */
#ifndef PT_BLOBSTORE_H
#define PT_BLOBSTORE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/sha.h>

#include "bounds.h"
#include "digest.h"

struct pt_blobstore;

/*
 * Opens the store rooted at dir (borrowed; copied). Creates dir (its parent must exist) and
 * the blobs/, uploads/ and tmp/ trees if missing, makes the new entries durable, and removes
 * everything inside tmp/. On success *out is an owned store, freed with pt_blobstore_close.
 * PT_E_CONFIG if dir is NULL, empty or too long; PT_E_IO if the tree cannot be prepared.
 */
int pt_blobstore_open(const char *dir, struct pt_blobstore **out);

/* Closes the store and frees it; bs may be NULL. No other thread may still be using it. */
void pt_blobstore_close(struct pt_blobstore *bs);

/*
 * Absolute, symlink-free path of tmp/, where the HTTP server spills large request bodies (the
 * store empties it at open). Owned by bs, valid until pt_blobstore_close.
 */
const char *pt_blobstore_tmp_dir(const struct pt_blobstore *bs);

/*
 * Upload session state. Plain data: the caller owns it, stores it (encoded) in the metadata DB
 * after each successful call that changes it, and hands it back for the next call. sha holds
 * the SHA-256 state over bytes [0, offset) of the upload, so a session resumes after a restart
 * without re-reading its data. updated_ms is the caller's to maintain.
 */
/* Session ids are at most PT_UPLOAD_ID_MAX bytes and repository names PT_NAME_MAX (bounds.h). */
#define PT_UPLOAD_REPO_MAX PT_NAME_MAX
/* Largest upload in bytes: SHA-256 counts the message length in bits in 64 bits. */
#define PT_UPLOAD_SIZE_MAX ((uint64_t)INT64_MAX >> 3)

struct pt_upload {
    char id[PT_UPLOAD_ID_MAX + 1];     /* [0-9a-f-]{1,64}, NUL-terminated */
    char repo[PT_UPLOAD_REPO_MAX + 1]; /* repository name, NUL-terminated, non-empty */
    uint64_t offset;                   /* bytes received so far */
    int64_t created_ms;
    int64_t updated_ms;
    SHA256_CTX sha;
};

/* Longest prefix of session ids (pt_blobstore_set_id_prefix): with the 36 of the UUID it
 * stays within PT_UPLOAD_ID_MAX. */
#define PT_UPLOAD_ID_PREFIX_MAX 24

/*
 * Makes every session id begun from now on start with prefix (borrowed, copied; at most
 * PT_UPLOAD_ID_PREFIX_MAX characters of [0-9a-f-], else PT_E_CONFIG): in a cluster, the
 * region's raft id in hex and a '-', so any region can tell which region owns a session.
 * Call before the store is shared between threads.
 */
int pt_blobstore_set_id_prefix(struct pt_blobstore *bs, const char *prefix);

/* Size in bytes of an encoded struct pt_upload (a constant of the format version). */
size_t pt_upload_encoded_size(void);

/*
 * Writes u (borrowed) to buf (borrowed, pt_upload_encoded_size() bytes) in the versioned
 * little-endian format documented in blobstore_upload.c. u must be a valid session (as filled by
 * pt_blobstore_upload_begin or pt_upload_decode).
 */
void pt_upload_encode(const struct pt_upload *u, unsigned char *buf);

/*
 * Reads buf (borrowed, len bytes) into *u. PT_E_CORRUPT if the length, version or any field is
 * invalid, including a hash state that does not agree with the offset. On error *u is unchanged.
 */
int pt_upload_decode(const void *buf, size_t len, struct pt_upload *u);

/*
 * Starts a session for repo (borrowed; 1..PT_UPLOAD_REPO_MAX bytes, else PT_E_NAME_INVALID):
 * fills *u with a fresh random id (the id prefix, then UUID v4 text, 36 chars), offset 0,
 * created_ms = updated_ms = now_ms and an initial hash state, and creates the empty upload file.
 */
int pt_blobstore_upload_begin(struct pt_blobstore *bs, const char *repo, int64_t now_ms,
                              struct pt_upload *u);

/*
 * As pt_blobstore_upload_begin but with the session id chosen by the caller (borrowed; a
 * well-formed id, else PT_E_BLOB_UPLOAD_INVALID): a transfer from another region uses the
 * digest's hex, so it finds its own session again. An existing upload file of that id is
 * emptied.
 */
int pt_blobstore_upload_begin_id(struct pt_blobstore *bs, const char *repo, const char *id,
                                 int64_t now_ms, struct pt_upload *u);

/*
 * Opens the upload file of id (borrowed) read-only, for readers that follow a transfer while
 * it is written; *fd is owned by the caller (close it). The descriptor stays valid when the
 * upload is committed (renamed into blobs/) or aborted. PT_E_BLOB_UPLOAD_UNKNOWN if absent.
 */
int pt_blobstore_upload_open_read(struct pt_blobstore *bs, const char *id, int *fd);

/*
 * Appends buf[0, len) (borrowed) at u->offset, makes it durable (fdatasync), then advances
 * u->offset and u->sha. Once this returns 0 the new u may be persisted: the file holds those
 * bytes even after a power loss. On error u is unchanged and the file is cut back to u->offset.
 * PT_E_BLOB_UPLOAD_UNKNOWN if the file is missing or the id malformed; PT_E_BLOB_UPLOAD_INVALID
 * if the file is shorter than u->offset; PT_E_TOO_LARGE past PT_UPLOAD_SIZE_MAX.
 */
int pt_blobstore_upload_append(struct pt_blobstore *bs, struct pt_upload *u, const void *buf,
                               size_t len);

/*
 * As pt_blobstore_upload_append but without the fdatasync (writeback is started): for a
 * request body written in several slices. Bytes written this way survive a process crash, not
 * a power loss, until pt_blobstore_upload_sync or the commit's fsync; a caller that persists
 * the new state of u before that must check the file after a restart of the machine
 * (pt_blobstore_upload_verify).
 */
int pt_blobstore_upload_write(struct pt_blobstore *bs, struct pt_upload *u, const void *buf,
                              size_t len);

/*
 * Writes buf[0, len) (borrowed) at u->offset of u's upload file and leaves u (borrowed) as it
 * is: for a caller that hashes the same bytes in parallel (pt_upload_hash) and advances u
 * (pt_upload_advance) once both are done. Writeback starts as the bytes are written; they
 * are durable after pt_blobstore_upload_sync or the commit's fsync, and survive a process
 * crash (not a power loss) before that. Errors as pt_blobstore_upload_append (plus
 * PT_E_DISK_FULL below the reserve); on error the file is cut back to u->offset.
 */
int pt_blobstore_upload_put(struct pt_blobstore *bs, const struct pt_upload *u, const void *buf,
                            size_t len);

/* Sets *sha to u's hash state (borrowed) advanced by buf[0, len) (borrowed). Pure CPU, any
 * thread; u is not changed. */
void pt_upload_hash(const struct pt_upload *u, const void *buf, size_t len, SHA256_CTX *sha);

/* Makes u take the state sha (from pt_upload_hash of the len bytes that
 * pt_blobstore_upload_put wrote) and advances u->offset by len. */
void pt_upload_advance(struct pt_upload *u, const SHA256_CTX *sha, size_t len);

/*
 * After the machine restarted (a power loss may have dropped bytes written without sync):
 * reads bytes [0, u->offset) of u's upload file once and checks they hash to u's state.
 * 0 when they do; PT_E_BLOB_UPLOAD_INVALID when the file is missing, shorter, or holds other
 * bytes (the session cannot be resumed); PT_E_IO or PT_E_NOMEM otherwise.
 */
int pt_blobstore_upload_verify(struct pt_blobstore *bs, const struct pt_upload *u);

/* 1 when the machine has booted since the last pt_blobstore_boot_note on this data directory
 * (or that cannot be told: no note, no boot id), 0 when it has not. */
int pt_blobstore_boot_changed(struct pt_blobstore *bs);

/* Notes the current boot (the kernel's boot id) in <dir>/boot_id. 0, or PT_E_IO. */
int pt_blobstore_boot_note(struct pt_blobstore *bs);

/*
 * As pt_blobstore_upload_write, for a whole request body: each piece of 256 KiB is hashed and
 * then written while it is still in the CPU's cache, so the body is read from memory once.
 * *hash_s gets the seconds spent hashing (the rest of the call is writing).
 */
int pt_blobstore_upload_ingest(struct pt_blobstore *bs, struct pt_upload *u, const void *buf,
                               size_t len, double *hash_s);

/* Makes everything written to the upload of u (borrowed) durable (fdatasync). */
int pt_blobstore_upload_sync(struct pt_blobstore *bs, const struct pt_upload *u);

/*
 * After a restart: makes the upload file agree with u (borrowed) by cutting off bytes past
 * u->offset. PT_E_BLOB_UPLOAD_INVALID if the file is shorter or missing (the session cannot be
 * resumed and should be dropped).
 */
int pt_blobstore_upload_repair(struct pt_blobstore *bs, const struct pt_upload *u);

/*
 * Finishes the session u (borrowed; never modified) as the blob *expected (borrowed; sha256 or
 * sha512). PT_E_DIGEST_INVALID if the hash of the received bytes differs (or expected is
 * malformed): the upload stays as it was, so the client may retry. A sha256 digest is checked
 * against the session's hash state; a sha512 one by reading the upload file once and hashing
 * it (a bounded buffer, so an extra pass over the blob's bytes). Otherwise the upload file is
 * fsync'd, renamed to blobs/<algorithm>/<xx>/<hex> and the directory fsync'd; if that blob
 * already exists the upload file is removed instead. On success the upload file is gone and
 * the blob is durable.
 * On PT_E_IO before the rename the upload is intact and the blob absent. If only the final
 * directory fsync fails the blob is visible (complete and verified) but may not survive a power
 * loss; the upload file is gone and PT_E_IO is returned.
 */
int pt_blobstore_upload_commit(struct pt_blobstore *bs, struct pt_upload *u,
                               const struct pt_digest *expected);

/* Removes the upload file of id (borrowed). 0 if it is already gone; PT_E_BLOB_UPLOAD_UNKNOWN
 * if id is malformed. */
int pt_blobstore_upload_abort(struct pt_blobstore *bs, const char *id);

/* 1 if the blob the upload u (borrowed) hashes to so far is already stored with u->offset
 * bytes (an upload committed by a final PUT whose answer was lost to a crash), 0 if not;
 * *d (may be NULL) gets that digest. Only the sha256 digest is known from the session's
 * state, so an upload that a lost final PUT stored under a sha512 digest is not found. */
int pt_blobstore_upload_stored(struct pt_blobstore *bs, const struct pt_upload *u,
                               struct pt_digest *d);

/* 0 and *size if the blob *d (borrowed) is stored; PT_E_BLOB_UNKNOWN if not;
 * PT_E_DIGEST_INVALID if *d is malformed. */
int pt_blobstore_stat(struct pt_blobstore *bs, const struct pt_digest *d, uint64_t *size);

/*
 * Opens the blob *d (borrowed) read-only with O_CLOEXEC. On success *fd is owned by the caller
 * (close it) and *size is the blob's length. PT_E_BLOB_UNKNOWN if absent.
 */
int pt_blobstore_open_blob(struct pt_blobstore *bs, const struct pt_digest *d, int *fd,
                           uint64_t *size);

/*
 * Start-up cleanup: removes every entry of uploads/ whose name is not a well-formed id for
 * which is_live(id, arg) returns non-zero. id is borrowed for the call. Run it before any
 * session is used; a live session's upload file may still need pt_blobstore_upload_repair.
 */
int pt_blobstore_sweep_uploads(struct pt_blobstore *bs, int (*is_live)(const char *id, void *arg),
                               void *arg);

/* Backups (backup.h): makes dest_name (relative to the directory dest_dirfd) a hard link to the
 * blob *d, or a copy of it (fsync'd) when the two are on different filesystems; *size is the
 * blob's size. 0, PT_E_BLOB_UNKNOWN when this store lacks the blob, PT_E_CONFLICT when
 * dest_name exists already, or PT_E_IO. Blocking. */
int pt_blobstore_link_out(struct pt_blobstore *bs, const struct pt_digest *d, int dest_dirfd,
                          const char *dest_name, uint64_t *size);

/* Removes the blob *d (borrowed) for garbage collection. PT_E_BLOB_UNKNOWN if absent. Readers
 * that already opened it keep reading the old file. */
int pt_blobstore_remove_blob(struct pt_blobstore *bs, const struct pt_digest *d);

/*
 * Garbage collection: removes the blob *d (borrowed) only if its file was last modified before
 * before_ms (a commit installs or touches the file it keeps, so a blob stored again after the
 * collection that named it survives). The file is first renamed aside into tmp/, checked there
 * and put back if it is too new, so a concurrent commit of the same digest either touches the
 * file before it is looked at or installs a new one. 0 removed, 1 kept (too new),
 * PT_E_BLOB_UNKNOWN if absent, PT_E_IO. A crash leaves the file aside in tmp/ (cleared at open),
 * never a partial blob.
 */
int pt_blobstore_remove_blob_before(struct pt_blobstore *bs, const struct pt_digest *d,
                                    int64_t before_ms);

/* Calls cb for every blob file (both algorithms, in directory order): its digest (borrowed),
 * last modification (ms since the epoch) and size. A non-zero return stops the walk and is
 * returned. Blocks on directory reads: a worker or gc thread only. */
int pt_blobstore_foreach_blob(struct pt_blobstore *bs,
                              int (*cb)(const struct pt_digest *d, int64_t mtime_ms, uint64_t size,
                                        void *arg),
                              void *arg);

/*
 * For tests: the system calls whose failures matter to the commit protocol go through this
 * per-store table (in the manner of SQLite's aSyscall[]). Each entry has the signature and
 * errno convention of the libc call it replaces. pt_blobstore_sys returns the table of bs
 * (owned by bs, initialized to the libc functions); a test replaces entries between calls,
 * while no other thread uses bs. Production code never touches it.
 */
struct pt_blobstore_sys {
    ssize_t (*pwrite_fn)(int fd, const void *buf, size_t len, off_t off);
    int (*ftruncate_fn)(int fd, off_t len);
    int (*fsync_fn)(int fd);     /* files before rename, and directories */
    int (*fdatasync_fn)(int fd); /* upload data after each append */
    int (*renameat_fn)(int olddirfd, const char *oldpath, int newdirfd, const char *newpath);
};

struct pt_blobstore_sys *pt_blobstore_sys(struct pt_blobstore *bs);

#endif
