/*
 * fuzz_raft_wire.c - libFuzzer driver for replication/raft_wire.h, the validator of the raft
 * messages a peer sends.
 *
 * Input: byte 0 (low 4 bits) picks the piece size the stream is fed in (0: whole, k: k bytes
 * at a time); the rest is the stream. Checks:
 *   - the verdict does not depend on how the stream is cut into pieces;
 *   - a refusal sticks (feeding more returns the same error);
 *   - when the validator accepts, every complete message in the stream is one that libraft
 *     0.15's decoder (src/uv_encoding.c) reads within its header: an independent walk of the
 *     stream computes what that decoder reads from each header (RequestVote 32 or 40 bytes,
 *     AppendEntries 40 + 16 n, InstallSnapshot 48 + its configuration, ...) and that the
 *     payload it then allocates is within the bounds of raft_wire.h.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bytes.h"
#include "fuzz_check.h"
#include "raft_wire.h"

#define PEER 7

static enum pt_raft_wire_error run(const uint8_t *d, size_t n, size_t piece)
{
    struct pt_raft_wire w;
    enum pt_raft_wire_error e = PT_RAFT_WIRE_OK;
    pt_raft_wire_init(&w, PEER);
    if (piece == 0)
        return pt_raft_wire_feed(&w, d, n);
    for (size_t off = 0; off < n; off += piece)
        e = pt_raft_wire_feed(&w, d + off, n - off < piece ? n - off : piece);
    if (e != PT_RAFT_WIRE_OK) {
        PT_FUZZ_CHECK(pt_raft_wire_feed(&w, d, n) == e);
        PT_FUZZ_CHECK(pt_raft_wire_reason(e)[0] != '?');
    }
    return e;
}

/* What libraft's decoder reads from a header of type t and length h (h bytes at hdr, of which
 * have are present); sets *payload. Returns 0 when the header is incomplete in the input. */
static int libraft_reads(uint64_t t, const uint8_t *hdr, uint64_t h, size_t have, uint64_t *need,
                         uint64_t *payload)
{
    *payload = 0;
    switch (t) {
    case 1:
        if (have < 40)
            return 0;
        *need = 40 + 16 * pt_get_le64(hdr + 32);
        if (have < *need)
            return 0;
        for (uint64_t i = 0; i < pt_get_le64(hdr + 32); i++)
            *payload += pt_get_le32(hdr + 40 + 16 * i + 12);
        return 1;
    case 2:
    case 6:
        *need = 24;
        return 1;
    case 3:
        *need = h == 32 ? 32 : 40;
        return 1;
    case 4:
        *need = h > 16 ? 24 : 16;
        return 1;
    case 5:
        if (have < 40)
            return 0;
        *need = 48 + pt_get_le64(hdr + 32);
        if (have < *need)
            return 0;
        *payload = pt_get_le64(hdr + 40 + pt_get_le64(hdr + 32));
        return 1;
    default:
        PT_FUZZ_CHECK(0 && "accepted an unknown type");
        return 0;
    }
}

/* The stream was accepted: walks each complete message as libraft would. */
static void check_accepted(const uint8_t *d, size_t n)
{
    size_t off = 0;
    while (n - off >= 16) {
        uint64_t t = pt_get_le64(d + off), h = pt_get_le64(d + off + 8), need, payload;
        size_t have;
        off += 16;
        PT_FUZZ_CHECK(h > 0);
        have = n - off < h ? n - off : (size_t)h;
        if (!libraft_reads(t, d + off, h, have, &need, &payload))
            return;
        PT_FUZZ_CHECK(need <= h);
        if (have < need)
            return;
        if (t == 1)
            PT_FUZZ_CHECK(payload <= PT_RAFT_WIRE_APPEND_MAX);
        if (t == 5)
            PT_FUZZ_CHECK(payload <= PT_RAFT_WIRE_SNAPSHOT_MAX);
        PT_FUZZ_CHECK(pt_get_le64(d + off) <= PT_RAFT_WIRE_TERM_MAX);
        if (t == 3)
            PT_FUZZ_CHECK(pt_get_le64(d + off + 8) == PEER);
        if (n - off < h || n - off - h < payload)
            return;
        off += h + payload;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t piece;
    enum pt_raft_wire_error whole, cut;

    if (size < 1)
        return 0;
    piece = data[0] & 0x0f;
    data++;
    size--;
    whole = run(data, size, 0);
    cut = run(data, size, piece == 0 ? 1 : piece);
    PT_FUZZ_CHECK(whole == cut);
    if (whole == PT_RAFT_WIRE_OK)
        check_accepted(data, size);
    return 0;
}
