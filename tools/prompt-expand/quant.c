/* quant.c — scalar dequantisation, activation quantisation and dot products
 * for the ggml block formats, plus the run-time choice of SIMD kernels.
 * Block layouts (ggml-common.h; the K-quant scale packing as
 * ggml-quants.c's dequantize_row_q4_K/q5_K/q6_K read it):
 *   Q4_0  f16 d; u8 qs[16]                  x = d * (nibble - 8)
 *   Q4_1  f16 d, m; u8 qs[16]               x = d * nibble + m
 *   Q5_0  f16 d; u32 qh; u8 qs[16]          x = d * ((nibble | bit << 4) - 16)
 *   Q5_1  f16 d, m; u32 qh; u8 qs[16]       x = d * (nibble | bit << 4) + m
 *   Q8_0  f16 d; i8 qs[32]                  x = d * q
 * with element j < 16 in the low nibble of qs[j] (bit j of qh) and element
 * j + 16 in its high nibble (bit j + 16 of qh).
 *   Q4_K  f16 d, dmin; u8 scales[12]; u8 qs[128]   8 sub-blocks of 32, 6-bit scale/min
 *   Q5_K  f16 d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
 *   Q6_K  u8 ql[128]; u8 qh[64]; i8 scales[16]; f16 d                 16 sub-blocks of 16 */
#include "quant.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "gguf_quant.h"
#include "weights.h"

/* SIMD kernels (quant_avx2.c); NULL when not compiled in */
float quant_dot_avx2(enum ggml_type t, const void *w, const void *xa, int64_t n);
int quant_avx2_has(enum ggml_type t);
void quant_act_q8a_avx2(const float *x, struct quant_q8a *y, int64_t n);
void quant_act_q8k_avx2(const float *x, struct quant_q8k *y, int64_t n);
void quant_axpy_f16_avx2(float a, const uint16_t *v, float *y, int64_t n);
void quant_f32_to_f16_avx2(const float *x, uint16_t *h, int64_t n);
int quant_attn_scores_f16_avx2(const uint16_t *k, size_t stride, int len, const float *q, int hd, float scale, float *sc);
int quant_attn_wsum_f16_avx2(const float *p, float mul, const uint16_t *v, size_t stride, int len, int hd, float *out);
int quant_rows_avx2(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa, int64_t n, float *y);
int quant_rows4_avx2(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa,
                     size_t xa_stride, int64_t n, float *y, size_t y_stride);

/* AVX-512 VNNI kernels (quant_avx512.c) for the 32-element formats */
int quant_avx512_has(enum ggml_type t);
float quant_dot_avx512(enum ggml_type t, const void *w, const void *xa, int64_t n);
int quant_rows_avx512(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa, int64_t n, float *y);
int quant_rows4_avx512(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa,
                       size_t xa_stride, int64_t n, float *y, size_t y_stride);
int quant_x8_rows_avx512(enum ggml_type t, const void *w8, int64_t n, int64_t g0, int64_t g1, const void *xa,
                         size_t xa_stride, int nt, float *y, size_t y_stride);

static int use_avx2 = -1, use_avx512 = 0, use_x8_avx512 = 0;

void quant_init(void)
{
    if (use_avx2 >= 0) return;
    const char *e = getenv("ISOPIPE_NO_SIMD");
    int no = e && *e && strcmp(e, "0") != 0;
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    use_avx2 = !no && __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
    const char *e5 = getenv("ISOPIPE_NO_AVX512");
    int no5 = e5 && *e5 && strcmp(e5, "0") != 0;
    use_avx512 = use_avx2 && !no5 && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                 __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
    /* the packed (x8) AVX-512 kernels: opt-in until measured against the
     * AVX2 ones on an AVX-512 machine (docs/prompt-expand.md) */
    const char *e8 = getenv("ISOPIPE_X8_AVX512");
    use_x8_avx512 = use_avx512 && e8 && *e8 && strcmp(e8, "0") != 0;
#else
    use_avx2 = 0;
#endif
}

int quant_simd(void) { quant_init(); return use_avx2 > 0 ? 1 + use_avx512 : 0; }

/* exact for every half, so the common conversion serves */
float quant_f16_to_f32(uint16_t h) { return wt_f16_to_f32(h); }

uint16_t quant_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint32_t sign = (u >> 16) & 0x8000;
    int32_t exp = (int32_t)((u >> 23) & 0xff);
    uint32_t man = u & 0x7fffff;
    if (exp == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 | man >> 13 : 0));
    int32_t e = exp - 127 + 15;
    if (e >= 0x1f) return (uint16_t)(sign | 0x7c00);    /* overflow: inf */
    if (e <= 0) {                                      /* subnormal half or zero */
        if (e < -10) return (uint16_t)sign;
        man |= 0x800000;
        int shift = 14 - e;
        uint32_t half = man >> shift, rest = man & ((1u << shift) - 1), mid = 1u << (shift - 1);
        if (rest > mid || (rest == mid && (half & 1))) half++;
        return (uint16_t)(sign | half);
    }
    uint32_t half = (uint32_t)e << 10 | man >> 13, rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (half & 1))) half++;   /* may carry into the exponent: correct */
    return (uint16_t)(sign | half);
}

float quant_bf16_to_f32(uint16_t h) { return wt_bf16_to_f32(h); }

static float h2f(const uint8_t *p) { return quant_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }
static uint32_t u32le(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

int quant_supported(enum ggml_type t)
{
    switch (t) {
    case GGML_TYPE_F32: case GGML_TYPE_F16: case GGML_TYPE_BF16: case GGML_TYPE_Q8_0:
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1:
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K:
        return 1;
    default:
        return 0;
    }
}

size_t quant_row_bytes(enum ggml_type t, int64_t n)
{
    size_t be = ggml_type_block_elems(t);
    return be ? (size_t)n / be * ggml_type_block_bytes(t) : 0;
}

enum ggml_type quant_act_type(enum ggml_type t)
{
    switch (t) {
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: case GGML_TYPE_Q8_0:
        return GGML_TYPE_Q8_1;
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K:
        return GGML_TYPE_Q8_K;
    default:
        return GGML_TYPE_F32;
    }
}

size_t quant_act_bytes(enum ggml_type t, int64_t n)
{
    switch (quant_act_type(t)) {
    case GGML_TYPE_Q8_1: return (size_t)n / QK * sizeof(struct quant_q8a);
    case GGML_TYPE_Q8_K: return (size_t)n / QK_K * sizeof(struct quant_q8k);
    default: return (size_t)n * sizeof(float);
    }
}

/* ggml quantize_row_q8_1 as its AVX2 code does it: d = max|x| / 127,
 * q = x * (127 / max|x|) rounded to nearest, ties to even */
static void act_q8a(const float *x, struct quant_q8a *y, int64_t n)
{
    for (int64_t b = 0; b < n / QK; b++, x += QK, y++) {
        float amax = 0;
        for (int j = 0; j < QK; j++) amax = fmaxf(amax, fabsf(x[j]));
        float d = amax / 127.0f, id = amax != 0.0f ? 127.0f / amax : 0.0f;
        int sum = 0;
        for (int j = 0; j < QK; j++) {
            int q = (int)nearbyintf(x[j] * id);
            y->qs[j] = (int8_t)q;
            sum += q;
        }
        y->d = d;
        y->s = d * (float)sum;
    }
}

/* ggml quantize_row_q8_K: scale from the signed value of largest magnitude
 * so that it maps to -128 exactly; q = nearest_int(x * -128 / max) */
static void act_q8k(const float *x, struct quant_q8k *y, int64_t n)
{
    for (int64_t b = 0; b < n / QK_K; b++, x += QK_K, y++) {
        float amax = 0, max = 0;
        for (int j = 0; j < QK_K; j++) {
            float a = fabsf(x[j]);
            if (a > amax) { amax = a; max = x[j]; }
        }
        if (amax == 0) {
            memset(y, 0, sizeof *y);
            continue;
        }
        float iscale = -128.0f / max;
        for (int j = 0; j < QK_K; j++) {
            int v = (int)lrintf(iscale * x[j]);
            y->qs[j] = (int8_t)(v > 127 ? 127 : v);
        }
        for (int g = 0; g < QK_K / 16; g++) {
            int s = 0;
            for (int j = 0; j < 16; j++) s += y->qs[g * 16 + j];
            y->bsums[g] = (int16_t)s;
        }
        y->d = 1.0f / iscale;
    }
}

void quant_act(enum ggml_type t, const float *x, void *dst, int64_t n)
{
    quant_init();
    enum ggml_type at = quant_act_type(t);
    if (use_avx2 > 0 && at == GGML_TYPE_Q8_1) quant_act_q8a_avx2(x, dst, n);
    else if (use_avx2 > 0 && at == GGML_TYPE_Q8_K) quant_act_q8k_avx2(x, dst, n);
    else quant_act_scalar(t, x, dst, n);
}

void quant_act_scalar(enum ggml_type t, const float *x, void *dst, int64_t n)
{
    switch (quant_act_type(t)) {
    case GGML_TYPE_Q8_1: act_q8a(x, dst, n); break;
    case GGML_TYPE_Q8_K: act_q8k(x, dst, n); break;
    default: memcpy(dst, x, (size_t)n * sizeof *x); break;
    }
}

void quant_dequant_row(enum ggml_type t, const void *src, float *y, int64_t n) { gguf_dequant_row(t, src, y, n); }

/* the 32 integer weights of a Q4/Q5/Q8 block, without d and m */
static void ints32(enum ggml_type t, const uint8_t *p, int *q)
{
    switch (t) {
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: {
        const uint8_t *qs = p + (t == GGML_TYPE_Q4_0 ? 2 : 4);
        int off = t == GGML_TYPE_Q4_0 ? 8 : 0;
        for (int j = 0; j < 16; j++) { q[j] = (qs[j] & 0xF) - off; q[j + 16] = (qs[j] >> 4) - off; }
        break;
    }
    case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: {
        int o = t == GGML_TYPE_Q5_0 ? 2 : 4, off = t == GGML_TYPE_Q5_0 ? 16 : 0;
        uint32_t qh = u32le(p + o);
        const uint8_t *qs = p + o + 4;
        for (int j = 0; j < 16; j++) {
            q[j] = ((qs[j] & 0xF) | ((qh >> j) & 1) << 4) - off;
            q[j + 16] = ((qs[j] >> 4) | ((qh >> (j + 16)) & 1) << 4) - off;
        }
        break;
    }
    default: /* Q8_0 */
        for (int j = 0; j < 32; j++) q[j] = (int8_t)p[2 + j];
        break;
    }
}

float quant_dot_scalar(enum ggml_type t, const void *w, const void *xa, int64_t n)
{
    const uint8_t *p = w;
    size_t bb = ggml_type_block_bytes(t);
    float sum = 0;
    switch (t) {
    case GGML_TYPE_F32: { const float *a = w, *x = xa; for (int64_t i = 0; i < n; i++) sum += a[i] * x[i]; return sum; }
    case GGML_TYPE_F16: { const float *x = xa; for (int64_t i = 0; i < n; i++) sum += h2f(p + 2 * i) * x[i]; return sum; }
    case GGML_TYPE_BF16: { const float *x = xa; for (int64_t i = 0; i < n; i++) sum += quant_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)) * x[i]; return sum; }
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: case GGML_TYPE_Q8_0: {
        const struct quant_q8a *x = xa;
        int has_m = t == GGML_TYPE_Q4_1 || t == GGML_TYPE_Q5_1;
        for (int64_t b = 0; b < n / QK; b++, p += bb, x++) {
            int q[32], acc = 0;
            ints32(t, p, q);
            for (int j = 0; j < 32; j++) acc += q[j] * x->qs[j];
            sum += h2f(p) * x->d * (float)acc;
            if (has_m) sum += h2f(p + 2) * x->s;   /* the min times the sum of the activations */
        }
        return sum;
    }
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: {
        const struct quant_q8k *x = xa;
        for (int64_t b = 0; b < n / QK_K; b++, p += bb, x++) {
            const uint8_t *sc = p + 4, *qh = p + 16, *qs = t == GGML_TYPE_Q5_K ? p + 48 : p + 16;
            int sumi = 0, summ = 0;
            for (int c = 0; c < 4; c++) {
                int s0, m0, s1, m1;
                gguf_k_scale_min(2 * c, sc, &s0, &m0);
                gguf_k_scale_min(2 * c + 1, sc, &s1, &m1);
                int a0 = 0, a1 = 0;
                for (int l = 0; l < 32; l++) {
                    int lo = qs[32 * c + l] & 0xF, hi = qs[32 * c + l] >> 4;
                    if (t == GGML_TYPE_Q5_K) {
                        lo |= ((qh[l] >> (2 * c)) & 1) << 4;
                        hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
                    }
                    a0 += lo * x->qs[64 * c + l];
                    a1 += hi * x->qs[64 * c + 32 + l];
                }
                sumi += s0 * a0 + s1 * a1;
                summ += m0 * (x->bsums[4 * c] + x->bsums[4 * c + 1]) + m1 * (x->bsums[4 * c + 2] + x->bsums[4 * c + 3]);
            }
            sum += x->d * (h2f(p) * (float)sumi - h2f(p + 2) * (float)summ);
        }
        return sum;
    }
    case GGML_TYPE_Q6_K: {
        const struct quant_q8k *x = xa;
        for (int64_t b = 0; b < n / QK_K; b++, p += bb, x++) {
            const uint8_t *ql = p, *qh = p + 128;
            const int8_t *sc = (const int8_t *)(p + 192);
            int acc[16] = {0};
            for (int h = 0; h < 2; h++)
                for (int l = 0; l < 32; l++) {
                    int q1 = ((ql[64 * h + l] & 0xF) | ((qh[32 * h + l] >> 0) & 3) << 4) - 32;
                    int q2 = ((ql[64 * h + l + 32] & 0xF) | ((qh[32 * h + l] >> 2) & 3) << 4) - 32;
                    int q3 = ((ql[64 * h + l] >> 4) | ((qh[32 * h + l] >> 4) & 3) << 4) - 32;
                    int q4 = ((ql[64 * h + l + 32] >> 4) | ((qh[32 * h + l] >> 6) & 3) << 4) - 32;
                    int e = 128 * h + l;
                    acc[e / 16] += q1 * x->qs[e];
                    acc[(e + 32) / 16] += q2 * x->qs[e + 32];
                    acc[(e + 64) / 16] += q3 * x->qs[e + 64];
                    acc[(e + 96) / 16] += q4 * x->qs[e + 96];
                }
            int sumi = 0;
            for (int g = 0; g < 16; g++) sumi += sc[g] * acc[g];
            sum += x->d * h2f(p + 208) * (float)sumi;
        }
        return sum;
    }
    default:
        return 0;
    }
}

float quant_dot(enum ggml_type t, const void *w, const void *xa, int64_t n)
{
    if (use_avx512 && quant_avx512_has(t)) return quant_dot_avx512(t, w, xa, n);
    if (use_avx2 > 0 && quant_avx2_has(t)) return quant_dot_avx2(t, w, xa, n);
    return quant_dot_scalar(t, w, xa, n);
}

void quant_rows(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa, int64_t n, float *y)
{
    if (use_avx512 && quant_avx512_has(t) && quant_rows_avx512(t, w, row_bytes, r0, r1, xa, n, y)) return;
    if (use_avx2 > 0 && quant_rows_avx2(t, w, row_bytes, r0, r1, xa, n, y)) return;
    for (int64_t r = r0; r < r1; r++) y[r] = quant_dot(t, (const uint8_t *)w + (size_t)r * row_bytes, xa, n);
}

void quant_rows4(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa, size_t xa_stride,
                 int64_t n, float *y, size_t y_stride)
{
    if (use_avx512 && quant_avx512_has(t) && quant_rows4_avx512(t, w, row_bytes, r0, r1, xa, xa_stride, n, y, y_stride)) return;
    if (use_avx2 > 0 && quant_rows4_avx2(t, w, row_bytes, r0, r1, xa, xa_stride, n, y, y_stride)) return;
    for (int k = 0; k < 4; k++) quant_rows(t, w, row_bytes, r0, r1, (const uint8_t *)xa + (size_t)k * xa_stride, n, y + (size_t)k * y_stride);
}

float quant_dot_f16(const uint16_t *h, const float *x, int64_t n)
{
    return quant_dot(GGML_TYPE_F16, h, x, n);
}

void quant_axpy_f16(float a, const uint16_t *v, float *y, int64_t n)
{
    if (use_avx2 > 0) { quant_axpy_f16_avx2(a, v, y, n); return; }
    for (int64_t i = 0; i < n; i++) y[i] += a * quant_f16_to_f32(v[i]);
}

void quant_attn_scores_f16(const uint16_t *k, size_t stride, int len, const float *q, int hd, float scale, float *sc)
{
    if (use_avx2 > 0 && quant_attn_scores_f16_avx2(k, stride, len, q, hd, scale, sc)) return;
    for (int j = 0; j < len; j++) sc[j] = quant_dot_f16(k + (size_t)j * stride, q, hd) * scale;
}

void quant_attn_wsum_f16(const float *p, float mul, const uint16_t *v, size_t stride, int len, int hd, float *out)
{
    if (use_avx2 > 0 && quant_attn_wsum_f16_avx2(p, mul, v, stride, len, hd, out)) return;
    memset(out, 0, (size_t)hd * sizeof *out);
    for (int j = 0; j < len; j++) quant_axpy_f16(p[j] * mul, v + (size_t)j * stride, out, hd);
}

void quant_f32_to_f16_row(const float *x, uint16_t *h, int64_t n)
{
    if (use_avx2 > 0) { quant_f32_to_f16_avx2(x, h, n); return; }
    for (int64_t i = 0; i < n; i++) h[i] = quant_f32_to_f16(x[i]);
}

float quant_dot_f32act(enum ggml_type t, const void *w, const float *x, int64_t n)
{
    if (t == GGML_TYPE_F32 || t == GGML_TYPE_F16 || t == GGML_TYPE_BF16) return quant_dot(t, w, x, n);
    float buf[QK_K];
    const uint8_t *p = w;
    int64_t be = (int64_t)ggml_type_block_elems(t);
    size_t bb = ggml_type_block_bytes(t);
    double sum = 0;
    for (int64_t b = 0; b < n / be; b++, p += bb, x += be) {
        quant_dequant_row(t, p, buf, be);
        float s = 0;
        for (int64_t i = 0; i < be; i++) s += buf[i] * x[i];
        sum += s;
    }
    return (float)sum;
}

/* ---- the x8 layout (quant.h) ---- */
int quant_x8_rows_avx2(enum ggml_type t, const void *w8, int64_t n, int64_t g0, int64_t g1, const void *xa,
                       size_t xa_stride, int nt, float *y, size_t y_stride);

/* 32-element types, per block of 8 rows: bytes before the quant vectors, the
 * number of vectors, where the quants start in an original block */
static int x8_nvec(enum ggml_type t) { return t == GGML_TYPE_Q8_0 ? 8 : 4; }
static int x8_qs_off(enum ggml_type t) { return t == GGML_TYPE_Q4_0 || t == GGML_TYPE_Q8_0 ? 2 : t == GGML_TYPE_Q4_1 ? 4 : 6; }
/* Q4_K, per super-block of 8 rows: d[8], dmin[8] (f16), the 8 sub-block scales
 * of each row unpacked to bytes sc[sub-block][row], the mins mn[sub-block][row],
 * then 4 chunks x 8 vectors of 32 bytes (lane r = row r's qs[32c + 4v ..]):
 * 1184 bytes.
 * Q6_K, per super-block of 8 rows (the same 1680 bytes as the 8 rows' blocks):
 * d[8] (f16); the sub-block scales sc[sub-block][row] (int8) at 16, in pairs
 * of sub-blocks 2j, 2j + 1 as 16 bytes; then per sub-block g (16 elements)
 * three vectors A, B, C of 32 bytes at 144 + 96 g whose lane r holds, in
 * byte k of A/B/C, element 4v + k (v = 0/1/2) of row r's sub-block in bits
 * 0-5 and, in bits 6-7, bits 0-1 / 2-3 / 4-5 of element 12 + k: three
 * vectors are one mask each, the fourth three pieces put together
 * (quant_x8_block_size in quant.h: each packed block's bytes) */

/* elements per packed block */
static int64_t x8_block_elems(enum ggml_type t) { return t == GGML_TYPE_Q4_K || t == GGML_TYPE_Q6_K ? QK_K : QK; }

/* bytes of one group of 8 rows of n columns */
static size_t x8_group_bytes(enum ggml_type t, int64_t n) { return (size_t)(n / x8_block_elems(t)) * quant_x8_block_size(t); }

size_t quant_x8_bytes(enum ggml_type t, int64_t n, int64_t rows) { return x8_group_bytes(t, n) * (size_t)(rows / 8); }

int quant_x8_usable(enum ggml_type t)
{
    quant_init();
    return use_avx2 > 0 && (t == GGML_TYPE_Q4_0 || t == GGML_TYPE_Q4_1 || t == GGML_TYPE_Q5_0 || t == GGML_TYPE_Q8_0 ||
                            t == GGML_TYPE_Q4_K || t == GGML_TYPE_Q6_K);
}

/* Q5_0's 32 fifth bits (bit j = element j) reordered so that byte k holds,
 * in bit v, that of element 4v+k (byte k of the low nibbles of vector v) and
 * in bit 4+v that of element 16+4v+k (its high nibbles): the kernel takes
 * vector v's with one 32-bit shift (left by 4-v, right by v) and one mask of
 * bit 4 per byte */
static uint32_t x8_qh_pack(uint32_t qh)
{
    uint32_t o = 0;
    for (int v = 0; v < 4; v++)
        for (int k = 0; k < 4; k++) {
            o |= ((qh >> (4 * v + k)) & 1u) << (8 * k + v);
            o |= ((qh >> (16 + 4 * v + k)) & 1u) << (8 * k + 4 + v);
        }
    return o;
}
static uint32_t x8_qh_unpack(uint32_t o)
{
    uint32_t qh = 0;
    for (int v = 0; v < 4; v++)
        for (int k = 0; k < 4; k++) {
            qh |= ((o >> (8 * k + v)) & 1u) << (4 * v + k);
            qh |= ((o >> (8 * k + 4 + v)) & 1u) << (16 + 4 * v + k);
        }
    return qh;
}

/* Q4_K's 12 bytes of 6-bit scales and mins from 8 of each (the inverse of gguf_k_scale_min) */
static void q4k_scales_pack(const uint8_t *sc, const uint8_t *mn, uint8_t *o)
{
    for (int j = 0; j < 4; j++) {
        o[j] = (uint8_t)((sc[j] & 63) | (sc[j + 4] >> 4) << 6);
        o[j + 4] = (uint8_t)((mn[j] & 63) | (mn[j + 4] >> 4) << 6);
        o[j + 8] = (uint8_t)((sc[j + 4] & 15) | (mn[j + 4] & 15) << 4);
    }
}

/* a Q6_K block's 256 quants (0..63, element order) from ql/qh, and back;
 * four bytes at a time (each byte's bits stay within the byte) */
static void wr32(uint8_t *p, uint32_t v) { memcpy(p, &v, 4); }
static uint32_t rd32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static void q6k_unpack(const uint8_t *p, uint8_t *q)
{
    const uint8_t *ql = p, *qh = p + 128;
    const uint32_t m4 = 0x0F0F0F0Fu, m2 = 0x03030303u;
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l += 4) {
            int e = 128 * h + l;
            uint32_t a = rd32(ql + 64 * h + l), b = rd32(ql + 64 * h + l + 32), c = rd32(qh + 32 * h + l);
            wr32(q + e, (a & m4) | (c & m2) << 4);
            wr32(q + e + 32, (b & m4) | ((c >> 2) & m2) << 4);
            wr32(q + e + 64, ((a >> 4) & m4) | ((c >> 4) & m2) << 4);
            wr32(q + e + 96, ((b >> 4) & m4) | ((c >> 6) & m2) << 4);
        }
}
static void q6k_pack(const uint8_t *q, uint8_t *p)
{
    uint8_t *ql = p, *qh = p + 128;
    for (int h = 0; h < 2; h++)
        for (int l = 0; l < 32; l++) {
            int e = 128 * h + l;
            ql[64 * h + l] = (uint8_t)((q[e] & 0xF) | (q[e + 64] & 0xF) << 4);
            ql[64 * h + l + 32] = (uint8_t)((q[e + 32] & 0xF) | (q[e + 96] & 0xF) << 4);
            qh[32 * h + l] = (uint8_t)(q[e] >> 4 | (q[e + 32] >> 4) << 2 | (q[e + 64] >> 4) << 4 | (q[e + 96] >> 4) << 6);
        }
}

/* one original block (32-element types) or super-block (Q4_K, Q6_K) of row r (of its group) into o, packed */
static void x8_put(enum ggml_type t, const uint8_t *p, int r, uint8_t *o)
{
    if (t == GGML_TYPE_Q6_K) {
        uint8_t q[QK_K];
        q6k_unpack(p, q);
        memcpy(o + 2 * r, p + 208, 2);
        for (int g = 0; g < 16; g++) {
            o[16 + 8 * g + r] = p[192 + g];   /* pair j = g / 2: bytes 16j .. 16j + 15 */
            uint32_t top = rd32(q + 16 * g + 12);
            for (int v = 0; v < 3; v++)
                wr32(o + 144 + 96 * g + 32 * v + 4 * r, rd32(q + 16 * g + 4 * v) | ((top >> (2 * v)) & 0x03030303u) << 6);
        }
        return;
    }
    if (t == GGML_TYPE_Q4_K) {
        memcpy(o + 2 * r, p, 2);
        memcpy(o + 16 + 2 * r, p + 2, 2);
        for (int j = 0; j < 8; j++) {
            int s, m;
            gguf_k_scale_min(j, p + 4, &s, &m);
            o[32 + 8 * j + r] = (uint8_t)s;
            o[96 + 8 * j + r] = (uint8_t)m;
        }
        for (int v = 0; v < 32; v++) memcpy(o + 160 + 32 * v + 4 * r, p + 16 + 4 * v, 4);
        return;
    }
    int head = (int)quant_x8_head(t), nvec = x8_nvec(t), qo = x8_qs_off(t);
    memcpy(o + 2 * r, p, 2);                                     /* d */
    if (t == GGML_TYPE_Q4_1) memcpy(o + 16 + 2 * r, p + 2, 2);   /* m */
    if (t == GGML_TYPE_Q5_0) {
        uint32_t q = x8_qh_pack(u32le(p + 2));
        for (int i = 0; i < 4; i++) o[16 + 4 * r + i] = (uint8_t)(q >> (8 * i));
    }
    for (int v = 0; v < nvec; v++) memcpy(o + head + 32 * v + 4 * r, p + qo + 4 * v, 4);
}

/* the inverse: row r's original block from a packed one */
static void x8_get(enum ggml_type t, const uint8_t *o, int r, uint8_t *p)
{
    if (t == GGML_TYPE_Q6_K) {
        uint8_t q[QK_K];
        memcpy(p + 208, o + 2 * r, 2);
        for (int g = 0; g < 16; g++) {
            p[192 + g] = o[16 + 8 * g + r];
            uint32_t top = 0;
            for (int v = 0; v < 3; v++) {
                uint32_t b = rd32(o + 144 + 96 * g + 32 * v + 4 * r);
                wr32(q + 16 * g + 4 * v, b & 0x3F3F3F3Fu);
                top |= ((b >> 6) & 0x03030303u) << (2 * v);
            }
            wr32(q + 16 * g + 12, top);
        }
        q6k_pack(q, p);
        return;
    }
    if (t == GGML_TYPE_Q4_K) {
        uint8_t sc[8], mn[8];
        memcpy(p, o + 2 * r, 2);
        memcpy(p + 2, o + 16 + 2 * r, 2);
        for (int j = 0; j < 8; j++) { sc[j] = o[32 + 8 * j + r]; mn[j] = o[96 + 8 * j + r]; }
        q4k_scales_pack(sc, mn, p + 4);
        for (int v = 0; v < 32; v++) memcpy(p + 16 + 4 * v, o + 160 + 32 * v + 4 * r, 4);
        return;
    }
    int head = (int)quant_x8_head(t), nvec = x8_nvec(t), qo = x8_qs_off(t);
    memcpy(p, o + 2 * r, 2);
    if (t == GGML_TYPE_Q4_1) memcpy(p + 2, o + 16 + 2 * r, 2);
    if (t == GGML_TYPE_Q5_0) {
        uint32_t q = x8_qh_unpack(u32le(o + 16 + 4 * r));
        for (int i = 0; i < 4; i++) p[2 + i] = (uint8_t)(q >> (8 * i));
    }
    for (int v = 0; v < nvec; v++) memcpy(p + qo + 4 * v, o + head + 32 * v + 4 * r, 4);
}


void quant_x8_pack(enum ggml_type t, const void *src, int64_t n, int64_t g0, int64_t g1, void *dst)
{
    size_t bb = ggml_type_block_bytes(t), rb = quant_row_bytes(t, n), gb = x8_group_bytes(t, n), xb = quant_x8_block_size(t);
    int64_t nb = n / x8_block_elems(t);
    for (int64_t g = g0; g < g1; g++)
        for (int64_t b = 0; b < nb; b++)
            for (int r = 0; r < 8; r++)
                x8_put(t, (const uint8_t *)src + (size_t)(8 * g + r) * rb + (size_t)b * bb, r,
                       (uint8_t *)dst + (size_t)g * gb + (size_t)b * xb);
}

/* row r of a packed matrix back in its original layout */
static void x8_unpack_row(enum ggml_type t, const void *w8, int64_t n, int64_t r, uint8_t *row)
{
    size_t bb = ggml_type_block_bytes(t), gb = x8_group_bytes(t, n), xb = quant_x8_block_size(t);
    for (int64_t b = 0; b < n / x8_block_elems(t); b++)
        x8_get(t, (const uint8_t *)w8 + (size_t)(r / 8) * gb + (size_t)b * xb, (int)(r % 8), row + (size_t)b * bb);
}

void quant_x8_dequant_row(enum ggml_type t, const void *w8, int64_t n, int64_t r, float *dst)
{
    uint8_t blk[256];
    size_t gb = x8_group_bytes(t, n), xb = quant_x8_block_size(t);
    int64_t be = x8_block_elems(t);
    for (int64_t b = 0; b < n / be; b++) {
        x8_get(t, (const uint8_t *)w8 + (size_t)(r / 8) * gb + (size_t)b * xb, (int)(r % 8), blk);
        quant_dequant_row(t, blk, dst + b * be, be);
    }
}

void quant_x8_rows(enum ggml_type t, const void *w8, int64_t n, int64_t g0, int64_t g1, const void *xa, size_t xa_stride,
                   int nt, float *y, size_t y_stride)
{
    if (quant_x8_usable(t) && use_x8_avx512 && quant_x8_rows_avx512(t, w8, n, g0, g1, xa, xa_stride, nt, y, y_stride)) return;
    if (quant_x8_usable(t) && quant_x8_rows_avx2(t, w8, n, g0, g1, xa, xa_stride, nt, y, y_stride)) return;
    /* no kernel for this CPU (the engine never packs then): row by row in the original layout */
    uint8_t *row = malloc(quant_row_bytes(t, n));
    for (int64_t r = 8 * g0; row && r < 8 * g1; r++) {
        x8_unpack_row(t, w8, n, r, row);
        for (int k = 0; k < nt; k++)
            y[(size_t)k * y_stride + r] = quant_dot_scalar(t, row, (const uint8_t *)xa + (size_t)k * xa_stride, n);
    }
    free(row);
}
