/*
 * stats.c — the human-readable heap report, written without allocating.
 *
 * gm_print_stats (and malloc_stats through the override) formats every line
 * into a stack buffer and writes it with write(2): a report may be asked for
 * while the heap is in trouble, and printf may itself allocate.
 */
#include <pthread.h>

#include "gomalloc.h"
#include "internal.h"

static void put_line(int fd, const char *label, uint64_t value, const char *unit) {
    gm_line_t l = GM_LINE_INIT;
    gm_line_put(&l, label);
    gm_line_pad(&l, 28);
    gm_line_dec(&l, value);
    gm_line_put(&l, " ");
    gm_line_put(&l, unit);
    gm_line_write(&l, fd);
}

static void print_stats(int fd) {
    struct gm_stats s;
    gm_get_stats(&s);
    static const char title[] = "gomalloc heap statistics\n";
    gm_os_write(fd, title, sizeof title - 1);
    put_line(fd, "mapped", s.mapped, "bytes");
    put_line(fd, "committed", s.committed, "bytes");
    put_line(fd, "released to the OS", s.released, "bytes");
    put_line(fd, "heap pages in use", s.heap_in_use, "bytes");
    put_line(fd, "heap pages free", s.heap_free, "bytes");
    put_line(fd, "small blocks in use", s.small_in_use, "bytes");
    put_line(fd, "large blocks in use", s.large_in_use, "bytes");
    put_line(fd, "cached (threads, batches)", s.cached, "bytes");
    put_line(fd, "huge mappings", s.huge_mapped, "bytes");
    put_line(fd, "metadata", s.metadata, "bytes");
    put_line(fd, "thread caches", s.threads, "");
}

/* Not a cancellation point, as glibc's malloc_stats is not: a pending
 * cancel must not cut the report off halfway (write(2) would act on it). */
GM_EXPORT void gm_print_stats(int fd) {
    int cancel_state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    print_stats(fd);
    pthread_setcancelstate(cancel_state, NULL);
}
