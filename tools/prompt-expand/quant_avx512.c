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
 * K-quants (Q4_K, Q5_K, Q6_K) keep their AVX2 kernels. */
#include "quant.h"

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

#else /* not x86: never selected */
int quant_avx512_has(enum ggml_type t) { (void)t; return 0; }
float quant_dot_avx512(enum ggml_type t, const void *w, const void *xa, int64_t n) { return quant_dot_scalar(t, w, xa, n); }
int quant_rows_avx512(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa, int64_t n, float *y)
{ (void)t; (void)w; (void)row_bytes; (void)r0; (void)r1; (void)xa; (void)n; (void)y; return 0; }
int quant_rows4_avx512(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa,
                       size_t xa_stride, int64_t n, float *y, size_t y_stride)
{ (void)t; (void)w; (void)row_bytes; (void)r0; (void)r1; (void)xa; (void)xa_stride; (void)n; (void)y; (void)y_stride; return 0; }
#endif
