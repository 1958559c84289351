/* gguf_quant.h — ggml's block formats (ggml-common.h layouts, little-endian)
 * to float32: the one implementation the weights loader (weights_to_f32) and
 * the LLM engine (prompt-expand's quant_dequant_row) share.
 *   Q4_0  d; u8 qs[16]             x = d * (q - 8), low nibbles are 0..15, high 16..31
 *   Q4_1  d, m; u8 qs[16]          x = d * q + m
 *   Q5_0  d; u32 qh; u8 qs[16]     5th bit from qh, x = d * (q - 16)
 *   Q5_1  d, m; u32 qh; u8 qs[16]  x = d * q + m
 *   Q8_0  d; i8 qs[32]             x = d * q
 *   Q4_K  d, dmin; u8 scales[12]; u8 qs[128]            (256 elements)
 *   Q5_K  d, dmin; u8 scales[12]; u8 qh[32]; u8 qs[128]
 *   Q6_K  u8 ql[128]; u8 qh[64]; i8 scales[16]; d
 * (d, m, dmin are IEEE halves.) */
#ifndef ISOPIPE_GGUF_QUANT_H
#define ISOPIPE_GGUF_QUANT_H
#include <stdint.h>
#include "gguf.h"

/* Q4_K / Q5_K: 8 six-bit scales and 8 six-bit mins packed into 12 bytes.
 * Sub-blocks 0..3 keep theirs in the low 6 bits of bytes 0..3 (scales) and
 * 4..7 (mins); sub-blocks 4..7 take their low 4 bits from the nibbles of
 * bytes 8..11 and their top 2 bits from the spare top bits of bytes 0..7. */
static inline void gguf_k_scale_min(int j, const uint8_t *q, int *sc, int *m)
{
    if (j < 4) {
        *sc = q[j] & 63;
        *m = q[j + 4] & 63;
    } else {
        *sc = (q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4);
        *m = (q[j + 4] >> 4) | ((q[j] >> 6) << 4);
    }
}

/* 1 when gguf_dequant_block reads blocks of type t (the quantised types above) */
int gguf_dequant_has(enum ggml_type t);
/* one block of type t at p into y (32 or 256 floats); 0, or -1 for a type it cannot read */
int gguf_dequant_block(enum ggml_type t, const uint8_t *p, float *y);
/* n elements (a multiple of the block size) of a row of type t, F32, F16 and
 * BF16 included; blocks of a type it cannot read come out as zeros */
void gguf_dequant_row(enum ggml_type t, const void *src, float *y, int64_t n);
#endif
