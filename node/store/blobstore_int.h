/*
 * blobstore_int.h - what the two halves of the blob store share (private to blobstore*.c).
 *
 * The store (blobstore.h) is split by concept:
 *   blobstore.c         the content-addressed blob files: the tree drawn at its top, open and
 *                       close, blob paths, stat/open/remove, and installing a verified upload
 *                       file as a blob (the rename into place)
 *   blobstore_upload.c  upload sessions: their files under uploads/, the serialised session
 *                       record with its SHA-256 state, begin/append/repair/commit/abort
 *                       (a sha512 commit rehashes the file), the start-up sweep
 *
 * Names shared between the halves start with blobstore_. The threading rules are
 * blobstore.h's: the store is immutable after open, every call blocks on file I/O.
 */
#ifndef PT_BLOBSTORE_INT_H
#define PT_BLOBSTORE_INT_H

#include <dirent.h>

#include "blobstore.h"

/* "xx/" + up to 128 hex + NUL; the name is relative to the algorithm's directory */
#define BLOB_NAME_SIZE (3 + PT_DIGEST_HEX_MAX + 1)
/* Depth of directories removed below tmp/ and uploads/ (both should hold plain files only). */
#define REMOVE_DEPTH_MAX 8
#define DIR_MODE         0755
#define FILE_MODE        0644

struct pt_blobstore {
    char *root;                                  /* canonical path of the data directory, owned */
    char *tmp_path;                              /* root + "/tmp", owned */
    int root_fd;                                 /* <dir> */
    int blobs_fd[PT_DIGEST_ALGO_COUNT];          /* <dir>/blobs/sha256, <dir>/blobs/sha512 */
    int uploads_fd;                              /* <dir>/uploads */
    char id_prefix[PT_UPLOAD_ID_PREFIX_MAX + 1]; /* before every new session id; set once */
    struct pt_blobstore_sys sys;
};

/* Translates an errno value from file I/O into a PT_E_* code. */
int blobstore_io_err(int e);

/* Fills name with "xx/<hex>" for d, relative to bs->blobs_fd[d->algo]; PT_E_DIGEST_INVALID
 * unless d->hex is lower-case hex of its algorithm's length. */
int blobstore_blob_name(const struct pt_digest *d, char name[BLOB_NAME_SIZE]);

/* Removes name under dfd (borrowed): a file, or a directory tree at most depth levels deep. */
int blobstore_remove_entry(int dfd, const char *name, int depth);

/* Calls fn(dirfd, entry, arg) for every entry of the directory dfd (borrowed) but "." and
 * "..", in readdir order, until fn returns non-zero. Returns 0, fn's result, or PT_E_IO when
 * the directory cannot be read. */
int blobstore_each_entry(int dfd, int (*fn)(int dirfd, const struct dirent *e, void *arg),
                         void *arg);

/*
 * Installs the upload file uploads/<id> as the blob name ("xx/<hex>", from
 * blobstore_blob_name) of algorithm algo: fd is that file, open read-write, already verified and
 * cut to its length; it is owned by this call and closed on every path. See
 * pt_blobstore_upload_commit for what each outcome leaves on disk.
 */
int blobstore_install(struct pt_blobstore *bs, int fd, const char *id, enum pt_digest_algo algo,
                      const char name[BLOB_NAME_SIZE]);

#endif
