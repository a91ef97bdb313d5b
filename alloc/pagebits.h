/*
 * pagebits.h — page bitmaps as pure functions over 64-bit words (Go keeps
 * them in mpallocbits.go): set, clear, count and test a range of bits; find
 * the lowest run of n set bits, or one aligned to a multiple; measure the run
 * of set bits around a range; step to the next set or clear bit.
 *
 * Bit i is bit i % 64 of word i / 64.  The functions hold no state, take no
 * lock and read nothing but their arguments: mheap.c runs them on an arena's
 * bitmaps (free, dirty, released pages) under its lock, and
 * tests/test_pagebits.c on crafted words.  They are GM_BITS_FN so that the
 * arena's constant lengths fold into their loops, as when they were mheap.c's
 * own; a range always lies within the bitmap (the caller's to ensure).
 */
#ifndef GM_PAGEBITS_H
#define GM_PAGEBITS_H

#include <stdbool.h>
#include <stdint.h>

/* Plain static, not inline: the compiler weighs each use as it did when they
 * were mheap.c's own functions (unused ones are no warning). */
#define GM_BITS_FN static __attribute__((unused))

GM_BITS_FN uint32_t gm_min_u32(uint32_t a, uint32_t b) { return a < b ? a : b; }
GM_BITS_FN uint32_t gm_max_u32(uint32_t a, uint32_t b) { return a > b ? a : b; }
GM_BITS_FN uint32_t gm_floor_log2(uint32_t n) { return 31 - (uint32_t)__builtin_clz(n); }

/* Mask of bits [b, b + k) of one word; 0 < k <= 64 - b. */
GM_BITS_FN uint64_t gm_word_mask(uintptr_t b, uintptr_t k) {
    return (k == 64 ? ~(uint64_t)0 : (((uint64_t)1 << k) - 1)) << b;
}

/* Runs body on each word of bits [start, start + n) with the mask of the
 * range's bits in it; a word at a time, not a bit at a time. */
#define GM_FOR_EACH_WORD(start, n, word, mask, body)                    \
    do {                                                                \
        uintptr_t at_ = (start), left_ = (n);                           \
        while (left_ > 0) {                                             \
            uintptr_t b_ = at_ % 64, k_ = 64 - b_ < left_ ? 64 - b_ : left_; \
            uintptr_t word = at_ / 64;                                  \
            uint64_t mask = gm_word_mask(b_, k_);                       \
            body;                                                       \
            at_ += k_;                                                  \
            left_ -= k_;                                                \
        }                                                               \
    } while (0)

/* Most runs (small spans) lie within one word: those skip the loop. */
GM_BITS_FN bool gm_in_one_word(uintptr_t start, uintptr_t n) { return start % 64 + n <= 64; }

GM_BITS_FN void gm_bits_set(uint64_t *bits, uintptr_t start, uintptr_t n) {
    if (gm_in_one_word(start, n))
        bits[start / 64] |= gm_word_mask(start % 64, n);
    else
        GM_FOR_EACH_WORD(start, n, w, m, bits[w] |= m);
}

GM_BITS_FN void gm_bits_clear(uint64_t *bits, uintptr_t start, uintptr_t n) {
    if (gm_in_one_word(start, n))
        bits[start / 64] &= ~gm_word_mask(start % 64, n);
    else
        GM_FOR_EACH_WORD(start, n, w, m, bits[w] &= ~m);
}

/* popcount is a libgcc call on baseline x86-64: skip it for empty words. */
GM_BITS_FN uint32_t gm_popcount_masked(uint64_t x, uint64_t m) {
    return (x & m) ? (uint32_t)__builtin_popcountll(x & m) : 0;
}

/* Set bits in [start, start + n). */
GM_BITS_FN uint32_t gm_bits_count(const uint64_t *bits, uintptr_t start, uintptr_t n) {
    if (gm_in_one_word(start, n))
        return gm_popcount_masked(bits[start / 64], gm_word_mask(start % 64, n));
    uint32_t count = 0;
    GM_FOR_EACH_WORD(start, n, w, m, count += gm_popcount_masked(bits[w], m));
    return count;
}

/* Whether any bit of [start, start + n) is set. */
GM_BITS_FN bool gm_bits_any(const uint64_t *bits, uintptr_t start, uintptr_t n) {
    if (gm_in_one_word(start, n))
        return (bits[start / 64] & gm_word_mask(start % 64, n)) != 0;
    uint64_t any = 0;
    GM_FOR_EACH_WORD(start, n, w, m, any |= bits[w] & m);
    return any != 0;
}

/* Lowest index of a run of n set bits among the nwords words of bits, at or
 * above word from (no bit below it is set), or -1.  On failure *longest is
 * an upper bound of the longest run present. */
GM_BITS_FN long gm_bits_find_run(const uint64_t *bits, uint32_t nwords, uint32_t from,
                                    uint32_t n, uint32_t *longest) {
    uint32_t run = 0, start = 0, best = 0;
    bool partial = false;
    for (uint32_t w = from; w < nwords; w++) {
        uint64_t x = bits[w];
        if (x == ~(uint64_t)0) {
            if (run == 0)
                start = w * 64;
            run += 64;
            if (run >= n)
                return start;
            continue;
        }
        if (x == 0) {
            best = gm_max_u32(best, run);
            run = 0;
            continue;
        }
        partial = true;
        uint32_t low = (uint32_t)__builtin_ctzll(~x);   /* ones at the bottom */
        if (run + low >= n)
            return run ? start : w * 64;
        best = gm_max_u32(best, run + low);
        if (n < 64) {
            uint64_t m = x;   /* bit j set: bits j .. j+have-1 all set */
            for (uint32_t have = 1; have < n && m;) {
                uint32_t shift = gm_min_u32(have, n - have);
                m &= m >> shift;
                have += shift;
            }
            if (m)
                return w * 64 + (uint32_t)__builtin_ctzll(m);
        }
        run = (uint32_t)__builtin_clzll(~x);               /* ones at the top */
        start = w * 64 + 64 - run;
    }
    best = gm_max_u32(best, run);
    *longest = partial ? gm_max_u32(best, 63) : best;
    return -1;
}

/* Lowest run of n set bits among nbits starting at a multiple of align, or
 * -1. */
GM_BITS_FN long gm_bits_find_run_aligned(const uint64_t *bits, uint32_t nbits, uint32_t n,
                                            uint32_t align) {
    for (uint32_t start = 0; start + n <= nbits; start += align)
        if (gm_bits_count(bits, start, n) == n)
            return start;
    return -1;
}

/* The first set (or, !set, clear) bit at or after bit i among nbits; nbits
 * if none. */
GM_BITS_FN uint32_t gm_bits_next(const uint64_t *bits, uint32_t nbits, uint32_t i, bool set) {
    while (i < nbits) {
        uint32_t shift = i % 64;
        uint64_t w = (set ? bits[i / 64] : ~bits[i / 64]) >> shift;
        if (w)
            return i + (uint32_t)__builtin_ctzll(w);
        i += 64 - shift;
    }
    return nbits;
}

/* Length of the run of set bits that contains [first, first + n) (all set)
 * among nbits, its start to *start; or nbits, *start untouched, when it
 * reaches further than scan_words words on a side (then it is not worth
 * measuring). */
GM_BITS_FN uint32_t gm_bits_run_around(const uint64_t *bits, uint32_t nbits, uintptr_t first,
                                          uintptr_t n, int scan_words, uintptr_t *start) {
    uintptr_t lo = first, hi = first + n;
    for (int words = 0; lo > 0; words++) {
        if (words == scan_words)
            return nbits;
        uintptr_t b = (lo - 1) % 64;   /* bits b, b-1, ... of word (lo-1)/64 */
        uint64_t inv = ~(bits[(lo - 1) / 64] << (63 - b));
        uintptr_t ones = inv ? (uintptr_t)__builtin_clzll(inv) : 64;
        ones = ones < b + 1 ? ones : b + 1;
        lo -= ones;
        if (ones < b + 1)
            break;
    }
    for (int words = 0; hi < nbits; words++) {
        if (words == scan_words)
            return nbits;
        uintptr_t b = hi % 64;         /* bits b, b+1, ... of word hi/64 */
        uint64_t inv = ~(bits[hi / 64] >> b);
        uintptr_t ones = inv ? (uintptr_t)__builtin_ctzll(inv) : 64;
        hi += ones;
        if (ones < 64 - b)
            break;
    }
    *start = lo;
    return (uint32_t)(hi - lo);
}

/* Set bits in the run that starts next to bit from and goes down (below
 * from) or up (from and above), among nbits, counting no more than limit. */
GM_BITS_FN uint32_t gm_bits_run_next_to(const uint64_t *bits, uint32_t nbits, uintptr_t from,
                                           bool down, uint32_t limit) {
    uint32_t n = 0;
    for (; n < limit; n++) {
        if (down ? from <= n : from + n >= nbits)
            break;
        uintptr_t bit = down ? from - n - 1 : from + n;
        if (!((bits[bit / 64] >> (bit % 64)) & 1))
            break;
    }
    return n;
}

#endif /* GM_PAGEBITS_H */
