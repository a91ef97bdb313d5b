/*
 * valgrind_client.c — a deliberately buggy program, statically linked with a
 * libgomalloc.a built with VALGRIND=1, for tests/valgrind_client.sh: memcheck
 * must see gomalloc's blocks and report each bug below.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static volatile char sink;

int main(void) {
    char *overrun = malloc(20);
    memset(overrun, 1, 20);
    overrun[20] = 2;                 /* write 0 bytes after a block of size 20 */
    free(overrun);

    char *freed = malloc(64);
    memset(freed, 3, 64);
    free(freed);
    sink = freed[32];                /* read inside a freed block */

    char *leaked = malloc(100);      /* never freed */
    memset(leaked, 4, 100);
    leaked = NULL;

    char *big = malloc(100000);
    big[100000] = 5;                 /* past a large block */
    free(big);

    char *fine = calloc(10, 10);
    sink = fine[99];
    fine = realloc(fine, 200);
    free(fine);
    printf("done\n");
    return 0;
}
