/*
 * heapmap_svg.c — draws the heap map's model (heapmap_model.c) as SVG.
 *
 * Job: show a person where the memory of the process is.  The picture has
 * three parts:
 *   - the address space: one row per group of mappings from /proc/self/maps
 *     (the program's text, data and bss, the brk heap, each library,
 *     stacks, anonymous memory, gomalloc's arenas), lowest address first.
 *     The space is sparse, so gaps between rows are collapsed to a line
 *     that gives their size, and a row's bar is its size on a log scale;
 *     when there are more groups than MAX_OV_ROWS, neighbouring small
 *     groups are merged and their bars split by kind;
 *   - the arenas: their bytes wrapped into rows of a power-of-two size
 *     (at most MAX_GRID_ROWS rows of GRID_W pixels), each pixel coloured by
 *     what holds most of its bytes: a size class (shaded by the span's
 *     occupancy), a large or huge block, free or released pages;
 *   - a legend and scales.
 *
 * Invariants: every number in the SVG is formatted here; every name from
 * the maps file is escaped (put_text), so the file is well-formed whatever
 * the paths hold; fills are CSS classes, so the size of the file follows
 * the grid's cells, not the heap's spans.
 *
 * May call: report_io.c (output), getpid, memcpy, strlen; it reads the model
 * (heapmap_model.h) that heapmap.c has built.  Never malloc or
 * stdio: this runs inside malloc.
 */
#define _GNU_SOURCE
#include <string.h>
#include <unistd.h>

#include "heapmap_model.h"

/* ---- colours and names ------------------------------------------------- */

static const char *const mc_name[NMC] = {
    "program text", "program read-only data", "program data", "program bss",
    "brk heap", "shared library", "mapped file", "main stack", "thread stack",
    "anonymous", "reserved, no access", "kernel (vdso, vvar)", "gomalloc arena",
};

static const char *const mc_color[NMC] = {
    "#1f77b4", "#9ecae1", "#2ca02c", "#98df8a", "#ff7f0e", "#9467bd", "#c5b0d5",
    "#e377c2", "#f7b6d2", "#8c8c8c", "#e3e3e3", "#bcbd22", "#d62728",
};

static const char *const hk_name[NHK] = {
    "free, backed", "free, released to the OS", "small objects", "large block",
    "huge block", "reserved, not yet used",
};

/* CSS fills of the non-small heap kinds; released pages are hatched. */
static const char *const hk_fill[NHK] = {
    "#b8c2cc", "url(#released)", "#808080", "#6d4c41", "#1a1a1a", "#f2f2f2",
};

/* Size classes run from blue (the smallest objects) through green and
 * yellow to red (the largest); anchors of a scale of my own, interpolated. */
static const uint8_t ramp[7][3] = {
    {59, 76, 192}, {44, 159, 224}, {31, 200, 160}, {143, 209, 79},
    {246, 209, 59}, {246, 138, 43}, {215, 48, 31},
};

/* Occupancy buckets of a small span: share of objects in use, in fifths;
 * an emptier span is drawn paler. */
#define OCC_BUCKETS 5
static const char *const occ_opacity[OCC_BUCKETS] = {".25", ".42", ".6", ".8", "1"};
static const char *const occ_name[OCC_BUCKETS] = {
    "under 20%", "20&#8211;40%", "40&#8211;60%", "60&#8211;80%", "80% and over",
};

static void put(struct hm *h, const char *s) { gm_rio_str(&h->out, s); }
static void putn(struct hm *h, int64_t v) { gm_rio_sdec(&h->out, v); }

/* Close the attribute before and write name="v (the caller closes it). */
static void attr_s(struct hm *h, const char *name, const char *v) {
    put(h, "\" ");
    put(h, name);
    put(h, "=\"");
    put(h, v);
}
static void attr(struct hm *h, const char *name, int64_t v) {
    attr_s(h, name, "");
    putn(h, v);
}

/* Text for an SVG text node or attribute: markup characters escaped, bytes
 * outside printable ASCII (a path may hold any) shown as '?', so the file
 * stays well-formed UTF-8 whatever the names. */
static void put_text(struct hm *h, const char *s, size_t n) {
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *esc = c == '&' ? "&amp;" : c == '<' ? "&lt;" : c == '>' ? "&gt;"
                        : c == '"' ? "&quot;" : NULL;
        if (esc)
            put(h, esc);
        else
            gm_rio_put(&h->out, c >= 0x20 && c < 0x7f ? (const char *)&s[i] : "?", 1);
    }
}

/* 1000 * log2(v), v >= 1, close enough to lay out a bar (within 0.09). */
static int64_t log2_milli(uint64_t v) {
    int k = 63 - __builtin_clzll(v | 1);
    uint64_t base = (uint64_t)1 << k;
    return (int64_t)k * 1000 + (int64_t)((v - base) * 1000 / base);
}

/* "#rrggbb" of size class c on the ramp. */
static void class_color(const struct hm *h, unsigned c, char out[8]) {
    static const char hex[] = "0123456789abcdef";
    unsigned top = h->nclasses > 2 ? h->nclasses - 2 : 1;
    unsigned t = (c ? c - 1 : 0) * 6000 / top;   /* 0..6000 along the ramp */
    if (t > 6000)
        t = 6000;
    unsigned i = t / 1000 < 6 ? t / 1000 : 5, f = t - i * 1000;
    out[0] = '#';
    for (int k = 0; k < 3; k++) {
        unsigned v = (ramp[i][k] * (1000 - f) + ramp[i + 1][k] * f) / 1000;
        out[1 + 2 * k] = hex[v >> 4];
        out[2 + 2 * k] = hex[v & 15];
    }
    out[7] = '\0';
}

/* ---- SVG: header, style, summary --------------------------------------- */

/* Fills as CSS classes: a grid of thousands of rectangles names its colour
 * in a few bytes each. */
static void put_style(struct hm *h) {
    put(h, "<style>text{fill:#222}.m,.ms{font-family:'DejaVu Sans Mono',monospace;font-size:10px}"
           ".ms{font-size:8px}.g{font-size:9px;fill:#666}.t{font-size:16px;font-weight:bold}"
           ".h{font-size:13px;font-weight:bold}.ax{stroke:#ccc;stroke-width:1}"
           ".gap{stroke:#bbb;stroke-dasharray:3 3}");
    for (unsigned c = 1; c < h->nclasses; c++) {
        char col[8];
        class_color(h, c, col);
        put(h, ".c");
        putn(h, c);
        put(h, "{fill:");
        put(h, col);
        put(h, "}");
    }
    for (int k = 0; k < NHK; k++) {
        put(h, ".k");
        putn(h, k);
        put(h, "{fill:");
        put(h, hk_fill[k]);
        put(h, "}");
    }
    for (int b = 0; b < OCC_BUCKETS; b++) {
        put(h, ".o");
        putn(h, b);
        put(h, "{fill-opacity:");
        put(h, occ_opacity[b]);
        put(h, "}");
    }
    put(h, "</style>\n");
}

static void svg_begin(struct hm *h, int64_t height) {
    put(h, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
           "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"");
    putn(h, SVG_W);
    attr(h, "height", height);
    put(h, "\" viewBox=\"0 0 ");
    putn(h, SVG_W);
    put(h, " ");
    putn(h, height);
    put(h, "\" font-family=\"'DejaVu Sans',Verdana,sans-serif\" font-size=\"11\">\n");
    put_style(h);
    put(h, "<defs><pattern id=\"released\" width=\"4\" height=\"4\" patternUnits=\"userSpaceOnUse\">"
           "<rect width=\"4\" height=\"4\" fill=\"#fff\"/>"
           "<path d=\"M0,4 L4,0 M-1,1 L1,-1 M3,5 L5,3\" stroke=\"#777\" stroke-width=\"1\"/>"
           "</pattern></defs>\n<rect width=\"100%\" height=\"100%\" fill=\"#fff\"/>\n");
}

/* <text x y [class]>  — the caller writes the content and closes it. */
static void text_at(struct hm *h, int64_t x, int64_t y, const char *cls, const char *anchor) {
    put(h, "<text x=\"");
    putn(h, x);
    attr(h, "y", y);
    if (cls) {
        attr_s(h, "class", cls);
    }
    if (anchor) {
        attr_s(h, "text-anchor", anchor);
    }
    put(h, "\">");
}

/* A whole <text> element holding s (which must need no escaping). */
static void label(struct hm *h, int64_t x, int64_t y, const char *cls, const char *anchor,
                  const char *s) {
    text_at(h, x, y, cls, anchor);
    put(h, s);
    put(h, "</text>");
}

static void rect(struct hm *h, int64_t x, int64_t y, int64_t w, int64_t ht, const char *fill) {
    put(h, "<rect x=\"");
    putn(h, x);
    attr(h, "y", y);
    attr(h, "width", w);
    attr(h, "height", ht);
    attr_s(h, "fill", fill);
    put(h, "\"/>");
}

static void put_bytes_kind(struct hm *h, const char *label, uint64_t bytes) {
    put(h, label);
    gm_rio_bytes(&h->out, bytes);
}

/* Two lines of totals under the title: what the process maps, and what
 * the arenas hold (occupancy = objects in use / room in small spans). */
static int64_t draw_summary(struct hm *h) {
    text_at(h, MARGIN, 22, "t", NULL);
    put(h, h->opts && h->opts->title ? h->opts->title : "gomalloc heap map");
    put(h, " &#8212; pid ");
    putn(h, getpid());
    put(h, "</text>\n");
    text_at(h, MARGIN, 40, NULL, NULL);
    put_bytes_kind(h, "Process: ", h->mapped);
    put(h, " mapped in ");
    putn(h, h->nmappings);
    put(h, " mappings.  gomalloc: ");
    uint64_t reserved = 0;
    for (size_t b = 0; b < h->nblocks; b++)
        reserved += h->blocks[b].hi - h->blocks[b].lo;
    put_bytes_kind(h, "", reserved);
    put(h, " in arenas.</text>\n");
    text_at(h, MARGIN, 56, NULL, NULL);
    put_bytes_kind(h, "Small spans ", h->kind_total[HK_SMALL]);
    if (h->kind_total[HK_SMALL]) {
        put(h, " (");
        putn(h, (int64_t)(h->small_used * 100 / h->kind_total[HK_SMALL]));
        put(h, "% in use)");
    }
    put_bytes_kind(h, " &#183; large blocks ", h->kind_total[HK_LARGE]);
    put_bytes_kind(h, " &#183; huge blocks ", h->kind_total[HK_HUGE]);
    put_bytes_kind(h, " &#183; free ", h->kind_total[HK_FREE]);
    put_bytes_kind(h, " &#183; released ", h->kind_total[HK_RELEASED]);
    if (h->outside)
        put_bytes_kind(h, " &#183; outside the arenas (not drawn) ", h->outside);
    put(h, "</text>\n");
    return 76;
}

/* ---- SVG: the address-space overview ----------------------------------- */

/* Steps of 16x on the log scale, from 4 KiB up past the largest row. */
static unsigned ov_steps(const struct hm *h) {
    uint64_t max = 0;
    for (size_t i = 0; i < h->nrows; i++)
        max = max_u64(max, row_total(&h->rows[i]));
    unsigned k = 1;
    while (k < 13 && ((uint64_t)4096 << (4 * k)) < max)
        k++;
    return k;
}

static int64_t bar_len(uint64_t bytes, unsigned steps) {
    int64_t l = log2_milli(bytes) - 12000;
    int64_t w = OV_BAR_W * (l > 0 ? l : 0) / (int64_t)(steps * 4000);
    return w < 2 ? 2 : w > OV_BAR_W ? OV_BAR_W : w;
}

static int gap_before(const struct hm *h, size_t i) {
    return i > 0 && h->rows[i].lo > h->rows[i - 1].hi;
}

static int64_t ov_height(const struct hm *h) {
    int64_t y = 38 + 8;
    for (size_t i = 0; i < h->nrows; i++)
        y += OV_PITCH + (gap_before(h, i) ? OV_GAP : 0);
    return y;
}

/* Up to three kinds, biggest first, for a row of mixed mappings. */
static void put_top_classes(struct hm *h, const struct hm_row *r) {
    uint64_t shown[NMC] = {0};
    for (int n = 0; n < 3; n++) {
        int best = -1;
        for (int k = 0; k < NMC; k++)
            if (!shown[k] && r->bytes[k] && (best < 0 || r->bytes[k] > r->bytes[best]))
                best = k;
        if (best < 0)
            return;
        shown[best] = 1;
        put(h, n ? ", " : "");
        put(h, mc_name[best]);
    }
}

static void put_row_label(struct hm *h, const struct hm_row *r) {
    if (r->block >= 0) {
        put(h, "gomalloc arena (drawn in the arena map below)");
        return;
    }
    if (r->named) {
        put_text(h, r->name, strlen(r->name));
        put(h, " &#8212; ");
        put(h, mc_name[r->cls]);
    } else if (r->pieces == 1) {
        put(h, mc_name[r->cls]);
    } else {
        put_top_classes(h, r);
    }
    if (r->pieces > 1) {
        put(h, r->named ? ", " : " &#8212; ");
        putn(h, r->pieces);
        put(h, " mappings");
        uint64_t total = row_total(r), extent = r->hi - r->lo;
        if (extent > total + total / 8)
            put_bytes_kind(h, " over ", extent);
    }
}

/* An arena's bar: what its bytes hold, in the arena map's colours. */
static void arena_segments(const struct hm_block *b, int64_t *kind_w, int64_t len) {
    static const int order[NHK] = {HK_SMALL, HK_LARGE, HK_HUGE, HK_FREE, HK_RELEASED, HK_UNUSED};
    uint64_t size = b->hi - b->lo, cum = 0;
    for (int i = 0; i < NHK; i++) {
        int64_t x0 = (int64_t)((uint64_t)len * cum / size);
        cum += b->kind[order[i]];
        kind_w[i] = (int64_t)((uint64_t)len * min_u64(cum, size) / size) - x0;
    }
}

static void draw_arena_bar(struct hm *h, const struct hm_row *r, int64_t y, int64_t len) {
    static const int order[NHK] = {HK_SMALL, HK_LARGE, HK_HUGE, HK_FREE, HK_RELEASED, HK_UNUSED};
    int64_t w[NHK], x = OV_BAR_X;
    char mid[8];
    class_color(h, h->nclasses / 2, mid);
    arena_segments(&h->blocks[r->block], w, len);
    for (int i = 0; i < NHK; i++) {
        if (w[i] > 0)
            rect(h, x, y, w[i], 11, order[i] == HK_SMALL ? mid : hk_fill[order[i]]);
        x += w[i];
    }
}

static void draw_bar(struct hm *h, const struct hm_row *r, int64_t y, unsigned steps) {
    uint64_t total = row_total(r), cum = 0;
    int64_t len = bar_len(total, steps), x0 = OV_BAR_X;
    if (r->block >= 0) {
        draw_arena_bar(h, r, y, len);
    } else {
        for (int k = 0; k < NMC; k++) {
            if (!r->bytes[k])
                continue;
            cum += r->bytes[k];
            int64_t x1 = OV_BAR_X + (int64_t)((uint64_t)len * cum / total);
            if (x1 > x0)
                rect(h, x0, y, x1 - x0, 11, mc_color[k]);
            x0 = x1;
        }
    }
    put(h, "<rect x=\"");
    putn(h, OV_BAR_X);
    attr(h, "y", y);
    attr(h, "width", len);
    put(h, "\" height=\"11\" fill=\"none\" stroke=\"#777\" stroke-width=\".5\"/>");
}

static void draw_ov_row(struct hm *h, const struct hm_row *r, int64_t y, unsigned steps) {
    put(h, "<g><title>");
    gm_rio_hex(&h->out, r->lo);
    put(h, "&#8211;");
    gm_rio_hex(&h->out, r->hi);
    put(h, " ");
    put_row_label(h, r);
    put(h, "</title>");
    text_at(h, MARGIN, y + 10, "m", NULL);
    gm_rio_hex(&h->out, r->lo);
    put(h, "</text>");
    text_at(h, OV_SIZE_X, y + 10, NULL, "end");
    gm_rio_bytes(&h->out, row_total(r));
    put(h, "</text>");
    draw_bar(h, r, y + 1, steps);
    text_at(h, OV_LABEL_X, y + 10, NULL, NULL);
    put_row_label(h, r);
    put(h, "</text></g>\n");
}

/* A collapsed gap: a dashed line and how much address space it hides. */
static void draw_gap(struct hm *h, uint64_t bytes, int64_t y) {
    put(h, "<line x1=\"");
    putn(h, OV_BAR_X);
    attr(h, "x2", SVG_W - MARGIN);
    attr(h, "y1", y + OV_GAP / 2);
    attr(h, "y2", y + OV_GAP / 2);
    put(h, "\" class=\"gap\"/>");
    text_at(h, MARGIN + 100, y + 8, "g", "end");
    put(h, "&#8942; ");
    gm_rio_bytes(&h->out, bytes);
    put(h, " gap</text>\n");
}

static void draw_log_axis(struct hm *h, int64_t y, int64_t bottom, unsigned steps) {
    label(h, MARGIN, y + 9, "g", NULL, "address");
    label(h, OV_SIZE_X, y + 9, "g", "end", "size");
    for (unsigned j = 0; j <= steps; j++) {
        int64_t x = OV_BAR_X + OV_BAR_W * (int64_t)j / steps;
        text_at(h, x, y + 9, "g", j == 0 ? "start" : "middle");
        gm_rio_bytes(&h->out, (uint64_t)4096 << (4 * j));
        put(h, "</text><line class=\"ax\" x1=\"");
        putn(h, x);
        attr(h, "x2", x);
        attr(h, "y1", y + 12);
        attr(h, "y2", bottom);
        put(h, "\"/>\n");
    }
}

static int64_t draw_overview(struct hm *h, int64_t y) {
    int64_t bottom = y + ov_height(h) - 8;
    label(h, MARGIN, y + 14, "h", NULL, "Address space");
    text_at(h, 130, y + 14, "g", NULL);
    put(h, "one row per mapping or group of neighbouring mappings, lowest address first; "
           "gaps collapsed; bar length = size on a log scale</text>\n");
    unsigned steps = ov_steps(h);
    draw_log_axis(h, y + 22, bottom, steps);
    y += 38;
    for (size_t i = 0; i < h->nrows; i++) {
        if (gap_before(h, i)) {
            draw_gap(h, h->rows[i].lo - h->rows[i - 1].hi, y);
            y += OV_GAP;
        }
        draw_ov_row(h, &h->rows[i], y, steps);
        y += OV_PITCH;
    }
    return bottom + 8;
}

/* ---- SVG: the arena map ------------------------------------------------ */

static int64_t grid_pitch(const struct hm *h) {
    return h->grid_rows <= 48 ? 14 : h->grid_rows <= 96 ? 10 : 8;
}

static int64_t grid_height(const struct hm *h) {
    return h->nblocks ? 46 + (int64_t)h->grid_rows * grid_pitch(h) + 8 : 30;
}

/* The block holding grid offset pos, or the last one below it. */
static size_t block_at(const struct hm *h, uint64_t pos) {
    size_t lo = 0, hi = h->nblocks;
    while (hi - lo > 1) {
        size_t mid = lo + (hi - lo) / 2;
        if (h->blocks[mid].pos <= pos)
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

/* How many bytes of arena each pixel of the row at row_pos stands for: a
 * whole pixel's worth, less where a block ends (or padding follows it). */
static void fill_caps(struct hm *h, uint64_t row_pos) {
    memset(h->cap, 0, sizeof h->cap);
    uint64_t row_end = row_pos + h->row_bytes;
    for (size_t b = block_at(h, row_pos); b < h->nblocks && h->blocks[b].pos < row_end; b++) {
        uint64_t lo = max_u64(h->blocks[b].pos, row_pos);
        uint64_t hi = min_u64(h->blocks[b].pos + (h->blocks[b].hi - h->blocks[b].lo), row_end);
        for (uint64_t p = lo; p < hi;) {
            uint64_t c = (p - row_pos) / h->bpp, next = min_u64(hi, row_pos + (c + 1) * h->bpp);
            h->cap[c] += (uint32_t)(next - p);
            p = next;
        }
    }
}

/* The style of one pixel: a size class (1..) with an occupancy bucket,
 * NHK_BASE + a heap kind, or 0 for no arena there. */
#define NHK_BASE 1000
static int cell_style(const struct hm *h, const struct hm_cell *c, uint32_t cap, int *occ) {
    *occ = OCC_BUCKETS - 1;
    if (!cap)
        return 0;
    uint64_t drawn = 0, best_bytes = 0;
    int best = HK_UNUSED;
    for (int k = 0; k < HK_UNUSED; k++) {
        drawn += c->kind[k];
        if (c->kind[k] > best_bytes) {
            best = k;
            best_bytes = c->kind[k];
        }
    }
    if (cap > drawn && cap - drawn > best_bytes)
        best = HK_UNUSED;
    if (best != HK_SMALL)
        return NHK_BASE + best;
    uint64_t occ5 = (uint64_t)c->used * OCC_BUCKETS / c->kind[HK_SMALL];
    *occ = (int)min_u64(occ5, OCC_BUCKETS - 1);
    unsigned cls = c->best_cls ? c->best_cls : 1;
    return (int)(cls < h->nclasses ? cls : h->nclasses - 1);
}

static void cell_run(struct hm *h, int64_t x0, int64_t x1, int64_t y, int64_t ht, int style, int occ) {
    put(h, "<rect x=\"");
    putn(h, GRID_X + x0);
    attr(h, "y", y);
    attr(h, "width", x1 - x0);
    attr(h, "height", ht);
    if (style >= NHK_BASE) {
        put(h, "\" class=\"k");
        putn(h, style - NHK_BASE);
    } else {
        put(h, "\" class=\"c");
        putn(h, style);
        put(h, " o");
        putn(h, occ);
    }
    put(h, "\"/>");
}

/* Neighbouring pixels of one style become one rectangle. */
static void draw_cells(struct hm *h, uint32_t g, int64_t y, int64_t ht) {
    const struct hm_cell *row = &h->grid[(uint64_t)g * GRID_W];
    int run_style = 0, run_occ = 0;
    int64_t run_x = 0;
    for (int64_t x = 0; x <= GRID_W; x++) {
        int occ = 0, style = x < GRID_W ? cell_style(h, &row[x], h->cap[x], &occ) : -1;
        if (x < GRID_W && style == run_style && occ == run_occ)
            continue;
        if (run_style > 0)
            cell_run(h, run_x, x, y, ht, run_style, run_occ);
        run_style = style;
        run_occ = occ;
        run_x = x;
    }
    put(h, "\n");
}

/* Where a block starts inside a row (packed layout): a black tick; where
 * one starts a row after another block: a line above the row. */
static void draw_block_marks(struct hm *h, uint64_t row_pos, int64_t y, int64_t ht) {
    for (size_t b = block_at(h, row_pos); b < h->nblocks; b++) {
        uint64_t pos = h->blocks[b].pos;
        if (b == 0 || pos < row_pos)
            continue;
        if (pos >= row_pos + h->row_bytes)
            break;
        if (pos == row_pos)
            rect(h, GRID_X - 4, y - 2, GRID_W + 4, 1, "#333");
        else
            rect(h, GRID_X + (int64_t)((pos - row_pos) / h->bpp) - 1, y - 2, 2, ht + 4, "#000");
    }
}

static void draw_grid_row(struct hm *h, uint32_t g, int64_t y, int64_t ht) {
    uint64_t row_pos = (uint64_t)g * h->row_bytes;
    const struct hm_block *b = &h->blocks[block_at(h, row_pos)];
    if (row_pos < b->pos + (b->hi - b->lo)) {
        text_at(h, GRID_X - 6, y + ht - 1, ht >= 9 ? "m" : "ms", "end");
        gm_rio_hex(&h->out, b->lo + (row_pos - b->pos));
        put(h, "</text>");
    }
    fill_caps(h, row_pos);
    draw_cells(h, g, y, ht);
    draw_block_marks(h, row_pos, y, ht);
}

static void draw_grid_axis(struct hm *h, int64_t y) {
    for (int q = 0; q <= 4; q++) {
        int64_t x = GRID_X + GRID_W * q / 4;
        text_at(h, x, y + 9, "g", q == 0 ? "start" : q == 4 ? "end" : "middle");
        put(h, "+");
        gm_rio_bytes(&h->out, h->row_bytes / 4 * (uint64_t)q);
        put(h, "</text>");
        rect(h, x - (q == 4), y + 11, 1, 4, "#999");
    }
    put(h, "\n");
}

static int64_t draw_grid(struct hm *h, int64_t y) {
    label(h, MARGIN, y + 14, "h", NULL, "gomalloc arenas");
    if (!h->nblocks) {
        text_at(h, 150, y + 14, "g", NULL);
        put(h, "none were given</text>\n");
        return y + grid_height(h);
    }
    text_at(h, 150, y + 14, "g", NULL);
    put_bytes_kind(h, "one row = ", h->row_bytes);
    put_bytes_kind(h, ", one pixel = ", h->bpp);
    put(h, "; a pixel shows what holds most of its bytes");
    if (h->packed)
        put(h, "; arenas far apart are drawn back to back, a black tick marks where one starts");
    put(h, "</text>\n");
    draw_grid_axis(h, y + 24);
    int64_t pitch = grid_pitch(h), top = y + 46;
    for (uint32_t g = 0; g < h->grid_rows; g++)
        draw_grid_row(h, g, top + (int64_t)g * pitch, pitch - (pitch > 8 ? 2 : 1));
    return y + grid_height(h);
}

/* ---- SVG: legend ------------------------------------------------------- */

#define LEGEND_H 150

static void swatch(struct hm *h, int64_t x, int64_t y, const char *fill, const char *cls) {
    put(h, "<rect x=\"");
    putn(h, x);
    attr(h, "y", y);
    put(h, "\" width=\"12\" height=\"12\" stroke=\"#999\" stroke-width=\".5\"");
    if (fill) {
        put(h, " fill=\"");
        put(h, fill);
    } else {
        put(h, " class=\"");
        put(h, cls);
    }
    put(h, "\"/>");
}

static void legend_mappings(struct hm *h, int64_t y) {
    label(h, MARGIN, y + 10, NULL, NULL, "Mappings");
    for (int k = 0; k < NMC; k++) {
        int64_t x = 130 + (k % 7) * 150, yy = y + (k / 7) * 18;
        swatch(h, x, yy, mc_color[k], NULL);
        label(h, x + 17, yy + 10, NULL, NULL, mc_name[k]);
    }
    put(h, "\n");
}

/* The class ramp, labelled at every eighth class with its object size. */
static void legend_classes(struct hm *h, int64_t y) {
    label(h, MARGIN, y + 16, NULL, NULL, "Size class");
    unsigned n = h->nclasses > 1 ? h->nclasses - 1 : 1;
    int64_t cw = 900 / (int64_t)n > 14 ? 14 : 900 / (int64_t)n;
    for (unsigned c = 1; c <= n; c++) {
        int64_t x = 130 + (int64_t)(c - 1) * cw;
        put(h, "<rect x=\"");
        putn(h, x);
        attr(h, "y", y + 6);
        attr(h, "width", cw);
        put(h, "\" height=\"12\" class=\"c");
        putn(h, c);
        put(h, "\"/>");
        if (c != n && (c % 8 || c + 4 > n) && c != 1)
            continue;   /* every eighth, the ends, none crowding the last */
        text_at(h, x + cw / 2, y + 3, "g", "middle");
        putn(h, c);
        put(h, "</text>");
        if (h->opts && h->opts->class_bytes && c < h->opts->nclasses) {
            text_at(h, x + cw / 2, y + 29, "g", "middle");
            gm_rio_bytes(&h->out, h->opts->class_bytes[c]);
            put(h, "</text>");
        }
    }
    put(h, "\n");
}

static void legend_pages(struct hm *h, int64_t y) {
    label(h, MARGIN, y + 10, NULL, NULL, "Small span in use");
    unsigned mid = h->nclasses / 2;
    for (int b = 0; b < OCC_BUCKETS; b++) {
        char cls[16] = "c";
        size_t n = 1 + gm_rio_fmt_dec(cls + 1, mid);
        memcpy(cls + n, " o", 2);
        cls[n + 2 + gm_rio_fmt_dec(cls + n + 2, (uint64_t)b)] = '\0';
        swatch(h, 130 + b * 100, y, NULL, cls);
        label(h, 147 + b * 100, y + 10, NULL, NULL, occ_name[b]);
    }
    label(h, MARGIN, y + 34, NULL, NULL, "Other pages");
    static const int kinds[] = {HK_FREE, HK_RELEASED, HK_LARGE, HK_HUGE, HK_UNUSED};
    for (int i = 0; i < 5; i++) {
        char cls[4] = {'k', (char)('0' + kinds[i]), 0, 0};
        swatch(h, 130 + i * 180, y + 24, NULL, cls);
        label(h, 147 + i * 180, y + 34, NULL, NULL, hk_name[kinds[i]]);
    }
    put(h, "\n");
}

static void draw_legend(struct hm *h, int64_t y) {
    legend_mappings(h, y);
    legend_classes(h, y + 46);
    legend_pages(h, y + 92);
    text_at(h, MARGIN, y + 146, "g", NULL);
    put(h, "Arena map: a pixel takes the colour of the kind holding most of its bytes; small spans "
           "by their size class, paler when fewer of their objects are in use. This report's own "
           "scratch memory is left out.</text>\n");
}

/* ---- the whole picture ------------------------------------------------- */

void gm_hm_render(struct hm *h) {
    int64_t top = 76;
    int64_t grid_top = top + ov_height(h) + 10;
    int64_t legend_top = grid_top + grid_height(h) + 10;
    svg_begin(h, legend_top + LEGEND_H + MARGIN);
    draw_summary(h);
    draw_overview(h, top);
    draw_grid(h, grid_top);
    draw_legend(h, legend_top);
    put(h, "</svg>\n");
}
