/*
 * histogram.h - a high-dynamic-range latency histogram (log-linear buckets, HDR style).
 *
 * Values are nanoseconds. Below 256 every value has its own bucket; above, each power of two is
 * cut into 128 equal buckets, so a recorded value is known to within 1/128 (< 0.8%) over the
 * whole uint64_t range. Recording is two shifts and an increment. One histogram belongs to one
 * thread; merge them when the threads are done.
 */
#ifndef BENCH_HISTOGRAM_H
#define BENCH_HISTOGRAM_H

#include <stdint.h>

#define BENCH_HIST_SUB_BITS 8
#define BENCH_HIST_HALF (1u << (BENCH_HIST_SUB_BITS - 1))
#define BENCH_HIST_BUCKETS ((64 - BENCH_HIST_SUB_BITS + 1) * BENCH_HIST_HALF + BENCH_HIST_HALF)

struct bench_hist {
    uint64_t counts[BENCH_HIST_BUCKETS];
    uint64_t total;
    uint64_t min;
    uint64_t max;
    double sum; /* for the mean */
};

/**
 * bench_hist_init - empty @h.
 * Any thread; never fails.
 */
void bench_hist_init(struct bench_hist *h);

/**
 * bench_hist_record - count one value @v (nanoseconds) in @h.
 * Only the thread that owns @h; never blocks, never fails.
 */
void bench_hist_record(struct bench_hist *h, uint64_t v);

/**
 * bench_hist_merge - add every count of @src to @dst.
 * Call once neither is being recorded into.
 */
void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src);

/**
 * bench_hist_percentile - the value at or below which @p percent (0..100) of the recorded
 * values lie, as the middle of its bucket (the exact maximum for p = 100); 0 when @h is empty.
 */
uint64_t bench_hist_percentile(const struct bench_hist *h, double p);

/**
 * bench_hist_mean - the arithmetic mean of the recorded values, 0 when @h is empty.
 */
double bench_hist_mean(const struct bench_hist *h);

#endif
