/*
 * cachebound.c — how much a thread cache may hold: each list's bound and the
 * thread's, and how they grow and shrink (called by mcache.c at each refill,
 * overflow and trim).
 *
 * A list's length is capped by max[cls] (tcmalloc's max_length).  It starts
 * at 1, and a refill takes min(max, batch) objects, so a thread that uses a
 * class a little holds a little of it.  Below the batch size max doubles
 * on every refill or overflow (slow start).  From there, as in tcmalloc,
 * every refill grows it by a batch and a run of overflows with no refill
 * between them takes a batch off, never below the batch size, with two
 * changes: a refill grows the list only if it has overflowed since the last
 * trim (the thread frees as well as allocates the class), and the run must
 * be longer than max / batch + MAX_OVERAGES (a burst of frees longer than
 * the list should make it grow, not shrink).  So a thread that only
 * allocates a class holds at most a batch of it, and so does a thread that
 * only frees it (the consumer of a producer/consumer pair), instead of a
 * whole cache's worth; one that does both in bursts grows the list until a
 * burst fits.  Growth also stops at bin_cap (a quarter of the thread's
 * bound: 512 KiB of a class by default) and where the sum over classes of
 * max * size would pass the thread's bound: at first
 * GOMALLOC_THREAD_CACHE_KIB (2 MiB by default), lowered so that all threads
 * together stay near 64 MiB, never below 256 KiB (and one object per class
 * whatever the bound), then raised as it earns (below).  So a thread never
 * caches more than its bound plus one batch.  The bound does not follow the
 * heap's size: a thread that recycles a few MiB of small blocks
 * (bench/rptest, bench/shuffle) needs its whole bound whatever the heap
 * holds.  Until 2026-12 a thread could cache only a thirty-second of the
 * heap (at least 1 MiB) while the heap was under 64 MiB, which sent
 * rptest-2's frees to the mcentrals every loop (0.34 s CPU against 0.18 s at
 * `bench/run.py --scale 0.5`); the reason for that brake, consumer threads
 * whose free-only lists grew to what the program held live (larson 2 peaked
 * at 8.5 MiB), went away with the overflow rule above (larson-2 peaks at
 * 10.5 MiB with the brake and 10.1 MiB without).
 *
 * Earned bound: a thread that refills a list with a batch it parked itself
 * (gm_cachebound_took_own: mcache.c marks the buffers it gives, and a
 * refill that swaps in a whole parked batch sees whose it was) made a round
 * trip through the central lists that a larger bound would have saved.  Each
 * such trip raises its bound by the batch's bytes (at most
 * GM_TRANSFER_BYTES), up to EARN_FACTOR times where it started, out of a
 * budget of EARN_BUDGET for all threads (tcmalloc's threads steal cache
 * budget from each other in the same spirit).  The memory is the thread's
 * own, already parked in a stock it comes back from, so holding it in the
 * cache instead costs little; a batch another thread freed for it (a
 * consumer's, a cross-thread free's) carries that thread's mark and never
 * counts.  The per-class cap follows the bound (a quarter of it).  What a
 * thread earned goes back to the budget when it exits.  Measured
 * (`bench/run.py` workloads at scale 1, 5 interleaved runs, CPU time, peak
 * RSS): shuffle (frees 5 MiB of mixed classes, allocates it again) 0.20 ->
 * 0.15 s at 8.0 -> 7.9 MiB (tcmalloc 0.14 s, 13 MiB); rptest-2 0.44 -> 0.32 s,
 * 24.2 -> 27.3 MiB (tcmalloc 0.33 s, 34 MiB); realloc 83 -> 87 MiB.  Up to
 * four times the first bound took rptest-2 to 29.5 MiB at the same speed, and
 * steps of a whole batch of the big classes (up to 256 KiB) realloc to 91
 * MiB.  The rule it replaced, earning 256 KiB after the heap's committed
 * size stayed flat for 20 ms, earned shuffle one step: its heap grows once
 * more after that and the rule froze.
 *
 * Invariants: max_bytes is the sum over classes of max[cls] * size, and no
 * growth takes it past bound; base <= bound <= EARN_FACTOR * base; the
 * budget holds the sum over live caches of bound - base.
 *
 * Locking: a cache's fields are its owner thread's (a parked cache's, under
 * the registry lock, mcache.c); the budget is one atomic counter.
 */
#include "cachebound.h"

#define EARN_FACTOR 3
#define EARN_BUDGET ((size_t)32 << 20)
static size_t earned_total;            /* atomic: what all live threads earned */

/* An adopted parked cache starts afresh too: what its last thread earned
 * went back to the budget when it exited. */
void gm_cachebound_start(gm_mcache_t *c, size_t bound) {
    c->base = c->bound = bound;
}

/* Most objects one class's list may hold: a quarter of the thread's bound
 * (512 KiB at the default 2 MiB), so that a burst of a thousand blocks of
 * up to 512 bytes freed and allocated again stays in the thread's cache.
 * With an eighth, bench/fastpath 512 (bursts of 1000 blocks) sent part of
 * every burst through the central lists: 0.38-0.41 s against 0.32-0.37 s
 * with a quarter (tcmalloc 0.32-0.45); over all of bench/run.py's workloads
 * at scale 0.5 the quarter took 0.971 of the CPU time at the same peak RSS
 * but for xmalloc-1's, which moves between runs. */
static uint32_t bin_cap(const gm_mcache_t *c, uint8_t cls) {
    uint32_t by_bytes = (uint32_t)((c->bound >> 2) / gm_class_size[cls]);
    uint32_t batch = gm_transfer_count(cls);
    if (by_bytes < 2 * batch)
        by_bytes = 2 * batch;
    return by_bytes > 8192 ? 8192 : by_bytes;
}

/* A list shrinks by a batch after this many overflows with no refill, on
 * top of one per batch it holds (see gm_cachebound_overflowed). */
#define MAX_OVERAGES 3

/* Sets list cls's bound; room follows, so the length stays what it is. */
static void set_max(gm_mcache_t *c, uint8_t cls, uint32_t max) {
    c->max_bytes -= (size_t)c->max[cls] * gm_class_size[cls];
    c->max_bytes += (size_t)max * gm_class_size[cls];
    c->room[cls] += (int64_t)max - c->max[cls];
    c->max[cls] = max;
}

void gm_cachebound_took_own(gm_mcache_t *c, uint8_t cls) {
    size_t step = (size_t)gm_transfer_count(cls) * gm_class_size[cls];
    if (step > GM_TRANSFER_BYTES)
        step = GM_TRANSFER_BYTES;
    if (c->bound + step > EARN_FACTOR * c->base)
        return;
    size_t total = __atomic_load_n(&earned_total, __ATOMIC_RELAXED);
    do {
        if (total + step > EARN_BUDGET)
            return;
    } while (!__atomic_compare_exchange_n(&earned_total, &total, total + step, true,
                                          __ATOMIC_RELAXED, __ATOMIC_RELAXED));
    c->bound += step;
}

size_t gm_cachebound_earned_total(void) { return __atomic_load_n(&earned_total, __ATOMIC_RELAXED); }

void gm_cachebound_give_back(gm_mcache_t *c) {
    if (c->bound > c->base)
        __atomic_fetch_sub(&earned_total, c->bound - c->base, __ATOMIC_RELAXED);
    c->bound = c->base;
}

/* Lets a list hold step more objects, within the class's and thread's caps. */
static void grow_max(gm_mcache_t *c, uint8_t cls, uint32_t step) {
    uint32_t max = c->max[cls];
    size_t bytes = (size_t)step * gm_class_size[cls];
    if (max + step > bin_cap(c, cls))
        return;
    if (c->max_bytes + bytes > c->bound)
        return;
    set_max(c, cls, max + step);
}

/* Slow start doubles max up to the batch: with batches of up to 128
 * objects, growing by one took 128 refills and overflows to reach a batch,
 * each moving a part of one, which cannot be parked, to or from the spans
 * (bench/shuffle: 0.15 s with batches of 32 objects, 0.18 s with 128 and
 * steps of one, 0.15 s with doubling; 5 interleaved runs). */
static uint32_t slow_step(const gm_mcache_t *c, uint8_t cls, uint32_t batch) {
    uint32_t max = c->max[cls];
    return max < batch - max ? max : batch - max;
}

void gm_cachebound_shrink(gm_mcache_t *c, uint8_t cls) {
    uint32_t max = c->max[cls], batch = gm_transfer_count(cls);
    if (max > batch)
        set_max(c, cls, max - batch > batch ? max - batch : batch);
}

/* Past slow start a list grows by a batch only if it has overflowed since
 * the last trim: the thread frees as well as allocates this class.  A thread
 * that only allocates it would gain nothing from a longer list and would
 * use up the thread's bound. */
void gm_cachebound_refilled(gm_mcache_t *c, uint8_t cls) {
    uint32_t batch = gm_transfer_count(cls);
    if (c->max[cls] < batch)
        grow_max(c, cls, slow_step(c, cls, batch));
    else if (gm_class_bit(c->overflowed, cls))
        grow_max(c, cls, batch);
    c->overages[cls] = 0;
}

/* Grow in slow start, else shrink if the list keeps overflowing with no
 * refill between (the thread frees more than it allocates).  A
 * burst of frees overflows a list of max objects about burst / batch - max /
 * batch times, so only overflows past max / batch + MAX_OVERAGES count: a
 * list that bursts of frees overflow a few times keeps growing on the
 * refills between them until a burst fits. */
void gm_cachebound_overflowed(gm_mcache_t *c, uint8_t cls) {
    uint32_t batch = gm_transfer_count(cls);
    gm_set_class_bit(c->overflowed, cls);
    if (c->max[cls] < batch) {
        grow_max(c, cls, slow_step(c, cls, batch));
    } else if (++c->overages[cls] > c->max[cls] / batch + MAX_OVERAGES) {
        gm_cachebound_shrink(c, cls);
        c->overages[cls] = 0;
    }
}
