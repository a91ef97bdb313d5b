/*
 * test_guard.c — guarded sampling (alloc/guard.c).
 *
 * The faults are planted in children: this binary re-run with --child NAME
 * and GOMALLOC_GUARD_RATE=1 (every allocation that reaches the slow path is
 * sampled), printing the address it is about to misuse on stdout; the
 * parent asserts how the child died and what its stderr says.  The API
 * tests run in this process, also at rate 1 (set before the first call).
 */
#define _GNU_SOURCE
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gomalloc.h"
#include "guard.h"
#include "internal.h"
#include "testutil.h"

static char self[4096];

/* ---- the children ------------------------------------------------------------ */

static void announce(const void *p) {
    printf("%p\n", p);
    fflush(stdout);
}

static char *own_page;   /* the program's own PROT_NONE page */

static void own_handler(int sig, siginfo_t *info, void *ctx) {
    (void)sig;
    (void)ctx;
    _exit(info->si_addr == own_page ? 42 : 43);
}

static void install_own_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = own_handler;
    sa.sa_flags = SA_SIGINFO;
    sigaction(SIGSEGV, &sa, NULL);
}

static void touch_own_page(void) {
    own_page = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    *(volatile char *)own_page = 1;
}

static int child(const char *name) {
    if (!strcmp(name, "own_before")) {   /* the program's handler, then our first sample */
        install_own_handler();
        gm_free(gm_malloc(40));
        touch_own_page();
        return 1;
    }
    if (!strcmp(name, "own_chained")) {  /* ours reports, then the program's runs */
        install_own_handler();
        char *q = gm_malloc(40);
        announce(q + 48);
        ((volatile char *)q)[48] = 1;
        return 1;
    }
    char *p = gm_malloc(40);
    if (!gm_guard_owns(p))
        return 2;   /* not sampled: the scenario would be void */
    if (!strcmp(name, "own_after")) {    /* our first sample, then the program's handler */
        install_own_handler();
        touch_own_page();
        return 1;
    }
    if (!strcmp(name, "overflow")) {
        announce(p + 48);
        ((volatile char *)p)[48] = 1;
    } else if (!strcmp(name, "underflow")) {
        announce(p - 1);
        ((volatile char *)p)[-1] = 1;
    } else if (!strcmp(name, "use_after_free")) {
        gm_free(p);
        announce(p + 8);
        return ((volatile char *)p)[8];
    } else if (!strcmp(name, "double_free")) {
        announce(p);
        gm_free(p);
        gm_free(p);
    } else if (!strcmp(name, "usable_freed")) {
        announce(p);
        gm_free(p);
        printf("%zu\n", gm_usable_size(p));
    }
    return 0;
}

/* ---- the parent --------------------------------------------------------------- */

struct outcome {
    int status;
    char out[256];
    char err[2048];
};

static void drain(int fd, char *buf, size_t cap) {
    size_t n = 0;
    ssize_t got;
    while (n < cap - 1 && (got = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)got;
    buf[n] = '\0';
}

static void run_child(const char *name, const char *catch_side, struct outcome *o) {
    int out[2], err[2];
    assert_int_equal(pipe(out), 0);
    assert_int_equal(pipe(err), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(out[1], 1);
        dup2(err[1], 2);
        close(out[0]);
        close(err[0]);
        char side[64];
        snprintf(side, sizeof side, "GOMALLOC_GUARD_CATCH=%s", catch_side);
        char *argv[] = {self, "--child", (char *)name, NULL};
        char *envp[] = {"GOMALLOC_GUARD_RATE=1", side, NULL};
        execve(self, argv, envp);
        _exit(127);
    }
    close(out[1]);
    close(err[1]);
    drain(out[0], o->out, sizeof o->out);
    drain(err[0], o->err, sizeof o->err);
    close(out[0]);
    close(err[0]);
    assert_int_equal(waitpid(pid, &o->status, 0), pid);
}

/* The child died of SIGSEGV after reporting "gomalloc: <what> at <addr><tail>"
 * then the allocation stack (and the free stack if freed).  A %d in tail
 * stands for the thread that freed the block (the child's only thread). */
static void expect_fault(const char *name, const char *side, const char *what, const char *tail,
                         bool freed) {
    struct outcome o;
    run_child(name, side, &o);
    char addr[64], expected[512], tail_now[256];
    assert_int_equal(sscanf(o.out, "%63s", addr), 1);
    const char *tid = strstr(o.err, "freed by thread ");
    snprintf(tail_now, sizeof tail_now, tail, tid ? atoi(tid + 16) : -1);
    snprintf(expected, sizeof expected, "gomalloc: %s at %s%s\n", what, addr, tail_now);
    assert_true(WIFSIGNALED(o.status));
    assert_int_equal(WTERMSIG(o.status), SIGSEGV);
    assert_memory_equal(o.err, expected, strlen(expected));
    const char *stack = o.err + strlen(expected);
    assert_true(!strncmp(stack, "gomalloc:   allocated by thread ", 32));
    /* The test links libgcc_s (Makefile): the stack is there. */
    assert_non_null(strstr(stack, " at 0x"));
    const char *free_line = strstr(stack, "gomalloc:   freed by thread ");
    assert_true(freed == (free_line != NULL));
}

static void test_guard_overflow_caught(void **state) {
    (void)state;
    /* 40 bytes end 8 bytes short of the guard page (16-byte alignment). */
    expect_fault("overflow", "overflow", "heap-buffer-overflow", " (8 bytes past a 40-byte block)",
                 false);
}

static void test_guard_underflow_caught(void **state) {
    (void)state;
    expect_fault("underflow", "underflow", "heap-buffer-underflow",
                 " (1 bytes before a 40-byte block)", false);
}

static void test_guard_use_after_free_caught(void **state) {
    (void)state;
    expect_fault("use_after_free", "overflow", "use-after-free",
                 " (8 bytes into a 40-byte block freed by thread %d)", true);
}

static void expect_abort(const char *name, const char *expected_fmt) {
    struct outcome o;
    run_child(name, "overflow", &o);
    char addr[64], expected[512];
    assert_int_equal(sscanf(o.out, "%63s", addr), 1);
    snprintf(expected, sizeof expected, expected_fmt, addr);
    assert_true(WIFSIGNALED(o.status));
    assert_int_equal(WTERMSIG(o.status), SIGABRT);
    assert_string_equal(o.err, expected);
}

static void test_guard_double_free_reported(void **state) {
    (void)state;
    expect_abort("double_free", "gomalloc: free(): double free of %s (40 bytes)\n");
    expect_abort("usable_freed", "gomalloc: malloc_usable_size(): freed block %s (40 bytes)\n");
}

/* A program's SIGSEGV handler, installed before or after the first sample,
 * still gets the program's own faults. */
static void test_guard_program_handler_gets_its_faults(void **state) {
    (void)state;
    const char *names[] = {"own_before", "own_after"};
    for (int i = 0; i < 2; i++) {
        struct outcome o;
        run_child(names[i], "overflow", &o);
        assert_true(WIFEXITED(o.status));
        assert_int_equal(WEXITSTATUS(o.status), 42);
        assert_string_equal(o.err, "");
    }
    /* A fault of ours is reported, then the program's handler meets it. */
    struct outcome o;
    run_child("own_chained", "overflow", &o);
    assert_true(WIFEXITED(o.status));
    assert_int_equal(WEXITSTATUS(o.status), 43);
    char addr[64], expected[256];
    assert_int_equal(sscanf(o.out, "%63s", addr), 1);
    snprintf(expected, sizeof expected,
             "gomalloc: heap-buffer-overflow at %s (8 bytes past a 40-byte block)\n", addr);
    assert_memory_equal(o.err, expected, strlen(expected));
}

/* ---- in this process, at rate 1 -------------------------------------------------- */

static void test_guard_api(void **state) {
    (void)state;
    char *p = gm_malloc(100);
    assert_true(gm_guard_owns(p));
    assert_true(gm_test_aligned((uintptr_t)p, 16));
    assert_int_equal(gm_usable_size(p), 100);
    memset(p, 7, 100);
    /* realloc moves it (the new block is sampled again at rate 1). */
    char *q = gm_realloc(p, 300);
    assert_non_null(q);
    assert_ptr_not_equal(q, p);
    for (int i = 0; i < 100; i++)
        assert_int_equal(q[i], 7);
    q = gm_realloc(q, 10);
    assert_int_equal(q[9], 7);
    gm_free_sized(q, 10);
    /* Every alignment the memalign family promises. */
    size_t aligns[] = {32, 64, 256, 4096, 8192};
    for (size_t i = 0; i < sizeof aligns / sizeof *aligns; i++) {
        void *a = gm_aligned_alloc(aligns[i], 40);
        void *b = NULL;
        assert_int_equal(gm_posix_memalign(&b, aligns[i], 3000), 0);
        void *c = gm_memalign(aligns[i], 1);
        assert_true(gm_test_aligned((uintptr_t)a, aligns[i]));
        assert_true(gm_test_aligned((uintptr_t)b, aligns[i]));
        assert_true(gm_test_aligned((uintptr_t)c, aligns[i]));
        gm_free(a);
        gm_free(b);
        gm_free(c);
    }
    char *z = gm_calloc(50, 3);
    for (int i = 0; i < 150; i++)
        assert_int_equal(z[i], 0);
    gm_free(z);
    gm_free(gm_malloc(0));
}

static size_t count_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    size_t n = 0;
    int c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* Many sampled blocks: the pool hands out at most its slots, then blocks are
 * served as usual; freed slots wait in quarantine, reused oldest first; the
 * process's mappings do not grow with the number of samples. */
static void test_guard_pool_bounded(void **state) {
    (void)state;
    enum { N = 2000 };
    static void *live[N];
    struct gm_guard_stats st, before;
    gm_guard_stats(&before);
    size_t maps_before = count_maps();
    for (int i = 0; i < N; i++)
        live[i] = gm_malloc((size_t)(i % 500) + 1);
    gm_guard_stats(&st);
    assert_true(st.live <= 256);
    assert_true(st.live + st.quarantined <= 256);
    assert_true(st.sampled > before.sampled);
    for (int i = 0; i < N; i++)
        gm_free(live[i]);
    long rounds = gm_test_scaled(20000, 2000);
    for (long i = 0; i < rounds; i++)
        gm_free(gm_malloc((size_t)(i % 1000) + 1));
    gm_guard_stats(&st);
    assert_int_equal(st.live, 0);
    assert_true(st.quarantined <= 256);
    assert_true(st.sampled > before.sampled + 256);   /* slots were reused */
    /* Each live block splits the region's mapping in up to three; none live. */
    assert_true(count_maps() <= maps_before + 8);
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "--child"))
        return child(argv[2]);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    /* The settings are read before main: run again with the rate set (also
     * when the caller set another: make test-unit turns sampling off). */
    const char *rate = getenv("GOMALLOC_GUARD_RATE");
    if (!rate || strcmp(rate, "1") != 0) {
        setenv("GOMALLOC_GUARD_RATE", "1", 1);
        execv(self, argv);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_guard_overflow_caught),
        cmocka_unit_test(test_guard_underflow_caught),
        cmocka_unit_test(test_guard_use_after_free_caught),
        cmocka_unit_test(test_guard_double_free_reported),
        cmocka_unit_test(test_guard_program_handler_gets_its_faults),
        cmocka_unit_test(test_guard_api),
        cmocka_unit_test(test_guard_pool_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
