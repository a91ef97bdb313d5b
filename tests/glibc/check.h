/*
 * check.h — what every program in tests/glibc/ shares.
 *
 * Each program checks one group of glibc's malloc behaviours (see README.md
 * here for which of glibc's malloc/tst-* tests it stands for).  A program
 * exits 0 when every check holds; otherwise it writes one line, "FAIL: why",
 * and exits 1.  The line is written with write(2), not stdio: some checks run
 * with the heap or the address space deliberately exhausted.
 *
 * GT_ALLOCATOR (set by run.sh) names the allocator the program must be
 * using: "gomalloc" or "glibc".  A constructor checks it before main (the
 * object that defines malloc must also define gm_usable_size, or be the C
 * library), so a link or preload mistake fails every case instead of silently
 * testing glibc.
 *
 * Include this header first: it sets _GNU_SOURCE for the headers after it.
 */
#ifndef GT_CHECK_H
#define GT_CHECK_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define GT_NORETURN __attribute__((noreturn))
#define GT_PRINTF(f, a) __attribute__((format(printf, f, a)))

/* Writes "FAIL: <message>\n" on stdout and ends the process.  _exit, not exit:
 * after a failure the heap may be in no state to run atexit handlers. */
static inline GT_NORETURN GT_PRINTF(1, 2) void gt_fail(const char *fmt, ...)
{
    char line[512];
    int n = snprintf(line, sizeof line, "FAIL: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof line - (size_t)n - 1, fmt, ap);
    va_end(ap);
    size_t len = strlen(line);
    line[len++] = '\n';
    if (write(STDOUT_FILENO, line, len) < 0)
        _exit(2);
    _exit(1);
}

/* gt_check(cond, "what was expected", ...): fails with the message unless
 * cond holds. */
#define gt_check(cond, ...)          \
    do {                             \
        if (!(cond))                 \
            gt_fail(__VA_ARGS__);    \
    } while (0)

/* The allocator run.sh expects behind malloc, or NULL when not told. */
static inline const char *gt_expected_allocator(void)
{
    const char *want = getenv("GT_ALLOCATOR");
    return want && *want ? want : NULL;
}

static inline int gt_expect_gomalloc(void)
{
    const char *want = gt_expected_allocator();
    return want && strcmp(want, "gomalloc") == 0;
}

/* Fills info with the loaded object that defines symbol as this process binds
 * it (dlsym's default search follows the order of the program's own
 * references: executable, preloads, then libraries in link order); returns 0
 * if there is none. */
static inline int gt_definer(const char *symbol, Dl_info *info)
{
    void *sym = dlsym(RTLD_DEFAULT, symbol);
    return sym != NULL && dladdr(sym, info) != 0;
}

/* Whether malloc comes from the object that also defines marker: gomalloc's
 * gm_usable_size, or glibc's gnu_get_libc_version.  Comparing objects rather
 * than file names lets the library be renamed or copied. */
static inline int gt_malloc_defined_with(const char *marker, const char **provider)
{
    Dl_info from_malloc, from_marker;
    *provider = "(unknown)";
    if (!gt_definer("malloc", &from_malloc))
        return 0;
    if (from_malloc.dli_fname != NULL)
        *provider = from_malloc.dli_fname;
    return gt_definer(marker, &from_marker) && from_marker.dli_fbase == from_malloc.dli_fbase;
}

__attribute__((constructor)) static void gt_verify_allocator(void)
{
    const char *want = gt_expected_allocator(), *provider;
    if (want == NULL)
        return;
    const char *marker = strcmp(want, "gomalloc") == 0 ? "gm_usable_size"
                         : strcmp(want, "glibc") == 0  ? "gnu_get_libc_version"
                                                       : NULL;
    gt_check(marker != NULL, "GT_ALLOCATOR=%s: expected gomalloc or glibc", want);
    if (!gt_malloc_defined_with(marker, &provider))
        gt_fail("malloc is served by %s, expected %s", provider, want);
}

/* ---- running a piece of a test in a child process ------------------------ */

/* How a child ended, and the first line it wrote (its own "FAIL: ..." line,
 * or the allocator's diagnostic when it aborted). */
struct gt_child {
    int status;
    char first_line[256];
};

/* Reads what the child writes on the pipe until it closes (so the child never
 * blocks on a full pipe), keeping the first line. */
static inline void gt_read_first_line(int fd, char *out, size_t cap)
{
    size_t used = 0;
    int line_done = 0;
    char buf[4096];
    ssize_t n;
    out[0] = '\0';
    while ((n = read(fd, buf, sizeof buf)) > 0 || (n < 0 && errno == EINTR)) {
        for (ssize_t i = 0; i < n && !line_done; i++) {
            if (buf[i] == '\n' || used + 1 >= cap)
                line_done = 1;
            else
                out[used++] = buf[i];
        }
        out[used] = '\0';
    }
}

/* Runs fn(arg) in a forked child whose stdout and stderr go to a pipe, and
 * waits for it.  The child exits 0 when fn returns. */
static inline struct gt_child gt_run_child(void (*fn)(void *), void *arg)
{
    struct gt_child result = { .status = -1 };
    int fds[2];
    gt_check(pipe(fds) == 0, "pipe: %s", strerror(errno));
    pid_t pid = fork();
    gt_check(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], STDOUT_FILENO);
        dup2(fds[1], STDERR_FILENO);
        close(fds[1]);
        fn(arg);
        _exit(0);
    }
    close(fds[1]);
    gt_read_first_line(fds[0], result.first_line, sizeof result.first_line);
    close(fds[0]);
    while (waitpid(pid, &result.status, 0) < 0)
        gt_check(errno == EINTR, "waitpid: %s", strerror(errno));
    return result;
}

/* "exited 3", "killed by SIGABRT (gomalloc: ...)" — for failure messages. */
static inline const char *gt_describe(const struct gt_child *c, char *buf, size_t cap)
{
    if (WIFEXITED(c->status))
        snprintf(buf, cap, "exited %d%s%s%s", WEXITSTATUS(c->status),
                 c->first_line[0] ? " (" : "", c->first_line, c->first_line[0] ? ")" : "");
    else if (WIFSIGNALED(c->status))
        snprintf(buf, cap, "killed by SIG%s%s%s%s", sigabbrev_np(WTERMSIG(c->status)),
                 c->first_line[0] ? " (" : "", c->first_line, c->first_line[0] ? ")" : "");
    else
        snprintf(buf, cap, "status 0x%x", (unsigned)c->status);
    return buf;
}

static inline int gt_aborted(const struct gt_child *c)
{
    return WIFSIGNALED(c->status) && WTERMSIG(c->status) == SIGABRT;
}

static inline int gt_exited_0(const struct gt_child *c)
{
    return WIFEXITED(c->status) && WEXITSTATUS(c->status) == 0;
}

/* ---- hang detection -------------------------------------------------------- */

/* Seconds without progress after which a stress loop counts as deadlocked.
 * A healthy step takes well under a millisecond; the margin is for a loaded
 * machine, not a speed requirement. */
#define GT_STALL_SECONDS 10

/* Called by a thread that is not part of the stress: waits until *done
 * reaches target, failing if it stops moving for GT_STALL_SECONDS.  what
 * names the counter ("forks", "rounds") in the failure line. */
static inline void gt_watch_progress(const volatile long *done, long target, const char *what)
{
    long last = -1;
    int still = 0;
    for (;;) {
        long now = __atomic_load_n(done, __ATOMIC_RELAXED);
        if (now >= target)
            return;
        still = now == last ? still + 1 : 0;
        last = now;
        gt_check(still < GT_STALL_SECONDS * 10,
                 "deadlock: no progress for %d s after %ld of %ld %s", GT_STALL_SECONDS, now,
                 target, what);
        usleep(100 * 1000);
    }
}

/* A watchdog process for single-threaded tests, where a deadlock stops the
 * only thread and a watchdog thread would change what is tested (a process
 * with one thread is what makes fork async-signal-safe).  The test bumps
 * *progress; the watchdog, a child that shares that word, kills the test with
 * SIGKILL after writing the failure line if it stops moving. */
struct gt_watchdog {
    pid_t pid;
    volatile long *progress;
};

static inline GT_NORETURN void gt_watchdog_loop(pid_t test, volatile long *progress,
                                                const char *what)
{
    long last = -1;
    int still = 0;
    while (getppid() == test) {
        long now = __atomic_load_n(progress, __ATOMIC_RELAXED);
        still = now == last ? still + 1 : 0;
        last = now;
        if (still >= GT_STALL_SECONDS * 10) {
            char line[200];
            int n = snprintf(line, sizeof line,
                             "FAIL: deadlock: no progress for %d s after %ld %s\n",
                             GT_STALL_SECONDS, now, what);
            if (write(STDOUT_FILENO, line, (size_t)n) < 0)
                _exit(2);
            kill(test, SIGKILL);
            _exit(0);
        }
        usleep(100 * 1000);
    }
    _exit(0);
}

static inline struct gt_watchdog gt_watchdog_start(const char *what)
{
    struct gt_watchdog w;
    w.progress =
        mmap(NULL, sizeof(long), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    gt_check(w.progress != MAP_FAILED, "mmap: %s", strerror(errno));
    pid_t test = getpid();
    w.pid = fork();
    gt_check(w.pid >= 0, "fork: %s", strerror(errno));
    if (w.pid == 0)
        gt_watchdog_loop(test, w.progress, what);
    return w;
}

static inline void gt_watchdog_stop(struct gt_watchdog *w)
{
    kill(w->pid, SIGKILL);
    while (waitpid(w->pid, NULL, 0) < 0 && errno == EINTR)
        ;
    munmap((void *)w->progress, sizeof(long));
}

/* The time GT_STALL_SECONDS from now, for gt_join_by. */
static inline struct timespec gt_stall_deadline(void)
{
    struct timespec t;
    clock_gettime(CLOCK_REALTIME, &t);
    t.tv_sec += GT_STALL_SECONDS;
    return t;
}

/* Joins t unless it is still running at the deadline; returns 0 if joined. */
static inline int gt_join_by(pthread_t t, const struct timespec *deadline)
{
    return pthread_timedjoin_np(t, NULL, deadline);
}

/* Keeps the compiler from dropping a block whose contents are never read:
 * -fno-builtin already stops it from pairing malloc with free. */
static inline void gt_escape(void *p)
{
    __asm__ volatile("" : : "g"(p) : "memory");
}

#endif
