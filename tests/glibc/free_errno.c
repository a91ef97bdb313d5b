/*
 * free_errno.c — free() never changes errno (glibc's tst-free-errno; POSIX
 * requires it since 2024): for NULL, for large blocks, and when a system call
 * inside free fails.
 *
 * The failing call is provoked as glibc's test does: the process is filled up
 * to the kernel's limit on memory mappings (vm.max_map_count) with one-page
 * file mappings, so that unmapping or re-protecting the middle of a mapping,
 * which splits it in two, is refused.  glibc gives a big block a mapping of
 * its own; to make its munmap split one, the test maps the page before and
 * the page after such a block, when they are free, so that the kernel merges
 * them into the block's mapping.  (glibc's test maps over the block itself,
 * neighbours included; that would overwrite other blocks of an allocator that
 * keeps big blocks inside a larger region, so this one only fills free
 * address space.)  Then blocks of every kind are freed: small, large, huge.
 */
#include "check.h"

#include <malloc.h>
#include <sys/mman.h>

enum { MAX_FILLERS = 70000, SMALL_COUNT = 4096 };
#define MARK 1789

static void *fillers[MAX_FILLERS];
static int filler_count;

/* errno must survive free(p). */
static void free_keeps_errno(void *p, const char *what)
{
    errno = MARK;
    free(p);
    int err = errno;
    gt_check(err == MARK, "free(%s) changed errno from %d to %d (%s)", what, MARK, err,
             strerrorname_np(err) ? strerrorname_np(err) : "?");
}

static void *must_malloc(size_t size)
{
    void *p = malloc(size);
    gt_check(p != NULL, "malloc(%zu) failed", size);
    memset(p, 0x3c, size);
    return p;
}

/* Maps the page at addr if nothing is there; the kernel merges it with an
 * adjacent anonymous mapping of the same kind. */
static void claim_page(void *addr, size_t page)
{
    void *got = mmap(addr, page, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
    if (got != MAP_FAILED && got != addr)
        munmap(got, page); /* an old kernel ignored the address hint */
}

/* Widens the mapping that holds p on both sides, where the space is free. */
static void widen_mapping(void *p)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    uintptr_t start = (uintptr_t)p & ~(page - 1);
    uintptr_t end = ((uintptr_t)p + malloc_usable_size(p) + page - 1) & ~(page - 1);
    claim_page((void *)(start - page), page);
    claim_page((void *)end, page);
}

/* One-page private mappings of a file until the kernel refuses more. */
static void exhaust_mappings(void)
{
    char name[] = "/tmp/gt-free-errno-XXXXXX";
    int fd = mkstemp(name);
    gt_check(fd >= 0, "mkstemp: %s", strerror(errno));
    unlink(name);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    gt_check(ftruncate(fd, (off_t)page) == 0, "ftruncate: %s", strerror(errno));
    while (filler_count < MAX_FILLERS) {
        void *m = mmap(NULL, page, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            break;
        fillers[filler_count++] = m;
    }
    close(fd);
}

static void release_mappings(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    while (filler_count > 0)
        munmap(fillers[--filler_count], page);
}

static void simple_cases(void)
{
    free_keeps_errno(NULL, "NULL");
    for (int i = 0; i < 2; i++)
        free_keeps_errno(must_malloc(5318153), "a 5 MB block");
}

/* Blocks of every kind, freed while no mapping can be split. */
static void at_mapping_limit(void)
{
    static void *small[SMALL_COUNT];
    void *big = must_malloc(0x1000000 - 0x100);
    void *huge = must_malloc(48 << 20);
    void *large = must_malloc(300 * 1024);
    void *medium = must_malloc(40 * 1024);
    for (int i = 0; i < SMALL_COUNT; i++)
        small[i] = must_malloc(16 + (size_t)(i % 64) * 16);
    widen_mapping(big);
    widen_mapping(huge);

    exhaust_mappings();
    free_keeps_errno(big, "a 16 MiB block at the mapping limit");
    free_keeps_errno(huge, "a 48 MiB block at the mapping limit");
    free_keeps_errno(large, "a 300 KiB block at the mapping limit");
    free_keeps_errno(medium, "a 40 KiB block at the mapping limit");
    for (int i = 0; i < SMALL_COUNT; i++)
        free_keeps_errno(small[i], "a small block at the mapping limit");
    release_mappings();
}

int main(void)
{
    simple_cases();
    at_mapping_limit();
    return 0;
}
