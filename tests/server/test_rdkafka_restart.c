/*
 * test_rdkafka_restart.c - an idempotent librdkafka producer (enable.idempotence=true,
 * acks=all) against shardbusd, with the server restarted in between: nothing acknowledged is
 * lost, nothing is duplicated, every partition comes back in production order, bytes equal.
 *
 * 1. SIGTERM: produce N keyed messages (binary values of varied lengths, a header each) into 4
 *    partitions of a topic made with CreateTopics, all acknowledged; a second daemon on the same
 *    data dir is refused (exit 1); SIGTERM (exit 0), restart, read every partition from the
 *    beginning and compare.
 * 2. SIGKILL: produce a first third, SIGKILL the server as soon as a quarter of all messages is
 *    acknowledged (the rest of the third in flight), produce the second third while it is down,
 *    restart it on the same port and data dir, produce the last third; the producer retries
 *    with the same sequence numbers, so the server must de-duplicate (its producer state
 *    recovered from the log). Every message ends up acknowledged exactly once. SIGKILL again,
 *    restart, read back and compare.
 *
 * The consumer uses the legacy per-partition API (no consumer group), as kcat -C does.
 *
 * Usage: test_rdkafka_restart PATH-TO-SHARDBUSD   (exit 77 while the server is not implemented;
 * SB_TEST_SCALE shrinks N = 50,000).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "check.h"
#include "server_proc.h"

#define PARTITIONS 4
#define MAX_VALUE 400

static struct sbt_server srv;
static long n_msgs;

struct msg_state {
    uint8_t acked;
    uint8_t failed;
    uint16_t seen;
    int64_t offset; /* from the delivery report */
};
static struct msg_state *st;
static long acked_count, failed_count;
static int fatal;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- the messages: all derived from (phase, seq), so the reader regenerates them -------- */

static size_t make_key(long seq, char *buf)
{
    int n = sprintf(buf, "key-%08ld-", seq);
    int filler = (int)(test_mix64((unsigned long long)seq) % 23);
    for (int i = 0; i < filler; i++)
        buf[n++] = (char)('a' + (seq + i) % 26);
    return (size_t)n;
}

static size_t make_value(int phase, long seq, unsigned char *buf)
{
    unsigned long long h = test_mix64((unsigned long long)phase << 48 ^ (unsigned long long)seq);
    size_t len = 1 + (size_t)(h % MAX_VALUE);
    for (size_t i = 0; i < len; i += 8) {
        unsigned long long v = test_mix64(h + i);
        memcpy(buf + i, &v, 8); /* buf has MAX_VALUE + 8 bytes */
    }
    return len;
}

/* ---- producer -------------------------------------------------------------------------- */

static void dr_cb(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    (void)opaque;
    long seq = (long)(intptr_t)m->_private;
    CHECK(seq >= 0 && seq < n_msgs);
    if (m->err) {
        if (failed_count++ < 5)
            fprintf(stderr, "delivery of %ld failed: %s\n", seq, rd_kafka_err2str(m->err));
        st[seq].failed = 1;
        return;
    }
    if (st[seq].acked) {
        fprintf(stderr, "message %ld acknowledged twice\n", seq);
        abort();
    }
    CHECK_EQ(m->partition, seq % PARTITIONS);
    st[seq].acked = 1;
    st[seq].offset = m->offset;
    acked_count++;
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__FATAL) {
        char buf[512];
        rd_kafka_resp_err_t orig = rd_kafka_fatal_error(rk, buf, sizeof buf);
        fprintf(stderr, "FATAL producer error: %s: %s\n", rd_kafka_err2name(orig), buf);
        fatal = 1;
        return;
    }
    /* Transport errors are expected while the server is down. */
    static int shown;
    if (shown++ < 10)
        printf("librdkafka: %s: %s\n", rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

static void set(rd_kafka_conf_t *conf, const char *k, const char *v)
{
    char err[512];
    if (rd_kafka_conf_set(conf, k, v, err, sizeof err) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "%s=%s: %s\n", k, v, err);
        abort();
    }
}

static rd_kafka_conf_t *base_conf(void)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    set(conf, "bootstrap.servers", srv.bootstrap);
    set(conf, "reconnect.backoff.ms", "50");
    set(conf, "reconnect.backoff.max.ms", "500");
    set(conf, "log_level", "4");
    return conf;
}

static rd_kafka_t *producer_new(void)
{
    rd_kafka_conf_t *conf = base_conf();
    set(conf, "enable.idempotence", "true");
    set(conf, "acks", "all");
    set(conf, "linger.ms", "5");
    set(conf, "retry.backoff.ms", "50");
    set(conf, "message.timeout.ms", "120000");
    set(conf, "queue.buffering.max.messages", "1000000");
    rd_kafka_conf_set_dr_msg_cb(conf, dr_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        abort();
    }
    return rk;
}

static void produce_range(rd_kafka_t *rk, const char *topic, int phase, long from, long to)
{
    char key[64];
    unsigned char value[MAX_VALUE + 8];
    char hdr[32];
    for (long seq = from; seq < to; seq++) {
        size_t klen = make_key(seq, key), vlen = make_value(phase, seq, value);
        int hlen = sprintf(hdr, "%ld", seq);
        for (;;) {
            rd_kafka_resp_err_t err = rd_kafka_producev(
                rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION((int32_t)(seq % PARTITIONS)),
                RD_KAFKA_V_KEY(key, klen), RD_KAFKA_V_VALUE(value, vlen),
                RD_KAFKA_V_HEADER("seq", hdr, hlen), RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
                RD_KAFKA_V_OPAQUE((void *)(intptr_t)seq), RD_KAFKA_V_END);
            if (err == RD_KAFKA_RESP_ERR__QUEUE_FULL) {
                rd_kafka_poll(rk, 10);
                continue;
            }
            if (err) {
                fprintf(stderr, "producev %ld: %s\n", seq, rd_kafka_err2str(err));
                abort();
            }
            break;
        }
        rd_kafka_poll(rk, 0);
    }
}

static void flush_all(rd_kafka_t *rk, int timeout_ms)
{
    rd_kafka_resp_err_t err = rd_kafka_flush(rk, timeout_ms);
    if (err) {
        fprintf(stderr, "flush: %s (%d messages still queued, %ld acknowledged)\n",
                rd_kafka_err2str(err), rd_kafka_outq_len(rk), acked_count);
        abort();
    }
}

static void create_topic_request(rd_kafka_t *rk, const char *topic)
{
    char err[512];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(topic, PARTITIONS, 1, err, sizeof err);
    CHECK(nt != NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 20000);
    CHECK(ev != NULL);
    const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
    rd_kafka_resp_err_t rc = rd_kafka_event_error(ev);
    if (!rc && res) {
        size_t n;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
        CHECK_EQ(n, 1);
        rc = rd_kafka_topic_result_error(tr[0]);
    }
    if (rc) {
        fprintf(stderr, "CreateTopics %s: %s\n", topic, rd_kafka_err2str(rc));
        abort();
    }
    rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_NewTopic_destroy(nt);
}

/* CreateTopics with PARTITIONS partitions, then check Metadata. (An external broker must have
 * the topic already: librdkafka's mock broker has no CreateTopics.) */
static void create_topic(rd_kafka_t *rk, const char *topic)
{
    if (!srv.external)
        create_topic_request(rk, topic);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    const struct rd_kafka_metadata *md = NULL;
    CHECK_EQ(rd_kafka_metadata(rk, 0, rkt, &md, 10000), RD_KAFKA_RESP_ERR_NO_ERROR);
    CHECK_EQ(md->topic_cnt, 1);
    CHECK_EQ(md->topics[0].err, 0);
    CHECK(strcmp(md->topics[0].topic, topic) == 0);
    CHECK_EQ(md->topics[0].partition_cnt, PARTITIONS);
    rd_kafka_metadata_destroy(md);
    rd_kafka_topic_destroy(rkt);
}

/* ---- consumer: read every partition from the beginning and compare -------------------- */

static void verify(const char *topic, int phase, const char *when)
{
    rd_kafka_conf_t *conf = base_conf();
    set(conf, "enable.partition.eof", "true");
    set(conf, "fetch.wait.max.ms", "100");
    set(conf, "auto.offset.reset", "error");
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, sizeof err);
    CHECK(rk != NULL);
    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    for (int p = 0; p < PARTITIONS; p++)
        CHECK(rd_kafka_consume_start_queue(rkt, p, RD_KAFKA_OFFSET_BEGINNING, q) == 0);

    for (long i = 0; i < n_msgs; i++)
        st[i].seen = 0;
    int64_t next_offset[PARTITIONS] = {0};
    long last_seq[PARTITIONS], count = 0;
    bool eof[PARTITIONS] = {false};
    for (int p = 0; p < PARTITIONS; p++)
        last_seq[p] = -1;
    char key[64];
    unsigned char value[MAX_VALUE + 8];
    double deadline = now_s() + 90;
    int eofs = 0;
    while (eofs < PARTITIONS) {
        if (now_s() > deadline) {
            fprintf(stderr, "%s: consumed %ld messages, %d of %d partitions at their end after "
                            "90 s\n", when, count, eofs, PARTITIONS);
            abort();
        }
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, 1000);
        if (!m)
            continue;
        int p = m->partition;
        CHECK(p >= 0 && p < PARTITIONS);
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (!eof[p]) {
                eof[p] = true;
                eofs++;
            }
            rd_kafka_message_destroy(m);
            continue;
        }
        if (m->err) {
            fprintf(stderr, "%s: consumer error on partition %d: %s\n", when, p,
                    rd_kafka_message_errstr(m));
            abort();
        }
        if (eof[p]) {
            fprintf(stderr, "%s: partition %d: message at offset %" PRId64 " after its end\n",
                    when, p, m->offset);
            abort();
        }
        /* Contiguous offsets from 0, production order, exact bytes. */
        CHECK_EQ(m->offset, next_offset[p]);
        next_offset[p]++;
        long seq = -1;
        char ktext[16];
        CHECK(m->key_len >= 13);
        memcpy(ktext, m->key, 13);
        ktext[13] = 0;
        CHECK(sscanf(ktext, "key-%08ld-", &seq) == 1);
        CHECK(seq >= 0 && seq < n_msgs);
        if (st[seq].seen) {
            fprintf(stderr, "%s: message %ld duplicated (partition %d, offset %" PRId64 ")\n",
                    when, seq, p, m->offset);
            abort();
        }
        st[seq].seen = 1;
        CHECK_EQ(seq % PARTITIONS, p);
        if (seq <= last_seq[p]) {
            fprintf(stderr, "%s: partition %d: message %ld after %ld (out of order)\n", when, p,
                    seq, last_seq[p]);
            abort();
        }
        last_seq[p] = seq;
        size_t klen = make_key(seq, key), vlen = make_value(phase, seq, value);
        CHECK_EQ(m->key_len, klen);
        CHECK_MEM(m->key, key, klen);
        CHECK_EQ(m->len, vlen);
        CHECK_MEM(m->payload, value, vlen);
        rd_kafka_headers_t *hdrs = NULL;
        CHECK(rd_kafka_message_headers(m, &hdrs) == 0);
        const void *hv;
        size_t hlen;
        CHECK(rd_kafka_header_get_last(hdrs, "seq", &hv, &hlen) == 0);
        char want[32];
        CHECK_EQ(hlen, (size_t)sprintf(want, "%ld", seq));
        CHECK_MEM(hv, want, hlen);
        CHECK_EQ(rd_kafka_header_cnt(hdrs), 1);
        if (st[seq].acked && st[seq].offset >= 0)
            CHECK_EQ(m->offset, st[seq].offset);
        count++;
        rd_kafka_message_destroy(m);
    }
    long lost = 0, unacked_present = 0;
    for (long i = 0; i < n_msgs; i++) {
        if (st[i].acked && !st[i].seen) {
            if (lost++ < 5)
                fprintf(stderr, "%s: acknowledged message %ld (partition %ld, offset %" PRId64
                                ") is lost\n", when, i, i % PARTITIONS, st[i].offset);
        }
        unacked_present += !st[i].acked && st[i].seen;
    }
    CHECK_EQ(lost, 0);
    printf("%s: %ld messages read back in order, bytes equal (%ld present without an ack)\n",
           when, count, unacked_present);
    for (int p = 0; p < PARTITIONS; p++)
        rd_kafka_consume_stop(rkt, p);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
}

static void reset_state(void)
{
    memset(st, 0, sizeof *st * (size_t)n_msgs);
    acked_count = failed_count = 0;
    fatal = 0;
}

static void require_all_acked(const char *when)
{
    CHECK_EQ(fatal, 0);
    if (acked_count != n_msgs || failed_count) {
        fprintf(stderr, "%s: %ld of %ld messages acknowledged, %ld failed\n", when, acked_count,
                n_msgs, failed_count);
        abort();
    }
}

/* ---- the two phases ------------------------------------------------------------------- */

static void phase_sigterm(void)
{
    const char *topic = "restart-term";
    reset_state();
    rd_kafka_t *rk = producer_new();
    create_topic(rk, topic);
    double t0 = now_s();
    produce_range(rk, topic, 1, 0, n_msgs);
    flush_all(rk, 60000);
    require_all_acked("SIGTERM phase, before the restart");
    printf("produced %ld messages in %.2f s, all acknowledged\n", n_msgs, now_s() - t0);
    rd_kafka_destroy(rk);

    if (!srv.external) {
        int rc = sbt_server_second_instance(&srv);
        if (rc != 1) {
            sbt_dump_log(&srv);
            fprintf(stderr, "a second shardbusd on the same data dir: exit %d, expected 1\n", rc);
            abort();
        }
        printf("a second daemon on the same data dir is refused (exit 1)\n");
        CHECK(sbt_server_alive(&srv));
    }
    sbt_server_stop(&srv);
    sbt_server_start(&srv);
    verify(topic, 1, "after SIGTERM and restart");
}

static void phase_sigkill(void)
{
    const char *topic = "restart-kill";
    reset_state();
    rd_kafka_t *rk = producer_new();
    create_topic(rk, topic);
    long third = n_msgs / 3;

    produce_range(rk, topic, 2, 0, third);
    double deadline = now_s() + 60;
    while (acked_count < n_msgs / 4) {
        CHECK(now_s() < deadline);
        rd_kafka_poll(rk, 1);
    }
    sbt_server_kill9(&srv);
    long acked_at_kill = acked_count;
    printf("SIGKILL with %ld of the first %ld messages acknowledged\n", acked_at_kill, third);

    produce_range(rk, topic, 2, third, 2 * third);
    double until = now_s() + 0.3;
    while (now_s() < until)
        rd_kafka_poll(rk, 10);
    sbt_server_start(&srv);
    produce_range(rk, topic, 2, 2 * third, n_msgs);
    flush_all(rk, 100000);
    require_all_acked("SIGKILL phase");
    printf("all %ld messages acknowledged across the SIGKILL (%ld before it)\n", n_msgs,
           acked_at_kill);
    rd_kafka_destroy(rk);

    verify(topic, 2, "after SIGKILL during production");
    sbt_server_kill9(&srv);
    sbt_server_start(&srv);
    verify(topic, 2, "after a second SIGKILL and restart");
    /* The first topic is intact too. */
}

int main(int argc, char **argv)
{
    static const char *const extra[] = {"--durability", "batch", NULL};
    sbt_server_init(&srv, argc > 1 ? argv[1] : NULL, extra);
    n_msgs = sbt_scaled(50000, 1000);
    st = calloc((size_t)n_msgs, sizeof *st);
    CHECK(st != NULL);
    sbt_server_start(&srv);

    phase_sigterm();
    phase_sigkill();

    /* The SIGTERM phase's topic after two SIGKILLs: its messages are all there still. */
    reset_state();
    for (long i = 0; i < n_msgs; i++)
        st[i].acked = 1, st[i].offset = -1;
    verify("restart-term", 1, "the first topic after both restarts");

    sbt_server_stop(&srv);
    sbt_server_cleanup(&srv);
    free(st);
    printf("PASS\n");
    return 0;
}
