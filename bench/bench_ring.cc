/*
 * bench_ring.cc - SPSC ring throughput: the shardbus ring (core/ring.h) against
 * boost::lockfree::spsc_queue and Concurrency Kit's ck_ring, on the same machine in the same run.
 *
 * How: two threads, the benchmark thread as producer pinned to the first allowed CPU (CPU 0) and
 * a consumer thread pinned to the second (CPU 1); both only share a CPU when the affinity mask
 * allows one (the label then says so). Each benchmark iteration moves a fixed batch of N items
 * (1 << 20; 1 << 12 with SB_BENCH_SMOKE=1) producer -> consumer and ends only when the consumer
 * has taken and checked the last one, so an iteration's time is the whole transfer, not just the
 * producer's share. Items carry consecutive sequence numbers and every consumer checks each one
 * (abort() on a mismatch). One untimed warm-up transfer precedes the timed ones (caches, page
 * faults, thread start). Reported: items/s (benchmark::Counter::kIsRate over real time).
 *
 * Capacities: Boost holds capacity<65536> (65535 usable slots of 8 bytes = 512 KiB) and ck_ring
 * 65536 pointer slots (65535 usable, 512 KiB). A shardbus ring record is an 8-byte header plus
 * the payload padded to 8, so an 8-byte item takes 16 bytes: the shardbus ring gets 1 MiB of data
 * so that it, too, holds 65536 items in flight - equal item counts, which is what decides how far
 * the producer can run ahead; its bytes in flight are twice the others'. The 100-byte records
 * (112 ring bytes each) use the same 1 MiB ring, about 9362 records.
 *
 * The *_own variants run the same loops with each thread on its own handle (a local variable,
 * as a thread that attaches its side of the ring keeps it) rather than on the handle inside the
 * shared heap object: the shared indexes are the same, but the compiler keeps the private
 * positions in registers.
 *
 * BM_sb_ring_u64_one / _batch256 use the ring's copy-in/copy-out calls (sb_ring_write_n,
 * sb_ring_read_n), the counterpart of Boost's push/pop: they keep the ring positions in
 * registers across the copies. The *_claim variants use zero-copy claim/commit and
 * peek/advance/release on the handles in the heap: each write into claimed memory may alias the
 * handle, so the compiler re-loads and re-stores its fields per item. One at a time, those few
 * extra instructions decide whether the consumer catches up with the producer and then pays a
 * cross-core miss on `tail` for every item; the gap between the two shows it.
 *
 * BM_boost_spsc_16B_batch256 is an extra baseline: Boost batched with 16-byte items (the bytes a
 * shardbus record of 8 payload bytes occupies), separating the cost of the record header's bytes
 * from the cost of the ring's code.
 *
 * BM_cacheline_roundtrip is a limit of the machine, not a ring: two threads pinned as above
 * ping-pong one atomic word on its own cache line (the benchmark thread writes an odd value, the
 * other answers with the next even one), so each round trip moves the line to the other core
 * and back. Reported: ns_per_roundtrip (the timed round trips' wall time over their count); the
 * answering thread counts its answers and the benchmark aborts unless it answered every ping.
 *
 * Spinning: a side that finds its ring full/empty executes one PAUSE and retries, the same for
 * every ring (bench_relax() in bench_rings.h).
 */
#include <benchmark/benchmark.h>
#include <boost/lockfree/spsc_queue.hpp>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "bench_rings.h"
#include "bench_util.h"

namespace {

constexpr uint64_t kSbRingBytes = uint64_t(1) << 20; /* 65536 records of 8 payload bytes */
constexpr unsigned kSlots = 65536;                   /* Boost and ck_ring slots */
constexpr unsigned kBatch = 256;
constexpr uint64_t kStop = UINT64_MAX;

using boost_queue = boost::lockfree::spsc_queue<uint64_t, boost::lockfree::capacity<kSlots>>;

uint64_t items_per_iteration()
{
    return bench::pick(uint64_t(1) << 20, uint64_t(1) << 12);
}

/* The words the benchmark thread and the consumer thread hand each other, each on its own pair
 * of cache lines so that they do not disturb each other or the ring under test. */
struct control {
    alignas(128) std::atomic<uint64_t> target{0}; /* producer: consume up to this sequence */
    alignas(128) std::atomic<uint64_t> done{0};   /* consumer: everything below is consumed */
    alignas(128) std::atomic<bool> ready{false};  /* consumer: pinned and running */
    bool consumer_pinned = false;                 /* written before ready, read after it */
};

/*
 * run_pair - the harness: @produce(first, n) on this thread, @consume(first, n) on a pinned
 * consumer thread, N items per iteration, completion awaited inside the timed region.
 */
template <class Produce, class Consume>
void run_pair(benchmark::State &state, Produce produce, Consume consume)
{
    const uint64_t n = items_per_iteration();
    const bench::cpu_pair cpus = bench::pick_cpu_pair();
    bench::scoped_pin pin(cpus.a);
    control ctl;

    std::thread consumer([&ctl, &consume, cpu = cpus.b] {
        ctl.consumer_pinned = bench::pin_self(cpu) == 0;
        /* Release pairs with the acquire load of ready below: consumer_pinned is visible. */
        ctl.ready.store(true, std::memory_order_release);
        uint64_t consumed = 0;
        for (;;) {
            /* Acquire pairs with the release stores of target in transfer() / after the loop. */
            const uint64_t target = ctl.target.load(std::memory_order_acquire);
            if (target == kStop)
                break;
            if (target > consumed) {
                consume(consumed, target - consumed);
                consumed = target;
                /* Release pairs with transfer()'s acquire load of done: every check the
                 * consumer made happens before the producer ends the iteration. */
                ctl.done.store(consumed, std::memory_order_release);
            } else {
                bench_relax();
            }
        }
    });
    /* Acquire pairs with the consumer's release store of ready. */
    while (!ctl.ready.load(std::memory_order_acquire))
        bench_relax();

    uint64_t seq = 0;
    auto transfer = [&] {
        /* Release pairs with the consumer's acquire load of target (a plain announcement: the
         * items themselves are ordered by the ring under test). */
        ctl.target.store(seq + n, std::memory_order_release);
        produce(seq, n);
        seq += n;
        /* Acquire pairs with the consumer's release store of done. */
        while (ctl.done.load(std::memory_order_acquire) < seq)
            bench_relax();
    };
    transfer(); /* warm-up, untimed */
    for (auto _ : state)
        transfer();

    /* Release pairs with the consumer's acquire load of target: it leaves its loop. */
    ctl.target.store(kStop, std::memory_order_release);
    consumer.join();

    const uint64_t timed_items = seq - n;
    if (timed_items != uint64_t(state.iterations()) * n)
        bench_fail("harness: items moved", uint64_t(state.iterations()) * n, timed_items);
    state.counters["items/s"] =
        benchmark::Counter(double(timed_items), benchmark::Counter::kIsRate);
    std::string label;
    if (cpus.shared)
        label = "1 CPU allowed: producer and consumer share it";
    else if (!pin.ok() || !ctl.consumer_pinned)
        label = "pinning failed: threads not pinned";
    else
        label = "cpus " + std::to_string(cpus.a) + "->" + std::to_string(cpus.b);
    state.SetLabel(label);
}

/* --- shardbus ring --- */

void sb_ring_u64(benchmark::State &state, unsigned batch, bool copy_api, bool own_handle = false)
{
    struct bench_sb_ring *r = bench_sb_ring_new(kSbRingBytes);
    if (!r) {
        state.SkipWithError("bench_sb_ring_new failed");
        return;
    }
    run_pair(
        state,
        [&](uint64_t first, uint64_t n) {
            bench_sb_produce_u64(r, first, n, batch, copy_api, own_handle);
        },
        [&](uint64_t first, uint64_t n) {
            bench_sb_consume_u64(r, first, n, batch, copy_api, own_handle);
        });
    bench_sb_ring_free(r);
}

/* Copy-in/copy-out (sb_ring_write / sb_ring_read_n): the counterpart of Boost's push/pop. */
void BM_sb_ring_u64_one(benchmark::State &state)
{
    sb_ring_u64(state, 1, true);
}

void BM_sb_ring_u64_batch256(benchmark::State &state)
{
    sb_ring_u64(state, kBatch, true);
}

/* Each thread on its own handle (the use the split handle is designed for). */
void BM_sb_ring_u64_claim_one_own(benchmark::State &state)
{
    sb_ring_u64(state, 1, false, true);
}

void BM_sb_ring_u64_one_own(benchmark::State &state)
{
    sb_ring_u64(state, 1, true, true);
}

void BM_sb_ring_u64_claim_batch256_own(benchmark::State &state)
{
    sb_ring_u64(state, kBatch, false, true);
}

/* A fresh shardbus ring, @produce(ring, first, n) and @consume(ring, first, n) run as a pair. */
template <class Produce, class Consume>
void sb_ring_pair(benchmark::State &state, Produce produce, Consume consume)
{
    struct bench_sb_ring *r = bench_sb_ring_new(kSbRingBytes);
    if (!r) {
        state.SkipWithError("bench_sb_ring_new failed");
        return;
    }
    run_pair(
        state, [&](uint64_t first, uint64_t n) { produce(r, first, n); },
        [&](uint64_t first, uint64_t n) { consume(r, first, n); });
    bench_sb_ring_free(r);
}

/* Batches as records: 256 items in one record, checked in place (zero-copy peek). */
void BM_sb_ring_u64_batchrec256(benchmark::State &state)
{
    sb_ring_pair(
        state,
        [](bench_sb_ring *r, uint64_t first, uint64_t n) {
            bench_sb_produce_u64_batchrec(r, first, n, kBatch);
        },
        [](bench_sb_ring *r, uint64_t first, uint64_t n) {
            bench_sb_consume_u64_batchrec(r, first, n);
        });
}

/* The item calls: batches of 256 items, each batch one record (sb_ring_write_items), copied
 * out up to 256 at a time (sb_ring_read_items): Boost's push(array, 256) / pop(array, 256)
 * for a ring of records. */
void BM_sb_ring_u64_items256(benchmark::State &state)
{
    sb_ring_pair(
        state,
        [](bench_sb_ring *r, uint64_t first, uint64_t n) {
            bench_sb_produce_u64_items(r, first, n, kBatch);
        },
        [](bench_sb_ring *r, uint64_t first, uint64_t n) {
            bench_sb_consume_u64_items(r, first, n, kBatch);
        });
}

/* Zero-copy claim/commit on the heap handle. */
void BM_sb_ring_u64_claim_one(benchmark::State &state)
{
    sb_ring_u64(state, 1, false);
}

void BM_sb_ring_u64_claim_batch256(benchmark::State &state)
{
    sb_ring_u64(state, kBatch, false);
}

void sb_ring_rec100(benchmark::State &state, unsigned batch)
{
    struct bench_sb_ring *r = bench_sb_ring_new(kSbRingBytes);
    if (!r) {
        state.SkipWithError("bench_sb_ring_new failed");
        return;
    }
    run_pair(
        state, [&](uint64_t first, uint64_t n) { bench_sb_produce_rec(r, first, n, batch); },
        [&](uint64_t first, uint64_t n) { bench_sb_consume_rec(r, first, n, batch); });
    state.counters["bytes/s"] = benchmark::Counter(
        double(uint64_t(state.iterations()) * items_per_iteration() * BENCH_REC_BYTES),
        benchmark::Counter::kIsRate, benchmark::Counter::kIs1024);
    bench_sb_ring_free(r);
}

void BM_sb_ring_rec100_one(benchmark::State &state)
{
    sb_ring_rec100(state, 1);
}

void BM_sb_ring_rec100_batch256(benchmark::State &state)
{
    sb_ring_rec100(state, kBatch);
}

/* --- boost::lockfree::spsc_queue --- */

void BM_boost_spsc_u64_one(benchmark::State &state)
{
    auto q = std::make_unique<boost_queue>();
    run_pair(
        state,
        [&](uint64_t first, uint64_t n) {
            for (uint64_t s = first; s < first + n; s++)
                while (!q->push(s))
                    bench_relax();
        },
        [&](uint64_t first, uint64_t n) {
            for (uint64_t s = first; s < first + n; s++) {
                uint64_t v;
                while (!q->pop(v))
                    bench_relax();
                if (v != s)
                    bench_fail("boost spsc_queue: sequence", s, v);
            }
        });
}

/* A 16-byte item: as many bytes per item as a shardbus record of 8 payload bytes. */
struct item16 {
    uint64_t seq;
    uint64_t check; /* ~seq */
};

uint64_t item_seq(uint64_t v)
{
    return v;
}

uint64_t item_seq(const item16 &v)
{
    return v.check == ~v.seq ? v.seq : ~uint64_t(0);
}

void item_set(uint64_t *v, uint64_t seq)
{
    *v = seq;
}

void item_set(item16 *v, uint64_t seq)
{
    *v = item16{seq, ~seq};
}

/* push(array, n) / pop(array, n) with up to kBatch items per call; @in_place: the consumer
 * checks the items where they lie instead (consume_all(functor), Boost's zero-copy read, the
 * counterpart of peeking a record of items). */
template <class T> void boost_batch(benchmark::State &state, bool in_place = false)
{
    using queue = boost::lockfree::spsc_queue<T, boost::lockfree::capacity<kSlots>>;
    auto q = std::make_unique<queue>();
    run_pair(
        state,
        [&](uint64_t first, uint64_t n) {
            T buf[kBatch];
            const uint64_t end = first + n;
            for (uint64_t s = first; s < end;) {
                const size_t k = size_t(std::min<uint64_t>(kBatch, end - s));
                for (size_t i = 0; i < k; i++)
                    item_set(&buf[i], s + i);
                for (size_t off = 0; off < k;) {
                    const size_t m = q->push(buf + off, k - off);
                    if (m == 0)
                        bench_relax();
                    off += m;
                }
                s += k;
            }
        },
        [&](uint64_t first, uint64_t n) {
            T buf[kBatch];
            const uint64_t end = first + n;
            if (in_place) {
                for (uint64_t s = first; s < end;) {
                    const size_t m = q->consume_all([&s](const T &v) {
                        if (item_seq(v) != s)
                            bench_fail("boost spsc_queue consume_all: sequence", s, item_seq(v));
                        s++;
                    });
                    if (m == 0)
                        bench_relax();
                }
                return;
            }
            for (uint64_t s = first; s < end;) {
                const size_t m = q->pop(buf, size_t(std::min<uint64_t>(kBatch, end - s)));
                if (m == 0)
                    bench_relax();
                for (size_t i = 0; i < m; i++)
                    if (item_seq(buf[i]) != s + i)
                        bench_fail("boost spsc_queue batch: sequence", s + i, item_seq(buf[i]));
                s += m;
            }
        });
}

void BM_boost_spsc_u64_batch256(benchmark::State &state)
{
    boost_batch<uint64_t>(state);
}

void BM_boost_spsc_u64_batch256_in_place(benchmark::State &state)
{
    boost_batch<uint64_t>(state, true);
}

/* Not a like-for-like API comparison but a bytes one: 16 bytes per item, 1 MiB of slots, as the
 * shardbus ring moves for an 8-byte payload. */
void BM_boost_spsc_16B_batch256(benchmark::State &state)
{
    boost_batch<item16>(state);
}

/* --- Concurrency Kit ck_ring --- */

/* ck_ring orders its slots with ck_pr fences (inline assembly) that ThreadSanitizer cannot see,
 * so a TSan build would report false races in ck_ring.h: it leaves this baseline out. */
#if defined(__SANITIZE_THREAD__)
#define SB_BENCH_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define SB_BENCH_TSAN 1
#endif
#endif

[[maybe_unused]] void BM_ck_ring_u64_one(benchmark::State &state)
{
    struct bench_ck_ring *r = bench_ck_ring_new(kSlots);
    if (!r) {
        state.SkipWithError("bench_ck_ring_new failed");
        return;
    }
    run_pair(
        state, [&](uint64_t first, uint64_t n) { bench_ck_produce(r, first, n); },
        [&](uint64_t first, uint64_t n) { bench_ck_consume(r, first, n); });
    bench_ck_ring_free(r);
}

/* --- the machine's limit: one cache line between two pinned cores --- */

/* The ping-pong word, alone on its pair of cache lines, and the answering thread's flags. */
struct pingpong {
    alignas(128) std::atomic<uint64_t> word{0}; /* odd: a ping; the next even value: its pong */
    alignas(128) std::atomic<bool> ready{false}; /* responder: pinned and running */
    bool responder_pinned = false;               /* written before ready, read after it */
    uint64_t answered = 0;                       /* written by the responder, read after join */
};

/*
 * BM_cacheline_roundtrip - the machine's core-to-core limit: N round trips per iteration
 * (1 << 16; 1 << 8 in smoke mode) of one word between the benchmark thread (first allowed CPU)
 * and a responder (second allowed CPU); counter ns_per_roundtrip; abort() unless the responder
 * answered every ping.
 */
void BM_cacheline_roundtrip(benchmark::State &state)
{
    const uint64_t rounds = bench::pick(uint64_t(1) << 16, uint64_t(1) << 8);
    const bench::cpu_pair cpus = bench::pick_cpu_pair();
    bench::scoped_pin pin(cpus.a);
    pingpong pp;

    std::thread responder([&pp, cpu = cpus.b] {
        pp.responder_pinned = bench::pin_self(cpu) == 0;
        /* Release pairs with the acquire load of ready below: responder_pinned is visible. */
        pp.ready.store(true, std::memory_order_release);
        uint64_t answered = 0;
        for (;;) {
            /* Acquire pairs with the pinger's release store of a ping (or of kStop). */
            const uint64_t v = pp.word.load(std::memory_order_acquire);
            if (v == kStop)
                break;
            if (v & 1) {
                answered++;
                /* Release pairs with the pinger's acquire load waiting for this pong. */
                pp.word.store(v + 1, std::memory_order_release);
            } else {
                bench_relax();
            }
        }
        pp.answered = answered; /* read by the benchmark thread after join() */
    });
    /* Acquire pairs with the responder's release store of ready. */
    while (!pp.ready.load(std::memory_order_acquire))
        bench_relax();

    uint64_t v = 0, pings = 0;
    auto ping_pong = [&](uint64_t n) {
        for (uint64_t i = 0; i < n; i++) {
            /* Release pairs with the responder's acquire load. */
            pp.word.store(v + 1, std::memory_order_release);
            /* Acquire pairs with the responder's release store of the pong. */
            while (pp.word.load(std::memory_order_acquire) != v + 2)
                bench_relax();
            v += 2;
        }
        pings += n;
    };
    ping_pong(rounds); /* warm-up, untimed */
    int64_t timed_ns = 0;
    for (auto _ : state) {
        const int64_t t0 = bench::now_ns();
        ping_pong(rounds);
        timed_ns += bench::now_ns() - t0;
    }
    /* Release pairs with the responder's acquire load: it leaves its loop. */
    pp.word.store(kStop, std::memory_order_release);
    responder.join();

    if (pp.answered != pings)
        bench_fail("cache-line round trips answered", pings, pp.answered);
    const uint64_t timed = pings - rounds;
    if (timed != uint64_t(state.iterations()) * rounds)
        bench_fail("harness: round trips timed", uint64_t(state.iterations()) * rounds, timed);
    state.counters["ns_per_roundtrip"] = benchmark::Counter(timed ? double(timed_ns) / double(timed) : 0);
    std::string label;
    if (cpus.shared)
        label = "1 CPU allowed: both threads share it";
    else if (!pin.ok() || !pp.responder_pinned)
        label = "pinning failed: threads not pinned";
    else
        label = "cpus " + std::to_string(cpus.a) + "<->" + std::to_string(cpus.b);
    state.SetLabel(label);
}

/* Every variant: real time (the consumer's work is part of it), milliseconds per N items. */
#define SB_RING_BENCH(fn) BENCHMARK(fn)->UseRealTime()->Unit(benchmark::kMillisecond)

SB_RING_BENCH(BM_sb_ring_u64_one);
SB_RING_BENCH(BM_boost_spsc_u64_one);
#ifndef SB_BENCH_TSAN
SB_RING_BENCH(BM_ck_ring_u64_one);
#endif
SB_RING_BENCH(BM_sb_ring_u64_batch256);
SB_RING_BENCH(BM_boost_spsc_u64_batch256);
SB_RING_BENCH(BM_boost_spsc_u64_batch256_in_place);
SB_RING_BENCH(BM_boost_spsc_16B_batch256);
SB_RING_BENCH(BM_sb_ring_u64_batchrec256);
SB_RING_BENCH(BM_sb_ring_u64_items256);
SB_RING_BENCH(BM_sb_ring_u64_claim_one);
SB_RING_BENCH(BM_sb_ring_u64_claim_one_own);
SB_RING_BENCH(BM_sb_ring_u64_one_own);
SB_RING_BENCH(BM_sb_ring_u64_claim_batch256_own);
SB_RING_BENCH(BM_sb_ring_u64_claim_batch256);
SB_RING_BENCH(BM_sb_ring_rec100_one);
SB_RING_BENCH(BM_sb_ring_rec100_batch256);
BENCHMARK(BM_cacheline_roundtrip)->UseRealTime()->Unit(benchmark::kMicrosecond);

} // namespace

BENCHMARK_MAIN();
