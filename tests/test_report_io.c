/*
 * test_report_io.c — the plumbing under the heap profile and the heap map
 * (alloc/report_io.c): number formatting, the output buffer (pieces larger
 * than the buffer, flushing, a failing descriptor) and the /proc/self/maps
 * reader (a known mapping, a path with spaces, a path longer than a
 * buffer's worth of lines).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/mman.h>
#include <unistd.h>

#include "report_io.h"
#include "testutil.h"

static void check_fmt(size_t (*fmt)(char *, uint64_t), uint64_t v, const char *want) {
    char buf[32];
    size_t n = fmt(buf, v);
    buf[n] = '\0';
    assert_string_equal(buf, want);
}

static void test_formatting(void **state) {
    (void)state;
    check_fmt(gm_rio_fmt_dec, 0, "0");
    check_fmt(gm_rio_fmt_dec, UINT64_MAX, "18446744073709551615");
    check_fmt(gm_rio_fmt_hex, 0, "0");
    check_fmt(gm_rio_fmt_hex, 0x7f12abcdef00ull, "7f12abcdef00");
    check_fmt(gm_rio_fmt_bytes, 0, "0 B");
    check_fmt(gm_rio_fmt_bytes, 1023, "1023 B");
    check_fmt(gm_rio_fmt_bytes, 1024, "1 KiB");
    check_fmt(gm_rio_fmt_bytes, 1536, "1.5 KiB");
    check_fmt(gm_rio_fmt_bytes, 64 * MiB, "64 MiB");
    check_fmt(gm_rio_fmt_bytes, 1536 * MiB, "1.5 GiB");
    check_fmt(gm_rio_fmt_bytes, 300 * MiB + 5, "300 MiB");   /* 3 digits: no decimal */
    check_fmt(gm_rio_fmt_bytes, UINT64_MAX, "15.9 EiB");
}

/* Everything put, through a 4 KiB buffer, arrives in order. */
static void test_output_streams(void **state) {
    (void)state;
    char path[] = "/tmp/gm_test_rio_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    struct gm_rio_out o;
    assert_int_equal(gm_rio_open(&o, fd, 4096), 0);
    static char big[3 * 4096 + 17];
    memset(big, 'x', sizeof big);
    gm_rio_str(&o, "a=");
    gm_rio_sdec(&o, -42);
    gm_rio_str(&o, " m=");
    gm_rio_milli(&o, 1250);
    gm_rio_str(&o, " n=");
    gm_rio_milli(&o, 3000);
    gm_rio_str(&o, " h=");
    gm_rio_hex(&o, 255);
    gm_rio_str(&o, " b=");
    gm_rio_bytes(&o, 2048);
    gm_rio_put(&o, big, sizeof big);   /* larger than the buffer */
    gm_rio_str(&o, "|end");
    assert_int_equal(gm_rio_close(&o), 0);
    static char back[sizeof big + 100];
    ssize_t n = pread(fd, back, sizeof back, 0);
    close(fd);
    unlink(path);
    const char *head = "a=-42 m=1.25 n=3 h=0xff b=2 KiB";
    size_t hl = strlen(head);
    assert_int_equal(n, (ssize_t)(hl + sizeof big + 4));
    assert_memory_equal(back, head, hl);
    assert_memory_equal(back + hl, big, sizeof big);
    assert_memory_equal(back + hl + sizeof big, "|end", 4);
}

static void test_output_failure_is_sticky(void **state) {
    (void)state;
    int fd = open("/dev/full", O_WRONLY);
    assert_true(fd >= 0);
    struct gm_rio_out o;
    assert_int_equal(gm_rio_open(&o, fd, 4096), 0);
    for (int i = 0; i < 1000; i++)
        gm_rio_str(&o, "some text that fills the buffer ");
    gm_rio_str(&o, "more");
    assert_int_equal(gm_rio_close(&o), -1);
    close(fd);
}

/* Finds the mapping at addr; returns its entry's path in *path. */
static int find_mapping(uintptr_t addr, char *buf, struct gm_maps_entry *found, char *path,
                        size_t path_cap) {
    struct gm_maps_reader r;
    assert_int_equal(gm_maps_open(&r, buf), 0);
    struct gm_maps_entry e;
    int got, hit = 0, lines = 0;
    while ((got = gm_maps_next(&r, &e)) > 0) {
        lines++;
        if (e.lo <= addr && addr < e.hi && !hit) {
            *found = e;
            size_t n = e.path_len < path_cap - 1 ? e.path_len : path_cap - 1;
            memcpy(path, e.path, n);
            path[n] = '\0';
            hit = 1;
        }
    }
    assert_int_equal(got, 0);
    gm_maps_close(&r);
    assert_true(lines > 5);
    return hit;
}

static void test_maps_reader_parses_lines(void **state) {
    (void)state;
    char name[300] = "/tmp/gm rio map ";
    while (strlen(name) < 250)   /* a long name with spaces */
        strcat(name, "long ");
    strcat(name, "end.dat");
    int fd = open(name, O_RDWR | O_CREAT | O_TRUNC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 3 * 4096), 0);
    char *m = mmap(NULL, 2 * 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE, fd, 4096);
    assert_true(m != MAP_FAILED);
    struct gm_maps_entry e;
    char path[512];
    for (int own = 0; own < 2; own++) {   /* its own buffer, and one given */
        static char given[GM_MAPS_BUF];
        assert_true(find_mapping((uintptr_t)m + 100, own ? NULL : given, &e, path, sizeof path));
        assert_int_equal(e.lo, (uintptr_t)m);
        assert_int_equal(e.hi, (uintptr_t)m + 2 * 4096);
        assert_int_equal(e.offset, 4096);
        assert_string_equal(e.perms, "r-xp");
        assert_true(e.inode != 0);
        assert_string_equal(path, name);
    }
    munmap(m, 2 * 4096);
    close(fd);
    unlink(name);
}

/* Enough mappings that the file is read in many pieces: every line still
 * parses (each has a dash at the right place, sane bounds). */
static void test_maps_reader_many_lines(void **state) {
    (void)state;
    enum { N = 2000 };
    char *area = mmap(NULL, 2 * N * 4096, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(area != MAP_FAILED);
    for (int i = 0; i < 2 * N; i += 2)
        assert_int_equal(mprotect(area + (size_t)i * 4096, 4096, PROT_NONE), 0);
    struct gm_maps_reader r;
    assert_int_equal(gm_maps_open(&r, NULL), 0);
    struct gm_maps_entry e;
    int lines = 0, inside = 0;
    uintptr_t prev_hi = 0;
    while (gm_maps_next(&r, &e) > 0) {
        lines++;
        assert_true(e.lo < e.hi && e.lo >= prev_hi);   /* sorted, no overlap */
        prev_hi = e.hi;
        inside += e.lo >= (uintptr_t)area && e.hi <= (uintptr_t)area + 2 * N * 4096;
    }
    gm_maps_close(&r);
    assert_true(lines > 2 * N);
    assert_int_equal(inside, 2 * N);
    munmap(area, 2 * N * 4096);
}

static void test_self_exe(void **state) {
    (void)state;
    char exe[4096], want[4096];
    assert_true(gm_rio_self_exe(exe, sizeof exe) > 0);
    ssize_t n = readlink("/proc/self/exe", want, sizeof want - 1);
    want[n] = '\0';
    assert_string_equal(exe, want);
    assert_int_equal(gm_rio_self_exe(exe, 3), 0);   /* does not fit */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_formatting),
        cmocka_unit_test(test_output_streams),
        cmocka_unit_test(test_output_failure_is_sticky),
        cmocka_unit_test(test_maps_reader_parses_lines),
        cmocka_unit_test(test_maps_reader_many_lines),
        cmocka_unit_test(test_self_exe),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
