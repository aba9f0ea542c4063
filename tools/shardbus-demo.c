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
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <shardbus.h>
#include <signal.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PROG "shardbus-demo"
#define MAX_PARTITIONS 8
#define MAX_PRODUCERS 64
#define TENANTS 5000
#define CART_SLOTS 32           /* carts each producer keeps open at a time */
#define GRACE_DAYS 3            /* a payment later than due + grace raises an alert */
#define BIG_ORDER_CENTS 150000  /* orders from 1500.00 EUR on go to fraud review */
#define HIST_BUCKETS 496        /* power-of-two buckets split in 8: 12.5% resolution */
#define PUBLISH_BURST 64
#define NS_PER_SEC 1000000000LL

_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the signal handler needs a lock-free atomic int");

/* ---- events: native-endian binary structs without padding ---- */

struct payment_event {
    uint64_t publish_ns; /* CLOCK_MONOTONIC, taken by the producer */
    uint64_t event_id;   /* producer << 48 | sequence */
    uint32_t tenant_id, rent_cents, paid_cents;
    uint16_t due_day, paid_day; /* days since 2024-01-01 */
};

enum cart_action { CART_ADD = 1, CART_REMOVE, CART_CHECKOUT };

struct cart_event {
    uint64_t publish_ns, event_id;
    uint64_t cart_id;    /* producer << 40 | serial, and serial % CART_SLOTS = producer's slot */
    uint32_t sku, price_cents;
    uint16_t quantity;
    uint8_t action;      /* enum cart_action */
    uint8_t reserved[5];
};

struct order_event { uint64_t origin_ns, cart_id; uint32_t items, total_cents; };

enum alert_reason { ALERT_LATE = 1, ALERT_SHORT = 2, ALERT_BIG_ORDER = 4 };
#define ORDER_ALERT_BIT (1ULL << 63) /* order alert ids: cart_id | this, apart from payment ids */

struct alert_event {
    uint64_t origin_ns;  /* publish_ns of the event that caused the alert */
    uint64_t origin_id;  /* payment event_id, or cart_id | ORDER_ALERT_BIT */
    int64_t amount_cents;
    uint32_t reasons;    /* enum alert_reason bits */
    uint32_t days_late;
};

/* ---- per-partition state: only the owning shard's thread writes it ---- */

enum topic { PAYMENTS, CARTS, ORDERS, ALERTS, TOPIC_COUNT };

/* handled and derived are read by the main thread while the bus runs; the other fields only
 * after sb_bus_close() joined the shard threads. */
struct partition_stats {
    alignas(64) _Atomic uint64_t handled;
    _Atomic uint64_t derived;   /* events the handler published from this partition */
    uint64_t checksum;          /* sum of mix64(id) of the events handled */
    uint64_t derived_checksum;  /* sum of mix64(id) of the events derived */
    int64_t next_offset;
    uint64_t offset_gaps, errors; /* errors: malformed events, failed publishes, carts out of order */
};

struct tenant_account { int64_t balance_cents; uint32_t payments, late; };
struct cart_state { uint64_t cart_id; int64_t total_cents; int32_t items; bool open; };

struct payments_partition {
    alignas(64) int64_t outstanding_cents;
    struct tenant_account accounts[TENANTS]; /* only the tenants hashed here are ever used */
};
struct carts_partition { alignas(64) struct cart_state carts[MAX_PRODUCERS * CART_SLOTS]; };
struct orders_partition { alignas(64) int64_t revenue_cents; };
struct alerts_partition { alignas(64) uint64_t by_reason[3]; };

static struct partition_stats stats[TOPIC_COUNT][MAX_PARTITIONS];
static struct payments_partition payments_state[MAX_PARTITIONS];
static struct carts_partition carts_state[MAX_PARTITIONS];
static struct orders_partition orders_state[MAX_PARTITIONS];
static struct alerts_partition alerts_state[MAX_PARTITIONS];

/* ---- producers, consumer, run state ---- */

struct cart_slot {
    uint64_t generation;
    int64_t total_cents;
    uint32_t lines_left, last_sku, last_price;
    uint16_t last_qty;
    bool open;
};

struct producer {
    alignas(64) _Atomic uint64_t published; /* statistics for the status line */
    _Atomic uint64_t eagain;
    /* The producer thread's own; main reads them after pthread_join(). */
    struct sb_producer *handle;
    pthread_t thread;
    unsigned index;
    double rate;                /* events per second, 0 = unlimited */
    uint64_t rng, sequence;
    uint64_t count[2], checksum[2]; /* per topic (PAYMENTS, CARTS) */
    uint64_t checkouts;
    int64_t outstanding_cents, revenue_cents;
    int error;                  /* negative errno of the failed call, else 0 */
    const char *failed_call;
    struct cart_slot slots[CART_SLOTS];
};

struct alert_consumer {
    alignas(64) _Atomic uint64_t consumed;
    _Atomic uint64_t latency[HIST_BUCKETS]; /* ns, log buckets */
    _Atomic uint64_t max_latency;
    struct sb_consumer *handle;
    pthread_t thread;
    /* The consumer thread's own; main reads them after pthread_join(). */
    uint64_t checksum, offset_gaps, errors;
    int64_t next_offset[MAX_PARTITIONS];
    int error;
};

struct options { unsigned shards, producers; double rate, duration; };

static struct producer producers[MAX_PRODUCERS];
static struct alert_consumer consumer;
static _Atomic int stop_signal;     /* set by the signal handler */
static _Atomic bool producers_stop; /* set by main when the run ends */
static _Atomic bool consumer_stop;  /* set by main once every alert arrived */
static _Atomic bool worker_failed;  /* set by a producer or the consumer on a library error */

static void on_payment(struct sb_shard *shard, const struct sb_event *ev, void *ctx);
static void on_cart(struct sb_shard *shard, const struct sb_event *ev, void *ctx);
static void on_order(struct sb_shard *shard, const struct sb_event *ev, void *ctx);
static void on_alert(struct sb_shard *shard, const struct sb_event *ev, void *ctx);

/* partitions <= MAX_PARTITIONS */
static const struct { const char *name; unsigned partitions; sb_handler_fn handler; } topics[] = {
    [PAYMENTS] = {"payments", 8, on_payment},
    [CARTS] = {"carts", 8, on_cart},
    [ORDERS] = {"orders", 4, on_order},
    [ALERTS] = {"alerts", 2, on_alert},
};

/* ---- small helpers ---- */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * NS_PER_SEC + ts.tv_nsec;
}

static void sleep_ns(int64_t ns)
{
    struct timespec ts = {(time_t)(ns / NS_PER_SEC), (long)(ns % NS_PER_SEC)};
    nanosleep(&ts, NULL); /* a signal (EINTR) just ends the nap early */
}

/* splitmix64's finaliser: spreads ids so that a sum of them exposes a loss plus a duplicate. */
static uint64_t mix64(uint64_t x)
{
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
    return x ^ (x >> 31);
}

static uint32_t random_below(uint64_t *state, uint32_t bound)
{
    *state ^= *state << 13; /* xorshift64 */
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (uint32_t)((*state >> 11) % bound);
}

static uint64_t cart_serial(uint64_t cart_id)
{
    return cart_id & (((uint64_t)1 << 40) - 1);
}

/* Add to a counter only one thread writes: a load and a store, no read-modify-write needed. */
static void bump(_Atomic uint64_t *counter, uint64_t n, memory_order order)
{
    atomic_store_explicit(counter, atomic_load_explicit(counter, memory_order_relaxed) + n, order);
}

static void die_on_error(const char *what, int rc)
{
    if (rc < 0) {
        fprintf(stderr, PROG ": %s: %s\n", what, strerror(-rc));
        exit(1);
    }
}

/* ---- handlers: each runs on the shard owning ev->partition; ctx is the topic's stats row ---- */

/* Copy the value into *out when it has the expected size; `valid` checks the fields too. */
static bool decode(const struct sb_event *ev, struct partition_stats *st, void *out, size_t size,
                   bool (*valid)(const void *))
{
    if (ev->value_len != size) {
        st->errors++;
        return false;
    }
    memcpy(out, ev->value, size); /* values carry no alignment guarantee */
    if (valid && !valid(out)) {
        st->errors++;
        return false;
    }
    return true;
}

static bool payment_valid(const void *p)
{
    return ((const struct payment_event *)p)->tenant_id < TENANTS;
}

static bool cart_event_valid(const void *p)
{
    const struct cart_event *ce = p;
    return (ce->cart_id >> 40) < MAX_PRODUCERS && ce->action >= CART_ADD &&
           ce->action <= CART_CHECKOUT;
}

static void publish_derived(struct sb_shard *shard, const struct sb_event *ev,
                            struct partition_stats *st, const char *topic, const void *value,
                            size_t len, uint64_t id)
{
    if (sb_shard_publish(shard, topic, ev->key, ev->key_len, value, len)) {
        st->errors++;
        return;
    }
    st->derived_checksum += mix64(id);
    /* Relaxed: readers are ordered by finish_event()'s release store of `handled`. */
    bump(&st->derived, 1, memory_order_relaxed);
}

/* The last thing every handler does, after its derived publishes. */
static void finish_event(struct partition_stats *st, const struct sb_event *ev, uint64_t id)
{
    if (ev->offset != st->next_offset)
        st->offset_gaps++;
    st->next_offset = ev->offset + 1;
    st->checksum += mix64(id);
    /* Release pairs with the acquire load in orders_handled(): whoever sees this count also
     * sees the `derived` count stored before it. */
    bump(&st->handled, 1, memory_order_release);
}

static void on_payment(struct sb_shard *shard, const struct sb_event *ev, void *ctx)
{
    struct partition_stats *st = (struct partition_stats *)ctx + ev->partition;
    struct payment_event pay = {0};
    if (decode(ev, st, &pay, sizeof(pay), payment_valid)) {
        struct payments_partition *part = &payments_state[ev->partition];
        struct tenant_account *acct = &part->accounts[pay.tenant_id];
        int64_t shortfall = (int64_t)pay.rent_cents - pay.paid_cents;
        acct->balance_cents += shortfall;
        acct->payments++;
        part->outstanding_cents += shortfall;
        struct alert_event alert = {.origin_ns = pay.publish_ns, .origin_id = pay.event_id};
        if (pay.paid_day > pay.due_day + GRACE_DAYS) {
            acct->late++;
            alert.reasons |= ALERT_LATE;
            alert.days_late = (uint32_t)(pay.paid_day - pay.due_day);
        }
        if (shortfall > 0) {
            alert.reasons |= ALERT_SHORT;
            alert.amount_cents = shortfall;
        }
        if (alert.reasons)
            publish_derived(shard, ev, st, "alerts", &alert, sizeof(alert), alert.origin_id);
    }
    finish_event(st, ev, pay.event_id);
}

static void on_cart(struct sb_shard *shard, const struct sb_event *ev, void *ctx)
{
    struct partition_stats *st = (struct partition_stats *)ctx + ev->partition;
    struct cart_event ce = {0};
    if (decode(ev, st, &ce, sizeof(ce), cart_event_valid)) {
        unsigned slot = (unsigned)(ce.cart_id >> 40) * CART_SLOTS +
                        (unsigned)(cart_serial(ce.cart_id) % CART_SLOTS);
        struct cart_state *cart = &carts_state[ev->partition].carts[slot];
        if (ce.action == CART_ADD && !cart->open)
            *cart = (struct cart_state){.cart_id = ce.cart_id, .open = true};
        int64_t amount = (int64_t)ce.price_cents * ce.quantity;
        if (!cart->open || cart->cart_id != ce.cart_id) {
            st->errors++; /* an event of a cart this partition never saw opened */
        } else if (ce.action == CART_ADD) {
            cart->items += ce.quantity;
            cart->total_cents += amount;
        } else if (ce.action == CART_REMOVE) {
            cart->items -= ce.quantity;
            cart->total_cents -= amount;
        } else {
            struct order_event order = {ce.publish_ns, ce.cart_id, (uint32_t)cart->items,
                                        (uint32_t)cart->total_cents};
            cart->open = false;
            publish_derived(shard, ev, st, "orders", &order, sizeof(order), ce.cart_id);
        }
    }
    finish_event(st, ev, ce.event_id);
}

static void on_order(struct sb_shard *shard, const struct sb_event *ev, void *ctx)
{
    struct partition_stats *st = (struct partition_stats *)ctx + ev->partition;
    struct order_event order = {0};
    if (decode(ev, st, &order, sizeof(order), NULL)) {
        orders_state[ev->partition].revenue_cents += order.total_cents;
        if (order.total_cents >= BIG_ORDER_CENTS) {
            struct alert_event alert = {order.origin_ns, order.cart_id | ORDER_ALERT_BIT,
                                        order.total_cents, ALERT_BIG_ORDER, 0};
            publish_derived(shard, ev, st, "alerts", &alert, sizeof(alert), alert.origin_id);
        }
    }
    finish_event(st, ev, order.cart_id);
}

static void on_alert(struct sb_shard *shard, const struct sb_event *ev, void *ctx)
{
    (void)shard;
    struct partition_stats *st = (struct partition_stats *)ctx + ev->partition;
    struct alert_event alert = {0};
    if (decode(ev, st, &alert, sizeof(alert), NULL))
        for (unsigned r = 0; r < 3; r++)
            alerts_state[ev->partition].by_reason[r] += (alert.reasons >> r) & 1;
    finish_event(st, ev, alert.origin_id);
}

/* ---- producers ---- */

static bool producers_should_stop(void)
{
    /* Acquire pairs with the release store in main() that ends the run. */
    return atomic_load_explicit(&producers_stop, memory_order_acquire);
}

/* Publish, retrying on -EAGAIN. 0 published, 1 gave up as the run ends, or a negative errno. */
static int publish(struct producer *pr, enum topic topic, const char *key, const void *value,
                   size_t len, uint64_t id)
{
    for (unsigned attempt = 1;; attempt++) {
        int rc = sb_publish(pr->handle, topics[topic].name, key, strlen(key), value, len);
        if (rc == 0) {
            pr->count[topic]++;
            pr->checksum[topic] += mix64(id);
            /* Relaxed: a statistic (single writer: this thread). */
            bump(&pr->published, 1, memory_order_relaxed);
        }
        if (rc != -EAGAIN)
            return rc;
        /* Relaxed: a statistic (single writer: this thread). */
        bump(&pr->eagain, 1, memory_order_relaxed);
        if (producers_should_stop())
            return 1;
        if (attempt % 64 == 0)
            sleep_ns(50000); /* the shard is far behind: let it catch up */
        else
            sched_yield();
    }
}

static int publish_payment(struct producer *pr)
{
    uint32_t tenant = random_below(&pr->rng, TENANTS);
    uint32_t rent = 60000 + tenant * 7919u % 120u * 1000u; /* 600..1790 EUR a month */
    uint16_t due = (uint16_t)(random_below(&pr->rng, 24) * 30 + 10);
    uint32_t roll = random_below(&pr->rng, 100); /* 4% pay short, 10% pay late */
    struct payment_event pay = {
        .event_id = (uint64_t)pr->index << 48 | pr->sequence++,
        .tenant_id = tenant,
        .rent_cents = rent,
        .paid_cents = roll < 4 ? rent / 100 * (50 + random_below(&pr->rng, 46)) : rent,
        .due_day = due,
        .paid_day = (uint16_t)(roll >= 90 ? due + 1 + random_below(&pr->rng, 20)
                                          : due - random_below(&pr->rng, 6)),
    };
    char key[24];
    snprintf(key, sizeof(key), "tenant-%05" PRIu32, tenant);
    pay.publish_ns = (uint64_t)now_ns();
    int rc = publish(pr, PAYMENTS, key, &pay, sizeof(pay), pay.event_id);
    if (rc == 0)
        pr->outstanding_cents += (int64_t)pay.rent_cents - pay.paid_cents;
    return rc;
}

/* The next step of a random cart: add items, now and then put one back, then check out. */
static struct cart_slot *next_cart_step(struct producer *pr, struct cart_event *ce)
{
    unsigned s = random_below(&pr->rng, CART_SLOTS);
    struct cart_slot *slot = &pr->slots[s];
    if (!slot->open)
        *slot = (struct cart_slot){.generation = slot->generation, .open = true,
                                   .lines_left = 2 + random_below(&pr->rng, 7)};
    ce->cart_id = (uint64_t)pr->index << 40 | (slot->generation * CART_SLOTS + s);
    if (slot->lines_left == 0) {
        ce->action = CART_CHECKOUT;
    } else if (slot->last_qty > 0 && random_below(&pr->rng, 8) == 0) {
        ce->action = CART_REMOVE;
        ce->sku = slot->last_sku;
        ce->price_cents = slot->last_price;
        ce->quantity = 1;
    } else {
        ce->action = CART_ADD;
        ce->sku = 100000 + random_below(&pr->rng, 50000);
        ce->price_cents = 200 + random_below(&pr->rng, 14800); /* 2..150 EUR */
        ce->quantity = (uint16_t)(1 + random_below(&pr->rng, 3));
    }
    return slot;
}

static int publish_cart_event(struct producer *pr)
{
    struct cart_event ce = {.event_id = (uint64_t)pr->index << 48 | pr->sequence++};
    struct cart_slot *slot = next_cart_step(pr, &ce);
    char key[32];
    snprintf(key, sizeof(key), "cart-%u-%" PRIu64, pr->index, cart_serial(ce.cart_id));
    ce.publish_ns = (uint64_t)now_ns();
    int rc = publish(pr, CARTS, key, &ce, sizeof(ce), ce.event_id);
    if (rc)
        return rc;
    if (ce.action == CART_ADD) { /* the producer's own copy of the cart, once published */
        slot->lines_left--;
        slot->last_sku = ce.sku;
        slot->last_price = ce.price_cents;
        slot->last_qty = ce.quantity;
        slot->total_cents += (int64_t)ce.price_cents * ce.quantity;
    } else if (ce.action == CART_REMOVE) {
        slot->last_qty--;
        slot->total_cents -= ce.price_cents;
    } else {
        pr->checkouts++;
        pr->revenue_cents += slot->total_cents;
        slot->open = false;
        slot->generation++;
    }
    return 0;
}

/* Events due now to keep pr->rate since start_ns; a backlog over 100 ms is forgiven. */
static uint64_t events_due(const struct producer *pr, int64_t start_ns, uint64_t *credited)
{
    if (pr->rate <= 0)
        return PUBLISH_BURST;
    double allowed = (double)(now_ns() - start_ns) * pr->rate / 1e9;
    if (allowed - (double)*credited > pr->rate / 10)
        *credited = (uint64_t)(allowed - pr->rate / 10);
    return allowed > (double)*credited ? (uint64_t)(allowed - (double)*credited) : 0;
}

static void *producer_main(void *arg)
{
    struct producer *pr = arg;
    int64_t start = now_ns();
    uint64_t credited = 0;
    int rc = 0;
    while (rc == 0 && !producers_should_stop()) {
        uint64_t due = events_due(pr, start, &credited);
        if (due == 0)
            sleep_ns(100000);
        for (uint64_t i = 0; i < due && i < PUBLISH_BURST && rc == 0; i++, credited++)
            rc = random_below(&pr->rng, 10) < 4 ? publish_payment(pr) : publish_cart_event(pr);
    }
    if (rc < 0) {
        pr->error = rc;
        pr->failed_call = "sb_publish";
        /* Release pairs with the acquire load in run_until_stopped(). */
        atomic_store_explicit(&worker_failed, true, memory_order_release);
    }
    /* Returns once the shards appended everything and ran the handlers: the orders and alerts
     * derived from our events are queued and counted in the handlers' `derived` counters. */
    int flush_rc = sb_producer_flush(pr->handle, -1);
    if (flush_rc && !pr->error) {
        pr->error = flush_rc;
        pr->failed_call = "sb_producer_flush";
    }
    sb_producer_close(pr->handle);
    return NULL;
}

/* ---- the alerts consumer and its latency histogram ---- */

static unsigned histogram_bucket(uint64_t ns)
{
    if (ns < 8)
        return (unsigned)ns;
    unsigned exp = 63u - (unsigned)__builtin_clzll(ns);
    return (exp - 2) * 8 + (unsigned)((ns >> (exp - 3)) & 7);
}

static uint64_t histogram_bucket_top(unsigned b)
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
    if (ev->offset != c->next_offset[ev->partition])
        c->offset_gaps++;
    c->next_offset[ev->partition] = ev->offset + 1;
    uint64_t ns = now > (int64_t)alert.origin_ns ? (uint64_t)now - alert.origin_ns : 0;
    /* Relaxed: statistics main samples; no other data travels with them. */
    bump(&c->latency[histogram_bucket(ns)], 1, memory_order_relaxed);
    if (ns > atomic_load_explicit(&c->max_latency, memory_order_relaxed))
        atomic_store_explicit(&c->max_latency, ns, memory_order_relaxed);
}

static void *consumer_main(void *arg)
{
    struct alert_consumer *c = arg;
    struct sb_event events[256];
    /* Acquire pairs with main()'s release store once every published alert arrived. */
    while (!atomic_load_explicit(&consumer_stop, memory_order_acquire)) {
        int n = sb_poll(c->handle, events, 256, 100);
        if (n < 0) {
            c->error = n;
            /* Release pairs with the acquire load in run_until_stopped(). */
            atomic_store_explicit(&worker_failed, true, memory_order_release);
            break;
        }
        int64_t now = now_ns();
        for (int i = 0; i < n; i++)
            record_alert(c, &events[i], now);
        /* Release pairs with the acquire load in alerts_consumed(). */
        bump(&c->consumed, (uint64_t)n, memory_order_release);
    }
    sb_consumer_close(c->handle);
    return NULL;
}

/* ---- status line ---- */

struct snapshot { uint64_t published, handled, alerts, eagain, latency[HIST_BUCKETS]; };

static void take_snapshot(struct snapshot *s, unsigned nproducers)
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

static void print_status(const struct snapshot *now, const struct snapshot *before,
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

static bool print_summary(const struct options *opt, double elapsed)
{
    struct tally t[TOPIC_COUNT];
    uint64_t checkouts = 0, eagain = 0, reasons[3] = {0};
    int64_t outstanding = 0, revenue = 0, handled_outstanding = 0, handled_revenue = 0;
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
    for (unsigned p = 0; p < MAX_PARTITIONS; p++) {
        handled_outstanding += payments_state[p].outstanding_cents;
        handled_revenue += orders_state[p].revenue_cents;
        for (unsigned r = 0; r < 3; r++)
            reasons[r] += alerts_state[p].by_reason[r];
    }
    /* Relaxed: the consumer thread was joined. */
    uint64_t consumed = atomic_load_explicit(&consumer.consumed, memory_order_relaxed);
    bool consumed_ok = consumed == t[ALERTS].published && !consumer.offset_gaps &&
                       consumer.checksum == t[ALERTS].pub_checksum && !consumer.errors;

    char detail[128];
    printf("\n" PROG ": %.1f s, %u shards, %u producers\n", elapsed, opt->shards, opt->producers);
    snprintf(detail, sizeof(detail), "rent outstanding %.2f EUR (producers: %.2f)",
             (double)handled_outstanding / 100, (double)outstanding / 100);
    bool ok = check_topic(PAYMENTS, &t[PAYMENTS], handled_outstanding == outstanding, detail);
    snprintf(detail, sizeof(detail), "checkouts %" PRIu64, checkouts);
    ok &= check_topic(CARTS, &t[CARTS], checkouts == t[ORDERS].published, detail);
    snprintf(detail, sizeof(detail), "revenue %.2f EUR (producers: %.2f)",
             (double)handled_revenue / 100, (double)revenue / 100);
    ok &= check_topic(ORDERS, &t[ORDERS], handled_revenue == revenue, detail);
    snprintf(detail, sizeof(detail), "late %" PRIu64 ", short %" PRIu64 ", big orders %" PRIu64,
             reasons[0], reasons[1], reasons[2]);
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

/* ---- command line ---- */

static void usage(void)
{
    printf("usage: " PROG " [options]\n"
           "Runs an embedded shardbus: producers publish rent payments and shopping-cart events,\n"
           "handlers derive orders and alerts, a consumer measures the alerts' latency.\n\n"
           "  --shards N      shard threads (default 2)\n"
           "  --producers N   producer threads, 1-%d (default 3)\n"
           "  --rate N        target events/s, all producers together; 0 = as fast as possible\n"
           "                  (default 200000)\n"
           "  --duration S    seconds to run; 0 = until Ctrl-C or SIGTERM (default 0)\n"
           "  -h, --help      this text\n\n"
           "Exit status: 0 ok, 1 library error, 2 usage error, 3 events lost or duplicated.\n",
           MAX_PRODUCERS);
}

__attribute__((format(printf, 1, 2), noreturn)) static void usage_error(const char *fmt, ...);

static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see --help)\n", stderr);
    exit(2);
}

static double parse_number(const char *flag, const char *text, double min, double max,
                           bool integer)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !(v >= min && v <= max) ||
        (integer && v != (double)(long long)v))
        usage_error("%s: expected %s from %g to %g, got '%s'", flag,
                    integer ? "an integer" : "a number", min, max, text);
    return v;
}

/* "--flag value" or "--flag=value": the value, or NULL when arg is not this flag. */
static const char *flag_value(const char *flag, int argc, char **argv, int *i)
{
    size_t len = strlen(flag);
    if (strncmp(argv[*i], flag, len) || (argv[*i][len] != '=' && argv[*i][len] != '\0'))
        return NULL;
    if (argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (*i + 1 >= argc)
        usage_error("%s needs a value", flag);
    return argv[++*i];
}

static void parse_options(int argc, char **argv, struct options *opt)
{
    *opt = (struct options){.shards = 2, .producers = 3, .rate = 200000, .duration = 0};
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            exit(0);
        } else if ((v = flag_value("--shards", argc, argv, &i))) {
            opt->shards = (unsigned)parse_number("--shards", v, 1, 1024, true);
        } else if ((v = flag_value("--producers", argc, argv, &i))) {
            opt->producers = (unsigned)parse_number("--producers", v, 1, MAX_PRODUCERS, true);
        } else if ((v = flag_value("--rate", argc, argv, &i))) {
            opt->rate = parse_number("--rate", v, 0, 1e9, false);
        } else if ((v = flag_value("--duration", argc, argv, &i))) {
            opt->duration = parse_number("--duration", v, 0, 1e7, false);
        } else {
            usage_error("unknown option '%s'", argv[i]);
        }
    }
}

/* ---- running it ---- */

static void on_stop_signal(int sig)
{
    /* Relaxed: a lock-free atomic is what a signal handler may store; run_until_stopped(), on
     * the one thread with the signals unblocked (this one), loads it. */
    atomic_store_explicit(&stop_signal, sig, memory_order_relaxed);
}

static struct sb_bus *open_bus(const struct options *opt)
{
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = opt->shards;
    struct sb_bus *bus;
    die_on_error("sb_bus_open", sb_bus_open(&cfg, &bus));
    for (unsigned t = 0; t < TOPIC_COUNT; t++) {
        char what[64];
        snprintf(what, sizeof(what), "sb_topic_create %s", topics[t].name);
        die_on_error(what, sb_topic_create(bus, topics[t].name, topics[t].partitions));
        snprintf(what, sizeof(what), "sb_handler_add %s", topics[t].name);
        die_on_error(what, sb_handler_add(bus, topics[t].name, topics[t].handler, stats[t]));
    }
    return bus;
}

static void start_workers(struct sb_bus *bus, const struct options *opt)
{
    die_on_error("sb_subscribe alerts",
                 sb_subscribe(bus, "alerts", SB_OFFSET_BEGINNING, &consumer.handle));
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
        /* Acquire pairs with finish_event()'s release store: once we see an order handled we
         * also see the alert its handler published counted in `derived`. */
        n += atomic_load_explicit(&stats[ORDERS][p].handled, memory_order_acquire);
    return n;
}

static uint64_t alerts_consumed(void)
{
    /* Acquire pairs with consumer_main()'s release store. */
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

    /* Release pairs with the acquire load in producers_should_stop(). */
    atomic_store_explicit(&producers_stop, true, memory_order_release);
    for (unsigned i = 0; i < opt.producers; i++)
        pthread_join(producers[i].thread, NULL);
    wait_for_derived_events();
    /* Release pairs with the acquire load in consumer_main(). */
    atomic_store_explicit(&consumer_stop, true, memory_order_release);
    pthread_join(consumer.thread, NULL);
    die_on_error("sb_bus_close", sb_bus_close(bus));

    for (unsigned i = 0; i < opt.producers; i++)
        die_on_error(producers[i].failed_call, producers[i].error);
    die_on_error("sb_poll", consumer.error);
    return print_summary(&opt, elapsed) ? 0 : 3;
}
