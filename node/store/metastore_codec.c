/*
 * metastore_codec.c - the metadata store's key schema and the encoders and decoders of its
 * keys and values.
 *
 * Key schema. Every name is a C string, so it holds no NUL byte and "\0" separates the
 * components of a key without ambiguity: the prefix "<repo>\0" selects exactly one repository,
 * and byte-wise key order is lexical order of the last component.
 *
 *   column family   key                                     value
 *   --------------  --------------------------------------  -------------------------------------
 *   (replicated: written only through a batch, i.e. by the FSM, or by a snapshot restore)
 *   default         "region/" u64be:id                      v1 s32:name s32:address s32:url
 *                   (the regions of the cluster; id != 0,   (name <= 63, address <= 261,
 *                   big-endian so keys sort by id)          url <= 511 bytes)
 *                   "auth/" <kind> "/" <name>               access control records: users,
 *                   (kind: anon, jti, key, token, user)     tokens, anonymous rules, signing
 *                                                           keys, revoked token ids; drawn in
 *                                                           metastore_auth.c
 *                   "gc/" ...                               the garbage collection index (blob
 *                                                           references, links by digest, push
 *                                                           times); drawn in metastore_gc.c
 *                   "policy/quota/" <pattern>               storage quotas; drawn in
 *                                                           metastore_quota.c
 *                   "usage/" ...                            usage of the registry and of each
 *                                                           repository, the charge of each
 *                                                           blob to each repository;
 *                                                           metastore_quota.c
 *                   "policy/throttle/" <subject>            request limits of an identity or
 *                                                           the default; metastore_throttle.c
 *   repos           <repo>                                  v1 i64:created_ms
 *   manifests       <repo> \0 <digest>                      v1 s8:media_type s8:artifact_type
 *                                                           s8:subject u32:len body[len]
 *   tags            <repo> \0 <tag>                         v1 i64:updated_ms s8:digest
 *   repo_blobs      <repo> \0 <digest>                      v1 u64:size
 *   referrers       <repo> \0 <subject> \0 <referrer>       v1 s8:media_type s8:artifact_type
 *                                                           u64:size u32:len annotations[len]
 *   blob_locations  <digest>                                v1 u64:size u8:n s8:region * n
 *                                                           (regions byte-wise sorted, unique,
 *                                                           n <= PT_METASTORE_REGIONS_MAX)
 *   meta            "applied_index"                         v1 u64:index
 *   (local to this region: written directly, never in a snapshot or the state digest)
 *   uploads         <upload id> (1..PT_UPLOAD_ID_MAX)       opaque bytes (<= 64 KiB): an encoded
 *                                                           struct pt_upload (blobstore_upload.c)
 *                                                           written by the upload API
 *   local_blobs     <digest>                                opaque bytes of a transfer of that
 *                                                           blob from another region in progress
 *                                                           (replication/blob_sync.c)
 *                   "~gc/" <digest>                         a collected blob whose file is to be
 *                                                           deleted here (metastore_gc.c)
 *
 *   repo <= 255 bytes, tag <= 128, media and artifact types <= 127, region <= 63;
 *   digest = "sha256:" + 64 or "sha512:" + 128 lowercase hex (keys of either length, NUL-
 *   separated); v1 = one version byte (1); integers little-endian
 *   fixed width unless marked be (big-endian); s8 = u8 length + bytes, s32 = u32 length +
 *   bytes (no NUL in either); body/annotations stored verbatim (each <= 4 MiB).
 *   Snapshots carry default .. meta; the state digest hashes default .. blob_locations.
 *
 * Encodings are explicit (never struct dumps) so the bytes are identical on every node and
 * architecture, which the state digest and Raft snapshots rely on. A value whose version byte
 * is unknown or whose length does not match its fields exactly is reported as PT_E_CORRUPT.
 *
 * Writers validate every key component before building a key (ms_*_ok below), so keys and
 * values are built without bounds checks of their own; decoders trust nothing they read.
 */
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "digest.h"
#include "err.h"
#include "metastore_int.h"

/* ---- key components and keys --------------------------------------------------------- */

bool ms_name_ok(const char *s, size_t max)
{
    size_t n = strnlen(s, max + 1);
    return n > 0 && n <= max;
}

bool ms_digest_ok(const char *s)
{
    struct pt_digest d;
    return pt_digest_parse(s, strlen(s), &d) == 0;
}

bool ms_region_ok(const char *s)
{
    return ms_name_ok(s, PT_METASTORE_REGION_MAX);
}

size_t ms_key_join(char *key, const char *a, const char *b, const char *c)
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

size_t ms_region_key(uint64_t id, char *key)
{
    memcpy(key, MS_REGION_PREFIX, MS_REGION_PREFIX_LEN);
    pt_put_be64((unsigned char *)key + MS_REGION_PREFIX_LEN, id);
    return MS_REGION_KEY_LEN;
}

char *ms_copy_z(const void *src, size_t n)
{
    char *p = malloc(n + 1);
    if (p == NULL)
        return NULL;
    if (n > 0)
        memcpy(p, src, n);
    p[n] = '\0';
    return p;
}

/* ---- value encoding ------------------------------------------------------------------ */

static void enc_raw(struct pt_buf *e, const void *src, size_t n)
{
    pt_buf_append(e, src, n);
}

static void enc_u8(struct pt_buf *e, uint8_t v)
{
    enc_raw(e, &v, 1);
}

static void enc_u32(struct pt_buf *e, uint32_t v)
{
    unsigned char b[4];
    pt_put_le32(b, v);
    enc_raw(e, b, 4);
}

static void enc_u64(struct pt_buf *e, uint64_t v)
{
    unsigned char b[8];
    pt_put_le64(b, v);
    enc_raw(e, b, 8);
}

/* s was validated to be at most 255 bytes. */
static void enc_str8(struct pt_buf *e, const char *s)
{
    size_t n = strlen(s);
    enc_u8(e, (uint8_t)n);
    enc_raw(e, s, n);
}

static void enc_str32(struct pt_buf *e, const char *s)
{
    size_t n = strlen(s);
    enc_u32(e, (uint32_t)n);
    enc_raw(e, s, n);
}

int ms_enc_finish(struct pt_buf *e)
{
    if (!e->nomem)
        return 0;
    free(e->p);
    e->p = NULL;
    return PT_E_NOMEM;
}

void ms_enc_size(struct pt_buf *e, uint64_t v)
{
    enc_u8(e, REC_VERSION);
    enc_u64(e, v);
}

void ms_enc_manifest(struct pt_buf *e, const char *media_type, const char *artifact_type,
                     const char *subject, const void *body, size_t len)
{
    enc_u8(e, REC_VERSION);
    enc_str8(e, media_type);
    enc_str8(e, artifact_type);
    enc_str8(e, subject);
    enc_u32(e, (uint32_t)len);
    enc_raw(e, body, len);
}

void ms_enc_tag(struct pt_buf *e, int64_t updated_ms, const char *digest)
{
    enc_u8(e, REC_VERSION);
    enc_u64(e, (uint64_t)updated_ms);
    enc_str8(e, digest);
}

void ms_enc_referrer(struct pt_buf *e, const struct pt_referrer *r, const void *annotations,
                     size_t ann_len)
{
    enc_u8(e, REC_VERSION);
    enc_str8(e, r->media_type);
    enc_str8(e, r->artifact_type);
    enc_u64(e, r->size);
    enc_u32(e, (uint32_t)ann_len);
    enc_raw(e, annotations, ann_len);
}

void ms_enc_location(struct pt_buf *e, const struct location *loc)
{
    enc_u8(e, REC_VERSION);
    enc_u64(e, loc->size);
    enc_u8(e, (uint8_t)loc->n);
    for (size_t i = 0; i < loc->n; i++)
        enc_str8(e, loc->regions[i]);
}

void ms_enc_region(struct pt_buf *e, const struct pt_region_rec *r)
{
    enc_u8(e, REC_VERSION);
    enc_str32(e, r->name);
    enc_str32(e, r->address);
    enc_str32(e, r->url);
}

/* ---- value decoding ------------------------------------------------------------------ */

void ms_dec_init(struct dec *d, const char *v, size_t len)
{
    d->p = (const unsigned char *)v;
    d->len = len;
    d->off = 0;
    d->bad = false;
}

const unsigned char *ms_dec_raw(struct dec *d, size_t n)
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
    const unsigned char *p = ms_dec_raw(d, 1);
    return p ? p[0] : 0;
}

uint32_t ms_dec_u32(struct dec *d)
{
    const unsigned char *p = ms_dec_raw(d, 4);
    return p ? pt_get_le32(p) : 0;
}

uint64_t ms_dec_u64(struct dec *d)
{
    const unsigned char *p = ms_dec_raw(d, 8);
    return p ? pt_get_le64(p) : 0;
}

void ms_dec_str8(struct dec *d, char *out, size_t cap)
{
    size_t n = dec_u8(d);
    const unsigned char *p = ms_dec_raw(d, n);
    if (p == NULL || n >= cap || memchr(p, '\0', n) != NULL) {
        d->bad = true;
        out[0] = '\0';
        return;
    }
    memcpy(out, p, n);
    out[n] = '\0';
}

static void dec_str32(struct dec *d, char *out, size_t cap)
{
    size_t n = ms_dec_u32(d);
    const unsigned char *p = n < cap ? ms_dec_raw(d, n) : NULL;
    if (p == NULL || memchr(p, '\0', n) != NULL) {
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

int ms_dec_finish(const struct dec *d)
{
    return !d->bad && d->off == d->len ? 0 : PT_E_CORRUPT;
}

int ms_dec_manifest(const char *v, size_t vlen, struct pt_manifest_rec *out, bool want_body)
{
    struct dec d;
    ms_dec_init(&d, v, vlen);
    out->body = NULL;
    dec_version(&d);
    ms_dec_str8(&d, out->media_type, sizeof(out->media_type));
    ms_dec_str8(&d, out->artifact_type, sizeof(out->artifact_type));
    ms_dec_str8(&d, out->subject, sizeof(out->subject));
    uint32_t len = ms_dec_u32(&d);
    const unsigned char *body = ms_dec_raw(&d, len);
    int rv = ms_dec_finish(&d);
    if (rv != 0)
        return rv;
    out->len = len;
    if (want_body) {
        out->body = ms_copy_z(body, len);
        if (out->body == NULL)
            return PT_E_NOMEM;
    }
    return 0;
}

int ms_dec_tag(const char *v, size_t vlen, char digest[PT_METASTORE_DIGEST_MAX + 1],
               int64_t *updated_ms)
{
    struct dec d;
    ms_dec_init(&d, v, vlen);
    dec_version(&d);
    uint64_t t = ms_dec_u64(&d);
    ms_dec_str8(&d, digest, PT_METASTORE_DIGEST_MAX + 1);
    if (updated_ms != NULL)
        *updated_ms = (int64_t)t;
    return ms_dec_finish(&d);
}

int ms_dec_size(const char *v, size_t vlen, uint64_t *size)
{
    struct dec d;
    ms_dec_init(&d, v, vlen);
    dec_version(&d);
    uint64_t s = ms_dec_u64(&d);
    if (size != NULL)
        *size = s;
    return ms_dec_finish(&d);
}

int ms_dec_referrer(const char *v, size_t vlen, struct pt_referrer *r)
{
    struct dec d;
    ms_dec_init(&d, v, vlen);
    r->annotations = NULL;
    dec_version(&d);
    ms_dec_str8(&d, r->media_type, sizeof(r->media_type));
    ms_dec_str8(&d, r->artifact_type, sizeof(r->artifact_type));
    r->size = ms_dec_u64(&d);
    uint32_t len = ms_dec_u32(&d);
    const unsigned char *ann = ms_dec_raw(&d, len);
    int rv = ms_dec_finish(&d);
    if (rv != 0)
        return rv;
    if (len > 0) {
        r->annotations = ms_copy_z(ann, len);
        if (r->annotations == NULL)
            return PT_E_NOMEM;
    }
    return 0;
}

int ms_dec_location(const char *v, size_t vlen, struct location *loc)
{
    struct dec d;
    ms_dec_init(&d, v, vlen);
    dec_version(&d);
    loc->size = ms_dec_u64(&d);
    loc->n = dec_u8(&d);
    if (loc->n > PT_METASTORE_REGIONS_MAX)
        return PT_E_CORRUPT;
    for (size_t i = 0; i < loc->n; i++)
        ms_dec_str8(&d, loc->regions[i], sizeof(loc->regions[i]));
    return ms_dec_finish(&d);
}

int ms_dec_region(const char *k, size_t klen, const char *v, size_t vlen, struct pt_region_rec *r)
{
    if (klen != MS_REGION_KEY_LEN)
        return PT_E_CORRUPT;
    r->id = pt_get_be64((const unsigned char *)k + MS_REGION_PREFIX_LEN);
    struct dec d;
    ms_dec_init(&d, v, vlen);
    if (dec_version(&d)) {
        dec_str32(&d, r->name, sizeof(r->name));
        dec_str32(&d, r->address, sizeof(r->address));
        dec_str32(&d, r->url, sizeof(r->url));
    }
    return ms_dec_finish(&d);
}

int ms_key_text(const char *k, size_t klen, char *out, size_t max)
{
    if (klen == 0 || klen > max || memchr(k, '\0', klen) != NULL)
        return PT_E_CORRUPT;
    memcpy(out, k, klen);
    out[klen] = '\0';
    return 0;
}
