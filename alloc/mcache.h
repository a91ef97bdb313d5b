/*
 * mcache.h — the inline fast paths of the per-thread cache.
 *
 * malloc: size -> class by one table load; pop the head of the thread's list
 * for that class.  Falls back (returns NULL) when the size is not small, the
 * thread has no cache yet, or the list is empty.  About a dozen instructions,
 * no lock, no atomic read-modify-write.
 *
 * free: address -> arena -> page info (class and page index within the span),
 * check the address is the start of an object and not already free, push it
 * on the thread's list.  Falls back when the block is not small (large, huge,
 * foreign), is not an object start or is already free (the slow path reports
 * it), the thread has no cache, or the list grew past its bound (then the
 * slow path flushes a batch).  Links are encoded (see internal.h).
 */
#ifndef GM_MCACHE_H
#define GM_MCACHE_H

#include "internal.h"

extern __thread gm_mcache_t *gm_tls_cache __attribute__((tls_model("initial-exec")));

GM_INLINE void *gm_mcache_alloc_fast(size_t size) {
    if (GM_UNLIKELY(size > GM_MAX_SMALL_SIZE))
        return NULL;
    gm_mcache_t *c = gm_tls_cache;
    if (GM_UNLIKELY(!c))
        return NULL;
    gm_bin_t *b = &c->bins[gm_size_to_class[(size + 15) >> 4]];
    void *p = b->head;
    if (GM_LIKELY(p)) {
        b->head = gm_link_get(p);
        b->count--;
        gm_block_handout(p);
    }
    return p;
}

/* Returns false when the slow path must handle ptr.  Class 0 (not a small
 * span's page) fails the start test too: its limit is 0. */
GM_INLINE bool gm_mcache_free_fast(void *ptr) {
    uintptr_t addr = (uintptr_t)ptr;
    gm_arena_t *a = gm_pagemap_arena(addr);
    if (GM_UNLIKELY(!a))
        return false;
    gm_page_info_t info = a->page_info[gm_page_index(addr)];
    uint8_t cls = gm_page_info_class(info);
    uint64_t offset = (addr & (GM_PAGE_SIZE - 1)) | gm_page_info_offset(info);
    gm_mcache_t *c = gm_tls_cache;
    if (GM_UNLIKELY(!gm_class_is_start(cls, offset) || !c || gm_block_is_free(ptr)))
        return false;
    gm_bin_t *b = &c->bins[cls];
    gm_block_free_link(ptr, b->head);
    b->head = ptr;
    if (GM_UNLIKELY(++b->count > b->max))
        gm_mcache_flush_slow(c, cls);
    return true;
}

#endif /* GM_MCACHE_H */
