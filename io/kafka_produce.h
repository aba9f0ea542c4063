/*
 * kafka_produce.h - the Produce API (key 0), versions 3-7 (0-2 carry the old message format
 * and are refused): reading a request topic by topic and partition by partition without
 * copying (the record batches stay in the request buffer), and writing the response.
 */
#ifndef SB_KAFKA_PRODUCE_H
#define SB_KAFKA_PRODUCE_H

#include <stdint.h>

#include "kafka_codec.h"

#define SB_KAFKA_PRODUCE_MIN_VERSION 3
#define SB_KAFKA_PRODUCE_MAX_VERSION 7

struct sb_kafka_produce_request {
    struct sb_kslice transactional_id; /* nullable */
    int16_t acks;                      /* 0, 1 or -1 (all) */
    int32_t timeout_ms;
    int32_t topic_count;
    struct sb_kafka_topic_iter topics; /* iteration state */
};

/**
 * sb_kafka_read_produce_request - parse the fixed fields of a Produce request body of @version
 * (3-7) from @r, which then serves the iteration below (keep it alive). Returns 0, -EBADMSG,
 * or -EPROTONOSUPPORT for a version outside 3-7.
 */
int sb_kafka_read_produce_request(struct sb_kreader *r, int16_t version,
                                  struct sb_kafka_produce_request *req);

/** The next topic: 1 with its name and partition count, 0 after the last, -EBADMSG. Every
 *  partition of the previous topic must have been read. */
int sb_kafka_produce_next_topic(struct sb_kafka_produce_request *req, struct sb_kslice *name,
                                int32_t *partition_count);

/** The next partition of the current topic: 1 with its index and records (the batches'
 *  bytes, NULL when null), 0 after the last, -EBADMSG. */
int sb_kafka_produce_next_partition(struct sb_kafka_produce_request *req, int32_t *index,
                                    struct sb_kslice *records);

/* The response, written in order: begin, then per topic one topic() and its partitions. */
size_t sb_kafka_produce_response_begin(struct sb_kwriter *w, int32_t correlation_id,
                                       int32_t topic_count);
void sb_kafka_produce_response_topic(struct sb_kwriter *w, const void *name, int32_t name_len,
                                     int32_t partition_count);
void sb_kafka_produce_response_partition(struct sb_kwriter *w, int16_t version, int32_t index,
                                         int16_t error, int64_t base_offset,
                                         int64_t log_append_time_ms, int64_t log_start_offset);
void sb_kafka_produce_response_end(struct sb_kwriter *w, size_t frame);

#endif /* SB_KAFKA_PRODUCE_H */
