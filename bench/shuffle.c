/*
 * shuffle.c — allocate a batch of mixed small blocks, free it in random
 * order, repeat.
 *
 *   shuffle THREADS SCALE
 *
 * A round allocates BATCH blocks of uniform random size 1..1024 bytes
 * (stamped), shuffles their order, and checks and frees them all.  The next
 * round allocates from whatever order the frees left the allocator's lists
 * in: a LIFO free list hands back addresses scattered over every span the
 * previous round touched, so this measures how allocation locality and
 * per-span bookkeeping hold up after out-of-order frees of many size
 * classes at once (fastpath.c's batch mode does the same with one size and
 * 1000 blocks).  Total rounds are fixed by SCALE and split between threads.
 */
#include "common.h"
#include <pthread.h>

#define BATCH 10000
#define MAX_SIZE 1024
#define ROUNDS_PER_SCALE 800L

typedef struct {
    void *p;
    uint32_t size;
    uint32_t tag;
} blk_t;

static void *worker(void *arg)
{
    bench_job_t *job = arg;
    rng_t r;
    rng_seed(&r, 11000 + (uint64_t)job->id);
    blk_t *b = xmalloc(sizeof(blk_t) * BATCH);
    uint32_t tag = (uint32_t)job->id << 28;
    for (long round = 0; round < job->work; round++) {
        for (int i = 0; i < BATCH; i++) {
            b[i].size = 1 + (uint32_t)rng_below(&r, MAX_SIZE);
            b[i].tag = tag++;
            b[i].p = xmalloc(b[i].size);
            stamp_fill(b[i].p, b[i].size, b[i].tag, 16);
        }
        for (int i = BATCH - 1; i > 0; i--) {
            int j = (int)rng_below(&r, (uint64_t)i + 1);
            blk_t t = b[i];
            b[i] = b[j];
            b[j] = t;
        }
        for (int i = 0; i < BATCH; i++) {
            stamp_check(b[i].p, b[i].size, b[i].tag, 16, "shuffle");
            free(b[i].p);
        }
    }
    free(b);
    return NULL;
}

int main(int argc, char **argv)
{
    return bench_run_threads(argc, argv, ROUNDS_PER_SCALE, worker);
}
