/*
 * test_oom.c — out-of-memory behaviour of every gm_ entry point.
 *
 * Fault injection: gm_os_fail_after(n) makes the nth OS mapping call from now
 * (reserve, map, commit) fail.  For n = 1..20 each case first makes sure the
 * operation must reach the OS: the thread cache and the central lists are
 * flushed (gm_release) and every committed free page of the heap is taken by
 * one-page filler spans, so the next span or large block needs a commit step,
 * a new arena or (huge blocks) a mapping of its own.  Then:
 *   - the call returns NULL with errno ENOMEM (gm_posix_memalign: returns
 *     ENOMEM and leaves errno alone), or a valid block if the refused call was
 *     one it could do without or came after it finished;
 *   - n = 1 always fails: the first call the operation makes is refused;
 *   - a failed realloc leaves the old block intact, readable, same usable size;
 *   - no lock is left held: the next allocation (fault injection off) works,
 *     and a SIGALRM watchdog turns a deadlock into a failed test;
 *   - after gm_os_fail_after(0) the same operation succeeds (recovery).
 *
 * RLIMIT_AS: in a forked child the address-space limit is lowered to current
 * use + 64 MiB; allocation until NULL must end with ENOMEM (no crash), and
 * after freeing everything the same allocations succeed again.  Skipped under
 * valgrind (it manages the address space itself) and ASan (its shadow memory
 * dwarfs any limit).
 *
 * The background scavenger is switched off (GOMALLOC_SCAVENGE=0, set before
 * gomalloc initialises) so no page leaves or joins the free set behind a
 * test's back, and so is guarded sampling (GOMALLOC_GUARD_RATE=0): its pool
 * reserves address space at a random first sample, which the fault
 * injection would count and the RLIMIT_AS cases could not give back.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>
#include <valgrind/valgrind.h>

#include "gomalloc.h"
#include "internal.h"
#include "testing.h"
#include "testutil.h"

#define PAGE ((size_t)GM_PAGE_SIZE)
#define FILL_CLS 1        /* class recorded in filler spans; only the pagemap reads it */
#define MAX_N 20
#define WATCHDOG_SECONDS 120

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/* Runs before gomalloc's constructor reads its options. */
__attribute__((constructor(101))) static void no_scavenger(void)
{
    setenv("GOMALLOC_SCAVENGE", "0", 1);
    setenv("GOMALLOC_GUARD_RATE", "0", 1);
}

/* ---- heap filler ------------------------------------------------------------ */

static gm_span_t **fillers;
static size_t nfillers, cap_fillers;

static uint64_t committed_free(void)
{
    struct gm_stats st;
    gm_get_stats(&st);
    return st.heap_free + st.released;
}

/* Takes every committed free page so the next page run the heap hands out
 * needs the OS.  Runs go to the lowest place that fits (first fit, arenas
 * committed from the bottom up; the close-fit records are dropped first);
 * when a run lands in uncommitted pages instead (committed free pages
 * fragmented, or a lower arena with uncommitted room) it commits more: the
 * pages that commit added are taken at once, in one run, and the run length
 * halves, down to single pages.  The loop ends when the statistics show no
 * committed free page.  Fillers stay until the test ends; the committed
 * address space they leave behind is never touched. */
static void add_filler(uint64_t pages)
{
    if (nfillers == cap_fillers) {
        cap_fillers = cap_fillers ? 2 * cap_fillers : 4096;
        fillers = realloc(fillers, cap_fillers * sizeof *fillers);
        assert_non_null(fillers);
    }
    gm_span_t *s = gm_mheap_alloc_span((uint32_t)pages, FILL_CLS);
    assert_non_null(s);
    fillers[nfillers++] = s;
}

static void fill_heap(void)
{
    uint64_t run = GM_ARENA_PAGES / 2;
    gm_place_forget_fits();
    for (uint64_t k; (k = committed_free() / PAGE) > 0;) {
        if (run > k)
            run = k;
        add_filler(run);
        uint64_t left = committed_free() / PAGE;
        if (left + run > k) {   /* it committed more: take what was added */
            add_filler(left + run - k);
            if (run > 1)
                run /= 2;
        }
    }
}

static void unfill_heap(void)
{
    while (nfillers > 0)
        gm_mheap_free_span(fillers[--nfillers]);
}

/* Flushes caches and central stock, then fills the heap: the next allocation
 * of a class with no live objects, or of a large block, must go to the OS. */
static void prepare(bool fill)
{
    gm_os_fail_after(0);
    if (!fill)
        unfill_heap();
    (void)gm_release();
    if (fill)
        fill_heap();
}

static uint64_t mapped_now(void)
{
    struct gm_stats st;
    gm_get_stats(&st);
    return st.mapped;
}

/* Success after the very first OS call was refused is right only when the
 * refused call was a new arena's reservation: mheap.c (grow_locked) then
 * falls back to smaller reservations, so the address space reserved grows by
 * something that is not a whole number of 64 MiB arenas (the operation may go
 * on to reserve whole arenas once the refusal is behind it). */
static bool fell_back_to_smaller_arena(uint64_t mapped_before)
{
    uint64_t after = mapped_now();
    return after > mapped_before && (after - mapped_before) % GM_ARENA_SIZE != 0;
}

/* A refused call may also be served on a second try after the heap gave
 * back address space it did not need (unused arenas, cached huge
 * reservations): the mapped total then fell. */
static bool refusal_explained(bool fill, uint64_t mapped_before)
{
    return (fill && fell_back_to_smaller_arena(mapped_before)) || mapped_now() < mapped_before;
}

static int setup(void **state)
{
    (void)state;
    gm_os_fail_after(0);
    alarm(WATCHDOG_SECONDS);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    gm_os_fail_after(0);
    unfill_heap();
    alarm(0);
    return 0;
}

/* ---- checks ---------------------------------------------------------------- */

/* A block that must be usable: aligned, big enough, every byte writable and
 * reading back. */
static void check_block(void *p, size_t size, size_t align, unsigned seed)
{
    assert_non_null(p);
    assert_true(gm_test_aligned((uintptr_t)p, align < 16 ? 16 : align));
    size_t usable = gm_usable_size(p);
    assert_true(usable >= size);
    gm_test_fill(p, size, seed);
    assert_true(gm_test_check(p, size, seed));
    assert_int_equal(gm_usable_size(p), usable);
}

/* After a case: the heap lock and the central locks are free and the heap
 * still serves small and large blocks. */
static void check_heap_usable(void)
{
    gm_os_fail_after(0);
    void *a = gm_malloc(100), *b = gm_malloc(100 * KiB), *c = gm_calloc(3, 1000);
    check_block(a, 100, 16, 1);
    check_block(b, 100 * KiB, 16, 2);
    assert_non_null(c);
    assert_true(gm_test_all_zero(c, 3000));
    gm_free(a);
    gm_free(b);
    gm_free(c);
}

/* ---- allocation cases ------------------------------------------------------- */

enum kind {
    K_MALLOC, K_CALLOC, K_ALIGNED, K_POSIX_MEMALIGN, K_MEMALIGN, K_VALLOC, K_PVALLOC
};

struct alloc_case {
    const char *name;
    enum kind kind;
    size_t size;      /* bytes (calloc: count * 8) */
    size_t align;     /* alignment asked for (aligned kinds) */
    bool fill;        /* fill the heap first (false: huge, the OS is needed anyway) */
};

/* Runs the case's call; *err is errno after it (posix_memalign: its result). */
static void *do_alloc(const struct alloc_case *c, int *err, size_t *need, size_t *align)
{
    void *p = NULL;
    *need = c->size;
    *align = 16;
    errno = 0;
    switch (c->kind) {
    case K_MALLOC:
        p = gm_malloc(c->size);
        break;
    case K_CALLOC:
        p = gm_calloc(c->size / 8, 8);
        break;
    case K_ALIGNED:
        p = gm_aligned_alloc(c->align, c->size);
        *align = c->align;
        break;
    case K_POSIX_MEMALIGN: {
        void *out = (void *)0x10;
        errno = EDOM;
        int r = gm_posix_memalign(&out, c->align, c->size);
        /* posix_memalign never touches errno, success or failure. */
        assert_int_equal(errno, EDOM);
        if (r != 0)
            assert_ptr_equal(out, (void *)0x10);
        *err = r;
        *align = c->align;
        return r == 0 ? out : NULL;
    }
    case K_MEMALIGN:
        p = gm_memalign(c->align, c->size);
        *align = c->align;
        break;
    case K_VALLOC:
        p = gm_valloc(c->size);
        *align = 4096;
        break;
    case K_PVALLOC:
        p = gm_pvalloc(c->size);
        *align = 4096;
        *need = (c->size + 4095) & ~(size_t)4095;
        break;
    }
    *err = errno;
    return p;
}

static void run_alloc_case(const struct alloc_case *c)
{
    int failures = 0, successes = 0, retries = 0;
    for (unsigned long n = 1; n <= MAX_N; n++) {
        prepare(c->fill);
        int err;
        size_t need, align;
        uint64_t mapped = mapped_now();
        gm_os_fail_after(n);
        void *p = do_alloc(c, &err, &need, &align);
        gm_os_fail_after(0);
        if (!p) {
            if (err != ENOMEM)
                fail_msg("%s: n=%lu: NULL with error %d, expected ENOMEM", c->name, n, err);
            failures++;
        } else {
            if (n == 1 && !refusal_explained(c->fill, mapped))
                fail_msg("%s: n=1: succeeded although its first OS call was refused "
                         "(mapped %llu -> %llu)", c->name, (unsigned long long)mapped,
                         (unsigned long long)mapped_now());
            if (n == 1 && retries++ < 6) {
                /* The refused call was a new arena's reservation, which falls
                 * back to a smaller one: go again, now a commit step is due. */
                gm_free(p);
                n = 0;
                continue;
            }
            if (c->kind == K_CALLOC)
                assert_true(gm_test_all_zero(p, need));
            check_block(p, need, align, (unsigned)n);
            successes++;
            gm_free(p);
        }
        check_heap_usable();
    }
    assert_true(failures >= 1);
    assert_true(successes >= 1);   /* n = 20 is past every call an allocation makes */

    /* Recovery: with the heap full again and fault injection off, it works. */
    prepare(c->fill);
    int err;
    size_t need, align;
    void *p = do_alloc(c, &err, &need, &align);
    if (!p)
        fail_msg("%s: fails after recovery, error %d", c->name, err);
    if (c->kind == K_CALLOC)
        assert_true(gm_test_all_zero(p, need));
    check_block(p, need, align, 99);
    gm_free(p);
    unfill_heap();
}

#define ALLOC_TEST(fn, ...)                                                  \
    static void fn(void **state)                                             \
    {                                                                        \
        (void)state;                                                         \
        const struct alloc_case c = {#fn, __VA_ARGS__};                      \
        run_alloc_case(&c);                                                  \
    }

ALLOC_TEST(test_oom_malloc_small, K_MALLOC, 5000, 0, true)
ALLOC_TEST(test_oom_malloc_tiny, K_MALLOC, 48, 0, true)
ALLOC_TEST(test_oom_malloc_large, K_MALLOC, 300 * KiB, 0, true)
ALLOC_TEST(test_oom_malloc_large_max, K_MALLOC, 32 * MiB - PAGE, 0, true)
ALLOC_TEST(test_oom_malloc_huge, K_MALLOC, 40 * MiB, 0, false)
ALLOC_TEST(test_oom_calloc_small, K_CALLOC, 2400, 0, true)
ALLOC_TEST(test_oom_calloc_large, K_CALLOC, 200 * KiB, 0, true)
ALLOC_TEST(test_oom_calloc_huge, K_CALLOC, 48 * MiB, 0, false)
ALLOC_TEST(test_oom_aligned_alloc_1mib, K_ALIGNED, 100, MiB, true)
ALLOC_TEST(test_oom_aligned_alloc_1mib_large, K_ALIGNED, 3 * MiB, MiB, true)
ALLOC_TEST(test_oom_aligned_alloc_huge, K_ALIGNED, 33 * MiB, 4 * MiB, false)
ALLOC_TEST(test_oom_posix_memalign_1mib, K_POSIX_MEMALIGN, 4096, MiB, true)
ALLOC_TEST(test_oom_posix_memalign_small, K_POSIX_MEMALIGN, 700, 256, true)
ALLOC_TEST(test_oom_posix_memalign_huge, K_POSIX_MEMALIGN, 40 * MiB, 64, false)
ALLOC_TEST(test_oom_memalign_64k, K_MEMALIGN, 100 * KiB, 64 * KiB, true)
ALLOC_TEST(test_oom_memalign_small, K_MEMALIGN, 200, 128, true)
ALLOC_TEST(test_oom_valloc_small, K_VALLOC, 100, 0, true)
ALLOC_TEST(test_oom_valloc_large, K_VALLOC, 50 * KiB, 0, true)
ALLOC_TEST(test_oom_pvalloc, K_PVALLOC, 70000, 0, true)
ALLOC_TEST(test_oom_pvalloc_small, K_PVALLOC, 1, 0, true)

/* ---- realloc cases ------------------------------------------------------------ */

/* A block of from bytes, grown to to bytes (reallocarray: count * 8) while
 * the OS refuses: NULL and ENOMEM leave the old block as it was. */
static void run_realloc_case(const char *name, size_t from, size_t to, bool array, bool fill)
{
    int failures = 0, successes = 0, retries = 0;
    for (unsigned long n = 1; n <= MAX_N + 1; n++) {
        bool recovery = n > MAX_N;
        prepare(false);
        void *p = gm_malloc(from);
        check_block(p, from, 16, (unsigned)n);
        size_t usable = gm_usable_size(p);
        if (fill)
            fill_heap();
        uint64_t mapped = mapped_now();
        if (!recovery)
            gm_os_fail_after(n);
        errno = 0;
        void *q = array ? gm_reallocarray(p, to / 8, 8) : gm_realloc(p, to);
        int err = errno;
        gm_os_fail_after(0);
        if (!q) {
            if (recovery)
                fail_msg("%s: fails after recovery, errno %d", name, err);
            if (err != ENOMEM)
                fail_msg("%s: n=%lu: NULL with errno %d, expected ENOMEM", name, n, err);
            /* The old block is intact and still owned by the caller. */
            assert_int_equal(gm_usable_size(p), usable);
            assert_true(gm_test_check(p, from, (unsigned)n));
            gm_test_fill(p, from, (unsigned)n + 1000);
            assert_true(gm_test_check(p, from, (unsigned)n + 1000));
            gm_free(p);
            failures++;
        } else {
            if (n == 1 && !refusal_explained(fill, mapped))
                fail_msg("%s: n=1: succeeded although its first OS call was refused "
                         "(mapped %llu -> %llu)", name, (unsigned long long)mapped,
                         (unsigned long long)mapped_now());
            if (n == 1 && retries++ < 6) {
                gm_free(q);   /* a smaller arena served it: go again (see above) */
                n = 0;
                continue;
            }
            assert_true(gm_test_aligned((uintptr_t)q, 16));
            assert_true(gm_usable_size(q) >= to);
            assert_true(gm_test_check(q, from, (unsigned)n));
            memset((char *)q + from, 0x5a, to - from);
            gm_free(q);
            if (!recovery)
                successes++;
        }
        check_heap_usable();
    }
    assert_true(failures >= 1);
    assert_true(successes >= 1);
}

static void test_oom_realloc_small_to_small(void **state)
{
    (void)state;
    run_realloc_case(__func__, 100, 6000, false, true);
}

static void test_oom_realloc_small_to_large(void **state)
{
    (void)state;
    run_realloc_case(__func__, 1000, 400 * KiB, false, true);
}

static void test_oom_realloc_large_to_larger(void **state)
{
    (void)state;
    run_realloc_case(__func__, 64 * KiB, 3 * MiB, false, true);
}

static void test_oom_realloc_large_to_huge(void **state)
{
    (void)state;
    run_realloc_case(__func__, 1 * MiB, 40 * MiB, false, false);
}

/* Past its reservation a huge block is remapped to a new one: a refused
 * reservation or commit is ENOMEM with the block where it was; a refused
 * move falls back to a copy. */
static void test_oom_realloc_huge_to_huger(void **state)
{
    (void)state;
    run_realloc_case(__func__, 40 * MiB, 100 * MiB, false, false);
}

static void test_oom_reallocarray(void **state)
{
    (void)state;
    run_realloc_case(__func__, 3000, 300 * KiB, true, true);
}

static void test_oom_reallocarray_huge(void **state)
{
    (void)state;
    run_realloc_case(__func__, 40 * KiB, 36 * MiB, true, false);
}

/* A heap that is full many times over: every refusal in a long run of
 * allocations is survived, and the blocks that were handed out stay intact. */
static void test_oom_many_refusals_keep_blocks(void **state)
{
    (void)state;
    enum { N = 400 };
    static void *blocks[N];
    static size_t sizes[N];
    prepare(true);
    int failures = 0;
    for (int i = 0; i < N; i++) {
        sizes[i] = (i % 3 == 0) ? 40 * KiB + (size_t)i * 1000 : 64 + (size_t)i * 37;
        gm_os_fail_after((unsigned long)(i % 3) + 1);
        errno = 0;
        blocks[i] = gm_malloc(sizes[i]);
        int err = errno;
        gm_os_fail_after(0);
        if (!blocks[i]) {
            assert_int_equal(err, ENOMEM);
            failures++;
        } else {
            gm_test_fill(blocks[i], sizes[i], (unsigned)i);
        }
    }
    assert_true(failures >= 1);
    for (int i = 0; i < N; i++) {
        if (!blocks[i])
            continue;
        assert_true(gm_usable_size(blocks[i]) >= sizes[i]);
        assert_true(gm_test_check(blocks[i], sizes[i], (unsigned)i));
        gm_free(blocks[i]);
    }
    unfill_heap();
    check_heap_usable();
}

/* ---- RLIMIT_AS ------------------------------------------------------------------ */

/* Address space in use, from /proc/self/status (bytes); 0 if unknown. */
static size_t vm_size(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    size_t kb = 0;
    if (!f)
        return 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmSize: %zu kB", &kb) == 1)
            break;
    fclose(f);
    return kb * 1024;
}

#define CHILD_CHECK(cond, code)                                                   \
    do {                                                                          \
        if (!(cond)) {                                                            \
            static const char msg[] = "test_oom child: check failed: " #cond "\n"; \
            if (write(2, msg, sizeof msg - 1) < 0) {}                             \
            _exit(code);                                                          \
        }                                                                         \
    } while (0)

/* Room for more blocks of 1000 bytes than the child's whole address space
 * under its limit can hold, so every fill ends with a refusal.  A fixed 64K
 * did not always: in about 1 run in 40 the 1 MiB blocks stopped short of the
 * limit (95 instead of 127), and once they were freed the refill with small
 * blocks passed 64K in the arenas they had left. */
static void **child_blocks;
static size_t max_blocks;

/* Allocates blocks of size into arr until NULL (at most cap); returns how
 * many it got. */
static size_t fill_into(void **arr, size_t cap, size_t size)
{
    size_t n = 0;
    for (; n < cap; n++) {
        errno = 0;
        void *p = gm_malloc(size);
        if (!p) {
            CHILD_CHECK(errno == ENOMEM, 10);
            break;
        }
        ((volatile char *)p)[0] = 1;
        ((volatile char *)p)[size - 1] = 2;
        arr[n] = p;
    }
    CHILD_CHECK(n < cap, 11);
    return n;
}

/* Allocates blocks of size until NULL (at most max_blocks - from); returns how
 * many it got. */
static size_t child_fill(size_t from, size_t size)
{
    return fill_into(child_blocks + from, max_blocks - from, size);
}

static void child_free(size_t n)
{
    for (size_t i = 0; i < n; i++)
        gm_free(child_blocks[i]);
}

static void rlimit_child(int unused)
{
    (void)unused;
    max_blocks = (vm_size() + 128 * MiB) / 1000;
    child_blocks = mmap(NULL, max_blocks * sizeof(void *), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(child_blocks != MAP_FAILED, 1);
    size_t used = vm_size();   /* the limit below: used + 64 MiB < what max_blocks covers */
    CHILD_CHECK(used > 0, 2);
    struct rlimit rl;
    CHILD_CHECK(getrlimit(RLIMIT_AS, &rl) == 0, 3);
    rl.rlim_cur = used + 64 * MiB;
    CHILD_CHECK(setrlimit(RLIMIT_AS, &rl) == 0, 4);

    /* Large blocks until the kernel refuses, then small ones, then huge. */
    size_t nlarge = child_fill(0, MiB);
    CHILD_CHECK(nlarge >= 1, 20);
    size_t nsmall = child_fill(nlarge, 1000);
    errno = 0;
    void *huge = gm_malloc(20 * MiB);
    CHILD_CHECK(huge == NULL && errno == ENOMEM, 21);
    void *aligned = NULL;
    errno = EDOM;
    CHILD_CHECK(gm_posix_memalign(&aligned, MiB, 8 * MiB) == ENOMEM && errno == EDOM, 22);
    errno = 0;
    CHILD_CHECK(gm_calloc(4, 4 * MiB) == NULL && errno == ENOMEM, 23);

    /* Everything back: the same blocks fit again. */
    child_free(nlarge + nsmall);
    (void)gm_release();
    size_t again = child_fill(0, MiB);
    CHILD_CHECK(again >= nlarge, 30);
    child_free(again);
    (void)gm_release();
    size_t small_again = child_fill(0, 1000);
    CHILD_CHECK(small_again >= nsmall, 31);
    child_free(small_again);
    (void)gm_release();
    void *small = gm_malloc(1000), *large = gm_malloc(MiB);
    CHILD_CHECK(small != NULL && large != NULL, 32);
    gm_free(small);
    gm_free(large);
    _exit(0);
}

/* Runs child(arg), which sets RLIMIT_AS and exits with the number of the
 * check that failed (0: none), in a forked child, and fails the test as the
 * child did.  Skipped under ASan and valgrind, which reserve address space
 * of their own. */
static void in_rlimit_child(void (*child)(int), int arg)
{
    if (UNDER_ASAN || RUNNING_ON_VALGRIND) {
        skip();
        return;
    }
    unfill_heap();
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        child(arg);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (WIFSIGNALED(status))
        fail_msg("RLIMIT_AS child died with signal %d", WTERMSIG(status));
    assert_true(WIFEXITED(status));
    if (WEXITSTATUS(status) != 0)
        fail_msg("RLIMIT_AS child failed check %d", WEXITSTATUS(status));
}

static void test_oom_rlimit_as(void **state)
{
    (void)state;
    in_rlimit_child(rlimit_child, 0);
}

/* ---- RLIMIT_AS: every free byte serves every request ---------------------------- */

/* Room under the limit for the cases below; a huge block's reservation is
 * whole 64 MiB slots, so several fit. */
#define AS_ROOM (320 * MiB)
#define PROBE_STEP (8 * MiB)

/* The largest multiple of PROBE_STEP, up to cap, that malloc gives now. */
static size_t largest_fit(size_t cap)
{
    size_t lo = 0, hi = cap / PROBE_STEP;
    while (lo < hi) {
        size_t mid = (lo + hi + 1) / 2;
        void *p = gm_malloc(mid * PROBE_STEP);
        if (p) {
            ((volatile char *)p)[0] = 1;
            gm_free(p);
            lo = mid;
        } else {
            hi = mid - 1;
        }
    }
    return lo * PROBE_STEP;
}


struct filler {
    pthread_t thread;
    pthread_barrier_t *filled;   /* NULL: one filler */
    void **arr;
    size_t cap, size, got;
};

/* Fills, waits until every filler has, then frees its own blocks (a thread
 * that is alive keeps freed large blocks in its page cache, which another
 * thread's refused request cannot take back: see the README). */
static void *filler_main(void *arg)
{
    struct filler *f = arg;
    f->got = fill_into(f->arr, f->cap, f->size);
    if (f->filled)
        pthread_barrier_wait(f->filled);
    for (size_t j = 0; j < f->got; j++)
        gm_free(f->arr[j]);
    return NULL;
}

#define MAX_FILLERS 4

/* Fills with blocks of size until the kernel refuses, in threads threads at
 * once (each with its own block array), then each frees its own blocks and
 * exits (its caches are parked).  Returns the bytes the fill reached. */
static size_t fill_and_free(size_t size, int threads)
{
    struct filler f[MAX_FILLERS];
    pthread_barrier_t filled;
    size_t bytes = 0;
    if (threads > 1)
        CHILD_CHECK(pthread_barrier_init(&filled, NULL, (unsigned)threads) == 0, 52);
    for (int i = 0; i < threads; i++) {
        f[i].arr = child_blocks + (size_t)i * max_blocks;
        f[i].cap = max_blocks;
        f[i].size = size;
        f[i].filled = threads > 1 ? &filled : NULL;
        if (threads > 1)
            CHILD_CHECK(pthread_create(&f[i].thread, NULL, filler_main, &f[i]) == 0, 50);
        else
            filler_main(&f[i]);
    }
    for (int i = 0; threads > 1 && i < threads; i++)
        CHILD_CHECK(pthread_join(f[i].thread, NULL) == 0, 51);
    if (threads > 1)
        pthread_barrier_destroy(&filled);
    for (int i = 0; i < threads; i++)
        bytes += f[i].got * size;
    return bytes;
}

/* Under RLIMIT_AS: fills with small, large and huge blocks in turn, freeing
 * all after each (no malloc_trim); after each, the largest block that fitted
 * at the start and one of every kind fit again, and a second round of fills
 * reaches what the first did. */
static void every_size_child(int threads)
{
    static const size_t sizes[3] = {1000, MiB, 64 * MiB};   /* a huge block of whole slots */
    size_t first[3];
    max_blocks = (vm_size() + AS_ROOM) / 1000 + 4096;   /* per filler */
    child_blocks = mmap(NULL, MAX_FILLERS * max_blocks * sizeof(void *), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    CHILD_CHECK(child_blocks != MAP_FAILED, 1);
    size_t used = vm_size();
    CHILD_CHECK(used > 0, 2);
    struct rlimit rl;
    CHILD_CHECK(getrlimit(RLIMIT_AS, &rl) == 0, 3);
    rl.rlim_cur = used + AS_ROOM;
    CHILD_CHECK(setrlimit(RLIMIT_AS, &rl) == 0, 4);

    size_t biggest = largest_fit(AS_ROOM);
    CHILD_CHECK(biggest >= AS_ROOM / 2, 40);
    for (int k = 0; k < 3; k++) {
        first[k] = fill_and_free(sizes[k], threads);
        if (first[k] < AS_ROOM / 2)
            fprintf(stderr, "fill of %zu-byte blocks reached %zu MiB\n", sizes[k], first[k] >> 20);
        CHILD_CHECK(first[k] >= AS_ROOM / 2, 41);
        void *p = gm_malloc(biggest);
        CHILD_CHECK(p != NULL, 42);
        gm_free(p);
        for (int j = 0; j < 3; j++) {
            p = gm_malloc(sizes[j]);
            CHILD_CHECK(p != NULL, 43);
            gm_free(p);
        }
    }
    for (int k = 0; k < 3; k++)
        CHILD_CHECK(fill_and_free(sizes[k], threads) >= first[k] / 10 * 9, 44);
    CHILD_CHECK(largest_fit(AS_ROOM) >= biggest, 45);
    _exit(0);
}

static void test_oom_rlimit_every_size_again(void **state)
{
    (void)state;
    in_rlimit_child(every_size_child, 1);
}

static void test_oom_rlimit_every_size_again_threads(void **state)
{
    (void)state;
    in_rlimit_child(every_size_child, 4);
}

int main(void)
{
    /* The thread cache exists before the first case. */
    gm_free(gm_malloc(16));
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_oom_rlimit_as),   /* first: a small heap, so the limit is what stops it */
        T(test_oom_rlimit_every_size_again),
        T(test_oom_rlimit_every_size_again_threads),
        T(test_oom_malloc_small),
        T(test_oom_malloc_tiny),
        T(test_oom_malloc_large),
        T(test_oom_malloc_large_max),
        T(test_oom_malloc_huge),
        T(test_oom_calloc_small),
        T(test_oom_calloc_large),
        T(test_oom_calloc_huge),
        T(test_oom_aligned_alloc_1mib),
        T(test_oom_aligned_alloc_1mib_large),
        T(test_oom_aligned_alloc_huge),
        T(test_oom_posix_memalign_1mib),
        T(test_oom_posix_memalign_small),
        T(test_oom_posix_memalign_huge),
        T(test_oom_memalign_64k),
        T(test_oom_memalign_small),
        T(test_oom_valloc_small),
        T(test_oom_valloc_large),
        T(test_oom_pvalloc),
        T(test_oom_pvalloc_small),
        T(test_oom_realloc_small_to_small),
        T(test_oom_realloc_small_to_large),
        T(test_oom_realloc_large_to_larger),
        T(test_oom_realloc_large_to_huge),
        T(test_oom_realloc_huge_to_huger),
        T(test_oom_reallocarray),
        T(test_oom_reallocarray_huge),
        T(test_oom_many_refusals_keep_blocks),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, NULL);
}
