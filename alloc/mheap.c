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
 * One exception: freed 1-page small spans wait on a short stack (page_stack,
 * see "freed single pages" below) for the next 1-page span, bits untouched.
 * And a request of 5 to 128 pages first tries a recently freed run of its
 * length or up to 2 pages longer (fit_runs, see "close fits"): a close fit
 * reuses pages a block of that size already touched.
 *
 * gm_mheap_alloc_spans and gm_mheap_free_spans take and return several
 * spans of one size in one lock round trip: an mcentral whose spans hold one
 * or two objects needs several for one transfer (see mcentral.c).
 *
 * realloc resizes a large block in place when it can: growing takes the free
 * pages right after it, shrinking frees its tail (gm_mheap_resize_large).
 * When the pages after it are too few, a growing block may take the free
 * pages just before it as well (gm_mheap_grow_large_down; the caller moves
 * the contents down): a block that moves away leaves a hole its growing
 * neighbour then fills, where a move to a new run would leave a second hole
 * (bench/realloc: 300 of its 920 large moves, 6% fewer page faults).
 *
 * Huge blocks (>= GM_HUGE_THRESHOLD, 16 MiB) get a reservation of whole
 * slots of their own and an arena descriptor entered in the pagemap for every
 * slot: a block that size would pin a quarter of an arena against
 * fragmentation.  A freed reservation is kept a while and hosts the next huge
 * block of any size up to its own, with the pages it already faulted in
 * (see "huge blocks" below).  A huge block that outgrows its reservation is
 * remapped to a larger one, its pages moved rather than copied.
 *
 * Per-page state, all under the mheap lock:
 *   free_bits      1 = page not in any span or block (nor on page_stack);
 *   dirty_bits     1 = page may hold non-zero bytes (written since it was
 *                  fresh from the OS or released with MADV_DONTNEED);
 *   released_bits  1 = free page with no memory behind it: never committed
 *                  (at or above commit_end) or given back with madvise.
 * Invariants: released implies free; pages at or above commit_end are free,
 * released and clean; pages outside [lo, hi) are never free.
 * released_pages counts the free arena's released bits; the globals below
 * count pages in use and free-but-backed pages (the scavenger's measure);
 * a page on page_stack is clear in free_bits but counted free and backed.
 *
 * Returning pages (gm_mheap_release_step, driven by scavenger.c): first idle
 * huge memory (a cached reservation is unmapped, or an in-use block's slack
 * given back); else, page_stack first put back into the bitmaps, the backed
 * free pages of one 2 MiB chunk, the highest that has any (in runs of at
 * least the caller's min_run pages: the scavenger asks for long runs first),
 * are taken out of the free set under the lock, released with madvise
 * outside it, and put back as free and released.  Only pages and huge memory
 * idle for the caller's time are eligible: every free stamps its pages
 * (page_freed_ms).  Chunks at least 96.9% in use are left alone unless asked
 * (their huge page is worth more than a few free pages).
 *
 * Locking: heap_lock guards every arena's bitmaps, commit_end, page counts,
 * max_run_hint and run_from, fit_runs, the arena list, the pagemap writes, span
 * state, the spare span structs, page_stack, the huge descriptors' fields
 * and tables and the statistics below.  A huge descriptor in no table
 * (being handed out, not yet returned) is its thread's alone.  The lock is
 * taken after any mcentral lock and before fixalloc's.
 */
#include <string.h>

#include "internal.h"

#define PAGE GM_PAGE_SIZE

#define MIN_ARENA_BYTES ((size_t)1 << 20)

static gm_lock_t heap_lock = GM_LOCK_INIT;
static gm_arena_t *arenas;                  /* heap lock, address order */
static gm_fixalloc_t span_fa = {.size = sizeof(gm_span_t)};
static gm_fixalloc_t arena_fa = {.size = sizeof(gm_arena_t)};
static uint64_t reserved_bytes;             /* heap lock: heap arenas */
static uint64_t huge_bytes, huge_count;     /* heap lock */
static uint64_t large_bytes, large_count;   /* heap lock */
static uint64_t pages_in_use;               /* heap lock: in spans and blocks */
static uint64_t pages_free_backed;          /* heap lock: free, not released */
static uint64_t peak_in_use;                /* heap lock: most pages_in_use * PAGE + huge_bytes */
uint64_t gm_heap_committed;                 /* atomic, written under the heap lock: heap arenas */

/* Statistics: the most the heap ever had in use (stats.c).  Noted where
 * pages go into use from the bitmaps or a huge block is made; the one-page
 * span stack only hands back pages that were counted before. */
static void note_peak_locked(void) {
    uint64_t now = pages_in_use * GM_PAGE_SIZE + huge_bytes;
    if (now > peak_in_use)
        peak_in_use = now;
}

/* ---- bitmap helpers --------------------------------------------------- */

/* Mask of bits [b, b + k) of one word; 0 < k <= 64 - b. */
static uint64_t word_mask(uintptr_t b, uintptr_t k) {
    return (k == 64 ? ~(uint64_t)0 : (((uint64_t)1 << k) - 1)) << b;
}

/* Calls fn on each word of bits [start, start + n) with the mask of the
 * range's bits in it; a word at a time, not a bit at a time. */
#define FOR_EACH_WORD(start, n, word, mask, body)                      \
    do {                                                                \
        uintptr_t at_ = (start), left_ = (n);                           \
        while (left_ > 0) {                                             \
            uintptr_t b_ = at_ % 64, k_ = 64 - b_ < left_ ? 64 - b_ : left_; \
            uintptr_t word = at_ / 64;                                  \
            uint64_t mask = word_mask(b_, k_);                          \
            body;                                                       \
            at_ += k_;                                                  \
            left_ -= k_;                                                \
        }                                                               \
    } while (0)

/* Most runs (small spans) lie within one word: those skip the loop. */
static bool in_one_word(uintptr_t start, uintptr_t n) { return start % 64 + n <= 64; }

static void bits_set(uint64_t *bits, uintptr_t start, uintptr_t n) {
    if (in_one_word(start, n))
        bits[start / 64] |= word_mask(start % 64, n);
    else
        FOR_EACH_WORD(start, n, w, m, bits[w] |= m);
}

static void bits_clear(uint64_t *bits, uintptr_t start, uintptr_t n) {
    if (in_one_word(start, n))
        bits[start / 64] &= ~word_mask(start % 64, n);
    else
        FOR_EACH_WORD(start, n, w, m, bits[w] &= ~m);
}

/* popcount is a libgcc call on baseline x86-64: skip it for empty words. */
static uint32_t popcount_masked(uint64_t x, uint64_t m) {
    return (x & m) ? (uint32_t)__builtin_popcountll(x & m) : 0;
}

static uint32_t count_bits(const uint64_t *bits, uintptr_t start, uintptr_t n) {
    if (in_one_word(start, n))
        return popcount_masked(bits[start / 64], word_mask(start % 64, n));
    uint32_t count = 0;
    FOR_EACH_WORD(start, n, w, m, count += popcount_masked(bits[w], m));
    return count;
}

static bool any_bits(const uint64_t *bits, uintptr_t start, uintptr_t n) {
    if (in_one_word(start, n))
        return (bits[start / 64] & word_mask(start % 64, n)) != 0;
    uint64_t any = 0;
    FOR_EACH_WORD(start, n, w, m, any |= bits[w] & m);
    return any != 0;
}

static uint32_t min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }
static uint32_t max_u32(uint32_t a, uint32_t b) { return a > b ? a : b; }

/* Lowest index of a run of n set bits in an arena's free bitmap, at or
 * above word from (no bit below it is set), or -1.  On failure *longest is
 * an upper bound of the longest run present. */
static long find_run(const uint64_t *bits, uint32_t from, uint32_t n, uint32_t *longest) {
    uint32_t run = 0, start = 0, best = 0;
    bool partial = false;
    for (uint32_t w = from; w < GM_ARENA_BITMAP_WORDS; w++) {
        uint64_t x = bits[w];
        if (x == ~(uint64_t)0) {
            if (run == 0)
                start = w * 64;
            run += 64;
            if (run >= n)
                return start;
            continue;
        }
        if (x == 0) {
            best = max_u32(best, run);
            run = 0;
            continue;
        }
        partial = true;
        uint32_t low = (uint32_t)__builtin_ctzll(~x);   /* ones at the bottom */
        if (run + low >= n)
            return run ? start : w * 64;
        best = max_u32(best, run + low);
        if (n < 64) {
            uint64_t m = x;   /* bit j set: bits j .. j+have-1 all set */
            for (uint32_t have = 1; have < n && m;) {
                uint32_t shift = min_u32(have, n - have);
                m &= m >> shift;
                have += shift;
            }
            if (m)
                return w * 64 + (uint32_t)__builtin_ctzll(m);
        }
        run = (uint32_t)__builtin_clzll(~x);               /* ones at the top */
        start = w * 64 + 64 - run;
    }
    best = max_u32(best, run);
    *longest = partial ? max_u32(best, 63) : best;
    return -1;
}

/* Lowest run of n set bits starting at a multiple of align pages, or -1.
 * Arenas are 64 MiB aligned, so page-index alignment is address alignment. */
static long find_run_aligned(const uint64_t *bits, uint32_t n, uint32_t align) {
    for (uint32_t start = 0; start + n <= GM_ARENA_PAGES; start += align)
        if (count_bits(bits, start, n) == n)
            return start;
    return -1;
}

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
        a->kind = GM_ARENA_HEAP;
        a->lo = (uintptr_t)p;
        a->hi = a->lo + size;
        a->base = a->lo & ~(GM_ARENA_SIZE - 1);
        a->commit_end = a->lo;
        a->free_pages = (uint32_t)(size / PAGE);
        a->max_run_hint = a->free_pages;
        a->released_pages = a->free_pages;
        bits_set(a->free_bits, gm_page_index(a->lo), a->free_pages);
        bits_set(a->released_bits, gm_page_index(a->lo), a->free_pages);
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
    uint64_t committed = __atomic_add_fetch(&gm_heap_committed, target - a->commit_end, __ATOMIC_RELAXED);
    a->commit_end = target;
    gm_scavenger_note_heap(committed);
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
static bool take_pages_locked(gm_arena_t *a, uintptr_t first, uint32_t n) {
    uintptr_t addr = a->base + first * PAGE;
    if (!commit_to_locked(a, addr + (uintptr_t)n * PAGE))
        return false;
    uint32_t released = count_bits(a->released_bits, first, n);
    bits_clear(a->free_bits, first, n);
    bits_clear(a->released_bits, first, n);
    a->free_pages -= n;
    a->released_pages -= released;
    pages_free_backed -= n - released;
    pages_in_use += n;
    note_peak_locked();
    return true;
}

/* ---- search hints -------------------------------------------------------
 * First fit scans an arena's bitmap from a start word.  run_from[k] keeps,
 * per run length class, where that scan may start: a search for n pages
 * (2^k <= n) starts at run_from[k]; its outcome moves run_from up for the
 * classes it proves empty below; a free moves it down for the classes its
 * merged run belongs to.  So a search for a long run skips the low words
 * that small holes keep fragmented. */

static uint32_t floor_log2(uint32_t n) { return 31 - (uint32_t)__builtin_clz(n); }

/* A search for n pages found its first run at page first (or none, -1):
 * no run of n or more pages starts below it. */
static void note_search_locked(gm_arena_t *a, uint32_t n, long first) {
    uint32_t word = first < 0 ? GM_ARENA_BITMAP_WORDS : (uint32_t)first / 64;
    uint32_t k = floor_log2(n) + ((n & (n - 1)) != 0);   /* 2^k >= n */
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

/* ---- close fits -----------------------------------------------------------
 * A free records the run it merged into, when that run is FIT_MIN_PAGES to
 * FIT_MAX_PAGES long, on a stack for its length; a request for n pages first
 * takes the most recent recorded run of n to n + fit_slack(n) pages that is
 * still free, as tcmalloc's page heap takes from its free lists by length.  First
 * fit alone puts a block at the lowest hole that holds it, splitting it, so
 * the block's first and last pages are often ones that no block has touched
 * before: bench/churn 4 (random sizes up to 1 MiB, blocks written at both
 * ends) faulted in 49,000 pages and peaked at 175 MiB, 30,000-33,000 and
 * 98-112 MiB this way (tcmalloc 27,000 and 104 MiB; exact lengths only,
 * 8 deep: 37,000 and 130 MiB).  The slack grows with n (2 pages and an
 * eighth): a freed run has usually merged with a neighbour, and a block of
 * a different size then still starts on the first page its predecessor
 * touched.  Once freed memory stayed backed for the scavenger's decay time
 * (scavenger.c), a slack of 2 reused so few of those pages that bench/churn 1
 * peaked at 88 MiB (21,700 faults); with an eighth, 61 MiB (15,300).  An
 * entry is a hint: its run may since have
 * been taken, split or merged into a longer one, so it is checked against
 * free_bits when popped, and a full stack overwrites its oldest entry. */
#define FIT_MIN_PAGES 5     /* the shortest large block: 32 KiB < size */
#define FIT_MAX_PAGES 128   /* 1 MiB */
#define FIT_SLACK 2
static uint32_t fit_slack(uint32_t n) { return FIT_SLACK + n / 8; }
#define FIT_DEPTH 16
typedef struct {
    gm_arena_t *arena[FIT_DEPTH];
    uint32_t start[FIT_DEPTH];
    uint32_t top, len;
} fit_stack_t;
static fit_stack_t fit_runs[FIT_MAX_PAGES + 1];   /* heap lock */

static void fit_push_locked(gm_arena_t *a, uintptr_t start, uint32_t length) {
    if (length < FIT_MIN_PAGES || length > FIT_MAX_PAGES)
        return;
    fit_stack_t *f = &fit_runs[length];
    f->top = (f->top + 1) % FIT_DEPTH;
    f->arena[f->top] = a;
    f->start[f->top] = (uint32_t)start;
    if (f->len < FIT_DEPTH)
        f->len++;
}

/* Takes n pages at the start of the most recent recorded run of length
 * pages that is still free; 0 if there is none. */
static uintptr_t fit_take_locked(uint32_t length, uint32_t n, gm_arena_t **out) {
    fit_stack_t *f = &fit_runs[length];
    while (f->len > 0) {
        gm_arena_t *a = f->arena[f->top];
        uint32_t start = f->start[f->top];
        f->top = (f->top + FIT_DEPTH - 1) % FIT_DEPTH;
        f->len--;
        if (count_bits(a->free_bits, start, length) != length)
            continue;   /* taken or split since */
        if (!take_pages_locked(a, start, n))
            return 0;
        *out = a;
        return a->base + (uintptr_t)start * PAGE;
    }
    return 0;
}

void gm_mheap_forget_fits(void) {
    gm_lock(&heap_lock);
    memset(fit_runs, 0, sizeof fit_runs);
    gm_unlock(&heap_lock);
}

static uintptr_t fit_alloc_locked(uint32_t n, gm_arena_t **out) {
    for (uint32_t length = n; length <= n + fit_slack(n) && length <= FIT_MAX_PAGES; length++) {
        uintptr_t addr = fit_take_locked(length, n, out);
        if (addr)
            return addr;
    }
    return 0;
}

/* ---- fewest faults ---------------------------------------------------------
 * A large block above FIT_MAX_PAGES goes where it faults in the fewest pages:
 * of every free run that holds it, placed at either end, the window with the
 * fewest released (or never committed) pages, and among equals the shortest
 * run, as tcmalloc's page heap takes the best fit among its free spans.  First
 * fit would put it at the lowest hole long enough, which may reach into pages
 * never touched or given back and spread the heap, while a backed hole of the
 * right size waits higher up: bench/largechurn (buffers of 1-4 MiB replaced
 * at random; its buffers need 15,100 pages) faulted in 32,400 pages with first
 * fit and 20,000 this way (tcmalloc 21,600); the best fit among wholly backed
 * runs alone, 19,500 there, but 125,800 against 119,600 with 5-25 MiB. */

/* The first set (or, !set, clear) bit of an arena bitmap at or after bit i;
 * GM_ARENA_PAGES if none. */
static uint32_t bitmap_next(const uint64_t *bits, uint32_t i, bool set) {
    while (i < GM_ARENA_PAGES) {
        uint32_t shift = i % 64;
        uint64_t w = (set ? bits[i / 64] : ~bits[i / 64]) >> shift;
        if (w)
            return i + (uint32_t)__builtin_ctzll(w);
        i += 64 - shift;
    }
    return GM_ARENA_PAGES;
}

struct placement {
    gm_arena_t *arena;
    uint32_t start, faults, run;
};

/* Considers the n-page windows at both ends of the free run [start, end) of
 * arena a for *best. */
static void consider_run(gm_arena_t *a, uint32_t start, uint32_t end, uint32_t n,
                         struct placement *best) {
    uint32_t at[2] = {start, end - n};
    for (int k = 0; k < 2; k++) {
        uint32_t faults = count_bits(a->released_bits, at[k], n);
        if (!best->arena || faults < best->faults ||
            (faults == best->faults && end - start < best->run)) {
            best->arena = a;
            best->start = at[k];
            best->faults = faults;
            best->run = end - start;
        }
    }
}

/* The n free pages that fault in the fewest pages, in any arena, into
 * *best; best->arena stays NULL if no arena has a free run of n pages. */
static void fewest_faults_locked(uint32_t n, struct placement *best_out) {
    struct placement best = {NULL, 0, 0, 0};
    for (gm_arena_t *a = arenas; a; a = a->next) {
        if (a->free_pages < n || a->max_run_hint < n)
            continue;
        for (uint32_t i = bitmap_next(a->free_bits, 0, true); i < GM_ARENA_PAGES;) {
            uint32_t end = bitmap_next(a->free_bits, i, false);
            if (end - i >= n)
                consider_run(a, i, end, n, &best);
            if (best.arena && best.faults == 0 && best.run == n)
                break;
            i = bitmap_next(a->free_bits, end, true);
        }
    }
    *best_out = best;
}

/* Takes the pages of placement w (n pages); their address, or 0. */
static uintptr_t take_placement_locked(const struct placement *w, uint32_t n, gm_arena_t **out) {
    if (!w->arena || !take_pages_locked(w->arena, w->start, n))
        return 0;
    *out = w->arena;
    return w->arena->base + (uintptr_t)w->start * PAGE;
}

/* Takes n pages, aligned to align pages, from the lowest place that has them;
 * returns their address and arena, or 0 when the OS refuses more memory. */
static uintptr_t alloc_pages_locked(uint32_t n, uint32_t align, gm_arena_t **out) {
    if (align <= 1 && n >= FIT_MIN_PAGES && n <= FIT_MAX_PAGES) {
        uintptr_t addr = fit_alloc_locked(n, out);
        if (addr)
            return addr;
    }
    if (align <= 1 && n > FIT_MAX_PAGES) {
        struct placement w;
        fewest_faults_locked(n, &w);
        uintptr_t addr = take_placement_locked(&w, n, out);
        if (addr)
            return addr;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        for (gm_arena_t *a = arenas; a; a = a->next) {
            if (a->free_pages < n || a->max_run_hint < n)
                continue;
            uint32_t longest = 0;
            long first = align > 1 ? find_run_aligned(a->free_bits, n, align)
                                   : find_run(a->free_bits, a->run_from[floor_log2(n)], n, &longest);
            if (align <= 1)
                note_search_locked(a, n, first);
            if (first < 0) {
                if (align <= 1)
                    a->max_run_hint = longest;
                continue;
            }
            if (!take_pages_locked(a, (uintptr_t)first, n))
                return 0;
            *out = a;
            return a->base + (uintptr_t)first * PAGE;
        }
        if (!grow_locked(n + (align > 1 ? align : 0)))
            return 0;
    }
    return 0;
}

/* Length of the run of set bits that contains [first, first + n) (all set),
 * or GM_ARENA_PAGES when it reaches further than RUN_SCAN_WORDS words on a
 * side (then it is not worth measuring: the arena is mostly free). */
#define RUN_SCAN_WORDS 8
static uint32_t run_around(const uint64_t *bits, uintptr_t first, uintptr_t n, uintptr_t *start) {
    uintptr_t lo = first, hi = first + n;
    for (int words = 0; lo > 0; words++) {
        if (words == RUN_SCAN_WORDS)
            return (uint32_t)GM_ARENA_PAGES;   /* *start is left alone */
        uintptr_t b = (lo - 1) % 64;   /* bits b, b-1, ... of word (lo-1)/64 */
        uint64_t inv = ~(bits[(lo - 1) / 64] << (63 - b));
        uintptr_t ones = inv ? (uintptr_t)__builtin_clzll(inv) : 64;
        ones = ones < b + 1 ? ones : b + 1;
        lo -= ones;
        if (ones < b + 1)
            break;
    }
    for (int words = 0; hi < GM_ARENA_PAGES; words++) {
        if (words == RUN_SCAN_WORDS)
            return (uint32_t)GM_ARENA_PAGES;
        uintptr_t b = hi % 64;         /* bits b, b+1, ... of word hi/64 */
        uint64_t inv = ~(bits[hi / 64] >> b);
        uintptr_t ones = inv ? (uintptr_t)__builtin_ctzll(inv) : 64;
        hi += ones;
        if (ones < 64 - b)
            break;
    }
    *start = lo;
    return (uint32_t)(hi - lo);
}

/* Frees pages [addr, addr + n) without noting the time (see stamp). */
static void put_pages_locked(gm_arena_t *a, uintptr_t addr, uint32_t n) {
    uintptr_t first = gm_page_index(addr);
    bits_set(a->free_bits, first, n);
    bits_set(a->dirty_bits, first, n);
    a->free_pages += n;
    /* The longest run can only have grown to the one this free merged into. */
    uintptr_t start = 0;
    uint32_t run = run_around(a->free_bits, first, n, &start);
    a->max_run_hint = max_u32(a->max_run_hint, run);
    note_free_run_locked(a, start, run);
    fit_push_locked(a, start, run);
    pages_free_backed += n;
    pages_in_use -= n;
}

static void free_pages_locked(gm_arena_t *a, uintptr_t addr, uint32_t n) {
    put_pages_locked(a, addr, n);
    stamp_freed_locked(a, gm_page_index(addr), n);
}

static bool range_is_zero_locked(gm_arena_t *a, uintptr_t page, uint32_t n) {
    return !any_bits(a->dirty_bits, page, n);
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

/* ---- freed single pages ---------------------------------------------------
 * A freed 1-page small span goes on page_stack, span struct and all, instead
 * of back into the bitmaps; the next 1-page span request pops it.  Most size
 * classes have 1-page spans, and the 8 KiB class one object per span, so this
 * is the common trip through the heap: a pop skips the bitmap search and
 * updates, the run merging and the span struct recycling.  A stacked page
 * stays clear in free_bits (its arena's counts treat it as in use) but counts
 * as free and backed in pages_in_use / pages_free_backed, so the statistics
 * and the scavenger see it as free; its pagemap entries are cleared
 * as for any freed span, and its dirty bit stays set (reuse is not fresh).
 * Any other page allocation, in-place growth and every release step first
 * put the stacked pages back into the bitmaps (flush_pages_locked), so first
 * fit for longer runs, coalescing and returning memory are as without the
 * stack; only single pages are reused last-freed first. */
#define PAGE_STACK_MAX 1024   /* 8 MiB; a full flush costs what 1024 frees would */
static gm_span_t *page_stack[PAGE_STACK_MAX];   /* heap lock */
static uint32_t page_stack_len;                  /* heap lock */

static bool push_page_locked(gm_span_t *s) {
    if (s->npages != 1 || s->cls == 0 || page_stack_len == PAGE_STACK_MAX)
        return false;
    gm_pagemap_clear_span(s->arena, s);
    s->state = GM_SPAN_FREE;
    page_stack[page_stack_len++] = s;
    pages_in_use--;
    pages_free_backed++;
    stamp_freed_locked(s->arena, gm_page_index(s->base), 1);
    return true;
}

static gm_span_t *pop_page_locked(uint8_t cls) {
    gm_span_t *s = page_stack[--page_stack_len];
    uintptr_t base = s->base;
    gm_arena_t *a = s->arena;
    memset(s, 0, sizeof *s);
    s->base = base;
    s->npages = 1;
    s->cls = cls;
    s->arena = a;
    s->state = GM_SPAN_SMALL;
    gm_pagemap_set_span(a, s);
    pages_in_use++;
    pages_free_backed--;
    return s;
}

/* Puts every stacked page back into its arena's bitmaps (its chunk's stamp
 * stays the time it was freed). */
static void flush_pages_locked(void) {
    while (page_stack_len > 0) {
        gm_span_t *s = page_stack[--page_stack_len];
        pages_in_use++;   /* put_pages_locked counts it free again */
        pages_free_backed--;
        put_pages_locked(s->arena, s->base, 1);
        s->next = spare_spans;
        spare_spans = s;
    }
}

static gm_span_t *alloc_span_locked(uint32_t npages, uint8_t cls) {
    if (npages == 1 && page_stack_len > 0)
        return pop_page_locked(cls);
    flush_pages_locked();
    gm_arena_t *a;
    uintptr_t addr = alloc_pages_locked(npages, 1, &a);
    if (!addr)
        return NULL;
    gm_span_t *s = new_span_locked(a, addr, npages, cls);
    if (!s)
        free_pages_locked(a, addr, npages);
    else
        bits_set(a->dirty_bits, gm_page_index(addr), npages);
    return s;
}

gm_span_t *gm_mheap_alloc_span(uint32_t npages, uint8_t cls) {
    gm_lock(&heap_lock);
    gm_span_t *s = alloc_span_locked(npages, cls);
    gm_unlock(&heap_lock);
    return s;
}

/* n spans in one trip through the lock: classes with few objects per span
 * need several spans for one transfer, and the lock round trip costs more
 * than taking a span off page_stack. */
uint32_t gm_mheap_alloc_spans(uint32_t npages, uint8_t cls, uint32_t n, gm_span_t **out) {
    uint32_t got = 0;
    gm_lock(&heap_lock);
    while (got < n && (out[got] = alloc_span_locked(npages, cls)) != NULL)
        got++;
    gm_unlock(&heap_lock);
    return got;
}

/* A page run of at least size bytes whose start is aligned to align (a power
 * of two).  s->fresh_zero tells the caller whether the pages are known zero. */
/* Makes the taken pages [addr, addr + npages) of arena a a large block;
 * NULL, the pages free again, when no span struct can be had. */
static gm_span_t *large_span_locked(gm_arena_t *a, uintptr_t addr, uint32_t npages) {
    gm_span_t *s = new_span_locked(a, addr, npages, 0);
    if (!s) {
        free_pages_locked(a, addr, npages);
        return NULL;
    }
    s->large_size = (size_t)npages * PAGE;
    large_bytes += s->large_size;
    large_count++;
    bits_set(a->dirty_bits, gm_page_index(addr), npages);
    return s;
}

gm_span_t *gm_mheap_alloc_large(size_t size, size_t align) {
    uint32_t npages = (uint32_t)((size + PAGE - 1) / PAGE);
    uint32_t align_pages = align > PAGE ? (uint32_t)(align / PAGE) : 1;
    gm_arena_t *a;
    gm_span_t *s = NULL;
    gm_lock(&heap_lock);
    flush_pages_locked();
    uintptr_t addr = alloc_pages_locked(npages, align_pages, &a);
    if (addr)
        s = large_span_locked(a, addr, npages);
    gm_unlock(&heap_lock);
    return s;
}


/* Takes the more pages right after large block s for it (not yet counted in
 * its size); false, changing nothing, when they are not all free pages of its
 * arena or cannot be committed. */
static bool take_pages_after_locked(gm_span_t *s, uint32_t more) {
    gm_arena_t *a = s->arena;
    uintptr_t end = gm_page_index(s->base) + s->npages;
    if (end + more > GM_ARENA_PAGES || s->base + ((uintptr_t)s->npages + more) * PAGE > a->hi ||
        count_bits(a->free_bits, end, more) != more || !take_pages_locked(a, end, more))
        return false;
    bits_set(a->dirty_bits, end, more);
    return true;
}

/* Records large block s as npages long (its pages already taken or given
 * back). */
static void set_large_pages_locked(gm_span_t *s, uint32_t npages) {
    large_bytes -= s->large_size;
    s->npages = npages;
    s->large_size = (size_t)npages * PAGE;
    large_bytes += s->large_size;
}

/* Grows or shrinks large block s in place to npages: the pages after it must
 * be free pages of its arena; a shrink gives the tail back. */
static bool resize_large_locked(gm_span_t *s, uint32_t npages) {
    if (npages > s->npages) {
        flush_pages_locked();
        if (!take_pages_after_locked(s, npages - s->npages))
            return false;
    } else if (npages < s->npages) {
        free_pages_locked(s->arena, s->base + (uintptr_t)npages * PAGE, s->npages - npages);
    }
    set_large_pages_locked(s, npages);
    return true;
}

/* Free pages in the run that starts next to page from and goes down (below
 * from) or up (from and above), counting no more than limit. */
static uint32_t free_pages_next_to(const gm_arena_t *a, uintptr_t from, bool down,
                                   uint32_t limit) {
    uint32_t n = 0;
    for (; n < limit; n++) {
        if (down ? from <= n : from + n >= GM_ARENA_PAGES)
            break;
        uintptr_t page = down ? from - n - 1 : from + n;
        if (!((a->free_bits[page / 64] >> (page % 64)) & 1))
            break;
    }
    return n;
}

uintptr_t gm_mheap_grow_large_down(gm_span_t *s, size_t size) {
    uint32_t npages = (uint32_t)((size + PAGE - 1) / PAGE);
    uintptr_t base = 0;
    gm_lock(&heap_lock);
    gm_arena_t *a = s->arena;
    uintptr_t first = gm_page_index(s->base), end = first + s->npages;
    if (npages > s->npages) {
        uint32_t need = npages - s->npages;
        flush_pages_locked();
        uint32_t below = free_pages_next_to(a, first, true, need);
        uint32_t above = below < need ? free_pages_next_to(a, end, false, need - below) : 0;
        /* The pages above may need committing, which can fail: take them
         * first; those below lie under a committed block. */
        if (below > 0 && below + above == need &&
            (above == 0 || take_pages_after_locked(s, above)) &&
            take_pages_locked(a, first - below, below)) {
            bits_set(a->dirty_bits, first - below, below);
            gm_pagemap_clear_span(a, s);
            s->base -= (uintptr_t)below * PAGE;
            set_large_pages_locked(s, npages);
            gm_pagemap_set_span(a, s);
            base = s->base;
        }
    }
    gm_unlock(&heap_lock);
    return base;
}

/* Resizes large block s in place to at least size bytes (size > 0); false,
 * changing nothing, when the pages after it are not free. */
bool gm_mheap_resize_large(gm_span_t *s, size_t size) {
    uint32_t npages = (uint32_t)((size + PAGE - 1) / PAGE);
    gm_lock(&heap_lock);
    bool ok = resize_large_locked(s, npages);
    gm_unlock(&heap_lock);
    return ok;
}

static void free_span_locked(gm_span_t *s) {
    if (s->state == GM_SPAN_LARGE) {
        large_bytes -= s->large_size;
        large_count--;
    }
    if (push_page_locked(s))
        return;
    s->state = GM_SPAN_FREE;
    gm_pagemap_clear_span(s->arena, s);
    free_pages_locked(s->arena, s->base, s->npages);
    s->next = spare_spans;
    spare_spans = s;
}

void gm_mheap_free_span(gm_span_t *s) {
    gm_lock(&heap_lock);
    free_span_locked(s);
    gm_unlock(&heap_lock);
}

/* Frees a list of spans linked through next, in one trip through the lock. */
void gm_mheap_free_spans(gm_span_t *list) {
    gm_lock(&heap_lock);
    while (list) {
        gm_span_t *s = list;
        list = s->next;
        free_span_locked(s);
    }
    gm_unlock(&heap_lock);
}

/* ---- huge blocks ------------------------------------------------------- */

/* A huge block starts a reservation of whole 64 MiB slots of its own, aligned
 * to a slot (or to a larger alignment asked for), so its descriptor owns
 * every pagemap slot it covers and a reservation can later host a block of any
 * size up to its own.  Per descriptor, under the heap lock:
 *   huge_size    bytes handed out (while cached: those of the last block);
 *   huge_backed  [lo, lo + huge_backed) may have memory behind it;
 *   huge_commit  [lo, lo + huge_commit) is read/write;
 *   huge_dirty   [lo, lo + huge_dirty) may hold non-zero bytes.
 * Invariants: huge_size <= huge_backed <= huge_commit <= hi - lo (huge_size
 * only while handed out); huge_dirty <= huge_commit.
 *
 * Freed reservations are kept for reuse (tcmalloc and glibc keep large blocks
 * too), at most HUGE_CACHE_SLOTS of them.  A request takes the cached
 * reservation that fits it best: the one whose backed bytes cover it with the
 * least to spare, else the one with the most backed bytes (the fewest pages
 * to fault in).  Pages already faulted in stay: the spare backed tail of a
 * block (its slack) is kept for the next block the reservation hosts, for at
 * most HUGE_SLACK_SLOTS blocks at a time, else given back at once.  On
 * bench/large.c (4 blocks of 64 KiB..64 MiB alive) giving the slack back
 * faulted three times the pages and took twice the time.
 *
 * Idle memory (cached reservations' backed bytes and slack) stays under
 * HUGE_IDLE_BYTES: a block freed past it is unmapped.  It counts as free
 * backed memory, so the scavenger gives it back (oldest first) once it has
 * idled for the decay time (GOMALLOC_DECAY_MS), and malloc_trim at once.
 * Slack is given back under the heap lock: the block is in use, and only the
 * lock keeps it from being freed, reused or grown meanwhile. */
#define HUGE_CACHE_SLOTS 8
#define HUGE_SLACK_SLOTS 8
#define HUGE_IDLE_BYTES ((size_t)256 << 20)
static gm_arena_t *huge_cache[HUGE_CACHE_SLOTS];   /* heap lock: freed */
static gm_arena_t *huge_slack[HUGE_SLACK_SLOTS];   /* heap lock: in use, with slack */
static size_t huge_idle_bytes;                      /* heap lock: cached backed + slack */
static uint64_t huge_reserved, huge_committed;      /* heap lock: every descriptor */

static size_t round_up(size_t x, size_t to) { return (x + to - 1) & ~(to - 1); }
static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Counts bytes of huge memory as idle (n > 0) or not idle any more. */
static void note_idle_locked(ptrdiff_t n) {
    huge_idle_bytes += (size_t)n;
    pages_free_backed += (uint64_t)(n / (ptrdiff_t)PAGE);
}

/* Whether cached d serves a request of size bytes better than cached e. */
static bool fits_better(const gm_arena_t *d, const gm_arena_t *e, size_t size) {
    bool d_covers = d->huge_backed >= size, e_covers = e->huge_backed >= size;
    if (d_covers != e_covers)
        return d_covers;
    return d_covers ? d->huge_backed < e->huge_backed : d->huge_backed > e->huge_backed;
}

/* The slot of the cached reservation that best hosts size bytes at an
 * address aligned to align; -1 if none can. */
static int best_cached_huge_locked(size_t size, size_t align) {
    int best = -1;
    for (int i = 0; i < HUGE_CACHE_SLOTS; i++) {
        gm_arena_t *d = huge_cache[i];
        if (!d || d->hi - d->lo < size || (d->lo & (align - 1)))
            continue;
        if (best < 0 || fits_better(d, huge_cache[best], size))
            best = i;
    }
    return best;
}

/* Removes and returns cached reservation best (a slot, or -1: NULL). */
static gm_arena_t *take_cached_huge_locked(int best) {
    if (best < 0)
        return NULL;
    gm_arena_t *d = huge_cache[best];
    huge_cache[best] = NULL;
    note_idle_locked(-(ptrdiff_t)d->huge_backed);
    __atomic_store_n(&d->huge_cached, false, __ATOMIC_RELAXED);
    return d;
}

/* Keeps freed d for reuse if there is room; false if it must be unmapped. */
static bool cache_huge_locked(gm_arena_t *d) {
    if (huge_idle_bytes + d->huge_backed > HUGE_IDLE_BYTES)
        return false;
    for (int i = 0; i < HUGE_CACHE_SLOTS; i++) {
        if (huge_cache[i])
            continue;
        huge_cache[i] = d;
        note_idle_locked((ptrdiff_t)d->huge_backed);
        d->idle_since_ms = gm_os_clock_ms();
        __atomic_store_n(&d->huge_cached, true, __ATOMIC_RELAXED);
        return true;
    }
    return false;
}

/* Lets in-use d keep its slack if there is room; false if it must go. */
static bool keep_slack_locked(gm_arena_t *d) {
    size_t slack = d->huge_backed - d->huge_size;
    if (huge_idle_bytes + slack > HUGE_IDLE_BYTES)
        return false;
    for (int i = 0; i < HUGE_SLACK_SLOTS; i++) {
        if (huge_slack[i])
            continue;
        huge_slack[i] = d;
        note_idle_locked((ptrdiff_t)slack);
        d->idle_since_ms = gm_os_clock_ms();
        return true;
    }
    return false;
}

/* Forgets d's slack (d is being freed, or its slack given back). */
static void forget_slack_locked(gm_arena_t *d) {
    for (int i = 0; i < HUGE_SLACK_SLOTS; i++) {
        if (huge_slack[i] != d)
            continue;
        huge_slack[i] = NULL;
        note_idle_locked(-(ptrdiff_t)(d->huge_backed - d->huge_size));
        return;
    }
}

/* Gives back d's backed bytes above keep. */
static void trim_huge(gm_arena_t *d, size_t keep) {
    if (d->huge_backed <= keep)
        return;
    if (gm_os_release((void *)(d->lo + keep), d->huge_backed - keep))
        d->huge_dirty = min_size(d->huge_dirty, keep);
    d->huge_backed = keep;
}

/* Takes d out of the pagemap and the totals; the caller unmaps it after
 * dropping the lock (unmap_huge). */
static void unregister_huge_locked(gm_arena_t *d) {
    gm_pagemap_unclaim(d->lo, d->hi - d->lo);
    huge_reserved -= d->hi - d->lo;
    huge_committed -= d->huge_commit;
}

static void unmap_huge(gm_arena_t *d) {
    gm_os_unmap((void *)d->lo, d->hi - d->lo);
    gm_fixalloc_free(&arena_fa, d);
}

/* Unmaps every cached reservation now, under the lock: when the OS refuses
 * address space, the cache's is the first to give back (RLIMIT_AS). */
static bool drop_all_cached_huge_locked(void) {
    bool any = false;
    for (int i = 0; i < HUGE_CACHE_SLOTS; i++) {
        gm_arena_t *d = huge_cache[i];
        if (!d)
            continue;
        huge_cache[i] = NULL;
        note_idle_locked(-(ptrdiff_t)d->huge_backed);
        unregister_huge_locked(d);
        unmap_huge(d);
        any = true;
    }
    return any;
}

/* Address space for reserve bytes of whole slots aligned to align; when the
 * OS refuses, the cached reservations are unmapped and it is asked again. */
static void *reserve_slots_locked(size_t reserve, size_t align) {
    void *p = gm_os_reserve(reserve, align);
    if (!p && drop_all_cached_huge_locked())
        p = gm_os_reserve(reserve, align);
    return p;
}

/* Reserves whole slots for a block of size bytes aligned to align and enters
 * them in the pagemap; false when the OS refuses. */
static bool reserve_huge_locked(gm_arena_t *d, size_t size, size_t align) {
    size_t reserve = round_up(size, GM_ARENA_SIZE);
    void *p = reserve_slots_locked(reserve, align > GM_ARENA_SIZE ? align : GM_ARENA_SIZE);
    if (!p)
        return false;
    d->kind = GM_ARENA_HUGE;   /* before the claim: huge slots stay out of the fast map */
    if (!gm_pagemap_claim((uintptr_t)p, reserve, d)) {   /* whole slots: never */
        gm_os_unmap(p, reserve);
        return false;
    }
    d->lo = d->base = d->huge_base = (uintptr_t)p;
    d->hi = d->lo + reserve;
    huge_reserved += reserve;
    return true;
}

/* A new reservation for size bytes, its first size bytes committed. */
static gm_arena_t *map_huge(size_t size, size_t align) {
    gm_arena_t *d = gm_fixalloc_alloc(&arena_fa);
    if (!d)
        return NULL;
    gm_lock(&heap_lock);
    bool ok = reserve_huge_locked(d, size, align);
    gm_unlock(&heap_lock);
    if (!ok) {
        gm_fixalloc_free(&arena_fa, d);
        return NULL;
    }
    return d;
}

/* Commits d up to size bytes (d is ours alone: new, or just taken from the
 * cache); on refusal unmaps it and returns false. */
static bool commit_huge(gm_arena_t *d, size_t size) {
    size_t old = d->huge_commit;
    if (old >= size)
        return true;
    bool ok = gm_os_commit((void *)(d->lo + old), size - old);
    gm_lock(&heap_lock);
    if (ok) {
        d->huge_commit = size;
        huge_committed += size - old;
    } else {
        unregister_huge_locked(d);
    }
    gm_unlock(&heap_lock);
    if (!ok)
        unmap_huge(d);
    return ok;
}

/* Hands out reservation d (just taken from the cache, or NULL: a new one)
 * as a block of size bytes (a multiple of the page); *dirty is how many of
 * its first bytes may be non-zero (0 for a new mapping). */
static void *hand_out_huge(gm_arena_t *d, size_t size, size_t align, size_t *dirty) {
    if (!d && !(d = map_huge(size, align)))
        return NULL;
    if (!commit_huge(d, size))
        return NULL;
    *dirty = min_size(d->huge_dirty, size);
    gm_lock(&heap_lock);
    d->huge_size = size;
    if (d->huge_backed < size)
        d->huge_backed = size;
    if (d->huge_dirty < size)
        d->huge_dirty = size;
    huge_bytes += size;
    huge_count++;
    note_peak_locked();
    bool trim = d->huge_backed > size && !keep_slack_locked(d);
    gm_unlock(&heap_lock);
    if (trim)   /* the tail is not the program's: no lock needed */
        trim_huge(d, size);
    return (void *)d->lo;
}

/* A huge block of at least size bytes aligned to align; *dirty is how many
 * of its first bytes may be non-zero (0 for a new mapping). */
void *gm_mheap_alloc_huge(size_t size, size_t align, size_t *dirty) {
    size = round_up(size, PAGE);
    if (align < PAGE)
        align = PAGE;
    gm_lock(&heap_lock);
    gm_arena_t *d = take_cached_huge_locked(best_cached_huge_locked(size, align));
    gm_unlock(&heap_lock);
    return hand_out_huge(d, size, align, dirty);
}

/* ---- one pool for big blocks -----------------------------------------------
 * Blocks above GM_BIG_MIN (1 MiB, page alignment) may live in arena pages or
 * in a huge reservation, whatever their size: a request goes where it faults
 * in the fewest pages, so the memory a freed block of one kind leaves warm
 * serves the next block of either.  Arena pages are weighed by the fewest
 * faults of any free run (see "fewest faults"), a cached reservation by the
 * bytes it would still have to fault in.  A huge request (GM_HUGE_THRESHOLD
 * and up) takes arena pages only when they fault in fewer pages than the
 * best reservation would, cached or new: a block that size pins much of an
 * arena, and in a reservation of its own it can grow by remapping.  A large
 * one takes arena pages unless a cached reservation faults in fewer, and
 * grows the heap when neither has room.  bench/largechurn (buffers replaced
 * at random) faulted in 119,600 pages with 5-25 MiB buffers and 103,600 with
 * 8-24 MiB while the two pools did not trade and the threshold was 16 MiB,
 * 109,900 and 87,200 now; its buffers need 86,500 and 75,500 (tcmalloc:
 * 113,100 and 95,300). */

/* Pages a cached reservation hosting size bytes still has to fault in. */
static uint32_t cached_faults(const gm_arena_t *d, size_t size) {
    return d->huge_backed >= size ? 0 : (uint32_t)((size - d->huge_backed) / PAGE);
}

void *gm_mheap_alloc_big(size_t size, size_t *dirty) {
    size = round_up(size, PAGE);
    uint32_t n = size <= GM_ARENA_SIZE ? (uint32_t)(size / PAGE) : UINT32_MAX;
    bool huge = size >= GM_HUGE_THRESHOLD;
    struct placement w = {NULL, 0, UINT32_MAX, 0};
    gm_lock(&heap_lock);
    flush_pages_locked();
    if (n != UINT32_MAX)
        fewest_faults_locked(n, &w);
    int c = best_cached_huge_locked(size, PAGE);
    uint32_t arena_faults = w.arena ? w.faults : UINT32_MAX;
    uint32_t reuse_faults = c >= 0 ? cached_faults(huge_cache[c], size) : UINT32_MAX;
    bool arena = huge ? arena_faults < reuse_faults && arena_faults < n
                      : arena_faults <= reuse_faults || reuse_faults >= n;
    gm_span_t *s = NULL;
    gm_arena_t *a;
    if (arena && w.arena) {
        uintptr_t addr = take_placement_locked(&w, n, &a);
        s = addr ? large_span_locked(a, addr, n) : NULL;
    } else if (arena) {   /* no free run: the heap grows */
        uintptr_t addr = alloc_pages_locked(n, 1, &a);
        s = addr ? large_span_locked(a, addr, n) : NULL;
    }
    gm_arena_t *d = arena ? NULL : take_cached_huge_locked(c);
    gm_unlock(&heap_lock);
    if (!arena)
        return hand_out_huge(d, size, PAGE, dirty);
    if (!s)
        return NULL;
    *dirty = s->fresh_zero ? 0 : size;
    return (void *)s->base;
}

/* Resizes huge block d in place to size bytes (at least GM_HUGE_THRESHOLD),
 * within its reservation: growing commits what is not yet read/write, a
 * shrink leaves the tail as slack.  False, changing nothing, when size does
 * not fit the reservation or the OS refuses the commit.  Under the lock
 * throughout, since the scavenger may be giving the slack back. */
bool gm_mheap_resize_huge(gm_arena_t *d, size_t size) {
    size = round_up(size, PAGE);
    if (size > d->hi - d->lo)
        return false;
    gm_lock(&heap_lock);
    bool ok = d->huge_commit >= size ||
              gm_os_commit((void *)(d->lo + d->huge_commit), size - d->huge_commit);
    if (ok) {
        forget_slack_locked(d);
        if (d->huge_commit < size) {
            huge_committed += size - d->huge_commit;
            d->huge_commit = size;
        }
        huge_bytes = huge_bytes - d->huge_size + size;
        note_peak_locked();
        d->huge_size = size;
        if (d->huge_backed < size)
            d->huge_backed = size;
        if (d->huge_dirty < size)
            d->huge_dirty = size;
        if (d->huge_backed > size && !keep_slack_locked(d))
            trim_huge(d, size);
    }
    gm_unlock(&heap_lock);
    return ok;
}

/* A huge block that outgrows its reservation moves to a new one: reserved,
 * entered in the pagemap and committed beyond the block's committed bytes
 * first, then one mremap moves those bytes there.  The kernel moves page
 * tables (whole ones, as both ends are slot-aligned): nothing is copied, no
 * page is faulted in twice, and no old copy stays resident in the cache.
 * Growing a buffer by doubling to 1 GiB took twice glibc's time, and growing
 * one by 1 MiB steps to 256 MiB peaked at 2.3x its RSS, while every move
 * copied.  Under the heap lock throughout: the move unmaps the old range
 * while its slots still name d, and a reservation made there meanwhile could
 * not be claimed.  A failed move may have unmapped the start of the new
 * range (see gm_os_move); that part is unmapped again only if it can be
 * reserved again, else left alone (address space lost, nobody's mapping hurt).
 * *refused: the OS refused the new range (a copy would need it too). */
void *gm_mheap_move_huge(gm_arena_t *d, size_t size, bool *refused) {
    *refused = true;
    if (size > PTRDIFF_MAX - GM_ARENA_SIZE)
        return NULL;
    size = round_up(size, PAGE);
    size_t reserve = round_up(size, GM_ARENA_SIZE);
    gm_lock(&heap_lock);
    uintptr_t old_lo = d->lo, old_hi = d->hi;
    size_t moved = d->huge_commit;
    char *to = reserve_slots_locked(reserve, GM_ARENA_SIZE);
    bool claimed = to && gm_pagemap_claim((uintptr_t)to, reserve, d);
    bool ok = claimed && gm_os_commit(to + moved, size - moved);
    *refused = !ok;
    gm_move_result_t r = ok ? gm_os_move((void *)old_lo, moved, to) : GM_MOVE_FAILED;
    if (r != GM_MOVE_DONE) {
        if (claimed)
            gm_pagemap_unclaim((uintptr_t)to, reserve);
        if (to && r == GM_MOVE_LOST)   /* keep out of what may be someone's now */
            gm_os_unmap(to + moved, reserve - moved);
        else if (to)
            gm_os_unmap(to, reserve);
        gm_unlock(&heap_lock);
        return NULL;
    }
    if (old_hi - old_lo > moved)
        gm_os_unmap((void *)(old_lo + moved), old_hi - old_lo - moved);
    gm_pagemap_unclaim(old_lo, old_hi - old_lo);
    forget_slack_locked(d);
    huge_reserved += reserve - (old_hi - old_lo);
    huge_committed += size - moved;
    huge_bytes = huge_bytes - d->huge_size + size;
    note_peak_locked();
    d->lo = d->base = d->huge_base = (uintptr_t)to;
    d->hi = d->lo + reserve;
    d->huge_size = d->huge_backed = d->huge_dirty = d->huge_commit = size;
    gm_unlock(&heap_lock);
    return to;
}

void gm_mheap_free_huge(gm_arena_t *d) {
    gm_lock(&heap_lock);
    forget_slack_locked(d);
    huge_bytes -= d->huge_size;
    huge_count--;
    bool kept = cache_huge_locked(d);
    if (!kept)
        unregister_huge_locked(d);
    gm_unlock(&heap_lock);
    if (!kept)
        unmap_huge(d);
}

/* The slot of the table entry idle longest, if idle for idle_ms; -1 if
 * none. */
static int idlest_locked(gm_arena_t *const *table, int n, uint32_t idle_ms) {
    int oldest = -1;
    uint32_t now = gm_os_clock_ms(), age = 0;
    for (int i = 0; i < n; i++) {
        if (table[i] && (oldest < 0 || now - table[i]->idle_since_ms > age)) {
            oldest = i;
            age = now - table[i]->idle_since_ms;
        }
    }
    return oldest >= 0 && age >= idle_ms ? oldest : -1;
}

/* Gives back idle huge memory: unmaps the cached reservation idle longest,
 * or else the slack of the block idle longest; returns the bytes. */
static size_t drop_idle_huge(uint32_t idle_ms) {
    gm_lock(&heap_lock);
    int i = idlest_locked(huge_cache, HUGE_CACHE_SLOTS, idle_ms);
    gm_arena_t *d = NULL;
    size_t dropped = 0;
    if (i >= 0) {
        d = huge_cache[i];
        huge_cache[i] = NULL;
        dropped = d->huge_backed;
        note_idle_locked(-(ptrdiff_t)dropped);
        unregister_huge_locked(d);
    } else if ((i = idlest_locked(huge_slack, HUGE_SLACK_SLOTS, idle_ms)) >= 0) {
        gm_arena_t *s = huge_slack[i];
        dropped = s->huge_backed - s->huge_size;
        forget_slack_locked(s);
        trim_huge(s, s->huge_size);
    }
    gm_unlock(&heap_lock);
    if (d)
        unmap_huge(d);
    return dropped;
}

/* ---- returning memory -------------------------------------------------- */

#define CHUNK_PAGES 256                       /* 2 MiB: one huge page */
#define DENSE_IN_USE (CHUNK_PAGES * 31 / 32)  /* 96.9% */

/* The first set (or, !set, clear) bit of a chunk's mask at or after bit i;
 * CHUNK_PAGES if none. */
static uint32_t chunk_next_bit(const uint64_t m[4], uint32_t i, bool set) {
    while (i < CHUNK_PAGES) {
        uint32_t shift = i % 64;
        uint64_t w = (set ? m[i / 64] : ~m[i / 64]) >> shift;
        if (w)
            return i + (uint32_t)__builtin_ctzll(w);
        i += 64 - shift;
    }
    return CHUNK_PAGES;
}

/* Backed free pages of chunk c of arena a, as a mask per bitmap word, in
 * runs of at least min_run pages (counted within the chunk). */
static uint32_t chunk_backed_free(const gm_arena_t *a, uint32_t c, uint64_t masks[4],
                                  uint32_t idle_ms, uint32_t min_run) {
    uint32_t n = 0, now = gm_os_clock_ms();
    for (uint32_t k = 0; k < 4; k++) {
        masks[k] = a->free_bits[c * 4 + k] & ~a->released_bits[c * 4 + k];
        for (uint64_t m = idle_ms ? masks[k] : 0; m; m &= m - 1) {
            uint32_t page = (c * 4 + k) * 64 + (uint32_t)__builtin_ctzll(m);
            if (now - a->page_freed_ms[page] < idle_ms)   /* freed lately */
                masks[k] &= ~(m & -m);
        }
        n += popcount_masked(masks[k], ~(uint64_t)0);
    }
    if (min_run <= 1 || n == 0)
        return n;
    n = 0;
    for (uint32_t i = chunk_next_bit(masks, 0, true); i < CHUNK_PAGES;) {
        uint32_t end = chunk_next_bit(masks, i, false);
        if (end - i < min_run)
            bits_clear(masks, i, end - i);
        else
            n += end - i;
        i = chunk_next_bit(masks, end, true);
    }
    return n;
}

static uint32_t chunk_in_use(const gm_arena_t *a, uint32_t c) {
    uint32_t free = 0;
    for (uint32_t k = 0; k < 4; k++)
        free += (uint32_t)__builtin_popcountll(a->free_bits[c * 4 + k]);
    return CHUNK_PAGES - free;
}

/* The highest chunk with backed free pages in runs of min_run or more (not
 * dense unless force): its arena, index and those pages' masks; returns how
 * many pages they are, 0 if there is no such chunk. */
static uint32_t pick_chunk_locked(bool force, uint32_t idle_ms, uint32_t min_run,
                                  gm_arena_t **out, uint32_t *chunk, uint64_t masks[4]) {
    uint32_t found = 0;
    for (gm_arena_t *a = arenas; a; a = a->next) {
        if (a->free_pages == a->released_pages)
            continue;
        for (int c = GM_ARENA_BITMAP_WORDS / 4 - 1; c >= 0; c--) {
            uint64_t m[4];
            uint32_t n = chunk_backed_free(a, (uint32_t)c, m, force ? 0 : idle_ms, min_run);
            if (!n || (!force && chunk_in_use(a, (uint32_t)c) >= DENSE_IN_USE))
                continue;
            *out = a;
            *chunk = (uint32_t)c;
            memcpy(masks, m, sizeof m);
            found = n;   /* arenas ascend: a later find is higher */
            break;
        }
    }
    return found;
}

/* The pages a release step has taken out of the free set while it gives
 * them back, outside the lock (n == 0: none).  Heap lock. */
static struct {
    gm_arena_t *arena;
    uint32_t chunk, n;
    uint64_t masks[4];
} in_flight;

/* Gives back the backed free pages of one chunk (those in runs of min_run
 * pages or more); returns the bytes released, 0 when there is nothing
 * (eligible) left. */
size_t gm_mheap_release_step(bool force, uint32_t idle_ms, uint32_t min_run) {
    size_t dropped = drop_idle_huge(force ? 0 : idle_ms);
    if (dropped)
        return dropped;
    gm_arena_t *a = NULL;
    uint32_t chunk;
    uint64_t masks[4];
    gm_lock(&heap_lock);
    flush_pages_locked();
    uint32_t n = pick_chunk_locked(force, idle_ms, min_run, &a, &chunk, masks);
    if (!n) {
        gm_unlock(&heap_lock);
        return 0;
    }
    for (uint32_t k = 0; k < 4; k++)
        a->free_bits[chunk * 4 + k] &= ~masks[k];   /* nobody may take them now */
    a->free_pages -= n;
    pages_free_backed -= n;
    in_flight.arena = a;
    in_flight.chunk = chunk;
    in_flight.n = n;
    memcpy(in_flight.masks, masks, sizeof in_flight.masks);
    gm_unlock(&heap_lock);

    uintptr_t first = (uintptr_t)chunk * CHUNK_PAGES;
    bool zeroed = true;
    for (uint32_t i = chunk_next_bit(masks, 0, true); i < CHUNK_PAGES;) {
        uint32_t end = chunk_next_bit(masks, i, false);
        zeroed &= gm_os_release((void *)(a->base + (first + i) * PAGE), (size_t)(end - i) * PAGE);
        i = chunk_next_bit(masks, end, true);
    }

    gm_lock(&heap_lock);
    for (uint32_t k = 0; k < 4; k++) {
        a->free_bits[chunk * 4 + k] |= masks[k];
        a->released_bits[chunk * 4 + k] |= masks[k];
        if (zeroed)
            a->dirty_bits[chunk * 4 + k] &= ~masks[k];
    }
    a->free_pages += n;
    a->released_pages += n;
    note_free_run_locked(a, 0, (uint32_t)GM_ARENA_PAGES);
    a->max_run_hint = (uint32_t)GM_ARENA_PAGES;
    in_flight.n = 0;
    gm_unlock(&heap_lock);
    return (size_t)n * PAGE;
}

/* Whether madvise ran on them or not, the pages hold no data of the
 * program's: free and backed (and dirty, as they were) is true either way. */
void gm_mheap_after_fork_child(void) {
    gm_lock(&heap_lock);
    gm_arena_t *a = in_flight.arena;
    if (in_flight.n) {
        for (uint32_t k = 0; k < 4; k++)
            a->free_bits[in_flight.chunk * 4 + k] |= in_flight.masks[k];
        a->free_pages += in_flight.n;
        pages_free_backed += in_flight.n;
        note_free_run_locked(a, 0, (uint32_t)GM_ARENA_PAGES);
        a->max_run_hint = (uint32_t)GM_ARENA_PAGES;
        in_flight.n = 0;
    }
    gm_unlock(&heap_lock);
}

size_t gm_mheap_release_all(void) {
    size_t total = 0, step;
    while ((step = gm_mheap_release_step(true, 0, 1)) > 0)
        total += step;
    return total;
}

void gm_mheap_usage(uint64_t *in_use, uint64_t *free_backed) {
    gm_lock(&heap_lock);
    *in_use = (pages_in_use * PAGE) + huge_bytes;
    *free_backed = pages_free_backed * PAGE;
    gm_unlock(&heap_lock);
}

void gm_mheap_stats(struct gm_heap_stats *out) {
    memset(out, 0, sizeof *out);
    gm_lock(&heap_lock);
    for (gm_arena_t *a = arenas; a; a = a->next) {
        out->committed += a->commit_end - a->lo;
        out->released += (uint64_t)a->released_pages * PAGE - (a->hi - a->commit_end);
    }
    out->free = pages_free_backed * PAGE;
    out->in_use = pages_in_use * PAGE + huge_bytes;
    out->released += huge_committed - huge_bytes - huge_idle_bytes;
    out->mapped = reserved_bytes + huge_reserved;
    out->committed += huge_committed;
    out->huge = huge_bytes;
    out->large_blocks = large_count + huge_count;
    out->large_bytes = large_bytes + huge_bytes;
    out->huge_blocks = huge_count;
    out->peak_in_use = peak_in_use;
    gm_unlock(&heap_lock);
}

void gm_mheap_visit(void (*fn)(const gm_arena_t *a, void *arg), void *arg) {
    gm_lock(&heap_lock);
    for (gm_arena_t *a = arenas; a; a = a->next)
        fn(a, arg);
    gm_unlock(&heap_lock);
}

gm_lock_t *gm_mheap_lockp(void) { return &heap_lock; }
