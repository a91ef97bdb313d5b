/*
 * heap_corruption_abort.c — a corrupted free list stops the program with
 * SIGABRT, promptly, rather than handing out a bad pointer, crashing on it
 * or hanging (glibc's tst-malloc-backtrace, which corrupts a freed chunk and
 * expects SIGABRT without a deadlock, and tst-safe-linking, which corrupts a
 * freed block's list link and expects the "unaligned chunk" check to fire).
 *
 * Three 32-byte blocks are freed; then the lowest bit of the first word of
 * the last one freed (where glibc's tcache and gomalloc keep the encoded
 * link to the next free block) is flipped, a use-after-free write.  Decoded,
 * that link now points one byte past a block: misaligned.  The next two
 * mallocs of that size must not both succeed: the allocator must abort.
 *
 * glibc's own tests write the size field in front of the block and use
 * glibc's messages; both are glibc's layout, not a rule for an allocator.
 */
#include "check.h"

static void corrupt_then_allocate(void *unused)
{
    (void)unused;
    alarm(GT_STALL_SECONDS); /* a hang ends as SIGALRM, not as a stuck test */
    unsigned char *volatile a = malloc(32);
    unsigned char *volatile b = malloc(32);
    unsigned char *volatile c = malloc(32);
    free(a);
    free(b);
    free(c);
    unsigned char *volatile stale = c;
    stale[0] ^= 1;
    void *volatile first = malloc(32);
    void *volatile second = malloc(32);
    gt_escape(first);
    gt_escape(second);
    _exit(3); /* not reached when the allocator notices */
}

int main(void)
{
    char why[400];
    struct gt_child c = gt_run_child(corrupt_then_allocate, NULL);
    gt_check(gt_aborted(&c), "a misaligned free-list link was not stopped with SIGABRT: %s",
             gt_describe(&c, why, sizeof why));
    return 0;
}
