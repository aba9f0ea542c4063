/*
 * kafka_produce.c - Produce versions 3-7; see kafka_produce.h. Field order from Kafka's
 * ProduceRequest.json / ProduceResponse.json.
 */
#include "kafka_produce.h"

#include <errno.h>

int sb_kafka_read_produce_request(struct sb_kreader *r, int16_t version,
                                  struct sb_kafka_produce_request *req)
{
    if (version < SB_KAFKA_PRODUCE_MIN_VERSION || version > SB_KAFKA_PRODUCE_MAX_VERSION)
        return -EPROTONOSUPPORT;
    req->transactional_id = sb_kr_string(r);
    req->acks = sb_kr_i16(r);
    req->timeout_ms = sb_kr_i32(r);
    /* A topic takes at least its name length and its partition count: 6 bytes. */
    req->topic_count = sb_kr_array_len(r, 6);
    if (r->error)
        return r->error;
    if (req->topic_count < 0)
        return -EBADMSG;
    /* A partition takes its index and its records' length: 8 bytes. */
    sb_kafka_topic_iter_init(&req->topics, r, req->topic_count, 8);
    return 0;
}

int sb_kafka_produce_next_topic(struct sb_kafka_produce_request *req, struct sb_kslice *name,
                                int32_t *partition_count)
{
    return sb_kafka_topic_iter_next(&req->topics, name, partition_count);
}

int sb_kafka_produce_next_partition(struct sb_kafka_produce_request *req, int32_t *index,
                                    struct sb_kslice *records)
{
    if (!sb_kafka_topic_iter_partition(&req->topics))
        return 0;
    *index = sb_kr_i32(req->topics.r);
    *records = sb_kr_bytes(req->topics.r);
    return req->topics.r->error ? -EBADMSG : 1;
}

size_t sb_kafka_produce_response_begin(struct sb_kwriter *w, int32_t correlation_id,
                                       int32_t topic_count)
{
    size_t frame = sb_kafka_response_begin(w, correlation_id);
    sb_kw_array_len(w, topic_count);
    return frame;
}

void sb_kafka_produce_response_topic(struct sb_kwriter *w, const void *name, int32_t name_len,
                                     int32_t partition_count)
{
    sb_kafka_write_topic_header(w, name, name_len, partition_count);
}

void sb_kafka_produce_response_partition(struct sb_kwriter *w, int16_t version, int32_t index,
                                         int16_t error, int64_t base_offset,
                                         int64_t log_append_time_ms, int64_t log_start_offset)
{
    sb_kw_i32(w, index);
    sb_kw_i16(w, error);
    sb_kw_i64(w, base_offset);
    sb_kw_i64(w, log_append_time_ms); /* v2+: every version we accept */
    if (version >= 5)
        sb_kw_i64(w, log_start_offset);
}

void sb_kafka_produce_response_end(struct sb_kwriter *w, size_t frame)
{
    sb_kw_i32(w, 0); /* throttle_time_ms (v1+) */
    sb_kw_frame_end(w, frame);
}
