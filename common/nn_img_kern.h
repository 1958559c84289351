/* nn_img_kern.h — the per-element arithmetic of the CUDA kernels of the
 * nn_img.h ops, written once for two compilers. nvcc compiles these
 * functions for the device, where thin __global__ grid-stride wrappers call
 * them (common/nn_img_cuda.cu); a C compiler compiles the same text for the
 * host, where tests/unit/test_nn_img_cuda.c runs every function over its
 * whole index range and asserts that the result equals nn_img.c's bit for
 * bit. So the index arithmetic and the float arithmetic of every kernel are
 * checked in CI, without a GPU.
 *
 * Each function computes one output element (the warp: one pixel, all
 * channels) with nn_img.c's formulas in nn_img.c's order. Products, sums and
 * differences go through NNI_MUL / NNI_ADD / NNI_SUB: on the device these are
 * __fmul_rn / __fadd_rn / __fsub_rn, which nvcc never contracts into a fused
 * multiply-add (it does contract plain operators: --fmad=true is its
 * default), so each step is rounded as on the host, where nn_img.c is
 * compiled with -std=c11 (GCC does not contract in ISO C mode). The one
 * exception is the sigmoid's expf: the device's differs from glibc's by up to
 * 2 ulp (CUDA Programming Guide, "Mathematical Functions").
 *
 * Weights (PReLU slopes, per-channel gains) are read as nn.c's nn_w_get
 * reads them, the raw element times the scale when the scale is not 1, with
 * f16 / bf16 / fp8 decoded here by bit manipulation (exact: the test compares
 * every code with weights.h's decoders). */
#ifndef ISOPIPE_NN_IMG_KERN_H
#define ISOPIPE_NN_IMG_KERN_H
#include <stddef.h>
#include <stdint.h>

#include "weights.h"   /* enum wt_dtype */

#ifdef __CUDACC__
#define NNI_FN static __host__ __device__ __forceinline__
#else
#include <math.h>
#include <string.h>
#define NNI_FN static inline
#endif

#ifdef __CUDA_ARCH__
#define NNI_MUL(a, b) __fmul_rn((a), (b))
#define NNI_ADD(a, b) __fadd_rn((a), (b))
#define NNI_SUB(a, b) __fsub_rn((a), (b))
#define NNI_DIV(a, b) __fdiv_rn((a), (b))
#else
#define NNI_MUL(a, b) ((a) * (b))
#define NNI_ADD(a, b) ((a) + (b))
#define NNI_SUB(a, b) ((a) - (b))
#define NNI_DIV(a, b) ((a) / (b))
#endif

NNI_FN float nni_bits(uint32_t u)
{
#ifdef __CUDA_ARCH__
    return __uint_as_float(u);
#else
    float f;
    memcpy(&f, &u, 4);
    return f;
#endif
}

/* ---- weights ---- */

/* a weight as the kernels take it (struct nn_w without the enum type) */
struct nni_w {
    const void *p;
    int dt;
    float scale;
};

/* element i as stored, decoded exactly (wt_*_to_f32 in weights.h) */
NNI_FN float nni_wraw(const void *p, int dt, size_t i)
{
    uint32_t s, e, m;
    float v;
    switch (dt) {
    case WT_F32: return ((const float *)p)[i];
    case WT_BF16: return nni_bits((uint32_t)((const uint16_t *)p)[i] << 16);
    case WT_F16: {
        uint32_t h = ((const uint16_t *)p)[i];
        s = (h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff;
        if (e == 0) {
            if (m == 0) return nni_bits(s);
            v = NNI_MUL((float)m, 5.9604644775390625e-8f);   /* m * 2^-24, exact */
            return s ? -v : v;
        }
        if (e == 31) return nni_bits(s | 0x7f800000u | (m << 13));
        return nni_bits(s | ((e + 112) << 23) | (m << 13));
    }
    case WT_F8_E4M3: {
        uint32_t b = ((const uint8_t *)p)[i];
        s = b >> 7, e = (b >> 3) & 0xf, m = b & 7;
        if (e == 15 && m == 7) return nni_bits(s ? 0xffc00000u : 0x7fc00000u);   /* NaN, sign kept */
        if (e == 0) v = NNI_MUL((float)m, 0.001953125f);                       /* m/8 * 2^-6 */
        else v = nni_bits((e + 120) << 23 | m << 20);                          /* (1 + m/8) * 2^(e-7) */
        return s ? -v : v;
    }
    case WT_F8_E5M2: {
        uint32_t b = ((const uint8_t *)p)[i];
        s = b >> 7, e = (b >> 2) & 0x1f, m = b & 3;
        if (e == 31) v = nni_bits(m ? 0x7fc00000u : 0x7f800000u);
        else if (e == 0) v = NNI_MUL((float)m, 1.52587890625e-5f);             /* m/4 * 2^-14 */
        else v = nni_bits((e + 112) << 23 | m << 21);                          /* (1 + m/4) * 2^(e-15) */
        return s ? -v : v;
    }
    default: return nni_bits(0x7fc00000u);
    }
}

/* nn_w_get: the element times the scale (skipped when 1) */
NNI_FN float nni_wget(struct nni_w w, size_t i)
{
    float v = nni_wraw(w.p, w.dt, i);
    return w.scale != 1.0f ? NNI_MUL(v, w.scale) : v;
}

/* ---- bilinear resize (align_corners=False) ---- */

/* source index and weight of output position d: (d + 0.5) * scale - 0.5, >= 0 */
NNI_FN void nni_src_index(int d, float scale, int in, int *i0, int *i1, float *l)
{
    float s = NNI_SUB(NNI_MUL(scale, NNI_ADD((float)d, 0.5f)), 0.5f);
    if (s < 0) s = 0;
    int i = (int)s;   /* s >= 0: truncation is floor */
    if (i > in - 1) i = in - 1;
    float lam = NNI_SUB(s, (float)i);
    if (lam > 1) lam = 1;
    *i0 = i;
    *i1 = i < in - 1 ? i + 1 : i;
    *l = lam;
}

/* output element e of y [C, Ho, Wo] from x [C, H, W]; sh = H / Ho, sw = W / Wo
 * as float, computed by the caller as nn_img.c computes them */
NNI_FN float nni_resize_at(const float *x, int H, int W, int Ho, int Wo, float sh, float sw, size_t e)
{
    int ox = (int)(e % (size_t)Wo);
    size_t r = e / (size_t)Wo;
    int oy = (int)(r % (size_t)Ho);
    size_t c = r / (size_t)Ho;
    int y0, y1, x0, x1;
    float ly, lx;
    nni_src_index(oy, sh, H, &y0, &y1, &ly);
    nni_src_index(ox, sw, W, &x0, &x1, &lx);
    const float *p0 = x + (c * (size_t)H + (size_t)y0) * (size_t)W;
    const float *p1 = x + (c * (size_t)H + (size_t)y1) * (size_t)W;
    /* along x in each source row, then along y */
    float a = NNI_ADD(NNI_MUL(NNI_SUB(1.0f, lx), p0[x0]), NNI_MUL(lx, p0[x1]));
    float b = NNI_ADD(NNI_MUL(NNI_SUB(1.0f, lx), p1[x0]), NNI_MUL(lx, p1[x1]));
    return NNI_ADD(NNI_MUL(NNI_SUB(1.0f, ly), a), NNI_MUL(ly, b));
}

/* ---- backward warp (grid_sample bilinear, border, align_corners=True) ---- */

/* pixel p = i * W + k of every channel of y [C, H, W] */
NNI_FN void nni_warp_px(float *y, const float *x, int C, int H, int W, const float *u, const float *v, size_t p)
{
    size_t plane = (size_t)H * (size_t)W;
    int i = (int)(p / (size_t)W), k = (int)(p % (size_t)W);
    float xmax = (float)(W - 1), ymax = (float)(H - 1);
    float sx = fminf(fmaxf(NNI_ADD((float)k, u[p]), 0.f), xmax);
    float sy = fminf(fmaxf(NNI_ADD((float)i, v[p]), 0.f), ymax);
    int x0 = (int)sx, y0 = (int)sy;
    int x1 = x0 < W - 1 ? x0 + 1 : x0, y1 = y0 < H - 1 ? y0 + 1 : y0;
    float fx = NNI_SUB(sx, (float)x0), fy = NNI_SUB(sy, (float)y0);
    float gx = NNI_SUB(1.0f, fx), gy = NNI_SUB(1.0f, fy);
    float wnw = NNI_MUL(gx, gy), wne = NNI_MUL(fx, gy), wsw = NNI_MUL(gx, fy), wse = NNI_MUL(fx, fy);
    size_t onw = (size_t)y0 * (size_t)W + (size_t)x0, one = (size_t)y0 * (size_t)W + (size_t)x1;
    size_t osw = (size_t)y1 * (size_t)W + (size_t)x0, ose = (size_t)y1 * (size_t)W + (size_t)x1;
    for (int c = 0; c < C; c++) {
        const float *q = x + (size_t)c * plane;
        float s = NNI_ADD(NNI_MUL(q[onw], wnw), NNI_MUL(q[one], wne));
        s = NNI_ADD(s, NNI_MUL(q[osw], wsw));
        y[(size_t)c * plane + p] = NNI_ADD(s, NNI_MUL(q[ose], wse));
    }
}

/* ---- pixel shuffle: output element e of y [C, H*r, W*r] ---- */
NNI_FN float nni_shuffle_at(const float *x, int H, int W, int r, size_t e)
{
    size_t Ho = (size_t)H * (size_t)r, Wo = (size_t)W * (size_t)r;
    size_t ox = e % Wo, row = e / Wo, oy = row % Ho, c = row / Ho;
    size_t h = oy / (size_t)r, i = oy % (size_t)r, w = ox / (size_t)r, j = ox % (size_t)r;
    return x[((c * (size_t)r * (size_t)r + i * (size_t)r + j) * (size_t)H + h) * (size_t)W + w];
}

/* ---- element-wise ---- */
NNI_FN float nni_leaky(float v, float slope) { return v >= 0 ? v : NNI_MUL(v, slope); }

NNI_FN float nni_sigmoid(float v) { return NNI_DIV(1.0f, NNI_ADD(1.0f, expf(-v))); }

/* element e of [C, S]: the channel's slope */
NNI_FN float nni_prelu_at(const float *x, size_t S, struct nni_w slope, size_t e)
{
    float v = x[e];
    return v >= 0 ? v : NNI_MUL(nni_wget(slope, e / S), v);
}

/* element e of [C, S]: x * gamma[c] (+ res) */
NNI_FN float nni_scale_add_at(const float *x, size_t S, struct nni_w gamma, const float *res, size_t e)
{
    float g = nni_wget(gamma, e / S);
    return res ? NNI_ADD(NNI_MUL(x[e], g), res[e]) : NNI_MUL(x[e], g);
}

/* element e of [planes, n]: a * w + b * (1 - w), w [n] */
NNI_FN float nni_lerp_at(const float *a, const float *b, const float *w, size_t n, size_t e)
{
    float wv = w[e % n];
    return NNI_ADD(NNI_MUL(a[e], wv), NNI_MUL(b[e], NNI_SUB(1.0f, wv)));
}
#endif
