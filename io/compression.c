/*
 * compression.c - decompressing Kafka batch records with zlib, snappy, lz4 and zstd; see
 * compression.h.
 */
#include "compression.h"

#include <errno.h>
#include <limits.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>
#include <zstd.h>

const char *sb_codec_name(int codec)
{
    switch (codec) {
    case SB_CODEC_NONE: return "none";
    case SB_CODEC_GZIP: return "gzip";
    case SB_CODEC_SNAPPY: return "snappy";
    case SB_CODEC_LZ4: return "lz4";
    case SB_CODEC_ZSTD: return "zstd";
    default: return "unknown";
    }
}

/* Make *buf hold at least @need bytes (doubling, from 64 KiB, never above @max_out).
 * Returns 0, -EMSGSIZE or -ENOMEM. */
static int out_reserve(unsigned char **buf, size_t *cap, size_t need, size_t max_out)
{
    if (need <= *cap)
        return 0;
    if (need > max_out)
        return -EMSGSIZE;
    size_t n = *cap < 65536 ? 65536 : *cap;
    while (n < need)
        n = n > SIZE_MAX / 2 ? need : n * 2;
    if (n > max_out)
        n = max_out;
    unsigned char *p = realloc(*buf, n);
    if (!p)
        return -ENOMEM;
    *buf = p;
    *cap = n;
    return 0;
}

/* Room to write more (*room > 0 bytes from @used): grow when the buffer is full; -EMSGSIZE
 * once @max_out bytes are written (a buffer grown larger by an earlier call counts no more). */
static int out_more(unsigned char **buf, size_t *cap, size_t used, size_t max_out, size_t *room)
{
    if (used >= max_out)
        return -EMSGSIZE;
    if (used >= *cap) {
        int rc = out_reserve(buf, cap, used + 1, max_out);
        if (rc)
            return rc;
    }
    *room = (*cap < max_out ? *cap : max_out) - used;
    return 0;
}

static ssize_t gunzip(const unsigned char *in, size_t in_len, unsigned char **buf, size_t *cap,
                      size_t max_out, const char **why)
{
    if (in_len > UINT_MAX) {
        *why = "gzip input larger than zlib takes at once";
        return -EMSGSIZE;
    }
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    /* 15 + 32: a gzip (or zlib) header, detected. */
    if (inflateInit2(&zs, 15 + 32) != Z_OK)
        return -ENOMEM;
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)in_len;
    size_t out = 0;
    ssize_t rc = 0;
    for (;;) {
        size_t room;
        rc = out_more(buf, cap, out, max_out, &room);
        if (rc)
            break;
        zs.next_out = *buf + out;
        zs.avail_out = room > UINT_MAX ? UINT_MAX : (uInt)room;
        const uInt before = zs.avail_out;
        int z = inflate(&zs, Z_NO_FLUSH);
        out += before - zs.avail_out;
        if (z == Z_STREAM_END) {
            if (zs.avail_in == 0)
                break;
            /* Another gzip member follows (Java's GZIPInputStream reads them all). */
            if (inflateReset(&zs) != Z_OK) {
                rc = -ENOMEM;
                break;
            }
            continue;
        }
        if (z == Z_OK)
            continue;
        if (z == Z_BUF_ERROR && zs.avail_out == 0)
            continue; /* the output is full: grow it */
        rc = z == Z_MEM_ERROR ? -ENOMEM : -EBADMSG;
        *why = z == Z_BUF_ERROR ? "gzip data truncated" : "corrupt gzip data";
        break;
    }
    inflateEnd(&zs);
    return rc ? rc : (ssize_t)out;
}

/* One raw snappy block, appended at *used. */
static int unsnappy_block(const unsigned char *in, size_t in_len, unsigned char **buf,
                          size_t *cap, size_t *used, size_t max_out, const char **why)
{
    size_t n;
    if (snappy_uncompressed_length((const char *)in, in_len, &n) != SNAPPY_OK) {
        *why = "corrupt snappy data";
        return -EBADMSG;
    }
    if (n > max_out - *used) {
        *why = "snappy data larger than the limit";
        return -EMSGSIZE;
    }
    int rc = out_reserve(buf, cap, *used + n, max_out);
    if (rc)
        return rc;
    size_t got = n;
    if (snappy_uncompress((const char *)in, in_len, (char *)*buf + *used, &got) != SNAPPY_OK ||
        got != n) {
        *why = "corrupt snappy data";
        return -EBADMSG;
    }
    *used += n;
    return 0;
}

static ssize_t unsnappy(const unsigned char *in, size_t in_len, unsigned char **buf, size_t *cap,
                        size_t max_out, const char **why)
{
    /* The Java client's framing (xerial snappy-java): a 16-byte header (magic, version,
     * compatible version), then blocks each preceded by its big-endian 32-bit length. */
    static const unsigned char xerial_magic[8] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0};
    size_t out = 0;
    if (in_len < 16 || memcmp(in, xerial_magic, sizeof(xerial_magic)) != 0) {
        int rc = unsnappy_block(in, in_len, buf, cap, &out, max_out, why);
        return rc ? rc : (ssize_t)out;
    }
    size_t pos = 16;
    while (pos < in_len) {
        if (in_len - pos < 4) {
            *why = "snappy frame length truncated";
            return -EBADMSG;
        }
        uint32_t len = (uint32_t)in[pos] << 24 | (uint32_t)in[pos + 1] << 16 |
                       (uint32_t)in[pos + 2] << 8 | in[pos + 3];
        pos += 4;
        if (len > in_len - pos) {
            *why = "snappy frame longer than the data";
            return -EBADMSG;
        }
        int rc = unsnappy_block(in + pos, len, buf, cap, &out, max_out, why);
        if (rc)
            return rc;
        pos += len;
    }
    return (ssize_t)out;
}

static ssize_t unlz4(const unsigned char *in, size_t in_len, unsigned char **buf, size_t *cap,
                     size_t max_out, const char **why)
{
    LZ4F_dctx *ctx;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&ctx, LZ4F_VERSION)))
        return -ENOMEM;
    size_t pos = 0, out = 0;
    ssize_t rc = 0;
    for (;;) {
        size_t dst, src = in_len - pos;
        rc = out_more(buf, cap, out, max_out, &dst);
        if (rc)
            break;
        size_t hint = LZ4F_decompress(ctx, *buf + out, &dst, in + pos, &src, NULL);
        if (LZ4F_isError(hint)) {
            *why = "corrupt lz4 data";
            rc = -EBADMSG;
            break;
        }
        pos += src;
        out += dst;
        if (hint == 0 && pos == in_len)
            break; /* the (last) frame is complete */
        if (src == 0 && dst == 0) {
            /* Room to write and nothing more to read, yet the frame is not complete. */
            *why = "lz4 data truncated";
            rc = -EBADMSG;
            break;
        }
    }
    LZ4F_freeDecompressionContext(ctx);
    return rc ? rc : (ssize_t)out;
}

static ssize_t unzstd(const unsigned char *in, size_t in_len, unsigned char **buf, size_t *cap,
                      size_t max_out, const char **why)
{
    ZSTD_DCtx *ctx = ZSTD_createDCtx();
    if (!ctx)
        return -ENOMEM;
    ZSTD_inBuffer ib = {in, in_len, 0};
    size_t out = 0;
    ssize_t rc = 0;
    for (;;) {
        size_t room;
        rc = out_more(buf, cap, out, max_out, &room);
        if (rc)
            break;
        ZSTD_outBuffer ob = {*buf, out + room, out};
        size_t hint = ZSTD_decompressStream(ctx, &ob, &ib);
        if (ZSTD_isError(hint)) {
            *why = "corrupt zstd data";
            rc = -EBADMSG;
            break;
        }
        const size_t wrote = ob.pos - out;
        out = ob.pos;
        if (hint == 0 && ib.pos == ib.size)
            break; /* the (last) frame is complete and flushed */
        if (ib.pos == ib.size && wrote == 0 && ob.pos < ob.size) {
            *why = "zstd data truncated";
            rc = -EBADMSG;
            break;
        }
    }
    ZSTD_freeDCtx(ctx);
    return rc ? rc : (ssize_t)out;
}

ssize_t sb_decompress(int codec, const void *in, size_t in_len, unsigned char **buf, size_t *cap,
                      size_t max_out, const char **why)
{
    const char *ignored;
    if (!why)
        why = &ignored;
    *why = NULL;
    ssize_t rc;
    switch (codec) {
    case SB_CODEC_GZIP: rc = gunzip(in, in_len, buf, cap, max_out, why); break;
    case SB_CODEC_SNAPPY: rc = unsnappy(in, in_len, buf, cap, max_out, why); break;
    case SB_CODEC_LZ4: rc = unlz4(in, in_len, buf, cap, max_out, why); break;
    case SB_CODEC_ZSTD: rc = unzstd(in, in_len, buf, cap, max_out, why); break;
    default: *why = "unknown compression codec"; return -EOPNOTSUPP;
    }
    if (rc == -EMSGSIZE && !*why)
        *why = "decompressed records larger than the limit";
    if (rc == -ENOMEM && !*why)
        *why = "out of memory";
    return rc;
}

int sb_record_iter_init_any(struct sb_record_iter *it, const void *batch, size_t len,
                            unsigned char **buf, size_t *cap, const char **why)
{
    struct sb_batch_info info;
    const char *ignored;
    if (!why)
        why = &ignored;
    int rc = sb_batch_parse_header(batch, len, &info, why);
    if (rc)
        return rc == -EAGAIN ? -EBADMSG : rc;
    const int codec = info.attributes & SB_BATCH_ATTR_COMPRESSION_MASK;
    if (codec == SB_CODEC_NONE)
        return sb_record_iter_init(it, batch, len);
    ssize_t n = sb_decompress(codec, (const unsigned char *)batch + SB_BATCH_HEADER_BYTES,
                              info.total_bytes - SB_BATCH_HEADER_BYTES, buf, cap,
                              SB_DECOMPRESS_MAX_BYTES, why);
    if (n < 0)
        return (int)n;
    return sb_record_iter_init_records(it, batch, len, *buf, (size_t)n);
}

int sb_batch_validate_compressed(const void *batch, size_t len, unsigned char **buf,
                                 size_t *cap, const char **why)
{
    struct sb_batch_info info;
    const char *ignored;
    if (!why)
        why = &ignored;
    int rc = sb_batch_parse_header(batch, len, &info, why);
    if (rc)
        return rc == -EAGAIN ? -EBADMSG : rc;
    if (!(info.attributes & SB_BATCH_ATTR_COMPRESSION_MASK))
        return 0;
    struct sb_record_iter it;
    rc = sb_record_iter_init_any(&it, batch, len, buf, cap, why);
    if (rc)
        return rc;
    return sb_record_iter_validate(&it, why);
}
