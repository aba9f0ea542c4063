/*
 * partition_log.c - segments, recovery, indexes and retention of one partition's log; see
 * partition_log.h.
 */
#include "partition_log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "report.h"
#include "varint.h"

#define DEFAULT_SEGMENT_BYTES (64u << 20)
#define DEFAULT_INDEX_INTERVAL 4096u
#define OFFSET_INDEX_ENTRY 8
#define TIME_INDEX_ENTRY 12
/* Largest batch recovery will read: anything claiming more is not a batch we wrote. */
#define MAX_BATCH_BYTES (256u << 20)

void sb_log_config_init(struct sb_log_config *cfg)
{
    cfg->segment_bytes = DEFAULT_SEGMENT_BYTES;
    cfg->index_interval_bytes = DEFAULT_INDEX_INTERVAL;
    cfg->retention_bytes = -1;
    cfg->retention_ms = -1;
    cfg->preallocate = true;
    cfg->direct_io = false;
}

void sb_segment_file_name(char *buf, size_t cap, int64_t base_offset, const char *ext)
{
    snprintf(buf, cap, "%020" PRId64 ".%s", base_offset, ext);
}


#define report(log, level, ...) sb_report((log)->reporter.fn, (log)->reporter.ctx, level, __VA_ARGS__)

/* pread all of @len bytes unless the file ends: returns the bytes read or -errno. */
static ssize_t pread_full(int fd, void *buf, size_t len, uint64_t pos)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pread(fd, (char *)buf + done, len - done, (off_t)(pos + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        if (n == 0)
            break;
        done += (size_t)n;
    }
    return (ssize_t)done;
}

static int pwrite_full(int fd, const void *buf, size_t len, uint64_t pos)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = pwrite(fd, (const char *)buf + done, len - done, (off_t)(pos + done));
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -errno;
        }
        done += (size_t)n;
    }
    return 0;
}

static int segment_index_push(struct sb_segment *seg, int64_t offset, uint64_t position,
                              int64_t max_timestamp)
{
    if (seg->index_count == seg->index_cap) {
        size_t cap = seg->index_cap ? seg->index_cap * 2 : 64;
        struct sb_index_entry *ix = realloc(seg->index, cap * sizeof(*ix));
        if (!ix)
            return -ENOMEM;
        seg->index = ix;
        seg->index_cap = cap;
    }
    seg->index[seg->index_count++] = (struct sb_index_entry){offset, position, max_timestamp};
    return 0;
}

/* Append one entry to both index files (buffered; rebuilt from the log if lost). */
static int segment_index_write(struct sb_segment *seg, const struct sb_index_entry *e)
{
    unsigned char off[OFFSET_INDEX_ENTRY], tim[TIME_INDEX_ENTRY];
    uint32_t rel = (uint32_t)(e->offset - seg->base_offset);
    sb_be32_put(off, rel);
    sb_be32_put(off + 4, (uint32_t)e->position);
    sb_be64_put(tim, (uint64_t)e->max_timestamp);
    sb_be32_put(tim + 8, rel);
    size_t n = seg->index_count - 1;
    int rc = pwrite_full(seg->index_fd, off, sizeof(off), n * OFFSET_INDEX_ENTRY);
    if (!rc)
        rc = pwrite_full(seg->time_fd, tim, sizeof(tim), n * TIME_INDEX_ENTRY);
    return rc;
}

/* Count a batch (at @position) in @seg: size, offsets, index entries. */
static int segment_account(struct sb_segment *seg, const struct sb_batch_info *info,
                           uint64_t position, uint32_t index_interval, bool write_index)
{
    int rc = 0;
    if (info->max_timestamp > seg->max_timestamp)
        seg->max_timestamp = info->max_timestamp;
    if (seg->index_count == 0 || seg->bytes_since_index >= index_interval) {
        rc = segment_index_push(seg, info->base_offset, position, seg->max_timestamp);
        if (!rc && write_index)
            rc = segment_index_write(seg, &seg->index[seg->index_count - 1]);
        seg->bytes_since_index = 0;
    }
    seg->bytes_since_index += info->total_bytes;
    seg->size = position + info->total_bytes;
    seg->next_offset = info->base_offset + info->last_offset_delta + 1;
    return rc;
}

static void segment_close(struct sb_segment *seg)
{
    if (seg->log_fd >= 0)
        close(seg->log_fd);
    if (seg->direct_fd >= 0)
        close(seg->direct_fd);
    if (seg->index_fd >= 0)
        close(seg->index_fd);
    if (seg->time_fd >= 0)
        close(seg->time_fd);
    free(seg->index);
    memset(seg, 0, sizeof(*seg));
    seg->log_fd = seg->direct_fd = seg->index_fd = seg->time_fd = -1;
}

static int open_at(int dir_fd, int64_t base, const char *ext, int flags)
{
    char name[64];
    sb_segment_file_name(name, sizeof(name), base, ext);
    int fd = openat(dir_fd, name, flags | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

static int segment_open_files(struct sb_plog *log, struct sb_segment *seg, int64_t base,
                              bool create)
{
    memset(seg, 0, sizeof(*seg));
    seg->log_fd = seg->direct_fd = seg->index_fd = seg->time_fd = -1;
    seg->base_offset = base;
    seg->next_offset = base;
    seg->max_timestamp = -1;
    int flags = O_RDWR | (create ? O_CREAT | O_EXCL : 0);
    int fd = open_at(log->dir_fd, base, "log", flags);
    if (fd < 0)
        return fd;
    seg->log_fd = fd;
    fd = open_at(log->dir_fd, base, "index", O_RDWR | O_CREAT);
    if (fd < 0)
        return fd;
    seg->index_fd = fd;
    fd = open_at(log->dir_fd, base, "timeindex", O_RDWR | O_CREAT);
    if (fd < 0)
        return fd;
    seg->time_fd = fd;
    return 0;
}

/* Rewrite both index files from the in-memory entries. */
static int segment_index_rewrite(struct sb_segment *seg)
{
    if (ftruncate(seg->index_fd, 0) || ftruncate(seg->time_fd, 0))
        return -errno;
    size_t count = seg->index_count;
    for (size_t i = 0; i < count; i++) {
        seg->index_count = i + 1; /* segment_index_write() writes entry index_count - 1 */
        int rc = segment_index_write(seg, &seg->index[i]);
        if (rc)
            return rc;
    }
    seg->index_count = count;
    return 0;
}

/* Do the index files hold exactly the entries rebuilt in memory? */
static bool segment_index_matches(struct sb_segment *seg)
{
    struct stat st_off, st_time;
    if (fstat(seg->index_fd, &st_off) || fstat(seg->time_fd, &st_time))
        return false;
    if ((uint64_t)st_off.st_size != seg->index_count * OFFSET_INDEX_ENTRY ||
        (uint64_t)st_time.st_size != seg->index_count * TIME_INDEX_ENTRY)
        return false;
    for (size_t i = 0; i < seg->index_count; i++) {
        unsigned char off[OFFSET_INDEX_ENTRY], tim[TIME_INDEX_ENTRY];
        if (pread_full(seg->index_fd, off, sizeof(off), i * OFFSET_INDEX_ENTRY) !=
                (ssize_t)sizeof(off) ||
            pread_full(seg->time_fd, tim, sizeof(tim), i * TIME_INDEX_ENTRY) != (ssize_t)sizeof(tim))
            return false;
        uint32_t rel = (uint32_t)(seg->index[i].offset - seg->base_offset);
        if (sb_be32_get(off) != rel || sb_be32_get(off + 4) != seg->index[i].position ||
            sb_be64_get(tim) != (uint64_t)seg->index[i].max_timestamp || sb_be32_get(tim + 8) != rel)
            return false;
    }
    return true;
}

/*
 * Read every batch of @seg from the start, checking CRCs and offset continuity, rebuilding the
 * index in memory. Stops at the end of the file or at the first batch that fails; *bad_pos and
 * *why then tell where and why (bad_pos == size on a clean end).
 */
bool sb_log_is_padding(const unsigned char *tail, uint64_t len, uint64_t file_size)
{
    if (len == 0 || len >= SB_LOG_DIRECT_BLOCK || file_size % SB_LOG_DIRECT_BLOCK != 0)
        return false;
    for (uint64_t i = 0; i < len; i++)
        if (tail[i])
            return false;
    return true;
}

/* Is what follows the last valid batch (@bad_pos) of @seg's file of *@file_size bytes direct
 * padding? Then cut it off (not synced: should it come back after a crash, it is cut again),
 * report the cut and set *@file_size to @bad_pos: a clean end. Returns 0 (cut, or not
 * padding: *@file_size unchanged) or a negative errno. */
static int segment_cut_padding(struct sb_plog *log, struct sb_segment *seg, uint64_t bad_pos,
                               off_t *file_size)
{
    unsigned char tail[SB_LOG_DIRECT_BLOCK];
    const uint64_t size = (uint64_t)*file_size, len = size - bad_pos;
    if (bad_pos >= size || len >= SB_LOG_DIRECT_BLOCK)
        return 0;
    ssize_t n = pread_full(seg->log_fd, tail, (size_t)len, bad_pos);
    if (n < 0)
        return (int)n;
    if ((uint64_t)n != len || !sb_log_is_padding(tail, len, size))
        return 0;
    if (ftruncate(seg->log_fd, (off_t)bad_pos))
        return -errno;
    char name[64];
    sb_segment_file_name(name, sizeof(name), seg->base_offset, "log");
    report(log, SB_LOG_INFO,
           "%s partition %u: %s/%s: cut %" PRIu64 " bytes of zero padding after the last batch "
           "(a direct write's, not data)",
           log->topic, log->partition, log->dir, name, len);
    *file_size = (off_t)bad_pos;
    return 0;
}

static int segment_scan(struct sb_plog *log, struct sb_segment *seg, uint64_t file_size,
                        uint64_t *bad_pos, const char **why)
{
    size_t cap = 1 << 20;
    unsigned char *buf = malloc(cap);
    if (!buf)
        return -ENOMEM;
    uint64_t pos = 0;
    int64_t expect = seg->base_offset;
    *why = NULL;
    while (pos < file_size) {
        struct sb_batch_info info;
        ssize_t n = pread_full(seg->log_fd, buf, SB_BATCH_HEADER_BYTES, pos);
        if (n < 0) {
            free(buf);
            return (int)n;
        }
        int rc = sb_batch_parse_header(buf, (size_t)n, &info, why);
        if (rc == 0 || (rc == -EAGAIN && (size_t)n == SB_BATCH_HEADER_BYTES)) {
            /* The header is complete: read the whole batch. */
            uint32_t total = (uint32_t)sb_be32_get(buf + SB_BATCH_LENGTH_OFFSET) +
                             SB_BATCH_LOG_OVERHEAD;
            if (total > MAX_BATCH_BYTES || total > file_size - pos) {
                *why = total > MAX_BATCH_BYTES ? "batch length beyond any batch we write"
                                               : "batch extends past the end of the file";
                break;
            }
            if (total > cap) {
                unsigned char *bigger = realloc(buf, total);
                if (!bigger) {
                    free(buf);
                    return -ENOMEM;
                }
                buf = bigger;
                cap = total;
            }
            n = pread_full(seg->log_fd, buf, total, pos);
            if (n < 0) {
                free(buf);
                return (int)n;
            }
            rc = sb_batch_validate(buf, (size_t)n, &info, why);
        }
        if (rc)
            break;
        if (info.base_offset != expect) {
            *why = "offsets not contiguous with the previous batch";
            break;
        }
        rc = segment_account(seg, &info, pos, log->cfg.index_interval_bytes, false);
        if (rc) {
            free(buf);
            return rc;
        }
        expect = seg->next_offset;
        pos += info.total_bytes;
    }
    free(buf);
    *bad_pos = pos;
    return 0;
}

static int fsync_dir(struct sb_plog *log)
{
    return fsync(log->dir_fd) ? -errno : 0;
}

/* Recover the last segment: keep what verifies, truncate a torn tail, refuse corruption. */
static int segment_recover(struct sb_plog *log, struct sb_segment *seg, int64_t recovery_point)
{
    struct stat st;
    if (fstat(seg->log_fd, &st))
        return -errno;
    uint64_t bad_pos;
    const char *why;
    int rc = segment_scan(log, seg, (uint64_t)st.st_size, &bad_pos, &why);
    if (rc)
        return rc;
    char name[64];
    sb_segment_file_name(name, sizeof(name), seg->base_offset, "log");
    /* Zeros where synced batches should be are corruption (below), never padding. */
    if (seg->next_offset >= recovery_point &&
        (rc = segment_cut_padding(log, seg, bad_pos, &st.st_size)))
        return rc;
    if (bad_pos < (uint64_t)st.st_size) {
        if (seg->next_offset < recovery_point) {
            /* Batches below the recovery point were synced: what fails there is corruption. */
            report(log, SB_LOG_ERROR,
                   "%s partition %u: %s/%s: corrupt batch at byte %" PRIu64
                   " (offset %" PRId64 "): %s; offsets up to %" PRId64
                   " were synced, refusing to drop them",
                   log->topic, log->partition, log->dir, name, bad_pos, seg->next_offset, why,
                   recovery_point - 1);
            return -EBADMSG;
        }
        report(log, SB_LOG_WARN,
               "%s partition %u: %s/%s: torn tail at byte %" PRIu64 " (%s): truncated %" PRIu64
               " bytes, the log now ends before offset %" PRId64,
               log->topic, log->partition, log->dir, name, bad_pos, why,
               (uint64_t)st.st_size - bad_pos, seg->next_offset);
        if (ftruncate(seg->log_fd, (off_t)bad_pos) || fdatasync(seg->log_fd))
            return -errno;
    }
    seg->reserved = seg->size;
    if (!segment_index_matches(seg)) {
        report(log, SB_LOG_INFO, "%s partition %u: %s: index rebuilt", log->topic,
               log->partition, name);
        rc = segment_index_rewrite(seg);
    }
    return rc;
}

/* An older segment: check its indexes against a scan only if they look wrong (cheap check). */
static int segment_load_closed(struct sb_plog *log, struct sb_segment *seg)
{
    struct stat st;
    if (fstat(seg->log_fd, &st))
        return -errno;
    uint64_t bad_pos;
    const char *why;
    /* A full scan keeps recovery simple and catches a corrupt closed segment at open time; it
     * reads each segment once (hardware CRC-32C runs at memory speed). */
    int rc = segment_scan(log, seg, (uint64_t)st.st_size, &bad_pos, &why);
    if (rc)
        return rc;
    /* A segment closed by a roll keeps its padding until every write to it is done (see
     * sb_plog_trim_closed()): a crash in between leaves it. */
    if ((rc = segment_cut_padding(log, seg, bad_pos, &st.st_size)))
        return rc;
    if (bad_pos < (uint64_t)st.st_size) {
        char name[64];
        sb_segment_file_name(name, sizeof(name), seg->base_offset, "log");
        report(log, SB_LOG_ERROR,
               "%s partition %u: %s/%s: corrupt batch at byte %" PRIu64 " (offset %" PRId64
               "): %s",
               log->topic, log->partition, log->dir, name, bad_pos, seg->next_offset, why);
        return -EBADMSG;
    }
    seg->reserved = seg->size;
    if (!segment_index_matches(seg))
        rc = segment_index_rewrite(seg);
    return rc;
}

/* Remove a segment's three files (missing ones are fine). Returns 0 or the first errno. */
static int unlink_segment_files(struct sb_plog *log, int64_t base)
{
    static const char *const exts[] = {"log", "index", "timeindex"};
    int rc = 0;
    for (int k = 0; k < 3; k++) {
        char name[64];
        sb_segment_file_name(name, sizeof(name), base, exts[k]);
        if (unlinkat(log->dir_fd, name, 0) && errno != ENOENT && !rc)
            rc = -errno;
    }
    return rc;
}

static int plog_push_segment(struct sb_plog *log, struct sb_segment **out)
{
    if (log->segment_count == log->segment_cap) {
        size_t cap = log->segment_cap ? log->segment_cap * 2 : 8;
        struct sb_segment *s = realloc(log->segments, cap * sizeof(*s));
        if (!s)
            return -ENOMEM;
        log->segments = s;
        log->segment_cap = cap;
    }
    *out = &log->segments[log->segment_count++];
    memset(*out, 0, sizeof(**out));
    (*out)->log_fd = (*out)->direct_fd = (*out)->index_fd = (*out)->time_fd = -1;
    return 0;
}

static int preallocate(struct sb_plog *log, struct sb_segment *seg)
{
    if (!log->cfg.preallocate)
        return 0;
    if (fallocate(seg->log_fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)log->cfg.segment_bytes) == 0) {
        seg->allocated = log->cfg.segment_bytes;
        return 0;
    }
    /* File systems without fallocate (some tmpfs versions, NFS): fine, just not preallocated. */
    return errno == EOPNOTSUPP ? 0 : -errno;
}

/* Give the active segment @seg its O_DIRECT descriptor when cfg.direct_io asks for one and
 * the file system takes direct writes of SB_LOG_DIRECT_BLOCK blocks; otherwise it is written
 * through the page cache (reported once per partition log). Never fails. */
static void segment_open_direct(struct sb_plog *log, struct sb_segment *seg)
{
    if (!log->cfg.direct_io || seg->direct_fd >= 0)
        return;
    const char *why = NULL;
#ifdef STATX_DIOALIGN
    struct statx stx;
    if (statx(seg->log_fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
        (stx.stx_mask & STATX_DIOALIGN)) {
        if (stx.stx_dio_offset_align == 0)
            why = "the file system does not support it";
        else if (stx.stx_dio_offset_align > SB_LOG_DIRECT_BLOCK ||
                 stx.stx_dio_mem_align > SB_LOG_DIRECT_BLOCK)
            why = "the file system needs a larger alignment";
    }
#endif
    char name[64];
    sb_segment_file_name(name, sizeof(name), seg->base_offset, "log");
    if (!why) {
        seg->direct_fd = openat(log->dir_fd, name, O_WRONLY | O_DIRECT | O_CLOEXEC);
        if (seg->direct_fd < 0)
            why = strerror(errno);
    }
    if (why && !log->direct_reported) {
        log->direct_reported = true;
        report(log, SB_LOG_INFO, "%s partition %u: %s/%s: no direct I/O (%s): writing through "
               "the page cache", log->topic, log->partition, log->dir, name, why);
    }
}

/* Close @seg's O_DIRECT descriptor (and forget the head kept for it). */
static void segment_drop_direct(struct sb_plog *log, struct sb_segment *seg)
{
    if (seg->direct_fd < 0)
        return;
    if (log->head_fd == seg->direct_fd)
        log->head_fd = -1;
    close(seg->direct_fd);
    seg->direct_fd = -1;
}

/* Create a new, empty segment starting at @base and make its existence durable. */
static int plog_create_segment(struct sb_plog *log, int64_t base)
{
    struct sb_segment *seg;
    int rc = plog_push_segment(log, &seg);
    if (rc)
        return rc;
    rc = segment_open_files(log, seg, base, true);
    if (!rc)
        rc = preallocate(log, seg);
    if (!rc)
        rc = fsync_dir(log);
    if (rc) {
        segment_close(seg);
        unlink_segment_files(log, base);
        log->segment_count--;
        return rc;
    }
    segment_open_direct(log, seg);
    if (log->segment_count > 1 && log->segments[log->segment_count - 2].direct_fd >= 0)
        log->untrimmed++; /* the segment this one follows: see sb_plog_trim_closed() */
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Base offsets of the .log files in the directory, sorted. */
static int list_segments(struct sb_plog *log, int64_t **bases, size_t *count)
{
    int fd = dup(log->dir_fd);
    if (fd < 0)
        return -errno;
    DIR *d = fdopendir(fd);
    if (!d) {
        close(fd);
        return -errno;
    }
    size_t n = 0, cap = 16;
    int64_t *list = malloc(cap * sizeof(*list));
    struct dirent *e;
    int rc = list ? 0 : -ENOMEM;
    while (!rc && (e = readdir(d))) {
        size_t len = strlen(e->d_name);
        if (len != 24 || strcmp(e->d_name + 20, ".log"))
            continue;
        char *end;
        long long base = strtoll(e->d_name, &end, 10);
        if (end != e->d_name + 20 || base < 0)
            continue;
        if (n == cap) {
            int64_t *bigger = realloc(list, cap * 2 * sizeof(*list));
            if (!bigger) {
                rc = -ENOMEM;
                break;
            }
            list = bigger;
            cap *= 2;
        }
        list[n++] = base;
    }
    closedir(d);
    if (rc) {
        free(list);
        return rc;
    }
    qsort(list, n, sizeof(*list), cmp_i64);
    *bases = list;
    *count = n;
    return 0;
}

/* "recovery-point": the offset below which everything was synced, updated by the owner. */
static int64_t read_recovery_point(struct sb_plog *log)
{
    int fd = openat(log->dir_fd, "recovery-point", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return 0;
    char buf[32] = {0};
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    close(fd);
    if (n <= 0)
        return 0;
    long long v = strtoll(buf, NULL, 10);
    return v > 0 ? v : 0;
}

static int plog_load(struct sb_plog *log)
{
    int64_t *bases = NULL;
    size_t count = 0;
    int rc = list_segments(log, &bases, &count);
    if (rc)
        return rc;
    int64_t recovery_point = read_recovery_point(log);
    for (size_t i = 0; i < count && !rc; i++) {
        struct sb_segment *seg;
        rc = plog_push_segment(log, &seg);
        if (!rc)
            rc = segment_open_files(log, seg, bases[i], false);
        if (!rc && i > 0 && seg->base_offset != log->segments[i - 1].next_offset) {
            report(log, SB_LOG_ERROR,
                   "%s partition %u: %s: segment starting at %" PRId64
                   " does not follow the previous one, which ends before %" PRId64,
                   log->topic, log->partition, log->dir, seg->base_offset,
                   log->segments[i - 1].next_offset);
            rc = -EBADMSG;
        }
        if (!rc)
            rc = (i + 1 == count) ? segment_recover(log, seg, recovery_point)
                                  : segment_load_closed(log, seg);
    }
    free(bases);
    if (rc)
        return rc;
    /* Every offset below the recovery point was synced by a clean close: a log that ends
     * before it (its last batches or its last segment gone, with no bad bytes left to show it)
     * lost synced events. Refused, as corruption below the recovery point is. */
    const int64_t end = log->segment_count ? log->segments[log->segment_count - 1].next_offset : 0;
    if (end < recovery_point) {
        report(log, SB_LOG_ERROR,
               "%s partition %u: %s: the log ends before offset %" PRId64
               ", but offsets up to %" PRId64 " were synced (recovery-point): synced events "
               "are missing, refusing to open",
               log->topic, log->partition, log->dir, end, recovery_point - 1);
        return -EBADMSG;
    }
    if (log->segment_count == 0)
        return plog_create_segment(log, 0);
    struct sb_segment *last = &log->segments[log->segment_count - 1];
    log->start_offset = log->segments[0].base_offset;
    log->next_offset = last->next_offset;
    log->reserved_offset = log->next_offset;
    if (log->cfg.preallocate && last->size < log->cfg.segment_bytes &&
        fallocate(last->log_fd, FALLOC_FL_KEEP_SIZE, 0, (off_t)log->cfg.segment_bytes) == 0)
        last->allocated = log->cfg.segment_bytes;
    segment_open_direct(log, last);
    return 0;
}

int sb_plog_open(const char *data_dir, const char *topic, uint32_t partition,
                 const struct sb_log_config *cfg, const struct sb_log_reporter *reporter,
                 struct sb_plog **out)
{
    struct sb_plog *log = calloc(1, sizeof(*log));
    if (!log)
        return -ENOMEM;
    log->dir_fd = -1;
    log->head_fd = -1;
    log->cfg = *cfg;
    if (reporter)
        log->reporter = *reporter;
    log->partition = partition;
    size_t len = strlen(data_dir) + strlen(topic) + 16;
    log->dir = malloc(len);
    log->topic = strdup(topic);
    int rc = (log->dir && log->topic) ? 0 : -ENOMEM;
    if (!rc) {
        snprintf(log->dir, len, "%s/%s-%u", data_dir, topic, partition);
        if (mkdir(log->dir, 0755) && errno != EEXIST)
            rc = -errno;
    }
    if (!rc) {
        log->dir_fd = open(log->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (log->dir_fd < 0)
            rc = -errno;
    }
    if (!rc)
        rc = plog_load(log);
    if (rc) {
        sb_plog_close(log);
        return rc;
    }
    *out = log;
    return 0;
}

void sb_plog_close(struct sb_plog *log)
{
    if (!log)
        return;
    /* Every batch is committed by now (no write in flight): the padding can go. Should the
     * cut fail, recovery makes it. (A bus cuts it earlier, before it lets go of the data
     * dir's lock: sb_data_dir_close().) */
    int rc = sb_plog_end_direct(log);
    if (rc)
        report(log, SB_LOG_WARN, "%s partition %u: %s: cannot cut the direct padding: %s",
               log->topic, log->partition, log->dir, strerror(-rc));
    for (size_t i = 0; i < log->segment_count; i++)
        segment_close(&log->segments[i]);
    free(log->head);
    free(log->segments);
    if (log->dir_fd >= 0)
        close(log->dir_fd);
    free(log->dir);
    free(log->topic);
    free(log);
}

int sb_plog_reserve(struct sb_plog *log, size_t len, int32_t count, int *fd, uint64_t *position,
                    int64_t *base_offset)
{
    struct sb_segment *seg = &log->segments[log->segment_count - 1];
    if (seg->reserved > 0 && seg->reserved + len > log->cfg.segment_bytes) {
        int rc = plog_create_segment(log, log->reserved_offset);
        if (rc)
            return rc;
        seg = &log->segments[log->segment_count - 1];
    }
    *fd = seg->direct_fd >= 0 ? seg->direct_fd : seg->log_fd;
    *position = seg->reserved;
    *base_offset = log->reserved_offset;
    seg->reserved += len;
    log->reserved_offset += count;
    return 0;
}

int sb_plog_commit(struct sb_plog *log, const struct sb_batch_info *info, uint64_t position)
{
    /* The batch belongs to the segment whose base is the largest not above its offset. */
    size_t i = log->segment_count;
    while (i > 1 && log->segments[i - 1].base_offset > info->base_offset)
        i--;
    struct sb_segment *seg = &log->segments[i - 1];
    int rc = segment_account(seg, info, position, log->cfg.index_interval_bytes, true);
    log->next_offset = info->base_offset + info->last_offset_delta + 1;
    return rc;
}

void sb_plog_abandon(struct sb_plog *log)
{
    /* Segments created for abandoned batches stay (empty); reservations restart at the end. */
    for (size_t i = 0; i < log->segment_count; i++)
        log->segments[i].reserved = log->segments[i].size;
    log->reserved_offset = log->next_offset;
    log->head_fd = -1; /* the kept head may hold bytes of the abandoned batches */
    struct sb_segment *last = &log->segments[log->segment_count - 1];
    if (last->size == 0 && last->base_offset != log->next_offset && log->segment_count > 1) {
        /* An empty segment whose base is past the real end would break continuity. */
        int64_t base = last->base_offset;
        segment_drop_direct(log, last);
        segment_close(last);
        log->segment_count--;
        unlink_segment_files(log, base);
        fsync_dir(log);
    }
}

bool sb_plog_fd_is_direct(const struct sb_plog *log, int fd)
{
    /* sb_plog_reserve() hands out the active segment's descriptor (after a roll, the new one):
     * one comparison, whatever the number of segments. */
    return fd >= 0 && log->segment_count &&
           log->segments[log->segment_count - 1].direct_fd == fd;
}

int sb_plog_direct_head(struct sb_plog *log, int fd, uint64_t position, unsigned char *dst)
{
    const size_t len = position % SB_LOG_DIRECT_BLOCK;
    if (len == 0)
        return 0;
    if (log->head_fd == fd && log->head_end == position) {
        memcpy(dst, log->head, len);
        return 0;
    }
    for (size_t i = log->segment_count; i-- > 0;) {
        const struct sb_segment *seg = &log->segments[i];
        if (seg->direct_fd != fd)
            continue;
        /* Through the buffered descriptor: the kernel keeps it coherent with direct writes. */
        ssize_t n = pread_full(seg->log_fd, dst, len, position - len);
        return n < 0 ? (int)n : (size_t)n == len ? 0 : -EIO;
    }
    return -EBADF;
}

void sb_plog_direct_remember(struct sb_plog *log, int fd, uint64_t end, const unsigned char *block)
{
    if (!log->head && !(log->head = malloc(SB_LOG_DIRECT_BLOCK))) {
        log->head_fd = -1;
        return;
    }
    memcpy(log->head, block, end % SB_LOG_DIRECT_BLOCK);
    log->head_fd = fd;
    log->head_end = end;
}

/* Cut the padding of the segments written directly before index @end whose reserved batches
 * are all committed, and close their O_DIRECT descriptors. Returns 0 or the first negative
 * errno of ftruncate (that padding stays: recovery cuts it). */
static int plog_cut_padding(struct sb_plog *log, size_t end)
{
    int first = 0;
    size_t left = 0;
    for (size_t i = 0; i < end; i++) {
        struct sb_segment *seg = &log->segments[i];
        if (seg->direct_fd < 0)
            continue;
        if (seg->reserved != seg->size) {
            left++; /* a write to it is still in flight */
            continue;
        }
        if (ftruncate(seg->log_fd, (off_t)seg->size) != 0 && !first)
            first = -errno;
        segment_drop_direct(log, seg);
    }
    log->untrimmed = left;
    return first;
}

int sb_plog_trim_closed(struct sb_plog *log)
{
    return log->segment_count ? plog_cut_padding(log, log->segment_count - 1) : 0;
}

int sb_plog_end_direct(struct sb_plog *log)
{
    return plog_cut_padding(log, log->segment_count);
}

int sb_plog_seek(const struct sb_plog *log, int64_t offset, struct sb_plog_pos *out)
{
    if (offset < log->start_offset)
        return -ERANGE;
    if (offset >= log->next_offset)
        return -ENODATA;
    size_t s = log->segment_count;
    while (s > 1 && log->segments[s - 1].base_offset > offset)
        s--;
    const struct sb_segment *seg = &log->segments[s - 1];
    /* Binary search the sparse index for the last entry at or below offset. */
    size_t lo = 0, hi = seg->index_count;
    while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        if (seg->index[mid].offset <= offset)
            lo = mid;
        else
            hi = mid;
    }
    out->segment = s - 1;
    out->position = seg->index_count ? seg->index[lo].position : 0;
    return 0;
}

int64_t sb_plog_offset_for_time(const struct sb_plog *log, int64_t timestamp_ms)
{
    for (size_t s = 0; s < log->segment_count; s++) {
        const struct sb_segment *seg = &log->segments[s];
        if (seg->max_timestamp < timestamp_ms)
            continue;
        for (size_t i = 0; i < seg->index_count; i++) {
            /* The entry's max_timestamp covers every batch up to its own. */
            if (seg->index[i].max_timestamp >= timestamp_ms)
                return i > 0 ? seg->index[i - 1].offset : seg->index[0].offset;
        }
        return seg->base_offset;
    }
    return log->next_offset;
}

static int plog_delete_oldest(struct sb_plog *log)
{
    struct sb_segment seg = log->segments[0];
    memmove(&log->segments[0], &log->segments[1],
            (log->segment_count - 1) * sizeof(struct sb_segment));
    log->segment_count--;
    log->start_offset = log->segments[0].base_offset;
    segment_drop_direct(log, &seg);
    int rc = unlink_segment_files(log, seg.base_offset);
    report(log, SB_LOG_INFO, "%s partition %u: retention deleted segment %020" PRId64
           ", log now starts at %" PRId64, log->topic, log->partition, seg.base_offset,
           log->start_offset);
    segment_close(&seg);
    int drc = fsync_dir(log);
    return rc ? rc : drc;
}

int sb_plog_enforce_retention(struct sb_plog *log, int64_t now_ms)
{
    int deleted = 0;
    for (;;) {
        if (log->segment_count < 2)
            break;
        uint64_t total = 0;
        for (size_t i = 0; i < log->segment_count; i++)
            total += log->segments[i].size;
        const struct sb_segment *oldest = &log->segments[0];
        if (oldest->reserved > oldest->size)
            break; /* a batch placed there is still being written (a group in flight) */
        bool too_big = log->cfg.retention_bytes >= 0 &&
                       total - oldest->size >= (uint64_t)log->cfg.retention_bytes &&
                       total > (uint64_t)log->cfg.retention_bytes;
        bool too_old = log->cfg.retention_ms >= 0 && oldest->max_timestamp >= 0 &&
                       oldest->max_timestamp < now_ms - log->cfg.retention_ms;
        if (!too_big && !too_old)
            break;
        int rc = plog_delete_oldest(log);
        if (rc)
            return rc;
        deleted++;
    }
    return deleted;
}

int sb_plog_write_recovery_point(struct sb_plog *log, int64_t offset)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%" PRId64 "\n", offset);
    int fd = openat(log->dir_fd, "recovery-point.tmp", O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC,
                    0644);
    if (fd < 0)
        return -errno;
    int rc = pwrite_full(fd, buf, (size_t)len, 0);
    if (!rc && fdatasync(fd))
        rc = -errno;
    close(fd);
    if (!rc && renameat(log->dir_fd, "recovery-point.tmp", log->dir_fd, "recovery-point"))
        rc = -errno;
    return rc;
}
