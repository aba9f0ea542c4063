/* The alerts consumer: a thread subscribed to "alerts" that measures publish->consume latency
 * (every alert carries the CLOCK_MONOTONIC time its originating event was published). */
#ifndef SHARDBUS_DEMO_CONSUMER_H
#define SHARDBUS_DEMO_CONSUMER_H

#include <pthread.h>
#include <shardbus.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

#include "events.h"

#define HIST_BUCKETS 496        /* power-of-two buckets split in 8: 12.5% resolution */

struct alert_consumer {
    alignas(64) _Atomic uint64_t consumed;
    _Atomic uint64_t latency[HIST_BUCKETS]; /* ns, log buckets */
    _Atomic uint64_t max_latency;
    struct sb_consumer *handle;
    pthread_t thread;
    /* The consumer thread's own; main reads them after pthread_join(). */
    uint64_t checksum, offset_gaps, errors;
    int64_t next_offset[MAX_PARTITIONS];
    int error;
};

/* The thread's start routine; arg is the struct alert_consumer, handle set. Polls until
 * consumer_stop (state.c), then closes its handle. */
void *consumer_main(void *arg);

/* The largest latency (ns) histogram bucket b holds. */
uint64_t histogram_bucket_top(unsigned b);

#endif
