/*
 * test_many_connections.c - 25 librdkafka producers and 25 consumers, each its own client and
 * thread, on shardbusd at once: at least 50 TCP connections open together (counted from
 * /proc/net/tcp), every producer writing its own partition of one 25-partition topic while its
 * consumer long-polls that partition from the beginning. Every consumer gets exactly what its
 * producer wrote: offsets 0.., production order, keys, values and headers byte for byte, and
 * nothing more; every delivery report names the offset the consumer finds the message at.
 *
 * Usage: test_many_connections PATH-TO-SHARDBUSD   (exit 77 while the server is not
 * implemented; SB_TEST_SCALE shrinks the 2,000 messages per producer).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <librdkafka/rdkafka.h>

#include "check.h"
#include "server_proc.h"

#define PAIRS 25
#define MAX_VALUE 1000
#define TOPIC "many"

static struct sbt_server srv;
static long per_producer;
static pthread_barrier_t connected, go;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t make_key(int part, long seq, char *buf)
{
    return (size_t)sprintf(buf, "c%02d-%07ld", part, seq);
}

static size_t make_value(int part, long seq, unsigned char *buf)
{
    unsigned long long h = test_mix64((unsigned long long)part << 40 ^ (unsigned long long)seq);
    size_t len = (size_t)(h % (MAX_VALUE + 1)); /* 0 .. MAX_VALUE: empty values too */
    for (size_t i = 0; i < len; i += 8) {
        unsigned long long v = test_mix64(h ^ (i + 1));
        memcpy(buf + i, &v, 8);
    }
    return len;
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s=%s: %s\n", k, v, err);
        abort();
    }
}

static rd_kafka_t *client_new(rd_kafka_type_t type, rd_kafka_conf_t *conf)
{
    set(conf, "bootstrap.servers", srv.bootstrap);
    set(conf, "log_level", "4");
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        abort();
    }
    return rk;
}

/* Connect now (a Metadata round trip) so every client holds its connection at the count. */
static void connect_now(rd_kafka_t *rk, int id)
{
    const struct rd_kafka_metadata *md = NULL;
    rd_kafka_resp_err_t err = rd_kafka_metadata(rk, 0, NULL, &md, 20000);
    if (err) {
        fprintf(stderr, "client %d: Metadata: %s\n", id, rd_kafka_err2str(err));
        abort();
    }
    rd_kafka_metadata_destroy(md);
}

/* ---- producers ----------------------------------------------------------------------- */

struct producer {
    int part;
    pthread_t thread;
    long acked, failed, bad_offset;
};

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct producer *p = opaque;
    long seq = (long)(intptr_t)m->_private;
    if (m->err) {
        if (p->failed++ < 3)
            fprintf(stderr, "producer %d: message %ld failed: %s\n", p->part, seq,
                    rd_kafka_err2str(m->err));
        return;
    }
    /* One producer per partition, in order: its message seq lands at offset seq. */
    if (m->offset != seq || m->partition != p->part) {
        if (p->bad_offset++ < 3)
            fprintf(stderr, "producer %d: message %ld acknowledged at partition %d offset %" PRId64
                            "\n", p->part, seq, (int)m->partition, m->offset);
    }
    p->acked++;
}

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "acks", "all");
    set(conf, "linger.ms", "2");
    set(conf, "max.in.flight.requests.per.connection", "1"); /* order without idempotence */
    set(conf, "message.timeout.ms", "90000");
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_opaque(conf, p);
    rd_kafka_t *rk = client_new(RD_KAFKA_PRODUCER, conf);
    connect_now(rk, p->part);
    pthread_barrier_wait(&connected);
    pthread_barrier_wait(&go);

    char key[32], hdr[16];
    unsigned char value[MAX_VALUE + 8];
    int hlen = sprintf(hdr, "p%d", p->part);
    for (long seq = 0; seq < per_producer; seq++) {
        size_t klen = make_key(p->part, seq, key), vlen = make_value(p->part, seq, value);
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(TOPIC), RD_KAFKA_V_PARTITION(p->part),
                RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE(value, vlen),
                RD_KAFKA_V_HEADER("producer", hdr, hlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE((void *)(intptr_t)seq), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 10);
                continue;
            }
            CHECK(err == RD_KAFKA_RESP_ERR_NO_ERROR);
            break;
        }
        if (seq % 64 == 63)
            rd_kafka_poll(rk, 1); /* spread the writes out a little */
    }
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, 90000);
    if (err)
        fprintf(stderr, "producer %d: flush: %s\n", p->part, rd_kafka_err2str(err));
    rd_kafka_destroy(rk);
    return NULL;
}

/* ---- consumers ----------------------------------------------------------------------- */

struct consumer {
    int part;
    pthread_t thread;
    long received;
    const char *failure; /* NULL when everything matched */
    char detail[256];
};

static void *consumer_main(void *arg)
{
    struct consumer *c = arg;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "enable.partition.eof", "true");
    set(conf, "fetch.wait.max.ms", "200");
    set(conf, "auto.offset.reset", "error");
    rd_kafka_t *rk = client_new(RD_KAFKA_CONSUMER, conf);
    connect_now(rk, PAIRS + c->part);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, TOPIC, NULL);
    pthread_barrier_wait(&connected);
    pthread_barrier_wait(&go);
    CHECK(rd_kafka_consume_start(rkt, c->part, RD_KAFKA_OFFSET_BEGINNING) == 0);

    char key[32], hdr[16];
    unsigned char value[MAX_VALUE + 8];
    int hlen = sprintf(hdr, "p%d", c->part);
    double deadline = now_s() + 120;
    bool done = false;
    while (!done && !c->failure) {
        if (now_s() > deadline) {
            c->failure = "timed out";
            snprintf(c->detail, sizeof c->detail, "%ld of %ld messages after 120 s", c->received,
                     per_producer);
            break;
        }
        rd_kafka_message_t *m = rd_kafka_consume(rkt, c->part, 500);
        if (!m)
            continue;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            done = c->received == per_producer; /* the end, after everything */
        } else if (m->err) {
            c->failure = "consumer error";
            snprintf(c->detail, sizeof c->detail, "%s", rd_kafka_message_errstr(m));
        } else if (c->received >= per_producer) {
            c->failure = "more messages than produced";
            snprintf(c->detail, sizeof c->detail, "offset %" PRId64, m->offset);
        } else {
            long seq = c->received;
            size_t klen = make_key(c->part, seq, key), vlen = make_value(c->part, seq, value);
            rd_kafka_headers_t *hs = NULL;
            const void *hv = NULL;
            size_t hvlen = 0;
            if (rd_kafka_message_headers(m, &hs) == 0)
                rd_kafka_header_get_last(hs, "producer", &hv, &hvlen);
            if (m->offset != seq)
                c->failure = "offset";
            else if (m->key_len != klen || memcmp(m->key, key, klen) != 0)
                c->failure = "key";
            else if (m->len != vlen || (vlen && memcmp(m->payload, value, vlen) != 0))
                c->failure = "value";
            else if (!hs || rd_kafka_header_cnt(hs) != 1 || hvlen != (size_t)hlen ||
                     memcmp(hv, hdr, hvlen) != 0)
                c->failure = "header";
            if (c->failure)
                snprintf(c->detail, sizeof c->detail,
                         "expected message %ld, got offset %" PRId64 " key %.*s (%zu bytes)", seq,
                         m->offset, (int)(m->key_len < 40 ? m->key_len : 40),
                         m->key ? (const char *)m->key : "", m->len);
            c->received++;
        }
        rd_kafka_message_destroy(m);
    }
    rd_kafka_consume_stop(rkt, c->part);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    return NULL;
}

/* Established TCP connections from this machine to the server's port (IPv4 and IPv6). */
static int count_connections(uint16_t port)
{
    int n = 0;
    const char *files[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (int f = 0; f < 2; f++) {
        FILE *fp = fopen(files[f], "r");
        if (!fp)
            continue;
        char line[512];
        if (!fgets(line, sizeof line, fp)) {
            fclose(fp);
            continue;
        }
        while (fgets(line, sizeof line, fp)) {
            char local[64], remote[64];
            unsigned st;
            if (sscanf(line, "%*d: %63s %63s %x", local, remote, &st) != 3)
                continue;
            const char *colon = strrchr(remote, ':');
            if (colon && strtoul(colon + 1, NULL, 16) == port && st == 1 /* ESTABLISHED */)
                n++;
        }
        fclose(fp);
    }
    return n;
}

int main(int argc, char **argv)
{
    static const char *const extra[] = {"--default-partitions", "25", NULL};
    sbt_server_init(&srv, argc > 1 ? argv[1] : NULL, extra);
    per_producer = sbt_scaled(2000, 100);
    sbt_server_start(&srv);

    /* The topic, made by its first Metadata request with auto-creation (a producer's). */
    rd_kafka_t *admin = client_new(RD_KAFKA_PRODUCER, rd_kafka_conf_new());
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(admin, TOPIC, NULL);
    const struct rd_kafka_metadata *md = NULL;
    double deadline = now_s() + 20;
    for (;;) {
        CHECK_EQ(rd_kafka_metadata(admin, 0, rkt, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
        if (md->topic_cnt == 1 && md->topics[0].err == 0 &&
            md->topics[0].partition_cnt == PAIRS)
            break;
        CHECK(now_s() < deadline);
        rd_kafka_metadata_destroy(md);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(admin);

    static struct producer prod[PAIRS];
    static struct consumer cons[PAIRS];
    CHECK(pthread_barrier_init(&connected, NULL, 2 * PAIRS + 1) == 0);
    CHECK(pthread_barrier_init(&go, NULL, 2 * PAIRS + 1) == 0);
    for (int i = 0; i < PAIRS; i++) {
        prod[i].part = cons[i].part = i;
        CHECK(pthread_create(&prod[i].thread, NULL, producer_main, &prod[i]) == 0);
        CHECK(pthread_create(&cons[i].thread, NULL, consumer_main, &cons[i]) == 0);
    }
    pthread_barrier_wait(&connected);
    int conns = count_connections(srv.port);
    printf("%d clients hold %d connections to the server at once\n", 2 * PAIRS, conns);
    CHECK(conns >= 2 * PAIRS);
    double t0 = now_s();
    pthread_barrier_wait(&go);
    for (int i = 0; i < PAIRS; i++) {
        pthread_join(prod[i].thread, NULL);
        pthread_join(cons[i].thread, NULL);
    }
    double secs = now_s() - t0;

    int bad = 0;
    for (int i = 0; i < PAIRS; i++) {
        if (prod[i].acked != per_producer || prod[i].failed || prod[i].bad_offset) {
            fprintf(stderr, "producer %d: %ld of %ld acknowledged, %ld failed, %ld at an "
                            "unexpected offset\n", i, prod[i].acked, per_producer,
                    prod[i].failed, prod[i].bad_offset);
            bad++;
        }
        if (cons[i].failure) {
            fprintf(stderr, "consumer %d: %s: %s\n", i, cons[i].failure, cons[i].detail);
            bad++;
        }
    }
    CHECK_EQ(bad, 0);
    CHECK(sbt_server_alive(&srv));
    printf("%d producers and %d consumers moved %ld messages each way in %.2f s, all verified\n",
           PAIRS, PAIRS, PAIRS * per_producer, secs);
    pthread_barrier_destroy(&connected);
    pthread_barrier_destroy(&go);
    sbt_server_stop(&srv);
    sbt_server_cleanup(&srv);
    printf("PASS\n");
    return 0;
}
