/*
 * topic.h - topics, their partitions, and the bus's table of topics.
 *
 * A topic is created by any thread under the table's lock and then published with a release
 * store; after that its name, id and partition count never change and any thread may read them
 * (lock-free lookups by name and by id). Each struct sb_partition belongs to the shard that owns
 * it (sb_partition_owner()) and only that shard's thread touches its mutable fields. Topics live
 * until the bus is closed.
 */
#ifndef SB_TOPIC_H
#define SB_TOPIC_H

#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <shardbus.h>

#include "cacheline.h"
#include "memlog.h"
#include "partition_log.h"
#include "record_batch.h"

#define SB_MAX_TOPICS 65536u
#define SB_MAX_PARTITIONS 65536u

struct sb_handler_entry {
    sb_handler_fn fn;
    void *ctx;
};

struct sb_cursor; /* shard.h */

/** One partition; every field is owned by the owning shard's thread. */
struct sb_partition {
    alignas(SB_CACHE_GUARD) struct sb_topic *topic;
    uint32_t index;
    uint32_t owner;            /* sb_partition_owner(), kept: the shard checks it per event */
    bool log_ready;            /* log is initialised (lazily, on first use) */
    struct sb_memlog log;
    struct sb_handler_entry *handlers;
    uint32_t handler_count;
    uint32_t handler_cap;
    struct sb_cursor **cursors; /* consumers' positions in this partition */
    uint32_t cursor_count;
    uint32_t cursor_cap;
    /* The durable log (data_dir set): opened by the bus, then used by the owning shard only. */
    struct sb_plog *plog;
    int slot;                     /* the owning shard's io_uring file slot for slot_fd */
    int slot_fd;                  /* the segment file registered in slot, -1 none */
    /* Direct writes (shard_direct.c): the last batch of this partition's run in the group
     * being staged, valid while direct_run_call matches that staging call. */
    size_t direct_run_tail;
    uint64_t direct_run_call;
    struct sb_batch_builder batch; /* the open batch in the shard's gathering group */
    bool batch_open;
    /* Per-event acknowledgements (shard_log.c): records ever appended to the log's groups,
     * the count when the open batch started, and, while a group completes, the first offset
     * and append_seq of the partition's records in it (valid when ack_stamp is its stamp). */
    uint64_t append_seq;
    uint64_t batch_first_seq;
    uint64_t ack_stamp;
    int64_t ack_base_offset;
    uint64_t ack_base_seq;
    /* The Kafka server's state of this partition (idempotent producers' sequences): one
     * malloc'd block, owned by the owning shard, freed with the partition. */
    void *server_state;
    /* Read by other shards (a Kafka Fetch waiting for data, metrics): the log's end (next
     * offset) as of the last completed group, stored by the owner (seq_cst, see
     * sb_partition_publish_end()); the shards waiting for it to move (bit id % 64); and
     * counters of what came in and went out (single writer each: relaxed). */
    alignas(SB_CACHE_GUARD) _Atomic int64_t published_end;
    _Atomic uint64_t end_waiters;
    _Atomic uint64_t events_in, bytes_in, events_out, bytes_out;
};

struct sb_topic {
    char name[SB_TOPIC_NAME_MAX + 1];
    /* Set (release) once the topic is deleted: it is no longer found by name, and shards drop
     * what still arrives for it. The struct itself lives until the bus is closed. */
    _Atomic bool deleted;
    /* Set while sb_topic_delete() checks that nothing uses the topic: no subscription or
     * handler may be added meanwhile (their control requests refuse it). */
    _Atomic bool deleting;
    uint32_t id;
    uint32_t partition_count;
    struct sb_topic_config cfg;
    struct sb_partition *partitions; /* partition_count entries */
};

/** Index from name to topic: open addressing, insert only, replaced whole when it grows. */
struct sb_topic_index {
    uint32_t mask;
    struct sb_topic_index *retired_next; /* older indexes, freed with the table */
    _Atomic(struct sb_topic *) slots[];
};

struct sb_topic_table {
    pthread_mutex_t lock;                      /* writers only */
    _Atomic(struct sb_topic_index *) index;    /* readers: acquire */
    _Atomic(struct sb_topic *) *by_id;         /* SB_MAX_TOPICS entries */
    uint32_t count;                            /* under lock */
    unsigned shard_count;                      /* of the bus (set before the first topic is
                                                  added): sets each partition's owner */
};

/** sb_topic_name_valid - Kafka's rule: 1-249 characters of [A-Za-z0-9._-], not "." or "..". */
bool sb_topic_name_valid(const char *name);

int sb_topic_table_init(struct sb_topic_table *t);
/** Frees every topic, its partitions' logs and arrays, and the indexes. No concurrent users. */
void sb_topic_table_destroy(struct sb_topic_table *t);

/**
 * sb_topic_table_add - create and publish a topic. Returns 0 with *out set, or -EEXIST,
 * -EINVAL, -ENOSPC, -ENOMEM. Any thread.
 */
int sb_topic_table_add(struct sb_topic_table *t, const char *name, uint32_t partitions,
                       const struct sb_topic_config *cfg, struct sb_topic **out);

/**
 * sb_topic_table_add_prepared - like sb_topic_table_add(), but runs @prepare(topic, ctx) on the
 * new topic (opening its partition logs) before publishing it; its error aborts the creation.
 * @nowait: return -EAGAIN rather than wait while another thread holds the table's lock (a
 * shard thread must not wait for a deletion, which waits for every shard).
 */
int sb_topic_table_add_prepared(struct sb_topic_table *t, const char *name, uint32_t partitions,
                                bool nowait, const struct sb_topic_config *cfg,
                                int (*prepare)(struct sb_topic *topic, void *ctx), void *ctx,
                                struct sb_topic **out);

/**
 * sb_topic_table_remove_locked - unpublish @topic by name (a new index without it) and mark it deleted.
 * The caller holds t->lock. Returns 0 or -ENOMEM.
 */
int sb_topic_table_remove_locked(struct sb_topic_table *t, struct sb_topic *topic);

/** sb_topic_is_deleted - true once sb_topic_delete() marked @topic. Any thread. */
static inline bool sb_topic_is_deleted(const struct sb_topic *topic)
{
    /* Acquire pairs with the release store in sb_topic_table_remove_locked(). */
    return atomic_load_explicit(&topic->deleted, memory_order_acquire);
}

/** sb_topic_is_closing - deleted, or being checked for deletion: take no new users. */
static inline bool sb_topic_is_closing(const struct sb_topic *topic)
{
    /* Acquire pairs with the release stores in sb_topic_delete() and
     * sb_topic_table_remove_locked(). */
    return atomic_load_explicit(&topic->deleting, memory_order_acquire) ||
           atomic_load_explicit(&topic->deleted, memory_order_acquire);
}

/** sb_topic_find - the topic named @name, or NULL. Any thread, lock-free. */
struct sb_topic *sb_topic_find(struct sb_topic_table *t, const char *name);

/** sb_topic_by_id - the topic with @id, or NULL. Any thread, lock-free. */
static inline struct sb_topic *sb_topic_by_id(struct sb_topic_table *t, uint32_t id)
{
    if (id >= SB_MAX_TOPICS)
        return NULL;
    /* Acquire pairs with the release store in sb_topic_table_add(): the topic's fields are
     * initialised before anyone can see the pointer. */
    return atomic_load_explicit(&t->by_id[id], memory_order_acquire);
}

/** sb_partition_owner - index of the shard that owns partition @p of @topic. Spreads the
 *  partitions of a topic, and single-partition topics, across the shards. */
static inline unsigned sb_partition_owner(const struct sb_topic *topic, uint32_t p,
                                          unsigned shards)
{
    return (unsigned)(((uint64_t)topic->id + p) % shards);
}

/** sb_partition_for_key - Kafka's default partitioner for a non-null key. */
static inline uint32_t sb_partition_for_key(const void *key, size_t key_len, uint32_t partitions)
{
    return (sb_murmur2(key, key_len) & 0x7fffffffu) % partitions;
}

#endif /* SB_TOPIC_H */
