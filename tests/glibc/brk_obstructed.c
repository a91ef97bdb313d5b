/*
 * brk_obstructed.c — malloc keeps working when the program break cannot grow
 * (glibc's tst-malloc-alternate-path): a mapping is placed on the page right
 * after the current break, so brk/sbrk fail; then a page's worth of small
 * requests and a 10 MiB request must still succeed (glibc falls back to
 * mmap), and the break must not have moved.
 */
#include "check.h"

#include <stdalign.h>
#include <stddef.h>
#include <sys/mman.h>

static void obstruct_break(size_t page)
{
    uintptr_t brk_now = (uintptr_t)sbrk(0);
    void *next_page = (void *)((brk_now + page - 1) & ~(page - 1));
    void *got = mmap(next_page, page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE,
                     -1, 0);
    gt_check(got == next_page || (got == MAP_FAILED && errno == EEXIST),
             "could not map the page after the break at %p: %s", next_page, strerror(errno));
    gt_check(sbrk((intptr_t)page) == (void *)-1, "sbrk still grows the break past the obstruction");
}

int main(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *before = sbrk(0);
    obstruct_break(page);
    for (size_t i = 0; i < page / alignof(max_align_t); i++) {
        void *p = malloc(alignof(max_align_t));
        gt_check(p != NULL, "small malloc #%zu failed with the break obstructed", i);
        gt_escape(p);
    }
    void *big = malloc(10 << 20);
    gt_check(big != NULL, "malloc(10 MiB) failed with the break obstructed");
    memset(big, 0x44, 10 << 20);
    gt_check(sbrk(0) == before, "the break moved from %p to %p", before, sbrk(0));
    free(big);
    return 0;
}
