/*
 * net.h - plain TCP for the CLI: connect to HOST:PORT within a deadline, with the reason in
 * words when it fails (the reachability probe before librdkafka, and the stats command's HTTP).
 */
#ifndef SB_CLI_NET_H
#define SB_CLI_NET_H

#include <stddef.h>

/*
 * cli_split_hostport - "host:port", "[v6]:port" into host (without brackets) and port.
 * Returns 0, or -1 when the port is missing or not a number from 1 to 65535.
 */
int cli_split_hostport(const char *hostport, char *host, size_t host_size, char *port,
                       size_t port_size);

/*
 * cli_tcp_connect - connect to one "host:port" (every address it resolves to, in turn) within
 * timeout_ms. Returns a connected, blocking socket, or -1 with the reason in why ("connection
 * refused", "no answer within 2000 ms", "unknown host: ...").
 */
int cli_tcp_connect(const char *hostport, long long timeout_ms, char *why, size_t why_size);

/*
 * cli_probe_bootstrap - whether any of a comma-separated list of "host:port" accepts a TCP
 * connection within timeout_ms (the connection is closed at once). Returns 0, or -1 with the
 * reason of the last one that failed in why.
 */
int cli_probe_bootstrap(const char *list, long long timeout_ms, char *why, size_t why_size);

/* Milliseconds on the monotonic clock. */
long long cli_now_ms(void);

#endif
