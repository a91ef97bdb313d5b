/*
 * testutil.h — helpers shared by the per-layer unit tests (test_fixalloc.c,
 * test_pagemap.c, test_mheap.c, test_mcentral.c, test_mcache.c).
 *
 * Everything here is static: each test is one translation unit linked with
 * build/libgomalloc-core.a.  The helpers use glibc's malloc for their own
 * bookkeeping (the core archive exports no libc names), never gomalloc.
 *
 * GM_STRESS_SCALE (a float, default 1) multiplies the loop counts that would
 * be slow under valgrind; gm_test_scaled() never goes below the floor a test
 * needs to mean anything.
 */
#ifndef GM_TESTUTIL_H
#define GM_TESTUTIL_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

static inline double gm_test_scale(void)
{
    const char *s = getenv("GM_STRESS_SCALE");
    double v = s ? strtod(s, NULL) : 1.0;
    return v > 0 ? v : 1.0;
}

/* base * GM_STRESS_SCALE, at least floor. */
static inline long gm_test_scaled(long base, long floor)
{
    double v = (double)base * gm_test_scale();
    return v < (double)floor ? floor : (long)v;
}

static inline bool gm_test_aligned(uintptr_t addr, size_t align)
{
    return (addr & (align - 1)) == 0;
}

static inline int gm_test_cmp_uptr(const void *a, const void *b)
{
    uintptr_t x = *(const uintptr_t *)a, y = *(const uintptr_t *)b;
    return x < y ? -1 : x > y;
}

/* Sorts n addresses and asserts that blocks of size bytes starting there
 * are pairwise distinct and do not overlap. */
static inline void gm_test_assert_disjoint(uintptr_t *addrs, size_t n, size_t size)
{
    qsort(addrs, n, sizeof *addrs, gm_test_cmp_uptr);
    for (size_t i = 1; i < n; i++)
        assert_true(addrs[i - 1] + size <= addrs[i]);
}

/* Byte pattern derived from a seed: fills n bytes, then checks them. */
static inline unsigned char gm_test_pattern_byte(unsigned seed, size_t i)
{
    return (unsigned char)(seed * 131u + i * 7u + (i >> 8) + 1u);
}

static inline void gm_test_fill(void *p, size_t n, unsigned seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = gm_test_pattern_byte(seed, i);
}

static inline bool gm_test_check(const void *p, size_t n, unsigned seed)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != gm_test_pattern_byte(seed, i))
            return false;
    return true;
}

static inline bool gm_test_all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

#endif /* GM_TESTUTIL_H */
