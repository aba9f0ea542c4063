/*
 * test_shard_hooks.h - the shard's test hooks, for tests that include the internal headers.
 * Each function runs on the shard's own thread, through sb_shard_call(), since the fields it
 * touches belong to that thread.
 */
#ifndef SB_TEST_SHARD_HOOKS_H
#define SB_TEST_SHARD_HOOKS_H

#include <stdint.h>

#include "shard.h"

/* A group commit in flight counts as slow once in flight *(const int64_t *)@arg ns (1: every
 * one, so a small gathering group goes beside it as soon as the older group's writes are
 * done; a minute: none), in place of SB_SLOW_GROUP_FACTOR x the average
 * (sb_shard_log_can_submit()). Returns 0. */
static inline int test_set_slow_group_ns(struct sb_shard *s, void *arg)
{
    s->slow_group_test_ns = *(const int64_t *)arg;
    return 0;
}

/* The groups submitted beside a slow one so far (capped at INT32_MAX). */
static inline int test_groups_beside_slow(struct sb_shard *s, void *arg)
{
    (void)arg;
    return s->groups_beside_slow > INT32_MAX ? INT32_MAX : (int)s->groups_beside_slow;
}

#endif
