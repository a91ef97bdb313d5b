/*
 * valloc_pvalloc.c — the page-aligned allocators (glibc's tst-valloc,
 * tst-pvalloc and tst-pvalloc-fortify): a size near SIZE_MAX, and -pagesize
 * (which overflows when rounded up to a page), fail with ENOMEM; size 0
 * returns a block; blocks are page aligned; and pvalloc rounds the size up to
 * whole pages, so pvalloc(5) has a page of usable bytes, which may be written
 * even in a build with _FORTIFY_SOURCE (glibc bug 25401: no alloc_size
 * attribute may claim otherwise).
 */
#undef _FORTIFY_SOURCE
#define _FORTIFY_SOURCE 2
#include "check.h"

#include <malloc.h>

static volatile size_t minus_one = (size_t)-1;

static void expect_enomem(void *(*fn)(size_t), const char *name, size_t size)
{
    errno = 0;
    void *p = fn(size);
    int err = errno;
    gt_check(p == NULL, "%s(%#zx) returned a block", name, size);
    gt_check(err == ENOMEM, "%s(%#zx): errno %d, expected ENOMEM", name, size, err);
}

static void check_page_allocator(void *(*fn)(size_t), const char *name)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    expect_enomem(fn, name, minus_one);
    expect_enomem(fn, name, -page);
    void *p = fn(0);
    gt_check(p != NULL, "%s(0) returned NULL, expected a block", name);
    free(p);
    p = fn(32);
    gt_check(p != NULL, "%s(32) failed", name);
    gt_check((uintptr_t)p % page == 0, "%s(32) = %p is not page aligned", name, p);
    free(p);
}

static void pvalloc_rounds_up(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *p = pvalloc(5);
    gt_check(p != NULL, "pvalloc(5) failed");
    strcpy(p, "abcdefg");
    __asm__ volatile("" : : "g"(p) : "memory");
    gt_check(malloc_usable_size(p) >= page, "pvalloc(5): usable size %zu, less than a page (%zu)",
             malloc_usable_size(p), page);
    memset(p, 1, page);
    free(p);
}

int main(void)
{
    check_page_allocator(valloc, "valloc");
    check_page_allocator(pvalloc, "pvalloc");
    pvalloc_rounds_up();
    return 0;
}
