/*
 * kafka_codec.c - Kafka wire protocol primitives; see kafka_codec.h.
 */
#include "kafka_codec.h"

#include <sys/uio.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

#include "varint.h"

/* ---------------------------------- reader ---------------------------------- */

/* The next @n bytes, or NULL (and the sticky error) when fewer are left. */
static const unsigned char *take(struct sb_kreader *r, size_t n)
{
    if (r->error || (size_t)(r->end - r->p) < n) {
        r->error = -EBADMSG;
        return NULL;
    }
    const unsigned char *p = r->p;
    r->p += n;
    return p;
}

int8_t sb_kr_i8(struct sb_kreader *r)
{
    const unsigned char *p = take(r, 1);
    return p ? (int8_t)p[0] : 0;
}

int16_t sb_kr_i16(struct sb_kreader *r)
{
    const unsigned char *p = take(r, 2);
    return p ? (int16_t)sb_be16_get(p) : 0;
}

int32_t sb_kr_i32(struct sb_kreader *r)
{
    const unsigned char *p = take(r, 4);
    return p ? (int32_t)sb_be32_get(p) : 0;
}

int64_t sb_kr_i64(struct sb_kreader *r)
{
    const unsigned char *p = take(r, 8);
    return p ? (int64_t)sb_be64_get(p) : 0;
}

uint32_t sb_kr_uvarint(struct sb_kreader *r)
{
    uint64_t v = 0;
    for (int i = 0; i < 5; i++) {
        const unsigned char *p = take(r, 1);
        if (!p)
            return 0;
        v |= (uint64_t)(*p & 0x7f) << (7 * i);
        if (!(*p & 0x80)) {
            if (v > UINT32_MAX)
                break;
            return (uint32_t)v;
        }
    }
    r->error = -EBADMSG;
    return 0;
}

int32_t sb_kr_varint(struct sb_kreader *r)
{
    int64_t v = 0;
    if (r->error || sb_varlong_get(&r->p, r->end, SB_VARINT_MAX_BYTES, &v)) {
        r->error = -EBADMSG;
        return 0;
    }
    return (int32_t)v;
}

int64_t sb_kr_varlong(struct sb_kreader *r)
{
    int64_t v = 0;
    if (r->error || sb_varlong_get(&r->p, r->end, SB_VARLONG_MAX_BYTES, &v)) {
        r->error = -EBADMSG;
        return 0;
    }
    return v;
}

static struct sb_kslice slice_of(struct sb_kreader *r, int64_t len)
{
    struct sb_kslice s = {NULL, -1};
    if (r->error)
        return s;
    if (len < -1 || len > INT32_MAX) {
        r->error = -EBADMSG;
        return s;
    }
    if (len == -1)
        return s;
    const unsigned char *p = take(r, (size_t)len);
    if (p) {
        s.ptr = p;
        s.len = (int32_t)len;
    }
    return s;
}

struct sb_kslice sb_kr_string(struct sb_kreader *r)
{
    return slice_of(r, sb_kr_i16(r));
}

struct sb_kslice sb_kr_compact_string(struct sb_kreader *r)
{
    return slice_of(r, (int64_t)sb_kr_uvarint(r) - 1);
}

struct sb_kslice sb_kr_bytes(struct sb_kreader *r)
{
    return slice_of(r, sb_kr_i32(r));
}

struct sb_kslice sb_kr_compact_bytes(struct sb_kreader *r)
{
    return slice_of(r, (int64_t)sb_kr_uvarint(r) - 1);
}

static int32_t checked_array_len(struct sb_kreader *r, int64_t n, size_t min_element_bytes)
{
    if (r->error)
        return 0;
    if (n < -1 || n > INT32_MAX ||
        (n > 0 && min_element_bytes && (uint64_t)n > sb_kreader_left(r) / min_element_bytes)) {
        r->error = -EBADMSG;
        return 0;
    }
    return (int32_t)n;
}

int32_t sb_kr_array_len(struct sb_kreader *r, size_t min_element_bytes)
{
    return checked_array_len(r, sb_kr_i32(r), min_element_bytes);
}

int32_t sb_kr_compact_array_len(struct sb_kreader *r, size_t min_element_bytes)
{
    return checked_array_len(r, (int64_t)sb_kr_uvarint(r) - 1, min_element_bytes);
}

void sb_kr_skip_tagged_fields(struct sb_kreader *r)
{
    uint32_t count = sb_kr_uvarint(r);
    for (uint32_t i = 0; i < count && !r->error; i++) {
        (void)sb_kr_uvarint(r); /* tag */
        uint32_t size = sb_kr_uvarint(r);
        (void)take(r, size);
    }
}

/* ---------------------------------- writer ---------------------------------- */

void sb_kwriter_init(struct sb_kwriter *w)
{
    w->buf = NULL;
    w->len = w->cap = 0;
    w->error = 0;
    w->refs = NULL;
    w->ref_count = w->ref_cap = 0;
    w->ref_bytes = 0;
}

void sb_kwriter_free(struct sb_kwriter *w)
{
    free(w->buf);
    free(w->refs);
    sb_kwriter_init(w);
}

/* Byte strings shorter than this are copied: not worth an iovec of their own. */
#define KW_REF_MIN_BYTES 512

void sb_kw_bytes_ref(struct sb_kwriter *w, const void *data, int32_t len)
{
    if (!data || len < KW_REF_MIN_BYTES) {
        sb_kw_bytes(w, data, len);
        return;
    }
    sb_kw_i32(w, len);
    if (w->error)
        return;
    if (w->ref_count == w->ref_cap) {
        size_t cap = w->ref_cap ? w->ref_cap * 2 : 8;
        struct sb_kw_ref *refs = realloc(w->refs, cap * sizeof(*refs));
        if (!refs) {
            w->error = -ENOMEM;
            return;
        }
        w->refs = refs;
        w->ref_cap = cap;
    }
    w->refs[w->ref_count++] = (struct sb_kw_ref){w->len, data, (size_t)len};
    w->ref_bytes += (size_t)len;
}

size_t sb_kwriter_iov(const struct sb_kwriter *w, size_t skip, struct iovec *iov, size_t max)
{
    size_t n = 0, buf_at = 0; /* buf_at: the buffer's bytes already described or skipped */
    for (size_t k = 0; k <= w->ref_count && n < max; k++) {
        /* The buffer's piece before ref k (or its tail after the last ref), then ref k. */
        const size_t piece_end = k < w->ref_count ? w->refs[k].at : w->len;
        const unsigned char *pieces[2] = {w->buf + buf_at,
                                          k < w->ref_count ? w->refs[k].ptr : NULL};
        const size_t lens[2] = {piece_end - buf_at, k < w->ref_count ? w->refs[k].len : 0};
        buf_at = piece_end;
        for (int j = 0; j < 2 && n < max; j++) {
            if (lens[j] <= skip) {
                skip -= lens[j];
                continue;
            }
            iov[n].iov_base = (void *)(uintptr_t)(pieces[j] + skip);
            iov[n].iov_len = lens[j] - skip;
            skip = 0;
            n++;
        }
    }
    return n;
}

unsigned char *sb_kw_reserve(struct sb_kwriter *w, size_t n)
{
    if (w->error)
        return NULL;
    if (w->cap - w->len < n) {
        size_t cap = w->cap ? w->cap : 256;
        while (cap - w->len < n)
            cap *= 2;
        unsigned char *buf = realloc(w->buf, cap);
        if (!buf) {
            w->error = -ENOMEM;
            return NULL;
        }
        w->buf = buf;
        w->cap = cap;
    }
    unsigned char *p = w->buf + w->len;
    w->len += n;
    return p;
}

void sb_kw_i8(struct sb_kwriter *w, int8_t v)
{
    unsigned char *p = sb_kw_reserve(w, 1);
    if (p)
        p[0] = (unsigned char)v;
}

void sb_kw_i16(struct sb_kwriter *w, int16_t v)
{
    unsigned char *p = sb_kw_reserve(w, 2);
    if (p)
        sb_be16_put(p, (uint16_t)v);
}

void sb_kw_i32(struct sb_kwriter *w, int32_t v)
{
    unsigned char *p = sb_kw_reserve(w, 4);
    if (p)
        sb_be32_put(p, (uint32_t)v);
}

void sb_kw_i64(struct sb_kwriter *w, int64_t v)
{
    unsigned char *p = sb_kw_reserve(w, 8);
    if (p)
        sb_be64_put(p, (uint64_t)v);
}

void sb_kw_uvarint(struct sb_kwriter *w, uint32_t v)
{
    unsigned char tmp[5];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char)v;
    sb_kw_raw(w, tmp, n);
}

void sb_kw_raw(struct sb_kwriter *w, const void *data, size_t len)
{
    unsigned char *p = sb_kw_reserve(w, len);
    if (p && len)
        memcpy(p, data, len);
}

void sb_kw_string(struct sb_kwriter *w, const char *s, int32_t len)
{
    if (!s) {
        sb_kw_i16(w, -1);
        return;
    }
    if (len < 0)
        len = (int32_t)strlen(s);
    if (len > INT16_MAX) {
        w->error = -EINVAL;
        return;
    }
    sb_kw_i16(w, (int16_t)len);
    sb_kw_raw(w, s, (size_t)len);
}

void sb_kw_compact_string(struct sb_kwriter *w, const char *s, int32_t len)
{
    if (!s) {
        sb_kw_uvarint(w, 0);
        return;
    }
    if (len < 0)
        len = (int32_t)strlen(s);
    sb_kw_uvarint(w, (uint32_t)len + 1);
    sb_kw_raw(w, s, (size_t)len);
}

void sb_kw_bytes(struct sb_kwriter *w, const void *data, int32_t len)
{
    if (!data) {
        sb_kw_i32(w, -1);
        return;
    }
    sb_kw_i32(w, len);
    sb_kw_raw(w, data, (size_t)len);
}

void sb_kw_array_len(struct sb_kwriter *w, int32_t n)
{
    sb_kw_i32(w, n);
}

void sb_kw_compact_array_len(struct sb_kwriter *w, int32_t n)
{
    sb_kw_uvarint(w, n < 0 ? 0 : (uint32_t)n + 1);
}

void sb_kw_empty_tags(struct sb_kwriter *w)
{
    sb_kw_uvarint(w, 0);
}

size_t sb_kw_frame_begin(struct sb_kwriter *w)
{
    size_t at = w->len;
    sb_kw_i32(w, 0);
    return at;
}

void sb_kw_frame_end(struct sb_kwriter *w, size_t frame_start)
{
    if (w->error)
        return;
    sb_be32_put(w->buf + frame_start, (uint32_t)(w->len + w->ref_bytes - frame_start - 4));
}

size_t sb_kafka_response_begin(struct sb_kwriter *w, int32_t correlation_id)
{
    size_t frame = sb_kw_frame_begin(w);
    sb_kw_i32(w, correlation_id);
    return frame;
}

void sb_kafka_write_topic_header(struct sb_kwriter *w, const void *name, int32_t name_len,
                                 int32_t partition_count)
{
    sb_kw_string(w, (const char *)name, name_len);
    sb_kw_array_len(w, partition_count);
}

void sb_kafka_topic_iter_init(struct sb_kafka_topic_iter *it, struct sb_kreader *r,
                              int32_t topic_count, size_t min_partition_bytes)
{
    it->r = r;
    it->topics_left = topic_count;
    it->partitions_left = 0;
    it->min_partition_bytes = min_partition_bytes;
}

int sb_kafka_topic_iter_next(struct sb_kafka_topic_iter *it, struct sb_kslice *name,
                             int32_t *partition_count)
{
    if (it->partitions_left)
        return -EBADMSG; /* the caller skipped partitions */
    if (it->topics_left == 0)
        return 0;
    it->topics_left--;
    *name = sb_kr_string(it->r);
    int32_t n = sb_kr_array_len(it->r, it->min_partition_bytes);
    if (it->r->error || name->len < 0 || n < 0)
        return -EBADMSG;
    *partition_count = n;
    it->partitions_left = n;
    return 1;
}

int sb_kafka_topic_iter_partition(struct sb_kafka_topic_iter *it)
{
    if (it->partitions_left == 0)
        return 0;
    it->partitions_left--;
    return 1;
}

/* ------------------------------ requests, ApiVersions ------------------------------ */

/* kafka-subset.md: versions to advertise. Produce advertises 0-7 (librdkafka enables
 * compression only when v0 is in the range) although v0-2 are refused when used. */
const struct sb_kafka_api_range sb_kafka_supported_apis[] = {
    {SB_KAFKA_PRODUCE, 0, 7},
    {SB_KAFKA_FETCH, 4, 11},
    {SB_KAFKA_LIST_OFFSETS, 1, 2},
    {SB_KAFKA_METADATA, 0, 4},
    /* Only so that librdkafka uses lz4 (it checks for FindCoordinator v0); answered with
     * COORDINATOR_NOT_AVAILABLE: no consumer groups yet. */
    {SB_KAFKA_FIND_COORDINATOR, 0, 0},
    {SB_KAFKA_API_VERSIONS, 0, 3},
    {SB_KAFKA_CREATE_TOPICS, 0, 4},
    {SB_KAFKA_DELETE_TOPICS, 0, 3},
    {SB_KAFKA_INIT_PRODUCER_ID, 0, 1},
};
const size_t sb_kafka_supported_api_count =
    sizeof(sb_kafka_supported_apis) / sizeof(sb_kafka_supported_apis[0]);

bool sb_kafka_request_is_flexible(int16_t api_key, int16_t api_version)
{
    /* Within the advertised ranges, only ApiVersions v3 is a flexible version (KIP-482);
     * CreateTopics v5+ and DeleteTopics v4+ would be, but are not advertised. */
    return api_key == SB_KAFKA_API_VERSIONS && api_version >= 3;
}

int sb_kafka_read_request_header(struct sb_kreader *r, struct sb_kafka_request_header *h)
{
    h->api_key = sb_kr_i16(r);
    h->api_version = sb_kr_i16(r);
    h->correlation_id = sb_kr_i32(r);
    /* Header v1 and v2 both carry a classic nullable string client_id. */
    h->client_id = sb_kr_string(r);
    /* An ApiVersions request of a version we do not know may come with either header (the
     * client cannot know which we expect): when nothing follows the client id, take it as v1
     * so that it gets its UNSUPPORTED_VERSION answer. */
    if (!r->error && sb_kafka_request_is_flexible(h->api_key, h->api_version) &&
        !(h->api_key == SB_KAFKA_API_VERSIONS && sb_kreader_left(r) == 0))
        sb_kr_skip_tagged_fields(r);
    return r->error;
}

void sb_kafka_write_api_versions_response(struct sb_kwriter *w, int16_t version,
                                          int32_t correlation_id, int16_t error)
{
    if (error)
        version = 0; /* readable by every client, which then retries with our range */
    size_t frame = sb_kafka_response_begin(w, correlation_id); /* always header v0 */
    sb_kw_i16(w, error);
    int32_t n = (int32_t)sb_kafka_supported_api_count;
    if (version >= 3)
        sb_kw_compact_array_len(w, n);
    else
        sb_kw_array_len(w, n);
    for (int32_t i = 0; i < n; i++) {
        sb_kw_i16(w, sb_kafka_supported_apis[i].api_key);
        sb_kw_i16(w, sb_kafka_supported_apis[i].min_version);
        sb_kw_i16(w, sb_kafka_supported_apis[i].max_version);
        if (version >= 3)
            sb_kw_empty_tags(w);
    }
    if (version >= 1)
        sb_kw_i32(w, 0); /* throttle_time_ms */
    if (version >= 3)
        sb_kw_empty_tags(w);
    sb_kw_frame_end(w, frame);
}
