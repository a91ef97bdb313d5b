/*
 * usable_size.c — malloc_usable_size() (glibc's tst-malloc-usable): at least
 * the size requested, all of it writable, and 0 for NULL.
 *
 * glibc's test runs with MALLOC_CHECK_=3, where glibc reports exactly the
 * request (7 for malloc(7)); that is a debugging mode of glibc's, so here the
 * rule is the general one: no less than the request.  The report must also
 * not change while the block lives (glibc's and gomalloc's both promise it).
 */
#include "check.h"

#include <malloc.h>

static void check_block(size_t size)
{
    unsigned char *p = malloc(size);
    gt_check(p != NULL, "malloc(%zu) failed", size);
    size_t usable = malloc_usable_size(p);
    gt_check(usable >= size, "malloc_usable_size(malloc(%zu)) = %zu, less than requested", size,
             usable);
    memset(p, 0xa7, usable);
    gt_check(malloc_usable_size(p) == usable,
             "malloc_usable_size changed from %zu after writing the block (size %zu)", usable,
             size);
    free(p);
}

int main(void)
{
    check_block(7);
    for (size_t size = 0; size <= 1 << 22; size = size < 64 ? size + 1 : size * 2 - 3)
        check_block(size);
    gt_check(malloc_usable_size(NULL) == 0, "malloc_usable_size(NULL) = %zu, expected 0",
             malloc_usable_size(NULL));
    return 0;
}
