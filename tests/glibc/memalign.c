/*
 * memalign.c — memalign (glibc's tst-memalign, and the alignment checks of
 * tst-memalign-2 and tst-memalign-3):
 *  - a size near SIZE_MAX, and -pagesize with page alignment (whose padding
 *    overflows), fail with ENOMEM;
 *  - an alignment that is no power of two and above SIZE_MAX/2 + 1 (here
 *    SIZE_MAX) fails with EINVAL;
 *  - size 0 returns a block;
 *  - blocks are aligned as asked: 0x100 for 10 bytes, and glibc's tcache- and
 *    large-bin-sized cases (24 bytes at 32 and 64, 128 and 500 at 128, 23450
 *    to 33650 bytes at 64), mixed with plain mallocs, in the main thread and
 *    again in a second thread.
 * tst-memalign-2/3 also expect a freed aligned block to be handed out again
 * by the next memalign of its size; glibc 2.36 does not do that (later
 * versions do), so here the requirement is only that memalign/free cycles do
 * not leak: 10,000 rounds of the large cases (about 260 MB in all) keep the
 * resident set within 32 MiB.
 */
#include "check.h"

#include <malloc.h>

static volatile size_t minus_one = (size_t)-1;

static void expect_failure(size_t align, size_t size, int expected, const char *name)
{
    errno = 0;
    void *p = memalign(align, size);
    int err = errno;
    gt_check(p == NULL, "memalign(%#zx, %#zx) returned a block", align, size);
    gt_check(err == expected, "memalign(%#zx, %#zx): errno %d, expected %s", align, size, err,
             name);
}

static void *aligned_block(size_t align, size_t size)
{
    void *p = memalign(align, size);
    gt_check(p != NULL, "memalign(%zu, %zu) failed", align, size);
    gt_check((uintptr_t)p % align == 0, "memalign(%zu, %zu) = %p is misaligned", align, size, p);
    memset(p, 0x11, size);
    return p;
}

static void edge_cases(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    expect_failure(sizeof(void *), minus_one, ENOMEM, "ENOMEM");
    expect_failure(page, -page, ENOMEM, "ENOMEM");
    expect_failure(minus_one, page, EINVAL, "EINVAL");
    void *p = memalign(sizeof(void *), 0);
    gt_check(p != NULL, "memalign(%zu, 0) returned NULL, expected a block", sizeof(void *));
    free(p);
    free(aligned_block(0x100, 10));
}

struct aligned_case {
    size_t size, align;
};

static const struct aligned_case small_cases[] = {
    { 24, 32 }, { 24, 64 }, { 128, 128 }, { 500, 128 },
};
static const struct aligned_case large_cases[] = {
    { 23450, 64 }, { 23450, 64 }, { 23550, 64 }, { 23550, 64 },
    { 23650, 64 }, { 23650, 64 }, { 33650, 64 }, { 33650, 64 },
};
#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* The block glibc's test frees and asks for again, at its usable size. */
static void small_cycle(void)
{
    for (size_t i = 0; i < COUNT(small_cases); i++) {
        void *p = aligned_block(small_cases[i].align, small_cases[i].size);
        size_t usable = malloc_usable_size(p);
        free(p);
        free(aligned_block(small_cases[i].align, usable));
    }
}

/* An aligned block among plain ones, then large aligned blocks kept apart by
 * 512-byte ones. */
static void mixed(void)
{
    void *plain[10];
    for (int i = 0; i < 10; i++)
        plain[i] = i == 4 ? aligned_block(64, 256) : malloc(256);
    for (int i = 0; i < 10; i++)
        free(plain[i]);
    free(aligned_block(64, 256));

    void *large[COUNT(large_cases)], *spacers[COUNT(large_cases)];
    for (size_t i = 0; i < COUNT(large_cases); i++) {
        large[i] = aligned_block(large_cases[i].align, large_cases[i].size);
        spacers[i] = malloc(512);
    }
    for (size_t i = 0; i < COUNT(large_cases); i++)
        free(large[i]);
    void *between = malloc(60000);
    for (size_t i = 0; i < COUNT(large_cases); i++)
        large[i] = aligned_block(large_cases[i].align, large_cases[i].size);
    for (size_t i = 0; i < COUNT(large_cases); i++) {
        free(large[i]);
        free(spacers[i]);
    }
    free(between);
}

static void *all_alignment_checks(void *unused)
{
    (void)unused;
    small_cycle();
    mixed();
    return NULL;
}

static long resident_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    gt_check(f != NULL, "fopen(/proc/self/statm): %s", strerror(errno));
    gt_check(fscanf(f, "%ld %ld", &pages, &resident) == 2, "reading /proc/self/statm");
    fclose(f);
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static void no_leak(void)
{
    long before = resident_kib();
    for (int round = 0; round < 10000; round++) {
        const struct aligned_case *c = &large_cases[round % COUNT(large_cases)];
        void *p = memalign(c->align, c->size);
        gt_check(p != NULL, "memalign(%zu, %zu) failed in round %d", c->align, c->size, round);
        memset(p, 1, c->size);
        free(p);
    }
    long grown = resident_kib() - before;
    gt_check(grown < 32 * 1024, "10,000 memalign/free rounds grew the resident set by %ld KiB",
             grown);
}

int main(void)
{
    edge_cases();
    all_alignment_checks(NULL);
    pthread_t t;
    gt_check(pthread_create(&t, NULL, all_alignment_checks, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    no_leak();
    return 0;
}
