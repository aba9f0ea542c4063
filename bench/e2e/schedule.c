/*
 * schedule.c - fixed-rate and as-fast-as-possible send schedules (see schedule.h).
 */
#define _POSIX_C_SOURCE 200809L
#include "schedule.h"

#include <errno.h>
#include <time.h>

uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void bench_schedule_init(struct bench_schedule *s, uint64_t start_ns, uint64_t end_ns, double rate)
{
    s->start_ns = start_ns;
    s->end_ns = end_ns;
    s->interval_ns = rate > 0 ? 1e9 / rate : 0;
    s->index = 0;
}

static void sleep_until(uint64_t t)
{
    struct timespec ts = {.tv_sec = (time_t)(t / 1000000000u), .tv_nsec = (long)(t % 1000000000u)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
        ;
}

int bench_schedule_next(struct bench_schedule *s, uint64_t *stamp_ns, void (*idle)(void *),
                        void *arg)
{
    if (s->interval_ns == 0) {
        uint64_t now = bench_now_ns();
        if (now >= s->end_ns)
            return 0;
        s->index++;
        *stamp_ns = now;
        return 1;
    }
    uint64_t due = s->start_ns + (uint64_t)((double)s->index * s->interval_ns);
    if (due >= s->end_ns)
        return 0;
    uint64_t now = bench_now_ns();
    if (now < due) {
        if (idle)
            idle(arg);
        sleep_until(due);
    }
    s->index++;
    *stamp_ns = due;
    return 1;
}
