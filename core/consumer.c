/*
 * consumer.c - consumers: a subscription on every shard owning a partition of the topic, each
 * feeding the consumer through its own shard -> consumer ring.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bus.h"
#include "shard_log.h"
#include "wire.h"

struct sb_consumer_link {
    void *ring_mem;
    struct sb_ring_consumer r;
    struct sb_subscription *sub; /* owned by the shard while attached */
    bool attached;               /* the shard has sub in its list */
};

struct sb_consumer {
    struct sb_parker parker; /* first: cache-line aligned, written by shards */
    struct sb_bus *bus;
    struct sb_topic *topic;
    struct sb_consumer_link *links; /* [shard_count]; ring_mem NULL where the shard owns none */
    unsigned next_shard;            /* where the next poll starts, for fairness */
};

struct subscribe_request {
    struct sb_subscription *sub;
    int64_t from_offset;
};

static int sub_add_cursor_to_partition(struct sb_partition *part, struct sb_cursor *cur)
{
    if (part->cursor_count == part->cursor_cap) {
        uint32_t cap = part->cursor_cap ? part->cursor_cap * 2 : 4;
        struct sb_cursor **cursors = realloc(part->cursors, cap * sizeof(*cursors));
        if (!cursors)
            return -ENOMEM;
        part->cursors = cursors;
        part->cursor_cap = cap;
    }
    part->cursors[part->cursor_count++] = cur;
    return 0;
}

static void sub_remove_cursors(struct sb_subscription *sub)
{
    for (uint32_t c = 0; c < sub->cursor_count; c++) {
        struct sb_partition *part = sub->cursors[c].partition;
        for (uint32_t i = 0; i < part->cursor_count; i++) {
            if (part->cursors[i] == &sub->cursors[c]) {
                part->cursors[i] = part->cursors[--part->cursor_count];
                break;
            }
        }
    }
}

/* Shard thread: place the cursors, then start delivering. */
static int subscribe_on_shard(struct sb_shard *s, void *arg)
{
    struct subscribe_request *req = arg;
    struct sb_subscription *sub = req->sub;
    struct sb_topic *topic = sub->topic;
    int rc = sb_topic_is_closing(topic) ? -ENOENT : 0; /* being deleted */
    uint32_t placed = 0;
    for (uint32_t p = 0; p < topic->partition_count && !rc; p++) {
        if (sb_partition_owner(topic, p, s->shard_count) != s->id)
            continue;
        struct sb_partition *part = &topic->partitions[p];
        struct sb_cursor *cur = &sub->cursors[placed];
        rc = sb_cursor_place(s, part, req->from_offset, cur);
        if (!rc)
            rc = sub_add_cursor_to_partition(part, cur);
        if (!rc)
            sub->cursor_count = ++placed;
    }
    if (!rc && s->sub_count == s->sub_cap) {
        uint32_t cap = s->sub_cap ? s->sub_cap * 2 : 4;
        struct sb_subscription **subs = realloc(s->subs, cap * sizeof(*subs));
        if (!subs)
            rc = -ENOMEM;
        else {
            s->subs = subs;
            s->sub_cap = cap;
        }
    }
    if (rc) {
        sub_remove_cursors(sub);
        sub->cursor_count = 0;
        return rc;
    }
    s->subs[s->sub_count++] = sub;
    return 0;
}

/* Shard thread: stop delivering; the consumer frees the subscription afterwards. */
static int unsubscribe_on_shard(struct sb_shard *s, void *arg)
{
    struct sb_subscription *sub = arg;
    for (uint32_t i = 0; i < s->sub_count; i++) {
        if (s->subs[i] == sub) {
            s->subs[i] = s->subs[--s->sub_count];
            break;
        }
    }
    /* A disk read in flight writes into the cursor's buffer: let it finish first. */
    for (uint32_t i = 0; i < sub->cursor_count; i++)
        sb_cursor_wait_read(s, &sub->cursors[i]);
    sub_remove_cursors(sub);
    return 0;
}

static uint32_t partitions_owned(const struct sb_topic *topic, unsigned shard, unsigned shards)
{
    uint32_t n = 0;
    for (uint32_t p = 0; p < topic->partition_count; p++)
        if (sb_partition_owner(topic, p, shards) == shard)
            n++;
    return n;
}

static void consumer_free(struct sb_consumer *c)
{
    for (unsigned i = 0; i < c->bus->shard_count; i++) {
        if (c->links[i].sub) {
            for (uint32_t k = 0; k < c->links[i].sub->cursor_count; k++)
                sb_cursor_leave_disk(&c->links[i].sub->cursors[k]);
            free(c->links[i].sub->cursors);
            free(c->links[i].sub);
        }
        free(c->links[i].ring_mem);
    }
    free(c->links);
    free(c);
}

/* Detach from every shard that has the subscription, then free everything. */
static void consumer_teardown(struct sb_consumer *c)
{
    for (unsigned i = 0; i < c->bus->shard_count; i++)
        if (c->links[i].attached)
            sb_shard_call(c->bus->shards[i], unsubscribe_on_shard, c->links[i].sub);
    consumer_free(c);
}

int sb_subscribe(struct sb_bus *bus, const char *topic_name, int64_t from_offset,
                 struct sb_consumer **out)
{
    if (!bus || !topic_name || !out || from_offset < SB_OFFSET_BEGINNING)
        return -EINVAL;
    if (sb_current_shard())
        return -EDEADLK;
    struct sb_topic *topic = sb_topic_find(&bus->topics, topic_name);
    if (!topic)
        return -ENOENT;
    struct sb_consumer *c = aligned_alloc(SB_CACHE_GUARD, sizeof(*c));
    if (!c)
        return -ENOMEM;
    memset(c, 0, sizeof(*c));
    atomic_init(&c->parker.parked, 0);
    c->parker.eventfd = -1;
    c->bus = bus;
    c->topic = topic;
    c->links = calloc(bus->shard_count, sizeof(*c->links));
    if (!c->links) {
        free(c);
        return -ENOMEM;
    }
    int rc = 0;
    for (unsigned i = 0; i < bus->shard_count && !rc; i++) {
        uint32_t owned = partitions_owned(topic, i, bus->shard_count);
        if (!owned)
            continue;
        struct sb_consumer_link *link = &c->links[i];
        size_t bytes;
        link->ring_mem = sb_ring_alloc(bus->ring_capacity, &bytes);
        link->sub = calloc(1, sizeof(*link->sub));
        if (!link->ring_mem || !link->sub ||
            !(link->sub->cursors = calloc(owned, sizeof(struct sb_cursor)))) {
            rc = -ENOMEM;
            break;
        }
        link->sub->topic = topic;
        link->sub->consumer_parker = &c->parker;
        rc = sb_ring_producer_attach(&link->sub->w, link->ring_mem, bytes);
        if (!rc)
            rc = sb_ring_consumer_attach(&link->r, link->ring_mem, bytes);
        if (rc)
            break;
        struct subscribe_request req = {link->sub, from_offset};
        rc = sb_shard_call(bus->shards[i], subscribe_on_shard, &req);
        link->attached = rc == 0;
    }
    if (rc) {
        consumer_teardown(c);
        return rc;
    }
    /* Relaxed: a count read only by sb_bus_close()'s refusal check. */
    atomic_fetch_add_explicit(&bus->open_consumers, 1, memory_order_relaxed);
    *out = c;
    return 0;
}

/* Give the space of everything returned by the previous poll back to the shards. */
static void consumer_release(struct sb_consumer *c)
{
    for (unsigned i = 0; i < c->bus->shard_count; i++) {
        struct sb_consumer_link *link = &c->links[i];
        if (link->ring_mem && link->r.released != link->r.read) {
            /* seq_cst release, then the shard's park flag: the shard may be parked waiting for
             * room in this ring (see has_work_seq_cst() in shard.c). */
            sb_ring_release_seq_cst(&link->r);
            sb_parker_wake(&c->bus->shards[i]->parker);
        }
    }
}

static int consumer_take(struct sb_consumer *c, struct sb_event *events, int max)
{
    int n = 0;
    unsigned shards = c->bus->shard_count;
    for (unsigned k = 0; k < shards && n < max; k++) {
        unsigned i = (c->next_shard + k) % shards;
        struct sb_consumer_link *link = &c->links[i];
        const struct sb_ring_record *rec;
        if (!link->ring_mem)
            continue;
        while (n < max && (rec = sb_ring_peek(&link->r, NULL))) {
            const struct sb_stored_event *st = (const struct sb_stored_event *)rec->payload;
            sb_ring_advance(&link->r, rec);
            if (rec->type != SB_WIRE_DELIVERY ||
                !sb_stored_event_valid(st, sb_ring_record_length(rec)))
                continue; /* cannot happen in-process; never hand out unchecked bytes */
            struct sb_event *ev = &events[n++];
            ev->topic = c->topic->name;
            ev->partition = st->partition;
            ev->offset = st->offset;
            ev->timestamp_ms = st->timestamp_ms;
            ev->key = (st->flags & SB_WIRE_KEY_NULL) ? NULL : st->bytes;
            ev->key_len = st->key_len;
            ev->value = (st->flags & SB_WIRE_VALUE_NULL) ? NULL : st->bytes + st->key_len;
            ev->value_len = st->value_len;
        }
    }
    c->next_shard = (c->next_shard + 1) % shards;
    return n;
}

static bool consumer_empty_seq_cst(struct sb_consumer *c)
{
    for (unsigned i = 0; i < c->bus->shard_count; i++)
        if (c->links[i].ring_mem && !sb_ring_is_empty_seq_cst(&c->links[i].r))
            return false;
    return true;
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int sb_poll(struct sb_consumer *c, struct sb_event *events, int max, int timeout_ms)
{
    if (!c || !events || max <= 0)
        return -EINVAL;
    consumer_release(c);
    int n = consumer_take(c, events, max);
    if (n || timeout_ms == 0)
        return n;
    /* Spin as long as an idle shard does (sb_config.idle_spin_us), then sleep on the futex. */
    const int64_t spin_ns = (int64_t)c->bus->cfg.idle_spin_us * 1000;
    int64_t start = monotonic_ns();
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : start + (int64_t)timeout_ms * 1000000;
    for (;;) {
        int64_t now = monotonic_ns();
        if (now - start >= spin_ns) {
            if (now >= deadline)
                return 0;
            sb_parker_prepare(&c->parker);
            if (!consumer_empty_seq_cst(c))
                sb_parker_cancel(&c->parker);
            else
                sb_parker_wait(&c->parker, timeout_ms < 0 ? -1 : deadline - now);
        } else {
            sb_cpu_relax();
        }
        n = consumer_take(c, events, max);
        if (n)
            return n;
    }
}

void sb_consumer_close(struct sb_consumer *c)
{
    /* On a shard thread we could not wait for the shards to let go: leave it open rather
     * than free memory a shard still writes to. */
    if (!c || sb_current_shard())
        return;
    struct sb_bus *bus = c->bus;
    consumer_teardown(c);
    /* Relaxed: see sb_subscribe(). */
    atomic_fetch_sub_explicit(&bus->open_consumers, 1, memory_order_relaxed);
}
