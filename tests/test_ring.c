/*
 * test_ring.c - unit tests of the SPSC ring on one thread: empty, full, wrap with padding, the
 * largest record, claim then abort, validation of the shared header and of record lengths.
 */
#include <stdint.h>
#include <stdlib.h>

#include "check.h"
#include "ring.h"

struct ring_fixture {
    void *mem;
    size_t bytes;
    struct sb_ring_producer p;
    struct sb_ring_consumer c;
};

static void fixture_init(struct ring_fixture *f, uint64_t capacity)
{
    f->bytes = sb_ring_memory_size(capacity);
    f->mem = aligned_alloc(SB_CACHE_GUARD, (f->bytes + SB_CACHE_GUARD - 1) / SB_CACHE_GUARD *
                                               SB_CACHE_GUARD);
    CHECK(f->mem);
    CHECK_EQ(sb_ring_format(f->mem, f->bytes, capacity), 0);
    CHECK_EQ(sb_ring_producer_attach(&f->p, f->mem, f->bytes), 0);
    CHECK_EQ(sb_ring_consumer_attach(&f->c, f->mem, f->bytes), 0);
}

static void put(struct ring_fixture *f, uint32_t type, const void *data, size_t len)
{
    void *dst = sb_ring_claim(&f->p, len, type);
    CHECK(dst);
    memcpy(dst, data, len);
    sb_ring_commit(&f->p);
}

static void test_empty(void)
{
    struct ring_fixture f;
    fixture_init(&f, 4096);
    bool corrupt = false;
    CHECK(sb_ring_peek(&f.c, &corrupt) == NULL);
    CHECK(!corrupt);
    CHECK(sb_ring_is_empty_seq_cst(&f.c));
    CHECK_EQ(sb_ring_unreleased_bytes(&f.p), 0);
    /* A claim alone is invisible. */
    CHECK(sb_ring_claim(&f.p, 10, 1));
    CHECK(sb_ring_peek(&f.c, NULL) == NULL);
    sb_ring_commit(&f.p);
    const struct sb_ring_record *rec = sb_ring_peek(&f.c, NULL);
    CHECK(rec && sb_ring_record_length(rec) == 10 && rec->type == 1);
    free(f.mem);
}

static void test_full(void)
{
    struct ring_fixture f;
    fixture_init(&f, 4096);
    unsigned char buf[56];
    /* The ring holds capacity - 8 bytes: a commit keeps the mark after its records (8 bytes)
     * zeroed, in released space. 63 records of 64 bytes, then one of 56, fill 4088. */
    for (int i = 0; i < 63; i++) {
        memset(buf, i, sizeof(buf));
        put(&f, 7, buf, sizeof(buf));
    }
    memset(buf, 63, sizeof(buf));
    put(&f, 7, buf, 48);
    CHECK(sb_ring_claim(&f.p, 1, 7) == NULL);
    CHECK(sb_ring_claim(&f.p, 0, 7) == NULL);
    CHECK_EQ(sb_ring_unreleased_bytes(&f.p), 4088);
    /* Reading without releasing frees nothing. */
    const struct sb_ring_record *rec = sb_ring_peek(&f.c, NULL);
    CHECK(rec && rec->payload[0] == 0);
    sb_ring_advance(&f.c, rec);
    CHECK(sb_ring_claim(&f.p, 1, 7) == NULL);
    sb_ring_release(&f.c);
    /* Hysteresis: a producer that found the ring full goes on only once the record plus
     * min(SB_RING_REFILL_BYTES, capacity / 16) = 256 bytes are free. 64 bytes released, 8 were
     * free: a 48-byte record (8 bytes of padding up to the end, 56 at the start, 8 for the zero
     * mark) would fit, but not with the 256 more. */
    CHECK(sb_ring_claim(&f.p, 48, 7) == NULL);
    for (int i = 1; i <= 4; i++) {
        rec = sb_ring_peek(&f.c, NULL);
        CHECK(rec && rec->payload[0] == i);
        sb_ring_advance(&f.c, rec);
    }
    sb_ring_release(&f.c);
    /* 320 bytes released, 8 were free: 8 of padding + 56 + 256 of slack, exactly. Then the
     * cached head says there is room again and the ring fills up to the last byte: 8 bytes of
     * padding and a 56-byte record at the start, four of 64, the zero mark. */
    memset(buf, 64, sizeof(buf));
    put(&f, 7, buf, 48);
    for (int i = 65; i <= 68; i++) {
        memset(buf, i, sizeof(buf));
        put(&f, 7, buf, sizeof(buf));
    }
    CHECK(sb_ring_claim(&f.p, 0, 7) == NULL);
    CHECK_EQ(sb_ring_unreleased_bytes(&f.p), 4088);
    for (int i = 5; i <= 68; i++) {
        rec = sb_ring_peek(&f.c, NULL);
        CHECK(rec);
        CHECK_EQ(sb_ring_record_length(rec), (i == 63 || i == 64) ? 48 : 56);
        CHECK_EQ(rec->payload[47], i);
        sb_ring_advance(&f.c, rec);
    }
    CHECK(sb_ring_peek(&f.c, NULL) == NULL);
    CHECK(sb_ring_is_empty_seq_cst(&f.c));
    sb_ring_release(&f.c);
    CHECK_EQ(sb_ring_unreleased_bytes(&f.p), 0);
    free(f.mem);
}

static void test_wrap_with_padding(void)
{
    struct ring_fixture f;
    fixture_init(&f, 4096);
    unsigned char buf[2000];
    /* 3000 bytes used, then released: the producer sits at 3000. */
    memset(buf, 'a', sizeof(buf));
    put(&f, 1, buf, 1000 - 8);
    put(&f, 1, buf, 2000 - 8);
    for (int i = 0; i < 2; i++) {
        const struct sb_ring_record *rec = sb_ring_peek(&f.c, NULL);
        CHECK(rec);
        sb_ring_advance(&f.c, rec);
    }
    sb_ring_release(&f.c);
    /* 1096 bytes are left before the end: a 1500-byte record goes to 0 behind a padding
     * record, and the consumer never sees the padding. */
    for (size_t i = 0; i < 1500; i++)
        buf[i] = (unsigned char)(i * 7);
    put(&f, 2, buf, 1500);
    const struct sb_ring_record *rec = sb_ring_peek(&f.c, NULL);
    CHECK(rec);
    CHECK_EQ(rec->type, 2);
    CHECK_EQ(sb_ring_record_length(rec), 1500);
    CHECK((const unsigned char *)rec == f.c.data); /* placed at the start */
    CHECK_MEM(rec->payload, buf, 1500);
    sb_ring_advance(&f.c, rec);
    CHECK(sb_ring_peek(&f.c, NULL) == NULL);
    sb_ring_release(&f.c);
    /* Positions keep growing past the capacity. */
    /* Relaxed: one thread plays both sides here. */
    CHECK_EQ(atomic_load_explicit(&f.c.shared->head, memory_order_relaxed), 4096 + 1512);
    free(f.mem);
}

static void test_largest_record(void)
{
    struct ring_fixture f;
    fixture_init(&f, 8192);
    size_t max = sb_ring_max_payload(8192);
    CHECK_EQ(max, 4096 - 8);
    CHECK(sb_ring_claim(&f.p, max + 1, 1) == NULL);
    unsigned char *big = malloc(max);
    CHECK(big);
    /* From every starting position the largest record fits into a drained ring. */
    for (int round = 0; round < 40; round++) {
        size_t small = 8 + (size_t)round * 200 % 3000;
        put(&f, 1, big, small);
        const struct sb_ring_record *rec = sb_ring_peek(&f.c, NULL);
        CHECK(rec && sb_ring_record_length(rec) == small);
        sb_ring_advance(&f.c, rec);
        sb_ring_release(&f.c);
        for (size_t i = 0; i < max; i++)
            big[i] = (unsigned char)(i + (size_t)round);
        put(&f, 3, big, max);
        rec = sb_ring_peek(&f.c, NULL);
        CHECK(rec && sb_ring_record_length(rec) == max && rec->type == 3);
        CHECK_MEM(rec->payload, big, max);
        sb_ring_advance(&f.c, rec);
        sb_ring_release(&f.c);
    }
    free(big);
    free(f.mem);
}

static void test_claim_then_abort(void)
{
    struct ring_fixture f;
    fixture_init(&f, 4096);
    put(&f, 1, "one", 3);
    CHECK(sb_ring_claim(&f.p, 100, 9));
    CHECK(sb_ring_claim(&f.p, 100, 9));
    CHECK(sb_ring_has_uncommitted(&f.p));
    sb_ring_abort(&f.p);
    CHECK(!sb_ring_has_uncommitted(&f.p));
    sb_ring_commit(&f.p); /* commits nothing */
    put(&f, 2, "two", 3);
    const struct sb_ring_record *rec = sb_ring_peek(&f.c, NULL);
    CHECK(rec && rec->type == 1 && !memcmp(rec->payload, "one", 3));
    sb_ring_advance(&f.c, rec);
    rec = sb_ring_peek(&f.c, NULL);
    CHECK(rec && rec->type == 2 && !memcmp(rec->payload, "two", 3));
    sb_ring_advance(&f.c, rec);
    CHECK(sb_ring_peek(&f.c, NULL) == NULL);
    /* An aborted claim that had wrapped (padding included) leaves no trace either. */
    sb_ring_release(&f.c);
    while (sb_ring_claim(&f.p, 500, 4))
        ;
    sb_ring_abort(&f.p);
    CHECK(sb_ring_peek(&f.c, NULL) == NULL);
    free(f.mem);
}

static void test_validation(void)
{
    struct ring_fixture f;
    fixture_init(&f, 4096);
    struct sb_ring_producer p;
    CHECK_EQ(sb_ring_format(f.mem, f.bytes, 4095), -EINVAL);
    CHECK_EQ(sb_ring_format(f.mem, f.bytes, 2048), -EINVAL);
    CHECK_EQ(sb_ring_format(f.mem, f.bytes - 1, 4096), -EINVAL);
    CHECK_EQ(sb_ring_format((char *)f.mem + 8, f.bytes, 4096), -EINVAL);
    CHECK_EQ(sb_ring_producer_attach(&p, f.mem, f.bytes - 1), -EINVAL);
    f.p.shared->version = 1; /* version 1 published through tail */
    CHECK_EQ(sb_ring_producer_attach(&p, f.mem, f.bytes), -EPROTO);
    f.p.shared->version = SB_RING_VERSION;
    f.p.shared->magic = 0;
    CHECK_EQ(sb_ring_producer_attach(&p, f.mem, f.bytes), -EPROTO);
    free(f.mem);
}

/* A mark written by a misbehaving peer (shared memory) is caught, never followed. */
static void set_mark(struct sb_ring_record *rec, uint32_t mark)
{
    /* Relaxed: one thread plays both sides here. */
    atomic_store_explicit(&rec->mark, mark, memory_order_relaxed);
}

static void test_corrupt_mark(void)
{
    struct ring_fixture f;
    fixture_init(&f, 4096);
    CHECK(sb_ring_claim(&f.p, 16, 1));
    sb_ring_commit(&f.p);
    struct sb_ring_record *rec = (struct sb_ring_record *)f.p.data;
    bool corrupt = false;
    unsigned char out[16];
    /* A length larger than any claim. */
    set_mark(rec, SB_RING_MARK_COMMITTED | 100000);
    CHECK(sb_ring_peek(&f.c, &corrupt) == NULL);
    CHECK(corrupt);
    corrupt = false;
    CHECK_EQ(sb_ring_read_n(&f.c, 1, out, 16, 1, &corrupt), 0);
    CHECK(corrupt);
    /* A non-zero mark without the committed bit. */
    set_mark(rec, 16);
    corrupt = false;
    CHECK(sb_ring_peek(&f.c, &corrupt) == NULL);
    CHECK(corrupt);
    /* A padding record that does not end at the end of the data area (a chain of paddings
     * could otherwise keep the consumer going round). */
    set_mark(rec, SB_RING_MARK_COMMITTED | 16);
    rec->type = SB_RING_TYPE_PADDING;
    corrupt = false;
    CHECK(sb_ring_peek(&f.c, &corrupt) == NULL);
    CHECK(corrupt);
    /* A record that would run past the end of the data area. */
    rec->type = 1;
    set_mark(rec, SB_RING_MARK_COMMITTED | 16);
    f.c.read = 4096 - 16;
    set_mark((struct sb_ring_record *)(f.p.data + 4096 - 16), SB_RING_MARK_COMMITTED | 16);
    corrupt = false;
    CHECK(sb_ring_peek(&f.c, &corrupt) == NULL);
    CHECK(corrupt);
    /* Restored, the record reads normally. */
    f.c.read = 0;
    corrupt = false;
    const struct sb_ring_record *ok = sb_ring_peek(&f.c, &corrupt);
    CHECK(ok && !corrupt && sb_ring_record_length(ok) == 16);
    free(f.mem);
}

/* Several claims under one commit: the consumer sees none until the commit, then all, in
 * order; the mark after them reads as empty even though an earlier lap left data there. */
static void test_batch_commit_over_old_lap(void)
{
    struct ring_fixture f;
    fixture_init(&f, 4096);
    unsigned char buf[40];
    /* Lap 1: fill the ring with 40-byte records (48 bytes each) and consume them. */
    for (uint64_t done = 0; done < 4096 * 3;) {
        memset(buf, (int)(done / 48), sizeof(buf));
        put(&f, 5, buf, sizeof(buf));
        const struct sb_ring_record *rec = sb_ring_peek(&f.c, NULL);
        CHECK(rec && rec->payload[0] == (unsigned char)(done / 48));
        sb_ring_advance(&f.c, rec);
        sb_ring_release(&f.c);
        done += 48;
    }
    /* Now three records of other sizes under one commit, over bytes of the old laps. */
    for (int k = 0; k < 3; k++) {
        unsigned char *dst = sb_ring_claim(&f.p, 8 + (size_t)k * 8, (uint32_t)(10 + k));
        CHECK(dst);
        memset(dst, 'a' + k, 8 + (size_t)k * 8);
        CHECK(sb_ring_peek(&f.c, NULL) == NULL);
    }
    sb_ring_commit(&f.p);
    for (int k = 0; k < 3; k++) {
        const struct sb_ring_record *rec = sb_ring_peek(&f.c, NULL);
        CHECK(rec && rec->type == (uint32_t)(10 + k));
        CHECK_EQ(sb_ring_record_length(rec), 8 + (uint32_t)k * 8);
        CHECK(rec->payload[0] == 'a' + k);
        sb_ring_advance(&f.c, rec);
    }
    CHECK(sb_ring_peek(&f.c, NULL) == NULL);
    free(f.mem);
}

/* sb_ring_write_n / sb_ring_read_n against a model, in batches of random size over a small
 * ring: batches that end at the wrap, that fit only in part, that follow a claimed but
 * uncommitted record, and reads that stop at a record of another type or length. Every item
 * comes out once, in order, bytes equal. */
static void fill_item(unsigned char *dst, uint64_t seq, size_t len)
{
    for (size_t i = 0; i < len; i++)
        dst[i] = (unsigned char)(seq * 7 + i);
}

static void test_batch_copy(void)
{
    /* A batch larger than the room: exactly what fits (capacity less the 8 bytes of the zero
     * mark) is written, and read back, nothing more. */
    {
        struct ring_fixture f;
        fixture_init(&f, 4096);
        unsigned char in[300 * 8], out[300 * 8];
        for (size_t k = 0; k < 300; k++)
            fill_item(in + k * 8, k, 8);
        CHECK_EQ(sb_ring_write_n(&f.p, 3, in, 8, 256), (4096 - 8) / 16);
        CHECK_EQ(sb_ring_write_n(&f.p, 3, in, 8, 1), 0);
        bool corrupt = false;
        CHECK_EQ(sb_ring_read_n(&f.c, 3, out, 8, 300, &corrupt), (4096 - 8) / 16);
        CHECK(!corrupt && memcmp(in, out, (4096 - 8) / 16 * 8) == 0);
        CHECK_EQ(sb_ring_read_n(&f.c, 3, out, 8, 300, &corrupt), 0);
        free(f.mem);
    }
    /* A padding record whose length is the one asked for is skipped, never copied out as an
     * item: 4080 bytes of 40-byte records (48 bytes each, 85 of them), then a 16-byte record
     * that does not fit in the last 16 bytes: a padding record of 8 payload bytes at 4080. */
    {
        struct ring_fixture f;
        fixture_init(&f, 4096);
        unsigned char big[40] = {0}, in[16], out[300 * 8];
        bool corrupt = false;
        for (int k = 0; k < 85; k++)
            put(&f, 4, big, sizeof big);
        for (int k = 0; k < 85; k++) {
            const struct sb_ring_record *rec = sb_ring_peek(&f.c, NULL);
            CHECK(rec && sb_ring_record_length(rec) == 40);
            sb_ring_advance(&f.c, rec);
        }
        sb_ring_release(&f.c);
        fill_item(in, 77, sizeof in);
        put(&f, 3, in, sizeof in);
        CHECK_EQ(f.p.committed, 4096 + 24); /* the padding took the last 16 bytes */
        CHECK_EQ(sb_ring_read_n(&f.c, 3, out, 8, 300, &corrupt), 0);
        CHECK(!corrupt);
        const struct sb_ring_record *rec = sb_ring_peek(&f.c, NULL);
        CHECK(rec && rec->type == 3 && sb_ring_record_length(rec) == 16);
        CHECK(memcmp(rec->payload, in, sizeof in) == 0);
        sb_ring_advance(&f.c, rec);
        sb_ring_release(&f.c);
        /* A record of the wanted length but another type ends the batch. */
        for (size_t k = 0; k < 10; k++) {
            fill_item(in, 100 + k, 8);
            CHECK_EQ(sb_ring_write_n(&f.p, 3, in, 8, 1), 1);
        }
        CHECK_EQ(sb_ring_write_n(&f.p, 5, in, 8, 1), 1);
        CHECK_EQ(sb_ring_write_n(&f.p, 3, in, 8, 1), 1);
        CHECK_EQ(sb_ring_read_n(&f.c, 3, out, 8, 300, &corrupt), 10);
        for (size_t k = 0; k < 10; k++) {
            unsigned char want[8];
            fill_item(want, 100 + k, 8);
            CHECK(memcmp(out + k * 8, want, 8) == 0);
        }
        rec = sb_ring_peek(&f.c, NULL);
        CHECK(rec && rec->type == 5);
        sb_ring_advance(&f.c, rec);
        CHECK_EQ(sb_ring_read_n(&f.c, 3, out, 8, 300, &corrupt), 1);
        CHECK(!corrupt);
        free(f.mem);
    }
    static const size_t lens[] = {8, 13, 24, 100};
    for (size_t li = 0; li < sizeof lens / sizeof lens[0]; li++) {
        const size_t len = lens[li];
        struct ring_fixture f;
        fixture_init(&f, 4096);
        unsigned char in[300 * 100], out[300 * 100];
        uint64_t written = 0, read = 0, rng = 12345 + len;
        bool corrupt = false;
        while (read < 200000) {
            rng = test_mix64(rng);
            size_t n = 1 + rng % 300;
            for (size_t k = 0; k < n; k++)
                fill_item(in + k * len, written + k, len);
            const int mode = (int)((rng >> 20) % 8);
            if (mode == 0 && sb_ring_unreleased_bytes(&f.p) < 2048) {
                /* A claimed record first: write_n commits it with its own. */
                unsigned char *dst = sb_ring_claim(&f.p, len, 3);
                CHECK(dst);
                fill_item(dst, written, len);
                written++;
                for (size_t k = 0; k < n; k++)
                    fill_item(in + k * len, written + k, len);
            }
            const size_t w = sb_ring_write_n(&f.p, 3, in, len, n);
            CHECK(w <= n);
            written += w;
            if (mode == 1 && sb_ring_unreleased_bytes(&f.p) < 2048) {
                /* A record of another length: read_n stops in front of it. */
                unsigned char other[3] = {1, 2, 3};
                put(&f, 3, other, sizeof other);
                size_t got = 0;
                while (read < written) {
                    const size_t g = sb_ring_read_n(&f.c, 3, out, len, 300, &corrupt);
                    CHECK(!corrupt);
                    for (size_t k = 0; k < g; k++) {
                        unsigned char want[100];
                        fill_item(want, read + k, len);
                        CHECK(memcmp(out + k * len, want, len) == 0);
                    }
                    read += g;
                    got += g;
                    if (!g)
                        break;
                }
                CHECK_EQ(read, written);
                CHECK_EQ(sb_ring_read_n(&f.c, 3, out, len, 300, &corrupt), 0);
                const struct sb_ring_record *rec = sb_ring_peek(&f.c, &corrupt);
                CHECK(rec && sb_ring_record_length(rec) == 3 && rec->payload[2] == 3);
                sb_ring_advance(&f.c, rec);
                sb_ring_release(&f.c);
                (void)got;
                continue;
            }
            /* Read a random amount, at most what is there. */
            const size_t want_n = 1 + (rng >> 32) % 300;
            const size_t g = sb_ring_read_n(&f.c, 3, out, len, want_n, &corrupt);
            CHECK(!corrupt);
            CHECK(g <= want_n && read + g <= written);
            if (written - read >= want_n)
                CHECK_EQ(g, want_n);
            for (size_t k = 0; k < g; k++) {
                unsigned char want[100];
                fill_item(want, read + k, len);
                CHECK(memcmp(out + k * len, want, len) == 0);
            }
            read += g;
        }
        free(f.mem);
    }
}

static void test_items(void)
{
    struct ring_fixture f;
    fixture_init(&f, 4096);
    unsigned char in[1000 * 8], out[1000 * 8];
    for (size_t k = 0; k < 1000; k++)
        fill_item(in + k * 8, k, 8);
    bool corrupt = false;
    /* 300 items: a record holds at most 255 (2040 bytes, the largest payload of a 4 KiB ring),
     * so two records, 255 and 45 items; read back in pieces of growing size that often end
     * inside a record: the handle remembers where it stopped. */
    CHECK_EQ(sb_ring_write_items(&f.p, 5, in, 8, 300), 300);
    const struct sb_ring_record *first = sb_ring_peek(&f.c, &corrupt);
    CHECK(first && sb_ring_record_length(first) == 255 * 8);
    size_t got = 0;
    for (size_t want = 1; got < 300; want += 3) {
        const size_t n = sb_ring_read_items(&f.c, 5, out + got * 8, 8, want, &corrupt);
        CHECK(n > 0 && n <= want);
        got += n;
    }
    CHECK_EQ(got, 300);
    CHECK(!corrupt && memcmp(in, out, 300 * 8) == 0);
    CHECK_EQ(sb_ring_read_items(&f.c, 5, out, 8, 10, &corrupt), 0);
    CHECK_EQ(f.c.partial, 0);
    /* Short of room: fewer items go (a record halved until it fits), exactly those arrive. The
     * two records above (2416 bytes) are released. Two records of 200 items (1608 bytes each):
     * at 2416, and at 0 after 72 bytes of padding at the wrap; 3288 bytes in use, 808 free.
     * 600 more items: 255 do not fit, halving gives 127, then 63 (512 bytes); again from 255
     * for the rest: 31 (256 bytes), then 3: 97 in all (a model of the claim arithmetic in
     * Python agrees). */
    CHECK_EQ(sb_ring_write_items(&f.p, 5, in, 8, 200), 200);
    CHECK_EQ(sb_ring_write_items(&f.p, 5, in + 200 * 8, 8, 200), 200);
    const size_t w = sb_ring_write_items(&f.p, 5, in + 400 * 8, 8, 1000 - 400);
    CHECK_EQ(w, 97);
    CHECK_EQ(sb_ring_read_items(&f.c, 5, out, 8, 1000, &corrupt), 400 + w);
    CHECK(memcmp(in, out, (400 + w) * 8) == 0);
    /* A record of another type, or whose length is not a multiple of the item, stops the read
     * and is left for sb_ring_peek(); the items after it are read next. */
    CHECK_EQ(sb_ring_write_items(&f.p, 5, in, 8, 3), 3);
    put(&f, 6, "other", 5);
    put(&f, 5, "12345", 5);
    CHECK_EQ(sb_ring_write_items(&f.p, 5, in + 3 * 8, 8, 2), 2);
    CHECK_EQ(sb_ring_read_items(&f.c, 5, out, 8, 100, &corrupt), 3);
    const struct sb_ring_record *rec = sb_ring_peek(&f.c, &corrupt);
    CHECK(rec && rec->type == 6);
    sb_ring_advance(&f.c, rec);
    CHECK_EQ(sb_ring_read_items(&f.c, 5, out + 3 * 8, 8, 100, &corrupt), 0);
    rec = sb_ring_peek(&f.c, &corrupt);
    CHECK(rec && rec->type == 5 && sb_ring_record_length(rec) == 5);
    sb_ring_advance(&f.c, rec);
    CHECK_EQ(sb_ring_read_items(&f.c, 5, out + 3 * 8, 8, 100, &corrupt), 2);
    CHECK(!corrupt && memcmp(in, out, 5 * 8) == 0);
    /* Half read, then finished with peek + advance: the offset goes with the record. */
    CHECK_EQ(sb_ring_write_items(&f.p, 5, in, 8, 10), 10);
    CHECK_EQ(sb_ring_write_items(&f.p, 5, in + 10 * 8, 8, 4), 4);
    CHECK_EQ(sb_ring_read_items(&f.c, 5, out, 8, 7, &corrupt), 7);
    CHECK_EQ(f.c.partial, 7 * 8);
    rec = sb_ring_peek(&f.c, &corrupt);
    CHECK(rec && sb_ring_record_length(rec) == 10 * 8);
    sb_ring_advance(&f.c, rec);
    CHECK_EQ(f.c.partial, 0);
    CHECK_EQ(sb_ring_read_items(&f.c, 5, out, 8, 100, &corrupt), 4);
    CHECK(!corrupt && memcmp(in + 10 * 8, out, 4 * 8) == 0);
    /* An offset that cannot belong to the record (not a whole number of items, or past its
     * end) is reported as corruption, nothing copied. */
    CHECK_EQ(sb_ring_write_items(&f.p, 5, in, 8, 2), 2);
    f.c.partial = 4;
    CHECK_EQ(sb_ring_read_items(&f.c, 5, out, 8, 100, &corrupt), 0);
    CHECK(corrupt);
    corrupt = false;
    f.c.partial = 24;
    CHECK_EQ(sb_ring_read_items(&f.c, 5, out, 8, 100, &corrupt), 0);
    CHECK(corrupt);
    corrupt = false;
    f.c.partial = 0;
    CHECK_EQ(sb_ring_read_items(&f.c, 5, out, 8, 100, &corrupt), 2);
    /* No item size, or one larger than any record: nothing. */
    CHECK_EQ(sb_ring_write_items(&f.p, 5, in, 0, 3), 0);
    CHECK_EQ(sb_ring_write_items(&f.p, 5, in, 4096, 1), 0);
    CHECK_EQ(sb_ring_read_items(&f.c, 5, out, 0, 3, &corrupt), 0);
    free(f.mem);
    printf("items: one record per batch, read in pieces, partial writes when short of room\n");
}

/*
 * The hysteresis at a full ring through sb_ring_write() / sb_ring_read_n(), one 8-byte item (a
 * 16-byte record) at a time: once full, the producer writes again only when the consumer has
 * freed the record, its zero mark and 256 bytes (a sixteenth of this ring) beyond; every item
 * comes out once, in order.
 */
static void test_refill_hysteresis(void)
{
    struct ring_fixture f;
    fixture_init(&f, 4096);
    uint64_t next_in = 0, next_out = 0, v;
    /* 255 records of 16 bytes and the zero mark: 4088 bytes. */
    while (sb_ring_write(&f.p, 3, &next_in, sizeof(next_in)))
        next_in++;
    CHECK_EQ(next_in, 255);
    /* The next record ends at 4096 + 8 (its zero mark): it needs head >= 8 to fit, and
     * head >= 264 with the slack, that is 17 records read. */
    for (int i = 0; i < 16; i++) {
        CHECK_EQ(sb_ring_read_n(&f.c, 3, &v, sizeof(v), 1, NULL), 1);
        CHECK_EQ(v, next_out);
        next_out++;
        CHECK(!sb_ring_write(&f.p, 3, &next_in, sizeof(next_in)));
    }
    CHECK_EQ(sb_ring_read_n(&f.c, 3, &v, sizeof(v), 1, NULL), 1);
    CHECK_EQ(v, next_out);
    next_out++;
    /* Now the 17 freed records go in one after another, with no re-read of head. */
    for (int i = 0; i < 17; i++) {
        CHECK(sb_ring_write(&f.p, 3, &next_in, sizeof(next_in)));
        next_in++;
    }
    CHECK(!sb_ring_write(&f.p, 3, &next_in, sizeof(next_in)));
    /* Drained, the ring takes records again (a drained ring never applies the slack: that is
     * checked by test_largest_record(), whose records would not fit with it). */
    while (sb_ring_read_n(&f.c, 3, &v, sizeof(v), 1, NULL) == 1) {
        CHECK_EQ(v, next_out);
        next_out++;
    }
    CHECK_EQ(next_out, next_in);
    CHECK(sb_ring_write(&f.p, 3, &next_in, sizeof(next_in)));
    CHECK_EQ(sb_ring_read_n(&f.c, 3, &v, sizeof(v), 1, NULL), 1);
    CHECK_EQ(v, next_in);
    free(f.mem);
}

/*
 * The drained exception with an uncommitted claim before the refused one: one 8-byte record
 * committed and read (head == committed == 16, the producer's cached head still 0), then two
 * claims in one batch, 2040 + 2024 payload bytes (2048 + 2032 ring bytes), ending at 4096
 * with the zero mark beyond: the second re-reads head and fits by 8 bytes, not with the 256 of
 * slack, so only the drained exception lets it go. Both come out whole.
 */
static void test_drained_with_uncommitted(void)
{
    struct ring_fixture f;
    fixture_init(&f, 4096);
    uint64_t v = 7;
    CHECK(sb_ring_write(&f.p, 1, &v, sizeof(v)));
    uint64_t got;
    CHECK_EQ(sb_ring_read_n(&f.c, 1, &got, sizeof(got), 1, NULL), 1);
    CHECK_EQ(got, 7);
    static unsigned char a[2040], b[2024];
    for (size_t i = 0; i < sizeof(a); i++)
        a[i] = (unsigned char)(i * 13 + 1);
    for (size_t i = 0; i < sizeof(b); i++)
        b[i] = (unsigned char)(i * 29 + 5);
    void *da = sb_ring_claim(&f.p, sizeof(a), 2);
    CHECK(da);
    memcpy(da, a, sizeof(a));
    void *db = sb_ring_claim(&f.p, sizeof(b), 3);
    CHECK(db);
    memcpy(db, b, sizeof(b));
    sb_ring_commit(&f.p);
    const struct sb_ring_record *rec = sb_ring_peek(&f.c, NULL);
    CHECK(rec && rec->type == 2 && sb_ring_record_length(rec) == sizeof(a));
    CHECK_MEM(rec->payload, a, sizeof(a));
    sb_ring_advance(&f.c, rec);
    rec = sb_ring_peek(&f.c, NULL);
    CHECK(rec && rec->type == 3 && sb_ring_record_length(rec) == sizeof(b));
    CHECK_MEM(rec->payload, b, sizeof(b));
    sb_ring_advance(&f.c, rec);
    CHECK(sb_ring_peek(&f.c, NULL) == NULL);
    sb_ring_release(&f.c);
    free(f.mem);
}

/*
 * sb_ring_write_n() of a batch at a full ring: its fast path takes the room there is, with no
 * hysteresis (a batch does not trade a line per record), and everything comes out in order.
 */
static void test_batch_at_full(void)
{
    struct ring_fixture f;
    fixture_init(&f, 4096);
    uint64_t in[255], out[255];
    for (uint64_t i = 0; i < 255; i++)
        in[i] = 1000 + i;
    CHECK_EQ(sb_ring_write_n(&f.p, 4, in, sizeof(uint64_t), 255), 255);
    CHECK_EQ(sb_ring_write_n(&f.p, 4, in, sizeof(uint64_t), 2), 0);
    CHECK_EQ(sb_ring_read_n(&f.c, 4, out, sizeof(uint64_t), 1, NULL), 1);
    CHECK_EQ(out[0], 1000);
    /* 16 bytes released: one of the two goes (one at a time it would wait for 272). */
    uint64_t more[2] = {2000, 2001};
    CHECK_EQ(sb_ring_write_n(&f.p, 4, more, sizeof(uint64_t), 2), 1);
    CHECK_EQ(sb_ring_read_n(&f.c, 4, out, sizeof(uint64_t), 255, NULL), 255);
    for (uint64_t i = 0; i < 254; i++)
        CHECK_EQ(out[i], 1001 + i);
    CHECK_EQ(out[254], 2000);
    CHECK_EQ(sb_ring_read_n(&f.c, 4, out, sizeof(uint64_t), 1, NULL), 0);
    free(f.mem);
}

int main(void)
{
    test_empty();
    test_full();
    test_refill_hysteresis();
    test_drained_with_uncommitted();
    test_batch_at_full();
    test_wrap_with_padding();
    test_largest_record();
    test_claim_then_abort();
    test_validation();
    test_corrupt_mark();
    test_batch_commit_over_old_lap();
    test_batch_copy();
    test_items();
    printf("test_ring: all passed\n");
    return 0;
}
