/*
 * scavenger.h — the background scavenger's interface (scavenger.c), for the
 * layers above it: the API's slow paths start it (gm_scavenger_check) and
 * malloc_trim and fork call it; thread caches read its epoch.
 *
 * Apart from internal.h, which every layer includes, so that the page heap
 * and the layers under the scavenger do not see (and cannot call) what sits
 * above them.  Locking: see scavenger.c; the globals here are read with
 * relaxed atomic loads.
 */
#ifndef GM_SCAVENGER_H
#define GM_SCAVENGER_H

#include "internal.h"

#pragma GCC visibility push(hidden)

/* The heap's committed bytes (gm_heap_committed) at which the API's slow
 * paths start the background scavenger: 32 MiB until it is started, then
 * UINT64_MAX (again 32 MiB in a fork child, which has no scavenger). */
extern uint64_t gm_scavenger_start_at;
/* Advances about once a second while the scavenger runs; thread caches trim
 * lists they did not need when they see it change. */
extern uint32_t gm_scavenger_epoch;
void gm_scavenger_start_slow(void);
static inline void gm_scavenger_check(void) {
    if (GM_UNLIKELY(__atomic_load_n(&gm_heap_committed, __ATOMIC_RELAXED) >=
                    __atomic_load_n(&gm_scavenger_start_at, __ATOMIC_RELAXED)))
        gm_scavenger_start_slow();
}
/* Releases every free page now (malloc_trim); returns the bytes released. */
size_t gm_scavenger_release_all(void);
/* Whether the background thread exists (it never takes a lock while it
 * holds the mheap or fixalloc lock; see malloc.c, fork). */
bool gm_scavenger_thread_exists(void);
gm_lock_t *gm_scavenger_lockp(void);   /* for fork (malloc.c) */
void gm_scavenger_after_fork_child(void);

#pragma GCC visibility pop

#endif /* GM_SCAVENGER_H */
