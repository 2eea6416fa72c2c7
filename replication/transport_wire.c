/*
 * transport_wire.c - the handshake's messages as bytes: header checks and HELLO / WELCOME body
 * layouts (the format is drawn at the top of transport_handshake.c).
 *
 * Role: everything about a handshake message that depends on its bytes alone, apart from the
 * connection state machine, so that a libFuzzer driver (tests/fuzz/fuzz_handshake.c) drives
 * exactly the code a stranger's bytes reach first. Membership, cluster id and certificate
 * checks stay in transport_handshake.c.
 * Invariants: every read is within the length given; nothing is allocated.
 * Threads: none of its own; pure functions.
 */
#include "transport.h"

#include <stdbool.h>
#include <string.h>

#include "bytes.h"
#include "log.h"
#include "transport_int.h"

_Static_assert(sizeof(MAGIC) - 1 == MAGIC_LEN, "magic is 8 bytes");
_Static_assert(PT_CLUSTER_ADDRESS_MAX <= UINT16_MAX, "address length fits its field");

const char *transport_check_header(const unsigned char *p, int type, size_t *body_len,
                                   unsigned char *flags, int *level)
{
    size_t min = type == TYPE_HELLO ? HELLO_FIXED + 2 : WELCOME_FIXED + 1;
    size_t max = type == TYPE_HELLO ? HELLO_BODY_MAX : WELCOME_FIXED + PT_CLUSTER_ID_MAX;
    uint32_t len;

    *level = PT_LOG_DEBUG;
    if (memcmp(p, MAGIC, MAGIC_LEN) != 0)
        return "bad magic";
    *level = PT_LOG_WARN;
    if (pt_get_be16(p + 8) != VERSION)
        return "unsupported protocol version";
    if (p[10] != type)
        return "unexpected message type";
    if ((p[11] & ~FLAGS_KNOWN) != 0 || (p[11] & (FLAG_PEER | FLAG_BULK)) == FLAG_BULK ||
        ((p[11] & FLAG_RELAY) && p[11] != FLAG_RELAY))
        return "unknown flags";
    len = pt_get_be32(p + 12);
    if (len < min || len > max)
        return "bad body length";
    *body_len = len;
    *flags = p[11];
    return NULL;
}

const char *transport_parse_hello(const unsigned char *p, size_t len, struct transport_hello *h)
{
    char host[PT_HOST_MAX + 1];
    unsigned port;
    size_t clen, alen;

    memset(h, 0, sizeof(*h));
    if (len < HELLO_FIXED)
        return "malformed hello";
    h->id = pt_get_be64(p);
    clen = pt_get_be16(p + 8);
    alen = pt_get_be16(p + 10);
    if (clen == 0 || clen > PT_CLUSTER_ID_MAX || alen == 0 || alen > PT_CLUSTER_ADDRESS_MAX ||
        HELLO_FIXED + clen + alen != len)
        return "malformed hello";
    h->cluster = p + HELLO_FIXED;
    h->cluster_len = clen;
    if (h->id == 0)
        return "invalid server id";
    if (memchr(p + HELLO_FIXED + clen, '\0', alen) != NULL)
        return "invalid address";
    memcpy(h->address, p + HELLO_FIXED + clen, alen);
    h->address[alen] = '\0';
    if (pt_transport_parse_address(h->address, host, sizeof(host), &port) != 0)
        return "invalid address";
    return NULL;
}

const char *transport_parse_welcome(const unsigned char *p, size_t len, uint64_t *id,
                                    const unsigned char **cluster, size_t *cluster_len)
{
    size_t clen;

    if (len < WELCOME_FIXED)
        return "malformed welcome";
    clen = pt_get_be16(p + 8);
    if (clen == 0 || WELCOME_FIXED + clen != len)
        return "malformed welcome";
    *id = pt_get_be64(p);
    *cluster = p + WELCOME_FIXED;
    *cluster_len = clen;
    return NULL;
}
