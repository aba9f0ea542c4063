/*
 * native_client.h - shardbus-bench's own Kafka-protocol client (--system shardbus-native): the
 * project's encoders (io/record_batch.h, io/kafka_codec.h) on a plain TCP socket, no client
 * library in between, so the figures show what the server does with pre-built batches.
 *
 * Producer: one connection (TCP_NODELAY) each; messages go round-robin into one Kafka v2 record
 * batch per partition; one Produce v7 request carries every partition's batch and leaves when
 * each partition's batch holds --batch records or the oldest message has waited --linger-ms
 * (0: at once), with up to --inflight requests outstanding (a full request waits for a slot, a
 * lingering one keeps filling). Responses are read in order: correlation id, topic, every
 * partition's error code, and each partition's base offset (exactly the previous base + count
 * when this producer is the topic's only one, increasing otherwise).
 *
 * Consumer: one connection; Fetch v11 of every partition from offset 0, one request at a time
 * (the next one leaves as soon as a response is validated, before its records are handed
 * over); every batch is checked (sb_batch_validate: lengths, CRC-32C, records) and its records
 * at or above the fetch offset delivered.
 *
 * Every failure (short read or write, connection closed or reset, an error code, a malformed
 * answer, no answer within --drain-timeout) is printed once on stderr with its context and
 * ends the producer or consumer with an error, so the run exits non-zero rather than hangs.
 */
#ifndef BENCH_NATIVE_CLIENT_H
#define BENCH_NATIVE_CLIENT_H

#include "client.h"

/** The Kafka protocol against shardbusd with the native client above (native_client.c). */
extern const struct bench_system bench_native_system;

#endif
