/*
 * largechurn.c — a fixed number of big buffers, one replaced at random
 * (after mimalloc-bench's malloc-large).
 *
 *   largechurn THREADS SCALE [MIN_MIB MAX_MIB]
 *
 * Each thread keeps BUFFERS live buffers.  A replacement picks a buffer at
 * random and a new size uniform in [MIN_MIB, MAX_MIB] MiB (default 5..25),
 * allocates the new buffer and zero-fills it, and only then checks and frees
 * the old one: the published benchmark assigns make_unique<char[]>(n), which
 * value-initialises (zeroes) the new array before the old one is released, so
 * BUFFERS + 1 are live for a moment and every byte of each new buffer is
 * written.  An allocator that hands back freed buffers keeps the pages warm;
 * one that maps and unmaps every time pays a page fault per 4 KiB (or per
 * huge page) and the kernel's zeroing on top of the memset.
 *
 * Total work is a fixed number of bytes allocated (REPLACE_BYTES_PER_SCALE),
 * so a range of smaller buffers does proportionally more replacements; it is
 * split between the threads.
 */
#include "common.h"
#include <pthread.h>

#define BUFFERS 20
#define MIB ((size_t)1 << 20)
/* The published 2,000 replacements of 5..25 MiB blocks (mean 15 MiB) are
 * 30 GB of memset, ten seconds or more on a small machine even for an
 * allocator that reuses every buffer; a tenth of that keeps a run between one
 * and two seconds under the fastest allocator here. */
#define REPLACE_BYTES_PER_SCALE (200.0 * 15 * MIB)

typedef struct {
    unsigned char *p;
    size_t size;
    uint64_t tag;
} buf_t;

static size_t min_size, max_size;

/* The zero fill is the point: a real program's value-initialised array.  The
 * escape keeps the compiler from merging malloc and memset into calloc, which
 * would let an allocator skip the fill for fresh pages; the published C++
 * code calls operator new and then memset. */
static unsigned char *new_zeroed(size_t size)
{
    unsigned char *p = xmalloc(size);
    bench_escape(p);
    memset(p, 0, size);
    return p;
}

/* Stamps the front and back of a zeroed buffer; the check also reads a zero
 * from its middle, which the fill must have left there. */
static void buf_stamp(buf_t *b)
{
    stamp_fill(b->p, b->size, b->tag, 64);
}

static void buf_check_free(buf_t *b)
{
    stamp_check(b->p, b->size, b->tag, 64, "largechurn");
    if (b->p[b->size / 2] != 0)
        bench_fail("largechurn (zero fill)", b->p, b->size);
    free(b->p);
    b->p = NULL;
}

static void *worker(void *arg)
{
    bench_job_t *job = arg;
    rng_t r;
    rng_seed(&r, 9000 + (uint64_t)job->id);
    buf_t buf[BUFFERS] = {{0}};
    uint64_t tag = (uint64_t)job->id << 48;
    for (long i = 0; i < job->work; i++) {
        buf_t *b = &buf[rng_below(&r, BUFFERS)];
        buf_t fresh;
        fresh.size = min_size + (size_t)rng_below(&r, max_size - min_size + 1);
        fresh.p = new_zeroed(fresh.size);
        fresh.tag = tag++;
        buf_stamp(&fresh);
        if (b->p)
            buf_check_free(b);
        *b = fresh;
    }
    for (int i = 0; i < BUFFERS; i++)
        if (buf[i].p)
            buf_check_free(&buf[i]);
    return NULL;
}

int main(int argc, char **argv)
{
    min_size = (size_t)bench_arg(argc, argv, 3, 5) * MIB;
    max_size = (size_t)bench_arg(argc, argv, 4, 25) * MIB;
    if (max_size < min_size) {
        fprintf(stderr, "largechurn: MAX_MIB < MIN_MIB\n");
        return 2;
    }
    double mean = (double)(min_size + max_size) / 2;
    return bench_run_threads(argc, argv, REPLACE_BYTES_PER_SCALE / mean,
                             worker);
}
