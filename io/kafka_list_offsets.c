/*
 * kafka_list_offsets.c - ListOffsets versions 1-2; see kafka_list_offsets.h. Field order from
 * Kafka's ListOffsetsRequest.json / ListOffsetsResponse.json.
 */
#include "kafka_list_offsets.h"

#include <errno.h>

int sb_kafka_read_list_offsets_request(struct sb_kreader *r, int16_t version,
                                       struct sb_kafka_list_offsets_request *req)
{
    if (version < SB_KAFKA_LIST_OFFSETS_MIN_VERSION || version > SB_KAFKA_LIST_OFFSETS_MAX_VERSION)
        return -EPROTONOSUPPORT;
    req->version = version;
    req->replica_id = sb_kr_i32(r);
    req->isolation_level = version >= 2 ? sb_kr_i8(r) : 0;
    req->topic_count = sb_kr_array_len(r, 6);
    if (r->error)
        return r->error;
    if (req->topic_count < 0)
        return -EBADMSG;
    /* A partition: index and timestamp, 12 bytes. */
    sb_kafka_topic_iter_init(&req->topics, r, req->topic_count, 12);
    return 0;
}

int sb_kafka_list_offsets_next_topic(struct sb_kafka_list_offsets_request *req,
                                     struct sb_kslice *name, int32_t *partition_count)
{
    return sb_kafka_topic_iter_next(&req->topics, name, partition_count);
}

int sb_kafka_list_offsets_next_partition(struct sb_kafka_list_offsets_request *req,
                                         int32_t *partition, int64_t *timestamp)
{
    if (!sb_kafka_topic_iter_partition(&req->topics))
        return 0;
    *partition = sb_kr_i32(req->topics.r);
    *timestamp = sb_kr_i64(req->topics.r);
    return req->topics.r->error ? -EBADMSG : 1;
}

size_t sb_kafka_list_offsets_response_begin(struct sb_kwriter *w, int16_t version,
                                            int32_t correlation_id, int32_t topic_count)
{
    size_t frame = sb_kafka_response_begin(w, correlation_id);
    if (version >= 2)
        sb_kw_i32(w, 0); /* throttle_time_ms */
    sb_kw_array_len(w, topic_count);
    return frame;
}

void sb_kafka_list_offsets_response_topic(struct sb_kwriter *w, const void *name,
                                          int32_t name_len, int32_t partition_count)
{
    sb_kafka_write_topic_header(w, name, name_len, partition_count);
}

void sb_kafka_list_offsets_response_partition(struct sb_kwriter *w, int32_t partition,
                                              int16_t error, int64_t timestamp, int64_t offset)
{
    sb_kw_i32(w, partition);
    sb_kw_i16(w, error);
    sb_kw_i64(w, timestamp);
    sb_kw_i64(w, offset);
}

void sb_kafka_list_offsets_response_end(struct sb_kwriter *w, size_t frame)
{
    sb_kw_frame_end(w, frame);
}
