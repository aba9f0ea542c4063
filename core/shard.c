/*
 * shard.c - the shard thread: drain the inbound rings, append to the owned partitions, run the
 * handlers, forward derived events, feed the subscribed consumers, and park when idle.
 */
#include "shard.h"

#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acks.h"
#include "bus.h"
#include "shard_log.h"
#include "wire.h"

/* Records taken from one ring before moving on to the next: bounds the latency one busy
 * producer adds to the others while still amortising the release store. */
#define DRAIN_BATCH 256u

static _Thread_local struct sb_shard *tls_shard;

struct sb_shard *sb_current_shard(void)
{
    return tls_shard;
}

static int64_t clock_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t sb_shard_now_ms(struct sb_shard *s)
{
    if (!s->now_valid) {
        s->now_ms = clock_ns(CLOCK_REALTIME) / 1000000;
        s->now_valid = true;
    }
    return s->now_ms;
}

int sb_partition_ensure_log(struct sb_shard *shard, struct sb_partition *part)
{
    if (part->log_ready)
        return 0;
    int rc = sb_memlog_init(&part->log, shard->bus->partition_capacity,
                            part->plog ? part->plog->next_offset : 0);
    if (rc)
        return rc;
    part->log_ready = true;
    return 0;
}

void sb_partition_publish_end(struct sb_bus *bus, struct sb_partition *part, int64_t end)
{
    /* seq_cst store, then seq_cst load of the waiters: pairs with sb_partition_watch_end()'s
     * seq_cst fetch_or and load (Dekker): either the watcher sees the new end, or we see its
     * bit and wake it (sb_parker_wake()'s seq_cst load pairs with its park; see park.h). */
    atomic_store_explicit(&part->published_end, end, memory_order_seq_cst);
    if (!atomic_load_explicit(&part->end_waiters, memory_order_seq_cst))
        return;
    uint64_t waiters = atomic_exchange_explicit(&part->end_waiters, 0, memory_order_seq_cst);
    for (unsigned j = 0; waiters && j < bus->shard_count; j++)
        if (waiters & (1ull << (j & 63)))
            sb_parker_wake(&bus->shards[j]->parker);
}

bool sb_partition_watch_end(struct sb_shard *s, struct sb_partition *part, int64_t offset)
{
    /* seq_cst: see sb_partition_publish_end(). */
    atomic_fetch_or_explicit(&part->end_waiters, 1ull << (s->id & 63), memory_order_seq_cst);
    return atomic_load_explicit(&part->published_end, memory_order_seq_cst) > offset;
}

/* The lowest position a cursor of @part still has to read: eviction stops there. */
static uint64_t partition_keep_pos(const struct sb_partition *part)
{
    uint64_t keep = UINT64_MAX;
    for (uint32_t i = 0; i < part->cursor_count; i++)
        if (part->cursors[i]->at.pos < keep)
            keep = part->cursors[i]->at.pos;
    return keep;
}

void sb_shard_run_handlers(struct sb_shard *s, const struct sb_partition *part,
                           const struct sb_stored_event *st)
{
    struct sb_event ev = {
        .topic = part->topic->name,
        .partition = part->index,
        .offset = st->offset,
        .timestamp_ms = st->timestamp_ms,
        .key = (st->flags & SB_WIRE_KEY_NULL) ? NULL : st->bytes,
        .key_len = st->key_len,
        .value = (st->flags & SB_WIRE_VALUE_NULL) ? NULL : st->bytes + st->key_len,
        .value_len = st->value_len,
    };
    for (uint32_t i = 0; i < part->handler_count; i++)
        part->handlers[i].fn(s, &ev, part->handlers[i].ctx);
}

/*
 * Append the event in @rec to its partition: in memory, running the partition's handlers, or,
 * with a data_dir, into the gathering group of the log (shard_log.c), from which it is handed on
 * once durable. Returns 0 (done, or skipped as invalid) or -EAGAIN when it has to wait (the
 * partition's memory is full of events a consumer has not read yet; the write buffer is full):
 * the record stays in its ring and is retried later, or 1 when it was dropped because its
 * topic was deleted (already counted as failed). @link: the producer it came from, or NULL.
 */
static int shard_append(struct sb_shard *s, const struct sb_ring_record *rec,
                        struct sb_producer_link *link)
{
    if (rec->type == SB_WIRE_TASK && !link &&
        sb_ring_record_length(rec) == sizeof(struct sb_wire_task)) {
        struct sb_wire_task task;
        memcpy(&task, rec->payload, sizeof(task));
        task.fn(s, task.arg);
        return 0;
    }
    const struct sb_wire_event *ev = (const struct sb_wire_event *)rec->payload;
    if (rec->type != SB_WIRE_EVENT || !sb_wire_event_valid(ev, sb_ring_record_length(rec))) {
        s->corrupt_records++;
        return 0;
    }
    struct sb_topic *topic = sb_topic_by_id(&s->bus->topics, ev->topic_id);
    if (topic && sb_topic_is_deleted(topic)) {
        /* Deleted while the event was on its way: dropped, and its producer told. */
        if (sb_link_has_acks(link) && !sb_link_ack_room(link))
            return -EAGAIN; /* its acknowledgement has no room yet: the producer polls first */
        if (link) {
            /* Release stores pair with the producer's acquire loads (see settle_links()). */
            atomic_store_explicit(&link->last_error, -ENOENT, memory_order_release);
            atomic_store_explicit(&link->failed,
                                  atomic_load_explicit(&link->failed, memory_order_relaxed) + 1,
                                  memory_order_release);
            if (sb_link_has_acks(link))
                sb_link_ack(link, topic->id, ev->partition, -1, 1, -ENOENT, false);
        } else {
            s->derived_received++;
        }
        return 1;
    }
    if (!topic || ev->partition >= topic->partition_count ||
        topic->partitions[ev->partition].owner != s->id) {
        s->corrupt_records++;
        return 0;
    }
    struct sb_partition *part = &topic->partitions[ev->partition];
    if (s->durable)
        return sb_shard_log_append(s, part, ev, link);
    if (sb_partition_ensure_log(s, part))
        return -EAGAIN; /* out of memory: retry later rather than drop */
    if (sb_link_has_acks(link) && !sb_link_ack_room(link))
        return -EAGAIN;
    const struct sb_stored_event *st =
        sb_memlog_append(&part->log, partition_keep_pos(part), ev->partition, sb_shard_now_ms(s),
                         ev->flags, ev->bytes, ev->key_len, ev->bytes + ev->key_len, ev->value_len);
    if (!st)
        return -EAGAIN;
    /* Memory only: appended is acknowledged (made visible in drain_ring()). */
    if (sb_link_has_acks(link))
        sb_link_ack(link, topic->id, ev->partition, st->offset, 1, 0, false);
    if (part->handler_count)
        sb_shard_run_handlers(s, part, st);
    return 0;
}

/* Drain up to DRAIN_BATCH records from @r (from @link, or from a shard when NULL); *blocked is
 * set when an append had to wait. */
static unsigned drain_ring(struct sb_shard *s, struct sb_ring_consumer *r, bool *blocked,
                           struct sb_producer_link *link)
{
    const struct sb_ring_record *rec;
    unsigned n = 0, events = 0, dropped = 0;
    bool corrupt = false;
    *blocked = false;
    while (n < DRAIN_BATCH && (rec = sb_ring_peek(r, &corrupt))) {
        int rc = shard_append(s, rec, link);
        if (rc == -EAGAIN) {
            *blocked = true;
            break;
        }
        dropped += rc == 1;
        events += rec->type == SB_WIRE_EVENT && rc != 1;
        sb_ring_advance(r, rec);
        n++;
    }
    if (corrupt)
        s->corrupt_records++;
    if (!link && !s->durable)
        s->derived_received += events; /* durable: counted once the group is handled */
    if (link && !s->durable) {
        /* Memory only: appended means acknowledged. Relaxed load: only this shard writes it;
         * the release store pairs with the producer's acquire load in sb_producer_flush(). */
        atomic_store_explicit(&link->acknowledged,
                              atomic_load_explicit(&link->acknowledged, memory_order_relaxed) + n -
                                  dropped,
                              memory_order_release);
    }
    /* After the counters above (and those a deleted topic's drop stored): a producer that
     * reads a record sees the counts that include it (release, pairing with the producer's
     * acquire in sb_ring_peek()). */
    if (sb_link_has_acks(link))
        sb_link_ack_commit(link);
    return n;
}

static void link_free(struct sb_producer_link *link)
{
    sb_link_acks_free(link);
    free(link->ring_mem);
    free(link);
}

/* Producer rings, unless derived events are backed up (then producers wait: -EAGAIN). */
static bool drain_producers(struct sb_shard *s, size_t throttle_bytes)
{
    bool work = false;
    for (uint32_t i = 0; i < s->link_count;) {
        struct sb_producer_link *link = s->links[i];
        bool blocked = false;
        link->ack_blocked = false;
        if (s->overflow_bytes <= throttle_bytes &&
            drain_ring(s, &link->r, &blocked, link) > 0) {
            /* Plain release: producers never park waiting for space (they get -EAGAIN). */
            sb_ring_release(&link->r);
            work = true;
        }
        link->r_blocked = blocked;
        /* Acquire pairs with the seq_cst store in sb_producer_close(), made after the
         * producer's last commit: once closed is seen, an empty ring stays empty. */
        if (atomic_load_explicit(&link->closed, memory_order_acquire) &&
            !sb_ring_peek(&link->r, NULL) && link->unsettled == 0) {
            sb_ring_release(&link->r);
            s->links[i] = s->links[--s->link_count];
            link_free(link);
            /* Release pairs with the acquire load in sb_bus_close(): everything this link
             * caused (appends, handlers, derived sends) happened before. */
            atomic_store_explicit(&s->counters.producer_links, s->link_count,
                                  memory_order_release);
            work = true;
            continue;
        }
        i++;
    }
    return work;
}

static bool drain_shards(struct sb_shard *s)
{
    bool work = false;
    for (unsigned j = 0; j < s->shard_count; j++) {
        bool blocked;
        if (drain_ring(s, &s->from_shard[j], &blocked, NULL) > 0) {
            /* seq_cst release: shard j may be parked waiting for room (see flush_outboxes). */
            sb_ring_release_seq_cst(&s->from_shard[j]);
            sb_parker_wake(&s->bus->shards[j]->parker);
            work = true;
        }
        s->from_shard_blocked[j] = blocked;
    }
    return work;
}

/* Room for a record of @len bytes to the outbox's shard: in the ring when it has room and
 * nothing is queued before it (FIFO order: never overtake queued records), else in a new
 * overflow node (*node; queue it with outbox_queue() once written). NULL when out of memory. */
static void *outbox_claim(struct sb_shard *s, struct sb_outbox *ob, size_t len, uint32_t type,
                          struct sb_overflow_node **node)
{
    (void)s;
    *node = NULL;
    void *dst = NULL;
    if (!ob->overflow_head)
        dst = sb_ring_claim(&ob->w, len, type);
    if (dst)
        return dst;
    struct sb_overflow_node *n = malloc(sizeof(*n) + len);
    if (!n)
        return NULL;
    n->next = NULL;
    n->len = (uint32_t)len;
    n->type = type;
    *node = n;
    return n->record;
}

static void outbox_queue(struct sb_shard *s, struct sb_outbox *ob, struct sb_overflow_node *node)
{
    if (!node)
        return;
    if (ob->overflow_tail)
        ob->overflow_tail->next = node;
    else
        ob->overflow_head = node;
    ob->overflow_tail = node;
    ob->overflow_bytes += node->len;
    s->overflow_bytes += node->len;
}

int sb_outbox_push(struct sb_shard *s, unsigned target, const struct sb_wire_event *hdr,
                   const void *key, const void *value)
{
    struct sb_outbox *ob = &s->to_shard[target];
    size_t len = sizeof(*hdr) + (size_t)hdr->key_len + hdr->value_len;
    struct sb_wire_event *dst = NULL;
    struct sb_overflow_node *node = NULL;
    dst = outbox_claim(s, ob, len, SB_WIRE_EVENT, &node);
    if (!dst)
        return -ENOMEM;
    *dst = *hdr;
    if (hdr->key_len)
        memcpy(dst->bytes, key, hdr->key_len);
    if (hdr->value_len)
        memcpy(dst->bytes + hdr->key_len, value, hdr->value_len);
    outbox_queue(s, ob, node);
    s->derived_sent++;
    return 0;
}

int sb_shard_post(struct sb_shard *s, unsigned target, void (*fn)(struct sb_shard *, void *),
                  void *arg)
{
    if (target == s->id) {
        fn(s, arg);
        return 0;
    }
    struct sb_overflow_node *node;
    struct sb_wire_task task = {fn, arg};
    void *dst = outbox_claim(s, &s->to_shard[target], sizeof(task), SB_WIRE_TASK, &node);
    if (!dst)
        return -ENOMEM;
    memcpy(dst, &task, sizeof(task));
    outbox_queue(s, &s->to_shard[target], node);
    return 0;
}

/* Move overflowed derived events into the rings, commit, wake the targets. */
static bool flush_outboxes(struct sb_shard *s)
{
    bool work = false;
    for (unsigned t = 0; t < s->shard_count; t++) {
        struct sb_outbox *ob = &s->to_shard[t];
        while (ob->overflow_head) {
            struct sb_overflow_node *node = ob->overflow_head;
            void *dst = sb_ring_claim(&ob->w, node->len, node->type);
            if (!dst)
                break;
            memcpy(dst, node->record, node->len);
            ob->overflow_head = node->next;
            if (!ob->overflow_head)
                ob->overflow_tail = NULL;
            ob->overflow_bytes -= node->len;
            s->overflow_bytes -= node->len;
            free(node);
        }
        if (sb_ring_has_uncommitted(&ob->w)) {
            sb_ring_commit_seq_cst(&ob->w);
            sb_parker_wake(&s->bus->shards[t]->parker);
            work = true;
        }
    }
    return work;
}

/* Copy what each subscriber's cursors have not read yet into its ring. */
static bool deliver(struct sb_shard *s)
{
    s->disk_read_completed = false; /* a cursor blocked on its consumer is woken by it instead */
    s->disk_retry_ms = 0;           /* cursors waiting to retry a failed read note it again */
    bool work = false;
    for (uint32_t i = 0; i < s->sub_count; i++) {
        struct sb_subscription *sub = s->subs[i];
        uint32_t last_len = 0;
        sub->blocked = false;
        for (uint32_t c = 0; c < sub->cursor_count && !sub->blocked; c++) {
            struct sb_cursor *cur = &sub->cursors[c];
            struct sb_partition *part = cur->partition;
            const struct sb_stored_event *st;
            uint32_t len;
            if (cur->on_disk) {
                work |= sb_cursor_deliver_from_disk(s, sub, cur);
                if (cur->on_disk || sub->blocked)
                    continue;
            }
            if (!part->log_ready)
                continue;
            while ((st = sb_memlog_read(&part->log, &cur->at, &len))) {
                if (st->offset >= cur->start_offset) {
                    void *dst = sb_ring_claim(&sub->w, len, SB_WIRE_DELIVERY);
                    if (!dst) {
                        sub->blocked = true;
                        break;
                    }
                    memcpy(dst, st, len);
                    last_len = len;
                }
                sb_memlog_next(&part->log, &cur->at);
                work = true;
            }
        }
        if (sb_ring_has_uncommitted(&sub->w)) {
            sb_ring_commit_seq_cst(&sub->w);
            sb_parker_wake(sub->consumer_parker);
            /* The consumer's next event likely has the size of this one: get its lines
             * ready while there is nothing to do (a hint; see ring.h). */
            sb_ring_prefetch_next(&sub->w, last_len);
        }
    }
    return work;
}

static void run_control(struct sb_shard *s)
{
    /* Relaxed: the mutex below orders the list; a request posted after we took the list
     * stores 1 again after our 0 (its store follows its unlock, which follows ours). */
    atomic_store_explicit(&s->control_pending, 0, memory_order_relaxed);
    pthread_mutex_lock(&s->control_lock);
    struct sb_control *c = s->control_head;
    s->control_head = s->control_tail = NULL;
    pthread_mutex_unlock(&s->control_lock);
    while (c) {
        struct sb_control *next = c->next; /* c may vanish once done is signalled */
        int result = c->fn(s, c->arg);
        pthread_mutex_lock(&c->lock);
        c->result = result;
        c->done = true;
        pthread_cond_signal(&c->cond);
        pthread_mutex_unlock(&c->lock);
        c = next;
    }
}

/*
 * After sb_parker_prepare(): is there anything to do? Every load is seq_cst so that it pairs
 * with the seq_cst publication of whoever would wake us (park.h). Rings whose next record is
 * waiting for a consumer (blocked), and producer rings while derived events are backed up, do
 * not count: a consumer's or a target shard's release wakes us for those. (The shard's own
 * plain fields, such as in_flight or disk_read_completed, are read plainly: only this thread
 * writes them.)
 */
static bool has_work_seq_cst(struct sb_shard *s, size_t throttle_bytes)
{
    if (atomic_load_explicit(&s->control_pending, memory_order_seq_cst))
        return true;
    /* An exit request is work only once the log has nothing pending: the loop cannot leave
     * before that, and counting it would make the shard spin rather than sleep in io_uring
     * until its group completes (a group to seal is work of its own, below). */
    if (atomic_load_explicit(&s->exit_requested, memory_order_seq_cst) &&
        !(s->durable && sb_shard_log_pending(s)))
        return true;
    for (unsigned j = 0; j < s->shard_count; j++)
        if (!s->from_shard_blocked[j] && !sb_ring_is_empty_seq_cst(&s->from_shard[j]))
            return true;
    for (uint32_t i = 0; i < s->link_count; i++) {
        struct sb_producer_link *link = s->links[i];
        /* Waiting for the producer to poll its acknowledgements: its seq_cst release in
         * sb_producer_poll() pairs with this seq_cst load of the ack ring's head. */
        if (link->ack_blocked && sb_ring_head_moved_seq_cst(&link->ack_w))
            return true;
        if (!sb_ring_is_empty_seq_cst(&link->r)) {
            if (!link->r_blocked && s->overflow_bytes <= throttle_bytes)
                return true;
        } else if (atomic_load_explicit(&link->closed, memory_order_seq_cst) &&
                   link->unsettled == 0) {
            return true;
        }
    }
    if (s->durable && s->groups[s->acc].events && sb_shard_log_can_submit(s))
        return true;
    /* A consumer's disk read completed since deliver() last looked (this thread's own flag). */
    if (s->disk_read_completed)
        return true;
    /* The group's last completion may have been reaped by the network (server_net.c), in
     * which case none is left to wake us: complete it first. */
    if (s->durable && sb_log_writer_group_done(&s->writer))
        return true;
    for (unsigned t = 0; t < s->shard_count; t++)
        if (s->to_shard[t].overflow_head && sb_ring_head_moved_seq_cst(&s->to_shard[t].w))
            return true;
    for (uint32_t i = 0; i < s->sub_count; i++)
        if (s->subs[i]->blocked && sb_ring_head_moved_seq_cst(&s->subs[i]->w))
            return true;
    return false;
}

/* Parked with log writes in flight: sleep in io_uring, woken by a completion or the eventfd. */
static void shard_wait_io(struct sb_shard *s, int64_t timeout_ns)
{
    sb_log_writer_wait(&s->writer, timeout_ns);
    /* Relaxed: see sb_parker_cancel(). */
    atomic_store_explicit(&s->parker.parked, 0, memory_order_relaxed);
}

/* A shard with a service sleeps at most until its next timed duty or the service's. */
static int64_t service_timeout_ns(struct sb_shard *s)
{
    int64_t t = s->service->timeout_ns(s, s->service->ctx);
    int64_t log_t = s->in_flight ? sb_shard_log_io_timeout_ns(s) : sb_shard_log_park_timeout_ns(s);
    if (log_t < 0)
        return t;
    return t < 0 || log_t < t ? log_t : t;
}

static void publish_counters(struct sb_shard *s)
{
    /* Release stores pair with the acquire loads in sb_bus_close(). sent before received:
     * a closer that sees a receipt also sees the sends its handlers made. */
    atomic_store_explicit(&s->counters.derived_sent, s->derived_sent, memory_order_release);
    atomic_store_explicit(&s->counters.derived_received, s->derived_received,
                          memory_order_release);
}

/* A park timeout (< 0: none), at most 1 ms when @bounded. */
static int64_t bound_ns(bool bounded, int64_t timeout_ns)
{
    const int64_t limit = 1000000;
    return bounded && (timeout_ns < 0 || timeout_ns > limit) ? limit : timeout_ns;
}

void *sb_shard_main(void *arg)
{
    struct sb_shard *s = arg;
    const int64_t spin_ns = (int64_t)s->bus->cfg.idle_spin_us * 1000;
    const size_t throttle_bytes = s->bus->ring_capacity;
    int64_t idle_since = 0;
    tls_shard = s;
    s->now_ms = clock_ns(CLOCK_REALTIME) / 1000000;
    s->start_result = s->durable ? sb_shard_log_init(s) : 0;
    /* Release pairs with the acquire load in sb_bus_open(), which then reads start_result. */
    atomic_store_explicit(&s->started, 1, memory_order_release);
    if (s->start_result) {
        tls_shard = NULL;
        return NULL;
    }

    unsigned idle_spins = 0;
    for (;;) {
        /* The durable side's timers need the clock every iteration; a memory-only shard reads
         * it only when it appends (a spinning shard then costs no clock reads). */
        s->now_valid = false;
        if (s->durable)
            sb_shard_now_ms(s);
        bool work = false;
        /* Acquire pairs with the seq_cst store in sb_shard_call() (the list itself is under
         * control_lock). */
        if (atomic_load_explicit(&s->control_pending, memory_order_acquire)) {
            run_control(s);
            work = true;
        }
        work |= drain_shards(s);
        work |= drain_producers(s, throttle_bytes);
        if (s->durable)
            work |= sb_shard_log_step(s);
        if (s->service)
            work |= s->service->step(s, s->service->ctx);
        else if (s->disk_reads_pending)
            sb_log_writer_reap(&s->writer); /* consumers' disk reads complete there */
        work |= flush_outboxes(s);
        work |= deliver(s);
        publish_counters(s);
        if (work) {
            idle_since = 0;
            idle_spins = 0;
            continue;
        }
        /* Acquire pairs with the seq_cst store in sb_shard_request_exit(). Never leave with
         * log writes in flight or gathered (an interval sync may have just started): the
         * ring's completions can only be reaped by this thread (single issuer). */
        if (atomic_load_explicit(&s->exit_requested, memory_order_acquire) &&
            !(s->durable && sb_shard_log_pending(s)))
            break;
        /* Look at the clock every 32 idle turns only: it costs more than a turn. */
        if (++idle_spins & 31) {
            sb_cpu_relax();
            continue;
        }
        int64_t now = clock_ns(CLOCK_MONOTONIC);
        if (idle_since == 0) {
            idle_since = now;
        } else if (now - idle_since >= spin_ns) {
            /* Heavy when producers are attached and use light wake-ups: they wake this shard
             * with sb_parker_wake_light() (park.h). Only then: the membarrier costs a system call
             * and an interrupt of every other CPU running our threads, and a shard with no
             * producer (the server's) parks thousands of times a second. The link list
             * changes on this thread only, and a producer publishes on a link only once its
             * attach ran here. When the membarrier failed, a producer's wake-up may be
             * missed: sleep 1 ms at most. */
            bool bounded = false;
            if (s->link_count && s->bus->light_wakeups)
                bounded = sb_parker_prepare_heavy(&s->parker) != 0;
            else
                sb_parker_prepare(&s->parker);
            if (has_work_seq_cst(s, throttle_bytes) ||
                (s->service && s->service->has_work(s, s->service->ctx)))
                sb_parker_cancel(&s->parker);
            else if (s->service)
                shard_wait_io(s, bound_ns(bounded, service_timeout_ns(s))); /* network, log,
                                                                              a waker */
            else if (s->durable && (s->in_flight || s->disk_reads_pending))
                /* the I/O, a waker's eventfd, or the moment the gathering group may go beside
                 * a slow one */
                shard_wait_io(s, bound_ns(bounded, sb_shard_log_io_timeout_ns(s)));
            else
                sb_parker_wait(
                    &s->parker,
                    bound_ns(bounded, s->durable ? sb_shard_log_park_timeout_ns(s) : -1));
            idle_since = 0;
        } else {
            sb_cpu_relax();
        }
    }
    tls_shard = NULL;
    return NULL;
}

int sb_shard_call(struct sb_shard *shard, int (*fn)(struct sb_shard *, void *), void *arg)
{
    if (sb_current_shard())
        return -EDEADLK;
    struct sb_control c = {.fn = fn, .arg = arg};
    pthread_mutex_init(&c.lock, NULL);
    pthread_cond_init(&c.cond, NULL);
    pthread_mutex_lock(&shard->control_lock);
    if (shard->control_tail)
        shard->control_tail->next = &c;
    else
        shard->control_head = &c;
    shard->control_tail = &c;
    pthread_mutex_unlock(&shard->control_lock);
    /* seq_cst pairs with the shard's acquire load in its loop and with has_work_seq_cst()
     * (the shard's park re-check); then wake it if it parked. */
    atomic_store_explicit(&shard->control_pending, 1, memory_order_seq_cst);
    sb_parker_wake(&shard->parker);
    pthread_mutex_lock(&c.lock);
    while (!c.done)
        pthread_cond_wait(&c.cond, &c.lock);
    pthread_mutex_unlock(&c.lock);
    pthread_cond_destroy(&c.cond);
    pthread_mutex_destroy(&c.lock);
    return c.result;
}

void sb_shard_request_exit(struct sb_shard *shard)
{
    /* seq_cst pairs with has_work_seq_cst() and the loop's acquire load. */
    atomic_store_explicit(&shard->exit_requested, true, memory_order_seq_cst);
    sb_parker_wake(&shard->parker);
}
