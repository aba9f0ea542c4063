/*
 * bus.h - the bus object shared by the API functions (bus.c, producer.c, consumer.c,
 * handler.c) and the shards.
 */
#ifndef SB_BUS_H
#define SB_BUS_H

#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>

#include <shardbus.h>

#include "shard.h"
#include "topic.h"

struct sb_bus {
    struct sb_config cfg;      /* copy, with defaults resolved; cfg.cpus points at cpus */
    int *cpus;
    unsigned shard_count;
    bool light_wakeups;        /* producers use sb_parker_wake_light() (park.h); fixed at open */
    struct sb_shard **shards;
    void **shard_ring_mem;     /* [from * shard_count + to] */
    struct sb_topic_table topics;
    uint64_t ring_capacity;
    uint64_t partition_capacity; /* partition_memory_bytes rounded up to a power of two */
    size_t max_event_bytes;
    /* Open producers and consumers: sb_bus_close() refuses while either is non-zero. Relaxed:
     * a plain count; the close that reads it synchronises with the shards separately. */
    _Atomic int open_producers;
    _Atomic int open_consumers;
    int lock_fd;               /* data_dir's flock, -1 without one */
    cpu_set_t allowed_cpus;    /* the CPUs this process may run on, at sb_bus_open() */
};

/**
 * sb_event_check - the checks every publish makes: -EINVAL for a NULL pointer with a non-zero
 * length, -EMSGSIZE when key_len + value_len exceeds max_event_bytes, else 0. Any thread.
 */
static inline int sb_event_check(const struct sb_bus *bus, const void *key, size_t key_len,
                                 const void *value, size_t value_len)
{
    if ((!key && key_len) || (!value && value_len))
        return -EINVAL;
    if (key_len > bus->max_event_bytes || value_len > bus->max_event_bytes - key_len)
        return -EMSGSIZE;
    return 0;
}

/** sb_ring_alloc - allocate and format a ring of @capacity; *bytes receives its size. */
void *sb_ring_alloc(uint64_t capacity, size_t *bytes);

#endif /* SB_BUS_H */
