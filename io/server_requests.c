/*
 * server_requests.c - from a request frame to its response, on the connection's shard.
 *
 * Requests that need no partition (ApiVersions, Metadata, CreateTopics, InitProducerId...) are
 * answered at once. Produce, Fetch and ListOffsets become one struct sb_part_op per partition,
 * each sent to the shard that owns the partition (sb_shard_post(): through the shard ring, or
 * run at once when that is this shard) and run there by server_partition.c; when the last one
 * is back the response is written. A Fetch that found fewer than min_bytes waits (long
 * polling) until one of its partitions grows or max_wait_ms passes, then runs again.
 *
 * Bad input gets Kafka's answer where the protocol has one (an error code per partition or
 * topic; UNSUPPORTED_VERSION to ApiVersions); otherwise (a malformed header, an unknown API, a
 * version we do not speak) the connection is closed, with one log line naming the peer.
 */
#include <errno.h>
#include <pthread.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "compression.h"
#include "kafka_admin.h"
#include "kafka_fetch.h"
#include "kafka_list_offsets.h"
#include "kafka_metadata.h"
#include "kafka_produce.h"
#include "record_batch.h"
#include "server_internal.h"

/* Error codes beyond kafka_codec.h's. */
enum {
    KAFKA_UNKNOWN_SERVER_ERROR = -1,
    KAFKA_LEADER_NOT_AVAILABLE = 5,
    KAFKA_INVALID_TOPIC = 17,
    KAFKA_COORDINATOR_NOT_AVAILABLE = 15,
    KAFKA_TOPIC_ALREADY_EXISTS = 36,
    KAFKA_INVALID_PARTITIONS = 37,
    KAFKA_INVALID_REPLICATION_FACTOR = 38,
    KAFKA_INVALID_CONFIG = 40,
    KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED = 53,
};

/* Partition entries in one Produce, Fetch or ListOffsets request (a topic named twice counts
 * twice): more closes the connection, with a log line. Bounds a request's operations, and the
 * memory and the response a single request can ask for. */
#define REQUEST_MAX_PARTITIONS 4096u

/* The most a Fetch response carries (Kafka's broker default fetch.max.bytes): a request's
 * max_bytes above it counts as this. Keeps a response far below INT32_MAX. */
#define FETCH_MAX_BYTES (55u << 20)

int sb_api_slot(int16_t api_key)
{
    switch (api_key) {
    case SB_KAFKA_PRODUCE: return 0;
    case SB_KAFKA_FETCH: return 1;
    case SB_KAFKA_LIST_OFFSETS: return 2;
    case SB_KAFKA_METADATA: return 3;
    case SB_KAFKA_API_VERSIONS: return 4;
    case SB_KAFKA_CREATE_TOPICS: return 5;
    case SB_KAFKA_DELETE_TOPICS: return 6;
    case SB_KAFKA_INIT_PRODUCER_ID: return 7;
    case SB_KAFKA_FIND_COORDINATOR: return 8;
    default: return -1;
    }
}

void sb_request_free(struct sb_request *req)
{
    for (uint32_t i = 0; i < req->op_count; i++)
        free(req->ops[i].data);
    free(req->ops);
    free(req->frame);
    sb_kwriter_free(&req->out);
    free(req);
}

static void log_bad(struct sb_server_shard *ss, const struct sb_request *req, const char *what)
{
    sb_server_log(ss->srv, SB_LOG_WARN, "connection %s: %s (api %d v%d, correlation id %d)",
                  req->conn->peer, what, req->hdr.api_key, req->hdr.api_version,
                  req->hdr.correlation_id);
    atomic_fetch_add_explicit(&ss->protocol_errors, 1, memory_order_relaxed);
}

/* A topic name from the request as a C string (NULL when not a valid topic name). */
static bool topic_name_copy(struct sb_kslice name, char out[SB_TOPIC_NAME_MAX + 1])
{
    if (!name.ptr || name.len <= 0 || name.len > SB_TOPIC_NAME_MAX)
        return false;
    memcpy(out, name.ptr, (size_t)name.len);
    out[name.len] = '\0';
    return sb_topic_name_valid(out);
}

/* The topic named @name, created first when auto-creation is on and @create. NULL: unknown
 * (*error says why). Topic creation opens files: this shard waits for the disk meanwhile. */
static struct sb_topic *topic_lookup(struct sb_server_shard *ss, struct sb_kslice name,
                                     bool create, int16_t *error)
{
    char buf[SB_TOPIC_NAME_MAX + 1];
    struct sb_server *srv = ss->srv;
    *error = SB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    if (!topic_name_copy(name, buf)) {
        *error = KAFKA_INVALID_TOPIC;
        return NULL;
    }
    struct sb_topic *t = sb_topic_find(&srv->bus->topics, buf);
    if (t || !create || !srv->cfg.auto_create_topics)
        return t;
    int rc = sb_topic_create(srv->bus, buf, srv->cfg.default_partitions);
    if (rc == 0)
        sb_server_log(srv, SB_LOG_INFO, "topic %s created (%u partitions, auto-created)", buf,
                      srv->cfg.default_partitions);
    else if (rc == -EAGAIN)
        *error = KAFKA_LEADER_NOT_AVAILABLE; /* another topic is being created or deleted:
                                                 the client retries */
    else if (rc != -EEXIST)
        sb_server_log(srv, SB_LOG_ERROR, "cannot create topic %s: %s", buf, strerror(-rc));
    return sb_topic_find(&srv->bus->topics, buf);
}

/* NULL: out of memory, or the request's REQUEST_MAX_PARTITIONS are reached (op_fail()). */
static struct sb_part_op *op_add(struct sb_request *req, uint32_t *cap)
{
    if (req->op_count >= REQUEST_MAX_PARTITIONS)
        return NULL;
    if (req->op_count == *cap) {
        uint32_t ncap = *cap ? *cap * 2 : 8;
        struct sb_part_op *n = realloc(req->ops, ncap * sizeof(*n));
        if (!n)
            return NULL;
        req->ops = n;
        *cap = ncap;
    }
    struct sb_part_op *op = &req->ops[req->op_count++];
    memset(op, 0, sizeof(*op));
    op->req = req;
    return op;
}

/* Why op_add() gave no op: -E2BIG (too many partitions) or -ENOMEM. */
static int op_fail(const struct sb_request *req)
{
    return req->op_count >= REQUEST_MAX_PARTITIONS ? -E2BIG : -ENOMEM;
}

static void ops_done(struct sb_server_shard *ss, struct sb_request *req);

/*
 * The next partition operation of @req: @kind, for partition @partition of the request's topic
 * entry @seq named @name, which is @t (NULL: unknown, @terr says why). An unknown topic or
 * partition is the op's error at once (it is then not dispatched). NULL when out of memory.
 */
static struct sb_part_op *op_start(struct sb_request *req, uint32_t *cap, enum sb_part_op_kind kind,
                                   struct sb_kslice name, uint32_t seq, int32_t partition,
                                   struct sb_topic *t, int16_t terr)
{
    struct sb_part_op *op = op_add(req, cap);
    if (!op)
        return NULL;
    op->kind = kind;
    op->topic_name = name;
    op->topic_seq = seq;
    op->partition = partition;
    if (!t)
        op->error = terr;
    else if (partition < 0 || (uint32_t)partition >= t->partition_count)
        op->error = SB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    else
        op->topic = t;
    return op;
}

/* Send every op that has a partition to its owner. The request completes when all are back. */
static void dispatch_ops(struct sb_server_shard *ss, struct sb_request *req)
{
    unsigned shards = ss->srv->bus->shard_count;
    /* One extra count held during the loop: ops run at once on this shard must not complete
     * the request before every op was sent. */
    req->ops_pending = 1;
    for (uint32_t i = 0; i < req->op_count; i++) {
        struct sb_part_op *op = &req->ops[i];
        if (!op->topic || op->error)
            continue;
        op->origin = ss;
        op->dispatched = true;
        req->ops_pending++;
        unsigned owner = sb_partition_owner(op->topic, (uint32_t)op->partition, shards);
        if (sb_shard_post(ss->shard, owner, sb_part_op_run, op)) {
            /* Out of memory (the ring full and no overflow node): this partition is answered
             * with an error, visibly, rather than left waiting. */
            op->dispatched = false;
            op->error = KAFKA_UNKNOWN_SERVER_ERROR;
            req->ops_pending--;
            sb_server_log(ss->srv, SB_LOG_ERROR,
                          "connection %s: out of memory sending a partition operation to shard "
                          "%u: answered with an error", req->conn->peer, owner);
        }
    }
    if (--req->ops_pending == 0) /* drop the extra count */
        ops_done(ss, req);
}

/* ------------------------------ responses ------------------------------ */

static void finish(struct sb_server_shard *ss, struct sb_request *req)
{
    int slot = sb_api_slot(req->hdr.api_key);
    if (slot >= 0)
        sb_histogram_record(&ss->latency[slot], sb_now_ns() - req->started_ns);
    if (req->out.error) {
        sb_kwriter_free(&req->out);
        req->close_after = true; /* out of memory for the answer */
        log_bad(ss, req, "out of memory writing the response");
    }
    sb_conn_request_done(req->conn, req);
}

static uint32_t topic_entries(const struct sb_request *req)
{
    uint32_t n = 0;
    for (uint32_t i = 0; i < req->op_count; i++)
        if (i == 0 || req->ops[i].topic_seq != req->ops[i - 1].topic_seq)
            n++;
    return n;
}

/* Calls @partition_fn for each op, with topic headers written by @topic_fn in between. */
#define FOR_EACH_TOPIC_ENTRY(req, i, j, BODY_TOPIC, BODY_PART)                                    \
    for (uint32_t i = 0, j; i < (req)->op_count; i = j) {                                         \
        for (j = i; j < (req)->op_count && (req)->ops[j].topic_seq == (req)->ops[i].topic_seq;)   \
            j++;                                                                                  \
        BODY_TOPIC;                                                                               \
        for (uint32_t k = i; k < j; k++) {                                                        \
            struct sb_part_op *op = &(req)->ops[k];                                               \
            BODY_PART;                                                                            \
        }                                                                                         \
    }

static void write_produce_response(struct sb_request *req)
{
    struct sb_kwriter *w = &req->out;
    int16_t v = req->hdr.api_version;
    size_t frame = sb_kafka_produce_response_begin(w, req->hdr.correlation_id,
                                                   (int32_t)topic_entries(req));
    FOR_EACH_TOPIC_ENTRY(
        req, i, j,
        sb_kafka_produce_response_topic(w, req->ops[i].topic_name.ptr, req->ops[i].topic_name.len,
                                        (int32_t)(j - i)),
        sb_kafka_produce_response_partition(w, v, op->partition, op->error,
                                            op->error ? -1 : op->base_offset, -1,
                                            op->error ? -1 : op->log_start_offset));
    sb_kafka_produce_response_end(w, frame);
}

static void write_fetch_response(struct sb_request *req)
{
    struct sb_kwriter *w = &req->out;
    int16_t v = req->hdr.api_version;
    size_t frame = sb_kafka_fetch_response_begin(w, v, req->hdr.correlation_id, SB_KAFKA_NONE,
                                                 (int32_t)topic_entries(req));
    FOR_EACH_TOPIC_ENTRY(
        req, i, j,
        sb_kafka_fetch_response_topic(w, req->ops[i].topic_name.ptr, req->ops[i].topic_name.len,
                                      (int32_t)(j - i)),
        /* The batches are referred to, not copied: op->data lives until the request is
         * freed, after its response is sent (sb_request_free()). */
        sb_kafka_fetch_response_partition_ref(w, v, op->partition, op->error,
                                          op->error && op->error != SB_KAFKA_OFFSET_OUT_OF_RANGE
                                              ? -1
                                              : op->high_watermark,
                                          op->error && op->error != SB_KAFKA_OFFSET_OUT_OF_RANGE
                                              ? -1
                                              : op->log_start_offset,
                                          op->data ? (const void *)op->data : "",
                                          (int32_t)op->data_len));
    sb_kafka_fetch_response_end(w, frame);
}

static void write_list_offsets_response(struct sb_request *req)
{
    struct sb_kwriter *w = &req->out;
    size_t frame = sb_kafka_list_offsets_response_begin(w, req->hdr.api_version,
                                                        req->hdr.correlation_id,
                                                        (int32_t)topic_entries(req));
    FOR_EACH_TOPIC_ENTRY(
        req, i, j,
        sb_kafka_list_offsets_response_topic(w, req->ops[i].topic_name.ptr,
                                             req->ops[i].topic_name.len, (int32_t)(j - i)),
        sb_kafka_list_offsets_response_partition(w, op->partition, op->error,
                                                 op->error ? -1 : op->timestamp,
                                                 op->error ? -1 : op->offset));
    sb_kafka_list_offsets_response_end(w, frame);
}

/* ------------------------------ Fetch long polling ------------------------------ */

static uint64_t fetched_bytes(const struct sb_request *req, bool *error)
{
    uint64_t n = 0;
    *error = false;
    for (uint32_t i = 0; i < req->op_count; i++) {
        n += req->ops[i].data_len;
        *error |= req->ops[i].error != SB_KAFKA_NONE;
    }
    return n;
}

static void waiting_remove(struct sb_server_shard *ss, struct sb_request *req)
{
    struct sb_request **pp = &ss->waiting;
    while (*pp && *pp != req)
        pp = &(*pp)->next_waiting;
    if (*pp)
        *pp = req->next_waiting;
    req->waiting = false;
    req->next_waiting = NULL;
}

/* Bytes of the whole stored batches at the start of @data (@len bytes, whole verified batches,
 * see fetch_trim()) that fit in @limit; *records counts their records. */
static uint32_t batches_within(const unsigned char *data, uint32_t len, uint64_t limit,
                               uint64_t *records)
{
    uint32_t used = 0;
    while (len - used >= SB_BATCH_HEADER_BYTES) {
        const unsigned char *b = data + used;
        uint32_t total = ((uint32_t)b[8] << 24 | (uint32_t)b[9] << 16 | (uint32_t)b[10] << 8 |
                          b[11]) + SB_BATCH_LOG_OVERHEAD;
        if (total > len - used || used + (uint64_t)total > limit)
            break;
        /* recordsCount: the header's last field */
        *records += (uint32_t)b[57] << 24 | (uint32_t)b[58] << 16 | (uint32_t)b[59] << 8 | b[60];
        used += total;
    }
    return used;
}

/*
 * The request's max_bytes, as Kafka applies it (KIP-74): partitions in request order, each
 * given at most its own max_bytes and what is left of the request's; the first partition with
 * data keeps at least its first batch, even when that alone is larger than either (and only
 * that partition: Kafka's minOneMessage); once max_bytes is used up the later partitions
 * carry no records. The partitions were read in parallel on their owners (each at most
 * min(partition max_bytes, max_bytes), and its first batch whole), so this only drops whole
 * batches from the ends. Then counts what is served into the partitions' metrics.
 */
static void fetch_apply_max_bytes(struct sb_request *req)
{
    uint64_t left = (uint64_t)req->fetch_max_bytes;
    bool first = true;
    for (uint32_t i = 0; i < req->op_count; i++) {
        struct sb_part_op *op = &req->ops[i];
        if (!op->data_len)
            continue;
        uint64_t records = 0;
        uint64_t limit = (uint64_t)op->max_bytes < left ? (uint64_t)op->max_bytes : left;
        uint32_t keep = batches_within(op->data, op->data_len, limit, &records);
        if (keep == 0 && first) { /* the first batch whole, however large */
            uint64_t first_batch = ((uint32_t)op->data[8] << 24 | (uint32_t)op->data[9] << 16 |
                                    (uint32_t)op->data[10] << 8 | op->data[11]) +
                                   (uint64_t)SB_BATCH_LOG_OVERHEAD;
            keep = batches_within(op->data, op->data_len, first_batch, &records);
        }
        if (keep == 0) {
            free(op->data);
            op->data = NULL;
        }
        op->data_len = keep;
        left = keep < left ? left - keep : 0;
        first = first && keep == 0;
        if (keep) {
            struct sb_partition *part = &op->topic->partitions[op->partition];
            /* Relaxed: counters for the metrics, added to by whichever shard answers. */
            atomic_fetch_add_explicit(&part->events_out, records, memory_order_relaxed);
            atomic_fetch_add_explicit(&part->bytes_out, keep, memory_order_relaxed);
        }
    }
}

/* Answer a Fetch with what its operations read. */
static void fetch_answer(struct sb_server_shard *ss, struct sb_request *req)
{
    fetch_apply_max_bytes(req);
    write_fetch_response(req);
    finish(ss, req);
}

static void fetch_complete(struct sb_server_shard *ss, struct sb_request *req)
{
    bool error;
    uint64_t bytes = fetched_bytes(req, &error);
    if (!error && bytes < (uint64_t)(req->min_bytes > 0 ? req->min_bytes : 1) &&
        sb_now_ns() < req->deadline_ns && !ss->stopping && !req->conn->closing) {
        /* Not enough yet: wait until a partition grows or the time is up (net_has_work()
         * registers for the wake-up, sb_requests_poll_waiting() looks). */
        req->waiting = true;
        req->next_waiting = ss->waiting;
        ss->waiting = req;
        return;
    }
    fetch_answer(ss, req);
}

bool sb_requests_poll_waiting(struct sb_server_shard *ss, int64_t now_ns)
{
    bool work = false;
    for (struct sb_request *req = ss->waiting, *next; req; req = next) {
        next = req->next_waiting;
        bool ready = now_ns >= req->deadline_ns || ss->stopping;
        for (uint32_t i = 0; i < req->op_count && !ready; i++) {
            const struct sb_part_op *op = &req->ops[i];
            /* Acquire pairs with the owner's seq_cst store in sb_partition_publish_end().
             * Past what the last read saw, not just past the fetch offset: a partition that
             * has some data (less than min_bytes) is read again only once it grows. */
            ready = op->topic && !op->error &&
                    atomic_load_explicit(&op->topic->partitions[op->partition].published_end,
                                         memory_order_acquire) > sb_part_op_seen_end(op);
        }
        if (!ready)
            continue;
        waiting_remove(ss, req);
        work = true;
        if (now_ns >= req->deadline_ns || ss->stopping) {
            fetch_answer(ss, req);
        } else {
            dispatch_ops(ss, req); /* read again: the data is there now */
        }
    }
    return work;
}

void sb_request_op_returned(struct sb_shard *s, void *arg)
{
    struct sb_part_op *op = arg;
    (void)s;
    op->dispatched = false;
    if (--op->req->ops_pending == 0)
        ops_done(op->origin, op->req);
}

/* Every partition operation of @req is back: answer (or, a Fetch, maybe wait). */
static void ops_done(struct sb_server_shard *ss, struct sb_request *req)
{
    if (req->conn->closing) {
        req->done = true;
        sb_conn_request_done(req->conn, req);
        return;
    }
    switch (req->hdr.api_key) {
    case SB_KAFKA_PRODUCE:
        if (!req->no_response)
            write_produce_response(req);
        finish(ss, req);
        break;
    case SB_KAFKA_FETCH:
        fetch_complete(ss, req);
        break;
    default:
        write_list_offsets_response(req);
        finish(ss, req);
        break;
    }
}

/* ------------------------------ the APIs ------------------------------ */

static int start_produce(struct sb_server_shard *ss, struct sb_request *req, struct sb_kreader *r)
{
    struct sb_kafka_produce_request pr;
    if (sb_kafka_read_produce_request(r, req->hdr.api_version, &pr))
        return -EBADMSG;
    req->acks = pr.acks;
    req->no_response = pr.acks == 0;
    bool bad_acks = pr.acks != 0 && pr.acks != 1 && pr.acks != -1;
    uint32_t cap = 0, seq = 0;
    struct sb_kslice name, records;
    int32_t pcount, index;
    int rc;
    const char *first_problem = NULL;
    while ((rc = sb_kafka_produce_next_topic(&pr, &name, &pcount)) == 1) {
        int16_t terr;
        struct sb_topic *t = topic_lookup(ss, name, true, &terr);
        while ((rc = sb_kafka_produce_next_partition(&pr, &index, &records)) == 1) {
            struct sb_part_op *op = op_start(req, &cap, SB_OP_PRODUCE, name, seq, index, t, terr);
            if (!op)
                return op_fail(req);
            const char *why = NULL;
            if (op->error) {
                /* unknown topic or partition */
            } else if (bad_acks) {
                op->error = SB_KAFKA_INVALID_REQUIRED_ACKS;
            } else if (!records.ptr || records.len <= 0) {
                op->error = SB_KAFKA_CORRUPT_MESSAGE;
                why = "no record batch";
            } else if ((size_t)records.len > ss->srv->cfg.max_message_bytes) {
                op->error = SB_KAFKA_MESSAGE_TOO_LARGE;
                why = "record batch larger than max_message_bytes";
            } else if (sb_batch_validate(records.ptr, (size_t)records.len, &op->info, &why)) {
                op->error = SB_KAFKA_CORRUPT_MESSAGE;
            } else if (op->info.total_bytes != (uint32_t)records.len) {
                op->error = SB_KAFKA_INVALID_RECORD;
                why = "more than one record batch";
            } else if ((op->info.attributes & SB_BATCH_ATTR_COMPRESSION_MASK) > 4) {
                op->error = SB_KAFKA_UNSUPPORTED_COMPRESSION_TYPE;
                why = "unknown compression codec";
            } else if (op->info.attributes &
                       (SB_BATCH_ATTR_TRANSACTIONAL | SB_BATCH_ATTR_CONTROL)) {
                op->error = SB_KAFKA_INVALID_RECORD;
                why = "transactional batches are not supported";
            } else if (sb_batch_validate_compressed(records.ptr, (size_t)records.len,
                                                    &ss->inflate_buf, &ss->inflate_cap, &why)) {
                /* A compressed batch's records are checked too (as Kafka's broker does): the
                 * CRC covers only the compressed bytes, and readers in the process decode
                 * them. */
                op->error = SB_KAFKA_CORRUPT_MESSAGE;
            } else {
                op->batch = records.ptr;
                op->batch_len = (uint32_t)records.len;
            }
            if (op->error)
                op->topic = NULL; /* answered without being dispatched */
            if (why && !first_problem)
                first_problem = why;
        }
        if (rc < 0)
            return -EBADMSG;
        seq++;
    }
    if (rc < 0 || r->error)
        return -EBADMSG;
    if (first_problem) {
        char msg[160];
        snprintf(msg, sizeof(msg), "produce refused: %s", first_problem);
        log_bad(ss, req, msg);
    }
    dispatch_ops(ss, req);
    return 0;
}

static int start_fetch(struct sb_server_shard *ss, struct sb_request *req, struct sb_kreader *r)
{
    struct sb_kafka_fetch_request fr;
    if (sb_kafka_read_fetch_request(r, req->hdr.api_version, &fr))
        return -EBADMSG;
    req->fetch_max_bytes = fr.max_bytes <= 0                          ? 1
                           : (uint32_t)fr.max_bytes > FETCH_MAX_BYTES ? (int32_t)FETCH_MAX_BYTES
                                                                      : fr.max_bytes;
    uint32_t cap = 0, seq = 0;
    struct sb_kslice name;
    int32_t pcount;
    int rc;
    struct sb_kafka_fetch_partition fp;
    while ((rc = sb_kafka_fetch_next_topic(&fr, &name, &pcount)) == 1) {
        int16_t terr;
        struct sb_topic *t = topic_lookup(ss, name, false, &terr);
        while ((rc = sb_kafka_fetch_next_partition(&fr, &fp)) == 1) {
            struct sb_part_op *op =
                op_start(req, &cap, SB_OP_FETCH, name, seq, fp.partition, t, terr);
            if (!op)
                return op_fail(req);
            op->fetch_offset = fp.fetch_offset;
            /* No partition reads more than the whole response may carry (the first batch
             * excepted, KIP-74: see fetch_apply_max_bytes()). */
            op->max_bytes = fp.partition_max_bytes > 0 ? fp.partition_max_bytes : 1;
            if (op->max_bytes > req->fetch_max_bytes)
                op->max_bytes = req->fetch_max_bytes;
        }
        if (rc < 0)
            return -EBADMSG;
        seq++;
    }
    if (rc < 0 || r->error)
        return -EBADMSG;
    req->min_bytes = fr.min_bytes;
    req->deadline_ns = req->started_ns + (int64_t)(fr.max_wait_ms > 0 ? fr.max_wait_ms : 0) * 1000000;
    dispatch_ops(ss, req);
    return 0;
}

static int start_list_offsets(struct sb_server_shard *ss, struct sb_request *req,
                              struct sb_kreader *r)
{
    struct sb_kafka_list_offsets_request lr;
    if (sb_kafka_read_list_offsets_request(r, req->hdr.api_version, &lr))
        return -EBADMSG;
    uint32_t cap = 0, seq = 0;
    struct sb_kslice name;
    int32_t pcount, partition;
    int64_t timestamp;
    int rc;
    while ((rc = sb_kafka_list_offsets_next_topic(&lr, &name, &pcount)) == 1) {
        int16_t terr;
        struct sb_topic *t = topic_lookup(ss, name, false, &terr);
        while ((rc = sb_kafka_list_offsets_next_partition(&lr, &partition, &timestamp)) == 1) {
            struct sb_part_op *op =
                op_start(req, &cap, SB_OP_LIST_OFFSETS, name, seq, partition, t, terr);
            if (!op)
                return op_fail(req);
            op->timestamp = timestamp;
        }
        if (rc < 0)
            return -EBADMSG;
        seq++;
    }
    if (rc < 0 || r->error)
        return -EBADMSG;
    dispatch_ops(ss, req);
    return 0;
}

static int answer_metadata(struct sb_server_shard *ss, struct sb_request *req,
                           struct sb_kreader *r)
{
    struct sb_server *srv = ss->srv;
    struct sb_kafka_metadata_request *mr = malloc(sizeof(*mr));
    if (!mr)
        return -ENOMEM;
    int rc = sb_kafka_read_metadata_request(r, req->hdr.api_version, mr);
    if (rc) {
        free(mr);
        return rc == -E2BIG ? -E2BIG : -EBADMSG;
    }
    int32_t n = mr->topic_count;
    struct sb_topic_info *all = NULL;
    if (n < 0 || (n == 0 && req->hdr.api_version == 0)) {
        int total = sb_topic_list(srv->bus, NULL, 0);
        all = calloc((size_t)total + 1, sizeof(*all));
        n = all ? sb_topic_list(srv->bus, all, total) : 0;
        if (n > total)
            n = total;
    }
    struct sb_kafka_topic_metadata *tm = calloc((size_t)n + 1, sizeof(*tm));
    char(*names)[SB_TOPIC_NAME_MAX + 1] = calloc((size_t)n + 1, sizeof(*names));
    if (!tm || !names) {
        free(mr);
        free(all);
        free(tm);
        free(names);
        return -ENOMEM;
    }
    for (int32_t i = 0; i < n; i++) {
        if (all) {
            tm[i] = (struct sb_kafka_topic_metadata){all[i].name, SB_KAFKA_NONE,
                                                     (int32_t)all[i].partitions};
            continue;
        }
        struct sb_kslice s = mr->topics[i];
        int32_t len = s.len < 0 ? 0 : (s.len > SB_TOPIC_NAME_MAX ? SB_TOPIC_NAME_MAX : s.len);
        if (len)
            memcpy(names[i], s.ptr, (size_t)len);
        names[i][len] = '\0';
        int16_t err;
        struct sb_topic *t = topic_lookup(ss, s, mr->allow_auto_topic_creation, &err);
        tm[i] = (struct sb_kafka_topic_metadata){names[i], t ? SB_KAFKA_NONE : err,
                                                 t ? (int32_t)t->partition_count : 0};
    }
    struct sb_kafka_broker broker = {0, srv->advertised_host, srv->advertised_port};
    sb_kafka_write_metadata_response(&req->out, req->hdr.api_version, req->hdr.correlation_id,
                                     &broker, "shardbus", tm, n);
    free(mr);
    free(all);
    free(tm);
    free(names);
    return 0;
}

/* CreateTopics: per-topic settings a new topic may carry. */
struct new_topic {
    struct sb_kafka_new_topic t;
    struct sb_topic_config cfg;
    int16_t error;
    const char *message;
};

static bool parse_i64(struct sb_kslice v, int64_t *out)
{
    char buf[32];
    if (!v.ptr || v.len <= 0 || v.len >= (int32_t)sizeof(buf))
        return false;
    memcpy(buf, v.ptr, (size_t)v.len);
    buf[v.len] = '\0';
    char *end;
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (errno || *end)
        return false;
    *out = x;
    return true;
}

static void on_topic_config(void *ctx, struct sb_kslice name, struct sb_kslice value)
{
    struct new_topic *nt = ctx;
    int64_t v;
    if (name.len == 12 && memcmp(name.ptr, "retention.ms", 12) == 0) {
        if (parse_i64(value, &v) && v >= -1)
            nt->cfg.retention_ms = v;
        else
            nt->error = KAFKA_INVALID_CONFIG, nt->message = "retention.ms: not a number >= -1";
    } else if (name.len == 15 && memcmp(name.ptr, "retention.bytes", 15) == 0) {
        if (parse_i64(value, &v) && v >= -1)
            nt->cfg.retention_bytes = v;
        else
            nt->error = KAFKA_INVALID_CONFIG, nt->message = "retention.bytes: not a number >= -1";
    }
    /* Other settings (cleanup.policy, segment.bytes, ...) are accepted and ignored. */
}

/*
 * CreateTopics (like DeleteTopics below) runs on a short-lived thread: creating a topic opens
 * and syncs files and may wait for the topic table's lock, which a deletion holds while it
 * waits for every shard; a shard thread must do neither. The answer is handed back to the
 * connection's shard as a control request.
 */
struct create_job {
    struct sb_server_shard *ss;
    struct sb_request *req;
    int32_t count;
    struct new_topic *topics;
    bool validate_only;
};

static void admin_thread_done(struct sb_server *srv);

static int create_answer(struct sb_shard *s, void *arg)
{
    struct create_job *job = arg;
    struct sb_request *req = job->req;
    (void)s;
    size_t frame = sb_kafka_create_topics_response_begin(&req->out, req->hdr.api_version,
                                                         req->hdr.correlation_id, job->count);
    for (int32_t i = 0; i < job->count; i++) {
        const struct new_topic *nt = &job->topics[i];
        sb_kafka_create_topics_response_topic(&req->out, req->hdr.api_version, nt->t.name.ptr,
                                              nt->t.name.len, nt->error, nt->message);
    }
    sb_kafka_create_topics_response_end(&req->out, frame);
    req->ops_pending = 0;
    if (req->conn->closing)
        sb_conn_request_done(req->conn, req);
    else
        finish(job->ss, req);
    free(job->topics);
    free(job);
    return 0;
}

static void *create_thread(void *arg)
{
    struct create_job *job = arg;
    struct sb_server *srv = job->ss->srv;
    for (int32_t i = 0; i < job->count; i++) {
        struct new_topic *nt = &job->topics[i];
        char name[SB_TOPIC_NAME_MAX + 1];
        if (nt->error || !topic_name_copy(nt->t.name, name))
            continue; /* refused while parsing */
        int32_t partitions = nt->t.num_partitions == -1 ? (int32_t)srv->cfg.default_partitions
                                                        : nt->t.num_partitions;
        if (sb_topic_find(&srv->bus->topics, name)) {
            nt->error = KAFKA_TOPIC_ALREADY_EXISTS, nt->message = "topic already exists";
            continue;
        }
        if (job->validate_only)
            continue;
        int rc = sb_topic_create_with(srv->bus, name, (unsigned)partitions, &nt->cfg);
        if (rc == -EEXIST) {
            nt->error = KAFKA_TOPIC_ALREADY_EXISTS, nt->message = "topic already exists";
        } else if (rc) {
            nt->error = KAFKA_UNKNOWN_SERVER_ERROR, nt->message = "the topic could not be created";
            sb_server_log(srv, SB_LOG_ERROR, "cannot create topic %s: %s", name, strerror(-rc));
        } else {
            sb_server_log(srv, SB_LOG_INFO, "topic %s created (%d partitions) by %s", name,
                          partitions, job->req->conn->peer);
        }
    }
    sb_shard_call(job->ss->shard, create_answer, job); /* frees job */
    admin_thread_done(srv);
    return NULL;
}

/* Run @fn(@job) on a new detached thread, counted in srv->admin_threads until it ends (the
 * thread calls admin_thread_done() last); 0 or -ENOMEM. */
static int admin_thread(struct sb_server *srv, void *(*fn)(void *), void *job)
{
    /* Relaxed: the count is read by sb_server_stop() only after the request that started
     * the thread was answered; the decrement's release orders the thread's last actions. */
    atomic_fetch_add_explicit(&srv->admin_threads, 1, memory_order_relaxed);
    pthread_t thread;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&thread, &attr, fn, job);
    pthread_attr_destroy(&attr);
    if (rc)
        atomic_fetch_sub_explicit(&srv->admin_threads, 1, memory_order_relaxed);
    return rc ? -ENOMEM : 0;
}

static void admin_thread_done(struct sb_server *srv)
{
    /* Release pairs with the acquire load in sb_server_stop(): everything this thread did
     * (its last wake-up of a shard included) happens before the server and bus go away. */
    atomic_fetch_sub_explicit(&srv->admin_threads, 1, memory_order_release);
}

static int start_create_topics(struct sb_server_shard *ss, struct sb_request *req,
                               struct sb_kreader *r)
{
    struct sb_server *srv = ss->srv;
    struct sb_kafka_create_topics_request cr;
    if (sb_kafka_read_create_topics_request(r, req->hdr.api_version, &cr))
        return -EBADMSG;
    struct new_topic *nts = calloc((size_t)cr.topic_count + 1, sizeof(*nts));
    struct create_job *job = calloc(1, sizeof(*job));
    if (!nts || !job) {
        free(nts);
        free(job);
        return -ENOMEM;
    }
    int32_t n = 0;
    int rc;
    for (;;) {
        struct new_topic *nt = &nts[n < cr.topic_count ? n : cr.topic_count];
        sb_topic_config_init(srv->bus, &nt->cfg);
        rc = sb_kafka_create_topics_next(&cr, &nt->t, on_topic_config, nt);
        if (rc != 1)
            break;
        n++;
    }
    if (rc < 0 || r->error || n != cr.topic_count) {
        free(nts);
        free(job);
        return -EBADMSG;
    }
    for (int32_t i = 0; i < n; i++) {
        struct new_topic *nt = &nts[i];
        char name[SB_TOPIC_NAME_MAX + 1];
        int32_t partitions =
            nt->t.num_partitions == -1 ? (int32_t)srv->cfg.default_partitions : nt->t.num_partitions;
        if (nt->error) {
            /* set by the config callback */
        } else if (!topic_name_copy(nt->t.name, name)) {
            nt->error = KAFKA_INVALID_TOPIC, nt->message = "invalid topic name";
        } else if (partitions <= 0 || (uint32_t)partitions > SB_MAX_PARTITIONS) {
            nt->error = KAFKA_INVALID_PARTITIONS, nt->message = "invalid number of partitions";
        } else if (nt->t.replication_factor != -1 && nt->t.replication_factor != 1) {
            nt->error = KAFKA_INVALID_REPLICATION_FACTOR;
            nt->message = "a single broker: replication factor must be 1";
        } else if (nt->t.assignment_count > 0) {
            nt->error = SB_KAFKA_INVALID_REQUEST, nt->message = "manual assignment not supported";
        }
    }
    *job = (struct create_job){ss, req, n, nts, cr.validate_only};
    req->ops_pending = 1; /* keeps the request (and its connection) until the answer */
    if (admin_thread(srv, create_thread, job)) {
        req->ops_pending = 0;
        free(nts);
        free(job);
        return -ENOMEM;
    }
    return 0;
}

/* DeleteTopics: sb_topic_delete() asks every shard to let go of the topic and waits for them,
 * which a shard thread cannot do; on a thread of its own too (see CreateTopics above). */
struct delete_job {
    struct sb_server_shard *ss;
    struct sb_request *req;
    int32_t count;
    struct sb_kslice *names;
    int16_t *errors;
};

static int delete_answer(struct sb_shard *s, void *arg)
{
    struct delete_job *job = arg;
    struct sb_request *req = job->req;
    (void)s;
    size_t frame = sb_kafka_delete_topics_response_begin(&req->out, req->hdr.api_version,
                                                         req->hdr.correlation_id, job->count);
    for (int32_t i = 0; i < job->count; i++)
        sb_kafka_delete_topics_response_topic(&req->out, job->names[i].ptr, job->names[i].len,
                                              job->errors[i]);
    sb_kafka_delete_topics_response_end(&req->out, frame);
    req->ops_pending = 0;
    if (req->conn->closing) {
        sb_conn_request_done(req->conn, req);
    } else {
        finish(job->ss, req);
    }
    free(job->names);
    free(job->errors);
    free(job);
    return 0;
}

static void *delete_thread(void *arg)
{
    struct delete_job *job = arg;
    struct sb_server *srv = job->ss->srv;
    for (int32_t i = 0; i < job->count; i++) {
        char name[SB_TOPIC_NAME_MAX + 1];
        if (!topic_name_copy(job->names[i], name)) {
            job->errors[i] = KAFKA_INVALID_TOPIC;
            continue;
        }
        int rc = sb_topic_delete(srv->bus, name);
        if (rc == 0)
            sb_server_log(srv, SB_LOG_INFO, "topic %s deleted by %s", name, job->req->conn->peer);
        else if (rc != -ENOENT)
            sb_server_log(srv, SB_LOG_ERROR, "cannot delete topic %s: %s", name, strerror(-rc));
        job->errors[i] = rc == 0         ? SB_KAFKA_NONE
                         : rc == -ENOENT ? SB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION
                                         : KAFKA_UNKNOWN_SERVER_ERROR;
    }
    sb_shard_call(job->ss->shard, delete_answer, job); /* frees job */
    admin_thread_done(srv);
    return NULL;
}

static int start_delete_topics(struct sb_server_shard *ss, struct sb_request *req,
                               struct sb_kreader *r)
{
    struct sb_kafka_delete_topics_request dr;
    if (sb_kafka_read_delete_topics_request(r, req->hdr.api_version, &dr))
        return -EBADMSG;
    struct delete_job *job = calloc(1, sizeof(*job));
    struct sb_kslice *names = calloc((size_t)dr.topic_count + 1, sizeof(*names));
    int16_t *errors = calloc((size_t)dr.topic_count + 1, sizeof(*errors));
    if (!job || !names || !errors) {
        free(job);
        free(names);
        free(errors);
        return -ENOMEM;
    }
    int rc;
    int32_t n = 0;
    struct sb_kslice name;
    while ((rc = sb_kafka_delete_topics_next(&dr, &name)) == 1 && n < dr.topic_count)
        names[n++] = name;
    if (rc < 0 || r->error || n != dr.topic_count) {
        free(job);
        free(names);
        free(errors);
        return -EBADMSG;
    }
    *job = (struct delete_job){ss, req, n, names, errors};
    req->ops_pending = 1; /* keeps the request (and its connection) until the answer */
    if (admin_thread(ss->srv, delete_thread, job)) {
        req->ops_pending = 0;
        free(job);
        free(names);
        free(errors);
        return -ENOMEM;
    }
    return 0;
}

static int answer_init_producer_id(struct sb_server_shard *ss, struct sb_request *req,
                                   struct sb_kreader *r)
{
    struct sb_kafka_init_producer_id_request ir;
    if (sb_kafka_read_init_producer_id_request(r, req->hdr.api_version, &ir))
        return -EBADMSG;
    if (ir.transactional_id.ptr) {
        sb_kafka_write_init_producer_id_response(&req->out, req->hdr.correlation_id,
                                                 KAFKA_TRANSACTIONAL_ID_AUTHORIZATION_FAILED, -1,
                                                 -1);
        return 0;
    }
    int64_t id = sb_server_next_producer_id(ss->srv);
    sb_kafka_write_init_producer_id_response(&req->out, req->hdr.correlation_id, SB_KAFKA_NONE,
                                             id, 0);
    return 0;
}

static int answer_find_coordinator(struct sb_request *req, struct sb_kreader *r)
{
    /* Advertised (v0) because librdkafka wants it before it uses lz4; consumer groups are not
     * served, so there is no coordinator. */
    (void)sb_kr_string(r);
    if (r->error)
        return -EBADMSG;
    size_t frame = sb_kafka_response_begin(&req->out, req->hdr.correlation_id);
    sb_kw_i16(&req->out, KAFKA_COORDINATOR_NOT_AVAILABLE);
    sb_kw_i32(&req->out, -1);
    sb_kw_string(&req->out, "", 0);
    sb_kw_i32(&req->out, -1);
    sb_kw_frame_end(&req->out, frame);
    return 0;
}

static const struct sb_kafka_api_range *api_range(int16_t key)
{
    for (size_t i = 0; i < sb_kafka_supported_api_count; i++)
        if (sb_kafka_supported_apis[i].api_key == key)
            return &sb_kafka_supported_apis[i];
    return NULL;
}

int sb_request_start(struct sb_server_shard *ss, struct sb_request *req)
{
    struct sb_kreader r;
    sb_kreader_init(&r, req->frame, req->frame_len);
    if (sb_kafka_read_request_header(&r, &req->hdr)) {
        sb_server_log(ss->srv, SB_LOG_WARN, "connection %s closed: malformed request header",
                      req->conn->peer);
        atomic_fetch_add_explicit(&ss->protocol_errors, 1, memory_order_relaxed);
        return -EPROTO;
    }
    int16_t key = req->hdr.api_key, v = req->hdr.api_version;
    int slot = sb_api_slot(key);
    const struct sb_kafka_api_range *range = api_range(key);
    if (slot < 0 || !range) {
        log_bad(ss, req, "closed: unknown API key");
        return -EPROTO;
    }
    atomic_fetch_add_explicit(&ss->requests[slot], 1, memory_order_relaxed);
    int16_t min = key == SB_KAFKA_PRODUCE ? SB_KAFKA_PRODUCE_MIN_VERSION : range->min_version;
    if (v < min || v > range->max_version) {
        if (key == SB_KAFKA_API_VERSIONS) {
            sb_kafka_write_api_versions_response(&req->out, v, req->hdr.correlation_id,
                                                 SB_KAFKA_UNSUPPORTED_VERSION);
            finish(ss, req);
            return 0;
        }
        log_bad(ss, req, "closed: unsupported API version");
        return -EPROTO;
    }
    int rc;
    switch (key) {
    case SB_KAFKA_API_VERSIONS:
        sb_kafka_write_api_versions_response(&req->out, v, req->hdr.correlation_id, SB_KAFKA_NONE);
        rc = 0;
        break;
    case SB_KAFKA_METADATA:
        rc = answer_metadata(ss, req, &r);
        break;
    case SB_KAFKA_CREATE_TOPICS:
        rc = start_create_topics(ss, req, &r);
        goto started;
    case SB_KAFKA_DELETE_TOPICS:
        rc = start_delete_topics(ss, req, &r);
        goto started;
    case SB_KAFKA_INIT_PRODUCER_ID:
        rc = answer_init_producer_id(ss, req, &r);
        break;
    case SB_KAFKA_FIND_COORDINATOR:
        rc = answer_find_coordinator(req, &r);
        break;
    case SB_KAFKA_PRODUCE:
        rc = start_produce(ss, req, &r);
        goto started;
    case SB_KAFKA_FETCH:
        rc = start_fetch(ss, req, &r);
        goto started;
    case SB_KAFKA_LIST_OFFSETS:
        rc = start_list_offsets(ss, req, &r);
        goto started;
    default:
        rc = -EBADMSG;
        break;
    }
    if (rc == 0) {
        finish(ss, req);
        return 0;
    }
started:
    if (rc == 0)
        return 0;
    if (rc == -E2BIG && (key == SB_KAFKA_PRODUCE || key == SB_KAFKA_FETCH ||
                         key == SB_KAFKA_LIST_OFFSETS)) {
        char why[96];
        snprintf(why, sizeof(why), "closed: more than %u partitions in one request",
                 REQUEST_MAX_PARTITIONS);
        log_bad(ss, req, why);
        return -EPROTO;
    }
    log_bad(ss, req, rc == -ENOMEM ? "closed: out of memory" : "closed: malformed request");
    return -EPROTO;
}
