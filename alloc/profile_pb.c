/*
 * profile_pb.c — the heap profile in pprof's profile.proto format, encoded
 * by hand and streamed to a file descriptor.
 *
 * Job: turn the caller's samples (stacks of return addresses with scaled
 * counts) into a Profile message that `go tool pprof` reads and symbolises
 * from the binaries named in its mappings.
 *
 * How: the top-level Profile message has no length prefix, and protobuf
 * allows the fields of a message in any order, repeated ones interleaved.
 * So each sample is written out as soon as the callback yields it, and the
 * tables it refers to by number — locations, mappings, strings — follow at
 * the end, when they are complete.  Only the nested messages need their
 * length up front; each is small and bounded (a sample is at most 64
 * location ids and four values), so it is built in a stack buffer first.
 *
 * Invariants: location ids are 1.. in order of first sight, one per
 * distinct pc; mapping ids are 1.., the main executable's first (pprof takes
 * the first mapping for the binary named on its command line); string 0 is
 * "" and strings 1..FIXED_STRINGS-1 are the fixed names below.
 *
 * May call: report_io.c (mmap'd scratch and output, /proc/self/maps),
 * memcpy/memcmp/strlen.  Never malloc or stdio: this runs inside malloc.
 */
#include <string.h>

#include "profile_pb.h"
#include "report_io.h"

/* ---- protobuf wire format ---------------------------------------------- */

enum { WIRE_VARINT = 0, WIRE_LEN = 2 };
#define VARINT_MAX 10

static size_t put_varint(uint8_t *p, uint64_t v) {
    size_t n = 0;
    while (v >= 0x80) {
        p[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    p[n++] = (uint8_t)v;
    return n;
}

static size_t put_key(uint8_t *p, unsigned field, unsigned wire) {
    return put_varint(p, (uint64_t)field << 3 | wire);
}

/* A varint field; proto3 leaves zeros out, and so do we. */
static size_t put_uint_field(uint8_t *p, unsigned field, uint64_t v) {
    if (!v)
        return 0;
    size_t n = put_key(p, field, WIRE_VARINT);
    return n + put_varint(p + n, v);
}

static size_t put_len_field(uint8_t *p, unsigned field, const uint8_t *data, size_t len) {
    size_t n = put_key(p, field, WIRE_LEN);
    n += put_varint(p + n, len);
    memcpy(p + n, data, len);
    return n + len;
}

/* Counts are int64 in profile.proto; a larger figure is clamped, not
 * turned negative. */
static uint64_t as_int64(uint64_t v) {
    return v > (uint64_t)INT64_MAX ? (uint64_t)INT64_MAX : v;
}

/* ---- Profile fields and fixed strings ---------------------------------- */

enum {
    PROFILE_SAMPLE_TYPE = 1, PROFILE_SAMPLE = 2, PROFILE_MAPPING = 3,
    PROFILE_LOCATION = 4, PROFILE_STRING_TABLE = 6, PROFILE_DROP_FRAMES = 7, PROFILE_TIME_NANOS = 9,
    PROFILE_PERIOD_TYPE = 11, PROFILE_PERIOD = 12, PROFILE_DEFAULT_SAMPLE_TYPE = 14,
};

enum {
    STR_EMPTY, STR_ALLOC_OBJECTS, STR_COUNT, STR_ALLOC_SPACE, STR_BYTES,
    STR_INUSE_OBJECTS, STR_INUSE_SPACE, STR_SPACE, FIXED_STRINGS
};

static const char *const fixed_strings[FIXED_STRINGS] = {
    "", "alloc_objects", "count", "alloc_space", "bytes",
    "inuse_objects", "inuse_space", "space",
};

/* Sample values come in this order, so the types are listed in it too. */
static const uint8_t sample_types[4][2] = {
    {STR_ALLOC_OBJECTS, STR_COUNT}, {STR_ALLOC_SPACE, STR_BYTES},
    {STR_INUSE_OBJECTS, STR_COUNT}, {STR_INUSE_SPACE, STR_BYTES},
};

/* ---- writer state (all of it in mmap'd scratch) ------------------------ */

struct pb_mapping {
    uint64_t lo, hi, offset;
    uint32_t file;      /* string index, STR_EMPTY for an anonymous mapping */
    uint32_t id;
    int is_exe;
};

struct pb_slot {
    uint64_t pc;        /* 0 = empty slot */
    uint64_t id;
};

struct pb_writer {
    struct gm_rio_out out;
    struct pb_mapping *maps;
    size_t nmaps, maps_bytes;
    char *strs;         /* file names, NUL-terminated, in string-index order */
    size_t strs_len, strs_bytes, last_str;
    uint32_t nstrs;     /* FIXED_STRINGS (+ drop_frames) + file names */
    const char *drop;   /* drop_frames, string FIXED_STRINGS, or NULL */
    struct pb_slot *slots;
    size_t slot_bits, nlocs;
};

#define SCRATCH_STEP (64 * 1024)
#define OUT_BUF (256 * 1024)
#define SLOT_BITS_START 12

/* Makes room for `more` bytes past `used` in a growable scratch block. */
static int reserve(void **p, size_t *bytes, size_t used, size_t more) {
    if (used + more <= *bytes)
        return 0;
    size_t want = *bytes ? *bytes : SCRATCH_STEP;
    while (want < used + more)
        want *= 2;
    void *q = *p ? gm_rio_grow(*p, *bytes, want) : gm_rio_map(want);
    if (!q)
        return -1;
    *p = q;
    *bytes = want;
    return 0;
}

/* ---- strings and mappings ---------------------------------------------- */

/* The string index of a file name.  Mappings of one file come one after the
 * other in /proc/self/maps, so comparing with the last name dedups them. */
static int64_t intern_path(struct pb_writer *w, const char *path, size_t len) {
    if (!len)
        return STR_EMPTY;
    if (w->nstrs > FIXED_STRINGS + (w->drop != NULL) && strlen(w->strs + w->last_str) == len &&
        memcmp(w->strs + w->last_str, path, len) == 0)
        return w->nstrs - 1;
    if (reserve((void **)&w->strs, &w->strs_bytes, w->strs_len, len + 1) < 0)
        return -1;
    w->last_str = w->strs_len;
    memcpy(w->strs + w->strs_len, path, len);
    w->strs[w->strs_len + len] = '\0';
    w->strs_len += len + 1;
    return w->nstrs++;
}

static int add_mapping(struct pb_writer *w, const struct gm_maps_entry *e, const char *exe) {
    int64_t file = intern_path(w, e->path, e->path_len);
    if (file < 0 || reserve((void **)&w->maps, &w->maps_bytes,
                            w->nmaps * sizeof *w->maps, sizeof *w->maps) < 0)
        return -1;
    struct pb_mapping *m = &w->maps[w->nmaps++];
    m->lo = e->lo;
    m->hi = e->hi;
    m->offset = e->offset;
    m->file = (uint32_t)file;
    m->is_exe = exe[0] && strlen(exe) == e->path_len && memcmp(exe, e->path, e->path_len) == 0;
    return 0;
}

/* Ids 1.. go to the main executable's mappings first, then the rest, both
 * in address order; the array itself stays in address order for lookups. */
static void number_mappings(struct pb_writer *w) {
    uint32_t id = 1;
    for (int exe = 1; exe >= 0; exe--)
        for (size_t i = 0; i < w->nmaps; i++)
            if (w->maps[i].is_exe == exe)
                w->maps[i].id = id++;
}

/* Only executable mappings: they are what pcs point into, and all pprof
 * needs to find the binaries. */
static int load_mappings(struct pb_writer *w) {
    char exe[4096];
    if (!gm_rio_self_exe(exe, sizeof exe))
        exe[0] = '\0';
    struct gm_maps_reader r;
    if (gm_maps_open(&r, NULL) < 0)
        return -1;
    struct gm_maps_entry e;
    int got, rc = 0;
    while (rc == 0 && (got = gm_maps_next(&r, &e)) != 0) {
        if (got < 0)
            rc = -1;
        else if (e.perms[2] == 'x')
            rc = add_mapping(w, &e, exe);
    }
    gm_maps_close(&r);
    number_mappings(w);
    return rc;
}

/* The id of the mapping holding pc, 0 if none does (then pprof shows the
 * bare address). */
static uint64_t mapping_of(const struct pb_writer *w, uint64_t pc) {
    size_t lo = 0, hi = w->nmaps;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (pc < w->maps[mid].lo)
            hi = mid;
        else if (pc >= w->maps[mid].hi)
            lo = mid + 1;
        else
            return w->maps[mid].id;
    }
    return 0;
}

/* ---- locations: open addressing on the pc ------------------------------ */

static size_t slot_index(uint64_t pc, size_t bits) {
    return (size_t)((pc * 0x9e3779b97f4a7c15ull) >> (64 - bits));
}

static struct pb_slot *find_slot(struct pb_slot *slots, size_t bits, uint64_t pc) {
    size_t mask = ((size_t)1 << bits) - 1;
    size_t i = slot_index(pc, bits);
    while (slots[i].pc && slots[i].pc != pc)
        i = (i + 1) & mask;
    return &slots[i];
}

/* Doubles the table when it is half full, so probes stay short. */
static int grow_slots(struct pb_writer *w) {
    size_t bits = w->slots ? w->slot_bits + 1 : SLOT_BITS_START;
    struct pb_slot *slots = gm_rio_map(sizeof *slots << bits);
    if (!slots)
        return -1;
    if (w->slots) {
        for (size_t i = 0; i < (size_t)1 << w->slot_bits; i++)
            if (w->slots[i].pc)
                *find_slot(slots, bits, w->slots[i].pc) = w->slots[i];
        gm_rio_unmap(w->slots, sizeof *slots << w->slot_bits);
    }
    w->slots = slots;
    w->slot_bits = bits;
    return 0;
}

/* The location id for pc, made on first sight; 0 when memory ran out. */
static uint64_t location_id(struct pb_writer *w, uint64_t pc) {
    if ((!w->slots || 2 * (w->nlocs + 1) > (size_t)1 << w->slot_bits) && grow_slots(w) < 0)
        return 0;
    struct pb_slot *s = find_slot(w->slots, w->slot_bits, pc);
    if (!s->pc) {
        s->pc = pc;
        s->id = ++w->nlocs;
    }
    return s->id;
}

/* ---- emitting ---------------------------------------------------------- */

static void emit(struct pb_writer *w, unsigned field, const uint8_t *msg, size_t len) {
    uint8_t head[1 + 2 * VARINT_MAX];
    size_t n = put_key(head, field, WIRE_LEN);
    n += put_varint(head + n, len);
    gm_rio_put(&w->out, head, n);
    gm_rio_put(&w->out, msg, len);
}

static void emit_value_type(struct pb_writer *w, unsigned field, unsigned type, unsigned unit) {
    uint8_t msg[2 * (1 + VARINT_MAX)];
    size_t n = put_uint_field(msg, 1, type);
    n += put_uint_field(msg + n, 2, unit);
    emit(w, field, msg, n);
}

static void emit_header(struct pb_writer *w, uint64_t period, int64_t time_nanos) {
    for (unsigned i = 0; i < 4; i++)
        emit_value_type(w, PROFILE_SAMPLE_TYPE, sample_types[i][0], sample_types[i][1]);
    emit_value_type(w, PROFILE_PERIOD_TYPE, STR_SPACE, STR_BYTES);
    uint8_t buf[4 * (1 + VARINT_MAX)];
    size_t n = put_uint_field(buf, PROFILE_PERIOD, as_int64(period));
    n += put_uint_field(buf + n, PROFILE_TIME_NANOS, (uint64_t)time_nanos);
    n += put_uint_field(buf + n, PROFILE_DEFAULT_SAMPLE_TYPE, STR_INUSE_SPACE);
    if (w->drop)
        n += put_uint_field(buf + n, PROFILE_DROP_FRAMES, FIXED_STRINGS);
    gm_rio_put(&w->out, buf, n);
}

/* Sample { repeated uint64 location_id = 1 (packed); repeated int64 value = 2
 * (packed) }.  -1 when the location table could not grow. */
static int emit_sample(struct pb_writer *w, const struct gm_prof_sample *s) {
    uint8_t ids[GM_PROF_MAX_DEPTH * VARINT_MAX], vals[4 * VARINT_MAX];
    uint8_t msg[sizeof ids + sizeof vals + 4 * (1 + VARINT_MAX)];
    size_t nids = 0, nvals = 0, n = 0;
    uint32_t depth = s->depth < GM_PROF_MAX_DEPTH ? s->depth : GM_PROF_MAX_DEPTH;
    for (uint32_t i = 0; i < depth; i++) {
        if (!s->pcs[i])
            continue;
        uint64_t id = location_id(w, s->pcs[i]);
        if (!id)
            return -1;
        nids += put_varint(ids + nids, id);
    }
    const uint64_t v[4] = {s->alloc_objects, s->alloc_bytes, s->inuse_objects, s->inuse_bytes};
    for (unsigned i = 0; i < 4; i++)
        nvals += put_varint(vals + nvals, as_int64(v[i]));
    if (nids)
        n += put_len_field(msg, 1, ids, nids);
    n += put_len_field(msg + n, 2, vals, nvals);
    emit(w, PROFILE_SAMPLE, msg, n);
    return 0;
}

static int emit_samples(struct pb_writer *w, gm_prof_next_fn next, void *ctx) {
    struct gm_prof_sample s;
    for (;;) {
        s.depth = 0;
        if (!next(ctx, &s))
            return 0;
        if (emit_sample(w, &s) < 0)
            return -1;
    }
}

/* Location { id = 1; mapping_id = 2; address = 3 }, address only: pprof
 * symbolises it from the mapping's binary. */
static void emit_locations(struct pb_writer *w) {
    if (!w->slots)
        return;
    for (size_t i = 0; i < (size_t)1 << w->slot_bits; i++) {
        const struct pb_slot *s = &w->slots[i];
        if (!s->pc)
            continue;
        uint8_t msg[3 * (1 + VARINT_MAX)];
        size_t n = put_uint_field(msg, 1, s->id);
        n += put_uint_field(msg + n, 2, mapping_of(w, s->pc));
        n += put_uint_field(msg + n, 3, s->pc - 1);   /* the call, not the return */
        emit(w, PROFILE_LOCATION, msg, n);
    }
}

/* Mapping { id = 1; memory_start = 2; memory_limit = 3; file_offset = 4;
 * filename = 5 }, in id order. */
static void emit_mappings(struct pb_writer *w) {
    for (int exe = 1; exe >= 0; exe--) {
        for (size_t i = 0; i < w->nmaps; i++) {
            const struct pb_mapping *m = &w->maps[i];
            if (m->is_exe != exe)
                continue;
            uint8_t msg[5 * (1 + VARINT_MAX)];
            size_t n = put_uint_field(msg, 1, m->id);
            n += put_uint_field(msg + n, 2, m->lo);
            n += put_uint_field(msg + n, 3, m->hi);
            n += put_uint_field(msg + n, 4, m->offset);
            n += put_uint_field(msg + n, 5, m->file);
            emit(w, PROFILE_MAPPING, msg, n);
        }
    }
}

/* The string table is positional: every entry is written, "" included. */
static void emit_strings(struct pb_writer *w) {
    for (unsigned i = 0; i < FIXED_STRINGS; i++)
        emit(w, PROFILE_STRING_TABLE, (const uint8_t *)fixed_strings[i], strlen(fixed_strings[i]));
    if (w->drop)
        emit(w, PROFILE_STRING_TABLE, (const uint8_t *)w->drop, strlen(w->drop));
    for (size_t off = 0; off < w->strs_len;) {
        size_t len = strlen(w->strs + off);
        emit(w, PROFILE_STRING_TABLE, (const uint8_t *)w->strs + off, len);
        off += len + 1;
    }
}

static void release(struct pb_writer *w) {
    gm_rio_unmap(w->maps, w->maps_bytes);
    gm_rio_unmap(w->strs, w->strs_bytes);
    if (w->slots)
        gm_rio_unmap(w->slots, sizeof *w->slots << w->slot_bits);
}

int gm_prof_write(int fd, uint64_t period_bytes, int64_t time_nanos,
                  gm_prof_next_fn next, void *ctx) {
    return gm_prof_write_ex(fd, period_bytes, time_nanos, NULL, next, ctx);
}

int gm_prof_write_ex(int fd, uint64_t period_bytes, int64_t time_nanos, const char *drop_frames,
                     gm_prof_next_fn next, void *ctx) {
    struct pb_writer w;
    memset(&w, 0, sizeof w);
    w.drop = drop_frames;
    w.nstrs = FIXED_STRINGS + (drop_frames != NULL);
    int rc = load_mappings(&w);
    if (rc == 0)
        rc = gm_rio_open(&w.out, fd, OUT_BUF);
    if (rc == 0) {
        emit_header(&w, period_bytes, time_nanos);
        rc = emit_samples(&w, next, ctx);
        emit_locations(&w);
        emit_mappings(&w);
        emit_strings(&w);
    }
    if (gm_rio_close(&w.out) < 0)
        rc = -1;
    release(&w);
    return rc;
}
