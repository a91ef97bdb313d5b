/*
 * guard.c — guarded sampling: a rare sample of small blocks gets pages of
 * its own beside PROT_NONE guard pages, so an overflow or a use after free
 * of such a block faults at the bad access and is reported (GWP-ASan's
 * idea, as tcmalloc, Scudo and Chromium run it in production).
 *
 * Sampling (GOMALLOC_GUARD_RATE=N, one in N on average; 0 = off): each thread
 * counts down the allocations it serves through the slow path and the
 * objects its refills put on its lists (guard.h says how the fast paths stay
 * untouched); when the count reaches zero, the next small allocation to
 * reach the slow path is the sample, and a new count is drawn uniformly
 * from [0, 2N - 2] (mean N - 1).  A block a thread frees and allocates
 * again from its own list is not counted twice: the rate is one in N of the
 * blocks that pass through the central lists, not of every malloc call.
 *
 * The region: SLOTS slots of SLOT_DATA bytes (a small block's largest
 * size), each between guard gaps of GAP bytes, reserved PROT_NONE at the
 * first sample, outside the arenas:
 *     [gap][slot 0][gap][slot 1][gap] ... [slot SLOTS-1][gap]
 * Slots and gaps are 8 KiB multiples from an 8 KiB aligned start.  A block
 * is placed against the gap after its slot (GOMALLOC_GUARD_CATCH=overflow,
 * the default: its end as close to the gap as 16-byte alignment allows, and
 * the alignment its size implies, see gm_guard_alloc) or against the gap
 * before it (=underflow: at the slot's start).  Only the OS pages the block
 * spans are made read/write.  A freed block's slot becomes PROT_NONE again
 * (its pages dropped) and waits in a FIFO quarantine: a new sample takes a
 * slot never used if any, else the one freed longest ago, else (every slot
 * out) nothing, and the allocation is served as usual.  So the pool's
 * memory is bounded by SLOTS blocks, and a freed block stays inaccessible
 * for as long as SLOTS - (blocks out) later samples allow.
 *
 * Faults: SIGSEGV and SIGBUS handlers are installed at the first sample,
 * taking the program's handlers as they are then, to chain to.  A fault in
 * the region is reported in one line on stderr (plus one per recorded
 * stack); the handler then puts the program's own disposition back and
 * returns, so the access faults again and the program dies (or its handler
 * runs) as it would have on a segfault.  Any other fault goes to the
 * program's handler, called with its mask, or to the default action.  A
 * handler the program installs after ours replaces ours, as sigaction
 * promises: its faults are its own, and a guarded fault then reaches it as
 * a plain segfault, unreported.  The handler allocates nothing and takes no
 * lock: it reads the slot records racily, which at worst garbles a report.
 *
 * Stacks: the allocation and free stacks are recorded with libgcc's
 * _Unwind_Backtrace, referenced weakly, so the library depends on nothing
 * but libc: it is there when the process has libgcc_s loaded (every C++
 * program, a program linked with -lgcc_s or preloading libgcc_s.so.1 too).
 * It walks the .eh_frame tables, which code built without frame pointers
 * (most code, Debian's included) has: a frame-pointer walk, however well
 * bounded, would stop at the first such frame or report garbage.  With
 * glibc 2.35 and later it finds the tables through _dl_find_object, without
 * a lock or an allocation; a malloc it made would be served unsampled (a
 * per-thread flag).  Without the unwinder, reports say there is no stack.
 *
 * Locking: guard_lock guards the slot records and the quarantine; it is
 * taken with no other gomalloc lock held and no other is taken under it
 * (last in the fork order, malloc.c).  Stacks are taken outside it.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <unwind.h>

#include "guard.h"
#include "hardening.h"

#pragma weak _Unwind_Backtrace
#pragma weak _Unwind_GetIP

#define OS_PAGE ((uintptr_t)4096)
#define SLOTS 256u
#define SLOT_DATA ((uintptr_t)GM_MAX_SMALL_SIZE)   /* 32 KiB */
#define GAP ((uintptr_t)8192)
#define STRIDE (SLOT_DATA + GAP)
#define REGION (GAP + SLOTS * STRIDE)
#define FRAMES 16

enum slot_state { SLOT_UNUSED = 0, SLOT_LIVE, SLOT_FREED };

struct slot {
    uintptr_t block;            /* guard lock: the address handed out */
    size_t size;                /* guard lock: bytes asked for */
    uint8_t state;              /* guard lock */
    uint8_t alloc_frames, free_frames;
    int32_t alloc_tid, free_tid;
    uintptr_t alloc_stack[FRAMES], free_stack[FRAMES];
};

bool gm_guard_on;
uintptr_t gm_guard_lo, gm_guard_size;

static gm_lock_t guard_lock = GM_LOCK_INIT;
static struct slot slots[SLOTS];          /* guard lock */
static uint32_t next_unused;              /* guard lock: slots never used start here */
static uint16_t quarantine[SLOTS];        /* guard lock: freed slots, oldest first */
static uint32_t q_head, q_count;          /* guard lock */
static uint32_t live_count;               /* guard lock */
static uint64_t sampled;                  /* guard lock */
static bool region_tried;                 /* guard lock */
static uintptr_t slots_base;              /* immutable once set: slot 0's data */
static struct sigaction prev_segv, prev_bus;   /* the program's, when ours went in */

static __thread uint64_t tls_rand __attribute__((tls_model("initial-exec")));
static __thread uint32_t tls_left __attribute__((tls_model("initial-exec")));
static __thread bool tls_busy __attribute__((tls_model("initial-exec")));

/* Off in debug mode (every call takes its checked slow path) and in a
 * VALGRIND=1 build, made to run under memcheck, which already sees every
 * overflow and use after free. */
void gm_guard_init(void) {
    bool on = gm_options.guard_rate > 0 && !gm_options.debug && !GM_VALGRIND;
    __atomic_store_n(&gm_guard_on, on, __ATOMIC_RELAXED);
}

gm_lock_t *gm_guard_lockp(void) { return &guard_lock; }

/* ---- the countdown ---------------------------------------------------------- */

static uint64_t next_rand(void) {
    uint64_t x = tls_rand;   /* xorshift64 */
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return tls_rand = x;
}

/* A new count: 0 for a rate of 1 (every allocation), else uniform in
 * [0, 2N - 2].  The first call of a thread seeds its generator from the
 * per-process secret and the thread's own TLS address. */
static uint32_t draw(void) {
    uint32_t rate = gm_options.guard_rate;
    if (!tls_rand)
        tls_rand = (gm_secret ^ (uintptr_t)&tls_rand ^ 0x9e3779b97f4a7c15u) | 1;
    return rate <= 1 ? 0 : (uint32_t)(next_rand() % (2 * (uint64_t)rate - 1));
}

static void arm(void) {
    if (!tls_rand)
        tls_left = draw();
}

bool gm_guard_due_slow(void) {
    if (tls_busy)
        return false;   /* a malloc from inside the unwinder */
    arm();
    if (tls_left == 0) {
        tls_left = draw();
        return true;
    }
    tls_left--;
    return false;
}

uint32_t gm_guard_budget_slow(uint32_t want) {
    arm();
    if (want - 1 > tls_left)
        want = tls_left + 1;
    tls_left -= want - 1;
    return want;
}

/* ---- stacks ----------------------------------------------------------------- */

struct trace {
    uintptr_t *out;
    uint32_t n, skip;
};

static _Unwind_Reason_Code trace_frame(struct _Unwind_Context *ctx, void *arg) {
    struct trace *t = arg;
    if (t->skip > 0) {
        t->skip--;
        return _URC_NO_REASON;
    }
    uintptr_t ip = _Unwind_GetIP(ctx);
    if (!ip || t->n == FRAMES)
        return _URC_END_OF_STACK;
    t->out[t->n++] = ip;
    return _URC_NO_REASON;
}

/* The caller's caller and up; 0 frames without an unwinder. */
static GM_NOINLINE uint8_t take_stack(uintptr_t *out) {
    struct trace t = {out, 0, 2};   /* this function and gm_guard_alloc/free */
    if (_Unwind_Backtrace && _Unwind_GetIP)
        _Unwind_Backtrace(trace_frame, &t);
    return (uint8_t)t.n;
}

static int32_t thread_id(void) { return (int32_t)syscall(SYS_gettid); }

/* ---- the region and the fault handler ---------------------------------------- */

static void on_fault(int sig, siginfo_t *info, void *uctx);

static void install(int sig, struct sigaction *prev) {
    struct sigaction ours;
    memset(&ours, 0, sizeof ours);
    ours.sa_sigaction = on_fault;
    ours.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&ours.sa_mask);
    sigaction(sig, NULL, prev);    /* prev is whole before ours can run */
    sigaction(sig, &ours, prev);
}

/* Reserves the region and installs the handlers, once; false if the
 * region could not be had (sampling is then switched off). */
static bool region_locked(void) {
    if (region_tried)
        return gm_guard_size != 0;
    region_tried = true;
    uintptr_t raw = (uintptr_t)gm_os_reserve_quiet(REGION + GAP);
    if (!raw) {
        __atomic_store_n(&gm_guard_on, false, __ATOMIC_RELAXED);
        return false;
    }
    uintptr_t lo = (raw + GAP - 1) & ~(GAP - 1);   /* 8 KiB aligned; the rest stays reserved */
    slots_base = lo + GAP;
    install(SIGSEGV, &prev_segv);
    install(SIGBUS, &prev_bus);
    __atomic_store_n(&gm_guard_lo, lo, __ATOMIC_RELAXED);
    __atomic_store_n(&gm_guard_size, REGION, __ATOMIC_RELEASE);
    return true;
}

static uintptr_t slot_data(uint32_t i) { return slots_base + (uintptr_t)i * STRIDE; }

/* A slot for a new block: never used first, else the longest in
 * quarantine; -1 when every slot is out. */
static int take_slot_locked(void) {
    if (next_unused < SLOTS)
        return (int)next_unused++;
    if (q_count == 0)
        return -1;
    int i = quarantine[q_head];
    q_head = (q_head + 1) % SLOTS;
    q_count--;
    return i;
}

static void quarantine_locked(uint32_t i) {
    quarantine[(q_head + q_count) % SLOTS] = (uint16_t)i;
    q_count++;
}

/* Where a block of size bytes goes in slot i: against the gap after the
 * slot (its end as close as the alignment allows) or at the slot's start. */
static uintptr_t place(uint32_t i, size_t size) {
    if (gm_options.guard_underflow)
        return slot_data(i);
    uintptr_t align = size & (0 - size);   /* the alignment the size implies */
    align = align < 16 ? 16 : align > GAP ? GAP : align;
    uintptr_t need = size ? size : 1;
    return (slot_data(i) + SLOT_DATA - need) & ~(align - 1);
}

void *gm_guard_alloc(size_t size) {
    uintptr_t stack[FRAMES];
    tls_busy = true;
    uint8_t frames = take_stack(stack);
    uintptr_t p = 0;
    gm_lock(&guard_lock);
    int i = region_locked() ? take_slot_locked() : -1;
    if (i >= 0) {
        struct slot *s = &slots[i];
        p = place((uint32_t)i, size);
        uintptr_t from = p & ~(OS_PAGE - 1);
        uintptr_t to = (p + (size ? size : 1) + OS_PAGE - 1) & ~(OS_PAGE - 1);
        if (gm_os_commit_quiet((void *)from, to - from)) {
            s->block = p;
            s->size = size;
            s->state = SLOT_LIVE;
            s->alloc_frames = frames;
            s->free_frames = 0;
            s->alloc_tid = thread_id();
            memcpy(s->alloc_stack, stack, sizeof stack);
            live_count++;
            sampled++;
        } else {
            quarantine_locked((uint32_t)i);   /* tried again later */
            p = 0;
        }
    }
    gm_unlock(&guard_lock);
    tls_busy = false;
    return (void *)p;
}

/* The slot whose data holds p, or NULL (a gap, or outside). */
static struct slot *slot_of(uintptr_t p) {
    uintptr_t base = slots_base;
    if (p < base || p - base >= SLOTS * STRIDE)
        return NULL;
    uintptr_t i = (p - base) / STRIDE;
    return p - slot_data((uint32_t)i) <= SLOT_DATA ? &slots[i] : NULL;
}

void gm_guard_free(void *ptr, const char *call) {
    uintptr_t p = (uintptr_t)ptr, stack[FRAMES];
    struct slot *s = slot_of(p);
    if (!s || __atomic_load_n(&s->block, __ATOMIC_RELAXED) != p)
        gm_invalid_pointer(call, ptr);
    uint8_t frames = take_stack(stack);
    gm_lock(&guard_lock);
    uint8_t state = s->block == p ? s->state : SLOT_UNUSED;
    if (state != SLOT_LIVE) {
        size_t size = s->size;
        gm_unlock(&guard_lock);
        if (state == SLOT_FREED)
            gm_report_sized(call, "double free of", ptr, size);
        gm_invalid_pointer(call, ptr);
    }
    uint32_t i = (uint32_t)(s - slots);
    gm_os_decommit((void *)slot_data(i), SLOT_DATA);
    s->state = SLOT_FREED;
    s->free_frames = frames;
    s->free_tid = thread_id();
    memcpy(s->free_stack, stack, sizeof stack);
    live_count--;
    quarantine_locked(i);
    gm_unlock(&guard_lock);
}

size_t gm_guard_usable(const void *ptr, const char *call) {
    uintptr_t p = (uintptr_t)ptr;
    struct slot *s = slot_of(p);
    gm_lock(&guard_lock);
    uint8_t state = s && s->block == p ? s->state : SLOT_UNUSED;
    size_t size = s ? s->size : 0;
    gm_unlock(&guard_lock);
    if (state == SLOT_LIVE)
        return size;
    if (state == SLOT_FREED)
        gm_report_sized(call, strcmp(call, "malloc_usable_size()") ? "double free of" : "freed block",
                        ptr, size);
    gm_invalid_pointer(call, ptr);
}

void gm_guard_stats(struct gm_guard_stats *out) {
    gm_lock(&guard_lock);
    out->live = live_count;
    out->quarantined = q_count;
    out->sampled = sampled;
    gm_unlock(&guard_lock);
}

/* ---- reports (in the signal handler: no lock, no allocation) ------------------ */

/* The report lines: the shared line builder (report.c); emit writes one
 * line and starts the next. */
struct line {
    gm_line_t l;
};

static void put(struct line *l, const char *s) { gm_line_put(&l->l, s); }
static void put_dec(struct line *l, uint64_t v) { gm_line_dec(&l->l, v); }
static void put_hex(struct line *l, uintptr_t v) { gm_line_hex(&l->l, v); }

static void emit(struct line *l) {
    gm_line_write(&l->l, 2);
    l->l.n = 0;
}

/* "gomalloc:   allocated by thread T at 0x... 0x..." */
static void report_stack(const char *what, int32_t tid, const uintptr_t *stack, uint8_t n) {
    struct line l = {GM_LINE_INIT};
    put(&l, "gomalloc:   ");
    put(&l, what);
    put(&l, " by thread ");
    put_dec(&l, (uint64_t)tid);
    put(&l, n ? " at" : " (no stack: libgcc_s is not loaded)");
    for (uint8_t k = 0; k < n && k < FRAMES; k++) {
        put(&l, " ");
        put_hex(&l, stack[k]);
    }
    emit(&l);
}

/* How far addr lies from block s, and on which side ("past", "before",
 * "into"); the distance's absolute value. */
static const char *relation(const struct slot *s, uintptr_t addr, uintptr_t *dist) {
    uintptr_t end = s->block + s->size;
    if (addr < s->block) {
        *dist = s->block - addr;
        return "before";
    }
    if (addr >= end) {
        *dist = addr - end;
        return "past";
    }
    *dist = addr - s->block;
    return "into";
}

/* The slot a fault at addr concerns: the slot holding it, or for an address
 * in a gap, the nearer neighbour that holds a block. */
static const struct slot *nearest_slot(uintptr_t addr) {
    if (addr < slots_base)
        return slots[0].state ? &slots[0] : NULL;
    uintptr_t i = (addr - slots_base) / STRIDE;
    const struct slot *here = i < SLOTS ? &slots[i] : NULL;
    if (here && addr - slot_data((uint32_t)i) < SLOT_DATA)
        return here->state ? here : NULL;
    const struct slot *next = i + 1 < SLOTS ? &slots[i + 1] : NULL;
    if (!next || !next->state)
        return here && here->state ? here : NULL;
    if (!here || !here->state)
        return next;
    return addr - (here->block + here->size) <= next->block - addr ? here : next;
}

static void report_fault(uintptr_t addr) {
    struct line l = {GM_LINE_INIT};
    const struct slot *s = nearest_slot(addr);
    if (!s) {
        put(&l, "gomalloc: wild access at ");
        put_hex(&l, addr);
        put(&l, " (a guard page, no block near)");
        emit(&l);
        return;
    }
    uintptr_t dist;
    const char *side = relation(s, addr, &dist);
    bool freed = s->state == SLOT_FREED;
    put(&l, "gomalloc: ");
    put(&l, freed ? "use-after-free" : *side == 'p' ? "heap-buffer-overflow" : "heap-buffer-underflow");
    put(&l, " at ");
    put_hex(&l, addr);
    put(&l, " (");
    put_dec(&l, dist);
    put(&l, " bytes ");
    put(&l, side);
    put(&l, " a ");
    put_dec(&l, s->size);
    put(&l, "-byte block");
    if (freed) {
        put(&l, " freed by thread ");
        put_dec(&l, (uint64_t)s->free_tid);
    }
    put(&l, ")");
    emit(&l);
    report_stack("allocated", s->alloc_tid, s->alloc_stack, s->alloc_frames);
    if (freed)
        report_stack("freed", s->free_tid, s->free_stack, s->free_frames);
}

/* A fault that is not ours, for the program's handler; its mask is applied
 * around the call, SA_RESETHAND honoured.  With no handler the default
 * action follows: a fault recurs on return, a sent signal is raised again. */
static void chain(int sig, siginfo_t *info, void *uctx, struct sigaction *prev) {
    bool has_info = prev->sa_flags & SA_SIGINFO;
    void (*handler)(int) = prev->sa_handler;
    if (has_info ? prev->sa_sigaction != NULL
                 : handler != SIG_DFL && handler != SIG_IGN) {
        sigset_t old;
        pthread_sigmask(SIG_BLOCK, &prev->sa_mask, &old);
        struct sigaction saved = *prev;
        if (prev->sa_flags & SA_RESETHAND) {
            memset(prev, 0, sizeof *prev);
            prev->sa_handler = SIG_DFL;
        }
        if (has_info)
            saved.sa_sigaction(sig, info, uctx);
        else
            saved.sa_handler(sig);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        return;
    }
    if (handler == SIG_IGN && info->si_code <= 0)
        return;   /* sent, and ignored */
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigaction(sig, &dfl, NULL);
    if (info->si_code <= 0)
        raise(sig);   /* delivered when the handler returns */
}

static void on_fault(int sig, siginfo_t *info, void *uctx) {
    struct sigaction *prev = sig == SIGSEGV ? &prev_segv : &prev_bus;
    uintptr_t addr = (uintptr_t)info->si_addr;
    if (info->si_code <= 0 || !gm_guard_owns((void *)addr)) {
        chain(sig, info, uctx, prev);
        return;
    }
    report_fault(addr);
    /* The program's own disposition back; the access faults again on
     * return and meets it, as any segfault of the program would. */
    struct sigaction restore = *prev;
    if (!(restore.sa_flags & SA_SIGINFO) && restore.sa_handler == SIG_IGN)
        restore.sa_handler = SIG_DFL;
    sigaction(sig, &restore, NULL);
}
