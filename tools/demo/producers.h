/* Producer threads: rent payments (topic "payments", keyed by tenant) and shopping-cart activity
 * (topic "carts", keyed by cart: add, remove, checkout), paced to a rate. */
#ifndef SHARDBUS_DEMO_PRODUCERS_H
#define SHARDBUS_DEMO_PRODUCERS_H

#include <pthread.h>
#include <shardbus.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "events.h"

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

/* The thread's start routine; arg is its struct producer, handle, index, rate and rng set.
 * Runs until producers_stop (state.c), then flushes and closes its handle. */
void *producer_main(void *arg);

#endif
