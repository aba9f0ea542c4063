/*
 * kafka_fetch.h - the Fetch API (key 1), versions 4-11: reading a request topic by topic and
 * partition by partition, and writing the response with the stored record batches as they are
 * (no re-encoding). Incremental fetch sessions are not offered: the response always carries
 * session id 0, which makes clients (librdkafka) send full fetches.
 */
#ifndef SB_KAFKA_FETCH_H
#define SB_KAFKA_FETCH_H

#include <stdbool.h>
#include <stdint.h>

#include "kafka_codec.h"

#define SB_KAFKA_FETCH_MIN_VERSION 4
#define SB_KAFKA_FETCH_MAX_VERSION 11

struct sb_kafka_fetch_request {
    int16_t version;
    int32_t replica_id;
    int32_t max_wait_ms;
    int32_t min_bytes;
    int32_t max_bytes;
    int8_t isolation_level;
    int32_t session_id, session_epoch; /* v7+ */
    int32_t topic_count;
    struct sb_kafka_topic_iter topics; /* iteration state */
    bool trailer_read;                 /* forgotten topics and rack id, after the topics */
};

struct sb_kafka_fetch_partition {
    int32_t partition;
    int32_t current_leader_epoch; /* v9+, else -1 */
    int64_t fetch_offset;
    int64_t log_start_offset;     /* v5+, else -1 */
    int32_t partition_max_bytes;
};

/** Parse the fixed fields of a Fetch request body; 0, -EBADMSG, -EPROTONOSUPPORT. */
int sb_kafka_read_fetch_request(struct sb_kreader *r, int16_t version,
                                struct sb_kafka_fetch_request *req);

/** The next topic (1), none left (0), or -EBADMSG; all partitions of the previous topic must
 *  have been read. After the last topic the trailing fields (forgotten topics, rack id) are
 *  read and checked. */
int sb_kafka_fetch_next_topic(struct sb_kafka_fetch_request *req, struct sb_kslice *name,
                              int32_t *partition_count);

/** The next partition of the current topic (1), none left (0), or -EBADMSG. */
int sb_kafka_fetch_next_partition(struct sb_kafka_fetch_request *req,
                                  struct sb_kafka_fetch_partition *out);

/* The response, written in order: begin, per topic one topic() and its partitions, end. */
size_t sb_kafka_fetch_response_begin(struct sb_kwriter *w, int16_t version,
                                     int32_t correlation_id, int16_t error, int32_t topic_count);
void sb_kafka_fetch_response_topic(struct sb_kwriter *w, const void *name, int32_t name_len,
                                   int32_t partition_count);
/** One partition: @records is the stored batches' bytes (@records_len bytes), or NULL. */
void sb_kafka_fetch_response_partition(struct sb_kwriter *w, int16_t version, int32_t partition,
                                       int16_t error, int64_t high_watermark,
                                       int64_t log_start_offset, const void *records,
                                       int32_t records_len);
/** The same, referring to @records instead of copying them (sb_kw_bytes_ref()): they must stay
 *  unchanged until the response is sent, and the response frame must start at offset 0. */
void sb_kafka_fetch_response_partition_ref(struct sb_kwriter *w, int16_t version,
                                           int32_t partition, int16_t error,
                                           int64_t high_watermark, int64_t log_start_offset,
                                           const void *records, int32_t records_len);
void sb_kafka_fetch_response_end(struct sb_kwriter *w, size_t frame);

#endif /* SB_KAFKA_FETCH_H */
