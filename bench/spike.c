/*
 * spike.c — a heap that spikes and drops: build about 700 MiB of small and
 * large blocks (every byte written), free everything, stay idle, repeat.
 * bench/spike.py samples the RSS of this process over time under each
 * allocator; the question is how fast, and how far, RSS comes back down
 * without any call to malloc_trim.
 *
 * Usage: spike CYCLES MIB IDLE_MS
 * Prints "free T" (CLOCK_MONOTONIC seconds) as each drop begins.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static unsigned long long rng = 88172645463325252ull;
static unsigned long long next_rand(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static void sleep_ms(long ms) {
    struct timespec t = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&t, NULL);
}

int main(int argc, char **argv) {
    int cycles = argc > 1 ? atoi(argv[1]) : 3;
    size_t target = (size_t)(argc > 2 ? atol(argv[2]) : 700) << 20;
    long idle_ms = argc > 3 ? atol(argv[3]) : 3000;
    size_t cap = target / 64;
    void **blocks = malloc(cap * sizeof *blocks);
    if (!blocks)
        return 1;
    for (int c = 0; c < cycles; c++) {
        size_t n = 0, bytes = 0;
        while (bytes < target && n < cap) {
            unsigned long long r = next_rand();
            size_t size = r % 10 == 0 ? 40000 + (r >> 8) % 200000 : 16 + (r >> 8) % 2000;
            blocks[n] = malloc(size);
            if (!blocks[n])
                return 1;
            memset(blocks[n], (int)c + 1, size);
            bytes += size;
            n++;
        }
        sleep_ms(300);   /* the peak, held long enough to be sampled */
        struct timespec t;
        clock_gettime(CLOCK_MONOTONIC, &t);
        printf("free %ld.%09ld\n", (long)t.tv_sec, t.tv_nsec);   /* for the sampler */
        fflush(stdout);
        for (size_t i = 0; i < n; i++)
            free(blocks[i]);
        sleep_ms(idle_ms);
    }
    free(blocks);
    return 0;
}
