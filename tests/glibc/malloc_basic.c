/*
 * malloc_basic.c — malloc's edge cases as glibc defines them (glibc's
 * tst-malloc): malloc(SIZE_MAX) fails with ENOMEM; realloc(p, 0) frees p and
 * returns NULL, for an ordinary block and for one from malloc(0); malloc(0)
 * returns a block; a large request (513 KiB, mmap territory for glibc)
 * succeeds; a negative size converted to size_t (-512 KiB) fails.
 */
#include "check.h"

#include <malloc.h>

/* Sizes hidden from the compiler, which would warn about a constant request
 * above PTRDIFF_MAX. */
static volatile size_t minus_one = (size_t)-1;
static volatile size_t minus_512k = (size_t)-512 * 1024;

static void huge_request_fails(void)
{
    errno = 0;
    void *p = malloc(minus_one);
    int err = errno;
    gt_check(p == NULL, "malloc(SIZE_MAX) returned a block");
    gt_check(err == ENOMEM, "malloc(SIZE_MAX): errno %d, expected ENOMEM", err);
    errno = 0;
    p = malloc(minus_512k);
    gt_check(p == NULL, "malloc((size_t)-512 KiB) returned a block");
}

static void realloc_to_zero_frees(void)
{
    void *p = malloc(10);
    gt_check(p != NULL, "malloc(10) failed");
    gt_check(realloc(p, 0) == NULL, "realloc(malloc(10), 0) returned a block, expected NULL");
    p = malloc(0);
    gt_check(p != NULL, "malloc(0) returned NULL, expected a block");
    gt_check(realloc(p, 0) == NULL, "realloc(malloc(0), 0) returned a block, expected NULL");
}

static void large_request_works(void)
{
    size_t size = 513 * 1024;
    char *p = malloc(size);
    gt_check(p != NULL, "malloc(513 KiB) failed");
    memset(p, 0x33, size);
    gt_check(p[0] == 0x33 && p[size - 1] == 0x33, "a 513 KiB block does not hold its contents");
    free(p);
}

int main(void)
{
    huge_request_fails();
    realloc_to_zero_frees();
    large_request_works();
    return 0;
}
