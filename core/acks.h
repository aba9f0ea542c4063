/*
 * acks.h - per-event acknowledgements for producers with an ack callback.
 *
 * The shard's side: struct sb_wire_ack records through a per-link SPSC ring (shard ->
 * producer), each settling consecutive events of one partition. Every record is 32 bytes in
 * the ring and the ring's capacity is a multiple of 32, so the ring never pads and its free
 * room is a whole number of records: the shard takes an event only when the record it may
 * need is guaranteed room (sb_link_ack_room()), so writing a record never fails and nothing is
 * ever queued on the side.
 *
 * The producer's side: the opaque pointers of its unsettled events, one FIFO per partition
 * (acknowledgements of one partition come in publish order), in a small hash table owned by
 * the producer's thread.
 */
#ifndef SB_ACKS_H
#define SB_ACKS_H

#include <stdbool.h>
#include <stdint.h>

#include "shard.h"
#include "topic.h"
#include "wire.h"

/** sb_link_acks_init - give @link an ack ring of @capacity bytes. 0 or -ENOMEM / -EINVAL.
 *  Before the link is attached to its shard. */
int sb_link_acks_init(struct sb_producer_link *link, uint64_t capacity);

/** sb_link_acks_free - free the ack ring (NULL-safe on a link without one). */
void sb_link_acks_free(struct sb_producer_link *link);

/** sb_link_has_acks - the link's producer has an ack callback. */
static inline bool sb_link_has_acks(const struct sb_producer_link *link)
{
    return link && link->ack_ring_mem;
}

/**
 * sb_link_ack_room - can the shard promise @link one more record (on top of those already
 * promised)? True always for a closed link (its records are dropped). When false, sets
 * link->ack_blocked (the producer's release of ring space wakes the shard). Shard thread.
 */
bool sb_link_ack_room(struct sb_producer_link *link);

/**
 * sb_link_ack - settle @count events of partition @partition of topic @topic_id: written at
 * @offset.. (error 0) or failed with @error (offset ignored). Merged into the newest record
 * when it continues it; otherwise uses room made sure of by sb_link_ack_room() (one promised
 * record when @promised, else room checked just before). Visible after sb_link_ack_commit().
 * Shard thread.
 */
void sb_link_ack(struct sb_producer_link *link, uint32_t topic_id, uint32_t partition,
                 int64_t offset, uint64_t count, int error, bool promised);

/** sb_link_ack_commit - make the records written so far visible to the producer. Shard. */
void sb_link_ack_commit(struct sb_producer_link *link);

/** One partition's opaques of events not yet acknowledged, in publish order (a ring). */
struct sb_ack_queue {
    uint64_t key;              /* topic id << 32 | partition; UINT64_MAX: a free slot */
    const struct sb_topic *topic;
    void **items;
    uint64_t head, tail;       /* items[head & mask] .. items[(tail - 1) & mask] */
    uint64_t mask;             /* capacity - 1 (0 when no items array yet) */
};

/** The producer's queues by (topic, partition): open addressing, grown when half full. */
struct sb_ack_table {
    struct sb_ack_queue *slots;
    uint64_t mask;
    uint64_t used;
    uint64_t generation;       /* bumped when slots move: queue pointers become stale */
};

int sb_ack_table_init(struct sb_ack_table *t);
void sb_ack_table_destroy(struct sb_ack_table *t);

/** sb_ack_table_get - the queue of (@topic_id, @partition); with @topic non-NULL, created when
 *  missing (NULL when out of memory), else NULL when missing. */
struct sb_ack_queue *sb_ack_table_get(struct sb_ack_table *t, uint32_t topic_id,
                                      uint32_t partition, const struct sb_topic *topic);

/** sb_ack_queue_reserve - room for one more item: 0 or -ENOMEM. */
int sb_ack_queue_reserve(struct sb_ack_queue *q);

static inline void sb_ack_queue_push(struct sb_ack_queue *q, void *opaque)
{
    q->items[q->tail++ & q->mask] = opaque;
}

static inline bool sb_ack_queue_pop(struct sb_ack_queue *q, void **opaque)
{
    if (q->head == q->tail)
        return false;
    *opaque = q->items[q->head++ & q->mask];
    return true;
}

#endif /* SB_ACKS_H */
