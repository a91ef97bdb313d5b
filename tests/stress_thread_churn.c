/*
 * stress_thread_churn.c — thousands of short-lived threads: memory must not
 * grow with their number, and allocation must keep working in thread-exit
 * destructors that run after the allocator has flushed the thread's cache.
 *
 * Each thread allocates a mix of blocks, frees some itself, leaves some in a
 * shared ring for later threads to free, and exits.  Memory is sampled after a
 * quarter of the threads and at the end; the end may not exceed twice the
 * quarter mark plus 16 MiB.  In gm_ mode the sample is gm_get_stats()
 * (mapped and committed); with -DGM_TEST_LIBC_NAMES (run under LD_PRELOAD) it
 * is VmRSS from /proc/self/status.
 *
 * Seeds are fixed; GM_STRESS_SCALE (a float, default 1) multiplies the thread
 * counts.
 */
#define _GNU_SOURCE
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "api_names.h"
#include "stress_util.h"


/* ---- helpers ------------------------------------------------------------- */

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    unsigned x = (unsigned)(r % 100);
    r >>= 8;
    if (x < 80)
        return 16 + (size_t)(r % 1024);
    if (x < 98)
        return 1024 + (size_t)(r % (31 * KiB));
    return 40 * KiB + (size_t)(r % (200 * KiB));
}

static unsigned char pattern_byte(uint64_t tag, size_t i)
{
    return (unsigned char)((tag * 0x9E3779B97F4A7C15ull) >> 56 ^ i ^ (i >> 8));
}

static void pattern_fill(void *p, size_t n, uint64_t tag)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = pattern_byte(tag, i);
}

static int pattern_check(const void *p, size_t n, uint64_t tag)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != pattern_byte(tag, i))
            return 0;
    return 1;
}

struct block {
    void *p;
    size_t n;
    uint64_t tag;
};

static void block_new(struct block *b, size_t n, uint64_t tag)
{
    b->p = gm_malloc(n);
    b->n = n;
    b->tag = tag;
    if (b->p == NULL) {
        note_failure("malloc returned NULL", NULL, n);
        return;
    }
    if (gm_usable_size(b->p) < n)
        note_failure("usable size below request", b->p, n);
    pattern_fill(b->p, n, tag);
}

static void block_check_free(struct block *b)
{
    if (b->p == NULL)
        return;
    if (!pattern_check(b->p, b->n, b->tag))
        note_failure("pattern overwritten before free", b->p, b->n);
    gm_free(b->p);
    b->p = NULL;
}

/* Blocks left behind by dead threads, freed by later ones (and the main thread). */
enum { LEFT_CAP = 512 };
static struct {
    pthread_mutex_t lock;
    struct block b[LEFT_CAP];
    unsigned next;
} left = { PTHREAD_MUTEX_INITIALIZER, { { 0 } }, 0 };

static void leave_block(struct block *b)
{
    struct block old;
    pthread_mutex_lock(&left.lock);
    unsigned i = left.next++ % LEFT_CAP;
    old = left.b[i];
    left.b[i] = *b;
    pthread_mutex_unlock(&left.lock);
    b->p = NULL; /* no longer ours */
    block_check_free(&old);
}

static void free_left_blocks(void)
{
    for (int i = 0; i < LEFT_CAP; i++)
        block_check_free(&left.b[i]);
}

/* Memory in use by the process, as two numbers that both must stay bounded. */
struct mem {
    uint64_t a, b;
};

#if GM_TEST_HAVE_STATS
static struct mem mem_now(void)
{
    struct gm_stats s;
    gm_get_stats(&s);
    return (struct mem){ s.mapped, s.committed };
}
static const char *mem_names[2] = { "mapped", "committed" };
#else
static uint64_t vm_rss(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    uint64_t kib = 0;
    assert_non_null(f);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            kib = strtoull(line + 6, NULL, 10);
    fclose(f);
    assert_true(kib > 0);
    return kib * 1024;
}
static struct mem mem_now(void)
{
    uint64_t r = vm_rss();
    return (struct mem){ r, r };
}
static const char *mem_names[2] = { "VmRSS", "VmRSS" };
#endif

static void assert_mem_bounded(struct mem quarter, struct mem end)
{
    uint64_t q[2] = { quarter.a, quarter.b }, e[2] = { end.a, end.b };
    for (int i = 0; i < 2; i++)
        if (e[i] >= 2 * q[i] + 16 * MiB)
            fail_msg("%s grew with the thread count: %" PRIu64 " KiB after a quarter of the "
                     "threads, %" PRIu64 " KiB at the end",
                     mem_names[i], q[i] / 1024, e[i] / 1024);
}

/* After every thread has been joined, no dead thread may keep a cache. */
static void assert_no_dead_caches(void)
{
#if GM_TEST_HAVE_STATS
    struct gm_stats s;
    gm_get_stats(&s);
    if (s.threads > 2)
        fail_msg("%" PRIu64 " live thread caches after all threads exited", s.threads);
#endif
}

/* Runs total threads of fn, wave at a time; samples memory after a quarter. */
static void run_waves(void *(*fn)(void *), long total, int wave, struct mem *quarter)
{
    pthread_t t[16];
    long started = 0;
    int sampled = 0;
    while (started < total) {
        int n = 0;
        for (; n < wave && started < total; n++, started++)
            assert_int_equal(pthread_create(&t[n], NULL, fn, (void *)(uintptr_t)started), 0);
        for (int i = 0; i < n; i++)
            assert_int_equal(pthread_join(t[i], NULL), 0);
        if (!sampled && started >= total / 4) {
            *quarter = mem_now();
            sampled = 1;
        }
    }
}

static int reset(void **state)
{
    (void)state;
    clear_failures();
    gm_free(gm_malloc(1)); /* the allocator is initialised before any test key */
    return 0;
}

/* ---- test 1: short-lived threads ----------------------------------------- */

enum { CHURN_BLOCKS = 64 };

static void *churn_thread(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    uint64_t rng = 0x2545F4914F6CDD1Dull ^ (id * 0x9E3779B97F4A7C15ull) ^ 1;
    struct block b[CHURN_BLOCKS];
    for (int i = 0; i < CHURN_BLOCKS; i++)
        block_new(&b[i], pick_size(&rng), id << 20 | (uint64_t)i);
    for (int i = 0; i < CHURN_BLOCKS; i += 2) /* free half in place */
        block_check_free(&b[i]);
    for (int i = 1; i < CHURN_BLOCKS; i += 8) /* leave some to later threads */
        leave_block(&b[i]);
    for (int i = 3; i < CHURN_BLOCKS; i += 2)
        block_check_free(&b[i]);
    return NULL;
}

static void test_churn_short_lived_threads_memory_bounded(void **state)
{
    (void)state;
    struct mem quarter = { 0, 0 };
    run_waves(churn_thread, scaled(5000), 8, &quarter);
    struct mem end = mem_now();
    free_left_blocks();
    assert_no_failures();
    assert_mem_bounded(quarter, end);
    assert_no_dead_caches();
}

/* ---- test 2: destructors that allocate after the cache flush -------------- */

static pthread_key_t late_key;
static atomic_long destructor_calls;

struct late_state {
    struct block early; /* allocated while the thread ran, freed in its destructor */
    int rounds;
};

/* Runs at thread exit.  The allocator's own key was created first, so its
 * flush has already run; re-arming the key brings us back in a later round. */
static void late_destructor(void *arg)
{
    struct late_state *st = arg;
    uint64_t tag = st->early.tag + 1000 + (uint64_t)st->rounds;
    atomic_fetch_add(&destructor_calls, 1);

    struct block b;
    block_new(&b, 24 + (size_t)st->rounds * 1000, tag);
    block_check_free(&b);
    unsigned char *z = gm_calloc(100, 10);
    if (z == NULL || z[0] != 0 || z[999] != 0)
        note_failure("calloc in destructor", z, 1000);
    z = gm_realloc(z, 70000);
    if (z == NULL)
        note_failure("realloc in destructor returned NULL", NULL, 70000);
    gm_free(z);
    block_new(&b, 200, tag + 7);
    leave_block(&b); /* a later thread or main frees it */

    if (++st->rounds < 2) {
        pthread_setspecific(late_key, st);
        return;
    }
    block_check_free(&st->early);
    gm_free(st);
}

static void *late_thread(void *arg)
{
    uint64_t id = (uint64_t)(uintptr_t)arg;
    struct late_state *st = gm_malloc(sizeof *st);
    if (st == NULL) {
        note_failure("malloc returned NULL", NULL, sizeof *st);
        return NULL;
    }
    st->rounds = 0;
    block_new(&st->early, 48 + id % 4000, (id + 1) << 24);
    pthread_setspecific(late_key, st);
    struct block b[16];
    for (int i = 0; i < 16; i++) /* fill the thread's cache before it exits */
        block_new(&b[i], 16 + (size_t)i * 48, (id + 1) << 24 | (uint64_t)(i + 100));
    for (int i = 0; i < 16; i++)
        block_check_free(&b[i]);
    return NULL;
}

static void test_churn_destructor_allocates_after_cache_flush(void **state)
{
    (void)state;
    atomic_store(&destructor_calls, 0);
    assert_int_equal(pthread_key_create(&late_key, late_destructor), 0);
    long total = scaled(1000);
    struct mem quarter = { 0, 0 };
    run_waves(late_thread, total, 8, &quarter);
    struct mem end = mem_now();
    assert_int_equal(pthread_key_delete(late_key), 0);
    free_left_blocks();
    assert_no_failures();
    assert_int_equal(atomic_load(&destructor_calls), 2 * total);
    assert_mem_bounded(quarter, end);
    assert_no_dead_caches();
}

int main(void)
{
    alarm(600); /* a deadlock must fail the run, not hang it */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_churn_short_lived_threads_memory_bounded, reset),
        cmocka_unit_test_setup(test_churn_destructor_allocates_after_cache_flush, reset),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
