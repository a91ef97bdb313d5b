/*
 * lock.h — gomalloc's mutex: one 32-bit word that names its holder.
 *
 * Every lock in gomalloc (scavenge, cache registry, one per mcentral, mheap,
 * fixalloc) is a gm_lock_t.  The word is 0 when free, else the holder's
 * thread id, with GM_LOCK_WAITERS set once a thread sleeps on it.  The id is
 * written by the same compare-and-swap that takes the lock and cleared by the
 * exchange that drops it, so "does this thread hold it?" has an exact answer
 * at every instruction.  That is what fork needs (malloc.c): a fork from a
 * signal handler that interrupted the thread's own malloc must not wait for
 * a lock the interrupted frame holds, and a pthread mutex records its owner
 * only after taking the lock, leaving a window in which the answer is wrong.
 *
 * Taking a lock: one compare-and-swap when free; else a short spin, then the
 * waiter sets GM_LOCK_WAITERS (without changing the holder's id) and sleeps
 * on the word with futex(2).  Dropping it: one exchange, and a wake-up only
 * if someone sleeps.  A thread that slept takes the lock with the waiters bit
 * set, since others may still sleep (Drepper's "futexes are tricky", mutex 2).
 *
 * Thread ids are small numbers handed out in order of first use, not kernel
 * tids: no system call, and a thread keeps its id in a fork child, where it
 * is the only thread.  Nothing here allocates.
 */
#ifndef GM_LOCK_H
#define GM_LOCK_H

#include <stdbool.h>
#include <stdint.h>

#include "config.h"

#pragma GCC visibility push(hidden)

typedef struct gm_lock {
    uint32_t word;   /* 0, or holder id | GM_LOCK_WAITERS if anyone sleeps */
} gm_lock_t;

#define GM_LOCK_INIT {0}
#define GM_LOCK_WAITERS 0x80000000u

extern __thread uint32_t gm_tls_lock_id __attribute__((tls_model("initial-exec")));
uint32_t gm_lock_id_slow(void);
void gm_lock_wait_slow(gm_lock_t *l, uint32_t me);
void gm_lock_wake_slow(gm_lock_t *l);

/* The calling thread's lock id (never 0). */
static inline uint32_t gm_lock_self(void) {
    uint32_t id = gm_tls_lock_id;
    return GM_LIKELY(id) ? id : gm_lock_id_slow();
}

static inline bool gm_trylock(gm_lock_t *l) {
    uint32_t expected = 0;
    return __atomic_compare_exchange_n(&l->word, &expected, gm_lock_self(), false,
                                       __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
}

static inline void gm_lock(gm_lock_t *l) {
    uint32_t me = gm_lock_self(), expected = 0;
    if (GM_UNLIKELY(!__atomic_compare_exchange_n(&l->word, &expected, me, false,
                                                 __ATOMIC_ACQUIRE, __ATOMIC_RELAXED)))
        gm_lock_wait_slow(l, me);
}

static inline void gm_unlock(gm_lock_t *l) {
    if (GM_UNLIKELY(__atomic_exchange_n(&l->word, 0, __ATOMIC_RELEASE) & GM_LOCK_WAITERS))
        gm_lock_wake_slow(l);
}

/* Whether the calling thread holds l: exact, even in a signal handler. */
static inline bool gm_lock_held(const gm_lock_t *l) {
    return (__atomic_load_n(&l->word, __ATOMIC_RELAXED) & ~GM_LOCK_WAITERS) == gm_lock_self();
}

/* Any holder's id (0: free). */
static inline uint32_t gm_lock_holder(const gm_lock_t *l) {
    return __atomic_load_n(&l->word, __ATOMIC_RELAXED) & ~GM_LOCK_WAITERS;
}

/* In a fork child: the lock is free again, whoever held it. */
static inline void gm_lock_reset(gm_lock_t *l) { __atomic_store_n(&l->word, 0, __ATOMIC_RELAXED); }

#pragma GCC visibility pop

#endif /* GM_LOCK_H */
