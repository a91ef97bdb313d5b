/*
 * test_profile_pb.c — the pprof heap profile writer (alloc/profile_pb.c).
 *
 * Two allocating functions with known totals stand for a real program's
 * allocation sites: their samples carry real return addresses inside them,
 * so the profile can be read back two ways.  A small protobuf reader here
 * checks the message field by field (types, values, location dedup,
 * mappings); `go tool pprof` (Debian's golang-go), when installed, checks
 * that the real reader agrees and symbolises the sites from this binary.
 * The malloc wrappers (count_malloc.h) count calls, to prove the writer never
 * allocates: it runs inside the allocator.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

#include "profile_pb.h"
#include "count_malloc.h"   /* the writer must not call them */
#include "testutil.h"

/* ---- two allocation sites with known totals ---------------------------- */

enum { BIG_BLOCKS = 24, BIG_SIZE = 256 * 1024, BIG_FREED = 4 };
enum { SMALL_BLOCKS = 64, SMALL_SIZE = 4096, SMALL_FREED = 16 };

struct site {
    uintptr_t pcs[2];   /* [0] inside the allocating function, [1] its caller */
    void *blocks[64];   /* at least BIG_BLOCKS and SMALL_BLOCKS */
};

static struct site big_site, small_site;

/* The return address into the function that called this one: the pc an
 * unwinder would report for an allocation made there. */
__attribute__((noinline)) static void note_leaf(struct site *s) {
    s->pcs[0] = (uintptr_t)__builtin_return_address(0);
}

/* Allocates 6 MiB and frees 1 MiB of it again. */
__attribute__((noinline, noclone)) void gm_test_big_allocator(struct site *s) {
    s->pcs[1] = (uintptr_t)__builtin_return_address(0);
    note_leaf(s);
    for (int i = 0; i < BIG_BLOCKS; i++)
        s->blocks[i] = malloc(BIG_SIZE);
    for (int i = 0; i < BIG_FREED; i++)
        free(s->blocks[i]);
    __asm__ volatile("" ::: "memory");   /* keep the calls above not-tail */
}

/* Allocates 256 KiB and frees 64 KiB of it again. */
__attribute__((noinline, noclone)) void gm_test_small_allocator(struct site *s) {
    s->pcs[1] = (uintptr_t)__builtin_return_address(0);
    note_leaf(s);
    for (int i = 0; i < SMALL_BLOCKS; i++)
        s->blocks[i] = malloc(SMALL_SIZE);
    for (int i = 0; i < SMALL_FREED; i++)
        free(s->blocks[i]);
    __asm__ volatile("" ::: "memory");
}

__attribute__((noinline, noclone)) void gm_test_run_sites(void) {
    gm_test_big_allocator(&big_site);
    gm_test_small_allocator(&small_site);
    __asm__ volatile("" ::: "memory");   /* no tail call: keep this frame */
}

static void free_sites(void) {
    for (int i = BIG_FREED; i < BIG_BLOCKS; i++)
        free(big_site.blocks[i]);
    for (int i = SMALL_FREED; i < SMALL_BLOCKS; i++)
        free(small_site.blocks[i]);
}

/* The big site is reported as two samples with one stack (as a sampler that
 * saw it twice would), to check pprof adds them up. */
#define PERIOD (512 * 1024)
#define TIME_NANOS 1700000000123456789ll

struct feed {
    int next;
};

static void fill(struct gm_prof_sample *out, const struct site *s, uint64_t allocs,
                 uint64_t size, uint64_t freed) {
    memset(out, 0, sizeof *out);
    out->alloc_objects = allocs;
    out->alloc_bytes = allocs * size;
    out->inuse_objects = allocs - freed;
    out->inuse_bytes = (allocs - freed) * size;
    out->depth = 2;
    out->pcs[0] = s->pcs[0];
    out->pcs[1] = s->pcs[1];
}

static int next_site(void *ctx, struct gm_prof_sample *out) {
    struct feed *f = ctx;
    switch (f->next++) {
    case 0: fill(out, &big_site, BIG_BLOCKS / 2, BIG_SIZE, BIG_FREED); return 1;
    case 1: fill(out, &small_site, SMALL_BLOCKS, SMALL_SIZE, SMALL_FREED); return 1;
    case 2: fill(out, &big_site, BIG_BLOCKS / 2, BIG_SIZE, 0); return 1;
    default: return 0;
    }
}

#define BIG_INUSE ((uint64_t)(BIG_BLOCKS - BIG_FREED) * BIG_SIZE)
#define SMALL_INUSE ((uint64_t)(SMALL_BLOCKS - SMALL_FREED) * SMALL_SIZE)

/* ---- a minimal profile.proto reader ------------------------------------ */

struct rd {
    const uint8_t *p, *end;
};

static uint64_t rd_varint(struct rd *r) {
    uint64_t v = 0;
    for (unsigned shift = 0; r->p < r->end; shift += 7) {
        uint8_t b = *r->p++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return v;
    }
    fail_msg("truncated varint");
    return 0;
}

/* The next field: its number, and either its varint or its bytes in *sub. */
static int rd_field(struct rd *r, unsigned *field, uint64_t *v, struct rd *sub) {
    if (r->p >= r->end)
        return 0;
    uint64_t key = rd_varint(r);
    *field = (unsigned)(key >> 3);
    if ((key & 7) == 0) {
        *v = rd_varint(r);
        return 1;
    }
    assert_int_equal(key & 7, 2);   /* the writer uses nothing else */
    uint64_t len = rd_varint(r);
    assert_true(len <= (uint64_t)(r->end - r->p));
    sub->p = r->p;
    sub->end = r->p + len;
    r->p += len;
    return 1;
}

enum { MAX_ITEMS = 65536, MAX_SAMPLES = 8192 };

struct prof {
    char *strings[MAX_ITEMS];
    size_t nstrings;
    uint64_t sample_type[4][2], nsample_types;
    uint64_t period_type[2], period, default_type;
    int64_t time_nanos;
    struct {
        uint64_t loc[GM_PROF_MAX_DEPTH], nloc, value[4], nvalue;
    } samples[MAX_SAMPLES];
    size_t nsamples;
    struct {
        uint64_t id, mapping, address;
    } locs[MAX_ITEMS];
    size_t nlocs;
    struct {
        uint64_t id, lo, hi, offset, file;
    } maps[4096];
    size_t nmaps;
};

static void rd_packed(struct rd *r, uint64_t *out, uint64_t *n, uint64_t cap) {
    while (r->p < r->end) {
        assert_true(*n < cap);
        out[(*n)++] = rd_varint(r);
    }
}

static void rd_value_type(struct rd r, uint64_t out[2]) {
    unsigned f;
    uint64_t v = 0;
    struct rd sub;
    out[0] = out[1] = 0;
    while (rd_field(&r, &f, &v, &sub))
        if (f == 1 || f == 2)
            out[f - 1] = v;
}

static void rd_sample(struct prof *p, struct rd r) {
    assert_true(p->nsamples < MAX_SAMPLES);
    unsigned f;
    uint64_t v;
    struct rd sub;
    __typeof__(p->samples[0]) *s = &p->samples[p->nsamples++];
    memset(s, 0, sizeof *s);
    while (rd_field(&r, &f, &v, &sub)) {
        if (f == 1)
            rd_packed(&sub, s->loc, &s->nloc, GM_PROF_MAX_DEPTH);
        else if (f == 2)
            rd_packed(&sub, s->value, &s->nvalue, 4);
    }
}

static void rd_location(struct prof *p, struct rd r) {
    assert_true(p->nlocs < MAX_ITEMS);
    unsigned f;
    uint64_t v;
    struct rd sub;
    __typeof__(p->locs[0]) *l = &p->locs[p->nlocs++];
    memset(l, 0, sizeof *l);
    while (rd_field(&r, &f, &v, &sub)) {
        if (f == 1) l->id = v;
        else if (f == 2) l->mapping = v;
        else if (f == 3) l->address = v;
        else fail_msg("unexpected Location field %u", f);
    }
}

static void rd_mapping(struct prof *p, struct rd r) {
    assert_true(p->nmaps < 4096);
    unsigned f;
    uint64_t v;
    struct rd sub;
    __typeof__(p->maps[0]) *m = &p->maps[p->nmaps++];
    memset(m, 0, sizeof *m);
    while (rd_field(&r, &f, &v, &sub)) {
        if (f == 1) m->id = v;
        else if (f == 2) m->lo = v;
        else if (f == 3) m->hi = v;
        else if (f == 4) m->offset = v;
        else if (f == 5) m->file = v;
    }
}

static void rd_top_field(struct prof *p, unsigned f, uint64_t v, struct rd sub) {
    switch (f) {
    case 1:
        assert_true(p->nsample_types < 4);
        rd_value_type(sub, p->sample_type[p->nsample_types++]);
        break;
    case 2: rd_sample(p, sub); break;
    case 3: rd_mapping(p, sub); break;
    case 4: rd_location(p, sub); break;
    case 6:
        assert_true(p->nstrings < MAX_ITEMS);
        p->strings[p->nstrings++] = strndup((const char *)sub.p, (size_t)(sub.end - sub.p));
        break;
    case 9: p->time_nanos = (int64_t)v; break;
    case 11: rd_value_type(sub, p->period_type); break;
    case 12: p->period = v; break;
    case 14: p->default_type = v; break;
    default: fail_msg("unexpected Profile field %u", f);
    }
}

static struct prof *parse_profile(const char *path) {
    int fd = open(path, O_RDONLY);
    assert_true(fd >= 0);
    struct stat st;
    assert_int_equal(fstat(fd, &st), 0);
    uint8_t *data = malloc((size_t)st.st_size + 1);
    assert_int_equal(read(fd, data, (size_t)st.st_size), st.st_size);
    close(fd);
    struct prof *p = calloc(1, sizeof *p);
    struct rd r = {data, data + st.st_size}, sub = {0, 0};
    unsigned f;
    uint64_t v = 0;
    while (rd_field(&r, &f, &v, &sub))
        rd_top_field(p, f, v, sub);
    free(data);
    return p;
}

static void free_profile(struct prof *p) {
    for (size_t i = 0; i < p->nstrings; i++)
        free(p->strings[i]);
    free(p);
}

static const char *str(const struct prof *p, uint64_t i) {
    assert_true(i < p->nstrings);
    return p->strings[i];
}

static uint64_t loc_address(const struct prof *p, uint64_t id) {
    for (size_t i = 0; i < p->nlocs; i++)
        if (p->locs[i].id == id)
            return p->locs[i].address;
    fail_msg("no location %llu", (unsigned long long)id);
    return 0;
}

/* ---- helpers ----------------------------------------------------------- */

static char profile_path[] = "/tmp/gm_test_profile_XXXXXX";

static const char *write_profile(gm_prof_next_fn next, void *ctx) {
    strcpy(profile_path, "/tmp/gm_test_profile_XXXXXX");
    int fd = mkstemp(profile_path);
    assert_true(fd >= 0);
    assert_int_equal(gm_prof_write(fd, PERIOD, TIME_NANOS, next, ctx), 0);
    close(fd);
    return profile_path;
}

static char *self_exe(void) {
    static char exe[4096];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    assert_true(n > 0);
    exe[n] = '\0';
    return exe;
}

/* ---- tests: the message itself ----------------------------------------- */

static void check_header(const struct prof *p) {
    static const char *const want[4][2] = {
        {"alloc_objects", "count"}, {"alloc_space", "bytes"},
        {"inuse_objects", "count"}, {"inuse_space", "bytes"},
    };
    assert_true(p->nstrings > 0);
    assert_string_equal(str(p, 0), "");
    assert_int_equal(p->nsample_types, 4);
    for (int i = 0; i < 4; i++) {
        assert_string_equal(str(p, p->sample_type[i][0]), want[i][0]);
        assert_string_equal(str(p, p->sample_type[i][1]), want[i][1]);
    }
    assert_string_equal(str(p, p->period_type[0]), "space");
    assert_string_equal(str(p, p->period_type[1]), "bytes");
    assert_int_equal(p->period, PERIOD);
    assert_string_equal(str(p, p->default_type), "inuse_space");
    assert_int_equal(p->time_nanos, TIME_NANOS);
}

/* Every location sits in the mapping it names; the first mapping is this
 * executable, so pprof takes the binary on its command line for it. */
static void check_mappings(const struct prof *p) {
    assert_true(p->nmaps > 0);
    assert_int_equal(p->maps[0].id, 1);
    assert_string_equal(str(p, p->maps[0].file), self_exe());
    for (size_t i = 0; i < p->nlocs; i++) {
        uint64_t pc = p->locs[i].address + 1;
        size_t m = 0;
        while (m < p->nmaps && p->maps[m].id != p->locs[i].mapping)
            m++;
        assert_true(m < p->nmaps);
        assert_true(p->maps[m].lo <= pc && pc < p->maps[m].hi);
    }
}

static void test_message_fields(void **state) {
    (void)state;
    struct feed f = {0};
    struct prof *p = parse_profile(write_profile(next_site, &f));
    check_header(p);
    assert_int_equal(p->nsamples, 3);
    assert_int_equal(p->nlocs, 4);   /* two stacks of two frames, deduplicated */
    const uint64_t small_want[4] = {SMALL_BLOCKS, SMALL_BLOCKS * SMALL_SIZE,
                                    SMALL_BLOCKS - SMALL_FREED, SMALL_INUSE};
    for (int i = 0; i < 4; i++)
        assert_int_equal(p->samples[1].value[i], small_want[i]);
    assert_int_equal(p->samples[0].value[3] + p->samples[2].value[3], BIG_INUSE);
    for (int s = 0; s < 3; s++) {
        const struct site *site = s == 1 ? &small_site : &big_site;
        assert_int_equal(p->samples[s].nloc, 2);
        for (int d = 0; d < 2; d++)   /* the call instruction, not the return */
            assert_int_equal(loc_address(p, p->samples[s].loc[d]), site->pcs[d] - 1);
    }
    assert_int_equal(p->samples[0].loc[0], p->samples[2].loc[0]);
    check_mappings(p);
    free_profile(p);
    unlink(profile_path);
}

/* Many distinct pcs: the location table grows several times and each pc
 * still gets exactly one location. */
enum { DISTINCT_PCS = 30000, MANY_SAMPLES = 5000 };

static uintptr_t fake_pc(unsigned i) {
    return (uintptr_t)&gm_test_big_allocator + 0x100000 + 16 * (uintptr_t)i;
}

static int next_many(void *ctx, struct gm_prof_sample *out) {
    unsigned *n = ctx;
    if (*n == MANY_SAMPLES)
        return 0;
    memset(out, 0, sizeof *out);
    out->depth = GM_PROF_MAX_DEPTH + 5;   /* the extra frames are dropped */
    for (unsigned d = 0; d < GM_PROF_MAX_DEPTH; d++)
        out->pcs[d] = fake_pc((*n * 7919u + d * 104729u) % DISTINCT_PCS);
    out->inuse_bytes = *n;
    (*n)++;
    return 1;
}

static void test_many_locations(void **state) {
    (void)state;
    unsigned n = 0;
    struct prof *p = parse_profile(write_profile(next_many, &n));
    assert_int_equal(p->nsamples, MANY_SAMPLES);
    assert_int_equal(p->nlocs, DISTINCT_PCS);
    for (unsigned s = 0; s < MANY_SAMPLES; s += 97) {
        assert_int_equal(p->samples[s].nloc, GM_PROF_MAX_DEPTH);
        assert_int_equal(p->samples[s].value[3], s);
        for (unsigned d = 0; d < GM_PROF_MAX_DEPTH; d++) {
            uintptr_t pc = fake_pc((s * 7919u + d * 104729u) % DISTINCT_PCS);
            assert_int_equal(loc_address(p, p->samples[s].loc[d]), pc - 1);
        }
    }
    free_profile(p);
    unlink(profile_path);
}

static int next_none(void *ctx, struct gm_prof_sample *out) {
    (void)ctx;
    (void)out;
    return 0;
}

/* No samples: still a valid profile with its types and mappings. */
static void test_empty_profile(void **state) {
    (void)state;
    struct prof *p = parse_profile(write_profile(next_none, NULL));
    check_header(p);
    assert_int_equal(p->nsamples, 0);
    assert_int_equal(p->nlocs, 0);
    assert_true(p->nmaps > 0);
    free_profile(p);
    unlink(profile_path);
}

static void test_write_errors_reported(void **state) {
    (void)state;
    struct feed f = {0};
    int fd = open("/dev/full", O_WRONLY);
    assert_true(fd >= 0);
    assert_int_equal(gm_prof_write(fd, PERIOD, 0, next_site, &f), -1);
    close(fd);
    f.next = 0;
    assert_int_equal(gm_prof_write(-1, PERIOD, 0, next_site, &f), -1);
}

static void test_never_allocates(void **state) {
    (void)state;
    unsigned n = 0;
    int fd = open("/dev/null", O_WRONLY);
    assert_true(fd >= 0);
    malloc_calls = 0;
    counting = 1;
    int rc = gm_prof_write(fd, PERIOD, TIME_NANOS, next_many, &n);
    counting = 0;
    close(fd);
    assert_int_equal(rc, 0);
    assert_int_equal(malloc_calls, 0);
}

/* ---- tests: go tool pprof ---------------------------------------------- */

static int have_go(void) {
    return system("go version >/dev/null 2>&1") == 0;
}

/* Runs `go tool pprof ARGS EXE PROFILE` and returns its standard output. */
static char *pprof(const char *args, const char *profile) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "go tool pprof %s '%s' '%s' 2>/dev/null", args, self_exe(), profile);
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t cap = 1 << 20, len = 0;
    char *out = malloc(cap);
    size_t got;
    while ((got = fread(out + len, 1, cap - 1 - len, f)) > 0)
        len += got;
    out[len] = '\0';
    assert_int_equal(pclose(f), 0);
    return out;
}

/* The flat figure pprof's -top gives for a function, in bytes (-unit=B). */
static long long top_flat(const char *top, const char *func) {
    const char *line = top;
    while ((line = strstr(line, func)) != NULL) {
        const char *start = line;
        while (start > top && start[-1] != '\n')
            start--;
        const char *end = strchr(line, '\n');
        if (end && (size_t)(end - line) == strlen(func)) {
            long long v = -1;
            sscanf(start, " %lldB", &v);
            return v;
        }
        line += strlen(func);
    }
    return -1;
}

static void test_pprof_top_ranks_sites(void **state) {
    (void)state;
    if (!have_go())
        skip();
    struct feed f = {0};
    const char *path = write_profile(next_site, &f);
    char *top = pprof("-top -unit=B", path);
    long long big = top_flat(top, "gm_test_big_allocator");
    long long small = top_flat(top, "gm_test_small_allocator");
    const char *b = strstr(top, "gm_test_big_allocator");
    const char *s = strstr(top, "gm_test_small_allocator");
    if (big != (long long)BIG_INUSE || small != (long long)SMALL_INUSE || !b || !s || b > s)
        print_error("pprof -top said:\n%s\n", top);
    assert_int_equal(big, BIG_INUSE);
    assert_int_equal(small, SMALL_INUSE);
    assert_true(b && s && b < s);   /* ranked by in-use bytes */
    free(top);
    top = pprof("-top -unit=B -sample_index=alloc_space", path);
    assert_int_equal(top_flat(top, "gm_test_big_allocator"), (long long)BIG_BLOCKS * BIG_SIZE);
    assert_int_equal(top_flat(top, "gm_test_small_allocator"), (long long)SMALL_BLOCKS * SMALL_SIZE);
    free(top);
    unlink(path);
}

/* Collapses each run of blanks to one space, so columns can be matched. */
static void squeeze(char *s) {
    char *w = s;
    for (char *r = s; *r; r++)
        if (*r != ' ' || (w > s && w[-1] != ' ' && w[-1] != '\n'))
            *w++ = *r;
    *w = '\0';
}

/* -raw lists the sample types and the samples' four values exactly; pprof
 * merges the big site's two samples, which have one stack. */
static void test_pprof_raw_values(void **state) {
    (void)state;
    if (!have_go())
        skip();
    struct feed f = {0};
    const char *path = write_profile(next_site, &f);
    char *raw = pprof("-raw", path);
    squeeze(raw);
    char small[128], big[128];
    snprintf(small, sizeof small, "\n%d %d %d %llu: ", SMALL_BLOCKS, SMALL_BLOCKS * SMALL_SIZE,
             SMALL_BLOCKS - SMALL_FREED, (unsigned long long)SMALL_INUSE);
    snprintf(big, sizeof big, "\n%d %d %d %llu: ", BIG_BLOCKS, BIG_BLOCKS * BIG_SIZE,
             BIG_BLOCKS - BIG_FREED, (unsigned long long)BIG_INUSE);
    int ok = strstr(raw, "\nalloc_objects/count alloc_space/bytes inuse_objects/count "
                         "inuse_space/bytes[dflt]\n") != NULL;
    ok = ok && strstr(raw, small) && strstr(raw, big);
    ok = ok && strstr(raw, "PeriodType: space bytes\n") && strstr(raw, "Period: 524288\n");
    if (!ok)
        print_error("pprof -raw said:\n%s\n", raw);
    assert_true(ok);
    free(raw);
    unlink(path);
}

/* -traces shows each stack symbolised, leaf first, the caller below. */
static void test_pprof_traces_symbolised(void **state) {
    (void)state;
    if (!have_go())
        skip();
    struct feed f = {0};
    const char *path = write_profile(next_site, &f);
    char *traces = pprof("-traces", path);
    const char *leaf = strstr(traces, "gm_test_small_allocator");
    int ok = leaf && strstr(leaf, "gm_test_run_sites");
    if (!ok)
        print_error("pprof -traces said:\n%s\n", traces);
    assert_true(ok);
    free(traces);
    unlink(path);
}

int main(void) {
    gm_test_run_sites();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_message_fields),
        cmocka_unit_test(test_many_locations),
        cmocka_unit_test(test_empty_profile),
        cmocka_unit_test(test_write_errors_reported),
        cmocka_unit_test(test_never_allocates),
        cmocka_unit_test(test_pprof_top_ranks_sites),
        cmocka_unit_test(test_pprof_raw_values),
        cmocka_unit_test(test_pprof_traces_symbolised),
    };
    int failed = cmocka_run_group_tests(tests, NULL, NULL);
    free_sites();
    return failed;
}
