/*
 * tcp_pump.c - shardbus-tcp-pump: the machine's loopback TCP bandwidth, one stream.
 *
 * A thread accepts one connection on 127.0.0.1 and reads into a 1 MiB buffer until EOF; the
 * main thread writes 128 KiB chunks for --seconds (default 3) and closes. Prints one JSON
 * object: bytes moved, seconds, GB/s and Gbit/s (as iperf3 -c 127.0.0.1 would measure,
 * without needing iperf3). Exit 1 on a socket error.
 *
 * Usage: shardbus-tcp-pump [SECONDS]
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

struct sink {
    int listen_fd;
    uint64_t bytes; /* read after pthread_join */
    uint64_t end_ns;
    int failed;
};

static void *sink_main(void *arg)
{
    struct sink *s = arg;
    int fd = accept(s->listen_fd, NULL, NULL);
    if (fd < 0) {
        s->failed = 1;
        return NULL;
    }
    char *buf = malloc(1 << 20);
    ssize_t n;
    while (buf && (n = read(fd, buf, 1 << 20)) > 0)
        s->bytes += (uint64_t)n;
    s->end_ns = now_ns();
    free(buf);
    close(fd);
    return NULL;
}

int main(int argc, char **argv)
{
    double seconds = argc > 1 ? atof(argv[1]) : 3.0;
    if (seconds <= 0 || argc > 2) {
        fprintf(stderr, "usage: shardbus-tcp-pump [SECONDS]\n");
        return 2;
    }
    struct sink s = {0};
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t alen = sizeof a;
    s.listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s.listen_fd < 0 || bind(s.listen_fd, (struct sockaddr *)&a, sizeof a) ||
        listen(s.listen_fd, 1) || getsockname(s.listen_fd, (struct sockaddr *)&a, &alen)) {
        perror("shardbus-tcp-pump: listen");
        return 1;
    }
    pthread_t t;
    pthread_create(&t, NULL, sink_main, &s);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a)) {
        perror("shardbus-tcp-pump: connect");
        return 1;
    }
    static char chunk[128 << 10];
    memset(chunk, 0x5a, sizeof chunk);
    uint64_t start = now_ns(), end = start + (uint64_t)(seconds * 1e9);
    while (now_ns() < end) {
        ssize_t n = write(fd, chunk, sizeof chunk);
        if (n < 0) {
            perror("shardbus-tcp-pump: write");
            return 1;
        }
    }
    close(fd);
    pthread_join(t, NULL);
    if (s.failed) {
        fprintf(stderr, "shardbus-tcp-pump: accept failed\n");
        return 1;
    }
    double secs = (double)(s.end_ns - start) / 1e9;
    double bps = (double)s.bytes / secs;
    printf("{\"bytes\": %llu, \"seconds\": %.3f, \"gbytes_per_s\": %.3f, \"gbit_per_s\": %.3f}\n",
           (unsigned long long)s.bytes, secs, bps / 1e9, bps * 8 / 1e9);
    close(s.listen_fd);
    return 0;
}
