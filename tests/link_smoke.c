/*
 * link_smoke.c — a program linked with -lgomalloc (shared) or libgomalloc.a
 * (static) gets gomalloc behind the standard names: malloc's blocks are
 * gomalloc's (gm_usable_size knows them, sizes follow gomalloc's classes),
 * C library functions that allocate (strdup, fopen) hand out gomalloc
 * blocks that free accepts, and glibc's __libc_malloc is gomalloc's too.
 */
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gomalloc.h"

extern void *__libc_malloc(size_t);

static int check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    return ok ? 0 : 1;
}

int main(void) {
    int failed = 0;
    char *p = malloc(20);
    failed += check(p && gm_usable_size(p) == 32, "malloc(20) is a 32-byte gomalloc block");
    failed += check(malloc_usable_size(p) == 32, "malloc_usable_size agrees");
    free(p);
    char *s = strdup("gomalloc");
    failed += check(s && gm_usable_size(s) == 16, "strdup allocates through gomalloc");
    free(s);
    FILE *f = fopen("/proc/self/maps", "r");
    failed += check(f != NULL, "fopen works (its buffer comes from malloc)");
    if (f)
        fclose(f);
    void *q = __libc_malloc(100);
    failed += check(q && gm_usable_size(q) == 112, "__libc_malloc is gomalloc's");
    free(q);
    struct mallinfo2 mi = mallinfo2();
    failed += check(mi.arena > 0, "mallinfo2 reports gomalloc's heap");
    printf("%d passed, %d failed\n", 6 - failed, failed);
    return failed != 0;
}
