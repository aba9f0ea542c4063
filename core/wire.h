/*
 * wire.h - the records that travel through the bus's rings, and the stored form of an event.
 *
 * Fixed-size headers of 32-bit fields followed by the key bytes and the value bytes. No pointers:
 * the same records will cross process boundaries through shared-memory rings, so every reader
 * checks the lengths against the record it came in (sb_wire_*_valid()).
 */
#ifndef SB_WIRE_H
#define SB_WIRE_H

#include <stdbool.h>
#include <stdint.h>

enum sb_wire_type {
    SB_WIRE_EVENT = 1,    /* producer -> shard, shard -> shard: struct sb_wire_event + key + value */
    SB_WIRE_DELIVERY = 2, /* shard -> consumer: struct sb_stored_event + key + value */
    SB_WIRE_TASK = 3,     /* shard -> shard only: struct sb_wire_task (see sb_shard_post()) */
    SB_WIRE_ACK = 4,      /* shard -> producer: struct sb_wire_ack (with an ack callback) */
};

enum sb_wire_flags {
    SB_WIRE_KEY_NULL = 1u << 0,   /* a null key (not the same as an empty one, as in Kafka) */
    SB_WIRE_VALUE_NULL = 1u << 1, /* a null value: Kafka's tombstone */
};

/** An event on its way to the shard that owns its partition. */
struct sb_wire_event {
    uint32_t topic_id;
    uint32_t partition;
    uint32_t key_len;
    uint32_t value_len;
    uint32_t flags;
    uint32_t reserved;
    unsigned char bytes[]; /* key, then value */
};

struct sb_shard;

/** Work handed to another shard of the same process: run fn(target shard, arg) there. The one
 *  record type with pointers: it never leaves the process (shard-to-shard rings only). */
struct sb_wire_task {
    void (*fn)(struct sb_shard *shard, void *arg);
    void *arg;
};

/** An appended event: the form kept in a partition's memory log and sent to consumers. */
struct sb_stored_event {
    uint32_t partition;
    uint32_t key_len;
    uint32_t value_len;
    uint32_t flags;
    int64_t offset;
    int64_t timestamp_ms;
    unsigned char bytes[]; /* key, then value */
};

/** The settlement of @count consecutive events of one producer to one partition: written
 *  (offsets base_offset .. base_offset + count - 1) when error is 0, else failed with error (a
 *  negative errno; base_offset is then -1). The producer matches them to its events in publish
 *  order per partition. */
struct sb_wire_ack {
    uint32_t topic_id;
    uint32_t partition;
    int32_t error;
    uint32_t count;
    int64_t base_offset;
};

_Static_assert(sizeof(struct sb_wire_event) == 24, "wire event header");
_Static_assert(sizeof(struct sb_wire_ack) == 24, "wire ack record");
_Static_assert(sizeof(struct sb_stored_event) == 32, "stored event header");

/** True when the lengths inside @ev fit the @record_len bytes it arrived in. */
static inline bool sb_wire_event_valid(const struct sb_wire_event *ev, uint32_t record_len)
{
    return record_len >= sizeof(*ev) &&
           (uint64_t)ev->key_len + ev->value_len <= record_len - sizeof(*ev);
}

/** True when the lengths inside @ev fit the @record_len bytes it arrived in. */
static inline bool sb_stored_event_valid(const struct sb_stored_event *ev, uint32_t record_len)
{
    return record_len >= sizeof(*ev) &&
           (uint64_t)ev->key_len + ev->value_len <= record_len - sizeof(*ev);
}

#endif /* SB_WIRE_H */
