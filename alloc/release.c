/*
 * release.c — the page heap's way back to the OS: the release step, which
 * gives idle huge memory or the free pages of one chunk back, and the
 * unmapping of arenas none of whose pages is in use.  The scavenger drives
 * both a step at a time (scavenger.c); malloc_trim gives everything back
 * (gm_mheap_release_all), and a request the OS refused unmaps every unused
 * arena (raw.c, gm_raw_reclaim).
 *
 * A release step: first idle huge memory (huge.c); else, the span stacks first
 * put back into the bitmaps, the backed free pages of one 2 MiB chunk (the
 * highest with pages idle for the caller's time, in runs of at least its
 * min_run: pageplace.c) are withdrawn from the free set under the heap lock,
 * released with madvise outside it, and put back as free and released.
 * madvise runs outside the lock so that allocation and free go on meanwhile;
 * the withdrawn pages are in flight, and nobody can take them.
 * Idle means freed at least so long ago: every free stamps its pages
 * (page_freed_ms, mheap.c).
 *
 * Arenas: once every page of an arena is free (and, for the scavenger, given
 * back and idle), its address space goes back with munmap, all but the
 * lowest arena's: a heap that shrank to nothing will likely grow again.
 *
 * Invariants: at most one chunk is in flight (in_flight.n != 0 only between
 * the withdrawal and the put-back of one step; the scavenge lock serialises
 * steps, scavenger.c).  A fork child whose fork came in the middle of a step
 * puts its chunk back (gm_mheap_after_fork_child).  An arena with pages in
 * flight is never unmapped.  Every count stays in mheap.c, which this file
 * changes only through the primitives mheap.h declares.
 *
 * Locking: the heap lock (gm_heap_lock) guards in_flight; each function here
 * takes it and drops it itself (gm_mheap_unlock), and never holds it across
 * madvise.  It comes after the scavenge lock, which the scavenger and
 * malloc_trim hold around a step.
 */
#include "internal.h"
#include "mheap.h"
#include "pagebits.h"

#define PAGE GM_PAGE_SIZE

/* ---- the release step ---------------------------------------------------- */

/* The pages a release step has taken out of the free set while it gives
 * them back, outside the lock (n == 0: none).  Heap lock. */
static struct gm_chunk_pages in_flight;

/* Gives back the backed free pages of one chunk (those in runs of min_run
 * pages or more); returns the bytes released, 0 when there is nothing
 * (eligible) left. */
size_t gm_mheap_release_step(bool force, uint32_t idle_ms, uint32_t min_run) {
    size_t dropped = gm_huge_release_idle(force ? 0 : idle_ms);
    if (dropped)
        return dropped;
    struct gm_chunk_pages c = {0};
    gm_lock(&gm_heap_lock);
    gm_mheap_flush_pages_locked();
    c.n = gm_place_release_chunk_locked(*gm_mheap_arenas_locked(), force, idle_ms, min_run,
                                        &c.arena, &c.chunk, c.masks);
    if (!c.n) {
        gm_mheap_unlock();
        return 0;
    }
    gm_mheap_withdraw_locked(&c);
    in_flight = c;
    gm_mheap_unlock();

    uintptr_t first = (uintptr_t)c.chunk * GM_CHUNK_PAGES;
    bool zeroed = true;
    for (uint32_t i = gm_bits_next(c.masks, GM_CHUNK_PAGES, 0, true); i < GM_CHUNK_PAGES;) {
        uint32_t end = gm_bits_next(c.masks, GM_CHUNK_PAGES, i, false);
        zeroed &= gm_os_release((void *)(c.arena->base + (first + i) * PAGE), (size_t)(end - i) * PAGE);
        i = gm_bits_next(c.masks, GM_CHUNK_PAGES, end, true);
    }

    gm_lock(&gm_heap_lock);
    gm_mheap_put_back_locked(&c, true, zeroed);
    in_flight.n = 0;
    gm_mheap_unlock();
    return (size_t)c.n * PAGE;
}

/* Whether madvise ran on them or not, the pages hold no data of the
 * program's: free and backed (and dirty, as they were) is true either way. */
void gm_mheap_after_fork_child(void) {
    gm_lock(&gm_heap_lock);
    if (in_flight.n) {
        gm_mheap_put_back_locked(&in_flight, false, false);
        in_flight.n = 0;
    }
    gm_mheap_unlock();
}

size_t gm_mheap_release_all(void) {
    size_t total = 0, step;
    while ((step = gm_mheap_release_step(true, 0, 1)) > 0)
        total += step;
    return total;
}

/* ---- giving arenas back -------------------------------------------------- */

/* Whether every page of arena a is free and, with idle_ms, given back and
 * freed at least idle_ms ago (span stacks flushed by the caller). */
static bool arena_unused_locked(const gm_arena_t *a, uint32_t idle_ms, uint32_t now) {
    uint32_t pages = (uint32_t)((a->hi - a->lo) / PAGE);
    if (a->free_pages != pages || (in_flight.n && in_flight.arena == a))
        return false;
    if (!idle_ms)
        return true;
    if (a->released_pages != pages)
        return false;
    uint32_t first = (uint32_t)gm_page_index(a->lo);
    uint32_t end = (uint32_t)gm_page_index(a->commit_end - 1) + 1;
    for (uint32_t i = first; a->commit_end > a->lo && i < end; i++)
        if (now - a->page_freed_ms[i] < idle_ms)
            return false;
    return true;
}

/* Unmaps the arenas with no page in use: every one (idle_ms 0, when the OS
 * refused address space), or those wholly given back and idle for idle_ms,
 * keeping the lowest arena (the scavenger: a heap that shrank to nothing
 * will likely grow again, and one arena's metadata is cheap to keep).  The
 * close-fit hints may name an arena that goes: they are dropped.  Returns
 * the bytes of address space given back. */
size_t gm_mheap_unmap_unused(uint32_t idle_ms) {
    size_t total = 0;
    uint32_t now = gm_os_clock_ms();
    gm_lock(&gm_heap_lock);
    gm_mheap_flush_pages_locked();
    gm_arena_t **link = gm_mheap_arenas_locked();
    if (idle_ms && *link)
        link = &(*link)->next;
    while (*link) {
        if (arena_unused_locked(*link, idle_ms, now))
            total += gm_mheap_unmap_arena_locked(link);
        else
            link = &(*link)->next;
    }
    if (total)
        gm_place_forget_fits_locked();
    if (!idle_ms && gm_huge_drop_cached_locked())
        total++;   /* their size was counted as idle huge memory, not here */
    gm_mheap_unlock();
    return total;
}
