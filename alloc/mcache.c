/*
 * mcache.c — per-thread caches (Go's mcache, one per thread instead of per P).
 *
 * Each thread has a list of free objects per size class, reached through one
 * initial-exec __thread pointer (a dynamic TLS model could allocate on first
 * use and recurse into malloc).  Until the thread's first slow path, and
 * after it exits, the pointer leads to gm_mcache_empty, a read-only cache
 * whose lists are empty and whose object-start limits are zero, so both fast
 * paths fall through to this file without testing for NULL.  The fast paths
 * in mcache.h pop and push; this file refills an empty list and flushes a
 * long one, in batches of gm_transfer_count(cls) objects (at most 8 KiB,
 * or 8 objects for the classes above 1 KiB) moved with one mcentral lock
 * round-trip.
 *
 * Remote frees: a block freed by a thread other than the one that allocated
 * it goes on the *freeing* thread's list, as in tcmalloc and jemalloc, not
 * back to its owner as in mimalloc.  The free fast path then needs no atomic
 * and no owner lookup, and a producer/consumer pair trades memory through the
 * mcentral's parked batches: the consumer's frees fill whole batches that the
 * producer's refills take whole.  The cost is that a block may be reused by a
 * thread on another core than the one that last touched it: the refill
 * starts fetching every line of the batch at once (mcentral.c), so the
 * pops do not wait for them one at a time (bench/xmalloc).
 *
 * Bounds: how long each list may grow, and how much the thread may cache in
 * all, is cachebound.c's (tcmalloc's max_length with slow start, a bound
 * per thread that it earns more of by round trips of its own batches through
 * the central lists); this file calls it at each refill and overflow.
 *
 * Surplus: about once a second (gm_scavenger_epoch, which advances while
 * the scavenger thread runs, i.e. once the heap has held 32 MiB) a thread's
 * next slow path gives back half of every list it did not have to refill
 * since the last time, and takes a batch off the max of each such list.  A
 * thread that stops calling malloc and free keeps its cache, within its
 * bound, until it exits or calls malloc_trim.
 *
 * Thread exit: a pthread key destructor gives the page cache back to the
 * heap and parks the cache, lists and bounds as they are, on a stack of at
 * most GM_PARKED_CACHES_MAX caches holding GM_PARKED_CACHE_BYTES in all; a
 * cache that would pass either cap is flushed to the mcentrals and freed.
 * A new thread's first slow path adopts the last parked cache instead of
 * starting one in slow start.  Thread churn is why: a short-lived thread
 * spends its life in slow start, and flushing at exit meant about 180
 * mcentral lock round-trips per thread (bench/threadchurn: 400 blocks a
 * thread), on the few locks of the small classes, which threads on two
 * cores then contended for; with parking it is about 47.  A parked cache
 * is released (flushed and freed) by malloc_trim, and by the epoch trim
 * above once it has stayed parked into a new epoch.  Statistics count its
 * objects as cached and the cache not as a thread.  Destructors that run
 * after the key's and call malloc or free find no cache and the exiting
 * flag set: they go to the mcentrals directly, one object at a time.
 *
 * Counting (for statistics, stats.c): the fast paths count nothing.  A
 * cache counts the objects it takes from the mcentral (st_in) and gives
 * back (st_out) on its slow paths, so st_in - st_out - the list's length is,
 * at any moment, the thread's allocations less its frees of the class, and
 * that is exact.  At each of its slow paths for a class (refill, flush) the
 * thread folds the change since the last fold into st_mallocs when positive,
 * st_frees when negative, as Go's mcache counts a span's allocations when it
 * swaps the span.  So a malloc and a free of the class that the list served
 * between two folds cancel out: both counts are lower bounds, exact for a
 * thread that only allocated or only freed the class between its trips to
 * the mcentral, and their difference is exact.  Reading the statistics folds
 * the reading thread's own cache too, so a thread's counts are exact over a
 * stretch between two reads in which it only allocated or only freed each
 * class (tests/test_stats.c).  A cache that goes away adds
 * its counts to dead_counts; calls served without a cache (an exiting
 * thread, debug mode) are counted there directly.
 *
 * Locking: a cache is touched only by its thread, except that the registry
 * (all live caches, for statistics, trim and fork) and the parked stack are
 * guarded by registry_lock, which comes first in gomalloc's lock order.  A
 * parked cache has no thread: it is read and flushed only under that lock.
 * The fork child drops the caches of threads that no longer exist and
 * keeps the parked ones, which no thread can have been changing while the
 * fork handlers held the lock.
 */
#include <sched.h>
#include <string.h>

#include "cachebound.h"
#include "guard.h"
#include "mcache.h"

const gm_mcache_t gm_mcache_empty;
__thread gm_mcache_t *gm_tls_cache __attribute__((tls_model("initial-exec"))) =
    (gm_mcache_t *)&gm_mcache_empty;
static __thread bool tls_exiting __attribute__((tls_model("initial-exec")));

static gm_lock_t registry_lock = GM_LOCK_INIT;
static gm_mcache_t *registry;          /* registry lock */
static uint64_t registry_count;        /* registry lock */
static gm_fixalloc_t cache_fa = {.size = sizeof(gm_mcache_t)};
static pthread_key_t exit_key;
#define GLOBAL_CACHE_BYTES ((size_t)64 << 20)
#define MIN_CACHE_BYTES ((size_t)256 << 10)
static int exit_key_state;             /* atomic: 0 none, 1 creating, 2 ready, 3 failed */
static __thread bool tls_creating_key __attribute__((tls_model("initial-exec")));
static gm_mcache_t *parked;            /* registry lock: dead threads' caches */
static uint32_t parked_count;          /* registry lock */
static size_t parked_bytes;            /* registry lock: on their lists */
static uint32_t shard_caches[GM_SHARDS_MAX];   /* registry lock: registered caches per shard */
/* Counts of caches that went away and of calls served without one. */
static uint64_t dead_mallocs[GM_NUM_CLASSES];   /* atomic */
static uint64_t dead_frees[GM_NUM_CLASSES];     /* atomic */

/* ---- counting (see "Counting" above) ------------------------------------ */

/* Allocations less frees of class cls by c's thread, as of now. */
static int64_t net_handed(const gm_mcache_t *c, uint8_t cls) {
    int64_t length = (int64_t)__atomic_load_n(&c->max[cls], __ATOMIC_RELAXED) -
                     __atomic_load_n(&c->room[cls], __ATOMIC_RELAXED);
    return (int64_t)(__atomic_load_n(&c->st_in[cls], __ATOMIC_RELAXED) -
                     __atomic_load_n(&c->st_out[cls], __ATOMIC_RELAXED)) - length;
}

/* What a fold would add to the cache's counts now (a reader's estimate for
 * another thread's cache). */
static void pending(const gm_mcache_t *c, uint8_t cls, uint64_t *mallocs, uint64_t *frees) {
    int64_t d = net_handed(c, cls) - __atomic_load_n(&c->st_net[cls], __ATOMIC_RELAXED);
    *mallocs = d > 0 ? (uint64_t)d : 0;
    *frees = d < 0 ? (uint64_t)-d : 0;
}

/* Owner thread (or a parked cache under the registry lock).  Relaxed
 * stores: statistics read these from other threads. */
static void fold(gm_mcache_t *c, uint8_t cls) {
    uint64_t m, f;
    pending(c, cls, &m, &f);
    __atomic_store_n(&c->st_mallocs[cls], c->st_mallocs[cls] + m, __ATOMIC_RELAXED);
    __atomic_store_n(&c->st_frees[cls], c->st_frees[cls] + f, __ATOMIC_RELAXED);
    __atomic_store_n(&c->st_net[cls], net_handed(c, cls), __ATOMIC_RELAXED);
}

static void count_moved(uint64_t *counter, uint32_t n) {
    __atomic_store_n(counter, *counter + n, __ATOMIC_RELAXED);
}

/* A cache going away (its lists empty): its counts join the dead ones. */
static void bury_counts(gm_mcache_t *c) {
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        fold(c, cls);
        __atomic_fetch_add(&dead_mallocs[cls], c->st_mallocs[cls], __ATOMIC_RELAXED);
        __atomic_fetch_add(&dead_frees[cls], c->st_frees[cls], __ATOMIC_RELAXED);
    }
}

/* ---- the registry and the parked caches -------------------------------- */

static void registry_push_locked(gm_mcache_t *c) {
    GM_DLIST_PUSH(&registry, c);
    registry_count++;
    shard_caches[c->shard]++;
}

static void registry_unlink_locked(gm_mcache_t *c) {
    GM_DLIST_REMOVE(&registry, c);
    registry_count--;
    shard_caches[c->shard]--;
}

/* The shard with the fewest live caches, the lowest of those tied: a thread
 * that starts after another ended takes the shard that one left, so threads
 * that run one after another share one shard's spans.  Dealing shards
 * round-robin gave every other one of them the other shard, and each shard
 * carves spans of its own for every class in use: bench/threadchurn 1 (one
 * worker at a time beside the main thread) peaked at 3.4 MiB against 2.7
 * before the shards.  Registry lock held. */
static uint8_t least_used_shard_locked(void) {
    uint32_t shards = __atomic_load_n(&gm_shards, __ATOMIC_ACQUIRE), best = 0;
    for (uint32_t i = 1; i < shards; i++)
        if (shard_caches[i] < shard_caches[best])
            best = i;
    return (uint8_t)best;
}

/* Bytes on the lists of cache c.  Statistics call it on other threads'
 * caches while they run, so the counters are read atomically and a length
 * caught mid-update below zero counts as none. */
static size_t held_bytes(const gm_mcache_t *c) {
    size_t bytes = 0;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        int64_t length = (int64_t)__atomic_load_n(&c->max[cls], __ATOMIC_RELAXED) -
                         __atomic_load_n(&c->room[cls], __ATOMIC_RELAXED);
        bytes += length > 0 ? (size_t)length * gm_class_size[cls] : 0;
    }
    return bytes;
}

/* Moves a dead thread's cache, lists and bounds as they are, from the
 * registry to the parked stack; false, nothing done, if that would pass
 * either cap. */
static bool park(gm_mcache_t *c) {
    size_t bytes = held_bytes(c);
    bool ok = false;
    gm_mcache_registry_lock();
    if (parked_count < GM_PARKED_CACHES_MAX &&
        parked_bytes + bytes <= GM_PARKED_CACHE_BYTES) {
        registry_unlink_locked(c);
        c->parked_bytes = bytes;
        c->parked_epoch = __atomic_load_n(&gm_scavenger_epoch, __ATOMIC_RELAXED);
        c->next = parked;
        parked = c;
        parked_count++;
        parked_bytes += bytes;
        ok = true;
    }
    gm_mcache_registry_unlock();
    return ok;
}

/* Gives a cache that no thread will use again, and its spare buffer, back
 * to their fixallocs. */
static void free_cache(gm_mcache_t *c) {
    gm_mcentral_batch_free(c->spare);
    gm_fixalloc_free(&cache_fa, c);
}

/* Takes the most recently parked cache, NULL if none. */
static gm_mcache_t *unpark_locked(void) {
    gm_mcache_t *c = parked;
    if (c) {
        parked = c->next;
        parked_count--;
        parked_bytes -= c->parked_bytes;
        c->parked_bytes = 0;
    }
    return c;
}

/* Flushes and frees the parked caches: all of them, or (!all) those parked
 * before the current scavenger epoch began.  Under the registry lock
 * throughout, so statistics and a fork never see a cache half flushed. */
static void release_parked(bool all) {
    uint32_t epoch = __atomic_load_n(&gm_scavenger_epoch, __ATOMIC_RELAXED);
    gm_mcache_registry_lock();
    gm_mcache_t **link = &parked;
    while (*link) {
        gm_mcache_t *c = *link;
        if (!all && c->parked_epoch == epoch) {
            link = &c->next;
            continue;
        }
        *link = c->next;
        parked_count--;
        parked_bytes -= c->parked_bytes;
        gm_mcache_flush_all(c);
        bury_counts(c);
        free_cache(c);
    }
    gm_mcache_registry_unlock();
}

void gm_mcache_release_parked(void) { release_parked(true); }

uint32_t gm_mcache_parked(size_t *bytes_out) {
    gm_mcache_registry_lock();
    uint32_t n = parked_count;
    if (bytes_out)
        *bytes_out = parked_bytes;
    gm_mcache_registry_unlock();
    return n;
}

/* The pthread key destructor.  The page cache goes back to the heap (large
 * blocks are too big to keep for a thread that may never come); the lists
 * are parked for the next new thread if the caps allow, else flushed. */
static void thread_exit(void *arg) {
    gm_mcache_t *c = arg;
    tls_exiting = true;
    gm_tls_cache = (gm_mcache_t *)&gm_mcache_empty;
    gm_cachebound_give_back(c);
    gm_pagecache_flush(&c->pages, false);
    if (park(c))
        return;
    gm_mcache_flush_all(c);
    gm_mcache_registry_lock();
    registry_unlink_locked(c);
    bury_counts(c);
    gm_mcache_registry_unlock();
    free_cache(c);
}

/* Idempotent: the first call creates the key; a call from another thread
 * meanwhile waits for it, one from the creating thread (pthread_key_create
 * may call malloc) does not. */
void gm_mcache_init(void) {
    int state = 0;
    if (__atomic_compare_exchange_n(&exit_key_state, &state, 1, false, __ATOMIC_ACQ_REL,
                                    __ATOMIC_ACQUIRE)) {
        tls_creating_key = true;
        bool ok = pthread_key_create(&exit_key, thread_exit) == 0;
        tls_creating_key = false;
        __atomic_store_n(&exit_key_state, ok ? 2 : 3, __ATOMIC_RELEASE);
        return;
    }
    while (state == 1 && !tls_creating_key) {
        sched_yield();
        state = __atomic_load_n(&exit_key_state, __ATOMIC_ACQUIRE);
    }
}

/* A new thread's bound: the configured one, or its share of the global
 * budget when many threads exist.  Registry lock held. */
static size_t thread_limit_locked(void) {
    size_t share = GLOBAL_CACHE_BYTES / (registry_count + 1);
    size_t limit = gm_options.thread_cache_bytes;
    if (share < MIN_CACHE_BYTES)
        share = MIN_CACHE_BYTES;
    return share < limit ? share : limit;
}

/* The shard of a thread without a cache (exiting, debug mode): one fixed
 * per thread, as a cache's would be. */
static uint8_t nocache_shard(void) {
    return (uint8_t)(gm_lock_self() & (__atomic_load_n(&gm_shards, __ATOMIC_ACQUIRE) - 1));
}

/* A cache with empty lists in slow start, NULL when out of memory.
 * Registry lock held. */
static gm_mcache_t *new_cache(void) {
    gm_mcache_t *c = gm_fixalloc_alloc(&cache_fa);
    if (!c)
        return NULL;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        c->max[cls] = 1;
        c->room[cls] = 1;
        c->start_magic[cls] = gm_class_divmagic[cls];
        c->start_limit[cls] = gm_class_start_limit[cls];
        c->max_bytes += gm_class_size[cls];
    }
    c->epoch = __atomic_load_n(&gm_scavenger_epoch, __ATOMIC_RELAXED);
    return c;
}

/* The calling thread's first cache: a parked one if any (its epoch is kept,
 * so if the epoch moved on while it was parked, the first slow path trims
 * it), else a new one; either way it trades with the least used shard (a
 * cache's shard only says where its refills come from: its gives go to the
 * shard of their objects' spans). */
static gm_mcache_t *create_cache(void) {
    gm_mcache_registry_lock();
    gm_mcache_t *c = unpark_locked();
    if (!c)
        c = new_cache();
    if (c) {
        c->shard = least_used_shard_locked();
        gm_cachebound_start(c, thread_limit_locked());
        registry_push_locked(c);
    }
    gm_mcache_registry_unlock();
    if (!c)
        return NULL;
    /* Set before anything below can call malloc again. */
    gm_tls_cache = c;
    if (c->max_bytes > c->bound)
        gm_mcache_flush_all(c);   /* parked when fewer threads shared the budget */
    gm_mcache_init();
    if (__atomic_load_n(&exit_key_state, __ATOMIC_ACQUIRE) == 2)
        pthread_setspecific(exit_key, c);
    return c;
}

/* The calling thread's cache, created on first use; NULL while the thread
 * exits or when no memory is left for a cache. */
static gm_mcache_t *current_cache(void) {
    gm_mcache_t *c = gm_mcache_current();
    if (c || tls_exiting || gm_options.debug)
        return c;   /* debug mode keeps every call on the checked slow path */
    return create_cache();
}

gm_mcache_t *gm_mcache_for_thread(void) { return current_cache(); }

static void release_objects(gm_mcache_t *c, uint8_t cls, uint32_t n);

/* Gives back half of every list the thread did not need to refill lately. */
static void trim_unused(gm_mcache_t *c) {
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        bool refilled = gm_class_bit(c->refilled, cls);
        uint32_t surplus = refilled ? 0 : gm_mcache_length(c, cls) / 2;
        uint32_t batch = gm_transfer_count(cls);
        if (!refilled)
            gm_cachebound_shrink(c, cls);
        while (surplus > 0) {
            uint32_t n = surplus < batch ? surplus : batch;
            release_objects(c, cls, n);
            surplus -= n;
        }
    }
    c->refilled[0] = c->refilled[1] = 0;
    c->overflowed[0] = c->overflowed[1] = 0;
    gm_pagecache_flush(&c->pages, true);
    c->epoch = __atomic_load_n(&gm_scavenger_epoch, __ATOMIC_RELAXED);
    release_parked(false);
}

static void maybe_trim(gm_mcache_t *c) {
    if (GM_UNLIKELY(c->epoch != __atomic_load_n(&gm_scavenger_epoch, __ATOMIC_RELAXED)))
        trim_unused(c);
}

void *gm_mcache_alloc_slow(size_t size) {
    uint8_t cls = gm_size_class(size);
    gm_mcache_t *c = current_cache();
    void *head, *tail;
    if (!c) {
        if (!gm_mcentral_take(nocache_shard(), cls, 1, &head, &tail))
            return NULL;
        __atomic_fetch_add(&dead_mallocs[cls], 1, __ATOMIC_RELAXED);
        gm_block_handout(head);
        return head;
    }
    fold(c, cls);
    if (GM_UNLIKELY(gm_options.profile_rate) && gm_profile_due(gm_class_size[cls]))
        return gm_profile_alloc_small(size);   /* sampled: a page of its own */
    if (!c->head[cls]) {
        uint32_t batch = gm_transfer_count(cls);
        uint32_t want = gm_guard_budget(c->max[cls] < batch ? c->max[cls] : batch);
        if (GM_UNLIKELY(gm_options.profile_rate))   /* run dry where the next sample falls */
            want = gm_profile_trim(cls, want);
        /* A whole parked batch comes in exchange for the spare, which then
         * holds the batch's giver: this thread's own, if it gave it. */
        if (c->spare)
            c->spare->giver = NULL;
        uint32_t got = gm_mcentral_take_batch(c->shard, cls, want, &head, &tail, &c->spare);
        if (!got)
            return NULL;
        if (c->spare && c->spare->giver == c)
            gm_cachebound_took_own(c, cls);
        c->head[cls] = head;
        c->room[cls] = (int64_t)c->max[cls] - got;
        count_moved(&c->st_in[cls], got);
        if (GM_UNLIKELY(gm_options.profile_rate))
            gm_profile_refilled(cls, got);
        gm_cachebound_refilled(c, cls);
        gm_set_class_bit(c->refilled, cls);
        maybe_trim(c);
    }
    void *p = c->head[cls];
    c->head[cls] = gm_link_get(p);
    c->room[cls]++;
    gm_block_handout(p);
    return p;
}

/* Gives the first n objects of list cls back to the mcentral. */
static void release_objects(gm_mcache_t *c, uint8_t cls, uint32_t n) {
    c->room[cls] += n;
    count_moved(&c->st_out[cls], n);
    if (!c->spare)
        c->spare = gm_mcentral_batch_new();
    if (GM_LIKELY(c->spare)) {
        c->spare->first = 0;
        c->spare->count = n;
        c->spare->giver = c;   /* a round trip back to this thread earns (cachebound.c) */
        gm_list_cut_into(c->head[cls], n, &c->head[cls], c->spare->obj);
        gm_mcentral_give_batch(c->shard, cls, &c->spare);
        return;
    }
    void *objs[GM_TRANSFER_MAX_OBJECTS];   /* no memory for a buffer */
    gm_list_cut_into(c->head[cls], n, &c->head[cls], objs);
    gm_mcentral_give(c->shard, cls, objs[0], objs[n - 1], n);
}

void gm_mcache_flush_slow(gm_mcache_t *c, uint8_t cls) {
    fold(c, cls);
    uint32_t batch = gm_transfer_count(cls), length = gm_mcache_length(c, cls);
    release_objects(c, cls, length < batch ? length : batch);
    gm_cachebound_overflowed(c, cls);
    /* The overflow took a batch off the bound and left the list one object
     * over it: one more batch goes (the list holds at least a batch, since
     * the bound never drops below one). */
    if (c->room[cls] < 0)
        release_objects(c, cls, batch);
    maybe_trim(c);
}

void gm_mcache_overflow(gm_mcache_t *c, void **list) {
    gm_mcache_flush_slow(c, (uint8_t)(list - c->head));
}

void gm_mcache_free_nocache(void *ptr, uint8_t cls) {
    gm_mcache_t *c = current_cache();
    if (!c) {
        gm_block_free_link(ptr, NULL);
        gm_mcentral_give(nocache_shard(), cls, ptr, ptr, 1);
        __atomic_fetch_add(&dead_frees[cls], 1, __ATOMIC_RELAXED);
        return;
    }
    gm_block_free_link(ptr, c->head[cls]);
    c->head[cls] = ptr;
    if (--c->room[cls] < 0)
        gm_mcache_flush_slow(c, cls);
}

void gm_mcache_flush_all(gm_mcache_t *c) {
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        uint32_t batch = gm_transfer_count(cls), length;
        while ((length = gm_mcache_length(c, cls)) > 0)
            release_objects(c, cls, length < batch ? length : batch);
        c->max_bytes -= (size_t)(c->max[cls] - 1) * gm_class_size[cls];
        c->max[cls] = 1;
        c->room[cls] = 1;
        c->overages[cls] = 0;
    }
    c->overflowed[0] = c->overflowed[1] = 0;
    gm_pagecache_flush(&c->pages, false);
}

void gm_mcache_flush_current(void) {
    gm_mcache_t *c = gm_mcache_current();
    if (c)
        gm_mcache_flush_all(c);
}

uint64_t gm_mcache_cached_bytes(uint64_t *large_out) {
    uint64_t bytes = 0, large = 0;
    gm_mcache_registry_lock();
    for (gm_mcache_t *c = registry; c; c = c->next) {
        bytes += held_bytes(c);
        large += __atomic_load_n(&c->pages.bytes, __ATOMIC_RELAXED);
    }
    bytes += parked_bytes;
    gm_mcache_registry_unlock();
    if (large_out)
        *large_out = large;
    return bytes;
}

/* Adds c's counts (with what a fold would add now) and list lengths. */
static void add_counts(gm_mcache_t *c, uint64_t *mallocs, uint64_t *frees, uint64_t *cached) {
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        uint64_t m, f;
        pending(c, cls, &m, &f);
        mallocs[cls] += __atomic_load_n(&c->st_mallocs[cls], __ATOMIC_RELAXED) + m;
        frees[cls] += __atomic_load_n(&c->st_frees[cls], __ATOMIC_RELAXED) + f;
        int64_t length = (int64_t)__atomic_load_n(&c->max[cls], __ATOMIC_RELAXED) -
                         __atomic_load_n(&c->room[cls], __ATOMIC_RELAXED);
        cached[cls] += length > 0 ? (uint64_t)length : 0;
    }
}

void gm_mcache_class_counts(uint64_t mallocs[GM_NUM_CLASSES], uint64_t frees[GM_NUM_CLASSES],
                            uint64_t cached[GM_NUM_CLASSES]) {
    gm_mcache_t *mine = gm_mcache_current();
    if (mine)   /* the caller's own cache: a real fold (see "Counting") */
        for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++)
            fold(mine, cls);
    for (uint8_t cls = 0; cls < GM_NUM_CLASSES; cls++) {
        mallocs[cls] = __atomic_load_n(&dead_mallocs[cls], __ATOMIC_RELAXED);
        frees[cls] = __atomic_load_n(&dead_frees[cls], __ATOMIC_RELAXED);
        cached[cls] = 0;
    }
    gm_mcache_registry_lock();
    for (gm_mcache_t *c = registry; c; c = c->next)
        add_counts(c, mallocs, frees, cached);
    for (gm_mcache_t *c = parked; c; c = c->next)
        add_counts(c, mallocs, frees, cached);
    gm_mcache_registry_unlock();
}

uint64_t gm_mcache_count(void) {
    gm_mcache_registry_lock();
    uint64_t n = registry_count;
    gm_mcache_registry_unlock();
    return n;
}

void gm_mcache_registry_lock(void) { gm_lock(&registry_lock); }
void gm_mcache_registry_unlock(void) { gm_unlock(&registry_lock); }

gm_lock_t *gm_mcache_registry_lockp(void) { return &registry_lock; }

/* In a fork child only the forking thread exists.  The other threads' caches
 * are dropped, not flushed: a thread may have been stopped halfway through a
 * push or pop, so their lists cannot be trusted.  Their objects are lost to
 * the child, at most one cache limit per thread, as in tcmalloc.  Parked
 * caches stay parked: they change only under the registry lock, which the
 * fork handlers held, so their lists are whole. */
void gm_mcache_after_fork_child(void) {
    gm_mcache_t *c = registry, *mine = gm_tls_cache;
    registry = NULL;
    registry_count = 0;
    memset(shard_caches, 0, sizeof shard_caches);
    while (c) {
        gm_mcache_t *next = c->next;
        if (c == mine) {
            c->next = c->prev = NULL;
            registry = c;
            registry_count = 1;
            shard_caches[c->shard] = 1;
        } else {
            bury_counts(c);   /* as of the fork; its list may be torn */
            gm_cachebound_give_back(c);
            free_cache(c);
        }
        c = next;
    }
}
