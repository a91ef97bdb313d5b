/*
 * test_mheap.c — the page heap (alloc/mheap.c, release.c) through its own
 * functions.
 *
 * Page runs come from gm_mheap_alloc_span / gm_mheap_alloc_large and go back
 * with gm_mheap_free_span; nothing else in this program uses the heap, so
 * statistics move only with what a test does.  Placement is checked against
 * the documented policy, address-ordered first fit: after a run of n pages
 * is taken from the lowest place that has one, no free n-page run lies below
 * it, which makes "free it and ask again" land on the same address whatever
 * earlier tests left behind.  Requests of 5 to 128 pages first try runs that
 * frees recorded (close fits); tests that need first fit for those sizes
 * forget the records first (gm_place_forget_fits).
 *
 * Tests that need a run the heap cannot serve without growing ask for a whole
 * arena (64 MiB) until the heap maps a new one; every such run is given back.
 * Fault injection (gm_os_fail_after) is reset after every test.
 */
#include "internal.h"
#include "testing.h"
#include "testutil.h"

#define PAGE ((uintptr_t)GM_PAGE_SIZE)
#define SPAN_CLS 1   /* class recorded in spans made here; only the pagemap reads it */

static bool release_zeroes(void)
{
    const char *env = getenv("GOMALLOC_MADVISE");
    return !(env && strcmp(env, "free") == 0);
}

static struct gm_heap_stats stats(void)
{
    struct gm_heap_stats st;
    gm_mheap_stats(&st);
    assert_true(st.committed == st.in_use + st.free + st.released);
    return st;
}

static gm_span_t *span(uint32_t npages)
{
    gm_span_t *s = gm_mheap_alloc_span(npages, SPAN_CLS);
    assert_non_null(s);
    assert_int_equal(s->npages, npages);
    assert_int_equal(s->state, GM_SPAN_SMALL);
    assert_true(gm_test_aligned(s->base, PAGE));
    return s;
}

static int reset_faults(void **state)
{
    (void)state;
    gm_os_fail_after(0);
    return 0;
}

/* Takes whole-arena blocks until one comes from a newly mapped arena (none of
 * the existing arenas is left with a whole arena free).  The earlier blocks go
 * to keep[] (at most max); returns the new one. */
static gm_span_t *take_new_arena(gm_span_t **keep, size_t max, size_t *nkeep)
{
    *nkeep = 0;
    for (;;) {
        uint64_t mapped = stats().mapped;
        gm_span_t *s = gm_mheap_alloc_large(GM_ARENA_SIZE, PAGE);
        assert_non_null(s);
        if (stats().mapped > mapped)
            return s;
        assert_true(*nkeep < max);
        keep[(*nkeep)++] = s;
    }
}

static void free_all(gm_span_t **spans, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gm_mheap_free_span(spans[i]);
}

/* The first i with s[i] .. s[i + k - 1] (blocks of pages pages) at adjacent
 * addresses, -1 if none. */
static int adjacent_blocks(gm_span_t **s, int n, uintptr_t pages, int k)
{
    for (int i = 0; i + k <= n; i++) {
        int j = 1;
        while (j < k && s[i + j]->base == s[i + j - 1]->base + pages * PAGE)
            j++;
        if (j == k)
            return i;
    }
    return -1;
}

static void test_mheap_spans_aligned_distinct_disjoint(void **state)
{
    (void)state;
    enum { N = 200 };
    gm_span_t *spans[N];
    uintptr_t ends[N];
    for (int i = 0; i < N; i++) {
        spans[i] = span((uint32_t)(i % 10) + 1);
        unsigned char *p = (unsigned char *)spans[i]->base;
        p[0] = (unsigned char)i;   /* committed: writable from first ... */
        p[spans[i]->npages * PAGE - 1] = (unsigned char)~i;   /* ... to last byte */
    }
    for (int i = 0; i < N; i++) {
        unsigned char *p = (unsigned char *)spans[i]->base;
        assert_int_equal(p[0], (unsigned char)i);
        assert_int_equal(p[spans[i]->npages * PAGE - 1], (unsigned char)~i);
        assert_ptr_equal(gm_pagemap_span_of(spans[i]->base), spans[i]);
        ends[i] = spans[i]->base;
    }
    qsort(ends, N, sizeof ends[0], gm_test_cmp_uptr);
    for (int i = 1; i < N; i++) {
        gm_span_t *prev = gm_pagemap_span_of(ends[i - 1]);
        assert_non_null(prev);
        assert_true(prev->base + prev->npages * PAGE <= ends[i]);
    }
    free_all(spans, N);
}

static void test_mheap_first_fit_reuses_freed_middle_run(void **state)
{
    (void)state;
    for (uint32_t n = 1; n <= 4; n += 3) {
        gm_span_t *a = span(n), *b = span(n), *c = span(n);
        uintptr_t at = b->base;
        gm_mheap_free_span(b);
        b = span(n);
        assert_true(b->base == at);
        gm_mheap_free_span(a);
        gm_mheap_free_span(b);
        gm_mheap_free_span(c);
    }
}

/* A run of 5 to 128 pages freed between blocks in use is what the next
 * request of its length gets, even when first fit would take a lower hole. */
static void test_mheap_close_fit_reuses_recent_run(void **state)
{
    (void)state;
    enum { N = 40, PAGES = 20 };
    gm_place_forget_fits();   /* placement below is first fit until a free */
    gm_span_t *s[N];
    for (int i = 0; i < N; i++)
        s[i] = gm_mheap_alloc_large(PAGES * PAGE, PAGE);
    int lo = adjacent_blocks(s, N, PAGES, 4);
    assert_true(lo >= 0);
    uintptr_t hole = s[lo]->base, target = s[lo + 2]->base;
    for (int i = lo; i < lo + 3; i++)
        gm_mheap_free_span(s[i]);
    /* No run of 20 below s[lo] (first fit put it there): three requests
     * fill the 60 free pages in order. */
    gm_place_forget_fits();
    gm_span_t *x = gm_mheap_alloc_large(PAGES * PAGE, PAGE);
    gm_span_t *y = gm_mheap_alloc_large(PAGES * PAGE, PAGE);
    gm_span_t *z = gm_mheap_alloc_large(PAGES * PAGE, PAGE);
    assert_true(x->base == hole && y->base == hole + PAGES * PAGE && z->base == target);
    gm_mheap_free_span(x);   /* a hole of 20 or more at the bottom */
    gm_mheap_free_span(z);   /* exactly 20, between y and s[lo + 3] */
    gm_span_t *w = gm_mheap_alloc_large(PAGES * PAGE, PAGE);
    assert_true(w->base == target);   /* first fit would give hole */
    gm_span_t *v = gm_mheap_alloc_large(PAGES * PAGE, PAGE);
    assert_true(v->base == hole);
    gm_mheap_free_span(v);
    gm_mheap_free_span(w);
    gm_mheap_free_span(y);
    for (int i = 0; i < N; i++)
        if (i < lo || i > lo + 2)
            gm_mheap_free_span(s[i]);
}

/* Single pages are taken lowest first; once three in a row are adjacent no
 * free page lies below the first of them. */
static void test_mheap_free_neighbours_coalesce(void **state)
{
    (void)state;
    enum { MAX = 4096 };
    gm_span_t **held = malloc(MAX * sizeof *held);
    assert_non_null(held);
    size_t n = 0;
    gm_span_t *a, *b, *c;
    for (;;) {
        assert_true(n + 3 <= MAX);
        a = span(1);
        b = span(1);
        c = span(1);
        if (b->base == a->base + PAGE && c->base == b->base + PAGE)
            break;
        held[n++] = a;
        held[n++] = b;
        held[n++] = c;
    }
    uintptr_t at = a->base;
    gm_mheap_free_span(a);
    gm_mheap_free_span(b);
    gm_span_t *two = span(2);
    assert_true(two->base == at);
    gm_mheap_free_span(two);
    gm_mheap_free_span(c);
    gm_span_t *three = span(3);
    assert_true(three->base == at);
    gm_mheap_free_span(three);
    free_all(held, n);
    free(held);
}

/* The search hints never hide a run: after searches for 2 pages have gone
 * past a 3-page hole's word, a free that makes the hole still has the next
 * 2-page request land in it (first fit). */
static void test_mheap_search_hint_sees_new_hole(void **state)
{
    (void)state;
    enum { MAX = 8192 };
    gm_span_t **held = malloc(MAX * sizeof *held);
    assert_non_null(held);
    size_t n = 0;
    gm_span_t *p[6];
    for (;;) {   /* six adjacent single pages, everything below them in use */
        assert_true(n + 6 <= MAX);
        for (int i = 0; i < 6; i++)
            p[i] = span(1);
        bool adjacent = true;
        for (int i = 1; i < 6; i++)
            adjacent &= p[i]->base == p[0]->base + (uintptr_t)i * PAGE;
        if (adjacent)
            break;
        for (int i = 0; i < 6; i++)
            held[n++] = p[i];
    }
    uintptr_t at = p[0]->base;
    gm_mheap_free_span(p[0]);
    gm_mheap_free_span(p[2]);
    gm_mheap_free_span(p[4]);
    /* 2-page runs, first fit, until one lies a bitmap word (64 pages) past the
     * holes: the searches that found them moved the hint past the holes. */
    gm_span_t *x;
    do {
        assert_true(n < MAX);
        x = span(2);
        assert_true(x->base > p[5]->base);
        held[n++] = x;
    } while (x->base < at + 64 * PAGE);
    gm_mheap_free_span(p[1]);   /* p0 .. p2: a 3-page hole */
    gm_span_t *y = span(2);
    assert_true(y->base == at);
    gm_mheap_free_span(y);
    gm_mheap_free_span(p[3]);
    gm_mheap_free_span(p[5]);
    while (n > 0)
        gm_mheap_free_span(held[--n]);
    free(held);
}

static void test_mheap_large_aligned(void **state)
{
    (void)state;
    struct gm_heap_stats before = stats();
    for (size_t align = 8 * KiB; align <= 4 * MiB; align *= 2) {
        static const size_t sizes[] = {40 * KiB, 300 * KiB + 5, 2 * MiB};
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            gm_span_t *s = gm_mheap_alloc_large(sizes[k], align);
            assert_non_null(s);
            assert_true(gm_test_aligned(s->base, align));
            assert_int_equal(s->cls, 0);
            assert_int_equal(s->state, GM_SPAN_LARGE);
            assert_int_equal(s->npages, (sizes[k] + PAGE - 1) / PAGE);
            assert_true(s->large_size == s->npages * PAGE);
            assert_ptr_equal(gm_pagemap_span_of(s->base), s);
            struct gm_heap_stats mid = stats();
            assert_true(mid.large_blocks == before.large_blocks + 1);
            assert_true(mid.large_bytes == before.large_bytes + s->large_size);
            assert_true(mid.in_use == before.in_use + s->large_size);
            ((volatile char *)s->base)[0] = 1;
            ((volatile char *)s->base)[s->large_size - 1] = 1;
            gm_mheap_free_span(s);
            struct gm_heap_stats after = stats();
            assert_true(after.large_blocks == before.large_blocks);
            assert_true(after.large_bytes == before.large_bytes);
            assert_true(after.in_use == before.in_use);
        }
    }
}

/* Pages never handed out since the arena was mapped are zero, and say so. */
static void test_mheap_fresh_run_is_zero(void **state)
{
    (void)state;
    gm_span_t *keep[16];
    size_t nkeep;
    gm_span_t *s = take_new_arena(keep, 16, &nkeep);
    assert_int_equal(s->fresh_zero, 1);
    for (uintptr_t off = 0; off < s->large_size; off += 4096)
        assert_int_equal(((volatile uint64_t *)(s->base + off))[0], 0);
    gm_mheap_free_span(s);
    free_all(keep, nkeep);
}

static void test_mheap_reused_run_not_zero(void **state)
{
    (void)state;
    gm_span_t *s = span(2);
    uintptr_t at = s->base;
    memset((void *)at, 0xAB, 2 * PAGE);
    gm_mheap_free_span(s);
    s = span(2);
    assert_true(s->base == at);
    assert_int_equal(s->fresh_zero, 0);
    gm_mheap_free_span(s);
    /* Handed out but not written counts too: the heap cannot know. */
    s = span(2);
    assert_true(s->base == at);
    assert_int_equal(s->fresh_zero, 0);
    gm_mheap_free_span(s);
}

static void test_mheap_release_all_makes_runs_zero(void **state)
{
    (void)state;
    if (!release_zeroes())
        skip();   /* MADV_FREE: released pages are not known to be zero */
    gm_span_t *s = span(3);
    uintptr_t at = s->base;
    memset((void *)at, 0xCD, 3 * PAGE);
    gm_mheap_free_span(s);
    assert_true(gm_mheap_release_all() >= 3 * PAGE);
    s = span(3);
    assert_true(s->base == at);
    assert_int_equal(s->fresh_zero, 1);
    assert_true(gm_test_all_zero((void *)at, 3 * PAGE));
    gm_mheap_free_span(s);
}

/* Pages of [addr, addr + n pages) with their released bit set. */
static uint32_t released_pages_in(uintptr_t addr, uint32_t n)
{
    gm_arena_t *a = gm_pagemap_arena(addr);
    assert_non_null(a);
    uint32_t count = 0;
    for (uintptr_t p = gm_page_index(addr); p < gm_page_index(addr) + n; p++)
        count += (uint32_t)((a->released_bits[p / 64] >> (p % 64)) & 1);
    return count;
}

/* A release step for runs of at least 8 pages gives back a free 16-page run
 * and leaves a 3-page one backed; a step for any run then takes it. */
static void test_mheap_release_step_long_runs_first(void **state)
{
    (void)state;
    gm_mheap_release_all();   /* from here on only this test's frees are backed */
    gm_span_t *run16 = gm_mheap_alloc_large(16 * PAGE, PAGE);
    gm_span_t *block = gm_mheap_alloc_large(24 * PAGE, PAGE);
    assert_non_null(run16);
    assert_non_null(block);
    assert_true(gm_mheap_resize_large(block, 21 * PAGE));   /* frees its last 3 pages */
    uintptr_t tail = block->base + 21 * PAGE, at16 = run16->base;
    gm_mheap_free_span(run16);
    assert_int_equal(released_pages_in(at16, 16), 0);
    assert_int_equal(released_pages_in(tail, 3), 0);

    assert_int_equal(gm_mheap_release_step(false, 0, 8), 16 * PAGE);
    assert_int_equal(released_pages_in(at16, 16), 16);
    assert_int_equal(released_pages_in(tail, 3), 0);
    assert_int_equal(gm_mheap_release_step(false, 0, 8), 0);

    assert_int_equal(gm_mheap_release_step(true, 0, 1), 3 * PAGE);
    assert_int_equal(released_pages_in(tail, 3), 3);
    gm_mheap_free_span(block);
    gm_mheap_release_all();
}

static void test_mheap_huge_aligned_and_registered(void **state)
{
    (void)state;
    static const size_t aligns[] = {8 * KiB, 64 * KiB, 2 * MiB, 64 * MiB};
    for (size_t k = 0; k < sizeof aligns / sizeof aligns[0]; k++) {
        size_t size = 17 * MiB + 123;
        size_t dirty;
        gm_mheap_release_all();   /* a new reservation, not a cached one */
        struct gm_heap_stats before = stats();
        void *p = gm_huge_alloc(size, aligns[k], &dirty);
        assert_non_null(p);
        uintptr_t addr = (uintptr_t)p;
        assert_true(gm_test_aligned(addr, aligns[k]));
        gm_huge_t *a = gm_pagemap_huge(addr);
        assert_non_null(a);
        assert_null(gm_pagemap_arena(a->lo));
        assert_true(a->lo == addr);
        assert_true(a->size >= size && a->size % PAGE == 0);
        assert_ptr_equal(gm_pagemap_huge(addr + size - 1), a);
        assert_true(dirty == 0);
        assert_true(gm_test_all_zero(p, 4096));
        ((volatile char *)p)[0] = 1;
        ((volatile char *)p)[size - 1] = 1;
        struct gm_heap_stats mid = stats();
        assert_true(mid.huge == before.huge + a->size);
        assert_true(mid.in_use == before.in_use + a->size);
        /* Whole 64 MiB slots of address space, only the block committed. */
        assert_true(a->hi - a->lo >= a->size && (a->hi - a->lo) % GM_ARENA_SIZE == 0);
        assert_true(mid.mapped == before.mapped + (a->hi - a->lo));
        assert_true(mid.committed == before.committed + a->size);
        assert_true(mid.large_blocks == before.large_blocks + 1);
        gm_huge_free(a);
        gm_mheap_release_all();   /* unmaps freed huge blocks kept for reuse */
        assert_null(gm_pagemap_huge(addr));
        assert_null(gm_pagemap_huge(addr + size - 1));
        struct gm_heap_stats after = stats();
        assert_true(after.huge == before.huge);
        assert_true(after.in_use == before.in_use);
        assert_true(after.mapped == before.mapped);
        assert_true(after.large_blocks == before.large_blocks);
    }
}

/* Several huge blocks alive at once: each is mapped and registered on its
 * own (their mappings may share 64 MiB pagemap slots with each other), and
 * freeing one unregisters only that one. */
static void test_mheap_huge_free_unregisters_only_itself(void **state)
{
    (void)state;
    enum { N = 8 };
    size_t size = 16 * MiB;
    void *p[N];
    gm_huge_t *a[N];
    for (int i = 0; i < N; i++) {
        size_t dirty;
        p[i] = gm_huge_alloc(size, PAGE, &dirty);
        if (!p[i])
            fail_msg("gm_huge_alloc(16 MiB) #%d returned NULL with %d huge blocks alive",
                     i, i);
        a[i] = gm_pagemap_huge((uintptr_t)p[i]);
        assert_non_null(a[i]);
        assert_null(gm_pagemap_arena(a[i]->lo));
        assert_true(a[i]->lo == (uintptr_t)p[i]);
    }
    for (int i = 0; i < N; i++) {
        gm_huge_free(a[i]);
        gm_mheap_release_all();
        assert_null(gm_pagemap_huge((uintptr_t)p[i]));
        for (int j = i + 1; j < N; j++) {
            assert_ptr_equal(gm_pagemap_huge((uintptr_t)p[j]), a[j]);
            assert_ptr_equal(gm_pagemap_huge((uintptr_t)p[j] + size - 1), a[j]);
        }
    }
}

static void test_mheap_stats_track_alloc_free_release(void **state)
{
    (void)state;
    struct gm_heap_stats st0 = stats();
    gm_span_t *s = span(4);
    struct gm_heap_stats st1 = stats();
    assert_true(st1.in_use == st0.in_use + 4 * PAGE);
    memset((void *)s->base, 1, 4 * PAGE);
    gm_mheap_free_span(s);
    struct gm_heap_stats st2 = stats();
    assert_true(st2.in_use == st0.in_use);
    assert_true(st2.committed == st1.committed);
    assert_true(st2.free == st1.free + 4 * PAGE);
    assert_true(st2.released == st1.released);
    size_t given = gm_mheap_release_all();
    struct gm_heap_stats st3 = stats();
    assert_true(given == st2.free);
    assert_true(st3.free == 0);
    assert_true(st3.released == st2.released + st2.free);
    assert_true(st3.committed == st2.committed);
    assert_true(st3.in_use == st2.in_use);
    assert_int_equal(gm_mheap_release_all(), 0);   /* nothing left to give */
    /* Taking released pages back moves them out of "released". */
    s = span(4);
    struct gm_heap_stats st4 = stats();
    assert_true(st4.in_use == st3.in_use + 4 * PAGE);
    assert_true(st4.released + st4.free ==
                st3.released + st3.free + (st4.committed - st3.committed) - 4 * PAGE);
    gm_mheap_free_span(s);
    assert_true(stats().in_use == st0.in_use);
}

/* A freed 1-page small span waits for the next 1-page request: it comes back
 * whole (base, one page, the new class), not known zero, and while it waits
 * its page is free as far as the pagemap and the statistics tell; releasing
 * memory puts it back among the free pages first. */
static void test_mheap_single_page_reused(void **state)
{
    (void)state;
    gm_mheap_release_all();   /* nothing waiting from earlier tests */
    gm_span_t *s = span(1);
    uintptr_t at = s->base;
    memset((void *)at, 0x5A, PAGE);
    assert_ptr_equal(gm_pagemap_span_of(at), s);
    struct gm_heap_stats st0 = stats();
    gm_mheap_free_span(s);
    assert_null(gm_pagemap_span_of(at));
    gm_arena_t *a = gm_pagemap_arena(at);
    assert_non_null(a);
    assert_int_equal(a->page_info[gm_page_index(at)], 0);
    assert_null(a->spans[gm_page_index(at)]);
    struct gm_heap_stats st1 = stats();
    assert_true(st1.in_use == st0.in_use - PAGE);
    assert_true(st1.free == st0.free + PAGE);
    assert_true(st1.released == st0.released);
    assert_true(st1.committed == st0.committed);

    gm_span_t *r = gm_mheap_alloc_span(1, SPAN_CLS + 1);
    assert_non_null(r);
    assert_true(r->base == at);
    assert_int_equal(r->npages, 1);
    assert_int_equal(r->cls, SPAN_CLS + 1);
    assert_int_equal(r->state, GM_SPAN_SMALL);
    assert_int_equal(r->fresh_zero, 0);
    assert_ptr_equal(r->arena, a);
    assert_int_equal(r->nalloc, 0);
    assert_int_equal(r->freeindex, 0);
    for (int w = 0; w < GM_SPAN_BITMAP_WORDS; w++)
        assert_true(r->free_bits[w] == 0);
    assert_int_equal(gm_page_info_class(a->page_info[gm_page_index(at)]), SPAN_CLS + 1);
    assert_ptr_equal(a->spans[gm_page_index(at)], r);
    assert_ptr_equal(gm_pagemap_span_of(at), r);
    struct gm_heap_stats st2 = stats();
    assert_true(st2.in_use == st0.in_use);
    assert_true(st2.free == st0.free);

    /* A waiting page is given back like any free page. */
    gm_mheap_free_span(r);
    struct gm_heap_stats st3 = stats();
    assert_true(st3.free == st0.free + PAGE);
    size_t given = gm_mheap_release_all();
    assert_true(given == st3.free);
    struct gm_heap_stats st4 = stats();
    assert_true(st4.free == 0);
    assert_true(st4.released == st3.released + st3.free);
    assert_true(st4.in_use == st3.in_use);
    assert_true(st4.committed == st3.committed);
    assert_int_equal(gm_mheap_release_all(), 0);
    if (release_zeroes()) {   /* back in the free set: comes back zero */
        s = span(1);
        assert_true(s->base == at);
        assert_int_equal(s->fresh_zero, 1);
        assert_true(gm_test_all_zero((void *)at, PAGE));
        gm_mheap_free_span(s);
    }
}

/* gm_mheap_alloc_spans hands out n spans in one call, each as
 * gm_mheap_alloc_span would (pages of its own, the class, pagemap entries),
 * single pages first off the stack of freed ones, then from the bitmaps;
 * gm_mheap_free_spans takes a list of them back. */
static void test_mheap_span_batches(void **state)
{
    (void)state;
    enum { N = 6 };
    const uint8_t cls = SPAN_CLS + 2;
    uint32_t sizes[] = {1, 3};
    for (size_t k = 0; k < 2; k++) {
        uint32_t npages = sizes[k];
        struct gm_heap_stats st0 = stats();
        gm_span_t *waiting[2] = {span(npages), span(npages)};
        gm_mheap_free_span(waiting[0]);
        gm_mheap_free_span(waiting[1]);
        gm_span_t *out[N];
        uintptr_t bases[N];
        assert_int_equal(gm_mheap_alloc_spans(npages, cls, N, out), N);
        for (int i = 0; i < N; i++) {
            gm_span_t *s = out[i];
            assert_int_equal(s->npages, npages);
            assert_int_equal(s->cls, cls);
            assert_int_equal(s->state, GM_SPAN_SMALL);
            assert_int_equal(s->nalloc, 0);
            assert_int_equal(s->freeindex, 0);
            for (int w = 0; w < GM_SPAN_BITMAP_WORDS; w++)
                assert_true(s->free_bits[w] == 0);
            assert_true(gm_test_aligned(s->base, PAGE));
            assert_ptr_equal(gm_pagemap_span_of(s->base), s);
            gm_arena_t *a = gm_pagemap_arena(s->base);
            for (uint32_t p = 0; p < npages; p++)
                assert_int_equal(gm_page_info_class(a->page_info[gm_page_index(s->base) + p]), cls);
            bases[i] = s->base;
            s->next = i + 1 < N ? out[i + 1] : NULL;
        }
        gm_test_assert_disjoint(bases, N, npages * PAGE);
        assert_true(stats().in_use == st0.in_use + N * npages * PAGE);
        gm_mheap_free_spans(out[0]);
        for (int i = 0; i < N; i++) {
            gm_arena_t *a = gm_pagemap_arena(bases[i]);
            assert_null(gm_pagemap_span_of(bases[i]));
            for (uint32_t p = 0; p < npages; p++) {
                assert_int_equal(a->page_info[gm_page_index(bases[i]) + p], 0);
                assert_null(a->spans[gm_page_index(bases[i]) + p]);
            }
        }
        assert_true(stats().in_use == st0.in_use);
    }
}

/* Waiting spans do not keep a longer run from forming: first fit for twice
 * their length finds the run two neighbours make once both are freed (one
 * page each, as the 8 KiB class's spans are, and three, as a 24 KiB class's
 * are). */
static void test_mheap_stacked_spans_coalesce_for_longer_runs(void **state)
{
    (void)state;
    enum { MAX = 4096 };
    gm_span_t **held = malloc(MAX * sizeof *held);
    assert_non_null(held);
    const uint32_t lengths[] = {1, 3};
    for (size_t k = 0; k < 2; k++) {
        uint32_t npages = lengths[k];
        size_t n = 0;
        gm_mheap_release_all();   /* spans come lowest first from here on */
        gm_span_t *a = span(npages), *b;
        for (;;) {
            assert_true(n + 1 < MAX);
            b = span(npages);
            if (b->base == a->base + npages * PAGE)
                break;
            held[n++] = a;
            a = b;
        }
        uintptr_t at = a->base;
        struct gm_heap_stats st0 = stats();
        gm_mheap_free_span(b);
        gm_mheap_free_span(a);
        assert_true(stats().free == st0.free + 2 * npages * PAGE);
        gm_place_forget_fits();   /* 6 pages: first fit, not a recorded run */
        gm_span_t *two = span(2 * npages);
        assert_true(two->base == at);
        assert_true(stats().in_use == st0.in_use);
        gm_mheap_free_span(two);
        free_all(held, n);
    }
    free(held);
}

/* A freed small span of up to 16 pages waits for the next request of its
 * length, which gets it back (the last freed first) as a new span of the
 * class asked for, its pagemap entries set again; while it waits its pages
 * count as free and its pagemap entries are clear, as any freed span's. */
static void test_mheap_small_spans_reused_by_length(void **state)
{
    (void)state;
    const uint32_t lengths[] = {1, 2, 5, 10, 16};
    for (size_t k = 0; k < sizeof lengths / sizeof lengths[0]; k++) {
        uint32_t npages = lengths[k];
        gm_span_t *first = span(npages), *second = span(npages);
        uintptr_t at1 = first->base, at2 = second->base;
        struct gm_heap_stats st0 = stats();
        gm_mheap_free_span(first);
        gm_mheap_free_span(second);
        assert_true(stats().free == st0.free + 2 * npages * PAGE);
        assert_true(stats().in_use == st0.in_use - 2 * npages * PAGE);
        assert_null(gm_pagemap_span_of(at1));
        assert_null(gm_pagemap_span_of(at2 + (npages - 1) * PAGE));
        gm_span_t *again = gm_mheap_alloc_span(npages, SPAN_CLS + 1);
        assert_non_null(again);
        assert_true(again->base == at2);
        assert_int_equal(again->npages, npages);
        assert_int_equal(again->cls, SPAN_CLS + 1);
        assert_int_equal(again->state, GM_SPAN_SMALL);
        assert_int_equal(again->nalloc, 0);
        gm_arena_t *a = gm_pagemap_arena(at2);
        for (uint32_t p = 0; p < npages; p++) {
            assert_ptr_equal(gm_pagemap_span_of(at2 + p * PAGE), again);
            assert_int_equal(gm_page_info_class(a->page_info[gm_page_index(at2) + p]), SPAN_CLS + 1);
        }
        gm_span_t *next = span(npages);
        assert_true(next->base == at1);
        assert_true(stats().in_use == st0.in_use);
        gm_mheap_free_span(next);
        gm_mheap_free_span(again);
    }
}

/* A block no arena can hold while the OS refuses the next mapping: NULL, the
 * heap unchanged, and the same request succeeds once the OS agrees again. */
static void test_mheap_oom_large_then_recovers(void **state)
{
    (void)state;
    gm_span_t *keep[17];
    size_t nkeep;
    keep[16] = take_new_arena(keep, 16, &nkeep);
    struct gm_heap_stats before = stats();
    gm_os_fail_after(1);
    assert_null(gm_mheap_alloc_large(GM_ARENA_SIZE, PAGE));
    struct gm_heap_stats after = stats();
    assert_true(after.mapped == before.mapped);
    assert_true(after.in_use == before.in_use);
    assert_true(after.large_blocks == before.large_blocks);
    gm_span_t *s = gm_mheap_alloc_large(GM_ARENA_SIZE, PAGE);
    assert_non_null(s);
    assert_true(stats().mapped > before.mapped);
    ((volatile char *)s->base)[s->large_size - 1] = 1;
    gm_mheap_free_span(s);
    /* Smaller requests work too, and so does a 20 MiB block. */
    gm_span_t *t = gm_mheap_alloc_large(20 * MiB, PAGE), *u = span(1);
    assert_non_null(t);
    gm_mheap_free_span(t);
    gm_mheap_free_span(u);
    gm_mheap_free_span(keep[16]);
    free_all(keep, nkeep);
}

static void test_mheap_oom_huge_then_recovers(void **state)
{
    (void)state;
    size_t dirty;
    gm_mheap_release_all();   /* no cached huge mapping may serve the request */
    struct gm_heap_stats before = stats();
    gm_os_fail_after(1);
    assert_null(gm_huge_alloc(20 * MiB, PAGE, &dirty));
    struct gm_heap_stats after = stats();
    assert_true(after.huge == before.huge);
    assert_true(after.mapped == before.mapped);
    gm_os_fail_after(2);   /* the reservation works, its commit does not */
    assert_null(gm_huge_alloc(20 * MiB, PAGE, &dirty));
    after = stats();
    assert_true(after.huge == before.huge);
    assert_true(after.mapped == before.mapped);
    void *p = gm_huge_alloc(20 * MiB, PAGE, &dirty);
    assert_non_null(p);
    gm_huge_t *a = gm_pagemap_huge((uintptr_t)p);
    assert_non_null(a);
    assert_null(gm_pagemap_arena(a->lo));
    gm_huge_free(a);
    assert_true(stats().huge == before.huge);
}

/* A freed huge reservation hosts the next huge block of any size up to its
 * own, at the same address: a smaller one keeps the faulted tail as slack, a
 * bigger one faults in only the part above what was backed.  *dirty covers
 * what was written; malloc_trim's release unmaps the reservation. */
static void test_mheap_huge_reused_for_other_sizes(void **state)
{
    (void)state;
    size_t dirty;
    gm_mheap_release_all();
    char *p = gm_huge_alloc(24 * MiB, PAGE, &dirty);
    assert_non_null(p);
    assert_true(dirty == 0);
    memset(p, 7, 24 * MiB);
    gm_huge_t *a = gm_pagemap_huge((uintptr_t)p);
    gm_huge_free(a);
    assert_ptr_equal(gm_pagemap_huge((uintptr_t)p), a);   /* kept */
    assert_true(stats().free >= 24 * MiB);

    char *q = gm_huge_alloc(17 * MiB, PAGE, &dirty);   /* smaller */
    assert_ptr_equal(q, p);
    assert_true(dirty == 17 * MiB);
    assert_true(a->size == 17 * MiB && a->backed == 24 * MiB);
    assert_true(stats().free >= 7 * MiB);                      /* the slack */
    gm_huge_free(a);

    char *r = gm_huge_alloc(40 * MiB, PAGE, &dirty);   /* bigger */
    assert_ptr_equal(r, p);
    assert_true(dirty == 24 * MiB);
    assert_true(r[24 * MiB - 1] == 7);
    assert_true(gm_test_all_zero(r + 24 * MiB, 16 * MiB));
    memset(r, 1, 40 * MiB);
    gm_huge_free(a);

    char *big = gm_huge_alloc(64 * MiB + PAGE, PAGE, &dirty);   /* past it: new */
    assert_non_null(big);
    assert_true(big != p && dirty == 0);
    gm_huge_free(gm_pagemap_huge((uintptr_t)big));
    assert_true(gm_mheap_release_all() >= 40 * MiB);
    assert_null(gm_pagemap_huge((uintptr_t)p));
    assert_null(gm_pagemap_huge((uintptr_t)big));
    assert_true(stats().free == 0);
}

/* Of several cached reservations the one whose backed bytes cover the
 * request with the least to spare is taken. */
static void test_mheap_huge_reuse_best_fit(void **state)
{
    (void)state;
    static const size_t sizes[] = {40 * MiB, 20 * MiB, 30 * MiB};
    char *p[3];
    size_t dirty;
    gm_mheap_release_all();
    for (int i = 0; i < 3; i++) {
        p[i] = gm_huge_alloc(sizes[i], PAGE, &dirty);
        assert_non_null(p[i]);
    }
    for (int i = 0; i < 3; i++)
        gm_huge_free(gm_pagemap_huge((uintptr_t)p[i]));
    char *q = gm_huge_alloc(25 * MiB, PAGE, &dirty);
    assert_ptr_equal(q, p[2]);
    char *r = gm_huge_alloc(50 * MiB, PAGE, &dirty);   /* none covers: most backed */
    assert_ptr_equal(r, p[0]);
    gm_huge_free(gm_pagemap_huge((uintptr_t)q));
    gm_huge_free(gm_pagemap_huge((uintptr_t)r));
    gm_mheap_release_all();
    for (int i = 0; i < 3; i++)
        assert_null(gm_pagemap_huge((uintptr_t)p[i]));
}

/* Reusing a cached reservation for a bigger block needs a commit; when the OS
 * refuses it the request fails and the heap is as before, less the cache. */
static void test_mheap_oom_huge_reuse_commit(void **state)
{
    (void)state;
    size_t dirty;
    gm_mheap_release_all();
    struct gm_heap_stats before = stats();
    char *p = gm_huge_alloc(16 * MiB, PAGE, &dirty);
    assert_non_null(p);
    gm_huge_free(gm_pagemap_huge((uintptr_t)p));
    gm_os_fail_after(1);
    assert_null(gm_huge_alloc(32 * MiB, PAGE, &dirty));
    struct gm_heap_stats after = stats();
    assert_true(after.mapped == before.mapped && after.huge == before.huge);
    assert_true(after.free == before.free);
    assert_null(gm_pagemap_huge((uintptr_t)p));
}

/* A large block resizes in place: it grows into the free pages after it and
 * shrinks by freeing its tail, and in-use bytes follow; growing over pages
 * that are taken fails and changes nothing. */
static void test_mheap_large_resize_in_place(void **state)
{
    (void)state;
    /* Spans earlier tests left stacked go back to the bitmaps at a request
     * of another length, which records them as close fits: forget those, so
     * the 6 pages below come by first fit. */
    gm_mheap_free_span(gm_mheap_alloc_large(4 * PAGE, PAGE));
    gm_place_forget_fits();
    gm_span_t *s = gm_mheap_alloc_large(6 * PAGE, PAGE);
    assert_non_null(s);
    uintptr_t at = s->base;
    gm_mheap_free_span(s);
    s = gm_mheap_alloc_large(3 * PAGE, PAGE);   /* first fit: same place, 3 free after */
    assert_true(s->base == at);
    struct gm_heap_stats st0 = stats();
    assert_true(gm_mheap_resize_large(s, 5 * PAGE + 1));
    assert_true(s->base == at && s->npages == 6 && s->large_size == 6 * PAGE);
    assert_true(stats().in_use == st0.in_use + 3 * PAGE);
    memset((void *)at, 3, 6 * PAGE);
    assert_true(gm_mheap_resize_large(s, 2 * PAGE));
    assert_true(s->npages == 2 && stats().in_use == st0.in_use - PAGE);
    gm_span_t *t = gm_mheap_alloc_large(4 * PAGE, PAGE);   /* the freed tail */
    assert_true(t->base == at + 2 * PAGE);
    assert_false(gm_mheap_resize_large(s, 3 * PAGE));
    assert_true(s->npages == 2 && s->large_size == 2 * PAGE);
    gm_mheap_free_span(t);
    gm_mheap_free_span(s);
    assert_true(stats().in_use == st0.in_use - 3 * PAGE);
}

/* A large block whose following pages are taken grows into the free pages
 * before it: its start moves down, the pagemap follows, in-use bytes grow by
 * what it took.  With too few free pages around it nothing changes. */
static void test_mheap_large_grows_down(void **state)
{
    (void)state;
    enum { N = 40, PAGES = 3 };
    gm_span_t *s[N];
    for (int i = 0; i < N; i++)
        s[i] = gm_mheap_alloc_large(PAGES * PAGE, PAGE);
    int lo = adjacent_blocks(s, N, PAGES, 3);
    assert_true(lo >= 0);
    gm_span_t *b = s[lo + 1];
    uintptr_t at = b->base;
    gm_mheap_free_span(s[lo]);
    struct gm_heap_stats st0 = stats();
    assert_false(gm_mheap_resize_large(b, 5 * PAGE));   /* s[lo + 2] is in the way */
    assert_true(gm_mheap_grow_large_down(b, 4 * PAGE + 1) == at - 2 * PAGE);
    assert_true(b->base == at - 2 * PAGE && b->npages == 5 && b->large_size == 5 * PAGE);
    assert_true(gm_pagemap_span_of(b->base) == b);
    assert_null(gm_pagemap_span_of(at));
    assert_true(stats().in_use == st0.in_use + 2 * PAGE);
    memset((void *)b->base, 5, 5 * PAGE);
    /* One page of s[lo] is left, and first fit left no 3-page hole under
     * s[lo]: at most 3 free pages lie below b now, 4 are needed. */
    assert_true(gm_mheap_grow_large_down(b, 9 * PAGE) == 0);
    assert_true(b->base == at - 2 * PAGE && b->npages == 5);
    assert_true(stats().in_use == st0.in_use + 2 * PAGE);
    for (int i = 0; i < N; i++)
        if (i != lo)
            gm_mheap_free_span(s[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_mheap_spans_aligned_distinct_disjoint, reset_faults),
        cmocka_unit_test_teardown(test_mheap_first_fit_reuses_freed_middle_run, reset_faults),
        cmocka_unit_test_teardown(test_mheap_close_fit_reuses_recent_run, reset_faults),
        cmocka_unit_test_teardown(test_mheap_free_neighbours_coalesce, reset_faults),
        cmocka_unit_test_teardown(test_mheap_search_hint_sees_new_hole, reset_faults),
                cmocka_unit_test_teardown(test_mheap_large_aligned, reset_faults),
        cmocka_unit_test_teardown(test_mheap_fresh_run_is_zero, reset_faults),
        cmocka_unit_test_teardown(test_mheap_reused_run_not_zero, reset_faults),
        cmocka_unit_test_teardown(test_mheap_release_all_makes_runs_zero, reset_faults),
        cmocka_unit_test_teardown(test_mheap_release_step_long_runs_first, reset_faults),
        cmocka_unit_test_teardown(test_mheap_huge_aligned_and_registered, reset_faults),
        cmocka_unit_test_teardown(test_mheap_huge_free_unregisters_only_itself, reset_faults),
        cmocka_unit_test_teardown(test_mheap_stats_track_alloc_free_release, reset_faults),
        cmocka_unit_test_teardown(test_mheap_single_page_reused, reset_faults),
        cmocka_unit_test_teardown(test_mheap_stacked_spans_coalesce_for_longer_runs, reset_faults),
        cmocka_unit_test_teardown(test_mheap_small_spans_reused_by_length, reset_faults),
        cmocka_unit_test_teardown(test_mheap_span_batches, reset_faults),
        cmocka_unit_test_teardown(test_mheap_huge_reused_for_other_sizes, reset_faults),
        cmocka_unit_test_teardown(test_mheap_huge_reuse_best_fit, reset_faults),
        cmocka_unit_test_teardown(test_mheap_large_resize_in_place, reset_faults),
        cmocka_unit_test_teardown(test_mheap_large_grows_down, reset_faults),
        cmocka_unit_test_teardown(test_mheap_oom_huge_reuse_commit, reset_faults),
        cmocka_unit_test_teardown(test_mheap_oom_large_then_recovers, reset_faults),
        cmocka_unit_test_teardown(test_mheap_oom_huge_then_recovers, reset_faults),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
