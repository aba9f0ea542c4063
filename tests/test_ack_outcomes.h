/*
 * test_ack_outcomes.h - what the tests of failing log writes share (test_enospc,
 * test_log_faults): 1000-byte events on partition 0 of topic "ledger", each value derived
 * from its sequence number; a record of what each event's ack callback said (the callback's
 * opaque is the sequence number + 1) and a producer that keeps it; the check of a producer's
 * stats; and the check that a reopened log holds exactly the
 * acknowledged events, in order, byte for byte, each at the offset its callback reported.
 * Include after <shardbus.h>, "check.h" and <string.h>.
 */
#ifndef SB_TEST_ACK_OUTCOMES_H
#define SB_TEST_ACK_OUTCOMES_H

#include <stdbool.h>
#include <stdint.h>

#define TEST_EVENT_BYTES 1000
#define TEST_MAX_EVENTS 200000

/** The value of event @seq: its sequence number, then bytes that depend on it. */
static inline void test_event_value(uint64_t seq, unsigned char *v)
{
    memcpy(v, &seq, 8);
    for (size_t i = 8; i < TEST_EVENT_BYTES; i++)
        v[i] = (unsigned char)test_mix64(seq * 4096 + i);
}

/** What one event's ack callback said. */
struct test_outcome {
    int calls;
    int error;
    int64_t offset;
};
static struct test_outcome test_outcomes[TEST_MAX_EVENTS];

/** The ack callback (sb_producer_config.ack_fn): records each event's outcome, once. */
static void test_record_ack(void *ctx, const struct sb_ack *ack)
{
    (void)ctx;
    uint64_t seq = (uint64_t)(uintptr_t)ack->opaque - 1;
    CHECK(seq < TEST_MAX_EVENTS);
    CHECK(!strcmp(ack->topic, "ledger") && ack->partition == 0);
    CHECK_EQ(test_outcomes[seq].calls, 0);
    test_outcomes[seq] = (struct test_outcome){1, ack->error, ack->offset};
}

/** A producer on @bus whose ack callback is test_record_ack(). */
static inline struct sb_producer *test_open_recording_producer(struct sb_bus *bus)
{
    struct sb_producer_config pc;
    sb_producer_config_init(&pc);
    pc.ack_fn = test_record_ack;
    struct sb_producer *p;
    CHECK_EQ(sb_producer_open_with(bus, &pc, &p), 0);
    return p;
}

/** Check @p's stats: @published events, @acknowledged, @failed, and the last error. */
static inline void test_check_producer_stats(struct sb_producer *p, uint64_t published,
                                             uint64_t acknowledged, uint64_t failed, int last_error)
{
    struct sb_producer_stats st;
    sb_producer_get_stats(p, &st);
    CHECK_EQ(st.published, published);
    CHECK_EQ(st.acknowledged, acknowledged);
    CHECK_EQ(st.failed, failed);
    CHECK_EQ(st.last_error, last_error);
}

/**
 * test_check_log_holds - subscribe to "ledger" from the beginning on @bus and check that it
 * holds exactly the events e < @published with @acked[e] set, in order, byte for byte, at
 * offsets 0, 1, ... (@n_acked of them), each where its callback said; then nothing more.
 */
static inline void test_check_log_holds(struct sb_bus *bus, const unsigned char *acked,
                                        uint64_t published, uint64_t n_acked)
{
    struct sb_consumer *c;
    CHECK_EQ(sb_subscribe(bus, "ledger", SB_OFFSET_BEGINNING, &c), 0);
    struct sb_event evs[64];
    unsigned char v[TEST_EVENT_BYTES];
    uint64_t next = 0;
    int64_t offset = 0;
    int n;
    /* Read exactly the acknowledged count (generous timeout on a loaded machine), then check
     * that nothing more comes. */
    while ((uint64_t)offset < n_acked && (n = sb_poll(c, evs, 64, 5000)) > 0) {
        for (int i = 0; i < n; i++) {
            while (next < published && !acked[next])
                next++; /* failed events are not in the log */
            CHECK(next < published);
            uint64_t s;
            CHECK_EQ(evs[i].value_len, TEST_EVENT_BYTES);
            memcpy(&s, evs[i].value, 8);
            CHECK_EQ(s, next);
            test_event_value(s, v);
            CHECK_MEM(evs[i].value, v, TEST_EVENT_BYTES);
            CHECK_EQ(evs[i].offset, offset);
            CHECK_EQ(test_outcomes[s].offset, offset); /* where its callback said */
            offset++;
            next++;
        }
    }
    CHECK_EQ(sb_poll(c, evs, 64, 300), 0);
    while (next < published && !acked[next])
        next++;
    CHECK_EQ(next, published);
    CHECK_EQ((uint64_t)offset, n_acked);
    sb_consumer_close(c);
}

#endif /* SB_TEST_ACK_OUTCOMES_H */
