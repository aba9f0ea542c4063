/*
 * test_bus.c - the embedded bus end to end, on 2 shards:
 *  - several producer threads x several topics x several partitions: every event reaches each
 *    consumer and each handler exactly once, in per-partition offset order, bytes equal, keyed
 *    events on Kafka's partition, handlers on the owning shard's thread, derived events arrive;
 *  - close delivers everything in flight, through a chain of derived events;
 *  - a stalled consumer back-pressures the producers and loses nothing when it resumes;
 *  - replay from the beginning, from an absolute offset, from a future offset;
 *  - every documented error return;
 *  - idle shards park instead of burning the CPUs.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <shardbus.h>

#include "bus.h"
#include "check.h"
#include "test_util.h"

#define PRODUCERS 3
#define EVENTS_PER_PRODUCER 20000
#define ORDERS_PARTITIONS 4
#define CARTS_PARTITIONS 3
#define ALERTS_PARTITIONS 2
#define VALUE_MAX 256

/* ---------- the generated workload: everything is a function of (producer, seq) ---------- */

enum { TOPIC_ORDERS, TOPIC_CARTS, TOPIC_ALERTS, TOPIC_COUNT };
static const char *const topic_names[TOPIC_COUNT] = {"orders", "carts", "alerts"};
static const unsigned topic_partitions[TOPIC_COUNT] = {ORDERS_PARTITIONS, CARTS_PARTITIONS,
                                                       ALERTS_PARTITIONS};

struct value_header {
    uint32_t producer;
    uint32_t topic;
    uint64_t seq;
};

static int event_topic(unsigned producer, uint64_t seq)
{
    return (int)(test_mix64(producer * 1000003ULL + seq) % 2); /* orders or carts */
}

static bool event_keyed(uint64_t seq)
{
    return seq % 3 != 0;
}

static size_t event_key(unsigned producer, uint64_t seq, char *key)
{
    return (size_t)sprintf(key, "user-%u-%llu", producer, (unsigned long long)(seq % 97));
}

static size_t event_value(unsigned producer, uint64_t seq, unsigned char *v)
{
    struct value_header h = {producer, (uint32_t)event_topic(producer, seq), seq};
    size_t len = sizeof(h) + test_mix64(seq * 7 + producer) % (VALUE_MAX - sizeof(h) - 8);
    memcpy(v, &h, sizeof(h));
    for (size_t i = sizeof(h); i < len; i++)
        v[i] = (unsigned char)(test_mix64(seq ^ ((uint64_t)producer << 40)) >> (i % 8 * 8)) ^ (unsigned char)i;
    return len;
}

static bool is_alert_source(uint64_t seq)
{
    return seq % 10 == 0;
}

/* Check that @ev is exactly the event its header names; returns the header. */
static struct value_header verify_event(const struct sb_event *ev, int topic, bool derived)
{
    const unsigned char *value = ev->value;
    size_t value_len = ev->value_len;
    if (derived) {
        CHECK(value_len > 6 && !memcmp(value, "alert:", 6));
        value += 6;
        value_len -= 6;
    }
    struct value_header h;
    CHECK(value_len >= sizeof(h));
    memcpy(&h, value, sizeof(h));
    CHECK(h.producer < PRODUCERS && h.seq < EVENTS_PER_PRODUCER);
    CHECK_EQ(h.topic, derived ? TOPIC_ORDERS : (uint32_t)topic);
    unsigned char expect[VALUE_MAX];
    size_t len = event_value(h.producer, h.seq, expect);
    CHECK_EQ(value_len, len);
    CHECK_MEM(value, expect, len);
    CHECK(!strcmp(ev->topic, topic_names[topic]));
    CHECK(ev->partition < topic_partitions[topic]);
    if (event_keyed(h.seq)) {
        char key[64];
        size_t key_len = event_key(h.producer, h.seq, key);
        CHECK(ev->key != NULL);
        CHECK_EQ(ev->key_len, key_len);
        CHECK_MEM(ev->key, key, key_len);
        /* Kafka's default partitioner. */
        CHECK_EQ(ev->partition, (sb_murmur2(key, key_len) & 0x7fffffffu) % topic_partitions[topic]);
    } else {
        CHECK(ev->key == NULL);
        CHECK_EQ(ev->key_len, 0);
    }
    return h;
}

/* Exactly-once and order bookkeeping of one reader (a consumer or a topic's handlers). */
struct reader_state {
    unsigned char seen[PRODUCERS][EVENTS_PER_PRODUCER];
    int64_t next_offset[8];                /* per partition: offsets contiguous from 0 */
    int64_t last_seq[8][PRODUCERS];        /* per partition and producer: publish order */
    int64_t last_seq_by_key[PRODUCERS][97]; /* derived events: order per key */
    uint64_t partition_count[8]; /* per partition: one writer each, even for handlers */
    uint64_t count;              /* consumers only (one thread) */
};

static void reader_init(struct reader_state *r)
{
    memset(r, 0, sizeof(*r));
    for (int p = 0; p < 8; p++)
        for (int i = 0; i < PRODUCERS; i++)
            r->last_seq[p][i] = -1;
    for (int i = 0; i < PRODUCERS; i++)
        for (int k = 0; k < 97; k++)
            r->last_seq_by_key[i][k] = -1;
}

static void reader_take(struct reader_state *r, const struct sb_event *ev, int topic, bool derived)
{
    struct value_header h = verify_event(ev, topic, derived);
    CHECK_EQ(ev->offset, r->next_offset[ev->partition]);
    r->next_offset[ev->partition]++;
    if (!derived) {
        /* Per producer and partition, publish order is offset order. */
        CHECK(r->last_seq[ev->partition][h.producer] < (int64_t)h.seq);
        r->last_seq[ev->partition][h.producer] = (int64_t)h.seq;
    } else if (event_keyed(h.seq)) {
        /* Derived events keep the order of their source partition: per key, since one key's
         * events come from one source partition (keyless ones come from several). */
        int64_t *last = &r->last_seq_by_key[h.producer][h.seq % 97];
        CHECK(*last < (int64_t)h.seq);
        *last = (int64_t)h.seq;
    }
    CHECK_EQ(r->seen[h.producer][h.seq], 0);
    r->seen[h.producer][h.seq] = 1;
    r->partition_count[ev->partition]++;
}

/* Every event meant for @topic seen exactly once (derived: only the alert sources). */
static void reader_check_complete(const struct reader_state *r, int topic, bool derived)
{
    uint64_t expected = 0;
    for (unsigned p = 0; p < PRODUCERS; p++) {
        for (uint64_t s = 0; s < EVENTS_PER_PRODUCER; s++) {
            bool want = derived ? (event_topic(p, s) == TOPIC_ORDERS && is_alert_source(s))
                                : event_topic(p, s) == topic;
            if (want != (r->seen[p][s] == 1)) {
                fprintf(stderr, "topic %s: producer %u seq %llu %s\n", topic_names[topic], p,
                        (unsigned long long)s, want ? "missing" : "unexpected");
                abort();
            }
            expected += want;
        }
    }
    uint64_t total = 0;
    for (int p = 0; p < 8; p++)
        total += r->partition_count[p];
    CHECK_EQ(total, expected);
}

static uint64_t expected_count(int topic)
{
    uint64_t n = 0;
    for (unsigned p = 0; p < PRODUCERS; p++)
        for (uint64_t s = 0; s < EVENTS_PER_PRODUCER; s++)
            n += topic == TOPIC_ALERTS ? (event_topic(p, s) == TOPIC_ORDERS && is_alert_source(s))
                                       : event_topic(p, s) == topic;
    return n;
}

static struct sb_bus *open_bus(size_t ring_bytes, size_t partition_bytes)
{
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = 2;
    if (ring_bytes)
        cfg.ring_bytes = ring_bytes;
    if (partition_bytes)
        cfg.partition_memory_bytes = partition_bytes;
    struct sb_bus *bus = NULL;
    CHECK_EQ(sb_bus_open(&cfg, &bus), 0);
    CHECK_EQ(sb_bus_shards(bus), 2);
    return bus;
}

static void publish_retry(struct sb_producer *p, const char *topic, const void *key,
                          size_t key_len, const void *value, size_t value_len)
{
    int rc;
    int64_t start = test_now_ms();
    while ((rc = sb_publish(p, topic, key, key_len, value, value_len)) == -EAGAIN) {
        sched_yield();
        if (test_now_ms() - start > 20000) {
            fprintf(stderr, "publish to %s: -EAGAIN for 20 s, the bus is stuck\n", topic);
            abort();
        }
    }
    CHECK_EQ(rc, 0);
}

/* ---------------------------- test 1: the full workload ---------------------------- */

struct workload {
    struct sb_bus *bus;
    struct reader_state orders_handler, alerts_handler;
    pthread_t shard_thread[2];
    _Atomic int shard_thread_known[2];
    pthread_t main_thread;
};

/* Handlers run on shard threads: check which one, and that it is always the same thread. */
static void check_on_owner(struct workload *w, struct sb_shard *shard, const struct sb_event *ev)
{
    struct sb_topic *topic = sb_topic_find(&w->bus->topics, ev->topic);
    CHECK(topic);
    unsigned owner = sb_partition_owner(topic, ev->partition, 2);
    CHECK_EQ(sb_shard_id(shard), owner);
    CHECK(!pthread_equal(pthread_self(), w->main_thread));
    /* acq_rel/acquire: pairs between the two handlers of one shard only (same thread), and
     * with the main thread's reads after sb_bus_close() joined the shards. */
    if (atomic_exchange_explicit(&w->shard_thread_known[owner], 1, memory_order_acq_rel) == 0)
        w->shard_thread[owner] = pthread_self();
    else
        CHECK(pthread_equal(w->shard_thread[owner], pthread_self()));
}

static void on_order(struct sb_shard *shard, const struct sb_event *ev, void *ctx)
{
    struct workload *w = ctx;
    check_on_owner(w, shard, ev);
    /* One reader_state for all orders partitions: each partition's slots are touched only by
     * its owning shard, and seen[][] bytes are distinct per event. */
    reader_take(&w->orders_handler, ev, TOPIC_ORDERS, false);
    struct value_header h;
    memcpy(&h, ev->value, sizeof(h));
    if (is_alert_source(h.seq)) {
        unsigned char alert[VALUE_MAX + 6];
        memcpy(alert, "alert:", 6);
        memcpy(alert + 6, ev->value, ev->value_len);
        CHECK_EQ(sb_shard_publish(shard, "alerts", ev->key, ev->key_len, alert,
                                  ev->value_len + 6),
                 0);
    }
}

static void on_alert(struct sb_shard *shard, const struct sb_event *ev, void *ctx)
{
    struct workload *w = ctx;
    check_on_owner(w, shard, ev);
    reader_take(&w->alerts_handler, ev, TOPIC_ALERTS, true);
}

struct producer_args {
    struct sb_bus *bus;
    unsigned id;
};

static void *producer_main(void *arg)
{
    struct producer_args *a = arg;
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(a->bus, &p), 0);
    for (uint64_t seq = 0; seq < EVENTS_PER_PRODUCER; seq++) {
        char key[64];
        unsigned char value[VALUE_MAX];
        size_t value_len = event_value(a->id, seq, value);
        size_t key_len = event_key(a->id, seq, key);
        const char *topic = topic_names[event_topic(a->id, seq)];
        if (event_keyed(seq))
            publish_retry(p, topic, key, key_len, value, value_len);
        else
            publish_retry(p, topic, NULL, 0, value, value_len);
    }
    CHECK_EQ(sb_producer_flush(p, -1), 0);
    sb_producer_close(p);
    return NULL;
}

struct consumer_args {
    struct sb_consumer *consumer;
    int topic;
    struct reader_state state;
};

static void *consumer_main(void *arg)
{
    struct consumer_args *a = arg;
    uint64_t want = expected_count(a->topic);
    struct sb_event evs[64];
    int64_t last_progress = test_now_ms();
    while (a->state.count < want) {
        int n = sb_poll(a->consumer, evs, 64, 100);
        CHECK(n >= 0);
        for (int i = 0; i < n; i++)
            reader_take(&a->state, &evs[i], a->topic, a->topic == TOPIC_ALERTS);
        a->state.count += (uint64_t)n;
        if (n)
            last_progress = test_now_ms();
        else if (test_now_ms() - last_progress > 20000) {
            fprintf(stderr, "consumer of %s: no event for 20 s at %llu of %llu\n",
                    topic_names[a->topic], (unsigned long long)a->state.count,
                    (unsigned long long)want);
            abort();
        }
    }
    /* Nothing beyond what was published. */
    CHECK_EQ(sb_poll(a->consumer, evs, 64, 50), 0);
    reader_check_complete(&a->state, a->topic, a->topic == TOPIC_ALERTS);
    return NULL;
}

static void test_workload(void)
{
    static struct workload w;
    static struct consumer_args cons[TOPIC_COUNT];
    memset(&w, 0, sizeof(w));
    w.main_thread = pthread_self();
    w.bus = open_bus(64 * 1024, 256 * 1024);
    reader_init(&w.orders_handler);
    reader_init(&w.alerts_handler);
    for (int t = 0; t < TOPIC_COUNT; t++)
        CHECK_EQ(sb_topic_create(w.bus, topic_names[t], topic_partitions[t]), 0);
    CHECK_EQ(sb_handler_add(w.bus, "orders", on_order, &w), 0);
    CHECK_EQ(sb_handler_add(w.bus, "alerts", on_alert, &w), 0);

    pthread_t consumer_threads[TOPIC_COUNT], producer_threads[PRODUCERS];
    struct producer_args pargs[PRODUCERS];
    for (int t = 0; t < TOPIC_COUNT; t++) {
        reader_init(&cons[t].state);
        cons[t].topic = t;
        CHECK_EQ(sb_subscribe(w.bus, topic_names[t], SB_OFFSET_END, &cons[t].consumer), 0);
        CHECK_EQ(pthread_create(&consumer_threads[t], NULL, consumer_main, &cons[t]), 0);
    }
    for (unsigned i = 0; i < PRODUCERS; i++) {
        pargs[i] = (struct producer_args){w.bus, i};
        CHECK_EQ(pthread_create(&producer_threads[i], NULL, producer_main, &pargs[i]), 0);
    }
    for (unsigned i = 0; i < PRODUCERS; i++)
        CHECK_EQ(pthread_join(producer_threads[i], NULL), 0);
    for (int t = 0; t < TOPIC_COUNT; t++) {
        CHECK_EQ(pthread_join(consumer_threads[t], NULL), 0);
        sb_consumer_close(cons[t].consumer);
    }
    CHECK_EQ(sb_bus_close(w.bus), 0);
    /* The shards are joined: their handler bookkeeping is ours to read. */
    reader_check_complete(&w.orders_handler, TOPIC_ORDERS, false);
    reader_check_complete(&w.alerts_handler, TOPIC_ALERTS, true);
    CHECK(!pthread_equal(w.shard_thread[0], w.shard_thread[1]));
    printf("workload: %llu orders, %llu carts, %llu alerts, each exactly once, in order\n",
           (unsigned long long)cons[TOPIC_ORDERS].state.count,
           (unsigned long long)cons[TOPIC_CARTS].state.count,
           (unsigned long long)cons[TOPIC_ALERTS].state.count);
}

/* ------------------ test 2: close delivers everything, through a chain ------------------ */

#define CHAIN_EVENTS 50000
#define CHAIN_STAGES 3

struct chain {
    /* stage s sees event i once: written by one shard thread per partition, read after close */
    unsigned char seen[CHAIN_STAGES][CHAIN_EVENTS];
    uint64_t count[CHAIN_STAGES][4]; /* per partition (one writer each) */
};

static void on_chain(struct sb_shard *shard, const struct sb_event *ev, void *ctx)
{
    struct chain *ch = ctx;
    int stage = ev->topic[5] - '0'; /* "chain0".."chain2" */
    uint32_t i;
    CHECK_EQ(ev->value_len, sizeof(i) + 100);
    memcpy(&i, ev->value, sizeof(i));
    CHECK(i < CHAIN_EVENTS);
    CHECK_EQ(ch->seen[stage][i], 0);
    ch->seen[stage][i] = 1;
    ch->count[stage][ev->partition]++;
    if (stage + 1 < CHAIN_STAGES) {
        char next[8] = "chain0";
        next[5] = (char)('0' + stage + 1);
        CHECK_EQ(sb_shard_publish(shard, next, NULL, 0, ev->value, ev->value_len), 0);
    }
}

static void test_close_drains(void)
{
    static struct chain ch;
    memset(&ch, 0, sizeof(ch));
    /* Small rings: derived events overflow and back-pressure while close waits. */
    struct sb_bus *bus = open_bus(4096, 64 * 1024);
    for (int s = 0; s < CHAIN_STAGES; s++) {
        char name[8] = "chain0";
        name[5] = (char)('0' + s);
        CHECK_EQ(sb_topic_create(bus, name, 4), 0);
        CHECK_EQ(sb_handler_add(bus, name, on_chain, &ch), 0);
    }
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    unsigned char value[sizeof(uint32_t) + 100];
    memset(value, 0xab, sizeof(value));
    for (uint32_t i = 0; i < CHAIN_EVENTS; i++) {
        memcpy(value, &i, sizeof(i));
        publish_retry(p, "chain0", NULL, 0, value, sizeof(value));
    }
    /* No flush: close the producer and the bus with everything still in flight. */
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);
    for (int s = 0; s < CHAIN_STAGES; s++) {
        uint64_t total = 0;
        for (int part = 0; part < 4; part++)
            total += ch.count[s][part];
        CHECK_EQ(total, CHAIN_EVENTS);
        for (uint32_t i = 0; i < CHAIN_EVENTS; i++)
            CHECK_EQ(ch.seen[s][i], 1);
    }
    printf("close drains: %d events through %d handler stages\n", CHAIN_EVENTS, CHAIN_STAGES);
}

/* ------------- test 3: a stalled consumer back-pressures, then loses nothing ------------- */

static void make_numbered(unsigned char *v, uint32_t i)
{
    memcpy(v, &i, sizeof(i));
    for (int k = 4; k < 100; k++)
        v[k] = (unsigned char)(i * 31 + (uint32_t)k);
}

static void test_backpressure(void)
{
    struct sb_bus *bus = open_bus(4096, 16 * 1024);
    CHECK_EQ(sb_topic_create(bus, "slow", 1), 0);
    struct sb_consumer *c;
    CHECK_EQ(sb_subscribe(bus, "slow", SB_OFFSET_END, &c), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    unsigned char v[100];
    uint32_t published = 0;
    /* Publish until the bus pushes back; bounded: rings and partition memory are small. */
    int64_t start = test_now_ms();
    for (;;) {
        make_numbered(v, published);
        int rc = sb_publish(p, "slow", "k", 1, v, sizeof(v));
        if (rc == -EAGAIN) {
            /* Give the shard time to move what it can; when it still cannot take everything
             * and the ring is still full, the consumer is holding everyone back. */
            if (sb_producer_flush(p, 50) == -ETIMEDOUT) {
                rc = sb_publish(p, "slow", "k", 1, v, sizeof(v));
                if (rc == -EAGAIN)
                    break;
                CHECK_EQ(rc, 0);
                published++;
            }
            continue;
        }
        CHECK_EQ(rc, 0);
        published++;
        CHECK(published < 100000);
        CHECK(test_now_ms() - start < 20000);
    }
    make_numbered(v, published);
    CHECK_EQ(sb_publish(p, "slow", "k", 1, v, sizeof(v)), -EAGAIN);
    CHECK(published > 10);
    /* The consumer resumes: everything, in order, bytes equal; the producer continues. */
    uint32_t received = 0;
    const uint32_t total = published + 5000;
    struct sb_event evs[32];
    start = test_now_ms();
    while (received < total) {
        while (published < total) {
            make_numbered(v, published);
            if (sb_publish(p, "slow", "k", 1, v, sizeof(v)) != 0)
                break;
            published++;
        }
        int n = sb_poll(c, evs, 32, 10);
        CHECK(n >= 0);
        for (int i = 0; i < n; i++) {
            unsigned char expect[100];
            make_numbered(expect, received);
            CHECK_EQ(evs[i].offset, received);
            CHECK_EQ(evs[i].value_len, 100);
            CHECK_MEM(evs[i].value, expect, 100);
            CHECK(evs[i].key_len == 1 && !memcmp(evs[i].key, "k", 1));
            received++;
        }
        CHECK(test_now_ms() - start < 30000);
    }
    CHECK_EQ(sb_producer_flush(p, 5000), 0);
    sb_producer_close(p);
    sb_consumer_close(c);
    CHECK_EQ(sb_bus_close(bus), 0);
    printf("backpressure: stalled after %u events, then all %u delivered in order\n",
           total - 5000, total);
}

/* ---------------- test 4: replay from the beginning, an offset, the future ---------------- */

static void expect_offsets(struct sb_consumer *c, int64_t from, int64_t to)
{
    struct sb_event evs[16];
    int64_t next = from;
    int64_t start = test_now_ms();
    while (next < to) {
        int n = sb_poll(c, evs, 16, 100);
        CHECK(n >= 0);
        for (int i = 0; i < n; i++) {
            CHECK_EQ(evs[i].offset, next);
            char want[32];
            int len = sprintf(want, "event-%lld", (long long)next);
            CHECK_EQ(evs[i].value_len, len);
            CHECK_MEM(evs[i].value, want, (size_t)len);
            next++;
        }
        CHECK(test_now_ms() - start < 20000);
    }
    CHECK_EQ(sb_poll(c, evs, 16, 20), 0);
}

static void publish_numbered(struct sb_producer *p, int64_t from, int64_t to)
{
    for (int64_t i = from; i < to; i++) {
        char v[32];
        int len = sprintf(v, "event-%lld", (long long)i);
        CHECK_EQ(sb_publish_to(p, "replay", 0, NULL, 0, v, (size_t)len), 0);
    }
    CHECK_EQ(sb_producer_flush(p, 10000), 0);
}

static void test_replay(void)
{
    struct sb_bus *bus = open_bus(0, 0);
    CHECK_EQ(sb_topic_create(bus, "replay", 1), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    publish_numbered(p, 0, 100);
    struct sb_consumer *begin, *mid, *end, *future;
    CHECK_EQ(sb_subscribe(bus, "replay", SB_OFFSET_BEGINNING, &begin), 0);
    CHECK_EQ(sb_subscribe(bus, "replay", 42, &mid), 0);
    CHECK_EQ(sb_subscribe(bus, "replay", SB_OFFSET_END, &end), 0);
    CHECK_EQ(sb_subscribe(bus, "replay", 150, &future), 0);
    expect_offsets(begin, 0, 100);
    expect_offsets(mid, 42, 100);
    publish_numbered(p, 100, 200);
    expect_offsets(begin, 100, 200);
    expect_offsets(mid, 100, 200);
    expect_offsets(end, 100, 200);
    expect_offsets(future, 150, 200);
    sb_consumer_close(begin);
    sb_consumer_close(mid);
    sb_consumer_close(end);
    sb_consumer_close(future);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);
    printf("replay: beginning, offset 42, end and offset 150 all exact\n");
}

/* ---------------------------- test 5: every error return ---------------------------- */

struct handler_errors {
    struct sb_bus *bus;
    _Atomic int checked;
};

static void on_error_probe(struct sb_shard *shard, const struct sb_event *ev, void *ctx)
{
    struct handler_errors *he = ctx;
    (void)ev;
    struct sb_consumer *c;
    struct sb_producer *p;
    CHECK_EQ(sb_subscribe(he->bus, "errors", SB_OFFSET_END, &c), -EDEADLK);
    CHECK_EQ(sb_handler_add(he->bus, "errors", on_error_probe, he), -EDEADLK);
    CHECK_EQ(sb_producer_open(he->bus, &p), -EDEADLK);
    CHECK_EQ(sb_bus_close(he->bus), -EDEADLK);
    CHECK_EQ(sb_shard_publish(shard, "no-such-topic", NULL, 0, "x", 1), -ENOENT);
    CHECK_EQ(sb_shard_publish(shard, "errors", NULL, 3, "x", 1), -EINVAL);
    static unsigned char big[1 << 20];
    CHECK_EQ(sb_shard_publish(shard, "errors", NULL, 0, big, sizeof(big)), -EMSGSIZE);
    /* Release pairs with the main thread's acquire load. */
    atomic_fetch_add_explicit(&he->checked, 1, memory_order_release);
}

static void test_errors(void)
{
    struct sb_config cfg;
    struct sb_bus *bus = NULL;
    sb_config_init(&cfg);
    cfg.shards = 2;
    cfg.data_dir = "/tmp/shardbus-never-created";
    cfg.durability = (enum sb_durability)7;
    CHECK_EQ(sb_bus_open(&cfg, &bus), -EINVAL);
    cfg.durability = SB_DURABILITY_BATCH;
    cfg.write_buffer_bytes = 3 << 20; /* not a power of two */
    CHECK_EQ(sb_bus_open(&cfg, &bus), -EINVAL);
    cfg.write_buffer_bytes = 16 << 20;
    cfg.data_dir = NULL;
    cfg.ring_bytes = 5000;
    CHECK_EQ(sb_bus_open(&cfg, &bus), -EINVAL);
    cfg.ring_bytes = 2048;
    CHECK_EQ(sb_bus_open(&cfg, &bus), -EINVAL);
    cfg.ring_bytes = 1 << 20;
    int bad_cpus[2] = {0, 100000};
    cfg.cpus = bad_cpus;
    CHECK_EQ(sb_bus_open(&cfg, &bus), -EINVAL);
    cfg.cpus = NULL;
    cfg.max_event_bytes = 1 << 30;
    CHECK_EQ(sb_bus_open(&cfg, &bus), -EINVAL);
    CHECK_EQ(sb_bus_open(NULL, &bus), -EINVAL);
    CHECK(bus == NULL);

    bus = open_bus(0, 64 * 1024);
    char name[300];
    CHECK_EQ(sb_topic_create(bus, "", 1), -EINVAL);
    CHECK_EQ(sb_topic_create(bus, "has space", 1), -EINVAL);
    CHECK_EQ(sb_topic_create(bus, "slash/", 1), -EINVAL);
    CHECK_EQ(sb_topic_create(bus, ".", 1), -EINVAL);
    CHECK_EQ(sb_topic_create(bus, "..", 1), -EINVAL);
    CHECK_EQ(sb_topic_create(bus, NULL, 1), -EINVAL);
    memset(name, 'a', 250);
    name[250] = 0;
    CHECK_EQ(sb_topic_create(bus, name, 1), -EINVAL);
    name[249] = 0;
    CHECK_EQ(sb_topic_create(bus, name, 1), 0);
    CHECK_EQ(sb_topic_partitions(bus, name), 1);
    CHECK_EQ(sb_topic_create(bus, "errors", 0), -EINVAL);
    CHECK_EQ(sb_topic_create(bus, "errors", 2), 0);
    CHECK_EQ(sb_topic_create(bus, "errors", 2), -EEXIST);
    CHECK_EQ(sb_topic_create(bus, "Valid.name_with-all", 1), 0);
    CHECK_EQ(sb_topic_partitions(bus, "missing"), -ENOENT);
    /* Listing: creation order, counts beyond max, bad arguments. */
    struct sb_topic_info info[4];
    CHECK_EQ(sb_topic_list(bus, info, 4), 3);
    CHECK_EQ(strlen(info[0].name), 249);
    CHECK(!strcmp(info[1].name, "errors") && info[1].partitions == 2);
    CHECK(!strcmp(info[2].name, "Valid.name_with-all") && info[2].partitions == 1);
    CHECK(info[1].config.retention_bytes == -1 && info[1].config.retention_ms == -1);
    CHECK_EQ(sb_topic_list(bus, info, 1), 3);
    CHECK_EQ(sb_topic_list(bus, NULL, 0), 3);
    CHECK_EQ(sb_topic_list(bus, NULL, 2), -EINVAL);
    CHECK_EQ(sb_topic_list(NULL, info, 4), -EINVAL);

    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    CHECK_EQ(sb_publish(p, "missing", NULL, 0, "x", 1), -ENOENT);
    CHECK_EQ(sb_publish(p, "errors", NULL, 1, "x", 1), -EINVAL);
    CHECK_EQ(sb_publish(p, "errors", "k", 1, NULL, 1), -EINVAL);
    CHECK_EQ(sb_publish(NULL, "errors", "k", 1, "x", 1), -EINVAL);
    CHECK_EQ(sb_publish(p, NULL, "k", 1, "x", 1), -EINVAL);
    CHECK_EQ(sb_publish_to(p, "errors", 2, NULL, 0, "x", 1), -EINVAL);
    size_t max = bus->max_event_bytes;
    unsigned char *big = calloc(1, max + 1);
    CHECK(big);
    CHECK_EQ(sb_publish(p, "errors", NULL, 0, big, max + 1), -EMSGSIZE);
    CHECK_EQ(sb_publish(p, "errors", big, 1, big, max), -EMSGSIZE);
    CHECK_EQ(sb_publish(p, "errors", NULL, 0, big, max), 0); /* the largest fits */
    CHECK_EQ(sb_producer_flush(p, 10000), 0); /* appended before the subscription below */
    /* A null key, an empty key, a null value: all distinct and preserved. */
    struct sb_consumer *c;
    CHECK_EQ(sb_subscribe(bus, "errors", SB_OFFSET_END, &c), 0);
    CHECK_EQ(sb_publish_to(p, "errors", 1, "", 0, NULL, 0), 0);
    struct sb_event ev;
    CHECK_EQ(sb_poll(c, &ev, 1, 5000), 1);
    CHECK(ev.key != NULL && ev.key_len == 0 && ev.value == NULL && ev.value_len == 0);
    CHECK_EQ(ev.partition, 1);

    struct sb_consumer *c2;
    CHECK_EQ(sb_subscribe(bus, "missing", SB_OFFSET_END, &c2), -ENOENT);
    CHECK_EQ(sb_subscribe(bus, "errors", -3, &c2), -EINVAL);
    CHECK_EQ(sb_poll(c, &ev, 0, 0), -EINVAL);
    CHECK_EQ(sb_poll(c, NULL, 1, 0), -EINVAL);
    CHECK_EQ(sb_poll(c, &ev, 1, 0), 0);
    CHECK_EQ(sb_poll(c, &ev, 1, 30), 0); /* times out */
    CHECK_EQ(sb_handler_add(bus, "missing", on_error_probe, NULL), -ENOENT);
    CHECK_EQ(sb_handler_add(bus, "errors", NULL, NULL), -EINVAL);
    CHECK_EQ(sb_shard_publish(bus->shards[0], "errors", NULL, 0, "x", 1), -EPERM);

    /* An absolute offset that partition memory no longer holds: -ERANGE. Partition 0 keeps
     * 64 KiB; 200 KiB through it (read by c, which holds nothing back once it has read)
     * pushes offset 0 out. */
    for (int i = 0; i < 200; i++)
        while (sb_publish_to(p, "errors", 0, NULL, 0, big, 1000) == -EAGAIN)
            while (sb_poll(c, &ev, 1, 0) == 1)
                ;
    int64_t flush_start = test_now_ms();
    while (sb_producer_flush(p, 10) == -ETIMEDOUT) {
        while (sb_poll(c, &ev, 1, 0) == 1)
            ;
        CHECK(test_now_ms() - flush_start < 20000);
    }
    CHECK_EQ(sb_subscribe(bus, "errors", 0, &c2), -ERANGE);

    /* Closing the bus with a producer or consumer open is refused, and changes nothing. */
    CHECK_EQ(sb_bus_close(bus), -EBUSY);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), -EBUSY);
    sb_consumer_close(c);

    /* Inside a handler: the blocking calls refuse with -EDEADLK. */
    struct handler_errors he = {bus, 0};
    CHECK_EQ(sb_handler_add(bus, "errors", on_error_probe, &he), 0);
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    CHECK_EQ(sb_publish(p, "errors", NULL, 0, "go", 2), 0);
    CHECK_EQ(sb_producer_flush(p, 10000), 0);
    /* Acquire pairs with the handler's release increment. */
    CHECK_EQ(atomic_load_explicit(&he.checked, memory_order_acquire), 1);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);
    CHECK_EQ(sb_bus_close(NULL), -EINVAL);
    free(big);
    printf("errors: every documented error return seen\n");
}

/* ------------------------- test 6: idle shards park, not spin ------------------------- */

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
           ru.ru_stime.tv_usec / 1e6;
}

static void test_idle_parks(void)
{
    struct sb_bus *bus = open_bus(0, 0);
    CHECK_EQ(sb_topic_create(bus, "idle", 2), 0);
    struct sb_consumer *c;
    CHECK_EQ(sb_subscribe(bus, "idle", SB_OFFSET_END, &c), 0);
    struct timespec pause = {0, 50 * 1000000};
    nanosleep(&pause, NULL);
    double before = cpu_seconds();
    struct timespec idle = {0, 500 * 1000000};
    nanosleep(&idle, NULL);
    double used = cpu_seconds() - before;
    /* Two spinning shards would use ~1 s of CPU in 0.5 s. Parked, they use next to nothing;
     * the bound is loose for noisy shared machines and sanitizer builds. */
    if (used > 0.25) {
        fprintf(stderr, "idle bus used %.3f s of CPU in 0.5 s\n", used);
        abort();
    }
    /* And a parked shard wakes for the next event, which a sleeping consumer receives. */
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    CHECK_EQ(sb_publish(p, "idle", "wake", 4, "up", 2), 0);
    struct sb_event ev;
    CHECK_EQ(sb_poll(c, &ev, 1, 10000), 1);
    CHECK(ev.value_len == 2 && !memcmp(ev.value, "up", 2));
    sb_producer_close(p);
    sb_consumer_close(c);
    CHECK_EQ(sb_bus_close(bus), 0);
    printf("idle: %.3f s of CPU in 0.5 s idle; woke for the next event\n", used);
}

/*
 * Every publish to a parked shard wakes it. With idle_spin_us 0 each shard parks as soon as it
 * runs out of work; the producer publishes one event at a time and waits for it at the
 * consumer before the next, and some rounds pause a few microseconds first, so publishes meet
 * the shards at every stage of parking (about to park, re-checking, asleep). Producers wake
 * their shard without a full barrier when the process has membarrier(2) (park.h), or with one
 * (@full_barrier, sb_config.full_barrier_wakeups): a lost wake-up leaves the event
 * undelivered, and sb_poll() returns 0 after 10 s.
 */
static void run_wakeups(int full_barrier)
{
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = 2;
    cfg.idle_spin_us = 0;
    cfg.full_barrier_wakeups = full_barrier;
    struct sb_bus *bus = NULL;
    CHECK_EQ(sb_bus_open(&cfg, &bus), 0);
    CHECK_EQ(sb_topic_create(bus, "wake", 2), 0);
    struct sb_consumer *c;
    CHECK_EQ(sb_subscribe(bus, "wake", SB_OFFSET_END, &c), 0);
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open(bus, &p), 0);
    const unsigned rounds = 20000;
    for (unsigned i = 0; i < rounds; i++) {
        char value[16];
        const int len = snprintf(value, sizeof(value), "w%u", i);
        publish_retry(p, "wake", NULL, 0, value, (size_t)len); /* round robin: both shards */
        struct sb_event ev;
        const int n = sb_poll(c, &ev, 1, 10000);
        if (n != 1) {
            fprintf(stderr,
                    "event %u of %u not delivered within 10 s (sb_poll: %d): a lost "
                    "wake-up\n",
                    i, rounds, n);
            abort();
        }
        CHECK(ev.value_len == (size_t)len && !memcmp(ev.value, value, (size_t)len));
        CHECK_EQ(ev.partition, i % 2);
        if (i % 3 == 1) {
            struct timespec gap = {0, (long)(test_mix64(i) % 50) * 1000};
            nanosleep(&gap, NULL);
        }
    }
    sb_producer_close(p);
    sb_consumer_close(c);
    CHECK_EQ(sb_bus_close(bus), 0);
    printf("wakeups (%s): %u events, each published to a shard that parks at once, each "
           "delivered in order\n",
           full_barrier ? "full barrier per publish" : "membarrier when a shard parks", rounds);
}

static void test_wakeups(void)
{
    run_wakeups(0);
    run_wakeups(1);
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    struct {
        const char *name;
        void (*fn)(void);
    } tests[] = {
        {"workload", test_workload},
        {"close", test_close_drains},
        {"backpressure", test_backpressure},
        {"replay", test_replay},
        {"errors", test_errors},
        {"idle", test_idle_parks},
        {"wakeups", test_wakeups},
    };
    for (size_t i = 0; i < sizeof(tests) / sizeof(tests[0]); i++)
        if (!only || !strcmp(only, tests[i].name))
            tests[i].fn();
    printf("test_bus: all passed\n");
    return 0;
}
