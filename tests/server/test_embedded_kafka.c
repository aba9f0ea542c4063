/*
 * test_embedded_kafka.c - events a Kafka client produces to a server embedded in the process
 * (sb_server_start() on the program's own bus) reach that program's handlers and consumers
 * exactly as events published through the C API do, under every compression codec.
 *
 * A bus with a data dir, 2 shards, a topic of 2 partitions and a small memory window (64 KiB,
 * so that readers also fall behind it and read compressed batches from disk), a handler on the
 * topic and a consumer subscribed from the beginning; then a librdkafka producer sends N
 * messages under each codec (none, gzip, snappy, lz4, zstd) to alternating partitions, in
 * batches (linger 5 ms). Checked:
 *  - the handler saw every message once, per partition in offset order from 0, key and value
 *    bytes equal to what the delivery report says sits at that offset, on the shard thread;
 *  - the live consumer read the same, every event in order, bytes equal;
 *  - a second consumer subscribed from the beginning afterwards (everything is on disk by now,
 *    most of it compressed) reads the same again;
 *  - then one record of 600 KB (more than the memory window and a consumer's ring can hold; the
 *    server accepts up to 1 MiB) between two small ones in partition 0: it is reported through
 *    log_fn and skipped for the handler and the consumers, which go on with the next record
 *    (before, the consumer stopped there for good).
 *
 * Usage: test_embedded_kafka   (SB_TEST_SCALE shrinks N = 2,000 per codec).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "check.h"
#include "server.h"
#include "server_proc.h"
#include "shardbus.h"

#define PARTITIONS 2
#define TOPIC "embedded-kafka"

static const char *const codecs[] = {"none", "gzip", "snappy", "lz4", "zstd"};
#define CODECS (sizeof(codecs) / sizeof(codecs[0]))

static long per_codec, total;
/* How many reports about the oversized record the bus made (log_fn). */
static _Atomic int big_reports;
#define BIG_BYTES (600 * 1024)

/* Message i: its key and value (compressible text of varied length). */
static size_t make_key(long i, char *buf)
{
    return (size_t)sprintf(buf, "key-%06ld", i);
}

static char big_value[BIG_BYTES];

static size_t make_value(long i, char *buf)
{
    if (i == total + 1) { /* the oversized one */
        memcpy(buf, big_value, BIG_BYTES);
        return BIG_BYTES;
    }
    size_t len = 20 + (size_t)(i * 37 % 300), n = 0;
    while (n < len) {
        int w = snprintf(buf + n, len + 1 - n, "value %ld of the test; ", i);
        if (w <= 0)
            break;
        n += (size_t)w < len - n ? (size_t)w : len - n;
    }
    return len;
}

/* Where the delivery reports put each message: [partition][offset] = message index. Message
 * indexes: 0 .. total-1 under the codecs, then total, total+1 (the oversized one) and total+2. */
static long slots;
static long *placed[PARTITIONS];
static long placed_count[PARTITIONS];
static long delivered;

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    long i = (long)(intptr_t)m->_private;
    if (m->err) {
        fprintf(stderr, "delivery of message %ld failed: %s\n", i, rd_kafka_err2str(m->err));
        exit(1);
    }
    CHECK(m->partition >= 0 && m->partition < PARTITIONS);
    CHECK(m->offset >= 0 && m->offset < slots);
    placed[m->partition][m->offset] = i;
    if (m->offset + 1 > placed_count[m->partition])
        placed_count[m->partition] = m->offset + 1;
    delivered++;
}

static char *value_buf; /* BIG_BYTES + 512: main thread only */

/* Checks that the event at (@partition, @offset) is the message the delivery report put there. */
static void check_event(const char *who, uint32_t partition, int64_t offset, const void *key,
                        size_t key_len, const void *value, size_t value_len)
{
    char k[32];
    CHECK(partition < PARTITIONS && offset >= 0 && offset < placed_count[partition]);
    long i = placed[partition][offset];
    size_t kl = make_key(i, k), vl = make_value(i, value_buf);
    if (key_len != kl || value_len != vl || memcmp(key, k, kl) || memcmp(value, value_buf, vl)) {
        fprintf(stderr, "%s: partition %u offset %lld: not message %ld's bytes\n", who,
                partition, (long long)offset, i);
        exit(1);
    }
}

/* The offset the oversized record gets in partition 0 (-1 before phase 2): readers may jump
 * over it, and only over it. Release store by the main thread before producing it; acquire
 * loads by the handler (shard thread). */
static _Atomic int64_t skippable = -1;

/* The next offset a reader of @partition expects after @next: @next, or one past the
 * skippable offset when it stands there. */
static bool offset_ok(uint32_t partition, int64_t next, int64_t offset)
{
    if (offset == next)
        return true;
    /* Acquire pairs with the main thread's release store. */
    int64_t skip = atomic_load_explicit(&skippable, memory_order_acquire);
    return partition == 0 && skip >= 0 && next == skip && offset == skip + 1;
}

/* ---- the handler: runs on the shard owning each partition, keeps copies ---------------- */

struct seen {
    void *key, *value;
    size_t key_len, value_len;
};
static struct seen *handled[PARTITIONS];
static int64_t handled_next[PARTITIONS]; /* written by the owning shard only */
static _Atomic long handled_total;
static _Atomic int handler_errors;

static void handler(struct sb_shard *shard, const struct sb_event *ev, void *ctx)
{
    (void)ctx;
    (void)shard;
    if (ev->partition >= PARTITIONS || ev->offset >= slots ||
        !offset_ok(ev->partition, handled_next[ev->partition], ev->offset)) {
        /* Relaxed: a flag the main thread reads after the acquire below. */
        atomic_fetch_add_explicit(&handler_errors, 1, memory_order_relaxed);
        return;
    }
    struct seen *s = &handled[ev->partition][ev->offset];
    s->key = malloc(ev->key_len + 1);
    s->value = malloc(ev->value_len + 1);
    CHECK(s->key && s->value);
    memcpy(s->key, ev->key, ev->key_len);
    memcpy(s->value, ev->value, ev->value_len);
    s->key_len = ev->key_len;
    s->value_len = ev->value_len;
    handled_next[ev->partition] = ev->offset + 1;
    /* Release pairs with the main thread's acquire load: the copies above are visible once
     * it sees the count. */
    atomic_fetch_add_explicit(&handled_total, 1, memory_order_release);
}

/* Waits until the handler has seen @want events, then checks each one kept since the last
 * call (from offset *from of each partition) against the delivery reports. */
static void check_handled(long want, int64_t from[PARTITIONS])
{
    time_t deadline = time(NULL) + 60;
    /* Acquire pairs with the handler's release increment. */
    while (atomic_load_explicit(&handled_total, memory_order_acquire) < want) {
        CHECK(time(NULL) < deadline);
        usleep(1000);
    }
    /* Relaxed: the handler's increments happen before its release increment of handled_total,
     * which the acquire load above has seen. */
    CHECK_EQ(atomic_load_explicit(&handler_errors, memory_order_relaxed), 0);
    long n = 0;
    for (int p = 0; p < PARTITIONS; p++) {
        CHECK_EQ(handled_next[p], placed_count[p]);
        for (int64_t o = from[p]; o < placed_count[p]; o++) {
            struct seen *s = &handled[p][o];
            if (!s->key) {
                /* Relaxed: this thread stored it. */
                CHECK(p == 0 && o == atomic_load_explicit(&skippable, memory_order_relaxed));
                continue;
            }
            check_event("handler", (uint32_t)p, o, s->key, s->key_len, s->value, s->value_len);
            free(s->key);
            free(s->value);
            s->key = NULL;
            n++;
        }
        from[p] = placed_count[p];
    }
    printf("handler: %ld more events, every one once, in order and bytes equal\n", n);
}

/* ---- consumers ----------------------------------------------------------------------------- */

struct reader {
    struct sb_consumer *c;
    int64_t next[PARTITIONS];
    long got;
};

/* Reads until @r has @want events in all (or 60 s), checking each against the reports. */
static void consume_until(struct reader *r, long want, const char *who)
{
    time_t deadline = time(NULL) + 60;
    struct sb_event evs[64];
    while (r->got < want) {
        int n = sb_poll(r->c, evs, 64, 200);
        CHECK(n >= 0);
        for (int k = 0; k < n; k++) {
            const struct sb_event *ev = &evs[k];
            CHECK(ev->partition < PARTITIONS);
            if (!offset_ok(ev->partition, r->next[ev->partition], ev->offset)) {
                fprintf(stderr, "%s: partition %u: offset %lld, expected %lld\n", who,
                        ev->partition, (long long)ev->offset,
                        (long long)r->next[ev->partition]);
                exit(1);
            }
            r->next[ev->partition] = ev->offset + 1;
            check_event(who, ev->partition, ev->offset, ev->key, ev->key_len, ev->value,
                        ev->value_len);
            r->got++;
        }
        if (time(NULL) > deadline) {
            fprintf(stderr, "%s: %ld of %ld events after 60 s\n", who, r->got, want);
            exit(1);
        }
    }
    CHECK_EQ(sb_poll(r->c, evs, 64, 100), 0); /* nothing more */
    printf("%s: %ld events, every one in order and bytes equal\n", who, r->got);
}

/* log_fn: counts the reports about the oversized record. */
static void on_log(void *ctx, enum sb_log_level level, const char *message)
{
    (void)ctx;
    (void)level;
    if (strstr(message, "is larger than"))
        /* Relaxed: a count read after the readers have moved past the record. */
        atomic_fetch_add_explicit(&big_reports, 1, memory_order_relaxed);
}

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    CHECK(bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
    CHECK(getsockname(fd, (struct sockaddr *)&a, &len) == 0);
    close(fd);
    return ntohs(a.sin_port);
}

/* Produces messages first .. first+count-1 under @codec, to partition i % PARTITIONS, or all
 * to @partition when it is >= 0; every one must be acknowledged. */
static void produce(uint16_t port, const char *codec, long first, long count, int partition)
{
    char err[512], bootstrap[64];
    snprintf(bootstrap, sizeof(bootstrap), "127.0.0.1:%u", port);
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    const char *settings[][2] = {{"bootstrap.servers", bootstrap},
                                 {"compression.codec", codec},
                                 {"linger.ms", "5"},
                                 {"batch.num.messages", "500"},
                                 {"acks", "all"},
                                 {"enable.idempotence", "true"}};
    for (size_t k = 0; k < sizeof(settings) / sizeof(settings[0]); k++)
        CHECK(rd_kafka_conf_set(conf, settings[k][0], settings[k][1], err, sizeof(err)) ==
              RD_KAFKA_CONF_OK);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    CHECK(rk);
    char k[32];
    char *v = malloc(BIG_BYTES + 512);
    CHECK(v);
    const long before = delivered;
    for (long i = first; i < first + count; i++) {
        size_t kl = make_key(i, k), vl = make_value(i, v);
        int32_t part = partition >= 0 ? partition : (int32_t)(i % PARTITIONS);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(part),
                                      RD_KAFKA_V_KEY(k, kl), RD_KAFKA_V_VALUE(v, vl),
                                      RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                                      RD_KAFKA_V_OPAQUE((void *)(intptr_t)i), RD_KAFKA_V_END)) ==
               RD_KAFKA_RESP_ERR__QUEUE_FULL)
            rd_kafka_poll(rk, 10);
        CHECK(e == RD_KAFKA_RESP_ERR_NO_ERROR);
        rd_kafka_poll(rk, 0);
    }
    CHECK(rd_kafka_flush(rk, 60000) == RD_KAFKA_RESP_ERR_NO_ERROR);
    rd_kafka_destroy(rk);
    free(v);
    CHECK_EQ(delivered, before + count);
}

int main(void)
{
    per_codec = sbt_scaled(2000, 50);
    total = per_codec * (long)CODECS;
    slots = total + 3;
    value_buf = malloc(BIG_BYTES + 512);
    CHECK(value_buf);
    for (size_t i = 0; i < BIG_BYTES; i++)
        big_value[i] = (char)('a' + i % 23);
    for (int p = 0; p < PARTITIONS; p++) {
        placed[p] = calloc((size_t)slots, sizeof(long));
        handled[p] = calloc((size_t)slots, sizeof(struct seen));
        CHECK(placed[p] && handled[p]);
    }
    char dir[] = "/tmp/sb-embedded-kafka-XXXXXX";
    CHECK(mkdtemp(dir));

    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = 2;
    cfg.data_dir = dir;
    cfg.durability = SB_DURABILITY_NONE;
    cfg.partition_memory_bytes = 64 * 1024;
    cfg.log_fn = on_log;
    struct sb_bus *bus;
    CHECK_EQ(sb_bus_open(&cfg, &bus), 0);
    CHECK_EQ(sb_topic_create(bus, TOPIC, PARTITIONS), 0);
    CHECK_EQ(sb_handler_add(bus, TOPIC, handler, NULL), 0);
    struct reader live = {0};
    CHECK_EQ(sb_subscribe(bus, TOPIC, SB_OFFSET_BEGINNING, &live.c), 0);

    struct sb_server_config scfg;
    sb_server_config_init(&scfg);
    scfg.listen_port = free_port();
    struct sb_server *srv;
    CHECK_EQ(sb_server_start(bus, &scfg, &srv), 0);

    /* Phase 1: every codec. */
    for (size_t c = 0; c < CODECS; c++)
        produce(scfg.listen_port, codecs[c], (long)c * per_codec, per_codec, -1);
    CHECK_EQ(placed_count[0] + placed_count[1], total);
    consume_until(&live, total, "live consumer");
    int64_t handled_from[PARTITIONS] = {0};
    check_handled(total, handled_from);

    /* Phase 2: a small record, one of 600 KB, a small one, all to partition 0. */
    /* Release pairs with the acquire loads in offset_ok(). */
    atomic_store_explicit(&skippable, placed_count[0] + 1, memory_order_release);
    produce(scfg.listen_port, "none", total, 3, 0);
    /* Relaxed: this thread stored it. */
    CHECK_EQ(placed[0][atomic_load_explicit(&skippable, memory_order_relaxed)], total + 1);
    consume_until(&live, total + 2, "live consumer, past the oversized record");
    check_handled(total + 2, handled_from);

    struct reader late = {0};
    CHECK_EQ(sb_subscribe(bus, TOPIC, SB_OFFSET_BEGINNING, &late.c), 0);
    consume_until(&late, total + 2, "consumer from the beginning afterwards (disk)");
    /* Relaxed: see on_log(). */
    int reports = atomic_load_explicit(&big_reports, memory_order_relaxed);
    CHECK(reports >= 2); /* the handlers' window, and each consumer that skipped it */
    printf("the oversized record was reported %d times and skipped\n", reports);

    CHECK_EQ(sb_server_stop(srv), 0);
    sb_consumer_close(live.c);
    sb_consumer_close(late.c);
    CHECK_EQ(sb_bus_close(bus), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    for (int p = 0; p < PARTITIONS; p++) {
        free(placed[p]);
        free(handled[p]);
    }
    free(value_buf);
    printf("test_embedded_kafka: all passed\n");
    return 0;
}
