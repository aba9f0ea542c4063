/* The status line, snapshots of the counters, the final tally and the summary check. */
#include "report.h"

#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "demo.h"

/* ---- status line ---- */

void take_snapshot(struct snapshot *s, unsigned nproducers)
{
    /* Relaxed everywhere: statistics, no data depends on them. */
    memset(s, 0, sizeof(*s));
    for (unsigned i = 0; i < nproducers; i++) {
        s->published += atomic_load_explicit(&producers[i].published, memory_order_relaxed);
        s->eagain += atomic_load_explicit(&producers[i].eagain, memory_order_relaxed);
    }
    for (unsigned p = 0; p < MAX_PARTITIONS; p++)
        s->handled += atomic_load_explicit(&stats[PAYMENTS][p].handled, memory_order_relaxed) +
                      atomic_load_explicit(&stats[CARTS][p].handled, memory_order_relaxed);
    s->alerts = atomic_load_explicit(&consumer.consumed, memory_order_relaxed);
    for (unsigned b = 0; b < HIST_BUCKETS; b++)
        s->latency[b] = atomic_load_explicit(&consumer.latency[b], memory_order_relaxed);
}

/* Percentile of the latencies recorded between two snapshots (before may be NULL). */
static uint64_t percentile(const struct snapshot *now, const struct snapshot *before, double p)
{
    uint64_t total = 0, seen = 0;
    for (unsigned b = 0; b < HIST_BUCKETS; b++)
        total += now->latency[b] - (before ? before->latency[b] : 0);
    uint64_t rank = (uint64_t)(p * (double)total) + 1;
    for (unsigned b = 0; b < HIST_BUCKETS && total; b++) {
        seen += now->latency[b] - (before ? before->latency[b] : 0);
        if (seen >= rank)
            return histogram_bucket_top(b);
    }
    return 0;
}

static const char *human_ns(uint64_t ns, char *buf, size_t size)
{
    if (ns < 1000)
        snprintf(buf, size, "%" PRIu64 "ns", ns);
    else if (ns < 1000000)
        snprintf(buf, size, "%.1fus", (double)ns / 1e3);
    else
        snprintf(buf, size, "%.2fms", (double)ns / 1e6);
    return buf;
}

static const char *human_rate(uint64_t n, double seconds, char *buf, size_t size)
{
    double r = (double)n / seconds;
    if (r >= 1e6)
        snprintf(buf, size, "%.2fM", r / 1e6);
    else if (r >= 1e3)
        snprintf(buf, size, "%.1fk", r / 1e3);
    else
        snprintf(buf, size, "%.0f", r);
    return buf;
}

void print_status(const struct snapshot *now, const struct snapshot *before,
                  double elapsed, double interval, bool tty)
{
    char pub[16], handled[16], alerts[16], retries[16], p50[16], p99[16];
    fprintf(stderr, "%s%5.0fs  published %s/s  handled %s/s  alerts %s/s  latency p50 %s p99 %s"
            "  EAGAIN %s/s%s", tty ? "\r" : "", elapsed,
            human_rate(now->published - before->published, interval, pub, sizeof(pub)),
            human_rate(now->handled - before->handled, interval, handled, sizeof(handled)),
            human_rate(now->alerts - before->alerts, interval, alerts, sizeof(alerts)),
            human_ns(percentile(now, before, 0.50), p50, sizeof(p50)),
            human_ns(percentile(now, before, 0.99), p99, sizeof(p99)),
            human_rate(now->eagain - before->eagain, interval, retries, sizeof(retries)),
            tty ? "\033[K" : "\n");
    fflush(stderr);
}

/* ---- the final check (after sb_bus_close(): every thread joined, every value final) ---- */

struct tally { uint64_t published, pub_checksum, handled, checksum, derived, derived_checksum, gaps, errors; };

static struct tally tally_topic(enum topic t)
{
    struct tally sum = {0};
    for (unsigned p = 0; p < topics[t].partitions; p++) {
        const struct partition_stats *st = &stats[t][p];
        /* Relaxed: the shards were joined; the values are final. */
        sum.handled += atomic_load_explicit(&st->handled, memory_order_relaxed);
        sum.derived += atomic_load_explicit(&st->derived, memory_order_relaxed);
        sum.checksum += st->checksum;
        sum.derived_checksum += st->derived_checksum;
        sum.gaps += st->offset_gaps;
        sum.errors += st->errors;
    }
    return sum;
}

static bool check_topic(enum topic t, const struct tally *s, bool totals_ok, const char *detail)
{
    bool ok = s->published == s->handled && s->pub_checksum == s->checksum && !s->gaps &&
              !s->errors && totals_ok;
    printf("  %-9s published %10" PRIu64 "  handled %10" PRIu64 "  %-8s %s\n", topics[t].name,
           s->published, s->handled, ok ? "ok" : "MISMATCH", detail);
    if (s->gaps || s->errors || s->pub_checksum != s->checksum)
        printf("            offset gaps %" PRIu64 ", errors %" PRIu64 ", checksum %s\n", s->gaps,
               s->errors, s->pub_checksum == s->checksum ? "ok" : "differs");
    return ok;
}

bool print_summary(const struct options *opt, double elapsed)
{
    struct tally t[TOPIC_COUNT];
    uint64_t checkouts = 0, eagain = 0;
    int64_t outstanding = 0, revenue = 0;
    for (unsigned i = 0; i < TOPIC_COUNT; i++)
        t[i] = tally_topic(i);
    for (unsigned i = 0; i < opt->producers; i++) {
        for (unsigned k = PAYMENTS; k <= CARTS; k++) {
            t[k].published += producers[i].count[k];
            t[k].pub_checksum += producers[i].checksum[k];
        }
        checkouts += producers[i].checkouts;
        outstanding += producers[i].outstanding_cents;
        revenue += producers[i].revenue_cents;
        /* Relaxed: the producer threads were joined. */
        eagain += atomic_load_explicit(&producers[i].eagain, memory_order_relaxed);
    }
    t[ORDERS].published = t[CARTS].derived;
    t[ORDERS].pub_checksum = t[CARTS].derived_checksum;
    t[ALERTS].published = t[PAYMENTS].derived + t[ORDERS].derived;
    t[ALERTS].pub_checksum = t[PAYMENTS].derived_checksum + t[ORDERS].derived_checksum;
    struct handler_totals handled;
    handler_totals(&handled);
    /* Relaxed: the consumer thread was joined. */
    uint64_t consumed = atomic_load_explicit(&consumer.consumed, memory_order_relaxed);
    bool consumed_ok = consumed == t[ALERTS].published && !consumer.offset_gaps &&
                       consumer.checksum == t[ALERTS].pub_checksum && !consumer.errors;

    char detail[128];
    printf("\n" PROG ": %.1f s, %u shards, %u producers\n", elapsed, opt->shards, opt->producers);
    snprintf(detail, sizeof(detail), "rent outstanding %.2f EUR (producers: %.2f)",
             (double)handled.outstanding_cents / 100, (double)outstanding / 100);
    bool ok = check_topic(PAYMENTS, &t[PAYMENTS], handled.outstanding_cents == outstanding,
                          detail);
    snprintf(detail, sizeof(detail), "checkouts %" PRIu64, checkouts);
    ok &= check_topic(CARTS, &t[CARTS], checkouts == t[ORDERS].published, detail);
    snprintf(detail, sizeof(detail), "revenue %.2f EUR (producers: %.2f)",
             (double)handled.revenue_cents / 100, (double)revenue / 100);
    ok &= check_topic(ORDERS, &t[ORDERS], handled.revenue_cents == revenue, detail);
    snprintf(detail, sizeof(detail), "late %" PRIu64 ", short %" PRIu64 ", big orders %" PRIu64,
             handled.by_reason[0], handled.by_reason[1], handled.by_reason[2]);
    ok &= check_topic(ALERTS, &t[ALERTS], true, detail);
    printf("  consumer  consumed  %10" PRIu64 "  alerts  %10" PRIu64 "  %s\n", consumed,
           t[ALERTS].published, consumed_ok ? "ok" : "MISMATCH");
    struct snapshot all;
    take_snapshot(&all, opt->producers);
    char p50[16], p99[16], max[16];
    /* Relaxed: the consumer thread was joined. */
    uint64_t max_ns = atomic_load_explicit(&consumer.max_latency, memory_order_relaxed);
    printf("  latency publish -> alert consumed: p50 %s  p99 %s  max %s;  -EAGAIN retries %" PRIu64
           "\n", human_ns(percentile(&all, NULL, 0.50), p50, sizeof(p50)),
           human_ns(percentile(&all, NULL, 0.99), p99, sizeof(p99)),
           human_ns(max_ns, max, sizeof(max)), eagain);
    ok &= consumed_ok;
    printf("  result: %s\n", ok ? "OK, every event handled exactly once, every alert consumed"
                                : "FAILED, events lost, duplicated or corrupted");
    return ok;
}
