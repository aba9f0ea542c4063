/*
 * produce_command.c - shardbus produce TOPIC: lines of stdin (or one --value) as messages,
 * flushed before exiting; every delivery failure is reported with the broker's or librdkafka's
 * reason, and the exit status is 1 if any message was not delivered.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kafka.h"
#include "options.h"

#define PRODUCE_ERRORS_SHOWN 10

struct produce_state {
    const char *topic;
    uint64_t delivered, failed;
    int32_t last_partition;
    int64_t last_offset;
};

static void on_delivery(rd_kafka_t *rk, const rd_kafka_message_t *m, void *opaque)
{
    (void)rk;
    struct produce_state *s = opaque;
    if (m->err) {
        if (s->failed < PRODUCE_ERRORS_SHOWN)
            fprintf(stderr, "shardbus: produce: message %" PRIuPTR " to %s failed: %s\n",
                    (uintptr_t)m->_private, s->topic, rd_kafka_err2str(m->err));
        else if (s->failed == PRODUCE_ERRORS_SHOWN)
            fprintf(stderr, "shardbus: produce: (more failures not shown)\n");
        s->failed++;
        return;
    }
    s->delivered++;
    s->last_partition = m->partition;
    s->last_offset = m->offset;
}

/* "K=V" (or "K" for a header without a value) into the headers. */
static int add_headers(rd_kafka_headers_t *hdrs, const struct cli_list *l)
{
    for (int i = 0; i < l->n; i++) {
        const char *eq = strchr(l->v[i], '=');
        if (eq)
            rd_kafka_header_add(hdrs, l->v[i], eq - l->v[i], eq + 1, -1);
        else
            rd_kafka_header_add(hdrs, l->v[i], -1, NULL, 0);
    }
    return 0;
}

/* Produce one message, waiting while librdkafka's queue is full. 0, or 1 after a message. */
static int produce_one(rd_kafka_t *rk, const char *topic, int32_t partition, const char *key,
                       size_t key_len, const char *value, size_t value_len,
                       const struct cli_list *headers, uint64_t number)
{
    for (;;) {
        rd_kafka_headers_t *hdrs = NULL;
        if (headers->n) {
            hdrs = rd_kafka_headers_new((size_t)headers->n);
            add_headers(hdrs, headers);
        }
        rd_kafka_resp_err_t e = rd_kafka_producev(
            rk, RD_KAFKA_V_TOPIC(topic), RD_KAFKA_V_PARTITION(partition),
            RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY),
            RD_KAFKA_V_KEY(key_len || key ? (void *)(uintptr_t)key : NULL, key_len),
            RD_KAFKA_V_VALUE((void *)(uintptr_t)value, value_len),
            RD_KAFKA_V_HEADERS(hdrs), RD_KAFKA_V_OPAQUE((void *)(uintptr_t)number),
            RD_KAFKA_V_END);
        if (!e)
            return 0;
        if (hdrs)
            rd_kafka_headers_destroy(hdrs); /* not taken over on failure */
        if (e != RD_KAFKA_RESP_ERR__QUEUE_FULL) {
            fprintf(stderr, "shardbus: produce: message %" PRIu64 " to %s: %s\n", number, topic,
                    rd_kafka_err2str(e));
            return 1;
        }
        rd_kafka_poll(rk, 100);
    }
}

int cli_produce_main(int argc, char **argv)
{
    const char *cmd = "produce";
    struct cli_common c;
    cli_common_init(&c);
    const char *key = NULL, *value = NULL, *acks = NULL;
    long long partition = RD_KAFKA_PARTITION_UA;
    bool keyed = false, idempotent = false;
    struct cli_list headers = {.n = 0};
    const struct cli_opt opts[] = {
        {"--key", CLI_STRING, &key, 0, 0, NULL},
        {"--value", CLI_STRING, &value, 0, 0, NULL},
        {"--partition", CLI_INT, &partition, 0, INT32_MAX, NULL},
        {"--acks", CLI_STRING, &acks, 0, 0, NULL},
        {"--idempotent", CLI_FLAG, &idempotent, 0, 0, NULL},
        {"--keyed", CLI_FLAG, &keyed, 0, 0, NULL},
        {"--header", CLI_LIST, &headers, 0, 0, NULL},
        {NULL, CLI_FLAG, NULL, 0, 0, NULL},
    };
    const char *topic;
    int rc = cli_parse(cmd, argc, argv, opts, &c, &topic, 0, 1);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!topic)
        return cli_usage_error(cmd, "needs a TOPIC");
    if (acks && strcmp(acks, "0") && strcmp(acks, "1") && strcmp(acks, "all"))
        return cli_usage_error(cmd, "--acks needs 0, 1 or all, not \"%s\"", acks);
    if (idempotent && acks && strcmp(acks, "all"))
        return cli_usage_error(cmd, "--idempotent needs --acks all, not --acks %s", acks);
    if (keyed && (key || value))
        return cli_usage_error(cmd, "--keyed reads KEY<TAB>VALUE lines: not with --%s",
                               key ? "key" : "value");

    struct produce_state st = {.topic = topic, .last_partition = -1, .last_offset = -1};
    rd_kafka_conf_t *conf = cli_kafka_conf(&c, cmd);
    if (!conf)
        return 1;
    char ms[32];
    snprintf(ms, sizeof(ms), "%lld", c.timeout_ms);
    rd_kafka_conf_set_opaque(conf, &st);
    rd_kafka_conf_set_dr_msg_cb(conf, on_delivery);
    if (cli_kafka_set(conf, cmd, "acks", acks ? (!strcmp(acks, "all") ? "-1" : acks) : "-1") ||
        cli_kafka_set(conf, cmd, "enable.idempotence", idempotent ? "true" : "false") ||
        cli_kafka_set(conf, cmd, "message.timeout.ms", ms) ||
        cli_kafka_set(conf, cmd, "linger.ms", "5")) {
        rd_kafka_conf_destroy(conf);
        return 1;
    }
    const struct rd_kafka_metadata *md;
    rd_kafka_t *rk = cli_kafka_open(&c, cmd, RD_KAFKA_PRODUCER, conf, &md);
    if (!rk)
        return 1;
    rd_kafka_metadata_destroy(md);

    uint64_t sent = 0, refused = 0;
    size_t key_len = key ? strlen(key) : 0;
    if (value) {
        sent++;
        refused += (uint64_t)produce_one(rk, topic, (int32_t)partition, key, key_len, value,
                                         strlen(value), &headers, sent);
    } else {
        char *line = NULL;
        size_t cap = 0;
        ssize_t n;
        while ((n = getline(&line, &cap, stdin)) >= 0) {
            if (n > 0 && line[n - 1] == '\n')
                line[--n] = 0;
            const char *k = key, *v = line;
            size_t klen = key_len, vlen = (size_t)n;
            if (keyed) {
                char *tab = memchr(line, '\t', (size_t)n);
                if (tab) {
                    k = line;
                    klen = (size_t)(tab - line);
                    v = tab + 1;
                    vlen = (size_t)n - klen - 1;
                } else {
                    k = NULL; /* no TAB: a message without a key */
                    klen = 0;
                }
            }
            sent++;
            refused +=
                (uint64_t)produce_one(rk, topic, (int32_t)partition, k, klen, v, vlen, &headers,
                                      sent);
            rd_kafka_poll(rk, 0);
        }
        free(line);
        if (ferror(stdin)) {
            perror("shardbus: produce: reading stdin");
            refused++;
        }
    }
    /* message.timeout.ms bounds every message, so flush ends soon after it. */
    rd_kafka_flush(rk, (int)c.timeout_ms + 5000);
    uint64_t stuck = (uint64_t)rd_kafka_outq_len(rk);
    if (stuck)
        fprintf(stderr, "shardbus: produce: %" PRIu64 " messages still undelivered after %lld ms\n",
                stuck, c.timeout_ms + 5000);
    uint64_t failed = st.failed + refused + stuck;
    if (c.json) {
        fputs("{\"topic\":", stdout);
        cli_json_cstr(stdout, topic);
        printf(",\"produced\":%" PRIu64 ",\"failed\":%" PRIu64, st.delivered, failed);
        if (sent == 1 && st.delivered == 1 && st.last_offset >= 0)
            printf(",\"partition\":%" PRId32 ",\"offset\":%" PRId64, st.last_partition,
                   st.last_offset);
        fputs("}\n", stdout);
    } else if (sent == 1 && st.delivered == 1 && st.last_offset >= 0) {
        printf("produced 1 message to %s (partition %" PRId32 ", offset %" PRId64 ")\n", topic,
               st.last_partition, st.last_offset);
    } else if (sent == 1 && st.delivered == 1) {
        printf("produced 1 message to %s (partition %" PRId32 "; no offset with --acks 0)\n",
               topic, st.last_partition);
    } else {
        printf("produced %" PRIu64 " message%s to %s", st.delivered, st.delivered == 1 ? "" : "s",
               topic);
        if (failed)
            printf("; %" PRIu64 " failed", failed);
        putchar('\n');
    }
    rd_kafka_destroy(rk);
    return failed ? 1 : 0;
}
