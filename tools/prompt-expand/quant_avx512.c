/* quant_avx512.c — AVX-512 VNNI dot products for the 32-element ggml block
 * formats (Q4_0, Q4_1, Q5_0, Q5_1, Q8_0), beside the AVX2 ones in
 * quant_avx2.c. quant.c calls them only after __builtin_cpu_supports said
 * avx512f, avx512bw, avx512vl and avx512vnni (ISOPIPE_NO_AVX512=1 keeps AVX2).
 * Two blocks per step fill a 512-bit register (bytes 0..31 block b, 32..63
 * block b + 1, element j of a block at byte j: low nibbles first, as the
 * activations). _mm512_dpbusd_epi32 multiplies unsigned weight bytes by
 * signed activation bytes and adds each 4 into an int32 lane, so lanes 0..7
 * hold block b's partial sums and 8..15 block b + 1's. Signed weights are
 * stored offset (q + o, o = 8, 16 or 128 as an unsigned byte), and o times
 * the activations' sum — one more dpbusd with o in every byte — is
 * subtracted: the integer sum of each block is exactly the scalar one.
 * Below them, kernels for the packed (x8) layout of Q4_0, Q4_1, Q5_0, Q4_K
 * and Q6_K with 16 rows per register; quant.c uses those only with
 * ISOPIPE_X8_AVX512=1 (not yet measured against the AVX2 ones on an AVX-512
 * machine). The unit tests also run this file on SIMDe's portable
 * intrinsics, on any CPU (tests/unit/quant_avx512_emu.h). */
#include "quant.h"

#include <string.h>

#if defined(QUANT_AVX512_EMULATED)
/* the unit tests include this file after tests/unit/quant_avx512_emu.h: the
 * intrinsics are SIMDe's portable ones, the functions prefixed emu_ */
#define AVX512
#define QUANT_AVX512_KERNELS 1
#elif defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")))
#define QUANT_AVX512_KERNELS 1
#endif

#ifdef QUANT_AVX512_KERNELS

AVX512 static inline float h2f(const uint8_t *p) { return _cvtsh_ss((unsigned short)(p[0] | p[1] << 8)); }
static inline uint32_t u32le(const uint8_t *p) { return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24; }

/* the nibbles of two blocks (16 bytes each) as 64 bytes in element order:
 * masked and shifted as one 256-bit [a | b], then the 128-bit quarters
 * [a_lo, b_lo, a_hi, b_hi] reordered to [a_lo, a_hi, b_lo, b_hi] */
AVX512 static inline __m512i nibbles64(const uint8_t *q0, const uint8_t *q1)
{
    const __m256i m = _mm256_set1_epi8(0x0F);
    __m256i v = _mm256_loadu2_m128i((const __m128i *)q1, (const __m128i *)q0);
    __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, m)), _mm256_and_si256(_mm256_srli_epi16(v, 4), m), 1);
    return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
}

AVX512 static inline __m512i join(const void *a, const void *b)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)a)),
                              _mm256_loadu_si256((const __m256i *)b), 1);
}

/* the weight bytes of blocks p0, p1 of type t (unsigned, offset by *off) */
AVX512 static inline __attribute__((always_inline)) __m512i pair_weights(enum ggml_type t, const uint8_t *p0, const uint8_t *p1, int *off)
{
    switch (t) {
    case GGML_TYPE_Q4_0: *off = 8; return nibbles64(p0 + 2, p1 + 2);
    case GGML_TYPE_Q4_1: *off = 0; return nibbles64(p0 + 4, p1 + 4);
    case GGML_TYPE_Q5_0: {
        __mmask64 hb = (__mmask64)u32le(p0 + 2) | (__mmask64)u32le(p1 + 2) << 32;
        *off = 16;
        return _mm512_or_si512(nibbles64(p0 + 6, p1 + 6), _mm512_maskz_mov_epi8(hb, _mm512_set1_epi8(16)));
    }
    case GGML_TYPE_Q5_1: {
        __mmask64 hb = (__mmask64)u32le(p0 + 4) | (__mmask64)u32le(p1 + 4) << 32;
        *off = 0;
        return _mm512_or_si512(nibbles64(p0 + 8, p1 + 8), _mm512_maskz_mov_epi8(hb, _mm512_set1_epi8(16)));
    }
    default: /* Q8_0: signed bytes, +128 as unsigned */
        *off = 128;
        return _mm512_xor_si512(join(p0 + 2, p1 + 2), _mm512_set1_epi8((char)0x80));
    }
}

/* the 16 int32 partial sums of weights w (offset off) times activations xv */
AVX512 static inline __m512i pair_sums(__m512i w, int off, __m512i xv)
{
    __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), w, xv);
    if (off) s = _mm512_sub_epi32(s, _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_set1_epi8((char)off), xv));
    return s;
}

/* the two blocks' scales d_w * d_x in lanes 0..7 and 8..15 */
AVX512 static inline __m512 pair_scale(float d0, float d1)
{
    return _mm512_mask_blend_ps(0xFF00, _mm512_set1_ps(d0), _mm512_set1_ps(d1));
}

static inline size_t block_bytes(enum ggml_type t)
{
    return t == GGML_TYPE_Q4_0 ? 18 : t == GGML_TYPE_Q4_1 ? 20 : t == GGML_TYPE_Q5_0 ? 22 : t == GGML_TYPE_Q5_1 ? 24 : 34;
}

/* rows r0..r1-1 (row_bytes apart) times nt (1..4) tokens' activations (xs
 * bytes apart), results y[k * ys + r]; each weight pair is decoded once. The
 * same order of operations for every nt, so one token and four agree exactly. */
AVX512 static inline __attribute__((always_inline)) void rows_q32(enum ggml_type t, const uint8_t *w, size_t row_bytes, int64_t r0,
        int64_t r1, const uint8_t *xa, size_t xs, int nt, int64_t nb, float *y, size_t ys)
{
    size_t bb = block_bytes(t);
    int has_m = t == GGML_TYPE_Q4_1 || t == GGML_TYPE_Q5_1;
    for (int64_t r = r0; r < r1; r++) {
        const uint8_t *p = w + (size_t)r * row_bytes;
        __m512 acc[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
        float summ[4] = { 0, 0, 0, 0 };
        int64_t b = 0;
        for (; b < nb; b += 2, p += 2 * bb) {
            int last = b + 1 == nb;   /* an odd last block: paired with itself, the second half weighted 0 */
            const uint8_t *p1 = last ? p : p + bb;
            int off;
            __m512i wv = pair_weights(t, p, p1, &off);
            float d0 = h2f(p), d1 = last ? 0.0f : h2f(p1);
            float m0 = has_m ? h2f(p + 2) : 0.0f, m1 = has_m && !last ? h2f(p1 + 2) : 0.0f;
            for (int k = 0; k < nt; k++) {
                const struct quant_q8a *x = (const struct quant_q8a *)(xa + (size_t)k * xs) + b, *x1 = last ? x : x + 1;
                __m512i s = pair_sums(wv, off, join(x->qs, x1->qs));
                acc[k] = _mm512_fmadd_ps(pair_scale(d0 * x->d, d1 * x1->d), _mm512_cvtepi32_ps(s), acc[k]);
                if (has_m) summ[k] += last ? m0 * x->s : m0 * x->s + m1 * x1->s;
            }
        }
        for (int k = 0; k < nt; k++) y[(size_t)k * ys + r] = _mm512_reduce_add_ps(acc[k]) + summ[k];
    }
}

/* The types quant.c sends here: those where these kernels measured faster
 * than the AVX2 ones (tests/bench/llm/kernel_bench.c, docs/prompt-expand.md).
 * Q4_1 and Q5_1 measured at parity or slower (their per-block min term is
 * scalar work either way) and Q8_0 at parity (its offset costs a second
 * dpbusd where AVX2's sign trick is one maddubs), so they keep AVX2; their
 * kernels here are tested exact and benchmarked, not used. */
int quant_avx512_has(enum ggml_type t)
{
    switch (t) {
    case GGML_TYPE_Q4_0: case GGML_TYPE_Q5_0: return 1;
    default: return 0;
    }
}

AVX512 float quant_dot_avx512(enum ggml_type t, const void *w, const void *xa, int64_t n)
{
    float y = 0;
    switch (t) {
#define ONE(T) rows_q32(T, w, 0, 0, 1, xa, 0, 1, n / QK, &y, 0); break;
    case GGML_TYPE_Q4_0: ONE(GGML_TYPE_Q4_0)
    case GGML_TYPE_Q4_1: ONE(GGML_TYPE_Q4_1)
    case GGML_TYPE_Q5_0: ONE(GGML_TYPE_Q5_0)
    case GGML_TYPE_Q5_1: ONE(GGML_TYPE_Q5_1)
    default: ONE(GGML_TYPE_Q8_0)
#undef ONE
    }
    return y;
}

AVX512 int quant_rows_avx512(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa,
                             int64_t n, float *y)
{
    switch (t) {
#define ROWS(T) rows_q32(T, w, row_bytes, r0, r1, xa, 0, 1, n / QK, y, 0); return 1;
    case GGML_TYPE_Q4_0: ROWS(GGML_TYPE_Q4_0)
    case GGML_TYPE_Q4_1: ROWS(GGML_TYPE_Q4_1)
    case GGML_TYPE_Q5_0: ROWS(GGML_TYPE_Q5_0)
    case GGML_TYPE_Q5_1: ROWS(GGML_TYPE_Q5_1)
    case GGML_TYPE_Q8_0: ROWS(GGML_TYPE_Q8_0)
#undef ROWS
    default: return 0;
    }
}

AVX512 int quant_rows4_avx512(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa,
                              size_t xa_stride, int64_t n, float *y, size_t y_stride)
{
    switch (t) {
#define R4(T) rows_q32(T, w, row_bytes, r0, r1, xa, xa_stride, 4, n / QK, y, y_stride); return 1;
    case GGML_TYPE_Q4_0: R4(GGML_TYPE_Q4_0)
    case GGML_TYPE_Q4_1: R4(GGML_TYPE_Q4_1)
    case GGML_TYPE_Q5_0: R4(GGML_TYPE_Q5_0)
    case GGML_TYPE_Q5_1: R4(GGML_TYPE_Q5_1)
    case GGML_TYPE_Q8_0: R4(GGML_TYPE_Q8_0)
#undef R4
    default: return 0;
    }
}

/* ---- the x8 layout (quant.h) in 512-bit registers ----
 * Two groups of 8 rows at once: group g in the low 256 bits, g + 1 in the
 * high ones, so lane r < 8 is row 8g + r and lane 8 + r row 8(g + 1) + r,
 * and the 16 results are 16 consecutive rows (one store). An odd last group
 * is paired with itself and only its 8 results are stored. A lane's 4 weight
 * bytes times the same 4 activation bytes broadcast: vpdpbusd adds the four
 * products into the lane's int32 (unsigned weights, signed activations), so
 * a block's integer sum needs no int16 step. Every integer sum is the AVX2
 * x8 kernel's (and the scalar kernel's), and the float steps are the AVX2
 * x8 kernel's, in the same order. Q8_0 (signed weights) keeps AVX2. */

/* 32 bytes at p0 + o in the low half, at p1 + o in the high half */
AVX512 static inline __m512i x16_load(const uint8_t *p0, const uint8_t *p1, size_t o)
{
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(p0 + o))),
                              _mm256_loadu_si256((const __m256i *)(p1 + o)), 1);
}

/* the 8 halves at p0 + o and the 8 at p1 + o as 16 floats */
AVX512 static inline __m512 x16_halves(const uint8_t *p0, const uint8_t *p1, size_t o)
{
    return _mm512_cvtph_ps(_mm256_loadu2_m128i((const __m128i *)(p1 + o), (const __m128i *)(p0 + o)));
}

/* the 16 bytes at p0 + o in both 128-bit quarters of the low half, those at p1 + o in the high half */
AVX512 static inline __m512i x16_bcast16(const uint8_t *p0, const uint8_t *p1, size_t o)
{
    __m256i a = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p0 + o)));
    __m256i b = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(p1 + o)));
    return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

/* the 8 bytes at p0 + o and the 8 at p1 + o, one per lane, as int32 (signed or not) */
AVX512 static inline __m512i x16_bytes_u32(const uint8_t *p0, const uint8_t *p1, size_t o)
{
    return _mm512_cvtepu8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(p0 + o)), _mm_loadl_epi64((const __m128i *)(p1 + o))));
}
AVX512 static inline __m512i x16_bytes_i32(const uint8_t *p0, const uint8_t *p1, size_t o)
{
    return _mm512_cvtepi8_epi32(_mm_unpacklo_epi64(_mm_loadl_epi64((const __m128i *)(p0 + o)), _mm_loadl_epi64((const __m128i *)(p1 + o))));
}

AVX512 static inline __m512i bcast4(const int8_t *q)
{
    int32_t v;
    memcpy(&v, q, 4);
    return _mm512_set1_epi32(v);
}

/* Q4_0, Q4_1, Q5_0: per block, vector v's low nibbles are elements 4v..4v+3,
 * its high nibbles 16+4v..16+4v+3 (Q5_0: the fifth bit put in as in AVX2);
 * the offsets (-8, -16) and Q4_1's minimum go into the per-block term with
 * the activation sum, as in AVX2 */
AVX512 static inline __attribute__((always_inline)) void x16_group(enum ggml_type t, int nt, const uint8_t *p0, const uint8_t *p1,
                                                                      int64_t nb, const uint8_t *xa, size_t xs, __m512 *acc)
{
    const size_t gb = quant_x8_block_size(t);
    const size_t head = quant_x8_head(t);
    const __m512i m4 = _mm512_set1_epi8(0x0F), b16 = _mm512_set1_epi8(0x10);
    for (int64_t b = 0; b < nb; b++, p0 += gb, p1 += gb) {
        __m512 d = x16_halves(p0, p1, 0), m = d;
        if (t == GGML_TYPE_Q4_1) m = x16_halves(p0, p1, 16);
        if (t == GGML_TYPE_Q4_0) m = _mm512_mul_ps(d, _mm512_set1_ps(-8.0f));
        if (t == GGML_TYPE_Q5_0) m = _mm512_mul_ps(d, _mm512_set1_ps(-16.0f));
        __m512i w[8], qh = _mm512_setzero_si512();
        if (t == GGML_TYPE_Q5_0) qh = x16_load(p0, p1, 16);
        for (int v = 0; v < 4; v++) {
            __m512i q = x16_load(p0, p1, head + 32 * (size_t)v);
            w[2 * v] = _mm512_and_si512(q, m4);
            w[2 * v + 1] = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
            if (t == GGML_TYPE_Q5_0) {
                w[2 * v] = _mm512_or_si512(w[2 * v], _mm512_and_si512(_mm512_slli_epi32(qh, 4 - v), b16));
                w[2 * v + 1] = _mm512_or_si512(w[2 * v + 1], _mm512_and_si512(_mm512_srli_epi32(qh, v), b16));
            }
        }
        for (int k = 0; k < nt; k++) {
            const struct quant_q8a *x = (const struct quant_q8a *)(const void *)(xa + (size_t)k * xs) + b;
            __m512i s0 = _mm512_setzero_si512(), s1 = _mm512_setzero_si512();
            for (int v = 0; v < 4; v++) {
                s0 = _mm512_dpbusd_epi32(s0, w[2 * v], bcast4(x->qs + 4 * v));
                s1 = _mm512_dpbusd_epi32(s1, w[2 * v + 1], bcast4(x->qs + 16 + 4 * v));
            }
            __m512i s = _mm512_add_epi32(s0, s1);
            acc[k] = _mm512_fmadd_ps(_mm512_mul_ps(d, _mm512_set1_ps(x->d)), _mm512_cvtepi32_ps(s), acc[k]);
            acc[k] = _mm512_fmadd_ps(m, _mm512_set1_ps(x->s), acc[k]);
        }
    }
}

/* Q4_K: chunk c (64 elements) is 8 vectors whose low nibbles are sub-block
 * 2c, high nibbles 2c + 1; each sub-block's int32 sum (8 vpdpbusd) times the
 * row's scale (vpmulld), and the mins, as int16 pairs of sub-blocks 2c and
 * 2c + 1, against the activation sums with vpdpwssd */
AVX512 static inline __attribute__((always_inline)) void x16k_group(int nt, const uint8_t *p0, const uint8_t *p1, int64_t nb,
                                                                       const uint8_t *xa, size_t xs, __m512 *acc)
{
    const __m512i m4 = _mm512_set1_epi8(0x0F);
    /* lane r (of each 256-bit half): the int16 pair (mn[2j][r], mn[2j+1][r]) from 16 bytes (-1: a zero byte) */
    const __m512i pair = _mm512_broadcast_i64x4(_mm256_setr_epi8(0, -1, 8, -1, 1, -1, 9, -1, 2, -1, 10, -1, 3, -1, 11, -1,
                                                                 4, -1, 12, -1, 5, -1, 13, -1, 6, -1, 14, -1, 7, -1, 15, -1));
    for (int64_t b = 0; b < nb; b++, p0 += quant_x8_block_size(GGML_TYPE_Q4_K), p1 += quant_x8_block_size(GGML_TYPE_Q4_K)) {
        __m512 d = x16_halves(p0, p1, 0), dmin = x16_halves(p0, p1, 16);
        __m512i sc[8], mp[4];
        for (int j = 0; j < 4; j++) {
            sc[2 * j] = x16_bytes_u32(p0, p1, 32 + 16 * (size_t)j);
            sc[2 * j + 1] = x16_bytes_u32(p0, p1, 40 + 16 * (size_t)j);
            mp[j] = _mm512_shuffle_epi8(x16_bcast16(p0, p1, 96 + 16 * (size_t)j), pair);
        }
        const struct quant_q8k *x[4];
        __m512i ai[4], am[4];
#pragma GCC unroll 4
        for (int k = 0; k < nt; k++) {
            x[k] = (const struct quant_q8k *)(const void *)(xa + (size_t)k * xs) + b;
            ai[k] = am[k] = _mm512_setzero_si512();
        }
        for (int c = 0; c < 4; c++) {
            /* each vector decoded once for the nt tokens */
            __m512i sl[4], sh[4];
#pragma GCC unroll 4
            for (int k = 0; k < nt; k++) sl[k] = sh[k] = _mm512_setzero_si512();
            for (int v = 0; v < 8; v++) {
                __m512i q = x16_load(p0, p1, 160 + 256 * (size_t)c + 32 * (size_t)v);
                __m512i lo = _mm512_and_si512(q, m4), hi = _mm512_and_si512(_mm512_srli_epi16(q, 4), m4);
#pragma GCC unroll 4
                for (int k = 0; k < nt; k++) {
                    sl[k] = _mm512_dpbusd_epi32(sl[k], lo, bcast4(x[k]->qs + 64 * c + 4 * v));
                    sh[k] = _mm512_dpbusd_epi32(sh[k], hi, bcast4(x[k]->qs + 64 * c + 32 + 4 * v));
                }
            }
#pragma GCC unroll 4
            for (int k = 0; k < nt; k++) {
                ai[k] = _mm512_add_epi32(ai[k], _mm512_add_epi32(_mm512_mullo_epi32(sl[k], sc[2 * c]), _mm512_mullo_epi32(sh[k], sc[2 * c + 1])));
                int s0 = x[k]->bsums[4 * c] + x[k]->bsums[4 * c + 1], s1 = x[k]->bsums[4 * c + 2] + x[k]->bsums[4 * c + 3];
                am[k] = _mm512_dpwssd_epi32(am[k], mp[c], _mm512_set1_epi32((int)((uint32_t)(uint16_t)s0 | (uint32_t)s1 << 16)));
            }
        }
#pragma GCC unroll 4
        for (int k = 0; k < nt; k++) {
            __m512 tt = _mm512_sub_ps(_mm512_mul_ps(d, _mm512_cvtepi32_ps(ai[k])), _mm512_mul_ps(dmin, _mm512_cvtepi32_ps(am[k])));
            acc[k] = _mm512_fmadd_ps(_mm512_set1_ps(x[k]->d), tt, acc[k]);
        }
    }
}

/* Q6_K: per sub-block g of 16 elements, vectors A, B, C (quant.c) give
 * elements 0-3, 4-7, 8-11 with one mask each and 12-15 from their top bits;
 * 4 vpdpbusd give the sub-block's int32 sum, times the row's signed scale
 * (vpmulld); the -32 offset is 32 * sum_g sc[g] * bsums[g], int16 pairs of
 * sub-blocks against the activation sums with vpdpwssd. The float step is
 * the scalar one's, (x->d * d) * sumi added block after block, no FMA: the
 * results are the per-row kernel's bit for bit. */
AVX512 static inline __attribute__((always_inline)) void x16q6_group(int nt, const uint8_t *p0, const uint8_t *p1, int64_t nb,
                                                                        const uint8_t *xa, size_t xs, __m512 *acc)
{
    const __m512i m3f = _mm512_set1_epi8(0x3F), mc0 = _mm512_set1_epi8((char)0xC0);
    /* lane r: (0, s[2j][r], 0, s[2j+1][r]) from 16 bytes, then >> 3: 32 * the scales as an int16 pair */
    const __m512i pair = _mm512_broadcast_i64x4(_mm256_setr_epi8(-1, 0, -1, 8, -1, 1, -1, 9, -1, 2, -1, 10, -1, 3, -1, 11,
                                                                 -1, 4, -1, 12, -1, 5, -1, 13, -1, 6, -1, 14, -1, 7, -1, 15));
    for (int64_t b = 0; b < nb; b++, p0 += quant_x8_block_size(GGML_TYPE_Q6_K), p1 += quant_x8_block_size(GGML_TYPE_Q6_K)) {
        __m512i ai[4] = { _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512() };
        const struct quant_q8k *x[4];
#pragma GCC unroll 4
        for (int k = 0; k < nt; k++) x[k] = (const struct quant_q8k *)(const void *)(xa + (size_t)k * xs) + b;
        for (int j = 0; j < 8; j++) {
            __m512i sp = _mm512_srai_epi16(_mm512_shuffle_epi8(x16_bcast16(p0, p1, 16 + 16 * (size_t)j), pair), 3);
            for (int h = 0; h < 2; h++) {
                int g = 2 * j + h;
                __m512i sc = x16_bytes_i32(p0, p1, 16 + 8 * (size_t)g);
                size_t o = 144 + 96 * (size_t)g;
                __m512i a = x16_load(p0, p1, o), bb = x16_load(p0, p1, o + 32), c = x16_load(p0, p1, o + 64);
                __m512i v0 = _mm512_and_si512(a, m3f), v1 = _mm512_and_si512(bb, m3f), v2 = _mm512_and_si512(c, m3f);
                __m512i v3 = _mm512_or_si512(_mm512_srli_epi16(_mm512_and_si512(a, mc0), 4), _mm512_srli_epi16(_mm512_and_si512(bb, mc0), 2));
                v3 = _mm512_srli_epi16(_mm512_or_si512(v3, _mm512_and_si512(c, mc0)), 2);
#pragma GCC unroll 4
                for (int k = 0; k < nt; k++) {
                    const int8_t *xq = x[k]->qs + 16 * g;
                    __m512i s = _mm512_dpbusd_epi32(_mm512_setzero_si512(), v0, bcast4(xq));
                    s = _mm512_dpbusd_epi32(s, v1, bcast4(xq + 4));
                    s = _mm512_dpbusd_epi32(s, v2, bcast4(xq + 8));
                    s = _mm512_dpbusd_epi32(s, v3, bcast4(xq + 12));
                    ai[k] = _mm512_add_epi32(ai[k], _mm512_mullo_epi32(s, sc));
                }
            }
#pragma GCC unroll 4
            for (int k = 0; k < nt; k++) {
                int32_t bs;
                memcpy(&bs, x[k]->bsums + 2 * j, sizeof bs);
                ai[k] = _mm512_sub_epi32(ai[k], _mm512_dpwssd_epi32(_mm512_setzero_si512(), sp, _mm512_set1_epi32(bs)));
            }
        }
        __m512 d = x16_halves(p0, p1, 0);
#pragma GCC unroll 4
        for (int k = 0; k < nt; k++) {
            acc[k] = _mm512_add_ps(acc[k], _mm512_mul_ps(_mm512_mul_ps(_mm512_set1_ps(x[k]->d), d), _mm512_cvtepi32_ps(ai[k])));
        }
    }
}

/* rows 8g .. 8g + 15 (two = 1) or 8g .. 8g + 7 (two = 0) for nt tokens */
AVX512 static inline __attribute__((always_inline)) void x16_any(enum ggml_type t, int nt, const uint8_t *p0, const uint8_t *p1,
                                                                    int two, int64_t nb, const uint8_t *xa, size_t xs, float *y, size_t ys)
{
    __m512 acc[4] = { _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps() };
    if (t == GGML_TYPE_Q4_K) x16k_group(nt, p0, p1, nb, xa, xs, acc);
    else if (t == GGML_TYPE_Q6_K) x16q6_group(nt, p0, p1, nb, xa, xs, acc);
    else x16_group(t, nt, p0, p1, nb, xa, xs, acc);
    for (int k = 0; k < nt; k++) {
        if (two) _mm512_storeu_ps(y + (size_t)k * ys, acc[k]);
        else _mm256_storeu_ps(y + (size_t)k * ys, _mm512_castps512_ps256(acc[k]));
    }
}

AVX512 static inline __attribute__((always_inline)) void x16_range(enum ggml_type t, const uint8_t *w8, int64_t nb, int64_t g0,
                                                                      int64_t g1, const uint8_t *xa, size_t xs, int nt,
                                                                      float *y, size_t ys)
{
    const size_t gs = (size_t)nb * quant_x8_block_size(t);
    for (int64_t g = g0; g < g1; g += 2) {
        int two = g + 1 < g1;
        const uint8_t *p0 = w8 + (size_t)g * gs, *p1 = two ? p0 + gs : p0;
        int k = 0;
        for (; k + 4 <= nt; k += 4) x16_any(t, 4, p0, p1, two, nb, xa + (size_t)k * xs, xs, y + (size_t)k * ys + 8 * g, ys);
        switch (nt - k) {
        case 3: x16_any(t, 3, p0, p1, two, nb, xa + (size_t)k * xs, xs, y + (size_t)k * ys + 8 * g, ys); break;
        case 2: x16_any(t, 2, p0, p1, two, nb, xa + (size_t)k * xs, xs, y + (size_t)k * ys + 8 * g, ys); break;
        case 1: x16_any(t, 1, p0, p1, two, nb, xa + (size_t)k * xs, xs, y + (size_t)k * ys + 8 * g, ys); break;
        default: break;
        }
    }
}

/* rows 8*g0 .. 8*g1-1 of a packed matrix (quant_x8_rows); 0 for Q8_0 and
 * the types with no packed form */
AVX512 int quant_x8_rows_avx512(enum ggml_type t, const void *w8, int64_t n, int64_t g0, int64_t g1, const void *xa,
                                size_t xa_stride, int nt, float *y, size_t y_stride)
{
    switch (t) {
#define X16(T, BE) x16_range(T, w8, n / (BE), g0, g1, xa, xa_stride, nt, y, y_stride); return 1;
    case GGML_TYPE_Q4_0: X16(GGML_TYPE_Q4_0, QK)
    case GGML_TYPE_Q4_1: X16(GGML_TYPE_Q4_1, QK)
    case GGML_TYPE_Q5_0: X16(GGML_TYPE_Q5_0, QK)
    case GGML_TYPE_Q4_K: X16(GGML_TYPE_Q4_K, QK_K)
    case GGML_TYPE_Q6_K: X16(GGML_TYPE_Q6_K, QK_K)
#undef X16
    default: return 0;
    }
}

#else /* not x86: never selected */
int quant_avx512_has(enum ggml_type t) { (void)t; return 0; }
float quant_dot_avx512(enum ggml_type t, const void *w, const void *xa, int64_t n) { return quant_dot_scalar(t, w, xa, n); }
int quant_rows_avx512(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa, int64_t n, float *y)
{ (void)t; (void)w; (void)row_bytes; (void)r0; (void)r1; (void)xa; (void)n; (void)y; return 0; }
int quant_rows4_avx512(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa,
                       size_t xa_stride, int64_t n, float *y, size_t y_stride)
{ (void)t; (void)w; (void)row_bytes; (void)r0; (void)r1; (void)xa; (void)xa_stride; (void)n; (void)y; (void)y_stride; return 0; }
int quant_x8_rows_avx512(enum ggml_type t, const void *w8, int64_t n, int64_t g0, int64_t g1, const void *xa,
                         size_t xa_stride, int nt, float *y, size_t y_stride)
{ (void)t; (void)w8; (void)n; (void)g0; (void)g1; (void)xa; (void)xa_stride; (void)nt; (void)y; (void)y_stride; return 0; }
#endif
