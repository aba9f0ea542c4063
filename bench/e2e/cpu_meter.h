/*
 * cpu_meter.h - CPU time used by this process (the clients: producers, consumers and their
 * libraries' threads) and by a server process, so a run reports what each side spends per
 * message: on a machine of few cores, that is what bounds the rate of any client and server
 * pair sharing it.
 */
#ifndef BENCH_CPU_METER_H
#define BENCH_CPU_METER_H

struct bench_cpu_sample {
    double self_s;   /* user + system seconds of every thread of this process */
    double server_s; /* the same for the server process; < 0 when not measured */
};

/**
 * bench_cpu_sample - read the CPU time used so far by this process and, when @server_pid > 0,
 * by process @server_pid (from /proc/PID/stat: all its threads, io_uring workers included).
 * Returns 0, or a negative errno when the server's figures could not be read (out->server_s
 * is then -1; out->self_s is always set). Any thread may call it.
 */
int bench_cpu_sample(int server_pid, struct bench_cpu_sample *out);

#endif
