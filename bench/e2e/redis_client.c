/*
 * redis_client.c - the load generator's Redis clients (hiredis): pub/sub and streams.
 *
 * Producers pipeline their commands (PUBLISH channel payload, or XADD stream * d payload) as
 * redis-benchmark -P 64 does: as fast as possible they write 64 commands at a time; at a fixed
 * rate each command is written as soon as it is due. Replies are read as they come, and the
 * producer waits for them once 256 are outstanding (back-pressure). A reply that is an error
 * counts as a failed message.
 *
 * A pub/sub consumer SUBSCRIBEs on its own connection and reads the pushed messages; a streams
 * consumer reads the whole stream from its beginning with XREAD BLOCK, so either way every
 * consumer receives every message. The pub/sub subscriber's output buffer limit is the
 * server's business: tools/bench starts redis-server without one, as it gives libnats
 * unlimited pending limits, so neither peer drops a subscriber for falling behind.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "client.h"
#include "schedule.h"

#define PIPELINE 64
#define WINDOW 256

struct rctx {
    const struct bench_options *o;
    int streams;
    char key[96];
};

struct rclient {
    redisContext *c;
    struct rctx *ctx;
    int unflushed;
    int outstanding;
    uint64_t failed;
    char last_id[64]; /* streams consumer: the last entry id read */
};

static int redis_setup_common(const struct bench_options *o, void **ctxp, int streams)
{
    struct rctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return -ENOMEM;
    ctx->o = o;
    ctx->streams = streams;
    snprintf(ctx->key, sizeof ctx->key, "sb-bench-%ld-%llu", (long)getpid(),
             (unsigned long long)(bench_now_ns() % 1000000000000ull));
    *ctxp = ctx;
    return 0;
}

static int pubsub_setup(const struct bench_options *o, void **ctxp, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    return redis_setup_common(o, ctxp, 0);
}

static int streams_setup(const struct bench_options *o, void **ctxp, char *err, size_t errlen)
{
    (void)err;
    (void)errlen;
    return redis_setup_common(o, ctxp, 1);
}

static void redis_teardown(void *vctx)
{
    struct rctx *ctx = vctx;
    if (ctx->streams) { /* free the server's memory for the next run */
        redisContext *c = redisConnect(ctx->o->host, ctx->o->port);
        if (c && !c->err) {
            redisReply *r = redisCommand(c, "DEL %s", ctx->key);
            if (r)
                freeReplyObject(r);
        }
        if (c)
            redisFree(c);
    }
    free(ctx);
}

static int connect_one(struct rctx *ctx, struct rclient **out, char *err, size_t errlen)
{
    struct rclient *rc = calloc(1, sizeof *rc);
    if (!rc)
        return -ENOMEM;
    rc->ctx = ctx;
    rc->c = redisConnect(ctx->o->host, ctx->o->port);
    if (!rc->c || rc->c->err) {
        snprintf(err, errlen, "connect %s: %s", ctx->o->addr,
                 rc->c ? rc->c->errstr : "out of memory");
        if (rc->c)
            redisFree(rc->c);
        free(rc);
        return -ECONNREFUSED;
    }
    strcpy(rc->last_id, "0");
    *out = rc;
    return 0;
}

static void client_close(void *vc)
{
    struct rclient *rc = vc;
    redisFree(rc->c);
    free(rc);
}

static int redis_producer_open(void *vctx, int id, void **pp, char *err, size_t errlen)
{
    (void)id;
    struct rclient *rc;
    int r = connect_one(vctx, &rc, err, errlen);
    if (r == 0)
        *pp = rc;
    return r;
}

/* Write out what is buffered. */
static int flush_out(struct rclient *rc)
{
    int done = 0;
    while (!done)
        if (redisBufferWrite(rc->c, &done) != REDIS_OK)
            return -EIO;
    rc->unflushed = 0;
    return 0;
}

static void take_reply(struct rclient *rc, redisReply *r)
{
    if (r->type == REDIS_REPLY_ERROR)
        rc->failed++;
    freeReplyObject(r);
    rc->outstanding--;
}

/* Read the replies that have arrived; with @block, wait until at least one has. */
static int read_replies(struct rclient *rc, int block)
{
    for (;;) {
        void *r = NULL;
        if (redisGetReplyFromReader(rc->c, &r) != REDIS_OK)
            return -EIO;
        if (r) {
            take_reply(rc, r);
            block = 0;
            continue;
        }
        if (rc->outstanding == 0)
            return 0;
        struct pollfd pfd = {.fd = rc->c->fd, .events = POLLIN};
        int n = poll(&pfd, 1, block ? 1000 : 0);
        if (n < 0 && errno != EINTR)
            return -errno;
        if (n <= 0) {
            if (block)
                continue;
            return 0;
        }
        if (redisBufferRead(rc->c) != REDIS_OK)
            return -EIO;
    }
}

static int redis_produce(void *vp, const void *data, size_t len)
{
    struct rclient *rc = vp;
    int r = rc->ctx->streams ? redisAppendCommand(rc->c, "XADD %s * d %b", rc->ctx->key, data, len)
                             : redisAppendCommand(rc->c, "PUBLISH %s %b", rc->ctx->key, data, len);
    if (r != REDIS_OK)
        return -EIO;
    rc->outstanding++;
    rc->unflushed++;
    if (rc->ctx->o->rate > 0 || rc->unflushed >= PIPELINE) {
        if (flush_out(rc))
            return -EIO;
        if (read_replies(rc, 0))
            return -EIO;
    }
    while (rc->outstanding >= WINDOW)
        if (read_replies(rc, 1))
            return -EIO;
    return 0;
}

static void redis_producer_service(void *vp)
{
    struct rclient *rc = vp;
    if (rc->unflushed)
        flush_out(rc);
    read_replies(rc, 0);
}

static int redis_producer_flush(void *vp, int timeout_ms, uint64_t *failed)
{
    (void)timeout_ms;
    struct rclient *rc = vp;
    int r = flush_out(rc);
    while (r == 0 && rc->outstanding > 0)
        r = read_replies(rc, 1);
    *failed = rc->failed + (uint64_t)rc->outstanding;
    return r;
}

static int redis_consumer_open(void *vctx, int id, void **cp, char *err, size_t errlen)
{
    (void)id;
    struct rclient *rc;
    int r = connect_one(vctx, &rc, err, errlen);
    if (r)
        return r;
    if (!rc->ctx->streams) {
        redisReply *rep = redisCommand(rc->c, "SUBSCRIBE %s", rc->ctx->key);
        if (!rep || rep->type != REDIS_REPLY_ARRAY) {
            snprintf(err, errlen, "SUBSCRIBE %s failed", rc->ctx->key);
            if (rep)
                freeReplyObject(rep);
            client_close(rc);
            return -EIO;
        }
        freeReplyObject(rep); /* the confirmation: subscribed from here on */
    }
    *cp = rc;
    return 0;
}

static int pubsub_poll(struct rclient *rc, int timeout_ms, bench_deliver_fn *fn, void *arg)
{
    int got = 0;
    for (;;) {
        void *v = NULL;
        if (redisGetReplyFromReader(rc->c, &v) != REDIS_OK)
            return got ? got : -EIO;
        if (v) {
            redisReply *r = v;
            if (r->type == REDIS_REPLY_ARRAY && r->elements == 3 &&
                r->element[2]->type == REDIS_REPLY_STRING) {
                fn(arg, r->element[2]->str, r->element[2]->len);
                got++;
            }
            freeReplyObject(r);
            continue;
        }
        if (got >= 4096)
            return got;
        struct pollfd pfd = {.fd = rc->c->fd, .events = POLLIN};
        int n = poll(&pfd, 1, got ? 0 : timeout_ms);
        if (n < 0 && errno != EINTR)
            return got ? got : -errno;
        if (n <= 0)
            return got;
        if (redisBufferRead(rc->c) != REDIS_OK)
            return got ? got : -EIO;
    }
}

static int streams_poll(struct rclient *rc, int timeout_ms, bench_deliver_fn *fn, void *arg)
{
    redisReply *r = redisCommand(rc->c, "XREAD COUNT 4096 BLOCK %d STREAMS %s %s",
                                 timeout_ms > 0 ? timeout_ms : 1, rc->ctx->key, rc->last_id);
    if (!r)
        return -EIO;
    int got = 0;
    /* [[key, [[id, [field, value]], ...]]] or nil on timeout */
    if (r->type == REDIS_REPLY_ARRAY && r->elements == 1 && r->element[0]->elements == 2) {
        redisReply *entries = r->element[0]->element[1];
        for (size_t i = 0; i < entries->elements; i++) {
            redisReply *e = entries->element[i];
            if (e->elements != 2 || e->element[1]->elements != 2)
                continue;
            redisReply *val = e->element[1]->element[1];
            fn(arg, val->str, val->len);
            got++;
            snprintf(rc->last_id, sizeof rc->last_id, "%s", e->element[0]->str);
        }
    } else if (r->type == REDIS_REPLY_ERROR) {
        freeReplyObject(r);
        return -EIO;
    }
    freeReplyObject(r);
    return got;
}

static int redis_consumer_poll(void *vc, int timeout_ms, bench_deliver_fn *fn, void *arg)
{
    struct rclient *rc = vc;
    return rc->ctx->streams ? streams_poll(rc, timeout_ms, fn, arg)
                            : pubsub_poll(rc, timeout_ms, fn, arg);
}

const struct bench_system bench_redis_pubsub_system = {
    .name = "redis-pubsub",
    .setup = pubsub_setup,
    .teardown = redis_teardown,
    .producer_open = redis_producer_open,
    .produce = redis_produce,
    .producer_service = redis_producer_service,
    .producer_flush = redis_producer_flush,
    .producer_close = client_close,
    .consumer_open = redis_consumer_open,
    .consumer_poll = redis_consumer_poll,
    .consumer_close = client_close,
};

const struct bench_system bench_redis_streams_system = {
    .name = "redis-streams",
    .setup = streams_setup,
    .teardown = redis_teardown,
    .producer_open = redis_producer_open,
    .produce = redis_produce,
    .producer_service = redis_producer_service,
    .producer_flush = redis_producer_flush,
    .producer_close = client_close,
    .consumer_open = redis_consumer_open,
    .consumer_poll = redis_consumer_poll,
    .consumer_close = client_close,
};
