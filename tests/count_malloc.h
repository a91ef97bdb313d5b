/*
 * count_malloc.h — malloc, calloc, realloc and free defined by the test
 * program itself, passing through to glibc's and counting every call while
 * `counting` is set: the tests of code that runs inside the allocator (the
 * heap map writer, the profile writer, the stack walker) prove with it that
 * the code never calls them.  Include it in one file of a program only; a
 * program that includes it cannot be built with ASan (the Makefile leaves
 * those tests out of test-asan).
 */
#ifndef GM_COUNT_MALLOC_H
#define GM_COUNT_MALLOC_H

#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);

static volatile int counting;
static volatile long malloc_calls;

void *malloc(size_t n) {
    if (counting)
        malloc_calls++;
    return __libc_malloc(n);
}

void *calloc(size_t a, size_t b) {
    if (counting)
        malloc_calls++;
    return __libc_calloc(a, b);
}

void *realloc(void *p, size_t n) {
    if (counting)
        malloc_calls++;
    return __libc_realloc(p, n);
}

void free(void *p) {
    if (counting)
        malloc_calls++;
    __libc_free(p);
}

#endif /* GM_COUNT_MALLOC_H */
