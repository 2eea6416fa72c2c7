/*
 * blobstore_upload.c - upload sessions of the blob store: their files under uploads/, the
 * serialised session record with its SHA-256 state, and begin, append, repair, commit and
 * abort (the contract is blobstore.h's, the tree is drawn at the top of blobstore.c).
 *
 * A session's bytes are appended to uploads/<id> (written, their writeback started, before
 * the session state that covers them is handed back; fdatasync'd only on request); commit compares
 * their hash with the digest the client named (SHA-256 from the session's state; SHA-512 by reading
 * the file back once), fsyncs the file and hands it to blobstore_install, which renames it into
 * blobs/ and fsyncs the directory. So a crash at any instant leaves either no blob or the whole
 * verified blob; never a partial one.
 *
 * Resumable hashing: the hash state is OpenSSL's SHA256_CTX (deprecated but plain data, unlike
 * EVP_MD_CTX), kept inside struct pt_upload next to the offset. The caller persists the encoded
 * session after every append; after a restart it decodes it, calls upload_repair to cut off any
 * bytes written after the last persisted state, and continues without re-reading the file.
 * Bytes written without fdatasync survive a process crash (they are in the page cache), so after
 * a kill -9 the file can only be longer than the saved offset, never hold different bytes below
 * it: the hash always describes the file's prefix. A power loss may drop such bytes while the
 * saved state survives: after the machine restarted (pt_blobstore_boot_changed) recovery checks
 * each session's file against its state once (pt_blobstore_upload_verify) and drops the ones
 * that no longer agree.
 *
 * Upload ids are [0-9a-f-] (at most PT_UPLOAD_ID_MAX, checked by valid_id before any file is
 * named), so no request can name a path outside uploads/.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/rand.h>

#include "blobstore_int.h"
#include "bytes.h"
#include "diskspace.h"
#include "err.h"

static int valid_id(const char *id)
{
    size_t n = 0;
    for (; id[n] != '\0'; n++) {
        char c = id[n];
        if (n == PT_UPLOAD_ID_MAX)
            return 0;
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-'))
            return 0;
    }
    return n > 0;
}

/* ---- the session record -------------------------------------------------------------- */

/*
 * Session encoding, version 1, all integers little-endian, fixed size (this is the opaque value
 * of the metadata store's upload records):
 *
 *   off  size  field
 *     0     1  version (1)
 *     1     1  id length n (1..64)
 *     2    64  id bytes, then zero padding
 *    66     1  repo length m (1..255)
 *    67   255  repo bytes (no NUL), then zero padding
 *   322     8  offset (u64, <= PT_UPLOAD_SIZE_MAX)
 *   330     8  created_ms (i64)
 *   338     8  updated_ms (i64)
 *   346    32  SHA256_CTX.h[0..7] (u32 each)
 *   378     4  SHA256_CTX.Nl (u32)
 *   382     4  SHA256_CTX.Nh (u32)
 *   386    64  SHA256_CTX.data as bytes (OpenSSL buffers the partial block bytewise)
 *   450     4  SHA256_CTX.num (u32, bytes buffered, == offset % 64)
 *   454     4  SHA256_CTX.md_len (u32, 32)
 *   458        end
 *
 * Decoding checks every field, including that the bit count Nh:Nl equals 8 * offset, so a
 * state that does not belong to its offset is rejected as corrupt.
 */
#define UPLOAD_FORMAT_VERSION 1
#define ENC_ID                1
#define ENC_REPO              (ENC_ID + 1 + PT_UPLOAD_ID_MAX)
#define ENC_OFFSET            (ENC_REPO + 1 + PT_UPLOAD_REPO_MAX)
#define ENC_CREATED           (ENC_OFFSET + 8)
#define ENC_UPDATED           (ENC_CREATED + 8)
#define ENC_SHA_H             (ENC_UPDATED + 8)
#define ENC_SHA_NL            (ENC_SHA_H + 32)
#define ENC_SHA_NH            (ENC_SHA_NL + 4)
#define ENC_SHA_DATA          (ENC_SHA_NH + 4)
#define ENC_SHA_NUM           (ENC_SHA_DATA + SHA_CBLOCK)
#define ENC_SHA_MDLEN         (ENC_SHA_NUM + 4)
#define ENC_SIZE              (ENC_SHA_MDLEN + 4)

_Static_assert(ENC_SIZE == 458, "upload encoding v1 is 458 bytes");
_Static_assert(sizeof(((SHA256_CTX *)0)->data) == SHA_CBLOCK, "SHA256_CTX block buffer");

static int all_zero(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != 0)
            return 0;
    return 1;
}

size_t pt_upload_encoded_size(void)
{
    return ENC_SIZE;
}

void pt_upload_encode(const struct pt_upload *u, unsigned char *buf)
{
    size_t id_len = strnlen(u->id, PT_UPLOAD_ID_MAX);
    size_t repo_len = strnlen(u->repo, PT_UPLOAD_REPO_MAX);

    memset(buf, 0, ENC_SIZE);
    buf[0] = UPLOAD_FORMAT_VERSION;
    buf[ENC_ID] = (unsigned char)id_len;
    memcpy(buf + ENC_ID + 1, u->id, id_len);
    buf[ENC_REPO] = (unsigned char)repo_len;
    memcpy(buf + ENC_REPO + 1, u->repo, repo_len);
    pt_put_le64(buf + ENC_OFFSET, u->offset);
    pt_put_le64(buf + ENC_CREATED, (uint64_t)u->created_ms);
    pt_put_le64(buf + ENC_UPDATED, (uint64_t)u->updated_ms);
    for (int i = 0; i < 8; i++)
        pt_put_le32(buf + ENC_SHA_H + 4 * i, u->sha.h[i]);
    pt_put_le32(buf + ENC_SHA_NL, u->sha.Nl);
    pt_put_le32(buf + ENC_SHA_NH, u->sha.Nh);
    memcpy(buf + ENC_SHA_DATA, u->sha.data, SHA_CBLOCK);
    pt_put_le32(buf + ENC_SHA_NUM, u->sha.num);
    pt_put_le32(buf + ENC_SHA_MDLEN, u->sha.md_len);
}

int pt_upload_decode(const void *buf, size_t len, struct pt_upload *u)
{
    const unsigned char *p = buf;
    struct pt_upload d;
    size_t id_len, repo_len;

    if (len != ENC_SIZE || p[0] != UPLOAD_FORMAT_VERSION)
        return PT_E_CORRUPT;
    memset(&d, 0, sizeof(d));

    id_len = p[ENC_ID];
    if (id_len == 0 || id_len > PT_UPLOAD_ID_MAX ||
        !all_zero(p + ENC_ID + 1 + id_len, PT_UPLOAD_ID_MAX - id_len))
        return PT_E_CORRUPT;
    memcpy(d.id, p + ENC_ID + 1, id_len);
    if (strlen(d.id) != id_len || !valid_id(d.id))
        return PT_E_CORRUPT;

    repo_len = p[ENC_REPO];
    if (repo_len == 0 || !all_zero(p + ENC_REPO + 1 + repo_len, PT_UPLOAD_REPO_MAX - repo_len))
        return PT_E_CORRUPT;
    memcpy(d.repo, p + ENC_REPO + 1, repo_len);
    if (strlen(d.repo) != repo_len)
        return PT_E_CORRUPT;

    d.offset = pt_get_le64(p + ENC_OFFSET);
    d.created_ms = (int64_t)pt_get_le64(p + ENC_CREATED);
    d.updated_ms = (int64_t)pt_get_le64(p + ENC_UPDATED);
    if (d.offset > PT_UPLOAD_SIZE_MAX)
        return PT_E_CORRUPT;

    for (int i = 0; i < 8; i++)
        d.sha.h[i] = pt_get_le32(p + ENC_SHA_H + 4 * i);
    d.sha.Nl = pt_get_le32(p + ENC_SHA_NL);
    d.sha.Nh = pt_get_le32(p + ENC_SHA_NH);
    memcpy(d.sha.data, p + ENC_SHA_DATA, SHA_CBLOCK);
    d.sha.num = pt_get_le32(p + ENC_SHA_NUM);
    d.sha.md_len = pt_get_le32(p + ENC_SHA_MDLEN);
    if (d.sha.md_len != SHA256_DIGEST_LENGTH || d.sha.num != d.offset % SHA_CBLOCK ||
        (((uint64_t)d.sha.Nh << 32) | d.sha.Nl) != d.offset << 3)
        return PT_E_CORRUPT;

    *u = d;
    return 0;
}

/* ---- sessions ------------------------------------------------------------------------ */

/* Writes prefix and an RFC 4122 version-4 UUID in lower-case hex to id. */
static int make_id(const char *prefix, char id[PT_UPLOAD_ID_MAX + 1])
{
    static const char hex[] = "0123456789abcdef";
    unsigned char r[16];
    size_t plen = strlen(prefix);
    char *o = id + plen;

    memcpy(id, prefix, plen);
    if (RAND_bytes(r, sizeof(r)) != 1)
        return PT_E_INTERNAL;
    r[6] = (unsigned char)((r[6] & 0x0f) | 0x40);
    r[8] = (unsigned char)((r[8] & 0x3f) | 0x80);
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            *o++ = '-';
        *o++ = hex[r[i] >> 4];
        *o++ = hex[r[i] & 15];
    }
    *o = '\0';
    return 0;
}

/* Opens the upload file of id with flags; PT_E_BLOB_UPLOAD_UNKNOWN if missing or malformed. */
static int open_upload(struct pt_blobstore *bs, const char *id, int flags)
{
    int fd;
    if (!valid_id(id))
        return PT_E_BLOB_UPLOAD_UNKNOWN;
    fd = openat(bs->uploads_fd, id, flags | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0)
        return errno == ENOENT ? PT_E_BLOB_UPLOAD_UNKNOWN : blobstore_io_err(errno);
    return fd;
}

/* Fills a fresh session of id (already created on disk) for repo. */
static int session_init(struct pt_upload *n, const char *repo, int64_t now_ms)
{
    size_t repo_len = repo != NULL ? strnlen(repo, PT_UPLOAD_REPO_MAX + 1) : 0;
    if (repo_len == 0 || repo_len > PT_UPLOAD_REPO_MAX)
        return PT_E_NAME_INVALID;
    memcpy(n->repo, repo, repo_len);
    n->repo[repo_len] = '\0';
    n->offset = 0;
    n->created_ms = now_ms;
    n->updated_ms = now_ms;
    SHA256_Init(&n->sha);
    return 0;
}

int pt_blobstore_upload_begin(struct pt_blobstore *bs, const char *repo, int64_t now_ms,
                              struct pt_upload *u)
{
    struct pt_upload n;
    int fd = -1, rv;

    memset(&n, 0, sizeof(n));
    if ((rv = session_init(&n, repo, now_ms)) != 0)
        return rv;
    /* 122 random bits make a collision practically impossible; O_EXCL makes it harmless. */
    for (int attempt = 0; attempt < 3 && fd < 0; attempt++) {
        rv = make_id(bs->id_prefix, n.id);
        if (rv != 0)
            return rv;
        fd = openat(bs->uploads_fd, n.id, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, FILE_MODE);
        if (fd < 0 && errno != EEXIST)
            return blobstore_io_err(errno);
    }
    if (fd < 0)
        return PT_E_INTERNAL;
    close(fd);
    *u = n;
    return 0;
}

int pt_blobstore_set_id_prefix(struct pt_blobstore *bs, const char *prefix)
{
    size_t n = strlen(prefix);
    if (n > PT_UPLOAD_ID_PREFIX_MAX || strspn(prefix, "0123456789abcdef-") != n)
        return PT_E_CONFIG;
    memcpy(bs->id_prefix, prefix, n + 1);
    return 0;
}

int pt_blobstore_upload_begin_id(struct pt_blobstore *bs, const char *repo, const char *id,
                                 int64_t now_ms, struct pt_upload *u)
{
    struct pt_upload n;
    int fd, rv;

    memset(&n, 0, sizeof(n));
    if (!valid_id(id))
        return PT_E_BLOB_UPLOAD_INVALID;
    if ((rv = session_init(&n, repo, now_ms)) != 0)
        return rv;
    snprintf(n.id, sizeof(n.id), "%s", id);
    fd = openat(bs->uploads_fd, n.id, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, FILE_MODE);
    if (fd < 0)
        return blobstore_io_err(errno);
    close(fd);
    *u = n;
    return 0;
}

int pt_blobstore_upload_open_read(struct pt_blobstore *bs, const char *id, int *fd)
{
    int f = open_upload(bs, id, O_RDONLY);
    if (f < 0)
        return f;
    *fd = f;
    return 0;
}

/* Writes all of buf at off, retrying short writes and EINTR. */
static int write_all(struct pt_blobstore *bs, int fd, const unsigned char *buf, size_t len,
                     uint64_t off)
{
    while (len > 0) {
        ssize_t n = bs->sys.pwrite_fn(fd, buf, len, (off_t)off);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return blobstore_io_err(errno);
        }
        if (n == 0 || (size_t)n > len)
            return PT_E_IO;
        buf += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* Bytes written between two starts of writeback (sync_file_range) in put_bytes. */
#define WRITEBACK_PIECE (8u << 20)

/*
 * Writes buf[0, len) at u->offset of u's upload file without touching u: checks the file
 * is the session's (a regular file at least u->offset long), the size limit and the disk
 * reserve, then writes in WRITEBACK_PIECE pieces, starting writeback of each piece so the
 * disk works while the rest is written and hashed and a later fsync only waits for the
 * tail. durable: fdatasync before returning. On failure the file is cut back to u->offset.
 */
/* Bytes hashed and then written at a time when put_bytes hashes: small enough to be still in
 * the CPU's cache when written, so the body is read from memory once. */
#define HASH_PIECE (256u << 10)

static double elapsed(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

static int put_bytes(struct pt_blobstore *bs, const struct pt_upload *u, const void *buf,
                     size_t len, int durable, SHA256_CTX *sha, double *hash_s)
{
    const unsigned char *p = buf;
    struct stat st;
    int fd, rv = 0;

    if (u->offset > PT_UPLOAD_SIZE_MAX)
        return PT_E_BLOB_UPLOAD_INVALID;
    if (len > PT_UPLOAD_SIZE_MAX - u->offset)
        return PT_E_TOO_LARGE;
    fd = open_upload(bs, u->id, O_WRONLY);
    if (fd < 0)
        return fd;
    /* Writing past the end would leave a hole of zeros the hash never saw. */
    if (fstat(fd, &st) != 0) {
        rv = blobstore_io_err(errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < u->offset) {
        rv = PT_E_BLOB_UPLOAD_INVALID;
        goto out;
    }
    if (len == 0)
        goto out;
    /* the data filesystem keeps its reserve: nothing is written below it */
    if (pt_disk_low(len)) {
        rv = PT_E_DISK_FULL;
        goto out;
    }
    for (size_t done = 0, flushed = 0; rv == 0 && done < len;) {
        size_t n = len - done < HASH_PIECE ? len - done : HASH_PIECE;
        if (sha != NULL) {
            struct timespec t0;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            SHA256_Update(sha, p + done, n);
            if (hash_s != NULL)
                *hash_s += elapsed(&t0);
        }
        rv = write_all(bs, fd, p + done, n, u->offset + done);
        done += n;
        /* Advisory: errors surface at the fdatasync or the commit's fsync. */
        if (rv == 0 && !durable && (done - flushed >= WRITEBACK_PIECE || done == len)) {
            (void)sync_file_range(fd, (off64_t)(u->offset + flushed), (off64_t)(done - flushed),
                                  SYNC_FILE_RANGE_WRITE);
            flushed = done;
        }
    }
    if (rv == 0 && durable && bs->sys.fdatasync_fn(fd) != 0)
        rv = blobstore_io_err(errno);
    if (rv != 0) {
        /*
         * A failed cut leaves bytes past u->offset; they are never read as data: the next
         * append overwrites them, and repair and commit cut them off.
         */
        (void)bs->sys.ftruncate_fn(fd, (off_t)u->offset);
    }
out:
    close(fd);
    return rv;
}

/* put_bytes hashing each piece just before writing it; u advances on success. */
static int append(struct pt_blobstore *bs, struct pt_upload *u, const void *buf, size_t len,
                  int durable, double *hash_s)
{
    SHA256_CTX sha = u->sha;
    int rv = put_bytes(bs, u, buf, len, durable, &sha, hash_s);
    if (rv == 0 && len > 0) {
        u->sha = sha;
        u->offset += len;
    }
    return rv;
}

int pt_blobstore_upload_put(struct pt_blobstore *bs, const struct pt_upload *u, const void *buf,
                            size_t len)
{
    return put_bytes(bs, u, buf, len, 0, NULL, NULL);
}

void pt_upload_hash(const struct pt_upload *u, const void *buf, size_t len, SHA256_CTX *sha)
{
    *sha = u->sha;
    SHA256_Update(sha, buf, len);
}

void pt_upload_advance(struct pt_upload *u, const SHA256_CTX *sha, size_t len)
{
    u->sha = *sha;
    u->offset += len;
}

int pt_blobstore_upload_append(struct pt_blobstore *bs, struct pt_upload *u, const void *buf,
                               size_t len)
{
    return append(bs, u, buf, len, 1, NULL);
}

int pt_blobstore_upload_write(struct pt_blobstore *bs, struct pt_upload *u, const void *buf,
                              size_t len)
{
    return append(bs, u, buf, len, 0, NULL);
}

int pt_blobstore_upload_ingest(struct pt_blobstore *bs, struct pt_upload *u, const void *buf,
                               size_t len, double *hash_s)
{
    *hash_s = 0;
    return append(bs, u, buf, len, 0, hash_s);
}

int pt_blobstore_upload_sync(struct pt_blobstore *bs, const struct pt_upload *u)
{
    int fd = open_upload(bs, u->id, O_WRONLY);
    if (fd < 0)
        return fd;
    int rv = bs->sys.fdatasync_fn(fd) != 0 ? blobstore_io_err(errno) : 0;
    close(fd);
    return rv;
}

/* Opens the file of session u (flags: O_RDONLY or O_WRONLY) into *fd and its size into *size
 * after checking that it is a regular file holding at least the recorded bytes. 0, or
 * PT_E_BLOB_UPLOAD_INVALID (no such file, or too short), or an I/O error (nothing open). */
static int open_session_file(struct pt_blobstore *bs, const struct pt_upload *u, int flags, int *fd,
                             uint64_t *size)
{
    struct stat st;
    if (u->offset > PT_UPLOAD_SIZE_MAX)
        return PT_E_BLOB_UPLOAD_INVALID;
    int f = open_upload(bs, u->id, flags);
    if (f == PT_E_BLOB_UPLOAD_UNKNOWN)
        return PT_E_BLOB_UPLOAD_INVALID;
    if (f < 0)
        return f;
    int rv = 0;
    if (fstat(f, &st) != 0)
        rv = blobstore_io_err(errno);
    else if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < u->offset)
        rv = PT_E_BLOB_UPLOAD_INVALID;
    if (rv != 0) {
        close(f);
        return rv;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

int pt_blobstore_upload_repair(struct pt_blobstore *bs, const struct pt_upload *u)
{
    int fd;
    uint64_t size;
    int rv = open_session_file(bs, u, O_WRONLY, &fd, &size);
    if (rv != 0)
        return rv;
    if (size > u->offset && bs->sys.ftruncate_fn(fd, (off_t)u->offset) != 0)
        rv = blobstore_io_err(errno);
    close(fd);
    return rv;
}

/* Bytes read per slice when a commit rehashes an upload file. */
#define REHASH_SLICE (256u << 10)

/*
 * Hashes bytes [0, len) of fd (borrowed) with the algorithm of want and compares: 0 when they
 * hash to *want, PT_E_DIGEST_INVALID when not. One streaming pass through a bounded buffer.
 */
static int rehash_file(int fd, uint64_t len, const struct pt_digest *want)
{
    struct pt_digest_stream st;
    struct pt_digest got;
    unsigned char *buf = malloc(REHASH_SLICE);
    uint64_t off = 0;
    int rv;

    if (buf == NULL)
        return PT_E_NOMEM;
    rv = pt_digest_stream_init(&st, want->algo);
    if (rv != 0)
        goto out;
    while (off < len) {
        size_t n = len - off < REHASH_SLICE ? (size_t)(len - off) : REHASH_SLICE;
        ssize_t r = pread(fd, buf, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rv = r < 0 ? blobstore_io_err(errno) : PT_E_BLOB_UPLOAD_INVALID;
            pt_digest_stream_free(&st);
            goto out;
        }
        rv = pt_digest_stream_update(&st, buf, (size_t)r);
        if (rv != 0) {
            pt_digest_stream_free(&st);
            goto out;
        }
        off += (uint64_t)r;
    }
    rv = pt_digest_stream_final(&st, &got);
    if (rv == 0 && !pt_digest_equal(&got, want))
        rv = PT_E_DIGEST_INVALID;
out:
    free(buf);
    return rv;
}

/*
 * The session's resumable state is SHA-256 only, so a sha256 digest is checked against it at no
 * cost. Any other algorithm (sha512) is checked by reading the whole file back once and hashing
 * it (rehash_file): one more sequential read of the blob, mostly from the page cache for a
 * blob just written, and SHA-512 at several hundred MB/s; the caller is on a worker thread.
 */
int pt_blobstore_upload_commit(struct pt_blobstore *bs, struct pt_upload *u,
                               const struct pt_digest *expected)
{
    unsigned char raw[SHA256_DIGEST_LENGTH];
    char name[BLOB_NAME_SIZE];
    struct pt_digest got;
    SHA256_CTX sha;
    struct stat st;
    int fd, rv;

    rv = blobstore_blob_name(expected, name);
    if (rv != 0)
        return rv;
    if (u->offset > PT_UPLOAD_SIZE_MAX)
        return PT_E_BLOB_UPLOAD_INVALID;
    if (expected->algo == PT_DIGEST_SHA256) {
        sha = u->sha;
        SHA256_Final(raw, &sha);
        pt_digest_from_raw(raw, &got);
        if (!pt_digest_equal(&got, expected))
            return PT_E_DIGEST_INVALID;
    }

    fd = open_upload(bs, u->id, O_RDWR);
    if (fd < 0)
        return fd;
    if (fstat(fd, &st) != 0) {
        rv = blobstore_io_err(errno);
        goto err_after_fd;
    }
    if (!S_ISREG(st.st_mode) || (uint64_t)st.st_size < u->offset) {
        rv = PT_E_BLOB_UPLOAD_INVALID;
        goto err_after_fd;
    }
    if ((uint64_t)st.st_size > u->offset && bs->sys.ftruncate_fn(fd, (off_t)u->offset) != 0) {
        rv = blobstore_io_err(errno);
        goto err_after_fd;
    }
    if (expected->algo != PT_DIGEST_SHA256 && (rv = rehash_file(fd, u->offset, expected)) != 0)
        goto err_after_fd;

    return blobstore_install(bs, fd, u->id, expected->algo, name);

err_after_fd:
    close(fd);
    return rv;
}

int pt_blobstore_upload_verify(struct pt_blobstore *bs, const struct pt_upload *u)
{
    unsigned char *buf;
    SHA256_CTX sha;
    uint64_t off = 0, size;
    int fd;

    int rv = open_session_file(bs, u, O_RDONLY, &fd, &size);
    if (rv != 0)
        return rv;
    if ((buf = malloc(REHASH_SLICE)) == NULL) {
        rv = PT_E_NOMEM;
        goto out;
    }
    SHA256_Init(&sha);
    while (rv == 0 && off < u->offset) {
        size_t n = u->offset - off < REHASH_SLICE ? (size_t)(u->offset - off) : REHASH_SLICE;
        ssize_t r = pread(fd, buf, n, (off_t)off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            rv = r < 0 ? blobstore_io_err(errno) : PT_E_BLOB_UPLOAD_INVALID;
            break;
        }
        SHA256_Update(&sha, buf, (size_t)r);
        off += (uint64_t)r;
    }
    free(buf);
    /* Equal inputs give equal states: compare the chaining words and the buffered tail. */
    if (rv == 0 && (memcmp(sha.h, u->sha.h, sizeof(sha.h)) != 0 || sha.num != u->sha.num ||
                    memcmp(sha.data, u->sha.data, sha.num) != 0))
        rv = PT_E_BLOB_UPLOAD_INVALID;
out:
    close(fd);
    return rv;
}

/* The kernel's id of this boot (36 characters and a newline) in id; 0 or -1. */
static int boot_id(char id[64])
{
    int fd = open("/proc/sys/kernel/random/boot_id", O_RDONLY | O_CLOEXEC);
    ssize_t n = fd >= 0 ? read(fd, id, 63) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    id[n] = '\0';
    return 0;
}

int pt_blobstore_boot_changed(struct pt_blobstore *bs)
{
    char now[64], noted[64];
    int fd = openat(bs->root_fd, "boot_id", O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    ssize_t n = fd >= 0 ? read(fd, noted, sizeof(noted) - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0 || boot_id(now) != 0)
        return 1;
    noted[n] = '\0';
    return strcmp(now, noted) != 0;
}

int pt_blobstore_boot_note(struct pt_blobstore *bs)
{
    char now[64];
    int rv = 0;
    if (boot_id(now) != 0)
        return PT_E_IO;
    /* A note lost to a crash only makes the next start verify the sessions again. */
    int fd = openat(bs->root_fd, "boot_id", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW,
                    FILE_MODE);
    if (fd < 0)
        return blobstore_io_err(errno);
    if (write_all(bs, fd, (const unsigned char *)now, strlen(now), 0) != 0)
        rv = PT_E_IO;
    close(fd);
    return rv;
}

int pt_blobstore_upload_abort(struct pt_blobstore *bs, const char *id)
{
    if (!valid_id(id))
        return PT_E_BLOB_UPLOAD_UNKNOWN;
    if (unlinkat(bs->uploads_fd, id, 0) != 0 && errno != ENOENT)
        return blobstore_io_err(errno);
    return 0;
}

struct sweep {
    int (*is_live)(const char *id, void *arg);
    void *arg;
};

static int sweep_entry(int dfd, const struct dirent *e, void *arg)
{
    const struct sweep *sw = arg;
    if (valid_id(e->d_name) && e->d_type != DT_DIR && sw->is_live(e->d_name, sw->arg))
        return 0;
    return blobstore_remove_entry(dfd, e->d_name, REMOVE_DEPTH_MAX);
}

int pt_blobstore_sweep_uploads(struct pt_blobstore *bs, int (*is_live)(const char *id, void *arg),
                               void *arg)
{
    struct sweep sw = {.is_live = is_live, .arg = arg};
    return blobstore_each_entry(bs->uploads_fd, sweep_entry, &sw);
}

int pt_blobstore_upload_stored(struct pt_blobstore *bs, const struct pt_upload *u,
                               struct pt_digest *d)
{
    SHA256_CTX sha = u->sha;
    unsigned char raw[32];
    struct pt_digest digest;
    uint64_t size;
    SHA256_Final(raw, &sha);
    pt_digest_from_raw(raw, &digest);
    if (d != NULL)
        *d = digest;
    return pt_blobstore_stat(bs, &digest, &size) == 0 && size == u->offset;
}
