/*
 * options.h - what the shardbus CLI's commands share: the common options, a small table-driven
 * option parser, and the entry point of each command.
 *
 * Every command returns the process's exit status: 0 fine, 1 the operation failed (server
 * unreachable, topic missing, a message not delivered...), 2 bad usage. Messages go to stderr
 * as one line starting with "shardbus: ".
 */
#ifndef SB_CLI_OPTIONS_H
#define SB_CLI_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>

#define CLI_DEFAULT_BOOTSTRAP "127.0.0.1:9092"
#define CLI_DEFAULT_METRICS "127.0.0.1:9644"
#define CLI_DEFAULT_TIMEOUT_MS 10000
#define CLI_LIST_MAX 64

/* Options every server command takes. */
struct cli_common {
    const char *bootstrap; /* --bootstrap, else $SHARDBUS_BOOTSTRAP, else 127.0.0.1:9092 */
    const char *metrics;   /* --metrics (stats), default 127.0.0.1:9644 */
    long long timeout_ms;  /* --timeout-ms, default 10000 */
    bool timeout_given;    /* --timeout-ms was on the command line */
    bool json;             /* --json: machine-readable output */
    bool verbose;          /* --verbose: librdkafka's own log lines on stderr */
    const char *debug;     /* --debug CONTEXTS: librdkafka's debug contexts (implies verbose) */
};

enum cli_opt_kind {
    CLI_FLAG,   /* bool *dst set to true */
    CLI_STRING, /* const char **dst */
    CLI_INT,    /* long long *dst, within [min, max] */
    CLI_LIST,   /* struct cli_list *dst, repeatable */
};

struct cli_list {
    const char *v[CLI_LIST_MAX];
    int n;
};

struct cli_opt {
    const char *name; /* "--partitions" */
    enum cli_opt_kind kind;
    void *dst;
    long long min, max; /* CLI_INT only */
    bool *given;        /* optional: set when the option appears */
};

/* The usage text printed by --help (main.c). */
extern const char cli_usage_text[];

/*
 * cli_parse - parse argv (the words after the command's name) against @opts (terminated by an
 * entry with a NULL name) plus the common options --bootstrap, --timeout-ms, --json, --verbose
 * and --debug (checked against librdkafka's list of debug contexts).
 * Options take their value as the next word or after '=' (--partitions=3). Words that are not
 * options are positional: at least pos_min, at most pos_max, stored in pos[]. @cmd names the
 * command in messages ("topic create").
 *
 * Returns 0 when parsed, 2 after a one-line message on stderr naming the bad flag or value, or
 * -1 when --help was asked for (the usage is printed; the caller exits 0).
 */
int cli_parse(const char *cmd, int argc, char **argv, const struct cli_opt *opts,
              struct cli_common *common, const char **pos, int pos_min, int pos_max);

/* cli_common_init - the defaults above (reads SHARDBUS_BOOTSTRAP). */
void cli_common_init(struct cli_common *common);

/* A one-line usage complaint for @cmd on stderr; returns 2. */
__attribute__((format(printf, 2, 3))) int cli_usage_error(const char *cmd, const char *fmt, ...);

/* The commands (each file one concept). argv starts after the command's own name. */
int cli_log_main(int argc, char **argv);            /* log_commands.c */
int cli_topic_main(int argc, char **argv);          /* topic_commands.c */
int cli_produce_main(int argc, char **argv);        /* produce_command.c */
int cli_consume_main(int argc, char **argv);        /* consume_command.c */
int cli_stats_main(int argc, char **argv);          /* stats_command.c */

#endif
