/*
 * malloc_alignment.c — every block malloc returns is aligned for any object:
 * to alignof(max_align_t), 16 bytes on x86-64 (glibc's tst-mallocalign1,
 * which checks a few odd small sizes against MALLOC_ALIGNMENT).  The same
 * holds for calloc and realloc, and for every size class here, small and
 * large, not only the sizes glibc samples.
 */
#include "check.h"

#include <stdalign.h>
#include <stddef.h>

#define ALIGN alignof(max_align_t)

static void check_aligned(const void *p, const char *call, size_t size)
{
    gt_check(p != NULL, "%s(%zu) failed", call, size);
    gt_check((uintptr_t)p % ALIGN == 0, "%s(%zu) = %p is not %zu-byte aligned", call, size, p,
             (size_t)ALIGN);
}

static void sizes_from_glibc(void)
{
    static const size_t sizes[] = { 2, 8, 13, 16, 23, 43, 123 };
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        void *p = malloc(sizes[i]);
        check_aligned(p, "malloc", sizes[i]);
        free(p);
    }
}

/* Every size up to 4 KiB, then doubling steps with odd offsets up to 4 MiB.
 * Blocks are kept until the end so each lands somewhere new. */
static void every_class(void)
{
    enum { KEEP = 4096 + 64 };
    static void *kept[KEEP];
    size_t n = 0;
    for (size_t size = 0; size <= 4096; size++) {
        kept[n] = malloc(size);
        check_aligned(kept[n++], "malloc", size);
    }
    for (size_t size = 4096; size <= 4 << 20; size *= 2) {
        kept[n] = malloc(size + 7);
        check_aligned(kept[n++], "malloc", size + 7);
        kept[n] = calloc(1, size - 3);
        check_aligned(kept[n++], "calloc", size - 3);
    }
    for (size_t i = 0; i < n; i++)
        free(kept[i]);
}

static void realloc_keeps_alignment(void)
{
    void *p = NULL;
    for (size_t size = 1; size <= 1 << 20; size = size * 3 + 1) {
        p = realloc(p, size);
        check_aligned(p, "realloc", size);
    }
    free(p);
}

int main(void)
{
    sizes_from_glibc();
    every_class();
    realloc_keeps_alignment();
    return 0;
}
