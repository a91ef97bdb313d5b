/*
 * guard.h — guarded sampling (GOMALLOC_GUARD_RATE): the few calls the API
 * layer and the thread caches make into guard.c, and the inline tests that
 * keep them off the fast paths.
 *
 * The allocation fast path never looks at sampling.  A thread's countdown is
 * checked on the slow path only (gm_guard_due), and a refill never hands
 * the thread's list more objects than the countdown has left
 * (gm_guard_budget), so the list runs dry just when the countdown does and
 * the next allocation comes to the slow path, where it is sampled.  The
 * free fast path needs nothing either: a guarded block lies outside the
 * arenas, its page info lookup fails, and the slow path asks gm_guard_owns.
 */
#ifndef GM_GUARD_H
#define GM_GUARD_H

#include "internal.h"

#pragma GCC visibility push(hidden)

/* Written by gm_guard_init (before the program's threads), and cleared if
 * the guarded region cannot be reserved; relaxed loads. */
extern bool gm_guard_on;
/* The guarded region: written once, under the guard lock, before the first
 * guarded block exists (size last, with release); 0 and 0 until then. */
extern uintptr_t gm_guard_lo, gm_guard_size;

void gm_guard_init(void);
bool gm_guard_due_slow(void);
uint32_t gm_guard_budget_slow(uint32_t want);

/* On the slow path of a small allocation: whether this one is the sample
 * (then gm_guard_alloc serves it; if that fails, it is served as usual). */
static inline bool gm_guard_due(void) {
    return GM_UNLIKELY(__atomic_load_n(&gm_guard_on, __ATOMIC_RELAXED)) && gm_guard_due_slow();
}
/* How many objects (want at most) a refill that serves one allocation now
 * may take: the rest go on the list, and no more than the countdown has
 * left may go there. */
static inline uint32_t gm_guard_budget(uint32_t want) {
    if (GM_LIKELY(!__atomic_load_n(&gm_guard_on, __ATOMIC_RELAXED)))
        return want;
    return gm_guard_budget_slow(want);
}
/* Whether p lies in the guarded region (a block there, or not). */
static inline bool gm_guard_owns(const void *p) {
    uintptr_t size = __atomic_load_n(&gm_guard_size, __ATOMIC_ACQUIRE);
    return (uintptr_t)p - __atomic_load_n(&gm_guard_lo, __ATOMIC_RELAXED) < size;
}

/* A guarded block of size bytes (at most GM_MAX_SMALL_SIZE), aligned to 16
 * and to the largest power of two dividing size (up to a page), or NULL
 * when none can be had (the pool is all in use, the OS refused). */
void *gm_guard_alloc(size_t size);
/* Frees guarded block p; reports a double free or an invalid pointer. */
void gm_guard_free(void *p, const char *call);
/* The size guarded block p was asked with; reports a freed block or an
 * invalid pointer as call would. */
size_t gm_guard_usable(const void *p, const char *call);
gm_lock_t *gm_guard_lockp(void);   /* for fork (malloc.c) */

/* For tests: blocks out, blocks in quarantine, sampled since start. */
struct gm_guard_stats { uint32_t live, quarantined; uint64_t sampled; };
void gm_guard_stats(struct gm_guard_stats *out);

#pragma GCC visibility pop

#endif /* GM_GUARD_H */
