/*
 * insn_floor.c — the floor for `make bench-insn`: the fewest instructions a
 * thread-caching allocator can spend on a malloc+free pair in that harness.
 *
 * It is an instrument, not an allocator.  It keeps only what every design of
 * this family must do on its fast paths: malloc maps the size to a class with
 * one table load and pops the head of the calling thread's list for that
 * class; free finds the block's class with one load from a page map and
 * pushes the block on the thread's list.  Nothing is checked (no invalid or
 * double free, no corrupted link), no list has a bound, nothing is ever given
 * back to other threads or to the OS, and its memory is one 4 GiB mapping
 * that is never reused across classes.  Its count minus the harness's share
 * is what the fast paths of gomalloc, tcmalloc or jemalloc could shrink to if
 * they dropped all bookkeeping; it shows how far below that a target can go.
 *
 * Only bench-insn loads it (LD_PRELOAD, under callgrind, running fastpath in
 * pair mode); it implements the rest of the malloc family just enough for a
 * program's start-up and exit.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>

#define REGION_BYTES ((size_t)1 << 32)
#define PAGE_SHIFT 13
#define PAGE_BYTES ((size_t)1 << PAGE_SHIFT)
#define MAX_SMALL 32768
#define SMALL_CLASSES 84      /* 16-byte steps to 1 KiB, then 4 per doubling */
#define LARGE_PAGES 64        /* one list per page count up to 512 KiB */
#define NLISTS (SMALL_CLASSES + LARGE_PAGES + 1)

static char *region, *bump;
static uint16_t page_list[REGION_BYTES >> PAGE_SHIFT];   /* page -> list */
static uint8_t size_class[MAX_SMALL / 16 + 1];           /* (n + 15) / 16 -> class */
static uint32_t class_bytes[NLISTS];
static __thread void *heads[NLISTS] __attribute__((tls_model("initial-exec")));

static void setup(void) {
    void *m = mmap(NULL, REGION_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED)
        __builtin_trap();
    unsigned cls = 0;
    for (uint32_t bytes = 16; bytes <= MAX_SMALL; cls++) {
        class_bytes[cls] = bytes;
        bytes += bytes < 1024 ? 16 : (uint32_t)1 << (31 - __builtin_clz(bytes) - 2);
    }
    for (size_t i = 0, c = 0; i <= MAX_SMALL / 16; i++) {
        while (class_bytes[c] < i * 16)
            c++;
        size_class[i] = (uint8_t)c;
    }
    for (unsigned p = 1; p <= LARGE_PAGES; p++)
        class_bytes[SMALL_CLASSES + p] = (uint32_t)(p * PAGE_BYTES);
    bump = region = m;
}

/* Carves fresh pages for list (a small class: a page's worth of objects, or
 * one object spanning whole pages) and returns the first object. */
static __attribute__((noinline)) void *refill(unsigned list) {
    if (!region)
        setup();
    size_t obj = class_bytes[list];
    size_t span = (obj + PAGE_BYTES - 1) & ~(PAGE_BYTES - 1);
    char *base = __atomic_fetch_add(&bump, span, __ATOMIC_RELAXED);
    if (base + span > region + REGION_BYTES)
        return NULL;
    for (size_t off = 0; off < span; off += PAGE_BYTES)
        page_list[(size_t)(base + off - region) >> PAGE_SHIFT] = (uint16_t)list;
    for (size_t off = obj; off + obj <= span; off += obj) {
        *(void **)(base + off) = heads[list];
        heads[list] = base + off;
    }
    return base;
}

static __attribute__((noinline, cold)) void *alloc_slow(size_t size) {
    if (!region)
        setup();
    size_t pages = (size + PAGE_BYTES - 1) >> PAGE_SHIFT;
    unsigned list = size <= MAX_SMALL ? size_class[(size + 15) >> 4]
                    : pages <= LARGE_PAGES ? SMALL_CLASSES + (unsigned)pages : 0;
    if (!list && size > MAX_SMALL) {
        errno = ENOMEM;   /* beyond what the harness measures */
        return NULL;
    }
    void *p = heads[list];
    if (p) {
        heads[list] = *(void **)p;
        return p;
    }
    return refill(list);
}

void *malloc(size_t size) {
    if (__builtin_expect(size <= MAX_SMALL, 1)) {
        unsigned cls = size_class[(size + 15) >> 4];
        void *p = heads[cls];
        if (__builtin_expect(p != NULL, 1)) {
            heads[cls] = *(void **)p;
            return p;
        }
    }
    return alloc_slow(size);
}

void free(void *p) {
    size_t off = (size_t)((char *)p - region);
    if (__builtin_expect(off < REGION_BYTES, 1)) {
        unsigned list = page_list[off >> PAGE_SHIFT];
        *(void **)p = heads[list];
        heads[list] = p;
    }
}

size_t malloc_usable_size(void *p) {
    size_t off = (size_t)((char *)p - region);
    return p && off < REGION_BYTES ? class_bytes[page_list[off >> PAGE_SHIFT]] : 0;
}

void *calloc(size_t n, size_t size) {
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    void *p = malloc(total);
    return p ? memset(p, 0, total) : NULL;
}

void *realloc(void *p, size_t size) {
    void *q = malloc(size);
    size_t old = malloc_usable_size(p);
    if (q && p) {
        memcpy(q, p, old < size ? old : size);
        free(p);
    }
    return q;
}

/* Objects of a class are aligned to the largest power of two dividing its
 * size (page aligned above a page); the smallest class so aligned serves. */
void *aligned_alloc(size_t align, size_t size) {
    size_t want = size < align ? align : size;
    want = (want + align - 1) & ~(align - 1);
    return align <= PAGE_BYTES ? malloc(want) : NULL;
}

void *memalign(size_t align, size_t size) { return aligned_alloc(align, size); }

int posix_memalign(void **out, size_t align, size_t size) {
    void *p = aligned_alloc(align, size);
    if (!p)
        return ENOMEM;
    *out = p;
    return 0;
}
