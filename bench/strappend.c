/*
 * strappend.c — many short strings built by small appends through realloc.
 *
 *   strappend THREADS SCALE
 *
 * Each thread builds BUILDERS strings at once, picking a random one for each
 * append of 1..8 bytes: realloc to the exact new length plus the NUL, as a
 * naive string builder (or a printf into a growing buffer) does.  Final
 * lengths are short: 80% 16..128 bytes, 18% up to 1 KiB, 2% up to 4 KiB.
 * A finished string is shrunk to fit, then kept in a ring of the last DONE
 * strings (as if stored in a table) and freed when the ring wraps, so
 * builders grow among long-lived neighbours.  Where realloc.c is dominated
 * by strings and arrays that grow into the tens of KiB, this stays inside
 * the small size classes, where an allocator either resizes in place within
 * the class or copies to the next one.  Contents are checked at the tail on
 * every append and in full when a string is freed.  Total appends are fixed
 * by SCALE and split between the threads.
 */
#include "common.h"
#include <pthread.h>

#define BUILDERS 2000
#define DONE 20000
#define APPENDS_PER_SCALE 12000000L

typedef struct {
    char *p;
    uint32_t len, target;
    uint32_t tag;
} str_t;

/* The byte at position j of string tag: printable, never NUL. */
static inline char str_char(uint32_t tag, uint32_t j)
{
    return (char)('!' + (tag * 7 + j * 13 + (j >> 5)) % 90);
}

static uint32_t final_length(rng_t *r)
{
    uint64_t p = rng_below(r, 100);
    if (p < 80)
        return 16 + (uint32_t)rng_below(r, 113);
    if (p < 98)
        return 129 + (uint32_t)rng_below(r, 896);
    return 1025 + (uint32_t)rng_below(r, 3072);
}

static void str_check(const str_t *s, const char *what)
{
    for (uint32_t j = 0; j < s->len; j++)
        if (s->p[j] != str_char(s->tag, j))
            bench_fail(what, s->p, s->len);
    if (s->p[s->len] != '\0')
        bench_fail(what, s->p, s->len);
}

static void str_start(str_t *s, rng_t *r, uint32_t tag)
{
    s->p = NULL;
    s->len = 0;
    s->target = final_length(r);
    s->tag = tag;
}

static void str_append(str_t *s, uint32_t add)
{
    char *q = realloc(s->p, s->len + add + 1);
    if (q == NULL)
        bench_oom(s->len + add + 1);
    if (s->len && (q[s->len - 1] != str_char(s->tag, s->len - 1) ||
                   q[0] != str_char(s->tag, 0)))
        bench_fail("strappend (moved)", q, s->len);
    for (uint32_t j = 0; j < add; j++)
        q[s->len + j] = str_char(s->tag, s->len + j);
    q[s->len + add] = '\0';
    s->p = q;
    s->len += add;
}

static void *worker(void *arg)
{
    bench_job_t *job = arg;
    rng_t r;
    rng_seed(&r, 10000 + (uint64_t)job->id);
    str_t *b = xmalloc(sizeof(str_t) * BUILDERS);
    str_t *done = calloc(DONE, sizeof(str_t));
    if (done == NULL)
        bench_oom(sizeof(str_t) * DONE);
    uint32_t tag = (uint32_t)job->id << 28;
    long ndone = 0;
    for (int i = 0; i < BUILDERS; i++)
        str_start(&b[i], &r, tag++);
    for (long op = 0; op < job->work; op++) {
        str_t *s = &b[rng_below(&r, BUILDERS)];
        str_append(s, 1 + (uint32_t)rng_below(&r, 8));
        if (s->len < s->target)
            continue;
        char *q = realloc(s->p, s->len + 1);        /* shrink to fit */
        if (q == NULL)
            bench_oom(s->len + 1);
        s->p = q;
        str_t *d = &done[ndone++ % DONE];
        if (d->p) {
            str_check(d, "strappend");
            free(d->p);
        }
        *d = *s;
        str_start(s, &r, tag++);
    }
    for (int i = 0; i < BUILDERS; i++)
        if (b[i].p) {
            str_check(&b[i], "strappend (unfinished)");
            free(b[i].p);
        }
    for (int i = 0; i < DONE; i++)
        if (done[i].p) {
            str_check(&done[i], "strappend");
            free(done[i].p);
        }
    free(b);
    free(done);
    return NULL;
}

int main(int argc, char **argv)
{
    return bench_run_threads(argc, argv, APPENDS_PER_SCALE, worker);
}
