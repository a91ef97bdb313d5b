/*
 * test_scavenger.c — memory goes back to the OS: in the background after a
 * drop, at once through gm_release, under both madvise modes, across fork;
 * the scavenger thread starts only once the heap has grown; bad GOMALLOC_*
 * values are reported and ignored.
 *
 * RSS is read from /proc/self/status.  Under valgrind or ASan RSS means
 * little, so the RSS bounds are checked only in a plain build (the rest of
 * each test still runs).
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "gomalloc.h"
#include "scavenger.h"
#include "testing.h"
#include "testutil.h"

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define UNDER_SANITIZER 1
#else
#define UNDER_SANITIZER 0
#endif

static const char *self_path;

static bool rss_meaningful(void) { return !UNDER_SANITIZER && !RUNNING_ON_VALGRIND; }

static long rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long v = -1;
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, "VmRSS:", 6) == 0)
            v = atol(line + 6);
    if (f)
        fclose(f);
    return v;
}

static int thread_count(void) {
    DIR *d = opendir("/proc/self/task");
    int n = 0;
    struct dirent *e;
    while (d && (e = readdir(d)))
        n += e->d_name[0] != '.';
    if (d)
        closedir(d);
    return n;
}

/* Allocates about total bytes of mixed small and large blocks, all written. */
static size_t build_heap(void **blocks, size_t max, size_t total) {
    size_t n = 0, bytes = 0;
    unsigned r = 12345;
    while (bytes < total && n < max) {
        r = r * 1103515245u + 12345u;
        size_t size = (r >> 16) % 10 == 0 ? 40 * KiB + (r % (200 * KiB)) : 16 + r % 2000;
        blocks[n] = gm_malloc(size);
        assert_non_null(blocks[n]);
        memset(blocks[n], 0x5a, size);
        bytes += size;
        n++;
    }
    return n;
}

static void free_all(void **blocks, size_t n) {
    for (size_t i = 0; i < n; i++)
        gm_free(blocks[i]);
}

#define MAX_BLOCKS 400000
static void *blocks[MAX_BLOCKS];

static void test_scavenger_not_started_by_small_heap(void **state) {
    (void)state;
    /* This runs first: the heap is still small. */
    void *p = gm_malloc(100);
    assert_non_null(p);
    gm_free(p);
    assert_false(gm_scavenger_running());
}

static void test_scavenger_rss_falls_without_a_call(void **state) {
    (void)state;
    int threads_before = thread_count();
    size_t total = (size_t)gm_test_scaled(400, 48) * MiB;
    size_t n = build_heap(blocks, MAX_BLOCKS, total);
    long peak = rss_kib();
    free_all(blocks, n);
    gm_free(gm_malloc(64 * KiB));   /* slow paths after the growth start the scavenger */
    assert_true(gm_scavenger_running());
    assert_int_equal(thread_count(), threads_before + 1);
    /* Idle memory goes back once it has decayed (1 s), paced: within 2.5 s
     * of the frees at most 15% of the peak may be left. */
    long rss = rss_kib();
    double waited = 0;
    while (waited < 2.5 && rss > peak * 15 / 100) {
        usleep(50 * 1000);
        waited += 0.05;
        rss = rss_kib();
    }
    if (rss_meaningful()) {
        printf("peak %ld KiB, %.2f s after the frees %ld KiB\n", peak, waited, rss);
        assert_true(rss <= peak * 15 / 100);
    }
    struct gm_stats st;
    gm_get_stats(&st);
    assert_true(st.released > 0);
}

/* Minor page faults of this process so far. */
static long minor_faults(void) {
    struct rusage u;
    getrusage(RUSAGE_SELF, &u);
    return u.ru_minflt;
}

/* Memory freed and asked for again within the decay time is not given back
 * and faulted in again: the blocks come back on pages still backed. */
static void test_scavenger_keeps_memory_reused_within_decay(void **state) {
    (void)state;
    enum { BLOCKS = 6 };
    size_t size = 8 * MiB;
    void *big[BLOCKS];
    for (int round = 0; round < 3; round++) {
        for (int i = 0; i < BLOCKS; i++) {
            big[i] = gm_malloc(size);
            assert_non_null(big[i]);
        }
        long before = minor_faults();
        for (int i = 0; i < BLOCKS; i++)
            memset(big[i], round + 1, size);
        long faults = minor_faults() - before;
        gm_free(gm_malloc(64 * KiB));   /* the heap is big: the scavenger starts */
        assert_true(gm_scavenger_running());
        for (int i = 0; i < BLOCKS; i++)
            gm_free(big[i]);
        if (round > 0 && rss_meaningful()) {
            printf("round %d: %ld faults for %zu pages\n", round, faults,
                   BLOCKS * size / 4096);
            assert_true(faults < (long)(BLOCKS * size / 4096 / 20));
        }
        usleep(300 * 1000);   /* several scavenger ticks, well within the decay */
    }
    gm_release();
}

static void test_scavenger_release_returns_everything(void **state) {
    (void)state;
    gm_options.scavenge = false;   /* only the explicit call may release */
    size_t n = build_heap(blocks, MAX_BLOCKS, (size_t)gm_test_scaled(200, 32) * MiB);
    long peak = rss_kib();
    free_all(blocks, n);
    assert_int_equal(gm_release(), 1);
    long rss = rss_kib();
    if (rss_meaningful()) {
        printf("peak %ld KiB, after gm_release %ld KiB\n", peak, rss);
        assert_true(rss <= peak * 5 / 100 + 4096);
    }
    struct gm_stats st;
    gm_get_stats(&st);
    assert_true(st.heap_free < 64 * KiB);
    gm_options.scavenge = true;
}

/* Released memory handed out again is usable, and calloc zeroes it. */
static void reuse_after_release(bool madv_free) {
    gm_os_madvise_free = madv_free;
    size_t sizes[] = {48, 1000, 20000, 100 * KiB, 3 * MiB};
    for (int round = 0; round < 3; round++) {
        void *p[5];
        for (int i = 0; i < 5; i++) {
            p[i] = gm_malloc(sizes[i]);
            assert_non_null(p[i]);
            memset(p[i], 0xee, sizes[i]);
        }
        for (int i = 0; i < 5; i++)
            gm_free(p[i]);
        gm_release();
        for (int i = 0; i < 5; i++) {
            unsigned char *z = gm_calloc(1, sizes[i]);
            assert_non_null(z);
            for (size_t k = 0; k < sizes[i]; k++)
                assert_int_equal(z[k], 0);
            memset(z, 0x11, sizes[i]);
            for (size_t k = 0; k < sizes[i]; k += 512)
                assert_int_equal(z[k], 0x11);
            p[i] = z;
        }
        for (int i = 0; i < 5; i++)
            gm_free(p[i]);
    }
    gm_os_madvise_free = false;
}

static void test_scavenger_reuse_after_dontneed(void **state) {
    (void)state;
    reuse_after_release(false);
}

static void test_scavenger_reuse_after_madv_free(void **state) {
    (void)state;
    reuse_after_release(true);
}

/* The child of a fork taken while the scavenger works has a working heap
 * and a scavenger of its own once it needs one. */
static void test_scavenger_fork_while_running(void **state) {
    (void)state;
    for (int round = 0; round < (int)gm_test_scaled(5, 2); round++) {
        size_t n = build_heap(blocks, MAX_BLOCKS, 64 * MiB);
        free_all(blocks, n);   /* gives the scavenger work */
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            size_t m = build_heap(blocks, MAX_BLOCKS, 48 * MiB);
            free_all(blocks, m);
            gm_free(gm_malloc(64));
            _exit(gm_scavenger_running() ? 0 : 3);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
    }
}

/* Runs this binary as a child with one variable set; returns its stderr. */
static void child_stderr(const char *assignment, char *out, size_t cap) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        char *env[] = {(char *)assignment, NULL};
        char *argv[] = {(char *)self_path, "--child", NULL};
        execve(self_path, argv, env);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t got;
    while (len < cap - 1 && (got = read(fds[0], out + len, cap - 1 - len)) > 0)
        len += (size_t)got;
    out[len] = '\0';
    close(fds[0]);
    int status;
    waitpid(pid, &status, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
}

static void test_scavenger_bad_options_reported(void **state) {
    (void)state;
    char err[512];
    child_stderr("GOMALLOC_RETAIN_PERCENT=abc", err, sizeof err);
    assert_string_equal(err, "gomalloc: GOMALLOC_RETAIN_PERCENT: not a number: \"abc\"\n");
    child_stderr("GOMALLOC_THREAD_CACHE_KIB=12k", err, sizeof err);
    assert_string_equal(err, "gomalloc: GOMALLOC_THREAD_CACHE_KIB: not a number: \"12k\"\n");
    child_stderr("GOMALLOC_SCAVENGE=yes", err, sizeof err);
    assert_string_equal(err, "gomalloc: GOMALLOC_SCAVENGE: not 0 or 1: \"yes\"\n");
    child_stderr("GOMALLOC_MADVISE=never", err, sizeof err);
    assert_string_equal(err, "gomalloc: GOMALLOC_MADVISE: not dontneed or free: \"never\"\n");
    child_stderr("GOMALLOC_RETAIN_PERCENT=25", err, sizeof err);
    assert_string_equal(err, "");
}

/* --child: prints the options gomalloc read, for the parent to check. */
static int child_main(void) {
    void *p = gm_malloc(10);
    gm_free(p);
    return gm_options.retain_percent == 5 || gm_options.retain_percent == 25 ? 0 : 1;
}

int main(int argc, char **argv) {
    self_path = "/proc/self/exe";
    if (argc > 1 && strcmp(argv[1], "--child") == 0)
        return child_main();
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = '\0';
        self_path = exe;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scavenger_not_started_by_small_heap),
        cmocka_unit_test(test_scavenger_rss_falls_without_a_call),
        cmocka_unit_test(test_scavenger_keeps_memory_reused_within_decay),
        cmocka_unit_test(test_scavenger_release_returns_everything),
        cmocka_unit_test(test_scavenger_reuse_after_dontneed),
        cmocka_unit_test(test_scavenger_reuse_after_madv_free),
        cmocka_unit_test(test_scavenger_fork_while_running),
        cmocka_unit_test(test_scavenger_bad_options_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
