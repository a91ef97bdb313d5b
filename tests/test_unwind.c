/*
 * test_unwind.c — the heap profile's stack walk (alloc/unwind.c) against
 * glibc's backtrace(3), libgcc's DWARF unwinder, taken at the same point.
 *
 * This file is built like the other unit tests, -O1, so its functions keep
 * no frame pointer; a walk also passes through glibc's own qsort and
 * pthread start frames, built the same way.  Below the probe's own frame
 * both walks must give the same return addresses, to the end of the stack,
 * and the walk must not call malloc (counted by the wrappers below).
 */
#define _GNU_SOURCE
#include <execinfo.h>
#include <pthread.h>
#include <stdio.h>

#include "internal.h"
#include "count_malloc.h"   /* the walk must not call them */
#include "testutil.h"

#define MAX 64
struct walks {
    void *bt[MAX];
    uintptr_t gm[MAX];
    int nbt;
    uint32_t ngm;
};

/* Both walks from one frame: their first entries are this function's two
 * call sites, the rest the same callers. */
static __attribute__((noinline)) void probe(struct walks *w) {
    w->nbt = backtrace(w->bt, MAX);
    counting = 1;
    w->ngm = gm_unwind(w->gm, MAX);
    counting = 0;
    __asm__ volatile("" ::: "memory");   /* no tail call: this frame stays */
}

static void check_same(const struct walks *w) {
    assert_int_equal(malloc_calls, 0);
    assert_true(w->nbt > 3);
    assert_int_equal((int)w->ngm, w->nbt);
    for (int i = 1; i < w->nbt; i++)
        assert_int_equal(w->gm[i], (uintptr_t)w->bt[i]);
}

/* A few frames of different sizes, one of them with a variable-length
 * array (its CFA follows rbp, not rsp). */
static __attribute__((noinline)) int level(struct walks *w, int depth) {
    volatile char pad[16 + 48 * (depth & 1)];
    pad[0] = (char)depth;
    if (depth == 0) {
        probe(w);
        return pad[0];
    }
    if (depth == 2) {
        char vla[depth * 100 + (int)pad[0]];
        vla[0] = 1;
        __asm__ volatile("" ::"r"(vla) : "memory");
        return level(w, depth - 1) + vla[0];
    }
    return level(w, depth - 1) + pad[0];
}

static void test_nested_frames(void **state) {
    (void)state;
    struct walks w;
    level(&w, 5);
    check_same(&w);
}

/* Through qsort, a libc frame without a frame pointer, into a comparator. */
static struct walks *qsort_walks;
static int compare(const void *a, const void *b) {
    if (qsort_walks) {
        probe(qsort_walks);
        qsort_walks = NULL;
    }
    return *(const int *)a - *(const int *)b;
}

static void test_through_libc(void **state) {
    (void)state;
    struct walks w;
    int v[8] = {5, 3, 7, 1, 8, 2, 6, 4};
    qsort_walks = &w;
    qsort(v, 8, sizeof v[0], compare);
    check_same(&w);
}

/* In a thread the stack ends in clone's frame, not _start's. */
static void *thread_main(void *arg) {
    level(arg, 3);
    return NULL;
}

static void test_in_a_thread(void **state) {
    (void)state;
    struct walks w;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, thread_main, &w), 0);
    pthread_join(t, NULL);
    check_same(&w);
}

/* A short buffer: the innermost frames, as many as fit. */
static void test_max_frames(void **state) {
    (void)state;
    struct walks w;
    level(&w, 4);
    uintptr_t few[3];
    assert_int_equal(gm_unwind(few, 3), 3);
    assert_int_equal(gm_unwind(few, 0), 0);
    check_same(&w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_nested_frames),
        cmocka_unit_test(test_through_libc),
        cmocka_unit_test(test_in_a_thread),
        cmocka_unit_test(test_max_frames),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
