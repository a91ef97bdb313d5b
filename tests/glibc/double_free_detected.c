/*
 * double_free_detected.c — freeing a small block twice stops the program with
 * SIGABRT (glibc's tst-tcfree1 and tst-tcfree2), both when the block is the
 * most recently freed one and when nineteen other blocks of its size were
 * freed after it (so it sits deep in a free list, or past any cache's limit).
 * Each misuse runs in a child; the parent wants SIGABRT, not a crash, a hang
 * or a clean exit.
 */
#include "check.h"

#include <malloc.h>

static void free_twice_at_once(void *unused)
{
    (void)unused;
    char *volatile x = malloc(32);
    free(x);
    free(x);
}

enum { MANY = 20 };

static void free_twice_after_others(void *unused)
{
    (void)unused;
    char *volatile blocks[MANY];
    for (int i = 0; i < MANY; i++)
        blocks[i] = malloc(20);
    for (int i = 0; i < MANY; i++)
        free(blocks[i]);
    free(blocks[0]);
}

static void expect_abort(void (*misuse)(void *), const char *what)
{
    char why[400];
    struct gt_child c = gt_run_child(misuse, NULL);
    gt_check(gt_aborted(&c), "%s was not stopped with SIGABRT: %s", what,
             gt_describe(&c, why, sizeof why));
}

int main(void)
{
    expect_abort(free_twice_at_once, "free(x); free(x) of a 32-byte block");
    expect_abort(free_twice_after_others,
                 "a 20-byte block freed again after 19 more of its size were freed");
    return 0;
}
