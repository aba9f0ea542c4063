/*
 * kafka_metadata.c - Metadata versions 0-4; see kafka_metadata.h. Field order from Kafka's
 * MetadataRequest.json / MetadataResponse.json.
 */
#include "kafka_metadata.h"

#include <errno.h>

int sb_kafka_read_metadata_request(struct sb_kreader *r, int16_t version,
                                   struct sb_kafka_metadata_request *req)
{
    /* Each topic name takes at least its 2-byte length. */
    int32_t n = sb_kr_array_len(r, 2);
    if (r->error)
        return r->error;
    if (n == -1 && version < 1)
        return -EBADMSG; /* v0 has no null array: an empty one means all */
    if (n == 0 && version < 1)
        n = -1;
    if (n > SB_KAFKA_METADATA_MAX_TOPICS)
        return -E2BIG;
    req->topic_count = n;
    for (int32_t i = 0; i < n; i++) {
        req->topics[i] = sb_kr_string(r);
        if (!r->error && req->topics[i].len < 0)
            return -EBADMSG; /* a null topic name */
    }
    req->allow_auto_topic_creation = version >= 4 ? sb_kr_i8(r) != 0 : true;
    return r->error;
}

void sb_kafka_write_metadata_response(struct sb_kwriter *w, int16_t version,
                                      int32_t correlation_id,
                                      const struct sb_kafka_broker *broker,
                                      const char *cluster_id,
                                      const struct sb_kafka_topic_metadata *topics,
                                      int32_t topic_count)
{
    size_t frame = sb_kafka_response_begin(w, correlation_id);
    if (version >= 3)
        sb_kw_i32(w, 0); /* throttle_time_ms */
    sb_kw_array_len(w, 1);
    sb_kw_i32(w, broker->node_id);
    sb_kw_string(w, broker->host, -1);
    sb_kw_i32(w, broker->port);
    if (version >= 1)
        sb_kw_string(w, NULL, 0); /* rack */
    if (version >= 2)
        sb_kw_string(w, cluster_id, -1);
    if (version >= 1)
        sb_kw_i32(w, broker->node_id); /* controller_id */
    sb_kw_array_len(w, topic_count);
    for (int32_t t = 0; t < topic_count; t++) {
        const struct sb_kafka_topic_metadata *tm = &topics[t];
        sb_kw_i16(w, tm->error);
        sb_kw_string(w, tm->name, -1);
        if (version >= 1)
            sb_kw_i8(w, 0); /* is_internal */
        int32_t parts = tm->error ? 0 : tm->partitions;
        sb_kw_array_len(w, parts);
        for (int32_t p = 0; p < parts; p++) {
            sb_kw_i16(w, SB_KAFKA_NONE);
            sb_kw_i32(w, p);
            sb_kw_i32(w, broker->node_id); /* leader */
            sb_kw_array_len(w, 1);         /* replicas */
            sb_kw_i32(w, broker->node_id);
            sb_kw_array_len(w, 1);         /* in-sync replicas */
            sb_kw_i32(w, broker->node_id);
        }
    }
    sb_kw_frame_end(w, frame);
}
