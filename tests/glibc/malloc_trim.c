/*
 * malloc_trim.c — malloc_trim(0) in the middle of a fragmented heap is safe
 * (glibc's tst-trim1): 10,000 blocks of random sizes below 16 KiB are
 * allocated and filled, all but every 13th freed, the heap trimmed, a
 * 30,000-byte block allocated and filled, and the heap trimmed again.  The
 * surviving blocks must keep their contents through both trims (glibc's test
 * only checks that nothing crashes), and malloc_trim returns 0 or 1.
 */
#include "check.h"

#include <malloc.h>

enum { COUNT = 10000, KEEP_EVERY = 13 };

static unsigned char *blocks[COUNT];
static size_t sizes[COUNT];

static void check_survivors(const char *when)
{
    for (int i = 0; i < COUNT; i += KEEP_EVERY)
        for (size_t j = 0; j < sizes[i]; j++)
            gt_check(blocks[i][j] == (unsigned char)sizes[i],
                     "%s: byte %zu of block %d (%zu bytes) changed", when, j, i, sizes[i]);
}

static void trim(const char *when)
{
    int rc = malloc_trim(0);
    gt_check(rc == 0 || rc == 1, "malloc_trim(0) returned %d %s", rc, when);
    check_survivors(when);
}

int main(void)
{
    unsigned seed = 7;
    for (int i = 0; i < COUNT; i++) {
        sizes[i] = (size_t)rand_r(&seed) % 16384;
        blocks[i] = malloc(sizes[i]);
        gt_check(blocks[i] != NULL, "malloc(%zu) failed", sizes[i]);
        memset(blocks[i], (int)(unsigned char)sizes[i], sizes[i]);
    }
    unsigned char *p = malloc(256);
    gt_check(p != NULL, "malloc(256) failed");
    memset(p, 1, 256);
    for (int i = 0; i < COUNT; i++)
        if (i % KEEP_EVERY != 0)
            free(blocks[i]);
    trim("after freeing 12 blocks in 13");

    unsigned char *q = malloc(30000);
    gt_check(q != NULL, "malloc(30000) failed after malloc_trim");
    memset(q, 2, 30000);
    trim("after a 30,000-byte allocation");
    for (int i = 0; i < 256; i++)
        gt_check(p[i] == 1, "the 256-byte block changed across malloc_trim");
    free(q);
    free(p);
    for (int i = 0; i < COUNT; i += KEEP_EVERY)
        free(blocks[i]);
    return 0;
}
