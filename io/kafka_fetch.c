/*
 * kafka_fetch.c - Fetch versions 4-11; see kafka_fetch.h. Field order from Kafka's
 * FetchRequest.json / FetchResponse.json.
 */
#include "kafka_fetch.h"

#include <errno.h>

int sb_kafka_read_fetch_request(struct sb_kreader *r, int16_t version,
                                struct sb_kafka_fetch_request *req)
{
    if (version < SB_KAFKA_FETCH_MIN_VERSION || version > SB_KAFKA_FETCH_MAX_VERSION)
        return -EPROTONOSUPPORT;
    req->version = version;
    req->replica_id = sb_kr_i32(r);
    req->max_wait_ms = sb_kr_i32(r);
    req->min_bytes = sb_kr_i32(r);
    req->max_bytes = sb_kr_i32(r);       /* v3+ */
    req->isolation_level = sb_kr_i8(r); /* v4+ */
    req->session_id = version >= 7 ? sb_kr_i32(r) : 0;
    req->session_epoch = version >= 7 ? sb_kr_i32(r) : -1;
    /* A topic takes at least its name length and partition count: 6 bytes. */
    req->topic_count = sb_kr_array_len(r, 6);
    if (r->error)
        return r->error;
    if (req->topic_count < 0)
        return -EBADMSG;
    /* A partition takes at least 16 bytes (index, offset, max bytes). */
    sb_kafka_topic_iter_init(&req->topics, r, req->topic_count, 16);
    req->trailer_read = false;
    return 0;
}

/* After the topics: forgotten topics (v7+) and the rack id (v11+); only checked. */
static int read_trailer(struct sb_kafka_fetch_request *req)
{
    struct sb_kreader *r = req->topics.r;
    if (req->trailer_read)
        return r->error ? -EBADMSG : 0;
    req->trailer_read = true;
    if (req->version >= 7) {
        int32_t n = sb_kr_array_len(r, 6);
        for (int32_t i = 0; i < n && !r->error; i++) {
            (void)sb_kr_string(r);
            int32_t parts = sb_kr_array_len(r, 4);
            for (int32_t p = 0; p < parts && !r->error; p++)
                (void)sb_kr_i32(r);
        }
    }
    if (req->version >= 11)
        (void)sb_kr_string(r);
    return r->error ? -EBADMSG : 0;
}

int sb_kafka_fetch_next_topic(struct sb_kafka_fetch_request *req, struct sb_kslice *name,
                              int32_t *partition_count)
{
    int rc = sb_kafka_topic_iter_next(&req->topics, name, partition_count);
    return rc == 0 ? read_trailer(req) : rc;
}

int sb_kafka_fetch_next_partition(struct sb_kafka_fetch_request *req,
                                  struct sb_kafka_fetch_partition *out)
{
    if (!sb_kafka_topic_iter_partition(&req->topics))
        return 0;
    struct sb_kreader *r = req->topics.r;
    out->partition = sb_kr_i32(r);
    out->current_leader_epoch = req->version >= 9 ? sb_kr_i32(r) : -1;
    out->fetch_offset = sb_kr_i64(r);
    out->log_start_offset = req->version >= 5 ? sb_kr_i64(r) : -1;
    out->partition_max_bytes = sb_kr_i32(r);
    return r->error ? -EBADMSG : 1;
}

size_t sb_kafka_fetch_response_begin(struct sb_kwriter *w, int16_t version,
                                     int32_t correlation_id, int16_t error, int32_t topic_count)
{
    size_t frame = sb_kafka_response_begin(w, correlation_id);
    sb_kw_i32(w, 0); /* throttle_time_ms */
    if (version >= 7) {
        sb_kw_i16(w, error);
        sb_kw_i32(w, 0); /* session_id: no fetch sessions */
    }
    sb_kw_array_len(w, topic_count);
    return frame;
}

void sb_kafka_fetch_response_topic(struct sb_kwriter *w, const void *name, int32_t name_len,
                                   int32_t partition_count)
{
    sb_kafka_write_topic_header(w, name, name_len, partition_count);
}

static void fetch_partition_header(struct sb_kwriter *w, int16_t version, int32_t partition,
                                   int16_t error, int64_t high_watermark,
                                   int64_t log_start_offset)
{
    sb_kw_i32(w, partition);
    sb_kw_i16(w, error);
    sb_kw_i64(w, high_watermark);
    sb_kw_i64(w, high_watermark); /* last_stable_offset: no transactions */
    if (version >= 5)
        sb_kw_i64(w, log_start_offset);
    sb_kw_array_len(w, -1); /* aborted_transactions: null */
    if (version >= 11)
        sb_kw_i32(w, -1); /* preferred_read_replica */
}

void sb_kafka_fetch_response_partition(struct sb_kwriter *w, int16_t version, int32_t partition,
                                       int16_t error, int64_t high_watermark,
                                       int64_t log_start_offset, const void *records,
                                       int32_t records_len)
{
    fetch_partition_header(w, version, partition, error, high_watermark, log_start_offset);
    sb_kw_bytes(w, records, records_len);
}

void sb_kafka_fetch_response_partition_ref(struct sb_kwriter *w, int16_t version,
                                           int32_t partition, int16_t error,
                                           int64_t high_watermark, int64_t log_start_offset,
                                           const void *records, int32_t records_len)
{
    fetch_partition_header(w, version, partition, error, high_watermark, log_start_offset);
    sb_kw_bytes_ref(w, records, records_len);
}

void sb_kafka_fetch_response_end(struct sb_kwriter *w, size_t frame)
{
    sb_kw_frame_end(w, frame);
}
