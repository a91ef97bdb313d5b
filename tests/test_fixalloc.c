/*
 * test_fixalloc.c — the metadata allocator (alloc/fixalloc.c) on its own.
 *
 * Each test uses gm_fixalloc_t instances of its own, so the allocator's
 * users (spans, arenas, caches) are not disturbed.  Checked: objects are
 * zeroed, distinct, aligned to 64 bytes when the size is a multiple of 64 and
 * to 16 otherwise, freed objects come back first, chunk boundaries are
 * crossed cleanly, and gm_fixalloc_mapped() grows with the chunks mapped.
 */
#include "internal.h"
#include "testing.h"
#include "testutil.h"

#define CHUNK ((size_t)256 << 10)   /* fixalloc.c's chunk size */

static size_t expected_align(size_t size)
{
    return size % 64 == 0 ? 64 : 16;
}

static void test_fixalloc_objects_zeroed_and_aligned(void **state)
{
    (void)state;
    static const size_t sizes[] = {8, 16, 24, 40, 64, 100, 128, 200, 192, 1000, 4096, 4100};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        gm_fixalloc_t fa = {.size = sizes[k]};
        for (int i = 0; i < 50; i++) {
            unsigned char *p = gm_fixalloc_alloc(&fa);
            assert_non_null(p);
            assert_true(gm_test_aligned((uintptr_t)p, expected_align(sizes[k])));
            assert_true(gm_test_all_zero(p, sizes[k]));
            memset(p, 0xA5, sizes[k]);   /* the next object must still be zero */
        }
        assert_int_equal(fa.in_use, 50);
    }
}

static void test_fixalloc_objects_distinct(void **state)
{
    (void)state;
    gm_fixalloc_t fa = {.size = 48};
    enum { N = 2000 };
    uintptr_t *addrs = malloc(N * sizeof *addrs);
    assert_non_null(addrs);
    for (int i = 0; i < N; i++) {
        addrs[i] = (uintptr_t)gm_fixalloc_alloc(&fa);
        assert_true(addrs[i] != 0);
    }
    gm_test_assert_disjoint(addrs, N, fa.size);
    free(addrs);
}

static void test_fixalloc_freed_object_reused_and_zeroed(void **state)
{
    (void)state;
    gm_fixalloc_t fa = {.size = 96};
    void *a = gm_fixalloc_alloc(&fa), *b = gm_fixalloc_alloc(&fa);
    assert_non_null(a);
    assert_non_null(b);
    memset(a, 0x5A, fa.size);
    memset(b, 0x3C, fa.size);
    uint64_t mapped = gm_fixalloc_mapped();
    gm_fixalloc_free(&fa, a);
    gm_fixalloc_free(&fa, b);
    assert_int_equal(fa.in_use, 0);
    /* The free list comes first, most recently freed on top. */
    void *c = gm_fixalloc_alloc(&fa), *d = gm_fixalloc_alloc(&fa);
    assert_ptr_equal(c, b);
    assert_ptr_equal(d, a);
    assert_true(gm_test_all_zero(c, fa.size));
    assert_true(gm_test_all_zero(d, fa.size));
    assert_int_equal(fa.in_use, 2);
    assert_true(gm_fixalloc_mapped() == mapped);
}

/* Enough objects to span several chunks: every object is whole, aligned and
 * separate from every other, and the mapped counter grows by whole chunks. */
static void test_fixalloc_many_across_chunks(void **state)
{
    (void)state;
    static const size_t sizes[] = {1000, 640, 4160};
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        gm_fixalloc_t fa = {.size = sizes[k]};
        size_t n = 3 * CHUNK / fa.size + 7;
        uintptr_t *addrs = malloc(n * sizeof *addrs);
        assert_non_null(addrs);
        uint64_t before = gm_fixalloc_mapped();
        for (size_t i = 0; i < n; i++) {
            void *p = gm_fixalloc_alloc(&fa);
            assert_non_null(p);
            assert_true(gm_test_aligned((uintptr_t)p, expected_align(fa.size)));
            assert_true(gm_test_all_zero(p, fa.size));
            gm_test_fill(p, fa.size, (unsigned)i);
            addrs[i] = (uintptr_t)p;
        }
        for (size_t i = 0; i < n; i++)
            assert_true(gm_test_check((void *)addrs[i], fa.size, (unsigned)i));
        uint64_t grew = gm_fixalloc_mapped() - before;
        assert_true(grew >= 3 * CHUNK);
        assert_true(grew % CHUNK == 0);
        gm_test_assert_disjoint(addrs, n, fa.size);
        free(addrs);
    }
}

static void test_fixalloc_mapped_grows(void **state)
{
    (void)state;
    gm_fixalloc_t fa = {.size = 4096};
    uint64_t before = gm_fixalloc_mapped();
    for (size_t i = 0; i < CHUNK / fa.size + 1; i++)
        assert_non_null(gm_fixalloc_alloc(&fa));
    assert_true(gm_fixalloc_mapped() >= before + CHUNK);
}

/* An object larger than a chunk gets a mapping of its own size. */
static void test_fixalloc_object_larger_than_chunk(void **state)
{
    (void)state;
    gm_fixalloc_t fa = {.size = CHUNK + 4096};
    uint64_t before = gm_fixalloc_mapped();
    unsigned char *a = gm_fixalloc_alloc(&fa), *b = gm_fixalloc_alloc(&fa);
    assert_non_null(a);
    assert_non_null(b);
    assert_true(gm_fixalloc_mapped() >= before + 2 * fa.size);
    assert_true(gm_test_all_zero(a, fa.size) && gm_test_all_zero(b, fa.size));
    gm_test_fill(a, fa.size, 1);
    gm_test_fill(b, fa.size, 2);
    assert_true(gm_test_check(a, fa.size, 1) && gm_test_check(b, fa.size, 2));
    assert_true(gm_test_aligned((uintptr_t)a, 64) && gm_test_aligned((uintptr_t)b, 64));
}

/* A failed chunk mapping returns NULL and leaves the allocator usable. */
static void test_fixalloc_map_failure_returns_null(void **state)
{
    (void)state;
    gm_fixalloc_t fa = {.size = 256};
    uint64_t before = gm_fixalloc_mapped();
    gm_os_fail_after(1);
    assert_null(gm_fixalloc_alloc(&fa));
    assert_int_equal(fa.in_use, 0);
    assert_true(gm_fixalloc_mapped() == before);
    void *p = gm_fixalloc_alloc(&fa);
    assert_non_null(p);
    assert_int_equal(fa.in_use, 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixalloc_objects_zeroed_and_aligned),
        cmocka_unit_test(test_fixalloc_objects_distinct),
        cmocka_unit_test(test_fixalloc_freed_object_reused_and_zeroed),
        cmocka_unit_test(test_fixalloc_many_across_chunks),
        cmocka_unit_test(test_fixalloc_mapped_grows),
        cmocka_unit_test(test_fixalloc_object_larger_than_chunk),
        cmocka_unit_test(test_fixalloc_map_failure_returns_null),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
