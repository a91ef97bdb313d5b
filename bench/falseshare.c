/*
 * falseshare.c — false sharing caused by where the allocator puts objects
 * (after cache-thrash and cache-scratch).
 *
 *   falseshare THREADS SCALE [thrash|scratch|both]
 *
 * thrash:  each thread repeatedly allocates a small OBJ_SIZE object, writes
 *          every byte of it WRITES times, checks it and frees it.  An
 *          allocator that carves small objects for different threads out of
 *          the same cache line makes the threads' writes fight over it.
 * scratch: the main thread allocates one small object per worker (so they are
 *          neighbours) and hands them out; each worker frees the object it was
 *          given and then runs the thrash loop.  An allocator that gives the
 *          freed object back to the worker that freed it keeps the false
 *          sharing alive.
 * both:    thrash, then scratch (default).  Total work is split between the
 *          threads.
 */
#include "common.h"
#include <pthread.h>

#define OBJ_SIZE 8
#define WRITES 2000
#define ROUNDS_PER_SCALE 250000L

typedef struct {
    int id;
    long rounds;
    unsigned char *given;            /* scratch: allocated by main thread */
} job_t;

static void thrash(job_t *job)
{
    for (long k = 0; k < job->rounds; k++) {
        volatile unsigned char *p = xmalloc(OBJ_SIZE);
        for (int w = 0; w < WRITES; w++)
            for (int b = 0; b < OBJ_SIZE; b++)
                p[b] = (unsigned char)(w + b + job->id);
        for (int b = 0; b < OBJ_SIZE; b++)
            if (p[b] != (unsigned char)(WRITES - 1 + b + job->id))
                bench_fail("falseshare", (void *)p, OBJ_SIZE);
        free((void *)p);
    }
}

static void *worker(void *arg)
{
    job_t *job = arg;
    if (job->given) {
        if (job->given[0] != (unsigned char)job->id)
            bench_fail("falseshare handoff", job->given, OBJ_SIZE);
        free(job->given);
    }
    thrash(job);
    return NULL;
}

static int run_phase(int threads, long rounds, int scratch)
{
    pthread_t tid[threads];
    job_t job[threads];
    for (int i = 0; i < threads; i++) {
        job[i].id = i;
        job[i].rounds = rounds / threads;
        job[i].given = NULL;
        if (scratch) {
            job[i].given = xmalloc(OBJ_SIZE);
            job[i].given[0] = (unsigned char)i;
        }
    }
    for (int i = 0; i < threads; i++)
        if (pthread_create(&tid[i], NULL, worker, &job[i]) != 0)
            return 2;
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    return 0;
}

int main(int argc, char **argv)
{
    int threads = (int)bench_arg(argc, argv, 1, 1);
    double scale = bench_arg_f(argc, argv, 2, 1.0);
    const char *mode = argc > 3 ? argv[3] : "both";
    long rounds = (long)(ROUNDS_PER_SCALE * scale);
    int both = strcmp(mode, "both") == 0, rc = 0;
    if (both || strcmp(mode, "thrash") == 0)
        rc |= run_phase(threads, both ? rounds / 2 : rounds, 0);
    if (both || strcmp(mode, "scratch") == 0)
        rc |= run_phase(threads, both ? rounds / 2 : rounds, 1);
    return rc;
}
