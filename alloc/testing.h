/*
 * testing.h — hooks for the tests only, as Go keeps its test-only access in
 * export_test.go: what they do (failing the OS on purpose, forgetting
 * placement records) would be wrong in a program, so no file of the library
 * includes this header.  The functions are compiled into the core (a test
 * links build/libgomalloc-core.a); only their declarations live here.
 */
#ifndef GM_TESTING_H
#define GM_TESTING_H

#include <stdbool.h>

#pragma GCC visibility push(hidden)

/* os_linux.c: the Nth mapping call (reserve, map, commit, move) from now
 * fails as if the kernel refused (0 = off). */
void gm_os_fail_after(unsigned long calls);

/* pageplace.c: drops the close-fit records, so placement is first fit until
 * the next free. */
void gm_place_forget_fits(void);

/* cachebound.c: the cache budget all live threads have earned (bytes). */
#include <stddef.h>
size_t gm_cachebound_earned_total(void);

/* scavenger.c: whether the background thread was started (or tried). */
bool gm_scavenger_running(void);

#pragma GCC visibility pop

#endif /* GM_TESTING_H */
