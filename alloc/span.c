/*
 * span.c — a run of pages carved into objects of one size class.
 *
 * A small span tracks its free slots two ways, both in address order where it
 * can: objects at or above freeindex have never been handed out (carved on
 * demand, so a fresh span costs nothing until used), and objects that came
 * back sit on free_list, linked through their first word (encoded, see
 * internal.h).  nalloc counts the
 * objects out of the span, in thread caches, central batches or the program.
 *
 * Invariants:
 *   1. nalloc + |free_list| + (objects - freeindex) == objects.
 *   2. nalloc == 0 means every object is back: the span can return to the heap.
 *
 * Locking: every field that changes is guarded by the mcentral lock of the
 * span's class; base, npages and cls are immutable while the span is in use.
 */
#include "internal.h"

uint32_t gm_span_take_locked(gm_span_t *s, uint32_t n, void **head, void **tail) {
    if (GM_UNLIKELY(!__atomic_load_n(&gm_secret, __ATOMIC_ACQUIRE)))
        gm_hardening_init();   /* before the first link is written */
    uint32_t size = gm_class_size[s->cls], objects = gm_class_objects[s->cls];
    void *first = NULL, *last = NULL;
    uint32_t got = 0;
    while (got < n && s->free_list) {
        void *obj = s->free_list;
        s->free_list = gm_link_get(obj);
        if (last)
            gm_link_set(last, obj);
        else
            first = obj;
        last = obj;
        got++;
    }
    while (got < n && s->freeindex < objects) {
        void *obj = (void *)(s->base + (uintptr_t)s->freeindex * size);
        s->freeindex++;
        if (last)
            gm_link_set(last, obj);
        else
            first = obj;
        last = obj;
        got++;
    }
    if (last)
        gm_link_set(last, NULL);
    s->nalloc += got;
    *head = first;
    *tail = last;
    return got;
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
