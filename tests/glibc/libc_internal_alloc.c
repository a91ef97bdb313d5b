/*
 * libc_internal_alloc.c — the C library's own allocations go through the
 * replacement malloc and mix with the program's (glibc's tst-interpose-nothread
 * and tst-interpose-thread, which run this with an interposed malloc).
 *
 * In the main thread and again in a new thread: lines of 0 to 8201 bytes are
 * written to a temporary file with fprintf and read back with getline (libc
 * grows getline's buffer with realloc and the program frees it), and fork
 * must work.  Then other functions that return malloc'd memory for the
 * program to free: strdup, asprintf, open_memstream, getcwd(NULL, 0),
 * realpath, scandir, regcomp/regfree, qsort on a big array, and getpwuid
 * (which loads an NSS module with dlopen at run time).
 *
 * When GT_ALLOCATOR says gomalloc, the program break must not move from
 * start-up to the end: glibc's malloc, which grows the break, never ran.
 */
#include "check.h"

#include <dirent.h>
#include <pwd.h>
#include <regex.h>

static const int line_lengths[] = { 0, 45, 80, 2, 8201, 0, 17 };
#define LINES ((int)(sizeof line_lengths / sizeof line_lengths[0]))

static void *break_at_start;

__attribute__((constructor)) static void note_break(void)
{
    break_at_start = sbrk(0);
}

/* Line n: letters from 'A' + n on, then a newline and the terminator. */
static void make_line(int n, char *buf, int length)
{
    for (int i = 0; i < length; i++)
        buf[i] = (char)('A' + (n + i) % 26);
    buf[length] = '\n';
    buf[length + 1] = '\0';
}

static void write_lines(FILE *f)
{
    for (int n = 0; n < LINES; n++) {
        char buf[8201 + 2];
        make_line(n, buf, line_lengths[n]);
        fprintf(f, "%s", buf);
    }
    gt_check(fflush(f) == 0 && !ferror(f), "writing the lines failed");
}

static void read_lines(FILE *f)
{
    char *line = NULL;
    size_t cap = 0;
    for (int n = 0; n < LINES; n++) {
        char want[8201 + 2];
        ssize_t got = getline(&line, &cap, f);
        gt_check(got == line_lengths[n] + 1, "getline returned %zd for line %d, expected %d", got,
                 n, line_lengths[n] + 1);
        make_line(n, want, line_lengths[n]);
        gt_check(strcmp(line, want) == 0, "line %d came back different", n);
    }
    gt_check(getline(&line, &cap, f) == -1, "getline found more than %d lines", LINES);
    free(line);
}

static void fork_works(void)
{
    pid_t pid = fork();
    gt_check(pid >= 0, "fork: %s", strerror(errno));
    if (pid == 0)
        _exit(55);
    int status;
    gt_check(waitpid(pid, &status, 0) == pid, "waitpid: %s", strerror(errno));
    gt_check(WIFEXITED(status) && WEXITSTATUS(status) == 55, "child status 0x%x", (unsigned)status);
}

static void *file_round_trip(void *unused)
{
    (void)unused;
    char name[] = "/tmp/gt-libc-alloc-XXXXXX";
    int fd = mkstemp(name);
    gt_check(fd >= 0, "mkstemp: %s", strerror(errno));
    unlink(name);
    FILE *f = fdopen(fd, "w+");
    gt_check(f != NULL, "fdopen: %s", strerror(errno));
    write_lines(f);
    rewind(f);
    read_lines(f);
    fclose(f);
    fork_works();
    return NULL;
}

static void strings(void)
{
    char *s = strdup("replacement");
    gt_check(s && strcmp(s, "replacement") == 0, "strdup");
    free(s);
    gt_check(asprintf(&s, "%d-%s-%0500d", 42, "x", 7) == 505, "asprintf");
    free(s);
    char *buf = NULL;
    size_t len = 0;
    FILE *m = open_memstream(&buf, &len);
    gt_check(m != NULL, "open_memstream");
    for (int i = 0; i < 5000; i++)
        fprintf(m, "%d,", i);
    fclose(m);
    gt_check(len > 20000 && buf[len - 1] == ',', "open_memstream produced %zu bytes", len);
    free(buf);
}

static void paths(void)
{
    char *cwd = getcwd(NULL, 0);
    gt_check(cwd != NULL, "getcwd(NULL, 0): %s", strerror(errno));
    char *real = realpath(cwd, NULL);
    gt_check(real != NULL, "realpath: %s", strerror(errno));
    free(real);
    free(cwd);
    struct dirent **list;
    int n = scandir("/", &list, NULL, alphasort);
    gt_check(n > 0, "scandir(\"/\"): %s", strerror(errno));
    while (n-- > 0)
        free(list[n]);
    free(list);
}

static int by_value(const void *a, const void *b)
{
    long x = *(const long *)a, y = *(const long *)b;
    return (x > y) - (x < y);
}

static void misc(void)
{
    regex_t re;
    gt_check(regcomp(&re, "^(a|b)+[0-9]{2,}$", REG_EXTENDED) == 0, "regcomp");
    gt_check(regexec(&re, "abba123", 0, NULL, 0) == 0, "regexec");
    regfree(&re);
    enum { N = 200000 }; /* big enough for qsort to take a malloc'd buffer */
    long *v = malloc(N * sizeof *v);
    gt_check(v != NULL, "malloc failed");
    for (long i = 0; i < N; i++)
        v[i] = (i * 7919) % N;
    qsort(v, N, sizeof *v, by_value);
    for (long i = 0; i < N; i++)
        gt_check(v[i] == i, "qsort result wrong at %ld", i);
    free(v);
    struct passwd *root = getpwuid(0);
    gt_check(root != NULL && strcmp(root->pw_name, "root") == 0, "getpwuid(0)");
}

int main(void)
{
    file_round_trip(NULL);
    pthread_t t;
    gt_check(pthread_create(&t, NULL, file_round_trip, NULL) == 0, "pthread_create");
    pthread_join(t, NULL);
    strings();
    paths();
    misc();
    if (gt_expect_gomalloc())
        gt_check(sbrk(0) == break_at_start, "the break moved from %p to %p: glibc's malloc ran",
                 break_at_start, sbrk(0));
    return 0;
}
