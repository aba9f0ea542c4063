/*
 * varint.h - Kafka's (protobuf-style) zigzag varints, and big-endian fixed-width fields.
 * Decoders never read past @end and report malformed input instead.
 */
#ifndef SB_VARINT_H
#define SB_VARINT_H

#include <stddef.h>
#include <stdint.h>

#define SB_VARINT_MAX_BYTES 5
#define SB_VARLONG_MAX_BYTES 10

/** Write @v zigzag-encoded at @p (room for SB_VARLONG_MAX_BYTES); returns the bytes written. */
static inline size_t sb_varlong_put(unsigned char *p, int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 0;
    while (u >= 0x80) {
        p[n++] = (unsigned char)(u | 0x80);
        u >>= 7;
    }
    p[n++] = (unsigned char)u;
    return n;
}

/** Bytes sb_varlong_put() would write for @v. */
static inline size_t sb_varlong_size(int64_t v)
{
    uint64_t u = ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
    size_t n = 1;
    while (u >= 0x80) {
        u >>= 7;
        n++;
    }
    return n;
}

/**
 * sb_varlong_get - decode a zigzag varint of at most @max_bytes (5 for a varint, 10 for a
 * varlong) from *p, not reading at or past @end. Returns 0 and advances *p, or -1 when the input
 * ends early or the varint is longer than allowed.
 */
static inline int sb_varlong_get(const unsigned char **p, const unsigned char *end, int max_bytes,
                                 int64_t *out)
{
    uint64_t u = 0;
    const unsigned char *q = *p;
    /* Most fields of a record (small lengths and deltas, -1 for null) take one byte. */
    if (q < end && !(*q & 0x80)) {
        *p = q + 1;
        *out = (int64_t)(*q >> 1) ^ -(int64_t)(*q & 1);
        return 0;
    }
    for (int i = 0; i < max_bytes; i++) {
        if (q >= end)
            return -1;
        unsigned char b = *q++;
        u |= (uint64_t)(b & 0x7f) << (7 * i);
        if (!(b & 0x80)) {
            *p = q;
            *out = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
            if (max_bytes == SB_VARINT_MAX_BYTES && (*out > INT32_MAX || *out < INT32_MIN))
                return -1;
            return 0;
        }
    }
    return -1;
}

static inline void sb_be16_put(unsigned char *p, uint16_t v)
{
    p[0] = (unsigned char)(v >> 8);
    p[1] = (unsigned char)v;
}

static inline void sb_be32_put(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static inline void sb_be64_put(unsigned char *p, uint64_t v)
{
    sb_be32_put(p, (uint32_t)(v >> 32));
    sb_be32_put(p + 4, (uint32_t)v);
}

static inline uint16_t sb_be16_get(const unsigned char *p)
{
    return (uint16_t)((unsigned)p[0] << 8 | p[1]);
}

static inline uint32_t sb_be32_get(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static inline uint64_t sb_be64_get(const unsigned char *p)
{
    return (uint64_t)sb_be32_get(p) << 32 | sb_be32_get(p + 4);
}

#endif /* SB_VARINT_H */
