/*
 * bufgrow.c — buffers grown by realloc to hundreds of MiB: a file read into
 * memory, an output built by appending, a vector that doubles.
 *
 *   bufgrow THREADS SCALE
 *
 * Each thread, per round, grows one buffer from 1 MiB to 256 MiB by doubling
 * and another from 1 MiB to 128 MiB in 1 MiB steps, writing one word in every
 * new 4 KiB page (fresh pages cost faults, as they do for a real program),
 * checks every page of both and frees them.  An allocator that moves a big
 * block by copying it pays the copy and faults in a fresh copy of every page
 * at each move, and may keep the old pages around; one that grows in place
 * or moves the pages themselves (mremap) pays for each page once.
 */
#include "common.h"
#include <pthread.h>

#define PAGE 4096
#define START ((size_t)1 << 20)
#define DOUBLING_MAX ((size_t)256 << 20)
#define STEPPED_MAX ((size_t)128 << 20)
#define STEP ((size_t)1 << 20)
#define ROUNDS_PER_SCALE 4

static inline uint64_t page_word(uint64_t tag, size_t page)
{
    return tag * 0x9e3779b97f4a7c15ull + page;
}

/* Grows a buffer from START to max, by doubling or by STEP, stamping each
 * new page; checks it all and frees it. */
static void grow(uint64_t tag, size_t max, int doubling)
{
    unsigned char *p = NULL;
    size_t len = 0;
    for (size_t cap = START; cap <= max; cap = doubling ? cap * 2 : cap + STEP) {
        unsigned char *q = realloc(p, cap);
        if (q == NULL)
            bench_oom(cap);
        if (len) {
            uint64_t w;
            memcpy(&w, q + len - PAGE, 8);
            if (w != page_word(tag, len / PAGE - 1))
                bench_fail("bufgrow tail", q, len);
        }
        for (size_t off = len; off < cap; off += PAGE) {
            uint64_t w = page_word(tag, off / PAGE);
            memcpy(q + off, &w, 8);
        }
        p = q;
        len = cap;
    }
    for (size_t off = 0; off < len; off += PAGE) {
        uint64_t w;
        memcpy(&w, p + off, 8);
        if (w != page_word(tag, off / PAGE))
            bench_fail("bufgrow", p, len);
    }
    free(p);
}

static void *worker(void *arg)
{
    bench_job_t *j = arg;
    uint64_t tag = (uint64_t)j->id << 32;
    for (long r = 0; r < j->work; r++) {
        grow(tag + 2 * (uint64_t)r, DOUBLING_MAX, 1);
        grow(tag + 2 * (uint64_t)r + 1, STEPPED_MAX, 0);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    return bench_run_threads(argc, argv, ROUNDS_PER_SCALE, worker);
}
