/*
 * test_bench_cpu_meter.c - the load generator's CPU meter (bench/e2e/cpu_meter.c): the CPU time
 * it reads for a process from /proc/PID/stat agrees with what getrusage() says of the same
 * process, after this process burns a known amount of CPU; a process that does not exist is
 * reported as an error, not as zero.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "cpu_meter.h"

static double thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
    struct bench_cpu_sample a, b;
    if (bench_cpu_sample(getpid(), &a) != 0 || a.server_s < 0) {
        fprintf(stderr, "test_bench_cpu_meter: cannot read /proc/%d/stat\n", (int)getpid());
        return 1;
    }
    /* Burn 0.3 s of CPU on this thread. */
    const double start = thread_cpu_s();
    volatile unsigned long sink = 0;
    while (thread_cpu_s() - start < 0.3)
        for (int i = 0; i < 100000; i++)
            sink += (unsigned long)i * 2654435761u;
    if (bench_cpu_sample(getpid(), &b) != 0) {
        fprintf(stderr, "test_bench_cpu_meter: second sample failed\n");
        return 1;
    }
    const double self = b.self_s - a.self_s, proc = b.server_s - a.server_s;
    /* /proc counts in clock ticks (10 ms at 100 Hz): allow two ticks each way. */
    if (self < 0.29 || fabs(proc - self) > 0.03) {
        fprintf(stderr, "test_bench_cpu_meter: getrusage %.3f s, /proc %.3f s\n", self, proc);
        return 1;
    }
    /* A pid that cannot exist (above the kernel's pid_max of 2^22). */
    struct bench_cpu_sample c;
    if (bench_cpu_sample(0x7ffffff0, &c) == 0 || c.server_s >= 0) {
        fprintf(stderr, "test_bench_cpu_meter: a missing process was not reported\n");
        return 1;
    }
    printf("test_bench_cpu_meter: ok (getrusage %.3f s, /proc %.3f s)\n", self, proc);
    return (int)(sink & 0); /* keep the loop */
}
