/*
 * options.c — run-time settings, read once from the environment.
 *
 *   variable                   values          default   what
 *   GOMALLOC_SCAVENGE          0 | 1           1         return free pages in the background
 *   GOMALLOC_RETAIN_PERCENT    0 .. 100000     5         free memory kept backed however long it
 *                                                        idles, as a share of memory in use
 *   GOMALLOC_DECAY_MS          0 .. 3600000    1000      free memory goes back to the OS once it
 *                                                        has idled this long
 *   GOMALLOC_MADVISE           dontneed | free dontneed  how pages are returned
 *   GOMALLOC_THREAD_CACHE_KIB  0 .. 1048576    2048      bound on one thread's cache (0: the
 *                                                        least there is, a block per list)
 *   GOMALLOC_DEBUG             0 | 1           0         checked slow paths for every call
 *   GOMALLOC_GUARD_RATE        0 .. 2^30       200000    one block in N on guarded pages (0: none)
 *   GOMALLOC_GUARD_CATCH       overflow |      overflow  guarded blocks end at their guard page
 *                              underflow                 (overflow) or start after one
 *   GOMALLOC_VERBOSE           0 | 1           0         print the settings in force at start-up
 *   GOMALLOC_STATS             0 | 1 | json    0         print the statistics on stderr at exit
 *   GOMALLOC_STATS_FILE        a path          -         ... into this file instead (%p: the pid)
 *   GOMALLOC_HEAPMAP           a path          -         write an SVG map of the heap there at exit
 *                                                        (%p: the pid)
 *   GOMALLOC_PROFILE           a path          -         sample the heap; write a pprof profile there
 *                                                        at exit (%p: the pid)
 *   GOMALLOC_PROFILE_RATE      1 .. 2^30       524288    mean bytes between samples (sampling is on
 *                                                        when this or GOMALLOC_PROFILE is set)
 *   GOMALLOC_LIB               a path          -         gomalloc-run's, not the library's
 *
 * This table, the README's and gomalloc(3)'s say the same.
 *
 * Read by gm_init, before the program's threads exist (until then the
 * defaults below apply), in one pass over the environment that allocates
 * nothing: environ (getenv's own table), or, before libc has set it (a
 * malloc from the dynamic loader), /proc/self/environ read with plain system
 * calls into a stack buffer.  Every GOMALLOC_ variable is looked at, once: a
 * value that does not parse or is out of range is reported on stderr with
 * the accepted values, and the default is kept; a name that is not one of
 * the above is reported with the nearest one that is.  As with getenv, the
 * first of two entries with the same name counts.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "gomalloc.h"
#include "internal.h"

extern char **environ;

struct gm_options gm_options = {
    .scavenge = true,
    .retain_percent = 5,
    .decay_ms = 1000,
    .thread_cache_bytes = GM_THREAD_CACHE_DEFAULT,
    .guard_rate = GM_GUARD_RATE_DEFAULT,
};

#define PREFIX "GOMALLOC_"
#define PREFIX_LEN (sizeof PREFIX - 1)

enum kind {
    FLAG,      /* 0 or 1 */
    NUMBER,    /* a decimal number in [min, max] */
    WORD,      /* one of words[], stored as its index */
    FOREIGN,   /* known, read by someone else */
    PATH,      /* a file name, kept in path_store[min] */
};

enum {
    S_SCAVENGE,
    S_RETAIN_PERCENT,
    S_DECAY_MS,
    S_MADVISE,
    S_THREAD_CACHE_KIB,
    S_DEBUG,
    S_GUARD_RATE,
    S_GUARD_CATCH,
    S_VERBOSE,
    S_STATS,
    S_STATS_FILE,
    S_HEAPMAP,
    S_PROFILE,
    S_PROFILE_RATE,
    S_LIB,
    S_COUNT
};

struct setting {
    const char *name;
    enum kind kind;
    uint64_t min, max;
    const char *words[3];   /* WORD: two or three, NULL after the last */
};

static const struct setting settings[S_COUNT] = {
    [S_SCAVENGE] = {"GOMALLOC_SCAVENGE", FLAG, 0, 1, {0, 0}},
    [S_RETAIN_PERCENT] = {"GOMALLOC_RETAIN_PERCENT", NUMBER, 0, 100000, {0, 0}},
    [S_DECAY_MS] = {"GOMALLOC_DECAY_MS", NUMBER, 0, 3600 * 1000, {0, 0}},
    [S_MADVISE] = {"GOMALLOC_MADVISE", WORD, 0, 1, {"dontneed", "free"}},
    [S_THREAD_CACHE_KIB] = {"GOMALLOC_THREAD_CACHE_KIB", NUMBER, 0, 1 << 20, {0, 0}},
    [S_DEBUG] = {"GOMALLOC_DEBUG", FLAG, 0, 1, {0, 0}},
    [S_GUARD_RATE] = {"GOMALLOC_GUARD_RATE", NUMBER, 0, 1 << 30, {0, 0}},
    [S_GUARD_CATCH] = {"GOMALLOC_GUARD_CATCH", WORD, 0, 1, {"overflow", "underflow"}},
    [S_VERBOSE] = {"GOMALLOC_VERBOSE", FLAG, 0, 1, {0, 0}},
    [S_STATS] = {"GOMALLOC_STATS", WORD, 0, 2, {"0", "1", "json"}},
    [S_STATS_FILE] = {"GOMALLOC_STATS_FILE", PATH, 0, 0, {0, 0}},
    [S_HEAPMAP] = {"GOMALLOC_HEAPMAP", PATH, 1, 0, {0, 0}},
    [S_PROFILE] = {"GOMALLOC_PROFILE", PATH, 2, 0, {0, 0}},
    [S_PROFILE_RATE] = {"GOMALLOC_PROFILE_RATE", NUMBER, 1, 1 << 30, {0, 0}},
    [S_LIB] = {"GOMALLOC_LIB", FOREIGN, 0, 0, {0, 0}},
};

/* The PATH settings' values, copied (/proc/self/environ is read into a
 * stack buffer); a setting's min says which. */
static char path_store[3][1024];

/* The values being read: defaults first, then what the environment says. */
struct reading {
    uint64_t value[S_COUNT];
    bool seen[S_COUNT];   /* the name was in the environment */
    bool set[S_COUNT];    /* ... with a value that was taken */
};

/* ---- messages -------------------------------------------------------------- */

/* "gomalloc: NAME: PROBLEM[ MIN..MAX]: "VALUE"" */
static void report_value(const struct setting *s, const char *problem, bool range,
                         const char *value) {
    gm_line_t l = GM_LINE_INIT;
    gm_line_put(&l, "gomalloc: ");
    gm_line_put(&l, s->name);
    gm_line_put(&l, ": ");
    gm_line_put(&l, problem);
    if (range) {
        gm_line_put(&l, " ");
        gm_line_dec(&l, s->min);
        gm_line_put(&l, "..");
        gm_line_dec(&l, s->max);
    }
    gm_line_put(&l, ": \"");
    gm_line_put(&l, value);
    gm_line_put(&l, "\"");
    gm_line_write(&l, 2);
}

/* ---- parsing ------------------------------------------------------------- */

/* A decimal number, perhaps negative (then below every range, as is one too
 * big for 64 bits): false if value is not one. */
static bool parse_number(const char *value, bool *negative, uint64_t *out) {
    uint64_t v = 0;
    const char *p = value;
    *negative = *p == '-';
    if (*negative)
        p++;
    if (!*p)
        return false;
    for (; *p; p++) {
        if (*p < '0' || *p > '9')
            return false;
        uint64_t digit = (uint64_t)(*p - '0');
        v = v > (UINT64_MAX - digit) / 10 ? UINT64_MAX : v * 10 + digit;
    }
    *out = v;
    return true;
}

/* Takes value for setting i, or reports why not. */
static void take(struct reading *r, uint32_t i, const char *value) {
    const struct setting *s = &settings[i];
    switch (s->kind) {
    case FLAG:
        if ((value[0] == '0' || value[0] == '1') && value[1] == '\0') {
            r->value[i] = (uint64_t)(value[0] - '0');
            r->set[i] = true;
        } else {
            report_value(s, "not 0 or 1", false, value);
        }
        break;
    case WORD: {
        uint32_t nwords = s->words[2] ? 3 : 2;
        for (uint32_t w = 0; w < nwords; w++)
            if (strcmp(value, s->words[w]) == 0) {
                r->value[i] = w;
                r->set[i] = true;
                return;
            }
        char problem[96] = "not ";
        strncat(problem, s->words[0], 24);
        strcat(problem, nwords == 3 ? ", " : " or ");
        strncat(problem, s->words[1], 24);
        if (nwords == 3) {
            strcat(problem, " or ");
            strncat(problem, s->words[2], 24);
        }
        report_value(s, problem, false, value);
        break;
    }
    case PATH:
        if (!value[0] || strlen(value) >= sizeof path_store[0]) {
            report_value(s, "empty or longer than 1023 bytes", false, value);
        } else {
            memcpy(path_store[s->min], value, strlen(value) + 1);   /* min: the slot */
            r->set[i] = true;
        }
        break;
    case NUMBER: {
        bool negative;
        uint64_t v;
        if (!parse_number(value, &negative, &v))
            report_value(s, "not a number", false, value);
        else if (negative ? v != 0 || s->min != 0 : v < s->min || v > s->max)
            report_value(s, "out of range", true, value);
        else {
            r->value[i] = negative ? 0 : v;
            r->set[i] = true;
        }
        break;
    }
    case FOREIGN:
        break;
    }
}

/* Edit distance between a and b (each cut to 48 characters). */
static uint32_t distance(const char *a, size_t alen, const char *b) {
    enum { MAX = 48 };
    uint8_t row[MAX + 1];
    size_t blen = strlen(b);
    alen = alen < MAX ? alen : MAX;
    blen = blen < MAX ? blen : MAX;
    for (size_t j = 0; j <= blen; j++)
        row[j] = (uint8_t)j;
    for (size_t i = 1; i <= alen; i++) {
        uint8_t diag = row[0];
        row[0] = (uint8_t)i;
        for (size_t j = 1; j <= blen; j++) {
            uint8_t up = row[j];
            uint8_t best = (uint8_t)(diag + (a[i - 1] != b[j - 1]));
            if (up + 1 < best)
                best = (uint8_t)(up + 1);
            if (row[j - 1] + 1 < best)
                best = (uint8_t)(row[j - 1] + 1);
            row[j] = best;
            diag = up;
        }
    }
    return row[blen];
}

/* The known name nearest to an unknown one: one that extends it or that it
 * extends (GOMALLOC_RETAIN, GOMALLOC_DEBUG_MODE), the closest in length;
 * failing that, the fewest edits away (GOMALLOC_SCAVANGE). */
static uint32_t nearest(const char *name, size_t len) {
    uint32_t best = 0, best_score = UINT32_MAX;
    for (uint32_t i = 0; i < S_COUNT; i++) {
        const char *known = settings[i].name;
        size_t klen = strlen(known);
        size_t shorter = klen < len ? klen : len;
        uint32_t score;
        if (shorter > PREFIX_LEN && memcmp(known, name, shorter) == 0)
            score = (uint32_t)(klen > len ? klen - len : len - klen);
        else
            score = 1000 + distance(name, len, known);
        if (score < best_score) {
            best = i;
            best_score = score;
        }
    }
    return best;
}

static void report_unknown(const char *name, size_t len) {
    uint32_t best = nearest(name, len);
    gm_line_t l = GM_LINE_INIT;
    gm_line_put(&l, "gomalloc: ");
    gm_line_put_n(&l, name, len);
    gm_line_put(&l, ": unknown setting, ignored (did you mean ");
    gm_line_put(&l, settings[best].name);
    gm_line_put(&l, "?)");
    gm_line_write(&l, 2);
}

/* One NAME=VALUE entry of the environment. */
static void consider(struct reading *r, const char *entry) {
    if (strncmp(entry, PREFIX, PREFIX_LEN) != 0)
        return;
    const char *eq = strchr(entry, '=');
    if (!eq)
        return;
    size_t len = (size_t)(eq - entry);
    for (uint32_t i = 0; i < S_COUNT; i++) {
        if (strlen(settings[i].name) == len && memcmp(settings[i].name, entry, len) == 0) {
            if (!r->seen[i]) {
                r->seen[i] = true;
                take(r, i, eq + 1);
            }
            return;
        }
    }
    report_unknown(entry, len);
}

/* The environment as the kernel gave it to the process, for a call before
 * libc has set environ.  An entry too long for the buffer cannot be a valid
 * GOMALLOC_ one: its name is reported as having a value too long. */
static void consider_proc_environ(struct reading *r) {
    char buf[1024], entry[256];
    size_t fill = 0;
    bool overlong = false;
    int fd = open("/proc/self/environ", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return;
    ssize_t got;
    while ((got = read(fd, buf, sizeof buf)) > 0) {
        for (ssize_t i = 0; i < got; i++) {
            if (buf[i] != '\0') {
                if (fill < sizeof entry - 1)
                    entry[fill++] = buf[i];
                else
                    overlong = true;
                continue;
            }
            entry[fill] = '\0';
            if (overlong && strncmp(entry, PREFIX, PREFIX_LEN) == 0) {
                gm_line_t l = GM_LINE_INIT;
                gm_line_put(&l, "gomalloc: environment entry too long, ignored: ");
                gm_line_put_n(&l, entry, 48);
                gm_line_put(&l, "...");
                gm_line_write(&l, 2);
            } else if (!overlong) {
                consider(r, entry);
            }
            fill = 0;
            overlong = false;
        }
    }
    close(fd);
}

/* ---- the settings in force --------------------------------------------------- */

static void print_settings(const struct reading *r) {
    gm_line_t l = GM_LINE_INIT;
    gm_line_put(&l, "gomalloc: version ");
    gm_line_put(&l, GOMALLOC_VERSION_STRING);
    gm_line_put(&l, ", settings in force:");
    gm_line_write(&l, 2);
    for (uint32_t i = 0; i < S_COUNT; i++) {
        const struct setting *s = &settings[i];
        if (s->kind == FOREIGN)
            continue;
        l.n = 0;
        gm_line_put(&l, "gomalloc:   ");
        gm_line_put(&l, s->name);
        gm_line_put(&l, "=");
        if (s->kind == WORD)
            gm_line_put(&l, s->words[r->value[i]]);
        else if (s->kind == PATH)
            gm_line_put(&l, r->set[i] ? path_store[s->min] : "");
        else
            gm_line_dec(&l, r->value[i]);
        gm_line_put(&l, r->set[i] ? " (environment)" : " (default)");
        gm_line_write(&l, 2);
    }
}

void gm_options_init(void) {
    struct reading r;
    memset(&r, 0, sizeof r);
    r.value[S_SCAVENGE] = gm_options.scavenge;
    r.value[S_RETAIN_PERCENT] = gm_options.retain_percent;
    r.value[S_DECAY_MS] = gm_options.decay_ms;
    r.value[S_MADVISE] = gm_os_madvise_free;
    r.value[S_THREAD_CACHE_KIB] = gm_options.thread_cache_bytes >> 10;
    r.value[S_DEBUG] = gm_options.debug;
    r.value[S_GUARD_RATE] = gm_options.guard_rate;
    r.value[S_GUARD_CATCH] = gm_options.guard_underflow;
    r.value[S_VERBOSE] = 0;
    r.value[S_PROFILE_RATE] = 512 << 10;

    if (environ) {
        for (char **e = environ; *e; e++)
            consider(&r, *e);
    } else {
        consider_proc_environ(&r);
    }

    gm_options.scavenge = r.value[S_SCAVENGE] != 0;
    gm_options.retain_percent = (uint32_t)r.value[S_RETAIN_PERCENT];
    gm_options.decay_ms = (uint32_t)r.value[S_DECAY_MS];
    gm_os_madvise_free = r.value[S_MADVISE] != 0;
    gm_options.thread_cache_bytes = (size_t)r.value[S_THREAD_CACHE_KIB] << 10;
    gm_options.debug = r.value[S_DEBUG] != 0;
    gm_options.guard_rate = (uint32_t)r.value[S_GUARD_RATE];
    gm_options.guard_underflow = r.value[S_GUARD_CATCH] != 0;
    gm_options.stats = (uint8_t)r.value[S_STATS];
    gm_options.stats_file = r.set[S_STATS_FILE] ? path_store[0] : NULL;
    gm_options.heapmap = r.set[S_HEAPMAP] ? path_store[1] : NULL;
    gm_options.profile = r.set[S_PROFILE] ? path_store[2] : NULL;
    /* Sampling needs the thread caches' slow paths: none in debug mode. */
    bool sample = (r.set[S_PROFILE] || r.set[S_PROFILE_RATE]) && !gm_options.debug;
    gm_options.profile_rate = sample ? r.value[S_PROFILE_RATE] : 0;
    if (r.value[S_VERBOSE])
        print_settings(&r);
}
