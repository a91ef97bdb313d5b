/*
 * mallopt.c — mallopt() accepts glibc's parameters and reports success, 1
 * (glibc's tst-mallopt): M_CHECK_ACTION, M_MMAP_MAX, M_MMAP_THRESHOLD,
 * M_MXFAST, M_PERTURB, M_TOP_PAD and M_TRIM_THRESHOLD, plus M_ARENA_MAX and
 * M_ARENA_TEST, which glibc's other tests set and treat a 0 from as an error.
 * Allocation must keep working afterwards.  (What the settings do is glibc's
 * business; a replacement may ignore them.)
 */
#include "check.h"

#include <malloc.h>

struct setting {
    int param;
    int value;
    const char *name;
};

int main(void)
{
    static const struct setting settings[] = {
        { M_CHECK_ACTION, 1, "M_CHECK_ACTION, 1" },
        { M_MMAP_MAX, 64 * 1024, "M_MMAP_MAX, 64*1024" },
        { M_MMAP_THRESHOLD, 64 * 1024, "M_MMAP_THRESHOLD, 64*1024" },
        { M_MXFAST, 0, "M_MXFAST, 0" },
        { M_PERTURB, 0xa5, "M_PERTURB, 0xa5" },
        { M_TOP_PAD, 64 * 1024, "M_TOP_PAD, 64*1024" },
        { M_TRIM_THRESHOLD, -1, "M_TRIM_THRESHOLD, -1" },
        { M_ARENA_MAX, 8, "M_ARENA_MAX, 8" },
        { M_ARENA_TEST, 2, "M_ARENA_TEST, 2" },
    };
    for (size_t i = 0; i < sizeof settings / sizeof settings[0]; i++) {
        int rc = mallopt(settings[i].param, settings[i].value);
        gt_check(rc == 1, "mallopt(%s) returned %d, expected 1", settings[i].name, rc);
    }
    for (size_t size = 1; size < 1 << 20; size *= 3) {
        char *p = malloc(size);
        gt_check(p != NULL, "malloc(%zu) failed after mallopt", size);
        memset(p, 0, size);
        free(p);
    }
    return 0;
}
