/* test_prompt_expand_quant.c — the block formats against references written
 * here from the layout descriptions (ggml-common.h's block structs; the
 * K-quant scale packing as documented in ggml-quants.c), element by element,
 * on random blocks; dot products (SIMD and scalar) against float64 sums of
 * those references; half-precision conversion exhaustively. */
#include "test.h"
#include "quant.h"

#include <math.h>
#include <stdint.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t rnd(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (uint32_t)(rng >> 11);
}
static double rndu(void) { return (rnd() & 0xFFFFFF) / 16777216.0; }

/* IEEE binary16 decoded from its definition: (-1)^s * 2^(e-15) * 1.f, or 2^-14 * 0.f */
static double half_value(uint16_t h)
{
    int s = h >> 15, e = (h >> 10) & 31, f = h & 1023;
    double v = e ? ldexp(1.0 + f / 1024.0, e - 15) : ldexp(f / 1024.0, -14);
    return s ? -v : v;
}
/* a random normal half of moderate size (|v| in [2^-10, 2^-3]), as a scale */
static uint16_t rand_scale(int allow_negative)
{
    int e = 5 + (int)(rnd() % 8), f = (int)(rnd() % 1024), s = allow_negative ? (int)(rnd() & 1) : 0;
    return (uint16_t)(s << 15 | e << 10 | f);
}
static void put_half(uint8_t *p, uint16_t h) { p[0] = (uint8_t)h; p[1] = (uint8_t)(h >> 8); }
static double half_at(const uint8_t *p) { return half_value((uint16_t)(p[0] | p[1] << 8)); }

/* bits [bit, bit + width) of a little-endian byte string */
static int bits(const uint8_t *p, int bit, int width)
{
    int v = 0;
    for (int i = 0; i < width; i++) v |= ((p[(bit + i) / 8] >> ((bit + i) % 8)) & 1) << i;
    return v;
}

/* K-quant 6-bit scale and min of sub-block j from the 12-byte field, read as a
 * 96-bit string: sub-blocks 0-3 own bits 0-5 of bytes 0-3 (scale) and 4-7 (min);
 * sub-blocks 4-7 have their low 4 bits in bytes 8-11 (scale: low nibble, min:
 * high nibble) and their high 2 bits in bits 6-7 of bytes j-4 (scale) and j (min). */
static void k_scale(const uint8_t *s, int j, int *sc, int *mn)
{
    if (j < 4) {
        *sc = bits(s, 8 * j, 6);
        *mn = bits(s, 8 * (j + 4), 6);
    } else {
        *sc = bits(s, 8 * (j + 4), 4) + 16 * bits(s, 8 * (j - 4) + 6, 2);
        *mn = bits(s, 8 * (j + 4) + 4, 4) + 16 * bits(s, 8 * j + 6, 2);
    }
}

/* element i (< block size) of one block, from the layout description */
static double ref_elem(enum ggml_type t, const uint8_t *b, int i)
{
    switch (t) {
    case GGML_TYPE_Q4_0: return half_at(b) * (bits(b + 2, 8 * (i % 16) + 4 * (i / 16), 4) - 8);
    case GGML_TYPE_Q4_1: return half_at(b) * bits(b + 4, 8 * (i % 16) + 4 * (i / 16), 4) + half_at(b + 2);
    case GGML_TYPE_Q5_0: return half_at(b) * (bits(b + 6, 8 * (i % 16) + 4 * (i / 16), 4) + 16 * bits(b + 2, i, 1) - 16);
    case GGML_TYPE_Q5_1: return half_at(b) * (bits(b + 8, 8 * (i % 16) + 4 * (i / 16), 4) + 16 * bits(b + 4, i, 1)) + half_at(b + 2);
    case GGML_TYPE_Q8_0: return half_at(b) * (int8_t)b[2 + i];
    case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: {
        /* 4 groups of 64: the first 32 are low nibbles of bytes 32c.., the next 32 the high nibbles */
        int sub = i / 32, c = i / 64, l = i % 32, sc, mn;
        k_scale(b + 4, sub, &sc, &mn);
        const uint8_t *qs = b + (t == GGML_TYPE_Q5_K ? 48 : 16);
        int q = bits(qs, 8 * (32 * c + l) + 4 * (sub % 2), 4);
        if (t == GGML_TYPE_Q5_K) q += 16 * bits(b + 16 + l, sub, 1);   /* qh[l] bit `sub` */
        return half_at(b) * sc * q - half_at(b + 2) * mn;
    }
    case GGML_TYPE_Q6_K: {
        /* halves of 128; in each, quarter k of 32: low bits from ql (nibble k/2 of byte
         * 64h + 32(k%2) + l), high 2 bits from qh[32h + l] bits 2k..2k+1; scale i/16 */
        int h = i / 128, k = (i % 128) / 32, l = i % 32;
        int lo = bits(b + 64 * h + 32 * (k % 2) + l, 4 * (k / 2), 4);
        int hi = bits(b + 128 + 32 * h + l, 2 * k, 2);
        return half_at(b + 208) * (int8_t)b[192 + i / 16] * (lo + 16 * hi - 32);
    }
    default: return NAN;
    }
}

/* random blocks of type t with sane scales in the half fields */
static void rand_blocks(enum ggml_type t, uint8_t *p, int nb)
{
    size_t bb = ggml_type_block_bytes(t);
    for (size_t i = 0; i < bb * (size_t)nb; i++) p[i] = (uint8_t)rnd();
    for (int b = 0; b < nb; b++, p += bb) {
        switch (t) {
        case GGML_TYPE_Q4_1: case GGML_TYPE_Q5_1: put_half(p, rand_scale(0)); put_half(p + 2, rand_scale(1)); break;
        case GGML_TYPE_Q4_K: case GGML_TYPE_Q5_K: put_half(p, rand_scale(0)); put_half(p + 2, rand_scale(0)); break;
        case GGML_TYPE_Q6_K: put_half(p + 208, rand_scale(0)); break;
        default: put_half(p, rand_scale(1)); break;
        }
    }
}

static const enum ggml_type types[] = { GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1,
                                        GGML_TYPE_Q8_0, GGML_TYPE_Q4_K, GGML_TYPE_Q5_K, GGML_TYPE_Q6_K };

static void test_dequant(void)
{
    TEST("dequantisation of random blocks against the layout references");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        enum ggml_type t = types[ti];
        int be = (int)ggml_type_block_elems(t), nb = 64, n = be * nb;
        size_t bb = ggml_type_block_bytes(t);
        uint8_t *blk = malloc(bb * (size_t)nb);
        float *y = malloc(sizeof(float) * (size_t)n);
        rand_blocks(t, blk, nb);
        quant_dequant_row(t, blk, y, n);
        double maxerr = 0;
        for (int i = 0; i < n; i++) {
            double r = ref_elem(t, blk + bb * (size_t)(i / be), i % be);
            double e = fabs(r - y[i]) / (fabs(r) + 1e-6);
            if (e > maxerr) maxerr = e;
        }
        CHECKF(maxerr < 1e-6, "%s: max relative error %g", ggml_type_name(t), maxerr);
        free(blk);
        free(y);
    }
    /* F16 and BF16 rows: every half-precision value */
    uint8_t *h = malloc(2 * 65536);
    float *y = malloc(sizeof(float) * 65536);
    for (int i = 0; i < 65536; i++) put_half(h + 2 * i, (uint16_t)i);
    quant_dequant_row(GGML_TYPE_F16, h, y, 65536);
    int bad = 0;
    for (int i = 0; i < 65536; i++) {
        int e = (i >> 10) & 31;
        if (e == 31) { if ((i & 1023) ? !isnan(y[i]) : !isinf(y[i])) bad++; }
        else if ((double)y[i] != half_value((uint16_t)i)) bad++;
    }
    CHECKF(bad == 0, "%d halves decode wrongly", bad);
    quant_dequant_row(GGML_TYPE_BF16, h, y, 65536);
    bad = 0;
    for (int i = 0; i < 65536; i++) {
        /* bfloat16: the top 16 bits of a binary32 (sign, 8-bit exponent, 7-bit fraction) */
        int s = i >> 15, e = (i >> 7) & 255, f = i & 127;
        if (e == 255) continue;
        double v = e ? ldexp(1.0 + f / 128.0, e - 127) : ldexp(f / 128.0, -126);
        if ((double)y[i] != (s ? -v : v)) bad++;
    }
    CHECKF(bad == 0, "%d bfloat16 values decode wrongly", bad);
    free(h);
    free(y);
}

static void test_f16_round(void)
{
    TEST("float to half: exact values kept, nearest (ties to even) otherwise");
    int bad = 0;
    for (int i = 0; i < 65536; i++) {
        if (((i >> 10) & 31) == 31) continue;
        float v = (float)half_value((uint16_t)i);
        uint16_t h = quant_f32_to_f16(v);
        if (h != i && !(v == 0 && (h & 0x7fff) == 0)) bad++;
    }
    CHECKF(bad == 0, "%d exact halves not kept", bad);
    bad = 0;
    for (int k = 0; k < 200000; k++) {
        double v = (rndu() - 0.5) * ldexp(1.0, (int)(rnd() % 40) - 24);
        uint16_t h = quant_f32_to_f16((float)v);
        double got = half_value(h), err = fabs((float)v - got);
        /* no neighbouring half may be strictly closer */
        for (int d = -1; d <= 1; d += 2) {
            int nh = (int)h + d;
            if (nh < 0 || nh > 0xffff || ((nh >> 10) & 31) == 31 || (nh & 0x8000) != (h & 0x8000)) continue;
            if (fabs((float)v - half_value((uint16_t)nh)) < err) { bad++; break; }
        }
    }
    CHECKF(bad == 0, "%d random floats not rounded to the nearest half", bad);
    CHECK(quant_f32_to_f16(65520.0f) == 0x7c00);         /* rounds up past the largest half: inf */
    CHECK(quant_f32_to_f16(65519.0f) == 0x7bff);
    CHECK(quant_f32_to_f16(1.0f + ldexpf(1, -11)) == 0x3c00);   /* tie: to even */
    CHECK(quant_f32_to_f16(1.0f + 3 * ldexpf(1, -11)) == 0x3c02);
    CHECK(quant_f32_to_f16(ldexpf(1, -25)) == 0);        /* half of the smallest subnormal: to even (0) */
    CHECK(quant_f32_to_f16(ldexpf(1.5f, -25)) == 1);
    float tmp[37];
    uint16_t hh[37];
    for (int i = 0; i < 37; i++) tmp[i] = (float)((rndu() - 0.5) * 100);
    quant_f32_to_f16_row(tmp, hh, 37);
    bad = 0;
    for (int i = 0; i < 37; i++) if (hh[i] != quant_f32_to_f16(tmp[i])) bad++;
    CHECK(bad == 0);
}

/* the activations the quantised ones stand for */
static void act_values(enum ggml_type t, const void *a, double *x, int n)
{
    if (quant_act_type(t) == GGML_TYPE_Q8_1) {
        const struct quant_q8a *b = a;
        for (int i = 0; i < n; i++) x[i] = (double)b[i / 32].d * b[i / 32].qs[i % 32];
    } else {
        const struct quant_q8k *b = a;
        for (int i = 0; i < n; i++) x[i] = (double)b[i / 256].d * b[i / 256].qs[i % 256];
    }
}

static void test_act(void)
{
    TEST("activation quantisation: error within half a step, sums consistent");
    int n = 1024;
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) x[i] = (float)((rndu() - 0.5) * 8 * (1 + (i % 7)));
    for (int i = 0; i < 32; i++) x[i] = 0;   /* an all-zero block */
    for (int k = 0; k < 2; k++) {
        enum ggml_type t = k ? GGML_TYPE_Q4_K : GGML_TYPE_Q4_0;
        void *a = malloc(quant_act_bytes(t, n));
        double *xv = malloc(sizeof(double) * (size_t)n);
        quant_act(t, x, a, n);
        act_values(t, a, xv, n);
        int bad = 0;
        for (int i = 0; i < n; i++) {
            double d = k ? ((struct quant_q8k *)a)[i / 256].d : ((struct quant_q8a *)a)[i / 32].d;
            if (fabs(xv[i] - x[i]) > fabs(d) * 0.5001 + 1e-7) bad++;
        }
        CHECKF(bad == 0, "%s activations: %d values off by more than half a step", k ? "Q8_K" : "Q8_1", bad);
        bad = 0;
        if (k) {
            const struct quant_q8k *b = a;
            for (int g = 0; g < n / 16; g++) {
                int s = 0;
                for (int j = 0; j < 16; j++) s += b[g / 16].qs[(g % 16) * 16 + j];
                if (s != b[g / 16].bsums[g % 16]) bad++;
            }
        } else {
            const struct quant_q8a *b = a;
            for (int g = 0; g < n / 32; g++) {
                int s = 0;
                for (int j = 0; j < 32; j++) s += b[g].qs[j];
                if (fabs(b[g].s - b[g].d * s) > 1e-5 * (1 + fabs(b[g].s))) bad++;
                if (g == 0 && (b[g].d != 0 || s != 0)) bad++;
            }
        }
        CHECKF(bad == 0, "%s block sums wrong in %d blocks", k ? "Q8_K" : "Q8_1", bad);
        free(a);
        free(xv);
    }
    free(x);
}

/* the SIMD activation quantisers against the scalar ones, byte for byte:
 * blocks of zeros, of a largest magnitude reached twice with opposite signs
 * (the first sets the scale's sign; the other rounds to 128 and is clamped),
 * of values on the rounding ties, of tiny and of huge values, and random */
static void test_act_exact(void)
{
    TEST("activation quantisation: the SIMD quantisers equal the scalar ones byte for byte");
    if (!quant_simd()) { TEST_SKIP("no AVX2 on this CPU (or ISOPIPE_NO_SIMD): only the scalar quantisers run"); return; }
    int n = 256 * 8;
    float *x = malloc(sizeof(float) * (size_t)n);
    for (int i = 0; i < n; i++) x[i] = (float)((rndu() - 0.5) * 8 * (1 + (i % 7)));
    for (int i = 0; i < 256; i++) x[i] = 0;                          /* block 0: zeros */
    x[256 + 5] = -3.0f; x[256 + 100] = 3.0f;                          /* block 1: +-max, the first negative */
    for (int i = 256; i < 512; i++) if (fabsf(x[i]) > 2.9f && i != 256 + 5 && i != 256 + 100) x[i] = 1.0f;
    x[512 + 200] = 4.0f; x[512 + 7] = -4.0f;                          /* block 2: the same, the first negative again */
    for (int i = 512; i < 768; i++) if (fabsf(x[i]) > 3.9f && i != 512 + 200 && i != 512 + 7) x[i] = 0.5f;
    x[768] = 128.0f;                                                  /* block 3: scale 1, ties at k + 0.5 */
    for (int i = 769; i < 1024; i++) x[i] = (float)((i % 61) - 30) + 0.5f;
    for (int i = 1024; i < 1280; i++) x[i] = (float)((rndu() - 0.5) * 1e-30);   /* block 4: tiny */
    for (int i = 1280; i < 1536; i++) x[i] = (float)((rndu() - 0.5) * 1e30);    /* block 5: huge */
    int bad = 0;
    for (int k = 0; k < 2; k++) {
        enum ggml_type t = k ? GGML_TYPE_Q4_K : GGML_TYPE_Q4_0;
        size_t bytes = quant_act_bytes(t, n);
        void *a = calloc(1, bytes), *b = calloc(1, bytes);
        quant_act(t, x, a, n);
        quant_act_scalar(t, x, b, n);
        if (memcmp(a, b, bytes)) bad++;
        free(a); free(b);
    }
    CHECKF(bad == 0, "%d of the 2 activation formats differ from the scalar quantiser", bad);
    free(x);
}

static void test_dot(void)
{
    TEST("dot products (SIMD and scalar) against float64 sums of the references");
    printf("# SIMD kernels %s\n", quant_simd() == 2 ? "in use (AVX2/FMA/F16C, AVX-512 VNNI for Q4_0, Q5_0)"
                                   : quant_simd() ? "in use (AVX2/FMA/F16C)" : "not available: scalar only");
    for (size_t ti = 0; ti < sizeof types / sizeof types[0]; ti++) {
        enum ggml_type t = types[ti];
        int be = (int)ggml_type_block_elems(t), nb = 1536 / be, n = nb * be, rows = 8;
        size_t bb = ggml_type_block_bytes(t);
        uint8_t *w = malloc(bb * (size_t)nb * rows);
        float *x = malloc(sizeof(float) * (size_t)n);
        double *xv = malloc(sizeof(double) * (size_t)n);
        void *a = malloc(quant_act_bytes(t, n));
        rand_blocks(t, w, nb * rows);
        for (int i = 0; i < n; i++) x[i] = (float)((rndu() - 0.5) * 4);
        quant_act(t, x, a, n);
        act_values(t, a, xv, n);
        double worst = 0, worst_s = 0, worst_f = 0;
        for (int r = 0; r < rows; r++) {
            const uint8_t *wr = w + bb * (size_t)nb * r;
            double ref = 0, mag = 0, reff = 0, magf = 0;
            for (int i = 0; i < n; i++) {
                double wi = ref_elem(t, wr + bb * (size_t)(i / be), i % be);
                ref += wi * xv[i];
                mag += fabs(wi * xv[i]);
                reff += wi * x[i];
                magf += fabs(wi * x[i]);
            }
            double e = fabs(quant_dot(t, wr, a, n) - ref) / mag;
            double es = fabs(quant_dot_scalar(t, wr, a, n) - ref) / mag;
            double ef = fabs(quant_dot_f32act(t, wr, x, n) - reff) / magf;   /* the float-activation reference mode */
            if (e > worst) worst = e;
            if (es > worst_s) worst_s = es;
            if (ef > worst_f) worst_f = ef;
        }
        CHECKF(worst_f < 1e-5, "%s: float-activation dot relative error %g", ggml_type_name(t), worst_f);
        /* the row-range kernels (one token, four tokens) give quant_dot's values exactly */
        {
            size_t ab = quant_act_bytes(t, n), rbytes = bb * (size_t)nb;
            uint8_t *a4 = malloc(4 * ab);
            float *x4 = malloc(sizeof(float) * (size_t)n), y1[8], y4[4 * 8];
            for (int k = 0; k < 4; k++) {
                for (int i = 0; i < n; i++) x4[i] = (float)((rndu() - 0.5) * 4);
                quant_act(t, x4, a4 + (size_t)k * ab, n);
            }
            int exact = 1;
            quant_rows4(t, w, rbytes, 0, rows, a4, ab, n, y4, 8);
            for (int k = 0; k < 4; k++) {
                quant_rows(t, w, rbytes, 0, rows, a4 + (size_t)k * ab, n, y1);
                for (int r = 0; r < rows; r++) {
                    float d = quant_dot(t, w + rbytes * (size_t)r, a4 + (size_t)k * ab, n);
                    exact &= y1[r] == d && y4[k * 8 + r] == d;
                }
            }
            CHECKF(exact, "%s: row kernels differ from quant_dot", ggml_type_name(t));
            free(a4);
            free(x4);
        }
        CHECKF(worst < 1e-5, "%s: dot relative error %g", ggml_type_name(t), worst);
        CHECKF(worst_s < 1e-5, "%s: scalar dot relative error %g", ggml_type_name(t), worst_s);
        free(w); free(x); free(xv); free(a);
    }
    /* float weights, and the half-precision KV cache helpers */
    int n = 100;
    float *wf = malloc(sizeof(float) * n), *x = malloc(sizeof(float) * n), *y = calloc((size_t)n, sizeof(float));
    uint16_t *wh = malloc(2 * (size_t)n);
    double ref = 0, refh = 0, mag = 0;
    for (int i = 0; i < n; i++) {
        wf[i] = (float)(rndu() - 0.5);
        x[i] = (float)(rndu() - 0.5);
        wh[i] = rand_scale(1);
        ref += (double)wf[i] * x[i];
        refh += half_value(wh[i]) * x[i];
        mag += fabs(half_value(wh[i]) * x[i]);
    }
    CHECK_NEAR(quant_dot(GGML_TYPE_F32, wf, x, n), ref, 1e-5);
    CHECK_NEAR(quant_dot(GGML_TYPE_F16, wh, x, n), refh, 1e-5 * mag);
    CHECK_NEAR(quant_dot_f16(wh, x, n), refh, 1e-5 * mag);
    quant_axpy_f16(0.5f, wh, y, n);
    quant_axpy_f16(0.25f, wh, y, n);
    int bad = 0;
    for (int i = 0; i < n; i++) if (fabs(y[i] - 0.75 * half_value(wh[i])) > 1e-6) bad++;
    CHECK(bad == 0);
    free(wf); free(x); free(y); free(wh);
}

/* attention over the half-precision cache: the whole-head kernels give,
 * bit for bit, what quant_dot_f16 and quant_axpy_f16 give key by key (the
 * engine's results must not depend on which path ran), for head sizes that
 * are multiples of 64, of 8 only, and neither (the per-key fallback), key
 * counts around the kernels' steps of 4, a cache row wider than the head (a
 * head inside kv_dim), and nothing written past the head */
static void test_attn(void)
{
    TEST("attention over the f16 cache: whole-head kernels equal the per-key dot and axpy bit for bit");
    static const int hds[] = { 64, 128, 96, 40, 6 };
    static const int lens[] = { 1, 2, 3, 4, 5, 7, 9, 37 };
    int bad_sc = 0, bad_out = 0, bad_guard = 0;
    for (size_t a = 0; a < sizeof hds / sizeof *hds; a++)
        for (size_t b = 0; b < sizeof lens / sizeof *lens; b++) {
            int hd = hds[a], len = lens[b];
            size_t stride = (size_t)hd * 3 + 8;     /* three heads and a gap */
            uint16_t *k = malloc(2 * stride * (size_t)len), *v = malloc(2 * stride * (size_t)len);
            float *q = malloc(sizeof(float) * (size_t)hd), *p = malloc(sizeof(float) * (size_t)len);
            float *sc = malloc(sizeof(float) * (size_t)len), *ref = malloc(sizeof(float) * (size_t)len);
            float *o = malloc(sizeof(float) * (size_t)(hd + 8)), *oref = calloc((size_t)hd, sizeof(float));
            for (size_t i = 0; i < stride * (size_t)len; i++) { k[i] = rand_scale(1); v[i] = rand_scale(1); }
            for (int i = 0; i < hd; i++) q[i] = (float)(rndu() - 0.5);
            for (int j = 0; j < len; j++) p[j] = (float)rndu();
            for (int i = 0; i < hd + 8; i++) o[i] = 12345.0f;
            const uint16_t *kh = k + hd, *vh = v + hd;   /* the second head of each row */
            float scale = 0.125f, mul = 0.7f;
            quant_attn_scores_f16(kh, stride, len, q, hd, scale, sc);
            for (int j = 0; j < len; j++) ref[j] = quant_dot_f16(kh + (size_t)j * stride, q, hd) * scale;
            if (memcmp(sc, ref, sizeof(float) * (size_t)len)) bad_sc++;
            quant_attn_wsum_f16(p, mul, vh, stride, len, hd, o);
            for (int j = 0; j < len; j++) quant_axpy_f16(p[j] * mul, vh + (size_t)j * stride, oref, hd);
            if (memcmp(o, oref, sizeof(float) * (size_t)hd)) bad_out++;
            for (int i = hd; i < hd + 8; i++) if (o[i] != 12345.0f) bad_guard++;
            free(k); free(v); free(q); free(p); free(sc); free(ref); free(o); free(oref);
        }
    CHECKF(bad_sc == 0, "attention scores differ from the per-key dot in %d cases", bad_sc);
    CHECKF(bad_out == 0, "attention output differs from the per-key axpy in %d cases", bad_out);
    CHECKF(bad_guard == 0, "attention output written past the head (%d floats)", bad_guard);
}

/* Blocks whose scales are powers of two close together and activations the
 * same: every product and partial sum is an exactly representable float, so
 * any order of summation gives the same bits, and a SIMD kernel must equal
 * the scalar one exactly (a wrong integer sum cannot hide in rounding). */
int quant_rows_avx512(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa, int64_t n, float *y);
int quant_rows4_avx512(enum ggml_type t, const void *w, size_t row_bytes, int64_t r0, int64_t r1, const void *xa,
                       size_t xa_stride, int64_t n, float *y, size_t y_stride);
int quant_x8_rows_avx512(enum ggml_type t, const void *w8, int64_t n, int64_t g0, int64_t g1, const void *xa,
                         size_t xa_stride, int nt, float *y, size_t y_stride);

/* The AVX-512 kernels twice where SIMDe is installed (make deps-dev): natively
 * when this CPU has AVX-512 VNNI, and compiled on SIMDe's portable intrinsics
 * on any CPU, so that a machine without AVX-512 still checks their logic. */
#if defined(__has_include)
#if __has_include(<simde/x86/avx512.h>)
/* at -O1: SIMDe's thousands of inline functions at -O2 cost a minute of
 * compile time (three under ASan) for test code that runs in milliseconds */
#pragma GCC push_options
#pragma GCC optimize("O1")
#include "quant_avx512_emu.h"
#include "quant_avx512.c"
#pragma GCC pop_options
#endif
#endif
struct avx512_impl {
    const char *name;
    int (*rows)(enum ggml_type, const void *, size_t, int64_t, int64_t, const void *, int64_t, float *);
    int (*rows4)(enum ggml_type, const void *, size_t, int64_t, int64_t, const void *, size_t, int64_t, float *, size_t);
    int (*x8)(enum ggml_type, const void *, int64_t, int64_t, int64_t, const void *, size_t, int, float *, size_t);
};
static int avx512_impls(struct avx512_impl *im)
{
    int n = 0;
    if (quant_simd() == 2) im[n++] = (struct avx512_impl){ "AVX-512 (native)", quant_rows_avx512, quant_rows4_avx512, quant_x8_rows_avx512 };
#ifdef QUANT_AVX512_EMULATED
    im[n++] = (struct avx512_impl){ "AVX-512 (SIMDe emulation)", emu_quant_rows_avx512, emu_quant_rows4_avx512,
                                      emu_quant_x8_rows_avx512 };
#endif
    return n;
}
static void avx512_note(void)
{
    struct avx512_impl im[2];
    int n = avx512_impls(im);
    if (quant_simd() != 2) printf("# this CPU has no AVX-512 VNNI: the AVX-512 kernels are checked %s\n",
                                  n ? "under SIMDe's emulation" : "nowhere");
#ifndef QUANT_AVX512_EMULATED
    TEST_SKIP("SIMDe's headers (libsimde-dev; make deps-dev) are missing: the AVX-512 kernels are not checked under emulation");
#endif
}

static void test_exact(void)
{
    TEST("SIMD dot products equal the scalar ones bit for bit (exactly representable sums)");
    avx512_note();
    static const enum ggml_type q32[] = { GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q5_1, GGML_TYPE_Q8_0 };
    for (size_t ti = 0; ti < sizeof q32 / sizeof *q32; ti++) {
        enum ggml_type t = q32[ti];
        int nb = 7, n = nb * QK, rows = 5;   /* an odd block count: the AVX-512 kernels' lone last block */
        size_t bb = ggml_type_block_bytes(t), rbytes = bb * (size_t)nb;
        uint8_t *w = malloc(rbytes * (size_t)rows);
        struct quant_q8a *x = malloc(sizeof *x * (size_t)nb * 4);
        rand_blocks(t, w, nb * rows);
        for (int b = 0; b < nb * rows; b++) {   /* d (and m) = +-2^-4 or +-2^-5 */
            uint8_t *p = w + bb * (size_t)b;
            uint16_t d = (uint16_t)((rnd() & 1 ? 0x2C00 : 0x2800) | (rnd() & 1 ? 0x8000 : 0));
            p[0] = (uint8_t)d; p[1] = (uint8_t)(d >> 8);
            if (t == GGML_TYPE_Q4_1 || t == GGML_TYPE_Q5_1) {
                uint16_t m = (uint16_t)((rnd() & 1 ? 0x2C00 : 0x2800) | (rnd() & 1 ? 0x8000 : 0));
                p[2] = (uint8_t)m; p[3] = (uint8_t)(m >> 8);
            }
        }
        for (int b = 0; b < nb * 4; b++) {
            int sum = 0;
            for (int j = 0; j < QK; j++) { x[b].qs[j] = (int8_t)((int)(rnd() % 255) - 127); sum += x[b].qs[j]; }
            x[b].d = rnd() & 1 ? 0.125f : 0.0625f;
            x[b].s = x[b].d * (float)sum;
        }
        int same = 1;
        float y1[5], y4[4 * 5];
        quant_rows4(t, w, rbytes, 0, rows, x, sizeof *x * (size_t)nb, n, y4, 5);
        for (int k = 0; k < 4; k++) {
            quant_rows(t, w, rbytes, 0, rows, x + k * nb, n, y1);
            for (int r = 0; r < rows; r++) {
                float ref = quant_dot_scalar(t, w + rbytes * (size_t)r, x + k * nb, n);
                same &= quant_dot(t, w + rbytes * (size_t)r, x + k * nb, n) == ref && y1[r] == ref && y4[k * 5 + r] == ref;
            }
        }
        CHECKF(same, "%s: a SIMD kernel differs from the scalar one", ggml_type_name(t));
        /* every AVX-512 kernel, also those quant.c does not pick (Q4_1, Q5_1, Q8_0) */
        struct avx512_impl im[2];
        for (int i = 0, ni = avx512_impls(im); i < ni; i++) {
            int ok = 1;
            for (int k = 0; k < 4; k++) {
                for (int r = 0; r < rows; r++) y1[r] = -1e30f;
                ok &= im[i].rows(t, w, rbytes, 0, rows, x + k * nb, n, y1);
                for (int r = 0; r < rows; r++) ok &= y1[r] == quant_dot_scalar(t, w + rbytes * (size_t)r, x + k * nb, n);
            }
            for (int r = 0; r < 4 * 5; r++) y4[r] = -1e30f;
            ok &= im[i].rows4(t, w, rbytes, 0, rows, x, sizeof *x * (size_t)nb, n, y4, 5);
            for (int k = 0; k < 4; k++)
                for (int r = 0; r < rows; r++) ok &= y4[k * 5 + r] == quant_dot_scalar(t, w + rbytes * (size_t)r, x + k * nb, n);
            CHECKF(ok, "%s: the %s kernel differs from the scalar one", ggml_type_name(t), im[i].name);
        }
        free(w);
        free(x);
    }
}

/* the packed kernel f (quant_x8_rows or an AVX-512 one) on groups [g0, rows/8)
 * for 1 .. ntok tokens equals the scalar dot products of the original rows
 * exactly and writes nothing else; 0 if f declined the type */
typedef int (*x8_fn)(enum ggml_type, const void *, int64_t, int64_t, int64_t, const void *, size_t, int, float *, size_t);
static int x8_kernel_exact(x8_fn f, enum ggml_type t, const uint8_t *w, const uint8_t *w8, const void *xa, size_t xs,
                           int n, int rows, int g0, int ntok)
{
    size_t rbytes = quant_row_bytes(t, n);
    float *y = malloc(sizeof(float) * (size_t)rows * (size_t)ntok);
    int same = 1;
    for (int nt = 1; nt <= ntok; nt++) {
        for (size_t i = 0; i < (size_t)rows * (size_t)ntok; i++) y[i] = -1e30f;
        if (f) same &= f(t, w8, n, g0, rows / 8, xa, xs, nt, y, (size_t)rows);
        else quant_x8_rows(t, w8, n, g0, rows / 8, xa, xs, nt, y, (size_t)rows);
        for (int k = 0; k < ntok; k++)
            for (int r = 0; r < rows; r++) {
                float ref = quant_dot_scalar(t, w + rbytes * (size_t)r, (const uint8_t *)xa + (size_t)k * xs, n);
                int in = k < nt && r >= 8 * g0;
                same &= in ? y[(size_t)k * rows + r] == ref : y[(size_t)k * rows + r] == -1e30f;
            }
    }
    free(y);
    return same;
}

/* The x8 layout (eight rows interleaved): packing is a permutation that
 * dequantises to the same rows, and the packed kernels equal the scalar dot
 * products bit for bit on exactly representable sums, for 1 to 9 tokens (the
 * 4-token steps and every remainder) and a sub-range of groups. */
static void test_x8(void)
{
    TEST("x8 layout: packed rows dequantise to the originals; packed kernels equal the scalar dots exactly");
    static const enum ggml_type q32[] = { GGML_TYPE_Q4_0, GGML_TYPE_Q4_1, GGML_TYPE_Q5_0, GGML_TYPE_Q8_0 };
    if (!quant_x8_usable(GGML_TYPE_Q4_1)) { TEST_SKIP("this CPU has no AVX2: the engine never packs (scalar kernels only)"); return; }
    CHECK(!quant_x8_usable(GGML_TYPE_Q5_1) && !quant_x8_usable(GGML_TYPE_Q5_K) && quant_x8_usable(GGML_TYPE_Q4_K) &&
          quant_x8_usable(GGML_TYPE_Q6_K));
    for (size_t ti = 0; ti < sizeof q32 / sizeof *q32; ti++) {
        enum ggml_type t = q32[ti];
        int nb = 7, n = nb * QK, rows = 24, ntok = 9;
        size_t bb = ggml_type_block_bytes(t), rbytes = bb * (size_t)nb;
        uint8_t *w = malloc(rbytes * (size_t)rows), *w8 = malloc(rbytes * (size_t)rows);
        struct quant_q8a *x = malloc(sizeof *x * (size_t)nb * (size_t)ntok);
        float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
        rand_blocks(t, w, nb * rows);
        for (int k = 0; k < nb * rows; k++) {   /* d (and m) = +-2^-4 or +-2^-5 */
            uint8_t *p = w + bb * (size_t)k;
            uint16_t d = (uint16_t)((rnd() & 1 ? 0x2C00 : 0x2800) | (rnd() & 1 ? 0x8000 : 0));
            p[0] = (uint8_t)d; p[1] = (uint8_t)(d >> 8);
            if (t == GGML_TYPE_Q4_1) { uint16_t m = (uint16_t)(d ^ 0x0400); p[2] = (uint8_t)m; p[3] = (uint8_t)(m >> 8); }
        }
        for (int k = 0; k < nb * ntok; k++) {
            int sum = 0;
            for (int j = 0; j < QK; j++) { x[k].qs[j] = (int8_t)((int)(rnd() % 255) - 127); sum += x[k].qs[j]; }
            x[k].d = rnd() & 1 ? 0.125f : 0.0625f;
            x[k].s = x[k].d * (float)sum;
        }
        memset(w8, 0xA5, rbytes * (size_t)rows);
        quant_x8_pack(t, w, n, 0, 1, w8);          /* in two calls: the group range is honoured */
        quant_x8_pack(t, w, n, 1, rows / 8, w8);
        int same_rows = 1, same = 1, perm = 1;
        for (int r = 0; r < rows; r++) {
            quant_dequant_row(t, w + rbytes * (size_t)r, a, n);
            quant_x8_dequant_row(t, w8, n, r, b);
            same_rows &= memcmp(a, b, sizeof(float) * (size_t)n) == 0;
        }
        /* a permutation: the same multiset of bytes in every group */
        for (int g = 0; g < rows / 8; g++) {
            int ca[256] = { 0 }, cb[256] = { 0 };
            for (size_t i = 0; i < 8 * rbytes; i++) { ca[w[g * 8 * rbytes + i]]++; cb[w8[g * 8 * rbytes + i]]++; }
            if (t != GGML_TYPE_Q5_0) perm &= memcmp(ca, cb, sizeof ca) == 0;   /* Q5_0 reorders bits within its words */
        }
        same = x8_kernel_exact(NULL, t, w, w8, x, sizeof *x * (size_t)nb, n, rows, 1, ntok);
        CHECKF(same_rows, "%s: a packed row dequantises differently", ggml_type_name(t));
        CHECKF(perm, "%s: packing is not a permutation of the bytes", ggml_type_name(t));
        CHECKF(same, "%s: a packed kernel differs from the scalar dot (or wrote outside its rows/tokens)", ggml_type_name(t));
        /* the AVX-512 packed kernels (all but Q8_0), on 3 groups from 1 (a pair) and from 0 (a pair and a lone group) */
        struct avx512_impl im[2];
        for (int i = 0, ni = t == GGML_TYPE_Q8_0 ? 0 : avx512_impls(im); i < ni; i++)
            CHECKF(x8_kernel_exact(im[i].x8, t, w, w8, x, sizeof *x * (size_t)nb, n, rows, 1, ntok) &&
                   x8_kernel_exact(im[i].x8, t, w, w8, x, sizeof *x * (size_t)nb, n, rows, 0, ntok),
                   "%s: the %s packed kernel differs from the scalar dot (or wrote outside its rows/tokens)",
                   ggml_type_name(t), im[i].name);
        free(w); free(w8); free(x); free(a); free(b);
    }
}

/* The same for Q4_K and Q6_K against Q8_K activations: packing unpacks to
 * the same super-blocks (scales re-encoded), and the packed kernel equals the
 * scalar dot exactly. Q4_K: when d = dmin are powers of two and the sub-block
 * scales small enough that every float difference is exact. Q6_K: always
 * (the same integer sum and the same float steps), so its scales are the
 * file's full int8 range, -128 included, and d any finite f16. */
static void test_x8_k(enum ggml_type t)
{
    printf("# x8 layout, %s: packed rows dequantise to the originals; the packed kernel equals the scalar dot exactly\n",
           ggml_type_name(t));
    if (!quant_x8_usable(t)) { TEST_SKIP("this CPU has no AVX2: the engine never packs (scalar kernels only)"); return; }
    int nb = 3, n = nb * QK_K, rows = 24, ntok = 6;
    size_t bb = ggml_type_block_bytes(t), rbytes = bb * (size_t)nb, pbytes = quant_x8_bytes(t, n, rows);
    CHECK(pbytes == (size_t)(rows / 8) * (size_t)nb * (t == GGML_TYPE_Q4_K ? 1184 : 8 * 210));
    uint8_t *w = malloc(rbytes * (size_t)rows), *w8 = malloc(pbytes);
    struct quant_q8k *x = malloc(sizeof *x * (size_t)nb * (size_t)ntok);
    float *a = malloc(sizeof(float) * (size_t)n), *b = malloc(sizeof(float) * (size_t)n);
    rand_blocks(t, w, nb * rows);
    for (int k = 0; k < nb * rows; k++) {
        uint8_t *p = w + bb * (size_t)k;
        if (t == GGML_TYPE_Q6_K) {
            uint16_t d = (uint16_t)(rnd() & 0x7BFF);   /* exponent below 31: finite, sign random */
            p[208] = (uint8_t)d; p[209] = (uint8_t)(d >> 8);
            if (k % 5 == 0) p[192 + k % 16] = 0x80;    /* the scale -128 */
            continue;
        }
        uint16_t d = (uint16_t)((rnd() & 1 ? 0x2C00 : 0x2800) | (rnd() & 1 ? 0x8000 : 0));
        p[0] = p[2] = (uint8_t)d; p[1] = p[3] = (uint8_t)(d >> 8);
        for (int j = 0; j < 12; j++) p[4 + j] &= j < 8 ? 0x0F : 0x00;   /* 6-bit scales and mins below 16 */
    }
    for (int k = 0; k < nb * ntok; k++) {
        for (int j = 0; j < QK_K; j++) x[k].qs[j] = (int8_t)((int)(rnd() % 255) - 127);
        for (int j = 0; j < QK_K / 16; j++) {
            int s16 = 0;
            for (int i = 0; i < 16; i++) s16 += x[k].qs[16 * j + i];
            x[k].bsums[j] = (int16_t)s16;
        }
        x[k].d = rnd() & 1 ? 0.125f : 0.0625f;
    }
    quant_x8_pack(t, w, n, 0, rows / 8, w8);
    int same_rows = 1, same = 1;
    for (int r = 0; r < rows; r++) {
        quant_dequant_row(t, w + rbytes * (size_t)r, a, n);
        quant_x8_dequant_row(t, w8, n, r, b);
        same_rows &= memcmp(a, b, sizeof(float) * (size_t)n) == 0;
    }
    same = x8_kernel_exact(NULL, t, w, w8, x, sizeof *x * (size_t)nb, n, rows, 0, ntok);
    CHECKF(same_rows, "%s: a packed row dequantises differently", ggml_type_name(t));
    CHECKF(same, "%s: the packed kernel differs from the scalar dot (or wrote outside its rows/tokens)", ggml_type_name(t));
    /* the AVX-512 packed kernel: 3 groups from 0 (a pair and a lone group) and from 1 (a pair) */
    struct avx512_impl im[2];
    for (int i = 0, ni = avx512_impls(im); i < ni; i++)
        CHECKF(x8_kernel_exact(im[i].x8, t, w, w8, x, sizeof *x * (size_t)nb, n, rows, 0, ntok) &&
               x8_kernel_exact(im[i].x8, t, w, w8, x, sizeof *x * (size_t)nb, n, rows, 1, ntok),
               "%s: the %s packed kernel differs from the scalar dot (or wrote outside its rows/tokens)",
               ggml_type_name(t), im[i].name);
    free(w); free(w8); free(x); free(a); free(b);
}

int main(void)
{
    quant_init();
    test_dequant();
    test_f16_round();
    test_act();
    test_act_exact();
    test_dot();
    test_attn();
    test_exact();
    test_x8();
    test_x8_k(GGML_TYPE_Q4_K);
    test_x8_k(GGML_TYPE_Q6_K);
    return test_report();
}
