/*
 * threadscale.c — independent threads, each replacing blocks at random in a
 * private working set (after glibc's benchtests/bench-malloc-thread.c).
 *
 *   threadscale THREADS SCALE
 *
 * Every thread owns WORKING_SET slots and nothing else: an operation picks a
 * slot at random, checks and frees its block, and allocates a new one whose
 * size follows an inverse-square distribution between MIN_SIZE and MAX_SIZE
 * (about half the blocks are 4..8 bytes, one in a thousand is past 4 KiB).
 * The new block is written in full, as the published benchmark does.  No
 * block is ever seen by another thread, so the allocator's only reason to
 * slow down with more threads is its own shared state.
 *
 * Unlike the other workloads, the work here is per thread: each of the
 * THREADS threads does OPS_PER_SCALE * SCALE operations, so with perfect
 * scaling the wall time stays flat as threads are added (up to the number of
 * cores).  The program prints the total ("ops N"), from which the runner
 * reports operations per second and the throughput ratio between thread
 * counts.
 */
#include "common.h"
#include <pthread.h>

#define WORKING_SET 1024
#define MIN_SIZE 4
#define MAX_SIZE 32768
#define SIZE_TABLE 8192
#define OPS_PER_SCALE 12000000L

typedef struct {
    unsigned char *p;
    uint32_t size;
    uint32_t tag;
} slot_t;

/* Sizes are drawn once into a table that every thread walks from its own
 * start; the published benchmark does the same so the power function stays
 * out of the timed loop. */
static uint32_t size_table[SIZE_TABLE];

/* Inverse-square density on [lo, hi]: invert the distribution function, whose
 * inverse is 1 / (1/lo - u (1/lo - 1/hi)). */
static uint32_t inverse_square_size(rng_t *r)
{
    double u = (double)(rng_next(r) >> 11) / 9007199254740992.0;
    double a = 1.0 / MIN_SIZE, b = 1.0 / MAX_SIZE;
    double s = 1.0 / (a - u * (a - b));
    if (s < MIN_SIZE)
        s = MIN_SIZE;
    if (s > MAX_SIZE)
        s = MAX_SIZE;
    return (uint32_t)s;
}

static void slot_fill(slot_t *s, uint32_t size, uint32_t tag)
{
    s->size = size;
    s->tag = tag;
    s->p = xmalloc(size);
    stamp_fill(s->p, size, tag, size);
}

static void slot_check_free(slot_t *s)
{
    stamp_check(s->p, s->size, s->tag, 32, "threadscale");
    free(s->p);
    s->p = NULL;
}

static void *worker(void *arg)
{
    bench_job_t *job = arg;
    rng_t r;
    rng_seed(&r, 7000 + (uint64_t)job->id);
    slot_t *set = calloc(WORKING_SET, sizeof(slot_t));
    if (set == NULL)
        bench_oom(WORKING_SET * sizeof(slot_t));
    uint32_t tag = (uint32_t)job->id << 28;
    unsigned k = (unsigned)(job->id * 977) % SIZE_TABLE;
    for (long op = 0; op < job->work; op++) {
        slot_t *s = &set[rng_below(&r, WORKING_SET)];
        if (s->p)
            slot_check_free(s);
        slot_fill(s, size_table[k], tag++);
        k = (k + 1) % SIZE_TABLE;
    }
    for (int i = 0; i < WORKING_SET; i++)
        if (set[i].p)
            slot_check_free(&set[i]);
    free(set);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = (int)bench_arg(argc, argv, 1, 1);
    double scale = bench_arg_f(argc, argv, 2, 1.0);
    rng_t r;
    rng_seed(&r, 88);
    for (int i = 0; i < SIZE_TABLE; i++)
        size_table[i] = inverse_square_size(&r);
    /* Not bench_run_threads: that splits the work, this gives every
     * thread the full amount. */
    pthread_t tid[threads];
    bench_job_t job[threads];
    for (int i = 0; i < threads; i++) {
        job[i].id = i;
        job[i].work = (long)(OPS_PER_SCALE * scale);
        if (pthread_create(&tid[i], NULL, worker, &job[i]) != 0)
            return 2;
    }
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    /* The runner turns this into operations per second. */
    printf("ops %ld\n", (long)threads * (long)(OPS_PER_SCALE * scale));
    return 0;
}
