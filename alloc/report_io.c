/*
 * report_io.c — output buffer, scratch memory, number formatting and the
 * /proc/self/maps reader shared by the heap profile and the heap map.
 *
 * Job: let a report be produced from inside malloc.  Output goes to a file
 * descriptor through an mmap'd buffer or a caller's stack buffer, or stays
 * whole in a growing mmap'd buffer (malloc_info hands it to a FILE).  Invariants: no call to
 * malloc, stdio or any libc function that may allocate; no global state; a
 * failed write is remembered and reported once, at close, so emitters need
 * not check every call.  May call: open, read, write, close, readlink, mmap,
 * mremap, munmap, memcpy, memmove, memchr, strlen.
 *
 * write(2) and read(2) are cancellation points; a caller that must not be cut
 * short disables cancellation around the report, as gm_print_stats does.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "report_io.h"

/* ---- scratch memory ---------------------------------------------------- */

void *gm_rio_map(size_t bytes) {
    int saved = errno;   /* a failed report must not leave errno changed */
    void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    errno = saved;
    return p == MAP_FAILED ? NULL : p;
}

void gm_rio_unmap(void *p, size_t bytes) {
    if (p)
        munmap(p, bytes);
}

void *gm_rio_grow(void *p, size_t old_bytes, size_t new_bytes) {
    int saved = errno;
    void *q = mremap(p, old_bytes, new_bytes, MREMAP_MAYMOVE);
    errno = saved;
    return q == MAP_FAILED ? NULL : q;
}

/* ---- formatting -------------------------------------------------------- */

size_t gm_rio_fmt_dec(char *buf, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

size_t gm_rio_fmt_hex(char *buf, uint64_t v) {
    static const char digits[] = "0123456789abcdef";
    char tmp[16];
    size_t n = 0;
    do {
        tmp[n++] = digits[v & 15];
        v >>= 4;
    } while (v);
    for (size_t i = 0; i < n; i++)
        buf[i] = tmp[n - 1 - i];
    return n;
}

/* Three significant digits are plenty for a label: "1.5 GiB", "24.3 MiB",
 * "512 KiB".  The unit steps at 1024 so the figures match the page sizes. */
size_t gm_rio_fmt_bytes(char *buf, uint64_t v) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    unsigned u = 0;
    uint64_t whole = v, tenths = 0;
    while (whole >= 1024 && u < 6) {
        tenths = (whole % 1024) * 10 / 1024;
        whole /= 1024;
        u++;
    }
    size_t n = gm_rio_fmt_dec(buf, whole);
    if (u > 0 && whole < 100 && tenths) {
        buf[n++] = '.';
        buf[n++] = (char)('0' + tenths);
    }
    buf[n++] = ' ';
    size_t ul = strlen(units[u]);
    memcpy(buf + n, units[u], ul);
    return n + ul;
}

/* ---- output ------------------------------------------------------------ */

void gm_rio_open_buf(struct gm_rio_out *o, int fd, char *buf, size_t cap) {
    o->fd = fd;
    o->mem = 0;
    o->failed = 0;
    o->mapped = 0;
    o->buf = buf;
    o->len = 0;
    o->cap = cap;
}

int gm_rio_open(struct gm_rio_out *o, int fd, size_t cap) {
    gm_rio_open_buf(o, fd, gm_rio_map(cap), cap);
    o->mapped = 1;
    if (!o->buf) {
        o->failed = 1;
        return -1;
    }
    return 0;
}

int gm_rio_open_mem(struct gm_rio_out *o, size_t cap) {
    int rc = gm_rio_open(o, -1, cap);
    o->mem = 1;
    return rc;
}

/* Memory output: doubles the buffer until n more bytes fit. */
static void grow_mem(struct gm_rio_out *o, size_t n) {
    size_t want = o->cap;
    while (want < o->len + n)
        want *= 2;
    char *p = gm_rio_grow(o->buf, o->cap, want);
    if (!p) {
        o->failed = 1;
        return;
    }
    o->buf = p;
    o->cap = want;
}

/* Short writes and EINTR are retried: a pipe or a slow disk must not cut the
 * report.  Any other error makes the output fail for good. */
static void write_all(struct gm_rio_out *o, const char *p, size_t n) {
    int saved = errno;
    while (n && !o->failed) {
        ssize_t w = write(o->fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            o->failed = 1;
            break;
        }
        p += w;
        n -= (size_t)w;
    }
    errno = saved;
}

static void flush(struct gm_rio_out *o) {
    write_all(o, o->buf, o->len);
    o->len = 0;
}

void gm_rio_put(struct gm_rio_out *o, const void *p, size_t n) {
    if (o->failed)
        return;
    if (o->mem && o->len + n > o->cap)
        grow_mem(o, n);
    if (o->failed)
        return;
    if (o->len + n > o->cap)
        flush(o);
    if (n > o->cap) {   /* bigger than the buffer: straight through */
        write_all(o, p, n);
        return;
    }
    memcpy(o->buf + o->len, p, n);
    o->len += n;
}

void gm_rio_str(struct gm_rio_out *o, const char *s) {
    gm_rio_put(o, s, strlen(s));
}

void gm_rio_dec(struct gm_rio_out *o, uint64_t v) {
    char b[20];
    gm_rio_put(o, b, gm_rio_fmt_dec(b, v));
}

void gm_rio_sdec(struct gm_rio_out *o, int64_t v) {
    if (v < 0) {
        gm_rio_put(o, "-", 1);
        gm_rio_dec(o, (uint64_t)0 - (uint64_t)v);   /* INT64_MIN too */
        return;
    }
    gm_rio_dec(o, (uint64_t)v);
}

void gm_rio_milli(struct gm_rio_out *o, int64_t v) {
    if (v < 0) {
        gm_rio_put(o, "-", 1);
        v = -v;
    }
    gm_rio_dec(o, (uint64_t)v / 1000);
    unsigned frac = (unsigned)((uint64_t)v % 1000);
    if (!frac)
        return;
    char b[4] = {'.', (char)('0' + frac / 100), (char)('0' + frac / 10 % 10), (char)('0' + frac % 10)};
    size_t n = 4;
    while (b[n - 1] == '0')
        n--;
    gm_rio_put(o, b, n);
}

void gm_rio_hex(struct gm_rio_out *o, uint64_t v) {
    char b[18] = {'0', 'x'};
    gm_rio_put(o, b, 2 + gm_rio_fmt_hex(b + 2, v));
}

void gm_rio_bytes(struct gm_rio_out *o, uint64_t v) {
    char b[24];
    gm_rio_put(o, b, gm_rio_fmt_bytes(b, v));
}

int gm_rio_close(struct gm_rio_out *o) {
    if (o->buf) {
        if (!o->mem)
            flush(o);
        if (o->mapped)
            gm_rio_unmap(o->buf, o->cap);
        o->buf = NULL;
    }
    return o->failed ? -1 : 0;
}

/* ---- /proc/self/maps ---------------------------------------------------- */

/* GM_MAPS_BUF holds a PATH_MAX path and the fixed fields several times. */
int gm_maps_open(struct gm_maps_reader *r, char *buf) {
    int saved = errno;
    memset(r, 0, sizeof *r);
    r->cap = GM_MAPS_BUF;
    r->buf = buf;
    if (!buf) {
        r->buf = gm_rio_map(r->cap);
        r->own_buf = 1;
    }
    r->fd = r->buf ? open("/proc/self/maps", O_RDONLY | O_CLOEXEC) : -1;
    if (r->fd < 0) {
        if (r->own_buf)
            gm_rio_unmap(r->buf, r->cap);
        r->buf = NULL;
        errno = saved;
        return -1;
    }
    return 0;
}

void gm_maps_close(struct gm_maps_reader *r) {
    int saved = errno;
    if (r->fd >= 0)
        close(r->fd);
    if (r->own_buf)
        gm_rio_unmap(r->buf, r->cap);
    r->fd = -1;
    r->buf = NULL;
    errno = saved;
}

/* Moves the unread tail to the front and reads more behind it. */
static int refill(struct gm_maps_reader *r) {
    memmove(r->buf, r->buf + r->pos, r->end - r->pos);
    r->end -= r->pos;
    r->pos = 0;
    int saved = errno;
    for (;;) {
        ssize_t n = read(r->fd, r->buf + r->end, r->cap - r->end);
        if (n < 0 && errno == EINTR)
            continue;
        errno = saved;
        if (n < 0)
            return -1;
        if (n == 0)
            r->eof = 1;
        r->end += (size_t)n;
        return 0;
    }
}

/* The next whole line in [*start, *len), without its newline; 0 at the end.
 * A line longer than the buffer comes back cut at the buffer's size. */
static int next_line(struct gm_maps_reader *r, const char **start, size_t *len) {
    for (;;) {
        char *b = r->buf + r->pos;
        char *nl = memchr(b, '\n', r->end - r->pos);
        if (nl && r->skip_line) {   /* the rest of an overlong line */
            r->pos += (size_t)(nl - b) + 1;
            r->skip_line = 0;
            continue;
        }
        if (nl) {
            *start = b;
            *len = (size_t)(nl - b);
            r->pos += *len + 1;
            return 1;
        }
        if (r->skip_line)
            r->pos = r->end;
        if (r->eof || (r->pos == 0 && r->end == r->cap)) {
            if (r->pos == r->end)
                return 0;
            *start = b;   /* last line without newline, or an overlong one */
            *len = r->end - r->pos;
            r->skip_line = !r->eof;
            r->pos = r->end;
            return 1;
        }
        if (refill(r) < 0)
            return -1;
    }
}

static uint64_t parse_hex(const char **p, const char *end) {
    uint64_t v = 0;
    for (; *p < end; (*p)++) {
        char c = **p;
        unsigned d = c >= '0' && c <= '9' ? (unsigned)(c - '0')
                   : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10) : 16;
        if (d == 16)
            break;
        v = v << 4 | d;
    }
    return v;
}

static uint64_t parse_dec(const char **p, const char *end) {
    uint64_t v = 0;
    for (; *p < end && **p >= '0' && **p <= '9'; (*p)++)
        v = v * 10 + (uint64_t)(**p - '0');
    return v;
}

static void skip_char(const char **p, const char *end, char c) {
    while (*p < end && **p == c)
        (*p)++;
}

/* "lo-hi perms offset dev inode   path" — see proc_pid_maps(5). */
static void parse_line(const char *p, const char *end, struct gm_maps_entry *e) {
    e->lo = (uintptr_t)parse_hex(&p, end);
    skip_char(&p, end, '-');
    e->hi = (uintptr_t)parse_hex(&p, end);
    skip_char(&p, end, ' ');
    for (int i = 0; i < 4; i++)
        e->perms[i] = p < end ? *p++ : '-';
    e->perms[4] = '\0';
    skip_char(&p, end, ' ');
    e->offset = parse_hex(&p, end);
    skip_char(&p, end, ' ');
    while (p < end && *p != ' ')   /* dev, "08:02" */
        p++;
    skip_char(&p, end, ' ');
    e->inode = parse_dec(&p, end);
    skip_char(&p, end, ' ');
    e->path = p;
    e->path_len = (size_t)(end - p);
}

int gm_maps_next(struct gm_maps_reader *r, struct gm_maps_entry *e) {
    const char *line;
    size_t len;
    int got = next_line(r, &line, &len);
    if (got <= 0)
        return got;
    parse_line(line, line + len, e);
    return 1;
}

size_t gm_rio_self_exe(char *buf, size_t cap) {
    int saved = errno;
    ssize_t n = readlink("/proc/self/exe", buf, cap);
    errno = saved;
    if (n <= 0 || (size_t)n >= cap)
        return 0;
    buf[n] = '\0';
    return (size_t)n;
}

/* ---- file names ------------------------------------------------------- */

bool gm_report_path(const char *path, char *out, size_t cap) {
    size_t n = 0;
    for (const char *p = path; *p; p++) {
        char digits[24];
        size_t len = 1;
        const char *piece = p;
        if (p[0] == '%' && p[1] == 'p') {
            len = gm_rio_fmt_dec(digits, (uint64_t)getpid());
            piece = digits;
            p++;
        }
        if (n + len >= cap) {
            errno = ENAMETOOLONG;
            return false;
        }
        memcpy(out + n, piece, len);
        n += len;
    }
    out[n] = '\0';
    return true;
}

int gm_report_open(const char *path) {
    char name[1100];
    if (!gm_report_path(path, name, sizeof name))
        return -1;
    return open(name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

int gm_report_write_file(const char *path, int (*write_fd)(int fd)) {
    int cancel_state;
    pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
    int fd = gm_report_open(path);
    int rc = fd < 0 ? -1 : write_fd(fd);
    int saved = errno;
    if (fd >= 0 && close(fd) < 0)
        rc = -1;
    errno = saved;
    pthread_setcancelstate(cancel_state, NULL);
    return rc;
}
