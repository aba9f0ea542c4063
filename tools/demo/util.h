/* Small helpers the demo's threads share: clock, nap, id mixing, single-writer counters. */
#ifndef SHARDBUS_DEMO_UTIL_H
#define SHARDBUS_DEMO_UTIL_H

#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

#define NS_PER_SEC 1000000000LL

static inline int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static inline void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / NS_PER_SEC), (long)(ns % NS_PER_SEC)};
    nanosleep(&ts, NULL); /* a signal (EINTR) just ends the nap early */
}

/* splitmix64's finaliser: spreads ids so that a sum of them exposes a loss plus a duplicate. */
static inline uint64_t mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

/* Add to a counter only one thread writes: a load and a store, no read-modify-write needed. */
static inline void bump(_Atomic uint64_t *counter, uint64_t n, memory_order order)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n, order);
}

#endif
