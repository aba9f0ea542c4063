/*
 * ring.h - single-producer/single-consumer ring of variable-length records.
 *
 * The ring memory (struct sb_ring_shared followed by the data area) holds no pointers, only
 * 64-bit ever-increasing byte positions, and has a fixed, versioned layout, so the same ring
 * can live in shared memory between two processes. Each side keeps its private state in its own
 * handle (struct sb_ring_producer / struct sb_ring_consumer), including a cached copy of the
 * other side's index: the shared index is read only when the cached one says full (producer) or
 * empty (consumer).
 *
 * Records: an 8-byte header (payload length, type) then the payload, padded to 8 bytes. A
 * record never straddles the end of the data area: when it would, the producer writes a padding
 * record up to the end and places the record at the start.
 *
 * Publication: the producer writes records with plain stores, then publishes them all with one
 * release store of `tail` (commit); the consumer reads `tail` with acquire. The consumer frees
 * space with one release store of `head` (release); the producer reads `head` with acquire.
 * Claim/commit gives zero-copy writes and batching on both sides.
 *
 * Threading: one thread (at a time) uses the producer handle, one the consumer handle.
 */
#ifndef SB_RING_H
#define SB_RING_H

#include <assert.h>
#include <errno.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cacheline.h"

#define SB_RING_MAGIC 0x53425247u /* "SBRG" */
#define SB_RING_VERSION 1u
#define SB_RING_ALIGN 8u
#define SB_RING_HEADER_BYTES 8u
#define SB_RING_MIN_CAPACITY 4096u
/** Type of the padding record at the wrap; other types are the user's. */
#define SB_RING_TYPE_PADDING 0xFFFFFFFFu

/** Shared, fixed layout (version 1). Offsets are checked by static asserts below. */
struct sb_ring_shared {
    /* Immutable after sb_ring_format(). */
    alignas(SB_CACHE_GUARD) uint32_t magic;
    uint32_t version;
    uint64_t capacity;    /* bytes of the data area, a power of two */
    uint64_t data_offset; /* from the start of this struct to the data area */
    /* Written by the producer only: position one past the last committed record. */
    alignas(SB_CACHE_GUARD) _Atomic uint64_t tail;
    /* Written by the consumer only: position one past the last released record. */
    alignas(SB_CACHE_GUARD) _Atomic uint64_t head;
    alignas(SB_CACHE_GUARD) uint8_t end_guard[SB_CACHE_GUARD];
};

static_assert(offsetof(struct sb_ring_shared, tail) == 1 * SB_CACHE_GUARD, "ring layout v1");
static_assert(offsetof(struct sb_ring_shared, head) == 2 * SB_CACHE_GUARD, "ring layout v1");
static_assert(sizeof(struct sb_ring_shared) == 4 * SB_CACHE_GUARD, "ring layout v1");

/** Record header, at an 8-byte aligned position of the data area. */
struct sb_ring_record {
    uint32_t length; /* payload bytes, excluding this header and the padding after it */
    uint32_t type;
    unsigned char payload[];
};
static_assert(sizeof(struct sb_ring_record) == SB_RING_HEADER_BYTES, "record header");

/** Producer-private state. */
struct sb_ring_producer {
    struct sb_ring_shared *shared;
    unsigned char *data;
    uint64_t mask;
    uint64_t claimed;    /* end of the records claimed so far (not yet visible) */
    uint64_t committed;  /* the value last stored to shared->tail */
    uint64_t head_cache; /* last value read from shared->head */
};

/** Consumer-private state. */
struct sb_ring_consumer {
    struct sb_ring_shared *shared;
    const unsigned char *data;
    uint64_t mask;
    uint64_t read;       /* next record to read (records before it are read, maybe not released) */
    uint64_t released;   /* the value last stored to shared->head */
    uint64_t tail_cache; /* last value read from shared->tail */
};

/** sb_ring_occupancy - bytes committed and not yet released in the ring, as seen now. Any
 *  thread (metrics): relaxed loads, the value may be stale by the time it is used. */
static inline uint64_t sb_ring_occupancy(const struct sb_ring_consumer *c)
{
    uint64_t tail = atomic_load_explicit(&c->shared->tail, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&c->shared->head, memory_order_relaxed);
    return tail - head;
}

/** Bytes of memory a ring of @capacity data bytes needs (shared header + data). */
static inline size_t sb_ring_memory_size(uint64_t capacity)
{
    return sizeof(struct sb_ring_shared) + (size_t)capacity;
}

/** Bytes a record of @len payload bytes occupies in the ring. */
static inline uint64_t sb_ring_record_size(size_t len)
{
    return ((uint64_t)len + SB_RING_HEADER_BYTES + SB_RING_ALIGN - 1) & ~(uint64_t)(SB_RING_ALIGN - 1);
}

/** Largest payload a ring of @capacity can always accept once drained (half the ring, so the
 *  padding at the wrap plus the record always fit into an empty ring). */
static inline size_t sb_ring_max_payload(uint64_t capacity)
{
    return (size_t)(capacity / 2 - SB_RING_HEADER_BYTES);
}

/**
 * sb_ring_format - lay out an empty ring in @mem (sb_ring_memory_size(capacity) bytes, aligned
 * to SB_CACHE_GUARD). Returns 0, or -EINVAL (capacity not a power of two, below
 * SB_RING_MIN_CAPACITY, or mem misaligned / too small). Call before either side attaches.
 */
int sb_ring_format(void *mem, size_t mem_bytes, uint64_t capacity);

/**
 * sb_ring_producer_attach / sb_ring_consumer_attach - bind a handle to a formatted ring,
 * validating magic, version, capacity and size (the memory may come from another process).
 * Returns 0, or -EPROTO (wrong magic or version), -EINVAL (inconsistent sizes).
 */
int sb_ring_producer_attach(struct sb_ring_producer *p, void *mem, size_t mem_bytes);
int sb_ring_consumer_attach(struct sb_ring_consumer *c, void *mem, size_t mem_bytes);

/**
 * sb_ring_claim - reserve room for a record of @len payload bytes and return a pointer to its
 * payload, or NULL when the ring has no room now (or len > sb_ring_max_payload()). Nothing is
 * visible to the consumer until sb_ring_commit(). Several claims may precede one commit.
 * Producer thread only. Never blocks.
 */
static inline void *sb_ring_claim(struct sb_ring_producer *p, size_t len, uint32_t type)
{
    const uint64_t capacity = p->mask + 1;
    const uint64_t need = sb_ring_record_size(len);
    const uint64_t pos = p->claimed & p->mask;
    const uint64_t pad = (pos + need > capacity) ? capacity - pos : 0;

    if (len > sb_ring_max_payload(capacity))
        return NULL;
    if (p->claimed + pad + need - p->head_cache > capacity) {
        /* Acquire pairs with the consumer's release store of head in sb_ring_release(): the
         * consumer's reads of the space we are about to overwrite happen before our writes. */
        p->head_cache = atomic_load_explicit(&p->shared->head, memory_order_acquire);
        if (p->claimed + pad + need - p->head_cache > capacity)
            return NULL;
    }
    if (pad) {
        struct sb_ring_record *padding = (struct sb_ring_record *)(p->data + pos);
        padding->length = (uint32_t)(pad - SB_RING_HEADER_BYTES);
        padding->type = SB_RING_TYPE_PADDING;
        p->claimed += pad;
    }
    struct sb_ring_record *rec = (struct sb_ring_record *)(p->data + (p->claimed & p->mask));
    rec->length = (uint32_t)len;
    rec->type = type;
    p->claimed += need;
    return rec->payload;
}

/** sb_ring_abort - drop every claim made since the last commit. Producer thread only. */
static inline void sb_ring_abort(struct sb_ring_producer *p)
{
    p->claimed = p->committed;
}

/** sb_ring_has_uncommitted - true when claims are waiting for sb_ring_commit(). */
static inline bool sb_ring_has_uncommitted(const struct sb_ring_producer *p)
{
    return p->claimed != p->committed;
}

/**
 * sb_ring_commit - make every claimed record visible to the consumer with one release store.
 * Producer thread only. Never blocks.
 */
static inline void sb_ring_commit(struct sb_ring_producer *p)
{
    /* Release pairs with the consumer's acquire load of tail in sb_ring_peek(): the record
     * bytes written before this store are visible to a consumer that sees the new tail. */
    atomic_store_explicit(&p->shared->tail, p->claimed, memory_order_release);
    p->committed = p->claimed;
}

/**
 * sb_ring_commit_seq_cst - sb_ring_commit() as a sequentially consistent exchange, for
 * producers that next check whether the consumer parked (see park.h). Paired with the
 * consumer's seq_cst store of its park flag followed by sb_ring_is_empty_seq_cst(): of the two
 * sides, at least one sees the other's store, so a wake-up is never lost.
 */
static inline void sb_ring_commit_seq_cst(struct sb_ring_producer *p)
{
    /* seq_cst (also a release, pairing with sb_ring_peek()'s acquire); see above. */
    atomic_exchange_explicit(&p->shared->tail, p->claimed, memory_order_seq_cst);
    p->committed = p->claimed;
}

/**
 * sb_ring_unreleased_bytes - bytes committed by the producer and not yet released by the
 * consumer: 0 means the consumer has consumed everything committed. Producer thread only.
 */
static inline uint64_t sb_ring_unreleased_bytes(struct sb_ring_producer *p)
{
    /* Acquire pairs with sb_ring_release()'s release store of head: once we see head reach
     * committed, everything the consumer did before releasing is visible to us. */
    p->head_cache = atomic_load_explicit(&p->shared->head, memory_order_acquire);
    return p->committed - p->head_cache;
}

/**
 * sb_ring_peek - the next unread record (skipping padding), or NULL when none is committed.
 * Returns a record whose length was checked against the committed range and the end of the
 * data area; a record that fails the check (only possible when another process corrupts shared
 * memory) makes it return NULL and set *corrupt to true when @corrupt is non-NULL.
 * The record stays valid until sb_ring_release(). Consumer thread only. Never blocks.
 */
static inline const struct sb_ring_record *sb_ring_peek(struct sb_ring_consumer *c, bool *corrupt)
{
    for (;;) {
        if (c->read == c->tail_cache) {
            /* Acquire pairs with the producer's release store of tail in sb_ring_commit(). */
            c->tail_cache = atomic_load_explicit(&c->shared->tail, memory_order_acquire);
            if (c->read == c->tail_cache)
                return NULL;
        }
        const uint64_t pos = c->read & c->mask;
        const uint64_t avail = c->tail_cache - c->read;
        if (avail < SB_RING_HEADER_BYTES || avail > c->mask + 1 || (pos & (SB_RING_ALIGN - 1))) {
            if (corrupt)
                *corrupt = true;
            return NULL;
        }
        const struct sb_ring_record *rec = (const struct sb_ring_record *)(c->data + pos);
        const uint64_t size = sb_ring_record_size(rec->length);
        if (size > avail || pos + size > c->mask + 1) {
            if (corrupt)
                *corrupt = true;
            return NULL;
        }
        if (rec->type != SB_RING_TYPE_PADDING)
            return rec;
        c->read += size;
    }
}

/** sb_ring_advance - mark @rec (from sb_ring_peek()) read. Consumer thread only. */
static inline void sb_ring_advance(struct sb_ring_consumer *c, const struct sb_ring_record *rec)
{
    c->read += sb_ring_record_size(rec->length);
}

/**
 * sb_ring_release - give every read record's space back to the producer with one release
 * store. Pointers to those records become invalid. Consumer thread only. Never blocks.
 */
static inline void sb_ring_release(struct sb_ring_consumer *c)
{
    if (c->released == c->read)
        return;
    /* Release pairs with the producer's acquire load of head in sb_ring_claim(). */
    atomic_store_explicit(&c->shared->head, c->read, memory_order_release);
    c->released = c->read;
}

/**
 * sb_ring_is_empty_seq_cst - true when nothing beyond what was read is committed, read with a
 * seq_cst load; see sb_ring_commit_seq_cst() for the pairing. Consumer thread only.
 */
static inline bool sb_ring_is_empty_seq_cst(struct sb_ring_consumer *c)
{
    /* seq_cst pairs with the producer's seq_cst exchange in sb_ring_commit_seq_cst() (and, as
     * an acquire, with any release commit). */
    c->tail_cache = atomic_load_explicit(&c->shared->tail, memory_order_seq_cst);
    return c->tail_cache == c->read;
}

/**
 * sb_ring_release_seq_cst - sb_ring_release() as a seq_cst exchange, for consumers that next
 * check whether the producer parked waiting for space (see park.h). Consumer thread only.
 */
static inline void sb_ring_release_seq_cst(struct sb_ring_consumer *c)
{
    if (c->released == c->read)
        return;
    /* seq_cst (also a release, pairing with sb_ring_claim()'s acquire load of head); pairs with
     * the producer's sb_parker_prepare() + sb_ring_head_moved_seq_cst(). */
    atomic_exchange_explicit(&c->shared->head, c->read, memory_order_seq_cst);
    c->released = c->read;
}

/**
 * sb_ring_head_moved_seq_cst - true when the consumer released space since the producer last
 * read head (which it now re-reads with a seq_cst load, pairing with
 * sb_ring_release_seq_cst()). Producer thread only.
 */
static inline bool sb_ring_head_moved_seq_cst(struct sb_ring_producer *p)
{
    /* seq_cst pairs with sb_ring_release_seq_cst(); as an acquire, with any release of head. */
    uint64_t head = atomic_load_explicit(&p->shared->head, memory_order_seq_cst);
    bool moved = head != p->head_cache;
    p->head_cache = head;
    return moved;
}

/**
 * sb_ring_write_n - write up to @n records of @len bytes each, taken one after another from
 * @src, and commit them (and any earlier claims) with one release store. The copy-in
 * counterpart of claim/commit for small fixed-size items: the producer's positions stay in
 * registers across the copies, which the caller's own writes into claimed memory cannot promise
 * (they may alias the handle). Returns the number written (0 when the ring is full or
 * len > sb_ring_max_payload()). Producer thread only. Never blocks.
 */
static inline size_t sb_ring_write_n(struct sb_ring_producer *p, uint32_t type, const void *src,
                                     size_t len, size_t n)
{
    struct sb_ring_shared *const shared = p->shared;
    unsigned char *const data = p->data;
    const uint64_t mask = p->mask, capacity = mask + 1;
    const uint64_t need = sb_ring_record_size(len);
    const unsigned char *s = (const unsigned char *)src;
    uint64_t claimed = p->claimed, head = p->head_cache;
    size_t done = 0;
    if (len > sb_ring_max_payload(capacity))
        return 0;
    for (; done < n; done++) {
        const uint64_t pos = claimed & mask;
        const uint64_t pad = (pos + need > capacity) ? capacity - pos : 0;
        if (claimed + pad + need - head > capacity) {
            /* Acquire pairs with the consumer's release store of head (sb_ring_release()). */
            head = atomic_load_explicit(&shared->head, memory_order_acquire);
            if (claimed + pad + need - head > capacity)
                break;
        }
        if (pad) {
            struct sb_ring_record *padding = (struct sb_ring_record *)(data + pos);
            padding->length = (uint32_t)(pad - SB_RING_HEADER_BYTES);
            padding->type = SB_RING_TYPE_PADDING;
            claimed += pad;
        }
        struct sb_ring_record *rec = (struct sb_ring_record *)(data + (claimed & mask));
        rec->length = (uint32_t)len;
        rec->type = type;
        memcpy(rec->payload, s + done * len, len);
        claimed += need;
    }
    p->head_cache = head;
    p->claimed = claimed;
    if (claimed != p->committed) {
        /* Release pairs with the consumer's acquire load of tail (sb_ring_peek(),
         * sb_ring_read_n()). */
        atomic_store_explicit(&shared->tail, claimed, memory_order_release);
        p->committed = claimed;
    }
    return done;
}

/** sb_ring_write - sb_ring_write_n() of one record: true when written, false when full. */
static inline bool sb_ring_write(struct sb_ring_producer *p, uint32_t type, const void *src,
                                 size_t len)
{
    return sb_ring_write_n(p, type, src, len, 1) == 1;
}

/**
 * sb_ring_read_n - copy out up to @n records of type @type and exactly @len bytes into @dst
 * (one after another), skipping padding, then release their space with one store. Stops early
 * at an empty ring, at a record of another type or length (left unread for sb_ring_peek()), or
 * at a record that fails the bounds check (then *corrupt is set when @corrupt is non-NULL).
 * Returns the number copied. Consumer thread only. Never blocks.
 */
static inline size_t sb_ring_read_n(struct sb_ring_consumer *c, uint32_t type, void *dst,
                                    size_t len, size_t n, bool *corrupt)
{
    struct sb_ring_shared *const shared = c->shared;
    const unsigned char *const data = c->data;
    const uint64_t mask = c->mask;
    unsigned char *out = (unsigned char *)dst;
    uint64_t read = c->read, tail = c->tail_cache;
    size_t done = 0;
    while (done < n) {
        if (read == tail) {
            /* Acquire pairs with the producer's release store of tail. */
            tail = atomic_load_explicit(&shared->tail, memory_order_acquire);
            if (read == tail)
                break;
        }
        const uint64_t pos = read & mask;
        const uint64_t avail = tail - read;
        if (avail < SB_RING_HEADER_BYTES || avail > mask + 1 || (pos & (SB_RING_ALIGN - 1))) {
            if (corrupt)
                *corrupt = true;
            break;
        }
        const struct sb_ring_record *rec = (const struct sb_ring_record *)(data + pos);
        const uint32_t rlen = rec->length, rtype = rec->type;
        const uint64_t size = sb_ring_record_size(rlen);
        if (size > avail || pos + size > mask + 1) {
            if (corrupt)
                *corrupt = true;
            break;
        }
        if (rtype == SB_RING_TYPE_PADDING) {
            read += size;
            continue;
        }
        if (rtype != type || rlen != len)
            break;
        memcpy(out + done * len, rec->payload, len);
        read += size;
        done++;
    }
    c->read = read;
    c->tail_cache = tail;
    if (read != c->released) {
        /* Release pairs with the producer's acquire load of head. */
        atomic_store_explicit(&shared->head, read, memory_order_release);
        c->released = read;
    }
    return done;
}

#endif /* SB_RING_H */
