/* nn.c — the CPU backend of the numerical core (see nn.h).
 *
 * Parallelism has one rule: matrix products are OpenBLAS's (sgemm runs on
 * its own threads, as many as the pool has), everything else runs on the
 * pool, and BLAS is never called from inside a pool worker (nested
 * threading would oversubscribe the cores). Each output element is written
 * by one thread in a fixed order, so results do not depend on scheduling. */
#include "nn.h"

#include <cblas.h>
#include <math.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "pool.h"

/* OpenBLAS extensions (declared in its cblas.h on Debian; repeated here so
 * the build does not depend on which cblas.h the include path finds) */
extern void openblas_set_num_threads(int num_threads);
extern char *openblas_get_config(void);
extern char *openblas_get_corename(void);

/* scratch a single matrix-product slice may use (im2col columns, converted
 * weight tiles, attention score tiles): bounds the memory of every op */
#define NN_SLICE_BYTES (UINT64_C(64) << 20)

struct nn {
    enum nn_backend backend;
    int threads;
    struct pool *pool;
    float *scratch;          /* growable, for slices */
    size_t scratch_n;
    float *scratch2;
    size_t scratch2_n;
};

int nn_new(struct nn **out, enum nn_backend backend, int threads)
{
    *out = NULL;
    if (backend != NN_CPU) return iso_fail(ISO_EUNAVAIL, "nn: only the CPU backend exists in this build");
    if (threads < 1) threads = 1;
    struct nn *nn = calloc(1, sizeof *nn);
    if (!nn) return iso_fail(ISO_EINTERNAL, "out of memory");
    nn->backend = backend;
    nn->threads = threads;
    int rc = pool_new(&nn->pool, threads);
    if (rc) { free(nn); return rc; }
    openblas_set_num_threads(threads);
    *out = nn;
    return 0;
}

void nn_free(struct nn **pnn)
{
    struct nn *nn = pnn ? *pnn : NULL;
    if (!nn) return;
    pool_free(&nn->pool);
    free(nn->scratch);
    free(nn->scratch2);
    free(nn);
    *pnn = NULL;
}

int nn_threads(const struct nn *nn) { return nn->threads; }
struct pool *nn_pool(struct nn *nn) { return nn->pool; }

const char *nn_blas_info(void)
{
    static char buf[160];
    if (!buf[0]) {
        const char *cfg = openblas_get_config(), *core = openblas_get_corename();
        snprintf(buf, sizeof buf, "%s (%s)", cfg ? cfg : "OpenBLAS", core ? core : "?");
    }
    return buf;
}

float *nn_alloc(struct nn *nn, size_t nfloats)
{
    (void)nn;
    size_t bytes;
    if (__builtin_mul_overflow(nfloats ? nfloats : 1, sizeof(float), &bytes)) {
        iso_fail(ISO_ETEMPFAIL, "nn: allocation of %zu floats overflows", nfloats);
        return NULL;
    }
    bytes = (bytes + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (!p) {
        iso_fail(ISO_ETEMPFAIL, "nn: cannot allocate %zu MiB", bytes >> 20);
        return NULL;
    }
    memset(p, 0, bytes);
    return p;
}

void nn_release(struct nn *nn, float **p)
{
    (void)nn;
    if (p) { free(*p); *p = NULL; }
}

/* a scratch buffer of at least n floats (contents undefined); NULL only when
 * memory is exhausted, which compute functions treat as fatal below */
static float *scratch(struct nn *nn, int which, size_t n)
{
    float **buf = which ? &nn->scratch2 : &nn->scratch;
    size_t *cap = which ? &nn->scratch2_n : &nn->scratch_n;
    if (*cap < n) {
        free(*buf);
        *buf = aligned_alloc(64, ((n * sizeof(float)) + 63) & ~(size_t)63);
        *cap = *buf ? n : 0;
        if (!*buf) {
            /* compute functions have no error path: running out of memory
             * for a slice bounded by NN_SLICE_BYTES is a broken machine */
            fprintf(stderr, "nn: cannot allocate %zu MiB of scratch\n", (n * sizeof(float)) >> 20);
            abort();
        }
    }
    return *buf;
}

/* ---- weights ---- */

struct nn_w nn_w_of(const struct wt_tensor *t)
{
    struct nn_w w = { NULL, WT_F32, 1.0f };
    if (t) { w.data = t->data; w.dtype = t->dtype; }
    return w;
}

static inline float w_raw(const struct nn_w *w, size_t i)
{
    switch (w->dtype) {
    case WT_F32: return ((const float *)w->data)[i];
    case WT_F16: return wt_f16_to_f32(((const uint16_t *)w->data)[i]);
    case WT_BF16: return wt_bf16_to_f32(((const uint16_t *)w->data)[i]);
    case WT_F8_E4M3: return wt_e4m3_to_f32(((const uint8_t *)w->data)[i]);
    case WT_F8_E5M2: return wt_e5m2_to_f32(((const uint8_t *)w->data)[i]);
    default: return NAN;
    }
}

float nn_w_get(const struct nn_w *w, size_t i)
{
    float v = w_raw(w, i);
    return w->scale != 1.0f ? v * w->scale : v;
}

void nn_w_to_f32(const struct nn_w *w, size_t first, size_t n, float *dst)
{
    if (w->dtype == WT_F32 && w->scale == 1.0f) {
        memcpy(dst, (const float *)w->data + first, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) dst[i] = nn_w_get(w, first + i);
}

/* ---- parallel loops over element ranges ---- */

#define NN_GRAIN 4096
typedef void (*range_fn)(void *ctx, size_t i0, size_t i1);
struct range_job { range_fn fn; void *ctx; size_t n, grain; };

static void range_worker(void *ctx, int b0, int b1, int worker)
{
    (void)worker;
    struct range_job *j = ctx;
    size_t i0 = (size_t)b0 * j->grain, i1 = (size_t)b1 * j->grain;
    if (i1 > j->n) i1 = j->n;
    if (i0 < i1) j->fn(j->ctx, i0, i1);
}

/* fn over [0, n) in pieces of at least grain elements */
static void par_range(struct nn *nn, size_t n, size_t grain, range_fn fn, void *ctx)
{
    if (n == 0) return;
    if (grain < 1) grain = 1;
    size_t blocks = (n + grain - 1) / grain;
    while (blocks > (1u << 30)) { grain *= 2; blocks = (n + grain - 1) / grain; }
    struct range_job j = { fn, ctx, n, grain };
    pool_for(nn->pool, (int)blocks, range_worker, &j);
}

/* ---- matrix products ---- */

void nn_gemm(struct nn *nn, int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc)
{
    (void)nn;
    if (M <= 0 || N <= 0) return;
    if (K <= 0) {
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) C[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * C[(size_t)i * ldc + j];
        return;
    }
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_b ? CblasTrans : CblasNoTrans, M, N, K,
                alpha, A, lda, B, ldb, beta, C, ldc);
}

struct conv_job { const struct nn_w *w; float *dst; size_t first; };
static void conv_range(void *ctx, size_t i0, size_t i1)
{
    struct conv_job *j = ctx;
    nn_w_to_f32(j->w, j->first + i0, i1 - i0, j->dst + i0);
}

/* n elements of w from `first` as float32: the weight itself when it is
 * f32 already, else converted in parallel into scratch `which` */
static const float *w_f32(struct nn *nn, const struct nn_w *w, size_t first, size_t n, int which)
{
    if (w->dtype == WT_F32 && w->scale == 1.0f) return (const float *)w->data + first;
    float *dst = scratch(nn, which, n);
    struct conv_job j = { w, dst, first };
    par_range(nn, n, 1 << 14, conv_range, &j);
    return dst;
}

struct bias_job { float *y; const struct nn_w *b; int d; };
static void bias_range(void *ctx, size_t r0, size_t r1)
{
    struct bias_job *j = ctx;
    for (size_t r = r0; r < r1; r++) {
        float *row = j->y + r * (size_t)j->d;
        for (int i = 0; i < j->d; i++) row[i] += nn_w_get(j->b, (size_t)i);
    }
}

void nn_add_bias(struct nn *nn, float *y, const float *x, int rows, int d, const struct nn_w *b)
{
    if (y != x) memcpy(y, x, (size_t)rows * d * sizeof(float));
    if (!b || !b->data) return;
    struct bias_job j = { y, b, d };
    par_range(nn, (size_t)rows, (size_t)(NN_GRAIN / (d > 0 ? d : 1)) + 1, bias_range, &j);
}

void nn_linear(struct nn *nn, float *y, const float *x, int rows, int in, int out,
               const struct nn_w *W, const struct nn_w *b)
{
    if (rows <= 0 || out <= 0) return;
    if (W->dtype == WT_F32 && W->scale == 1.0f) {
        nn_gemm(nn, 0, 1, rows, out, in, 1.0f, x, in, (const float *)W->data, in, 0.0f, y, out);
    } else {
        /* convert a tile of output rows of W at a time */
        size_t tile = NN_SLICE_BYTES / sizeof(float) / (size_t)(in > 0 ? in : 1);
        if (tile < 16) tile = 16;
        for (size_t o0 = 0; o0 < (size_t)out; o0 += tile) {
            size_t t = (size_t)out - o0 < tile ? (size_t)out - o0 : tile;
            const float *wt = w_f32(nn, W, o0 * (size_t)in, t * (size_t)in, 0);
            nn_gemm(nn, 0, 1, rows, (int)t, in, 1.0f, x, in, wt, in, 0.0f, y + o0, out);
        }
    }
    if (b && b->data) nn_add_bias(nn, y, y, rows, out, b);
}

/* ---- normalisation ---- */

struct norm_job {
    float *y; const float *x; int d; const struct nn_w *w, *b; float eps;
    int rms;
};
static void norm_range(void *ctx, size_t r0, size_t r1)
{
    struct norm_job *j = ctx;
    int d = j->d;
    for (size_t r = r0; r < r1; r++) {
        const float *x = j->x + r * (size_t)d;
        float *y = j->y + r * (size_t)d;
        double mean = 0, var = 0;
        if (j->rms) {
            for (int i = 0; i < d; i++) var += (double)x[i] * x[i];
            var /= d;
        } else {
            for (int i = 0; i < d; i++) mean += x[i];
            mean /= d;
            for (int i = 0; i < d; i++) { double t = x[i] - mean; var += t * t; }
            var /= d;
        }
        float inv = (float)(1.0 / sqrt(var + j->eps)), m = (float)mean;
        int hw = j->w && j->w->data, hb = j->b && j->b->data;
        for (int i = 0; i < d; i++) {
            float v = (x[i] - m) * inv;
            if (hw) v *= nn_w_get(j->w, (size_t)i);
            if (hb) v += nn_w_get(j->b, (size_t)i);
            y[i] = v;
        }
    }
}

void nn_layernorm(struct nn *nn, float *y, const float *x, int rows, int d,
                  const struct nn_w *w, const struct nn_w *b, float eps)
{
    struct norm_job j = { y, x, d, w, b, eps, 0 };
    par_range(nn, (size_t)rows, (size_t)(NN_GRAIN / (d > 0 ? d : 1)) + 1, norm_range, &j);
}

void nn_rmsnorm(struct nn *nn, float *y, const float *x, int rows, int d, const struct nn_w *w, float eps)
{
    struct norm_job j = { y, x, d, w, NULL, eps, 1 };
    par_range(nn, (size_t)rows, (size_t)(NN_GRAIN / (d > 0 ? d : 1)) + 1, norm_range, &j);
}

struct chnorm_job {
    float *y; const float *x; int C; size_t S; const struct nn_w *g, *b; float eps;
    int G; int group;        /* group norm: G groups; else RMS over channels */
};
static void chrms_range(void *ctx, size_t s0, size_t s1)
{
    struct chnorm_job *j = ctx;
    float sc = sqrtf((float)j->C);
    for (size_t s = s0; s < s1; s++) {
        double ss = 0;
        for (int c = 0; c < j->C; c++) { double v = j->x[(size_t)c * j->S + s]; ss += v * v; }
        double nrm = sqrt(ss);
        float inv = (float)(1.0 / (nrm > j->eps ? nrm : j->eps));
        for (int c = 0; c < j->C; c++) {
            float v = j->x[(size_t)c * j->S + s] * inv * sc;
            if (j->g && j->g->data) v *= nn_w_get(j->g, (size_t)c);
            if (j->b && j->b->data) v += nn_w_get(j->b, (size_t)c);
            j->y[(size_t)c * j->S + s] = v;
        }
    }
}

void nn_rmsnorm_channels(struct nn *nn, float *y, const float *x, int C, size_t S,
                         const struct nn_w *gamma, const struct nn_w *bias, float eps)
{
    struct chnorm_job j = { y, x, C, S, gamma, bias, eps, 0, 0 };
    par_range(nn, S, (size_t)(NN_GRAIN / (C > 0 ? C : 1)) + 1, chrms_range, &j);
}

static void group_range(void *ctx, size_t g0, size_t g1)
{
    struct chnorm_job *j = ctx;
    int cpg = j->C / j->G;
    for (size_t g = g0; g < g1; g++) {
        const float *x = j->x + g * (size_t)cpg * j->S;
        float *y = j->y + g * (size_t)cpg * j->S;
        size_t n = (size_t)cpg * j->S;
        double mean = 0, var = 0;
        for (size_t i = 0; i < n; i++) mean += x[i];
        mean /= (double)n;
        for (size_t i = 0; i < n; i++) { double t = x[i] - mean; var += t * t; }
        var /= (double)n;
        float inv = (float)(1.0 / sqrt(var + j->eps)), m = (float)mean;
        for (int c = 0; c < cpg; c++) {
            int ch = (int)g * cpg + c;
            float gw = j->g && j->g->data ? nn_w_get(j->g, (size_t)ch) : 1.0f;
            float gb = j->b && j->b->data ? nn_w_get(j->b, (size_t)ch) : 0.0f;
            for (size_t s = 0; s < j->S; s++) {
                size_t i = (size_t)c * j->S + s;
                y[i] = (x[i] - m) * inv * gw + gb;
            }
        }
    }
}

void nn_groupnorm(struct nn *nn, float *y, const float *x, int C, size_t S, int G,
                  const struct nn_w *w, const struct nn_w *b, float eps)
{
    struct chnorm_job j = { y, x, C, S, w, b, eps, G, 1 };
    par_range(nn, (size_t)G, 1, group_range, &j);
}

/* ---- element-wise ---- */

struct ew_job {
    float *y; const float *a, *b; float s; int op; enum nn_act act;
};
enum { EW_ACT, EW_SCALE, EW_ADD, EW_MUL };
static void ew_range(void *ctx, size_t i0, size_t i1)
{
    struct ew_job *j = ctx;
    float *y = j->y;
    const float *a = j->a, *b = j->b;
    switch (j->op) {
    case EW_SCALE: for (size_t i = i0; i < i1; i++) y[i] = a[i] * j->s; break;
    case EW_ADD: for (size_t i = i0; i < i1; i++) y[i] = a[i] + b[i]; break;
    case EW_MUL: for (size_t i = i0; i < i1; i++) y[i] = a[i] * b[i]; break;
    case EW_ACT:
        switch (j->act) {
        case NN_ACT_GELU_TANH:
            for (size_t i = i0; i < i1; i++) {
                float x = a[i];
                y[i] = 0.5f * x * (1.0f + tanhf(0.7978845608028654f * (x + 0.044715f * x * x * x)));
            }
            break;
        case NN_ACT_GELU_ERF:
            for (size_t i = i0; i < i1; i++) {
                float x = a[i];
                y[i] = 0.5f * x * (1.0f + erff(x * 0.7071067811865476f));
            }
            break;
        case NN_ACT_SILU:
            for (size_t i = i0; i < i1; i++) {
                float x = a[i];
                y[i] = x / (1.0f + expf(-x));
            }
            break;
        case NN_ACT_RELU:
            for (size_t i = i0; i < i1; i++) y[i] = a[i] > 0 ? a[i] : 0;
            break;
        }
        break;
    }
}

static void ew(struct nn *nn, struct ew_job *j, size_t n) { par_range(nn, n, NN_GRAIN, ew_range, j); }

void nn_act(struct nn *nn, float *y, const float *x, size_t n, enum nn_act act)
{
    struct ew_job j = { y, x, NULL, 0, EW_ACT, act };
    ew(nn, &j, n);
}
void nn_scale(struct nn *nn, float *y, const float *x, size_t n, float a)
{
    struct ew_job j = { y, x, NULL, a, EW_SCALE, 0 };
    ew(nn, &j, n);
}
void nn_add(struct nn *nn, float *y, const float *a, const float *b, size_t n)
{
    struct ew_job j = { y, a, b, 0, EW_ADD, 0 };
    ew(nn, &j, n);
}
void nn_mul(struct nn *nn, float *y, const float *a, const float *b, size_t n)
{
    struct ew_job j = { y, a, b, 0, EW_MUL, 0 };
    ew(nn, &j, n);
}

struct row_job { float *y; const float *x, *u, *v; int d; int op; };
enum { ROW_GATED, ROW_MODULATE };
static void row_range(void *ctx, size_t r0, size_t r1)
{
    struct row_job *j = ctx;
    int d = j->d;
    for (size_t r = r0; r < r1; r++) {
        float *y = j->y + r * (size_t)d;
        const float *x = j->x + r * (size_t)d;
        if (j->op == ROW_GATED) {
            if (j->u) for (int i = 0; i < d; i++) y[i] += x[i] * j->u[i];
            else for (int i = 0; i < d; i++) y[i] += x[i];
        } else {
            for (int i = 0; i < d; i++) y[i] = x[i] * (1.0f + j->v[i]) + j->u[i];
        }
    }
}

void nn_add_gated(struct nn *nn, float *x, const float *y, const float *gate, int rows, int d)
{
    struct row_job j = { x, y, gate, NULL, d, ROW_GATED };
    par_range(nn, (size_t)rows, (size_t)(NN_GRAIN / (d > 0 ? d : 1)) + 1, row_range, &j);
}

void nn_modulate(struct nn *nn, float *y, const float *x, int rows, int d, const float *shift,
                 const float *scale)
{
    struct row_job j = { y, x, shift, scale, d, ROW_MODULATE };
    par_range(nn, (size_t)rows, (size_t)(NN_GRAIN / (d > 0 ? d : 1)) + 1, row_range, &j);
}

static void softmax_row(float *x, int d)
{
    float m = -INFINITY;
    for (int i = 0; i < d; i++) m = x[i] > m ? x[i] : m;
    double s = 0;
    for (int i = 0; i < d; i++) { x[i] = expf(x[i] - m); s += x[i]; }
    float inv = (float)(1.0 / s);
    for (int i = 0; i < d; i++) x[i] *= inv;
}

struct sm_job { float *x; int d; };
static void sm_range(void *ctx, size_t r0, size_t r1)
{
    struct sm_job *j = ctx;
    for (size_t r = r0; r < r1; r++) softmax_row(j->x + r * (size_t)j->d, j->d);
}

void nn_softmax(struct nn *nn, float *x, int rows, int d)
{
    struct sm_job j = { x, d };
    par_range(nn, (size_t)rows, (size_t)(NN_GRAIN / (d > 0 ? d : 1)) + 1, sm_range, &j);
}

/* ---- attention ---- */

struct att_sm_job { float *s; int rows, kv, ld; const float *bias; size_t bias_ld; float scale; };
static void att_sm_range(void *ctx, size_t r0, size_t r1)
{
    struct att_sm_job *j = ctx;
    for (size_t r = r0; r < r1; r++) {
        float *row = j->s + r * (size_t)j->ld;
        const float *b = j->bias ? j->bias + r * j->bias_ld : NULL;
        if (b) for (int i = 0; i < j->kv; i++) row[i] = row[i] * j->scale + b[i];
        else for (int i = 0; i < j->kv; i++) row[i] *= j->scale;
        softmax_row(row, j->kv);
    }
}

void nn_attention(struct nn *nn, float *out, const float *q, const float *k, const float *v,
                  int Lq, int Lk, int H, int D, float scale, const float *bias, int k_valid)
{
    if (k_valid > Lk || k_valid < 0) k_valid = Lk;
    int ld = H * D;
    if (k_valid == 0) {
        memset(out, 0, (size_t)Lq * ld * sizeof(float));
        return;
    }
    /* a tile of query rows for one head: scores [tile, k_valid] */
    size_t tile = NN_SLICE_BYTES / sizeof(float) / (size_t)k_valid;
    if (tile < 16) tile = 16;
    if (tile > (size_t)Lq) tile = (size_t)Lq;
    float *s = scratch(nn, 1, tile * (size_t)k_valid);
    for (int h = 0; h < H; h++) {
        for (size_t r0 = 0; r0 < (size_t)Lq; r0 += tile) {
            int t = (int)((size_t)Lq - r0 < tile ? (size_t)Lq - r0 : tile);
            nn_gemm(nn, 0, 1, t, k_valid, D, 1.0f, q + r0 * ld + (size_t)h * D, ld, k + (size_t)h * D, ld, 0.0f, s,
                    k_valid);
            struct att_sm_job j = { s, t, k_valid, k_valid,
                                    bias ? bias + ((size_t)h * Lq + r0) * (size_t)Lk : NULL, (size_t)Lk, scale };
            par_range(nn, (size_t)t, (size_t)(NN_GRAIN / k_valid) + 1, att_sm_range, &j);
            nn_gemm(nn, 0, 0, t, D, k_valid, 1.0f, s, k_valid, v + (size_t)h * D, ld, 0.0f,
                    out + r0 * ld + (size_t)h * D, ld);
        }
    }
}

/* ---- rotary embeddings ---- */

struct rope_job { float *x; int H, D; const float *cos, *sin; int interleaved; };
static void rope_range(void *ctx, size_t l0, size_t l1)
{
    struct rope_job *j = ctx;
    int half = j->D / 2;
    for (size_t l = l0; l < l1; l++) {
        const float *c = j->cos + l * (size_t)half, *s = j->sin + l * (size_t)half;
        for (int h = 0; h < j->H; h++) {
            float *x = j->x + (l * (size_t)j->H + (size_t)h) * (size_t)j->D;
            for (int i = 0; i < half; i++) {
                float *a = j->interleaved ? &x[2 * i] : &x[i];
                float *b = j->interleaved ? &x[2 * i + 1] : &x[i + half];
                float x0 = *a, x1 = *b;
                *a = x0 * c[i] - x1 * s[i];
                *b = x0 * s[i] + x1 * c[i];
            }
        }
    }
}

void nn_rope(struct nn *nn, float *x, int L, int H, int D, const float *cos, const float *sin, int interleaved)
{
    struct rope_job j = { x, H, D, cos, sin, interleaved };
    par_range(nn, (size_t)L, 1, rope_range, &j);
}

/* ---- convolutions ---- */

/* im2col for a 3-D convolution (2-D is kt = 1, T = 1): rows (c, dt, dy, dx)
 * of C*kt*kh*kw, columns output positions p0..p1-1 of To*Ho*Wo */
struct im2col_job {
    float *cols; const float *x; int C, T, H, W, kt, kh, kw, st, sh, sw, ph, pw, dh, dw, To, Ho, Wo;
    size_t p0, np;
};
static void im2col_range(void *ctx, size_t r0, size_t r1)
{
    struct im2col_job *j = ctx;
    size_t HoWo = (size_t)j->Ho * j->Wo;
    for (size_t r = r0; r < r1; r++) {
        int dx = (int)(r % (size_t)j->kw), dy = (int)(r / (size_t)j->kw % (size_t)j->kh);
        int dt = (int)(r / ((size_t)j->kw * j->kh) % (size_t)j->kt);
        int c = (int)(r / ((size_t)j->kw * j->kh * j->kt));
        float *row = j->cols + r * j->np;
        for (size_t i = 0; i < j->np; i++) {
            size_t p = j->p0 + i;
            int to = (int)(p / HoWo), rem = (int)(p % HoWo);
            int oy = rem / j->Wo, ox = rem % j->Wo;
            int t = to * j->st + dt;
            int y = oy * j->sh - j->ph + dy * j->dh, xx = ox * j->sw - j->pw + dx * j->dw;
            row[i] = (y < 0 || y >= j->H || xx < 0 || xx >= j->W)
                         ? 0.0f
                         : j->x[(((size_t)c * j->T + t) * j->H + y) * j->W + xx];
        }
    }
}

/* y[O, P] (+bias) = Wt[O, K] * cols[K, P] in slices of positions */
static void conv_gemm(struct nn *nn, float *y, const float *x, int C, int T, int H, int W, const struct nn_w *w,
                      const struct nn_w *b, int O, int kt, int kh, int kw, int st, int sh, int sw, int ph, int pw,
                      int dh, int dw, int To, int Ho, int Wo)
{
    size_t K = (size_t)C * kt * kh * kw, P = (size_t)To * Ho * Wo;
    const float *wt = w_f32(nn, w, 0, (size_t)O * K, 0);
    int direct = kt == 1 && kh == 1 && kw == 1 && st == 1 && sh == 1 && sw == 1 && ph == 0 && pw == 0;
    if (direct) {
        nn_gemm(nn, 0, 0, O, (int)P, (int)K, 1.0f, wt, (int)K, x, (int)P, 0.0f, y, (int)P);
    } else {
        size_t np = NN_SLICE_BYTES / sizeof(float) / K;
        if (np < 64) np = 64;
        if (np > P) np = P;
        float *cols = scratch(nn, 1, K * np);
        for (size_t p0 = 0; p0 < P; p0 += np) {
            size_t n = P - p0 < np ? P - p0 : np;
            struct im2col_job j = { cols, x, C, T, H, W, kt, kh, kw, st, sh, sw, ph, pw, dh, dw, To, Ho, Wo, p0, n };
            par_range(nn, K, 1, im2col_range, &j);
            nn_gemm(nn, 0, 0, O, (int)n, (int)K, 1.0f, wt, (int)K, cols, (int)n, 0.0f, y + p0, (int)P);
        }
    }
    if (b && b->data) {
        /* bias per output channel: rows of [O, P] */
        for (int o = 0; o < O; o++) {
            float bv = nn_w_get(b, (size_t)o);
            float *row = y + (size_t)o * P;
            for (size_t i = 0; i < P; i++) row[i] += bv;
        }
    }
}

void nn_conv2d(struct nn *nn, float *y, const float *x, int C, int H, int W,
               const struct nn_w *w, const struct nn_w *b, int O, int kh, int kw,
               int sh, int sw, int ph, int pw, int dh, int dw, int groups)
{
    int Ho = (H + 2 * ph - dh * (kh - 1) - 1) / sh + 1, Wo = (W + 2 * pw - dw * (kw - 1) - 1) / sw + 1;
    if (groups <= 1) {
        conv_gemm(nn, y, x, C, 1, H, W, w, b, O, 1, kh, kw, 1, sh, sw, ph, pw, dh, dw, 1, Ho, Wo);
        return;
    }
    int cg = C / groups, og = O / groups;
    size_t wg = (size_t)og * cg * kh * kw;
    for (int g = 0; g < groups; g++) {
        struct nn_w wsub = *w, bsub = { NULL, WT_F32, 1.0f };
        wsub.data = (const uint8_t *)w->data + wg * g * wt_dtype_size(w->dtype);
        if (b && b->data) {
            bsub = *b;
            bsub.data = (const uint8_t *)b->data + (size_t)og * g * wt_dtype_size(b->dtype);
        }
        conv_gemm(nn, y + (size_t)g * og * Ho * Wo, x + (size_t)g * cg * H * W, cg, 1, H, W, &wsub, &bsub, og, 1, kh,
                  kw, 1, sh, sw, ph, pw, dh, dw, 1, Ho, Wo);
    }
}

void nn_conv3d(struct nn *nn, float *y, const float *x, int C, int T, int H, int W,
               const struct nn_w *w, const struct nn_w *b, int O, int kt, int kh, int kw,
               int st, int sh, int sw, int ph, int pw)
{
    int To = (T - kt) / st + 1;
    int Ho = (H + 2 * ph - (kh - 1) - 1) / sh + 1, Wo = (W + 2 * pw - (kw - 1) - 1) / sw + 1;
    if (To <= 0) return;
    conv_gemm(nn, y, x, C, T, H, W, w, b, O, kt, kh, kw, st, sh, sw, ph, pw, 1, 1, To, Ho, Wo);
}

/* col2im for the transposed convolution: cols [O*kh*kw, H*W] scattered into
 * y [O, Ho, Wo]; one output channel per task, so no two threads add to the
 * same element */
struct col2im_job {
    float *y; const float *cols; int H, W, kh, kw, sh, sw, ph, pw, Ho, Wo;
};
static void col2im_range(void *ctx, size_t o0, size_t o1)
{
    struct col2im_job *j = ctx;
    size_t HW = (size_t)j->H * j->W;
    for (size_t o = o0; o < o1; o++) {
        float *yo = j->y + o * (size_t)j->Ho * j->Wo;
        for (int dy = 0; dy < j->kh; dy++)
            for (int dx = 0; dx < j->kw; dx++) {
                const float *row = j->cols + ((o * j->kh + dy) * j->kw + dx) * HW;
                for (int iy = 0; iy < j->H; iy++) {
                    int oy = iy * j->sh - j->ph + dy;
                    if (oy < 0 || oy >= j->Ho) continue;
                    for (int ix = 0; ix < j->W; ix++) {
                        int ox = ix * j->sw - j->pw + dx;
                        if (ox < 0 || ox >= j->Wo) continue;
                        yo[(size_t)oy * j->Wo + ox] += row[(size_t)iy * j->W + ix];
                    }
                }
            }
    }
}

void nn_conv_transpose2d(struct nn *nn, float *y, const float *x, int C, int H, int W,
                         const struct nn_w *w, const struct nn_w *b, int O, int kh, int kw,
                         int sh, int sw, int ph, int pw)
{
    int Ho = (H - 1) * sh - 2 * ph + kh, Wo = (W - 1) * sw - 2 * pw + kw;
    size_t K = (size_t)O * kh * kw, HW = (size_t)H * W;
    const float *wt = w_f32(nn, w, 0, (size_t)C * K, 0);
    float *cols = scratch(nn, 1, K * HW);
    /* cols[K, HW] = Wt^T[K, C] x[C, HW] with Wt viewed as [C, K] */
    nn_gemm(nn, 1, 0, (int)K, (int)HW, C, 1.0f, wt, (int)K, x, (int)HW, 0.0f, cols, (int)HW);
    memset(y, 0, (size_t)O * Ho * Wo * sizeof(float));
    struct col2im_job j = { y, cols, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo };
    par_range(nn, (size_t)O, 1, col2im_range, &j);
    if (b && b->data)
        for (int o = 0; o < O; o++) {
            float bv = nn_w_get(b, (size_t)o);
            float *row = y + (size_t)o * Ho * Wo;
            for (size_t i = 0; i < (size_t)Ho * Wo; i++) row[i] += bv;
        }
}
