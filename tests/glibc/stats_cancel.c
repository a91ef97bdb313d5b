/*
 * stats_cancel.c — malloc_stats() is not a cancellation point, and leaves the
 * thread's cancellation state as it found it (glibc's
 * tst-malloc-stats-cancellation, bug 22830).
 *
 * A thread is released from a barrier with a cancellation request already
 * pending.  It calls malloc_stats(), then fputs() to stderr.  The statistics
 * must come out whole (malloc_stats did not act on the request), and the
 * fputs must not come out (write is a cancellation point, and cancellation
 * must still be enabled), so the thread ends cancelled.
 *
 * stderr goes to a pipe, not a memory stream: only a real write(2) is a
 * cancellation point.  "Whole" means the output ends with the same line as a
 * malloc_stats() call made first from the main thread (numbers aside): the
 * report's format is the allocator's own.
 */
#include "check.h"

#include <fcntl.h>
#include <malloc.h>

#define MARKER "written after malloc_stats"

static pthread_barrier_t gate;

static void *stats_then_print(void *unused)
{
    (void)unused;
    pthread_barrier_wait(&gate); /* not a cancellation point */
    malloc_stats();
    fputs(MARKER "\n", stderr);
    return NULL;
}

/* Everything the pipe holds now (its write end may still be open). */
static void drain(int fd, char *out, size_t cap)
{
    size_t used = strlen(out);
    ssize_t n;
    while (used + 1 < cap && (n = read(fd, out + used, cap - 1 - used)) > 0)
        used += (size_t)n;
    out[used] = '\0';
}

/* The last line's words, without the figure: "max mmap bytes" for glibc's
 * "max mmap bytes   =          0". */
static void last_label(const char *text, char *label, size_t cap)
{
    size_t len = strlen(text);
    while (len > 0 && text[len - 1] == '\n')
        len--;
    size_t start = len;
    while (start > 0 && text[start - 1] != '\n')
        start--;
    size_t end = start;
    while (end < len && (text[end] < '0' || text[end] > '9') && text[end] != '=')
        end++;
    while (end > start && text[end - 1] == ' ')
        end--;
    snprintf(label, cap, "%.*s", (int)(end - start), text + start);
}

int main(void)
{
    static char reference[8192], output[8192];
    char label[128];
    int pipe_fds[2];
    int real_stderr = dup(STDERR_FILENO);
    gt_check(real_stderr >= 0 && pipe(pipe_fds) == 0, "dup/pipe: %s", strerror(errno));
    fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    dup2(pipe_fds[1], STDERR_FILENO);
    close(pipe_fds[1]);

    malloc_stats();
    drain(pipe_fds[0], reference, sizeof reference);
    last_label(reference, label, sizeof label);

    pthread_t t;
    void *result;
    gt_check(pthread_barrier_init(&gate, NULL, 2) == 0, "pthread_barrier_init");
    gt_check(pthread_create(&t, NULL, stats_then_print, NULL) == 0, "pthread_create");
    gt_check(pthread_cancel(t) == 0, "pthread_cancel");
    pthread_barrier_wait(&gate);
    gt_check(pthread_join(t, &result) == 0, "pthread_join");

    dup2(real_stderr, STDERR_FILENO);
    close(real_stderr);
    drain(pipe_fds[0], output, sizeof output);

    gt_check(label[0] != '\0', "malloc_stats() printed nothing on stderr from the main thread");
    gt_check(strstr(output, MARKER) == NULL,
             "fputs after malloc_stats() was not cancelled: malloc_stats left cancellation off");
    gt_check(result == PTHREAD_CANCELED, "the thread was not cancelled at all");
    gt_check(strstr(output, label) != NULL,
             "malloc_stats() acted on the pending cancellation: its report was cut short "
             "(%zu of %zu bytes, no \"%s\" line)",
             strlen(output), strlen(reference), label);
    return 0;
}
