/*
 * mock_broker.c - librdkafka's in-process mock Kafka cluster (one broker) as a program, to try
 * the server tests' client side without shardbusd:
 *
 *   sb_mock_broker [TOPIC:PARTITIONS...]    prints "bootstrap HOST:PORT", serves until SIGTERM
 *   SB_TEST_BOOTSTRAP=HOST:PORT tests/server/test_bad_input
 *
 * The mock is not shardbusd: it skips most validation (CRC, versions) and has no time index,
 * so the bad-input cases and timestamp lookups fail against it; the normal paths (the hand
 * encoded requests, librdkafka and kcat flows) can be checked. A development aid, not a test.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    char err[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
    if (!rk) {
        fprintf(stderr, "rd_kafka_new: %s\n", err);
        return 1;
    }
    rd_kafka_mock_cluster_t *mc = rd_kafka_mock_cluster_new(rk, 1);
    if (!mc) {
        fprintf(stderr, "rd_kafka_mock_cluster_new failed\n");
        return 1;
    }
    for (int i = 1; i < argc; i++) {
        char name[256];
        snprintf(name, sizeof name, "%s", argv[i]);
        char *colon = strchr(name, ':');
        int parts = 1;
        if (colon) {
            *colon = 0;
            parts = atoi(colon + 1);
        }
        rd_kafka_mock_topic_create(mc, name, parts, 1);
    }
    printf("bootstrap %s\n", rd_kafka_mock_cluster_bootstraps(mc));
    fflush(stdout);
    signal(SIGTERM, on_signal);
    signal(SIGINT, on_signal);
    while (!stop)
        pause();
    rd_kafka_mock_cluster_destroy(mc);
    rd_kafka_destroy(rk);
    return 0;
}
