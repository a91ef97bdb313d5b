/*
 * sized_free.c — C23's free_sized and free_aligned_sized, gm_free_sized,
 * gm_good_size and gm_version, against an installed gomalloc.
 *
 * Built by tests/install.sh with pkg-config (shared and static); the
 * program calls the standard names, so it checks the library's exports.
 *
 *   sized_free               the checks below; "N passed, M failed"
 *   sized_free wrong-size    free_sized with a size that is not the block's
 *   sized_free wrong-align   free_aligned_sized with the wrong alignment
 *   sized_free version       prints gm_version() and GOMALLOC_VERSION_STRING
 *
 * The wrong-* modes must abort with a report under GOMALLOC_DEBUG=1 (the
 * script checks the message); without it they free like free.  The checks
 * pass in both modes: in debug mode every size given here is the block's.
 */
#define _GNU_SOURCE
#include <malloc.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gomalloc.h>

/* glibc 2.36 declares neither. */
void free_sized(void *ptr, size_t size);
void free_aligned_sized(void *ptr, size_t alignment, size_t size);

static int passed, failed;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (ok)
        passed++;
    else
        failed++;
}

static const size_t sizes[] = {0,     1,     15,    16,     17,     100,    1000,    4000,
                               8192,  20000, 32768, 32769,  40000,  100000, 262144,  1000000,
                               4 << 20, (16 << 20) - 1, 16 << 20, (20 << 20) + 3};
#define NSIZES (sizeof sizes / sizeof sizes[0])

int main(int argc, char **argv) {
    if (argc > 1 && strcmp(argv[1], "wrong-size") == 0) {
        char *p = malloc(20);
        free_sized(p, 24);
        puts("freed");
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "wrong-align") == 0) {
        char *p = aligned_alloc(64, 128);
        uintptr_t lowest = (uintptr_t)p & -(uintptr_t)p;   /* p's own alignment */
        free_aligned_sized(p, 2 * lowest, 128);            /* one it does not have */
        puts("freed");
        return 0;
    }
    if (argc > 1 && strcmp(argv[1], "version") == 0) {
        printf("%s %s %d.%d.%d\n", gm_version(), GOMALLOC_VERSION_STRING, GOMALLOC_VERSION_MAJOR,
               GOMALLOC_VERSION_MINOR, GOMALLOC_VERSION_PATCH);
        return strcmp(gm_version(), GOMALLOC_VERSION_STRING) != 0;
    }

    check(strcmp(gm_version(), GOMALLOC_VERSION_STRING) == 0, "gm_version() is the header's version");

    int ok = 1;
    for (size_t i = 0; i < NSIZES; i++) {
        char *p = malloc(sizes[i]);
        ok &= p && gm_good_size(sizes[i]) == malloc_usable_size(p);
        free_sized(p, sizes[i]);
    }
    check(ok, "gm_good_size(n) is malloc(n)'s usable size, and free_sized frees it");
    check(gm_good_size((size_t)PTRDIFF_MAX + 1) == 0, "gm_good_size of an impossible size is 0");
    size_t g = gm_good_size(100);
    check(gm_good_size(g) == g && g >= 100, "gm_good_size is stable: a good size is its own");

    ok = 1;
    for (size_t i = 0; i < NSIZES; i++) {
        char *p = gm_calloc(1, sizes[i]);
        ok &= p != NULL;
        gm_free_sized(p, sizes[i]);
        p = calloc(sizes[i] ? sizes[i] : 1, 1);
        ok &= p != NULL;
        free_sized(p, sizes[i] ? sizes[i] : 1);
    }
    check(ok, "gm_free_sized and free_sized take calloc's blocks");

    ok = 1;
    for (size_t align = 1; align <= (1u << 22); align <<= 3) {
        for (size_t i = 0; i < NSIZES; i += 3) {
            size_t n = (sizes[i] + align - 1) / align * align;
            char *p = aligned_alloc(align, n);
            ok &= p && ((uintptr_t)p & (align - 1)) == 0;
            free_aligned_sized(p, align, n);
            p = gm_aligned_alloc(align, n);
            ok &= p != NULL;
            gm_free_aligned_sized(p, align, n);
        }
    }
    check(ok, "free_aligned_sized and gm_free_aligned_sized take aligned_alloc's blocks");

    char *p = malloc(100);
    p = realloc(p, 3000);
    free_sized(p, 3000);
    p = malloc(3000);
    p = realloc(p, 1600);
    free_sized(p, 1600);
    check(1, "free_sized with the size of the last realloc");

    free_sized(NULL, 10);
    free_aligned_sized(NULL, 64, 10);
    check(1, "free_sized(NULL, n) and free_aligned_sized(NULL, a, n) do nothing");

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
