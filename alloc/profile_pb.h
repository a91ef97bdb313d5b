/*
 * profile_pb.h — writes a sampled heap profile in pprof's own format (the
 * profile.proto message, uncompressed), which `go tool pprof` reads and
 * symbolises from the binaries named in the profile's mappings.
 *
 * The caller owns the samples and hands them over one at a time through a
 * callback, so the writer never holds them all: it keeps only the distinct
 * stack addresses, the executable mappings and their file names, in mmap'd
 * scratch memory.  Safe to call from inside malloc (no malloc, no stdio).
 */
#ifndef GM_PROFILE_PB_H
#define GM_PROFILE_PB_H

#include <stdint.h>

#define GM_PROF_MAX_DEPTH 64

/* One stack and what was allocated from it, already scaled up for sampling
 * as pprof expects (the writer reports the figures as given).
 * pcs[0] is the innermost frame (the allocation site), pcs[depth - 1] the
 * outermost.  Every pc is a return address, as an unwinder reports it; the
 * writer records pc - 1 so that pprof attributes it to the call instruction
 * (and its line), not to whatever follows the call.  Zero pcs are skipped;
 * frames past GM_PROF_MAX_DEPTH are dropped. */
struct gm_prof_sample {
    uint64_t alloc_objects, alloc_bytes;
    uint64_t inuse_objects, inuse_bytes;
    uint32_t depth;
    uintptr_t pcs[GM_PROF_MAX_DEPTH];
};

/* Fills *out with the next sample and returns 1, or returns 0 when there are
 * no more.  It may keep its cursor in ctx.  It runs while the writer holds
 * only its own scratch memory, so it may take the caller's locks. */
typedef int (*gm_prof_next_fn)(void *ctx, struct gm_prof_sample *out);

/* Writes the profile to fd: sample types alloc_objects/count,
 * alloc_space/bytes, inuse_objects/count, inuse_space/bytes (the default),
 * period type space/bytes with period_bytes as the period, time_nanos (wall
 * clock, nanoseconds since the epoch; 0 leaves it out), one location per
 * distinct pc (address only), and the process's executable mappings from
 * /proc/self/maps, the main executable's first as pprof expects.
 * Returns 0, or -1 when scratch memory, /proc/self/maps or a write failed
 * (the file may then hold a truncated profile).  fd is left open. */
int gm_prof_write(int fd, uint64_t period_bytes, int64_t time_nanos,
                  gm_prof_next_fn next, void *ctx);
/* The same with the profile's drop_frames regexp (NULL: none): pprof drops
 * the frames whose function matches, and the frames they called, from every
 * sample, so an allocator's own frames leave the picture. */
int gm_prof_write_ex(int fd, uint64_t period_bytes, int64_t time_nanos, const char *drop_frames,
                     gm_prof_next_fn next, void *ctx);

#endif
