/*
 * server.h - the Kafka wire-protocol server on top of a bus (the engine of shardbusd).
 *
 * The network loop runs on the bus's own pinned shard threads, in each shard's io_uring (the
 * one that writes its log): every shard has its own SO_REUSEPORT listener with a multishot
 * accept, and each connection it accepts stays on that shard (multishot recv into a provided
 * buffer ring, batched sends). A request for a partition another shard owns crosses to that
 * shard through the shard-to-shard SPSC rings and its answer comes back the same way; no lock is
 * taken on the hot path. See server.c for the life of a request.
 *
 * The bus must have a data_dir (the server stores Kafka record batches as received and serves
 * them from the log).
 */
#ifndef SB_SERVER_H
#define SB_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "shardbus.h"

struct sb_server;

struct sb_server_config {
    /** Address to listen on (numeric IPv4 or IPv6, or a host name) and port. Default
     *  127.0.0.1:9092. */
    const char *listen_host;
    uint16_t listen_port;
    /** Host and port advertised in Metadata (clients connect there). NULL / 0 = the listen
     *  address. */
    const char *advertised_host;
    uint16_t advertised_port;
    /** Largest record batch accepted in a Produce (Kafka's message.max.bytes); larger gets
     *  MESSAGE_TOO_LARGE. Default 1048588. */
    size_t max_message_bytes;
    /** Largest request frame; a larger size closes the connection. Default 100 MiB (Kafka's
     *  socket.request.max.bytes). */
    size_t max_request_bytes;
    /** Connections open at once (all shards together); more are closed at accept with a log
     *  line. Default 10000. */
    unsigned max_connections;
    /** Create a topic on its first Produce or Metadata request naming it. Default true. */
    bool auto_create_topics;
    /** Partitions of a topic created automatically. Default 1. */
    unsigned default_partitions;
    /** One line per notable event (connections refused, bad requests with the peer, limits);
     *  may be NULL. Called from shard threads; must not block for long. */
    sb_log_fn log_fn;
    void *log_ctx;
};

/** sb_server_config_init - the defaults documented on each field. Any thread. */
void sb_server_config_init(struct sb_server_config *cfg);

/**
 * sb_server_start - listen on cfg's address and serve the Kafka protocol from @bus's shards.
 * Returns 0 and *out, or a negative errno: -EINVAL (bus without data_dir, bad config),
 * -EADDRINUSE / -EACCES / -EADDRNOTAVAIL (the listener), -ENOMEM. Any thread but a shard's;
 * blocks until every shard listens.
 */
int sb_server_start(struct sb_bus *bus, const struct sb_server_config *cfg,
                    struct sb_server **out);

/**
 * sb_server_stop - stop accepting, finish the requests in flight (a Fetch waiting for data is
 * answered with what there is), send their responses, close every connection and free the
 * server. The bus stays open (sb_bus_close() then flushes and syncs the log). Blocks until
 * every shard has closed its connections and finished the operations of their requests (even
 * those that run on other shards), then detaches the server from the shards.
 * Returns 0, -EINVAL (@srv NULL), or -ETIMEDOUT when connections are still busy after 30 s
 * (a client that does not read its answers, for example; a log line says so): the server is
 * then not freed and stays attached to the shards; the caller must not use @srv again, and may
 * still close the bus (which ends the shards, and the server's sockets with them, after
 * writing and syncing the log). Same thread rules as sb_server_start().
 */
int sb_server_stop(struct sb_server *srv);

/**
 * sb_server_metrics - write the server's and the bus's metrics in the Prometheus text format
 * (version 0.0.4) into a malloc'd buffer: *text (NUL-terminated) and *len. The caller frees it.
 * Returns 0 or -ENOMEM. Any thread (counters are read with relaxed atomic loads: each value is
 * exact, a set of values is not a snapshot).
 */
int sb_server_metrics(struct sb_server *srv, char **text, size_t *len);

#endif /* SB_SERVER_H */
