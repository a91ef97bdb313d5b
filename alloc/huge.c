/*
 * huge.c — huge blocks: a reservation of whole 64 MiB slots per block, with
 * a small descriptor of its own (gm_huge_t), and the cache of freed ones.
 *
 * A block of GM_HUGE_THRESHOLD (32 MiB) or more, or one the mheap places
 * here because it faults in fewer pages than arena pages would (mheap.c, "one
 * pool for big blocks"), starts a reservation of its own, aligned to a slot
 * (or to a larger alignment asked for): a block that size would pin much of
 * an arena against fragmentation.  Its descriptor is entered in the pagemap
 * for every slot the reservation covers (tagged as huge, see pagemap.c), so
 * free() finds it with one lock-free load; a reservation can later host a
 * block of any size up to its own.  A huge block that outgrows its
 * reservation is remapped to a larger one, its pages moved rather than
 * copied.  Per descriptor, under the heap lock:
 *   size    bytes handed out (while cached: those of the last block);
 *   backed  [lo, lo + backed) may have memory behind it;
 *   commit  [lo, lo + commit) is read/write;
 *   dirty   [lo, lo + dirty) may hold non-zero bytes.
 * Invariants (checked each time the heap lock is dropped in a GM_CHECKS
 * build, gm_huge_check_locked): size <= backed <= commit <= hi - lo (size
 * only while handed out); dirty <= commit; the idle bytes are those of the
 * cache and slack tables.
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
 * backed memory (the mheap adds it to its own in gm_mheap_usage), so the
 * scavenger gives it back (oldest first, gm_huge_release_idle, the first
 * thing a release step does) once it has idled for the decay time
 * (GOMALLOC_DECAY_MS), and malloc_trim at once.  Slack is given back under
 * the heap lock: the block is in use, and only the lock keeps it from being
 * freed, reused or grown meanwhile.
 *
 * Lock-free reads: free(), malloc_usable_size() and realloc() of a huge block
 * read its pagemap slot (acquire) and then its descriptor's lo, size and
 * cached without the lock.  Only the block's owner frees, resizes or moves
 * it, so lo and size do not change under its feet; cached is written with
 * atomic stores; descriptors come from fixalloc, whose memory is never
 * unmapped, so even a stale pointer (a double free racing a reuse) reads a
 * descriptor, never a hole.
 *
 * Locking: the heap lock (gm_heap_lock, defined here, in the lower of the two
 * files that take it, and taken by mheap.c for everything else) guards every
 * descriptor's fields, the cache and slack tables and the totals below.  A
 * descriptor in no table (being handed out, not yet returned) is its
 * thread's alone.  OS calls that may be slow (mmap, munmap, madvise of a
 * block's tail) run outside the lock where nothing else can reach the
 * memory.
 */
#include <string.h>

#include "internal.h"

#define PAGE GM_PAGE_SIZE

gm_lock_t gm_heap_lock = GM_LOCK_INIT;
static gm_fixalloc_t huge_fa = {.size = sizeof(gm_huge_t)};
static uint64_t huge_bytes, huge_count;     /* heap lock: blocks handed out */
/* Heap lock: bytes of arena pages in spans and blocks (mheap.c reports every
 * change), and the most that and huge_bytes together ever were: the peak
 * of memory in use, kept here because this file owns the heap lock and
 * both counts change under it. */
static uint64_t arena_in_use, peak_in_use;

static void note_peak_locked(void) {
    if (arena_in_use + huge_bytes > peak_in_use)
        peak_in_use = arena_in_use + huge_bytes;
}

void gm_heap_note_in_use_locked(int64_t delta, bool may_peak) {
    arena_in_use += (uint64_t)delta;
    if (may_peak)
        note_peak_locked();
}

/* Drops the heap lock; a GM_CHECKS build first checks the huge blocks. */
static void unlock_heap(void);

#define HUGE_CACHE_SLOTS 8
#define HUGE_SLACK_SLOTS 8
#define HUGE_IDLE_BYTES ((size_t)256 << 20)
static gm_huge_t *huge_cache[HUGE_CACHE_SLOTS];   /* heap lock: freed */
static gm_huge_t *huge_slack[HUGE_SLACK_SLOTS];   /* heap lock: in use, with slack */
static size_t huge_idle_bytes;                      /* heap lock: cached backed + slack */
static uint64_t huge_reserved, huge_committed;      /* heap lock: every descriptor */

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Counts bytes of huge memory as idle (n > 0) or not idle any more. */
static void note_idle_locked(ptrdiff_t n) {
    huge_idle_bytes += (size_t)n;
}

/* Whether cached d serves a request of size bytes better than cached e. */
static bool fits_better(const gm_huge_t *d, const gm_huge_t *e, size_t size) {
    bool d_covers = d->backed >= size, e_covers = e->backed >= size;
    if (d_covers != e_covers)
        return d_covers;
    return d_covers ? d->backed < e->backed : d->backed > e->backed;
}

/* The slot of the cached reservation that best hosts size bytes at an
 * address aligned to align; -1 if none can. */
static int best_cached_slot_locked(size_t size, size_t align) {
    int best = -1;
    for (int i = 0; i < HUGE_CACHE_SLOTS; i++) {
        gm_huge_t *d = huge_cache[i];
        if (!d || d->hi - d->lo < size || (d->lo & (align - 1)))
            continue;
        if (best < 0 || fits_better(d, huge_cache[best], size))
            best = i;
    }
    return best;
}

/* Removes and returns cached reservation best (a slot, or -1: NULL). */
static gm_huge_t *take_cached_slot_locked(int best) {
    if (best < 0)
        return NULL;
    gm_huge_t *d = huge_cache[best];
    huge_cache[best] = NULL;
    note_idle_locked(-(ptrdiff_t)d->backed);
    __atomic_store_n(&d->cached, false, __ATOMIC_RELAXED);
    return d;
}

/* Keeps freed d for reuse if there is room; false if it must be unmapped. */
static bool cache_huge_locked(gm_huge_t *d) {
    if (huge_idle_bytes + d->backed > HUGE_IDLE_BYTES)
        return false;
    for (int i = 0; i < HUGE_CACHE_SLOTS; i++) {
        if (huge_cache[i])
            continue;
        huge_cache[i] = d;
        note_idle_locked((ptrdiff_t)d->backed);
        d->idle_since_ms = gm_os_clock_ms();
        __atomic_store_n(&d->cached, true, __ATOMIC_RELAXED);
        return true;
    }
    return false;
}

/* Lets in-use d keep its slack if there is room; false if it must go. */
static bool keep_slack_locked(gm_huge_t *d) {
    size_t slack = d->backed - d->size;
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
static void forget_slack_locked(gm_huge_t *d) {
    for (int i = 0; i < HUGE_SLACK_SLOTS; i++) {
        if (huge_slack[i] != d)
            continue;
        huge_slack[i] = NULL;
        note_idle_locked(-(ptrdiff_t)(d->backed - d->size));
        return;
    }
}

/* Gives back d's backed bytes above keep. */
static void trim_huge(gm_huge_t *d, size_t keep) {
    if (d->backed <= keep)
        return;
    if (gm_os_release((void *)(d->lo + keep), d->backed - keep))
        d->dirty = min_size(d->dirty, keep);
    d->backed = keep;
}

/* Takes d out of the pagemap and the totals; the caller unmaps it after
 * dropping the lock (unmap_huge). */
static void unregister_huge_locked(gm_huge_t *d) {
    gm_pagemap_unclaim(d->lo, d->hi - d->lo);
    huge_reserved -= d->hi - d->lo;
    huge_committed -= d->commit;
}

static void unmap_huge(gm_huge_t *d) {
    gm_os_unmap((void *)d->lo, d->hi - d->lo);
    gm_fixalloc_free(&huge_fa, d);
}

/* Unmaps every cached reservation now, under the lock: when the OS refuses
 * address space, the cache's is the first to give back (RLIMIT_AS). */
bool gm_huge_drop_cached_locked(void) {
    bool any = false;
    for (int i = 0; i < HUGE_CACHE_SLOTS; i++) {
        gm_huge_t *d = huge_cache[i];
        if (!d)
            continue;
        huge_cache[i] = NULL;
        note_idle_locked(-(ptrdiff_t)d->backed);
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
    if (!p && gm_huge_drop_cached_locked())
        p = gm_os_reserve(reserve, align);
    return p;
}

/* Reserves whole slots for a block of size bytes aligned to align and enters
 * them in the pagemap; false when the OS refuses. */
static bool reserve_huge_locked(gm_huge_t *d, size_t size, size_t align) {
    size_t reserve = gm_round_up(size, GM_ARENA_SIZE);
    void *p = reserve_slots_locked(reserve, align > GM_ARENA_SIZE ? align : GM_ARENA_SIZE);
    if (!p)
        return false;
    if (!gm_pagemap_claim_huge((uintptr_t)p, reserve, d)) {   /* whole slots: never */
        gm_os_unmap(p, reserve);
        return false;
    }
    d->lo = (uintptr_t)p;
    d->hi = d->lo + reserve;
    huge_reserved += reserve;
    return true;
}

/* A new reservation for size bytes, its first size bytes committed. */
static gm_huge_t *map_huge(size_t size, size_t align) {
    gm_huge_t *d = gm_fixalloc_alloc(&huge_fa);
    if (!d)
        return NULL;
    gm_lock(&gm_heap_lock);
    bool ok = reserve_huge_locked(d, size, align);
    unlock_heap();
    if (!ok) {
        gm_fixalloc_free(&huge_fa, d);
        return NULL;
    }
    return d;
}

/* Commits d up to size bytes (d is ours alone: new, or just taken from the
 * cache); on refusal unmaps it and returns false. */
static bool commit_huge(gm_huge_t *d, size_t size) {
    size_t old = d->commit;
    if (old >= size)
        return true;
    bool ok = gm_os_commit((void *)(d->lo + old), size - old);
    gm_lock(&gm_heap_lock);
    if (ok) {
        d->commit = size;
        huge_committed += size - old;
    } else {
        unregister_huge_locked(d);
    }
    unlock_heap();
    if (!ok)
        unmap_huge(d);
    return ok;
}

/* Hands out reservation d (just taken from the cache, or NULL: a new one)
 * as a block of size bytes (a multiple of the page); *dirty is how many of
 * its first bytes may be non-zero (0 for a new mapping). */
void *gm_huge_hand_out(gm_huge_t *d, size_t size, size_t align, size_t *dirty) {
    if (!d && !(d = map_huge(size, align)))
        return NULL;
    if (!commit_huge(d, size))
        return NULL;
    *dirty = min_size(d->dirty, size);
    gm_lock(&gm_heap_lock);
    d->size = size;
    if (d->backed < size)
        d->backed = size;
    if (d->dirty < size)
        d->dirty = size;
    huge_bytes += size;
    note_peak_locked();
    huge_count++;
    bool trim = d->backed > size && !keep_slack_locked(d);
    unlock_heap();
    if (trim)   /* the tail is not the program's: no lock needed */
        trim_huge(d, size);
    return (void *)d->lo;
}

/* A huge block of at least size bytes aligned to align; *dirty is how many
 * of its first bytes may be non-zero (0 for a new mapping). */
void *gm_huge_alloc(size_t size, size_t align, size_t *dirty) {
    size = gm_round_up(size, PAGE);
    if (align < PAGE)
        align = PAGE;
    gm_lock(&gm_heap_lock);
    gm_huge_t *d = take_cached_slot_locked(best_cached_slot_locked(size, align));
    unlock_heap();
    return gm_huge_hand_out(d, size, align, dirty);
}

uint32_t gm_huge_faults(const gm_huge_t *d, size_t size) {
    return d->backed >= size ? 0 : (uint32_t)((size - d->backed) / PAGE);
}

/* Resizes huge block d in place to size bytes (at least GM_HUGE_THRESHOLD),
 * within its reservation: growing commits what is not yet read/write, a
 * shrink leaves the tail as slack.  False, changing nothing, when size does
 * not fit the reservation or the OS refuses the commit.  Under the lock
 * throughout, since the scavenger may be giving the slack back. */
bool gm_huge_resize(gm_huge_t *d, size_t size) {
    size = gm_round_up(size, PAGE);
    if (size > d->hi - d->lo)
        return false;
    gm_lock(&gm_heap_lock);
    bool ok = d->commit >= size ||
              gm_os_commit((void *)(d->lo + d->commit), size - d->commit);
    if (ok) {
        forget_slack_locked(d);
        if (d->commit < size) {
            huge_committed += size - d->commit;
            d->commit = size;
        }
        huge_bytes = huge_bytes - d->size + size;
        note_peak_locked();
        d->size = size;
        if (d->backed < size)
            d->backed = size;
        if (d->dirty < size)
            d->dirty = size;
        if (d->backed > size && !keep_slack_locked(d))
            trim_huge(d, size);
    }
    unlock_heap();
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
void *gm_huge_move(gm_huge_t *d, size_t size, bool *refused) {
    *refused = true;
    if (size > PTRDIFF_MAX - GM_ARENA_SIZE)
        return NULL;
    size = gm_round_up(size, PAGE);
    size_t reserve = gm_round_up(size, GM_ARENA_SIZE);
    gm_lock(&gm_heap_lock);
    uintptr_t old_lo = d->lo, old_hi = d->hi;
    size_t moved = d->commit;
    char *to = reserve_slots_locked(reserve, GM_ARENA_SIZE);
    bool claimed = to && gm_pagemap_claim_huge((uintptr_t)to, reserve, d);
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
        unlock_heap();
        return NULL;
    }
    if (old_hi - old_lo > moved)
        gm_os_unmap((void *)(old_lo + moved), old_hi - old_lo - moved);
    gm_pagemap_unclaim(old_lo, old_hi - old_lo);
    forget_slack_locked(d);
    huge_reserved += reserve - (old_hi - old_lo);
    huge_committed += size - moved;
    huge_bytes = huge_bytes - d->size + size;
    note_peak_locked();
    d->lo = (uintptr_t)to;
    d->hi = d->lo + reserve;
    d->size = d->backed = d->dirty = d->commit = size;
    unlock_heap();
    return to;
}

void gm_huge_free(gm_huge_t *d) {
    gm_lock(&gm_heap_lock);
    forget_slack_locked(d);
    huge_bytes -= d->size;
    huge_count--;
    bool kept = cache_huge_locked(d);
    if (!kept)
        unregister_huge_locked(d);
    unlock_heap();
    if (!kept)
        unmap_huge(d);
}

/* The slot of the table entry idle longest, if idle for idle_ms; -1 if
 * none. */
static int idlest_locked(gm_huge_t *const *table, int n, uint32_t idle_ms) {
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
size_t gm_huge_release_idle(uint32_t idle_ms) {
    gm_lock(&gm_heap_lock);
    int i = idlest_locked(huge_cache, HUGE_CACHE_SLOTS, idle_ms);
    gm_huge_t *d = NULL;
    size_t dropped = 0;
    if (i >= 0) {
        d = huge_cache[i];
        huge_cache[i] = NULL;
        dropped = d->backed;
        note_idle_locked(-(ptrdiff_t)dropped);
        unregister_huge_locked(d);
    } else if ((i = idlest_locked(huge_slack, HUGE_SLACK_SLOTS, idle_ms)) >= 0) {
        gm_huge_t *s = huge_slack[i];
        dropped = s->backed - s->size;
        forget_slack_locked(s);
        trim_huge(s, s->size);
    }
    unlock_heap();
    if (d)
        unmap_huge(d);
    return dropped;
}

/* ---- for the mheap's one pool for big blocks ------------------------------ */

gm_huge_t *gm_huge_best_cached_locked(size_t size, size_t align) {
    int best = best_cached_slot_locked(size, align);
    return best < 0 ? NULL : huge_cache[best];
}

void gm_huge_take_cached_locked(gm_huge_t *d) {
    for (int i = 0; i < HUGE_CACHE_SLOTS; i++)
        if (huge_cache[i] == d)
            take_cached_slot_locked(i);
}

void gm_huge_stats_locked(struct gm_huge_stats *out) {
    out->bytes = huge_bytes;
    out->peak_in_use = peak_in_use;
    out->count = huge_count;
    out->reserved = huge_reserved;
    out->committed = huge_committed;
    out->idle = huge_idle_bytes;
}

/* ---- invariants (GM_CHECKS) ------------------------------------------------ */

#if GM_CHECKS
static void check_huge_locked(const gm_huge_t *d) {
    GM_CHECK_THAT(d->backed <= d->commit && d->commit <= d->hi - d->lo && d->dirty <= d->commit,
                  "huge: not backed <= commit <= reservation, dirty <= commit");
    GM_CHECK_THAT(d->cached || d->size <= d->backed, "huge: a block handed out is not all backed");
    GM_CHECK_THAT(gm_pagemap_huge(d->lo) == d && gm_pagemap_huge(d->hi - 1) == d,
                  "huge: the pagemap does not lead to the descriptor");
}

/* The cached and slack tables' descriptors, and the idle bytes they hold. */
void gm_huge_check_locked(void) {
    size_t idle = 0;
    for (int i = 0; i < HUGE_CACHE_SLOTS; i++) {
        if (!huge_cache[i])
            continue;
        check_huge_locked(huge_cache[i]);
        GM_CHECK_THAT(huge_cache[i]->cached, "huge: a cached reservation is not marked cached");
        idle += huge_cache[i]->backed;
    }
    for (int i = 0; i < HUGE_SLACK_SLOTS; i++) {
        if (!huge_slack[i])
            continue;
        check_huge_locked(huge_slack[i]);
        GM_CHECK_THAT(!huge_slack[i]->cached, "huge: a block with slack is cached");
        idle += huge_slack[i]->backed - huge_slack[i]->size;
    }
    GM_CHECK_THAT(idle == huge_idle_bytes && idle <= HUGE_IDLE_BYTES,
                  "huge: idle bytes differ from the tables, or pass their bound");
}
#endif

static void unlock_heap(void) {
    GM_CHECK(gm_huge_check_locked());
    gm_unlock(&gm_heap_lock);
}
