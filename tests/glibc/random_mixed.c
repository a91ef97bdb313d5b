/*
 * random_mixed.c — blocks from every allocation function are interchangeable
 * (glibc's tst-malloc-random and tst-aligned-alloc-random, which swap malloc
 * for a random choice of aligned_alloc, __libc_malloc and __libc_calloc and
 * rerun the malloc tests).
 *
 * A table of SLOTS blocks goes through OPERATIONS random steps.  An empty
 * slot gets a block of a random size below 64 KiB (now and then up to 1 MiB)
 * from a random function: malloc, calloc, aligned_alloc, memalign and
 * posix_memalign with a random power-of-two alignment up to 16 KiB, valloc,
 * or glibc's __libc_malloc, __libc_calloc and __libc_memalign names.  A full
 * slot is checked (its marked bytes, see next_marked, still carry the slot's
 * pattern), then freed or resized with realloc (the common prefix must
 * survive).  Alignment, zeroing
 * and malloc_usable_size are checked for every new block.  The random
 * sequence is fixed.
 */
#include "check.h"

#include <malloc.h>
#include <stdalign.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_memalign(size_t, size_t);

enum { SLOTS = 2048, OPERATIONS = 20000 };

struct slot {
    unsigned char *p;
    size_t size;
};

static struct slot slots[SLOTS];
static unsigned seed = 2024;

static unsigned char pattern(size_t slot, size_t i)
{
    return (unsigned char)(slot * 31 + i * 7 + 1);
}

static size_t random_size(void)
{
    if (rand_r(&seed) % 64 == 0)
        return (size_t)rand_r(&seed) % (1 << 20);
    return (size_t)rand_r(&seed) & 0xffff;
}

static void *aligned_by_posix(size_t align, size_t size)
{
    void *p = NULL;
    int rc = posix_memalign(&p, align < sizeof(void *) ? sizeof(void *) : align, size);
    return rc == 0 ? p : NULL;
}

/* A block from a randomly chosen function; *align is what it must honour. */
static unsigned char *allocate(size_t size, size_t *align, int *zeroed, const char **how)
{
    size_t random_align = (size_t)1 << (rand_r(&seed) % 15);
    *align = alignof(max_align_t);
    *zeroed = 0;
    switch (rand_r(&seed) % 9) {
    case 0: *how = "malloc"; return malloc(size);
    case 1: *how = "calloc"; *zeroed = 1; return calloc(1, size);
    case 2: *how = "__libc_malloc"; return __libc_malloc(size);
    case 3: *how = "__libc_calloc"; *zeroed = 1; return __libc_calloc(size, 1);
    case 4: *how = "valloc"; *align = (size_t)sysconf(_SC_PAGESIZE); return valloc(size);
    case 5: *how = "memalign"; *align = random_align; return memalign(random_align, size);
    case 6: *how = "__libc_memalign"; *align = random_align;
        return __libc_memalign(random_align, size);
    case 7: *how = "posix_memalign"; *align = random_align;
        return aligned_by_posix(random_align, size);
    default: {
        /* aligned_alloc wants a size that is a multiple of the alignment. */
        size_t rounded = (size + random_align - 1) & ~(random_align - 1);
        *how = "aligned_alloc";
        *align = random_align;
        return aligned_alloc(random_align, rounded);
    }
    }
}

/* The bytes that carry the pattern: both ends of the block and every 512th
 * byte between, so big blocks cost little and overlaps still show. */
static size_t next_marked(size_t i, size_t size)
{
    if (i + 1 < 256 || i + 1 + 256 >= size)
        return i + 1;
    size_t next = (i + 512) & ~(size_t)511;
    return next + 256 < size ? next : size - 256;
}

static void fill(size_t index)
{
    struct slot *s = &slots[index];
    for (size_t i = 0; i < s->size; i = next_marked(i, s->size))
        s->p[i] = pattern(index, i);
}

/* Checks the marked bytes below upto (marks placed for the block's size). */
static void verify(size_t index, size_t upto, const char *when)
{
    struct slot *s = &slots[index];
    for (size_t i = 0; i < upto; i = next_marked(i, s->size))
        gt_check(s->p[i] == pattern(index, i), "slot %zu (%zu bytes): byte %zu changed %s", index,
                 s->size, i, when);
}

static void fresh_block(size_t index)
{
    size_t size = random_size(), align;
    int zeroed;
    const char *how;
    unsigned char *p = allocate(size, &align, &zeroed, &how);
    gt_check(p != NULL, "%s of %zu bytes failed", how, size);
    gt_check((uintptr_t)p % align == 0, "%s(%zu) = %p is not %zu-byte aligned", how, size,
             (void *)p, align);
    gt_check(malloc_usable_size(p) >= size, "%s(%zu): usable size %zu", how, size,
             malloc_usable_size(p));
    for (size_t i = 0; zeroed && i < size; i++)
        gt_check(p[i] == 0, "%s(%zu): byte %zu is not zero", how, size, i);
    slots[index] = (struct slot){ p, size };
    fill(index);
}

static void resize(size_t index)
{
    struct slot *s = &slots[index];
    size_t size = random_size();
    unsigned char *q = realloc(s->p, size);
    gt_check(q != NULL || size == 0, "realloc to %zu bytes failed", size);
    size_t kept = size < s->size ? size : s->size;
    s->p = q;
    verify(index, kept, "by realloc");
    s->size = size;
    if (q == NULL)
        return; /* realloc(p, 0) freed it */
    fill(index);
}

static void step(void)
{
    size_t index = (size_t)rand_r(&seed) % SLOTS;
    struct slot *s = &slots[index];
    if (s->p == NULL) {
        fresh_block(index);
        return;
    }
    verify(index, s->size, "while allocated");
    if (rand_r(&seed) % 2) {
        free(s->p);
        s->p = NULL;
    } else {
        resize(index);
    }
}

int main(void)
{
    for (int i = 0; i < OPERATIONS; i++)
        step();
    for (size_t i = 0; i < SLOTS; i++) {
        if (slots[i].p)
            verify(i, slots[i].size, "at the end");
        free(slots[i].p);
    }
    return 0;
}
