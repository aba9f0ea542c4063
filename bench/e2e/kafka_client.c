/*
 * kafka_client.c - the load generator's Kafka client (librdkafka) against shardbusd.
 *
 * setup creates a fresh topic of --partitions partitions (CreateTopics). Producers are plain
 * librdkafka producers (TCP_NODELAY on, as in Kafka's Java client): keyless messages, librdkafka's partitioner, acks=--acks (default all,
 * librdkafka's own default), linger.ms=--linger-ms and batch.num.messages=--batch; when the
 * client's queue is full, produce waits for it (librdkafka's back-pressure). Each consumer is
 * its own client, assigned every partition from the beginning (no group coordination; a group
 * id only because librdkafka's consumer wants one), so each receives every message.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>

#include "client.h"
#include "schedule.h"

struct kctx {
    const struct bench_options *o;
    char topic[96];
};

struct kproducer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    uint64_t failed; /* delivery reports with an error; only the producer thread (its polls) */
};

struct kconsumer {
    rd_kafka_t *rk;
    const struct bench_options *o;
    uint64_t errors;
};

static int set(rd_kafka_conf_t *conf, const char *k, const char *v, char *err, size_t errlen)
{
    if (rd_kafka_conf_set(conf, k, v, err, errlen) != RD_KAFKA_CONF_OK)
        return -EINVAL;
    return 0;
}

static rd_kafka_conf_t *base_conf(const struct bench_options *o, char *err, size_t errlen)
{
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (set(conf, "bootstrap.servers", o->addr, err, errlen) ||
        set(conf, "log_level", "3", err, errlen) ||
        /* TCP_NODELAY, as Kafka's Java client and libnats always set it. */
        set(conf, "socket.nagle.disable", "true", err, errlen)) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    for (int i = 0; i < o->kafka_nset; i++) {
        char key[128];
        const char *eq = strchr(o->kafka_set[i], '=');
        snprintf(key, sizeof key, "%.*s", (int)(eq - o->kafka_set[i]), o->kafka_set[i]);
        if (set(conf, key, eq + 1, err, errlen)) {
            rd_kafka_conf_destroy(conf);
            return NULL;
        }
    }
    return conf;
}

static int kafka_setup(const struct bench_options *o, void **ctxp, char *err, size_t errlen)
{
    struct kctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return -ENOMEM;
    ctx->o = o;
    snprintf(ctx->topic, sizeof ctx->topic, "sb-bench-%ld-%llu", (long)getpid(),
             (unsigned long long)(bench_now_ns() % 1000000000000ull));

    rd_kafka_conf_t *conf = base_conf(o, err, errlen);
    if (!conf) {
        free(ctx);
        return -EINVAL;
    }
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (!rk) {
        free(ctx);
        return -EINVAL;
    }
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(ctx->topic, o->partitions, 1, err, errlen);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS);
    rd_kafka_AdminOptions_set_operation_timeout(ao, 10000, NULL, 0);
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 15000);
    int rc = 0;
    if (!ev) {
        snprintf(err, errlen, "CreateTopics %s: no answer from %s within 15 s", ctx->topic,
                 o->addr);
        rc = -ETIMEDOUT;
    } else if (rd_kafka_event_error(ev)) {
        snprintf(err, errlen, "CreateTopics %s: %s", ctx->topic, rd_kafka_event_error_string(ev));
        rc = -EIO;
    } else {
        const rd_kafka_CreateTopics_result_t *res = rd_kafka_event_CreateTopics_result(ev);
        size_t n;
        const rd_kafka_topic_result_t **tr = rd_kafka_CreateTopics_result_topics(res, &n);
        if (n == 1 && rd_kafka_topic_result_error(tr[0])) {
            snprintf(err, errlen, "CreateTopics %s: %s", ctx->topic,
                     rd_kafka_topic_result_error_string(tr[0]));
            rc = -EIO;
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_queue_destroy(q);
    rd_kafka_destroy(rk);
    if (rc) {
        free(ctx);
        return rc;
    }
    *ctxp = ctx;
    return 0;
}

static void kafka_teardown(void *ctx)
{
    free(ctx);
}

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct kproducer *p = opaque;
    if (m->err)
        p->failed++;
}

static int kafka_producer_open(void *vctx, int id, void **pp, char *err, size_t errlen)
{
    (void)id;
    struct kctx *ctx = vctx;
    const struct bench_options *o = ctx->o;
    struct kproducer *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    rd_kafka_conf_t *conf = base_conf(o, err, errlen);
    char v[32];
    if (!conf)
        goto fail;
    snprintf(v, sizeof v, "%d", o->linger_ms);
    if (set(conf, "linger.ms", v, err, errlen))
        goto fail_conf;
    snprintf(v, sizeof v, "%d", o->batch);
    if (set(conf, "batch.num.messages", v, err, errlen) || set(conf, "acks", o->acks, err, errlen))
        goto fail_conf;
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    rd_kafka_conf_set_opaque(conf, p);
    p->rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, errlen);
    if (!p->rk)
        goto fail_conf;
    p->rkt = rd_kafka_topic_new(p->rk, ctx->topic, NULL);
    *pp = p;
    return 0;
fail_conf:
    rd_kafka_conf_destroy(conf);
fail:
    free(p);
    return -EINVAL;
}

static int kafka_produce(void *vp, const void *data, size_t len)
{
    struct kproducer *p = vp;
    for (;;) {
        if (rd_kafka_produce(p->rkt, RD_KAFKA_PARTITION_UA, RD_KAFKA_MSG_F_COPY, (void *)(uintptr_t)data,
                             len, NULL, 0, NULL) == 0)
            return 0;
        rd_kafka_resp_err_t e = rd_kafka_last_error();
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
            return -EIO;
        rd_kafka_poll(p->rk, 1); /* the client's queue is full: wait for deliveries */
    }
}

static void kafka_producer_service(void *vp)
{
    struct kproducer *p = vp;
    rd_kafka_poll(p->rk, 0);
}

static int kafka_producer_flush(void *vp, int timeout_ms, uint64_t *failed)
{
    struct kproducer *p = vp;
    rd_kafka_resp_err_t e = rd_kafka_flush(p->rk, timeout_ms);
    int left = rd_kafka_outq_len(p->rk);
    *failed = p->failed + (uint64_t)(left > 0 ? left : 0);
    return e == RD_KAFKA_RESP_ERR_NO_ERROR ? 0 : -ETIMEDOUT;
}

static void kafka_producer_close(void *vp)
{
    struct kproducer *p = vp;
    rd_kafka_topic_destroy(p->rkt);
    rd_kafka_destroy(p->rk);
    free(p);
}

static int kafka_consumer_open(void *vctx, int id, void **cp, char *err, size_t errlen)
{
    struct kctx *ctx = vctx;
    const struct bench_options *o = ctx->o;
    struct kconsumer *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->o = o;
    rd_kafka_conf_t *conf = base_conf(o, err, errlen);
    char group[160];
    snprintf(group, sizeof group, "%s-c%d", ctx->topic, id);
    if (!conf || set(conf, "group.id", group, err, errlen) ||
        set(conf, "enable.auto.commit", "false", err, errlen) ||
        set(conf, "auto.offset.reset", "earliest", err, errlen) ||
        set(conf, "enable.partition.eof", "false", err, errlen)) {
        if (conf)
            rd_kafka_conf_destroy(conf);
        free(c);
        return -EINVAL;
    }
    c->rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, err, errlen);
    if (!c->rk) {
        rd_kafka_conf_destroy(conf);
        free(c);
        return -EINVAL;
    }
    rd_kafka_poll_set_consumer(c->rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(o->partitions);
    for (int i = 0; i < o->partitions; i++)
        rd_kafka_topic_partition_list_add(parts, ctx->topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) {
        snprintf(err, errlen, "assign: %s", rd_kafka_err2str(e));
        rd_kafka_destroy(c->rk);
        free(c);
        return -EIO;
    }
    *cp = c;
    return 0;
}

static int kafka_consumer_poll(void *vc, int timeout_ms, bench_deliver_fn *fn, void *arg)
{
    struct kconsumer *c = vc;
    int got = 0;
    /* One at a time: rd_kafka_consume_batch_queue() would wait for a full batch or the whole
     * timeout, which adds up to @timeout_ms to the latency of a trickle of messages. */
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);
    while (m) {
        if (m->err) {
            if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
                c->errors++;
        } else {
            fn(arg, m->payload, m->len);
            got++;
        }
        rd_kafka_message_destroy(m);
        if (got >= 4096)
            break;
        m = rd_kafka_consumer_poll(c->rk, 0); /* only what has already arrived */
    }
    return got;
}

static void kafka_consumer_close(void *vc)
{
    struct kconsumer *c = vc;
    rd_kafka_consumer_close(c->rk);
    rd_kafka_destroy(c->rk);
    free(c);
}

const struct bench_system bench_kafka_system = {
    .name = "shardbus",
    .setup = kafka_setup,
    .teardown = kafka_teardown,
    .producer_open = kafka_producer_open,
    .produce = kafka_produce,
    .producer_service = kafka_producer_service,
    .producer_flush = kafka_producer_flush,
    .producer_close = kafka_producer_close,
    .consumer_open = kafka_consumer_open,
    .consumer_poll = kafka_consumer_poll,
    .consumer_close = kafka_consumer_close,
};
