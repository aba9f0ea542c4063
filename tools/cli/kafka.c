/* kafka.c - the CLI's librdkafka handle (see kafka.h). */
#define _GNU_SOURCE
#include "kafka.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "net.h"

/* The CLI runs one handle at a time; the callbacks below write these from the thread that
 * polls (error_cb) or only read them (log_cb). */
static bool g_verbose;
static char g_last_error[512];

static void log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
    (void)rk;
    if (g_verbose)
        fprintf(stderr, "shardbus: librdkafka %d %s: %s\n", level, fac, buf);
}

static void error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
    (void)rk;
    (void)opaque;
    if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN && g_last_error[0])
        return; /* keep the transport error that says why */
    snprintf(g_last_error, sizeof(g_last_error), "%s", reason);
    if (g_verbose)
        fprintf(stderr, "shardbus: librdkafka error: %s: %s\n",
                rd_kafka_err2name((rd_kafka_resp_err_t)err), reason);
}

const char *cli_kafka_last_error(void)
{
    return g_last_error;
}

int cli_kafka_set(rd_kafka_conf_t *conf, const char *cmd, const char *name, const char *value)
{
    char err[256];
    if (rd_kafka_conf_set(conf, name, value, err, sizeof(err)) != RD_KAFKA_CONF_OK) {
        fprintf(stderr, "shardbus: %s: %s=%s: %s\n", cmd, name, value, err);
        return -1;
    }
    return 0;
}

rd_kafka_conf_t *cli_kafka_conf(const struct cli_common *common, const char *cmd)
{
    g_verbose = common->verbose || common->debug;
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    if (!conf) {
        fprintf(stderr, "shardbus: %s: out of memory\n", cmd);
        return NULL;
    }
    char ms[32], setup_ms[32];
    snprintf(ms, sizeof(ms), "%lld", common->timeout_ms < 10 ? 10 : common->timeout_ms);
    /* librdkafka's bounds: socket.connection.setup.timeout.ms >= 1000. */
    snprintf(setup_ms, sizeof(setup_ms), "%lld",
             common->timeout_ms < 1000 ? 1000 : common->timeout_ms);
    rd_kafka_conf_set_log_cb(conf, log_cb);
    rd_kafka_conf_set_error_cb(conf, error_cb);
    if (cli_kafka_set(conf, cmd, "bootstrap.servers", common->bootstrap) ||
        cli_kafka_set(conf, cmd, "client.id", "shardbus-cli") ||
        cli_kafka_set(conf, cmd, "socket.timeout.ms", ms) ||
        cli_kafka_set(conf, cmd, "socket.connection.setup.timeout.ms", setup_ms) ||
        cli_kafka_set(conf, cmd, "reconnect.backoff.max.ms", "1000") ||
        cli_kafka_set(conf, cmd, "log.connection.close", "true") || /* errors with reasons */
        cli_kafka_set(conf, cmd, "log_level", common->verbose ? "7" : "3") ||
        (common->debug && cli_kafka_set(conf, cmd, "debug", common->debug))) {
        rd_kafka_conf_destroy(conf);
        return NULL;
    }
    return conf;
}

int cli_kafka_unreachable(const struct cli_common *common, const char *why)
{
    fprintf(stderr, "shardbus: cannot reach a server at %s (%s)\n", common->bootstrap, why);
    return 1;
}

rd_kafka_t *cli_kafka_open(const struct cli_common *common, const char *cmd,
                           rd_kafka_type_t type, rd_kafka_conf_t *conf,
                           const struct rd_kafka_metadata **md)
{
    char why[512];
    if (cli_probe_bootstrap(common->bootstrap, common->timeout_ms, why, sizeof(why))) {
        rd_kafka_conf_destroy(conf);
        cli_kafka_unreachable(common, why);
        return NULL;
    }
    char err[512];
    rd_kafka_t *rk = rd_kafka_new(type, conf, err, sizeof(err));
    if (!rk) {
        rd_kafka_conf_destroy(conf);
        fprintf(stderr, "shardbus: %s: %s\n", cmd, err);
        return NULL;
    }
    rd_kafka_resp_err_t e = rd_kafka_metadata(rk, 1, NULL, md, (int)common->timeout_ms);
    if (e) {
        rd_kafka_poll(rk, 0); /* serve error_cb: the transport error says why */
        const char *last = cli_kafka_last_error();
        if (e == RD_KAFKA_RESP_ERR__TRANSPORT || e == RD_KAFKA_RESP_ERR__TIMED_OUT ||
            e == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN) {
            if (last[0])
                snprintf(why, sizeof(why), "%s", last);
            else
                snprintf(why, sizeof(why), "connected, but no Kafka metadata within %lld ms: %s",
                         common->timeout_ms, rd_kafka_err2str(e));
            cli_kafka_unreachable(common, why);
        } else {
            fprintf(stderr, "shardbus: %s: metadata from %s: %s\n", cmd, common->bootstrap,
                    rd_kafka_err2str(e));
        }
        rd_kafka_destroy(rk);
        return NULL;
    }
    return rk;
}

const struct rd_kafka_metadata_topic *cli_find_topic(const struct rd_kafka_metadata *md,
                                                     const char *name)
{
    for (int i = 0; i < md->topic_cnt; i++)
        if (!strcmp(md->topics[i].topic, name))
            return &md->topics[i];
    return NULL;
}
