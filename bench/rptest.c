/*
 * rptest.c — random sizes up to 16 KB, a rolling working set per thread, and
 * batches of blocks handed to another thread to free (after rpmalloc's
 * benchmark as mimalloc-bench runs it: "rptest N 0 1 2 500 1000 100 8 16000",
 * i.e. random sizes 8..16000 with a linear drop-off, a cross-thread batch
 * every second loop, 1000 slots, about 100 operations per loop).
 *
 *   rptest THREADS SCALE
 *
 * Each thread owns SLOTS slots.  One loop of a thread:
 *   1. frees about 0.8 * OPS * (31..99)% slots, walking them with stride
 *      FREE_STRIDE (empty slots are skipped);
 *   2. frees every block of the batches other threads sent it since the last
 *      loop, then the batch's two bookkeeping allocations;
 *   3. fills OPS * (31..99)% slots walking with stride ALLOC_STRIDE (freeing
 *      what is there first), touching every page of each new block;
 *   4. every CROSS_EVERY loops (with more than one thread) allocates a batch
 *      of as many blocks again and pushes it onto the next thread's inbox.
 * Sizes: 8..16000 bytes, density falling linearly to zero at the top (mean
 * about 5.3 KB).  A block carries its tag in its first and last word and in
 * a word in each page; it is checked before it is freed.  The total number of
 * loops is fixed by SCALE and split between the threads.
 */
#include "common.h"
#include <pthread.h>
#include <sched.h>
#include <math.h>
#include <stdatomic.h>

#define SLOTS 1000
#define OPS 100
#define FREE_STRIDE 11                 /* coprime with SLOTS */
#define ALLOC_STRIDE 7
#define CROSS_EVERY 2
#define MAX_PENDING 4                  /* batches queued for one thread */
#define MIN_SIZE 8
#define MAX_SIZE 16000
#define PAGE 4096
#define LOOPS_PER_SCALE 60000L

typedef struct {
    unsigned char *p;
    uint32_t size;
    uint32_t tag;
} blk_t;

typedef struct batch {
    struct batch *next;
    int count;
    blk_t *blk;                        /* malloc'd separately, as published */
} batch_t;

typedef struct {
    _Atomic(batch_t *) inbox;
    atomic_int pending;                /* batches sent, not yet taken */
    char pad[64 - sizeof(batch_t *) - sizeof(atomic_int)];
} mailbox_t;                           /* one per thread, own cache line */

static int nthreads;
static long loops_per_thread;
static mailbox_t *mail;
static atomic_int finished;          /* threads past their last loop */

static uint32_t linear_dropoff_size(rng_t *r)
{
    double u = ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
    return MIN_SIZE + (uint32_t)((MAX_SIZE - MIN_SIZE) * (1 - sqrt(u)));
}

static void blk_new(blk_t *b, rng_t *r, uint32_t tag)
{
    b->size = linear_dropoff_size(r);
    b->tag = tag;
    b->p = xmalloc(b->size);
    stamp_fill(b->p, b->size, tag, 8);
    /* One word per page past the first, clear of the stamped last word. */
    for (size_t off = PAGE; off + 16 <= b->size; off += PAGE)
        memcpy(b->p + off, &(uint64_t){tag ^ off}, 8);
}

static void blk_free(blk_t *b)
{
    stamp_check(b->p, b->size, b->tag, 8, "rptest");
    for (size_t off = PAGE; off + 16 <= b->size; off += PAGE) {
        uint64_t w;
        memcpy(&w, b->p + off, 8);
        if (w != (b->tag ^ off))
            bench_fail("rptest (page word)", b->p, b->size);
    }
    free(b->p);
    b->p = NULL;
}

static void drain(int id);

/* Pushes bt onto thread to's inbox.  A thread that falls behind has more to
 * free per loop and falls further behind, so without a bound the backlog (and
 * the peak RSS) grows with the length of the run; a sender that finds
 * MAX_PENDING batches waiting frees its own inbox until the receiver catches
 * up (which cannot deadlock: a receiver that is waiting too, or that has
 * finished its loops, keeps draining its own inbox meanwhile). */
static void send(int id, int to, batch_t *bt)
{
    while (atomic_load_explicit(&mail[to].pending, memory_order_acquire) >=
           MAX_PENDING) {
        drain(id);
        sched_yield();
    }
    atomic_fetch_add_explicit(&mail[to].pending, 1, memory_order_relaxed);
    batch_t *head = atomic_load_explicit(&mail[to].inbox,
                                         memory_order_relaxed);
    do
        bt->next = head;
    while (!atomic_compare_exchange_weak_explicit(
        &mail[to].inbox, &head, bt, memory_order_release,
        memory_order_relaxed));
}

/* Frees every batch sent to thread id so far. */
static void drain(int id)
{
    batch_t *bt = atomic_exchange_explicit(&mail[id].inbox, NULL,
                                           memory_order_acquire);
    while (bt) {
        atomic_fetch_sub_explicit(&mail[id].pending, 1, memory_order_release);
        batch_t *next = bt->next;
        for (int i = 0; i < bt->count; i++)
            blk_free(&bt->blk[i]);
        free(bt->blk);
        free(bt);
        bt = next;
    }
}

static int percent(rng_t *r)
{
    return 31 + (int)rng_below(r, 69);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    rng_t r;
    rng_seed(&r, 6000 + (uint64_t)id);
    blk_t *slot = calloc(SLOTS, sizeof(blk_t));
    if (slot == NULL)
        bench_oom(SLOTS * sizeof(blk_t));
    uint32_t tag = (uint32_t)id << 27;
    int fi = 0, ai = 0, to = id;
    for (long loop = 0; loop < loops_per_thread; loop++) {
        int nfree = (int)(0.8 * OPS * percent(&r) / 100);
        int nalloc = OPS * percent(&r) / 100;
        for (int k = 0; k < nfree; k++) {
            if (slot[fi].p)
                blk_free(&slot[fi]);
            fi = (fi + FREE_STRIDE) % SLOTS;
        }
        drain(id);
        for (int k = 0; k < nalloc; k++) {
            if (slot[ai].p)
                blk_free(&slot[ai]);
            blk_new(&slot[ai], &r, tag++);
            ai = (ai + ALLOC_STRIDE) % SLOTS;
        }
        if (nthreads > 1 && loop % CROSS_EVERY == 0) {
            batch_t *bt = xmalloc(sizeof(batch_t));
            bt->count = nalloc;
            bt->blk = xmalloc(sizeof(blk_t) * (size_t)nalloc);
            for (int k = 0; k < nalloc; k++)
                blk_new(&bt->blk[k], &r, tag++);
            to = (to + 1) % nthreads;
            if (to == id)
                to = (to + 1) % nthreads;
            send(id, to, bt);
        }
    }
    /* A thread still running may be waiting for this one to take its
     * batches: keep draining until every thread is done sending, then once
     * more for what came in meanwhile. */
    atomic_fetch_add_explicit(&finished, 1, memory_order_acq_rel);
    while (atomic_load_explicit(&finished, memory_order_acquire) < nthreads) {
        drain(id);
        sched_yield();
    }
    drain(id);
    for (int i = 0; i < SLOTS; i++)
        if (slot[i].p)
            blk_free(&slot[i]);
    free(slot);
    return NULL;
}

int main(int argc, char **argv)
{
    nthreads = (int)bench_arg(argc, argv, 1, 1);
    double scale = bench_arg_f(argc, argv, 2, 1.0);
    loops_per_thread = (long)(LOOPS_PER_SCALE * scale) / nthreads;
    mail = calloc((size_t)nthreads, sizeof(mailbox_t));
    if (mail == NULL)
        bench_oom(sizeof(mailbox_t) * (size_t)nthreads);
    pthread_t tid[nthreads];
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&tid[i], NULL, worker, (void *)(intptr_t)i) != 0)
            return 2;
    for (int i = 0; i < nthreads; i++)
        pthread_join(tid[i], NULL);
    free(mail);
    return 0;
}
