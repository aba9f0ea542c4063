/*
 * bench_log.cc - the durable log (sb_config.data_dir) through the public API, each figure beside
 * a raw baseline of the same disk measured in the same run.
 *
 * Every run uses a fresh data directory under /tmp (or <build>/tmp when /tmp is a tmpfs: the
 * log must live on the real disk), removed afterwards. The bus has 1 shard pinned to the first
 * allowed CPU (CPU 0); the producer or consumer (the benchmark thread) is pinned to the second
 * (CPU 1). One topic of 1 partition. Values are 100 bytes carrying their sequence number in the
 * first and last 8 bytes; every benchmark checks what it moved and abort()s on a mismatch.
 * MB = 10^6 bytes. "payload" = value bytes; "disk" = bytes of the .log segment files.
 *
 * BM_log_append/durability:{0,1,2}/direct_io:{1,0} - append throughput, NONE / BATCH / INTERVAL
 *   (100 ms), with sb_config.direct_io 1 (O_DIRECT writes of whole blocks staged by the shard)
 *   and 0 (through the page cache); the default (-1) is 1 for BATCH and INTERVAL, 0 for NONE.
 *   Publishes N events (2M; 20K with SB_BENCH_SMOKE=1), retrying on -EAGAIN (64 spins, then
 *   yielding the CPU each time), then sb_producer_flush() must return 0: the time covers
 *   appending, writing (and for BATCH syncing) every event. Default write_buffer_bytes (16
 *   MiB) and segment_bytes (64 MiB). Afterwards (untimed) the producer's stats must say N
 *   acknowledged and 0 failed, and a consumer subscribed from SB_OFFSET_BEGINNING on the same
 *   bus must read exactly N events, in order, each with its sequence number and offset.
 *   Reported: events/s, payload MB/s, disk MB/s and the .log bytes per event. The .log size is kept
 * for BM_raw_write. Also (here and in the raw writes) cpu_cores and cpu_s/GB: the CPU time of every
 * thread of the process over the timed region (report_cpu()), which bounds what N cores can do.
 *
 * BM_raw_write/sync:{0,1} - the baseline for BM_log_append: the same number of bytes the bus
 *   wrote to its .log files (from the latest BM_log_append run; measured by an untimed NONE bus
 *   run first if none ran yet) written sequentially to one file in a fresh directory on the
 *   same file system, as the bus writes: buffered, into space preallocated with
 *   fallocate(KEEP_SIZE), through io_uring with registered buffers, 1 MiB blocks, queue depth
 *   4. sync:0 = no sync (compare NONE and INTERVAL); sync:1 = one fdatasync at the end (compare
 *   BATCH). Checked: every write completes in full, the file size is the byte count.
 *
 * BM_raw_write_direct - the device's own write speed: the same, with O_DIRECT (the byte count
 *   rounded up to 4 KiB), no sync. A buffered write without sync only copies into the page
 *   cache, which a VM does at memory speed; this one reaches the (virtual) device.
 *
 * BM_log_ack_latency - acknowledgement latency under BATCH at a fixed rate (argument rate:
 *   20,000 events/s, and 100,000, the rate issue 3 gives as its example): 0.1 s of unmeasured
 *   warm-up events, then 3 s of measured ones (50 + 396 in smoke mode). Event i is due at
 *   t0 + i * (1 s / rate); its ack latency = the time the producer saw it counted in
 *   sb_producer_get_stats().acknowledged - its due time (measuring from the schedule corrects
 *   coordinated omission). The producer polls the stats right after each publish and while it
 *   waits for the next due time (it sleeps until 20 us before, then polls with sched_yield()
 *   between polls, leaving the CPU to the kernel's io_uring workers), so an ack is seen
 *   at most about one interval (50 or 10 us) late: the figures are an upper bound. A single
 *   partition acknowledges in publish order. Checked: no failures, all acknowledged, flush
 *   returns 0, and the log reads back in order. Reported: p50/p99/p99.9/max in us, and the
 *   producer's own lateness (send_lag_*). The fdatasync baseline is measured inside the same
 *   run, interleaved with the events: the measured events are sent in kAckSlices slices of
 *   0.5 s, and before the first slice, between every two and after the last (the bus idle,
 *   every event acknowledged, untimed) come 200 of BM_fdatasync_4k's pairs in the data
 *   directory (1,400 in all): sync_p50_us .. sync_max_us and p99/sync_p99. So the ratio compares
 *   the bus with the disk of the same stretch of time: the disk of this shared VM changes by
 *   30x within seconds, and syncs only before and after the whole 3 s (what this benchmark did
 *   until 2026-11-27) could miss a slow stretch in between. And during the slices themselves
 *   (sync_probe): a thread appends 4 KiB + fdatasync to a file of its own every 10 ms,
 *   during_sync_p50_us .. and p99/during_sync_p99: syncs at the same moments as the events,
 *   which share the ext4 journal, the disk and the CPUs with the bus, so they are no baseline,
 *   but show what the bus's own load does to a sync (its 100 syncs a second add a little to
 *   the bus's journal commits). Argument idle_spin_us: the bus's sb_config.idle_spin_us, 50
 *   (the default) and 0 (a shard that parks at once, leaving the CPUs to the kernel threads
 *   that carry out the writes and syncs); direct_io: 1 (the default under BATCH) or 0
 *   (through the page cache).
 *
 * BM_fdatasync_4k - the disk's own sync latency, and what it allows an acknowledgement: 40,000
 *   times (about 2.5 s; 50 in smoke mode) pwrite 4 KiB at the end of a file (preallocated with
 *   fallocate(KEEP_SIZE) like a segment) + fdatasync, sequential, one thread on CPU 1; latency
 *   of each write+sync pair. Reported: p50/p99/p99.9/max in us. And a model, not a
 *   measurement (in_order_log_p99): the ack latency p99 of an ideal log that acknowledges in
 *   order (as any log must that recovers to a prefix) and takes exactly these syncs, in the
 *   order measured, one at a time, for events at 20,000 and 100,000 a second:
 *   model_p99_us_20k, model_p99_us_100k and their ratios to this run's p99. On a disk whose
 *   slow syncs come in stretches, every event that arrives during one waits for it, so such
 *   a log's ack p99 lies near the syncs' p99.9, not their p99.
 *
 * BM_log_replay - replay read throughput: N events (2M, ~230 MB of log; 20K in smoke mode) are
 *   written with BATCH durability and the bus is closed (untimed); the bus is reopened with
 *   partition_memory_bytes = 64 KiB so the events come from the disk cursor, not from memory,
 *   and the time covers sb_subscribe(SB_OFFSET_BEGINNING) + sb_poll() until all N are read,
 *   each checked (sequence, offset). Caches are not dropped (we cannot do that reliably on a
 *   shared machine): the files were just written and are almost certainly in the page cache,
 *   so this measures the bus's read path, not the disk. Baseline in the same run, right after:
 *   a raw sequential read of the same .log files with pread in 1 MiB blocks (raw_read_MB/s),
 *   and the ratio of the bus's disk MB/s to it (replay/raw).
 *
 * Run with --benchmark_enable_random_interleaving=true on a noisy machine so that the bus and
 * its baselines share the same stretches of time, and compare medians.
 */
#include <benchmark/benchmark.h>
#include <shardbus.h>

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <liburing.h>
#include <linux/magic.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bench_util.h"

namespace {

constexpr size_t kValueBytes = 100;
constexpr size_t kSeqTail = kValueBytes - sizeof(uint64_t); /* second copy of the sequence */
constexpr size_t kBlock = size_t(1) << 20;                  /* raw I/O block: 1 MiB */
constexpr unsigned kQueueDepth = 4;                         /* raw writes in flight */
constexpr const char *kTopic = "log";
constexpr int64_t kStallNs = int64_t(30) * 1000000000; /* no progress this long = a hang */
constexpr int kFlushTimeoutMs = 120000;

[[noreturn]] void fail_errno(const char *what, int err)
{
    bench::fail(what, 0, (unsigned long long)(err < 0 ? -err : err));
}

uint64_t get_u64(const void *src, size_t at)
{
    uint64_t v;
    std::memcpy(&v, static_cast<const unsigned char *>(src) + at, sizeof(v));
    return v;
}

void put_u64(unsigned char *dst, uint64_t v)
{
    std::memcpy(dst, &v, sizeof(v));
}

/* A 100-byte value: sequence number, a fixed pattern, sequence number again. */
void make_value(unsigned char *v, uint64_t seq)
{
    for (size_t i = 0; i < kValueBytes; i++)
        v[i] = (unsigned char)(i * 7u + 1u);
    put_u64(v, seq);
    put_u64(v + kSeqTail, seq);
}

/* Checks event @ev against sequence number @seq (value and offset); abort()s on a mismatch. */
void check_event(const struct sb_event *ev, uint64_t seq, const char *who)
{
    if (ev->value_len != kValueBytes || !ev->value)
        bench::fail(who, kValueBytes, ev->value_len);
    const uint64_t head = get_u64(ev->value, 0), tail = get_u64(ev->value, kSeqTail);
    if (head != seq || tail != seq)
        bench::fail(who, seq, head != seq ? head : tail);
    if (ev->offset != int64_t(seq)) /* one partition, every event ours: offset = sequence */
        bench::fail(who, seq, (unsigned long long)ev->offset);
}

/* --- temporary directories on the real disk --- */

/* Where the data directories go: /tmp unless it is a tmpfs, else <build dir>/tmp. */
std::string base_dir()
{
    struct statfs fs;
    if (statfs("/tmp", &fs) == 0 && fs.f_type != TMPFS_MAGIC)
        return "/tmp";
    char exe[4096];
    const ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
    if (len <= 0)
        fail_errno("readlink /proc/self/exe", errno);
    std::string dir(exe, size_t(len));
    dir = dir.substr(0, dir.rfind('/')); /* <build>/bench */
    dir = dir.substr(0, dir.rfind('/')) + "/tmp";
    if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST)
        fail_errno("mkdir <build>/tmp", errno);
    return dir;
}

int remove_entry(const char *path, const struct stat *, int, struct FTW *)
{
    return remove(path);
}

/* A fresh directory, removed with everything in it on destruction. */
class temp_dir {
public:
    temp_dir()
    {
        std::string tmpl = base_dir() + "/sb-logbench-XXXXXX";
        std::vector<char> buf(tmpl.begin(), tmpl.end());
        buf.push_back('\0');
        if (!mkdtemp(buf.data()))
            fail_errno("mkdtemp", errno);
        path_ = buf.data();
        bench::drop_page_cache(); /* every benchmark and baseline starts from the same cache */
    }
    ~temp_dir()
    {
        nftw(path_.c_str(), remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        bench::settle_after_delete(); /* untimed: the next benchmark starts on a quiet machine */
    }
    temp_dir(const temp_dir &) = delete;
    temp_dir &operator=(const temp_dir &) = delete;
    const std::string &path() const { return path_; }

private:
    std::string path_;
};

/* The .log segment files of partition 0 of kTopic under @data_dir, oldest first. */
std::vector<std::string> log_files(const std::string &data_dir)
{
    const std::string dir = data_dir + "/" + kTopic + "-0";
    std::vector<std::string> files;
    DIR *d = opendir(dir.c_str());
    if (!d)
        fail_errno("opendir partition folder", errno);
    while (const struct dirent *e = readdir(d)) {
        const size_t len = std::strlen(e->d_name);
        if (len > 4 && std::strcmp(e->d_name + len - 4, ".log") == 0)
            files.push_back(dir + "/" + e->d_name);
    }
    closedir(d);
    std::sort(files.begin(), files.end()); /* zero-padded base offsets sort as numbers */
    return files;
}

uint64_t total_size(const std::vector<std::string> &files)
{
    uint64_t sum = 0;
    for (const std::string &f : files) {
        struct stat st;
        if (stat(f.c_str(), &st) != 0)
            fail_errno("stat segment", errno);
        sum += uint64_t(st.st_size);
    }
    return sum;
}

/* --- the bus --- */

/* A bus of 1 shard on @cpu with its log in @dir, topic kTopic of 1 partition (kept if the log
 * already has it). @partition_memory 0 = the default; @idle_spin_us < 0 = the default. */
struct sb_bus *open_log_bus(const std::string &dir, int cpu, enum sb_durability durability,
                            size_t partition_memory, int idle_spin_us = -1, int direct_io = -1)
{
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = 1;
    const int cpu_list[1] = {cpu};
    if (cpu >= 0)
        cfg.cpus = cpu_list; /* copied by sb_bus_open */
    cfg.data_dir = dir.c_str();
    cfg.durability = durability;
    cfg.fsync_interval_ms = 100;
    if (partition_memory)
        cfg.partition_memory_bytes = partition_memory;
    if (idle_spin_us >= 0)
        cfg.idle_spin_us = unsigned(idle_spin_us);
    cfg.direct_io = direct_io;
    struct sb_bus *bus = nullptr;
    int rc = sb_bus_open(&cfg, &bus);
    if (rc)
        fail_errno("sb_bus_open", rc);
    rc = sb_topic_create(bus, kTopic, 1);
    if (rc && rc != -EEXIST)
        fail_errno("sb_topic_create", rc);
    return bus;
}

void close_bus(struct sb_bus *bus)
{
    const int rc = sb_bus_close(bus);
    if (rc)
        fail_errno("sb_bus_close", rc);
}

/* Publishes one value, retrying on -EAGAIN (spin, then yield: bench::backoff); aborts if the
 * bus takes no event for kStallNs. Returns the number of -EAGAIN retries. */
uint64_t publish_one(struct sb_producer *p, const unsigned char *value)
{
    uint64_t retries = 0;
    int64_t since = 0;
    int rc;
    while ((rc = sb_publish(p, kTopic, nullptr, 0, value, kValueBytes)) == -EAGAIN) {
        bench::backoff(retries);
        if ((++retries & 0xfff) == 0) {
            const int64_t now = bench::now_ns();
            if (!since)
                since = now;
            else if (now - since > kStallNs)
                bench::fail("sb_publish: -EAGAIN for 30 s; sequence", 0, get_u64(value, 0));
        }
    }
    if (rc)
        fail_errno("sb_publish", rc);
    return retries;
}

/* Publishes sequence numbers [first, first + n); returns the -EAGAIN retries. */
uint64_t publish_range(struct sb_producer *p, uint64_t first, uint64_t n)
{
    unsigned char value[kValueBytes];
    make_value(value, 0);
    uint64_t retries = 0;
    for (uint64_t seq = first; seq < first + n; seq++) {
        put_u64(value, seq);
        put_u64(value + kSeqTail, seq);
        retries += publish_one(p, value);
    }
    return retries;
}

void flush_or_fail(struct sb_producer *p)
{
    const int rc = sb_producer_flush(p, kFlushTimeoutMs);
    if (rc)
        fail_errno("sb_producer_flush", rc);
}

/* The producer's stats must say @n published, @n acknowledged, none failed. */
void check_all_acknowledged(struct sb_producer *p, uint64_t n)
{
    struct sb_producer_stats st;
    sb_producer_get_stats(p, &st);
    if (st.failed || st.last_error)
        bench::fail("producer stats: failed events", 0, st.failed);
    if (st.published != n || st.acknowledged != n)
        bench::fail("producer stats: acknowledged", n, st.acknowledged);
}

/* Reads events from @c until @n have arrived, checking each against sequence 0, 1, ...;
 * aborts when no event comes for kStallNs. */
void read_all(struct sb_consumer *c, uint64_t n, const char *who)
{
    struct sb_event evs[256];
    uint64_t got = 0;
    int64_t progress_at = bench::now_ns();
    while (got < n) {
        const int k = sb_poll(c, evs, 256, 100);
        if (k < 0)
            fail_errno("sb_poll", k);
        if (k == 0) {
            if (bench::now_ns() - progress_at > kStallNs)
                bench::fail("sb_poll: no event for 30 s; events read so far", n, got);
            continue;
        }
        progress_at = bench::now_ns();
        for (int i = 0; i < k; i++, got++) {
            if (got == n)
                bench::fail("more events than published", n, got + 1);
            check_event(&evs[i], got, who);
        }
    }
}

/* Subscribes from the beginning and reads back exactly @n events, in order, then checks that
 * no further event comes within 50 ms. */
void verify_log(struct sb_bus *bus, uint64_t n)
{
    struct sb_consumer *c = nullptr;
    const int rc = sb_subscribe(bus, kTopic, SB_OFFSET_BEGINNING, &c);
    if (rc)
        fail_errno("sb_subscribe", rc);
    read_all(c, n, "read back: event sequence");
    struct sb_event extra;
    const int k = sb_poll(c, &extra, 1, 50);
    if (k != 0)
        bench::fail("read back: events after the last one published", 0, (unsigned long long)k);
    sb_consumer_close(c);
}

/* .log bytes of the latest BM_log_append run, for BM_raw_write. Google Benchmark runs every
 * benchmark function on the main thread, one after the other: a plain variable suffices. */
uint64_t g_append_log_bytes = 0;

uint64_t append_events()
{
    return bench::pick(uint64_t(2) << 20, 20000);
}

/* CPU counters of a timed region that wrote @bytes of .log in @wall_s: cpu_cores, the CPUs it
 * kept busy on average (every thread of the process: benchmark, shard, io_uring workers), and
 * cpu_s/GB, the CPU seconds it spent per GB written. On N CPUs no run of the same work can
 * write faster than N / cpu_s/GB GB/s: the bound the machine's core count sets. */
void report_cpu(benchmark::State &state, double cpu_s, double wall_s, uint64_t bytes)
{
    state.counters["cpu_cores"] = wall_s > 0 ? cpu_s / wall_s : 0;
    state.counters["cpu_s/GB"] = bytes ? cpu_s / (double(bytes) / 1e9) : 0;
}

/* --- 1. append throughput --- */

void BM_log_append(benchmark::State &state)
{
    const auto durability = static_cast<enum sb_durability>(state.range(0));
    const int direct_io = int(state.range(1));
    const uint64_t n = append_events();
    const bench::cpu_pair cpus = bench::pick_cpu_pair();
    temp_dir dir;
    struct sb_bus *bus = open_log_bus(dir.path(), cpus.a, durability, 0, -1, direct_io);
    bench::scoped_pin pin(cpus.b);
    struct sb_producer *p = nullptr;
    int rc = sb_producer_open(bus, &p);
    if (rc)
        fail_errno("sb_producer_open", rc);

    uint64_t retries = 0;
    const double cpu0 = bench::process_cpu_s();
    const int64_t t0 = bench::now_ns();
    for (auto _ : state) {
        retries += publish_range(p, 0, n);
        flush_or_fail(p);
    }
    const double cpu_s = bench::process_cpu_s() - cpu0;
    const double wall_s = double(bench::now_ns() - t0) / 1e9;
    check_all_acknowledged(p, n);
    const uint64_t log_bytes = total_size(log_files(dir.path()));
    report_cpu(state, cpu_s, wall_s, log_bytes);
    verify_log(bus, n);
    sb_producer_close(p);
    close_bus(bus);
    g_append_log_bytes = log_bytes;

    state.counters["events/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsRate);
    state.counters["MB/s"] = benchmark::Counter(double(n * kValueBytes) / 1e6,
                                                benchmark::Counter::kIsRate);
    state.counters["disk_MB/s"] =
        benchmark::Counter(double(log_bytes) / 1e6, benchmark::Counter::kIsRate);
    state.counters["log_B/event"] = double(log_bytes) / double(n);
    state.counters["eagain/event"] = double(retries) / double(n);
    state.SetLabel(std::to_string(n) + " events, " + std::to_string(log_bytes) + " B of .log in " +
                   dir.path().substr(0, dir.path().rfind('/')));
}

/* --- 2. raw io_uring sequential write --- */

/* The .log size of an N-event append: from the latest BM_log_append, or an untimed NONE run. */
uint64_t append_log_bytes()
{
    if (g_append_log_bytes)
        return g_append_log_bytes;
    const uint64_t n = append_events();
    const bench::cpu_pair cpus = bench::pick_cpu_pair();
    temp_dir dir;
    struct sb_bus *bus = open_log_bus(dir.path(), cpus.a, SB_DURABILITY_NONE, 0);
    bench::scoped_pin pin(cpus.b);
    struct sb_producer *p = nullptr;
    const int rc = sb_producer_open(bus, &p);
    if (rc)
        fail_errno("sb_producer_open", rc);
    publish_range(p, 0, n);
    flush_or_fail(p);
    check_all_acknowledged(p, n);
    sb_producer_close(p);
    close_bus(bus);
    g_append_log_bytes = total_size(log_files(dir.path()));
    return g_append_log_bytes;
}

/* An io_uring with kQueueDepth registered 1 MiB buffers of a fixed (non-zero) pattern. */
class raw_writer {
public:
    raw_writer()
    {
        const int rc = io_uring_queue_init(2 * kQueueDepth, &ring_, 0);
        if (rc)
            fail_errno("io_uring_queue_init", rc);
        struct iovec iov[kQueueDepth];
        for (unsigned i = 0; i < kQueueDepth; i++) {
            buf_[i] = static_cast<unsigned char *>(std::aligned_alloc(4096, kBlock));
            if (!buf_[i])
                fail_errno("aligned_alloc", ENOMEM);
            for (size_t j = 0; j < kBlock; j++)
                buf_[i][j] = (unsigned char)(j * 7u + i + 1u);
            iov[i] = {buf_[i], kBlock};
        }
        const int reg = io_uring_register_buffers(&ring_, iov, kQueueDepth);
        if (reg)
            fail_errno("io_uring_register_buffers", reg);
    }
    ~raw_writer()
    {
        io_uring_queue_exit(&ring_);
        for (unsigned char *b : buf_)
            std::free(b);
    }
    raw_writer(const raw_writer &) = delete;
    raw_writer &operator=(const raw_writer &) = delete;

    /* Writes @bytes to @fd from offset 0 in kBlock blocks, kQueueDepth in flight. Block k
     * uses buffer k % kQueueDepth: at most kQueueDepth blocks are in flight, so a buffer is
     * free again when its slot comes round (and the buffers are never modified anyway). */
    void write_seq(int fd, uint64_t bytes)
    {
        uint64_t queued = 0, done = 0, block = 0;
        unsigned inflight = 0;
        while (done < bytes) {
            while (inflight < kQueueDepth && queued < bytes) {
                struct io_uring_sqe *sqe = io_uring_get_sqe(&ring_);
                if (!sqe)
                    bench::fail("io_uring_get_sqe", 1, 0);
                const unsigned len = unsigned(std::min<uint64_t>(kBlock, bytes - queued));
                const int slot = int(block++ % kQueueDepth);
                io_uring_prep_write_fixed(sqe, fd, buf_[slot], len, queued, slot);
                io_uring_sqe_set_data64(sqe, len);
                queued += len;
                inflight++;
            }
            const int rc = io_uring_submit_and_wait(&ring_, 1);
            if (rc < 0)
                fail_errno("io_uring_submit_and_wait", rc);
            done += reap(&inflight);
        }
    }

private:
    /* Takes every available completion; a failed or short write aborts. Returns bytes. */
    uint64_t reap(unsigned *inflight)
    {
        uint64_t bytes = 0;
        struct io_uring_cqe *cqe;
        while (io_uring_peek_cqe(&ring_, &cqe) == 0) {
            if (cqe->res < 0)
                fail_errno("raw write", cqe->res);
            if (uint64_t(cqe->res) != io_uring_cqe_get_data64(cqe))
                bench::fail("raw write: short write", io_uring_cqe_get_data64(cqe),
                            (unsigned long long)cqe->res);
            bytes += uint64_t(cqe->res);
            (*inflight)--;
            io_uring_cqe_seen(&ring_, cqe);
        }
        return bytes;
    }

    struct io_uring ring_;
    unsigned char *buf_[kQueueDepth] = {};
};

/* A new file @path, preallocated for @bytes without changing its size (as a segment is);
 * @extra_flags: O_DIRECT or 0. */
int create_prealloc(const std::string &path, uint64_t bytes, int extra_flags = 0)
{
    const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | extra_flags, 0644);
    if (fd < 0)
        fail_errno("open raw file", errno);
    if (fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, off_t(bytes)) != 0 && errno != EOPNOTSUPP)
        fail_errno("fallocate", errno);
    return fd;
}

/* Writes @bytes to a fresh preallocated file opened with @open_flags, once per iteration (and
 * fdatasyncs it when @sync), checks its size and reports MB/s; @what ends the label. */
void run_raw_write(benchmark::State &state, uint64_t bytes, int open_flags, bool sync,
                   const char *what)
{
    const bench::cpu_pair cpus = bench::pick_cpu_pair();
    bench::scoped_pin pin(cpus.b);
    temp_dir dir;
    const int fd = create_prealloc(dir.path() + "/raw.log", bytes, open_flags);
    raw_writer w;
    const double cpu0 = bench::process_cpu_s();
    const int64_t t0 = bench::now_ns();
    for (auto _ : state) {
        w.write_seq(fd, bytes);
        if (sync && fdatasync(fd) != 0)
            fail_errno("fdatasync", errno);
    }
    report_cpu(state, bench::process_cpu_s() - cpu0, double(bench::now_ns() - t0) / 1e9,
               bytes * uint64_t(state.iterations()));
    struct stat st;
    if (fstat(fd, &st) != 0 || uint64_t(st.st_size) != bytes)
        bench::fail("raw file size", bytes, (unsigned long long)st.st_size);
    close(fd);
    state.counters["MB/s"] =
        benchmark::Counter(double(bytes) * double(state.iterations()) / 1e6,
                           benchmark::Counter::kIsRate);
    state.SetLabel(std::to_string(bytes) + " B, 1 MiB blocks, depth " +
                   std::to_string(kQueueDepth) + what);
}

void BM_raw_write(benchmark::State &state)
{
    const bool sync = state.range(0) != 0;
    run_raw_write(state, append_log_bytes(), 0, sync,
                  sync ? ", fdatasync at the end" : ", no sync");
}

/* The device's own write speed, beside the buffered baseline above (which a VM's page cache
 * takes at memory speed): the same byte count rounded up to 4 KiB, O_DIRECT, the same blocks
 * and queue depth, no sync. */
void BM_raw_write_direct(benchmark::State &state)
{
    run_raw_write(state, (append_log_bytes() + 4095) / 4096 * 4096, O_DIRECT, false,
                  ", O_DIRECT, no sync");
}

/* --- 3. acknowledgement latency under BATCH, and the fdatasync baseline --- */

uint64_t percentile(const std::vector<int64_t> &sorted, double q)
{
    if (sorted.empty())
        return 0;
    size_t rank = size_t(q * double(sorted.size()) + 0.999999999);
    rank = std::min(std::max<size_t>(rank, 1), sorted.size());
    return uint64_t(sorted[rank - 1]);
}

/* Sorts @v (ns) and reports p50, p99, p99.9 and max in us as <prefix>p50_us, ... */
void report_percentiles_us(benchmark::State &state, const std::string &prefix,
                           std::vector<int64_t> &v)
{
    std::sort(v.begin(), v.end());
    state.counters[prefix + "p50_us"] = double(percentile(v, 0.50)) / 1e3;
    state.counters[prefix + "p99_us"] = double(percentile(v, 0.99)) / 1e3;
    state.counters[prefix + "p99.9_us"] = double(percentile(v, 0.999)) / 1e3;
    state.counters[prefix + "max_us"] = v.empty() ? 0.0 : double(v.back()) / 1e3;
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

constexpr size_t kSyncWrite = 4096; /* the baselines' write + fdatasync size */

/* Writes @buf (kSyncWrite bytes) at block @i of @fd and fdatasyncs it; returns the pair's
 * duration in ns. @what prefixes the failure messages ("" or "sync probe: "). */
int64_t write_sync_4k(int fd, const unsigned char *buf, uint64_t i, const char *what)
{
    const int64_t t = bench::now_ns();
    const ssize_t w = pwrite(fd, buf, kSyncWrite, off_t(i * kSyncWrite));
    if (w != ssize_t(kSyncWrite)) {
        const int err = w < 0 ? errno : EIO; /* before the message's allocation */
        fail_errno((std::string(what) + "pwrite 4 KiB").c_str(), err);
    }
    if (fdatasync(fd) != 0) {
        const int err = errno;
        fail_errno((std::string(what) + "fdatasync").c_str(), err);
    }
    return bench::now_ns() - t;
}

/* Appends @count 4 KiB blocks to a new file @path (preallocated with fallocate(KEEP_SIZE), as
 * a segment is), each pwrite followed by fdatasync; appends each pair's duration to @lat. */
void sync_4k_latencies(const std::string &path, uint64_t count, std::vector<int64_t> *lat)
{
    const int fd = create_prealloc(path, count * kSyncWrite);
    std::vector<unsigned char> buf(kSyncWrite, 0x5a);
    for (uint64_t i = 0; i < count; i++)
        lat->push_back(write_sync_4k(fd, buf.data(), i, ""));
    struct stat st;
    if (fstat(fd, &st) != 0 || uint64_t(st.st_size) != count * kSyncWrite)
        bench::fail("fdatasync file size", count * kSyncWrite, (unsigned long long)st.st_size);
    close(fd);
    if (unlink(path.c_str()) != 0)
        fail_errno("unlink", errno);
}

/*
 * The disk's sync latency during the measured stretch itself: a thread that appends 4 KiB +
 * fdatasync to a file of its own every kProbeNs (so at times spread evenly over the stretch,
 * as the events are, under the bus's load; the baseline's blocks between the slices see the
 * disk with the bus idle) until stop(). Its 100 syncs a second add a little to the bus's own
 * journal commits.
 */
class sync_probe {
public:
    static constexpr int64_t kProbeNs = 10000000; /* 10 ms */
    static constexpr uint64_t kMax = 6000;         /* a minute's worth: the file's size */
    explicit sync_probe(const std::string &path) : path_(path)
    {
        lat_.reserve(size_t(kMax));
        thread_ = std::thread([this] { run(); });
    }
    ~sync_probe()
    {
        if (thread_.joinable())
            stop();
    }
    sync_probe(const sync_probe &) = delete;
    sync_probe &operator=(const sync_probe &) = delete;
    /* Stops the thread and returns the latencies (ns), one per probe. Once. */
    std::vector<int64_t> &stop()
    {
        /* Release pairs with the acquire load in run(): a plain stop request. */
        stop_.store(true, std::memory_order_release);
        thread_.join();
        return lat_;
    }

private:
    void run()
    {
        const int fd = create_prealloc(path_, kMax * kSyncWrite);
        std::vector<unsigned char> buf(kSyncWrite, 0x3c);
        int64_t next = bench::now_ns();
        /* Acquire pairs with the release store in stop(). */
        for (uint64_t i = 0; i < kMax && !stop_.load(std::memory_order_acquire); i++) {
            next += kProbeNs;
            lat_.push_back(write_sync_4k(fd, buf.data(), i, "sync probe: "));
            struct timespec ts = {time_t(next / 1000000000), long(next % 1000000000)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
            }
        }
        close(fd);
        if (unlink(path_.c_str()) != 0)
            fail_errno("sync probe: unlink", errno);
    }
    std::string path_;
    std::vector<int64_t> lat_;
    std::atomic<bool> stop_{false};
    std::thread thread_;
};

/* Records the ack latency of each newly acknowledged event of one producer (one partition:
 * events are acknowledged in publish order, so the first `acknowledged` events are done). */
class ack_tracker {
public:
    ack_tracker(struct sb_producer *p, uint64_t warm, uint64_t total)
        : p_(p), warm_(warm), due_(size_t(total))
    {
        lat_.reserve(size_t(total - warm));
    }
    void set_due(uint64_t i, int64_t due) { due_[size_t(i)] = due; }
    /* Reads the stats once; charges now - due to every event acknowledged since the last call. */
    void harvest()
    {
        struct sb_producer_stats st;
        sb_producer_get_stats(p_, &st);
        if (st.failed)
            fail_errno("ack latency: a log write failed", st.last_error);
        if (st.acknowledged > st.published || st.acknowledged > due_.size())
            bench::fail("ack latency: acknowledged more than published", st.published,
                        st.acknowledged);
        if (st.acknowledged == acked_)
            return;
        const int64_t now = bench::now_ns();
        for (; acked_ < st.acknowledged; acked_++)
            if (acked_ >= warm_)
                lat_.push_back(now - due_[size_t(acked_)]);
    }
    uint64_t acked() const { return acked_; }
    std::vector<int64_t> &latencies() { return lat_; }

private:
    struct sb_producer *p_;
    uint64_t warm_;
    uint64_t acked_ = 0;
    std::vector<int64_t> due_;
    std::vector<int64_t> lat_;
};

/* Waits until CLOCK_MONOTONIC reaches @due_ns, harvesting acks: sleeps until 20 us before,
 * then polls, yielding the CPU between polls. */
void wait_until(int64_t due_ns, ack_tracker *acks)
{
    constexpr int64_t kSpinNs = 20000;
    const int64_t wake = due_ns - kSpinNs;
    if (bench::now_ns() < wake) {
        struct timespec ts = {time_t(wake / 1000000000), long(wake % 1000000000)};
        while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nullptr) == EINTR) {
        }
    }
    acks->harvest();
    while (bench::now_ns() < due_ns) {
        acks->harvest();
        /* Not a busy spin: on 2 cores the kernel's io_uring workers (which carry out the
         * bus's writes and syncs) share this CPU, and a producer spinning at 100,000 events/s
         * kept them waiting for a time slice (perf sched: 765 waits over 1 ms in one run;
         * ack p99 4.9-5.2 ms against 0.22-0.25 ms yielding). */
        sched_yield();
    }
}

/* After the last send: harvest until all @total are acknowledged (20 us naps between). */
void wait_all_acked(ack_tracker *acks, uint64_t total)
{
    const int64_t start = bench::now_ns();
    for (acks->harvest(); acks->acked() < total; acks->harvest()) {
        if (bench::now_ns() - start > kStallNs)
            bench::fail("ack latency: not acknowledged after 30 s", total, acks->acked());
        const struct timespec nap = {0, 20000};
        nanosleep(&nap, nullptr);
    }
}

/* The measured events of BM_log_ack_latency are sent in this many slices, with fdatasync
 * baselines before, between and after them (see the top of the file). */
constexpr uint64_t kAckSlices = 6;

/* Sends events [@from, @to) of BM_log_ack_latency @interval_ns apart, starting 1 ms from now,
 * then waits until all of them are acknowledged. Appends the send lateness of each event from
 * @warm on (the measured ones) to @lag. */
void send_at_rate(struct sb_producer *p, ack_tracker *acks, uint64_t from, uint64_t to,
                  uint64_t warm, int64_t interval_ns, std::vector<int64_t> *lag)
{
    unsigned char value[kValueBytes];
    make_value(value, 0);
    const int64_t t0 = bench::now_ns() + 1000000;
    for (uint64_t i = from; i < to; i++) {
        const int64_t due = t0 + int64_t(i - from) * interval_ns;
        acks->set_due(i, due);
        wait_until(due, acks);
        put_u64(value, i);
        put_u64(value + kSeqTail, i);
        publish_one(p, value);
        if (i >= warm)
            lag->push_back(bench::now_ns() - due);
        acks->harvest();
    }
    wait_all_acked(acks, to);
}

void BM_log_ack_latency(benchmark::State &state)
{
    const int64_t rate = state.range(2); /* events per second */
    const int64_t interval_ns = 1000000000 / rate;
    const uint64_t warm = bench::pick(uint64_t(rate) / 10, 50);
    const uint64_t slice = bench::pick(uint64_t(rate) / 2, 400 / kAckSlices); /* 0.5 s */
    const uint64_t measured = slice * kAckSlices;                             /* 3 s */
    const uint64_t total = warm + measured;
    const int idle_spin_us = int(state.range(0));
    const int direct_io = int(state.range(1));
    const uint64_t syncs = bench::pick(200, 5); /* per block: kAckSlices + 1 blocks */
    const bench::cpu_pair cpus = bench::pick_cpu_pair();
    temp_dir dir;
    struct sb_bus *bus =
        open_log_bus(dir.path(), cpus.a, SB_DURABILITY_BATCH, 0, idle_spin_us, direct_io);
    bench::scoped_pin pin(cpus.b);
    scoped_timer_slack slack;
    std::vector<int64_t> sync_lat, during_lat;
    sync_lat.reserve(size_t((kAckSlices + 1) * syncs));
    struct sb_producer *p = nullptr;
    int rc = sb_producer_open(bus, &p);
    if (rc)
        fail_errno("sb_producer_open", rc);

    ack_tracker acks(p, warm, total);
    std::vector<int64_t> lag;
    lag.reserve(size_t(measured));
    for (auto _ : state) { /* Iterations(1) */
        send_at_rate(p, &acks, 0, warm, warm, interval_ns, &lag);
        for (uint64_t k = 0; k < kAckSlices; k++) {
            state.PauseTiming();
            sync_4k_latencies(dir.path() + "/sync-" + std::to_string(k), syncs, &sync_lat);
            state.ResumeTiming();
            sync_probe probe(dir.path() + "/sync-during");
            const uint64_t from = warm + k * slice;
            send_at_rate(p, &acks, from, from + slice, warm, interval_ns, &lag);
            std::vector<int64_t> &during = probe.stop();
            during_lat.insert(during_lat.end(), during.begin(), during.end());
        }
        state.PauseTiming();
        sync_4k_latencies(dir.path() + "/sync-last", syncs, &sync_lat);
        state.ResumeTiming();
    }
    flush_or_fail(p);
    check_all_acknowledged(p, total);
    verify_log(bus, total);
    sb_producer_close(p);
    close_bus(bus);

    if (acks.latencies().size() != measured)
        bench::fail("ack latency samples", measured, acks.latencies().size());
    report_percentiles_us(state, "", acks.latencies());
    report_percentiles_us(state, "sync_", sync_lat);
    state.counters["p99/sync_p99"] =
        state.counters["p99_us"].value / std::max(state.counters["sync_p99_us"].value, 1e-3);
    report_percentiles_us(state, "during_sync_", during_lat);
    state.counters["p99/during_sync_p99"] =
        state.counters["p99_us"].value /
        std::max(state.counters["during_sync_p99_us"].value, 1e-3);
    std::sort(lag.begin(), lag.end());
    state.counters["send_lag_p99_us"] = double(percentile(lag, 0.99)) / 1e3;
    state.counters["send_lag_max_us"] = lag.empty() ? 0.0 : double(lag.back()) / 1e3;
    state.SetLabel(std::to_string(measured) + " events at " + std::to_string(rate) + "/s in " +
                   std::to_string(kAckSlices) + " slices, BATCH, idle_spin_us " +
                   std::to_string(idle_spin_us) + "; sync_*: " +
                   std::to_string(sync_lat.size()) +
                   " x 4 KiB pwrite+fdatasync before, between and after the slices; "
                   "during_sync_*: " +
                   std::to_string(during_lat.size()) + " of them every 10 ms during");
}

/* The model of BM_fdatasync_4k (see the top of the file): event i arrives at i / @rate s;
 * whenever no sync is in flight and events wait, one group takes all of them and the next
 * latency of @sync (in the order measured); each event's ack latency is its group's end minus
 * its arrival. Events keep coming until the syncs run out. Returns the p99 in ns (0 without
 * syncs). */
int64_t in_order_log_p99(const std::vector<int64_t> &sync, int64_t rate)
{
    const double interval_ns = 1e9 / double(rate);
    std::vector<int64_t> ack;
    double log_free = 0; /* when the sync in flight ends */
    uint64_t next = 0;   /* the first event not yet in a group */
    for (int64_t d : sync) {
        const double start = std::max(log_free, double(next) * interval_ns);
        const double end = start + double(d);
        for (; double(next) * interval_ns <= start; next++)
            ack.push_back(int64_t(end - double(next) * interval_ns));
        log_free = end;
    }
    std::sort(ack.begin(), ack.end());
    return int64_t(percentile(ack, 0.99));
}

void BM_fdatasync_4k(benchmark::State &state)
{
    const uint64_t count = bench::pick(40000, 50);
    const bench::cpu_pair cpus = bench::pick_cpu_pair();
    bench::scoped_pin pin(cpus.b);
    temp_dir dir;
    std::vector<int64_t> lat;
    lat.reserve(size_t(count));
    for (auto _ : state)
        sync_4k_latencies(dir.path() + "/sync.log", count, &lat);
    const int64_t model_20k = in_order_log_p99(lat, 20000);
    const int64_t model_100k = in_order_log_p99(lat, 100000);
    report_percentiles_us(state, "", lat); /* sorts lat: after the model */
    const double p99 = std::max(state.counters["p99_us"].value, 1e-3);
    state.counters["model_p99_us_20k"] = double(model_20k) / 1e3;
    state.counters["model_p99_us_100k"] = double(model_100k) / 1e3;
    state.counters["model_p99_20k/p99"] = double(model_20k) / 1e3 / p99;
    state.counters["model_p99_100k/p99"] = double(model_100k) / 1e3 / p99;
    state.SetLabel(std::to_string(count) +
                   " x (pwrite 4 KiB + fdatasync), appending; model_*: an in-order log on "
                   "these syncs");
}

/* --- 4. replay read throughput --- */

/* Writes sequence numbers [0, n) durably (BATCH) into a new log in @dir and closes the bus. */
void write_log(const std::string &dir, const bench::cpu_pair &cpus, uint64_t n)
{
    struct sb_bus *bus = open_log_bus(dir, cpus.a, SB_DURABILITY_BATCH, 0);
    bench::scoped_pin pin(cpus.b);
    struct sb_producer *p = nullptr;
    const int rc = sb_producer_open(bus, &p);
    if (rc)
        fail_errno("sb_producer_open", rc);
    publish_range(p, 0, n);
    flush_or_fail(p);
    check_all_acknowledged(p, n);
    sb_producer_close(p);
    close_bus(bus);
}

/* Reads @files sequentially with pread in kBlock blocks; returns the bytes read. */
uint64_t raw_read(const std::vector<std::string> &files)
{
    std::vector<unsigned char> buf(kBlock);
    uint64_t total = 0;
    for (const std::string &f : files) {
        const int fd = open(f.c_str(), O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            fail_errno("open segment", errno);
        ssize_t r;
        off_t off = 0;
        while ((r = pread(fd, buf.data(), kBlock, off)) > 0) {
            benchmark::DoNotOptimize(buf[size_t(r) - 1]);
            off += r;
        }
        if (r < 0)
            fail_errno("pread segment", errno);
        total += uint64_t(off);
        close(fd);
    }
    return total;
}

void BM_log_replay(benchmark::State &state)
{
    const uint64_t n = append_events();
    const bench::cpu_pair cpus = bench::pick_cpu_pair();
    temp_dir dir;
    write_log(dir.path(), cpus, n);
    const std::vector<std::string> files = log_files(dir.path());
    const uint64_t log_bytes = total_size(files);

    struct sb_bus *bus = open_log_bus(dir.path(), cpus.a, SB_DURABILITY_BATCH, size_t(64) << 10);
    bench::scoped_pin pin(cpus.b);
    int64_t replay_ns = 0;
    struct sb_consumer *c = nullptr;
    for (auto _ : state) { /* Iterations(1): one subscription */
        const int64_t t = bench::now_ns();
        const int rc = sb_subscribe(bus, kTopic, SB_OFFSET_BEGINNING, &c);
        if (rc)
            fail_errno("sb_subscribe", rc);
        read_all(c, n, "replay: event sequence");
        replay_ns += bench::now_ns() - t;
    }
    sb_consumer_close(c);
    close_bus(bus);

    const int64_t t = bench::now_ns();
    const uint64_t raw_bytes = raw_read(files);
    const int64_t raw_ns = bench::now_ns() - t;
    if (raw_bytes != log_bytes)
        bench::fail("raw read bytes", log_bytes, raw_bytes);
    const double replay_mbs = double(log_bytes) / 1e6 / (double(replay_ns) / 1e9);
    const double raw_mbs = double(raw_bytes) / 1e6 / (double(raw_ns) / 1e9);

    state.counters["events/s"] = benchmark::Counter(double(n), benchmark::Counter::kIsRate);
    state.counters["MB/s"] = benchmark::Counter(double(n * kValueBytes) / 1e6,
                                                benchmark::Counter::kIsRate);
    state.counters["disk_MB/s"] =
        benchmark::Counter(double(log_bytes) / 1e6, benchmark::Counter::kIsRate);
    state.counters["raw_read_MB/s"] = raw_mbs;
    state.counters["replay/raw"] = replay_mbs / raw_mbs;
    state.SetLabel(std::to_string(n) + " events, " + std::to_string(files.size()) +
                   " segments, " + std::to_string(log_bytes) +
                   " B, page cache probably warm");
}

/* One iteration = one measurement (a fresh log); repetitions give the spread. */
BENCHMARK(BM_log_append)
    ->ArgNames({"durability", "direct_io"})
    ->ArgsProduct({{SB_DURABILITY_NONE, SB_DURABILITY_BATCH, SB_DURABILITY_INTERVAL}, {1, 0}})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_raw_write)
    ->ArgName("sync")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_raw_write_direct)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_log_ack_latency)
    ->ArgNames({"idle_spin_us", "direct_io", "rate"})
    ->Args({50, 1, 20000}) /* the defaults */
    ->Args({50, 0, 20000})
    ->Args({0, 1, 20000})
    ->Args({50, 1, 100000}) /* the rate issue 3 gives as its example */
    ->Args({50, 0, 100000})
    ->Iterations(1)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_fdatasync_4k)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_log_replay)->Iterations(1)->UseRealTime()->Unit(benchmark::kMillisecond);

} // namespace

BENCHMARK_MAIN();
