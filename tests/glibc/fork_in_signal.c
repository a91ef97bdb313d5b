/*
 * fork_in_signal.c — in a single-threaded program, fork() is
 * async-signal-safe as far as malloc is concerned: a signal handler may fork
 * even when the signal interrupted malloc or free (glibc's tst-mallocfork and
 * tst-mallocfork2; glibc skips its malloc locks around fork when the process
 * has one thread, so the handler cannot wait for a lock its own thread holds).
 *
 *  once    a signal sent by a child process arrives after a malloc; the
 *          handler forks a child that leaves with exit(0) (atexit handlers
 *          and all) and waits for it.
 *  storm   a 3 ms interval timer's handler forks (the child _exits) while the
 *          program frees and allocates blocks of up to 70,000 bytes in a
 *          1009-slot table, until HANDLED signals were handled.
 *
 * A deadlock stops the only thread, so a watchdog process reports it (the
 * count it prints includes the one signal of "once").
 */
#include "check.h"

#include <sys/time.h>

enum { SLOTS = 1009, MAX_SIZE = 70000, HANDLED = 50, TIMER_US = 3000 };

static struct gt_watchdog watchdog;
static volatile sig_atomic_t handler_failed;
/* Set by the handler, cleared by each turn of the allocation loop: at most
 * one fork per turn, so the loop advances even when a fork takes longer than
 * the timer's period (glibc's test paces its signal sender the same way). */
static volatile sig_atomic_t forked_this_turn;

/* Forks a child that ends with leave(0) and waits for it; only
 * async-signal-safe calls. */
static void fork_and_wait(void (*leave)(int))
{
    pid_t pid = fork();
    if (pid < 0) {
        handler_failed = 1;
        return;
    }
    if (pid == 0)
        leave(0);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR) {
            handler_failed = 1;
            return;
        }
    if (status != 0)
        handler_failed = 2;
}

static void fork_with_exit(int sig)
{
    (void)sig;
    int saved = errno;
    fork_and_wait(exit);
    __atomic_add_fetch(watchdog.progress, 1, __ATOMIC_RELAXED);
    errno = saved;
}

static void fork_with__exit(int sig)
{
    (void)sig;
    if (forked_this_turn)
        return;
    forked_this_turn = 1;
    int saved = errno;
    fork_and_wait(_exit);
    __atomic_add_fetch(watchdog.progress, 1, __ATOMIC_RELAXED);
    errno = saved;
}

static void on_signal(int sig, void (*handler)(int))
{
    struct sigaction action = { .sa_handler = handler };
    sigemptyset(&action.sa_mask);
    gt_check(sigaction(sig, &action, NULL) == 0, "sigaction: %s", strerror(errno));
}

static void check_handler(const char *phase)
{
    gt_check(handler_failed == 0, "%s: the handler's %s", phase,
             handler_failed == 1 ? "fork or waitpid failed" : "child did not exit 0");
}

/* A signal from another process, once, right after a malloc. */
static void once(void)
{
    on_signal(SIGUSR1, fork_with_exit);
    int *volatile keep = malloc(sizeof(int));
    gt_check(keep != NULL, "malloc failed");
    pid_t parent = getpid();
    pid_t sender = fork();
    gt_check(sender >= 0, "fork: %s", strerror(errno));
    if (sender == 0) {
        kill(parent, SIGUSR1);
        _exit(0);
    }
    while (waitpid(sender, NULL, 0) < 0)
        gt_check(errno == EINTR, "waitpid: %s", strerror(errno));
    check_handler("once");
    free(keep);
}

static void set_timer(long usec)
{
    struct itimerval t = { .it_interval = { 0, usec }, .it_value = { 0, usec } };
    gt_check(setitimer(ITIMER_REAL, &t, NULL) == 0, "setitimer: %s", strerror(errno));
}

/* Allocation churn under a timer whose handler forks. */
static void storm(void)
{
    static void *slots[SLOTS];
    unsigned seed = 1;
    on_signal(SIGALRM, fork_with__exit);
    set_timer(TIMER_US);
    while (__atomic_load_n(watchdog.progress, __ATOMIC_RELAXED) < 1 + HANDLED) {
        int slot = rand_r(&seed) % SLOTS;
        size_t size = (size_t)(rand_r(&seed) % MAX_SIZE);
        forked_this_turn = 0;
        free(slots[slot]);
        slots[slot] = malloc(size);
        gt_check(slots[slot] != NULL, "malloc(%zu) failed", size);
    }
    set_timer(0);
    check_handler("storm");
    for (int i = 0; i < SLOTS; i++)
        free(slots[i]);
}

int main(void)
{
    watchdog = gt_watchdog_start("signals handled");
    once();
    storm();
    gt_watchdog_stop(&watchdog);
    return 0;
}
