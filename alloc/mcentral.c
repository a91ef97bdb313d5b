/*
 * mcentral.c — per size class: the spans with free objects, and a small stock
 * of ready-made batches (tcmalloc's transfer cache) between thread caches.
 *
 * Thread caches move objects in batches of gm_transfer_count(cls) (at most
 * 8 KiB, or 8 objects of the classes above 1 KiB; see internal.h).  A batch
 * that a cache gives back is parked whole in its stock when there is room,
 * and the next cache that needs objects takes it: a producer thread and a
 * consumer thread trade memory with one lock round-trip per batch and no
 * pagemap walk.  A parked batch keeps its objects' addresses as well as
 * their links, so the taker fetches all their lines at once instead of one
 * per pop (gm_batch_t).  A cache that asks for fewer (a list still in
 * slow start) gets the first objects of the top batch and the rest stays
 * parked, so parked memory is used before any span is carved.  Only when
 * the stock is full (or empty) do objects go back to (or come out of) their
 * spans.
 *
 * The stock holds at most 64 KiB of a class (PARKED_BYTES).  Parked memory
 * is out of reach of every other class and keeps its spans from going back
 * to the heap, and under a producer/consumer load every stock fills: the
 * objects in flight are what the program's queue holds plus what the
 * stocks hold.  Until 2026-12 the bound grew by a batch, up to 256 KiB,
 * each time a take found the stock empty after a give had found it full
 * (as tcmalloc's transfer caches grow); the two sides of a producer and
 * consumer race, so it reached 256 KiB in nearly every class: measured
 * (`bench/run.py` workloads at scale 1, 3 interleaved runs) prodcons-2 peaked
 * at 13.4 MiB with it and 6.5 MiB without, prodcons-4 16.0 and 12.4 MiB,
 * rptest-2 27.4 and 23.0 MiB; over all 41 workloads at scale 0.5 the fixed
 * bound took 0.991 of the CPU time and 0.988 of the peak RSS.  Taking a
 * batch from the spans costs a bit scan under the same lock, not new
 * memory.
 *
 * Shards: the mcentrals come in gm_shards sets (one per CPU the process may
 * run on, rounded up to a power of two, at most GM_SHARDS_MAX), and each
 * thread cache trades with one of them, the one fewest live caches use
 * (mcache.c).  With one set, the batches a thread parks are taken by
 * another thread, and its spans' objects are handed to both: two threads
 * that share nothing end up with their objects interleaved in the same
 * cache lines, each thread's writes stealing lines from the other
 * (bench/threadscale: two threads took 1.35 times the CPU time of one doing
 * the same work, 1.00 with shards; tcmalloc, with one set of central lists,
 * 1.42; jemalloc, with an arena per CPU, 1.02).
 * A span belongs to the shard that carved it.  A batch a thread gives back
 * goes to the shard of its first object's span, so a consumer's frees of a
 * producer's objects are parked where the producer's refills take them,
 * rather than sent back to their spans one by one under a foreign lock; any
 * object of another shard in it goes back to its span under that shard's
 * lock.
 *
 * Spans come from the heap as many at a time as a take needs, and the spans
 * a give empties go back together: one heap lock round trip each way where
 * the classes with one or two objects per span would otherwise make one per
 * object (bench/fastpath 8192: 435M instructions before, 367M after).
 *
 * Invariants (checked in a GM_CHECKS build each time a slow path drops the
 * lock, and for each span a take or give touched):
 *   1. A span is on partial iff it has a free object (in_partial mirrors it).
 *   2. A span whose objects are all back (nalloc == 0) is returned to the
 *      heap before the lock is dropped; an mcentral holds no empty spans.
 *      (Debug mode keeps them, so a block's memory keeps its layout: see
 *      debug.c.)
 *   3. Every parked batch holds between 1 and gm_transfer_count(cls)
 *      objects, linked through word 0 in the order of its address array;
 *      only full batches are parked, a take may leave the rest of the top
 *      one.  nbatches <= batches_in(cls, PARKED_BYTES), at most 64
 *      batches.
 *
 * Locking: one lock per shard and class guards everything in its
 * gm_mcentral_t and the mutable fields of the spans it carved.  A thread
 * holds at most one mcentral lock (the fork handlers take all, shard by
 * shard, in ascending class order) and may take the mheap lock, or the
 * fixalloc lock (a stock's memory), inside it.
 */
#include <string.h>

#include "hardening.h"
#include "internal.h"
#include "mcentral.h"

#define MAX_BATCHES 64
/* Most parked bytes per class (see above).  With 64 KiB, fastpath-512's
 * bursts of 1000 blocks once went through the spans (30% slower); the
 * thread cache holds such a burst now (cachebound.c). */
#define PARKED_BYTES ((size_t)64 << 10)

/* A parked batch is a gm_batch_t (mcentral.h): its objects' addresses,
 * obj[first] to obj[first + count - 1], which are also linked in that order
 * through word 0 (the last one's link is NULL), so a take hands out a list
 * without walking it.  The addresses are what a take needs to fetch the
 * batch's lines all at once: the batch was most often freed by a thread on
 * another core, whose cache holds those lines, and a list popped one link at
 * a time waits for each line in turn.  xmalloc-1 (a consumer thread frees
 * what a producer allocates) spent 93% of the producer's time in malloc on
 * that one load, 0.27 s in all; with the lines fetched at the take, 0.14 s
 * (mimalloc 0.13, which collects a page's remote frees at once, in address
 * order).
 *
 * Buffers change hands instead of being copied: a thread cache fills a
 * spare buffer of its own with the batch it gives back, and parking swaps
 * it for the stock's next empty buffer; a take of a whole batch swaps the
 * taker's spare for the batch's buffer.  Inside the lock, a give or take
 * then touches the header's line and one line of the stock's pointers, not
 * the buffer's own lines, which the other thread wrote or read last (on
 * xmalloc with 1 KiB objects, more than half of the freeing thread's
 * samples were in its give or waiting for the lock, most at the lock's
 * atomics; the whole program's time then moved by 10% or less).  Only the
 * top batch may have been partly taken (top_partial), so a take knows a
 * whole batch's length without reading its buffer. */

/* An mcentral's header: the lock and every field a take or a give reads,
 * in one cache line: a producer and a consumer trading batches move that
 * line and the batch's between their cores, and nothing more.  The parked
 * batches live apart (stocks below), so that the headers of all classes
 * and shards lie together, a line each: the fork handlers take and drop
 * every lock, and each page they write while a child shares it is copied
 * for the parent.  With a header and its stock in one struct of 2 KiB, the
 * locks spanned 68 pages on a 2-CPU machine and a fork beside busy threads
 * took 76 page faults in the forking thread (glibc: 9); together they span
 * 3 pages. */
struct gm_mcentral {
    gm_lock_t lock;
    uint32_t nbatches;
    gm_span_t *partial;             /* spans with free objects */
    uint64_t out_objects;           /* objects out of this class's spans */
    bool top_partial;               /* the top batch was partly taken */
    gm_batch_t **stock;             /* MAX_BATCHES buffers: [0, nbatches)
                                       parked batches, then empty buffers or
                                       NULL; from stock_fa at the first park */
} __attribute__((aligned(GM_CACHELINE)));

static gm_mcentral_t centrals[GM_SHARDS_MAX][GM_NUM_CLASSES];   /* locks start free (0) */
/* The stocks' pointer arrays, for the mcentrals that park a batch, and the
 * buffers (see gm_batch_t), which stocks and thread caches trade. */
static gm_fixalloc_t stock_fa = {.size = MAX_BATCHES * sizeof(gm_batch_t *)};
static gm_fixalloc_t batch_fa = {.size = sizeof(gm_batch_t)};
uint32_t gm_shards = 1;   /* immutable after init */

gm_batch_t *gm_mcentral_batch_new(void) { return gm_fixalloc_alloc(&batch_fa); }
void gm_mcentral_batch_free(gm_batch_t *b) {
    if (b)
        gm_fixalloc_free(&batch_fa, b);
}

static uint8_t shard_of(const gm_mcentral_t *c) {
    return (uint8_t)((c - &centrals[0][0]) / GM_NUM_CLASSES);
}

/* Batches of class cls that fit in bytes of parked memory. */
static uint32_t batches_in(uint8_t cls, size_t bytes) {
    size_t per_batch = (size_t)gm_transfer_count(cls) * gm_class_size[cls];
    size_t n = bytes / per_batch;
    return n > MAX_BATCHES ? MAX_BATCHES : (uint32_t)n;
}

#if GM_CHECKS
/* Invariants 1 and 3 for what c holds: every span on partial is a span of
 * this class and shard with a free object, marked in_partial, and whole
 * (gm_span_check_locked); every parked batch holds 1 to a transfer's objects
 * and ends its list; the stock is within its bounds. */
static void check_locked(const gm_mcentral_t *c, uint8_t cls) {
    GM_CHECK_THAT(c->nbatches <= batches_in(cls, PARKED_BYTES),
                  "mcentral: more batches parked than the bound allows");
    for (uint32_t i = 0; i < c->nbatches; i++) {
        const gm_batch_t *b = c->stock[i];
        GM_CHECK_THAT(b && b->count >= 1 && b->count <= gm_transfer_count(cls) &&
                          b->first + b->count <= GM_TRANSFER_MAX_OBJECTS,
                      "mcentral: a parked batch is missing, empty or too long");
        GM_CHECK_THAT((i + 1 == c->nbatches && c->top_partial) ||
                          (b->first == 0 && b->count == gm_transfer_count(cls)),
                      "mcentral: a parked batch below the top, or not marked, is not whole");
        for (uint32_t k = b->first; k < b->first + b->count; k++)
            GM_CHECK_THAT(gm_link_get(b->obj[k]) == (k + 1 < b->first + b->count ? b->obj[k + 1] : NULL),
                          "mcentral: a parked batch's links and addresses differ");
    }
    GM_CHECK_THAT(c->nbatches > 0 || !c->top_partial, "mcentral: an empty stock's top is partial");
    const gm_span_t *prev = NULL;
    for (const gm_span_t *s = c->partial; s; prev = s, s = s->next) {
        GM_CHECK_THAT(s->in_partial && s->prev == prev, "mcentral: partial list links");
        GM_CHECK_THAT(s->cls == cls && s->shard == shard_of(c),
                      "mcentral: a span of another class or shard on partial");
        GM_CHECK_THAT(gm_span_has_free(s), "mcentral: a span without free objects on partial");
        gm_span_check_locked(s);
    }
}

/* Invariant 1 for a span a take or give touched: on partial iff it has a
 * free object. */
static void check_span_locked(const gm_span_t *s) {
    gm_span_check_locked(s);
    GM_CHECK_THAT(s->in_partial == gm_span_has_free(s),
                  "mcentral: a span is on partial but full, or has free objects and is not");
}
#endif

/* Drops c's lock; a GM_CHECKS build checks c first. */
static void unlock_central(gm_mcentral_t *c, uint8_t cls) {
    GM_CHECK(check_locked(c, cls));
    (void)cls;
    gm_unlock(&c->lock);
}

static void partial_push(gm_mcentral_t *c, gm_span_t *s) {
    GM_DLIST_PUSH(&c->partial, s);
    s->in_partial = 1;
}

static void partial_remove(gm_mcentral_t *c, gm_span_t *s) {
    GM_DLIST_REMOVE(&c->partial, s);
    s->in_partial = 0;
}

/* The small span owning obj; obj was validated when it was freed. */
static gm_span_t *span_of_object(void *obj) {
    uintptr_t addr = (uintptr_t)obj;
    gm_arena_t *a = gm_pagemap_arena(addr);
    uintptr_t page = gm_page_index(addr);
    return a->spans[page - gm_page_info_index(a->page_info[page])];
}

/* Appends up to n objects of span s to the list first..last; returns how
 * many. */
static uint32_t take_from_span_locked(gm_span_t *s, uint32_t n, void **first, void **last) {
    void *h, *t;
    uint32_t k = gm_span_take_locked(s, n, &h, &t);
    if (k) {
        if (*last)
            gm_link_set(*last, h);
        else
            *first = h;
        *last = t;
    }
    return k;
}

/* Most spans taken from the heap in one trip. */
#define GROW_MAX_SPANS 16

/* New spans for want more objects, taken from the heap in one lock round
 * trip (a class with few objects per span needs several for one transfer);
 * returns how many, 0 when the heap has none. */
static uint32_t grow(gm_mcentral_t *c, uint8_t cls, uint32_t want, gm_span_t **spans) {
    uint32_t per_span = gm_class_objects[cls];
    uint32_t n = (want + per_span - 1) / per_span;
    if (n > GROW_MAX_SPANS)
        n = GROW_MAX_SPANS;
    n = gm_mheap_alloc_spans(gm_class_pages[cls], cls, n, spans);
    for (uint32_t i = 0; i < n; i++)
        spans[i]->shard = shard_of(c);
    return n;
}

/* Takes up to n objects from partial spans, then from new ones; spans
 * left with free objects stay on (or join) partial. */
static uint32_t take_from_spans_locked(gm_mcentral_t *c, uint8_t cls, uint32_t n,
                                       void **head, void **tail) {
    uint32_t got = 0;
    void *first = NULL, *last = NULL;
    while (got < n && c->partial) {
        gm_span_t *s = c->partial;
        got += take_from_span_locked(s, n - got, &first, &last);
        if (!gm_span_has_free(s))
            partial_remove(c, s);
    }
    while (got < n) {
        gm_span_t *spans[GROW_MAX_SPANS];
        uint32_t k = grow(c, cls, n - got, spans);
        if (!k)
            break;
        for (uint32_t i = 0; i < k; i++) {
            if (n - got >= gm_class_objects[cls]) {
                got += gm_span_take_all_new_locked(spans[i], &first, &last);
                continue;
            }
            got += take_from_span_locked(spans[i], n - got, &first, &last);
            if (gm_span_has_free(spans[i]))
                partial_push(c, spans[i]);
            GM_CHECK(check_span_locked(spans[i]));
        }
    }
    c->out_objects += got;
    *head = first;
    *tail = last;
    return got;
}

/* Takes up to n objects off the top parked batch by copying their
 * addresses into fetch[]; the rest stays parked, an emptied buffer stays in
 * the stock. */
static uint32_t copy_parked_locked(gm_mcentral_t *c, uint32_t n, void **head, void **tail,
                                   void **fetch) {
    gm_batch_t *b = c->stock[c->nbatches - 1];
    uint32_t k = b->count < n ? b->count : n;
    void **obj = &b->obj[b->first];
    memcpy(fetch, obj, k * sizeof(void *));
    *head = obj[0];
    *tail = obj[k - 1];
    if (k == b->count) {
        c->nbatches--;
        c->top_partial = false;   /* the batches below the top are whole */
    } else {
        gm_link_set(obj[k - 1], NULL);
        b->first += k;
        b->count -= k;
        c->top_partial = true;
    }
    return k;
}

uint32_t gm_mcentral_take_batch(uint8_t shard, uint8_t cls, uint32_t n, void **head,
                                void **tail, gm_batch_t **spare) {
    gm_mcentral_t *c = &centrals[shard][cls];
    void *copied[GM_TRANSFER_MAX_OBJECTS];
    void **fetch = copied;
    gm_batch_t *swapped = NULL;
    uint32_t got, nfetch = 0;
    gm_lock(&c->lock);
    if (c->nbatches > 0 && spare && !c->top_partial && n >= gm_transfer_count(cls)) {
        swapped = c->stock[--c->nbatches];
        c->stock[c->nbatches] = *spare;
        *spare = swapped;
        got = 0;   /* read from the buffer below, out of the lock */
    } else if (c->nbatches > 0) {
        got = nfetch = copy_parked_locked(c, n, head, tail, copied);
    } else {
        got = take_from_spans_locked(c, cls, n, head, tail);
    }
    unlock_central(c, cls);
    if (swapped) {
        got = nfetch = swapped->count;
        fetch = swapped->obj;   /* first is 0: a whole batch */
        *head = fetch[0];
        *tail = fetch[got - 1];
    }
    /* Every line the caller's pops will read, fetched at once (see
     * gm_batch_t above), after the unlock: a prefetch waits when the core
     * has too many misses in flight, and the giving thread waited for the
     * lock. */
    for (uint32_t i = 0; i < nfetch; i++)
        __builtin_prefetch(fetch[i], 1, 3);
    return got;
}

uint32_t gm_mcentral_take(uint8_t shard, uint8_t cls, uint32_t n, void **head, void **tail) {
    return gm_mcentral_take_batch(shard, cls, n, head, tail, NULL);
}

/* Returns n objects (a list from head) to their spans of c's shard; spans
 * that become empty go back to the heap.  Objects of another shard's spans
 * (freed by a thread of this shard, allocated by one of that) are kept
 * aside, linked from *foreign, for give_foreign: their spans are guarded by
 * their own shard's lock. */
static void give_to_spans_locked(gm_mcentral_t *c, void *head, uint32_t n, void **foreign) {
    void *obj = head;
    gm_span_t *empty = NULL;   /* for the heap, in one lock round trip */
    uint8_t shard = shard_of(c);
    for (uint32_t i = 0; i < n; i++) {
        void *next = gm_link_get(obj);
        gm_span_t *s = span_of_object(obj);
        if (s->shard != shard) {
            gm_link_set(obj, *foreign);
            *foreign = obj;
            obj = next;
            continue;
        }
        gm_span_put_locked(s, obj);
        c->out_objects--;
        if (s->nalloc == 0 && !gm_options.debug) {
            if (s->in_partial)
                partial_remove(c, s);
            s->next = empty;
            empty = s;
        } else if (!s->in_partial) {
            partial_push(c, s);
        }
        GM_CHECK(if (s->nalloc > 0 || gm_options.debug) check_span_locked(s));
        obj = next;
    }
    if (empty)
        gm_mheap_free_spans(empty);
}

/* Returns a list of objects of other shards' spans to them, one shard's lock
 * at a time (never two mcentral locks at once). */
static void give_foreign(uint8_t cls, void *list) {
    while (list) {
        uint8_t shard = span_of_object(list)->shard;
        gm_mcentral_t *c = &centrals[shard][cls];
        void *mine = NULL, *rest = NULL;
        uint32_t n = 0;
        for (void *obj = list, *next; obj; obj = next) {   /* split off this shard's */
            next = gm_link_get(obj);
            void **to = span_of_object(obj)->shard == shard ? &mine : &rest;
            gm_link_set(obj, *to);
            *to = obj;
            n += to == &mine;
        }
        void *none = NULL;
        gm_lock(&c->lock);
        give_to_spans_locked(c, mine, n, &none);
        unlock_central(c, cls);
        list = rest;
    }
}

/* Whether the stock has room for one more batch (its pointer array made if
 * need be). */
static bool stock_has_room(gm_mcentral_t *c, uint8_t cls) {
    if (c->nbatches >= batches_in(cls, PARKED_BYTES))
        return false;
    if (!c->stock)
        c->stock = gm_fixalloc_alloc(&stock_fa);
    return c->stock != NULL;
}

/* Puts b, a whole batch, on the stock (which has room), under a partly
 * taken top so that only the top is ever partial. */
static void park_locked(gm_mcentral_t *c, gm_batch_t *b) {
    uint32_t i = c->nbatches++;
    if (c->top_partial) {
        gm_batch_t *top = c->stock[i - 1];
        c->stock[i - 1] = b;
        b = top;
    }
    c->stock[i] = b;
}

/* The mcentral that takes back objects whose first is head: that of the
 * shard that carved its span, so that what a consumer thread frees is
 * parked where its producer refills. */
static gm_mcentral_t *central_of(void *head, uint8_t cls) {
    return &centrals[span_of_object(head)->shard][cls];
}

/* Gives n objects, a list from head, back to their spans. */
static void give_to_spans(gm_mcentral_t *c, uint8_t cls, void *head, uint32_t n) {
    void *foreign = NULL;
    give_to_spans_locked(c, head, n, &foreign);
    unlock_central(c, cls);
    give_foreign(cls, foreign);
}

void gm_mcentral_give_batch(uint8_t shard, uint8_t cls, gm_batch_t **bp) {
    (void)shard;
    gm_batch_t *b = *bp;
    void *head = b->obj[b->first];
    gm_mcentral_t *c = central_of(head, cls);
    bool whole = b->first == 0 && b->count == gm_transfer_count(cls);
    gm_lock(&c->lock);
    if (whole && stock_has_room(c, cls)) {
        *bp = c->stock[c->nbatches];   /* an empty buffer, or NULL */
        park_locked(c, b);
        unlock_central(c, cls);
        return;
    }
    give_to_spans(c, cls, head, b->count);
}

void gm_mcentral_give(uint8_t shard, uint8_t cls, void *head, void *tail, uint32_t n) {
    (void)shard;
    (void)tail;
    gm_mcentral_t *c = central_of(head, cls);
    bool whole = n == gm_transfer_count(cls);
    gm_lock(&c->lock);
    if (whole && stock_has_room(c, cls)) {
        gm_batch_t *b = c->stock[c->nbatches];
        if (!b)
            b = c->stock[c->nbatches] = gm_fixalloc_alloc(&batch_fa);
        if (b) {
            void *rest;
            b->first = 0;
            b->count = n;
            b->giver = NULL;
            gm_list_cut_into(head, n, &rest, b->obj);
            park_locked(c, b);
            unlock_central(c, cls);
            return;
        }
    }
    give_to_spans(c, cls, head, n);
}

void gm_mcentral_drain(uint8_t cls) {
    for (uint32_t shard = 0; shard < gm_shards; shard++) {
        gm_mcentral_t *c = &centrals[shard][cls];
        void *foreign = NULL;
        gm_lock(&c->lock);
        while (c->nbatches > 0) {
            gm_batch_t *b = c->stock[--c->nbatches];
            give_to_spans_locked(c, b->obj[b->first], b->count, &foreign);
        }
        c->top_partial = false;
        unlock_central(c, cls);
        give_foreign(cls, foreign);
    }
}

void gm_mcentral_stats(struct gm_central_stats *out) {
    out->out_bytes = out->batch_bytes = 0;
    for (uint32_t shard = 0; shard < gm_shards; shard++) {
        for (uint8_t cls = 1; cls < GM_NUM_CLASSES; cls++) {
            gm_mcentral_t *c = &centrals[shard][cls];
            gm_lock(&c->lock);
            out->out_bytes += c->out_objects * gm_class_size[cls];
            for (uint32_t i = 0; i < c->nbatches; i++)
                out->batch_bytes += (uint64_t)c->stock[i]->count * gm_class_size[cls];
            gm_unlock(&c->lock);
        }
    }
}

gm_lock_t *gm_mcentral_lockp(uint8_t shard, uint8_t cls) { return &centrals[shard][cls].lock; }

/* Shards as the CPUs this process may run on (rounded up to a power of two,
 * at most GM_SHARDS_MAX), read once with a raw system call: sysconf and
 * get_nprocs may allocate. */
void gm_mcentral_init(void) {
    uint32_t cpus = gm_os_cpu_count(), n = 1;
    while (n < cpus && n < GM_SHARDS_MAX)
        n *= 2;
    __atomic_store_n(&gm_shards, n, __ATOMIC_RELEASE);
}
