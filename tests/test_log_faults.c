/*
 * test_log_faults.c - a sync that fails while a younger group commit is in flight, on the real
 * file system, through the log writer's fault hook (log_writer.h: the fdatasync itself
 * succeeds, its completion reports -EIO instead).
 *
 * What the brief asks of write errors, checked event by event: the events not yet
 * acknowledged fail with an error their producer sees (the ack callback gets -EIO and offset
 * -1, sb_producer_flush() returns -EIO, the stats count them); the younger group in flight
 * fails with the older one, since its bytes lay after the cut (the shard counts it:
 * groups_failed_after_older); the bus stays up and later events are written; nothing
 * acknowledged is lost: once the bus is closed, `log verify` finds exactly the acknowledged
 * events and no problem, and after a reopen the log holds exactly them, in order, byte for
 * byte, each at the offset its callback reported.
 *
 * Three rounds, the fault armed after 2, 10 and 40 syncs; each publishes 1000-byte events as
 * fast as it can (so that groups are large enough to go beside the one in flight) until the
 * fault fired, then 2,000 more. Two more rounds (after 2 and 10 syncs) make every group in
 * flight count as slow (the shard's test hook slow_group_test_ns) and publish one event after
 * each sleep of 20 us (longer with the timer's slack): small groups, which go beside the one
 * in flight because it is slow (sb_shard_log_can_submit()); the shard must count such groups.
 * A last run, with no fault, counts no group commit as slow for a minute and publishes the
 * same paced events: no small group may go beside the one in flight, and every event is
 * acknowledged at its offset.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include <shardbus.h>

#include "bus.h"
#include "check.h"
#include "log_verify.h"
#include "shard.h"
#include "test_shard_hooks.h"
#include "test_ack_outcomes.h"
#include "test_util.h"

#define CHUNK 2000 /* events published between two looks at the hook */

/* The bus's reports (log_fn, called on the shard's thread). */
static char reports[8192];
static pthread_mutex_t reports_lock = PTHREAD_MUTEX_INITIALIZER;

static void collect_report(void *ctx, enum sb_log_level level, const char *msg)
{
    (void)ctx;
    (void)level;
    pthread_mutex_lock(&reports_lock);
    size_t len = strlen(reports);
    snprintf(reports + len, sizeof(reports) - len, "%s\n", msg);
    pthread_mutex_unlock(&reports_lock);
}

static struct sb_bus *open_bus(const char *dir)
{
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = 1;
    cfg.data_dir = dir;
    cfg.durability = SB_DURABILITY_BATCH;
    cfg.write_buffer_bytes = 1 << 20;
    cfg.segment_bytes = 8 << 20;
    cfg.log_fn = collect_report;
    struct sb_bus *bus;
    CHECK_EQ(sb_bus_open(&cfg, &bus), 0);
    return bus;
}

/* Run on the shard's thread (sb_shard_call), which owns the writer. */
static int arm_fault(struct sb_shard *s, void *arg)
{
    s->writer.fail_sync_after = s->writer.syncs_completed + *(const uint64_t *)arg;
    s->writer.fail_sync_error = -EIO;
    return 0;
}

static int fault_pending(struct sb_shard *s, void *arg)
{
    (void)arg;
    return s->writer.fail_sync_error != 0;
}

static int failed_after_older(struct sb_shard *s, void *arg)
{
    (void)arg;
    return (int)s->groups_failed_after_older;
}

/* @paced: wait about 20 us first, so that groups stay small. */
static void publish(struct sb_producer *p, uint64_t seq, bool paced)
{
    if (paced) {
        const struct timespec pause = {0, 20000};
        nanosleep(&pause, NULL);
    }
    unsigned char v[TEST_EVENT_BYTES];
    test_event_value(seq, v);
    int rc;
    while ((rc = sb_publish_with(p, "ledger", 0, NULL, 0, v, TEST_EVENT_BYTES,
                                 (void *)(uintptr_t)(seq + 1))) == -EAGAIN)
        sb_producer_poll(p, 0); /* the callbacks make room in the ack ring */
    CHECK_EQ(rc, 0);
}

/* @slow_rule: every group in flight counts as slow, and events come paced (see the top). */
static void round_with_fault_after(uint64_t after, bool slow_rule)
{
    memset(test_outcomes, 0, sizeof(test_outcomes));
    pthread_mutex_lock(&reports_lock);
    reports[0] = 0;
    pthread_mutex_unlock(&reports_lock);
    char dir[64];
    test_make_dir(dir, "/tmp/sb-faults-XXXXXX");
    struct sb_bus *bus = open_bus(dir);
    CHECK_EQ(sb_topic_create(bus, "ledger", 1), 0);
    struct sb_shard *shard = bus->shards[0];
    CHECK_EQ(sb_shard_call(shard, arm_fault, &after), 0);
    if (slow_rule)
        CHECK_EQ(sb_shard_call(shard, test_set_slow_group_ns, &(int64_t){1}), 0);

    struct sb_producer *p = test_open_recording_producer(bus);
    uint64_t seq = 0;
    while (sb_shard_call(shard, fault_pending, NULL)) {
        CHECK(seq + 2 * CHUNK <= TEST_MAX_EVENTS); /* it fires once two groups are in flight */
        for (uint64_t end = seq + CHUNK; seq < end; seq++)
            publish(p, seq, slow_rule);
    }
    for (uint64_t end = seq + CHUNK; seq < end; seq++)
        publish(p, seq, slow_rule); /* after the fault: written again */
    CHECK_EQ(sb_producer_flush(p, 60000), -EIO);
    CHECK_EQ(sb_shard_call(shard, failed_after_older, NULL), 1);
    const int beside_slow = sb_shard_call(shard, test_groups_beside_slow, NULL);
    if (slow_rule)
        CHECK(beside_slow > 0);

    /* Every event told once; the failed ones are one run (the two groups), the acknowledged
     * ones are numbered in publish order around it, and the last CHUNK all made it. */
    uint64_t n_acked = 0, n_failed = 0, first_failed = seq, last_failed = 0;
    static unsigned char acked[TEST_MAX_EVENTS];
    for (uint64_t e = 0; e < seq; e++) {
        CHECK_EQ(test_outcomes[e].calls, 1);
        acked[e] = test_outcomes[e].error == 0;
        if (acked[e]) {
            CHECK_EQ(test_outcomes[e].offset, (int64_t)n_acked);
            n_acked++;
        } else {
            CHECK_EQ(test_outcomes[e].error, -EIO);
            CHECK_EQ(test_outcomes[e].offset, -1);
            if (e < first_failed)
                first_failed = e;
            last_failed = e;
            n_failed++;
        }
    }
    CHECK(n_failed >= 2); /* two groups, an event at least each */
    CHECK_EQ(last_failed - first_failed + 1, n_failed);
    CHECK(last_failed < seq - CHUNK);
    test_check_producer_stats(p, seq, n_acked, n_failed, -EIO);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);
    /* The failure was reported, naming the partition and the error. */
    CHECK(strstr(reports, "log write failed for ledger partition 0 (Input/output error)"));

    /* `log verify`: exactly the acknowledged events, no problem. */
    char pdir[128];
    snprintf(pdir, sizeof(pdir), "%s/ledger-0", dir);
    struct sb_verify_totals tot = {0};
    CHECK_EQ(sb_log_verify_partition(pdir, collect_report, NULL, &tot), 0);
    CHECK_EQ(tot.problems, 0);
    CHECK_EQ(tot.records, n_acked);

    /* Reopen: exactly the acknowledged events, in order, byte for byte. */
    bus = open_bus(dir);
    test_check_log_holds(bus, acked, seq, n_acked);
    CHECK_EQ(sb_bus_close(bus), 0);
    test_remove_dir(dir);
    printf("test_log_faults: fault after %llu syncs%s: %llu events, %llu acknowledged, %llu "
           "failed with EIO in two groups (events %llu-%llu), the rest written; the log holds "
           "exactly the acknowledged events; %d groups went beside a slow one\n",
           (unsigned long long)after,
           slow_rule ? " (every group in flight slow, paced events)" : "", (unsigned long long)seq,
           (unsigned long long)n_acked, (unsigned long long)n_failed,
           (unsigned long long)first_failed, (unsigned long long)last_failed, beside_slow);
}

/* No group commit counts as slow (see the top): small groups wait for the one in flight. */
static void run_without_slow_groups(void)
{
    memset(test_outcomes, 0, sizeof(test_outcomes));
    char dir[64];
    test_make_dir(dir, "/tmp/sb-faults-XXXXXX");
    struct sb_bus *bus = open_bus(dir);
    CHECK_EQ(sb_topic_create(bus, "ledger", 1), 0);
    struct sb_shard *shard = bus->shards[0];
    CHECK_EQ(sb_shard_call(shard, test_set_slow_group_ns, &(int64_t){60000000000}), 0);
    struct sb_producer *p = test_open_recording_producer(bus);
    for (uint64_t seq = 0; seq < CHUNK; seq++)
        publish(p, seq, true);
    CHECK_EQ(sb_producer_flush(p, 60000), 0);
    for (uint64_t seq = 0; seq < CHUNK; seq++) {
        CHECK_EQ(test_outcomes[seq].calls, 1);
        CHECK_EQ(test_outcomes[seq].error, 0);
        CHECK_EQ(test_outcomes[seq].offset, (int64_t)seq);
    }
    CHECK_EQ(sb_shard_call(shard, test_groups_beside_slow, NULL), 0);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);
    test_remove_dir(dir);
    printf("test_log_faults: no group commit slow: %d paced events acknowledged in order, no "
           "small group beside the one in flight\n",
           CHUNK);
}

int main(void)
{
    round_with_fault_after(2, false);
    round_with_fault_after(10, false);
    round_with_fault_after(40, false);
    round_with_fault_after(2, true);
    round_with_fault_after(10, true);
    run_without_slow_groups();
    return 0;
}
