/*
 * nats_client.c - the load generator's NATS core client (libnats).
 *
 * Every client is its own connection with libnats' default options: publishes go into the
 * connection's buffer and its flusher sends them (the client's normal buffering), and a
 * subscriber is a synchronous subscription on one subject per run. The subscription's pending
 * limits are lifted, so that the client itself never drops what the server delivered (the
 * verifier would count it as lost); the server may still cut a subscriber that falls too far
 * behind (slow consumer), which shows up as lost messages.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <nats/nats.h>

#include "client.h"
#include "schedule.h"

struct nctx {
    const struct bench_options *o;
    char url[300];
    char subject[96];
};

struct nclient {
    natsConnection *nc;
    natsSubscription *sub;
    struct nctx *ctx;
};

static int nats_setup(const struct bench_options *o, void **ctxp, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    struct nctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return -ENOMEM;
    ctx->o = o;
    snprintf(ctx->url, sizeof ctx->url, "nats://%s", o->addr);
    snprintf(ctx->subject, sizeof ctx->subject, "sb-bench.%ld.%llu", (long)getpid(),
             (unsigned long long)(bench_now_ns() % 1000000000000ull));
    *ctxp = ctx;
    return 0;
}

static void nats_teardown(void *ctx)
{
    free(ctx);
    nats_Close();
}

static int connect_one(struct nctx *ctx, struct nclient **out, char *err, size_t errlen)
{
    struct nclient *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->ctx = ctx;
    natsStatus s = natsConnection_ConnectTo(&c->nc, ctx->url);
    if (s != NATS_OK) {
        snprintf(err, errlen, "connect %s: %s", ctx->url, natsStatus_GetText(s));
        free(c);
        return -ECONNREFUSED;
    }
    *out = c;
    return 0;
}

static int nats_producer_open(void *vctx, int id, void **pp, char *err, size_t errlen)
{
    (void)id;
    struct nclient *c;
    int rc = connect_one(vctx, &c, err, errlen);
    if (rc == 0)
        *pp = c;
    return rc;
}

static int nats_produce(void *vp, const void *data, size_t len)
{
    struct nclient *c = vp;
    natsStatus s = natsConnection_Publish(c->nc, c->ctx->subject, data, (int)len);
    return s == NATS_OK ? 0 : -EIO;
}

static void nats_producer_service(void *vp)
{
    (void)vp;
}

static int nats_producer_flush(void *vp, int timeout_ms, uint64_t *failed)
{
    struct nclient *c = vp;
    *failed = 0; /* NATS core has no per-message acknowledgement */
    natsStatus s = natsConnection_FlushTimeout(c->nc, timeout_ms);
    return s == NATS_OK ? 0 : -ETIMEDOUT;
}

static void nats_client_close(void *vc)
{
    struct nclient *c = vc;
    if (c->sub)
        natsSubscription_Destroy(c->sub);
    natsConnection_Destroy(c->nc);
    free(c);
}

static int nats_consumer_open(void *vctx, int id, void **cp, char *err, size_t errlen)
{
    (void)id;
    struct nclient *c;
    int rc = connect_one(vctx, &c, err, errlen);
    if (rc)
        return rc;
    natsStatus s = natsConnection_SubscribeSync(&c->sub, c->nc, c->ctx->subject);
    if (s == NATS_OK)
        s = natsSubscription_SetPendingLimits(c->sub, -1, -1);
    if (s == NATS_OK)
        s = natsConnection_Flush(c->nc); /* the server has the SUB once its PONG is back */
    if (s != NATS_OK) {
        snprintf(err, errlen, "subscribe %s: %s", c->ctx->subject, natsStatus_GetText(s));
        nats_client_close(c);
        return -EIO;
    }
    *cp = c;
    return 0;
}

static int nats_consumer_poll(void *vc, int timeout_ms, bench_deliver_fn *fn, void *arg)
{
    struct nclient *c = vc;
    int got = 0;
    natsMsg *m = NULL;
    natsStatus s = natsSubscription_NextMsg(&m, c->sub, timeout_ms);
    while (s == NATS_OK) {
        fn(arg, natsMsg_GetData(m), (size_t)natsMsg_GetDataLength(m));
        natsMsg_Destroy(m);
        got++;
        if (got >= 4096)
            break;
        s = natsSubscription_NextMsg(&m, c->sub, 0); /* 0: only what is already pending */
    }
    if (s == NATS_OK || s == NATS_TIMEOUT || s == NATS_SLOW_CONSUMER)
        return got; /* a slow consumer's drops show up as lost messages */
    return got ? got : -EIO;
}

const struct bench_system bench_nats_system = {
    .name = "nats",
    .setup = nats_setup,
    .teardown = nats_teardown,
    .producer_open = nats_producer_open,
    .produce = nats_produce,
    .producer_service = nats_producer_service,
    .producer_flush = nats_producer_flush,
    .producer_close = nats_client_close,
    .consumer_open = nats_consumer_open,
    .consumer_poll = nats_consumer_poll,
    .consumer_close = nats_client_close,
};
