/* The demo's events: native-endian binary structs without padding, the topics that carry them
 * and the constants the producers and the handlers share. */
#ifndef SHARDBUS_DEMO_EVENTS_H
#define SHARDBUS_DEMO_EVENTS_H

#include <shardbus.h>
#include <stdint.h>

#define PROG "shardbus-demo"
#define MAX_PARTITIONS 8
#define MAX_PRODUCERS 64
#define TENANTS 5000
#define CART_SLOTS 32           /* carts each producer keeps open at a time */

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

static inline uint64_t cart_serial(uint64_t cart_id)
{
    return cart_id & (((uint64_t)1 << 40) - 1);
}

/* ---- topics ---- */

enum topic { PAYMENTS, CARTS, ORDERS, ALERTS, TOPIC_COUNT };

struct topic_info { const char *name; unsigned partitions; sb_handler_fn handler; };

/* partitions <= MAX_PARTITIONS. Defined in handlers.c, next to the handlers it names. */
extern const struct topic_info topics[TOPIC_COUNT];

#endif
