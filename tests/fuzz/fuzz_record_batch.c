/*
 * fuzz_record_batch.c - record batches from disk or the network: validate, then walk every
 * record and header of whatever validates, and walk records without the CRC check too (the
 * iterator must be safe on its own), compressed ones through the decompressors (gzip, snappy,
 * lz4, zstd: sb_record_iter_init_any()).
 */
#include <errno.h>
#include <string.h>

#include <stdlib.h>

#include "compression.h"
#include "fuzz.h"
#include "record_batch.h"

static void walk(const uint8_t *data, size_t size)
{
    struct sb_record_iter it;
    struct sb_record rec;
    const char *why;
    /* The decompressed records of the previous input stay allocated between runs. */
    static unsigned char *inflated;
    static size_t inflated_cap;
    if (sb_record_iter_init_any(&it, data, size, &inflated, &inflated_cap, &why))
        return;
    while (sb_record_next(&it, &rec, &why) == 1) {
        const unsigned char *p = rec.headers, *end = rec.headers + rec.header_bytes;
        const unsigned char *k, *v;
        int32_t kl, vl;
        while (sb_record_header_next(&p, end, &k, &kl, &v, &vl) == 1)
            ;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct sb_batch_info info;
    const char *why;
    if (sb_batch_validate(data, size, &info, &why) == 0)
        walk(data, info.total_bytes);
    if (sb_batch_parse_header(data, size, &info, &why) == 0)
        walk(data, info.total_bytes);
    return 0;
}

size_t fuzz_seed(unsigned char *buf, size_t cap)
{
    struct sb_batch_builder b;
    sb_batch_begin(&b, buf, cap);
    sb_batch_add(&b, 1700000000000, "key", 3, "value", 5);
    sb_batch_add(&b, 1700000000001, NULL, 0, "second", 6);
    sb_batch_add(&b, 1700000000002, "k", 1, NULL, 0);
    return sb_batch_finish(&b, 42, false);
}
