/*
 * options.c — run-time settings, read once from the environment.
 *
 *   GOMALLOC_SCAVENGE=0|1          return free pages in the background (1)
 *   GOMALLOC_RETAIN_PERCENT=N      free-but-backed memory kept however long it
 *                                  idles, as a share of memory in use (5)
 *   GOMALLOC_DECAY_MS=N            free memory goes back to the OS once it has
 *                                  idled this long (1000)
 *   GOMALLOC_MADVISE=dontneed|free how pages are returned (dontneed)
 *   GOMALLOC_THREAD_CACHE_KIB=N    bound on one thread's cache (2048)
 *   GOMALLOC_DEBUG=0|1             checked slow paths for every call (0)
 *
 * Read by gm_init from environ (getenv's own table, no allocation), before
 * the program's threads exist; until then the defaults below apply.  A value
 * that does not parse is reported once on stderr and the default is kept.
 */
#include <string.h>

#include "internal.h"

struct gm_options gm_options = {
    .scavenge = true,
    .retain_percent = 5,
    .decay_ms = 1000,
    .madvise_free = false,
    .thread_cache_bytes = GM_THREAD_CACHE_DEFAULT,
};

static void report(const char *name, const char *problem, const char *value) {
    char line[256];
    size_t n = 0;
    const char *parts[] = {"gomalloc: ", name, ": ", problem, ": \"", value, "\"\n"};
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        for (const char *p = parts[i]; *p && n < sizeof line - 2; p++)
            line[n++] = *p;
    if (line[n - 1] != '\n')
        line[n++] = '\n';
    gm_os_write(2, line, n);
}

/* Parses a decimal number up to limit; false if value is not one. */
static bool parse_number(const char *value, uint64_t limit, uint64_t *out) {
    uint64_t v = 0;
    if (!*value)
        return false;
    for (const char *p = value; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        v = v * 10 + (uint64_t)(*p - '0');
        if (v > limit)
            return false;
    }
    *out = v;
    return true;
}

static void read_number(const char *name, uint64_t limit, uint64_t *out) {
    const char *value = gm_os_getenv(name);
    if (value && !parse_number(value, limit, out))
        report(name, "not a number", value);
}

void gm_options_init(void) {
    const char *v = gm_os_getenv("GOMALLOC_SCAVENGE");
    if (v) {
        if (strcmp(v, "0") == 0 || strcmp(v, "1") == 0)
            gm_options.scavenge = v[0] == '1';
        else
            report("GOMALLOC_SCAVENGE", "not 0 or 1", v);
    }
    v = gm_os_getenv("GOMALLOC_DEBUG");
    if (v) {
        if (strcmp(v, "0") == 0 || strcmp(v, "1") == 0)
            gm_options.debug = v[0] == '1';
        else
            report("GOMALLOC_DEBUG", "not 0 or 1", v);
    }
    v = gm_os_getenv("GOMALLOC_MADVISE");
    if (v) {
        if (strcmp(v, "free") == 0 || strcmp(v, "dontneed") == 0)
            gm_options.madvise_free = v[0] == 'f';
        else
            report("GOMALLOC_MADVISE", "not dontneed or free", v);
    }
    uint64_t n = gm_options.retain_percent;
    read_number("GOMALLOC_RETAIN_PERCENT", 100000, &n);
    gm_options.retain_percent = (uint32_t)n;
    n = gm_options.decay_ms;
    read_number("GOMALLOC_DECAY_MS", 3600 * 1000, &n);
    gm_options.decay_ms = (uint32_t)n;
    n = gm_options.thread_cache_bytes >> 10;
    read_number("GOMALLOC_THREAD_CACHE_KIB", (uint64_t)1 << 30, &n);
    gm_options.thread_cache_bytes = (size_t)n << 10;
}
