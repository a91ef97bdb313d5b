/*
 * test_stats.c — the statistics (alloc/stats.c, the counting in mcache.c)
 * and the reports made from them (alloc/stats_report.c), through the gm_ API.
 *
 * Counts per class after a known sequence in one thread are exact (the
 * reading thread's cache is folded at each read, see mcache.c "Counting");
 * large and huge blocks are counted per trip to the page heap; the totals
 * agree with the RSS the kernel reports within a stated bound; the struct
 * is versioned by size; the JSON parses (python3 -m json.tool) and the
 * malloc_info XML too (xmllint).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gomalloc.h"
#include "internal.h"
#include "mcentral.h"
#include "testutil.h"

static struct gm_memstats snap(void) {
    struct gm_memstats m;
    assert_int_equal(gm_read_memstats(&m), sizeof m);
    return m;
}

/* Allocates n blocks of class cls, then frees the first half, reading the
 * statistics before, between and after: the deltas are exact. */
static void check_class(uint8_t cls, uint32_t n) {
    size_t size = gm_class_size[cls];
    void **p = malloc(n * sizeof *p);
    struct gm_memstats before = snap();
    for (uint32_t i = 0; i < n; i++)
        assert_non_null(p[i] = gm_malloc(size));
    struct gm_memstats mid = snap();
    for (uint32_t i = 0; i < n / 2; i++)
        gm_free(p[i]);
    struct gm_memstats after = snap();
    const struct gm_class_stats *b = &before.classes[cls], *m = &mid.classes[cls],
                                *a = &after.classes[cls];
    assert_int_equal(m->object_size, size);
    assert_int_equal(m->allocs - b->allocs, n);
    assert_int_equal(m->frees - b->frees, 0);
    assert_int_equal(m->objects_in_use - b->objects_in_use, n);
    assert_int_equal(a->allocs - m->allocs, 0);
    assert_int_equal(a->frees - m->frees, n / 2);
    assert_int_equal(a->objects_in_use - b->objects_in_use, n - n / 2);
    /* The spans hold every object in use, and their bytes are whole spans. */
    uint64_t span_bytes = (uint64_t)gm_class_pages[cls] * GM_PAGE_SIZE;
    assert_int_equal(m->span_bytes, m->spans * span_bytes);
    assert_true(m->spans * (span_bytes / size) >= m->objects_in_use);
    assert_int_equal(m->unused_bytes, m->span_bytes - m->objects_in_use * size);
    for (uint32_t i = n / 2; i < n; i++)
        gm_free(p[i]);
    free(p);
}

static void test_stats_counts_exact_per_class(void **state) {
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++)
        check_class(cls, 3 * gm_transfer_count(cls) + 5);
}

/* In a fresh thread, with several refills and flushes between reads. */
static void *counts_in_thread(void *arg) {
    (void)arg;
    check_class(2, 1000);
    check_class(40, 100);
    return NULL;
}

static void test_stats_counts_exact_in_new_thread(void **state) {
    (void)state;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, counts_in_thread, NULL), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
}

/* A thread's counts outlive it (parked or buried with its cache). */
static void *alloc_and_exit(void *arg) {
    void **p = arg;
    for (int i = 0; i < 100; i++)
        p[i] = gm_malloc(48);
    return NULL;
}

static void test_stats_counts_survive_thread_exit(void **state) {
    (void)state;
    void *p[100];
    pthread_t t;
    struct gm_memstats before = snap();
    assert_int_equal(pthread_create(&t, NULL, alloc_and_exit, p), 0);
    assert_int_equal(pthread_join(t, NULL), 0);
    struct gm_memstats after = snap();
    uint8_t cls = gm_size_to_class[(48 + 15) >> 4];
    assert_int_equal(after.classes[cls].allocs - before.classes[cls].allocs, 100);
    assert_int_equal(after.classes[cls].objects_in_use - before.classes[cls].objects_in_use, 100);
    for (int i = 0; i < 100; i++)
        gm_free(p[i]);
    struct gm_memstats freed = snap();
    assert_int_equal(freed.classes[cls].objects_in_use, before.classes[cls].objects_in_use);
}

static void test_stats_large_and_huge_blocks(void **state) {
    (void)state;
    enum { N = 4 };
    size_t size = 300 * KiB;   /* 38 pages: past the page cache's 32 */
    void *p[N];
    struct gm_memstats before = snap();
    for (int i = 0; i < N; i++)
        assert_non_null(p[i] = gm_malloc(size));
    void *big = gm_malloc(40 * MiB);
    assert_non_null(big);
    struct gm_memstats mid = snap();
    uint64_t pages = (size + GM_PAGE_SIZE - 1) / GM_PAGE_SIZE * GM_PAGE_SIZE;
    uint64_t blocks = mid.large.blocks + mid.huge.blocks - before.large.blocks - before.huge.blocks;
    assert_int_equal(blocks, N + 1);
    assert_int_equal(mid.large.allocs + mid.huge.allocs - before.large.allocs - before.huge.allocs,
                     N + 1);
    uint64_t bytes = mid.large.bytes + mid.huge.bytes - before.large.bytes - before.huge.bytes;
    assert_true(bytes >= N * pages + 40 * MiB && bytes < N * pages + 41 * MiB);
    assert_true(mid.in_use - before.in_use >= N * pages + 40 * MiB);
    for (int i = 0; i < N; i++)
        gm_free(p[i]);
    gm_free(big);
    struct gm_memstats after = snap();
    assert_int_equal(after.large.frees + after.huge.frees - mid.large.frees - mid.huge.frees, N + 1);
    assert_int_equal(after.large.blocks + after.huge.blocks, before.large.blocks + before.huge.blocks);
    assert_true(after.peak_in_spans >= mid.in_spans);
}

static uint64_t rss_bytes(void) {
    FILE *f = fopen("/proc/self/statm", "r");
    unsigned long size = 0, resident = 0;
    assert_non_null(f);
    assert_int_equal(fscanf(f, "%lu %lu", &size, &resident), 2);
    fclose(f);
    return (uint64_t)resident * (uint64_t)sysconf(_SC_PAGESIZE);
}

/* Valgrind or a sanitizer: their shadow memory counts in RSS. */
static bool under_a_checker(void) {
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    return true;
#else
    FILE *f = fopen("/proc/self/maps", "r");
    char line[512];
    bool found = false;
    while (f && fgets(line, sizeof line, f))
        found |= strstr(line, "vgpreload") != NULL;
    if (f)
        fclose(f);
    return found;
#endif
}

/* The bound: what the program holds is resident (in_use <= RSS), and the
 * process holds no more than gomalloc's backed memory (committed less
 * released) and metadata plus 32 MiB for the test program, its libraries,
 * glibc's heap and stacks. */
static void test_stats_totals_agree_with_rss(void **state) {
    (void)state;
    enum { SMALL = 16384, LARGE = 256 };
    void **small = malloc(SMALL * sizeof *small), **large = malloc(LARGE * sizeof *large);
    for (int i = 0; i < SMALL; i++)
        memset(small[i] = gm_malloc(4096), 1, 4096);
    for (int i = 0; i < LARGE; i++)
        memset(large[i] = gm_malloc(256 * KiB), 1, 256 * KiB);
    struct gm_memstats m = snap();
    uint64_t rss = rss_bytes(), held = (uint64_t)SMALL * 4096 + (uint64_t)LARGE * 256 * KiB;
    assert_true(m.in_use >= held && m.in_use <= held + held / 100);
    assert_true(m.in_spans >= m.in_use);
    assert_true(m.committed - m.released >= m.in_spans);
    assert_int_equal(m.committed, m.in_spans + m.idle + m.released);
    assert_true(rss >= m.in_use);
    if (!under_a_checker())   /* their own memory is resident too */
        assert_true(rss <= m.committed - m.released + m.metadata + 32 * MiB);
    for (int i = 0; i < SMALL; i++)
        gm_free(small[i]);
    for (int i = 0; i < LARGE; i++)
        gm_free(large[i]);
    gm_release();
    struct gm_memstats after = snap();
    assert_true(after.in_use < 8 * MiB);
    assert_true(after.committed - after.released < 8 * MiB);
    free(small);
    free(large);
}

/* A caller built with a smaller (older) struct gets its part and nothing
 * past it; a larger one gets the rest zeroed. */
static void test_stats_struct_is_versioned_by_size(void **state) {
    (void)state;
    size_t old = offsetof(struct gm_memstats, classes);
    unsigned char *buf = malloc(sizeof(struct gm_memstats) + 256);
    memset(buf, 0xab, sizeof(struct gm_memstats) + 256);
    assert_int_equal(gm_get_memstats((struct gm_memstats *)buf, old), old);
    for (size_t i = old; i < sizeof(struct gm_memstats) + 256; i++)
        assert_int_equal(buf[i], 0xab);
    struct gm_memstats *m = (struct gm_memstats *)buf;
    assert_int_equal(m->version, GM_MEMSTATS_VERSION);
    assert_int_equal(m->size, old);
    assert_int_equal(gm_get_memstats(m, sizeof *m + 256), sizeof *m);
    for (size_t i = sizeof *m; i < sizeof *m + 256; i++)
        assert_int_equal(buf[i], 0);
    assert_int_equal(m->nclasses, GM_NUM_CLASSES);
    free(buf);
}

/* ---- the reports ----------------------------------------------------------- */

static void report_to_file(const char *path, void (*fn)(int)) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    fn(fd);
    close(fd);
}

static bool have(const char *tool) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "command -v %s >/dev/null 2>&1", tool);
    return system(cmd) == 0;
}

static void test_stats_json_parses(void **state) {
    (void)state;
    char path[] = "/tmp/gm_stats_XXXXXX";
    close(mkstemp(path));
    void *keep = gm_malloc(100);
    report_to_file(path, gm_print_stats_json);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); "
             "assert d[\"in_use\"] >= 112 and len(d[\"classes\"]) == %d' %s",
             GM_NUM_CLASSES - 1, path);
    assert_true(have("python3"));
    assert_int_equal(system(cmd), 0);
    snprintf(cmd, sizeof cmd, "python3 -m json.tool %s >/dev/null", path);
    assert_int_equal(system(cmd), 0);
    gm_free(keep);
    unlink(path);
}

static void test_stats_text_has_totals_and_classes(void **state) {
    (void)state;
    char path[] = "/tmp/gm_stats_XXXXXX";
    close(mkstemp(path));
    void *keep = gm_malloc(1000);
    report_to_file(path, gm_print_stats);
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "grep -q '^in use by the program' %1$s && grep -q '^class  object' %1$s && "
             "grep -Eq '^ +[0-9]+ +1024 +[1-9]' %1$s && grep -q '^large ' %1$s", path);
    assert_int_equal(system(cmd), 0);
    gm_free(keep);
    unlink(path);
}

static void test_stats_malloc_info_xml_parses(void **state) {
    (void)state;
    size_t len, cap;
    void *keep = gm_malloc(64);
    char *xml = gm_malloc_info_xml(&len, &cap);
    assert_non_null(xml);
    char path[] = "/tmp/gm_stats_XXXXXX";
    int fd = mkstemp(path);
    assert_int_equal(write(fd, xml, len), (ssize_t)len);
    close(fd);
    gm_malloc_info_done(xml, cap);
    assert_true(have("xmllint"));
    char cmd[256];
    snprintf(cmd, sizeof cmd,
             "xmllint --noout %1$s && xmllint --xpath 'count(/malloc/heap/sizes/size)' %1$s | "
             "grep -q '^[1-9]' && xmllint --xpath 'string(/malloc/total[@type=\"mmap\"]/@count)' "
             "%1$s | grep -q '^[0-9]'", path);
    assert_int_equal(system(cmd), 0);
    gm_free(keep);
    unlink(path);
}

int main(int argc, char **argv) {
    /* Guarded sampling takes a random block now and then to pages of its
     * own, outside every class: the exact per-class counts are checked with
     * it off.  The settings are read before main, so run again with it set. */
    (void)argc;
    const char *rate = getenv("GOMALLOC_GUARD_RATE");
    if (!rate || strcmp(rate, "0") != 0) {
        setenv("GOMALLOC_GUARD_RATE", "0", 1);
        execv("/proc/self/exe", argv);
        return 1;
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_counts_exact_per_class),
        cmocka_unit_test(test_stats_counts_exact_in_new_thread),
        cmocka_unit_test(test_stats_counts_survive_thread_exit),
        cmocka_unit_test(test_stats_large_and_huge_blocks),
        cmocka_unit_test(test_stats_totals_agree_with_rss),
        cmocka_unit_test(test_stats_struct_is_versioned_by_size),
        cmocka_unit_test(test_stats_json_parses),
        cmocka_unit_test(test_stats_text_has_totals_and_classes),
        cmocka_unit_test(test_stats_malloc_info_xml_parses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
