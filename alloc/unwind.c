/*
 * unwind.c — the calling thread's stack as return addresses, for the heap
 * profile's samples, without malloc and without frame pointers.
 *
 * x86-64: a small DWARF call-frame unwinder of its own.  Each frame's rule
 * (where the caller's frame starts, the CFA, and where the return address
 * and rbp were saved) comes from the .eh_frame of the object holding the pc,
 * found with _dl_find_object (lock-free, no malloc) and its .eh_frame_hdr
 * search table, then kept in a small cache keyed by pc: a program samples
 * from few call sites, so after the first samples each frame costs a cache
 * probe and two loads, where libgcc's unwinder (glibc's backtrace) redoes
 * the table search and the whole CFI program for every frame of every sample
 * — about 1,800 instructions a frame, and half the frames are gomalloc's own.
 * Only what a frame needs is tracked: the CFA as rsp or rbp plus an offset,
 * the return address and rbp as saved at an offset from it.  Anything else
 * (a CFA expression, as in a signal frame; a return address kept in a
 * register; an object without .eh_frame_hdr) ends the stack there, as does
 * an undefined return address (_start, clone: the outermost frames).  A walk
 * only climbs: each frame's CFA must lie above the last, and the saved words
 * it reads lie between the two, so a wrong rule cannot send it into memory
 * that is not the thread's stack.  Nothing is loaded at start: no libgcc_s
 * (about 500 KiB of resident memory) and no dlopen.
 *
 * The cache belongs to whoever holds cache_lock, taken with a trylock only: a
 * walk that finds it busy (another thread's sample, or a fork child whose
 * parent forked mid-walk) decodes every frame instead.  So no thread ever
 * waits here, and no lock needs resetting after fork.  A rule stays true
 * while its object stays loaded: the cache is emptied when the loader's
 * count of unloaded objects (dl_iterate_phdr's dlpi_subs) has moved, read
 * before the lock, since the loader may hold its own lock while it calls
 * malloc.  The frames on the stack being walked cannot be unloaded meanwhile.
 *
 * Elsewhere: glibc's backtrace(3), whose first call loads libgcc_s (dlopen,
 * malloc), so gm_unwind_load makes it at load time; a walk before that
 * follows the frame-pointer chain, each frame read with process_vm_readv so
 * that a frame without a frame pointer ends the walk rather than faulting.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <stdint.h>
#include <string.h>

#include "internal.h"

#if defined(__x86_64__) && defined(DLFO_EH_SEGMENT_TYPE)

/* ---- reading .eh_frame ---------------------------------------------------- */

enum {
    PE_ABSPTR = 0x00, PE_ULEB128 = 0x01, PE_UDATA2 = 0x02, PE_UDATA4 = 0x03, PE_UDATA8 = 0x04,
    PE_SLEB128 = 0x09, PE_SDATA2 = 0x0a, PE_SDATA4 = 0x0b, PE_SDATA8 = 0x0c,
    PE_PCREL = 0x10, PE_DATAREL = 0x30, PE_INDIRECT = 0x80, PE_OMIT = 0xff,
};
enum { REG_RBP = 6, REG_RSP = 7, REG_RA = 16 };

static uint64_t uleb(const uint8_t **p) {
    uint64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        b = *(*p)++;
        if (shift < 64)
            v |= (uint64_t)(b & 0x7f) << shift;
        shift += 7;
    } while (b & 0x80);
    return v;
}

static int64_t sleb(const uint8_t **p) {
    int64_t v = 0;
    unsigned shift = 0;
    uint8_t b;
    do {
        b = *(*p)++;
        if (shift < 64)
            v |= (int64_t)((uint64_t)(b & 0x7f) << shift);
        shift += 7;
    } while (b & 0x80);
    if (shift < 64 && (b & 0x40))
        v |= -((int64_t)1 << shift);
    return v;
}

/* A pointer in encoding enc at *p (advanced past it); false for encodings
 * .eh_frame does not use for the values read here.  The words may be
 * unaligned: memcpy. */
static bool read_encoded(const uint8_t **p, uint8_t enc, uintptr_t datarel, uintptr_t *out) {
    const uint8_t *at = *p;
    uintptr_t v;
    switch (enc & 0x0f) {
    case PE_ABSPTR: case PE_UDATA8: case PE_SDATA8: { uint64_t x; memcpy(&x, at, 8); v = x; *p += 8; break; }
    case PE_UDATA4: { uint32_t x; memcpy(&x, at, 4); v = x; *p += 4; break; }
    case PE_SDATA4: { int32_t x; memcpy(&x, at, 4); v = (uintptr_t)(intptr_t)x; *p += 4; break; }
    case PE_UDATA2: { uint16_t x; memcpy(&x, at, 2); v = x; *p += 2; break; }
    case PE_SDATA2: { int16_t x; memcpy(&x, at, 2); v = (uintptr_t)(intptr_t)x; *p += 2; break; }
    case PE_ULEB128: v = (uintptr_t)uleb(p); break;
    case PE_SLEB128: v = (uintptr_t)sleb(p); break;
    default: return false;
    }
    if (v) {
        switch (enc & 0x70) {
        case 0: break;
        case PE_PCREL: v += (uintptr_t)at; break;
        case PE_DATAREL: v += datarel; break;
        default: return false;
        }
    }
    if (enc & PE_INDIRECT)
        return false;   /* not used for code addresses */
    *out = v;
    return true;
}

/* ---- a frame's rule ---------------------------------------------------------- */

/* Where the caller's registers are, at one pc.  Offsets are from the CFA. */
enum { SAVED_SAME = 0, SAVED_AT = 1, SAVED_UNKNOWN = 2 };
struct rule {
    int32_t cfa_off;
    int16_t ra_off, rbp_off;
    uint8_t cfa_reg;     /* REG_RSP or REG_RBP */
    uint8_t ra_how;      /* SAVED_AT, or SAVED_UNKNOWN: the stack ends here */
    uint8_t rbp_how;
};

/* The rows' state; remember/restore_state keep up to STATE_STACK copies. */
#define STATE_STACK 8
struct cfi_state {
    int64_t cfa_off, ra_off, rbp_off;
    uint8_t cfa_reg, ra_how, rbp_how;
    bool cfa_known;
};

struct cie {
    const uint8_t *insns, *end;
    uint64_t code_align;
    int64_t data_align;
    uint64_t ra_reg;
    uint8_t fde_enc;
    bool has_aug_data;
};

static bool parse_cie(const uint8_t *p, struct cie *c) {
    uint32_t len;
    memcpy(&len, p, 4);
    if (len == 0 || len == 0xffffffffu)
        return false;
    c->end = p + 4 + len;
    p += 8;                              /* length, CIE id */
    uint8_t version = *p++;
    const char *aug = (const char *)p;
    p += strlen(aug) + 1;
    if (aug[0] && aug[0] != 'z')
        return false;                    /* "eh" and other old forms */
    c->code_align = uleb(&p);
    c->data_align = sleb(&p);
    c->ra_reg = version == 1 ? *p++ : uleb(&p);
    c->fde_enc = PE_ABSPTR;
    c->has_aug_data = aug[0] == 'z';
    if (c->has_aug_data) {
        uint64_t n = uleb(&p);
        const uint8_t *after = p + n;
        for (const char *a = aug + 1; *a; a++) {
            if (*a == 'R') {
                c->fde_enc = *p++;
            } else if (*a == 'P') {
                uint8_t enc = *p++;
                uintptr_t ignored;
                if (!read_encoded(&p, enc & 0x7f, 0, &ignored))
                    return false;
            } else if (*a == 'L') {
                p++;
            } else if (*a != 'S') {
                break;                   /* unknown: the length lets us skip the rest */
            }
        }
        p = after;
    }
    c->insns = p;
    return true;
}

static void set_saved(struct cfi_state *s, uint64_t reg, uint8_t how, int64_t off) {
    if (reg == REG_RBP) {
        s->rbp_how = how;
        s->rbp_off = off;
    } else if (reg == REG_RA) {
        s->ra_how = how;
        s->ra_off = off;
    } else if (reg == REG_RSP && how != SAVED_SAME) {
        s->cfa_known = false;            /* rsp is always the CFA here */
    }
}

/* Runs CFI instructions [p, end) until the row past target; false on an
 * instruction it does not know (the caller gives up on the frame). */
static bool run_cfi(const uint8_t *p, const uint8_t *end, const struct cie *c, uintptr_t loc,
                    uintptr_t target, struct cfi_state *s, const struct cfi_state *initial) {
    struct cfi_state stack[STATE_STACK];
    unsigned depth = 0;
    while (p < end) {
        uint8_t op = *p++, low = op & 0x3f;
        uint64_t reg, a;
        uintptr_t next;
        switch (op & 0xc0) {
        case 0x40: next = loc + low * c->code_align; goto advance;          /* advance_loc */
        case 0x80: set_saved(s, low, SAVED_AT, (int64_t)uleb(&p) * c->data_align); continue;
        case 0xc0:                                                           /* restore */
            if (!initial)
                return false;
            if (low == REG_RBP) { s->rbp_how = initial->rbp_how; s->rbp_off = initial->rbp_off; }
            if (low == REG_RA) { s->ra_how = initial->ra_how; s->ra_off = initial->ra_off; }
            continue;
        default: break;
        }
        switch (op) {
        case 0x00: continue;                                                        /* nop */
        case 0x01: if (!read_encoded(&p, c->fde_enc, 0, &next)) return false; break; /* set_loc */
        case 0x02: next = loc + *p++ * c->code_align; break;
        case 0x03: { uint16_t d; memcpy(&d, p, 2); p += 2; next = loc + d * c->code_align; break; }
        case 0x04: { uint32_t d; memcpy(&d, p, 4); p += 4; next = loc + d * c->code_align; break; }
        case 0x05: reg = uleb(&p); set_saved(s, reg, SAVED_AT, (int64_t)uleb(&p) * c->data_align); continue;
        case 0x06:                                                          /* restore_extended */
            reg = uleb(&p);
            if (!initial)
                return false;
            if (reg == REG_RBP) { s->rbp_how = initial->rbp_how; s->rbp_off = initial->rbp_off; }
            if (reg == REG_RA) { s->ra_how = initial->ra_how; s->ra_off = initial->ra_off; }
            continue;
        case 0x07: set_saved(s, uleb(&p), SAVED_UNKNOWN, 0); continue;      /* undefined */
        case 0x08: set_saved(s, uleb(&p), SAVED_SAME, 0); continue;         /* same_value */
        case 0x09: reg = uleb(&p); uleb(&p); set_saved(s, reg, SAVED_UNKNOWN, 0); continue;
        case 0x0a:                                                          /* remember_state */
            if (depth == STATE_STACK)
                return false;
            stack[depth++] = *s;
            continue;
        case 0x0b:                                                          /* restore_state */
            if (!depth)
                return false;
            *s = stack[--depth];
            continue;
        case 0x0c: s->cfa_reg = (uint8_t)uleb(&p); s->cfa_off = (int64_t)uleb(&p); s->cfa_known = true; continue;
        case 0x0d: s->cfa_reg = (uint8_t)uleb(&p); s->cfa_known = true; continue;
        case 0x0e: s->cfa_off = (int64_t)uleb(&p); continue;
        case 0x0f: a = uleb(&p); p += a; s->cfa_known = false; continue;    /* def_cfa_expression */
        case 0x10: case 0x16:                                               /* (val_)expression */
            reg = uleb(&p);
            a = uleb(&p);
            p += a;
            set_saved(s, reg, SAVED_UNKNOWN, 0);
            continue;
        case 0x11: reg = uleb(&p); set_saved(s, reg, SAVED_AT, sleb(&p) * c->data_align); continue;
        case 0x12:
            s->cfa_reg = (uint8_t)uleb(&p);
            s->cfa_off = sleb(&p) * c->data_align;
            s->cfa_known = true;
            continue;
        case 0x13: s->cfa_off = sleb(&p) * c->data_align; continue;
        case 0x14: case 0x15: reg = uleb(&p); uleb(&p); set_saved(s, reg, SAVED_UNKNOWN, 0); continue;
        case 0x2e: uleb(&p); continue;                                      /* GNU_args_size */
        case 0x2f: reg = uleb(&p); set_saved(s, reg, SAVED_AT, -(int64_t)uleb(&p) * c->data_align); continue;
        default: return false;
        }
    advance:
        if (next > target)
            return true;                 /* the row holding target is complete */
        loc = next;
    }
    return true;
}

/* The rule at pc, decoded from the object's tables; false when there is none
 * this unwinder can follow. */
static bool decode_rule(uintptr_t pc, struct rule *out) {
    struct dl_find_object fo;
    if (_dl_find_object((void *)pc, &fo) != 0 || !fo.dlfo_eh_frame)
        return false;
    const uint8_t *hdr = fo.dlfo_eh_frame, *p = hdr + 4;
    uintptr_t ignored, count;
    /* version 1, then the table's encodings: only the sorted table of
     * (start, FDE) pairs as 32-bit offsets from hdr is searched. */
    if (hdr[0] != 1 || hdr[3] != (PE_DATAREL | PE_SDATA4) ||
        !read_encoded(&p, hdr[1], (uintptr_t)hdr, &ignored) ||
        !read_encoded(&p, hdr[2], (uintptr_t)hdr, &count) || !count)
        return false;
    const int32_t *table = (const int32_t *)(const void *)p;
    intptr_t rel = (intptr_t)(pc - (uintptr_t)hdr);
    size_t lo = 0, hi = count;
    while (hi - lo > 1) {                /* the last entry starting at or below pc */
        size_t mid = lo + (hi - lo) / 2;
        if ((intptr_t)table[2 * mid] <= rel)
            lo = mid;
        else
            hi = mid;
    }
    if ((intptr_t)table[2 * lo] > rel)
        return false;
    const uint8_t *fde = hdr + table[2 * lo + 1];
    uint32_t len;
    int32_t cie_off;
    memcpy(&len, fde, 4);
    memcpy(&cie_off, fde + 4, 4);
    if (len == 0 || len == 0xffffffffu)
        return false;
    struct cie c;
    if (!parse_cie(fde + 4 - cie_off, &c))
        return false;
    p = fde + 8;
    uintptr_t start, range;
    if (!read_encoded(&p, c.fde_enc, 0, &start) || !read_encoded(&p, c.fde_enc & 0x0f, 0, &range) ||
        pc < start || pc - start >= range)
        return false;
    if (c.has_aug_data) {
        uint64_t n = uleb(&p);
        p += n;
    }
    struct cfi_state s = {.cfa_reg = REG_RSP, .ra_how = SAVED_UNKNOWN, .rbp_how = SAVED_SAME};
    if (c.ra_reg != REG_RA || !run_cfi(c.insns, c.end, &c, start, pc, &s, NULL))
        return false;
    struct cfi_state initial = s;
    if (!run_cfi(p, fde + 4 + len, &c, start, pc, &s, &initial))
        return false;
    if (s.ra_how != SAVED_AT) {
        out->ra_how = SAVED_UNKNOWN;     /* the outermost frame, whatever its CFA */
        return true;
    }
    if (!s.cfa_known || (s.cfa_reg != REG_RSP && s.cfa_reg != REG_RBP) || s.cfa_off > INT32_MAX ||
        s.cfa_off < 0 || s.ra_off < INT16_MIN || s.ra_off >= 0 || s.rbp_off < INT16_MIN || s.rbp_off > 0)
        return false;
    out->cfa_reg = s.cfa_reg;
    out->cfa_off = (int32_t)s.cfa_off;
    out->ra_how = SAVED_AT;
    out->ra_off = (int16_t)s.ra_off;
    out->rbp_how = s.rbp_how;
    out->rbp_off = (int16_t)s.rbp_off;
    return true;
}

/* ---- the rule cache ----------------------------------------------------------- */

#define CACHE_BITS 9   /* 512 rules, 12 KiB of bss touched as used */
struct cached {
    uintptr_t pc;      /* 0: empty */
    struct rule r;
};
static struct cached cache[1 << CACHE_BITS];   /* cache_lock */
static uint64_t cache_subs;                    /* cache_lock: dlpi_subs it was filled under */
static gm_lock_t cache_lock = GM_LOCK_INIT;

static int read_subs(struct dl_phdr_info *info, size_t size, void *out) {
    (void)size;
    *(uint64_t *)out = info->dlpi_subs;
    return 1;                            /* the first object is enough */
}

/* ---- the walk ---------------------------------------------------------------------- */

/* Reads the word at addr, which the walk has checked lies in the stack. */
static uintptr_t stack_word(uintptr_t addr) {
    uintptr_t v;
    memcpy(&v, (const void *)addr, sizeof v);
    return v;
}

__attribute__((noinline)) uint32_t gm_unwind(uintptr_t *pcs, uint32_t max) {
    uint64_t subs = 0;
    dl_iterate_phdr(read_subs, &subs);
    bool cached = gm_trylock(&cache_lock);
    if (cached && subs != cache_subs) {
        memset(cache, 0, sizeof cache);
        cache_subs = subs;
    }
    uintptr_t pc, sp, bp;
    __asm__ volatile("lea 0(%%rip), %0\n\tmov %%rsp, %1\n\tmov %%rbp, %2"
                     : "=r"(pc), "=r"(sp), "=r"(bp));
    bool bp_known = true;
    uint32_t n = 0;
    for (uintptr_t lookup = pc; n < max;) {
        struct rule r;
        struct cached *e = &cache[(lookup * 0x9e3779b97f4a7c15ull) >> (64 - CACHE_BITS)];
        if (cached && e->pc == lookup) {
            r = e->r;
        } else {
            if (!decode_rule(lookup, &r))
                break;
            if (cached) {
                e->pc = lookup;
                e->r = r;
            }
        }
        if (r.cfa_reg == REG_RBP && !bp_known)
            break;
        uintptr_t cfa = (r.cfa_reg == REG_RSP ? sp : bp) + (uintptr_t)(intptr_t)r.cfa_off;
        /* The caller's frame lies above this one, not absurdly far: the
         * saved words read below lie in [sp, cfa). */
        if (r.ra_how != SAVED_AT || cfa <= sp || cfa - sp > ((uintptr_t)256 << 20) ||
            cfa + r.ra_off < sp || (r.rbp_how == SAVED_AT && cfa + r.rbp_off < sp))
            break;
        uintptr_t ra = stack_word(cfa + (uintptr_t)(intptr_t)r.ra_off);
        if (r.rbp_how == SAVED_AT)
            bp = stack_word(cfa + (uintptr_t)(intptr_t)r.rbp_off);
        else if (r.rbp_how == SAVED_UNKNOWN)
            bp_known = false;
        if (!ra)
            break;
        pcs[n++] = ra;
        sp = cfa;
        lookup = ra - 1;                 /* inside the call, which may end its function */
    }
    if (cached)
        gm_unlock(&cache_lock);
    return n;
}

void gm_unwind_load(void) {}

#else /* glibc's backtrace */

#include <execinfo.h>
#include <sys/uio.h>
#include <unistd.h>

static bool unwinder_ready;   /* backtrace's first call made (gm_unwind_load) */

/* Reads two words at fp without faulting: false if they are not readable. */
static bool read_frame(uintptr_t fp, uintptr_t out[2]) {
    struct iovec local = {out, 2 * sizeof(uintptr_t)}, remote = {(void *)fp, 2 * sizeof(uintptr_t)};
    return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)(2 * sizeof(uintptr_t));
}

static __attribute__((noinline)) uint32_t walk_frame_pointers(uintptr_t *pcs, uint32_t max) {
    uintptr_t fp = (uintptr_t)__builtin_frame_address(0), frame[2];
    uint32_t n = 0;
    int saved = errno;
    while (n < max && fp && !(fp & 7) && read_frame(fp, frame)) {
        if (frame[1])
            pcs[n++] = frame[1];
        if (frame[0] <= fp || frame[0] - fp > ((uintptr_t)64 << 20))
            break;   /* the chain must climb the stack */
        fp = frame[0];
    }
    errno = saved;
    return n;
}

__attribute__((noinline)) uint32_t gm_unwind(uintptr_t *pcs, uint32_t max) {
    int n = 0;
    if (__atomic_load_n(&unwinder_ready, __ATOMIC_ACQUIRE))
        n = backtrace((void **)pcs, (int)max);
    return n > 1 ? (uint32_t)n : walk_frame_pointers(pcs, max);
}

/* The first call loads libgcc_s (dlopen, malloc): made at load time, outside
 * any allocation; a walk before it follows frame pointers instead, since a
 * dlopen from inside the dynamic loader's own malloc would break it. */
void gm_unwind_load(void) {
    void *pcs[2];
    backtrace(pcs, 2);
    __atomic_store_n(&unwinder_ready, true, __ATOMIC_RELEASE);
}

#endif
