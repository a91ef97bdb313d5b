/*
 * mheap.c — the page heap: runs of 8 KiB pages for spans and large blocks.
 *
 * Memory comes in arenas: 64 MiB of address space reserved PROT_NONE, aligned
 * to 64 MiB so an arena is one pagemap slot.  If the kernel refuses 64 MiB
 * (RLIMIT_AS, a fragmented address space) the heap falls back to smaller
 * reservations, down to what the request needs, each inside one slot.  Pages
 * are committed (made read/write) from the bottom of an arena up, in 2 MiB
 * steps, as allocation reaches them.
 *
 * Page allocation is Go's: a bitmap per arena, one bit per page, searched for
 * the lowest run that fits (address-ordered first fit), arenas visited in
 * address order.  Freeing sets the bits back, so neighbouring free runs
 * coalesce by construction and no free-run structure needs splitting or
 * merging.  max_run_hint lets a search skip arenas that cannot serve it.
 * The bitmap operations and the run search are pure functions over words
 * (pagebits.h, Go's mpallocbits.go).  Freed small spans of up to 16 pages
 * wait on a stack for their page count ("freed small spans" below) for the
 * next request of that length, bits untouched.  A request of 5 to 128 pages
 * first tries a recently freed run of its length or up to 2 + n/8 pages
 * longer, one above 1 MiB the free run that faults in the fewest pages
 * (pageplace.c chooses both).
 *
 * gm_mheap_alloc_spans and gm_mheap_free_spans take and return several
 * spans of one size in one lock round trip: an mcentral whose spans hold one
 * or two objects needs several for one transfer (see mcentral.c).
 *
 * Resizing a large block in place (realloc) is resize.c's, through the
 * locked primitives that mheap.h declares.
 *
 * Huge blocks (GM_HUGE_THRESHOLD, 32 MiB, and up) get a reservation of
 * whole slots of their own (huge.c); pageplace.c decides which pool a block
 * above GM_BIG_MIN goes to ("one pool for big blocks"), and a release step
 * gives idle huge memory back first.
 *
 * Per-page state, all under the mheap lock:
 *   free_bits      1 = page not in any span or block (nor on a span stack);
 *   dirty_bits     1 = page may hold non-zero bytes (written since it was
 *                  fresh from the OS or released with MADV_DONTNEED);
 *   released_bits  1 = free page with no memory behind it: never committed
 *                  (at or above commit_end) or given back with madvise.
 * Invariants (checked, with the counts below, each time a slow path drops the
 * heap lock in a GM_CHECKS build: heapcheck.c): released implies free; pages at or above
 * commit_end are free, released and clean; pages outside [lo, hi) are never
 * free.  max_run_hint is a hint, not a bound: a failed search for n pages,
 * 2^k <= n, counts only the runs from word run_from[k] on.
 * released_pages counts the free arena's released bits; the globals below
 * count pages in use and free-but-backed pages (the scavenger's measure);
 * a page on a span stack is clear in free_bits but counted free and backed.
 *
 * Returning pages to the OS and unmapping unused arenas are release.c's,
 * through the locked primitives below that mheap.h declares; the counts stay
 * here.  Pages a release step has withdrawn from the free set while it gives
 * them back outside the lock are in flight: neither free nor in use.  Every
 * free stamps its pages (page_freed_ms), which is how release.c tells idle
 * pages.
 *
 * Locking: the heap lock (gm_heap_lock, which huge.c defines and takes for
 * the huge blocks) guards every arena's bitmaps, commit_end, page counts,
 * max_run_hint and run_from, the arena list, the pagemap writes,
 * span state, the spare span structs, the span stacks and the statistics below.
 * The lock is taken after any mcentral lock and before fixalloc's; the
 * functions named _locked that mheap.h declares run with it held.
 */
#include <string.h>

#include "internal.h"
#include "mheap.h"
#include "pagebits.h"

#define PAGE GM_PAGE_SIZE

#define MIN_ARENA_BYTES ((size_t)1 << 20)
/* A free measures the run it merged into up to this many words a side. */
#define RUN_SCAN_WORDS 8

static gm_arena_t *arenas;                  /* heap lock, address order */
static gm_fixalloc_t span_fa = {.size = sizeof(gm_span_t)};
static gm_fixalloc_t arena_fa = {.size = sizeof(gm_arena_t)};
static uint64_t reserved_bytes;             /* heap lock: heap arenas */
static uint64_t large_bytes, large_count;   /* heap lock */
static uint64_t pages_in_use;               /* heap lock: in spans and blocks */
static uint64_t pages_free_backed;          /* heap lock: free, not released */
uint64_t gm_heap_committed;                 /* atomic, written under the heap lock: heap arenas */

/* ---- arenas ------------------------------------------------------------ */

static void insert_arena_locked(gm_arena_t *a) {
    gm_arena_t **at = &arenas;
    while (*at && (*at)->base < a->base)
        at = &(*at)->next;
    a->next = *at;
    *at = a;
}

/* Reserves a new arena able to hold at least npages; NULL when the OS refuses
 * every size down to the request. */
static gm_arena_t *grow_locked(uint32_t npages) {
    size_t need = (size_t)npages * PAGE;
    if (need < MIN_ARENA_BYTES)
        need = MIN_ARENA_BYTES;   /* smaller arenas would cost more than they hold */
    for (size_t size = GM_ARENA_SIZE; size >= need; size /= 2) {
        void *p = gm_os_reserve(size, size);
        if (!p)
            continue;
        gm_arena_t *a = gm_fixalloc_alloc(&arena_fa);
        if (!a) {
            gm_os_unmap(p, size);
            return NULL;
        }
        a->lo = (uintptr_t)p;
        a->hi = a->lo + size;
        a->base = a->lo & ~(GM_ARENA_SIZE - 1);
        a->commit_end = a->lo;
        a->free_pages = (uint32_t)(size / PAGE);
        a->max_run_hint = a->free_pages;
        a->released_pages = a->free_pages;
        gm_bits_set(a->free_bits, gm_page_index(a->lo), a->free_pages);
        gm_bits_set(a->released_bits, gm_page_index(a->lo), a->free_pages);
        if (!gm_pagemap_claim(a->lo, size, a)) {
            gm_os_unmap(p, size);
            gm_fixalloc_free(&arena_fa, a);
            continue;
        }
        reserved_bytes += size;
        insert_arena_locked(a);
        return a;
    }
    return NULL;
}

/* Makes [lo, end) of the arena read/write. */
static bool commit_to_locked(gm_arena_t *a, uintptr_t end) {
    if (end <= a->commit_end)
        return true;
    uintptr_t target = (end + GM_COMMIT_STEP - 1) & ~(GM_COMMIT_STEP - 1);
    if (target > a->hi)
        target = a->hi;
    if (!gm_os_commit((void *)a->commit_end, target - a->commit_end))
        return false;
    __atomic_add_fetch(&gm_heap_committed, target - a->commit_end, __ATOMIC_RELAXED);
    a->commit_end = target;
    return true;
}

/* ---- page runs --------------------------------------------------------- */

/* Notes that pages [first, first + n) of arena a were freed now. */
static void stamp_freed_locked(gm_arena_t *a, uintptr_t first, uint32_t n) {
    uint32_t now = gm_os_clock_ms();
    for (uint32_t i = 0; i < n; i++)
        a->page_freed_ms[first + i] = now;
}

/* Takes the free pages [first, first + n) of arena a. */
bool gm_mheap_take_pages_locked(gm_arena_t *a, uintptr_t first, uint32_t n) {
    uintptr_t addr = a->base + first * PAGE;
    if (!commit_to_locked(a, addr + (uintptr_t)n * PAGE))
        return false;
    uint32_t released = gm_bits_count(a->released_bits, first, n);
    gm_bits_clear(a->free_bits, first, n);
    gm_bits_clear(a->released_bits, first, n);
    a->free_pages -= n;
    a->released_pages -= released;
    pages_free_backed -= n - released;
    pages_in_use += n;
    gm_heap_note_in_use_locked((int64_t)n * PAGE, true);
    return true;
}

/* ---- search hints -------------------------------------------------------
 * First fit scans an arena's bitmap from a start word.  run_from[k] keeps,
 * per run length class, where that scan may start: a search for n pages
 * (2^k <= n) starts at run_from[k]; its outcome moves run_from up for the
 * classes it proves empty below; a free moves it down for the classes its
 * merged run belongs to.  So a search for a long run skips the low words
 * that small holes keep fragmented. */

/* A search for n pages found its first run at page first (or none, -1):
 * no run of n or more pages starts below it. */
static void note_search_locked(gm_arena_t *a, uint32_t n, long first) {
    uint32_t word = first < 0 ? GM_ARENA_BITMAP_WORDS : (uint32_t)first / 64;
    uint32_t k = gm_floor_log2(n) + ((n & (n - 1)) != 0);   /* 2^k >= n */
    for (; k < GM_RUN_CLASSES; k++)
        if (a->run_from[k] < word)
            a->run_from[k] = (uint8_t)word;   /* <= 128 */
}

/* A free left a run of length pages starting at page start (length
 * GM_ARENA_PAGES: extent unknown, it may start anywhere): a run of any class
 * up to its length may now start there. */
static void note_free_run_locked(gm_arena_t *a, uintptr_t start, uint32_t length) {
    uint32_t word = length >= GM_ARENA_PAGES ? 0 : (uint32_t)(start / 64);
    for (uint32_t k = 0; k < GM_RUN_CLASSES && ((uint32_t)1 << k) <= length; k++)
        if (a->run_from[k] > word)
            a->run_from[k] = (uint8_t)word;
}

/* ---- close fits and fewest faults (pageplace.c) ---------------------------- */

/* Takes n pages at the start of the most recent recorded run of n to
 * n + gm_fit_slack(n) pages that is still free; 0 if there is none. */
static uintptr_t fit_alloc_locked(uint32_t n, gm_arena_t **out) {
    uint32_t last = n + gm_fit_slack(n);
    for (uint32_t length = n; length <= last && length <= GM_FIT_MAX_PAGES; length++) {
        gm_arena_t *a;
        long start = gm_place_fit_pop_locked(length, &a);
        if (start >= 0 && gm_mheap_take_pages_locked(a, (uintptr_t)start, n)) {
            *out = a;
            return a->base + (uintptr_t)start * PAGE;
        }
    }
    return 0;
}

/* Takes the pages of placement w (n pages); their address, or 0. */
static uintptr_t take_placement_locked(const struct gm_placement *w, uint32_t n, gm_arena_t **out) {
    if (!w->arena || !gm_mheap_take_pages_locked(w->arena, w->start, n))
        return 0;
    *out = w->arena;
    return w->arena->base + (uintptr_t)w->start * PAGE;
}

/* Takes n pages, aligned to align pages, from the lowest place that has them;
 * returns their address and arena, or 0 when the OS refuses more memory. */
static uintptr_t alloc_pages_locked(uint32_t n, uint32_t align, gm_arena_t **out) {
    if (align <= 1 && n >= GM_FIT_MIN_PAGES && n <= GM_FIT_MAX_PAGES) {
        uintptr_t addr = fit_alloc_locked(n, out);
        if (addr)
            return addr;
    }
    if (align <= 1 && n > GM_FIT_MAX_PAGES) {
        struct gm_placement w;
        gm_place_fewest_faults_locked(arenas, n, &w);
        uintptr_t addr = take_placement_locked(&w, n, out);
        if (addr)
            return addr;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        for (gm_arena_t *a = arenas; a; a = a->next) {
            if (a->free_pages < n || a->max_run_hint < n)
                continue;
            uint32_t longest = 0;
            long first = align > 1 ? gm_bits_find_run_aligned(a->free_bits, GM_ARENA_PAGES, n, align)
                                   : gm_bits_find_run(a->free_bits, GM_ARENA_BITMAP_WORDS, a->run_from[gm_floor_log2(n)], n, &longest);
            if (align <= 1)
                note_search_locked(a, n, first);
            if (first < 0) {
                if (align <= 1)
                    a->max_run_hint = longest;
                continue;
            }
            if (!gm_mheap_take_pages_locked(a, (uintptr_t)first, n))
                return 0;
            *out = a;
            return a->base + (uintptr_t)first * PAGE;
        }
        if (!grow_locked(n + (align > 1 ? align : 0)))
            return 0;
    }
    return 0;
}

/* Frees pages [addr, addr + n) without noting the time (see stamp). */
static void put_pages_locked(gm_arena_t *a, uintptr_t addr, uint32_t n) {
    uintptr_t first = gm_page_index(addr);
    gm_bits_set(a->free_bits, first, n);
    gm_bits_set(a->dirty_bits, first, n);
    a->free_pages += n;
    /* The longest run can only have grown to the one this free merged into. */
    uintptr_t start = 0;
    uint32_t run = gm_bits_run_around(a->free_bits, GM_ARENA_PAGES, first, n, RUN_SCAN_WORDS, &start);
    a->max_run_hint = gm_max_u32(a->max_run_hint, run);
    note_free_run_locked(a, start, run);
    gm_place_fit_push_locked(a, start, run);
    pages_free_backed += n;
    pages_in_use -= n;
    gm_heap_note_in_use_locked(-(int64_t)n * PAGE, false);
}

void gm_mheap_free_pages_locked(gm_arena_t *a, uintptr_t addr, uint32_t n) {
    put_pages_locked(a, addr, n);
    stamp_freed_locked(a, gm_page_index(addr), n);
}

static bool range_is_zero_locked(gm_arena_t *a, uintptr_t page, uint32_t n) {
    return !gm_bits_any(a->dirty_bits, page, n);
}

/* Span structs of freed spans, linked through next: reused under the heap
 * lock, so a span's life costs no fixalloc lock round trips once the heap
 * has had as many spans as it needs. */
static gm_span_t *spare_spans;              /* heap lock */

static gm_span_t *new_span_locked(gm_arena_t *a, uintptr_t addr, uint32_t n, uint8_t cls) {
    gm_span_t *s = spare_spans;
    if (s) {
        spare_spans = s->next;
        memset(s, 0, sizeof *s);
    } else if (!(s = gm_fixalloc_alloc(&span_fa))) {
        return NULL;
    }
    s->base = addr;
    s->npages = n;
    s->cls = cls;
    s->arena = a;
    s->state = cls ? GM_SPAN_SMALL : GM_SPAN_LARGE;
    s->fresh_zero = range_is_zero_locked(a, gm_page_index(addr), n);
    gm_pagemap_set_span(a, s);
    return s;
}

/* ---- freed small spans, by page count --------------------------------------
 * A freed small span of at most STACK_MAX_PAGES pages goes on the stack for
 * its page count, span struct and all, instead of back into the bitmaps;
 * the next span request of that many pages (or, for one page, large block
 * with no alignment beyond a page) pops it.  A freed large block never goes
 * there: its pages keep the tag that names them freed (pagemap.c), and code
 * that walks the pages reads a stacked page's span entry as empty.  Every
 * size class has spans of 1 to 10 pages, and the classes from 8 KiB up one
 * to a few objects per span, so a burst of such blocks beyond the caches
 * sends a span through the heap for every block or few: a pop skips the
 * bitmap search and updates, the run merging and the span struct recycling,
 * which were half of the instructions of `fastpath 16384 N batch` (bursts
 * of 1000 16 KiB blocks; callgrind).  Until 2026-12 only 1-page spans were
 * stacked, at most 1024: CPU time of `fastpath SIZE 1000000 batch`, medians
 * of 5 interleaved runs, went from 0.22 to 0.12 s at 16 KiB and from 0.33
 * to 0.16 s at 32 KiB (4-page spans; with the old 1024-page cap, 0.18 s: a
 * burst of 32 MiB mostly missed the stack) at the same peak RSS (mimalloc
 * 0.14 and 0.10 s, tcmalloc 0.07 and 0.08 s at 14.8 MiB against 9.5).  A
 * stacked page stays clear in free_bits (its arena's counts treat it as in
 * use) but counts as free and backed in pages_in_use / pages_free_backed,
 * so the statistics and the scavenger see it as free; its pagemap entries
 * are cleared as for any freed span, and its dirty bit stays set (reuse is
 * not fresh).  Any other page allocation (another length, or one whose
 * stack is empty), in-place growth and every release step first put all
 * stacked pages back into the bitmaps (gm_mheap_flush_pages_locked), so
 * first fit, coalescing and returning memory are as without the stacks;
 * only runs of the lengths in demand are reused last-freed first. */
#define STACK_MAX_PAGES 16
#define STACKED_PAGES_MAX 4096   /* 32 MiB: a full flush costs what the frees would have */
static gm_span_t *span_stack[STACK_MAX_PAGES + 1];   /* heap lock, linked by next */
static uint32_t stacked_pages;                        /* heap lock */

static bool push_span_locked(gm_span_t *s) {
    if (s->npages > STACK_MAX_PAGES || s->cls == 0 ||
        stacked_pages + s->npages > STACKED_PAGES_MAX)
        return false;
    gm_pagemap_clear_span(s->arena, s);
    s->state = GM_SPAN_FREE;
    s->next = span_stack[s->npages];
    span_stack[s->npages] = s;
    stacked_pages += s->npages;
    pages_in_use -= s->npages;
    gm_heap_note_in_use_locked(-(int64_t)s->npages * PAGE, false);
    pages_free_backed += s->npages;
    stamp_freed_locked(s->arena, gm_page_index(s->base), s->npages);
    return true;
}

/* Whether a request for npages pages (no alignment beyond a page) can pop. */
static bool stacked_locked(uint32_t npages) {
    return npages <= STACK_MAX_PAGES && span_stack[npages] != NULL;
}

static gm_span_t *pop_span_locked(uint32_t npages, uint8_t cls) {
    gm_span_t *s = span_stack[npages];
    span_stack[npages] = s->next;
    stacked_pages -= npages;
    uintptr_t base = s->base;
    gm_arena_t *a = s->arena;
    memset(s, 0, sizeof *s);
    s->base = base;
    s->npages = npages;
    s->cls = cls;
    s->arena = a;
    s->state = cls ? GM_SPAN_SMALL : GM_SPAN_LARGE;
    gm_pagemap_set_span(a, s);
    pages_in_use += npages;
    gm_heap_note_in_use_locked((int64_t)npages * PAGE, false);   /* counted before it was stacked */
    pages_free_backed -= npages;
    return s;
}

/* Puts every stacked span's pages back into its arena's bitmaps (their
 * chunk's stamp stays the time they were freed). */
void gm_mheap_flush_pages_locked(void) {
    if (!stacked_pages)
        return;
    for (uint32_t n = 1; n <= STACK_MAX_PAGES; n++) {
        while (span_stack[n]) {
            gm_span_t *s = span_stack[n];
            span_stack[n] = s->next;
            pages_in_use += n;   /* put_pages_locked counts them free again */
            gm_heap_note_in_use_locked((int64_t)n * PAGE, false);
            pages_free_backed -= n;
            put_pages_locked(s->arena, s->base, n);
            s->next = spare_spans;
            spare_spans = s;
        }
    }
    stacked_pages = 0;
}

static gm_span_t *alloc_span_locked(uint32_t npages, uint8_t cls) {
    if (stacked_locked(npages))
        return pop_span_locked(npages, cls);
    gm_mheap_flush_pages_locked();
    gm_arena_t *a;
    uintptr_t addr = alloc_pages_locked(npages, 1, &a);
    if (!addr)
        return NULL;
    gm_span_t *s = new_span_locked(a, addr, npages, cls);
    if (!s)
        gm_mheap_free_pages_locked(a, addr, npages);
    else
        gm_bits_set(a->dirty_bits, gm_page_index(addr), npages);
    return s;
}

gm_span_t *gm_mheap_alloc_span(uint32_t npages, uint8_t cls) {
    gm_lock(&gm_heap_lock);
    gm_span_t *s = alloc_span_locked(npages, cls);
    gm_mheap_unlock();
    return s;
}

/* n spans in one trip through the lock: classes with few objects per span
 * need several spans for one transfer, and the lock round trip costs more
 * than taking a span off a span stack. */
uint32_t gm_mheap_alloc_spans(uint32_t npages, uint8_t cls, uint32_t n, gm_span_t **out) {
    uint32_t got = 0;
    gm_lock(&gm_heap_lock);
    while (got < n && (out[got] = alloc_span_locked(npages, cls)) != NULL)
        got++;
    gm_mheap_unlock();
    return got;
}

/* Makes the taken pages [addr, addr + npages) of arena a a large block;
 * NULL, the pages free again, when no span struct can be had. */
static gm_span_t *large_span_locked(gm_arena_t *a, uintptr_t addr, uint32_t npages) {
    gm_span_t *s = new_span_locked(a, addr, npages, 0);
    if (!s) {
        gm_mheap_free_pages_locked(a, addr, npages);
        return NULL;
    }
    s->large_size = (size_t)npages * PAGE;
    large_bytes += s->large_size;
    large_count++;
    gm_bits_set(a->dirty_bits, gm_page_index(addr), npages);
    return s;
}

/* A stacked one-page span as a one-page large block (the heap profile's
 * sampled small blocks are the ones this size): popping it keeps the stacks,
 * where flushing them would send the next small spans through the bitmap
 * search (bench/fastpath 8192 with sampling on: 550,000 searches instead of
 * 1,000).  The page stays dirty, as a stacked page is.  Longer large blocks
 * are placed by first fit and pageplace.c, never from the stacks. */
static gm_span_t *large_page_locked(void) {
    gm_span_t *s = pop_span_locked(1, 0);
    s->large_size = PAGE;
    large_bytes += PAGE;
    large_count++;
    return s;
}

void gm_mheap_set_large_pages_locked(gm_span_t *s, uint32_t npages) {
    large_bytes -= s->large_size;
    s->npages = npages;
    s->large_size = (size_t)npages * PAGE;
    large_bytes += s->large_size;
}

/* A page run of at least size bytes whose start is aligned to align (a power
 * of two).  s->fresh_zero tells the caller whether the pages are known zero. */
gm_span_t *gm_mheap_alloc_large(size_t size, size_t align) {
    uint32_t npages = (uint32_t)((size + PAGE - 1) / PAGE);
    uint32_t align_pages = align > PAGE ? (uint32_t)(align / PAGE) : 1;
    gm_arena_t *a;
    gm_span_t *s = NULL;
    gm_lock(&gm_heap_lock);
    if (npages == 1 && align_pages == 1 && stacked_locked(1)) {
        s = large_page_locked();
    } else {
        gm_mheap_flush_pages_locked();
        uintptr_t addr = alloc_pages_locked(npages, align_pages, &a);
        if (addr)
            s = large_span_locked(a, addr, npages);
    }
    gm_mheap_unlock();
    return s;
}


static void free_span_locked(gm_span_t *s) {
    if (s->state == GM_SPAN_LARGE) {
        large_bytes -= s->large_size;
        large_count--;
    }
    if (push_span_locked(s))
        return;
    s->state = GM_SPAN_FREE;
    gm_pagemap_clear_span(s->arena, s);
    gm_mheap_free_pages_locked(s->arena, s->base, s->npages);
    s->next = spare_spans;
    spare_spans = s;
}

void gm_mheap_free_span(gm_span_t *s) {
    gm_lock(&gm_heap_lock);
    free_span_locked(s);
    gm_mheap_unlock();
}

/* Frees a list of spans linked through next, in one trip through the lock. */
void gm_mheap_free_spans(gm_span_t *list) {
    gm_lock(&gm_heap_lock);
    while (list) {
        gm_span_t *s = list;
        list = s->next;
        free_span_locked(s);
    }
    gm_mheap_unlock();
}

/* ---- one pool for big blocks (the choice: pageplace.c) --------------------- */

void *gm_mheap_alloc_big(size_t size, size_t *dirty) {
    size = gm_round_up(size, PAGE);
    uint32_t n = size <= GM_ARENA_SIZE ? (uint32_t)(size / PAGE) : UINT32_MAX;
    struct gm_placement w = {NULL, 0, UINT32_MAX, 0};
    gm_lock(&gm_heap_lock);
    gm_mheap_flush_pages_locked();
    if (n != UINT32_MAX)
        gm_place_fewest_faults_locked(arenas, n, &w);
    gm_huge_t *c = gm_huge_best_cached_locked(size, PAGE);
    bool arena = gm_place_big_in_arena(size >= GM_HUGE_THRESHOLD, n, w.arena ? w.faults : UINT32_MAX,
                                       c ? gm_huge_faults(c, size) : UINT32_MAX);
    gm_span_t *s = NULL;
    gm_arena_t *a;
    if (arena && w.arena) {
        uintptr_t addr = take_placement_locked(&w, n, &a);
        s = addr ? large_span_locked(a, addr, n) : NULL;
    } else if (arena) {   /* no free run: the heap grows */
        uintptr_t addr = alloc_pages_locked(n, 1, &a);
        s = addr ? large_span_locked(a, addr, n) : NULL;
    }
    if (!arena && c)
        gm_huge_take_cached_locked(c);
    gm_mheap_unlock();
    if (!arena)
        return gm_huge_hand_out(c, size, PAGE, dirty);
    if (!s)
        return NULL;
    *dirty = s->fresh_zero ? 0 : size;
    return (void *)s->base;
}

/* ---- pages in flight (the release step: release.c) ----------------------- */

static uint32_t pages_in_flight;   /* heap lock: withdrawn, not yet put back */

void gm_mheap_withdraw_locked(const struct gm_chunk_pages *c) {
    gm_arena_t *a = c->arena;
    for (uint32_t k = 0; k < 4; k++)
        a->free_bits[c->chunk * 4 + k] &= ~c->masks[k];   /* nobody may take them now */
    a->free_pages -= c->n;
    pages_free_backed -= c->n;
    pages_in_flight += c->n;
}

/* Free pages came back in the chunk, where runs may merge with them: the
 * arena's search hints start over. */
void gm_mheap_put_back_locked(const struct gm_chunk_pages *c, bool released, bool zeroed) {
    gm_arena_t *a = c->arena;
    for (uint32_t k = 0; k < 4; k++) {
        a->free_bits[c->chunk * 4 + k] |= c->masks[k];
        if (released)
            a->released_bits[c->chunk * 4 + k] |= c->masks[k];
        if (released && zeroed)
            a->dirty_bits[c->chunk * 4 + k] &= ~c->masks[k];
    }
    a->free_pages += c->n;
    if (released)
        a->released_pages += c->n;
    else
        pages_free_backed += c->n;
    pages_in_flight -= c->n;
    note_free_run_locked(a, 0, (uint32_t)GM_ARENA_PAGES);
    a->max_run_hint = (uint32_t)GM_ARENA_PAGES;
}

/* ---- giving arenas back (the choice: release.c) ---------------------------- */

gm_arena_t **gm_mheap_arenas_locked(void) { return &arenas; }

/* Takes arena a out of the heap: the pagemap first, then the address space,
 * then the descriptor.  The free fast path reads the pagemap without the
 * lock and may have loaded the arena's page_info bias just before the slot
 * was cleared; it can only be freeing a pointer into this arena, all of
 * whose pages are free, so the call is an invalid free whatever it reads.
 * Free pages' page_info is 0 (no class), so it takes the slow path, which
 * finds no arena under the lock and reports the pointer; the descriptor
 * stays readable (fixalloc never unmaps) and is zeroed when handed out
 * again. */
size_t gm_mheap_unmap_arena_locked(gm_arena_t **link) {
    gm_arena_t *a = *link;
    size_t size = a->hi - a->lo;
    *link = a->next;
    pages_free_backed -= (uint32_t)(size / PAGE) - a->released_pages;
    __atomic_sub_fetch(&gm_heap_committed, a->commit_end - a->lo, __ATOMIC_RELAXED);
    reserved_bytes -= size;
    gm_pagemap_unclaim(a->lo, size);
    gm_os_unmap((void *)a->lo, size);
    gm_fixalloc_free(&arena_fa, a);
    return size;
}

void gm_mheap_usage(uint64_t *in_use, uint64_t *free_backed) {
    struct gm_huge_stats h;
    gm_lock(&gm_heap_lock);
    gm_huge_stats_locked(&h);
    *in_use = (pages_in_use * PAGE) + h.bytes;
    *free_backed = pages_free_backed * PAGE + h.idle;
    gm_mheap_unlock();
}

void gm_mheap_stats(struct gm_heap_stats *out) {
    memset(out, 0, sizeof *out);
    gm_lock(&gm_heap_lock);
    for (gm_arena_t *a = arenas; a; a = a->next) {
        out->committed += a->commit_end - a->lo;
        out->released += (uint64_t)a->released_pages * PAGE - (a->hi - a->commit_end);
    }
    struct gm_huge_stats h;
    gm_huge_stats_locked(&h);
    out->free = pages_free_backed * PAGE + h.idle;
    out->in_use = pages_in_use * PAGE + h.bytes;
    out->released += h.committed - h.bytes - h.idle;
    out->mapped = reserved_bytes + h.reserved;
    out->committed += h.committed;
    out->huge = h.bytes;
    out->large_blocks = large_count + h.count;
    out->large_bytes = large_bytes + h.bytes;
    out->huge_blocks = h.count;
    out->peak_in_use = h.peak_in_use;
    gm_mheap_unlock();
}

void gm_mheap_visit(void (*fn)(const gm_arena_t *a, void *arg), void *arg) {
    gm_lock(&gm_heap_lock);
    for (gm_arena_t *a = arenas; a; a = a->next)
        fn(a, arg);
    gm_mheap_unlock();
}

/* [0] large, [1] huge; [.][0] allocations, [.][1] frees.  Relaxed atomic
 * adds on the slow paths that make those trips (raw.c, profile.c); for the
 * statistics only. */
static uint64_t block_trips[2][2];

void gm_mheap_count_trip(bool huge, bool alloc) {
    __atomic_fetch_add(&block_trips[huge][!alloc], 1, __ATOMIC_RELAXED);
}

void gm_mheap_trips(uint64_t out[2][2]) {
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 2; j++)
            out[k][j] = __atomic_load_n(&block_trips[k][j], __ATOMIC_RELAXED);
}

gm_lock_t *gm_mheap_lockp(void) { return &gm_heap_lock; }

/* A GM_CHECKS build checks the heap before the lock goes (heapcheck.c). */
void gm_mheap_unlock(void) {
    GM_CHECK(gm_heapcheck_locked(arenas, pages_in_use, pages_free_backed, stacked_pages, pages_in_flight));
    GM_CHECK(gm_huge_check_locked());
    gm_unlock(&gm_heap_lock);
}
