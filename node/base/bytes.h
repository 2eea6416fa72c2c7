/*
 * bytes.h - fixed-width integers written to and read from byte buffers, in either byte order.
 *
 * Every stored or transmitted format of the node spells out its byte order instead of dumping
 * structs, so the bytes are the same on every architecture: the metadata store's values and
 * snapshot stream and the upload session record are little-endian, keys that must sort by
 * number (region ids) big-endian. These helpers are the one place the shifts are written.
 * Each reads or writes exactly 2, 4 or 8 bytes at p (borrowed, any alignment); bounds are the
 * caller's.
 */
#ifndef PT_BYTES_H
#define PT_BYTES_H

#include <stdint.h>

static inline void pt_put_le16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static inline void pt_put_le32(unsigned char *p, uint32_t v)
{
    pt_put_le16(p, (uint16_t)v);
    pt_put_le16(p + 2, (uint16_t)(v >> 16));
}

static inline void pt_put_le64(unsigned char *p, uint64_t v)
{
    pt_put_le32(p, (uint32_t)v);
    pt_put_le32(p + 4, (uint32_t)(v >> 32));
}

static inline uint16_t pt_get_le16(const unsigned char *p)
{
    return (uint16_t)(p[0] | (p[1] << 8));
}

static inline uint32_t pt_get_le32(const unsigned char *p)
{
    return pt_get_le16(p) | ((uint32_t)pt_get_le16(p + 2) << 16);
}

static inline uint64_t pt_get_le64(const unsigned char *p)
{
    return pt_get_le32(p) | ((uint64_t)pt_get_le32(p + 4) << 32);
}

static inline void pt_put_be16(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static inline void pt_put_be32(unsigned char *p, uint32_t v)
{
    pt_put_be16(p, (uint16_t)(v >> 16));
    pt_put_be16(p + 2, (uint16_t)v);
}

static inline void pt_put_be64(unsigned char *p, uint64_t v)
{
    pt_put_be32(p, (uint32_t)(v >> 32));
    pt_put_be32(p + 4, (uint32_t)v);
}

static inline uint16_t pt_get_be16(const unsigned char *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static inline uint32_t pt_get_be32(const unsigned char *p)
{
    return ((uint32_t)pt_get_be16(p) << 16) | pt_get_be16(p + 2);
}

static inline uint64_t pt_get_be64(const unsigned char *p)
{
    return ((uint64_t)pt_get_be32(p) << 32) | pt_get_be32(p + 4);
}

#endif
