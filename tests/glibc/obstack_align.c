/*
 * obstack_align.c — obstacks, whose chunks come from malloc, honour every
 * alignment mask (glibc's tst-obstack): for each alignment from 2 to 64
 * bytes, an obstack whose chunk allocator is malloc hands out fifteen
 * 1000-byte objects, each aligned, and is then freed whole.  The objects are
 * filled to show that the chunks are usable memory.
 */
#include "check.h"

#include <obstack.h>

#define obstack_chunk_alloc malloc
#define obstack_chunk_free free

enum { OBJECTS = 15, OBJECT_SIZE = 1000 };

static void check_alignment(size_t align)
{
    struct obstack obs;
    gt_check(obstack_init(&obs), "obstack_init failed");
    obstack_alignment_mask(&obs) = (int)(align - 1);
    /* An empty object first, so the mask applies from the start. */
    obstack_finish(&obs);
    for (int i = 0; i < OBJECTS; i++) {
        char *obj = obstack_alloc(&obs, OBJECT_SIZE);
        gt_check(obj != NULL, "obstack_alloc failed");
        gt_check((uintptr_t)obj % align == 0, "obstack object %d at %p is not %zu-byte aligned", i,
                 (void *)obj, align);
        memset(obj, i, OBJECT_SIZE);
    }
    obstack_free(&obs, NULL);
}

int main(void)
{
    for (size_t align = 2; align <= 64; align *= 2)
        check_alignment(align);
    return 0;
}
