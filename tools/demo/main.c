/*
 * shardbus-demo - the embedded bus at work, through the public API only.
 *
 * Producer threads simulate two event streams: rent payments (topic "payments", keyed by
 * tenant) and shopping-cart activity (topic "carts", keyed by cart: add, remove, checkout).
 * Handlers run on the shard that owns each partition and keep per-partition state without locks:
 *  - payments: updates the tenant's balance; a late or short payment publishes to "alerts";
 *  - carts:    keeps each open cart's total; a checkout publishes to "orders";
 *  - orders:   adds up revenue; a big order publishes to "alerts" (fraud review);
 *  - alerts:   counts alerts by reason.
 * A consumer thread subscribes to "alerts" and measures publish->consume latency: every alert
 * carries the CLOCK_MONOTONIC time at which its originating event was published.
 *
 * A status line goes to stderr once per second. At the end the demo checks that every event was
 * handled exactly once (per topic: counts, an order-independent checksum of event ids,
 * consecutive offsets, and totals recomputed by the handlers) and that every alert was consumed.
 * Exit status: 0 all checks passed, 1 library error, 2 usage error, 3 a check failed.
 */

/*
 * Files: events.h (the events and topics), handlers.c (the shard-side handlers and their state),
 * producers.c, consumer.c (the worker threads), report.c (status line and final check),
 * options.c (the command line), state.c/demo.h (the run state they share), and this one:
 * setup, the run loop and the shutdown order.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <shardbus.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "demo.h"
#include "options.h"
#include "report.h"
#include "util.h"

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the signal handler needs a lock-free atomic int");

static _Atomic int stop_signal;     /* set by the signal handler */

static void die_on_error(const char *what, int rc)
{
    if (rc < 0) {
        fprintf(stderr, PROG ": %s: %s\n", what, strerror(-rc));
        exit(1);
    }
}

static void on_stop_signal(int sig)
{
    /* Relaxed: a lock-free atomic is what a signal handler may store; run_until_stopped(), on
     * the one thread with the signals unblocked (this one), loads it. */
    atomic_store_explicit(&stop_signal, sig, memory_order_relaxed);
}

/* The bus's reports (recovery, retention, write errors), with the program's name. */
static void print_bus_report(void *ctx, enum sb_log_level level, const char *message)
{
    (void)ctx;
    fprintf(stderr, PROG ": %s: %s\n",
            level == SB_LOG_ERROR ? "error" : level == SB_LOG_WARN ? "warning" : "log", message);
}

static struct sb_bus *open_bus(const struct options *opt)
{
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = opt->shards;
    cfg.data_dir = opt->data_dir;
    cfg.durability = (enum sb_durability)opt->durability;
    cfg.log_fn = print_bus_report;
    struct sb_bus *bus;
    char what[4200];
    snprintf(what, sizeof(what), "sb_bus_open%s%s", opt->data_dir ? " " : "",
             opt->data_dir ? opt->data_dir : "");
    die_on_error(what, sb_bus_open(&cfg, &bus));
    for (unsigned t = 0; t < TOPIC_COUNT; t++) {
        snprintf(what, sizeof(what), "sb_topic_create %s", topics[t].name);
        int rc = sb_topic_create(bus, topics[t].name, topics[t].partitions);
        /* A data_dir from an earlier run has the topics already: fine if the shape matches. */
        if (rc == -EEXIST && sb_topic_partitions(bus, topics[t].name) == (int)topics[t].partitions)
            rc = 0;
        die_on_error(what, rc);
        snprintf(what, sizeof(what), "sb_handler_add %s", topics[t].name);
        die_on_error(what, sb_handler_add(bus, topics[t].name, topics[t].handler, stats[t]));
    }
    return bus;
}

static void start_workers(struct sb_bus *bus, const struct options *opt)
{
    /* From the end: with a data_dir, alerts of earlier runs are in the log too. */
    for (unsigned p = 0; p < MAX_PARTITIONS; p++)
        consumer.next_offset[p] = -1;
    die_on_error("sb_subscribe alerts",
                 sb_subscribe(bus, "alerts", SB_OFFSET_END, &consumer.handle));
    die_on_error("pthread_create", -pthread_create(&consumer.thread, NULL, consumer_main, &consumer));
    for (unsigned i = 0; i < opt->producers; i++) {
        struct producer *pr = &producers[i];
        pr->index = i;
        pr->rate = opt->rate / opt->producers;
        pr->rng = mix64(i + 1) | 1;
        die_on_error("sb_producer_open", sb_producer_open(bus, &pr->handle));
        die_on_error("pthread_create", -pthread_create(&pr->thread, NULL, producer_main, pr));
    }
}

/* The status loop; returns the seconds run, once the duration is over or a signal came. */
static double run_until_stopped(const struct options *opt)
{
    bool tty = isatty(STDERR_FILENO);
    int64_t start = now_ns(), last = start;
    int64_t deadline = opt->duration > 0 ? start + (int64_t)(opt->duration * 1e9) : INT64_MAX;
    struct snapshot before, now;
    take_snapshot(&before, opt->producers);
    /* stop_signal: relaxed, see on_stop_signal(). worker_failed: acquire pairs with the
     * workers' release stores (their error codes are read after pthread_join() anyway). */
    while (!atomic_load_explicit(&stop_signal, memory_order_relaxed) &&
           !atomic_load_explicit(&worker_failed, memory_order_acquire)) {
        int64_t t = now_ns();
        if (t >= deadline)
            break;
        if (t - last >= NS_PER_SEC) {
            take_snapshot(&now, opt->producers);
            print_status(&now, &before, (double)(t - start) / 1e9, (double)(t - last) / 1e9, tty);
            before = now;
            last = t;
        }
        sleep_ns((last + NS_PER_SEC < deadline ? last + NS_PER_SEC : deadline) - t);
    }
    if (tty)
        fputc('\n', stderr);
    return (double)(now_ns() - start) / 1e9;
}

static uint64_t orders_handled(void)
{
    uint64_t n = 0;
    for (unsigned p = 0; p < MAX_PARTITIONS; p++)
        /* Acquire pairs with finish_event()'s release store (handlers.c): once we see an order
         * handled we also see the alert its handler published counted in `derived`. */
        n += atomic_load_explicit(&stats[ORDERS][p].handled, memory_order_acquire);
    return n;
}

static uint64_t alerts_consumed(void)
{
    /* Acquire pairs with consumer_main()'s release store (consumer.c). */
    return atomic_load_explicit(&consumer.consumed, memory_order_acquire);
}

/* Wait until read() reaches target; give up after 5 s without progress. */
static void wait_for_count(uint64_t (*read)(void), uint64_t target, const char *what)
{
    uint64_t seen, last_seen = read();
    int64_t last_progress = now_ns();
    while ((seen = read()) < target) {
        if (seen != last_seen) {
            last_seen = seen;
            last_progress = now_ns();
        } else if (now_ns() - last_progress > 5 * NS_PER_SEC) {
            fprintf(stderr, PROG ": gave up waiting for %s: %" PRIu64 " of %" PRIu64 "\n", what,
                    seen, target);
            return;
        }
        sleep_ns(1000000);
    }
}

/*
 * Called once the producers flushed and were joined: every payment and cart event has been
 * handled (the flush saw the shards release the rings after the handlers ran), so the counts of
 * alerts from payments and of orders from carts are final. Orders are derived events: wait until
 * all are handled; then the total of alerts is final too; wait until the consumer has them all.
 */
static void wait_for_derived_events(void)
{
    uint64_t orders = 0, alerts = 0;
    for (unsigned p = 0; p < MAX_PARTITIONS; p++)
        /* Relaxed: final and visible, see above. */
        orders += atomic_load_explicit(&stats[CARTS][p].derived, memory_order_relaxed);
    wait_for_count(orders_handled, orders, "orders to be handled");
    for (unsigned p = 0; p < MAX_PARTITIONS; p++)
        /* Relaxed: payments' are final (see above), orders' ordered by orders_handled(). */
        alerts += atomic_load_explicit(&stats[PAYMENTS][p].derived, memory_order_relaxed) +
                  atomic_load_explicit(&stats[ORDERS][p].derived, memory_order_relaxed);
    wait_for_count(alerts_consumed, alerts, "alerts to be consumed");
}

int main(int argc, char **argv)
{
    struct options opt;
    parse_options(argc, argv, &opt);

    /* Threads started from here on (the shards too) inherit a mask blocking SIGINT and SIGTERM;
     * main unblocks them once everything runs, so the handler always runs on main. */
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, NULL);
    struct sb_bus *bus = open_bus(&opt);
    start_workers(bus, &opt);
    struct sigaction sa = {.sa_handler = on_stop_signal, .sa_flags = SA_RESETHAND};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL); /* SA_RESETHAND: a second Ctrl-C kills a stuck demo */
    sigaction(SIGTERM, &sa, NULL);
    pthread_sigmask(SIG_UNBLOCK, &stop_signals, NULL);

    double elapsed = run_until_stopped(&opt);

    /* Release pairs with the acquire load in producers_should_stop() (producers.c). */
    atomic_store_explicit(&producers_stop, true, memory_order_release);
    for (unsigned i = 0; i < opt.producers; i++)
        pthread_join(producers[i].thread, NULL);
    wait_for_derived_events();
    /* Release pairs with the acquire load in consumer_main() (consumer.c). */
    atomic_store_explicit(&consumer_stop, true, memory_order_release);
    pthread_join(consumer.thread, NULL);
    die_on_error("sb_bus_close", sb_bus_close(bus));

    for (unsigned i = 0; i < opt.producers; i++)
        die_on_error(producers[i].failed_call, producers[i].error);
    die_on_error("sb_poll", consumer.error);
    return print_summary(&opt, elapsed) ? 0 : 3;
}
