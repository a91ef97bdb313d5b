/*
 * fork_in_signal_threads.c — _Fork() stays async-signal-safe in a program
 * with threads (glibc's tst-mallocfork3).  _Fork runs no atfork handlers and
 * takes no lock, so a signal handler may call it even when the signal
 * interrupted malloc, free or another _Fork; the child only calls _exit.
 *
 * Five threads each send the main thread a signal between two barrier waits,
 * while the main thread, between the same two waits, sometimes calls _Fork
 * itself (one turn in seven), then frees and allocates a block of up to
 * 70,000 bytes in a 1009-slot table.  The handler _Forks and waits for its
 * child.  A watcher thread reports a stall as a deadlock.
 */
#include "check.h"

enum { SENDERS = 5, SLOTS = 1009, MAX_SIZE = 70000, TURNS = 60, CHILD_CODE = 0 };

static pthread_barrier_t turn_barrier;
static pthread_t main_thread;
static volatile long turns_done;
static volatile sig_atomic_t handler_failed;

/* _Fork a child that _exits at once and reap it; async-signal-safe. */
static int fork_and_reap(void)
{
    pid_t pid = _Fork();
    if (pid < 0)
        return -1;
    if (pid == 0)
        _exit(CHILD_CODE);
    int status;
    while (waitpid(pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return status == 0 ? 0 : -1;
}

static void on_usr1(int sig)
{
    (void)sig;
    int saved = errno;
    if (fork_and_reap() != 0)
        handler_failed = 1;
    errno = saved;
}

static void barrier_wait(void)
{
    int rc = pthread_barrier_wait(&turn_barrier);
    gt_check(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD, "pthread_barrier_wait: %s",
             strerror(rc));
}

/* Signals the main thread once per turn, while it forks and allocates. */
static void *sender(void *unused)
{
    (void)unused;
    for (;;) {
        barrier_wait();
        pthread_kill(main_thread, SIGUSR1);
        barrier_wait();
    }
    return NULL;
}

static void *watcher(void *unused)
{
    (void)unused;
    gt_watch_progress(&turns_done, TURNS, "turns");
    return NULL;
}

static void start(void *(*fn)(void *))
{
    pthread_t t;
    int rc = pthread_create(&t, NULL, fn, NULL);
    gt_check(rc == 0, "pthread_create: %s", strerror(rc));
    pthread_detach(t);
}

static void one_turn(void **slots, unsigned *seed)
{
    int slot = rand_r(seed) % SLOTS;
    size_t size = (size_t)(rand_r(seed) % MAX_SIZE);
    int fork_first = rand_r(seed) % 7 == 0;
    barrier_wait();
    if (fork_first)
        gt_check(fork_and_reap() == 0, "_Fork from the main thread failed");
    free(slots[slot]);
    slots[slot] = malloc(size);
    barrier_wait();
    gt_check(slots[slot] != NULL, "malloc(%zu) failed", size);
    gt_check(handler_failed == 0, "_Fork or waitpid failed in the signal handler");
}

int main(void)
{
    static void *slots[SLOTS];
    unsigned seed = 1;
    struct sigaction action = { .sa_handler = on_usr1 };
    sigemptyset(&action.sa_mask);
    gt_check(sigaction(SIGUSR1, &action, NULL) == 0, "sigaction: %s", strerror(errno));
    gt_check(pthread_barrier_init(&turn_barrier, NULL, SENDERS + 1) == 0, "pthread_barrier_init");
    main_thread = pthread_self();
    for (int i = 0; i < SENDERS; i++)
        start(sender);
    start(watcher);

    for (int turn = 0; turn < TURNS; turn++) {
        one_turn(slots, &seed);
        __atomic_add_fetch(&turns_done, 1, __ATOMIC_RELAXED);
    }
    /* The senders wait at the barrier for good now; no more signals come. */
    for (int i = 0; i < SLOTS; i++)
        free(slots[i]);
    return 0;
}
