/*
 * raft_snapdesc.c - snapshot descriptors and snapshot file names (raft_snapshot.h): pure,
 * fuzzed (tests/fuzz/fuzz_snapshot.c).
 *
 * Design: the descriptor is a fixed 72-byte record checked field by field; the file name is
 * derived from the index alone and parsed back strictly, so a name a peer sends can only ever
 * open a file of the snapshots directory.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "bytes.h"
#include "err.h"
#include "raft_snapshot.h"

static const char desc_magic[8] = {'P', 'T', 'L', 'N', 'S', 'D', 'S', 'C'};

void pt_snapdesc_encode(const struct pt_snapdesc *d, unsigned char out[PT_SNAPDESC_LEN])
{
    memcpy(out, desc_magic, 8);
    pt_put_le32(out + 8, PT_SNAPDESC_VERSION);
    pt_put_le32(out + 12, 0);
    pt_put_le64(out + 16, d->index);
    pt_put_le64(out + 24, d->size);
    memcpy(out + 32, d->sha256, 32);
    pt_put_le64(out + 64, d->source);
}

bool pt_snapdesc_is(const void *buf, size_t len)
{
    return buf != NULL && len >= 8 && memcmp(buf, desc_magic, 8) == 0;
}

int pt_snapdesc_parse(const void *buf, size_t len, struct pt_snapdesc *d)
{
    const unsigned char *p = buf;
    if (!pt_snapdesc_is(buf, len) || len != PT_SNAPDESC_LEN)
        return PT_E_CORRUPT;
    if (pt_get_le32(p + 8) != PT_SNAPDESC_VERSION || pt_get_le32(p + 12) != 0)
        return PT_E_CORRUPT;
    struct pt_snapdesc t;
    t.index = pt_get_le64(p + 16);
    t.size = pt_get_le64(p + 24);
    memcpy(t.sha256, p + 32, 32);
    t.source = pt_get_le64(p + 64);
    if (t.index == 0 || t.source == 0 || t.size == 0 || t.size > PT_SNAPFILE_SIZE_MAX)
        return PT_E_CORRUPT;
    *d = t;
    return 0;
}

void pt_snapfile_name(uint64_t index, char *out, size_t cap)
{
    snprintf(out, cap, "%" PRIu64 ".pts", index);
}

int pt_snapfile_parse_name(const char *name, size_t len, uint64_t *index)
{
    if (name == NULL || len < 5 || len > 24 || memcmp(name + len - 4, ".pts", 4) != 0 ||
        name[0] == '0')
        return PT_E_NAME_INVALID;
    uint64_t v = 0;
    for (size_t i = 0; i < len - 4; i++) {
        if (name[i] < '0' || name[i] > '9')
            return PT_E_NAME_INVALID;
        unsigned dgt = (unsigned)(name[i] - '0');
        if (v > (UINT64_MAX - dgt) / 10)
            return PT_E_NAME_INVALID;
        v = v * 10 + dgt;
    }
    *index = v;
    return 0;
}

int pt_snapfile_dir(const char *dir, char *out, size_t cap)
{
    int n = snprintf(out, cap, "%s-snapshots", dir);
    return n < 0 || (size_t)n >= cap ? PT_E_TOO_LARGE : 0;
}
