/*
 * thread_alloc_fail.c — every allocation function runs out of memory cleanly
 * while several threads do the same at once, and the heap works again once
 * they free (glibc's tst-malloc-thread-fail, which aims at glibc's fallbacks:
 * another arena, then mmap).
 *
 * Each case runs in its own child process with its address space and its
 * writable data capped HEADROOM_MIB above what it already uses (glibc's test
 * caps the address space at 200 MiB outright).  Nine threads (eight with
 * small stacks, plus the main thread) start together and allocate with one
 * function until it returns NULL, checking each block's alignment (and, for
 * calloc, that it is zero), and chaining the blocks in a list.  The failure
 * must say ENOMEM.  When all have failed they free their lists; the child
 * then allocates once more, to show the memory came back.
 *
 * Cases: malloc, realloc (from a 16-byte block), valloc, pvalloc and calloc
 * with 144 bytes and with a page; aligned_alloc, memalign and posix_memalign
 * at 128-byte alignment with 512 bytes, a page and 17 pages.
 */
#include "check.h"

#include <malloc.h>
#include <stdalign.h>
#include <stddef.h>
#include <sys/resource.h>

enum { THREADS = 8, HEADROOM_MIB = 8 };

enum function {
    WITH_MALLOC, WITH_REALLOC, WITH_VALLOC, WITH_PVALLOC, WITH_CALLOC,
    WITH_ALIGNED_ALLOC, WITH_MEMALIGN, WITH_POSIX_MEMALIGN, FUNCTIONS
};
static const char *const names[FUNCTIONS] = {
    "malloc", "realloc", "valloc", "pvalloc", "calloc",
    "aligned_alloc", "memalign", "posix_memalign",
};

/* What the current child tests. */
static enum function function;
static size_t request, alignment, page;
static pthread_barrier_t start_line, finish_line;
/* Blocks obtained by all threads together; one thread may get none when the
 * others were faster. */
static long blocks_total;

struct node {
    struct node *next;
};

static size_t expected_alignment(void)
{
    if (function == WITH_VALLOC || function == WITH_PVALLOC)
        return page;
    if (function >= WITH_ALIGNED_ALLOC)
        return alignment;
    return alignof(max_align_t);
}

static void *grow_from_small(void)
{
    void *p = realloc(NULL, 16);
    if (p == NULL)
        return NULL;
    void *q = realloc(p, request);
    if (q == NULL)
        free(p);
    return q;
}

static void *zeroed(void)
{
    unsigned char *p = calloc(1, request);
    for (size_t i = 0; p != NULL && i < request; i++)
        gt_check(p[i] == 0, "calloc(1, %zu): byte %zu is not zero", request, i);
    return p;
}

static void *aligned_by_posix(void)
{
    void *p = NULL;
    int rc = posix_memalign(&p, alignment, request);
    gt_check(rc == 0 || rc == ENOMEM, "posix_memalign(&p, %zu, %zu) returned %d", alignment,
             request, rc);
    if (rc == ENOMEM)
        errno = ENOMEM;
    return rc == 0 ? p : NULL;
}

static void *allocate(void)
{
    switch (function) {
    case WITH_MALLOC: return malloc(request);
    case WITH_REALLOC: return grow_from_small();
    case WITH_VALLOC: return valloc(request);
    case WITH_PVALLOC: return pvalloc(request);
    case WITH_CALLOC: return zeroed();
    case WITH_ALIGNED_ALLOC: return aligned_alloc(alignment, request);
    case WITH_MEMALIGN: return memalign(alignment, request);
    default: return aligned_by_posix();
    }
}

static void meet(pthread_barrier_t *b)
{
    int rc = pthread_barrier_wait(b);
    gt_check(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD, "pthread_barrier_wait: %s",
             strerror(rc));
}

/* Allocates until refused, waits for the others, frees everything. */
static void *exhaust(void *unused)
{
    (void)unused;
    struct node *head = NULL;
    meet(&start_line);
    for (;;) {
        errno = 0;
        struct node *n = allocate();
        if (n == NULL)
            break;
        gt_check((uintptr_t)n % expected_alignment() == 0, "%s(%zu): %p is not %zu-byte aligned",
                 names[function], request, (void *)n, expected_alignment());
        n->next = head;
        head = n;
        __atomic_add_fetch(&blocks_total, 1, __ATOMIC_RELAXED);
    }
    int err = errno;
    gt_check(err == ENOMEM, "%s(%zu) failed with errno %d, expected ENOMEM", names[function],
             request, err);
    meet(&finish_line);
    while (head != NULL) {
        struct node *next = head->next;
        free(head);
        head = next;
    }
    return NULL;
}

/* A field of /proc/self/status, in bytes ("VmSize", "VmData"). */
static rlim_t status_bytes(const char *field)
{
    char line[256];
    size_t len = strlen(field);
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    gt_check(f != NULL, "fopen(/proc/self/status): %s", strerror(errno));
    while (kib < 0 && fgets(line, sizeof line, f))
        if (strncmp(line, field, len) == 0 && line[len] == ':')
            kib = strtol(line + len + 1, NULL, 10);
    fclose(f);
    gt_check(kib >= 0, "no %s in /proc/self/status", field);
    return (rlim_t)kib * 1024;
}

static void cap(int resource, const char *name, rlim_t bytes)
{
    struct rlimit limit = { .rlim_cur = bytes, .rlim_max = RLIM_INFINITY };
    gt_check(setrlimit(resource, &limit) == 0, "setrlimit(%s): %s", name, strerror(errno));
}

/* The address space caps what can be mapped; the data limit also caps what
 * can be made writable, so an allocator that reserved address space earlier
 * runs out as soon as one that maps on demand. */
static void cap_memory(void)
{
    rlim_t headroom = (rlim_t)HEADROOM_MIB << 20;
    rlim_t size = status_bytes("VmSize"), data = status_bytes("VmData");
    cap(RLIMIT_AS, "RLIMIT_AS", size + headroom);
    cap(RLIMIT_DATA, "RLIMIT_DATA", data + headroom);
}

/* The body of one child: the case given by the globals. */
static void run_case(void *unused)
{
    (void)unused;
    pthread_attr_t small_stack;
    pthread_t threads[THREADS];
    pthread_attr_init(&small_stack);
    pthread_attr_setstacksize(&small_stack, 256 * 1024);
    gt_check(pthread_barrier_init(&start_line, NULL, THREADS + 1) == 0, "pthread_barrier_init");
    gt_check(pthread_barrier_init(&finish_line, NULL, THREADS + 1) == 0, "pthread_barrier_init");
    cap_memory();
    for (int i = 0; i < THREADS; i++) {
        int rc = pthread_create(&threads[i], &small_stack, exhaust, NULL);
        gt_check(rc == 0, "pthread_create: %s", strerror(rc));
    }
    exhaust(NULL);
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    gt_check(blocks_total > 0, "%s(%zu) failed at once in every thread", names[function],
             request);
    void *again = allocate();
    gt_check(again != NULL, "%s(%zu) still fails after every block was freed", names[function],
             request);
    free(again);
}

static void run_functions(enum function first, enum function last)
{
    char why[400];
    for (function = first; function <= last; function++) {
        struct gt_child c = gt_run_child(run_case, NULL);
        gt_check(gt_exited_0(&c), "%s(%zu) case: %s", names[function], request,
                 gt_describe(&c, why, sizeof why));
    }
}

int main(void)
{
    page = (size_t)sysconf(_SC_PAGESIZE);
    gt_check(mallopt(M_ARENA_MAX, 2) != 0, "mallopt(M_ARENA_MAX, 2) returned 0");
    const size_t plain_sizes[] = { 144, page };
    for (int i = 0; i < 2; i++) {
        request = plain_sizes[i];
        run_functions(WITH_MALLOC, WITH_CALLOC);
    }
    alignment = 128;
    const size_t aligned_sizes[] = { 512, page, 17 * page };
    for (int i = 0; i < 3; i++) {
        request = aligned_sizes[i];
        run_functions(WITH_ALIGNED_ALLOC, WITH_POSIX_MEMALIGN);
    }
    return 0;
}
