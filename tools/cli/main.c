/*
 * main.c - the shardbus command-line tool: dispatch to the commands.
 *
 *   log verify|dump     a data_dir on disk (log_commands.c)
 *   topic ...           topics of a running server (topic_commands.c)
 *   produce, consume    messages to and from a running server (produce_command.c,
 *                       consume_command.c)
 *   stats               the server's /metrics (stats_command.c)
 *
 * Exit status: 0 fine, 1 the operation failed, 2 bad usage.
 */
#include <stdio.h>
#include <string.h>

#include <shardbus.h>

#include "options.h"

const char cli_usage_text[] =
    "usage: shardbus COMMAND [OPTIONS]\n"
    "\n"
    "Against a running shardbusd (or any Kafka broker):\n"
    "  topic create NAME [--partitions N] [--retention-ms MS] [--retention-bytes BYTES]\n"
    "                        create a topic (1 partition by default; -1 = keep for ever)\n"
    "  topic list            the topics and their partition counts\n"
    "  topic describe NAME   each partition's leader and earliest/latest offsets\n"
    "  topic delete NAME     delete a topic and its data\n"
    "  produce TOPIC [--value V | --keyed] [--key K] [--header K=V]... [--partition P]\n"
    "          [--acks 0|1|all] [--idempotent]\n"
    "                        one message per line of stdin (the newline removed), or just V;\n"
    "                        --keyed reads KEY<TAB>VALUE lines; --key gives every message key\n"
    "                        K; without --partition the key picks the partition. acks: all by\n"
    "                        default; --idempotent needs acks all. Waits for every delivery\n"
    "                        and exits 1 if any failed, naming the reason.\n"
    "  consume TOPIC [--from beginning|end|OFFSET] [--partition P] [--count N] [--follow]\n"
    "          [--keyed]\n"
    "                        print the messages of every partition (or P) from the beginning\n"
    "                        (default), the end or OFFSET: each value on a line (--keyed:\n"
    "                        KEY<TAB>VALUE). Stops after N messages, else at the end of every\n"
    "                        partition, or with --follow waits for more until Ctrl-C. No\n"
    "                        consumer group, nothing committed.\n"
    "  stats [--metrics HOST:PORT] [--raw]\n"
    "                        the server's metrics (http://HOST:PORT/metrics, default\n"
    "                        " CLI_DEFAULT_METRICS "), summarised; --raw: the Prometheus text\n"
    "\n"
    "Common options:\n"
    "  --bootstrap HOST:PORT  the server (default $SHARDBUS_BOOTSTRAP, else " CLI_DEFAULT_BOOTSTRAP
    ")\n"
    "  --timeout-ms N         how long to wait for the server: connecting, each request, each\n"
    "                         delivery; consume: for the next message (default 10000; with\n"
    "                         --follow, for ever unless given)\n"
    "  --json                 machine-readable output: one JSON document (consume: one object\n"
    "                         per message per line: topic, partition, offset, timestamp, key,\n"
    "                         value, headers; bytes that are not UTF-8 are base64, marked by\n"
    "                         \"key_encoding\"/\"value_encoding\":\"base64\")\n"
    "  --verbose              librdkafka's own log lines on stderr (warnings, errors)\n"
    "  --debug CONTEXTS       librdkafka's debug log on stderr (its \"debug\" property:\n"
    "                         e.g. broker,protocol,fetch, or all)\n"
    "\n"
    "On a data_dir (no server needed):\n"
    "  log verify DIR        check every partition log (CRC-32C, lengths, offsets, indexes)\n"
    "  log dump DIR [--topic TOPIC] [--partition N] [--from OFFSET] [--json]\n"
    "                        print the stored events\n"
    "\n"
    "  --help, --version\n"
    "\n"
    "Exit status: 0 fine, 1 the operation failed (server unreachable, topic missing, a\n"
    "message not delivered, a problem in the log), 2 bad usage.\n";

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "shardbus: a command is needed (shardbus --help lists them)\n");
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
        fputs(cli_usage_text, stdout);
        return 0;
    }
    if (!strcmp(cmd, "--version")) {
        printf("shardbus %s\n", sb_version_string());
        return 0;
    }
    if (!strcmp(cmd, "log"))
        return cli_log_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "topic"))
        return cli_topic_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "produce"))
        return cli_produce_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "consume"))
        return cli_consume_main(argc - 2, argv + 2);
    if (!strcmp(cmd, "stats"))
        return cli_stats_main(argc - 2, argv + 2);
    if (cmd[0] == '-')
        fprintf(stderr, "shardbus: unknown option \"%s\" (shardbus --help lists the options)\n",
                cmd);
    else
        fprintf(stderr, "shardbus: unknown command \"%s\" (shardbus --help lists them)\n", cmd);
    return 2;
}
