/*
 * kafka_codec.h - Kafka wire protocol primitives: a bounds-checked reader for untrusted request
 * bytes and a growable writer for responses (big-endian integers, classic and compact
 * strings/bytes/arrays, unsigned and zigzag varints, tagged fields), plus the request header.
 *
 * The reader never reads past its end: the first out-of-bounds or malformed field sets
 * r->error (sticky) and every later read returns zero values, so a parser can read a whole
 * request and check r->error once. The writer grows its buffer; an allocation failure sets
 * w->error (sticky) the same way.
 *
 * Field layouts follow Kafka's protocol guide and its message schemas (see
 * ../shared/reference/kafka-subset.md for the subset shardbusd speaks).
 */
#ifndef SB_KAFKA_CODEC_H
#define SB_KAFKA_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct sb_kreader {
    const unsigned char *p, *end;
    int error; /* 0, or -EBADMSG once anything was out of bounds or malformed */
};

static inline void sb_kreader_init(struct sb_kreader *r, const void *buf, size_t len)
{
    r->p = (const unsigned char *)buf;
    r->end = r->p + len;
    r->error = 0;
}

static inline size_t sb_kreader_left(const struct sb_kreader *r)
{
    return (size_t)(r->end - r->p);
}

int8_t sb_kr_i8(struct sb_kreader *r);
int16_t sb_kr_i16(struct sb_kreader *r);
int32_t sb_kr_i32(struct sb_kreader *r);
int64_t sb_kr_i64(struct sb_kreader *r);
/** Unsigned varint (compact lengths, tag numbers), at most 32 bits. */
uint32_t sb_kr_uvarint(struct sb_kreader *r);
/** Zigzag varint (int32) and varlong (int64). */
int32_t sb_kr_varint(struct sb_kreader *r);
int64_t sb_kr_varlong(struct sb_kreader *r);

/** A string or bytes field: NULL with len -1 when null. Points into the request. */
struct sb_kslice {
    const unsigned char *ptr;
    int32_t len;
};

struct sb_kslice sb_kr_string(struct sb_kreader *r);         /* int16 length; -1 = null */
struct sb_kslice sb_kr_compact_string(struct sb_kreader *r); /* uvarint length + 1; 0 = null */
struct sb_kslice sb_kr_bytes(struct sb_kreader *r);          /* int32 length; -1 = null */
struct sb_kslice sb_kr_compact_bytes(struct sb_kreader *r);  /* uvarint length + 1; 0 = null */
/** Array lengths: classic int32 (-1 = null) and compact uvarint n + 1 (0 = null). A length
 *  larger than the bytes left could hold (at least @min_element_bytes each) is an error. */
int32_t sb_kr_array_len(struct sb_kreader *r, size_t min_element_bytes);
int32_t sb_kr_compact_array_len(struct sb_kreader *r, size_t min_element_bytes);
/** Skip a tagged-field section (flexible versions): count, then (tag, size, bytes) each. */
void sb_kr_skip_tagged_fields(struct sb_kreader *r);

/** Bytes a writer refers to instead of copying them: they go on the wire right after the
 *  first @at bytes of the writer's buffer (sb_kw_bytes_ref()). */
struct sb_kw_ref {
    size_t at;
    const void *ptr;
    size_t len;
};

struct sb_kwriter {
    unsigned char *buf;
    size_t len, cap;
    int error; /* 0, or -ENOMEM */
    struct sb_kw_ref *refs; /* in order of @at */
    size_t ref_count, ref_cap;
    size_t ref_bytes; /* sum of the refs' lengths */
};

struct iovec;

void sb_kwriter_init(struct sb_kwriter *w);
void sb_kwriter_free(struct sb_kwriter *w);
/** sb_kwriter_wire_len - bytes the writer puts on the wire: its buffer and the referred bytes. */
static inline size_t sb_kwriter_wire_len(const struct sb_kwriter *w)
{
    return w->len + w->ref_bytes;
}
/**
 * sb_kwriter_iov - describe the writer's wire bytes from byte @skip on as up to @max iovecs in
 * @iov (the buffer's pieces and the referred bytes, in wire order). Returns the number filled;
 * fewer than needed when @max runs out (the caller sends the rest later, with a larger @skip).
 */
size_t sb_kwriter_iov(const struct sb_kwriter *w, size_t skip, struct iovec *iov, size_t max);
/** Make room for @n more bytes; returns where they go, or NULL (w->error set). */
unsigned char *sb_kw_reserve(struct sb_kwriter *w, size_t n);

/**
 * sb_kw_bytes_ref - sb_kw_bytes() without copying @data: the writer refers to it, and @data
 * must stay unchanged until the wire bytes are sent (sb_kwriter_iov()). Short byte strings are
 * copied anyway (an iovec costs more than copying them). A frame that holds references must
 * start at offset 0 of the writer (sb_kw_frame_end() counts every referred byte in it).
 */
void sb_kw_bytes_ref(struct sb_kwriter *w, const void *data, int32_t len);

void sb_kw_i8(struct sb_kwriter *w, int8_t v);
void sb_kw_i16(struct sb_kwriter *w, int16_t v);
void sb_kw_i32(struct sb_kwriter *w, int32_t v);
void sb_kw_i64(struct sb_kwriter *w, int64_t v);
void sb_kw_uvarint(struct sb_kwriter *w, uint32_t v);
void sb_kw_raw(struct sb_kwriter *w, const void *data, size_t len);
/** Strings: @s NULL writes null; @len < 0 means strlen(s). */
void sb_kw_string(struct sb_kwriter *w, const char *s, int32_t len);
void sb_kw_compact_string(struct sb_kwriter *w, const char *s, int32_t len);
void sb_kw_bytes(struct sb_kwriter *w, const void *data, int32_t len); /* data NULL: null */
void sb_kw_array_len(struct sb_kwriter *w, int32_t n);                /* -1: null */
void sb_kw_compact_array_len(struct sb_kwriter *w, int32_t n);        /* -1: null */
/** An empty tagged-field section. */
void sb_kw_empty_tags(struct sb_kwriter *w);

/**
 * sb_kw_frame_begin / sb_kw_frame_end - a size-prefixed frame: begin reserves the int32 size
 * and returns its position; end fills it with the bytes written since.
 */
size_t sb_kw_frame_begin(struct sb_kwriter *w);
void sb_kw_frame_end(struct sb_kwriter *w, size_t frame_start);

/**
 * sb_kafka_response_begin - open a response frame: the size (filled by sb_kw_frame_end()) and
 * response header v0, the correlation id. Returns the frame's start for sb_kw_frame_end().
 */
size_t sb_kafka_response_begin(struct sb_kwriter *w, int32_t correlation_id);

/** sb_kafka_write_topic_header - a topic entry's start (classic versions): its name, then the
 *  length of the partition array that follows. */
void sb_kafka_write_topic_header(struct sb_kwriter *w, const void *name, int32_t name_len,
                                 int32_t partition_count);

/** Walking a request's topics and their partitions: the shape Produce, Fetch and ListOffsets
 *  share (the caller reads each partition's own fields). */
struct sb_kafka_topic_iter {
    struct sb_kreader *r;
    int32_t topics_left;
    int32_t partitions_left;
    size_t min_partition_bytes; /* the least one partition entry takes: bounds hostile counts */
};

void sb_kafka_topic_iter_init(struct sb_kafka_topic_iter *it, struct sb_kreader *r,
                              int32_t topic_count, size_t min_partition_bytes);

/** The next topic: 1 with its (non-null) name and partition count, 0 after the last, -EBADMSG
 *  (malformed, or partitions of the previous topic left unread). */
int sb_kafka_topic_iter_next(struct sb_kafka_topic_iter *it, struct sb_kslice *name,
                             int32_t *partition_count);

/** 1 when a partition of the current topic comes next (the caller then reads it), else 0. */
int sb_kafka_topic_iter_partition(struct sb_kafka_topic_iter *it);

/* API keys shardbusd knows. */
enum sb_kafka_api {
    SB_KAFKA_PRODUCE = 0,
    SB_KAFKA_FETCH = 1,
    SB_KAFKA_LIST_OFFSETS = 2,
    SB_KAFKA_METADATA = 3,
    SB_KAFKA_FIND_COORDINATOR = 10,
    SB_KAFKA_API_VERSIONS = 18,
    SB_KAFKA_CREATE_TOPICS = 19,
    SB_KAFKA_DELETE_TOPICS = 20,
    SB_KAFKA_INIT_PRODUCER_ID = 22,
};

/* Error codes of the subset. */
enum sb_kafka_error {
    SB_KAFKA_NONE = 0,
    SB_KAFKA_OFFSET_OUT_OF_RANGE = 1,
    SB_KAFKA_CORRUPT_MESSAGE = 2,
    SB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION = 3,
    SB_KAFKA_MESSAGE_TOO_LARGE = 10,
    SB_KAFKA_INVALID_REQUIRED_ACKS = 21,
    SB_KAFKA_UNSUPPORTED_VERSION = 35,
    SB_KAFKA_INVALID_REQUEST = 42,
    SB_KAFKA_UNSUPPORTED_COMPRESSION_TYPE = 76,
    SB_KAFKA_INVALID_RECORD = 87,
};

/** One row of the ApiVersions answer. */
struct sb_kafka_api_range {
    int16_t api_key;
    int16_t min_version; /* advertised */
    int16_t max_version;
};

/** The versions shardbusd advertises (kafka-subset.md), and how many there are. */
extern const struct sb_kafka_api_range sb_kafka_supported_apis[];
extern const size_t sb_kafka_supported_api_count;

/** sb_kafka_header_is_flexible - request header v2 (tagged fields) for this API version? */
bool sb_kafka_request_is_flexible(int16_t api_key, int16_t api_version);

struct sb_kafka_request_header {
    int16_t api_key;
    int16_t api_version;
    int32_t correlation_id;
    struct sb_kslice client_id; /* nullable */
};

/**
 * sb_kafka_read_request_header - parse the header at the start of a request body (after the
 * int32 size). Returns 0, or -EBADMSG (truncated or malformed).
 */
int sb_kafka_read_request_header(struct sb_kreader *r, struct sb_kafka_request_header *h);

/**
 * sb_kafka_write_api_versions_response - the whole ApiVersions response frame (size, header
 * v0, body of @version 0-3) for @correlation_id. @error: SB_KAFKA_NONE, or
 * SB_KAFKA_UNSUPPORTED_VERSION (then, as Kafka does, the body is v0 whatever was asked, so any
 * client can read it and retry with a version we have).
 */
void sb_kafka_write_api_versions_response(struct sb_kwriter *w, int16_t version,
                                          int32_t correlation_id, int16_t error);

#endif /* SB_KAFKA_CODEC_H */
