/*
 * stats_override.c — the reports behind the C library's names, in a program
 * linked with -lgomalloc (run by tests/stats.sh): mallinfo2 agrees with
 * gm_get_memstats, malloc_info writes glibc's XML to any FILE (one without a
 * descriptor too), malloc_stats prints the table.
 *
 * Usage: stats_override mallinfo | info-memstream | info-stdout | stats
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gomalloc.h"

static int mallinfo_agrees(void) {
    void *small[1000], *large = malloc(200 << 10), *huge = malloc(48 << 20);
    for (int i = 0; i < 1000; i++)
        small[i] = malloc(100 + i);
    struct gm_memstats m;
    gm_read_memstats(&m);
    struct mallinfo2 mi = mallinfo2();
    int ok = mi.uordblks + mi.hblkhd == m.in_use && mi.hblkhd == m.huge.bytes &&
             mi.hblks == m.huge.blocks && mi.arena == mi.uordblks + mi.fordblks &&
             mi.uordblks >= 1000 * 100 + (200 << 10) && mi.usmblks == m.peak_in_spans;
    if (!ok)
        fprintf(stderr, "mallinfo2: uord %zu hblkhd %zu arena %zu ford %zu; in_use %llu huge %llu\n",
                mi.uordblks, mi.hblkhd, mi.arena, mi.fordblks, (unsigned long long)m.in_use,
                (unsigned long long)m.huge.bytes);
    for (int i = 0; i < 1000; i++)
        free(small[i]);
    free(large);
    free(huge);
    return ok ? 0 : 1;
}

/* open_memstream has no file descriptor: the XML must still arrive whole. */
static int info_memstream(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    void *keep = malloc(300);
    if (!f || malloc_info(0, f) != 0)
        return 1;
    fclose(f);
    int ok = len > 100 && strncmp(buf, "<malloc version=\"1\">", 20) == 0 &&
             strstr(buf, "</malloc>\n") == buf + len - 10;
    fputs(buf, stdout);
    free(buf);
    free(keep);
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    const char *what = argc > 1 ? argv[1] : "";
    if (!strcmp(what, "mallinfo"))
        return mallinfo_agrees();
    if (!strcmp(what, "info-memstream"))
        return info_memstream();
    if (!strcmp(what, "info-stdout")) {
        printf("%s", "");   /* buffered output before the XML keeps its place */
        return malloc_info(0, stdout) == 0 && malloc_info(1, stdout) == EINVAL ? 0 : 1;
    }
    if (!strcmp(what, "stats")) {
        void *keep = malloc(5000);
        malloc_stats();
        free(keep);
        return 0;
    }
    return 2;
}
