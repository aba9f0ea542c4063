/* Producer threads: pacing, payment and cart generation, publishing with -EAGAIN retries. */
#include "producers.h"

#include <errno.h>
#include <inttypes.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>

#include "demo.h"
#include "util.h"

#define PUBLISH_BURST 64

static uint32_t random_below(uint64_t *state, uint32_t bound)
{
    *state ^= *state << 13; /* xorshift64 */
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return (uint32_t)((*state >> 11) % bound);
}

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

void *producer_main(void *arg)
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
        /* Release pairs with the acquire load in run_until_stopped() (main.c). */
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
