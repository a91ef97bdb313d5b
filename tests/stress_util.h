/*
 * stress_util.h — helpers the threaded stress tests share: scaled loop counts,
 * a fixed-seed generator, and a record of failures seen by worker threads
 * (cmocka's assertions must run on the test's own thread).
 */
#ifndef GM_STRESS_UTIL_H
#define GM_STRESS_UTIL_H

#include <stdatomic.h>
#include <stdio.h>

#include "testutil.h"

/* base * GM_STRESS_SCALE, at least 1. */
static inline long scaled(long base)
{
    return gm_test_scaled(base, 1);
}

static inline uint64_t rng_next(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

struct stress_failures {
    atomic_long count;
    atomic_flag noted;
    char first[256];
};

static inline struct stress_failures *stress_failures(void)
{
    static struct stress_failures f = {0, ATOMIC_FLAG_INIT, ""};
    return &f;
}

/* Counts a failure from any thread; the first one is kept for the report. */
static inline void note_failure(const char *what, const void *p, size_t n)
{
    struct stress_failures *f = stress_failures();
    atomic_fetch_add(&f->count, 1);
    if (!atomic_flag_test_and_set(&f->noted))
        snprintf(f->first, sizeof f->first, "%s: block %p, %zu bytes", what, p, n);
}

static inline void clear_failures(void)
{
    struct stress_failures *f = stress_failures();
    atomic_store(&f->count, 0);
    atomic_flag_clear(&f->noted);
}

static inline void assert_no_failures(void)
{
    struct stress_failures *f = stress_failures();
    long n = atomic_load(&f->count);
    if (n != 0)
        fail_msg("%ld failures, first: %s", n, f->first);
}

#endif
