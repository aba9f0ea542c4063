/*
 * message.h - what every benchmark message carries, and the receiving side's check of it.
 *
 * A message of --size bytes starts with a 24-byte header, little-endian on the wire as in
 * memory on x86-64 and arm64: a magic, the producer's number, its sequence number (0, 1, 2 ...
 * per producer) and the send timestamp (CLOCK_MONOTONIC ns; in fixed-rate mode the time the
 * message was scheduled for, so a late send counts against the system, not for it). The rest
 * is a pattern derived from the sequence number, checked byte for byte on receipt.
 *
 * The verifier keeps one bitmap of sequence numbers per producer, so it counts every message
 * that arrives twice and, once told how many each producer sent, every one that never came.
 * Order is not checked: with several partitions a producer's messages are ordered per
 * partition only.
 */
#ifndef BENCH_MESSAGE_H
#define BENCH_MESSAGE_H

#include <stddef.h>
#include <stdint.h>

#define BENCH_MSG_MAGIC 0x31425342u /* "SBB1" */
#define BENCH_MSG_HEADER 24u

struct bench_msg_header {
    uint32_t producer;
    uint64_t seq;
    uint64_t ts_ns;
};

/**
 * bench_msg_encode - write the header and the pattern of message @seq of @producer, stamped
 * @ts_ns, into @buf of @size bytes (@size >= BENCH_MSG_HEADER).
 */
void bench_msg_encode(void *buf, size_t size, uint32_t producer, uint64_t seq, uint64_t ts_ns);

/**
 * bench_msg_decode - read the header of the message @buf of @len bytes into @out and check its
 * magic, that @len is @size and that the pattern is intact.
 * Returns 0, or -EINVAL when any of these is wrong (the message is corrupt).
 */
int bench_msg_decode(const void *buf, size_t len, size_t size, struct bench_msg_header *out);

struct bench_seqmap {
    uint8_t *bits;
    uint64_t cap_bits;
    uint64_t unique;
};

struct bench_verifier {
    uint32_t producers;
    struct bench_seqmap *maps;
    uint64_t duplicated;
    uint64_t corrupt;
};

/**
 * bench_verifier_init - a verifier for messages of @producers producers.
 * Returns 0 or -ENOMEM. One verifier belongs to one consumer thread.
 */
int bench_verifier_init(struct bench_verifier *v, uint32_t producers);

/**
 * bench_verifier_add - note the arrival of message @seq of @producer.
 * Returns 1 when it is new, 0 when it arrived before (counted as duplicated), -EINVAL when
 * @producer is out of range (counted as corrupt), -ENOMEM.
 */
int bench_verifier_add(struct bench_verifier *v, uint32_t producer, uint64_t seq);

/**
 * bench_verifier_missing - how many of the @sent messages (sequence numbers 0..@sent-1) of
 * @producer never arrived.
 */
uint64_t bench_verifier_missing(const struct bench_verifier *v, uint32_t producer, uint64_t sent);

/**
 * bench_verifier_free - release the bitmaps of @v.
 */
void bench_verifier_free(struct bench_verifier *v);

#endif
