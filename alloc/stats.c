/*
 * stats.c — gathers gomalloc's statistics (struct gm_memstats, gomalloc.h):
 * totals, a row per size class, large and huge blocks.
 *
 * Where each figure comes from, and how exact it is:
 *   - per class allocations and frees: the thread caches' counts, folded in
 *     on their slow paths (mcache.c, "Counting"): lower bounds whose
 *     difference, the objects in use, is exact while no other thread is
 *     inside a call;
 *   - objects cached per class: the caches' list lengths, read racily;
 *   - spans and span bytes per class: a walk of every heap arena's page info
 *     under the heap lock (gm_mheap_visit): exact when taken;
 *   - page-heap totals (in spans, idle, released, reserved, peak): the mheap's
 *     own counters, under its lock: exact;
 *   - large and huge blocks: the mheap's counts of blocks out, and the
 *     trips to and from the page heap counted by the mheap (gm_mheap_count_trip,
 *     a relaxed atomic add on the slow paths that make those trips).  A
 *     block a thread's page cache hands back out is not a new trip.
 * Nothing here is touched by the fast paths.
 *
 * Locking: takes the registry lock, then each mcentral lock (through
 * gm_mcentral_stats), then the heap lock, one at a time; never two at once.
 */
#include <string.h>

#include "gomalloc.h"
#include "internal.h"
#include "mcentral.h"


/* ---- spans per class: a walk of the heap arenas ------------------------- */

struct span_count {
    uint64_t spans[GM_NUM_CLASSES];
    uint64_t pages[GM_NUM_CLASSES];
};

/* Heap lock held.  A small span's first page has page index 0 in its page
 * info; its span struct gives its length. */
static void count_spans(const gm_arena_t *a, void *arg) {
    struct span_count *sc = arg;
    uint32_t committed = (uint32_t)((a->commit_end - a->base) >> GM_PAGE_SHIFT);
    for (uint32_t p = (uint32_t)((a->lo - a->base) >> GM_PAGE_SHIFT); p < committed; p++) {
        gm_page_info_t info = a->page_info[p];
        uint8_t cls = gm_page_info_class(info);
        if (!cls || gm_page_info_index(info) != 0 || !a->spans[p])
            continue;
        sc->spans[cls]++;
        sc->pages[cls] += a->spans[p]->npages;
    }
}

/* ---- the whole snapshot ------------------------------------------------- */

static void fill_classes(struct gm_memstats *m, uint64_t *small_in_use) {
    struct span_count sc;
    uint64_t mallocs[GM_NUM_CLASSES], frees[GM_NUM_CLASSES], cached[GM_NUM_CLASSES];
    gm_mcache_class_counts(mallocs, frees, cached);
    memset(&sc, 0, sizeof sc);
    gm_mheap_visit(count_spans, &sc);
    m->nclasses = GM_NUM_CLASSES;
    *small_in_use = 0;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        struct gm_class_stats *c = &m->classes[cls];
        c->object_size = gm_class_size[cls];
        c->allocs = mallocs[cls];
        c->frees = frees[cls];
        c->objects_in_use = mallocs[cls] > frees[cls] ? mallocs[cls] - frees[cls] : 0;
        c->spans = sc.spans[cls];
        c->span_bytes = sc.pages[cls] * GM_PAGE_SIZE;
        uint64_t used = c->objects_in_use * c->object_size;
        c->unused_bytes = c->span_bytes > used ? c->span_bytes - used : 0;
        *small_in_use += used;
        m->allocs += c->allocs;
        m->frees += c->frees;
    }
}

static void fill_blocks(struct gm_memstats *m, const struct gm_heap_stats *h, uint64_t page_cached) {
    m->huge.blocks = h->huge_blocks;
    m->huge.bytes = h->huge;
    m->large.blocks = h->large_blocks - h->huge_blocks;
    m->large.bytes = h->large_bytes - h->huge;
    m->large.cached_bytes = page_cached;
    struct gm_block_stats *b[2] = {&m->large, &m->huge};
    uint64_t trips[2][2];
    gm_mheap_trips(trips);
    for (int k = 0; k < 2; k++) {
        b[k]->allocs = trips[k][0];
        b[k]->frees = trips[k][1];
        m->allocs += b[k]->allocs;
        m->frees += b[k]->frees;
    }
}

static void fill(struct gm_memstats *m) {
    struct gm_heap_stats h;
    struct gm_central_stats central;
    uint64_t small_in_use, page_cached;
    size_t parked_bytes;
    memset(m, 0, sizeof *m);
    m->version = GM_MEMSTATS_VERSION;
    fill_classes(m, &small_in_use);
    uint64_t cached = gm_mcache_cached_bytes(&page_cached);   /* live and parked */
    gm_mcache_parked(&parked_bytes);
    gm_mcentral_stats(&central);
    gm_mheap_stats(&h);
    fill_blocks(m, &h, page_cached);
    uint64_t large_in_use = m->large.bytes > page_cached ? m->large.bytes - page_cached : 0;
    m->in_use = small_in_use + large_in_use + m->huge.bytes;
    m->in_spans = h.in_use;
    m->idle = h.free;
    m->released = h.released;
    m->metadata = gm_fixalloc_mapped();
    m->obtained = h.mapped + m->metadata;
    m->committed = h.committed;
    m->parked_caches = parked_bytes;
    m->thread_caches = (cached > parked_bytes ? cached - parked_bytes : 0) + page_cached;
    m->parked_batches = central.batch_bytes;
    m->peak_in_spans = h.peak_in_use;
    m->threads = gm_mcache_count();
}

/* Filled on the stack (about 6 KiB) and copied: a caller built with an
 * older, smaller struct gets its part.  No lock of its own, so a fork
 * finds none held here. */
GM_EXPORT size_t gm_get_memstats(struct gm_memstats *out, size_t size) {
    struct gm_memstats snap;
    if (!out)
        return 0;
    gm_init();
    size_t n = size < sizeof snap ? size : sizeof snap;
    fill(&snap);
    snap.size = (uint32_t)n;
    memcpy(out, &snap, n);
    if (size > n)
        memset((char *)out + n, 0, size - n);
    return n;
}
