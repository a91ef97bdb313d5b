/*
 * pagemap.c — from an address to the arena, span and size class that own it.
 *
 * Two levels, as Go's arena index: gm_arena_map has one entry per 64 MiB slot
 * of the 47-bit address space (2^21 pointers, 16 MiB of zero-initialised,
 * lazily faulted .bss); each heap arena holds a 32-bit page_info word and a
 * span pointer per 8 KiB page.  The free fast path reads a second table of the
 * same shape, gm_page_info_map, whose entry is the slot's page_info array
 * biased by the slot's first page number: a lookup is a shift, a load, a
 * shift and a load, with no lock, no hashing and no mask, which is what lets
 * free() find a block's class on its fast path.  Huge blocks have a small
 * descriptor of their own (gm_huge_t, huge.c), entered, tagged with
 * GM_SLOT_HUGE, in every slot the reservation covers in gm_arena_map only, so
 * the fast path sends them to the slow one, which tells the two kinds apart
 * by the tag without reading the descriptor.
 *
 * Invariants:
 *   1. gm_arena_map[slot] changes only from 0 to an arena or a tagged huge
 *      descriptor (claim) and back (unclaim of a huge block), under the heap
 *      lock; readers use acquire loads and need no lock.  Descriptors and
 *      arenas come from fixalloc and are never unmapped, so a word read just
 *      before an unclaim still leads to readable memory.
 *      gm_page_info_map[slot] is non-zero exactly when gm_arena_map[slot] is
 *      a heap arena, and is written with it.
 *   2. An address is an object start iff its offset in the span passes
 *      gm_class_is_start (one multiply, one compare; see mksizeclasses.c):
 *      interior addresses and the tail that fits no object are not.
 *   3. For every page of an in-use small span, page_info = cls | index << 13 and
 *      spans[] points at the span.  For a large block only the first page has
 *      spans[] set (page_info 0).  Every other page has both zero.  Entries
 *      are written before the span's memory is handed out and cleared after
 *      all of it came back, so a valid pointer never sees them change.
 *   4. Exception to 3: when a large block is freed to the heap, spans[] of its
 *      first page keeps a tag, its size in bytes with the low bit set (span
 *      structs are 8-byte aligned, so no span pointer has it), instead of
 *      NULL.  The tag means "a large block of this size started here and
 *      was freed, and no block or span has started here since": making a
 *      span or block whose pages include this one as its first (or any, for
 *      a small span) overwrites it.  So free() of the address once more is a
 *      double free, named as such with the block's size, however the pages
 *      were merged, released or lent to the interior of another block in
 *      between.  Readers of spans[] test the low bit before following it.
 */
#include "internal.h"

uintptr_t gm_arena_map[GM_ARENA_MAP_ENTRIES];
uintptr_t gm_page_info_map[GM_ARENA_MAP_ENTRIES];

/* gm_page_info_map's entry for slot of heap arena a: page_info biased by
 * the slot's first page number (see internal.h). */
static uintptr_t page_info_bias(const gm_arena_t *a, uintptr_t slot) {
    uintptr_t first_page = slot << (GM_ARENA_SHIFT - GM_PAGE_SHIFT);
    return (uintptr_t)a->page_info - first_page * sizeof(gm_page_info_t);
}

static uintptr_t first_slot(uintptr_t start) { return start >> GM_ARENA_SHIFT; }
static uintptr_t last_slot(uintptr_t start, size_t size) {
    return (start + size - 1) >> GM_ARENA_SHIFT;
}

/* Enters word in every slot [start, start+size) touches (and, for a heap
 * arena, its page_info bias); fails, changing nothing, if any slot is taken
 * or out of range.  Caller holds the heap lock. */
static bool claim(uintptr_t start, size_t size, uintptr_t word, const gm_arena_t *arena) {
    uintptr_t first = first_slot(start), last = last_slot(start, size);
    if (last >= GM_ARENA_MAP_ENTRIES || last < first)
        return false;
    for (uintptr_t i = first; i <= last; i++)
        if (gm_arena_map[i])
            return false;
    for (uintptr_t i = first; i <= last; i++) {
        __atomic_store_n(&gm_arena_map[i], word, __ATOMIC_RELEASE);
        if (arena)
            __atomic_store_n(&gm_page_info_map[i], page_info_bias(arena, i), __ATOMIC_RELEASE);
    }
    return true;
}

bool gm_pagemap_claim(uintptr_t start, size_t size, gm_arena_t *arena) {
    return claim(start, size, (uintptr_t)arena, arena);
}

bool gm_pagemap_claim_huge(uintptr_t start, size_t size, gm_huge_t *d) {
    return claim(start, size, (uintptr_t)d | GM_SLOT_HUGE, NULL);
}

void gm_pagemap_unclaim(uintptr_t start, size_t size) {
    uintptr_t first = first_slot(start), last = last_slot(start, size);
    for (uintptr_t i = first; i <= last; i++) {
        __atomic_store_n(&gm_page_info_map[i], 0, __ATOMIC_RELEASE);
        __atomic_store_n(&gm_arena_map[i], 0, __ATOMIC_RELEASE);
    }
}

void gm_pagemap_set_span(gm_arena_t *a, gm_span_t *s) {
    uintptr_t first = gm_page_index(s->base);
    if (s->cls == 0) {
        a->spans[first] = s;
        a->page_info[first] = 0;
        return;
    }
    for (uint32_t i = 0; i < s->npages; i++) {
        a->spans[first + i] = s;
        a->page_info[first + i] = (gm_page_info_t)(s->cls | (i << GM_PAGE_SHIFT));
    }
}

/* The tag a freed large block of size bytes leaves (invariant 4). */
static gm_span_t *freed_large_tag(size_t size) { return (gm_span_t *)(uintptr_t)(size | 1); }
static bool is_tag(const gm_span_t *s) { return ((uintptr_t)s & 1) != 0; }

/* A span being freed (state GM_SPAN_FREE) that is a large block leaves its
 * tag; a large block that moves (realloc) or a small span leaves nothing. */
void gm_pagemap_clear_span(gm_arena_t *a, gm_span_t *s) {
    uintptr_t first = gm_page_index(s->base);
    uint32_t n = s->cls == 0 ? 1 : s->npages;
    if (n == 1) {   /* most spans: two stores, not the two memset calls of the loop */
        bool freed_large = s->cls == 0 && s->state == GM_SPAN_FREE;
        a->spans[first] = freed_large ? freed_large_tag(s->large_size) : NULL;
        a->page_info[first] = 0;
        return;
    }
    for (uint32_t i = 0; i < n; i++) {
        a->spans[first + i] = NULL;
        a->page_info[first + i] = 0;
    }
}

gm_span_t *gm_pagemap_span_of(uintptr_t addr) {
    gm_arena_t *a = gm_pagemap_arena(addr);
    if (!a)
        return NULL;
    uintptr_t page = gm_page_index(addr);
    gm_page_info_t info = a->page_info[page];
    uint8_t cls = gm_page_info_class(info);
    if (cls) {
        gm_span_t *s = a->spans[page - gm_page_info_index(info)];
        return gm_class_is_start(cls, addr - s->base) ? s : NULL;
    }
    gm_span_t *s = a->spans[page];
    if (s && !is_tag(s) && s->state == GM_SPAN_LARGE && s->base == addr)
        return s;
    return NULL;
}

size_t gm_pagemap_freed_large(uintptr_t addr) {
    gm_arena_t *a = gm_pagemap_arena(addr);
    if (!a || (addr & (GM_PAGE_SIZE - 1)))
        return 0;
    uintptr_t page = gm_page_index(addr);
    if (a->page_info[page])
        return 0;   /* a small span's page now */
    gm_span_t *s = __atomic_load_n(&a->spans[page], __ATOMIC_RELAXED);
    return is_tag(s) ? (uintptr_t)s & ~(uintptr_t)1 : 0;
}
