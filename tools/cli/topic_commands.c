/*
 * topic_commands.c - shardbus topic create|list|describe|delete, through librdkafka's admin API
 * (CreateTopics, DeleteTopics) and metadata (list, describe, with each partition's earliest and
 * latest offsets from ListOffsets).
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "kafka.h"
#include "options.h"

/* Wait for the admin result on @q; returns the event or NULL after a message. */
static rd_kafka_event_t *admin_wait(rd_kafka_queue_t *q, const struct cli_common *c,
                                    const char *cmd)
{
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, (int)c->timeout_ms + 1000);
    if (!ev) {
        fprintf(stderr, "shardbus: %s: no answer from %s within %lld ms\n", cmd, c->bootstrap,
                c->timeout_ms);
        return NULL;
    }
    if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "shardbus: %s: %s\n", cmd, rd_kafka_event_error_string(ev));
        rd_kafka_event_destroy(ev);
        return NULL;
    }
    return ev;
}

static rd_kafka_AdminOptions_t *admin_options(rd_kafka_t *rk, rd_kafka_admin_op_t op,
                                              const struct cli_common *c)
{
    char err[256];
    rd_kafka_AdminOptions_t *ao = rd_kafka_AdminOptions_new(rk, op);
    rd_kafka_AdminOptions_set_request_timeout(ao, (int)c->timeout_ms, err, sizeof(err));
    rd_kafka_AdminOptions_set_operation_timeout(ao, (int)c->timeout_ms, err, sizeof(err));
    return ao;
}

/* One topic result of CreateTopics or DeleteTopics: 0, or 1 after a message. */
static int topic_result(const rd_kafka_topic_result_t **tr, size_t n, const char *cmd,
                        const char *name)
{
    if (n != 1) {
        fprintf(stderr, "shardbus: %s %s: the server answered for %zu topics\n", cmd, name, n);
        return 1;
    }
    rd_kafka_resp_err_t e = rd_kafka_topic_result_error(tr[0]);
    if (e) {
        const char *s = rd_kafka_topic_result_error_string(tr[0]);
        fprintf(stderr, "shardbus: %s %s: %s\n", cmd, name, s && *s ? s : rd_kafka_err2str(e));
        return 1;
    }
    return 0;
}

static int cmd_create(int argc, char **argv)
{
    const char *cmd = "topic create";
    struct cli_common c;
    cli_common_init(&c);
    long long partitions = 1, retention_ms = -1, retention_bytes = -1;
    bool has_ms = false, has_bytes = false;
    const struct cli_opt opts[] = {
        {"--partitions", CLI_INT, &partitions, 1, 100000, NULL},
        {"--retention-ms", CLI_INT, &retention_ms, -1, INT64_MAX, &has_ms},
        {"--retention-bytes", CLI_INT, &retention_bytes, -1, INT64_MAX, &has_bytes},
        {NULL, CLI_FLAG, NULL, 0, 0, NULL},
    };
    const char *name;
    int rc = cli_parse(cmd, argc, argv, opts, &c, &name, 0, 1);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!name)
        return cli_usage_error(cmd, "needs the topic's NAME");

    rd_kafka_conf_t *conf = cli_kafka_conf(&c, cmd);
    const struct rd_kafka_metadata *md;
    rd_kafka_t *rk = conf ? cli_kafka_open(&c, cmd, RD_KAFKA_PRODUCER, conf, &md) : NULL;
    if (!rk)
        return 1;
    rd_kafka_metadata_destroy(md);

    char err[256], num[32];
    rd_kafka_NewTopic_t *nt = rd_kafka_NewTopic_new(name, (int)partitions, 1, err, sizeof(err));
    if (!nt) {
        fprintf(stderr, "shardbus: %s %s: %s\n", cmd, name, err);
        rd_kafka_destroy(rk);
        return 1;
    }
    if (has_ms) {
        snprintf(num, sizeof(num), "%lld", retention_ms);
        rd_kafka_NewTopic_set_config(nt, "retention.ms", num);
    }
    if (has_bytes) {
        snprintf(num, sizeof(num), "%lld", retention_bytes);
        rd_kafka_NewTopic_set_config(nt, "retention.bytes", num);
    }
    rd_kafka_AdminOptions_t *ao = admin_options(rk, RD_KAFKA_ADMIN_OP_CREATETOPICS, &c);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_CreateTopics(rk, &nt, 1, ao, q);
    rd_kafka_event_t *ev = admin_wait(q, &c, cmd);
    int status = 1;
    if (ev) {
        size_t n;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev), &n);
        status = topic_result(tr, n, cmd, name);
        rd_kafka_event_destroy(ev);
    }
    if (!status) {
        if (c.json) {
            fputs("{\"topic\":", stdout);
            cli_json_cstr(stdout, name);
            printf(",\"created\":true,\"partitions\":%lld}\n", partitions);
        } else {
            printf("created topic %s (%lld partition%s)\n", name, partitions,
                   partitions == 1 ? "" : "s");
        }
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_NewTopic_destroy(nt);
    rd_kafka_destroy(rk);
    return status;
}

static int cmd_delete(int argc, char **argv)
{
    const char *cmd = "topic delete";
    struct cli_common c;
    cli_common_init(&c);
    const char *name;
    int rc = cli_parse(cmd, argc, argv, NULL, &c, &name, 0, 1);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!name)
        return cli_usage_error(cmd, "needs the topic's NAME");

    rd_kafka_conf_t *conf = cli_kafka_conf(&c, cmd);
    const struct rd_kafka_metadata *md;
    rd_kafka_t *rk = conf ? cli_kafka_open(&c, cmd, RD_KAFKA_PRODUCER, conf, &md) : NULL;
    if (!rk)
        return 1;
    rd_kafka_metadata_destroy(md);

    rd_kafka_DeleteTopic_t *dt = rd_kafka_DeleteTopic_new(name);
    rd_kafka_AdminOptions_t *ao = admin_options(rk, RD_KAFKA_ADMIN_OP_DELETETOPICS, &c);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteTopics(rk, &dt, 1, ao, q);
    rd_kafka_event_t *ev = admin_wait(q, &c, cmd);
    int status = 1;
    if (ev) {
        size_t n;
        const rd_kafka_topic_result_t **tr =
            rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
        status = topic_result(tr, n, cmd, name);
        rd_kafka_event_destroy(ev);
    }
    if (!status) {
        if (c.json) {
            fputs("{\"topic\":", stdout);
            cli_json_cstr(stdout, name);
            fputs(",\"deleted\":true}\n", stdout);
        } else {
            printf("deleted topic %s\n", name);
        }
    }
    rd_kafka_queue_destroy(q);
    rd_kafka_AdminOptions_destroy(ao);
    rd_kafka_DeleteTopic_destroy(dt);
    rd_kafka_destroy(rk);
    return status;
}

static int cmp_topic(const void *a, const void *b)
{
    const struct rd_kafka_metadata_topic *const *x = a, *const *y = b;
    return strcmp((*x)->topic, (*y)->topic);
}

static int cmd_list(int argc, char **argv)
{
    const char *cmd = "topic list";
    struct cli_common c;
    cli_common_init(&c);
    int rc = cli_parse(cmd, argc, argv, NULL, &c, NULL, 0, 0);
    if (rc)
        return rc < 0 ? 0 : rc;
    rd_kafka_conf_t *conf = cli_kafka_conf(&c, cmd);
    const struct rd_kafka_metadata *md;
    rd_kafka_t *rk = conf ? cli_kafka_open(&c, cmd, RD_KAFKA_PRODUCER, conf, &md) : NULL;
    if (!rk)
        return 1;
    const struct rd_kafka_metadata_topic **sorted =
        calloc((size_t)md->topic_cnt + 1, sizeof(*sorted));
    if (!sorted) {
        fprintf(stderr, "shardbus: %s: out of memory\n", cmd);
        rd_kafka_metadata_destroy(md);
        rd_kafka_destroy(rk);
        return 1;
    }
    for (int i = 0; i < md->topic_cnt; i++)
        sorted[i] = &md->topics[i];
    qsort(sorted, (size_t)md->topic_cnt, sizeof(*sorted), cmp_topic);
    if (c.json)
        fputs("[", stdout);
    else if (md->topic_cnt)
        printf("%-40s %s\n", "TOPIC", "PARTITIONS");
    for (int i = 0; i < md->topic_cnt; i++) {
        const struct rd_kafka_metadata_topic *t = sorted[i];
        if (c.json) {
            fputs(i ? ",{\"topic\":" : "{\"topic\":", stdout);
            cli_json_cstr(stdout, t->topic);
            printf(",\"partitions\":%d", t->partition_cnt);
            if (t->err) {
                fputs(",\"error\":", stdout);
                cli_json_cstr(stdout, rd_kafka_err2str(t->err));
            }
            fputs("}", stdout);
        } else if (t->err) {
            printf("%-40s (%s)\n", t->topic, rd_kafka_err2str(t->err));
        } else {
            printf("%-40s %d\n", t->topic, t->partition_cnt);
        }
    }
    if (c.json)
        fputs("]\n", stdout);
    else if (!md->topic_cnt)
        printf("no topics at %s\n", c.bootstrap);
    free(sorted);
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return 0;
}

static const char *broker_name(const struct rd_kafka_metadata *md, int32_t id, char *buf,
                               size_t size)
{
    for (int i = 0; i < md->broker_cnt; i++)
        if (md->brokers[i].id == id) {
            snprintf(buf, size, "%s:%d", md->brokers[i].host, md->brokers[i].port);
            return buf;
        }
    snprintf(buf, size, "unknown");
    return buf;
}

static int cmd_describe(int argc, char **argv)
{
    const char *cmd = "topic describe";
    struct cli_common c;
    cli_common_init(&c);
    const char *name;
    int rc = cli_parse(cmd, argc, argv, NULL, &c, &name, 0, 1);
    if (rc)
        return rc < 0 ? 0 : rc;
    if (!name)
        return cli_usage_error(cmd, "needs the topic's NAME");
    rd_kafka_conf_t *conf = cli_kafka_conf(&c, cmd);
    const struct rd_kafka_metadata *md;
    rd_kafka_t *rk = conf ? cli_kafka_open(&c, cmd, RD_KAFKA_PRODUCER, conf, &md) : NULL;
    if (!rk)
        return 1;
    int status = 0;
    /* Every topic's metadata, then this one: naming it in the request could create it. */
    const struct rd_kafka_metadata_topic *t = cli_find_topic(md, name);
    if (!t || t->err == RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART) {
        fprintf(stderr, "shardbus: %s: no topic \"%s\" at %s\n", cmd, name, c.bootstrap);
        status = 1;
    } else if (t->err) {
        fprintf(stderr, "shardbus: %s %s: %s\n", cmd, name, rd_kafka_err2str(t->err));
        status = 1;
    } else {
        if (c.json) {
            fputs("{\"topic\":", stdout);
            cli_json_cstr(stdout, name);
            fputs(",\"partitions\":[", stdout);
        } else {
            printf("topic %s: %d partition%s\n", name, t->partition_cnt,
                   t->partition_cnt == 1 ? "" : "s");
            printf("  %-9s %-24s %12s %12s %12s\n", "PARTITION", "LEADER", "EARLIEST", "LATEST",
                   "MESSAGES");
        }
        for (int i = 0; i < t->partition_cnt; i++) {
            const struct rd_kafka_metadata_partition *p = &t->partitions[i];
            int64_t lo = -1, hi = -1;
            rd_kafka_resp_err_t e = rd_kafka_query_watermark_offsets(
                rk, name, p->id, &lo, &hi, (int)c.timeout_ms);
            char leader[300];
            broker_name(md, p->leader, leader, sizeof(leader));
            if (e) {
                fprintf(stderr, "shardbus: %s %s: partition %d offsets: %s\n", cmd, name, p->id,
                        rd_kafka_err2str(e));
                status = 1;
            }
            if (c.json) {
                printf("%s{\"partition\":%d,\"leader\":%d,\"leader_address\":", i ? "," : "",
                       p->id, p->leader);
                cli_json_cstr(stdout, leader);
                if (e)
                    printf(",\"earliest\":null,\"latest\":null,\"error\":\"%s\"}",
                           rd_kafka_err2name(e));
                else
                    printf(",\"earliest\":%" PRId64 ",\"latest\":%" PRId64 "}", lo, hi);
            } else if (e) {
                printf("  %-9d %-24s %12s %12s %12s\n", p->id, leader, "?", "?", "?");
            } else {
                printf("  %-9d %-24s %12" PRId64 " %12" PRId64 " %12" PRId64 "\n", p->id,
                       leader, lo, hi, hi - lo);
            }
        }
        if (c.json)
            fputs("]}\n", stdout);
    }
    rd_kafka_metadata_destroy(md);
    rd_kafka_destroy(rk);
    return status;
}

int cli_topic_main(int argc, char **argv)
{
    if (argc < 1)
        return cli_usage_error("topic", "needs a command: create, list, describe or delete");
    const char *sub = argv[0];
    if (!strcmp(sub, "create"))
        return cmd_create(argc - 1, argv + 1);
    if (!strcmp(sub, "list"))
        return cmd_list(argc - 1, argv + 1);
    if (!strcmp(sub, "describe"))
        return cmd_describe(argc - 1, argv + 1);
    if (!strcmp(sub, "delete"))
        return cmd_delete(argc - 1, argv + 1);
    if (!strcmp(sub, "--help") || !strcmp(sub, "-h")) {
        fputs(cli_usage_text, stdout);
        return 0;
    }
    return cli_usage_error("topic", "unknown command \"%s\" (create, list, describe, delete)",
                           sub);
}
