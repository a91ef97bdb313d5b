/*
 * realloc_semantics.c — realloc as C and glibc define it (glibc's
 * tst-realloc):
 *  - realloc(NULL, SIZE_MAX) fails with ENOMEM; realloc(NULL, n) is malloc(n);
 *  - growing keeps the old contents (a calloc'd block's zeros), and so does
 *    shrinking (0xff bytes);
 *  - a failed realloc leaves the block allocated and unchanged;
 *  - realloc(p, 0) frees p and returns NULL; realloc(NULL, 0) returns a block
 *    like malloc(0);
 *  - growing a block to its malloc_usable_size() does not move it.  glibc
 *    2.36 still moves a block it serves with mmap (from 128 KiB; later
 *    versions do not), so the sizes tried stay below 128 KiB.
 */
#include "check.h"

#include <malloc.h>

static volatile size_t minus_one = (size_t)-1;

static int all_bytes(const unsigned char *p, size_t n, unsigned char value)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != value)
            return 0;
    return 1;
}

static void null_pointer_is_malloc(void)
{
    errno = 0;
    void *p = realloc(NULL, minus_one);
    int err = errno;
    gt_check(p == NULL, "realloc(NULL, SIZE_MAX) returned a block");
    gt_check(err == ENOMEM, "realloc(NULL, SIZE_MAX): errno %d, expected ENOMEM", err);
    p = realloc(NULL, 10);
    gt_check(p != NULL, "realloc(NULL, 10) failed");
    free(p);
}

static void grow_keeps_zeros(void)
{
    unsigned char *p = calloc(20, 1);
    gt_check(p != NULL, "calloc(20, 1) failed");
    p = realloc(p, 200);
    gt_check(p != NULL, "realloc(p, 200) failed");
    gt_check(all_bytes(p, 20, 0), "growing to 200 bytes lost the first 20 (zero) bytes");
    free(p);
}

/* Shrinks a block of 0xff bytes, then asks for SIZE_MAX, which must fail
 * without touching it; then realloc(p, 0) frees it. */
static void shrink_and_fail(void)
{
    unsigned char *p = realloc(NULL, 100);
    gt_check(p != NULL, "realloc(NULL, 100) failed");
    memset(p, 0xff, 100);
    p = realloc(p, 16);
    gt_check(p != NULL, "realloc(p, 16) failed");
    gt_check(all_bytes(p, 16, 0xff), "shrinking to 16 bytes changed them");
    gt_check(realloc(p, minus_one) == NULL, "realloc(p, SIZE_MAX) returned a block");
    gt_check(all_bytes(p, 16, 0xff), "a failed realloc changed the original block");
    gt_check(realloc(p, 0) == NULL, "realloc(p, 0) returned a block, expected NULL");
}

static void null_and_zero_is_malloc_zero(void)
{
    void *p = realloc(NULL, 0);
    gt_check(p != NULL, "realloc(NULL, 0) returned NULL, expected a block");
    free(p);
}

/* Sizes 3, 2051, ... below 128 KiB, until one had more than 1 KiB of slack:
 * asking for exactly the usable size must return the same block. */
static void grow_within_usable_size(void)
{
    for (size_t size = 3; size < 128 * 1024; size += 2048) {
        void *p = realloc(NULL, size);
        gt_check(p != NULL, "realloc(NULL, %zu) failed", size);
        size_t usable = malloc_usable_size(p);
        void *q = realloc(p, usable);
        gt_check(q == p, "realloc to the usable size (%zu, asked %zu) moved the block", usable,
                 size);
        free(q);
        if (usable - size > 1024)
            break;
    }
}

int main(void)
{
    null_pointer_is_malloc();
    grow_keeps_zeros();
    shrink_and_fail();
    null_and_zero_is_malloc_zero();
    grow_within_usable_size();
    return 0;
}
