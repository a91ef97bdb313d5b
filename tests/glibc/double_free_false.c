/*
 * double_free_false.c — valid programs are never reported as double frees.
 *
 * An allocator that marks freed blocks with a key in their memory (glibc's
 * tcache does, gomalloc does) must not take a live block that merely contains
 * the key for a freed one.  Each scenario runs in a child, so one abort does
 * not hide the others; a scenario passes when its child exits 0.
 *
 *  copied-key    a live block and a large one receive a byte copy of a freed
 *                block (key included), then are freed (glibc's tst-tcfree3);
 *  shrink-large  freed small blocks leave their key in memory later reused by
 *                a 64 KiB block; realloc shrinks it to 16 bytes, which copies
 *                the stale bytes 8-15 into a new small block, then frees it;
 *  struct-copy   a 64 KiB array of { long; long double; } whose padding
 *                (bytes 8-15) holds such stale bytes; each element is copied
 *                by assignment into a fresh 32-byte block, which is freed.
 */
#include "check.h"

#include <malloc.h>

enum { SMALL_BLOCKS = 5000, SMALL_SIZE = 32, BIG = 64 * 1024, ROUNDS = 50 };

/* Leaves many freed 32-byte blocks (and their keys) behind in memory that
 * later requests reuse. */
static void churn_small_blocks(void)
{
    static void *blocks[SMALL_BLOCKS];
    for (int i = 0; i < SMALL_BLOCKS; i++) {
        blocks[i] = malloc(SMALL_SIZE);
        gt_check(blocks[i] != NULL, "malloc(%d) failed", SMALL_SIZE);
    }
    for (int i = 0; i < SMALL_BLOCKS; i++)
        free(blocks[i]);
}

static void copied_key(void *unused)
{
    (void)unused;
    void *volatile a = malloc(32);
    void *volatile b = malloc(32);
    size_t big = 127 * 1024;
    void *volatile c = malloc(big);
    gt_check(a && b && c, "malloc failed");
    /* 0xff everywhere: a stray "next" pointer read from c faults at once. */
    memset(c, 0xff, big);
    free(a);
    /* Reads the freed block on purpose: its bytes are what a careless program
     * (or a bitwise struct copy) would spread around. */
    memcpy(b, a, 32);
    memcpy(c, a, 32);
    free(b);
    free(c);
}

static void shrink_large(void *unused)
{
    (void)unused;
    churn_small_blocks();
    for (int i = 0; i < ROUNDS; i++) {
        char *p = malloc(BIG);
        gt_check(p != NULL, "malloc(%d) failed", BIG);
        memset(p, 'x', 8);
        char *q = realloc(p, 16);
        gt_check(q != NULL, "realloc(p, 16) failed");
        gt_check(memcmp(q, "xxxxxxxx", 8) == 0, "realloc lost the first 8 bytes");
        free(q);
    }
}

struct padded {
    long a;          /* bytes 0-7 */
    long double b;   /* 16-byte aligned: bytes 8-15 are padding */
};

static void struct_copy(void *unused)
{
    (void)unused;
    churn_small_blocks();
    size_t count = BIG / sizeof(struct padded);
    struct padded *arr = malloc(count * sizeof *arr);
    gt_check(arr != NULL, "malloc(%d) failed", BIG);
    /* Only the members are written: the padding keeps whatever was there. */
    for (size_t i = 0; i < count; i++) {
        arr[i].a = (long)i;
        arr[i].b = (long double)i;
    }
    for (size_t i = 0; i < count; i++) {
        struct padded *c = malloc(sizeof *c);
        gt_check(c != NULL, "malloc(%zu) failed", sizeof *c);
        *c = arr[i];
        free(c);
    }
    free(arr);
}

struct scenario {
    const char *name;
    void (*run)(void *);
};

/* Runs every scenario and fails with all the failures on one line. */
int main(void)
{
    static const struct scenario scenarios[] = {
        { "copied-key (tst-tcfree3)", copied_key },
        { "shrink-large (realloc of 64 KiB to 16, then free)", shrink_large },
        { "struct-copy (padded struct copied into a fresh block)", struct_copy },
    };
    char report[1024] = "";
    char why[400];
    for (size_t i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++) {
        struct gt_child c = gt_run_child(scenarios[i].run, NULL);
        if (gt_exited_0(&c))
            continue;
        size_t used = strlen(report);
        snprintf(report + used, sizeof report - used, "%s%s: %s", used ? "; " : "",
                 scenarios[i].name, gt_describe(&c, why, sizeof why));
    }
    gt_check(report[0] == '\0', "%s", report);
    return 0;
}
