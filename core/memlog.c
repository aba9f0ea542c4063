/*
 * memlog.c - a partition's in-memory log; see memlog.h.
 */
#include "memlog.h"

#include <stdlib.h>
#include <string.h>

int sb_memlog_init(struct sb_memlog *log, uint64_t capacity, int64_t next_offset)
{
    size_t bytes = sb_ring_memory_size(capacity);
    bytes = (bytes + SB_CACHE_GUARD - 1) / SB_CACHE_GUARD * SB_CACHE_GUARD;
    void *mem = aligned_alloc(SB_CACHE_GUARD, bytes);
    if (!mem)
        return -ENOMEM;
    int rc = sb_ring_format(mem, bytes, capacity);
    if (rc == 0)
        rc = sb_ring_producer_attach(&log->tail, mem, bytes);
    if (rc == 0)
        rc = sb_ring_consumer_attach(&log->head, mem, bytes);
    if (rc) {
        free(mem);
        return rc;
    }
    /* One thread is both sides of this ring: no cache line to keep apart, and an append
     * evicts only as many old events as it needs room for (no hysteresis at full). */
    log->tail.refill_bytes = 0;
    log->mem = mem;
    log->first_offset = next_offset;
    log->next_offset = next_offset;
    return 0;
}

void sb_memlog_destroy(struct sb_memlog *log)
{
    free(log->mem);
    log->mem = NULL;
}

/* Drop the oldest record unless a cursor still needs it. */
static int memlog_evict_one(struct sb_memlog *log, uint64_t keep_pos)
{
    /* peek() skips a padding record, so head.read then points at rec itself; a cursor parked
     * on the padding before it has a lower position and keeps rec too. */
    const struct sb_ring_record *rec = sb_ring_peek(&log->head, NULL);
    if (!rec || log->head.read >= keep_pos)
        return -EAGAIN;
    sb_ring_advance(&log->head, rec);
    sb_ring_release(&log->head);
    log->first_offset++;
    return 0;
}

const struct sb_stored_event *sb_memlog_append(struct sb_memlog *log, uint64_t keep_pos,
                                               uint32_t partition, int64_t timestamp_ms,
                                               uint32_t flags, const void *key, uint32_t key_len,
                                               const void *value, uint32_t value_len)
{
    size_t len = sizeof(struct sb_stored_event) + (size_t)key_len + value_len;
    struct sb_stored_event *ev;
    while (!(ev = sb_ring_claim(&log->tail, len, SB_WIRE_DELIVERY))) {
        if (len > sb_ring_max_payload(log->tail.mask + 1) || memlog_evict_one(log, keep_pos))
            return NULL;
    }
    ev->partition = partition;
    ev->key_len = key_len;
    ev->value_len = value_len;
    ev->flags = flags;
    ev->offset = log->next_offset++;
    ev->timestamp_ms = timestamp_ms;
    if (key_len)
        memcpy(ev->bytes, key, key_len);
    if (value_len)
        memcpy(ev->bytes + key_len, value, value_len);
    sb_ring_commit(&log->tail);
    return ev;
}

void sb_memlog_reset(struct sb_memlog *log, int64_t next_offset)
{
    log->head.read = log->tail.committed;
    sb_ring_release(&log->head);
    log->first_offset = next_offset;
    log->next_offset = next_offset;
}

struct sb_memlog_cursor sb_memlog_end(const struct sb_memlog *log)
{
    struct sb_memlog_cursor c = {log->tail.committed, log->next_offset};
    return c;
}

/* The record at @pos, skipping a padding record; *pos is moved past the padding. */
static const struct sb_ring_record *memlog_record_at(const struct sb_memlog *log, uint64_t *pos)
{
    for (;;) {
        if (*pos >= log->tail.committed)
            return NULL;
        const struct sb_ring_record *rec =
            (const struct sb_ring_record *)(log->head.data + (*pos & log->head.mask));
        if (rec->type != SB_RING_TYPE_PADDING)
            return rec;
        *pos += sb_ring_record_size(sb_ring_record_length(rec));
    }
}

int sb_memlog_seek(const struct sb_memlog *log, int64_t offset, struct sb_memlog_cursor *out)
{
    if (offset < log->first_offset)
        return -ERANGE;
    if (offset >= log->next_offset) {
        *out = sb_memlog_end(log);
        return 0;
    }
    struct sb_memlog_cursor c = {log->head.read, log->first_offset};
    while (c.offset < offset)
        sb_memlog_next(log, &c);
    *out = c;
    return 0;
}

const struct sb_stored_event *sb_memlog_read(const struct sb_memlog *log,
                                             const struct sb_memlog_cursor *cur, uint32_t *len)
{
    uint64_t pos = cur->pos;
    const struct sb_ring_record *rec = memlog_record_at(log, &pos);
    if (!rec)
        return NULL;
    *len = sb_ring_record_length(rec);
    return (const struct sb_stored_event *)rec->payload;
}

void sb_memlog_next(const struct sb_memlog *log, struct sb_memlog_cursor *cur)
{
    const struct sb_ring_record *rec = memlog_record_at(log, &cur->pos);
    if (!rec)
        return;
    cur->pos += sb_ring_record_size(sb_ring_record_length(rec));
    cur->offset++;
}
