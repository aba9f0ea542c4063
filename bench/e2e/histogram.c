/*
 * histogram.c - log-linear latency histogram (see histogram.h).
 */
#include "histogram.h"

#include <string.h>

static unsigned bucket_of(uint64_t v)
{
    if (v < 2 * BENCH_HIST_HALF)
        return (unsigned)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* v in [2^e, 2^(e+1)), e >= SUB_BITS */
    unsigned shift = e - (BENCH_HIST_SUB_BITS - 1);
    /* v >> shift lies in [HALF, 2*HALF): consecutive powers of two tile the index space. */
    return shift * BENCH_HIST_HALF + (unsigned)(v >> shift);
}

/* Lowest value of bucket @i and its width. */
static void bucket_range(unsigned i, uint64_t *lo, uint64_t *width)
{
    if (i < 2 * BENCH_HIST_HALF) {
        *lo = i;
        *width = 1;
        return;
    }
    unsigned shift = i / BENCH_HIST_HALF - 1;
    uint64_t top = i - shift * BENCH_HIST_HALF; /* in [HALF, 2*HALF) */
    *lo = top << shift;
    *width = (uint64_t)1 << shift;
}

void bench_hist_init(struct bench_hist *h)
{
    memset(h, 0, sizeof *h);
    h->min = UINT64_MAX;
}

void bench_hist_record(struct bench_hist *h, uint64_t v)
{
    h->counts[bucket_of(v)]++;
    h->total++;
    h->sum += (double)v;
    if (v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
}

void bench_hist_merge(struct bench_hist *dst, const struct bench_hist *src)
{
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++)
        dst->counts[i] += src->counts[i];
    dst->total += src->total;
    dst->sum += src->sum;
    if (src->min < dst->min)
        dst->min = src->min;
    if (src->max > dst->max)
        dst->max = src->max;
}

uint64_t bench_hist_percentile(const struct bench_hist *h, double p)
{
    if (h->total == 0)
        return 0;
    if (p >= 100.0)
        return h->max;
    /* The rank of the value wanted, 1-based: ceil(p% of total), at least 1. */
    double want = p / 100.0 * (double)h->total;
    uint64_t rank = (uint64_t)want;
    if ((double)rank < want)
        rank++;
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < BENCH_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t lo, width;
            bucket_range(i, &lo, &width);
            uint64_t mid = lo + width / 2;
            if (mid > h->max)
                mid = h->max;
            if (mid < h->min)
                mid = h->min;
            return mid;
        }
    }
    return h->max;
}

double bench_hist_mean(const struct bench_hist *h)
{
    return h->total ? h->sum / (double)h->total : 0.0;
}
