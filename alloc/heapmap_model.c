/*
 * heapmap_model.c — builds the heap map's model (heapmap_model.h): the
 * regions gomalloc reserved merged into blocks and laid out as a grid of
 * at most MAX_GRID_ROWS x GRID_W cells, every span added into the cells it
 * covers, and /proc/self/maps folded into at most MAX_OV_ROWS overview
 * rows.  gm_heapmap_write_svg (heapmap.c) creates it (gm_hm_new), has it
 * built (gm_hm_build), drawn (heapmap_svg.c) and freed (gm_hm_free).
 *
 * Invariants: all memory is mmap'd scratch of fixed size, taken before
 * /proc/self/maps is read, so the picture leaves out exactly those ranges;
 * the grid has the same number of cells whatever the heap's size, so spans
 * below a pixel are added up, never listed.
 *
 * May call: report_io.c (scratch, output, maps reader), memcpy, memset,
 * memcmp, strlen.  Never malloc or stdio: this runs inside malloc.  No
 * global state: two maps may be drawn at once.
 */
#define _GNU_SOURCE
#include <string.h>

#include "heapmap_model.h"

/* ---- regions into blocks, blocks into grid rows ------------------------ */

static void sift_down(struct hm_block *b, size_t i, size_t n) {
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n)
            return;
        if (c + 1 < n && b[c + 1].lo > b[c].lo)
            c++;
        if (b[i].lo >= b[c].lo)
            return;
        struct hm_block t = b[i];
        b[i] = b[c];
        b[c] = t;
        i = c;
    }
}

/* Heapsort by address: regions may be many (one per huge block). */
static void sort_blocks(struct hm_block *b, size_t n) {
    for (size_t i = n / 2; i-- > 0;)
        sift_down(b, i, n);
    for (size_t end = n; end-- > 1;) {
        struct hm_block t = b[0];
        b[0] = b[end];
        b[end] = t;
        sift_down(b, 0, end);
    }
}

static int read_regions(struct hm *h, gm_map_next_region_fn next, void *ctx) {
    struct gm_map_region r;
    while (next && next(ctx, &r)) {
        if (r.hi <= r.lo)
            continue;
        size_t used = h->nblocks * sizeof *h->blocks;
        if (used + sizeof *h->blocks > h->blocks_bytes) {
            size_t want = h->blocks_bytes ? 2 * h->blocks_bytes : 64 * 1024;
            void *p = h->blocks ? gm_rio_grow(h->blocks, h->blocks_bytes, want) : gm_rio_map(want);
            if (!p)
                return -1;
            h->blocks = p;
            h->blocks_bytes = want;
        }
        memset(&h->blocks[h->nblocks], 0, sizeof *h->blocks);
        h->blocks[h->nblocks].lo = r.lo;
        h->blocks[h->nblocks++].hi = r.hi;
    }
    return 0;
}

/* Regions that touch or overlap become one block: the grid shows them as
 * one stretch, and the overview as one row. */
static void merge_blocks(struct hm *h) {
    sort_blocks(h->blocks, h->nblocks);
    size_t n = 0;
    for (size_t i = 0; i < h->nblocks; i++) {
        if (n && h->blocks[i].lo <= h->blocks[n - 1].hi)
            h->blocks[n - 1].hi = max_u64(h->blocks[n - 1].hi, h->blocks[i].hi);
        else
            h->blocks[n++] = h->blocks[i];
    }
    h->nblocks = n;
}

/* Grid rows needed at row_bytes per row: each block from a fresh row, or
 * (packed) all blocks back to back. */
static uint64_t rows_needed(const struct hm *h, uint64_t row_bytes, int packed) {
    uint64_t rows = 0, total = 0;
    for (size_t i = 0; i < h->nblocks; i++) {
        uint64_t size = h->blocks[i].hi - h->blocks[i].lo;
        total += size;
        rows += (size + row_bytes - 1) / row_bytes;
    }
    return packed ? (total + row_bytes - 1) / row_bytes : rows;
}

static uint64_t smallest_row_bytes(const struct hm *h, int packed) {
    uint64_t r = MIN_ROW_BYTES;
    while (rows_needed(h, r, packed) > MAX_GRID_ROWS && r < MAX_ROW_BYTES)
        r *= 2;
    return r;
}

/* Each block starts a row, so row labels are exact addresses, unless that
 * costs more than 4x in resolution (many scattered regions): then blocks
 * are packed and their starts marked with ticks. */
static void lay_out_grid(struct hm *h) {
    uint64_t aligned = smallest_row_bytes(h, 0), packed = smallest_row_bytes(h, 1);
    h->packed = aligned > 4 * packed;
    h->row_bytes = h->packed ? packed : aligned;
    h->bpp = h->row_bytes / GRID_W;
    uint64_t pos = 0;
    for (size_t i = 0; i < h->nblocks; i++) {
        h->blocks[i].pos = pos;
        pos += h->blocks[i].hi - h->blocks[i].lo;
        if (!h->packed)
            pos = (pos + h->row_bytes - 1) / h->row_bytes * h->row_bytes;
    }
    uint64_t rows = (pos + h->row_bytes - 1) / h->row_bytes;
    h->grid_rows = (uint32_t)min_u64(rows, MAX_GRID_ROWS);
}

/* ---- spans into the grid ----------------------------------------------- */

/* The first block whose end is above addr. */
size_t gm_hm_block_after(const struct hm *h, uintptr_t addr) {
    size_t lo = 0, hi = h->nblocks;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->blocks[mid].hi <= addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* A weighted majority vote (Boyer-Moore): the class holding most of a
 * pixel's small bytes wins whenever one holds more than half. */
static void vote_class(struct hm_cell *c, unsigned cls, uint32_t bytes) {
    if (c->best_cls == cls) {
        c->best_bytes += bytes;
    } else if (bytes > c->best_bytes) {
        c->best_cls = (uint8_t)cls;
        c->best_bytes = bytes - c->best_bytes;
    } else {
        c->best_bytes -= bytes;
    }
}

static void add_to_cells(struct hm *h, uint64_t plo, uint64_t phi, const struct gm_map_span *s) {
    uint64_t ncells = (uint64_t)h->grid_rows * GRID_W;
    for (uint64_t c = plo / h->bpp; c < ncells && c * h->bpp < phi; c++) {
        uint32_t part = (uint32_t)(min_u64(phi, (c + 1) * h->bpp) - max_u64(plo, c * h->bpp));
        struct hm_cell *cell = &h->grid[c];
        cell->kind[s->kind] += part;
        if (s->kind == GM_MAP_SMALL) {
            cell->used += (uint32_t)((uint64_t)part * min_u64(s->used_permille, 1000) / 1000);
            vote_class(cell, s->cls, part);
        }
    }
}

/* Clips the span to the blocks it overlaps; what lies outside every block
 * is only counted. */
static void add_span(struct hm *h, const struct gm_map_span *s) {
    uintptr_t lo = s->base, hi = s->base + s->bytes;
    uint64_t inside = 0;
    for (size_t b = gm_hm_block_after(h, lo); b < h->nblocks && h->blocks[b].lo < hi; b++) {
        struct hm_block *blk = &h->blocks[b];
        uintptr_t clo = lo > blk->lo ? lo : blk->lo, chi = hi < blk->hi ? hi : blk->hi;
        blk->kind[s->kind] += chi - clo;
        inside += chi - clo;
        add_to_cells(h, blk->pos + (clo - blk->lo), blk->pos + (chi - blk->lo), s);
    }
    h->kind_total[s->kind] += inside;
    if (s->kind == GM_MAP_SMALL)
        h->small_used += inside / 1000 * min_u64(s->used_permille, 1000);
    h->outside += s->bytes - inside;
}

static void read_spans(struct hm *h, gm_map_next_fn next, void *ctx) {
    struct gm_map_span s;
    while (next && next(ctx, &s)) {
        if (s.kind <= GM_MAP_HUGE && s.bytes && s.base + s.bytes > s.base)
            add_span(h, &s);
    }
    for (size_t b = 0; b < h->nblocks; b++) {   /* the rest was never used */
        struct hm_block *blk = &h->blocks[b];
        uint64_t drawn = 0;
        for (int k = 0; k < HK_UNUSED; k++)
            drawn += blk->kind[k];
        uint64_t size = blk->hi - blk->lo;
        blk->kind[HK_UNUSED] = size > drawn ? size - drawn : 0;
    }
}

/* ---- /proc/self/maps into overview rows -------------------------------- */

static int is_anon_family(unsigned cls) {
    return cls == MC_ANON || cls == MC_GUARD || cls == MC_TSTACK;
}

static int path_is(const char *p, size_t n, const char *s) {
    size_t k = strlen(s);
    return n >= k && memcmp(p, s, k) == 0;
}

static int looks_like_library(const char *p, size_t n, const char *perms) {
    for (size_t i = 0; i + 3 <= n; i++)
        if (memcmp(p + i, ".so", 3) == 0 && (i + 3 == n || p[i + 3] == '.'))
            return 1;
    return perms[2] == 'x';
}

/* What a piece of a mapping is, judged from its name, its permissions and
 * the piece before it (bss follows the data it belongs to; a thread's stack
 * follows its guard page). */
static unsigned classify(const struct hm *h, uintptr_t lo, const char *perms,
                         const char *path, size_t n) {
    int after_prev = h->prev_hi == lo;
    if (n == 0) {
        if (perms[0] == '-' && perms[1] == '-' && perms[2] == '-')
            return MC_GUARD;
        if (after_prev && (h->prev_cls == MC_DATA || h->prev_cls == MC_BSS))
            return MC_BSS;
        if (after_prev && h->prev_cls == MC_GUARD && h->prev_anon)
            return MC_TSTACK;
        return MC_ANON;
    }
    if (path_is(path, n, "[heap]"))
        return MC_HEAP;
    if (path_is(path, n, "[stack"))
        return MC_STACK;
    if (path_is(path, n, "[vdso]") || path_is(path, n, "[vvar") || path_is(path, n, "[vsyscall]"))
        return MC_KERNEL;
    if (path[0] == '[')
        return MC_ANON;          /* [anon:name] and the like */
    if (h->exe_len && n >= h->exe_len && memcmp(path, h->exe, h->exe_len) == 0)
        return perms[2] == 'x' ? MC_TEXT : perms[1] == 'w' ? MC_DATA : MC_RODATA;
    return looks_like_library(path, n, perms) ? MC_LIB : MC_FILE;
}

/* The name a row is labelled with: a file's base name, or the bracketed
 * name the kernel gives. */
static void set_name(struct hm_row *r, const char *path, size_t n) {
    const char *base = path;
    for (size_t i = 0; i < n; i++)
        if (path[i] == '/')
            base = path + i + 1;
    size_t len = (size_t)(path + n - base);
    if (len > LABEL_LEN)
        len = LABEL_LEN;
    memcpy(r->name, base, len);
    r->name[len] = '\0';
    r->named = len > 0;
}

/* Whether a piece of class cls continues the last row: the same file's
 * next segment (the program's segments each get a row), a library's bss,
 * the next [heap] piece, or more anonymous or kernel memory. */
static int continues(const struct hm *h, const struct hm_row *r, unsigned cls,
                     uintptr_t lo, const char *path, size_t n) {
    if (r->block >= 0)
        return 0;
    int same_path = n && n == h->prev_path_len && memcmp(path, h->prev_path, n) == 0;
    if (cls == MC_TEXT || cls == MC_RODATA || cls == MC_DATA || cls == MC_BSS)
        return cls == r->cls && (same_path || cls == MC_BSS);
    if (cls == MC_LIB || cls == MC_FILE || cls == MC_HEAP || cls == MC_STACK)
        return same_path && r->cls == cls;
    if (is_anon_family(cls)) {
        if (r->cls == MC_LIB && n == 0 && h->prev_hi == lo && cls == MC_ANON)
            return 1;            /* the library's bss */
        return is_anon_family(r->cls);
    }
    return cls == r->cls;
}

static struct hm_row *new_row(struct hm *h, uintptr_t lo, unsigned cls) {
    if (h->nrows == ROW_CAP)     /* beyond any usual map count: fold in */
        return &h->rows[h->nrows - 1];
    struct hm_row *r = &h->rows[h->nrows++];
    memset(r, 0, sizeof *r);
    r->lo = lo;
    r->block = -1;
    r->cls = (uint8_t)cls;
    r->keep = cls <= MC_BSS || cls == MC_HEAP || cls == MC_STACK;
    return r;
}

static void add_piece(struct hm *h, uintptr_t lo, uintptr_t hi, const char *perms,
                      const char *path, size_t n) {
    unsigned cls = classify(h, lo, perms, path, n);
    struct hm_row *r = h->nrows ? &h->rows[h->nrows - 1] : NULL;
    int lib_bss = r && r->cls == MC_LIB && n == 0 && cls == MC_ANON;
    if (r && continues(h, r, cls, lo, path, n)) {
        int same_path = n == h->prev_path_len && memcmp(path, h->prev_path, n) == 0;
        if (!lib_bss && !same_path)   /* a bss keeps its library's name */
            r->named = 0;
    } else {
        r = new_row(h, lo, cls);
        set_name(r, path, n);
        lib_bss = 0;
    }
    r->hi = hi;
    r->bytes[lib_bss ? MC_LIB : cls] += hi - lo;
    r->pieces++;
    h->prev_hi = hi;
    h->prev_cls = (uint8_t)cls;
    h->prev_anon = n == 0;
    h->prev_path_len = n < sizeof h->prev_path ? n : 0;
    memcpy(h->prev_path, path, h->prev_path_len);
}

/* Arena blocks get their own rows, in address order among the mappings. */
static void add_blocks_below(struct hm *h, uintptr_t addr) {
    while (h->next_block < h->nblocks && h->blocks[h->next_block].lo <= addr) {
        const struct hm_block *b = &h->blocks[h->next_block];
        struct hm_row *r = new_row(h, b->lo, MC_ARENA);
        r->block = (int32_t)h->next_block++;
        r->hi = b->hi;
        r->bytes[MC_ARENA] = b->hi - b->lo;
        r->pieces = 1;
        h->prev_hi = 0;
        h->prev_cls = MC_ARENA;
    }
}

/* Adds [lo, hi) of a maps line less the parts inside arena blocks, which
 * have rows of their own. */
static void add_outside_blocks(struct hm *h, const struct gm_maps_entry *e, uintptr_t lo,
                               uintptr_t hi) {
    for (size_t b = gm_hm_block_after(h, lo); b < h->nblocks && h->blocks[b].lo < hi; b++) {
        if (h->blocks[b].lo > lo)
            add_piece(h, lo, h->blocks[b].lo, e->perms, e->path, e->path_len);
        lo = h->blocks[b].hi;
        if (lo >= hi)
            return;
    }
    add_piece(h, lo, hi, e->perms, e->path, e->path_len);
}

/* One maps line: arenas below it first, then its parts outside both the
 * arenas and this writer's own scratch (sorted, a handful). */
static void add_entry(struct hm *h, const struct gm_maps_entry *e) {
    add_blocks_below(h, e->lo);
    uintptr_t lo = e->lo;
    uint64_t outside_own = 0;
    for (unsigned i = 0; i < h->nown && lo < e->hi; i++) {
        if (h->own[i].hi <= lo || h->own[i].lo >= e->hi)
            continue;
        if (h->own[i].lo > lo) {
            add_outside_blocks(h, e, lo, h->own[i].lo);
            outside_own += h->own[i].lo - lo;
        }
        lo = h->own[i].hi;
    }
    if (lo < e->hi) {
        add_outside_blocks(h, e, lo, e->hi);
        outside_own += e->hi - lo;
    }
    h->mapped += outside_own;
    h->nmappings += outside_own != 0;
}

static int read_maps(struct hm *h) {
    struct gm_maps_reader r;
    if (gm_maps_open(&r, h->maps_buf) < 0)
        return -1;
    struct gm_maps_entry e;
    int got;
    while ((got = gm_maps_next(&r, &e)) > 0)
        if (e.hi > e.lo)
            add_entry(h, &e);
    gm_maps_close(&r);
    add_blocks_below(h, UINTPTR_MAX);   /* arenas above every mapping */
    return got;
}

/* ---- fewer overview rows ----------------------------------------------- */

static int mergeable(const struct hm_row *a, const struct hm_row *b) {
    return a->block < 0 && b->block < 0 && !a->keep && !b->keep;
}

static void merge_into(struct hm_row *a, const struct hm_row *b) {
    a->hi = b->hi;
    for (int k = 0; k < NMC; k++)
        a->bytes[k] += b->bytes[k];
    a->pieces += b->pieces;
    if (!b->named || strcmp(a->name, b->name) != 0)
        a->named = 0;
}

/* One pass: neighbours merge while their sum stays within limit, and only
 * until the rows are few enough. */
static size_t merge_pass(struct hm_row *rows, size_t n, uint64_t limit) {
    size_t w = 0;
    for (size_t i = 1; i < n; i++) {
        int enough = w + 1 + (n - i) <= MAX_OV_ROWS;
        if (!enough && mergeable(&rows[w], &rows[i]) &&
            row_total(&rows[w]) + row_total(&rows[i]) <= limit)
            merge_into(&rows[w], &rows[i]);
        else
            rows[++w] = rows[i];
    }
    return n ? w + 1 : 0;
}

/* Small neighbours go first: the limit doubles from one page until the
 * rows fit, so big mappings keep rows of their own as long as possible. */
static void merge_rows(struct hm *h) {
    for (uint64_t limit = 8192; h->nrows > MAX_OV_ROWS && limit; limit <<= 1)
        h->nrows = merge_pass(h->rows, h->nrows, limit);
}

/* ---- scratch ------------------------------------------------------------ */

static void note_own(struct hm *h, const void *p, size_t bytes) {
    uintptr_t lo = (uintptr_t)p & ~(uintptr_t)4095;
    uintptr_t hi = ((uintptr_t)p + bytes + 4095) & ~(uintptr_t)4095;
    unsigned i = h->nown++;
    while (i > 0 && h->own[i - 1].lo > lo) {   /* kept sorted */
        h->own[i] = h->own[i - 1];
        i--;
    }
    h->own[i] = (struct hm_range){lo, hi};
}

/* All scratch is taken here, before the maps are read, so that the picture
 * can leave exactly this memory out. */
static int take_scratch(struct hm *h, int fd) {
    h->grid_bytes = (size_t)h->grid_rows * GRID_W * sizeof *h->grid;
    h->rows_bytes = (size_t)ROW_CAP * sizeof *h->rows;
    if (h->grid_bytes && !(h->grid = gm_rio_map(h->grid_bytes)))
        return -1;
    if (!(h->rows = gm_rio_map(h->rows_bytes)) || gm_rio_open(&h->out, fd, OUT_BUF) < 0)
        return -1;
    note_own(h, h, sizeof *h);
    note_own(h, h->rows, h->rows_bytes);
    note_own(h, h->out.buf, OUT_BUF);
    if (h->grid)
        note_own(h, h->grid, h->grid_bytes);
    if (h->blocks)
        note_own(h, h->blocks, h->blocks_bytes);
    return 0;
}

static void drop_scratch(struct hm *h) {
    gm_rio_unmap(h->grid, h->grid_bytes);
    gm_rio_unmap(h->rows, h->rows_bytes);
    gm_rio_unmap(h->blocks, h->blocks_bytes);
}

int gm_hm_build(struct hm *h, gm_map_next_region_fn regions, gm_map_next_fn spans, void *ctx) {
    if (read_regions(h, regions, ctx) < 0)
        return -1;
    merge_blocks(h);
    lay_out_grid(h);
    if (take_scratch(h, h->out.fd) < 0)
        return -1;
    read_spans(h, spans, ctx);
    h->exe_len = gm_rio_self_exe(h->exe, sizeof h->exe);
    if (read_maps(h) < 0)
        return -1;
    merge_rows(h);
    return 0;
}

struct hm *gm_hm_new(int fd, const struct gm_heapmap_opts *opts) {
    struct hm *h = gm_rio_map(sizeof *h);
    if (!h)
        return NULL;
    h->opts = opts;
    h->nclasses = opts && opts->nclasses > 1 ? opts->nclasses : 66;
    h->out.fd = fd;
    return h;
}

int gm_hm_free(struct hm *h, int rc) {
    if (gm_rio_close(&h->out) < 0)
        rc = -1;
    drop_scratch(h);
    gm_rio_unmap(h, sizeof *h);
    return rc;
}
