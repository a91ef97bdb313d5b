/*
 * stats_report.c — gomalloc's statistics for people and programs: the text report
 * (malloc_stats, gm_print_stats, GOMALLOC_STATS=1), the same as one JSON
 * object (gm_print_stats_json, GOMALLOC_STATS=json), glibc's malloc_info XML
 * (gm_malloc_info_xml), and the report, heap map and profile written at exit.
 *
 * Nothing here calls malloc or stdio: a report may be asked for while the
 * heap is in trouble, from a fork child, or at exit after stdio is gone.
 * Text and JSON are formatted through a stack buffer and leave with
 * write(2); the XML, which malloc_info must hand to a FILE, is built whole in
 * mmap'd memory first (see gm_malloc_info_xml).  The figures come from one
 * gm_get_memstats snapshot per report, so a report agrees with itself.
 *
 * Locking: none of its own; gm_get_memstats takes the allocator's locks one
 * at a time, and no lock is held while the report is written.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <string.h>
#include <unistd.h>

#include "gomalloc.h"
#include "internal.h"
#include "report_io.h"

static void put(struct gm_rio_out *o, const char *s) { gm_rio_str(o, s); }

/* v right-aligned in width columns. */
static void put_col(struct gm_rio_out *o, uint64_t v, size_t width) {
    char digits[24];
    size_t n = gm_rio_fmt_dec(digits, v);
    while (n < width--)
        gm_rio_put(o, " ", 1);
    gm_rio_put(o, digits, n);
}

/* A label padded to 34 columns, then v in 16. */
static void put_labelled(struct gm_rio_out *o, const char *label, uint64_t v) {
    size_t n = strlen(label);
    put(o, label);
    while (n++ < 34)
        gm_rio_put(o, " ", 1);
    put_col(o, v, 16);
}

/* The bytes, and the same for people. */
static void put_total(struct gm_rio_out *o, const char *label, uint64_t bytes) {
    put_labelled(o, label, bytes);
    put(o, " bytes  (");
    gm_rio_bytes(o, bytes);
    put(o, ")\n");
}

static void put_count(struct gm_rio_out *o, const char *label, uint64_t v) {
    put_labelled(o, label, v);
    put(o, "\n");
}

static void text_totals(struct gm_rio_out *o, const struct gm_memstats *m) {
    put(o, "gomalloc " GOMALLOC_VERSION_STRING " heap statistics\n");
    put_total(o, "in use by the program", m->in_use);
    put_total(o, "in spans and blocks", m->in_spans);
    put_total(o, "idle (free, backed)", m->idle);
    put_total(o, "released to the OS", m->released);
    put_total(o, "obtained from the OS (reserved)", m->obtained);
    put_total(o, "  of which committed", m->committed);
    put_total(o, "  of which metadata", m->metadata);
    put_total(o, "in thread caches", m->thread_caches);
    put_total(o, "in caches of exited threads", m->parked_caches);
    put_total(o, "in central batches", m->parked_batches);
    put_total(o, "peak in spans and blocks", m->peak_in_spans);
    put_count(o, "allocations (at least)", m->allocs);
    put_count(o, "frees (at least)", m->frees);
    put_count(o, "threads with a cache", m->threads);
}

static void text_classes(struct gm_rio_out *o, const struct gm_memstats *m) {
    put(o, "class  object    in use      in use   spans    span bytes    unused"
           "        allocs         frees\n");
    for (uint32_t cls = 1; cls < m->nclasses; cls++) {
        const struct gm_class_stats *c = &m->classes[cls];
        if (!c->spans && !c->allocs && !c->frees)
            continue;
        put_col(o, cls, 5);
        put_col(o, c->object_size, 8);
        put_col(o, c->objects_in_use, 10);
        put_col(o, c->objects_in_use * c->object_size, 12);
        put_col(o, c->spans, 8);
        put_col(o, c->span_bytes, 14);
        put_col(o, c->unused_bytes, 10);
        put_col(o, c->allocs, 14);
        put_col(o, c->frees, 14);
        put(o, "\n");
    }
}

static void text_blocks(struct gm_rio_out *o, const char *name, const struct gm_block_stats *b) {
    put(o, name);
    put_col(o, b->blocks, 10);
    put_col(o, b->bytes, 16);
    put_col(o, b->cached_bytes, 14);
    put_col(o, b->allocs, 14);
    put_col(o, b->frees, 14);
    put(o, "\n");
}

static void write_text(struct gm_rio_out *o, const struct gm_memstats *m) {
    text_totals(o, m);
    text_classes(o, m);
    put(o, "blocks      count           bytes  thread-cached        allocs         frees\n");
    text_blocks(o, "large ", &m->large);
    text_blocks(o, "huge  ", &m->huge);
}

/* ---- JSON -------------------------------------------------------------- */

static void json_field(struct gm_rio_out *o, const char *name, uint64_t v, bool comma) {
    put(o, comma ? ",\"" : "\"");
    put(o, name);
    put(o, "\":");
    gm_rio_dec(o, v);
}

static void json_blocks(struct gm_rio_out *o, const char *name, const struct gm_block_stats *b) {
    put(o, ",\"");
    put(o, name);
    put(o, "\":{");
    json_field(o, "blocks", b->blocks, false);
    json_field(o, "bytes", b->bytes, true);
    json_field(o, "cached_bytes", b->cached_bytes, true);
    json_field(o, "allocs", b->allocs, true);
    json_field(o, "frees", b->frees, true);
    put(o, "}");
}

static void write_json(struct gm_rio_out *o, const struct gm_memstats *m) {
    put(o, "{\"gomalloc\":\"" GOMALLOC_VERSION_STRING "\"");
    json_field(o, "version", m->version, true);
    json_field(o, "in_use", m->in_use, true);
    json_field(o, "in_spans", m->in_spans, true);
    json_field(o, "idle", m->idle, true);
    json_field(o, "released", m->released, true);
    json_field(o, "obtained", m->obtained, true);
    json_field(o, "committed", m->committed, true);
    json_field(o, "metadata", m->metadata, true);
    json_field(o, "thread_caches", m->thread_caches, true);
    json_field(o, "parked_caches", m->parked_caches, true);
    json_field(o, "parked_batches", m->parked_batches, true);
    json_field(o, "peak_in_spans", m->peak_in_spans, true);
    json_field(o, "allocs", m->allocs, true);
    json_field(o, "frees", m->frees, true);
    json_field(o, "threads", m->threads, true);
    put(o, ",\"classes\":[");
    for (uint32_t cls = 1; cls < m->nclasses; cls++) {
        const struct gm_class_stats *c = &m->classes[cls];
        put(o, cls > 1 ? ",{" : "{");
        json_field(o, "class", cls, false);
        json_field(o, "object_size", c->object_size, true);
        json_field(o, "objects_in_use", c->objects_in_use, true);
        json_field(o, "spans", c->spans, true);
        json_field(o, "span_bytes", c->span_bytes, true);
        json_field(o, "unused_bytes", c->unused_bytes, true);
        json_field(o, "allocs", c->allocs, true);
        json_field(o, "frees", c->frees, true);
        put(o, "}");
    }
    put(o, "]");
    json_blocks(o, "large", &m->large);
    json_blocks(o, "huge", &m->huge);
    put(o, "}\n");
}

/* ---- glibc's malloc_info XML --------------------------------------------- */

/* Free slots of a class: every object its spans hold, less those in use
 * (cached objects are free slots too; glibc lists its bins the same way). */
static uint64_t free_slots(const struct gm_class_stats *c) {
    uint64_t slots = c->object_size ? c->span_bytes / c->object_size : 0;
    return slots > c->objects_in_use ? slots - c->objects_in_use : 0;
}

static void xml_attr(struct gm_rio_out *o, const char *name, uint64_t v) {
    put(o, " ");
    put(o, name);
    put(o, "=\"");
    gm_rio_dec(o, v);
    put(o, "\"");
}

static void xml_total(struct gm_rio_out *o, const char *tag, const char *type, uint64_t count,
                      bool with_count, uint64_t size) {
    put(o, "<");
    put(o, tag);
    put(o, " type=\"");
    put(o, type);
    put(o, "\"");
    if (with_count)
        xml_attr(o, "count", count);
    xml_attr(o, "size", size);
    put(o, "/>\n");
}

/* The figures both the heap and the whole report carry, as glibc does:
 * "fast" are the thread caches (glibc's fastbins and tcache play that
 * part), "rest" every other free byte backed by memory. */
static void xml_common(struct gm_rio_out *o, const struct gm_memstats *m, uint64_t free_count,
                       bool whole) {
    uint64_t arena_committed = m->committed > m->huge.bytes ? m->committed - m->huge.bytes : 0;
    uint64_t fast = m->thread_caches + m->parked_caches;
    uint64_t small_large_in_use = m->in_use > m->huge.bytes ? m->in_use - m->huge.bytes : 0;
    uint64_t rest = arena_committed > small_large_in_use + fast + m->released
                        ? arena_committed - small_large_in_use - fast - m->released
                        : 0;
    xml_total(o, "total", "fast", 0, true, fast);
    xml_total(o, "total", "rest", free_count, true, rest);
    if (whole)
        xml_total(o, "total", "mmap", m->huge.blocks, true, m->huge.bytes);
    xml_total(o, "system", "current", 0, false, m->committed);
    uint64_t max = m->peak_in_spans > m->committed ? m->peak_in_spans : m->committed;
    xml_total(o, "system", "max", 0, false, max);
    xml_total(o, "aspace", "total", 0, false, m->obtained - m->metadata);
    xml_total(o, "aspace", "mprotect", 0, false, m->committed);
}

static void write_xml(struct gm_rio_out *o, const struct gm_memstats *m) {
    uint64_t free_count = 0, from = 1;
    put(o, "<malloc version=\"1\">\n<heap nr=\"0\">\n<sizes>\n");
    for (uint32_t cls = 1; cls < m->nclasses; cls++) {
        const struct gm_class_stats *c = &m->classes[cls];
        uint64_t n = free_slots(c);
        if (n) {
            put(o, "  <size");
            xml_attr(o, "from", from);
            xml_attr(o, "to", c->object_size);
            xml_attr(o, "total", n * c->object_size);
            xml_attr(o, "count", n);
            put(o, "/>\n");
        }
        free_count += n;
        from = c->object_size + 1;
    }
    put(o, "</sizes>\n");
    xml_common(o, m, free_count, false);
    put(o, "</heap>\n");
    xml_common(o, m, free_count, true);
    put(o, "</malloc>\n");
}

/* ---- entry points ---------------------------------------------------------- */

enum report_kind { REPORT_TEXT, REPORT_JSON };

/* Not a cancellation point, as glibc's malloc_stats is not: a pending
 * cancel must not cut the report off halfway (write(2) would act on it). */
static void report_to_fd(int fd, enum report_kind kind) {
    int cancel_state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    struct gm_memstats m;
    gm_read_memstats(&m);
    char buf[2048];
    struct gm_rio_out o;
    gm_rio_open_buf(&o, fd, buf, sizeof buf);
    if (kind == REPORT_JSON)
        write_json(&o, &m);
    else
        write_text(&o, &m);
    gm_rio_close(&o);
    pthread_setcancelstate(cancel_state, NULL);
}

GM_EXPORT void gm_print_stats(int fd) { report_to_fd(fd, REPORT_TEXT); }
GM_EXPORT void gm_print_stats_json(int fd) { report_to_fd(fd, REPORT_JSON); }

/* malloc_info's XML, built whole in fresh mmap'd memory (*len bytes, to be
 * released with gm_malloc_info_done) before any of it goes to the caller's
 * FILE: the stream may allocate (its buffer, open_memstream's growth), and
 * by then gomalloc holds no lock and is in the middle of nothing, so that
 * malloc is an ordinary one.  Writing to fileno(fp) instead would lose
 * streams without a descriptor (open_memstream, fmemopen).  NULL when mmap
 * fails. */
char *gm_malloc_info_xml(size_t *len, size_t *cap) {
    struct gm_memstats m;
    gm_read_memstats(&m);
    struct gm_rio_out o;
    if (gm_rio_open_mem(&o, 16 << 10) < 0)
        return NULL;
    write_xml(&o, &m);
    if (o.failed) {
        gm_rio_unmap(o.buf, o.cap);
        return NULL;
    }
    *len = o.len;
    *cap = o.cap;
    return o.buf;
}

void gm_malloc_info_done(char *xml, size_t cap) { gm_rio_unmap(xml, cap); }

/* ---- at exit --------------------------------------------------------------------- */

static pid_t first_pid;   /* written once, by the constructor */

__attribute__((constructor)) static void note_pid(void) { first_pid = getpid(); }

static void cannot_write(const char *what) {
    char line[128] = "gomalloc: ";
    size_t n = strlen(line), k = strlen(what);
    memcpy(line + n, what, k);
    memcpy(line + n + k, ": cannot write the file\n", 24);
    gm_os_write(2, line, n + k + 24);
}

/* The report at exit: on stderr, or into path (%p: the pid). */
static void report_at_exit_to(const char *path, enum report_kind kind) {
    if (!path) {
        report_to_fd(2, kind);
        return;
    }
    int fd = gm_report_open(path);
    if (fd < 0) {
        cannot_write("GOMALLOC_STATS_FILE");
        return;
    }
    report_to_fd(fd, kind);
    close(fd);
}

/* A destructor of the library: it runs after the program's atexit handlers
 * and its own destructors (the library was loaded first), so the report
 * sees the heap as the program leaves it.  Only in the process that
 * started: a fork child that calls exit() would print a second report and
 * overwrite the map.  A program that ends in _exit or a signal writes none. */
__attribute__((destructor)) static void report_at_exit(void) {
    if (getpid() != first_pid)
        return;
    if (gm_options.stats)
        report_at_exit_to(gm_options.stats_file, gm_options.stats == 2 ? REPORT_JSON : REPORT_TEXT);
    if (gm_options.heapmap && gm_heapmap_write(gm_options.heapmap) < 0)
        cannot_write("GOMALLOC_HEAPMAP");
    if (gm_options.profile && gm_profile_write(gm_options.profile) < 0)
        cannot_write("GOMALLOC_PROFILE");
}

/* ---- the sampled profile (profile.c keeps the samples) ----------------------- */

GM_EXPORT int gm_profile_write(const char *path) {
    if (!path) {
        errno = EINVAL;
        return -1;
    }
    gm_init();
    return gm_report_write_file(path, gm_profile_write_fd);
}

/* The stack walk may need loading (glibc's backtrace, where unwind.c has no
 * walk of its own, loads libgcc_s with dlopen and malloc on its first call):
 * done here, at load time, outside any allocation, when sampling is on. */
__attribute__((constructor)) static void profile_start(void) {
    gm_init();
    gm_profile_load_unwinder();
}
