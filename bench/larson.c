/*
 * larson.c — a server-like workload with cross-thread frees.
 *
 *   larson THREADS SCALE
 *
 * There are THREADS "connections", each an array of SLOTS live blocks
 * (10..1000 bytes, stamped).  Work proceeds in rounds separated by a
 * barrier; in round k thread t serves connection (t + k) % THREADS, so a
 * block is usually freed by a different thread than the one that allocated
 * it, as when a request object moves between worker threads.  Serving is
 * OPS_PER_ROUND times: pick a random slot, check and free its block, allocate
 * a new one there.  With one thread this is plain random replacement.
 */
#include "common.h"
#include <pthread.h>

#define SLOTS 4000
#define OPS_PER_ROUND 20000
#define OPS_PER_SCALE 30000000L
#define MIN_SIZE 10
#define MAX_SIZE 1000

typedef struct {
    void *p;
    uint32_t size;
    uint32_t tag;
} slot_t;

static int nthreads;
static long rounds;
static slot_t *conn;                 /* nthreads * SLOTS, shared by rounds */
static pthread_barrier_t barrier;

static void slot_new(slot_t *s, rng_t *r, uint32_t tag)
{
    s->size = (uint32_t)(MIN_SIZE + rng_below(r, MAX_SIZE - MIN_SIZE + 1));
    s->p = xmalloc(s->size);
    s->tag = tag;
    stamp_fill(s->p, s->size, tag, 16);
}

static void slot_free(slot_t *s)
{
    stamp_check(s->p, s->size, s->tag, 16, "larson");
    free(s->p);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    rng_t r;
    rng_seed(&r, 3000 + (uint64_t)id);
    uint32_t tag = (uint32_t)id << 24;
    slot_t *mine = conn + (size_t)id * SLOTS;
    for (int i = 0; i < SLOTS; i++)
        slot_new(&mine[i], &r, tag++);
    pthread_barrier_wait(&barrier);
    for (long k = 0; k < rounds; k++) {
        slot_t *c = conn + (size_t)((id + k) % nthreads) * SLOTS;
        for (int op = 0; op < OPS_PER_ROUND; op++) {
            slot_t *s = &c[rng_below(&r, SLOTS)];
            slot_free(s);
            slot_new(s, &r, tag++);
        }
        pthread_barrier_wait(&barrier);
    }
    /* Free the connection served last: again mostly another thread's. */
    slot_t *c = conn + (size_t)((id + rounds) % nthreads) * SLOTS;
    for (int i = 0; i < SLOTS; i++)
        slot_free(&c[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    nthreads = (int)bench_arg(argc, argv, 1, 1);
    double scale = bench_arg_f(argc, argv, 2, 1.0);
    rounds = (long)(OPS_PER_SCALE * scale) / nthreads / OPS_PER_ROUND;
    if (rounds < 1)
        rounds = 1;
    conn = xmalloc(sizeof(slot_t) * SLOTS * (size_t)nthreads);
    pthread_barrier_init(&barrier, NULL, (unsigned)nthreads);
    pthread_t tid[nthreads];
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&tid[i], NULL, worker, (void *)(intptr_t)i) != 0)
            return 2;
    for (int i = 0; i < nthreads; i++)
        pthread_join(tid[i], NULL);
    pthread_barrier_destroy(&barrier);
    free(conn);
    return 0;
}
