/*
 * shard_direct.c - staging a group's direct writes in whole blocks; see shard_direct.h.
 */
#include "shard_direct.h"

#include <errno.h>
#include <stdbool.h>
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
 * the file: a partition's batches of a group are placed that way (reserved one after the
 * other, in the order of @b), so each file of the group has one run and no two writes of the
 * group touch the same block. One pass: each partition remembers its run's last batch. */
static size_t link_runs(struct sb_sealed_batch *b, size_t count, uint64_t call, bool *gap)
{
    size_t need = 0;
    for (size_t i = 0; i < count; i++) {
        if (!b[i].direct)
            continue;
        struct sb_partition *part = b[i].part;
        b[i].run_next = -1;
        if (part->direct_run_call == call) {
            struct sb_sealed_batch *tail = &b[part->direct_run_tail];
            if (tail->fd == b[i].fd && tail->position + tail->len != b[i].position) {
                *gap = true; /* never placed so: two writes of one block could race */
                return 0;
            }
            if (tail->fd == b[i].fd) {
                /* One more batch of the run: its end moves. */
                need -= round_up(tail->position + tail->len);
                need += round_up(b[i].position + b[i].len);
                tail->run_next = (int32_t)i;
                b[i].run_head = false;
                part->direct_run_tail = i;
                continue;
            }
            /* Another file (a roll in this group): a run of its own below. */
        }
        b[i].run_head = true;
        part->direct_run_call = call;
        part->direct_run_tail = i;
        need += round_up(b[i].position + b[i].len) - round_down(b[i].position);
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
    bool gap = false;
    size_t need = link_runs(b, count, ++stage->calls, &gap);
    if (gap)
        return -EIO;
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
