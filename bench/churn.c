/*
 * churn.c — a live set of mixed sizes under steady churn.
 *
 *   churn THREADS SCALE
 *
 * Each thread keeps its own heap picture, like a program's steady state:
 *   - a long-lived pool of LONG_SLOTS blocks, one of which is replaced
 *     (freed and reallocated with a new size) every LONG_EVERY operations;
 *   - a short-lived FIFO of SHORT_SLOTS blocks: every operation frees the
 *     oldest and allocates a new one.
 * Sizes are skewed like real programs: 70% 8..64 bytes, 22% up to 512,
 * 7% up to 8 KiB, 1% log-uniform 8 KiB..1 MiB.  Every block is stamped at
 * allocation and checked before it is freed.  Total work is fixed by SCALE
 * and split between the threads, so wall time shows scaling.
 */
#include "common.h"
#include <pthread.h>

#define LONG_SLOTS 20000
#define LONG_EVERY 8
#define SHORT_SLOTS 256
#define MAX_SIZE (1u << 20)
#define OPS_PER_SCALE 12000000L

typedef struct {
    void *p;
    size_t size;
    uint64_t tag;
} slot_t;

static void slot_new(slot_t *s, rng_t *r, uint64_t tag)
{
    s->size = rng_skewed_size(r, MAX_SIZE);
    s->p = xmalloc(s->size);
    s->tag = tag;
    stamp_fill(s->p, s->size, tag, 64);
}

static void slot_free(slot_t *s)
{
    stamp_check(s->p, s->size, s->tag, 64, "churn");
    free(s->p);
    s->p = NULL;
}

static void *worker(void *arg)
{
    bench_job_t *job = arg;
    rng_t r;
    rng_seed(&r, 1000 + (uint64_t)job->id);
    slot_t *lng = xmalloc(sizeof(slot_t) * LONG_SLOTS);
    slot_t shrt[SHORT_SLOTS];
    uint64_t tag = (uint64_t)job->id << 40;
    for (int i = 0; i < LONG_SLOTS; i++)
        slot_new(&lng[i], &r, tag++);
    for (int i = 0; i < SHORT_SLOTS; i++)
        slot_new(&shrt[i], &r, tag++);
    for (long op = 0; op < job->work; op++) {
        slot_t *s = &shrt[op % SHORT_SLOTS];
        slot_free(s);
        slot_new(s, &r, tag++);
        if (op % LONG_EVERY == 0) {
            s = &lng[rng_below(&r, LONG_SLOTS)];
            slot_free(s);
            slot_new(s, &r, tag++);
        }
    }
    for (int i = 0; i < LONG_SLOTS; i++)
        slot_free(&lng[i]);
    for (int i = 0; i < SHORT_SLOTS; i++)
        slot_free(&shrt[i]);
    free(lng);
    return NULL;
}

int main(int argc, char **argv)
{
    return bench_run_threads(argc, argv, OPS_PER_SCALE, worker);
}
