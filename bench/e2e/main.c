/*
 * main.c - shardbus-bench: run producers and consumers of one system, check the data, report.
 *
 * The consumers subscribe first; then every producer thread sends numbered, timestamped
 * messages from a common start time for --duration seconds (as fast as possible, or each at
 * its scheduled time), flushes and records how many it sent. Once all producers are done each
 * consumer knows how many messages of each producer to expect and stops when it has them all,
 * or when nothing more has arrived for --drain-timeout seconds (the rest is lost). Each message
 * is checked on arrival (size, pattern, producer, no duplicate) and its latency is recorded.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

#include "client.h"
#include "cpu_meter.h"
#include "embedded_client.h"
#include "histogram.h"
#include "message.h"
#include "native_client.h"
#include "options.h"
#include "report.h"
#include "schedule.h"

struct run {
    const struct bench_options *o;
    const struct bench_system *sys;
    void *ctx;
    uint64_t start_ns;
    uint64_t measure_ns; /* end of the warm-up: figures count messages stamped from here on */
    uint64_t end_ns;
    uint64_t *expected; /* per producer; written before producers_done is released */
    atomic_int producers_done;
    atomic_int consumers_done;
};

struct producer {
    struct run *run;
    int id;
    void *client;
    pthread_t thread;
    _Atomic uint64_t sent; /* written by this thread only; read for the progress line */
    uint64_t failed;
    uint64_t measured; /* messages stamped after the warm-up */
    uint64_t last_send_ns;
    int errors;
};

struct consumer {
    struct run *run;
    int id;
    void *client;
    pthread_t thread;
    _Atomic uint64_t received; /* written by this thread only; read for the progress line */
    uint64_t last_recv_ns;
    uint64_t measured; /* first arrivals of messages stamped after the warm-up */
    struct bench_hist *hist;
    struct bench_verifier ver;
    int errors;
};

static void producer_idle(void *arg)
{
    struct producer *p = arg;
    p->run->sys->producer_service(p->client);
}

static void *producer_main(void *arg)
{
    struct producer *p = arg;
    struct run *run = p->run;
    const struct bench_options *o = run->o;
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* wake within ~1 us of a scheduled time */
    unsigned char *buf = malloc(o->size);
    if (!buf) {
        p->errors++;
        return NULL;
    }
    struct bench_schedule sched;
    bench_schedule_init(&sched, run->start_ns, run->end_ns, o->rate / o->producers);
    /* Wait for the common start. */
    while (bench_now_ns() < run->start_ns) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
    uint64_t seq = 0, stamp;
    while (bench_schedule_next(&sched, &stamp, producer_idle, p)) {
        bench_msg_encode(buf, o->size, (uint32_t)p->id, seq, stamp);
        if (run->sys->produce(p->client, buf, o->size) != 0) {
            p->errors++;
            break;
        }
        seq++;
        if (stamp >= run->measure_ns)
            p->measured++;
        /* Relaxed: a statistic for the progress line, which needs no ordering with the data. */
        atomic_store_explicit(&p->sent, seq, memory_order_relaxed);
        if ((seq & 1023) == 0)
            run->sys->producer_service(p->client);
    }
    p->last_send_ns = bench_now_ns();
    if (run->sys->producer_flush(p->client, 60000, &p->failed) != 0)
        p->errors++;
    free(buf);
    return NULL;
}

static void on_message(void *arg, const void *data, size_t len)
{
    struct consumer *c = arg;
    uint64_t now = bench_now_ns();
    struct bench_msg_header h;
    if (bench_msg_decode(data, len, c->run->o->size, &h) != 0) {
        c->ver.corrupt++;
        return;
    }
    if (bench_verifier_add(&c->ver, h.producer, h.seq) != 1)
        return; /* a duplicate or a bad producer number: counted by the verifier */
    if (h.ts_ns >= c->run->measure_ns) {
        bench_hist_record(c->hist, now > h.ts_ns ? now - h.ts_ns : 0);
        c->measured++;
        c->last_recv_ns = now;
    }
    /* Relaxed: single writer, read only for the progress line. */
    atomic_store_explicit(&c->received,
                          atomic_load_explicit(&c->received, memory_order_relaxed) + 1,
                          memory_order_relaxed);
}

static int consumer_complete(const struct consumer *c)
{
    for (int p = 0; p < c->run->o->producers; p++)
        if (c->ver.maps[p].unique < c->run->expected[p])
            return 0;
    return 1;
}

static void *consumer_main(void *arg)
{
    struct consumer *c = arg;
    struct run *run = c->run;
    uint64_t drain_ns = (uint64_t)(run->o->drain_timeout_s * 1e9);
    uint64_t last_progress = 0;
    int done = 0;
    for (;;) {
        int n = run->sys->consumer_poll(c->client, 100, on_message, c);
        uint64_t now = bench_now_ns();
        if (n < 0) {
            c->errors++;
            break;
        }
        if (n > 0)
            last_progress = now;
        if (!done) {
            /* Acquire: pairs with the release store in main() after the producers are joined,
             * so run->expected is complete when we see 1. */
            done = atomic_load_explicit(&run->producers_done, memory_order_acquire);
            if (done && last_progress < now)
                last_progress = now;
        }
        if (done && (consumer_complete(c) || now - last_progress > drain_ns))
            break;
    }
    /* Release: pairs with the acquire load in main()'s progress loop (a count only; the
     * consumer's results are read after pthread_join). */
    atomic_fetch_add_explicit(&run->consumers_done, 1, memory_order_release);
    return NULL;
}

static const struct bench_system *system_of(enum bench_system_id id)
{
    switch (id) {
    case BENCH_SHARDBUS: return &bench_kafka_system;
    case BENCH_SHARDBUS_NATIVE: return &bench_native_system;
    case BENCH_NATS: return &bench_nats_system;
    case BENCH_REDIS_PUBSUB: return &bench_redis_pubsub_system;
    case BENCH_REDIS_STREAMS: return &bench_redis_streams_system;
    case BENCH_EMBEDDED: return &bench_embedded_system;
    }
    return NULL;
}

static void progress(struct run *run, struct producer *ps, struct consumer *cs, uint64_t *last_sent,
                     uint64_t *last_recv)
{
    uint64_t sent = 0, recv = 0;
    for (int i = 0; i < run->o->producers; i++)
        sent += atomic_load_explicit(&ps[i].sent, memory_order_relaxed); /* statistic */
    for (int i = 0; i < run->o->consumers; i++)
        recv += atomic_load_explicit(&cs[i].received, memory_order_relaxed); /* statistic */
    double t = (double)(bench_now_ns() - run->start_ns) / 1e9;
    fprintf(stderr, "[%6.1f s] %s: sent %llu (%.0f/s)  received %llu (%.0f/s)\n", t,
            run->o->label, (unsigned long long)sent, (double)(sent - *last_sent),
            (unsigned long long)recv, (double)(recv - *last_recv));
    *last_sent = sent;
    *last_recv = recv;
}

static void sleep_ns(uint64_t ns)
{
    struct timespec ts = {.tv_sec = (time_t)(ns / 1000000000u), .tv_nsec = (long)(ns % 1000000000u)};
    nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
    struct bench_options o;
    int rc = bench_options_parse(&o, argc, argv);
    if (rc)
        return rc > 0 ? 0 : 2;

    struct run run = {.o = &o, .sys = system_of(o.system)};
    char err[512] = "";
    rc = run.sys->setup(&o, &run.ctx, err, sizeof err);
    if (rc) {
        fprintf(stderr, "shardbus-bench: %s: setup: %s\n", o.system_name, err[0] ? err : strerror(-rc));
        return 2;
    }
    struct producer *ps = calloc((size_t)o.producers, sizeof *ps);
    struct consumer *cs = calloc((size_t)o.consumers, sizeof *cs);
    run.expected = calloc((size_t)o.producers, sizeof *run.expected);
    if (!ps || !cs || !run.expected) {
        fprintf(stderr, "shardbus-bench: out of memory\n");
        return 2;
    }
    int opened_c = 0, opened_p = 0;
    for (; opened_c < o.consumers; opened_c++) {
        struct consumer *c = &cs[opened_c];
        c->run = &run;
        c->id = opened_c;
        c->hist = malloc(sizeof *c->hist);
        if (!c->hist || bench_verifier_init(&c->ver, (uint32_t)o.producers)) {
            snprintf(err, sizeof err, "out of memory");
            goto open_failed;
        }
        bench_hist_init(c->hist);
        rc = run.sys->consumer_open(run.ctx, opened_c, &c->client, err, sizeof err);
        if (rc)
            goto open_failed;
    }
    for (; opened_p < o.producers; opened_p++) {
        ps[opened_p].run = &run;
        ps[opened_p].id = opened_p;
        rc = run.sys->producer_open(run.ctx, opened_p, &ps[opened_p].client, err, sizeof err);
        if (rc)
            goto open_failed;
    }

    run.start_ns = bench_now_ns() + 50000000u; /* 50 ms for the threads to start */
    run.measure_ns = run.start_ns + (uint64_t)(o.warmup_s * 1e9);
    run.end_ns = run.measure_ns + (uint64_t)(o.duration_s * 1e9);
    for (int i = 0; i < o.consumers; i++)
        pthread_create(&cs[i].thread, NULL, consumer_main, &cs[i]);
    for (int i = 0; i < o.producers; i++)
        pthread_create(&ps[i].thread, NULL, producer_main, &ps[i]);

    uint64_t last_sent = 0, last_recv = 0, tick = run.start_ns + 1000000000u;
    struct bench_cpu_sample cpu0 = {0}, cpu1;
    int cpu_started = 0;
    uint64_t cpu0_ns = run.measure_ns;
    while (bench_now_ns() < run.end_ns) {
        uint64_t now = bench_now_ns();
        uint64_t until = tick < run.end_ns ? tick : run.end_ns;
        if (!cpu_started && run.measure_ns < until)
            until = run.measure_ns;
        if (now < until)
            sleep_ns(until - now);
        if (!cpu_started && bench_now_ns() >= run.measure_ns) {
            /* The CPU figures cover what the rates cover: the time after the warm-up. */
            cpu0_ns = bench_now_ns();
            if (bench_cpu_sample(o.server_pid, &cpu0) != 0)
                fprintf(stderr, "shardbus-bench: --server-pid %d: cannot read its CPU time\n",
                        o.server_pid);
            cpu_started = 1;
        }
        if (bench_now_ns() >= tick) {
            if (o.progress)
                progress(&run, ps, cs, &last_sent, &last_recv);
            tick += 1000000000u;
        }
    }
    struct bench_result res = {0};
    uint64_t last_send = run.measure_ns, last_recv_ns = run.measure_ns;
    for (int i = 0; i < o.producers; i++) {
        pthread_join(ps[i].thread, NULL);
        run.expected[i] = atomic_load_explicit(&ps[i].sent, memory_order_relaxed); /* joined */
        res.sent += run.expected[i];
        res.send_failed += ps[i].failed;
        res.sent_measured += ps[i].measured;
        res.errors += ps[i].errors;
        if (ps[i].last_send_ns > last_send)
            last_send = ps[i].last_send_ns;
    }
    /* Release: pairs with the acquire load in consumer_main(); publishes run.expected. */
    atomic_store_explicit(&run.producers_done, 1, memory_order_release);
    /* Acquire: pairs with the release increment at the end of consumer_main(). */
    while (atomic_load_explicit(&run.consumers_done, memory_order_acquire) < o.consumers) {
        sleep_ns(100000000u);
        if (o.progress && bench_now_ns() >= tick) {
            progress(&run, ps, cs, &last_sent, &last_recv);
            tick += 1000000000u;
        }
    }
    if (!cpu_started) { /* a run shorter than its warm-up: nothing measured */
        cpu0_ns = bench_now_ns();
        bench_cpu_sample(o.server_pid, &cpu0);
    }
    uint64_t cpu1_ns = bench_now_ns();
    bench_cpu_sample(o.server_pid, &cpu1);
    struct bench_hist *all = malloc(sizeof *all);
    if (!all) {
        fprintf(stderr, "shardbus-bench: out of memory\n");
        return 2;
    }
    bench_hist_init(all);
    for (int i = 0; i < o.consumers; i++) {
        struct consumer *c = &cs[i];
        pthread_join(c->thread, NULL);
        res.received += atomic_load_explicit(&c->received, memory_order_relaxed); /* joined */
        res.received_measured += c->measured;
        res.duplicated += c->ver.duplicated;
        res.corrupt += c->ver.corrupt;
        res.errors += c->errors;
        for (int p = 0; p < o.producers; p++)
            res.lost += bench_verifier_missing(&c->ver, (uint32_t)p, run.expected[p]);
        if (c->last_recv_ns > last_recv_ns)
            last_recv_ns = c->last_recv_ns;
        bench_hist_merge(all, c->hist);
    }
    res.send_seconds = (double)(last_send - run.measure_ns) / 1e9;
    res.receive_seconds = (double)(last_recv_ns - run.measure_ns) / 1e9;
    res.latency = all;
    res.cpu_window_s = (double)(cpu1_ns - cpu0_ns) / 1e9;
    res.client_cpu_s = cpu1.self_s - cpu0.self_s;
    res.server_cpu_s =
        cpu0.server_s >= 0 && cpu1.server_s >= 0 ? cpu1.server_s - cpu0.server_s : -1;
    res.ok = res.lost == 0 && res.duplicated == 0 && res.corrupt == 0 && res.send_failed == 0 &&
             res.errors == 0 && res.sent > 0;
    time_t wall = time(NULL);
    struct tm tm;
    gmtime_r(&wall, &tm);
    strftime(res.date, sizeof res.date, "%Y-%m-%dT%H:%M:%SZ", &tm);

    bench_report_print(stdout, &o, &res);
    if (o.json_path && (rc = bench_report_json(o.json_path, &o, &res)) != 0) {
        fprintf(stderr, "shardbus-bench: %s: %s\n", o.json_path, strerror(-rc));
        res.ok = 0;
    }
    for (int i = 0; i < o.producers; i++)
        run.sys->producer_close(ps[i].client);
    for (int i = 0; i < o.consumers; i++) {
        run.sys->consumer_close(cs[i].client);
        bench_verifier_free(&cs[i].ver);
        free(cs[i].hist);
    }
    run.sys->teardown(run.ctx);
    free(all);
    free(ps);
    free(cs);
    free(run.expected);
    if (!res.ok)
        fprintf(stderr, "shardbus-bench: %s: DATA NOT VERIFIED: the figures above do not stand\n",
                o.label);
    return res.ok ? 0 : 1;

open_failed:
    fprintf(stderr, "shardbus-bench: %s at %s: %s\n", o.system_name, o.addr,
            err[0] ? err : strerror(-rc));
    for (int i = 0; i < opened_p; i++)
        run.sys->producer_close(ps[i].client);
    for (int i = 0; i < opened_c; i++)
        run.sys->consumer_close(cs[i].client);
    run.sys->teardown(run.ctx);
    return 2;
}
