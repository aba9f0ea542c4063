/*
 * acks.c - per-event acknowledgements: the shard's records and the producer's queues of
 * opaques; see acks.h.
 */
#include "acks.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "bus.h"

/* Bytes one record occupies in the ring: the ring never pads (see acks.h). */
#define ACK_RECORD_BYTES 32u
_Static_assert(ACK_RECORD_BYTES ==
                   ((sizeof(struct sb_wire_ack) + SB_RING_HEADER_BYTES + SB_RING_ALIGN - 1) &
                    ~(SB_RING_ALIGN - 1)),
               "an ack record fills 32 ring bytes");
_Static_assert(SB_RING_MIN_CAPACITY % ACK_RECORD_BYTES == 0, "whole records in any ring");

int sb_link_acks_init(struct sb_producer_link *link, uint64_t capacity)
{
    size_t bytes;
    link->ack_ring_mem = sb_ring_alloc(capacity, &bytes);
    if (!link->ack_ring_mem)
        return -ENOMEM;
    if (sb_ring_producer_attach(&link->ack_w, link->ack_ring_mem, bytes) ||
        sb_ring_consumer_attach(&link->ack_r, link->ack_ring_mem, bytes)) {
        free(link->ack_ring_mem);
        link->ack_ring_mem = NULL;
        return -EINVAL;
    }
    /* No hysteresis at full (ring.h): sb_link_ack_room() promises records by counting the
     * ring's exact room, and a promised claim must not fail. */
    link->ack_w.refill_bytes = 0;
    link->ack_owed = 0;
    link->ack_last = NULL;
    link->ack_blocked = false;
    return 0;
}

void sb_link_acks_free(struct sb_producer_link *link)
{
    free(link->ack_ring_mem);
    link->ack_ring_mem = NULL;
}

bool sb_link_ack_room(struct sb_producer_link *link)
{
    /* Acquire pairs with the seq_cst store in sb_producer_close(): a closed producer reads no
     * more records, so they are dropped rather than waited for. */
    if (atomic_load_explicit(&link->closed, memory_order_acquire))
        return true;
    struct sb_ring_producer *w = &link->ack_w;
    /* Whole records fit the data area exactly (no padding ever), less one: a commit keeps the
     * mark after its records free (ring.h), so a ring holds capacity - 8 bytes. */
    const uint64_t records = (w->mask + 1) / ACK_RECORD_BYTES - 1;
    if ((w->claimed - w->head_cache) / ACK_RECORD_BYTES + link->ack_owed + 1 <= records)
        return true;
    /* sb_ring_unreleased_bytes() re-reads head (acquire, pairing with the producer's release
     * in sb_producer_poll()). */
    uint64_t used = sb_ring_unreleased_bytes(w) + (w->claimed - w->committed);
    if (used / ACK_RECORD_BYTES + link->ack_owed + 1 <= records)
        return true;
    link->ack_blocked = true;
    return false;
}

void sb_link_ack(struct sb_producer_link *link, uint32_t topic_id, uint32_t partition,
                 int64_t offset, uint64_t count, int error, bool promised)
{
    if (promised && link->ack_owed)
        link->ack_owed--;
    if (error)
        offset = -1;
    struct sb_wire_ack *last = link->ack_last;
    if (last && last->topic_id == topic_id && last->partition == partition &&
        last->error == error && (error || last->base_offset + last->count == offset) &&
        (uint64_t)last->count + count <= UINT32_MAX) {
        last->count += (uint32_t)count;
        return;
    }
    while (count) {
        uint32_t n = count > UINT32_MAX ? UINT32_MAX : (uint32_t)count;
        /* Room was made sure of (sb_link_ack_room()); only a closed producer's full ring
         * refuses, and its records are not read any more. */
        struct sb_wire_ack *a = sb_ring_claim(&link->ack_w, sizeof(*a), SB_WIRE_ACK);
        if (!a)
            return;
        *a = (struct sb_wire_ack){topic_id, partition, error, n, offset};
        link->ack_last = a;
        count -= n;
        if (!error)
            offset += n;
    }
}

void sb_link_ack_commit(struct sb_producer_link *link)
{
    if (sb_ring_has_uncommitted(&link->ack_w))
        sb_ring_commit(&link->ack_w); /* release: pairs with sb_ring_peek()'s acquire */
    link->ack_last = NULL;
}

/* ---- the producer's side ---- */

#define ACK_TABLE_INITIAL 16u

static uint64_t ack_key(uint32_t topic_id, uint32_t partition)
{
    return (uint64_t)topic_id << 32 | partition;
}

static uint64_t ack_hash(uint64_t key)
{
    key ^= key >> 33;
    key *= 0xff51afd7ed558ccdULL;
    key ^= key >> 33;
    return key;
}

static struct sb_ack_queue *ack_slots_new(uint64_t n)
{
    struct sb_ack_queue *slots = calloc(n, sizeof(*slots));
    if (slots)
        for (uint64_t i = 0; i < n; i++)
            slots[i].key = UINT64_MAX;
    return slots;
}

int sb_ack_table_init(struct sb_ack_table *t)
{
    memset(t, 0, sizeof(*t));
    t->slots = ack_slots_new(ACK_TABLE_INITIAL);
    if (!t->slots)
        return -ENOMEM;
    t->mask = ACK_TABLE_INITIAL - 1;
    return 0;
}

void sb_ack_table_destroy(struct sb_ack_table *t)
{
    if (!t->slots)
        return;
    for (uint64_t i = 0; i <= t->mask; i++)
        free(t->slots[i].items);
    free(t->slots);
    t->slots = NULL;
}

static struct sb_ack_queue *ack_find_slot(struct sb_ack_queue *slots, uint64_t mask, uint64_t key)
{
    uint64_t i = ack_hash(key) & mask;
    while (slots[i].key != UINT64_MAX && slots[i].key != key)
        i = (i + 1) & mask;
    return &slots[i];
}

struct sb_ack_queue *sb_ack_table_get(struct sb_ack_table *t, uint32_t topic_id,
                                      uint32_t partition, const struct sb_topic *topic)
{
    uint64_t key = ack_key(topic_id, partition);
    struct sb_ack_queue *q = ack_find_slot(t->slots, t->mask, key);
    if (q->key == key || !topic)
        return q->key == key ? q : NULL;
    if ((t->used + 1) * 2 > t->mask + 1) {
        uint64_t mask = t->mask * 2 + 1;
        struct sb_ack_queue *slots = ack_slots_new(mask + 1);
        if (!slots)
            return NULL;
        for (uint64_t i = 0; i <= t->mask; i++)
            if (t->slots[i].key != UINT64_MAX)
                *ack_find_slot(slots, mask, t->slots[i].key) = t->slots[i];
        free(t->slots);
        t->slots = slots;
        t->mask = mask;
        t->generation++;
        q = ack_find_slot(t->slots, t->mask, key);
    }
    q->key = key;
    q->topic = topic;
    t->used++;
    return q;
}

int sb_ack_queue_reserve(struct sb_ack_queue *q)
{
    uint64_t cap = q->items ? q->mask + 1 : 0;
    if (q->tail - q->head < cap)
        return 0;
    uint64_t ncap = cap ? cap * 2 : 64;
    void **items = malloc(ncap * sizeof(*items));
    if (!items)
        return -ENOMEM;
    for (uint64_t i = 0; i < cap; i++)
        items[i] = q->items[(q->head + i) & q->mask];
    free(q->items);
    q->items = items;
    q->tail = cap;
    q->head = 0;
    q->mask = ncap - 1;
    return 0;
}
