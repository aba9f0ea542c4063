/*
 * options.c - the command line of shardbus-bench (see options.h).
 */
#define _GNU_SOURCE
#include "options.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "message.h"

static void usage(FILE *f)
{
    fprintf(
        f,
        "usage: shardbus-bench [options]\n"
        "End-to-end load generator: producers publish numbered, timestamped messages, consumers\n"
        "check every one arrives once and measure the latency. Exit 0 when all data arrived\n"
        "intact, 1 when any message was lost, duplicated or corrupt, 2 on a usage or setup error.\n"
        "\n"
        "  --system NAME        shardbus (Kafka protocol, librdkafka), shardbus-native\n"
        "                       (Kafka protocol, the bench's own client: pre-built record\n"
        "                       batches, pipelined Produce v7 and Fetch v11), nats,\n"
        "                       redis-pubsub, redis-streams, embedded (the bus inside this\n"
        "                       process through the C API: no server, no network) (shardbus)\n"
        "  --addr HOST:PORT     server address (127.0.0.1:9092)\n"
        "  --producers N        producer threads, one client each (1)\n"
        "  --consumers N        consumer threads, one client each; each receives every\n"
        "                       message (1)\n"
        "  --partitions N       partitions of the Kafka topic (1)\n"
        "  --size BYTES         message size, at least %u (100)\n"
        "  --batch N            librdkafka batch.num.messages; shardbus-native: records per\n"
        "                       partition batch, one batch per partition in each Produce (10000;\n"
        "                       native batches must stay under the server's max-message-bytes)\n"
        "  --linger-ms N        librdkafka linger.ms; shardbus-native: the longest a partial\n"
        "                       batch waits (5, librdkafka's default)\n"
        "  --acks all|1|0       librdkafka and shardbus-native acks (all, librdkafka's default)\n"
        "  --inflight N         shardbus-native: Produce requests in flight per producer (8)\n"
        "  --kafka-set K=V      any other librdkafka setting, for producers and consumers\n"
        "                       (repeatable, at most 16)\n"
        "  --duration S         seconds of sending measured, after the warm-up (10)\n"
        "  --warmup S           seconds of sending first, verified but left out of the rates\n"
        "                       and latencies (connections, metadata, first fetches) (1)\n"
        "  --rate N             messages per second over all producers, scheduled at fixed\n"
        "                       times; 0 = as fast as possible (0)\n"
        "  --drain-timeout S    after sending, wait this long without a message before\n"
        "                       calling the rest lost (10)\n"
        "  --shards N           embedded: shard threads, 0 = one per CPU (0)\n"
        "  --data-dir DIR       embedded: the durable log in DIR (an empty folder: a topic left\n"
        "                       by an earlier run is refused); memory only without it\n"
        "  --durability MODE    embedded with --data-dir: none, batch or interval (batch)\n"
        "  --server-pid PID     also measure the CPU time of the server process PID (its\n"
        "                       seconds per message beside the clients'; /proc/PID/stat)\n"
        "  --json FILE          also write the results as JSON\n"
        "  --label TEXT         a name for this run in the JSON (the system's name)\n"
        "  --quiet              no progress line\n"
        "  -h, --help           this text\n",
        BENCH_MSG_HEADER);
}

static int parse_long(const char *name, const char *s, long min, long max, long *out)
{
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < min || v > max) {
        fprintf(stderr, "shardbus-bench: %s wants an integer in %ld..%ld, not '%s'\n", name, min,
                max, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_double(const char *name, const char *s, double min, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !(v >= min)) {
        fprintf(stderr, "shardbus-bench: %s wants a number >= %g, not '%s'\n", name, min, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int parse_addr(struct bench_options *o, const char *s)
{
    const char *colon = strrchr(s, ':');
    long port;
    if (!colon || colon == s || (size_t)(colon - s) >= sizeof o->host ||
        parse_long("--addr port", colon + 1, 1, 65535, &port))
        goto bad;
    memcpy(o->host, s, (size_t)(colon - s));
    o->host[colon - s] = '\0';
    o->port = (int)port;
    o->addr = s;
    return 0;
bad:
    fprintf(stderr, "shardbus-bench: --addr wants HOST:PORT, not '%s'\n", s);
    return -1;
}

int bench_options_parse(struct bench_options *o, int argc, char **argv)
{
    static const struct option longopts[] = {
        {"system", required_argument, NULL, 's'},
        {"addr", required_argument, NULL, 'a'},
        {"producers", required_argument, NULL, 'p'},
        {"consumers", required_argument, NULL, 'c'},
        {"partitions", required_argument, NULL, 'P'},
        {"size", required_argument, NULL, 'S'},
        {"batch", required_argument, NULL, 'b'},
        {"linger-ms", required_argument, NULL, 'l'},
        {"acks", required_argument, NULL, 'k'},
        {"inflight", required_argument, NULL, 'I'},
        {"kafka-set", required_argument, NULL, 'K'},
        {"duration", required_argument, NULL, 'd'},
        {"warmup", required_argument, NULL, 'w'},
        {"rate", required_argument, NULL, 'r'},
        {"drain-timeout", required_argument, NULL, 'D'},
        {"json", required_argument, NULL, 'j'},
        {"label", required_argument, NULL, 'L'},
        {"shards", required_argument, NULL, 'N'},
        {"data-dir", required_argument, NULL, 'F'},
        {"durability", required_argument, NULL, 'U'},
        {"server-pid", required_argument, NULL, 'X'},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    o->system = BENCH_SHARDBUS;
    o->system_name = "shardbus";
    o->producers = o->consumers = o->partitions = 1;
    o->size = 100;
    o->batch = 10000;
    o->linger_ms = 5;
    o->acks = "all";
    o->inflight = 8;
    o->duration_s = 10;
    o->warmup_s = 1;
    o->drain_timeout_s = 10;
    o->progress = 1;
    o->durability = 1;
    o->durability_name = "batch";
    int durability_given = 0;
    const char *addr = "127.0.0.1:9092";
    long v;
    int opt;
    while ((opt = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (opt) {
        case 's':
            if (!strcmp(optarg, "shardbus"))
                o->system = BENCH_SHARDBUS;
            else if (!strcmp(optarg, "shardbus-native"))
                o->system = BENCH_SHARDBUS_NATIVE;
            else if (!strcmp(optarg, "nats"))
                o->system = BENCH_NATS;
            else if (!strcmp(optarg, "redis-pubsub"))
                o->system = BENCH_REDIS_PUBSUB;
            else if (!strcmp(optarg, "redis-streams"))
                o->system = BENCH_REDIS_STREAMS;
            else if (!strcmp(optarg, "embedded"))
                o->system = BENCH_EMBEDDED;
            else {
                fprintf(stderr, "shardbus-bench: unknown --system '%s'\n", optarg);
                return -1;
            }
            o->system_name = optarg;
            break;
        case 'a': addr = optarg; break;
        case 'p':
            if (parse_long("--producers", optarg, 1, 1024, &v))
                return -1;
            o->producers = (int)v;
            break;
        case 'c':
            if (parse_long("--consumers", optarg, 1, 1024, &v))
                return -1;
            o->consumers = (int)v;
            break;
        case 'P':
            if (parse_long("--partitions", optarg, 1, 100000, &v))
                return -1;
            o->partitions = (int)v;
            break;
        case 'S':
            if (parse_long("--size", optarg, BENCH_MSG_HEADER, 100 << 20, &v))
                return -1;
            o->size = (size_t)v;
            break;
        case 'b':
            if (parse_long("--batch", optarg, 1, 1000000, &v))
                return -1;
            o->batch = (int)v;
            break;
        case 'l':
            if (parse_long("--linger-ms", optarg, 0, 900000, &v))
                return -1;
            o->linger_ms = (int)v;
            break;
        case 'k':
            if (strcmp(optarg, "all") && strcmp(optarg, "1") && strcmp(optarg, "0") &&
                strcmp(optarg, "-1")) {
                fprintf(stderr, "shardbus-bench: --acks wants all, 1 or 0\n");
                return -1;
            }
            o->acks = optarg;
            break;
        case 'I':
            if (parse_long("--inflight", optarg, 1, 1024, &v))
                return -1;
            o->inflight = (int)v;
            break;
        case 'K':
            if (!strchr(optarg, '=') || o->kafka_nset == 16) {
                fprintf(stderr, "shardbus-bench: --kafka-set wants KEY=VALUE, at most 16 times\n");
                return -1;
            }
            o->kafka_set[o->kafka_nset++] = optarg;
            break;
        case 'd':
            if (parse_double("--duration", optarg, 0.01, &o->duration_s))
                return -1;
            break;
        case 'w':
            if (parse_double("--warmup", optarg, 0, &o->warmup_s))
                return -1;
            break;
        case 'r':
            if (parse_double("--rate", optarg, 0, &o->rate))
                return -1;
            break;
        case 'D':
            if (parse_double("--drain-timeout", optarg, 0.1, &o->drain_timeout_s))
                return -1;
            break;
        case 'N':
            if (parse_long("--shards", optarg, 0, 1024, &v))
                return -1;
            o->shards = (int)v;
            break;
        case 'F': o->data_dir = optarg; break;
        case 'X':
            if (parse_long("--server-pid", optarg, 1, 0x7fffffff, &v))
                return -1;
            o->server_pid = (int)v;
            break;
        case 'U':
            if (!strcmp(optarg, "none"))
                o->durability = 0;
            else if (!strcmp(optarg, "batch"))
                o->durability = 1;
            else if (!strcmp(optarg, "interval"))
                o->durability = 2;
            else {
                fprintf(stderr, "shardbus-bench: --durability wants none, batch or interval\n");
                return -1;
            }
            o->durability_name = optarg;
            durability_given = 1;
            break;
        case 'j': o->json_path = optarg; break;
        case 'L': o->label = optarg; break;
        case 'q': o->progress = 0; break;
        case 'h': usage(stdout); return 1;
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "shardbus-bench: unexpected argument '%s'\n", argv[optind]);
        return -1;
    }
    if (parse_addr(o, addr))
        return -1;
    if (!o->label)
        o->label = o->system_name;
    if (o->system != BENCH_EMBEDDED && (o->data_dir || o->shards || durability_given)) {
        fprintf(stderr, "shardbus-bench: --shards, --data-dir and --durability are for --system "
                        "embedded only\n");
        return -1;
    }
    if (durability_given && !o->data_dir) {
        fprintf(stderr, "shardbus-bench: --durability needs --data-dir (a memory-only bus has no "
                        "log)\n");
        return -1;
    }
    switch (o->system) {
    case BENCH_SHARDBUS: o->client = "librdkafka"; break;
    case BENCH_SHARDBUS_NATIVE: o->client = "native"; break;
    case BENCH_NATS: o->client = "libnats"; break;
    case BENCH_REDIS_PUBSUB:
    case BENCH_REDIS_STREAMS: o->client = "hiredis"; break;
    case BENCH_EMBEDDED:
        o->client = "C API";
        o->addr = "in-process";
        break;
    }
    return 0;
}
