/*
 * gomalloc.h — the public, prefixed API of gomalloc.
 *
 * Every function behaves like its glibc counterpart without the "gm_" prefix:
 * failures return NULL with errno = ENOMEM (gm_posix_memalign returns the error
 * instead and leaves errno alone), gm_malloc(0) returns a unique pointer that
 * gm_free accepts, gm_realloc(p, 0) frees p and returns NULL, and every block is
 * aligned to at least 16 bytes.  gm_free of a pointer that gomalloc never handed
 * out prints one line on stderr and aborts.
 *
 * Programs that want gomalloc behind the standard names (malloc, free, ...,
 * and C++'s operator new and delete) link with -lgomalloc (pkg-config --libs
 * gomalloc) or run under LD_PRELOAD=libgomalloc.so; the prefixed names are
 * exported by the same library and always reach gomalloc.  See gomalloc(3).
 *
 * None of these functions is async-signal-safe.
 */
#ifndef GOMALLOC_H
#define GOMALLOC_H

#include <stddef.h>
#include <stdint.h>

/* The version of this header.  These three numbers are the only place the
 * version is written down: the build takes the library's soname
 * (libgomalloc.so.MAJOR), gomalloc.pc, the CMake package and the manual pages
 * from them.  MAJOR changes when the ABI does. */
#define GOMALLOC_VERSION_MAJOR 0
#define GOMALLOC_VERSION_MINOR 1
#define GOMALLOC_VERSION_PATCH 0

#define GOMALLOC_VERSION_STR_(x) #x
#define GOMALLOC_VERSION_STR(x) GOMALLOC_VERSION_STR_(x)
/* "MAJOR.MINOR.PATCH", e.g. "0.1.0". */
#define GOMALLOC_VERSION_STRING                                   \
    GOMALLOC_VERSION_STR(GOMALLOC_VERSION_MAJOR) "."              \
    GOMALLOC_VERSION_STR(GOMALLOC_VERSION_MINOR) "."              \
    GOMALLOC_VERSION_STR(GOMALLOC_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define GM_API_MALLOC __attribute__((malloc, warn_unused_result))
#define GM_API_SIZE(...) __attribute__((alloc_size(__VA_ARGS__)))
#else
#define GM_API_MALLOC
#define GM_API_SIZE(...)
#endif

GM_API_MALLOC GM_API_SIZE(1) void *gm_malloc(size_t size);
void gm_free(void *ptr);
GM_API_MALLOC GM_API_SIZE(1, 2) void *gm_calloc(size_t count, size_t size);
GM_API_SIZE(2) void *gm_realloc(void *ptr, size_t size);
GM_API_SIZE(2, 3) void *gm_reallocarray(void *ptr, size_t count, size_t size);
GM_API_MALLOC GM_API_SIZE(2) void *gm_aligned_alloc(size_t alignment, size_t size);
int gm_posix_memalign(void **out, size_t alignment, size_t size);
GM_API_MALLOC GM_API_SIZE(2) void *gm_memalign(size_t alignment, size_t size);
GM_API_MALLOC GM_API_SIZE(1) void *gm_valloc(size_t size);
GM_API_MALLOC void *gm_pvalloc(size_t size);

/* Bytes usable at ptr (>= the size requested; stable for the block's life).
 * gm_usable_size(NULL) is 0. */
size_t gm_usable_size(const void *ptr);

/* C23's free_sized and free_aligned_sized (also exported under those names
 * by libgomalloc): gm_free for a block whose requested size (and, for the
 * second, the alignment it was asked with) the caller knows.  With
 * GOMALLOC_DEBUG=1 a size or alignment that does not match the block is
 * reported and the program aborts; otherwise they cost what gm_free does. */
void gm_free_sized(void *ptr, size_t size);
void gm_free_aligned_sized(void *ptr, size_t alignment, size_t size);

/* The usable size gm_malloc(size) would give (what gm_usable_size would then
 * say), for containers that round their capacity up to it; 0 for a size no
 * block can have (above PTRDIFF_MAX). */
size_t gm_good_size(size_t size);

/* The library's version at run time, "MAJOR.MINOR.PATCH"
 * (GOMALLOC_VERSION_STRING of the header it was built with). */
const char *gm_version(void);

/* Returns every free page to the operating system now, including what the
 * calling thread's cache and the central lists hold.  Returns 1 if any memory
 * was released, 0 otherwise (as glibc's malloc_trim). */
int gm_release(void);

/* A snapshot of the heap.  Byte counts; consistent within a few cache batches
 * while other threads allocate. */
struct gm_stats {
    uint64_t mapped;          /* address space reserved from the OS */
    uint64_t committed;       /* readable and writable (not PROT_NONE) */
    uint64_t released;        /* committed but handed back with madvise */
    uint64_t heap_in_use;     /* pages in spans and large blocks */
    uint64_t heap_free;       /* free pages still backed (not released) */
    uint64_t small_in_use;    /* bytes in small blocks handed to the program */
    uint64_t large_in_use;    /* bytes in large blocks handed to the program */
    uint64_t cached;          /* bytes in thread caches and central batches */
    uint64_t metadata;        /* bytes of internal metadata */
    uint64_t huge_mapped;     /* bytes in direct mappings for huge blocks */
    uint64_t threads;         /* live thread caches */
};
void gm_get_stats(struct gm_stats *out);

/* Writes a human-readable report (malloc_stats format) to file descriptor fd
 * without allocating: the totals and a table per size class. */
void gm_print_stats(int fd);

/* Detailed statistics, in the spirit of Go's runtime.MemStats.
 *
 * Versioned: the caller passes the size of the struct it was compiled with
 * (gm_read_memstats does), the library fills that much of it, sets version
 * and size to what it filled, and zeroes any part it does not know.  Fields
 * are only ever added at the end (GM_MEMSTATS_VERSION then grows), so a
 * program built against an older header keeps working with a newer library
 * and the other way round.  Returns the number of bytes filled.
 *
 * Exactness (see gomalloc(3), STATISTICS): byte and object figures that
 * describe the heap (in spans, idle, released, obtained, metadata, spans
 * per class) are exact when taken; figures about what the program holds
 * (in use, objects in use, in thread caches) are exact when no other thread
 * is inside an allocation call, and otherwise off by what those calls moved.
 * Allocation and free counts are folded in when a thread's cache goes to
 * the central lists (as Go's mcache does), so each is a lower bound, an
 * allocation and a free that one thread's cache served on its own between
 * two such trips cancelling out; allocations - frees is exact. */
#define GM_MEMSTATS_VERSION 1
#define GM_MEMSTATS_MAX_CLASSES 96   /* room for the size-class table to grow */

struct gm_class_stats {
    uint64_t object_size;     /* bytes per object in this class */
    uint64_t objects_in_use;  /* handed to the program, not freed */
    uint64_t spans;           /* spans of this class */
    uint64_t span_bytes;      /* bytes in those spans */
    uint64_t unused_bytes;    /* span bytes not in use: free slots, cached objects, tails */
    uint64_t allocs, frees;   /* counts, see above */
};

struct gm_block_stats {       /* large (> 32 KiB, in arenas) or huge (own mapping) */
    uint64_t blocks;          /* blocks out of the page heap (incl. a thread's page cache) */
    uint64_t bytes;           /* their bytes */
    uint64_t cached_bytes;    /* of which freed, kept in threads' page caches */
    uint64_t allocs, frees;   /* trips to the page heap */
};

struct gm_memstats {
    uint32_t version;         /* GM_MEMSTATS_VERSION of the library that filled it */
    uint32_t size;            /* bytes it filled */
    /* Totals, bytes. */
    uint64_t in_use;          /* handed to the program: small + large + huge */
    uint64_t in_spans;        /* pages in small spans and large/huge blocks */
    uint64_t idle;            /* free pages still backed by memory */
    uint64_t released;        /* free pages given back to the OS (reserved, no memory) */
    uint64_t obtained;        /* address space reserved from the OS, incl. metadata */
    uint64_t committed;       /* of which readable and writable */
    uint64_t metadata;        /* gomalloc's own structures */
    uint64_t thread_caches;   /* free objects and pages in live threads' caches */
    uint64_t parked_caches;   /* free objects in caches of exited threads, kept */
    uint64_t parked_batches;  /* free objects in the central lists' ready batches */
    uint64_t peak_in_spans;   /* highest in_spans so far */
    uint64_t allocs, frees;   /* counts over every class, large and huge */
    uint64_t threads;         /* live thread caches */
    /* Per size class, 1 .. nclasses - 1 (class 0 is unused). */
    uint32_t nclasses;
    uint32_t reserved0;
    struct gm_class_stats classes[GM_MEMSTATS_MAX_CLASSES];
    struct gm_block_stats large, huge;
};
size_t gm_get_memstats(struct gm_memstats *out, size_t size);
#define gm_read_memstats(p) gm_get_memstats((p), sizeof *(p))

/* The report of gm_print_stats as one JSON object (the fields above). */
void gm_print_stats_json(int fd);

/* Writes an SVG map of the process's address space to path: the mappings
 * of /proc/self/maps, gomalloc's arenas with their spans coloured by size
 * class and shaded by occupancy, free and released pages, a legend and
 * scales (what GOMALLOC_HEAPMAP=path writes at exit).  Returns 0, or -1 with
 * errno set.  Allocates nothing through malloc. */
int gm_heapmap_write(const char *path);

/* Writes the sampled heap profile to path (a %p in it becomes the pid) in
 * pprof's format (profile.proto): alloc_objects, alloc_space, inuse_objects
 * and inuse_space per stack, scaled up for sampling, with the process's
 * mappings, for `go tool pprof PROGRAM path`.  Sampling is on when
 * GOMALLOC_PROFILE or GOMALLOC_PROFILE_RATE is set (one block per 512 KiB
 * allocated on average); otherwise the profile is empty.  Returns 0, or -1
 * with errno set.  Allocates nothing through malloc. */
int gm_profile_write(const char *path);

#ifdef __cplusplus
}
#endif
#endif /* GOMALLOC_H */
