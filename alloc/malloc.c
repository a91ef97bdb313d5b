/*
 * malloc.c — gomalloc's entry points: size checks, errno, calloc overflow,
 * realloc policy, aligned allocation, initialisation and fork.
 *
 * Structures, top down (see internal.h for the lock order):
 *   mcache    per thread: a free list per size class (lock-free)
 *   mcentral  per class: spans with free objects, parked batches (a lock each)
 *   mheap     arenas of 8 KiB pages, first-fit bitmaps, large and huge blocks
 *   pagemap   address -> arena -> (class, page in span) / span
 *
 * Allocating n bytes:
 *   1. n <= 32 KiB: class = table[(n + 15) / 16]; pop the thread's list.
 *   2. List empty: take a batch from the class's mcentral (a parked batch, or
 *      objects carved from a span with free slots).
 *   3. No span with free slots: the mcentral takes a span from the mheap.
 *   4. No free run in any arena: the mheap reserves another arena.
 *   5. n > 32 KiB: a page run from the mheap; n >= 16 MiB: its own mapping.
 * Freeing p:
 *   1. pagemap: arena of p, page info (class, page index in span).
 *   2. Small and the start of an object: push on this thread's list; past
 *      the list's bound, give a batch back to the mcentral.
 *   3. Large/huge: back to the mheap (or unmapped).  Anything else, an
 *      address gomalloc did not hand out, is reported and aborts.
 *
 * Only this layer sets errno.  Failures return NULL with ENOMEM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gomalloc.h"
#include "mcache.h"

#define PAGE GM_PAGE_SIZE
#define OS_PAGE 4096
#define MIN_ALIGN 16

static int init_state;   /* atomic: 0 never, 1 running, 2 done */

/* ---- fork ---------------------------------------------------------------- */

static void fork_prepare(void) {
    gm_scavenger_lock();
    gm_mcache_registry_lock();
    gm_mcentral_lock_all();
    gm_mheap_lock();
    gm_fixalloc_lock();
}

static void fork_parent(void) {
    gm_fixalloc_unlock();
    gm_mheap_unlock();
    gm_mcentral_unlock_all();
    gm_mcache_registry_unlock();
    gm_scavenger_unlock();
}

static void fork_child(void) {
    gm_fixalloc_reinit_child();
    gm_mheap_reinit_child();
    gm_mcentral_reinit_child();
    gm_mcache_reinit_child();
    gm_scavenger_reinit_child();
}

/* Runs once, on the first call that can hand out a block (or from the
 * constructor, whichever comes first), so options such as GOMALLOC_DEBUG are
 * fixed before any block exists.  The initialising thread may re-enter (its
 * pthread_atfork can call malloc): options are read first, so it finds them
 * set.  Any other thread waits for the end. */
static __thread bool tls_initialising __attribute__((tls_model("initial-exec")));

static GM_NOINLINE void init_slow(void) {
    int expected = 0;
    if (tls_initialising)
        return;
    if (!__atomic_compare_exchange_n(&init_state, &expected, 1, false,
                                     __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
        while (__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != 2)
            sched_yield();
        return;
    }
    tls_initialising = true;
    gm_options_init();
    if (!__atomic_load_n(&gm_secret, __ATOMIC_ACQUIRE))
        gm_hardening_init();
    gm_mcache_init();
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    tls_initialising = false;
    __atomic_store_n(&init_state, 2, __ATOMIC_RELEASE);
}

void gm_init(void) {
    if (GM_UNLIKELY(__atomic_load_n(&init_state, __ATOMIC_ACQUIRE) != 2))
        init_slow();
}

/* Runs before main and before the program's threads and forks. */
__attribute__((constructor)) static void gm_constructor(void) { gm_init(); }

/* ---- memcheck client requests (make VALGRIND=1) ------------------------------ */
/* Each entry point tells memcheck about the block it hands out or takes back,
 * so memcheck reports use after free, reads and writes past the requested
 * size (the rest of the block is marked inaccessible) and leaks in a program
 * linked with gomalloc.  gomalloc's own use of a free block's first two words
 * is marked defined by the link helpers (internal.h). */
#if GM_VALGRIND
#include <valgrind/memcheck.h>

static void *gm_vg_alloc(void *p, size_t size, bool zeroed) {
    uint8_t cls;
    if (p) {
        VALGRIND_MAKE_MEM_NOACCESS(p, gm_raw_usable(p, "malloc()", &cls));
        VALGRIND_MALLOCLIKE_BLOCK(p, size, 0, zeroed);
    }
    return p;
}
#define GM_VG_ALLOC(p, size, zeroed) gm_vg_alloc((p), (size), (zeroed))
#define GM_VG_FREE(p) \
    do { if (p) VALGRIND_FREELIKE_BLOCK((p), 0); } while (0)
static void *api_realloc(void *ptr, size_t size);
static void *gm_vg_realloc(void *ptr, size_t size);
#else
#define GM_VG_ALLOC(p, size, zeroed) (p)
#define GM_VG_FREE(p) ((void)0)
#endif

/* ---- allocation ---------------------------------------------------------- */

static void *fail_nomem(void) {
    errno = ENOMEM;
    return NULL;
}

/* A block of at least size bytes (size > 32 KiB, or an alignment small
 * classes cannot give), aligned to align, zeroed if asked. */
static void *alloc_large(size_t size, size_t align, bool zero) {
    if (size > PTRDIFF_MAX || align > PTRDIFF_MAX - size)
        return fail_nomem();
    if (size == 0)
        size = 1;
    size_t span_need = size + (align > PAGE ? align : 0);
    if (span_need >= GM_HUGE_THRESHOLD) {
        size_t dirty;
        void *p = gm_mheap_alloc_huge(size, align, &dirty);
        if (!p)
            return fail_nomem();
        if (zero && dirty)   /* only a reused reservation's written part */
            memset(p, 0, dirty);
        return p;
    }
    gm_span_t *s = gm_mheap_alloc_large(size, align > PAGE ? align : PAGE);
    if (!s)
        return fail_nomem();
    void *p = (void *)s->base;
    if (zero && !s->fresh_zero)
        memset(p, 0, size);
    return p;
}

static GM_NOINLINE void *malloc_slow(size_t size) {
    gm_init();
    gm_scavenger_check();
    if (GM_UNLIKELY(gm_options.debug))
        return gm_debug_alloc(size, MIN_ALIGN, false);
    if (size > GM_MAX_SMALL_SIZE) {
        void *p = gm_pagecache_take(size);
        return p ? p : alloc_large(size, PAGE, false);
    }
    void *p = gm_mcache_alloc_slow(size);
    return p ? p : fail_nomem();
}

static inline void *api_malloc(size_t size) {
    void *p = gm_mcache_alloc_fast(size);
    if (GM_LIKELY(p))
        return p;
    return malloc_slow(size);
}

GM_EXPORT void *gm_malloc(size_t size) { return GM_VG_ALLOC(api_malloc(size), size, false); }

static void *api_calloc(size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total))
        return fail_nomem();
    gm_init();
    if (GM_UNLIKELY(gm_options.debug))
        return gm_debug_alloc(total, MIN_ALIGN, true);
    if (total > GM_MAX_SMALL_SIZE) {
        void *p = gm_pagecache_take(total);
        return p ? memset(p, 0, total) : alloc_large(total, PAGE, true);
    }
    void *p = api_malloc(total);
    if (p)
        memset(p, 0, total);
    return p;
}

GM_EXPORT void *gm_calloc(size_t count, size_t size) {
    return GM_VG_ALLOC(api_calloc(count, size), count * size, true);
}

/* ---- free ------------------------------------------------------------------ */

/* Frees a block without the debug layer. */
void gm_raw_free(void *ptr, const char *call) {
    uintptr_t addr = (uintptr_t)ptr;
    gm_arena_t *a = gm_pagemap_arena(addr);
    if (!a)
        gm_invalid_pointer(call, ptr);
    if (a->kind == GM_ARENA_HUGE) {
        if (addr != a->huge_base)
            gm_invalid_pointer(call, ptr);
        if (__atomic_load_n(&a->huge_cached, __ATOMIC_RELAXED))
            gm_report_block(call, "double free of", ptr, 0);
        gm_mheap_free_huge(a);
        return;
    }
    gm_span_t *s = gm_pagemap_span_of(addr);
    if (!s)
        gm_invalid_pointer(call, ptr);
    if (!s->cls) {
        if (s->thread_cached)
            gm_report_block(call, "double free of", ptr, 0);
        if (!gm_pagecache_put(s))
            gm_mheap_free_span(s);
        return;
    }
    if (gm_block_is_free(ptr))
        gm_double_free(call, ptr, s->cls);
    gm_mcache_free_nocache(ptr, s->cls);
}

static GM_NOINLINE void free_slow(void *ptr, const char *call) {
    if (!ptr)
        return;
    gm_init();
    gm_scavenger_check();
    if (GM_UNLIKELY(gm_options.debug))
        gm_debug_free(ptr, call);
    else
        gm_raw_free(ptr, call);
}

static inline void api_free(void *ptr) {
    if (GM_LIKELY(gm_mcache_free_fast(ptr)))
        return;
    free_slow(ptr, "free()");
}

GM_EXPORT void gm_free(void *ptr) {
    GM_VG_FREE(ptr);
    api_free(ptr);
}

/* Usable bytes of a block gomalloc handed out (and its class, 0 if large);
 * reports anything else. */
size_t gm_raw_usable(const void *ptr, const char *call, uint8_t *cls_out) {
    uintptr_t addr = (uintptr_t)ptr;
    gm_arena_t *a = gm_pagemap_arena(addr);
    *cls_out = 0;
    if (a && a->kind == GM_ARENA_HUGE && addr == a->huge_base) {
        if (__atomic_load_n(&a->huge_cached, __ATOMIC_RELAXED))
            gm_report_block(call, "double free of", ptr, 0);
        return a->huge_size;
    }
    gm_span_t *s = gm_pagemap_span_of(addr);
    if (!s)
        gm_invalid_pointer(call, ptr);
    if (s->cls ? gm_block_is_free(ptr) : s->thread_cached)
        gm_report_block(call, strcmp(call, "malloc_usable_size()") ? "double free of" : "freed block",
                        ptr, s->cls);
    *cls_out = s->cls;
    return s->cls ? gm_class_size[s->cls] : s->large_size;
}

static size_t usable_size_checked(const void *ptr, const char *call) {
    uint8_t cls;
    return gm_raw_usable(ptr, call, &cls);
}

GM_EXPORT size_t gm_usable_size(const void *ptr) {
    if (!ptr)
        return 0;
    gm_init();
    if (GM_UNLIKELY(gm_options.debug))
        return gm_debug_usable(ptr);
    return usable_size_checked(ptr, "malloc_usable_size()");
}

/* ---- realloc --------------------------------------------------------------- */

/* Whether a small block of usable size old can serve a request of size
 * (not 0) in place: same size class, or a shrink to no less than half. */
static inline bool small_fits_in_place(size_t old, size_t size) {
    if (size - 1 >= old)   /* larger, or 0 */
        return false;
    if (gm_class_size[gm_size_to_class[(size + 15) >> 4]] == old)
        return true;
    return size >= old / 2;
}

/* Resizes a large or huge block where it is: a large block grows into the
 * free pages after it and shrinks by giving its tail pages back; a huge one
 * grows or shrinks within its reservation.  Either stays what it is (large
 * below GM_HUGE_THRESHOLD, huge at or above it); false if it cannot. */
static bool resize_in_place(void *ptr, size_t size, size_t old) {
    if (size <= GM_MAX_SMALL_SIZE)
        return false;
    if (size <= old && old - size < PAGE)
        return true;   /* same pages: nothing to do, no lock to take */
    gm_arena_t *a = gm_pagemap_arena((uintptr_t)ptr);
    if (a->kind == GM_ARENA_HUGE)
        return size >= GM_HUGE_THRESHOLD && gm_mheap_resize_huge(a, size);
    return size < GM_HUGE_THRESHOLD &&
           gm_mheap_resize_large(gm_pagemap_span_of((uintptr_t)ptr), size);
}

/* A large or huge block that cannot grow where it is, moved without a new
 * block and a copy: a large one grows into the free pages just before it
 * (its contents move down, into the hole a neighbour left, and no new hole
 * is made); a huge one has its pages remapped to a larger reservation (no
 * copy at all).  NULL if it cannot; *refused when the OS refused the
 * memory (a copy would need as much). */
static void *grow_elsewhere(void *ptr, size_t size, size_t old, bool *refused) {
    *refused = false;
    if (size <= old)
        return NULL;
    gm_arena_t *a = gm_pagemap_arena((uintptr_t)ptr);
    if (a->kind == GM_ARENA_HUGE)
        return gm_mheap_move_huge(a, size, refused);
    if (size >= GM_HUGE_THRESHOLD)
        return NULL;
    void *p = (void *)gm_mheap_grow_large_down(gm_pagemap_span_of((uintptr_t)ptr), size);
    return p ? memmove(p, ptr, old) : NULL;
}

/* What a small block of usable size old that must move to hold size bytes
 * is given: a block that outgrows its class by less than a quarter (a string
 * built by appending, an array grown an element at a time) gets a quarter
 * more, so its next few growths stay in place.  Go's classes are finer than
 * most allocators' bins (16-byte steps to 256 B, about 12% apart above), so
 * without this a growing block moves twice as often as under mimalloc:
 * bench/realloc copied 102M instructions' worth against mimalloc's 55M, and
 * with it 7% less time at the same peak RSS. */
static size_t small_growth_request(size_t old, size_t size) {
    size_t roomy = old + old / 4;
    return size > old && size < roomy ? roomy : size;
}

/* Blocks stay where they are when they can: a small block within its class
 * (or shrinking to no less than half), a large or huge one resized in place
 * (or, failing that, shrinking to no less than half); a growing large or
 * huge block next tries to move without a copy; otherwise allocate, copy,
 * free. */
static GM_NOINLINE void *realloc_slow(void *ptr, size_t size) {
    if (!ptr)
        return api_malloc(size);
    gm_init();
    if (GM_UNLIKELY(gm_options.debug))
        return gm_debug_realloc(ptr, size);
    if (size == 0) {
        if (!gm_mcache_free_fast(ptr))
            free_slow(ptr, "realloc()");
        return NULL;
    }
    uint8_t cls = gm_small_class_of(ptr);
    size_t old = GM_LIKELY(cls) ? gm_class_size[cls] : gm_raw_usable(ptr, "realloc()", &cls);
    if (cls ? small_fits_in_place(old, size)
            : resize_in_place(ptr, size, old) || (size <= old && size >= old / 2))
        return ptr;
    bool refused = false;
    void *p = cls ? NULL : grow_elsewhere(ptr, size, old, &refused);
    if (p || refused)
        return p ? p : fail_nomem();
    p = api_malloc(cls ? small_growth_request(old, size) : size);
    if (!p)
        return NULL;
    memcpy(p, ptr, old < size ? old : size);
    api_free(ptr);
    return p;
}

/* The common case, a small block that stays where it is, apart from the
 * code that moves blocks: it then needs no stack frame and saves no
 * registers (bench/realloc: 3.9M of its 5.3M calls).  A pointer gomalloc
 * handed out means gm_init has run; NULL and anything not a live small
 * block fail gm_small_class_of and take the slow path, which checks. */
static __attribute__((unused)) void *api_realloc(void *ptr, size_t size) {
    if (GM_LIKELY(!gm_options.debug)) {
        /* Class 0 (not a live small block) has size 0: nothing fits. */
        uint8_t cls = gm_small_class_of(ptr);
        if (small_fits_in_place(gm_class_size[cls], size))
            return ptr;
    }
    return realloc_slow(ptr, size);
}

#if GM_VALGRIND
/* Under memcheck a block always moves: its old size is memcheck's to know. */
GM_EXPORT void *gm_realloc(void *ptr, size_t size) { return gm_vg_realloc(ptr, size); }
#else
GM_EXPORT void *gm_realloc(void *ptr, size_t size) { return api_realloc(ptr, size); }
#endif

#if GM_VALGRIND
static void *gm_vg_realloc(void *ptr, size_t size) {
    if (!ptr)
        return gm_malloc(size);
    if (size == 0) {
        gm_free(ptr);
        return NULL;
    }
    size_t old = usable_size_checked(ptr, "realloc()");
    void *p = gm_malloc(size);
    if (!p)
        return NULL;
    VALGRIND_DISABLE_ERROR_REPORTING;   /* the old block's slack is off limits */
    memcpy(p, ptr, old < size ? old : size);
    VALGRIND_ENABLE_ERROR_REPORTING;
    gm_free(ptr);
    return p;
}
#endif

GM_EXPORT void *gm_reallocarray(void *ptr, size_t count, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(count, size, &total))
        return fail_nomem();
    return gm_realloc(ptr, total);
}

/* ---- aligned allocation ---------------------------------------------------- */

/* Smallest class at least size bytes whose objects all start at a multiple
 * of align (span bases are page-aligned); 0 if none. */
static uint8_t aligned_class(size_t size, size_t align) {
    if (size > GM_MAX_SMALL_SIZE || align > PAGE)
        return 0;
    for (uint8_t cls = gm_size_to_class[(size + 15) >> 4]; cls < GM_NUM_CLASSES; cls++)
        if (gm_class_size[cls] % align == 0)
            return cls;
    return 0;
}

/* A block without the debug layer; align is a power of two. */
void *gm_raw_alloc(size_t size, size_t align, bool zero) {
    if (size > PTRDIFF_MAX)
        return fail_nomem();
    uint8_t cls = 0;
    if (size <= GM_MAX_SMALL_SIZE)
        cls = align <= MIN_ALIGN ? gm_size_to_class[(size + 15) >> 4] : aligned_class(size, align);
    if (!cls)
        return alloc_large(size, align, zero);
    void *p = gm_mcache_alloc_slow(gm_class_size[cls]);
    if (!p)
        return fail_nomem();
    if (zero)
        memset(p, 0, size);
    return p;
}

/* align is a power of two. */
static void *alloc_aligned(size_t align, size_t size) {
    gm_init();
    if (GM_UNLIKELY(gm_options.debug))
        return gm_debug_alloc(size, align, false);
    if (align <= MIN_ALIGN)
        return api_malloc(size);
    if (size > PTRDIFF_MAX)
        return fail_nomem();
    uint8_t cls = aligned_class(size, align);
    if (cls)
        return api_malloc(gm_class_size[cls]);
    return alloc_large(size, align, false);
}

static bool is_pow2(size_t x) { return x && (x & (x - 1)) == 0; }

GM_EXPORT void *gm_aligned_alloc(size_t alignment, size_t size) {
    if (!is_pow2(alignment)) {
        errno = EINVAL;
        return NULL;
    }
    return GM_VG_ALLOC(alloc_aligned(alignment, size), size, false);
}

GM_EXPORT int gm_posix_memalign(void **out, size_t alignment, size_t size) {
    if (!is_pow2(alignment) || alignment % sizeof(void *) != 0)
        return EINVAL;
    int saved = errno;
    void *p = GM_VG_ALLOC(alloc_aligned(alignment, size), size, false);
    errno = saved;
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}

/* glibc's memalign rounds an alignment that is not a power of two up. */
GM_EXPORT void *gm_memalign(size_t alignment, size_t size) {
    if (alignment > ((size_t)1 << (sizeof(size_t) * 8 - 2))) {
        errno = EINVAL;
        return NULL;
    }
    size_t align = MIN_ALIGN;
    while (align < alignment)
        align <<= 1;
    return GM_VG_ALLOC(alloc_aligned(align, size), size, false);
}

GM_EXPORT void *gm_valloc(size_t size) {
    return GM_VG_ALLOC(alloc_aligned(OS_PAGE, size), size, false);
}

GM_EXPORT void *gm_pvalloc(size_t size) {
    if (size > PTRDIFF_MAX)
        return fail_nomem();
    size_t rounded = (size + OS_PAGE - 1) & ~(size_t)(OS_PAGE - 1);
    rounded = rounded ? rounded : OS_PAGE;
    return GM_VG_ALLOC(alloc_aligned(OS_PAGE, rounded), rounded, false);
}

/* ---- returning memory and statistics --------------------------------------- */

GM_EXPORT int gm_release(void) {
    gm_mcache_flush_current();
    gm_mcache_release_parked();
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++)
        gm_mcentral_drain(cls);
    return gm_scavenger_release_all() > 0;
}

GM_EXPORT void gm_get_stats(struct gm_stats *out) {
    struct gm_heap_stats h;
    struct gm_central_stats c;
    gm_mheap_stats(&h);
    gm_mcentral_stats(&c);
    uint64_t large_cached;
    uint64_t cached = gm_mcache_cached_bytes(&large_cached);
    memset(out, 0, sizeof *out);
    out->mapped = h.mapped;
    out->committed = h.committed;
    out->released = h.released;
    out->heap_in_use = h.in_use;
    out->heap_free = h.free;
    out->cached = cached + c.batch_bytes;
    out->small_in_use = c.out_bytes > out->cached ? c.out_bytes - out->cached : 0;
    out->cached += large_cached;
    out->large_in_use = h.large_bytes > large_cached ? h.large_bytes - large_cached : 0;
    out->metadata = gm_fixalloc_mapped();
    out->huge_mapped = h.huge;
    out->threads = gm_mcache_count();
}
