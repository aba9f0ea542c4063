/*
 * embedded_client.c - the in-process system of shardbus-bench (see embedded_client.h).
 */
#define _GNU_SOURCE
#include "embedded_client.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shardbus.h>

#define EMB_TOPIC "sb-bench"
#define EMB_POLL_MAX 256     /* events per sb_poll */
#define EMB_POLL_ROUNDS 16   /* polls per consumer_poll call once events flow */
#define EMB_SPINS_BEFORE_YIELD 64

struct ectx {
    struct sb_bus *bus;
};

static int embedded_setup(const struct bench_options *o, void **ctxp, char *err, size_t errlen)
{
    struct ectx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return -ENOMEM;
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = (unsigned)o->shards;
    if (o->data_dir) {
        cfg.data_dir = o->data_dir;
        cfg.durability = o->durability == 0   ? SB_DURABILITY_NONE
                         : o->durability == 2 ? SB_DURABILITY_INTERVAL
                                              : SB_DURABILITY_BATCH;
    }
    int rc = sb_bus_open(&cfg, &ctx->bus);
    if (rc) {
        snprintf(err, errlen, "sb_bus_open (shards %d, %s%s): %s", o->shards,
                 o->data_dir ? "data dir " : "memory only", o->data_dir ? o->data_dir : "",
                 strerror(-rc));
        free(ctx);
        return rc;
    }
    rc = sb_topic_create(ctx->bus, EMB_TOPIC, (unsigned)o->partitions);
    if (rc) {
        if (rc == -EEXIST)
            snprintf(err, errlen, "topic %s already exists in %s: its events would be delivered "
                     "again (give each run an empty --data-dir)", EMB_TOPIC,
                     o->data_dir ? o->data_dir : "the bus");
        else
            snprintf(err, errlen, "sb_topic_create %s (%d partitions): %s", EMB_TOPIC,
                     o->partitions, strerror(-rc));
        sb_bus_close(ctx->bus);
        free(ctx);
        return rc;
    }
    *ctxp = ctx;
    return 0;
}

static void embedded_teardown(void *vctx)
{
    struct ectx *ctx = vctx;
    int rc = sb_bus_close(ctx->bus);
    if (rc)
        fprintf(stderr, "shardbus-bench: embedded: sb_bus_close: %s\n", strerror(-rc));
    free(ctx);
}

static int embedded_producer_open(void *vctx, int id, void **pp, char *err, size_t errlen)
{
    (void)id;
    struct ectx *ctx = vctx;
    struct sb_producer *p;
    int rc = sb_producer_open(ctx->bus, &p);
    if (rc) {
        snprintf(err, errlen, "sb_producer_open: %s", strerror(-rc));
        return rc;
    }
    *pp = p;
    return 0;
}

static void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int embedded_produce(void *vp, const void *data, size_t len)
{
    struct sb_producer *p = vp;
    unsigned spins = 0;
    for (;;) {
        int rc = sb_publish(p, EMB_TOPIC, NULL, 0, data, len);
        if (rc != -EAGAIN) {
            if (rc)
                fprintf(stderr, "shardbus-bench: embedded: sb_publish: %s\n", strerror(-rc));
            return rc;
        }
        /* Back-pressure: the shard's ring is full. Spin briefly, then give the CPU away (the
         * shards and the consumers share the cores with this thread). */
        if (++spins < EMB_SPINS_BEFORE_YIELD)
            relax();
        else
            sched_yield();
    }
}

static void embedded_producer_service(void *vp)
{
    (void)vp;
}

static int embedded_producer_flush(void *vp, int timeout_ms, uint64_t *failed)
{
    struct sb_producer *p = vp;
    int rc = sb_producer_flush(p, timeout_ms);
    struct sb_producer_stats st;
    sb_producer_get_stats(p, &st);
    *failed = st.failed;
    if (rc)
        fprintf(stderr, "shardbus-bench: embedded: sb_producer_flush: %s (published %llu, "
                "acknowledged %llu, failed %llu)\n", strerror(-rc),
                (unsigned long long)st.published, (unsigned long long)st.acknowledged,
                (unsigned long long)st.failed);
    return rc;
}

static void embedded_producer_close(void *vp)
{
    sb_producer_close(vp);
}

static int embedded_consumer_open(void *vctx, int id, void **cp, char *err, size_t errlen)
{
    (void)id;
    struct ectx *ctx = vctx;
    struct sb_consumer *c;
    int rc = sb_subscribe(ctx->bus, EMB_TOPIC, SB_OFFSET_BEGINNING, &c);
    if (rc) {
        snprintf(err, errlen, "sb_subscribe %s: %s", EMB_TOPIC, strerror(-rc));
        return rc;
    }
    *cp = c;
    return 0;
}

static int embedded_consumer_poll(void *vc, int timeout_ms, bench_deliver_fn *fn, void *arg)
{
    struct sb_consumer *c = vc;
    struct sb_event ev[EMB_POLL_MAX];
    int got = 0;
    for (int round = 0; round < EMB_POLL_ROUNDS; round++) {
        int n = sb_poll(c, ev, EMB_POLL_MAX, round == 0 ? timeout_ms : 0);
        if (n < 0) {
            fprintf(stderr, "shardbus-bench: embedded: sb_poll: %s\n", strerror(-n));
            return got ? got : n;
        }
        /* The values stay valid until the next sb_poll: verify them now. */
        for (int i = 0; i < n; i++)
            fn(arg, ev[i].value, ev[i].value_len);
        got += n;
        if (n < EMB_POLL_MAX)
            break;
    }
    return got;
}

static void embedded_consumer_close(void *vc)
{
    sb_consumer_close(vc);
}

const struct bench_system bench_embedded_system = {
    .name = "embedded",
    .setup = embedded_setup,
    .teardown = embedded_teardown,
    .producer_open = embedded_producer_open,
    .produce = embedded_produce,
    .producer_service = embedded_producer_service,
    .producer_flush = embedded_producer_flush,
    .producer_close = embedded_producer_close,
    .consumer_open = embedded_consumer_open,
    .consumer_poll = embedded_consumer_poll,
    .consumer_close = embedded_consumer_close,
};
