/*
 * log_writer.h - a shard's io_uring for its log: group commit of record batches.
 *
 * A group is a set of writes (and, when asked, syncs) that completes as a whole. The shard
 * adds the batches sealed since the last group (sb_log_writer_add), submits them
 * (sb_log_writer_submit), and keeps building the next group while the kernel writes this one.
 * A group completes when every write is done (short writes are resubmitted for the rest) and,
 * when asked, every file written is made durable with fdatasync (IORING_FSYNC_DATASYNC).
 * io_uring may complete operations in any order, so a sync must not start before the writes
 * it covers are done: each file's writes and its sync go in one linked chain (IOSQE_IO_LINK),
 * which the kernel runs in order without a round trip through the shard. A chain breaks when
 * one of its writes fails or is short (io_uring then cancels the rest with -ECANCELED): the
 * cancelled writes are queued again, and the file's sync is issued on its own once all the
 * group's writes are done, as it is for a file whose chain would not fit in the submission
 * queue. The result is the first error of any of them.
 *
 * Two groups may be in flight: once every write of the group in flight is done, without an
 * error, and only its syncs are left (the disk is busy, the CPU free), the next group may be
 * submitted (sb_log_writer_can_submit), so its writes (copies into the page cache) overlap the
 * older group's syncs. Its writes then all come after the older group's, so its syncs cover
 * everything written before them, as a single group's would. Two fdatasyncs of one open file
 * at once could hand a write-back error to the younger only (the kernel reports an error once
 * per open file, struct file) and the older group would count as durable; so every registered
 * file has a second open file of its own (sb_log_writer_file_add()), odd groups sync through
 * it, and two groups in flight (one odd, one even) never sync through the same open file: an
 * error is reported to both. A group with any file that has no second open file (a table kept
 * small by RLIMIT_NOFILE, no /proc) does not chain its syncs: they all wait until the older
 * group has nothing left in the kernel. Groups complete in order: sb_log_writer_poll()
 * reports the oldest only.
 *
 * Batches live in one arena registered with the ring (fixed-buffer writes); files are
 * registered in a sparse table (sb_log_writer_file_add). A full completion queue (-EBUSY from
 * submit) is drained and the submission retried.
 *
 * The ring can also wait for a wake-up: sb_log_writer_wait() arms a read of the parker's
 * eventfd, so a shard with a group in flight sleeps until either its I/O completes or a
 * producer wakes it.
 *
 * Single-threaded: the owning shard thread only.
 */
#ifndef SB_LOG_WRITER_H
#define SB_LOG_WRITER_H

#include <liburing.h>
#include <sched.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "histogram.h"

/**
 * A completion callback for an operation another part of the shard puts on the ring (a
 * consumer's disk read): the operation's user_data is the address of this struct (tag bits 0),
 * and fn(ctx, res) runs from inside the writer's reaping, so it must only record the result.
 */
struct sb_log_io_cb {
    void (*fn)(void *ctx, int res);
    void *ctx;
};

struct sb_log_write {
    int slot;          /* registered file */
    uint64_t position; /* file offset */
    const unsigned char *buf; /* inside the arena, or another buffer (sb_log_writer_add) */
    uint32_t len;
    uint32_t done;     /* bytes written so far */
    uint32_t align;    /* a short write goes on from a multiple of this (direct I/O) */
    int result;        /* 0, or the error of this write or of the sync of its file */
    bool chained;      /* first queued in its file's chain, linked to the file's sync */
};

/** Groups the writer keeps: one being collected and at most two in flight. */
#define SB_LOG_WRITER_GROUPS 3

/** One group commit: collected by sb_log_writer_add(), in flight after sb_log_writer_submit(). */
struct sb_log_group {
    struct sb_log_write *writes;
    size_t write_count, write_cap;
    int *sync_slots;          /* the files this group syncs, each once */
    unsigned char *sync_state; /* per sync_slots entry: enum in log_writer.c */
    size_t sync_count;
    int *extra_syncs;         /* files to sync without a write in this group */
    size_t extra_sync_count;
    unsigned writes_pending;  /* writes not yet fully done */
    unsigned syncs_pending;
    bool sync;
    bool parity;              /* odd groups sync through the second files */
    bool overlap_safe;        /* its syncs may run beside the older group's (see submit) */
    bool resync;              /* a submission split one of its chains: sync all files again
                                 once everything completed (see flush_sq()) */
    int result;               /* 0, or the first error of its writes and syncs */
    /* When its first sync issued on its own (not chained) was queued; 0 none. */
    int64_t syncs_started_ns;
};

struct sb_log_writer {
    struct io_uring ring;
    bool ring_ready;
    unsigned char *arena;
    size_t arena_bytes;
    int *slot_fds;            /* -1 = free */
    int *sync_slot;           /* per slot: a second open file of the same file, registered at
                                 slot_count + slot, for the syncs of odd groups, or -1 (see
                                 sb_log_writer_file_add()) */
    unsigned slot_count, slots_used;
    bool sync_files;          /* open the second files (default when the table could be
                                 doubled; tests turn it off) */
    /* groups[collecting] takes sb_log_writer_add(); the in_flight groups before it (in the
     * ring of SB_LOG_WRITER_GROUPS) are in the kernel, the oldest first. */
    struct sb_log_group groups[SB_LOG_WRITER_GROUPS];
    unsigned collecting;
    unsigned in_flight;
    /* The group sb_log_writer_poll() last reported complete (NULL before): its results stay
     * readable until the next sb_log_writer_submit(). */
    struct sb_log_group *done;
    int result;               /* done->result, kept here for callers */
    unsigned unsubmitted;     /* SQEs prepared but not yet accepted by the kernel */
    /* Wake-ups through the eventfd (-1: none). */
    int eventfd;
    bool eventfd_armed;
    uint64_t eventfd_value;
    /* Completions of other users of the ring (the network: user_data with bit 63 set), kept
     * for sb_log_writer_take_foreign() rather than handled from inside the reaping loop, so
     * their handler may prepare new operations freely. */
    struct io_uring_cqe *foreign, *foreign_taken; /* two buffers, swapped by take */
    size_t foreign_count, foreign_cap, foreign_taken_cap;
    bool foreign_stalled;     /* out of memory while keeping one: it was left in the queue
                                 and reaping stopped there until the next reap (nothing lost;
                                 set for the owner to report, which clears it) */
    uint64_t callbacks_run;   /* struct sb_log_io_cb completions handled so far */
    /* Counters for metrics and benchmarks. */
    uint64_t groups_submitted, bytes_written, short_writes, busy_retries;
    uint64_t linked_syncs, unlinked_syncs; /* syncs chained to their writes / issued after */
    uint64_t overlapped;      /* groups submitted while an older one was still syncing */
    /* How long the syncs a group issues on its own (after its writes, not chained to them)
     * take, from the first one's issue to the last one's completion. A chained sync's time is
     * not known apart from its writes' (their completions arrive together). */
    struct sb_latency_histogram sync_latency;
    /* Fault injection for tests (tests/test_log_faults.c), off when fail_sync_error is 0: the
     * first sync completion that counts syncs_completed to fail_sync_after or beyond and
     * belongs to the oldest group in flight while a younger group is in flight too reports
     * fail_sync_error instead of its result (the sync itself succeeded); then
     * fail_sync_error is 0 again. Set and read on the owner's thread only (a test gets there
     * with sb_shard_call()). */
    int fail_sync_error;
    uint64_t fail_sync_after;
    uint64_t syncs_completed; /* sync completions handled so far (cancelled ones included) */
};

/** user_data bit that marks an operation of another user of the ring (see foreign above). */
#define SB_LOG_WRITER_FOREIGN (1ull << 63)

/**
 * sb_log_writer_init - set up the ring (single issuer, deferred task running when the kernel
 * has them; SQPOLL when @sqpoll), register an arena of @arena_bytes and a sparse table of
 * @max_files files. @eventfd: the shard parker's eventfd, or -1.
 * Returns 0 or a negative errno (-ENOMEM, or io_uring_queue_init's error).
 */
int sb_log_writer_init(struct sb_log_writer *w, size_t arena_bytes, unsigned max_files,
                       int eventfd, bool sqpoll);

/**
 * sb_log_writer_set_worker_cpus - let the kernel's io-wq workers (which carry out buffered
 * writes and fsyncs) run on @cpus instead of inheriting the pinned shard's single CPU, where
 * they would wait for the spinning shard to be preempted. Returns 0 or a negative errno.
 */
int sb_log_writer_set_worker_cpus(struct sb_log_writer *w, const cpu_set_t *cpus);

/** sb_log_writer_destroy - tear down (waits for the groups in flight to finish first). */
void sb_log_writer_destroy(struct sb_log_writer *w);

/** sb_log_writer_file_add - register @fd; returns its slot, or -ENFILE when the table is full,
 *  or another negative errno. A second open file of the same file (opened read-only through
 *  /proc/self/fd, registered in the table's upper half, then closed: the ring keeps it) goes
 *  beside it for the syncs of odd groups; without it (a table that RLIMIT_NOFILE kept at
 *  @max_files, no /proc) the file works, its groups' syncs just never overlap. */
int sb_log_writer_file_add(struct sb_log_writer *w, int fd);

/** sb_log_writer_file_remove - free @slot and its second open file (no write or sync to it
 *  may be in flight). */
void sb_log_writer_file_remove(struct sb_log_writer *w, int slot);

/**
 * sb_log_writer_add - add a write of @len bytes at @buf to @slot at @position, to the group
 * being collected. @buf is inside the arena (a fixed-buffer write), or any memory that stays
 * untouched until the group's writes are done. Returns 0 or -ENOMEM.
 */
int sb_log_writer_add(struct sb_log_writer *w, int slot, uint64_t position,
                      const unsigned char *buf, uint32_t len);

/**
 * sb_log_writer_add_aligned - sb_log_writer_add() for an O_DIRECT file: @position, @len and
 * @buf are multiples of @align, and a short write is continued from a multiple of it too (a
 * short write of less than @align fails with -EIO). Returns 0 or -ENOMEM.
 */
int sb_log_writer_add_aligned(struct sb_log_writer *w, int slot, uint64_t position,
                              const unsigned char *buf, uint32_t len, uint32_t align);

/**
 * sb_log_writer_add_sync - also sync @slot in the group being collected although it has no
 * write there (data written by earlier groups without a sync). Returns 0 or -ENOMEM.
 */
int sb_log_writer_add_sync(struct sb_log_writer *w, int slot);

/**
 * sb_log_writer_can_submit - may the group being collected be submitted now: no group is in
 * flight, or one is whose writes are all done, none failed (only its syncs are left).
 */
static inline bool sb_log_writer_can_submit(const struct sb_log_writer *w)
{
    if (w->in_flight == 0)
        return true;
    const struct sb_log_group *oldest =
        &w->groups[(w->collecting + SB_LOG_WRITER_GROUPS - 1) % SB_LOG_WRITER_GROUPS];
    return w->in_flight == 1 && oldest->writes_pending == 0 && oldest->result == 0;
}

/**
 * sb_log_writer_submit - send the collected writes (and, with @sync, an fdatasync of each file
 * after its writes). Returns 0 (the group is in flight, or complete at once when empty),
 * -EBUSY when sb_log_writer_can_submit() says no (nothing sent), or a negative errno from
 * io_uring_submit other than -EBUSY (which it handles).
 */
int sb_log_writer_submit(struct sb_log_writer *w, bool sync);

/**
 * sb_log_writer_poll - reap completions without blocking and push the groups forward. Returns
 * 1 when the oldest group in flight is complete (then w->done is that group: w->result and
 * w->done->result are 0 or its first negative errno, w->done->writes[i].result says how each
 * write fared; valid until the next sb_log_writer_submit() or until the next call that
 * returns 1, which replaces them), 0 while it is still in flight, -EINVAL with no group in
 * flight.
 */
int sb_log_writer_poll(struct sb_log_writer *w);

/**
 * sb_log_writer_group_done - the oldest group in flight has nothing left in the kernel: its
 * last completion was reaped (perhaps by sb_log_writer_reap() for another user of the ring),
 * and sb_log_writer_poll() will now report it complete. Call that before sleeping in
 * sb_log_writer_wait(): no completion of this group would come to end the sleep.
 */
static inline bool sb_log_writer_group_done(const struct sb_log_writer *w)
{
    if (w->in_flight == 0)
        return false;
    const struct sb_log_group *oldest =
        &w->groups[(w->collecting + SB_LOG_WRITER_GROUPS - w->in_flight) % SB_LOG_WRITER_GROUPS];
    return oldest->writes_pending == 0 && oldest->syncs_pending == 0;
}

/**
 * sb_log_writer_wait - block until a completion arrives (I/O, or the eventfd written by a
 * waker), at most @timeout_ns (< 0: no limit). Call sb_log_writer_poll() afterwards.
 * Returns 0, -ETIME on timeout, or a negative errno.
 */
int sb_log_writer_wait(struct sb_log_writer *w, int64_t timeout_ns);

/**
 * sb_log_writer_get_sqe - a submission queue entry for another user of the ring (the
 * network), submitted with the next submit, poll, reap or wait. Its user_data must have
 * SB_LOG_WRITER_FOREIGN set. Returns NULL when the ring cannot take one now (after trying to
 * make room).
 */
struct io_uring_sqe *sb_log_writer_get_sqe(struct sb_log_writer *w);

/** sb_log_writer_flush - hand the prepared SQEs to the kernel now. 0 or a negative errno. */
int sb_log_writer_flush(struct sb_log_writer *w);

/**
 * sb_log_writer_reap - with or without a group in flight: submit what is prepared, reap the
 * completions that are there (without blocking), push a group in flight forward. Returns 0 or
 * a negative errno from the ring.
 */
int sb_log_writer_reap(struct sb_log_writer *w);

/**
 * sb_log_writer_take_foreign - the foreign completions reaped so far (*count of them); the
 * array stays valid until the next call into the writer. The caller handles them all.
 */
const struct io_uring_cqe *sb_log_writer_take_foreign(struct sb_log_writer *w, size_t *count);

#endif /* SB_LOG_WRITER_H */
