/*
 * kafka_list_offsets.h - the ListOffsets API (key 2), versions 1-2: which offset a consumer
 * starts from (earliest = timestamp -2, latest = -1, or the first offset at a timestamp).
 */
#ifndef SB_KAFKA_LIST_OFFSETS_H
#define SB_KAFKA_LIST_OFFSETS_H

#include <stdint.h>

#include "kafka_codec.h"

#define SB_KAFKA_LIST_OFFSETS_MIN_VERSION 1
#define SB_KAFKA_LIST_OFFSETS_MAX_VERSION 2
#define SB_KAFKA_TIMESTAMP_LATEST (-1)
#define SB_KAFKA_TIMESTAMP_EARLIEST (-2)

struct sb_kafka_list_offsets_request {
    int16_t version;
    int32_t replica_id;
    int8_t isolation_level; /* v2+ */
    int32_t topic_count;
    struct sb_kafka_topic_iter topics; /* iteration state */
};

/** Parse the fixed fields; 0, -EBADMSG, -EPROTONOSUPPORT. */
int sb_kafka_read_list_offsets_request(struct sb_kreader *r, int16_t version,
                                       struct sb_kafka_list_offsets_request *req);
/** The next topic (1), none left (0), -EBADMSG. */
int sb_kafka_list_offsets_next_topic(struct sb_kafka_list_offsets_request *req,
                                     struct sb_kslice *name, int32_t *partition_count);
/** The next partition and the timestamp asked for (1), none left (0), -EBADMSG. */
int sb_kafka_list_offsets_next_partition(struct sb_kafka_list_offsets_request *req,
                                         int32_t *partition, int64_t *timestamp);

size_t sb_kafka_list_offsets_response_begin(struct sb_kwriter *w, int16_t version,
                                            int32_t correlation_id, int32_t topic_count);
void sb_kafka_list_offsets_response_topic(struct sb_kwriter *w, const void *name,
                                          int32_t name_len, int32_t partition_count);
void sb_kafka_list_offsets_response_partition(struct sb_kwriter *w, int32_t partition,
                                              int16_t error, int64_t timestamp, int64_t offset);
void sb_kafka_list_offsets_response_end(struct sb_kwriter *w, size_t frame);

#endif /* SB_KAFKA_LIST_OFFSETS_H */
