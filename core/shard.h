/*
 * shard.h - a shard: one pinned thread that owns a set of partitions and everything attached to
 * them, and the rings through which other threads reach it.
 *
 * Inbound: one ring from each producer (struct sb_producer_link) and one from every shard,
 * itself included (derived events published by handlers). Outbound: one ring to every shard
 * (struct sb_outbox, with an overflow queue so a handler never blocks) and one to each consumer
 * subscribed to a topic with partitions here (struct sb_subscription).
 *
 * Other threads change what a shard serves (attach a producer, subscribe, add a handler) only by
 * posting a control request to its mailbox (sb_shard_call()), which the shard runs on its own
 * thread between batches, so none of the shard's structures needs a lock.
 */
#ifndef SB_SHARD_H
#define SB_SHARD_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "cacheline.h"
#include "histogram.h"
#include "memlog.h"
#include "park.h"
#include "ring.h"
#include "log_writer.h"
#include "record_batch.h"
#include "shard_direct.h"
#include "topic.h"
#include "wire.h"

struct sb_bus;

/** A ring from one producer to one shard. Allocated by the producer, freed by the shard once
 *  the producer closed it and the shard drained it. */
struct sb_producer_link {
    alignas(SB_CACHE_GUARD) struct sb_ring_producer w; /* the producer's thread */
    alignas(SB_CACHE_GUARD) struct sb_ring_consumer r; /* the shard's thread */
    bool r_blocked;     /* shard's thread: the next record has to wait (slow consumer, full
                           write buffer) */
    uint64_t unsettled; /* shard's thread: records taken but not yet acknowledged or failed */
    /* Set by sb_producer_close(); the shard frees the link once it is set, the ring empty and
     * every record settled. */
    alignas(SB_CACHE_GUARD) _Atomic bool closed;
    /* Written by the shard (release), read by the producer (acquire) in sb_producer_flush()
     * and sb_producer_get_stats(): events of this link acknowledged / failed so far, and the
     * latest failure. */
    alignas(SB_CACHE_GUARD) _Atomic uint64_t acknowledged;
    _Atomic uint64_t failed;
    _Atomic int last_error;
    void *ring_mem;
    /* Per-event acknowledgements (only for a producer with an ack callback: ack_ring_mem is
     * NULL otherwise): struct sb_wire_ack records from the shard to the producer, which reads
     * them in sb_producer_poll(). The shard takes an event only when the record it may need
     * has room (ack_owed counts the records promised to events gathered or in flight), so a
     * record never waits: a producer that does not poll gets -EAGAIN. See acks.h. */
    alignas(SB_CACHE_GUARD) struct sb_ring_producer ack_w; /* the shard's thread */
    uint64_t ack_owed;            /* shard: records promised, not yet claimed */
    struct sb_wire_ack *ack_last; /* shard: the newest record, claimed, not yet visible */
    bool ack_blocked;             /* shard: the last event waited for room in the ack ring */
    alignas(SB_CACHE_GUARD) struct sb_ring_consumer ack_r; /* the producer's thread */
    void *ack_ring_mem;
};

/** A consumer's position in one partition (owned by the shard). */
struct sb_cursor {
    struct sb_partition *partition;
    struct sb_memlog_cursor at; /* in memory: position and offset; on disk: at.offset only */
    int64_t start_offset; /* events below it are skipped (a start offset not yet reached) */
    /* Reading the partition's log on disk (it fell behind the memory window, or started
     * below it): the segment (by base offset) and byte position of the batch to read next. */
    bool on_disk;
    int64_t disk_segment_base;
    uint64_t disk_position;
    /* The batch at disk_position, verified once inside the chunk below, and where delivery is
     * in it: a consumer that drains its ring a little at a time does not make the shard verify
     * the batch again for every little. */
    unsigned char *disk_batch;     /* the chunk of the segment read last */
    size_t disk_batch_cap;
    uint32_t disk_batch_len; /* the batch being delivered (in the chunk); 0: not loaded */
    struct sb_record_iter disk_iter;
    /* A compressed batch's records, decompressed (disk_iter points into them). */
    unsigned char *inflated;
    size_t inflated_cap;
    /* The chunk: bytes [chunk_position, chunk_position + chunk_len) of the segment, read
     * through the shard's io_uring (a cold read never stalls the shard); the batches inside
     * it are served without another read. */
    int64_t chunk_segment;         /* the segment (base offset) the chunk is from */
    uint64_t chunk_position;
    uint32_t chunk_len;
    bool read_pending;             /* a read into the chunk is in flight */
    bool read_done;                /* its completion (read_result) is not handled yet */
    int read_result;               /* bytes read, or -errno */
    uint32_t read_len;             /* bytes the read in flight asked for */
    /* The batch at disk_position could not be served (a read error, a short read, a bad
     * batch): reported once through log_fn, then tried again at growing intervals (never
     * skipped). disk_retry_at_ms 0: no failure. */
    int64_t disk_retry_at_ms;
    uint32_t disk_retry_delay_ms;
    uint32_t disk_failures;        /* failures in a row at this position */
    struct sb_shard *shard;        /* for the completion */
    struct sb_log_io_cb read_cb;
};

/** One consumer's subscription on one shard: the ring to it and its cursors. */
struct sb_subscription {
    struct sb_ring_producer w;     /* shard side of the shard -> consumer ring */
    struct sb_parker *consumer_parker;
    struct sb_topic *topic;
    struct sb_cursor *cursors;     /* one per partition of the topic owned by this shard */
    uint32_t cursor_count;
    bool blocked;                  /* the ring was full at the last delivery attempt */
};

/** Derived events waiting for room in a shard -> shard ring (FIFO, heap-allocated). */
struct sb_overflow_node {
    struct sb_overflow_node *next;
    uint32_t len;
    uint32_t type; /* enum sb_wire_type */
    alignas(8) unsigned char record[]; /* a struct sb_wire_event + key + value */
};

/** This shard's side of the ring to one shard. */
struct sb_outbox {
    struct sb_ring_producer w;
    struct sb_overflow_node *overflow_head, *overflow_tail;
    size_t overflow_bytes;
};

/** A batch sealed into a group: written at @position of @fd once the group is submitted. */
struct sb_sealed_batch {
    struct sb_partition *part;
    unsigned char *buf; /* in the group's third of the write buffer */
    uint32_t len;
    int32_t count;
    int64_t base_offset; /* assigned at submit */
    uint64_t first_seq;  /* the partition's append_seq of its first record */
    uint64_t position;
    int fd;
    int slot;            /* the writer's file slot of fd */
    /* fd is an O_DIRECT descriptor: written through shard_direct.c, linked into runs there */
    bool direct, run_head;
    int32_t run_next;
    /* A batch appended whole (sb_shard_log_append_batch()): told once it is written or failed. */
    void (*done)(struct sb_shard *s, void *arg, int error, int64_t base_offset);
    void *done_arg;
};

/** How many records of a group came from one producer link (for its acknowledgements). */
struct sb_link_share {
    struct sb_producer_link *link;
    uint64_t count;
};

/** Consecutive events of one producer with an ack callback to one partition in a group, by
 *  the partition's append_seq: acknowledged with their offsets once the group completes. */
struct sb_ack_run {
    struct sb_partition *part;
    struct sb_producer_link *link;
    uint64_t seq;
    uint64_t count;
};

/** A group commit: the batches gathered in one third of the write buffer. */
struct sb_group {
    unsigned char *arena;
    size_t cap, used;
    size_t encoded; /* bytes of batches in it (headers and records): used also counts the room
                       reserved for open batches and the ends left unused behind them */
    struct sb_sealed_batch *batches;
    size_t batch_count, batch_cap;
    struct sb_link_share *links;
    size_t link_count, link_cap;
    struct sb_ack_run *acks;
    size_t ack_count, ack_cap;
    uint64_t derived; /* derived events in it (counted as received once handled) */
    uint64_t events;
    /* Once submitted: its number (groups count from 1), its error before or apart from its
     * I/O (or inherited from an older group that failed), when it was submitted. */
    uint64_t seq;
    int error;
    int64_t submitted_ns;
};

/** Group slots of a shard's log: one gathering and at most two in flight (log_writer.h). */
#define SB_SHARD_LOG_GROUPS SB_LOG_WRITER_GROUPS

/** A request run on a shard's thread; the caller waits for result. */
struct sb_control {
    struct sb_control *next;
    int (*fn)(struct sb_shard *shard, void *arg);
    void *arg;
    int result;
    bool done;
    pthread_mutex_t lock;
    pthread_cond_t cond;
};

/**
 * A service run by the shard loop besides the bus's own work (the Kafka server's network, see
 * io/server.c). Its functions run on the shard's thread. A shard with a service always sleeps
 * in its io_uring (the service's operations complete there), at most timeout_ns().
 */
struct sb_shard_service {
    /* Do what is ready; true when something was done. */
    bool (*step)(struct sb_shard *s, void *ctx);
    /* After sb_parker_prepare(): is there work? (seq_cst loads of what other threads publish.) */
    bool (*has_work)(struct sb_shard *s, void *ctx);
    /* How long the shard may sleep (ns, < 0: no limit). */
    int64_t (*timeout_ns)(struct sb_shard *s, void *ctx);
    void *ctx;
};

/** Counters other threads read (sb_bus_close's quiescence check). */
struct sb_shard_counters {
    /* Derived events this shard queued to any shard / appended from any shard. Written by the
     * shard with release stores, read with acquire loads by the closing thread. */
    alignas(SB_CACHE_GUARD) _Atomic uint64_t derived_sent;
    _Atomic uint64_t derived_received;
    /* Producer links still attached (not yet drained and freed). */
    _Atomic uint32_t producer_links;
};

struct sb_shard {
    /* --- read-mostly, set before the thread starts --- */
    alignas(SB_CACHE_GUARD) struct sb_bus *bus;
    unsigned id;
    unsigned shard_count;
    int cpu;
    pthread_t thread;

    /* --- the shard thread's own state --- */
    alignas(SB_CACHE_GUARD) struct sb_producer_link **links;
    uint32_t link_count, link_cap;
    struct sb_ring_consumer *from_shard; /* [shard_count] */
    bool *from_shard_blocked;            /* [shard_count], as sb_producer_link.r_blocked */
    struct sb_outbox *to_shard;          /* [shard_count] */
    size_t overflow_bytes;               /* sum over to_shard */
    struct sb_subscription **subs;
    uint32_t sub_count, sub_cap;
    int64_t now_ms;                      /* append timestamp: see sb_shard_now_ms() */
    bool now_valid;                      /* now_ms was read in this loop iteration */
    uint32_t keyless_rr;                 /* round robin for derived events without a key */
    uint64_t derived_sent, derived_received;
    uint64_t corrupt_records;            /* records that failed validation and were skipped */

    /* --- the durable log (bus has a data_dir): see shard_log.c --- */
    bool durable;
    struct sb_log_writer writer;
    struct sb_group groups[SB_SHARD_LOG_GROUPS];
    unsigned acc;                        /* the group gathering */
    unsigned in_flight;                  /* groups submitted, not completed: those before acc */
    unsigned reaped;                     /* of those, the oldest ones the writer reported done */
    uint64_t group_seq;                  /* groups submitted so far */
    uint64_t groups_failed_after_older;  /* groups failed only because an older one in flight
                                            failed (their bytes lay after its cut) */
    int64_t group_latency_avg_ns;        /* moving average of submit to completion */
    uint64_t groups_beside_slow;         /* small groups submitted beside a slow one */
    int64_t slow_group_test_ns;          /* tests: > 0, a group in flight this long is slow
                                            (instead of SB_SLOW_GROUP_FACTOR x the average) */
    struct sb_partition **open_parts;    /* partitions with an open batch in groups[acc] */
    uint32_t open_count, open_cap;
    /* File slots to release once the groups that may use them completed: those up to
     * retired_seq[i] (see retire_slot() in shard_log.c). */
    int *retired_slots;
    uint64_t *retired_seq;
    uint32_t retired_count, retired_cap;
    struct sb_direct_stage stage;        /* direct writes' staging buffer (shard_direct.h) */
    int *unsynced_slots;                 /* INTERVAL: files written since the last sync */
    uint32_t unsynced_count, unsynced_cap;
    int64_t last_sync_ms, last_retention_ms;
    uint64_t group_stamp;                /* groups completed (marks sb_partition.ack_stamp) */
    int start_result;                    /* the shard thread's set-up result */
    uint32_t disk_reads_pending;         /* consumers' disk reads in flight */
    bool disk_read_completed;            /* one completed since deliver() last ran */
    int64_t disk_retry_ms;               /* earliest retry of a failed disk read, 0 none */
    unsigned char *inflated;             /* a Kafka batch's records, decompressed for the */
    size_t inflated_cap;                 /* memory window and the handlers */
    const struct sb_shard_service *service; /* NULL, or set on the shard's thread */
    _Atomic int started;                 /* 1 once start_result is set (release/acquire) */

    /* --- written by other threads --- */
    struct sb_parker parker;
    alignas(SB_CACHE_GUARD) _Atomic uint32_t control_pending;
    _Atomic bool exit_requested;
    pthread_mutex_t control_lock;
    struct sb_control *control_head, *control_tail;

    struct sb_shard_counters counters;
    /* Group commit latency (submit to completion), for metrics: written by the shard. */
    struct sb_latency_histogram group_latency;
};

/** sb_shard_now_ms - wall-clock milliseconds, read at most once per loop iteration, and only
 *  when an event needs it (an idle shard's spin skips the clock). Shard thread only. */
int64_t sb_shard_now_ms(struct sb_shard *s);

/** The shard whose thread is calling, or NULL on any other thread. */
struct sb_shard *sb_current_shard(void);

/** sb_shard_main - the shard thread's body (pthread start routine; arg is the shard). */
void *sb_shard_main(void *arg);

/**
 * sb_shard_call - run @fn(shard, @arg) on the shard's thread and return its result.
 * Any thread except a shard thread (which would wait for itself). Blocks until done.
 */
int sb_shard_call(struct sb_shard *shard, int (*fn)(struct sb_shard *, void *), void *arg);

/** sb_shard_request_exit - ask the shard thread to return (once the bus is quiet). */
void sb_shard_request_exit(struct sb_shard *shard);

/**
 * sb_outbox_push - queue a derived event (header @hdr, then @key and @value bytes) for shard
 * @target: into the ring when it has room and nothing is queued before it, else onto the
 * overflow queue. Committed by the shard loop after the current batch. Shard thread only.
 * Returns 0 or -ENOMEM.
 */
int sb_outbox_push(struct sb_shard *s, unsigned target, const struct sb_wire_event *hdr,
                   const void *key, const void *value);

/**
 * sb_shard_post - run @fn(shard @target, @arg) on shard @target's thread: through the ring to
 * it (in order with everything else this shard sends there), or at once when @target is this
 * shard. Shard thread only (the sending shard @s). Never blocks. Returns 0 or -ENOMEM.
 */
int sb_shard_post(struct sb_shard *s, unsigned target, void (*fn)(struct sb_shard *, void *),
                  void *arg);

/** sb_shard_run_handlers - hand @st, just appended to @part, to the partition's handlers. */
void sb_shard_run_handlers(struct sb_shard *s, const struct sb_partition *part,
                           const struct sb_stored_event *st);

/**
 * sb_partition_publish_end - the owner of @part tells other shards that its log now ends at
 * @end (the next offset), and wakes the shards that asked with sb_partition_watch_end().
 * Owning shard only.
 */
void sb_partition_publish_end(struct sb_bus *bus, struct sb_partition *part, int64_t end);

/**
 * sb_partition_watch_end - shard @s wants a wake-up once @part's published end passes
 * @offset. Returns true when it already has (then no wake-up will come for it). Any shard; the
 * registration is used up by one wake-up, so a shard still waiting calls it again before it
 * parks.
 */
bool sb_partition_watch_end(struct sb_shard *s, struct sb_partition *part, int64_t offset);

/** sb_partition_ensure_log - initialise @part's memory log (shard thread). 0 or -ENOMEM. */
int sb_partition_ensure_log(struct sb_shard *shard, struct sb_partition *part);

#endif /* SB_SHARD_H */
