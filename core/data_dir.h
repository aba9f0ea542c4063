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

/** sb_data_dir_write_topics - rewrite the topics file (deleted topics left out). Returns 0 or a
 *  negative errno. Under the topic table's lock. */
int sb_data_dir_write_topics(struct sb_bus *bus);

/**
 * sb_data_dir_remove_partition - close @plog and remove its folder (renamed to
 * "<folder>.deleted" first, then emptied and removed). Owning shard's thread, with nothing of
 * the partition in flight. Returns 0 or a negative errno (@plog is closed either way).
 */
int sb_data_dir_remove_partition(struct sb_bus *bus, struct sb_plog *plog);

#endif /* SB_DATA_DIR_H */
