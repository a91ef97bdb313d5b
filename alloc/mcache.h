/*
 * mcache.h — the inline fast paths of the per-thread cache.
 *
 * malloc: size -> class by one table load; pop the head of the thread's list
 * for that class.  Falls back (returns NULL) when the size is not small or
 * the list is empty (always so for a thread without a cache: its pointer
 * leads to gm_mcache_empty).  No lock, no atomic read-modify-write.
 *
 * free: address -> arena -> page info (class and the page's offset in its
 * span), check the address is the start of an object (one multiply and one
 * compare against the thread's copy of the class tables — zero in the empty
 * cache, so a thread without a cache falls back here) and not already free,
 * push it on the thread's list.  Falls back when the block is not small
 * (large, huge, foreign), is not an object start or is already free (the
 * slow path reports it), or the list is full (the slow path flushes a
 * batch).  Links are encoded (see hardening.h).
 */
#ifndef GM_MCACHE_H
#define GM_MCACHE_H

#include "hardening.h"
#include "internal.h"
#include "mcentral.h"
#include "scavenger.h"

extern __thread gm_mcache_t *gm_tls_cache __attribute__((tls_model("initial-exec")));

GM_INLINE void *gm_mcache_alloc_fast(size_t size) {
    if (GM_UNLIKELY(size > GM_MAX_SMALL_SIZE))
        return NULL;
    gm_mcache_t *c = gm_tls_cache;
    uint8_t cls = gm_size_class(size);
    void *p = c->head[cls];
    if (GM_LIKELY(p)) {
        c->head[cls] = gm_link_get(p);
        c->room[cls]++;
        gm_block_handout(p);
    }
    return p;
}

/* Returns false when the slow path must handle ptr.  Class 0 (not a small
 * span's page) fails the start test too: its limit is 0. */
GM_INLINE bool gm_mcache_free_fast(void *ptr) {
    uint8_t cls;
    uint64_t offset;
    if (GM_UNLIKELY(!gm_pagemap_locate((uintptr_t)ptr, &cls, &offset)))
        return false;
    gm_mcache_t *c = gm_tls_cache;
    uintptr_t key = gm_free_key;
    if (GM_UNLIKELY(offset * c->start_magic[cls] >= c->start_limit[cls] ||
                    gm_block_is_free_key(ptr, key)))
        return false;
    void **list = &c->head[cls];
    gm_block_free_link_key(ptr, *list, key);
    *list = ptr;
    if (GM_UNLIKELY(--c->room[cls] < 0))
        gm_mcache_overflow(c, list);
    return true;
}

/* The class of ptr if it is the start of a small block that is not free,
 * else 0 (large, huge, foreign, interior or freed: the caller's slow lookup
 * decides).  The free fast path's checks, against the global tables. */
GM_INLINE uint8_t gm_small_class_of(const void *ptr) {
    uint8_t cls;
    uint64_t offset;
    if (!gm_pagemap_locate((uintptr_t)ptr, &cls, &offset) ||
        !gm_class_is_start(cls, offset) || gm_block_is_free(ptr))
        return 0;
    return cls;
}

/* The calling thread's cache, or NULL if it has none (yet, or any more). */
static inline gm_mcache_t *gm_mcache_current(void) {
    gm_mcache_t *c = gm_tls_cache;
    return c == &gm_mcache_empty ? NULL : c;
}

/* Objects on list cls of cache c. */
static inline uint32_t gm_mcache_length(const gm_mcache_t *c, uint8_t cls) {
    return (uint32_t)((int64_t)c->max[cls] - c->room[cls]);
}

#endif /* GM_MCACHE_H */
