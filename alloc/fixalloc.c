/*
 * fixalloc.c — fixed-size allocator for gomalloc's own metadata (Go's fixalloc).
 *
 * Spans, thread caches, arena and huge block descriptors live here, never in
 * the heap they describe and never in memory from malloc.  Each gm_fixalloc_t serves one
 * object size: freed objects go on its free list and are reused first; new ones
 * are carved from chunks mapped straight from the OS.  Chunks are never
 * returned: metadata is small next to the heap it describes and is reused.
 *
 * Invariants:
 *   1. Objects handed out are zeroed (free-list objects are cleared on reuse;
 *      chunk memory is fresh from mmap).
 *   2. Every object is aligned to 64 bytes when its size is a multiple of 64,
 *      to 16 otherwise, so hot metadata does not share cache lines by accident.
 *
 * Locking: one lock (fixalloc_lock) guards every gm_fixalloc_t and the mapped
 * counter.  It is the innermost lock in gomalloc's order.
 */
#include <string.h>

#include "internal.h"

#define CHUNK_SIZE ((size_t)256 << 10)

static gm_lock_t fixalloc_lock = GM_LOCK_INIT;
static uint64_t mapped_bytes;   /* fixalloc lock */

static size_t object_align(size_t size) {
    return (size % GM_CACHELINE == 0) ? GM_CACHELINE : 16;
}

void *gm_fixalloc_alloc(gm_fixalloc_t *fa) {
    void *obj;
    gm_lock(&fixalloc_lock);
    if (fa->free_list) {
        obj = fa->free_list;
        fa->free_list = *(void **)obj;
        memset(obj, 0, fa->size);
    } else {
        size_t align = object_align(fa->size);
        size_t pad = (align - ((uintptr_t)fa->chunk & (align - 1))) & (align - 1);
        if (!fa->chunk || fa->chunk_left < pad + fa->size) {
            size_t len = fa->size > CHUNK_SIZE ? fa->size : CHUNK_SIZE;
            char *chunk = gm_os_map(len);
            if (!chunk) {
                gm_unlock(&fixalloc_lock);
                return NULL;
            }
            __atomic_fetch_add(&mapped_bytes, len, __ATOMIC_RELAXED);
            fa->chunk = chunk;
            fa->chunk_left = len;
            pad = 0;
        }
        obj = fa->chunk + pad;
        fa->chunk += pad + fa->size;
        fa->chunk_left -= pad + fa->size;
    }
    fa->in_use++;
    gm_unlock(&fixalloc_lock);
    return obj;
}

void gm_fixalloc_free(gm_fixalloc_t *fa, void *obj) {
    gm_lock(&fixalloc_lock);
    *(void **)obj = fa->free_list;
    fa->free_list = obj;
    fa->in_use--;
    gm_unlock(&fixalloc_lock);
}

uint64_t gm_fixalloc_mapped(void) {
    return __atomic_load_n(&mapped_bytes, __ATOMIC_RELAXED);
}

gm_lock_t *gm_fixalloc_lockp(void) { return &fixalloc_lock; }
