/*
 * calloc_zeroed.c — every byte calloc returns is zero, even when the memory
 * was just used and dirtied by an earlier block (glibc's tst-calloc).
 *
 * Rounds of 50,000 blocks of one size (15, 5, 17, 6, 31, 96 bytes), then of
 * random counts and element sizes: each block is checked and then filled with
 * 0xff before all are freed, so the next round gets dirty memory back.  Large
 * blocks (64 KiB to 4 MiB, where an allocator may skip the clearing for
 * memory fresh from the kernel) go through the same dirty-then-reuse cycle.
 * calloc with a zero count or size may return NULL or a block; it must not
 * crash, and a block it returns must be freeable.
 */
#include "check.h"

#include <limits.h>

enum { SAMPLES = 50000 };

static char *blocks[SAMPLES];

static void check_zero_then_dirty(char *p, size_t size, int index)
{
    for (size_t j = 0; j < size; j++) {
        gt_check(p[j] == 0, "calloc: byte %zu of block %d (size %zu) is %#x, not 0", j, index,
                 size, (unsigned char)p[j]);
        p[j] = (char)0xff;
    }
}

static void fixed_round(size_t size)
{
    for (int i = 0; i < SAMPLES; i++) {
        blocks[i] = calloc(1, size);
        gt_check(blocks[i] != NULL, "calloc(1, %zu) failed", size);
        check_zero_then_dirty(blocks[i], size, i);
    }
    for (int i = SAMPLES - 1; i >= 0; i--)
        free(blocks[i]);
}

static void random_round(void)
{
    unsigned seed = 12345;
    for (int i = 0; i < SAMPLES; i++) {
        size_t count = 1 + (size_t)rand_r(&seed) % 10;
        size_t each = 1 + (size_t)rand_r(&seed) % 100;
        blocks[i] = calloc(count, each);
        gt_check(blocks[i] != NULL, "calloc(%zu, %zu) failed", count, each);
        check_zero_then_dirty(blocks[i], count * each, i);
    }
    for (int i = SAMPLES - 1; i >= 0; i--)
        free(blocks[i]);
}

/* Two passes: the second gets back the pages the first dirtied. */
static void large_rounds(void)
{
    for (int pass = 0; pass < 2; pass++)
        for (size_t size = 64 * 1024; size <= 4 << 20; size *= 2) {
            char *p = calloc(size / 16, 16);
            gt_check(p != NULL, "calloc(%zu, 16) failed", size / 16);
            check_zero_then_dirty(p, size, pass);
            free(p);
        }
}

static void zero_sized(void)
{
    static volatile size_t huge = SIZE_MAX;
    free(calloc(0, 0));
    free(calloc(0, UINT_MAX));
    free(calloc(UINT_MAX, 0));
    free(calloc(0, huge));
    free(calloc(huge, 0));
}

int main(void)
{
    static const size_t sizes[] = { 15, 5, 17, 6, 31, 96 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        fixed_round(sizes[i]);
    random_round();
    large_rounds();
    zero_sized();
    return 0;
}
