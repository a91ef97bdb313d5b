/*
 * test_pagebits.c — the page bitmap functions (alloc/pagebits.h) on crafted
 * words, with no heap behind them.
 *
 * Each function is checked on hand-made bitmaps whose answer is known (runs
 * across word boundaries, full and empty words, the ends of the map), then
 * against a bit-at-a-time reference on random bitmaps of four densities
 * (fixed seed), over every start and length that fits.
 */
#include "pagebits.h"
#include "testutil.h"

#define WORDS 8
#define NBITS (WORDS * 64)

static bool bit(const uint64_t *bits, uint32_t i) { return (bits[i / 64] >> (i % 64)) & 1; }

static void set_range(uint64_t *bits, uint32_t start, uint32_t n) {
    for (uint32_t i = start; i < start + n; i++)
        bits[i / 64] |= (uint64_t)1 << (i % 64);
}

/* The reference: lowest start >= from * 64 of n set bits, or -1. */
static long ref_find_run(const uint64_t *bits, uint32_t from, uint32_t n) {
    for (uint32_t start = from * 64; start + n <= NBITS; start++) {
        uint32_t k = 0;
        while (k < n && bit(bits, start + k))
            k++;
        if (k == n)
            return start;
    }
    return -1;
}

static uint32_t ref_longest(const uint64_t *bits) {
    uint32_t best = 0, run = 0;
    for (uint32_t i = 0; i < NBITS; i++) {
        run = bit(bits, i) ? run + 1 : 0;
        best = run > best ? run : best;
    }
    return best;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Random words, about density/4 of the bits set, in runs. */
static void random_bits(uint64_t *bits, int density) {
    memset(bits, 0, WORDS * sizeof *bits);
    uint32_t i = 0;
    while (i < NBITS) {
        uint32_t len = (uint32_t)(rng() % 90) + 1;
        if ((int)(rng() % 4) < density)
            set_range(bits, i, len > NBITS - i ? NBITS - i : len);
        i += len;
    }
}

static void test_pagebits_set_clear_count_any(void **state) {
    (void)state;
    uint64_t bits[WORDS] = {0};
    gm_bits_set(bits, 60, 10);   /* across words 0 and 1 */
    assert_true(bits[0] == (uint64_t)0xf << 60 && bits[1] == 0x3f);
    assert_int_equal(gm_bits_count(bits, 0, NBITS), 10);
    assert_int_equal(gm_bits_count(bits, 62, 3), 3);
    assert_true(gm_bits_any(bits, 69, 1));
    assert_false(gm_bits_any(bits, 70, 200));
    gm_bits_set(bits, 64, 192);   /* whole words 1..3 */
    assert_true(bits[2] == ~(uint64_t)0 && bits[3] == ~(uint64_t)0);
    assert_int_equal(gm_bits_count(bits, 0, NBITS), 4 + 192);
    gm_bits_clear(bits, 100, 100);
    assert_int_equal(gm_bits_count(bits, 0, NBITS), 4 + 192 - 100);
    assert_false(gm_bits_any(bits, 100, 100));
    assert_true(gm_bits_any(bits, 99, 2) && gm_bits_any(bits, 199, 2));
    gm_bits_set(bits, NBITS - 1, 1);
    assert_true(bit(bits, NBITS - 1) && gm_bits_count(bits, NBITS - 64, 64) == 1);
}

static void test_pagebits_find_run_crafted(void **state) {
    (void)state;
    uint64_t bits[WORDS] = {0};
    uint32_t longest = 0;
    assert_int_equal(gm_bits_find_run(bits, WORDS, 0, 1, &longest), -1);
    assert_int_equal(longest, 0);
    set_range(bits, 3, 5);       /* inside word 0 */
    set_range(bits, 120, 20);    /* across words 1 and 2 */
    set_range(bits, 192, 200);   /* whole words 3..5 and part of 6 */
    assert_int_equal(gm_bits_find_run(bits, WORDS, 0, 5, &longest), 3);
    assert_int_equal(gm_bits_find_run(bits, WORDS, 0, 6, &longest), 120);
    assert_int_equal(gm_bits_find_run(bits, WORDS, 0, 21, &longest), 192);
    assert_int_equal(gm_bits_find_run(bits, WORDS, 2, 5, &longest), 128);  /* from word 2 */
    assert_int_equal(gm_bits_find_run(bits, WORDS, 0, 200, &longest), 192);
    assert_int_equal(gm_bits_find_run(bits, WORDS, 0, 201, &longest), -1);
    assert_true(longest >= 200);
    set_range(bits, 0, NBITS);
    assert_int_equal(gm_bits_find_run(bits, WORDS, 0, NBITS, &longest), 0);
}

static void test_pagebits_find_run_matches_reference(void **state) {
    (void)state;
    uint64_t bits[WORDS];
    long rounds = gm_test_scaled(200, 8);
    for (long round = 0; round < rounds; round++) {
        random_bits(bits, (int)(round % 4) + 1);
        uint32_t max = ref_longest(bits);
        for (uint32_t n = 1; n <= 130; n++) {
            for (uint32_t from = 0; from < WORDS; from += 3) {
                /* find_run's contract: no bit below word from is set. */
                uint64_t masked[WORDS];
                memcpy(masked, bits, sizeof masked);
                memset(masked, 0, from * sizeof *masked);
                uint32_t longest = 0;
                long got = gm_bits_find_run(masked, WORDS, from, n, &longest);
                assert_int_equal(got, ref_find_run(masked, from, n));
                if (got < 0 && from == 0)
                    assert_true(longest >= max);
            }
        }
    }
}

static void test_pagebits_find_run_aligned(void **state) {
    (void)state;
    uint64_t bits[WORDS] = {0};
    set_range(bits, 5, 40);     /* 5..44: holds 8 at 8, 16, ...; 32 at nothing aligned to 32 */
    set_range(bits, 256, 64);
    assert_int_equal(gm_bits_find_run_aligned(bits, NBITS, 8, 8), 8);
    assert_int_equal(gm_bits_find_run_aligned(bits, NBITS, 32, 32), 256);
    assert_int_equal(gm_bits_find_run_aligned(bits, NBITS, 64, 64), 256);
    assert_int_equal(gm_bits_find_run_aligned(bits, NBITS, 128, 64), -1);
    assert_int_equal(gm_bits_find_run_aligned(bits, NBITS, 65, 1), -1);
}

static void test_pagebits_next(void **state) {
    (void)state;
    uint64_t bits[WORDS] = {0};
    assert_int_equal(gm_bits_next(bits, NBITS, 0, true), NBITS);
    assert_int_equal(gm_bits_next(bits, NBITS, 7, false), 7);
    set_range(bits, 70, 130);   /* 70..199 */
    assert_int_equal(gm_bits_next(bits, NBITS, 0, true), 70);
    assert_int_equal(gm_bits_next(bits, NBITS, 70, true), 70);
    assert_int_equal(gm_bits_next(bits, NBITS, 70, false), 200);
    assert_int_equal(gm_bits_next(bits, NBITS, 200, true), NBITS);
    assert_int_equal(gm_bits_next(bits, 128, 100, false), 128);   /* a shorter map */
    random_bits(bits, 2);
    for (uint32_t i = 0; i < NBITS; i++) {
        for (int set = 0; set < 2; set++) {
            uint32_t want = i;
            while (want < NBITS && bit(bits, want) != set)
                want++;
            assert_int_equal(gm_bits_next(bits, NBITS, i, set), want);
        }
    }
}

static void test_pagebits_run_around(void **state) {
    (void)state;
    uint64_t bits[WORDS] = {0};
    uintptr_t start = 12345;
    set_range(bits, 50, 100);   /* 50..149 */
    assert_int_equal(gm_bits_run_around(bits, NBITS, 60, 5, 8, &start), 100);
    assert_int_equal(start, 50);
    assert_int_equal(gm_bits_run_around(bits, NBITS, 50, 100, 8, &start), 100);
    assert_int_equal(start, 50);
    /* A run reaching further than the scan limit is not measured. */
    memset(bits, 0, sizeof bits);
    set_range(bits, 0, NBITS);
    start = 12345;
    assert_int_equal(gm_bits_run_around(bits, NBITS, 300, 1, 2, &start), NBITS);
    assert_int_equal(start, 12345);
    /* The whole map, within the limit: measured to both ends. */
    assert_int_equal(gm_bits_run_around(bits, NBITS, 300, 1, 8, &start), NBITS);
    assert_int_equal(start, 0);
    random_bits(bits, 3);
    for (uint32_t i = 0; i < NBITS; i++) {
        if (!bit(bits, i))
            continue;
        uint32_t lo = i, hi = i + 1;
        while (lo > 0 && bit(bits, lo - 1))
            lo--;
        while (hi < NBITS && bit(bits, hi))
            hi++;
        assert_int_equal(gm_bits_run_around(bits, NBITS, i, 1, WORDS + 1, &start), hi - lo);
        assert_int_equal(start, lo);
    }
}

static void test_pagebits_run_next_to(void **state) {
    (void)state;
    uint64_t bits[WORDS] = {0};
    set_range(bits, 10, 20);    /* 10..29 */
    assert_int_equal(gm_bits_run_next_to(bits, NBITS, 30, true, 100), 20);
    assert_int_equal(gm_bits_run_next_to(bits, NBITS, 30, true, 5), 5);
    assert_int_equal(gm_bits_run_next_to(bits, NBITS, 10, false, 100), 20);
    assert_int_equal(gm_bits_run_next_to(bits, NBITS, 30, false, 100), 0);
    set_range(bits, NBITS - 3, 3);
    assert_int_equal(gm_bits_run_next_to(bits, NBITS, NBITS - 3, false, 100), 3);
    set_range(bits, 0, 10);
    assert_int_equal(gm_bits_run_next_to(bits, NBITS, 30, true, 100), 30);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pagebits_set_clear_count_any),
        cmocka_unit_test(test_pagebits_find_run_crafted),
        cmocka_unit_test(test_pagebits_find_run_matches_reference),
        cmocka_unit_test(test_pagebits_find_run_aligned),
        cmocka_unit_test(test_pagebits_next),
        cmocka_unit_test(test_pagebits_run_around),
        cmocka_unit_test(test_pagebits_run_next_to),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
