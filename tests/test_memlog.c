/*
 * test_memlog.c - unit tests of a partition's in-memory log (core/memlog.h) on one thread:
 * eviction of the oldest events to make room, the back-pressure of a cursor's keep position,
 * and that an append evicts only what it needs (the ring's hysteresis at full is off for a
 * log whose two ends are one thread), every event read back with its offset and bytes.
 */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "memlog.h"

/* 8-byte record header + 32-byte stored event + 88 value bytes: 128 ring bytes per event, so
 * a 4096-byte log holds 31 of them (the ring keeps 8 bytes free for its zero mark). */
#define VALUE_BYTES 88u
#define RECORD_BYTES 128u
#define CAPACITY 4096u
#define FULL_COUNT 31

static void fill_value(unsigned char *v, int64_t offset)
{
    for (unsigned i = 0; i < VALUE_BYTES; i++)
        v[i] = (unsigned char)(offset * 31 + i);
}

static const struct sb_stored_event *append(struct sb_memlog *log, uint64_t keep_pos,
                                            int64_t offset)
{
    unsigned char v[VALUE_BYTES];
    fill_value(v, offset);
    return sb_memlog_append(log, keep_pos, 0, 1000 + offset, 0, NULL, 0, v, VALUE_BYTES);
}

/* Every event from @first to the tail, in order, offsets and bytes checked. */
static void check_contents(const struct sb_memlog *log, int64_t first, int64_t end)
{
    struct sb_memlog_cursor cur;
    CHECK_EQ(sb_memlog_seek(log, first, &cur), 0);
    for (int64_t off = first; off < end; off++) {
        uint32_t len;
        const struct sb_stored_event *ev = sb_memlog_read(log, &cur, &len);
        CHECK(ev);
        CHECK_EQ(len, sizeof(*ev) + VALUE_BYTES);
        CHECK_EQ(ev->offset, off);
        CHECK_EQ(ev->timestamp_ms, 1000 + off);
        CHECK_EQ(ev->value_len, VALUE_BYTES);
        unsigned char v[VALUE_BYTES];
        fill_value(v, off);
        CHECK_MEM(ev->bytes, v, VALUE_BYTES);
        sb_memlog_next(log, &cur);
    }
    uint32_t len;
    CHECK(sb_memlog_read(log, &cur, &len) == NULL);
}

static void test_keep_pos_and_eviction(void)
{
    struct sb_memlog log;
    CHECK_EQ(sb_memlog_init(&log, CAPACITY, 0), 0);
    CHECK_EQ(sizeof(struct sb_stored_event) + VALUE_BYTES + SB_RING_HEADER_BYTES, RECORD_BYTES);
    /* A cursor at position 0 keeps everything: 31 events fit, the 32nd does not. */
    for (int64_t off = 0; off < FULL_COUNT; off++)
        CHECK(append(&log, 0, off));
    CHECK(append(&log, 0, FULL_COUNT) == NULL);
    CHECK_EQ(log.next_offset, FULL_COUNT);
    /* The cursor moves past event 0: exactly that one may go, and it makes exactly the room
     * the next event needs. With the ring's hysteresis at full (256 bytes more for this size)
     * this append would fail. */
    CHECK(append(&log, RECORD_BYTES, FULL_COUNT));
    CHECK_EQ(log.first_offset, 1);
    CHECK(append(&log, RECORD_BYTES, FULL_COUNT + 1) == NULL);
    check_contents(&log, 1, FULL_COUNT + 1);
    /* With no cursor, each append evicts one event, the oldest. */
    for (int64_t off = FULL_COUNT + 1; off < 200; off++) {
        CHECK(append(&log, UINT64_MAX, off));
        CHECK_EQ(log.first_offset, off - FULL_COUNT + 1);
    }
    check_contents(&log, 200 - FULL_COUNT, 200);
    struct sb_memlog_cursor cur;
    CHECK_EQ(sb_memlog_seek(&log, 200 - FULL_COUNT - 1, &cur), -ERANGE);
    sb_memlog_destroy(&log);
}

int main(void)
{
    test_keep_pos_and_eviction();
    printf("test_memlog: all passed\n");
    return 0;
}
