/*
 * report_io.h — the plumbing that the heap profile writer (profile_pb.c) and
 * the heap map (heapmap_svg.c) share: an output buffer streamed to a file
 * descriptor, scratch memory straight from mmap, number formatting, and a
 * line reader for /proc/self/maps.
 *
 * Why it exists: both reports run inside the malloc replacement, maybe while
 * the heap is in trouble, maybe in a child after fork.  Nothing here calls
 * malloc, stdio or anything in libc that may allocate; it uses only
 * open/read/write/close/readlink, mmap/mremap/munmap and the mem/str
 * functions.  It keeps no global state, so two reports may run at once in
 * different threads.
 */
#ifndef GM_REPORT_IO_H
#define GM_REPORT_IO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- output ------------------------------------------------------------- */

/* Bytes gather in an mmap'd buffer and leave in large write(2) calls.
 * Invariant: len <= cap; once failed is set nothing more is written, so a
 * caller may emit a whole report and check for failure once, at close. */
struct gm_rio_out {
    int fd;
    int mem;            /* keep everything in memory (gm_rio_open_mem) */
    int failed;
    int mapped;         /* buf came from mmap here (unmapped at close) */
    char *buf;
    size_t len, cap;
};

/* Maps a buffer of cap bytes (rounded up to pages); -1 when mmap fails. */
int gm_rio_open(struct gm_rio_out *o, int fd, size_t cap);
/* Writes through the caller's buffer (a stack array): no mmap, so a report
 * still comes out when the OS refuses memory. */
void gm_rio_open_buf(struct gm_rio_out *o, int fd, char *buf, size_t cap);
/* Keeps the whole output in an mmap'd buffer that grows as needed; the
 * caller reads o->buf / o->len before gm_rio_close. */
int gm_rio_open_mem(struct gm_rio_out *o, size_t cap);
void gm_rio_put(struct gm_rio_out *o, const void *p, size_t n);
void gm_rio_str(struct gm_rio_out *o, const char *s);
void gm_rio_dec(struct gm_rio_out *o, uint64_t v);
void gm_rio_sdec(struct gm_rio_out *o, int64_t v);
/* v / 1000 with up to three decimals, trailing zeros dropped ("0.25"). */
void gm_rio_milli(struct gm_rio_out *o, int64_t v);
/* "0x" and lower-case hex digits. */
void gm_rio_hex(struct gm_rio_out *o, uint64_t v);
/* A size for people: "512 B", "4 KiB", "1.5 GiB". */
void gm_rio_bytes(struct gm_rio_out *o, uint64_t v);
/* Writes what is buffered and unmaps the buffer: 0, or -1 if any write
 * failed (then the file holds a truncated report). */
int gm_rio_close(struct gm_rio_out *o);

/* Formatters behind the above; each returns the length written, no NUL.
 * buf needs 20 bytes for dec and 16 for hex, 16 for bytes. */
size_t gm_rio_fmt_dec(char *buf, uint64_t v);
size_t gm_rio_fmt_hex(char *buf, uint64_t v);
size_t gm_rio_fmt_bytes(char *buf, uint64_t v);

/* ---- scratch memory ---------------------------------------------------- */

/* Zeroed private anonymous memory, NULL on failure.  Sizes are rounded up to
 * pages by the kernel; pass the same size to unmap and grow. */
void *gm_rio_map(size_t bytes);
void gm_rio_unmap(void *p, size_t bytes);
/* Grows a gm_rio_map block, maybe moving it; the new tail reads zero.  NULL
 * on failure, and then the old block is still valid. */
void *gm_rio_grow(void *p, size_t old_bytes, size_t new_bytes);

/* ---- /proc/self/maps ---------------------------------------------------- */

/* One line of the maps file.  path points into the reader's buffer and is
 * valid until the next call; it is not NUL-terminated and is empty for an
 * anonymous mapping.  A path longer than the buffer is cut short. */
struct gm_maps_entry {
    uintptr_t lo, hi;
    uint64_t offset;
    uint64_t inode;
    char perms[5];      /* "r-xp" and a NUL */
    const char *path;
    size_t path_len;
};

struct gm_maps_reader {
    int fd;
    int eof;
    int skip_line;      /* the last line overflowed the buffer: drop its rest */
    int own_buf;        /* buf came from mmap here */
    char *buf;
    size_t cap, pos, end;
};

/* Reads into buf (at least GM_MAPS_BUF bytes), or into a buffer of its own
 * from mmap when buf is NULL; a caller that draws the maps passes one it
 * already has, so the reader adds no mapping of its own to what it reads. */
#define GM_MAPS_BUF (16 * 1024)
int gm_maps_open(struct gm_maps_reader *r, char *buf);           /* 0 or -1 */
int gm_maps_next(struct gm_maps_reader *r, struct gm_maps_entry *e); /* 1 entry, 0 end, -1 error */
void gm_maps_close(struct gm_maps_reader *r);

/* The running executable's path as the maps file shows it (readlink of
 * /proc/self/exe), NUL-terminated; 0 if it cannot be read or does not fit. */
size_t gm_rio_self_exe(char *buf, size_t cap);

/* ---- file names ------------------------------------------------------- */

/* path with every "%p" replaced by the process id (so each process of a
 * program that forks and execs writes its own file), into out; false, with
 * errno ENAMETOOLONG, if it does not fit. */
bool gm_report_path(const char *path, char *out, size_t cap);
/* Opens (creates, truncates) the file path names, "%p" expanded; -1 with
 * errno on failure. */
int gm_report_open(const char *path);
/* Writes a file with write_fd (0 on success, -1 on error), not a thread
 * cancellation point, closing it and keeping write_fd's errno; -1 when the
 * file cannot be opened or written.  The public gm_*_write(path) calls. */
int gm_report_write_file(const char *path, int (*write_fd)(int fd));

#endif
