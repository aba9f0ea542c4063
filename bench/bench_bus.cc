/*
 * bench_bus.cc - the bus end to end, through the public API (shardbus.h) only.
 *
 * BM_bus_publish_handler - throughput, publish -> handler. A memory-only bus of 2 shards pinned
 *   to the first two allowed CPUs (shard 0 on CPU 0, shard 1 on CPU 1), one topic of 1
 *   partition: topic id 0 partition 0 is owned by shard 0, so the producer (the benchmark
 *   thread) is pinned to the other CPU (CPU 1; shard 1 is idle there and parks). Each iteration
 *   publishes N 100-byte values (1 << 20; 1 << 12 with SB_BENCH_SMOKE=1), retrying on -EAGAIN,
 *   then sb_producer_flush(p, -1): the time covers appending and running the handler on every
 *   event. The handler checks each event's sequence number (first and last 8 bytes of the value)
 *   and offset, and abort()s on a mismatch; after the flush the benchmark checks the handler's
 *   count. Reported: events/s (kIsRate, real time) and EAGAIN retries per event.
 *
 * BM_bus_publish_poll_latency - latency, publish -> sb_poll. Same bus shape (default config:
 *   idle_spin_us 50); a consumer thread subscribed to the topic calls sb_poll(timeout 100 ms)
 *   while the benchmark thread publishes at a fixed rate of 10,000 events/s: event i is due at
 *   t0 + i * 100 us, carries that scheduled time (CLOCK_MONOTONIC ns), and latency = time
 *   sb_poll returned it - scheduled time. Measuring from the schedule, not from the actual send,
 *   corrects for coordinated omission: a publisher held up by a slow bus charges the delay to
 *   the bus. 1,000 unmeasured warm-up events precede 20,000 measured ones (50 + 200 in smoke
 *   mode); all are checked in order (sequence numbers, offsets). Reported: p50, p99, p99.9 and
 *   max latency in ns, and the publisher's own lateness (send_lag_*: when it is large the load
 *   generator, not only the bus, was late). Two CPUs serve three busy threads here (shard 0, the
 *   producer, the consumer), so the argument `consumer_cpu` says where the consumer runs: 1 = the
 *   producer's CPU, 0 = shard 0's CPU. The producer waits for each due time by sleeping
 *   (clock_nanosleep, timer slack 1 ns) until 20 us before it, then busy-waiting, so a consumer
 *   sharing its CPU runs while it sleeps.
 *
 * BM_bus_publish_poll_latency_hot - latency, publish -> sb_poll, with busy shards, as a
 *   latency-critical deployment with a core per shard runs it (Aeron's busy-spin idle
 *   strategy): one shard on CPU 0 with idle_spin_us = 1 s (it never parks between events), and
 *   one thread on CPU 1 that publishes each event at its due time (10,000/s, as above) and then
 *   polls with timeout 0 until the event arrives. Latency = arrival - scheduled time (p50_ns
 *   ...), and arrival - the start of the sb_publish() call (call_p50_ns ...: publish -> poll
 *   itself, without the load generator's own lateness, which BM_schedule_baseline shows; with
 *   one event in flight at a time nothing queues, so the two differ by that lateness only);
 *   events checked in order. Two cache-line hand-offs (producer -> shard -> consumer) are the
 *   floor.
 *
 * BM_schedule_baseline - the same schedule with no bus, in the same run: how late a thread on
 *   each of the two CPUs wakes (p50 .. max of the worse of the two per due time). The machine's
 *   noise floor for the latency figures above. Run with --benchmark_enable_random_interleaving
 *   so that its repetitions and the bus's share the same stretches of (noisy) time.
 */
#include <benchmark/benchmark.h>
#include <shardbus.h>

#include <sched.h>
#include <sys/prctl.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace {

constexpr size_t kValueBytes = 100;
constexpr size_t kSeqTail = kValueBytes - sizeof(uint64_t); /* second copy of the sequence */
constexpr size_t kSchedAt = sizeof(uint64_t);               /* latency: scheduled time */
constexpr int64_t kRatePerSec = 10000;                      /* latency: events per second */

void fill_pattern(unsigned char *v)
{
    for (size_t i = 0; i < kValueBytes; i++)
        v[i] = (unsigned char)(i * 7u + 1u);
}

void put_u64(unsigned char *dst, uint64_t v)
{
    std::memcpy(dst, &v, sizeof(v));
}

uint64_t get_u64(const void *src, size_t at)
{
    uint64_t v;
    std::memcpy(&v, static_cast<const unsigned char *>(src) + at, sizeof(v));
    return v;
}

/* Checks the value of event @ev against sequence number @seq; abort()s on a mismatch. */
void check_event(const struct sb_event *ev, uint64_t seq, const char *who)
{
    if (ev->value_len != kValueBytes || !ev->value)
        bench::fail(who, kValueBytes, ev->value_len);
    const uint64_t head = get_u64(ev->value, 0), tail = get_u64(ev->value, kSeqTail);
    if (head != seq || tail != seq)
        bench::fail(who, seq, head != seq ? head : tail);
    /* One partition, every event ours: offsets count from 0 in publish order. */
    if (ev->offset != int64_t(seq))
        bench::fail(who, seq, (unsigned long long)ev->offset);
}

/* A memory-only bus of @shards (1 or 2) shards on @cpus.a (and @cpus.b) with topic @name of 1
 * partition. */
struct sb_bus *open_bus(const bench::cpu_pair &cpus, unsigned spin_us, const char *name,
                        std::string *err, unsigned shards = 2)
{
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = shards;
    int cpu_list[2] = {cpus.a, cpus.b};
    if (cpus.a >= 0)
        cfg.cpus = cpu_list; /* copied by sb_bus_open */
    cfg.idle_spin_us = spin_us;
    struct sb_bus *bus = nullptr;
    int rc = sb_bus_open(&cfg, &bus);
    if (rc) {
        *err = "sb_bus_open: " + std::string(std::strerror(-rc));
        return nullptr;
    }
    rc = sb_topic_create(bus, name, 1);
    if (rc) {
        *err = "sb_topic_create: " + std::string(std::strerror(-rc));
        sb_bus_close(bus);
        return nullptr;
    }
    return bus;
}

/* --- publish -> handler throughput --- */

struct count_ctx {
    /* The shard thread's own fields (only the handler writes them). */
    uint64_t next = 0;
    int cpu = -1;
    unsigned shard = ~0u;
    /* Events handled, for the benchmark thread. */
    alignas(128) std::atomic<uint64_t> seen{0};
};

void count_handler(struct sb_shard *shard, const struct sb_event *ev, void *arg)
{
    auto *ctx = static_cast<count_ctx *>(arg);
    check_event(ev, ctx->next, "handler: event sequence");
    if (ctx->next == 0) {
        ctx->cpu = sched_getcpu();
        ctx->shard = sb_shard_id(shard);
    }
    ctx->next++;
    /* Release pairs with the benchmark thread's acquire load after sb_producer_flush(): the
     * plain fields above are visible to it along with the count. */
    ctx->seen.store(ctx->next, std::memory_order_release);
}

void BM_bus_publish_handler(benchmark::State &state)
{
    const uint64_t n = bench::pick(uint64_t(1) << 20, uint64_t(1) << 12);
    const bench::cpu_pair cpus = bench::pick_cpu_pair();
    std::string err;
    struct sb_bus *bus = open_bus(cpus, 50, "bench", &err);
    if (!bus) {
        state.SkipWithError(err.c_str());
        return;
    }
    count_ctx ctx;
    int rc = sb_handler_add(bus, "bench", count_handler, &ctx);
    if (rc)
        bench::fail("sb_handler_add", 0, (unsigned long long)-rc);
    /* Topic id 0, partition 0 -> shard 0 -> cpus.a: the producer takes the other CPU. */
    bench::scoped_pin pin(cpus.b);
    struct sb_producer *p = nullptr;
    rc = sb_producer_open(bus, &p);
    if (rc)
        bench::fail("sb_producer_open", 0, (unsigned long long)-rc);

    unsigned char value[kValueBytes];
    fill_pattern(value);
    uint64_t seq = 0, eagain = 0;
    auto publish_n = [&] {
        for (uint64_t i = 0; i < n; i++, seq++) {
            put_u64(value, seq);
            put_u64(value + kSeqTail, seq);
            while ((rc = sb_publish(p, "bench", nullptr, 0, value, kValueBytes)) == -EAGAIN) {
                eagain++;
                bench::relax();
            }
            if (rc)
                bench::fail("sb_publish", 0, (unsigned long long)-rc);
        }
        rc = sb_producer_flush(p, -1);
        if (rc)
            bench::fail("sb_producer_flush", 0, (unsigned long long)-rc);
        /* Acquire pairs with the handler's release store of seen. */
        const uint64_t seen = ctx.seen.load(std::memory_order_acquire);
        if (seen != seq)
            bench::fail("handler count after flush", seq, seen);
    };
    publish_n(); /* warm-up, untimed: page faults of the rings and the partition memory */
    const uint64_t eagain_warm = eagain;
    for (auto _ : state)
        publish_n();

    sb_producer_close(p);
    rc = sb_bus_close(bus);
    if (rc)
        bench::fail("sb_bus_close", 0, (unsigned long long)-rc);

    const double timed = double(seq - n);
    state.counters["events/s"] = benchmark::Counter(timed, benchmark::Counter::kIsRate);
    state.counters["eagain/event"] = double(eagain - eagain_warm) / timed;
    state.SetLabel("producer cpu " + std::to_string(cpus.b) + ", handler ran on shard " +
                   std::to_string(ctx.shard) + " cpu " + std::to_string(ctx.cpu) +
                   (cpus.shared ? " (1 CPU allowed)" : ""));
}

/* --- publish -> sb_poll latency --- */

/* Waits until CLOCK_MONOTONIC reaches @due_ns: sleeps until 20 us before, then spins. */
void wait_until(int64_t due_ns)
{
    constexpr int64_t kSpinNs = 20000;
    const int64_t wake = due_ns - kSpinNs;
    if (bench::now_ns() < wake) {
        struct timespec ts = {time_t(wake / 1000000000), long(wake % 1000000000)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
        }
    }
    while (bench::now_ns() < due_ns)
        bench::relax();
}

uint64_t percentile(const std::vector<int64_t> &sorted, double q)
{
    if (sorted.empty())
        return 0;
    size_t rank = size_t(q * double(sorted.size()) + 0.999999999);
    rank = std::min(std::max<size_t>(rank, 1), sorted.size());
    return uint64_t(sorted[rank - 1]);
}

/* Sorts @v and reports its p50, p99, p99.9 and max as counters named <prefix>p50_ns, ... */
void report_percentiles(benchmark::State &state, const std::string &prefix, std::vector<int64_t> &v)
{
    std::sort(v.begin(), v.end());
    state.counters[prefix + "p50_ns"] = double(percentile(v, 0.50));
    state.counters[prefix + "p99_ns"] = double(percentile(v, 0.99));
    state.counters[prefix + "p99.9_ns"] = double(percentile(v, 0.999));
    state.counters[prefix + "max_ns"] = v.empty() ? 0.0 : double(v.back());
}

/*
 * The fixed-rate schedule: for i in [0, total), waits until t0 + i * interval, calls
 * @send(i, due) and, from i = warm on, appends how late the send returned (now - due) to @lag.
 */
template <class Send>
void run_schedule(int64_t t0, uint64_t total, uint64_t warm, Send send, std::vector<int64_t> *lag)
{
    constexpr int64_t kIntervalNs = 1000000000 / kRatePerSec;
    for (uint64_t i = 0; i < total; i++) {
        const int64_t due = t0 + int64_t(i) * kIntervalNs;
        wait_until(due);
        send(i, due);
        if (i >= warm)
            lag->push_back(bench::now_ns() - due);
    }
}

/* Sets this thread's timer slack to 1 ns (so clock_nanosleep wakes on time) and restores it. */
class scoped_timer_slack {
public:
    scoped_timer_slack() : old_(prctl(PR_GET_TIMERSLACK, 0, 0, 0, 0))
    {
        prctl(PR_SET_TIMERSLACK, 1UL, 0, 0, 0);
    }
    ~scoped_timer_slack()
    {
        if (old_ > 0)
            prctl(PR_SET_TIMERSLACK, (unsigned long)old_, 0, 0, 0);
    }
    scoped_timer_slack(const scoped_timer_slack &) = delete;
    scoped_timer_slack &operator=(const scoped_timer_slack &) = delete;

private:
    int old_;
};

uint64_t warm_events()
{
    return bench::pick(1000, 50);
}

uint64_t measured_events()
{
    return bench::pick(20000, 200);
}

/* The consumer thread's body: poll @total events starting at sequence @first, record the
 * latency of those from @first + @warm on. */
void consume_latency(struct sb_consumer *c, int cpu, uint64_t first, uint64_t warm,
                     uint64_t total, std::vector<int64_t> *lat)
{
    bench::pin_self(cpu);
    struct sb_event evs[64];
    uint64_t got = 0;
    int64_t progress_at = bench::now_ns();
    while (got < total) {
        const int k = sb_poll(c, evs, 64, 100);
        const int64_t now = bench::now_ns();
        if (k < 0)
            bench::fail("sb_poll", 0, (unsigned long long)-k);
        if (k == 0) {
            if (now - progress_at > int64_t(10) * 1000000000)
                bench::fail("latency: events missing after 10 s; received", total, got);
            continue;
        }
        progress_at = now;
        for (int i = 0; i < k; i++, got++) {
            if (got == total)
                bench::fail("latency: more events than published", total, got + 1);
            check_event(&evs[i], first + got, "consumer: event sequence");
            if (got >= warm)
                lat->push_back(now - int64_t(get_u64(evs[i].value, kSchedAt)));
        }
    }
}

void BM_bus_publish_poll_latency(benchmark::State &state)
{
    const int consumer_on = int(state.range(0)); /* 1: the producer's CPU, 0: shard 0's CPU */
    const uint64_t warm = warm_events(), measured = measured_events();
    const bench::cpu_pair cpus = bench::pick_cpu_pair();
    const int consumer_cpu = consumer_on ? cpus.b : cpus.a;
    std::string err;
    struct sb_bus *bus = open_bus(cpus, 50, "latency", &err);
    if (!bus) {
        state.SkipWithError(err.c_str());
        return;
    }
    struct sb_consumer *c = nullptr;
    int rc = sb_subscribe(bus, "latency", SB_OFFSET_END, &c);
    if (rc)
        bench::fail("sb_subscribe", 0, (unsigned long long)-rc);
    bench::scoped_pin pin(cpus.b);
    scoped_timer_slack slack;
    struct sb_producer *p = nullptr;
    rc = sb_producer_open(bus, &p);
    if (rc)
        bench::fail("sb_producer_open", 0, (unsigned long long)-rc);

    unsigned char value[kValueBytes];
    fill_pattern(value);
    std::vector<int64_t> lat, lag;
    lat.reserve(size_t(measured) * size_t(state.max_iterations));
    lag.reserve(size_t(measured) * size_t(state.max_iterations));
    uint64_t seq = 0;
    for (auto _ : state) {
        const uint64_t total = warm + measured;
        /* The thread is handed the consumer; this thread does not touch it until join(). */
        std::thread consumer(consume_latency, c, consumer_cpu, seq, warm, total, &lat);
        run_schedule(
            bench::now_ns() + 1000000, total, warm,
            [&](uint64_t i, int64_t due) {
                put_u64(value, seq + i);
                put_u64(value + kSchedAt, uint64_t(due));
                put_u64(value + kSeqTail, seq + i);
                while ((rc = sb_publish(p, "latency", nullptr, 0, value, kValueBytes)) ==
                       -EAGAIN)
                    bench::relax();
                if (rc)
                    bench::fail("sb_publish", 0, (unsigned long long)-rc);
            },
            &lag);
        seq += total;
        consumer.join();
    }
    sb_producer_close(p);
    sb_consumer_close(c);
    rc = sb_bus_close(bus);
    if (rc)
        bench::fail("sb_bus_close", 0, (unsigned long long)-rc);

    if (lat.size() != size_t(measured) * size_t(state.iterations()))
        bench::fail("latency samples", measured * uint64_t(state.iterations()), lat.size());
    report_percentiles(state, "", lat);
    std::sort(lag.begin(), lag.end());
    state.counters["send_lag_p99_ns"] = double(percentile(lag, 0.99));
    state.counters["send_lag_max_ns"] = lag.empty() ? 0.0 : double(lag.back());
    state.SetLabel(std::to_string(measured) + " events at 10k/s, consumer cpu " +
                   std::to_string(consumer_cpu) + ", producer cpu " + std::to_string(cpus.b) +
                   ", shard 0 cpu " + std::to_string(cpus.a) +
                   (cpus.shared ? " (1 CPU allowed)" : ""));
}

void BM_bus_publish_poll_latency_hot(benchmark::State &state)
{
    const uint64_t warm = warm_events(), measured = measured_events();
    const bench::cpu_pair cpus = bench::pick_cpu_pair();
    std::string err;
    struct sb_bus *bus = open_bus(cpus, 1000000, "latency", &err, 1);
    if (!bus) {
        state.SkipWithError(err.c_str());
        return;
    }
    struct sb_consumer *c = nullptr;
    int rc = sb_subscribe(bus, "latency", SB_OFFSET_END, &c);
    if (rc)
        bench::fail("sb_subscribe", 0, (unsigned long long)-rc);
    bench::scoped_pin pin(cpus.b);
    scoped_timer_slack slack;
    struct sb_producer *p = nullptr;
    rc = sb_producer_open(bus, &p);
    if (rc)
        bench::fail("sb_producer_open", 0, (unsigned long long)-rc);
    unsigned char value[kValueBytes];
    fill_pattern(value);
    std::vector<int64_t> lat, lat_call, lag;
    lat.reserve(size_t(measured) * size_t(state.max_iterations));
    lat_call.reserve(size_t(measured) * size_t(state.max_iterations));
    lag.reserve(size_t(measured) * size_t(state.max_iterations));
    uint64_t seq = 0;
    struct sb_event ev;
    for (auto _ : state) {
        const uint64_t total = warm + measured;
        run_schedule(
            bench::now_ns() + 1000000, total, warm,
            [&](uint64_t i, int64_t due) {
                put_u64(value, seq + i);
                put_u64(value + kSchedAt, uint64_t(due));
                put_u64(value + kSeqTail, seq + i);
                const int64_t call = bench::now_ns();
                while ((rc = sb_publish(p, "latency", nullptr, 0, value, kValueBytes)) ==
                       -EAGAIN)
                    bench::relax();
                if (rc)
                    bench::fail("sb_publish", 0, (unsigned long long)-rc);
                /* The clock only every 4096 empty polls (for the 10 s limit): a read per poll
                 * would add its own cost to the interval measured. */
                for (uint64_t polls = 1; (rc = sb_poll(c, &ev, 1, 0)) == 0; polls++) {
                    if (polls % 4096 == 0 && bench::now_ns() - call > int64_t(10) * 1000000000)
                        bench::fail("latency hot: event missing after 10 s", seq + i, 0);
                }
                const int64_t now = bench::now_ns();
                if (rc != 1)
                    bench::fail("sb_poll", 1, (unsigned long long)rc);
                check_event(&ev, seq + i, "hot consumer: event sequence");
                if (i >= warm) {
                    lat.push_back(now - due);
                    lat_call.push_back(now - call);
                }
            },
            &lag);
        seq += total;
    }
    sb_producer_close(p);
    sb_consumer_close(c);
    rc = sb_bus_close(bus);
    if (rc)
        bench::fail("sb_bus_close", 0, (unsigned long long)-rc);
    if (lat.size() != size_t(measured) * size_t(state.iterations()))
        bench::fail("latency samples", measured * uint64_t(state.iterations()), lat.size());
    report_percentiles(state, "", lat);
    report_percentiles(state, "call_", lat_call);
    state.SetLabel(std::to_string(measured) + " events at 10k/s, 1 shard on cpu " +
                   std::to_string(cpus.a) + " spinning, publisher+poller on cpu " +
                   std::to_string(cpus.b));
}

/*
 * The same schedule with no bus, in the same run: two threads, one on each CPU the bus uses,
 * wake at every due time; an instant's lateness is the larger of the two (the bus needs both
 * CPUs: a stall of either delays an event). Latency percentiles of the bus near these figures
 * are the machine's (timer wake-ups, a vCPU the host took away), not the bus's.
 */
void BM_schedule_baseline(benchmark::State &state)
{
    const uint64_t warm = warm_events(), measured = measured_events();
    const bench::cpu_pair cpus = bench::pick_cpu_pair();
    bench::scoped_pin pin(cpus.b);
    scoped_timer_slack slack;
    std::vector<int64_t> lag_a, lag_b, lag;
    lag_a.reserve(size_t(measured));
    lag_b.reserve(size_t(measured));
    lag.reserve(size_t(measured) * size_t(state.max_iterations));
    uint64_t sent = 0;
    for (auto _ : state) {
        lag_a.clear();
        lag_b.clear();
        const int64_t t0 = bench::now_ns() + 2000000;
        std::thread other([&lag_a, t0, warm, measured, cpu = cpus.a] {
            bench::pin_self(cpu);
            scoped_timer_slack other_slack;
            run_schedule(t0, warm + measured, warm, [](uint64_t, int64_t) {}, &lag_a);
        });
        run_schedule(
            t0, warm + measured, warm, [&](uint64_t, int64_t) { benchmark::DoNotOptimize(++sent); },
            &lag_b);
        other.join();
        for (size_t i = 0; i < lag_b.size() && i < lag_a.size(); i++)
            lag.push_back(std::max(lag_a[i], lag_b[i]));
    }
    if (lag.size() != size_t(measured) * size_t(state.iterations()))
        bench::fail("baseline samples", measured * uint64_t(state.iterations()), lag.size());
    report_percentiles(state, "", lag);
    state.SetLabel(std::to_string(measured) + " wake-ups at 10k/s, no bus, worse of cpus " +
                   std::to_string(cpus.a) + " and " + std::to_string(cpus.b));
}

BENCHMARK(BM_bus_publish_handler)->UseRealTime()->Unit(benchmark::kMillisecond);
/* One iteration = one fixed-rate session; repetitions give the spread. */
BENCHMARK(BM_bus_publish_poll_latency)
    ->ArgName("consumer_cpu")
    ->Arg(1)
    ->Arg(0)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_bus_publish_poll_latency_hot)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_schedule_baseline)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
