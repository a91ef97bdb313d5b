/*
 * test_mcentral.c — per-class span lists and parked batches (alloc/mcentral.c).
 *
 * Objects are taken with gm_mcentral_take and given back with
 * gm_mcentral_give; no thread cache is involved (nothing here calls
 * gm_malloc), so the class's spans and batches move only with what a test
 * does.  Every test loops over every class and gives back all it took, then
 * drains the class, so each test starts with no object of any class out.
 */
#include "hardening.h"
#include "internal.h"
#include "mcentral.h"
#include "testutil.h"

#define PAGE ((uint64_t)GM_PAGE_SIZE)
#define PARKED_LIMIT ((uint64_t)64 << 10)       /* mcentral.c: parked bytes per class */

static uint64_t heap_in_use(void)
{
    struct gm_heap_stats st;
    gm_mheap_stats(&st);
    return st.in_use;
}

static uint64_t parked_bytes(void)
{
    struct gm_central_stats st;
    gm_mcentral_stats(&st);
    return st.batch_bytes;
}

static int drain_all(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++)
        gm_mcentral_drain(cls);
    return 0;
}

/* Checks a list of n objects of class cls: linked through word 0, ends at
 * tail whose next is NULL, every object the start of a slot in a live span
 * of the class, all distinct.  Objects are filled after the walk. */
static void check_list(uint8_t cls, void *head, void *tail, uint32_t n)
{
    uint32_t size = gm_class_size[cls];
    uintptr_t *addrs = malloc(n * sizeof *addrs);
    assert_non_null(addrs);
    void *obj = head, *last = NULL;
    for (uint32_t i = 0; i < n; i++) {
        assert_non_null(obj);
        uintptr_t addr = (uintptr_t)obj;
        gm_span_t *s = gm_pagemap_span_of(addr);
        if (!s || s->cls != cls)
            fail_msg("class %u: object %u of %u at %p: span %p", cls, i, n, obj, (void *)s);
        assert_int_equal(s->state, GM_SPAN_SMALL);
        assert_true((addr - s->base) % size == 0);
        assert_true((addr - s->base) / size < gm_class_objects[cls]);
        assert_true(gm_test_aligned(addr, 16));
        addrs[i] = addr;
        last = obj;
        obj = gm_link_get(obj);
    }
    assert_ptr_equal(last, tail);
    assert_null(gm_link_get(tail));
    gm_test_assert_disjoint(addrs, n, size);
    free(addrs);
}

/* Writes a pattern after word 0 of every object (word 0 is the link). */
static void fill_list(void *head, uint32_t size, unsigned seed)
{
    for (void *obj = head; obj; obj = gm_link_get(obj))
        gm_test_fill((char *)obj + sizeof(void *), size - sizeof(void *), seed);
}

static bool list_intact(void *head, uint32_t size, unsigned seed)
{
    for (void *obj = head; obj; obj = gm_link_get(obj))
        if (!gm_test_check((char *)obj + sizeof(void *), size - sizeof(void *), seed))
            return false;
    return true;
}

static void test_mcentral_take_gives_valid_list(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        uint32_t counts[] = {1, gm_transfer_count(cls), gm_class_objects[cls] + 1u};
        for (size_t k = 0; k < 3; k++) {
            void *h = NULL, *t = NULL;
            uint32_t n = counts[k];
            gm_mcentral_drain(cls);   /* nothing parked: all n come from spans */
            assert_int_equal(gm_mcentral_take(0, cls, n, &h, &t), n);
            check_list(cls, h, t, n);
            fill_list(h, gm_class_size[cls], cls);
            assert_true(list_intact(h, gm_class_size[cls], cls));
            gm_mcentral_give(0, cls, h, t, n);
        }
        gm_mcentral_drain(cls);
    }
}

/* Objects taken in several rounds, all held at once, never repeat. */
static void test_mcentral_take_distinct_across_calls(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        enum { ROUNDS = 5 };
        uint32_t n = gm_transfer_count(cls) + 1u, size = gm_class_size[cls];
        void *h[ROUNDS], *t[ROUNDS];
        uintptr_t *addrs = malloc(ROUNDS * n * sizeof *addrs);
        assert_non_null(addrs);
        size_t k = 0;
        for (int r = 0; r < ROUNDS; r++) {
            assert_int_equal(gm_mcentral_take(0, cls, n, &h[r], &t[r]), n);
            check_list(cls, h[r], t[r], n);
            for (void *obj = h[r]; obj; obj = gm_link_get(obj))
                addrs[k++] = (uintptr_t)obj;
        }
        gm_test_assert_disjoint(addrs, k, size);
        for (int r = 0; r < ROUNDS; r++)
            gm_mcentral_give(0, cls, h[r], t[r], n);
        gm_mcentral_drain(cls);
        free(addrs);
    }
}

/* A transfer moves at most GM_TRANSFER_BYTES, never more than the table's
 * batch, never fewer than GM_TRANSFER_MIN_OBJECTS (or the table's batch when
 * it is smaller), and never more than 64 KiB. */
static void test_mcentral_transfer_count_bounded(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        uint32_t n = gm_transfer_count(cls), size = gm_class_size[cls];
        assert_true(n <= gm_class_batch[cls] && n <= GM_TRANSFER_MAX_OBJECTS);
        assert_true(n >= GM_TRANSFER_MIN_OBJECTS || n == gm_class_batch[cls]);
        assert_true((uint64_t)n * size <= GM_TRANSFER_BYTES || n <= GM_TRANSFER_MIN_OBJECTS);
        assert_true((uint64_t)n * size <= (64u << 10));
        if (n < gm_class_batch[cls] && n > GM_TRANSFER_MIN_OBJECTS)   /* cut: as many as fit */
            assert_true((uint64_t)(n + 1) * size > GM_TRANSFER_BYTES);
    }
}

/* A whole batch given back is parked and the next whole-batch take returns
 * it as it was: same head, same tail, same objects, contents untouched. */
static void test_mcentral_batch_parked_and_returned_whole(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        uint32_t n = gm_transfer_count(cls), size = gm_class_size[cls];
        void *h, *t, *h2, *t2;
        assert_int_equal(gm_mcentral_take(0, cls, n, &h, &t), n);
        fill_list(h, size, 7u * cls);
        uint64_t parked = parked_bytes();
        gm_mcentral_give(0, cls, h, t, n);
        assert_true(parked_bytes() == parked + (uint64_t)n * size);
        assert_int_equal(gm_mcentral_take(0, cls, n, &h2, &t2), n);
        assert_ptr_equal(h2, h);
        assert_ptr_equal(t2, t);
        assert_true(parked_bytes() == parked);
        check_list(cls, h2, t2, n);
        assert_true(list_intact(h2, size, 7u * cls));
        gm_mcentral_give(0, cls, h2, t2, n);
        gm_mcentral_drain(cls);
        assert_true(parked_bytes() == parked);
    }
}

/* A take smaller than the top parked batch gets its first objects and leaves
 * the rest parked; the next take gets the rest, fewer than it asked for,
 * before any span is carved.  Nothing new comes from the heap. */
static void test_mcentral_small_take_splits_parked_batch(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        uint32_t n = gm_transfer_count(cls), size = gm_class_size[cls];
        if (n < 2)
            continue;
        uint32_t k = n / 2;
        void *h, *t, *h1, *t1, *h2, *t2;
        assert_int_equal(gm_mcentral_take(0, cls, n, &h, &t), n);
        fill_list(h, size, 5u * cls);
        uint64_t parked = parked_bytes(), in_use = heap_in_use();
        gm_mcentral_give(0, cls, h, t, n);
        assert_int_equal(gm_mcentral_take(0, cls, k, &h1, &t1), k);
        assert_ptr_equal(h1, h);
        check_list(cls, h1, t1, k);
        assert_true(parked_bytes() == parked + (uint64_t)(n - k) * size);
        assert_int_equal(gm_mcentral_take(0, cls, n, &h2, &t2), n - k);
        assert_ptr_equal(t2, t);
        check_list(cls, h2, t2, n - k);
        assert_true(parked_bytes() == parked);
        assert_true(heap_in_use() == in_use);
        gm_mcentral_give(0, cls, h1, t1, k);
        gm_mcentral_give(0, cls, h2, t2, n - k);
        gm_mcentral_drain(cls);
    }
}

/* Lists that are not a whole batch go back to their spans, not to the stock. */
static void test_mcentral_partial_batch_not_parked(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        uint32_t n = gm_transfer_count(cls) + 1u;
        void *h, *t;
        assert_int_equal(gm_mcentral_take(0, cls, n, &h, &t), n);
        uint64_t parked = parked_bytes();
        gm_mcentral_give(0, cls, h, t, n);
        assert_true(parked_bytes() == parked);
        gm_mcentral_drain(cls);
    }
}

/* Every small span's objects have a bit each in its descriptor. */
static void test_span_objects_fit_its_bitmap(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++)
        assert_true(gm_class_objects[cls] <= 64u * GM_SPAN_BITMAP_WORDS);
}

/* Objects given back to their span in random order come out of it again in
 * address order, and only those. */
static void test_mcentral_span_hands_out_in_address_order(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        uint32_t n = gm_class_objects[cls];
        if (n < 3)
            continue;
        void *h, *t;
        assert_int_equal(gm_mcentral_take(0, cls, n, &h, &t), n);   /* one whole span */
        void **objs = malloc(n * sizeof *objs);
        assert_non_null(objs);
        void *obj = h;
        for (uint32_t i = 0; i < n; i++, obj = gm_link_get(obj))
            objs[i] = obj;
        gm_span_t *s = gm_pagemap_span_of((uintptr_t)objs[0]);
        /* All but objs[0] (which keeps the span alive) back, one at a
         * time, in a shuffled order. */
        unsigned seed = cls;
        for (uint32_t i = n - 1; i > 1; i--) {
            seed = seed * 1103515245u + 12345u;
            uint32_t j = 1 + (seed >> 8) % i;
            void *tmp = objs[i];
            objs[i] = objs[j];
            objs[j] = tmp;
        }
        for (uint32_t i = 1; i < n; i++) {
            gm_link_set(objs[i], NULL);
            gm_mcentral_give(0, cls, objs[i], objs[i], 1);
        }
        assert_int_equal(s->nalloc, 1);
        void *h2, *t2;
        assert_int_equal(gm_mcentral_take(0, cls, n - 1, &h2, &t2), n - 1);
        uintptr_t prev = (uintptr_t)objs[0];
        uint32_t size = gm_class_size[cls];
        for (void *o = h2; o; o = gm_link_get(o)) {
            assert_true((uintptr_t)o == prev + size);
            prev = (uintptr_t)o;
        }
        assert_ptr_equal((void *)prev, t2);
        assert_int_equal(s->nalloc, n);
        gm_link_set(objs[0], h2);
        gm_mcentral_give(0, cls, objs[0], t2, n);
        free(objs);
        gm_mcentral_drain(cls);
    }
}

/* The stock of parked batches is bounded: giving back more whole batches
 * than it holds sends the rest to the spans. */
static void test_mcentral_parked_batches_bounded(void **state)
{
    (void)state;
    enum { ROUNDS = 70 };   /* more than the stock's 64 slots */
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls += 4) {
        uint32_t n = gm_transfer_count(cls), size = gm_class_size[cls];
        void *h[ROUNDS], *t[ROUNDS];
        for (int r = 0; r < ROUNDS; r++)
            assert_int_equal(gm_mcentral_take(0, cls, n, &h[r], &t[r]), n);
        uint64_t parked = parked_bytes(), in_use = heap_in_use();
        for (int r = 0; r < ROUNDS; r++)
            gm_mcentral_give(0, cls, h[r], t[r], n);
        uint64_t now = parked_bytes() - parked;
        assert_true(now > 0);
        assert_true(now <= PARKED_LIMIT);
        assert_true(now / ((uint64_t)n * size) <= 64);
        assert_true(now % ((uint64_t)n * size) == 0);
        assert_true(heap_in_use() <= in_use);
        gm_mcentral_drain(cls);
        assert_true(parked_bytes() == parked);
    }
}

/* A stock that batches overflow and that then runs dry keeps its bound,
 * round after round: the extra batches go back to their spans, so what a
 * class parks never passes 64 KiB however the two sides of a trade race. */
static void test_mcentral_parked_bound_fixed_through_round_trips(void **state)
{
    (void)state;
    enum { MAXB = 64 };
    uint8_t cls = gm_size_class(512);
    uint32_t n = gm_transfer_count(cls), size = gm_class_size[cls];
    uint64_t per_batch = (uint64_t)n * size;
    uint32_t bound = (uint32_t)(PARKED_LIMIT / per_batch);
    assert_true(bound + 8 <= MAXB);
    void *h[MAXB], *t[MAXB];
    gm_mcentral_drain(cls);
    uint64_t parked = parked_bytes(), in_use = 0;
    for (uint32_t round = 0; round < 12; round++) {
        /* More batches than the stock holds go back: the rest to the spans. */
        uint32_t k = bound + 8;
        for (uint32_t i = 0; i < k; i++)
            assert_int_equal(gm_mcentral_take(0, cls, n, &h[i], &t[i]), n);
        if (round == 0)
            in_use = heap_in_use();
        for (uint32_t i = 0; i < k; i++)
            gm_mcentral_give(0, cls, h[i], t[i], n);
        uint64_t now = parked_bytes() - parked;
        if (now != bound * per_batch)
            fail_msg("round %u: %lu bytes parked, expected %u batches of %lu", round,
                     (unsigned long)now, bound, (unsigned long)per_batch);
        assert_true(heap_in_use() <= in_use);   /* the same spans, round after round */
    }
    gm_mcentral_drain(cls);
    assert_true(parked_bytes() == parked);
}

/* Taking every object of one fresh span and giving them all back (then
 * draining the stock) returns the span's pages to the heap. */
static void test_mcentral_empty_span_returns_to_heap(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        gm_mcentral_drain(cls);
        uint64_t before = heap_in_use();
        uint32_t n = gm_class_objects[cls];
        void *h, *t;
        assert_int_equal(gm_mcentral_take(0, cls, n, &h, &t), n);
        check_list(cls, h, t, n);
        gm_span_t *s = gm_pagemap_span_of((uintptr_t)h);
        assert_non_null(s);
        uintptr_t base = s->base;
        assert_true(heap_in_use() == before + gm_class_pages[cls] * PAGE);
        gm_mcentral_give(0, cls, h, t, n);
        gm_mcentral_drain(cls);
        if (heap_in_use() != before)
            fail_msg("class %u: heap in use %lu after all objects came back, %lu before", cls,
                     (unsigned long)heap_in_use(), (unsigned long)before);
        assert_null(gm_pagemap_span_of(base));
    }
}

/* Many spans' worth taken and given back one object at a time (as threads
 * that exit free them): every span goes back to the heap. */
static void test_mcentral_objects_back_one_by_one_free_spans(void **state)
{
    (void)state;
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        gm_mcentral_drain(cls);
        uint64_t before = heap_in_use();
        uint32_t n = 3u * gm_class_objects[cls] + 1u;
        void *h, *t;
        assert_int_equal(gm_mcentral_take(0, cls, n, &h, &t), n);
        check_list(cls, h, t, n);
        assert_true(heap_in_use() >= before + 3 * gm_class_pages[cls] * PAGE);
        for (void *obj = h, *next; obj; obj = next) {
            next = gm_link_get(obj);
            gm_link_set(obj, NULL);
            gm_mcentral_give(0, cls, obj, obj, 1);
        }
        gm_mcentral_drain(cls);
        assert_true(heap_in_use() == before);
    }
}

/* A take that needs many new spans gets exactly as many as it needs (the
 * heap hands them over several at a time; 20 is more than one trip), and
 * one give that empties them all sends every one back to the heap. */
static void test_mcentral_take_grows_needed_spans_only(void **state)
{
    (void)state;
    enum { SPANS = 20 };
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        gm_mcentral_drain(cls);
        uint64_t before = heap_in_use();
        uint32_t n = SPANS * gm_class_objects[cls];
        void *h, *t;
        assert_int_equal(gm_mcentral_take(0, cls, n, &h, &t), n);
        check_list(cls, h, t, n);
        if (heap_in_use() != before + SPANS * gm_class_pages[cls] * PAGE)
            fail_msg("class %u: %lu bytes more in use for %u spans", cls,
                     (unsigned long)(heap_in_use() - before), SPANS);
        uintptr_t bases[SPANS];
        uint32_t nbases = 0;
        for (void *obj = h; obj; obj = gm_link_get(obj)) {
            uintptr_t base = gm_pagemap_span_of((uintptr_t)obj)->base;
            bool seen = false;
            for (uint32_t i = 0; i < nbases; i++)
                seen |= bases[i] == base;
            if (!seen) {
                assert_true(nbases < SPANS);
                bases[nbases++] = base;
            }
        }
        assert_int_equal(nbases, SPANS);
        gm_mcentral_give(0, cls, h, t, n);
        gm_mcentral_drain(cls);
        assert_true(heap_in_use() == before);
        for (uint32_t i = 0; i < nbases; i++)
            assert_null(gm_pagemap_span_of(bases[i]));
    }
}

/* Objects one shard carved, given back through another shard (a thread of
 * the other shard freed them), go back to their own spans: the spans empty
 * and return to the heap, and each shard's parked stock stays its own. */
static void test_mcentral_foreign_objects_return_to_their_shard(void **state)
{
    (void)state;
    uint32_t saved = gm_shards;
    gm_shards = 2;
    uint64_t before = heap_in_use();
    for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
        uint32_t n = gm_transfer_count(cls);
        void *h, *t;
        assert_int_equal(gm_mcentral_take(0, cls, n, &h, &t), n);
        gm_span_t *s = gm_pagemap_span_of((uintptr_t)h);
        assert_int_equal(s->shard, 0);
        /* Not a whole batch: through the spans, not the stock. */
        void *rest = gm_link_get(h);
        gm_link_set(h, NULL);
        gm_mcentral_give(1, cls, h, h, 1);
        if (n > 1)
            gm_mcentral_give(1, cls, rest, t, n - 1);
        gm_mcentral_drain(cls);
        assert_int_equal(parked_bytes(), 0);
    }
    assert_int_equal(heap_in_use(), before);
    gm_shards = saved;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mcentral_transfer_count_bounded),
        cmocka_unit_test_teardown(test_mcentral_take_gives_valid_list, drain_all),
        cmocka_unit_test_teardown(test_mcentral_take_distinct_across_calls, drain_all),
        cmocka_unit_test_teardown(test_mcentral_batch_parked_and_returned_whole, drain_all),
        cmocka_unit_test_teardown(test_mcentral_small_take_splits_parked_batch, drain_all),
        cmocka_unit_test_teardown(test_mcentral_partial_batch_not_parked, drain_all),
        cmocka_unit_test(test_span_objects_fit_its_bitmap),
        cmocka_unit_test_teardown(test_mcentral_span_hands_out_in_address_order, drain_all),
        cmocka_unit_test_teardown(test_mcentral_parked_batches_bounded, drain_all),
        cmocka_unit_test_teardown(test_mcentral_parked_bound_fixed_through_round_trips, drain_all),
        cmocka_unit_test_teardown(test_mcentral_empty_span_returns_to_heap, drain_all),
        cmocka_unit_test_teardown(test_mcentral_objects_back_one_by_one_free_spans, drain_all),
        cmocka_unit_test_teardown(test_mcentral_take_grows_needed_spans_only, drain_all),
        cmocka_unit_test_teardown(test_mcentral_foreign_objects_return_to_their_shard, drain_all),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
