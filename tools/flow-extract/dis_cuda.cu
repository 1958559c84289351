// dis_cuda.cu — DIS optical flow on a CUDA device: a port of dis.c stage by
// stage (see dis.h for the algorithm and dis.c for the reasons behind each
// choice). Kernels, per level: downsample (one thread per pixel), gradients
// (per pixel), patch inverse search (8 lanes per patch, one patch row of a stripe per lane group,
// walking the stripe's patches as a wavefront: a patch on anti-diagonal t
// needs its left and upper neighbours, both on diagonal t - 1, so the
// propagation order of the CPU path is kept exactly), densification (per
// pixel, gathering the patches that cover it in the CPU's order, so no
// atomics and the same sums), variational refinement (derivatives, weights,
// data terms per pixel, then red and black SOR passes). Sums are taken in
// the order dis.c takes them (8 lanes per patch row, then a pairwise
// reduction), so the two paths differ only by rounding (FMA contraction).
// All device memory is one arena (gpu_arena_create) carved up at dis_cuda_new.
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern "C" {
#include "err.h"
#include "gpu.h"
#include "gmotion.h"
}
#include "dis_cuda.h"

#define MAX_LEVELS 12
#define P8 8
#define EPS2 1e-6f
// the constants of dis.c (job_patches)
#define SEARCH_WIN 0.25f
#define ALIAS_SELF 2.f
#define BORDER_KEEP 0.5f
#define SEARCH_REACH 32
#define GLOBAL_WIN 1.f
#define GLOBAL_WIN_COARSE 1.5f
#define GLOBAL_TIE 1.f
#define GLOBAL_INSIDE 0.99f
#define GLOBAL_FAR 4.f
#define GLOBAL_GATE 4.f
#define PERIOD_HALF 2.f

#define CK(call)                                                                                          \
    do {                                                                                                  \
        cudaError_t e_ = (call);                                                                          \
        if (e_ != cudaSuccess) return iso_fail(ISO_EINTERNAL, "%s: %s", #call, cudaGetErrorString(e_)); \
    } while (0)
#define CKL(what)                                                                                         \
    do {                                                                                                  \
        cudaError_t e_ = cudaGetLastError();                                                              \
        if (e_ != cudaSuccess) return iso_fail(ISO_EINTERNAL, "kernel %s: %s", what, cudaGetErrorString(e_)); \
    } while (0)

struct dlevel {
    int w, h;
    float *I0, *I1, *gx, *gy;
};

struct dis_cuda {
    struct dis_params p;
    int w, h, nlev, coarsest, finest, nstripes_thr;
    int search_level;        // the level of the whole-pixel search (p.search)
    int gm_level;            // the level the dominant motion is estimated on (p.global; host side, gmotion.c)
    struct dlevel lev[MAX_LEVELS];
    float *U, *V, *Uc, *Vc;  // dense flow, current and coarser level
    float *pu, *pv, *pmd;    // per patch flow and densification mean difference
    float *vd;               // 10 planes: Ix Iy Iz Ixx Ixy Iyy Ixz Iyz U0 V0
    float *rb;               // 7 planes: WR WD A12 B1 B2 ID11 ID22
    float *ou, *ov;          // output at frame size
    float *bs[3];            // cubic B-spline coefficients of I1 and its gradients x, y
    float *sm[2], *smt;      // low-passed I0, I1 of the level being refined and the filter's scratch (p.smooth > 0)
    struct gpu_arena *arena;
    size_t nmax;             // pixels of the largest refinement/flow grid
};

enum { VD_IX, VD_IY, VD_IZ, VD_IXX, VD_IXY, VD_IYY, VD_IXZ, VD_IYZ, VD_U0, VD_V0, VD_N };
enum { R_WR, R_WD, R_A12, R_B1, R_B2, R_I11, R_I22, R_N };

static int grid_n(int size, int patch, int stride) { return (size - patch + stride - 1) / stride + 1; }

__device__ __forceinline__ int grid_pos(int i, int n, int size, int P, int stride)
{
    int p = i * stride;
    return i == n - 1 || p > size - P ? size - P : p;
}

// ---- level geometry: the same rule as dis_new ----
static int geometry(struct dis_cuda *d, int w, int h, const struct dis_params *p)
{
    if (p->patch != 8 || p->stride < 1 || p->stride > p->patch || p->iters < 0 || p->finest < 0 ||
        p->var_outer < 0 || p->var_inner < 0)
        return iso_fail(ISO_EINTERNAL, "bad DIS parameters");
    if (w < 2 * p->patch || h < 2 * p->patch)
        return iso_fail(ISO_EDATA, "frames of %dx%d are too small for optical flow (at least %dx%d)", w, h,
                        2 * p->patch, 2 * p->patch);
    d->p = *p;
    d->w = w;
    d->h = h;
    int c = p->coarsest, cs;
    if (c < 0) {
        double mx = w > h ? w : h;
        c = (int)floor(log2(mx / (4.0 * p->patch)) + 0.5) - 1;
        while (c > 0 && ((w >> c) < 2 * p->patch || (h >> c) < 2 * p->patch)) c--;
        if (c < 0) c = 0;
        cs = c;
        if ((w >> (c + 1)) >= 2 * p->patch && (h >> (c + 1)) >= 2 * p->patch) c++;
    } else {
        while (c > 0 && ((w >> c) < 2 * p->patch || (h >> c) < 2 * p->patch)) c--;
        cs = c;
    }
    if (c >= MAX_LEVELS) c = MAX_LEVELS - 1;
    if (cs > c) cs = c;
    d->search_level = cs;
    d->coarsest = c;
    d->gm_level = 0;
    while (d->gm_level < c && ((w >> d->gm_level) > GM_SIDE || (h >> d->gm_level) > GM_SIDE)) d->gm_level++;
    d->finest = p->finest < c ? p->finest : c;
    d->nlev = c + 1;
    for (int l = 0; l <= c; l++) {
        d->lev[l].w = l ? d->lev[l - 1].w / 2 : w;
        d->lev[l].h = l ? d->lev[l - 1].h / 2 : h;
    }
    const struct dlevel *F = &d->lev[d->finest];
    d->nmax = p->var_below > 0 ? (size_t)w * h : (size_t)F->w * F->h;
    return 0;
}

// Walks every buffer in a fixed order: with a == NULL it only adds up the
// aligned sizes (the arena size), else it carves them out of a.
static int carve(struct dis_cuda *d, struct gpu_arena *a, uint64_t *total)
{
    uint64_t t = 0;
    int rc = 0;
#define TAKE(ptr, nfloats)                                                              \
    do {                                                                                \
        uint64_t b_ = (uint64_t)(nfloats) * sizeof(float);                              \
        t += (b_ + 255) & ~(uint64_t)255;                                               \
        if (a && (rc = gpu_arena_alloc(a, b_, 256, (void **)&(ptr)))) return rc;        \
    } while (0)
    for (int l = 0; l < d->nlev; l++) {
        struct dlevel *L = &d->lev[l];
        size_t n = (size_t)L->w * L->h;
        TAKE(L->I0, n);
        TAKE(L->I1, n);
        if (l >= d->finest) {
            TAKE(L->gx, n);
            TAKE(L->gy, n);
        }
    }
    const struct dlevel *F = &d->lev[d->finest];
    size_t np = (size_t)grid_n(F->w, 8, d->p.stride) * grid_n(F->h, 8, d->p.stride);
    TAKE(d->U, d->nmax);
    TAKE(d->V, d->nmax);
    TAKE(d->Uc, d->nmax);
    TAKE(d->Vc, d->nmax);
    TAKE(d->pu, np);
    TAKE(d->pv, np);
    TAKE(d->pmd, np);
    TAKE(d->vd, d->nmax * VD_N);
    TAKE(d->rb, d->nmax * R_N);
    for (int k = 0; k < 3; k++) TAKE(d->bs[k], d->nmax);
    if (d->p.smooth > 0) {
        TAKE(d->sm[0], d->nmax);
        TAKE(d->sm[1], d->nmax);
        TAKE(d->smt, d->nmax);
    }
    TAKE(d->ou, (size_t)d->w * d->h);
    TAKE(d->ov, (size_t)d->w * d->h);
#undef TAKE
    *total = t;
    return 0;
}

extern "C" int dis_cuda_bytes(int w, int h, const struct dis_params *p, uint64_t *bytes)
{
    struct dis_cuda d;
    memset(&d, 0, sizeof d);
    int rc = geometry(&d, w, h, p);
    if (rc) return rc;
    return carve(&d, NULL, bytes);
}

extern "C" void dis_cuda_free(struct dis_cuda **dp)
{
    struct dis_cuda *d = dp ? *dp : NULL;
    if (!d) return;
    gpu_arena_free(&d->arena);
    free(d);
    *dp = NULL;
}

extern "C" int dis_cuda_new(struct dis_cuda **out, int w, int h, const struct dis_params *p, int cpu_threads)
{
    *out = NULL;
    struct dis_cuda *d = (struct dis_cuda *)calloc(1, sizeof *d);
    if (!d) return iso_fail(ISO_EINTERNAL, "out of memory");
    uint64_t bytes = 0;
    int rc = geometry(d, w, h, p);
    if (!rc) rc = carve(d, NULL, &bytes);
    if (!rc) rc = gpu_arena_create("activations", bytes, &d->arena);
    if (!rc) rc = carve(d, d->arena, &bytes);
    if (rc) {
        dis_cuda_free(&d);
        return rc;
    }
    d->nstripes_thr = cpu_threads < 1 ? 1 : cpu_threads;
    *out = d;
    return 0;
}

extern "C" int dis_cuda_coarsest(const struct dis_cuda *d) { return d->coarsest; }

// ---- pyramid and gradients ----

__global__ void k_downsample(const float *sa, const float *sb, int sw, float *da, float *db, int w, int h)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    const float *a0 = sa + (size_t)(2 * y) * sw, *a1 = a0 + sw;
    const float *b0 = sb + (size_t)(2 * y) * sw, *b1 = b0 + sw;
    da[(size_t)y * w + x] = 0.25f * (a0[2 * x] + a0[2 * x + 1] + a1[2 * x] + a1[2 * x + 1]);
    db[(size_t)y * w + x] = 0.25f * (b0[2 * x] + b0[2 * x + 1] + b1[2 * x] + b1[2 * x + 1]);
}

__global__ void k_gradient(const float *I, float *gx, float *gy, int w, int h)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    const float *rm = I + (size_t)(y > 0 ? y - 1 : 0) * w;
    const float *r0 = I + (size_t)y * w;
    const float *rp = I + (size_t)(y < h - 1 ? y + 1 : h - 1) * w;
    int xm = x > 0 ? x - 1 : 0, xp = x < w - 1 ? x + 1 : w - 1;
    gx[(size_t)y * w + x] = 0.125f * ((rm[xp] - rm[xm]) + 2.f * (r0[xp] - r0[xm]) + (rp[xp] - rp[xm]));
    gy[(size_t)y * w + x] = 0.125f * ((rp[xm] - rm[xm]) + 2.f * (rp[x] - rm[x]) + (rp[xp] - rm[xp]));
}

__device__ __forceinline__ float sample(const float *I, int w, int h, float x, float y)
{
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x > w - 1) x = (float)(w - 1);
    if (y > h - 1) y = (float)(h - 1);
    int ix = (int)x, iy = (int)y;
    if (ix > w - 2) ix = w - 2;
    if (iy > h - 2) iy = h - 2;
    float ax = x - ix, ay = y - iy;
    const float *p = I + (size_t)iy * w + ix;
    float a = p[0] + ax * (p[1] - p[0]);
    float b = p[w] + ax * (p[w + 1] - p[w]);
    return a + ay * (b - a);
}

__device__ __forceinline__ float hsum8(const float *a)
{
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

// the 8 x 8 block of I at top-left (fx, fy), bilinear (warp8 in dis.c)
__device__ __forceinline__ void warp8(const float *I, int w, int h, float fx, float fy, float W[P8][P8])
{
    int ix = (int)floorf(fx), iy = (int)floorf(fy);
    if (ix >= 0 && iy >= 0 && ix + P8 < w && iy + P8 < h) {
        float ax = fx - ix, ay = fy - iy;
        float w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
        const float *r = I + (size_t)iy * w + ix;
#pragma unroll
        for (int y = 0; y < P8; y++)
#pragma unroll
            for (int x = 0; x < P8; x++)
                W[y][x] = w00 * r[y * w + x] + w01 * r[y * w + x + 1] + w10 * r[(y + 1) * w + x] +
                          w11 * r[(y + 1) * w + x + 1];
        return;
    }
#pragma unroll
    for (int y = 0; y < P8; y++)
#pragma unroll
        for (int x = 0; x < P8; x++) W[y][x] = sample(I, w, h, fx + x, fy + y);
}

// ---- patch inverse search (DIS §2.1) ----
// A patch is worked on by 8 lanes, lane x holding column x of the 8 x 8
// block: the CPU's 8-lane vectors exactly. A sum over the patch is the
// per-lane sum over rows, then an xor-butterfly over the 8 lanes, which adds
// ((a0 + a1) + (a2 + a3)) + ((a4 + a5) + (a6 + a7)) as hsum8 in dis.c does,
// and leaves the same value in every lane (IEEE addition commutes), so the
// lanes of a patch never diverge.

struct pctx {
    const float *T, *GX, *GY;  // column `lane` of the patch in I0, gx, gy (row stride w)
    float meanT, hxx, hxy, hyy, det;
    int x0, y0, lane;
    unsigned mask;             // the 8 lanes of this patch in the warp
};

struct dlev_arg {
    const float *I0, *I1, *gx, *gy;
    int w, h;
};

__device__ __forceinline__ float lsum(const pctx *c, float a)
{
    a += __shfl_xor_sync(c->mask, a, 1, 8);
    a += __shfl_xor_sync(c->mask, a, 2, 8);
    a += __shfl_xor_sync(c->mask, a, 4, 8);
    return a;
}

// column `lane` of warp8's block (dis.c): the same weights and clamping
__device__ __forceinline__ void warp_col(const float *I, int w, int h, float fx, float fy, int x, float W[P8])
{
    int ix = (int)floorf(fx), iy = (int)floorf(fy);
    if (ix >= 0 && iy >= 0 && ix + P8 < w && iy + P8 < h) {
        float ax = fx - ix, ay = fy - iy;
        float w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
        const float *r = I + (size_t)iy * w + ix + x;
#pragma unroll
        for (int y = 0; y < P8; y++)
            W[y] = w00 * r[y * w] + w01 * r[y * w + 1] + w10 * r[(y + 1) * w] + w11 * r[(y + 1) * w + 1];
        return;
    }
#pragma unroll
    for (int y = 0; y < P8; y++) W[y] = sample(I, w, h, fx + x, fy + y);
}

__device__ void patch_load(pctx *c, const dlev_arg &L, int x0, int y0, int mean_norm)
{
    float s = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
    c->x0 = x0;
    c->y0 = y0;
    size_t o = (size_t)y0 * L.w + x0 + c->lane;
    c->T = L.I0 + o;
    c->GX = L.gx + o;
    c->GY = L.gy + o;
#pragma unroll
    for (int y = 0; y < P8; y++) {
        float t = c->T[y * L.w], gx = c->GX[y * L.w], gy = c->GY[y * L.w];
        s += t; sx += gx; sy += gy;
        sxx += gx * gx; sxy += gx * gy; syy += gy * gy;
    }
    double n = P8 * P8, Sx = lsum(c, sx), Sy = lsum(c, sy);
    double Sxx = lsum(c, sxx), Sxy = lsum(c, sxy), Syy = lsum(c, syy);
    c->meanT = lsum(c, s) / (float)n;
    if (mean_norm) {
        Sxx -= Sx * Sx / n; Sxy -= Sx * Sy / n; Syy -= Sy * Sy / n;
    }
    c->hxx = (float)Sxx; c->hxy = (float)Sxy; c->hyy = (float)Syy;
    c->det = (float)(Sxx * Syy - Sxy * Sxy);
}

__device__ __forceinline__ float patch_md(const pctx *c, const float W[P8], int mean_norm)
{
    if (!mean_norm) return 0.f;
    float s = W[0];
#pragma unroll
    for (int y = 1; y < P8; y++) s += W[y];
    return lsum(c, s) * (1.f / (P8 * P8)) - c->meanT;
}

__device__ float patch_ssd(const pctx *c, const dlev_arg &L, float u, float v, int mean_norm)
{
    float W[P8];
    warp_col(L.I1, L.w, L.h, c->x0 + u, c->y0 + v, c->lane, W);
    float m = patch_md(c, W, mean_norm);
    float acc = 0;
#pragma unroll
    for (int y = 0; y < P8; y++) {
        float r = W[y] - c->T[y * L.w] - m;
        acc += r * r;
    }
    return lsum(c, acc);
}

// is (du, dv) a period of the texture (dis.c, periodic())?
__device__ int periodic(const pctx *c, const dlev_arg &L, float du, float dv, int mean_norm)
{
    dlev_arg L0 = L;
    L0.I1 = L.I0;
    float self = patch_ssd(c, L0, du, dv, mean_norm);
    float half = patch_ssd(c, L0, 0.5f * du, 0.5f * dv, mean_norm);
    return half > PERIOD_HALF * self + GLOBAL_TIE * P8 * P8;
}

__device__ float patch_descend(const pctx *c, const dlev_arg &L, int iters, int mean_norm, float *pu, float *pv)
{
    float u = *pu, v = *pv, pu0 = u, pv0 = v, best = INFINITY;
    if (!(c->det > 1e-3f * (c->hxx + c->hyy + 1e-6f))) return patch_ssd(c, L, u, v, mean_norm);
    float inv = 1.f / c->det;
    for (int it = 0; it <= iters; it++) {
        float W[P8];
        warp_col(L.I1, L.w, L.h, c->x0 + u, c->y0 + v, c->lane, W);
        float m = patch_md(c, W, mean_norm);
        float s = 0, bx = 0, by = 0;
#pragma unroll
        for (int y = 0; y < P8; y++) {
            float r = W[y] - c->T[y * L.w] - m;
            s += r * r;
            bx += c->GX[y * L.w] * r;
            by += c->GY[y * L.w] * r;
        }
        float ssd = lsum(c, s);
        float Bx = lsum(c, bx), By = lsum(c, by);
        if (!(ssd < best)) {
            u = pu0;
            v = pv0;
            break;
        }
        best = ssd;
        pu0 = u;
        pv0 = v;
        if (it == iters) break;
        float du = (c->hyy * Bx - c->hxy * By) * inv;
        float dv = (c->hxx * By - c->hxy * Bx) * inv;
        u -= du;
        v -= dv;
        if (du * du + dv * dv < 1e-6f) break;
    }
    *pu = u;
    *pv = v;
    return best;
}

struct patch_arg {
    dlev_arg L;
    const float *U, *V;  // dense flow of this level (the coarser one, upsampled)
    float *pu, *pv;
    int nx, ny, nstripes, pass, search, stride, iters, mean_norm, propagate, cand;
    int gm;              // the dominant-motion candidate, from a trusted model (dis.c, job_patches)
    float ga[6];         // its flow at this level: u = ga[0] + ga[1] x + ga[2] y, v = ga[3] + ...
    float gm_win;        // GLOBAL_WIN_COARSE at the estimate's level and coarser, GLOBAL_WIN below
};

// one block per stripe, one 8-lane group per patch row of it; step t of the
// wavefront handles column t - row (pass 0) so both neighbours that
// propagation reads (left and above; right and below in pass 1) were
// written at step t - 1, as in the CPU's sequential order
// (a stripe taller than the block goes in chunks of blockDim.x / 8 rows, one
// after the other: a chunk's first row needs the previous chunk's last)
#define PATCH_THREADS 256
__global__ void __launch_bounds__(PATCH_THREADS) k_patches(patch_arg a)
{
    const dlev_arg &L = a.L;
    int s = blockIdx.x;
    int r0 = (int)((long)a.ny * s / a.nstripes), r1 = (int)((long)a.ny * (s + 1) / a.nstripes);
    int nrows = r1 - r0;
    int it0 = a.propagate ? (a.iters + 1) / 2 : a.iters;
    int its = a.pass == 0 ? it0 : a.iters - it0;
    int nx = a.nx, fw = L.w, mn = a.mean_norm;
    int g = threadIdx.x / P8, ng = blockDim.x / P8;
    for (int base = 0; base < nrows; base += ng) {
    int nchunk = min(ng, nrows - base), i = base + g;
    for (int t = 0; t < nchunk + nx - 1; t++) {
        int cc = t - g;
        if (g < nchunk && cc >= 0 && cc < nx) {
            int r = a.pass == 0 ? r0 + i : r1 - 1 - i;
            int col = a.pass == 0 ? cc : nx - 1 - cc;
            int y0 = grid_pos(r, a.ny, L.h, P8, a.stride);
            int x0 = grid_pos(col, nx, L.w, P8, a.stride);
            int id = r * nx + col;
            pctx c;
            c.lane = threadIdx.x % P8;
            c.mask = 0xffu << (threadIdx.x % 32 / P8 * P8);
            patch_load(&c, L, x0, y0, mn);
            float u, v, gu, gv;
            if (a.pass == 0) {
                size_t ci = (size_t)(y0 + P8 / 2) * fw + (x0 + P8 / 2);
                u = a.U[ci];
                v = a.V[ci];
                gu = u;
                gv = v;
                if (a.cand > 0 && a.search == 0) {
                    int D = a.cand;
                    float best = patch_ssd(&c, L, u, v, mn), cu0 = u, cv0 = v;
                    for (int k = 0; k < 4; k++) {
                        int cx = x0 + P8 / 2 + (k & 1 ? D : -D), cy = y0 + P8 / 2 + (k & 2 ? D : -D);
                        cx = cx < 0 ? 0 : cx > L.w - 1 ? L.w - 1 : cx;
                        cy = cy < 0 ? 0 : cy > L.h - 1 ? L.h - 1 : cy;
                        size_t q = (size_t)cy * fw + cx;
                        float du = a.U[q] - cu0, dv = a.V[q] - cv0;
                        if (du * du + dv * dv < 0.25f) continue;
                        float ssd = patch_ssd(&c, L, a.U[q], a.V[q], mn);
                        if (ssd < best) { best = ssd; u = a.U[q]; v = a.V[q]; }
                    }
                }
            } else {
                u = a.pu[id];
                v = a.pv[id];
                gu = u;
                gv = v;
            }
            if (a.pass == 0 && a.search > 0) {
                float best = patch_ssd(&c, L, u, v, mn), bu = u, bv = v;
                int R = a.search;
                for (int oy = -R; oy <= R; oy++)
                    for (int ox = -R; ox <= R; ox++) {
                        if (!ox && !oy) continue;
                        float ssd = patch_ssd(&c, L, u + ox, v + oy, mn);
                        if (ssd < best) { best = ssd; bu = u + ox; bv = v + oy; }
                    }
                if (bu != u || bv != v) {
                    float au = u, av = v;
                    float sa = patch_descend(&c, L, its, mn, &au, &av);
                    float sb = patch_descend(&c, L, its, mn, &bu, &bv);
                    int take = sb < SEARCH_WIN * sa;
                    if (!take && sb < sa) {
                        // a periodic alias shows in I0 itself (dis.c, ALIAS_SELF); sa, sb
                        // are the same in the 8 lanes of the patch, so they branch alike
                        dlev_arg L0 = L;
                        L0.I1 = L.I0;
                        take = patch_ssd(&c, L0, bu - au, bv - av, mn) > ALIAS_SELF * sb;
                    }
                    u = take ? bu : au;
                    v = take ? bv : av;
                }
            }
            float iu = u, iv = v, gmu = 0, gmv = 0;
            if (a.propagate) {
                float best = patch_ssd(&c, L, u, v, mn);
                int nb[2][2] = { { r, col + (a.pass ? 1 : -1) }, { r + (a.pass ? 1 : -1), col } };
                for (int k = 0; k < 2; k++) {
                    int nr = nb[k][0], nc = nb[k][1];
                    if (nc < 0 || nc >= nx || nr < r0 || nr >= r1) continue;
                    // written by this block at an earlier step (visible after __syncthreads)
                    float cu = ((volatile float *)a.pu)[nr * nx + nc], cv = ((volatile float *)a.pv)[nr * nx + nc];
                    float ssd = patch_ssd(&c, L, cu, cv, mn);
                    if (ssd < best) { best = ssd; u = cu; v = cv; }
                }
            }
            float sd = patch_descend(&c, L, its, mn, &u, &v);
            if ((u - iu) * (u - iu) + (v - iv) * (v - iv) > (float)(P8 * P8)) { u = iu; v = iv; sd = INFINITY; }
            if (a.gm) {
                // the dominant motion (dis.c, job_patches: why); the same in the 8 lanes of the patch
                float xc = x0 + 0.5f * (P8 - 1), yc = y0 + 0.5f * (P8 - 1);
                float mu = a.ga[0] + a.ga[1] * xc + a.ga[2] * yc, mv = a.ga[3] + a.ga[4] * xc + a.ga[5] * yc;
                float du = mu - u, dv = mv - v, far2 = GLOBAL_FAR * GLOBAL_FAR;
                float mx = fminf(x0 + mu + P8, (float)L.w) - fmaxf(x0 + mu, 0.f);
                float my = fminf(y0 + mv + P8, (float)L.h) - fmaxf(y0 + mv, 0.f);
                // SSDs are lane sums, the same in the 8 lanes: they branch alike
                if (!(mx > 0 && my > 0 && mx * my >= GLOBAL_INSIDE * P8 * P8)) {
                    if (du * du + dv * dv > far2 && (!(sd < INFINITY) || periodic(&c, L, u - mu, v - mv, mn))) {
                        u = mu;
                        v = mv;
                    }
                } else if (du * du + dv * dv >= 1.f &&
                           !(sd < INFINITY && patch_ssd(&c, L, mu, mv, mn) > GLOBAL_GATE * sd + GLOBAL_TIE * P8 * P8 &&
                             !periodic(&c, L, u - mu, v - mv, mn))) {
                    float au = mu, av = mv;
                    float sm = patch_descend(&c, L, its, mn, &au, &av);
                    if ((au - mu) * (au - mu) + (av - mv) * (av - mv) <= (float)(P8 * P8) &&
                        sm <= a.gm_win * sd + GLOBAL_TIE * P8 * P8) { u = au; v = av; }
                }
                gmu = mu;
                gmv = mv;
            }
            {
                float ax = fminf(x0 + u + P8, (float)L.w) - fmaxf(x0 + u, 0.f);
                float ay = fminf(y0 + v + P8, (float)L.h) - fmaxf(y0 + v, 0.f);
                if (!(ax > 0 && ay > 0 && ax * ay >= BORDER_KEEP * P8 * P8)) {
                    if (a.gm && (gu - gmu) * (gu - gmu) + (gv - gmv) * (gv - gmv) > GLOBAL_FAR * GLOBAL_FAR &&
                        periodic(&c, L, gu - gmu, gv - gmv, mn)) { gu = gmu; gv = gmv; }
                    u = gu;
                    v = gv;
                }
            }
            if (c.lane == 0) {
                a.pu[id] = u;
                a.pv[id] = v;
            }
        }
        __syncthreads();
    }
    }
}

// ---- densification (DIS §2.2, eq. 5) ----

// per patch: the mean difference of its warped block from the template (as job_densify)
__global__ void k_patch_md(dlev_arg L, const float *pu, const float *pv, float *pmd, int nx, int ny, int stride,
                           int mean_norm)
{
    int id = blockIdx.x * blockDim.x + threadIdx.x;
    if (id >= nx * ny) return;
    if (!mean_norm) { pmd[id] = 0.f; return; }
    int r = id / nx, col = id % nx;
    int y0 = grid_pos(r, ny, L.h, P8, stride), x0 = grid_pos(col, nx, L.w, P8, stride);
    float W[P8][P8];
    warp8(L.I1, L.w, L.h, x0 + pu[id], y0 + pv[id], W);
    float sw[8] = { 0 }, st[8] = { 0 };
#pragma unroll
    for (int y = 0; y < P8; y++)
#pragma unroll
        for (int x = 0; x < P8; x++) {
            sw[x] += W[y][x];
            st[x] += L.I0[(size_t)(y0 + y) * L.w + x0 + x];
        }
    pmd[id] = (hsum8(sw) - hsum8(st)) * (1.f / (P8 * P8));
}

// one sample of warp8's block: (dx, dy) inside the patch at top-left (fx, fy)
__device__ __forceinline__ float warp_px(const float *I, int w, int h, float fx, float fy, int dx, int dy)
{
    int ix = (int)floorf(fx), iy = (int)floorf(fy);
    if (ix >= 0 && iy >= 0 && ix + P8 < w && iy + P8 < h) {
        float ax = fx - ix, ay = fy - iy;
        float w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
        const float *r = I + (size_t)(iy + dy) * w + ix + dx;
        return w00 * r[0] + w01 * r[1] + w10 * r[w] + w11 * r[w + 1];
    }
    return sample(I, w, h, fx + dx, fy + dy);
}

__global__ void k_densify(dlev_arg L, const float *pu, const float *pv, const float *pmd, float *U, float *V,
                          int nx, int ny, int stride)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= L.w || y >= L.h) return;
    float au = 0, av = 0, aw = 0;
    float t = L.I0[(size_t)y * L.w + x];
    int rlo = y >= P8 ? (y - P8) / stride : 0, rhi = min(ny - 1, y / stride + 1);
    int clo = x >= P8 ? (x - P8) / stride : 0, chi = min(nx - 1, x / stride + 1);
    // rows in ascending order as job_densify visits them (the clamped last row after the rest)
    for (int ri = rlo; ri <= rhi + 1; ri++) {
        int r = ri <= rhi ? ri : ny - 1;
        if (ri > rhi && rhi >= ny - 1) break;
        int y0 = grid_pos(r, ny, L.h, P8, stride);
        if (y < y0 || y >= y0 + P8) continue;
        for (int ci = clo; ci <= chi + 1; ci++) {
            int col = ci <= chi ? ci : nx - 1;
            if (ci > chi && chi >= nx - 1) break;
            int x0 = grid_pos(col, nx, L.w, P8, stride);
            if (x < x0 || x >= x0 + P8) continue;
            int id = r * nx + col;
            float u = pu[id], v = pv[id];
            float e = warp_px(L.I1, L.w, L.h, x0 + u, y0 + v, x - x0, y - y0) - t - pmd[id];
            float ae = fabsf(e);
            float wt = 1.f / (ae > 1.f ? ae : 1.f);
            au += wt * u;
            av += wt * v;
            aw += wt;
        }
    }
    size_t i = (size_t)y * L.w + x;
    U[i] = aw > 0 ? au / aw : 0.f;
    V[i] = aw > 0 ? av / aw : 0.f;
}

// ---- variational refinement (DIS §3.3, Brox et al. 2004; see dis.c) ----

// data terms on cubic-spline interpolants of I1 and its central-difference
// gradients (why: the comment above job_bs_rows in dis.c); the same arithmetic
#define BS_POLE (-0.26794919243112270f)
#define BS_GAIN 6.f
#define BS_HORIZON 12

__device__ __forceinline__ int mirror(int i, int n)
{
    if (i < 0) i = -i;
    if (i > n - 1) i = 2 * (n - 1) - i;
    return i < 0 ? 0 : i > n - 1 ? n - 1 : i;
}

__device__ void bs_prefilter_line(float *c, int n, ptrdiff_t s)
{
    const float z = BS_POLE;
    if (n < 2) return;
    for (int k = 0; k < n; k++) c[k * s] *= BS_GAIN;
    float acc = c[0], zk = z;
    for (int k = 1; k < n && k < BS_HORIZON; k++, zk *= z) acc += zk * c[k * s];
    c[0] = acc;
    for (int k = 1; k < n; k++) c[k * s] += z * c[(k - 1) * s];
    c[(n - 1) * s] = (z / (z * z - 1.f)) * (c[(n - 1) * s] + z * c[(n - 2) * s]);
    for (int k = n - 2; k >= 0; k--) c[k * s] = z * (c[(k + 1) * s] - c[k * s]);
}

// low-pass of the refinement's inputs (why: the comment above job_smooth in
// dis.c): the vertical pass into a scratch plane, then the horizontal one, each
// summed in the CPU's order (centre tap, then the pairs i = 1..r)
#define SM_MAXR 8
struct sm_kernel {
    float k[SM_MAXR + 1];
    int r;
};

__global__ void k_smooth_v(const float *I, float *t, int w, int h, sm_kernel g)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    float s = g.k[0] * I[(size_t)y * w + x];
    for (int i = 1; i <= g.r; i++) s += g.k[i] * (I[(size_t)mirror(y - i, h) * w + x] + I[(size_t)mirror(y + i, h) * w + x]);
    t[(size_t)y * w + x] = s;
}

__global__ void k_smooth_h(const float *t, float *o, int w, int h, sm_kernel g)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    const float *r = t + (size_t)y * w;
    float s = g.k[0] * r[x];
    for (int i = 1; i <= g.r; i++) s += g.k[i] * (r[mirror(x - i, w)] + r[mirror(x + i, w)]);
    o[(size_t)y * w + x] = s;
}

// I1 and its central-difference gradients (mirror boundary) into the three spline planes
__global__ void k_bs_grad(const float *I1, int w, int h, float *c0, float *c1, float *c2)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    const float *r = I1 + (size_t)y * w;
    const float *ru = I1 + (size_t)mirror(y - 1, h) * w, *rd = I1 + (size_t)mirror(y + 1, h) * w;
    size_t i = (size_t)y * w + x;
    c0[i] = r[x];
    c1[i] = 0.5f * (r[mirror(x + 1, w)] - r[mirror(x - 1, w)]);
    c2[i] = 0.5f * (rd[x] - ru[x]);
}

// one thread per line of one plane: rows (dir 0) or columns (dir 1)
__global__ void k_bs_prefilter(float *c0, float *c1, float *c2, int w, int h, int dir)
{
    int t = blockIdx.x * blockDim.x + threadIdx.x, nl = dir ? w : h;
    if (t >= 3 * nl) return;
    float *c = t / nl == 0 ? c0 : t / nl == 1 ? c1 : c2;
    int k = t % nl;
    if (dir == 0) bs_prefilter_line(c + (size_t)k * w, w, 1);
    else bs_prefilter_line(c + k, h, w);
}

__device__ __forceinline__ void bs_weights(float t, float *b, float *db)
{
    float t2 = t * t, t3 = t2 * t, s = 1.f - t;
    b[0] = s * s * s * (1.f / 6);
    b[1] = (3 * t3 - 6 * t2 + 4) * (1.f / 6);
    b[2] = (-3 * t3 + 3 * t2 + 3 * t + 1) * (1.f / 6);
    b[3] = t3 * (1.f / 6);
    db[0] = -0.5f * s * s;
    db[1] = 1.5f * t2 - 2 * t;
    db[2] = -1.5f * t2 + t + 0.5f;
    db[3] = 0.5f * t2;
}

__device__ __forceinline__ void bs_eval3(const float *c0, const float *c1, const float *c2, int w, int h, float fx,
                                         float fy, float o[3][3])
{
    int bx = (int)floorf(fx), by = (int)floorf(fy);
    float wx[4], dx[4], wy[4], dy[4];
    bs_weights(fx - bx, wx, dx);
    bs_weights(fy - by, wy, dy);
    size_t off[4];
    int xs[4];
    int inside = bx >= 1 && by >= 1 && bx + 2 < w && by + 2 < h;
    for (int i = 0; i < 4; i++) {
        xs[i] = inside ? bx - 1 + i : mirror(bx - 1 + i, w);
        off[i] = (size_t)(inside ? by - 1 + i : mirror(by - 1 + i, h)) * w;
    }
    // the four rows of taps combined first (value and derivative weights of y),
    // then against the x weights: the CPU's order (bs_eval3 in dis.c)
    for (int k = 0; k < 3; k++) {
        const float *c = k == 0 ? c0 : k == 1 ? c1 : c2;
        float V[4], D[4];
#pragma unroll
        for (int i = 0; i < 4; i++) {
            float r0 = c[off[0] + xs[i]], r1 = c[off[1] + xs[i]], r2 = c[off[2] + xs[i]], r3 = c[off[3] + xs[i]];
            V[i] = wy[0] * r0 + wy[1] * r1 + wy[2] * r2 + wy[3] * r3;
            D[i] = dy[0] * r0 + dy[1] * r1 + dy[2] * r2 + dy[3] * r3;
        }
        o[k][0] = (wx[0] * V[0] + wx[1] * V[1]) + (wx[2] * V[2] + wx[3] * V[3]);
        o[k][1] = (dx[0] * V[0] + dx[1] * V[1]) + (dx[2] * V[2] + dx[3] * V[3]);
        o[k][2] = (wx[0] * D[0] + wx[1] * D[1]) + (wx[2] * D[2] + wx[3] * D[3]);
    }
}

__global__ void k_var_derivs(const float *I0, const float *c0, const float *c1, const float *c2, int w, int h,
                             const float *U, const float *V, float *vd, size_t pl, float z2)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    size_t i = (size_t)y * w + x;
    vd[VD_U0 * pl + i] = U[i];
    vd[VD_V0 * pl + i] = V[i];
    float fx = x + U[i], fy = y + V[i];
    if (!(fx >= 0 && fy >= 0 && fx <= w - 1 && fy <= h - 1)) {
        for (int f = VD_IX; f <= VD_IYZ; f++) vd[f * pl + i] = 0.f;
        return;
    }
    float o[3][3];
    bs_eval3(c0, c1, c2, w, h, fx, fy, o);
    const float *r = I0 + (size_t)y * w;
    const float *ru = I0 + (size_t)mirror(y - 1, h) * w, *rd = I0 + (size_t)mirror(y + 1, h) * w;
    const float *ru2 = I0 + (size_t)mirror(y - 2, h) * w, *rd2 = I0 + (size_t)mirror(y + 2, h) * w;
    int xm = mirror(x - 1, w), xp = mirror(x + 1, w), xm2 = mirror(x - 2, w), xp2 = mirror(x + 2, w);
    float g0x = 0.5f * (r[xp] - r[xm]), g0y = 0.5f * (rd[x] - ru[x]);
    float g0xx = 0.25f * (r[xp2] - 2 * r[x] + r[xm2]);
    float g0yy = 0.25f * (rd2[x] - 2 * r[x] + ru2[x]);
    float g0xy = 0.25f * (rd[xp] - rd[xm] - ru[xp] + ru[xm]);
    float Ix = 0.5f * (g0x + o[0][1]), Iy = 0.5f * (g0y + o[0][2]), Iz = o[0][0] - r[x];
    float Ixx = 0.5f * (g0xx + o[1][1]), Ixy = 0.25f * (2 * g0xy + o[1][2] + o[2][1]), Iyy = 0.5f * (g0yy + o[2][2]);
    float Ixz = o[1][0] - g0x, Iyz = o[2][0] - g0y;
    float sb = 1.f / sqrtf(Ix * Ix + Iy * Iy + z2);
    float sg = 1.f / sqrtf(Ixx * Ixx + 2 * Ixy * Ixy + Iyy * Iyy + z2);
    vd[VD_IX * pl + i] = Ix * sb; vd[VD_IY * pl + i] = Iy * sb; vd[VD_IZ * pl + i] = Iz * sb;
    vd[VD_IXX * pl + i] = Ixx * sg; vd[VD_IXY * pl + i] = Ixy * sg; vd[VD_IYY * pl + i] = Iyy * sg;
    vd[VD_IXZ * pl + i] = Ixz * sg; vd[VD_IYZ * pl + i] = Iyz * sg;
}

// smoothness weight of the edges to the right and below (0 where they leave the frame)
__global__ void k_var_smooth(const float *U, const float *V, int w, int h, float *rb, size_t pl, float al)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    size_t i = (size_t)y * w + x;
    int edge = x == w - 1, last = y == h - 1;
    float ux = edge ? 0.f : U[i + 1] - U[i], vx = edge ? 0.f : V[i + 1] - V[i];
    float uy = last ? 0.f : U[i + w] - U[i], vy = last ? 0.f : V[i + w] - V[i];
    float n = ux * ux + vx * vx + EPS2;
    n += uy * uy + vy * vy;
    float sm = al / sqrtf(n);
    rb[R_WR * pl + i] = edge ? 0.f : sm;
    rb[R_WD * pl + i] = last ? 0.f : sm;
}

__global__ void k_var_data(const float *vd, const float *U, const float *V, int w, int h, float *rb, size_t pl,
                           float de, float ga, float om)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= w || y >= h) return;
    size_t i = (size_t)y * w + x;
    float Ix = vd[VD_IX * pl + i], Iy = vd[VD_IY * pl + i], Iz = vd[VD_IZ * pl + i];
    float Ixx = vd[VD_IXX * pl + i], Ixy = vd[VD_IXY * pl + i], Iyy = vd[VD_IYY * pl + i];
    float Ixz = vd[VD_IXZ * pl + i], Iyz = vd[VD_IYZ * pl + i];
    float U0 = vd[VD_U0 * pl + i], V0 = vd[VD_V0 * pl + i];
    float a = U[i] - U0, b = V[i] - V0;
    float rbv = Iz + Ix * a + Iy * b;
    float rgx = Ixz + Ixx * a + Ixy * b, rgy = Iyz + Ixy * a + Iyy * b;
    float nb = rbv * rbv + EPS2, ng = rgx * rgx + rgy * rgy + EPS2;
    float wdt = de / sqrtf(nb), wg = ga / sqrtf(ng);
    float a11 = wdt * Ix * Ix + wg * (Ixx * Ixx + Ixy * Ixy);
    float a12 = wdt * Ix * Iy + wg * (Ixx * Ixy + Ixy * Iyy);
    float a22 = wdt * Iy * Iy + wg * (Ixy * Ixy + Iyy * Iyy);
    float b1 = -(wdt * Ix * Iz + wg * (Ixx * Ixz + Ixy * Iyz));
    float b2 = -(wdt * Iy * Iz + wg * (Ixy * Ixz + Iyy * Iyz));
    float wl = x > 0 ? rb[R_WR * pl + i - 1] : 0.f, wr = rb[R_WR * pl + i];
    float wu = y > 0 ? rb[R_WD * pl + i - w] : 0.f, wd = rb[R_WD * pl + i];
    float sw = wl + wr + wu + wd;
    float d11 = a11 + sw, d22 = a22 + sw;
    rb[R_A12 * pl + i] = a12;
    rb[R_B1 * pl + i] = b1 + a11 * U0 + a12 * V0;
    rb[R_B2 * pl + i] = b2 + a12 * U0 + a22 * V0;
    rb[R_I11 * pl + i] = d11 > 0 ? om / d11 : 0.f;
    rb[R_I22 * pl + i] = d22 > 0 ? om / d22 : 0.f;
}

// one colour of red-black SOR: pixels with (x + y) & 1 == color, whose four
// neighbours are all of the other colour, so they update independently
__global__ void k_var_sor(float *U, float *V, int w, int h, const float *rb, size_t pl, float om1, int color)
{
    int xh = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    int x = 2 * xh + ((y + color) & 1);
    if (x >= w || y >= h) return;
    size_t i = (size_t)y * w + x;
    float wl = x > 0 ? rb[R_WR * pl + i - 1] : 0.f, wr = rb[R_WR * pl + i];
    float wu = y > 0 ? rb[R_WD * pl + i - w] : 0.f, wd = rb[R_WD * pl + i];
    float ul = x > 0 ? U[i - 1] : 0.f, ur = x < w - 1 ? U[i + 1] : 0.f;
    float uu = y > 0 ? U[i - w] : 0.f, ud = y < h - 1 ? U[i + w] : 0.f;
    float vl = x > 0 ? V[i - 1] : 0.f, vr = x < w - 1 ? V[i + 1] : 0.f;
    float vu = y > 0 ? V[i - w] : 0.f, vdn = y < h - 1 ? V[i + w] : 0.f;
    float su = wl * ul + wr * ur + wu * uu + wd * ud;
    float sv = wl * vl + wr * vr + wu * vu + wd * vdn;
    float vv = V[i], a = rb[R_A12 * pl + i];
    float nu = om1 * U[i] + rb[R_I11 * pl + i] * (rb[R_B1 * pl + i] + su - a * vv);
    float nv = om1 * vv + rb[R_I22 * pl + i] * (rb[R_B2 * pl + i] + sv - a * nu);
    U[i] = nu;
    V[i] = nv;
}

// ---- coarse-to-fine driver ----

__global__ void k_upsample(const float *su, const float *sv, int sw, int sh, float *du, float *dv, int dw, int dh,
                           float sc)
{
    int x = blockIdx.x * blockDim.x + threadIdx.x, y = blockIdx.y * blockDim.y + threadIdx.y;
    if (x >= dw || y >= dh) return;
    float inv = 1.f / sc;
    float sy = (y + 0.5f) * inv - 0.5f;
    if (sy < 0) sy = 0;
    if (sy > sh - 1) sy = (float)(sh - 1);
    int iy = (int)sy;
    if (iy > sh - 2) iy = sh > 1 ? sh - 2 : 0;
    float ay = sy - iy;
    size_t o0 = (size_t)iy * sw, o1 = sh > 1 ? o0 + sw : o0;
    float sx = (x + 0.5f) * inv - 0.5f;
    if (sx < 0) sx = 0;
    if (sx > sw - 1) sx = (float)(sw - 1);
    int ix = (int)sx;
    if (ix > sw - 2) ix = sw > 1 ? sw - 2 : 0;
    float ax = sx - ix;
    int ix1 = sw > 1 ? ix + 1 : ix;
    float a = su[o0 + ix] + ax * (su[o0 + ix1] - su[o0 + ix]);
    float b = su[o1 + ix] + ax * (su[o1 + ix1] - su[o1 + ix]);
    du[(size_t)y * dw + x] = sc * (a + ay * (b - a));
    a = sv[o0 + ix] + ax * (sv[o0 + ix1] - sv[o0 + ix]);
    b = sv[o1 + ix] + ax * (sv[o1 + ix1] - sv[o1 + ix]);
    dv[(size_t)y * dw + x] = sc * (a + ay * (b - a));
}

static dim3 grid2(int w, int h, dim3 b) { return dim3((w + b.x - 1) / b.x, (h + b.y - 1) / b.y); }

static int variational(struct dis_cuda *d, const struct dlevel *L, int outer)
{
    if (outer <= 0) return 0;
    const struct dis_params *p = &d->p;
    int w = L->w, h = L->h;
    size_t pl = (size_t)w * h;
    dim3 b(32, 8), g = grid2(w, h, b), gh = grid2((w + 1) / 2, h, b);
    const float *I0 = L->I0, *I1 = L->I1;
    if (p->smooth > 0) {
        // the same taps as dis.c's variational()
        sm_kernel sk;
        float sg = p->smooth, sum = 0;
        sk.r = (int)ceilf(3 * sg);
        if (sk.r > SM_MAXR) sk.r = SM_MAXR;
        for (int i = 0; i <= sk.r; i++) sum += (i ? 2 : 1) * (sk.k[i] = expf(-0.5f * i * i / (sg * sg)));
        for (int i = 0; i <= sk.r; i++) sk.k[i] /= sum;
        for (int im = 0; im < 2; im++) {
            k_smooth_v<<<g, b>>>(im ? L->I1 : L->I0, d->smt, w, h, sk);
            CKL("smooth_v");
            k_smooth_h<<<g, b>>>(d->smt, d->sm[im], w, h, sk);
            CKL("smooth_h");
        }
        I0 = d->sm[0];
        I1 = d->sm[1];
    }
    k_bs_grad<<<g, b>>>(I1, w, h, d->bs[0], d->bs[1], d->bs[2]);
    CKL("bs_grad");
    k_bs_prefilter<<<(3 * h + 127) / 128, 128>>>(d->bs[0], d->bs[1], d->bs[2], w, h, 0);
    CKL("bs_prefilter rows");
    k_bs_prefilter<<<(3 * w + 127) / 128, 128>>>(d->bs[0], d->bs[1], d->bs[2], w, h, 1);
    CKL("bs_prefilter columns");
    k_var_derivs<<<g, b>>>(I0, d->bs[0], d->bs[1], d->bs[2], w, h, d->U, d->V, d->vd, pl, p->zeta * p->zeta);
    CKL("var_derivs");
    for (int o = 0; o < outer; o++) {
        k_var_smooth<<<g, b>>>(d->U, d->V, w, h, d->rb, pl, p->alpha);
        CKL("var_smooth");
        k_var_data<<<g, b>>>(d->vd, d->U, d->V, w, h, d->rb, pl, p->delta, p->gamma, p->omega);
        CKL("var_data");
        for (int s = 0; s < p->var_inner; s++)
            for (int c = 0; c < 2; c++) {
                k_var_sor<<<gh, b>>>(d->U, d->V, w, h, d->rb, pl, 1.f - p->omega, c);
                CKL("var_sor");
            }
    }
    return 0;
}

static int upsample(const float *su, const float *sv, int sw, int sh, float *du, float *dv, int dw, int dh, float sc)
{
    dim3 b(32, 8);
    k_upsample<<<grid2(dw, dh, b), b>>>(su, sv, sw, sh, du, dv, dw, dh, sc);
    CKL("upsample");
    return 0;
}

extern "C" int dis_cuda_compute(struct dis_cuda *d, const float *I0, const float *I1, float *u, float *v)
{
    const struct dis_params *p = &d->p;
    size_t n0 = (size_t)d->w * d->h;
    int rc;
    float *t;
    if ((rc = gpu_memcpy_h2d(d->lev[0].I0, I0, n0 * sizeof(float), NULL))) return rc;
    if ((rc = gpu_memcpy_h2d(d->lev[0].I1, I1, n0 * sizeof(float), NULL))) return rc;
    dim3 b(32, 8);
    for (int l = 1; l < d->nlev; l++) {
        struct dlevel *S = &d->lev[l - 1], *D = &d->lev[l];
        k_downsample<<<grid2(D->w, D->h, b), b>>>(S->I0, S->I1, S->w, D->I0, D->I1, D->w, D->h);
        CKL("downsample");
    }
    for (int l = d->finest; l < d->nlev; l++) {
        struct dlevel *L = &d->lev[l];
        k_gradient<<<grid2(L->w, L->h, b), b>>>(L->I0, L->gx, L->gy, L->w, L->h);
        CKL("gradient");
    }
    // the dominant motion, on the host from the small level gm_level (gmotion.c)
    struct gmotion gm;
    memset(&gm, 0, sizeof gm);
    if (p->global) {
        const struct dlevel *G = &d->lev[d->gm_level];
        size_t ng = (size_t)G->w * G->h;
        float *h0 = (float *)malloc(2 * ng * sizeof(float));
        if (!h0) return iso_fail(ISO_EINTERNAL, "out of memory for the dominant motion");
        if ((rc = gpu_memcpy_d2h(h0, G->I0, ng * sizeof(float))) || (rc = gpu_memcpy_d2h(h0 + ng, G->I1, ng * sizeof(float)))) {
            free(h0);
            return rc;
        }
        rc = gmotion_estimate(h0, h0 + ng, G->w, G->h, NULL, &gm);
        free(h0);
        if (rc) return iso_fail(ISO_EINTERNAL, "out of memory for the dominant motion");
    }
    int pw = 0, ph = 0;
    for (int l = d->coarsest; l >= d->finest; l--) {
        struct dlevel *L = &d->lev[l];
        size_t n = (size_t)L->w * L->h;
        if (l == d->coarsest) {
            CK(cudaMemset(d->U, 0, n * sizeof(float)));
            CK(cudaMemset(d->V, 0, n * sizeof(float)));
        } else {
            t = d->U; d->U = d->Uc; d->Uc = t;
            t = d->V; d->V = d->Vc; d->Vc = t;
            if ((rc = upsample(d->Uc, d->Vc, pw, ph, d->U, d->V, L->w, L->h, 2.f))) return rc;
        }
        patch_arg pa;
        pa.L.I0 = L->I0; pa.L.I1 = L->I1; pa.L.gx = L->gx; pa.L.gy = L->gy; pa.L.w = L->w; pa.L.h = L->h;
        pa.U = d->U; pa.V = d->V; pa.pu = d->pu; pa.pv = d->pv;
        pa.nx = grid_n(L->w, 8, p->stride);
        pa.ny = grid_n(L->h, 8, p->stride);
        // the CPU path's stripes for its thread count (dis_compute)
        int nt = d->nstripes_thr;
        pa.nstripes = 2 * nt > 4 ? 2 * nt : 4;
        if (pa.nstripes > pa.ny) pa.nstripes = pa.ny;
        int rows = (pa.ny + pa.nstripes - 1) / pa.nstripes;
        int threads = rows * P8 >= PATCH_THREADS ? PATCH_THREADS : (rows * P8 + 31) / 32 * 32;
        pa.stride = p->stride; pa.iters = p->iters; pa.mean_norm = p->mean_norm; pa.propagate = p->propagate;
        pa.cand = p->cand;
        pa.search = l == d->search_level ? (p->search < (SEARCH_REACH >> l) ? p->search : SEARCH_REACH >> l) : 0;
        if (pa.search < 2) pa.search = 0; // a +-1 px search: none (why: dis.c)
        pa.gm = 0;
        if (gm.valid && gm.sure) {
            // as dis_compute: level-l pixel x sits at (x + 0.5) 2^(l-g) - 0.5 of level g
            double sc = ldexp(1.0, l - d->gm_level), o = 0.5 * sc - 0.5;
            for (int k = 0; k < 2; k++) {
                const double *c = gm.a + 3 * k;
                pa.ga[3 * k] = (float)((c[0] + c[1] * o + c[2] * o) / sc);
                pa.ga[3 * k + 1] = (float)c[1];
                pa.ga[3 * k + 2] = (float)c[2];
            }
            pa.gm = 1;
            pa.gm_win = l >= d->gm_level ? GLOBAL_WIN_COARSE : GLOBAL_WIN;
        }
        pa.pass = 0;
        k_patches<<<pa.nstripes, threads>>>(pa);
        CKL("patches");
        if (p->propagate) {
            pa.pass = 1;
            k_patches<<<pa.nstripes, threads>>>(pa);
            CKL("patches");
        }
        dlev_arg la = pa.L;
        int np = pa.nx * pa.ny;
        k_patch_md<<<(np + 127) / 128, 128>>>(la, d->pu, d->pv, d->pmd, pa.nx, pa.ny, p->stride, p->mean_norm);
        CKL("patch_md");
        k_densify<<<grid2(L->w, L->h, b), b>>>(la, d->pu, d->pv, d->pmd, d->U, d->V, pa.nx, pa.ny, p->stride);
        CKL("densify");
        if ((rc = variational(d, L, p->var_outer))) return rc;
        pw = L->w;
        ph = L->h;
    }
    const float *ru = d->ou, *rv = d->ov;
    if (p->var_below > 0) {
        for (int l = d->finest - 1; l >= 0; l--) {
            struct dlevel *L = &d->lev[l];
            t = d->U; d->U = d->Uc; d->Uc = t;
            t = d->V; d->V = d->Vc; d->Vc = t;
            if ((rc = upsample(d->Uc, d->Vc, pw, ph, d->U, d->V, L->w, L->h, 2.f))) return rc;
            if ((rc = variational(d, L, p->var_below))) return rc;
            pw = L->w;
            ph = L->h;
        }
        ru = d->U;
        rv = d->V;
    } else if (d->finest == 0) {
        ru = d->U;
        rv = d->V;
    } else {
        if ((rc = upsample(d->U, d->V, pw, ph, d->ou, d->ov, d->w, d->h, (float)(1 << d->finest)))) return rc;
    }
    CK(cudaDeviceSynchronize());
    if ((rc = gpu_memcpy_d2h(u, ru, n0 * sizeof(float)))) return rc;
    if ((rc = gpu_memcpy_d2h(v, rv, n0 * sizeof(float)))) return rc;
    return 0;
}
