/*
 * stress_threads.c — many threads allocating, handing blocks to each other and
 * freeing what others allocated, with every block's contents checked.
 *
 * Each block is filled with a pattern derived from a tag (owner thread and a
 * sequence number) and its own address; whoever frees or reallocates a block
 * first checks the whole pattern, so a block handed out twice, written by a
 * neighbour, or moved without its contents shows up as a failure.  Worker
 * threads never call cmocka: they count failures, and the test asserts the
 * count is zero after joining them.
 *
 * Seeds are fixed.  GM_STRESS_SCALE (a float, default 1) multiplies every
 * iteration count: valgrind and TSan runs use e.g. 0.05.
 *
 * Built by default against gm_malloc, ...; with -DGM_TEST_LIBC_NAMES the same
 * code calls malloc, ... and is meant to run under LD_PRELOAD.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "api_names.h"
#include "stress_util.h"


/* ---- helpers: sizes and patterns (the rest in stress_util.h) ------------- */

/* 16 B - 64 KiB, mostly small, about one in a thousand near 1 MiB. */
static size_t pick_size(uint64_t *rng)
{
    uint64_t r = rng_next(rng);
    unsigned x = (unsigned)(r % 1000);
    r >>= 10;
    if (x == 0)
        return 1 * MiB - 32 * KiB + (size_t)(r % (64 * KiB));
    if (x < 700)
        return 16 + (size_t)(r % 497);
    if (x < 950)
        return 512 + (size_t)(r % (8 * KiB));
    return 8 * KiB + (size_t)(r % (56 * KiB + 1));
}

static uint64_t pattern_word(uint64_t tag, size_t i)
{
    return (tag + i) * 0x9E3779B97F4A7C15ull ^ (tag >> 29);
}

/* Word 0 also carries the block's address, so a block that shows up at a
 * second address (or under a second owner) fails the check. */
static void pattern_fill(void *p, size_t n, uint64_t tag)
{
    unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w = pattern_word(tag, i / 8) ^ (i == 0 ? (uintptr_t)p : 0);
        memcpy(b + i, &w, 8);
    }
    if (i < n) {
        uint64_t w = pattern_word(tag, i / 8) ^ (i == 0 ? (uintptr_t)p : 0);
        memcpy(b + i, &w, n - i);
    }
}

/* Checks the first n bytes of p against the pattern written at address addr. */
static int pattern_check(const void *p, size_t n, uint64_t tag, uintptr_t addr)
{
    const unsigned char *b = p;
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w, want = pattern_word(tag, i / 8) ^ (i == 0 ? addr : 0);
        memcpy(&w, b + i, 8);
        if (w != want)
            return 0;
    }
    if (i < n) {
        uint64_t w = pattern_word(tag, i / 8) ^ (i == 0 ? addr : 0);
        return memcmp(b + i, &w, n - i) == 0;
    }
    return 1;
}

static int reset_failures(void **state)
{
    (void)state;
    clear_failures();
    return 0;
}

/* A block as it travels between threads. */
struct block {
    void *p;
    size_t n;
    uint64_t tag;
};

static int block_new(struct block *b, size_t n, uint64_t tag, int zeroed)
{
    b->p = zeroed ? gm_calloc(1, n) : gm_malloc(n);
    b->n = n;
    b->tag = tag;
    if (b->p == NULL) {
        note_failure("allocation returned NULL", NULL, n);
        return 0;
    }
    if (((uintptr_t)b->p & 15) != 0)
        note_failure("block not 16-byte aligned", b->p, n);
    if (gm_usable_size(b->p) < n)
        note_failure("usable size below request", b->p, n);
    if (zeroed) {
        const unsigned char *c = b->p;
        for (size_t i = 0; i < n; i++)
            if (c[i] != 0) {
                note_failure("calloc block not zero", b->p, n);
                break;
            }
    }
    pattern_fill(b->p, n, tag);
    return 1;
}

static void block_check_free(struct block *b)
{
    if (b->p == NULL)
        return;
    if (!pattern_check(b->p, b->n, b->tag, (uintptr_t)b->p))
        note_failure("pattern overwritten before free", b->p, b->n);
    gm_free(b->p);
    b->p = NULL;
}

/* Reallocates b to n bytes: the common prefix must survive the move. */
static void block_realloc(struct block *b, size_t n, uint64_t tag)
{
    uintptr_t old = (uintptr_t)b->p;
    size_t keep = b->n < n ? b->n : n;
    if (!pattern_check(b->p, b->n, b->tag, old))
        note_failure("pattern overwritten before realloc", b->p, b->n);
    void *q = gm_realloc(b->p, n);
    if (q == NULL) {
        note_failure("realloc returned NULL", b->p, n);
        gm_free(b->p);
        b->p = NULL;
        return;
    }
    if (!pattern_check(q, keep, b->tag, old))
        note_failure("realloc lost contents", q, keep);
    b->p = q;
    b->n = n;
    b->tag = tag;
    pattern_fill(q, n, tag);
}

/* ---- test 1: exchange slots ----------------------------------------------- */

enum { EX_THREADS = 8, EX_SLOTS = 1024, EX_LOCAL = 32 };

struct slot {
    pthread_mutex_t lock;
    struct block b; /* guarded by lock; b.p == NULL when empty */
};

static struct slot slots[EX_SLOTS];
static long ex_iterations;

/* Puts b into slot k and returns in *old what was there. */
static void slot_swap(int k, struct block *b, struct block *old)
{
    pthread_mutex_lock(&slots[k].lock);
    *old = slots[k].b;
    slots[k].b = *b;
    pthread_mutex_unlock(&slots[k].lock);
}

static void *exchange_worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t rng = 0x2545F4914F6CDD1Dull * (id + 1);
    uint64_t seq = (uint64_t)id << 48;
    struct block local[EX_LOCAL];
    memset(local, 0, sizeof local);

    for (long it = 0; it < ex_iterations; it++) {
        unsigned op = (unsigned)(rng_next(&rng) % 100);
        int k = (int)(rng_next(&rng) % EX_SLOTS);
        struct block b = { 0 }, old;
        if (op < 45) { /* publish a new block, free what it displaces */
            if (!block_new(&b, pick_size(&rng), ++seq, op < 5))
                continue;
            slot_swap(k, &b, &old);
            block_check_free(&old);
        } else if (op < 65) { /* take, realloc, put back */
            slot_swap(k, &b, &old);
            if (old.p == NULL)
                continue;
            block_realloc(&old, pick_size(&rng), ++seq);
            if (old.p == NULL)
                continue;
            slot_swap(k, &old, &b);
            block_check_free(&b);
        } else if (op < 80) { /* take and free: usually another thread's */
            slot_swap(k, &b, &old);
            block_check_free(&old);
        } else { /* thread-local churn */
            struct block *l = &local[k % EX_LOCAL];
            block_check_free(l);
            block_new(l, pick_size(&rng), ++seq, 0);
        }
    }
    for (int i = 0; i < EX_LOCAL; i++)
        block_check_free(&local[i]);
    return NULL;
}

static void run_threads(void *(*fn)(void *), int n)
{
    pthread_t t[64];
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_create(&t[i], NULL, fn, (void *)(uintptr_t)i), 0);
    for (int i = 0; i < n; i++)
        assert_int_equal(pthread_join(t[i], NULL), 0);
}

static void test_threads_exchange_cross_free(void **state)
{
    (void)state;
    ex_iterations = scaled(150000);
    for (int i = 0; i < EX_SLOTS; i++) {
        pthread_mutex_init(&slots[i].lock, NULL);
        slots[i].b.p = NULL;
    }
    run_threads(exchange_worker, EX_THREADS);
    for (int i = 0; i < EX_SLOTS; i++) { /* the main thread frees the rest */
        block_check_free(&slots[i].b);
        pthread_mutex_destroy(&slots[i].lock);
    }
    assert_no_failures();
}

/* ---- test 2: producers and consumers --------------------------------------- */

enum { PC_PAIRS = 4, PC_CAP = 512 };

static struct {
    pthread_mutex_t lock;
    pthread_cond_t not_empty, not_full;
    struct block q[PC_CAP];
    int head, count;
} pc = { PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, PTHREAD_COND_INITIALIZER,
         { { 0 } }, 0, 0 };
static long pc_items;

static void pc_push(const struct block *b)
{
    pthread_mutex_lock(&pc.lock);
    while (pc.count == PC_CAP)
        pthread_cond_wait(&pc.not_full, &pc.lock);
    pc.q[(pc.head + pc.count++) % PC_CAP] = *b;
    pthread_cond_signal(&pc.not_empty);
    pthread_mutex_unlock(&pc.lock);
}

static struct block pc_pop(void)
{
    pthread_mutex_lock(&pc.lock);
    while (pc.count == 0)
        pthread_cond_wait(&pc.not_empty, &pc.lock);
    struct block b = pc.q[pc.head];
    pc.head = (pc.head + 1) % PC_CAP;
    pc.count--;
    pthread_cond_signal(&pc.not_full);
    pthread_mutex_unlock(&pc.lock);
    return b;
}

static void *producer(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    uint64_t rng = 0x9E3779B97F4A7C15ull * (id + 11);
    uint64_t seq = (uint64_t)(id + 100) << 48;
    for (long i = 0; i < pc_items; i++) {
        struct block b;
        if (block_new(&b, pick_size(&rng), ++seq, (i & 15) == 0))
            pc_push(&b);
    }
    return NULL;
}

static void *consumer(void *arg)
{
    (void)arg;
    for (;;) {
        struct block b = pc_pop();
        if (b.p == NULL) /* end marker */
            return NULL;
        block_check_free(&b);
    }
}

static void test_threads_producer_consumer(void **state)
{
    (void)state;
    pthread_t prod[PC_PAIRS], cons[PC_PAIRS];
    pc_items = scaled(80000);
    for (int i = 0; i < PC_PAIRS; i++) {
        assert_int_equal(pthread_create(&prod[i], NULL, producer, (void *)(uintptr_t)i), 0);
        assert_int_equal(pthread_create(&cons[i], NULL, consumer, NULL), 0);
    }
    for (int i = 0; i < PC_PAIRS; i++)
        assert_int_equal(pthread_join(prod[i], NULL), 0);
    struct block end = { 0 };
    for (int i = 0; i < PC_PAIRS; i++)
        pc_push(&end);
    for (int i = 0; i < PC_PAIRS; i++)
        assert_int_equal(pthread_join(cons[i], NULL), 0);
    assert_no_failures();
}

/* ---- test 3: whole batches freed by the next thread in a ring ---------------- */

enum { RING_THREADS = 8, RING_BATCH = 2000 };

struct mailbox {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    struct block *batch; /* guarded by lock; NULL when empty */
};

static struct mailbox ring[RING_THREADS];
static long ring_rounds;

static void mailbox_put(struct mailbox *m, struct block *batch)
{
    pthread_mutex_lock(&m->lock);
    while (m->batch != NULL)
        pthread_cond_wait(&m->cond, &m->lock);
    m->batch = batch;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
}

static struct block *mailbox_take(struct mailbox *m)
{
    pthread_mutex_lock(&m->lock);
    while (m->batch == NULL)
        pthread_cond_wait(&m->cond, &m->lock);
    struct block *batch = m->batch;
    m->batch = NULL;
    pthread_cond_broadcast(&m->cond);
    pthread_mutex_unlock(&m->lock);
    return batch;
}

static void *ring_worker(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;
    static const size_t sizes[] = { 16, 32, 48, 64, 96, 128, 256, 512, 1024, 3000, 8192 };
    uint64_t seq = (uint64_t)(id + 200) << 48;
    for (long r = 0; r < ring_rounds; r++) {
        /* One size per batch: whole spans fill up here and empty elsewhere. */
        size_t n = sizes[(id + (unsigned long)r) % (sizeof sizes / sizeof sizes[0])];
        struct block *batch = gm_malloc(RING_BATCH * sizeof *batch);
        if (batch == NULL) {
            note_failure("batch array allocation returned NULL", NULL, 0);
            return NULL;
        }
        for (int i = 0; i < RING_BATCH; i++)
            if (!block_new(&batch[i], n, ++seq, 0))
                batch[i].p = NULL;
        mailbox_put(&ring[(id + 1) % RING_THREADS], batch);
        struct block *theirs = mailbox_take(&ring[id]);
        for (int i = RING_BATCH - 1; i >= 0; i--)
            block_check_free(&theirs[i]);
        gm_free(theirs);
    }
    return NULL;
}

static void test_threads_ring_batches_freed_remotely(void **state)
{
    (void)state;
    ring_rounds = scaled(60);
    for (int i = 0; i < RING_THREADS; i++) {
        pthread_mutex_init(&ring[i].lock, NULL);
        pthread_cond_init(&ring[i].cond, NULL);
        ring[i].batch = NULL;
    }
    run_threads(ring_worker, RING_THREADS);
    for (int i = 0; i < RING_THREADS; i++) {
        assert_null(ring[i].batch);
        pthread_mutex_destroy(&ring[i].lock);
        pthread_cond_destroy(&ring[i].cond);
    }
    assert_no_failures();
}

int main(void)
{
    /* A deadlock must fail the run, not hang it. */
    alarm((unsigned)(300 * (gm_test_scale() < 1 ? 1 : gm_test_scale())));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_threads_exchange_cross_free, reset_failures),
        cmocka_unit_test_setup(test_threads_producer_consumer, reset_failures),
        cmocka_unit_test_setup(test_threads_ring_batches_freed_remotely, reset_failures),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
