/*
 * span.c — a run of pages carved into objects of one size class.
 *
 * A small span tracks its free slots two ways, both read in address order:
 * objects at or above freeindex have never been handed out (carved on
 * demand, so a fresh span costs nothing until used), and objects that came
 * back have their bit set in free_bits (object i: bit i % 64 of word i / 64),
 * as Go's spans keep their allocation bits.  A take scans the bits from the
 * lowest and links the objects it finds in that order; a put sets a bit.
 *
 * Why bits and not a list through the objects: a list hands objects out in
 * the order they came back, so after frees in random order (bench/shuffle)
 * or from another thread a take walks addresses all over the span, each
 * link a load that waits for its line, possibly in another core's cache
 * (the take holds the class's lock all that while).  With bits a take reads
 * no object, its link stores do not wait on each other, and what it hands
 * out lies in address order, neighbours together, whatever order the frees
 * came in.  A put touches only the span.  The bits live in the span's
 * descriptor, outside the heap, where a write after free cannot reach them.
 *
 * Invariants (gm_span_check_locked checks them in a GM_CHECKS build):
 *   1. nalloc + (set bits) + (objects - freeindex) == objects, and no bit at
 *      or above freeindex is set.
 *   2. nalloc == 0 means every object is back: the span can return to the heap.
 *
 * Locking: every field that changes is guarded by the mcentral lock of the
 * span's class; base, npages and cls are immutable while the span is in use.
 */
#include "hardening.h"
#include "internal.h"

/* A list under construction, linked through the objects' first words. */
struct chain {
    void *first, *last;
    uint32_t count;
};

static void chain_append(struct chain *c, void *obj) {
    if (c->last)
        gm_link_set(c->last, obj);
    else
        c->first = obj;
    c->last = obj;
    c->count++;
}

uint32_t gm_span_take_locked(gm_span_t *s, uint32_t n, void **head, void **tail) {
    if (GM_UNLIKELY(!__atomic_load_n(&gm_secret, __ATOMIC_ACQUIRE)))
        gm_hardening_init();   /* before the first link is written */
    uint32_t size = gm_class_size[s->cls], objects = gm_class_objects[s->cls];
    struct chain c = {NULL, NULL, 0};
    if (s->freeindex > s->nalloc) {   /* objects came back: their bits */
        uint32_t words = (s->freeindex + 63) / 64;
        for (uint32_t w = 0; w < words && c.count < n; w++) {
            uint64_t bits = s->free_bits[w];
            uintptr_t word_base = s->base + (uintptr_t)w * 64 * size;
            while (bits && c.count < n) {
                chain_append(&c, (void *)(word_base + (uintptr_t)__builtin_ctzll(bits) * size));
                bits &= bits - 1;
            }
            s->free_bits[w] = bits;
        }
    }
    while (c.count < n && s->freeindex < objects)
        chain_append(&c, (void *)(s->base + (uintptr_t)s->freeindex++ * size));
    if (c.last)
        gm_link_set(c.last, NULL);
    s->nalloc += c.count;
    *head = c.first;
    *tail = c.last;
    return c.count;
}

uint32_t gm_span_take_all_new_locked(gm_span_t *s, void **first, void **last) {
    gm_assert(s->nalloc == 0 && s->freeindex == 0);
    if (GM_UNLIKELY(!__atomic_load_n(&gm_secret, __ATOMIC_ACQUIRE)))
        gm_hardening_init();   /* before the first link is written */
    uint32_t size = gm_class_size[s->cls], objects = gm_class_objects[s->cls];
    uintptr_t obj = s->base;
    if (*last)
        gm_link_set(*last, (void *)obj);
    else
        *first = (void *)obj;
    for (uint32_t i = 1; i < objects; i++, obj += size)
        gm_link_set((void *)obj, (void *)(obj + size));
    gm_link_set((void *)obj, NULL);
    *last = (void *)obj;
    s->freeindex = s->nalloc = objects;
    return objects;
}

void gm_span_put_locked(gm_span_t *s, void *obj) {
    uint64_t offset = (uintptr_t)obj - s->base;
    uint32_t i = (uint32_t)(((unsigned __int128)offset * gm_class_divmagic[s->cls]) >> 64);
    uint64_t bit = (uint64_t)1 << (i % 64);
    /* Back already, or never handed out: the block was freed twice (its free
     * mark overwritten in between, or the first free would have been
     * caught). */
    if (GM_UNLIKELY((s->free_bits[i / 64] & bit) || i >= s->freeindex || s->nalloc == 0))
        gm_double_free("free()", obj, s->cls);
    s->free_bits[i / 64] |= bit;
    s->nalloc--;
}

bool gm_span_has_free(const gm_span_t *s) {
    return s->nalloc < gm_class_objects[s->cls];
}

#if GM_CHECKS
/* Invariant 1. */
void gm_span_check_locked(const gm_span_t *s) {
    uint32_t objects = gm_class_objects[s->cls], set = 0;
    GM_CHECK_THAT(s->cls != 0 && s->state == GM_SPAN_SMALL, "span: not a small span in use");
    GM_CHECK_THAT(s->freeindex <= objects && s->nalloc <= s->freeindex,
                  "span: nalloc > freeindex or freeindex > objects");
    for (uint32_t w = 0; w < GM_SPAN_BITMAP_WORDS; w++) {
        uint64_t bits = s->free_bits[w];
        set += (uint32_t)__builtin_popcountll(bits);
        uint32_t below = s->freeindex > w * 64 ? s->freeindex - w * 64 : 0;
        GM_CHECK_THAT(below >= 64 || (bits >> below) == 0,
                      "span: a free bit at or above freeindex");
    }
    GM_CHECK_THAT(s->nalloc + set + (objects - s->freeindex) == objects,
                  "span: nalloc + free bits + not carved != objects");
}
#endif
