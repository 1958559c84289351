/* sample.c — see sample.h. The filters follow llama.cpp's
 * common/sampling.cpp defaults and src/llama-sampling.cpp semantics:
 * top-p keeps the smallest prefix (by probability) whose mass reaches p,
 * min-p keeps tokens whose probability is at least min_p times the
 * largest, and every filter keeps at least one token. */
#include "sample.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

void sample_params_default(struct sample_params *p)
{
    p->temperature = 0.7;
    p->top_k = 40;
    p->top_p = 0.9;
    p->min_p = 0.05;
    p->repeat_penalty = 1.1;
    p->repeat_last_n = 64;
    p->seed = 0;
}

/* splitmix64 (Steele, Lea & Flood 2014) spreads one 64-bit seed over the
 * 256-bit state, as the xoshiro authors recommend */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void rng_seed(struct rng *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t rng_next(struct rng *r)
{
    uint64_t *s = r->s;
    uint64_t out = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return out;
}

double rng_uniform(struct rng *r)
{
    return (double)(rng_next(r) >> 11) * 0x1.0p-53;
}

struct sampler {
    struct sample_params p;
    struct rng rng;
    int n_vocab;
    float *logits;                 /* penalised copy */
    uint8_t *seen;                 /* per id, for the penalty */
    struct sample_cand *cand;
};

int sampler_new(const struct sample_params *p, int n_vocab, struct sampler **out)
{
    *out = NULL;
    if (n_vocab <= 0) return iso_fail(ISO_EINTERNAL, "sampler over %d tokens", n_vocab);
    struct sampler *s = calloc(1, sizeof *s);
    if (!s) return iso_fail(ISO_EINTERNAL, "out of memory");
    s->p = *p;
    s->n_vocab = n_vocab;
    s->logits = malloc((size_t)n_vocab * sizeof *s->logits);
    s->seen = calloc((size_t)n_vocab, 1);
    s->cand = malloc((size_t)n_vocab * sizeof *s->cand);
    if (!s->logits || !s->seen || !s->cand) {
        sampler_free(&s);
        return iso_fail(ISO_EINTERNAL, "out of memory");
    }
    rng_seed(&s->rng, p->seed);
    *out = s;
    return 0;
}

void sampler_free(struct sampler **sp)
{
    struct sampler *s = sp ? *sp : NULL;
    if (!s) return;
    free(s->logits);
    free(s->seen);
    free(s->cand);
    free(s);
    *sp = NULL;
}

void sampler_reseed(struct sampler *s, uint64_t seed)
{
    s->p.seed = seed;
    rng_seed(&s->rng, seed);
}

void sampler_set_params(struct sampler *s, const struct sample_params *p)
{
    uint64_t seed = s->p.seed;
    s->p = *p;
    s->p.seed = seed;
}

/* descending logit, ascending id on ties: a total order, so results do not
 * depend on the sort algorithm */
static int cand_cmp(const void *a, const void *b)
{
    const struct sample_cand *x = a, *y = b;
    if (x->logit != y->logit) return x->logit > y->logit ? -1 : 1;
    return x->id < y->id ? -1 : x->id > y->id;
}

/* k best of c[0..n) into c[0..k), sorted: a min-heap of the k best so far */
static void top_k_select(struct sample_cand *c, size_t n, size_t k)
{
    for (size_t i = 0; i < n; i++) {
        size_t j;
        if (i < k) {
            j = i;
            struct sample_cand v = c[i];
            while (j > 0 && cand_cmp(&v, &c[(j - 1) / 2]) > 0) { c[j] = c[(j - 1) / 2]; j = (j - 1) / 2; }
            c[j] = v;
            continue;
        }
        if (cand_cmp(&c[i], &c[0]) >= 0) continue;   /* not better than the worst kept */
        struct sample_cand v = c[i];
        j = 0;
        for (;;) {
            size_t l = 2 * j + 1, m = l;
            if (l >= k) break;
            if (l + 1 < k && cand_cmp(&c[l + 1], &c[l]) > 0) m = l + 1;
            if (cand_cmp(&c[m], &v) <= 0) break;
            c[j] = c[m];
            j = m;
        }
        c[j] = v;
    }
    qsort(c, k, sizeof *c, cand_cmp);
}

/* softmax of logit / temp over c[0..n), which is sorted (c[0] the largest) */
static void softmax(struct sample_cand *c, size_t n, double temp)
{
    double sum = 0, mx = c[0].logit;
    for (size_t i = 0; i < n; i++) {
        c[i].p = exp(((double)c[i].logit - mx) / temp);
        sum += c[i].p;
    }
    for (size_t i = 0; i < n; i++) c[i].p /= sum;
}

int sampler_dist(struct sampler *s, const float *logits, const int32_t *hist, size_t nhist,
                 const struct sample_cand **cand, size_t *nout)
{
    const struct sample_params *p = &s->p;
    size_t n = (size_t)s->n_vocab;
    memcpy(s->logits, logits, n * sizeof *logits);
    for (size_t i = 0; i < n; i++)
        if (s->logits[i] != s->logits[i]) return iso_fail(ISO_EINTERNAL, "logit %zu is NaN", i);
    if (p->repeat_penalty != 1.0 && p->repeat_last_n > 0 && nhist) {
        size_t from = nhist > (size_t)p->repeat_last_n ? nhist - (size_t)p->repeat_last_n : 0;
        for (size_t i = from; i < nhist; i++) {
            int32_t id = hist[i];
            if (id < 0 || id >= s->n_vocab || s->seen[id]) continue;
            s->seen[id] = 1;
            float *l = &s->logits[id];
            *l = *l > 0 ? (float)(*l / p->repeat_penalty) : (float)(*l * p->repeat_penalty);
        }
        for (size_t i = from; i < nhist; i++)
            if (hist[i] >= 0 && hist[i] < s->n_vocab) s->seen[hist[i]] = 0;
    }
    for (size_t i = 0; i < n; i++) {
        s->cand[i].id = (int32_t)i;
        s->cand[i].logit = s->logits[i];
        s->cand[i].p = 0;
    }
    struct sample_cand *c = s->cand;
    if (p->temperature <= 0) {
        size_t best = 0;
        for (size_t i = 1; i < n; i++)
            if (c[i].logit > c[best].logit) best = i;
        c[0] = c[best];
        c[0].p = 1;
        *cand = c;
        *nout = 1;
        return 0;
    }
    if (p->top_k > 0 && (size_t)p->top_k < n) {
        top_k_select(c, n, (size_t)p->top_k);
        n = (size_t)p->top_k;
    } else {
        qsort(c, n, sizeof *c, cand_cmp);
    }
    if (p->top_p < 1.0) {
        softmax(c, n, 1.0);
        double cum = 0;
        size_t keep = n;
        for (size_t i = 0; i < n; i++) {
            cum += c[i].p;
            if (cum >= p->top_p) { keep = i + 1; break; }
        }
        n = keep;
    }
    if (p->min_p > 0) {
        /* p_i >= min_p * p_max  <=>  logit_i >= logit_max + log(min_p) */
        double lim = (double)c[0].logit + log(p->min_p);
        size_t keep = 1;
        while (keep < n && (double)c[keep].logit >= lim) keep++;
        n = keep;
    }
    softmax(c, n, p->temperature);
    *cand = c;
    *nout = n;
    return 0;
}

int32_t sampler_sample(struct sampler *s, const float *logits, const int32_t *hist, size_t nhist)
{
    const struct sample_cand *c;
    size_t n;
    int rc = sampler_dist(s, logits, hist, nhist, &c, &n);
    if (rc) return rc;
    if (n == 1) return c[0].id;
    double u = rng_uniform(&s->rng), cum = 0;
    for (size_t i = 0; i < n; i++) {
        cum += c[i].p;
        if (u < cum) return c[i].id;
    }
    return c[n - 1].id;   /* u beyond the rounded total */
}
