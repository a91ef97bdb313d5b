/*
 * heapmap_model.h — the heap map's model, shared by the file that builds it
 * (heapmap_model.c: regions, spans and /proc/self/maps into blocks, a grid
 * of cells and overview rows) and the file that draws it (heapmap_svg.c).
 * Private to those two; the interface is heapmap_svg.h.
 */
#ifndef GM_HEAPMAP_MODEL_H
#define GM_HEAPMAP_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "heapmap_svg.h"
#include "report_io.h"

/* ---- geometry ---------------------------------------------------------- */

#define SVG_W 1190
#define MARGIN 10

#define GRID_X 150              /* arena grid: left edge */
#define GRID_W 1024             /* ...and width: pixels (cells) per row */
#define MAX_GRID_ROWS 128
#define MIN_ROW_BYTES ((uint64_t)1 << 20)
#define MAX_ROW_BYTES ((uint64_t)1 << 41)   /* keeps a cell's bytes in 32 bits */

#define OV_SIZE_X 212           /* overview: size column, right-aligned */
#define OV_BAR_X 222
#define OV_BAR_W 480
#define OV_LABEL_X 712
#define OV_PITCH 16
#define OV_GAP 10               /* extra space where a gap is collapsed */
#define MAX_OV_ROWS 48

#define LABEL_LEN 56            /* bytes of a row's name kept for its label */
#define ROW_CAP 70000           /* above the default vm.max_map_count */

/* ---- what the picture shows -------------------------------------------- */

enum heap_kind { HK_FREE, HK_RELEASED, HK_SMALL, HK_LARGE, HK_HUGE, HK_UNUSED, NHK };

/* Kinds of mapping in the overview, in the order the legend lists them. */
enum map_class {
    MC_TEXT, MC_RODATA, MC_DATA, MC_BSS, MC_HEAP, MC_LIB, MC_FILE, MC_STACK,
    MC_TSTACK, MC_ANON, MC_GUARD, MC_KERNEL, MC_ARENA, NMC
};

/* ---- state ------------------------------------------------------------- */

struct hm_block {               /* a run of touching regions */
    uintptr_t lo, hi;
    uint64_t pos;               /* byte offset of lo in the grid */
    uint64_t kind[NHK];         /* bytes of each kind drawn in it */
};

struct hm_cell {                /* one pixel of the arena grid */
    uint32_t kind[HK_UNUSED];   /* bytes of each span kind */
    uint32_t used;              /* small bytes weighted by occupancy */
    uint32_t best_bytes;        /* weighted majority vote for the class */
    uint8_t best_cls;
};

struct hm_row {                 /* one row of the overview */
    uintptr_t lo, hi;
    uint64_t bytes[NMC];
    uint32_t pieces;
    int32_t block;              /* arena block index, or -1 */
    uint8_t cls;                /* class of its first piece */
    uint8_t keep;               /* the program's segments, [heap], [stack] */
    uint8_t named;              /* name[] holds a name all its pieces share */
    char name[LABEL_LEN + 1];
};

struct hm_range {
    uintptr_t lo, hi;
};

struct hm {
    struct gm_rio_out out;
    const struct gm_heapmap_opts *opts;
    unsigned nclasses;
    /* arenas */
    struct hm_block *blocks;
    size_t nblocks, blocks_bytes;
    uint64_t row_bytes, bpp;    /* bytes per grid row and per pixel */
    int packed;                 /* blocks follow each other within rows */
    uint32_t grid_rows;
    struct hm_cell *grid;
    size_t grid_bytes;
    uint64_t kind_total[HK_UNUSED], small_used, outside;
    /* mappings */
    struct hm_row *rows;
    size_t nrows, rows_bytes;
    uint64_t mapped;
    uint32_t nmappings;
    struct hm_range own[8];     /* this writer's scratch: left out */
    unsigned nown;
    size_t next_block;
    uintptr_t prev_hi;          /* the previous piece, for joins */
    uint8_t prev_cls, prev_anon;
    char exe[4096];
    size_t exe_len;
    char prev_path[4096];
    size_t prev_path_len;
    uint32_t cap[GRID_W];       /* bytes each pixel of a grid row stands for */
    char maps_buf[GM_MAPS_BUF];
};

#define OUT_BUF (256 * 1024)

static inline uint64_t min_u64(uint64_t a, uint64_t b) { return a < b ? a : b; }
static inline uint64_t max_u64(uint64_t a, uint64_t b) { return a > b ? a : b; }

static inline uint64_t row_total(const struct hm_row *r) {
    uint64_t t = 0;
    for (int k = 0; k < NMC; k++)
        t += r->bytes[k];
    return t;
}

/* The first block whose end is above addr (heapmap_model.c). */
size_t gm_hm_block_after(const struct hm *h, uintptr_t addr);
/* A model writing to fd, in fresh scratch memory; NULL when none is left. */
struct hm *gm_hm_new(int fd, const struct gm_heapmap_opts *opts);
/* Reads every region, then every span, then /proc/self/maps into h: 0, or
 * -1 when scratch memory or the maps file failed. */
int gm_hm_build(struct hm *h, gm_map_next_region_fn regions, gm_map_next_fn spans, void *ctx);
/* Flushes and closes h's output, frees h: rc, or -1 if the output failed. */
int gm_hm_free(struct hm *h, int rc);

#endif
