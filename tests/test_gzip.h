/*
 * test_gzip.h - gzip a buffer, for the tests that build compressed Kafka batches by hand.
 */
#ifndef SB_TEST_GZIP_H
#define SB_TEST_GZIP_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <zlib.h>

#include "check.h"

/** gzip @len bytes of @in into @out (@cap bytes, enough for them); returns the bytes written. */
static inline size_t test_gzip_into(const unsigned char *in, size_t len, unsigned char *out,
                                    size_t cap)
{
    z_stream zs;
    memset(&zs, 0, sizeof(zs));
    CHECK(deflateInit2(&zs, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK);
    zs.next_in = (Bytef *)(uintptr_t)in;
    zs.avail_in = (uInt)len;
    zs.next_out = out;
    zs.avail_out = (uInt)cap;
    CHECK(deflate(&zs, Z_FINISH) == Z_STREAM_END);
    size_t n = cap - zs.avail_out;
    deflateEnd(&zs);
    return n;
}

#endif /* SB_TEST_GZIP_H */
