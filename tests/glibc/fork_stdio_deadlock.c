/*
 * fork_stdio_deadlock.c — fork() must not deadlock against stdio (glibc's
 * tst-malloc-fork-deadlock, bug 19431).
 *
 * Threads fork in a loop while others read a 50,000-byte line with getline
 * (which grows its buffer with realloc while holding the stream's lock) and
 * one thread runs fflush(NULL) (which takes the list of all streams, then each
 * stream's lock).  If fork took the allocator's locks before stdio's, a forker
 * holding the allocator would wait for the stream list, the flusher holding
 * the list would wait for a stream, and the reader holding the stream would
 * wait for the allocator: a cycle.
 *
 * As in glibc's test the threads run for a fixed time, not a fixed number of
 * forks: fflush(NULL) in a tight loop takes the stream list so often that
 * glibc's own fork waits long for it (starved, not deadlocked).  Then every
 * thread must finish within GT_STALL_SECONDS; one that does not is stuck.
 */
#include "check.h"

#include <malloc.h>

enum { FORKERS = 2, READERS = 4, RUN_MS = 200, LINE_LENGTH = 50000, CHILD_CODE = 17 };

static char file_name[] = "/tmp/gt-fork-stdio-XXXXXX";
static volatile long forks_done;
static volatile int stop;

static int stopping(void)
{
    return __atomic_load_n(&stop, __ATOMIC_RELAXED);
}

static void fork_once(void)
{
    pid_t pid = fork();
    gt_check(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        _exit(CHILD_CODE);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        gt_check(errno == EINTR, "waitpid: %s", strerror(errno));
    gt_check(WIFEXITED(status) && WEXITSTATUS(status) == CHILD_CODE,
             "child ended with status 0x%x, expected exit %d", (unsigned)status, CHILD_CODE);
    __atomic_add_fetch(&forks_done, 1, __ATOMIC_RELAXED);
}

/* At least one fork each, even if the others kept the stream list busy for
 * the whole run. */
static void *forker(void *unused)
{
    (void)unused;
    do
        fork_once();
    while (!stopping());
    return NULL;
}

/* getline from the start each time, into a fresh buffer, so realloc runs
 * under the stream's lock again and again. */
static void *reader(void *stream)
{
    FILE *f = stream;
    while (!stopping()) {
        rewind(f);
        char *line = NULL;
        size_t cap = 0;
        ssize_t n = getline(&line, &cap, f);
        gt_check(n == LINE_LENGTH + 1, "getline returned %zd, expected %d", n, LINE_LENGTH + 1);
        free(line);
    }
    fclose(f);
    return NULL;
}

static void *flusher(void *unused)
{
    (void)unused;
    while (!stopping())
        gt_check(fflush(NULL) == 0, "fflush(NULL): %s", strerror(errno));
    return NULL;
}

static void write_long_line(void)
{
    int fd = mkstemp(file_name);
    gt_check(fd >= 0, "mkstemp: %s", strerror(errno));
    FILE *f = fdopen(fd, "w");
    gt_check(f != NULL, "fdopen: %s", strerror(errno));
    for (int i = 0; i < LINE_LENGTH; i++)
        fputc('x', f);
    fputc('\n', f);
    gt_check(fclose(f) == 0, "writing %s: %s", file_name, strerror(errno));
}

static void start(pthread_t *t, void *(*fn)(void *), void *arg)
{
    int rc = pthread_create(t, NULL, fn, arg);
    gt_check(rc == 0, "pthread_create: %s", strerror(rc));
}

int main(void)
{
    /* glibc's test raises its arena limit this way; any allocator must accept
     * the call. */
    gt_check(mallopt(M_ARENA_MAX, 400) != 0, "mallopt(M_ARENA_MAX, 400) returned 0");
    write_long_line();
    /* Each reader's stream is opened here and the file unlinked at once, so a
     * run that fails midway leaves nothing behind. */
    FILE *streams[READERS];
    for (int i = 0; i < READERS; i++) {
        streams[i] = fopen(file_name, "r");
        gt_check(streams[i] != NULL, "fopen(%s): %s", file_name, strerror(errno));
    }
    unlink(file_name);

    pthread_t forkers[FORKERS], readers[READERS], flush;
    for (int i = 0; i < FORKERS; i++)
        start(&forkers[i], forker, NULL);
    for (int i = 0; i < READERS; i++)
        start(&readers[i], reader, streams[i]);
    start(&flush, flusher, NULL);

    usleep(RUN_MS * 1000);
    __atomic_store_n(&stop, 1, __ATOMIC_RELAXED);

    struct timespec deadline = gt_stall_deadline();
    int stuck = 0;
    for (int i = 0; i < FORKERS; i++)
        stuck += gt_join_by(forkers[i], &deadline) != 0;
    for (int i = 0; i < READERS; i++)
        stuck += gt_join_by(readers[i], &deadline) != 0;
    stuck += gt_join_by(flush, &deadline) != 0;
    gt_check(stuck == 0,
             "deadlock: %d of %d threads still blocked %d s after the stop (%ld forks done)", stuck,
             FORKERS + READERS + 1, GT_STALL_SECONDS,
             __atomic_load_n(&forks_done, __ATOMIC_RELAXED));
    return 0;
}
