/*
 * xmalloc.c — allocating threads and freeing threads, blocks handed over in
 * big batches (after xmalloc-test, Lever and Boreham's malloc-test, as run in
 * mimalloc-bench with 64-byte objects).
 *
 *   xmalloc PAIRS SCALE [SIZE]
 *
 * PAIRS threads only allocate and PAIRS threads only free.  An allocating
 * thread fills a batch: a malloc'd record holding BATCH_OBJECTS pointers to
 * fresh SIZE-byte objects (default 64), each written over its first 128
 * bytes at most, and pushes it onto one shared stack.  A freeing thread pops
 * the most recently pushed batch, checks and frees every object in it, then
 * frees the record (32 KiB, also allocated by the other side).  The stack
 * holds at most MAX_BATCHES batches; allocators wait when it is full, so up
 * to 400,000 objects are in flight.  Every free is of memory another thread
 * allocated, in bursts of 4,096 from the same thread: the allocator's
 * remote-free path and how fast freed memory flows back to the allocating
 * side decide the result.
 *
 * The published test runs for a fixed time and counts frees; here the total
 * number of batches is fixed by SCALE and split between the allocating
 * threads.
 */
#include "common.h"
#include <pthread.h>

#define BATCH_OBJECTS 4096
#define MAX_BATCHES 100
#define WRITE_SPAN 128
#define BATCHES_PER_SCALE 2500L

typedef struct batch {
    struct batch *next;
    uint64_t tag0;                       /* object i carries tag0 + i */
    void *obj[BATCH_OBJECTS];
} batch_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_full, not_empty;
    batch_t *top;
    int count;
    int allocators_left;
} stack = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .not_full = PTHREAD_COND_INITIALIZER,
    .not_empty = PTHREAD_COND_INITIALIZER,
};

static size_t obj_size;
static long batches_per_allocator;

static void push(batch_t *b)
{
    pthread_mutex_lock(&stack.lock);
    while (stack.count >= MAX_BATCHES)
        pthread_cond_wait(&stack.not_full, &stack.lock);
    b->next = stack.top;
    stack.top = b;
    stack.count++;
    pthread_cond_signal(&stack.not_empty);
    pthread_mutex_unlock(&stack.lock);
}

/* The newest batch, or NULL once every allocator is done and the stack is
 * empty. */
static batch_t *pop(void)
{
    pthread_mutex_lock(&stack.lock);
    while (stack.top == NULL && stack.allocators_left > 0)
        pthread_cond_wait(&stack.not_empty, &stack.lock);
    batch_t *b = stack.top;
    if (b) {
        stack.top = b->next;
        stack.count--;
        pthread_cond_signal(&stack.not_full);
    }
    pthread_mutex_unlock(&stack.lock);
    return b;
}

static void *allocator(void *arg)
{
    uint64_t tag = (uint64_t)(intptr_t)arg << 40;
    size_t span = obj_size < WRITE_SPAN ? obj_size : WRITE_SPAN;
    for (long n = 0; n < batches_per_allocator; n++) {
        batch_t *b = xmalloc(sizeof(batch_t));
        b->tag0 = tag;
        for (int i = 0; i < BATCH_OBJECTS; i++) {
            b->obj[i] = xmalloc(obj_size);
            stamp_fill(b->obj[i], obj_size, tag + (uint64_t)i, span);
        }
        tag += BATCH_OBJECTS;
        push(b);
    }
    pthread_mutex_lock(&stack.lock);
    if (--stack.allocators_left == 0)
        pthread_cond_broadcast(&stack.not_empty);
    pthread_mutex_unlock(&stack.lock);
    return NULL;
}

static void *releaser(void *arg)
{
    (void)arg;
    batch_t *b;
    while ((b = pop()) != NULL) {
        for (int i = 0; i < BATCH_OBJECTS; i++) {
            stamp_check(b->obj[i], obj_size, b->tag0 + (uint64_t)i, 16,
                        "xmalloc");
            free(b->obj[i]);
        }
        free(b);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int pairs = (int)bench_arg(argc, argv, 1, 1);
    double scale = bench_arg_f(argc, argv, 2, 1.0);
    obj_size = (size_t)bench_arg(argc, argv, 3, 64);
    batches_per_allocator = (long)(BATCHES_PER_SCALE * scale) / pairs;
    if (batches_per_allocator < 1)
        batches_per_allocator = 1;
    stack.allocators_left = pairs;
    pthread_t tid[2 * pairs];
    for (int i = 0; i < pairs; i++) {
        if (pthread_create(&tid[2 * i], NULL, releaser, NULL) != 0)
            return 2;
        if (pthread_create(&tid[2 * i + 1], NULL, allocator,
                           (void *)(intptr_t)i) != 0)
            return 2;
    }
    for (int i = 0; i < 2 * pairs; i++)
        pthread_join(tid[i], NULL);
    return 0;
}
