/*
 * test_log_writer.c - group commit through io_uring: several groups of writes to several
 * registered files, synced, read back byte for byte; a wake-up through the eventfd; write
 * errors reported as the group's result.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "check.h"
#include "log_writer.h"

#define FILES 3
#define GROUPS 20
#define WRITES_PER_GROUP 9

static int wait_group(struct sb_log_writer *w)
{
    int rc;
    while ((rc = sb_log_writer_poll(w)) == 0)
        CHECK(sb_log_writer_wait(w, 1000000000) == 0 || errno == ETIME);
    CHECK_EQ(rc, 1);
    return w->result;
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
            for (uint32_t i = 0; i < len; i++)
                buf[i] = (unsigned char)test_mix64(((uint64_t)f << 40) + sizes[f] + i);
            CHECK_EQ(sb_log_writer_add(&w, slots[f], sizes[f], buf, len), 0);
            sizes[f] += len;
            used += len;
        }
        CHECK_EQ(sb_log_writer_submit(&w, g % 2 == 0), 0);
        CHECK_EQ(wait_group(&w), 0);
    }
    for (int f = 0; f < FILES; f++) {
        unsigned char *got = malloc(sizes[f]);
        CHECK(got);
        CHECK_EQ(pread(fds[f], got, sizes[f], 0), (ssize_t)sizes[f]);
        for (uint64_t i = 0; i < sizes[f]; i++)
            if (got[i] != (unsigned char)test_mix64(((uint64_t)f << 40) + i)) {
                fprintf(stderr, "file %d byte %llu differs\n", f, (unsigned long long)i);
                return 1;
            }
        free(got);
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
