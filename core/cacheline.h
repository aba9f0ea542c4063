/*
 * cacheline.h - the cache-line constants every shared structure is laid out with.
 */
#ifndef SB_CACHELINE_H
#define SB_CACHELINE_H

/** Size of one cache line on x86-64 and most arm64 parts. */
#define SB_CACHE_LINE 64
/** Distance kept between data written by different threads: two lines, because x86's adjacent
 *  line prefetcher pulls lines in pairs and would make neighbours interfere (as folly and DPDK
 *  do). */
#define SB_CACHE_GUARD 128

#endif /* SB_CACHELINE_H */
