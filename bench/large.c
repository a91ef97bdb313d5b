/*
 * large.c — large blocks: 64 KiB to 64 MiB, every page touched.
 *
 *   large THREADS SCALE
 *
 * Each thread allocates blocks with log-uniform sizes between 64 KiB and
 * 64 MiB, writes one word in every 4 KiB page (so the cost of fresh pages —
 * page faults and zeroing — is part of what is measured, as it is for a real
 * program), keeps the last LIVE blocks, and checks every page of a block
 * before freeing it.  An allocator that caches and reuses large blocks avoids
 * the page faults; one that returns memory to the OS keeps RSS low.
 */
#include "common.h"
#include <pthread.h>

#define PAGE 4096
#define LIVE 4
#define MIN_SIZE (64u << 10)
#define MAX_SIZE (64u << 20)
#define BLOCKS_PER_SCALE 200L

typedef struct {
    uint64_t *p;
    size_t size;
    uint64_t tag;
} blk_t;

static void blk_touch(blk_t *b)
{
    for (size_t off = 0; off < b->size; off += PAGE)
        b->p[off / 8] = b->tag ^ off;
}

static void blk_check_free(blk_t *b)
{
    for (size_t off = 0; off < b->size; off += PAGE)
        if (b->p[off / 8] != (b->tag ^ off))
            bench_fail("large", b->p, b->size);
    free(b->p);
    b->p = NULL;
}

static void *worker(void *arg)
{
    bench_job_t *job = arg;
    rng_t r;
    rng_seed(&r, 5000 + (uint64_t)job->id);
    blk_t live[LIVE] = {{0}};
    for (long i = 0; i < job->work; i++) {
        blk_t *b = &live[i % LIVE];
        if (b->p)
            blk_check_free(b);
        b->size = rng_log_size(&r, MIN_SIZE, MAX_SIZE);
        b->p = xmalloc(b->size);
        b->tag = ((uint64_t)job->id << 48) ^ (uint64_t)i;
        blk_touch(b);
    }
    for (int i = 0; i < LIVE; i++)
        if (live[i].p)
            blk_check_free(&live[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    return bench_run_threads(argc, argv, BLOCKS_PER_SCALE, worker);
}
