/*
 * too_large.c — requests that no machine can satisfy fail cleanly, through
 * every entry point: NULL with errno ENOMEM (posix_memalign returns ENOMEM and
 * leaves its out-pointer alone), never a block, never another errno.
 *
 * Sizes: the 2^14 values from SIZE_MAX down, the 2^14 - 1 values just above
 * PTRDIFF_MAX, and multiples of 2^50 with their low 50 bits all clear and all
 * set (every one above PTRDIFF_MAX, a sample below: see prefix_sampled).  The
 * aligned entry points are tried with every power-of-two alignment.  A small
 * malloc/free precedes each request, so an allocator whose size arithmetic
 * wraps and hands back the block just freed is caught.  The address space is
 * capped at 2^50 bytes first so that no size at or above it can succeed
 * whatever the kernel allows.
 *
 * glibc 2.36 answers an alignment of 2^63 with ENOMEM (the size plus the
 * alignment cannot be represented), so memalign(2^63, 100) must too.
 */
#include "check.h"

#include <malloc.h>
#include <sys/resource.h>

#define LOW14 ((size_t)1 << 14)
#define BIT50 ((size_t)1 << 50)

/* A successful small allocation right before each failing one. */
static void prime(void)
{
    void *p = malloc(16);
    gt_check(p != NULL, "malloc(16) failed");
    gt_escape(p);
    free(p);
    errno = 0;
}

static GT_NORETURN void report(const void *got, int err, const char *call)
{
    if (got != NULL)
        gt_fail("%s returned a block, expected NULL with ENOMEM", call);
    gt_fail("%s: errno %s, expected ENOMEM", call,
            err ? strerrorname_np(err) : "unchanged (0)");
}

/* EXPECT_ENOMEM(call, "format of the call", args...): the call must return
 * NULL and set errno to ENOMEM. */
#define EXPECT_ENOMEM(expr, ...)                             \
    do {                                                     \
        void *got_ = (expr);                                 \
        int err_ = errno;                                    \
        if (got_ != NULL || err_ != ENOMEM) {                \
            char call_[160];                                 \
            snprintf(call_, sizeof call_, __VA_ARGS__);      \
            report(got_, err_, call_);                       \
        }                                                    \
    } while (0)

/* A 16-byte block with known contents, for realloc and reallocarray. */
static unsigned char *victim(void)
{
    unsigned char *p = malloc(16);
    gt_check(p != NULL, "malloc(16) failed");
    memset(p, 0x5a, 16);
    return p;
}

/* A failed resize must leave the block allocated and unchanged. */
static void release_victim(unsigned char *p, const char *call, size_t size)
{
    for (int i = 0; i < 16; i++)
        gt_check(p[i] == 0x5a, "%s to %#zx changed the original block", call, size);
    free(p);
}

static void try_realloc(size_t size)
{
    unsigned char *p = victim();
    prime();
    EXPECT_ENOMEM(realloc(p, size), "realloc(p, %#zx)", size);
    release_victim(p, "realloc", size);
}

static void try_reallocarray(size_t n, size_t each)
{
    unsigned char *p = victim();
    prime();
    EXPECT_ENOMEM(reallocarray(p, n, each), "reallocarray(p, %#zx, %#zx)", n, each);
    release_victim(p, "reallocarray", n * each);
}

static void try_counted(size_t size)
{
    for (size_t n = 1; n <= 8 && size % n == 0; n *= 2) {
        prime();
        EXPECT_ENOMEM(calloc(n, size / n), "calloc(%#zx, %#zx)", n, size / n);
        prime();
        EXPECT_ENOMEM(calloc(size / n, n), "calloc(%#zx, %#zx)", size / n, n);
        try_reallocarray(n, size / n);
        try_reallocarray(size / n, n);
    }
}

static void try_unaligned(size_t size)
{
    prime();
    EXPECT_ENOMEM(malloc(size), "malloc(%#zx)", size);
    try_realloc(size);
    try_counted(size);
}

static void try_posix_memalign(size_t align, size_t size)
{
    void *out = NULL;
    prime();
    int rc = posix_memalign(&out, align, size);
    gt_check(rc == ENOMEM, "posix_memalign(&p, %#zx, %#zx) returned %d, expected ENOMEM", align,
             size, rc);
    gt_check(out == NULL, "posix_memalign(&p, %#zx, %#zx) failed but wrote p", align, size);
}

static void try_aligned(size_t size)
{
    for (size_t align = 1; align != 0; align <<= 1) {
        prime();
        EXPECT_ENOMEM(memalign(align, size), "memalign(%#zx, %#zx)", align, size);
        if (align % sizeof(void *) == 0)
            try_posix_memalign(align, size);
        if (size % align == 0) {
            prime();
            EXPECT_ENOMEM(aligned_alloc(align, size), "aligned_alloc(%#zx, %#zx)", align, size);
        }
    }
    prime();
    EXPECT_ENOMEM(valloc(size), "valloc(%#zx)", size);
    prime();
    EXPECT_ENOMEM(pvalloc(size), "pvalloc(%#zx)", size);
}

static void try_size(size_t size)
{
    try_unaligned(size);
    try_aligned(size);
}

/* The largest power-of-two alignment with a small size: glibc 2.36 calls it
 * "out of memory", not "invalid" (the alignment is a valid power of two). */
static void try_top_alignment(void)
{
    size_t top = (size_t)1 << 63;
    prime();
    EXPECT_ENOMEM(memalign(top, 100), "memalign(%#zx, 100)", top);
    prime();
    EXPECT_ENOMEM(aligned_alloc(top, 128), "aligned_alloc(%#zx, 128)", top);
    try_posix_memalign(top, 100);
}

/* Which 14-bit prefixes of a multiple of 2^50 to try.  Above 2^63 a request
 * is refused before any system call, so every prefix is cheap and tried.
 * Below, each refusal costs a failed mmap (about 4 microseconds with glibc,
 * 150 calls a size), so the walk takes every 64th prefix plus each power of
 * two and its neighbours instead of all 8191: an overflow in an allocator's
 * size arithmetic shows at such boundaries. */
static int prefix_sampled(size_t top)
{
    if (top >= LOW14 / 2 || top % 64 == 0)
        return 1;
    for (size_t pow = 1; pow < LOW14; pow <<= 1)
        if (top + 1 >= pow && top <= pow + 1)
            return 1;
    return 0;
}

int main(void)
{
    struct rlimit cap = { .rlim_cur = BIT50 - 1, .rlim_max = BIT50 - 1 };
    gt_check(setrlimit(RLIMIT_AS, &cap) == 0, "setrlimit(RLIMIT_AS): %s", strerror(errno));

    try_top_alignment();
    for (size_t i = 0; i < LOW14; i++)
        try_size(SIZE_MAX - i);
    for (size_t i = 1; i < LOW14; i++)
        try_size((size_t)PTRDIFF_MAX + i);
    for (size_t top = LOW14 - 1; top >= 1; top--) {
        if (!prefix_sampled(top))
            continue;
        try_size((top << 50) | (BIT50 - 1));
        try_size(top << 50);
    }
    return 0;
}
