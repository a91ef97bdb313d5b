/*
 * cachebound.h — the interface of cachebound.c (how much a thread cache may
 * hold) for mcache.c, which calls it at each refill, overflow, trim and
 * thread exit.  Locking: see cachebound.c.
 */
#ifndef GM_CACHEBOUND_H
#define GM_CACHEBOUND_H

#include "internal.h"
#include "mcentral.h"

#pragma GCC visibility push(hidden)

/* A new (or adopted) cache's bound: bound bytes, nothing earned. */
void gm_cachebound_start(gm_mcache_t *c, size_t bound);
/* List cls ran dry and was refilled: it may grow (slow start, or a batch if
 * it also overflowed since the last trim). */
void gm_cachebound_refilled(gm_mcache_t *c, uint8_t cls);
/* List cls overflowed and gave a batch back: grow in slow start, or shrink
 * after a run of overflows with no refill. */
void gm_cachebound_overflowed(gm_mcache_t *c, uint8_t cls);
/* A batch off list cls's bound, not below one batch; the caller brings a
 * longer list back within it. */
void gm_cachebound_shrink(gm_mcache_t *c, uint8_t cls);
/* List cls was refilled with a batch the thread itself had parked: the
 * bound may rise by the batch's bytes (at most GM_TRANSFER_BYTES). */
void gm_cachebound_took_own(gm_mcache_t *c, uint8_t cls);
/* Gives what c earned back to the budget (the thread exits). */
void gm_cachebound_give_back(gm_mcache_t *c);
static inline bool gm_class_bit(const uint64_t bits[2], uint8_t cls) {
    return (bits[cls / 64] >> (cls % 64)) & 1;
}
static inline void gm_set_class_bit(uint64_t bits[2], uint8_t cls) {
    bits[cls / 64] |= (uint64_t)1 << (cls % 64);
}

#pragma GCC visibility pop

#endif /* GM_CACHEBOUND_H */
