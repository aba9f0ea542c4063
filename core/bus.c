/*
 * bus.c - opening and closing a bus, and its topics.
 */
#include "bus.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "data_dir.h"
#include "report.h"
#include "shard_log.h"

#define DEFAULT_RING_BYTES (1u << 20)
#define DEFAULT_PARTITION_MEMORY_BYTES (1u << 20)
#define DEFAULT_IDLE_SPIN_US 50u
#define DEFAULT_FSYNC_INTERVAL_MS 100u
#define DEFAULT_SEGMENT_BYTES (64u << 20)
#define DEFAULT_WRITE_BUFFER_BYTES (16u << 20)

void sb_config_init(struct sb_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->ring_bytes = DEFAULT_RING_BYTES;
    cfg->partition_memory_bytes = DEFAULT_PARTITION_MEMORY_BYTES;
    cfg->max_event_bytes = 0; /* 0 = the maximum the ring and partition sizes allow */
    cfg->idle_spin_us = DEFAULT_IDLE_SPIN_US;
    cfg->durability = SB_DURABILITY_BATCH;
    cfg->fsync_interval_ms = DEFAULT_FSYNC_INTERVAL_MS;
    cfg->segment_bytes = DEFAULT_SEGMENT_BYTES;
    cfg->retention_bytes = -1;
    cfg->retention_ms = -1;
    cfg->write_buffer_bytes = DEFAULT_WRITE_BUFFER_BYTES;
    cfg->direct_io = -1;
}

const char *sb_version_string(void)
{
#define SB_STR2(x) #x
#define SB_STR(x) SB_STR2(x)
    return SB_STR(SB_VERSION_MAJOR) "." SB_STR(SB_VERSION_MINOR) "." SB_STR(SB_VERSION_PATCH);
}

void *sb_ring_alloc(uint64_t capacity, size_t *bytes)
{
    size_t n = sb_ring_memory_size(capacity);
    n = (n + SB_CACHE_GUARD - 1) / SB_CACHE_GUARD * SB_CACHE_GUARD;
    void *mem = aligned_alloc(SB_CACHE_GUARD, n);
    if (!mem)
        return NULL;
    if (sb_ring_format(mem, n, capacity)) {
        free(mem);
        return NULL;
    }
    *bytes = n;
    return mem;
}

static void sleep_us(long us)
{
    struct timespec ts = {0, us * 1000};
    nanosleep(&ts, NULL);
}

static uint64_t round_up_pow2(uint64_t v)
{
    uint64_t p = 1;
    while (p < v)
        p <<= 1;
    return p;
}

/* Resolve defaults and check ranges; fills bus->cfg, cpus and the derived sizes. */
static int bus_configure(struct sb_bus *bus, const struct sb_config *cfg)
{
    cpu_set_t allowed;
    if (sched_getaffinity(0, sizeof(allowed), &allowed))
        return -errno;
    int allowed_count = CPU_COUNT(&allowed);
    bus->allowed_cpus = allowed;
    bus->cfg = *cfg;
    bus->shard_count = cfg->shards ? cfg->shards : (unsigned)allowed_count;
    if (bus->shard_count == 0 || bus->shard_count > 1024)
        return -EINVAL;
    if (cfg->data_dir &&
        (!cfg->data_dir[0] || cfg->durability > SB_DURABILITY_INTERVAL ||
         (cfg->durability == SB_DURABILITY_INTERVAL && cfg->fsync_interval_ms == 0) ||
         cfg->segment_bytes < 4096 || cfg->write_buffer_bytes < (1u << 16) ||
         (cfg->write_buffer_bytes & (cfg->write_buffer_bytes - 1)) ||
         cfg->write_buffer_bytes > ((size_t)1 << 31)))
        return -EINVAL;
    if (cfg->ring_bytes < SB_RING_MIN_CAPACITY || (cfg->ring_bytes & (cfg->ring_bytes - 1)) ||
        cfg->ring_bytes > SB_RING_MAX_CAPACITY)
        return -EINVAL;
    if (cfg->partition_memory_bytes < SB_RING_MIN_CAPACITY ||
        cfg->partition_memory_bytes > SB_RING_MAX_CAPACITY)
        return -EINVAL;
    bus->ring_capacity = cfg->ring_bytes;
    bus->partition_capacity = round_up_pow2(cfg->partition_memory_bytes);
    size_t limit = bus->ring_capacity / 4;
    if (bus->partition_capacity / 4 < limit)
        limit = bus->partition_capacity / 4;
    /* A record always fits a group's third of the write buffer (shard_log.c). */
    if (cfg->data_dir && cfg->write_buffer_bytes / 8 < limit)
        limit = cfg->write_buffer_bytes / 8;
    if (cfg->max_event_bytes > limit)
        return -EINVAL;
    bus->max_event_bytes = cfg->max_event_bytes ? cfg->max_event_bytes : limit;
    bus->cfg.max_event_bytes = bus->max_event_bytes;

    bus->cpus = calloc(bus->shard_count, sizeof(int));
    if (!bus->cpus)
        return -ENOMEM;
    int allowed_list[CPU_SETSIZE];
    int n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < allowed_count; c++)
        if (CPU_ISSET(c, &allowed))
            allowed_list[n++] = c;
    for (unsigned i = 0; i < bus->shard_count; i++) {
        int cpu = cfg->cpus ? cfg->cpus[i] : allowed_list[i % (unsigned)n];
        if (cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed))
            return -EINVAL;
        bus->cpus[i] = cpu;
    }
    bus->cfg.cpus = bus->cpus;
    bus->cfg.shards = bus->shard_count;
    return 0;
}

static void shard_free(struct sb_shard *s)
{
    if (!s)
        return;
    /* Links still attached belong to producers that were never closed (only possible when
     * sb_bus_open failed half way, or after sb_bus_close drained them all). */
    for (uint32_t i = 0; i < s->link_count; i++) {
        free(s->links[i]->ring_mem);
        free(s->links[i]);
    }
    free(s->links);
    if (s->to_shard) {
        for (unsigned t = 0; t < s->shard_count; t++) {
            struct sb_overflow_node *node = s->to_shard[t].overflow_head;
            while (node) {
                struct sb_overflow_node *next = node->next;
                free(node);
                node = next;
            }
        }
    }
    free(s->to_shard);
    free(s->from_shard);
    free(s->from_shard_blocked);
    free(s->subs);
    sb_shard_log_destroy(s);
    if (s->parker.eventfd >= 0)
        close(s->parker.eventfd);
    pthread_mutex_destroy(&s->control_lock);
    free(s);
}

static void bus_free(struct sb_bus *bus)
{
    if (bus->shards)
        for (unsigned i = 0; i < bus->shard_count; i++)
            shard_free(bus->shards[i]);
    if (bus->shard_ring_mem)
        for (unsigned i = 0; i < bus->shard_count * bus->shard_count; i++)
            free(bus->shard_ring_mem[i]);
    free(bus->shard_ring_mem);
    free(bus->shards);
    sb_topic_table_destroy(&bus->topics);
    if (bus->lock_fd >= 0)
        close(bus->lock_fd);
    free(bus->cpus);
    free(bus);
}

static int shard_new(struct sb_bus *bus, unsigned id, struct sb_shard **out)
{
    struct sb_shard *s = aligned_alloc(SB_CACHE_GUARD, sizeof(*s));
    if (!s)
        return -ENOMEM;
    memset(s, 0, sizeof(*s));
    s->bus = bus;
    s->id = id;
    s->shard_count = bus->shard_count;
    s->cpu = bus->cpus[id];
    atomic_init(&s->parker.parked, 0);
    s->parker.eventfd = -1;
    atomic_init(&s->control_pending, 0);
    atomic_init(&s->exit_requested, false);
    atomic_init(&s->counters.derived_sent, 0);
    atomic_init(&s->counters.derived_received, 0);
    atomic_init(&s->counters.producer_links, 0);
    atomic_init(&s->started, 0);
    pthread_mutex_init(&s->control_lock, NULL);
    *out = s; /* freed by bus_free() from here on */
    s->durable = bus->cfg.data_dir != NULL;
    if (s->durable) {
        /* A shard with log writes in flight sleeps in io_uring: wakers reach it here. */
        s->parker.eventfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (s->parker.eventfd < 0)
            return -errno;
    }
    s->from_shard = calloc(bus->shard_count, sizeof(*s->from_shard));
    s->from_shard_blocked = calloc(bus->shard_count, sizeof(bool));
    s->to_shard = calloc(bus->shard_count, sizeof(*s->to_shard));
    if (!s->from_shard || !s->from_shard_blocked || !s->to_shard)
        return -ENOMEM;
    return 0;
}

/* The shard -> shard rings, every pair including a shard to itself. */
static int bus_wire_shards(struct sb_bus *bus)
{
    unsigned n = bus->shard_count;
    bus->shard_ring_mem = calloc((size_t)n * n, sizeof(void *));
    if (!bus->shard_ring_mem)
        return -ENOMEM;
    for (unsigned from = 0; from < n; from++) {
        for (unsigned to = 0; to < n; to++) {
            size_t bytes;
            void *mem = sb_ring_alloc(bus->ring_capacity, &bytes);
            if (!mem)
                return -ENOMEM;
            bus->shard_ring_mem[from * n + to] = mem;
            int rc = sb_ring_producer_attach(&bus->shards[from]->to_shard[to].w, mem, bytes);
            if (!rc)
                rc = sb_ring_consumer_attach(&bus->shards[to]->from_shard[from], mem, bytes);
            if (rc)
                return rc;
        }
    }
    return 0;
}

static int bus_start_shards(struct sb_bus *bus, unsigned *started)
{
    for (unsigned i = 0; i < bus->shard_count; i++) {
        struct sb_shard *s = bus->shards[i];
        pthread_attr_t attr;
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(s->cpu, &set);
        pthread_attr_init(&attr);
        int rc = pthread_attr_setaffinity_np(&attr, sizeof(set), &set);
        if (!rc)
            rc = pthread_create(&s->thread, &attr, sb_shard_main, s);
        pthread_attr_destroy(&attr);
        if (rc)
            return -rc;
        *started = i + 1;
        /* Acquire pairs with the shard's release store once its set-up (io_uring) is done. */
        while (!atomic_load_explicit(&s->started, memory_order_acquire))
            sleep_us(50);
        if (s->start_result)
            return s->start_result;
        char name[16];
        snprintf(name, sizeof(name), "sb-shard-%u", i % 1000u);
        pthread_setname_np(s->thread, name);
    }
    return 0;
}

static void bus_stop_shards(struct sb_bus *bus, unsigned started)
{
    for (unsigned i = 0; i < started; i++)
        sb_shard_request_exit(bus->shards[i]);
    for (unsigned i = 0; i < started; i++)
        pthread_join(bus->shards[i]->thread, NULL);
}

int sb_bus_open(const struct sb_config *cfg, struct sb_bus **out)
{
    if (!cfg || !out)
        return -EINVAL;
    struct sb_bus *bus = calloc(1, sizeof(*bus));
    if (!bus)
        return -ENOMEM;
    atomic_init(&bus->open_producers, 0);
    atomic_init(&bus->open_consumers, 0);
    bus->lock_fd = -1;
    int rc = sb_topic_table_init(&bus->topics);
    if (rc) {
        free(bus);
        return rc;
    }
    unsigned started = 0;
    rc = bus_configure(bus, cfg);
    /* Before any shard or producer exists. Without membarrier producers keep the seq_cst
     * wake-up protocol (park.h). */
    bus->light_wakeups = !cfg->full_barrier_wakeups && sb_parker_asymmetric_setup() == 0;
    bus->topics.shard_count = bus->shard_count ? bus->shard_count : 1; /* before any topic */
    if (!rc) {
        bus->shards = calloc(bus->shard_count, sizeof(*bus->shards));
        if (!bus->shards)
            rc = -ENOMEM;
    }
    if (!rc && bus->cfg.data_dir)
        rc = sb_data_dir_open(bus);
    for (unsigned i = 0; !rc && i < bus->shard_count; i++)
        rc = shard_new(bus, i, &bus->shards[i]);
    if (!rc)
        rc = bus_wire_shards(bus);
    if (!rc)
        rc = bus_start_shards(bus, &started);
    if (rc) {
        bus_stop_shards(bus, started);
        bus_free(bus);
        return rc;
    }
    *out = bus;
    return 0;
}

unsigned sb_bus_shards(const struct sb_bus *bus)
{
    return bus->shard_count;
}

/*
 * Wait until every derived event is appended and nothing more will be derived: Mattern's
 * four-counter method. Read every shard's received count (wave 1), then every shard's sent
 * count (wave 2). Counts only grow, a receipt is counted after its handlers made their sends,
 * and no producer is left, so received(wave 1) == sent(wave 2) means that at the end of wave 1
 * every event ever sent had been fully handled: the bus is quiet for good.
 */
static void bus_wait_quiet(struct sb_bus *bus)
{
    for (;;) {
        bool links_left = false;
        for (unsigned i = 0; i < bus->shard_count; i++)
            /* Acquire pairs with the release store in the shard's drain_producers(). */
            if (atomic_load_explicit(&bus->shards[i]->counters.producer_links,
                                     memory_order_acquire))
                links_left = true;
        if (!links_left) {
            uint64_t received = 0, sent = 0;
            for (unsigned i = 0; i < bus->shard_count; i++)
                /* Acquire pairs with publish_counters()' release stores. */
                received += atomic_load_explicit(&bus->shards[i]->counters.derived_received,
                                                 memory_order_acquire);
            for (unsigned i = 0; i < bus->shard_count; i++)
                sent += atomic_load_explicit(&bus->shards[i]->counters.derived_sent,
                                             memory_order_acquire);
            if (received == sent)
                return;
        }
        sleep_us(200);
    }
}

int sb_bus_close(struct sb_bus *bus)
{
    if (!bus)
        return -EINVAL;
    if (sb_current_shard())
        return -EDEADLK;
    /* Relaxed: a count; the caller closed its producers and consumers before calling us. */
    if (atomic_load_explicit(&bus->open_producers, memory_order_relaxed) ||
        atomic_load_explicit(&bus->open_consumers, memory_order_relaxed))
        return -EBUSY;
    bus_wait_quiet(bus);
    bus_stop_shards(bus, bus->shard_count);
    if (bus->cfg.data_dir)
        sb_data_dir_close(bus);
    bus_free(bus);
    return 0;
}

void sb_topic_config_init(const struct sb_bus *bus, struct sb_topic_config *cfg)
{
    cfg->retention_bytes = bus->cfg.retention_bytes;
    cfg->retention_ms = bus->cfg.retention_ms;
}

int sb_topic_create_with(struct sb_bus *bus, const char *name, unsigned partitions,
                         const struct sb_topic_config *cfg)
{
    if (!bus || !cfg)
        return -EINVAL;
    /* A shard thread never waits for the lock: sb_topic_delete() holds it while it waits
     * for every shard. */
    bool nowait = sb_current_shard() != NULL;
    return sb_topic_table_add_prepared(&bus->topics, name, partitions, nowait, cfg,
                                       bus->cfg.data_dir ? sb_data_dir_prepare_topic : NULL,
                                       bus, NULL);
}

int sb_topic_create(struct sb_bus *bus, const char *name, unsigned partitions)
{
    if (!bus)
        return -EINVAL;
    struct sb_topic_config cfg;
    sb_topic_config_init(bus, &cfg);
    return sb_topic_create_with(bus, name, partitions, &cfg);
}

/* Control request: -EBUSY when a consumer or a handler uses a partition of the topic here. */
static int topic_check_unused(struct sb_shard *s, void *arg)
{
    struct sb_topic *topic = arg;
    for (uint32_t p = 0; p < topic->partition_count; p++) {
        const struct sb_partition *part = &topic->partitions[p];
        if (sb_partition_owner(topic, p, s->shard_count) == s->id &&
            (part->cursor_count || part->handler_count))
            return -EBUSY;
    }
    return 0;
}

/* Control request: write out what the shard holds of the (deleted) topic, close its
 * partitions' logs and rename their folders out of the way (sb_data_dir_commit_delete()
 * removes them once the topics file no longer lists the topic), and free their memory
 * windows (nothing reads them any more: no consumer or handler, and events still arriving for
 * the topic are dropped before they reach the partition). Returns the first error. */
static int topic_retire(struct sb_shard *s, void *arg)
{
    struct sb_topic *topic = arg;
    int rc = 0;
    for (uint32_t p = 0; p < topic->partition_count; p++) {
        struct sb_partition *part = &topic->partitions[p];
        if (sb_partition_owner(topic, p, s->shard_count) != s->id)
            continue;
        if (part->plog) {
            sb_shard_log_retire_partition(s, part);
            int r = sb_data_dir_retire_partition(s->bus, part->plog);
            part->plog = NULL;
            if (r && !rc)
                rc = r;
        }
        if (part->log_ready) {
            sb_memlog_destroy(&part->log);
            part->log_ready = false;
        }
    }
    return rc;
}

int sb_topic_delete(struct sb_bus *bus, const char *name)
{
    if (!bus || !name)
        return -EINVAL;
    if (sb_current_shard())
        return -EDEADLK;
    struct sb_topic_table *t = &bus->topics;
    pthread_mutex_lock(&t->lock);
    struct sb_topic *topic = sb_topic_find(t, name);
    int rc = topic ? 0 : -ENOENT;
    /* No new subscription or handler from here (their control requests check the flag); each
     * shard then says whether one exists. Release pairs with sb_topic_is_closing(). */
    if (topic)
        atomic_store_explicit(&topic->deleting, true, memory_order_release);
    for (unsigned i = 0; i < bus->shard_count && !rc; i++)
        rc = sb_shard_call(bus->shards[i], topic_check_unused, topic);
    if (!rc)
        rc = sb_topic_table_remove_locked(t, topic);
    if (rc && topic) /* refused: the topic goes on as before */
        atomic_store_explicit(&topic->deleting, false, memory_order_release);
    /* From here the topic is deleted: the shards drop what still comes for it. */
    for (unsigned i = 0; i < bus->shard_count && !rc; i++) {
        int r = sb_shard_call(bus->shards[i], topic_retire, topic);
        if (r)
            sb_report(bus->cfg.log_fn, bus->cfg.log_ctx, SB_LOG_WARN,
                      "topic %s deleted, but its files on shard %u: %s", name, i, strerror(-r));
    }
    /* The commit point on disk: the topics file without the topic (then the folders go). */
    if (!rc && bus->cfg.data_dir)
        rc = sb_data_dir_commit_delete(bus, topic);
    pthread_mutex_unlock(&t->lock);
    return rc;
}

int sb_topic_partitions(struct sb_bus *bus, const char *name)
{
    if (!bus || !name)
        return -EINVAL;
    struct sb_topic *topic = sb_topic_find(&bus->topics, name);
    return topic ? (int)topic->partition_count : -ENOENT;
}

int sb_topic_list(struct sb_bus *bus, struct sb_topic_info *out, int max)
{
    if (!bus || max < 0 || (max > 0 && !out))
        return -EINVAL;
    int n = 0;
    for (uint32_t id = 0; id < SB_MAX_TOPICS; id++) {
        const struct sb_topic *t = sb_topic_by_id(&bus->topics, id);
        if (!t)
            break; /* ids are handed out in order, never reused */
        if (sb_topic_is_deleted(t))
            continue;
        if (n < max)
            out[n] = (struct sb_topic_info){t->name, t->partition_count, t->cfg};
        n++;
    }
    return n;
}
