/*
 * api_names.h — the black-box tests call gomalloc through its gm_* names.
 * Built with -DGM_TEST_LIBC_NAMES, the same tests call the C library's names
 * instead and link no gomalloc, so they can run under LD_PRELOAD.
 * GM_TEST_HAVE_STATS says whether gm_get_stats and friends are there.
 */
#ifndef GM_TEST_API_NAMES_H
#define GM_TEST_API_NAMES_H

#ifdef GM_TEST_LIBC_NAMES
#include <malloc.h>
#include <stdlib.h>
#define gm_malloc malloc
#define gm_free free
#define gm_calloc calloc
#define gm_realloc realloc
#define gm_reallocarray reallocarray
#define gm_aligned_alloc aligned_alloc
#define gm_posix_memalign posix_memalign
#define gm_memalign memalign
#define gm_valloc valloc
#define gm_pvalloc pvalloc
#define gm_usable_size(p) malloc_usable_size((void *)(p))
#define gm_release() malloc_trim(0)
#define GM_TEST_HAVE_STATS 0
#else
#include "gomalloc.h"
#define GM_TEST_HAVE_STATS 1
#endif

#endif
