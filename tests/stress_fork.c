/*
 * stress_fork.c — fork() while other threads allocate: the child's heap must
 * work (no lock left held by a thread that does not exist in the child).
 *
 * Four threads allocate, exchange and free blocks through atomic slots while
 * the main thread forks in a loop.  Each child takes blocks from the slots
 * (allocated by threads that do not exist in the child), checks and frees
 * them, uses malloc/calloc/realloc/free, starts a thread that allocates, and
 * _exit()s 0.  The parent waits for each child with a deadline: a child that
 * hangs is killed and counted as a failure, so a deadlock fails the test
 * instead of blocking it.
 *
 * Seeds are fixed; GM_STRESS_SCALE (a float, default 1) multiplies the number
 * of forks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "api_names.h"
#include "stress_util.h"


/* Seconds a child may take before it counts as hung. */
#define CHILD_DEADLINE 20

/* Child exit codes. */
enum { CHILD_OK = 0, CHILD_ALLOC_FAILED = 10, CHILD_BAD_CONTENTS, CHILD_NOT_ZERO, CHILD_THREAD };

/* A block's first word holds its size, the rest a pattern derived from its
 * address; blocks are at least 16 bytes. */
static uint64_t pattern_word(const void *p, size_t i)
{
    return ((uintptr_t)p + i) * 0x9E3779B97F4A7C15ull;
}

static void *block_new(size_t n)
{
    uint64_t *w = gm_malloc(n);
    if (w == NULL)
        return NULL;
    w[0] = n;
    for (size_t i = 1; i < n / 8; i++)
        w[i] = pattern_word(w, i);
    return w;
}

static int block_ok(const void *p)
{
    const uint64_t *w = p;
    size_t n = (size_t)w[0];
    if (n < 16 || n > 2 * MiB || gm_usable_size(p) < n)
        return 0;
    for (size_t i = 1; i < n / 8; i++)
        if (w[i] != pattern_word(p, i))
            return 0;
    return 1;
}

/* ---- the allocating threads ------------------------------------------------ */

enum { WORKERS = 4, SLOTS = 256 };

static _Atomic(void *) slots[SLOTS];
static atomic_int stop_workers;
static atomic_long worker_failures;

static size_t pick_size(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    if (r % 200 == 0)
        return 256 * KiB + (size_t)(r >> 8) % (512 * KiB);
    if (r % 10 == 0)
        return 4 * KiB + (size_t)(r >> 8) % (60 * KiB);
    return 16 + (size_t)(r >> 8) % 1000;
}

static void *worker(void *arg)
{
    uint64_t rng = 0x2545F4914F6CDD1Dull * ((uintptr_t)arg + 1);
    void *local[16] = { 0 };
    while (!atomic_load_explicit(&stop_workers, memory_order_relaxed)) {
        uint64_t r = rng_next(&rng);
        if (r % 3 == 0) { /* local churn */
            void **l = &local[(r >> 8) % 16];
            if (*l != NULL && !block_ok(*l))
                atomic_fetch_add(&worker_failures, 1);
            gm_free(*l);
            *l = block_new(pick_size(&rng));
            continue;
        }
        void *b = block_new(pick_size(&rng));
        if (b == NULL) {
            atomic_fetch_add(&worker_failures, 1);
            continue;
        }
        void *old = atomic_exchange(&slots[(r >> 8) % SLOTS], b);
        if (old != NULL && !block_ok(old))
            atomic_fetch_add(&worker_failures, 1);
        gm_free(old);
    }
    for (int i = 0; i < 16; i++)
        gm_free(local[i]);
    return NULL;
}

/* ---- the child ------------------------------------------------------------ */

static void *child_thread(void *arg)
{
    (void)arg;
    void *p[64];
    for (int i = 0; i < 64; i++)
        if ((p[i] = block_new(16 + (size_t)i * 100)) == NULL)
            return (void *)1;
    for (int i = 0; i < 64; i++) {
        if (!block_ok(p[i]))
            return (void *)1;
        gm_free(p[i]);
    }
    return NULL;
}

static int child_main(unsigned seed)
{
    uint64_t rng = 0x9E3779B97F4A7C15ull ^ seed;
    /* Blocks of threads that do not exist here: check and free some. */
    for (int i = 0; i < 32; i++) {
        void *b = atomic_exchange(&slots[rng_next(&rng) % SLOTS], NULL);
        if (b != NULL && !block_ok(b))
            return CHILD_BAD_CONTENTS;
        gm_free(b);
    }
    void *p[100];
    for (int i = 0; i < 100; i++)
        if ((p[i] = block_new(pick_size(&rng))) == NULL)
            return CHILD_ALLOC_FAILED;
    unsigned char *z = gm_calloc(1000, 70);
    if (z == NULL)
        return CHILD_ALLOC_FAILED;
    for (size_t i = 0; i < 70000; i++)
        if (z[i] != 0)
            return CHILD_NOT_ZERO;
    z = gm_realloc(z, 300000);
    if (z == NULL)
        return CHILD_ALLOC_FAILED;
    gm_free(z);
    for (int i = 0; i < 100; i++) {
        if (!block_ok(p[i]))
            return CHILD_BAD_CONTENTS;
        gm_free(p[i]);
    }
    pthread_t t;
    void *ret = (void *)1;
    if (pthread_create(&t, NULL, child_thread, NULL) != 0 || pthread_join(t, &ret) != 0 ||
        ret != NULL)
        return CHILD_THREAD;
    return CHILD_OK;
}

/* In a child: die of signals instead of returning into cmocka's handlers,
 * without a core dump, and give up after the deadline. */
static void child_setup(unsigned seconds)
{
    static const int sigs[] = { SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE };
    struct rlimit no_core = { 0, 0 };
    setrlimit(RLIMIT_CORE, &no_core);
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
    alarm(seconds);
}

/* ---- the parent ------------------------------------------------------------ */

struct fork_result {
    long hung, failed, signalled;
    int last_status;
};

/* Waits for pid until CHILD_DEADLINE seconds have passed; kills it then. */
static void wait_with_deadline(pid_t pid, struct fork_result *res)
{
    struct timespec start, now, nap = { 0, 200000 };
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        int status;
        pid_t r = waitpid(pid, &status, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(status) && WEXITSTATUS(status) == CHILD_OK)
                return;
            res->last_status = status;
            if (WIFSIGNALED(status))
                res->signalled++;
            else
                res->failed++;
            return;
        }
        if (r < 0 && errno != EINTR) {
            res->failed++;
            return;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec >= CHILD_DEADLINE) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            res->hung++;
            return;
        }
        nanosleep(&nap, NULL);
        if (nap.tv_nsec < 20000000)
            nap.tv_nsec *= 2;
    }
}

static void fork_loop(long forks, struct fork_result *res)
{
    for (long i = 0; i < forks; i++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            child_setup(CHILD_DEADLINE + 5); /* belt and braces if the parent dies */
            _exit(child_main((unsigned)i));
        }
        wait_with_deadline(pid, res);
        if (res->hung)
            return; /* one deadlock is enough; do not wait out the rest */
    }
}

static void report(const struct fork_result *res, long forks)
{
    if (res->hung || res->failed || res->signalled)
        fail_msg("of %ld children: %ld hung (killed after %d s), %ld failed, %ld killed by a "
                 "signal; last status 0x%x (exit codes: 10 alloc failed, 11 bad contents, "
                 "12 calloc not zero, 13 thread)",
                 forks, res->hung, CHILD_DEADLINE, res->failed, res->signalled, res->last_status);
}

static void test_fork_while_threads_allocate(void **state)
{
    (void)state;
    pthread_t t[WORKERS];
    struct fork_result res = { 0, 0, 0, 0 };
    long forks = scaled(200);
    atomic_store(&stop_workers, 0);
    atomic_store(&worker_failures, 0);
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, worker, (void *)(uintptr_t)i), 0);
    fork_loop(forks, &res);
    atomic_store(&stop_workers, 1);
    for (int i = 0; i < WORKERS; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
    for (int i = 0; i < SLOTS; i++) {
        void *b = atomic_exchange(&slots[i], NULL);
        if (b != NULL && !block_ok(b))
            atomic_fetch_add(&worker_failures, 1);
        gm_free(b);
    }
    report(&res, forks);
    assert_int_equal(atomic_load(&worker_failures), 0);
}

/* The parent keeps working after its children: forking must not break it. */
static void test_fork_parent_heap_intact_after_forks(void **state)
{
    (void)state;
    enum { N = 500 };
    void *p[N];
    uint64_t rng = 42;
    for (int i = 0; i < N; i++) {
        p[i] = block_new(pick_size(&rng));
        assert_non_null(p[i]);
    }
    struct fork_result res = { 0, 0, 0, 0 };
    long forks = scaled(50);
    fork_loop(forks, &res);
    report(&res, forks);
    for (int i = 0; i < N; i++) {
        assert_true(block_ok(p[i]));
        gm_free(p[i]);
    }
}

/* A child that forks again, from a thread other than its main one. */
static void *grandchild_forker(void *arg)
{
    (void)arg;
    struct fork_result res = { 0, 0, 0, 0 };
    pid_t pid = fork();
    if (pid < 0)
        return (void *)1;
    if (pid == 0)
        _exit(child_main(7));
    wait_with_deadline(pid, &res);
    return (void *)(uintptr_t)(res.hung || res.failed || res.signalled);
}

static void test_fork_from_thread_in_child(void **state)
{
    (void)state;
    struct fork_result res = { 0, 0, 0, 0 };
    long rounds = scaled(20);
    for (long i = 0; i < rounds; i++) {
        fflush(NULL);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            child_setup(2 * CHILD_DEADLINE + 5);
            void *junk = block_new(5000);
            pthread_t t;
            void *ret = (void *)1;
            if (junk == NULL || pthread_create(&t, NULL, grandchild_forker, NULL) != 0 ||
                pthread_join(t, &ret) != 0 || ret != NULL)
                _exit(CHILD_THREAD);
            gm_free(junk);
            _exit(CHILD_OK);
        }
        wait_with_deadline(pid, &res);
        if (res.hung)
            break;
    }
    report(&res, rounds);
}

int main(void)
{
    alarm(900); /* if the parent itself deadlocks, fail rather than hang */
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fork_while_threads_allocate),
        cmocka_unit_test(test_fork_parent_heap_intact_after_forks),
        cmocka_unit_test(test_fork_from_thread_in_child),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
