/*
 * kafka_admin.h - topic administration over the Kafka protocol: CreateTopics (key 19, versions
 * 0-4) and DeleteTopics (key 20, versions 0-3), and InitProducerId (key 22, versions 0-1) for
 * idempotent producers. Requests are read with iterators over the request buffer; responses are
 * written whole or in order.
 */
#ifndef SB_KAFKA_ADMIN_H
#define SB_KAFKA_ADMIN_H

#include <stdbool.h>
#include <stdint.h>

#include "kafka_codec.h"

/* ------------------------------ CreateTopics 0-4 ------------------------------ */

struct sb_kafka_create_topics_request {
    int16_t version;
    int32_t topic_count;
    struct sb_kreader *r;
    int32_t topics_left;
    int32_t timeout_ms;  /* read after the last topic */
    bool validate_only;  /* v1+, read after the last topic */
};

struct sb_kafka_new_topic {
    struct sb_kslice name;
    int32_t num_partitions;     /* -1: the broker's default (v4+) */
    int16_t replication_factor; /* -1: the broker's default (v4+) */
    int32_t assignment_count;   /* manual replica assignments (refused by a single broker) */
    int32_t config_count;       /* per-topic configs; read with the callback below */
};

/** Called for each config of a new topic (name, value; value may be null). */
typedef void (*sb_kafka_config_fn)(void *ctx, struct sb_kslice name, struct sb_kslice value);

int sb_kafka_read_create_topics_request(struct sb_kreader *r, int16_t version,
                                        struct sb_kafka_create_topics_request *req);
/** The next topic (1), none left (0; then timeout_ms and validate_only are set), -EBADMSG. */
int sb_kafka_create_topics_next(struct sb_kafka_create_topics_request *req,
                                struct sb_kafka_new_topic *topic, sb_kafka_config_fn on_config,
                                void *ctx);

size_t sb_kafka_create_topics_response_begin(struct sb_kwriter *w, int16_t version,
                                             int32_t correlation_id, int32_t topic_count);
void sb_kafka_create_topics_response_topic(struct sb_kwriter *w, int16_t version,
                                           const void *name, int32_t name_len, int16_t error,
                                           const char *message);
void sb_kafka_create_topics_response_end(struct sb_kwriter *w, size_t frame);

/* ------------------------------ DeleteTopics 0-3 ------------------------------ */

struct sb_kafka_delete_topics_request {
    int32_t topic_count;
    struct sb_kreader *r;
    int32_t topics_left;
    int32_t timeout_ms; /* read after the last name */
};

int sb_kafka_read_delete_topics_request(struct sb_kreader *r, int16_t version,
                                        struct sb_kafka_delete_topics_request *req);
/** The next topic name (1), none left (0; then timeout_ms is set), -EBADMSG. */
int sb_kafka_delete_topics_next(struct sb_kafka_delete_topics_request *req, struct sb_kslice *name);

size_t sb_kafka_delete_topics_response_begin(struct sb_kwriter *w, int16_t version,
                                             int32_t correlation_id, int32_t topic_count);
void sb_kafka_delete_topics_response_topic(struct sb_kwriter *w, const void *name,
                                           int32_t name_len, int16_t error);
void sb_kafka_delete_topics_response_end(struct sb_kwriter *w, size_t frame);

/* ------------------------------ InitProducerId 0-1 ------------------------------ */

struct sb_kafka_init_producer_id_request {
    struct sb_kslice transactional_id; /* nullable */
    int32_t transaction_timeout_ms;
};

int sb_kafka_read_init_producer_id_request(struct sb_kreader *r, int16_t version,
                                           struct sb_kafka_init_producer_id_request *req);
void sb_kafka_write_init_producer_id_response(struct sb_kwriter *w, int32_t correlation_id,
                                              int16_t error, int64_t producer_id,
                                              int16_t producer_epoch);

#endif /* SB_KAFKA_ADMIN_H */
