/*
 * test_shard_hooks.h - the shard's test hooks, for tests that include the internal headers.
 * Each function runs on the shard's own thread, through sb_shard_call(), since the fields it
 * touches belong to that thread.
 */
#ifndef SB_TEST_SHARD_HOOKS_H
#define SB_TEST_SHARD_HOOKS_H

#include <stdint.h>

#include "shard.h"

/* Every group commit in flight counts as slow from now on (slow_group_test_ns = 1 ns), so a
 * small gathering group goes beside it (sb_shard_log_can_submit()). Returns 0. */
static inline int test_force_slow_groups(struct sb_shard *s, void *arg)
{
    (void)arg;
    s->slow_group_test_ns = 1;
    return 0;
}

/* The groups submitted beside a slow one so far (capped at INT32_MAX). */
static inline int test_groups_beside_slow(struct sb_shard *s, void *arg)
{
    (void)arg;
    return s->groups_beside_slow > INT32_MAX ? INT32_MAX : (int)s->groups_beside_slow;
}

#endif
