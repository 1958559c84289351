// llm_cuda.cu — CUDA kernels of the LLM forward pass (see llm_cuda.h).
// Straightforward kernels, written for correctness against the CPU path
// first: one warp per output row for the quantised matmuls (lanes over
// blocks, warp-shuffle reduction), one thread block per (token, head) for
// attention, one per token for RMSNorm. Block layouts as in quant.c.
#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

extern "C" {
#include "err.h"
#include "gpu.h"
}
#include "llm_cuda.h"

#define QK 32
#define QK_K 256

struct q8a { float d, s; int8_t qs[QK]; };                      // as struct quant_q8a
struct q8k { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };  // as struct quant_q8k

struct llmc {
    llmc_dims d;
    cudaStream_t st;
    struct gpu_arena *arena;
    float *x, *xb, *q, *k, *v, *ao, *hg, *hu, *logits, *att, *freqs;
    uint8_t *act;           // activation blocks for one matmul input (max_batch x max row)
    size_t act_row;         // bytes of one row of activations (the largest format)
    __half *kc, *vc;        // (layer, n_ctx, kv_dim)
};

#define CK(call) do { cudaError_t e_ = (call); if (e_ != cudaSuccess) \
    return iso_fail(ISO_EINTERNAL, "cuda: %s: %s", #call, cudaGetErrorString(e_)); } while (0)

__device__ __forceinline__ float ld_half(const uint8_t *p)
{
    return __half2float(__ushort_as_half((unsigned short)(p[0] | p[1] << 8)));
}
__device__ __forceinline__ uint32_t ld_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static int block_elems(ggml_type t)
{
    switch (t) {
    case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16: return 1;
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K: return QK_K;
    default: return QK;
    }
}
static int block_bytes(ggml_type t)
{
    switch (t) {
    case GGML_TYPE_F32: return 4;
    case GGML_TYPE_F16: case GGML_TYPE_BF16: return 2;
    case GGML_TYPE_Q4_0: return 18;
    case GGML_TYPE_Q4_1: return 20;
    case GGML_TYPE_Q5_0: return 22;
    case GGML_TYPE_Q5_1: return 24;
    case GGML_TYPE_Q8_0: return 34;
    case GGML_TYPE_Q4_K: return 144;
    case GGML_TYPE_Q5_K: return 176;
    case GGML_TYPE_Q6_K: return 210;
    default: return 0;
    }
}
// activation format: 0 = q8a, 1 = q8k, 2 = float
static int act_kind(ggml_type t)
{
    switch (t) {
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: case GGML_TYPE_Q8_0: return 0;
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K: return 1;
    default: return 2;
    }
}
static size_t act_row_bytes(int kind, int64_t n)
{
    return kind == 0 ? (size_t)(n / QK) * sizeof(q8a) : kind == 1 ? (size_t)(n / QK_K) * sizeof(q8k) : (size_t)n * 4;
}

// ---- activation quantisation (quant.c act_q8a with the AVX2 rounding; act_q8k)
__global__ void k_act_q8a(const float *x, q8a *y, int n, int nblk_row)
{
    int b = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32, row = blockIdx.y;
    if (b >= nblk_row) return;
    const float *xs = x + (size_t)row * n + (size_t)b * QK;
    float v = xs[lane], a = fabsf(v);
    for (int o = 16; o; o >>= 1) a = fmaxf(a, __shfl_xor_sync(0xffffffff, a, o));
    float d = a / 127.0f, id = a != 0.0f ? 127.0f / a : 0.0f;
    int q = (int)rintf(v * id);
    int s = q;
    for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffff, s, o);
    q8a *out = y + (size_t)row * nblk_row + b;
    out->qs[lane] = (int8_t)q;
    if (lane == 0) { out->d = d; out->s = d * (float)s; }
}

__global__ void k_act_q8k(const float *x, q8k *y, int n)
{
    // one thread block (256 threads) per super-block; blockIdx.y = row
    int row = blockIdx.y, b = blockIdx.x, j = threadIdx.x;
    const float *xs = x + (size_t)row * n + (size_t)b * QK_K;
    __shared__ float sa[QK_K];
    __shared__ int si[QK_K];
    float v = xs[j];
    sa[j] = fabsf(v);
    si[j] = j;
    __syncthreads();
    // the first index of the largest magnitude (the CPU scans with a strict >)
    for (int o = QK_K / 2; o; o >>= 1) {
        if (j < o) {
            float a2 = sa[j + o];
            int i2 = si[j + o];
            if (a2 > sa[j] || (a2 == sa[j] && i2 < si[j])) { sa[j] = a2; si[j] = i2; }
        }
        __syncthreads();
    }
    q8k *out = y + (size_t)row * (n / QK_K) + b;
    float amax = sa[0];
    if (amax == 0.0f) {
        out->qs[j] = 0;
        if (j < 16) out->bsums[j] = 0;
        if (j == 0) out->d = 0;
        return;
    }
    float iscale = -128.0f / xs[si[0]];
    int q = (int)rintf(iscale * v);
    out->qs[j] = (int8_t)(q > 127 ? 127 : q);
    __syncthreads();
    if (j < 16) {
        int s = 0;
        for (int i = 0; i < 16; i++) s += out->qs[j * 16 + i];
        out->bsums[j] = (int16_t)s;
    }
    if (j == 0) out->d = 1.0f / iscale;
}

// ---- one block's dot product, as quant_dot_scalar
__device__ void k_scale_min(int j, const uint8_t *q, int &sc, int &m)
{
    if (j < 4) { sc = q[j] & 63; m = q[j + 4] & 63; }
    else { sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4); m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4); }
}

__device__ float block_dot(ggml_type t, const uint8_t *p, const void *xa, int b)
{
    switch (t) {
    case GGML_TYPE_F32: return ((const float *)p)[0] * ((const float *)xa)[b];
    case GGML_TYPE_F16: return ld_half(p) * ((const float *)xa)[b];
    case GGML_TYPE_BF16: return __uint_as_float((uint32_t)(p[0] | p[1] << 8) << 16) * ((const float *)xa)[b];
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: case GGML_TYPE_Q8_0: {
        const q8a *x = (const q8a *)xa + b;
        int acc = 0;
        if (t == GGML_TYPE_Q8_0) {
            for (int j = 0; j < 32; j++) acc += (int8_t)p[2 + j] * x->qs[j];
        } else {
            int o = t == GGML_TYPE_Q4_0 ? 2 : t == GGML_TYPE_Q4_1 ? 4 : t == GGML_TYPE_Q5_0 ? 6 : 8;
            int off = t == GGML_TYPE_Q4_0 ? 8 : t == GGML_TYPE_Q5_0 ? 16 : 0;
            uint32_t qh = t == GGML_TYPE_Q5_0 ? ld_u32(p + 2) : t == GGML_TYPE_Q5_1 ? ld_u32(p + 4) : 0;
            for (int j = 0; j < 16; j++) {
                int lo = (p[o + j] & 0xF) | ((qh >> j) & 1) << 4, hi = (p[o + j] >> 4) | ((qh >> (j + 16)) & 1) << 4;
                acc += (lo - off) * x->qs[j] + (hi - off) * x->qs[j + 16];
            }
        }
        float r = ld_half(p) * x->d * (float)acc;
        if (t == GGML_TYPE_Q4_1 || t == GGML_TYPE_Q5_1) r += ld_half(p + 2) * x->s;
        return r;
    }
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: {
        const q8k *x = (const q8k *)xa + b;
        const uint8_t *sc = p + 4, *qh = p + 16, *qs = t == GGML_TYPE_Q5_K ? p + 48 : p + 16;
        int sumi = 0, summ = 0;
        for (int c = 0; c < 4; c++) {
            int s0, m0, s1, m1;
            k_scale_min(2 * c, sc, s0, m0);
            k_scale_min(2 * c + 1, sc, s1, m1);
            int a0 = 0, a1 = 0;
            for (int l = 0; l < 32; l++) {
                int lo = qs[32 * c + l] & 0xF, hi = qs[32 * c + l] >> 4;
                if (t == GGML_TYPE_Q5_K) { lo |= ((qh[l] >> (2 * c)) & 1) << 4; hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4; }
                a0 += lo * x->qs[64 * c + l];
                a1 += hi * x->qs[64 * c + 32 + l];
            }
            sumi += s0 * a0 + s1 * a1;
            summ += m0 * (x->bsums[4 * c] + x->bsums[4 * c + 1]) + m1 * (x->bsums[4 * c + 2] + x->bsums[4 * c + 3]);
        }
        return x->d * (ld_half(p) * (float)sumi - ld_half(p + 2) * (float)summ);
    }
    case GGML_TYPE_Q6_K: {
        const q8k *x = (const q8k *)xa + b;
        const uint8_t *ql = p, *qh = p + 128;
        const int8_t *sc = (const int8_t *)(p + 192);
        int sumi = 0;
        for (int g = 0; g < 16; g++) {
            int acc = 0;
            for (int e = 16 * g; e < 16 * g + 16; e++) {
                int h = e / 128, k = (e % 128) / 32, l = e % 32;
                int lo = (ql[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF;
                int hi = (qh[32 * h + l] >> (2 * k)) & 3;
                acc += (lo + 16 * hi - 32) * x->qs[e];
            }
            sumi += sc[g] * acc;
        }
        return x->d * ld_half(p + 208) * (float)sumi;
    }
    default: return 0.0f;
    }
}

// weight element i of one block (the layouts of quant.c's header)
__device__ float block_elem(ggml_type t, const uint8_t *p, int i)
{
    switch (t) {
    case GGML_TYPE_Q4_0: return ld_half(p) * ((i < 16 ? p[2 + i] & 0xF : p[2 + i - 16] >> 4) - 8);
    case GGML_TYPE_Q4_1: return ld_half(p) * (i < 16 ? p[4 + i] & 0xF : p[4 + i - 16] >> 4) + ld_half(p + 2);
    case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: {
        int o = t == GGML_TYPE_Q5_0 ? 6 : 8;
        uint32_t qh = ld_u32(p + o - 4);
        int q = (i < 16 ? p[o + i] & 0xF : p[o + i - 16] >> 4) | ((qh >> i) & 1) << 4;
        return t == GGML_TYPE_Q5_0 ? ld_half(p) * (q - 16) : ld_half(p) * q + ld_half(p + 2);
    }
    case GGML_TYPE_Q8_0: return ld_half(p) * (int8_t)p[2 + i];
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: {
        int sub = i / 32, c = i / 64, l = i % 32, sc, m;
        k_scale_min(sub, p + 4, sc, m);
        const uint8_t *qs = p + (t == GGML_TYPE_Q5_K ? 48 : 16);
        int q = (qs[32 * c + l] >> (4 * (sub % 2))) & 0xF;
        if (t == GGML_TYPE_Q5_K) q |= ((p[16 + l] >> sub) & 1) << 4;
        return ld_half(p) * sc * q - ld_half(p + 2) * m;
    }
    case GGML_TYPE_Q6_K: {
        int h = i / 128, k = (i % 128) / 32, l = i % 32;
        int lo = (p[64 * h + 32 * (k % 2) + l] >> (4 * (k / 2))) & 0xF, hi = (p[128 + 32 * h + l] >> (2 * k)) & 3;
        return ld_half(p + 208) * (int8_t)p[192 + i / 16] * (lo + 16 * hi - 32);
    }
    default: return 0.0f;
    }
}

// y[t * ys + r] = W[r] . x[t] with float activations (reference mode); one warp per row
__global__ void k_matmul_f32(ggml_type t, const uint8_t *w, int64_t rows, int nb, int be, int bb, const float *x, int n,
                             int nt, float *y, int ys, const float *bias)
{
    int64_t r = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    const uint8_t *wr = w + (size_t)r * nb * bb;
    for (int tk = 0; tk < nt; tk++) {
        const float *xr = x + (size_t)tk * n;
        float s = 0;
        for (int b = lane; b < nb; b += 32) {
            if (be == 1) { s += block_dot(t, wr + (size_t)b * bb, xr, b); continue; }
            for (int i = 0; i < be; i++) s += block_elem(t, wr + (size_t)b * bb, i) * xr[(size_t)b * be + i];
        }
        for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffff, s, o);
        if (lane == 0) y[(size_t)tk * ys + r] = s + (bias ? bias[r] : 0.0f);
    }
}

// y[t * ys + r] = W[r] . act[t] (+ bias[r]); one warp per row
__global__ void k_matmul(ggml_type t, const uint8_t *w, int64_t rows, int nb, int bb, const uint8_t *act, size_t act_row,
                         int nt, float *y, int ys, const float *bias)
{
    int64_t r = (int64_t)blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
    int lane = threadIdx.x % 32;
    if (r >= rows) return;
    const uint8_t *wr = w + (size_t)r * nb * bb;
    for (int tk = 0; tk < nt; tk++) {
        const void *xa = act + (size_t)tk * act_row;
        float s = 0;
        for (int b = lane; b < nb; b += 32) s += block_dot(t, wr + (size_t)b * bb, xa, b);
        for (int o = 16; o; o >>= 1) s += __shfl_xor_sync(0xffffffff, s, o);
        if (lane == 0) y[(size_t)tk * ys + r] = s + (bias ? bias[r] : 0.0f);
    }
}

__global__ void k_rmsnorm(float *o, const float *x, const float *w, int n, float eps)
{
    const float *xr = x + (size_t)blockIdx.x * n;
    float *orow = o + (size_t)blockIdx.x * n;
    __shared__ double part[256];
    double s = 0;
    for (int i = threadIdx.x; i < n; i += blockDim.x) s += (double)(xr[i] * xr[i]);
    part[threadIdx.x] = s;
    __syncthreads();
    for (int k = blockDim.x / 2; k; k >>= 1) {
        if ((int)threadIdx.x < k) part[threadIdx.x] += part[threadIdx.x + k];
        __syncthreads();
    }
    float scale = 1.0f / sqrtf((float)(part[0] / n) + eps);
    for (int i = threadIdx.x; i < n; i += blockDim.x) orow[i] = xr[i] * scale * w[i];
}

// RoPE on every head of q (n_head) and k (n_head_kv) of every token; one thread per pair
__global__ void k_rope(float *q, float *k, int nt, int pos, int n_head, int n_head_kv, int hd, int n_rot,
                       float base, int neox, const float *freqs)
{
    int half = n_rot / 2, heads = n_head + n_head_kv;
    int idx = blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= nt * heads * half) return;
    int i = idx % half, h = (idx / half) % heads, t = idx / (half * heads);
    float *v = h < n_head ? q + ((size_t)t * n_head + h) * hd : k + ((size_t)t * n_head_kv + (h - n_head)) * hd;
    // theta = pos * scale^i by the same running product as the CPU (llm.c rope)
    float theta_scale = powf(base, -2.0f / (float)n_rot), theta = (float)(pos + t);
    for (int j = 0; j < i; j++) theta *= theta_scale;
    if (freqs) theta /= freqs[i];
    float c = cosf(theta), s = sinf(theta);
    int a = neox ? i : 2 * i, b = neox ? i + half : 2 * i + 1;
    float x0 = v[a], x1 = v[b];
    v[a] = x0 * c - x1 * s;
    v[b] = x0 * s + x1 * c;
}

__global__ void k_store_kv(__half *kc, __half *vc, const float *k, const float *v, int n, size_t off)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    kc[off + i] = __float2half_rn(k[i]);
    vc[off + i] = __float2half_rn(v[i]);
}

// causal attention: one thread block per (head, token); scores in att (n_ctx per (t, h))
__global__ void k_attention(float *out, const float *q, const __half *kc, const __half *vc, float *att,
                            int pos, int n_head, int n_head_kv, int hd, int kv_dim, int n_ctx)
{
    int h = blockIdx.x, t = blockIdx.y, len = pos + t + 1, kvh = h / (n_head / n_head_kv);
    float *sc = att + ((size_t)t * n_head + h) * n_ctx;
    __shared__ float qs[512];
    __shared__ float red[256];
    for (int i = threadIdx.x; i < hd; i += blockDim.x)   // the query in f16, as the CPU path
        qs[i] = __half2float(__float2half_rn(q[((size_t)t * n_head + h) * hd + i]));
    __syncthreads();
    float scale = rsqrtf((float)hd), mx = -INFINITY;
    for (int j = threadIdx.x; j < len; j += blockDim.x) {
        const __half *kr = kc + (size_t)j * kv_dim + (size_t)kvh * hd;
        float s = 0;
        for (int i = 0; i < hd; i++) s += qs[i] * __half2float(kr[i]);
        s *= scale;
        sc[j] = s;
        mx = fmaxf(mx, s);
    }
    red[threadIdx.x] = mx;
    __syncthreads();
    for (int k = blockDim.x / 2; k; k >>= 1) {
        if ((int)threadIdx.x < k) red[threadIdx.x] = fmaxf(red[threadIdx.x], red[threadIdx.x + k]);
        __syncthreads();
    }
    mx = red[0];
    __syncthreads();
    float sum = 0;
    for (int j = threadIdx.x; j < len; j += blockDim.x) { float e = expf(sc[j] - mx); sc[j] = e; sum += e; }
    red[threadIdx.x] = sum;
    __syncthreads();
    for (int k = blockDim.x / 2; k; k >>= 1) {
        if ((int)threadIdx.x < k) red[threadIdx.x] += red[threadIdx.x + k];
        __syncthreads();
    }
    float inv = 1.0f / red[0];
    for (int i = threadIdx.x; i < hd; i += blockDim.x) {
        float o = 0;
        for (int j = 0; j < len; j++) o += sc[j] * inv * __half2float(vc[(size_t)j * kv_dim + (size_t)kvh * hd + i]);
        out[((size_t)t * n_head + h) * hd + i] = o;
    }
}

__global__ void k_add(float *x, const float *y, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] += y[i];
}
__global__ void k_swiglu(float *g, const float *u, int n)
{
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) g[i] = g[i] / (1.0f + expf(-g[i])) * u[i];
}

static unsigned cdiv(int64_t a, int64_t b) { return (unsigned)((a + b - 1) / b); }

extern "C" uint64_t llmc_bytes(const llmc_dims *d)
{
    uint64_t B = (uint64_t)d->max_batch, E = d->n_embd, F = d->n_ff, Q = (uint64_t)d->n_head * d->head_dim,
             KV = (uint64_t)d->n_head_kv * d->head_dim, maxn = E > F ? E : F;
    if (Q > maxn) maxn = Q;
    uint64_t actrow = act_row_bytes(2, (int64_t)maxn);
    uint64_t floats = B * (2 * E + 2 * Q + 2 * KV + 2 * F + (uint64_t)d->n_vocab) + B * d->n_head * (uint64_t)d->n_ctx + 64;
    uint64_t kv = 2 * (uint64_t)d->n_layer * d->n_ctx * KV * 2;
    return floats * 4 + B * actrow + kv + 16 * 256;
}

extern "C" int llmc_create(const llmc_dims *d, void *stream, llmc **out)
{
    *out = NULL;
    llmc *c = (llmc *)calloc(1, sizeof *c);
    if (!c) return iso_fail(ISO_EINTERNAL, "out of memory");
    c->d = *d;
    c->st = (cudaStream_t)stream;
    int rc = gpu_arena_create("activations", llmc_bytes(d), &c->arena);
    if (rc < 0) { free(c); return rc; }
    size_t B = (size_t)d->max_batch, E = d->n_embd, F = d->n_ff, Q = (size_t)d->n_head * d->head_dim,
           KV = (size_t)d->n_head_kv * d->head_dim, maxn = E > F ? E : F;
    if (Q > maxn) maxn = Q;
    c->act_row = act_row_bytes(2, (int64_t)maxn);
    void *p;
#define A(field, bytes) if ((rc = gpu_arena_alloc(c->arena, (bytes), 256, &p)) < 0) goto fail; c->field = (decltype(c->field))p;
    A(x, B * E * 4) A(xb, B * E * 4) A(q, B * Q * 4) A(k, B * KV * 4) A(v, B * KV * 4) A(ao, B * Q * 4)
    A(hg, B * F * 4) A(hu, B * F * 4) A(logits, B * (size_t)d->n_vocab * 4)
    A(att, B * (size_t)d->n_head * (size_t)d->n_ctx * 4) A(freqs, 64 * 4)
    A(act, B * c->act_row)
    A(kc, (size_t)d->n_layer * d->n_ctx * KV * 2) A(vc, (size_t)d->n_layer * d->n_ctx * KV * 2)
#undef A
    if (d->rope_freqs_host) {
        if (d->n_rot / 2 > 64) { rc = iso_fail(ISO_EDATA, "rope_freqs longer than 64"); goto fail; }
        if (cudaMemcpy(c->freqs, d->rope_freqs_host, (size_t)(d->n_rot / 2) * 4, cudaMemcpyHostToDevice) != cudaSuccess) {
            rc = iso_fail(ISO_EINTERNAL, "cuda: cannot upload rope_freqs");
            goto fail;
        }
    } else {
        c->freqs = NULL;
    }
    *out = c;
    return 0;
fail:
    gpu_arena_free(&c->arena);
    free(c);
    return rc;
}

extern "C" void llmc_set_stream(llmc *c, void *stream) { c->st = (cudaStream_t)stream; }

extern "C" int llmc_input(llmc *c, const float *x, int nt)
{
    CK(cudaMemcpyAsync(c->x, x, (size_t)nt * c->d.n_embd * 4, cudaMemcpyHostToDevice, c->st));
    return 0;
}

// quantise nt rows of n floats for weights of type t, then y = W act (+ bias)
static int matmul(llmc *c, const llmc_w *w, const float *x, int nt, int64_t n, float *y, int ys, const llmc_w *bias)
{
    if (c->d.f32_act) {
        int be = block_elems(w->type), bb = block_bytes(w->type);
        k_matmul_f32<<<cdiv(w->ne1, 8), 256, 0, c->st>>>(w->type, (const uint8_t *)w->dev, w->ne1, (int)(n / be), be, bb, x,
                                                         (int)n, nt, y, ys, bias && bias->dev ? (const float *)bias->dev : NULL);
        CK(cudaGetLastError());
        return 0;
    }
    int kind = act_kind(w->type);
    size_t row = act_row_bytes(kind, n);
    if (kind == 0) {
        int nblk = (int)(n / QK);
        dim3 grid(cdiv((int64_t)nblk, 8), nt);
        k_act_q8a<<<grid, 256, 0, c->st>>>(x, (q8a *)c->act, (int)n, nblk);
    } else if (kind == 1) {
        dim3 grid((unsigned)(n / QK_K), nt);
        k_act_q8k<<<grid, QK_K, 0, c->st>>>(x, (q8k *)c->act, (int)n);
    } else {
        CK(cudaMemcpyAsync(c->act, x, (size_t)nt * n * 4, cudaMemcpyDeviceToDevice, c->st));
    }
    int be = block_elems(w->type), bb = block_bytes(w->type);
    k_matmul<<<cdiv(w->ne1, 8), 256, 0, c->st>>>(w->type, (const uint8_t *)w->dev, w->ne1, (int)(n / be), bb, c->act,
                                                  kind == 2 ? (size_t)n * 4 : row, nt, y, ys,
                                                  bias && bias->dev ? (const float *)bias->dev : NULL);
    CK(cudaGetLastError());
    return 0;
}

extern "C" int llmc_forward_layer(llmc *c, int l, const llmc_layer *L, int nt, int pos)
{
    const llmc_dims *d = &c->d;
    int E = d->n_embd, Q = d->n_head * d->head_dim, KV = d->n_head_kv * d->head_dim, rc;
    k_rmsnorm<<<nt, 256, 0, c->st>>>(c->xb, c->x, (const float *)L->attn_norm.dev, E, d->rms_eps);
    if ((rc = matmul(c, &L->wq, c->xb, nt, E, c->q, Q, &L->bq)) < 0 ||
        (rc = matmul(c, &L->wk, c->xb, nt, E, c->k, KV, &L->bk)) < 0 ||
        (rc = matmul(c, &L->wv, c->xb, nt, E, c->v, KV, &L->bv)) < 0)
        return rc;
    int pairs = nt * (d->n_head + d->n_head_kv) * (d->n_rot / 2);
    k_rope<<<cdiv(pairs, 256), 256, 0, c->st>>>(c->q, c->k, nt, pos, d->n_head, d->n_head_kv, d->head_dim, d->n_rot,
                                               d->rope_base, d->rope_neox, c->freqs);
    size_t off = ((size_t)l * d->n_ctx + (size_t)pos) * KV;
    k_store_kv<<<cdiv(nt * KV, 256), 256, 0, c->st>>>(c->kc, c->vc, c->k, c->v, nt * KV, off);
    dim3 ag(d->n_head, nt);
    size_t lo = (size_t)l * d->n_ctx * KV;
    k_attention<<<ag, 256, 0, c->st>>>(c->ao, c->q, c->kc + lo, c->vc + lo, c->att, pos, d->n_head, d->n_head_kv,
                                       d->head_dim, KV, d->n_ctx);
    if ((rc = matmul(c, &L->wo, c->ao, nt, Q, c->xb, E, NULL)) < 0) return rc;
    k_add<<<cdiv(nt * E, 256), 256, 0, c->st>>>(c->x, c->xb, nt * E);
    k_rmsnorm<<<nt, 256, 0, c->st>>>(c->xb, c->x, (const float *)L->ffn_norm.dev, E, d->rms_eps);
    if ((rc = matmul(c, &L->wg, c->xb, nt, E, c->hg, d->n_ff, NULL)) < 0 ||
        (rc = matmul(c, &L->wu, c->xb, nt, E, c->hu, d->n_ff, NULL)) < 0)
        return rc;
    k_swiglu<<<cdiv(nt * d->n_ff, 256), 256, 0, c->st>>>(c->hg, c->hu, nt * d->n_ff);
    if ((rc = matmul(c, &L->wd, c->hg, nt, d->n_ff, c->xb, E, NULL)) < 0) return rc;
    k_add<<<cdiv(nt * E, 256), 256, 0, c->st>>>(c->x, c->xb, nt * E);
    CK(cudaGetLastError());
    return 0;
}

extern "C" int llmc_output(llmc *c, const llmc_w *norm, const llmc_w *out, int nt, int first, float *logits)
{
    const llmc_dims *d = &c->d;
    int no = nt - first, rc;
    if (no <= 0) return 0;
    k_rmsnorm<<<no, 256, 0, c->st>>>(c->xb, c->x + (size_t)first * d->n_embd, (const float *)norm->dev, d->n_embd, d->rms_eps);
    if ((rc = matmul(c, out, c->xb, no, d->n_embd, c->logits, d->n_vocab, NULL)) < 0) return rc;
    CK(cudaMemcpyAsync(logits, c->logits, (size_t)no * d->n_vocab * 4, cudaMemcpyDeviceToHost, c->st));
    CK(cudaStreamSynchronize(c->st));
    return 0;
}

extern "C" void llmc_free(llmc **cp)
{
    if (!cp || !*cp) return;
    gpu_arena_free(&(*cp)->arena);
    free(*cp);
    *cp = NULL;
}
