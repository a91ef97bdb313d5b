/*
 * thread_cache_leak.c — threads that exit do not leak their per-thread cache
 * (glibc's tst-malloc-tcache-leak, bug 22111).
 *
 * THREADS threads are started and joined one after another.  Each allocates
 * and frees a 32-byte block (so it gets a cache with something in it), then
 * returns a fresh 32-byte block, which the main thread frees after the thread
 * is gone.  Afterwards mallinfo2's bytes in use may exceed the figure from
 * before by at most one byte per thread: any real leak is a whole block or
 * a whole cache per thread.  (glibc runs 100,000 threads; 5,000 show the
 * same thing in a fraction of the time.)
 */
#include "check.h"

#include <malloc.h>

enum { THREADS = 5000 };

static void *worker(void *unused)
{
    (void)unused;
    void *p = malloc(32);
    gt_check(p != NULL, "malloc(32) failed in a thread");
    gt_escape(p);
    free(p);
    p = malloc(32);
    gt_check(p != NULL, "malloc(32) failed in a thread");
    return p;
}

int main(void)
{
    /* Something is in use before the threads start, as in glibc's test. */
    pthread_t *thread = calloc(1, sizeof *thread);
    gt_check(thread != NULL, "calloc failed");
    struct mallinfo2 before = mallinfo2();
    gt_check(before.uordblks != 0, "mallinfo2 reports nothing in use with a block allocated");

    for (int i = 0; i < THREADS; i++) {
        int rc = pthread_create(thread, NULL, worker, NULL);
        gt_check(rc == 0, "pthread_create #%d: %s", i, strerror(rc));
        void *block;
        gt_check(pthread_join(*thread, &block) == 0, "pthread_join");
        free(block);
    }

    struct mallinfo2 after = mallinfo2();
    gt_check(after.uordblks <= before.uordblks + THREADS,
             "in use grew from %zu to %zu bytes over %d threads: thread caches leak",
             before.uordblks, after.uordblks, THREADS);
    free(thread);
    return 0;
}
