/* options.c - the CLI's table-driven option parser and common options (see options.h). */
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>

void cli_common_init(struct cli_common *common)
{
    memset(common, 0, sizeof(*common));
    const char *env = getenv("SHARDBUS_BOOTSTRAP");
    common->bootstrap = env && *env ? env : CLI_DEFAULT_BOOTSTRAP;
    common->metrics = CLI_DEFAULT_METRICS;
    common->timeout_ms = CLI_DEFAULT_TIMEOUT_MS;
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "shardbus: %s%s", cmd ? cmd : "", cmd ? ": " : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (shardbus --help lists the options)\n", stderr);
    return 2;
}

static int set_value(const char *cmd, const struct cli_opt *o, const char *v)
{
    switch (o->kind) {
    case CLI_STRING:
        if (!*v)
            return cli_usage_error(cmd, "%s needs a non-empty value", o->name);
        *(const char **)o->dst = v;
        return 0;
    case CLI_LIST: {
        struct cli_list *l = o->dst;
        if (l->n == CLI_LIST_MAX)
            return cli_usage_error(cmd, "%s given more than %d times", o->name, CLI_LIST_MAX);
        l->v[l->n++] = v;
        return 0;
    }
    case CLI_INT: {
        char *end;
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (errno || !*v || *end || x < o->min || x > o->max)
            return cli_usage_error(cmd, "%s needs a whole number from %lld to %lld, not \"%s\"",
                                   o->name, o->min, o->max, v);
        *(long long *)o->dst = x;
        return 0;
    }
    case CLI_FLAG:
        break;
    }
    return cli_usage_error(cmd, "%s takes no value", o->name);
}

int cli_parse(const char *cmd, int argc, char **argv, const struct cli_opt *opts,
              struct cli_common *common, const char **pos, int pos_min, int pos_max)
{
    const struct cli_opt common_opts[] = {
        {"--bootstrap", CLI_STRING, &common->bootstrap, 0, 0, NULL},
        {"--timeout-ms", CLI_INT, &common->timeout_ms, 1, 3600000, &common->timeout_given},
        {"--json", CLI_FLAG, &common->json, 0, 0, NULL},
        {"--verbose", CLI_FLAG, &common->verbose, 0, 0, NULL},
        {"--debug", CLI_STRING, &common->debug, 0, 0, NULL},
        {NULL, CLI_FLAG, NULL, 0, 0, NULL},
    };
    int npos = 0;
    bool only_positional = false;
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (only_positional || a[0] != '-' || !strcmp(a, "-")) {
            if (npos == pos_max)
                return pos_max ? cli_usage_error(cmd, "unexpected argument \"%s\"", a)
                               : cli_usage_error(cmd, "takes no argument, not \"%s\"", a);
            pos[npos++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            only_positional = true;
            continue;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            fputs(cli_usage_text, stdout);
            return -1;
        }
        const char *eq = strchr(a, '=');
        size_t name_len = eq ? (size_t)(eq - a) : strlen(a);
        const struct cli_opt *o = NULL;
        for (const struct cli_opt *t = opts; t && t->name && !o; t++)
            if (strlen(t->name) == name_len && !strncmp(t->name, a, name_len))
                o = t;
        for (const struct cli_opt *t = common_opts; t->name && !o; t++)
            if (strlen(t->name) == name_len && !strncmp(t->name, a, name_len))
                o = t;
        if (!o)
            return cli_usage_error(cmd, "unknown option \"%.*s\"", (int)name_len, a);
        if (o->given)
            *o->given = true;
        if (o->kind == CLI_FLAG) {
            if (eq)
                return cli_usage_error(cmd, "%s takes no value", o->name);
            *(bool *)o->dst = true;
            continue;
        }
        const char *v;
        if (eq) {
            v = eq + 1;
        } else {
            if (i + 1 == argc)
                return cli_usage_error(cmd, "%s needs a value", o->name);
            v = argv[++i];
        }
        int rc = set_value(cmd, o, v);
        if (rc)
            return rc;
    }
    if (common->debug) {
        char err[256];
        rd_kafka_conf_t *probe = rd_kafka_conf_new();
        rd_kafka_conf_res_t res =
            rd_kafka_conf_set(probe, "debug", common->debug, err, sizeof(err));
        rd_kafka_conf_destroy(probe);
        if (res != RD_KAFKA_CONF_OK)
            return cli_usage_error(cmd, "--debug: %s", err);
    }
    if (npos < pos_min)
        return cli_usage_error(cmd, "needs %s", pos_min == 1 ? "an argument" : "more arguments");
    for (int i = npos; i < pos_max; i++)
        pos[i] = NULL;
    return 0;
}
