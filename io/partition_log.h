/*
 * partition_log.h - one partition's log on disk: Kafka's layout and formats.
 *
 *   <data_dir>/<topic>-<partition>/00000000000000000000.log        record batches (magic 2)
 *                                  00000000000000000000.index      sparse offset index
 *                                  00000000000000000000.timeindex  sparse time index
 *
 * Segments are named by the 20-digit offset of their first record. The .log holds record batches
 * byte for byte as a Kafka broker stores them; its blocks are preallocated (fallocate with
 * FALLOC_FL_KEEP_SIZE, so the file size stays the logical size). The index files hold
 * Kafka's entries (offset index: relative offset u32 + position u32, big-endian; time index:
 * timestamp i64 + relative offset u32) one per index_interval_bytes of log; they are written
 * without syncing and rebuilt from the log whenever they do not match it.
 *
 * Opening a partition log recovers it: the last segment is read batch by batch, each CRC and
 * offset checked; a torn tail (an incomplete or invalid batch with nothing valid after it) is
 * truncated and reported; invalid bytes followed by valid batches are corruption, reported
 * with the file and byte position, and the open fails rather than serve or drop them. So does
 * a log that ends before its recovery point (the offsets a clean close synced): synced events
 * are missing.
 *
 * The writer owns the appends: sb_plog_reserve() places a batch (rolling to a new segment when
 * the active one is full), the caller writes it there (io_uring, in the shard), and
 * sb_plog_commit() records it once written, in reservation order.
 *
 * Direct I/O (cfg.direct_io): the active segment also has an O_DIRECT file descriptor, which
 * sb_plog_reserve() hands out for writing, when the file system supports O_DIRECT with
 * SB_LOG_DIRECT_BLOCK alignment (else the segment is written through the page cache as
 * without the option). Such writes cover whole SB_LOG_DIRECT_BLOCK blocks: a write starts at
 * the block holding its first byte, rewriting the log's bytes before it in that block with
 * the same values (sb_plog_direct_head() supplies them), and ends with zeros up to the next
 * block boundary. So the file of a segment being written may end with up to
 * SB_LOG_DIRECT_BLOCK - 1 zero bytes after its last batch: the padding. It is cut off when the
 * segment is closed (sb_plog_trim_closed(), sb_plog_close()), and recovery and `log verify`
 * accept it (sb_log_is_padding()) and recovery cuts it, so a file holds batches only once no
 * writer uses it. Readers never look past a segment's committed size.
 *
 * Single-threaded: one thread (the owning shard) uses a struct sb_plog at a time.
 */
#ifndef SB_PARTITION_LOG_H
#define SB_PARTITION_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <shardbus.h>

#include "record_batch.h"

struct sb_log_config {
    uint64_t segment_bytes;        /* roll to a new segment past this size; default 64 MiB */
    uint32_t index_interval_bytes; /* log bytes between index entries; default 4096 */
    int64_t retention_bytes;       /* keep at most this much (whole segments); -1 = no limit */
    int64_t retention_ms;          /* delete segments whose newest record is older; -1 = no limit */
    bool preallocate;              /* fallocate each segment's blocks up front; default true */
    bool direct_io;                /* write through O_DIRECT where supported; default false */
};

/** Block size of direct writes: their file positions, lengths and buffers are multiples. */
#define SB_LOG_DIRECT_BLOCK 4096u

/** sb_log_config_init - the defaults above. */
void sb_log_config_init(struct sb_log_config *cfg);

/** Where recovery and retention report what they did (fn may be NULL: silent). */
struct sb_log_reporter {
    sb_log_fn fn;
    void *ctx;
};

struct sb_index_entry {
    int64_t offset;    /* absolute offset of the first record of the batch */
    uint64_t position; /* byte position of that batch in the .log */
    int64_t max_timestamp; /* largest timestamp up to and including that batch */
};

struct sb_segment {
    int64_t base_offset;
    int64_t next_offset;     /* one past the last record in the segment */
    uint64_t size;           /* bytes of committed batches */
    uint64_t reserved;       /* bytes placed by sb_plog_reserve() (>= size) */
    uint64_t allocated;      /* bytes preallocated */
    int64_t max_timestamp;   /* -1 while empty */
    int log_fd;
    int direct_fd;           /* O_DIRECT descriptor for writes (active segment), or -1 */
    int index_fd;
    int time_fd;
    uint64_t bytes_since_index;
    struct sb_index_entry *index; /* in memory as well: lookups never read the index files */
    size_t index_count, index_cap;
};

struct sb_plog {
    char *dir;                 /* <data_dir>/<topic>-<partition> */
    char *topic;
    uint32_t partition;
    int dir_fd;
    struct sb_log_config cfg;
    struct sb_log_reporter reporter;
    struct sb_segment *segments; /* oldest first; the last is the active one */
    size_t segment_count, segment_cap;
    int64_t start_offset;      /* oldest retained offset */
    int64_t next_offset;       /* offset of the next record to commit */
    int64_t reserved_offset;   /* offset after the last reserved batch */
    size_t untrimmed;          /* closed segments that may still end with direct padding */
    bool direct_reported;      /* "no direct I/O" was reported once */
    /* The bytes of the last block written with direct I/O up to where the writes end, so the
     * next write can start with them (sb_plog_direct_head()); valid while head_fd >= 0. */
    unsigned char *head;
    int head_fd;
    uint64_t head_end;
};

/**
 * sb_plog_open - open (creating if missing) and recover the log of @topic / @partition under
 * @data_dir. Returns 0, or a negative errno: -EBADMSG (corruption that is not a torn tail; the
 * reporter names the file and byte position), -ENOSPC, -EACCES, ... from the file system.
 */
int sb_plog_open(const char *data_dir, const char *topic, uint32_t partition,
                 const struct sb_log_config *cfg, const struct sb_log_reporter *reporter,
                 struct sb_plog **out);

/** sb_plog_close - close the files (after every reserved batch was committed) and free. */
void sb_plog_close(struct sb_plog *log);

/**
 * sb_plog_reserve - place the next batch of @len bytes holding @count records: rolls to a new
 * segment when the active one would pass segment_bytes. Returns 0 with the file descriptor and
 * byte position to write at and the batch's base offset, or a negative errno from creating a
 * segment (-ENOSPC...).
 */
int sb_plog_reserve(struct sb_plog *log, size_t len, int32_t count, int *fd, uint64_t *position,
                    int64_t *base_offset);

/**
 * sb_plog_commit - the oldest reserved batch (@info, at @position) is written: count it in
 * the segment, add index entries. Returns 0 or a negative errno from writing the index files
 * (not fatal: the indexes are rebuilt at the next open).
 */
int sb_plog_commit(struct sb_plog *log, const struct sb_batch_info *info, uint64_t position);

/**
 * sb_plog_abandon - forget every reserved, uncommitted batch (their writes failed): the next
 * reservation reuses their place and offsets.
 */
void sb_plog_abandon(struct sb_plog *log);

/**
 * sb_plog_fd_is_direct - is @fd, just returned by sb_plog_reserve() (before the next
 * reservation), an O_DIRECT descriptor, so that writes to it must cover whole
 * SB_LOG_DIRECT_BLOCK blocks (see above)?
 */
bool sb_plog_fd_is_direct(const struct sb_plog *log, int fd);

/**
 * sb_plog_direct_head - the log's bytes from the start of the SB_LOG_DIRECT_BLOCK block that
 * holds @position up to @position (position % SB_LOG_DIRECT_BLOCK of them), into @dst, for a
 * direct write to @fd starting at @position: from what sb_plog_direct_remember() kept, else
 * read from the file. Returns 0 or a negative errno (-EIO when the file is shorter).
 */
int sb_plog_direct_head(struct sb_plog *log, int fd, uint64_t position, unsigned char *dst);

/**
 * sb_plog_direct_remember - a direct write to @fd now ends at @end: keep the bytes of its last
 * block before @end, @block (end % SB_LOG_DIRECT_BLOCK bytes, starting at the block's start),
 * for the next write's sb_plog_direct_head(). Out of memory: nothing kept (the next head is
 * read from the file).
 */
void sb_plog_direct_remember(struct sb_plog *log, int fd, uint64_t end, const unsigned char *block);

/**
 * sb_plog_trim_closed - cut the direct padding off every closed segment whose reserved batches
 * are all committed (so no write to it is in flight), and close its O_DIRECT descriptor.
 * Returns 0 or the first negative errno of ftruncate (the padding then stays: harmless,
 * recovery cuts it).
 */
int sb_plog_trim_closed(struct sb_plog *log);

/**
 * sb_plog_end_direct - cut the direct padding off every segment (every reserved batch must be
 * committed) and close the O_DIRECT descriptors: the files hold whole batches only. Appends
 * after it go through the page cache. sb_plog_close() does it too; a bus does it before it
 * releases the data dir's lock, so that no cut can land after another process took over.
 * Returns 0 or the first negative errno of ftruncate.
 */
int sb_plog_end_direct(struct sb_plog *log);

/**
 * sb_log_is_padding - are the @len bytes at @tail, which end a segment file of @file_size
 * bytes, direct padding: fewer than SB_LOG_DIRECT_BLOCK, all zero, the file size a multiple
 * of SB_LOG_DIRECT_BLOCK? (A valid batch is never all zero: it starts with a non-zero length.)
 */
bool sb_log_is_padding(const unsigned char *tail, uint64_t len, uint64_t file_size);

/** A position in the log: the segment and byte position of the batch holding an offset. */
struct sb_plog_pos {
    size_t segment;
    uint64_t position;
};

/**
 * sb_plog_seek - the batch containing @offset, or the first batch after it. Returns 0, -ERANGE
 * when offset < start_offset, -ENODATA when offset >= next_offset.
 */
int sb_plog_seek(const struct sb_plog *log, int64_t offset, struct sb_plog_pos *out);

/**
 * sb_plog_offset_for_time - the first offset whose batch's max timestamp is >= @timestamp_ms
 * (Kafka's ListOffsets by time), or next_offset when none.
 */
int64_t sb_plog_offset_for_time(const struct sb_plog *log, int64_t timestamp_ms);

/**
 * sb_plog_enforce_retention - delete whole old segments beyond retention_bytes or older than
 * retention_ms (never the active one, nor one a reserved batch is still being written to);
 * advances start_offset. Returns the number of segments deleted or a negative errno.
 */
int sb_plog_enforce_retention(struct sb_plog *log, int64_t now_ms);

/**
 * sb_plog_write_recovery_point - record that every offset below @offset is synced, in the
 * partition's "recovery-point" file (written to a temporary file, synced, renamed). Recovery
 * treats a bad batch below it as corruption (refused) and above it as a torn tail
 * (truncated). Returns 0 or a negative errno.
 */
int sb_plog_write_recovery_point(struct sb_plog *log, int64_t offset);

/** sb_segment_file_name - "<20-digit base>.<ext>" into @buf (at least 32 bytes). */
void sb_segment_file_name(char *buf, size_t cap, int64_t base_offset, const char *ext);

#endif /* SB_PARTITION_LOG_H */
