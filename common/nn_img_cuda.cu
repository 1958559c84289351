// nn_img_cuda.cu — the nn_img.h ops on the CUDA backend (nnic_* in
// nn_img_cuda.h; nn_img.c dispatches an NN_CUDA context's calls here). Each
// kernel is a grid-stride loop over the output that calls one per-element
// function of nn_img_kern.h, the text that tests/unit/test_nn_img_cuda.c also
// compiles for the host and compares with nn_img.c bit for bit in CI.
// Every output element is written by one thread, so in-place calls (y == x,
// where nn_img.h allows it) are safe.
//
// STATUS: compiled, not yet run on a GPU (tests/gpu/rife_check.sh is the check).
#include <cuda_runtime.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "nn_cuda.h"
#include "nn_img_cuda.h"
#include "weights.h"
}
#include "nn_img_kern.h"

#define THREADS 256

// grid-stride loop over [0, n)
#define FOR_EACH(i, n) \
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < (n); i += (size_t)gridDim.x * blockDim.x)

static unsigned grid_for(size_t n)
{
    size_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b > 65535 ? 65535 : b);   // the loop covers the rest
}

static struct nni_w kw_of(const struct nn_w *w)
{
    struct nni_w k = { w->data, (int)w->dtype, w->scale };
    return k;
}

__global__ void k_resize(float *y, const float *x, int H, int W, int Ho, int Wo, float sh, float sw, size_t n)
{
    FOR_EACH(e, n) y[e] = nni_resize_at(x, H, W, Ho, Wo, sh, sw, e);
}

__global__ void k_warp(float *y, const float *x, int C, int H, int W, const float *u, const float *v, size_t n)
{
    FOR_EACH(p, n) nni_warp_px(y, x, C, H, W, u, v, p);
}

__global__ void k_shuffle(float *y, const float *x, int H, int W, int r, size_t n)
{
    FOR_EACH(e, n) y[e] = nni_shuffle_at(x, H, W, r, e);
}

__global__ void k_leaky(float *y, const float *x, size_t n, float slope)
{
    FOR_EACH(e, n) y[e] = nni_leaky(x[e], slope);
}

__global__ void k_prelu(float *y, const float *x, size_t S, struct nni_w slope, size_t n)
{
    FOR_EACH(e, n) y[e] = nni_prelu_at(x, S, slope, e);
}

__global__ void k_fill(float *y, size_t n, float v)
{
    FOR_EACH(e, n) y[e] = v;
}

__global__ void k_sigmoid(float *y, const float *x, size_t n)
{
    FOR_EACH(e, n) y[e] = nni_sigmoid(x[e]);
}

__global__ void k_scale_add(float *y, const float *x, size_t S, struct nni_w gamma, const float *res, size_t n)
{
    FOR_EACH(e, n) y[e] = nni_scale_add_at(x, S, gamma, res, e);
}

__global__ void k_lerp(float *y, const float *a, const float *b, const float *w, size_t n, size_t total)
{
    FOR_EACH(e, total) y[e] = nni_lerp_at(a, b, w, n, e);
}

#define LAUNCH(c, what, n, kernel, ...)                                                              \
    do {                                                                                             \
        size_t n_ = (n);                                                                             \
        if (!n_) return;                                                                             \
        kernel<<<grid_for(n_), THREADS, 0, (cudaStream_t)nnc_stream(c)>>>(__VA_ARGS__);              \
        nnc_launched((c), (what));                                                                   \
    } while (0)

extern "C" void nnic_resize_bilinear(struct nnc *c, float *y, int Ho, int Wo, const float *x, int C, int H, int W,
                                     float sh, float sw)
{
    size_t n = (size_t)C * (size_t)Ho * (size_t)Wo;
    LAUNCH(c, "resize_bilinear", n, k_resize, y, x, H, W, Ho, Wo, sh, sw, n);
}

extern "C" void nnic_warp_bilinear(struct nnc *c, float *y, const float *x, int C, int H, int W, const float *u,
                                   const float *v)
{
    size_t n = (size_t)H * (size_t)W;
    if (C <= 0) return;
    LAUNCH(c, "warp_bilinear", n, k_warp, y, x, C, H, W, u, v, n);
}

extern "C" void nnic_pixel_shuffle(struct nnc *c, float *y, const float *x, int C, int H, int W, int r)
{
    size_t n = (size_t)C * (size_t)H * (size_t)W * (size_t)r * (size_t)r;
    LAUNCH(c, "pixel_shuffle", n, k_shuffle, y, x, H, W, r, n);
}

extern "C" void nnic_leaky_relu(struct nnc *c, float *y, const float *x, size_t n, float slope)
{
    LAUNCH(c, "leaky_relu", n, k_leaky, y, x, n, slope);
}

extern "C" void nnic_prelu(struct nnc *c, float *y, const float *x, int C, size_t S, const struct nn_w *slope)
{
    size_t n = (size_t)C * S;
    LAUNCH(c, "prelu", n, k_prelu, y, x, S, kw_of(slope), n);
}

extern "C" void nnic_fill(struct nnc *c, float *y, size_t n, float v) { LAUNCH(c, "fill", n, k_fill, y, n, v); }

extern "C" void nnic_sigmoid(struct nnc *c, float *y, const float *x, size_t n)
{
    LAUNCH(c, "sigmoid", n, k_sigmoid, y, x, n);
}

extern "C" void nnic_scale_channels_add(struct nnc *c, float *y, const float *x, int C, size_t S,
                                        const struct nn_w *gamma, const float *res)
{
    size_t n = (size_t)C * S;
    LAUNCH(c, "scale_channels_add", n, k_scale_add, y, x, S, kw_of(gamma), res, n);
}

extern "C" void nnic_lerp_plane(struct nnc *c, float *y, const float *a, const float *b, const float *w, int planes,
                                size_t n)
{
    size_t total = (size_t)planes * n;
    LAUNCH(c, "lerp_plane", total, k_lerp, y, a, b, w, n, total);
}
