/*
 * memlog.h - a partition's in-memory log: the most recent events of one partition, kept in
 * offset order by the shard that owns the partition.
 *
 * It is an SPSC ring (ring.h) whose two ends belong to the same shard thread: appends claim at
 * the tail, eviction releases at the head, and cursors (one per subscribed consumer) read the
 * records in between. The oldest events are evicted to make room, except those a cursor has not
 * read yet: then the append fails with -EAGAIN and the shard holds the event back, which is how a
 * slow consumer back-pressures the producers instead of missing events.
 *
 * Single-threaded: only the owning shard thread touches a memlog.
 */
#ifndef SB_MEMLOG_H
#define SB_MEMLOG_H

#include <stdint.h>

#include "ring.h"
#include "wire.h"

struct sb_memlog {
    void *mem;
    struct sb_ring_producer tail;  /* appends */
    struct sb_ring_consumer head;  /* eviction: head.read is the oldest retained record */
    int64_t first_offset;          /* offset of the record at head.read */
    int64_t next_offset;           /* offset the next append gets */
};

/** A reader's position: the record at @pos holds @offset (or pos is the tail). */
struct sb_memlog_cursor {
    uint64_t pos;
    int64_t offset;
};

/** sb_memlog_init - an empty log of @capacity bytes (a power of two) whose first offset is
 *  @next_offset. Returns 0, -EINVAL, -ENOMEM. */
int sb_memlog_init(struct sb_memlog *log, uint64_t capacity, int64_t next_offset);

/** sb_memlog_destroy - free the memory; the log must be initialised. */
void sb_memlog_destroy(struct sb_memlog *log);

/**
 * sb_memlog_append - copy one event in and give it the next offset; returns the stored record
 * (valid until it is evicted) or NULL when it does not fit without evicting records at or after
 * @keep_pos (the lowest cursor position; UINT64_MAX when no cursor needs anything).
 */
const struct sb_stored_event *sb_memlog_append(struct sb_memlog *log, uint64_t keep_pos,
                                               uint32_t partition, int64_t timestamp_ms,
                                               uint32_t flags, const void *key, uint32_t key_len,
                                               const void *value, uint32_t value_len);

/** sb_memlog_reset - drop every record and continue at @next_offset (no cursor may be in it). */
void sb_memlog_reset(struct sb_memlog *log, int64_t next_offset);

/** sb_memlog_end - a cursor at the tail (the next offset to be appended). */
struct sb_memlog_cursor sb_memlog_end(const struct sb_memlog *log);

/**
 * sb_memlog_seek - a cursor at @offset: -ERANGE when offset < first_offset (evicted); an offset
 * at or past next_offset gives the tail cursor (the caller skips up to its offset).
 */
int sb_memlog_seek(const struct sb_memlog *log, int64_t offset, struct sb_memlog_cursor *out);

/**
 * sb_memlog_read - the record under @cur, or NULL when the cursor is at the tail. @len receives
 * the record's payload length. sb_memlog_next() moves past it.
 */
const struct sb_stored_event *sb_memlog_read(const struct sb_memlog *log,
                                             const struct sb_memlog_cursor *cur, uint32_t *len);
void sb_memlog_next(const struct sb_memlog *log, struct sb_memlog_cursor *cur);

#endif /* SB_MEMLOG_H */
