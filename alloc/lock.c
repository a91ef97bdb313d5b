/*
 * lock.c — the slow paths of gm_lock_t (see lock.h): handing out thread ids,
 * spinning, sleeping and waking with futex(2).
 *
 * Spinning first pays where the holder is running on another core and will
 * drop the lock within a few hundred cycles, which is the common case for
 * gomalloc's short critical sections (a batch moved, a span carved); a holder
 * that does not is waited for in the kernel, so a preempted holder costs a
 * sleep, not a core burnt.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <stdbool.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "lock.h"

#define SPINS 128

__thread uint32_t gm_tls_lock_id __attribute__((tls_model("initial-exec")));
static uint32_t last_id;   /* atomic */

uint32_t gm_lock_id_slow(void) {
    uint32_t id;
    do   /* ids live in the low 31 bits; 0 means free */
        id = __atomic_add_fetch(&last_id, 1, __ATOMIC_RELAXED) & ~GM_LOCK_WAITERS;
    while (id == 0);
    gm_tls_lock_id = id;
    return id;
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __asm__ __volatile__("pause");
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* errno is the program's: free() and most paths must leave it alone. */
static void futex_wait(uint32_t *word, uint32_t expected) {
    int saved = errno;
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
    errno = saved;
}

void gm_lock_wait_slow(gm_lock_t *l, uint32_t me) {
    for (int i = 0; i < SPINS; i++) {
        cpu_relax();
        uint32_t expected = 0;
        if (__atomic_load_n(&l->word, __ATOMIC_RELAXED) == 0 &&
            __atomic_compare_exchange_n(&l->word, &expected, me, false, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
    }
    bool slept = false;
    for (;;) {
        uint32_t seen = __atomic_load_n(&l->word, __ATOMIC_RELAXED);
        if (seen == 0) {
            /* After a sleep others may sleep too: keep the bit, so that our
             * unlock wakes one of them. */
            uint32_t mine = slept ? me | GM_LOCK_WAITERS : me;
            if (__atomic_compare_exchange_n(&l->word, &seen, mine, false, __ATOMIC_ACQUIRE,
                                            __ATOMIC_RELAXED))
                return;
            continue;
        }
        if (!(seen & GM_LOCK_WAITERS) &&
            !__atomic_compare_exchange_n(&l->word, &seen, seen | GM_LOCK_WAITERS, false,
                                         __ATOMIC_RELAXED, __ATOMIC_RELAXED))
            continue;   /* it changed hands: look again */
        futex_wait(&l->word, seen | GM_LOCK_WAITERS);
        slept = true;
    }
}

void gm_lock_wake_slow(gm_lock_t *l) {
    int saved = errno;
    syscall(SYS_futex, &l->word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
    errno = saved;
}
