/*
 * test_log_writer.c - group commit through io_uring: several groups of writes to several
 * registered files, synced, read back byte for byte; a wake-up through the eventfd; write
 * errors reported as the group's result. A synced file's writes and its sync go in one linked
 * chain: a chain too long for the submission queue falls back to a sync after the writes, and
 * a chain broken by a short write gets its sync issued on its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "log_writer.h"

#define FILES 3
#define GROUPS 20
#define WRITES_PER_GROUP 9

/* The byte at @at of file @f: every write of this test puts these bytes in place. */
static unsigned char pattern(int f, uint64_t at)
{
    return (unsigned char)test_mix64(((uint64_t)f << 40) + at);
}

static void fill(unsigned char *buf, int f, uint64_t at, uint32_t len)
{
    for (uint32_t i = 0; i < len; i++)
        buf[i] = pattern(f, at + i);
}

/* File @f (@fd) holds exactly its pattern's first @size bytes. */
static void check_file(int fd, int f, uint64_t size)
{
    unsigned char *got = malloc(size);
    CHECK(got);
    CHECK_EQ(pread(fd, got, size, 0), (ssize_t)size);
    for (uint64_t i = 0; i < size; i++)
        if (got[i] != pattern(f, i)) {
            fprintf(stderr, "file %d byte %llu differs\n", f, (unsigned long long)i);
            abort();
        }
    free(got);
}

static int wait_group(struct sb_log_writer *w)
{
    int rc;
    while ((rc = sb_log_writer_poll(w)) == 0)
        CHECK(sb_log_writer_wait(w, 1000000000) == 0 || errno == ETIME);
    CHECK_EQ(rc, 1);
    return w->result;
}

/*
 * Two groups in flight on file @f (@fd, registered at @slot, @size bytes so far): once A's
 * writes are done (only its sync may be left), B may be submitted; a third may not (-EBUSY, its
 * writes stay collected); they complete in order, A first, and every byte lands.
 * sb_log_writer_reap() moves groups on without completing them, so A is still in flight when B
 * goes. With a second open file (@sync_file), B syncs through it, chained to its writes, beside
 * A's sync; without, B's sync is issued on its own once A has nothing left in the kernel (two
 * syncs through one open file never overlap). A's and C's syncs are chained.
 */
static void two_in_flight(struct sb_log_writer *w, int fd, int slot, int f, uint64_t *size,
                          bool sync_file)
{
    const uint64_t linked_before = w->linked_syncs, unlinked_before = w->unlinked_syncs;
    CHECK_EQ(w->sync_slot[slot] >= 0, sync_file);
    const uint32_t len = 3000;
    size_t used = 0;
    const unsigned char *firsts[3];
    for (int grp = 0; grp < 3; grp++) {
        for (int k = 0; k < 2; k++) {
            unsigned char *buf = w->arena + used;
            fill(buf, f, *size, len);
            CHECK_EQ(sb_log_writer_add(w, slot, *size, buf, len), 0);
            if (k == 0)
                firsts[grp] = buf;
            *size += len;
            used += len;
        }
        if (grp == 0) {
            CHECK_EQ(sb_log_writer_submit(w, true), 0);
            while (!sb_log_writer_can_submit(w))
                CHECK_EQ(sb_log_writer_reap(w), 0);
        } else if (grp == 1) {
            const uint64_t overlapped = w->overlapped;
            CHECK_EQ(sb_log_writer_submit(w, true), 0);
            CHECK_EQ(w->overlapped, overlapped + 1);
            CHECK_EQ(w->in_flight, 2);
            CHECK(!sb_log_writer_can_submit(w));
            const struct sb_log_group *a = &w->groups[(w->collecting + 1) % 3];
            const struct sb_log_group *b = &w->groups[(w->collecting + 2) % 3];
            CHECK(a->parity != b->parity);
            CHECK_EQ(b->overlap_safe, sync_file);
            while (!sync_file && (a->writes_pending || a->syncs_pending)) {
                CHECK_EQ(b->syncs_pending, 0);
                CHECK_EQ(sb_log_writer_reap(w), 0);
            }
        } else {
            CHECK_EQ(sb_log_writer_submit(w, true), -EBUSY);
        }
    }
    for (int grp = 0; grp < 3; grp++) {
        if (grp == 2)
            CHECK_EQ(sb_log_writer_submit(w, true), 0); /* C, once A and B are done */
        CHECK_EQ(wait_group(w), 0);
        CHECK(w->done->writes[0].buf == firsts[grp]);
        CHECK_EQ(w->done->write_count, 2);
    }
    CHECK_EQ(w->in_flight, 0);
    CHECK_EQ(w->linked_syncs, linked_before + (sync_file ? 3 : 2));
    CHECK_EQ(w->unlinked_syncs, unlinked_before + (sync_file ? 0 : 1));
    check_file(fd, f, *size);
}

int main(void)
{
    char dir[] = "/tmp/sb-writer-XXXXXX";
    CHECK(mkdtemp(dir));
    int efd = eventfd(0, EFD_CLOEXEC);
    CHECK(efd >= 0);
    struct sb_log_writer w;
    int rc = sb_log_writer_init(&w, 1 << 20, 8, efd, false);
    if (rc == -ENOSYS || rc == -EPERM) {
        fprintf(stderr, "io_uring unavailable here (%s): skipped\n", strerror(-rc));
        return TEST_SKIP;
    }
    CHECK_EQ(rc, 0);
    int fds[FILES], slots[FILES];
    uint64_t sizes[FILES] = {0};
    for (int f = 0; f < FILES; f++) {
        char path[128];
        snprintf(path, sizeof(path), "%s/f%d", dir, f);
        fds[f] = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        CHECK(fds[f] >= 0);
        slots[f] = sb_log_writer_file_add(&w, fds[f]);
        CHECK(slots[f] >= 0);
    }
    /* Each group: writes of varied sizes spread over the files, from the arena. */
    for (int g = 0; g < GROUPS; g++) {
        size_t used = 0;
        for (int k = 0; k < WRITES_PER_GROUP; k++) {
            int f = (g + k) % FILES;
            uint32_t len = 100 + (uint32_t)(test_mix64((uint64_t)g * 100 + (uint64_t)k) % 20000);
            unsigned char *buf = w.arena + used;
            fill(buf, f, sizes[f], len);
            CHECK_EQ(sb_log_writer_add(&w, slots[f], sizes[f], buf, len), 0);
            sizes[f] += len;
            used += len;
        }
        CHECK_EQ(sb_log_writer_submit(&w, g % 2 == 0), 0);
        CHECK_EQ(wait_group(&w), 0);
    }
    for (int f = 0; f < FILES; f++)
        check_file(fds[f], f, sizes[f]);
    /* Every synced group above chained its files' syncs to their writes. */
    CHECK_EQ(w.linked_syncs, (uint64_t)(GROUPS / 2 * FILES));
    CHECK_EQ(w.unlinked_syncs, 0);

    two_in_flight(&w, fds[0], slots[0], 0, &sizes[0], true);
    /* The same on a file registered without a second open file: B's sync waits for A's. */
    {
        char path[128];
        snprintf(path, sizeof(path), "%s/single", dir);
        const int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
        CHECK(fd >= 0);
        w.sync_files = false;
        const int slot = sb_log_writer_file_add(&w, fd);
        w.sync_files = true;
        CHECK(slot >= 0);
        CHECK_EQ(w.sync_slot[slot], -1);
        uint64_t size = 0;
        two_in_flight(&w, fd, slot, FILES, &size, false);
        sb_log_writer_file_remove(&w, slot);
        close(fd);
    }

    /* 300 writes to one file cannot be one chain in a 256-entry queue: written unlinked, then
     * synced once they are all done; every byte lands. */
    {
        const int f = 1;
        const uint32_t len = 1000;
        for (int k = 0; k < 300; k++) {
            unsigned char *buf = w.arena + (size_t)k * len;
            fill(buf, f, sizes[f], len);
            CHECK_EQ(sb_log_writer_add(&w, slots[f], sizes[f], buf, len), 0);
            sizes[f] += len;
        }
        const uint64_t unlinked_before = w.unlinked_syncs;
        CHECK_EQ(sb_log_writer_submit(&w, true), 0);
        CHECK_EQ(wait_group(&w), 0);
        CHECK_EQ(w.unlinked_syncs, unlinked_before + 1);
        check_file(fds[f], f, sizes[f]);
    }

    /* A short write breaks its chain: a file size limit 100 bytes into the first of two writes
     * to one file. io_uring cancels the second write and the sync; the rest of the first is
     * retried (and fails with EFBIG), the second is queued again (EFBIG), and the sync is
     * issued on its own once both are done. The group ends with the error, not hanging. */
    {
        const int f = 2;
        struct rlimit old_limit, limit;
        CHECK_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
        signal(SIGXFSZ, SIG_IGN); /* the write fails with EFBIG instead of killing us */
        limit = old_limit;
        limit.rlim_cur = sizes[f] + 100;
        CHECK_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
        memset(w.arena, 'y', 8192);
        CHECK_EQ(sb_log_writer_add(&w, slots[f], sizes[f], w.arena, 4096), 0);
        CHECK_EQ(sb_log_writer_add(&w, slots[f], sizes[f] + 4096, w.arena + 4096, 4096), 0);
        const uint64_t short_before = w.short_writes, unlinked_before = w.unlinked_syncs;
        CHECK_EQ(sb_log_writer_submit(&w, true), 0);
        CHECK_EQ(wait_group(&w), -EFBIG);
        CHECK_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
        CHECK_EQ(w.short_writes, short_before + 1);
        CHECK_EQ(w.unlinked_syncs, unlinked_before + 1);
        CHECK_EQ(w.done->writes[0].done, 100);
        CHECK_EQ(w.done->writes[0].result, -EFBIG);
        CHECK_EQ(w.done->writes[1].result, -EFBIG);
        struct stat st;
        CHECK_EQ(fstat(fds[f], &st), 0);
        CHECK_EQ((uint64_t)st.st_size, sizes[f] + 100);
    }

    /* A short aligned write (direct I/O) goes on from a block boundary, rewriting the bytes
     * before it; one that then moves less than a block fails with -EIO instead of looping. A
     * file size limit 4096 + 100 bytes into an 8192-byte write: 4196 written, continued from
     * 4096, 100 written again, no progress past the boundary: -EIO. */
    {
        const int f = 0;
        struct rlimit old_limit, limit;
        CHECK_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
        limit = old_limit;
        limit.rlim_cur = sizes[f] + 4096 + 100;
        CHECK_EQ(setrlimit(RLIMIT_FSIZE, &limit), 0);
        memset(w.arena, 'z', 8192);
        CHECK_EQ(sb_log_writer_add_aligned(&w, slots[f], sizes[f], w.arena, 8192, 4096), 0);
        const uint64_t short_before = w.short_writes;
        CHECK_EQ(sb_log_writer_submit(&w, false), 0);
        CHECK_EQ(wait_group(&w), -EIO);
        CHECK_EQ(setrlimit(RLIMIT_FSIZE, &old_limit), 0);
        CHECK_EQ(w.short_writes, short_before + 1);
        CHECK_EQ(w.done->writes[0].done, 4096);
        CHECK_EQ(w.done->writes[0].result, -EIO);
        struct stat st;
        CHECK_EQ(fstat(fds[f], &st), 0);
        CHECK_EQ((uint64_t)st.st_size, sizes[f] + 4096 + 100);
    }

    /* A wake-up through the eventfd ends a wait with a group in flight, or on its own. */
    uint64_t one = 1;
    CHECK_EQ(write(efd, &one, sizeof(one)), (ssize_t)sizeof(one));
    CHECK_EQ(sb_log_writer_wait(&w, 5000000000LL), 0);
    /* A write to a file opened read-only fails the group with that error. */
    char path[128];
    snprintf(path, sizeof(path), "%s/f0", dir);
    int ro = open(path, O_RDONLY);
    CHECK(ro >= 0);
    int ro_slot = sb_log_writer_file_add(&w, ro);
    CHECK(ro_slot >= 0);
    memset(w.arena, 'x', 100);
    CHECK_EQ(sb_log_writer_add(&w, ro_slot, 0, w.arena, 100), 0);
    CHECK_EQ(sb_log_writer_submit(&w, true), 0);
    CHECK_EQ(wait_group(&w), -EBADF);
    sb_log_writer_file_remove(&w, ro_slot);
    close(ro);
    /* An empty group completes at once. */
    CHECK_EQ(sb_log_writer_submit(&w, true), 0);
    CHECK_EQ(wait_group(&w), 0);
    printf("test_log_writer: %d groups, %llu bytes, %llu short writes; errors reported\n", GROUPS,
           (unsigned long long)w.bytes_written, (unsigned long long)w.short_writes);
    sb_log_writer_destroy(&w);
    for (int f = 0; f < FILES; f++)
        close(fds[f]);
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
    CHECK_EQ(system(cmd), 0);
    printf("test_log_writer: all passed\n");
    return 0;
}
