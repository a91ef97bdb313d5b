/*
 * pagecache.c — per-thread cache of freed large blocks.
 *
 * A large block (a span of whole pages, 32 KiB < size) of at most
 * GM_PAGE_CACHE_MAX_PAGES pages that a thread frees stays, span and all, on
 * that thread's list for its page count, while the thread holds at most
 * GM_PAGE_CACHE_BYTES this way.  The thread's next request for the same
 * number of pages takes it back: no heap lock, no bitmap search, no pagemap
 * writes, no span allocation — the four lock round trips and ~1000
 * instructions of a trip through the mheap become a list pop.  Go keeps a
 * per-P cache of free pages for the same reason; tcmalloc gets the effect by
 * giving blocks up to 256 KiB size classes.
 *
 * Invariants: a cached span keeps state GM_SPAN_LARGE (its pages count as in
 * use, the scavenger does not touch them) with thread_cached set, so a second
 * free of its block is reported as a double free; its bytes are in the
 * owner's page cache bytes, which statistics count as cached, not in use.
 * Memory held: at most GM_PAGE_CACHE_BYTES per thread, flushed back to the
 * mheap on thread exit, malloc_trim, and by the epoch trim (about once a
 * second, while the scavenger thread runs) when the thread reused none of
 * them since the last epoch.
 *
 * Locking: the lists belong to their thread, whose cache (gm_mcache_t.pages)
 * holds them and which hands them to these functions (mcache.c to flush them,
 * raw.c and malloc.c to put and take); the mheap lock is taken only to give
 * blocks back.
 */
#include "internal.h"

#define PAGE GM_PAGE_SIZE

void *gm_pagecache_take(gm_pagecache_t *pc, size_t size) {
    size_t npages = (size + PAGE - 1) / PAGE;
    if (npages > GM_PAGE_CACHE_MAX_PAGES)
        return NULL;
    gm_span_t *s = pc->large[npages];   /* NULL in the empty cache */
    if (!s)
        return NULL;
    pc->large[npages] = s->next;
    pc->bytes -= s->large_size;
    pc->taken = true;
    s->thread_cached = 0;
    return (void *)s->base;
}

bool gm_pagecache_put(gm_pagecache_t *pc, gm_span_t *s) {
    if (s->npages > GM_PAGE_CACHE_MAX_PAGES || pc->bytes + s->large_size > GM_PAGE_CACHE_BYTES)
        return false;
    s->thread_cached = 1;
    s->next = pc->large[s->npages];
    pc->large[s->npages] = s;
    pc->bytes += s->large_size;
    return true;
}

void gm_pagecache_flush(gm_pagecache_t *pc, bool keep_if_taken) {
    bool taken = pc->taken;
    pc->taken = false;
    if (keep_if_taken && taken)
        return;
    for (uint32_t n = 1; n <= GM_PAGE_CACHE_MAX_PAGES; n++) {
        gm_span_t *s = pc->large[n];
        pc->large[n] = NULL;
        while (s) {
            gm_span_t *next = s->next;
            s->thread_cached = 0;
            gm_mheap_free_span(s);
            s = next;
        }
    }
    pc->bytes = 0;
}
