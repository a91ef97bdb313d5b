/*
 * test_options.c — GOMALLOC_* settings (alloc/options.c) as gm_init reads
 * them, in a child started with an environment of the test's choosing:
 * values in range taken, out-of-range and malformed ones reported with the
 * range and left at their defaults, unknown names reported with the nearest
 * known one, the first of two entries with one name winning (as getenv), and
 * the same from /proc/self/environ when environ is not set yet (what a
 * malloc from the dynamic loader sees).  The messages against the installed
 * library are checked by tests/install.sh.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gomalloc.h"
#include "internal.h"
#include "testutil.h"

extern char **environ;

static const char *self_path;

/* Runs this binary as "--child MODE" with env; its stdout and stderr
 * together into out.  Returns the exit status. */
static int run_child(const char *mode, char *const env[], char *out, size_t cap) {
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 1);
        dup2(fds[1], 2);
        close(fds[0]);
        char *argv[] = {(char *)self_path, "--child", (char *)mode, NULL};
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
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* The child prints the options in force. */
static const char *expected_defaults =
    "scavenge=1 retain=5 decay=1000 madvise_free=0 cache=2048 debug=0\n";

static void test_options_defaults_without_variables(void **state) {
    (void)state;
    char out[2048];
    char *env[] = {"PATH=/bin", NULL};
    assert_int_equal(run_child("environ", env, out, sizeof out), 0);
    assert_string_equal(out, expected_defaults);
}

static void test_options_values_taken(void **state) {
    (void)state;
    char out[2048];
    char *env[] = {"GOMALLOC_SCAVENGE=0", "GOMALLOC_RETAIN_PERCENT=100000",
                   "GOMALLOC_DECAY_MS=0", "GOMALLOC_MADVISE=free",
                   "GOMALLOC_THREAD_CACHE_KIB=0", "GOMALLOC_LIB=/x", NULL};
    assert_int_equal(run_child("environ", env, out, sizeof out), 0);
    assert_string_equal(out, "scavenge=0 retain=100000 decay=0 madvise_free=1 cache=0 debug=0\n");
}

static void test_options_bad_values_reported_defaults_kept(void **state) {
    (void)state;
    char out[2048];
    char *env[] = {"GOMALLOC_RETAIN_PERCENT=200000", "GOMALLOC_DECAY_MS=-3",
                   "GOMALLOC_THREAD_CACHE_KIB=99999999999999999999999", "GOMALLOC_SCAVENGE=",
                   "GOMALLOC_MADVISE=Free", NULL};
    assert_int_equal(run_child("environ", env, out, sizeof out), 0);
    assert_string_equal(out,
                        "gomalloc: GOMALLOC_RETAIN_PERCENT: out of range 0..100000: \"200000\"\n"
                        "gomalloc: GOMALLOC_DECAY_MS: out of range 0..3600000: \"-3\"\n"
                        "gomalloc: GOMALLOC_THREAD_CACHE_KIB: out of range 0..1048576: "
                        "\"99999999999999999999999\"\n"
                        "gomalloc: GOMALLOC_SCAVENGE: not 0 or 1: \"\"\n"
                        "gomalloc: GOMALLOC_MADVISE: not dontneed or free: \"Free\"\n"
                        "scavenge=1 retain=5 decay=1000 madvise_free=0 cache=2048 debug=0\n");
}

static void test_options_unknown_names_nearest(void **state) {
    (void)state;
    char out[2048];
    char *env[] = {"GOMALLOC_SCAVANGE=0", "GOMALLOC_RETAIN=3", "GOMALLOC_THREADCACHE_KIB=64",
                   "GOMALLOC_DEBUG=0", NULL};
    assert_int_equal(run_child("environ", env, out, sizeof out), 0);
    assert_string_equal(out,
                        "gomalloc: GOMALLOC_SCAVANGE: unknown setting, ignored "
                        "(did you mean GOMALLOC_SCAVENGE?)\n"
                        "gomalloc: GOMALLOC_RETAIN: unknown setting, ignored "
                        "(did you mean GOMALLOC_RETAIN_PERCENT?)\n"
                        "gomalloc: GOMALLOC_THREADCACHE_KIB: unknown setting, ignored "
                        "(did you mean GOMALLOC_THREAD_CACHE_KIB?)\n"
                        "scavenge=1 retain=5 decay=1000 madvise_free=0 cache=2048 debug=0\n");
}

static void test_options_first_entry_wins(void **state) {
    (void)state;
    char out[2048];
    char *env[] = {"GOMALLOC_DECAY_MS=5", "GOMALLOC_DECAY_MS=9", "GOMALLOC_DECAY_MS=x", NULL};
    assert_int_equal(run_child("environ", env, out, sizeof out), 0);
    assert_string_equal(out, "scavenge=1 retain=5 decay=5 madvise_free=0 cache=2048 debug=0\n");
}

/* The child reads again with environ unset: from /proc/self/environ, which
 * holds the environment it was started with.  Each report appears twice:
 * at start-up (from environ) and again. */
static void test_options_from_proc_environ(void **state) {
    (void)state;
    char out[2048];
    char *env[] = {"GOMALLOC_RETAIN_PERCENT=42", "GOMALLOC_MADVISE=free", "GOMALLOC_DECAY_MS=77",
                   "GOMALLOC_BOGUS=1", NULL};
    assert_int_equal(run_child("proc", env, out, sizeof out), 0);
    assert_string_equal(out,
                        "gomalloc: GOMALLOC_BOGUS: unknown setting, ignored (did you mean "
                        "GOMALLOC_DEBUG?)\n"
                        "gomalloc: GOMALLOC_BOGUS: unknown setting, ignored (did you mean "
                        "GOMALLOC_DEBUG?)\n"
                        "scavenge=1 retain=42 decay=77 madvise_free=1 cache=2048 debug=0\n");
}

static int child_main(const char *mode) {
    gm_free(gm_malloc(10));   /* gm_init has read the environment */
    if (strcmp(mode, "proc") == 0) {
        struct gm_options defaults = {.scavenge = true, .retain_percent = 5, .decay_ms = 1000,
                                      .thread_cache_bytes = GM_THREAD_CACHE_DEFAULT};
        gm_options = defaults;
        char **saved = environ;
        environ = NULL;
        gm_options_init();
        environ = saved;
    }
    printf("scavenge=%d retain=%u decay=%u madvise_free=%d cache=%zu debug=%d\n",
           gm_options.scavenge, gm_options.retain_percent, gm_options.decay_ms,
           gm_os_madvise_free, gm_options.thread_cache_bytes >> 10, gm_options.debug);
    return 0;
}

int main(int argc, char **argv) {
    if (argc > 2 && strcmp(argv[1], "--child") == 0)
        return child_main(argv[2]);
    char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return 1;
    exe[n] = '\0';
    self_path = exe;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_defaults_without_variables),
        cmocka_unit_test(test_options_values_taken),
        cmocka_unit_test(test_options_bad_values_reported_defaults_kept),
        cmocka_unit_test(test_options_unknown_names_nearest),
        cmocka_unit_test(test_options_first_entry_wins),
        cmocka_unit_test(test_options_from_proc_environ),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
