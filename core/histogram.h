/*
 * histogram.h - a latency histogram with power-of-two microsecond buckets, written by one
 * thread and read by any (metrics).
 */
#ifndef SB_HISTOGRAM_H
#define SB_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

#define SB_LATENCY_BUCKETS 20 /* upper bounds 2^k microseconds, k = 0..19, then +Inf */

struct sb_latency_histogram {
    _Atomic uint64_t buckets[SB_LATENCY_BUCKETS + 1];
    _Atomic uint64_t count;
    _Atomic uint64_t sum_us;
};

/** sb_histogram_record - count @ns in @h. Its single writer thread only; never blocks. */
static inline void sb_histogram_record(struct sb_latency_histogram *h, int64_t ns)
{
    uint64_t us = ns > 0 ? (uint64_t)ns / 1000 : 0;
    unsigned k = 0;
    while (k < SB_LATENCY_BUCKETS && us > (1ull << k))
        k++;
    /* Relaxed load + store by the single writer; readers (metrics) use relaxed loads: each
     * counter is exact on its own, a set of them is not a snapshot. */
    atomic_store_explicit(&h->buckets[k],
                          atomic_load_explicit(&h->buckets[k], memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&h->count, atomic_load_explicit(&h->count, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&h->sum_us, atomic_load_explicit(&h->sum_us, memory_order_relaxed) + us,
                          memory_order_relaxed);
}

#endif /* SB_HISTOGRAM_H */
