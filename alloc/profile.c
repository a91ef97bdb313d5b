/*
 * profile.c — the sampled heap profile (GOMALLOC_PROFILE, gm_profile_write),
 * as Go's runtime samples its heap (MemProfileRate).
 *
 * Sampling: each thread counts down the bytes it allocates; the countdown is
 * drawn from an exponential distribution of mean GOMALLOC_PROFILE_RATE
 * (512 KiB), so a block is sampled with probability about size / rate, and
 * the allocation that takes it below zero is sampled.  The fast paths never
 * look at it: a thread's list refill (gm_profile_trim) charges the objects it
 * hands out in advance and hands out no more than the countdown covers, so
 * the list runs dry at the allocation that crosses it, and that allocation
 * takes the slow path, where gm_profile_due sees it.  Off (rate 0), the
 * fast paths carry nothing and the slow paths one load and branch.  The
 * price of charging at refill: an object a thread frees and allocates again
 * from its own list is not charged a second time, so churn through a thread
 * cache is sampled less than fresh allocation (in-use memory, what a leak
 * or a heap profile is about, is not affected that way).
 *
 * A sampled small block is served from a page of its own (a one-page large
 * span, or as many pages as the size needs), so its free takes the slow
 * path of free; about 8 KiB per sampled block in use, 1.6% of the memory at
 * the default rate.  Its page goes back to the page heap, where the next
 * sample of any thread can take it, not to the freeing thread's page cache,
 * where it would wait for a sample of that thread (bench/prodcons-4: 4 MiB
 * in the consumers' caches); the next sampled block takes a page off the
 * heap's stack of freed one-page spans when there is one.  Large blocks are
 * charged and sampled where they come from the page heap (alloc_large), not
 * when a thread's page cache hands one out again, as a small object taken
 * again from a thread's own list is not.  A sampled block's span (or huge
 * block) is marked sampled, and raw.c's free calls gm_profile_forget for
 * marked ones only, so the frees of other large blocks look nothing up.  A
 * large block that realloc moves without a free (grown into the pages before
 * it, a huge block remapped) keeps its sample at the old address, counted as
 * freed when another sample lands there.
 *
 * Stacks: unwind.c's walk of the unwind tables (.eh_frame), so frames
 * compiled without frame pointers (glibc, most distribution binaries,
 * gomalloc itself) do not cut the stack short; it takes no malloc and no
 * lock that could wait, and keeps each frame's decoded rule, so that a
 * sample from a known call site costs a few hundred instructions.  The
 * frames inside gomalloc's own text are left out, and the profile's
 * drop_frames names the entry points for a static link, where the program
 * and gomalloc are one object.
 *
 * Records, in mmap'd tables mapped untouched, so that memory is used only
 * as they fill: one per distinct stack (sampled allocations and frees,
 * counts and bytes), found through a hash of chains, and one per sampled
 * block still in use (address, size, stack), in an open-addressed table that
 * starts at 1,024 slots and is rebuilt at four times the blocks it holds
 * when half full.  All under prof_lock, a leaf that fork's handlers take
 * with the others (malloc.c), so a fork child finds the tables whole.
 *
 * Written out by profile_pb.c: scaled up as pprof expects (Go's
 * scaleHeapSample: counts times 1 / (1 - e^(-avg/rate))).
 */
#define _GNU_SOURCE
#include <string.h>
#include <time.h>

#include "gomalloc.h"
#include "hardening.h"
#include "internal.h"
#include "profile_pb.h"
#include "report_io.h"

#define MAX_DEPTH 32
#define MAX_STACKS 8192
#define STACK_BUCKETS 4096   /* chains of stacks by hash: 16 KiB */
#define LIVE_MIN_BITS 10     /* the in-use table's first size: 1,024 slots, 24 KiB */
#define LIVE_MAX_BITS 20     /* its largest: 24 MiB, up to 2^19 sampled blocks in use */
#define TOMBSTONE ((uintptr_t)1)

struct stack {
    uint64_t hash;
    uint32_t depth;
    uint32_t next;                    /* the next in its bucket's chain, plus one; 0: none */
    uintptr_t pcs[MAX_DEPTH];
    uint64_t allocs, alloc_bytes, frees, free_bytes;
};

struct live {
    uintptr_t addr;                   /* 0 empty, TOMBSTONE removed */
    uint64_t size;
    uint32_t stack;
};

/* All of these under prof_lock. */
static gm_lock_t prof_lock = GM_LOCK_INIT;
static struct stack *stacks;          /* in order of first sight */
static uint32_t nstacks;
static uint32_t *stack_buckets;       /* by hash: the chain's first stack, plus one */
static struct live *live;             /* open addressing, 2^live_bits slots */
static uint32_t live_bits;
static uint32_t nlive, nused;         /* entries; slots not empty (tombstones too) */

static __thread int64_t tls_left __attribute__((tls_model("initial-exec")));
static __thread uint64_t tls_rng __attribute__((tls_model("initial-exec")));

/* ---- the exponential countdown ------------------------------------------ */

static uint64_t next_random(void) {
    if (!tls_rng)
        tls_rng = (uintptr_t)&tls_rng ^ ((uint64_t)gm_os_clock_ms() << 32) ^ gm_secret ^ 1;
    tls_rng ^= tls_rng >> 12;
    tls_rng ^= tls_rng << 25;
    tls_rng ^= tls_rng >> 27;
    return tls_rng * 0x2545F4914F6CDD1Dull;
}

/* log2(x) for x >= 1 to about 1e-4: the exponent, and a cubic for the
 * mantissa's part (no libm: the library needs nothing but libc). */
static double log2_approx(double x) {
    union { double d; uint64_t u; } v = {x};
    int e = (int)((v.u >> 52) & 0x7ff) - 1023;
    v.u = (v.u & ((1ull << 52) - 1)) | (1023ull << 52);   /* mantissa in [1, 2) */
    double m = v.d - 1;
    return e + m * (1.4425449 + m * (-0.7181452 + m * 0.2756003));
}

/* e^(-x) for x >= 0, by halving x below 1/64 and squaring back. */
static double exp_neg(double x) {
    int k = 0;
    while (x > 1.0 / 64 && k < 60) {
        x /= 2;
        k++;
    }
    double r = 1 - x + x * x / 2 - x * x * x / 6;
    while (k--)
        r *= r;
    return r;
}

/* -ln(U) * rate for U uniform in (0, 1], as Go's fastexprand. */
static int64_t draw(void) {
    uint64_t q = (next_random() >> 11) + 1;               /* 1 .. 2^53 */
    double minus_log2_u = 53 - log2_approx((double)q);
    return (int64_t)(minus_log2_u * 0.6931471805599453 * (double)gm_options.profile_rate) + 1;
}

/* Charges size bytes; true when that crosses the countdown (sample it). */
static bool charge(size_t size) {
    if (!tls_left)
        tls_left = draw();
    tls_left -= (int64_t)size;
    if (tls_left > 0)
        return false;
    while (tls_left <= 0)
        tls_left += draw();
    return true;
}

/* ---- stacks --------------------------------------------------------------- */

/* This object's text, from the ELF header the linker places first to the
 * end of its code: the frames to leave out, gomalloc's own. */
extern char __ehdr_start[] __attribute__((visibility("hidden")));
extern char _etext[] __attribute__((visibility("hidden")));

static bool own_pc(uintptr_t pc) {
    return pc >= (uintptr_t)__ehdr_start && pc < (uintptr_t)_etext;
}

/* The stack from the program's call into gomalloc outward.  Statically
 * linked, gomalloc and the program are one object: nothing is skipped (the
 * profile's drop_frames then removes the entry points by name). */
static uint32_t capture(uintptr_t *pcs) {
    uintptr_t raw[MAX_DEPTH + 8];
    int n = (int)gm_unwind(raw, MAX_DEPTH + 8), first = 0;
    while (first < n && own_pc(raw[first]))
        first++;
    if (first == n)
        first = 0;
    uint32_t depth = (uint32_t)(n - first) < MAX_DEPTH ? (uint32_t)(n - first) : MAX_DEPTH;
    memcpy(pcs, raw + first, depth * sizeof *pcs);
    return depth;
}

void gm_profile_load_unwinder(void) {
    if (gm_options.profile_rate)
        gm_unwind_load();
}

/* prof_lock held: the stack's index, made on first sight; -1 when full. */
static int64_t stack_index_locked(const uintptr_t *pcs, uint32_t depth) {
    uint64_t h = depth;
    for (uint32_t i = 0; i < depth; i++)
        h = (h ^ pcs[i]) * 0x100000001b3ull;
    uint32_t *bucket = &stack_buckets[(h * 0x9e3779b97f4a7c15ull) >> 52];
    for (uint32_t i = *bucket; i; i = stacks[i - 1].next) {
        const struct stack *s = &stacks[i - 1];
        if (s->hash == h && s->depth == depth && !memcmp(s->pcs, pcs, depth * sizeof *pcs))
            return i - 1;
    }
    if (nstacks == MAX_STACKS)
        return -1;
    struct stack *s = &stacks[nstacks];
    s->hash = h;
    s->depth = depth;
    s->next = *bucket;
    memcpy(s->pcs, pcs, depth * sizeof *pcs);
    *bucket = ++nstacks;
    return nstacks - 1;
}

/* ---- the tables ------------------------------------------------------------- */

static size_t live_slot(uintptr_t addr, uint32_t bits) {
    return (size_t)((addr * 0x9e3779b97f4a7c15ull) >> (64 - bits));
}

/* Takes prof_lock; maps the tables on first use; false if they cannot be.
 * Each is mapped untouched: what a run never uses costs no memory. */
static bool lock_tables(void) {
    gm_lock(&prof_lock);
    if (!stacks)
        stacks = gm_os_map(MAX_STACKS * sizeof *stacks);
    if (!stack_buckets)
        stack_buckets = gm_os_map(STACK_BUCKETS * sizeof *stack_buckets);
    if (!live && (live = gm_os_map(sizeof *live << LIVE_MIN_BITS)) != NULL)
        live_bits = LIVE_MIN_BITS;
    if (stacks && stack_buckets && live)
        return true;
    gm_unlock(&prof_lock);
    return false;
}

/* prof_lock held: the slot holding addr, or of the first empty slot or
 * tombstone on its probe sequence (for an insert) when it is not there. */
static struct live *live_find_locked(uintptr_t addr) {
    size_t mask = ((size_t)1 << live_bits) - 1, i = live_slot(addr, live_bits);
    struct live *reuse = NULL;
    for (; live[i].addr; i = (i + 1) & mask) {
        if (live[i].addr == addr)
            return &live[i];
        if (live[i].addr == TOMBSTONE && !reuse)
            reuse = &live[i];
    }
    return reuse ? reuse : &live[i];
}

/* prof_lock held: room for one more entry, the table kept at most half
 * full: rebuilt without tombstones, at four times the entries in use (so
 * it grows with the samples a program holds, and shrinks back after a
 * peak); false when that would pass LIVE_MAX_BITS or cannot be mapped. */
static bool live_room_locked(void) {
    if (nused + 1 <= (1u << live_bits) / 2)
        return true;
    uint32_t bits = LIVE_MIN_BITS;
    while (bits < LIVE_MAX_BITS && (1u << bits) < 4 * (nlive + 1))
        bits++;
    struct live *old = live, *fresh;
    uint32_t old_bits = live_bits;
    if (nlive + 1 > (1u << bits) / 2 || !(fresh = gm_os_map(sizeof *live << bits)))
        return false;
    live = fresh;
    live_bits = bits;
    for (size_t i = 0; i < (size_t)1 << old_bits; i++)
        if (old[i].addr > TOMBSTONE)
            *live_find_locked(old[i].addr) = old[i];
    nused = nlive;
    gm_os_unmap(old, sizeof *live << old_bits);
    return true;
}

/* The page-heap record of the block at p: its free then calls
 * gm_profile_forget (raw.c); frees of other blocks look nothing up. */
static void mark_sampled(void *p) {
    gm_huge_t *d = gm_pagemap_huge((uintptr_t)p);
    if (d) {
        d->sampled = true;
        return;
    }
    gm_span_t *s = gm_pagemap_span_of((uintptr_t)p);
    if (s)
        s->sampled = 1;
}

static void record(void *p, size_t size) {
    uintptr_t pcs[MAX_DEPTH];
    uint32_t depth = capture(pcs);
    if (!p || !lock_tables())
        return;
    int64_t s = stack_index_locked(pcs, depth);
    if (s >= 0 && live_room_locked()) {
        struct live *l = live_find_locked((uintptr_t)p);
        if (l->addr == (uintptr_t)p) {   /* a block realloc moved onto a sample's old address */
            stacks[l->stack].frees++;
            stacks[l->stack].free_bytes += l->size;
        } else {
            nused += l->addr == 0;
            nlive++;
        }
        l->addr = (uintptr_t)p;
        l->size = size;
        l->stack = (uint32_t)s;
        stacks[s].allocs++;
        stacks[s].alloc_bytes += size;
        mark_sampled(p);
    }
    gm_unlock(&prof_lock);
}

/* ---- the hooks (see the header comment) ------------------------------------------ */

bool gm_profile_due(size_t size) { return charge(size); }

uint32_t gm_profile_trim(uint8_t cls, uint32_t want) {
    uint64_t room = 1 + (tls_left > 0 ? (uint64_t)tls_left / gm_class_size[cls] : 0);
    return room < want ? (uint32_t)room : want;
}

void gm_profile_refilled(uint8_t cls, uint32_t got) {
    tls_left -= (int64_t)((uint64_t)(got - 1) * gm_class_size[cls]);
}

void *gm_profile_alloc_small(size_t size) {
    size_t bytes = (size + GM_PAGE_SIZE - 1) & ~(size_t)(GM_PAGE_SIZE - 1);
    gm_span_t *s = gm_mheap_alloc_large(bytes ? bytes : GM_PAGE_SIZE, GM_PAGE_SIZE);
    if (!s)
        return NULL;
    gm_mheap_count_trip(false, true);
    record((void *)s->base, gm_class_size[gm_size_to_class[(size + 15) >> 4]]);   /* as charged */
    return (void *)s->base;
}

void gm_profile_note_large(void *p, size_t size) {
    if (p && charge(size))
        record(p, size);
}

void gm_profile_forget(void *p) {
    if (!lock_tables())
        return;
    struct live *l = live_find_locked((uintptr_t)p);
    if (l->addr == (uintptr_t)p) {
        stacks[l->stack].frees++;
        stacks[l->stack].free_bytes += l->size;
        l->addr = TOMBSTONE;
        nlive--;
    }
    gm_unlock(&prof_lock);
}

/* ---- writing ---------------------------------------------------------------------- */

/* Scales sampled counts up to estimates, as Go's scaleHeapSample does. */
static uint64_t scaled(uint64_t v, double scale) { return (uint64_t)((double)v * scale + 0.5); }

static int next_sample(void *ctx, struct gm_prof_sample *out) {
    uint32_t *at = ctx;
    while (*at < nstacks && !stacks[*at].allocs)
        (*at)++;
    if (*at >= nstacks)
        return 0;
    const struct stack *s = &stacks[(*at)++];
    double avg = (double)s->alloc_bytes / (double)s->allocs;
    double p = 1 - exp_neg(avg / (double)gm_options.profile_rate);
    double scale = p > 0 ? 1 / p : 1;
    out->alloc_objects = scaled(s->allocs, scale);
    out->alloc_bytes = scaled(s->alloc_bytes, scale);
    out->inuse_objects = scaled(s->allocs - s->frees, scale);
    out->inuse_bytes = scaled(s->alloc_bytes - s->free_bytes, scale);
    out->depth = s->depth;
    memcpy(out->pcs, s->pcs, s->depth * sizeof s->pcs[0]);
    return 1;
}

/* gomalloc's entry points and whatever they call: pprof drops them. */
#define DROP_FRAMES                                                                   \
    "(__libc_)?(malloc|calloc|realloc|reallocarray|aligned_alloc|posix_memalign|"     \
    "memalign|valloc|pvalloc)|gm_.*|operator new.*|_Zn[wa].*"

int gm_profile_write_fd(int fd) {
    uint32_t at = 0;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    if (!lock_tables())
        return -1;
    /* The writer maps its own scratch and reads /proc/self/maps; it takes
     * no lock, so holding prof_lock keeps the tables still meanwhile. */
    int rc = gm_prof_write_ex(fd, gm_options.profile_rate, (int64_t)now.tv_sec * 1000000000 + now.tv_nsec,
                              DROP_FRAMES, next_sample, &at);
    gm_unlock(&prof_lock);
    return rc;
}

gm_lock_t *gm_profile_lockp(void) { return &prof_lock; }
