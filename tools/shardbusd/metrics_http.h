/*
 * metrics_http.h - shardbusd's HTTP listener for Prometheus and health checks.
 *
 *   GET /metrics  200, the renderer's text, Content-Type: text/plain; version=0.0.4
 *   GET /healthz  200, "ok\n"
 *   HEAD on both  the same headers without the body
 *   other method on those paths 405, any other path 404, a malformed request 400, a request
 *   head over SBD_METRICS_REQUEST_MAX bytes 431.
 *
 * One thread of its own, off the hot path, serving one connection at a time with plain
 * non-blocking sockets and poll(): every answer is HTTP/1.1 with "Connection: close" (HTTP/1.0
 * clients too), and each connection gets timeout_ms in all to send its request and take the
 * answer, so a slow or silent client holds the listener for at most that long.
 */
#ifndef SBD_METRICS_HTTP_H
#define SBD_METRICS_HTTP_H

#include <stddef.h>
#include <stdint.h>

/** Largest request head (request line and headers) read. */
#define SBD_METRICS_REQUEST_MAX 8192

/** Produces the /metrics text: a malloc'd buffer in *text (freed by the listener) and its
 *  length in *len; returns 0 or a negative errno (the client then gets a 500). Called on the
 *  listener's thread. */
typedef int (*sbd_metrics_render_fn)(void *ctx, char **text, size_t *len);

struct sbd_metrics_http_config {
    /** Address (numeric IPv4 or IPv6, or a host name) and port; port 0 = any free port. */
    const char *host;
    uint16_t port;
    sbd_metrics_render_fn render;
    void *render_ctx;
    /** Time a connection has to send its request and read the answer. 0 = 5000 ms. */
    unsigned timeout_ms;
};

struct sbd_metrics_http;

/**
 * sbd_metrics_http_start - bind and listen on cfg's address, then serve on a new thread.
 * Returns 0 and *out, or a negative errno: -EADDRNOTAVAIL (the host does not resolve), the
 * errno of socket/bind/listen (-EADDRINUSE, -EACCES, ...), -ENOMEM, or pthread_create's.
 * Any thread; does not block beyond name resolution.
 */
int sbd_metrics_http_start(const struct sbd_metrics_http_config *cfg,
                           struct sbd_metrics_http **out);

/** sbd_metrics_http_port - the port listened on (the one chosen when cfg.port was 0). Any
 *  thread. */
uint16_t sbd_metrics_http_port(const struct sbd_metrics_http *m);

/**
 * sbd_metrics_http_stop - stop listening, drop the connection being served (if any), join the
 * thread and free @m (NULL: nothing). Any thread but the listener's; returns within a poll()
 * wake-up, not after a client's timeout.
 */
void sbd_metrics_http_stop(struct sbd_metrics_http *m);

#endif /* SBD_METRICS_HTTP_H */
