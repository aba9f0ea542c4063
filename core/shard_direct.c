/*
 * shard_direct.c - staging a group's direct writes in whole blocks; see shard_direct.h.
 */
#include "shard_direct.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "partition_log.h"
#include "shard.h"
#include "topic.h"

#define BLOCK ((uint64_t)SB_LOG_DIRECT_BLOCK)

static uint64_t round_down(uint64_t x)
{
    return x / BLOCK * BLOCK;
}

static uint64_t round_up(uint64_t x)
{
    return (x + BLOCK - 1) / BLOCK * BLOCK;
}

/* Link the direct batches into runs (run_next; -1 ends a run; run_head marks the first) and
 * return the staging bytes they need. A run is a file's batches that follow one another in
 * the file; the shard places a partition's batches of a group that way, so each file of the
 * group has one run and no two writes of the group touch the same block. */
static size_t link_runs(struct sb_sealed_batch *b, size_t count)
{
    for (size_t i = 0; i < count; i++)
        b[i].in_run = false;
    size_t need = 0;
    for (size_t i = 0; i < count; i++) {
        if (!b[i].direct || b[i].in_run)
            continue;
        b[i].in_run = b[i].run_head = true;
        size_t last = i;
        uint64_t end = b[i].position + b[i].len;
        for (size_t j = i + 1; j < count; j++) {
            if (b[j].direct && !b[j].in_run && b[j].fd == b[i].fd && b[j].position == end) {
                b[j].in_run = true;
                b[j].run_head = false;
                b[last].run_next = (int32_t)j;
                last = j;
                end += b[j].len;
            }
        }
        b[last].run_next = -1;
        need += round_up(end) - round_down(b[i].position);
    }
    return need;
}

static int stage_reserve(struct sb_direct_stage *stage, size_t need)
{
    if (need <= stage->cap)
        return 0;
    size_t cap = stage->cap ? stage->cap : 1u << 20;
    while (cap < need)
        cap *= 2;
    unsigned char *buf = aligned_alloc(BLOCK, cap);
    if (!buf)
        return -ENOMEM;
    free(stage->buf);
    stage->buf = buf;
    stage->cap = cap;
    return 0;
}

int sb_direct_stage_add(struct sb_direct_stage *stage, struct sb_log_writer *w,
                        struct sb_sealed_batch *b, size_t count)
{
    size_t need = link_runs(b, count);
    if (need == 0)
        return 0;
    int rc = stage_reserve(stage, need);
    if (rc)
        return rc;
    size_t at = 0;
    for (size_t i = 0; i < count; i++) {
        if (!b[i].direct || !b[i].run_head)
            continue;
        struct sb_plog *plog = b[i].part->plog;
        const uint64_t start = b[i].position, base = round_down(start);
        unsigned char *run = stage->buf + at;
        rc = sb_plog_direct_head(plog, b[i].fd, start, run);
        if (rc)
            return rc;
        unsigned char *p = run + (start - base);
        for (int32_t k = (int32_t)i; k >= 0; k = b[k].run_next) {
            memcpy(p, b[k].buf, b[k].len);
            p += b[k].len;
        }
        const uint64_t end = base + (uint64_t)(p - run), padded = round_up(end);
        memset(p, 0, (size_t)(padded - end));
        sb_plog_direct_remember(plog, b[i].fd, end, run + (round_down(end) - base));
        if (sb_log_writer_add_aligned(w, b[i].slot, base, run, (uint32_t)(padded - base),
                                      SB_LOG_DIRECT_BLOCK))
            return -ENOMEM;
        at += (size_t)(padded - base);
    }
    return 0;
}

void sb_direct_stage_free(struct sb_direct_stage *stage)
{
    free(stage->buf);
    stage->buf = NULL;
    stage->cap = 0;
}
