/*
 * bench_util.h - helpers shared by the C++ benchmarks: CPU pinning, the smoke switch, a clock.
 *
 * Pinning: the benchmarks want two threads on two different CPUs. They take the first two CPUs
 * of this process's affinity mask (CPU 0 and CPU 1 on the project's 2-core machines); when only
 * one CPU is allowed both threads share it and the benchmark says so in its label, rather than
 * failing.
 *
 * Smoke mode: SB_BENCH_SMOKE=1 in the environment shrinks every benchmark's item count so the
 * test suite (label "bench-smoke") runs each one in well under a second, checks included.
 */
#ifndef SB_BENCH_UTIL_H
#define SB_BENCH_UTIL_H

#include <pthread.h>
#include <sys/resource.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

namespace bench {

/** Print what went wrong and abort(): a benchmark that moved the wrong data must not report. */
[[noreturn]] inline void fail(const char *what, unsigned long long expected,
                              unsigned long long got)
{
    std::fprintf(stderr, "bench: %s: expected %llu, got %llu\n", what, expected, got);
    std::abort();
}

/** One spin-wait step. */
inline void relax()
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/**
 * One step of a producer's wait for room after -EAGAIN (Aeron's BackoffIdleStrategy, in
 * short): spin for the first 64 tries, then give the CPU away. On 2 cores the CPU a producer
 * spins on is the one the kernel's write workers (io-wq) and the shard also need.
 */
inline void backoff(uint64_t tries)
{
    if (tries < 64)
        relax();
    else
        sched_yield();
}

/** True when SB_BENCH_SMOKE is set to anything but "" or "0". */
inline bool smoke()
{
    const char *v = std::getenv("SB_BENCH_SMOKE");
    return v && *v && std::strcmp(v, "0") != 0;
}

/** @full normally, @small in smoke mode. */
inline uint64_t pick(uint64_t full, uint64_t small)
{
    return smoke() ? small : full;
}

inline int64_t now_ns()
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/** CPU seconds (user + system) used so far by every thread of this process: the benchmark's
 *  threads, the bus's shards and the kernel's io_uring workers (threads of this process). */
inline double process_cpu_s()
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return double(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           double(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/** Steal time of the whole machine so far (ticks, /proc/stat): time the hypervisor kept our
 *  virtual CPUs from running. 0 when unreadable. */
inline unsigned long long steal_ticks()
{
    unsigned long long v[8] = {0};
    FILE *f = std::fopen("/proc/stat", "r");
    if (!f)
        return 0;
    const int n = std::fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2],
                              &v[3], &v[4], &v[5], &v[6], &v[7]);
    std::fclose(f);
    return n == 8 ? v[7] : 0;
}

/**
 * drop_page_cache - sync, then empty the page cache when this process may (root writes
 * /proc/sys/vm/drop_caches; anyone else: nothing happens). A buffered write's cost depends on
 * what the page cache already holds: on this project's VM a raw buffered write of 230 MB took
 * 0.84 s of CPU per GB with 9.5 GB cached and 0.23 s/GB with the cache emptied, so each log
 * benchmark and its baseline start from the same, empty cache. Not in smoke mode.
 */
inline void drop_page_cache()
{
    sync();
    if (smoke())
        return;
    if (FILE *f = std::fopen("/proc/sys/vm/drop_caches", "w")) {
        std::fputs("1", f);
        std::fclose(f);
    }
}

/**
 * settle_after_delete - call after deleting a benchmark's files: sync, then wait until the
 * machine's steal time has not grown for 2 s (at most 20 s). On this project's VM (ext4 with
 * online discard), deleting a few GB makes the host pause the whole guest for 20-30 ms at a
 * time over the next seconds, which the next benchmark would otherwise measure as its own
 * latency. No wait in smoke mode.
 */
inline void settle_after_delete()
{
    sync();
    if (smoke())
        return;
    unsigned long long last = steal_ticks();
    int still = 0;
    for (int waited = 0; still < 2 && waited < 20; waited++) {
        struct timespec ts = {1, 0};
        nanosleep(&ts, nullptr);
        const unsigned long long now = steal_ticks();
        still = now == last ? still + 1 : 0;
        last = now;
    }
}

/** The CPUs this process may run on, in increasing order. */
inline std::vector<int> allowed_cpus()
{
    std::vector<int> cpus;
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof(set), &set) != 0)
        return cpus;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set))
            cpus.push_back(c);
    return cpus;
}

/** Two CPUs for a producer/consumer pair: the first two allowed ones, or the only one twice.
 *  *shared is set when both had to be the same CPU (-1 when the mask could not be read). */
struct cpu_pair {
    int a = -1, b = -1;
    bool shared = false;
};

inline cpu_pair pick_cpu_pair()
{
    cpu_pair p;
    std::vector<int> cpus = allowed_cpus();
    if (cpus.empty()) {
        p.shared = true;
        return p;
    }
    p.a = cpus[0];
    p.b = cpus.size() > 1 ? cpus[1] : cpus[0];
    p.shared = p.a == p.b;
    return p;
}

/** Pin the calling thread to @cpu (no-op for cpu < 0). Returns 0 or a positive errno. */
inline int pin_self(int cpu)
{
    if (cpu < 0)
        return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/** Pins the calling thread for its lifetime and restores the previous mask on destruction, so
 *  one benchmark's pinning does not leak into the next. */
class scoped_pin {
public:
    explicit scoped_pin(int cpu)
    {
        CPU_ZERO(&saved_);
        saved_ok_ = pthread_getaffinity_np(pthread_self(), sizeof(saved_), &saved_) == 0;
        ok_ = pin_self(cpu) == 0;
    }
    ~scoped_pin()
    {
        if (saved_ok_)
            pthread_setaffinity_np(pthread_self(), sizeof(saved_), &saved_);
    }
    scoped_pin(const scoped_pin &) = delete;
    scoped_pin &operator=(const scoped_pin &) = delete;
    bool ok() const { return ok_; }

private:
    cpu_set_t saved_;
    bool saved_ok_ = false;
    bool ok_ = false;
};

} // namespace bench

#endif /* SB_BENCH_UTIL_H */
