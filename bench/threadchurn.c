/*
 * threadchurn.c — many short-lived threads that allocate and exit.
 *
 *   threadchurn THREADS SCALE
 *
 * Threads are started in waves of THREADS; each wave is joined before the
 * next starts.  A thread allocates OBJS blocks (skewed sizes up to 16 KiB,
 * stamped), checks and frees half of them in a random order, and leaves the
 * other half in its slot's mailbox.  The thread in the same slot of the next
 * wave first checks and frees what the previous (already exited) thread left,
 * so memory owned by dead threads' caches must be usable and reclaimable.
 * Each exit also exercises the allocator's thread-teardown path.
 */
#include "common.h"
#include <pthread.h>

#define OBJS 400
#define KEEP (OBJS / 2)
#define THREADS_PER_SCALE 14000L

typedef struct {
    void *p;
    uint32_t size;
    uint32_t tag;
} obj_t;

typedef struct {
    uint64_t seed;
    uint32_t tag0;
    int have_mail;
    obj_t mail[KEEP];                /* left for the next wave's thread */
} slot_t;

static void obj_check_free(obj_t *o)
{
    stamp_check(o->p, o->size, o->tag, 32, "threadchurn");
    free(o->p);
}

static void *worker(void *arg)
{
    slot_t *s = arg;
    rng_t r;
    rng_seed(&r, s->seed);
    if (s->have_mail)
        for (int i = 0; i < KEEP; i++)
            obj_check_free(&s->mail[i]);
    obj_t *o = xmalloc(sizeof(obj_t) * OBJS);
    for (int i = 0; i < OBJS; i++) {
        o[i].size = (uint32_t)rng_skewed_size(&r, 16384);
        o[i].p = xmalloc(o[i].size);
        o[i].tag = s->tag0 + (uint32_t)i;
        stamp_fill(o[i].p, o[i].size, o[i].tag, 32);
    }
    for (int i = OBJS - 1; i > 0; i--) {         /* shuffle */
        int j = (int)rng_below(&r, (uint64_t)i + 1);
        obj_t t = o[i];
        o[i] = o[j];
        o[j] = t;
    }
    for (int i = KEEP; i < OBJS; i++)
        obj_check_free(&o[i]);
    memcpy(s->mail, o, sizeof(obj_t) * KEEP);
    s->have_mail = 1;
    free(o);
    return NULL;
}

int main(int argc, char **argv)
{
    int threads = (int)bench_arg(argc, argv, 1, 1);
    double scale = bench_arg_f(argc, argv, 2, 1.0);
    long waves = (long)(THREADS_PER_SCALE * scale) / threads;
    slot_t *slot = calloc((size_t)threads, sizeof(slot_t));
    pthread_t tid[threads];
    if (slot == NULL)
        bench_oom(sizeof(slot_t) * (size_t)threads);
    for (long w = 0; w < waves; w++) {
        for (int i = 0; i < threads; i++) {
            slot[i].seed = (uint64_t)(w * threads + i);
            slot[i].tag0 = (uint32_t)(w * threads + i) * OBJS;
            if (pthread_create(&tid[i], NULL, worker, &slot[i]) != 0)
                return 2;
        }
        for (int i = 0; i < threads; i++)
            pthread_join(tid[i], NULL);
    }
    for (int i = 0; i < threads; i++)
        if (slot[i].have_mail)
            for (int k = 0; k < KEEP; k++)
                obj_check_free(&slot[i].mail[k]);
    free(slot);
    return 0;
}
