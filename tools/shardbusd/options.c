/*
 * options.c - shardbusd's flags and config file; see options.h.
 *
 * One table describes every setting: its flag, its config-file key (the flag without dashes),
 * its argument and its help line. A setting's value goes through one function, apply(), whether
 * it comes from the file or from a flag, so both accept exactly the same values.
 */
#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <sched.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

enum opt_id {
    OPT_LISTEN = 1,
    OPT_ADVERTISED,
    OPT_DATA_DIR,
    OPT_METRICS_LISTEN,
    OPT_SHARDS,
    OPT_CPUS,
    OPT_DURABILITY,
    OPT_FSYNC_INTERVAL_MS,
    OPT_SEGMENT_BYTES,
    OPT_IDLE_SPIN_US,
    OPT_DIRECT_IO,
    OPT_RETENTION_BYTES,
    OPT_RETENTION_MS,
    OPT_AUTO_CREATE_TOPICS,
    OPT_DEFAULT_PARTITIONS,
    OPT_MAX_MESSAGE_BYTES,
    OPT_MAX_REQUEST_BYTES,
    OPT_MAX_CONNECTIONS,
    /* Flags only (not config-file keys). */
    OPT_CONFIG,
    OPT_CHECK_CONFIG,
    OPT_HELP = 'h',
    OPT_VERSION = 'V',
};

struct setting {
    const char *name; /* flag without "--", and config-file key */
    enum opt_id id;
    const char *arg; /* NULL: a flag without a value (not a file key) */
    const char *help;
};

/* The largest Kafka batch or segment: Kafka's sizes and index positions are int32. */
#define KAFKA_INT32_MAX 2147483647u

static const struct setting settings[] = {
    {"listen", OPT_LISTEN, "HOST:PORT",
     "Kafka listener, IPv6 as [ADDR]:PORT (127.0.0.1:9092)"},
    {"advertised", OPT_ADVERTISED, "HOST:PORT",
     "address given to clients (default: --listen)"},
    {"data-dir", OPT_DATA_DIR, "DIR", "folder of the durable log (./data)"},
    {"metrics-listen", OPT_METRICS_LISTEN, "HOST:PORT",
     "/metrics and /healthz, or off (127.0.0.1:9644)"},
    {"shards", OPT_SHARDS, "N", "shard threads, 0 = one per CPU (0)"},
    {"cpus", OPT_CPUS, "LIST",
     "CPUs of the shards, e.g. 0,1 or 2-5 (all allowed)"},
    {"durability", OPT_DURABILITY, "MODE",
     "none, batch or interval (batch)"},
    {"fsync-interval-ms", OPT_FSYNC_INTERVAL_MS, "N",
     "sync period of durability interval (100)"},
    {"segment-bytes", OPT_SEGMENT_BYTES, "N",
     "roll to a new segment at this size (67108864)"},
    {"idle-spin-us", OPT_IDLE_SPIN_US, "N",
     "how long an idle shard spins before it sleeps; raise it when each shard has a core of "
     "its own and latency matters more than CPU, keep 0 when shards share cores with clients "
     "(0)"},
    {"direct-io", OPT_DIRECT_IO, "MODE",
     "write the log with O_DIRECT: on, off, or auto = on under batch and interval, off under "
     "none (auto)"},
    {"retention-bytes", OPT_RETENTION_BYTES, "N",
     "bytes kept per partition, -1 = no limit (-1)"},
    {"retention-ms", OPT_RETENTION_MS, "N",
     "age of events kept, -1 = no limit (-1)"},
    {"auto-create-topics", OPT_AUTO_CREATE_TOPICS, "BOOL",
     "create topics on first use: true|false (true)"},
    {"default-partitions", OPT_DEFAULT_PARTITIONS, "N",
     "partitions of a topic created on first use (1)"},
    {"max-message-bytes", OPT_MAX_MESSAGE_BYTES, "N",
     "largest record batch accepted (1048588)"},
    {"max-request-bytes", OPT_MAX_REQUEST_BYTES, "N",
     "largest request frame (104857600)"},
    {"max-connections", OPT_MAX_CONNECTIONS, "N", "connections open at once (10000)"},
    {"config", OPT_CONFIG, "FILE", "read settings from an ini file; flags win"},
    {"check-config", OPT_CHECK_CONFIG, NULL, "print the effective settings, exit"},
    {"help", OPT_HELP, NULL, "this text"},
    {"version", OPT_VERSION, NULL, "print the version, exit"},
};
#define SETTING_COUNT (sizeof(settings) / sizeof(settings[0]))

static const struct setting *setting_by_id(int id)
{
    for (size_t i = 0; i < SETTING_COUNT; i++)
        if ((int)settings[i].id == id)
            return &settings[i];
    return NULL;
}

/* Config-file keys: every setting with a value except --config itself. */
static const struct setting *setting_by_key(const char *key)
{
    for (size_t i = 0; i < SETTING_COUNT; i++)
        if (settings[i].arg && settings[i].id != OPT_CONFIG && !strcmp(settings[i].name, key))
            return &settings[i];
    return NULL;
}

void sbd_options_usage(FILE *out)
{
    fprintf(out, "usage: shardbusd [options]\n"
                 "The shardbus server: the Kafka wire protocol on a bus of pinned shards, with a\n"
                 "durable log. SIGTERM or SIGINT stops it cleanly.\n\n");
    for (size_t i = 0; i < SETTING_COUNT; i++) {
        char left[64];
        const struct setting *s = &settings[i];
        if (s->id == OPT_HELP || s->id == OPT_VERSION)
            snprintf(left, sizeof(left), "-%c, --%s", (char)s->id, s->name);
        else if (s->arg)
            snprintf(left, sizeof(left), "    --%s %s", s->name, s->arg);
        else
            snprintf(left, sizeof(left), "    --%s", s->name);
        fprintf(out, "  %-30s %s\n", left, s->help);
    }
    fprintf(out, "\nEvery setting with a value is also a 'key = value' line of the config file\n"
                 "(the flag without dashes), in a [shardbusd] section or before any section.\n"
                 "Exit status: 0 ok, 1 startup or runtime error, 2 usage or config error.\n");
}

const char *sbd_durability_name(enum sb_durability durability)
{
    switch (durability) {
    case SB_DURABILITY_NONE:
        return "none";
    case SB_DURABILITY_BATCH:
        return "batch";
    case SB_DURABILITY_INTERVAL:
        return "interval";
    }
    return "?";
}

const char *sbd_format_hostport(char *buf, size_t size, const char *host, unsigned port)
{
    if (strchr(host, ':'))
        snprintf(buf, size, "[%s]:%u", host, port);
    else
        snprintf(buf, size, "%s:%u", host, port);
    return buf;
}

/* --- values --- */

__attribute__((format(printf, 3, 4))) static int fail(char *why, size_t whylen, const char *fmt,
                                                      ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
    return -EINVAL;
}

/* A decimal integer from min to max (no sign unless min < 0, no spaces, nothing after). */
static int parse_int(const char *text, int64_t min, int64_t max, int64_t *out)
{
    const char *p = text;
    if (*p == '-' && min < 0)
        p++;
    if (*p < '0' || *p > '9')
        return -EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (*end || errno || v < min || v > max)
        return -EINVAL;
    *out = v;
    return 0;
}

static int apply_int(const char *value, int64_t min, int64_t max, int64_t *out, char *why,
                     size_t whylen)
{
    if (parse_int(value, min, max, out))
        return fail(why, whylen, "expected an integer from %" PRId64 " to %" PRId64, min, max);
    return 0;
}

/* HOST:PORT or [IPV6]:PORT; port 0 only when allow_zero. */
static int parse_hostport(const char *value, char *host, size_t hostsize, uint16_t *port,
                          bool allow_zero, char *why, size_t whylen)
{
    const char *h = value, *colon;
    size_t hlen;
    if (*value == '[') {
        const char *close = strchr(value, ']');
        if (!close || close[1] != ':')
            return fail(why, whylen, "expected [IPV6]:PORT");
        h = value + 1;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(value, ':');
        if (!colon)
            return fail(why, whylen, "expected HOST:PORT");
        if (memchr(value, ':', (size_t)(colon - value)))
            return fail(why, whylen, "an IPv6 address goes in brackets: [ADDR]:PORT");
        hlen = (size_t)(colon - value);
    }
    if (hlen == 0)
        return fail(why, whylen, "expected HOST:PORT with a host");
    if (hlen >= hostsize)
        return fail(why, whylen, "host longer than %zu characters", hostsize - 1);
    int64_t p;
    if (parse_int(colon + 1, allow_zero ? 0 : 1, 65535, &p))
        return fail(why, whylen, "expected a port from %d to 65535", allow_zero ? 0 : 1);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    *port = (uint16_t)p;
    return 0;
}

/* "0,1", "2-5,8": into o->cpu_list. */
static int parse_cpus(struct sbd_options *o, const char *value, char *why, size_t whylen)
{
    unsigned n = 0;
    const char *p = value;
    for (;;) {
        char *end;
        if (*p < '0' || *p > '9')
            return fail(why, whylen, "expected CPU numbers or ranges, e.g. 0,1 or 2-5");
        errno = 0;
        unsigned long first = strtoul(p, &end, 10), last = first;
        if (*end == '-') {
            p = end + 1;
            if (*p < '0' || *p > '9')
                return fail(why, whylen, "expected CPU numbers or ranges, e.g. 0,1 or 2-5");
            last = strtoul(p, &end, 10);
        }
        if (errno || first >= CPU_SETSIZE || last >= CPU_SETSIZE || last < first)
            return fail(why, whylen, "CPU numbers go from 0 to %d, ranges upwards",
                        CPU_SETSIZE - 1);
        for (unsigned long c = first; c <= last; c++) {
            if (n == SBD_CPUS_MAX)
                return fail(why, whylen, "more than %d CPUs", SBD_CPUS_MAX);
            o->cpu_list[n++] = (int)c;
        }
        if (*end == '\0')
            break;
        if (*end != ',')
            return fail(why, whylen, "expected CPU numbers or ranges, e.g. 0,1 or 2-5");
        p = end + 1;
    }
    o->cpu_count = n;
    return 0;
}

static int copy_string(char *dst, size_t size, const char *value, char *why, size_t whylen)
{
    size_t len = strlen(value);
    if (len == 0)
        return fail(why, whylen, "expected a non-empty value");
    if (len >= size)
        return fail(why, whylen, "longer than %zu characters", size - 1);
    memcpy(dst, value, len + 1);
    return 0;
}

/* Set one setting from its text. Returns 0, or -EINVAL with what was expected in @why. */
static int apply(struct sbd_options *o, enum opt_id id, const char *value, char *why,
                 size_t whylen)
{
    int64_t v;
    int rc;
    switch (id) {
    case OPT_LISTEN:
        return parse_hostport(value, o->listen_host, sizeof(o->listen_host),
                              &o->server.listen_port, false, why, whylen);
    case OPT_ADVERTISED:
        rc = parse_hostport(value, o->advertised_host, sizeof(o->advertised_host),
                            &o->server.advertised_port, false, why, whylen);
        if (!rc)
            o->server.advertised_host = o->advertised_host;
        return rc;
    case OPT_DATA_DIR:
        return copy_string(o->data_dir, sizeof(o->data_dir), value, why, whylen);
    case OPT_METRICS_LISTEN:
        if (!strcmp(value, "off")) {
            o->metrics_enabled = false;
            return 0;
        }
        rc = parse_hostport(value, o->metrics_host, sizeof(o->metrics_host), &o->metrics_port,
                            true, why, whylen);
        if (!rc)
            o->metrics_enabled = true;
        else if (strlen(why) + 10 < whylen)
            strcat(why, " or off");
        return rc;
    case OPT_SHARDS:
        if ((rc = apply_int(value, 0, SBD_CPUS_MAX, &v, why, whylen)))
            return rc;
        o->bus.shards = (unsigned)v;
        return 0;
    case OPT_CPUS:
        return parse_cpus(o, value, why, whylen);
    case OPT_DURABILITY:
        if (!strcmp(value, "none"))
            o->bus.durability = SB_DURABILITY_NONE;
        else if (!strcmp(value, "batch"))
            o->bus.durability = SB_DURABILITY_BATCH;
        else if (!strcmp(value, "interval"))
            o->bus.durability = SB_DURABILITY_INTERVAL;
        else
            return fail(why, whylen, "expected none, batch or interval");
        return 0;
    case OPT_FSYNC_INTERVAL_MS:
        if ((rc = apply_int(value, 1, 86400000, &v, why, whylen)))
            return rc;
        o->bus.fsync_interval_ms = (unsigned)v;
        return 0;
    case OPT_SEGMENT_BYTES:
        if ((rc = apply_int(value, 4096, KAFKA_INT32_MAX, &v, why, whylen)))
            return rc;
        o->bus.segment_bytes = (uint64_t)v;
        return 0;
    case OPT_IDLE_SPIN_US:
        if ((rc = apply_int(value, 0, 10000000, &v, why, whylen)))
            return rc;
        o->bus.idle_spin_us = (unsigned)v;
        return 0;
    case OPT_DIRECT_IO:
        if (!strcmp(value, "on"))
            o->bus.direct_io = 1;
        else if (!strcmp(value, "off"))
            o->bus.direct_io = 0;
        else if (!strcmp(value, "auto"))
            o->bus.direct_io = -1;
        else
            return fail(why, whylen, "expected on, off or auto");
        return 0;
    case OPT_RETENTION_BYTES:
    case OPT_RETENTION_MS:
        if (parse_int(value, -1, INT64_MAX, &v) || v == 0)
            return fail(why, whylen, "expected -1 (unlimited) or a positive integer");
        if (id == OPT_RETENTION_BYTES)
            o->bus.retention_bytes = v;
        else
            o->bus.retention_ms = v;
        return 0;
    case OPT_AUTO_CREATE_TOPICS:
        if (!strcmp(value, "true"))
            o->server.auto_create_topics = true;
        else if (!strcmp(value, "false"))
            o->server.auto_create_topics = false;
        else
            return fail(why, whylen, "expected true or false");
        return 0;
    case OPT_DEFAULT_PARTITIONS:
        if ((rc = apply_int(value, 1, 65536, &v, why, whylen)))
            return rc;
        o->server.default_partitions = (unsigned)v;
        return 0;
    case OPT_MAX_MESSAGE_BYTES:
        if ((rc = apply_int(value, 1, KAFKA_INT32_MAX, &v, why, whylen)))
            return rc;
        o->server.max_message_bytes = (size_t)v;
        return 0;
    case OPT_MAX_REQUEST_BYTES:
        if ((rc = apply_int(value, 1024, KAFKA_INT32_MAX, &v, why, whylen)))
            return rc;
        o->server.max_request_bytes = (size_t)v;
        return 0;
    case OPT_MAX_CONNECTIONS:
        if ((rc = apply_int(value, 1, 1 << 24, &v, why, whylen)))
            return rc;
        o->server.max_connections = (unsigned)v;
        return 0;
    case OPT_CONFIG:
        return copy_string(o->config_path, sizeof(o->config_path), value, why, whylen);
    case OPT_CHECK_CONFIG:
    case OPT_HELP:
    case OPT_VERSION:
        break;
    }
    return fail(why, whylen, "takes no value");
}

/* --- the config file --- */

struct file_ctx {
    struct sbd_options *opt;
    char message[512]; /* the first error, without "FILE:LINE: " */
    bool failed;
};

static int on_ini_entry(void *user, const char *section, const char *key, const char *value)
{
    struct file_ctx *ctx = user;
    if (ctx->failed)
        return 0; /* keep only the first error (inih reports its line) */
    if (section[0] && strcmp(section, "shardbusd")) {
        snprintf(ctx->message, sizeof(ctx->message),
                 "key '%s' in section [%s]: settings go in [shardbusd] or before any section",
                 key, section);
        ctx->failed = true;
        return 0;
    }
    const struct setting *s = setting_by_key(key);
    if (!s) {
        snprintf(ctx->message, sizeof(ctx->message), "unknown key '%s' (see shardbusd --help)",
                 key);
        ctx->failed = true;
        return 0;
    }
    char why[200];
    if (apply(ctx->opt, s->id, value, why, sizeof(why))) {
        snprintf(ctx->message, sizeof(ctx->message), "key '%s': bad value '%.100s' (%s)", key,
                 value, why);
        ctx->failed = true;
        return 0;
    }
    return 1;
}

static int read_config_file(struct sbd_options *o, char *err, size_t errlen)
{
    struct file_ctx ctx = {.opt = o};
    FILE *f = fopen(o->config_path, "r");
    if (!f) {
        snprintf(err, errlen, "--config: cannot read '%s': %s", o->config_path, strerror(errno));
        return -EINVAL;
    }
    int line = ini_parse_file(f, on_ini_entry, &ctx);
    fclose(f);
    if (line == 0)
        return 0;
    if (line < 0)
        snprintf(err, errlen, "%s: out of memory while reading", o->config_path);
    else if (ctx.failed)
        snprintf(err, errlen, "%s:%d: %s", o->config_path, line, ctx.message);
    else
        snprintf(err, errlen, "%s:%d: syntax error (expected 'key = value' or [section])",
                 o->config_path, line);
    return -EINVAL;
}

/* --- the whole --- */

static void set_defaults(struct sbd_options *o)
{
    memset(o, 0, sizeof(*o));
    sb_config_init(&o->bus);
    /* A server's shards are woken by io_uring completions (network, disk) and by the rings, so
     * spinning buys little, while it takes the CPU from clients and kernel threads on the same
     * cores: measured with tools/bench's fixed-rate run (native client, 50,000 msg/s, 2 cores),
     * p99 0.24-0.50 ms with 0 against 0.41-3.6 ms with the library's 50, and no lower
     * throughput. */
    o->bus.idle_spin_us = 0;
    sb_server_config_init(&o->server);
    snprintf(o->data_dir, sizeof(o->data_dir), "./data");
    snprintf(o->listen_host, sizeof(o->listen_host), "%s", o->server.listen_host);
    o->metrics_enabled = true;
    snprintf(o->metrics_host, sizeof(o->metrics_host), "127.0.0.1");
    o->metrics_port = 9644;
}

/* After every source: the pointers into *o, and the checks that involve several settings. */
static int finish(struct sbd_options *o, char *err, size_t errlen)
{
    o->bus.data_dir = o->data_dir;
    o->server.listen_host = o->listen_host;
    if (o->server.advertised_host)
        o->server.advertised_host = o->advertised_host;
    o->bus.cpus = NULL;
    if (o->cpu_count) {
        if (o->bus.shards == 0)
            o->bus.shards = o->cpu_count;
        if (o->bus.shards < o->cpu_count) {
            snprintf(err, errlen, "--cpus lists %u CPUs but --shards is %u: list one per shard",
                     o->cpu_count, o->bus.shards);
            return -EINVAL;
        }
        /* More shards than CPUs listed: shard i on the (i mod count)-th CPU, as the bus does
         * with its own CPU list. */
        for (unsigned i = 0; i < o->bus.shards; i++)
            o->cpus[i] = o->cpu_list[i % o->cpu_count];
        o->bus.cpus = o->cpus;
    }
    if (o->server.max_request_bytes < o->server.max_message_bytes) {
        snprintf(err, errlen,
                 "--max-request-bytes %zu is below --max-message-bytes %zu: a batch of the "
                 "largest size accepted would not fit in a request",
                 o->server.max_request_bytes, o->server.max_message_bytes);
        return -EINVAL;
    }
    return 0;
}

int sbd_options_parse(struct sbd_options *opt, int argc, char **argv, char *err, size_t errlen)
{
    struct option longopts[SETTING_COUNT + 1];
    for (size_t i = 0; i < SETTING_COUNT; i++)
        longopts[i] = (struct option){settings[i].name,
                                      settings[i].arg ? required_argument : no_argument, NULL,
                                      (int)settings[i].id};
    longopts[SETTING_COUNT] = (struct option){0};
    static const char shortopts[] = ":hV";

    set_defaults(opt);
    err[0] = '\0';
    /* Pass 1: --config, --help, --version, --check-config and the syntax of every flag. */
    opterr = 0;
    optind = 0; /* 0: glibc reinitialises its state, so parsing twice works */
    int c;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        char why[200];
        const char *bad = argv[optind - 1];
        switch (c) {
        case '?':
            if (optopt && setting_by_id(optopt))
                snprintf(err, errlen, "option '%s' takes no value (see --help)", bad);
            else if (optopt)
                snprintf(err, errlen, "unknown option '-%c' (see --help)", optopt);
            else
                snprintf(err, errlen, "unknown option '%s' (see --help)", bad);
            return -EINVAL;
        case ':':
            snprintf(err, errlen, "option '%s' needs a value (see --help)", bad);
            return -EINVAL;
        case OPT_HELP:
            opt->action = SBD_HELP;
            return 0;
        case OPT_VERSION:
            if (opt->action != SBD_HELP)
                opt->action = SBD_VERSION;
            break;
        case OPT_CHECK_CONFIG:
            if (opt->action == SBD_RUN)
                opt->action = SBD_CHECK_CONFIG;
            break;
        case OPT_CONFIG:
            if (apply(opt, OPT_CONFIG, optarg, why, sizeof(why))) {
                snprintf(err, errlen, "--config: bad value '%s' (%s)", optarg, why);
                return -EINVAL;
            }
            break;
        default:
            break;
        }
    }
    if (optind < argc) {
        snprintf(err, errlen, "unexpected argument '%s' (see --help)", argv[optind]);
        return -EINVAL;
    }
    if (opt->action == SBD_VERSION)
        return 0;

    /* The file, then pass 2: the flags, which override it. */
    if (opt->config_path[0] && read_config_file(opt, err, errlen))
        return -EINVAL;
    optind = 0;
    while ((c = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        const struct setting *s = setting_by_id(c);
        if (!s || !s->arg || s->id == OPT_CONFIG)
            continue;
        char why[200];
        if (apply(opt, s->id, optarg, why, sizeof(why))) {
            snprintf(err, errlen, "--%s: bad value '%s' (%s)", s->name, optarg, why);
            return -EINVAL;
        }
    }
    return finish(opt, err, errlen);
}

void sbd_options_print(const struct sbd_options *o, FILE *out)
{
    char buf[SBD_HOST_MAX + 16];
    fprintf(out, "[shardbusd]\n");
    fprintf(out, "listen = %s\n",
            sbd_format_hostport(buf, sizeof(buf), o->listen_host, o->server.listen_port));
    if (o->server.advertised_host)
        fprintf(out, "advertised = %s\n",
                sbd_format_hostport(buf, sizeof(buf), o->advertised_host,
                                    o->server.advertised_port));
    fprintf(out, "data-dir = %s\n", o->data_dir);
    fprintf(out, "metrics-listen = %s\n",
            o->metrics_enabled
                ? sbd_format_hostport(buf, sizeof(buf), o->metrics_host, o->metrics_port)
                : "off");
    fprintf(out, "shards = %u\n", o->bus.shards);
    if (o->cpu_count) {
        fprintf(out, "cpus = ");
        for (unsigned i = 0; i < o->cpu_count; i++)
            fprintf(out, "%s%d", i ? "," : "", o->cpu_list[i]);
        fprintf(out, "\n");
    }
    fprintf(out, "durability = %s\n", sbd_durability_name(o->bus.durability));
    fprintf(out, "fsync-interval-ms = %u\n", o->bus.fsync_interval_ms);
    fprintf(out, "segment-bytes = %" PRIu64 "\n", o->bus.segment_bytes);
    fprintf(out, "idle-spin-us = %u\n", o->bus.idle_spin_us);
    fprintf(out, "direct-io = %s\n",
            o->bus.direct_io > 0 ? "on" : o->bus.direct_io == 0 ? "off" : "auto");
    fprintf(out, "retention-bytes = %" PRId64 "\n", o->bus.retention_bytes);
    fprintf(out, "retention-ms = %" PRId64 "\n", o->bus.retention_ms);
    fprintf(out, "auto-create-topics = %s\n", o->server.auto_create_topics ? "true" : "false");
    fprintf(out, "default-partitions = %u\n", o->server.default_partitions);
    fprintf(out, "max-message-bytes = %zu\n", o->server.max_message_bytes);
    fprintf(out, "max-request-bytes = %zu\n", o->server.max_request_bytes);
    fprintf(out, "max-connections = %u\n", o->server.max_connections);
}
