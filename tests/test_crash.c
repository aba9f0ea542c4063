/*
 * test_crash.c - what a durable bus acknowledged survives SIGKILL.
 *
 * Each round, a child process opens the bus on the same data_dir (SB_DURABILITY_BATCH),
 * publishes events (value = round, sequence number and bytes derived from both) with an ack
 * callback (sb_producer_poll(), never a blocking flush) and, after each burst is acknowledged,
 * tells the parent through a pipe how many events of this round are acknowledged and the
 * offset the callback reported for the last of them. The parent SIGKILLs it at a random
 * moment, reopens the data_dir itself and checks that the log holds, in offset order and
 * without a gap, every earlier round's events followed by a prefix of this round's that
 * includes every acknowledged one, each byte for byte, the last acknowledged one at the offset
 * its callback reported; then runs `shardbus log verify` on the folder.
 *
 * In odd rounds the child makes every group commit in flight count as slow (the shards' test
 * hook slow_group_test_ns), so a small group goes beside it as soon as the older group's
 * writes are done: a kill can then find two group commits in flight. The parent checks that
 * such groups were submitted.
 *
 * Usage: test_crash PATH_TO_SHARDBUS_TOOL [rounds] (default 20)
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <shardbus.h>

#include "bus.h"
#include "check.h"
#include "shard.h"
#include "test_shard_hooks.h"

#define TOPIC "payments"

static size_t make_value(uint32_t round, uint64_t seq, unsigned char *v)
{
    uint64_t tag = (uint64_t)round << 40 | seq;
    size_t len = 16 + test_mix64(tag) % 200;
    memcpy(v, &round, 4);
    memcpy(v + 4, &seq, 8);
    for (size_t i = 12; i < len; i++)
        v[i] = (unsigned char)test_mix64(tag * 31 + i);
    return len;
}

static void print_report(void *ctx, enum sb_log_level level, const char *msg)
{
    (void)ctx;
    fprintf(stderr, "bus report [%d]: %s\n", (int)level, msg);
}

static void open_bus(const char *dir, struct sb_bus **bus)
{
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = 2;
    cfg.data_dir = dir;
    cfg.durability = SB_DURABILITY_BATCH;
    cfg.segment_bytes = 256 * 1024;
    cfg.write_buffer_bytes = 1 << 20;
    cfg.log_fn = print_report;
    int rc = sb_bus_open(&cfg, bus);
    if (rc) {
        fprintf(stderr, "test_crash: sb_bus_open(%s): %s\n", dir, strerror(-rc));
        exit(1);
    }
}

/* What the child tells the parent: events of this round acknowledged, and the offset its
 * ack callback reported for the last of them. */
struct ack_report {
    uint64_t acked;
    int64_t last_offset;
    uint64_t beside_slow; /* groups the child's shards submitted beside a slow one so far */
};

/* The child's ack callback: each event once, in publish order, written (opaque: seq + 1). */
static void child_on_ack(void *ctx, const struct sb_ack *ack)
{
    struct ack_report *r = ctx;
    uint64_t seq = (uint64_t)(uintptr_t)ack->opaque - 1;
    if (ack->error || seq != r->acked || ack->offset < 0)
        exit(1);
    r->acked = seq + 1;
    r->last_offset = ack->offset;
}

/* The child: publish forever, report acknowledgements. Killed by the parent. */
static void child_main(const char *dir, uint32_t round, int report_fd)
{
    struct sb_bus *bus;
    open_bus(dir, &bus);
    int rc = sb_topic_create(bus, TOPIC, 1);
    if (rc && rc != -EEXIST)
        exit(1);
    if (round % 2 == 1)
        for (uint32_t i = 0; i < bus->shard_count; i++)
            if (sb_shard_call(bus->shards[i], test_set_slow_group_ns, &(int64_t){1}))
                exit(1);
    struct ack_report report = {0, -1, 0};
    struct sb_producer_config pc;
    sb_producer_config_init(&pc);
    pc.ack_fn = child_on_ack;
    pc.ack_ctx = &report;
    struct sb_producer *p;
    if (sb_producer_open_with(bus, &pc, &p))
        exit(1);
    uint64_t seq = 0;
    for (;;) {
        /* A burst, then poll until the callback has acknowledged all of it. */
        uint64_t burst = 1 + test_mix64(seq + round) % 500;
        for (uint64_t k = 0; k < burst; k++, seq++) {
            unsigned char v[256];
            size_t len = make_value(round, seq, v);
            while ((rc = sb_publish_with(p, TOPIC, SB_PARTITION_ANY, "tenant", 6, v, len,
                                         (void *)(uintptr_t)(seq + 1))) == -EAGAIN)
                if (sb_producer_poll(p, 0) < 0)
                    exit(1);
            if (rc)
                exit(1);
        }
        while (report.acked < seq)
            if (sb_producer_poll(p, 100) < 0)
                exit(1);
        report.beside_slow = 0;
        for (uint32_t i = 0; i < bus->shard_count; i++)
            report.beside_slow +=
                (uint64_t)sb_shard_call(bus->shards[i], test_groups_beside_slow, NULL);
        if (write(report_fd, &report, sizeof(report)) != (ssize_t)sizeof(report))
            exit(1);
    }
}

struct scan {
    uint32_t round;     /* the round being read */
    uint64_t next_seq;  /* its next sequence number */
    int64_t next_offset;
    uint64_t *counts;   /* events found per round */
};

/* Read the whole log back through a fresh bus; check order, contents, contiguity. Each round's
 * first offset goes to first_offset[round]. */
static void check_log(const char *dir, uint32_t rounds, uint64_t *counts, int64_t *first_offset)
{
    struct sb_bus *bus;
    open_bus(dir, &bus);
    struct sb_consumer *c;
    CHECK_EQ(sb_subscribe(bus, TOPIC, SB_OFFSET_BEGINNING, &c), 0);
    struct scan sc = {0, 0, 0, counts};
    memset(counts, 0, rounds * sizeof(*counts));
    struct sb_event evs[128];
    int n;
    /* The end of the log is where no event comes for 1.5 s (a loaded CI machine can pause a
     * reader for a good fraction of a second; a short timeout would miss events). */
    while ((n = sb_poll(c, evs, 128, 1500)) > 0) {
        for (int i = 0; i < n; i++) {
            const struct sb_event *ev = &evs[i];
            CHECK_EQ(ev->offset, sc.next_offset);
            sc.next_offset++;
            uint32_t round;
            uint64_t seq;
            CHECK(ev->value_len >= 12);
            memcpy(&round, ev->value, 4);
            memcpy(&seq, (const unsigned char *)ev->value + 4, 8);
            if (round != sc.round) {
                /* A new round starts at sequence 0, after the previous one. */
                CHECK(round > sc.round && round < rounds);
                sc.round = round;
                sc.next_seq = 0;
            }
            if (seq == 0)
                first_offset[round] = ev->offset;
            CHECK_EQ(seq, sc.next_seq);
            sc.next_seq++;
            unsigned char v[256];
            size_t len = make_value(round, seq, v);
            CHECK_EQ(ev->value_len, len);
            CHECK_MEM(ev->value, v, len);
            CHECK(ev->key_len == 6 && !memcmp(ev->key, "tenant", 6));
            counts[round]++;
        }
    }
    CHECK_EQ(n, 0);
    sb_consumer_close(c);
    CHECK_EQ(sb_bus_close(bus), 0);
}

static void run_verify(const char *tool, const char *dir)
{
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' log verify '%s' > /dev/null", tool, dir);
    int rc = system(cmd);
    if (rc != 0) {
        snprintf(cmd, sizeof(cmd), "'%s' log verify '%s'", tool, dir);
        CHECK_EQ(system(cmd), 0);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: test_crash PATH_TO_SHARDBUS_TOOL [rounds]\n");
        return 2;
    }
    const char *tool = argv[1];
    uint32_t rounds = argc > 2 ? (uint32_t)atoi(argv[2]) : 20;
    char dir[] = "/tmp/sb-crash-XXXXXX";
    CHECK(mkdtemp(dir));
    uint64_t *acked = calloc(rounds, sizeof(uint64_t));
    int64_t *acked_offset = calloc(rounds, sizeof(int64_t));
    uint64_t *found = calloc(rounds, sizeof(uint64_t));
    int64_t *first_offset = calloc(rounds, sizeof(int64_t));
    uint64_t *beside_slow = calloc(rounds, sizeof(uint64_t));
    CHECK(acked && acked_offset && found && first_offset && beside_slow);
    srand((unsigned)time(NULL));
    for (uint32_t round = 0; round < rounds; round++) {
        int fds[2];
        CHECK_EQ(pipe(fds), 0);
        pid_t pid = fork();
        CHECK(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            child_main(dir, round, fds[1]);
            _exit(1);
        }
        close(fds[1]);
        fcntl(fds[0], F_SETFL, O_NONBLOCK);
        /* Let it run 50-400 ms, collecting acknowledgements, then kill it mid-flight. */
        int64_t run_us = 50000 + rand() % 350000;
        struct timespec start, now;
        clock_gettime(CLOCK_MONOTONIC, &start);
        struct ack_report rep;
        do {
            /* Reports are written whole (24 bytes: atomic on a pipe). */
            while (read(fds[0], &rep, sizeof(rep)) == (ssize_t)sizeof(rep)) {
                acked[round] = rep.acked;
                acked_offset[round] = rep.last_offset;
                beside_slow[round] = rep.beside_slow;
            }
            usleep(1000);
            clock_gettime(CLOCK_MONOTONIC, &now);
        } while ((now.tv_sec - start.tv_sec) * 1000000 + (now.tv_nsec - start.tv_nsec) / 1000 <
                 run_us);
        CHECK_EQ(kill(pid, SIGKILL), 0);
        int status;
        CHECK_EQ(waitpid(pid, &status, 0), pid);
        while (read(fds[0], &rep, sizeof(rep)) == (ssize_t)sizeof(rep)) {
            acked[round] = rep.acked;
            acked_offset[round] = rep.last_offset;
            beside_slow[round] = rep.beside_slow;
        }
        close(fds[0]);
        if (!WIFSIGNALED(status)) {
            fprintf(stderr, "round %u: the child exited by itself (status %d)\n", round, status);
            return 1;
        }
        check_log(dir, rounds, found, first_offset);
        for (uint32_t r = 0; r <= round; r++) {
            if (found[r] < acked[r]) {
                fprintf(stderr, "round %u: %llu events acknowledged, only %llu in the log\n", r,
                        (unsigned long long)acked[r], (unsigned long long)found[r]);
                return 1;
            }
            /* The last acknowledged event is where its callback said (rounds are contiguous
             * in the log, so event seq of round r is at first_offset[r] + seq). */
            if (acked[r])
                CHECK_EQ(acked_offset[r], first_offset[r] + (int64_t)acked[r] - 1);
        }
        run_verify(tool, dir);
        printf("round %2u: killed after %3lld ms: %llu acknowledged, %llu in the log, %llu groups "
               "beside a slow one%s\n",
               round, (long long)run_us / 1000, (unsigned long long)acked[round],
               (unsigned long long)found[round], (unsigned long long)beside_slow[round],
               round % 2 ? " (every group in flight counted as slow)" : "");
    }
    /* `shardbus log dump` prints every event of the log, once. */
    uint64_t total = 0;
    for (uint32_t r = 0; r < rounds; r++)
        total += found[r];
    char cmd[1024];
    snprintf(cmd, sizeof(cmd), "'%s' log dump '%s' --topic " TOPIC " --json | grep -c '\"offset\"'",
             tool, dir);
    FILE *f = popen(cmd, "r");
    CHECK(f);
    unsigned long long lines = 0;
    CHECK_EQ(fscanf(f, "%llu", &lines), 1);
    pclose(f);
    CHECK_EQ(lines, total);
    /* The odd rounds did put small groups beside slow ones (the counts of the children's
     * last reports). */
    uint64_t beside = 0;
    for (uint32_t r = 1; r < rounds; r += 2)
        beside += beside_slow[r];
    CHECK(rounds < 2 || beside > 0);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_EQ(system(cmd), 0);
    printf("test_crash: %u SIGKILLs, every acknowledged event survived byte for byte, at the "
           "offset its ack callback reported; %llu groups went beside a slow one in the odd "
           "rounds\n",
           rounds, (unsigned long long)beside);
    free(acked);
    free(acked_offset);
    free(found);
    free(first_offset);
    free(beside_slow);
    return 0;
}
