/*
 * test_pagecache.c — the per-thread cache of freed large blocks
 * (alloc/pagecache.c), seen through gm_malloc/gm_free.
 *
 * Checked: a freed large block is reused by the next request for the same
 * number of pages on the same thread, and only then; blocks above the page
 * limit are not kept; the bytes kept stay within the per-thread bound; calloc
 * of a reused block is zeroed; statistics count kept blocks as cached, not in
 * use; flushing, thread exit and the epoch trim of an unused cache give the
 * blocks back to the heap.
 */
#include <pthread.h>

#include "gomalloc.h"
#include "mcache.h"
#include "testutil.h"

#define PAGE GM_PAGE_SIZE

/* Whether the heap still sees the block at p as an allocated large block
 * (kept in a page cache counts: its span is not freed). */
static bool span_live(const void *p)
{
    return gm_pagemap_span_of((uintptr_t)p) != NULL;
}

static void test_pagecache_reuses_same_page_count(void **state)
{
    (void)state;
    gm_mcache_flush_current();
    char *p = gm_malloc(100 * KiB);   /* 13 pages */
    assert_non_null(p);
    memset(p, 0x5a, 100 * KiB);
    gm_free(p);
    assert_true(span_live(p));
    char *other = gm_malloc(200 * KiB);   /* another page count: not p */
    assert_ptr_not_equal(other, p);
    char *q = gm_malloc(13 * PAGE - 100);   /* same page count */
    assert_ptr_equal(q, p);
    assert_int_equal(gm_usable_size(q), 13 * PAGE);
    gm_free(q);
    gm_free(other);
    gm_mcache_flush_current();
}

static void test_pagecache_keeps_no_block_above_limit(void **state)
{
    (void)state;
    gm_mcache_flush_current();
    size_t size = (GM_PAGE_CACHE_MAX_PAGES + 1) * PAGE;
    char *p = gm_malloc(size);
    assert_non_null(p);
    gm_free(p);
    assert_false(span_live(p));
    assert_int_equal(gm_mcache_current()->pages.bytes, 0);
}

static void test_pagecache_bounded_per_thread(void **state)
{
    (void)state;
    gm_mcache_flush_current();
    enum { N = 16 };
    size_t size = GM_PAGE_CACHE_MAX_PAGES * PAGE;
    char *ps[N];
    for (int i = 0; i < N; i++) {
        ps[i] = gm_malloc(size);
        assert_non_null(ps[i]);
    }
    struct gm_stats before, after;
    gm_get_stats(&before);
    int kept = 0;
    for (int i = 0; i < N; i++) {
        gm_free(ps[i]);
        kept += span_live(ps[i]);
    }
    gm_get_stats(&after);
    gm_mcache_t *c = gm_mcache_current();
    assert_true(c->pages.bytes <= GM_PAGE_CACHE_BYTES);
    assert_int_equal((size_t)kept * size, c->pages.bytes);
    assert_int_equal(kept, GM_PAGE_CACHE_BYTES / size);
    /* Kept blocks are cached, not in use; the others went back to the heap. */
    assert_int_equal(before.large_in_use - after.large_in_use, (uint64_t)N * size);
    assert_int_equal(after.cached - before.cached, c->pages.bytes);
    gm_mcache_flush_current();
    assert_int_equal(c->pages.bytes, 0);
    for (int i = 0; i < N; i++)
        assert_false(span_live(ps[i]));
}

static void test_pagecache_calloc_zeroes_reused_block(void **state)
{
    (void)state;
    gm_mcache_flush_current();
    size_t size = 20 * PAGE;
    unsigned char *p = gm_malloc(size);
    assert_non_null(p);
    memset(p, 0xff, size);
    gm_free(p);
    unsigned char *z = gm_calloc(1, size);
    assert_ptr_equal(z, p);
    for (size_t i = 0; i < size; i++)
        if (z[i])
            fail_msg("byte %zu of a reused calloc block is %u", i, z[i]);
    gm_free(z);
    gm_mcache_flush_current();
}

static void *free_in_thread(void *arg)
{
    char *p = gm_malloc(64 * KiB);
    *(char **)arg = p;
    gm_free(p);
    return span_live(p) ? p : NULL;   /* kept until the thread exits */
}

static void test_pagecache_flushed_at_thread_exit(void **state)
{
    (void)state;
    char *p = NULL;
    pthread_t t;
    void *kept;
    assert_int_equal(pthread_create(&t, NULL, free_in_thread, &p), 0);
    assert_int_equal(pthread_join(t, &kept), 0);
    assert_ptr_equal(kept, p);
    assert_false(span_live(p));
}

/* Runs one slow path of the small-object cache (a refill of a list that is
 * empty), which is where a thread notices a new scavenger epoch. */
static void small_slow_path(void)
{
    gm_mcache_flush_current();
    gm_free(gm_malloc(48));
}

static void test_pagecache_epoch_trim_returns_unused_blocks(void **state)
{
    (void)state;
    small_slow_path();
    char *p = gm_malloc(48 * KiB), *q = gm_malloc(80 * KiB);
    gm_free(p);
    /* An epoch in which the thread reused a cached block keeps the cache. */
    __atomic_add_fetch(&gm_scavenger_epoch, 1, __ATOMIC_RELAXED);
    gm_free(q);
    assert_ptr_equal(gm_malloc(48 * KiB), p);
    gm_free(p);
    gm_free(gm_malloc(3000));   /* an empty list: the refill sees the epoch */
    assert_true(span_live(p));
    /* The next epoch, with no reuse, gives everything back. */
    __atomic_add_fetch(&gm_scavenger_epoch, 1, __ATOMIC_RELAXED);
    void *r = gm_malloc(20000);   /* a class whose list is empty: a refill */
    assert_false(span_live(p));
    assert_false(span_live(q));
    gm_free(r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pagecache_reuses_same_page_count),
        cmocka_unit_test(test_pagecache_keeps_no_block_above_limit),
        cmocka_unit_test(test_pagecache_bounded_per_thread),
        cmocka_unit_test(test_pagecache_calloc_zeroes_reused_block),
        cmocka_unit_test(test_pagecache_flushed_at_thread_exit),
        cmocka_unit_test(test_pagecache_epoch_trim_returns_unused_blocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
