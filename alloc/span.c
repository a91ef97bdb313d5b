/*
 * span.c — a run of pages carved into objects of one size class.
 *
 * A small span tracks its free slots two ways, both in address order where it
 * can: objects at or above freeindex have never been handed out (carved on
 * demand, so a fresh span costs nothing until used), and objects that came
 * back sit on free_list, linked through their first word (encoded, see
 * hardening.h).  nalloc counts the
 * objects out of the span, in thread caches, central batches or the program.
 *
 * Invariants (gm_span_check_locked checks them in a GM_CHECKS build):
 *   1. nalloc + |free_list| + (objects - freeindex) == objects.
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
    while (c.count < n && s->free_list) {
        void *obj = s->free_list;
        s->free_list = gm_link_get(obj);
        chain_append(&c, obj);
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
    gm_assert(s->nalloc == 0 && s->freeindex == 0 && s->free_list == NULL);
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
    gm_assert(s->nalloc > 0);
    gm_link_set(obj, s->free_list);
    s->free_list = obj;
    s->nalloc--;
}

bool gm_span_has_free(const gm_span_t *s) {
    return s->free_list != NULL || s->freeindex < gm_class_objects[s->cls];
}

#if GM_CHECKS
/* Invariant 1, with every object on free_list an object start of s below
 * freeindex, and the list free of loops. */
void gm_span_check_locked(const gm_span_t *s) {
    uint32_t size = gm_class_size[s->cls], objects = gm_class_objects[s->cls], listed = 0;
    GM_CHECK_THAT(s->cls != 0 && s->state == GM_SPAN_SMALL, "span: not a small span in use");
    GM_CHECK_THAT(s->freeindex <= objects && s->nalloc <= s->freeindex,
                  "span: nalloc > freeindex or freeindex > objects");
    for (void *obj = s->free_list; obj; obj = gm_link_get(obj)) {
        uintptr_t offset = (uintptr_t)obj - s->base;
        GM_CHECK_THAT((uintptr_t)obj >= s->base && offset % size == 0 &&
                          offset / size < s->freeindex,
                      "span: a free-list object is not a carved object of the span");
        GM_CHECK_THAT(++listed <= s->freeindex, "span: the free list loops");
    }
    GM_CHECK_THAT(s->nalloc + listed + (objects - s->freeindex) == objects,
                  "span: nalloc + free list + not carved != objects");
}
#endif
