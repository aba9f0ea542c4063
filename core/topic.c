/*
 * topic.c - the table of topics: creation under a lock, lock-free lookups; see topic.h.
 */
#include "topic.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define INITIAL_INDEX_SLOTS 64u

bool sb_topic_name_valid(const char *name)
{
    if (!name)
        return false;
    size_t n = strnlen(name, SB_TOPIC_NAME_MAX + 1);
    if (n == 0 || n > SB_TOPIC_NAME_MAX || !strcmp(name, ".") || !strcmp(name, ".."))
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

/* FNV-1a: short names, good enough spread for a table this size. */
static uint32_t name_hash(const char *name)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h;
}

static struct sb_topic_index *index_new(uint32_t slots)
{
    struct sb_topic_index *ix = calloc(1, sizeof(*ix) + slots * sizeof(ix->slots[0]));
    if (!ix)
        return NULL;
    ix->mask = slots - 1;
    for (uint32_t i = 0; i < slots; i++)
        atomic_init(&ix->slots[i], NULL);
    return ix;
}

int sb_topic_table_init(struct sb_topic_table *t)
{
    memset(t, 0, sizeof(*t));
    t->shard_count = 1;
    t->by_id = calloc(SB_MAX_TOPICS, sizeof(t->by_id[0]));
    struct sb_topic_index *ix = index_new(INITIAL_INDEX_SLOTS);
    if (!t->by_id || !ix) {
        free(t->by_id);
        free(ix);
        return -ENOMEM;
    }
    for (uint32_t i = 0; i < SB_MAX_TOPICS; i++)
        atomic_init(&t->by_id[i], NULL);
    atomic_init(&t->index, ix);
    int rc = pthread_mutex_init(&t->lock, NULL);
    if (rc) {
        free(t->by_id);
        free(ix);
        return -rc;
    }
    return 0;
}

static void topic_free(struct sb_topic *topic)
{
    for (uint32_t p = 0; p < topic->partition_count; p++) {
        struct sb_partition *part = &topic->partitions[p];
        if (part->log_ready)
            sb_memlog_destroy(&part->log);
        sb_plog_close(part->plog);
        free(part->handlers);
        free(part->cursors);
        free(part->server_state);
    }
    free(topic->partitions);
    free(topic);
}

void sb_topic_table_destroy(struct sb_topic_table *t)
{
    for (uint32_t id = 0; id < t->count; id++)
        topic_free(atomic_load_explicit(&t->by_id[id], memory_order_relaxed));
    struct sb_topic_index *ix = atomic_load_explicit(&t->index, memory_order_relaxed);
    while (ix) {
        struct sb_topic_index *next = ix->retired_next;
        free(ix);
        ix = next;
    }
    free(t->by_id);
    pthread_mutex_destroy(&t->lock);
}

/* Place @topic in @ix (caller holds the lock; ix has a free slot). */
static void index_insert(struct sb_topic_index *ix, struct sb_topic *topic)
{
    uint32_t i = name_hash(topic->name) & ix->mask;
    /* Relaxed loads: only writers (under the lock) fill slots. */
    while (atomic_load_explicit(&ix->slots[i], memory_order_relaxed))
        i = (i + 1) & ix->mask;
    /* Release pairs with the acquire load in sb_topic_find(): the topic is complete first. */
    atomic_store_explicit(&ix->slots[i], topic, memory_order_release);
}

struct sb_topic *sb_topic_find(struct sb_topic_table *t, const char *name)
{
    /* Acquire pairs with the release store of a new index in sb_topic_table_add(). */
    struct sb_topic_index *ix = atomic_load_explicit(&t->index, memory_order_acquire);
    uint32_t i = name_hash(name) & ix->mask;
    for (;;) {
        /* Acquire pairs with the release store in index_insert(). */
        struct sb_topic *topic = atomic_load_explicit(&ix->slots[i], memory_order_acquire);
        if (!topic)
            return NULL;
        if (!strcmp(topic->name, name))
            return topic;
        i = (i + 1) & ix->mask;
    }
}

int sb_topic_table_remove_locked(struct sb_topic_table *t, struct sb_topic *topic)
{
    /* Relaxed: the index pointer only changes under the lock the caller holds. */
    struct sb_topic_index *ix = atomic_load_explicit(&t->index, memory_order_relaxed);
    struct sb_topic_index *fresh = index_new(ix->mask + 1);
    if (!fresh)
        return -ENOMEM;
    /* Release pairs with sb_topic_is_deleted()'s acquire load. */
    atomic_store_explicit(&topic->deleted, true, memory_order_release);
    for (uint32_t id = 0; id < t->count; id++) {
        struct sb_topic *other = atomic_load_explicit(&t->by_id[id], memory_order_relaxed);
        if (other && !atomic_load_explicit(&other->deleted, memory_order_relaxed))
            index_insert(fresh, other);
    }
    /* Readers still in the old index may find the topic a little longer: they see it
     * deleted. Release pairs with the acquire load in sb_topic_find(). */
    fresh->retired_next = ix;
    atomic_store_explicit(&t->index, fresh, memory_order_release);
    return 0;
}

static struct sb_topic *topic_new(const char *name, uint32_t id, uint32_t partitions,
                                  const struct sb_topic_config *cfg, unsigned shard_count)
{
    struct sb_topic *topic = calloc(1, sizeof(*topic));
    if (!topic)
        return NULL;
    size_t bytes = (size_t)partitions * sizeof(struct sb_partition);
    topic->partitions = aligned_alloc(SB_CACHE_GUARD, bytes);
    if (!topic->partitions) {
        free(topic);
        return NULL;
    }
    memset(topic->partitions, 0, bytes);
    strcpy(topic->name, name);
    topic->id = id;
    topic->partition_count = partitions;
    if (cfg)
        topic->cfg = *cfg;
    else
        topic->cfg = (struct sb_topic_config){-1, -1};
    for (uint32_t p = 0; p < partitions; p++) {
        topic->partitions[p].topic = topic;
        topic->partitions[p].index = p;
        topic->partitions[p].owner = sb_partition_owner(topic, p, shard_count);
        topic->partitions[p].slot = -1;
        topic->partitions[p].slot_fd = -1;
    }
    return topic;
}

int sb_topic_table_add(struct sb_topic_table *t, const char *name, uint32_t partitions,
                       const struct sb_topic_config *cfg, struct sb_topic **out)
{
    return sb_topic_table_add_prepared(t, name, partitions, false, cfg, NULL, NULL, out);
}

int sb_topic_table_add_prepared(struct sb_topic_table *t, const char *name, uint32_t partitions,
                                bool nowait, const struct sb_topic_config *cfg,
                                int (*prepare)(struct sb_topic *topic, void *ctx), void *ctx,
                                struct sb_topic **out)
{
    if (!sb_topic_name_valid(name) || partitions == 0 || partitions > SB_MAX_PARTITIONS)
        return -EINVAL;
    if (nowait) {
        if (pthread_mutex_trylock(&t->lock))
            return sb_topic_find(t, name) ? -EEXIST : -EAGAIN;
    } else {
        pthread_mutex_lock(&t->lock);
    }
    int rc = 0;
    struct sb_topic *topic = NULL;
    if (sb_topic_find(t, name)) {
        rc = -EEXIST;
        goto out;
    }
    if (t->count >= SB_MAX_TOPICS) {
        rc = -ENOSPC;
        goto out;
    }
    /* Relaxed: the index pointer only changes under the lock we hold. */
    struct sb_topic_index *ix = atomic_load_explicit(&t->index, memory_order_relaxed);
    if ((t->count + 1) * 2 > ix->mask + 1) {
        /* Grow: build a bigger index, publish it, keep the old one for readers still in it. */
        struct sb_topic_index *bigger = index_new((ix->mask + 1) * 2);
        if (!bigger) {
            rc = -ENOMEM;
            goto out;
        }
        for (uint32_t id = 0; id < t->count; id++) {
            /* Relaxed: written under the lock we hold. A deleted topic stays out of the index
             * (sb_topic_table_remove_locked()). */
            struct sb_topic *other = atomic_load_explicit(&t->by_id[id], memory_order_relaxed);
            if (!atomic_load_explicit(&other->deleted, memory_order_relaxed))
                index_insert(bigger, other);
        }
        bigger->retired_next = ix;
        /* Release pairs with the acquire load in sb_topic_find(). */
        atomic_store_explicit(&t->index, bigger, memory_order_release);
        ix = bigger;
    }
    topic = topic_new(name, t->count, partitions, cfg, t->shard_count);
    if (!topic) {
        rc = -ENOMEM;
        goto out;
    }
    if (prepare && (rc = prepare(topic, ctx)) != 0) {
        topic_free(topic);
        topic = NULL;
        goto out;
    }
    /* Release pairs with the acquire load in sb_topic_by_id(). */
    atomic_store_explicit(&t->by_id[topic->id], topic, memory_order_release);
    index_insert(ix, topic);
    t->count++;
out:
    pthread_mutex_unlock(&t->lock);
    if (rc == 0 && out)
        *out = topic;
    return rc;
}
