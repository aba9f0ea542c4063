/*
 * test_record_batch.c - CRC-32C (hardware and software agree, known vectors), varints, and
 * Kafka record batches: build -> validate -> read back byte for byte; every truncation and
 * every flipped byte inside the CRC range is rejected; random garbage never crashes.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "crc32c.h"
#include "record_batch.h"
#include "varint.h"

static void test_crc32c(void)
{
    CHECK_EQ(sb_crc32c_sw(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(sb_crc32c(0, "123456789", 9), 0xE3069283u);
    CHECK_EQ(sb_crc32c(0, "", 0), 0);
    /* RFC 3720 B.4: 32 bytes of zeros -> 0x8A9136AA; 32 bytes of 0xFF -> 0x62A8AB43. */
    unsigned char buf[1100];
    memset(buf, 0, 32);
    CHECK_EQ(sb_crc32c_sw(0, buf, 32), 0x8A9136AAu);
    memset(buf, 0xff, 32);
    CHECK_EQ(sb_crc32c_sw(0, buf, 32), 0x62A8AB43u);
    for (size_t i = 0; i < sizeof(buf); i++)
        buf[i] = (unsigned char)test_mix64(i);
    /* Hardware and software agree at every length and alignment, and chain. */
    for (size_t off = 0; off < 8; off++) {
        for (size_t len = 0; len + off <= 1024; len += 1 + len / 8) {
            uint32_t sw = sb_crc32c_sw(0, buf + off, len);
            CHECK_EQ(sb_crc32c(0, buf + off, len), sw);
            if (sb_crc32c_hw_available())
                CHECK_EQ(sb_crc32c_hw(0, buf + off, len), sw);
            size_t half = len / 2;
            CHECK_EQ(sb_crc32c_sw(sb_crc32c_sw(0, buf + off, half), buf + off + half, len - half),
                     sw);
        }
    }
    /* Long inputs: the hardware version runs three blocks side by side (8 KiB, then 256-byte
     * blocks) and joins them; every length around those block sizes, at odd alignments. */
    enum { BIG = 3 * 8192 * 2 + 3 * 256 * 3 + 64 };
    unsigned char *big = malloc(BIG);
    CHECK(big);
    for (size_t i = 0; i < BIG; i++)
        big[i] = (unsigned char)test_mix64(i * 31 + 7);
    const size_t edges[] = {3 * 256, 3 * 8192, 2 * 3 * 8192, 3 * 8192 + 3 * 256};
    for (size_t e = 0; e < sizeof(edges) / sizeof(edges[0]); e++) {
        for (size_t len = edges[e] - 17; len <= edges[e] + 17 && len + 3 <= BIG; len++) {
            uint32_t sw = sb_crc32c_sw(0x12345678u, big + 3, len);
            CHECK_EQ(sb_crc32c(0x12345678u, big + 3, len), sw);
        }
    }
    for (size_t len = 0; len + 5 <= BIG; len += 997)
        CHECK_EQ(sb_crc32c(0, big + 5, len), sb_crc32c_sw(0, big + 5, len));
    free(big);
    printf("crc32c: vectors ok, hardware %s\n", sb_crc32c_hw_available() ? "present" : "absent");
}

static void test_varint(void)
{
    const int64_t values[] = {0,         1,         -1,        63,        -64,       64,
                              300,       -300,      INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN,
                              1LL << 40, -(1LL << 40)};
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        unsigned char b[SB_VARLONG_MAX_BYTES];
        size_t n = sb_varlong_put(b, values[i]);
        CHECK_EQ(n, sb_varlong_size(values[i]));
        const unsigned char *p = b;
        int64_t out;
        CHECK_EQ(sb_varlong_get(&p, b + n, SB_VARLONG_MAX_BYTES, &out), 0);
        CHECK(out == values[i]);
        CHECK(p == b + n);
        /* Every truncation is an error, never a read past the end. */
        for (size_t cut = 0; cut < n; cut++) {
            p = b;
            CHECK_EQ(sb_varlong_get(&p, b + cut, SB_VARLONG_MAX_BYTES, &out), -1);
        }
        /* As a 32-bit varint, only int32 values decode. */
        p = b;
        int rc = sb_varlong_get(&p, b + n, SB_VARINT_MAX_BYTES, &out);
        CHECK_EQ(rc, (values[i] >= INT32_MIN && values[i] <= INT32_MAX) ? 0 : -1);
    }
    /* Zigzag: 0->0, -1->1, 1->2, -2->3 (Kafka's ByteUtils). */
    unsigned char b[10];
    sb_varlong_put(b, -1);
    CHECK_EQ(b[0], 1);
    sb_varlong_put(b, 1);
    CHECK_EQ(b[0], 2);
    sb_varlong_put(b, -2);
    CHECK_EQ(b[0], 3);
    sb_varlong_put(b, 150);
    CHECK(b[0] == 0xAC && b[1] == 0x02);
}

#define RECORDS 50

static size_t build_batch(unsigned char *buf, size_t cap, int64_t base_offset)
{
    struct sb_batch_builder b;
    sb_batch_begin(&b, buf, cap);
    for (int i = 0; i < RECORDS; i++) {
        char key[16], value[300];
        int key_len = sprintf(key, "key-%d", i);
        size_t value_len = (size_t)(i * 5);
        for (size_t k = 0; k < value_len; k++)
            value[k] = (char)test_mix64((uint64_t)i * 1000 + k);
        const void *kp = (i % 7 == 3) ? NULL : key; /* some null keys */
        const void *vp = (i % 11 == 5) ? NULL : value; /* some null values */
        CHECK_EQ(sb_batch_add(&b, 1700000000000LL + i * 3, kp, kp ? (size_t)key_len : 0, vp,
                              vp ? value_len : 0),
                 0);
    }
    return sb_batch_finish(&b, base_offset, false);
}

static void check_batch_contents(const unsigned char *buf, size_t len, int64_t base_offset)
{
    struct sb_record_iter it;
    struct sb_record rec;
    const char *why = NULL;
    CHECK_EQ(sb_record_iter_init(&it, buf, len), 0);
    for (int i = 0; i < RECORDS; i++) {
        CHECK_EQ(sb_record_next(&it, &rec, &why), 1);
        CHECK_EQ(rec.offset, base_offset + i);
        CHECK_EQ(rec.timestamp_ms, 1700000000000LL + i * 3);
        char key[16], value[300];
        int key_len = sprintf(key, "key-%d", i);
        if (i % 7 == 3) {
            CHECK(rec.key == NULL && rec.key_len == -1);
        } else {
            CHECK_EQ(rec.key_len, key_len);
            CHECK_MEM(rec.key, key, (size_t)key_len);
        }
        size_t value_len = (size_t)(i * 5);
        for (size_t k = 0; k < value_len; k++)
            value[k] = (char)test_mix64((uint64_t)i * 1000 + k);
        if (i % 11 == 5) {
            CHECK(rec.value == NULL && rec.value_len == -1);
        } else {
            CHECK_EQ(rec.value_len, (int32_t)value_len);
            if (value_len)
                CHECK_MEM(rec.value, value, value_len);
        }
        CHECK_EQ(rec.header_count, 0);
    }
    CHECK_EQ(sb_record_next(&it, &rec, &why), 0);
}

static void test_batch_roundtrip(void)
{
    static unsigned char buf[64 * 1024];
    size_t len = build_batch(buf, sizeof(buf), 1000);
    struct sb_batch_info info;
    const char *why = NULL;
    CHECK_EQ(sb_batch_validate(buf, len, &info, &why), 0);
    CHECK_EQ(info.base_offset, 1000);
    CHECK_EQ(info.total_bytes, len);
    CHECK_EQ(info.record_count, RECORDS);
    CHECK_EQ(info.last_offset_delta, RECORDS - 1);
    CHECK_EQ(info.base_timestamp, 1700000000000LL);
    CHECK_EQ(info.max_timestamp, 1700000000000LL + (RECORDS - 1) * 3);
    CHECK_EQ(info.producer_id, -1);
    check_batch_contents(buf, len, 1000);
    /* baseOffset is outside the CRC: a broker can renumber a stored batch. */
    sb_batch_set_base_offset(buf, 77);
    CHECK_EQ(sb_batch_validate(buf, len, &info, &why), 0);
    check_batch_contents(buf, len, 77);
    /* A batch that does not fit is refused without damage. */
    struct sb_batch_builder b;
    unsigned char small[80];
    sb_batch_begin(&b, small, sizeof(small));
    CHECK_EQ(sb_batch_add(&b, 1, "k", 1, "v", 1), 0);
    CHECK_EQ(sb_batch_add(&b, 1, NULL, 0, buf, 100), -ENOSPC);
    CHECK_EQ(b.count, 1);
    size_t n = sb_batch_finish(&b, 5, true);
    CHECK_EQ(sb_batch_validate(small, n, &info, &why), 0);
    CHECK(info.attributes & SB_BATCH_ATTR_LOG_APPEND_TIME);
}

static void test_batch_corruption(void)
{
    static unsigned char buf[64 * 1024], copy[64 * 1024];
    size_t len = build_batch(buf, sizeof(buf), 0);
    struct sb_batch_info info;
    const char *why;
    /* Every truncation: incomplete, never accepted. */
    for (size_t cut = 0; cut < len; cut++) {
        why = NULL;
        int rc = sb_batch_validate(buf, cut, &info, &why);
        CHECK(rc == -EAGAIN || rc == -EBADMSG);
        CHECK(why != NULL);
    }
    /* Every single-bit flip from the magic byte on is caught. */
    for (size_t i = 16; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(copy, buf, len);
            copy[i] ^= (unsigned char)(1u << bit);
            why = NULL;
            CHECK(sb_batch_validate(copy, len, &info, &why) != 0);
            CHECK(why != NULL);
        }
    }
    /* A wrong batchLength is caught too (either too long for the data or a CRC mismatch). */
    for (int delta = -40; delta <= 40; delta++) {
        if (!delta)
            continue;
        memcpy(copy, buf, len);
        sb_be32_put(copy + 8, (uint32_t)((int64_t)len - 12 + delta));
        CHECK(sb_batch_validate(copy, len, &info, &why) != 0);
    }
    /* Random garbage and random mutations never crash and are never accepted. */
    for (int round = 0; round < 20000; round++) {
        size_t n = 61 + test_mix64((uint64_t)round) % 400;
        memcpy(copy, buf, len);
        for (int k = 0; k < 1 + round % 5; k++)
            copy[16 + test_mix64((uint64_t)round * 31 + (uint64_t)k) % (len - 16)] ^=
                (unsigned char)(1 + test_mix64((uint64_t)round + (uint64_t)k) % 255);
        CHECK(sb_batch_validate(copy, len, &info, &why) != 0);
        for (size_t i = 0; i < n; i++)
            copy[i] = (unsigned char)test_mix64((uint64_t)round * 7919 + i);
        copy[16] = SB_BATCH_MAGIC;
        sb_be32_put(copy + 8, (uint32_t)(n - 12));
        struct sb_record_iter it;
        struct sb_record rec;
        (void)sb_batch_validate(copy, n, &info, &why);
        /* The record iterator on its own (no CRC check) must stay in bounds as well. */
        copy[21] = 0;
        copy[22] = 0;
        if (sb_record_iter_init(&it, copy, n) == 0)
            while (sb_record_next(&it, &rec, &why) == 1)
                ;
    }
}

int main(void)
{
    test_crc32c();
    test_varint();
    test_batch_roundtrip();
    test_batch_corruption();
    printf("test_record_batch: all passed\n");
    return 0;
}
