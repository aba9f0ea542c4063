/*
 * kafka_admin.c - CreateTopics 0-4, DeleteTopics 0-3, InitProducerId 0-1; see kafka_admin.h.
 * Field order from Kafka's CreateTopics*.json, DeleteTopics*.json and InitProducerId*.json.
 */
#include "kafka_admin.h"

#include <errno.h>

int sb_kafka_read_create_topics_request(struct sb_kreader *r, int16_t version,
                                        struct sb_kafka_create_topics_request *req)
{
    if (version < 0 || version > 4)
        return -EPROTONOSUPPORT;
    req->version = version;
    /* A topic: name length, partitions, replication, two array lengths: 16 bytes. */
    req->topic_count = sb_kr_array_len(r, 16);
    if (r->error)
        return r->error;
    if (req->topic_count < 0)
        return -EBADMSG;
    req->r = r;
    req->topics_left = req->topic_count;
    req->timeout_ms = 0;
    req->validate_only = false;
    if (req->topic_count == 0) {
        req->timeout_ms = sb_kr_i32(r);
        req->validate_only = version >= 1 ? sb_kr_i8(r) != 0 : false;
    }
    return r->error;
}

int sb_kafka_create_topics_next(struct sb_kafka_create_topics_request *req,
                                struct sb_kafka_new_topic *topic, sb_kafka_config_fn on_config,
                                void *ctx)
{
    struct sb_kreader *r = req->r;
    if (req->topics_left == 0)
        return 0;
    req->topics_left--;
    topic->name = sb_kr_string(r);
    topic->num_partitions = sb_kr_i32(r);
    topic->replication_factor = sb_kr_i16(r);
    topic->assignment_count = sb_kr_array_len(r, 8);
    for (int32_t i = 0; i < topic->assignment_count && !r->error; i++) {
        (void)sb_kr_i32(r); /* partition index */
        int32_t brokers = sb_kr_array_len(r, 4);
        for (int32_t b = 0; b < brokers && !r->error; b++)
            (void)sb_kr_i32(r);
    }
    topic->config_count = sb_kr_array_len(r, 4);
    for (int32_t i = 0; i < topic->config_count && !r->error; i++) {
        struct sb_kslice name = sb_kr_string(r);
        struct sb_kslice value = sb_kr_string(r);
        if (!r->error && on_config)
            on_config(ctx, name, value);
    }
    if (req->topics_left == 0) {
        req->timeout_ms = sb_kr_i32(r);
        req->validate_only = req->version >= 1 ? sb_kr_i8(r) != 0 : false;
    }
    if (r->error || topic->name.len < 0 || topic->assignment_count < 0 || topic->config_count < 0)
        return -EBADMSG;
    return 1;
}

size_t sb_kafka_create_topics_response_begin(struct sb_kwriter *w, int16_t version,
                                             int32_t correlation_id, int32_t topic_count)
{
    size_t frame = sb_kafka_response_begin(w, correlation_id);
    if (version >= 2)
        sb_kw_i32(w, 0); /* throttle_time_ms */
    sb_kw_array_len(w, topic_count);
    return frame;
}

void sb_kafka_create_topics_response_topic(struct sb_kwriter *w, int16_t version,
                                           const void *name, int32_t name_len, int16_t error,
                                           const char *message)
{
    sb_kw_string(w, (const char *)name, name_len);
    sb_kw_i16(w, error);
    if (version >= 1)
        sb_kw_string(w, message, -1);
}

void sb_kafka_create_topics_response_end(struct sb_kwriter *w, size_t frame)
{
    sb_kw_frame_end(w, frame);
}

int sb_kafka_read_delete_topics_request(struct sb_kreader *r, int16_t version,
                                        struct sb_kafka_delete_topics_request *req)
{
    if (version < 0 || version > 3)
        return -EPROTONOSUPPORT;
    req->topic_count = sb_kr_array_len(r, 2);
    if (r->error)
        return r->error;
    if (req->topic_count < 0)
        return -EBADMSG;
    req->r = r;
    req->topics_left = req->topic_count;
    req->timeout_ms = 0;
    if (req->topic_count == 0)
        req->timeout_ms = sb_kr_i32(r);
    return r->error;
}

int sb_kafka_delete_topics_next(struct sb_kafka_delete_topics_request *req, struct sb_kslice *name)
{
    if (req->topics_left == 0)
        return 0;
    req->topics_left--;
    *name = sb_kr_string(req->r);
    if (req->topics_left == 0)
        req->timeout_ms = sb_kr_i32(req->r);
    return req->r->error || name->len < 0 ? -EBADMSG : 1;
}

size_t sb_kafka_delete_topics_response_begin(struct sb_kwriter *w, int16_t version,
                                             int32_t correlation_id, int32_t topic_count)
{
    size_t frame = sb_kafka_response_begin(w, correlation_id);
    if (version >= 1)
        sb_kw_i32(w, 0); /* throttle_time_ms */
    sb_kw_array_len(w, topic_count);
    return frame;
}

void sb_kafka_delete_topics_response_topic(struct sb_kwriter *w, const void *name,
                                           int32_t name_len, int16_t error)
{
    sb_kw_string(w, (const char *)name, name_len);
    sb_kw_i16(w, error);
}

void sb_kafka_delete_topics_response_end(struct sb_kwriter *w, size_t frame)
{
    sb_kw_frame_end(w, frame);
}

int sb_kafka_read_init_producer_id_request(struct sb_kreader *r, int16_t version,
                                           struct sb_kafka_init_producer_id_request *req)
{
    if (version < 0 || version > 1)
        return -EPROTONOSUPPORT;
    req->transactional_id = sb_kr_string(r);
    req->transaction_timeout_ms = sb_kr_i32(r);
    return r->error;
}

void sb_kafka_write_init_producer_id_response(struct sb_kwriter *w, int32_t correlation_id,
                                              int16_t error, int64_t producer_id,
                                              int16_t producer_epoch)
{
    size_t frame = sb_kafka_response_begin(w, correlation_id);
    sb_kw_i32(w, 0); /* throttle_time_ms */
    sb_kw_i16(w, error);
    sb_kw_i64(w, producer_id);
    sb_kw_i16(w, producer_epoch);
    sb_kw_frame_end(w, frame);
}
