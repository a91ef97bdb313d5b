/*
 * common.h — helpers shared by the benchmark workloads in bench/.
 *
 * Every workload is a standalone program that uses only the standard
 * malloc/free/realloc names, so the same binary runs under any allocator via
 * LD_PRELOAD.  The helpers here give each workload:
 *   - a fixed-seed xorshift PRNG (runs are repeatable across allocators),
 *   - argument parsing ("threads" and "scale", with defaults),
 *   - stamping and checking the content of a block (the workload exits 1 on
 *     the first mismatch, so an allocator that hands out overlapping or
 *     corrupted blocks fails loudly instead of looking fast),
 *   - an escape barrier so the compiler cannot elide a malloc/free pair.
 *
 * Header-only on purpose: each workload stays one translation unit and builds
 * with a plain "cc -O2 -pthread file.c".
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <pthread.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Keeps p alive in the eyes of the optimizer (no malloc/free pair elision). */
static inline void bench_escape(void *p)
{
    __asm__ volatile("" : : "r"(p) : "memory");
}

/* xorshift64*: small, fast, good enough to pick sizes and slots. */
typedef struct {
    uint64_t s;
} rng_t;

static inline void rng_seed(rng_t *r, uint64_t seed)
{
    r->s = seed * 0x9E3779B97F4A7C15ull + 0x2545F4914F6CDD1Dull;
    if (r->s == 0)
        r->s = 1;
}

static inline uint64_t rng_next(rng_t *r)
{
    uint64_t x = r->s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    r->s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* Uniform in [0, n). */
static inline uint64_t rng_below(rng_t *r, uint64_t n)
{
    return (uint64_t)(((unsigned __int128)rng_next(r) * n) >> 64);
}

/* Log-uniform in [lo, hi]: as many blocks in 16..32 as in 512K..1M. */
static inline size_t rng_log_size(rng_t *r, size_t lo, size_t hi)
{
    int lb = 63 - __builtin_clzll(lo), hb = 63 - __builtin_clzll(hi);
    int b = lb + (int)rng_below(r, (uint64_t)(hb - lb + 1));
    size_t base = (size_t)1 << b;
    size_t sz = base + (size_t)rng_below(r, base);
    return sz < lo ? lo : (sz > hi ? hi : sz);
}

/* Skewed "typical program" size: mostly small, a tail up to max (>= 8K). */
static inline size_t rng_skewed_size(rng_t *r, size_t max)
{
    uint64_t p = rng_below(r, 1000);
    if (p < 700)
        return 8 + (size_t)rng_below(r, 57);       /* 8..64 */
    if (p < 920)
        return 65 + (size_t)rng_below(r, 448);     /* 65..512 */
    if (p < 990)
        return rng_log_size(r, 513, 8192);         /* 513..8K */
    return rng_log_size(r, 8193, max);             /* 8K..max */
}

/* Exits with status 1 and a short message: the block read back is wrong. */
static inline void bench_fail(const char *what, const void *p, size_t size)
{
    fprintf(stderr, "bench: content mismatch in %s (block %p, %zu bytes)\n",
            what, p, size);
    exit(1);
}

static inline void bench_oom(size_t size)
{
    fprintf(stderr, "bench: out of memory allocating %zu bytes\n", size);
    exit(1);
}

static inline void *xmalloc(size_t size)
{
    void *p = malloc(size);
    if (p == NULL)
        bench_oom(size);
    return p;
}

/*
 * Stamps a block: the last 8 bytes, and up to `span` bytes at the front
 * (never overlapping the last word), get a pattern derived from tag, so any
 * overlap with another live block, or a block the allocator scribbled on, is
 * detected by stamp_check.
 * Blocks smaller than 8 bytes get a single byte.
 */
static inline uint64_t stamp_word(uint64_t tag, size_t i)
{
    return (tag ^ (i * 0x9E3779B97F4A7C15ull)) | 1;
}

static inline void stamp_fill(void *p, size_t size, uint64_t tag, size_t span)
{
    unsigned char *b = p;
    if (size < 8) {
        if (size)
            b[0] = (unsigned char)tag;
        return;
    }
    size_t words = (span < size - 8 ? span : size - 8) / 8;
    for (size_t i = 0; i < words; i++) {
        uint64_t w = stamp_word(tag, i);
        memcpy(b + 8 * i, &w, 8);
    }
    uint64_t last = ~tag;
    memcpy(b + size - 8, &last, 8);
}

static inline void stamp_check(const void *p, size_t size, uint64_t tag,
                               size_t span, const char *what)
{
    const unsigned char *b = p;
    if (size < 8) {
        if (size && b[0] != (unsigned char)tag)
            bench_fail(what, p, size);
        return;
    }
    size_t words = (span < size - 8 ? span : size - 8) / 8;
    for (size_t i = 0; i < words; i++) {
        uint64_t w;
        memcpy(&w, b + 8 * i, 8);
        if (w != stamp_word(tag, i))
            bench_fail(what, p, size);
    }
    uint64_t last;
    memcpy(&last, b + size - 8, 8);
    if (last != ~tag)
        bench_fail(what, p, size);
}

/* Parses argv[i] as a positive number (suffixes k, m accepted) or def. */
static inline long bench_arg(int argc, char **argv, int i, long def)
{
    if (argc <= i)
        return def;
    char *end;
    double v = strtod(argv[i], &end);
    if (*end == 'k' || *end == 'K')
        v *= 1e3;
    else if (*end == 'm' || *end == 'M')
        v *= 1e6;
    if (v <= 0 || end == argv[i]) {
        fprintf(stderr, "bench: bad argument '%s'\n", argv[i]);
        exit(2);
    }
    return (long)v;
}

static inline double bench_arg_f(int argc, char **argv, int i, double def)
{
    if (argc <= i)
        return def;
    double v = strtod(argv[i], NULL);
    if (v <= 0) {
        fprintf(stderr, "bench: bad argument '%s'\n", argv[i]);
        exit(2);
    }
    return v;
}

/* A worker's share of a workload split evenly between threads. */
typedef struct {
    int id;
    long work;   /* operations, steps or blocks, as the workload counts them */
} bench_job_t;

/* main() of a workload run as "THREADS SCALE": starts THREADS workers, each
 * with work_per_scale * SCALE / THREADS to do, and waits for them. */
static inline int bench_run_threads(int argc, char **argv, double work_per_scale,
                                    void *(*worker)(void *))
{
    int threads = (int)bench_arg(argc, argv, 1, 1);
    double scale = bench_arg_f(argc, argv, 2, 1.0);
    pthread_t tid[threads];
    bench_job_t job[threads];
    for (int i = 0; i < threads; i++) {
        job[i].id = i;
        job[i].work = (long)(work_per_scale * scale) / threads;
        if (pthread_create(&tid[i], NULL, worker, &job[i]) != 0)
            return 2;
    }
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    return 0;
}

#endif /* BENCH_COMMON_H */
