/*
 * log_commands.c - shardbus log verify|dump: read a data_dir directly (no server needed).
 *
 *   shardbus log verify DIR        check every partition log under a data_dir (read only)
 *   shardbus log dump DIR [--topic T] [--partition P] [--from OFFSET] [--json]
 *
 * Exit status: 0 fine, 1 a problem was found (or DIR unreadable), 2 bad usage.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shardbus.h>

#include "log_verify.h"
#include "options.h"

static const char usage_text[] =
    "usage: shardbus log verify DIR\n"
    "       shardbus log dump DIR [--topic TOPIC] [--partition N] [--from OFFSET] [--json]\n"
    "       shardbus --help | --version\n"
    "\n"
    "DIR is a bus's data_dir: one folder per partition, <topic>-<partition>, of Kafka\n"
    "segments. verify checks every batch (CRC-32C, lengths, offsets) and the indexes, and exits\n"
    "1 if anything is wrong; dump prints the events.\n";

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "shardbus: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", usage_text);
    return 2;
}

struct partition_dir {
    char topic[SB_TOPIC_NAME_MAX + 1];
    long partition;
    char path[4096];
};

static int cmp_partition(const void *a, const void *b)
{
    const struct partition_dir *x = a, *y = b;
    int c = strcmp(x->topic, y->topic);
    return c ? c : (x->partition > y->partition) - (x->partition < y->partition);
}

/* The "<topic>-<partition>" folders of a data_dir, sorted. */
static int list_partitions(const char *dir, struct partition_dir **out, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    size_t n = 0, cap = 16;
    struct partition_dir *list = malloc(cap * sizeof(*list));
    struct dirent *e;
    while (list && (e = readdir(d))) {
        char *dash = strrchr(e->d_name, '-');
        if (!dash || dash == e->d_name || !dash[1] || (size_t)(dash - e->d_name) > SB_TOPIC_NAME_MAX)
            continue;
        char *end;
        long p = strtol(dash + 1, &end, 10);
        if (*end || p < 0)
            continue;
        if (n == cap) {
            struct partition_dir *bigger = realloc(list, cap * 2 * sizeof(*list));
            if (!bigger)
                break;
            list = bigger;
            cap *= 2;
        }
        memcpy(list[n].topic, e->d_name, (size_t)(dash - e->d_name));
        list[n].topic[dash - e->d_name] = 0;
        list[n].partition = p;
        snprintf(list[n].path, sizeof(list[n].path), "%s/%s", dir, e->d_name);
        n++;
    }
    closedir(d);
    if (!list)
        return -ENOMEM;
    qsort(list, n, sizeof(*list), cmp_partition);
    *out = list;
    *count = n;
    return 0;
}

static void print_problem(void *ctx, enum sb_log_level level, const char *msg)
{
    (void)ctx;
    (void)level;
    printf("  problem: %s\n", msg);
}

static int cmd_verify(const char *dir)
{
    struct partition_dir *parts = NULL;
    size_t count = 0;
    int rc = list_partitions(dir, &parts, &count);
    if (rc) {
        fprintf(stderr, "shardbus: log verify: cannot read %s: %s\n", dir, strerror(-rc));
        return 1;
    }
    struct sb_verify_totals all = {0};
    for (size_t i = 0; i < count; i++) {
        struct sb_verify_totals t = {0};
        rc = sb_log_verify_partition(parts[i].path, print_problem, NULL, &t);
        if (rc) {
            printf("%s partition %ld: cannot read: %s\n", parts[i].topic, parts[i].partition,
                   strerror(-rc));
            all.problems++;
            continue;
        }
        printf("%s partition %ld: %" PRIu64 " segments, %" PRIu64 " batches, %" PRIu64
               " records, %" PRIu64 " bytes: %s\n",
               parts[i].topic, parts[i].partition, t.segments, t.batches, t.records, t.bytes,
               t.problems ? "PROBLEMS" : "ok");
        all.partitions++;
        all.segments += t.segments;
        all.batches += t.batches;
        all.records += t.records;
        all.problems += t.problems;
    }
    free(parts);
    printf("%s: %" PRIu64 " partitions, %" PRIu64 " segments, %" PRIu64 " batches, %" PRIu64
           " records; %" PRIu64 " problems\n",
           dir, all.partitions, all.segments, all.batches, all.records, all.problems);
    return all.problems ? 1 : 0;
}

struct dump_ctx {
    const char *topic;
    long partition;
    int json;
};

/* Bytes as a JSON string body (json) or with C escapes: printable ASCII as is. */
static void print_bytes(const unsigned char *p, int32_t len, int json)
{
    for (int32_t i = 0; i < len; i++) {
        unsigned char c = p[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c >= 0x20 && c < 0x7f)
            putchar(c);
        else if (json)
            printf("\\u%04x", c);
        else
            printf("\\x%02x", c);
    }
}

static int dump_record(void *arg, const struct sb_record *rec)
{
    const struct dump_ctx *d = arg;
    if (d->json) {
        printf("{\"topic\":\"%s\",\"partition\":%ld,\"offset\":%" PRId64 ",\"timestamp\":%" PRId64
               ",\"key\":",
               d->topic, d->partition, rec->offset, rec->timestamp_ms);
        if (rec->key) {
            putchar('"');
            print_bytes(rec->key, rec->key_len, 1);
            putchar('"');
        } else {
            printf("null");
        }
        printf(",\"value\":");
        if (rec->value) {
            putchar('"');
            print_bytes(rec->value, rec->value_len, 1);
            putchar('"');
        } else {
            printf("null");
        }
        printf(",\"headers\":%d}\n", rec->header_count);
    } else {
        printf("%s %ld %" PRId64 " %" PRId64 " key=", d->topic, d->partition, rec->offset,
               rec->timestamp_ms);
        if (rec->key)
            print_bytes(rec->key, rec->key_len, 0);
        else
            printf("(null)");
        printf(" value=");
        if (rec->value)
            print_bytes(rec->value, rec->value_len, 0);
        else
            printf("(null)");
        putchar('\n');
    }
    return 0;
}

static void report_stderr(void *ctx, enum sb_log_level level, const char *msg)
{
    (void)ctx;
    (void)level;
    fprintf(stderr, "shardbus: log dump: %s\n", msg);
}

static int cmd_dump(const char *dir, const char *topic, long partition, int64_t from, int json)
{
    struct partition_dir *parts = NULL;
    size_t count = 0;
    int rc = list_partitions(dir, &parts, &count);
    if (rc) {
        fprintf(stderr, "shardbus: log dump: cannot read %s: %s\n", dir, strerror(-rc));
        return 1;
    }
    int status = 0;
    size_t matched = 0;
    for (size_t i = 0; i < count; i++) {
        if ((topic && strcmp(topic, parts[i].topic)) || (partition >= 0 && partition != parts[i].partition))
            continue;
        matched++;
        struct dump_ctx d = {parts[i].topic, parts[i].partition, json};
        rc = sb_log_read_partition(parts[i].path, from, dump_record, &d, report_stderr, NULL);
        if (rc) {
            fprintf(stderr, "shardbus: log dump: %s: %s\n", parts[i].path, strerror(-rc));
            status = 1;
        }
    }
    free(parts);
    if (!matched) {
        fprintf(stderr, "shardbus: log dump: no partition%s%s in %s\n", topic ? " of topic " : "",
                topic ? topic : "", dir);
        return 1;
    }
    return status;
}

static int parse_long(const char *flag, const char *s, long long min, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || *end || !*s || v < min) {
        fprintf(stderr, "shardbus: %s needs a whole number >= %lld, not \"%s\"\n", flag, min, s);
        return -1;
    }
    *out = v;
    return 0;
}

static int cmd_log(int argc, char **argv)
{
    if (argc < 2)
        return usage_error("log needs a command (verify or dump) and a DIR");
    const char *sub = argv[0], *dir = argv[1];
    if (!strcmp(sub, "verify")) {
        if (argc != 2)
            return usage_error("log verify takes only DIR, not \"%s\"", argv[2]);
        return cmd_verify(dir);
    }
    if (strcmp(sub, "dump"))
        return usage_error("unknown log command \"%s\"", sub);
    const char *topic = NULL;
    long long partition = -1, from = 0;
    int json = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--json")) {
            json = 1;
        } else if (!strcmp(a, "--topic") || !strcmp(a, "--partition") || !strcmp(a, "--from")) {
            if (i + 1 == argc)
                return usage_error("%s needs a value", a);
            const char *v = argv[++i];
            if (!strcmp(a, "--topic"))
                topic = v;
            else if (parse_long(a, v, 0, !strcmp(a, "--partition") ? &partition : &from))
                return 2;
        } else {
            return usage_error("unknown option \"%s\"", a);
        }
    }
    return cmd_dump(dir, topic, (long)partition, from, json);
}

int cli_log_main(int argc, char **argv)
{
    if (argc >= 1 && (!strcmp(argv[0], "--help") || !strcmp(argv[0], "-h"))) {
        fputs(usage_text, stdout);
        return 0;
    }
    return cmd_log(argc, argv);
}
