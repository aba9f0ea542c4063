/*
 * test_metrics_http.c - the metrics listener with a stand-in renderer (no live server): the
 * answers to /metrics, /healthz, HEAD, other paths and methods, malformed and oversized
 * requests, HTTP/1.0 and 1.1; a silent client is dropped after the timeout while the next
 * client is then served; stop returns at once even with a client connected; a failing renderer
 * gives 500.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "metrics_http.h"

static const char metrics_text[] = "# TYPE sb_events_in_total counter\nsb_events_in_total 42\n";
static bool render_fails;
static int render_calls;

static int render(void *ctx, char **text, size_t *len)
{
    CHECK(ctx == (void *)&render_calls);
    render_calls++;
    if (render_fails)
        return -ENOMEM;
    *text = strdup(metrics_text);
    CHECK(*text);
    *len = strlen(metrics_text);
    return 0;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int connect_to(int family, uint16_t port)
{
    int fd = socket(family, SOCK_STREAM, 0);
    CHECK(fd >= 0);
    int rc;
    if (family == AF_INET6) {
        struct sockaddr_in6 a = {.sin6_family = AF_INET6, .sin6_port = htons(port),
                                 .sin6_addr = IN6ADDR_LOOPBACK_INIT};
        rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    } else {
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                                .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
    }
    CHECK_EQ(rc, 0);
    return fd;
}

/* Everything the server sends until it closes (at most 3 s). */
static char *read_all(int fd, size_t *len)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap + 1);
    CHECK(buf);
    long long deadline = now_ms() + 3000;
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int left = (int)(deadline - now_ms());
        CHECK(left > 0);
        CHECK(poll(&p, 1, left) == 1);
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r < 0 && errno == ECONNRESET)
            break;
        CHECK(r >= 0);
        if (r == 0)
            break;
        n += (size_t)r;
        CHECK(n < cap);
    }
    buf[n] = '\0';
    *len = n;
    return buf;
}

/* Send @request, return the whole answer. */
static char *exchange(uint16_t port, const char *request, size_t request_len)
{
    int fd = connect_to(AF_INET, port);
    CHECK_EQ(send(fd, request, request_len, MSG_NOSIGNAL), (ssize_t)request_len);
    size_t len;
    char *answer = read_all(fd, &len);
    close(fd);
    return answer;
}

static void expect(uint16_t port, const char *request, const char *status_line,
                   const char *needle)
{
    char *a = exchange(port, request, strlen(request));
    if (strncmp(a, status_line, strlen(status_line)) || (needle && !strstr(a, needle))) {
        fprintf(stderr, "request %s\nanswer %s\nexpected %s / %s\n", request, a, status_line,
                needle ? needle : "");
        abort();
    }
    CHECK(strstr(a, "\r\nConnection: close\r\n"));
    free(a);
}

static void test_answers(uint16_t port)
{
    char expected[512];
    snprintf(expected, sizeof(expected),
             "Content-Type: text/plain; version=0.0.4\r\nContent-Length: %zu\r\n"
             "Connection: close\r\n\r\n%s",
             strlen(metrics_text), metrics_text);
    expect(port, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 200 OK\r\n", expected);
    expect(port, "GET /metrics?name=x HTTP/1.0\r\n\r\n", "HTTP/1.1 200 OK\r\n", expected);
    expect(port, "GET /metrics HTTP/1.0\n\n", "HTTP/1.1 200 OK\r\n", expected); /* bare LF */
    expect(port, "GET /healthz HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n", "HTTP/1.1 200 OK",
           "Content-Length: 3\r\nConnection: close\r\n\r\nok\n");
    char *a = exchange(port, "HEAD /healthz HTTP/1.1\r\n\r\n", 26);
    CHECK(!strncmp(a, "HTTP/1.1 200 OK", 15));
    CHECK(strstr(a, "Content-Length: 3\r\n"));
    CHECK(!strcmp(strstr(a, "\r\n\r\n"), "\r\n\r\n")); /* no body */
    free(a);
    expect(port, "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found", NULL);
    expect(port, "GET /metricsx HTTP/1.1\r\n\r\n", "HTTP/1.1 404 Not Found", NULL);
    expect(port, "POST /metrics HTTP/1.1\r\nContent-Length: 0\r\n\r\n",
           "HTTP/1.1 405 Method Not Allowed", "Allow: GET, HEAD\r\n");
    expect(port, "garbage\r\n\r\n", "HTTP/1.1 400 Bad Request", NULL);
    expect(port, "GET /metrics\r\n\r\n", "HTTP/1.1 400 Bad Request", NULL); /* HTTP/0.9 */
    expect(port, "GET metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request", NULL);
    expect(port, "GET /metrics FTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request", NULL);
    expect(port, "G(T /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request", NULL);
    expect(port, "GET /metrics HTTP/2.0\r\n\r\n", "HTTP/1.1 505", NULL);

    /* A request head over the limit: 431, without waiting for its end. */
    size_t big = SBD_METRICS_REQUEST_MAX + 100;
    char *req = malloc(big);
    CHECK(req);
    memcpy(req, "GET /metrics HTTP/1.1\r\nX: ", 26);
    memset(req + 26, 'a', big - 26);
    a = exchange(port, req, big);
    CHECK(!strncmp(a, "HTTP/1.1 431 ", 13));
    free(a);
    free(req);

    /* Half a request, then the client shuts its side: 400. */
    int fd = connect_to(AF_INET, port);
    CHECK_EQ(send(fd, "GET /met", 8, 0), 8);
    shutdown(fd, SHUT_WR);
    size_t len;
    a = read_all(fd, &len);
    CHECK(!strncmp(a, "HTTP/1.1 400 ", 13));
    free(a);
    close(fd);

    render_fails = true;
    expect(port, "GET /metrics HTTP/1.1\r\n\r\n", "HTTP/1.1 500 ", NULL);
    render_fails = false;
}

/* A client that sends half a request and waits is dropped after the timeout (300 ms here);
 * a client queued behind it is served then. */
static void test_slow_client(uint16_t port)
{
    int slow = connect_to(AF_INET, port);
    CHECK_EQ(send(slow, "GET /metr", 9, 0), 9);
    long long t0 = now_ms();
    char *a = exchange(port, "GET /healthz HTTP/1.1\r\n\r\n", 25);
    CHECK(!strncmp(a, "HTTP/1.1 200 OK", 15));
    free(a);
    size_t len;
    a = read_all(slow, &len);
    CHECK_EQ(len, 0); /* closed without an answer */
    long long waited = now_ms() - t0;
    CHECK(waited >= 200 && waited < 2500);
    free(a);
    close(slow);
}

int main(void)
{
    struct sbd_metrics_http *m;
    struct sbd_metrics_http_config cfg = {.host = "127.0.0.1", .port = 0, .render = render,
                                          .render_ctx = &render_calls, .timeout_ms = 300};
    CHECK_EQ(sbd_metrics_http_start(&cfg, &m), 0);
    uint16_t port = sbd_metrics_http_port(m);
    CHECK(port != 0);

    /* The same port again: EADDRINUSE, reported, not fatal to the first. */
    struct sbd_metrics_http *m2;
    struct sbd_metrics_http_config busy = cfg;
    busy.port = port;
    CHECK_EQ(sbd_metrics_http_start(&busy, &m2), -EADDRINUSE);
    busy.host = "no-such-host.invalid";
    CHECK_EQ(sbd_metrics_http_start(&busy, &m2), -EADDRNOTAVAIL);

    test_answers(port);
    test_slow_client(port);
    CHECK(render_calls >= 4);

    /* Stop while a client sits connected and silent: returns well before its timeout. */
    sbd_metrics_http_stop(m);
    cfg.timeout_ms = 10000;
    CHECK_EQ(sbd_metrics_http_start(&cfg, &m), 0);
    int idle = connect_to(AF_INET, sbd_metrics_http_port(m));
    CHECK_EQ(send(idle, "GET", 3, 0), 3);
    usleep(100 * 1000); /* let the listener pick it up */
    long long t0 = now_ms();
    sbd_metrics_http_stop(m);
    CHECK(now_ms() - t0 < 1000);
    close(idle);

    /* IPv6 loopback, when the machine has it. */
    cfg.host = "::1";
    int rc = sbd_metrics_http_start(&cfg, &m);
    if (rc == 0) {
        int fd = connect_to(AF_INET6, sbd_metrics_http_port(m));
        CHECK_EQ(send(fd, "GET /healthz HTTP/1.0\r\n\r\n", 25, 0), 25);
        size_t len;
        char *a = read_all(fd, &len);
        CHECK(!strncmp(a, "HTTP/1.1 200 OK", 15));
        free(a);
        close(fd);
        sbd_metrics_http_stop(m);
    } else {
        printf("test_metrics_http: no IPv6 loopback (%s), IPv6 part skipped\n", strerror(-rc));
    }
    printf("test_metrics_http: ok\n");
    return 0;
}
