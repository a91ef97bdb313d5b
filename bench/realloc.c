/*
 * realloc.c — realloc growth of many strings and arrays at once.
 *
 *   realloc THREADS SCALE
 *
 * Each thread grows, round-robin (so neighbours compete for the space after
 * each block):
 *   - STRINGS strings, each by appending 1..32 bytes with realloc to the exact
 *     new length (the naive string builder) until it reaches a target length
 *     (log-uniform 64 B..64 KiB);
 *   - ARRAYS arrays of 64-bit values, half growing one element per realloc,
 *     half by 1.5x capacity (a vector), to a target of 16..16K elements.
 * A finished object is shrunk once with realloc, checked in full against its
 * deterministic content, freed, and restarted with a new target.
 */
#include "common.h"
#include <pthread.h>

#define STRINGS 1000
#define ARRAYS 500
#define STEPS_PER_SCALE 3500000L

typedef struct {
    unsigned char *p;
    size_t len, target;
    uint64_t tag;
} str_t;

typedef struct {
    uint64_t *p;
    size_t len, cap, target;
    uint64_t tag;
    int geometric;
} arr_t;

static inline unsigned char str_byte(uint64_t tag, size_t j)
{
    return (unsigned char)(tag + j * 31 + (j >> 8));
}

static void str_reset(str_t *s, rng_t *r, uint64_t tag)
{
    s->p = NULL;
    s->len = 0;
    s->target = rng_log_size(r, 64, 65536);
    s->tag = tag;
}

static void str_finish(str_t *s)
{
    size_t half = s->len / 2 + 1;
    unsigned char *q = realloc(s->p, half);
    if (q == NULL)
        bench_oom(half);
    for (size_t j = 0; j < half && j < s->len; j++)
        if (q[j] != str_byte(s->tag, j))
            bench_fail("realloc string", q, half);
    free(q);
}

static void str_step(str_t *s, rng_t *r, uint64_t *tag)
{
    size_t add = 1 + (size_t)rng_below(r, 32);
    unsigned char *q = realloc(s->p, s->len + add);
    if (q == NULL)
        bench_oom(s->len + add);
    if (s->len && q[s->len - 1] != str_byte(s->tag, s->len - 1))
        bench_fail("realloc string tail", q, s->len);
    for (size_t j = 0; j < add; j++)
        q[s->len + j] = str_byte(s->tag, s->len + j);
    s->p = q;
    s->len += add;
    if (s->len >= s->target) {
        str_finish(s);
        str_reset(s, r, (*tag)++);
    }
}

static void arr_reset(arr_t *a, rng_t *r, uint64_t tag, int geometric)
{
    a->p = NULL;
    a->len = a->cap = 0;
    a->target = rng_log_size(r, 16, 16384);
    a->tag = tag;
    a->geometric = geometric;
}

static void arr_finish(arr_t *a)
{
    uint64_t *q = realloc(a->p, a->len * sizeof(uint64_t));
    if (q == NULL)
        bench_oom(a->len * sizeof(uint64_t));
    for (size_t j = 0; j < a->len; j++)
        if (q[j] != stamp_word(a->tag, j))
            bench_fail("realloc array", q, a->len * 8);
    free(q);
}

static void arr_step(arr_t *a, rng_t *r, uint64_t *tag)
{
    if (a->len == a->cap) {
        size_t cap = a->geometric ? a->cap + a->cap / 2 + 4 : a->cap + 1;
        uint64_t *q = realloc(a->p, cap * sizeof(uint64_t));
        if (q == NULL)
            bench_oom(cap * sizeof(uint64_t));
        if (a->len && q[a->len - 1] != stamp_word(a->tag, a->len - 1))
            bench_fail("realloc array tail", q, a->len * 8);
        a->p = q;
        a->cap = cap;
    }
    a->p[a->len] = stamp_word(a->tag, a->len);
    a->len++;
    if (a->len >= a->target) {
        arr_finish(a);
        arr_reset(a, r, (*tag)++, a->geometric);
    }
}

static void *worker(void *arg)
{
    bench_job_t *job = arg;
    rng_t r;
    rng_seed(&r, 2000 + (uint64_t)job->id);
    str_t *s = xmalloc(sizeof(str_t) * STRINGS);
    arr_t *a = xmalloc(sizeof(arr_t) * ARRAYS);
    uint64_t tag = (uint64_t)job->id << 40;
    for (int i = 0; i < STRINGS; i++)
        str_reset(&s[i], &r, tag++);
    for (int i = 0; i < ARRAYS; i++)
        arr_reset(&a[i], &r, tag++, i & 1);
    for (long step = 0; step < job->work; step++) {
        str_step(&s[step % STRINGS], &r, &tag);
        arr_step(&a[step % ARRAYS], &r, &tag);
    }
    for (int i = 0; i < STRINGS; i++)
        if (s[i].p)
            str_finish(&s[i]);
    for (int i = 0; i < ARRAYS; i++)
        if (a[i].p)
            arr_finish(&a[i]);
    free(s);
    free(a);
    return NULL;
}

int main(int argc, char **argv)
{
    return bench_run_threads(argc, argv, STEPS_PER_SCALE, worker);
}
