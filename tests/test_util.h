/*
 * test_util.h - helpers several tests share: a monotonic clock in milliseconds and scratch
 * directories under /tmp. Include after defining _GNU_SOURCE (mkdtemp).
 */
#ifndef SB_TEST_UTIL_H
#define SB_TEST_UTIL_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "check.h"

/** Milliseconds of CLOCK_MONOTONIC. */
static inline int64_t test_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/** A fresh directory from @tmpl ("/tmp/...-XXXXXX") into @path (room for it). */
static inline void test_make_dir(char *path, const char *tmpl)
{
    strcpy(path, tmpl);
    CHECK(mkdtemp(path) != NULL);
}

/** Remove @path and everything in it. */
static inline void test_remove_dir(const char *path)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", path);
    CHECK_EQ(system(cmd), 0);
}

#endif /* SB_TEST_UTIL_H */
