/*
 * bench_sb_ring.c - the shardbus ring's producer and consumer loops for bench_ring (see
 * bench_rings.h for the conventions).
 *
 * What it measures: the inline fast path of ring.h as a C user calls it: sb_ring_claim() +
 * store + sb_ring_commit() on one thread, sb_ring_peek() + check + sb_ring_advance() +
 * sb_ring_release() on the other, per item or per batch. The memory orders are the ring's own
 * (ring.h); this file adds no atomics of its own.
 */
#include <stdalign.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_rings.h"
#include "ring.h"

#define BENCH_TYPE_U64 1u
#define BENCH_TYPE_REC 2u
#define BENCH_MAX_BATCH 256u

struct bench_sb_ring {
    /* Each handle on its own cache lines: one is the producer thread's, one the consumer's. */
    alignas(SB_CACHE_GUARD) struct sb_ring_producer prod;
    alignas(SB_CACHE_GUARD) struct sb_ring_consumer cons;
    void *mem;
};

void bench_fail(const char *what, uint64_t expected, uint64_t got)
{
    fprintf(stderr, "bench: %s: expected %llu, got %llu\n", what, (unsigned long long)expected,
            (unsigned long long)got);
    abort();
}

struct bench_sb_ring *bench_sb_ring_new(uint64_t capacity)
{
    struct bench_sb_ring *r = aligned_alloc(SB_CACHE_GUARD, sizeof(*r));
    if (!r)
        return NULL;
    memset(r, 0, sizeof(*r));
    size_t bytes = sb_ring_memory_size(capacity);
    bytes = (bytes + SB_CACHE_GUARD - 1) / SB_CACHE_GUARD * SB_CACHE_GUARD;
    r->mem = aligned_alloc(SB_CACHE_GUARD, bytes);
    if (!r->mem) {
        free(r);
        return NULL;
    }
    memset(r->mem, 0, bytes); /* fault every page in before anything is timed */
    if (sb_ring_format(r->mem, bytes, capacity) ||
        sb_ring_producer_attach(&r->prod, r->mem, bytes) ||
        sb_ring_consumer_attach(&r->cons, r->mem, bytes)) {
        free(r->mem);
        free(r);
        return NULL;
    }
    return r;
}

void bench_sb_ring_free(struct bench_sb_ring *r)
{
    if (!r)
        return;
    free(r->mem);
    free(r);
}

/*
 * Each loop below is a static inline body; the exported function calls it with a constant
 * batch of 1 when asked for one item at a time, so that case compiles to the plain
 * claim/store/commit (peek/check/advance/release) sequence with no batching logic left in it.
 */
#define BENCH_DISPATCH(body, h, first, n, batch)                                                  \
    do {                                                                                           \
        if ((batch) == 1)                                                                          \
            body(h, first, n, 1);                                                                  \
        else                                                                                       \
            body(h, first, n, batch);                                                              \
    } while (0)

/* Up to @batch claims of 8-byte records, then one commit; spins while the ring is full. */
static inline __attribute__((always_inline)) void
produce_u64(struct sb_ring_producer *p, uint64_t first, uint64_t n, unsigned batch)
{
    const uint64_t end = first + n;
    uint64_t seq = first;
    while (seq < end) {
        const uint64_t lim = end - seq < batch ? end - seq : batch;
        uint64_t k = 0;
        for (; k < lim; k++) {
            void *dst = sb_ring_claim(p, sizeof(uint64_t), BENCH_TYPE_U64);
            if (!dst)
                break;
            const uint64_t v = seq + k;
            memcpy(dst, &v, sizeof(v));
        }
        if (k) {
            sb_ring_commit(p);
            seq += k;
        } else {
            bench_relax();
        }
    }
}

static inline __attribute__((always_inline)) void
consume_u64(struct sb_ring_consumer *c, uint64_t first, uint64_t n, unsigned batch)
{
    const uint64_t end = first + n;
    uint64_t seq = first;
    bool corrupt = false;
    while (seq < end) {
        const uint64_t lim = end - seq < batch ? end - seq : batch;
        uint64_t k = 0;
        const struct sb_ring_record *rec;
        for (; k < lim && (rec = sb_ring_peek(c, &corrupt)); k++) {
            uint64_t v;
            if (sb_ring_record_length(rec) != sizeof(v) || rec->type != BENCH_TYPE_U64)
                bench_fail("sb ring u64: record length", sizeof(v), sb_ring_record_length(rec));
            memcpy(&v, rec->payload, sizeof(v));
            if (v != seq + k)
                bench_fail("sb ring u64: sequence", seq + k, v);
            sb_ring_advance(c, rec);
        }
        if (corrupt)
            bench_fail("sb ring u64: corrupt ring at position", 0, c->read);
        if (k) {
            sb_ring_release(c);
            seq += k;
        } else {
            bench_relax();
        }
    }
}

static void rec_fill_pattern(unsigned char *msg)
{
    for (unsigned i = 0; i < BENCH_REC_BYTES; i++)
        msg[i] = (unsigned char)(i * 7u + 1u);
}

static inline __attribute__((always_inline)) void
produce_rec(struct sb_ring_producer *p, uint64_t first, uint64_t n, unsigned batch)
{
    unsigned char msg[BENCH_REC_BYTES];
    rec_fill_pattern(msg);
    const uint64_t end = first + n;
    uint64_t seq = first;
    while (seq < end) {
        const uint64_t lim = end - seq < batch ? end - seq : batch;
        uint64_t k = 0;
        for (; k < lim; k++) {
            void *dst = sb_ring_claim(p, BENCH_REC_BYTES, BENCH_TYPE_REC);
            if (!dst)
                break;
            const uint64_t v = seq + k;
            memcpy(msg, &v, sizeof(v));
            memcpy(msg + BENCH_REC_BYTES - sizeof(v), &v, sizeof(v));
            memcpy(dst, msg, BENCH_REC_BYTES);
        }
        if (k) {
            sb_ring_commit(p);
            seq += k;
        } else {
            bench_relax();
        }
    }
}

static inline __attribute__((always_inline)) void
consume_rec(struct sb_ring_consumer *c, uint64_t first, uint64_t n, unsigned batch)
{
    unsigned char pattern[BENCH_REC_BYTES];
    rec_fill_pattern(pattern);
    const size_t mid = BENCH_REC_BYTES - 2 * sizeof(uint64_t);
    const uint64_t end = first + n;
    uint64_t seq = first;
    bool corrupt = false;
    while (seq < end) {
        const uint64_t lim = end - seq < batch ? end - seq : batch;
        uint64_t k = 0;
        const struct sb_ring_record *rec;
        for (; k < lim && (rec = sb_ring_peek(c, &corrupt)); k++) {
            uint64_t head, tail;
            if (sb_ring_record_length(rec) != BENCH_REC_BYTES || rec->type != BENCH_TYPE_REC)
                bench_fail("sb ring rec: record length", BENCH_REC_BYTES, sb_ring_record_length(rec));
            memcpy(&head, rec->payload, sizeof(head));
            memcpy(&tail, rec->payload + BENCH_REC_BYTES - sizeof(tail), sizeof(tail));
            if (head != seq + k || tail != seq + k)
                bench_fail("sb ring rec: sequence", seq + k, head != seq + k ? head : tail);
            if (memcmp(rec->payload + sizeof(head), pattern + sizeof(head), mid) != 0)
                bench_fail("sb ring rec: payload bytes differ in record", seq + k, 0);
            sb_ring_advance(c, rec);
        }
        if (corrupt)
            bench_fail("sb ring rec: corrupt ring at position", 0, c->read);
        if (k) {
            sb_ring_release(c);
            seq += k;
        } else {
            bench_relax();
        }
    }
}

/* Copy-in/copy-out API (sb_ring_write_n / sb_ring_read_n): up to @batch 8-byte items per
 * call, one commit / one release per call. */
static inline __attribute__((always_inline)) void
produce_u64_copy(struct sb_ring_producer *p, uint64_t first, uint64_t n, unsigned batch)
{
    uint64_t buf[BENCH_MAX_BATCH];
    const uint64_t end = first + n;
    uint64_t seq = first;
    while (seq < end) {
        const uint64_t lim = end - seq < batch ? end - seq : batch;
        for (uint64_t k = 0; k < lim; k++)
            buf[k] = seq + k;
        const size_t w = sb_ring_write_n(p, BENCH_TYPE_U64, buf, sizeof(uint64_t), lim);
        if (w)
            seq += w;
        else
            bench_relax();
    }
}

static inline __attribute__((always_inline)) void
consume_u64_copy(struct sb_ring_consumer *c, uint64_t first, uint64_t n, unsigned batch)
{
    uint64_t buf[BENCH_MAX_BATCH];
    const uint64_t end = first + n;
    uint64_t seq = first;
    bool corrupt = false;
    while (seq < end) {
        const uint64_t lim = end - seq < batch ? end - seq : batch;
        const size_t got = sb_ring_read_n(c, BENCH_TYPE_U64, buf, sizeof(uint64_t), lim, &corrupt);
        if (corrupt)
            bench_fail("sb ring u64 copy: corrupt ring at position", 0, c->read);
        for (size_t k = 0; k < got; k++)
            if (buf[k] != seq + k)
                bench_fail("sb ring u64 copy: sequence", seq + k, buf[k]);
        if (got)
            seq += got;
        else
            bench_relax();
    }
}

/* Batches as records: each record carries @batch 8-byte items (one claim, one memcpy, one
 * commit; the consumer checks every item of the record, then releases). */
void bench_sb_produce_u64_batchrec(struct bench_sb_ring *r, uint64_t first, uint64_t n,
                                   unsigned batch)
{
    struct sb_ring_producer *p = &r->prod;
    uint64_t buf[BENCH_MAX_BATCH];
    const uint64_t end = first + n;
    uint64_t seq = first;
    while (seq < end) {
        const uint64_t lim = end - seq < batch ? end - seq : batch;
        for (uint64_t k = 0; k < lim; k++)
            buf[k] = seq + k;
        if (sb_ring_write(p, BENCH_TYPE_U64, buf, lim * sizeof(uint64_t)))
            seq += lim;
        else
            bench_relax();
    }
}

void bench_sb_consume_u64_batchrec(struct bench_sb_ring *r, uint64_t first, uint64_t n)
{
    struct sb_ring_consumer *c = &r->cons;
    const uint64_t end = first + n;
    uint64_t seq = first;
    bool corrupt = false;
    while (seq < end) {
        const struct sb_ring_record *rec = sb_ring_peek(c, &corrupt);
        if (corrupt)
            bench_fail("sb ring batch record: corrupt ring at position", 0, c->read);
        if (!rec) {
            bench_relax();
            continue;
        }
        if (rec->type != BENCH_TYPE_U64 || sb_ring_record_length(rec) % sizeof(uint64_t))
            bench_fail("sb ring batch record: length", 0, sb_ring_record_length(rec));
        const size_t items = sb_ring_record_length(rec) / sizeof(uint64_t);
        for (size_t k = 0; k < items; k++) {
            uint64_t v;
            memcpy(&v, rec->payload + k * sizeof(v), sizeof(v));
            if (v != seq + k)
                bench_fail("sb ring batch record: sequence", seq + k, v);
        }
        seq += items;
        sb_ring_advance(c, rec);
        sb_ring_release(c);
    }
}

/* The item calls (sb_ring_write_items / sb_ring_read_items): batches of @batch 8-byte items,
 * each batch one record; the consumer copies up to @batch items out a call and checks each. */
void bench_sb_produce_u64_items(struct bench_sb_ring *r, uint64_t first, uint64_t n,
                                unsigned batch)
{
    struct sb_ring_producer *p = &r->prod;
    uint64_t buf[BENCH_MAX_BATCH];
    const uint64_t end = first + n;
    uint64_t seq = first;
    while (seq < end) {
        const uint64_t lim = end - seq < batch ? end - seq : batch;
        for (uint64_t k = 0; k < lim; k++)
            buf[k] = seq + k;
        const size_t w = sb_ring_write_items(p, BENCH_TYPE_U64, buf, sizeof(uint64_t), lim);
        seq += w;
        if (!w)
            bench_relax();
    }
}

void bench_sb_consume_u64_items(struct bench_sb_ring *r, uint64_t first, uint64_t n,
                                unsigned batch)
{
    struct sb_ring_consumer *c = &r->cons;
    uint64_t buf[BENCH_MAX_BATCH];
    const uint64_t end = first + n;
    uint64_t seq = first;
    bool corrupt = false;
    while (seq < end) {
        const uint64_t lim = end - seq < batch ? end - seq : batch;
        const size_t got =
            sb_ring_read_items(c, BENCH_TYPE_U64, buf, sizeof(uint64_t), lim, &corrupt);
        if (corrupt)
            bench_fail("sb ring items: corrupt ring at position", 0, c->read);
        for (size_t k = 0; k < got; k++)
            if (buf[k] != seq + k)
                bench_fail("sb ring items: sequence", seq + k, buf[k]);
        if (got)
            seq += got;
        else
            bench_relax();
    }
}

/*
 * @copy_api: the copy-in/copy-out calls (sb_ring_write_n / sb_ring_read_n); otherwise zero-copy
 * claim/commit and peek/advance/release.
 * @own_handle: the thread works on its own handle (a local variable, as a thread that attaches
 * its side of the ring keeps it) instead of the handle in the shared heap object. Same ring, same
 * calls; but a heap handle may alias the bytes the loop writes and has escaped to the other
 * thread, so the compiler re-loads and re-stores its fields around every call, while an owned
 * handle stays in registers.
 */
void bench_sb_produce_u64(struct bench_sb_ring *r, uint64_t first, uint64_t n, unsigned batch,
                          bool copy_api, bool own_handle)
{
    struct sb_ring_producer local = r->prod;
    struct sb_ring_producer *p = own_handle ? &local : &r->prod;
    if (copy_api)
        BENCH_DISPATCH(produce_u64_copy, p, first, n, batch);
    else
        BENCH_DISPATCH(produce_u64, p, first, n, batch);
    if (own_handle)
        r->prod = local;
}

void bench_sb_consume_u64(struct bench_sb_ring *r, uint64_t first, uint64_t n, unsigned batch,
                          bool copy_api, bool own_handle)
{
    struct sb_ring_consumer local = r->cons;
    struct sb_ring_consumer *c = own_handle ? &local : &r->cons;
    if (copy_api)
        BENCH_DISPATCH(consume_u64_copy, c, first, n, batch);
    else
        BENCH_DISPATCH(consume_u64, c, first, n, batch);
    if (own_handle)
        r->cons = local;
}

void bench_sb_produce_rec(struct bench_sb_ring *r, uint64_t first, uint64_t n, unsigned batch)
{
    BENCH_DISPATCH(produce_rec, &r->prod, first, n, batch);
}

void bench_sb_consume_rec(struct bench_sb_ring *r, uint64_t first, uint64_t n, unsigned batch)
{
    BENCH_DISPATCH(consume_rec, &r->cons, first, n, batch);
}
