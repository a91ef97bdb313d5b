/*
 * cfrac.c — a stand-in for mimalloc-bench's cfrac (continued-fraction
 * factoring with a small bignum library): what matters here is its
 * allocation pattern, not the factoring.
 *
 *   cfrac THREADS SCALE
 *
 * Every bignum is its own malloc'd block (a length word and 32-bit digits,
 * 8..48 bytes for the numbers here), and every arithmetic operation returns a
 * fresh one; operands are freed as soon as they are dead, so nearly all
 * blocks live for a few operations, as in the original's reference-counted
 * numbers.  The program expands the continued fraction of sqrt(N) for the
 * 44-digit number the published benchmark factors, keeps the convergents
 * modulo N, and trial-divides each Q by a factor base of small primes (each
 * trial division allocates its quotient).  Q values that factor completely
 * are kept as relations (long-lived), those with one cofactor under a bound
 * as partial relations, and every relation is verified: P^2 must equal
 * (-1)^k Q modulo N, which checks the arithmetic and the memory under it.
 * SCALE sets the number of expansion steps; THREADS is ignored.  The output
 * is deterministic and compared with glibc's.
 */
#include "common.h"

#define STEPS_PER_SCALE 40000L
#define PRIME_LIMIT 20000
#define PARTIAL_BOUND 400000000u

typedef struct {
    uint32_t n;                 /* digits in use; zero has none */
    uint32_t d[];               /* little-endian base 2^32 */
} bn_t;

static bn_t *bn_alloc(uint32_t n)
{
    bn_t *a = xmalloc(sizeof(bn_t) + sizeof(uint32_t) * (n ? n : 1));
    a->n = n;
    return a;
}

static bn_t *bn_trim(bn_t *a)
{
    while (a->n && a->d[a->n - 1] == 0)
        a->n--;
    return a;
}

static bn_t *bn_from(uint64_t v)
{
    bn_t *a = bn_alloc(2);
    a->d[0] = (uint32_t)v;
    a->d[1] = (uint32_t)(v >> 32);
    return bn_trim(a);
}

static bn_t *bn_copy(const bn_t *a)
{
    bn_t *c = bn_alloc(a->n);
    memcpy(c->d, a->d, sizeof(uint32_t) * a->n);
    return c;
}

static int bn_cmp(const bn_t *a, const bn_t *b)
{
    if (a->n != b->n)
        return a->n < b->n ? -1 : 1;
    for (uint32_t i = a->n; i-- > 0;)
        if (a->d[i] != b->d[i])
            return a->d[i] < b->d[i] ? -1 : 1;
    return 0;
}

static bn_t *bn_add(const bn_t *a, const bn_t *b)
{
    if (a->n < b->n) {
        const bn_t *t = a;
        a = b;
        b = t;
    }
    bn_t *c = bn_alloc(a->n + 1);
    uint64_t carry = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        carry += (uint64_t)a->d[i] + (i < b->n ? b->d[i] : 0);
        c->d[i] = (uint32_t)carry;
        carry >>= 32;
    }
    c->d[a->n] = (uint32_t)carry;
    return bn_trim(c);
}

/* a - b, a >= b. */
static bn_t *bn_sub(const bn_t *a, const bn_t *b)
{
    bn_t *c = bn_alloc(a->n);
    int64_t borrow = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        int64_t t = (int64_t)a->d[i] - (i < b->n ? b->d[i] : 0) - borrow;
        borrow = t < 0;
        c->d[i] = (uint32_t)t;
    }
    if (borrow) {
        fprintf(stderr, "cfrac: negative difference\n");
        exit(1);
    }
    return bn_trim(c);
}

static bn_t *bn_mul(const bn_t *a, const bn_t *b)
{
    bn_t *c = bn_alloc(a->n + b->n);
    memset(c->d, 0, sizeof(uint32_t) * c->n);
    for (uint32_t i = 0; i < a->n; i++) {
        uint64_t carry = 0;
        for (uint32_t j = 0; j < b->n; j++) {
            carry += (uint64_t)a->d[i] * b->d[j] + c->d[i + j];
            c->d[i + j] = (uint32_t)carry;
            carry >>= 32;
        }
        c->d[i + b->n] = (uint32_t)carry;
    }
    return bn_trim(c);
}

/* Quotient by a small divisor; the remainder goes to *rem. */
static bn_t *bn_divsmall(const bn_t *a, uint32_t m, uint32_t *rem)
{
    bn_t *q = bn_alloc(a->n);
    uint64_t r = 0;
    for (uint32_t i = a->n; i-- > 0;) {
        r = r << 32 | a->d[i];
        q->d[i] = (uint32_t)(r / m);
        r %= m;
    }
    *rem = (uint32_t)r;
    return bn_trim(q);
}

/* a << s (s < 32) into a fresh number with one spare digit. */
static bn_t *bn_shl_spare(const bn_t *a, int s)
{
    bn_t *c = bn_alloc(a->n + 1);
    uint32_t carry = 0;
    for (uint32_t i = 0; i < a->n; i++) {
        c->d[i] = a->d[i] << s | carry;
        carry = s ? a->d[i] >> (32 - s) : 0;
    }
    c->d[a->n] = carry;
    return c;
}

/* Long division (Knuth's algorithm D): returns a / b, *rem = a mod b. The
 * normalised copies of both operands are temporaries of their own, as in
 * the original library. */
static bn_t *bn_divmod(const bn_t *a, const bn_t *b, bn_t **rem)
{
    if (b->n == 0) {
        fprintf(stderr, "cfrac: division by zero\n");
        exit(1);
    }
    if (bn_cmp(a, b) < 0) {
        *rem = bn_copy(a);
        return bn_alloc(0);
    }
    if (b->n == 1) {
        uint32_t r;
        bn_t *q = bn_divsmall(a, b->d[0], &r);
        *rem = bn_from(r);
        return q;
    }
    int s = __builtin_clz(b->d[b->n - 1]);
    bn_t *u = bn_shl_spare(a, s), *v = bn_shl_spare(b, s);
    uint32_t m = b->n, n = a->n - m;
    bn_t *q = bn_alloc(n + 1);
    const uint64_t B = (uint64_t)1 << 32;
    for (uint32_t j = n + 1; j-- > 0;) {
        uint64_t top = (uint64_t)u->d[j + m] << 32 | u->d[j + m - 1];
        uint64_t qh = top / v->d[m - 1], rh = top % v->d[m - 1];
        while (qh >= B || qh * v->d[m - 2] > (rh << 32 | u->d[j + m - 2])) {
            qh--;
            rh += v->d[m - 1];
            if (rh >= B)
                break;
        }
        int64_t borrow = 0;
        uint64_t carry = 0;
        for (uint32_t i = 0; i < m; i++) {
            carry += qh * v->d[i];
            int64_t t = (int64_t)u->d[i + j] - (int64_t)(uint32_t)carry - borrow;
            carry >>= 32;
            u->d[i + j] = (uint32_t)t;
            borrow = t < 0;
        }
        int64_t t = (int64_t)u->d[j + m] - (int64_t)carry - borrow;
        u->d[j + m] = (uint32_t)t;
        if (t < 0) {
            /* qh was one too large: add v back. */
            qh--;
            uint64_t c = 0;
            for (uint32_t i = 0; i < m; i++) {
                c += (uint64_t)u->d[i + j] + v->d[i];
                u->d[i + j] = (uint32_t)c;
                c >>= 32;
            }
            u->d[j + m] += (uint32_t)c;
        }
        q->d[j] = (uint32_t)qh;
    }
    bn_t *r = bn_alloc(m);
    for (uint32_t i = 0; i < m; i++)
        r->d[i] = u->d[i] >> s |
                  (s ? (uint32_t)((uint64_t)u->d[i + 1] << (32 - s)) : 0);
    free(u);
    free(v);
    *rem = bn_trim(r);
    return bn_trim(q);
}

static bn_t *bn_mod(const bn_t *a, const bn_t *b)
{
    bn_t *r;
    free(bn_divmod(a, b, &r));
    return r;
}

static bn_t *bn_div(const bn_t *a, const bn_t *b)
{
    bn_t *r, *q = bn_divmod(a, b, &r);
    free(r);
    return q;
}

static bn_t *bn_parse(const char *s)
{
    bn_t *a = bn_alloc(0);
    for (; *s; s++) {
        bn_t *ten = bn_from(10), *t = bn_mul(a, ten), *dg = bn_from(
            (uint64_t)(*s - '0'));
        free(a);
        a = bn_add(t, dg);
        free(ten);
        free(t);
        free(dg);
    }
    return a;
}

/* floor(sqrt(a)) by Newton's iteration from above. */
static bn_t *bn_isqrt(const bn_t *a)
{
    bn_t *x = bn_copy(a);
    for (;;) {
        bn_t *q = bn_div(a, x), *s = bn_add(x, q);
        uint32_t r;
        bn_t *y = bn_divsmall(s, 2, &r);
        free(q);
        free(s);
        if (bn_cmp(y, x) >= 0) {
            free(y);
            return x;
        }
        free(x);
        x = y;
    }
}

static uint64_t bn_low64(const bn_t *a)
{
    return (a->n > 0 ? a->d[0] : 0) | (uint64_t)(a->n > 1 ? a->d[1] : 0) << 32;
}

/* Relations: long-lived, one block each plus an exponent-parity bitmap. */
typedef struct rel {
    struct rel *next;
    bn_t *p;                    /* convergent numerator mod N */
    uint64_t cofactor;          /* 1 for a full relation */
    unsigned char *parity;      /* one bit per factor-base prime */
} rel_t;

static int nprimes;
static uint32_t primes[PRIME_LIMIT];

static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m)
{
    return (uint64_t)((unsigned __int128)a * b % m);
}

static uint64_t powmod(uint64_t b, uint64_t e, uint64_t m)
{
    uint64_t r = 1 % m;
    for (b %= m; e; e >>= 1, b = mulmod(b, b, m))
        if (e & 1)
            r = mulmod(r, b, m);
    return r;
}

/* Primes p for which N is a quadratic residue (only they can divide a Q). */
static void factor_base(const bn_t *n)
{
    primes[nprimes++] = 2;
    for (uint32_t p = 3; p < PRIME_LIMIT; p += 2) {
        int prime = 1;
        for (uint32_t d = 3; d * d <= p; d += 2)
            if (p % d == 0)
                prime = 0;
        if (!prime)
            continue;
        uint32_t r;
        free(bn_divsmall(n, p, &r));
        if (r == 0 || powmod(r, (p - 1) / 2, p) == 1)
            primes[nprimes++] = p;
    }
}

/* Checks P^2 == (-1)^k Q (mod N) for a relation found at step k. */
static void verify(const bn_t *p, const bn_t *q, long k, const bn_t *n)
{
    bn_t *pp = bn_mul(p, p), *lhs = bn_mod(pp, n);
    bn_t *rhs = (k & 1) ? bn_sub(n, q) : bn_copy(q);
    if (bn_cmp(lhs, rhs) != 0) {
        fprintf(stderr, "cfrac: relation check failed at step %ld\n", k);
        exit(1);
    }
    free(pp);
    free(lhs);
    free(rhs);
}

int main(int argc, char **argv)
{
    double scale = bench_arg_f(argc, argv, 2, 1.0);
    long steps = (long)(STEPS_PER_SCALE * scale);
    bn_t *n = bn_parse("17545186520507317056371138836327483792789528");
    factor_base(n);
    bn_t *g = bn_isqrt(n);
    /* Q_0 = 1, P_-1 = 1, P_0 = a_0 = g; m_0 = 0. */
    bn_t *m = bn_alloc(0), *d = bn_from(1), *a = bn_copy(g);
    bn_t *p_prev = bn_from(1), *p = bn_copy(g);
    rel_t *rels = NULL;
    long full = 0, partial = 0, matched = 0;
    uint64_t check = 0;
    for (long k = 1; k <= steps; k++) {
        /* m' = a d - m;  d' = (N - m'^2) / d;  a' = (g + m') / d'. */
        bn_t *ad = bn_mul(a, d), *m2 = bn_sub(ad, m);
        bn_t *sq = bn_mul(m2, m2), *diff = bn_sub(n, sq);
        bn_t *d2 = bn_div(diff, d), *gm = bn_add(g, m2), *a2 = bn_div(gm, d2);
        free(ad);
        free(sq);
        free(diff);
        free(gm);
        free(m);
        free(d);
        free(a);
        m = m2;
        d = d2;
        a = a2;
        /* P_k = a_k P_(k-1) + P_(k-2) mod N; P_(k-1)^2 = (-1)^k Q_k mod N. */
        bn_t *ap = bn_mul(a, p), *sum = bn_add(ap, p_prev);
        bn_t *pn = bn_mod(sum, n);
        free(ap);
        free(sum);
        /* Trial division of Q_k = d. */
        bn_t *rest = bn_copy(d);
        unsigned char parity[PRIME_LIMIT / 8] = {0};
        for (int i = 0; i < nprimes && rest->n > 0; i++) {
            for (;;) {
                uint32_t r;
                bn_t *qt = bn_divsmall(rest, primes[i], &r);
                if (r != 0) {
                    free(qt);
                    break;
                }
                free(rest);
                rest = qt;
                parity[i / 8] ^= (unsigned char)(1u << (i % 8));
            }
        }
        uint64_t cof = rest->n <= 2 ? bn_low64(rest) : 0;
        free(rest);
        if (cof == 1 || (cof > 1 && cof < PARTIAL_BOUND)) {
            verify(p, d, k, n);
            rel_t *rl = xmalloc(sizeof(rel_t));
            rl->p = bn_copy(p);
            rl->cofactor = cof;
            rl->parity = xmalloc((size_t)(nprimes + 7) / 8);
            memcpy(rl->parity, parity, (size_t)(nprimes + 7) / 8);
            if (cof == 1) {
                full++;
            } else {
                partial++;
                for (rel_t *o = rels; o; o = o->next)
                    if (o->cofactor == cof) {
                        matched++;
                        break;
                    }
            }
            rl->next = rels;
            rels = rl;
            check = check * 31 + bn_low64(p) + cof;
        }
        free(p_prev);
        p_prev = p;
        p = pn;
    }
    printf("cfrac: %ld steps, factor base %d primes, %ld full and %ld partial "
           "relations (%ld cofactors seen twice), checksum %016llx\n",
           steps, nprimes, full, partial, matched, (unsigned long long)check);
    while (rels) {
        rel_t *next = rels->next;
        free(rels->p);
        free(rels->parity);
        free(rels);
        rels = next;
    }
    free(n);
    free(g);
    free(m);
    free(d);
    free(a);
    free(p_prev);
    free(p);
    return 0;
}
