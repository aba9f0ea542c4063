/*
 * test_compression.c - sb_decompress() and sb_record_iter_init_any(): each codec's output made
 * by its own library comes back byte for byte (snappy both raw and in the Java client's
 * framing, gzip with two members); truncated and corrupted inputs, an unknown codec and an
 * output over the limit give their errors; a compressed batch's records iterate like an
 * uncompressed batch's.
 */
#include <errno.h>
#include <lz4frame.h>
#include <snappy-c.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zstd.h>

#include "check.h"
#include "test_gzip.h"
#include "compression.h"
#include "record_batch.h"

#define PLAIN_BYTES 200000

static unsigned char plain[PLAIN_BYTES];

/* Compresses @len bytes of plain with @codec into out (cap bytes); returns the length. */
static size_t compress_with(int codec, const unsigned char *in, size_t len, unsigned char *out,
                            size_t cap)
{
    switch (codec) {
    case SB_CODEC_GZIP: return test_gzip_into(in, len, out, cap);
    case SB_CODEC_SNAPPY: {
        size_t n = cap;
        CHECK(snappy_compress((const char *)in, len, (char *)out, &n) == SNAPPY_OK);
        return n;
    }
    case SB_CODEC_LZ4: {
        size_t n = LZ4F_compressFrame(out, cap, in, len, NULL);
        CHECK(!LZ4F_isError(n));
        return n;
    }
    case SB_CODEC_ZSTD: {
        size_t n = ZSTD_compress(out, cap, in, len, 3);
        CHECK(!ZSTD_isError(n));
        return n;
    }
    }
    CHECK(0);
    return 0;
}

static void test_round_trips(void)
{
    unsigned char *z = malloc(2 * PLAIN_BYTES), *buf = NULL;
    size_t cap = 0;
    CHECK(z);
    for (int codec = SB_CODEC_GZIP; codec <= SB_CODEC_ZSTD; codec++) {
        size_t zn = compress_with(codec, plain, PLAIN_BYTES, z, 2 * PLAIN_BYTES);
        const char *why = NULL;
        ssize_t n = sb_decompress(codec, z, zn, &buf, &cap, SB_DECOMPRESS_MAX_BYTES, &why);
        if (n != PLAIN_BYTES)
            fprintf(stderr, "%s: %zd (%s)\n", sb_codec_name(codec), n, why ? why : "");
        CHECK_EQ(n, PLAIN_BYTES);
        CHECK_MEM(buf, plain, PLAIN_BYTES);
        /* Every truncation is an error, never a crash or a silent short result. */
        for (size_t cut = 0; cut < zn; cut += zn / 97 + 1) {
            n = sb_decompress(codec, z, cut, &buf, &cap, SB_DECOMPRESS_MAX_BYTES, &why);
            CHECK(n == -EBADMSG || (codec == SB_CODEC_SNAPPY && n < 0));
            CHECK(why);
        }
        /* A limit below the output. */
        n = sb_decompress(codec, z, zn, &buf, &cap, PLAIN_BYTES / 2, &why);
        CHECK_EQ(n, -EMSGSIZE);
        /* Flipped bytes in the middle: an error, or (the codec cannot tell) bytes that differ;
         * never out of bounds (ASan watches). */
        z[zn / 2] ^= 0x5a;
        z[zn / 3] ^= 0xa5;
        n = sb_decompress(codec, z, zn, &buf, &cap, SB_DECOMPRESS_MAX_BYTES, &why);
        CHECK(n < 0 || n != PLAIN_BYTES || memcmp(buf, plain, PLAIN_BYTES) != 0);
    }
    const char *why = NULL;
    CHECK_EQ(sb_decompress(7, plain, 10, &buf, &cap, SB_DECOMPRESS_MAX_BYTES, &why), -EOPNOTSUPP);
    CHECK_EQ(sb_decompress(SB_CODEC_NONE, plain, 10, &buf, &cap, SB_DECOMPRESS_MAX_BYTES, &why),
             -EOPNOTSUPP);
    free(z);
    free(buf);
}

static void put_be32(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

/* The Java client's snappy framing: header, then length-prefixed blocks; gzip: two members. */
static void test_framed_forms(void)
{
    unsigned char *z = malloc(2 * PLAIN_BYTES + 64), *buf = NULL;
    size_t cap = 0, pos = 16;
    CHECK(z);
    static const unsigned char header[16] = {0x82, 'S', 'N', 'A', 'P', 'P', 'Y', 0,
                                             0,    0,   0,   1,   0,   0,   0,   1};
    memcpy(z, header, sizeof(header));
    const size_t block = 32768;
    for (size_t at = 0; at < PLAIN_BYTES; at += block) {
        size_t len = PLAIN_BYTES - at < block ? PLAIN_BYTES - at : block;
        size_t n = 2 * PLAIN_BYTES + 64 - pos - 4;
        CHECK(snappy_compress((const char *)plain + at, len, (char *)z + pos + 4, &n) ==
              SNAPPY_OK);
        put_be32(z + pos, (uint32_t)n);
        pos += 4 + n;
    }
    const char *why = NULL;
    ssize_t n = sb_decompress(SB_CODEC_SNAPPY, z, pos, &buf, &cap, SB_DECOMPRESS_MAX_BYTES, &why);
    CHECK_EQ(n, PLAIN_BYTES);
    CHECK_MEM(buf, plain, PLAIN_BYTES);
    /* A block length running past the data. */
    put_be32(z + 16, 0x7fffffff);
    CHECK_EQ(sb_decompress(SB_CODEC_SNAPPY, z, pos, &buf, &cap, SB_DECOMPRESS_MAX_BYTES, &why),
             -EBADMSG);

    size_t half = PLAIN_BYTES / 2;
    size_t a = test_gzip_into(plain, half, z, PLAIN_BYTES);
    size_t b = test_gzip_into(plain + half, PLAIN_BYTES - half, z + a, PLAIN_BYTES);
    n = sb_decompress(SB_CODEC_GZIP, z, a + b, &buf, &cap, SB_DECOMPRESS_MAX_BYTES, &why);
    CHECK_EQ(n, PLAIN_BYTES);
    CHECK_MEM(buf, plain, PLAIN_BYTES);
    free(z);
    free(buf);
}

/* A batch of 100 records, its records section compressed with each codec: the iterator gives
 * the same records as for the uncompressed batch. */
static void test_compressed_batch(void)
{
    unsigned char batch[65536], zbatch[65536 + 1024], *buf = NULL;
    size_t cap = 0;
    struct sb_batch_builder b;
    sb_batch_begin(&b, batch, sizeof(batch));
    char key[32], value[200];
    for (int i = 0; i < 100; i++) {
        int kl = snprintf(key, sizeof(key), "k%d", i);
        memset(value, 'a' + i % 26, sizeof(value));
        CHECK_EQ(sb_batch_add(&b, 1700000000000 + i, key, (size_t)kl, value, 50 + (size_t)i),
                 0);
    }
    size_t total = sb_batch_finish(&b, 1000, false);
    for (int codec = SB_CODEC_GZIP; codec <= SB_CODEC_ZSTD; codec++) {
        memcpy(zbatch, batch, SB_BATCH_HEADER_BYTES);
        size_t zn = compress_with(codec, batch + SB_BATCH_HEADER_BYTES,
                                  total - SB_BATCH_HEADER_BYTES, zbatch + SB_BATCH_HEADER_BYTES,
                                  sizeof(zbatch) - SB_BATCH_HEADER_BYTES);
        size_t ztotal = SB_BATCH_HEADER_BYTES + zn;
        put_be32(zbatch + SB_BATCH_LENGTH_OFFSET, (uint32_t)(ztotal - SB_BATCH_LOG_OVERHEAD));
        zbatch[SB_BATCH_CRC_START + 1] = (unsigned char)codec; /* attributes, low byte */
        struct sb_record_iter plain_it, z_it;
        struct sb_record r1, r2;
        const char *why = NULL;
        CHECK_EQ(sb_record_iter_init(&plain_it, batch, total), 0);
        CHECK_EQ(sb_record_iter_init(&z_it, zbatch, ztotal), -EOPNOTSUPP);
        CHECK_EQ(sb_record_iter_init_any(&z_it, zbatch, ztotal, &buf, &cap, &why), 0);
        int count = 0;
        while (sb_record_next(&plain_it, &r1, &why) == 1) {
            CHECK_EQ(sb_record_next(&z_it, &r2, &why), 1);
            CHECK_EQ(r1.offset, r2.offset);
            CHECK_EQ(r1.timestamp_ms, r2.timestamp_ms);
            CHECK(r1.key_len == r2.key_len && !memcmp(r1.key, r2.key, (size_t)r1.key_len));
            CHECK(r1.value_len == r2.value_len &&
                  !memcmp(r1.value, r2.value, (size_t)r1.value_len));
            count++;
        }
        CHECK_EQ(count, 100);
        CHECK_EQ(sb_record_next(&z_it, &r2, &why), 0);
        /* Corrupt compressed records: an error from the iterator set-up or the iteration. */
        zbatch[SB_BATCH_HEADER_BYTES + zn / 2] ^= 0xff;
        int rc = sb_record_iter_init_any(&z_it, zbatch, ztotal, &buf, &cap, &why);
        int seen = 0;
        if (rc == 0)
            while ((rc = sb_record_next(&z_it, &r2, &why)) == 1)
                seen++;
        CHECK(rc <= 0 && seen <= 100);
    }
    free(buf);
}

int main(void)
{
    /* Compressible but not trivial: text with a counter. */
    for (size_t i = 0, n = 0; i < PLAIN_BYTES; i += n) {
        char line[64];
        n = (size_t)snprintf(line, sizeof(line), "event %zu: payment of %zu cents; ", i / 30,
                             i * 7 % 10007);
        if (n > PLAIN_BYTES - i)
            n = PLAIN_BYTES - i;
        memcpy(plain + i, line, n);
    }
    test_round_trips();
    test_framed_forms();
    test_compressed_batch();
    printf("test_compression: all passed\n");
    return 0;
}
