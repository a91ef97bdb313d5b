/*
 * aligned_alloc.c — aligned_alloc (glibc's tst-aligned-alloc): alignments 64
 * and 1 work; an alignment of 2^63 (SIZE_MAX / 2 + 1) fails; and an alignment
 * that is no power of two (65) or zero either fails with EINVAL (C17, glibc
 * 2.38 and later, gomalloc) or, as glibc 2.36 does (it treats aligned_alloc as
 * memalign), returns a block aligned to at least the next power of two.  Both
 * answers are accepted; a block that is not so aligned, or another errno, is
 * not.
 */
#include "check.h"

#include <stdalign.h>
#include <stddef.h>

static void expect_block(size_t align, size_t size)
{
    void *p = aligned_alloc(align, size);
    gt_check(p != NULL, "aligned_alloc(%zu, %zu) failed", align, size);
    gt_check((uintptr_t)p % align == 0, "aligned_alloc(%zu, %zu) = %p is misaligned", align, size,
             p);
    memset(p, 0x22, size);
    free(p);
}

static size_t next_power_of_two(size_t n)
{
    size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

static void invalid_alignment(size_t align, size_t size)
{
    errno = 0;
    void *p = aligned_alloc(align, size);
    int err = errno;
    if (p == NULL) {
        gt_check(err == EINVAL, "aligned_alloc(%zu, %zu): errno %d, expected EINVAL", align, size,
                 err);
        return;
    }
    size_t want = next_power_of_two(align);
    if (want < alignof(max_align_t))
        want = alignof(max_align_t);
    gt_check((uintptr_t)p % want == 0,
             "aligned_alloc(%zu, %zu) = %p: neither EINVAL nor %zu-byte aligned", align, size, p,
             want);
    free(p);
}

/* Hidden from the compiler, which rejects a constant alignment this large. */
static volatile size_t top_alignment = SIZE_MAX / 2 + 1;

int main(void)
{
    expect_block(64, 64);
    expect_block(1, 64);
    invalid_alignment(65, 64);
    invalid_alignment(0, 64);
    void *p = aligned_alloc(top_alignment, 64);
    gt_check(p == NULL, "aligned_alloc(SIZE_MAX / 2 + 1, 64) returned a block");
    return 0;
}
