/*
 * test_heapmap_svg.c — the SVG map of the address space (alloc/heapmap_svg.c).
 *
 * A fabricated heap in a real 64 MiB mapping (so /proc/self/maps shows it)
 * is drawn, and the picture is checked the way a person would use it: the
 * SVG must be well-formed (xmllint, from libxml2-utils), render with a real
 * renderer (rsvg-convert, from librsvg2-bin), and the rendered PNG must show
 * the spans where they are: the test compares the pixels of the arena map's rows (decoded here, with the system's zlib)
 * with the colours the SVG's style gives the classes and kinds the test put
 * there.  Bigger cases check that many
 * GiB and thousands of mappings still make a picture of bounded size.
 *
 * GM_HEAPMAP_KEEP=DIR keeps the SVG and PNG files there, to look at.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "heapmap_svg.h"
#include "sizeclasses.h"
#include "count_malloc.h"   /* the writer must not call them */
#include "testutil.h"

/* ---- a fabricated heap ------------------------------------------------- */

#define PAGE ((size_t)8192)
#define ARENA (64 * MiB)

/* Spans come from a list the test builds; regions too. */
struct heap {
    struct gm_map_region regions[512];
    size_t nregions, next_region;
    struct gm_map_span *spans;
    size_t nspans, cap, next_span;
};

static int next_region(void *ctx, struct gm_map_region *out) {
    struct heap *h = ctx;
    if (h->next_region == h->nregions)
        return 0;
    *out = h->regions[h->next_region++];
    return 1;
}

static int next_span(void *ctx, struct gm_map_span *out) {
    struct heap *h = ctx;
    if (h->next_span == h->nspans)
        return 0;
    *out = h->spans[h->next_span++];
    return 1;
}

static void add_span(struct heap *h, uintptr_t base, size_t bytes, int kind, int cls, int permille) {
    if (h->nspans == h->cap) {
        h->cap = h->cap ? 2 * h->cap : 4096;
        h->spans = realloc(h->spans, h->cap * sizeof *h->spans);
    }
    h->spans[h->nspans++] = (struct gm_map_span){
        .base = base, .bytes = bytes, .kind = (uint8_t)kind, .cls = (uint8_t)cls,
        .used_permille = (uint16_t)permille,
    };
}

static void rewind_heap(struct heap *h) {
    h->next_region = h->next_span = 0;
}

static unsigned rnd_state = 12345;
static unsigned rnd(void) {
    rnd_state = rnd_state * 1103515245u + 12345u;
    return rnd_state >> 8;
}

/* A mapping of bytes at a 64 MiB boundary, as gomalloc reserves its
 * arenas: reserved (PROT_NONE) with the first committed bytes readable.
 * Exactly [base, base + bytes) stays mapped. */
static uintptr_t map_arena(size_t bytes, size_t committed) {
    char *raw = mmap(NULL, bytes + ARENA, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    assert_true(raw != MAP_FAILED);
    uintptr_t base = ((uintptr_t)raw + ARENA - 1) & ~(uintptr_t)(ARENA - 1);
    if (base > (uintptr_t)raw)
        munmap(raw, base - (uintptr_t)raw);
    munmap((void *)(base + bytes), (uintptr_t)raw + bytes + ARENA - (base + bytes));
    if (committed)
        assert_int_equal(mprotect((void *)base, committed, PROT_READ | PROT_WRITE), 0);
    return base;
}

/* A busy heap, as a program that allocated and freed for a while leaves
 * it: mostly runs of small spans (small classes the most common, spans
 * fuller the more common), some large blocks, free and released runs. */
static size_t busy_piece(struct heap *h, uintptr_t at) {
    unsigned r = rnd() % 100;
    if (r < 80) {
        unsigned cls = 1 + (rnd() % 41) * (rnd() % 41) / 26, run = 1 + rnd() % 24;
        size_t bytes = gm_class_pages[cls] * PAGE;
        for (unsigned i = 0; i < run; i++) {
            unsigned occ = 1000 - (rnd() % 1000) * (rnd() % 1000) / 1000 * cls / 65;
            add_span(h, at + i * bytes, bytes, GM_MAP_SMALL, (int)cls, (int)occ);
        }
        return run * bytes;
    }
    size_t pages = r < 88 ? 5 + rnd() % 60 : 1 + rnd() % 32;
    add_span(h, at, pages * PAGE, r < 88 ? GM_MAP_LARGE : r < 95 ? GM_MAP_FREE : GM_MAP_RELEASED, 0, 0);
    return pages * PAGE;
}

static void fill_busy(struct heap *h, uintptr_t lo, uintptr_t hi) {
    size_t first = h->nspans;
    for (uintptr_t at = lo; at < hi;)
        at += busy_piece(h, at);
    while (h->nspans > first && h->spans[h->nspans - 1].base >= hi)
        h->nspans--;
    struct gm_map_span *last = &h->spans[h->nspans - 1];
    if (last->base + last->bytes > hi)
        last->bytes = hi - last->base;
}

/* The demonstration heap: in one 64 MiB arena, MiB 0 holds only class 5
 * spans, full; MiB 1 one large block; MiB 2 released pages; MiB 3 free
 * pages; MiB 4 class 40 spans, half full; MiB 5..39 a busy mix; the rest
 * was never used.  A second region holds a 48 MiB huge block. */
struct demo {
    struct heap heap;
    uintptr_t arena, huge;
};

static void build_demo(struct demo *d) {
    memset(d, 0, sizeof *d);
    d->arena = map_arena(ARENA, 40 * MiB);
    uintptr_t a = d->arena;
    for (size_t off = 0; off < MiB; off += PAGE)
        add_span(&d->heap, a + off, PAGE, GM_MAP_SMALL, 5, 1000);
    add_span(&d->heap, a + MiB, MiB, GM_MAP_LARGE, 0, 0);
    add_span(&d->heap, a + 2 * MiB, MiB, GM_MAP_RELEASED, 0, 0);
    add_span(&d->heap, a + 3 * MiB, MiB, GM_MAP_FREE, 0, 0);
    for (size_t off = 4 * MiB; off < 5 * MiB; off += gm_class_pages[40] * PAGE)
        add_span(&d->heap, a + off, gm_class_pages[40] * PAGE, GM_MAP_SMALL, 40, 500);
    d->heap.spans[d->heap.nspans - 1].bytes = a + 5 * MiB - d->heap.spans[d->heap.nspans - 1].base;
    fill_busy(&d->heap, a + 5 * MiB, a + 40 * MiB);
    d->heap.regions[d->heap.nregions++] = (struct gm_map_region){a, a + ARENA};
    d->huge = map_arena(48 * MiB, 48 * MiB);
    add_span(&d->heap, d->huge, 48 * MiB, GM_MAP_HUGE, 0, 0);
    d->heap.regions[d->heap.nregions++] = (struct gm_map_region){d->huge, d->huge + 48 * MiB};
}

static void free_demo(struct demo *d) {
    free(d->heap.spans);
    munmap((void *)d->arena, ARENA);
    munmap((void *)d->huge, 48 * MiB);
}

/* ---- files and tools --------------------------------------------------- */

static const struct gm_heapmap_opts class_opts = {gm_class_size, GM_NUM_CLASSES, NULL};

static int have(const char *tool) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

/* Writes the picture of heap to a new file; returns its path (static). */
static const char *write_svg(struct heap *heap, const char *name) {
    static char path[512];
    const char *keep = getenv("GM_HEAPMAP_KEEP");
    snprintf(path, sizeof path, "%s/%s.svg", keep ? keep : "/tmp", name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    rewind_heap(heap);
    assert_int_equal(gm_heapmap_write_svg_ex(fd, next_region, next_span, heap, &class_opts), 0);
    close(fd);
    return path;
}

static char *slurp(const char *path, size_t *len) {
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    char *s = malloc((size_t)st.st_size + 1);
    assert_int_equal(read(fd, s, (size_t)st.st_size), st.st_size);
    s[st.st_size] = '\0';
    close(fd);
    if (len)
        *len = (size_t)st.st_size;
    return s;
}

static size_t count(const char *s, const char *what) {
    size_t n = 0;
    for (const char *p = s; (p = strstr(p, what)) != NULL; p += strlen(what))
        n++;
    return n;
}

static void check_xml(const char *svg) {
    if (!have("xmllint"))
        return;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", svg);
    assert_int_equal(system(cmd), 0);
}

/* Renders svg to svg.png; returns the PNG's path, or NULL without rsvg. */
static const char *render_png(const char *svg) {
    static char png[600];
    if (!have("rsvg-convert"))
        return NULL;
    snprintf(png, sizeof png, "%s.png", svg);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "rsvg-convert -o '%s' '%s'", png, svg);
    assert_int_equal(system(cmd), 0);
    return png;
}

static void drop(const char *path) {
    if (!getenv("GM_HEAPMAP_KEEP"))
        unlink(path);
}

/* ---- pixels of the rendered picture ------------------------------------ */

/* The PNG rsvg-convert writes (8-bit RGB or RGBA, not interlaced), decoded
 * with the system's zlib, loaded at run time so the test links with nothing
 * more than the other unit tests do. */
struct image {
    uint32_t w, h;
    unsigned bpp;
    uint8_t *px;          /* h rows of w * bpp bytes */
};

typedef int (*uncompress_fn)(uint8_t *, unsigned long *, const uint8_t *, unsigned long);

static uncompress_fn zlib_uncompress(void) {
    void *z = dlopen("libz.so.1", RTLD_NOW);
    return z ? (uncompress_fn)(uintptr_t)dlsym(z, "uncompress") : NULL;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

static uint8_t paeth(int a, int b, int c) {
    int p = a + b - c, pa = abs(p - a), pb = abs(p - b), pc = abs(p - c);
    return (uint8_t)(pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
}

/* Undoes the per-row filters of PNG (none, sub, up, average, Paeth). */
static void unfilter(struct image *img, const uint8_t *raw) {
    size_t stride = (size_t)img->w * img->bpp;
    for (uint32_t y = 0; y < img->h; y++) {
        const uint8_t *in = raw + y * (stride + 1) + 1;
        uint8_t *out = img->px + y * stride, *up = y ? out - stride : NULL;
        unsigned f = in[-1];
        for (size_t i = 0; i < stride; i++) {
            int a = i >= img->bpp ? out[i - img->bpp] : 0, b = up ? up[i] : 0;
            int c = up && i >= img->bpp ? up[i - img->bpp] : 0;
            int pred = f == 1 ? a : f == 2 ? b : f == 3 ? (a + b) / 2 : f == 4 ? paeth(a, b, c) : 0;
            out[i] = (uint8_t)(in[i] + pred);
        }
    }
}

/* 0 when there is no zlib to decode with (the pixel checks are skipped). */
static int load_png(const char *path, struct image *img) {
    uncompress_fn inflate_all = zlib_uncompress();
    if (!inflate_all)
        return 0;
    size_t len;
    uint8_t *png = (uint8_t *)slurp(path, &len), *idat = malloc(len);
    size_t nidat = 0;
    assert_memory_equal(png, "\x89PNG\r\n\x1a\n", 8);
    for (size_t pos = 8; pos + 12 <= len;) {
        uint32_t n = be32(png + pos);
        const uint8_t *body = png + pos + 8;
        if (!memcmp(png + pos + 4, "IHDR", 4)) {
            img->w = be32(body);
            img->h = be32(body + 4);
            assert_int_equal(body[8], 8);    /* bit depth */
            assert_int_equal(body[12], 0);   /* not interlaced */
            img->bpp = body[9] == 6 ? 4 : 3;
        } else if (!memcmp(png + pos + 4, "IDAT", 4)) {
            memcpy(idat + nidat, body, n);
            nidat += n;
        }
        pos += 12 + (size_t)n;
    }
    unsigned long rawlen = (unsigned long)img->h * (img->w * img->bpp + 1);
    uint8_t *raw = malloc(rawlen);
    assert_int_equal(inflate_all(raw, &rawlen, idat, nidat), 0);
    img->px = malloc((size_t)img->h * img->w * img->bpp);
    unfilter(img, raw);
    free(raw);
    free(idat);
    free(png);
    return 1;
}

/* The colour the SVG's style gives CSS class cls, as 0xrrggbb. */
static uint32_t style_color(const char *svg, const char *cls) {
    char key[32];
    snprintf(key, sizeof key, ".%s{fill:#", cls);
    const char *p = strstr(svg, key);
    assert_non_null(p);
    return (uint32_t)strtoul(p + strlen(key), NULL, 16);
}

/* The y of a pixel line inside the arena-map row labelled addr. */
static uint32_t row_y(const char *svg, uintptr_t addr) {
    char label[64];
    snprintf(label, sizeof label, "text-anchor=\"end\">0x%lx<", (unsigned long)addr);
    const char *p = strstr(svg, label);
    assert_non_null(p);
    while (p > svg && memcmp(p, " y=\"", 4) != 0)
        p--;
    return (uint32_t)strtoul(p + 4, NULL, 10) - 2;   /* the label sits on the row's foot */
}

/* The share of the row's pixels, across the map, of class cls's colour;
 * with cls NULL, the share that is not white. */
static double row_share(const char *svg, const struct image *img, uintptr_t addr, const char *cls) {
    uint32_t want = cls ? style_color(svg, cls) : 0xffffff, y = row_y(svg, addr), hits = 0;
    for (uint32_t x = 150; x < 150 + 1024; x++) {
        const uint8_t *p = img->px + ((size_t)y * img->w + x) * img->bpp;
        uint32_t rgb = (uint32_t)p[0] << 16 | (uint32_t)p[1] << 8 | p[2];
        hits += cls ? rgb == want : rgb != want;
    }
    return hits / 1024.0;
}

/* ---- tests ------------------------------------------------------------- */

static void test_demo_heap_is_drawn(void **state) {
    (void)state;
    struct demo d;
    build_demo(&d);
    const char *svg = write_svg(&d.heap, "heapmap_demo");
    char *text = slurp(svg, NULL);
    assert_non_null(strstr(text, "gomalloc arena"));
    assert_non_null(strstr(text, "one row = 1 MiB, one pixel = 1 KiB"));
    free(text);
    check_xml(svg);
    const char *png = render_png(svg);
    struct image img;
    if (png && load_png(png, &img)) {
        text = slurp(svg, NULL);
        /* MiB 0: class 5, full; MiB 1: large; MiB 3: free; MiB 2: released,
         * hatched, so partly white; MiB 50: never used; the huge block. */
        assert_true(row_share(text, &img, d.arena, "c5") > 0.99);
        assert_true(row_share(text, &img, d.arena + MiB, "k3") > 0.99);
        assert_true(row_share(text, &img, d.arena + 3 * MiB, "k0") > 0.99);
        double rel = row_share(text, &img, d.arena + 2 * MiB, NULL);
        assert_true(rel > 0.2 && rel < 0.9);
        assert_true(row_share(text, &img, d.arena + 50 * MiB, "k5") > 0.99);
        assert_true(row_share(text, &img, d.huge + 8 * MiB, "k4") > 0.99);
        assert_true(row_share(text, &img, d.arena + 20 * MiB, NULL) > 0.9);
        free(img.px);
        free(text);
    }
    if (png)
        drop(png);
    drop(svg);
    free_demo(&d);
}

/* Pixels add up spans below their size: at one pixel per 256 KiB, a row of
 * 1-page class 5 spans is still drawn in class 5's colour. */
static void test_many_gib_aggregates(void **state) {
    (void)state;
    struct heap heap = {0};
    size_t arenas = 64;   /* 4 GiB reserved, no commit charge */
    uintptr_t base = map_arena(arenas * ARENA, 0);
    for (size_t i = 0; i < arenas; i++)
        heap.regions[heap.nregions++] = (struct gm_map_region){base + i * ARENA, base + (i + 1) * ARENA};
    for (size_t off = 0; off < 256 * MiB; off += PAGE)
        add_span(&heap, base + off, PAGE, GM_MAP_SMALL, 5, 1000);
    fill_busy(&heap, base + 256 * MiB, base + 1536 * MiB);
    add_span(&heap, base + 1536 * MiB, 512 * MiB, GM_MAP_RELEASED, 0, 0);
    const char *svg = write_svg(&heap, "heapmap_4gib");
    size_t len;
    char *text = slurp(svg, &len);
    assert_non_null(strstr(text, "one row = 32 MiB, one pixel = 32 KiB"));
    assert_true(len < 4 * MiB);
    free(text);
    check_xml(svg);
    const char *png = render_png(svg);
    struct image img;
    if (png && load_png(png, &img)) {
        text = slurp(svg, NULL);
        assert_true(row_share(text, &img, base, "c5") > 0.99);
        assert_true(row_share(text, &img, base + 3 * ARENA, "c5") > 0.99);
        assert_true(row_share(text, &img, base + 40 * ARENA, "k5") > 0.99);
        free(img.px);
        free(text);
    }
    if (png)
        drop(png);
    drop(svg);
    munmap((void *)base, arenas * ARENA);
    free(heap.spans);
}

/* Thousands of mappings collapse to a readable number of rows. */
static void test_thousands_of_mappings(void **state) {
    (void)state;
    enum { MAPPINGS = 3000 };
    size_t bytes = 2 * MAPPINGS * 4096;
    char *area = mmap(NULL, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(area != MAP_FAILED);
    for (size_t i = 0; i < 2 * MAPPINGS; i += 2)   /* alternate so none merge */
        assert_int_equal(mprotect(area + i * 4096, 4096, PROT_READ | PROT_WRITE), 0);
    struct heap heap = {0};
    struct demo d;
    build_demo(&d);
    heap = d.heap;
    const char *svg = write_svg(&heap, "heapmap_many");
    char *text = slurp(svg, NULL);
    size_t rows = count(text, "<g><title>");
    assert_true(rows >= 5 && rows <= 48);
    assert_non_null(strstr(text, " mappings"));
    free(text);
    check_xml(svg);
    const char *png = render_png(svg);
    if (png)
        drop(png);
    drop(svg);
    munmap(area, bytes);
    free_demo(&d);
}

/* Regions scattered far apart are packed into shared rows, with ticks. */
static void test_scattered_regions_packed(void **state) {
    (void)state;
    struct heap heap = {0};
    uintptr_t base = (uintptr_t)1 << 44;
    for (size_t i = 0; i < 500; i++) {   /* not mapped: only drawn */
        uintptr_t lo = base + i * (64 * MiB) * 7;
        heap.regions[heap.nregions++] = (struct gm_map_region){lo, lo + 4 * MiB};
        add_span(&heap, lo, 2 * MiB, GM_MAP_HUGE, 0, 0);
    }
    const char *svg = write_svg(&heap, "heapmap_scattered");
    char *text = slurp(svg, NULL);
    assert_non_null(strstr(text, "a black tick marks where one starts"));
    assert_true(count(text, "class=\"ms\" text-anchor=\"end\">0x") <= 128);
    free(text);
    check_xml(svg);
    drop(svg);
    free(heap.spans);
}

static void test_no_regions(void **state) {
    (void)state;
    struct heap heap = {0};
    const char *svg = write_svg(&heap, "heapmap_none");
    char *text = slurp(svg, NULL);
    assert_non_null(strstr(text, "none were given"));
    assert_non_null(strstr(text, "</svg>"));
    free(text);
    check_xml(svg);
    drop(svg);
}

/* A file whose name holds markup characters: still well-formed. */
static void test_names_escaped(void **state) {
    (void)state;
    const char *name = "/tmp/gm map a&b<c>\"d\".dat";
    int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 65536), 0);
    void *m = mmap(NULL, 65536, PROT_READ, MAP_SHARED, fd, 0);
    assert_true(m != MAP_FAILED);
    struct heap heap = {0};
    const char *svg = write_svg(&heap, "heapmap_names");
    char *text = slurp(svg, NULL);
    assert_non_null(strstr(text, "gm map a&amp;b&lt;c&gt;&quot;d&quot;.dat"));
    free(text);
    check_xml(svg);
    drop(svg);
    munmap(m, 65536);
    close(fd);
    unlink(name);
}

static pthread_barrier_t threads_up, threads_done;

static void *park(void *arg) {
    (void)arg;
    pthread_barrier_wait(&threads_up);
    pthread_barrier_wait(&threads_done);
    return NULL;
}

/* Threads' stacks (a guard page below each) are named as such. */
static void test_thread_stacks_named(void **state) {
    (void)state;
    enum { THREADS = 3 };
    pthread_t t[THREADS];
    pthread_barrier_init(&threads_up, NULL, THREADS + 1);
    pthread_barrier_init(&threads_done, NULL, THREADS + 1);
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&t[i], NULL, park, NULL), 0);
    pthread_barrier_wait(&threads_up);
    struct heap heap = {0};
    const char *svg = write_svg(&heap, "heapmap_threads");
    pthread_barrier_wait(&threads_done);
    for (int i = 0; i < THREADS; i++)
        pthread_join(t[i], NULL);
    char *text = slurp(svg, NULL);
    assert_true(count(text, "thread stack") >= 3);   /* the legend, a title, a label */
    free(text);
    drop(svg);
}

static void test_never_allocates(void **state) {
    (void)state;
    struct demo d;
    build_demo(&d);
    int fd = open("/dev/null", O_WRONLY);
    assert_true(fd >= 0);
    malloc_calls = 0;
    counting = 1;
    int rc = gm_heapmap_write_svg(fd, next_region, next_span, &d.heap);
    counting = 0;
    close(fd);
    assert_int_equal(rc, 0);
    assert_int_equal(malloc_calls, 0);
    free_demo(&d);
}

static void test_write_errors_reported(void **state) {
    (void)state;
    struct demo d;
    build_demo(&d);
    int fd = open("/dev/full", O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(gm_heapmap_write_svg(fd, next_region, next_span, &d.heap), -1);
    close(fd);
    rewind_heap(&d.heap);
    assert_int_equal(gm_heapmap_write_svg(-1, next_region, next_span, &d.heap), -1);
    free_demo(&d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_demo_heap_is_drawn),
        cmocka_unit_test(test_many_gib_aggregates),
        cmocka_unit_test(test_thousands_of_mappings),
        cmocka_unit_test(test_scattered_regions_packed),
        cmocka_unit_test(test_no_regions),
        cmocka_unit_test(test_names_escaped),
        cmocka_unit_test(test_thread_stacks_named),
        cmocka_unit_test(test_never_allocates),
        cmocka_unit_test(test_write_errors_reported),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
