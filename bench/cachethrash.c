/*
 * cachethrash.c — a tiny object allocated, written and read back many times,
 * freed, again and again (after Hoard's cache-thrash as mimalloc-bench runs
 * it: "cache-thrash T 1000 1 2000000 T", 1-byte objects).
 *
 *   cachethrash THREADS SCALE [OBJ_SIZE]
 *
 * Each thread does ITERATIONS rounds of: malloc(OBJ_SIZE) (default 1), then
 * REPS_PER_SCALE * SCALE / THREADS times write every byte and read it back
 * through a volatile local, then check and free.  With several threads an
 * allocator that puts different threads' objects in one cache line makes
 * them fight over it (falseshare.c measures that case with 8-byte objects);
 * with one thread the loop runs alone and only where the object lands
 * matters: a store to it and the reload of the volatile on the stack stall
 * when their addresses look alike to the core's store forwarding, so an
 * allocator's choice of address can cost time even here.
 */
#include "common.h"
#include <pthread.h>

#define ITERATIONS 1000
#define REPS_PER_SCALE 600000L

static size_t obj_size;
static long reps;

static void *worker(void *arg)
{
    bench_job_t *job = arg;
    for (int it = 0; it < ITERATIONS; it++) {
        /* volatile: every write and read must reach the object, not be
         * folded into one store after the loop. */
        volatile unsigned char *p = xmalloc(obj_size);
        for (long j = 0; j < reps; j++)
            for (size_t k = 0; k < obj_size; k++) {
                p[k] = (unsigned char)(k + (size_t)job->id);
                volatile unsigned char ch = p[k];
                ch++;
            }
        for (size_t k = 0; k < obj_size; k++)
            if (p[k] != (unsigned char)(k + (size_t)job->id))
                bench_fail("cachethrash", (void *)p, obj_size);
        free((void *)p);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = (int)bench_arg(argc, argv, 1, 1);
    double scale = bench_arg_f(argc, argv, 2, 1.0);
    obj_size = (size_t)bench_arg(argc, argv, 3, 1);
    reps = (long)(REPS_PER_SCALE * scale) / threads;
    pthread_t tid[threads];
    bench_job_t job[threads];
    for (int i = 0; i < threads; i++) {
        job[i].id = i;
        job[i].work = reps;
        if (pthread_create(&tid[i], NULL, worker, &job[i]) != 0)
            return 2;
    }
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    return 0;
}
