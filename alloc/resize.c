/*
 * resize.c — a large block resized where it is, for realloc.
 *
 * Growing takes the free pages right after the block, shrinking frees its
 * tail (gm_mheap_resize_large).  When the pages after it are too few, a
 * growing block may take the free pages just before it as well
 * (gm_mheap_grow_large_down; the caller moves the contents down): a block
 * that moves away leaves a hole its growing neighbour then fills, where a
 * move to a new run would leave a second hole (bench/realloc: 300 of its 920
 * large moves, 6% fewer page faults).
 *
 * Invariants: the pages a block takes were free pages of its own arena and
 * are marked dirty (they may hold old bytes); its span entry moves with its
 * start; every count is mheap.c's, changed through the primitives mheap.h
 * declares.
 *
 * Locking: each call takes the heap lock (gm_heap_lock) for its whole work;
 * functions named _locked run with it held.
 */
#include "internal.h"
#include "mheap.h"
#include "pagebits.h"

#define PAGE GM_PAGE_SIZE

/* Takes the more pages right after large block s for it (not yet counted in
 * its size); false, changing nothing, when they are not all free pages of its
 * arena or cannot be committed. */
static bool take_after_locked(gm_span_t *s, uint32_t more) {
    gm_arena_t *a = s->arena;
    uintptr_t end = gm_page_index(s->base) + s->npages;
    if (end + more > GM_ARENA_PAGES || s->base + ((uintptr_t)s->npages + more) * PAGE > a->hi ||
        gm_bits_count(a->free_bits, end, more) != more || !gm_mheap_take_pages_locked(a, end, more))
        return false;
    gm_bits_set(a->dirty_bits, end, more);
    return true;
}

/* Grows or shrinks large block s in place to npages: the pages after it must
 * be free pages of its arena; a shrink gives the tail back. */
static bool resize_large_locked(gm_span_t *s, uint32_t npages) {
    if (npages > s->npages) {
        gm_mheap_flush_pages_locked();
        if (!take_after_locked(s, npages - s->npages))
            return false;
    } else if (npages < s->npages) {
        gm_mheap_free_pages_locked(s->arena, s->base + (uintptr_t)npages * PAGE, s->npages - npages);
    }
    gm_mheap_set_large_pages_locked(s, npages);
    return true;
}

uintptr_t gm_mheap_grow_large_down(gm_span_t *s, size_t size) {
    uint32_t npages = (uint32_t)((size + PAGE - 1) / PAGE);
    uintptr_t base = 0;
    gm_lock(&gm_heap_lock);
    gm_arena_t *a = s->arena;
    uintptr_t first = gm_page_index(s->base), end = first + s->npages;
    if (npages > s->npages) {
        uint32_t need = npages - s->npages;
        gm_mheap_flush_pages_locked();
        uint32_t below = gm_bits_run_next_to(a->free_bits, GM_ARENA_PAGES, first, true, need);
        uint32_t above = below < need ? gm_bits_run_next_to(a->free_bits, GM_ARENA_PAGES, end, false, need - below) : 0;
        /* The pages above may need committing, which can fail: take them
         * first; those below lie under a committed block. */
        if (below > 0 && below + above == need &&
            (above == 0 || take_after_locked(s, above)) &&
            gm_mheap_take_pages_locked(a, first - below, below)) {
            gm_bits_set(a->dirty_bits, first - below, below);
            gm_pagemap_clear_span(a, s);
            s->base -= (uintptr_t)below * PAGE;
            gm_mheap_set_large_pages_locked(s, npages);
            gm_pagemap_set_span(a, s);
            base = s->base;
        }
    }
    gm_mheap_unlock();
    return base;
}

/* Resizes large block s in place to at least size bytes (size > 0); false,
 * changing nothing, when the pages after it are not free. */
bool gm_mheap_resize_large(gm_span_t *s, size_t size) {
    uint32_t npages = (uint32_t)((size + PAGE - 1) / PAGE);
    gm_lock(&gm_heap_lock);
    bool ok = resize_large_locked(s, npages);
    gm_mheap_unlock();
    return ok;
}
