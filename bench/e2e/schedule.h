/*
 * schedule.h - when each message is due: fixed-rate sending with coordinated omission
 * corrected, or as fast as possible.
 *
 * In fixed-rate mode message i of a producer is due at start + i * (1 s / rate) and is stamped
 * with that time, whenever it actually goes out: a system that stalls the sender is charged for
 * every message that should have left during the stall (the correction for coordinated omission
 * that a closed loop lacks). The producer sleeps until the next message is due and then sends
 * every message due by then, so it does not spin a core the server and consumer need; the
 * oversleep shows in the latencies, the same for every system. With rate 0 every message is
 * due at once and stamped with the time of its publish call.
 */
#ifndef BENCH_SCHEDULE_H
#define BENCH_SCHEDULE_H

#include <stdint.h>

struct bench_schedule {
    uint64_t start_ns;
    uint64_t end_ns;
    double interval_ns; /* 0: as fast as possible */
    uint64_t index;     /* of the next message */
};

/**
 * bench_now_ns - CLOCK_MONOTONIC in nanoseconds.
 */
uint64_t bench_now_ns(void);

/**
 * bench_schedule_init - messages from @start_ns until @end_ns at @rate per second (0: as fast
 * as possible).
 */
void bench_schedule_init(struct bench_schedule *s, uint64_t start_ns, uint64_t end_ns, double rate);

/**
 * bench_schedule_next - wait (sleeping) until the next message is due and give its stamp in
 * @stamp_ns. Returns 1, or 0 once the end time is reached (nothing more to send).
 * Calls @idle(@arg) before each sleep (serve the client's callbacks), if not NULL.
 */
int bench_schedule_next(struct bench_schedule *s, uint64_t *stamp_ns, void (*idle)(void *),
                        void *arg);

#endif
