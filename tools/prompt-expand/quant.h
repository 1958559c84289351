/* quant.h — ggml tensor block formats: dequantisation, activation
 * quantisation and dot products, as the CPU path of the LLM engine uses them.
 * Weight blocks are read in ggml's on-disk layouts (ggml-common.h block_q4_0 ...
 * block_q6_K, little-endian); activations are quantised to our own blocks
 * (struct quant_q8a for the 32-element formats, struct quant_q8k for the
 * K-quants), which carry the same information as ggml's block_q8_1 / block_q8_K,
 * so a dot product rounds the activations exactly the way llama.cpp does.
 * quant_init() picks the AVX2/FMA kernels when the CPU has them (run-time
 * check), and for Q4_0 and Q5_0 the AVX-512 VNNI ones where the CPU has
 * avx512f/bw/vl/vnni; ISOPIPE_NO_AVX512=1 keeps AVX2, ISOPIPE_NO_SIMD=1 in
 * the environment forces the scalar ones. ISOPIPE_X8_AVX512=1 adds the
 * AVX-512 kernels of the packed layout (opt-in: not yet measured). */
#ifndef ISOPIPE_QUANT_H
#define ISOPIPE_QUANT_H
#include <stddef.h>
#include <stdint.h>
#include "gguf.h"

#define QK 32        /* elements per block of Q4_0 .. Q8_0 */
#define QK_K 256     /* elements per K-quant super-block */

/* activation block for the 32-element formats: qs = round(x / d), s = d * sum(qs) */
struct quant_q8a { float d, s; int8_t qs[QK]; };
/* activation block for the K-quants (as ggml block_q8_K): bsums = sums of 16 qs */
struct quant_q8k { float d; int8_t qs[QK_K]; int16_t bsums[QK_K / 16]; };

void quant_init(void);
/* 0: scalar kernels, 1: AVX2, 2: AVX2 and AVX-512 VNNI */
int quant_simd(void);

/* 1 when the engine can compute with tensors of type t */
int quant_supported(enum ggml_type t);
/* bytes of a row of n elements (n a multiple of the block size) */
size_t quant_row_bytes(enum ggml_type t, int64_t n);
/* the activation format dot products with weights of type t use:
 * GGML_TYPE_Q8_1 (struct quant_q8a), GGML_TYPE_Q8_K (struct quant_q8k), or GGML_TYPE_F32 */
enum ggml_type quant_act_type(enum ggml_type t);
/* bytes of n activations in that format */
size_t quant_act_bytes(enum ggml_type t, int64_t n);
/* quantise n floats for dot products with weights of type t (into quant_act_bytes(t, n) bytes) */
void quant_act(enum ggml_type t, const float *x, void *dst, int64_t n);

/* n elements of one row of type t to floats */
void quant_dequant_row(enum ggml_type t, const void *src, float *dst, int64_t n);
/* dot product of one weight row (type t, n elements) with activations from quant_act(t) */
float quant_dot(enum ggml_type t, const void *w, const void *xa, int64_t n);

/* attention over a half-precision KV cache: dot of n halves with n floats,
 * and y += a * v for n halves v */
float quant_dot_f16(const uint16_t *h, const float *x, int64_t n);
void quant_axpy_f16(float a, const uint16_t *v, float *y, int64_t n);
/* the same over len keys of a cache, K_j = k + j * stride (hd halves):
 * sc[j] = scale * (K_j . q), and out = sum_j (p[j] * mul) V_j; bit for bit
 * what quant_dot_f16 and quant_axpy_f16 (from out = 0) give key by key,
 * with the query and the output held in registers (AVX2) */
void quant_attn_scores_f16(const uint16_t *k, size_t stride, int len, const float *q, int hd, float scale, float *sc);
void quant_attn_wsum_f16(const float *p, float mul, const uint16_t *v, size_t stride, int len, int hd, float *out);
/* n floats to halves (round to nearest even) */
void quant_f32_to_f16_row(const float *x, uint16_t *h, int64_t n);

/* IEEE half and bfloat16 conversions (round to nearest even) */
float quant_f16_to_f32(uint16_t h);
uint16_t quant_f32_to_f16(float f);
float quant_bf16_to_f32(uint16_t h);

/* y[r] = row r of w (row_bytes apart) . xa for r in [r0, r1): as quant_dot per row */
void quant_rows(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa, int64_t n, float *y);

/* the same for four tokens: activations xa + k * xa_stride, results y + k * y_stride (k < 4) */
void quant_rows4(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa, size_t xa_stride,
                 int64_t n, float *y, size_t y_stride);

/* dot product of one weight row of any supported type with float activations
 * (the weights dequantised block by block): the engine's reference mode */
float quant_dot_f32act(enum ggml_type t, const void *w, const float *x, int64_t n);

/* ---- the "x8" layout: eight rows interleaved, for the generation matvec ----
 * A matrix of Q4_0, Q4_1, Q5_0, Q8_0, Q4_K or Q6_K with a row count divisible
 * by 8 can be repacked (quant_x8_pack) so that the kernel reads 8 rows at
 * once: per group of 8 rows and per block, the 8 scales (f16), the 8
 * minimums (Q4_1), the 8 fifth-bit words (Q5_0) or, for Q4_K, d, dmin and
 * the 6-bit sub-block scales and mins unpacked to bytes (Q6_K: d and the
 * int8 sub-block scales by sub-block), then the quants as 32-byte vectors
 * whose 4-byte lane r holds 4 consecutive elements of row r (Q6_K: three
 * vectors per 16 elements, 6 bits in each byte and the fourth vector's in
 * their top bits). A vector times the same 4 activation bytes broadcast
 * gives 8 row sums at once (no horizontal sums, one f16 conversion per 8
 * scales). The 32-element types and Q6_K keep their size, Q4_K grows by 32
 * bytes per 8 super-blocks (2.8%). quant_x8_usable() says whether this CPU
 * has kernels for type t (AVX2); a packed matrix is read only through
 * quant_x8_*. */
int quant_x8_usable(enum ggml_type t);
/* bytes of one packed block of 8 rows (8 x 32 or 8 x 256 elements): the
 * kernels' stride; Q4_K 1184, Q6_K 1680, the others 8 file blocks */
static inline size_t quant_x8_block_size(enum ggml_type t)
{
    return t == GGML_TYPE_Q4_0 ? 144 : t == GGML_TYPE_Q4_1 ? 160 : t == GGML_TYPE_Q5_0 ? 176 : t == GGML_TYPE_Q8_0 ? 272
         : t == GGML_TYPE_Q4_K ? 1184 : t == GGML_TYPE_Q6_K ? 1680 : 0;
}
/* 32-element types: bytes before a packed block's quant vectors (the 8 d's,
 * then Q4_1's 8 m's or Q5_0's 8 fifth-bit words) */
static inline size_t quant_x8_head(enum ggml_type t) { return t == GGML_TYPE_Q4_1 ? 32 : t == GGML_TYPE_Q5_0 ? 48 : 16; }
/* bytes of the packed form of a matrix of rows x n (rows a multiple of 8) */
size_t quant_x8_bytes(enum ggml_type t, int64_t n, int64_t rows);
/* pack row groups [g0, g1) (rows 8*g0 .. 8*g1-1) of a matrix of n columns; dst
 * is the packed matrix's base (group g at dst + 8 * g * row_bytes) */
void quant_x8_pack(enum ggml_type t, const void *src, int64_t n, int64_t g0, int64_t g1, void *dst);
/* row r of a packed matrix of n columns, as floats */
void quant_x8_dequant_row(enum ggml_type t, const void *w8, int64_t n, int64_t r, float *dst);
/* y[k * y_stride + r] = row r . activations k (xa + k * xa_stride, from quant_act(t)) for
 * rows 8*g0 .. 8*g1-1 and tokens k < nt: as quant_rows, on a packed matrix */
void quant_x8_rows(enum ggml_type t, const void *w8, int64_t n, int64_t g0, int64_t g1, const void *xa, size_t xa_stride,
                   int nt, float *y, size_t y_stride);

/* the scalar kernels (tests compare the SIMD ones against them) */
float quant_dot_scalar(enum ggml_type t, const void *w, const void *xa, int64_t n);
void quant_act_scalar(enum ggml_type t, const float *x, void *dst, int64_t n);
#endif
