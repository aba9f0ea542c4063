/*
 * native_client.c - shardbus-bench's native Kafka-protocol client (see native_client.h).
 *
 * Requests are written with io/kafka_codec.h's writer (the fixed part) and sent with the record
 * batches, built in place by io/record_batch.h, as an iovec: a batch is never copied on the
 * way out. Responses are cut out of the connection's bytes as int32-sized frames and read
 * with the bounds-checked reader; nothing of them is trusted.
 */
#define _GNU_SOURCE
#include "native_client.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "kafka_codec.h"
#include "record_batch.h"
#include "schedule.h"
#include "varint.h"

#define CLIENT_ID "shardbus-bench"
#define PRODUCE_VERSION 7
#define FETCH_VERSION 11
#define METADATA_VERSION 4
#define CREATE_TOPICS_VERSION 2
#define FETCH_MAX_WAIT_MS 100
#define FETCH_PARTITION_MAX_BYTES (1 << 20)
#define FETCH_MAX_BYTES (50 << 20)
#define MAX_RESPONSE_BYTES (256u << 20)
#define LEADER_NOT_AVAILABLE 5
#define REQUEST_TIMED_OUT 7

struct nctx {
    const struct bench_options *o;
    char topic[96];
    int io_timeout_ms; /* the longest wait for one answer: --drain-timeout */
};

/* One connection: a non-blocking socket and the bytes received but not yet consumed. */
struct nconn {
    int fd;
    const char *addr;
    unsigned char *rbuf;
    size_t rstart, rlen, rcap; /* unconsumed bytes are rbuf[rstart, rlen) */
    size_t frame_bytes;        /* size of the frame next_frame() handed out, with its prefix */
    int32_t next_corr;
    uint64_t responses;
};

/* ---- the connection ------------------------------------------------------------------- */

static int conn_open(struct nconn *c, const struct bench_options *o, char *err, size_t errlen)
{
    memset(c, 0, sizeof *c);
    c->fd = -1;
    c->addr = o->addr;
    c->next_corr = 1;
    char port[16];
    snprintf(port, sizeof port, "%d", o->port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
    int gai = getaddrinfo(o->host, port, &hints, &res);
    if (gai) {
        snprintf(err, errlen, "cannot resolve %s: %s", o->addr, gai_strerror(gai));
        return -EHOSTUNREACH;
    }
    int rc = -ECONNREFUSED;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            rc = -errno;
            continue;
        }
        if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
            rc = -errno;
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
            rc = -errno;
            close(fd);
            continue;
        }
        c->fd = fd;
        rc = 0;
        break;
    }
    freeaddrinfo(res);
    if (rc) {
        snprintf(err, errlen, "cannot connect to %s: %s", o->addr, strerror(-rc));
        return rc;
    }
    c->rcap = 1 << 20;
    c->rbuf = malloc(c->rcap);
    if (!c->rbuf) {
        close(c->fd);
        c->fd = -1;
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    return 0;
}

static void conn_close(struct nconn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    free(c->rbuf);
    c->rbuf = NULL;
}

static int ms_until(uint64_t deadline_ns)
{
    uint64_t now = bench_now_ns();
    if (now >= deadline_ns)
        return 0;
    uint64_t ms = (deadline_ns - now + 999999u) / 1000000u;
    return ms > 1000000 ? 1000000 : (int)ms;
}

/* Send the whole iovec (modified as it goes), waiting for room until @deadline_ns. */
static int conn_sendv(struct nconn *c, struct iovec *iov, int iovcnt, uint64_t deadline_ns,
                      char *err, size_t errlen)
{
    while (iovcnt > 0) {
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = (size_t)iovcnt};
        ssize_t n = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                int e = errno;
                snprintf(err, errlen, "send to %s failed: %s (connection %s)", c->addr, strerror(e),
                         e == EPIPE || e == ECONNRESET ? "closed by the server" : "broken");
                return -e;
            }
            struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
            int left = ms_until(deadline_ns);
            int pr = left ? poll(&pfd, 1, left) : 0;
            if (pr < 0 && errno == EINTR)
                continue;
            if (pr == 0) {
                snprintf(err, errlen, "send to %s timed out: no room in the socket buffer (the "
                                      "server stopped reading)", c->addr);
                return -ETIMEDOUT;
            }
            continue;
        }
        size_t done = (size_t)n;
        while (iovcnt > 0 && done >= iov->iov_len) {
            done -= iov->iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov->iov_base = (char *)iov->iov_base + done;
            iov->iov_len -= done;
        }
    }
    return 0;
}

/*
 * The next complete frame (after its int32 size), waiting until @deadline_ns for its bytes (0:
 * only what already arrived). Returns 1 with *body and *len (valid until conn_consume()), 0
 * when none is complete by then, or -errno with @err set (closed, reset, oversized).
 */
static int conn_next_frame(struct nconn *c, uint64_t deadline_ns, const unsigned char **body,
                           size_t *len, char *err, size_t errlen)
{
    for (;;) {
        size_t have = c->rlen - c->rstart;
        if (have >= 4) {
            uint32_t size = sb_be32_get(c->rbuf + c->rstart);
            if (size < 4 || size > MAX_RESPONSE_BYTES) {
                snprintf(err, errlen, "answer from %s with an impossible size %u", c->addr, size);
                return -EBADMSG;
            }
            if (have >= 4 + (size_t)size) {
                *body = c->rbuf + c->rstart + 4;
                *len = size;
                c->frame_bytes = 4 + (size_t)size;
                return 1;
            }
            if (c->rstart + 4 + (size_t)size > c->rcap) { /* make room: compact, then grow */
                memmove(c->rbuf, c->rbuf + c->rstart, have);
                c->rlen = have;
                c->rstart = 0;
                if (4 + (size_t)size > c->rcap) {
                    size_t cap = c->rcap;
                    while (cap < 4 + (size_t)size)
                        cap *= 2;
                    unsigned char *nb = realloc(c->rbuf, cap);
                    if (!nb) {
                        snprintf(err, errlen, "out of memory for a %u-byte answer", size);
                        return -ENOMEM;
                    }
                    c->rbuf = nb;
                    c->rcap = cap;
                }
            }
        } else if (c->rstart > 0 && c->rcap - c->rlen < 4096) {
            memmove(c->rbuf, c->rbuf + c->rstart, have);
            c->rlen = have;
            c->rstart = 0;
        }
        ssize_t n = recv(c->fd, c->rbuf + c->rlen, c->rcap - c->rlen, 0);
        if (n > 0) {
            c->rlen += (size_t)n;
            continue;
        }
        if (n == 0) {
            snprintf(err, errlen, "connection closed by %s after %llu answer(s)%s", c->addr,
                     (unsigned long long)c->responses, have ? ", in the middle of one" : "");
            return -ECONNRESET;
        }
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            int e = errno;
            snprintf(err, errlen, "receive from %s failed: %s after %llu answer(s)", c->addr,
                     strerror(e), (unsigned long long)c->responses);
            return -e;
        }
        int left = ms_until(deadline_ns);
        if (left == 0)
            return 0;
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (poll(&pfd, 1, left) < 0 && errno != EINTR) {
            int e = errno;
            snprintf(err, errlen, "poll: %s", strerror(e));
            return -e;
        }
    }
}

static void conn_consume(struct nconn *c)
{
    c->rstart += c->frame_bytes;
    c->frame_bytes = 0;
    c->responses++;
    if (c->rstart == c->rlen)
        c->rstart = c->rlen = 0;
}

/* A request's frame size, header v1 (api key, version, correlation id, client id). */
static size_t request_begin(struct sb_kwriter *w, struct nconn *c, int16_t api, int16_t version,
                            int32_t *corr)
{
    size_t frame = sb_kw_frame_begin(w);
    *corr = c->next_corr++;
    sb_kw_i16(w, api);
    sb_kw_i16(w, version);
    sb_kw_i32(w, *corr);
    sb_kw_string(w, CLIENT_ID, -1);
    return frame;
}

/* Send a whole request from @w and wait for its answer: a reader after the correlation id. */
static int roundtrip(struct nconn *c, struct sb_kwriter *w, int32_t corr, int timeout_ms,
                     struct sb_kreader *r, const char *what, char *err, size_t errlen)
{
    if (w->error) {
        snprintf(err, errlen, "out of memory");
        return -ENOMEM;
    }
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    struct iovec iov = {.iov_base = w->buf, .iov_len = w->len};
    int rc = conn_sendv(c, &iov, 1, deadline, err, errlen);
    if (rc)
        return rc;
    const unsigned char *body;
    size_t len;
    rc = conn_next_frame(c, deadline, &body, &len, err, errlen);
    if (rc == 0) {
        snprintf(err, errlen, "%s: no answer from %s within %d ms", what, c->addr, timeout_ms);
        return -ETIMEDOUT;
    }
    if (rc < 0)
        return rc;
    conn_consume(c); /* the bytes stay where they are until the next receive */
    sb_kreader_init(r, body, len);
    int32_t got = sb_kr_i32(r);
    if (got != corr) {
        snprintf(err, errlen, "%s: answer with correlation id %d, expected %d", what, got, corr);
        return -EBADMSG;
    }
    return 0;
}

static const char *kafka_error_name(int e)
{
    switch (e) {
    case 0: return "NONE";
    case 1: return "OFFSET_OUT_OF_RANGE";
    case 2: return "CORRUPT_MESSAGE";
    case 3: return "UNKNOWN_TOPIC_OR_PARTITION";
    case 5: return "LEADER_NOT_AVAILABLE";
    case 6: return "NOT_LEADER_OR_FOLLOWER";
    case 7: return "REQUEST_TIMED_OUT";
    case 10: return "MESSAGE_TOO_LARGE";
    case 21: return "INVALID_REQUIRED_ACKS";
    case 35: return "UNSUPPORTED_VERSION";
    case 36: return "TOPIC_ALREADY_EXISTS";
    case 37: return "INVALID_PARTITIONS";
    case 42: return "INVALID_REQUEST";
    case 76: return "UNSUPPORTED_COMPRESSION_TYPE";
    case 87: return "INVALID_RECORD";
    default: return "see Kafka's error codes";
    }
}

/* ---- setup: the topic --------------------------------------------------------------------- */

/* Metadata v4 of the topic: 1 when it exists with all its partitions, 0 not yet, -errno. */
static int topic_ready(struct nconn *c, struct nctx *ctx, char *err, size_t errlen)
{
    struct sb_kwriter w;
    sb_kwriter_init(&w);
    int32_t corr;
    size_t frame = request_begin(&w, c, SB_KAFKA_METADATA, METADATA_VERSION, &corr);
    sb_kw_array_len(&w, 1);
    sb_kw_string(&w, ctx->topic, -1);
    sb_kw_i8(&w, 1); /* allow_auto_topic_creation */
    sb_kw_frame_end(&w, frame);
    struct sb_kreader r;
    int rc = roundtrip(c, &w, corr, ctx->io_timeout_ms, &r, "Metadata", err, errlen);
    sb_kwriter_free(&w);
    if (rc)
        return rc;
    (void)sb_kr_i32(&r); /* throttle_time_ms */
    int32_t brokers = sb_kr_array_len(&r, 10);
    for (int32_t i = 0; i < brokers && !r.error; i++) {
        (void)sb_kr_i32(&r);
        (void)sb_kr_string(&r);
        (void)sb_kr_i32(&r);
        (void)sb_kr_string(&r); /* rack */
    }
    (void)sb_kr_string(&r); /* cluster id */
    (void)sb_kr_i32(&r);    /* controller */
    int32_t topics = sb_kr_array_len(&r, 8);
    int ready = 0;
    for (int32_t t = 0; t < topics && !r.error; t++) {
        int16_t terr = sb_kr_i16(&r);
        struct sb_kslice name = sb_kr_string(&r);
        (void)sb_kr_i8(&r);
        int32_t parts = sb_kr_array_len(&r, 18);
        int good = 0;
        for (int32_t p = 0; p < parts && !r.error; p++) {
            int16_t perr = sb_kr_i16(&r);
            (void)sb_kr_i32(&r); /* index */
            (void)sb_kr_i32(&r); /* leader */
            int32_t n = sb_kr_array_len(&r, 4);
            for (int32_t i = 0; i < n && !r.error; i++)
                (void)sb_kr_i32(&r);
            n = sb_kr_array_len(&r, 4);
            for (int32_t i = 0; i < n && !r.error; i++)
                (void)sb_kr_i32(&r);
            good += perr == 0;
        }
        if (name.len == (int32_t)strlen(ctx->topic) && !memcmp(name.ptr, ctx->topic, (size_t)name.len)) {
            if (terr && terr != LEADER_NOT_AVAILABLE) {
                snprintf(err, errlen, "Metadata of %s: error %d (%s)", ctx->topic, terr,
                         kafka_error_name(terr));
                return -EIO;
            }
            ready = terr == 0 && good == ctx->o->partitions;
        }
    }
    if (r.error) {
        snprintf(err, errlen, "Metadata: malformed answer from %s", c->addr);
        return -EBADMSG;
    }
    return ready;
}

static int native_setup(const struct bench_options *o, void **ctxp, char *err, size_t errlen)
{
    struct nctx *ctx = calloc(1, sizeof *ctx);
    if (!ctx)
        return -ENOMEM;
    ctx->o = o;
    ctx->io_timeout_ms = (int)(o->drain_timeout_s * 1000);
    snprintf(ctx->topic, sizeof ctx->topic, "sb-bench-native-%ld-%llu", (long)getpid(),
             (unsigned long long)(bench_now_ns() % 1000000000000ull));
    struct nconn c;
    int rc = conn_open(&c, o, err, errlen);
    if (rc) {
        free(ctx);
        return rc;
    }
    /* CreateTopics v2: the topic, --partitions, replication 1, no assignments or configs. */
    struct sb_kwriter w;
    sb_kwriter_init(&w);
    int32_t corr;
    size_t frame = request_begin(&w, &c, SB_KAFKA_CREATE_TOPICS, CREATE_TOPICS_VERSION, &corr);
    sb_kw_array_len(&w, 1);
    sb_kw_string(&w, ctx->topic, -1);
    sb_kw_i32(&w, o->partitions);
    sb_kw_i16(&w, 1);
    sb_kw_array_len(&w, 0);
    sb_kw_array_len(&w, 0);
    sb_kw_i32(&w, 10000); /* timeout_ms */
    sb_kw_i8(&w, 0);      /* validate_only */
    sb_kw_frame_end(&w, frame);
    struct sb_kreader r;
    rc = roundtrip(&c, &w, corr, ctx->io_timeout_ms + 10000, &r, "CreateTopics", err, errlen);
    sb_kwriter_free(&w);
    if (rc == 0) {
        (void)sb_kr_i32(&r); /* throttle_time_ms */
        int32_t n = sb_kr_array_len(&r, 4);
        struct sb_kslice name = sb_kr_string(&r);
        int16_t e = sb_kr_i16(&r);
        struct sb_kslice msg = sb_kr_string(&r);
        if (r.error || n != 1 || name.len != (int32_t)strlen(ctx->topic)) {
            snprintf(err, errlen, "CreateTopics: malformed answer from %s", o->addr);
            rc = -EBADMSG;
        } else if (e) {
            snprintf(err, errlen, "CreateTopics %s: error %d (%s)%s%.*s", ctx->topic, e,
                     kafka_error_name(e), msg.len > 0 ? ": " : "", msg.len > 0 ? (int)msg.len : 0,
                     msg.len > 0 ? (const char *)msg.ptr : "");
            rc = -EIO;
        }
    }
    /* Then Metadata until every partition has its leader (at most the I/O timeout). */
    uint64_t until = bench_now_ns() + (uint64_t)ctx->io_timeout_ms * 1000000u;
    while (rc == 0) {
        int ready = topic_ready(&c, ctx, err, errlen);
        if (ready < 0)
            rc = ready;
        else if (ready)
            break;
        else if (bench_now_ns() > until) {
            snprintf(err, errlen, "topic %s: not every partition has a leader after %d ms",
                     ctx->topic, ctx->io_timeout_ms);
            rc = -ETIMEDOUT;
        } else {
            struct timespec ts = {0, 20000000};
            nanosleep(&ts, NULL);
        }
    }
    conn_close(&c);
    if (rc) {
        free(ctx);
        return rc;
    }
    *ctxp = ctx;
    return 0;
}

static void native_teardown(void *ctx)
{
    free(ctx);
}

/* ---- producer ----------------------------------------------------------------------------- */

struct npart {
    unsigned char *buf; /* this partition's batch, built in place */
    size_t cap;
    struct sb_batch_builder b;
    unsigned char hdr[8]; /* partition index and records length, in the request */
    int64_t next_offset;  /* expected base offset of its next acknowledged batch, -1: unknown */
};

struct ninflight {
    int32_t corr;
    uint32_t msgs;
    int32_t *counts; /* per partition: records of this request, 0 when it had no batch */
};

struct nproducer {
    struct nctx *ctx;
    const struct bench_options *o;
    int id;
    struct nconn c;
    int parts;
    struct npart *pp;
    int rr;            /* the partition of the next message */
    uint32_t pending;  /* messages in the batches being filled */
    uint32_t full;     /* pending at which the request is full: --batch per partition */
    uint64_t first_ns; /* when the first pending message was added */
    uint64_t linger_ns;
    int16_t acks;
    int64_t ts_ms; /* record timestamp of the batches being filled */
    struct ninflight *infl; /* ring of --inflight entries */
    int infl_cap, infl_head, infl_count;
    struct sb_kwriter w; /* the fixed part of the request being sent */
    struct iovec *iov;
    uint64_t handed; /* messages given to produce() */
    uint64_t acked;  /* messages acknowledged (or sent, with acks=0) */
    int failed;      /* an error ended this producer; err says why */
    char err[400];
};

static void producer_fail(struct nproducer *p, int rc)
{
    if (p->failed)
        return;
    p->failed = rc ? rc : -EIO;
    fprintf(stderr, "shardbus-bench: %s producer %d: %s\n", p->o->label, p->id, p->err);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int native_producer_open(void *vctx, int id, void **pp, char *err, size_t errlen)
{
    struct nctx *ctx = vctx;
    const struct bench_options *o = ctx->o;
    struct nproducer *p = calloc(1, sizeof *p);
    if (!p)
        return -ENOMEM;
    p->ctx = ctx;
    p->o = o;
    p->id = id;
    p->parts = o->partitions;
    p->rr = id % p->parts;
    p->full = (uint32_t)o->batch * (uint32_t)p->parts;
    p->linger_ns = (uint64_t)o->linger_ms * 1000000u;
    p->acks = !strcmp(o->acks, "0") ? 0 : !strcmp(o->acks, "1") ? 1 : -1;
    p->infl_cap = o->inflight;
    p->pp = calloc((size_t)p->parts, sizeof *p->pp);
    p->infl = calloc((size_t)p->infl_cap, sizeof *p->infl);
    p->iov = calloc(1 + 2 * (size_t)p->parts, sizeof *p->iov);
    sb_kwriter_init(&p->w);
    int rc;
    if (!p->pp || !p->infl || !p->iov)
        goto nomem;
    size_t cap = SB_BATCH_HEADER_BYTES + (size_t)o->batch * sb_batch_record_bound(0, o->size);
    for (int i = 0; i < p->parts; i++) {
        p->pp[i].cap = cap;
        p->pp[i].buf = malloc(cap);
        p->pp[i].next_offset = o->producers == 1 ? 0 : -1;
        if (!p->pp[i].buf)
            goto nomem;
        sb_batch_begin(&p->pp[i].b, p->pp[i].buf, cap);
    }
    for (int i = 0; i < p->infl_cap; i++)
        if (!(p->infl[i].counts = calloc((size_t)p->parts, sizeof(int32_t))))
            goto nomem;
    rc = conn_open(&p->c, o, err, errlen);
    if (rc)
        goto fail;
    *pp = p;
    return 0;
nomem:
    snprintf(err, errlen, "out of memory for %d partition batches of %d records", p->parts, o->batch);
    rc = -ENOMEM;
fail:
    if (p->pp)
        for (int i = 0; i < p->parts; i++)
            free(p->pp[i].buf);
    if (p->infl)
        for (int i = 0; i < p->infl_cap; i++)
            free(p->infl[i].counts);
    free(p->pp);
    free(p->infl);
    free(p->iov);
    sb_kwriter_free(&p->w);
    free(p);
    return rc;
}

/* Check one Produce response against the oldest request in flight. */
static int producer_check_response(struct nproducer *p, const unsigned char *body, size_t len)
{
    struct ninflight *f = &p->infl[p->infl_head];
    struct sb_kreader r;
    sb_kreader_init(&r, body, len);
    int32_t corr = sb_kr_i32(&r);
    if (corr != f->corr) {
        snprintf(p->err, sizeof p->err, "Produce answer with correlation id %d, expected %d "
                                        "(answers out of order)", corr, f->corr);
        return -EBADMSG;
    }
    int32_t topics = sb_kr_array_len(&r, 6);
    struct sb_kslice name = sb_kr_string(&r);
    int32_t parts = sb_kr_array_len(&r, 30);
    if (r.error || topics != 1 || name.len != (int32_t)strlen(p->ctx->topic) ||
        memcmp(name.ptr, p->ctx->topic, (size_t)name.len)) {
        snprintf(p->err, sizeof p->err, "Produce answer %d: malformed or for another topic", corr);
        return -EBADMSG;
    }
    int expected = 0;
    for (int i = 0; i < p->parts; i++)
        expected += f->counts[i] > 0;
    if (parts != expected) {
        snprintf(p->err, sizeof p->err, "Produce answer %d: %d partitions, the request had %d",
                 corr, parts, expected);
        return -EBADMSG;
    }
    for (int32_t i = 0; i < parts; i++) {
        int32_t idx = sb_kr_i32(&r);
        int16_t e = sb_kr_i16(&r);
        int64_t base = sb_kr_i64(&r);
        (void)sb_kr_i64(&r); /* log_append_time_ms */
        (void)sb_kr_i64(&r); /* log_start_offset */
        if (r.error)
            break;
        if (idx < 0 || idx >= p->parts || f->counts[idx] <= 0) {
            snprintf(p->err, sizeof p->err, "Produce answer %d: partition %d was not in the "
                                            "request (or twice in the answer)", corr, idx);
            return -EBADMSG;
        }
        if (e) {
            snprintf(p->err, sizeof p->err, "Produce answer %d: partition %d: error %d (%s)%s",
                     corr, idx, e, kafka_error_name(e),
                     e == SB_KAFKA_MESSAGE_TOO_LARGE
                         ? ": --batch x --size is above the server's --max-message-bytes"
                         : "");
            return -EIO;
        }
        struct npart *pt = &p->pp[idx];
        if (p->o->producers == 1 ? base != pt->next_offset : base < pt->next_offset) {
            snprintf(p->err, sizeof p->err, "Produce answer %d: partition %d: base offset %lld, "
                     "expected %s%lld (the previous batch's base + its record count)", corr, idx,
                     (long long)base, p->o->producers == 1 ? "" : "at least ",
                     (long long)pt->next_offset);
            return -EBADMSG;
        }
        pt->next_offset = base + f->counts[idx];
        f->counts[idx] = 0;
    }
    (void)sb_kr_i32(&r); /* throttle_time_ms */
    if (r.error) {
        snprintf(p->err, sizeof p->err, "Produce answer %d: truncated", corr);
        return -EBADMSG;
    }
    p->acked += f->msgs;
    p->infl_head = (p->infl_head + 1) % p->infl_cap;
    p->infl_count--;
    return 0;
}

/* Read the answers that already arrived; with @deadline_ns (not 0), first wait until one
 * arrives, and fail when none did by then. */
static int producer_read(struct nproducer *p, uint64_t deadline_ns)
{
    int got = 0;
    while (p->infl_count > 0) {
        const unsigned char *body;
        size_t len;
        int rc = conn_next_frame(&p->c, got ? 0 : deadline_ns, &body, &len, p->err,
                                 sizeof p->err);
        if (rc < 0)
            return rc;
        if (rc == 0) {
            if (!got && deadline_ns) {
                snprintf(p->err, sizeof p->err, "no answer to Produce %d from %s within %d ms",
                         p->infl[p->infl_head].corr, p->c.addr, p->ctx->io_timeout_ms);
                return -ETIMEDOUT;
            }
            return 0;
        }
        rc = producer_check_response(p, body, len);
        conn_consume(&p->c);
        if (rc)
            return rc;
        got++;
    }
    return 0;
}

/* Send the batches being filled as one Produce request (a slot must be free). */
static int producer_send(struct nproducer *p)
{
    struct sb_kwriter *w = &p->w;
    w->len = 0;
    int32_t corr;
    size_t frame = request_begin(w, &p->c, SB_KAFKA_PRODUCE, PRODUCE_VERSION, &corr);
    sb_kw_i16(w, -1); /* transactional_id: null */
    sb_kw_i16(w, p->acks);
    sb_kw_i32(w, 30000); /* timeout_ms */
    sb_kw_array_len(w, 1);
    sb_kw_string(w, p->ctx->topic, -1);
    int nparts = 0;
    for (int i = 0; i < p->parts; i++)
        nparts += p->pp[i].b.count > 0;
    sb_kw_array_len(w, nparts);
    if (w->error) {
        snprintf(p->err, sizeof p->err, "out of memory");
        return -ENOMEM;
    }
    struct ninflight *f = p->acks ? &p->infl[(p->infl_head + p->infl_count) % p->infl_cap] : NULL;
    size_t total = w->len - 4;
    int n = 1;
    for (int i = 0; i < p->parts; i++) {
        struct npart *pt = &p->pp[i];
        if (f)
            f->counts[i] = pt->b.count;
        if (pt->b.count == 0)
            continue;
        size_t blen = sb_batch_finish(&pt->b, 0, false);
        sb_be32_put(pt->hdr, (uint32_t)i);
        sb_be32_put(pt->hdr + 4, (uint32_t)blen);
        p->iov[n++] = (struct iovec){.iov_base = pt->hdr, .iov_len = 8};
        p->iov[n++] = (struct iovec){.iov_base = pt->buf, .iov_len = blen};
        total += 8 + blen;
    }
    sb_be32_put(w->buf + frame, (uint32_t)total);
    p->iov[0] = (struct iovec){.iov_base = w->buf, .iov_len = w->len};
    uint64_t deadline = bench_now_ns() + (uint64_t)p->ctx->io_timeout_ms * 1000000u;
    int rc = conn_sendv(&p->c, p->iov, n, deadline, p->err, sizeof p->err);
    if (rc)
        return rc;
    if (f) {
        f->corr = corr;
        f->msgs = p->pending;
        p->infl_count++;
    } else {
        p->acked += p->pending;
    }
    p->pending = 0;
    for (int i = 0; i < p->parts; i++)
        sb_batch_begin(&p->pp[i].b, p->pp[i].buf, p->pp[i].cap);
    return 0;
}

/* Send when the request is full (waiting for a slot) or lingered long enough (if a slot is
 * free); read the answers that arrived either way. */
static int producer_pump(struct nproducer *p, bool force)
{
    if (p->pending == 0)
        return p->infl_count ? producer_read(p, 0) : 0;
    bool full = p->pending >= p->full;
    if (!full && !force && bench_now_ns() - p->first_ns < p->linger_ns)
        return 0; /* no system call per message while a batch fills */
    int rc = producer_read(p, 0);
    if (rc)
        return rc;
    if (p->acks && p->infl_count == p->infl_cap) {
        if (!full && !force)
            return 0; /* keep filling while every slot is taken */
        rc = producer_read(p, bench_now_ns() + (uint64_t)p->ctx->io_timeout_ms * 1000000u);
        if (rc)
            return rc;
    }
    return producer_send(p);
}

static int native_produce(void *vp, const void *data, size_t len)
{
    struct nproducer *p = vp;
    if (p->failed)
        return p->failed;
    if (p->pending == 0) {
        p->first_ns = bench_now_ns();
        p->ts_ms = wall_ms();
    }
    struct npart *pt = &p->pp[p->rr];
    if (sb_batch_add(&pt->b, p->ts_ms, NULL, 0, data, len) != 0) {
        snprintf(p->err, sizeof p->err, "a %zu-byte message does not fit its batch", len);
        producer_fail(p, -ENOSPC);
        return p->failed;
    }
    if (++p->rr == p->parts)
        p->rr = 0;
    p->pending++;
    p->handed++;
    int rc = producer_pump(p, false);
    if (rc) {
        producer_fail(p, rc);
        p->handed--; /* the caller does not count a message whose call failed as sent */
    }
    return p->failed;
}

static void native_producer_service(void *vp)
{
    struct nproducer *p = vp;
    if (p->failed)
        return;
    int rc = producer_pump(p, false);
    if (rc)
        producer_fail(p, rc);
}

static int native_producer_flush(void *vp, int timeout_ms, uint64_t *failed)
{
    struct nproducer *p = vp;
    uint64_t deadline = bench_now_ns() + (uint64_t)timeout_ms * 1000000u;
    int rc = p->failed;
    if (!rc && p->pending)
        rc = producer_pump(p, true);
    while (!rc && p->infl_count > 0) {
        if (bench_now_ns() >= deadline) {
            snprintf(p->err, sizeof p->err, "flush: %d Produce request(s) unanswered after %d ms",
                     p->infl_count, timeout_ms);
            rc = -ETIMEDOUT;
            break;
        }
        rc = producer_read(p, deadline);
    }
    if (rc)
        producer_fail(p, rc);
    *failed = p->handed - p->acked;
    return p->failed;
}

static void native_producer_close(void *vp)
{
    struct nproducer *p = vp;
    if (!p)
        return;
    conn_close(&p->c);
    for (int i = 0; i < p->parts; i++)
        free(p->pp[i].buf);
    for (int i = 0; i < p->infl_cap; i++)
        free(p->infl[i].counts);
    free(p->pp);
    free(p->infl);
    free(p->iov);
    sb_kwriter_free(&p->w);
    free(p);
}

/* ---- consumer ----------------------------------------------------------------------------- */

struct nbatch {
    const unsigned char *ptr;
    size_t len;
    int64_t skip_below; /* the fetch offset its partition was asked from */
};

struct nconsumer {
    struct nctx *ctx;
    const struct bench_options *o;
    int id;
    struct nconn c;
    int parts;
    int64_t *offset;     /* next offset to fetch, per partition */
    int64_t *asked;      /* the offsets of the fetch in flight */
    bool in_flight;
    int32_t corr;
    uint64_t sent_ns;
    struct sb_kwriter w;
    struct nbatch *batches;
    size_t nbatches, batches_cap;
    int failed;
    char err[400];
};

static void consumer_fail(struct nconsumer *c, int rc)
{
    if (c->failed)
        return;
    c->failed = rc ? rc : -EIO;
    fprintf(stderr, "shardbus-bench: %s consumer %d: %s\n", c->o->label, c->id, c->err);
}

static int consumer_send_fetch(struct nconsumer *c)
{
    struct sb_kwriter *w = &c->w;
    w->len = 0;
    size_t frame = request_begin(w, &c->c, SB_KAFKA_FETCH, FETCH_VERSION, &c->corr);
    sb_kw_i32(w, -1); /* replica_id */
    sb_kw_i32(w, FETCH_MAX_WAIT_MS);
    sb_kw_i32(w, 1); /* min_bytes */
    sb_kw_i32(w, FETCH_MAX_BYTES);
    sb_kw_i8(w, 0);  /* isolation_level: read uncommitted */
    sb_kw_i32(w, 0); /* session_id */
    sb_kw_i32(w, -1); /* session_epoch: full fetch */
    sb_kw_array_len(w, 1);
    sb_kw_string(w, c->ctx->topic, -1);
    sb_kw_array_len(w, c->parts);
    for (int i = 0; i < c->parts; i++) {
        sb_kw_i32(w, i);
        sb_kw_i32(w, -1); /* current_leader_epoch */
        sb_kw_i64(w, c->offset[i]);
        sb_kw_i64(w, -1); /* log_start_offset */
        sb_kw_i32(w, FETCH_PARTITION_MAX_BYTES);
        c->asked[i] = c->offset[i];
    }
    sb_kw_array_len(w, 0);      /* forgotten topics */
    sb_kw_string(w, "", 0);     /* rack_id */
    sb_kw_frame_end(w, frame);
    if (w->error) {
        snprintf(c->err, sizeof c->err, "out of memory");
        return -ENOMEM;
    }
    struct iovec iov = {.iov_base = w->buf, .iov_len = w->len};
    uint64_t now = bench_now_ns();
    int rc = conn_sendv(&c->c, &iov, 1, now + (uint64_t)c->ctx->io_timeout_ms * 1000000u, c->err,
                        sizeof c->err);
    if (rc)
        return rc;
    c->in_flight = true;
    c->sent_ns = now;
    return 0;
}

static int native_consumer_open(void *vctx, int id, void **cp, char *err, size_t errlen)
{
    struct nctx *ctx = vctx;
    struct nconsumer *c = calloc(1, sizeof *c);
    if (!c)
        return -ENOMEM;
    c->ctx = ctx;
    c->o = ctx->o;
    c->id = id;
    c->parts = ctx->o->partitions;
    c->offset = calloc((size_t)c->parts, sizeof *c->offset);
    c->asked = calloc((size_t)c->parts, sizeof *c->asked);
    sb_kwriter_init(&c->w);
    int rc = -ENOMEM;
    if (!c->offset || !c->asked) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    rc = conn_open(&c->c, ctx->o, err, errlen);
    if (rc)
        goto fail;
    /* Fetching from offset 0 of every partition: subscribed from the start. */
    *cp = c;
    return 0;
fail:
    free(c->offset);
    free(c->asked);
    sb_kwriter_free(&c->w);
    free(c);
    return rc;
}

/* Validate a Fetch response and note its batches; the offsets advance past them. */
static int consumer_parse(struct nconsumer *c, const unsigned char *body, size_t len)
{
    struct sb_kreader r;
    sb_kreader_init(&r, body, len);
    int32_t corr = sb_kr_i32(&r);
    if (corr != c->corr) {
        snprintf(c->err, sizeof c->err, "Fetch answer with correlation id %d, expected %d", corr,
                 c->corr);
        return -EBADMSG;
    }
    (void)sb_kr_i32(&r); /* throttle_time_ms */
    int16_t e = sb_kr_i16(&r);
    (void)sb_kr_i32(&r); /* session_id */
    if (!r.error && e) {
        snprintf(c->err, sizeof c->err, "Fetch answer %d: error %d (%s)", corr, e,
                 kafka_error_name(e));
        return -EIO;
    }
    c->nbatches = 0;
    int32_t topics = sb_kr_array_len(&r, 6);
    for (int32_t t = 0; t < topics && !r.error; t++) {
        struct sb_kslice name = sb_kr_string(&r);
        if (name.len != (int32_t)strlen(c->ctx->topic) ||
            memcmp(name.ptr, c->ctx->topic, (size_t)name.len)) {
            snprintf(c->err, sizeof c->err, "Fetch answer %d: for another topic", corr);
            return -EBADMSG;
        }
        int32_t parts = sb_kr_array_len(&r, 42);
        for (int32_t i = 0; i < parts && !r.error; i++) {
            int32_t idx = sb_kr_i32(&r);
            int16_t pe = sb_kr_i16(&r);
            (void)sb_kr_i64(&r); /* high watermark */
            (void)sb_kr_i64(&r); /* last stable offset */
            (void)sb_kr_i64(&r); /* log start offset */
            int32_t aborted = sb_kr_array_len(&r, 16);
            for (int32_t a = 0; a < aborted && !r.error; a++) {
                (void)sb_kr_i64(&r);
                (void)sb_kr_i64(&r);
            }
            (void)sb_kr_i32(&r); /* preferred read replica */
            struct sb_kslice rec = sb_kr_bytes(&r);
            if (r.error)
                break;
            if (idx < 0 || idx >= c->parts) {
                snprintf(c->err, sizeof c->err, "Fetch answer %d: partition %d was not asked for",
                         corr, idx);
                return -EBADMSG;
            }
            if (pe) {
                snprintf(c->err, sizeof c->err, "Fetch answer %d: partition %d at offset %lld: "
                         "error %d (%s)", corr, idx, (long long)c->asked[idx], pe,
                         kafka_error_name(pe));
                return -EIO;
            }
            size_t off = 0, rlen = rec.len > 0 ? (size_t)rec.len : 0;
            while (off < rlen) {
                struct sb_batch_info info;
                const char *why = "";
                int rc = sb_batch_validate(rec.ptr + off, rlen - off, &info, &why);
                if (rc == -EAGAIN)
                    break; /* a partial batch at the end: fetched again next time */
                if (rc) {
                    snprintf(c->err, sizeof c->err, "Fetch answer %d: partition %d: corrupt batch "
                             "at byte %zu (fetch offset %lld): %s", corr, idx, off,
                             (long long)c->asked[idx], why);
                    return -EBADMSG;
                }
                int64_t next = info.base_offset + info.last_offset_delta + 1;
                if (next > c->asked[idx]) {
                    if (c->nbatches == c->batches_cap) {
                        size_t cap = c->batches_cap ? 2 * c->batches_cap : 256;
                        struct nbatch *nb = realloc(c->batches, cap * sizeof *nb);
                        if (!nb) {
                            snprintf(c->err, sizeof c->err, "out of memory");
                            return -ENOMEM;
                        }
                        c->batches = nb;
                        c->batches_cap = cap;
                    }
                    c->batches[c->nbatches++] = (struct nbatch){
                        .ptr = rec.ptr + off, .len = info.total_bytes, .skip_below = c->asked[idx]};
                    if (next > c->offset[idx])
                        c->offset[idx] = next;
                }
                off += info.total_bytes;
            }
        }
    }
    if (r.error) {
        snprintf(c->err, sizeof c->err, "Fetch answer %d: malformed or truncated", corr);
        return -EBADMSG;
    }
    return 0;
}

static int native_consumer_poll(void *vc, int timeout_ms, bench_deliver_fn *fn, void *arg)
{
    struct nconsumer *c = vc;
    if (c->failed)
        return c->failed;
    int rc = 0;
    if (!c->in_flight && (rc = consumer_send_fetch(c)) != 0)
        goto fail;
    const unsigned char *body;
    size_t len;
    rc = conn_next_frame(&c->c, bench_now_ns() + (uint64_t)timeout_ms * 1000000u, &body, &len,
                         c->err, sizeof c->err);
    if (rc < 0)
        goto fail;
    if (rc == 0) {
        uint64_t waited_ms = (bench_now_ns() - c->sent_ns) / 1000000u;
        if (waited_ms > (uint64_t)(FETCH_MAX_WAIT_MS + c->ctx->io_timeout_ms)) {
            snprintf(c->err, sizeof c->err, "no answer to Fetch %d from %s within %llu ms "
                     "(max_wait_ms %d)", c->corr, c->c.addr, (unsigned long long)waited_ms,
                     FETCH_MAX_WAIT_MS);
            rc = -ETIMEDOUT;
            goto fail;
        }
        return 0;
    }
    c->in_flight = false;
    rc = consumer_parse(c, body, len);
    if (rc)
        goto fail;
    /* The next fetch leaves before the records are handed over: the server works meanwhile. */
    if ((rc = consumer_send_fetch(c)) != 0)
        goto fail;
    int got = 0;
    for (size_t b = 0; b < c->nbatches; b++) {
        struct sb_record_iter it;
        if (sb_record_iter_init(&it, c->batches[b].ptr, c->batches[b].len) != 0) {
            snprintf(c->err, sizeof c->err, "a compressed batch (the bench sends none)");
            rc = -EBADMSG;
            goto fail;
        }
        struct sb_record rec;
        const char *why = "";
        int n;
        while ((n = sb_record_next(&it, &rec, &why)) == 1) {
            if (rec.offset < c->batches[b].skip_below)
                continue;
            fn(arg, rec.value, rec.value ? (size_t)rec.value_len : 0);
            got++;
        }
        if (n < 0) {
            snprintf(c->err, sizeof c->err, "malformed record in a validated batch: %s", why);
            rc = -EBADMSG;
            goto fail;
        }
    }
    conn_consume(&c->c);
    return got;
fail:
    consumer_fail(c, rc);
    return c->failed;
}

static void native_consumer_close(void *vc)
{
    struct nconsumer *c = vc;
    if (!c)
        return;
    conn_close(&c->c);
    free(c->offset);
    free(c->asked);
    free(c->batches);
    sb_kwriter_free(&c->w);
    free(c);
}

const struct bench_system bench_native_system = {
    .name = "shardbus-native",
    .setup = native_setup,
    .teardown = native_teardown,
    .producer_open = native_producer_open,
    .produce = native_produce,
    .producer_service = native_producer_service,
    .producer_flush = native_producer_flush,
    .producer_close = native_producer_close,
    .consumer_open = native_consumer_open,
    .consumer_poll = native_consumer_poll,
    .consumer_close = native_consumer_close,
};
