/*
 * espresso.c — a stand-in for mimalloc-bench's espresso (the Berkeley
 * two-level logic minimiser): what matters here is its allocation pattern —
 * many small cube bit-vectors and cube lists that grow by realloc, with
 * lifetimes from one call to the whole run — not the quality of the
 * minimisation.
 *
 *   espresso THREADS SCALE
 *
 * A round draws a random Boolean function of NVARS inputs as a list of
 * NCUBES cubes (two bits per input: 01 = x', 10 = x, 11 = absent; literals
 * only on ACTIVE of the inputs, so the complement stays a few hundred cubes
 * and the run is not all containment tests), then:
 *   1. complements it with the unate recursive paradigm: split on the most
 *      binate variable, complement both cofactors recursively (each cofactor
 *      is a new cover), and merge, dropping cubes contained in others;
 *   2. expands every cube of the function against the complement, raising
 *      one literal at a time while the cube stays clear of the off-set (each
 *      trial cube is malloc'd and freed, as the original's scratch sets are);
 *   3. removes cubes contained in others, and checks the result: no cube may
 *      meet the complement, and every original cube must lie inside a result
 *      cube (exit 1 otherwise).
 * The results of the last KEEP rounds stay alive, so long-lived lists sit
 * among the short-lived ones.  SCALE sets the number of rounds; THREADS is
 * ignored.  The output (cube counts) is deterministic and compared with
 * glibc's.
 */
#include "common.h"

#define NVARS 36
#define WORDS ((2 * NVARS + 63) / 64)
#define NCUBES 32
#define ACTIVE 14                 /* literals only on the first ACTIVE inputs */
#define LITPCT 40                 /* percent of those that get one */
#define KEEP 16
#define ROUNDS_PER_SCALE 1000L

typedef uint64_t word_t;

/* A cover: n cubes of WORDS words each, stored back to back and grown by
 * realloc as espresso's set families are. */
typedef struct {
    int n, cap;
    word_t *w;
} cover_t;

static cover_t *cover_new(int cap)
{
    cover_t *c = xmalloc(sizeof(cover_t));
    c->n = 0;
    c->cap = cap > 0 ? cap : 1;
    c->w = xmalloc(sizeof(word_t) * WORDS * (size_t)c->cap);
    return c;
}

static void cover_free(cover_t *c)
{
    if (c) {
        free(c->w);
        free(c);
    }
}

static word_t *cube_at(const cover_t *c, int i)
{
    return c->w + (size_t)i * WORDS;
}

static void cover_add(cover_t *c, const word_t *cube)
{
    if (c->n == c->cap) {
        c->cap = c->cap * 2;
        word_t *w = realloc(c->w, sizeof(word_t) * WORDS * (size_t)c->cap);
        if (w == NULL)
            bench_oom(sizeof(word_t) * WORDS * (size_t)c->cap);
        c->w = w;
    }
    memcpy(cube_at(c, c->n++), cube, sizeof(word_t) * WORDS);
}

static word_t *cube_new(void)
{
    return xmalloc(sizeof(word_t) * WORDS);
}

static int var_get(const word_t *c, int v)
{
    return (int)(c[2 * v / 64] >> (2 * v % 64) & 3);
}

static void var_set(word_t *c, int v, int val)
{
    c[2 * v / 64] &= ~((word_t)3 << (2 * v % 64));
    c[2 * v / 64] |= (word_t)val << (2 * v % 64);
}

static void cube_universe(word_t *c)
{
    memset(c, 0, sizeof(word_t) * WORDS);
    for (int v = 0; v < NVARS; v++)
        var_set(c, v, 3);
}

/* Two cubes meet unless some variable has no value in common. */
static int cubes_meet(const word_t *a, const word_t *b)
{
    for (int v = 0; v < NVARS; v++)
        if ((var_get(a, v) & var_get(b, v)) == 0)
            return 0;
    return 1;
}

static int cube_contains(const word_t *big, const word_t *small)
{
    for (int i = 0; i < WORDS; i++)
        if ((big[i] & small[i]) != small[i])
            return 0;
    return 1;
}

/* Drops every cube contained in another (the first of equal cubes stays). */
static cover_t *cover_scc(cover_t *c)
{
    cover_t *out = cover_new(c->n);
    for (int i = 0; i < c->n; i++) {
        int dominated = 0;
        for (int j = 0; j < c->n && !dominated; j++)
            if (j != i && cube_contains(cube_at(c, j), cube_at(c, i)) &&
                (!cube_contains(cube_at(c, i), cube_at(c, j)) || j < i))
                dominated = 1;
        if (!dominated)
            cover_add(out, cube_at(c, i));
    }
    cover_free(c);
    return out;
}

/* Cofactor of c with respect to variable v taking polarity val (1 or 2). */
static cover_t *cofactor(const cover_t *c, int v, int val)
{
    cover_t *out = cover_new(c->n);
    word_t *t = cube_new();
    for (int i = 0; i < c->n; i++) {
        const word_t *f = cube_at(c, i);
        if ((var_get(f, v) & val) == 0)
            continue;
        memcpy(t, f, sizeof(word_t) * WORDS);
        var_set(t, v, 3);
        cover_add(out, t);
    }
    free(t);
    return out;
}

static cover_t *complement(const cover_t *f)
{
    if (f->n == 0) {
        cover_t *u = cover_new(1);
        word_t *t = cube_new();
        cube_universe(t);
        cover_add(u, t);
        free(t);
        return u;
    }
    /* Column counts: which variables appear, in which polarities. */
    int pos[NVARS] = {0}, neg[NVARS] = {0};
    for (int i = 0; i < f->n; i++) {
        const word_t *c = cube_at(f, i);
        int lits = 0;
        for (int v = 0; v < NVARS; v++) {
            int x = var_get(c, v);
            pos[v] += x == 2;
            neg[v] += x == 1;
            lits += x != 3;
        }
        if (lits == 0)
            return cover_new(1);          /* the function is 1 */
    }
    if (f->n == 1) {
        /* De Morgan: one cube per literal, with the literal negated. */
        const word_t *c = cube_at(f, 0);
        cover_t *out = cover_new(NVARS);
        word_t *t = cube_new();
        for (int v = 0; v < NVARS; v++) {
            int x = var_get(c, v);
            if (x == 3)
                continue;
            cube_universe(t);
            var_set(t, v, 3 ^ x);
            cover_add(out, t);
        }
        free(t);
        return out;
    }
    int best = -1, score = -1;
    for (int v = 0; v < NVARS; v++) {
        int s = (pos[v] && neg[v] ? 1000 : 0) + pos[v] + neg[v];
        if (pos[v] + neg[v] > 0 && s > score) {
            score = s;
            best = v;
        }
    }
    cover_t *f1 = cofactor(f, best, 2), *f0 = cofactor(f, best, 1);
    cover_t *r1 = complement(f1), *r0 = complement(f0);
    cover_free(f1);
    cover_free(f0);
    cover_t *out = cover_new(r1->n + r0->n);
    word_t *t = cube_new();
    for (int i = 0; i < r1->n; i++) {
        memcpy(t, cube_at(r1, i), sizeof(word_t) * WORDS);
        var_set(t, best, var_get(t, best) & 2);
        if (var_get(t, best))
            cover_add(out, t);
    }
    for (int i = 0; i < r0->n; i++) {
        memcpy(t, cube_at(r0, i), sizeof(word_t) * WORDS);
        var_set(t, best, var_get(t, best) & 1);
        if (var_get(t, best))
            cover_add(out, t);
    }
    free(t);
    cover_free(r1);
    cover_free(r0);
    return cover_scc(out);
}

static int meets_any(const word_t *c, const cover_t *r)
{
    for (int i = 0; i < r->n; i++)
        if (cubes_meet(c, cube_at(r, i)))
            return 1;
    return 0;
}

static cover_t *expand(const cover_t *f, const cover_t *off)
{
    cover_t *out = cover_new(4);
    for (int i = 0; i < f->n; i++) {
        word_t *cur = cube_new();
        memcpy(cur, cube_at(f, i), sizeof(word_t) * WORDS);
        for (int v = 0; v < NVARS; v++) {
            if (var_get(cur, v) == 3)
                continue;
            word_t *trial = cube_new();
            memcpy(trial, cur, sizeof(word_t) * WORDS);
            var_set(trial, v, 3);
            if (!meets_any(trial, off)) {
                free(cur);
                cur = trial;
            } else {
                free(trial);
            }
        }
        cover_add(out, cur);
        free(cur);
    }
    return cover_scc(out);
}

static cover_t *random_function(rng_t *r)
{
    cover_t *f = cover_new(4);
    word_t *t = cube_new();
    for (int i = 0; i < NCUBES; i++) {
        cube_universe(t);
        for (int v = 0; v < ACTIVE; v++) {
            uint64_t x = rng_below(r, 100);
            if (x < LITPCT / 2)
                var_set(t, v, 2);
            else if (x < LITPCT)
                var_set(t, v, 1);
        }
        cover_add(f, t);
    }
    free(t);
    return f;
}

static void check(const cover_t *f, const cover_t *res, const cover_t *off)
{
    for (int i = 0; i < res->n; i++)
        if (meets_any(cube_at(res, i), off)) {
            fprintf(stderr, "espresso: a result cube meets the off-set\n");
            exit(1);
        }
    for (int i = 0; i < f->n; i++) {
        int inside = 0;
        for (int j = 0; j < res->n && !inside; j++)
            inside = cube_contains(cube_at(res, j), cube_at(f, i));
        if (!inside) {
            fprintf(stderr, "espresso: an on-set cube is not covered\n");
            exit(1);
        }
    }
}

int main(int argc, char **argv)
{
    double scale = bench_arg_f(argc, argv, 2, 1.0);
    long rounds = (long)(ROUNDS_PER_SCALE * scale);
    rng_t r;
    rng_seed(&r, 17);
    cover_t *kept[KEEP] = {NULL};
    long in_cubes = 0, off_cubes = 0, out_cubes = 0;
    for (long k = 0; k < rounds; k++) {
        cover_t *f = random_function(&r);
        cover_t *off = complement(f);
        cover_t *res = expand(f, off);
        check(f, res, off);
        in_cubes += f->n;
        off_cubes += off->n;
        out_cubes += res->n;
        cover_free(f);
        cover_free(off);
        cover_free(kept[k % KEEP]);
        kept[k % KEEP] = res;
    }
    for (int i = 0; i < KEEP; i++)
        cover_free(kept[i]);
    printf("espresso: %ld functions of %d inputs: %ld cubes in, %ld in the "
           "complements, %ld after expansion\n", rounds, NVARS, in_cubes,
           off_cubes, out_cubes);
    return 0;
}
