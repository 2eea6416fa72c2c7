/*
 * snapstream.c - the streaming reader of snapshot streams (see snapstream.h).
 *
 * Design: a window [pos, end) over a buffer refilled from the read function. need(n) makes n
 * bytes contiguous (moving the unread tail to the front, growing the buffer only for a record
 * larger than it, up to the format's bound); take(n) consumes them and feeds them to the
 * running SHA-256. A record is made contiguous whole (u32 klen, key, u32 vlen, value) before
 * it is handed on, so the sink sees plain pointers into the window.
 */
#include "snapstream.h"

#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "bytes.h"
#include "err.h"

static const char stream_magic[8] = {'P', 'T', 'L', 'N', 'S', 'N', 'A', 'P'};

struct rd {
    pt_snapstream_read_fn read_fn;
    void *arg;
    unsigned char *buf;
    size_t cap, pos, end, max_cap;
    EVP_MD_CTX *ctx;
    uint64_t consumed;
};

/* Makes n bytes available at buf + pos. PT_E_CORRUPT when the input ends first. */
static int need(struct rd *r, size_t n)
{
    if (r->end - r->pos >= n)
        return 0;
    if (n > r->max_cap)
        return PT_E_CORRUPT;
    if (r->pos > 0) {
        memmove(r->buf, r->buf + r->pos, r->end - r->pos);
        r->end -= r->pos;
        r->pos = 0;
    }
    if (n > r->cap) {
        unsigned char *p = realloc(r->buf, n);
        if (p == NULL)
            return PT_E_NOMEM;
        r->buf = p;
        r->cap = n;
    }
    while (r->end < n) {
        size_t got = 0;
        int rv = r->read_fn(r->arg, r->buf + r->end, r->cap - r->end, &got);
        if (rv != 0)
            return rv;
        if (got == 0 || got > r->cap - r->end)
            return PT_E_CORRUPT; /* truncated */
        r->end += got;
    }
    return 0;
}

/* Consumes n available bytes into the checksum and returns them (valid until the next need). */
static const unsigned char *take(struct rd *r, size_t n)
{
    const unsigned char *p = r->buf + r->pos;
    EVP_DigestUpdate(r->ctx, p, n);
    r->pos += n;
    r->consumed += n;
    return p;
}

static int read_family(struct rd *r, const struct pt_snapstream_format *f, unsigned fam,
                       const struct pt_snapstream_sink *sink, unsigned char *prev,
                       uint64_t *records)
{
    int rv = need(r, 1);
    if (rv != 0)
        return rv;
    size_t nlen = r->buf[r->pos];
    if ((rv = need(r, 1 + nlen + 8)) != 0)
        return rv;
    const unsigned char *h = take(r, 1 + nlen + 8);
    const char *want = f->families[fam];
    if (nlen != strlen(want) || memcmp(h + 1, want, nlen) != 0)
        return PT_E_CORRUPT;
    uint64_t count = pt_get_le64(h + 1 + nlen);
    size_t prev_len = 0;
    /* every record takes at least 8 bytes, so a bad count runs out of input and stops */
    for (uint64_t i = 0; i < count; i++) {
        if ((rv = need(r, 4)) != 0)
            return rv;
        size_t klen = pt_get_le32(r->buf + r->pos);
        if (klen == 0 || klen > f->key_max)
            return PT_E_CORRUPT;
        if ((rv = need(r, 8 + klen)) != 0)
            return rv;
        size_t vlen = pt_get_le32(r->buf + r->pos + 4 + klen);
        if (vlen > f->value_max)
            return PT_E_CORRUPT;
        if ((rv = need(r, 8 + klen + vlen)) != 0)
            return rv;
        const unsigned char *p = take(r, 8 + klen + vlen);
        const unsigned char *k = p + 4, *v = p + 8 + klen;
        if (fam == f->meta_family && klen == f->applied_key_len &&
            memcmp(k, f->applied_key, klen) == 0)
            return PT_E_CORRUPT;
        if (i > 0) {
            size_t n = prev_len < klen ? prev_len : klen;
            int c = memcmp(prev, k, n);
            if (c > 0 || (c == 0 && prev_len >= klen))
                return PT_E_CORRUPT; /* not strictly ascending */
        }
        memcpy(prev, k, klen);
        prev_len = klen;
        if (sink != NULL && sink->record != NULL &&
            (rv = sink->record(sink->arg, fam, k, klen, v, vlen)) != 0)
            return rv;
        (*records)++;
    }
    return 0;
}

int pt_snapstream_read(const struct pt_snapstream_format *f, pt_snapstream_read_fn read_fn,
                       void *read_arg, const struct pt_snapstream_sink *sink,
                       struct pt_snapstream_info *info)
{
    struct rd r = {.read_fn = read_fn, .arg = read_arg, .cap = PT_SNAPSTREAM_CHUNK};
    r.max_cap = 8 + f->key_max + f->value_max;
    if (r.max_cap < PT_SNAPSTREAM_CHUNK)
        r.max_cap = PT_SNAPSTREAM_CHUNK;
    r.buf = malloc(r.cap);
    r.ctx = EVP_MD_CTX_new();
    unsigned char *prev = malloc(f->key_max + 1);
    EVP_MD_CTX *copy = EVP_MD_CTX_new();
    int rv = 0;
    if (r.buf == NULL || r.ctx == NULL || prev == NULL || copy == NULL)
        rv = PT_E_NOMEM;
    else if (EVP_DigestInit_ex(r.ctx, EVP_sha256(), NULL) != 1)
        rv = PT_E_INTERNAL;
    uint64_t index = 0, records = 0;
    if (rv == 0 && (rv = need(&r, sizeof(stream_magic) + 16)) == 0) {
        const unsigned char *h = take(&r, sizeof(stream_magic) + 16);
        index = pt_get_le64(h + 12);
        if (memcmp(h, stream_magic, sizeof(stream_magic)) != 0 ||
            pt_get_le32(h + 8) != f->version || pt_get_le32(h + 20) != f->n_families)
            rv = PT_E_CORRUPT;
    }
    if (rv == 0 && sink != NULL && sink->begin != NULL)
        rv = sink->begin(sink->arg, index);
    for (unsigned fam = 0; fam < f->n_families && rv == 0; fam++)
        rv = read_family(&r, f, fam, sink, prev, &records);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (rv == 0)
        rv = need(&r, PT_SNAPSTREAM_SUMLEN);
    if (rv == 0 && (EVP_MD_CTX_copy_ex(copy, r.ctx) != 1 ||
                    EVP_DigestFinal_ex(copy, md, &mdlen) != 1 || mdlen != PT_SNAPSTREAM_SUMLEN))
        rv = PT_E_INTERNAL;
    if (rv == 0 && memcmp(md, take(&r, PT_SNAPSTREAM_SUMLEN), PT_SNAPSTREAM_SUMLEN) != 0)
        rv = PT_E_CORRUPT;
    if (rv == 0 && r.pos != r.end)
        rv = PT_E_CORRUPT; /* bytes after the checksum */
    if (rv == 0) {
        size_t got = 0;
        rv = read_fn(read_arg, r.buf, r.cap, &got);
        if (rv == 0 && got != 0)
            rv = PT_E_CORRUPT;
    }
    if (rv == 0 && (EVP_DigestFinal_ex(r.ctx, md, &mdlen) != 1 || mdlen != PT_SNAPSTREAM_SUMLEN))
        rv = PT_E_INTERNAL;
    if (rv == 0 && info != NULL) {
        info->index = index;
        info->size = r.consumed;
        info->records = records;
        memcpy(info->file_sha256, md, PT_SNAPSTREAM_SUMLEN);
    }
    EVP_MD_CTX_free(copy);
    EVP_MD_CTX_free(r.ctx);
    free(prev);
    free(r.buf);
    return rv;
}
