/* The handlers: each runs on the shard owning ev->partition; ctx is the topic's stats row.
 *  - payments: updates the tenant's balance; a late or short payment publishes to "alerts";
 *  - carts:    keeps each open cart's total; a checkout publishes to "orders";
 *  - orders:   adds up revenue; a big order publishes to "alerts" (fraud review);
 *  - alerts:   counts alerts by reason.
 * The per-partition state below is only written by the owning shard's thread, without locks. */
#include "handlers.h"

#include <stdbool.h>
#include <string.h>

#include "events.h"
#include "util.h"

#define GRACE_DAYS 3            /* a payment later than due + grace raises an alert */
#define BIG_ORDER_CENTS 150000  /* orders from 1500.00 EUR on go to fraud review */

struct tenant_account { int64_t balance_cents; uint32_t payments, late; };
struct cart_state { uint64_t cart_id; int64_t total_cents; int32_t items; bool open; };

struct payments_partition {
    alignas(64) int64_t outstanding_cents;
    struct tenant_account accounts[TENANTS]; /* only the tenants hashed here are ever used */
};
struct carts_partition { alignas(64) struct cart_state carts[MAX_PRODUCERS * CART_SLOTS]; };
struct orders_partition { alignas(64) int64_t revenue_cents; };
struct alerts_partition { alignas(64) uint64_t by_reason[3]; };

static struct payments_partition payments_state[MAX_PARTITIONS];
static struct carts_partition carts_state[MAX_PARTITIONS];
static struct orders_partition orders_state[MAX_PARTITIONS];
static struct alerts_partition alerts_state[MAX_PARTITIONS];

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
    /* Relaxed: this shard is the only writer of `handled`. The first event sets the start (a
     * data_dir from an earlier run starts past 0). */
    if (atomic_load_explicit(&st->handled, memory_order_relaxed) && ev->offset != st->next_offset)
        st->offset_gaps++;
    st->next_offset = ev->offset + 1;
    st->checksum += mix64(id);
    /* Release pairs with the acquire load in orders_handled() (main.c): whoever sees this count
     * also sees the `derived` count stored before it. */
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

/* partitions <= MAX_PARTITIONS */
const struct topic_info topics[TOPIC_COUNT] = {
    [PAYMENTS] = {"payments", 8, on_payment},
    [CARTS] = {"carts", 8, on_cart},
    [ORDERS] = {"orders", 4, on_order},
    [ALERTS] = {"alerts", 2, on_alert},
};

void handler_totals(struct handler_totals *out)
{
    *out = (struct handler_totals){0};
    for (unsigned p = 0; p < MAX_PARTITIONS; p++) {
        out->outstanding_cents += payments_state[p].outstanding_cents;
        out->revenue_cents += orders_state[p].revenue_cents;
        for (unsigned r = 0; r < 3; r++)
            out->by_reason[r] += alerts_state[p].by_reason[r];
    }
}
