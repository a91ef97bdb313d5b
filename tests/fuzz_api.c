/*
 * fuzz_api.c — libFuzzer harness for the gm_* API.
 *
 * The input is a program: a sequence of operations, each an opcode byte
 * followed by the argument bytes it needs (reads past the end give zeros).
 * The harness keeps a model of every live block (requested size, usable size,
 * alignment asked for, fill pattern) in 256 slots and checks after every
 * operation:
 *   - alignment (16, or the alignment requested), gm_usable_size >= size and
 *     the usable size stable for the block's life (a realloc in place of a
 *     large or huge block may change it, never below the new size);
 *   - contents: the whole block on free / realloc / hand-off, head, tail and
 *     a sampled window otherwise; calloc memory zeroed; realloc keeps
 *     min(old, new) bytes; a same-block shrink to no less than half the
 *     usable size keeps the pointer (README);
 *   - no two live blocks overlap (checked against every live block, n <= 256);
 *   - errors as glibc: ENOMEM for oversize requests and overflowing products,
 *     EINVAL for bad alignments, posix_memalign leaves errno alone, a failed
 *     realloc leaves the old block intact.
 * A worker thread takes commands synchronously (free, realloc or allocate a
 * set of blocks, exit and restart) so cross-thread frees stay deterministic.
 * Live blocks are bounded (256, 256 MiB) so a run never runs out of memory.
 * Every violation prints one line and aborts.
 *
 * Build (tests/fuzz.mk does this):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Ialloc \
 *         tests/fuzz_api.c build/fuzz/libgomalloc-core.a -pthread
 * ASan watches the harness's own memory; it cannot see inside gomalloc's
 * blocks (they come from mmap, not from ASan's allocator), which is why the
 * harness checks contents itself.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gomalloc.h"

#define KiB ((size_t)1024)
#define MiB (1024 * KiB)
#define NSLOTS 256
#define MAX_LIVE_BYTES (256 * MiB)
#define MAX_OPS 4096
#define PERIOD 65521u          /* prime: a shifted copy never matches */
#define HANDOFF_MAX 8

struct block {
    unsigned char *p;          /* NULL: slot empty */
    size_t size;               /* bytes requested */
    size_t usable;             /* gm_usable_size at allocation */
    size_t align;              /* alignment the block must have */
    size_t filled;             /* bytes holding the pattern (size or usable) */
    uint8_t pat;
};

static struct block slots[NSLOTS];
static size_t live_bytes;
static unsigned char ref[2 * PERIOD];
static unsigned char zeros[PERIOD];
static uint8_t next_pat;
static unsigned long op_index;

/* ---- failure reporting --------------------------------------------------- */

__attribute__((noreturn, format(printf, 1, 2))) static void fail(const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "fuzz_api: op %lu: ", op_index);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    abort();
}

/* ---- input reader ------------------------------------------------------------ */

struct input {
    const uint8_t *data;
    size_t len, pos;
};

static uint8_t get8(struct input *in) { return in->pos < in->len ? in->data[in->pos++] : 0; }
static uint16_t get16(struct input *in) {
    uint16_t lo = get8(in);
    return (uint16_t)(lo | get8(in) << 8);
}
static uint32_t get32(struct input *in) {
    uint32_t lo = get16(in);
    return lo | (uint32_t)get16(in) << 16;
}

/* A size from the mix: small, medium, large, rarely huge. */
static size_t get_size(struct input *in) {
    uint8_t kind = get8(in);
    uint32_t v = get32(in);
    if (kind < 150)
        return v % 1025;                                   /* 0 .. 1 KiB */
    if (kind < 215)
        return v % (32 * KiB + 1);                         /* .. 32 KiB */
    if (kind < 252)
        return 32 * KiB + v % (4 * MiB - 32 * KiB + 1);    /* .. 4 MiB */
    if (kind < 254)
        return (size_t)(v & 15) << (v >> 4 & 15);           /* class edges */
    if ((v & 7) == 0)
        return 16 * MiB + (v >> 3) % (24 * MiB + 1);       /* 16 .. 40 MiB */
    return 16 * MiB - 8 * KiB + (v >> 3) % (16 * KiB);     /* around the threshold */
}

/* ---- patterns ---------------------------------------------------------------- */

static size_t pat_start(uint8_t pat, size_t i) { return ((size_t)pat * 257u + i) % PERIOD; }

static void fill(unsigned char *p, size_t from, size_t to, uint8_t pat) {
    for (size_t i = from; i < to;) {
        size_t n = to - i < PERIOD ? to - i : PERIOD;
        memcpy(p + i, ref + pat_start(pat, i), n);
        i += n;
    }
}

/* Index of the first byte in [from, to) that differs from the pattern, or to. */
static size_t mismatch(const unsigned char *p, size_t from, size_t to, uint8_t pat) {
    for (size_t i = from; i < to;) {
        size_t n = to - i < PERIOD ? to - i : PERIOD;
        const unsigned char *want = ref + pat_start(pat, i);
        if (memcmp(p + i, want, n) != 0) {
            for (size_t j = 0; j < n; j++)
                if (p[i + j] != want[j])
                    return i + j;
        }
        i += n;
    }
    return to;
}

static void check_range(const struct block *b, size_t from, size_t to, const char *when) {
    if (to > b->filled)
        to = b->filled;
    if (from >= to)
        return;
    size_t at = mismatch(b->p, from, to, b->pat);
    if (at != to)
        fail("%s: block %p (size %zu, usable %zu) corrupted at offset %zu: 0x%02x, expected 0x%02x",
             when, (void *)b->p, b->size, b->usable, at, b->p[at], ref[pat_start(b->pat, at)]);
}

static void check_full(const struct block *b, const char *when) { check_range(b, 0, b->filled, when); }

static void check_usable(const struct block *b, const char *when) {
    size_t u = gm_usable_size(b->p);
    if (u != b->usable)
        fail("%s: usable size of %p changed from %zu to %zu", when, (void *)b->p, b->usable, u);
}

/* Head, tail and a window chosen by the input. */
static void check_sampled(const struct block *b, uint32_t where, const char *when) {
    check_usable(b, when);
    check_range(b, 0, 64, when);
    if (b->filled > 64)
        check_range(b, b->filled - 64, b->filled, when);
    if (b->filled > 256) {
        size_t at = where % (b->filled - 256);
        check_range(b, at, at + 256, when);
    }
}

/* ---- model -------------------------------------------------------------- */

static void release_slot(struct block *b) {
    live_bytes -= b->usable;
    memset(b, 0, sizeof *b);
}

/* Validates a fresh block and enters it in slot s (which must be empty).
 * zeroed: the block must read as zero.  keep: bytes [0, keep) already hold
 * pattern pat (realloc); the rest of the block is filled. */
static void insert(int s, void *ptr, size_t size, size_t align, bool zeroed, uint8_t pat,
                   size_t keep, bool fill_usable, const char *what) {
    unsigned char *p = ptr;
    if (slots[s].p)
        fail("%s: slot %d busy", what, s);
    if (align < 16)
        align = 16;
    if ((uintptr_t)p & (align - 1))
        fail("%s(%zu): %p not aligned to %zu", what, size, ptr, align);
    size_t usable = gm_usable_size(p);
    if (usable < size)
        fail("%s(%zu): %p usable size %zu < request", what, size, ptr, usable);
    if (zeroed) {
        for (size_t i = 0; i < size;) {
            size_t n = size - i < PERIOD ? size - i : PERIOD;
            if (memcmp(p + i, zeros, n) != 0)
                fail("%s(%zu): %p not zeroed near offset %zu", what, size, ptr, i);
            i += n;
        }
    }
    uintptr_t lo = (uintptr_t)p, hi = lo + usable;
    for (int j = 0; j < NSLOTS; j++) {
        const struct block *o = &slots[j];
        if (!o->p)
            continue;
        uintptr_t olo = (uintptr_t)o->p, ohi = olo + o->usable;
        if (lo < ohi && olo < hi)
            fail("%s(%zu): [%p, +%zu) overlaps live block [%p, +%zu) in slot %d", what, size,
                 ptr, usable, (void *)o->p, o->usable, j);
    }
    struct block *b = &slots[s];
    b->p = p;
    b->size = size;
    b->usable = usable;
    b->align = align;
    b->pat = pat;
    b->filled = fill_usable ? usable : size;
    if (keep < b->filled)
        fill(p, keep, b->filled, pat);
    live_bytes += usable;
}

/* Room for another block of size bytes under the live-byte bound. */
static bool room_for(size_t size) {
    return size <= MAX_LIVE_BYTES && live_bytes + size <= MAX_LIVE_BYTES;
}

static void free_slot(int s, const char *when) {
    struct block *b = &slots[s];
    if (!b->p)
        return;
    check_usable(b, when);
    check_full(b, when);
    int saved = errno = 4242;
    gm_free(b->p);
    if (errno != saved)
        fail("%s: free changed errno to %d", when, errno);
    release_slot(b);
}

static void expect_fail(void *p, int err, const char *what) {
    if (p)
        fail("%s: expected NULL, got %p", what, p);
    if (errno != err)
        fail("%s: expected errno %d, got %d", what, err, errno);
}

/* ---- worker thread ------------------------------------------------------------ */

enum { W_IDLE, W_FREE, W_REALLOC, W_MALLOC, W_EXIT };

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    pthread_t thread;
    bool running;
    int cmd;                   /* W_IDLE when done */
    int n;
    void *ptrs[HANDOFF_MAX];
    size_t sizes[HANDOFF_MAX];
    void *results[HANDOFF_MAX];
    int errs[HANDOFF_MAX];
} worker = {.lock = PTHREAD_MUTEX_INITIALIZER, .cond = PTHREAD_COND_INITIALIZER};

static void *worker_main(void *arg) {
    (void)arg;
    pthread_mutex_lock(&worker.lock);
    for (;;) {
        while (worker.cmd == W_IDLE)
            pthread_cond_wait(&worker.cond, &worker.lock);
        int cmd = worker.cmd;
        for (int i = 0; i < worker.n; i++) {
            errno = 0;
            switch (cmd) {
            case W_FREE:
                gm_free(worker.ptrs[i]);
                break;
            case W_REALLOC:
                worker.results[i] = gm_realloc(worker.ptrs[i], worker.sizes[i]);
                break;
            case W_MALLOC:
                worker.results[i] = gm_malloc(worker.sizes[i]);
                break;
            }
            worker.errs[i] = errno;
        }
        if (cmd == W_IDLE || cmd == W_EXIT) {
            worker.cmd = W_IDLE;
            pthread_cond_broadcast(&worker.cond);
            pthread_mutex_unlock(&worker.lock);
            return NULL;
        }
        worker.cmd = W_IDLE;
        pthread_cond_broadcast(&worker.cond);
    }
}

static void worker_start(void) {
    if (worker.running)
        return;
    if (pthread_create(&worker.thread, NULL, worker_main, NULL) != 0)
        fail("pthread_create failed");
    worker.running = true;
}

/* Runs one command on the worker and waits until it is done. */
static void worker_run(int cmd, int n) {
    worker_start();
    pthread_mutex_lock(&worker.lock);
    worker.n = n;
    worker.cmd = cmd;
    pthread_cond_broadcast(&worker.cond);
    while (worker.cmd != W_IDLE)
        pthread_cond_wait(&worker.cond, &worker.lock);
    pthread_mutex_unlock(&worker.lock);
    if (cmd == W_EXIT) {
        pthread_join(worker.thread, NULL);
        worker.running = false;
    }
}

/* ---- operations ------------------------------------------------------------ */

static int get_slot(struct input *in) { return get8(in); }

static uint8_t new_pat(void) { return next_pat++; }

static void op_malloc(struct input *in) {
    int s = get_slot(in);
    size_t size = get_size(in);
    bool fu = get8(in) & 1;
    free_slot(s, "malloc: old slot");
    if (!room_for(size))
        return;
    void *p = gm_malloc(size);
    if (!p)
        fail("malloc(%zu) failed, errno %d", size, errno);
    insert(s, p, size, 16, false, new_pat(), 0, fu, "malloc");
}

static void op_calloc(struct input *in) {
    static const size_t elems[] = {1, 2, 8, 16, 24, 100, 4096, 3};
    int s = get_slot(in);
    size_t size = get_size(in);
    size_t elem = elems[get8(in) & 7];
    size_t count = size / elem;
    free_slot(s, "calloc: old slot");
    if (!room_for(count * elem))
        return;
    void *p = gm_calloc(count, elem);
    if (!p)
        fail("calloc(%zu, %zu) failed, errno %d", count, elem, errno);
    insert(s, p, count * elem, 16, true, new_pat(), 0, false, "calloc");
}

/* New size for a realloc of block b, by mode. */
static size_t realloc_size(const struct block *b, uint8_t mode, uint32_t v, struct input *in) {
    switch (mode % 6) {
    case 0: return 0;                                            /* free */
    case 1: return b->size + 1 + v % (b->size + 64);             /* grow */
    case 2: return b->size ? v % b->size : 0;                    /* shrink */
    case 3: return b->usable / 2 + v % (b->usable - b->usable / 2 + 1); /* in place */
    default: return get_size(in);                                /* anything */
    }
}

/* Checks the outcome of p = realloc(old block b, size) and updates slot s. */
static void realloc_done(int s, struct block old, void *p, size_t size, int err, const char *what) {
    if (size == 0) {
        if (p)
            fail("%s(%p, 0) returned %p, expected NULL", what, (void *)old.p, p);
        release_slot(&slots[s]);
        return;
    }
    if (!p)
        fail("%s(%p, %zu) failed, errno %d", what, (void *)old.p, size, err);
    if (size <= old.usable && size >= old.usable / 2 && p != old.p)
        fail("%s(%p, %zu): moved to %p although usable %zu fits in place", what,
             (void *)old.p, size, p, old.usable);
    size_t keep = old.filled < size ? old.filled : size;
    struct block probe = old;
    probe.p = p;
    check_range(&probe, 0, keep, what);
    /* Large and huge blocks (whole 8 KiB pages) resize in place; small ones
     * keep their class. */
    size_t now = p == old.p ? gm_usable_size(p) : 0;
    if (p == old.p && (now < size ||
                       (now != old.usable && (now % 8192 || old.usable % 8192))))
        fail("%s: in-place block %p changed usable size %zu -> %zu", what, p, old.usable,
             gm_usable_size(p));
    release_slot(&slots[s]);
    insert(s, p, size, 16, false, old.pat, keep, false, what);
}

static void op_realloc(struct input *in) {
    int s = get_slot(in);
    uint8_t mode = get8(in);
    uint32_t v = get32(in);
    struct block *b = &slots[s];
    if (!b->p) {
        size_t size = get_size(in);
        if (!room_for(size))
            return;
        void *p = gm_realloc(NULL, size);
        if (!p)
            fail("realloc(NULL, %zu) failed", size);
        insert(s, p, size, 16, false, new_pat(), 0, false, "realloc(NULL)");
        return;
    }
    size_t size = realloc_size(b, mode, v, in);
    if (size > b->usable && !room_for(size))
        return;
    check_usable(b, "realloc");
    check_full(b, "before realloc");
    struct block old = *b;
    errno = 0;
    void *p = gm_realloc(b->p, size);
    realloc_done(s, old, p, size, errno, "realloc");
}

static void op_reallocarray(struct input *in) {
    int s = get_slot(in);
    uint8_t e = get8(in);
    size_t size = get_size(in);
    struct block *b = &slots[s];
    if (e >= 240) {   /* overflow: fails, block untouched */
        errno = 0;
        void *p = gm_reallocarray(b->p, SIZE_MAX / 2 + 2, 2 + (e & 7));
        expect_fail(p, ENOMEM, "reallocarray overflow");
        if (b->p)
            check_sampled(b, e, "after failed reallocarray");
        return;
    }
    size_t elem = (size_t)(e & 31) + 1;
    size_t count = size / elem;
    size_t total = count * elem;
    if (!room_for(total))
        return;
    if (!b->p) {
        void *p = gm_reallocarray(NULL, count, elem);
        if (total == 0) {
            /* reallocarray(NULL, 0, n) is malloc(0): a unique pointer */
            if (!p)
                fail("reallocarray(NULL, 0, %zu) returned NULL", elem);
        } else if (!p) {
            fail("reallocarray(NULL, %zu, %zu) failed", count, elem);
        }
        insert(s, p, total, 16, false, new_pat(), 0, false, "reallocarray(NULL)");
        return;
    }
    check_full(b, "before reallocarray");
    struct block old = *b;
    errno = 0;
    void *p = gm_reallocarray(b->p, count, elem);
    realloc_done(s, old, p, total, errno, "reallocarray");
}

static size_t get_align(struct input *in, bool *valid) {
    uint8_t a = get8(in);
    *valid = true;
    if (a < 200)
        return (size_t)1 << (a % 21);                   /* 1 .. 1 MiB */
    *valid = false;
    switch (a % 5) {
    case 0: return 0;
    case 1: return 3;
    case 2: return 24;
    case 3: return ((size_t)1 << (a % 20 + 1)) + 1;     /* just above a power of two */
    default: return ((size_t)3 << (a % 19));
    }
}

static size_t next_pow2(size_t a) {
    size_t r = 16;
    while (r < a)
        r <<= 1;
    return r;
}

static void op_aligned(struct input *in, int kind) {
    static const char *names[] = {"aligned_alloc", "posix_memalign", "memalign"};
    int s = get_slot(in);
    bool valid;
    size_t align = get_align(in, &valid);
    size_t size = get_size(in);
    const char *what = names[kind];
    free_slot(s, "aligned: old slot");
    if (!room_for(size + align))
        return;
    void *p = NULL;
    size_t want = align;
    if (kind == 0) {
        errno = 0;
        p = gm_aligned_alloc(align, size);
        if (!valid) {
            if (p)
                fail("aligned_alloc(%zu, %zu): bad alignment accepted: %p", align, size, p);
            expect_fail(p, EINVAL, "aligned_alloc(bad alignment)");
            return;
        }
        if (!p)
            fail("aligned_alloc(%zu, %zu) failed, errno %d", align, size, errno);
    } else if (kind == 1) {
        void *out = (void *)0x1234;
        errno = 4243;
        int r = gm_posix_memalign(&out, align, size);
        if (errno != 4243)
            fail("posix_memalign(%zu, %zu) changed errno to %d", align, size, errno);
        if (!valid || align < sizeof(void *)) {
            if (r != EINVAL)
                fail("posix_memalign(%zu, %zu) returned %d, expected EINVAL", align, size, r);
            if (out != (void *)0x1234)
                fail("posix_memalign(%zu) with EINVAL wrote *out", align);
            return;
        }
        if (r != 0)
            fail("posix_memalign(%zu, %zu) returned %d", align, size, r);
        p = out;
    } else {
        errno = 0;
        p = gm_memalign(align, size);
        if (!p)
            fail("memalign(%zu, %zu) failed, errno %d", align, size, errno);
        want = next_pow2(align);   /* glibc rounds up */
    }
    insert(s, p, size, want, false, new_pat(), 0, get8(in) & 1, what);
}

static void op_valloc(struct input *in, bool pv) {
    int s = get_slot(in);
    size_t size = get_size(in);
    free_slot(s, "valloc: old slot");
    size_t need = pv ? (size + 4095) / 4096 * 4096 : size;
    if (pv && need == 0)
        need = 4096;
    if (!room_for(need))
        return;
    void *p = pv ? gm_pvalloc(size) : gm_valloc(size);
    if (!p)
        fail("%s(%zu) failed, errno %d", pv ? "pvalloc" : "valloc", size, errno);
    insert(s, p, need, 4096, false, new_pat(), 0, false, pv ? "pvalloc" : "valloc");
}

static void op_check(struct input *in) {
    int s = get_slot(in);
    struct block *b = &slots[s];
    if (!b->p) {
        if (gm_usable_size(NULL) != 0)
            fail("gm_usable_size(NULL) != 0");
        return;
    }
    check_usable(b, "usable_size");
    check_full(b, "check");
    /* The program may write every usable byte. */
    if (b->filled < b->usable) {
        fill(b->p, b->filled, b->usable, b->pat);
        b->filled = b->usable;
    }
}

static void op_release(struct input *in) {
    uint32_t where = get32(in);
    (void)gm_release();
    for (int j = 0; j < NSLOTS; j++)
        if (slots[j].p)
            check_sampled(&slots[j], where + (uint32_t)j * 977u, "after gm_release");
}

/* Collects up to HANDOFF_MAX live slots from a bitmask over 8 consecutive slots. */
static int pick_slots(struct input *in, int *picked) {
    int base = get8(in);
    uint8_t mask = get8(in);
    int n = 0;
    for (int i = 0; i < 8; i++) {
        int s = (base + i) % NSLOTS;
        if ((mask >> i & 1) && slots[s].p)
            picked[n++] = s;
    }
    return n;
}

static void op_remote_free(struct input *in) {
    int picked[HANDOFF_MAX];
    int n = pick_slots(in, picked);
    for (int i = 0; i < n; i++) {
        check_usable(&slots[picked[i]], "hand-off free");
        check_full(&slots[picked[i]], "hand-off free");
        worker.ptrs[i] = slots[picked[i]].p;
    }
    worker_run(W_FREE, n);
    for (int i = 0; i < n; i++)
        release_slot(&slots[picked[i]]);
}

static void op_remote_realloc(struct input *in) {
    int picked[HANDOFF_MAX];
    struct block old[HANDOFF_MAX];
    int n = pick_slots(in, picked);
    for (int i = 0; i < n; i++) {
        struct block *b = &slots[picked[i]];
        check_usable(b, "hand-off realloc");
        check_full(b, "hand-off realloc");
        uint8_t mode = get8(in);
        uint32_t v = get32(in);
        size_t size = realloc_size(b, mode, v, in);
        if (size > b->usable && !room_for(size))
            size = b->size;
        old[i] = *b;
        worker.ptrs[i] = b->p;
        worker.sizes[i] = size;
    }
    worker_run(W_REALLOC, n);
    for (int i = 0; i < n; i++)
        realloc_done(picked[i], old[i], worker.results[i], worker.sizes[i], worker.errs[i],
                     "remote realloc");
}

static void op_remote_malloc(struct input *in) {
    int base = get8(in);
    int n = get8(in) % (HANDOFF_MAX + 1);
    size_t total = 0;
    for (int i = 0; i < n; i++) {
        free_slot((base + i) % NSLOTS, "remote malloc: old slot");
        worker.sizes[i] = get_size(in);
        total += worker.sizes[i];
    }
    if (!room_for(total))
        return;
    worker_run(W_MALLOC, n);
    for (int i = 0; i < n; i++) {
        if (!worker.results[i])
            fail("remote malloc(%zu) failed, errno %d", worker.sizes[i], worker.errs[i]);
        insert((base + i) % NSLOTS, worker.results[i], worker.sizes[i], 16, false, new_pat(), 0,
               false, "remote malloc");
    }
}

/* Requests that must fail: oversize, overflowing products, bad alignments. */
static void op_errors(struct input *in) {
    uint8_t k = get8(in);
    int s = get_slot(in);
    struct block *b = &slots[s];
    size_t big = (size_t)PTRDIFF_MAX + 1 + (size_t)get16(in);
    errno = 0;
    switch (k % 11) {
    case 0: expect_fail(gm_malloc(big), ENOMEM, "malloc(> PTRDIFF_MAX)"); break;
    case 1: expect_fail(gm_calloc(SIZE_MAX / 16 + 2, 16), ENOMEM, "calloc overflow"); break;
    case 2: expect_fail(gm_calloc(1, big), ENOMEM, "calloc(1, > PTRDIFF_MAX)"); break;
    case 3:
        if (b->p) {
            expect_fail(gm_realloc(b->p, big), ENOMEM, "realloc(p, > PTRDIFF_MAX)");
            check_usable(b, "after failed realloc");
            check_full(b, "after failed realloc");
        }
        break;
    case 4: expect_fail(gm_aligned_alloc(4096, big), ENOMEM, "aligned_alloc(4096, huge)"); break;
    case 5: {
        void *out = (void *)0x1;
        errno = 4244;
        int r = gm_posix_memalign(&out, 64, big);
        if (r != ENOMEM || errno != 4244 || out != (void *)0x1)
            fail("posix_memalign(64, huge): r=%d errno=%d out=%p", r, errno, out);
        break;
    }
    /* glibc: 2^63 is a power of two no block can be aligned to (ENOMEM);
     * anything above cannot be rounded up to one (EINVAL). */
    case 6: expect_fail(gm_memalign((size_t)1 << 63, 16), ENOMEM, "memalign(2^63)");
            expect_fail(gm_memalign(((size_t)1 << 63) + 1, 16), EINVAL, "memalign(2^63 + 1)");
            break;
    case 7: expect_fail(gm_valloc(big), ENOMEM, "valloc(huge)"); break;
    case 8: expect_fail(gm_pvalloc(SIZE_MAX - 100), ENOMEM, "pvalloc(SIZE_MAX)"); break;
    case 9: expect_fail(gm_aligned_alloc((size_t)1 << 20, SIZE_MAX - 4096), ENOMEM,
                        "aligned_alloc(1 MiB, SIZE_MAX)"); break;
    default: {
        int saved = errno = 4245;
        gm_free(NULL);
        if (errno != saved)
            fail("free(NULL) changed errno");
        /* realloc(NULL, 0) is malloc(0): a unique pointer, freed at once. */
        void *p = gm_realloc(NULL, 0);
        if (!p)
            fail("realloc(NULL, 0) returned NULL");
        gm_free(p);
        break;
    }
    }
}

static void run(struct input *in) {
    op_index = 0;
    while (in->pos < in->len && op_index < MAX_OPS) {
        op_index++;
        uint8_t op = get8(in);
        switch (op % 20) {
        case 0: case 1: case 2: op_malloc(in); break;
        case 3: op_calloc(in); break;
        case 4: case 5: op_realloc(in); break;
        case 6: op_reallocarray(in); break;
        case 7: op_aligned(in, 0); break;
        case 8: op_aligned(in, 1); break;
        case 9: op_aligned(in, 2); break;
        case 10: op_valloc(in, false); break;
        case 11: op_valloc(in, true); break;
        case 12: case 13: free_slot(get_slot(in), "free"); break;
        case 14: op_check(in); break;
        case 15: op_release(in); break;
        case 16: op_remote_free(in); break;
        case 17: op_remote_realloc(in); break;
        case 18: op_remote_malloc(in); break;
        default:
            if (op >= 200)
                worker_run(W_EXIT, 0);   /* thread exit flushes its cache */
            else
                op_errors(in);
            break;
        }
        /* After every operation: one block sampled, chosen by the op count. */
        const struct block *b = &slots[(op_index * 37) % NSLOTS];
        if (b->p)
            check_sampled(b, (uint32_t)op_index * 7919u, "sample");
    }
    for (int s = 0; s < NSLOTS; s++)
        free_slot(s, "final free");
    if (live_bytes != 0)
        fail("live byte count %zu after freeing everything", live_bytes);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < PERIOD; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        ref[i] = (unsigned char)(x >> 24);
    }
    memcpy(ref + PERIOD, ref, PERIOD);   /* ref[j] == ref[j % PERIOD] */
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct input in = {data, size, 0};
    next_pat = size ? data[0] : 0;
    run(&in);
    return 0;
}
