/*
 * log_verify.h - read-only checks and reading of a data_dir's logs, for tools (shardbus log
 * verify / dump) and tests. Unlike sb_plog_open(), nothing here changes a file.
 */
#ifndef SB_LOG_VERIFY_H
#define SB_LOG_VERIFY_H

#include <stdbool.h>
#include <stdint.h>

#include <shardbus.h>

#include "record_batch.h"

struct sb_verify_totals {
    uint64_t partitions, segments, batches, records, bytes, problems;
};

/**
 * sb_log_verify_partition - check one partition folder: every batch's header and CRC-32C,
 * record framing, offset continuity within and across segments, and that both index files
 * point at real batch starts in order. Each problem goes to @report (with the file and byte
 * position) and counts in totals->problems. Returns 0 when the folder could be read (problems
 * or not), or a negative errno.
 */
int sb_log_verify_partition(const char *dir, sb_log_fn report, void *ctx,
                            struct sb_verify_totals *totals);

/** Called for each record by sb_log_read_partition(); return non-zero to stop. */
typedef int (*sb_record_visit_fn)(void *ctx, const struct sb_record *rec);

/**
 * sb_log_read_partition - visit every record at or after @from_offset in a partition folder,
 * in offset order, verifying each batch first (reading stops at the first one that fails:
 * -EBADMSG, reported through @report). Returns 0, the visitor's non-zero value, or a negative
 * errno.
 */
int sb_log_read_partition(const char *dir, int64_t from_offset, sb_record_visit_fn visit,
                          void *visit_ctx, sb_log_fn report, void *report_ctx);

#endif /* SB_LOG_VERIFY_H */
