/*
 * nbody.c — a Barnes-Hut gravity simulation whose octree is rebuilt from
 * malloc'd cells at every step (standing in for mimalloc-bench's barnes, the
 * SPLASH-2 code, which is compute-bound: the allocator matters through the
 * placement of the cells the force walk reads, not through call counts).
 *
 *   nbody THREADS SCALE
 *
 * BODIES bodies start as a Plummer sphere drawn from a fixed-seed generator.
 * A step builds the tree by inserting the bodies one by one (a cell is
 * malloc'd whenever two bodies meet in the same octant), computes every
 * cell's mass and centre of mass, walks the tree once per body for its
 * acceleration (a cell is taken whole when its width is under THETA times its
 * distance), moves the bodies, and frees the tree.  SCALE sets the number of
 * steps.  THREADS is accepted for the common command line and ignored.
 *
 * Nothing depends on addresses, so the printed checksum is the same under
 * every allocator; the runner compares it with glibc's.  The tree walk and the
 * body loop are plain C with no reassociation, so the floating point is
 * deterministic for a given binary.
 */
#include "common.h"
#include <math.h>

#define BODIES 16384
#define STEPS_PER_SCALE 20
#define DT 0.025
#define EPS 0.05                     /* softening length */
#define THETA 1.0                    /* opening criterion (tol) */
#define MAX_DEPTH 64

enum { BODY, CELL };

/* The common head of bodies and cells: a cell's mass and pos are the total
 * and centre of mass of what lies below it. */
typedef struct {
    int kind;
    double mass;
    double pos[3];
} node_t;

typedef struct {
    node_t n;
    double vel[3], acc[3];
} body_t;

typedef struct {
    node_t n;
    double center[3];
    double half;                     /* half the cube's edge */
    node_t *sub[8];
} cell_t;

static long cells_made;

static cell_t *cell_new(const double center[3], double half)
{
    cell_t *c = xmalloc(sizeof(cell_t));
    c->n.kind = CELL;
    c->n.mass = 0;
    for (int k = 0; k < 3; k++) {
        c->center[k] = center[k];
        c->n.pos[k] = 0;
    }
    c->half = half;
    for (int i = 0; i < 8; i++)
        c->sub[i] = NULL;
    cells_made++;
    return c;
}

static int octant(const cell_t *c, const double p[3])
{
    return (p[0] >= c->center[0]) | (p[1] >= c->center[1]) << 1 |
           (p[2] >= c->center[2]) << 2;
}

static void sub_center(const cell_t *c, int o, double out[3])
{
    double q = c->half / 2;
    for (int k = 0; k < 3; k++)
        out[k] = c->center[k] + ((o >> k & 1) ? q : -q);
}

static void insert(cell_t *c, body_t *b, int depth)
{
    if (depth > MAX_DEPTH) {
        fprintf(stderr, "nbody: two bodies at the same place\n");
        exit(1);
    }
    int o = octant(c, b->n.pos);
    node_t *s = c->sub[o];
    if (s == NULL) {
        c->sub[o] = &b->n;
        return;
    }
    if (s->kind == BODY) {
        /* Two bodies in one octant: split it and push both down. */
        double ctr[3];
        sub_center(c, o, ctr);
        cell_t *nc = cell_new(ctr, c->half / 2);
        c->sub[o] = &nc->n;
        insert(nc, (body_t *)s, depth + 1);
        insert(nc, b, depth + 1);
        return;
    }
    insert((cell_t *)s, b, depth + 1);
}

/* Post-order: total mass and centre of mass of every cell. */
static void summarize(cell_t *c)
{
    double m = 0, p[3] = {0, 0, 0};
    for (int i = 0; i < 8; i++) {
        node_t *s = c->sub[i];
        if (s == NULL)
            continue;
        if (s->kind == CELL)
            summarize((cell_t *)s);
        m += s->mass;
        for (int k = 0; k < 3; k++)
            p[k] += s->mass * s->pos[k];
    }
    c->n.mass = m;
    for (int k = 0; k < 3; k++)
        c->n.pos[k] = m > 0 ? p[k] / m : c->center[k];
}

static void pull(body_t *b, const node_t *src, double acc[3])
{
    double d[3], r2 = EPS * EPS;
    for (int k = 0; k < 3; k++) {
        d[k] = src->pos[k] - b->n.pos[k];
        r2 += d[k] * d[k];
    }
    double f = src->mass / (r2 * sqrt(r2));
    for (int k = 0; k < 3; k++)
        acc[k] += f * d[k];
}

static void walk(body_t *b, const node_t *s, double acc[3])
{
    if (s->kind == BODY) {
        if (s != &b->n)
            pull(b, s, acc);
        return;
    }
    const cell_t *c = (const cell_t *)s;
    double d2 = 0;
    for (int k = 0; k < 3; k++) {
        double d = c->n.pos[k] - b->n.pos[k];
        d2 += d * d;
    }
    double w = 2 * c->half;
    if (w * w < THETA * THETA * d2) {
        pull(b, s, acc);
        return;
    }
    for (int i = 0; i < 8; i++)
        if (c->sub[i])
            walk(b, c->sub[i], acc);
}

static void free_tree(cell_t *c)
{
    for (int i = 0; i < 8; i++)
        if (c->sub[i] && c->sub[i]->kind == CELL)
            free_tree((cell_t *)c->sub[i]);
    free(c);
}

static double uniform(rng_t *r)
{
    return ((double)(rng_next(r) >> 11) + 0.5) / 9007199254740992.0;
}

/* A random direction scaled to length len. */
static void random_vector(rng_t *r, double len, double v[3])
{
    double z = 2 * uniform(r) - 1, phi = 2 * M_PI * uniform(r);
    double s = sqrt(1 - z * z);
    v[0] = len * s * cos(phi);
    v[1] = len * s * sin(phi);
    v[2] = len * z;
}

/* Plummer sphere: radius from the inverted cumulative mass, speed as a
 * fraction q of the local escape speed with density q^2 (1 - q^2)^3.5, drawn
 * by rejection; units scaled so the total energy is -1/4. */
static void plummer(body_t *b, int n, rng_t *r)
{
    const double rs = 3 * M_PI / 16, vs = sqrt(1 / rs);
    for (int i = 0; i < n; i++) {
        double rad;
        do
            rad = 1 / sqrt(pow(uniform(r), -2.0 / 3) - 1);
        while (rad > 10);
        double q, g;
        do {
            q = uniform(r);
            g = 0.1 * uniform(r);
        } while (g > q * q * pow(1 - q * q, 3.5));
        double speed = q * sqrt(2.0) * pow(1 + rad * rad, -0.25);
        b[i].n.kind = BODY;
        b[i].n.mass = 1.0 / n;
        random_vector(r, rad * rs, b[i].n.pos);
        random_vector(r, speed * vs, b[i].vel);
    }
}

static void step(body_t *b, int n)
{
    double lo = 1e300, hi = -1e300;
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) {
            lo = fmin(lo, b[i].n.pos[k]);
            hi = fmax(hi, b[i].n.pos[k]);
        }
    double ctr[3] = {(lo + hi) / 2, (lo + hi) / 2, (lo + hi) / 2};
    cell_t *root = cell_new(ctr, (hi - lo) / 2 * 1.0001 + 1e-9);
    for (int i = 0; i < n; i++)
        insert(root, &b[i], 0);
    summarize(root);
    for (int i = 0; i < n; i++) {
        double acc[3] = {0, 0, 0};
        walk(&b[i], &root->n, acc);
        for (int k = 0; k < 3; k++)
            b[i].acc[k] = acc[k];
    }
    free_tree(root);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < 3; k++) {
            b[i].vel[k] += DT * b[i].acc[k];
            b[i].n.pos[k] += DT * b[i].vel[k];
        }
}

int main(int argc, char **argv)
{
    double scale = bench_arg_f(argc, argv, 2, 1.0);
    int steps = (int)(STEPS_PER_SCALE * scale + 0.5);
    if (steps < 1)
        steps = 1;
    rng_t r;
    rng_seed(&r, 123);
    body_t *b = xmalloc(sizeof(body_t) * BODIES);
    plummer(b, BODIES, &r);
    for (int s = 0; s < steps; s++)
        step(b, BODIES);
    double sum = 0, kin = 0;
    for (int i = 0; i < BODIES; i++)
        for (int k = 0; k < 3; k++) {
            sum += b[i].n.pos[k] * (k + 1) + b[i].vel[k];
            kin += 0.5 * b[i].n.mass * b[i].vel[k] * b[i].vel[k];
        }
    printf("nbody: %d bodies, %d steps, %ld cells, checksum %.12e, "
           "kinetic %.12e\n", BODIES, steps, cells_made, sum, kin);
    free(b);
    return 0;
}
