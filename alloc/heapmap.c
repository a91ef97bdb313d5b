/*
 * heapmap.c — gm_heapmap_write(path) and GOMALLOC_HEAPMAP: feeds gomalloc's
 * real heap to the SVG writer (gm_heapmap_write_svg, here: a model built by
 * heapmap_model.c, drawn by heapmap_svg.c) as regions (heap arenas and
 * huge blocks' reservations) and spans (small spans with their class and
 * occupancy, large blocks, free and released page runs, huge blocks).
 *
 * The writer pulls spans one at a time; they are read here in batches of
 * up to BATCH pieces, each batch under one heap lock round trip
 * (gm_mheap_visit), resuming at the address where the last batch stopped.
 * No pointer into the heap is kept across batches, so the program's other
 * threads may go on allocating: the picture is then a mix of moments, each
 * batch consistent in itself.  A small span's occupancy is its count of
 * objects out of the span (in a cache or the program), read without its
 * mcentral lock: a picture needs no more.  Pages past an arena's committed
 * end are not listed (the writer draws them as reserved, not yet used).
 *
 * Huge blocks are found through /proc/self/maps: each mapping's 64 MiB slots
 * are looked up in the arena map, which is how free() finds them too; at
 * most MAX_HUGE are drawn.
 *
 * Nothing here allocates through malloc or uses stdio; the context lives in
 * mmap'd scratch.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "gomalloc.h"
#include "heapmap_model.h"
#include "heapmap_svg.h"
#include "internal.h"
#include "report_io.h"

#define BATCH 512
#define MAX_HUGE 4096

struct huge_block {
    uintptr_t lo, hi, base, size;
    bool cached;
};

struct feed {
    /* regions: heap arenas first (by address), then the huge blocks */
    uintptr_t cursor;               /* next address whose pieces are wanted */
    bool heap_done;
    uint32_t region_phase;          /* 0 heap arenas, 1 huge, 2 done */
    uint32_t next_huge;
    uint32_t nhuge;
    struct huge_block huge[MAX_HUGE];
    /* spans: a batch read under the heap lock */
    struct gm_map_span batch[BATCH];
    uint32_t n, at;
    struct gm_map_region regions[BATCH];
};

/* ---- the heap arenas, a batch at a time ------------------------------------ */

static bool page_bit(const uint64_t *bits, uint32_t p) { return (bits[p / 64] >> (p % 64)) & 1; }

static bool push(struct feed *f, uintptr_t base, size_t bytes, uint8_t kind, uint8_t cls,
                 uint16_t permille) {
    if (f->n == BATCH)
        return false;
    f->batch[f->n++] = (struct gm_map_span){base, bytes, kind, cls, permille};
    f->cursor = base + bytes;
    return true;
}

/* Free pages from p on with the same released bit: one piece. */
static uint32_t free_run(const gm_arena_t *a, uint32_t p, uint32_t end) {
    bool released = page_bit(a->released_bits, p);
    uint32_t q = p + 1;
    while (q < end && page_bit(a->free_bits, q) && page_bit(a->released_bits, q) == released)
        q++;
    return q;
}

/* The piece that starts at page p of arena a (heap lock held); how many
 * pages it covers, 0 when the batch is full. */
static uint32_t piece_at(struct feed *f, const gm_arena_t *a, uint32_t p, uint32_t end) {
    uintptr_t addr = a->base + (uintptr_t)p * GM_PAGE_SIZE;
    if (page_bit(a->free_bits, p)) {
        uint32_t q = free_run(a, p, end);
        uint8_t kind = page_bit(a->released_bits, p) ? GM_MAP_RELEASED : GM_MAP_FREE;
        return push(f, addr, (size_t)(q - p) * GM_PAGE_SIZE, kind, 0, 0) ? q - p : 0;
    }
    const gm_span_t *s = a->spans[p];
    if (!s || s->base != addr)   /* a one-page span kept for reuse: free */
        return push(f, addr, GM_PAGE_SIZE, GM_MAP_FREE, 0, 0) ? 1 : 0;
    uint32_t npages = s->npages ? s->npages : 1;
    size_t bytes = (size_t)npages * GM_PAGE_SIZE;
    if (!s->cls)
        return push(f, addr, bytes, GM_MAP_LARGE, 0, 0) ? npages : 0;
    uint64_t objects = bytes / gm_class_size[s->cls];
    uint64_t out = __atomic_load_n(&s->nalloc, __ATOMIC_RELAXED);
    uint16_t permille = (uint16_t)(objects ? (out > objects ? 1000 : out * 1000 / objects) : 0);
    return push(f, addr, bytes, GM_MAP_SMALL, s->cls, permille) ? npages : 0;
}

static void batch_visit(const gm_arena_t *a, void *arg) {
    struct feed *f = arg;
    if (f->n == BATCH || a->commit_end <= f->cursor)
        return;
    uintptr_t from = f->cursor > a->lo ? f->cursor : a->lo;
    uint32_t p = (uint32_t)((from - a->base) >> GM_PAGE_SHIFT);
    uint32_t end = (uint32_t)((a->commit_end - a->base) >> GM_PAGE_SHIFT);
    while (p < end) {
        uint32_t got = piece_at(f, a, p, end);
        if (!got)
            return;
        p += got;
    }
    f->cursor = a->hi;   /* the rest is reserved, not committed */
}

static void region_visit(const gm_arena_t *a, void *arg) {
    struct feed *f = arg;
    if (f->n < BATCH && a->lo >= f->cursor) {
        f->regions[f->n++] = (struct gm_map_region){a->lo, a->hi};
        f->cursor = a->hi;
    }
}

/* ---- huge blocks, through /proc/self/maps ----------------------------------- */

static void note_huge(struct feed *f, const gm_huge_t *d) {
    if (f->nhuge && f->huge[f->nhuge - 1].lo == d->lo)
        return;   /* a block of several slots, or several mappings */
    if (f->nhuge == MAX_HUGE)
        return;
    f->huge[f->nhuge].lo = d->lo;
    f->huge[f->nhuge].hi = d->hi;
    f->huge[f->nhuge].base = d->lo;
    f->huge[f->nhuge].size = __atomic_load_n(&d->size, __ATOMIC_RELAXED);
    f->huge[f->nhuge].cached = __atomic_load_n(&d->cached, __ATOMIC_RELAXED);
    f->nhuge++;
}

static void find_huge(struct feed *f) {
    struct gm_maps_reader r;
    struct gm_maps_entry e;
    if (gm_maps_open(&r, NULL) < 0)
        return;
    while (gm_maps_next(&r, &e) > 0) {
        uintptr_t end = e.hi < ((uintptr_t)1 << GM_ADDRESS_BITS) ? e.hi : (uintptr_t)1 << GM_ADDRESS_BITS;
        for (uintptr_t a = e.lo & ~(GM_ARENA_SIZE - 1); a < end; a += GM_ARENA_SIZE) {
            const gm_huge_t *d = gm_pagemap_huge(a);
            if (d)
                note_huge(f, d);
        }
    }
    gm_maps_close(&r);
}

/* ---- the writer's callbacks -------------------------------------------------- */

static int next_region(void *ctx, struct gm_map_region *out) {
    struct feed *f = ctx;
    if (f->region_phase == 0) {
        if (f->at == f->n) {
            f->n = f->at = 0;
            gm_mheap_visit(region_visit, f);
            if (!f->n) {
                f->region_phase = 1;
                find_huge(f);
            }
        }
        if (f->at < f->n) {
            *out = f->regions[f->at++];
            return 1;
        }
    }
    if (f->region_phase == 1 && f->next_huge < f->nhuge) {
        *out = (struct gm_map_region){f->huge[f->next_huge].lo, f->huge[f->next_huge].hi};
        f->next_huge++;
        return 1;
    }
    f->region_phase = 2;
    f->cursor = 0;
    f->n = f->at = 0;
    f->next_huge = 0;
    return 0;
}

static int next_span(void *ctx, struct gm_map_span *out) {
    struct feed *f = ctx;
    if (!f->heap_done && f->at == f->n) {
        f->n = f->at = 0;
        gm_mheap_visit(batch_visit, f);
        f->heap_done = f->n == 0;
    }
    if (!f->heap_done) {
        *out = f->batch[f->at++];
        return 1;
    }
    if (f->next_huge < f->nhuge) {
        const struct huge_block *h = &f->huge[f->next_huge++];
        *out = (struct gm_map_span){h->base, h->size, h->cached ? GM_MAP_FREE : GM_MAP_HUGE, 0, 0};
        return 1;
    }
    return 0;
}

/* The picture of any heap, fed through callbacks: the model built
 * (heapmap_model.c), then drawn (heapmap_svg.c). */
int gm_heapmap_write_svg_ex(int fd, gm_map_next_region_fn regions, gm_map_next_fn spans,
                            void *ctx, const struct gm_heapmap_opts *opts) {
    struct hm *h = gm_hm_new(fd, opts);
    if (!h)
        return -1;
    int rc = gm_hm_build(h, regions, spans, ctx);
    if (rc == 0)
        gm_hm_render(h);
    return gm_hm_free(h, rc);
}

int gm_heapmap_write_svg(int fd, gm_map_next_region_fn regions, gm_map_next_fn spans,
                         void *ctx) {
    return gm_heapmap_write_svg_ex(fd, regions, spans, ctx, NULL);
}

/* ---- entry points -------------------------------------------------------------- */

int gm_heapmap_write_fd(int fd) {
    struct feed *f = gm_rio_map(sizeof *f);
    if (!f)
        return -1;
    struct gm_heapmap_opts opts = {
        .class_bytes = gm_class_size, .nclasses = GM_NUM_CLASSES, .title = "gomalloc heap map"};
    int rc = gm_heapmap_write_svg_ex(fd, next_region, next_span, f, &opts);
    gm_rio_unmap(f, sizeof *f);
    return rc;
}

GM_EXPORT int gm_heapmap_write(const char *path) {
    if (!path) {
        errno = EINVAL;
        return -1;
    }
    gm_init();
    return gm_report_write_file(path, gm_heapmap_write_fd);
}
