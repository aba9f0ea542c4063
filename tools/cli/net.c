/* net.c - plain TCP connect with a deadline and a reason in words (see net.h). */
#define _GNU_SOURCE
#include "net.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

long long cli_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int cli_split_hostport(const char *hostport, char *host, size_t host_size, char *port,
                       size_t port_size)
{
    const char *colon, *h = hostport;
    size_t hlen;
    if (*h == '[') {
        const char *close = strchr(h, ']');
        if (!close || close[1] != ':')
            return -1;
        h++;
        hlen = (size_t)(close - h);
        colon = close + 1;
    } else {
        colon = strrchr(h, ':');
        if (!colon)
            return -1;
        hlen = (size_t)(colon - h);
    }
    char *end;
    long p = strtol(colon + 1, &end, 10);
    if (!colon[1] || *end || p < 1 || p > 65535 || hlen == 0 || hlen >= host_size)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = 0;
    snprintf(port, port_size, "%ld", p);
    return 0;
}

/* strerror in lower case, as it reads inside a sentence: "connection refused". */
static void reason_from_errno(int err, char *why, size_t why_size)
{
    snprintf(why, why_size, "%s", strerror(err));
    if (why[0] && isupper((unsigned char)why[0]) && !isupper((unsigned char)why[1]))
        why[0] = (char)tolower((unsigned char)why[0]);
}

static int connect_one(const struct addrinfo *ai, long long deadline, long long timeout_ms,
                       char *why, size_t why_size)
{
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC | SOCK_NONBLOCK,
                    ai->ai_protocol);
    if (fd < 0) {
        reason_from_errno(errno, why, why_size);
        return -1;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        goto connected;
    if (errno != EINPROGRESS) {
        reason_from_errno(errno, why, why_size);
        close(fd);
        return -1;
    }
    for (;;) {
        long long left = deadline - cli_now_ms();
        if (left <= 0) {
            snprintf(why, why_size, "no answer within %lld ms", timeout_ms);
            close(fd);
            return -1;
        }
        struct pollfd pfd = {.fd = fd, .events = POLLOUT};
        int n = poll(&pfd, 1, (int)left);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            continue; /* the deadline check above ends it */
        int err = 0;
        socklen_t len = sizeof(err);
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err) {
            reason_from_errno(err, why, why_size);
            close(fd);
            return -1;
        }
        break;
    }
connected:;
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    return fd;
}

int cli_tcp_connect(const char *hostport, long long timeout_ms, char *why, size_t why_size)
{
    char host[256], port[16];
    if (cli_split_hostport(hostport, host, sizeof(host), port, sizeof(port))) {
        snprintf(why, why_size, "not a HOST:PORT address");
        return -1;
    }
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
    struct addrinfo *res;
    int gai = getaddrinfo(host, port, &hints, &res);
    if (gai) {
        snprintf(why, why_size, "unknown host: %s", gai_strerror(gai));
        return -1;
    }
    long long deadline = cli_now_ms() + timeout_ms;
    int fd = -1;
    for (const struct addrinfo *ai = res; ai && fd < 0; ai = ai->ai_next)
        fd = connect_one(ai, deadline, timeout_ms, why, why_size);
    freeaddrinfo(res);
    return fd;
}

int cli_probe_bootstrap(const char *list, long long timeout_ms, char *why, size_t why_size)
{
    char one[300];
    const char *p = list;
    snprintf(why, why_size, "no address given");
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n > 0 && n < sizeof(one)) {
            memcpy(one, p, n);
            one[n] = 0;
            char *s = one;
            while (*s == ' ')
                s++;
            const char *scheme = strstr(s, "://"); /* "PLAINTEXT://host:port" */
            if (scheme)
                s += (scheme - s) + 3;
            int fd = cli_tcp_connect(s, timeout_ms, why, why_size);
            if (fd >= 0) {
                close(fd);
                return 0;
            }
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return -1;
}
