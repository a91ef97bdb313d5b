/*
 * blocks_disjoint.c — live blocks never overlap (glibc's mallocbug, a
 * regression test from an allocator whose bookkeeping table grew into a
 * block it had already handed out).
 *
 * The sequence of the original: two blocks of 0x3fa000 bytes, one of 0x3000,
 * one of 0x1000 freed at once, then blocks of 0x3000 and 0x7000 filled with
 * 0 and 1 and checked.  Here every live block is filled with its own byte and
 * all are checked at the end, and the sequence is repeated with sizes around
 * it, so any two blocks sharing memory show.
 */
#include "check.h"

struct live {
    unsigned char *p;
    size_t size;
    unsigned char fill;
};

enum { MAX_LIVE = 64 };
static struct live live[MAX_LIVE];
static int count;

static void take(size_t size)
{
    gt_check(count < MAX_LIVE, "too many blocks");
    unsigned char *p = malloc(size);
    gt_check(p != NULL, "malloc(%#zx) failed", size);
    live[count] = (struct live){ p, size, (unsigned char)(count + 1) };
    memset(p, live[count].fill, size);
    count++;
}

static void check_all(void)
{
    for (int i = 0; i < count; i++)
        for (size_t j = 0; j < live[i].size; j++)
            gt_check(live[i].p[j] == live[i].fill,
                     "block %d (%#zx bytes) was overwritten at byte %#zx: blocks overlap", i,
                     live[i].size, j);
}

static void release_all(void)
{
    while (count > 0)
        free(live[--count].p);
}

/* The original's sequence, with every size scaled by num/den. */
static void sequence(size_t num, size_t den)
{
    take(0x3fa000 * num / den);
    take(0x3fa000 * num / den);
    take(0x3000 * num / den);
    free(malloc(0x1000 * num / den));
    take(0x3000 * num / den);
    take(0x7000 * num / den);
    check_all();
    release_all();
}

int main(void)
{
    sequence(1, 1);
    for (size_t num = 1; num <= 7; num += 2)
        sequence(num, 4);
    return 0;
}
