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
 *    most of it compressed) reads the same again.
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

/* Message i: its key and value (compressible text of varied length). */
static size_t make_key(long i, char *buf)
{
    return (size_t)sprintf(buf, "key-%06ld", i);
}

static size_t make_value(long i, char *buf)
{
    size_t len = 20 + (size_t)(i * 37 % 300), n = 0;
    while (n < len) {
        int w = snprintf(buf + n, len + 1 - n, "value %ld of the test; ", i);
        if (w <= 0)
            break;
        n += (size_t)w < len - n ? (size_t)w : len - n;
    }
    return len;
}

/* Where the delivery reports put each message: [partition][offset] = message index. */
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
    CHECK(m->offset >= 0 && m->offset < total);
    placed[m->partition][m->offset] = i;
    if (m->offset + 1 > placed_count[m->partition])
        placed_count[m->partition] = m->offset + 1;
    delivered++;
}

/* Checks that the event at (@partition, @offset) is the message the delivery report put there. */
static void check_event(const char *who, uint32_t partition, int64_t offset, const void *key,
                        size_t key_len, const void *value, size_t value_len)
{
    char k[32], v[512];
    CHECK(partition < PARTITIONS && offset >= 0 && offset < placed_count[partition]);
    long i = placed[partition][offset];
    size_t kl = make_key(i, k), vl = make_value(i, v);
    if (key_len != kl || value_len != vl || memcmp(key, k, kl) || memcmp(value, v, vl)) {
        fprintf(stderr, "%s: partition %u offset %lld: not message %ld's bytes\n", who,
                partition, (long long)offset, i);
        exit(1);
    }
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
    if (ev->partition >= PARTITIONS || ev->offset != handled_next[ev->partition] ||
        ev->offset >= total) {
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
    handled_next[ev->partition]++;
    /* Release pairs with the main thread's acquire load: the copies above are visible once
     * it sees the count. */
    atomic_fetch_add_explicit(&handled_total, 1, memory_order_release);
}

/* ---- consumers ----------------------------------------------------------------------------- */

/* Reads until every message arrived (or 60 s), checking each against the delivery reports. */
static void consume_all(struct sb_consumer *c, const char *who)
{
    int64_t next[PARTITIONS] = {0};
    long got = 0;
    time_t deadline = time(NULL) + 60;
    struct sb_event evs[64];
    while (got < total) {
        int n = sb_poll(c, evs, 64, 200);
        CHECK(n >= 0);
        for (int k = 0; k < n; k++) {
            const struct sb_event *ev = &evs[k];
            CHECK(ev->partition < PARTITIONS);
            if (ev->offset != next[ev->partition]) {
                fprintf(stderr, "%s: partition %u: offset %lld, expected %lld\n", who,
                        ev->partition, (long long)ev->offset,
                        (long long)next[ev->partition]);
                exit(1);
            }
            next[ev->partition]++;
            check_event(who, ev->partition, ev->offset, ev->key, ev->key_len, ev->value,
                        ev->value_len);
            got++;
        }
        if (time(NULL) > deadline) {
            fprintf(stderr, "%s: %ld of %ld events after 60 s\n", who, got, total);
            exit(1);
        }
    }
    CHECK_EQ(sb_poll(c, evs, 64, 100), 0); /* nothing more */
    printf("%s: %ld events, every one in order and bytes equal\n", who, got);
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

static void produce(uint16_t port, const char *codec, long first, long count)
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
    char k[32], v[512];
    for (long i = first; i < first + count; i++) {
        size_t kl = make_key(i, k), vl = make_value(i, v);
        rd_kafka_resp_err_t e;
        while ((e = rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(TOPIC),
                                      RD_KAFKA_V_PARTITION((int32_t)(i % PARTITIONS)),
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
    CHECK_EQ(delivered, first + count);
}

int main(void)
{
    per_codec = sbt_scaled(2000, 50);
    total = per_codec * (long)CODECS;
    for (int p = 0; p < PARTITIONS; p++) {
        placed[p] = calloc((size_t)total, sizeof(long));
        handled[p] = calloc((size_t)total, sizeof(struct seen));
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
    struct sb_bus *bus;
    CHECK_EQ(sb_bus_open(&cfg, &bus), 0);
    CHECK_EQ(sb_topic_create(bus, TOPIC, PARTITIONS), 0);
    CHECK_EQ(sb_handler_add(bus, TOPIC, handler, NULL), 0);
    struct sb_consumer *live;
    CHECK_EQ(sb_subscribe(bus, TOPIC, SB_OFFSET_BEGINNING, &live), 0);

    struct sb_server_config scfg;
    sb_server_config_init(&scfg);
    scfg.listen_port = free_port();
    struct sb_server *srv;
    CHECK_EQ(sb_server_start(bus, &scfg, &srv), 0);

    for (size_t c = 0; c < CODECS; c++)
        produce(scfg.listen_port, codecs[c], (long)c * per_codec, per_codec);
    CHECK_EQ(placed_count[0] + placed_count[1], total);

    consume_all(live, "live consumer");

    /* Acquire pairs with the handler's release increment. */
    time_t deadline = time(NULL) + 60;
    while (atomic_load_explicit(&handled_total, memory_order_acquire) < total) {
        CHECK(time(NULL) < deadline);
        usleep(1000);
    }
    CHECK_EQ(atomic_load_explicit(&handler_errors, memory_order_relaxed), 0);
    for (int p = 0; p < PARTITIONS; p++) {
        CHECK_EQ(handled_next[p], placed_count[p]);
        for (int64_t o = 0; o < placed_count[p]; o++) {
            struct seen *s = &handled[p][o];
            check_event("handler", (uint32_t)p, o, s->key, s->key_len, s->value, s->value_len);
            free(s->key);
            free(s->value);
        }
    }
    printf("handler: %ld events, every one once, in order and bytes equal\n", total);

    struct sb_consumer *late;
    CHECK_EQ(sb_subscribe(bus, TOPIC, SB_OFFSET_BEGINNING, &late), 0);
    consume_all(late, "consumer from the beginning afterwards (disk)");

    CHECK_EQ(sb_server_stop(srv), 0);
    sb_consumer_close(live);
    sb_consumer_close(late);
    CHECK_EQ(sb_bus_close(bus), 0);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    CHECK(system(cmd) == 0);
    for (int p = 0; p < PARTITIONS; p++) {
        free(placed[p]);
        free(handled[p]);
    }
    printf("test_embedded_kafka: all passed\n");
    return 0;
}
