/*
 * test_partition_log.c - one partition's log on disk: appends, segment rolls, reopen, recovery
 * of torn and corrupt tails, corruption below the recovery point, missing and stale indexes,
 * seek by offset and by time, retention by size and age, direct I/O (whole-block writes, the
 * zero padding cut on close, after a roll and by recovery). Every check reads the records back
 * and compares their bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "test_util.h"
#include "partition_log.h"
#include "record_batch.h"

static char reports[8192];

static void collect(void *ctx, enum sb_log_level level, const char *msg)
{
    (void)ctx;
    size_t n = strlen(reports);
    snprintf(reports + n, sizeof(reports) - n, "[%d] %s\n", (int)level, msg);
}

static const struct sb_log_reporter reporter = {collect, NULL};

static struct sb_log_config small_segments(void)
{
    struct sb_log_config cfg;
    sb_log_config_init(&cfg);
    cfg.segment_bytes = 16 * 1024;
    cfg.index_interval_bytes = 1024;
    return cfg;
}

static size_t value_for(int64_t offset, char *buf)
{
    int n = sprintf(buf, "value-%lld-", (long long)offset);
    size_t len = (size_t)n + (size_t)(offset % 50);
    for (size_t i = (size_t)n; i < len; i++)
        buf[i] = (char)('a' + (offset + (int64_t)i) % 26);
    return len;
}

/* Build the batch of the next @count records (offsets continue the log) into @buf. */
static size_t build_batch(struct sb_plog *log, int count, int64_t timestamp, unsigned char *buf,
                          size_t cap)
{
    struct sb_batch_builder b;
    sb_batch_begin(&b, buf, cap);
    int64_t first = log->reserved_offset;
    for (int i = 0; i < count; i++) {
        char v[128], k[32];
        size_t vl = value_for(first + i, v);
        int kl = sprintf(k, "key-%lld", (long long)(first + i));
        CHECK_EQ(sb_batch_add(&b, timestamp, k, (size_t)kl, v, vl), 0);
    }
    return sb_batch_finish(&b, 0, false);
}

/* Append @count records as one batch, written with pwrite. */
static void append_batch(struct sb_plog *log, int count, int64_t timestamp)
{
    static unsigned char buf[64 * 1024];
    int64_t first = log->reserved_offset;
    size_t len = build_batch(log, count, timestamp, buf, sizeof(buf));
    int fd;
    uint64_t pos;
    int64_t base;
    CHECK_EQ(sb_plog_reserve(log, len, count, &fd, &pos, &base), 0);
    CHECK_EQ(base, first);
    sb_batch_set_base_offset(buf, base);
    CHECK_EQ(pwrite(fd, buf, len, (off_t)pos), (ssize_t)len);
    struct sb_batch_info info;
    const char *why;
    CHECK_EQ(sb_batch_parse_header(buf, len, &info, &why), 0);
    CHECK_EQ(sb_plog_commit(log, &info, pos), 0);
}

/* Read every record from @from to the end through seek + the files; check bytes and order. */
static int64_t read_all(struct sb_plog *log, int64_t from)
{
    struct sb_plog_pos at;
    if (from >= log->next_offset)
        return from;
    CHECK_EQ(sb_plog_seek(log, from, &at), 0);
    int64_t expect = from;
    static unsigned char buf[64 * 1024];
    for (size_t s = at.segment; s < log->segment_count; s++) {
        struct sb_segment *seg = &log->segments[s];
        uint64_t pos = s == at.segment ? at.position : 0;
        while (pos < seg->size) {
            ssize_t n = pread(seg->log_fd, buf, sizeof(buf), (off_t)pos);
            CHECK(n > 0);
            struct sb_batch_info info;
            const char *why = NULL;
            CHECK_EQ(sb_batch_validate(buf, (size_t)n, &info, &why), 0);
            struct sb_record_iter it;
            struct sb_record rec;
            CHECK_EQ(sb_record_iter_init(&it, buf, info.total_bytes), 0);
            while (sb_record_next(&it, &rec, &why) == 1) {
                if (rec.offset < expect)
                    continue; /* the batch starts before the offset asked for */
                CHECK_EQ(rec.offset, expect);
                char v[128], k[32];
                size_t vl = value_for(rec.offset, v);
                int kl = sprintf(k, "key-%lld", (long long)rec.offset);
                CHECK_EQ(rec.value_len, (int32_t)vl);
                CHECK_MEM(rec.value, v, vl);
                CHECK_EQ(rec.key_len, kl);
                CHECK_MEM(rec.key, k, (size_t)kl);
                expect++;
            }
            pos += info.total_bytes;
        }
    }
    CHECK_EQ(expect, log->next_offset);
    return expect;
}

static void make_dir(char *path)
{
    test_make_dir(path, "/tmp/sb-plog-XXXXXX");
}

static void segment_path(char *out, const char *dir, int64_t base, const char *ext)
{
    char name[64];
    sb_segment_file_name(name, sizeof(name), base, ext);
    sprintf(out, "%s/t-0/%s", dir, name);
}

static void test_append_roll_reopen(void)
{
    char dir[64];
    make_dir(dir);
    struct sb_log_config cfg = small_segments();
    struct sb_plog *log;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    CHECK_EQ(log->next_offset, 0);
    for (int i = 0; i < 200; i++)
        append_batch(log, 1 + i % 7, 1000 + i);
    int64_t end = log->next_offset;
    CHECK(log->segment_count > 3);
    read_all(log, 0);
    read_all(log, 17);
    read_all(log, end - 1);
    /* Segment names are their base offsets, and they chain. */
    for (size_t s = 1; s < log->segment_count; s++)
        CHECK_EQ(log->segments[s].base_offset, log->segments[s - 1].next_offset);
    size_t segments = log->segment_count;
    sb_plog_close(log);

    reports[0] = 0;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    CHECK_EQ(log->next_offset, end);
    CHECK_EQ(log->segment_count, segments);
    CHECK(strstr(reports, "torn") == NULL);
    read_all(log, 0);
    /* Appends continue where the log ended. */
    append_batch(log, 5, 5000);
    CHECK_EQ(log->next_offset, end + 5);
    read_all(log, end - 3);
    /* Seek errors. */
    struct sb_plog_pos at;
    CHECK_EQ(sb_plog_seek(log, end + 5, &at), -ENODATA);
    CHECK_EQ(sb_plog_seek(log, -1, &at), -ERANGE);
    /* By time: batch i has timestamp 1000 + i. */
    CHECK_EQ(sb_plog_offset_for_time(log, 0), 0);
    CHECK_EQ(sb_plog_offset_for_time(log, 999999), log->next_offset);
    int64_t o = sb_plog_offset_for_time(log, 1100);
    CHECK(o > 0 && o < end);
    sb_plog_close(log);
    test_remove_dir(dir);
    printf("append, roll, reopen: %lld offsets in %zu segments\n", (long long)end, segments);
}

static int64_t fill(const char *dir, struct sb_log_config *cfg, int batches)
{
    struct sb_plog *log;
    CHECK_EQ(sb_plog_open(dir, "t", 0, cfg, &reporter, &log), 0);
    for (int i = 0; i < batches; i++)
        append_batch(log, 3, 2000 + i);
    int64_t end = log->next_offset;
    sb_plog_close(log);
    return end;
}

static void test_torn_tail(void)
{
    char dir[64], path[256];
    make_dir(dir);
    struct sb_log_config cfg;
    sb_log_config_init(&cfg);
    int64_t end = fill(dir, &cfg, 20);
    segment_path(path, dir, 0, "log");
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    /* Cut the last batch in the middle. */
    CHECK_EQ(truncate(path, st.st_size - 10), 0);
    reports[0] = 0;
    struct sb_plog *log;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    CHECK_EQ(log->next_offset, end - 3);
    CHECK(strstr(reports, "torn tail") != NULL);
    read_all(log, 0);
    /* The truncated log takes appends again at the right offsets. */
    append_batch(log, 3, 9000);
    read_all(log, 0);
    sb_plog_close(log);

    /* Flip a byte inside the last batch: a torn tail too (nothing synced is lost). */
    CHECK_EQ(stat(path, &st), 0);
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    unsigned char byte;
    CHECK_EQ(pread(fd, &byte, 1, st.st_size - 5), 1);
    byte ^= 0x40;
    CHECK_EQ(pwrite(fd, &byte, 1, st.st_size - 5), 1);
    close(fd);
    reports[0] = 0;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    CHECK_EQ(log->next_offset, end - 3);
    CHECK(strstr(reports, "CRC-32C mismatch") != NULL);
    read_all(log, 0);
    sb_plog_close(log);
    test_remove_dir(dir);
    printf("torn tails: truncated mid-batch and bit flip, both recovered\n");
}

static void test_corruption_below_recovery_point(void)
{
    char dir[64], path[256];
    make_dir(dir);
    struct sb_log_config cfg;
    sb_log_config_init(&cfg);
    struct sb_plog *log;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    for (int i = 0; i < 20; i++)
        append_batch(log, 3, 2000 + i);
    CHECK_EQ(sb_plog_write_recovery_point(log, log->next_offset), 0);
    uint64_t victim = log->segments[0].index[0].position + 200; /* inside an early batch */
    sb_plog_close(log);
    segment_path(path, dir, 0, "log");
    int fd = open(path, O_RDWR);
    CHECK(fd >= 0);
    unsigned char byte;
    CHECK_EQ(pread(fd, &byte, 1, (off_t)victim), 1);
    byte ^= 0xff;
    CHECK_EQ(pwrite(fd, &byte, 1, (off_t)victim), 1);
    close(fd);
    struct stat before, after;
    CHECK_EQ(stat(path, &before), 0);
    reports[0] = 0;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), -EBADMSG);
    /* The report names the partition, the file and the byte position; nothing was cut. */
    CHECK(strstr(reports, "corrupt batch at byte") != NULL);
    CHECK(strstr(reports, "00000000000000000000.log") != NULL);
    CHECK(strstr(reports, "t partition 0") != NULL);
    CHECK_EQ(stat(path, &after), 0);
    CHECK_EQ(after.st_size, before.st_size);
    test_remove_dir(dir);
    printf("corruption below the recovery point: refused and reported: %s", reports);
}

/* A log that ends before its recovery point lost synced events even when no bad byte is left
 * to show it: its last batch cut off at a batch boundary, or its last segment gone. */
static void test_missing_synced_tail(void)
{
    char dir[64], path[256];
    make_dir(dir);
    struct sb_log_config cfg = small_segments();
    struct sb_plog *log;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    for (int i = 0; i < 200; i++)
        append_batch(log, 3, 2000 + i);
    CHECK(log->segment_count > 2);
    struct sb_segment *last = &log->segments[log->segment_count - 1];
    const int64_t last_base = last->base_offset, end = log->next_offset;
    /* The last batch's start, walking the segment's batch lengths. */
    uint64_t cut = 0, pos = 0;
    unsigned char hdr[12];
    segment_path(path, dir, last_base, "log");
    int fd = open(path, O_RDONLY);
    CHECK(fd >= 0);
    while (pos < last->size) {
        CHECK_EQ(pread(fd, hdr, 12, (off_t)pos), 12);
        cut = pos;
        pos += 12 + ((uint64_t)hdr[8] << 24 | (uint64_t)hdr[9] << 16 | (uint64_t)hdr[10] << 8 |
                     hdr[11]);
    }
    close(fd);
    CHECK_EQ(pos, last->size);
    CHECK_EQ(sb_plog_write_recovery_point(log, end), 0);
    sb_plog_close(log);

    CHECK_EQ(truncate(path, (off_t)cut), 0);
    reports[0] = 0;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), -EBADMSG);
    CHECK(strstr(reports, "synced events are missing") != NULL);
    CHECK(strstr(reports, "t partition 0") != NULL);
    /* The whole last segment gone: the same. */
    static const char *const exts[] = {"log", "index", "timeindex"};
    for (int k = 0; k < 3; k++) {
        segment_path(path, dir, last_base, exts[k]);
        CHECK_EQ(unlink(path), 0);
    }
    reports[0] = 0;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), -EBADMSG);
    CHECK(strstr(reports, "synced events are missing") != NULL);
    /* A recovery point at or below the end opens as before. */
    char rp[256];
    snprintf(rp, sizeof(rp), "%s/t-0/recovery-point", dir);
    CHECK_EQ(unlink(rp), 0);
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    CHECK(log->next_offset < end);
    CHECK_EQ(sb_plog_write_recovery_point(log, log->next_offset), 0);
    read_all(log, 0);
    sb_plog_close(log);
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    sb_plog_close(log);
    test_remove_dir(dir);
    printf("synced tail missing (cut at a batch boundary, last segment gone): refused\n");
}

static void test_index_rebuild(void)
{
    char dir[64], path[256];
    make_dir(dir);
    struct sb_log_config cfg = small_segments();
    int64_t end = fill(dir, &cfg, 100);
    /* Remove the first segment's index, garble the last one's time index. */
    segment_path(path, dir, 0, "index");
    CHECK_EQ(unlink(path), 0);
    struct sb_plog *log;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    int64_t last_base = log->segments[log->segment_count - 1].base_offset;
    sb_plog_close(log);
    segment_path(path, dir, last_base, "timeindex");
    int fd = open(path, O_WRONLY | O_TRUNC);
    CHECK(fd >= 0);
    CHECK_EQ(write(fd, "garbage!!", 9), 9);
    close(fd);
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    CHECK_EQ(log->next_offset, end);
    read_all(log, 0);
    sb_plog_close(log);
    /* The files on disk are exact again: one offset entry (8 bytes) per in-memory entry. */
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    segment_path(path, dir, 0, "index");
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_size, (off_t)(log->segments[0].index_count * 8));
    segment_path(path, dir, last_base, "timeindex");
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(st.st_size, (off_t)(log->segments[log->segment_count - 1].index_count * 12));
    sb_plog_close(log);
    test_remove_dir(dir);
    printf("indexes: a missing and a garbled one rebuilt\n");
}

static void test_retention(void)
{
    char dir[64];
    make_dir(dir);
    struct sb_log_config cfg = small_segments();
    cfg.retention_bytes = 40 * 1024;
    struct sb_plog *log;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    for (int i = 0; i < 300; i++)
        append_batch(log, 4, 1000);
    size_t before = log->segment_count;
    int deleted = sb_plog_enforce_retention(log, 2000);
    CHECK(deleted > 0);
    CHECK_EQ(log->segment_count, before - (size_t)deleted);
    uint64_t total = 0;
    for (size_t i = 0; i < log->segment_count; i++)
        total += log->segments[i].size;
    CHECK(total >= 40 * 1024);
    CHECK(total - log->segments[0].size < 40 * 1024);
    CHECK(log->start_offset > 0);
    struct sb_plog_pos at;
    CHECK_EQ(sb_plog_seek(log, log->start_offset - 1, &at), -ERANGE);
    read_all(log, log->start_offset);
    int64_t start = log->start_offset;
    sb_plog_close(log);
    /* The log start survives a reopen. */
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    CHECK_EQ(log->start_offset, start);
    /* By age: everything but the active segment is older than 1 s at t = 1000 + 1000 + 1. */
    log->cfg.retention_bytes = -1;
    log->cfg.retention_ms = 1000;
    CHECK_EQ(sb_plog_enforce_retention(log, 1000), 0);
    CHECK(sb_plog_enforce_retention(log, 2001) > 0);
    CHECK_EQ(log->segment_count, 1);
    read_all(log, log->start_offset);
    sb_plog_close(log);
    test_remove_dir(dir);
    printf("retention: by size and by age, whole segments, start offset kept\n");
}

/* A batch reserved in a partition log and written later (reserve_batch, write_and_commit). */
struct pending {
    unsigned char buf[8192];
    size_t len;
    uint64_t pos;
    int fd;
};

static void reserve_batch(struct sb_plog *log, struct pending *b, int count, int64_t ts)
{
    struct sb_batch_builder bb;
    sb_batch_begin(&bb, b->buf, sizeof(b->buf));
    const int64_t first = log->reserved_offset;
    for (int i = 0; i < count; i++) {
        char v[128], k[32];
        size_t vl = value_for(first + i, v);
        int kl = sprintf(k, "key-%lld", (long long)(first + i));
        CHECK_EQ(sb_batch_add(&bb, ts, k, (size_t)kl, v, vl), 0);
    }
    b->len = sb_batch_finish(&bb, 0, false);
    int64_t base;
    CHECK_EQ(sb_plog_reserve(log, b->len, count, &b->fd, &b->pos, &base), 0);
    CHECK_EQ(base, first);
    sb_batch_set_base_offset(b->buf, base);
}

static void write_and_commit(struct sb_plog *log, const struct pending *b)
{
    CHECK_EQ(pwrite(b->fd, b->buf, b->len, (off_t)b->pos), (ssize_t)b->len);
    struct sb_batch_info info;
    const char *why;
    CHECK_EQ(sb_batch_parse_header(b->buf, b->len, &info, &why), 0);
    CHECK_EQ(sb_plog_commit(log, &info, b->pos), 0);
}

/*
 * Retention never deletes a segment a reserved batch is still being written to: with two
 * groups in flight the younger one's reservation can roll the partition to a new segment while
 * the older one's batch in the old segment is not written yet. Once it is committed, the old
 * segment goes like any other.
 */
static void test_retention_spares_reserved(void)
{
    char dir[64];
    make_dir(dir);
    struct sb_log_config cfg = small_segments();
    cfg.retention_ms = 1000;
    struct sb_plog *log;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    static struct pending a, b;
    for (;;) {
        reserve_batch(log, &a, 4, 1000);
        CHECK_EQ(log->segment_count, 1);
        reserve_batch(log, &b, 4, 1000);
        if (log->segment_count == 2)
            break; /* a in the first segment, reserved; b rolled the log to a second one */
        write_and_commit(log, &a);
        write_and_commit(log, &b);
    }
    CHECK(log->segments[0].reserved > log->segments[0].size);
    CHECK_EQ(sb_plog_enforce_retention(log, 100000), 0); /* far too old, but being written */
    CHECK_EQ(log->segment_count, 2);
    write_and_commit(log, &a);
    write_and_commit(log, &b);
    read_all(log, 0);
    CHECK_EQ(sb_plog_enforce_retention(log, 100000), 1);
    CHECK_EQ(log->segment_count, 1);
    read_all(log, log->start_offset);
    sb_plog_close(log);
    test_remove_dir(dir);
    printf("retention: a segment a reserved batch is still being written to is kept\n");
}

/* Append @count records as one batch the way the shard writes a direct segment: the whole
 * blocks from the one holding the batch's first byte (its head from sb_plog_direct_head())
 * to the next boundary (zero padding), from an aligned buffer; plain pwrite otherwise. */
static void append_batch_direct(struct sb_plog *log, int count, int64_t timestamp)
{
    static unsigned char buf[64 * 1024];
    size_t len = build_batch(log, count, timestamp, buf, sizeof(buf));
    int fd;
    uint64_t pos;
    int64_t base;
    CHECK_EQ(sb_plog_reserve(log, len, count, &fd, &pos, &base), 0);
    sb_batch_set_base_offset(buf, base);
    if (sb_plog_fd_is_direct(log, fd)) {
        const uint64_t B = SB_LOG_DIRECT_BLOCK, start = pos / B * B, end = pos + len;
        const uint64_t padded = (end + B - 1) / B * B;
        unsigned char *w = aligned_alloc(B, 128 * 1024);
        CHECK(w != NULL);
        memset(w, 0xee, 128 * 1024); /* anything left unset would show */
        CHECK_EQ(sb_plog_direct_head(log, fd, pos, w), 0);
        memcpy(w + (pos - start), buf, len);
        memset(w + (end - start), 0, padded - end);
        sb_plog_direct_remember(log, fd, end, w + (end / B * B - start));
        CHECK_EQ(pwrite(fd, w, padded - start, (off_t)start), (ssize_t)(padded - start));
        free(w);
    } else {
        CHECK_EQ(pwrite(fd, buf, len, (off_t)pos), (ssize_t)len);
    }
    struct sb_batch_info info;
    const char *why;
    CHECK_EQ(sb_batch_parse_header(buf, len, &info, &why), 0);
    CHECK_EQ(sb_plog_commit(log, &info, pos), 0);
}

static off_t file_size(const char *path)
{
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    return st.st_size;
}

static void test_direct(void)
{
    char dir[64], path[256];
    make_dir(dir);
    struct sb_log_config cfg = small_segments();
    cfg.direct_io = true;
    struct sb_plog *log;
    reports[0] = 0;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    int fd0 = log->segments[0].direct_fd;
    if (fd0 < 0) {
        CHECK(strstr(reports, "no direct I/O") != NULL);
        sb_plog_close(log);
        test_remove_dir(dir);
        printf("direct I/O: not supported here (%s): skipped", reports);
        return;
    }
    /* Batches of every size; heads from memory, and from the file once forgotten. */
    for (int i = 0; i < 300; i++) {
        if (i % 17 == 5)
            log->head_fd = -1;
        append_batch_direct(log, 1 + i % 9, 1000 + i);
    }
    int64_t end = log->next_offset;
    CHECK(log->segment_count > 3);
    read_all(log, 0);
    /* The active segment ends in whole blocks; the ones a roll closed, once trimmed, don't. */
    struct sb_segment *last = &log->segments[log->segment_count - 1];
    segment_path(path, dir, last->base_offset, "log");
    CHECK_EQ(file_size(path) % SB_LOG_DIRECT_BLOCK, 0);
    CHECK(file_size(path) >= (off_t)last->size);
    CHECK(log->untrimmed > 0);
    CHECK_EQ(sb_plog_trim_closed(log), 0);
    CHECK_EQ(log->untrimmed, 0);
    for (size_t s = 0; s + 1 < log->segment_count; s++) {
        segment_path(path, dir, log->segments[s].base_offset, "log");
        CHECK_EQ(file_size(path), (off_t)log->segments[s].size);
        CHECK_EQ(log->segments[s].direct_fd, -1);
    }
    size_t segments = log->segment_count;
    sb_plog_close(log);

    /* Closed: no padding left; reopened without a report; appends continue. */
    int64_t last_base = 0;
    reports[0] = 0;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    CHECK_EQ(reports[0], 0);
    CHECK_EQ(log->next_offset, end);
    CHECK_EQ(log->segment_count, segments);
    last_base = log->segments[segments - 1].base_offset;
    segment_path(path, dir, last_base, "log");
    CHECK_EQ(file_size(path), (off_t)log->segments[segments - 1].size);
    append_batch_direct(log, 4, 7000); /* its head is read from the file */
    end = log->next_offset;
    read_all(log, 0);
    sb_plog_close(log);

    /* A crash leaves the padding: recovery cuts it without a word, in the last segment and in
     * one a roll closed. */
    uint64_t sizes[2];
    for (int k = 0; k < 2; k++) {
        int64_t base = k == 0 ? last_base : 0;
        segment_path(path, dir, base, "log");
        sizes[k] = (uint64_t)file_size(path);
        uint64_t padded = (sizes[k] + SB_LOG_DIRECT_BLOCK - 1) / SB_LOG_DIRECT_BLOCK *
                          SB_LOG_DIRECT_BLOCK;
        if (padded == sizes[k])
            padded += SB_LOG_DIRECT_BLOCK; /* not padding then: see below */
        CHECK_EQ(truncate(path, (off_t)padded), 0);
    }
    reports[0] = 0;
    int rc = sb_plog_open(dir, "t", 0, &cfg, &reporter, &log);
    bool aligned0 = sizes[1] % SB_LOG_DIRECT_BLOCK == 0, aligned_last =
                    sizes[0] % SB_LOG_DIRECT_BLOCK == 0;
    if (aligned0) {
        /* A whole block of zeros after a closed segment is not padding: corruption. */
        CHECK_EQ(rc, -EBADMSG);
        segment_path(path, dir, 0, "log");
        CHECK_EQ(truncate(path, (off_t)sizes[1]), 0);
        reports[0] = 0;
        rc = sb_plog_open(dir, "t", 0, &cfg, &reporter, &log);
    }
    CHECK_EQ(rc, 0);
    if (aligned_last) {
        CHECK(strstr(reports, "torn tail") != NULL); /* 4096 zeros: reported, then cut */
    } else {
        CHECK(strstr(reports, "zero padding") != NULL && strstr(reports, "torn") == NULL);
    }
    CHECK_EQ(log->next_offset, end);
    segment_path(path, dir, last_base, "log");
    CHECK_EQ(file_size(path), (off_t)sizes[0]);
    segment_path(path, dir, 0, "log");
    CHECK_EQ(file_size(path), (off_t)sizes[1]);
    read_all(log, 0);
    sb_plog_close(log);

    /* Zeros where synced batches were (below the recovery point) are corruption, even shaped
     * like padding: the last batch zeroed, the file ending at a block boundary. */
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    append_batch_direct(log, 2, 8000);
    const size_t segs_before = log->segment_count;
    struct sb_plog_pos at = {0, log->segments[segs_before - 1].size}; /* the last batch's */
    append_batch_direct(log, 1, 8001);
    CHECK_EQ(log->segment_count, segs_before); /* no roll in between */
    const int64_t synced_end = log->next_offset;
    CHECK_EQ(sb_plog_write_recovery_point(log, synced_end), 0);
    const uint64_t seg_size = log->segments[log->segment_count - 1].size;
    last_base = log->segments[log->segment_count - 1].base_offset;
    sb_plog_close(log);
    segment_path(path, dir, last_base, "log");
    const uint64_t boundary = (seg_size + SB_LOG_DIRECT_BLOCK - 1) / SB_LOG_DIRECT_BLOCK *
                              SB_LOG_DIRECT_BLOCK;
    CHECK(boundary - at.position < SB_LOG_DIRECT_BLOCK); /* a 1-record batch: ~100 bytes */
    CHECK_EQ(truncate(path, (off_t)at.position), 0);     /* the last batch gone... */
    CHECK_EQ(truncate(path, (off_t)boundary), 0);        /* ...zeros up to the boundary */
    reports[0] = 0;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), -EBADMSG);
    CHECK(strstr(reports, "corrupt batch") != NULL);
    /* Without the zeros and the recovery point, the log opens and ends before that batch. */
    CHECK_EQ(truncate(path, (off_t)at.position), 0);
    char rp[256];
    snprintf(rp, sizeof(rp), "%s/t-0/recovery-point", dir);
    CHECK_EQ(unlink(rp), 0);
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    CHECK_EQ(log->next_offset, synced_end - 1);
    end = log->next_offset;
    sizes[0] = log->segments[log->segment_count - 1].size;
    read_all(log, 0);
    sb_plog_close(log);

    /* Zeros that are not padding (the file size not a multiple of the block): a torn tail. */
    segment_path(path, dir, last_base, "log");
    CHECK_EQ(truncate(path, (off_t)sizes[0] + 10), 0);
    reports[0] = 0;
    CHECK_EQ(sb_plog_open(dir, "t", 0, &cfg, &reporter, &log), 0);
    CHECK(strstr(reports, "torn tail") != NULL);
    CHECK_EQ(log->next_offset, end);
    read_all(log, 0);
    sb_plog_close(log);
    test_remove_dir(dir);

    unsigned char zeros[SB_LOG_DIRECT_BLOCK] = {0};
    CHECK(sb_log_is_padding(zeros, 100, 8192));
    CHECK(!sb_log_is_padding(zeros, 100, 8192 + 100));
    CHECK(!sb_log_is_padding(zeros, 0, 8192));
    CHECK(!sb_log_is_padding(zeros, SB_LOG_DIRECT_BLOCK, 8192));
    zeros[50] = 1;
    CHECK(!sb_log_is_padding(zeros, 100, 8192));
    printf("direct I/O: %lld offsets in %zu segments written in whole blocks; padding cut on "
           "close, after a roll and by recovery\n", (long long)end, segments);
}

int main(void)
{
    test_append_roll_reopen();
    test_torn_tail();
    test_corruption_below_recovery_point();
    test_missing_synced_tail();
    test_index_rebuild();
    test_retention();
    test_retention_spares_reserved();
    test_direct();
    printf("test_partition_log: all passed\n");
    return 0;
}
