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
 * span, or as many pages as the size needs: first one the thread freed,
 * from its page cache, else a page off the heap's stack of freed pages), so
 * its free takes the slow path of free, where gm_profile_forget notices it; about 8 KiB per sample,
 * 1.6% of the memory at the default rate.  Large blocks are charged and
 * sampled where they come from the page heap (alloc_large), not when a
 * thread's page cache hands one out again, as a small object taken again
 * from a thread's own list is not; their frees are always slow.  A large block that realloc moves
 * without a free (grown into the pages before it, a huge block remapped)
 * keeps its sample at the old address until then.
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
 * Records, in mmap'd tables: one per distinct stack (sampled allocations and
 * frees, counts and bytes) and one per sampled block still in use (address,
 * size, stack), found by address without a lock on free; changed under
 * prof_lock, which nothing else is taken under.  A fork child resets it
 * (the holder may not have come along) before its first use.
 *
 * Written out by profile_pb.c: scaled up as pprof expects (Go's
 * scaleHeapSample: counts times 1 / (1 - e^(-avg/rate))).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "gomalloc.h"
#include "internal.h"
#include "profile_pb.h"
#include "report_io.h"

#define MAX_DEPTH 32
#define MAX_STACKS 8192
#define LIVE_BITS 20   /* 2^20 slots, 24 MiB touched as used: up to 2^19 sampled blocks live */
#define TOMBSTONE ((uintptr_t)1)

struct stack {
    uint64_t hash;
    uint32_t depth;
    uintptr_t pcs[MAX_DEPTH];
    uint64_t allocs, alloc_bytes, frees, free_bytes;
};

struct live {
    uintptr_t addr;                   /* 0 empty, TOMBSTONE removed; atomic */
    uint64_t size;
    uint32_t stack;
};

static gm_lock_t prof_lock = GM_LOCK_INIT;
static struct stack *stacks;          /* prof_lock */
static uint32_t nstacks;              /* prof_lock */
static struct live *live;             /* set once; entries: addr atomic, rest prof_lock */
static uint32_t nlive;                /* prof_lock: slots in use, tombstones included */
static pid_t prof_pid;                /* the process prof_lock belongs to */

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
    for (uint32_t i = 0; i < nstacks; i++)   /* samples are rare; stacks few */
        if (stacks[i].hash == h && stacks[i].depth == depth &&
            !memcmp(stacks[i].pcs, pcs, depth * sizeof *pcs))
            return i;
    if (nstacks == MAX_STACKS)
        return -1;
    struct stack *s = &stacks[nstacks];
    s->hash = h;
    s->depth = depth;
    memcpy(s->pcs, pcs, depth * sizeof *pcs);
    return nstacks++;
}

/* ---- the tables ------------------------------------------------------------- */

static size_t live_slot(uintptr_t addr) {
    return (size_t)((addr * 0x9e3779b97f4a7c15ull) >> (64 - LIVE_BITS));
}

/* Takes prof_lock; maps the tables on first use; false if they cannot be. */
static bool lock_tables(void) {
    pid_t self = getpid();
    if (__atomic_load_n(&prof_pid, __ATOMIC_RELAXED) != self) {
        gm_lock_reset(&prof_lock);   /* a fork child: the holder did not come along */
        __atomic_store_n(&prof_pid, self, __ATOMIC_RELAXED);
    }
    gm_lock(&prof_lock);
    if (!stacks) {
        stacks = gm_os_map(MAX_STACKS * sizeof *stacks);
        struct live *l = gm_os_map(sizeof *live << LIVE_BITS);
        __atomic_store_n(&live, l, __ATOMIC_RELEASE);
    }
    if (stacks && live)
        return true;
    gm_unlock(&prof_lock);
    return false;
}

/* prof_lock held: the table, full of removed entries, rebuilt with the live
 * ones only.  A free racing with it may miss its block's entry (the block
 * then stays in the in-use view): rare, and only in a long-lived program
 * that took half a million samples. */
static void compact_live_locked(void) {
    size_t bytes = sizeof *live << LIVE_BITS, mask = ((size_t)1 << LIVE_BITS) - 1;
    struct live *old = gm_os_map(bytes);
    if (!old)
        return;
    memcpy(old, live, bytes);
    for (size_t i = 0; i <= mask; i++)
        __atomic_store_n(&live[i].addr, 0, __ATOMIC_RELAXED);
    nlive = 0;
    for (size_t i = 0; i <= mask; i++) {
        if (old[i].addr <= TOMBSTONE)
            continue;
        size_t j = live_slot(old[i].addr);
        while (live[j].addr)
            j = (j + 1) & mask;
        live[j].size = old[i].size;
        live[j].stack = old[i].stack;
        __atomic_store_n(&live[j].addr, old[i].addr, __ATOMIC_RELEASE);
        nlive++;
    }
    gm_os_unmap(old, bytes);
}

static void record(void *p, size_t size) {
    uintptr_t pcs[MAX_DEPTH];
    uint32_t depth = capture(pcs);
    if (!p || !lock_tables())
        return;
    int64_t s = stack_index_locked(pcs, depth);
    if (nlive >= (1u << LIVE_BITS) / 2)
        compact_live_locked();
    if (s >= 0 && nlive < (1u << LIVE_BITS) / 2) {
        size_t i = live_slot((uintptr_t)p), mask = ((size_t)1 << LIVE_BITS) - 1;
        while (live[i].addr > TOMBSTONE)
            i = (i + 1) & mask;
        nlive += live[i].addr == 0;
        live[i].size = size;
        live[i].stack = (uint32_t)s;
        __atomic_store_n(&live[i].addr, (uintptr_t)p, __ATOMIC_RELEASE);
        stacks[s].allocs++;
        stacks[s].alloc_bytes += size;
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

void *gm_profile_alloc_small(void *page, size_t size) {
    if (!page) {
        size_t bytes = (size + GM_PAGE_SIZE - 1) & ~(size_t)(GM_PAGE_SIZE - 1);
        gm_span_t *s = gm_mheap_alloc_large(bytes ? bytes : GM_PAGE_SIZE, GM_PAGE_SIZE);
        if (!s)
            return NULL;
        gm_mheap_count_trip(false, true);
        page = (void *)s->base;
    }
    record(page, gm_class_size[gm_size_to_class[(size + 15) >> 4]]);   /* as charged */
    return page;
}

void gm_profile_note_large(void *p, size_t size) {
    if (p && charge(size))
        record(p, size);
}

void gm_profile_forget(void *p) {
    struct live *l = __atomic_load_n(&live, __ATOMIC_ACQUIRE);
    if (!l)
        return;
    size_t i = live_slot((uintptr_t)p), mask = ((size_t)1 << LIVE_BITS) - 1;
    uintptr_t a;
    while ((a = __atomic_load_n(&l[i].addr, __ATOMIC_ACQUIRE)) != 0 && a != (uintptr_t)p)
        i = (i + 1) & mask;
    if (!a || !lock_tables())
        return;
    if (l[i].addr == (uintptr_t)p) {   /* still there under the lock */
        stacks[l[i].stack].frees++;
        stacks[l[i].stack].free_bytes += l[i].size;
        __atomic_store_n(&l[i].addr, TOMBSTONE, __ATOMIC_RELEASE);
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


/* The process the tables' lock belongs to, noted before any thread. */
__attribute__((constructor)) static void note_pid(void) { prof_pid = getpid(); }
