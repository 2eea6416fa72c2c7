/*
 * metastore.c - RocksDB-backed metadata store (see metastore.h for the contract).
 *
 * Key schema. Every name is a C string, so it holds no NUL byte and "\0" separates the
 * components of a key without ambiguity: the prefix "<repo>\0" selects exactly one repository,
 * and byte-wise key order is lexical order of the last component.
 *
 *   column family   key                                     value
 *   --------------  --------------------------------------  -------------------------------------
 *   (replicated: written only through a batch, i.e. by the FSM)
 *   default         (unused; RocksDB requires it)
 *   repos           <repo>                                  v1 i64:created_ms
 *   manifests       <repo> \0 <digest>                      v1 s8:media_type s8:artifact_type
 *                                                           s8:subject u32:len body[len]
 *   tags            <repo> \0 <tag>                         v1 i64:updated_ms s8:digest
 *   repo_blobs      <repo> \0 <digest>                      v1 u64:size
 *   referrers       <repo> \0 <subject> \0 <referrer>       v1 s8:media_type s8:artifact_type
 *                                                           u64:size u32:len annotations[len]
 *   blob_locations  <digest>                                v1 u64:size u8:n s8:region * n
 *                                                           (regions byte-wise sorted, unique)
 *   meta            "applied_index"                         v1 u64:index
 *   (local to this region)
 *   uploads         <upload id>                             opaque bytes of the upload module
 *   local_blobs     <digest>                                opaque bytes of a transfer of that
 *                                                           blob from another region in progress
 *                                                           (replication/blob_sync.c)
 *
 *   digest = "sha256:" + 64 lowercase hex; v1 = one version byte (1); integers little-endian
 *   fixed width; s8 = u8 length + bytes (no NUL); body/annotations stored verbatim.
 *
 * Encodings are explicit (never struct dumps) so the bytes are identical on every node and
 * architecture, which the state digest and Raft snapshots rely on. A value whose version byte
 * is unknown or whose length does not match its fields exactly is reported as PT_E_CORRUPT.
 *
 * Snapshot stream (pt_metastore_snapshot / pt_metastore_restore), version 1:
 *
 *   "PTLNSNAP"  u32:version  u64:applied_index  u32:n_families
 *   per family, in enum order default .. meta:  s8:name  u64:n_records
 *       per record, keys strictly ascending byte-wise:  u32:klen key  u32:vlen value
 *   sha256 (32 bytes) of everything before it
 *
 *   Keys are 1 to KEY_MAX bytes, values at most SNAP_VALUE_MAX. The meta family carries every
 *   meta record except "applied_index", which travels in the header (and is written back
 *   only when non-zero, as batch commits do). Names and counts make the stream readable
 *   without this code; a reader refuses versions, families or orders it does not know.
 *
 * Listings seek to "<prefix><last>" and bound the iterator with iterate_upper_bound set to the
 * prefix whose final "\0" is replaced by "\1". Prefixes have variable length, so no prefix
 * extractor is configured; the upper bound alone keeps scans inside the prefix.
 *
 * Threads: RocksDB handles are thread-safe; struct pt_metastore is immutable after open except
 * for three atomics: `applied` (written by batch commits and restores), `halted` (set once,
 * never cleared) and `fail_next` (the test seam). Iterators, read options carrying an upper
 * bound and snapshots are per call.
 *
 * Halting: a replicated write that fails may leave RocksDB unsure of what reached the WAL, and
 * the FSM may meet a state it cannot apply the next command to. Either way this store must not
 * change replicated state any further in this process: the first such error is kept in
 * `halted` and every later commit and restore is refused with it, so nothing can ever be
 * applied on top of a state that lacks an entry. Reopening the store clears it.
 */
#include "metastore.h"

#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <rocksdb/c.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "digest.h"
#include "err.h"
#include "log.h"

enum cf {
    CF_DEFAULT,
    CF_REPOS,
    CF_MANIFESTS,
    CF_TAGS,
    CF_REPO_BLOBS,
    CF_REFERRERS,
    CF_BLOB_LOCATIONS,
    CF_META, /* replicated: [CF_DEFAULT, CF_META]; hashed by the state digest: [.., CF_META) */
    CF_UPLOADS,
    CF_LOCAL_BLOBS,
    CF_COUNT
};

static const char *const cf_names[CF_COUNT] = {
    "default",   "repos",          "manifests", "tags",    "repo_blobs",
    "referrers", "blob_locations", "meta",      "uploads", "local_blobs",
};

#define REC_VERSION 1
/* Longest key: referrers, <repo> \0 <subject> \0 <referrer>. */
#define KEY_MAX (PT_METASTORE_REPO_MAX + 2 * PT_METASTORE_DIGEST_LEN + 2)

static const char applied_key[] = "applied_index";

struct pt_metastore {
    rocksdb_t *db;
    rocksdb_column_family_handle_t *cf[CF_COUNT];
    rocksdb_readoptions_t *ro;       /* no bound, no snapshot: shared by point lookups */
    rocksdb_writeoptions_t *wo;      /* sync=0 */
    rocksdb_writeoptions_t *wo_sync; /* sync=1: durable before visible */
    _Atomic uint64_t applied;
    _Atomic int halted;    /* 0, or the first error that halted replicated writes */
    _Atomic int fail_next; /* test seam: the next commit fails with this error */
};

struct pt_metastore_batch {
    struct pt_metastore *ms;
    rocksdb_writebatch_wi_t *wb;
};

/* ---- errors and validation ------------------------------------------------------------- */

/* Translates and frees a RocksDB error string. */
static int rdb_err(char *err)
{
    int rv = strncmp(err, "Corruption", 10) == 0 ? PT_E_CORRUPT : PT_E_IO;
    pt_log(PT_LOG_ERROR, "rocksdb error", "{s:s}", "error", err);
    free(err);
    return rv;
}

static bool name_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    return n > 0 && n <= max;
}

static bool digest_ok(const char *s)
{
    struct pt_digest d;
    return pt_digest_parse(s, strlen(s), &d) == 0;
}

static bool region_ok(const char *s)
{
    return name_ok(s, PT_METASTORE_REGION_MAX);
}

/* Joins a, b and c (c may be NULL) with NUL separators into key (KEY_MAX bytes); the
 * components were validated by the caller. Returns the key length. */
static size_t key_join(char *key, const char *a, const char *b, const char *c)
{
    size_t n = strlen(a);
    memcpy(key, a, n);
    key[n++] = '\0';
    size_t bn = strlen(b);
    memcpy(key + n, b, bn);
    n += bn;
    if (c != NULL) {
        key[n++] = '\0';
        size_t cn = strlen(c);
        memcpy(key + n, c, cn);
        n += cn;
    }
    return n;
}

/* ---- value encoding -------------------------------------------------------------------- */

struct enc {
    unsigned char *p;
    size_t len, cap;
    bool nomem;
};

static void enc_raw(struct enc *e, const void *src, size_t n)
{
    if (e->nomem)
        return;
    if (e->cap - e->len < n) {
        size_t cap = e->cap ? e->cap : 64;
        while (cap - e->len < n)
            cap *= 2;
        unsigned char *p = realloc(e->p, cap);
        if (p == NULL) {
            e->nomem = true;
            return;
        }
        e->p = p;
        e->cap = cap;
    }
    if (n > 0)
        memcpy(e->p + e->len, src, n);
    e->len += n;
}

static void enc_u8(struct enc *e, uint8_t v)
{
    enc_raw(e, &v, 1);
}

static void enc_u32(struct enc *e, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    enc_raw(e, b, 4);
}

static void enc_u64(struct enc *e, uint64_t v)
{
    unsigned char b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    enc_raw(e, b, 8);
}

/* s was validated to be at most 255 bytes. */
static void enc_str8(struct enc *e, const char *s)
{
    size_t n = strlen(s);
    enc_u8(e, (uint8_t)n);
    enc_raw(e, s, n);
}

/* Returns 0, or PT_E_NOMEM after freeing the buffer. */
static int enc_finish(struct enc *e)
{
    if (!e->nomem)
        return 0;
    free(e->p);
    e->p = NULL;
    return PT_E_NOMEM;
}

struct dec {
    const unsigned char *p;
    size_t len, off;
    bool bad;
};

static void dec_init(struct dec *d, const char *v, size_t len)
{
    d->p = (const unsigned char *)v;
    d->len = len;
    d->off = 0;
    d->bad = false;
}

static const unsigned char *dec_raw(struct dec *d, size_t n)
{
    if (d->bad || d->len - d->off < n) {
        d->bad = true;
        return NULL;
    }
    const unsigned char *p = d->p + d->off;
    d->off += n;
    return p;
}

static uint8_t dec_u8(struct dec *d)
{
    const unsigned char *p = dec_raw(d, 1);
    return p ? p[0] : 0;
}

static uint32_t dec_u32(struct dec *d)
{
    const unsigned char *p = dec_raw(d, 4);
    uint32_t v = 0;
    for (int i = 0; p != NULL && i < 4; i++)
        v |= (uint32_t)p[i] << (8 * i);
    return v;
}

static uint64_t dec_u64(struct dec *d)
{
    const unsigned char *p = dec_raw(d, 8);
    uint64_t v = 0;
    for (int i = 0; p != NULL && i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

/* Copies a s8 string into out (cap bytes, NUL-terminated); too long or NUL inside = bad. */
static void dec_str8(struct dec *d, char *out, size_t cap)
{
    size_t n = dec_u8(d);
    const unsigned char *p = dec_raw(d, n);
    if (p == NULL || n >= cap || memchr(p, '\0', n) != NULL) {
        d->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

static bool dec_version(struct dec *d)
{
    if (dec_u8(d) != REC_VERSION)
        d->bad = true;
    return !d->bad;
}

static int dec_finish(const struct dec *d)
{
    return !d->bad && d->off == d->len ? 0 : PT_E_CORRUPT;
}

/* Owned NUL-terminated copy of n bytes (NULL on allocation failure). */
static char *copy_z(const void *src, size_t n)
{
    char *p = malloc(n + 1);
    if (p == NULL)
        return NULL;
    if (n > 0)
        memcpy(p, src, n);
    p[n] = '\0';
    return p;
}

/* manifests value. With want_body the body is copied into out->body, else left NULL. */
static int dec_manifest(const char *v, size_t vlen, struct pt_manifest_rec *out, bool want_body)
{
    struct dec d;
    dec_init(&d, v, vlen);
    out->body = NULL;
    dec_version(&d);
    dec_str8(&d, out->media_type, sizeof(out->media_type));
    dec_str8(&d, out->artifact_type, sizeof(out->artifact_type));
    dec_str8(&d, out->subject, sizeof(out->subject));
    uint32_t len = dec_u32(&d);
    const unsigned char *body = dec_raw(&d, len);
    int rv = dec_finish(&d);
    if (rv != 0)
        return rv;
    out->len = len;
    if (want_body) {
        out->body = copy_z(body, len);
        if (out->body == NULL)
            return PT_E_NOMEM;
    }
    return 0;
}

static int dec_tag(const char *v, size_t vlen, char digest[72], int64_t *updated_ms)
{
    struct dec d;
    dec_init(&d, v, vlen);
    dec_version(&d);
    uint64_t t = dec_u64(&d);
    dec_str8(&d, digest, 72);
    if (updated_ms != NULL)
        *updated_ms = (int64_t)t;
    return dec_finish(&d);
}

static int dec_size(const char *v, size_t vlen, uint64_t *size)
{
    struct dec d;
    dec_init(&d, v, vlen);
    dec_version(&d);
    uint64_t s = dec_u64(&d);
    if (size != NULL)
        *size = s;
    return dec_finish(&d);
}

/* referrers value; r->digest is filled by the caller from the key. */
static int dec_referrer(const char *v, size_t vlen, struct pt_referrer *r)
{
    struct dec d;
    dec_init(&d, v, vlen);
    r->annotations = NULL;
    dec_version(&d);
    dec_str8(&d, r->media_type, sizeof(r->media_type));
    dec_str8(&d, r->artifact_type, sizeof(r->artifact_type));
    r->size = dec_u64(&d);
    uint32_t len = dec_u32(&d);
    const unsigned char *ann = dec_raw(&d, len);
    int rv = dec_finish(&d);
    if (rv != 0)
        return rv;
    if (len > 0) {
        r->annotations = copy_z(ann, len);
        if (r->annotations == NULL)
            return PT_E_NOMEM;
    }
    return 0;
}

struct location {
    uint64_t size;
    size_t n;
    char regions[PT_METASTORE_REGIONS_MAX][PT_METASTORE_REGION_MAX + 1];
};

static int dec_location(const char *v, size_t vlen, struct location *loc)
{
    struct dec d;
    dec_init(&d, v, vlen);
    dec_version(&d);
    loc->size = dec_u64(&d);
    loc->n = dec_u8(&d);
    if (loc->n > PT_METASTORE_REGIONS_MAX)
        return PT_E_CORRUPT;
    for (size_t i = 0; i < loc->n; i++)
        dec_str8(&d, loc->regions[i], sizeof(loc->regions[i]));
    return dec_finish(&d);
}

/* ---- raw access ------------------------------------------------------------------------ */

/* Point lookup through wb (staged writes over the database) or, with wb NULL, the database.
 * Returns 1 with *val owned (rocksdb_free), 0 on a miss, or a negative error. */
static int get_raw(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, enum cf cf,
                   const char *key, size_t klen, char **val, size_t *vlen)
{
    char *err = NULL;
    char *v;
    if (wb != NULL)
        v = rocksdb_writebatch_wi_get_from_batch_and_db_cf(wb, ms->db, ms->ro, ms->cf[cf], key,
                                                           klen, vlen, &err);
    else
        v = rocksdb_get_cf(ms->db, ms->ro, ms->cf[cf], key, klen, vlen, &err);
    if (err != NULL)
        return rdb_err(err);
    if (v == NULL)
        return 0;
    *val = v;
    return 1;
}

/* Iterator over cf bounded above by upper (ulen bytes, 0 = unbounded). upper must outlive
 * the iterator; *ro_out must be destroyed after the iterator. */
static rocksdb_iterator_t *iter_new(struct pt_metastore *ms, enum cf cf, const char *upper,
                                    size_t ulen, const rocksdb_snapshot_t *snap,
                                    rocksdb_readoptions_t **ro_out)
{
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    if (ulen > 0)
        rocksdb_readoptions_set_iterate_upper_bound(ro, upper, ulen);
    if (snap != NULL)
        rocksdb_readoptions_set_snapshot(ro, snap);
    *ro_out = ro;
    return rocksdb_create_iterator_cf(ms->db, ro, ms->cf[cf]);
}

/* Destroys it and ro; returns the iterator's error, if any. */
static int iter_free(rocksdb_iterator_t *it, rocksdb_readoptions_t *ro)
{
    char *err = NULL;
    rocksdb_iter_get_error(it, &err);
    rocksdb_iter_destroy(it);
    rocksdb_readoptions_destroy(ro);
    return err != NULL ? rdb_err(err) : 0;
}

/* ---- open / close ---------------------------------------------------------------------- */

static int mkdir_p(const char *dir)
{
    char path[PATH_MAX];
    size_t n = strlen(dir);
    if (n == 0 || n >= sizeof(path))
        return PT_E_CONFIG;
    memcpy(path, dir, n + 1);
    for (char *p = path + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0750) != 0 && errno != EEXIST)
            return PT_E_IO;
        *p = '/';
    }
    if (mkdir(path, 0750) != 0 && errno != EEXIST)
        return PT_E_IO;
    return 0;
}

static int load_applied(struct pt_metastore *ms)
{
    char *v;
    size_t vlen;
    int rv = get_raw(ms, NULL, CF_META, applied_key, sizeof(applied_key) - 1, &v, &vlen);
    if (rv <= 0) {
        atomic_store(&ms->applied, 0);
        return rv;
    }
    uint64_t index;
    rv = dec_size(v, vlen, &index);
    rocksdb_free(v);
    if (rv == 0)
        atomic_store(&ms->applied, index);
    return rv;
}

int pt_metastore_open(const char *dir, struct pt_metastore **out)
{
    int rv = mkdir_p(dir);
    if (rv != 0)
        return rv;
    struct pt_metastore *ms = calloc(1, sizeof(*ms));
    if (ms == NULL)
        return PT_E_NOMEM;

    rocksdb_options_t *opts = rocksdb_options_create();
    rocksdb_options_set_create_if_missing(opts, 1);
    rocksdb_options_set_create_missing_column_families(opts, 1);
    rocksdb_options_set_keep_log_file_num(opts, 4);
    const rocksdb_options_t *cf_opts[CF_COUNT];
    for (int i = 0; i < CF_COUNT; i++)
        cf_opts[i] = opts;
    char *err = NULL;
    ms->db = rocksdb_open_column_families(opts, dir, CF_COUNT, cf_names, cf_opts, ms->cf, &err);
    rocksdb_options_destroy(opts);
    if (err != NULL) {
        rv = rdb_err(err);
        goto err_after_alloc;
    }
    ms->ro = rocksdb_readoptions_create();
    ms->wo = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(ms->wo, 0);
    ms->wo_sync = rocksdb_writeoptions_create();
    rocksdb_writeoptions_set_sync(ms->wo_sync, 1);
    rv = load_applied(ms);
    if (rv != 0)
        goto err_after_open;
    *out = ms;
    return 0;

err_after_open:
    pt_metastore_close(ms);
    return rv;
err_after_alloc:
    free(ms);
    return rv;
}

void pt_metastore_close(struct pt_metastore *ms)
{
    if (ms == NULL)
        return;
    for (int i = 0; i < CF_COUNT; i++)
        rocksdb_column_family_handle_destroy(ms->cf[i]);
    rocksdb_close(ms->db);
    rocksdb_readoptions_destroy(ms->ro);
    rocksdb_writeoptions_destroy(ms->wo);
    rocksdb_writeoptions_destroy(ms->wo_sync);
    free(ms);
}

/* ---- reads ----------------------------------------------------------------------------- */

static int manifest_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                        const char *digest, struct pt_manifest_rec *out, bool want_body)
{
    if (out != NULL)
        memset(out, 0, sizeof(*out));
    if (!name_ok(repo, PT_METASTORE_REPO_MAX) || !digest_ok(digest))
        return PT_E_MANIFEST_UNKNOWN;
    char key[KEY_MAX];
    size_t klen = key_join(key, repo, digest, NULL);
    char *v;
    size_t vlen;
    int rv = get_raw(ms, wb, CF_MANIFESTS, key, klen, &v, &vlen);
    if (rv <= 0)
        return rv == 0 ? PT_E_MANIFEST_UNKNOWN : rv;
    rv = 0;
    if (out != NULL) {
        rv = dec_manifest(v, vlen, out, want_body);
        if (rv != 0)
            pt_manifest_rec_free(out);
    }
    rocksdb_free(v);
    return rv;
}

int pt_metastore_get_manifest(struct pt_metastore *ms, const char *repo, const char *digest,
                              struct pt_manifest_rec *out)
{
    return manifest_get(ms, NULL, repo, digest, out, true);
}

void pt_manifest_rec_free(struct pt_manifest_rec *r)
{
    if (r == NULL)
        return;
    free(r->body);
    r->body = NULL;
}

static int tag_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                   const char *tag, char digest_out[72])
{
    if (!name_ok(repo, PT_METASTORE_REPO_MAX) || !name_ok(tag, PT_METASTORE_TAG_MAX))
        return PT_E_MANIFEST_UNKNOWN;
    char key[KEY_MAX];
    size_t klen = key_join(key, repo, tag, NULL);
    char *v;
    size_t vlen;
    int rv = get_raw(ms, wb, CF_TAGS, key, klen, &v, &vlen);
    if (rv <= 0)
        return rv == 0 ? PT_E_MANIFEST_UNKNOWN : rv;
    rv = dec_tag(v, vlen, digest_out, NULL);
    rocksdb_free(v);
    return rv;
}

int pt_metastore_get_tag(struct pt_metastore *ms, const char *repo, const char *tag,
                         char digest_out[72])
{
    return tag_get(ms, NULL, repo, tag, digest_out);
}

static int repo_exists(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo)
{
    if (!name_ok(repo, PT_METASTORE_REPO_MAX))
        return 0;
    char *v;
    size_t vlen;
    int rv = get_raw(ms, wb, CF_REPOS, repo, strlen(repo), &v, &vlen);
    if (rv == 1)
        rocksdb_free(v);
    return rv;
}

int pt_metastore_repo_exists(struct pt_metastore *ms, const char *repo)
{
    return repo_exists(ms, NULL, repo);
}

/* Lists the key suffixes after prefix (plen bytes, 0 or ending in "\0") that sort after
 * prefix+last; see pt_metastore_list_tags for the output contract. */
static int list_names(struct pt_metastore *ms, enum cf cf, const char *prefix, size_t plen,
                      const char *last, size_t n, char ***names, size_t *count, int *more)
{
    *names = NULL;
    *count = 0;
    *more = 0;
    if (n > PT_METASTORE_LIST_MAX)
        n = PT_METASTORE_LIST_MAX;
    if (last == NULL)
        last = "";
    size_t llen = strlen(last);
    char *start = malloc(plen + llen + 1);
    if (start == NULL)
        return PT_E_NOMEM;
    memcpy(start, prefix, plen);
    memcpy(start + plen, last, llen);
    char upper[KEY_MAX];
    if (plen > 0) {
        memcpy(upper, prefix, plen);
        upper[plen - 1] = '\1';
    }
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_new(ms, cf, upper, plen, NULL, &ro);
    rocksdb_iter_seek(it, start, plen + llen);
    char **v = NULL;
    size_t cnt = 0, cap = 0;
    int rv = 0;
    for (; rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, prefix, plen) != 0)
            break;
        if (klen == plen + llen && memcmp(k, start, klen) == 0)
            continue; /* last itself */
        if (cnt == n) {
            *more = 1;
            break;
        }
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 16;
            if (ncap > n)
                ncap = n;
            char **nv = realloc(v, ncap * sizeof(*nv));
            if (nv == NULL) {
                rv = PT_E_NOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        if (memchr(k + plen, '\0', klen - plen) != NULL) {
            rv = PT_E_CORRUPT;
            break;
        }
        v[cnt] = copy_z(k + plen, klen - plen);
        if (v[cnt] == NULL) {
            rv = PT_E_NOMEM;
            break;
        }
        cnt++;
    }
    int irv = iter_free(it, ro);
    free(start);
    if (rv == 0)
        rv = irv;
    if (rv != 0) {
        pt_strv_free(v, cnt);
        *more = 0;
        return rv;
    }
    *names = v;
    *count = cnt;
    return 0;
}

int pt_metastore_list_tags(struct pt_metastore *ms, const char *repo, const char *last, size_t n,
                           char ***names, size_t *count, int *more)
{
    *names = NULL;
    *count = 0;
    *more = 0;
    int rv = repo_exists(ms, NULL, repo);
    if (rv <= 0)
        return rv == 0 ? PT_E_NAME_UNKNOWN : rv;
    char prefix[PT_METASTORE_REPO_MAX + 1];
    size_t plen = strlen(repo) + 1;
    memcpy(prefix, repo, plen);
    return list_names(ms, CF_TAGS, prefix, plen, last, n, names, count, more);
}

int pt_metastore_list_repos(struct pt_metastore *ms, const char *last, size_t n, char ***names,
                            size_t *count, int *more)
{
    return list_names(ms, CF_REPOS, "", 0, last, n, names, count, more);
}

void pt_strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static int blob_linked(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *repo,
                       const char *digest, uint64_t *size)
{
    if (!name_ok(repo, PT_METASTORE_REPO_MAX) || !digest_ok(digest))
        return PT_E_BLOB_UNKNOWN;
    char key[KEY_MAX];
    size_t klen = key_join(key, repo, digest, NULL);
    char *v;
    size_t vlen;
    int rv = get_raw(ms, wb, CF_REPO_BLOBS, key, klen, &v, &vlen);
    if (rv <= 0)
        return rv == 0 ? PT_E_BLOB_UNKNOWN : rv;
    rv = dec_size(v, vlen, size);
    rocksdb_free(v);
    return rv;
}

int pt_metastore_blob_linked(struct pt_metastore *ms, const char *repo, const char *digest,
                             uint64_t *size)
{
    return blob_linked(ms, NULL, repo, digest, size);
}

/* 1 with *loc filled, 0 if no region holds digest (or digest is malformed), negative error. */
static int location_get(struct pt_metastore *ms, rocksdb_writebatch_wi_t *wb, const char *digest,
                        struct location *loc)
{
    if (!digest_ok(digest))
        return 0;
    char *v;
    size_t vlen;
    int rv = get_raw(ms, wb, CF_BLOB_LOCATIONS, digest, strlen(digest), &v, &vlen);
    if (rv <= 0)
        return rv;
    rv = dec_location(v, vlen, loc);
    rocksdb_free(v);
    return rv == 0 ? 1 : rv;
}

int pt_metastore_blob_location(struct pt_metastore *ms, const char *digest, uint64_t *size)
{
    struct location *loc = malloc(sizeof(*loc));
    if (loc == NULL)
        return PT_E_NOMEM;
    int rv = location_get(ms, NULL, digest, loc);
    if (rv == 1 && size != NULL)
        *size = loc->size;
    free(loc);
    return rv == 1 ? 0 : rv == 0 ? PT_E_BLOB_UNKNOWN : rv;
}

int pt_metastore_blob_regions(struct pt_metastore *ms, const char *digest, uint64_t *size,
                              char ***regions, size_t *count)
{
    *regions = NULL;
    *count = 0;
    struct location *loc = malloc(sizeof(*loc));
    if (loc == NULL)
        return PT_E_NOMEM;
    int rv = location_get(ms, NULL, digest, loc);
    if (rv <= 0) {
        free(loc);
        return rv == 0 ? PT_E_BLOB_UNKNOWN : rv;
    }
    char **v = NULL;
    if (loc->n > 0) {
        v = calloc(loc->n, sizeof(*v));
        if (v == NULL) {
            free(loc);
            return PT_E_NOMEM;
        }
    }
    for (size_t i = 0; i < loc->n; i++) {
        v[i] = strdup(loc->regions[i]);
        if (v[i] == NULL) {
            pt_strv_free(v, i);
            free(loc);
            return PT_E_NOMEM;
        }
    }
    if (size != NULL)
        *size = loc->size;
    *regions = v;
    *count = loc->n;
    free(loc);
    return 0;
}

int pt_metastore_list_referrers(struct pt_metastore *ms, const char *repo, const char *subject,
                                const char *artifact_type_filter, size_t max,
                                struct pt_referrer **out, size_t *count)
{
    *out = NULL;
    *count = 0;
    int rv = repo_exists(ms, NULL, repo);
    if (rv <= 0)
        return rv == 0 ? PT_E_NAME_UNKNOWN : rv;
    rv = 0;
    if (!digest_ok(subject))
        return 0;
    if (max > PT_METASTORE_LIST_MAX)
        max = PT_METASTORE_LIST_MAX;
    char prefix[KEY_MAX], upper[KEY_MAX];
    size_t plen = key_join(prefix, repo, subject, "");
    memcpy(upper, prefix, plen);
    upper[plen - 1] = '\1';

    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_new(ms, CF_REFERRERS, upper, plen, NULL, &ro);
    struct pt_referrer *v = NULL;
    size_t cnt = 0, cap = 0;
    for (rocksdb_iter_seek(it, prefix, plen); rocksdb_iter_valid(it) && cnt < max;
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *val = rocksdb_iter_value(it, &vlen);
        if (klen < plen || memcmp(k, prefix, plen) != 0)
            break;
        if (cnt == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            if (ncap > max)
                ncap = max;
            struct pt_referrer *nv = realloc(v, ncap * sizeof(*nv));
            if (nv == NULL) {
                rv = PT_E_NOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        struct pt_referrer *r = &v[cnt];
        size_t dlen = klen - plen;
        if (dlen > PT_METASTORE_DIGEST_LEN || memchr(k + plen, '\0', dlen) != NULL) {
            rv = PT_E_CORRUPT;
            break;
        }
        memcpy(r->digest, k + plen, dlen);
        r->digest[dlen] = '\0';
        rv = dec_referrer(val, vlen, r);
        if (rv != 0) {
            free(r->annotations);
            break;
        }
        if (artifact_type_filter != NULL && strcmp(r->artifact_type, artifact_type_filter) != 0) {
            free(r->annotations);
            continue;
        }
        cnt++;
    }
    int irv = iter_free(it, ro);
    if (rv == 0)
        rv = irv;
    if (rv != 0) {
        pt_referrers_free(v, cnt);
        return rv;
    }
    if (cnt == 0) {
        free(v);
        v = NULL;
    }
    *out = v;
    *count = cnt;
    return 0;
}

void pt_referrers_free(struct pt_referrer *r, size_t n)
{
    if (r == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(r[i].annotations);
    free(r);
}

uint64_t pt_metastore_applied_index(struct pt_metastore *ms)
{
    return atomic_load(&ms->applied);
}

/* ---- uploads and transfers (local) ----------------------------------------------------- */

/* Local records: opaque values of at most PT_METASTORE_UPLOAD_VAL_MAX bytes under key. */
static int local_put(struct pt_metastore *ms, enum cf cf, const char *key, const void *val,
                     size_t len)
{
    if (len > PT_METASTORE_UPLOAD_VAL_MAX)
        return PT_E_TOO_LARGE;
    char *err = NULL;
    rocksdb_put_cf(ms->db, ms->wo, ms->cf[cf], key, strlen(key), val, len, &err);
    return err != NULL ? rdb_err(err) : 0;
}

/* 0 with *val owned (NUL-terminated copy), `missing` when there is none, or an error. */
static int local_get(struct pt_metastore *ms, enum cf cf, const char *key, void **val, size_t *len,
                     int missing)
{
    char *v;
    size_t vlen;
    int rv = get_raw(ms, NULL, cf, key, strlen(key), &v, &vlen);
    if (rv <= 0)
        return rv == 0 ? missing : rv;
    char *copy = copy_z(v, vlen);
    rocksdb_free(v);
    if (copy == NULL)
        return PT_E_NOMEM;
    *val = copy;
    *len = vlen;
    return 0;
}

static int local_delete(struct pt_metastore *ms, enum cf cf, const char *key)
{
    char *err = NULL;
    rocksdb_delete_cf(ms->db, ms->wo, ms->cf[cf], key, strlen(key), &err);
    return err != NULL ? rdb_err(err) : 0;
}

int pt_metastore_upload_put(struct pt_metastore *ms, const char *id, const void *val, size_t len)
{
    if (!name_ok(id, PT_METASTORE_UPLOAD_ID_MAX))
        return PT_E_BLOB_UPLOAD_INVALID;
    return local_put(ms, CF_UPLOADS, id, val, len);
}

int pt_metastore_upload_get(struct pt_metastore *ms, const char *id, void **val, size_t *len)
{
    *val = NULL;
    *len = 0;
    if (!name_ok(id, PT_METASTORE_UPLOAD_ID_MAX))
        return PT_E_BLOB_UPLOAD_UNKNOWN;
    return local_get(ms, CF_UPLOADS, id, val, len, PT_E_BLOB_UPLOAD_UNKNOWN);
}

int pt_metastore_upload_delete(struct pt_metastore *ms, const char *id)
{
    return name_ok(id, PT_METASTORE_UPLOAD_ID_MAX) ? local_delete(ms, CF_UPLOADS, id) : 0;
}

int pt_metastore_transfer_put(struct pt_metastore *ms, const char *digest, const void *val,
                              size_t len)
{
    return digest_ok(digest) ? local_put(ms, CF_LOCAL_BLOBS, digest, val, len)
                             : PT_E_DIGEST_INVALID;
}

int pt_metastore_transfer_get(struct pt_metastore *ms, const char *digest, void **val, size_t *len)
{
    *val = NULL;
    *len = 0;
    if (!digest_ok(digest))
        return PT_E_NOT_FOUND;
    return local_get(ms, CF_LOCAL_BLOBS, digest, val, len, PT_E_NOT_FOUND);
}

int pt_metastore_transfer_delete(struct pt_metastore *ms, const char *digest)
{
    return digest_ok(digest) ? local_delete(ms, CF_LOCAL_BLOBS, digest) : 0;
}

int pt_metastore_upload_foreach(struct pt_metastore *ms,
                                int (*cb)(const char *id, const void *val, size_t len, void *arg),
                                void *arg)
{
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_new(ms, CF_UPLOADS, NULL, 0, NULL, &ro);
    int rv = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        char id[PT_METASTORE_UPLOAD_ID_MAX + 1];
        if (klen == 0 || klen > PT_METASTORE_UPLOAD_ID_MAX || memchr(k, '\0', klen) != NULL) {
            rv = PT_E_CORRUPT;
            break;
        }
        memcpy(id, k, klen);
        id[klen] = '\0';
        rv = cb(id, v, vlen, arg);
        if (rv != 0)
            break;
    }
    int irv = iter_free(it, ro);
    return rv != 0 ? rv : irv;
}

/* ---- blobs this region lacks ---------------------------------------------------------- */

int pt_metastore_missing_foreach(struct pt_metastore *ms, const char *region,
                                 int (*cb)(const char *digest, uint64_t size,
                                           const char *const *holders, size_t n, void *arg),
                                 void *arg)
{
    struct location *loc = malloc(sizeof(*loc));
    if (loc == NULL)
        return PT_E_NOMEM;
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_new(ms, CF_BLOB_LOCATIONS, NULL, 0, NULL, &ro);
    int rv = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        char digest[PT_DIGEST_STR_LEN + 1];
        if (klen != PT_DIGEST_STR_LEN) {
            rv = PT_E_CORRUPT;
            break;
        }
        memcpy(digest, k, klen);
        digest[klen] = '\0';
        if ((rv = dec_location(v, vlen, loc)) != 0)
            break;
        int held = 0;
        const char *holders[PT_METASTORE_REGIONS_MAX];
        for (size_t i = 0; i < loc->n; i++) {
            holders[i] = loc->regions[i];
            held |= strcmp(loc->regions[i], region) == 0;
        }
        if (!held && (rv = cb(digest, loc->size, holders, loc->n, arg)) != 0)
            break;
    }
    int irv = iter_free(it, ro);
    free(loc);
    return rv != 0 ? rv : irv;
}

int pt_metastore_sync(struct pt_metastore *ms)
{
    char *err = NULL;
    rocksdb_flush_wal(ms->db, 1, &err);
    return err != NULL ? rdb_err(err) : 0;
}

/* ---- state digest ---------------------------------------------------------------------- */

static void hash_u32(EVP_MD_CTX *ctx, uint32_t v)
{
    unsigned char b[4];
    for (int i = 0; i < 4; i++)
        b[i] = (unsigned char)(v >> (8 * i));
    EVP_DigestUpdate(ctx, b, 4);
}

/*
 * Hashed stream, per column family in enum order from CF_DEFAULT up to (excluding) CF_META:
 *   u32 name length, name, then per record: u8 1, u32 key length, key, u32 value length,
 *   value; then u8 0 closing the family. Lengths are framed so no two states collide.
 */
int pt_metastore_state_digest(struct pt_metastore *ms, char hex_out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (ctx == NULL)
        return PT_E_NOMEM;
    if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
        EVP_MD_CTX_free(ctx);
        return PT_E_INTERNAL;
    }
    const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(ms->db);
    int rv = 0;
    static const unsigned char one = 1, zero = 0;
    for (int cf = CF_DEFAULT; cf < CF_META && rv == 0; cf++) {
        hash_u32(ctx, (uint32_t)strlen(cf_names[cf]));
        EVP_DigestUpdate(ctx, cf_names[cf], strlen(cf_names[cf]));
        rocksdb_readoptions_t *ro;
        rocksdb_iterator_t *it = iter_new(ms, cf, NULL, 0, snap, &ro);
        for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
            size_t klen, vlen;
            const char *k = rocksdb_iter_key(it, &klen);
            const char *v = rocksdb_iter_value(it, &vlen);
            EVP_DigestUpdate(ctx, &one, 1);
            hash_u32(ctx, (uint32_t)klen);
            EVP_DigestUpdate(ctx, k, klen);
            hash_u32(ctx, (uint32_t)vlen);
            EVP_DigestUpdate(ctx, v, vlen);
        }
        EVP_DigestUpdate(ctx, &zero, 1);
        rv = iter_free(it, ro);
    }
    rocksdb_release_snapshot(ms->db, snap);
    unsigned char md[32];
    unsigned int mdlen = 0;
    if (rv == 0 && (EVP_DigestFinal_ex(ctx, md, &mdlen) != 1 || mdlen != sizeof(md)))
        rv = PT_E_INTERNAL;
    EVP_MD_CTX_free(ctx);
    if (rv != 0)
        return rv;
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < sizeof(md); i++) {
        hex_out[2 * i] = hex[md[i] >> 4];
        hex_out[2 * i + 1] = hex[md[i] & 15];
    }
    hex_out[64] = '\0';
    return 0;
}

/* ---- batches (FSM only) ---------------------------------------------------------------- */

int pt_metastore_batch_new(struct pt_metastore *ms, struct pt_metastore_batch **out)
{
    struct pt_metastore_batch *b = malloc(sizeof(*b));
    if (b == NULL)
        return PT_E_NOMEM;
    b->ms = ms;
    b->wb = rocksdb_writebatch_wi_create(0, 1);
    *out = b;
    return 0;
}

void pt_metastore_batch_free(struct pt_metastore_batch *b)
{
    if (b == NULL)
        return;
    rocksdb_writebatch_wi_destroy(b->wb);
    free(b);
}

void pt_metastore_batch_clear(struct pt_metastore_batch *b)
{
    rocksdb_writebatch_wi_clear(b->wb);
}

void pt_metastore_batch_mark(struct pt_metastore_batch *b)
{
    rocksdb_writebatch_wi_set_save_point(b->wb);
}

int pt_metastore_batch_undo(struct pt_metastore_batch *b)
{
    char *err = NULL;
    rocksdb_writebatch_wi_rollback_to_save_point(b->wb, &err);
    if (err == NULL)
        return 0;
    free(err);
    return PT_E_INTERNAL; /* no mark: a caller's bug */
}

void pt_metastore_halt(struct pt_metastore *ms, int err)
{
    int none = 0;
    atomic_compare_exchange_strong(&ms->halted, &none, err);
}

int pt_metastore_halted(struct pt_metastore *ms)
{
    return atomic_load(&ms->halted);
}

void pt_metastore_fail_next_commit(struct pt_metastore *ms, int err)
{
    atomic_store(&ms->fail_next, err);
}

/* Writes b's staged writes and the applied index with wo; halts ms on failure. */
static int batch_write(struct pt_metastore_batch *b, uint64_t index, rocksdb_writeoptions_t *wo)
{
    struct pt_metastore *ms = b->ms;
    int rv = pt_metastore_halted(ms);
    if (rv == 0)
        rv = atomic_exchange(&ms->fail_next, 0);
    if (rv != 0)
        goto err;
    if (index != 0) {
        struct enc e = {0};
        enc_u8(&e, REC_VERSION);
        enc_u64(&e, index);
        rv = enc_finish(&e);
        if (rv != 0)
            goto err;
        rocksdb_writebatch_wi_put_cf(b->wb, ms->cf[CF_META], applied_key, sizeof(applied_key) - 1,
                                     (const char *)e.p, e.len);
        free(e.p);
    }
    char *err = NULL;
    rocksdb_write_writebatch_wi(ms->db, wo, b->wb, &err);
    if (err != NULL) {
        rv = rdb_err(err);
        goto err;
    }
    rocksdb_writebatch_wi_clear(b->wb);
    if (index != 0)
        atomic_store(&ms->applied, index);
    return 0;

err:
    rocksdb_writebatch_wi_clear(b->wb);
    pt_metastore_halt(ms, rv);
    return rv;
}

int pt_metastore_batch_commit(struct pt_metastore_batch *b, uint64_t index)
{
    return batch_write(b, index, b->ms->wo);
}

int pt_metastore_batch_commit_durable(struct pt_metastore_batch *b, uint64_t index)
{
    return batch_write(b, index, b->ms->wo_sync);
}

/* Stages e (consumed) under key in cf. */
static int stage_put(struct pt_metastore_batch *b, enum cf cf, const char *key, size_t klen,
                     struct enc *e)
{
    int rv = enc_finish(e);
    if (rv != 0)
        return rv;
    rocksdb_writebatch_wi_put_cf(b->wb, b->ms->cf[cf], key, klen, (const char *)e->p, e->len);
    free(e->p);
    e->p = NULL;
    return 0;
}

static void stage_delete(struct pt_metastore_batch *b, enum cf cf, const char *key, size_t klen)
{
    rocksdb_writebatch_wi_delete_cf(b->wb, b->ms->cf[cf], key, klen);
}

int pt_metastore_batch_repo_ensure(struct pt_metastore_batch *b, const char *repo, int64_t time_ms)
{
    if (!name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    int rv = repo_exists(b->ms, b->wb, repo);
    if (rv != 0)
        return rv < 0 ? rv : 0;
    struct enc e = {0};
    enc_u8(&e, REC_VERSION);
    enc_u64(&e, (uint64_t)time_ms);
    return stage_put(b, CF_REPOS, repo, strlen(repo), &e);
}

int pt_metastore_batch_manifest_get(struct pt_metastore_batch *b, const char *repo,
                                    const char *digest, struct pt_manifest_rec *out)
{
    return manifest_get(b->ms, b->wb, repo, digest, out, false);
}

int pt_metastore_batch_manifest_put(struct pt_metastore_batch *b, const char *repo,
                                    const char *digest, const char *media_type,
                                    const char *artifact_type, const char *subject,
                                    const void *body, size_t len)
{
    if (!name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!digest_ok(digest) || (subject[0] != '\0' && !digest_ok(subject)))
        return PT_E_DIGEST_INVALID;
    if (!name_ok(media_type, PT_METASTORE_MEDIA_TYPE_MAX) ||
        strnlen(artifact_type, PT_METASTORE_MEDIA_TYPE_MAX + 1) > PT_METASTORE_MEDIA_TYPE_MAX ||
        len == 0)
        return PT_E_MANIFEST_INVALID;
    if (len > PT_METASTORE_MANIFEST_MAX)
        return PT_E_MANIFEST_TOO_LARGE;
    char key[KEY_MAX];
    size_t klen = key_join(key, repo, digest, NULL);
    struct enc e = {0};
    enc_u8(&e, REC_VERSION);
    enc_str8(&e, media_type);
    enc_str8(&e, artifact_type);
    enc_str8(&e, subject);
    enc_u32(&e, (uint32_t)len);
    enc_raw(&e, body, len);
    return stage_put(b, CF_MANIFESTS, key, klen, &e);
}

int pt_metastore_batch_manifest_delete(struct pt_metastore_batch *b, const char *repo,
                                       const char *digest)
{
    if (!name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    char key[KEY_MAX];
    stage_delete(b, CF_MANIFESTS, key, key_join(key, repo, digest, NULL));
    return 0;
}

int pt_metastore_batch_tag_get(struct pt_metastore_batch *b, const char *repo, const char *tag,
                               char digest_out[72])
{
    return tag_get(b->ms, b->wb, repo, tag, digest_out);
}

static int tag_key(const char *repo, const char *tag, char *key, size_t *klen)
{
    if (!name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!name_ok(tag, PT_METASTORE_TAG_MAX))
        return PT_E_TAG_INVALID;
    *klen = key_join(key, repo, tag, NULL);
    return 0;
}

int pt_metastore_batch_tag_put(struct pt_metastore_batch *b, const char *repo, const char *tag,
                               const char *digest, int64_t time_ms)
{
    char key[KEY_MAX];
    size_t klen;
    int rv = tag_key(repo, tag, key, &klen);
    if (rv != 0)
        return rv;
    if (!digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    struct enc e = {0};
    enc_u8(&e, REC_VERSION);
    enc_u64(&e, (uint64_t)time_ms);
    enc_str8(&e, digest);
    return stage_put(b, CF_TAGS, key, klen, &e);
}

int pt_metastore_batch_tag_delete(struct pt_metastore_batch *b, const char *repo, const char *tag)
{
    char key[KEY_MAX];
    size_t klen;
    int rv = tag_key(repo, tag, key, &klen);
    if (rv != 0)
        return rv;
    stage_delete(b, CF_TAGS, key, klen);
    return 0;
}

/*
 * Walks the tags of repo through a base+delta iterator (staged writes merged over the
 * database), collecting the keys that point at digest, and stages their deletion once the
 * iterator is gone (the batch must not change while it is iterated). The delta side is not
 * limited by the base's bounds, so the prefix is checked on every key.
 */
int pt_metastore_batch_tags_delete_to(struct pt_metastore_batch *b, const char *repo,
                                      const char *digest)
{
    if (!name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    struct pt_metastore *ms = b->ms;
    char prefix[PT_METASTORE_REPO_MAX + 1];
    size_t plen = strlen(repo) + 1;
    memcpy(prefix, repo, plen);

    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_iterator_t *base = rocksdb_create_iterator_cf(ms->db, ro, ms->cf[CF_TAGS]);
    /* takes over base's underlying iterator and frees its wrapper */
    rocksdb_iterator_t *it =
        rocksdb_writebatch_wi_create_iterator_with_base_cf(b->wb, base, ms->cf[CF_TAGS]);
    char **keys = NULL;
    size_t *klens = NULL;
    size_t n = 0, cap = 0;
    int rv = 0;
    for (rocksdb_iter_seek(it, prefix, plen); rocksdb_iter_valid(it); rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        if (klen < plen || memcmp(k, prefix, plen) != 0)
            break;
        const char *v = rocksdb_iter_value(it, &vlen);
        char target[72];
        rv = dec_tag(v, vlen, target, NULL);
        if (rv != 0)
            break;
        if (strcmp(target, digest) != 0)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 8;
            char **nk = realloc(keys, ncap * sizeof(*nk));
            if (nk == NULL) {
                rv = PT_E_NOMEM;
                break;
            }
            keys = nk;
            size_t *nl = realloc(klens, ncap * sizeof(*nl));
            if (nl == NULL) {
                rv = PT_E_NOMEM;
                break;
            }
            klens = nl;
            cap = ncap;
        }
        keys[n] = copy_z(k, klen);
        if (keys[n] == NULL) {
            rv = PT_E_NOMEM;
            break;
        }
        klens[n++] = klen;
    }
    int irv = iter_free(it, ro);
    if (rv == 0)
        rv = irv;
    for (size_t i = 0; i < n; i++) {
        if (rv == 0)
            stage_delete(b, CF_TAGS, keys[i], klens[i]);
        free(keys[i]);
    }
    free(keys);
    free(klens);
    return rv;
}

int pt_metastore_batch_blob_linked(struct pt_metastore_batch *b, const char *repo,
                                   const char *digest, uint64_t *size)
{
    return blob_linked(b->ms, b->wb, repo, digest, size);
}

static int blob_key(const char *repo, const char *digest, char *key, size_t *klen)
{
    if (!name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    *klen = key_join(key, repo, digest, NULL);
    return 0;
}

int pt_metastore_batch_blob_link(struct pt_metastore_batch *b, const char *repo, const char *digest,
                                 uint64_t size)
{
    char key[KEY_MAX];
    size_t klen;
    int rv = blob_key(repo, digest, key, &klen);
    if (rv != 0)
        return rv;
    struct enc e = {0};
    enc_u8(&e, REC_VERSION);
    enc_u64(&e, size);
    return stage_put(b, CF_REPO_BLOBS, key, klen, &e);
}

int pt_metastore_batch_blob_unlink(struct pt_metastore_batch *b, const char *repo,
                                   const char *digest)
{
    char key[KEY_MAX];
    size_t klen;
    int rv = blob_key(repo, digest, key, &klen);
    if (rv != 0)
        return rv;
    stage_delete(b, CF_REPO_BLOBS, key, klen);
    return 0;
}

static int referrer_key(const char *repo, const char *subject, const char *digest, char *key,
                        size_t *klen)
{
    if (!name_ok(repo, PT_METASTORE_REPO_MAX))
        return PT_E_NAME_INVALID;
    if (!digest_ok(subject) || !digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    *klen = key_join(key, repo, subject, digest);
    return 0;
}

int pt_metastore_batch_referrer_put(struct pt_metastore_batch *b, const char *repo,
                                    const char *subject, const struct pt_referrer *r,
                                    const void *annotations, size_t ann_len)
{
    char key[KEY_MAX];
    size_t klen;
    int rv = referrer_key(repo, subject, r->digest, key, &klen);
    if (rv != 0)
        return rv;
    if (!name_ok(r->media_type, PT_METASTORE_MEDIA_TYPE_MAX) ||
        strnlen(r->artifact_type, sizeof(r->artifact_type)) > PT_METASTORE_MEDIA_TYPE_MAX)
        return PT_E_MANIFEST_INVALID;
    if (ann_len > PT_METASTORE_MANIFEST_MAX)
        return PT_E_MANIFEST_TOO_LARGE;
    struct enc e = {0};
    enc_u8(&e, REC_VERSION);
    enc_str8(&e, r->media_type);
    enc_str8(&e, r->artifact_type);
    enc_u64(&e, r->size);
    enc_u32(&e, (uint32_t)ann_len);
    enc_raw(&e, annotations, ann_len);
    return stage_put(b, CF_REFERRERS, key, klen, &e);
}

int pt_metastore_batch_referrer_delete(struct pt_metastore_batch *b, const char *repo,
                                       const char *subject, const char *digest)
{
    char key[KEY_MAX];
    size_t klen;
    int rv = referrer_key(repo, subject, digest, key, &klen);
    if (rv != 0)
        return rv;
    stage_delete(b, CF_REFERRERS, key, klen);
    return 0;
}

int pt_metastore_batch_blob_stored(struct pt_metastore_batch *b, const char *digest, uint64_t size,
                                   const char *region)
{
    if (!digest_ok(digest))
        return PT_E_DIGEST_INVALID;
    if (!region_ok(region))
        return PT_E_INTERNAL;
    struct location *loc = malloc(sizeof(*loc));
    if (loc == NULL)
        return PT_E_NOMEM;
    int rv = location_get(b->ms, b->wb, digest, loc);
    if (rv < 0)
        goto out;
    if (rv == 0) {
        loc->size = size;
        loc->n = 0;
    } else if (loc->size != size) {
        rv = PT_E_SIZE_INVALID;
        goto out;
    }
    size_t at = 0;
    int cmp = 1;
    while (at < loc->n && (cmp = strcmp(loc->regions[at], region)) < 0)
        at++;
    if (at < loc->n && cmp == 0) {
        rv = 0; /* already recorded */
        goto out;
    }
    if (loc->n == PT_METASTORE_REGIONS_MAX) {
        rv = PT_E_INTERNAL;
        goto out;
    }
    memmove(loc->regions[at + 1], loc->regions[at], (loc->n - at) * sizeof(loc->regions[0]));
    strcpy(loc->regions[at], region);
    loc->n++;

    struct enc e = {0};
    enc_u8(&e, REC_VERSION);
    enc_u64(&e, loc->size);
    enc_u8(&e, (uint8_t)loc->n);
    for (size_t i = 0; i < loc->n; i++)
        enc_str8(&e, loc->regions[i]);
    rv = stage_put(b, CF_BLOB_LOCATIONS, digest, strlen(digest), &e);
out:
    free(loc);
    return rv;
}

/* ---- snapshots ------------------------------------------------------------------------- */

static const char snap_magic[8] = {'P', 'T', 'L', 'N', 'S', 'N', 'A', 'P'};
#define SNAP_HEADER_LEN (sizeof(snap_magic) + 4 + 8 + 4)
#define SNAP_SUM_LEN    32
#define SNAP_N_FAMILIES (CF_META + 1) /* default .. meta */
/* Largest value of any replicated record: a manifest (or referrer) with a maximal body and
 * its three s8 strings and framing, or a full blob_locations list; both fit. */
#define SNAP_VALUE_MAX (PT_METASTORE_MANIFEST_MAX + 1024)

/* Growable output through a caller-chosen allocator. */
struct snapw {
    unsigned char *p;
    size_t len, cap;
    bool nomem;
    void *(*realloc_fn)(void *, size_t);
};

static void snapw_raw(struct snapw *w, const void *src, size_t n)
{
    if (w->nomem)
        return;
    if (w->cap - w->len < n) {
        if (n > SIZE_MAX / 2 - w->len) {
            w->nomem = true;
            return;
        }
        size_t cap = w->cap ? w->cap : 4096;
        while (cap - w->len < n)
            cap *= 2;
        unsigned char *p = w->realloc_fn(w->p, cap);
        if (p == NULL) {
            w->nomem = true;
            return;
        }
        w->p = p;
        w->cap = cap;
    }
    if (n > 0)
        memcpy(w->p + w->len, src, n);
    w->len += n;
}

static void put_le(unsigned char *b, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        b[i] = (unsigned char)(v >> (8 * i));
}

static void snapw_u32(struct snapw *w, uint32_t v)
{
    unsigned char b[4];
    put_le(b, v, 4);
    snapw_raw(w, b, 4);
}

static void snapw_u64(struct snapw *w, uint64_t v)
{
    unsigned char b[8];
    put_le(b, v, 8);
    snapw_raw(w, b, 8);
}

static int sha256(const void *p, size_t n, unsigned char md[SNAP_SUM_LEN])
{
    unsigned int mdlen = 0;
    if (EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != SNAP_SUM_LEN)
        return PT_E_INTERNAL;
    return 0;
}

/* Reads the applied index as of ro's snapshot (0 if none was recorded). */
static int applied_at(struct pt_metastore *ms, const rocksdb_readoptions_t *ro, uint64_t *index)
{
    char *err = NULL;
    size_t vlen;
    char *v = rocksdb_get_cf(ms->db, ro, ms->cf[CF_META], applied_key, sizeof(applied_key) - 1,
                             &vlen, &err);
    if (err != NULL)
        return rdb_err(err);
    *index = 0;
    if (v == NULL)
        return 0;
    int rv = dec_size(v, vlen, index);
    rocksdb_free(v);
    return rv;
}

static bool is_applied_key(enum cf cf, const char *k, size_t klen)
{
    return cf == CF_META && klen == sizeof(applied_key) - 1 && memcmp(k, applied_key, klen) == 0;
}

/* Writes one family (name, count, records) of the snapshot snap into w. */
static int snap_family(struct pt_metastore *ms, enum cf cf, const rocksdb_snapshot_t *snap,
                       struct snapw *w)
{
    size_t nlen = strlen(cf_names[cf]);
    unsigned char n8 = (unsigned char)nlen;
    snapw_raw(w, &n8, 1);
    snapw_raw(w, cf_names[cf], nlen);
    size_t count_at = w->len;
    snapw_u64(w, 0); /* patched below */

    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_new(ms, cf, NULL, 0, snap, &ro);
    uint64_t count = 0;
    int rv = 0;
    for (rocksdb_iter_seek_to_first(it); rocksdb_iter_valid(it) && !w->nomem;
         rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *v = rocksdb_iter_value(it, &vlen);
        if (is_applied_key(cf, k, klen))
            continue;
        if (klen == 0 || klen > KEY_MAX || vlen > SNAP_VALUE_MAX) {
            rv = PT_E_CORRUPT; /* restore would refuse it: do not produce it */
            break;
        }
        snapw_u32(w, (uint32_t)klen);
        snapw_raw(w, k, klen);
        snapw_u32(w, (uint32_t)vlen);
        snapw_raw(w, v, vlen);
        count++;
    }
    int irv = iter_free(it, ro);
    if (rv == 0)
        rv = irv;
    if (rv == 0 && !w->nomem)
        put_le(w->p + count_at, count, 8);
    return rv;
}

int pt_metastore_snapshot_with(struct pt_metastore *ms, void *(*realloc_fn)(void *, size_t),
                               void (*free_fn)(void *), void **buf, size_t *len, uint64_t *index)
{
    *buf = NULL;
    *len = 0;
    *index = 0;
    struct snapw w = {.realloc_fn = realloc_fn};
    const rocksdb_snapshot_t *snap = rocksdb_create_snapshot(ms->db);
    rocksdb_readoptions_t *ro = rocksdb_readoptions_create();
    rocksdb_readoptions_set_snapshot(ro, snap);
    uint64_t applied = 0;
    int rv = applied_at(ms, ro, &applied);
    rocksdb_readoptions_destroy(ro);

    snapw_raw(&w, snap_magic, sizeof(snap_magic));
    snapw_u32(&w, PT_METASTORE_SNAPSHOT_VERSION);
    snapw_u64(&w, applied);
    snapw_u32(&w, SNAP_N_FAMILIES);
    for (int cf = CF_DEFAULT; cf < SNAP_N_FAMILIES && rv == 0; cf++)
        rv = snap_family(ms, cf, snap, &w);
    rocksdb_release_snapshot(ms->db, snap);

    unsigned char md[SNAP_SUM_LEN];
    if (rv == 0 && !w.nomem)
        rv = sha256(w.p, w.len, md);
    if (rv == 0)
        snapw_raw(&w, md, sizeof(md));
    if (rv == 0 && w.nomem)
        rv = PT_E_NOMEM;
    if (rv != 0) {
        free_fn(w.p);
        return rv;
    }
    /* give back the growth slack; keeping the larger buffer is fine if that fails */
    unsigned char *p = realloc_fn(w.p, w.len);
    *buf = p != NULL ? p : w.p;
    *len = w.len;
    *index = applied;
    return 0;
}

int pt_metastore_snapshot(struct pt_metastore *ms, void **buf, size_t *len, uint64_t *index)
{
    return pt_metastore_snapshot_with(ms, realloc, free, buf, len, index);
}

/* Checks magic, version and checksum; *index is the header's applied index. */
static int snap_check(const void *buf, size_t len, uint64_t *index)
{
    if (buf == NULL || len < SNAP_HEADER_LEN + SNAP_SUM_LEN)
        return PT_E_CORRUPT;
    const unsigned char *p = buf;
    if (memcmp(p, snap_magic, sizeof(snap_magic)) != 0)
        return PT_E_CORRUPT;
    unsigned char md[SNAP_SUM_LEN];
    int rv = sha256(p, len - SNAP_SUM_LEN, md);
    if (rv != 0)
        return rv;
    if (memcmp(md, p + len - SNAP_SUM_LEN, SNAP_SUM_LEN) != 0)
        return PT_E_CORRUPT;
    struct dec d;
    dec_init(&d, (const char *)p + sizeof(snap_magic), SNAP_HEADER_LEN - sizeof(snap_magic));
    uint32_t version = dec_u32(&d);
    *index = dec_u64(&d);
    uint32_t n_families = dec_u32(&d);
    if (version != PT_METASTORE_SNAPSHOT_VERSION || n_families != SNAP_N_FAMILIES)
        return PT_E_CORRUPT;
    return dec_finish(&d);
}

int pt_metastore_snapshot_index(const void *buf, size_t len, uint64_t *index)
{
    uint64_t i;
    int rv = snap_check(buf, len, &i);
    if (rv == 0)
        *index = i;
    return rv;
}

/* Stages the deletion of every record of cf: the range from the empty key (the smallest) to
 * the successor of the last key (the last key followed by a 0 byte). */
static int stage_clear(struct pt_metastore *ms, rocksdb_writebatch_t *wb, enum cf cf)
{
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_new(ms, cf, NULL, 0, NULL, &ro);
    rocksdb_iter_seek_to_last(it);
    int rv = 0;
    if (rocksdb_iter_valid(it)) {
        size_t klen;
        const char *k = rocksdb_iter_key(it, &klen);
        char *end = malloc(klen + 1);
        if (end == NULL) {
            rv = PT_E_NOMEM;
        } else {
            memcpy(end, k, klen);
            end[klen] = '\0';
            rocksdb_writebatch_delete_range_cf(wb, ms->cf[cf], "", 0, end, klen + 1);
            free(end);
        }
    }
    int irv = iter_free(it, ro);
    return rv != 0 ? rv : irv;
}

/* Parses one family of the stream and stages its records. */
static int restore_family(struct pt_metastore *ms, rocksdb_writebatch_t *wb, enum cf cf,
                          struct dec *d)
{
    char name[256];
    dec_str8(d, name, sizeof(name));
    uint64_t count = dec_u64(d);
    if (d->bad || strcmp(name, cf_names[cf]) != 0)
        return PT_E_CORRUPT;
    const unsigned char *prev = NULL;
    size_t prev_len = 0;
    /* every record takes at least 8 bytes, so a bad count runs out of input and stops */
    for (uint64_t i = 0; i < count; i++) {
        uint32_t klen = dec_u32(d);
        const unsigned char *k = dec_raw(d, klen);
        uint32_t vlen = dec_u32(d);
        const unsigned char *v = dec_raw(d, vlen);
        if (d->bad || klen == 0 || klen > KEY_MAX || vlen > SNAP_VALUE_MAX ||
            is_applied_key(cf, (const char *)k, klen))
            return PT_E_CORRUPT;
        if (prev != NULL) {
            size_t n = prev_len < klen ? prev_len : klen;
            int c = memcmp(prev, k, n);
            if (c > 0 || (c == 0 && prev_len >= klen))
                return PT_E_CORRUPT; /* not strictly ascending */
        }
        prev = k;
        prev_len = klen;
        rocksdb_writebatch_put_cf(wb, ms->cf[cf], (const char *)k, klen, (const char *)v, vlen);
    }
    return 0;
}

int pt_metastore_restore(struct pt_metastore *ms, const void *buf, size_t len)
{
    uint64_t index;
    int rv = pt_metastore_halted(ms);
    if (rv == 0)
        rv = snap_check(buf, len, &index);
    if (rv != 0)
        return rv;
    struct dec d;
    dec_init(&d, (const char *)buf + SNAP_HEADER_LEN, len - SNAP_HEADER_LEN - SNAP_SUM_LEN);

    rocksdb_writebatch_t *wb = rocksdb_writebatch_create();
    for (int cf = CF_DEFAULT; cf < SNAP_N_FAMILIES && rv == 0; cf++)
        rv = stage_clear(ms, wb, cf);
    for (int cf = CF_DEFAULT; cf < SNAP_N_FAMILIES && rv == 0; cf++)
        rv = restore_family(ms, wb, cf, &d);
    if (rv == 0)
        rv = dec_finish(&d);
    if (rv == 0 && index != 0) {
        unsigned char v[9];
        v[0] = REC_VERSION;
        put_le(v + 1, index, 8);
        rocksdb_writebatch_put_cf(wb, ms->cf[CF_META], applied_key, sizeof(applied_key) - 1,
                                  (const char *)v, sizeof(v));
    }
    if (rv == 0) {
        char *err = NULL;
        rocksdb_write(ms->db, ms->wo, wb, &err);
        if (err != NULL) {
            rv = rdb_err(err);
            pt_metastore_halt(ms, rv);
        }
    }
    rocksdb_writebatch_destroy(wb);
    if (rv != 0)
        return rv;
    atomic_store(&ms->applied, index);
    return 0;
}

/* ---- regions ----------------------------------------------------------------------------
 *
 * CF_DEFAULT  "region/" <id, 8 bytes big-endian> -> v1 { u32 len + name, u32 len + address,
 *                                                       u32 len + url }
 */

static const char region_prefix[] = "region/";

static size_t region_key(uint64_t id, char *key)
{
    memcpy(key, region_prefix, sizeof(region_prefix) - 1);
    for (int i = 0; i < 8; i++)
        key[sizeof(region_prefix) - 1 + i] = (char)(id >> (56 - 8 * i));
    return sizeof(region_prefix) - 1 + 8;
}

static void enc_str32(struct enc *e, const char *s)
{
    size_t n = strlen(s);
    enc_u32(e, (uint32_t)n);
    enc_raw(e, s, n);
}

static void dec_str32(struct dec *d, char *out, size_t cap)
{
    size_t n = dec_u32(d);
    const unsigned char *p = n < cap ? dec_raw(d, n) : NULL;
    if (p == NULL || memchr(p, '\0', n) != NULL) {
        d->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

int pt_metastore_batch_region_put(struct pt_metastore_batch *b, const struct pt_region_rec *r)
{
    if (r->id == 0 || strnlen(r->name, sizeof(r->name)) == sizeof(r->name) ||
        strnlen(r->address, sizeof(r->address)) == sizeof(r->address) ||
        strnlen(r->url, sizeof(r->url)) == sizeof(r->url))
        return PT_E_CONFIG;
    char key[32];
    size_t klen = region_key(r->id, key);
    struct enc e = {0};
    enc_u8(&e, REC_VERSION);
    enc_str32(&e, r->name);
    enc_str32(&e, r->address);
    enc_str32(&e, r->url);
    return stage_put(b, CF_DEFAULT, key, klen, &e);
}

int pt_metastore_batch_region_delete(struct pt_metastore_batch *b, uint64_t id)
{
    char key[32];
    size_t klen = region_key(id, key);
    stage_delete(b, CF_DEFAULT, key, klen);
    return 0;
}

int pt_metastore_list_regions(struct pt_metastore *ms, struct pt_region_rec **out, size_t *count)
{
    char upper[sizeof(region_prefix)];
    memcpy(upper, region_prefix, sizeof(region_prefix) - 1);
    upper[sizeof(region_prefix) - 2]++; /* "region0": just past every "region/..." key */
    rocksdb_readoptions_t *ro;
    rocksdb_iterator_t *it = iter_new(ms, CF_DEFAULT, upper, sizeof(region_prefix) - 1, NULL, &ro);
    size_t n = 0, cap = 0;
    struct pt_region_rec *v = NULL;
    int rv = 0;
    for (rocksdb_iter_seek(it, region_prefix, sizeof(region_prefix) - 1);
         rocksdb_iter_valid(it) && rv == 0; rocksdb_iter_next(it)) {
        size_t klen, vlen;
        const char *k = rocksdb_iter_key(it, &klen);
        const char *val = rocksdb_iter_value(it, &vlen);
        if (klen != sizeof(region_prefix) - 1 + 8) {
            rv = PT_E_CORRUPT;
            break;
        }
        if (n == cap) {
            size_t ncap = cap == 0 ? 8 : cap * 2;
            struct pt_region_rec *nv = ncap <= 1024 ? realloc(v, ncap * sizeof(*v)) : NULL;
            if (nv == NULL) {
                rv = PT_E_NOMEM;
                break;
            }
            v = nv;
            cap = ncap;
        }
        struct pt_region_rec *r = &v[n];
        r->id = 0;
        for (int i = 0; i < 8; i++)
            r->id = (r->id << 8) | (unsigned char)k[sizeof(region_prefix) - 1 + i];
        struct dec d;
        dec_init(&d, val, vlen);
        if (dec_version(&d)) {
            dec_str32(&d, r->name, sizeof(r->name));
            dec_str32(&d, r->address, sizeof(r->address));
            dec_str32(&d, r->url, sizeof(r->url));
        }
        rv = dec_finish(&d);
        n++;
    }
    int irv = iter_free(it, ro);
    if (rv == 0)
        rv = irv;
    if (rv != 0) {
        free(v);
        return rv;
    }
    *out = v;
    *count = n;
    return 0;
}
