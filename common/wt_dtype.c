/* wt_dtype.c — element types of the weights interface (weights.h): sizes,
 * names and the scalar conversions every model and the nn core share.
 * float8: e4m3fn (OCP FP8, "fn" = finite: exponent bias 7, no infinities,
 * S.1111.111 is NaN) and e5m2 (bias 15, IEEE-like with infinities). */
#include <math.h>
#include <string.h>

#include "weights.h"

static const struct { const char *name; size_t size; } g_types[WT_N_DTYPES] = {
    [WT_F32] = { "F32", 4 },  [WT_F16] = { "F16", 2 },   [WT_BF16] = { "BF16", 2 },
    [WT_F8_E4M3] = { "F8_E4M3", 1 }, [WT_F8_E5M2] = { "F8_E5M2", 1 }, [WT_F64] = { "F64", 8 },
    [WT_I8] = { "I8", 1 },    [WT_U8] = { "U8", 1 },     [WT_I16] = { "I16", 2 },
    [WT_I32] = { "I32", 4 },  [WT_I64] = { "I64", 8 },   [WT_BOOL] = { "BOOL", 1 },
    [WT_GGML] = { "GGML", 0 },
};

size_t wt_dtype_size(enum wt_dtype t) { return (unsigned)t < WT_N_DTYPES ? g_types[t].size : 0; }
const char *wt_dtype_name(enum wt_dtype t) { return (unsigned)t < WT_N_DTYPES ? g_types[t].name : "?"; }

float wt_bf16_to_f32(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t wt_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN, sign kept */
    u += 0x7fffu + ((u >> 16) & 1);                                         /* round to nearest even */
    return (uint16_t)(u >> 16);
}

float wt_f16_to_f32(uint16_t h)
{
    uint32_t s = (uint32_t)(h >> 15) << 31, e = (h >> 10) & 0x1f, m = h & 0x3ff, u;
    if (e == 0) {
        if (m == 0) u = s;
        else { /* subnormal: m * 2^-24 */
            float f = ldexpf((float)m, -24);
            return s ? -f : f;
        }
    } else if (e == 31) u = s | 0x7f800000u | (m << 13);
    else u = s | ((e + 112) << 23) | (m << 13);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

uint16_t wt_f32_to_f16(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    uint16_t s = (uint16_t)((u >> 16) & 0x8000);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return s | 0x7e00;             /* NaN */
    if (a >= 0x477ff000u) return s | 0x7c00;            /* rounds to >= 65520: inf */
    if (a < 0x38800000u) {                              /* below 2^-14: subnormal half */
        float af;
        memcpy(&af, &a, 4);
        /* 2^-24 units, round to nearest even (rintf in the default mode) */
        return s | (uint16_t)rintf(af * 16777216.0f);
    }
    uint32_t r = a + 0xfffu + ((a >> 13) & 1);          /* round mantissa to 10 bits, nearest even */
    return s | (uint16_t)(((r >> 13) - (112u << 10)) & 0x7fff);
}

float wt_e4m3_to_f32(uint8_t b)
{
    int s = b >> 7, e = (b >> 3) & 0xf, m = b & 7;
    float v;
    if (e == 15 && m == 7) return NAN;
    if (e == 0) v = ldexpf((float)m, -9);               /* m/8 * 2^-6 */
    else v = ldexpf((float)(8 + m), e - 10);            /* (1 + m/8) * 2^(e-7) */
    return s ? -v : v;
}

float wt_e5m2_to_f32(uint8_t b)
{
    int s = b >> 7, e = (b >> 2) & 0x1f, m = b & 3;
    float v;
    if (e == 31) v = m ? NAN : INFINITY;
    else if (e == 0) v = ldexpf((float)m, -16);         /* m/4 * 2^-14 */
    else v = ldexpf((float)(4 + m), e - 17);            /* (1 + m/4) * 2^(e-15) */
    return s ? -v : v;
}
