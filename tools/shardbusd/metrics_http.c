/*
 * metrics_http.c - the /metrics and /healthz listener; see metrics_http.h.
 *
 * The thread waits in poll() on the listening socket and an eventfd that
 * sbd_metrics_http_stop() writes; while it serves a connection it polls that connection and
 * the same eventfd, against the connection's deadline, so neither a silent client nor a
 * shutdown waits on the other.
 */
#include "metrics_http.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "log.h"

#define DEFAULT_TIMEOUT_MS 5000

struct sbd_metrics_http {
    int listen_fd;
    int stop_fd; /* eventfd: readable once sbd_metrics_http_stop() wants the thread gone */
    uint16_t port;
    sbd_metrics_render_fn render;
    void *render_ctx;
    unsigned timeout_ms;
    pthread_t thread;
};

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Wait until @fd is ready for @events. Returns 1 (ready), 0 (deadline passed or stop asked). */
static int wait_fd(struct sbd_metrics_http *m, int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - now_ms();
        if (left <= 0)
            return 0;
        struct pollfd p[2] = {{.fd = fd, .events = events}, {.fd = m->stop_fd, .events = POLLIN}};
        int n = poll(p, 2, (int)left);
        if (n < 0 && errno != EINTR)
            return 0;
        if (n > 0 && p[1].revents)
            return 0;
        if (n > 0 && p[0].revents)
            return 1; /* POLLERR / POLLHUP too: the read or write that follows says what */
    }
}

static bool send_all(struct sbd_metrics_http *m, int fd, const char *data, size_t len,
                     int64_t deadline)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_fd(m, fd, POLLOUT, deadline))
                return false;
        } else {
            return false;
        }
    }
    return true;
}

static void respond(struct sbd_metrics_http *m, int fd, int64_t deadline, int status,
                    const char *reason, const char *content_type, const char *extra_headers,
                    const char *body, size_t body_len, bool head_only)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s"
                     "Connection: close\r\n\r\n",
                     status, reason, content_type, body_len, extra_headers);
    if (n < 0 || (size_t)n >= sizeof(head))
        return;
    if (send_all(m, fd, head, (size_t)n, deadline) && !head_only && body_len)
        send_all(m, fd, body, body_len, deadline);
}

static void respond_text(struct sbd_metrics_http *m, int fd, int64_t deadline, int status,
                         const char *reason, const char *extra_headers, const char *body)
{
    respond(m, fd, deadline, status, reason, "text/plain; charset=utf-8", extra_headers, body,
            strlen(body), false);
}

/* Where the request head ends (after its empty line), or NULL while incomplete. */
static const char *head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return buf + i + 2;
        if (buf[i + 1] == '\r' && i + 2 < len && buf[i + 2] == '\n')
            return buf + i + 3;
    }
    return NULL;
}

static bool is_token_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* The request line "METHOD SP TARGET SP HTTP/1.x": 0 with the parts cut out (NUL-terminated in
 * @line), or the status to answer (400, 505). */
static int parse_request_line(char *line, char **method, char **path)
{
    char *sp1 = strchr(line, ' ');
    if (!sp1 || sp1 == line)
        return 400;
    *sp1 = '\0';
    for (char *p = line; *p; p++)
        if (!is_token_char(*p))
            return 400;
    char *target = sp1 + 1;
    char *sp2 = strchr(target, ' ');
    if (!sp2 || target[0] != '/')
        return 400;
    *sp2 = '\0';
    const char *version = sp2 + 1;
    for (const char *p = target; *p; p++)
        if ((unsigned char)*p <= 0x20 || *p == 0x7f)
            return 400;
    if (strncmp(version, "HTTP/", 5) || strchr(version, ' '))
        return 400;
    if (strcmp(version, "HTTP/1.0") && strcmp(version, "HTTP/1.1"))
        return 505;
    char *query = strchr(target, '?');
    if (query)
        *query = '\0';
    *method = line;
    *path = target;
    return 0;
}

static void serve(struct sbd_metrics_http *m, int fd)
{
    int64_t deadline = now_ms() + m->timeout_ms;
    char buf[SBD_METRICS_REQUEST_MAX + 1];
    size_t len = 0;
    for (;;) {
        if (head_end(buf, len))
            break;
        if (len == SBD_METRICS_REQUEST_MAX) {
            respond_text(m, fd, deadline, 431, "Request Header Fields Too Large", "",
                         "request head too large\n");
            return;
        }
        ssize_t n = recv(fd, buf + len, SBD_METRICS_REQUEST_MAX - len, 0);
        if (n > 0) {
            len += (size_t)n;
        } else if (n == 0) {
            if (len)
                respond_text(m, fd, deadline, 400, "Bad Request", "", "incomplete request\n");
            return;
        } else if (errno == EINTR) {
            continue;
        } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_fd(m, fd, POLLIN, deadline))
                return; /* too slow, or shutting down: just close */
        } else {
            return;
        }
    }
    buf[len] = '\0';
    char *eol = memchr(buf, '\n', len);
    *eol = '\0';
    if (eol > buf && eol[-1] == '\r')
        eol[-1] = '\0';
    char *method, *path;
    int status = parse_request_line(buf, &method, &path);
    if (status == 505) {
        respond_text(m, fd, deadline, 505, "HTTP Version Not Supported", "",
                     "HTTP/1.0 or HTTP/1.1 only\n");
        return;
    }
    if (status) {
        respond_text(m, fd, deadline, 400, "Bad Request", "", "bad request\n");
        return;
    }
    bool is_metrics = !strcmp(path, "/metrics"), is_health = !strcmp(path, "/healthz");
    if (!is_metrics && !is_health) {
        respond_text(m, fd, deadline, 404, "Not Found", "", "not found: try /metrics or /healthz\n");
        return;
    }
    bool head = !strcmp(method, "HEAD");
    if (!head && strcmp(method, "GET")) {
        respond_text(m, fd, deadline, 405, "Method Not Allowed", "Allow: GET, HEAD\r\n",
                     "method not allowed\n");
        return;
    }
    if (is_health) {
        respond(m, fd, deadline, 200, "OK", "text/plain; charset=utf-8", "", "ok\n", 3, head);
        return;
    }
    char *text = NULL;
    size_t text_len = 0;
    int rc = m->render(m->render_ctx, &text, &text_len);
    if (rc) {
        sbd_log(SB_LOG_ERROR, "metrics: rendering /metrics failed: %s", strerror(-rc));
        respond_text(m, fd, deadline, 500, "Internal Server Error", "", "metrics unavailable\n");
        return;
    }
    respond(m, fd, deadline, 200, "OK", "text/plain; version=0.0.4", "", text,
            text_len, head);
    free(text);
}

static void *listener_main(void *arg)
{
    struct sbd_metrics_http *m = arg;
    bool accept_failing = false;
    for (;;) {
        struct pollfd p[2] = {{.fd = m->listen_fd, .events = POLLIN},
                              {.fd = m->stop_fd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            sbd_log(SB_LOG_ERROR, "metrics: poll failed: %s; listener stopped", strerror(errno));
            return NULL;
        }
        if (p[1].revents)
            return NULL;
        if (!p[0].revents)
            continue;
        int fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ||
                errno == ECONNABORTED)
                continue;
            /* EMFILE, ENFILE, ENOBUFS...: say so once, then retry every 100 ms. */
            if (!accept_failing)
                sbd_log(SB_LOG_WARN, "metrics: accept failed: %s; retrying", strerror(errno));
            accept_failing = true;
            struct pollfd s = {.fd = m->stop_fd, .events = POLLIN};
            if (poll(&s, 1, 100) > 0)
                return NULL;
            continue;
        }
        if (accept_failing)
            sbd_log(SB_LOG_INFO, "metrics: accepting connections again");
        accept_failing = false;
        serve(m, fd);
        shutdown(fd, SHUT_WR);
        close(fd);
    }
}

/* A listening socket on host:port, or a negative errno. */
static int listen_on(const char *host, uint16_t port, uint16_t *bound_port)
{
    char service[8];
    snprintf(service, sizeof(service), "%u", port);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res;
    if (getaddrinfo(host, service, &hints, &res))
        return -EADDRNOTAVAIL;
    int err = -EADDRNOTAVAIL;
    int fd = -1;
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                    ai->ai_protocol);
        if (fd < 0) {
            err = -errno;
            continue;
        }
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 64) == 0)
            break;
        err = -errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0)
        return err;
    struct sockaddr_storage ss;
    socklen_t sl = sizeof(ss);
    if (getsockname(fd, (struct sockaddr *)&ss, &sl)) {
        err = -errno;
        close(fd);
        return err;
    }
    *bound_port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                                 : ((struct sockaddr_in *)&ss)->sin_port);
    return fd;
}

int sbd_metrics_http_start(const struct sbd_metrics_http_config *cfg,
                           struct sbd_metrics_http **out)
{
    struct sbd_metrics_http *m = calloc(1, sizeof(*m));
    if (!m)
        return -ENOMEM;
    m->render = cfg->render;
    m->render_ctx = cfg->render_ctx;
    m->timeout_ms = cfg->timeout_ms ? cfg->timeout_ms : DEFAULT_TIMEOUT_MS;
    m->listen_fd = listen_on(cfg->host, cfg->port, &m->port);
    if (m->listen_fd < 0) {
        int rc = m->listen_fd;
        free(m);
        return rc;
    }
    m->stop_fd = eventfd(0, EFD_CLOEXEC);
    if (m->stop_fd < 0) {
        int rc = -errno;
        close(m->listen_fd);
        free(m);
        return rc;
    }
    int rc = pthread_create(&m->thread, NULL, listener_main, m);
    if (rc) {
        close(m->stop_fd);
        close(m->listen_fd);
        free(m);
        return -rc;
    }
    *out = m;
    return 0;
}

uint16_t sbd_metrics_http_port(const struct sbd_metrics_http *m)
{
    return m->port;
}

void sbd_metrics_http_stop(struct sbd_metrics_http *m)
{
    if (!m)
        return;
    uint64_t one = 1;
    while (write(m->stop_fd, &one, sizeof(one)) < 0 && errno == EINTR)
        ;
    pthread_join(m->thread, NULL);
    close(m->stop_fd);
    close(m->listen_fd);
    free(m);
}
