/*
 * kafka.h - the CLI's librdkafka handle: bounded timeouts, librdkafka's log kept off stderr
 * unless --verbose, and one clear line when the server cannot be reached.
 */
#ifndef SB_CLI_KAFKA_H
#define SB_CLI_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "options.h"

/*
 * cli_kafka_conf - a configuration for @common's bootstrap with the timeouts bounded by
 * --timeout-ms, librdkafka's log routed through --verbose and its errors remembered for
 * cli_kafka_unreachable(). Returns NULL after a message (cannot happen but for memory).
 */
rd_kafka_conf_t *cli_kafka_conf(const struct cli_common *common, const char *cmd);

/* Set one property; on failure prints "shardbus: CMD: NAME: why" and returns -1. */
int cli_kafka_set(rd_kafka_conf_t *conf, const char *cmd, const char *name, const char *value);

/*
 * cli_kafka_open - check that the bootstrap accepts connections (a plain TCP probe, so a
 * refused port is reported at once), create the handle of @type from @conf (consumed) and fetch
 * the metadata of every topic within --timeout-ms. On success returns the handle and *md (free
 * it with rd_kafka_metadata_destroy()). On failure prints one line
 * ("shardbus: cannot reach a server at HOST:PORT (connection refused)") and returns NULL.
 */
rd_kafka_t *cli_kafka_open(const struct cli_common *common, const char *cmd,
                           rd_kafka_type_t type, rd_kafka_conf_t *conf,
                           const struct rd_kafka_metadata **md);

/* The topic named @name in @md, or NULL. */
const struct rd_kafka_metadata_topic *cli_find_topic(const struct rd_kafka_metadata *md,
                                                     const char *name);

/* The last error librdkafka reported through its error callback ("" if none). */
const char *cli_kafka_last_error(void);

/* Print "shardbus: cannot reach a server at BOOTSTRAP (why)"; returns 1. */
int cli_kafka_unreachable(const struct cli_common *common, const char *why);

#endif
