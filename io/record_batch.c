/*
 * record_batch.c - building, validating and reading Kafka record batches (magic 2).
 */
#include "record_batch.h"

#include <errno.h>
#include <string.h>

#include "crc32c.h"
#include "varint.h"

void sb_batch_begin(struct sb_batch_builder *b, void *buf, size_t cap)
{
    b->buf = buf;
    b->cap = cap;
    b->len = SB_BATCH_HEADER_BYTES;
    b->base_timestamp = 0;
    b->max_timestamp = 0;
    b->count = 0;
}

size_t sb_batch_record_bound(size_t key_len, size_t value_len)
{
    /* length, attributes, timestampDelta, offsetDelta, keyLength, valueLength, headerCount */
    return SB_VARINT_MAX_BYTES + 1 + SB_VARLONG_MAX_BYTES + SB_VARINT_MAX_BYTES +
           SB_VARINT_MAX_BYTES + key_len + SB_VARINT_MAX_BYTES + value_len + 1;
}

int sb_batch_add(struct sb_batch_builder *b, int64_t timestamp_ms, const void *key,
                 size_t key_len, const void *value, size_t value_len)
{
    if (b->count == 0) {
        b->base_timestamp = timestamp_ms;
        b->max_timestamp = timestamp_ms;
    }
    int64_t ts_delta = timestamp_ms - b->base_timestamp;
    int64_t key_field = key ? (int64_t)key_len : -1;
    int64_t value_field = value ? (int64_t)value_len : -1;
    size_t body = 1 + sb_varlong_size(ts_delta) + sb_varlong_size(b->count) +
                  sb_varlong_size(key_field) + (key ? key_len : 0) +
                  sb_varlong_size(value_field) + (value ? value_len : 0) + sb_varlong_size(0);
    size_t total = sb_varlong_size((int64_t)body) + body;
    if (body > INT32_MAX || total > b->cap - b->len)
        return -ENOSPC;
    unsigned char *p = b->buf + b->len;
    p += sb_varlong_put(p, (int64_t)body);
    *p++ = 0; /* record attributes: unused */
    p += sb_varlong_put(p, ts_delta);
    p += sb_varlong_put(p, b->count);
    p += sb_varlong_put(p, key_field);
    if (key && key_len) {
        memcpy(p, key, key_len);
        p += key_len;
    }
    p += sb_varlong_put(p, value_field);
    if (value && value_len) {
        memcpy(p, value, value_len);
        p += value_len;
    }
    p += sb_varlong_put(p, 0); /* no headers */
    b->len += total;
    b->count++;
    if (timestamp_ms > b->max_timestamp)
        b->max_timestamp = timestamp_ms;
    return 0;
}

size_t sb_batch_finish(struct sb_batch_builder *b, int64_t base_offset, bool log_append_time)
{
    unsigned char *h = b->buf;
    sb_be64_put(h + 0, (uint64_t)base_offset);
    sb_be32_put(h + 8, (uint32_t)(b->len - SB_BATCH_LOG_OVERHEAD));
    sb_be32_put(h + 12, 0);                      /* partitionLeaderEpoch */
    h[16] = SB_BATCH_MAGIC;
    sb_be16_put(h + 21, log_append_time ? SB_BATCH_ATTR_LOG_APPEND_TIME : 0);
    sb_be32_put(h + 23, (uint32_t)(b->count - 1)); /* lastOffsetDelta */
    sb_be64_put(h + 27, (uint64_t)b->base_timestamp);
    sb_be64_put(h + 35, (uint64_t)b->max_timestamp);
    sb_be64_put(h + 43, (uint64_t)-1);           /* producerId: none */
    sb_be16_put(h + 51, (uint16_t)-1);           /* producerEpoch */
    sb_be32_put(h + 53, (uint32_t)-1);           /* baseSequence */
    sb_be32_put(h + 57, (uint32_t)b->count);
    uint32_t crc = sb_crc32c(0, h + SB_BATCH_CRC_START, b->len - SB_BATCH_CRC_START);
    sb_be32_put(h + SB_BATCH_CRC_OFFSET, crc);
    return b->len;
}

void sb_batch_set_base_offset(void *batch, int64_t base_offset)
{
    sb_be64_put(batch, (uint64_t)base_offset);
}

int sb_batch_parse_header(const void *buf, size_t len, struct sb_batch_info *info,
                          const char **why)
{
    const unsigned char *h = buf;
    if (len < SB_BATCH_HEADER_BYTES) {
        *why = "incomplete batch header";
        return -EAGAIN;
    }
    int32_t batch_length = (int32_t)sb_be32_get(h + 8);
    if (batch_length < SB_BATCH_HEADER_BYTES - SB_BATCH_LOG_OVERHEAD) {
        *why = "batchLength shorter than a batch header";
        return -EBADMSG;
    }
    if (h[16] != SB_BATCH_MAGIC) {
        *why = "magic is not 2";
        return -EBADMSG;
    }
    info->base_offset = (int64_t)sb_be64_get(h);
    info->total_bytes = (uint32_t)batch_length + SB_BATCH_LOG_OVERHEAD;
    info->leader_epoch = (int32_t)sb_be32_get(h + 12);
    info->attributes = (int16_t)sb_be16_get(h + 21);
    info->last_offset_delta = (int32_t)sb_be32_get(h + 23);
    info->base_timestamp = (int64_t)sb_be64_get(h + 27);
    info->max_timestamp = (int64_t)sb_be64_get(h + 35);
    info->producer_id = (int64_t)sb_be64_get(h + 43);
    info->producer_epoch = (int16_t)sb_be16_get(h + 51);
    info->base_sequence = (int32_t)sb_be32_get(h + 53);
    info->record_count = (int32_t)sb_be32_get(h + 57);
    if (info->base_offset < 0) {
        *why = "negative baseOffset";
        return -EBADMSG;
    }
    if (info->last_offset_delta >= 0 && info->base_offset > INT64_MAX - 1 - info->last_offset_delta) {
        *why = "baseOffset + lastOffsetDelta beyond the largest offset";
        return -EBADMSG;
    }
    if (info->record_count < 0 || info->last_offset_delta < 0 ||
        (info->record_count > 0 && info->last_offset_delta < info->record_count - 1)) {
        *why = "recordsCount or lastOffsetDelta out of range";
        return -EBADMSG;
    }
    if (info->total_bytes > len) {
        *why = "batch extends past the end of the data";
        return -EAGAIN;
    }
    return 0;
}

int sb_batch_check_crc(const void *buf, size_t len, struct sb_batch_info *info, const char **why)
{
    int rc = sb_batch_parse_header(buf, len, info, why);
    if (rc)
        return rc;
    const unsigned char *h = buf;
    uint32_t crc = sb_crc32c(0, h + SB_BATCH_CRC_START, info->total_bytes - SB_BATCH_CRC_START);
    if (crc != sb_be32_get(h + SB_BATCH_CRC_OFFSET)) {
        *why = "CRC-32C mismatch";
        return -EBADMSG;
    }
    return 0;
}

int sb_batch_validate(const void *buf, size_t len, struct sb_batch_info *info, const char **why)
{
    int rc = sb_batch_check_crc(buf, len, info, why);
    if (rc)
        return rc;
    if (info->attributes & SB_BATCH_ATTR_COMPRESSION_MASK)
        return 0; /* compressed: sb_batch_validate_compressed() walks its records */
    struct sb_record_iter it;
    rc = sb_record_iter_init(&it, buf, info->total_bytes);
    if (rc)
        return rc;
    return sb_record_iter_validate(&it, why);
}

int sb_record_iter_validate(struct sb_record_iter *it, const char **why)
{
    struct sb_record rec;
    int rc;
    int32_t n = 0;
    while ((rc = sb_record_next(it, &rec, why)) == 1) {
        const unsigned char *hp = rec.headers, *hend = rec.headers + rec.header_bytes;
        const unsigned char *k, *v;
        int32_t kl, vl, hn = 0;
        while ((rc = sb_record_header_next(&hp, hend, &k, &kl, &v, &vl)) == 1)
            hn++;
        if (rc < 0 || hn != rec.header_count || hp != hend) {
            *why = "malformed record header";
            return -EBADMSG;
        }
        n++;
    }
    if (rc < 0)
        return rc;
    if (n != it->info.record_count) {
        *why = "recordsCount does not match the records";
        return -EBADMSG;
    }
    return 0;
}

int sb_record_iter_init(struct sb_record_iter *it, const void *batch, size_t len)
{
    const char *why;
    int rc = sb_batch_parse_header(batch, len, &it->info, &why);
    if (rc)
        return rc == -EAGAIN ? -EBADMSG : rc;
    if (it->info.attributes & SB_BATCH_ATTR_COMPRESSION_MASK)
        return -EOPNOTSUPP;
    it->p = (const unsigned char *)batch + SB_BATCH_HEADER_BYTES;
    it->end = (const unsigned char *)batch + it->info.total_bytes;
    it->index = 0;
    return 0;
}

int sb_record_iter_init_records(struct sb_record_iter *it, const void *batch, size_t len,
                                const void *records, size_t records_len)
{
    const char *why;
    int rc = sb_batch_parse_header(batch, len, &it->info, &why);
    if (rc)
        return rc == -EAGAIN ? -EBADMSG : rc;
    it->p = (const unsigned char *)records;
    it->end = it->p + records_len;
    it->index = 0;
    return 0;
}

/* A varint length field followed by that many bytes (-1 = null). */
static int get_bytes(const unsigned char **p, const unsigned char *end,
                     const unsigned char **out, int32_t *len)
{
    int64_t n;
    if (sb_varlong_get(p, end, SB_VARINT_MAX_BYTES, &n) || n < -1 || n > end - *p)
        return -1;
    *len = (int32_t)n;
    *out = n < 0 ? NULL : *p;
    if (n > 0)
        *p += n;
    return 0;
}

int sb_record_next(struct sb_record_iter *it, struct sb_record *rec, const char **why)
{
    if (it->index >= it->info.record_count) {
        if (it->p != it->end) {
            *why = "bytes after the last record";
            return -EBADMSG;
        }
        return 0;
    }
    const unsigned char *p = it->p;
    int64_t len, ts_delta, off_delta, header_count;
    if (sb_varlong_get(&p, it->end, SB_VARINT_MAX_BYTES, &len) || len < 1 ||
        len > it->end - p) {
        *why = "record length out of range";
        return -EBADMSG;
    }
    const unsigned char *rend = p + len;
    p++; /* attributes */
    if (sb_varlong_get(&p, rend, SB_VARLONG_MAX_BYTES, &ts_delta) ||
        sb_varlong_get(&p, rend, SB_VARINT_MAX_BYTES, &off_delta) ||
        get_bytes(&p, rend, &rec->key, &rec->key_len) ||
        get_bytes(&p, rend, &rec->value, &rec->value_len) ||
        sb_varlong_get(&p, rend, SB_VARINT_MAX_BYTES, &header_count) || header_count < 0) {
        *why = "malformed record";
        return -EBADMSG;
    }
    if (off_delta != it->index || off_delta > it->info.last_offset_delta) {
        *why = "record offsetDelta out of sequence";
        return -EBADMSG;
    }
    /* Hostile values must not overflow (found by fuzzing: tests/fuzz/fuzz_record_batch.c). */
    if (__builtin_add_overflow(it->info.base_offset, off_delta, &rec->offset) ||
        __builtin_add_overflow(it->info.base_timestamp, ts_delta, &rec->timestamp_ms)) {
        *why = "record offset or timestamp out of range";
        return -EBADMSG;
    }
    rec->header_count = (int32_t)header_count;
    rec->headers = p;
    rec->header_bytes = (size_t)(rend - p);
    it->p = rend;
    it->index++;
    return 1;
}

int sb_record_header_next(const unsigned char **p, const unsigned char *end,
                          const unsigned char **key, int32_t *key_len,
                          const unsigned char **value, int32_t *value_len)
{
    if (*p == end)
        return 0;
    if (get_bytes(p, end, key, key_len) || *key_len < 0 || get_bytes(p, end, value, value_len))
        return -EBADMSG;
    return 1;
}
