/*
 * record_batch.h - Kafka record batches, magic 2: the on-disk and on-the-wire form of events.
 *
 * Layout (big-endian), 61-byte header then the records:
 *   0 baseOffset i64 | 8 batchLength i32 (bytes after this field) | 12 partitionLeaderEpoch i32
 *  16 magic i8 = 2   | 17 crc u32 (CRC-32C of bytes 21..end)      | 21 attributes i16
 *  23 lastOffsetDelta i32 | 27 baseTimestamp i64 | 35 maxTimestamp i64 | 43 producerId i64
 *  51 producerEpoch i16   | 53 baseSequence i32  | 57 recordsCount i32 | 61 records
 * Record: varint length, attributes i8, varlong timestampDelta, varint offsetDelta, varint
 * keyLength (-1 = null), key, varint valueLength (-1 = null), value, varint headerCount, then
 * per header varint keyLength, key, varint valueLength, value.
 *
 * The builder writes batches of uncompressed records; the validator and the record iterator read
 * untrusted bytes (disk, network) and never read outside the buffer they are given.
 */
#ifndef SB_RECORD_BATCH_H
#define SB_RECORD_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SB_BATCH_HEADER_BYTES 61
#define SB_BATCH_LENGTH_OFFSET 8
#define SB_BATCH_CRC_OFFSET 17
#define SB_BATCH_CRC_START 21
/** Bytes before batchLength's count starts: baseOffset + batchLength. */
#define SB_BATCH_LOG_OVERHEAD 12
#define SB_BATCH_MAGIC 2

#define SB_BATCH_ATTR_COMPRESSION_MASK 0x07
#define SB_BATCH_ATTR_LOG_APPEND_TIME 0x08
#define SB_BATCH_ATTR_TRANSACTIONAL 0x10
#define SB_BATCH_ATTR_CONTROL 0x20

/** The header fields of a batch. */
struct sb_batch_info {
    int64_t base_offset;
    uint32_t total_bytes; /* whole batch: batchLength + 12 */
    int32_t leader_epoch;
    int16_t attributes;
    int32_t last_offset_delta;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int64_t producer_id;
    int16_t producer_epoch;
    int32_t base_sequence;
    int32_t record_count;
};

/** A batch being built in a caller-provided buffer. */
struct sb_batch_builder {
    unsigned char *buf;
    size_t cap;
    size_t len;
    int64_t base_timestamp;
    int64_t max_timestamp;
    int32_t count;
};

/** sb_batch_begin - start a batch in @buf (@cap bytes, at least SB_BATCH_HEADER_BYTES). */
void sb_batch_begin(struct sb_batch_builder *b, void *buf, size_t cap);

/** Upper bound of the bytes one record adds to a batch. */
size_t sb_batch_record_bound(size_t key_len, size_t value_len);

/**
 * sb_batch_add - append a record (no headers). @key or @value NULL means null (lengths then 0).
 * Returns 0, or -ENOSPC when it does not fit (the batch is unchanged).
 */
int sb_batch_add(struct sb_batch_builder *b, int64_t timestamp_ms, const void *key,
                 size_t key_len, const void *value, size_t value_len);

/**
 * sb_batch_finish - fill the header (baseOffset @base_offset, LogAppendTime when
 * @log_append_time) and the CRC. Returns the batch's total bytes. At least one record.
 */
size_t sb_batch_finish(struct sb_batch_builder *b, int64_t base_offset, bool log_append_time);

/** sb_batch_set_base_offset - rewrite baseOffset of a complete batch (outside the CRC). */
void sb_batch_set_base_offset(void *batch, int64_t base_offset);

/**
 * sb_batch_parse_header - read the header of the batch at @buf (@len bytes available) without
 * checking the CRC or the records. Returns 0, -EAGAIN when fewer than 61 bytes are available or
 * the batch is longer than @len (a torn tail, when reading a file), or -EBADMSG when a header
 * field is impossible; *why names the problem.
 */
int sb_batch_parse_header(const void *buf, size_t len, struct sb_batch_info *info,
                          const char **why);

/**
 * sb_batch_check_crc - sb_batch_parse_header(), then the CRC-32C over the batch: what a reader
 * of a batch that was fully validated when it was stored needs to know it is unchanged (the
 * records are not walked). Returns 0, -EAGAIN (incomplete), or -EBADMSG with *why set.
 */
int sb_batch_check_crc(const void *buf, size_t len, struct sb_batch_info *info, const char **why);

/**
 * sb_batch_validate - sb_batch_parse_header(), then the CRC-32C, then, for an uncompressed
 * batch, every record's lengths, offset deltas (0, 1, 2, ... as Kafka writes them) and
 * count. Returns 0, -EAGAIN (incomplete), or -EBADMSG with *why set.
 */
int sb_batch_validate(const void *buf, size_t len, struct sb_batch_info *info, const char **why);

/** One decoded record; pointers into the batch. key/value NULL when null. */
struct sb_record {
    int64_t offset;
    int64_t timestamp_ms;
    const unsigned char *key;
    int32_t key_len;
    const unsigned char *value;
    int32_t value_len;
    int32_t header_count;
    const unsigned char *headers; /* raw header bytes, header_bytes long */
    size_t header_bytes;
};

struct sb_record_iter {
    struct sb_batch_info info;
    const unsigned char *p, *end;
    int32_t index;
};

/** sb_record_iter_init - iterate the records of a batch that passed sb_batch_validate() (or at
 *  least sb_batch_parse_header() with @len covering the batch). Uncompressed batches only:
 *  -EOPNOTSUPP for a compressed one. */
int sb_record_iter_init(struct sb_record_iter *it, const void *batch, size_t len);

/** sb_record_iter_init_records - iterate the records of the batch at @batch (its header is
 *  read from there) found decompressed in @records (@records_len bytes, e.g. from
 *  sb_decompress()); the iterator checks them as it goes, as for an uncompressed batch.
 *  Returns 0 or -EBADMSG (a header that cannot be right). */
int sb_record_iter_init_records(struct sb_record_iter *it, const void *batch, size_t len,
                                const void *records, size_t records_len);

/** sb_record_iter_validate - walk every remaining record of @it and its headers, checking
 *  lengths, offset deltas and that there are exactly recordsCount of them (what
 *  sb_batch_validate() does for an uncompressed batch). Returns 0 or -EBADMSG with *why. */
int sb_record_iter_validate(struct sb_record_iter *it, const char **why);

/** sb_record_next - 1 with *rec filled, 0 after the last record, -EBADMSG (with *why) for a
 *  malformed record. */
int sb_record_next(struct sb_record_iter *it, struct sb_record *rec, const char **why);

/** sb_record_header_next - walk @rec's headers: 1 with key/value set, 0 at the end, -EBADMSG. */
int sb_record_header_next(const unsigned char **p, const unsigned char *end,
                          const unsigned char **key, int32_t *key_len,
                          const unsigned char **value, int32_t *value_len);

#endif /* SB_RECORD_BATCH_H */
