/*
 * pageplace.c — the page heap's choices of pages: which recently freed run a
 * request reuses (close fits), which free run a block above 1 MiB takes
 * (fewest faults), and which chunk a release step gives back.  Each is a
 * policy over the arenas' bitmaps (pagebits.h); mheap.c takes or releases
 * the pages chosen, and does the accounting.
 *
 * Close fits: a free records the run it merged into, when that run is
 * GM_FIT_MIN_PAGES to GM_FIT_MAX_PAGES long, on a stack for its length; a
 * request for n pages first takes the most recent recorded run of n to
 * n + gm_fit_slack(n) pages that is still free, as tcmalloc's page heap takes
 * from its free lists by length.  First fit alone puts a block at the lowest
 * hole that holds it, splitting it, so the block's first and last pages are
 * often ones that no block has touched before: bench/churn 4 (random sizes up
 * to 1 MiB, blocks written at both ends) faulted in 49,000 pages and peaked
 * at 175 MiB, 30,000-33,000 and 98-112 MiB this way (tcmalloc 27,000 and
 * 104 MiB; exact lengths only, 8 deep: 37,000 and 130 MiB).  The slack grows
 * with n (2 pages and an eighth): a freed run has usually merged with a
 * neighbour, and a block of a different size then still starts on the first
 * page its predecessor touched.  Once freed memory stayed backed for the
 * scavenger's decay time (scavenger.c), a slack of 2 reused so few of those
 * pages that bench/churn 1 peaked at 88 MiB (21,700 faults); with an eighth,
 * 61 MiB (15,300).  An entry is a hint: its run may since have been taken,
 * split or merged into a longer one, so it is checked against free_bits when
 * popped, and a full stack overwrites its oldest entry.
 *
 * Fewest faults: a large block above GM_FIT_MAX_PAGES goes where it faults
 * in the fewest pages: of every free run that holds it, placed at either end,
 * the window with the fewest released (or never committed) pages, and among
 * equals the shortest run, as tcmalloc's page heap takes the best fit among
 * its free spans.  First fit would put it at the lowest hole long enough,
 * which may reach into pages never touched or given back and spread the heap,
 * while a backed hole of the right size waits higher up: bench/largechurn
 * (buffers of 1-4 MiB replaced at random; its buffers need 15,100 pages)
 * faulted in 32,400 pages with first fit and 20,000 this way (tcmalloc
 * 21,600); the best fit among wholly backed runs alone, 19,500 there, but
 * 125,800 against 119,600 with 5-25 MiB.
 *
 * One pool for big blocks: gm_place_big_in_arena.
 *
 * Release: the highest 2 MiB chunk with backed free pages that idled for the
 * decay time, in runs of at least the caller's length; chunks at least 96.9%
 * in use are left alone unless asked (their huge page is worth more than a
 * few free pages).  See release.c.
 *
 * Locking: everything here runs under the heap lock (gm_heap_lock), which
 * guards the fit stacks and the arenas it reads.
 */
#include <string.h>

#include "internal.h"
#include "mheap.h"
#include "pagebits.h"

/* ---- close fits ---------------------------------------------------------- */

#define FIT_DEPTH 16
typedef struct {
    gm_arena_t *arena[FIT_DEPTH];
    uint32_t start[FIT_DEPTH];
    uint32_t top, len;
} fit_stack_t;
static fit_stack_t fit_runs[GM_FIT_MAX_PAGES + 1];   /* heap lock */

void gm_place_fit_push_locked(gm_arena_t *a, uintptr_t start, uint32_t length) {
    if (length < GM_FIT_MIN_PAGES || length > GM_FIT_MAX_PAGES)
        return;
    fit_stack_t *f = &fit_runs[length];
    f->top = (f->top + 1) % FIT_DEPTH;
    f->arena[f->top] = a;
    f->start[f->top] = (uint32_t)start;
    if (f->len < FIT_DEPTH)
        f->len++;
}

long gm_place_fit_pop_locked(uint32_t length, gm_arena_t **out) {
    fit_stack_t *f = &fit_runs[length];
    while (f->len > 0) {
        gm_arena_t *a = f->arena[f->top];
        uint32_t start = f->start[f->top];
        f->top = (f->top + FIT_DEPTH - 1) % FIT_DEPTH;
        f->len--;
        if (gm_bits_count(a->free_bits, start, length) != length)
            continue;   /* taken or split since */
        *out = a;
        return start;
    }
    return -1;
}

void gm_place_forget_fits_locked(void) { memset(fit_runs, 0, sizeof fit_runs); }

void gm_place_forget_fits(void) {
    gm_lock(&gm_heap_lock);
    gm_place_forget_fits_locked();
    gm_unlock(&gm_heap_lock);
}

/* ---- fewest faults ------------------------------------------------------- */

/* Considers the n-page windows at both ends of the free run [start, end) of
 * arena a for *best. */
static void consider_run(gm_arena_t *a, uint32_t start, uint32_t end, uint32_t n,
                         struct gm_placement *best) {
    uint32_t at[2] = {start, end - n};
    for (int k = 0; k < 2; k++) {
        uint32_t faults = gm_bits_count(a->released_bits, at[k], n);
        if (!best->arena || faults < best->faults ||
            (faults == best->faults && end - start < best->run)) {
            best->arena = a;
            best->start = at[k];
            best->faults = faults;
            best->run = end - start;
        }
    }
}

void gm_place_fewest_faults_locked(gm_arena_t *arenas, uint32_t n, struct gm_placement *best_out) {
    struct gm_placement best = {NULL, 0, 0, 0};
    for (gm_arena_t *a = arenas; a; a = a->next) {
        if (a->free_pages < n || a->max_run_hint < n)
            continue;
        for (uint32_t i = gm_bits_next(a->free_bits, GM_ARENA_PAGES, 0, true); i < GM_ARENA_PAGES;) {
            uint32_t end = gm_bits_next(a->free_bits, GM_ARENA_PAGES, i, false);
            if (end - i >= n)
                consider_run(a, i, end, n, &best);
            if (best.arena && best.faults == 0 && best.run == n)
                break;
            i = gm_bits_next(a->free_bits, GM_ARENA_PAGES, end, true);
        }
    }
    *best_out = best;
}

/* ---- one pool for big blocks ----------------------------------------------
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

bool gm_place_big_in_arena(bool huge, uint32_t n, uint32_t arena_faults, uint32_t reuse_faults) {
    return huge ? arena_faults < reuse_faults && arena_faults < n
                : arena_faults <= reuse_faults || reuse_faults >= n;
}

/* ---- release ------------------------------------------------------------- */

#define DENSE_IN_USE (GM_CHUNK_PAGES * 31 / 32)  /* 96.9% */

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
        n += gm_popcount_masked(masks[k], ~(uint64_t)0);
    }
    if (min_run <= 1 || n == 0)
        return n;
    n = 0;
    for (uint32_t i = gm_bits_next(masks, GM_CHUNK_PAGES, 0, true); i < GM_CHUNK_PAGES;) {
        uint32_t end = gm_bits_next(masks, GM_CHUNK_PAGES, i, false);
        if (end - i < min_run)
            gm_bits_clear(masks, i, end - i);
        else
            n += end - i;
        i = gm_bits_next(masks, GM_CHUNK_PAGES, end, true);
    }
    return n;
}

static uint32_t chunk_in_use(const gm_arena_t *a, uint32_t c) {
    uint32_t free = 0;
    for (uint32_t k = 0; k < 4; k++)
        free += (uint32_t)__builtin_popcountll(a->free_bits[c * 4 + k]);
    return GM_CHUNK_PAGES - free;
}

uint32_t gm_place_release_chunk_locked(gm_arena_t *arenas, bool force, uint32_t idle_ms,
                                       uint32_t min_run, gm_arena_t **out, uint32_t *chunk,
                                       uint64_t masks[4]) {
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

