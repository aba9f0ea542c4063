/* The four handlers and their per-partition state. The handlers run on the shard that owns the
 * event's partition; sb_handler_add() gets each topic's row of `stats` (state.c) as ctx. */
#ifndef SHARDBUS_DEMO_HANDLERS_H
#define SHARDBUS_DEMO_HANDLERS_H

#include <stdalign.h>
#include <stdatomic.h>
#include <stdint.h>

/* Only the owning shard's thread writes it. handled and derived are read by the main thread
 * while the bus runs; the other fields only after sb_bus_close() joined the shard threads. */
struct partition_stats {
    alignas(64) _Atomic uint64_t handled;
    _Atomic uint64_t derived;   /* events the handler published from this partition */
    uint64_t checksum;          /* sum of mix64(id) of the events handled */
    uint64_t derived_checksum;  /* sum of mix64(id) of the events derived */
    int64_t next_offset;
    uint64_t offset_gaps, errors; /* errors: malformed events, failed publishes, carts out of order */
};

/* What the handlers computed, summed over the partitions. */
struct handler_totals {
    int64_t outstanding_cents;  /* payments: rent not paid */
    int64_t revenue_cents;      /* orders */
    uint64_t by_reason[3];      /* alerts: late, short, big order */
};

/* Only after sb_bus_close() joined the shard threads. */
void handler_totals(struct handler_totals *out);

#endif
