/*
 * reallocarray_overflow.c — reallocarray (glibc's tst-reallocarray): a
 * product of count and size that overflows fails with ENOMEM, whichever
 * operand is the large one and whether or not the product lands near zero;
 * otherwise it behaves as realloc: it allocates from NULL, grows and shrinks
 * keeping the contents, and a failure leaves the block untouched.
 */
#include "check.h"

#include <malloc.h>

static void expect_overflow(void *p, size_t count, size_t size)
{
    const char *which = p ? "p" : "NULL";
    errno = 0;
    void *q = reallocarray(p, count, size);
    int err = errno;
    gt_check(q == NULL, "reallocarray(%s, %#zx, %#zx) returned a block for an overflowing product",
             which, count, size);
    gt_check(err == ENOMEM, "reallocarray(%s, %#zx, %#zx): errno %d, expected ENOMEM", which,
             count, size, err);
}

static void overflow_from_null(void)
{
    size_t max = SIZE_MAX;
    /* 65537 * (max / 65537 + 1) wraps to a small number. */
    size_t a = 65537, b = max / 65537 + 1;
    expect_overflow(NULL, max, 2);
    expect_overflow(NULL, 2, max);
    expect_overflow(NULL, a, b);
    expect_overflow(NULL, b, a);
}

static void check_bytes(const unsigned char *p, size_t n, const char *when)
{
    for (size_t i = 0; i < n; i++)
        gt_check(p[i] == 0xaf, "%s: byte %zu is %#x, expected 0xaf", when, i, p[i]);
}

static unsigned char *resize(unsigned char *p, size_t count, size_t size)
{
    unsigned char *q = reallocarray(p, count, size);
    gt_check(q != NULL, "reallocarray(p, %zu, %zu) failed", count, size);
    gt_check(malloc_usable_size(q) >= count * size,
             "reallocarray(p, %zu, %zu): usable size %zu is too small", count, size,
             malloc_usable_size(q));
    return q;
}

static void behaves_as_realloc(void)
{
    unsigned char *p = resize(NULL, 10, 2);
    memset(p, 0xaf, 10 * 2);
    p = resize(p, 20, 2);
    check_bytes(p, 10 * 2, "after growing to 20 x 2");
    p = resize(p, 5, 3);
    check_bytes(p, 5 * 3, "after shrinking to 5 x 3");
    expect_overflow(p, 2, SIZE_MAX);
    check_bytes(p, 5 * 3, "after a failed reallocarray");
    free(p);
}

int main(void)
{
    overflow_from_null();
    behaves_as_realloc();
    return 0;
}
