/*
 * client.h - what the load generator asks of each system's client: producers that publish
 * opaque messages and consumers that each receive every message (fan-out: a consumer is its
 * own subscriber, Kafka consumer group or stream reader), whatever the system.
 *
 * A producer and a consumer belong to one thread each. The functions return 0 (or a count) on
 * success and a negative errno on failure, with a message in the caller's @err buffer where one
 * helps.
 */
#ifndef BENCH_CLIENT_H
#define BENCH_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "options.h"

/* Called by consumer_poll for each message received; the bytes are valid during the call. */
typedef void bench_deliver_fn(void *arg, const void *data, size_t len);

struct bench_system {
    const char *name;
    /* Before any client: e.g. create the topic with its partitions. @ctx is passed to all. */
    int (*setup)(const struct bench_options *o, void **ctx, char *err, size_t errlen);
    void (*teardown)(void *ctx);

    int (*producer_open)(void *ctx, int id, void **p, char *err, size_t errlen);
    /* Hand one message to the client (it may buffer, as the client normally does); blocks
     * only for the client's own back-pressure. */
    int (*produce)(void *p, const void *data, size_t len);
    /* Serve callbacks and replies without blocking. */
    void (*producer_service)(void *p);
    /* Wait until everything produced is acknowledged, at most @timeout_ms; @failed receives
     * how many messages the system refused or the client gave up on. */
    int (*producer_flush)(void *p, int timeout_ms, uint64_t *failed);
    void (*producer_close)(void *p);

    /* Returns once subscribed: a message published afterwards reaches this consumer. */
    int (*consumer_open)(void *ctx, int id, void **c, char *err, size_t errlen);
    /* Deliver what arrives within @timeout_ms; returns how many messages, or -errno. */
    int (*consumer_poll)(void *c, int timeout_ms, bench_deliver_fn *fn, void *arg);
    void (*consumer_close)(void *c);
};

/** The Kafka protocol against shardbusd, with librdkafka (kafka_client.c). */
extern const struct bench_system bench_kafka_system;
/** NATS core publish/subscribe, with libnats (nats_client.c). */
extern const struct bench_system bench_nats_system;
/** Redis PUBLISH/SUBSCRIBE, with hiredis (redis_client.c). */
extern const struct bench_system bench_redis_pubsub_system;
/** Redis streams XADD/XREAD, with hiredis (redis_client.c). */
extern const struct bench_system bench_redis_streams_system;

#endif
