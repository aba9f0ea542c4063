/*
 * kafka_metadata.h - the Metadata API (key 3), versions 0-4: the request a client sends to learn
 * the brokers and the topics' partitions (kcat -L, every client at start), and the answer of a
 * single-broker cluster: this broker leads every partition, with itself as the only replica.
 */
#ifndef SB_KAFKA_METADATA_H
#define SB_KAFKA_METADATA_H

#include <stdbool.h>
#include <stdint.h>

#include "kafka_codec.h"

#define SB_KAFKA_METADATA_MAX_TOPICS 1024

struct sb_kafka_metadata_request {
    int32_t topic_count;  /* -1: all topics (null array, v1+; an empty array in v0) */
    struct sb_kslice topics[SB_KAFKA_METADATA_MAX_TOPICS];
    bool allow_auto_topic_creation; /* v4; true before */
};

/**
 * sb_kafka_read_metadata_request - parse the body (after the header) of a Metadata request of
 * @version (0-4). Returns 0, -EBADMSG (malformed or truncated), or -E2BIG (more than
 * SB_KAFKA_METADATA_MAX_TOPICS topics named).
 */
int sb_kafka_read_metadata_request(struct sb_kreader *r, int16_t version,
                                   struct sb_kafka_metadata_request *req);

struct sb_kafka_broker {
    int32_t node_id;
    const char *host;
    int32_t port;
};

struct sb_kafka_topic_metadata {
    const char *name;
    int16_t error;       /* SB_KAFKA_NONE, or e.g. SB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION */
    int32_t partitions;  /* 0 with an error */
};

/**
 * sb_kafka_write_metadata_response - the whole response frame (size, header v0, body of
 * @version 0-4): @broker as the only broker and the controller, @cluster_id (v2+, may be
 * NULL), and @topics with every partition led by @broker.
 */
void sb_kafka_write_metadata_response(struct sb_kwriter *w, int16_t version,
                                      int32_t correlation_id,
                                      const struct sb_kafka_broker *broker,
                                      const char *cluster_id,
                                      const struct sb_kafka_topic_metadata *topics,
                                      int32_t topic_count);

#endif /* SB_KAFKA_METADATA_H */
