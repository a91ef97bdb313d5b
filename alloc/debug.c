/*
 * debug.c — reports of misuse, free-list hardening, and the run-time debug
 * mode (GOMALLOC_DEBUG=1).
 *
 * Always on (cost measured with callgrind, see README "Safety"):
 *   - free of an address gomalloc did not hand out (pagemap check) and double
 *     free (the free mark in a block's second word: a per-process key plus
 *     the block's address, see internal.h) are reported with one line on
 *     stderr, then abort();
 *   - free-list links are stored XORed with a per-process secret taken from
 *     the kernel's AT_RANDOM bytes; a link that does not decode to a 16-byte
 *     aligned address is reported instead of followed.
 *
 * Debug mode, chosen at start-up without rebuilding: no thread caches, so
 * every call takes the checked slow path here; the normal build pays one
 * predictable branch on slow paths only.  A block of n bytes is laid out as
 *
 *   [ n bytes for the program | 8-byte canary | ... | n (8 bytes, last word) ]
 *
 * inside a block of at least n + 16 bytes.  New blocks are filled with 0xAA
 * (reads of uninitialised memory show), calloc's with zeros.  free checks the
 * canary (writes past the end), then fills a small block from its third word
 * on with 0x55; when the block is handed out again the fill is verified
 * (writes after free).  malloc_usable_size reports n, so a program that uses
 * the whole usable size does not trip the canary.
 *
 * The fill is recognised by its last word.  For that to mean "freed by debug
 * mode in this very layout", debug mode keeps empty small spans instead of
 * returning their pages to the heap, and zeroes large blocks when they are
 * freed, so no stale fill can reappear inside a block of another layout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "internal.h"

#define FILL_NEW 0xaa
#define FILL_FREED 0x55
#define CANARY_BYTE 0xfd
#define CANARY_LEN 8
#define TRAILER 16   /* canary + the stored size */
#define FREED_WORD 0x5555555555555555u

uintptr_t gm_secret, gm_free_key;   /* written once, release; see internal.h */

/* ---- reports ----------------------------------------------------------------- */

static size_t append(char *line, size_t n, const char *s) {
    while (*s && n < 150)
        line[n++] = *s++;
    return n;
}

static __attribute__((noreturn)) void report(const char *call, const char *what, const void *p,
                                             uint8_t cls, size_t requested) {
    char line[256];
    size_t n = append(line, 0, "gomalloc: ");
    n = append(line, n, call);
    n = append(line, n, ": ");
    n = append(line, n, what);
    line[n++] = ' ';
    n += gm_fmt_hex(line + n, (uintptr_t)p);
    if (cls) {
        n = append(line, n, " (size class ");
        n += gm_fmt_dec(line + n, cls);
        n = append(line, n, ", ");
        n += gm_fmt_dec(line + n, gm_class_size[cls]);
        n = append(line, n, " bytes");
        if (requested != (size_t)-1) {
            n = append(line, n, ", ");
            n += gm_fmt_dec(line + n, requested);
            n = append(line, n, " requested");
        }
        line[n++] = ')';
    }
    line[n++] = '\n';
    gm_os_write(2, line, n);
    abort();
}

void gm_report_block(const char *call, const char *what, const void *p, uint8_t cls) {
    report(call, what, p, cls, (size_t)-1);
}

void gm_report_sized(const char *call, const char *what, const void *p, size_t size) {
    char line[256];
    size_t n = append(line, 0, "gomalloc: ");
    n = append(line, n, call);
    n = append(line, n, ": ");
    n = append(line, n, what);
    line[n++] = ' ';
    n += gm_fmt_hex(line + n, (uintptr_t)p);
    n = append(line, n, " (");
    n += gm_fmt_dec(line + n, size);
    n = append(line, n, " bytes)\n");
    gm_os_write(2, line, n);
    abort();
}

void gm_double_free(const char *call, const void *p, uint8_t cls) {
    report(call, "double free of", p, cls, (size_t)-1);
}

void gm_invalid_pointer(const char *call, const void *p) {
    report(call, "invalid pointer", p, 0, (size_t)-1);
}

void gm_corrupt_link(const void *block) {
    report("malloc()", "corrupted free list (write after free?) at", block, 0, (size_t)-1);
}

/* ---- hardening --------------------------------------------------------------- */

/* The kernel's 16 random bytes for this process (AT_RANDOM): there from the
 * first instruction, no system call, no allocation.  Concurrent first calls
 * compute the same values. */
void gm_hardening_init(void) {
    uintptr_t words[2] = {0x9e3779b97f4a7c15u, 0xc2b2ae3d27d4eb4fu};
    const void *random = (const void *)getauxval(AT_RANDOM);
    if (random)
        memcpy(words, random, sizeof words);
    words[0] ^= (uintptr_t)&gm_secret >> 12;   /* ASLR, should AT_RANDOM be missing */
    __atomic_store_n(&gm_free_key, words[1] | 1, __ATOMIC_RELEASE);
    __atomic_store_n(&gm_secret, words[0] | ((uintptr_t)1 << 63), __ATOMIC_RELEASE);
}

/* ---- debug mode -------------------------------------------------------------- */

static size_t *size_word(void *p, size_t usable) {
    return (size_t *)((char *)p + usable - sizeof(size_t));
}

/* A block handed out again after a debug free must still hold the fill. */
static void check_freed_fill(unsigned char *p, size_t usable, uint8_t cls) {
    if (!cls || usable <= TRAILER || *size_word(p, usable) != FREED_WORD)
        return;   /* large, too small to fill, or never freed */
    for (size_t i = TRAILER; i < usable - sizeof(size_t); i++)
        if (p[i] != FILL_FREED)
            report("malloc()", "write after free of", p, cls, (size_t)-1);
}

void *gm_debug_alloc(size_t size, size_t align, bool zero) {
    if (size > PTRDIFF_MAX - TRAILER) {
        errno = ENOMEM;
        return NULL;
    }
    unsigned char *p = gm_raw_alloc(size + TRAILER, align, false);
    if (!p)
        return NULL;
    uint8_t cls;
    size_t usable = gm_raw_usable(p, "malloc()", &cls);
    check_freed_fill(p, usable, cls);
    memset(p, zero ? 0 : FILL_NEW, size);
    memset(p + size, CANARY_BYTE, CANARY_LEN);
    *size_word(p, usable) = size;
    return p;
}

/* The size the program asked for; reports a damaged trailer. */
static size_t requested_size(void *p, size_t usable, uint8_t cls, const char *call) {
    size_t size = *size_word(p, usable);
    if (size > usable - TRAILER)
        report(call, "block trailer overwritten (write past the end?) at", p, cls, (size_t)-1);
    const unsigned char *canary = (const unsigned char *)p + size;
    for (size_t i = 0; i < CANARY_LEN; i++)
        if (canary[i] != CANARY_BYTE)
            report(call, "write past the end of", p, cls, size);
    return size;
}

void gm_debug_free(void *ptr, const char *call) {
    uint8_t cls;
    size_t usable = gm_raw_usable(ptr, call, &cls);   /* invalid / double free */
    requested_size(ptr, usable, cls, call);
    if (cls && usable > TRAILER)
        memset((char *)ptr + TRAILER, FILL_FREED, usable - TRAILER);
    else if (!cls)
        memset(ptr, 0, usable);
    gm_raw_free(ptr, call);
}

size_t gm_debug_usable(const void *ptr) {
    uint8_t cls;
    void *p = (void *)ptr;
    size_t usable = gm_raw_usable(p, "malloc_usable_size()", &cls);
    return requested_size(p, usable, cls, "malloc_usable_size()");
}

void *gm_debug_realloc(void *ptr, size_t size) {
    if (size == 0) {
        gm_debug_free(ptr, "realloc()");
        return NULL;
    }
    uint8_t cls;
    size_t usable = gm_raw_usable(ptr, "realloc()", &cls);
    size_t old = requested_size(ptr, usable, cls, "realloc()");
    void *p = gm_debug_alloc(size, 16, false);
    if (!p)
        return NULL;
    memcpy(p, ptr, old < size ? old : size);
    gm_debug_free(ptr, "realloc()");
    return p;
}
