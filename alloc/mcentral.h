/*
 * mcentral.h — the central lists' interface (alloc/mcentral.c): batch sizes,
 * the buffers batches travel in, taking and giving batches, draining, and
 * the shards.  For the thread caches above (mcache, cachebound), the paths
 * that serve calls without a cache (raw.c, malloc.c), fork and statistics.
 *
 * Locking: see mcentral.c; nothing here is inline but gm_transfer_count,
 * which reads only the immutable class tables.
 */
#ifndef GM_MCENTRAL_H
#define GM_MCENTRAL_H

#include "internal.h"

#pragma GCC visibility push(hidden)

/* Objects moved between a thread cache and the mcentral at a time: the size
 * table's batch, cut to GM_TRANSFER_BYTES but never below
 * GM_TRANSFER_MIN_OBJECTS (nor above the table's batch).  A thread cache and
 * the mcentral each hold about one such batch of every class in use, so for
 * the small classes its bytes, not its object count, set their memory.  The
 * floor is for the classes above 1 KiB, where 8 KiB is one to seven objects
 * and every transfer pays a mcentral lock round trip (and, for the classes
 * with one object per span, a heap lock round trip per object): with a
 * floor of 2, bench/fastpath 8192 ran 549M instructions (callgrind), with 8
 * 435M.  Their transfers are then at most 64 KiB (the table's batch, close
 * to tcmalloc's, caps the biggest classes).  The classes up to 64 bytes move
 * 128 objects at a time (tcmalloc's 32 until 2026-12): where one thread
 * frees what another allocates, each transfer is a lock whose line crosses
 * between the cores, and bench/xmalloc (64-byte blocks) took 0.24 s with 32
 * and 0.18 s with 128 with one pair of threads, 0.26 and 0.19 s with two
 * (wall, 5 interleaved runs; mimalloc 0.19 s with two).  What it costs:
 * prodcons's peaks 10-16% higher (a consumer holds a batch of each class),
 * and a buffer of 1 KiB per parked batch. */
#define GM_TRANSFER_BYTES ((uint32_t)8 << 10)
#define GM_TRANSFER_MIN_OBJECTS 8u
/* The table's largest batch (tools/mksizeclasses.c, BATCH_MAX): a batch's
 * addresses fit in an array of this many on the stack. */
#define GM_TRANSFER_MAX_OBJECTS 128u
static inline uint32_t gm_transfer_count(uint8_t cls) {
    uint32_t by_bytes = GM_TRANSFER_BYTES / gm_class_size[cls];
    uint32_t batch = gm_class_batch[cls];
    by_bytes = by_bytes < GM_TRANSFER_MIN_OBJECTS ? GM_TRANSFER_MIN_OBJECTS : by_bytes;
    batch = batch < GM_TRANSFER_MAX_OBJECTS ? batch : GM_TRANSFER_MAX_OBJECTS;
    return by_bytes < batch ? by_bytes : batch;
}
/* A batch's addresses, obj[first] to obj[first + count - 1], in the order of
 * their links (word 0, the last one NULL): the buffers that thread caches and
 * the mcentrals' parked stocks trade (mcentral.c).  Cache-line aligned: two
 * buffers in different threads' hands share no line. */
struct gm_batch {
    uint32_t first, count;
    const void *giver;   /* the thread cache that parked it, or NULL */
    void *obj[GM_TRANSFER_MAX_OBJECTS];
} __attribute__((aligned(GM_CACHELINE)));
gm_batch_t *gm_mcentral_batch_new(void);   /* NULL when the OS refuses memory */
void gm_mcentral_batch_free(gm_batch_t *b);   /* b may be NULL */
/* Moves up to n objects of class cls into a list; returns how many (0 on
 * out-of-memory). */
uint32_t gm_mcentral_take(uint8_t shard, uint8_t cls, uint32_t n, void **head, void **tail);
/* The same, for a caller with a spare buffer *spare (or NULL): a whole
 * parked batch is handed over by swapping buffers, *spare then the batch's
 * own (its contents no longer needed). */
uint32_t gm_mcentral_take_batch(uint8_t shard, uint8_t cls, uint32_t n, void **head,
                                void **tail, gm_batch_t **spare);
/* Gives back the objects the buffer *bp lists (first 0).  When they are
 * parked, *bp becomes an empty buffer of the stock's (NULL if it had none);
 * else they go to their spans and *bp stays the caller's. */
void gm_mcentral_give_batch(uint8_t shard, uint8_t cls, gm_batch_t **bp);
/* Gives back a list of n objects of class cls (linked through word 0). */
void gm_mcentral_give(uint8_t shard, uint8_t cls, void *head, void *tail, uint32_t n);
/* Returns every batch the class holds to its spans and empty spans to the heap. */
void gm_mcentral_drain(uint8_t cls);
gm_lock_t *gm_mcentral_lockp(uint8_t shard, uint8_t cls);   /* for fork (malloc.c) */
/* Shards in use (a power of two, at most GM_SHARDS_MAX): set once by
 * gm_mcentral_init, before the program's threads. */
extern uint32_t gm_shards;
void gm_mcentral_init(void);
struct gm_central_stats { uint64_t out_bytes, batch_bytes; };
void gm_mcentral_stats(struct gm_central_stats *out);

#pragma GCC visibility pop

#endif /* GM_MCENTRAL_H */
