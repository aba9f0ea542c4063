/*
 * kafka_client.c - the load generator's Kafka client (librdkafka) against shardbusd.
 *
 * setup creates a fresh topic of --partitions partitions (CreateTopics). Producers are plain
 * librdkafka producers (TCP_NODELAY on, as in Kafka's Java client): keyless messages,
 * acks=--acks (default all, librdkafka's own default), linger.ms=--linger-ms and
 * batch.num.messages=--batch; when the client's queue is full, produce waits for it
 * (librdkafka's back-pressure).
 *
 * Messages reach librdkafka through rd_kafka_produce_batch(): the ones the load generator has
 * due at once (up to PRODUCE_BATCH; at a fixed rate that is usually one, since the producer's
 * idle callback hands over what is pending before it sleeps). One call takes the clock once and
 * enqueues to one partition, where rd_kafka_produce() reads the clock and runs the partitioner
 * per message. The client chooses the partition itself (a `partitioner` set with --kafka-set
 * has no effect): one for 10 ms, then the next, as librdkafka's sticky partitioner does with
 * keyless messages.
 *
 * Each consumer is its own client, assigned every partition from the beginning (no group
 * coordination; a group id only because librdkafka's consumer wants one), so each receives
 * every message. It waits for the first message with rd_kafka_consumer_poll() and takes what
 * has already arrived behind it with rd_kafka_consume_batch_queue(), one queue lock per call.
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

/* Messages handed to librdkafka in one rd_kafka_produce_batch() call, at most. */
#define PRODUCE_BATCH 64
/* Messages taken from the consumer queue in one rd_kafka_consume_batch_queue() call. */
#define CONSUME_BATCH 256

struct kproducer {
    rd_kafka_t *rk;
    rd_kafka_topic_t *rkt;
    int partitions;
    int32_t next_partition;   /* see sticky_partition() */
    uint64_t partition_since; /* when next_partition was chosen */
    uint64_t failed; /* delivery reports with an error; only the producer thread (its polls) */
    int npending;    /* messages copied into @pending, not yet handed to librdkafka */
    size_t size;     /* bytes of each slot of @pending_bytes */
    unsigned char *pending_bytes;
    rd_kafka_message_t pending[PRODUCE_BATCH];
};

struct kconsumer {
    rd_kafka_t *rk;
    rd_kafka_queue_t *queue; /* the consumer queue (rd_kafka_poll_set_consumer) */
    const struct bench_options *o;
    uint64_t errors;
    rd_kafka_message_t *batch[CONSUME_BATCH];
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
    p->partitions = o->partitions;
    p->size = o->size;
    p->pending_bytes = malloc(PRODUCE_BATCH * o->size);
    if (!p->rkt || !p->pending_bytes) {
        snprintf(err, errlen, "producer: %s", p->rkt ? "out of memory" : "rd_kafka_topic_new");
        if (p->rkt)
            rd_kafka_topic_destroy(p->rkt);
        rd_kafka_destroy(p->rk);
        free(p->pending_bytes);
        free(p);
        return -ENOMEM;
    }
    *pp = p;
    return 0;
fail_conf:
    rd_kafka_conf_destroy(conf);
fail:
    free(p);
    return -EINVAL;
}

/* The partition for the next hand-over: one partition for STICKY_NS at a time, then the next,
 * as librdkafka's sticky partitioner treats keyless messages (sticky.partitioning.linger.ms,
 * 10 ms by default). */
#define STICKY_NS 10000000ull

static int32_t sticky_partition(struct kproducer *p)
{
    const uint64_t now = bench_now_ns();
    if (now - p->partition_since >= STICKY_NS) {
        p->next_partition = (p->next_partition + 1) % p->partitions;
        p->partition_since = now;
    }
    return p->next_partition;
}

/* Hands every pending message to librdkafka, in order, waiting while its queue is full
 * (librdkafka refuses the first message that finds it full and every one after it: those are
 * retried). A message refused for any other reason is counted in p->failed, as a failed
 * delivery report would be. Returns 0, or -EIO when some message was refused that way. */
static int hand_over(struct kproducer *p)
{
    int done = 0;
    const int32_t partition = sticky_partition(p);
    while (done < p->npending) {
        const int n = p->npending - done;
        const int good =
            rd_kafka_produce_batch(p->rkt, partition, RD_KAFKA_MSG_F_COPY, p->pending + done, n);
        if (good == n)
            break;
        int first_full = -1;
        uint64_t refused = 0;
        for (int i = done; i < p->npending; i++) {
            const rd_kafka_resp_err_t e = p->pending[i].err;
            if (e == RD_KAFKA_RESP_ERR__QUEUE_FULL && first_full < 0)
                first_full = i;
            else if (e != RD_KAFKA_RESP_ERR_NO_ERROR && e != RD_KAFKA_RESP_ERR__QUEUE_FULL)
                refused++;
        }
        if (refused || first_full < 0) {
            /* Not only a full queue: count every message not enqueued, retry none (a retry
             * after a final error would reorder the messages). */
            for (int i = done; i < p->npending; i++)
                p->failed += p->pending[i].err != RD_KAFKA_RESP_ERR_NO_ERROR;
            p->npending = 0;
            return -EIO;
        }
        done = first_full;
        rd_kafka_poll(p->rk, 1); /* the client's queue is full: wait for deliveries */
    }
    p->npending = 0;
    return 0;
}

static int kafka_produce(void *vp, const void *data, size_t len)
{
    struct kproducer *p = vp;
    if (len > p->size)
        return -EMSGSIZE;
    unsigned char *slot = p->pending_bytes + (size_t)p->npending * p->size;
    memcpy(slot, data, len);
    p->pending[p->npending] = (rd_kafka_message_t){.payload = slot, .len = len};
    if (++p->npending == PRODUCE_BATCH)
        hand_over(p); /* a refused message is counted in p->failed, reported by the flush */
    return 0;
}

static void kafka_producer_service(void *vp)
{
    struct kproducer *p = vp;
    /* Called when the producer is about to wait and every 1024 messages: nothing due stays in
     * this client's hands. Refused messages are counted in p->failed. */
    if (p->npending)
        hand_over(p);
    rd_kafka_poll(p->rk, 0);
}

static int kafka_producer_flush(void *vp, int timeout_ms, uint64_t *failed)
{
    struct kproducer *p = vp;
    if (p->npending)
        hand_over(p); /* refused messages are counted in p->failed */
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
    free(p->pending_bytes);
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
    c->queue = rd_kafka_queue_get_consumer(c->rk);
    rd_kafka_topic_partition_list_t *parts = rd_kafka_topic_partition_list_new(o->partitions);
    for (int i = 0; i < o->partitions; i++)
        rd_kafka_topic_partition_list_add(parts, ctx->topic, i)->offset = RD_KAFKA_OFFSET_BEGINNING;
    rd_kafka_resp_err_t e = rd_kafka_assign(c->rk, parts);
    rd_kafka_topic_partition_list_destroy(parts);
    if (e) {
        snprintf(err, errlen, "assign: %s", rd_kafka_err2str(e));
        rd_kafka_queue_destroy(c->queue);
        rd_kafka_destroy(c->rk);
        free(c);
        return -EIO;
    }
    *cp = c;
    return 0;
}

/* Counts @m (delivering it if it is a message, an error otherwise) and destroys it. */
static int take(struct kconsumer *c, rd_kafka_message_t *m, bench_deliver_fn *fn, void *arg)
{
    int got = 0;
    if (m->err) {
        if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
            c->errors++;
    } else {
        fn(arg, m->payload, m->len);
        got = 1;
    }
    rd_kafka_message_destroy(m);
    return got;
}

static int kafka_consumer_poll(void *vc, int timeout_ms, bench_deliver_fn *fn, void *arg)
{
    struct kconsumer *c = vc;
    /* The first message with a wait; rd_kafka_consume_batch_queue() alone would wait for a full
     * batch or the whole timeout, adding up to @timeout_ms to the latency of a trickle. */
    rd_kafka_message_t *m = rd_kafka_consumer_poll(c->rk, timeout_ms);
    if (!m)
        return 0;
    int got = take(c, m, fn, arg);
    while (got < 4096) {
        /* Timeout 0: only what has already arrived. */
        ssize_t n = rd_kafka_consume_batch_queue(c->queue, 0, c->batch, CONSUME_BATCH);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            got += take(c, c->batch[i], fn, arg);
    }
    return got;
}

static void kafka_consumer_close(void *vc)
{
    struct kconsumer *c = vc;
    rd_kafka_queue_destroy(c->queue);
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
