/*
 * mksizeclasses.c — generates alloc/sizeclasses.h, the small-object size classes.
 *
 *     cc -std=c11 -O2 -Wall -Wextra -Werror -o build/mksizeclasses tools/mksizeclasses.c
 *     build/mksizeclasses > alloc/sizeclasses.h
 *
 * The rules are those of Go's runtime/mksizeclasses.go, with one departure: the walk starts at
 * 16 bytes, not 8, and steps by 16 below 128 bytes, so every class size is a multiple of 16 and
 * every small block meets glibc's 16-byte alignment guarantee on x86-64.  From 32 bytes up Go's
 * walk is already 16-aligned, so the resulting table is Go's without its 8- and 24-byte classes.
 *
 *  1. Walk sizes from 16 to 32768.  The step is re-chosen whenever the size is a power of two:
 *     16 below 128; size/8 from 128 to 2048 (16, 32, 64, 128: 12.5% spacing); 256 from 2048 on
 *     (Go's rule: the step stays 256 up to 32 KiB, so spacing falls from 12.5% to under 1%).
 *  2. Give each size the fewest 8 KiB pages whose tail waste (span bytes % size) is at most
 *     span bytes / 8.
 *  3. If a size gets the same pages and objects per span as the class before it, that class is
 *     replaced by this larger size (it would only waste memory rounding to the smaller one).
 *  4. Grow every class to span bytes / objects, rounded down to a multiple of 128, when that is
 *     larger: same objects in the same pages, less tail waste.  Multiples of 128 keep the 16-byte
 *     alignment; for classes below 1 KiB this step never fires.
 *
 * Rounding waste: the walk spaces classes at most 12.5% apart from 128 bytes up (at most 15 bytes
 * below 128), but rules 3 and 4 widen some gaps, exactly as in Go's own table; the emitted comment
 * reports the worst case.
 *
 * Batch size (objects moved at once between a thread cache and a central list) follows tcmalloc's
 * classic rule, 64 KiB worth of objects, clamped to [2, 128]: at least 2 so every trip to a shared
 * list is amortised; tcmalloc stops at 32, but then a small class pays a trip to a shared list
 * for every 32 objects, and where one thread frees what another allocates (a producer and a
 * consumer) that trip, a lock whose line crosses between the cores, is the cost.  The allocator
 * cuts batches to 8 KiB as well (alloc/mcentral.h), which is what bounds a small class's.
 *
 * Division magic: magic = UINT64_MAX / size + 1 = ceil(2^64 / size).  For every offset in a span,
 * offset / size == (magic * offset) >> 64 (128-bit product), and offset is a multiple of size iff
 * the wrapping 64-bit product magic * offset <= magic - 1 (Lemire, Kaser, Kurz, "Faster remainder
 * by direct computation", 2019).  Both are brute-force checked here for every offset of every class;
 * any failure, or any broken table property, makes the generator exit non-zero with no header.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define PAGE_SHIFT 13
#define PAGE_SIZE (1u << PAGE_SHIFT)
#define MAX_SMALL_SIZE 32768u
#define MIN_SIZE 16u      /* smallest class and the alignment every class keeps */
#define GROW_ALIGN 128u   /* rule 4 rounds grown sizes down to this */
#define BATCH_BYTES 65536u
#define BATCH_MIN 2u
#define BATCH_MAX 128u
#define LOOKUP_SHIFT 4    /* gm_size_to_class is indexed by (size + 15) >> 4 */
#define LOOKUP_LEN ((MAX_SMALL_SIZE >> LOOKUP_SHIFT) + 1)
#define MAX_CLASSES 256   /* class numbers must fit a uint8_t */

__extension__ typedef unsigned __int128 u128;

struct sclass {
	uint32_t size;
	uint32_t pages;
	uint32_t objects;
	uint32_t batch;
	uint64_t magic;
};

static struct sclass classes[MAX_CLASSES]; /* classes[0] is the "large" placeholder */
static unsigned nclasses = 1;

static void die(const char *what, uint32_t size)
{
	fprintf(stderr, "mksizeclasses: %s (size %u)\n", what, (unsigned)size);
	exit(1);
}

static int is_pow2(uint32_t x)
{
	return x != 0 && (x & (x - 1)) == 0;
}

/* Rule 1: the step to take after `size`, re-chosen at each power of two. */
static uint32_t walk_step(uint32_t size, uint32_t step)
{
	if (!is_pow2(size))
		return step;
	if (size >= 2048)
		return 256;
	if (size >= 128)
		return size / 8;
	return MIN_SIZE;
}

/* Rule 2: fewest pages whose tail waste is at most 1/8 of the span. */
static uint32_t pages_for(uint32_t size)
{
	uint32_t span = PAGE_SIZE;

	while (span % size > span / 8)
		span += PAGE_SIZE;
	return span / PAGE_SIZE;
}

/* Rules 1-3: the walk, merging a class into the next one when both pack a span the same way. */
static void walk_sizes(void)
{
	uint32_t size, step = MIN_SIZE;

	for (size = MIN_SIZE; size <= MAX_SMALL_SIZE; size += step) {
		uint32_t pages = pages_for(size), span = pages * PAGE_SIZE;
		struct sclass *prev = &classes[nclasses - 1];

		step = walk_step(size, step);
		if (nclasses > 1 && prev->pages == pages && span / prev->size == span / size) {
			prev->size = size;
			continue;
		}
		if (nclasses == MAX_CLASSES)
			die("too many classes", size);
		classes[nclasses].size = size;
		classes[nclasses].pages = pages;
		nclasses++;
	}
}

static uint32_t clamp_u32(uint32_t v, uint32_t lo, uint32_t hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

/* Rule 4, then the derived per-class values. */
static void finish_classes(void)
{
	for (unsigned i = 1; i < nclasses; i++) {
		struct sclass *c = &classes[i];
		uint32_t span = c->pages * PAGE_SIZE;
		uint32_t grown = (span / (span / c->size)) & ~(GROW_ALIGN - 1);

		if (grown > c->size)
			c->size = grown;
		c->objects = span / c->size;
		c->batch = clamp_u32(BATCH_BYTES / c->size, BATCH_MIN, BATCH_MAX);
		c->magic = UINT64_MAX / c->size + 1;
	}
}

/* Brute force: quotient and divisibility from the magic, for every offset in the span. */
static void check_magic(const struct sclass *c)
{
	uint64_t span = (uint64_t)c->pages * PAGE_SIZE;

	for (uint64_t off = 0; off < span; off++) {
		uint64_t q = (uint64_t)(((u128)c->magic * off) >> 64);

		if (q != off / c->size)
			die("division magic gives a wrong quotient", c->size);
		if ((off % c->size == 0) != (off * c->magic <= c->magic - 1))
			die("division magic gives a wrong divisibility test", c->size);
	}
}

/*
 * Object-start test in one multiply and one compare.  With c = magic and
 * e = c * size - 2^64 (0 <= e < size), an offset k * size gives
 * (k * size) * c mod 2^64 = k * e, while an offset that is no multiple of the
 * size gives at least c (Lemire).  So "offset * c < (objects - 1) * e + 1"
 * holds exactly for the starts of the span's objects: it rejects interior
 * addresses and the tail past the last object at once.
 */
static uint64_t start_limit(const struct sclass *c)
{
	uint64_t e = c->magic * c->size;   /* wraps: c * size - 2^64 */

	return (uint64_t)(c->objects - 1) * e + 1;
}

static void check_start_limit(const struct sclass *c)
{
	uint64_t limit = start_limit(c);
	uint32_t span = c->pages * PAGE_SIZE;

	for (uint64_t off = 0; off < span; off++) {
		int start = off % c->size == 0 && off / c->size < c->objects;
		if ((off * c->magic < limit) != start)
			die("object-start limit is not exact", c->size);
	}
}

static void check_class(unsigned i)
{
	const struct sclass *c = &classes[i];
	uint32_t span = c->pages * PAGE_SIZE;

	if (c->size % MIN_SIZE != 0)
		die("class size is not a multiple of 16", c->size);
	if (c->size <= classes[i - 1].size)
		die("class sizes are not increasing", c->size);
	if (span % c->size > span / 8)
		die("tail waste above 1/8 of the span", c->size);
	if (c->pages > UINT8_MAX || c->objects > UINT16_MAX || c->objects == 0)
		die("pages or objects do not fit the table types", c->size);
	check_magic(c);
	check_start_limit(c);
}

static void check_classes(void)
{
	if (classes[nclasses - 1].size != MAX_SMALL_SIZE)
		die("last class is not the small-object limit", classes[nclasses - 1].size);
	for (unsigned i = 1; i < nclasses; i++)
		check_class(i);
}

/* Smallest class whose size is at least max(size, 1). */
static unsigned class_of(uint32_t size)
{
	unsigned i = 1;

	while (classes[i].size < size)
		i++;
	return i;
}

static double pct(double num, double den)
{
	return 100.0 * num / den;
}

/* Go's "max waste": the smallest request of the class, every object of a span, plus the tail. */
static void print_class_row(unsigned i)
{
	const struct sclass *c = &classes[i];
	uint32_t span = c->pages * PAGE_SIZE, tail = span % c->size;
	uint32_t slack = c->size - classes[i - 1].size - 1;

	printf(" * %5u  %9u  %10u  %7u  %10u  %8.2f%%\n", i, (unsigned)c->size, (unsigned)span,
	       (unsigned)c->objects, (unsigned)tail, pct((double)slack * c->objects + tail, span));
}

static void print_summary(void)
{
	double round = 0, tail = 0;
	uint32_t round_at = 0, tail_at = 0;

	for (unsigned i = 1; i < nclasses; i++) {
		const struct sclass *c = &classes[i];
		uint32_t span = c->pages * PAGE_SIZE;
		double r = pct(c->size - classes[i - 1].size - 1, c->size);
		double t = pct(span % c->size, span);

		if (c->size > 128 && r > round) {
			round = r;
			round_at = c->size;
		}
		if (t > tail) {
			tail = t;
			tail_at = c->size;
		}
	}
	printf(" *\n * Max rounding waste (the smallest request of a class rounds up the furthest):\n");
	printf(" *   up to 128 bytes: 15 bytes (16-byte spacing);\n");
	printf(" *   above 128 bytes: %.2f%% (class size %u).\n", round, (unsigned)round_at);
	printf(" * Max tail waste: %.2f%% of the span (class size %u).\n", tail, (unsigned)tail_at);
}

static void print_comment(void)
{
	printf("/*\n * sizeclasses.h — small-object size classes.\n *\n");
	printf(" * DO NOT EDIT; generated by tools/mksizeclasses.c (see its header for the rules).\n");
	printf(" * Class 0 stands for large objects (> GM_MAX_SMALL_SIZE), which are page runs.\n");
	printf(" * max waste: worst share of a span lost when every object holds the smallest request\n");
	printf(" * of its class (rounding) plus the tail that fits no object.\n *\n");
	printf(" * %-5s  %-9s  %-10s  %-7s  %-10s  %-9s\n", "class", "bytes/obj", "bytes/span",
	       "objects", "tail waste", "max waste");
	for (unsigned i = 1; i < nclasses; i++)
		print_class_row(i);
	print_summary();
	printf(" */\n");
}

static void print_defines(void)
{
	uint32_t max_pages = 0, max_objects = 0;

	for (unsigned i = 1; i < nclasses; i++) {
		if (classes[i].pages > max_pages)
			max_pages = classes[i].pages;
		if (classes[i].objects > max_objects)
			max_objects = classes[i].objects;
	}
	printf("#ifndef GM_SIZECLASSES_H\n#define GM_SIZECLASSES_H\n\n#include <stdint.h>\n\n");
	printf("#define GM_PAGE_SHIFT %u\n", PAGE_SHIFT);
	printf("#define GM_PAGE_SIZE %u\n", PAGE_SIZE);
	printf("#define GM_MAX_SMALL_SIZE %u\n", MAX_SMALL_SIZE);
	printf("#define GM_NUM_CLASSES %u /* including class 0 */\n", nclasses);
	printf("#define GM_MAX_SPAN_PAGES %u\n", (unsigned)max_pages);
	printf("#define GM_MAX_SPAN_OBJECTS %u\n\n", (unsigned)max_objects);
	printf("/* The tables are defined once, in alloc/sizeclasses.c, which defines\n");
	printf(" * GM_SIZECLASSES_DEFINE before including this header; every other file\n");
	printf(" * sees their declarations only. */\n");
	printf("#ifdef GM_SIZECLASSES_DEFINE\n");
	printf("#define GM_SIZECLASS_TABLE(decl, ...) const decl = {__VA_ARGS__};\n");
	printf("#else\n#define GM_SIZECLASS_TABLE(decl, ...) extern const decl;\n#endif\n");
}

/* One array: `count` values from get(i), `per_line` to a line. */
static void print_array(const char *decl, unsigned count, unsigned per_line,
			uint64_t (*get)(unsigned), const char *fmt)
{
	printf("\nGM_SIZECLASS_TABLE(%s,", decl);
	for (unsigned i = 0; i < count; i++) {
		printf(i % per_line == 0 ? "\n\t" : " ");
		printf(fmt, (unsigned long long)get(i));
		printf(i + 1 < count ? "," : ")\n");
	}
}

static uint64_t get_size(unsigned i) { return classes[i].size; }
static uint64_t get_pages(unsigned i) { return classes[i].pages; }
static uint64_t get_objects(unsigned i) { return classes[i].objects; }
static uint64_t get_batch(unsigned i) { return classes[i].batch; }
static uint64_t get_magic(unsigned i) { return classes[i].magic; }
static uint64_t get_start_limit(unsigned i) { return i ? start_limit(&classes[i]) : 0; }

static uint64_t get_lookup(unsigned i)
{
	uint32_t size = i << LOOKUP_SHIFT;

	return class_of(size ? size : 1);
}

static void print_header(void)
{
	print_comment();
	print_defines();
	print_array("uint32_t gm_class_size[GM_NUM_CLASSES]", nclasses, 12, get_size, "%llu");
	print_array("uint8_t gm_class_pages[GM_NUM_CLASSES]", nclasses, 16, get_pages, "%llu");
	print_array("uint16_t gm_class_objects[GM_NUM_CLASSES]", nclasses, 16, get_objects, "%llu");
	print_array("uint16_t gm_class_batch[GM_NUM_CLASSES]", nclasses, 16, get_batch, "%llu");
	printf("\n/* ceil(2^64 / size): see the division magic note in tools/mksizeclasses.c */");
	print_array("uint64_t gm_class_divmagic[GM_NUM_CLASSES]", nclasses, 4, get_magic,
		    "0x%016llxull");
	printf("\n/* offset * divmagic < start_limit iff offset is an object start (class 0: never) */");
	print_array("uint64_t gm_class_start_limit[GM_NUM_CLASSES]", nclasses, 4, get_start_limit,
		    "0x%016llxull");
	printf("\n/* class for a request of 0..GM_MAX_SMALL_SIZE bytes, indexed by (size + 15) >> 4 */");
	print_array("uint8_t gm_size_to_class[2049]", LOOKUP_LEN, 16, get_lookup, "%llu");
	printf("\n#endif /* GM_SIZECLASSES_H */\n");
}

int main(void)
{
	walk_sizes();
	finish_classes();
	check_classes();
	print_header();
	if (fflush(stdout) != 0 || ferror(stdout)) {
		perror("mksizeclasses: stdout");
		return 1;
	}
	return 0;
}
