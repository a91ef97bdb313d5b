/*
 * alloctest.c — random positions, random small sizes, a very hot corner
 * (after OLogN's alloc-test as mimalloc-bench runs it: 2^18 slots shared out
 * between the threads, sizes up to 1 KiB, every byte written and read).
 *
 *   alloctest THREADS SCALE
 *
 * Each thread owns ITEMS / THREADS slots, about half of them filled at the
 * start.  An operation picks a slot with a steeply skewed distribution and
 * toggles it: an empty slot gets a new block, a full one has its block read
 * in full, checked and freed.  The skew is the published "80/20 applied six
 * times": the slots form seven regions, region k is chosen with probability
 * C(6,k) 0.8^(6-k) 0.2^k and holds a share C(6,k) 0.2^(6-k) 0.8^k of the
 * slots, so a quarter of the operations land on 16 slots (of 262,144) and
 * two thirds on about 400: blocks are freed and reallocated a few operations
 * apart, and the rest of the heap is a large, rarely touched live set.
 * Sizes: size class c = 2..9 with probability 2^-(c-1) (9 takes the rest),
 * then uniform in (2^c, 2^(c+1)]: 5..1024 bytes, mean about 27.  A new
 * block is filled in full.  Total operations are fixed by SCALE and split
 * between the threads.
 */
#include "common.h"
#include <pthread.h>

#define ITEMS (1L << 18)
#define LEVELS 7
#define OPS_PER_SCALE 15000000L

typedef struct {
    unsigned char *p;
    uint32_t size;
    uint32_t tag;
} slot_t;

typedef struct {
    uint64_t cum[LEVELS];    /* cumulative probabilities, scaled to 2^32 */
    long start[LEVELS + 1];  /* first slot of each region */
} skew_t;

static void skew_init(skew_t *s, long items)
{
    static const double binom6[LEVELS] = {1, 6, 15, 20, 15, 6, 1};
    double acc = 0;
    s->start[0] = 0;
    for (int k = 0; k < LEVELS; k++) {
        double p = binom6[k], share = binom6[k];
        for (int j = 0; j < 6; j++) {
            p *= j < 6 - k ? 0.8 : 0.2;
            share *= j < 6 - k ? 0.2 : 0.8;
        }
        acc += p;
        s->cum[k] = (uint64_t)(acc * 4294967296.0);
        long n = (long)(share * (double)items);
        s->start[k + 1] = s->start[k] + (n > 0 ? n : 1);
    }
    s->cum[LEVELS - 1] = (uint64_t)1 << 32;
    s->start[LEVELS] = items;            /* rounding leftovers go last */
}

static long skew_pick(const skew_t *s, rng_t *r)
{
    uint64_t x = rng_next(r);
    uint64_t u = x >> 32;
    int k = 0;
    while (u >= s->cum[k])
        k++;
    long n = s->start[k + 1] - s->start[k];
    return s->start[k] + (long)rng_below(r, (uint64_t)n);
}

static uint32_t class_size(rng_t *r)
{
    uint64_t x = rng_next(r);
    int c = 2 + __builtin_ctzll((x & 0x7f) | 0x80);   /* 2..9 */
    uint64_t base = (uint64_t)1 << c;
    return (uint32_t)(base + 1 + ((x >> 8) & (base - 1)));
}

static volatile uint64_t sink;

static void slot_fill(slot_t *s, rng_t *r, uint32_t tag)
{
    s->size = class_size(r);
    s->tag = tag;
    s->p = xmalloc(s->size);
    memset(s->p, (int)(tag & 0xff), s->size);
    stamp_fill(s->p, s->size, tag, 8);
}

/* Reads the whole block, as the published test does, before freeing it. */
static void slot_empty(slot_t *s)
{
    stamp_check(s->p, s->size, s->tag, 8, "alloctest");
    uint64_t sum = 0;
    for (uint32_t i = 0; i < s->size; i++)
        sum += s->p[i];
    sink += sum;
    free(s->p);
    s->p = NULL;
}

static long items_per_thread;

static void *worker(void *arg)
{
    bench_job_t *job = arg;
    rng_t r;
    rng_seed(&r, 41 + (uint64_t)job->id);
    skew_t skew;
    skew_init(&skew, items_per_thread);
    slot_t *slot = calloc((size_t)items_per_thread, sizeof(slot_t));
    if (slot == NULL)
        bench_oom(sizeof(slot_t) * (size_t)items_per_thread);
    uint32_t tag = (uint32_t)job->id << 28;
    for (long i = 0; i < items_per_thread; i++)
        if (rng_next(&r) >> 63)
            slot_fill(&slot[i], &r, tag++);
    for (long op = 0; op < job->work; op++) {
        slot_t *s = &slot[skew_pick(&skew, &r)];
        if (s->p)
            slot_empty(s);
        else
            slot_fill(s, &r, tag++);
    }
    for (long i = 0; i < items_per_thread; i++)
        if (slot[i].p)
            slot_empty(&slot[i]);
    free(slot);
    return NULL;
}

int main(int argc, char **argv)
{
    items_per_thread = ITEMS / bench_arg(argc, argv, 1, 1);
    return bench_run_threads(argc, argv, OPS_PER_SCALE, worker);
}
