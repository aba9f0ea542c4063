/*
 * test_ring_stress.c - two threads push at least 10 million variable-length records through
 * one ring (a small one, so it wraps and fills constantly), in batches of random size on both
 * sides. Each record carries its sequence number, its length and a checksum of its bytes; the
 * consumer checks every one, in order. Then the copy calls (sb_ring_write_n / sb_ring_read_n):
 * fixed-length records in batches of random size up to 300 on both sides, each carrying its
 * sequence number, checked in order. Then the item calls (sb_ring_write_items /
 * sb_ring_read_items): 8-byte items in batches of random size, read in pieces of random size.
 * Run under TSan too.
 *
 * Usage: test_ring_stress [records] (default 10,000,000)
 */
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "ring.h"

#define CAPACITY (64u * 1024u)
#define MAX_PAYLOAD 600u

struct stress {
    struct sb_ring_producer p;
    struct sb_ring_consumer c;
    uint64_t records;
};

static size_t record_len(uint64_t seq)
{
    /* 16..MAX_PAYLOAD bytes, with many tiny ones. */
    uint64_t r = test_mix64(seq);
    return (r & 3) ? 16 + (r >> 8) % 48 : 16 + (r >> 8) % (MAX_PAYLOAD - 16);
}

static void fill(unsigned char *dst, uint64_t seq, size_t len)
{
    memcpy(dst, &seq, 8);
    uint64_t x = test_mix64(seq ^ 0x1234);
    uint64_t sum = 0;
    for (size_t i = 16; i < len; i++) {
        dst[i] = (unsigned char)(x >> ((i % 8) * 8));
        sum = sum * 31 + dst[i];
    }
    memcpy(dst + 8, &sum, 8);
}

static void *producer_main(void *arg)
{
    struct stress *st = arg;
    uint64_t seq = 0;
    while (seq < st->records) {
        unsigned batch = 1 + (unsigned)(test_mix64(seq + 99) % 32);
        unsigned done = 0;
        while (done < batch && seq < st->records) {
            size_t len = record_len(seq);
            unsigned char *dst = sb_ring_claim(&st->p, len, (uint32_t)(seq & 0xffff));
            if (!dst)
                break;
            fill(dst, seq, len);
            seq++;
            done++;
        }
        if (done)
            sb_ring_commit(&st->p);
        else
            sched_yield();
    }
    return NULL;
}

/* A fresh ring of CAPACITY with both of @st's handles attached; returns its memory. */
static void *ring_new(struct stress *st)
{
    size_t bytes = sb_ring_memory_size(CAPACITY);
    void *mem = aligned_alloc(SB_CACHE_GUARD, bytes);
    CHECK(mem);
    CHECK_EQ(sb_ring_format(mem, bytes, CAPACITY), 0);
    CHECK_EQ(sb_ring_producer_attach(&st->p, mem, bytes), 0);
    CHECK_EQ(sb_ring_consumer_attach(&st->c, mem, bytes), 0);
    return mem;
}

/* The copy calls: records of COPY_LEN bytes, each its sequence number then a pattern. 48-byte
 * records do not divide the ring, so batches meet padding records at the wrap. */
#define COPY_LEN 40u
#define COPY_MAX_BATCH 300u

static void fill_copy(unsigned char *dst, uint64_t seq)
{
    memcpy(dst, &seq, 8);
    for (size_t i = 8; i < COPY_LEN; i++)
        dst[i] = (unsigned char)(seq + i);
}

static void *copy_producer_main(void *arg)
{
    struct stress *st = arg;
    unsigned char buf[COPY_MAX_BATCH * COPY_LEN];
    uint64_t seq = 0;
    while (seq < st->records) {
        uint64_t n = 1 + test_mix64(seq + 7) % COPY_MAX_BATCH;
        if (n > st->records - seq)
            n = st->records - seq;
        for (uint64_t k = 0; k < n; k++)
            fill_copy(buf + k * COPY_LEN, seq + k);
        const size_t w = sb_ring_write_n(&st->p, 9, buf, COPY_LEN, n);
        seq += w;
        if (!w)
            sched_yield();
    }
    return NULL;
}

/* Runs the copy-call phase over a fresh ring; 0 when every record arrived in order. */
static int copy_phase(uint64_t records)
{
    struct stress st = {.records = records};
    void *mem = ring_new(&st);
    pthread_t producer;
    CHECK_EQ(pthread_create(&producer, NULL, copy_producer_main, &st), 0);
    unsigned char out[COPY_MAX_BATCH * COPY_LEN], expect[COPY_LEN];
    uint64_t seq = 0;
    while (seq < records) {
        bool corrupt = false;
        const size_t want = 1 + test_mix64(seq + 3) % COPY_MAX_BATCH;
        const size_t got = sb_ring_read_n(&st.c, 9, out, COPY_LEN, want, &corrupt);
        CHECK(!corrupt);
        if (!got)
            sched_yield();
        for (size_t k = 0; k < got; k++, seq++) {
            fill_copy(expect, seq);
            if (memcmp(out + k * COPY_LEN, expect, COPY_LEN)) {
                fprintf(stderr, "copy record %llu: bytes differ\n", (unsigned long long)seq);
                return 1;
            }
        }
    }
    CHECK(pthread_join(producer, NULL) == 0);
    CHECK(sb_ring_peek(&st.c, NULL) == NULL);
    printf("test_ring_stress: %llu copied records checked in order\n", (unsigned long long)seq);
    free(mem);
    return 0;
}

/* The item calls (sb_ring_write_items / sb_ring_read_items): 8-byte items carrying their
 * sequence number, batches of random size up to 1000 (several records when the ring is short
 * of room) read in pieces of random size, so records are often left partly read. */
#define ITEMS_MAX_BATCH 1000u

static void *items_producer_main(void *arg)
{
    struct stress *st = arg;
    uint64_t buf[ITEMS_MAX_BATCH];
    uint64_t seq = 0;
    while (seq < st->records) {
        uint64_t n = 1 + test_mix64(seq + 11) % ITEMS_MAX_BATCH;
        if (n > st->records - seq)
            n = st->records - seq;
        for (uint64_t k = 0; k < n; k++)
            buf[k] = seq + k;
        const size_t w = sb_ring_write_items(&st->p, 4, buf, sizeof(uint64_t), n);
        seq += w;
        if (!w)
            sched_yield();
    }
    return NULL;
}

static int items_phase(uint64_t items)
{
    struct stress st = {.records = items};
    void *mem = ring_new(&st);
    pthread_t producer;
    CHECK_EQ(pthread_create(&producer, NULL, items_producer_main, &st), 0);
    uint64_t out[ITEMS_MAX_BATCH];
    uint64_t seq = 0;
    while (seq < items) {
        bool corrupt = false;
        const size_t want = 1 + test_mix64(seq + 5) % ITEMS_MAX_BATCH;
        const size_t got = sb_ring_read_items(&st.c, 4, out, sizeof(uint64_t), want, &corrupt);
        CHECK(!corrupt);
        if (!got)
            sched_yield();
        for (size_t k = 0; k < got; k++, seq++) {
            if (out[k] != seq) {
                fprintf(stderr, "item %llu: got %llu\n", (unsigned long long)seq,
                        (unsigned long long)out[k]);
                return 1;
            }
        }
    }
    CHECK(pthread_join(producer, NULL) == 0);
    CHECK(sb_ring_peek(&st.c, NULL) == NULL);
    CHECK_EQ(st.c.partial, 0); /* every record finished */
    printf("test_ring_stress: %llu items checked in order\n", (unsigned long long)seq);
    free(mem);
    return 0;
}

int main(int argc, char **argv)
{
    struct stress st;
    st.records = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000ULL;
    void *mem = ring_new(&st);

    pthread_t producer;
    CHECK_EQ(pthread_create(&producer, NULL, producer_main, &st), 0);
    unsigned char expect[MAX_PAYLOAD];
    uint64_t seq = 0;
    unsigned since_release = 0;
    while (seq < st.records) {
        bool corrupt = false;
        const struct sb_ring_record *rec = sb_ring_peek(&st.c, &corrupt);
        CHECK(!corrupt);
        if (!rec) {
            sb_ring_release(&st.c);
            since_release = 0;
            sched_yield();
            continue;
        }
        size_t len = record_len(seq);
        if (sb_ring_record_length(rec) != len || rec->type != (seq & 0xffff)) {
            fprintf(stderr, "record %llu: length %u type %u, want %zu %llu\n",
                    (unsigned long long)seq, sb_ring_record_length(rec), rec->type, len,
                    (unsigned long long)(seq & 0xffff));
            return 1;
        }
        fill(expect, seq, len);
        if (memcmp(rec->payload, expect, len)) {
            fprintf(stderr, "record %llu: bytes differ\n", (unsigned long long)seq);
            return 1;
        }
        sb_ring_advance(&st.c, rec);
        seq++;
        /* Release in batches of varying size, as a real consumer would. */
        if (++since_release >= 1 + (test_mix64(seq) % 64)) {
            sb_ring_release(&st.c);
            since_release = 0;
        }
    }
    sb_ring_release(&st.c);
    CHECK(pthread_join(producer, NULL) == 0);
    CHECK(sb_ring_peek(&st.c, NULL) == NULL);
    printf("test_ring_stress: %llu records checked in order\n", (unsigned long long)seq);
    free(mem);
    if (copy_phase(st.records / 2))
        return 1;
    return items_phase(st.records);
}
