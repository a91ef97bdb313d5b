/*
 * internal.h — the types shared between gomalloc's layers and the prototypes
 * that cross files, grouped by the file that defines them.
 *
 * Layers, top to bottom: a file calls only files listed below it, and reads
 * only their globals (its inline helpers included, which compile into their
 * callers).  `make test-layers` checks this list against the objects' symbols
 * (tests/layers.sh): one file per line, its name first.
 *
 *   override    LD_PRELOAD/override.c: the libc names, malloc.c compiled in
 *   cxx_catch   LD_PRELOAD/cxx_catch.cc: C++ new-handler calls, weakly linked
 *   stats_report the statistics as text, JSON and malloc_info XML; reports at exit
 *   heapmap     GOMALLOC_HEAPMAP: the heap map of this process, fed from the heap
 *   heapmap_svg the map's model drawn as SVG
 *   heapmap_model the map's picture: mappings, arenas and spans laid out
 *   stats       gm_get_memstats: totals and a row per size class
 *   malloc      the gm_* entry points, realloc policy, init, fork
 *   debug       the debug mode (GOMALLOC_DEBUG=1), over the raw paths
 *   raw         allocation, free and usable size under the debug mode
 *   mcache      per-thread caches (lock-free fast paths in mcache.h)
 *   cachebound  how much a thread cache may hold: list bounds, earned bound
 *   pagecache   per-thread freed large blocks, kept in the thread's cache
 *   profile     the sampled heap profile: which allocations, their stacks
 *   profile_pb  pprof's profile.proto, encoded and streamed
 *   unwind      the calling thread's stack from the unwind tables, without malloc
 *   mcentral    per-class span lists and parked batches, one lock per class
 *   span        carving a span into objects, returning objects to it
 *   scavenger   returns free pages to the OS in the background
 *   release     the release step and unused arenas: memory back to the OS
 *   resize      large blocks resized in place (realloc)
 *   mheap       arenas, page runs, spans, large blocks
 *   heapcheck   the page heap's validators (GM_CHECKS builds only)
 *   pageplace   which pages: close fits, fewest faults, the big-block pool, release
 *   huge        huge blocks' reservations and their cache; the heap lock
 *   pagemap     address -> arena -> page info / span, lock-free reads
 *   fixalloc    fixed-size metadata from raw mappings, one lock
 *   guard       sampled blocks on pages of their own beside guard pages
 *   options     GOMALLOC_* settings, read at init
 *   report      message lines, reports of misuse, free-list hardening
 *   report_io   output buffers, scratch mappings and /proc/self/maps, without malloc
 *   os_linux    the only file that calls mmap/mprotect/madvise/munmap
 *   lock        gm_lock_t's slow paths (futex)
 *   sizeclasses the size-class tables (generated; data only)
 *
 * Beside them, headers of constants and inline helpers only: config.h,
 * sizeclasses.h (generated), lock.h, pagebits.h, mcache.h (the fast paths),
 * hardening.h (free-list links and free marks, included only by the files
 * that use them), and testing.h, which only tests include.  mheap.h holds
 * what the page heap's own files (mheap.c, release.c, resize.c,
 * pageplace.c, heapcheck.c) call in one another: no other file includes it.
 * scavenger.h holds the scavenger's interface for the layers above it
 * (mcache.h brings it to them), so that the page heap does not see it;
 * cachebound.h, cachebound.c's for mcache.c; mcentral.h, mcentral.c's for
 * the layers above it (mcache.h brings it too).
 *
 * Lock order (a thread holding a lock may only take locks further right):
 *   scavenge -> cache registry -> mcentral[shard 0][1] -> ... -> mcentral[shard 0][N-1]
 *            -> ... -> mcentral[last shard][N-1] -> mheap -> fixalloc -> guard -> profile
 * At most one mcentral lock is held at a time, except in the fork handlers,
 * which take them all, shard by shard in ascending class order, after
 * glibc's stdio list lock (malloc.c).  The guard lock (guard.c) and the
 * profile's (profile.c) are leaves: taken with no other held, none taken
 * under them.  Every lock is a gm_lock_t
 * (lock.h), which knows its holder; the scavenger thread never waits for a
 * lock while it holds the mheap or fixalloc lock.
 */
#ifndef GM_INTERNAL_H
#define GM_INTERNAL_H

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Everything declared below is internal to the library.  Saying so on the
 * declarations (not only through -fvisibility=hidden, which covers
 * definitions) lets the compiler address globals such as gm_secret directly
 * instead of through the GOT: one load less on the fast paths. */
#pragma GCC visibility push(hidden)

#include "config.h"
#include "lock.h"
#include "sizeclasses.h"

typedef struct gm_span gm_span_t;
typedef struct gm_arena gm_arena_t;
typedef struct gm_huge gm_huge_t;
typedef struct gm_mcentral gm_mcentral_t;
typedef struct gm_mcache gm_mcache_t;
typedef struct gm_batch gm_batch_t;   /* mcentral.h */

/* ---- os_linux.c ------------------------------------------------------ */
void *gm_os_reserve(size_t size, size_t align);   /* PROT_NONE; NULL on failure */
void *gm_os_map(size_t size);                     /* readable+writable, zeroed */
bool gm_os_commit(void *addr, size_t size);       /* PROT_NONE -> read/write */
/* Drops the contents of a committed range (RSS falls); returns true if the
 * range now reads as zero (MADV_DONTNEED), false if undefined (MADV_FREE). */
bool gm_os_release(void *addr, size_t size);
/* How gm_os_release gives pages back: MADV_FREE when set (GOMALLOC_MADVISE=free,
 * set by gm_options_init), else MADV_DONTNEED. */
extern bool gm_os_madvise_free;
void gm_os_unmap(void *addr, size_t size);
/* For guarded sampling (guard.c): the same calls without fault injection;
 * decommit makes a range PROT_NONE and drops its contents and charge. */
void *gm_os_reserve_quiet(size_t size);
bool gm_os_commit_quiet(void *addr, size_t size);
void gm_os_decommit(void *addr, size_t size);
/* Moves the mapping [from, from + size) to to, replacing our reservation
 * there.  On failure the source is unchanged; LOST: part of the destination
 * may now be another mapping's, so it must not be unmapped. */
typedef enum { GM_MOVE_DONE, GM_MOVE_FAILED, GM_MOVE_LOST } gm_move_result_t;
gm_move_result_t gm_os_move(void *from, size_t size, void *to);
/* The process's address-space limit (RLIMIT_AS), SIZE_MAX if none. */
size_t gm_os_address_limit(void);
/* CPUs this process may run on (1 if the kernel does not say). */
uint32_t gm_os_cpu_count(void);
/* Threads in the process (0 when /proc cannot tell). */
uint32_t gm_os_thread_count(void);
/* A coarse monotonic clock in milliseconds (wraps; compare differences). */
uint32_t gm_os_clock_ms(void);
void gm_os_write(int fd, const char *buf, size_t len);

/* ---- report.c -------------------------------------------------------- */
/* One message line, built on the stack and written with one write(2);
 * text past the buffer's end is cut. */
typedef struct gm_line {
    size_t n;
    char buf[320];
} gm_line_t;
#define GM_LINE_INIT {.n = 0}
void gm_line_put(gm_line_t *l, const char *s);
void gm_line_put_n(gm_line_t *l, const char *s, size_t len);
void gm_line_dec(gm_line_t *l, uint64_t v);
void gm_line_hex(gm_line_t *l, uintptr_t v);   /* 0x... */
void gm_line_pad(gm_line_t *l, size_t column);  /* spaces up to column */
void gm_line_write(gm_line_t *l, int fd);       /* adds the newline */

/* "No size": a size no block can have (a report without a requested size,
 * a sized free without a size). */
#define GM_NO_SIZE SIZE_MAX
/* "gomalloc: CALL: WHAT 0x... (size class C, N bytes[, R requested])", then
 * abort(); the class part only for cls != 0, R unless GM_NO_SIZE. */
__attribute__((noreturn)) void gm_report(const char *call, const char *what, const void *p,
                                         uint8_t cls, size_t requested);
__attribute__((noreturn)) void gm_invalid_pointer(const char *call, const void *p);
__attribute__((noreturn)) void gm_double_free(const char *call, const void *p, uint8_t cls);
__attribute__((noreturn)) void gm_report_block(const char *call, const char *what,
                                               const void *p, uint8_t cls);
/* The same for a large, huge or guarded block: "... 0x… (SIZE bytes)". */
__attribute__((noreturn)) void gm_report_sized(const char *call, const char *what,
                                               const void *p, size_t size);
/* "gomalloc: MSG", then abort(): a broken invariant. */
__attribute__((noreturn)) void gm_fatal_msg(const char *msg);

/* The validators of a GM_CHECKS build (config.h): GM_CHECK(call) runs call
 * there and is nothing otherwise; GM_CHECK_THAT reports a broken invariant
 * with its file and line. */
#if GM_CHECKS
#define GM_CHECK(call) call
#define GM_CHECK_THAT(cond, what) \
    do { if (GM_UNLIKELY(!(cond))) gm_check_failed(__FILE__, __LINE__, what); } while (0)
__attribute__((noreturn)) void gm_check_failed(const char *file, int line, const char *what);
#else
#define GM_CHECK(call) ((void)0)
#endif

#if GM_DEBUG
#define gm_assert(cond) \
    do { if (GM_UNLIKELY(!(cond))) gm_fatal_msg("assertion failed: " #cond); } while (0)
#else
#define gm_assert(cond) ((void)0)
#endif

/* ---- options.c ------------------------------------------------------ */
struct gm_options {
    bool scavenge;              /* GOMALLOC_SCAVENGE */
    uint32_t retain_percent;    /* GOMALLOC_RETAIN_PERCENT */
    uint32_t decay_ms;          /* GOMALLOC_DECAY_MS */
    size_t thread_cache_bytes;  /* GOMALLOC_THREAD_CACHE_KIB */
    bool debug;                 /* GOMALLOC_DEBUG=1 */
    uint32_t guard_rate;        /* GOMALLOC_GUARD_RATE (0: off) */
    bool guard_underflow;       /* GOMALLOC_GUARD_CATCH=underflow */
    uint8_t stats;              /* GOMALLOC_STATS: 0 none, 1 text, 2 json, at exit */
    const char *stats_file;     /* GOMALLOC_STATS_FILE: where, instead of stderr */
    const char *heapmap;        /* GOMALLOC_HEAPMAP: SVG written at exit, or NULL */
    const char *profile;        /* GOMALLOC_PROFILE: pprof profile written at exit, or NULL */
    uint64_t profile_rate;      /* bytes between samples on average; 0: not sampling */
};
/* Written by gm_init before the program's threads; the scavenger clears
 * scavenge if its thread cannot be created. */
extern struct gm_options gm_options;
void gm_options_init(void);

/* ---- doubly linked lists --------------------------------------------- */
/* An intrusive doubly linked list of structs with next and prev fields,
 * from *head (mcentral's partial spans, mcache's registry). */
#define GM_DLIST_PUSH(head, node)                                   \
    do {                                                            \
        (node)->prev = NULL;                                        \
        (node)->next = *(head);                                     \
        if (*(head))                                                \
            (*(head))->prev = (node);                               \
        *(head) = (node);                                           \
    } while (0)
#define GM_DLIST_REMOVE(head, node)                                 \
    do {                                                            \
        if ((node)->prev)                                           \
            (node)->prev->next = (node)->next;                      \
        else                                                        \
            *(head) = (node)->next;                                 \
        if ((node)->next)                                           \
            (node)->next->prev = (node)->prev;                      \
        (node)->next = (node)->prev = NULL;                         \
    } while (0)

/* ---- fixalloc.c ------------------------------------------------------ */
/* Allocates fixed-size metadata objects; memory never comes from malloc. */
typedef struct gm_fixalloc {
    size_t size;              /* immutable after init */
    void *free_list;          /* fixalloc lock */
    char *chunk;              /* fixalloc lock: unused tail of the last chunk */
    size_t chunk_left;        /* fixalloc lock */
    size_t in_use;            /* fixalloc lock: objects handed out */
} gm_fixalloc_t;

void *gm_fixalloc_alloc(gm_fixalloc_t *fa);        /* zeroed; NULL on OOM */
void gm_fixalloc_free(gm_fixalloc_t *fa, void *obj);
uint64_t gm_fixalloc_mapped(void);
gm_lock_t *gm_fixalloc_lockp(void);   /* for fork (malloc.c) */

/* ---- span.c ---------------------------------------------------------- */
/* Words of a small span's bitmap: its objects are at most a page of the
 * smallest class (16 bytes), 512 (checked by tests/test_mcentral.c). */
#define GM_SPAN_BITMAP_WORDS 8
enum gm_span_state { GM_SPAN_FREE = 0, GM_SPAN_SMALL, GM_SPAN_LARGE };

struct gm_span {
    uintptr_t base;           /* immutable while in use */
    uint32_t npages;          /* mheap lock; large blocks change it in realloc */
    uint8_t cls;              /* immutable while in use; 0 = large block */
    uint8_t state;            /* mheap lock */
    uint8_t in_partial;       /* mcentral lock: on the class's partial list */
    uint8_t fresh_zero;       /* pages were all zero when the span was made */
    uint8_t thread_cached;    /* large, freed: on its thread's page cache */
    uint8_t shard;            /* small: immutable while in use, its mcentral's shard */
    uint8_t sampled;          /* large: the heap profile holds a sample of it (profile.c) */
    /* Small spans, all under the class's mcentral lock: */
    uint32_t nalloc;          /* objects out of the span (caches or program) */
    uint32_t freeindex;       /* objects at or above it were never handed out */
    gm_span_t *next, *prev;   /* mcentral partial list */
    /* Objects returned to the span, a bit each (by index): span.c. */
    uint64_t free_bits[GM_SPAN_BITMAP_WORDS];
    /* Large blocks: */
    size_t large_size;        /* mheap lock: bytes usable (npages * page) */
    gm_arena_t *arena;        /* immutable while in use */
};

/* Takes up to n objects out of span s into a list; returns how many. */
uint32_t gm_span_take_locked(gm_span_t *s, uint32_t n, void **head, void **tail);
/* Appends every object of new span s (none taken yet) to the list
 * *first..*last (both NULL: empty); returns how many.  What
 * gm_span_take_locked does for a new span, without its bit scan and
 * bounds: the classes with one or two objects per span call it per object. */
uint32_t gm_span_take_all_new_locked(gm_span_t *s, void **first, void **last);
/* Returns one object to its span; reports a double free if it is back
 * already or was never handed out. */
void gm_span_put_locked(gm_span_t *s, void *obj);
bool gm_span_has_free(const gm_span_t *s);
#if GM_CHECKS
void gm_span_check_locked(const gm_span_t *s);
#endif

/* ---- pagemap.c ------------------------------------------------------- */
/* Per-page information, read without locks by free(): the size class in the
 * low byte and, from bit GM_PAGE_SHIFT up, the page's byte offset within its
 * span, so an address's offset in its span is (addr % page) | (info & ~0xff).
 * Zero: not a page of a small span. */
typedef uint32_t gm_page_info_t;

static inline uint8_t gm_page_info_class(gm_page_info_t info) { return (uint8_t)info; }
static inline uintptr_t gm_page_info_offset(gm_page_info_t info) { return info & ~(uintptr_t)0xff; }
static inline uintptr_t gm_page_info_index(gm_page_info_t info) { return info >> GM_PAGE_SHIFT; }
/* x rounded up to a multiple of to (a power of two). */
static inline size_t gm_round_up(size_t x, size_t to) { return (x + to - 1) & ~(to - 1); }
/* The size class of a small request (size <= GM_MAX_SMALL_SIZE). */
static inline uint8_t gm_size_class(size_t size) { return gm_size_to_class[(size + 15) >> 4]; }
/* Whether offset (from the span's base) is the start of one of its objects. */
static inline bool gm_class_is_start(uint8_t cls, uint64_t offset) {
    return offset * gm_class_divmagic[cls] < gm_class_start_limit[cls];
}

struct gm_arena {
    gm_page_info_t page_info[GM_ARENA_PAGES];  /* written under mheap lock */
    gm_span_t *spans[GM_ARENA_PAGES];          /* written under mheap lock; low bit: a tag (pagemap.c) */
    /* Page allocator state, mheap lock: a bit per page. */
    uint64_t free_bits[GM_ARENA_BITMAP_WORDS];     /* 1 = page free */
    uint64_t dirty_bits[GM_ARENA_BITMAP_WORDS];    /* 1 = may be non-zero */
    uint64_t released_bits[GM_ARENA_BITMAP_WORDS]; /* 1 = free, given back */
    uintptr_t base;           /* immutable: arena slot start (64 MiB aligned) */
    uintptr_t lo, hi;         /* immutable: reserved range (heap: inside the slot) */
    uintptr_t commit_end;     /* mheap lock: [lo, commit_end) is read/write */
    uint32_t free_pages;      /* mheap lock */
    uint32_t released_pages;  /* mheap lock: free pages with no memory behind */
    uint32_t max_run_hint;    /* mheap lock: no free run longer than this from the
                                 start word of the search that set it on (mheap.c) */
    /* mheap lock: no run of at least 2^k free pages starts below bitmap word
     * run_from[k] (k = 0: no free page at all below it). */
    uint8_t run_from[GM_RUN_CLASSES];
    /* mheap lock: gm_os_clock_ms() when each free page was freed (the
     * scavenger gives back only pages that idled for the decay time). */
    uint32_t page_freed_ms[GM_ARENA_PAGES];
    gm_arena_t *next;         /* mheap lock: address-ordered list */
};

/* One word per 64 MiB slot of address space: 0, the heap arena that owns
 * the slot (a gm_arena_t *), or a huge block's descriptor (a gm_huge_t *)
 * with GM_SLOT_HUGE set; descriptors are at least 16-byte aligned. */
extern uintptr_t gm_arena_map[GM_ARENA_MAP_ENTRIES];
#define GM_SLOT_HUGE ((uintptr_t)1)
/* The free fast path's view of the same slots: for a slot of a heap arena,
 * the address of its page_info array biased by the slot's first page
 * number, so that page_info of addr is at bias + (addr >> GM_PAGE_SHIFT) *
 * sizeof(gm_page_info_t) with no masking; 0 for a slot without a heap arena
 * (huge blocks included, which the slow path finds in gm_arena_map). */
extern uintptr_t gm_page_info_map[GM_ARENA_MAP_ENTRIES];

/* The slot word of an address (see gm_arena_map), 0 out of range. */
static inline uintptr_t gm_pagemap_slot(uintptr_t addr) {
    uintptr_t slot = addr >> GM_ARENA_SHIFT;
    if (GM_UNLIKELY(slot >= GM_ARENA_MAP_ENTRIES))
        return 0;
    return __atomic_load_n(&gm_arena_map[slot], __ATOMIC_ACQUIRE);
}
/* Heap arena of an address, NULL if none is there (a huge block's slot
 * included). */
static inline gm_arena_t *gm_pagemap_arena(uintptr_t addr) {
    uintptr_t v = gm_pagemap_slot(addr);
    return v & GM_SLOT_HUGE ? NULL : (gm_arena_t *)v;
}
/* Huge block descriptor of an address, NULL if no huge block's reservation
 * is there. */
static inline gm_huge_t *gm_pagemap_huge(uintptr_t addr) {
    uintptr_t v = gm_pagemap_slot(addr);
    return v & GM_SLOT_HUGE ? (gm_huge_t *)(v - GM_SLOT_HUGE) : NULL;
}
static inline uintptr_t gm_page_index(uintptr_t addr) {
    return (addr >> GM_PAGE_SHIFT) & (GM_ARENA_PAGES - 1);
}
/* From the page info alone: addr's size class (0 when its page is not in a
 * small span) and its byte offset from its span's base.  False when no heap
 * arena covers addr.  The lookup both fast paths of free make: a shift, a
 * load, a shift and a load. */
static inline bool gm_pagemap_locate(uintptr_t addr, uint8_t *cls, uint64_t *offset) {
    uintptr_t slot = addr >> GM_ARENA_SHIFT;
    if (GM_UNLIKELY(slot >= GM_ARENA_MAP_ENTRIES))
        return false;
    uintptr_t bias = __atomic_load_n(&gm_page_info_map[slot], __ATOMIC_ACQUIRE);
    if (GM_UNLIKELY(!bias))
        return false;
    gm_page_info_t info =
        *(const gm_page_info_t *)(bias + (addr >> GM_PAGE_SHIFT) * sizeof(gm_page_info_t));
    *cls = gm_page_info_class(info);
    *offset = (addr & (GM_PAGE_SIZE - 1)) | gm_page_info_offset(info);
    return true;
}
bool gm_pagemap_claim(uintptr_t start, size_t size, gm_arena_t *arena);
bool gm_pagemap_claim_huge(uintptr_t start, size_t size, gm_huge_t *d);
void gm_pagemap_unclaim(uintptr_t start, size_t size);
void gm_pagemap_set_span(gm_arena_t *a, gm_span_t *s);
void gm_pagemap_clear_span(gm_arena_t *a, gm_span_t *s);
/* The span owning the object at addr, or NULL if addr is not the start of a
 * block that is currently handed out by a small span or a large block. */
gm_span_t *gm_pagemap_span_of(uintptr_t addr);
/* The size of the large block that started at addr and was freed to the
 * heap, if no block or span has started there since; else 0 (pagemap.c,
 * invariant 4). */
size_t gm_pagemap_freed_large(uintptr_t addr);

/* ---- huge.c ---------------------------------------------------------- */
/* The heap lock: mheap.c's structures and the huge blocks (huge.c). */
extern gm_lock_t gm_heap_lock;
/* A huge block's reservation, see huge.c.  Heap lock, except that the block's
 * owner reads lo and size, and free reads cached, without it. */
struct gm_huge {
    uintptr_t lo, hi;         /* the reservation; the owner's realloc moves it */
    size_t size;              /* bytes handed out (cached: the last block's) */
    size_t backed;            /* [lo, lo + backed) may have memory behind it */
    size_t commit;            /* [lo, lo + commit) is read/write */
    size_t dirty;             /* [lo, lo + dirty) may hold non-zero bytes */
    uint32_t idle_since_ms;   /* gm_os_clock_ms() when cached or given slack */
    bool cached;              /* freed, kept for reuse (atomic stores) */
    bool sampled;             /* the heap profile holds a sample of it (profile.c) */
};
/* A huge block of at least size bytes aligned to align; *dirty: how many of
 * its first bytes may be non-zero.  NULL when the OS refuses. */
void *gm_huge_alloc(size_t size, size_t align, size_t *dirty);
void gm_huge_free(gm_huge_t *d);
/* Resizes huge block d in place to size bytes, within its reservation;
 * false, nothing changed, past it or when the OS refuses the commit. */
bool gm_huge_resize(gm_huge_t *d, size_t size);
/* Moves huge block d, which outgrew its reservation, to a new one of at
 * least size bytes without copying; its new address, or NULL (d unchanged,
 * *refused if for want of memory or address space). */
void *gm_huge_move(gm_huge_t *d, size_t size, bool *refused);
/* For the mheap's choice between arena pages and a reservation: the cached
 * reservation that best hosts size bytes (NULL if none), the pages it would
 * still fault in, taking it off the cache, and handing it (or, NULL, a new
 * one) out as a block of size bytes. */
gm_huge_t *gm_huge_best_cached_locked(size_t size, size_t align);
/* Unmaps every cached reservation now (the OS refused address space); true
 * if there was any. */
bool gm_huge_drop_cached_locked(void);
uint32_t gm_huge_faults(const gm_huge_t *d, size_t size);
void gm_huge_take_cached_locked(gm_huge_t *d);
void *gm_huge_hand_out(gm_huge_t *d, size_t size, size_t align, size_t *dirty);
/* Unmaps the cached reservation idle longest, or else gives back the slack
 * of the block idle longest, if idle for idle_ms; returns the bytes. */
size_t gm_huge_release_idle(uint32_t idle_ms);
struct gm_huge_stats {
    uint64_t bytes, count;    /* handed out */
    uint64_t reserved, committed;
    uint64_t idle;            /* cached reservations' backed bytes and slack */
    uint64_t peak_in_use;     /* the most arena pages in use and huge bytes ever were */
};
void gm_huge_stats_locked(struct gm_huge_stats *out);
/* mheap.c reports every change of the arena bytes in use (delta), and
 * whether it may be a new peak (false when pages come back into the count
 * that were counted before). */
void gm_heap_note_in_use_locked(int64_t delta, bool may_peak);
#if GM_CHECKS
void gm_huge_check_locked(void);
#endif

/* ---- mheap.c --------------------------------------------------------- */
/* Bytes the heap arenas have committed (mheap.c; it falls only when an arena
 * is unmapped): relaxed loads. */
extern uint64_t gm_heap_committed;
gm_span_t *gm_mheap_alloc_span(uint32_t npages, uint8_t cls);
/* Up to n spans of npages pages for class cls into out[], under one lock
 * round trip; returns how many (fewer only when memory runs out). */
uint32_t gm_mheap_alloc_spans(uint32_t npages, uint8_t cls, uint32_t n, gm_span_t **out);
gm_span_t *gm_mheap_alloc_large(size_t size, size_t align);
/* A block of size bytes (more than GM_BIG_MIN, page-aligned) placed where it
 * faults in the fewest pages: free arena pages, a cached huge reservation,
 * or (a huge block, or nothing else left) a new reservation or arena pages;
 * *dirty: how many of its first bytes may be non-zero.  NULL when the OS
 * refuses memory.  See mheap.c, "one pool for big blocks". */
void *gm_mheap_alloc_big(size_t size, size_t *dirty);
void gm_mheap_free_span(gm_span_t *s);
/* Frees every span of a list linked through next, under one lock round trip. */
void gm_mheap_free_spans(gm_span_t *list);
/* In-place realloc: false, nothing changed, if the block cannot be resized
 * where it is (large: the pages after it are not free; huge: the size is past
 * its reservation, or the OS refused the commit). */
bool gm_mheap_resize_large(gm_span_t *s, size_t size);
/* Grows large block s to size bytes into the free pages just before it (and
 * any just after), when the pages after it alone are too few: returns its new
 * start, below the old one, and the caller moves the contents (memmove); 0,
 * changing nothing, when the free pages around it are too few. */
uintptr_t gm_mheap_grow_large_down(gm_span_t *s, size_t size);
/* Bytes in use (spans, large and huge blocks) and free but still backed. */
void gm_mheap_usage(uint64_t *in_use, uint64_t *free_backed);
/* Statistics: a large or huge block's trip out of (alloc) or back to the
 * page heap, and the counts so far ([huge][!alloc]). */
void gm_mheap_count_trip(bool huge, bool alloc);
void gm_mheap_trips(uint64_t out[2][2]);
gm_lock_t *gm_mheap_lockp(void);   /* for fork (malloc.c) */

struct gm_heap_stats {
    uint64_t mapped, committed, released, in_use, free, huge;
    uint64_t large_blocks, large_bytes;
    uint64_t huge_blocks, peak_in_use;   /* peak: highest in_use so far */
};
void gm_mheap_stats(struct gm_heap_stats *out);
/* Calls fn(a, arg) for every arena (heap arenas and huge blocks' own) in
 * address order, under the heap lock: fn reads the arena's bitmaps, page
 * info and spans, and must neither allocate nor take a lock.  For the
 * statistics and the heap map (stats.c, heapmap.c). */
void gm_mheap_visit(void (*fn)(const gm_arena_t *a, void *arg), void *arg);

/* ---- release.c ------------------------------------------------------- */
/* Unmaps one cached huge reservation, or else gives the backed free pages of
 * one 2 MiB chunk back to the OS (the highest such chunk), those in runs of at
 * least min_run pages; returns the bytes released.  Unless force, only memory
 * idle for idle_ms (chunks no page of which was taken or freed since) and
 * chunks not dense. */
size_t gm_mheap_release_step(bool force, uint32_t idle_ms, uint32_t min_run);
/* Gives every free, still-backed page back to the OS; returns bytes given. */
size_t gm_mheap_release_all(void);
/* Unmaps arenas with no page in use: all of them (idle_ms 0), or those
 * wholly given back and idle for idle_ms but the lowest; returns the bytes
 * of address space given back. */
size_t gm_mheap_unmap_unused(uint32_t idle_ms);
/* In a fork child: pages a release step had taken out of the free set when
 * the fork came (the scavenger thread that held them does not exist here)
 * go back to it, as free and backed. */
void gm_mheap_after_fork_child(void);

/* ---- pagecache.c ----------------------------------------------------- */
/* A thread's freed large blocks by page count, kept in its cache
 * (gm_mcache_t.pages) and handed to these functions by their owner. */
typedef struct gm_pagecache {
    gm_span_t *large[GM_PAGE_CACHE_MAX_PAGES + 1];  /* owner */
    size_t bytes;                   /* owner (statistics read it racily) */
    bool taken;                     /* owner: a cached block was reused this epoch */
} gm_pagecache_t;
/* A cached large block of size bytes (alignment: a page) from pc, or NULL. */
void *gm_pagecache_take(gm_pagecache_t *pc, size_t size);
/* Keeps freed large span s on pc; false when it does not qualify (too big,
 * cache full). */
bool gm_pagecache_put(gm_pagecache_t *pc, gm_span_t *s);
/* Gives every block on pc back to the mheap (keep_if_taken: only if none
 * was reused since the last call). */
void gm_pagecache_flush(gm_pagecache_t *pc, bool keep_if_taken);

/* ---- mcache.c -------------------------------------------------------- */
/* The fast-path state is kept as arrays indexed by class rather than an array
 * of structs so that x86 addressing scales the class index for free.  A
 * list's length is max - room; room goes negative (-1) only between the push
 * that overflows the list and the flush that follows.  The object-start
 * multiplier and limit are copies of the class tables (all zero in
 * gm_mcache_empty, so every free of a thread without a cache fails the start
 * test and takes the slow path, which needs no NULL test on the fast path). */
struct gm_mcache {
    void *head[GM_NUM_CLASSES];              /* owner thread only */
    uint64_t start_magic[GM_NUM_CLASSES];    /* immutable: gm_class_divmagic */
    uint64_t start_limit[GM_NUM_CLASSES];    /* immutable: gm_class_start_limit */
    int64_t room[GM_NUM_CLASSES];            /* owner: pushes left before a flush */
    uint32_t max[GM_NUM_CLASSES];            /* owner: bound on the list's length */
    gm_pagecache_t pages;           /* owner: freed large blocks (pagecache.c) */
    gm_batch_t *spare;              /* owner: a buffer to give or take a batch in */
    uint8_t shard;                  /* its mcentral shard, set when a thread takes the cache */
    size_t max_bytes;               /* owner: sum over classes of max * size */
    size_t bound;                   /* owner: the limit on max_bytes, base + earned */
    size_t base;                    /* immutable: the bound it starts with */
    uint64_t refilled[2];           /* owner: classes refilled this epoch */
    uint64_t overflowed[2];         /* owner: classes whose list overflowed this epoch */
    uint16_t overages[GM_NUM_CLASSES]; /* owner: overflows since the last refill */
    uint32_t epoch;                 /* owner: last gm_scavenger_epoch seen */
    size_t parked_bytes;            /* registry lock: list bytes, while parked */
    uint32_t parked_epoch;          /* registry lock: gm_scavenger_epoch when parked */
    gm_mcache_t *next, *prev;       /* registry lock */
    /* Counts for statistics (see mcache.c, "Counting"), written by the owner
     * on its slow paths only, read racily by others: objects taken from and
     * given to the mcentral, allocations and frees folded in so far, and
     * allocations - frees as of the last fold. */
    uint64_t st_in[GM_NUM_CLASSES], st_out[GM_NUM_CLASSES];
    uint64_t st_mallocs[GM_NUM_CLASSES], st_frees[GM_NUM_CLASSES];
    int64_t st_net[GM_NUM_CLASSES];
} __attribute__((aligned(GM_CACHELINE)));   /* two threads' caches share no line */

/* What gm_tls_cache points to while a thread has no cache: no objects, no
 * room, object-start limits of zero. */
extern const gm_mcache_t gm_mcache_empty;

void *gm_mcache_alloc_slow(size_t size);
/* Pushes ptr when the thread has no cache yet (or none any more). */
void gm_mcache_free_nocache(void *ptr, uint8_t cls);
/* Called by the free fast path when bin cls grew past its bound. */
void gm_mcache_flush_slow(gm_mcache_t *c, uint8_t cls);
/* gm_mcache_flush_slow for the list at &c->head[cls]: the free fast path
 * then needs no register for cls past its push. */
void gm_mcache_overflow(gm_mcache_t *c, void **list);
void gm_mcache_flush_all(gm_mcache_t *c);
/* Bytes on the lists of all thread caches, live and parked (small objects);
 * the bytes of their page caches go to *large_out unless it is NULL. */
uint64_t gm_mcache_cached_bytes(uint64_t *large_out);
/* Live threads' caches (parked ones are not counted). */
uint64_t gm_mcache_count(void);
/* Per class, over every cache that ever was (live, parked, gone) and the
 * calls served without one: allocations and frees (each a lower bound, their
 * difference exact when no other thread is in a call; see mcache.c,
 * "Counting") and objects on the caches' lists. */
void gm_mcache_class_counts(uint64_t mallocs[GM_NUM_CLASSES], uint64_t frees[GM_NUM_CLASSES],
                            uint64_t cached[GM_NUM_CLASSES]);
/* Flushes and frees every parked cache (malloc_trim). */
void gm_mcache_release_parked(void);
/* Parked caches, and the bytes on their lists (to *bytes_out unless NULL). */
uint32_t gm_mcache_parked(size_t *bytes_out);
void gm_mcache_registry_lock(void);
void gm_mcache_registry_unlock(void);
gm_lock_t *gm_mcache_registry_lockp(void);   /* for fork (malloc.c) */
/* In a fork child, with the registry and fixalloc locks free: drops the
 * caches of the threads that did not come along. */
void gm_mcache_after_fork_child(void);
void gm_mcache_init(void);
void gm_mcache_flush_current(void);
/* The calling thread's cache, created if it has none; NULL while the thread
 * exits, in debug mode, or out of memory. */
gm_mcache_t *gm_mcache_for_thread(void);

/* ---- malloc.c -------------------------------------------------------- */
void gm_init(void);

/* ---- raw.c ----------------------------------------------------------- */
/* The allocation paths without the debug layer (errno set on failure). */
static inline void *gm_fail_nomem(void) {
    errno = ENOMEM;
    return NULL;
}
void *gm_raw_alloc(size_t size, size_t align, bool zero);
/* A page run or reservation of at least size bytes aligned to align. */
void *gm_raw_alloc_large(size_t size, size_t align, bool zero);
/* Gives back what the caches and lists hold and unmaps unused arenas when the
 * OS refused memory for a request of size bytes; true if worth a retry. */
bool gm_raw_reclaim(size_t size);
/* Smallest class at least size bytes whose objects all start at a multiple
 * of align; 0 if none. */
uint8_t gm_raw_aligned_class(size_t size, size_t align);
void gm_raw_free(void *ptr, const char *call);
/* Usable bytes of a block (its class to *cls_out, 0 if large or huge);
 * anything gomalloc did not hand out, or a block found free, is reported
 * (as "double free of" a block, by gm_raw_usable_size as "freed block"). */
size_t gm_raw_usable(const void *ptr, const char *call, uint8_t *cls_out);
size_t gm_raw_usable_size(const void *ptr, uint8_t *cls_out);

/* ---- stats.c, stats_report.c ------------------------------------------------ */
/* malloc_info's XML in fresh mmap'd memory (see stats_report.c); NULL on failure. */
char *gm_malloc_info_xml(size_t *len, size_t *cap);
void gm_malloc_info_done(char *xml, size_t cap);
/* Writes the SVG heap map to fd (heapmap.c): 0, or -1 on failure. */
int gm_heapmap_write_fd(int fd);

/* ---- profile.c ----------------------------------------------------------- */
/* Hooks of the sampled heap profile, called only while
 * gm_options.profile_rate is not 0, and only on slow paths (see profile.c). */
bool gm_profile_due(size_t size);                      /* sample this allocation? */
uint32_t gm_profile_trim(uint8_t cls, uint32_t want);  /* a refill's size */
void gm_profile_refilled(uint8_t cls, uint32_t got);   /* charges what it got */
void *gm_profile_alloc_small(size_t size);             /* a sampled small block */
void gm_profile_note_large(void *p, size_t size);      /* a large block was handed out */
void gm_profile_forget(void *p);                       /* a sampled block is being freed */
gm_lock_t *gm_profile_lockp(void);                     /* for fork (malloc.c) */
/* Writes the profile to fd (pprof's format); -1 on error. */
int gm_profile_write_fd(int fd);
/* Readies the stack walk when sampling is on; at load time, from
 * stats_report.c. */
void gm_profile_load_unwinder(void);

/* ---- unwind.c ------------------------------------------------------------ */
/* Up to max return addresses, gm_unwind's caller's first; never mallocs. */
uint32_t gm_unwind(uintptr_t *pcs, uint32_t max);
/* Whatever the walk needs loaded before the first sample (at load time). */
void gm_unwind_load(void);

/* ---- debug.c --------------------------------------------------------- */
void *gm_debug_alloc(size_t size, size_t align, bool zero);
void gm_debug_free(void *ptr, const char *call);
void *gm_debug_realloc(void *ptr, size_t size);
size_t gm_debug_usable(const void *ptr);

#pragma GCC visibility pop

#endif /* GM_INTERNAL_H */
