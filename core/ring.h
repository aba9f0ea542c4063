/*
 * ring.h - single-producer/single-consumer ring of variable-length records.
 *
 * The ring memory (struct sb_ring_shared followed by the data area) holds no pointers, only
 * 64-bit ever-increasing byte positions, and has a fixed, versioned layout, so the same ring
 * can live in shared memory between two processes. Each side keeps its private state in its own
 * handle (struct sb_ring_producer / struct sb_ring_consumer).
 *
 * Records: an 8-byte header (a 32-bit mark, a 32-bit type) then the payload, padded to 8 bytes.
 * The mark is 0 while the record is not committed and SB_RING_MARK_COMMITTED | payload length
 * once it is. A record never straddles the end of the data area: when it would, the producer
 * writes a padding record up to the end and places the record at the start.
 *
 * Publication (layout version 2): the consumer learns that a record is committed from the
 * record's own mark, never from the producer's index, so a consumer that keeps up touches only
 * the cache lines of the records themselves (version 1 made it read the producer's `tail` line
 * too, one more cache-line transfer per hand-off; Aeron's rings work the same way as version 2).
 *  - A commit of one or more claimed records stores 0 to the mark at the position right after
 *    them (space the consumer has released: a claim keeps 8 bytes free for it), writes every
 *    mark but the first, then publishes them all with one release store of the first record's
 *    mark. The consumer reads a mark with acquire: a non-zero mark makes the record's bytes, the
 *    marks of the records committed with it and the zero after them visible.
 *  - The consumer reaches a position P only by reading the record that ends at P; whatever
 *    commit ended there stored 0 at P first, so a stale mark from the previous lap is never seen.
 *  - The consumer frees space with one release store of `head` (release); the producer reads
 *    `head` with acquire, and only when its cached copy says the ring is full. A claim that has
 *    to re-read head goes on only once a little more than its record is free (see
 *    SB_RING_REFILL_BYTES), so the two sides do not trade a cache line per record.
 *  - The producer also stores `tail` (release) at each commit, for re-attaching and for
 *    occupancy metrics; the consumer's fast path never reads it.
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
#define SB_RING_VERSION 2u
#define SB_RING_ALIGN 8u
#define SB_RING_HEADER_BYTES 8u
#define SB_RING_MIN_CAPACITY 4096u
/** Largest data area: payload lengths must fit the mark's 31 bits. */
#define SB_RING_MAX_CAPACITY (UINT64_C(1) << 31)
/** Type of the padding record at the wrap; other types are the user's. */
#define SB_RING_TYPE_PADDING 0xFFFFFFFFu
/** Bit set in every committed record's mark; the low 31 bits are the payload length. */
#define SB_RING_MARK_COMMITTED 0x80000000u

/** Shared, fixed layout (version 2). Offsets are checked by static asserts below. */
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

static_assert(offsetof(struct sb_ring_shared, tail) == 1 * SB_CACHE_GUARD, "ring layout v2");
static_assert(offsetof(struct sb_ring_shared, head) == 2 * SB_CACHE_GUARD, "ring layout v2");
static_assert(sizeof(struct sb_ring_shared) == 4 * SB_CACHE_GUARD, "ring layout v2");

/** Record header, at an 8-byte aligned position of the data area. */
struct sb_ring_record {
    _Atomic uint32_t mark; /* 0, or SB_RING_MARK_COMMITTED | payload bytes (see above) */
    uint32_t type;
    unsigned char payload[];
};
static_assert(sizeof(struct sb_ring_record) == SB_RING_HEADER_BYTES, "record header");
static_assert(offsetof(struct sb_ring_record, type) == 4, "record header");

/** Producer-private state. */
struct sb_ring_producer {
    struct sb_ring_shared *shared;
    unsigned char *data;
    uint64_t mask;
    uint64_t claimed;      /* end of the records claimed so far (not yet visible) */
    uint64_t committed;    /* end of the committed records (the value last stored to tail) */
    uint64_t head_cache;   /* last value read from shared->head */
    uint32_t pending_mark; /* mark of the record at `committed`, stored last by the commit */
    uint64_t refill_bytes; /* the hysteresis at full (see SB_RING_REFILL_BYTES); attach sets
                              it, the owner may lower it (0: none) before the first claim */
};

/** Consumer-private state. */
struct sb_ring_consumer {
    struct sb_ring_shared *shared;
    const unsigned char *data;
    uint64_t mask;
    uint64_t read;     /* next record to read (records before it are read, maybe not released) */
    uint64_t released; /* the value last stored to shared->head */
    uint32_t partial;  /* payload bytes of the record at read already taken by
                          sb_ring_read_items() (0: none) */
};

/**
 * sb_ring_record_length - payload bytes of @rec, a record returned by sb_ring_peek() (or one
 * the caller claimed and committed itself). Consumer thread (or the producer, for its own
 * committed records). Relaxed: sb_ring_peek() already read this mark with acquire, and the
 * producer does not change it before the consumer releases the record.
 * Every ring is private to one process today. Before a ring is shared with another process,
 * peek must hand out the length it checked (a hostile peer could rewrite the mark after the
 * check), and a producer taking over must find the last commit from the marks, not from
 * `tail` (a producer that dies between its first-mark store and its tail store leaves tail
 * behind what the consumer may have read).
 */
static inline uint32_t sb_ring_record_length(const struct sb_ring_record *rec)
{
    return atomic_load_explicit(&rec->mark, memory_order_relaxed) & ~SB_RING_MARK_COMMITTED;
}

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
    return ((uint64_t)len + SB_RING_HEADER_BYTES + SB_RING_ALIGN - 1) &
           ~(uint64_t)(SB_RING_ALIGN - 1);
}

/** Largest payload a ring of @capacity can always accept once drained (half the ring less a
 *  header, so the padding at the wrap, the record and the zeroed mark after it always fit into
 *  an empty ring). */
static inline size_t sb_ring_max_payload(uint64_t capacity)
{
    return (size_t)(capacity / 2 - SB_RING_HEADER_BYTES);
}

/**
 * sb_ring_format - lay out an empty ring in @mem (sb_ring_memory_size(capacity) bytes, aligned
 * to SB_CACHE_GUARD). Returns 0, or -EINVAL (capacity not a power of two, below
 * SB_RING_MIN_CAPACITY or above SB_RING_MAX_CAPACITY, or mem misaligned / too small). Call
 * before either side attaches.
 */
int sb_ring_format(void *mem, size_t mem_bytes, uint64_t capacity);

/**
 * sb_ring_producer_attach / sb_ring_consumer_attach - bind a handle to a formatted ring,
 * validating magic, version, capacity and size (the memory may come from another process).
 * Returns 0, or -EPROTO (wrong magic or version), -EINVAL (inconsistent sizes, or indexes that
 * cannot be right: misaligned, or the producer further ahead than the capacity).
 */
int sb_ring_producer_attach(struct sb_ring_producer *p, void *mem, size_t mem_bytes);
int sb_ring_consumer_attach(struct sb_ring_consumer *c, void *mem, size_t mem_bytes);

/*
 * Hysteresis at a full ring. A claim (sb_ring_claim(), and sb_ring_write_n() one record at a
 * time) whose cached head says full re-reads head, and goes on only if the consumer has freed
 * refill_bytes beyond the record (SB_RING_REFILL_BYTES, capped at a sixteenth of the ring,
 * unless the producer's owner set another value) or has drained every committed record; a
 * refused re-read leaves the cached head as it was, so the next claim re-reads too. Without
 * it, a producer faster than its consumer writes each record into the space the consumer
 * released a moment before: the cache line the consumer is reading, and a re-read of the
 * consumer's `head` line per record, so both lines bounce between the cores once per record
 * instead of once per 64 bytes (measured by bench_ring). A heuristic, not a guarantee: calls
 * that refresh the cached head for other reasons (sb_ring_head_moved_seq_cst(),
 * sb_ring_unreleased_bytes(), the batch path of sb_ring_write_n()) let the next claim go ahead
 * on exact room. Never a condition for progress: a drained ring takes any record up to
 * sb_ring_max_payload().
 */
#define SB_RING_REFILL_BYTES 4096u

/* After re-reading head (@head): may records ending at @end (the zero mark's header included)
 * be claimed? @committed is the producer's committed position, @slack its refill_bytes. */
static inline bool sb_ring_room_after_full_(uint64_t end, uint64_t head, uint64_t committed,
                                            uint64_t capacity, uint64_t slack)
{
    if (end - head > capacity)
        return false;
    return head == committed || end + slack - head <= capacity;
}

/* The header at byte position @pos of the producer's data area. */
static inline struct sb_ring_record *sb_ring_producer_record_(struct sb_ring_producer *p,
                                                              uint64_t pos)
{
    return (struct sb_ring_record *)(p->data + (pos & p->mask));
}

/*
 * Write the header of a record being claimed at position @pos. The first record after the last
 * commit keeps its mark at 0 (the commit stores it last, with release); the others get theirs
 * now: the consumer cannot reach them before it sees that first mark.
 */
static inline void sb_ring_claim_header_(struct sb_ring_producer *p, uint64_t pos, uint32_t len,
                                         uint32_t type)
{
    struct sb_ring_record *rec = sb_ring_producer_record_(p, pos);
    rec->type = type;
    if (pos == p->committed)
        p->pending_mark = SB_RING_MARK_COMMITTED | len;
    else
        /* Relaxed: published by the commit's release store of the first mark, which the
         * consumer's acquire load in sb_ring_peek() pairs with. */
        atomic_store_explicit(&rec->mark, SB_RING_MARK_COMMITTED | len, memory_order_relaxed);
}

/**
 * sb_ring_claim - reserve room for a record of @len payload bytes and return a pointer to its
 * payload, or NULL when the ring has no room now (or len > sb_ring_max_payload()). "No room"
 * includes the hysteresis at a full ring: when the cached head says full, the claim succeeds
 * only if the re-read head leaves the producer's refill_bytes free beyond the record, or shows
 * the ring drained. Nothing is visible to the consumer until sb_ring_commit(). Several claims
 * may precede one commit.
 * Producer thread only. Never blocks.
 */
static inline void *sb_ring_claim(struct sb_ring_producer *p, size_t len, uint32_t type)
{
    const uint64_t capacity = p->mask + 1;
    const uint64_t need = sb_ring_record_size(len);
    const uint64_t pos = p->claimed & p->mask;
    const uint64_t pad = (pos + need > capacity) ? capacity - pos : 0;
    /* Room for the padding, the record, and the zeroed mark the commit stores after it. */
    const uint64_t end = p->claimed + pad + need + SB_RING_HEADER_BYTES;

    if (len > sb_ring_max_payload(capacity))
        return NULL;
    if (end - p->head_cache > capacity) {
        /* Acquire pairs with the consumer's release store of head in sb_ring_release(): the
         * consumer's reads of the space we are about to overwrite happen before our writes. */
        const uint64_t head = atomic_load_explicit(&p->shared->head, memory_order_acquire);
        /* Kept only when it lets the claim go ahead: a cached head that still says full makes
         * the next claim re-read head and apply the hysteresis again. */
        if (!sb_ring_room_after_full_(end, head, p->committed, capacity, p->refill_bytes))
            return NULL;
        p->head_cache = head;
    }
    if (pad) {
        sb_ring_claim_header_(p, p->claimed, (uint32_t)(pad - SB_RING_HEADER_BYTES),
                              SB_RING_TYPE_PADDING);
        p->claimed += pad;
    }
    struct sb_ring_record *rec = sb_ring_producer_record_(p, p->claimed);
    sb_ring_claim_header_(p, p->claimed, (uint32_t)len, type);
    p->claimed += need;
    return rec->payload;
}

/** sb_ring_abort - drop every claim made since the last commit. Producer thread only. */
static inline void sb_ring_abort(struct sb_ring_producer *p)
{
    /* Marks written for the dropped records beyond `committed` are harmless: the mark at
     * `committed` is still 0, and the next commit rewrites every mark it publishes. */
    p->claimed = p->committed;
}

/** sb_ring_has_uncommitted - true when claims are waiting for sb_ring_commit(). */
static inline bool sb_ring_has_uncommitted(const struct sb_ring_producer *p)
{
    return p->claimed != p->committed;
}

/* The commit's work before the publishing store: the zero after the claimed records. */
static inline struct sb_ring_record *sb_ring_commit_prepare_(struct sb_ring_producer *p)
{
    /* Relaxed: published by the release (or seq_cst) store of the first mark below, which the
     * consumer's acquire load pairs with; the space is free (sb_ring_claim() kept it so). */
    atomic_store_explicit(&sb_ring_producer_record_(p, p->claimed)->mark, 0u, memory_order_relaxed);
    return sb_ring_producer_record_(p, p->committed);
}

/* The commit's work after the publishing store. */
static inline void sb_ring_commit_finish_(struct sb_ring_producer *p)
{
    /* Release pairs with sb_ring_producer_attach()'s acquire load (a later producer taking
     * over); sb_ring_occupancy() reads it relaxed. The consumer never reads tail. */
    atomic_store_explicit(&p->shared->tail, p->claimed, memory_order_release);
    p->committed = p->claimed;
}

/**
 * sb_ring_commit - make every claimed record visible to the consumer with one release store.
 * Producer thread only. Never blocks.
 */
static inline void sb_ring_commit(struct sb_ring_producer *p)
{
    if (p->claimed == p->committed)
        return;
    struct sb_ring_record *first = sb_ring_commit_prepare_(p);
    /* Release pairs with the consumer's acquire load of the mark in sb_ring_peek() and
     * sb_ring_read_n(): the records' bytes, the other marks and the zero after them are
     * visible to a consumer that sees this mark. */
    atomic_store_explicit(&first->mark, p->pending_mark, memory_order_release);
    sb_ring_commit_finish_(p);
}

/**
 * sb_ring_commit_seq_cst - sb_ring_commit() with the publishing store sequentially consistent,
 * for producers that next check whether the consumer parked (see park.h). Paired with the
 * consumer's seq_cst store of its park flag followed by sb_ring_is_empty_seq_cst(): of the two
 * sides, at least one sees the other's store, so a wake-up is never lost.
 */
static inline void sb_ring_commit_seq_cst(struct sb_ring_producer *p)
{
    if (p->claimed == p->committed)
        return;
    struct sb_ring_record *first = sb_ring_commit_prepare_(p);
    /* seq_cst (also a release, pairing with sb_ring_peek()'s acquire); see above. An exchange
     * rather than a store so that it is a full barrier on every compiler and CPU. */
    atomic_exchange_explicit(&first->mark, p->pending_mark, memory_order_seq_cst);
    sb_ring_commit_finish_(p);
}

/* Fetch the cache line at @addr in the exclusive state (x86 PREFETCHW, which older Intel CPUs
 * execute as a NOP; elsewhere the compiler's write prefetch). */
static inline void sb_prefetch_for_write_(const void *addr)
{
#if defined(__x86_64__) || defined(__i386__)
    __asm__ volatile("prefetchw %0" : : "m"(*(const char *)addr));
#else
    __builtin_prefetch(addr, 1, 3);
#endif
}

/**
 * sb_ring_prefetch_next - after a commit, ask the CPU to fetch for writing the cache lines a next
 * record of @len payload bytes would occupy, except the line holding the next mark (a consumer
 * that keeps up is reading it while it waits). The consumer read those lines last, on another
 * core; fetching them now, while the producer has nothing to do, takes their transfer off the
 * next commit's path. Only space the consumer has released is touched, and nothing is written:
 * a hint, with no visible effect. Producer thread only.
 */
static inline void sb_ring_prefetch_next(const struct sb_ring_producer *p, size_t len)
{
    const uint64_t end = p->claimed + sb_ring_record_size(len);
    if (end + SB_RING_HEADER_BYTES - p->head_cache > p->mask + 1)
        return;
    for (uint64_t at = (p->claimed | (SB_CACHE_LINE - 1)) + 1; at < end; at += SB_CACHE_LINE)
        sb_prefetch_for_write_(&p->data[at & p->mask]);
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

/*
 * Read and check the header at the consumer position @read: returns its mark (0 = nothing
 * committed there yet) and sets *size to the record's size in the ring. A mark that cannot be
 * right (no committed bit, a record running past the end of the data area or larger than any
 * claim, a padding record that does not end exactly at the end of the data area) returns
 * UINT32_MAX; only a peer scribbling on shared memory can cause one.
 */
static inline uint32_t sb_ring_check_mark_(const unsigned char *data, uint64_t mask, uint64_t read,
                                           uint64_t *size, uint32_t *type, memory_order order)
{
    const uint64_t pos = read & mask;
    const struct sb_ring_record *rec = (const struct sb_ring_record *)(data + pos);
    /* @order is acquire (or seq_cst): pairs with the release store of the first mark in
     * sb_ring_commit() (or sb_ring_commit_seq_cst()). */
    const uint32_t mark = atomic_load_explicit(&rec->mark, order);
    if (mark == 0)
        return 0;
    const uint64_t len = mark & ~SB_RING_MARK_COMMITTED;
    *size = sb_ring_record_size(len);
    *type = rec->type;
    if (!(mark & SB_RING_MARK_COMMITTED) || len > sb_ring_max_payload(mask + 1) ||
        pos + *size > mask + 1 || (*type == SB_RING_TYPE_PADDING && pos + *size != mask + 1))
        return UINT32_MAX;
    return mark;
}

/*
 * The mark of the next record at or after *read that is not padding (advancing *read past
 * padding), with its size and type; 0 when nothing is committed there yet, or when a mark fails
 * the bounds check (then *corrupt is set, when @corrupt is non-NULL). Acquire: pairs with the
 * release (or seq_cst) store of the first mark of a commit.
 */
static inline uint32_t sb_ring_next_mark_(const unsigned char *data, uint64_t mask,
                                          uint64_t *read, uint64_t *size, uint32_t *type,
                                          bool *corrupt)
{
    for (;;) {
        const uint32_t mark =
            sb_ring_check_mark_(data, mask, *read, size, type, memory_order_acquire);
        if (mark == UINT32_MAX) {
            if (corrupt)
                *corrupt = true;
            return 0;
        }
        if (mark == 0 || *type != SB_RING_TYPE_PADDING)
            return mark;
        /* A padding record ends at the end of the data area (checked), so this loop turns at
         * most twice: a padding record at position 0 would be larger than any claim. */
        *read += *size;
    }
}

/**
 * sb_ring_peek - the next unread record (skipping padding), or NULL when none is committed.
 * Returns a record whose length was checked against the end of the data area and the largest
 * claim; a record that fails the check (only possible when another process corrupts shared
 * memory) makes it return NULL and set *corrupt to true when @corrupt is non-NULL.
 * The record stays valid until sb_ring_release(). Consumer thread only. Never blocks.
 */
static inline const struct sb_ring_record *sb_ring_peek(struct sb_ring_consumer *c, bool *corrupt)
{
    for (;;) {
        uint64_t size;
        uint32_t type;
        const uint32_t mark =
            sb_ring_check_mark_(c->data, c->mask, c->read, &size, &type, memory_order_acquire);
        if (mark == 0)
            return NULL;
        if (mark == UINT32_MAX) {
            if (corrupt)
                *corrupt = true;
            return NULL;
        }
        if (type != SB_RING_TYPE_PADDING)
            return (const struct sb_ring_record *)(c->data + (c->read & c->mask));
        /* A padding record ends at the end of the data area (checked), so this loop turns at
         * most twice: a padding record at position 0 would be larger than any claim. */
        c->read += size;
    }
}

/** sb_ring_advance - mark @rec (from sb_ring_peek()) read. Consumer thread only. */
static inline void sb_ring_advance(struct sb_ring_consumer *c, const struct sb_ring_record *rec)
{
    c->read += sb_ring_record_size(sb_ring_record_length(rec));
    c->partial = 0; /* a record sb_ring_read_items() left half read is now read */
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
 * seq_cst load of the next record's mark; see sb_ring_commit_seq_cst() for the pairing. A
 * corrupt mark counts as not empty (the next sb_ring_peek() reports it). Consumer thread only.
 */
static inline bool sb_ring_is_empty_seq_cst(struct sb_ring_consumer *c)
{
    uint64_t size;
    uint32_t type;
    /* seq_cst pairs with the producer's seq_cst exchange in sb_ring_commit_seq_cst() (and, as
     * an acquire, with any release commit). A padding record is never committed alone: the
     * record after it is published by the same store. */
    return sb_ring_check_mark_(c->data, c->mask, c->read, &size, &type, memory_order_seq_cst) == 0;
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
 * sb_ring_head_moved_seq_cst - true when head (re-read now with a seq_cst load, pairing with
 * sb_ring_release_seq_cst()) differs from the producer's cached copy, which it then updates.
 * The cache may be older than the producer's last read of head (a claim refused by the
 * hysteresis does not keep what it read), so a true result may mean no new room: the caller
 * retries its claim, which is refused again or goes ahead. Producer thread only.
 */
static inline bool sb_ring_head_moved_seq_cst(struct sb_ring_producer *p)
{
    /* seq_cst pairs with sb_ring_release_seq_cst(); as an acquire, with any release of head. */
    uint64_t head = atomic_load_explicit(&p->shared->head, memory_order_seq_cst);
    bool moved = head != p->head_cache;
    p->head_cache = head;
    return moved;
}

/* Records of @need bytes that fit in a ring of @capacity with @used bytes unreleased, keeping
 * a header's worth free after them (the zero mark). @used never exceeds capacity - header for
 * a well-behaved producer; the check keeps a bad index from wrapping the arithmetic. */
static inline uint64_t sb_ring_fit_(uint64_t capacity, uint64_t used, uint64_t need)
{
    const uint64_t room = used < capacity ? capacity - used : 0;
    return room > SB_RING_HEADER_BYTES ? (room - SB_RING_HEADER_BYTES) / need : 0;
}

/**
 * sb_ring_write_n - write up to @n records of @len bytes each, taken one after another from
 * @src, and commit them (and any earlier claims) with one release store. The copy-in
 * counterpart of claim/commit for small fixed-size items: the producer's positions stay in
 * registers across the copies, which the caller's own writes into claimed memory cannot promise
 * (they may alias the handle). Returns the number written (0 when the ring is full, with the
 * hysteresis of sb_ring_claim() for records past the batch fast path, or when
 * len > sb_ring_max_payload()). Producer thread only. Never blocks.
 */
static inline size_t sb_ring_write_n(struct sb_ring_producer *p, uint32_t type, const void *src,
                                     size_t len, size_t n)
{
    struct sb_ring_shared *const shared = p->shared;
    unsigned char *const data = p->data;
    const uint64_t mask = p->mask, capacity = mask + 1, committed = p->committed;
    const uint64_t need = sb_ring_record_size(len);
    const uint32_t mark = SB_RING_MARK_COMMITTED | (uint32_t)len;
    const unsigned char *s = (const unsigned char *)src;
    uint64_t claimed = p->claimed, head = p->head_cache;
    uint32_t first_mark = p->pending_mark;
    size_t done = 0;
    if (len > sb_ring_max_payload(capacity))
        return 0;
    /* Fast path, for batches: the records that fit both before the end of the data area and
     * in the room known to be free (with a header's worth after them for the zero mark) are
     * written with no per-record wrap or room check. The loop below does the rest, one check
     * per record. One record at a time (n == 1, a constant where sb_ring_write() inlines this)
     * takes the loop alone: its few instructions less keep the consumer from catching up
     * with the producer and missing on every record (measured by bench_ring). */
    uint64_t fit = n > 1 ? sb_ring_fit_(capacity, claimed - head, need) : 0;
    if (n > 1 && fit < n) {
        /* Acquire pairs with the consumer's release store of head (sb_ring_release(),
         * sb_ring_release_seq_cst(), sb_ring_read_n()). */
        head = atomic_load_explicit(&shared->head, memory_order_acquire);
        fit = sb_ring_fit_(capacity, claimed - head, need);
    }
    const uint64_t before_end = (capacity - (claimed & mask)) / need;
    if (fit > before_end)
        fit = before_end;
    if (fit > n)
        fit = n;
    for (unsigned char *at = data + (claimed & mask); done < fit; done++, at += need) {
        struct sb_ring_record *rec = (struct sb_ring_record *)at;
        rec->type = type;
        memcpy(rec->payload, s + done * len, len);
        if (done == 0 && claimed == committed)
            first_mark = mark; /* the commit below stores it last */
        else
            /* Relaxed: published by the release store of the first mark below. */
            atomic_store_explicit(&rec->mark, mark, memory_order_relaxed);
    }
    claimed += fit * need;
    for (; done < n; done++) {
        const uint64_t pos = claimed & mask;
        const uint64_t pad = (pos + need > capacity) ? capacity - pos : 0;
        const uint64_t end = claimed + pad + need + SB_RING_HEADER_BYTES;
        if (end - head > capacity) {
            /* Acquire pairs with the consumer's release store of head (sb_ring_release()). */
            const uint64_t fresh = atomic_load_explicit(&shared->head, memory_order_acquire);
            /* Kept only when it lets the write go ahead (as in sb_ring_claim()). */
            if (!sb_ring_room_after_full_(end, fresh, committed, capacity, p->refill_bytes))
                break;
            head = fresh;
        }
        if (pad) {
            struct sb_ring_record *padding = (struct sb_ring_record *)(data + pos);
            const uint32_t pad_mark =
                SB_RING_MARK_COMMITTED | (uint32_t)(pad - SB_RING_HEADER_BYTES);
            padding->type = SB_RING_TYPE_PADDING;
            if (claimed == committed)
                first_mark = pad_mark;
            else
                /* Relaxed: published by the release store of the first mark below. */
                atomic_store_explicit(&padding->mark, pad_mark, memory_order_relaxed);
            claimed += pad;
        }
        struct sb_ring_record *rec = (struct sb_ring_record *)(data + (claimed & mask));
        rec->type = type;
        memcpy(rec->payload, s + done * len, len);
        if (claimed == committed)
            first_mark = mark;
        else
            /* Relaxed: published by the release store of the first mark below. */
            atomic_store_explicit(&rec->mark, mark, memory_order_relaxed);
        claimed += need;
    }
    p->head_cache = head;
    p->claimed = claimed;
    if (claimed != committed) {
        /* Relaxed: published by the release store just after; the space is free (the room
         * check above kept a header's worth after the last record). */
        atomic_store_explicit(&((struct sb_ring_record *)(data + (claimed & mask)))->mark, 0u,
                              memory_order_relaxed);
        /* Release pairs with the consumer's acquire load of the mark (sb_ring_peek(),
         * sb_ring_read_n()). */
        atomic_store_explicit(&((struct sb_ring_record *)(data + (committed & mask)))->mark,
                              first_mark, memory_order_release);
        /* Release pairs with sb_ring_producer_attach()'s acquire (see sb_ring_commit()). */
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
    const unsigned char *const data = c->data;
    const uint64_t mask = c->mask;
    const uint32_t want = SB_RING_MARK_COMMITTED | (uint32_t)len;
    unsigned char *out = (unsigned char *)dst;
    uint64_t read = c->read;
    const uint64_t need = sb_ring_record_size(len), capacity = mask + 1;
    size_t done = 0;
    if (len > sb_ring_max_payload(capacity))
        return 0; /* no record can have that length (as in sb_ring_write_n()) */
    while (done < n) {
        /* Fast path, for batches (as in sb_ring_write_n()): a committed record of the wanted
         * type and length that ends inside the data area (the bounds check, for the one
         * length this call accepts). */
        const uint64_t pos = read & mask;
        if (n > 1 && pos + need <= capacity) {
            const struct sb_ring_record *rec = (const struct sb_ring_record *)(data + pos);
            /* Acquire pairs with the release store of the first mark in sb_ring_commit(),
             * sb_ring_commit_seq_cst() or sb_ring_write_n(). */
            if (atomic_load_explicit(&rec->mark, memory_order_acquire) == want &&
                rec->type == type) {
                memcpy(out + done * len, rec->payload, len);
                read += need;
                done++;
                continue;
            }
        }
        uint64_t size;
        uint32_t rtype;
        const uint32_t mark =
            sb_ring_check_mark_(data, mask, read, &size, &rtype, memory_order_acquire);
        if (mark == 0)
            break;
        if (mark == UINT32_MAX) {
            if (corrupt)
                *corrupt = true;
            break;
        }
        if (rtype == SB_RING_TYPE_PADDING) {
            read += size;
            continue;
        }
        if (rtype != type || mark != want)
            break;
        memcpy(out + done * len, data + (read & mask) + SB_RING_HEADER_BYTES, len);
        read += size;
        done++;
    }
    c->read = read;
    if (read != c->released) {
        /* Release pairs with the producer's acquire load of head. */
        atomic_store_explicit(&c->shared->head, read, memory_order_release);
        c->released = read;
    }
    return done;
}

/**
 * sb_ring_write_items - the batch form of a queue push: write up to @n items of @item_size
 * bytes from @items packed into records of type @type (one record, unless n * item_size
 * exceeds sb_ring_max_payload(): then records of the most items that fit in one), and commit
 * them, with any earlier claims, with one release store. An item never spans records. When the
 * ring is short of room a record is halved until sb_ring_claim() takes it (then the rest is
 * tried again), so fewer items may go. Returns the number of items written (0 when full, or
 * when item_size is 0 or above sb_ring_max_payload()). One record header per batch instead of
 * one per item: for 8-byte items the consumer waits on half as many cache lines as with
 * sb_ring_write_n(). Read them with sb_ring_read_items(). Producer thread only. Never blocks.
 */
static inline size_t sb_ring_write_items(struct sb_ring_producer *p, uint32_t type,
                                         const void *items, size_t item_size, size_t n)
{
    const size_t max_items = item_size ? sb_ring_max_payload(p->mask + 1) / item_size : 0;
    const unsigned char *src = (const unsigned char *)items;
    size_t done = 0;
    while (done < n && max_items) {
        size_t k = n - done < max_items ? n - done : max_items;
        void *dst;
        /* Short of room: halve until a record fits (at most log2(k) + 1 tries, each with an
         * acquire load of head inside sb_ring_claim()). */
        while (!(dst = sb_ring_claim(p, k * item_size, type)) && k > 1)
            k /= 2;
        if (!dst)
            break;
        memcpy(dst, src + done * item_size, k * item_size);
        done += k;
    }
    sb_ring_commit(p); /* a no-op when nothing is claimed */
    return done;
}

/**
 * sb_ring_read_items - the batch form of a queue pop: copy up to @max items of @item_size bytes
 * into @out from the records of type @type (written by sb_ring_write_items()), in order, taking
 * the items of a record in several calls when @max ends inside it: the consumer handle
 * remembers how far (`partial`), and until that record is finished no other read call may be
 * used on the handle (sb_ring_peek() and sb_ring_read_n() would hand out its first items
 * again); the record's space is released only once it is finished. Stops early at an empty
 * ring, at a record of another type or whose length is not a multiple of @item_size (left
 * unread for sb_ring_peek()), or at a record that fails the bounds check, or whose length
 * disagrees with what was taken of it (then *corrupt is set when @corrupt is non-NULL). An
 * empty record of @type is consumed. Releases the records it finished with one store. Returns
 * the number of items copied. Consumer thread only. Never blocks.
 */
static inline size_t sb_ring_read_items(struct sb_ring_consumer *c, uint32_t type, void *out,
                                        size_t item_size, size_t max, bool *corrupt)
{
    unsigned char *dst = (unsigned char *)out;
    uint64_t read = c->read;
    size_t done = 0;
    if (item_size == 0)
        return 0;
    while (done < max) {
        uint64_t size;
        uint32_t rtype;
        /* Acquire (inside): pairs with the release store of the first mark in sb_ring_commit()
         * (via sb_ring_write_items()). */
        const uint32_t mark = sb_ring_next_mark_(c->data, c->mask, &read, &size, &rtype, corrupt);
        const size_t len = mark & ~SB_RING_MARK_COMMITTED;
        if (mark == 0 || rtype != type || len % item_size != 0)
            break;
        if (c->partial > len || c->partial % item_size != 0) {
            /* Only a peer rewriting the mark, or another read call in between, gets here. */
            if (corrupt)
                *corrupt = true;
            break;
        }
        const size_t left = (len - c->partial) / item_size;
        const size_t take = left < max - done ? left : max - done;
        memcpy(dst + done * item_size,
               c->data + (read & c->mask) + SB_RING_HEADER_BYTES + c->partial,
               take * item_size);
        done += take;
        if (take < left) {
            c->partial += (uint32_t)(take * item_size);
            break;
        }
        c->partial = 0;
        read += size;
    }
    c->read = read;
    if (read != c->released) {
        /* Release pairs with the producer's acquire load of head in sb_ring_claim(). */
        atomic_store_explicit(&c->shared->head, read, memory_order_release);
        c->released = read;
    }
    return done;
}

#endif /* SB_RING_H */
