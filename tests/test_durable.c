/*
 * test_durable.c - the bus with a data_dir, end to end:
 *  - restart: topics, offsets and contents survive sb_bus_close + sb_bus_open; appends continue;
 *  - a second bus on the same data_dir is refused;
 *  - replay from the beginning, from inside a batch, from the end, below the log start;
 *    switching from disk to live delivery while a producer keeps publishing, no gap, no
 *    duplicate;
 *  - a stalled consumer does not hold back producers (it reads from disk later);
 *  - handlers see only acknowledged events, in order, on the owning shard;
 *  - every durability setting, each with the log written through O_DIRECT and through the page
 *    cache (sb_config.direct_io): while the bus runs, a directly written segment file ends
 *    in whole 4 KiB blocks (its zero padding); once closed, every .log file holds whole
 *    batches only;
 *  - retention by size and by age.
 * Every check compares keys and values byte for byte.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <shardbus.h>

#include "check.h"
#include "log_verify.h"
#include "test_util.h"

static char reports[16384];
static pthread_mutex_t reports_lock = PTHREAD_MUTEX_INITIALIZER;

static void collect(void *ctx, enum sb_log_level level, const char *msg)
{
    (void)ctx;
    pthread_mutex_lock(&reports_lock);
    size_t n = strlen(reports);
    if (n < sizeof(reports) - 1)
        snprintf(reports + n, sizeof(reports) - n, "[%d] %s\n", (int)level, msg);
    pthread_mutex_unlock(&reports_lock);
}

static int g_direct_io = -1; /* sb_config.direct_io of the buses open_durable() opens */

static struct sb_bus *open_durable(const char *dir, enum sb_durability d, size_t partition_memory)
{
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.direct_io = g_direct_io;
    cfg.shards = 2;
    cfg.data_dir = dir;
    cfg.durability = d;
    cfg.fsync_interval_ms = 20;
    cfg.segment_bytes = 64 * 1024; /* many segments */
    cfg.write_buffer_bytes = 1 << 20;
    cfg.ring_bytes = 64 * 1024;
    if (partition_memory)
        cfg.partition_memory_bytes = partition_memory;
    cfg.log_fn = collect;
    struct sb_bus *bus = NULL;
    int rc = sb_bus_open(&cfg, &bus);
    if (rc) {
        fprintf(stderr, "sb_bus_open(%s): %s\n%s", dir, strerror(-rc), reports);
        abort();
    }
    return bus;
}

/* Event i of the test stream: key "k<i % 13>", value of varied length derived from i. */
static size_t make_value(uint64_t i, unsigned char *v)
{
    size_t len = 8 + test_mix64(i) % 300;
    memcpy(v, &i, 8);
    for (size_t k = 8; k < len; k++)
        v[k] = (unsigned char)test_mix64(i * 1000 + k);
    return len;
}

static size_t make_key(uint64_t i, char *k)
{
    return (size_t)sprintf(k, "k%llu", (unsigned long long)(i % 13));
}

static void publish_range(struct sb_producer *p, const char *topic, uint64_t from, uint64_t to)
{
    for (uint64_t i = from; i < to; i++) {
        unsigned char v[400];
        char k[32];
        size_t vl = make_value(i, v), kl = make_key(i, k);
        int rc;
        int64_t start = test_now_ms();
        /* Explicit partition: i % 2, so each partition's offsets are known. */
        while ((rc = sb_publish_to(p, topic, (uint32_t)(i % 2), k, kl, v, vl)) == -EAGAIN) {
            sched_yield();
            CHECK(test_now_ms() - start < 30000);
        }
        CHECK_EQ(rc, 0);
    }
}

/* Event number carried in a value (checked against the whole value). */
static uint64_t check_event(const struct sb_event *ev)
{
    uint64_t i;
    CHECK(ev->value_len >= 8);
    memcpy(&i, ev->value, 8);
    unsigned char v[400];
    char k[32];
    size_t vl = make_value(i, v), kl = make_key(i, k);
    CHECK_EQ(ev->value_len, vl);
    CHECK_MEM(ev->value, v, vl);
    CHECK_EQ(ev->key_len, kl);
    CHECK_MEM(ev->key, k, kl);
    CHECK_EQ(ev->partition, i % 2);
    /* Partition p holds events p, p+2, p+4... in order: offset = i / 2. */
    if (ev->offset != (int64_t)(i / 2)) fprintf(stderr, "event %llu at partition %u offset %lld\n%s", (unsigned long long)i, ev->partition, (long long)ev->offset, reports);
    CHECK_EQ(ev->offset, (int64_t)(i / 2));
    return i;
}

/* Poll until every partition has delivered offsets [from_offset, to_offset) exactly once. */
static void expect_stream(struct sb_consumer *c, int64_t from_offset, int64_t to_offset)
{
    int64_t next[2] = {from_offset, from_offset};
    struct sb_event evs[64];
    int64_t start = test_now_ms();
    while (next[0] < to_offset || next[1] < to_offset) {
        int n = sb_poll(c, evs, 64, 100);
        CHECK(n >= 0);
        for (int e = 0; e < n; e++) {
            check_event(&evs[e]);
            CHECK_EQ(evs[e].offset, next[evs[e].partition]);
            next[evs[e].partition]++;
        }
        if (test_now_ms() - start > 30000) {
            fprintf(stderr, "expect_stream: stuck at %lld/%lld of %lld\n%s", (long long)next[0],
                    (long long)next[1], (long long)to_offset, reports);
            abort();
        }
    }
    CHECK_EQ(sb_poll(c, evs, 64, 30), 0);
}

static void make_dir(char *path)
{
    test_make_dir(path, "/tmp/sb-durable-XXXXXX");
}

/* Handlers: record offsets per partition; each partition's slot has one writer (its shard). */
struct handled {
    int64_t next[2];
    uint64_t count[2];
};

static void on_event(struct sb_shard *shard, const struct sb_event *ev, void *ctx)
{
    struct handled *h = ctx;
    (void)shard;
    check_event(ev);
    CHECK_EQ(ev->offset, h->next[ev->partition]);
    h->next[ev->partition]++;
    h->count[ev->partition]++;
}

/* Does the file system of @dir take O_DIRECT writes (else the bus writes through the cache)? */
static bool direct_supported(const char *dir)
{
    char path[256];
    snprintf(path, sizeof(path), "%s/probe", dir);
    int fd = open(path, O_CREAT | O_WRONLY | O_DIRECT, 0644);
    if (fd >= 0)
        close(fd);
    unlink(path);
    return fd >= 0;
}

/* Walk every .log file of @dir's partition folders batch by batch (8-byte base offset, 4-byte
 * big-endian length): with @whole, each must end exactly with its last batch; otherwise it may
 * end with direct padding instead: fewer than 4096 zero bytes up to a 4 KiB boundary.
 * Returns the number of files that ended with padding. */
static int walk_log_files(const char *dir, bool whole)
{
    int padded = 0, files = 0;
    DIR *d = opendir(dir);
    CHECK(d != NULL);
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.' || !strchr(e->d_name, '-'))
            continue;
        char sub[512];
        snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
        DIR *sd = opendir(sub);
        if (!sd)
            continue;
        struct dirent *f;
        while ((f = readdir(sd))) {
            size_t n = strlen(f->d_name);
            if (n < 4 || strcmp(f->d_name + n - 4, ".log"))
                continue;
            char path[1024];
            snprintf(path, sizeof(path), "%s/%s", sub, f->d_name);
            int fd = open(path, O_RDONLY);
            CHECK(fd >= 0);
            struct stat st;
            CHECK_EQ(fstat(fd, &st), 0);
            uint64_t pos = 0, size = (uint64_t)st.st_size;
            unsigned char h[12];
            while (pos + 12 <= size && pread(fd, h, 12, (off_t)pos) == 12) {
                uint32_t len = (uint32_t)h[8] << 24 | (uint32_t)h[9] << 16 |
                               (uint32_t)h[10] << 8 | h[11];
                if (len == 0)
                    break; /* zeros: padding, checked below */
                pos += 12 + (uint64_t)len;
            }
            if (pos != size) {
                CHECK(!whole);
                CHECK(pos < size && size - pos < 4096 && size % 4096 == 0);
                unsigned char zeros[4096], tail[4096];
                memset(zeros, 0, sizeof(zeros));
                CHECK_EQ(pread(fd, tail, size - pos, (off_t)pos), (ssize_t)(size - pos));
                CHECK_MEM(tail, zeros, size - pos);
                padded++;
            }
            close(fd);
            files++;
        }
        closedir(sd);
    }
    closedir(d);
    CHECK(files > 0);
    return padded;
}

static void test_restart(enum sb_durability d)
{
    char dir[64];
    make_dir(dir);
    struct sb_bus *bus = open_durable(dir, d, 0);
    CHECK_EQ(sb_topic_create(bus, "events", 2), 0);
    CHECK_EQ(sb_topic_create(bus, "other.topic_x", 5), 0);
    static struct handled h;
    memset(&h, 0, sizeof(h));
    CHECK_EQ(sb_handler_add(bus, "events", on_event, &h), 0);
    struct sb_consumer *live;
    CHECK_EQ(sb_subscribe(bus, "events", SB_OFFSET_END, &live), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    publish_range(p, "events", 0, 4000);
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    struct sb_producer_stats st;
    sb_producer_get_stats(p, &st);
    CHECK_EQ(st.published, 4000);
    CHECK_EQ(st.acknowledged, 4000);
    CHECK_EQ(st.failed, 0);
    expect_stream(live, 0, 2000);
    /* Written directly (where the file system allows): each active segment ends in whole
     * blocks, with the zeros after its last batch (walk_log_files() checks that). A segment
     * whose batches end exactly on a block boundary has none (one in 4096); both of the two
     * partitions so (one in 16 M) would leave nothing to show the direct writes. */
    const bool direct = (g_direct_io > 0 || (g_direct_io < 0 && d != SB_DURABILITY_NONE)) &&
                        direct_supported(dir);
    const int padded = walk_log_files(dir, !direct);
    CHECK(!direct || padded >= 1);
    /* `shardbus log verify` of a live folder accepts the padding. */
    for (int part = 0; part < 2; part++) {
        char pdir[128];
        snprintf(pdir, sizeof(pdir), "%s/events-%d", dir, part);
        struct sb_verify_totals tot = {0};
        CHECK_EQ(sb_log_verify_partition(pdir, collect, NULL, &tot), 0);
        CHECK_EQ(tot.problems, 0);
        CHECK_EQ(tot.records, 2000);
    }
    /* A second bus on the same folder is refused while this one runs. */
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = 1;
    cfg.data_dir = dir;
    struct sb_bus *second = NULL;
    CHECK_EQ(sb_bus_open(&cfg, &second), -EBUSY);
    sb_producer_close(p);
    sb_consumer_close(live);
    CHECK_EQ(sb_bus_close(bus), 0);
    CHECK_EQ(h.count[0] + h.count[1], 4000);
    walk_log_files(dir, true); /* closed: the padding is gone */

    /* Reopen: the topics come back with their partitions, and every event is there. */
    bus = open_durable(dir, d, 0);
    CHECK_EQ(sb_topic_partitions(bus, "events"), 2);
    CHECK_EQ(sb_topic_partitions(bus, "other.topic_x"), 5);
    struct sb_topic_info info[3];
    CHECK_EQ(sb_topic_list(bus, info, 3), 2);
    CHECK(!strcmp(info[0].name, "events") && !strcmp(info[1].name, "other.topic_x"));
    struct sb_consumer *all;
    CHECK_EQ(sb_subscribe(bus, "events", SB_OFFSET_BEGINNING, &all), 0);
    expect_stream(all, 0, 2000);
    /* Appends continue at the next offsets. */
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    publish_range(p, "events", 4000, 4400);
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    expect_stream(all, 2000, 2200);
    sb_producer_close(p);
    sb_consumer_close(all);
    CHECK_EQ(sb_bus_close(bus), 0);
    walk_log_files(dir, true);
    test_remove_dir(dir);
    printf("restart (durability %d, direct_io %d: %s): 4400 events, topics and offsets "
           "survive\n", (int)d, g_direct_io, direct ? "direct writes" : "page cache");
}

/* One shard owning 5 partitions of a topic, written directly: each group commit holds
 * batches of several partitions (one run of whole blocks per segment file), segments roll
 * inside groups; a producer publishes round-robin over the partitions; then a reopen reads
 * every event back in each partition's order, bytes equal, and the files hold whole batches. */
static void test_direct_partitions(void)
{
    enum { PARTS = 5, EVENTS = 30000 };
    char dir[64];
    make_dir(dir);
    const int saved = g_direct_io;
    g_direct_io = 1;
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = 1;
    cfg.data_dir = dir;
    cfg.direct_io = 1;
    cfg.segment_bytes = 64 * 1024;
    cfg.write_buffer_bytes = 1 << 20;
    cfg.log_fn = collect;
    struct sb_bus *bus = NULL;
    CHECK_EQ(sb_bus_open(&cfg, &bus), 0);
    CHECK_EQ(sb_topic_create(bus, "many", PARTS), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    for (uint64_t i = 0; i < EVENTS; i++) {
        unsigned char v[400];
        char k[32];
        size_t vl = make_value(i, v), kl = make_key(i, k);
        int rc;
        int64_t start = test_now_ms();
        while ((rc = sb_publish_to(p, "many", (uint32_t)(i % PARTS), k, kl, v, vl)) == -EAGAIN) {
            sched_yield();
            CHECK(test_now_ms() - start < 30000);
        }
        CHECK_EQ(rc, 0);
    }
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    sb_producer_close(p);
    if (direct_supported(dir))
        CHECK(walk_log_files(dir, false) >= 1);
    CHECK_EQ(sb_bus_close(bus), 0);
    walk_log_files(dir, true);

    CHECK_EQ(sb_bus_open(&cfg, &bus), 0);
    struct sb_consumer *c;
    CHECK_EQ(sb_subscribe(bus, "many", SB_OFFSET_BEGINNING, &c), 0);
    int64_t next[PARTS] = {0};
    uint64_t seen = 0;
    struct sb_event evs[64];
    int64_t start = test_now_ms();
    while (seen < EVENTS) {
        int n = sb_poll(c, evs, 64, 100);
        CHECK(n >= 0);
        for (int e = 0; e < n; e++) {
            uint64_t i;
            CHECK(evs[e].value_len >= 8);
            memcpy(&i, evs[e].value, 8);
            unsigned char v[400];
            char k[32];
            size_t vl = make_value(i, v), kl = make_key(i, k);
            CHECK_EQ(evs[e].partition, i % PARTS);
            CHECK_EQ(evs[e].offset, next[evs[e].partition]);
            CHECK_EQ(evs[e].offset, (int64_t)(i / PARTS));
            CHECK_EQ(evs[e].value_len, vl);
            CHECK_MEM(evs[e].value, v, vl);
            CHECK_EQ(evs[e].key_len, kl);
            CHECK_MEM(evs[e].key, k, kl);
            next[evs[e].partition]++;
            seen++;
        }
        CHECK(test_now_ms() - start < 30000);
    }
    CHECK_EQ(sb_poll(c, evs, 64, 30), 0);
    sb_consumer_close(c);
    CHECK_EQ(sb_bus_close(bus), 0);
    g_direct_io = saved;
    test_remove_dir(dir);
    printf("direct I/O, one shard, %d partitions: %d events in order, bytes equal\n", PARTS,
           EVENTS);
}

struct publisher {
    struct sb_bus *bus;
    uint64_t from, to;
};

static void *publisher_main(void *arg)
{
    struct publisher *pub = arg;
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(pub->bus, &p), 0);
    publish_range(p, "events", pub->from, pub->to);
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    sb_producer_close(p);
    return NULL;
}

static void test_replay(void)
{
    char dir[64];
    make_dir(dir);
    /* A small memory window: most of the history is only on disk. */
    struct sb_bus *bus = open_durable(dir, SB_DURABILITY_BATCH, 16 * 1024);
    CHECK_EQ(sb_topic_create(bus, "events", 2), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    publish_range(p, "events", 0, 6000);
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    sb_producer_close(p);

    struct sb_consumer *c;
    CHECK_EQ(sb_subscribe(bus, "events", SB_OFFSET_BEGINNING, &c), 0);
    expect_stream(c, 0, 3000);
    sb_consumer_close(c);
    /* From inside a batch (offsets come in batches of many records). */
    CHECK_EQ(sb_subscribe(bus, "events", 1234, &c), 0);
    expect_stream(c, 1234, 3000);
    sb_consumer_close(c);
    CHECK_EQ(sb_subscribe(bus, "events", SB_OFFSET_END, &c), 0);
    struct sb_event ev;
    CHECK_EQ(sb_poll(c, &ev, 1, 50), 0);
    sb_consumer_close(c);

    /* From the beginning while a producer keeps publishing: disk, then live, no gap. */
    CHECK_EQ(sb_subscribe(bus, "events", SB_OFFSET_BEGINNING, &c), 0);
    struct publisher pub = {bus, 6000, 20000};
    pthread_t t;
    CHECK_EQ(pthread_create(&t, NULL, publisher_main, &pub), 0);
    expect_stream(c, 0, 10000);
    CHECK_EQ(pthread_join(t, NULL), 0);
    sb_consumer_close(c);
    CHECK_EQ(sb_bus_close(bus), 0);
    test_remove_dir(dir);
    printf("replay: beginning, inside a batch, end, and disk -> live under load\n");
}

static void test_slow_consumer(void)
{
    char dir[64];
    make_dir(dir);
    struct sb_bus *bus = open_durable(dir, SB_DURABILITY_BATCH, 16 * 1024);
    CHECK_EQ(sb_topic_create(bus, "events", 2), 0);
    struct sb_consumer *stalled;
    CHECK_EQ(sb_subscribe(bus, "events", SB_OFFSET_END, &stalled), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    /* Far more than the consumer's ring and the memory window hold: producers are not held
     * back by a consumer that does not poll (publish_range fails after 30 s of -EAGAIN). */
    publish_range(p, "events", 0, 30000);
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    sb_producer_close(p);
    /* The consumer resumes and gets everything, in order, from disk then memory. */
    expect_stream(stalled, 0, 15000);
    sb_consumer_close(stalled);
    CHECK_EQ(sb_bus_close(bus), 0);
    test_remove_dir(dir);
    printf("slow consumer: 30000 events published past it, then all read from disk\n");
}

/* Poll (every @poll_ms, at most 10 s) until subscribing to "events" at offset 0 gives -ERANGE:
 * retention has deleted the oldest segments. */
static void wait_until_offset_0_refused(struct sb_bus *bus, long poll_ms)
{
    struct sb_consumer *c = NULL;
    int64_t start = test_now_ms();
    int rc;
    while ((rc = sb_subscribe(bus, "events", 0, &c)) == 0) {
        sb_consumer_close(c);
        CHECK(test_now_ms() - start < 10000);
        struct timespec ts = {0, poll_ms * 1000000};
        nanosleep(&ts, NULL);
    }
    CHECK_EQ(rc, -ERANGE);
}

static void test_retention(void)
{
    char dir[64];
    make_dir(dir);
    struct sb_bus *bus = open_durable(dir, SB_DURABILITY_BATCH, 16 * 1024);
    struct sb_topic_config tc;
    sb_topic_config_init(bus, &tc);
    tc.retention_bytes = 256 * 1024;
    CHECK_EQ(sb_topic_create_with(bus, "events", 2, &tc), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    publish_range(p, "events", 0, 20000);
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    /* Retention runs once a second on each shard. */
    wait_until_offset_0_refused(bus, 100);
    struct sb_consumer *c = NULL;
    CHECK(strstr(reports, "retention deleted segment") != NULL);
    /* From the beginning now starts at the new log start and still reaches the end. */
    CHECK_EQ(sb_subscribe(bus, "events", SB_OFFSET_BEGINNING, &c), 0);
    struct sb_event evs[64];
    int n = sb_poll(c, evs, 64, 5000);
    CHECK(n > 0);
    int64_t first = evs[0].offset;
    CHECK(first > 0);
    sb_consumer_close(c);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);
    test_remove_dir(dir);
    printf("retention by size: log start moved to %lld, older offsets refused\n",
           (long long)first);
}

/* Deleting a topic: refused while subscribed, its folders removed, gone after a restart; a
 * topic of the same name starts empty, and another topic is untouched. */
static void test_delete_topic(void)
{
    char dir[64], path[160];
    make_dir(dir);
    struct sb_bus *bus = open_durable(dir, SB_DURABILITY_BATCH, 0);
    CHECK_EQ(sb_topic_create(bus, "doomed", 2), 0);
    CHECK_EQ(sb_topic_create(bus, "kept", 2), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    publish_range(p, "doomed", 0, 2000);
    publish_range(p, "kept", 0, 2000);
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    struct sb_consumer *c;
    CHECK_EQ(sb_subscribe(bus, "doomed", SB_OFFSET_BEGINNING, &c), 0);
    CHECK_EQ(sb_topic_delete(bus, "doomed"), -EBUSY);
    sb_consumer_close(c);
    /* A topic with a handler cannot be deleted either (handlers are never removed). */
    struct handled h = {{0, 0}, {0, 0}};
    CHECK_EQ(sb_topic_create(bus, "handled", 2), 0);
    CHECK_EQ(sb_handler_add(bus, "handled", on_event, &h), 0);
    CHECK_EQ(sb_topic_delete(bus, "handled"), -EBUSY);
    CHECK_EQ(sb_topic_partitions(bus, "handled"), 2);
    CHECK_EQ(sb_topic_delete(bus, "doomed"), 0);
    CHECK_EQ(sb_topic_delete(bus, "doomed"), -ENOENT);
    CHECK_EQ(sb_topic_delete(bus, "never-was"), -ENOENT);
    CHECK_EQ(sb_topic_partitions(bus, "doomed"), -ENOENT);
    snprintf(path, sizeof(path), "%s/doomed-0", dir);
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof(path), "%s/doomed-1.deleted", dir);
    CHECK(access(path, F_OK) != 0);
    struct sb_topic_info infos[4];
    CHECK_EQ(sb_topic_list(bus, infos, 4), 2);
    CHECK(!strcmp(infos[0].name, "kept"));
    CHECK(!strcmp(infos[1].name, "handled"));
    /* Publishing to it now: unknown. */
    unsigned char v[400];
    CHECK_EQ(sb_publish_to(p, "doomed", 0, "k", 1, v, 10), -ENOENT);
    /* The name index grows with these: the deleted topic must not come back with it. */
    for (int i = 0; i < 40; i++) {
        char name[32];
        snprintf(name, sizeof name, "filler-%d", i);
        CHECK_EQ(sb_topic_create(bus, name, 1), 0);
    }
    CHECK_EQ(sb_topic_partitions(bus, "doomed"), -ENOENT);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);

    bus = open_durable(dir, SB_DURABILITY_BATCH, 0);
    CHECK_EQ(sb_topic_partitions(bus, "doomed"), -ENOENT);
    CHECK_EQ(sb_topic_partitions(bus, "kept"), 2);
    CHECK_EQ(sb_subscribe(bus, "kept", SB_OFFSET_BEGINNING, &c), 0);
    expect_stream(c, 0, 1000); /* every event of the other topic, in order, bytes equal */
    sb_consumer_close(c);
    /* Recreated: empty, and new events start at offset 0. */
    CHECK_EQ(sb_topic_create(bus, "doomed", 2), 0);
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    publish_range(p, "doomed", 0, 10);
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    CHECK_EQ(sb_subscribe(bus, "doomed", SB_OFFSET_BEGINNING, &c), 0);
    expect_stream(c, 0, 5);
    sb_consumer_close(c);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);
    test_remove_dir(dir);
    printf("delete topic: refused while subscribed, folders removed, recreated empty\n");
}

/* A deletion that does not reach its commit point (the topics file rewrite fails here, as a
 * crash just before it would) must not lose the topic: its logs wait under ".deleted", and the
 * next open restores them whole (every event, bytes equal); a completed deletion's leftovers
 * are removed at the next open instead. */
static void test_delete_interrupted(void)
{
    char dir[64], path[160];
    make_dir(dir);
    struct sb_bus *bus = open_durable(dir, SB_DURABILITY_BATCH, 0);
    CHECK_EQ(sb_topic_create(bus, "events", 2), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    publish_range(p, "events", 0, 3000);
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    sb_producer_close(p);
    /* topics.tmp as a folder: the rewrite cannot create it. */
    snprintf(path, sizeof(path), "%s/topics.tmp", dir);
    CHECK_EQ(mkdir(path, 0755), 0);
    int rc = sb_topic_delete(bus, "events");
    CHECK(rc < 0);
    CHECK_EQ(sb_topic_partitions(bus, "events"), -ENOENT); /* gone from this bus */
    snprintf(path, sizeof(path), "%s/events-0.deleted", dir);
    CHECK_EQ(access(path, F_OK), 0); /* kept, renamed */
    snprintf(path, sizeof(path), "%s/events-0", dir);
    CHECK(access(path, F_OK) != 0);
    CHECK_EQ(sb_bus_close(bus), 0);
    snprintf(path, sizeof(path), "%s/topics.tmp", dir);
    CHECK_EQ(rmdir(path), 0);

    reports[0] = 0;
    bus = open_durable(dir, SB_DURABILITY_BATCH, 0);
    CHECK(strstr(reports, "its log is restored") != NULL);
    CHECK_EQ(sb_topic_partitions(bus, "events"), 2);
    struct sb_consumer *c;
    CHECK_EQ(sb_subscribe(bus, "events", SB_OFFSET_BEGINNING, &c), 0);
    expect_stream(c, 0, 1500); /* every event, in order, bytes equal */
    sb_consumer_close(c);
    snprintf(path, sizeof(path), "%s/events-1.deleted", dir);
    CHECK(access(path, F_OK) != 0);

    /* A committed deletion whose folders a crash left behind: removed at the next open. */
    CHECK_EQ(sb_topic_delete(bus, "events"), 0);
    CHECK_EQ(sb_bus_close(bus), 0);
    snprintf(path, sizeof(path), "%s/events-0.deleted", dir);
    CHECK_EQ(mkdir(path, 0755), 0);
    bus = open_durable(dir, SB_DURABILITY_BATCH, 0);
    CHECK_EQ(sb_topic_partitions(bus, "events"), -ENOENT);
    CHECK(access(path, F_OK) != 0);
    snprintf(path, sizeof(path), "%s/events-0", dir);
    CHECK(access(path, F_OK) != 0);
    CHECK_EQ(sb_bus_close(bus), 0);
    test_remove_dir(dir);
    printf("delete interrupted before its commit point: the topic comes back whole\n");
}

static double cpu_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int count_reports(const char *what)
{
    int n = 0;
    pthread_mutex_lock(&reports_lock);
    for (const char *at = reports; (at = strstr(at, what)); at++)
        n++;
    pthread_mutex_unlock(&reports_lock);
    return n;
}

static int compare_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/*
 * A segment a consumer reads cannot be read whole (cut behind the bus's back: its reads come
 * back short): the consumer gets every event before the cut and nothing after it (no skip),
 * the failure is reported once with the segment and position, the shard retries at growing
 * intervals instead of spinning, and once the bytes are back the consumer continues where it
 * stopped, in order, bytes equal.
 */
static void test_disk_read_error(void)
{
    char dir[64], path[256];
    make_dir(dir);
    struct sb_bus *bus = open_durable(dir, SB_DURABILITY_BATCH, 16 * 1024);
    CHECK_EQ(sb_topic_create(bus, "events", 2), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    publish_range(p, "events", 0, 6000);
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    sb_producer_close(p);

    /* Partition 0's second segment, cut in half (its bytes kept to put back). */
    snprintf(path, sizeof(path), "%s/events-0", dir);
    DIR *d = opendir(path);
    CHECK(d);
    char *names[256];
    int count = 0;
    struct dirent *e;
    while ((e = readdir(d)) && count < 256) {
        size_t n = strlen(e->d_name);
        if (n > 4 && !strcmp(e->d_name + n - 4, ".log"))
            names[count++] = strdup(e->d_name);
    }
    closedir(d);
    CHECK(count >= 3);
    qsort(names, (size_t)count, sizeof(names[0]), compare_names);
    int64_t cut_base = strtoll(names[1], NULL, 10), next_base = strtoll(names[2], NULL, 10);
    snprintf(path, sizeof(path), "%s/events-0/%s", dir, names[1]);
    for (int i = 0; i < count; i++)
        free(names[i]);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    struct stat st;
    CHECK_EQ(fstat(fd, &st), 0);
    size_t size = (size_t)st.st_size, cut = size / 2;
    unsigned char *saved = malloc(size - cut);
    CHECK(saved);
    CHECK_EQ(pread(fd, saved, size - cut, (off_t)cut), (ssize_t)(size - cut));
    CHECK_EQ(ftruncate(fd, (off_t)cut), 0);

    pthread_mutex_lock(&reports_lock);
    reports[0] = 0;
    pthread_mutex_unlock(&reports_lock);
    struct sb_consumer *c;
    CHECK_EQ(sb_subscribe(bus, "events", SB_OFFSET_BEGINNING, &c), 0);
    int64_t next[2] = {0, 0};
    struct sb_event evs[64];
    int64_t start = test_now_ms();
    /* Partition 1 whole; partition 0 up to the cut. */
    while (next[1] < 3000 || test_now_ms() - start < 500) {
        int n = sb_poll(c, evs, 64, 50);
        CHECK(n >= 0);
        for (int k = 0; k < n; k++) {
            check_event(&evs[k]);
            CHECK_EQ(evs[k].offset, next[evs[k].partition]);
            next[evs[k].partition]++;
        }
        CHECK(test_now_ms() - start < 30000);
    }
    CHECK(next[0] >= cut_base && next[0] < next_base); /* stopped inside the cut segment */
    /* Stuck there: reported once, and the shard does not spin on it. */
    double cpu_before = cpu_seconds();
    CHECK_EQ(sb_poll(c, evs, 64, 1000), 0);
    double cpu_used = cpu_seconds() - cpu_before;
    CHECK_EQ(count_reports("cannot serve the batch"), 1);
    CHECK_EQ(count_reports("short read"), 1);
    CHECK(cpu_used < 0.3);

    /* The bytes come back: the consumer continues where it stopped, skipping nothing. */
    CHECK_EQ(pwrite(fd, saved, size - cut, (off_t)cut), (ssize_t)(size - cut));
    close(fd);
    free(saved);
    start = test_now_ms();
    while (next[0] < 3000) {
        int n = sb_poll(c, evs, 64, 100);
        CHECK(n >= 0);
        for (int k = 0; k < n; k++) {
            check_event(&evs[k]);
            CHECK_EQ(evs[k].partition, 0);
            CHECK_EQ(evs[k].offset, next[0]);
            next[0]++;
        }
        CHECK(test_now_ms() - start < 15000);
    }
    CHECK_EQ(sb_poll(c, evs, 64, 50), 0);
    CHECK_EQ(count_reports("is served again"), 1);
    CHECK_EQ(count_reports("cannot serve the batch"), 1);
    sb_consumer_close(c);
    CHECK_EQ(sb_bus_close(bus), 0);
    test_remove_dir(dir);
    printf("disk read error: reported once, retried at growing intervals (%.3f s of CPU in 1 s), "
           "nothing skipped, resumed once the bytes were back\n",
           cpu_used);
}

/* A torn tail at the bus level: reported through log_fn, the rest kept, appends continue. */
static void test_torn_tail_reopen(void)
{
    char dir[64];
    make_dir(dir);
    struct sb_bus *bus = open_durable(dir, SB_DURABILITY_BATCH, 0);
    CHECK_EQ(sb_topic_create(bus, "events", 2), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    /* Four flushes: at least four batches per partition, so the torn one is not the only one. */
    for (uint64_t from = 0; from < 400; from += 100) {
        publish_range(p, "events", from, from + 100);
        CHECK_EQ(sb_producer_flush(p, 30000), 0);
    }
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);
    /* Cut 7 bytes off partition 0's newest segment, and pretend nothing was synced (as after a
     * crash before the first clean close). */
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "f=$(ls '%s'/events-0/*.log | tail -n1); truncate -s -7 \"$f\"; "
             "rm -f '%s'/events-0/recovery-point",
             dir, dir);
    CHECK_EQ(system(cmd), 0);
    reports[0] = 0;
    bus = open_durable(dir, SB_DURABILITY_BATCH, 0);
    CHECK(strstr(reports, "events partition 0") && strstr(reports, "torn tail"));
    struct sb_consumer *c;
    CHECK_EQ(sb_subscribe(bus, "events", SB_OFFSET_BEGINNING, &c), 0);
    struct sb_event evs[64];
    int64_t next[2] = {0, 0};
    int n;
    while ((n = sb_poll(c, evs, 64, 300)) > 0)
        for (int i = 0; i < n; i++) {
            check_event(&evs[i]);
            CHECK_EQ(evs[i].offset, next[evs[i].partition]);
            next[evs[i].partition]++;
        }
    CHECK_EQ(next[1], 200);
    /* The torn batch (part of the last flush) is gone, the rest is there. */
    CHECK(next[0] < 200 && next[0] >= 150);
    sb_consumer_close(c);
    CHECK_EQ(sb_bus_close(bus), 0);
    test_remove_dir(dir);
    printf("torn tail: reported, partition 0 kept offsets 0..%lld\n", (long long)next[0] - 1);
}

/* Corruption in a closed segment (synced at a clean close): the bus refuses to open, and the
 * report names the partition, the file and the byte; nothing is truncated. */
static void test_corruption_refused(void)
{
    char dir[64];
    make_dir(dir);
    struct sb_bus *bus = open_durable(dir, SB_DURABILITY_BATCH, 0);
    CHECK_EQ(sb_topic_create(bus, "events", 2), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    publish_range(p, "events", 0, 4000); /* 64 KiB segments: several per partition */
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);
    char cmd[512];
    snprintf(cmd, sizeof(cmd),
             "f=$(ls '%s'/events-0/*.log | head -n1); "
             "printf 'X' | dd of=\"$f\" bs=1 seek=300 conv=notrunc 2>/dev/null",
             dir);
    CHECK_EQ(system(cmd), 0);
    reports[0] = 0;
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = 2;
    cfg.data_dir = dir;
    cfg.log_fn = collect;
    cfg.segment_bytes = 64 * 1024;
    CHECK_EQ(sb_bus_open(&cfg, &bus), -EBADMSG);
    CHECK(strstr(reports, "events partition 0") != NULL);
    CHECK(strstr(reports, "00000000000000000000.log") != NULL);
    CHECK(strstr(reports, "corrupt batch at byte") != NULL);
    test_remove_dir(dir);
    printf("corruption in a closed segment: open refused and reported\n");
}

/* Retention by age, at the bus level: segments whose newest event is older than retention_ms
 * go, the log start moves, older offsets are refused. */
static void test_retention_by_age(void)
{
    char dir[64];
    make_dir(dir);
    struct sb_bus *bus = open_durable(dir, SB_DURABILITY_BATCH, 16 * 1024);
    struct sb_topic_config tc;
    sb_topic_config_init(bus, &tc);
    tc.retention_ms = 500;
    CHECK_EQ(sb_topic_create_with(bus, "events", 2, &tc), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    publish_range(p, "events", 0, 4000);
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    /* Retention runs once a second per shard; give it a few rounds. */
    wait_until_offset_0_refused(bus, 200);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);
    test_remove_dir(dir);
    printf("retention by age: old segments deleted, offset 0 refused\n");
}

/* An idle durable bus parks its shards (in io_uring or on the futex), waking once a second. */
static void test_idle(void)
{
    char dir[64];
    make_dir(dir);
    struct sb_bus *bus = open_durable(dir, SB_DURABILITY_BATCH, 0);
    CHECK_EQ(sb_topic_create(bus, "events", 2), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    publish_range(p, "events", 0, 100);
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    struct timespec pause = {0, 100 * 1000000};
    nanosleep(&pause, NULL);
    double before = cpu_seconds();
    struct timespec idle = {0, 500 * 1000000};
    nanosleep(&idle, NULL);
    double used = cpu_seconds() - before;
    CHECK(used < 0.25);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);
    test_remove_dir(dir);
    printf("idle durable bus: %.3f s of CPU in 0.5 s\n", used);
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    if (!only || !strcmp(only, "restart")) {
        for (int direct = -1; direct <= 1; direct++) {
            g_direct_io = direct;
            test_restart(SB_DURABILITY_BATCH);
            test_restart(SB_DURABILITY_NONE);
            test_restart(SB_DURABILITY_INTERVAL);
        }
        g_direct_io = -1;
    }
    if (!only || !strcmp(only, "direct"))
        test_direct_partitions();
    if (!only || !strcmp(only, "replay"))
        test_replay();
    if (!only || !strcmp(only, "slow"))
        test_slow_consumer();
    if (!only || !strcmp(only, "retention"))
        test_retention();
    if (!only || !strcmp(only, "torn"))
        test_torn_tail_reopen();
    if (!only || !strcmp(only, "idle"))
        test_idle();
    if (!only || !strcmp(only, "readerror"))
        test_disk_read_error();
    if (!only || !strcmp(only, "corrupt"))
        test_corruption_refused();
    if (!only || !strcmp(only, "age"))
        test_retention_by_age();
    if (!only || !strcmp(only, "delete")) {
        test_delete_topic();
        test_delete_interrupted();
    }
    printf("test_durable: all passed\n");
    return 0;
}
