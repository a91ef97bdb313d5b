/*
 * mheap.h — the page heap's inside: what its own files call in one another
 * and no other layer calls.  mheap.c takes, frees and counts pages;
 * pageplace.c chooses them; release.c gives them back to the OS; heapcheck.c
 * checks the arenas against the counts (GM_CHECKS builds).  The calls the
 * other layers make into the page heap are in internal.h ("mheap.c",
 * "release.c").  resize.c resizes large blocks in place with the primitives
 * below.  Only those five files include this header.
 *
 * The primitives mheap.c exports for release.c keep every count in mheap.c:
 * release.c decides what goes back and calls the OS, as pageplace.c decides
 * where pages come from.  Pages withdrawn from the free set for a release
 * step are in flight until put back: out of the free bits and counted
 * neither free nor in use, which heapcheck.c knows.
 *
 * Locking: every function here named _locked runs with the heap lock
 * (gm_heap_lock, huge.c) held and leaves it held; gm_mheap_unlock drops it.
 * Under it, only gm_mheap_unmap_arena_locked takes another lock (fixalloc's,
 * next in the lock order).
 */
#ifndef GM_MHEAP_H
#define GM_MHEAP_H

#include "internal.h"

#pragma GCC visibility push(hidden)

/* ---- pageplace.c ----------------------------------------------------- */
/* Close fits: runs of GM_FIT_MIN_PAGES (the shortest large block: 32 KiB <
 * size) to GM_FIT_MAX_PAGES (1 MiB) recorded as freed, by length; a request
 * for n pages looks for one of n to n + gm_fit_slack(n) pages. */
#define GM_FIT_MIN_PAGES 5
#define GM_FIT_MAX_PAGES 128
static inline uint32_t gm_fit_slack(uint32_t n) { return 2 + n / 8; }
void gm_place_fit_push_locked(gm_arena_t *a, uintptr_t start, uint32_t length);
/* The first page of the most recent recorded run of length pages that is
 * still free (its arena to *out), dropping stale records; -1 if none. */
long gm_place_fit_pop_locked(uint32_t length, gm_arena_t **out);
/* Drops every close-fit hint (an arena they may name is going away). */
void gm_place_forget_fits_locked(void);
/* Fewest faults: n free pages of the arenas (a list linked through next) that
 * fault in the fewest pages, into *best; best->arena stays NULL if no arena
 * has a free run of n pages. */
struct gm_placement {
    gm_arena_t *arena;
    uint32_t start, faults, run;
};
void gm_place_fewest_faults_locked(gm_arena_t *arenas, uint32_t n, struct gm_placement *best);
/* One pool for big blocks: whether a block of n pages (huge: at or above
 * GM_HUGE_THRESHOLD) goes to arena pages that fault in arena_faults pages
 * rather than a cached reservation that faults in reuse_faults (UINT32_MAX:
 * none of either). */
bool gm_place_big_in_arena(bool huge, uint32_t n, uint32_t arena_faults, uint32_t reuse_faults);
/* Release: the highest chunk with backed free pages idle for idle_ms, in
 * runs of min_run or more (not dense unless force): its arena, index and
 * those pages' masks; returns how many pages they are, 0 if none. */
uint32_t gm_place_release_chunk_locked(gm_arena_t *arenas, bool force, uint32_t idle_ms,
                                       uint32_t min_run, gm_arena_t **out, uint32_t *chunk,
                                       uint64_t masks[4]);

/* ---- heapcheck.c (GM_CHECKS) ----------------------------------------- */
#if GM_CHECKS
/* The arenas' invariants and the heap's page totals against their bits:
 * pages in use, free and backed, on the single-page stack, in flight in a
 * release step. */
void gm_heapcheck_locked(const gm_arena_t *arenas, uint64_t pages_in_use,
                         uint64_t pages_free_backed, uint32_t stacked_pages, uint32_t in_flight);
#endif

/* ---- mheap.c: the primitives release.c and resize.c work with ---------- */
/* Takes n free pages of a from page first (committing them if needed);
 * false, nothing changed, when the commit fails. */
bool gm_mheap_take_pages_locked(gm_arena_t *a, uintptr_t first, uint32_t n);
/* Gives n pages of a from addr back to the free set. */
void gm_mheap_free_pages_locked(gm_arena_t *a, uintptr_t addr, uint32_t n);
/* Records large block s as npages long (its pages already taken or given
 * back), and the heap's large-block bytes with it. */
void gm_mheap_set_large_pages_locked(gm_span_t *s, uint32_t npages);
/* The head of the list of heap arenas (address order, linked through next),
 * to walk, and to unlink from through gm_mheap_unmap_arena_locked. */
gm_arena_t **gm_mheap_arenas_locked(void);
/* Puts the freed small spans waiting on the span stacks back into their
 * arenas' bitmaps (mheap.c, "freed small spans"), so that the bitmaps show
 * every free page. */
void gm_mheap_flush_pages_locked(void);
/* Drops the heap lock, which the caller holds; a GM_CHECKS build first
 * checks the heap (heapcheck.c). */
void gm_mheap_unlock(void);
/* Pages of one 2 MiB chunk of arena: page chunk * GM_CHUNK_PAGES + i for each
 * bit i set in masks, n in all. */
struct gm_chunk_pages {
    gm_arena_t *arena;
    uint32_t chunk, n;
    uint64_t masks[4];
};
/* Takes the free, backed pages c out of the free set, so that nobody takes
 * them while a release step gives them back outside the lock; they are in
 * flight until gm_mheap_put_back_locked. */
void gm_mheap_withdraw_locked(const struct gm_chunk_pages *c);
/* Puts the withdrawn pages c back into the free set: released, and clean
 * when zeroed (MADV_DONTNEED dropped them), after a release step; else
 * backed as they were (a fork child, where the step never ends). */
void gm_mheap_put_back_locked(const struct gm_chunk_pages *c, bool released, bool zeroed);
/* Takes the arena at *link, every page of it free and none in flight, out
 * of the heap and unmaps it (see mheap.c for the free fast path that may be
 * reading its pagemap slot); returns its size.  Takes the fixalloc lock. */
size_t gm_mheap_unmap_arena_locked(gm_arena_t **link);

#pragma GCC visibility pop

#endif /* GM_MHEAP_H */
