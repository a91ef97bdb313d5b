/*
 * liveset.c — random replacement in a large live set of small objects.
 *
 *   liveset THREADS SCALE
 *
 * Each thread fills LIVE / THREADS slots, then replaces a random one at each
 * operation: check and free its block, allocate a new one.  Sizes: 90%
 * 8..128 bytes, 9% 129..1024, 1% log-uniform 1 KiB..64 KiB (about 50 MB
 * live in all).  Unlike churn.c, whose short-lived FIFO keeps most traffic
 * in the thread cache, here every free lands on a random, long-idle object
 * in a heap far bigger than the caches, so the cost of freeing into cold
 * spans, of finding room in partly used ones, and the heap's fragmentation
 * show.  Total operations are fixed by SCALE and split between the threads.
 */
#include "common.h"
#include <pthread.h>

#define LIVE 200000L
#define OPS_PER_SCALE 4000000L

typedef struct {
    void *p;
    uint32_t size;
    uint32_t tag;
} slot_t;

static size_t live_size(rng_t *r)
{
    uint64_t p = rng_below(r, 100);
    if (p < 90)
        return 8 + (size_t)rng_below(r, 121);
    if (p < 99)
        return 129 + (size_t)rng_below(r, 896);
    return rng_log_size(r, 1025, 65536);
}

static void slot_new(slot_t *s, rng_t *r, uint32_t tag)
{
    s->size = (uint32_t)live_size(r);
    s->tag = tag;
    s->p = xmalloc(s->size);
    stamp_fill(s->p, s->size, tag, 16);
}

static void slot_free(slot_t *s)
{
    stamp_check(s->p, s->size, s->tag, 16, "liveset");
    free(s->p);
}

static long live_per_thread;

static void *worker(void *arg)
{
    bench_job_t *job = arg;
    rng_t r;
    rng_seed(&r, 8000 + (uint64_t)job->id);
    slot_t *slot = xmalloc(sizeof(slot_t) * (size_t)live_per_thread);
    uint32_t tag = (uint32_t)job->id << 28;
    for (long i = 0; i < live_per_thread; i++)
        slot_new(&slot[i], &r, tag++);
    for (long op = 0; op < job->work; op++) {
        slot_t *s = &slot[rng_below(&r, (uint64_t)live_per_thread)];
        slot_free(s);
        slot_new(s, &r, tag++);
    }
    for (long i = 0; i < live_per_thread; i++)
        slot_free(&slot[i]);
    free(slot);
    return NULL;
}

int main(int argc, char **argv)
{
    live_per_thread = LIVE / bench_arg(argc, argv, 1, 1);
    return bench_run_threads(argc, argv, OPS_PER_SCALE, worker);
}
