/*
 * mallinfo2.c — mallinfo2() is there and counts what the program allocates
 * (glibc's tst-mallinfo2): its fields are size_t wide (the point of mallinfo2
 * over mallinfo), and after allocating 160 * i bytes for i = 1..19 (28,800
 * bytes, none big enough for glibc to mmap) uordblks has grown by at least
 * that much.  The old mallinfo() must agree in the same way while the heap is
 * small enough for its int fields.
 */
#include "check.h"

#include <malloc.h>

enum { ROUNDS = 20, STEP = 160 };

static void *kept[2][ROUNDS];

static size_t allocate_steps(void **slots)
{
    size_t total = 0;
    for (int i = 1; i < ROUNDS; i++) {
        slots[i] = malloc(STEP * (size_t)i);
        gt_check(slots[i] != NULL, "malloc(%d) failed", STEP * i);
        gt_escape(slots[i]);
        total += STEP * (size_t)i;
    }
    return total;
}

static void check_mallinfo2(void)
{
    struct mallinfo2 before = mallinfo2();
    gt_check(sizeof before.arena == sizeof(size_t), "mallinfo2's fields are not size_t wide");
    size_t total = allocate_steps(kept[0]);
    struct mallinfo2 after = mallinfo2();
    gt_check(after.uordblks >= before.uordblks + total,
             "mallinfo2: uordblks went from %zu to %zu after allocating %zu bytes", before.uordblks,
             after.uordblks, total);
}

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations"
static void check_mallinfo(void)
{
    struct mallinfo before = mallinfo();
    size_t total = allocate_steps(kept[1]);
    struct mallinfo after = mallinfo();
    gt_check((size_t)after.uordblks >= (size_t)before.uordblks + total,
             "mallinfo: uordblks went from %d to %d after allocating %zu bytes", before.uordblks,
             after.uordblks, total);
}
#pragma GCC diagnostic pop

int main(void)
{
    check_mallinfo2();
    check_mallinfo();
    for (int k = 0; k < 2; k++)
        for (int i = 1; i < ROUNDS; i++)
            free(kept[k][i]);
    return 0;
}
