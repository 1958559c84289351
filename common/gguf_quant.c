/* gguf_quant.c — ggml block formats to float32 (see gguf_quant.h) */
#include "gguf_quant.h"

#include <string.h>

#include "weights.h"

static float h2f(const uint8_t *p) { return wt_f16_to_f32((uint16_t)(p[0] | p[1] << 8)); }
static uint32_t u32le(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

int gguf_dequant_has(enum ggml_type t)
{
    switch (t) {
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: case GGML_TYPE_Q8_0:
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: case GGML_TYPE_Q6_K: return 1;
    default: return 0;
    }
}

int gguf_dequant_block(enum ggml_type t, const uint8_t *p, float *y)
{
    switch (t) {
    case GGML_TYPE_Q4_0: {
        float d = h2f(p);
        for (int j = 0; j < 16; j++) { y[j] = d * ((p[2 + j] & 0xF) - 8); y[j + 16] = d * ((p[2 + j] >> 4) - 8); }
        return 0;
    }
    case GGML_TYPE_Q4_1: {
        float d = h2f(p), m = h2f(p + 2);
        for (int j = 0; j < 16; j++) { y[j] = d * (p[4 + j] & 0xF) + m; y[j + 16] = d * (p[4 + j] >> 4) + m; }
        return 0;
    }
    case GGML_TYPE_Q5_0: case GGML_TYPE_Q5_1: {
        int one = t == GGML_TYPE_Q5_1;
        float d = h2f(p), m = one ? h2f(p + 2) : 0.0f;
        const uint8_t *h = p + (one ? 4 : 2), *qs = h + 4;
        uint32_t qh = u32le(h);
        for (int j = 0; j < 16; j++) {
            int lo = (qs[j] & 0xF) | (int)((qh >> j) & 1) << 4, hi = (qs[j] >> 4) | (int)((qh >> (j + 16)) & 1) << 4;
            y[j] = one ? d * lo + m : d * (lo - 16);
            y[j + 16] = one ? d * hi + m : d * (hi - 16);
        }
        return 0;
    }
    case GGML_TYPE_Q8_0: {
        float d = h2f(p);
        for (int j = 0; j < 32; j++) y[j] = d * (int8_t)p[2 + j];
        return 0;
    }
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: {
        float d = h2f(p), dmin = h2f(p + 2);
        const uint8_t *sc = p + 4, *qh = p + 16, *qs = t == GGML_TYPE_Q5_K ? p + 48 : p + 16;
        for (int c = 0; c < 4; c++) {
            int s0, m0, s1, m1;
            gguf_k_scale_min(2 * c, sc, &s0, &m0);
            gguf_k_scale_min(2 * c + 1, sc, &s1, &m1);
            for (int l = 0; l < 32; l++) {
                int lo = qs[32 * c + l] & 0xF, hi = qs[32 * c + l] >> 4;
                if (t == GGML_TYPE_Q5_K) {
                    lo |= ((qh[l] >> (2 * c)) & 1) << 4;
                    hi |= ((qh[l] >> (2 * c + 1)) & 1) << 4;
                }
                y[64 * c + l] = d * s0 * lo - dmin * m0;
                y[64 * c + 32 + l] = d * s1 * hi - dmin * m1;
            }
        }
        return 0;
    }
    case GGML_TYPE_Q6_K: {
        const uint8_t *ql = p, *qh = p + 128;
        const int8_t *sc = (const int8_t *)(p + 192);
        float d = h2f(p + 208);
        for (int h = 0; h < 2; h++)
            for (int l = 0; l < 32; l++) {
                int q1 = ((ql[64 * h + l] & 0xF) | ((qh[32 * h + l] >> 0) & 3) << 4) - 32;
                int q2 = ((ql[64 * h + l + 32] & 0xF) | ((qh[32 * h + l] >> 2) & 3) << 4) - 32;
                int q3 = ((ql[64 * h + l] >> 4) | ((qh[32 * h + l] >> 4) & 3) << 4) - 32;
                int q4 = ((ql[64 * h + l + 32] >> 4) | ((qh[32 * h + l] >> 6) & 3) << 4) - 32;
                int is = 8 * h + l / 16;
                y[128 * h + l] = d * sc[is] * q1;
                y[128 * h + l + 32] = d * sc[is + 2] * q2;
                y[128 * h + l + 64] = d * sc[is + 4] * q3;
                y[128 * h + l + 96] = d * sc[is + 6] * q4;
            }
        return 0;
    }
    default: return -1;
    }
}

void gguf_dequant_row(enum ggml_type t, const void *src, float *y, int64_t n)
{
    const uint8_t *p = src;
    switch (t) {
    case GGML_TYPE_F32: memcpy(y, src, (size_t)n * 4); return;
    case GGML_TYPE_F16: for (int64_t i = 0; i < n; i++) y[i] = h2f(p + 2 * i); return;
    case GGML_TYPE_BF16: for (int64_t i = 0; i < n; i++) y[i] = wt_bf16_to_f32((uint16_t)(p[2 * i] | p[2 * i + 1] << 8)); return;
    default: break;
    }
    size_t be = ggml_type_block_elems(t), bb = ggml_type_block_bytes(t);
    if (!be) return;
    for (int64_t b = 0; b < n / (int64_t)be; b++, p += bb, y += be)
        if (gguf_dequant_block(t, p, y)) memset(y, 0, be * sizeof *y);
}
