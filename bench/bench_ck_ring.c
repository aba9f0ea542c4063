/*
 * bench_ck_ring.c - Concurrency Kit's ck_ring (SPSC) producer and consumer loops for bench_ring,
 * the baseline the shardbus ring is compared against (see bench_rings.h for the conventions).
 *
 * What it measures: ck_ring_enqueue_spsc() / ck_ring_dequeue_spsc(), one pointer-sized item per
 * call, on a ring of 65536 slots (bench_ring.cc picks the size). Debian's ck_ring.h is C only,
 * hence this file. ck_ring does its own fencing (ck_pr_fence_store / ck_pr_fence_load); this
 * file adds no atomics of its own.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ck_ring.h>

#include "bench_rings.h"

#define BENCH_CK_ALIGN 128 /* keep the ring header off the lines of its neighbours */

struct bench_ck_ring {
    struct ck_ring ring; /* ck pads c_head and p_tail onto separate cache lines itself */
    ck_ring_buffer_t *buffer;
};

struct bench_ck_ring *bench_ck_ring_new(unsigned entries)
{
    if (entries < 4 || (entries & (entries - 1)) != 0)
        return NULL;
    size_t header = (sizeof(struct bench_ck_ring) + BENCH_CK_ALIGN - 1) / BENCH_CK_ALIGN *
                    BENCH_CK_ALIGN;
    struct bench_ck_ring *r = aligned_alloc(BENCH_CK_ALIGN, header);
    if (!r)
        return NULL;
    size_t bytes = (size_t)entries * sizeof(ck_ring_buffer_t);
    r->buffer = aligned_alloc(BENCH_CK_ALIGN, bytes);
    if (!r->buffer) {
        free(r);
        return NULL;
    }
    memset(r->buffer, 0, bytes); /* fault every page in before anything is timed */
    ck_ring_init(&r->ring, entries);
    return r;
}

void bench_ck_ring_free(struct bench_ck_ring *r)
{
    if (!r)
        return;
    free(r->buffer);
    free(r);
}

void bench_ck_produce(struct bench_ck_ring *r, uint64_t first, uint64_t n)
{
    const uint64_t end = first + n;
    for (uint64_t seq = first; seq < end; seq++) {
        const void *item = (const void *)(uintptr_t)seq;
        while (!ck_ring_enqueue_spsc(&r->ring, r->buffer, item))
            bench_relax();
    }
}

void bench_ck_consume(struct bench_ck_ring *r, uint64_t first, uint64_t n)
{
    const uint64_t end = first + n;
    for (uint64_t seq = first; seq < end; seq++) {
        void *item;
        while (!ck_ring_dequeue_spsc(&r->ring, r->buffer, &item))
            bench_relax();
        if ((uint64_t)(uintptr_t)item != seq)
            bench_fail("ck_ring: sequence", seq, (uint64_t)(uintptr_t)item);
    }
}
