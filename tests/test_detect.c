/*
 * test_detect.c — each detection gomalloc promises, proved on a deliberately
 * buggy child: the child (this binary re-run with --child NAME, optionally
 * with GOMALLOC_DEBUG=1) prints the address it is about to misuse on stdout,
 * then misuses it; the parent asserts that the child died of SIGABRT and that
 * stderr holds exactly the expected line.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gomalloc.h"
#include "hardening.h"
#include "internal.h"
#include "testutil.h"

static char self[4096];

/* ---- the buggy children ---------------------------------------------------- */

/* Valid programs that copy the stale free marks of recycled memory into live
 * blocks (realloc of a block whose tail was never written; a struct copied
 * with its padding), then free them: none may be reported.  Returns 0. */
static int stale_marks(void) {
    static void *small[5000];
    for (int round = 0; round < 2; round++) {
        /* Freed 32-byte blocks leave their marks in the pages that large
         * blocks then reuse. */
        for (int i = 0; i < 5000; i++)
            small[i] = gm_malloc(32);
        for (int i = 0; i < 5000; i++)
            gm_free(small[i]);
        if (round == 0) {
            for (int i = 0; i < 50; i++) {
                char *p = gm_malloc(64 * 1024);
                memset(p, 'x', 8);
                gm_free(gm_realloc(p, 16));
            }
        } else {
            struct padded { long a; long double b; };
            size_t n = 64 * 1024 / sizeof(struct padded);
            struct padded *arr = gm_malloc(n * sizeof *arr);
            for (size_t i = 0; i < n; i++) {
                arr[i].a = (long)i;
                arr[i].b = (long double)i;
            }
            for (size_t i = 0; i < n; i++) {
                struct padded *c = gm_malloc(sizeof *c);
                memcpy(c, &arr[i], sizeof *c);
                gm_free(c);
            }
            gm_free(arr);
        }
    }
    /* The most direct copy: another block's mark in a live block's second word. */
    uintptr_t *a = gm_malloc(32), *b = gm_malloc(32);
    b[1] = gm_free_mark(a, gm_free_key);
    gm_free(b);
    gm_free(a);
    return 0;
}

static void *free_in_thread(void *p) {
    gm_free(p);
    return NULL;
}

static void announce(const void *p) {
    printf("%p\n", p);
    fflush(stdout);
}

/* A 400 KiB block (too big for the thread's page cache) freed to the heap,
 * then its pages merged with a neighbour's, released to the OS, and lent to
 * the interior of other blocks of other sizes (the first fits below cover
 * p's first page) and freed again: none of that starts a block at p, so p
 * is still a freed large block.  Returns 3 if some block did start there
 * (the scenario would be void). */
static int large_moved(void) {
    char *a = gm_malloc(200 * 1024), *p = gm_malloc(400 * 1024), *b = gm_malloc(200 * 1024);
    announce(p);
    memset(a, 1, 200 * 1024);
    memset(p, 1, 400 * 1024);
    gm_free(p);
    gm_free(a);   /* a's pages and p's are one free run now */
    char *c = gm_malloc(500 * 1024);
    if (c == p)
        return 3;
    gm_free(c);
    gm_release();   /* the pages go back to the OS */
    for (int i = 1; i <= 20; i++) {
        char *e = gm_malloc((size_t)i * 24 * 1024 + 8192);
        if (e == p)
            return 3;
        memset(e, 2, 64);
        gm_free(e);
    }
    gm_free(p);   /* the double free */
    gm_free(b);
    return 0;
}

static int child(const char *name) {
    if (!strcmp(name, "large_moved_double_free"))
        return large_moved();
    /* "large_" scenarios misuse a 100 KiB block, the others a small one. */
    char *p = gm_malloc(strncmp(name, "large_", 6) ? 20 : 100 * 1024), *q;
    announce(p);
    if (!strcmp(name, "double_free") || !strcmp(name, "large_double_free")) {
        gm_free(p);
        gm_free(p);
    } else if (!strcmp(name, "cross_thread_double_free")) {
        pthread_t t;
        pthread_create(&t, NULL, free_in_thread, p);
        pthread_join(t, NULL);
        gm_free(p);   /* now on the other thread's (parked) cache */
    } else if (!strcmp(name, "span_double_free")) {
        char *keep = gm_malloc(20);   /* keeps p's span alive */
        gm_free(p);
        gm_release();                 /* p is back in its span */
        ((uintptr_t *)p)[1] = 0;      /* a write after free erases its mark */
        gm_free(p);                   /* so the thread's cache takes it */
        gm_release();                 /* and gives it back to the span */
        gm_free(keep);
    } else if (!strcmp(name, "stale_marks")) {
        return stale_marks();
    } else if (!strcmp(name, "large_usable_freed")) {
        gm_free(p);
        printf("%zu\n", gm_usable_size(p));
    } else if (!strcmp(name, "large_flushed_double_free")) {
        gm_free(p);
        gm_release();   /* empties the thread's page cache into the heap */
        gm_free(p);
    } else if (!strcmp(name, "realloc_freed")) {
        gm_free(p);
        q = gm_realloc(p, 100);
        announce(q);
    } else if (!strcmp(name, "usable_freed")) {
        gm_free(p);
        printf("%zu\n", gm_usable_size(p));
    } else if (!strcmp(name, "corrupt_link")) {
        char *r = gm_malloc(20);   /* p's list neighbour */
        gm_free(r);
        gm_free(p);                /* p heads the list, linking to r */
        /* A use-after-free write over the link.  Flipping a low bit makes
         * it decode misaligned whatever the secret; an arbitrary value is
         * caught with probability 15/16 (as with glibc's safe-linking). */
        ((unsigned char *)p)[0] ^= 1;
        q = gm_malloc(20);         /* takes p, decodes the damaged link */
        announce(q);
    } else if (!strcmp(name, "overrun")) {
        p[20] = 1;
        gm_free(p);
    } else if (!strcmp(name, "write_after_free")) {
        char *keep = gm_malloc(20);   /* keeps the span alive */
        gm_free(p);
        p[30] = 7;
        q = gm_malloc(20);
        announce(q);
        gm_free(keep);
    } else if (!strcmp(name, "uninitialised")) {
        printf("%d\n", (unsigned char)p[5]);
    } else if (!strcmp(name, "debug_clean")) {
        for (int i = 0; i < 1000; i++) {
            char *b = gm_malloc((size_t)i * 7);
            memset(b, 1, (size_t)i * 7);
            b = gm_realloc(b, (size_t)i * 9 + 1);
            gm_free(b);
        }
        char *z = gm_calloc(10, 10);
        for (int i = 0; i < 100; i++)
            if (z[i])
                return 2;
        gm_free(z);
        gm_free(p);
    } else {
        return 1;   /* unknown scenario */
    }
    return 0;
}

/* ---- the parent ------------------------------------------------------------ */

struct outcome {
    int status;
    char out[256];
    char err[512];
};

static void drain(int fd, char *buf, size_t cap) {
    size_t n = 0;
    ssize_t got;
    while (n < cap - 1 && (got = read(fd, buf + n, cap - 1 - n)) > 0)
        n += (size_t)got;
    buf[n] = '\0';
}

static void run_child(const char *name, bool debug, struct outcome *o) {
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
        char *argv[] = {self, "--child", (char *)name, NULL};
        char *envp[] = {debug ? "GOMALLOC_DEBUG=1" : "GOMALLOC_DEBUG=0", NULL};
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

/* Runs NAME and asserts abort with "gomalloc: <call>: <what> <addr><tail>". */
static void expect_abort(const char *name, bool debug, const char *call, const char *what,
                         const char *tail) {
    struct outcome o;
    run_child(name, debug, &o);
    char addr[64], expected[512];
    assert_int_equal(sscanf(o.out, "%63s", addr), 1);
    snprintf(expected, sizeof expected, "gomalloc: %s: %s %s%s\n", call, what, addr, tail);
    assert_true(WIFSIGNALED(o.status));
    assert_int_equal(WTERMSIG(o.status), SIGABRT);
    assert_string_equal(o.err, expected);
}

static void test_detect_double_free(void **state) {
    (void)state;
    expect_abort("double_free", false, "free()", "double free of", " (size class 2, 32 bytes)");
}

/* Freed by one thread, then by another: the first free put it on the first
 * thread's list, where the second thread cannot look, but its mark is
 * there. */
static void test_detect_cross_thread_double_free(void **state) {
    (void)state;
    expect_abort("cross_thread_double_free", false, "free()", "double free of",
                 " (size class 2, 32 bytes)");
}

/* A double free whose mark a write after free erased in between: the span
 * that already holds the block back finds its bit set. */
static void test_detect_double_free_back_in_span(void **state) {
    (void)state;
    expect_abort("span_double_free", false, "free()", "double free of",
                 " (size class 2, 32 bytes)");
}

/* Stale marks copied by valid code are not a double free. */
static void test_detect_copied_marks_are_not_double_frees(void **state) {
    (void)state;
    struct outcome o;
    run_child("stale_marks", false, &o);
    assert_string_equal(o.err, "");
    assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
}

/* A freed large block waits in the thread's page cache: freeing it again
 * must be caught there, not hand the same pages out twice later.  100 KiB
 * is 13 pages of 8 KiB. */
static void test_detect_large_double_free(void **state) {
    (void)state;
    expect_abort("large_double_free", false, "free()", "double free of", " (106496 bytes)");
}

/* Out of the page cache, the block's first page remembers it. */
static void test_detect_large_double_free_after_flush(void **state) {
    (void)state;
    expect_abort("large_flushed_double_free", false, "free()", "double free of",
                 " (106496 bytes)");
}

/* Whatever happened to the pages in between, short of a block starting at
 * the same address. */
static void test_detect_large_double_free_after_pages_moved(void **state) {
    (void)state;
    expect_abort("large_moved_double_free", false, "free()", "double free of", " (409600 bytes)");
}

static void test_detect_usable_size_of_freed_large_block(void **state) {
    (void)state;
    expect_abort("large_usable_freed", false, "malloc_usable_size()", "freed block",
                 " (106496 bytes)");
}

static void test_detect_realloc_of_freed_block(void **state) {
    (void)state;
    expect_abort("realloc_freed", false, "realloc()", "double free of",
                 " (size class 2, 32 bytes)");
}

static void test_detect_usable_size_of_freed_block(void **state) {
    (void)state;
    expect_abort("usable_freed", false, "malloc_usable_size()", "freed block",
                 " (size class 2, 32 bytes)");
}

static void test_detect_corrupted_free_list_link(void **state) {
    (void)state;
    expect_abort("corrupt_link", false, "malloc()", "corrupted free list (write after free?) at",
                 "");
}

static void test_detect_debug_overrun(void **state) {
    (void)state;
    /* 20 bytes + 16 of trailer: class 3 (48 bytes). */
    expect_abort("overrun", true, "free()", "write past the end of",
                 " (size class 3, 48 bytes, 20 requested)");
}

static void test_detect_debug_write_after_free(void **state) {
    (void)state;
    expect_abort("write_after_free", true, "malloc()", "write after free of",
                 " (size class 3, 48 bytes)");
}

static void test_detect_debug_fills_new_blocks(void **state) {
    (void)state;
    struct outcome o;
    run_child("uninitialised", true, &o);
    assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    char *second = strchr(o.out, '\n');
    assert_non_null(second);
    assert_int_equal(atoi(second + 1), 0xaa);
}

static void test_detect_debug_clean_program_runs(void **state) {
    (void)state;
    struct outcome o;
    run_child("debug_clean", true, &o);
    assert_string_equal(o.err, "");
    assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
}

static void test_detect_overrun_unnoticed_without_debug(void **state) {
    (void)state;
    /* The default build promises only invalid and double frees. */
    struct outcome o;
    run_child("overrun", false, &o);
    assert_true(WIFEXITED(o.status) && WEXITSTATUS(o.status) == 0);
    assert_string_equal(o.err, "");
}

int main(int argc, char **argv) {
    if (argc > 2 && !strcmp(argv[1], "--child"))
        return child(argv[2]);
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return 1;
    self[n] = '\0';
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_detect_double_free),
        cmocka_unit_test(test_detect_cross_thread_double_free),
        cmocka_unit_test(test_detect_double_free_back_in_span),
        cmocka_unit_test(test_detect_copied_marks_are_not_double_frees),
        cmocka_unit_test(test_detect_large_double_free),
        cmocka_unit_test(test_detect_large_double_free_after_flush),
        cmocka_unit_test(test_detect_large_double_free_after_pages_moved),
        cmocka_unit_test(test_detect_usable_size_of_freed_large_block),
        cmocka_unit_test(test_detect_realloc_of_freed_block),
        cmocka_unit_test(test_detect_usable_size_of_freed_block),
        cmocka_unit_test(test_detect_corrupted_free_list_link),
        cmocka_unit_test(test_detect_debug_overrun),
        cmocka_unit_test(test_detect_debug_write_after_free),
        cmocka_unit_test(test_detect_debug_fills_new_blocks),
        cmocka_unit_test(test_detect_debug_clean_program_runs),
        cmocka_unit_test(test_detect_overrun_unnoticed_without_debug),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
