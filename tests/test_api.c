/*
 * test_api.c — the gm_* entry points against glibc's malloc contract, black box.
 *
 * Every test goes through the public API only.  Built by default against
 * gm_malloc, gm_free, ...; built with -DGM_TEST_LIBC_NAMES the same tests call
 * malloc, free, ... and are meant to run under LD_PRELOAD=lib/libgomalloc.so.
 * Tests of functions without a libc twin (gm_get_stats, gm_print_stats) are
 * skipped in that mode; malloc_trim(0) stands in for gm_release.
 *
 * The invalid-free tests fork a child that frees a foreign pointer with stderr
 * on a pipe, and check that it died of SIGABRT after printing
 * "gomalloc: free(): invalid pointer 0x<address>".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "api_names.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)

/* Sizes kept in volatiles so the compiler cannot reason about (or warn on)
 * requests it can see are impossible. */
static volatile size_t too_big = (size_t)PTRDIFF_MAX + 1;
static volatile size_t size_max = SIZE_MAX;

static size_t page_size(void)
{
    return (size_t)sysconf(_SC_PAGESIZE);
}

static int is_aligned(const void *p, size_t alignment)
{
    return ((uintptr_t)p & (alignment - 1)) == 0;
}

/* Fills n bytes with a pattern derived from seed, and checks it back. */
static void fill(void *p, size_t n, unsigned seed)
{
    unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (unsigned char)(seed * 131u + i * 7u + (i >> 8));
}

static int check(const void *p, size_t n, unsigned seed)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (unsigned char)(seed * 131u + i * 7u + (i >> 8)))
            return 0;
    return 1;
}

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != 0)
            return 0;
    return 1;
}

/* ---- malloc(0), free(NULL), errno ---------------------------------------- */

static void test_api_malloc_zero_unique_and_freeable(void **state)
{
    (void)state;
    void *p[64];
    for (int i = 0; i < 64; i++) {
        p[i] = gm_malloc(0);
        assert_non_null(p[i]);
        assert_true(is_aligned(p[i], 16));
        for (int j = 0; j < i; j++)
            assert_ptr_not_equal(p[i], p[j]);
    }
    for (int i = 0; i < 64; i++)
        gm_free(p[i]);
}

static void test_api_free_null_is_noop(void **state)
{
    (void)state;
    errno = 4321;
    gm_free(NULL);
    assert_int_equal(errno, 4321);
    void *p = gm_malloc(32);
    assert_non_null(p);
    gm_free(p);
}

static void test_api_free_preserves_errno(void **state)
{
    (void)state;
    static const size_t sizes[] = { 1, 16, 100, 4000, 40000, 300000, 8 * MiB, 64 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = gm_malloc(sizes[i]);
        assert_non_null(p);
        memset(p, 0x5a, sizes[i]);
        errno = 1234;
        gm_free(p);
        assert_int_equal(errno, 1234);
    }
}

/* ---- realloc ------------------------------------------------------------- */

static void test_api_realloc_zero_frees_and_returns_null(void **state)
{
    (void)state;
    static const size_t sizes[] = { 1, 64, 5000, 100000, 8 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = gm_malloc(sizes[i]);
        assert_non_null(p);
        assert_null(gm_realloc(p, 0));
    }
    /* The freed memory is reusable: nothing was leaked or double-owned. */
    void *q = gm_malloc(64);
    assert_non_null(q);
    gm_free(q);
}

static void test_api_realloc_null_is_malloc(void **state)
{
    (void)state;
    static const size_t sizes[] = { 0, 1, 100, 5000, 100000, 4 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = gm_realloc(NULL, sizes[i]);
        assert_non_null(p);
        assert_true(is_aligned(p, 16));
        assert_true(gm_usable_size(p) >= sizes[i]);
        memset(p, 0x33, sizes[i]);
        gm_free(p);
    }
}

static void test_api_realloc_same_class_keeps_pointer(void **state)
{
    (void)state;
    void *p = gm_malloc(20);
    assert_non_null(p);
    size_t usable = gm_usable_size(p);
    assert_true(usable >= 24);
    fill(p, 20, 1);
    uintptr_t old = (uintptr_t)p;
    void *q = gm_realloc(p, 24);
    assert_non_null(q);
    assert_true((uintptr_t)q == old);
    assert_true(check(q, 20, 1));
    /* Anywhere inside the usable size, growing or shrinking, stays in place. */
    q = gm_realloc(q, usable);
    assert_true((uintptr_t)q == old);
    q = gm_realloc(q, 17);
    assert_true((uintptr_t)q == old);
    assert_true(check(q, 17, 1));
    gm_free(q);
}

/* A small block of 1 KiB or more that outgrows its class by a little moves
 * to a block a quarter larger, so appending a byte at a time moves it only
 * every quarter; a large jump gets what it asks for; a block under 1 KiB
 * moves to the class that fits. */
static void test_api_realloc_small_growth_has_headroom(void **state)
{
    (void)state;
    char *p = gm_malloc(1000);
    assert_non_null(p);
    size_t usable = gm_usable_size(p);
    fill(p, usable, 4);
    char *q = gm_realloc(p, usable + 1);
    assert_non_null(q);
    assert_true(gm_usable_size(q) >= usable + usable / 4);
    assert_true(check(q, usable, 4));
    size_t roomy = gm_usable_size(q);
    uintptr_t at = (uintptr_t)q;
    for (size_t n = usable + 2; n <= roomy; n++) {
        q = gm_realloc(q, n);
        assert_true((uintptr_t)q == at);
    }
    assert_true(check(q, usable, 4));
    q = gm_realloc(q, roomy * 2);
    assert_non_null(q);
    assert_true(gm_usable_size(q) < roomy * 2 + roomy / 2);
    assert_true(check(q, usable, 4));
    gm_free(q);
    for (size_t n = 16;; n += 16) {   /* every class under 1 KiB */
        p = gm_malloc(n);
        assert_non_null(p);
        usable = gm_usable_size(p);
        if (usable >= 1024) {
            gm_free(p);
            break;
        }
        fill(p, usable, 5);
        q = gm_realloc(p, usable + 1);
        assert_non_null(q);
        void *fresh = gm_malloc(usable + 1);   /* the class that fits */
        assert_non_null(fresh);
        assert_true(gm_usable_size(q) == gm_usable_size(fresh));
        gm_free(fresh);
        assert_true(check(q, usable, 5));
        gm_free(q);
    }
}

static void test_api_realloc_preserves_contents(void **state)
{
    (void)state;
    /* small -> large -> huge and back down. */
    static const size_t steps[] = { 1,       7,      16,    100,       1000,     5000,
                                    32768,   40000,  100000, 1 * MiB,  3 * MiB,  40 * MiB,
                                    100 * MiB, 2 * MiB, 70000, 3000,   200,      24,
                                    5 };
    size_t prev = 0;
    void *p = NULL;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        size_t n = steps[i];
        p = gm_realloc(p, n);
        assert_non_null(p);
        assert_true(is_aligned(p, 16));
        assert_true(gm_usable_size(p) >= n);
        size_t kept = prev < n ? prev : n;
        assert_true(check(p, kept, 9));
        fill(p, n, 9);
        prev = n;
    }
    gm_free(p);
}

/* A large block grows into free pages after it and shrinks by giving its
 * tail back, keeping its address and contents; it moves when the pages after
 * it are taken. */
static void test_api_realloc_large_in_place(void **state)
{
    (void)state;
    char *p = gm_malloc(200 * KiB);
    assert_non_null(p);
    fill(p, 200 * KiB, 21);
    char *q = gm_realloc(p, 60 * KiB);           /* shrink: the tail goes back */
    assert_ptr_equal(q, p);
    assert_true(gm_usable_size(q) < 100 * KiB);
    assert_true(check(q, 60 * KiB, 21));
    q = gm_realloc(q, 190 * KiB);                /* the tail is free: grow in place */
    assert_ptr_equal(q, p);
    assert_true(gm_usable_size(q) >= 190 * KiB);
    assert_true(check(q, 60 * KiB, 21));
    fill(q, 190 * KiB, 22);
    q = gm_realloc(q, 60 * KiB);
    assert_ptr_equal(q, p);
    /* Take the pages after it (first fit reaches them in a bounded number of
     * blocks), then growing must move, with the contents. */
    void *blocks[4096];
    int n = 0;
    uintptr_t after = (uintptr_t)q + gm_usable_size(q);
    while (n < 4096) {
        blocks[n] = gm_malloc(40 * KiB);
        assert_non_null(blocks[n]);
        if ((uintptr_t)blocks[n++] == after)
            break;
    }
    assert_true((uintptr_t)blocks[n - 1] == after);
    char *r = gm_realloc(q, 190 * KiB);
    assert_non_null(r);
    assert_true(r != q);
    assert_true(check(r, 60 * KiB, 22));
    for (int i = 0; i < n; i++)
        gm_free(blocks[i]);
    gm_free(r);
}

/* A large block whose following pages are taken grows into the free pages
 * before it: the contents move down into the hole the block below left,
 * rather than to a new run. */
static void test_api_realloc_large_grows_down(void **state)
{
    (void)state;
    enum { SIZE = 304 * KiB, PAGE = 8 * KiB };   /* 38 pages: past the page cache */
    /* First fit fills the holes below the top of the heap, then blocks come
     * from the top in address order: three of them end up adjacent. */
    char *blocks[64];
    int n = 0, k = -1;
    while (n < 64 && k < 0) {
        blocks[n] = gm_malloc(SIZE);
        assert_non_null(blocks[n]);
        n++;
        if (n >= 3 && blocks[n - 2] == blocks[n - 3] + SIZE && blocks[n - 1] == blocks[n - 2] + SIZE)
            k = n - 3;
    }
    assert_true(k >= 0);
    char *below = blocks[k], *b = blocks[k + 1];
    fill(b, SIZE, 31);
    gm_free(below);
    blocks[k] = NULL;
    char *r = gm_realloc(b, SIZE + PAGE);   /* the block above is in use */
    assert_ptr_equal(r, b - PAGE);
    assert_true(gm_usable_size(r) >= SIZE + PAGE);
    assert_true(check(r, SIZE, 31));
    blocks[k + 1] = r;
    /* At most 37 + 37 pages are free below it (first fit left no 38-page
     * hole under the first block): growing by 80 moves it, contents too. */
    fill(r, SIZE + PAGE, 32);
    char *m = gm_realloc(r, SIZE + 81 * PAGE);
    assert_non_null(m);
    assert_true(m + SIZE + 81 * PAGE <= below || m >= blocks[k + 2] + SIZE);
    assert_true(check(m, SIZE + PAGE, 32));
    blocks[k + 1] = m;
    for (int i = 0; i < n; i++)
        gm_free(blocks[i]);
}

/* A huge block grows and shrinks within its reservation (64 MiB slots) in
 * place; past it, it moves. */
static void test_api_realloc_huge_in_place(void **state)
{
    (void)state;
    char *p = gm_malloc(20 * MiB);
    assert_non_null(p);
    fill(p, 20 * MiB, 31);
    char *q = gm_realloc(p, 50 * MiB);
    assert_ptr_equal(q, p);
    assert_true(gm_usable_size(q) >= 50 * MiB);
    assert_true(check(q, 20 * MiB, 31));
    fill(q, 50 * MiB, 32);
    q = gm_realloc(q, 17 * MiB);
    assert_ptr_equal(q, p);
    assert_true(gm_usable_size(q) < 20 * MiB);
    assert_true(check(q, 17 * MiB, 32));
    char *r = gm_realloc(q, 70 * MiB);
    assert_non_null(r);
    assert_true(check(r, 17 * MiB, 32));
    memset(r + 17 * MiB, 1, 53 * MiB);
    gm_free(r);
}

/* Whether any mapping covers address p, from /proc/self/maps (a probe
 * that memcheck does not take for a bad access). */
static bool address_mapped(const void *p)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    uintptr_t a = (uintptr_t)p, lo, hi;
    bool found = false;
    char line[512];
    while (!found && fgets(line, sizeof line, f))
        found = sscanf(line, "%" SCNxPTR "-%" SCNxPTR, &lo, &hi) == 2 && lo <= a && a < hi;
    fclose(f);
    return found;
}

/* Grows huge block p (its first 40 MiB filled with seed) by 64 MiB steps
 * until it moves: a cached reservation may have had room.  Returns the
 * block and its size. */
static char *grow_until_moved(char *p, unsigned seed, size_t *size)
{
    char *q = p;
    *size = 40 * MiB;
    while (q == p) {
        *size += 64 * MiB;
        assert_true(*size <= 1024 * MiB);
        q = gm_realloc(p, *size);
        assert_non_null(q);
        assert_true(check(q, 40 * MiB, seed));
        assert_true(gm_usable_size(q) >= *size);
    }
    return q;
}

/* A huge block that outgrows its reservation has its pages remapped to a
 * larger one: contents kept, nothing left mapped at the old address (a copy
 * would have left the old reservation mapped, cached for reuse), and the
 * new reservation has room to grow in place. */
static void test_api_realloc_huge_moves_by_remap(void **state)
{
    (void)state;
    char *p = gm_malloc(40 * MiB);
    assert_non_null(p);
    fill(p, 40 * MiB, 41);
    size_t size;
    char *q = grow_until_moved(p, 41, &size);
    assert_false(address_mapped(p));
    assert_true(address_mapped(q + size - 1));
    fill(q, size, 42);
    char *r = gm_realloc(q, size + 16 * MiB);   /* reservations are whole 64 MiB slots */
    assert_ptr_equal(r, q);
    assert_true(check(r, size, 42));
    gm_free(r);
}

/* A block whose pages the program split into two mappings (here with
 * madvise(MADV_DONTFORK) on a part) may be refused a remap by the kernel;
 * realloc then copies, and either way the contents are kept and the heap
 * goes on working. */
static void test_api_realloc_huge_split_mapping(void **state)
{
    (void)state;
    char *p = gm_malloc(40 * MiB);
    assert_non_null(p);
    fill(p, 40 * MiB, 43);
    assert_int_equal(madvise(p + 8 * MiB, 4 * MiB, MADV_DONTFORK), 0);
    size_t size;
    char *q = grow_until_moved(p, 43, &size);
    memset(q + 40 * MiB, 7, size - 40 * MiB);
    assert_int_equal(madvise(q, size, MADV_DOFORK), 0);
    gm_free(q);
    char *r = gm_malloc(size);
    assert_non_null(r);
    fill(r, size, 44);
    assert_true(check(r, size, 44));
    gm_free(r);
}

/* ---- failures: ENOMEM, EINVAL -------------------------------------------- */

static void test_api_oversize_fails_with_enomem(void **state)
{
    (void)state;
    size_t bad[] = { too_big, size_max, size_max - 4096 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = bad[i];
        errno = 0;
        assert_null(gm_malloc(n));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(gm_calloc(1, n));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(gm_calloc(n, 1));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(gm_realloc(NULL, n));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(gm_aligned_alloc(64, n));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(gm_memalign(4096, n));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(gm_valloc(n));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(gm_pvalloc(n));
        assert_int_equal(errno, ENOMEM);
    }
}

static void test_api_realloc_oversize_keeps_block(void **state)
{
    (void)state;
    static const size_t sizes[] = { 40, 50000, 3 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = gm_malloc(sizes[i]);
        assert_non_null(p);
        fill(p, sizes[i], 3);
        errno = 0;
        assert_null(gm_realloc(p, too_big));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(gm_realloc(p, size_max));
        assert_int_equal(errno, ENOMEM);
        assert_true(check(p, sizes[i], 3));
        gm_free(p);
    }
}

static void test_api_calloc_overflow_fails_with_enomem(void **state)
{
    (void)state;
    volatile size_t half = ((size_t)1 << (sizeof(size_t) * 4)) + 1;
    errno = 0;
    assert_null(gm_calloc(half, half));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(gm_calloc(size_max / 2 + 1, 2));
    assert_int_equal(errno, ENOMEM);
    errno = 0;
    assert_null(gm_calloc(16, size_max / 8));
    assert_int_equal(errno, ENOMEM);
}

static void test_api_reallocarray_overflow_fails_with_enomem(void **state)
{
    (void)state;
    volatile size_t half = ((size_t)1 << (sizeof(size_t) * 4)) + 1;
    errno = 0;
    assert_null(gm_reallocarray(NULL, half, half));
    assert_int_equal(errno, ENOMEM);

    void *p = gm_reallocarray(NULL, 10, 10);
    assert_non_null(p);
    assert_true(gm_usable_size(p) >= 100);
    fill(p, 100, 4);
    void *volatile same = p; /* the failing call must leave p alone */
    errno = 0;
    assert_null(gm_reallocarray(same, size_max / 2 + 1, 2));
    assert_int_equal(errno, ENOMEM);
    assert_true(check(p, 100, 4)); /* untouched on failure */
    p = gm_reallocarray(p, 1000, 10);
    assert_non_null(p);
    assert_true(check(p, 100, 4));
    gm_free(p);
}

static void test_api_posix_memalign_bad_alignment_is_einval(void **state)
{
    (void)state;
    static const size_t bad[] = { 0, 1, 2, 3, 4, 6, 12, 24, 48, 100, 4097, 3 * 4096 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = (void *)&p;
        errno = 4321;
        assert_int_equal(gm_posix_memalign(&p, bad[i], 64), EINVAL);
        assert_int_equal(errno, 4321);
    }
}

/* glibc sets errno here too; gomalloc.h promises to leave it alone. */
static void test_api_posix_memalign_huge_is_enomem(void **state)
{
    (void)state;
    size_t bad[] = { too_big, size_max, size_max - 100 };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        void *p = NULL;
        errno = 4321;
        assert_int_equal(gm_posix_memalign(&p, 16, bad[i]), ENOMEM);
        assert_int_equal(errno, 4321);
        assert_int_equal(gm_posix_memalign(&p, 1 * MiB, bad[i]), ENOMEM);
        assert_int_equal(errno, 4321);
    }
}

/* ---- calloc zeroes ------------------------------------------------------- */

/* Dirties count blocks of size n, frees them, then callocs count blocks of the
 * same size, which are likely to reuse that memory, and checks they are zero. */
static void calloc_after_dirty(size_t n, int count)
{
    void *p[16];
    assert_true(count <= 16);
    for (int i = 0; i < count; i++) {
        p[i] = gm_malloc(n);
        assert_non_null(p[i]);
        memset(p[i], 0xa5, gm_usable_size(p[i]));
    }
    for (int i = 0; i < count; i++)
        gm_free(p[i]);
    for (int i = 0; i < count; i++) {
        p[i] = gm_calloc(1, n);
        assert_non_null(p[i]);
        assert_true(all_zero(p[i], n));
        memset(p[i], 0xa5, n); /* dirty again for the next round */
    }
    for (int i = 0; i < count; i++)
        gm_free(p[i]);
}

static void test_api_calloc_zeroed_small(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 32768; n += (n < 256 ? 1 : n / 16))
        calloc_after_dirty(n, 16);
    /* calloc(count, size) form, several count/size splits of the same bytes */
    for (int round = 0; round < 2; round++) {
        unsigned char *p = gm_calloc(48, 40);
        assert_non_null(p);
        assert_true(all_zero(p, 48 * 40));
        memset(p, 0xff, 48 * 40);
        gm_free(p);
    }
}

static void test_api_calloc_zeroed_large(void **state)
{
    (void)state;
    calloc_after_dirty(40000, 8);
    calloc_after_dirty(300000, 8);
    calloc_after_dirty(1 * MiB, 8);
    calloc_after_dirty(1 * MiB + 12345, 4);
}

static void test_api_calloc_zeroed_huge(void **state)
{
    (void)state;
    calloc_after_dirty(100 * MiB, 2);
    calloc_after_dirty(100 * MiB + 777, 1);
}

/* A freed huge block's reservation hosts later blocks of other sizes: calloc
 * of a smaller one, then of a bigger one than was written, reads zero. */
static void test_api_calloc_zeroed_huge_other_sizes(void **state)
{
    (void)state;
    static const size_t sizes[] = {40 * MiB, 20 * MiB + 4321, 60 * MiB, 17 * MiB, 64 * MiB};
    gm_release();
    char *p = gm_malloc(30 * MiB);
    assert_non_null(p);
    memset(p, 0xa5, gm_usable_size(p));
    gm_free(p);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *q = gm_calloc(1, sizes[i]);
        assert_non_null(q);
        assert_true(all_zero(q, sizes[i]));
        memset(q, 0x5a, gm_usable_size(q));
        gm_free(q);
    }
}

/* ---- alignment ----------------------------------------------------------- */

static const size_t align_sizes[] = { 1, 100, 5000, 100000 };
#define N_ALIGN_SIZES (sizeof align_sizes / sizeof align_sizes[0])

static void check_aligned_block(void *p, size_t alignment, size_t n)
{
    assert_non_null(p);
    assert_true(is_aligned(p, alignment));
    assert_true(is_aligned(p, 16));
    assert_true(gm_usable_size(p) >= n);
    memset(p, 0xc3, n);
    fill(p, n, (unsigned)alignment);
    assert_true(check(p, n, (unsigned)alignment));
}

static void test_api_aligned_alloc_every_power_of_two(void **state)
{
    (void)state;
    for (size_t a = 1; a <= 4 * MiB; a *= 2)
        for (size_t i = 0; i < N_ALIGN_SIZES; i++) {
            void *p = gm_aligned_alloc(a, align_sizes[i]);
            check_aligned_block(p, a, align_sizes[i]);
            gm_free(p);
        }
}

static void test_api_memalign_every_power_of_two(void **state)
{
    (void)state;
    for (size_t a = 1; a <= 4 * MiB; a *= 2)
        for (size_t i = 0; i < N_ALIGN_SIZES; i++) {
            void *p = gm_memalign(a, align_sizes[i]);
            check_aligned_block(p, a, align_sizes[i]);
            gm_free(p);
        }
}

static void test_api_posix_memalign_every_power_of_two(void **state)
{
    (void)state;
    for (size_t a = sizeof(void *); a <= 4 * MiB; a *= 2)
        for (size_t i = 0; i < N_ALIGN_SIZES; i++) {
            void *p = NULL;
            errno = 4321;
            assert_int_equal(gm_posix_memalign(&p, a, align_sizes[i]), 0);
            assert_int_equal(errno, 4321);
            check_aligned_block(p, a, align_sizes[i]);
            gm_free(p);
        }
}

/* Several aligned blocks alive at once must not overlap. */
static void test_api_aligned_blocks_live_together(void **state)
{
    (void)state;
    enum { N = 40 };
    void *p[N];
    size_t n[N];
    for (int i = 0; i < N; i++) {
        size_t a = (size_t)1 << (i % 21);
        n[i] = align_sizes[i % N_ALIGN_SIZES];
        p[i] = gm_aligned_alloc(a, n[i]);
        assert_non_null(p[i]);
        assert_true(is_aligned(p[i], a));
        fill(p[i], n[i], (unsigned)i);
    }
    for (int i = 0; i < N; i++) {
        assert_true(check(p[i], n[i], (unsigned)i));
        gm_free(p[i]);
    }
}

static void test_api_valloc_page_aligned(void **state)
{
    (void)state;
    static const size_t sizes[] = { 0, 1, 100, 4095, 4096, 4097, 5000, 100000, 3 * MiB };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = gm_valloc(sizes[i]);
        assert_non_null(p);
        assert_true(is_aligned(p, page_size()));
        assert_true(gm_usable_size(p) >= sizes[i]);
        memset(p, 0x11, sizes[i]);
        gm_free(p);
    }
}

static void test_api_pvalloc_page_aligned_and_rounded(void **state)
{
    (void)state;
    size_t ps = page_size();
    static const size_t sizes[] = { 1, 100, 4095, 4096, 4097, 5000, 100000, 3 * MiB + 1 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        size_t rounded = (sizes[i] + ps - 1) / ps * ps;
        void *p = gm_pvalloc(sizes[i]);
        assert_non_null(p);
        assert_true(is_aligned(p, ps));
        assert_true(gm_usable_size(p) >= rounded);
        memset(p, 0x22, rounded); /* the whole rounded size is the caller's */
        gm_free(p);
    }
}

static void test_api_pvalloc_zero_works(void **state)
{
    (void)state;
    void *p = gm_pvalloc(0);
    assert_non_null(p);
    assert_true(is_aligned(p, page_size()));
    void *q = gm_pvalloc(0);
    assert_non_null(q);
    assert_ptr_not_equal(p, q);
    gm_free(p);
    gm_free(q);
}

static void test_api_every_block_16_byte_aligned(void **state)
{
    (void)state;
    for (size_t n = 1; n <= 40000; n++) {
        void *p = gm_malloc(n);
        assert_non_null(p);
        if (!is_aligned(p, 16))
            fail_msg("malloc(%zu) = %p is not 16-byte aligned", n, p);
        gm_free(p);
    }
    static const size_t large[] = { 65536, 65537, 100000, 1 * MiB, 1 * MiB + 1, 3 * MiB + 5,
                                    50 * MiB + 3 };
    for (size_t i = 0; i < sizeof large / sizeof large[0]; i++) {
        void *p = gm_malloc(large[i]);
        assert_non_null(p);
        assert_true(is_aligned(p, 16));
        void *c = gm_calloc(1, large[i]);
        assert_non_null(c);
        assert_true(is_aligned(c, 16));
        gm_free(p);
        gm_free(c);
    }
}

/* ---- usable size --------------------------------------------------------- */

static void test_api_usable_size_null_is_zero(void **state)
{
    (void)state;
    assert_int_equal(gm_usable_size(NULL), 0);
}

static void test_api_usable_size_covers_request_and_is_stable(void **state)
{
    (void)state;
    enum { N = 40 }; /* up to ~20 MiB */
    void *p[N];
    size_t u[N];
    size_t n = 1;
    for (int i = 0; i < N; i++, n = n * 3 / 2 + 1) {
        p[i] = gm_malloc(n);
        assert_non_null(p[i]);
        u[i] = gm_usable_size(p[i]);
        assert_true(u[i] >= n);
        fill(p[i], u[i], (unsigned)i); /* every usable byte is writable */
    }
    /* Churn the heap, then ask again. */
    for (int k = 0; k < 2000; k++)
        gm_free(gm_malloc((size_t)(k * 37) % 70000));
    for (int i = 0; i < N; i++) {
        assert_int_equal(gm_usable_size(p[i]), u[i]);
        assert_true(check(p[i], u[i], (unsigned)i)); /* no neighbour wrote here */
        gm_free(p[i]);
    }
}

/* ---- many sizes ---------------------------------------------------------- */

static void test_api_many_sizes_hold_patterns(void **state)
{
    (void)state;
    enum { MAX = 6000 };
    void **p = calloc(MAX, sizeof *p);
    size_t *n = calloc(MAX, sizeof *n);
    assert_non_null(p);
    assert_non_null(n);
    int count = 0;
    for (size_t s = 0; s <= 300000 && count < MAX; count++) {
        n[count] = s;
        p[count] = gm_malloc(s);
        assert_non_null(p[count]);
        fill(p[count], s, (unsigned)count);
        s += s < 4096 ? 1 : s / 64;
    }
    for (int i = 0; i < count; i++)
        if (!check(p[i], n[i], (unsigned)i))
            fail_msg("block %d (%zu bytes) at %p was overwritten", i, n[i], p[i]);
    for (int i = 0; i < count; i += 2) /* free in two interleaved passes */
        gm_free(p[i]);
    for (int i = 1; i < count; i += 2) {
        assert_true(check(p[i], n[i], (unsigned)i));
        gm_free(p[i]);
    }
    free(p);
    free(n);
}

/* ---- release ------------------------------------------------------------- */

static void test_api_release_keeps_live_blocks(void **state)
{
    (void)state;
    enum { N = 256 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        size_t n = (size_t)(i % 8 == 0 ? 200000 : 64 + i * 40);
        p[i] = gm_malloc(n);
        assert_non_null(p[i]);
        fill(p[i], n, (unsigned)i);
    }
    for (int i = 0; i < N; i += 2)
        gm_free(p[i]);
    int r = gm_release();
    assert_true(r == 0 || r == 1);
    for (int i = 1; i < N; i += 2) {
        size_t n = (size_t)(i % 8 == 0 ? 200000 : 64 + i * 40);
        assert_true(check(p[i], n, (unsigned)i));
        gm_free(p[i]);
    }
    /* Memory given back is usable again. */
    for (int i = 0; i < N; i++) {
        p[i] = gm_calloc(1, 4096);
        assert_non_null(p[i]);
        assert_true(all_zero(p[i], 4096));
    }
    for (int i = 0; i < N; i++)
        gm_free(p[i]);
}

#if GM_TEST_HAVE_STATS
static void test_api_release_returns_free_pages(void **state)
{
    (void)state;
    enum { N = 32 };
    void *p[N];
    for (int i = 0; i < N; i++) {
        p[i] = gm_malloc(256 * KiB);
        assert_non_null(p[i]);
        memset(p[i], 0x77, 256 * KiB);
    }
    for (int i = 0; i < N; i++)
        gm_free(p[i]);
    struct gm_stats before, after;
    gm_get_stats(&before);
    int r = gm_release();
    gm_get_stats(&after);
    /* "Returns every free page to the operating system now". */
    if (before.heap_free >= 4 * MiB)
        assert_int_equal(r, 1);
    if (after.heap_free > 64 * KiB)
        fail_msg("after gm_release %" PRIu64 " free bytes still backed (before: %" PRIu64 ")",
                 after.heap_free, before.heap_free);
}

static void test_api_stats_count_live_bytes(void **state)
{
    (void)state;
    struct gm_stats before, during, after;
    gm_get_stats(&before);
    assert_true(before.committed <= before.mapped);
    size_t n = 32 * MiB;
    char *p = gm_malloc(n);
    assert_non_null(p);
    memset(p, 1, n);
    gm_get_stats(&during);
    uint64_t live_before = before.small_in_use + before.large_in_use;
    uint64_t live_during = during.small_in_use + during.large_in_use;
    assert_true(live_during >= live_before + n || during.huge_mapped >= before.huge_mapped + n);
    assert_true(during.mapped >= n);
    assert_true(during.committed <= during.mapped);
    gm_free(p);
    gm_get_stats(&after);
    assert_true(after.small_in_use + after.large_in_use < live_during ||
                after.huge_mapped + n <= during.huge_mapped);
}

static void test_api_print_stats_writes_report(void **state)
{
    (void)state;
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    void *p = gm_malloc(1000);
    assert_non_null(p);
    gm_print_stats(fd[1]);
    close(fd[1]);
    char buf[65536];
    ssize_t total = 0, r;
    while ((r = read(fd[0], buf + total, sizeof buf - 1 - (size_t)total)) > 0)
        total += r;
    close(fd[0]);
    gm_free(p);
    assert_true(total > 0);
}
#endif

/* ---- invalid frees -------------------------------------------------------- */

static char global_block[256];

/* Hidden from the optimiser so it cannot see (and warn about) the bad free. */
static void (*volatile free_fn)(void *) = gm_free;

/* Runs free_fn(bad) in a child with stderr on a pipe; returns what it wrote.
 * The child must die of SIGABRT. */
static void expect_invalid_free_abort(void *bad)
{
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct rlimit no_core = { 0, 0 };
        setrlimit(RLIMIT_CORE, &no_core);
        /* cmocka catches these to report a failed test; the child must die. */
        static const int sigs[] = { SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE };
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        dup2(fd[1], 2);
        close(fd[0]);
        close(fd[1]);
        alarm(10);
        free_fn(bad);
        _exit(0); /* free returned: the test fails */
    }
    close(fd[1]);
    char msg[512];
    size_t len = 0;
    ssize_t r;
    while (len < sizeof msg - 1 && (r = read(fd[0], msg + len, sizeof msg - 1 - len)) > 0)
        len += (size_t)r;
    msg[len] = '\0';
    close(fd[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGABRT)
        fail_msg("free(%p): child did not abort (status 0x%x), stderr: \"%s\"", bad, status, msg);
    const char prefix[] = "gomalloc: free(): invalid pointer 0x";
    if (strncmp(msg, prefix, sizeof prefix - 1) != 0)
        fail_msg("free(%p): unexpected stderr \"%s\"", bad, msg);
    uintptr_t printed = (uintptr_t)strtoull(msg + sizeof prefix - 1, NULL, 16);
    if (printed != (uintptr_t)bad)
        fail_msg("free(%p): message names another address: \"%s\"", bad, msg);
}

static void test_api_invalid_free_stack_aborts(void **state)
{
    (void)state;
    char on_stack[128];
    memset(on_stack, 0, sizeof on_stack);
    expect_invalid_free_abort(on_stack + 32);
}

static void test_api_invalid_free_global_aborts(void **state)
{
    (void)state;
    expect_invalid_free_abort(global_block + 64);
}

static void test_api_invalid_free_interior_aborts(void **state)
{
    (void)state;
    char *p = gm_malloc(64);
    assert_non_null(p);
    expect_invalid_free_abort(p + 16);
    gm_free(p); /* the parent's block is untouched and still ours */
}

static void test_api_invalid_free_mmap_aborts(void **state)
{
    (void)state;
    size_t n = 64 * KiB;
    void *m = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(m != MAP_FAILED);
    expect_invalid_free_abort(m);
    expect_invalid_free_abort((char *)m + 4096);
    munmap(m, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_api_malloc_zero_unique_and_freeable),
        cmocka_unit_test(test_api_free_null_is_noop),
        cmocka_unit_test(test_api_free_preserves_errno),
        cmocka_unit_test(test_api_realloc_zero_frees_and_returns_null),
        cmocka_unit_test(test_api_realloc_null_is_malloc),
        cmocka_unit_test(test_api_realloc_same_class_keeps_pointer),
        cmocka_unit_test(test_api_realloc_preserves_contents),
        cmocka_unit_test(test_api_realloc_small_growth_has_headroom),
        cmocka_unit_test(test_api_oversize_fails_with_enomem),
        cmocka_unit_test(test_api_realloc_oversize_keeps_block),
        cmocka_unit_test(test_api_calloc_overflow_fails_with_enomem),
        cmocka_unit_test(test_api_reallocarray_overflow_fails_with_enomem),
        cmocka_unit_test(test_api_posix_memalign_bad_alignment_is_einval),
        cmocka_unit_test(test_api_posix_memalign_huge_is_enomem),
        cmocka_unit_test(test_api_calloc_zeroed_small),
        cmocka_unit_test(test_api_calloc_zeroed_large),
        cmocka_unit_test(test_api_calloc_zeroed_huge),
        cmocka_unit_test(test_api_realloc_large_in_place),
        cmocka_unit_test(test_api_realloc_large_grows_down),
        cmocka_unit_test(test_api_realloc_huge_in_place),
        cmocka_unit_test(test_api_realloc_huge_moves_by_remap),
        cmocka_unit_test(test_api_realloc_huge_split_mapping),
        cmocka_unit_test(test_api_calloc_zeroed_huge_other_sizes),
        cmocka_unit_test(test_api_aligned_alloc_every_power_of_two),
        cmocka_unit_test(test_api_memalign_every_power_of_two),
        cmocka_unit_test(test_api_posix_memalign_every_power_of_two),
        cmocka_unit_test(test_api_aligned_blocks_live_together),
        cmocka_unit_test(test_api_valloc_page_aligned),
        cmocka_unit_test(test_api_pvalloc_page_aligned_and_rounded),
        cmocka_unit_test(test_api_pvalloc_zero_works),
        cmocka_unit_test(test_api_every_block_16_byte_aligned),
        cmocka_unit_test(test_api_usable_size_null_is_zero),
        cmocka_unit_test(test_api_usable_size_covers_request_and_is_stable),
        cmocka_unit_test(test_api_many_sizes_hold_patterns),
        cmocka_unit_test(test_api_release_keeps_live_blocks),
#if GM_TEST_HAVE_STATS
        cmocka_unit_test(test_api_release_returns_free_pages),
        cmocka_unit_test(test_api_stats_count_live_bytes),
        cmocka_unit_test(test_api_print_stats_writes_report),
#endif
        cmocka_unit_test(test_api_invalid_free_stack_aborts),
        cmocka_unit_test(test_api_invalid_free_global_aborts),
        cmocka_unit_test(test_api_invalid_free_interior_aborts),
        cmocka_unit_test(test_api_invalid_free_mmap_aborts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
