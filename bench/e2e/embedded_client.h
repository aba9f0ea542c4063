/*
 * embedded_client.h - shardbus-bench's in-process system (--system embedded): the bus inside the
 * load generator's own process, through the public C API (core/include/shardbus.h), no server
 * and no network in between.
 *
 * Setup opens one bus (sb_bus_open: --shards shard threads, 0 = one per CPU; memory only, or
 * with --data-dir DIR the durable log under --durability) and creates the topic "sb-bench" of
 * --partitions partitions; a data dir that already holds that topic is refused, since its old
 * events would be delivered again and counted as duplicates: give each run an empty folder.
 *
 * Producer: one sb_producer per producer thread; sb_publish with a null key (the producer
 * spreads the events over the partitions round robin). -EAGAIN (the owning shard's ring is
 * full: back-pressure) is retried, spinning briefly then yielding, and the wait counts against
 * the message's latency, which runs from its scheduled time. Flush: sb_producer_flush, its
 * failed count from sb_producer_get_stats.
 *
 * Consumer: one sb_consumer per consumer thread, sb_subscribe from SB_OFFSET_BEGINNING, then
 * sb_poll; each event's value is handed to the verifier while it is valid (before the next poll).
 *
 * Teardown closes the bus (sb_bus_close, after main.c has closed every producer and consumer);
 * a failure is printed on stderr.
 */
#ifndef BENCH_EMBEDDED_CLIENT_H
#define BENCH_EMBEDDED_CLIENT_H

#include "client.h"

/** The bus in this process through the public C API (embedded_client.c). */
extern const struct bench_system bench_embedded_system;

#endif
