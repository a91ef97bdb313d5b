/*
 * test_mcache.c — per-thread caches (alloc/mcache.c, alloc/mcache.h) seen
 * through gm_malloc/gm_free and the calling thread's gm_tls_cache.
 *
 * Tests that need a thread without a cache run their body in a new thread
 * (run_in_thread); the main thread's cache persists from test to test.
 * Checked: the first malloc creates the cache and refills the bin with one
 * object (max starts at 1); max doubles per refill (slow start) up to
 * the batch size and no further while the thread only allocates or only
 * frees; bursts of mallocs and frees longer than the list grow it until a
 * burst fits, and a run of frees alone shrinks it back to a batch; a thread
 * that frees other threads' blocks keeps at most a batch per class; after
 * any free a bin holds no more than its max; max_bytes stays within the
 * thread's limit and equals the sum of max * size; the limit is 1 MiB while
 * the heap is small and rises to the bound as it grows; flushing empties every
 * bin; a thread that exits leaves no live cache behind, and its cache is
 * parked with its objects (counted as cached) until a new thread adopts it,
 * lists and bounds as they were, or malloc_trim or a new scavenger epoch
 * releases it; parked caches stay within their count and byte caps, and a
 * fork child keeps and can use them; malloc and free work from a key
 * destructor that runs after the cache is gone; blocks freed by another
 * thread are fine to reuse.
 */
#include <pthread.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gomalloc.h"
#include "mcache.h"
#include "testing.h"
#include "testutil.h"

/* Runs fn in a new thread; with adopt false its cache is a new one (parked
 * caches are released first), else it may adopt a parked one. */
static void run_in_thread_adopting(void *(*fn)(void *), void *arg, bool adopt)
{
    pthread_t t;
    if (!adopt)
        gm_mcache_release_parked();
    assert_int_equal(pthread_create(&t, NULL, fn, arg), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

#define MIB ((size_t)1 << 20)

static void run_in_thread(void *(*fn)(void *), void *arg)
{
    run_in_thread_adopting(fn, arg, false);
}

static uint64_t live_threads(void)
{
    struct gm_stats st;
    gm_get_stats(&st);
    return st.threads;
}

/* Bytes on the lists of the parked caches. */
static size_t parked_bytes(void)
{
    size_t bytes;
    gm_mcache_parked(&bytes);
    return bytes;
}

/* Bytes the calling thread's cache holds. */
static uint64_t own_cached_bytes(const gm_mcache_t *c)
{
    uint64_t bytes = 0;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++)
        bytes += (uint64_t)gm_mcache_length(c, cls) * gm_class_size[cls];
    return bytes;
}

static size_t sum_max_bytes(const gm_mcache_t *c)
{
    size_t bytes = 0;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++)
        bytes += (size_t)c->max[cls] * gm_class_size[cls];
    return bytes;
}

/* bin_cap() of mcache.c: the most objects one bin may be allowed. */
static uint32_t bin_cap(uint8_t cls)
{
    uint32_t by_bytes = (uint32_t)((512u << 10) / gm_class_size[cls]);
    if (by_bytes < 2u * gm_transfer_count(cls))
        by_bytes = 2u * gm_transfer_count(cls);
    return by_bytes > 8192 ? 8192 : by_bytes;
}

/* Objects on list cls, counted by walking it. */
static uint32_t bin_length(const gm_mcache_t *c, uint8_t cls)
{
    uint32_t n = 0;
    for (void *p = c->head[cls]; p; p = gm_link_get(p))
        n++;
    return n;
}

/* ---- refill and slow start ------------------------------------------------ */

static void *refill_body(void *arg)
{
    (void)arg;
    assert_null(gm_mcache_current());
    uint64_t threads = live_threads();
    uint8_t cls = 10;
    void *p = gm_malloc(gm_class_size[cls]);
    assert_non_null(p);
    gm_mcache_t *c = gm_mcache_current();
    assert_non_null(c);
    assert_true(live_threads() == threads + 1);
    assert_true(c->bound == GM_THREAD_CACHE_DEFAULT);
    /* max was 1: one object came in and was handed out; max took a step. */
    assert_int_equal(gm_mcache_length(c, cls), 0);
    assert_null(c->head[cls]);
    assert_int_equal(c->max[cls], 2);
    for (uint8_t other = 1; other < GM_NUM_CLASSES; other++) {
        if (other == cls)
            continue;
        assert_int_equal(gm_mcache_length(c, other), 0);
        assert_null(c->head[other]);
        assert_int_equal(c->max[other], 1);
    }
    assert_true(c->max_bytes == sum_max_bytes(c));
    /* The next refill brings two: one handed out, one left in the list;
     * max doubles. */
    void *q = gm_malloc(gm_class_size[cls]);
    assert_non_null(q);
    assert_int_equal(gm_mcache_length(c, cls), 1);
    assert_int_equal(bin_length(c, cls), 1);
    assert_int_equal(c->max[cls], 4);
    gm_free(q);
    gm_free(p);
    return NULL;
}

static void test_mcache_first_malloc_creates_cache_and_refills(void **state)
{
    (void)state;
    run_in_thread(refill_body, NULL);
}

static void *slow_start_body(void *arg)
{
    (void)arg;
    uint8_t cls = 5;
    uint32_t size = gm_class_size[cls], batch = gm_transfer_count(cls);
    uint32_t n = 4 * batch;   /* refills of 1, 2, 4, ... objects reach the batch */
    void **ps = malloc(n * sizeof *ps);
    assert_non_null(ps);
    ps[0] = gm_malloc(size);
    gm_mcache_t *c = gm_mcache_current();
    assert_non_null(c);
    uint32_t max = c->max[cls];
    assert_true(max <= 2);   /* starts small */
    for (uint32_t i = 1; i < n; i++) {
        ps[i] = gm_malloc(size);
        assert_non_null(ps[i]);
        assert_true(c->max[cls] >= max);   /* never shrinks while in use */
        max = c->max[cls];
    }
    /* Only allocating: slow start reaches the batch size and stops there. */
    assert_int_equal(max, batch);
    for (uint32_t i = 0; i < n; i++) {
        gm_free(ps[i]);
        assert_int_equal(c->max[cls], batch);   /* only freeing: no growth */
        assert_true(gm_mcache_length(c, cls) <= c->max[cls]);
    }
    assert_true(c->max_bytes == sum_max_bytes(c));
    free(ps);
    return NULL;
}

static void test_mcache_slow_start_grows_max(void **state)
{
    (void)state;
    run_in_thread(slow_start_body, NULL);
}

/* Allocates burst objects of class cls, then frees them all. */
static void burst(uint8_t cls, void **ps, uint32_t burst_len)
{
    for (uint32_t i = 0; i < burst_len; i++)
        assert_non_null(ps[i] = gm_malloc(gm_class_size[cls]));
    for (uint32_t i = 0; i < burst_len; i++)
        gm_free(ps[i]);
}

/* A thread that allocates and frees a class in bursts longer than its list
 * grows the list until a whole burst fits; when it then only frees, the
 * list shrinks back to one batch. */
struct bursts {
    void **others;   /* blocks of the class allocated by another thread */
    uint32_t n_others;
};

static void *bursts_body(void *arg)
{
    struct bursts *x = arg;
    uint8_t cls = 5;
    uint32_t batch = gm_transfer_count(cls), burst_len = 4 * batch;
    void **ps = malloc(burst_len * sizeof *ps);
    assert_non_null(ps);
    for (int round = 0; round < 12; round++)
        burst(cls, ps, burst_len);
    gm_mcache_t *c = gm_mcache_current();
    assert_true(c->max[cls] >= burst_len);
    assert_true(c->max[cls] <= bin_cap(cls));
    /* A whole burst now comes from and goes back to the list. */
    uint32_t before = gm_mcache_length(c, cls);
    assert_true(before >= burst_len);
    for (uint32_t i = 0; i < burst_len; i++)
        assert_non_null(ps[i] = gm_malloc(gm_class_size[cls]));
    assert_int_equal(gm_mcache_length(c, cls), before - burst_len);
    for (uint32_t i = 0; i < burst_len; i++)
        gm_free(ps[i]);
    assert_int_equal(gm_mcache_length(c, cls), before);
    /* Frees with no allocation between them take the list back down, and
     * the list never stays longer than its shrinking bound. */
    for (uint32_t i = 0; i < x->n_others; i++) {
        gm_free(x->others[i]);
        assert_true(gm_mcache_length(c, cls) <= c->max[cls]);
    }
    assert_int_equal(c->max[cls], batch);
    assert_true(gm_mcache_length(c, cls) <= batch);
    assert_true(c->max_bytes == sum_max_bytes(c));
    free(ps);
    return NULL;
}

static void test_mcache_bursts_grow_list_and_frees_shrink_it(void **state)
{
    (void)state;
    struct bursts x = {.n_others = 64 * gm_transfer_count(5)};
    x.others = malloc(x.n_others * sizeof *x.others);
    assert_non_null(x.others);
    for (uint32_t i = 0; i < x.n_others; i++)
        assert_non_null(x.others[i] = gm_malloc(gm_class_size[5]));
    run_in_thread(bursts_body, &x);
    free(x.others);
}

/* A thread that only frees blocks other threads allocated (a consumer) keeps
 * at most about one batch per class, whatever it frees. */
struct consumer {
    void **blocks;
    uint32_t n;
    uint64_t cached;
    bool within_batch;
};

static uint32_t consumer_size(uint32_t i)
{
    return 16 + i * 53 % 4000;
}

static void *consumer_body(void *arg)
{
    struct consumer *x = arg;
    for (uint32_t i = 0; i < x->n; i++)
        gm_free(x->blocks[i]);
    gm_mcache_t *c = gm_mcache_current();
    x->within_batch = true;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++)
        if (c->max[cls] > gm_transfer_count(cls) ||
            gm_mcache_length(c, cls) > gm_transfer_count(cls))
            x->within_batch = false;
    x->cached = own_cached_bytes(c);
    return NULL;
}

static void test_mcache_consumer_keeps_one_batch_per_class(void **state)
{
    (void)state;
    struct consumer x = {.n = (uint32_t)gm_test_scaled(200000, 20000)};
    x.blocks = malloc(x.n * sizeof *x.blocks);
    assert_non_null(x.blocks);
    uint64_t bound = 0, freed = 0;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++)
        if (gm_class_size[cls] <= 4016)
            bound += (uint64_t)gm_transfer_count(cls) * gm_class_size[cls];
    for (uint32_t i = 0; i < x.n; i++) {
        assert_non_null(x.blocks[i] = gm_malloc(consumer_size(i)));
        freed += gm_usable_size(x.blocks[i]);
    }
    run_in_thread(consumer_body, &x);
    assert_true(x.within_batch);
    assert_true(x.cached <= bound);
    assert_true(x.cached < freed / 8);
    free(x.blocks);
}

/* ---- flush and bounds ----------------------------------------------------- */

static void test_mcache_free_keeps_bin_within_max(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        uint32_t size = gm_class_size[cls];
        uint32_t n = (uint32_t)gm_test_scaled(3 * bin_cap(cls), 3 * gm_transfer_count(cls));
        void **ps = malloc(n * sizeof *ps);
        assert_non_null(ps);
        for (uint32_t i = 0; i < n; i++) {
            ps[i] = gm_malloc(size);
            assert_non_null(ps[i]);
            ((char *)ps[i])[size - 1] = (char)i;
        }
        gm_mcache_t *c = gm_mcache_current();
        assert_non_null(c);
        for (uint32_t i = 0; i < n; i++) {
            assert_int_equal(((char *)ps[i])[size - 1], (char)i);
            gm_free(ps[i]);
            if (gm_mcache_length(c, cls) > c->max[cls])
                fail_msg("class %u: %u objects cached after free #%u, max %u", cls,
                         gm_mcache_length(c, cls), i, c->max[cls]);
        }
        assert_int_equal(bin_length(c, cls), gm_mcache_length(c, cls));
        free(ps);
    }
}

/* Bursts of 8 batches: each round grows every list by a batch, towards 8
 * batches a class, more than the thread's limit allows in all. */
static void burst_every_class(void)
{
    int rounds = (int)gm_test_scaled(12, 2);
    for (int round = 0; round < rounds; round++) {
        for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
            uint32_t size = gm_class_size[cls];
            uint32_t n = 8u * gm_transfer_count(cls);
            void **ps = malloc(n * sizeof *ps);
            assert_non_null(ps);
            for (uint32_t i = 0; i < n; i++)
                assert_non_null(ps[i] = gm_malloc(size));
            for (uint32_t i = 0; i < n; i++)
                gm_free(ps[i]);
            free(ps);
            gm_mcache_t *c = gm_mcache_current();
            assert_true(c->max_bytes <= c->bound);
            assert_true(c->max_bytes == sum_max_bytes(c));
            assert_true(own_cached_bytes(c) <= c->max_bytes);
        }
    }
}

static void *bound_body(void *arg)
{
    (void)arg;
    burst_every_class();
    gm_mcache_t *c = gm_mcache_current();
    if (gm_test_scale() >= 1)   /* at full scale the bound is what stops growth */
        assert_true(c->max_bytes > c->bound / 2);
    return NULL;
}

/* Run first, while the process's heap is small: a thread that recycles
 * every class may still cache up to its whole bound, more than the 1 MiB a
 * small heap once allowed. */
static void *small_heap_body(void *arg)
{
    (void)arg;
    gm_free(gm_malloc(16));
    gm_mcache_t *c = gm_mcache_current();
    assert_non_null(c);
    assert_true(c->bound == GM_THREAD_CACHE_DEFAULT);
    assert_true(__atomic_load_n(&gm_heap_committed, __ATOMIC_RELAXED) < 32 * MIB);
    burst_every_class();
    assert_true(c->max_bytes <= c->bound);
    if (gm_test_scale() >= 1)
        assert_true(c->max_bytes > MIB);
    return NULL;
}

static void test_mcache_small_heap_gets_whole_bound(void **state)
{
    (void)state;
    run_in_thread(small_heap_body, NULL);
}

/* A thread that recycles more small blocks than its bound allows takes back
 * batches it parked itself: each such round trip earns it a larger bound, up
 * to three times its first; what it earned goes back to the budget when it
 * exits. */
#define EARN_CLASSES 12
static void recycle_round(void **ps, size_t per_class)
{
    for (size_t k = 0; k < EARN_CLASSES; k++)
        for (size_t i = 0; i < per_class; i++)
            assert_non_null(ps[k * per_class + i] = gm_malloc(512 + 128 * k));
    for (size_t i = 0; i < EARN_CLASSES * per_class; i++)
        gm_free(ps[i]);
}

static void *earn_body(void *arg)
{
    size_t *earned_out = arg;
    size_t per_class = 600;   /* about 6 MiB over twelve classes of 512..1920 B */
    void **ps = malloc(EARN_CLASSES * per_class * sizeof *ps);
    assert_non_null(ps);
    gm_mcache_t *c = NULL;
    size_t base = 0;
    for (int round = 0; round < 40; round++) {
        recycle_round(ps, per_class);
        if (!c) {
            c = gm_mcache_current();
            assert_non_null(c);
            base = c->bound;
        }
        assert_true(c->max_bytes <= c->bound);
        assert_true(c->bound <= 3 * base);
        assert_true(gm_cachebound_earned_total() >= c->bound - base);
    }
    assert_true(c->bound > base);
    *earned_out = c->bound - base;
    free(ps);
    return NULL;
}

static void test_mcache_bound_earned_by_own_round_trips(void **state)
{
    (void)state;
    size_t before = gm_cachebound_earned_total(), earned = 0;
    run_in_thread(earn_body, &earned);
    assert_true(earned > 0);
    assert_int_equal(gm_cachebound_earned_total(), before);   /* given back at exit */
}

/* Batches another thread freed earn nothing: a thread that only allocates
 * refills from what its consumer parked, round after round, and keeps the
 * bound it started with. */
struct handoff { void **ps; size_t n; };

static void *consume_body(void *arg)
{
    struct handoff *h = arg;
    for (size_t i = 0; i < h->n; i++)
        gm_free(h->ps[i]);
    return NULL;
}

static void *produce_body(void *arg)
{
    (void)arg;
    struct handoff h = { .n = 6000 };   /* about 6 MiB of 1 KiB blocks a round */
    h.ps = malloc(h.n * sizeof *h.ps);
    assert_non_null(h.ps);
    gm_mcache_t *c = NULL;
    size_t base = 0;
    for (int round = 0; round < 20; round++) {
        for (size_t i = 0; i < h.n; i++)
            assert_non_null(h.ps[i] = gm_malloc(1024));
        if (!c) {
            c = gm_mcache_current();
            base = c->bound;
        }
        pthread_t t;
        assert_int_equal(pthread_create(&t, NULL, consume_body, &h), 0);
        assert_int_equal(pthread_join(t, NULL), 0);
    }
    assert_true(c->bound == base);
    free(h.ps);
    return NULL;
}

static void test_mcache_bound_not_earned_by_others_batches(void **state)
{
    (void)state;
    run_in_thread(produce_body, NULL);
}

static void test_mcache_thread_bound_after_heavy_use(void **state)
{
    (void)state;
    run_in_thread(bound_body, NULL);
}

static void test_mcache_flush_current_empties_bins(void **state)
{
    (void)state;
    void *ps[64];
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        for (int i = 0; i < 64; i++)
            assert_non_null(ps[i] = gm_malloc(gm_class_size[cls]));
        for (int i = 0; i < 64; i++)
            gm_free(ps[i]);
    }
    gm_mcache_t *c = gm_mcache_current();
    assert_non_null(c);
    assert_true(own_cached_bytes(c) > 0);
    gm_mcache_flush_current();
    size_t floor = 0;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        assert_int_equal(gm_mcache_length(c, cls), 0);
        assert_null(c->head[cls]);
        assert_int_equal(c->max[cls], 1);
        floor += gm_class_size[cls];
    }
    assert_true(c->max_bytes == floor);
    /* The only live cache; dead threads' parked caches count too. */
    assert_true(gm_mcache_cached_bytes(NULL) == parked_bytes());
    /* The cache still works after a flush. */
    void *p = gm_malloc(100);
    assert_non_null(p);
    assert_ptr_equal(gm_mcache_current(), c);
    gm_free(p);
}

/* ---- thread exit ---------------------------------------------------------- */

struct exit_probe {
    uint64_t threads_inside;
    uint64_t cached_inside;
};

static void *exit_body(void *arg)
{
    struct exit_probe *probe = arg;
    void *ps[500];
    for (int i = 0; i < 500; i++)
        assert_non_null(ps[i] = gm_malloc((size_t)(i % 40) * 64 + 16));
    for (int i = 0; i < 500; i++)
        gm_free(ps[i]);
    probe->threads_inside = live_threads();
    probe->cached_inside = own_cached_bytes(gm_mcache_current());
    return NULL;
}

static void test_mcache_thread_exit_parks_cache(void **state)
{
    (void)state;
    gm_mcache_flush_current();
    gm_mcache_release_parked();
    uint64_t threads = live_threads(), cached = gm_mcache_cached_bytes(NULL);
    struct exit_probe probe = {0, 0};
    run_in_thread(exit_body, &probe);
    assert_true(probe.threads_inside == threads + 1);
    assert_true(probe.cached_inside > 0);
    /* No live cache is left, and the objects are still counted as cached. */
    assert_true(live_threads() == threads);
    assert_int_equal(gm_mcache_parked(NULL), 1);
    assert_true(parked_bytes() == probe.cached_inside);
    assert_true(gm_mcache_cached_bytes(NULL) == cached + probe.cached_inside);
    /* malloc_trim releases it. */
    gm_release();
    assert_int_equal(gm_mcache_parked(NULL), 0);
    assert_true(parked_bytes() == 0);
    assert_true(gm_mcache_cached_bytes(NULL) == 0);   /* the only live cache */
}

/* A new thread adopts the cache the last thread left, lists and bounds as
 * they were, instead of starting in slow start. */
struct adopt_probe {
    gm_mcache_t *cache;
    uint32_t max, length;
    bool adopted;
};

static void *grow_body(void *arg)
{
    struct adopt_probe *x = arg;
    uint8_t cls = 5;
    uint32_t burst_len = 4 * gm_transfer_count(cls);
    void **ps = malloc(burst_len * sizeof *ps);
    assert_non_null(ps);
    for (int round = 0; round < 4; round++)
        burst(cls, ps, burst_len);
    free(ps);
    x->cache = gm_mcache_current();
    x->max = x->cache->max[cls];
    x->length = gm_mcache_length(x->cache, cls);
    return NULL;
}

static void *adopt_body(void *arg)
{
    struct adopt_probe *x = arg;
    uint8_t cls = 5;
    bool had_none = gm_mcache_current() == NULL;
    void *p = gm_malloc(gm_class_size[cls]);
    gm_mcache_t *c = gm_mcache_current();
    x->adopted = had_none && p && c == x->cache && c->max[cls] == x->max &&
                 gm_mcache_length(c, cls) == x->length - 1;
    gm_free(p);
    return NULL;
}

static void test_mcache_new_thread_adopts_parked_cache(void **state)
{
    (void)state;
    struct adopt_probe x = {0};
    run_in_thread(grow_body, &x);
    assert_true(x.max > gm_transfer_count(5));
    assert_true(x.length > 0);
    assert_int_equal(gm_mcache_parked(NULL), 1);
    run_in_thread_adopting(adopt_body, &x, true);
    assert_true(x.adopted);
    assert_int_equal(gm_mcache_parked(NULL), 1);   /* parked again at exit */
    gm_mcache_release_parked();
}

/* Each new cache trades with the shard fewest live caches use: a thread
 * that starts after another ended takes the shard that one used (so threads
 * that run one after another carve spans in one shard, not in every shard in
 * turn), and threads alive together spread over the shards. */
struct shard_probe {
    pthread_barrier_t *together;   /* NULL: run alone */
    uint8_t shard;
};

static void *shard_body(void *arg)
{
    struct shard_probe *x = arg;
    gm_free(gm_malloc(64));
    x->shard = gm_mcache_current()->shard;
    if (x->together)
        pthread_barrier_wait(x->together);   /* every cache made before any exits */
    return NULL;
}

static void test_mcache_new_cache_takes_least_used_shard(void **state)
{
    (void)state;
    uint32_t saved = gm_shards;
    gm_shards = 2;
    gm_free(gm_malloc(64));
    uint8_t mine = gm_mcache_current()->shard;
    struct shard_probe first = {0}, second = {0};
    run_in_thread(shard_body, &first);
    run_in_thread_adopting(shard_body, &second, true);   /* adopts first's cache */
    assert_int_equal(first.shard, 1 - mine);
    assert_int_equal(second.shard, first.shard);
    gm_mcache_release_parked();
    run_in_thread(shard_body, &first);   /* a new cache, not an adopted one */
    assert_int_equal(first.shard, 1 - mine);

    enum { N = 3 };
    pthread_barrier_t together;
    pthread_barrier_init(&together, NULL, N);
    struct shard_probe x[N];
    pthread_t t[N];
    gm_mcache_release_parked();
    for (int i = 0; i < N; i++) {
        x[i] = (struct shard_probe){&together, 0};
        assert_int_equal(pthread_create(&t[i], NULL, shard_body, &x[i]), 0);
    }
    for (int i = 0; i < N; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&together);
    int on[2] = {0, 0};
    on[mine]++;
    for (int i = 0; i < N; i++)
        on[x[i].shard]++;
    assert_int_equal(on[0], 2);   /* four live caches, two a shard */
    assert_int_equal(on[1], 2);
    gm_mcache_release_parked();
    gm_shards = saved;
}

/* Threads that exit together park no more than the caps allow; the rest
 * flush as before. */
enum { CAP_THREADS = GM_PARKED_CACHES_MAX + 4 };

struct cap_run {
    pthread_barrier_t have_caches;
    bool hold_much;                 /* hold over half the byte cap, within it */
    uint64_t held[CAP_THREADS];
    int next;
};

/* Classes of 4, 8 and 16 KiB: bursts of a fifth of the parked-byte cap
 * grow each list to hold one, three fifths of the cap in all, and what the
 * last refill of each burst left in the list (less than a batch: up to a
 * quarter of the cap more in all). */
static void hold_much(void)
{
    void **ps = malloc(256 * sizeof *ps);
    assert_non_null(ps);
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        uint32_t size = gm_class_size[cls];
        if (size != 4096 && size != 8192 && size != 16384)
            continue;
        for (int round = 0; round < 3; round++)
            burst(cls, ps, (uint32_t)(GM_PARKED_CACHE_BYTES / 5 / size));
    }
    free(ps);
}

static void *cap_body(void *arg)
{
    struct cap_run *run = arg;
    int me = __atomic_fetch_add(&run->next, 1, __ATOMIC_RELAXED);
    gm_free(gm_malloc(64));   /* every thread has its own cache ... */
    pthread_barrier_wait(&run->have_caches);   /* ... before any exits */
    if (run->hold_much)
        hold_much();
    run->held[me] = own_cached_bytes(gm_mcache_current());
    return NULL;
}

static void run_cap_threads(struct cap_run *run, int n)
{
    pthread_t t[CAP_THREADS];
    gm_mcache_release_parked();
    run->next = 0;
    pthread_barrier_init(&run->have_caches, NULL, (unsigned)n);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&t[i], NULL, cap_body, run), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    pthread_barrier_destroy(&run->have_caches);
}

static void test_mcache_parked_caches_capped(void **state)
{
    (void)state;
    uint64_t threads = live_threads();
    struct cap_run run = {.hold_much = false};
    run_cap_threads(&run, CAP_THREADS);
    assert_int_equal(gm_mcache_parked(NULL), GM_PARKED_CACHES_MAX);
    assert_true(parked_bytes() <= GM_PARKED_CACHE_BYTES);
    assert_true(live_threads() == threads);
    /* Two caches of over half the byte cap each: only one is parked. */
    run.hold_much = true;
    run_cap_threads(&run, 2);
    for (int i = 0; i < 2; i++) {
        assert_true(run.held[i] > GM_PARKED_CACHE_BYTES / 2);
        assert_true(run.held[i] <= GM_PARKED_CACHE_BYTES);
    }
    assert_int_equal(gm_mcache_parked(NULL), 1);
    assert_true(parked_bytes() == run.held[0] || parked_bytes() == run.held[1]);
    gm_mcache_release_parked();
    assert_true(live_threads() == threads);
}

/* A cache still parked when the scavenger epoch moves on is released by
 * the next thread that trims its own cache. */
static void test_mcache_new_epoch_releases_parked(void **state)
{
    (void)state;
    struct exit_probe probe = {0, 0};
    run_in_thread(exit_body, &probe);
    assert_int_equal(gm_mcache_parked(NULL), 1);
    __atomic_fetch_add(&gm_scavenger_epoch, 1, __ATOMIC_RELAXED);
    gm_mcache_flush_current();   /* so the next malloc takes the slow path */
    gm_free(gm_malloc(64));
    assert_int_equal(gm_mcache_parked(NULL), 0);
    assert_true(parked_bytes() == 0);
}

/* A fork child keeps the parked caches, and its threads adopt them. */
static void *child_thread_body(void *arg)
{
    bool *ok = arg;
    void *ps[100];
    *ok = gm_mcache_current() == NULL;
    for (int i = 0; i < 100; i++) {
        ps[i] = gm_malloc((size_t)(i % 40) * 64 + 16);
        *ok = *ok && ps[i];
    }
    *ok = *ok && gm_mcache_parked(NULL) == 0;   /* it took the parked one */
    for (int i = 0; i < 100; i++)
        gm_free(ps[i]);
    return NULL;
}

static int fork_child_main(void)
{
    bool ok = false;
    pthread_t t;
    if (gm_mcache_parked(NULL) != 1 || parked_bytes() == 0)
        return 1;
    if (pthread_create(&t, NULL, child_thread_body, &ok) != 0 || pthread_join(t, NULL) != 0)
        return 2;
    if (!ok || gm_mcache_parked(NULL) != 1)
        return 3;
    gm_release();
    if (gm_mcache_parked(NULL) != 0 || gm_mcache_cached_bytes(NULL) != 0)
        return 4;
    return 0;
}

static void test_mcache_fork_child_keeps_parked_caches(void **state)
{
    (void)state;
    struct exit_probe probe = {0, 0};
    run_in_thread(exit_body, &probe);
    assert_int_equal(gm_mcache_parked(NULL), 1);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(fork_child_main());
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
    assert_int_equal(gm_mcache_parked(NULL), 1);
    gm_mcache_release_parked();
}

/* ---- a key destructor that runs after gomalloc's -------------------------- */

enum { LATE_BLOCKS = 4 };
static const size_t late_sizes[LATE_BLOCKS] = {24, 700, 20000, 100 * KiB};
static void *late_blocks[LATE_BLOCKS];
static bool late_cache_was_gone;
static bool late_ok;

static void late_destructor(void *arg)
{
    (void)arg;
    late_cache_was_gone = gm_mcache_current() == NULL;
    bool ok = true;
    for (int i = 0; i < LATE_BLOCKS; i++) {
        void *scratch = gm_malloc(late_sizes[i]);
        ok = ok && scratch && gm_pagemap_span_of((uintptr_t)scratch);
        if (scratch)
            memset(scratch, 0x77, late_sizes[i]);
        gm_free(scratch);
        late_blocks[i] = gm_malloc(late_sizes[i]);
        ok = ok && late_blocks[i] && gm_pagemap_span_of((uintptr_t)late_blocks[i]);
        if (late_blocks[i])
            gm_test_fill(late_blocks[i], late_sizes[i], (unsigned)i);
    }
    /* Freeing does not bring a cache back. */
    late_ok = ok && gm_mcache_current() == NULL;
}

static void *late_key_body(void *arg)
{
    pthread_key_t *key = arg;
    void *p = gm_malloc(32);   /* gomalloc's key is set now */
    assert_non_null(p);
    assert_int_equal(pthread_key_create(key, late_destructor), 0);
    assert_int_equal(pthread_setspecific(*key, (void *)1), 0);
    gm_free(p);
    return NULL;
}

static void test_mcache_malloc_in_later_key_destructor(void **state)
{
    (void)state;
    uint64_t threads = live_threads();
    pthread_key_t key;
    late_ok = late_cache_was_gone = false;
    run_in_thread(late_key_body, &key);
    assert_true(late_cache_was_gone);
    assert_true(late_ok);
    assert_true(live_threads() == threads);
    for (int i = 0; i < LATE_BLOCKS; i++) {
        assert_true(gm_test_check(late_blocks[i], late_sizes[i], (unsigned)i));
        assert_true(gm_usable_size(late_blocks[i]) >= late_sizes[i]);
        gm_free(late_blocks[i]);
    }
    pthread_key_delete(key);
}

/* ---- cross-thread free ---------------------------------------------------- */

enum { XN = 2000 };
struct cross {
    pthread_barrier_t allocated, freed;
    void *blocks[XN];
    bool ok_a;
};

static size_t cross_size(int i)
{
    return (size_t)(i * 37 % 3000) + 1;
}

static void *cross_owner(void *arg)
{
    struct cross *x = arg;
    for (int i = 0; i < XN; i++) {
        x->blocks[i] = gm_malloc(cross_size(i));
        if (x->blocks[i])
            gm_test_fill(x->blocks[i], cross_size(i), (unsigned)i);
    }
    pthread_barrier_wait(&x->allocated);
    pthread_barrier_wait(&x->freed);
    bool ok = true;
    void **again = malloc(XN * sizeof *again);
    for (int i = 0; again && i < XN; i++) {
        again[i] = gm_malloc(cross_size(i));
        ok = ok && again[i] && gm_pagemap_span_of((uintptr_t)again[i]);
        if (again[i])
            gm_test_fill(again[i], cross_size(i), (unsigned)i + 7u);
    }
    for (int i = 0; again && i < XN; i++) {
        ok = ok && gm_test_check(again[i], cross_size(i), (unsigned)i + 7u);
        gm_free(again[i]);
    }
    x->ok_a = ok && again;
    free(again);
    return NULL;
}

static void *cross_freer(void *arg)
{
    struct cross *x = arg;
    for (int i = 0; i < XN; i++) {
        assert_true(gm_test_check(x->blocks[i], cross_size(i), (unsigned)i));
        gm_free(x->blocks[i]);
    }
    return NULL;
}

static void test_mcache_cross_thread_free(void **state)
{
    (void)state;
    uint64_t threads = live_threads();
    struct cross *x = calloc(1, sizeof *x);
    assert_non_null(x);
    pthread_barrier_init(&x->allocated, NULL, 2);
    pthread_barrier_init(&x->freed, NULL, 2);
    pthread_t a;
    assert_int_equal(pthread_create(&a, NULL, cross_owner, x), 0);
    pthread_barrier_wait(&x->allocated);
    for (int i = 0; i < XN; i++)
        assert_non_null(x->blocks[i]);
    run_in_thread(cross_freer, x);   /* B frees A's blocks, then exits */
    pthread_barrier_wait(&x->freed);
    assert_int_equal(pthread_join(a, NULL), 0);
    assert_true(x->ok_a);
    assert_true(live_threads() == threads);
    /* What B freed and A allocated again is all reusable from here too. */
    void *p[XN];
    for (int i = 0; i < XN; i++) {
        assert_non_null(p[i] = gm_malloc(cross_size(i)));
        gm_test_fill(p[i], cross_size(i), 3);
    }
    for (int i = 0; i < XN; i++) {
        assert_true(gm_test_check(p[i], cross_size(i), 3));
        gm_free(p[i]);
    }
    pthread_barrier_destroy(&x->allocated);
    pthread_barrier_destroy(&x->freed);
    free(x);
}

/* A thread whose first call is a free (of a block from another thread) gets
 * a cache and caches the block. */
static void *free_first_body(void *arg)
{
    assert_null(gm_mcache_current());
    gm_free(arg);
    gm_mcache_t *c = gm_mcache_current();
    assert_non_null(c);
    uint8_t cls = gm_size_class(200);
    assert_int_equal(gm_mcache_length(c, cls), 1);
    assert_ptr_equal(c->head[cls], arg);
    assert_ptr_equal(gm_malloc(200), arg);
    gm_free(arg);
    return NULL;
}

static void test_mcache_free_before_malloc_creates_cache(void **state)
{
    (void)state;
    void *p = gm_malloc(200);
    assert_non_null(p);
    run_in_thread(free_first_body, p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mcache_small_heap_gets_whole_bound),   /* first: a small heap */
        cmocka_unit_test(test_mcache_bound_earned_by_own_round_trips),
        cmocka_unit_test(test_mcache_bound_not_earned_by_others_batches),
        cmocka_unit_test(test_mcache_first_malloc_creates_cache_and_refills),
        cmocka_unit_test(test_mcache_slow_start_grows_max),
        cmocka_unit_test(test_mcache_bursts_grow_list_and_frees_shrink_it),
        cmocka_unit_test(test_mcache_consumer_keeps_one_batch_per_class),
        cmocka_unit_test(test_mcache_free_keeps_bin_within_max),
        cmocka_unit_test(test_mcache_thread_bound_after_heavy_use),
        cmocka_unit_test(test_mcache_flush_current_empties_bins),
        cmocka_unit_test(test_mcache_thread_exit_parks_cache),
        cmocka_unit_test(test_mcache_new_thread_adopts_parked_cache),
        cmocka_unit_test(test_mcache_new_cache_takes_least_used_shard),
        cmocka_unit_test(test_mcache_parked_caches_capped),
        cmocka_unit_test(test_mcache_new_epoch_releases_parked),
        cmocka_unit_test(test_mcache_fork_child_keeps_parked_caches),
        cmocka_unit_test(test_mcache_malloc_in_later_key_destructor),
        cmocka_unit_test(test_mcache_cross_thread_free),
        cmocka_unit_test(test_mcache_free_before_malloc_creates_cache),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
