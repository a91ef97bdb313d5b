/*
 * test_sizeclass.c — properties of the generated size-class table (alloc/sizeclasses.h),
 * checked for every class, every request size and every span offset.
 *
 *     cc -std=c11 -O2 -Wall -Wextra -Werror -I alloc -I include tests/test_sizeclass.c \
 *        -lcmocka -o build/test_sizeclass
 *
 * Run from the repository root, or point GM_MKSIZECLASSES at the generator binary and
 * GM_SIZECLASSES_H at the checked-in header.
 *
 * Rounding waste bound.  A request of r bytes rounds up to the first class c with size >= r; the
 * worst request of class i is size[i-1] + 1, wasting (size[i] - size[i-1] - 1) / size[i].
 *   - Up to 128 bytes classes are 16 bytes apart: at most 15 bytes are wasted (the cost of the
 *     16-byte alignment; Go's 8-byte spacing costs up to 7).
 *   - Above 128 bytes Go's walk spaces sizes at most 12.5% apart, but its merge rule (drop a class
 *     that packs its span like the next one) and grow rule (raise a class to the largest size with
 *     the same objects per span) widen some gaps, e.g. 1536 -> 1792, 3456 -> 4096, 4096 -> 4864,
 *     6912 -> 8192, 8192 -> 9472.  Go's own table has the same gaps and the same worst case,
 *     15.77% at 4864 bytes.  We assert that real bound, 16% (the generated header prints the
 *     exact maximum), rather than the 12.5% Go's comments quote for the walk alone.
 */
#define _POSIX_C_SOURCE 200809L

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#define GM_SIZECLASSES_DEFINE   /* the tables themselves: this test links no core */
#include "sizeclasses.h"

#define SMALL_SPACING_LIMIT 128u
#define ROUND_WASTE_PCT 16u /* see the header comment */

__extension__ typedef unsigned __int128 u128;

static uint32_t span_bytes(unsigned c)
{
	return (uint32_t)gm_class_pages[c] * GM_PAGE_SIZE;
}

static void test_sizeclass_class0_is_large(void **state)
{
	(void)state;
	assert_int_equal(gm_class_size[0], 0);
	assert_int_equal(gm_class_pages[0], 0);
	assert_int_equal(gm_class_objects[0], 0);
	assert_int_equal(gm_class_batch[0], 0);
	assert_int_equal(gm_class_divmagic[0], 0);
	assert_int_equal(GM_PAGE_SIZE, 1u << GM_PAGE_SHIFT);
}

static void test_sizeclass_sizes_are_multiples_of_16(void **state)
{
	(void)state;
	for (unsigned c = 1; c < GM_NUM_CLASSES; c++) {
		if (gm_class_size[c] % 16 != 0)
			fail_msg("class %u: size %u is not a multiple of 16", c, gm_class_size[c]);
	}
	assert_int_equal(gm_class_size[1], 16);
}

static void test_sizeclass_sizes_strictly_increase(void **state)
{
	(void)state;
	for (unsigned c = 1; c < GM_NUM_CLASSES; c++) {
		if (gm_class_size[c] <= gm_class_size[c - 1])
			fail_msg("class %u: size %u after %u", c, gm_class_size[c], gm_class_size[c - 1]);
	}
}

static void test_sizeclass_last_is_max_small_size(void **state)
{
	(void)state;
	assert_int_equal(gm_class_size[GM_NUM_CLASSES - 1], GM_MAX_SMALL_SIZE);
	assert_int_equal(GM_MAX_SMALL_SIZE, 32768);
}

static void test_sizeclass_rounding_waste_is_bounded(void **state)
{
	(void)state;
	for (unsigned c = 1; c < GM_NUM_CLASSES; c++) {
		uint32_t size = gm_class_size[c], prev = gm_class_size[c - 1];
		uint32_t waste = size - prev - 1; /* request prev + 1 rounds up to size */

		if (size <= SMALL_SPACING_LIMIT) {
			if (waste > 15)
				fail_msg("class %u (%u): small class wastes %u bytes", c, size, waste);
		} else if ((uint64_t)waste * 100 > (uint64_t)size * ROUND_WASTE_PCT) {
			fail_msg("class %u (%u): rounding waste %u bytes over %u%%", c, size, waste,
				 ROUND_WASTE_PCT);
		}
	}
}

static void test_sizeclass_tail_waste_is_bounded(void **state)
{
	(void)state;
	for (unsigned c = 1; c < GM_NUM_CLASSES; c++) {
		uint32_t span = span_bytes(c), tail = span % gm_class_size[c];

		if (tail > span / 8)
			fail_msg("class %u (%u): tail %u of a %u-byte span", c, gm_class_size[c], tail, span);
	}
}

static void test_sizeclass_objects_fill_span(void **state)
{
	unsigned max_pages = 0, max_objects = 0;

	(void)state;
	for (unsigned c = 1; c < GM_NUM_CLASSES; c++) {
		assert_true(gm_class_pages[c] >= 1);
		assert_int_equal(gm_class_objects[c], span_bytes(c) / gm_class_size[c]);
		if (gm_class_pages[c] > max_pages)
			max_pages = gm_class_pages[c];
		if (gm_class_objects[c] > max_objects)
			max_objects = gm_class_objects[c];
	}
	assert_int_equal(max_pages, GM_MAX_SPAN_PAGES);
	assert_int_equal(max_objects, GM_MAX_SPAN_OBJECTS);
}

static void test_sizeclass_lookup_round_trips(void **state)
{
	(void)state;
	assert_int_equal(sizeof(gm_size_to_class), (GM_MAX_SMALL_SIZE >> 4) + 1);
	for (uint32_t size = 0; size <= GM_MAX_SMALL_SIZE; size++) {
		unsigned c = gm_size_to_class[(size + 15) >> 4];

		if (c == 0 || c >= GM_NUM_CLASSES)
			fail_msg("size %u: class %u out of range", size, c);
		if (gm_class_size[c] < size || (size > 0 && gm_class_size[c - 1] >= size))
			fail_msg("size %u: class %u (%u) is not the smallest fit", size, c,
				 gm_class_size[c]);
	}
	assert_int_equal(gm_size_to_class[0], 1);
}

static void check_divmagic(unsigned c)
{
	uint64_t size = gm_class_size[c], magic = gm_class_divmagic[c];

	assert_int_equal(magic, UINT64_MAX / size + 1);
	for (uint64_t off = 0; off < span_bytes(c); off++) {
		uint64_t q = (uint64_t)(((u128)magic * off) >> 64);

		if (q != off / size)
			fail_msg("class %u (%u): offset %u gives index %u", c, (unsigned)size,
				 (unsigned)off, (unsigned)q);
		if ((off % size == 0) != (off * magic <= magic - 1))
			fail_msg("class %u (%u): divisibility test wrong at offset %u", c,
				 (unsigned)size, (unsigned)off);
	}
}

static void test_sizeclass_divmagic_is_exact_in_span(void **state)
{
	(void)state;
	for (unsigned c = 1; c < GM_NUM_CLASSES; c++)
		check_divmagic(c);
}

static void test_sizeclass_batch_is_in_range(void **state)
{
	(void)state;
	for (unsigned c = 1; c < GM_NUM_CLASSES; c++) {
		uint32_t batch = gm_class_batch[c], size = gm_class_size[c];

		if (batch < 2 || batch > 128)
			fail_msg("class %u (%u): batch %u outside [2, 128]", c, size, batch);
		if (batch > 2 && batch * size > 65536)
			fail_msg("class %u (%u): batch %u moves over 64 KiB", c, size, batch);
	}
}

/* Reads a whole stream into a malloc'd buffer; returns its length through *len. */
static char *slurp(FILE *f, size_t *len)
{
	size_t cap = 1 << 16, n = 0, got;
	char *buf = malloc(cap);

	assert_non_null(buf);
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
	}
	assert_false(ferror(f));
	*len = n;
	return buf;
}

static const char *env_or(const char *name, const char *fallback)
{
	const char *v = getenv(name);

	return v && *v ? v : fallback;
}

static void report_first_difference(const char *a, size_t alen, const char *b, size_t blen)
{
	size_t i = 0, line = 1;

	while (i < alen && i < blen && a[i] == b[i])
		line += a[i++] == '\n';
	fail_msg("alloc/sizeclasses.h is stale: first difference at line %zu (byte %zu); "
		 "regenerate with: build/mksizeclasses > alloc/sizeclasses.h", line, i);
}

static void test_sizeclass_header_is_current(void **state)
{
	const char *gen = env_or("GM_MKSIZECLASSES", "build/mksizeclasses");
	const char *hdr = env_or("GM_SIZECLASSES_H", "alloc/sizeclasses.h");
	size_t glen, hlen;
	char *gout, *hout;
	FILE *p, *f;

	(void)state;
	p = popen(gen, "r");
	if (!p)
		fail_msg("cannot run %s", gen);
	gout = slurp(p, &glen);
	if (pclose(p) != 0)
		fail_msg("%s failed (is it built? set GM_MKSIZECLASSES)", gen);
	f = fopen(hdr, "r");
	if (!f)
		fail_msg("cannot open %s (set GM_SIZECLASSES_H)", hdr);
	hout = slurp(f, &hlen);
	fclose(f);
	if (glen != hlen || memcmp(gout, hout, glen) != 0)
		report_first_difference(gout, glen, hout, hlen);
	free(gout);
	free(hout);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizeclass_class0_is_large),
		cmocka_unit_test(test_sizeclass_sizes_are_multiples_of_16),
		cmocka_unit_test(test_sizeclass_sizes_strictly_increase),
		cmocka_unit_test(test_sizeclass_last_is_max_small_size),
		cmocka_unit_test(test_sizeclass_rounding_waste_is_bounded),
		cmocka_unit_test(test_sizeclass_tail_waste_is_bounded),
		cmocka_unit_test(test_sizeclass_objects_fill_span),
		cmocka_unit_test(test_sizeclass_lookup_round_trips),
		cmocka_unit_test(test_sizeclass_divmagic_is_exact_in_span),
		cmocka_unit_test(test_sizeclass_batch_is_in_range),
		cmocka_unit_test(test_sizeclass_header_is_current),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
