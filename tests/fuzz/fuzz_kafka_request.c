/*
 * fuzz_kafka_request.c - a Kafka request as it comes off the network: the size, the header,
 * the request parsers (Metadata, Produce) on the body, then fields of every kind read in an
 * order the input itself chooses, so the reader meets every type at every position.
 */
#include <string.h>

#include "fuzz.h"
#include "kafka_admin.h"
#include "kafka_codec.h"
#include "kafka_fetch.h"
#include "kafka_framer.h"
#include "kafka_list_offsets.h"
#include "kafka_metadata.h"
#include "kafka_produce.h"

/* The input as a byte stream too: fed in pieces whose sizes the input chooses, cut into
 * frames; none may come out longer than the limit or past the bytes fed. */
static void frame_stream(const uint8_t *data, size_t size)
{
    struct sb_kafka_framer f;
    sb_kafka_framer_init(&f, 4096);
    size_t off = 0;
    while (off < size) {
        size_t n = 1 + data[off] % 64;
        if (n > size - off)
            n = size - off;
        if (sb_kafka_framer_feed(&f, data + off, n))
            break;
        off += n;
        const unsigned char *frame;
        size_t len;
        int rc;
        while ((rc = sb_kafka_framer_next(&f, &frame, &len)) == 1) {
            struct sb_kreader r;
            struct sb_kafka_request_header h;
            sb_kreader_init(&r, frame, len);
            (void)sb_kafka_read_request_header(&r, &h);
            sb_kafka_framer_consume(&f);
        }
        if (rc < 0)
            break;
    }
    sb_kafka_framer_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    frame_stream(data, size);
    struct sb_kreader r;
    sb_kreader_init(&r, data, size);
    (void)sb_kr_i32(&r);
    struct sb_kafka_request_header h;
    if (sb_kafka_read_request_header(&r, &h))
        return 0;
    /* The request parsers, on whatever follows the header. */
    struct sb_kreader body = r;
    if (h.api_key == SB_KAFKA_METADATA) {
        static struct sb_kafka_metadata_request mreq;
        (void)sb_kafka_read_metadata_request(&body, h.api_version, &mreq);
    } else if (h.api_key == SB_KAFKA_FETCH) {
        struct sb_kafka_fetch_request freq;
        struct sb_kafka_fetch_partition fp;
        struct sb_kslice name;
        int32_t parts;
        if (sb_kafka_read_fetch_request(&body, h.api_version, &freq) == 0)
            while (sb_kafka_fetch_next_topic(&freq, &name, &parts) == 1)
                while (sb_kafka_fetch_next_partition(&freq, &fp) == 1)
                    ;
    } else if (h.api_key == SB_KAFKA_LIST_OFFSETS) {
        struct sb_kafka_list_offsets_request lreq;
        struct sb_kslice name;
        int32_t parts, part;
        int64_t ts;
        if (sb_kafka_read_list_offsets_request(&body, h.api_version, &lreq) == 0)
            while (sb_kafka_list_offsets_next_topic(&lreq, &name, &parts) == 1)
                while (sb_kafka_list_offsets_next_partition(&lreq, &part, &ts) == 1)
                    ;
    } else if (h.api_key == SB_KAFKA_CREATE_TOPICS) {
        struct sb_kafka_create_topics_request creq;
        struct sb_kafka_new_topic nt;
        if (sb_kafka_read_create_topics_request(&body, h.api_version, &creq) == 0)
            while (sb_kafka_create_topics_next(&creq, &nt, NULL, NULL) == 1)
                ;
    } else if (h.api_key == SB_KAFKA_DELETE_TOPICS) {
        struct sb_kafka_delete_topics_request dreq;
        struct sb_kslice name;
        if (sb_kafka_read_delete_topics_request(&body, h.api_version, &dreq) == 0)
            while (sb_kafka_delete_topics_next(&dreq, &name) == 1)
                ;
    } else if (h.api_key == SB_KAFKA_INIT_PRODUCER_ID) {
        struct sb_kafka_init_producer_id_request ireq;
        (void)sb_kafka_read_init_producer_id_request(&body, h.api_version, &ireq);
    } else if (h.api_key == SB_KAFKA_PRODUCE) {
        struct sb_kafka_produce_request preq;
        struct sb_kslice name, records;
        int32_t parts, index;
        if (sb_kafka_read_produce_request(&body, h.api_version, &preq) == 0)
            while (sb_kafka_produce_next_topic(&preq, &name, &parts) == 1)
                while (sb_kafka_produce_next_partition(&preq, &index, &records) == 1)
                    ;
    }
    for (int step = 0; step < 64 && !r.error && sb_kreader_left(&r); step++) {
        switch ((unsigned)sb_kr_i8(&r) % 12) {
        case 0: (void)sb_kr_i16(&r); break;
        case 1: (void)sb_kr_i32(&r); break;
        case 2: (void)sb_kr_i64(&r); break;
        case 3: (void)sb_kr_uvarint(&r); break;
        case 4: (void)sb_kr_varint(&r); break;
        case 5: (void)sb_kr_varlong(&r); break;
        case 6: (void)sb_kr_string(&r); break;
        case 7: (void)sb_kr_compact_string(&r); break;
        case 8: (void)sb_kr_bytes(&r); break;
        case 9: (void)sb_kr_compact_bytes(&r); break;
        case 10: (void)sb_kr_array_len(&r, 1); break;
        default: sb_kr_skip_tagged_fields(&r); break;
        }
    }
    return 0;
}

size_t fuzz_seed(unsigned char *buf, size_t cap)
{
    struct sb_kwriter w;
    sb_kwriter_init(&w);
    size_t frame = sb_kw_frame_begin(&w);
    sb_kw_i16(&w, SB_KAFKA_API_VERSIONS);
    sb_kw_i16(&w, 3);
    sb_kw_i32(&w, 1);
    sb_kw_string(&w, "rdkafka", -1);
    sb_kw_empty_tags(&w);
    sb_kw_i8(&w, 7);
    sb_kw_compact_string(&w, "librdkafka", -1);
    sb_kw_i8(&w, 7);
    sb_kw_compact_string(&w, "2.0.2", -1);
    sb_kw_i8(&w, 11);
    sb_kw_empty_tags(&w);
    sb_kw_frame_end(&w, frame);
    size_t n = w.len < cap ? w.len : cap;
    memcpy(buf, w.buf, n);
    sb_kwriter_free(&w);
    return n;
}
