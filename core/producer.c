/*
 * producer.c - producers: one SPSC ring from the producer to each shard.
 */
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acks.h"
#include "bus.h"
#include "wire.h"

struct sb_producer {
    struct sb_bus *bus;
    struct sb_producer_link **links; /* [shard_count] */
    uint64_t *published;             /* [shard_count]: events sent through each link */
    uint64_t published_total;
    uint64_t failed_reported;        /* failures sb_producer_flush() already returned */
    uint32_t keyless_rr;
    struct sb_topic *last_topic;     /* one-entry cache for the name lookup */
    /* Per-event acknowledgements (ack_fn set): the opaques of unsettled events, and what the
     * callbacks reported so far. */
    sb_ack_fn ack_fn;
    void *ack_ctx;
    struct sb_ack_table pending;
    uint64_t acks_delivered;         /* callbacks run */
    uint64_t acks_failed;            /* of which with an error */
    int acks_last_error;
    bool in_poll;                    /* a callback is running: no poll or flush from it */
};

void sb_producer_config_init(struct sb_producer_config *cfg)
{
    cfg->ack_fn = NULL;
    cfg->ack_ctx = NULL;
}

static int attach_link(struct sb_shard *s, void *arg)
{
    struct sb_producer_link *link = arg;
    if (s->link_count == s->link_cap) {
        uint32_t cap = s->link_cap ? s->link_cap * 2 : 8;
        struct sb_producer_link **links = realloc(s->links, cap * sizeof(*links));
        if (!links)
            return -ENOMEM;
        s->links = links;
        s->link_cap = cap;
    }
    s->links[s->link_count++] = link;
    /* Release pairs with the acquire load in sb_bus_close(). */
    atomic_store_explicit(&s->counters.producer_links, s->link_count, memory_order_release);
    return 0;
}

static void link_destroy(struct sb_producer_link *link)
{
    sb_link_acks_free(link);
    free(link->ring_mem);
    free(link);
}

static struct sb_producer_link *link_new(struct sb_bus *bus, bool acks)
{
    struct sb_producer_link *link = aligned_alloc(SB_CACHE_GUARD, sizeof(*link));
    if (!link)
        return NULL;
    memset(link, 0, sizeof(*link));
    atomic_init(&link->closed, false);
    atomic_init(&link->acknowledged, 0);
    atomic_init(&link->failed, 0);
    atomic_init(&link->last_error, 0);
    size_t bytes;
    link->ring_mem = sb_ring_alloc(bus->ring_capacity, &bytes);
    if (!link->ring_mem || sb_ring_producer_attach(&link->w, link->ring_mem, bytes) ||
        sb_ring_consumer_attach(&link->r, link->ring_mem, bytes)) {
        free(link->ring_mem);
        free(link);
        return NULL;
    }
    if (acks && sb_link_acks_init(link, bus->ring_capacity)) {
        link_destroy(link);
        return NULL;
    }
    return link;
}

int sb_producer_open(struct sb_bus *bus, struct sb_producer **out)
{
    return sb_producer_open_with(bus, NULL, out);
}

int sb_producer_open_with(struct sb_bus *bus, const struct sb_producer_config *cfg,
                          struct sb_producer **out)
{
    if (!bus || !out)
        return -EINVAL;
    if (sb_current_shard())
        return -EDEADLK;
    struct sb_producer *p = calloc(1, sizeof(*p));
    if (!p)
        return -ENOMEM;
    p->bus = bus;
    p->links = calloc(bus->shard_count, sizeof(*p->links));
    p->published = calloc(bus->shard_count, sizeof(*p->published));
    if (cfg && cfg->ack_fn) {
        p->ack_fn = cfg->ack_fn;
        p->ack_ctx = cfg->ack_ctx;
    }
    if (!p->links || !p->published || (p->ack_fn && sb_ack_table_init(&p->pending))) {
        free(p->links);
        free(p->published);
        free(p);
        return -ENOMEM;
    }
    int rc = 0;
    unsigned attached = 0;
    for (unsigned i = 0; i < bus->shard_count && !rc; i++) {
        p->links[i] = link_new(bus, p->ack_fn != NULL);
        if (!p->links[i]) {
            rc = -ENOMEM;
            break;
        }
        rc = sb_shard_call(bus->shards[i], attach_link, p->links[i]);
        if (!rc)
            attached++;
    }
    /* Relaxed: a count read only by sb_bus_close()'s refusal check. */
    atomic_fetch_add_explicit(&bus->open_producers, 1, memory_order_relaxed);
    if (rc) {
        /* Links already attached are handed to their shards as closed; the rest freed here. */
        for (unsigned i = attached; i < bus->shard_count; i++) {
            if (p->links[i]) {
                link_destroy(p->links[i]);
                p->links[i] = NULL;
            }
        }
        p->links[attached] = NULL;
        sb_producer_close(p);
        return rc;
    }
    *out = p;
    return 0;
}

static struct sb_topic *producer_topic(struct sb_producer *p, const char *name)
{
    if (p->last_topic && !strcmp(p->last_topic->name, name))
        return p->last_topic;
    struct sb_topic *topic = sb_topic_find(&p->bus->topics, name);
    if (topic)
        p->last_topic = topic;
    return topic;
}

static int producer_send(struct sb_producer *p, struct sb_topic *topic, uint32_t partition,
                         const void *key, size_t key_len, const void *value, size_t value_len,
                         void *opaque)
{
    unsigned shard = sb_partition_owner(topic, partition, p->bus->shard_count);
    struct sb_producer_link *link = p->links[shard];
    /* The opaque's place first: once the event is committed, nothing may fail. */
    struct sb_ack_queue *q = NULL;
    if (p->ack_fn) {
        q = sb_ack_table_get(&p->pending, topic->id, partition, topic);
        if (!q || sb_ack_queue_reserve(q))
            return -ENOMEM;
    }
    size_t len = sizeof(struct sb_wire_event) + key_len + value_len;
    struct sb_wire_event *ev = sb_ring_claim(&link->w, len, SB_WIRE_EVENT);
    if (!ev)
        return -EAGAIN;
    ev->topic_id = topic->id;
    ev->partition = partition;
    ev->key_len = (uint32_t)key_len;
    ev->value_len = (uint32_t)value_len;
    ev->flags = (key ? 0 : SB_WIRE_KEY_NULL) | (value ? 0 : SB_WIRE_VALUE_NULL);
    ev->reserved = 0;
    if (key_len)
        memcpy(ev->bytes, key, key_len);
    if (value_len)
        memcpy(ev->bytes + key_len, value, value_len);
    struct sb_parker *parker = &p->bus->shards[shard]->parker;
    if (p->bus->light_wakeups) {
        /* Release commit (pairs with the shard's acquire in sb_ring_peek()), then the park
         * flag with no full barrier: the shard parks with sb_parker_prepare_heavy() (park.h). */
        sb_ring_commit(&link->w);
        sb_parker_wake_light(parker);
    } else {
        /* seq_cst commit, then the shard's park flag: see park.h. */
        sb_ring_commit_seq_cst(&link->w);
        sb_parker_wake(parker);
    }
    /* The next event likely has this one's size: get its lines ready (a hint; ring.h). */
    sb_ring_prefetch_next(&link->w, len);
    p->published[shard]++;
    p->published_total++;
    if (q)
        sb_ack_queue_push(q, opaque);
    return 0;
}

/* Validate a publish and find its topic: 0 with *out set, or the errno sb_publish documents. */
static int publish_resolve(struct sb_producer *p, const char *topic, const void *key,
                           size_t key_len, const void *value, size_t value_len,
                           struct sb_topic **out)
{
    if (!p || !topic)
        return -EINVAL;
    int rc = sb_event_check(p->bus, key, key_len, value, value_len);
    if (rc)
        return rc;
    *out = producer_topic(p, topic);
    return *out ? 0 : -ENOENT;
}

int sb_publish_with(struct sb_producer *p, const char *topic, uint32_t partition,
                    const void *key, size_t key_len, const void *value, size_t value_len,
                    void *opaque)
{
    struct sb_topic *t;
    int rc = publish_resolve(p, topic, key, key_len, value, value_len, &t);
    if (rc)
        return rc;
    if (partition != SB_PARTITION_ANY) {
        if (partition >= t->partition_count)
            return -EINVAL;
        return producer_send(p, t, partition, key, key_len, value, value_len, opaque);
    }
    partition = key ? sb_partition_for_key(key, key_len, t->partition_count)
                    : p->keyless_rr % t->partition_count;
    rc = producer_send(p, t, partition, key, key_len, value, value_len, opaque);
    if (rc == 0 && !key)
        p->keyless_rr++; /* advance only on success so a retry goes to the same partition */
    return rc;
}

int sb_publish(struct sb_producer *p, const char *topic, const void *key, size_t key_len,
               const void *value, size_t value_len)
{
    return sb_publish_with(p, topic, SB_PARTITION_ANY, key, key_len, value, value_len, NULL);
}

int sb_publish_to(struct sb_producer *p, const char *topic, uint32_t partition, const void *key,
                  size_t key_len, const void *value, size_t value_len)
{
    if (partition == SB_PARTITION_ANY)
        return -EINVAL; /* out of range for any topic (as before this value had a meaning) */
    return sb_publish_with(p, topic, partition, key, key_len, value, value_len, NULL);
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Sum of every link's settled counts. Acquire loads pair with the shard's release stores
 * (settle_links() in shard_log.c, drain_ring() in shard.c). */
static void producer_settled(struct sb_producer *p, uint64_t *acknowledged, uint64_t *failed,
                             int *last_error, bool *all_settled)
{
    *acknowledged = *failed = 0;
    *last_error = 0;
    *all_settled = true;
    for (unsigned i = 0; i < p->bus->shard_count; i++) {
        struct sb_producer_link *link = p->links[i];
        int err = atomic_load_explicit(&link->last_error, memory_order_acquire);
        uint64_t f = atomic_load_explicit(&link->failed, memory_order_acquire);
        uint64_t a = atomic_load_explicit(&link->acknowledged, memory_order_acquire);
        if (err)
            *last_error = err;
        *acknowledged += a;
        *failed += f;
        if (a + f < p->published[i])
            *all_settled = false;
    }
}

/*
 * Run the callbacks of every acknowledgement record the shards committed. Returns how many
 * callbacks ran. A record settles the next events of its partition's queue, in publish order.
 */
static int run_acks(struct sb_producer *p)
{
    int ran = 0;
    p->in_poll = true;
    for (unsigned i = 0; i < p->bus->shard_count; i++) {
        struct sb_producer_link *link = p->links[i];
        const struct sb_ring_record *rec;
        bool read = false;
        /* sb_ring_peek()'s acquire pairs with the shard's release commit in
         * sb_link_ack_commit(). */
        while ((rec = sb_ring_peek(&link->ack_r, NULL))) {
            struct sb_wire_ack a;
            bool valid = rec->type == SB_WIRE_ACK && sb_ring_record_length(rec) == sizeof(a);
            if (valid)
                memcpy(&a, rec->payload, sizeof(a));
            sb_ring_advance(&link->ack_r, rec);
            read = true;
            if (!valid)
                continue;
            /* The callback may publish, which may move the queues: look again when it did. */
            uint64_t generation = p->pending.generation;
            struct sb_ack_queue *q = sb_ack_table_get(&p->pending, a.topic_id, a.partition, NULL);
            for (uint32_t k = 0; q && k < a.count; k++) {
                if (p->pending.generation != generation) {
                    generation = p->pending.generation;
                    q = sb_ack_table_get(&p->pending, a.topic_id, a.partition, NULL);
                }
                void *opaque;
                if (!sb_ack_queue_pop(q, &opaque))
                    break; /* cannot happen: one record per published event */
                struct sb_ack ack = {
                    .topic = q->topic->name,
                    .partition = a.partition,
                    .offset = a.error ? -1 : a.base_offset + k,
                    .error = a.error,
                    .opaque = opaque,
                };
                p->acks_delivered++;
                if (a.error) {
                    p->acks_failed++;
                    p->acks_last_error = a.error;
                }
                ran++;
                p->ack_fn(p->ack_ctx, &ack);
            }
        }
        if (read) {
            /* seq_cst release pairs with the shard's seq_cst load in has_work_seq_cst() (it
             * may be parked waiting for room in this ring); then wake it. */
            sb_ring_release_seq_cst(&link->ack_r);
            sb_parker_wake(&p->bus->shards[i]->parker);
        }
    }
    p->in_poll = false;
    return ran;
}

int sb_producer_poll(struct sb_producer *p, int timeout_ms)
{
    if (!p || !p->ack_fn)
        return -EINVAL;
    if (p->in_poll)
        return -EDEADLK;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : monotonic_ms() + timeout_ms;
    long sleep_ns = 1000;
    for (;;) {
        int ran = run_acks(p);
        if (ran || timeout_ms == 0 || p->acks_delivered == p->published_total ||
            monotonic_ms() >= deadline)
            return ran;
        struct timespec ts = {0, sleep_ns};
        nanosleep(&ts, NULL);
        if (sleep_ns < 1000000)
            sleep_ns *= 2;
    }
}

/* sb_producer_flush() of a producer with an ack callback: until every event's callback ran. */
/* One wait of a flush: -ETIMEDOUT once @deadline_ms has passed, else sleeps a step and
 * returns 0. Steps grow from 1 us to 1 ms: a flush waits for shards (and disks) that work. */
static int flush_wait(int64_t deadline_ms, long *sleep_ns)
{
    if (monotonic_ms() >= deadline_ms)
        return -ETIMEDOUT;
    struct timespec ts = {0, *sleep_ns};
    nanosleep(&ts, NULL);
    if (*sleep_ns < 1000000)
        *sleep_ns *= 2;
    return 0;
}

static int flush_with_acks(struct sb_producer *p, int timeout_ms)
{
    if (p->in_poll)
        return -EDEADLK;
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : monotonic_ms() + timeout_ms;
    long sleep_ns = 1000;
    for (;;) {
        run_acks(p);
        if (p->acks_delivered == p->published_total) {
            if (p->acks_failed > p->failed_reported) {
                p->failed_reported = p->acks_failed;
                return p->acks_last_error;
            }
            return 0;
        }
        if (flush_wait(deadline, &sleep_ns))
            return -ETIMEDOUT;
    }
}

int sb_producer_flush(struct sb_producer *p, int timeout_ms)
{
    if (!p)
        return -EINVAL;
    if (p->ack_fn)
        return flush_with_acks(p, timeout_ms);
    int64_t deadline = timeout_ms < 0 ? INT64_MAX : monotonic_ms() + timeout_ms;
    long sleep_ns = 1000;
    for (;;) {
        uint64_t acknowledged, failed;
        int last_error;
        bool settled;
        producer_settled(p, &acknowledged, &failed, &last_error, &settled);
        if (settled) {
            if (failed > p->failed_reported) {
                p->failed_reported = failed;
                return last_error ? last_error : -EIO;
            }
            return 0;
        }
        if (flush_wait(deadline, &sleep_ns))
            return -ETIMEDOUT;
    }
}

void sb_producer_get_stats(struct sb_producer *p, struct sb_producer_stats *out)
{
    bool settled;
    producer_settled(p, &out->acknowledged, &out->failed, &out->last_error, &settled);
    out->published = p->published_total;
}

void sb_producer_close(struct sb_producer *p)
{
    if (!p)
        return;
    for (unsigned i = 0; i < p->bus->shard_count; i++) {
        if (!p->links[i])
            break;
        /* seq_cst: pairs with the shard's acquire load in drain_producers() (our commits
         * happen before it) and with its park re-check; then wake it to free the link. */
        atomic_store_explicit(&p->links[i]->closed, true, memory_order_seq_cst);
        sb_parker_wake(&p->bus->shards[i]->parker);
    }
    /* Relaxed: see sb_producer_open(). */
    atomic_fetch_sub_explicit(&p->bus->open_producers, 1, memory_order_relaxed);
    if (p->ack_fn)
        sb_ack_table_destroy(&p->pending);
    free(p->links);
    free(p->published);
    free(p);
}
