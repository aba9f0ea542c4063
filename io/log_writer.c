/*
 * log_writer.c - group commit through io_uring; see log_writer.h.
 */
#include "log_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#define SQ_ENTRIES 256u
#define CQ_ENTRIES (4 * SQ_ENTRIES)

/* user_data: index << 4 | group << 2 | tag (tag 0: a struct sb_log_io_cb's address) */
enum { TAG_WRITE = 1, TAG_SYNC = 2, TAG_EVENTFD = 3 };

static uint64_t op_data(unsigned group, size_t index, unsigned tag)
{
    return (uint64_t)index << 4 | (uint64_t)group << 2 | tag;
}

/* Where the sync of each file of a group (sync_state[k] for sync_slots[k]) stands. */
enum {
    SYNC_WAITING, /* to be issued on its own once all the group's writes are done */
    SYNC_LINKED,  /* in the kernel, chained after the file's writes */
    SYNC_ISSUED,  /* in the kernel, on its own */
    SYNC_DONE,
};

static int ring_setup(struct sb_log_writer *w, bool sqpoll)
{
    struct io_uring_params p;
    memset(&p, 0, sizeof(p));
    p.flags = IORING_SETUP_CQSIZE;
    p.cq_entries = CQ_ENTRIES;
    if (sqpoll) {
        p.flags |= IORING_SETUP_SQPOLL;
        p.sq_thread_idle = 100; /* ms */
        return io_uring_queue_init_params(SQ_ENTRIES, &w->ring, &p);
    }
    /* Only this thread submits, and completions run when it asks for them: fewer interrupts
     * of the shard. TASKRUN_FLAG: the kernel raises IORING_SQ_TASKRUN in the SQ ring when
     * completions wait to be run, so the shard's loop enters the kernel only then (see
     * get_events()) instead of once per turn. Older kernels refuse the flags; then go
     * without. */
    p.flags |= IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN |
               IORING_SETUP_TASKRUN_FLAG;
    int rc = io_uring_queue_init_params(SQ_ENTRIES, &w->ring, &p);
    if (rc == -EINVAL) {
        memset(&p, 0, sizeof(p));
        p.flags = IORING_SETUP_CQSIZE;
        p.cq_entries = CQ_ENTRIES;
        rc = io_uring_queue_init_params(SQ_ENTRIES, &w->ring, &p);
    }
    return rc;
}

/*
 * The sparse file table: 2 * @max_files slots, the upper half for the second open files (slot
 * s has its second file at max_files + s), when RLIMIT_NOFILE allows that many (the kernel
 * refuses a table larger than it: -EMFILE); else @max_files slots and no second files.
 */
static int register_table(struct sb_log_writer *w, unsigned max_files)
{
    int rc = io_uring_register_files_sparse(&w->ring, 2 * max_files);
    if (rc == -EMFILE || rc == -EINVAL) {
        w->sync_files = false;
        rc = io_uring_register_files_sparse(&w->ring, max_files);
    }
    return rc;
}

int sb_log_writer_init(struct sb_log_writer *w, size_t arena_bytes, unsigned max_files,
                       int eventfd, bool sqpoll)
{
    memset(w, 0, sizeof(*w));
    w->eventfd = eventfd;
    w->arena_bytes = arena_bytes;
    w->arena = aligned_alloc(4096, (arena_bytes + 4095) / 4096 * 4096);
    w->slot_fds = malloc(max_files * sizeof(int));
    w->sync_slot = malloc(max_files * sizeof(int));
    w->sync_files = true;
    bool ok = w->arena && w->slot_fds && w->sync_slot;
    for (unsigned g = 0; g < SB_LOG_WRITER_GROUPS; g++) {
        struct sb_log_group *gr = &w->groups[g];
        gr->sync_slots = malloc(max_files * sizeof(int));
        gr->sync_state = malloc(max_files);
        gr->extra_syncs = malloc(max_files * sizeof(int));
        ok = ok && gr->sync_slots && gr->sync_state && gr->extra_syncs;
    }
    if (!ok) {
        sb_log_writer_destroy(w);
        return -ENOMEM;
    }
    for (unsigned i = 0; i < max_files; i++)
        w->slot_fds[i] = w->sync_slot[i] = -1;
    w->slot_count = max_files;
    int rc = ring_setup(w, sqpoll);
    if (rc) {
        sb_log_writer_destroy(w);
        return rc;
    }
    w->ring_ready = true;
    struct iovec iov = {w->arena, arena_bytes};
    rc = io_uring_register_buffers(&w->ring, &iov, 1);
    if (!rc)
        rc = register_table(w, max_files);
    if (rc) {
        sb_log_writer_destroy(w);
        return rc;
    }
    return 0;
}

int sb_log_writer_set_worker_cpus(struct sb_log_writer *w, const cpu_set_t *cpus)
{
    return io_uring_register_iowq_aff(&w->ring, sizeof(*cpus), cpus);
}

void sb_log_writer_destroy(struct sb_log_writer *w)
{
    while (w->ring_ready && w->in_flight)
        if (sb_log_writer_poll(w) == 0)
            sb_log_writer_wait(w, 1000000);
    if (w->ring_ready)
        io_uring_queue_exit(&w->ring);
    w->ring_ready = false;
    free(w->arena);
    free(w->foreign);
    free(w->foreign_taken);
    free(w->slot_fds);
    free(w->sync_slot);
    w->sync_slot = NULL;
    for (unsigned g = 0; g < SB_LOG_WRITER_GROUPS; g++) {
        struct sb_log_group *gr = &w->groups[g];
        free(gr->sync_slots);
        free(gr->sync_state);
        free(gr->extra_syncs);
        free(gr->writes);
        memset(gr, 0, sizeof(*gr));
    }
    w->arena = NULL;
    w->foreign = w->foreign_taken = NULL;
    w->slot_fds = NULL;
}

static int free_slot(const struct sb_log_writer *w)
{
    for (unsigned i = 0; i < w->slot_count; i++)
        if (w->slot_fds[i] == -1)
            return (int)i;
    return -ENFILE;
}

/* (Re)register a second open file of @slot's file at slot_count + slot (see
 * sb_log_writer_file_add()); a fresh one also forgets errors the old one had not reported. */
static void add_sync_file(struct sb_log_writer *w, int slot)
{
    w->sync_slot[slot] = -1;
    if (!w->sync_files)
        return;
    const unsigned at = w->slot_count + (unsigned)slot;
    char path[64];
    snprintf(path, sizeof(path), "/proc/self/fd/%d", w->slot_fds[slot]);
    const int sync_fd = open(path, O_RDONLY | O_CLOEXEC);
    if (sync_fd < 0)
        return;
    if (io_uring_register_files_update(&w->ring, at, &sync_fd, 1) == 1)
        w->sync_slot[slot] = (int)at;
    close(sync_fd); /* the ring holds its own reference */
}

int sb_log_writer_file_add(struct sb_log_writer *w, int fd)
{
    const int slot = free_slot(w);
    if (slot < 0)
        return slot;
    int rc = io_uring_register_files_update(&w->ring, (unsigned)slot, &fd, 1);
    if (rc < 0)
        return rc;
    w->slot_fds[slot] = fd;
    w->slots_used++;
    add_sync_file(w, slot);
    return slot;
}

void sb_log_writer_file_remove(struct sb_log_writer *w, int slot)
{
    int none = -1;
    if (w->sync_slot[slot] >= 0) {
        io_uring_register_files_update(&w->ring, (unsigned)w->sync_slot[slot], &none, 1);
        w->sync_slot[slot] = -1;
    }
    io_uring_register_files_update(&w->ring, (unsigned)slot, &none, 1);
    w->slot_fds[slot] = -1;
    w->slots_used--;
}

int sb_log_writer_add(struct sb_log_writer *w, int slot, uint64_t position,
                      const unsigned char *buf, uint32_t len)
{
    return sb_log_writer_add_aligned(w, slot, position, buf, len, 1);
}

int sb_log_writer_add_aligned(struct sb_log_writer *w, int slot, uint64_t position,
                              const unsigned char *buf, uint32_t len, uint32_t align)
{
    struct sb_log_group *g = &w->groups[w->collecting];
    if (g->write_count == g->write_cap) {
        size_t cap = g->write_cap ? g->write_cap * 2 : 64;
        struct sb_log_write *writes = realloc(g->writes, cap * sizeof(*writes));
        if (!writes)
            return -ENOMEM;
        g->writes = writes;
        g->write_cap = cap;
    }
    g->writes[g->write_count++] = (struct sb_log_write){
        .slot = slot, .position = position, .buf = buf, .len = len, .align = align};
    return 0;
}

int sb_log_writer_add_sync(struct sb_log_writer *w, int slot)
{
    struct sb_log_group *g = &w->groups[w->collecting];
    for (size_t k = 0; k < g->extra_sync_count; k++)
        if (g->extra_syncs[k] == slot)
            return 0;
    g->extra_syncs[g->extra_sync_count++] = slot;
    return 0;
}

static int process_cqes(struct sb_log_writer *w);

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/*
 * The kernel took only part of the queued SQEs (it could not allocate a request): a chain may
 * have been cut in two, its sync then running before some of its writes. Every group with
 * operations in the kernel syncs all its files once more when everything else completed.
 */
static void chains_split(struct sb_log_writer *w)
{
    for (unsigned k = 1; k <= w->in_flight; k++) {
        struct sb_log_group *g =
            &w->groups[(w->collecting + SB_LOG_WRITER_GROUPS - k) % SB_LOG_WRITER_GROUPS];
        if (g->sync && (g->writes_pending || g->syncs_pending))
            g->resync = true;
    }
}

/* Hand the prepared SQEs to the kernel; a full CQ (-EBUSY) is drained first. */
static int flush_sq(struct sb_log_writer *w)
{
    while (w->unsubmitted) {
        int rc = io_uring_submit(&w->ring);
        if (rc >= 0) {
            if (rc > 0 && (unsigned)rc < w->unsubmitted)
                chains_split(w);
            w->unsubmitted -= (unsigned)rc > w->unsubmitted ? w->unsubmitted : (unsigned)rc;
            if (rc == 0)
                break;
            continue;
        }
        if (rc == -EBUSY || rc == -EAGAIN) {
            w->busy_retries++;
            rc = process_cqes(w);
            if (rc)
                return rc;
            continue;
        }
        if (rc != -EINTR)
            return rc;
    }
    return 0;
}

static struct io_uring_sqe *get_sqe(struct sb_log_writer *w)
{
    struct io_uring_sqe *sqe;
    while (!(sqe = io_uring_get_sqe(&w->ring))) {
        int rc = flush_sq(w);
        if (rc)
            return NULL;
    }
    w->unsubmitted++;
    return sqe;
}

/* Queue write @i of group @gi from where it stands; @link: chain the next SQE after it. */
static int queue_write(struct sb_log_writer *w, unsigned gi, size_t i, bool link)
{
    struct sb_log_write *wr = &w->groups[gi].writes[i];
    struct io_uring_sqe *sqe = get_sqe(w);
    if (!sqe)
        return -EIO;
    /* A buffer outside the registered arena (the shard's staging buffer of direct writes)
     * goes as a plain write: the kernel pins its pages for the write. */
    if (wr->buf >= w->arena && wr->buf < w->arena + w->arena_bytes)
        io_uring_prep_write_fixed(sqe, wr->slot, wr->buf + wr->done, wr->len - wr->done,
                                  wr->position + wr->done, 0);
    else
        io_uring_prep_write(sqe, wr->slot, wr->buf + wr->done, wr->len - wr->done,
                            wr->position + wr->done);
    sqe->flags |= IOSQE_FIXED_FILE | (link ? IOSQE_IO_LINK : 0);
    io_uring_sqe_set_data64(sqe, op_data(gi, i, TAG_WRITE));
    return 0;
}

/* The files group @g syncs, each once: those written and those added to sync only. */
static void collect_syncs(struct sb_log_group *g)
{
    g->sync_count = 0;
    for (size_t i = 0; i < g->write_count + g->extra_sync_count; i++) {
        int slot = i < g->write_count ? g->writes[i].slot : g->extra_syncs[i - g->write_count];
        bool seen = false;
        for (size_t k = 0; k < g->sync_count && !seen; k++)
            seen = g->sync_slots[k] == slot;
        if (!seen) {
            g->sync_state[g->sync_count] = SYNC_WAITING;
            g->sync_slots[g->sync_count++] = slot;
        }
    }
}

/* Queue the sync of file @k of group @gi; @state: SYNC_LINKED when it ends a chain of its
 * writes, else SYNC_ISSUED. */
static int queue_sync(struct sb_log_writer *w, unsigned gi, size_t k, unsigned char state)
{
    struct sb_log_group *g = &w->groups[gi];
    struct io_uring_sqe *sqe = get_sqe(w);
    if (!sqe)
        return -EIO;
    const int slot = g->sync_slots[k];
    const int target = g->parity && w->sync_slot[slot] >= 0 ? w->sync_slot[slot] : slot;
    io_uring_prep_fsync(sqe, target, IORING_FSYNC_DATASYNC);
    sqe->flags |= IOSQE_FIXED_FILE;
    io_uring_sqe_set_data64(sqe, op_data(gi, k, TAG_SYNC));
    g->sync_state[k] = state;
    g->syncs_pending++;
    if (state == SYNC_LINKED) {
        w->linked_syncs++;
    } else {
        w->unlinked_syncs++;
        if (!g->syncs_started_ns)
            g->syncs_started_ns = monotonic_ns();
    }
    return 0;
}

/*
 * Queue file @k's writes and its sync as one chain. A file synced without a write in this
 * group (data of earlier groups whose writes are done) is synced at once. A chain that does
 * not fit in the submission queue, even after submitting what is queued, is not started: its
 * writes go unlinked and its sync waits for them (a chain split across two submissions would
 * end at the first, and the sync could then run before the writes).
 */
static int queue_file_chain(struct sb_log_writer *w, unsigned gi, size_t k)
{
    struct sb_log_group *g = &w->groups[gi];
    const int slot = g->sync_slots[k];
    unsigned n = 0;
    for (size_t i = 0; i < g->write_count; i++)
        n += g->writes[i].slot == slot;
    if (n == 0)
        return queue_sync(w, gi, k, SYNC_ISSUED);
    if (n + 1 > SQ_ENTRIES)
        return 0;
    if (io_uring_sq_space_left(&w->ring) < n + 1) {
        int rc = flush_sq(w);
        if (rc)
            return rc;
        if (io_uring_sq_space_left(&w->ring) < n + 1)
            return 0;
    }
    for (size_t i = 0; i < g->write_count; i++) {
        if (g->writes[i].slot != slot)
            continue;
        g->writes[i].chained = true;
        int rc = queue_write(w, gi, i, true);
        if (rc)
            return rc;
    }
    return queue_sync(w, gi, k, SYNC_LINKED);
}

/* Issue group @gi's syncs that wait (not chained, or their chain broke; files whose writes
 * failed are synced too: harmless). */
static int issue_waiting_syncs(struct sb_log_writer *w, unsigned gi)
{
    struct sb_log_group *g = &w->groups[gi];
    for (size_t k = 0; k < g->sync_count; k++) {
        if (g->sync_state[k] != SYNC_WAITING)
            continue;
        int rc = queue_sync(w, gi, k, SYNC_ISSUED);
        if (rc)
            return rc;
    }
    return 0;
}

/* The group in flight after @gi, or -1. */
static int younger_in_flight(const struct sb_log_writer *w, unsigned gi)
{
    const unsigned oldest =
        (w->collecting + SB_LOG_WRITER_GROUPS - w->in_flight) % SB_LOG_WRITER_GROUPS;
    return w->in_flight == 2 && gi == oldest ? (int)((gi + 1) % SB_LOG_WRITER_GROUPS) : -1;
}

/* Group @gi's waiting syncs may go once all its writes are done and, unless they go through
 * other open files than the older group's (overlap_safe), the older group in flight has
 * nothing left in the kernel (see the top of log_writer.h). */
static int maybe_issue_syncs(struct sb_log_writer *w, unsigned gi)
{
    struct sb_log_group *g = &w->groups[gi];
    if (!g->sync || g->writes_pending)
        return 0;
    const unsigned oldest =
        (w->collecting + SB_LOG_WRITER_GROUPS - w->in_flight) % SB_LOG_WRITER_GROUPS;
    if (gi != oldest && !g->overlap_safe) {
        const struct sb_log_group *older =
            &w->groups[(gi + SB_LOG_WRITER_GROUPS - 1) % SB_LOG_WRITER_GROUPS];
        if (older->writes_pending || older->syncs_pending)
            return 0;
    }
    return issue_waiting_syncs(w, gi);
}

/* An operation of group @gi completed: issue what may go now (its syncs, its second round of
 * syncs after a split chain, the younger group's syncs once this one is done). */
static int after_completion(struct sb_log_writer *w, unsigned gi)
{
    struct sb_log_group *g = &w->groups[gi];
    int rc = maybe_issue_syncs(w, gi);
    if (rc || g->writes_pending || g->syncs_pending)
        return rc;
    if (g->resync) {
        g->resync = false;
        for (size_t k = 0; k < g->sync_count; k++)
            g->sync_state[k] = SYNC_WAITING;
        return maybe_issue_syncs(w, gi);
    }
    const int y = younger_in_flight(w, gi);
    return y >= 0 ? maybe_issue_syncs(w, (unsigned)y) : 0;
}

static void set_error(struct sb_log_group *g, int err)
{
    if (g->result == 0)
        g->result = err;
}

/* The ring failed (an operation may not have been queued): every group in flight fails. */
static void fail_in_flight(struct sb_log_writer *w, int err)
{
    for (unsigned k = 1; k <= w->in_flight; k++)
        set_error(&w->groups[(w->collecting + SB_LOG_WRITER_GROUPS - k) % SB_LOG_WRITER_GROUPS],
                  err);
}

static int handle_write(struct sb_log_writer *w, unsigned gi, size_t i, int res)
{
    struct sb_log_group *g = &w->groups[gi];
    struct sb_log_write *wr = &g->writes[i];
    /* -ECANCELED: an earlier write of its chain failed or was short, so this one never ran. */
    if (res == -EAGAIN || res == -EINTR || res == -ECANCELED)
        return queue_write(w, gi, i, false);
    if (res < 0 || res == 0) {
        wr->result = res < 0 ? res : -EIO;
        set_error(g, wr->result);
        g->writes_pending--;
        return 0;
    }
    const uint32_t before = wr->done;
    wr->done += (uint32_t)res;
    w->bytes_written += (uint64_t)res;
    if (wr->done < wr->len) {
        /* A direct write goes on from a block boundary (the bytes before it in that block are
         * written again, with the same values); one that wrote less than a block would repeat
         * forever: it fails. */
        wr->done -= wr->done % wr->align;
        if (wr->done == before) {
            wr->result = -EIO;
            set_error(g, wr->result);
            g->writes_pending--;
            return 0;
        }
        w->short_writes++;
        return queue_write(w, gi, i, false); /* the rest, at the right position */
    }
    g->writes_pending--;
    return 0;
}

static int handle_sync(struct sb_log_writer *w, unsigned gi, size_t k, int res)
{
    struct sb_log_group *g = &w->groups[gi];
    g->syncs_pending--;
    if (res == -ECANCELED && g->sync_state[k] == SYNC_LINKED) {
        /* Its chain broke (a write failed or was short) before it ran: issued on its own once
         * the writes are done (perhaps already now). */
        g->sync_state[k] = SYNC_WAITING;
        return 0; /* issued by after_completion() once the writes are done */
    }
    g->sync_state[k] = SYNC_DONE;
    if (res < 0) {
        /* An error is reported once per open file: whichever of the two reported it, the
         * second file is replaced by a fresh one, which does not report it again to a later
         * group (the first file is synced once more after the cut: group_fail() in
         * shard_log.c). An in-flight sync keeps the file it started with. */
        if (g->sync_slots[k] >= 0 && (unsigned)g->sync_slots[k] < w->slot_count &&
            w->slot_fds[g->sync_slots[k]] >= 0)
            add_sync_file(w, g->sync_slots[k]);
        /* Every write to that file is in doubt: fail them all. */
        int slot = g->sync_slots[k];
        for (size_t i = 0; i < g->write_count; i++)
            if (g->writes[i].slot == slot && g->writes[i].result == 0)
                g->writes[i].result = res;
        set_error(g, res);
    }
    if (g->syncs_pending == 0 && g->writes_pending == 0 && g->syncs_started_ns)
        sb_histogram_record(&w->sync_latency, monotonic_ns() - g->syncs_started_ns);
    return 0;
}

/* Copy @cqe into the foreign list; false when there is no memory for it (then nothing was
 * kept, and the caller leaves the CQE in the completion queue). */
static bool keep_foreign(struct sb_log_writer *w, const struct io_uring_cqe *cqe)
{
    if (w->foreign_count == w->foreign_cap) {
        size_t cap = w->foreign_cap ? w->foreign_cap * 2 : 64;
        struct io_uring_cqe *n = realloc(w->foreign, cap * sizeof(*n));
        if (!n)
            return false;
        w->foreign = n;
        w->foreign_cap = cap;
    }
    w->foreign[w->foreign_count++] = *cqe; /* the 16-byte form: the ring has no CQE32 */
    return true;
}

/*
 * Run the completions waiting in the kernel (DEFER_TASKRUN posts them only when we ask). With
 * IORING_SETUP_TASKRUN_FLAG the system call is made only when the kernel says some are waiting;
 * without it (older kernels, SQPOLL), always.
 */
static void get_events(struct sb_log_writer *w)
{
    if ((w->ring.flags & IORING_SETUP_TASKRUN_FLAG) &&
        !(IO_URING_READ_ONCE(*w->ring.sq.kflags) & (IORING_SQ_TASKRUN | IORING_SQ_CQ_OVERFLOW)))
        return;
    io_uring_get_events(&w->ring);
}

static int process_cqes(struct sb_log_writer *w)
{
    struct io_uring_cqe *cqe;
    int rc = 0;
    while (!rc && io_uring_peek_cqe(&w->ring, &cqe) == 0) {
        uint64_t data = io_uring_cqe_get_data64(cqe);
        int res = cqe->res;
        if (data & SB_LOG_WRITER_FOREIGN) {
            if (!keep_foreign(w, cqe)) {
                /* Out of memory: the completion stays in the queue (the kernel keeps it, and
                 * keeps later ones in its overflow list), so nothing is lost; the next reap
                 * tries again. */
                w->foreign_stalled = true;
                break;
            }
            io_uring_cqe_seen(&w->ring, cqe);
            continue;
        }
        io_uring_cqe_seen(&w->ring, cqe);
        const unsigned gi = (unsigned)(data >> 2) & 3;
        switch (data & 3) {
        case TAG_WRITE:
            rc = handle_write(w, gi, (size_t)(data >> 4), res);
            if (!rc)
                rc = after_completion(w, gi);
            break;
        case TAG_SYNC:
            w->syncs_completed++;
            if (w->fail_sync_error && w->syncs_completed >= w->fail_sync_after &&
                res != -ECANCELED && younger_in_flight(w, gi) >= 0) {
                res = w->fail_sync_error; /* the test hook (log_writer.h) */
                w->fail_sync_error = 0;
            }
            rc = handle_sync(w, gi, (size_t)(data >> 4), res);
            if (!rc)
                rc = after_completion(w, gi);
            break;
        case TAG_EVENTFD:
            w->eventfd_armed = false;
            break;
        default: /* tag 0: a struct sb_log_io_cb */
            if (data) {
                struct sb_log_io_cb *cb = (struct sb_log_io_cb *)(uintptr_t)data;
                w->callbacks_run++;
                cb->fn(cb->ctx, res);
            }
            break;
        }
    }
    return rc;
}

int sb_log_writer_submit(struct sb_log_writer *w, bool sync)
{
    if (!sb_log_writer_can_submit(w))
        return -EBUSY;
    const unsigned gi = w->collecting;
    struct sb_log_group *g = &w->groups[gi];
    const bool older = w->in_flight != 0;
    if (older)
        w->overlapped++;
    w->in_flight++;
    w->collecting = (gi + 1) % SB_LOG_WRITER_GROUPS;
    /* The group collected next is empty (it may be the one w->done showed: its results were
     * promised until this submit only). */
    struct sb_log_group *next = &w->groups[w->collecting];
    if (next == w->done)
        w->done = NULL;
    next->write_count = 0;
    next->extra_sync_count = 0;
    g->sync = sync;
    g->parity = (w->groups_submitted & 1) != 0; /* consecutive groups differ */
    g->resync = false;
    g->result = 0;
    g->writes_pending = (unsigned)g->write_count;
    g->syncs_pending = 0;
    g->sync_count = 0;
    g->syncs_started_ns = 0;
    w->groups_submitted++;
    int rc = 0;
    g->overlap_safe = !older;
    if (sync) {
        collect_syncs(g);
        /* Beside an older group, chained syncs only when every file has its second open
         * file (this group's parity differs from the older one's). */
        g->overlap_safe = true;
        for (size_t k = 0; k < g->sync_count && older; k++)
            g->overlap_safe = g->overlap_safe && w->sync_slot[g->sync_slots[k]] >= 0;
        for (size_t k = 0; k < g->sync_count && !rc && g->overlap_safe; k++)
            rc = queue_file_chain(w, gi, k);
    }
    for (size_t i = 0; i < g->write_count && !rc; i++)
        if (!g->writes[i].chained)
            rc = queue_write(w, gi, i, false);
    if (!rc && !g->overlap_safe)
        rc = maybe_issue_syncs(w, gi); /* a group of syncs only, the older one already done */
    if (!rc)
        rc = flush_sq(w);
    if (rc)
        set_error(g, rc); /* operations already in the kernel still complete: poll waits */
    return rc;
}

int sb_log_writer_poll(struct sb_log_writer *w)
{
    if (!w->in_flight)
        return -EINVAL;
    /* With DEFER_TASKRUN completions are posted only when we enter the kernel for them. */
    get_events(w);
    int rc = process_cqes(w);
    if (!rc)
        rc = flush_sq(w);
    if (rc)
        fail_in_flight(w, rc); /* operations already in the kernel still complete: wait */
    const unsigned oldest =
        (w->collecting + SB_LOG_WRITER_GROUPS - w->in_flight) % SB_LOG_WRITER_GROUPS;
    struct sb_log_group *g = &w->groups[oldest];
    if (!rc && !g->writes_pending && !g->syncs_pending) {
        /* Syncs still waiting (for an older group, now gone): the oldest may issue them. */
        rc = maybe_issue_syncs(w, oldest);
        if (rc)
            fail_in_flight(w, rc);
    }
    if (g->writes_pending || g->syncs_pending)
        return 0;
    w->in_flight--;
    w->done = g;
    w->result = g->result;
    return 1;
}

struct io_uring_sqe *sb_log_writer_get_sqe(struct sb_log_writer *w)
{
    return get_sqe(w);
}

int sb_log_writer_flush(struct sb_log_writer *w)
{
    return flush_sq(w);
}

int sb_log_writer_reap(struct sb_log_writer *w)
{
    /* A group in flight is pushed forward (its syncs queued) but completed only by
     * sb_log_writer_poll(), which its owner calls. */
    int rc = flush_sq(w);
    get_events(w);
    if (!rc)
        rc = process_cqes(w);
    if (!rc)
        rc = flush_sq(w);
    if (rc)
        fail_in_flight(w, rc);
    return rc;
}

const struct io_uring_cqe *sb_log_writer_take_foreign(struct sb_log_writer *w, size_t *count)
{
    /* Swap buffers: completions reaped while the caller handles these (its new operations may
     * make room in the ring by reaping) go into the other one. */
    struct io_uring_cqe *taken = w->foreign;
    size_t taken_cap = w->foreign_cap;
    *count = w->foreign_count;
    w->foreign = w->foreign_taken;
    w->foreign_cap = w->foreign_taken_cap;
    w->foreign_count = 0;
    w->foreign_taken = taken;
    w->foreign_taken_cap = taken_cap;
    return taken;
}

int sb_log_writer_wait(struct sb_log_writer *w, int64_t timeout_ns)
{
    const uint64_t callbacks_before = w->callbacks_run;
    const bool could_submit = sb_log_writer_can_submit(w);
    if (w->eventfd >= 0 && !w->eventfd_armed) {
        struct io_uring_sqe *sqe = get_sqe(w);
        if (sqe) {
            io_uring_prep_read(sqe, w->eventfd, &w->eventfd_value, sizeof(w->eventfd_value), 0);
            io_uring_sqe_set_data64(sqe, TAG_EVENTFD);
            w->eventfd_armed = true;
        }
    }
    /* Arming may have reaped completions (a full ring is drained to make room): if they were
     * the ones we would wait for, do not sleep. */
    if (w->foreign_count || sb_log_writer_group_done(w) || w->callbacks_run != callbacks_before ||
        (!could_submit && sb_log_writer_can_submit(w))) {
        if (io_uring_submit(&w->ring) >= 0)
            w->unsubmitted = 0;
        return 0;
    }
    struct __kernel_timespec ts, *tsp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tsp = &ts;
    }
    struct io_uring_cqe *cqe;
    int rc = io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1, tsp, NULL);
    if (rc >= 0) {
        w->unsubmitted = 0;
        return 0;
    }
    return rc;
}
