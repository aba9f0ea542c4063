/*
 * test_acks.c - per-event acknowledgements (sb_producer_open_with() with an ack callback,
 * sb_publish_with(), sb_producer_poll()):
 *  - memory only and under every durability: every event's callback runs exactly once, with
 *    error 0, its opaque, in publish order per partition, offsets consecutive per partition;
 *    a consumer reading the topic from the beginning sees each event, bytes equal, at exactly
 *    the offset its callback reported. Small rings, and polling only when sb_publish_with()
 *    says -EAGAIN, so the shards wait for room for acknowledgements (back-pressure);
 *  - events of a topic deleted while they travel: each settled exactly once, per partition a
 *    prefix written (consecutive offsets) and the rest failed with -ENOENT;
 *  - what a callback may and may not call (-EDEADLK), and that plain sb_publish() events get
 *    a callback with a NULL opaque.
 * (The ENOSPC errors are checked in test_enospc, the crash in test_crash.)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include <shardbus.h>

#include "check.h"
#include "test_util.h"

#define EVENTS 6000
#define PARTITIONS 3

static size_t make_value(uint64_t i, unsigned char *v)
{
    size_t len = 8 + test_mix64(i) % 200;
    memcpy(v, &i, 8);
    for (size_t k = 8; k < len; k++)
        v[k] = (unsigned char)test_mix64(i * 977 + k);
    return len;
}

struct acked {
    int calls;
    int error;
    uint32_t partition;
    int64_t offset;
};

struct ack_state {
    struct acked ev[EVENTS];
    int64_t next_offset[PARTITIONS]; /* next offset a success of the partition must have */
    int64_t last_index[PARTITIONS];  /* publish order: event indexes rise per partition */
    int failed_seen[PARTITIONS];     /* a failure was seen: no success may follow */
    uint64_t null_opaques;
    uint64_t calls;
    struct sb_producer *p;           /* for the reentrancy checks */
    const char *topic;
};

static void on_ack(void *ctx, const struct sb_ack *ack)
{
    struct ack_state *st = ctx;
    st->calls++;
    CHECK(ack->partition < PARTITIONS);
    CHECK(!strcmp(ack->topic, st->topic));
    /* Inside the callback: no poll or flush. */
    CHECK_EQ(sb_producer_poll(st->p, 0), -EDEADLK);
    CHECK_EQ(sb_producer_flush(st->p, 0), -EDEADLK);
    if (ack->error == 0) {
        CHECK(!st->failed_seen[ack->partition]);
        CHECK_EQ(ack->offset, st->next_offset[ack->partition]);
        st->next_offset[ack->partition]++;
    } else {
        CHECK_EQ(ack->offset, -1);
        st->failed_seen[ack->partition] = 1;
    }
    if (!ack->opaque) {
        st->null_opaques++;
        return;
    }
    uint64_t i = (uint64_t)(uintptr_t)ack->opaque - 1;
    CHECK(i < EVENTS);
    CHECK((int64_t)i > st->last_index[ack->partition]);
    st->last_index[ack->partition] = (int64_t)i;
    struct acked *a = &st->ev[i];
    CHECK_EQ(a->calls, 0);
    a->calls = 1;
    a->error = ack->error;
    a->partition = ack->partition;
    a->offset = ack->offset;
}

static void state_init(struct ack_state *st, const char *topic)
{
    memset(st, 0, sizeof(*st));
    for (int p = 0; p < PARTITIONS; p++)
        st->last_index[p] = -1;
    st->topic = topic;
}

static struct sb_bus *open_bus(const char *dir, enum sb_durability d)
{
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = 2;
    cfg.data_dir = dir;
    cfg.durability = d;
    cfg.fsync_interval_ms = 10;
    cfg.segment_bytes = 64 * 1024;
    cfg.write_buffer_bytes = 1 << 20;
    cfg.ring_bytes = 16 * 1024; /* 512 acknowledgement records per shard */
    cfg.partition_memory_bytes = 4 << 20;
    struct sb_bus *bus;
    CHECK_EQ(sb_bus_open(&cfg, &bus), 0);
    return bus;
}

static struct sb_producer *open_producer(struct sb_bus *bus, struct ack_state *st)
{
    struct sb_producer_config pc;
    sb_producer_config_init(&pc);
    CHECK(pc.ack_fn == NULL);
    pc.ack_fn = on_ack;
    pc.ack_ctx = st;
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open_with(bus, &pc, &p), 0);
    st->p = p;
    return p;
}

/* Event i: keyed (partition by hash) when i % 3 == 0, else to partition i % PARTITIONS. */
static void publish_one(struct sb_producer *p, const char *topic, uint64_t i, uint64_t *polls)
{
    unsigned char v[256];
    size_t len = make_value(i, v);
    char key[16];
    size_t kl = (size_t)snprintf(key, sizeof(key), "key-%llu", (unsigned long long)(i % 17));
    uint32_t partition = i % 3 == 0 ? SB_PARTITION_ANY : (uint32_t)(i % PARTITIONS);
    int64_t start = test_now_ms();
    int rc;
    while ((rc = sb_publish_with(p, topic, partition, key, kl, v, len,
                                 (void *)(uintptr_t)(i + 1))) == -EAGAIN) {
        /* Only now: the shards wait for room for the acknowledgements. */
        CHECK(sb_producer_poll(p, 1) >= 0);
        (*polls)++;
        CHECK(test_now_ms() - start < 30000);
    }
    CHECK_EQ(rc, 0);
}

static void check_event(const struct sb_event *ev, const struct ack_state *st, uint64_t *seen)
{
    uint64_t i;
    CHECK(ev->value_len >= 8);
    memcpy(&i, ev->value, 8);
    CHECK(i < EVENTS);
    unsigned char v[256];
    size_t len = make_value(i, v);
    CHECK_EQ(ev->value_len, len);
    CHECK_MEM(ev->value, v, len);
    char key[16];
    size_t kl = (size_t)snprintf(key, sizeof(key), "key-%llu", (unsigned long long)(i % 17));
    CHECK_EQ(ev->key_len, kl);
    CHECK_MEM(ev->key, key, kl);
    /* Exactly where its acknowledgement said. */
    CHECK_EQ(st->ev[i].calls, 1);
    CHECK_EQ(ev->partition, st->ev[i].partition);
    CHECK_EQ(ev->offset, st->ev[i].offset);
    if (i % 3)
        CHECK_EQ(ev->partition, i % PARTITIONS);
    CHECK_EQ(seen[i], 0);
    seen[i] = 1;
}

/* dir NULL: memory only. */
static void test_acks(const char *dir, enum sb_durability d, const char *name)
{
    static struct ack_state st;
    state_init(&st, "orders");
    struct sb_bus *bus = open_bus(dir, d);
    CHECK_EQ(sb_topic_create(bus, "orders", PARTITIONS), 0);
    struct sb_producer *p = open_producer(bus, &st);
    /* A producer without a callback cannot poll. */
    struct sb_producer *plain;
    CHECK_EQ(sb_producer_open(bus, &plain), 0);
    CHECK_EQ(sb_producer_poll(plain, 0), -EINVAL);
    sb_producer_close(plain);

    uint64_t polls = 0;
    for (uint64_t i = 0; i < EVENTS; i++)
        publish_one(p, "orders", i, &polls);
    /* Three without an opaque. */
    for (int k = 0; k < 3; k++) {
        int rc;
        while ((rc = sb_publish(p, "orders", "x", 1, "no-opaque", 9)) == -EAGAIN)
            CHECK(sb_producer_poll(p, 1) >= 0);
        CHECK_EQ(rc, 0);
    }
    CHECK_EQ(sb_producer_flush(p, 30000), 0);
    CHECK_EQ(st.calls, EVENTS + 3);
    CHECK_EQ(st.null_opaques, 3);
    for (uint64_t i = 0; i < EVENTS; i++) {
        CHECK_EQ(st.ev[i].calls, 1);
        CHECK_EQ(st.ev[i].error, 0);
    }
    /* Nothing more comes. */
    CHECK_EQ(sb_producer_poll(p, 0), 0);
    CHECK_EQ(sb_producer_poll(p, -1), 0); /* nothing unsettled: returns at once */
    struct sb_producer_stats stats;
    sb_producer_get_stats(p, &stats);
    CHECK_EQ(stats.published, EVENTS + 3);
    CHECK_EQ(stats.acknowledged, EVENTS + 3);
    CHECK_EQ(stats.failed, 0);
    uint64_t total = 0;
    for (int q = 0; q < PARTITIONS; q++)
        total += (uint64_t)st.next_offset[q];
    CHECK_EQ(total, EVENTS + 3);

    /* A consumer from the beginning: each event where its acknowledgement said. */
    struct sb_consumer *c;
    CHECK_EQ(sb_subscribe(bus, "orders", SB_OFFSET_BEGINNING, &c), 0);
    static uint64_t seen[EVENTS];
    memset(seen, 0, sizeof(seen));
    uint64_t got = 0, others = 0;
    int64_t next[PARTITIONS] = {0};
    struct sb_event evs[64];
    int64_t start = test_now_ms();
    while (got + others < EVENTS + 3) {
        int n = sb_poll(c, evs, 64, 100);
        CHECK(n >= 0);
        for (int k = 0; k < n; k++) {
            CHECK_EQ(evs[k].offset, next[evs[k].partition]);
            next[evs[k].partition]++;
            if (evs[k].value_len == 9 && !memcmp(evs[k].value, "no-opaque", 9)) {
                others++;
                continue;
            }
            check_event(&evs[k], &st, seen);
            got++;
        }
        CHECK(test_now_ms() - start < 30000);
    }
    CHECK_EQ(sb_poll(c, evs, 64, 50), 0);
    CHECK_EQ(others, 3);
    sb_consumer_close(c);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);
    printf("acks %s: %d events acknowledged once each, in order, at the offsets a consumer "
           "reads (%llu polls on -EAGAIN)\n",
           name, EVENTS, (unsigned long long)polls);
}

/*
 * A topic deleted while its events travel: the producer does not poll, so its shard stops
 * taking events once the acknowledgement ring is full (events alternate between partitions 0
 * and 2, both on shard 0 for the bus's first topic, so no record merges two events), and
 * events wait in the producer's ring until publishing gives -EAGAIN for good. The topic is
 * deleted then: the events still waiting fail with -ENOENT, each event settles once.
 */
static void test_deleted_topic(void)
{
    static struct ack_state st;
    state_init(&st, "doomed");
    struct sb_bus *bus = open_bus(NULL, SB_DURABILITY_NONE);
    CHECK_EQ(sb_topic_create(bus, "doomed", PARTITIONS), 0);
    struct sb_producer *p = open_producer(bus, &st);
    uint64_t published = 0;
    int64_t again_since = 0;
    while (published < EVENTS) {
        unsigned char v[256];
        size_t len = make_value(published, v);
        int rc = sb_publish_with(p, "doomed", (uint32_t)(published % 2) * 2, "k", 1, v, len,
                                 (void *)(uintptr_t)(published + 1));
        if (rc == 0) {
            published++;
            again_since = 0;
            continue;
        }
        CHECK_EQ(rc, -EAGAIN);
        if (!again_since)
            again_since = test_now_ms();
        else if (test_now_ms() - again_since > 200)
            break; /* the shard waits for us to poll */
        sched_yield();
    }
    CHECK(published < EVENTS);
    CHECK_EQ(st.calls, 0); /* nothing polled yet */
    CHECK_EQ(sb_topic_delete(bus, "doomed"), 0);
    CHECK_EQ(sb_producer_flush(p, 30000), -ENOENT);
    CHECK_EQ(st.calls, published);
    uint64_t failed = 0;
    for (uint64_t i = 0; i < published; i++) {
        CHECK_EQ(st.ev[i].calls, 1);
        CHECK(st.ev[i].error == 0 || st.ev[i].error == -ENOENT);
        failed += st.ev[i].error != 0;
    }
    CHECK(failed > 0 && failed < published);
    struct sb_producer_stats stats;
    sb_producer_get_stats(p, &stats);
    CHECK_EQ(stats.failed, failed);
    CHECK_EQ(stats.acknowledged, published - failed);
    CHECK_EQ(stats.last_error, -ENOENT);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);
    printf("acks of a deleted topic: %llu written, %llu failed with ENOENT, each once\n",
           (unsigned long long)(published - failed), (unsigned long long)failed);
}

static void make_dir(char *path)
{
    test_make_dir(path, "/tmp/sb-acks-XXXXXX");
}

int main(void)
{
    char dir[64];
    test_acks(NULL, SB_DURABILITY_NONE, "memory only");
    const struct {
        enum sb_durability d;
        const char *name;
    } modes[] = {{SB_DURABILITY_NONE, "NONE"},
                 {SB_DURABILITY_BATCH, "BATCH"},
                 {SB_DURABILITY_INTERVAL, "INTERVAL"}};
    for (size_t m = 0; m < sizeof(modes) / sizeof(modes[0]); m++) {
        make_dir(dir);
        test_acks(dir, modes[m].d, modes[m].name);
        test_remove_dir(dir);
    }
    test_deleted_topic();
    printf("test_acks: all passed\n");
    return 0;
}
