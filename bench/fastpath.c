/*
 * fastpath.c — the allocator's fast path: malloc+free of one size.
 *
 *   fastpath SIZE N [pair|batch|both]
 *
 * pair:  N times malloc(SIZE), write and read back one word, free.  After the
 *        first few iterations every pair should hit the thread cache; this is
 *        the mode bench-insn runs under callgrind to count instructions per
 *        pair (the content check costs the same few instructions under every
 *        allocator).
 * batch: N blocks in batches of 1000: allocate the batch, stamp every block,
 *        then check and free it in a random order (a shuffled free list is the
 *        common case in real programs, and defeats LIFO-only caches).
 * both:  pair then batch (the default; what the timed benchmark runs).
 */
#include "common.h"

#define BATCH 1000

static void run_pairs(size_t size, long n)
{
    for (long i = 0; i < n; i++) {
        uint64_t *p = xmalloc(size);
        p[0] = (uint64_t)i;
        bench_escape(p);
        if (p[0] != (uint64_t)i)
            bench_fail("pair", p, size);
        free(p);
    }
}

static void shuffle(rng_t *r, uint32_t *idx, int n)
{
    for (int i = n - 1; i > 0; i--) {
        int j = (int)rng_below(r, (uint64_t)i + 1);
        uint32_t t = idx[i];
        idx[i] = idx[j];
        idx[j] = t;
    }
}

static void run_batches(size_t size, long n)
{
    static void *blk[BATCH];
    static uint32_t idx[BATCH];
    rng_t r;
    rng_seed(&r, 42);
    for (long done = 0; done < n; done += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            blk[i] = xmalloc(size);
            stamp_fill(blk[i], size, (uint64_t)(done + i), 16);
            idx[i] = (uint32_t)i;
        }
        shuffle(&r, idx, BATCH);
        for (int k = 0; k < BATCH; k++) {
            int i = (int)idx[k];
            stamp_check(blk[i], size, (uint64_t)(done + i), 16, "batch");
            free(blk[i]);
        }
    }
}

int main(int argc, char **argv)
{
    size_t size = (size_t)bench_arg(argc, argv, 1, 64);
    long n = bench_arg(argc, argv, 2, 1000000);
    const char *mode = argc > 3 ? argv[3] : "both";
    if (size < 8)
        size = 8;
    if (strcmp(mode, "pair") == 0 || strcmp(mode, "both") == 0)
        run_pairs(size, n);
    if (strcmp(mode, "batch") == 0 || strcmp(mode, "both") == 0)
        run_batches(size, n);
    return 0;
}
