/*
 * fuzz_handshake.c - libFuzzer driver for the raft transport's handshake messages
 * (replication/transport_wire.c: transport_check_header, transport_parse_hello,
 * transport_parse_welcome), the first bytes a stranger on the raft port reaches.
 *
 * Input: byte 0 (low 2 bits) picks what the rest is: 0 a HELLO header, 1 a WELCOME header,
 * 2 a HELLO body, 3 a WELCOME body. Checks: an accepted header has the magic, version 1, the
 * type asked for, known flags (BULK only with PEER) and a body length within the type's
 * bounds; an accepted HELLO's lengths add up to the body, its cluster id lies inside the body,
 * its address is the body's last bytes, NUL-free and NUL-terminated, its server id non-zero;
 * an accepted WELCOME's cluster id lies inside the body and ends it.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "bytes.h"
#include "fuzz_check.h"
#include "transport_int.h"

static void header(const uint8_t *d, size_t n, int type)
{
    unsigned char p[HEADER_LEN] = {0};
    size_t body = 0;
    unsigned char flags = 0;
    int level = 0;

    memcpy(p, d, n < HEADER_LEN ? n : HEADER_LEN);
    if (transport_check_header(p, type, &body, &flags, &level) != NULL)
        return;
    PT_FUZZ_CHECK(memcmp(p, MAGIC, MAGIC_LEN) == 0);
    PT_FUZZ_CHECK(pt_get_be16(p + 8) == VERSION && p[10] == type && flags == p[11]);
    PT_FUZZ_CHECK((flags & ~FLAGS_KNOWN) == 0 && (flags & (FLAG_PEER | FLAG_BULK)) != FLAG_BULK);
    PT_FUZZ_CHECK(body == pt_get_be32(p + 12));
    if (type == TYPE_HELLO)
        PT_FUZZ_CHECK(body > HELLO_FIXED && body <= HELLO_BODY_MAX);
    else
        PT_FUZZ_CHECK(body > WELCOME_FIXED && body <= WELCOME_FIXED + PT_CLUSTER_ID_MAX);
}

static void hello(const uint8_t *d, size_t n)
{
    struct transport_hello h;
    size_t alen;

    if (transport_parse_hello(d, n, &h) != NULL)
        return;
    PT_FUZZ_CHECK(h.id != 0 && h.id == pt_get_be64(d));
    PT_FUZZ_CHECK(h.cluster == d + HELLO_FIXED && h.cluster_len == pt_get_be16(d + 8));
    PT_FUZZ_CHECK(h.cluster_len >= 1 && h.cluster_len <= PT_CLUSTER_ID_MAX);
    alen = strnlen(h.address, sizeof(h.address));
    PT_FUZZ_CHECK(alen < sizeof(h.address) && alen == pt_get_be16(d + 10));
    PT_FUZZ_CHECK(HELLO_FIXED + h.cluster_len + alen == n);
    PT_FUZZ_CHECK(memcmp(h.address, d + HELLO_FIXED + h.cluster_len, alen) == 0);
}

static void welcome(const uint8_t *d, size_t n)
{
    uint64_t id = 0;
    const unsigned char *cluster = NULL;
    size_t clen = 0;

    if (transport_parse_welcome(d, n, &id, &cluster, &clen) != NULL)
        return;
    PT_FUZZ_CHECK(id == pt_get_be64(d) && cluster == d + WELCOME_FIXED);
    PT_FUZZ_CHECK(clen >= 1 && WELCOME_FIXED + clen == n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    switch (data[0] & 3) {
    case 0:
        header(data + 1, size - 1, TYPE_HELLO);
        break;
    case 1:
        header(data + 1, size - 1, TYPE_WELCOME);
        break;
    case 2:
        hello(data + 1, size - 1);
        break;
    default:
        welcome(data + 1, size - 1);
        break;
    }
    return 0;
}
