/*
 * test_kafka_codec.c - the Kafka wire primitives: every type round-trips; every truncation of a
 * message is an error and never a read past the end; array lengths larger than the bytes left
 * are refused; a request header as librdkafka sends it (ApiVersions v3, flexible) parses; the
 * ApiVersions response parses back in every version we answer, with the advertised table.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/uio.h>

#include "check.h"
#include "kafka_admin.h"
#include "kafka_codec.h"
#include "kafka_fetch.h"
#include "kafka_framer.h"
#include "kafka_list_offsets.h"
#include "kafka_metadata.h"
#include "kafka_produce.h"
#include "record_batch.h"

static void write_sample(struct sb_kwriter *w)
{
    sb_kw_i8(w, -5);
    sb_kw_i16(w, -12345);
    sb_kw_i32(w, 0x12345678);
    sb_kw_i64(w, -0x123456789abcLL);
    sb_kw_uvarint(w, 300);
    sb_kw_string(w, "topic-a", -1);
    sb_kw_string(w, NULL, 0);
    sb_kw_compact_string(w, "compact", -1);
    sb_kw_compact_string(w, NULL, 0);
    sb_kw_bytes(w, "\x00\x01\x02", 3);
    sb_kw_bytes(w, NULL, 0);
    sb_kw_array_len(w, 2);
    sb_kw_i32(w, 7);
    sb_kw_i32(w, 8);
    sb_kw_compact_array_len(w, 1);
    sb_kw_i16(w, 9);
    sb_kw_empty_tags(w);
}

/* Read the sample back; returns the reader's error. */
static int read_sample(const unsigned char *buf, size_t len, bool check_values)
{
    struct sb_kreader r;
    sb_kreader_init(&r, buf, len);
    int8_t a = sb_kr_i8(&r);
    int16_t b = sb_kr_i16(&r);
    int32_t c = sb_kr_i32(&r);
    int64_t d = sb_kr_i64(&r);
    uint32_t e = sb_kr_uvarint(&r);
    struct sb_kslice s1 = sb_kr_string(&r), s2 = sb_kr_string(&r);
    struct sb_kslice s3 = sb_kr_compact_string(&r), s4 = sb_kr_compact_string(&r);
    struct sb_kslice b1 = sb_kr_bytes(&r), b2 = sb_kr_bytes(&r);
    int32_t n = sb_kr_array_len(&r, 4);
    int32_t x = sb_kr_i32(&r), y = sb_kr_i32(&r);
    int32_t m = sb_kr_compact_array_len(&r, 2);
    int16_t z = sb_kr_i16(&r);
    sb_kr_skip_tagged_fields(&r);
    if (check_values) {
        CHECK_EQ(r.error, 0);
        CHECK_EQ(a, -5);
        CHECK_EQ(b, -12345);
        CHECK_EQ(c, 0x12345678);
        CHECK(d == -0x123456789abcLL);
        CHECK_EQ(e, 300);
        CHECK(s1.len == 7 && !memcmp(s1.ptr, "topic-a", 7));
        CHECK(s2.ptr == NULL && s2.len == -1);
        CHECK(s3.len == 7 && !memcmp(s3.ptr, "compact", 7));
        CHECK(s4.ptr == NULL && s4.len == -1);
        CHECK(b1.len == 3 && !memcmp(b1.ptr, "\x00\x01\x02", 3));
        CHECK(b2.ptr == NULL && b2.len == -1);
        CHECK(n == 2 && x == 7 && y == 8);
        CHECK(m == 1 && z == 9);
        CHECK_EQ(sb_kreader_left(&r), 0);
    }
    return r.error;
}

static void test_primitives(void)
{
    struct sb_kwriter w;
    sb_kwriter_init(&w);
    write_sample(&w);
    CHECK_EQ(w.error, 0);
    read_sample(w.buf, w.len, true);
    /* Every truncation: an error, never an out-of-bounds read (ASan watches). */
    for (size_t cut = 0; cut < w.len; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1);
        CHECK(copy);
        memcpy(copy, w.buf, cut);
        CHECK_EQ(read_sample(copy, cut, false), -EBADMSG);
        free(copy);
    }
    sb_kwriter_free(&w);
}

static void test_hostile_lengths(void)
{
    unsigned char huge_array[] = {0x7f, 0xff, 0xff, 0xff, 1, 2, 3, 4};
    struct sb_kreader r;
    sb_kreader_init(&r, huge_array, sizeof(huge_array));
    sb_kr_array_len(&r, 4);
    CHECK_EQ(r.error, -EBADMSG);
    unsigned char neg_string[] = {0xff, 0xfe, 'x'};
    sb_kreader_init(&r, neg_string, sizeof(neg_string));
    sb_kr_string(&r);
    CHECK_EQ(r.error, -EBADMSG);
    unsigned char long_varint[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    sb_kreader_init(&r, long_varint, sizeof(long_varint));
    sb_kr_uvarint(&r);
    CHECK_EQ(r.error, -EBADMSG);
    unsigned char big_bytes[] = {0x00, 0x00, 0x10, 0x00, 'a'};
    sb_kreader_init(&r, big_bytes, sizeof(big_bytes));
    sb_kr_bytes(&r);
    CHECK_EQ(r.error, -EBADMSG);
    /* Errors are sticky: later reads give zeros. */
    CHECK_EQ(sb_kr_i32(&r), 0);
    CHECK_EQ(r.error, -EBADMSG);
    /* Garbage into the header parser: no crash, either parsed or refused. */
    for (int round = 0; round < 20000; round++) {
        unsigned char buf[64];
        size_t n = test_mix64((uint64_t)round) % sizeof(buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (unsigned char)test_mix64((uint64_t)round * 131 + i);
        struct sb_kafka_request_header h;
        sb_kreader_init(&r, buf, n);
        int rc = sb_kafka_read_request_header(&r, &h);
        CHECK(rc == 0 || rc == -EBADMSG);
    }
}

static void test_api_versions_request(void)
{
    /* ApiVersions v3 as librdkafka sends it: header v2 (classic nullable client_id, then a tag
     * section), body of two compact strings and a tag section. */
    struct sb_kwriter w;
    sb_kwriter_init(&w);
    size_t frame = sb_kw_frame_begin(&w);
    sb_kw_i16(&w, SB_KAFKA_API_VERSIONS);
    sb_kw_i16(&w, 3);
    sb_kw_i32(&w, 42);
    sb_kw_string(&w, "rdkafka", -1);
    sb_kw_empty_tags(&w);
    sb_kw_compact_string(&w, "librdkafka", -1);
    sb_kw_compact_string(&w, "2.0.2", -1);
    sb_kw_empty_tags(&w);
    sb_kw_frame_end(&w, frame);
    CHECK_EQ(w.error, 0);
    struct sb_kreader r;
    sb_kreader_init(&r, w.buf, w.len);
    CHECK_EQ(sb_kr_i32(&r), (int32_t)(w.len - 4));
    struct sb_kafka_request_header h;
    CHECK_EQ(sb_kafka_read_request_header(&r, &h), 0);
    CHECK_EQ(h.api_key, SB_KAFKA_API_VERSIONS);
    CHECK_EQ(h.api_version, 3);
    CHECK_EQ(h.correlation_id, 42);
    CHECK(h.client_id.len == 7 && !memcmp(h.client_id.ptr, "rdkafka", 7));
    struct sb_kslice name = sb_kr_compact_string(&r), ver = sb_kr_compact_string(&r);
    sb_kr_skip_tagged_fields(&r);
    CHECK_EQ(r.error, 0);
    CHECK(name.len == 10 && !memcmp(name.ptr, "librdkafka", 10));
    CHECK(ver.len == 5 && !memcmp(ver.ptr, "2.0.2", 5));
    CHECK_EQ(sb_kreader_left(&r), 0);
    /* Non-flexible versions have no tag section after the client id. */
    CHECK(!sb_kafka_request_is_flexible(SB_KAFKA_METADATA, 4));
    CHECK(!sb_kafka_request_is_flexible(SB_KAFKA_PRODUCE, 7));
    CHECK(sb_kafka_request_is_flexible(SB_KAFKA_API_VERSIONS, 3));
    sb_kwriter_free(&w);
}

static void check_api_versions_response(int16_t version, int16_t error)
{
    struct sb_kwriter w;
    sb_kwriter_init(&w);
    sb_kafka_write_api_versions_response(&w, version, 99, error);
    CHECK_EQ(w.error, 0);
    int16_t v = error ? 0 : version; /* an error answers in v0 */
    struct sb_kreader r;
    sb_kreader_init(&r, w.buf, w.len);
    CHECK_EQ(sb_kr_i32(&r), (int32_t)(w.len - 4));
    CHECK_EQ(sb_kr_i32(&r), 99);
    CHECK_EQ(sb_kr_i16(&r), error);
    int32_t n = v >= 3 ? sb_kr_compact_array_len(&r, 6) : sb_kr_array_len(&r, 6);
    CHECK_EQ(n, (int32_t)sb_kafka_supported_api_count);
    bool saw_produce = false, saw_api_versions = false;
    for (int32_t i = 0; i < n; i++) {
        int16_t key = sb_kr_i16(&r), lo = sb_kr_i16(&r), hi = sb_kr_i16(&r);
        if (v >= 3)
            sb_kr_skip_tagged_fields(&r);
        CHECK(lo <= hi);
        if (key == SB_KAFKA_PRODUCE) {
            saw_produce = true;
            CHECK(lo == 0 && hi == 7);
        }
        if (key == SB_KAFKA_API_VERSIONS) {
            saw_api_versions = true;
            CHECK(lo == 0 && hi == 3);
        }
    }
    if (v >= 1)
        CHECK_EQ(sb_kr_i32(&r), 0);
    if (v >= 3)
        sb_kr_skip_tagged_fields(&r);
    CHECK_EQ(r.error, 0);
    CHECK_EQ(sb_kreader_left(&r), 0);
    CHECK(saw_produce && saw_api_versions);
    sb_kwriter_free(&w);
}

/* Metadata: requests of every version parse; responses parse back field by field. */
static void test_metadata(void)
{
    for (int16_t v = 0; v <= 4; v++) {
        struct sb_kwriter w;
        sb_kwriter_init(&w);
        sb_kw_array_len(&w, 2);
        sb_kw_string(&w, "payments", -1);
        sb_kw_string(&w, "carts", -1);
        if (v >= 4)
            sb_kw_i8(&w, 0);
        struct sb_kreader r;
        static struct sb_kafka_metadata_request req;
        sb_kreader_init(&r, w.buf, w.len);
        CHECK_EQ(sb_kafka_read_metadata_request(&r, v, &req), 0);
        CHECK_EQ(req.topic_count, 2);
        CHECK(req.topics[1].len == 5 && !memcmp(req.topics[1].ptr, "carts", 5));
        CHECK_EQ(req.allow_auto_topic_creation, v < 4);
        /* Every truncation is refused. */
        for (size_t cut = 0; cut < w.len; cut++) {
            sb_kreader_init(&r, w.buf, cut);
            CHECK(sb_kafka_read_metadata_request(&r, v, &req) != 0);
        }
        sb_kwriter_free(&w);
        /* All topics: a null array from v1, an empty one in v0. */
        sb_kwriter_init(&w);
        sb_kw_array_len(&w, v >= 1 ? -1 : 0);
        if (v >= 4)
            sb_kw_i8(&w, 1);
        sb_kreader_init(&r, w.buf, w.len);
        CHECK_EQ(sb_kafka_read_metadata_request(&r, v, &req), 0);
        CHECK_EQ(req.topic_count, -1);
        sb_kwriter_free(&w);

        struct sb_kafka_broker broker = {1, "127.0.0.1", 9092};
        struct sb_kafka_topic_metadata topics[2] = {{"payments", SB_KAFKA_NONE, 3},
                                                    {"nope", SB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION, 0}};
        sb_kwriter_init(&w);
        sb_kafka_write_metadata_response(&w, v, 5, &broker, "shardbus", topics, 2);
        sb_kreader_init(&r, w.buf, w.len);
        CHECK_EQ(sb_kr_i32(&r), (int32_t)(w.len - 4));
        CHECK_EQ(sb_kr_i32(&r), 5);
        if (v >= 3)
            CHECK_EQ(sb_kr_i32(&r), 0);
        CHECK_EQ(sb_kr_array_len(&r, 1), 1);
        CHECK_EQ(sb_kr_i32(&r), 1);
        struct sb_kslice host = sb_kr_string(&r);
        CHECK(host.len == 9 && !memcmp(host.ptr, "127.0.0.1", 9));
        CHECK_EQ(sb_kr_i32(&r), 9092);
        if (v >= 1)
            CHECK_EQ(sb_kr_string(&r).len, -1);
        if (v >= 2) {
            struct sb_kslice cid = sb_kr_string(&r);
            CHECK(cid.len == 8 && !memcmp(cid.ptr, "shardbus", 8));
        }
        if (v >= 1)
            CHECK_EQ(sb_kr_i32(&r), 1);
        CHECK_EQ(sb_kr_array_len(&r, 1), 2);
        for (int t = 0; t < 2; t++) {
            CHECK_EQ(sb_kr_i16(&r), topics[t].error);
            struct sb_kslice name = sb_kr_string(&r);
            CHECK(name.len == (int32_t)strlen(topics[t].name));
            CHECK_MEM(name.ptr, topics[t].name, (size_t)name.len);
            if (v >= 1)
                CHECK_EQ(sb_kr_i8(&r), 0);
            int32_t parts = sb_kr_array_len(&r, 1);
            CHECK_EQ(parts, topics[t].partitions);
            for (int32_t p = 0; p < parts; p++) {
                CHECK_EQ(sb_kr_i16(&r), 0);
                CHECK_EQ(sb_kr_i32(&r), p);
                CHECK_EQ(sb_kr_i32(&r), 1);
                CHECK_EQ(sb_kr_array_len(&r, 4), 1);
                CHECK_EQ(sb_kr_i32(&r), 1);
                CHECK_EQ(sb_kr_array_len(&r, 4), 1);
                CHECK_EQ(sb_kr_i32(&r), 1);
            }
        }
        CHECK_EQ(r.error, 0);
        CHECK_EQ(sb_kreader_left(&r), 0);
        sb_kwriter_free(&w);
    }
}

/* Produce: a request with real record batches parses topic by topic, partition by partition;
 * the batches validate in place; the response parses back. */
static size_t produce_request(struct sb_kwriter *w, unsigned char batches[2][256])
{
    size_t len[2];
    for (int b = 0; b < 2; b++) {
        struct sb_batch_builder bb;
        sb_batch_begin(&bb, batches[b], 256);
        CHECK_EQ(sb_batch_add(&bb, 1000 + b, "k", 1, b ? "second" : "first", b ? 6 : 5), 0);
        len[b] = sb_batch_finish(&bb, 0, false);
    }
    sb_kw_string(w, NULL, 0); /* transactional_id */
    sb_kw_i16(w, -1);         /* acks=all */
    sb_kw_i32(w, 30000);
    sb_kw_array_len(w, 2);
    sb_kw_string(w, "payments", -1);
    sb_kw_array_len(w, 2);
    sb_kw_i32(w, 0);
    sb_kw_bytes(w, batches[0], (int32_t)len[0]);
    sb_kw_i32(w, 3);
    sb_kw_bytes(w, batches[1], (int32_t)len[1]);
    sb_kw_string(w, "carts", -1);
    sb_kw_array_len(w, 1);
    sb_kw_i32(w, 1);
    sb_kw_bytes(w, NULL, 0);
    return w->len;
}

static int walk_produce(const unsigned char *buf, size_t len, int16_t version, bool check)
{
    struct sb_kreader r;
    struct sb_kafka_produce_request req;
    sb_kreader_init(&r, buf, len);
    int rc = sb_kafka_read_produce_request(&r, version, &req);
    if (rc)
        return rc;
    if (check) {
        CHECK(req.transactional_id.ptr == NULL);
        CHECK_EQ(req.acks, -1);
        CHECK_EQ(req.timeout_ms, 30000);
        CHECK_EQ(req.topic_count, 2);
    }
    struct sb_kslice name, records;
    int32_t parts, index;
    int topics = 0, partitions = 0;
    while ((rc = sb_kafka_produce_next_topic(&req, &name, &parts)) == 1) {
        topics++;
        while ((rc = sb_kafka_produce_next_partition(&req, &index, &records)) == 1) {
            partitions++;
            if (check && records.ptr) {
                struct sb_batch_info info;
                const char *why;
                CHECK_EQ(sb_batch_validate(records.ptr, (size_t)records.len, &info, &why), 0);
                CHECK_EQ(info.record_count, 1);
            }
            if (check && topics == 2)
                CHECK(records.ptr == NULL && index == 1);
        }
        if (rc < 0)
            return rc;
    }
    if (check)
        CHECK(topics == 2 && partitions == 3);
    return rc;
}

static void test_produce(void)
{
    unsigned char batches[2][256];
    struct sb_kwriter w;
    sb_kwriter_init(&w);
    produce_request(&w, batches);
    CHECK_EQ(walk_produce(w.buf, w.len, 7, true), 0);
    CHECK_EQ(walk_produce(w.buf, w.len, 3, true), 0);
    CHECK_EQ(walk_produce(w.buf, w.len, 2, false), -EPROTONOSUPPORT);
    CHECK_EQ(walk_produce(w.buf, w.len, 8, false), -EPROTONOSUPPORT);
    for (size_t cut = 0; cut < w.len; cut++) {
        unsigned char *copy = malloc(cut ? cut : 1);
        CHECK(copy);
        memcpy(copy, w.buf, cut);
        CHECK(walk_produce(copy, cut, 7, false) != 0);
        free(copy);
    }
    /* Skipping a topic's partitions is a caller error, reported. */
    struct sb_kreader r;
    struct sb_kafka_produce_request req;
    struct sb_kslice name;
    int32_t parts;
    sb_kreader_init(&r, w.buf, w.len);
    CHECK_EQ(sb_kafka_read_produce_request(&r, 7, &req), 0);
    CHECK_EQ(sb_kafka_produce_next_topic(&req, &name, &parts), 1);
    CHECK_EQ(sb_kafka_produce_next_topic(&req, &name, &parts), -EBADMSG);
    sb_kwriter_free(&w);

    for (int16_t v = 3; v <= 7; v++) {
        sb_kwriter_init(&w);
        size_t frame = sb_kafka_produce_response_begin(&w, 77, 1);
        sb_kafka_produce_response_topic(&w, "payments", 8, 2);
        sb_kafka_produce_response_partition(&w, v, 0, SB_KAFKA_NONE, 100, -1, 0);
        sb_kafka_produce_response_partition(&w, v, 3, SB_KAFKA_CORRUPT_MESSAGE, -1, -1, 0);
        sb_kafka_produce_response_end(&w, frame);
        sb_kreader_init(&r, w.buf, w.len);
        CHECK_EQ(sb_kr_i32(&r), (int32_t)(w.len - 4));
        CHECK_EQ(sb_kr_i32(&r), 77);
        CHECK_EQ(sb_kr_array_len(&r, 1), 1);
        struct sb_kslice n = sb_kr_string(&r);
        CHECK(n.len == 8 && !memcmp(n.ptr, "payments", 8));
        CHECK_EQ(sb_kr_array_len(&r, 1), 2);
        for (int p = 0; p < 2; p++) {
            CHECK_EQ(sb_kr_i32(&r), p ? 3 : 0);
            CHECK_EQ(sb_kr_i16(&r), p ? SB_KAFKA_CORRUPT_MESSAGE : SB_KAFKA_NONE);
            CHECK_EQ(sb_kr_i64(&r), p ? -1 : 100);
            CHECK_EQ(sb_kr_i64(&r), -1);
            if (v >= 5)
                CHECK_EQ(sb_kr_i64(&r), 0);
        }
        CHECK_EQ(sb_kr_i32(&r), 0);
        CHECK_EQ(r.error, 0);
        CHECK_EQ(sb_kreader_left(&r), 0);
        sb_kwriter_free(&w);
    }
}

/* Fetch: requests of versions 4-11 parse; responses parse back with the batches untouched. */
static void fetch_request(struct sb_kwriter *w, int16_t v)
{
    sb_kw_i32(w, -1);   /* replica_id */
    sb_kw_i32(w, 500);  /* max_wait_ms */
    sb_kw_i32(w, 1);    /* min_bytes */
    sb_kw_i32(w, 1 << 20);
    sb_kw_i8(w, 0);
    if (v >= 7) {
        sb_kw_i32(w, 0);
        sb_kw_i32(w, -1);
    }
    sb_kw_array_len(w, 2);
    for (int t = 0; t < 2; t++) {
        sb_kw_string(w, t ? "carts" : "payments", -1);
        sb_kw_array_len(w, 1 + t);
        for (int p = 0; p < 1 + t; p++) {
            sb_kw_i32(w, p);
            if (v >= 9)
                sb_kw_i32(w, -1);
            sb_kw_i64(w, 1000 * t + p);
            if (v >= 5)
                sb_kw_i64(w, -1);
            sb_kw_i32(w, 65536);
        }
    }
    if (v >= 7)
        sb_kw_array_len(w, 0);
    if (v >= 11)
        sb_kw_string(w, "", 0);
}

static int walk_fetch(const unsigned char *buf, size_t len, int16_t v, bool check)
{
    struct sb_kreader r;
    struct sb_kafka_fetch_request req;
    sb_kreader_init(&r, buf, len);
    int rc = sb_kafka_read_fetch_request(&r, v, &req);
    if (rc)
        return rc;
    if (check)
        CHECK(req.max_wait_ms == 500 && req.min_bytes == 1 && req.topic_count == 2);
    struct sb_kslice name;
    int32_t parts;
    int t = 0;
    while ((rc = sb_kafka_fetch_next_topic(&req, &name, &parts)) == 1) {
        struct sb_kafka_fetch_partition fp;
        int p = 0;
        while ((rc = sb_kafka_fetch_next_partition(&req, &fp)) == 1) {
            if (check)
                CHECK(fp.partition == p && fp.fetch_offset == 1000 * t + p &&
                      fp.partition_max_bytes == 65536);
            p++;
        }
        if (rc < 0)
            return rc;
        t++;
    }
    if (check)
        CHECK(rc == 0 && t == 2 && sb_kreader_left(&r) == 0);
    return rc;
}

static void test_fetch(void)
{
    for (int16_t v = 4; v <= 11; v++) {
        struct sb_kwriter w;
        sb_kwriter_init(&w);
        fetch_request(&w, v);
        CHECK_EQ(walk_fetch(w.buf, w.len, v, true), 0);
        for (size_t cut = 0; cut < w.len; cut++) {
            unsigned char *copy = malloc(cut ? cut : 1);
            CHECK(copy);
            memcpy(copy, w.buf, cut);
            CHECK(walk_fetch(copy, cut, v, false) != 0);
            free(copy);
        }
        sb_kwriter_free(&w);

        unsigned char batch[128];
        struct sb_batch_builder bb;
        sb_batch_begin(&bb, batch, sizeof(batch));
        CHECK_EQ(sb_batch_add(&bb, 5, "k", 1, "v", 1), 0);
        size_t blen = sb_batch_finish(&bb, 41, false);
        sb_kwriter_init(&w);
        size_t frame = sb_kafka_fetch_response_begin(&w, v, 8, SB_KAFKA_NONE, 1);
        sb_kafka_fetch_response_topic(&w, "payments", 8, 2);
        sb_kafka_fetch_response_partition(&w, v, 0, SB_KAFKA_NONE, 42, 0, batch, (int32_t)blen);
        sb_kafka_fetch_response_partition(&w, v, 1, SB_KAFKA_OFFSET_OUT_OF_RANGE, 7, 0, NULL, 0);
        sb_kafka_fetch_response_end(&w, frame);
        struct sb_kreader r;
        sb_kreader_init(&r, w.buf, w.len);
        CHECK_EQ(sb_kr_i32(&r), (int32_t)(w.len - 4));
        CHECK_EQ(sb_kr_i32(&r), 8);
        CHECK_EQ(sb_kr_i32(&r), 0);
        if (v >= 7) {
            CHECK_EQ(sb_kr_i16(&r), 0);
            CHECK_EQ(sb_kr_i32(&r), 0);
        }
        CHECK_EQ(sb_kr_array_len(&r, 1), 1);
        CHECK_EQ(sb_kr_string(&r).len, 8);
        CHECK_EQ(sb_kr_array_len(&r, 1), 2);
        for (int p = 0; p < 2; p++) {
            CHECK_EQ(sb_kr_i32(&r), p);
            CHECK_EQ(sb_kr_i16(&r), p ? SB_KAFKA_OFFSET_OUT_OF_RANGE : 0);
            CHECK_EQ(sb_kr_i64(&r), p ? 7 : 42);
            CHECK_EQ(sb_kr_i64(&r), p ? 7 : 42);
            if (v >= 5)
                CHECK_EQ(sb_kr_i64(&r), 0);
            CHECK_EQ(sb_kr_array_len(&r, 16), -1);
            if (v >= 11)
                CHECK_EQ(sb_kr_i32(&r), -1);
            struct sb_kslice rec = sb_kr_bytes(&r);
            if (p) {
                CHECK(rec.ptr == NULL);
            } else {
                CHECK_EQ(rec.len, (int32_t)blen);
                CHECK_MEM(rec.ptr, batch, blen);
            }
        }
        CHECK_EQ(r.error, 0);
        CHECK_EQ(sb_kreader_left(&r), 0);
        sb_kwriter_free(&w);
    }
    struct sb_kreader r;
    struct sb_kafka_fetch_request req;
    sb_kreader_init(&r, "", 0);
    CHECK_EQ(sb_kafka_read_fetch_request(&r, 3, &req), -EPROTONOSUPPORT);
    CHECK_EQ(sb_kafka_read_fetch_request(&r, 12, &req), -EPROTONOSUPPORT);
}

/* ListOffsets 1-2: earliest, latest and by timestamp, as kcat -o beginning|end|s@ts asks. */
static void test_list_offsets(void)
{
    for (int16_t v = 1; v <= 2; v++) {
        struct sb_kwriter w;
        sb_kwriter_init(&w);
        sb_kw_i32(&w, -1);
        if (v >= 2)
            sb_kw_i8(&w, 0);
        sb_kw_array_len(&w, 1);
        sb_kw_string(&w, "payments", -1);
        sb_kw_array_len(&w, 3);
        const int64_t ts[3] = {SB_KAFKA_TIMESTAMP_EARLIEST, SB_KAFKA_TIMESTAMP_LATEST, 1700000000000};
        for (int p = 0; p < 3; p++) {
            sb_kw_i32(&w, p);
            sb_kw_i64(&w, ts[p]);
        }
        for (size_t cut = 0; cut <= w.len; cut++) {
            struct sb_kreader r;
            struct sb_kafka_list_offsets_request req;
            sb_kreader_init(&r, w.buf, cut);
            int rc = sb_kafka_read_list_offsets_request(&r, v, &req);
            struct sb_kslice name;
            int32_t parts = 0, part;
            int64_t t;
            int seen = 0;
            if (!rc && (rc = sb_kafka_list_offsets_next_topic(&req, &name, &parts)) == 1)
                while ((rc = sb_kafka_list_offsets_next_partition(&req, &part, &t)) == 1) {
                    CHECK(part == seen && t == ts[seen]);
                    seen++;
                }
            if (cut == w.len)
                CHECK(rc == 0 && seen == 3 && name.len == 8);
            else
                CHECK(rc != 0);
        }
        sb_kwriter_free(&w);
        sb_kwriter_init(&w);
        size_t frame = sb_kafka_list_offsets_response_begin(&w, v, 3, 1);
        sb_kafka_list_offsets_response_topic(&w, "payments", 8, 1);
        sb_kafka_list_offsets_response_partition(&w, 0, SB_KAFKA_NONE, -1, 1234);
        sb_kafka_list_offsets_response_end(&w, frame);
        struct sb_kreader r;
        sb_kreader_init(&r, w.buf, w.len);
        CHECK_EQ(sb_kr_i32(&r), (int32_t)(w.len - 4));
        CHECK_EQ(sb_kr_i32(&r), 3);
        if (v >= 2)
            CHECK_EQ(sb_kr_i32(&r), 0);
        CHECK_EQ(sb_kr_array_len(&r, 1), 1);
        CHECK_EQ(sb_kr_string(&r).len, 8);
        CHECK_EQ(sb_kr_array_len(&r, 1), 1);
        CHECK_EQ(sb_kr_i32(&r), 0);
        CHECK_EQ(sb_kr_i16(&r), 0);
        CHECK_EQ(sb_kr_i64(&r), -1);
        CHECK_EQ(sb_kr_i64(&r), 1234);
        CHECK(r.error == 0 && sb_kreader_left(&r) == 0);
        sb_kwriter_free(&w);
    }
}

/* CreateTopics, DeleteTopics, InitProducerId: requests parse (configs reach the callback),
 * every truncation is refused, responses parse back. */
static int configs_seen;

static void on_config(void *ctx, struct sb_kslice name, struct sb_kslice value)
{
    (void)ctx;
    CHECK(name.len == 12 && !memcmp(name.ptr, "retention.ms", 12));
    CHECK(value.len == 5 && !memcmp(value.ptr, "60000", 5));
    configs_seen++;
}

static int walk_create(const unsigned char *buf, size_t len, int16_t v, bool check)
{
    struct sb_kreader r;
    struct sb_kafka_create_topics_request req;
    sb_kreader_init(&r, buf, len);
    int rc = sb_kafka_read_create_topics_request(&r, v, &req);
    if (rc)
        return rc;
    struct sb_kafka_new_topic nt;
    int n = 0;
    configs_seen = 0;
    while ((rc = sb_kafka_create_topics_next(&req, &nt, on_config, NULL)) == 1) {
        if (check)
            CHECK(nt.num_partitions == 3 + n && nt.replication_factor == 1 &&
                  nt.assignment_count == 0);
        n++;
    }
    if (check)
        CHECK(rc == 0 && n == 2 && configs_seen == 1 && req.timeout_ms == 5000 &&
              req.validate_only == (v >= 1) && sb_kreader_left(&r) == 0);
    return rc;
}

static void test_admin(void)
{
    for (int16_t v = 0; v <= 4; v++) {
        struct sb_kwriter w;
        sb_kwriter_init(&w);
        sb_kw_array_len(&w, 2);
        for (int t = 0; t < 2; t++) {
            sb_kw_string(&w, t ? "carts" : "payments", -1);
            sb_kw_i32(&w, 3 + t);
            sb_kw_i16(&w, 1);
            sb_kw_array_len(&w, 0);
            sb_kw_array_len(&w, 1 - t);
            if (t == 0) {
                sb_kw_string(&w, "retention.ms", -1);
                sb_kw_string(&w, "60000", -1);
            }
        }
        sb_kw_i32(&w, 5000);
        if (v >= 1)
            sb_kw_i8(&w, 1);
        CHECK_EQ(walk_create(w.buf, w.len, v, true), 0);
        for (size_t cut = 0; cut < w.len; cut++)
            CHECK(walk_create(w.buf, cut, v, false) != 0);
        sb_kwriter_free(&w);
        sb_kwriter_init(&w);
        size_t frame = sb_kafka_create_topics_response_begin(&w, v, 4, 1);
        sb_kafka_create_topics_response_topic(&w, v, "carts", 5, 36, "already exists");
        sb_kafka_create_topics_response_end(&w, frame);
        struct sb_kreader r;
        sb_kreader_init(&r, w.buf, w.len);
        CHECK_EQ(sb_kr_i32(&r), (int32_t)(w.len - 4));
        CHECK_EQ(sb_kr_i32(&r), 4);
        if (v >= 2)
            CHECK_EQ(sb_kr_i32(&r), 0);
        CHECK_EQ(sb_kr_array_len(&r, 1), 1);
        CHECK_EQ(sb_kr_string(&r).len, 5);
        CHECK_EQ(sb_kr_i16(&r), 36);
        if (v >= 1)
            CHECK_EQ(sb_kr_string(&r).len, 14);
        CHECK(r.error == 0 && sb_kreader_left(&r) == 0);
        sb_kwriter_free(&w);
    }
    for (int16_t v = 0; v <= 3; v++) {
        struct sb_kwriter w;
        sb_kwriter_init(&w);
        sb_kw_array_len(&w, 2);
        sb_kw_string(&w, "a", -1);
        sb_kw_string(&w, "bb", -1);
        sb_kw_i32(&w, 1500);
        for (size_t cut = 0; cut <= w.len; cut++) {
            struct sb_kreader r;
            struct sb_kafka_delete_topics_request req;
            struct sb_kslice name;
            sb_kreader_init(&r, w.buf, cut);
            int rc = sb_kafka_read_delete_topics_request(&r, v, &req);
            int n = 0;
            if (!rc)
                while ((rc = sb_kafka_delete_topics_next(&req, &name)) == 1)
                    CHECK_EQ(name.len, ++n);
            if (cut == w.len)
                CHECK(rc == 0 && n == 2 && req.timeout_ms == 1500);
            else
                CHECK(rc != 0);
        }
        sb_kwriter_free(&w);
        sb_kwriter_init(&w);
        size_t frame = sb_kafka_delete_topics_response_begin(&w, v, 6, 1);
        sb_kafka_delete_topics_response_topic(&w, "a", 1, SB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
        sb_kafka_delete_topics_response_end(&w, frame);
        struct sb_kreader r;
        sb_kreader_init(&r, w.buf, w.len);
        CHECK_EQ(sb_kr_i32(&r), (int32_t)(w.len - 4));
        CHECK_EQ(sb_kr_i32(&r), 6);
        if (v >= 1)
            CHECK_EQ(sb_kr_i32(&r), 0);
        CHECK_EQ(sb_kr_array_len(&r, 1), 1);
        CHECK_EQ(sb_kr_string(&r).len, 1);
        CHECK_EQ(sb_kr_i16(&r), SB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION);
        CHECK(r.error == 0 && sb_kreader_left(&r) == 0);
        sb_kwriter_free(&w);
    }
    struct sb_kwriter w;
    sb_kwriter_init(&w);
    sb_kw_string(&w, NULL, 0);
    sb_kw_i32(&w, 60000);
    struct sb_kreader r;
    struct sb_kafka_init_producer_id_request ip;
    sb_kreader_init(&r, w.buf, w.len);
    CHECK_EQ(sb_kafka_read_init_producer_id_request(&r, 1, &ip), 0);
    CHECK(ip.transactional_id.ptr == NULL && ip.transaction_timeout_ms == 60000);
    sb_kreader_init(&r, w.buf, w.len - 1);
    CHECK(sb_kafka_read_init_producer_id_request(&r, 1, &ip) != 0);
    CHECK_EQ(sb_kafka_read_init_producer_id_request(&r, 2, &ip), -EPROTONOSUPPORT);
    sb_kwriter_free(&w);
    sb_kwriter_init(&w);
    sb_kafka_write_init_producer_id_response(&w, 9, SB_KAFKA_NONE, 1000, 0);
    sb_kreader_init(&r, w.buf, w.len);
    CHECK_EQ(sb_kr_i32(&r), (int32_t)(w.len - 4));
    CHECK_EQ(sb_kr_i32(&r), 9);
    CHECK_EQ(sb_kr_i32(&r), 0);
    CHECK_EQ(sb_kr_i16(&r), 0);
    CHECK_EQ(sb_kr_i64(&r), 1000);
    CHECK_EQ(sb_kr_i16(&r), 0);
    CHECK(r.error == 0 && sb_kreader_left(&r) == 0);
    sb_kwriter_free(&w);
}

/* The framer: frames fed in every split come out whole and in order; bad sizes are refused. */
static void test_framer(void)
{
    /* Three requests of 10, 300 and 70000 bytes back to back. */
    const size_t sizes[3] = {10, 300, 70000};
    struct sb_kwriter w;
    sb_kwriter_init(&w);
    for (int k = 0; k < 3; k++) {
        sb_kw_i32(&w, (int32_t)sizes[k]);
        for (size_t i = 0; i < sizes[k]; i++)
            sb_kw_i8(&w, (int8_t)(k * 31 + (int)i));
    }
    const size_t chunks[] = {1, 3, 7, 4096, 100000};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct sb_kafka_framer f;
        sb_kafka_framer_init(&f, 1 << 20);
        int got = 0;
        for (size_t off = 0; off < w.len; off += chunks[c]) {
            size_t n = w.len - off < chunks[c] ? w.len - off : chunks[c];
            CHECK_EQ(sb_kafka_framer_feed(&f, w.buf + off, n), 0);
            const unsigned char *frame;
            size_t len;
            int rc;
            while ((rc = sb_kafka_framer_next(&f, &frame, &len)) == 1) {
                CHECK_EQ(len, sizes[got]);
                for (size_t i = 0; i < len; i++)
                    CHECK_EQ(frame[i], (unsigned char)(got * 31 + (int)i));
                sb_kafka_framer_consume(&f);
                got++;
            }
            CHECK_EQ(rc, 0);
        }
        CHECK_EQ(got, 3);
        sb_kafka_framer_free(&f);
    }
    sb_kwriter_free(&w);
    /* Too large, negative, too small: refused as soon as the size is in. */
    const int32_t bad[3] = {(1 << 20) + 1, -5, 3};
    const int expect[3] = {-EMSGSIZE, -EBADMSG, -EBADMSG};
    for (int k = 0; k < 3; k++) {
        struct sb_kafka_framer f;
        sb_kafka_framer_init(&f, 1 << 20);
        unsigned char hdr[4];
        sb_kwriter_init(&w);
        sb_kw_i32(&w, bad[k]);
        memcpy(hdr, w.buf, 4);
        sb_kwriter_free(&w);
        const unsigned char *frame;
        size_t len;
        CHECK_EQ(sb_kafka_framer_feed(&f, hdr, 3), 0);
        CHECK_EQ(sb_kafka_framer_next(&f, &frame, &len), 0);
        CHECK_EQ(sb_kafka_framer_feed(&f, hdr + 3, 1), 0);
        CHECK_EQ(sb_kafka_framer_next(&f, &frame, &len), expect[k]);
        sb_kafka_framer_free(&f);
    }
}

/* A Fetch response that refers to its batches (the server's zero-copy form) puts the same bytes
 * on the wire as one that copies them, from every starting byte and with any number of iovecs
 * at a time (a sendmsg that sends part of it). */
static void test_fetch_refs(void)
{
    enum { PARTS = 4 };
    unsigned char *data[PARTS];
    int32_t lens[PARTS] = {100, 4096, 0, 70000};
    for (int k = 0; k < PARTS; k++) {
        data[k] = malloc(lens[k] ? (size_t)lens[k] : 1);
        CHECK(data[k]);
        for (int32_t i = 0; i < lens[k]; i++)
            data[k][i] = (unsigned char)(i * 13 + k);
    }
    struct sb_kwriter copy, ref;
    sb_kwriter_init(&copy);
    sb_kwriter_init(&ref);
    struct sb_kwriter *ws[2] = {&copy, &ref};
    for (int which = 0; which < 2; which++) {
        struct sb_kwriter *w = ws[which];
        size_t frame = sb_kafka_fetch_response_begin(w, 11, 42, SB_KAFKA_NONE, 1);
        sb_kafka_fetch_response_topic(w, "t", 1, PARTS);
        for (int k = 0; k < PARTS; k++) {
            const void *recs = lens[k] ? data[k] : NULL;
            if (which == 0)
                sb_kafka_fetch_response_partition(w, 11, k, SB_KAFKA_NONE, 10, 0, recs, lens[k]);
            else
                sb_kafka_fetch_response_partition_ref(w, 11, k, SB_KAFKA_NONE, 10, 0, recs,
                                                      lens[k]);
        }
        sb_kafka_fetch_response_end(w, frame);
        CHECK_EQ(w->error, 0);
    }
    CHECK_EQ(copy.ref_count, 0);
    CHECK_EQ(ref.ref_count, 2); /* the 4096- and 70000-byte ones; 100 bytes are copied */
    CHECK_EQ(sb_kwriter_wire_len(&ref), copy.len);
    const size_t total = copy.len;
    unsigned char *flat = malloc(total);
    CHECK(flat);
    const size_t skips[] = {0, 1, 50, 200, 4100, 4200, total - 70001, total - 1};
    for (size_t si = 0; si < sizeof(skips) / sizeof(skips[0]); si++) {
        for (size_t max = 1; max <= 8; max++) {
            /* Gather max iovecs at a time, as repeated partial sends would. */
            size_t at = skips[si];
            while (at < total) {
                struct iovec iov[8];
                size_t n = sb_kwriter_iov(&ref, at, iov, max);
                CHECK(n >= 1 && n <= max);
                for (size_t k = 0; k < n; k++) {
                    CHECK(iov[k].iov_len > 0 && at + iov[k].iov_len <= total);
                    memcpy(flat + at, iov[k].iov_base, iov[k].iov_len);
                    at += iov[k].iov_len;
                }
            }
            CHECK_MEM(flat + skips[si], copy.buf + skips[si], total - skips[si]);
        }
    }
    struct iovec none[1];
    CHECK_EQ(sb_kwriter_iov(&ref, total, none, 1), 0);
    free(flat);
    sb_kwriter_free(&copy);
    sb_kwriter_free(&ref);
    for (int k = 0; k < PARTS; k++)
        free(data[k]);
}

int main(void)
{
    test_primitives();
    test_hostile_lengths();
    test_api_versions_request();
    for (int16_t v = 0; v <= 3; v++)
        check_api_versions_response(v, SB_KAFKA_NONE);
    check_api_versions_response(7, SB_KAFKA_UNSUPPORTED_VERSION);
    test_metadata();
    test_produce();
    test_fetch();
    test_fetch_refs();
    test_list_offsets();
    test_admin();
    test_framer();
    printf("test_kafka_codec: all passed\n");
    return 0;
}
