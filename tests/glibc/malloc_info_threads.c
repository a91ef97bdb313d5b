/*
 * malloc_info_threads.c — malloc_info() works in a process whose threads
 * hold many blocks (glibc's tst-malloc_info, a smoke test): four threads each
 * build a list of 40-byte blocks (8 MiB per thread here, 128 MiB in glibc's
 * test) and wait; malloc_info(0, fp) is called then and again after they
 * freed everything and exited.  It must return 0 and write an XML document
 * (the content is the allocator's own; glibc's describes its arenas), and
 * malloc_info with options other than 0 must return EINVAL, as glibc's does.
 */
#include "check.h"

#include <malloc.h>

enum { THREADS = 4, PER_THREAD = 8 << 20 };

struct node {
    struct node *next;
    long payload[4];
};

static pthread_barrier_t barrier;

static void meet(void)
{
    int rc = pthread_barrier_wait(&barrier);
    gt_check(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD, "pthread_barrier_wait");
}

static void *hold_blocks(void *unused)
{
    (void)unused;
    struct node *head = NULL;
    for (size_t done = 0; done < PER_THREAD; done += sizeof *head) {
        struct node *n = malloc(sizeof *n);
        gt_check(n != NULL, "malloc(%zu) failed", sizeof *n);
        n->next = head;
        head = n;
    }
    meet(); /* the main thread reports now */
    meet();
    while (head != NULL) {
        struct node *next = head->next;
        free(head);
        head = next;
    }
    return NULL;
}

static void report(const char *when)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    gt_check(f != NULL, "open_memstream");
    int rc = malloc_info(0, f);
    fclose(f);
    gt_check(rc == 0, "malloc_info(0, fp) returned %d %s", rc, when);
    gt_check(len > 0 && strstr(text, "<malloc") != NULL,
             "malloc_info wrote no <malloc ...> document %s", when);
    free(text);
}

int main(void)
{
    pthread_t threads[THREADS];
    gt_check(pthread_barrier_init(&barrier, NULL, THREADS + 1) == 0, "pthread_barrier_init");
    for (int i = 0; i < THREADS; i++)
        gt_check(pthread_create(&threads[i], NULL, hold_blocks, NULL) == 0, "pthread_create");
    meet();
    report("while threads hold blocks");
    meet();
    for (int i = 0; i < THREADS; i++)
        pthread_join(threads[i], NULL);
    report("after the threads freed everything");

    FILE *devnull = fopen("/dev/null", "w");
    gt_check(devnull != NULL, "fopen(/dev/null)");
    int rc = malloc_info(1, devnull);
    gt_check(rc == EINVAL, "malloc_info(1, fp) returned %d, expected EINVAL", rc);
    fclose(devnull);
    return 0;
}
