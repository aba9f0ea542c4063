/* The alerts consumer and its latency histogram. */
#include "consumer.h"

#include <stdbool.h>
#include <string.h>

#include "demo.h"
#include "util.h"

static unsigned histogram_bucket(uint64_t ns)
{
    if (ns < 8)
        return (unsigned)ns;
    unsigned exp = 63u - (unsigned)__builtin_clzll(ns);
    return (exp - 2) * 8 + (unsigned)((ns >> (exp - 3)) & 7);
}

uint64_t histogram_bucket_top(unsigned b)
{
    if (b < 8)
        return b;
    unsigned shift = b / 8 - 1;
    return ((uint64_t)(8 + b % 8 + 1) << shift) - 1;
}

static void record_alert(struct alert_consumer *c, const struct sb_event *ev, int64_t now)
{
    struct alert_event alert;
    if (ev->value_len != sizeof(alert) || ev->partition >= MAX_PARTITIONS) {
        c->errors++;
        return;
    }
    memcpy(&alert, ev->value, sizeof(alert));
    c->checksum += mix64(alert.origin_id);
    if (c->next_offset[ev->partition] >= 0 && ev->offset != c->next_offset[ev->partition])
        c->offset_gaps++;
    c->next_offset[ev->partition] = ev->offset + 1;
    uint64_t ns = now > (int64_t)alert.origin_ns ? (uint64_t)now - alert.origin_ns : 0;
    /* Relaxed: statistics main samples; no other data travels with them. */
    bump(&c->latency[histogram_bucket(ns)], 1, memory_order_relaxed);
    if (ns > atomic_load_explicit(&c->max_latency, memory_order_relaxed))
        atomic_store_explicit(&c->max_latency, ns, memory_order_relaxed);
}

void *consumer_main(void *arg)
{
    struct alert_consumer *c = arg;
    struct sb_event events[256];
    /* Acquire pairs with main()'s release store once every published alert arrived. */
    while (!atomic_load_explicit(&consumer_stop, memory_order_acquire)) {
        int n = sb_poll(c->handle, events, 256, 100);
        if (n < 0) {
            c->error = n;
            /* Release pairs with the acquire load in run_until_stopped() (main.c). */
            atomic_store_explicit(&worker_failed, true, memory_order_release);
            break;
        }
        int64_t now = now_ns();
        for (int i = 0; i < n; i++)
            record_alert(c, &events[i], now);
        /* Release pairs with the acquire load in alerts_consumed() (main.c). */
        bump(&c->consumed, (uint64_t)n, memory_order_release);
    }
    sb_consumer_close(c->handle);
    return NULL;
}
