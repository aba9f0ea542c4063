/*
 * consume_command.c - shardbus consume TOPIC: a simple consumer (no consumer group, nothing
 * committed) on every partition of the topic, or one, through librdkafka's legacy consumer
 * with all partitions feeding one queue.
 *
 * When it stops: after --count messages; else, without --follow, once every partition's end is
 * reached; with --follow, on SIGINT/SIGTERM. --timeout-ms bounds the wait for the next message
 * (default 10 s; with --follow only when given): a wait that long is a failure (exit 1) unless
 * nothing more was asked for.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kafka.h"
#include "net.h"
#include "options.h"

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static void print_json(const rd_kafka_message_t *m, const char *topic)
{
    rd_kafka_timestamp_type_t tstype;
    int64_t ts = rd_kafka_message_timestamp(m, &tstype);
    fputs("{\"topic\":", stdout);
    cli_json_cstr(stdout, topic);
    printf(",\"partition\":%" PRId32 ",\"offset\":%" PRId64 ",\"timestamp\":", m->partition,
           m->offset);
    if (tstype == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE)
        fputs("null", stdout);
    else
        printf("%" PRId64, ts);
    putchar(',');
    cli_json_bytes_field(stdout, "key", m->key, m->key_len);
    putchar(',');
    cli_json_bytes_field(stdout, "value", m->payload, m->len);
    fputs(",\"headers\":[", stdout);
    rd_kafka_headers_t *hdrs;
    if (!rd_kafka_message_headers(m, &hdrs)) {
        const char *name;
        const void *val;
        size_t size;
        for (size_t i = 0; !rd_kafka_header_get_all(hdrs, i, &name, &val, &size); i++) {
            fputs(i ? ",{\"key\":" : "{\"key\":", stdout);
            cli_json_cstr(stdout, name);
            putchar(',');
            cli_json_bytes_field(stdout, "value", val, size);
            putchar('}');
        }
    }
    fputs("]}\n", stdout);
}

static void print_plain(const rd_kafka_message_t *m, bool keyed)
{
    if (keyed) {
        if (m->key_len)
            fwrite(m->key, 1, m->key_len, stdout);
        putchar('\t');
    }
    if (m->len)
        fwrite(m->payload, 1, m->len, stdout);
    putchar('\n');
}

int cli_consume_main(int argc, char **argv)
{
    const char *cmd = "consume";
    struct cli_common c;
    cli_common_init(&c);
    const char *from = "beginning";
    long long partition = -1, count = 0;
    bool follow = false, keyed = false;
    const struct cli_opt opts[] = {
        {"--from", CLI_STRING, &from, 0, 0, NULL},
        {"--partition", CLI_INT, &partition, 0, INT32_MAX, NULL},
        {"--count", CLI_INT, &count, 1, INT64_MAX, NULL},
        {"--follow", CLI_FLAG, &follow, 0, 0, NULL},
        {"--keyed", CLI_FLAG, &keyed, 0, 0, NULL},
        {NULL, CLI_FLAG, NULL, 0, 0, NULL},
    };
    const char *topic;
    int rc = cli_parse(cmd, argc, argv, opts, &c, &topic, 0, 1);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!topic)
        return cli_usage_error(cmd, "needs a TOPIC");
    int64_t start;
    if (!strcmp(from, "beginning")) {
        start = RD_KAFKA_OFFSET_BEGINNING;
    } else if (!strcmp(from, "end")) {
        start = RD_KAFKA_OFFSET_END;
    } else {
        char *end;
        long long v = strtoll(from, &end, 10);
        if (!*from || *end || v < 0)
            return cli_usage_error(cmd, "--from needs beginning, end or an offset >= 0, not \"%s\"",
                                   from);
        start = v;
    }

    rd_kafka_conf_t *conf = cli_kafka_conf(&c, cmd);
    if (!conf)
        return 1;
    if (cli_kafka_set(conf, cmd, "enable.partition.eof", "true") ||
        cli_kafka_set(conf, cmd, "auto.offset.reset", "error") ||
        cli_kafka_set(conf, cmd, "enable.auto.commit", "false") ||
        cli_kafka_set(conf, cmd, "fetch.wait.max.ms", "100")) {
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    const struct rd_kafka_metadata *md;
    rd_kafka_t *rk = cli_kafka_open(&c, cmd, RD_KAFKA_CONSUMER, conf, &md);
    if (!rk)
        return 1;
    const struct rd_kafka_metadata_topic *t = cli_find_topic(md, topic);
    if (!t || t->err) {
        if (!t || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART)
            fprintf(stderr, "shardbus: consume: no topic \"%s\" at %s\n", topic, c.bootstrap);
        else
            fprintf(stderr, "shardbus: consume: %s: %s\n", topic, rd_kafka_err2str(t->err));
        rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return 1;
    }
    if (partition >= t->partition_cnt) {
        fprintf(stderr, "shardbus: consume: topic %s has %d partition%s, no partition %lld\n",
                topic, t->partition_cnt, t->partition_cnt == 1 ? "" : "s", partition);
        rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return 1;
    }
    int nparts = t->partition_cnt;
    int32_t *ids = calloc((size_t)nparts + 1, sizeof(*ids));
    bool *at_end = calloc((size_t)nparts + 1, sizeof(*at_end));
    if (!ids || !at_end) {
        fprintf(stderr, "shardbus: consume: out of memory\n");
        free(ids);
        free(at_end);
        rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return 1;
    }
    int nstart = 0;
    for (int i = 0; i < nparts; i++)
        if (partition < 0 || t->partitions[i].id == partition)
            ids[nstart++] = t->partitions[i].id;
    rd_kafka_metadata_destroy(md);

    rd_kafka_topic_t *rkt = rd_kafka_topic_new(rk, topic, NULL);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    int status = 0, started = 0;
    for (int i = 0; i < nstart; i++, started++)
        if (rd_kafka_consume_start_queue(rkt, ids[i], start, q)) {
            fprintf(stderr, "shardbus: consume: %s partition %d: %s\n", topic, ids[i],
                    rd_kafka_err2str(rd_kafka_last_error()));
            status = 1;
            break;
        }

    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    /* --follow without --timeout-ms waits for ever; otherwise --timeout-ms bounds each wait. */
    long long idle_limit = follow && !c.timeout_given ? -1 : c.timeout_ms;
    long long last_progress = cli_now_ms();
    long long got = 0;
    int ends = 0;
    while (!status && !g_stop) {
        if (count && got >= count)
            break;
        if (!count && !follow && ends == nstart)
            break;
        rd_kafka_message_t *m = rd_kafka_consume_queue(q, 200);
        if (!m) {
            fflush(stdout);
            rd_kafka_poll(rk, 0);
            if (idle_limit >= 0 && cli_now_ms() - last_progress > idle_limit) {
                if (count)
                    fprintf(stderr,
                            "shardbus: consume: %lld of %lld messages from %s, then none for "
                            "%lld ms\n",
                            got, count, topic, idle_limit);
                else if (!follow)
                    fprintf(stderr,
                            "shardbus: consume: %s: the end of %d partition%s not reached "
                            "within %lld ms\n",
                            topic, nstart - ends, nstart - ends == 1 ? "" : "s", idle_limit);
                if ((count || !follow) && cli_kafka_last_error()[0])
                    fprintf(stderr, "shardbus: consume: the last error from %s: %s\n",
                            c.bootstrap, cli_kafka_last_error());
                status = follow && !count ? 0 : 1;
            }
            continue;
        }
        int idx = -1;
        for (int i = 0; i < nstart; i++)
            if (ids[i] == m->partition)
                idx = i;
        if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
            if (idx >= 0 && !at_end[idx]) {
                at_end[idx] = true;
                ends++;
            }
            last_progress = cli_now_ms();
        } else if (m->err) {
            fprintf(stderr, "shardbus: consume: %s partition %" PRId32 ": %s\n", topic,
                    m->partition, rd_kafka_message_errstr(m));
            status = 1;
        } else {
            if (idx >= 0 && at_end[idx]) {
                at_end[idx] = false;
                ends--;
            }
            if (c.json)
                print_json(m, topic);
            else
                print_plain(m, keyed);
            got++;
            last_progress = cli_now_ms();
        }
        rd_kafka_message_destroy(m);
    }
    fflush(stdout);
    if (ferror(stdout)) {
        fprintf(stderr, "shardbus: consume: writing the messages failed\n");
        status = 1;
    }
    for (int i = 0; i < started; i++)
        rd_kafka_consume_stop(rkt, ids[i]);
    rd_kafka_queue_destroy(q);
    rd_kafka_topic_destroy(rkt);
    rd_kafka_destroy(rk);
    free(ids);
    free(at_end);
    return status;
}
