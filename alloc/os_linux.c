/*
 * os_linux.c — the only file that talks to the kernel about memory.
 *
 * Address space moves through three states (Go's Reserved -> Ready -> Released):
 *   reserve   mmap PROT_NONE: address space only, no commit charge, so
 *             vm.overcommit_memory=2 and RLIMIT_AS see only what is used;
 *   commit    mprotect read/write: usable, charged, zero until written;
 *   release   madvise: contents dropped, RSS falls; the range stays usable
 *             (MADV_DONTNEED: reads back zero; MADV_FREE: contents undefined).
 * Nothing here allocates; diagnostics go out with write(2).
 *
 * Fault injection: gm_os_fail_after(n) makes the nth mapping call from now
 * (reserve, map or commit) fail as if the kernel refused, so tests can prove
 * every caller turns refusal into NULL/ENOMEM.  The counter is atomic; it is
 * read on slow paths only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"

static unsigned long fail_countdown;   /* atomic */

void gm_os_fail_after(unsigned long calls) {
    __atomic_store_n(&fail_countdown, calls, __ATOMIC_RELAXED);
}

/* True when fault injection says this call must fail. */
static bool injected_failure(void) {
    unsigned long n = __atomic_load_n(&fail_countdown, __ATOMIC_RELAXED);
    while (n != 0) {
        if (__atomic_compare_exchange_n(&fail_countdown, &n, n - 1, false,
                                        __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            return n == 1;
    }
    return false;
}

static void *map_raw(size_t size, int prot) {
    int saved = errno;
    void *p = mmap(NULL, size, prot, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}

/* size bytes PROT_NONE at exactly addr, NULL if anything is there. */
static void *map_at(uintptr_t addr, size_t size) {
    int saved = errno;
    void *p = mmap((void *)addr, size, PROT_NONE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
    errno = saved;
    if (p != MAP_FAILED && p != (void *)addr) {   /* a kernel without NOREPLACE: a hint */
        munmap(p, size);
        return NULL;
    }
    return p == MAP_FAILED ? NULL : p;
}

/* Reserves size bytes aligned to align (a power of two).  Tries an exact
 * mapping first, which is often aligned already; then the aligned addresses
 * on either side of where the kernel put it (free address space is usually
 * there); then over-reserves and trims the ends.  The over-reservation needs
 * align bytes more of address space for a moment, which under RLIMIT_AS may
 * be refused when size itself would fit. */
void *gm_os_reserve(size_t size, size_t align) {
    if (injected_failure())
        return NULL;
    char *p = map_raw(size, PROT_NONE);
    if (!p)
        return NULL;
    if (((uintptr_t)p & (align - 1)) == 0)
        return p;
    gm_os_unmap(p, size);
    uintptr_t down = (uintptr_t)p & ~(uintptr_t)(align - 1);
    if ((p = map_at(down + align, size)) || (down && (p = map_at(down, size))))
        return p;
    if (size + align < size)
        return NULL;
    p = map_raw(size + align, PROT_NONE);
    if (!p)
        return NULL;
    uintptr_t start = ((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1);
    size_t head = start - (uintptr_t)p;
    if (head)
        gm_os_unmap(p, head);
    size_t tail = align - head;
    if (tail)
        gm_os_unmap((char *)start + size, tail);
    return (void *)start;
}

void *gm_os_map(size_t size) {
    if (injected_failure())
        return NULL;
    return map_raw(size, PROT_READ | PROT_WRITE);
}

bool gm_os_commit(void *addr, size_t size) {
    if (injected_failure())
        return false;
    int saved = errno;
    bool ok = mprotect(addr, size, PROT_READ | PROT_WRITE) == 0;
    errno = saved;
    return ok;
}

/* mremap with MREMAP_FIXED: the kernel moves the page tables, so pages
 * change address without a copy or a fault.  Kernels before 6.x clear the
 * destination before they check the source (a source split in several
 * mappings fails), so after a failure the destination is looked at: still
 * mapped (ours), or a hole that is reserved again; if a hole was taken by
 * another mapping meanwhile, the caller must leave the range alone. */
gm_move_result_t gm_os_move(void *from, size_t size, void *to) {
    if (injected_failure())
        return GM_MOVE_FAILED;
    int saved = errno;
    gm_move_result_t r = GM_MOVE_DONE;
    if (mremap(from, size, size, MREMAP_MAYMOVE | MREMAP_FIXED, to) != to) {
        r = GM_MOVE_FAILED;
        if (msync(to, size, MS_ASYNC) != 0) {   /* part of it is unmapped */
            void *p = mmap(to, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS |
                           MAP_NORESERVE | MAP_FIXED_NOREPLACE, -1, 0);
            if (p != to) {
                if (p != MAP_FAILED)   /* an old kernel took the address as a hint */
                    munmap(p, size);
                r = GM_MOVE_LOST;
            }
        }
    }
    errno = saved;
    return r;
}

bool gm_os_madvise_free;   /* written by gm_options_init, before any thread */

bool gm_os_release(void *addr, size_t size) {
    int saved = errno;
    bool zeroed = true;
    if (gm_os_madvise_free && madvise(addr, size, MADV_FREE) == 0)
        zeroed = false;
    else
        madvise(addr, size, MADV_DONTNEED);
    errno = saved;
    return zeroed;
}

/* Guarded sampling's calls (guard.c), never fault-injected: a refusal there
 * only leaves a block unsampled, and the tests that count mapping calls
 * must not count these. */
void *gm_os_reserve_quiet(size_t size) { return map_raw(size, PROT_NONE); }

bool gm_os_commit_quiet(void *addr, size_t size) {
    int saved = errno;
    bool ok = mprotect(addr, size, PROT_READ | PROT_WRITE) == 0;
    errno = saved;
    return ok;
}

/* A fresh PROT_NONE mapping over the range: contents, RSS and commit charge
 * go in one call, and the range merges with reserved neighbours. */
void gm_os_decommit(void *addr, size_t size) {
    int saved = errno;
    mmap(addr, size, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_FIXED, -1, 0);
    errno = saved;
}

void gm_os_unmap(void *addr, size_t size) {
    int saved = errno;
    munmap(addr, size);
    errno = saved;
}

size_t gm_os_address_limit(void) {
    struct rlimit r;
    int saved = errno;
    long rc = syscall(SYS_prlimit64, 0, RLIMIT_AS, NULL, &r);
    errno = saved;
    return rc == 0 && r.rlim_cur != RLIM_INFINITY ? (size_t)r.rlim_cur : SIZE_MAX;
}

uint32_t gm_os_cpu_count(void) {
    uint64_t mask[16] = {0};   /* 1024 CPUs */
    int saved = errno;
    long got = syscall(SYS_sched_getaffinity, 0, sizeof mask, mask);
    errno = saved;
    uint32_t n = 0;
    for (long i = 0; i < got / 8; i++)
        n += (uint32_t)__builtin_popcountll(mask[i]);
    return n ? n : 1;
}

/* Field 20 of /proc/self/stat.  Raw system calls: they are no cancellation
 * points (fork's prepare handler calls this) and allocate nothing. */
uint32_t gm_os_thread_count(void) {
    char buf[1024];
    int saved = errno;
    long fd = syscall(SYS_openat, AT_FDCWD, "/proc/self/stat", O_RDONLY | O_CLOEXEC);
    long got = fd < 0 ? -1 : syscall(SYS_read, (int)fd, buf, sizeof buf - 1);
    if (fd >= 0)
        syscall(SYS_close, (int)fd);
    errno = saved;
    if (got <= 0)
        return 0;
    buf[got] = '\0';
    const char *p = strrchr(buf, ')');   /* the command name may hold anything */
    for (int field = 2; p && field < 20; field++)
        p = strchr(p + 1, ' ');
    uint32_t n = 0;
    for (p = p ? p + 1 : ""; *p >= '0' && *p <= '9'; p++)
        n = n * 10 + (uint32_t)(*p - '0');
    return n;
}

uint32_t gm_os_clock_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &t);
    return (uint32_t)((uint64_t)t.tv_sec * 1000 + (uint64_t)t.tv_nsec / 1000000);
}

void gm_os_write(int fd, const char *buf, size_t len) {
    int saved = errno;
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        buf += n;
        len -= (size_t)n;
    }
    errno = saved;
}
