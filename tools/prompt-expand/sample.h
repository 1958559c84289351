/* sample.h — choosing the next token from logits: repetition penalty,
 * top-k, top-p, min-p, temperature, then a draw from our own PRNG
 * (xoshiro256**, seeded through splitmix64), so a seed gives the same
 * tokens on every machine. The filters run in llama.cpp's default order
 * (penalties, top-k, top-p, min-p, temperature, draw): top-p and min-p see
 * the distribution at temperature 1. Temperature <= 0 is greedy (argmax,
 * lowest id on ties). struct sampler owns its candidate buffer. */
#ifndef ISOPIPE_SAMPLE_H
#define ISOPIPE_SAMPLE_H
#include <stddef.h>
#include <stdint.h>

struct sample_params {
    double temperature;     /* <= 0: greedy */
    int top_k;              /* 0: off */
    double top_p;           /* 1: off */
    double min_p;           /* 0: off; keep p >= min_p * p_max */
    double repeat_penalty;  /* 1: off; CTRL (Keskar et al. 2019) form: logit / pen if > 0, else * pen */
    int repeat_last_n;      /* how many recent tokens the penalty looks at */
    uint64_t seed;
};
void sample_params_default(struct sample_params *p);

/* xoshiro256** (Blackman & Vigna 2018) */
struct rng { uint64_t s[4]; };
void rng_seed(struct rng *r, uint64_t seed);
uint64_t rng_next(struct rng *r);
double rng_uniform(struct rng *r);   /* [0, 1), 53 bits */

struct sample_cand { int32_t id; float logit; double p; };

struct sampler;
int sampler_new(const struct sample_params *p, int n_vocab, struct sampler **out);
void sampler_free(struct sampler **s);
/* reseed the PRNG (a retry with the next seed) */
void sampler_reseed(struct sampler *s, uint64_t seed);
/* change the filters and temperature (p->seed is ignored: the PRNG goes on) */
void sampler_set_params(struct sampler *s, const struct sample_params *p);

/* The distribution a draw would use: candidates that survive the filters,
 * most probable first, p summing to 1 (one candidate with p = 1 when greedy).
 * hist: the tokens so far (the last repeat_last_n are penalised). The array
 * belongs to s and is valid until the next call. */
int sampler_dist(struct sampler *s, const float *logits, const int32_t *hist, size_t nhist,
                 const struct sample_cand **cand, size_t *n);
/* one token: sampler_dist and a draw; returns the id, or <0 on error */
int32_t sampler_sample(struct sampler *s, const float *logits, const int32_t *hist, size_t nhist);
#endif
