/*
 * server_partition.c - a request's partition operations, run on the shard that owns the
 * partition (sb_part_op_run()), then sent back to the connection's shard.
 *
 *  - Produce: the idempotent producer check (below), then the batch is appended as received
 *    to the partition's log through the shard's group commit (sb_shard_log_append_batch());
 *    the op goes back once that group is written, and synced under BATCH durability, so
 *    acks=1 and acks=all are both answered only for data on disk as configured. When the
 *    write buffer is full the op waits in the shard's deferred queue (FIFO).
 *  - Fetch: whole stored batches from the fetch offset's batch on, up to the partition's
 *    max_bytes (at least one whole batch, as KIP-74 asks), read from the segment file (the page
 *    cache) and checked (CRC) before they are served; only committed (acknowledged) bytes.
 *  - ListOffsets: earliest, latest, or the first offset at a timestamp (time index).
 *
 * Idempotent producers: per partition and producer id, the epoch, the last sequence appended
 * and the last five batches (their sequences and offsets), as Kafka keeps them. A batch whose
 * sequences match one of those is a retry: answered with the offset it got the first time,
 * not appended again. The state is rebuilt from the last segment's batch headers the first
 * time a partition sees an idempotent producer after a start, so a retry that crosses a
 * restart is recognised too.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "record_batch.h"
#include "server_internal.h"
#include "shard_log.h"

/* Kafka error codes of this file. */
enum {
    KAFKA_REQUEST_TIMED_OUT = 7,
    KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER = 45,
    KAFKA_DUPLICATE_SEQUENCE_NUMBER = 46,
    KAFKA_INVALID_PRODUCER_EPOCH = 47,
    KAFKA_STORAGE_ERROR = 56,
};

#define RECENT_BATCHES 5

struct recent_batch {
    int32_t first_seq, last_seq;
    int64_t base_offset; /* -1 until written */
    bool written;
};

struct pid_entry {
    int64_t pid;
    int16_t epoch;
    int32_t last_seq;
    unsigned recent_count, recent_next;
    struct recent_batch recent[RECENT_BATCHES];
};

struct pid_table {
    bool loaded; /* rebuilt from the log since the bus opened */
    uint32_t count, cap;
    struct pid_entry e[];
};

/* A batch's whole size from its first 12 bytes (baseOffset, batchLength), or 0 when the length
 * cannot be a batch's. */
static uint32_t batch_total_bytes(const unsigned char *hdr)
{
    uint32_t len = (uint32_t)hdr[8] << 24 | (uint32_t)hdr[9] << 16 | (uint32_t)hdr[10] << 8 | hdr[11];
    if (len > INT32_MAX - SB_BATCH_LOG_OVERHEAD ||
        len + SB_BATCH_LOG_OVERHEAD < SB_BATCH_HEADER_BYTES)
        return 0;
    return len + SB_BATCH_LOG_OVERHEAD;
}

static struct pid_table *pid_table(struct sb_partition *part)
{
    return part->server_state;
}

static struct pid_entry *pid_find(struct pid_table *t, int64_t pid)
{
    for (uint32_t i = 0; t && i < t->count; i++)
        if (t->e[i].pid == pid)
            return &t->e[i];
    return NULL;
}

static struct pid_entry *pid_add(struct sb_partition *part, int64_t pid)
{
    struct pid_table *t = pid_table(part);
    if (!t || t->count == t->cap) {
        uint32_t cap = t ? t->cap * 2 : 8;
        struct pid_table *n = realloc(t, sizeof(*n) + cap * sizeof(n->e[0]));
        if (!n)
            return NULL;
        if (!t)
            n->count = 0, n->loaded = false;
        n->cap = cap;
        part->server_state = t = n;
    }
    struct pid_entry *e = &t->e[t->count++];
    memset(e, 0, sizeof(*e));
    e->pid = pid;
    return e;
}

static void pid_record(struct pid_entry *e, int16_t epoch, int32_t first, int32_t last,
                       int64_t base_offset, bool written)
{
    e->epoch = epoch;
    e->last_seq = last;
    e->recent[e->recent_next] = (struct recent_batch){first, last, base_offset, written};
    e->recent_next = (e->recent_next + 1) % RECENT_BATCHES;
    if (e->recent_count < RECENT_BATCHES)
        e->recent_count++;
}

static int32_t seq_add(int32_t seq, int32_t n)
{
    /* Sequences wrap from INT32_MAX to 0, as in Kafka. */
    return (int32_t)(((int64_t)seq + n) % ((int64_t)INT32_MAX + 1));
}

/* After a start: the producers' state from the batch headers of the active segment. */
static void pid_table_load(struct sb_partition *part)
{
    struct pid_table *t = pid_table(part);
    if (t && t->loaded)
        return;
    struct sb_plog *log = part->plog;
    const struct sb_segment *seg = &log->segments[log->segment_count - 1];
    unsigned char hdr[SB_BATCH_HEADER_BYTES];
    for (uint64_t pos = 0; pos + SB_BATCH_HEADER_BYTES <= seg->size;) {
        struct sb_batch_info info;
        const char *why;
        if (pread(seg->log_fd, hdr, sizeof(hdr), (off_t)pos) != (ssize_t)sizeof(hdr))
            break;
        uint32_t total = batch_total_bytes(hdr);
        if (!total || sb_batch_parse_header(hdr, total, &info, &why))
            break;
        if (info.producer_id >= 0) {
            struct pid_entry *e = pid_find(pid_table(part), info.producer_id);
            if (!e)
                e = pid_add(part, info.producer_id);
            if (e)
                pid_record(e, info.producer_epoch, info.base_sequence,
                           seq_add(info.base_sequence, info.last_offset_delta), info.base_offset,
                           true);
        }
        pos += info.total_bytes;
    }
    if (!pid_table(part))
        pid_add(part, -1); /* an empty table, so that it is marked loaded */
    if (pid_table(part))
        pid_table(part)->loaded = true;
}

/*
 * The idempotence check of @op's batch. Returns 0 to append it, 1 when it is a retry of a
 * batch already written (op->base_offset set), or a Kafka error code (negated).
 */
static int idempotence_check(struct sb_partition *part, struct sb_part_op *op)
{
    const struct sb_batch_info *in = &op->info;
    if (in->producer_id < 0)
        return 0;
    pid_table_load(part);
    struct pid_entry *e = pid_find(pid_table(part), in->producer_id);
    if (!e)
        return 0;
    if (in->producer_epoch < e->epoch)
        return -KAFKA_INVALID_PRODUCER_EPOCH;
    if (in->producer_epoch > e->epoch)
        return 0; /* a new epoch starts its sequences again */
    int32_t last = seq_add(in->base_sequence, in->last_offset_delta);
    for (unsigned i = 0; i < e->recent_count; i++) {
        const struct recent_batch *b = &e->recent[i];
        if (b->first_seq == in->base_sequence && b->last_seq == last) {
            if (!b->written)
                return -KAFKA_REQUEST_TIMED_OUT; /* still being written: ask again later */
            op->base_offset = b->base_offset;
            return 1;
        }
    }
    if (in->base_sequence == seq_add(e->last_seq, 1))
        return 0;
    /* Behind what we have (and not one of the recent batches) or a gap ahead. */
    int32_t behind = (int32_t)(((int64_t)e->last_seq - in->base_sequence + ((int64_t)INT32_MAX + 1)) %
                               ((int64_t)INT32_MAX + 1));
    return behind < INT32_MAX / 2 ? -KAFKA_DUPLICATE_SEQUENCE_NUMBER
                                  : -KAFKA_OUT_OF_ORDER_SEQUENCE_NUMBER;
}

/* The idempotent producer's batch was appended (not yet written). */
static void idempotence_appended(struct sb_partition *part, const struct sb_part_op *op)
{
    const struct sb_batch_info *in = &op->info;
    if (in->producer_id < 0)
        return;
    struct pid_entry *e = pid_find(pid_table(part), in->producer_id);
    if (!e)
        e = pid_add(part, in->producer_id);
    if (!e)
        return; /* out of memory: a retry of this batch would not be recognised */
    if (in->producer_epoch > e->epoch)
        e->recent_count = e->recent_next = 0;
    pid_record(e, in->producer_epoch, in->base_sequence,
               seq_add(in->base_sequence, in->last_offset_delta), -1, false);
}

/* The group holding the batch completed. */
static void idempotence_written(struct sb_partition *part, const struct sb_part_op *op, int error)
{
    const struct sb_batch_info *in = &op->info;
    if (in->producer_id < 0)
        return;
    struct pid_table *t = pid_table(part);
    struct pid_entry *e = pid_find(t, in->producer_id);
    if (!e)
        return;
    if (error) {
        /* Not written: forget the producer, so that its retry is taken as new. */
        *e = t->e[--t->count];
        return;
    }
    for (unsigned i = 0; i < e->recent_count; i++) {
        struct recent_batch *b = &e->recent[i];
        if (b->first_seq == in->base_sequence && !b->written) {
            b->written = true;
            b->base_offset = op->base_offset;
        }
    }
}

static struct sb_server_shard *owner_part(struct sb_shard *s, const struct sb_part_op *op)
{
    return op->origin->srv->shards[s->id];
}

static void send_back(struct sb_shard *s, struct sb_part_op *op)
{
    if (sb_shard_post(s, op->origin->id, sb_request_op_returned, op) == 0)
        return;
    /* Out of memory for the ring's overflow: the op waits in this shard's list (intrusive,
     * so keeping it cannot fail) and is posted again by sb_server_partition_step(); the
     * request and its connection stay until it is back (the server's stop waits too). */
    struct sb_server_shard *own = owner_part(s, op);
    if (!own->oom_reported)
        sb_server_log(op->origin->srv, SB_LOG_ERROR,
                      "shard %u: out of memory returning a request to shard %u: retrying",
                      s->id, op->origin->id);
    own->oom_reported = true;
    op->next_return = NULL;
    if (own->returns_tail)
        own->returns_tail->next_return = op;
    else
        own->returns_head = op;
    own->returns_tail = op;
}

/* Post the ops of the returns list back, in order, while memory allows. */
static bool retry_returns(struct sb_server_shard *ss)
{
    bool work = false;
    while (ss->returns_head) {
        struct sb_part_op *op = ss->returns_head;
        struct sb_part_op *next = op->next_return; /* op belongs to the origin once posted */
        if (sb_shard_post(ss->shard, op->origin->id, sb_request_op_returned, op))
            break;
        ss->returns_head = next;
        if (!next)
            ss->returns_tail = NULL;
        work = true;
    }
    return work;
}

static void produce_done(struct sb_shard *s, void *arg, int error, int64_t base_offset)
{
    struct sb_part_op *op = arg;
    struct sb_partition *part = &op->topic->partitions[op->partition];
    op->base_offset = base_offset;
    op->log_start_offset = part->plog->start_offset;
    op->high_watermark = part->plog->next_offset;
    idempotence_written(part, op, error);
    if (error) {
        op->error = KAFKA_STORAGE_ERROR;
    } else {
        /* Relaxed: single writer (this shard); readers (metrics) want a recent value only. */
        atomic_store_explicit(&part->events_in,
                              atomic_load_explicit(&part->events_in, memory_order_relaxed) +
                                  (uint64_t)op->info.record_count,
                              memory_order_relaxed);
        atomic_store_explicit(&part->bytes_in,
                              atomic_load_explicit(&part->bytes_in, memory_order_relaxed) +
                                  op->batch_len,
                              memory_order_relaxed);
    }
    send_back(s, op);
}

/* Append @op's batch. Returns false when it has to wait for room (then nothing was done). */
static bool produce_try(struct sb_shard *s, struct sb_part_op *op)
{
    struct sb_partition *part = &op->topic->partitions[op->partition];
    if (!part->plog || sb_topic_is_deleted(op->topic)) {
        op->error = SB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION; /* deleted while it waited */
        send_back(s, op);
        return true;
    }
    int verdict = idempotence_check(part, op);
    if (verdict == 1) {
        op->log_start_offset = part->plog->start_offset;
        send_back(s, op);
        return true;
    }
    if (verdict < 0) {
        op->error = (int16_t)-verdict;
        send_back(s, op);
        return true;
    }
    int rc = sb_shard_log_append_batch(s, part, op->batch, op->batch_len, op->info.record_count,
                                       produce_done, op);
    if (rc == -EAGAIN)
        return false;
    if (rc) {
        op->error = rc == -EMSGSIZE ? SB_KAFKA_MESSAGE_TOO_LARGE : KAFKA_STORAGE_ERROR;
        send_back(s, op);
        return true;
    }
    idempotence_appended(part, op);
    return true;
}

bool sb_server_partition_step(struct sb_server_shard *ss)
{
    bool work = ss->returns_head && retry_returns(ss);
    while (ss->deferred_head) {
        struct sb_part_op *op = ss->deferred_head;
        /* Read first: an op answered at once may free its request, and the op with it. */
        struct sb_part_op *next = op->next_deferred;
        if (!produce_try(ss->shard, op))
            break;
        ss->deferred_head = next;
        if (!ss->deferred_head)
            ss->deferred_tail = NULL;
        work = true;
    }
    return work;
}

static void run_produce(struct sb_shard *s, struct sb_part_op *op)
{
    struct sb_server_shard *own = owner_part(s, op);
    if (!own->deferred_head && produce_try(s, op))
        return;
    op->next_deferred = NULL; /* behind every append already waiting: order is kept */
    if (own->deferred_tail)
        own->deferred_tail->next_deferred = op;
    else
        own->deferred_head = op;
    own->deferred_tail = op;
}

/* Read @len bytes at @pos of @fd into @buf; 0 or a negative errno. */
static int read_exact(int fd, unsigned char *buf, size_t len, uint64_t pos)
{
    while (len) {
        ssize_t n = pread(fd, buf, len, (off_t)pos);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return n < 0 ? -errno : -EIO;
        buf += n;
        len -= (size_t)n;
        pos += (uint64_t)n;
    }
    return 0;
}

/* Read the rest of @op's fetch range through the owner's io_uring: the shard goes on serving
 * while the disk works (a cold read no longer stalls it). op->read_fd is the op's own
 * duplicate of the segment's descriptor (run_fetch()), held until the read is over: retention
 * or a topic deletion may close the segment's descriptor between two reads of one op (a short
 * read, -EAGAIN, a first batch above max_bytes, or an SQE whose submission was retried later),
 * and that number may then name another file; the duplicate keeps the same open file, whose
 * bytes below the committed size never change. */
static int fetch_submit_read(struct sb_shard *s, struct sb_part_op *op)
{
    struct io_uring_sqe *sqe = sb_log_writer_get_sqe(&s->writer);
    if (!sqe)
        return -EBUSY;
    io_uring_prep_read(sqe, op->read_fd, op->data + op->data_len, op->read_want - op->data_len,
                       op->read_position + op->data_len);
    io_uring_sqe_set_data64(sqe, sb_server_op_data(op, SB_NET_OP_READ));
    /* Prepared means in flight: a failed flush is retried by the next one, and the read
     * completes (or fails) through its completion like any other. */
    sb_log_writer_flush(&s->writer);
    return 0;
}

/* The bytes read (op->data, op->data_len): keep the whole, verified batches (counted in the
 * metrics by the request's shard, once it knows what it serves). */
static void fetch_trim(struct sb_part_op *op)
{
    size_t used = 0, got = op->data_len;
    const char *why = NULL;
    int rc = 0;
    while (used + SB_BATCH_HEADER_BYTES <= got) {
        struct sb_batch_info info;
        uint32_t total = batch_total_bytes(op->data + used);
        if (!total) {
            rc = -EBADMSG;
            why = "bad batch length";
            break;
        }
        if (total > got - used)
            break; /* cut by max_bytes */
        /* Header and CRC: every batch was validated record by record before it was stored
         * (Produce, or the shard's own encoder), so an unchanged CRC is enough to serve it. */
        if (sb_batch_check_crc(op->data + used, total, &info, &why)) {
            rc = -EBADMSG;
            break;
        }
        used += total;
    }
    if (rc && used == 0) {
        sb_server_log(op->origin->srv, SB_LOG_ERROR,
                      "%s partition %d: batch at byte %" PRIu64 " of segment %020" PRId64
                      " failed verification (%s): not served",
                      op->topic->name, op->partition, op->read_position, op->read_segment_base,
                      why ? why : "?");
        op->error = KAFKA_STORAGE_ERROR;
    }
    if (used == 0) {
        free(op->data);
        op->data = NULL;
        op->data_len = 0;
        return;
    }
    op->data_len = (uint32_t)used;
}

/* The read is over: let go of the segment, count it out, answer. A topic deleted while the
 * read was in flight is answered as unknown (its data is no longer the topic's). */
static void fetch_read_finished(struct sb_shard *s, struct sb_part_op *op)
{
    close(op->read_fd);
    op->read_fd = -1;
    owner_part(s, op)->reads_in_flight--;
    if (!op->topic->partitions[op->partition].plog || sb_topic_is_deleted(op->topic)) {
        free(op->data);
        op->data = NULL;
        op->data_len = 0;
        op->error = SB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION;
    }
    send_back(s, op);
}

void sb_part_op_read_done(struct sb_shard *s, struct sb_part_op *op, int res)
{
    if (res == -EINTR || res == -EAGAIN) {
        if (fetch_submit_read(s, op) == 0)
            return;
        res = -EIO;
    }
    if (res < 0) {
        sb_server_log(op->origin->srv, SB_LOG_ERROR, "%s partition %d: read failed: %s",
                      op->topic->name, op->partition, strerror(-res));
        op->error = KAFKA_STORAGE_ERROR;
        free(op->data);
        op->data = NULL;
        op->data_len = 0;
        fetch_read_finished(s, op);
        return;
    }
    op->data_len += (uint32_t)res;
    if (res > 0 && op->data_len < op->read_want) { /* short read: the rest */
        if (fetch_submit_read(s, op) == 0)
            return;
        op->read_want = op->data_len;
    }
    /* The first batch is served whole even above max_bytes (KIP-74): read the rest of it. */
    uint32_t first = op->data_len >= SB_BATCH_HEADER_BYTES ? batch_total_bytes(op->data) : 0;
    if (first > op->data_len && first <= op->read_avail && op->read_want < first) {
        unsigned char *bigger = realloc(op->data, first);
        if (bigger) {
            op->data = bigger;
            op->read_want = first;
            if (fetch_submit_read(s, op) == 0)
                return;
        }
    }
    fetch_trim(op);
    fetch_read_finished(s, op);
}

/* Start @op's read. Returns true when it completes later (sb_part_op_read_done()), false
 * when it is answered now (nothing to read, or an error). */
static bool run_fetch(struct sb_shard *s, struct sb_part_op *op)
{
    struct sb_partition *part = &op->topic->partitions[op->partition];
    struct sb_plog *log = part->plog;
    op->high_watermark = log->next_offset;
    op->log_start_offset = log->start_offset;
    free(op->data);
    op->data = NULL;
    op->data_len = 0;
    if (op->fetch_offset < log->start_offset || op->fetch_offset > log->next_offset) {
        op->error = SB_KAFKA_OFFSET_OUT_OF_RANGE;
        return false;
    }
    if (op->fetch_offset == log->next_offset)
        return false; /* nothing new yet */
    struct sb_plog_pos at;
    if (sb_plog_seek(log, op->fetch_offset, &at))
        return false;
    const struct sb_segment *seg = &log->segments[at.segment];
    /* Committed bytes only: what the log acknowledged. */
    uint64_t avail = seg->size > at.position ? seg->size - at.position : 0;
    if (avail < SB_BATCH_HEADER_BYTES)
        return false;
    size_t want = (size_t)op->max_bytes < SB_BATCH_HEADER_BYTES ? SB_BATCH_HEADER_BYTES
                                                                : (size_t)op->max_bytes;
    if (want > avail)
        want = (size_t)avail;
    op->data = malloc(want);
    if (!op->data) {
        op->error = KAFKA_STORAGE_ERROR;
        return false;
    }
    /* Our own reference to the open file for the whole read (see fetch_submit_read()). */
    op->read_fd = fcntl(seg->log_fd, F_DUPFD_CLOEXEC, 0);
    if (op->read_fd < 0) {
        sb_server_log(op->origin->srv, SB_LOG_ERROR, "%s partition %d: cannot read: %s",
                      op->topic->name, op->partition, strerror(errno));
        free(op->data);
        op->data = NULL;
        op->error = KAFKA_STORAGE_ERROR;
        return false;
    }
    op->read_position = at.position;
    op->read_segment_base = seg->base_offset;
    op->read_avail = avail > UINT32_MAX ? UINT32_MAX : (uint32_t)avail;
    op->read_want = (uint32_t)want;
    if (fetch_submit_read(s, op)) {
        close(op->read_fd);
        op->read_fd = -1;
        free(op->data);
        op->data = NULL;
        op->error = KAFKA_STORAGE_ERROR;
        return false;
    }
    owner_part(s, op)->reads_in_flight++; /* the server's stop waits for it */
    return true;
}

/*
 * The first record at or after @ts, scanning forward from @from (the time index's lower
 * bound): batch headers until one whose max timestamp reaches @ts, then its records (a
 * compressed batch answers with its first offset). Returns 0 with *offset and *timestamp, 1
 * when no record is that recent, or a negative errno.
 */
static int scan_for_time(const struct sb_plog *log, int64_t from, int64_t ts, int64_t *offset,
                         int64_t *timestamp)
{
    struct sb_plog_pos at;
    if (sb_plog_seek(log, from, &at))
        return 1;
    unsigned char hdr[SB_BATCH_HEADER_BYTES];
    for (size_t si = at.segment; si < log->segment_count; si++, at.position = 0) {
        const struct sb_segment *seg = &log->segments[si];
        for (uint64_t pos = at.position; pos + SB_BATCH_HEADER_BYTES <= seg->size;) {
            struct sb_batch_info info;
            const char *why;
            int rc = read_exact(seg->log_fd, hdr, sizeof(hdr), pos);
            uint32_t total = rc ? 0 : batch_total_bytes(hdr);
            if (rc || !total || total > seg->size - pos ||
                sb_batch_parse_header(hdr, total, &info, &why))
                return rc ? rc : -EBADMSG; /* a length from disk beyond the committed bytes */
            if (info.max_timestamp < ts) {
                pos += total;
                continue;
            }
            *offset = info.base_offset;
            *timestamp = info.max_timestamp;
            if (info.attributes & SB_BATCH_ATTR_COMPRESSION_MASK)
                return 0;
            unsigned char *buf = malloc(total);
            if (!buf)
                return -ENOMEM;
            rc = read_exact(seg->log_fd, buf, total, pos);
            struct sb_record_iter it;
            struct sb_record rec;
            if (!rc && !sb_record_iter_init(&it, buf, total)) {
                while (sb_record_next(&it, &rec, &why) == 1) {
                    if (rec.timestamp_ms >= ts) {
                        *offset = rec.offset;
                        *timestamp = rec.timestamp_ms;
                        break;
                    }
                }
            }
            free(buf);
            return rc;
        }
    }
    return 1;
}

static void run_list_offsets(struct sb_part_op *op)
{
    struct sb_plog *log = op->topic->partitions[op->partition].plog;
    op->high_watermark = log->next_offset;
    op->log_start_offset = log->start_offset;
    if (op->timestamp == -2) {
        op->offset = log->start_offset;
        op->timestamp = -1;
    } else if (op->timestamp == -1) {
        op->offset = log->next_offset;
    } else {
        int64_t from = sb_plog_offset_for_time(log, op->timestamp);
        int64_t offset = -1, timestamp = -1;
        int rc = from < log->next_offset
                     ? scan_for_time(log, from, op->timestamp, &offset, &timestamp)
                     : 1;
        if (rc < 0) {
            sb_server_log(op->origin->srv, SB_LOG_ERROR,
                          "%s partition %d: ListOffsets by time: %s", op->topic->name,
                          op->partition, strerror(-rc));
            op->error = KAFKA_STORAGE_ERROR;
        }
        /* No record at or after that time: Kafka answers offset -1. */
        op->offset = rc ? -1 : offset;
        op->timestamp = rc ? -1 : timestamp;
    }
}

void sb_part_op_run(struct sb_shard *s, void *arg)
{
    struct sb_part_op *op = arg;
    if (!op->topic->partitions[op->partition].plog || sb_topic_is_deleted(op->topic)) {
        op->error = SB_KAFKA_UNKNOWN_TOPIC_OR_PARTITION; /* deleted meanwhile */
        send_back(s, op);
        return;
    }
    switch (op->kind) {
    case SB_OP_PRODUCE:
        run_produce(s, op);
        return; /* sent back once written */
    case SB_OP_FETCH:
        if (run_fetch(s, op))
            return; /* sent back once read */
        break;
    case SB_OP_LIST_OFFSETS:
        run_list_offsets(op);
        break;
    }
    send_back(s, op);
}
