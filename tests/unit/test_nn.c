/* test_nn.c — the nn core against naive float64 references written here
 * (independent of OpenBLAS, im2col and the tiling): every op at odd sizes,
 * several thread counts, f32/bf16/f16/fp8 weights; and the scalar dtype
 * conversions against their definitions. Tolerances: relative max error
 * 2e-5 for float32 ops (float32 accumulation over K <= 300 terms), exact for
 * the conversions. Where the CPU has AMX the bf16/fp8 linear runs there:
 * it is checked in every precision mode, against the float32 path
 * (ISOPIPE_NN_AMX=0) and across thread counts; the vectorised exp of
 * GELU/SiLU/softmax is checked element by element. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "nn.h"
#include "test.h"

static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}
static float *randv(size_t n)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = frand();
    return v;
}
/* max |a-b| / max |b| */
static double relerr(const float *a, const double *b, size_t n)
{
    double e = 0, m = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        if (d > e || isnan(d)) e = isnan(d) ? INFINITY : d;
        if (fabs(b[i]) > m) m = fabs(b[i]);
    }
    return e / m;
}
static struct nn_w W32(const float *p) { struct nn_w w = { p, WT_F32, 1.0f }; return w; }

static void test_linear(struct nn *nn)
{
    int rows = 37, in = 53, out = 29;
    float *x = randv((size_t)rows * in), *w = randv((size_t)out * in), *b = randv(out);
    float *y = calloc((size_t)rows * out, 4);
    double *ref = calloc((size_t)rows * out, 8);
    /* bf16 weights: the reference uses the same rounded values */
    uint16_t *wb = malloc((size_t)out * in * 2);
    float *wr = malloc((size_t)out * in * 4);
    for (int i = 0; i < out * in; i++) { wb[i] = wt_f32_to_bf16(w[i]); wr[i] = wt_bf16_to_f32(wb[i]); }
    for (int pass = 0; pass < 2; pass++) {
        const float *wu = pass ? wr : w;
        for (int r = 0; r < rows; r++)
            for (int o = 0; o < out; o++) {
                double s = b[o];
                for (int i = 0; i < in; i++) s += (double)x[r * in + i] * wu[o * in + i];
                ref[r * out + o] = s;
            }
        struct nn_w W = pass ? (struct nn_w){ wb, WT_BF16, 1.0f } : W32(w), B = W32(b);
        nn_linear(nn, y, x, rows, in, out, &W, &B);
        double e = relerr(y, ref, (size_t)rows * out);
        CHECKF(e < 2e-5, "linear (%s weights): rel err %.3g", pass ? "bf16" : "f32", e);
    }
    /* scaled fp8: scale multiplies every element */
    uint8_t *w8 = malloc((size_t)out * in);
    for (int i = 0; i < out * in; i++) w8[i] = (uint8_t)(rng >> (i % 40)) & 0x7e; /* no NaN codes */
    struct nn_w W8 = { w8, WT_F8_E4M3, 0.25f };
    nn_linear(nn, y, x, rows, in, out, &W8, NULL);
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double s = 0;
            for (int i = 0; i < in; i++) s += (double)x[r * in + i] * wt_e4m3_to_f32(w8[o * in + i]) * 0.25;
            ref[r * out + o] = s;
        }
    double e = relerr(y, ref, (size_t)rows * out);
    CHECKF(e < 2e-5, "linear (scaled fp8 weights): rel err %.3g", e);
    free(x); free(w); free(b); free(y); free(ref); free(wb); free(wr); free(w8);
}

static void test_norms(struct nn *nn)
{
    int rows = 19, d = 77;
    float *x = randv((size_t)rows * d), *g = randv(d), *b = randv(d), *y = calloc((size_t)rows * d, 4);
    double *ref = calloc((size_t)rows * d, 8);
    for (int i = 0; i < rows * d; i++) x[i] = x[i] * 3 + 0.5f;
    for (int rms = 0; rms < 2; rms++) {
        for (int r = 0; r < rows; r++) {
            double m = 0, v = 0;
            if (!rms) { for (int i = 0; i < d; i++) m += x[r * d + i]; m /= d; }
            for (int i = 0; i < d; i++) v += (x[r * d + i] - m) * (x[r * d + i] - m);
            v /= d;
            for (int i = 0; i < d; i++)
                ref[r * d + i] = (x[r * d + i] - m) / sqrt(v + 1e-6) * g[i] + (rms ? 0 : b[i]);
        }
        struct nn_w G = W32(g), B = W32(b);
        if (rms) nn_rmsnorm(nn, y, x, rows, d, &G, 1e-6f);
        else nn_layernorm(nn, y, x, rows, d, &G, &B, 1e-6f);
        double e = relerr(y, ref, (size_t)rows * d);
        CHECKF(e < 2e-6, "%s: rel err %.3g", rms ? "rmsnorm" : "layernorm", e);
    }
    /* channel-first RMS (Wan VAE) and group norm over [C, S] */
    int C = 12; size_t S = 31;
    float *xc = randv(C * S), *yc = calloc(C * S, 4);
    double *rc = calloc(C * S, 8);
    for (size_t s = 0; s < S; s++) {
        double n = 0;
        for (int c = 0; c < C; c++) n += (double)xc[c * S + s] * xc[c * S + s];
        n = sqrt(n);
        for (int c = 0; c < C; c++) rc[c * S + s] = xc[c * S + s] / n * sqrt((double)C) * g[c] + b[c];
    }
    struct nn_w G = W32(g), B = W32(b);
    nn_rmsnorm_channels(nn, yc, xc, C, S, &G, &B, 1e-12f);
    double e = relerr(yc, rc, C * S);
    CHECKF(e < 2e-6, "rmsnorm_channels: rel err %.3g", e);
    int Gn = 4, cpg = C / Gn;
    for (int gi = 0; gi < Gn; gi++) {
        double m = 0, v = 0;
        for (int c = gi * cpg; c < (gi + 1) * cpg; c++) for (size_t s = 0; s < S; s++) m += xc[c * S + s];
        m /= cpg * (double)S;
        for (int c = gi * cpg; c < (gi + 1) * cpg; c++)
            for (size_t s = 0; s < S; s++) v += (xc[c * S + s] - m) * (xc[c * S + s] - m);
        v /= cpg * (double)S;
        for (int c = gi * cpg; c < (gi + 1) * cpg; c++)
            for (size_t s = 0; s < S; s++) rc[c * S + s] = (xc[c * S + s] - m) / sqrt(v + 1e-5) * g[c] + b[c];
    }
    nn_groupnorm(nn, yc, xc, C, S, Gn, &G, &B, 1e-5f);
    e = relerr(yc, rc, C * S);
    CHECKF(e < 2e-6, "groupnorm: rel err %.3g", e);
    free(x); free(g); free(b); free(y); free(ref); free(xc); free(yc); free(rc);
}

static void test_act(struct nn *nn)
{
    size_t n = 10001;
    float *x = randv(n), *y = calloc(n, 4);
    double *ref = calloc(n, 8);
    for (size_t i = 0; i < n; i++) x[i] *= 6;
    for (int a = 0; a < 4; a++) {
        for (size_t i = 0; i < n; i++) {
            double v = x[i];
            ref[i] = a == NN_ACT_GELU_TANH ? 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)))
                   : a == NN_ACT_GELU_ERF ? 0.5 * v * (1 + erf(v / sqrt(2.0)))
                   : a == NN_ACT_SILU ? v / (1 + exp(-v)) : (v > 0 ? v : 0);
        }
        nn_act(nn, y, x, n, (enum nn_act)a);
        double e = relerr(y, ref, n);
        CHECKF(e < 1e-6, "activation %d: rel err %.3g", a, e);
    }
    free(x); free(y); free(ref);
}

static void test_attention(struct nn *nn)
{
    int Lq = 23, Lk = 31, H = 3, D = 10, kv = 27;
    float *q = randv((size_t)Lq * H * D), *k = randv((size_t)Lk * H * D), *v = randv((size_t)Lk * H * D);
    float *bias = randv((size_t)H * Lq * Lk), *o = calloc((size_t)Lq * H * D, 4);
    double *ref = calloc((size_t)Lq * H * D, 8), *p = calloc(Lk, 8);
    for (int withb = 0; withb < 2; withb++) {
        float sc = withb ? 1.0f : 0.3162f;
        for (int h = 0; h < H; h++)
            for (int i = 0; i < Lq; i++) {
                double m = -1e300, s = 0;
                for (int j = 0; j < kv; j++) {
                    double d = 0;
                    for (int c = 0; c < D; c++) d += (double)q[(i * H + h) * D + c] * k[(j * H + h) * D + c];
                    p[j] = d * sc + (withb ? bias[((size_t)h * Lq + i) * Lk + j] : 0);
                    if (p[j] > m) m = p[j];
                }
                for (int j = 0; j < kv; j++) { p[j] = exp(p[j] - m); s += p[j]; }
                for (int c = 0; c < D; c++) {
                    double a = 0;
                    for (int j = 0; j < kv; j++) a += p[j] / s * v[(j * H + h) * D + c];
                    ref[(i * H + h) * D + c] = a;
                }
            }
        nn_attention(nn, o, q, k, v, Lq, Lk, H, D, sc, withb ? bias : NULL, kv);
        double e = relerr(o, ref, (size_t)Lq * H * D);
        CHECKF(e < 2e-6, "attention (bias %d): rel err %.3g", withb, e);
    }
    free(q); free(k); free(v); free(bias); free(o); free(ref); free(p);
}

static void test_rope(struct nn *nn)
{
    int L = 5, H = 2, D = 8;
    float *x = randv((size_t)L * H * D), *x0 = malloc((size_t)L * H * D * 4);
    float *c = malloc((size_t)L * D / 2 * 4), *s = malloc((size_t)L * D / 2 * 4);
    double *ref = calloc((size_t)L * H * D, 8);
    for (int l = 0; l < L; l++)
        for (int i = 0; i < D / 2; i++) {
            double th = l * pow(10000.0, -2.0 * i / D);
            c[l * D / 2 + i] = (float)cos(th); s[l * D / 2 + i] = (float)sin(th);
        }
    for (int inter = 0; inter < 2; inter++) {
        memcpy(x0, x, (size_t)L * H * D * 4);
        for (int l = 0; l < L; l++)
            for (int h = 0; h < H; h++)
                for (int i = 0; i < D / 2; i++) {
                    int a = inter ? 2 * i : i, b = inter ? 2 * i + 1 : i + D / 2;
                    size_t base = ((size_t)l * H + h) * D;
                    double cc = c[l * D / 2 + i], ss = s[l * D / 2 + i];
                    ref[base + a] = x[base + a] * cc - x[base + b] * ss;
                    ref[base + b] = x[base + a] * ss + x[base + b] * cc;
                }
        nn_rope(nn, x0, L, H, D, c, s, inter);
        double e = relerr(x0, ref, (size_t)L * H * D);
        CHECKF(e < 1e-6, "rope (interleaved %d): rel err %.3g", inter, e);
    }
    free(x); free(x0); free(c); free(s); free(ref);
}

static void test_conv(struct nn *nn)
{
    /* conv2d: stride, padding, dilation, groups; f16 weights */
    struct { int C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, g; } cs[] = {
        { 3, 11, 13, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1 }, { 4, 9, 7, 6, 3, 2, 2, 1, 1, 0, 1, 1, 1 },
        { 6, 10, 10, 4, 3, 3, 1, 2, 2, 1, 2, 1, 2 }, { 5, 8, 9, 7, 1, 1, 1, 1, 0, 0, 1, 1, 1 },
    };
    for (size_t t = 0; t < sizeof cs / sizeof cs[0]; t++) {
        int C = cs[t].C, H = cs[t].H, W = cs[t].W, O = cs[t].O, kh = cs[t].kh, kw = cs[t].kw, g = cs[t].g;
        int Ho = (H + 2 * cs[t].ph - cs[t].dh * (kh - 1) - 1) / cs[t].sh + 1;
        int Wo = (W + 2 * cs[t].pw - cs[t].dw * (kw - 1) - 1) / cs[t].sw + 1;
        int cg = C / g, og = O / g;
        float *x = randv((size_t)C * H * W), *wf = randv((size_t)O * cg * kh * kw), *b = randv(O);
        uint16_t *wh = malloc((size_t)O * cg * kh * kw * 2);
        for (int i = 0; i < O * cg * kh * kw; i++) { wh[i] = wt_f32_to_f16(wf[i]); wf[i] = wt_f16_to_f32(wh[i]); }
        float *y = calloc((size_t)O * Ho * Wo, 4);
        double *ref = calloc((size_t)O * Ho * Wo, 8);
        for (int o = 0; o < O; o++)
            for (int oy = 0; oy < Ho; oy++)
                for (int ox = 0; ox < Wo; ox++) {
                    double s = b[o];
                    int gi = o / og;
                    for (int c = 0; c < cg; c++)
                        for (int dy = 0; dy < kh; dy++)
                            for (int dx = 0; dx < kw; dx++) {
                                int iy = oy * cs[t].sh - cs[t].ph + dy * cs[t].dh, ix = ox * cs[t].sw - cs[t].pw + dx * cs[t].dw;
                                if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                s += (double)x[((size_t)(gi * cg + c) * H + iy) * W + ix] *
                                     wf[(((size_t)o * cg + c) * kh + dy) * kw + dx];
                            }
                    ref[((size_t)o * Ho + oy) * Wo + ox] = s;
                }
        struct nn_w Wt = { wh, WT_F16, 1.0f }, B = W32(b);
        nn_conv2d(nn, y, x, C, H, W, &Wt, &B, O, kh, kw, cs[t].sh, cs[t].sw, cs[t].ph, cs[t].pw, cs[t].dh, cs[t].dw, g);
        double e = relerr(y, ref, (size_t)O * Ho * Wo);
        CHECKF(e < 2e-5, "conv2d case %zu: rel err %.3g", t, e);
        free(x); free(wf); free(b); free(wh); free(y); free(ref);
    }
    /* transposed conv, 4x4 stride 2 pad 1 (RIFE's upsampler); the second
     * size needs two slices of input rows (O*16*W floats a row: 64 rows of
     * 256 fill nn's 64 MiB slice) */
    static const int tsz[2][4] = { { 5, 6, 7, 3 }, { 2, 70, 256, 64 } };
    for (int ts = 0; ts < 2; ts++) {
        int C = tsz[ts][0], H = tsz[ts][1], W = tsz[ts][2], O = tsz[ts][3], k = 4, s = 2, p = 1;
        int Ho = (H - 1) * s - 2 * p + k, Wo = (W - 1) * s - 2 * p + k;
        float *x = randv((size_t)C * H * W), *w = randv((size_t)C * O * k * k), *b = randv(O);
        float *y = calloc((size_t)O * Ho * Wo, 4);
        double *ref = calloc((size_t)O * Ho * Wo, 8);
        for (int o = 0; o < O; o++) for (int i = 0; i < Ho * Wo; i++) ref[o * Ho * Wo + i] = b[o];
        for (int c = 0; c < C; c++)
            for (int iy = 0; iy < H; iy++)
                for (int ix = 0; ix < W; ix++)
                    for (int o = 0; o < O; o++)
                        for (int dy = 0; dy < k; dy++)
                            for (int dx = 0; dx < k; dx++) {
                                int oy = iy * s - p + dy, ox = ix * s - p + dx;
                                if (oy < 0 || oy >= Ho || ox < 0 || ox >= Wo) continue;
                                ref[((size_t)o * Ho + oy) * Wo + ox] +=
                                    (double)x[((size_t)c * H + iy) * W + ix] * w[(((size_t)c * O + o) * k + dy) * k + dx];
                            }
        struct nn_w Wt = W32(w), B = W32(b);
        nn_conv_transpose2d(nn, y, x, C, H, W, &Wt, &B, O, k, k, s, s, p, p);
        double e = relerr(y, ref, (size_t)O * Ho * Wo);
        CHECKF(e < 2e-5, "conv_transpose2d %dx%dx%d -> %d: rel err %.3g", C, H, W, O, e);
        free(x); free(w); free(b); free(y); free(ref);
    }
    /* conv3d 3x3x3, temporal stride 2 */
    {
        int C = 4, T = 7, H = 6, W = 5, O = 3, kt = 3, k = 3, st = 2;
        int To = (T - kt) / st + 1;
        float *x = randv((size_t)C * T * H * W), *w = randv((size_t)O * C * kt * k * k), *b = randv(O);
        float *y = calloc((size_t)O * To * H * W, 4);
        double *ref = calloc((size_t)O * To * H * W, 8);
        for (int o = 0; o < O; o++)
            for (int to = 0; to < To; to++)
                for (int oy = 0; oy < H; oy++)
                    for (int ox = 0; ox < W; ox++) {
                        double s = b[o];
                        for (int c = 0; c < C; c++)
                            for (int dt = 0; dt < kt; dt++)
                                for (int dy = 0; dy < k; dy++)
                                    for (int dx = 0; dx < k; dx++) {
                                        int iy = oy - 1 + dy, ix = ox - 1 + dx, it = to * st + dt;
                                        if (iy < 0 || iy >= H || ix < 0 || ix >= W) continue;
                                        s += (double)x[(((size_t)c * T + it) * H + iy) * W + ix] *
                                             w[((((size_t)o * C + c) * kt + dt) * k + dy) * k + dx];
                                    }
                        ref[(((size_t)o * To + to) * H + oy) * W + ox] = s;
                    }
        struct nn_w Wt = W32(w), B = W32(b);
        nn_conv3d(nn, y, x, C, T, H, W, &Wt, &B, O, kt, k, k, st, 1, 1, 1, 1);
        double e = relerr(y, ref, (size_t)O * To * H * W);
        CHECKF(e < 2e-5, "conv3d: rel err %.3g", e);
        free(x); free(w); free(b); free(y); free(ref);
    }
}

static void test_elementwise(struct nn *nn)
{
    int rows = 9, d = 13;
    float *x = randv((size_t)rows * d), *y = randv((size_t)rows * d), *sh = randv(d), *sc = randv(d);
    float *out = calloc((size_t)rows * d, 4), *x2 = malloc((size_t)rows * d * 4);
    double *ref = calloc((size_t)rows * d, 8);
    for (int i = 0; i < rows * d; i++) ref[i] = (double)x[i] * (1 + sc[i % d]) + sh[i % d];
    nn_modulate(nn, out, x, rows, d, sh, sc);
    CHECK(relerr(out, ref, (size_t)rows * d) < 1e-6);
    memcpy(x2, x, (size_t)rows * d * 4);
    for (int i = 0; i < rows * d; i++) ref[i] = (double)x[i] + (double)y[i] * sc[i % d];
    nn_add_gated(nn, x2, y, sc, rows, d);
    CHECK(relerr(x2, ref, (size_t)rows * d) < 1e-6);
    free(x); free(y); free(sh); free(sc); free(out); free(x2); free(ref);
}

static void test_conversions(void)
{
    /* f16: every finite half round-trips through f32 exactly */
    int bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        if ((h & 0x7c00) == 0x7c00) continue;
        float f = wt_f16_to_f32((uint16_t)h);
        if (wt_f32_to_f16(f) != h) bad++;
    }
    CHECKF(bad == 0, "%d halves do not round-trip", bad);
    CHECK_NEAR(wt_f16_to_f32(0x3c00), 1.0, 0);
    CHECK_NEAR(wt_f16_to_f32(0x0001), ldexp(1, -24), 0);
    CHECK(wt_f32_to_f16(65520.0f) == 0x7c00 && wt_f32_to_f16(65519.0f) == 0x7bff);
    /* bf16: round to nearest even */
    CHECK(wt_f32_to_bf16(1.0f) == 0x3f80);
    float f;
    uint32_t u = 0x3f808000; memcpy(&f, &u, 4);   /* exactly halfway, even below */
    CHECK(wt_f32_to_bf16(f) == 0x3f80);
    u = 0x3f818000; memcpy(&f, &u, 4);            /* halfway, odd below: rounds up */
    CHECK(wt_f32_to_bf16(f) == 0x3f82);
    /* fp8 e4m3fn: 448 max, 2^-9 min subnormal, 0x7f NaN; e5m2: 57344 max, inf */
    CHECK(wt_e4m3_to_f32(0x7e) == 448.0f && wt_e4m3_to_f32(0x01) == ldexpf(1, -9) && isnan(wt_e4m3_to_f32(0x7f)));
    CHECK(wt_e4m3_to_f32(0x38) == 1.0f && wt_e4m3_to_f32(0xb8) == -1.0f);
    CHECK(wt_e5m2_to_f32(0x7b) == 57344.0f && isinf(wt_e5m2_to_f32(0x7c)) && wt_e5m2_to_f32(0x3c) == 1.0f);
    CHECK(wt_e5m2_to_f32(0x01) == ldexpf(1, -16));
}

/* the AMX path (or, without AMX, the converting path again): sizes with
 * whole 32-blocks and edges, bf16 and both fp8, every precision mode */
static void test_linear_modes(void)
{
    static const int sz[][3] = { { 45, 256, 80 }, { 70, 96, 33 }, { 5, 544, 64 } };
    const enum wt_dtype dts[] = { WT_BF16, WT_F8_E4M3, WT_F8_E5M2 };
    for (int s = 0; s < 3; s++)
        for (int di = 0; di < 3; di++) {
            int rows = sz[s][0], in = sz[s][1], out = sz[s][2];
            enum wt_dtype dt = dts[di];
            float *x = randv((size_t)rows * in), *wf = malloc((size_t)out * in * 4), *b = randv(out);
            void *wd = malloc((size_t)out * in * 2);
            float sc = dt == WT_BF16 ? 1.0f : 0.0625f;
            for (int i = 0; i < out * in; i++) {
                float v = frand();
                if (dt == WT_BF16) {
                    ((uint16_t *)wd)[i] = wt_f32_to_bf16(v);
                    wf[i] = wt_bf16_to_f32(((uint16_t *)wd)[i]);
                } else {
                    uint8_t q = (uint8_t)(rng >> (i % 48)) & 0x7b;   /* finite in both formats */
                    if (i & 1) q |= 0x80;
                    ((uint8_t *)wd)[i] = q;
                    wf[i] = (dt == WT_F8_E4M3 ? wt_e4m3_to_f32(q) : wt_e5m2_to_f32(q)) * sc;
                }
            }
            double *ref = calloc((size_t)rows * out, 8);
            for (int r = 0; r < rows; r++)
                for (int o = 0; o < out; o++) {
                    double a = b[o];
                    for (int i = 0; i < in; i++) a += (double)x[r * in + i] * wf[o * in + i];
                    ref[r * out + o] = a;
                }
            struct nn_w W = { wd, dt, sc }, B = W32(b);
            float *y1 = calloc((size_t)rows * out, 4), *y3 = calloc((size_t)rows * out, 4);
            struct nn *n1 = NULL, *n3 = NULL, *nf = NULL;
            CHECK(nn_new(&n1, NN_CPU, 1) == 0 && nn_new(&n3, NN_CPU, 3) == 0);
            setenv("ISOPIPE_NN_AMX", "0", 1);
            CHECK(nn_new(&nf, NN_CPU, 2) == 0);
            unsetenv("ISOPIPE_NN_AMX");
            if (!n1 || !n3 || !nf) return;
            nn_linear(nf, y1, x, rows, in, out, &W, &B);
            double e = relerr(y1, ref, (size_t)rows * out);
            CHECKF(e < 2e-5, "linear %dx%dx%d dtype %d, float32 path: rel err %.3g", rows, in, out, dt, e);
            /* bound per mode: float32 products; activations to 2^-17; to 2^-9 */
            const double tol[] = { 2e-5, 2e-5, 1e-2 };
            for (int p = 0; p < 3; p++) {
                nn_set_precision(n1, (enum nn_precision)p);
                nn_set_precision(n3, (enum nn_precision)p);
                CHECK(nn_precision(n3) == (enum nn_precision)p);
                nn_linear(n1, y1, x, rows, in, out, &W, &B);
                nn_linear(n3, y3, x, rows, in, out, &W, &B);
                e = relerr(y1, ref, (size_t)rows * out);
                CHECKF(e < tol[p], "linear %dx%dx%d dtype %d mode %d (%s): rel err %.3g", rows, in, out, dt, p,
                       nn_gemm_info(n1), e);
                CHECKF(memcmp(y1, y3, (size_t)rows * out * 4) == 0, "linear mode %d: 1 and 3 threads differ", p);
            }
            /* on every CPU (AMX or the float32 sgemm), bf16 mode is exactly
             * "activations rounded to nearest even bf16, then a float32
             * product": against that reference it is as close as float32 (a
             * truncating or otherwise wrong rounding, or none, would be off
             * by ~1e-3) */
            {
                for (int r = 0; r < rows; r++)
                    for (int o = 0; o < out; o++) {
                        double a = b[o];
                        for (int i = 0; i < in; i++)
                            a += (double)wt_bf16_to_f32(wt_f32_to_bf16(x[r * in + i])) * wf[o * in + i];
                        ref[r * out + o] = a;
                    }
                nn_set_precision(n1, NN_PREC_BF16);
                nn_linear(n1, y1, x, rows, in, out, &W, &B);
                e = relerr(y1, ref, (size_t)rows * out);
                CHECKF(e < 2e-5, "linear bf16 mode against bf16-rounded activations: rel err %.3g", e);
            }
            nn_free(&n1); nn_free(&n3); nn_free(&nf);
            free(x); free(wf); free(b); free(wd); free(ref); free(y1); free(y3);
        }
}

/* more rows than one slice of packed activations holds (on AMX, float32
 * mode: 64 MiB / (32 columns x 3 terms x 2 bytes) ~ 349,000 rows): the
 * slices must join seamlessly */
static void test_linear_row_slices(struct nn *nn)
{
    int rows = 360000, in = 32, out = 8;
    float *x = randv((size_t)rows * in), *y = malloc((size_t)rows * out * 4);
    uint16_t w[8 * 32];
    float wf[8 * 32];
    for (int i = 0; i < out * in; i++) { w[i] = wt_f32_to_bf16(frand()); wf[i] = wt_bf16_to_f32(w[i]); }
    struct nn_w W = { w, WT_BF16, 1.0f };
    nn_linear(nn, y, x, rows, in, out, &W, NULL);
    double e = 0, m = 1e-30;
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double a = 0;
            for (int i = 0; i < in; i++) a += (double)x[(size_t)r * in + i] * wf[o * in + i];
            double d = fabs(y[(size_t)r * out + o] - a);
            if (d > e || isnan(d)) e = isnan(d) ? INFINITY : d;
            if (fabs(a) > m) m = fabs(a);
        }
    CHECKF(e / m < 2e-5, "linear over %d rows (row slices): rel err %.3g", rows, e / m);
    free(x); free(y);
}

/* nn_w_to_f32 (vectorised where the CPU allows) equals the scalar
 * definitions for every bf16, f16 and fp8 code, with and without a scale */
static void test_w_to_f32(void)
{
    uint16_t *h = malloc(65536 * 2);
    uint8_t q[256];
    float *d = malloc(65536 * 4);
    for (int i = 0; i < 65536; i++) h[i] = (uint16_t)i;
    for (int i = 0; i < 256; i++) q[i] = (uint8_t)i;
    const enum wt_dtype dts[] = { WT_BF16, WT_F16, WT_F8_E4M3, WT_F8_E5M2 };
    for (int di = 0; di < 4; di++)
        for (int s = 0; s < 2; s++) {
            enum wt_dtype dt = dts[di];
            float sc = s ? 0.375f : 1.0f;
            int n = dt == WT_BF16 || dt == WT_F16 ? 65536 : 256;
            struct nn_w w = { n == 256 ? (const void *)q : (const void *)h, dt, sc };
            /* an odd start and length so that vector bodies and tails both run */
            nn_w_to_f32(&w, 3, (size_t)n - 5, d);
            int bad = 0;
            for (int i = 3; i < n - 2; i++) {
                float ref = (dt == WT_BF16 ? wt_bf16_to_f32((uint16_t)i) : dt == WT_F16 ? wt_f16_to_f32((uint16_t)i)
                             : dt == WT_F8_E4M3 ? wt_e4m3_to_f32((uint8_t)i) : wt_e5m2_to_f32((uint8_t)i)) * sc;
                float got = d[i - 3];
                if (isnan(ref) ? !isnan(got) : memcmp(&ref, &got, 4) != 0) bad++;
            }
            CHECKF(bad == 0, "nn_w_to_f32 dtype %d scale %g: %d codes differ", dt, sc, bad);
        }
    free(h); free(d);
}

/* GELU tanh, SiLU and softmax element by element against double: the
 * vectorised exp's error bound (nn.c: 3e-7) plus float rounding */
static void test_act_pointwise(struct nn *nn)
{
    size_t n = 200003;
    float *x = malloc(n * 4), *y = malloc(n * 4);
    for (size_t i = 0; i < n; i++) x[i] = -30.0f + 60.0f * (float)i / (float)(n - 1);
    for (int a = 0; a < 2; a++) {
        enum nn_act act = a ? NN_ACT_SILU : NN_ACT_GELU_TANH;
        nn_act(nn, y, x, n, act);
        double worst = 0;
        for (size_t i = 0; i < n; i++) {
            double v = x[i];
            /* exp's argument a (-2u or -v) is itself rounded to float: the
             * result is exact only to |a| 2^-24 relative on top of exp's own
             * 3e-7 (x^3 and the products: a few ulps); allowed: 4e-7 + |a| 2^-22 */
            double arg = act == NN_ACT_SILU ? fabs(v) : fabs(2 * sqrt(2 / M_PI) * (v + 0.044715 * v * v * v));
            double tol = 4e-7 + (arg < 88 ? arg : 88) * ldexp(1, -22);
            /* 0.5 v (1 + tanh u) written as v / (1 + e^-2u): no cancellation for v << 0 */
            double r = act == NN_ACT_SILU ? v / (1 + exp(-v))
                                          : v / (1 + exp(-2 * sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
            double e = fabs(y[i] - r) / (fabs(r) > 1e-30 ? fabs(r) : 1e-30);
            if (fabs(r) > 1e-30 && e / tol > worst) worst = e / tol;
        }
        CHECKF(worst <= 1, "%s: max pointwise rel err %.3g of its bound", a ? "silu" : "gelu_tanh", worst);
    }
    /* softmax rows spanning exp's whole range */
    int d = 173;
    for (int i = 0; i < d; i++) x[i] = -87.0f * (float)i / (float)(d - 1) + 3.0f;
    nn_softmax(nn, x, 1, d);
    double s = 0, worst = 0;
    for (int i = 0; i < d; i++) s += exp((double)(-87.0f * (float)i / (float)(d - 1) + 3.0f) - 3.0);
    for (int i = 0; i < d; i++) {
        double r = exp((double)(-87.0f * (float)i / (float)(d - 1) + 3.0f) - 3.0) / s;
        double e = fabs(x[i] - r) / r;
        if (r > 1e-37 && e > worst) worst = e;   /* below: denormals, flushed (FTZ) */
    }
    CHECKF(worst < 2e-6, "softmax: max pointwise rel err %.3g", worst);
    /* NaN stays NaN */
    for (int i = 0; i < 32; i++) x[i] = (float)i;
    x[5] = NAN;
    nn_act(nn, y, x, 32, NN_ACT_GELU_TANH);
    CHECK(isnan(y[5]) && !isnan(y[4]));
    nn_softmax(nn, x, 1, 32);
    CHECK(isnan(x[0]));
    free(x); free(y);
}

/* nn_gemm in threads gives the one-call product bit for bit, whichever side
 * it splits (rows of C, columns, or neither where this CPU's OpenBLAS kernel
 * would change bits), for every transpose and for odd sizes */
static void test_gemm_split(void)
{
    int gr = -1, gc = -1;
    nn_gemm_split(&gr, &gc);
    printf("# nn_gemm slices rows in multiples of %d, columns in multiples of %d (0: not split)\n", gr, gc);
    CHECKF(gr > 0, "rows of a product can be split on this CPU's OpenBLAS (got %d)", gr);
    static const int sz[][3] = { { 301, 37, 150 }, { 29, 517, 93 }, { 160, 160, 64 }, { 9, 1000, 40 }, { 1000, 9, 40 } };
    struct nn *n1 = NULL, *n2 = NULL, *n3 = NULL;
    CHECK(nn_new(&n1, NN_CPU, 1) == 0 && nn_new(&n2, NN_CPU, 2) == 0 && nn_new(&n3, NN_CPU, 3) == 0);
    for (int s = 0; s < 5 && n1 && n2 && n3; s++)
        for (int tr = 0; tr < 4; tr++) {
            int M = sz[s][0], N = sz[s][1], K = sz[s][2], ta = tr & 1, tb = tr >> 1;
            float *A = randv((size_t)M * K), *B = randv((size_t)N * K);
            float *c1 = calloc((size_t)M * N, 4), *c2 = calloc((size_t)M * N, 4), *c3 = calloc((size_t)M * N, 4);
            int lda = ta ? M : K, ldb = tb ? K : N;
            nn_gemm(n1, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, c1, N);
            nn_gemm(n2, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, c2, N);
            nn_gemm(n3, ta, tb, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, c3, N);
            CHECKF(memcmp(c1, c2, (size_t)M * N * 4) == 0 && memcmp(c1, c3, (size_t)M * N * 4) == 0,
                   "gemm %dx%dx%d ta %d tb %d: 1, 2 and 3 threads give the same bits", M, N, K, ta, tb);
            free(A); free(B); free(c1); free(c2); free(c3);
        }
    nn_free(&n1); nn_free(&n2); nn_free(&n3);
}

int main(void)
{
    test_gemm_split();
    test_conversions();
    test_w_to_f32();
    test_linear_modes();
    {
        struct nn *nn = NULL;
        CHECK(nn_new(&nn, NN_CPU, 2) == 0);
        if (nn) test_linear_row_slices(nn);
        nn_free(&nn);
    }
    int threads[] = { 1, 3 };
    for (int t = 0; t < 2; t++) {
        struct nn *nn = NULL;
        CHECK(nn_new(&nn, NN_CPU, threads[t]) == 0);
        if (!nn) break;
        test_linear(nn);
        test_norms(nn);
        test_act(nn);
        test_act_pointwise(nn);
        test_attention(nn);
        test_rope(nn);
        test_conv(nn);
        test_elementwise(nn);
        nn_free(&nn);
    }
    return test_report();
}
