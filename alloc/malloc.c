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
 *   5. n > 32 KiB: a page run from the mheap; n >= 32 MiB a reservation of its
 *      own (huge.c); above 1 MiB whichever faults in fewer pages (raw.c).
 * Freeing p:
 *   1. pagemap: arena of p, page info (class, page index in span).
 *   2. Small and the start of an object: push on this thread's list; past
 *      the list's bound, give a batch back to the mcentral.
 *   3. Large/huge: the slow path (raw.c): the thread's page cache, the mheap,
 *      or the huge blocks' cache.  Anything else, an address gomalloc did not
 *      hand out, is reported and aborts.
 * The slow paths go through the debug mode (debug.c) when GOMALLOC_DEBUG=1,
 * else straight to raw.c.
 *
 * Only this layer and raw.c set errno.  Failures return NULL with ENOMEM.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gomalloc.h"
#include "guard.h"
#include "mcache.h"

#define PAGE GM_PAGE_SIZE
#define OS_PAGE 4096
#define MIN_ALIGN 16

static int init_state;   /* atomic: 0 never, 1 running, 2 done */

/* ---- fork ---------------------------------------------------------------- */
/* A fork child must find every structure whole, so the prepare handler takes
 * gomalloc's locks and the child, where only the forking thread exists,
 * frees them.  Three things shape how (glibc's malloc/tst-* check each):
 *
 * 1. stdio.  glibc's fork takes its stdio list lock after the prepare
 *    handlers ran.  A thread in fflush(NULL) holds that lock while it waits
 *    for a FILE lock, which a thread in getline holds while it waits inside
 *    malloc for a gomalloc lock: taking gomalloc's locks first would close a
 *    cycle.  So the prepare handler takes the stdio list lock first (it is
 *    recursive: glibc takes it again, drops it once in the parent, and resets
 *    it in the child before the child handlers run), then gomalloc's.  The
 *    one lock order, outermost first:
 *        glibc's stdio list lock -> scavenge -> cache registry
 *        -> mcentral[shard 0][1 .. N-1] ... [last shard][1 .. N-1]
 *        -> mheap -> fixalloc -> guard
 * 2. fork from a signal handler.  glibc allows it in a process with one
 *    thread, where its malloc takes no lock at fork.  The handler may have
 *    interrupted this thread's own malloc, so gomalloc must not wait for a
 *    lock this thread holds: a gm_lock_t knows its holder exactly
 *    (lock.h).  With no other thread of the program (none ever created, or
 *    none left but gomalloc's scavenger: /proc says how many), fork is
 *    "solo": only the mheap and fixalloc locks are taken, those the
 *    scavenger takes, and the scavenger never waits for another lock while
 *    it holds one of them, so the wait ends.  The child is then in the state
 *    the parent was in, as under glibc; a lock the interrupted frame holds
 *    is still held, by the same thread, which goes on to drop it.
 * 3. A lock this thread holds is never waited for, in either mode, and never
 *    released or reset in the child.  Every other lock is free in the child:
 *    the ones the prepare handler took, and any a thread that did not come
 *    along held (the scavenger's, in solo mode).
 * 4. A fork may begin in a signal handler that interrupted this thread's own
 *    fork, between its prepare and parent handlers: each fork's record of
 *    what it took is kept on a small per-thread stack, so the inner fork
 *    neither forgets nor releases the outer one's locks.  A record lists the
 *    locks this thread already held (a handful at most, as no path holds
 *    more than one mcentral lock) and where it stopped taking: an inner
 *    fork that finds more held (the outer one's) stops there, taking no
 *    more, rather than keep a list of over a thousand locks per thread.
 */
extern void _IO_list_lock(void) __attribute__((weak));
extern void _IO_list_unlock(void) __attribute__((weak));
extern char __libc_single_threaded __attribute__((weak));

#define FORK_LOCKS (GM_SHARDS_MAX * GM_NUM_CLASSES + 6)
static gm_lock_t *fork_locks[FORK_LOCKS];   /* immutable after init, lock order */
static uint32_t fork_nlocks, fork_heap_at;  /* immutable after init */
#define FORK_NESTING 4
#define FORK_HELD_MAX 8
#define REGISTRY_AT 1               /* fork_locks[] index of the cache registry */
/* Per fork under way in this thread (innermost last): solo mode, the locks
 * its prepare handler found this thread holding, and the index where it
 * stopped; it took every other lock of its range.  A fork nested deeper
 * than FORK_NESTING takes no lock (it would need four signal handlers deep
 * inside one another's forks). */
struct fork_record {
    bool solo;
    uint8_t nheld;
    uint16_t end;
    uint16_t held[FORK_HELD_MAX];
};
static __thread struct fork_record tls_forks[FORK_NESTING]
    __attribute__((tls_model("initial-exec")));
static __thread uint32_t tls_fork_depth __attribute__((tls_model("initial-exec")));

static void fork_locks_init(void) {
    uint32_t n = 0;
    fork_locks[n++] = gm_scavenger_lockp();
    fork_locks[n++] = gm_mcache_registry_lockp();
    for (uint32_t shard = 0; shard < gm_shards; shard++)
        for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++)
            fork_locks[n++] = gm_mcentral_lockp((uint8_t)shard, cls);
    fork_heap_at = n;
    fork_locks[n++] = gm_mheap_lockp();
    fork_locks[n++] = gm_fixalloc_lockp();
    fork_locks[n++] = gm_guard_lockp();   /* a leaf: held with no other */
    fork_locks[n++] = gm_profile_lockp(); /* a leaf too */
    fork_nlocks = n;
}

static bool fork_took(const struct fork_record *f, uint32_t i) {
    if (!f || i < (f->solo ? fork_heap_at : 0) || i >= f->end)
        return false;
    for (uint32_t k = 0; k < f->nheld; k++)
        if (f->held[k] == i)
            return false;
    return true;
}

/* Pops the innermost fork's record into *out; NULL past FORK_NESTING.  The
 * record is copied before the depth drops: a signal handler that forks in
 * between reuses the slot.  That happens: a child that signals its parent at
 * once can interrupt the parent's handler before it dropped the locks. */
static struct fork_record *fork_pop(struct fork_record *out) {
    uint32_t depth = tls_fork_depth - 1;
    if (depth < FORK_NESTING)
        *out = tls_forks[depth];
    __atomic_signal_fence(__ATOMIC_SEQ_CST);
    tls_fork_depth = depth;
    return depth < FORK_NESTING ? out : NULL;
}

/* No thread of the program but this one (see 2. above). */
static bool fork_is_solo(void) {
    if (&__libc_single_threaded && __libc_single_threaded)
        return true;   /* no thread was ever created */
    uint32_t threads = gm_os_thread_count();
    return threads == 1 || (threads == 2 && gm_scavenger_thread_exists());
}

static void fork_prepare(void) {
    uint32_t depth = tls_fork_depth++;
    __atomic_signal_fence(__ATOMIC_SEQ_CST);   /* a nested fork takes the next slot */
    if (depth >= FORK_NESTING)
        return;
    struct fork_record *f = &tls_forks[depth];
    f->solo = fork_is_solo();
    f->nheld = 0;
    f->end = (uint16_t)fork_nlocks;
    if (!f->solo && _IO_list_lock)
        _IO_list_lock();
    for (uint32_t i = f->solo ? fork_heap_at : 0; i < fork_nlocks; i++) {
        if (gm_lock_held(fork_locks[i])) {   /* a frame this fork interrupted holds it */
            if (f->nheld == FORK_HELD_MAX) {
                f->end = (uint16_t)i;
                break;
            }
            f->held[f->nheld++] = (uint16_t)i;
            continue;
        }
        gm_lock(fork_locks[i]);
    }
}

static void fork_parent(void) {
    struct fork_record rec, *f = fork_pop(&rec);
    for (uint32_t i = fork_nlocks; i-- > 0;)
        if (fork_took(f, i))
            gm_unlock(fork_locks[i]);
    if (f && !f->solo && _IO_list_unlock)
        _IO_list_unlock();
}

static void fork_child(void) {
    struct fork_record rec, *f = fork_pop(&rec);
    bool heap_interrupted = false, registry_interrupted = false;
    for (uint32_t i = 0; i < fork_nlocks; i++) {
        if (!fork_took(f, i) && gm_lock_held(fork_locks[i])) {
            heap_interrupted |= i == fork_heap_at;
            registry_interrupted |= i == REGISTRY_AT;
            continue;   /* an interrupted frame will drop it */
        }
        gm_lock_reset(fork_locks[i]);
    }
    if (f && !f->solo && !registry_interrupted)
        gm_mcache_after_fork_child();
    if (!heap_interrupted)
        gm_mheap_after_fork_child();
    gm_scavenger_after_fork_child();
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
    gm_guard_init();
    if (!__atomic_load_n(&gm_secret, __ATOMIC_ACQUIRE))
        gm_hardening_init();
    gm_mcentral_init();
    gm_mcache_init();
    fork_locks_init();
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
 * is marked defined by the link helpers (hardening.h). */
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

static GM_NOINLINE void *malloc_slow(size_t size) {
    gm_init();
    gm_scavenger_check();
    if (GM_UNLIKELY(gm_options.debug))
        return gm_debug_alloc(size, MIN_ALIGN, false);
    if (size > GM_MAX_SMALL_SIZE) {
        void *p = gm_pagecache_take(&gm_tls_cache->pages, size);
        return p ? p : gm_raw_alloc_large(size, PAGE, false);
    }
    if (gm_guard_due()) {   /* the thread's sample (guard.h) */
        void *p = gm_guard_alloc(size);
        if (p)
            return p;
    }
    void *p = gm_mcache_alloc_slow(size);
    if (!p && gm_raw_reclaim(size))
        p = gm_mcache_alloc_slow(size);
    return p ? p : gm_fail_nomem();
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
        return gm_fail_nomem();
    gm_init();
    if (GM_UNLIKELY(gm_options.debug))
        return gm_debug_alloc(total, MIN_ALIGN, true);
    if (total > GM_MAX_SMALL_SIZE) {
        void *p = gm_pagecache_take(&gm_tls_cache->pages, total);
        return p ? memset(p, 0, total) : gm_raw_alloc_large(total, PAGE, true);
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

GM_EXPORT size_t gm_usable_size(const void *ptr) {
    if (!ptr)
        return 0;
    gm_init();
    if (GM_UNLIKELY(gm_options.debug))
        return gm_debug_usable(ptr);
    uint8_t cls;
    return gm_raw_usable_size(ptr, &cls);
}

/* ---- realloc --------------------------------------------------------------- */

/* Whether a small block of usable size old can serve a request of size
 * (not 0) in place: same size class, or a shrink to no less than half. */
static inline bool small_fits_in_place(size_t old, size_t size) {
    if (size - 1 >= old)   /* larger, or 0 */
        return false;
    if (gm_class_size[gm_size_class(size)] == old)
        return true;
    return size >= old / 2;
}

/* Resizes a large or huge block where it is: a block in an arena grows into
 * the free pages after it and shrinks by giving its tail pages back, staying
 * below GM_HUGE_THRESHOLD (a block growing past it moves to a reservation of
 * its own, where it can later grow by remapping); one in a reservation grows
 * or shrinks within it, whatever its size (see alloc_large).  False if it
 * cannot. */
static bool resize_in_place(void *ptr, size_t size, size_t old) {
    if (size <= GM_MAX_SMALL_SIZE)
        return false;
    if (size <= old && old - size < PAGE)
        return true;   /* same pages: nothing to do, no lock to take */
    gm_huge_t *d = gm_pagemap_huge((uintptr_t)ptr);
    if (d)
        return gm_huge_resize(d, size);
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
    gm_huge_t *d = gm_pagemap_huge((uintptr_t)ptr);
    if (d)
        return gm_huge_move(d, size, refused);
    if (size >= GM_HUGE_THRESHOLD)
        return NULL;
    void *p = (void *)gm_mheap_grow_large_down(gm_pagemap_span_of((uintptr_t)ptr), size);
    return p ? memmove(p, ptr, old) : NULL;
}

/* What a small block of usable size old that must move to hold size bytes
 * is given: a block of at least ROOMY_MIN bytes that outgrows its class by
 * less than a quarter (a string built by appending, an array grown an
 * element at a time) gets a quarter more, so its next few growths stay in
 * place.  Go's classes are finer than most allocators' bins (16-byte steps
 * to 256 B, about 12% apart above), so without this a growing block moves
 * twice as often as under mimalloc: bench/realloc copied 102M instructions'
 * worth against mimalloc's 55M, and with it 7% less time at the same peak
 * RSS.  Below 1 KiB a move copies at most 16 lines, and the quarter stays
 * with the block when the program shrinks it to fit (a shrink to no less
 * than half stays in place): bench/strappend, short strings built by small
 * appends and kept, ran 0.53 s with headroom from any size and 0.47 s from
 * 1 KiB (tcmalloc 0.46 s; 7 interleaved runs), bench/realloc 0.32 s and
 * 0.31 s at the same peak RSS; with no headroom at all realloc peaked 21%
 * higher. */
#define ROOMY_MIN 1024
static size_t small_growth_request(size_t old, size_t size) {
    size_t roomy = old + old / 4;
    return old >= ROOMY_MIN && size > old && size < roomy ? roomy : size;
}

/* A guarded block always moves (its guard page sits at its old end); the
 * new block may be sampled in turn. */
static void *realloc_guarded(void *ptr, size_t size) {
    size_t old = gm_guard_usable(ptr, "realloc()");
    void *p = api_malloc(size);
    if (!p)
        return NULL;
    memcpy(p, ptr, old < size ? old : size);
    gm_guard_free(ptr, "realloc()");
    return p;
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
    if (GM_UNLIKELY(gm_guard_owns(ptr)))
        return realloc_guarded(ptr, size);
    uint8_t cls = gm_small_class_of(ptr);
    size_t old = GM_LIKELY(cls) ? gm_class_size[cls] : gm_raw_usable(ptr, "realloc()", &cls);
    if (cls ? small_fits_in_place(old, size)
            : resize_in_place(ptr, size, old) || (size <= old && size >= old / 2))
        return ptr;
    bool refused = false;
    void *p = cls ? NULL : grow_elsewhere(ptr, size, old, &refused);
    if (p || refused)
        return p ? p : gm_fail_nomem();
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
    uint8_t cls;
    size_t old = gm_raw_usable(ptr, "realloc()", &cls);
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
        return gm_fail_nomem();
    return gm_realloc(ptr, total);
}

/* ---- aligned allocation ---------------------------------------------------- */

/* align is a power of two. */
static void *alloc_aligned(size_t align, size_t size) {
    gm_init();
    if (GM_UNLIKELY(gm_options.debug))
        return gm_debug_alloc(size, align, false);
    if (align <= MIN_ALIGN)
        return api_malloc(size);
    if (size > PTRDIFF_MAX)
        return gm_fail_nomem();
    uint8_t cls = gm_raw_aligned_class(size, align);
    if (cls)
        return api_malloc(gm_class_size[cls]);
    return gm_raw_alloc_large(size, align, false);
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

/* glibc's memalign rounds an alignment that is not a power of two up; one
 * above the largest power of two cannot be rounded (EINVAL), while 2^63
 * itself is a valid alignment no block can have (ENOMEM). */
GM_EXPORT void *gm_memalign(size_t alignment, size_t size) {
    if (alignment > SIZE_MAX / 2 + 1) {
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
        return gm_fail_nomem();
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

/* ---- sized free, good size, version ------------------------------------------ */

/* "gomalloc: CALL: wrong WHAT for 0x...: GIVEN given[, REQUESTED requested]" */
static GM_COLD __attribute__((noreturn)) void sized_mismatch(const char *call, const void *ptr,
                                                             const char *what, size_t given,
                                                             size_t requested) {
    gm_line_t l = GM_LINE_INIT;
    gm_line_put(&l, "gomalloc: ");
    gm_line_put(&l, call);
    gm_line_put(&l, ": wrong ");
    gm_line_put(&l, what);
    gm_line_put(&l, " for ");
    gm_line_hex(&l, (uintptr_t)ptr);
    gm_line_put(&l, ": ");
    gm_line_dec(&l, given);
    gm_line_put(&l, " given");
    if (requested != GM_NO_SIZE) {
        gm_line_put(&l, ", ");
        gm_line_dec(&l, requested);
        gm_line_put(&l, " requested");
    }
    gm_line_write(&l, 2);
    abort();
}

/* Debug mode checks the size (unless GM_NO_SIZE) and the alignment (unless 0)
 * against the block; the free itself is free's. */
static GM_NOINLINE void free_sized_slow(void *ptr, size_t align, size_t size, const char *call) {
    if (!ptr)
        return;
    gm_init();
    if (GM_UNLIKELY(gm_options.debug)) {
        uint8_t cls;
        size_t usable = gm_raw_usable(ptr, call, &cls);   /* invalid pointer, double free */
        /* The debug layer keeps the requested size in the block's last word,
         * after a trailer of 16 bytes (debug.c); a damaged one is left for
         * the free to report. */
        size_t requested = *(const size_t *)((const char *)ptr + usable - sizeof(size_t));
        if (align && (!is_pow2(align) || ((uintptr_t)ptr & (align - 1))))
            sized_mismatch(call, ptr, "alignment", align, GM_NO_SIZE);
        if (size != GM_NO_SIZE && size != requested && requested <= usable - 2 * sizeof(size_t))
            sized_mismatch(call, ptr, "size", size, requested);
    }
    free_slow(ptr, call);
}

/* The free fast path first: the size is not needed to find the block (its
 * page says its class), so a correct program pays what free pays; debug
 * mode, which has no thread caches, always reaches the checks. */
static inline void free_sized_checked(void *ptr, size_t align, size_t size, const char *call) {
    if (GM_LIKELY(gm_mcache_free_fast(ptr)))
        return;
    free_sized_slow(ptr, align, size, call);
}

GM_EXPORT void gm_free_sized(void *ptr, size_t size) {
    GM_VG_FREE(ptr);
    free_sized_checked(ptr, 0, size, "free_sized()");
}

GM_EXPORT void gm_free_aligned_sized(void *ptr, size_t alignment, size_t size) {
    GM_VG_FREE(ptr);
    free_sized_checked(ptr, alignment, size, "free_aligned_sized()");
}

GM_EXPORT size_t gm_good_size(size_t size) {
    if (size > PTRDIFF_MAX)
        return 0;
    gm_init();
    if (GM_UNLIKELY(gm_options.debug))
        return size;   /* malloc_usable_size reports the request in debug mode */
    if (size <= GM_MAX_SMALL_SIZE)
        return gm_class_size[gm_size_class(size)];
    return (size + PAGE - 1) & ~(size_t)(PAGE - 1);   /* large and huge: whole pages */
}

GM_EXPORT const char *gm_version(void) { return GOMALLOC_VERSION_STRING; }
