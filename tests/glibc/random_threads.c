/*
 * random_threads.c — threads allocating and freeing at once, each freeing
 * its own blocks or another thread's (glibc's tst-aligned-alloc-random-thread
 * and tst-aligned-alloc-random-thread-cross).
 *
 * Eight threads, in three stages separated by barriers:
 *  1. the first half allocates ALLOCATIONS blocks each;
 *  2. same-thread mode: the first half frees its own blocks while the second
 *     half allocates; cross mode: the first half allocates a second set for
 *     the second half's slots while the second half frees the first half's
 *     blocks;
 *  3. the second half frees what is left in its slots.
 * Sizes are 2^k plus a random part below 2^k, k < 16 (at least 8 bytes).  Each block carries its
 * slot number at both ends, checked by whichever thread frees it.  Each mode
 * runs ITERATIONS times with fresh threads; seeds are fixed.
 */
#include "check.h"

enum { THREADS = 8, HALF = THREADS / 2, ALLOCATIONS = 2048, ITERATIONS = 4 };

struct block {
    size_t size;
    unsigned char *p;
};

static struct block blocks[THREADS][ALLOCATIONS];
static pthread_barrier_t stage;
static int cross;

static void stamp(struct block *b, unsigned tag)
{
    memcpy(b->p, &tag, sizeof tag);
    memcpy(b->p + b->size - sizeof tag, &tag, sizeof tag);
}

static void allocate_row(int row, unsigned *seed)
{
    for (int i = 0; i < ALLOCATIONS; i++) {
        size_t top = (size_t)1 << (rand_r(seed) % 16);
        size_t size = top + (size_t)rand_r(seed) % top;
        if (size < 2 * sizeof(unsigned))
            size = 2 * sizeof(unsigned); /* room for both stamps */
        struct block *b = &blocks[row][i];
        b->p = malloc(size);
        gt_check(b->p != NULL, "malloc(%zu) failed", size);
        b->size = size;
        stamp(b, (unsigned)(row * ALLOCATIONS + i));
    }
}

static void free_row(int row)
{
    for (int i = 0; i < ALLOCATIONS; i++) {
        struct block *b = &blocks[row][i];
        unsigned want = (unsigned)(row * ALLOCATIONS + i), head, tail;
        memcpy(&head, b->p, sizeof head);
        memcpy(&tail, b->p + b->size - sizeof tail, sizeof tail);
        gt_check(head == want && tail == want, "block %d of row %d (%zu bytes) was overwritten", i,
                 row, b->size);
        free(b->p);
        b->p = NULL;
    }
}

static void meet(void)
{
    int rc = pthread_barrier_wait(&stage);
    gt_check(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD, "pthread_barrier_wait: %s",
             strerror(rc));
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    unsigned seed = 1000u + (unsigned)id;
    if (id < HALF)
        allocate_row(id, &seed);
    meet();
    if (id < HALF) {
        if (cross)
            allocate_row(id + HALF, &seed);
        else
            free_row(id);
    } else {
        if (cross)
            free_row(id - HALF);
        else
            allocate_row(id, &seed);
    }
    meet();
    if (id >= HALF)
        free_row(id);
    return NULL;
}

static void run_mode(int cross_thread)
{
    cross = cross_thread;
    for (int iteration = 0; iteration < ITERATIONS; iteration++) {
        pthread_t threads[THREADS];
        for (int t = 0; t < THREADS; t++) {
            int rc = pthread_create(&threads[t], NULL, worker, (void *)(intptr_t)t);
            gt_check(rc == 0, "pthread_create: %s", strerror(rc));
        }
        for (int t = 0; t < THREADS; t++)
            pthread_join(threads[t], NULL);
    }
}

int main(void)
{
    gt_check(pthread_barrier_init(&stage, NULL, THREADS) == 0, "pthread_barrier_init");
    run_mode(0);
    run_mode(1);
    return 0;
}
