/* quant_avx512_emu.h — tests only: the AVX-512 kernels of
 * tools/prompt-expand/quant_avx512.c compiled on SIMDe's portable
 * implementations of the x86 intrinsics (Debian's libsimde-dev, headers
 * only, not part of this repository), so that the unit tests run them on
 * every CPU, also those without AVX-512 (our AMD CI machines), and compare
 * them with the scalar kernels bit for bit. Include this, then the kernel
 * source; its public functions get the prefix emu_ so that they sit beside
 * the native ones in one binary. A few intrinsics that SIMDe 0.7.4 lacks are
 * written out below from Intel's definitions (lane by lane). */
#ifndef ISOPIPE_QUANT_AVX512_EMU_H
#define ISOPIPE_QUANT_AVX512_EMU_H

/* 64-byte vectors passed by value without -mavx512f: GCC notes that their
 * ABI differs from an AVX-512 build's (nothing here crosses that boundary);
 * the Makefile builds this test with -Wno-psabi */
#define SIMDE_ENABLE_NATIVE_ALIASES
#include <simde/x86/avx512.h>
#include <simde/x86/f16c.h>
#include <stdint.h>
#include <string.h>

#include "quant.h"

#define QUANT_AVX512_EMULATED 1
#define quant_avx512_has emu_quant_avx512_has
#define quant_dot_avx512 emu_quant_dot_avx512
#define quant_rows_avx512 emu_quant_rows_avx512
#define quant_rows4_avx512 emu_quant_rows4_avx512
#define quant_x8_rows_avx512 emu_quant_x8_rows_avx512

typedef simde__mmask8 __mmask8;
typedef simde__mmask16 __mmask16;
typedef simde__mmask32 __mmask32;
typedef simde__mmask64 __mmask64;

/* vcvtsh2ss: a half to a float (exact) */
static inline float emu_cvtsh_ss(unsigned short h) { return quant_f16_to_f32(h); }
#define _cvtsh_ss emu_cvtsh_ss

/* vcvtdq2ps, 16 lanes: each int32 rounded to nearest even, as C's conversion does */
static inline simde__m512 emu_mm512_cvtepi32_ps(simde__m512i a)
{
    int32_t i[16];
    float f[16];
    simde_mm512_storeu_si512(i, a);
    for (int k = 0; k < 16; k++) f[k] = (float)i[k];
    return simde_mm512_loadu_ps(f);
}
#define _mm512_cvtepi32_ps emu_mm512_cvtepi32_ps

/* vcvtph2ps, 16 lanes */
static inline simde__m512 emu_mm512_cvtph_ps(simde__m256i a)
{
    uint16_t h[16];
    float f[16];
    simde_mm256_storeu_si256(h, a);
    for (int k = 0; k < 16; k++) f[k] = quant_f16_to_f32(h[k]);
    return simde_mm512_loadu_ps(f);
}
#define _mm512_cvtph_ps emu_mm512_cvtph_ps

/* vpmovzxbd / vpmovsxbd: 16 bytes to 16 int32, zero- or sign-extended (by the byte type) */
#define EMU_CVT8_32(NAME, BYTE) \
    static inline simde__m512i NAME(simde__m128i a) \
    { \
        BYTE b[16]; \
        int32_t i[16]; \
        simde_mm_storeu_si128(b, a); \
        for (int k = 0; k < 16; k++) i[k] = b[k]; \
        return simde_mm512_loadu_si512(i); \
    }
EMU_CVT8_32(emu_mm512_cvtepu8_epi32, uint8_t)
EMU_CVT8_32(emu_mm512_cvtepi8_epi32, int8_t)
#define _mm512_cvtepu8_epi32 emu_mm512_cvtepu8_epi32
#define _mm512_cvtepi8_epi32 emu_mm512_cvtepi8_epi32

/* vshufi64x2 selects 128-bit quarters exactly as vshufi32x4 does (they
 * differ only in the granularity of a write mask, unused here) */
#define _mm512_shuffle_i64x2(a, b, imm) simde_mm512_shuffle_i32x4((a), (b), (imm))

/* the sum of 16 floats in the order GCC's avx512fintrin.h adds them: the
 * 256-bit halves, then the 128-bit halves, then pairs of 64, then 32 bits */
static inline float emu_mm512_reduce_add_ps(simde__m512 a)
{
    float f[16], h[8], q[4];
    simde_mm512_storeu_ps(f, a);
    for (int k = 0; k < 8; k++) h[k] = f[k] + f[k + 8];
    for (int k = 0; k < 4; k++) q[k] = h[k] + h[k + 4];
    float p0 = q[0] + q[2], p1 = q[1] + q[3];
    return p0 + p1;
}
#define _mm512_reduce_add_ps emu_mm512_reduce_add_ps

#endif
