/*
 * fuzz_snapshot.c - libFuzzer driver for raft snapshots by reference: the descriptor parser
 * and file-name parser of replication/raft_snapshot.h, and the streaming reader of snapshot
 * streams (node/store/snapstream.h) that restores check files with.
 *
 * Input: byte 0 picks the target. 'D' (or any byte < 0x80): the rest is a descriptor
 * and also a file name; checks that a parsed descriptor re-encodes to the same bytes and
 * has its fields within bounds, and that a parsed name is digits + ".pts" and prints back
 * the same. Otherwise: the low 4 bits of byte 0 pick the piece size the read function
 * hands out (0: everything at once, k: k bytes at a time) and the rest is a stream; checks
 * that the verdict and the records seen do not depend on the piece size, that records are
 * within the format's bounds and in strictly ascending order per family, and that an
 * accepted stream's size is the input's.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz_check.h"
#include "raft_snapshot.h"
#include "snapstream.h"

static const char *const families[] = {"default",    "repos",     "manifests",      "tags",
                                       "repo_blobs", "referrers", "blob_locations", "meta"};

static const struct pt_snapstream_format format = {
    .families = families,
    .n_families = 8,
    .meta_family = 7,
    .applied_key = "applied_index",
    .applied_key_len = 13,
    .key_max = 512,
    .value_max = 4096,
    .version = 1,
};

struct src {
    const uint8_t *p;
    size_t len, off, piece;
};

static int src_read(void *arg, void *buf, size_t cap, size_t *got)
{
    struct src *s = arg;
    size_t n = s->len - s->off;
    if (n > cap)
        n = cap;
    if (s->piece != 0 && n > s->piece)
        n = s->piece;
    memcpy(buf, s->p + s->off, n);
    s->off += n;
    *got = n;
    return 0;
}

struct seen {
    uint64_t records, sum; /* a cheap fingerprint of the records, in order */
    unsigned last_family;
    int begun;
};

static int begin_cb(void *arg, uint64_t index)
{
    struct seen *s = arg;
    (void)index;
    PT_FUZZ_CHECK(!s->begun);
    s->begun = 1;
    return 0;
}

static int record_cb(void *arg, unsigned family, const void *k, size_t klen, const void *v,
                     size_t vlen)
{
    struct seen *s = arg;
    PT_FUZZ_CHECK(s->begun);
    PT_FUZZ_CHECK(family < format.n_families && family >= s->last_family);
    PT_FUZZ_CHECK(klen >= 1 && klen <= format.key_max && vlen <= format.value_max);
    s->last_family = family;
    s->records++;
    const uint8_t *kp = k, *vp = v;
    for (size_t i = 0; i < klen; i++)
        s->sum = s->sum * 31 + kp[i];
    for (size_t i = 0; i < vlen; i++)
        s->sum = s->sum * 37 + vp[i];
    s->sum += family;
    return 0;
}

static int run(const uint8_t *d, size_t n, size_t piece, struct seen *s,
               struct pt_snapstream_info *info)
{
    struct src src = {.p = d, .len = n, .piece = piece};
    struct pt_snapstream_sink sink = {.begin = begin_cb, .record = record_cb, .arg = s};
    memset(s, 0, sizeof(*s));
    return pt_snapstream_read(&format, src_read, &src, &sink, info);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const uint8_t *d = data + 1;
    size_t n = size - 1;
    if (data[0] < 0x80) {
        struct pt_snapdesc desc;
        if (pt_snapdesc_parse(d, n, &desc) == 0) {
            unsigned char again[PT_SNAPDESC_LEN];
            pt_snapdesc_encode(&desc, again);
            PT_FUZZ_CHECK(n == PT_SNAPDESC_LEN && memcmp(again, d, n) == 0);
            PT_FUZZ_CHECK(desc.index != 0 && desc.source != 0 && desc.size != 0 &&
                          desc.size <= PT_SNAPFILE_SIZE_MAX);
        }
        uint64_t index;
        if (pt_snapfile_parse_name((const char *)d, n, &index) == 0) {
            char name[PT_SNAPFILE_NAME_MAX];
            pt_snapfile_name(index, name, sizeof(name));
            PT_FUZZ_CHECK(strlen(name) == n && memcmp(name, d, n) == 0);
            PT_FUZZ_CHECK(memchr(d, '/', n) == NULL);
        }
        return 0;
    }
    struct seen a, b;
    struct pt_snapstream_info ia, ib;
    int ra = run(d, n, 0, &a, &ia);
    int rb = run(d, n, (data[0] & 15) + 1, &b, &ib);
    PT_FUZZ_CHECK(ra == rb);
    PT_FUZZ_CHECK(a.records == b.records && a.sum == b.sum);
    if (ra == 0) {
        PT_FUZZ_CHECK(ia.size == n && ib.size == n && ia.index == ib.index);
        PT_FUZZ_CHECK(memcmp(ia.file_sha256, ib.file_sha256, 32) == 0);
    }
    return 0;
}
