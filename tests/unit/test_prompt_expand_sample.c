/* test_prompt_expand_sample.c — the sampler against distributions worked
 * out by hand (and the PRNG against the published splitmix64 value and a
 * separate Python transcription of xoshiro256**). */
#include "test.h"

#include <stdint.h>

#include "sample.h"

/* candidates of sampler_dist as a dense probability vector */
static int dist(struct sampler *s, const float *logits, int n, const int32_t *hist, size_t nh, double *p)
{
    const struct sample_cand *c;
    size_t k;
    for (int i = 0; i < n; i++) p[i] = 0;
    if (sampler_dist(s, logits, hist, nh, &c, &k)) return -1;
    double sum = 0;
    for (size_t i = 0; i < k; i++) {
        p[c[i].id] = c[i].p;
        sum += c[i].p;
        if (i && c[i].p > c[i - 1].p + 1e-12) return -2;   /* most probable first */
    }
    return fabs(sum - 1) < 1e-12 ? (int)k : -3;
}

static struct sampler *mk(double temp, int top_k, double top_p, double min_p, double pen, uint64_t seed, int n)
{
    struct sample_params p = { temp, top_k, top_p, min_p, pen, 64, seed };
    struct sampler *s = NULL;
    return sampler_new(&p, n, &s) == 0 ? s : NULL;
}

static void test_rng(void)
{
    TEST("prng");
    struct rng r;
    rng_seed(&r, 0);
    /* splitmix64 from state 0: first output 0xe220a8397b1dcdaf (Vigna's splitmix64.c) */
    CHECK(r.s[0] == 0xe220a8397b1dcdafull);
    static const uint64_t want0[4] = { 0x99ec5f36cb75f2b4ull, 0xbf6e1f784956452aull, 0x1a5f849d4933e6e0ull,
                                       0x6aa594f1262d2d2cull };
    static const uint64_t want42[4] = { 0x15780b2e0c2ec716ull, 0x6104d9866d113a7eull, 0xae17533239e499a1ull,
                                        0xecb8ad4703b360a1ull };
    for (int i = 0; i < 4; i++) CHECK(rng_next(&r) == want0[i]);
    rng_seed(&r, 42);
    for (int i = 0; i < 4; i++) CHECK(rng_next(&r) == want42[i]);
    double lo = 1, hi = 0, mean = 0;
    for (int i = 0; i < 100000; i++) {
        double u = rng_uniform(&r);
        lo = u < lo ? u : lo;
        hi = u > hi ? u : hi;
        mean += u;
    }
    mean /= 100000;
    CHECK(lo >= 0 && hi < 1);
    CHECK_NEAR(mean, 0.5, 0.005);   /* sd of the mean: 0.29 / sqrt(1e5) = 0.0009 */
}

static void test_filters(void)
{
    TEST("filters");
    /* p = 0.5, 0.3, 0.2 and a 4th token at p ~ 0 */
    const float lg[4] = { logf(0.5f), logf(0.3f), logf(0.2f), -1e9f };
    double p[4];
    struct sampler *s;

    s = mk(1, 0, 1, 0, 1, 0, 4);
    CHECK(dist(s, lg, 4, NULL, 0, p) == 4);
    CHECK_NEAR(p[0], 0.5, 1e-6); CHECK_NEAR(p[1], 0.3, 1e-6); CHECK_NEAR(p[2], 0.2, 1e-6); CHECK_NEAR(p[3], 0, 1e-12);
    sampler_free(&s);

    /* top-k 2: 0.5/0.8, 0.3/0.8 */
    s = mk(1, 2, 1, 0, 1, 0, 4);
    CHECK(dist(s, lg, 4, NULL, 0, p) == 2);
    CHECK_NEAR(p[0], 0.625, 1e-6); CHECK_NEAR(p[1], 0.375, 1e-6); CHECK(p[2] == 0);
    sampler_free(&s);

    /* top-p 0.7: 0.5 < 0.7, 0.5 + 0.3 >= 0.7 -> two tokens */
    s = mk(1, 0, 0.7, 0, 1, 0, 4);
    CHECK(dist(s, lg, 4, NULL, 0, p) == 2);
    CHECK_NEAR(p[0], 0.625, 1e-6); CHECK_NEAR(p[1], 0.375, 1e-6);
    sampler_free(&s);
    /* top-p 0.5: the first token alone reaches it */
    s = mk(1, 0, 0.5, 0, 1, 0, 4);
    CHECK(dist(s, lg, 4, NULL, 0, p) == 1);
    CHECK_NEAR(p[0], 1, 1e-12);
    sampler_free(&s);
    /* top-p 0.95: 0.5 + 0.3 + 0.2 */
    s = mk(1, 0, 0.95, 0, 1, 0, 4);
    CHECK(dist(s, lg, 4, NULL, 0, p) == 3);
    sampler_free(&s);

    /* min-p 0.5: keep p >= 0.25 -> 0.5, 0.3 */
    s = mk(1, 0, 1, 0.5, 1, 0, 4);
    CHECK(dist(s, lg, 4, NULL, 0, p) == 2);
    CHECK_NEAR(p[0], 0.625, 1e-6);
    sampler_free(&s);
    /* min-p 0.39: 0.2 < 0.195? no: 0.2 >= 0.195 -> three */
    s = mk(1, 0, 1, 0.39, 1, 0, 4);
    CHECK(dist(s, lg, 4, NULL, 0, p) == 3);
    sampler_free(&s);

    /* temperature 2: p ~ sqrt(0.5), sqrt(0.3), sqrt(0.2) */
    s = mk(2, 0, 1, 0, 1, 0, 4);
    CHECK(dist(s, lg, 4, NULL, 0, p) == 4);
    double z = sqrt(0.5) + sqrt(0.3) + sqrt(0.2);
    CHECK_NEAR(p[0], sqrt(0.5) / z, 1e-6); CHECK_NEAR(p[1], sqrt(0.3) / z, 1e-6); CHECK_NEAR(p[2], sqrt(0.2) / z, 1e-6);
    sampler_free(&s);
    /* temperature 0.5: p ~ 0.25, 0.09, 0.04 */
    s = mk(0.5, 0, 1, 0, 1, 0, 4);
    dist(s, lg, 4, NULL, 0, p);
    CHECK_NEAR(p[0], 0.25 / 0.38, 1e-6); CHECK_NEAR(p[2], 0.04 / 0.38, 1e-6);
    sampler_free(&s);

    /* filters see temperature-1 probabilities: top-p 0.7 keeps two tokens even at temperature 2 */
    s = mk(2, 0, 0.7, 0, 1, 0, 4);
    CHECK(dist(s, lg, 4, NULL, 0, p) == 2);
    z = sqrt(0.5) + sqrt(0.3);
    CHECK_NEAR(p[0], sqrt(0.5) / z, 1e-6);
    sampler_free(&s);
}

static void test_penalty_greedy(void)
{
    TEST("repetition penalty and greedy");
    double p[4];
    /* negative logit is multiplied: ln 0.5 * 2 = ln 0.25 -> p ~ 0.25, 0.3, 0.2 */
    const float lg[3] = { logf(0.5f), logf(0.3f), logf(0.2f) };
    const int32_t h1[3] = { 0, 0, 0 };   /* repeated: penalised once */
    struct sampler *s = mk(1, 0, 1, 0, 2, 0, 3);
    CHECK(dist(s, lg, 3, h1, 3, p) == 3);
    CHECK_NEAR(p[0], 0.25 / 0.75, 1e-6); CHECK_NEAR(p[1], 0.3 / 0.75, 1e-6);
    sampler_free(&s);
    /* positive logit is divided: [2, 1, 0] with token 0 penalised 2 -> [1, 1, 0] */
    const float pos[3] = { 2, 1, 0 };
    s = mk(1, 0, 1, 0, 2, 0, 3);
    dist(s, pos, 3, h1, 1, p);
    double e = exp(1.0), z = 2 * e + 1;
    CHECK_NEAR(p[0], e / z, 1e-6); CHECK_NEAR(p[1], e / z, 1e-6); CHECK_NEAR(p[2], 1 / z, 1e-6);
    sampler_free(&s);
    /* only the last repeat_last_n tokens count */
    struct sample_params sp = { 1, 0, 1, 0, 2, 2, 0 };
    const int32_t h2[3] = { 0, 1, 1 };
    s = NULL;
    sampler_new(&sp, 3, &s);
    dist(s, pos, 3, h2, 3, p);   /* token 1: 1 -> 0.5, token 0 untouched */
    z = exp(2.0) + exp(0.5) + 1;
    CHECK_NEAR(p[0], exp(2.0) / z, 1e-6); CHECK_NEAR(p[1], exp(0.5) / z, 1e-6);
    sampler_free(&s);

    /* greedy: argmax, lowest id on ties, after the penalty */
    s = mk(0, 0, 1, 0, 1, 0, 3);
    CHECK(sampler_sample(s, pos, NULL, 0) == 0);
    const float tie[3] = { 1, 3, 3 };
    CHECK(sampler_sample(s, tie, NULL, 0) == 1);
    sampler_free(&s);
    s = mk(0, 0, 1, 0, 4, 0, 3);
    CHECK(sampler_sample(s, pos, h1, 1) == 1);   /* 2 / 4 = 0.5 < 1 */
    /* set_params turns greedy into sampling (the retry of a greedy run) */
    struct sample_params t1 = { 1, 0, 1, 0, 1, 64, 999 };
    sampler_set_params(s, &t1);
    CHECK(dist(s, pos, 3, NULL, 0, p) == 3);
    z = exp(2.0) + exp(1.0) + 1;
    CHECK_NEAR(p[0], exp(2.0) / z, 1e-6);
    sampler_free(&s);
}

static void test_draws(void)
{
    TEST("draws follow the distribution and the seed");
    const float lg[4] = { logf(0.5f), logf(0.3f), logf(0.2f), -1e9f };
    struct sampler *s = mk(1, 0, 1, 0, 1, 7, 4);
    int cnt[4] = { 0 };
    const int N = 100000;
    for (int i = 0; i < N; i++) {
        int32_t id = sampler_sample(s, lg, NULL, 0);
        if (id >= 0 && id < 4) cnt[id]++;
    }
    /* 5 standard deviations of a binomial count: 5 * sqrt(N p (1-p)) ~ 790 at p = 0.5 */
    CHECKF(abs(cnt[0] - N / 2) < 800, "%d", cnt[0]);
    CHECKF(abs(cnt[1] - 3 * N / 10) < 730, "%d", cnt[1]);
    CHECKF(abs(cnt[2] - N / 5) < 640, "%d", cnt[2]);
    CHECK(cnt[3] == 0);
    sampler_free(&s);

    /* the same seed gives the same tokens; another seed other tokens; reseed restarts */
    struct sampler *a = mk(1, 0, 1, 0, 1, 123, 4), *b = mk(1, 0, 1, 0, 1, 123, 4), *c = mk(1, 0, 1, 0, 1, 124, 4);
    int same = 1, diff = 0;
    int32_t first[64];
    for (int i = 0; i < 64; i++) {
        int32_t x = sampler_sample(a, lg, NULL, 0), y = sampler_sample(b, lg, NULL, 0), z = sampler_sample(c, lg, NULL, 0);
        first[i] = x;
        same &= x == y;
        diff |= x != z;
    }
    CHECK(same);
    CHECK(diff);
    sampler_reseed(a, 123);
    int again = 1;
    for (int i = 0; i < 64; i++) again &= sampler_sample(a, lg, NULL, 0) == first[i];
    CHECK(again);
    sampler_free(&a); sampler_free(&b); sampler_free(&c);

    /* top-k over a large vocabulary keeps exactly the k best (heap selection) */
    enum { V = 5000 };
    static float big[V];
    struct rng r;
    rng_seed(&r, 99);
    for (int i = 0; i < V; i++) big[i] = (float)(rng_uniform(&r) * 10);
    s = mk(1, 25, 1, 0, 1, 0, V);
    const struct sample_cand *cd;
    size_t n;
    CHECK(sampler_dist(s, big, NULL, 0, &cd, &n) == 0 && n == 25);
    int ok = 1;
    for (size_t i = 0; i < n; i++) {
        int better = 0;   /* how many logits beat this candidate */
        for (int j = 0; j < V; j++) better += big[j] > cd[i].logit;
        ok &= better == (int)i;
    }
    CHECK(ok);
    sampler_free(&s);
}

int main(void)
{
    test_rng();
    test_filters();
    test_penalty_greedy();
    test_draws();
    return test_report();
}
