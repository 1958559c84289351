/* nn_img.c — see nn_img.h. Each function splits its output into disjoint
 * ranges for pool_for (rows of a plane, or chunks of a flat array), and the
 * per-element arithmetic follows PyTorch's CPU kernels
 * (aten/src/ATen/native/UpSample.h area_pixel_compute_source_index,
 * GridSampler.h grid_sampler_compute_source_index / clip_coordinates).
 * The CUDA kernels (nn_img_cuda.cu) compute each element with the functions of
 * nn_img_kern.h, which repeat these formulas in this order: a change here is
 * a change there (tests/unit/test_nn_img_cuda.c compares the two bit for bit). */
#include "nn_img.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "pool.h"

/* An NN_CUDA context runs the op on the device (nn_img_cuda.cu, whose
 * per-element arithmetic, nn_img_kern.h, is this file's) and returns. */
#ifdef ISOPIPE_CUDA
#include "nn_cuda.h"
#include "nn_img_cuda.h"
#define CUDA_OP(call)                            \
    do {                                         \
        struct nnc *cuda_ = nn_cuda_of(nn);      \
        if (cuda_) {                             \
            call;                                \
            return;                              \
        }                                        \
    } while (0)
#else
#define CUDA_OP(call) ((void)0)
#endif

/* flat element-wise ops go to the pool in chunks of this many elements */
#define CHUNK 16384

static int nchunks(size_t n)
{
    size_t c = (n + CHUNK - 1) / CHUNK;
    return c > (size_t)INT32_MAX ? INT32_MAX : (int)c;
}

/* ---- bilinear resize ---- */

struct resize_job {
    float *y;
    const float *x;
    int C, H, W, Ho, Wo;
    float sh, sw;
};

/* source index and weight of output position d: (d + 0.5) * scale - 0.5, >= 0 */
static void src_index(int d, float scale, int in, int *i0, int *i1, float *l)
{
    float s = scale * ((float)d + 0.5f) - 0.5f;
    if (s < 0) s = 0;
    int i = (int)s;   /* s >= 0: truncation is floor */
    if (i > in - 1) i = in - 1;
    float lam = s - (float)i;
    if (lam > 1) lam = 1;
    *i0 = i;
    *i1 = i < in - 1 ? i + 1 : i;
    *l = lam;
}

static void resize_rows(void *ctx, int r0, int r1, int worker)
{
    const struct resize_job *j = ctx;
    (void)worker;
    /* the column indices and weights are the same on every row: a table for
     * this range (without memory for it, they are computed per pixel) */
    int *xi = malloc((size_t)j->Wo * (2 * sizeof(int) + sizeof(float)));
    if (xi) {
        int *xj = xi + j->Wo;
        float *xl = (float *)(xj + j->Wo);
        for (int ox = 0; ox < j->Wo; ox++) src_index(ox, j->sw, j->W, &xi[ox], &xj[ox], &xl[ox]);
        for (int r = r0; r < r1; r++) {
            int c = r / j->Ho, oy = r % j->Ho;
            int y0, y1;
            float ly;
            src_index(oy, j->sh, j->H, &y0, &y1, &ly);
            const float *p0 = j->x + ((size_t)c * (size_t)j->H + (size_t)y0) * (size_t)j->W;
            const float *p1 = j->x + ((size_t)c * (size_t)j->H + (size_t)y1) * (size_t)j->W;
            float *out = j->y + (size_t)r * (size_t)j->Wo;
            for (int ox = 0; ox < j->Wo; ox++) {
                float lx = xl[ox];
                float a = (1 - lx) * p0[xi[ox]] + lx * p0[xj[ox]];
                float b = (1 - lx) * p1[xi[ox]] + lx * p1[xj[ox]];
                out[ox] = (1 - ly) * a + ly * b;
            }
        }
        free(xi);
        return;
    }
    for (int r = r0; r < r1; r++) {
        int c = r / j->Ho, oy = r % j->Ho;
        int y0, y1;
        float ly;
        src_index(oy, j->sh, j->H, &y0, &y1, &ly);
        const float *p0 = j->x + ((size_t)c * (size_t)j->H + (size_t)y0) * (size_t)j->W;
        const float *p1 = j->x + ((size_t)c * (size_t)j->H + (size_t)y1) * (size_t)j->W;
        float *out = j->y + (size_t)r * (size_t)j->Wo;
        for (int ox = 0; ox < j->Wo; ox++) {
            int x0, x1;
            float lx;
            src_index(ox, j->sw, j->W, &x0, &x1, &lx);
            /* PyTorch's order: lerp along x in each source row, then along y */
            float a = (1 - lx) * p0[x0] + lx * p0[x1];
            float b = (1 - lx) * p1[x0] + lx * p1[x1];
            out[ox] = (1 - ly) * a + ly * b;
        }
    }
}

void nn_resize_bilinear(struct nn *nn, float *y, int Ho, int Wo, const float *x, int C, int H, int W)
{
    float sh = (float)H / (float)Ho, sw = (float)W / (float)Wo;
    CUDA_OP(nnic_resize_bilinear(cuda_, y, Ho, Wo, x, C, H, W, sh, sw));
    struct resize_job j = { y, x, C, H, W, Ho, Wo, sh, sw };
    pool_for(nn_pool(nn), C * Ho, resize_rows, &j);
}

/* ---- backward warp (grid_sample, bilinear, border, align_corners=True) ---- */

struct warp_job {
    float *y;
    const float *x, *u, *v;
    int C, H, W;
};

static void warp_rows(void *ctx, int r0, int r1, int worker)
{
    const struct warp_job *j = ctx;
    size_t plane = (size_t)j->H * (size_t)j->W;
    float xmax = (float)(j->W - 1), ymax = (float)(j->H - 1);
    (void)worker;
    for (int i = r0; i < r1; i++) {
        size_t row = (size_t)i * (size_t)j->W;
        for (int k = 0; k < j->W; k++) {
            /* align_corners=True maps the normalised grid back to j + u exactly;
             * border padding clamps the coordinate before sampling */
            float sx = fminf(fmaxf((float)k + j->u[row + (size_t)k], 0.f), xmax);
            float sy = fminf(fmaxf((float)i + j->v[row + (size_t)k], 0.f), ymax);
            int x0 = (int)sx, y0 = (int)sy;
            int x1 = x0 < j->W - 1 ? x0 + 1 : x0, y1 = y0 < j->H - 1 ? y0 + 1 : y0;
            float fx = sx - (float)x0, fy = sy - (float)y0;
            float wnw = (1 - fx) * (1 - fy), wne = fx * (1 - fy), wsw = (1 - fx) * fy, wse = fx * fy;
            size_t onw = (size_t)y0 * (size_t)j->W + (size_t)x0, one = (size_t)y0 * (size_t)j->W + (size_t)x1;
            size_t osw = (size_t)y1 * (size_t)j->W + (size_t)x0, ose = (size_t)y1 * (size_t)j->W + (size_t)x1;
            for (int c = 0; c < j->C; c++) {
                const float *p = j->x + (size_t)c * plane;
                j->y[(size_t)c * plane + row + (size_t)k] = p[onw] * wnw + p[one] * wne + p[osw] * wsw + p[ose] * wse;
            }
        }
    }
}

void nn_warp_bilinear(struct nn *nn, float *y, const float *x, int C, int H, int W, const float *u, const float *v)
{
    CUDA_OP(nnic_warp_bilinear(cuda_, y, x, C, H, W, u, v));
    struct warp_job j = { y, x, u, v, C, H, W };
    pool_for(nn_pool(nn), H, warp_rows, &j);
}

/* ---- pixel shuffle ---- */

struct shuffle_job {
    float *y;
    const float *x;
    int C, H, W, r;
};

static void shuffle_rows(void *ctx, int r0, int r1, int worker)
{
    const struct shuffle_job *j = ctx;
    int r = j->r, Ho = j->H * r, Wo = j->W * r;
    (void)worker;
    for (int row = r0; row < r1; row++) {   /* one output row: channel c, y = h*r + i */
        int c = row / Ho, oy = row % Ho, h = oy / r, i = oy % r;
        float *out = j->y + (size_t)row * (size_t)Wo;
        for (int jj = 0; jj < r; jj++) {
            const float *in = j->x + (((size_t)c * (size_t)(r * r) + (size_t)(i * r + jj)) * (size_t)j->H + (size_t)h) *
                                         (size_t)j->W;
            for (int w = 0; w < j->W; w++) out[w * r + jj] = in[w];
        }
    }
}

void nn_pixel_shuffle(struct nn *nn, float *y, const float *x, int C, int H, int W, int r)
{
    CUDA_OP(nnic_pixel_shuffle(cuda_, y, x, C, H, W, r));
    struct shuffle_job j = { y, x, C, H, W, r };
    pool_for(nn_pool(nn), C * H * r, shuffle_rows, &j);
}

/* ---- element-wise ---- */

struct ew_job {
    float *y;
    const float *x, *b, *w;
    size_t n, S;
    int C, planes;
    float a;
    const struct nn_w *g;
};

static void leaky_chunks(void *ctx, int c0, int c1, int worker)
{
    const struct ew_job *j = ctx;
    (void)worker;
    size_t e = (size_t)c1 * CHUNK < j->n ? (size_t)c1 * CHUNK : j->n;
    for (size_t i = (size_t)c0 * CHUNK; i < e; i++) {
        float v = j->x[i];
        j->y[i] = v >= 0 ? v : v * j->a;
    }
}

void nn_leaky_relu(struct nn *nn, float *y, const float *x, size_t n, float slope)
{
    CUDA_OP(nnic_leaky_relu(cuda_, y, x, n, slope));
    struct ew_job j = { .y = y, .x = x, .n = n, .a = slope };
    pool_for(nn_pool(nn), nchunks(n), leaky_chunks, &j);
}

static void fill_chunks(void *ctx, int c0, int c1, int worker)
{
    const struct ew_job *j = ctx;
    (void)worker;
    size_t e = (size_t)c1 * CHUNK < j->n ? (size_t)c1 * CHUNK : j->n;
    for (size_t i = (size_t)c0 * CHUNK; i < e; i++) j->y[i] = j->a;
}

void nn_fill(struct nn *nn, float *y, size_t n, float v)
{
    CUDA_OP(nnic_fill(cuda_, y, n, v));
    struct ew_job j = { .y = y, .n = n, .a = v };
    pool_for(nn_pool(nn), nchunks(n), fill_chunks, &j);
}

static void sigmoid_chunks(void *ctx, int c0, int c1, int worker)
{
    const struct ew_job *j = ctx;
    (void)worker;
    size_t e = (size_t)c1 * CHUNK < j->n ? (size_t)c1 * CHUNK : j->n;
    for (size_t i = (size_t)c0 * CHUNK; i < e; i++) j->y[i] = 1.0f / (1.0f + expf(-j->x[i]));
}

void nn_sigmoid(struct nn *nn, float *y, const float *x, size_t n)
{
    CUDA_OP(nnic_sigmoid(cuda_, y, x, n));
    struct ew_job j = { .y = y, .x = x, .n = n };
    pool_for(nn_pool(nn), nchunks(n), sigmoid_chunks, &j);
}

/* per-channel ops: one task per channel (C is small next to S) */
static void prelu_planes(void *ctx, int c0, int c1, int worker)
{
    const struct ew_job *j = ctx;
    (void)worker;
    for (int c = c0; c < c1; c++) {
        float a = nn_w_get(j->g, (size_t)c);
        const float *x = j->x + (size_t)c * j->S;
        float *y = j->y + (size_t)c * j->S;
        for (size_t i = 0; i < j->S; i++) y[i] = x[i] >= 0 ? x[i] : a * x[i];
    }
}

void nn_prelu(struct nn *nn, float *y, const float *x, int C, size_t S, const struct nn_w *slope)
{
    CUDA_OP(nnic_prelu(cuda_, y, x, C, S, slope));
    struct ew_job j = { .y = y, .x = x, .S = S, .C = C, .g = slope };
    pool_for(nn_pool(nn), C, prelu_planes, &j);
}

static void scale_add_planes(void *ctx, int c0, int c1, int worker)
{
    const struct ew_job *j = ctx;
    (void)worker;
    for (int c = c0; c < c1; c++) {
        float g = nn_w_get(j->g, (size_t)c);
        const float *x = j->x + (size_t)c * j->S;
        const float *r = j->b ? j->b + (size_t)c * j->S : NULL;
        float *y = j->y + (size_t)c * j->S;
        if (r)
            for (size_t i = 0; i < j->S; i++) y[i] = x[i] * g + r[i];
        else
            for (size_t i = 0; i < j->S; i++) y[i] = x[i] * g;
    }
}

void nn_scale_channels_add(struct nn *nn, float *y, const float *x, int C, size_t S, const struct nn_w *gamma,
                           const float *res)
{
    CUDA_OP(nnic_scale_channels_add(cuda_, y, x, C, S, gamma, res));
    struct ew_job j = { .y = y, .x = x, .b = res, .S = S, .C = C, .g = gamma };
    pool_for(nn_pool(nn), C, scale_add_planes, &j);
}

static void lerp_chunks(void *ctx, int c0, int c1, int worker)
{
    const struct ew_job *j = ctx;
    (void)worker;
    size_t e = (size_t)c1 * CHUNK < j->n ? (size_t)c1 * CHUNK : j->n;
    for (int p = 0; p < j->planes; p++) {
        size_t o = (size_t)p * j->n;
        for (size_t i = (size_t)c0 * CHUNK; i < e; i++) {
            float w = j->w[i];
            j->y[o + i] = j->x[o + i] * w + j->b[o + i] * (1 - w);
        }
    }
}

void nn_lerp_plane(struct nn *nn, float *y, const float *a, const float *b, const float *w, int planes, size_t n)
{
    CUDA_OP(nnic_lerp_plane(cuda_, y, a, b, w, planes, n));
    struct ew_job j = { .y = y, .x = a, .b = b, .w = w, .n = n, .planes = planes };
    pool_for(nn_pool(nn), nchunks(n), lerp_chunks, &j);
}
