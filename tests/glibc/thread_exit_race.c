/*
 * thread_exit_race.c — threads that exit while others allocate (glibc's
 * tst-malloc-thread-exit, which looks for races between thread exit and the
 * reuse of per-thread heaps).
 *
 * Two outer threads each run ROUNDS rounds; a round starts four inner
 * threads and meets them at a barrier.  Half of them allocate a block before
 * the barrier and free it after (so they own a cache when the others exit),
 * half allocate and free after it (so they need one while the others are
 * exiting); all exit right away and are joined.  The main thread reports a
 * stall as a deadlock.
 */
#include "check.h"

#include <malloc.h>

enum { OUTER = 2, INNER = 4, ROUNDS = 300, BLOCK = 32 };

static volatile long rounds_done;

static void *allocate(void)
{
    void *p = malloc(BLOCK);
    gt_check(p != NULL, "malloc(%d) failed", BLOCK);
    gt_escape(p);
    return p;
}

static void meet(pthread_barrier_t *b)
{
    int rc = pthread_barrier_wait(b);
    gt_check(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD, "pthread_barrier_wait: %s",
             strerror(rc));
}

static void *allocate_then_wait(void *barrier)
{
    void *p = allocate();
    meet(barrier);
    free(p);
    return NULL;
}

static void *wait_then_allocate(void *barrier)
{
    meet(barrier);
    free(allocate());
    return NULL;
}

static void one_round(void)
{
    pthread_barrier_t barrier;
    pthread_t inner[INNER];
    gt_check(pthread_barrier_init(&barrier, NULL, INNER + 1) == 0, "pthread_barrier_init");
    for (int i = 0; i < INNER; i++) {
        int rc = pthread_create(&inner[i], NULL, i % 2 ? wait_then_allocate : allocate_then_wait,
                                &barrier);
        gt_check(rc == 0, "pthread_create: %s", strerror(rc));
    }
    meet(&barrier);
    for (int i = 0; i < INNER; i++)
        pthread_join(inner[i], NULL);
    pthread_barrier_destroy(&barrier);
}

static void *outer(void *unused)
{
    (void)unused;
    for (int r = 0; r < ROUNDS; r++) {
        one_round();
        __atomic_add_fetch(&rounds_done, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

int main(void)
{
    /* Fewer arenas than threads in glibc, so exiting threads' arenas get
     * reused; any allocator must accept the call. */
    gt_check(mallopt(M_ARENA_MAX, 8) != 0, "mallopt(M_ARENA_MAX, 8) returned 0");
    pthread_t threads[OUTER];
    for (int i = 0; i < OUTER; i++)
        gt_check(pthread_create(&threads[i], NULL, outer, NULL) == 0, "pthread_create");
    gt_watch_progress(&rounds_done, (long)OUTER * ROUNDS, "rounds");
    for (int i = 0; i < OUTER; i++)
        pthread_join(threads[i], NULL);
    return 0;
}
