/*
 * heapcheck.c — the page heap's validators (GM_CHECKS=1 builds only; the
 * default build compiles nothing here).
 *
 * mheap.c calls gm_heapcheck_locked each time a slow path drops the heap
 * lock, handing it what it checks: the arena list and the heap's page
 * totals.  Per arena (see mheap.c, "Per-page state"): released pages are
 * free; pages at or above commit_end are free, released and clean; no page
 * outside the reservation is free; free_pages and released_pages count the
 * bits.  Then the totals: every page of every arena is in use, free in the
 * bitmaps, on the single-page stack or in flight in a release step, and the
 * free backed pages are the bitmaps' plus the stack's.  A broken invariant
 * aborts with its file and line (gm_check_failed).
 *
 * Locking: the caller holds the heap lock.
 */
#include "internal.h"
#include "mheap.h"
#include "pagebits.h"

#if GM_CHECKS
#define PAGE GM_PAGE_SIZE

/* The per-page invariants of arena a (see mheap.c, "Per-page state"), and its
 * counts against its bits. */
static void check_arena_locked(const gm_arena_t *a) {
    uintptr_t lo = gm_page_index(a->lo), hi = lo + (a->hi - a->lo) / PAGE;
    uintptr_t end = (a->commit_end - a->base) / PAGE;
    for (uint32_t w = 0; w < GM_ARENA_BITMAP_WORDS; w++)
        GM_CHECK_THAT(!(a->released_bits[w] & ~a->free_bits[w]), "mheap: a released page is not free");
    GM_CHECK_THAT(gm_bits_count(a->free_bits, 0, GM_ARENA_PAGES) == a->free_pages &&
                      gm_bits_count(a->released_bits, 0, GM_ARENA_PAGES) == a->released_pages &&
                      a->commit_end >= a->lo && a->commit_end <= a->hi,
                  "mheap: an arena's page counts differ from its bits, or commit_end is outside it");
    GM_CHECK_THAT(gm_bits_count(a->free_bits, lo, hi - lo) == a->free_pages,
                  "mheap: a page outside the arena's reservation is free");
    GM_CHECK_THAT(end == hi || (gm_bits_count(a->free_bits, end, hi - end) == hi - end &&
                                gm_bits_count(a->released_bits, end, hi - end) == hi - end &&
                                !gm_bits_any(a->dirty_bits, end, hi - end)),
                  "mheap: a page at or above commit_end is not free, released and clean");
}

void gm_heapcheck_locked(const gm_arena_t *arenas, uint64_t pages_in_use,
                         uint64_t pages_free_backed, uint32_t stacked_pages, uint32_t in_flight) {
    uint64_t taken = 0, free_backed = 0;
    for (const gm_arena_t *a = arenas; a; a = a->next) {
        check_arena_locked(a);
        GM_CHECK_THAT(!a->next || a->next->base > a->base, "mheap: arenas out of address order");
        taken += (a->hi - a->lo) / PAGE - a->free_pages;
        free_backed += a->free_pages - a->released_pages;
    }
    GM_CHECK_THAT(taken == pages_in_use + stacked_pages + in_flight,
                  "mheap: pages in use differ from the arenas' bits");
    GM_CHECK_THAT(free_backed + stacked_pages == pages_free_backed,
                  "mheap: free backed pages differ from the arenas' bits");
}
#endif
