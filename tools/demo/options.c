/* The command line: --shards, --producers, --rate, --duration, --data-dir, --durability,
 * --help. */
#include "options.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <shardbus.h>

#include "events.h"

static void usage(void)
{
    printf("usage: " PROG " [options]\n"
           "Runs an embedded shardbus: producers publish rent payments and shopping-cart events,\n"
           "handlers derive orders and alerts, a consumer measures the alerts' latency.\n\n"
           "  --shards N      shard threads (default 2)\n"
           "  --producers N   producer threads, 1-%d (default 3)\n"
           "  --rate N        target events/s, all producers together; 0 = as fast as possible\n"
           "                  (default 200000)\n"
           "  --duration S    seconds to run; 0 = until Ctrl-C or SIGTERM (default 0)\n"
           "  --data-dir DIR  keep the events in a durable log in DIR (default: memory only);\n"
           "                  handlers and the consumer then see each event once it is durable\n"
           "  --durability D  with --data-dir: none, batch (fdatasync per group commit, the\n"
           "                  default) or interval (fdatasync every 100 ms)\n"
           "  -h, --help      this text\n\n"
           "Exit status: 0 ok, 1 library error, 2 usage error, 3 events lost or duplicated.\n",
           MAX_PRODUCERS);
}

__attribute__((format(printf, 1, 2), noreturn)) static void usage_error(const char *fmt, ...);

static void usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs(PROG ": ", stderr);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs(" (see --help)\n", stderr);
    exit(2);
}

static double parse_number(const char *flag, const char *text, double min, double max,
                           bool integer)
{
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || *end || errno || !(v >= min && v <= max) ||
        (integer && v != (double)(long long)v))
        usage_error("%s: expected %s from %g to %g, got '%s'", flag,
                    integer ? "an integer" : "a number", min, max, text);
    return v;
}

/* "--flag value" or "--flag=value": the value, or NULL when arg is not this flag. */
static const char *flag_value(const char *flag, int argc, char **argv, int *i)
{
    size_t len = strlen(flag);
    if (strncmp(argv[*i], flag, len) || (argv[*i][len] != '=' && argv[*i][len] != '\0'))
        return NULL;
    if (argv[*i][len] == '=')
        return argv[*i] + len + 1;
    if (*i + 1 >= argc)
        usage_error("%s needs a value", flag);
    return argv[++*i];
}

void parse_options(int argc, char **argv, struct options *opt)
{
    *opt = (struct options){.shards = 2, .producers = 3, .rate = 200000, .duration = 0,
                            .data_dir = NULL, .durability = SB_DURABILITY_BATCH};
    for (int i = 1; i < argc; i++) {
        const char *v;
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            usage();
            exit(0);
        } else if ((v = flag_value("--shards", argc, argv, &i))) {
            opt->shards = (unsigned)parse_number("--shards", v, 1, 1024, true);
        } else if ((v = flag_value("--producers", argc, argv, &i))) {
            opt->producers = (unsigned)parse_number("--producers", v, 1, MAX_PRODUCERS, true);
        } else if ((v = flag_value("--rate", argc, argv, &i))) {
            opt->rate = parse_number("--rate", v, 0, 1e9, false);
        } else if ((v = flag_value("--duration", argc, argv, &i))) {
            opt->duration = parse_number("--duration", v, 0, 1e7, false);
        } else if ((v = flag_value("--data-dir", argc, argv, &i))) {
            if (!*v)
                usage_error("--data-dir needs a folder");
            opt->data_dir = v;
        } else if ((v = flag_value("--durability", argc, argv, &i))) {
            if (!strcmp(v, "none"))
                opt->durability = SB_DURABILITY_NONE;
            else if (!strcmp(v, "batch"))
                opt->durability = SB_DURABILITY_BATCH;
            else if (!strcmp(v, "interval"))
                opt->durability = SB_DURABILITY_INTERVAL;
            else
                usage_error("--durability: expected none, batch or interval, got '%s'", v);
        } else {
            usage_error("unknown option '%s'", argv[i]);
        }
    }
}
