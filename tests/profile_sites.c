/*
 * profile_sites.c — a program whose heap profile is known (tests/profile.sh):
 * hold_big keeps 48 MiB in 1000-byte blocks, hold_small 6 MiB in 3000-byte
 * blocks, churn allocates 32 MiB in 4000-byte blocks and frees them, and
 * hold_large keeps 8 MiB in 256 KiB blocks.  Linked with -lgomalloc and run
 * with GOMALLOC_PROFILE (and a low GOMALLOC_PROFILE_RATE, so the estimates
 * are tight); pprof must rank the sites and give their in-use bytes within
 * 10%, and show churn's blocks as allocated, not in use.
 *
 * Usage: profile_sites [fork | threads] [PATH]  (PATH: gm_profile_write there)
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gomalloc.h"

void *keep[200000];   /* global: the compiler may not drop the mallocs */
size_t nkeep;

static __attribute__((noinline)) void hold_big(void) {
    for (int i = 0; i < 48 * 1024 * 1024 / 1000; i++)
        keep[nkeep++] = malloc(1000);
}

static __attribute__((noinline)) void hold_small(void) {
    for (int i = 0; i < 6 * 1024 * 1024 / 3000; i++)
        keep[nkeep++] = malloc(3000);
}

static __attribute__((noinline)) void churn(void) {
    void *p[256];
    for (int round = 0; round < 32; round++) {
        for (int i = 0; i < 256; i++)
            p[i] = malloc(4000);
        for (int i = 0; i < 256; i++)
            free(p[i]);
    }
}

static __attribute__((noinline)) void hold_large(void) {
    for (int i = 0; i < 32; i++)
        keep[nkeep++] = malloc(256 << 10);
}

static void *run_sites(void *arg) {
    (void)arg;
    hold_big();
    hold_small();
    churn();
    hold_large();
    return NULL;
}

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "";
    const char *path = argc > 2 ? argv[2] : NULL;
    if (!strcmp(mode, "threads")) {
        pthread_t t[4];
        for (int i = 0; i < 4; i++)   /* the sites run in one; three more churn beside it */
            pthread_create(&t[i], NULL, i ? (void *(*)(void *))churn : run_sites, NULL);
        for (int i = 0; i < 4; i++)
            pthread_join(t[i], NULL);
    } else {
        run_sites(NULL);
    }
    if (!strcmp(mode, "fork")) {   /* the child writes the profile it inherited */
        pid_t pid = fork();
        if (pid == 0)
            _exit(path && gm_profile_write(path) == 0 ? 0 : 1);
        int status;
        waitpid(pid, &status, 0);
        return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
    }
    if (path && gm_profile_write(path) != 0)
        return 1;
    return 0;
}
