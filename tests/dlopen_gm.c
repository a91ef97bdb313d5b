/*
 * dlopen_gm.c — what dlopen of libgomalloc does (gomalloc(3), NOTES).
 *
 *   dlopen_gm PATH    PATH is the library to open
 *
 * It opens, and its gm_ functions work through dlsym, beside the C
 * library's malloc, which stays the process's malloc.  A thread that used
 * it (so it has a thread cache and gomalloc's exit destructor) outlives
 * dlclose, which leaves the library loaded (-z nodelete): the thread's exit,
 * a fork, and opening it again all still work.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <malloc.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int passed, failed;

static void check(int ok, const char *what) {
    printf("%s %s\n", ok ? "ok" : "FAIL", what);
    if (ok)
        passed++;
    else
        failed++;
}

static void *(*gm_malloc_p)(size_t);
static void (*gm_free_p)(void *);
static size_t (*gm_usable_size_p)(const void *);

static pthread_mutex_t gate = PTHREAD_MUTEX_INITIALIZER;

static void *worker(void *arg) {
    (void)arg;
    void *blocks[100];
    for (int i = 0; i < 100; i++)
        blocks[i] = gm_malloc_p((size_t)(i * 16 + 1));
    for (int i = 0; i < 100; i++)
        gm_free_p(blocks[i]);
    pthread_mutex_lock(&gate);   /* held by main until after dlclose */
    pthread_mutex_unlock(&gate);
    return NULL;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: dlopen_gm LIBRARY\n");
        return 2;
    }
    void *h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    check(h != NULL, "dlopen of libgomalloc succeeds");
    if (!h) {
        printf("dlopen: %s\n", dlerror());
        printf("%d passed, %d failed\n", passed, failed);
        return 1;
    }
    gm_malloc_p = (void *(*)(size_t))dlsym(h, "gm_malloc");
    gm_free_p = (void (*)(void *))dlsym(h, "gm_free");
    gm_usable_size_p = (size_t(*)(const void *))dlsym(h, "gm_usable_size");
    const char *(*version)(void) = (const char *(*)(void))dlsym(h, "gm_version");
    check(gm_malloc_p && gm_free_p && gm_usable_size_p && version, "dlsym finds the gm_ functions");
    if (!gm_malloc_p || !gm_free_p || !gm_usable_size_p || !version) {
        printf("%d passed, %d failed\n", passed, failed);
        return 1;
    }
    printf("version %s\n", version());

    char *p = gm_malloc_p(20);
    check(p && gm_usable_size_p(p) == 32, "gm_malloc hands out gomalloc blocks");
    gm_free_p(p);
    char *q = malloc(20);
    check(q && malloc_usable_size(q) == 24, "malloc stays the C library's (24 usable of 20)");
    free(q);

    pthread_mutex_lock(&gate);
    pthread_t t;
    pthread_create(&t, NULL, worker, NULL);
    usleep(20000);
    check(dlclose(h) == 0, "dlclose returns 0");
    pthread_mutex_unlock(&gate);
    pthread_join(t, NULL);
    check(1, "a thread that used gomalloc exits after dlclose");

    pid_t pid = fork();
    if (pid == 0)
        _exit(gm_usable_size_p(gm_malloc_p(100)) == 112 ? 0 : 1);
    int status = 0;
    waitpid(pid, &status, 0);
    check(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork after dlclose; the child allocates");

    h = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
    void *(*again)(size_t) = h ? (void *(*)(size_t))dlsym(h, "gm_malloc") : NULL;
    check(again == gm_malloc_p, "opened again, it is the same, still loaded, library");

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
