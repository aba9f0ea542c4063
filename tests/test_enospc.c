/*
 * test_enospc.c - a full disk: on a small tmpfs this test mounts itself, a producer publishes
 * and flushes event by event until the disk is full. The events that could not be written fail
 * with -ENOSPC (and are counted as failed), the bus stays up, and once space returns appends
 * resume. Each event's ack callback reports the same outcome: its error (-ENOSPC) or its offset.
 * After a reopen the log holds exactly the acknowledged events, in order, byte for byte, each at
 * the offset its callback reported. Run twice: flushing after every event (one group at a
 * time), and flushing after bursts of 256 (the shard then submits group after group, and the
 * disk fills in the middle of a burst).
 * Skipped (exit 77) where the machine cannot mount a tmpfs (not root, no mount namespace).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>

#include <shardbus.h>

#include "check.h"
#include "test_ack_outcomes.h"

#define MAX_EVENTS 20000 /* at most this many published in a run */

static struct sb_bus *open_bus(const char *dir)
{
    struct sb_config cfg;
    sb_config_init(&cfg);
    cfg.shards = 2;
    cfg.data_dir = dir;
    cfg.segment_bytes = 128 * 1024;
    cfg.write_buffer_bytes = 1 << 20;
    struct sb_bus *bus;
    int rc = sb_bus_open(&cfg, &bus);
    if (rc) {
        fprintf(stderr, "sb_bus_open(%s): %s\n", dir, strerror(-rc));
        abort();
    }
    return bus;
}

static int fill_file(const char *path, size_t bytes)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0)
        return -errno;
    static char block[64 * 1024];
    memset(block, 0xee, sizeof(block));
    for (size_t done = 0; done < bytes; done += sizeof(block))
        if (write(fd, block, sizeof(block)) < 0)
            break; /* full: that is the point */
    close(fd);
    return 0;
}

/* One run: publish, flushing every @burst events, until the disk is full; free the space; go
 * on; reopen and check. Returns false when no tmpfs can be mounted here. */
static bool run(uint64_t burst)
{
    memset(test_outcomes, 0, sizeof(test_outcomes));
    char mnt[] = "/tmp/sb-enospc-XXXXXX";
    CHECK(mkdtemp(mnt));
    if (mount("tmpfs", mnt, "tmpfs", 0, "size=3m") != 0) {
        fprintf(stderr, "test_enospc: cannot mount a tmpfs here (%s): skipped\n", strerror(errno));
        rmdir(mnt);
        return false;
    }
    char dir[128], filler[128];
    snprintf(dir, sizeof(dir), "%s/data", mnt);
    snprintf(filler, sizeof(filler), "%s/filler", mnt);
    struct sb_bus *bus = open_bus(dir);
    CHECK_EQ(sb_topic_create(bus, "ledger", 1), 0);
    /* Leave about 1 MiB free. */
    CHECK_EQ(fill_file(filler, 2 * 1024 * 1024 - 64 * 1024), 0);

    struct sb_producer *p = test_open_recording_producer(bus);
    static unsigned char acked[MAX_EVENTS];
    memset(acked, 0, sizeof(acked));
    unsigned char v[TEST_EVENT_BYTES];
    uint64_t seq = 0, n_acked = 0, n_failed = 0;
    bool freed = false;
    uint64_t after_free = 0;
    while (seq < MAX_EVENTS && after_free < 300) {
        test_event_value(seq, v);
        int rc;
        while ((rc = sb_publish_with(p, "ledger", SB_PARTITION_ANY, NULL, 0, v, TEST_EVENT_BYTES,
                                     (void *)(uintptr_t)(seq + 1))) == -EAGAIN)
            ;
        CHECK_EQ(rc, 0);
        seq++;
        if (freed)
            after_free++;
        if (seq % burst != 0 && seq < MAX_EVENTS && after_free < 300)
            continue;
        rc = sb_producer_flush(p, 10000); /* runs the callbacks */
        CHECK(rc == 0 || rc == -ENOSPC);
        for (uint64_t e = (seq - 1) / burst * burst; e < seq; e++) {
            CHECK_EQ(test_outcomes[e].calls, 1);
            if (test_outcomes[e].error == 0) {
                CHECK_EQ(test_outcomes[e].offset, (int64_t)n_acked); /* the written ones in turn */
                acked[e] = 1;
                n_acked++;
            } else {
                CHECK_EQ(test_outcomes[e].error, -ENOSPC);
                CHECK_EQ(test_outcomes[e].offset, -1);
                CHECK_EQ(rc, -ENOSPC);
                n_failed++;
            }
        }
        /* After a run of failures, give the space back: appends must resume. */
        if (!freed && n_failed >= 20) {
            CHECK_EQ(unlink(filler), 0);
            freed = true;
        }
    }
    CHECK(freed);
    CHECK(n_failed >= 20);
    test_check_producer_stats(p, seq, n_acked, n_failed, -ENOSPC);
    /* The last 300 after freeing space were all written. */
    for (uint64_t i = seq - 300; i < seq; i++)
        CHECK_EQ(acked[i], 1);
    sb_producer_close(p);
    CHECK_EQ(sb_bus_close(bus), 0);

    /* Reopen: exactly the acknowledged events, in order. */
    bus = open_bus(dir);
    test_check_log_holds(bus, acked, seq, n_acked);
    CHECK_EQ(sb_bus_close(bus), 0);
    CHECK_EQ(umount(mnt), 0);
    rmdir(mnt);
    printf("test_enospc: flushing every %llu: %llu acknowledged, %llu failed with ENOSPC (each "
           "told so by its ack callback), appends resumed; the log holds exactly the "
           "acknowledged events, each at the offset its callback reported\n",
           (unsigned long long)burst, (unsigned long long)n_acked, (unsigned long long)n_failed);
    return true;
}

int main(void)
{
    if (!run(1))
        return TEST_SKIP;
    CHECK(run(256));
    return 0;
}
