/*
 * data_dir.h - the bus's folder on disk: the lock that keeps a second bus out, the topics file
 * (names, partition counts, per-topic settings), and each partition's log.
 */
#ifndef SB_DATA_DIR_H
#define SB_DATA_DIR_H

#include "bus.h"

/**
 * sb_data_dir_open - create the folder if needed, take its lock, reload every topic listed in
 * "topics" and recover their partitions' logs. Returns 0, -EBUSY (another bus holds the lock),
 * -EBADMSG (a malformed topics file, or corruption recovery refuses to drop: reported through
 * cfg.log_fn), or another negative errno. Before the shards start.
 */
int sb_data_dir_open(struct sb_bus *bus);

/**
 * sb_data_dir_close - after the shards stopped: record each partition's recovery point (all of
 * it is written and, under every durability but NONE, synced) and release the lock.
 */
void sb_data_dir_close(struct sb_bus *bus);

/**
 * sb_data_dir_prepare_topic - open the logs of a topic being created and rewrite the topics
 * file with it (as sb_topic_table_add_prepared()'s prepare; @ctx is the bus). Runs under the
 * topic table's lock. Returns 0 or a negative errno (nothing is left behind but empty folders).
 */
int sb_data_dir_prepare_topic(struct sb_topic *topic, void *ctx);

/**
 * sb_data_dir_retire_partition - the first step of deleting a topic's partition: close @plog
 * and rename its folder to "<folder>.deleted" (not yet removed, and not yet synced: see
 * sb_data_dir_commit_delete()). Owning shard's thread, with nothing of the partition in flight.
 * Returns 0 or a negative errno (@plog is closed either way).
 */
int sb_data_dir_retire_partition(struct sb_bus *bus, struct sb_plog *plog);

/**
 * sb_data_dir_commit_delete - once every partition of @topic (marked deleted) is retired: sync
 * the data dir (the renames), rewrite the topics file without the topic (the commit point),
 * then remove the ".deleted" folders. A crash before the commit point brings the topic back
 * whole at the next open (its folders are renamed back); after it, the next open removes what
 * is left. Under the topic table's lock. Returns 0 or a negative errno (before the commit: the
 * folders are kept; after it: a folder that could not be removed, cleared at the next open).
 */
int sb_data_dir_commit_delete(struct sb_bus *bus, const struct sb_topic *topic);

#endif /* SB_DATA_DIR_H */
