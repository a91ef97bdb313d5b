/*
 * raw.c — the allocation paths under the debug layer: a block of a size and
 * alignment, a block's usable size, a block's free, with the checks that are
 * always on (an address gomalloc did not hand out, a double free) but without
 * debug mode's canaries and fills.
 *
 * malloc.c's entry points take their fast paths first (mcache.h) and come
 * here on a slow one; debug.c (GOMALLOC_DEBUG=1) wraps every block it hands
 * out around these.  A small request goes to the thread's cache
 * (gm_mcache_alloc_slow), a large one to the page heap: arena pages up to
 * GM_HUGE_THRESHOLD, a reservation of its own from there, and above
 * GM_BIG_MIN whichever faults in fewer pages (mheap.c, "one pool for big
 * blocks").  A freed large block goes to the thread's page cache when it
 * qualifies (pagecache.c), else back to the heap.
 *
 * Like malloc.c, and unlike every layer below, this file sets errno: ENOMEM
 * with every NULL it returns.  It holds no state and takes no lock of its own.
 */
#include <string.h>

#include "guard.h"
#include "mcache.h"

#define PAGE GM_PAGE_SIZE
#define MIN_ALIGN 16

/* A block of at least size bytes (size > 32 KiB, or an alignment small
 * classes cannot give), aligned to align, zeroed if asked.  Above GM_BIG_MIN
 * (with page alignment) the mheap picks arena pages or a reservation of the
 * block's own, whichever faults in fewer pages; up to it, and for larger
 * alignments, blocks below GM_HUGE_THRESHOLD are arena pages and the others
 * reservations. */
void *gm_raw_alloc_large(size_t size, size_t align, bool zero) {
    if (size > PTRDIFF_MAX || align > PTRDIFF_MAX - size)
        return gm_fail_nomem();
    if (size == 0)
        size = 1;
    size_t dirty;
    void *p;
    for (int attempt = 0;; attempt++) {
        if (size > GM_BIG_MIN && align <= PAGE) {
            p = gm_mheap_alloc_big(size, &dirty);
        } else if (size + (align > PAGE ? align : 0) >= GM_HUGE_THRESHOLD) {
            p = gm_huge_alloc(size, align, &dirty);
        } else {
            gm_span_t *s = gm_mheap_alloc_large(size, align > PAGE ? align : PAGE);
            p = s ? (void *)s->base : NULL;
            dirty = s && s->fresh_zero ? 0 : size;
        }
        if (p || attempt || !gm_raw_reclaim(size + align))
            break;
    }
    if (!p)
        return gm_fail_nomem();
    gm_mheap_count_trip(gm_pagemap_huge((uintptr_t)p) != NULL, true);
    if (GM_UNLIKELY(gm_options.profile_rate))
        gm_profile_note_large(p, size);
    if (zero && dirty)   /* pages known zero are not cleared again */
        memset(p, 0, dirty < size ? dirty : size);
    return p;
}

/* The OS refused memory: whatever this thread's cache, the dead threads'
 * parked caches and the central lists hold goes back to the heap, and the
 * arenas with no page in use and the cached huge reservations are unmapped,
 * so that a new reservation can have their address space (RLIMIT_AS, a full
 * address space).  True if anything went back: worth one more try.  A
 * request larger than the limit, or (with no limit) than all the address
 * space the heap holds, could not be served by what is given back, and
 * keeps the heap as it is. */
bool gm_raw_reclaim(size_t size) {
    size_t limit = gm_os_address_limit();
    if (limit == SIZE_MAX) {
        struct gm_heap_stats h;
        gm_mheap_stats(&h);
        limit = h.mapped;
    }
    if (size > limit)
        return false;
    gm_mcache_flush_current();
    gm_mcache_release_parked();
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++)
        gm_mcentral_drain(cls);
    return gm_mheap_unmap_unused(0) > 0;
}

/* Smallest class at least size bytes whose objects all start at a multiple
 * of align (span bases are page-aligned); 0 if none. */
uint8_t gm_raw_aligned_class(size_t size, size_t align) {
    if (size > GM_MAX_SMALL_SIZE || align > PAGE)
        return 0;
    for (uint8_t cls = gm_size_class(size); cls < GM_NUM_CLASSES; cls++)
        if (gm_class_size[cls] % align == 0)
            return cls;
    return 0;
}

/* A block without the debug layer; align is a power of two. */
void *gm_raw_alloc(size_t size, size_t align, bool zero) {
    if (size > PTRDIFF_MAX)
        return gm_fail_nomem();
    uint8_t cls = 0;
    if (size <= GM_MAX_SMALL_SIZE)
        cls = align <= MIN_ALIGN ? gm_size_class(size) : gm_raw_aligned_class(size, align);
    if (!cls)
        return gm_raw_alloc_large(size, align, zero);
    void *p = gm_mcache_alloc_slow(gm_class_size[cls]);
    if (!p && gm_raw_reclaim(size))
        p = gm_mcache_alloc_slow(gm_class_size[cls]);
    if (!p)
        return gm_fail_nomem();
    if (zero)
        memset(p, 0, size);
    return p;
}

/* ptr is not a block gomalloc has out: a large block freed to the heap
 * before (its first page remembers it, see pagemap.c) is reported as what,
 * with its size; anything else as an invalid pointer. */
static GM_COLD __attribute__((noreturn)) void not_a_block(const char *call, const void *ptr,
                                                         const char *what) {
    size_t freed = gm_pagemap_freed_large((uintptr_t)ptr);
    if (freed)
        gm_report_sized(call, what, ptr, freed);
    gm_invalid_pointer(call, ptr);
}

/* Frees ptr, which no arena's pagemap knows as a block: a guarded block
 * (outside the arenas, so asked only here, off the large blocks' path), or
 * a report. */
static GM_NOINLINE void free_unknown(void *ptr, const char *call) {
    if (!gm_guard_owns(ptr))
        not_a_block(call, ptr, "double free of");
    gm_guard_free(ptr, call);
}

/* Frees a block without the debug layer. */
void gm_raw_free(void *ptr, const char *call) {
    uintptr_t addr = (uintptr_t)ptr;
    gm_huge_t *d = gm_pagemap_huge(addr);
    if (d) {
        if (addr != d->lo)
            gm_invalid_pointer(call, ptr);
        if (__atomic_load_n(&d->cached, __ATOMIC_RELAXED))
            gm_report_sized(call, "double free of", ptr, d->size);
        gm_mheap_count_trip(true, false);
        if (GM_UNLIKELY(d->sampled)) {
            d->sampled = false;
            gm_profile_forget(ptr);
        }
        gm_huge_free(d);
        return;
    }
    gm_span_t *s = gm_pagemap_span_of(addr);
    if (!s) {
        free_unknown(ptr, call);
        return;
    }
    if (!s->cls) {
        if (s->thread_cached)
            gm_report_sized(call, "double free of", ptr, s->large_size);
        bool sampled_small = false;
        if (GM_UNLIKELY(s->sampled)) {
            s->sampled = 0;
            sampled_small = s->large_size <= GM_MAX_SMALL_SIZE;
            gm_profile_forget(ptr);
        }
        /* A sampled small block's page goes back to the heap, for the next
         * sample of any thread (profile.c). */
        gm_mcache_t *c = sampled_small ? NULL : gm_mcache_for_thread();
        if (!c || !gm_pagecache_put(&c->pages, s)) {
            gm_mheap_count_trip(false, false);
            gm_mheap_free_span(s);
        }
        return;
    }
    if (gm_block_is_free(ptr))
        gm_double_free(call, ptr, s->cls);
    gm_mcache_free_nocache(ptr, s->cls);
}

/* Usable bytes of a block gomalloc handed out (and its class, 0 if large);
 * reports anything else, a small or large block found free as freed. */
static size_t usable(const void *ptr, const char *call, const char *freed, uint8_t *cls_out) {
    uintptr_t addr = (uintptr_t)ptr;
    gm_huge_t *d = gm_pagemap_huge(addr);
    *cls_out = 0;
    if (d && addr == d->lo) {
        if (__atomic_load_n(&d->cached, __ATOMIC_RELAXED))
            gm_report_sized(call, freed, ptr, d->size);
        return d->size;
    }
    gm_span_t *s = gm_pagemap_span_of(addr);
    if (!s && gm_guard_owns(ptr))
        return gm_guard_usable(ptr, call);
    if (!s)
        not_a_block(call, ptr, freed);
    if (!s->cls && s->thread_cached)
        gm_report_sized(call, freed, ptr, s->large_size);
    if (s->cls && gm_block_is_free(ptr))
        gm_report_block(call, freed, ptr, s->cls);
    *cls_out = s->cls;
    return s->cls ? gm_class_size[s->cls] : s->large_size;
}

size_t gm_raw_usable(const void *ptr, const char *call, uint8_t *cls_out) {
    return usable(ptr, call, "double free of", cls_out);
}

size_t gm_raw_usable_size(const void *ptr, uint8_t *cls_out) {
    return usable(ptr, "malloc_usable_size()", "freed block", cls_out);
}
