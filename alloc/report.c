/*
 * report.c — every message gomalloc writes, the reports of misuse that end
 * the process, and the free-list hardening whose checks lead to them.
 *
 * One line builder (gm_line_t) serves every message: the reports below,
 * options.c's warnings, stats.c's report, malloc.c's sized-free mismatch.
 * Text and decimal or hex numbers are appended to a buffer on the stack, cut
 * at its end, and written with one write(2).  Nothing here allocates: a
 * report may come from inside malloc, or while the heap is damaged, and
 * printf may itself allocate.
 *
 * Reports: one line on stderr ("gomalloc: CALL: WHAT 0x... (size class
 * ...)"), then abort(), as glibc does.  gm_fatal_msg is the same for a
 * failed gm_assert, gm_check_failed for a validator of a GM_CHECKS build.
 *
 * Hardening (see hardening.h): the per-process secret
 * that free-list links are XORed with and the key of the free marks, both
 * from the kernel's AT_RANDOM bytes; a link that does not decode to a
 * 16-byte aligned address is reported here (gm_corrupt_link), not followed.
 *
 * This file sits just above os_linux.c: every other layer may report.
 * Nothing here takes a lock.
 */
#define _GNU_SOURCE
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>

#include "hardening.h"
#include "internal.h"

uintptr_t gm_secret, gm_free_key;   /* written once, release; see hardening.h */

/* ---- the line builder ---------------------------------------------------- */

/* The last byte is kept for the newline gm_line_write adds. */
static size_t line_room(const gm_line_t *l) { return sizeof l->buf - 1 - l->n; }

void gm_line_put_n(gm_line_t *l, const char *s, size_t len) {
    size_t room = line_room(l);
    len = len < room ? len : room;
    memcpy(l->buf + l->n, s, len);
    l->n += len;
}

void gm_line_put(gm_line_t *l, const char *s) { gm_line_put_n(l, s, strlen(s)); }

void gm_line_dec(gm_line_t *l, uint64_t v) {
    char tmp[20];
    size_t n = sizeof tmp;
    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    gm_line_put_n(l, tmp + n, sizeof tmp - n);
}

void gm_line_hex(gm_line_t *l, uintptr_t v) {
    char tmp[2 + 2 * sizeof v];
    size_t n = sizeof tmp;
    do {
        tmp[--n] = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    tmp[--n] = 'x';
    tmp[--n] = '0';
    gm_line_put_n(l, tmp + n, sizeof tmp - n);
}

void gm_line_pad(gm_line_t *l, size_t column) {
    while (l->n < column && line_room(l) > 0)
        l->buf[l->n++] = ' ';
}

void gm_line_write(gm_line_t *l, int fd) {
    l->buf[l->n++] = '\n';
    gm_os_write(fd, l->buf, l->n);
}

/* ---- reports ------------------------------------------------------------- */

void gm_fatal_msg(const char *msg) {
    gm_line_t l = GM_LINE_INIT;
    gm_line_put(&l, "gomalloc: ");
    gm_line_put(&l, msg);
    gm_line_write(&l, 2);
    abort();
}

#if GM_CHECKS
void gm_check_failed(const char *file, int line, const char *what) {
    gm_line_t l = GM_LINE_INIT;
    gm_line_put(&l, "gomalloc: invariant broken (");
    gm_line_put(&l, file);
    gm_line_put(&l, ":");
    gm_line_dec(&l, (uint64_t)line);
    gm_line_put(&l, "): ");
    gm_line_put(&l, what);
    gm_line_write(&l, 2);
    abort();
}
#endif

/* "gomalloc: CALL: WHAT 0x...", the start of every report of a block. */
static void report_start(gm_line_t *l, const char *call, const char *what, const void *p) {
    gm_line_put(l, "gomalloc: ");
    gm_line_put(l, call);
    gm_line_put(l, ": ");
    gm_line_put(l, what);
    gm_line_put(l, " ");
    gm_line_hex(l, (uintptr_t)p);
}

void gm_report(const char *call, const char *what, const void *p, uint8_t cls,
               size_t requested) {
    gm_line_t l = GM_LINE_INIT;
    report_start(&l, call, what, p);
    if (cls) {
        gm_line_put(&l, " (size class ");
        gm_line_dec(&l, cls);
        gm_line_put(&l, ", ");
        gm_line_dec(&l, gm_class_size[cls]);
        gm_line_put(&l, " bytes");
        if (requested != GM_NO_SIZE) {
            gm_line_put(&l, ", ");
            gm_line_dec(&l, requested);
            gm_line_put(&l, " requested");
        }
        gm_line_put(&l, ")");
    }
    gm_line_write(&l, 2);
    abort();
}

void gm_report_block(const char *call, const char *what, const void *p, uint8_t cls) {
    gm_report(call, what, p, cls, GM_NO_SIZE);
}

void gm_report_sized(const char *call, const char *what, const void *p, size_t size) {
    gm_line_t l = GM_LINE_INIT;
    report_start(&l, call, what, p);
    gm_line_put(&l, " (");
    gm_line_dec(&l, size);
    gm_line_put(&l, " bytes)");
    gm_line_write(&l, 2);
    abort();
}

void gm_double_free(const char *call, const void *p, uint8_t cls) {
    gm_report(call, "double free of", p, cls, GM_NO_SIZE);
}

void gm_invalid_pointer(const char *call, const void *p) {
    gm_report(call, "invalid pointer", p, 0, GM_NO_SIZE);
}

void gm_corrupt_link(const void *block) {
    gm_report("malloc()", "corrupted free list (write after free?) at", block, 0, GM_NO_SIZE);
}

/* ---- hardening ----------------------------------------------------------- */

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
