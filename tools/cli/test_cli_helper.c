/*
 * test_cli_helper.c - what tools/cli/test_cli.sh needs around the CLI, without Python or a
 * server:
 *
 *   test_cli_helper free-port
 *       print a TCP port of 127.0.0.1 that nothing listens on (bound, then closed)
 *   test_cli_helper mock-broker TOPIC:PARTITIONS...
 *       run librdkafka's mock Kafka cluster (one broker) with those topics; print its bootstrap
 *       address on stdout, then serve until stdin is closed or SIGTERM
 *   test_cli_helper http FILE
 *       serve FILE as the answer to every HTTP request on 127.0.0.1 (a fake /metrics); print
 *       the port, then serve until SIGTERM
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

static int listen_any(int *port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || listen(fd, 16) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        perror("test_cli_helper: listen");
        exit(1);
    }
    *port = ntohs(a.sin_port);
    return fd;
}

static int cmd_free_port(void)
{
    int port, fd = listen_any(&port);
    close(fd);
    printf("%d\n", port);
    return 0;
}

static int cmd_mock_broker(int argc, char **argv)
{
    char err[256];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_conf_set(conf, "log_level", "0", err, sizeof(err));
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
    if (!rk) {
        fprintf(stderr, "test_cli_helper: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    if (!mc) {
        fprintf(stderr, "test_cli_helper: no mock cluster\n");
        return 1;
    }
    for (int i = 0; i < argc; i++) {
        char *colon = strrchr(argv[i], ':');
        if (!colon) {
            fprintf(stderr, "test_cli_helper: TOPIC:PARTITIONS, not %s\n", argv[i]);
            return 2;
        }
        *colon = 0;
        rd_kafka_resp_err_t e = rd_kafka_mock_topic_create(mc, argv[i], atoi(colon + 1), 1);
        if (e) {
            fprintf(stderr, "test_cli_helper: %s: %s\n", argv[i], rd_kafka_err2str(e));
            return 1;
        }
    }
    printf("%s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    char buf[64];
    while (!g_stop) {
        struct pollfd p = {.fd = 0, .events = POLLIN};
        if (poll(&p, 1, 200) > 0 && read(0, buf, sizeof(buf)) <= 0)
            break;
    }
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}

static int cmd_http(const char *file)
{
    FILE *f = fopen(file, "rb");
    if (!f) {
        perror(file);
        return 1;
    }
    static char body[1 << 20];
    size_t len = fread(body, 1, sizeof(body), f);
    fclose(f);
    int port, lfd = listen_any(&port);
    printf("%d\n", port);
    fflush(stdout);
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    while (!g_stop) {
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR)
                continue;
            perror("accept");
            return 1;
        }
        char req[4096];
        size_t got = 0;
        while (got < sizeof(req) - 1) { /* up to the end of the request's headers */
            ssize_t r = read(fd, req + got, sizeof(req) - 1 - got);
            if (r <= 0)
                break;
            got += (size_t)r;
            req[got] = 0;
            if (strstr(req, "\r\n\r\n"))
                break;
        }
        char hdr[256];
        int n = snprintf(hdr, sizeof(hdr),
                         "HTTP/1.1 200 OK\r\nContent-Type: text/plain; version=0.0.4\r\n"
                         "Content-Length: %zu\r\nConnection: close\r\n\r\n",
                         len);
        if (write(fd, hdr, (size_t)n) == n && write(fd, body, len) == (ssize_t)len)
            shutdown(fd, SHUT_WR);
        close(fd);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "free-port"))
        return cmd_free_port();
    if (argc >= 2 && !strcmp(argv[1], "mock-broker"))
        return cmd_mock_broker(argc - 2, argv + 2);
    if (argc == 3 && !strcmp(argv[1], "http"))
        return cmd_http(argv[2]);
    fprintf(stderr, "usage: test_cli_helper free-port | mock-broker TOPIC:N... | http FILE\n");
    return 2;
}
