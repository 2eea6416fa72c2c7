/*
 * fuzz_peer_frame.c - libFuzzer driver for what arrives on PEER and BULK channels
 * (replication/peer_channel.c, proto/peer.proto): the PeerFrame, then its body decoded as the
 * typed message its type names (Propose and its Command through pt_command_decode, as the FSM
 * decodes a forwarded write, and its leading write id through pt_command_write_id; ProposeResult,
 * ReadIndex, ReadIndexResult, Ping, Pong; BlobWant with its digest through pt_digest_parse, as the
 * serving side reads it; BlobChunk, the bulk piece).
 *
 * Input: the bytes of one frame after its 4-byte length prefix (the channel refuses a prefix
 * above PT_PEERS_FRAME_MAX before any decoding). Checks: every message that decodes (without
 * unknown fields) encodes again to bytes that decode to the same encoding (a canonical round
 * trip); byte fields lie within the input; a decoded BlobWant's digest, when it parses, formats
 * back to the same text.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "command.h"
#include "digest.h"
#include "fuzz_check.h"
#include "peer.h"
#include "peer.pb-c.h"

/* 1 if m or any message inside it (set oneof members, optional and repeated message fields)
 * kept unknown fields. */
static int has_unknown(const ProtobufCMessage *m)
{
    if (m == NULL)
        return 0;
    if (m->n_unknown_fields > 0)
        return 1;
    const ProtobufCMessageDescriptor *d = m->descriptor;
    const char *base = (const char *)m;
    for (unsigned i = 0; i < d->n_fields; i++) {
        const ProtobufCFieldDescriptor *f = &d->fields[i];
        if (f->type != PROTOBUF_C_TYPE_MESSAGE)
            continue;
        if (f->label == PROTOBUF_C_LABEL_REPEATED) {
            size_t n = *(const size_t *)(const void *)(base + f->quantifier_offset);
            ProtobufCMessage *const *v =
                *(ProtobufCMessage *const *const *)(const void *)(base + f->offset);
            for (size_t k = 0; k < n; k++)
                if (has_unknown(v[k]))
                    return 1;
            continue;
        }
        if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
            *(const uint32_t *)(const void *)(base + f->quantifier_offset) != f->id)
            continue;
        if (has_unknown(*(ProtobufCMessage *const *)(const void *)(base + f->offset)))
            return 1;
    }
    return 0;
}

/* Packs m, unpacks the result with desc, packs again: both encodings must be equal. Messages
 * that kept unknown fields (also in a nested message) are skipped: libprotobuf-c re-emits
 * those verbatim, tag 0 and all, and nothing of ours reads them. */
static void round_trip(const ProtobufCMessage *m)
{
    const ProtobufCMessageDescriptor *desc = m->descriptor;
    size_t n = protobuf_c_message_get_packed_size(m), n2;
    uint8_t *a, *b;
    ProtobufCMessage *again;

    if (has_unknown(m))
        return;
    a = malloc(n + 1);
    PT_FUZZ_CHECK(a != NULL);
    PT_FUZZ_CHECK(protobuf_c_message_pack(m, a) == n);
    again = protobuf_c_message_unpack(desc, NULL, n, a);
    PT_FUZZ_CHECK(again != NULL);
    n2 = protobuf_c_message_get_packed_size(again);
    PT_FUZZ_CHECK(n2 == n);
    b = malloc(n2 + 1);
    PT_FUZZ_CHECK(b != NULL);
    PT_FUZZ_CHECK(protobuf_c_message_pack(again, b) == n2);
    PT_FUZZ_CHECK(memcmp(a, b, n) == 0);
    protobuf_c_message_free_unpacked(again, NULL);
    free(a);
    free(b);
}

static void body(uint32_t type, const uint8_t *d, size_t n)
{
    ProtobufCMessage *m = NULL;

    switch (type) {
    case PORTOLAN__PEER_TYPE__PEER_PROPOSE: {
        Portolan__Propose *p = portolan__propose__unpack(NULL, n, d);
        Portolan__Command *c = NULL;
        if (p == NULL)
            break;
        const uint8_t *id = NULL;
        size_t id_len = 0;
        int has_id = pt_command_write_id(p->command.data, p->command.len, &id, &id_len);
        if (has_id) /* the leading id lies within the command */
            PT_FUZZ_CHECK(id_len >= 1 && id_len <= PT_COMMAND_WRITE_ID_MAX &&
                          id == p->command.data + 2 && id_len + 2 <= p->command.len);
        if (pt_command_decode(p->command.data, p->command.len, &c) == 0) {
            PT_FUZZ_CHECK(c != NULL);
            round_trip(&c->base);
            pt_command_decoded_free(c);
        }
        m = &p->base;
        break;
    }
    case PORTOLAN__PEER_TYPE__PEER_READ_INDEX:
        m = (ProtobufCMessage *)portolan__read_index__unpack(NULL, n, d);
        break;
    case PORTOLAN__PEER_TYPE__PEER_PING:
        m = (ProtobufCMessage *)portolan__ping__unpack(NULL, n, d);
        break;
    case PORTOLAN__PEER_TYPE__PEER_BLOB_WANT: {
        Portolan__BlobWant *w = portolan__blob_want__unpack(NULL, n, d);
        struct pt_digest dg;
        char text[PT_DIGEST_STR_MAX + 1];
        if (w == NULL)
            break;
        if (w->digest != NULL && pt_digest_parse(w->digest, strlen(w->digest), &dg) == 0) {
            pt_digest_format(&dg, text);
            PT_FUZZ_CHECK(strcmp(text, w->digest) == 0);
        }
        m = &w->base;
        break;
    }
    default:
        break;
    }
    if (m != NULL) {
        round_trip(m);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    /* the responses, whatever the type said */
    m = (ProtobufCMessage *)portolan__propose_result__unpack(NULL, n, d);
    if (m != NULL) {
        round_trip(m);
        protobuf_c_message_free_unpacked(m, NULL);
    }
    m = (ProtobufCMessage *)portolan__blob_chunk__unpack(NULL, n, d);
    if (m != NULL) {
        Portolan__BlobChunk *c = (Portolan__BlobChunk *)m;
        PT_FUZZ_CHECK(c->data.len <= n);
        round_trip(m);
        protobuf_c_message_free_unpacked(m, NULL);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    Portolan__PeerFrame *f;

    if (size > PT_PEERS_FRAME_MAX)
        return 0;
    f = portolan__peer_frame__unpack(NULL, size, data);
    if (f == NULL)
        return 0;
    PT_FUZZ_CHECK(f->body.len <= size);
    round_trip(&f->base);
    body(f->type, f->body.data, f->body.len);
    portolan__peer_frame__free_unpacked(f, NULL);
    return 0;
}
