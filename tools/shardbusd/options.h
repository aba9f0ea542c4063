/*
 * options.h - shardbusd's settings: command-line flags and an optional ini config file.
 *
 * Every flag --NAME VALUE is also a key "NAME = VALUE" of the config file given by
 * --config FILE (in a [shardbusd] section or before any section). The defaults come first,
 * then the file, then the flags, so a flag overrides the file. The result is the two library
 * configurations the daemon starts from (struct sb_config for the bus, struct sb_server_config
 * for the Kafka server) plus the daemon's own settings (the metrics listener).
 */
#ifndef SBD_OPTIONS_H
#define SBD_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <shardbus.h>

#include "server.h"

/** Longest host name or address accepted in HOST:PORT (DNS's limit). */
#define SBD_HOST_MAX 253
/** Most CPUs --cpus may list (the bus's shard limit). */
#define SBD_CPUS_MAX 1024

/** What main() does once the settings are read. */
enum sbd_action {
    SBD_RUN = 0,      /* serve */
    SBD_HELP,         /* --help: print sbd_options_usage(), exit 0 */
    SBD_VERSION,      /* --version: print "shardbusd X.Y.Z", exit 0 */
    SBD_CHECK_CONFIG, /* --check-config: print sbd_options_print()'s output, exit 0 */
};

/** The daemon's effective settings. Fill with sbd_options_parse(); no destroy needed. */
struct sbd_options {
    enum sbd_action action;
    /** --config FILE, or "" when none. */
    char config_path[4096];

    /** The bus: data_dir and cpus point into this struct (do not copy the struct and keep
     *  using the copy's pointers). */
    struct sb_config bus;
    /** The Kafka server: listen_host / advertised_host point into this struct. */
    struct sb_server_config server;

    /** --metrics-listen: false when "off". Port 0 = any free port (the log says which). */
    bool metrics_enabled;
    char metrics_host[SBD_HOST_MAX + 1];
    uint16_t metrics_port;

    /* Storage behind the pointers above. */
    char data_dir[4096];
    char listen_host[SBD_HOST_MAX + 1];
    char advertised_host[SBD_HOST_MAX + 1];
    unsigned cpu_count; /* entries of --cpus as given (cpus[] holds one per shard) */
    int cpu_list[SBD_CPUS_MAX];
    int cpus[SBD_CPUS_MAX];
};

/**
 * sbd_options_parse - read the defaults, then the config file named by --config (if any),
 * then the other flags of @argv, into *@opt, and check the result as a whole (e.g. --cpus
 * against --shards).
 * Returns 0 (opt->action says what to do), or -EINVAL with a one-line message in @err (no
 * newline; names the flag and the value, or the file, line and key) for a usage error: an
 * unknown flag or key, a missing or bad value, an unreadable config file.
 * Uses getopt_long (global state: resets optind itself). Main thread, before other threads;
 * never blocks except to read the config file.
 */
int sbd_options_parse(struct sbd_options *opt, int argc, char **argv, char *err, size_t errlen);

/** sbd_options_usage - the --help text to @out. Any thread. */
void sbd_options_usage(FILE *out);

/**
 * sbd_options_print - the effective settings to @out as a config file (one "key = value" line
 * per setting under [shardbusd]) that sbd_options_parse() reads back to the same settings.
 * Any thread.
 */
void sbd_options_print(const struct sbd_options *opt, FILE *out);

/** sbd_durability_name - "none", "batch" or "interval". Any thread. */
const char *sbd_durability_name(enum sb_durability durability);

/**
 * sbd_format_hostport - "HOST:PORT" into @buf, with brackets around an IPv6 address
 * ("[::1]:9092"). Returns @buf. Any thread.
 */
const char *sbd_format_hostport(char *buf, size_t size, const char *host, unsigned port);

#endif /* SBD_OPTIONS_H */
