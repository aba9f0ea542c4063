/*
 * shard_log.h - the durable side of a shard (bus with a data_dir): group commit of record
 * batches through the shard's io_uring, acknowledgements, and cursors that read the log on disk.
 * See shard_log.c. Every function runs on the shard's thread.
 */
#ifndef SB_SHARD_LOG_H
#define SB_SHARD_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include "shard.h"

/** sb_shard_log_init - the shard's io_uring and write buffer. 0 or a negative errno. */
int sb_shard_log_init(struct sb_shard *s);

/** sb_shard_log_destroy - after the shard stopped with nothing in flight. */
void sb_shard_log_destroy(struct sb_shard *s);

/**
 * sb_shard_log_append - encode @ev into @part's batch in the gathering group (@link: the
 * producer it came from, NULL for a derived event). Returns 0, or -EAGAIN when the gathering
 * group's third of the write buffer is full (retry once it was submitted).
 */
int sb_shard_log_append(struct sb_shard *s, struct sb_partition *part,
                        const struct sb_wire_event *ev, struct sb_producer_link *link);

/**
 * sb_shard_log_append_batch - append a whole Kafka record batch (@len bytes holding @count
 * records, already validated) to @part as it is: copied into the gathering group, after the
 * partition's events gathered so far; only its base offset is set, at submit. Once the group
 * is written (and synced under BATCH), or failed, @done(s, @arg, error, base_offset) runs on
 * this shard. Returns 0, -EAGAIN (the gathering group is full: retry once it was submitted),
 * -EMSGSIZE (larger than a third of the write buffer, rounded down to 4 KiB), -ENOMEM.
 */
int sb_shard_log_append_batch(struct sb_shard *s, struct sb_partition *part, const void *batch,
                              uint32_t len, int32_t count,
                              void (*done)(struct sb_shard *, void *, int, int64_t), void *arg);

/**
 * sb_shard_log_retire_partition - write out everything gathered or in flight (waiting for it
 * here), then let go of @part's log file slot, so that its log can be closed and removed.
 * Shard thread (the owner), from a control request.
 */
void sb_shard_log_retire_partition(struct sb_shard *s, struct sb_partition *part);

/** sb_shard_log_step - complete the groups in flight that are done (in order), submit the
 *  gathering one when it may go, enforce retention once a second. Returns true when it did
 *  something. Shard thread. */
bool sb_shard_log_step(struct sb_shard *s);

/** A group in flight this many times longer than the average group commit is slow: a small
 *  gathering group may then go beside it (sb_shard_log_can_submit()). */
#define SB_SLOW_GROUP_FACTOR 3

/** sb_shard_log_can_submit - may the gathering group be submitted now: no group in flight, or
 *  one that has only syncs left (log_writer.h) while the gathering group holds a quarter of
 *  its part of the buffer or more in encoded batches, or while the group in flight is slow
 *  (SB_SLOW_GROUP_FACTOR); otherwise it waits for the older group. Not after a group that
 *  failed before its I/O. Reads the clock when the slow rule decides. Shard thread. */
bool sb_shard_log_can_submit(const struct sb_shard *s);

/** sb_shard_log_io_timeout_ns - how long a shard with a group in flight may sleep in io_uring
 *  before the gathering group may go beside a slow one (0: the moment has passed, so the
 *  caller has work: sb_shard_log_can_submit() says yes), or -1 when nothing but a completion
 *  or a wake-up can let it go (the rule does not apply, or the older group's writes are not
 *  done or failed). Shard thread. */
int64_t sb_shard_log_io_timeout_ns(const struct sb_shard *s);

/** sb_shard_log_pending - a group is in flight or events are gathered. */
bool sb_shard_log_pending(const struct sb_shard *s);

/** sb_shard_log_park_timeout_ns - how long the shard may sleep before its next timed duty. */
int64_t sb_shard_log_park_timeout_ns(const struct sb_shard *s);

/**
 * sb_cursor_place - put @cur at @from_offset (SB_OFFSET_END, SB_OFFSET_BEGINNING or absolute)
 * in @part: in the memory window, or on disk when older. Returns 0 or -ERANGE (below what the
 * partition retains), -ENOMEM.
 */
int sb_cursor_place(struct sb_shard *s, struct sb_partition *part, int64_t from_offset,
                    struct sb_cursor *cur);

/** sb_cursor_deliver_from_disk - copy events from the log on disk into @sub's ring (a few
 *  batches at most); moves the cursor back to memory once it reaches the window. Returns true
 *  when it made progress; sets sub->blocked when the ring is full. */
bool sb_cursor_deliver_from_disk(struct sb_shard *s, struct sb_subscription *sub,
                                 struct sb_cursor *cur);

/** sb_cursor_wait_read - wait until @cur has no disk read in flight (before it is freed). */
void sb_cursor_wait_read(struct sb_shard *s, struct sb_cursor *cur);

/** sb_cursor_leave_disk - free @cur's disk batch buffer and mark it in memory. */
void sb_cursor_leave_disk(struct sb_cursor *cur);

#endif /* SB_SHARD_LOG_H */
