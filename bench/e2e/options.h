/*
 * options.h - the command line of shardbus-bench.
 */
#ifndef BENCH_OPTIONS_H
#define BENCH_OPTIONS_H

#include <stddef.h>

enum bench_system_id {
    BENCH_SHARDBUS,
    BENCH_SHARDBUS_NATIVE,
    BENCH_NATS,
    BENCH_REDIS_PUBSUB,
    BENCH_REDIS_STREAMS,
    BENCH_EMBEDDED,
};

struct bench_options {
    enum bench_system_id system;
    const char *system_name;
    const char *client; /* the client library: librdkafka, native, libnats, hiredis */
    char host[256];
    int port;
    const char *addr; /* HOST:PORT as given */
    int producers;
    int consumers;
    int partitions;
    size_t size;
    int batch;        /* librdkafka batch.num.messages; native: records per partition batch */
    int linger_ms;    /* librdkafka linger.ms; native: the longest wait of a partial batch */
    const char *acks; /* librdkafka and native acks */
    int inflight;     /* native: Produce requests in flight per producer */
    const char *kafka_set[16]; /* KEY=VALUE librdkafka settings for every client, in order */
    int kafka_nset;
    double duration_s; /* measured, after the warm-up */
    double warmup_s;   /* sent and verified, left out of the figures */
    double rate;            /* messages per second over all producers, 0 = as fast as possible */
    double drain_timeout_s; /* after the producers stop: give up when nothing arrives this long */
    int server_pid;         /* > 0: the server process whose CPU time is measured too */
    const char *json_path;
    const char *label;
    int progress; /* 1: a progress line on stderr once a second */
    /* embedded: the bus in this process */
    int shards;           /* shard threads, 0 = one per CPU */
    const char *data_dir; /* NULL = memory only */
    int durability;       /* with data_dir: 0 none, 1 batch (the library's default), 2 interval */
    const char *durability_name;
};

/**
 * bench_options_parse - fill @o from @argc/@argv, defaults first.
 * Returns 0, 1 when --help was printed (exit 0), or -1 after printing a usage error to stderr
 * (exit 2).
 */
int bench_options_parse(struct bench_options *o, int argc, char **argv);

#endif
