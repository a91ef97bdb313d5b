/*
 * hardening.h — how a free list links its blocks and marks them free: the
 * inline helpers every free list uses (thread caches, parked batches, and
 * the lists spans hand out), over the secret and the key report.c draws at
 * start-up.
 *
 * Links: a free block's first word holds the link to the next block, stored
 * XORed with a per-process secret: a use-after-free write cannot aim the
 * allocator at an address of its choosing without the secret, and a link
 * that does not decode to a 16-byte aligned address is reported
 * (gm_corrupt_link), not followed.
 *
 * Free marks: the second word of a free block holds its free mark,
 * gm_free_key plus the block's own address; free() of a block that holds its
 * mark is a double free.  Every path that hands a block out clears that
 * word.  The mark is bound to the address so that copying bytes cannot forge
 * it: freed blocks leave their marks behind in recycled memory, and a program
 * may copy such stale bytes into a live block without any fault of its own
 * (realloc of a block whose tail was never written, a struct copied with its
 * padding), but a mark copied from block X to block Y reads as X's, never as
 * Y's.  So a live block holds its own mark only if gomalloc wrote it there
 * when the block was freed and no hand-out has happened since: the report is
 * proof, barring a program that restores a saved image of freed memory to the
 * very address it was taken from.
 *
 * Under memcheck (a VALGRIND=1 build) the two words are marked defined where
 * gomalloc writes them, and the mark is never read.
 *
 * Locking: none here.  gm_secret and gm_free_key are written once, with
 * release, by gm_hardening_init before the first link is written (gm_init
 * and span.c call it), and only read after; a block's words are written by
 * whoever holds its list (the owner thread, or the lock that guards it).
 *
 * The files that link or check free blocks include this header (mcache.h for
 * the fast paths, mcentral.c, span.c, report.c, which defines the secret),
 * and so do the two that seed a random generator from the secret (guard.c,
 * profile.c); internal.h does not, so no other file sees the links.
 */
#ifndef GM_HARDENING_H
#define GM_HARDENING_H

#include "internal.h"

/* Hidden, as in internal.h: the fast paths load gm_secret and gm_free_key
 * directly, not through the GOT. */
#pragma GCC visibility push(hidden)

extern uintptr_t gm_secret, gm_free_key;   /* fixed before the first link */
void gm_hardening_init(void);
__attribute__((noreturn)) void gm_corrupt_link(const void *block);

#if GM_VALGRIND
#include <valgrind/memcheck.h>
/* gomalloc's own words in a block the program freed: not the program's. */
#define GM_VG_OWN_WORDS(block) VALGRIND_MAKE_MEM_DEFINED((block), 2 * sizeof(uintptr_t))
#else
#define GM_VG_OWN_WORDS(block) ((void)0)
#endif

static inline void *gm_link_get(const void *block) {
    uintptr_t next = *(const uintptr_t *)block ^ gm_secret;
    if (GM_UNLIKELY(next & 15))
        gm_corrupt_link(block);
    return (void *)next;
}
static inline void gm_link_set(void *block, const void *next) {
    GM_VG_OWN_WORDS(block);
    *(uintptr_t *)block = (uintptr_t)next ^ gm_secret;
}
/* The free mark of block, for the per-process key. */
static inline uintptr_t gm_free_mark(const void *block, uintptr_t key) {
    return key + (uintptr_t)block;
}
/* Marks a block free (for double-free detection) and links it.  The _key
 * forms take gm_free_key already loaded: a store through block could alias
 * it as far as the compiler knows, so the fast path reads it once. */
static inline void gm_block_free_link_key(void *block, const void *next, uintptr_t key) {
    GM_VG_OWN_WORDS(block);
    ((uintptr_t *)block)[0] = (uintptr_t)next ^ gm_secret;
    /* volatile keeps the two stores two plain moves: gcc would otherwise
     * pair them into a vector store that takes four instructions. */
    ((volatile uintptr_t *)block)[1] = gm_free_mark(block, key);
}
static inline void gm_block_free_link(void *block, const void *next) {
    gm_block_free_link_key(block, next, gm_free_key);
}
/* Under memcheck the mark is not read: memcheck reports double frees itself,
 * and a live block's second word is the program's (maybe undefined). */
static inline bool gm_block_is_free_key(const void *block, uintptr_t key) {
#if GM_VALGRIND
    (void)block;
    (void)key;
    return false;
#else
    return ((const uintptr_t *)block)[1] == gm_free_mark(block, key);
#endif
}
static inline bool gm_block_is_free(const void *block) {
    return gm_block_is_free_key(block, gm_free_key);
}
static inline void gm_block_handout(void *block) { ((uintptr_t *)block)[1] = 0; }

/* Cuts the first n (>= 1) blocks off the list at head (linked through word
 * 0): lists them in order in objs[], ends them at the last of them, and
 * leaves the rest of the list in *rest. */
static inline void gm_list_cut_into(void *head, uint32_t n, void **rest, void **objs) {
    objs[0] = head;
    for (uint32_t i = 1; i < n; i++)
        objs[i] = gm_link_get(objs[i - 1]);
    *rest = gm_link_get(objs[n - 1]);
    gm_link_set(objs[n - 1], NULL);
}

#pragma GCC visibility pop

#endif /* GM_HARDENING_H */
