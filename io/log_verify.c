/*
 * log_verify.c - read-only verification and reading of partition folders; see log_verify.h.
 */
#include "log_verify.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "partition_log.h"
#include "varint.h"

__attribute__((format(printf, 4, 5))) static void problem(sb_log_fn report, void *ctx,
                                                          struct sb_verify_totals *t,
                                                          const char *fmt, ...)
{
    if (t)
        t->problems++;
    if (!report)
        return;
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    report(ctx, SB_LOG_ERROR, msg);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorted base offsets of the folder's .log files. */
static int segment_bases(const char *dir, int64_t **out, size_t *count)
{
    DIR *d = opendir(dir);
    if (!d)
        return -errno;
    size_t n = 0, cap = 16;
    int64_t *list = malloc(cap * sizeof(*list));
    struct dirent *e;
    while (list && (e = readdir(d))) {
        if (strlen(e->d_name) != 24 || strcmp(e->d_name + 20, ".log"))
            continue;
        char *end;
        long long base = strtoll(e->d_name, &end, 10);
        if (end != e->d_name + 20)
            continue;
        if (n == cap) {
            int64_t *bigger = realloc(list, cap * 2 * sizeof(*list));
            if (!bigger) {
                free(list);
                list = NULL;
                break;
            }
            list = bigger;
            cap *= 2;
        }
        list[n++] = base;
    }
    closedir(d);
    if (!list)
        return -ENOMEM;
    qsort(list, n, sizeof(*list), cmp_i64);
    *out = list;
    *count = n;
    return 0;
}

static unsigned char *read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    unsigned char *buf = NULL;
    if (fstat(fd, &st) == 0) {
        buf = malloc((size_t)st.st_size + 1);
        size_t done = 0;
        while (buf && done < (size_t)st.st_size) {
            ssize_t n = pread(fd, buf + done, (size_t)st.st_size - done, (off_t)done);
            if (n <= 0)
                break;
            done += (size_t)n;
        }
        *len = done;
    }
    close(fd);
    return buf;
}

/* Positions of the batch starts of a segment, for checking its indexes. */
struct batch_start {
    int64_t offset;
    uint64_t position;
};

static bool has_start(const struct batch_start *starts, size_t n, int64_t offset, uint64_t pos)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (starts[mid].position < pos)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n && starts[lo].position == pos && starts[lo].offset == offset;
}

static void verify_indexes(const char *dir, int64_t base, const struct batch_start *starts,
                           size_t n, sb_log_fn report, void *ctx, struct sb_verify_totals *t)
{
    char name[64], path[4096];
    sb_segment_file_name(name, sizeof(name), base, "index");
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    size_t len = 0;
    unsigned char *ix = read_file(path, &len);
    if (!ix) {
        problem(report, ctx, t, "%s: missing (rebuilt at the next open)", path);
    } else {
        if (len % 8)
            problem(report, ctx, t, "%s: %zu bytes, not a whole number of entries", path, len);
        uint64_t last = 0;
        for (size_t i = 0; i + 8 <= len; i += 8) {
            int64_t off = base + sb_be32_get(ix + i);
            uint64_t pos = sb_be32_get(ix + i + 4);
            if ((i && pos <= last) || !has_start(starts, n, off, pos)) {
                problem(report, ctx, t,
                        "%s: entry at byte %zu (offset %" PRId64 ", position %" PRIu64
                        ") does not point at a batch start",
                        path, i, off, pos);
                break;
            }
            last = pos;
        }
        free(ix);
    }
    sb_segment_file_name(name, sizeof(name), base, "timeindex");
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    ix = read_file(path, &len);
    if (!ix) {
        problem(report, ctx, t, "%s: missing (rebuilt at the next open)", path);
        return;
    }
    if (len % 12)
        problem(report, ctx, t, "%s: %zu bytes, not a whole number of entries", path, len);
    int64_t last_ts = INT64_MIN;
    for (size_t i = 0; i + 12 <= len; i += 12) {
        int64_t ts = (int64_t)sb_be64_get(ix + i);
        int64_t off = base + sb_be32_get(ix + i + 8);
        bool found = false;
        for (size_t k = 0; k < n && !found; k++)
            found = starts[k].offset == off;
        if (ts < last_ts || !found) {
            problem(report, ctx, t, "%s: entry at byte %zu (timestamp %" PRId64 ", offset %" PRId64
                    ") is out of order or not a batch start", path, i, ts, off);
            break;
        }
        last_ts = ts;
    }
    free(ix);
}

/* Walk a segment: verify (and, with @visit, read) every batch. Returns next offset or -1. */
static int64_t walk_segment(const char *dir, int64_t base, int64_t expect, int64_t from,
                            sb_record_visit_fn visit, void *visit_ctx, int *visit_rc,
                            sb_log_fn report, void *ctx, struct sb_verify_totals *t)
{
    char name[64], path[4096];
    sb_segment_file_name(name, sizeof(name), base, "log");
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    size_t len = 0;
    unsigned char *data = read_file(path, &len);
    if (!data) {
        problem(report, ctx, t, "%s: cannot read: %s", path, strerror(errno));
        return -1;
    }
    if (expect >= 0 && base != expect)
        problem(report, ctx, t, "%s: starts at offset %" PRId64 ", the previous segment ends before %" PRId64,
                path, base, expect);
    size_t cap = 64, n = 0;
    struct batch_start *starts = malloc(cap * sizeof(*starts));
    int64_t next = base;
    size_t pos = 0;
    bool ok = starts != NULL;
    while (ok && pos < len) {
        struct sb_batch_info info;
        const char *why = NULL;
        int rc = sb_batch_validate(data + pos, len - pos, &info, &why);
        if (rc && sb_log_is_padding(data + pos, len - pos, len))
            break; /* a segment being written with direct I/O (partition_log.h) */
        if (rc) {
            problem(report, ctx, t, "%s: byte %zu: %s", path, pos, why ? why : "invalid batch");
            ok = false;
            break;
        }
        if (info.base_offset != next) {
            problem(report, ctx, t, "%s: byte %zu: batch at offset %" PRId64 ", expected %" PRId64,
                    path, pos, info.base_offset, next);
            ok = false;
            break;
        }
        if (n == cap) {
            struct batch_start *bigger = realloc(starts, cap * 2 * sizeof(*starts));
            if (!bigger) {
                ok = false;
                break;
            }
            starts = bigger;
            cap *= 2;
        }
        starts[n++] = (struct batch_start){info.base_offset, pos};
        if (visit && !*visit_rc && info.base_offset + info.last_offset_delta >= from) {
            struct sb_record_iter it;
            struct sb_record rec;
            if (sb_record_iter_init(&it, data + pos, info.total_bytes) == 0)
                while (!*visit_rc && sb_record_next(&it, &rec, &why) == 1)
                    if (rec.offset >= from)
                        *visit_rc = visit(visit_ctx, &rec);
        }
        if (t) {
            t->batches++;
            t->records += (uint64_t)info.record_count;
            t->bytes += info.total_bytes;
        }
        next = info.base_offset + info.last_offset_delta + 1;
        pos += info.total_bytes;
    }
    if (ok && t)
        verify_indexes(dir, base, starts, n, report, ctx, t);
    free(starts);
    free(data);
    return ok ? next : -1;
}

static int walk_partition(const char *dir, int64_t from, sb_record_visit_fn visit,
                          void *visit_ctx, sb_log_fn report, void *ctx,
                          struct sb_verify_totals *t)
{
    int64_t *bases = NULL;
    size_t count = 0;
    int rc = segment_bases(dir, &bases, &count);
    if (rc)
        return rc;
    if (t) {
        t->partitions++;
        t->segments += count;
    }
    int64_t expect = -1;
    int visit_rc = 0;
    for (size_t i = 0; i < count && !visit_rc; i++) {
        /* Reading only: skip segments wholly before @from. */
        if (visit && !t && i + 1 < count && bases[i + 1] <= from)
            continue;
        expect = walk_segment(dir, bases[i], expect, from, visit, visit_ctx, &visit_rc, report,
                              ctx, t);
        if (expect < 0) {
            rc = -EBADMSG;
            break;
        }
    }
    free(bases);
    return visit_rc ? visit_rc : rc;
}

int sb_log_verify_partition(const char *dir, sb_log_fn report, void *ctx,
                            struct sb_verify_totals *totals)
{
    int rc = walk_partition(dir, 0, NULL, NULL, report, ctx, totals);
    return rc == -EBADMSG ? 0 : rc; /* counted as a problem already */
}

int sb_log_read_partition(const char *dir, int64_t from_offset, sb_record_visit_fn visit,
                          void *visit_ctx, sb_log_fn report, void *report_ctx)
{
    return walk_partition(dir, from_offset, visit, visit_ctx, report, report_ctx, NULL);
}
