/*
 * test_pagemap.c — address -> arena -> span lookups (alloc/pagemap.c).
 *
 * Blocks come from gm_malloc, so the pagemap is seen as free() sees it: the
 * arena of every block gomalloc hands out is known and of the right kind;
 * addresses it did not hand out (stack, globals, glibc's heap, raw mmap, out
 * of the 47-bit range) have no arena, or, inside a slot gomalloc claimed, no
 * span.  gm_pagemap_span_of answers the owning span for the start of every
 * object of a small span, in every class, and NULL for any other address.
 */
#define _GNU_SOURCE
#include <sys/mman.h>

#include "gomalloc.h"
#include "internal.h"
#include "testutil.h"

static int a_global;

/* An address gomalloc did not hand out: no arena, or an arena that does not
 * cover it with a block. */
static void assert_foreign(uintptr_t addr)
{
    gm_arena_t *a = gm_pagemap_arena(addr);
    gm_huge_t *d = gm_pagemap_huge(addr);
    assert_null(gm_pagemap_span_of(addr));
    assert_true(!a || !d);
    if (d)
        assert_false(addr >= d->lo && addr < d->lo + d->size);
    else if (a)
        assert_false(addr >= a->lo && addr < a->hi);
}

static void test_pagemap_arena_of_small_block(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        void *p = gm_malloc(gm_class_size[cls]);
        assert_non_null(p);
        uintptr_t addr = (uintptr_t)p;
        gm_arena_t *a = gm_pagemap_arena(addr);
        assert_non_null(a);
        assert_null(gm_pagemap_huge(addr));
        assert_true(addr >= a->lo && addr + gm_class_size[cls] <= a->hi);
        assert_ptr_equal(gm_pagemap_arena(addr + gm_class_size[cls] - 1), a);
        gm_free(p);
    }
}

static void test_pagemap_arena_of_large_block(void **state)
{
    (void)state;
    size_t size = 100 * KiB;
    void *p = gm_malloc(size);
    assert_non_null(p);
    uintptr_t addr = (uintptr_t)p;
    gm_arena_t *a = gm_pagemap_arena(addr);
    assert_non_null(a);
    assert_null(gm_pagemap_huge(addr));
    assert_ptr_equal(gm_pagemap_arena(addr + size - 1), a);
    gm_free(p);
}

static void test_pagemap_arena_of_huge_block(void **state)
{
    (void)state;
    size_t size = 40 * MiB;   /* at or above GM_HUGE_THRESHOLD */
    void *p = gm_malloc(size);
    assert_non_null(p);
    uintptr_t addr = (uintptr_t)p;
    gm_huge_t *a = gm_pagemap_huge(addr);
    assert_non_null(a);
    assert_null(gm_pagemap_arena(a->lo));
    assert_true(a->lo == addr);
    assert_true(a->size >= size);
    /* Every slot the mapping covers leads to the same descriptor. */
    for (size_t off = 0; off < size; off += (size_t)GM_ARENA_SIZE / 4)
        assert_ptr_equal(gm_pagemap_huge(addr + off), a);
    assert_ptr_equal(gm_pagemap_huge(addr + size - 1), a);
    assert_null(gm_pagemap_span_of(addr));
    gm_free(p);
    gm_release();   /* a freed huge mapping is kept for reuse until released */
    assert_null(gm_pagemap_huge(addr));
    assert_null(gm_pagemap_huge(addr + size - 1));
}

static void test_pagemap_stack_and_global_have_no_arena(void **state)
{
    (void)state;
    volatile int on_stack = 0;
    assert_null(gm_pagemap_arena((uintptr_t)&on_stack));
    assert_null(gm_pagemap_span_of((uintptr_t)&on_stack));
    assert_null(gm_pagemap_arena((uintptr_t)&a_global));
    assert_null(gm_pagemap_span_of((uintptr_t)&a_global));
    assert_null(gm_pagemap_arena((uintptr_t)&test_pagemap_stack_and_global_have_no_arena));
}

static void test_pagemap_glibc_and_mmap_memory_foreign(void **state)
{
    (void)state;
    void *keep = gm_malloc(64);   /* the heap has at least one arena */
    assert_non_null(keep);
    void *small = malloc(64), *big = malloc(4 * MiB);
    assert_non_null(small);
    assert_non_null(big);
    assert_foreign((uintptr_t)small);
    assert_foreign((uintptr_t)big);
    assert_foreign((uintptr_t)big + 8192);
    size_t len = 1 * MiB;
    char *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    for (size_t off = 0; off < len; off += 8192)
        assert_foreign((uintptr_t)m + off);
    munmap(m, len);
    free(small);
    free(big);
    gm_free(keep);
}

static void test_pagemap_out_of_range_addresses(void **state)
{
    (void)state;
    static const uintptr_t bad[] = {
        (uintptr_t)1 << 47, ((uintptr_t)1 << 47) + 8192, (uintptr_t)0xffff800000000000ull,
        (uintptr_t)0xffffffffffffe000ull, UINTPTR_MAX,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_null(gm_pagemap_arena(bad[i]));
        assert_null(gm_pagemap_span_of(bad[i]));
    }
    assert_null(gm_pagemap_arena(0));
    assert_null(gm_pagemap_span_of(0));
}

/* Walks the whole page run of the span owning p, 8 bytes at a time: object
 * starts map to the span, everything else to NULL.  Only the objects the
 * span holds count; the tail after the last object is checked separately. */
static void check_small_span(void *p, uint8_t cls)
{
    gm_span_t *s = gm_pagemap_span_of((uintptr_t)p);
    assert_non_null(s);
    assert_int_equal(s->cls, cls);
    assert_int_equal(s->state, GM_SPAN_SMALL);
    assert_int_equal(s->npages, gm_class_pages[cls]);
    assert_true(gm_test_aligned(s->base, GM_PAGE_SIZE));
    uintptr_t size = gm_class_size[cls], end = s->base + size * gm_class_objects[cls];
    assert_true((uintptr_t)p >= s->base && (uintptr_t)p < end);
    assert_true(((uintptr_t)p - s->base) % size == 0);
    for (uintptr_t addr = s->base; addr < end; addr += 8) {
        gm_span_t *want = (addr - s->base) % size == 0 ? s : NULL;
        if (gm_pagemap_span_of(addr) != want)
            fail_msg("class %u: span_of(base + %lu) = %p, want %p", cls,
                     (unsigned long)(addr - s->base), (void *)gm_pagemap_span_of(addr),
                     (void *)want);
        assert_ptr_equal(gm_pagemap_arena(addr), s->arena);
    }
}

static void test_pagemap_span_of_every_object_every_class(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        void *p = gm_malloc(gm_class_size[cls]);
        assert_non_null(p);
        check_small_span(p, cls);
        gm_free(p);
    }
}

/* The object starts of a span held by the program, and p+1, p+8, p+16 (when
 * that is not the next object), for many objects of every class. */
static void test_pagemap_span_of_small_interior_null(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        uint32_t size = gm_class_size[cls], n = 2u * gm_class_objects[cls] + 3;
        void **ps = malloc(n * sizeof *ps);
        assert_non_null(ps);
        for (uint32_t i = 0; i < n; i++) {
            ps[i] = gm_malloc(size);
            assert_non_null(ps[i]);
            uintptr_t addr = (uintptr_t)ps[i];
            gm_span_t *s = gm_pagemap_span_of(addr);
            assert_non_null(s);
            assert_int_equal(s->cls, cls);
            assert_null(gm_pagemap_span_of(addr + 1));
            assert_null(gm_pagemap_span_of(addr + 8));
            if (size > 16)   /* for 16-byte objects p+16 is the next object */
                assert_null(gm_pagemap_span_of(addr + 16));
            assert_null(gm_pagemap_span_of(addr + size - 1));
        }
        for (uint32_t i = 0; i < n; i++)
            gm_free(ps[i]);
        free(ps);
    }
}

/* Bytes after the last object of a span (classes whose objects do not fill
 * the span exactly) are not an object: free() must not accept them. */
static void test_pagemap_span_of_tail_after_last_object_null(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        uintptr_t size = gm_class_size[cls];
        uintptr_t span_bytes = (uintptr_t)gm_class_pages[cls] * GM_PAGE_SIZE;
        uintptr_t used = size * gm_class_objects[cls];
        if (used == span_bytes)
            continue;
        void *p = gm_malloc(size);
        assert_non_null(p);
        gm_span_t *s = gm_pagemap_span_of((uintptr_t)p);
        assert_non_null(s);
        for (uintptr_t addr = s->base + used; addr < s->base + span_bytes; addr += 8)
            if (gm_pagemap_span_of(addr) != NULL)
                fail_msg("class %u (%lu B, %u objects): span_of(base + %lu), past the last "
                         "object, returned the span", cls, (unsigned long)size,
                         gm_class_objects[cls], (unsigned long)(addr - s->base));
        gm_free(p);
    }
}

static void test_pagemap_span_of_large_block(void **state)
{
    (void)state;
    static const size_t sizes[] = {33 * KiB, 100 * KiB, 1 * MiB + 1, 8 * MiB};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        void *p = gm_malloc(sizes[k]);
        assert_non_null(p);
        uintptr_t base = (uintptr_t)p;
        gm_span_t *s = gm_pagemap_span_of(base);
        assert_non_null(s);
        assert_int_equal(s->cls, 0);
        assert_int_equal(s->state, GM_SPAN_LARGE);
        assert_true(s->base == base);
        assert_true(s->large_size >= sizes[k]);
        assert_null(gm_pagemap_span_of(base + 8));
        assert_null(gm_pagemap_span_of(base + 16));
        assert_null(gm_pagemap_span_of(base + GM_PAGE_SIZE));
        assert_null(gm_pagemap_span_of(base + GM_PAGE_SIZE - 16));
        assert_null(gm_pagemap_span_of(base + s->large_size - 16));
        gm_free(p);
        gm_mcache_flush_current();   /* a freed large block may wait in the page cache */
        assert_null(gm_pagemap_span_of(base));
        assert_null(gm_pagemap_span_of(base + GM_PAGE_SIZE));
    }
}

/* Once every object of a span is back and the span went to the heap, its
 * addresses no longer resolve. */
static void test_pagemap_span_of_after_span_freed_null(void **state)
{
    (void)state;
    uint8_t cls = 49;   /* 8 KiB objects, one per span */
    void *p = gm_malloc(gm_class_size[cls]);
    assert_non_null(p);
    gm_span_t *s = gm_pagemap_span_of((uintptr_t)p);
    assert_non_null(s);
    assert_int_equal(s->cls, cls);
    uintptr_t base = s->base;
    gm_free(p);
    gm_release();
    /* gm_release flushed this thread's cache and drained the central lists:
     * the span holds no object, so it went back to the heap. */
    assert_null(gm_pagemap_span_of(base));
    gm_arena_t *a = gm_pagemap_arena(base);
    assert_non_null(a);
    assert_int_equal(a->page_info[gm_page_index(base)], 0);
    assert_null(a->spans[gm_page_index(base)]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pagemap_arena_of_small_block),
        cmocka_unit_test(test_pagemap_arena_of_large_block),
        cmocka_unit_test(test_pagemap_arena_of_huge_block),
        cmocka_unit_test(test_pagemap_stack_and_global_have_no_arena),
        cmocka_unit_test(test_pagemap_glibc_and_mmap_memory_foreign),
        cmocka_unit_test(test_pagemap_out_of_range_addresses),
        cmocka_unit_test(test_pagemap_span_of_every_object_every_class),
        cmocka_unit_test(test_pagemap_span_of_small_interior_null),
        cmocka_unit_test(test_pagemap_span_of_tail_after_last_object_null),
        cmocka_unit_test(test_pagemap_span_of_large_block),
        cmocka_unit_test(test_pagemap_span_of_after_span_freed_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
