/*
 * prodcons.c — producer/consumer: every free is a cross-thread free.
 *
 *   prodcons PAIRS SCALE
 *
 * PAIRS producer threads allocate blocks (skewed sizes up to 4 KiB, stamped)
 * and push them into a bounded queue; PAIRS consumer threads pop, check and
 * free them.  The queue is a single mutex-protected ring of QUEUE_CAP
 * pointers shared by all threads; producers and consumers move blocks in
 * batches of BATCH to keep the lock off the critical path, so the allocator's
 * remote-free path is what is measured.  A consumer never frees a block it
 * allocated.
 */
#include "common.h"
#include <pthread.h>

#define QUEUE_CAP 4096
#define BATCH 64
#define ITEMS_PER_SCALE 10000000L

typedef struct {
    void *p;
    uint32_t size;
    uint32_t tag;
} item_t;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_full, not_empty;
    item_t ring[QUEUE_CAP];
    size_t head, count;
    int producers_left;
} q = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .not_full = PTHREAD_COND_INITIALIZER,
    .not_empty = PTHREAD_COND_INITIALIZER,
};

static void q_push(const item_t *it, int n)
{
    pthread_mutex_lock(&q.lock);
    while (q.count + (size_t)n > QUEUE_CAP)
        pthread_cond_wait(&q.not_full, &q.lock);
    for (int i = 0; i < n; i++)
        q.ring[(q.head + q.count + (size_t)i) % QUEUE_CAP] = it[i];
    q.count += (size_t)n;
    pthread_cond_signal(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
}

/* Pops up to BATCH items; returns 0 once the queue is drained for good. */
static int q_pop(item_t *it)
{
    pthread_mutex_lock(&q.lock);
    while (q.count == 0 && q.producers_left > 0)
        pthread_cond_wait(&q.not_empty, &q.lock);
    int n = q.count < BATCH ? (int)q.count : BATCH;
    for (int i = 0; i < n; i++)
        it[i] = q.ring[(q.head + (size_t)i) % QUEUE_CAP];
    q.head = (q.head + (size_t)n) % QUEUE_CAP;
    q.count -= (size_t)n;
    pthread_cond_signal(&q.not_full);
    pthread_mutex_unlock(&q.lock);
    return n;
}

static long items_per_producer;

static void *producer(void *arg)
{
    int id = (int)(intptr_t)arg;
    rng_t r;
    rng_seed(&r, 4000 + (uint64_t)id);
    item_t batch[BATCH];
    uint32_t tag = (uint32_t)id << 26;
    for (long done = 0; done < items_per_producer; done += BATCH) {
        for (int i = 0; i < BATCH; i++) {
            item_t *it = &batch[i];
            it->size = (uint32_t)rng_skewed_size(&r, 4096);
            it->p = xmalloc(it->size);
            it->tag = tag++;
            stamp_fill(it->p, it->size, it->tag, 32);
        }
        q_push(batch, BATCH);
    }
    pthread_mutex_lock(&q.lock);
    if (--q.producers_left == 0)
        pthread_cond_broadcast(&q.not_empty);
    pthread_mutex_unlock(&q.lock);
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    item_t batch[BATCH];
    int n;
    while ((n = q_pop(batch)) > 0) {
        for (int i = 0; i < n; i++) {
            stamp_check(batch[i].p, batch[i].size, batch[i].tag, 32,
                        "prodcons");
            free(batch[i].p);
        }
    }
    return NULL;
}

int main(int argc, char **argv)
{
    int pairs = (int)bench_arg(argc, argv, 1, 1);
    double scale = bench_arg_f(argc, argv, 2, 1.0);
    items_per_producer = (long)(ITEMS_PER_SCALE * scale) / pairs;
    q.producers_left = pairs;
    pthread_t tid[2 * pairs];
    for (int i = 0; i < pairs; i++) {
        if (pthread_create(&tid[i], NULL, producer, (void *)(intptr_t)i))
            return 2;
        if (pthread_create(&tid[pairs + i], NULL, consumer, NULL))
            return 2;
    }
    for (int i = 0; i < 2 * pairs; i++)
        pthread_join(tid[i], NULL);
    return 0;
}
