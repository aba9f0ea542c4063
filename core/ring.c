/*
 * ring.c - the slow path of the SPSC ring: formatting and attaching (the fast path is inline in
 * ring.h).
 */
#include "ring.h"

#include <stdint.h>

int sb_ring_format(void *mem, size_t mem_bytes, uint64_t capacity)
{
    if (!mem || capacity < SB_RING_MIN_CAPACITY || (capacity & (capacity - 1)) != 0 ||
        capacity > SB_RING_MAX_CAPACITY || ((uintptr_t)mem % SB_CACHE_GUARD) != 0 ||
        mem_bytes < sb_ring_memory_size(capacity))
        return -EINVAL;
    struct sb_ring_shared *s = mem;
    memset(s, 0, sizeof(*s));
    s->magic = SB_RING_MAGIC;
    s->version = SB_RING_VERSION;
    s->capacity = capacity;
    s->data_offset = sizeof(struct sb_ring_shared);
    /* Relaxed: nothing has attached yet; whoever attaches gets the memory through a
     * synchronising hand-over (thread creation, a mutex, or mmap of a file in another
     * process). */
    atomic_store_explicit(&s->tail, 0, memory_order_relaxed);
    atomic_store_explicit(&s->head, 0, memory_order_relaxed);
    /* The consumer starts by reading the mark at position 0: it must say "nothing committed".
     * Every later position is zeroed by the commit that ends there (ring.h). Relaxed: as above. */
    struct sb_ring_record *first = (struct sb_ring_record *)((unsigned char *)mem + sizeof(*s));
    atomic_store_explicit(&first->mark, 0u, memory_order_relaxed);
    return 0;
}

static int ring_validate(const struct sb_ring_shared *s, size_t mem_bytes)
{
    if (!s || mem_bytes < sizeof(*s))
        return -EINVAL;
    if (s->magic != SB_RING_MAGIC || s->version != SB_RING_VERSION)
        return -EPROTO;
    if (s->capacity < SB_RING_MIN_CAPACITY || s->capacity > SB_RING_MAX_CAPACITY ||
        (s->capacity & (s->capacity - 1)) != 0 ||
        s->data_offset != sizeof(*s) || mem_bytes < sb_ring_memory_size(s->capacity))
        return -EINVAL;
    return 0;
}

int sb_ring_producer_attach(struct sb_ring_producer *p, void *mem, size_t mem_bytes)
{
    struct sb_ring_shared *s = mem;
    int rc = ring_validate(s, mem_bytes);
    if (rc)
        return rc;
    p->shared = s;
    p->data = (unsigned char *)mem + s->data_offset;
    p->mask = s->capacity - 1;
    /* Acquire pairs with a previous producer's release commit (re-attach after a hand-over);
     * for a fresh ring it reads 0. */
    p->committed = atomic_load_explicit(&s->tail, memory_order_acquire);
    p->claimed = p->committed;
    /* Acquire pairs with the consumer's release store of head in sb_ring_release(). */
    p->head_cache = atomic_load_explicit(&s->head, memory_order_acquire);
    p->pending_mark = 0;
    p->refill_bytes =
        s->capacity / 16 < SB_RING_REFILL_BYTES ? s->capacity / 16 : SB_RING_REFILL_BYTES;
    /* A producer always leaves a header's worth free after its records (the zero mark). */
    if ((p->committed & (SB_RING_ALIGN - 1)) ||
        p->committed - p->head_cache > s->capacity - SB_RING_HEADER_BYTES)
        return -EINVAL; /* indexes another process scribbled on */
    return 0;
}

int sb_ring_consumer_attach(struct sb_ring_consumer *c, void *mem, size_t mem_bytes)
{
    struct sb_ring_shared *s = mem;
    int rc = ring_validate(s, mem_bytes);
    if (rc)
        return rc;
    c->shared = s;
    c->data = (const unsigned char *)mem + s->data_offset;
    c->mask = s->capacity - 1;
    /* Acquire pairs with a previous consumer's release of head (re-attach after a hand-over). */
    c->read = atomic_load_explicit(&s->head, memory_order_acquire);
    c->released = c->read;
    c->partial = 0;
    if (c->read & (SB_RING_ALIGN - 1))
        return -EINVAL; /* an index another process scribbled on: records are 8-byte aligned */
    return 0;
}
