/*
 * heapmap_svg.h — draws the process's address space as an SVG picture: the
 * mappings of /proc/self/maps (text, data, bss, the brk heap, libraries,
 * stacks, anonymous memory) with gomalloc's arenas, and inside the arenas
 * the spans, coloured by size class and shaded by occupancy.
 *
 * The caller owns the heap's data and hands it over through callbacks; the
 * writer keeps a fixed-size picture (a grid of at most 128 x 1024 cells for
 * the arenas, and one record per group of mappings) in mmap'd scratch, so a
 * heap of many GiB with millions of spans costs the same memory as a small
 * one.  Safe to call from inside malloc (no malloc, no stdio).
 */
#ifndef GM_HEAPMAP_SVG_H
#define GM_HEAPMAP_SVG_H

#include <stddef.h>
#include <stdint.h>

enum gm_map_kind {
    GM_MAP_FREE = 0,        /* free pages, still backed by memory */
    GM_MAP_RELEASED = 1,    /* free pages given back to the OS */
    GM_MAP_SMALL = 2,       /* a span of small objects of one size class */
    GM_MAP_LARGE = 3,       /* a large block (whole pages) */
    GM_MAP_HUGE = 4,        /* a huge block (its own mapping) */
};

/* A run of pages inside an arena.  Spans must not overlap; they may come in
 * any order.  Parts outside every region are left out of the picture (and
 * counted in its summary). */
struct gm_map_span {
    uintptr_t base;
    size_t bytes;
    uint8_t kind;           /* enum gm_map_kind */
    uint8_t cls;            /* size class 1.., for GM_MAP_SMALL */
    uint16_t used_permille; /* share of a small span's objects in use */
};

/* 1 = *out filled, 0 = no more. */
typedef int (*gm_map_next_fn)(void *ctx, struct gm_map_span *out);

/* An address range that gomalloc reserved (an arena, a huge block's
 * mapping): [lo, hi).  Regions may come in any order and may touch. */
struct gm_map_region {
    uintptr_t lo, hi;
};

typedef int (*gm_map_next_region_fn)(void *ctx, struct gm_map_region *out);

/* Optional details for the picture. */
struct gm_heapmap_opts {
    /* class_bytes[c] = object size of class c, for c < nclasses (index 0
     * unused), so the legend can say "class 17 = 288 B"; NULL for numbers
     * only.  Classes at or above nclasses are drawn in the last colour. */
    const uint32_t *class_bytes;
    unsigned nclasses;
    const char *title;      /* NULL: "gomalloc heap map" */
};

/* Writes the SVG to fd.  All regions are read first, then all spans, both
 * exactly once, through the same ctx.  Returns 0, or -1 when scratch
 * memory, /proc/self/maps or a write failed (the file may then hold a
 * truncated picture).  fd is left open. */
int gm_heapmap_write_svg(int fd, gm_map_next_region_fn regions, gm_map_next_fn spans,
                         void *ctx);
int gm_heapmap_write_svg_ex(int fd, gm_map_next_region_fn regions, gm_map_next_fn spans,
                            void *ctx, const struct gm_heapmap_opts *opts);

/* Draws a built model (heapmap_model.h) to its output (heapmap_svg.c). */
struct hm;
void gm_hm_render(struct hm *h);

#endif
