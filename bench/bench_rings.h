/*
 * bench_rings.h - the C side of bench_ring: producer and consumer loops over the shardbus ring
 * (bench_sb_ring.c) and Concurrency Kit's ck_ring (bench_ck_ring.c).
 *
 * Neither ring.h (C11 _Atomic) nor Debian's ck_ring.h compiles as C++, so each ring's hot loops
 * live in a C file, where the inline fast paths inline into the loop exactly as they would in a
 * C user's code; bench_ring.cc drives them through these plain C functions (one call per batch
 * of N items, so the call itself costs nothing measurable).
 *
 * Conventions shared by every loop:
 *  - items carry consecutive sequence numbers: produce(r, first, n) sends first .. first+n-1,
 *    consume(r, first, n) expects exactly those, in order, and abort()s on any mismatch so a
 *    benchmark can never measure an empty or corrupted transfer;
 *  - a side that finds the ring full (producer) or empty (consumer) spins with bench_relax()
 *    (one PAUSE), the same policy for every ring measured.
 */
#ifndef SB_BENCH_RINGS_H
#define SB_BENCH_RINGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/** One spin-wait step, identical for every ring under test. */
static inline void bench_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/** Print what went wrong and abort(): a benchmark that moved the wrong data must not report. */
void bench_fail(const char *what, uint64_t expected, uint64_t got);

/* --- shardbus ring (bench_sb_ring.c) --- */

struct bench_sb_ring;

/** A formatted ring of @capacity data bytes with its producer and consumer handles attached,
 *  every page touched. NULL on failure. */
struct bench_sb_ring *bench_sb_ring_new(uint64_t capacity);
void bench_sb_ring_free(struct bench_sb_ring *r);

/** 8-byte items, one record each (16 ring bytes: 8-byte header + 8-byte payload), batch <= 256.
 *  @copy_api: sb_ring_write_n() / sb_ring_read_n() of up to @batch items per call (like Boost's
 *  push/pop); otherwise zero-copy: @batch = 1 is claim + commit per item / peek + advance +
 *  release per item, @batch > 1 up to @batch claims per commit / reads per release.
 *  @own_handle: each thread works on its own copy of its handle (see bench_sb_ring.c). */
void bench_sb_produce_u64(struct bench_sb_ring *r, uint64_t first, uint64_t n, unsigned batch,
                          bool copy_api, bool own_handle);
void bench_sb_consume_u64(struct bench_sb_ring *r, uint64_t first, uint64_t n, unsigned batch,
                          bool copy_api, bool own_handle);

/** 8-byte items, @batch of them per record (one claim + memcpy + commit per batch; the consumer
 *  checks every item of a record and releases it). */
void bench_sb_produce_u64_batchrec(struct bench_sb_ring *r, uint64_t first, uint64_t n,
                                   unsigned batch);
void bench_sb_consume_u64_batchrec(struct bench_sb_ring *r, uint64_t first, uint64_t n);

/** 8-byte items through the item calls: @batch of them per sb_ring_write_items() (one record),
 *  up to @batch copied out per sb_ring_read_items(), every item checked. */
void bench_sb_produce_u64_items(struct bench_sb_ring *r, uint64_t first, uint64_t n,
                                unsigned batch);
void bench_sb_consume_u64_items(struct bench_sb_ring *r, uint64_t first, uint64_t n,
                                unsigned batch);

/** 100-byte records (112 ring bytes): claim 100 bytes, memcpy a 100-byte message (sequence number
 *  in its first and last 8 bytes), commit; the consumer checks the length, both sequence copies
 *  and memcmp()s the 84 bytes between them against the pattern. Batching as above. */
#define BENCH_REC_BYTES 100u
void bench_sb_produce_rec(struct bench_sb_ring *r, uint64_t first, uint64_t n, unsigned batch);
void bench_sb_consume_rec(struct bench_sb_ring *r, uint64_t first, uint64_t n, unsigned batch);

/* --- Concurrency Kit ck_ring, SPSC (bench_ck_ring.c) --- */

struct bench_ck_ring;

/** A ck_ring of @entries pointer-sized slots (a power of two; it holds entries - 1 items). */
struct bench_ck_ring *bench_ck_ring_new(unsigned entries);
void bench_ck_ring_free(struct bench_ck_ring *r);

/** One item per ck_ring_enqueue_spsc() / ck_ring_dequeue_spsc(); the item is the sequence
 *  number cast to a pointer. */
void bench_ck_produce(struct bench_ck_ring *r, uint64_t first, uint64_t n);
void bench_ck_consume(struct bench_ck_ring *r, uint64_t first, uint64_t n);

#ifdef __cplusplus
}
#endif

#endif /* SB_BENCH_RINGS_H */
