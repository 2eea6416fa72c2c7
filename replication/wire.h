/*
 * wire.h - big-endian integers in the replication wire formats (private to replication/).
 *
 * Both formats that travel on the raft port write their integers big-endian: the handshake's
 * header and bodies (transport_handshake.c) and the length prefix of every peer frame
 * (peer_channel.c). They share these helpers so the byte order is written down once.
 * Each reads or writes exactly 2, 4 or 8 bytes at p (borrowed); bounds are the caller's.
 */
#ifndef PT_WIRE_H
#define PT_WIRE_H

#include <stdint.h>

static inline void wire_put16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static inline void wire_put32(unsigned char *p, uint32_t v)
{
    wire_put16(p, (uint16_t)(v >> 16));
    wire_put16(p + 2, (uint16_t)v);
}

static inline void wire_put64(unsigned char *p, uint64_t v)
{
    wire_put32(p, (uint32_t)(v >> 32));
    wire_put32(p + 4, (uint32_t)v);
}

static inline uint16_t wire_get16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t wire_get32(const unsigned char *p)
{
    return ((uint32_t)wire_get16(p) << 16) | wire_get16(p + 2);
}

static inline uint64_t wire_get64(const unsigned char *p)
{
    return ((uint64_t)wire_get32(p) << 32) | wire_get32(p + 4);
}

#endif
