/*
 * config.h — compile-time knobs and the constants every layer shares.
 *
 * Variants (set with -D on the compiler line; the Makefile maps them):
 *   GM_DEBUG=1     check internal assertions on slow paths (gm_assert); off, the
 *                  checks expand to nothing.
 *   GM_CHECKS=1    run the validators (gm_*_check_locked: a span's object
 *                  count, the partial lists, the arenas' page bits, the huge
 *                  descriptors) each time a slow path drops the mcentral or
 *                  heap lock, and abort on a broken invariant (make CHECKS=1;
 *                  the ASan and stress tests use it).  Off, the validators are
 *                  not compiled: GM_CHECK(...) expands to nothing.
 *   GM_VALGRIND=1  tell memcheck about blocks with client requests (make
 *                  VALGRIND=1; needs the valgrind package's headers).
 *
 * Geometry: 8 KiB pages, grouped into 64 MiB arenas.  An arena is the unit of
 * address-space reservation and of the pagemap (one arena-map entry per 64 MiB
 * of address space, one page-info entry per page inside the arena).
 */
#ifndef GM_CONFIG_H
#define GM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#ifndef GM_DEBUG
#define GM_DEBUG 0
#endif
#ifndef GM_VALGRIND
#define GM_VALGRIND 0
#endif
#ifndef GM_CHECKS
#define GM_CHECKS 0
#endif

#define GM_LIKELY(x) __builtin_expect(!!(x), 1)
#define GM_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define GM_NOINLINE __attribute__((noinline))
#define GM_COLD __attribute__((cold, noinline))
#define GM_INLINE static inline __attribute__((always_inline))
#define GM_EXPORT __attribute__((visibility("default")))
#define GM_CACHELINE 64

/* Address space: x86-64 and arm64 user space is below 2^47. */
#define GM_ADDRESS_BITS 47

/* Arena: 64 MiB of address space, 8192 pages. */
#define GM_ARENA_SHIFT 26
#define GM_ARENA_SIZE ((uintptr_t)1 << GM_ARENA_SHIFT)
#define GM_ARENA_PAGES (GM_ARENA_SIZE >> 13)
#define GM_ARENA_MAP_ENTRIES ((uintptr_t)1 << (GM_ADDRESS_BITS - GM_ARENA_SHIFT))
#define GM_ARENA_BITMAP_WORDS (GM_ARENA_PAGES / 64)
/* Run-length classes of the page search hints: 2^0 .. 2^13 pages. */
#define GM_RUN_CLASSES 14

/* A chunk: 2 MiB, one huge page, the unit in which the scavenger judges
 * how long free memory has idled and gives it back. */
#define GM_CHUNK_PAGES 256
#define GM_ARENA_CHUNKS (GM_ARENA_PAGES / GM_CHUNK_PAGES)

/* Committing grows an arena's readable range in steps of this size, so a run
 * of small span allocations costs one mprotect per 2 MiB, not one per span. */
#define GM_COMMIT_STEP ((uintptr_t)2 << 20)

/* Blocks at or above this size get a mapping of their own (see huge.c)
 * unless free arena pages would fault in fewer pages; blocks above
 * GM_BIG_MIN go where they fault in fewest ("one pool for big blocks"). */
#define GM_HUGE_THRESHOLD ((size_t)32 << 20)
#define GM_BIG_MIN ((size_t)1 << 20)

/* The mcentral is sharded: each thread cache trades with the shard it was
 * given (about one per CPU), so two threads' objects do not come to share
 * cache lines through batches traded between them (see mcentral.c). */
#define GM_SHARDS_MAX 16

/* Large blocks of up to this many pages freed by a thread are kept on its
 * page cache (pagecache.c), up to GM_PAGE_CACHE_BYTES per thread. */
#define GM_PAGE_CACHE_MAX_PAGES 32
#define GM_PAGE_CACHE_BYTES ((size_t)1 << 20)

/* Default bound on the bytes one thread's cache may hold: room for lists of
 * a few transfer batches in every class, which is what lists that allocate
 * and free at random need to stop refilling and flushing often; past that,
 * more only helps long bursts (see mcache.c).  4 MiB cost larson-2 1.4 MiB
 * more peak RSS and saved no time; 1 MiB cost churn-4 about 10% CPU, so 1 MiB
 * is only the floor for a small heap (mcache.c). */
#define GM_THREAD_CACHE_DEFAULT ((size_t)2 << 20)

/* A dead thread's cache is kept whole for the next new thread (mcache.c)
 * while at most this many are kept, holding at most this many bytes in all.
 * bench/threadchurn 1/2/4 (7 runs, interleaved, tcmalloc 0.552/0.597/0.447 s,
 * 8.8-9.2 MiB): none 0.541/0.617/0.513 s at 2.4/2.6/3.0 MiB peak RSS;
 * 256 KiB 0.520/0.621/0.455 s at 2.6/2.7/3.2; 512 KiB 0.584/0.536/0.407 s at
 * 2.7/2.9/3.3; 1 MiB 0.592/0.486/0.357 s at 3.0/3.5/3.6.  512 KiB puts the
 * threaded runs ahead of tcmalloc for a third of 1 MiB's memory. */
#define GM_PARKED_CACHES_MAX 8
#define GM_PARKED_CACHE_BYTES ((size_t)512 << 10)

/* GOMALLOC_GUARD_RATE's default: one block in this many of those passing
 * through the central lists goes on guarded pages (guard.c).  A sample
 * costs about 11 us (its pages mapped and faulted in, unmapped at free, two
 * stacks); the busiest workloads pass 10-22 million blocks a second through
 * the central lists.  Measured at a rate of 1000 (interleaved runs, median
 * CPU time): xmalloc-2 +82%, shuffle +41%, prodcons-4 and cfrac within
 * noise; the cost falls with the rate, so 200000 costs those at most 0.4%. */
#define GM_GUARD_RATE_DEFAULT 200000

#endif /* GM_CONFIG_H */
