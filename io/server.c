/*
 * server.c - starting and stopping the Kafka server on a bus's shards, and its metrics.
 * See server.h; the moving parts are in server_net.c, server_requests.c, server_partition.c.
 */
#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server_internal.h"

void sb_server_config_init(struct sb_server_config *cfg)
{
    memset(cfg, 0, sizeof(*cfg));
    cfg->listen_host = "127.0.0.1";
    cfg->listen_port = 9092;
    cfg->max_message_bytes = 1048588;
    cfg->max_request_bytes = 100u << 20;
    cfg->max_connections = 10000;
    cfg->auto_create_topics = true;
    cfg->default_partitions = 1;
}

int64_t sb_server_next_producer_id(struct sb_server *srv)
{
    /* Relaxed: only uniqueness matters. */
    return atomic_fetch_add_explicit(&srv->next_producer_id, 1, memory_order_relaxed);
}

static int resolve(struct sb_server *srv)
{
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    char port[8];
    snprintf(port, sizeof(port), "%u", srv->cfg.listen_port);
    int rc = getaddrinfo(srv->cfg.listen_host, port, &hints, &res);
    if (rc || !res)
        return -EADDRNOTAVAIL;
    memcpy(&srv->addr, res->ai_addr, res->ai_addrlen);
    srv->addr_len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

static void server_free(struct sb_server *srv)
{
    if (srv->shards)
        for (unsigned i = 0; i < srv->bus->shard_count; i++) {
            if (srv->shards[i])
                free(srv->shards[i]->inflate_buf);
            free(srv->shards[i]);
        }
    free(srv->shards);
    free(srv->listen_host);
    free(srv->advertised_host);
    free(srv);
}

/*
 * Stop in two phases. First every shard stops accepting and then answers and closes its
 * connections, polled until all report quiet in the same round: a shard whose connections are
 * done must keep its service, since another shard's partition operation may still be in a
 * ring on its way to it (its read completion or deferred append is handled by the service).
 * Once every shard is quiet nothing can reach any of them (operations come only from
 * connections; no shard accepts any more), and only then does each detach its service.
 */
static int stop_shards(struct sb_server *srv, unsigned started)
{
    for (unsigned i = 0; i < started; i++)
        sb_shard_call(srv->bus->shards[i], sb_server_net_stop, srv->shards[i]);
    for (int round = 0;; round++) {
        unsigned quiet = 0;
        for (unsigned i = 0; i < started; i++)
            quiet += sb_shard_call(srv->bus->shards[i], sb_server_net_finish,
                                   srv->shards[i]) == 1;
        if (quiet == started)
            break;
        if (round == 3000) { /* 30 s */
            sb_server_log(srv, SB_LOG_ERROR, "server stop: connections still busy after 30 s");
            return -ETIMEDOUT;
        }
        usleep(10000);
    }
    for (unsigned i = 0; i < started; i++) {
        int rc = sb_shard_call(srv->bus->shards[i], sb_server_net_detach, srv->shards[i]);
        if (rc) { /* cannot happen: nothing reaches a quiet shard */
            sb_server_log(srv, SB_LOG_ERROR, "server stop: shard %u busy again after quiet", i);
            return rc;
        }
    }
    return 0;
}

int sb_server_start(struct sb_bus *bus, const struct sb_server_config *cfg,
                    struct sb_server **out)
{
    if (!bus || !cfg || !out || !bus->cfg.data_dir || !cfg->listen_host ||
        cfg->default_partitions == 0 || cfg->max_connections == 0 ||
        cfg->max_message_bytes < SB_BATCH_HEADER_BYTES || cfg->max_request_bytes < 64)
        return -EINVAL;
    *out = NULL;
    struct sb_server *srv = calloc(1, sizeof(*srv));
    if (!srv)
        return -ENOMEM;
    srv->bus = bus;
    srv->cfg = *cfg;
    srv->listen_host = strdup(cfg->listen_host);
    srv->advertised_host = strdup(cfg->advertised_host ? cfg->advertised_host : cfg->listen_host);
    srv->advertised_port = cfg->advertised_port ? cfg->advertised_port : cfg->listen_port;
    srv->shards = calloc(bus->shard_count, sizeof(*srv->shards));
    if (!srv->listen_host || !srv->advertised_host || !srv->shards) {
        server_free(srv);
        return -ENOMEM;
    }
    srv->cfg.listen_host = srv->listen_host;
    srv->cfg.advertised_host = srv->advertised_host;
    /* Producer ids: microseconds since the epoch at start, then counting, so they do not
     * repeat across restarts of the same data dir. Relaxed: set before any shard uses it. */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    atomic_store_explicit(&srv->next_producer_id,
                          (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000, memory_order_relaxed);
    int rc = resolve(srv);
    if (rc) {
        server_free(srv);
        return rc;
    }
    /* Every shard binds the address with SO_REUSEPORT, which would also let another process of
     * the same user share it silently: make sure nobody listens there first. */
    int probe = socket(srv->addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    /* SO_REUSEADDR: connections of an earlier run in TIME_WAIT do not count (on Linux it still
     * refuses an address a socket listens on). */
    if (probe < 0 || setsockopt(probe, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
        bind(probe, (const struct sockaddr *)&srv->addr, srv->addr_len)) {
        rc = -errno;
        if (probe >= 0)
            close(probe);
        server_free(srv);
        return rc;
    }
    close(probe);
    unsigned started = 0;
    for (unsigned i = 0; i < bus->shard_count && !rc; i++) {
        struct sb_server_shard *ss = calloc(1, sizeof(*ss));
        if (!ss) {
            rc = -ENOMEM;
            break;
        }
        ss->srv = srv;
        ss->id = i;
        srv->shards[i] = ss;
        rc = sb_shard_call(bus->shards[i], sb_server_net_start, ss);
        if (!rc)
            started++;
    }
    if (rc) {
        stop_shards(srv, started);
        server_free(srv);
        return rc;
    }
    *out = srv;
    return 0;
}

int sb_server_stop(struct sb_server *srv)
{
    if (!srv)
        return -EINVAL;
    int rc = stop_shards(srv, srv->bus->shard_count);
    if (rc)
        return rc; /* not freed: shards still reference it */
    /* Acquire pairs with admin_thread_done()'s release (server_requests.c). */
    while (atomic_load_explicit(&srv->admin_threads, memory_order_acquire))
        usleep(1000);
    server_free(srv);
    return 0;
}

/* ------------------------------ metrics ------------------------------ */

struct text {
    char *buf;
    size_t len, cap;
    bool failed;
};

__attribute__((format(printf, 2, 3))) static void put(struct text *t, const char *fmt, ...)
{
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, t->buf ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0) {
            t->failed = true;
            return;
        }
        if (t->buf && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 16384;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) {
            t->failed = true;
            return;
        }
        t->buf = nb;
        t->cap = cap;
    }
}

static uint64_t load(_Atomic uint64_t *v)
{
    /* Relaxed: see sb_server_metrics(). */
    return atomic_load_explicit(v, memory_order_relaxed);
}

static const char *const api_names[SB_API_SLOTS] = {
    "Produce", "Fetch", "ListOffsets", "Metadata", "ApiVersions", "CreateTopics",
    "DeleteTopics", "InitProducerId", "FindCoordinator"};

static void shard_counter(struct text *t, struct sb_server *srv, const char *name,
                          const char *help, size_t offset)
{
    put(t, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
    for (unsigned i = 0; i < srv->bus->shard_count; i++)
        put(t, "%s{shard=\"%u\"} %" PRIu64 "\n", name, i,
            load((_Atomic uint64_t *)((char *)srv->shards[i] + offset)));
}

/* One histogram per shard, found at @offset inside struct sb_shard. */
static void shard_histograms(struct text *t, struct sb_server *srv, const char *name,
                             const char *help, size_t offset)
{
    put(t, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    for (unsigned i = 0; i < srv->bus->shard_count; i++) {
        struct sb_latency_histogram *h =
            (struct sb_latency_histogram *)((char *)srv->bus->shards[i] + offset);
        uint64_t cum = 0;
        for (unsigned k = 0; k <= SB_LATENCY_BUCKETS; k++) {
            cum += load(&h->buckets[k]);
            if (k < SB_LATENCY_BUCKETS)
                put(t, "%s_bucket{shard=\"%u\",le=\"%g\"} %" PRIu64 "\n", name, i,
                    (double)(1ull << k) / 1e6, cum);
            else
                put(t, "%s_bucket{shard=\"%u\",le=\"+Inf\"} %" PRIu64 "\n", name, i, cum);
        }
        put(t, "%s_sum{shard=\"%u\"} %g\n", name, i, (double)load(&h->sum_us) / 1e6);
        put(t, "%s_count{shard=\"%u\"} %" PRIu64 "\n", name, i, load(&h->count));
    }
}

int sb_server_metrics(struct sb_server *srv, char **text, size_t *len)
{
    struct text t = {0};
    struct sb_bus *bus = srv->bus;
    put(&t, "# HELP shardbus_connections_open Connections open now.\n"
            "# TYPE shardbus_connections_open gauge\nshardbus_connections_open %u\n",
        atomic_load_explicit(&srv->open_connections, memory_order_relaxed));
    shard_counter(&t, srv, "shardbus_connections_accepted_total", "Connections accepted.",
                  offsetof(struct sb_server_shard, connections_accepted));
    shard_counter(&t, srv, "shardbus_connections_refused_total",
                  "Connections refused at max_connections.",
                  offsetof(struct sb_server_shard, connections_refused));
    shard_counter(&t, srv, "shardbus_network_received_bytes_total", "Bytes received.",
                  offsetof(struct sb_server_shard, bytes_received));
    shard_counter(&t, srv, "shardbus_network_sent_bytes_total", "Bytes sent.",
                  offsetof(struct sb_server_shard, bytes_sent));
    shard_counter(&t, srv, "shardbus_protocol_errors_total",
                  "Requests refused or connections closed for bad input.",
                  offsetof(struct sb_server_shard, protocol_errors));

    put(&t, "# HELP shardbus_requests_total Requests received, by API.\n"
            "# TYPE shardbus_requests_total counter\n");
    for (int a = 0; a < SB_API_SLOTS; a++) {
        uint64_t n = 0;
        for (unsigned i = 0; i < bus->shard_count; i++)
            n += load(&srv->shards[i]->requests[a]);
        put(&t, "shardbus_requests_total{api=\"%s\"} %" PRIu64 "\n", api_names[a], n);
    }
    put(&t, "# HELP shardbus_request_latency_seconds Time from a request's arrival to its "
            "response being ready, by API.\n# TYPE shardbus_request_latency_seconds histogram\n");
    for (int a = 0; a < SB_API_SLOTS; a++) {
        uint64_t cum = 0, count = 0, sum_us = 0;
        for (unsigned k = 0; k <= SB_LATENCY_BUCKETS; k++) {
            for (unsigned i = 0; i < bus->shard_count; i++)
                cum += load(&srv->shards[i]->latency[a].buckets[k]);
            if (k < SB_LATENCY_BUCKETS)
                put(&t, "shardbus_request_latency_seconds_bucket{api=\"%s\",le=\"%g\"} %" PRIu64 "\n",
                    api_names[a], (double)(1ull << k) / 1e6, cum);
            else
                put(&t, "shardbus_request_latency_seconds_bucket{api=\"%s\",le=\"+Inf\"} %" PRIu64 "\n",
                    api_names[a], cum);
        }
        for (unsigned i = 0; i < bus->shard_count; i++) {
            count += load(&srv->shards[i]->latency[a].count);
            sum_us += load(&srv->shards[i]->latency[a].sum_us);
        }
        put(&t, "shardbus_request_latency_seconds_sum{api=\"%s\"} %g\n", api_names[a],
            (double)sum_us / 1e6);
        put(&t, "shardbus_request_latency_seconds_count{api=\"%s\"} %" PRIu64 "\n", api_names[a],
            count);
    }

    static const struct {
        const char *name, *help;
        size_t offset;
    } topic_counters[] = {
        {"shardbus_topic_events_in_total", "Events appended, by topic.",
         offsetof(struct sb_partition, events_in)},
        {"shardbus_topic_bytes_in_total", "Record batch bytes appended, by topic.",
         offsetof(struct sb_partition, bytes_in)},
        {"shardbus_topic_events_out_total", "Events served by Fetch, by topic.",
         offsetof(struct sb_partition, events_out)},
        {"shardbus_topic_bytes_out_total", "Record batch bytes served by Fetch, by topic.",
         offsetof(struct sb_partition, bytes_out)},
    };
    for (size_t c = 0; c < sizeof(topic_counters) / sizeof(topic_counters[0]); c++) {
        put(&t, "# HELP %s %s\n# TYPE %s counter\n", topic_counters[c].name,
            topic_counters[c].help, topic_counters[c].name);
        for (uint32_t id = 0; id < SB_MAX_TOPICS; id++) {
            struct sb_topic *topic = sb_topic_by_id(&bus->topics, id);
            if (!topic)
                break;
            uint64_t n = 0;
            for (uint32_t p = 0; p < topic->partition_count; p++)
                n += load((_Atomic uint64_t *)((char *)&topic->partitions[p] +
                                               topic_counters[c].offset));
            put(&t, "%s{topic=\"%s\"} %" PRIu64 "\n", topic_counters[c].name, topic->name, n);
        }
    }

    shard_histograms(&t, srv, "shardbus_log_group_commit_seconds",
                     "Group commit time, from submit to completion: the writes and, when the "
                     "durability asks for it, the syncs after them; by shard.",
                     offsetof(struct sb_shard, group_latency));
    shard_histograms(&t, srv, "shardbus_log_sync_seconds",
                     "fdatasync time of a group commit (after its writes), by shard.",
                     offsetof(struct sb_shard, writer) + offsetof(struct sb_log_writer, sync_latency));
    put(&t, "# HELP shardbus_ring_occupancy_bytes Bytes waiting in the rings into each shard "
            "from the shards.\n# TYPE shardbus_ring_occupancy_bytes gauge\n");
    for (unsigned i = 0; i < bus->shard_count; i++) {
        uint64_t bytes = 0;
        for (unsigned j = 0; j < bus->shard_count; j++)
            bytes += sb_ring_occupancy(&bus->shards[i]->from_shard[j]);
        put(&t, "shardbus_ring_occupancy_bytes{shard=\"%u\"} %" PRIu64 "\n", i, bytes);
    }
    if (t.failed) {
        free(t.buf);
        return -ENOMEM;
    }
    *text = t.buf;
    *len = t.len;
    return 0;
}
