/*
 * shard_log.c - a shard's durable log (the bus has a data_dir).
 *
 * Group commit: events taken from the rings are encoded at once into per-partition Kafka record
 * batches in one third of the shard's write buffer (the gathering group). As soon as the log
 * may take a group (none in flight, or one whose writes are all done and only its syncs are
 * left, for a group of a quarter of its third or more, or for any group with events once the
 * one in flight is slow: sb_shard_log_can_submit()), the gathering group is submitted: each batch
 * gets its offsets and its place in the partition's log (sb_plog_reserve), and all of them
 * are written with io_uring, then synced under SB_DURABILITY_BATCH, while the next third
 * gathers the next group. Groups complete in order. When a group completes, its events are
 * acknowledged to their producers, committed to the partitions' logs, appended to the memory
 * windows, handed to the handlers and delivered to consumers, in that order: nothing is
 * visible before it is as durable as promised. A failed group (a write error, a full disk)
 * acknowledges nothing: its events fail back to their producers, the partitions' logs forget
 * the reservations and the files are cut back to the committed end; a younger group already
 * in flight (its bytes lie after the cut) fails with it, and later groups are written as
 * usual.
 *
 * Cursors whose consumer falls behind the memory window are moved to the log on disk, so a slow
 * consumer never holds back the producers, and read batches from there (verifying each CRC)
 * until they catch up with the memory window.
 *
 * Everything here runs on the shard's thread.
 */
#include "shard_log.h"

#include <errno.h>
#include <inttypes.h>
#include <liburing.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "acks.h"
#include "bus.h"
#include "compression.h"
#include "report.h"
#include "varint.h"

/* Smallest piece of the write buffer a partition's batch starts with. */
#define MIN_BATCH_BYTES (64u * 1024u)
/* Registered files per shard. */
#define MAX_FILE_SLOTS 1024u
/* Batches a disk cursor reads per loop iteration, so one reader cannot stall the shard. */
#define DISK_BATCHES_PER_TURN 8


/* Reports go to the bus's log_fn. */
#define shard_report(s, level, ...)                                                               \
    sb_report((s)->bus->cfg.log_fn, (s)->bus->cfg.log_ctx, level, __VA_ARGS__)

static void group_reset(struct sb_group *g)
{
    g->used = 0;
    g->encoded = 0;
    g->batch_count = 0;
    g->link_count = 0;
    g->ack_count = 0;
    g->derived = 0;
    g->events = 0;
    g->error = 0;
}

int sb_shard_log_init(struct sb_shard *s)
{
    size_t bytes = s->bus->cfg.write_buffer_bytes;
    int rc = sb_log_writer_init(&s->writer, bytes, MAX_FILE_SLOTS, s->parker.eventfd,
                                s->bus->cfg.sqpoll != 0);
    if (rc)
        return rc;
    /* The io-wq workers that carry out our writes and syncs would inherit this thread's pin:
     * give them the other CPUs (all of them when this is the only one). Best effort. */
    cpu_set_t workers = s->bus->allowed_cpus;
    if (CPU_COUNT(&workers) > 1)
        CPU_CLR(s->cpu, &workers);
    sb_log_writer_set_worker_cpus(&s->writer, &workers);
    /* The buffer in equal parts, one per group slot (page-aligned). */
    const size_t part = bytes / SB_SHARD_LOG_GROUPS / 4096 * 4096;
    for (int i = 0; i < SB_SHARD_LOG_GROUPS; i++) {
        s->groups[i].arena = s->writer.arena + (size_t)i * part;
        s->groups[i].cap = part;
        group_reset(&s->groups[i]);
    }
    s->acc = 0;
    s->last_sync_ms = s->last_retention_ms = s->now_ms;
    return 0;
}

void sb_shard_log_destroy(struct sb_shard *s)
{
    if (!s->durable)
        return;
    sb_log_writer_destroy(&s->writer);
    for (int i = 0; i < SB_SHARD_LOG_GROUPS; i++) {
        free(s->groups[i].batches);
        free(s->groups[i].links);
        free(s->groups[i].acks);
    }
    free(s->open_parts);
    free(s->inflated);
    free(s->retired_slots);
    free(s->retired_seq);
    free(s->unsynced_slots);
    sb_direct_stage_free(&s->stage);
}

static int push_int(int **arr, uint32_t *count, uint32_t *cap, int v)
{
    for (uint32_t i = 0; i < *count; i++)
        if ((*arr)[i] == v)
            return 0;
    if (*count == *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 16;
        int *n = realloc(*arr, ncap * sizeof(int));
        if (!n)
            return -ENOMEM;
        *arr = n;
        *cap = ncap;
    }
    (*arr)[(*count)++] = v;
    return 0;
}

/* Room in @g's list for one more sealed batch: 0 or -ENOMEM. */
static int group_reserve_batch(struct sb_group *g)
{
    if (g->batch_count < g->batch_cap)
        return 0;
    size_t cap = g->batch_cap ? g->batch_cap * 2 : 64;
    struct sb_sealed_batch *nb = realloc(g->batches, cap * sizeof(*nb));
    if (!nb)
        return -ENOMEM;
    g->batches = nb;
    g->batch_cap = cap;
    return 0;
}

/* Seal @part's open batch into the gathering group (offsets come at submit). */
static int batch_seal(struct sb_shard *s, struct sb_partition *part)
{
    struct sb_group *g = &s->groups[s->acc];
    struct sb_batch_builder *b = &part->batch;
    size_t len = sb_batch_finish(b, 0, false);
    /* Give the unused end back when this batch is the newest piece of the buffer. */
    if (b->buf + b->cap == g->arena + g->used)
        g->used -= b->cap - len;
    if (group_reserve_batch(g))
        return -ENOMEM;
    g->batches[g->batch_count++] = (struct sb_sealed_batch){
        .part = part, .buf = b->buf, .len = (uint32_t)len, .count = b->count, .fd = -1,
        .first_seq = part->batch_first_seq};
    part->batch_open = false;
    return 0;
}

static int batch_start(struct sb_shard *s, struct sb_partition *part, size_t need)
{
    struct sb_group *g = &s->groups[s->acc];
    size_t room = need + SB_BATCH_HEADER_BYTES;
    if (room < MIN_BATCH_BYTES)
        room = MIN_BATCH_BYTES;
    if (g->cap - g->used < room) {
        if (g->cap - g->used < need + SB_BATCH_HEADER_BYTES)
            return -EAGAIN; /* this third is full: wait until it is submitted */
        room = g->cap - g->used;
    }
    if (s->open_count == s->open_cap) {
        uint32_t cap = s->open_cap ? s->open_cap * 2 : 16;
        struct sb_partition **op = realloc(s->open_parts, cap * sizeof(*op));
        if (!op)
            return -EAGAIN;
        s->open_parts = op;
        s->open_cap = cap;
    }
    sb_batch_begin(&part->batch, g->arena + g->used, room);
    g->used += room;
    part->batch_open = true;
    part->batch_first_seq = part->append_seq;
    s->open_parts[s->open_count++] = part;
    return 0;
}

static int share_add(struct sb_group *g, struct sb_producer_link *link)
{
    if (g->link_count && g->links[g->link_count - 1].link == link) {
        g->links[g->link_count - 1].count++;
        return 0;
    }
    for (size_t i = 0; i < g->link_count; i++) {
        if (g->links[i].link == link) {
            g->links[i].count++;
            return 0;
        }
    }
    if (g->link_count == g->link_cap) {
        size_t cap = g->link_cap ? g->link_cap * 2 : 16;
        struct sb_link_share *nl = realloc(g->links, cap * sizeof(*nl));
        if (!nl)
            return -ENOMEM;
        g->links = nl;
        g->link_cap = cap;
    }
    g->links[g->link_count++] = (struct sb_link_share){link, 1};
    return 0;
}

/* For an event of @link (with an ack callback) to @part: does it continue the group's last
 * acknowledgement run, or need a new one (room in the list and a record promised)? 0, or
 * -EAGAIN with nothing changed. */
static int ack_run_prepare(struct sb_group *g, struct sb_partition *part,
                           struct sb_producer_link *link, bool *extend)
{
    struct sb_ack_run *last = g->ack_count ? &g->acks[g->ack_count - 1] : NULL;
    *extend = last && last->part == part && last->link == link &&
              last->seq + last->count == part->append_seq;
    if (*extend)
        return 0;
    if (g->ack_count == g->ack_cap) {
        size_t cap = g->ack_cap ? g->ack_cap * 2 : 16;
        struct sb_ack_run *na = realloc(g->acks, cap * sizeof(*na));
        if (!na)
            return -EAGAIN;
        g->acks = na;
        g->ack_cap = cap;
    }
    return sb_link_ack_room(link) ? 0 : -EAGAIN;
}

int sb_shard_log_append(struct sb_shard *s, struct sb_partition *part,
                        const struct sb_wire_event *ev, struct sb_producer_link *link)
{
    struct sb_group *g = &s->groups[s->acc];
    const void *key = (ev->flags & SB_WIRE_KEY_NULL) ? NULL : ev->bytes;
    const void *value = (ev->flags & SB_WIRE_VALUE_NULL) ? NULL : ev->bytes + ev->key_len;
    /* Room for the link's share first, so a failure leaves nothing half done. */
    if (g->link_count == g->link_cap && link) {
        size_t cap = g->link_cap ? g->link_cap * 2 : 16;
        struct sb_link_share *nl = realloc(g->links, cap * sizeof(*nl));
        if (!nl)
            return -EAGAIN;
        g->links = nl;
        g->link_cap = cap;
    }
    bool acks = sb_link_has_acks(link), extend = false;
    if (acks && ack_run_prepare(g, part, link, &extend))
        return -EAGAIN;
    size_t len_before = part->batch_open ? part->batch.len : 0;
    if (!part->batch_open ||
        sb_batch_add(&part->batch, s->now_ms, key, ev->key_len, value, ev->value_len) != 0) {
        if (part->batch_open && batch_seal(s, part))
            return -EAGAIN;
        if (batch_start(s, part, sb_batch_record_bound(ev->key_len, ev->value_len)))
            return -EAGAIN;
        len_before = 0; /* a new batch: its header counts too */
        if (sb_batch_add(&part->batch, s->now_ms, key, ev->key_len, value, ev->value_len))
            return -EAGAIN; /* cannot happen: the batch was sized for the record */
    }
    g->encoded += part->batch.len - len_before;
    if (acks) {
        /* A batch started above does not change this group's last run (the same partition's
         * append_seq continues across its batches). */
        if (extend) {
            g->acks[g->ack_count - 1].count++;
        } else {
            g->acks[g->ack_count++] = (struct sb_ack_run){part, link, part->append_seq, 1};
            link->ack_owed++; /* sb_link_ack_room() said yes above */
        }
    }
    part->append_seq++;
    g->events++;
    if (link) {
        share_add(g, link);
        link->unsettled++;
    } else {
        g->derived++;
    }
    return 0;
}

int sb_shard_log_append_batch(struct sb_shard *s, struct sb_partition *part, const void *batch,
                              uint32_t len, int32_t count,
                              void (*done)(struct sb_shard *, void *, int, int64_t), void *arg)
{
    struct sb_group *g = &s->groups[s->acc];
    if (len > g->cap)
        return -EMSGSIZE;
    if (part->batch_open && batch_seal(s, part)) /* events gathered before it go first */
        return -ENOMEM;
    if (g->cap - g->used < len)
        return -EAGAIN;
    if (group_reserve_batch(g))
        return -ENOMEM;
    unsigned char *dst = g->arena + g->used;
    memcpy(dst, batch, len);
    g->used += len;
    g->encoded += len;
    g->batches[g->batch_count++] = (struct sb_sealed_batch){
        .part = part, .buf = dst, .len = len, .count = count, .fd = -1, .done = done,
        .done_arg = arg, .first_seq = part->append_seq};
    part->append_seq += (uint64_t)count;
    g->events += (uint64_t)count;
    return 0;
}

/* Keep @slot (a segment left behind by a roll) registered until every group that may use it
 * completed: the older ones in flight wrote to it, and the one being submitted may sync it
 * (see group_submit()). Out of memory: the slot stays registered for good (a leak of one
 * slot, not a fault). */
static void retire_slot(struct sb_shard *s, int slot)
{
    if (s->retired_count == s->retired_cap) {
        uint32_t cap = s->retired_cap ? s->retired_cap * 2 : 16;
        int *slots = realloc(s->retired_slots, cap * sizeof(*slots));
        if (!slots)
            return;
        s->retired_slots = slots;
        uint64_t *seqs = realloc(s->retired_seq, cap * sizeof(*seqs));
        if (!seqs)
            return;
        s->retired_seq = seqs;
        s->retired_cap = cap;
    }
    s->retired_slots[s->retired_count] = slot;
    s->retired_seq[s->retired_count++] = s->group_seq;
}

/* The io_uring file slot for @fd, the partition's current segment (see retire_slot()). */
static int slot_for(struct sb_shard *s, struct sb_partition *part, int fd)
{
    if (part->slot_fd == fd)
        return part->slot;
    int slot = sb_log_writer_file_add(&s->writer, fd);
    if (slot < 0)
        return slot;
    if (part->slot >= 0)
        retire_slot(s, part->slot);
    part->slot = slot;
    part->slot_fd = fd;
    return slot;
}

/* Forget @part's registered file (its segment may be gone): the next batch registers again. */
static void partition_release_slot(struct sb_shard *s, struct sb_partition *part)
{
    if (part->slot < 0)
        return;
    for (uint32_t i = 0; i < s->unsynced_count; i++) {
        if (s->unsynced_slots[i] == part->slot) {
            s->unsynced_slots[i] = s->unsynced_slots[--s->unsynced_count];
            break;
        }
    }
    sb_log_writer_file_remove(&s->writer, part->slot);
    part->slot = -1;
    part->slot_fd = -1;
}

static int64_t monotonic_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* The group submitted last (the youngest in flight, when any is). */
static const struct sb_group *last_submitted(const struct sb_shard *s)
{
    return &s->groups[(s->acc + SB_SHARD_LOG_GROUPS - 1) % SB_SHARD_LOG_GROUPS];
}

/* The writer may take the gathering group: not after a group that failed before its I/O
 * (the next one would be placed after its bytes and fail with it; placed after the cut, it
 * can succeed), at most two in flight, the older one's writes done (log_writer.h). */
static bool writer_may_take(const struct sb_shard *s)
{
    if (s->in_flight && last_submitted(s)->error)
        return false;
    return s->in_flight < SB_SHARD_LOG_GROUPS - 1 && sb_log_writer_can_submit(&s->writer);
}

/* One group in flight and the gathering one below a quarter of its part of the buffer in
 * encoded batches: it goes beside the older one only once that one is slow. */
static bool small_beside_one(const struct sb_shard *s)
{
    return s->in_flight == 1 && s->groups[s->acc].encoded < s->groups[s->acc].cap / 4;
}

/* Submit the gathering group when the log may take it (-EBUSY, nothing done, otherwise). */
static int group_submit(struct sb_shard *s)
{
    struct sb_group *g = &s->groups[s->acc];
    const struct sb_config *cfg = &s->bus->cfg;
    if (!sb_shard_log_can_submit(s))
        return -EBUSY; /* the writer would refuse it after the reservations below */
    /* Allowed beside the group in flight though small: that one is slow (see
     * sb_shard_log_can_submit()). */
    const bool beside_slow = small_beside_one(s);
    for (uint32_t i = 0; i < s->open_count; i++)
        if (s->open_parts[i]->batch_open && batch_seal(s, s->open_parts[i]))
            return -ENOMEM;
    s->open_count = 0;
    bool interval_due = cfg->durability == SB_DURABILITY_INTERVAL &&
                        s->now_ms - s->last_sync_ms >= (int64_t)cfg->fsync_interval_ms;
    if (g->batch_count == 0 && !(interval_due && s->unsynced_count))
        return 0;
    g->seq = ++s->group_seq; /* before slot_for(): a slot it retires is tagged with it */
    int group_error = 0;
    for (size_t i = 0; i < g->batch_count; i++) {
        struct sb_sealed_batch *b = &g->batches[i];
        int fd;
        int rc = group_error ? group_error
                             : sb_plog_reserve(b->part->plog, b->len, b->count, &fd, &b->position,
                                               &b->base_offset);
        int slot = rc ? rc : slot_for(s, b->part, fd);
        if (slot < 0) {
            group_error = slot; /* the whole group fails: see group_complete() */
            b->fd = -1;
            continue;
        }
        b->fd = fd;
        b->slot = slot;
        b->direct = sb_plog_fd_is_direct(b->part->plog, fd);
        sb_batch_set_base_offset(b->buf, b->base_offset);
        if (!b->direct && sb_log_writer_add(&s->writer, slot, b->position, b->buf, b->len))
            group_error = -ENOMEM;
        if (cfg->durability == SB_DURABILITY_INTERVAL)
            push_int(&s->unsynced_slots, &s->unsynced_count, &s->unsynced_cap, slot);
    }
    /* The batches going to O_DIRECT files, in whole blocks through the staging buffer (no
     * older group's write is in flight: sb_shard_log_can_submit() said so above). */
    if (!group_error) {
        int rc = sb_direct_stage_add(&s->stage, &s->writer, g->batches, g->batch_count);
        if (rc)
            group_error = rc;
    }
    /* A segment left behind by a roll in this group is synced before its slot is released: a
     * later interval sync could no longer reach it. */
    bool retired_here = false;
    for (uint32_t i = 0; i < s->retired_count && !retired_here; i++)
        retired_here = s->retired_seq[i] == g->seq;
    bool sync = cfg->durability == SB_DURABILITY_BATCH || interval_due ||
                (cfg->durability == SB_DURABILITY_INTERVAL && retired_here);
    if (sync) {
        for (uint32_t i = 0; i < s->unsynced_count; i++)
            sb_log_writer_add_sync(&s->writer, s->unsynced_slots[i]);
        s->unsynced_count = 0;
        s->last_sync_ms = s->now_ms;
    }
    g->error = group_error;
    g->submitted_ns = monotonic_ns();
    s->groups_beside_slow += beside_slow;
    int rc = sb_log_writer_submit(&s->writer, sync);
    if (rc && !g->error)
        g->error = rc; /* the writer has it in flight all the same (-EBUSY was ruled out above) */
    s->in_flight++;
    s->acc = (s->acc + 1) % SB_SHARD_LOG_GROUPS;
    return 0;
}

/* Move the memory cursors of @part that sit at the oldest retained event to the disk. */
static void demote_oldest_cursors(struct sb_shard *s, struct sb_partition *part)
{
    uint64_t keep = UINT64_MAX;
    for (uint32_t i = 0; i < part->cursor_count; i++)
        if (!part->cursors[i]->on_disk && part->cursors[i]->at.pos < keep)
            keep = part->cursors[i]->at.pos;
    for (uint32_t i = 0; i < part->cursor_count; i++) {
        struct sb_cursor *cur = part->cursors[i];
        if (cur->on_disk || cur->at.pos != keep)
            continue;
        struct sb_plog_pos at;
        cur->on_disk = true;
        cur->disk_batch_len = 0;
        if (sb_plog_seek(part->plog, cur->at.offset, &at) == 0) {
            cur->disk_segment_base = part->plog->segments[at.segment].base_offset;
            cur->disk_position = at.position;
        } else {
            cur->disk_segment_base = part->plog->start_offset;
            cur->disk_position = 0;
        }
    }
    (void)s;
}

static uint64_t memory_keep_pos(const struct sb_partition *part)
{
    uint64_t keep = UINT64_MAX;
    for (uint32_t i = 0; i < part->cursor_count; i++)
        if (!part->cursors[i]->on_disk && part->cursors[i]->at.pos < keep)
            keep = part->cursors[i]->at.pos;
    return keep;
}

/* A written batch: into the memory window, then to the handlers. */
static void publish_batch(struct sb_shard *s, const struct sb_sealed_batch *b)
{
    struct sb_partition *part = b->part;
    struct sb_record_iter it;
    struct sb_record rec;
    const char *why = NULL;
    if (!part->log_ready)
        return; /* out of memory for the window: the events stay readable from disk */
    bool memory_cursor = false;
    for (uint32_t i = 0; i < part->cursor_count && !memory_cursor; i++)
        memory_cursor = !part->cursors[i]->on_disk;
    if (!memory_cursor && !part->handler_count) {
        /* Nobody reads this partition live: skip decoding the batch into the memory window
         * (later subscribers read these events from disk). */
        sb_memlog_reset(&part->log, b->base_offset + b->count);
        return;
    }
    /* A batch appended whole by the Kafka server may be compressed: its records are
     * decompressed for the window and the handlers like any other's. The window must end
     * where the batch starts (it always does; when not, it is moved, as below). */
    const bool in_step = part->log.next_offset == b->base_offset;
    int rc = in_step ? sb_record_iter_init_any(&it, b->buf, b->len, &s->inflated,
                                               &s->inflated_cap, &why)
                     : 0;
    if (!in_step || rc) {
        /* Cannot happen for batches this shard built; for a Kafka client's batch that passed
         * its CRC but does not decompress: said once per batch, and readers in memory move to
         * the disk, where the batch is (and where they report it in turn). */
        if (rc)
            shard_report(s, SB_LOG_ERROR,
                         "%s partition %u: batch at offset %" PRId64 " not delivered to "
                         "handlers and live readers: %s",
                         part->topic->name, part->index, b->base_offset,
                         why ? why : strerror(-rc));
        while (memory_keep_pos(part) != UINT64_MAX)
            demote_oldest_cursors(s, part);
        sb_memlog_reset(&part->log, b->base_offset + b->count);
        return;
    }
    while ((rc = sb_record_next(&it, &rec, &why)) == 1) {
        uint32_t flags = (rec.key ? 0 : SB_WIRE_KEY_NULL) | (rec.value ? 0 : SB_WIRE_VALUE_NULL);
        uint32_t key_len = rec.key_len < 0 ? 0 : (uint32_t)rec.key_len;
        uint32_t value_len = rec.value_len < 0 ? 0 : (uint32_t)rec.value_len;
        const struct sb_stored_event *st;
        while (!(st = sb_memlog_append(&part->log, memory_keep_pos(part), part->index,
                                       rec.timestamp_ms, flags, rec.key, key_len, rec.value,
                                       value_len))) {
            if (memory_keep_pos(part) == UINT64_MAX) {
                /* Nothing holds the window and the record still does not fit: a Kafka client's
                 * record larger than the window (max_event_bytes bounds only events published
                 * through the C API). Said, never spun on; disk readers skip it too. */
                shard_report(s, SB_LOG_ERROR,
                             "%s partition %u: record at offset %" PRId64 " (%" PRIu32
                             " bytes) is larger than the partition's memory window: not given "
                             "to handlers",
                             part->topic->name, part->index, rec.offset, key_len + value_len);
                sb_memlog_reset(&part->log, rec.offset + 1);
                break;
            }
            demote_oldest_cursors(s, part);
        }
        if (!st)
            continue;
        if (part->handler_count)
            sb_shard_run_handlers(s, part, st);
    }
    if (rc < 0 || part->log.next_offset != b->base_offset + b->count) {
        /* Records that do not decode as their header says (only a Kafka client's batch can:
         * Produce checks them, so not after that): the rest is not delivered from memory;
         * said once, and the window moves on to the next batch. */
        shard_report(s, SB_LOG_ERROR,
                     "%s partition %u: batch at offset %" PRId64 ": records from offset %" PRId64
                     " on not delivered to handlers and live readers: %s",
                     part->topic->name, part->index, b->base_offset, part->log.next_offset,
                     why ? why : "fewer records than its header says");
        while (memory_keep_pos(part) != UINT64_MAX)
            demote_oldest_cursors(s, part);
        sb_memlog_reset(&part->log, b->base_offset + b->count);
    }
}

/*
 * Write each acknowledgement run of @g into its producer's ack ring (visible once
 * commit_acks() runs): the offsets of its events, or @error. A partition's records in one
 * group have consecutive offsets from its first batch's base offset, in append order, so an
 * event's offset is that base plus its distance (in append_seq) from the batch's first record.
 */
static void write_acks(struct sb_shard *s, struct sb_group *g, int error)
{
    if (!g->ack_count)
        return;
    uint64_t stamp = ++s->group_stamp;
    for (size_t i = 0; i < g->batch_count; i++) {
        struct sb_partition *part = g->batches[i].part;
        if (part->ack_stamp != stamp) {
            part->ack_stamp = stamp;
            part->ack_base_offset = g->batches[i].base_offset;
            part->ack_base_seq = g->batches[i].first_seq;
        }
    }
    for (size_t i = 0; i < g->ack_count; i++) {
        const struct sb_ack_run *r = &g->acks[i];
        int64_t offset = r->part->ack_base_offset + (int64_t)(r->seq - r->part->ack_base_seq);
        sb_link_ack(r->link, r->part->topic->id, r->part->index, offset, r->count, error, true);
    }
}

/* After settle_links(): a producer that reads a record also sees the counters that include it
 * (the ring's release commit pairs with the producer's acquire in sb_ring_peek()). */
static void commit_acks(struct sb_group *g)
{
    for (size_t i = 0; i < g->link_count; i++)
        if (sb_link_has_acks(g->links[i].link))
            sb_link_ack_commit(g->links[i].link);
}

static void settle_links(struct sb_group *g, int error)
{
    for (size_t i = 0; i < g->link_count; i++) {
        struct sb_producer_link *link = g->links[i].link;
        uint64_t n = g->links[i].count;
        link->unsettled -= n;
        if (error) {
            /* Release stores pair with the producer's acquire loads in sb_producer_flush()
             * and sb_producer_get_stats(): last_error is stored before the count it explains. */
            atomic_store_explicit(&link->last_error, error, memory_order_release);
            atomic_store_explicit(&link->failed,
                                  atomic_load_explicit(&link->failed, memory_order_relaxed) + n,
                                  memory_order_release);
        } else {
            /* Relaxed load: only this shard writes the count. Release: see above. */
            atomic_store_explicit(
                &link->acknowledged,
                atomic_load_explicit(&link->acknowledged, memory_order_relaxed) + n,
                memory_order_release);
        }
    }
}

static void group_fail(struct sb_shard *s, struct sb_group *g, int error)
{
    /* Every partition of the group forgets its reservations; bytes already written past the
     * committed end are cut so that a crash cannot bring back events reported as failed. */
    for (size_t i = 0; i < g->batch_count; i++) {
        struct sb_partition *part = g->batches[i].part;
        struct sb_plog *plog = part->plog;
        if (plog->reserved_offset == plog->next_offset)
            continue;
        /* abandon may close an empty segment; its fd number could come back for another file */
        partition_release_slot(s, part);
        sb_plog_abandon(plog);
        struct sb_segment *last = &plog->segments[plog->segment_count - 1];
        /* The sync makes the cut durable, and takes from this open file the write-back error
         * that failed the group if another open file reported it (log_writer.h): a later
         * group must not fail for it. */
        if (ftruncate(last->log_fd, (off_t)last->size) != 0)
            shard_report(s, SB_LOG_ERROR, "%s partition %u: cannot cut failed writes: %s",
                         plog->topic, plog->partition, strerror(errno));
        else if (fdatasync(last->log_fd) != 0 && errno != EIO)
            shard_report(s, SB_LOG_ERROR, "%s partition %u: cannot sync the cut: %s",
                         plog->topic, plog->partition, strerror(errno));
    }
    /* Name the first partition of the group (the usual case is one), and whether there are
     * others. */
    char where[160] = "";
    if (g->batch_count) {
        const struct sb_plog *first = g->batches[0].part->plog;
        bool others = false;
        for (size_t i = 1; i < g->batch_count && !others; i++)
            others = g->batches[i].part != g->batches[0].part;
        snprintf(where, sizeof(where), " for %s partition %u%s", first->topic, first->partition,
                 others ? " and others" : "");
    }
    shard_report(s, SB_LOG_ERROR,
                 "shard %u: log write failed%s (%s): %" PRIu64
                 " events not acknowledged, their producers are told",
                 s->id, where, strerror(-error), g->events);
    write_acks(s, g, error);
    settle_links(g, error);
    commit_acks(g);
    for (size_t i = 0; i < g->batch_count; i++)
        if (g->batches[i].done)
            g->batches[i].done(s, g->batches[i].done_arg, error, -1);
}

/* Publish each written partition's new end and wake the shards waiting for it to move. */
static void publish_ends(struct sb_shard *s, const struct sb_group *g)
{
    for (size_t i = 0; i < g->batch_count; i++) {
        struct sb_partition *part = g->batches[i].part;
        sb_partition_publish_end(s->bus, part, part->plog->next_offset);
    }
}

/* The @k-th oldest group in flight (0: the oldest). */
static struct sb_group *group_in_flight(struct sb_shard *s, unsigned k)
{
    return &s->groups[(s->acc + SB_SHARD_LOG_GROUPS - s->in_flight + k) % SB_SHARD_LOG_GROUPS];
}

/* Finish the oldest group in flight, which the writer reported done (error set by then). */
static void group_complete(struct sb_shard *s)
{
    struct sb_group *g = group_in_flight(s, 0);
    const int error = g->error;
    if (error) {
        group_fail(s, g, error);
    } else {
        /* Memory windows start where the log ends before this group (later than that, their
         * offsets would run ahead of the log's). */
        for (size_t i = 0; i < g->batch_count; i++)
            sb_partition_ensure_log(s, g->batches[i].part);
        for (size_t i = 0; i < g->batch_count; i++) {
            const struct sb_sealed_batch *b = &g->batches[i];
            struct sb_batch_info info;
            const char *why;
            sb_batch_parse_header(b->buf, b->len, &info, &why);
            sb_plog_commit(b->part->plog, &info, b->position);
        }
        /* Acknowledge first: handlers may take a while, producers should not wait for them. */
        write_acks(s, g, 0);
        settle_links(g, 0);
        commit_acks(g);
        for (size_t i = 0; i < g->batch_count; i++)
            if (g->batches[i].done)
                g->batches[i].done(s, g->batches[i].done_arg, 0, g->batches[i].base_offset);
        publish_ends(s, g);
        for (size_t i = 0; i < g->batch_count; i++)
            publish_batch(s, &g->batches[i]);
        /* Segments a roll closed whose writes are now all done lose their direct padding
         * (after the acknowledgements: an ftruncate may wait for a sync of that file). */
        for (size_t i = 0; i < g->batch_count; i++) {
            struct sb_plog *plog = g->batches[i].part->plog;
            int rc = plog->untrimmed ? sb_plog_trim_closed(plog) : 0;
            if (rc)
                shard_report(s, SB_LOG_WARN,
                             "%s partition %u: cannot cut the direct padding of a closed "
                             "segment (recovery will): %s",
                             plog->topic, plog->partition, strerror(-rc));
        }
    }
    /* Derived events count as received once handled (or failed): see bus_wait_quiet(). */
    s->derived_received += g->derived;
    /* Segments left behind by rolls up to this group: no group still in flight uses them. */
    for (uint32_t i = 0; i < s->retired_count;) {
        if (s->retired_seq[i] > g->seq) {
            i++;
            continue;
        }
        const int slot = s->retired_slots[i];
        for (uint32_t k = 0; k < s->unsynced_count; k++) {
            if (s->unsynced_slots[k] == slot) {
                s->unsynced_slots[k] = s->unsynced_slots[--s->unsynced_count];
                break;
            }
        }
        sb_log_writer_file_remove(&s->writer, slot);
        s->retired_count--;
        s->retired_slots[i] = s->retired_slots[s->retired_count];
        s->retired_seq[i] = s->retired_seq[s->retired_count];
    }
    group_reset(g);
    s->in_flight--;
    s->reaped--;
}

static void enforce_retention(struct sb_shard *s)
{
    struct sb_topic_table *t = &s->bus->topics;
    for (uint32_t id = 0; id < SB_MAX_TOPICS; id++) {
        struct sb_topic *topic = sb_topic_by_id(t, id);
        if (!topic)
            break;
        if (topic->cfg.retention_bytes < 0 && topic->cfg.retention_ms < 0)
            continue;
        for (uint32_t p = 0; p < topic->partition_count; p++) {
            struct sb_partition *part = &topic->partitions[p];
            if (sb_partition_owner(topic, p, s->shard_count) != s->id || !part->plog)
                continue;
            int rc = sb_plog_enforce_retention(part->plog, s->now_ms);
            if (rc < 0)
                shard_report(s, SB_LOG_ERROR, "%s partition %u: retention: %s", topic->name, p,
                             strerror(-rc));
        }
    }
}

/*
 * When the small gathering group may go beside the one group in flight because that one is
 * slow: when it was submitted plus SB_SLOW_GROUP_FACTOR times the average group latency (or
 * the tests' slow_group_test_ns); -1 when this does not apply (not exactly one group in
 * flight, nothing gathered, no average yet).
 *
 * Why: every event that arrives while a slow sync is in flight waits for it, and then, when
 * it waits in the next group, for that group's own sync too. Going beside the slow one, the
 * next group's sync runs while the older's ends, so its events wait for about the slower of
 * the two rather than for both. Only a slow group is overtaken: two small syncs at once all
 * the time brought on the stretches described at sb_shard_log_can_submit(). bench_log's ack
 * latency, ten alternating runs with and without this rule (2026-11-27; README, Performance):
 * at 20,000 events/s a p99 of 393 us against 540 us (medians), lower in 6 of 10 pairs (7 of
 * 10 in a scratch series before); at 100,000 events/s no clear difference (321 against 317
 * us).
 */
static int64_t slow_group_deadline_ns(const struct sb_shard *s)
{
    if (s->in_flight != 1 || !s->groups[s->acc].events)
        return -1;
    const int64_t slow = s->slow_group_test_ns > 0 ? s->slow_group_test_ns
                                                   : SB_SLOW_GROUP_FACTOR * s->group_latency_avg_ns;
    if (slow <= 0)
        return -1;
    return last_submitted(s)->submitted_ns + slow;
}

bool sb_shard_log_can_submit(const struct sb_shard *s)
{
    /* First: the rule below may read the clock. */
    if (!writer_may_take(s))
        return false;
    /* With a group in flight the next one goes beside it only once it holds a quarter of its
     * part of the buffer in encoded batches (encoded, not used, which also counts the room
     * reserved for open batches: with many partitions a few events would fill a quarter): a
     * heavy load, where its writes overlap the older group's sync (the BATCH append rate went
     * from 4.4-5.6 to 7.7-8.3 M events/s when this began), or once the older group is slow
     * (slow_group_deadline_ns()). Otherwise a smaller group waits for the older one. Small
     * groups going at once (until 2026-11-27, for a lower ack latency at 20,000 events/s
     * under the page cache) doubled the syncs under a light load and brought on stretches in
     * which every sync took milliseconds: bench_log's ack latency at 100,000 events/s, ten
     * runs going at once alternating with ten waiting (five with this rule, five with a
     * scratch one allowing one group in flight at most, the same at that rate), had a p99 of
     * 12-16 ms (p50 5-6 ms in four of them) in 6 of the 10 going at once, and of 0.19-0.40
     * ms in all 10 waiting, with a lower p50 (76-96 us against 98-129 us in the good runs)
     * and a quarter fewer writes to the disk. Such stretches still come, more rarely (3 of 31
     * later runs: README, Performance). Why two small syncs at once bring them on more often
     * is not known. */
    if (small_beside_one(s)) {
        const int64_t deadline = slow_group_deadline_ns(s);
        if (deadline < 0 || monotonic_ns() < deadline)
            return false;
    }
    return true;
}

int64_t sb_shard_log_io_timeout_ns(const struct sb_shard *s)
{
    /* Only when the deadline alone keeps the group back: else the shard would wake at it for
     * nothing and, past it, not sleep at all until the older group's writes are done (a
     * completion, which wakes it anyway). */
    if (!small_beside_one(s) || !writer_may_take(s))
        return -1;
    const int64_t deadline = slow_group_deadline_ns(s);
    if (deadline < 0)
        return -1;
    const int64_t left = deadline - monotonic_ns();
    return left > 0 ? left : 0;
}

/* Take the groups the writer reports done (in order), then finish them in order. A group that
 * failed waits until every younger group in flight is done too: their bytes lie after its own
 * in the files, which its failure cuts back (group_fail()), so they fail with it. */
static bool groups_complete(struct sb_shard *s)
{
    bool work = false;
    while (s->reaped < s->in_flight && sb_log_writer_poll(&s->writer) == 1) {
        struct sb_group *g = group_in_flight(s, s->reaped);
        const int64_t latency = monotonic_ns() - g->submitted_ns;
        sb_histogram_record(&s->group_latency, latency);
        /* A moving average over about the last 16 groups: what a slow group is measured
         * against (slow_group_deadline_ns()). */
        s->group_latency_avg_ns =
            s->group_latency_avg_ns
                ? s->group_latency_avg_ns + (latency - s->group_latency_avg_ns) / 16
                : latency;
        if (!g->error)
            g->error = s->writer.result;
        s->reaped++;
        work = true;
    }
    while (s->reaped) {
        struct sb_group *g = group_in_flight(s, 0);
        if (g->error && s->reaped < s->in_flight)
            break;
        if (g->error && s->in_flight > 1 && !group_in_flight(s, 1)->error) {
            group_in_flight(s, 1)->error = g->error;
            s->groups_failed_after_older++;
        }
        group_complete(s);
        work = true;
    }
    return work;
}

bool sb_shard_log_step(struct sb_shard *s)
{
    bool work = groups_complete(s);
    if (sb_shard_log_can_submit(s)) {
        struct sb_group *g = &s->groups[s->acc];
        const struct sb_config *cfg = &s->bus->cfg;
        bool interval_due = cfg->durability == SB_DURABILITY_INTERVAL && s->unsynced_count &&
                            s->now_ms - s->last_sync_ms >= (int64_t)cfg->fsync_interval_ms;
        if (g->events || interval_due) {
            group_submit(s);
            work = true;
        }
    }
    if (s->now_ms - s->last_retention_ms >= 1000) {
        s->last_retention_ms = s->now_ms;
        enforce_retention(s);
    }
    return work;
}

void sb_shard_log_retire_partition(struct sb_shard *s, struct sb_partition *part)
{
    while (sb_shard_log_pending(s)) {
        sb_shard_log_step(s);
        if (s->in_flight)
            sb_log_writer_wait(&s->writer, 1000000);
    }
    partition_release_slot(s, part);
}

bool sb_shard_log_pending(const struct sb_shard *s)
{
    return s->in_flight || s->groups[s->acc].events;
}

int64_t sb_shard_log_park_timeout_ns(const struct sb_shard *s)
{
    /* Wake for the next retention check (once a second: retention by age must also run on an
     * idle bus), the next interval sync or a consumer's next try of a failed disk read,
     * whichever comes first. */
    int64_t ms = 1000 - (s->now_ms - s->last_retention_ms);
    if (s->disk_retry_ms && s->disk_retry_ms - s->now_ms < ms)
        ms = s->disk_retry_ms - s->now_ms;
    if (s->bus->cfg.durability == SB_DURABILITY_INTERVAL && s->unsynced_count) {
        int64_t sync_ms = (int64_t)s->bus->cfg.fsync_interval_ms - (s->now_ms - s->last_sync_ms);
        if (sync_ms < ms)
            ms = sync_ms;
    }
    return ms > 0 ? ms * 1000000 : 0;
}

int sb_cursor_place(struct sb_shard *s, struct sb_partition *part, int64_t from_offset,
                    struct sb_cursor *cur)
{
    int rc = sb_partition_ensure_log(s, part);
    if (rc)
        return rc;
    cur->partition = part;
    cur->start_offset = 0;
    cur->on_disk = false;
    int64_t first = part->plog ? part->plog->start_offset : part->log.first_offset;
    int64_t offset;
    if (from_offset == SB_OFFSET_END) {
        cur->at = sb_memlog_end(&part->log);
        return 0;
    } else if (from_offset == SB_OFFSET_BEGINNING) {
        offset = first;
    } else {
        offset = from_offset;
        cur->start_offset = from_offset;
        if (offset < first)
            return -ERANGE;
    }
    if (offset >= part->log.first_offset || !part->plog)
        return sb_memlog_seek(&part->log, offset, &cur->at);
    /* Older than the memory window: start on disk. */
    struct sb_plog_pos at;
    rc = sb_plog_seek(part->plog, offset, &at);
    if (rc)
        return rc == -ENODATA ? sb_memlog_seek(&part->log, offset, &cur->at) : rc;
    cur->on_disk = true;
    cur->disk_batch_len = 0;
    cur->at.offset = offset;
    cur->at.pos = 0;
    cur->disk_segment_base = part->plog->segments[at.segment].base_offset;
    cur->disk_position = at.position;
    return 0;
}

/* Bytes a consumer's disk read asks for at least: several batches per read. */
#define DISK_CHUNK_BYTES (256u * 1024)

static void cursor_read_done(void *ctx, int res)
{
    struct sb_cursor *cur = ctx;
    cur->read_pending = false;
    cur->read_done = true;
    cur->read_result = res;
    cur->shard->disk_reads_pending--;
    cur->shard->disk_read_completed = true; /* deliver() runs before the shard may sleep */
}

/* Delays between tries of a disk read that failed: doubling from the first to the last. */
#define DISK_RETRY_FIRST_MS 10u
#define DISK_RETRY_MAX_MS 5000u

/*
 * The batch at cur->disk_position could not be served (@error, @why says how): report it once
 * (topic, partition, segment file, byte position), then try again after a delay that doubles
 * up to DISK_RETRY_MAX_MS. The cursor stays where it is: nothing is skipped. Returns @error.
 */
static int disk_failed(struct sb_shard *s, struct sb_cursor *cur, const struct sb_segment *seg,
                       int error, const char *why)
{
    if (cur->disk_failures++ == 0) {
        char name[64];
        sb_segment_file_name(name, sizeof(name), seg->base_offset, "log");
        shard_report(s, SB_LOG_ERROR,
                     "%s partition %u: %s/%s: cannot serve the batch at byte %" PRIu64
                     " to a consumer: %s; retrying at growing intervals (up to %u ms), reported "
                     "once",
                     cur->partition->topic->name, cur->partition->index,
                     cur->partition->plog->dir, name, cur->disk_position, why,
                     DISK_RETRY_MAX_MS);
        cur->disk_retry_delay_ms = DISK_RETRY_FIRST_MS;
    } else if (cur->disk_retry_delay_ms < DISK_RETRY_MAX_MS) {
        cur->disk_retry_delay_ms *= 2;
        if (cur->disk_retry_delay_ms > DISK_RETRY_MAX_MS)
            cur->disk_retry_delay_ms = DISK_RETRY_MAX_MS;
    }
    cur->chunk_len = 0; /* the next try reads the disk again */
    cur->disk_retry_at_ms = s->now_ms + cur->disk_retry_delay_ms;
    if (!s->disk_retry_ms || cur->disk_retry_at_ms < s->disk_retry_ms)
        s->disk_retry_ms = cur->disk_retry_at_ms;
    return error;
}

/* The batch at cur->disk_position was served after failures: say so once, forget them. */
static void disk_recovered(struct sb_shard *s, struct sb_cursor *cur)
{
    if (!cur->disk_failures)
        return;
    shard_report(s, SB_LOG_INFO,
                 "%s partition %u: the batch at byte %" PRIu64 " is served again after %u "
                 "failed tries",
                 cur->partition->topic->name, cur->partition->index, cur->disk_position,
                 cur->disk_failures);
    cur->disk_failures = 0;
    cur->disk_retry_at_ms = 0;
    cur->disk_retry_delay_ms = 0;
}

/* load_disk_batch(): the batch could not be decoded; it was reported and skipped. */
#define DISK_BATCH_SKIPPED 2

/*
 * Make the batch at cur->disk_position ready for delivery: from the chunk read last when it
 * is there whole, else start a read of the next chunk. Returns 1 (ready: disk_batch_len and
 * disk_iter set), DISK_BATCH_SKIPPED (it cannot be decoded: reported, disk_position and
 * at.offset moved past it), 0 (a read is in flight, or a failed one waits for its next try:
 * come back later), or -EBADMSG / -EIO / -ENOMEM (reported once by disk_failed(), tried again
 * later).
 */
static int load_disk_batch(struct sb_shard *s, struct sb_cursor *cur, const struct sb_segment *seg)
{
    if (cur->read_pending)
        return 0;
    bool fresh = false; /* the chunk was just read, at disk_position */
    if (cur->read_done) {
        cur->read_done = false;
        if (cur->read_result < 0) {
            cur->chunk_len = 0;
            return disk_failed(s, cur, seg, -EIO, strerror(-cur->read_result));
        }
        cur->chunk_len = (uint32_t)cur->read_result;
        fresh = true;
    } else if (cur->disk_retry_at_ms && s->now_ms < cur->disk_retry_at_ms) {
        /* Not yet: the shard's park timeout brings it back (sb_shard_log_park_timeout_ns()). */
        if (!s->disk_retry_ms || cur->disk_retry_at_ms < s->disk_retry_ms)
            s->disk_retry_ms = cur->disk_retry_at_ms;
        return 0;
    }
    uint32_t need = 0;
    uint64_t chunk_end = cur->chunk_position + cur->chunk_len;
    if (cur->chunk_len && cur->chunk_segment == seg->base_offset &&
        cur->disk_position >= cur->chunk_position &&
        cur->disk_position + SB_BATCH_HEADER_BYTES <= chunk_end) {
        const unsigned char *p = cur->disk_batch + (cur->disk_position - cur->chunk_position);
        uint32_t total = sb_be32_get(p + SB_BATCH_LENGTH_OFFSET) + SB_BATCH_LOG_OVERHEAD;
        if (total < SB_BATCH_HEADER_BYTES || cur->disk_position + total > seg->size)
            return disk_failed(s, cur, seg, -EBADMSG, "batch length outside the segment");
        if (cur->disk_position + total <= chunk_end) {
            struct sb_batch_info info;
            const char *why = NULL;
            int rc = sb_batch_validate(p, total, &info, &why);
            if (rc)
                return disk_failed(s, cur, seg, -EBADMSG, why ? why : "invalid batch");
            rc = sb_record_iter_init_any(&cur->disk_iter, p, total, &cur->inflated,
                                         &cur->inflated_cap, &why);
            if (rc == -ENOMEM)
                return disk_failed(s, cur, seg, -ENOMEM, "out of memory to decompress");
            if (rc) {
                /* The batch is what was written (its CRC holds) but its compressed records do
                 * not decode (only a Kafka client's batch stored before Produce checked them
                 * can): trying again cannot help. Said, and skipped. */
                int64_t next = info.base_offset + info.last_offset_delta + 1;
                shard_report(s, SB_LOG_ERROR,
                             "%s partition %u: batch at offset %" PRId64 " (segment %020" PRId64
                             ", byte %" PRIu64 ") does not decode (%s): offsets %" PRId64
                             "..%" PRId64 " skipped for a consumer",
                             cur->partition->topic->name, cur->partition->index,
                             info.base_offset, seg->base_offset, cur->disk_position,
                             why ? why : strerror(-rc), info.base_offset, next - 1);
                disk_recovered(s, cur);
                cur->disk_position += total;
                if (cur->at.offset < next)
                    cur->at.offset = next;
                return DISK_BATCH_SKIPPED;
            }
            disk_recovered(s, cur);
            cur->disk_batch_len = total;
            return 1;
        }
        need = total; /* a batch larger than what is left of the chunk */
    }
    if (fresh && cur->chunk_len < cur->read_len) {
        /* Read at this very position and still short of the batch: the file ends before the
         * log's committed size (or the read came back short). */
        char why[96];
        snprintf(why, sizeof(why), "short read: %u of %u bytes", cur->chunk_len, cur->read_len);
        return disk_failed(s, cur, seg, -EIO, why);
    }
    uint64_t left = seg->size - cur->disk_position;
    uint64_t len = need > DISK_CHUNK_BYTES ? need : DISK_CHUNK_BYTES;
    if (len > left)
        len = left;
    if (len > cur->disk_batch_cap) {
        unsigned char *buf = realloc(cur->disk_batch, len);
        if (!buf)
            return disk_failed(s, cur, seg, -ENOMEM, "out of memory for the read buffer");
        cur->disk_batch = buf;
        cur->disk_batch_cap = len;
    }
    struct io_uring_sqe *sqe = sb_log_writer_get_sqe(&s->writer);
    if (!sqe)
        return -EIO; /* the submission queue is full: the next turn tries again */
    io_uring_prep_read(sqe, seg->log_fd, cur->disk_batch, (unsigned)len, cur->disk_position);
    cur->read_cb = (struct sb_log_io_cb){cursor_read_done, cur};
    cur->shard = s;
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)&cur->read_cb);
    cur->chunk_segment = seg->base_offset;
    cur->chunk_position = cur->disk_position;
    cur->chunk_len = 0;
    cur->read_len = (uint32_t)len;
    cur->read_pending = true;
    s->disk_reads_pending++;
    /* At once: the kernel then holds the file even if retention closes it meanwhile. */
    sb_log_writer_flush(&s->writer);
    return 0;
}

void sb_cursor_wait_read(struct sb_shard *s, struct sb_cursor *cur)
{
    while (cur->read_pending) {
        sb_log_writer_wait(&s->writer, 1000000);
        sb_log_writer_reap(&s->writer);
    }
    cur->read_done = false;
}

void sb_cursor_leave_disk(struct sb_cursor *cur)
{
    free(cur->disk_batch);
    cur->disk_batch = NULL;
    cur->disk_batch_cap = 0;
    free(cur->inflated);
    cur->inflated = NULL;
    cur->inflated_cap = 0;
    cur->disk_batch_len = 0;
    cur->chunk_len = 0; /* the chunk went with the buffer (no read is in flight here) */
    cur->on_disk = false;
    cur->disk_failures = 0;
    cur->disk_retry_at_ms = 0;
    cur->disk_retry_delay_ms = 0;
}

bool sb_cursor_deliver_from_disk(struct sb_shard *s, struct sb_subscription *sub,
                                 struct sb_cursor *cur)
{
    struct sb_partition *part = cur->partition;
    struct sb_plog *plog = part->plog;
    bool work = false;
    for (int turn = 0; turn < DISK_BATCHES_PER_TURN; turn++) {
        if (cur->read_pending)
            return work; /* its read completes first */
        if (!cur->disk_batch_len && cur->at.offset >= part->log.first_offset) {
            /* Caught up with the memory window: continue from memory. */
            cur->read_done = false; /* a read ahead nobody needs any more */
            sb_cursor_leave_disk(cur);
            sb_memlog_seek(&part->log, cur->at.offset, &cur->at);
            return true;
        }
        if (!cur->disk_batch_len && cur->at.offset < plog->start_offset) {
            shard_report(s, SB_LOG_WARN,
                         "%s partition %u: retention deleted offsets %" PRId64 "..%" PRId64
                         " before a consumer read them; it continues at %" PRId64,
                         part->topic->name, part->index, cur->at.offset,
                         plog->start_offset - 1, plog->start_offset);
            cur->at.offset = plog->start_offset;
            cur->disk_segment_base = plog->start_offset;
            cur->disk_position = 0;
        }
        if (!cur->disk_batch_len) {
            size_t i = 0;
            while (i < plog->segment_count &&
                   plog->segments[i].base_offset != cur->disk_segment_base)
                i++;
            if (i == plog->segment_count)
                return work; /* cannot happen: segments are found by their base */
            const struct sb_segment *seg = &plog->segments[i];
            if (cur->disk_position >= seg->size) {
                if (i + 1 == plog->segment_count)
                    return work;
                cur->disk_segment_base = plog->segments[i + 1].base_offset;
                cur->disk_position = 0;
                continue;
            }
            if (cur->read_done)
                work = true; /* a completion handled */
            int loaded = load_disk_batch(s, cur, seg);
            if (loaded == DISK_BATCH_SKIPPED) {
                work = true; /* a batch skipped: on to the next */
                continue;
            }
            if (loaded <= 0)
                return work;
        }
        struct sb_record rec;
        const char *why;
        for (;;) {
            struct sb_record_iter before = cur->disk_iter;
            if (sb_record_next(&cur->disk_iter, &rec, &why) != 1)
                break;
            if (rec.offset < cur->at.offset)
                continue;
            if (rec.offset >= cur->start_offset) {
                uint32_t key_len = rec.key_len < 0 ? 0 : (uint32_t)rec.key_len;
                uint32_t value_len = rec.value_len < 0 ? 0 : (uint32_t)rec.value_len;
                size_t need = sizeof(struct sb_stored_event) + key_len + value_len;
                if (need > sb_ring_max_payload(sub->w.mask + 1)) {
                    /* A Kafka client's record larger than the consumer's ring can ever hold
                     * (max_event_bytes bounds only the C API's events): waiting for room would
                     * stop this consumer for good. Said, and skipped. */
                    shard_report(s, SB_LOG_ERROR,
                                 "%s partition %u: record at offset %" PRId64 " (%zu bytes) is "
                                 "larger than a consumer's ring holds (ring_bytes / 2): skipped "
                                 "for that consumer",
                                 part->topic->name, part->index, rec.offset, need);
                    cur->at.offset = rec.offset + 1;
                    work = true;
                    continue;
                }
                struct sb_stored_event *st = sb_ring_claim(&sub->w, need, SB_WIRE_DELIVERY);
                if (!st) {
                    cur->disk_iter = before; /* this record again, once there is room */
                    sub->blocked = true;
                    return work;
                }
                st->partition = part->index;
                st->key_len = key_len;
                st->value_len = value_len;
                st->flags = (rec.key ? 0 : SB_WIRE_KEY_NULL) | (rec.value ? 0 : SB_WIRE_VALUE_NULL);
                st->offset = rec.offset;
                st->timestamp_ms = rec.timestamp_ms;
                if (key_len)
                    memcpy(st->bytes, rec.key, key_len);
                if (value_len)
                    memcpy(st->bytes + key_len, rec.value, value_len);
            }
            cur->at.offset = rec.offset + 1;
            work = true;
        }
        cur->disk_position += cur->disk_batch_len;
        cur->disk_batch_len = 0;
    }
    return work;
}
