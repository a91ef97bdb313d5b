/*
 * forkbench.c — how long fork() takes in a process with a big heap of small
 * blocks, idle and with threads busy allocating.
 *
 *   forkbench BUSY_THREADS [MIB] [FORKS]
 *
 * Builds about MIB MiB (default 230) of blocks of 16 B to 2 KiB, every byte
 * written, starts BUSY_THREADS threads that allocate and free small blocks
 * in a loop, then forks FORKS times (default 40); each child exits at once
 * and the parent waits for it.  The time measured is the parent's, from the
 * call to fork() to its return: the kernel's copy of the page tables and
 * the allocator's fork handlers (taking its locks before, releasing them
 * after).  Prints the median and the spread in milliseconds, the median
 * count of page faults the forking thread took inside fork() (pages the
 * fork handlers wrote while the child shared them are copied for the
 * parent) and the median CPU time it spent there, as
 * "fork median_ms min_ms max_ms faults N cpu_ms C".  With busy threads on
 * few CPUs the wall time is mostly the forking thread waiting for a CPU;
 * the faults and the CPU time say what fork itself cost.
 */
#define _GNU_SOURCE
#include "common.h"
#include <pthread.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_THREADS 16
#define MAX_FORKS 1000

static volatile int stop;

static void *busy(void *arg)
{
    rng_t r;
    rng_seed(&r, 500 + (uint64_t)(uintptr_t)arg);
    void *keep[256] = {0};
    while (!stop) {
        unsigned i = (unsigned)rng_below(&r, 256);
        free(keep[i]);
        keep[i] = xmalloc(16 + (size_t)rng_below(&r, 512));
    }
    for (int i = 0; i < 256; i++)
        free(keep[i]);
    return NULL;
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

/* The calling thread's CPU time (exact, where getrusage's is sampled). */
static double cpu_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    int threads = argc > 1 ? atoi(argv[1]) : 0;   /* 0 is a valid count here */
    size_t target = (size_t)bench_arg(argc, argv, 2, 230) << 20;
    int forks = (int)bench_arg(argc, argv, 3, 40);
    if (threads > MAX_THREADS || forks > MAX_FORKS || forks < 1)
        return 2;
    rng_t r;
    rng_seed(&r, 42);
    size_t cap = target / 16, n = 0, bytes = 0;
    void **blocks = xmalloc(cap * sizeof *blocks);
    while (bytes < target && n < cap) {
        size_t size = 16 + (size_t)rng_below(&r, 2032);
        blocks[n] = xmalloc(size);
        memset(blocks[n], (int)n, size);
        bytes += size;
        n++;
    }
    pthread_t tid[MAX_THREADS];
    for (int i = 0; i < threads; i++)
        if (pthread_create(&tid[i], NULL, busy, (void *)(uintptr_t)i) != 0)
            return 2;
    static double took[MAX_FORKS], faults[MAX_FORKS], cpu[MAX_FORKS];
    for (int i = 0; i < forks; i++) {
        struct rusage ru0, ru1;
        getrusage(RUSAGE_THREAD, &ru0);
        double c0 = cpu_ms(), t0 = now_ms();
        pid_t pid = fork();
        if (pid == 0)
            _exit(0);
        took[i] = now_ms() - t0;
        getrusage(RUSAGE_THREAD, &ru1);
        faults[i] = (double)(ru1.ru_minflt - ru0.ru_minflt);
        cpu[i] = cpu_ms() - c0;
        if (pid < 0 || waitpid(pid, NULL, 0) != pid)
            return 1;
    }
    stop = 1;
    for (int i = 0; i < threads; i++)
        pthread_join(tid[i], NULL);
    for (size_t i = 0; i < n; i++)
        free(blocks[i]);
    free(blocks);
    qsort(took, (size_t)forks, sizeof took[0], cmp_double);
    qsort(faults, (size_t)forks, sizeof faults[0], cmp_double);
    qsort(cpu, (size_t)forks, sizeof cpu[0], cmp_double);
    printf("fork %.3f %.3f %.3f faults %.0f cpu_ms %.3f\n", took[forks / 2], took[0],
           took[forks - 1], faults[forks / 2], cpu[forks / 2]);
    return 0;
}
