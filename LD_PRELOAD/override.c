/*
 * override.c — the C library's allocation names, as aliases of gomalloc's.
 *
 * Linked into lib/libgomalloc.so (for LD_PRELOAD and -lgomalloc) and
 * lib/libgomalloc.a, never into the core archive the unit tests use, so the
 * core can be tested beside glibc's malloc.  Every name a program or glibc
 * itself may call must resolve here, or a block from one heap reaches the
 * other: the standard names, the memalign family, and glibc's internal
 * __libc_* entry points.  mallinfo, mallinfo2, malloc_stats, malloc_info and
 * malloc_trim report and act on gomalloc's heap; mallopt accepts glibc's
 * parameters and ignores them (gomalloc has no such tunables).  The reports
 * take their figures from gm_get_memstats, so they agree with one another.
 *
 * C23's free_sized and free_aligned_sized (glibc 2.36 has neither) are
 * gm_free_sized and gm_free_aligned_sized.  C++'s operator new and delete,
 * every replaceable form, come from cxx_new.c, included below for the same
 * reason as malloc.c: they inline its fast paths.
 *
 * An alias must name a function of its own translation unit, so this file
 * compiles the API layer (alloc/malloc.c) in: malloc is then gm_malloc itself,
 * with no extra call or jump.  The libraries link this object in place of
 * malloc.o.  It is compiled with -fexceptions: a C++ exception (a throwing
 * new-handler, std::bad_alloc) passes through its operator new.
 */
#include "../alloc/malloc.c"

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>

#define ALIAS(target) __attribute__((alias(#target), used, visibility("default")))

void *malloc(size_t size) ALIAS(gm_malloc);
void free(void *ptr) ALIAS(gm_free);
void cfree(void *ptr) ALIAS(gm_free);
void *calloc(size_t n, size_t size) ALIAS(gm_calloc);
void *realloc(void *ptr, size_t size) ALIAS(gm_realloc);
void *reallocarray(void *ptr, size_t n, size_t size) ALIAS(gm_reallocarray);
void *aligned_alloc(size_t align, size_t size) ALIAS(gm_aligned_alloc);
int posix_memalign(void **out, size_t align, size_t size) ALIAS(gm_posix_memalign);
void *memalign(size_t align, size_t size) ALIAS(gm_memalign);
void *valloc(size_t size) ALIAS(gm_valloc);
void *pvalloc(size_t size) ALIAS(gm_pvalloc);
size_t malloc_usable_size(void *ptr) ALIAS(gm_usable_size);
void free_sized(void *ptr, size_t size) ALIAS(gm_free_sized);
void free_aligned_sized(void *ptr, size_t align, size_t size) ALIAS(gm_free_aligned_sized);

/* glibc declares no attributes on its internal names; the aliases inherit
 * gm_*'s, which is what they are. */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmissing-attributes"
#endif
void *__libc_malloc(size_t size) ALIAS(gm_malloc);
void __libc_free(void *ptr) ALIAS(gm_free);
void *__libc_calloc(size_t n, size_t size) ALIAS(gm_calloc);
void *__libc_realloc(void *ptr, size_t size) ALIAS(gm_realloc);
void *__libc_memalign(size_t align, size_t size) ALIAS(gm_memalign);
void *__libc_valloc(size_t size) ALIAS(gm_valloc);
void *__libc_pvalloc(size_t size) ALIAS(gm_pvalloc);

GM_EXPORT int malloc_trim(size_t pad) {
    (void)pad;
    return gm_release();
}

GM_EXPORT void malloc_stats(void) { gm_print_stats(2); }

GM_EXPORT int mallopt(int param, int value) {
    (void)param;
    (void)value;
    return 1;
}

/* glibc's XML (malloc/malloc.c, __malloc_info), with gomalloc's figures:
 * one heap; <sizes> lists each size class's free slots; "fast" is what the
 * thread caches hold, "rest" the other free bytes still backed, "mmap" the
 * huge blocks.  The XML is built whole before the stream is touched (see
 * gm_malloc_info_xml): fwrite may allocate, which is then an ordinary call.
 * stdio is used here, in the override, after the allocator's work is done,
 * never inside it. */
GM_EXPORT int malloc_info(int options, FILE *fp) {
    size_t len, cap;
    if (options != 0 || !fp)
        return EINVAL;   /* glibc returns it, and sets no errno */
    char *xml = gm_malloc_info_xml(&len, &cap);
    if (!xml)
        return -1;
    size_t put = fwrite(xml, 1, len, fp);
    gm_malloc_info_done(xml, cap);
    return put == len ? 0 : -1;
}

static size_t clamp_int(uint64_t v) { return v > (uint64_t)__INT_MAX__ ? (size_t)__INT_MAX__ : v; }

/* glibc's fields from the same snapshot as every other report: arena is
 * what the heap arenas hold committed, uordblks the program's bytes in them
 * and fordblks the rest (arena = uordblks + fordblks, as in glibc); hblks
 * and hblkhd the huge blocks, each in its own mapping; fsmblks what the
 * thread caches hold (glibc's fastbins play that part); usmblks the peak in
 * spans.  So uordblks + hblkhd is gm_memstats' in_use. */
GM_EXPORT struct mallinfo2 mallinfo2(void) {
    struct gm_memstats m;
    struct mallinfo2 mi = {0};
    gm_read_memstats(&m);
    uint64_t huge_committed = m.huge.bytes;
    mi.arena = m.committed > huge_committed ? m.committed - huge_committed : 0;
    mi.hblks = m.huge.blocks;
    mi.hblkhd = m.huge.bytes;
    mi.uordblks = m.in_use - m.huge.bytes;
    mi.fordblks = mi.arena > mi.uordblks ? mi.arena - mi.uordblks : 0;
    mi.fsmblks = m.thread_caches + m.parked_caches;
    mi.usmblks = m.peak_in_spans;
    mi.keepcost = 0;
    return mi;
}

GM_EXPORT struct mallinfo mallinfo(void) {
    struct mallinfo2 m2 = mallinfo2();
    struct mallinfo mi = {0};
    mi.arena = (int)clamp_int(m2.arena);
    mi.hblkhd = (int)clamp_int(m2.hblkhd);
    mi.uordblks = (int)clamp_int(m2.uordblks);
    mi.fordblks = (int)clamp_int(m2.fordblks);
    mi.fsmblks = (int)clamp_int(m2.fsmblks);
    mi.hblks = (int)clamp_int(m2.hblks);
    mi.usmblks = (int)clamp_int(m2.usmblks);
    return mi;
}

#include "cxx_new.c"
