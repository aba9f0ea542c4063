/*
 * shard_direct.h - a group commit's writes to segment files opened with O_DIRECT.
 *
 * A direct write must start and end on SB_LOG_DIRECT_BLOCK boundaries, from a buffer aligned
 * the same way, while a group's batches start anywhere in their files. So each file's batches
 * of the group (one run: a partition's batches are placed one after the other) are copied
 * into a staging buffer behind the bytes the file already holds in the run's first block
 * (sb_plog_direct_head()) and followed by zeros up to the next block boundary, and the run goes
 * to the disk as one write of whole blocks (partition_log.h: the padding). The next group
 * rewrites the last block with the same bytes and more; the writer never has two groups'
 * writes in flight at once (log_writer.h: a group is submitted only once the older one's
 * writes are done), so those writes never race.
 *
 * The copy costs a memcpy of every byte, far less CPU than a write into the page cache, and
 * the batches keep being built in the registered arena as for buffered files.
 *
 * Single-threaded: the owning shard thread only.
 */
#ifndef SB_SHARD_DIRECT_H
#define SB_SHARD_DIRECT_H

#include <stddef.h>

#include "log_writer.h"

struct sb_sealed_batch; /* shard.h */

/** A shard's staging buffer for direct writes (zeroed = empty; grows on demand). */
struct sb_direct_stage {
    unsigned char *buf; /* SB_LOG_DIRECT_BLOCK-aligned */
    size_t cap;         /* grows to the largest group staged so far; never shrinks */
    uint64_t calls;     /* sb_direct_stage_add() calls so far (tags partitions' runs) */
};

/**
 * sb_direct_stage_add - stage the batches of @batches[0..@count) marked direct (placed, their
 * base offsets set, slot known) and add one write per run to @w's group being collected.
 * Only while no write of an older group is in flight (sb_log_writer_can_submit()): the staging
 * buffer is reused. Returns 0, -ENOMEM, -EIO (a file's batches do not follow one another: not
 * written, since two writes of one block could race), or a negative errno reading a run's
 * first block back from its file; on error some writes may have been added (the caller fails
 * the group).
 */
int sb_direct_stage_add(struct sb_direct_stage *stage, struct sb_log_writer *w,
                        struct sb_sealed_batch *batches, size_t count);

/** sb_direct_stage_free - free the staging buffer. */
void sb_direct_stage_free(struct sb_direct_stage *stage);

#endif /* SB_SHARD_DIRECT_H */
