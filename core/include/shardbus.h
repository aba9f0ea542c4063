/*
 * shardbus.h - the public C API of shardbus, an event bus built from pinned shard threads.
 *
 * A bus owns N shard threads, each pinned to a CPU. Every topic is split into partitions and
 * every partition is owned by exactly one shard. Producers hand events to the owning shard
 * through single-producer/single-consumer rings; the shard appends them to the partition (in
 * memory for now: the durable log gives sb_config.data_dir its meaning), runs the handlers
 * registered on the topic on its own thread, and feeds subscribed consumers through rings again.
 *
 * Conventions:
 *  - Every function that can fail returns 0 (or a count) on success and a negative errno on
 *    failure. The library never prints, never exits and never sets errno for you to read.
 *  - "Any thread" means any thread, concurrently with other calls on the same bus, unless the
 *    object named says otherwise (a producer and a consumer are each used by one thread at a
 *    time).
 *  - Handlers run on shard threads and must not block: from a handler, publish with
 *    sb_shard_publish(), never with a producer, and never call sb_subscribe(), sb_handler_add(),
 *    sb_bus_close() or anything else documented as blocking.
 */
#ifndef SHARDBUS_H
#define SHARDBUS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Exported from the shared library (built with -fvisibility=hidden). */
#if defined(__GNUC__)
#define SB_API __attribute__((visibility("default")))
#else
#define SB_API
#endif

#define SB_VERSION_MAJOR 0
#define SB_VERSION_MINOR 1
#define SB_VERSION_PATCH 0

struct sb_bus;
struct sb_producer;
struct sb_consumer;
struct sb_shard;

/** How durable an acknowledged event is when the bus has a data_dir. */
enum sb_durability {
    /** Written to the log (the page cache), never forced to the disk by the bus. */
    SB_DURABILITY_NONE = 0,
    /** Each group commit is made durable with fdatasync before any event in it counts as
     *  acknowledged. The default. */
    SB_DURABILITY_BATCH = 1,
    /** Acknowledged once written; the log is forced to the disk every fsync_interval_ms. */
    SB_DURABILITY_INTERVAL = 2,
};

enum sb_log_level { SB_LOG_INFO = 0, SB_LOG_WARN = 1, SB_LOG_ERROR = 2 };

/** Receives the bus's reports (recovery, retention, write errors): called from sb_bus_open()'s
 *  thread during recovery and from shard threads afterwards; must not block or call the bus. */
typedef void (*sb_log_fn)(void *ctx, enum sb_log_level level, const char *message);

/** Longest topic name, as in Kafka. */
#define SB_TOPIC_NAME_MAX 249

/** Bus configuration. Fill with sb_config_init(), then set the fields you care about. */
struct sb_config {
    /** Number of shard threads; 0 = one per CPU this process may run on. */
    unsigned shards;
    /** CPU of each shard (array of `shards` entries); NULL = the CPUs this process may run on,
     *  in order, shard i on the (i mod count)-th of them. */
    const int *cpus;
    /** NULL = memory only. Otherwise the folder of the durable log (created if missing): one
     *  folder per partition, "<topic>-<partition>", of Kafka segments; topic metadata in
     *  "topics". Only one bus may open a data_dir at a time (flock). */
    const char *data_dir;
    /** With data_dir: when an event counts as acknowledged. Default SB_DURABILITY_BATCH. */
    enum sb_durability durability;
    /** SB_DURABILITY_INTERVAL: how often the log is forced to the disk. Default 100 ms. */
    unsigned fsync_interval_ms;
    /** Size at which a partition's log rolls to a new segment. Default 64 MiB. */
    uint64_t segment_bytes;
    /** Default retention of new topics: whole old segments are deleted once a partition holds
     *  more than retention_bytes, or once their newest event is older than retention_ms.
     *  -1 = no limit (the defaults). */
    int64_t retention_bytes;
    int64_t retention_ms;
    /** Bytes each shard gathers its log writes in (three parts: up to two group commits in
     *  flight while the next fills). A power of two, 64 KiB to 2 GiB. Default 16 MiB. With a
     *  data_dir it also bounds max_event_bytes (an eighth of it at most). */
    size_t write_buffer_bytes;
    /** Use an SQPOLL kernel thread for each shard's io_uring (costs a core). Default 0. */
    int sqpoll;
    /** Reports (may be NULL). */
    sb_log_fn log_fn;
    void *log_ctx;
    /** Capacity in bytes of each SPSC ring (producer->shard, shard->shard, shard->consumer).
     *  A power of two, at least 4 KiB and at most 2 GiB. Default 1 MiB. */
    size_t ring_bytes;
    /** Bytes of the most recent events each partition keeps in memory: the window a consumer
     *  can start from with SB_OFFSET_BEGINNING or an absolute offset in a memory-only bus, and
     *  how far a slow consumer may fall behind before producers see -EAGAIN. At least 4 KiB,
     *  at most 2 GiB (rounded up to a power of two). Default 1 MiB. */
    size_t partition_memory_bytes;
    /** Largest key_len + value_len accepted by sb_publish(); larger gives -EMSGSIZE. Default
     *  and maximum: the smallest of ring_bytes / 4, partition_memory_bytes / 4 and, with a
     *  data_dir, write_buffer_bytes / 8. */
    size_t max_event_bytes;
    /** How long an idle shard, or an sb_poll() waiting for events, spins before it parks on
     *  its futex, in microseconds. Default 50. Latency-critical deployments with a core per
     *  shard raise it (events then never wait for a wake-up); on shared cores keep it short. */
    unsigned idle_spin_us;
    /** 0 (default): producers publish without a full memory barrier, and a shard that parks
     *  with producers attached runs membarrier(2) instead, which briefly interrupts every CPU
     *  running a thread of this process (once per park, not per event); where membarrier is
     *  unavailable this setting makes no difference. 1: every publish pays the full barrier
     *  (about one cache-line transfer) and parking interrupts no one; for processes with many
     *  busy threads of their own and shards that park often. */
    int full_barrier_wakeups;
    /** With a data_dir, how the log is written. 1: with O_DIRECT where the file system
     *  supports it (else through the page cache, reported once per partition at SB_LOG_INFO):
     *  no copy into the page cache and no write-back left for the syncs, so a BATCH or
     *  INTERVAL sync waits for less; the shard copies each group's batches into a staging
     *  buffer of whole 4 KiB blocks (about a third of write_buffer_bytes), and the file of the
     *  segment being written ends with up to 4095 zero bytes until it is closed (README, *The
     *  log on disk*). Events read back from the disk then come from the device, not from the
     *  page cache. 0: through the page cache, which absorbs bursts at memory speed (up to the
     *  kernel's dirty limits) and is written back later. -1 (the default): 1 under
     *  SB_DURABILITY_BATCH and INTERVAL, 0 under NONE (bench_log measured each way). */
    int direct_io;
};

/**
 * sb_config_init - fill *cfg with the defaults documented on each field.
 * Any thread; never fails, never blocks.
 */
SB_API void sb_config_init(struct sb_config *cfg);

/**
 * sb_bus_open - start a bus: allocate it and start its pinned shard threads.
 * @cfg: the configuration (copied; the caller may free it afterwards, cfg->cpus too).
 * @out: receives the bus on success.
 * Returns 0, or:
 *   -EINVAL     a field out of range (ring_bytes not a power of two or outside 4 KiB..2 GiB, a CPU number
 *               outside this process's affinity mask, max_event_bytes over its maximum)
 *   -EBUSY      another bus (or server) has data_dir open
 *   -EBADMSG    data_dir holds corruption recovery must not silently drop (log_fn says where)
 *   -ENOMEM     out of memory
 *   other       a negative errno from the file system or io_uring (-EACCES, -ENOSPC, ...)
 *   other       the negative errno of a failed pthread_create
 * Any thread. Blocks until every shard thread runs.
 */
SB_API int sb_bus_open(const struct sb_config *cfg, struct sb_bus **out);

/**
 * sb_bus_close - deliver everything already published to the handlers (including the events
 * handlers derive from them, until the bus is quiet), stop and join the shards, free the bus.
 * Returns 0, or -EBUSY (nothing done, the bus stays open) while producers or consumers of this
 * bus are still open: close them first. bus == NULL returns -EINVAL.
 * Any thread except a shard thread (-EDEADLK from a handler). Blocks until the bus is quiet.
 */
SB_API int sb_bus_close(struct sb_bus *bus);

/** sb_bus_shards - number of shard threads of the bus. Any thread; never blocks. */
SB_API unsigned sb_bus_shards(const struct sb_bus *bus);

/**
 * sb_topic_create - create a topic of @partitions partitions.
 * Returns 0, or -EEXIST (a topic of that name exists), -EINVAL (a name that breaks Kafka's rule:
 * 1-249 characters of [A-Za-z0-9._-], and not "." or ".."; or 0 partitions, or more than
 * 65536), -ENOSPC (the bus already has 65536 topics), -ENOMEM.
 * Any thread; takes the bus's metadata lock (not on any event's path), never waits for shards.
 * On a shard thread (a handler) it does not wait for that lock either: -EAGAIN while another
 * thread creates or deletes a topic (try again later).
 */
SB_API int sb_topic_create(struct sb_bus *bus, const char *name, unsigned partitions);

/** Per-topic settings for sb_topic_create_with(). */
struct sb_topic_config {
    int64_t retention_bytes; /* -1 = no limit */
    int64_t retention_ms;    /* -1 = no limit */
};

/** sb_topic_config_init - the bus's defaults (sb_config.retention_*). */
SB_API void sb_topic_config_init(const struct sb_bus *bus, struct sb_topic_config *cfg);

/**
 * sb_topic_create_with - sb_topic_create() with per-topic settings (persisted with the topic).
 * Also -ENOSPC / -EIO... when the topic's folders or the metadata file cannot be written.
 */
SB_API int sb_topic_create_with(struct sb_bus *bus, const char *name, unsigned partitions,
                                const struct sb_topic_config *cfg);

/** One topic, as sb_topic_list() describes it. */
struct sb_topic_info {
    const char *name; /* valid until sb_bus_close() */
    unsigned partitions;
    struct sb_topic_config config;
};

/**
 * sb_topic_list - the bus's topics in creation order (after a restart: the order of the topics
 * file). Fills up to @max entries of @out and returns how many topics there are (which may be
 * more than @max), or -EINVAL. Any thread; lock-free, never blocks; a topic created meanwhile
 * may or may not be listed.
 */
SB_API int sb_topic_list(struct sb_bus *bus, struct sb_topic_info *out, int max);

/**
 * sb_topic_delete - delete topic @name and, with a data_dir, its partitions' logs on disk.
 * Events of it still on their way to a shard are dropped (their producers count them as
 * failed with -ENOENT); a topic of the same name may be created afterwards (it starts empty).
 * With a data_dir the deletion is crash-safe: the partition folders are renamed to
 * "<topic>-<p>.deleted" and synced, then the topics file is rewritten without the topic (the
 * commit point), then the folders are removed; a crash before the commit point brings the
 * topic back whole at the next sb_bus_open(), a crash after it removes what is left.
 * Returns 0, -ENOENT (no such topic), -EBUSY (a consumer is subscribed to it or a handler is
 * registered on it), -EINVAL, or a negative errno from syncing the data dir or rewriting the
 * topics file (the topic is gone from this bus, but its logs are kept and the next
 * sb_bus_open() restores it) or from removing the folders (the next open removes them). Any
 * thread but a shard's (-EDEADLK); blocks until every shard let go of the topic and its files
 * are gone.
 */
SB_API int sb_topic_delete(struct sb_bus *bus, const char *name);

/**
 * sb_topic_partitions - number of partitions of topic @name, or -ENOENT.
 * Any thread; never blocks.
 */
SB_API int sb_topic_partitions(struct sb_bus *bus, const char *name);

/**
 * sb_producer_open - a producer: one ring from it to each shard.
 * Returns 0, -ENOMEM, or -EDEADLK when called from a shard thread (handlers publish with
 * sb_shard_publish()). Any thread; blocks until every shard has attached the rings.
 */
SB_API int sb_producer_open(struct sb_bus *bus, struct sb_producer **out);

/** What happened to one event, as an acknowledgement callback is told (see sb_ack_fn). */
struct sb_ack {
    const char *topic;  /* the topic's name (valid until sb_bus_close()) */
    uint32_t partition;
    int64_t offset;     /* the event's offset in the partition; -1 when error != 0 */
    /* 0: acknowledged (appended and as durable as sb_config.durability promises: written, and
     * under SB_DURABILITY_BATCH synced). Else a negative errno, and the event is not in the
     * log: -ENOSPC, -EIO... (a failed log write), -ENOENT (its topic was deleted first). */
    int error;
    void *opaque;       /* what sb_publish_with() was given; NULL for sb_publish[_to]() */
};

/**
 * An acknowledgement callback (librdkafka's delivery report): runs once for every event the
 * producer published, on the producer's thread, inside sb_producer_poll() or
 * sb_producer_flush(). Events of one partition are reported in publish order; events of
 * different partitions in no promised order. @ack is valid only during the call. It may
 * publish with the same producer and read its stats; sb_producer_poll() and
 * sb_producer_flush() called from it return -EDEADLK; it must not close the producer.
 */
typedef void (*sb_ack_fn)(void *ctx, const struct sb_ack *ack);

/** Producer options for sb_producer_open_with(). Fill with sb_producer_config_init(). */
struct sb_producer_config {
    /** NULL (the default): no per-event acknowledgements (sb_producer_flush() and
     *  sb_producer_get_stats() still tell). Else called as ack_fn(ack_ctx, ack) for each
     *  event; the producer must then call sb_producer_poll() (or sb_producer_flush()) now and
     *  then: while ring_bytes / 32 acknowledgement records wait unpolled on one shard, that
     *  shard takes no more events from the producer and sb_publish() returns -EAGAIN. */
    sb_ack_fn ack_fn;
    void *ack_ctx;
};

/** sb_producer_config_init - the defaults (no ack callback). Any thread; never blocks. */
SB_API void sb_producer_config_init(struct sb_producer_config *cfg);

/**
 * sb_producer_open_with - sb_producer_open() with options (@cfg NULL: the defaults). With an
 * ack callback, each shard also gets a ring back to the producer (ring_bytes) for the
 * acknowledgements. Returns what sb_producer_open() returns. Any thread; blocks until every
 * shard has attached the rings.
 */
SB_API int sb_producer_open_with(struct sb_bus *bus, const struct sb_producer_config *cfg,
                                 struct sb_producer **out);

/**
 * sb_publish - enqueue one event to the shard owning its partition. Never blocks.
 * @key may be NULL (a null key: the producer spreads such events over the partitions round
 * robin); a non-NULL key picks partition = (murmur2(key) & 0x7fffffff) % partitions, exactly as
 * Kafka's Java client's default partitioner does. @value may be NULL (a null value, Kafka's
 * tombstone) only with value_len 0.
 * Returns 0 (enqueued; it will be appended and delivered), or:
 *   -EAGAIN   the owning shard's ring from this producer is full; nothing was enqueued, retry
 *   -ENOENT   no such topic
 *   -EMSGSIZE key_len + value_len exceeds max_event_bytes
 *   -EINVAL   NULL pointer with a non-zero length, or a NULL producer or topic
 * Per producer and partition, publish order is offset order.
 * Only the thread that uses this producer (one thread at a time).
 */
SB_API int sb_publish(struct sb_producer *p, const char *topic, const void *key, size_t key_len,
               const void *value, size_t value_len);

/**
 * sb_publish_to - like sb_publish() but to an explicit partition (Kafka's ProducerRecord with
 * a partition). Returns what sb_publish() returns, and -EINVAL for a partition out of range.
 */
SB_API int sb_publish_to(struct sb_producer *p, const char *topic, uint32_t partition, const void *key,
                  size_t key_len, const void *value, size_t value_len);

/** For sb_publish_with(): pick the partition as sb_publish() does (key hash or round robin). */
#define SB_PARTITION_ANY UINT32_MAX

/**
 * sb_publish_with - sb_publish() (@partition SB_PARTITION_ANY) or sb_publish_to() (an
 * explicit partition) carrying @opaque, which the producer's ack callback gets back with the
 * event's offset or error (any value, never dereferenced; NULL is fine). Never blocks.
 * Returns what sb_publish() / sb_publish_to() return, and -ENOMEM when a producer with an ack
 * callback cannot grow its list of unacknowledged events (nothing was enqueued). -EAGAIN also
 * means, for a producer with an ack callback, that acknowledgements wait to be polled: call
 * sb_producer_poll(). Only the producer's thread (also from its ack callback).
 */
SB_API int sb_publish_with(struct sb_producer *p, const char *topic, uint32_t partition,
                           const void *key, size_t key_len, const void *value, size_t value_len,
                           void *opaque);

/**
 * sb_producer_poll - run the ack callback for the events settled since the last poll, on the
 * calling thread, in publish order per partition; each event's callback runs exactly once.
 * @timeout_ms: 0 never waits; > 0 waits at most that long for a first settled event; < 0 waits
 *   without limit; a wait ends at once when no event is unsettled.
 * Returns the number of callbacks run (0 on timeout), -EINVAL (NULL, or a producer opened
 * without an ack callback), -EDEADLK (called from the ack callback).
 * Only the producer's thread. Blocks only with timeout_ms != 0 (sleeps in short steps).
 */
SB_API int sb_producer_poll(struct sb_producer *p, int timeout_ms);

/**
 * sb_producer_flush - wait until every event this producer published is acknowledged: appended
 * to its partition, as durable as sb_config.durability promises when the bus has a data_dir,
 * and handed to its handlers. With an ack callback, it also runs the callbacks (as
 * sb_producer_poll()) and returns once every event's callback has run.
 * @timeout_ms: < 0 waits without limit.
 * Returns 0; -ETIMEDOUT (some events are still on their way; none are lost); or the error of
 * a failed log write (-ENOSPC, -EIO, ...) or -ENOENT (the topic was deleted) when some of this
 * producer's events could not be written since the last flush: those events were not
 * acknowledged and are not in the log (sb_producer_get_stats() counts them, the ack callback
 * gets each one's error); the bus stays up and later events are written again. -EDEADLK from
 * an ack callback. Only the producer's thread. Blocks (sleeps in short steps, never spins for
 * long).
 */
SB_API int sb_producer_flush(struct sb_producer *p, int timeout_ms);

/** What happened to a producer's events so far. */
struct sb_producer_stats {
    uint64_t published;    /* sb_publish() calls that returned 0 */
    uint64_t acknowledged; /* appended (and durable as configured) */
    uint64_t failed;       /* not written: a log write failed (never acknowledged) */
    int last_error;        /* the errno of the latest failure, negative; 0 if none */
};

/**
 * sb_producer_get_stats - the producer's counters, without blocking (a producer that must not
 * block and needs each event's offset or error uses an ack callback instead). Events of one
 * partition settle (acknowledged or failed) in publish order, so a producer that publishes to
 * one partition knows that its first `acknowledged + failed` events are settled. Only the
 * producer's thread.
 */
SB_API void sb_producer_get_stats(struct sb_producer *p, struct sb_producer_stats *out);

/**
 * sb_producer_close - close the producer. Events it already published are still appended and
 * delivered (the shards drain its rings, then free them). Does not wait; call
 * sb_producer_flush() first to wait (acknowledgements not yet polled are dropped: their
 * callbacks never run). NULL is a no-op. Only the producer's thread, not from its ack callback.
 */
SB_API void sb_producer_close(struct sb_producer *p);

/** Start offsets for sb_subscribe(). */
#define SB_OFFSET_END (-1)       /* only events appended after the subscription */
#define SB_OFFSET_BEGINNING (-2) /* the oldest event still retained */

/** One event as a consumer or handler sees it. key == NULL for a null key, value == NULL for a
 *  null value. The pointers are valid as documented where the event is handed over. */
struct sb_event {
    const char *topic;
    uint32_t partition;
    int64_t offset;
    int64_t timestamp_ms; /* when the owning shard appended it (Kafka's LogAppendTime) */
    const void *key;
    size_t key_len;
    const void *value;
    size_t value_len;
};

/**
 * sb_subscribe - a consumer of every partition of @topic.
 * @from_offset: SB_OFFSET_END, SB_OFFSET_BEGINNING, or an absolute offset applied to every
 *   partition (a partition whose next offset is below it delivers from that offset once reached).
 *   With a data_dir, anything still in the log can be read: older events come from the disk,
 *   then delivery switches to live events without a gap or a duplicate.
 * Returns 0, or -ENOENT (no such topic), -EINVAL (from_offset < -2), -ERANGE (an absolute offset
 * older than what some partition still retains, i.e. below its log start offset after
 * retention, or outside partition_memory_bytes without a data_dir; nothing subscribed), -ENOMEM,
 * -EDEADLK (called from a shard thread).
 * Any thread. Blocks until every shard has registered the subscription, so any event published
 * after it returns is delivered.
 */
SB_API int sb_subscribe(struct sb_bus *bus, const char *topic, int64_t from_offset,
                 struct sb_consumer **out);

/**
 * sb_poll - take up to @max delivered events.
 * @timeout_ms: 0 never waits, < 0 waits without limit, else waits at most that long for the
 *   first event (spinning briefly, then sleeping on a futex until a shard delivers).
 * Returns the number of events stored in @events (0 on timeout), or -EINVAL (max <= 0 or NULL
 * pointers). Events of one partition come in offset order, each exactly once. The key and value
 * pointers stay valid until the next sb_poll() or sb_consumer_close() on this consumer; calling
 * sb_poll() again releases the space to the shards (a consumer that stops polling
 * back-pressures the producers of its topic once partition_memory_bytes are outstanding).
 * Only the consumer's thread (one thread at a time).
 */
SB_API int sb_poll(struct sb_consumer *c, struct sb_event *events, int max, int timeout_ms);

/**
 * sb_consumer_close - unsubscribe and free the consumer. Events not yet polled are dropped for
 * this consumer only. NULL is a no-op. Only the consumer's thread, never a shard thread. Blocks
 * until every shard has dropped the subscription.
 */
SB_API void sb_consumer_close(struct sb_consumer *c);

/**
 * A handler: runs on the thread of the shard that owns the event's partition, for every event
 * appended to the topic after sb_handler_add() returned, in offset order per partition. The
 * event's pointers are valid only during the call. It must not block (see the top of this file).
 */
typedef void (*sb_handler_fn)(struct sb_shard *shard, const struct sb_event *ev, void *ctx);

/**
 * sb_handler_add - run @fn(shard, event, @ctx) for every event of @topic.
 * Several handlers on one topic run in the order they were added.
 * Returns 0, or -ENOENT (no such topic), -EINVAL (fn NULL), -ENOMEM, -EDEADLK (shard thread).
 * Any thread. Blocks until every shard owning a partition of the topic has installed it.
 */
SB_API int sb_handler_add(struct sb_bus *bus, const char *topic, sb_handler_fn fn, void *ctx);

/**
 * sb_shard_publish - from inside a handler, publish a derived event; it travels to the shard
 * that owns its partition through the shard-to-shard rings (partitioning as sb_publish()).
 * Never blocks and never drops: when the ring to the target shard is full, the event waits in
 * this shard's overflow queue (in order) and this shard stops taking new events from producers
 * until the overflow has drained, so producers see -EAGAIN instead of memory growing without
 * bound, and two shards publishing to each other cannot deadlock.
 * Returns 0, or -ENOENT, -EMSGSIZE, -EINVAL as sb_publish(), -ENOMEM (overflow allocation),
 * -EPERM when @shard is not the calling thread's shard.
 * Only on a shard thread, inside a handler, with the shard the handler was given.
 */
SB_API int sb_shard_publish(struct sb_shard *shard, const char *topic, const void *key, size_t key_len,
                     const void *value, size_t value_len);

/** sb_shard_id - index (0..shards-1) of the shard. Any thread; never blocks. */
SB_API unsigned sb_shard_id(const struct sb_shard *shard);

/**
 * sb_murmur2 - Kafka's murmur2 hash of @len bytes (Utils.murmur2 of the Java client), as the
 * unsigned 32-bit pattern of the Java int. Any thread; pure.
 */
SB_API uint32_t sb_murmur2(const void *data, size_t len);

/** sb_version_string - "MAJOR.MINOR.PATCH". Any thread. */
SB_API const char *sb_version_string(void);

#ifdef __cplusplus
}
#endif

#endif /* SHARDBUS_H */
