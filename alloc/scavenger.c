/*
 * scavenger.c — gives free pages back to the OS in the background (Go's
 * scavenger), so RSS comes down after a spike without any call.
 *
 * Decay: free memory goes back once it has idled for GOMALLOC_DECAY_MS
 * (1 s), not as soon as there is more of it than some share of the heap.  A
 * program that frees a block and allocates one like it a few milliseconds
 * later (a buffer replaced, a batch of work redone) must find the pages still
 * there: giving them back at once and faulting them in again cost
 * bench/largechurn three to five times tcmalloc's time.  Idleness is judged
 * per page: the mheap notes when each page was freed, and a release step
 * gives back only the free pages of a 2 MiB chunk that have idled for the
 * decay time (Go's scavenge index skips chunks allocated from lately, which
 * a chunk that small spans keep busy would never leave); cached huge
 * reservations and huge slack likewise.  Among those, the highest chunks go
 * first (allocation is
 * lowest-first), and within a tick free runs of at least 64 KiB before
 * shorter holes (a short hole is soon a span again); chunks at least 96.9% in
 * use are left alone for their huge page.  GOMALLOC_RETAIN_PERCENT (5%) of
 * the memory in use stays backed however long it idles.  jemalloc's decay
 * spreads purging over ten seconds along a curve; one step at a shorter age
 * keeps what the program reuses and still returns a freed spike within
 * about two seconds, and a program that wants it sooner calls malloc_trim.
 *
 * Pace: at most 2 ms of work per 20 ms tick, a tenth of one CPU, while there
 * is idle memory to give back, one tick per 100 ms otherwise.  Giving back
 * 700 MiB costs about 65 ms of kernel time, so a spike is returned within
 * about a second of its decay.
 *
 * It starts lazily: once the heap has committed 32 MiB (gm_heap_committed,
 * which the mheap keeps and the slow paths read: gm_scavenger_check), the
 * next allocation or free slow path starts the thread (with no gomalloc
 * lock held: pthread_create may allocate).  A short program never
 * starts it.  In a fork child the thread is gone; the child starts its own
 * the same way.  The thread blocks every signal and never allocates.
 *
 * Locking: scavenge_lock serialises release steps (the background thread's
 * and malloc_trim's) and is the first lock in gomalloc's order, so the fork
 * handlers can wait out a step whose pages are out of the free set.
 */
#define _GNU_SOURCE
#include <signal.h>
#include <time.h>

#include "scavenger.h"

#define START_BYTES ((uint64_t)32 << 20)
#define BUSY_TICK_NS (20 * 1000 * 1000L)
#define IDLE_TICK_NS (100 * 1000 * 1000L)
#define WORK_PER_TICK_NS (2 * 1000 * 1000L)
#define EPOCH_NS (1000 * 1000 * 1000L)
#define LONG_RUN_PAGES 8   /* 64 KiB */

uint64_t gm_scavenger_start_at = START_BYTES;   /* atomic */
uint32_t gm_scavenger_epoch;       /* atomic */
static int started;                /* atomic: the thread was created (or tried) */
static bool thread_exists;         /* atomic: set before the thread is created */
static gm_lock_t scavenge_lock = GM_LOCK_INIT;

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void sleep_ns(long ns) {
    struct timespec t = {.tv_sec = 0, .tv_nsec = ns};
    while (nanosleep(&t, &t) != 0)
        ;
}

static uint64_t retained_bytes(uint64_t in_use) {
    return in_use / 100 * gm_options.retain_percent;
}

/* Releases pages idle for the decay time, long runs first, while more than
 * the retained share is free and backed and the tick's budget lasts; returns
 * whether it released anything. */
static bool scavenge_tick(void) {
    int64_t start = now_ns();
    uint32_t idle_ms = gm_options.decay_ms;
    uint64_t in_use, free_backed;
    bool worked = false;
    uint32_t min_run = LONG_RUN_PAGES;
    gm_mheap_usage(&in_use, &free_backed);
    while (free_backed > retained_bytes(in_use) && now_ns() - start <= WORK_PER_TICK_NS) {
        gm_lock(&scavenge_lock);
        size_t released = gm_mheap_release_step(false, idle_ms, min_run);
        gm_unlock(&scavenge_lock);
        if (released == 0 && min_run > 1) {
            min_run = 1;   /* no long runs left: the short ones go too */
            continue;
        }
        if (released == 0)
            break;   /* only recent or dense chunks left */
        worked = true;
        gm_mheap_usage(&in_use, &free_backed);
    }
    return worked;
}

/* Once a second: arenas (but the lowest) whose pages have all been given
 * back and idled for the decay time are unmapped, so the process's virtual
 * size falls after a spike as its RSS does, and the address space serves
 * later reservations.  The cost is paid if the heap grows again: a
 * reservation, and a fresh arena's metadata zeroed (about 140 KB). */
static void unmap_unused_arenas(void) {
    uint32_t idle_ms = gm_options.decay_ms ? gm_options.decay_ms : 1;
    gm_lock(&scavenge_lock);
    gm_mheap_unmap_unused(idle_ms);
    gm_unlock(&scavenge_lock);
}

static void *scavenger_main(void *arg) {
    (void)arg;
    int64_t epoch_start = now_ns();
    for (;;) {
        bool busy = scavenge_tick();
        if (now_ns() - epoch_start > EPOCH_NS) {
            unmap_unused_arenas();
            __atomic_fetch_add(&gm_scavenger_epoch, 1, __ATOMIC_RELAXED);
            epoch_start = now_ns();
        }
        sleep_ns(busy ? BUSY_TICK_NS : IDLE_TICK_NS);
    }
    return NULL;
}

void gm_scavenger_start_slow(void) {
    if (!gm_options.scavenge || __atomic_load_n(&started, __ATOMIC_RELAXED))
        return;
    int expected = 0;
    if (!__atomic_compare_exchange_n(&started, &expected, 1, false, __ATOMIC_ACQ_REL,
                                     __ATOMIC_RELAXED))
        return;
    __atomic_store_n(&gm_scavenger_start_at, UINT64_MAX, __ATOMIC_RELAXED);
    pthread_attr_t attr;
    sigset_t all, old;
    pthread_t thread;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, 64 << 10);
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);   /* the thread inherits it */
    /* Set first: whenever the thread exists, fork sees it (malloc.c). */
    __atomic_store_n(&thread_exists, true, __ATOMIC_RELEASE);
    if (pthread_create(&thread, &attr, scavenger_main, NULL) != 0) {
        __atomic_store_n(&thread_exists, false, __ATOMIC_RELEASE);
        gm_options.scavenge = false;   /* no retry storm; trim still works */
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_attr_destroy(&attr);
}

size_t gm_scavenger_release_all(void) {
    gm_lock(&scavenge_lock);
    size_t released = gm_mheap_release_all();
    gm_unlock(&scavenge_lock);
    return released;
}

bool gm_scavenger_running(void) { return __atomic_load_n(&started, __ATOMIC_RELAXED) != 0; }
bool gm_scavenger_thread_exists(void) { return __atomic_load_n(&thread_exists, __ATOMIC_ACQUIRE); }
gm_lock_t *gm_scavenger_lockp(void) { return &scavenge_lock; }

/* The child has no scavenger thread: it wants one if the heap is big.  No
 * lock is taken: the thread that forked may hold any of them. */
void gm_scavenger_after_fork_child(void) {
    __atomic_store_n(&started, 0, __ATOMIC_RELAXED);
    __atomic_store_n(&thread_exists, false, __ATOMIC_RELAXED);
    __atomic_store_n(&gm_scavenger_start_at, START_BYTES, __ATOMIC_RELAXED);
}
