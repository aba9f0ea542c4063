/*
 * handler.c - handlers: functions run on the shard that owns each partition, and the derived
 * events they publish through the shard -> shard rings.
 */
#include <errno.h>
#include <stdlib.h>

#include "bus.h"
#include "wire.h"

struct handler_request {
    struct sb_topic *topic;
    struct sb_handler_entry entry;
};

/* Shard thread: append the handler to every partition of the topic owned here. */
static int handler_add_on_shard(struct sb_shard *s, void *arg)
{
    struct handler_request *req = arg;
    struct sb_topic *topic = req->topic;
    if (sb_topic_is_closing(topic))
        return -ENOENT; /* being deleted */
    for (uint32_t p = 0; p < topic->partition_count; p++) {
        if (sb_partition_owner(topic, p, s->shard_count) != s->id)
            continue;
        struct sb_partition *part = &topic->partitions[p];
        if (part->handler_count == part->handler_cap) {
            uint32_t cap = part->handler_cap ? part->handler_cap * 2 : 2;
            struct sb_handler_entry *h = realloc(part->handlers, cap * sizeof(*h));
            if (!h)
                return -ENOMEM; /* partitions done so far keep it; documented as -ENOMEM */
            part->handlers = h;
            part->handler_cap = cap;
        }
        part->handlers[part->handler_count++] = req->entry;
    }
    return 0;
}

int sb_handler_add(struct sb_bus *bus, const char *topic_name, sb_handler_fn fn, void *ctx)
{
    if (!bus || !topic_name || !fn)
        return -EINVAL;
    if (sb_current_shard())
        return -EDEADLK;
    struct sb_topic *topic = sb_topic_find(&bus->topics, topic_name);
    if (!topic)
        return -ENOENT;
    struct handler_request req = {topic, {fn, ctx}};
    for (unsigned i = 0; i < bus->shard_count; i++) {
        int rc = sb_shard_call(bus->shards[i], handler_add_on_shard, &req);
        if (rc)
            return rc;
    }
    return 0;
}

int sb_shard_publish(struct sb_shard *shard, const char *topic_name, const void *key,
                     size_t key_len, const void *value, size_t value_len)
{
    if (!shard || !topic_name)
        return -EINVAL;
    if (sb_current_shard() != shard)
        return -EPERM;
    struct sb_bus *bus = shard->bus;
    int rc = sb_event_check(bus, key, key_len, value, value_len);
    if (rc)
        return rc;
    struct sb_topic *topic = sb_topic_find(&bus->topics, topic_name);
    if (!topic)
        return -ENOENT;
    uint32_t partition = key ? sb_partition_for_key(key, key_len, topic->partition_count)
                             : shard->keyless_rr++ % topic->partition_count;
    struct sb_wire_event hdr = {
        .topic_id = topic->id,
        .partition = partition,
        .key_len = (uint32_t)key_len,
        .value_len = (uint32_t)value_len,
        .flags = (key ? 0 : SB_WIRE_KEY_NULL) | (value ? 0 : SB_WIRE_VALUE_NULL),
    };
    return sb_outbox_push(shard, sb_partition_owner(topic, partition, shard->shard_count), &hdr,
                          key, value);
}

unsigned sb_shard_id(const struct sb_shard *shard)
{
    return shard->id;
}
