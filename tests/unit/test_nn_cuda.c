/* test_nn_cuda.c — the CUDA backend of the nn core against its CPU backend.
 *
 * Every op runs on both backends with the same random inputs (odd sizes,
 * head dims 64/80/128/256, Lq != Lk, an additive bias, k_valid < Lk), and
 * the CUDA result must be within a stated tolerance of the CPU result. The
 * error measure is max |cuda - cpu| / max |cpu| over the output (the
 * umT5 issue's "max abs error / max abs value"). Tolerances:
 *   TOL_EW    1e-5  float32 element-wise ops, norms, softmax, RoPE
 *   TOL_F32   1e-4  float32 GEMM, linear with f32/f16 weights, linear with
 *                   bf16/fp8 weights in NN_PREC_F32 (3 bf16 terms),
 *                   attention, convolutions
 *   TOL_BF16  1e-2  linear with activations rounded to bf16 (NN_PREC_BF16)
 *   TOL_ATT_TC 2e-2 attention on tensor cores (NN_PREC_BF16, no bias,
 *                   D <= 128): q, k, v and the softmax weights in bf16
 *                   (2^-9 relative each) against float32; it must also
 *                   differ from the float32 kernel's result (the path ran)
 *   0               nn_relpos_bias (a copy)
 * Without a GPU, without cuBLAS, or in a CPU build the CUDA comparisons are
 * ONE skip with the reason (never a pass). What is checked everywhere: that
 * nn_new(NN_CUDA) then fails with ISO_EUNAVAIL and a reason, and the
 * host-side behaviour of the backend calls on NN_CPU (nn_upload,
 * nn_download, nn_w_upload, nn_w_at, nn_sync).
 * On a GPU machine: sh tests/gpu/nn_check.sh. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gpu.h"
#include "nn.h"
#include "stream.h"
#include "test.h"
#include "weights.h"

#define TOL_EW 1e-5
#define TOL_F32 1e-4
#define TOL_BF16 1e-2
#define TOL_ATT_TC 2e-2

static struct nn *C, *G;   /* cpu, cuda */
static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float frand(void)   /* uniform in [-1, 1) */
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}
static float *rnd(size_t n, float amp)
{
    float *p = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) p[i] = frand() * amp;
    return p;
}
/* a device copy of host floats */
static float *up(const float *h, size_t n)
{
    float *d = nn_alloc(G, n);
    if (d && nn_upload(G, d, h, n)) { printf("# upload: %s\n", iso_errmsg()); exit(1); }
    return d;
}
static double err_rel(const float *a, const float *ref, size_t n)
{
    double m = 0, e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (!(d <= e)) e = d;   /* NaN counts as infinite error */
        if (fabs(ref[i]) > m) m = fabs(ref[i]);
    }
    return e / (m > 1e-30 ? m : 1e-30);
}
/* download dev[n] and compare with the cpu result */
static void cmp(const char *what, const float *dev, const float *cpu, size_t n, double tol)
{
    float *h = malloc(n * sizeof(float));
    int rc = nn_download(G, h, dev, n);
    CHECKF(rc == 0, "%s: %s", what, iso_errmsg());
    double e = err_rel(h, cpu, n);
    printf("# %-44s rel err %.3g (tol %.0e)\n", what, e, tol);
    CHECKF(e <= tol, "%s: rel err %.3g > %.3g", what, e, tol);
    free(h);
}

/* a host weight of n elements in dtype from floats in [-amp, amp) */
struct hw { void *data; struct nn_w w, d; };
static struct hw weight(size_t n, enum wt_dtype dt, float amp, float scale)
{
    struct hw h;
    size_t es = wt_dtype_size(dt);
    h.data = malloc(n * es + 4);
    for (size_t i = 0; i < n; i++) {
        float v = frand() * amp;
        switch (dt) {
        case WT_F32: ((float *)h.data)[i] = v; break;
        case WT_BF16: ((uint16_t *)h.data)[i] = wt_f32_to_bf16(v); break;
        case WT_F16: ((uint16_t *)h.data)[i] = wt_f32_to_f16(v); break;
        case WT_F8_E4M3: {
            uint8_t b = (uint8_t)(rng >> 24);
            frand();
            if ((b & 0x7f) == 0x7f) b ^= 1;   /* not NaN */
            ((uint8_t *)h.data)[i] = b;
            break;
        }
        default: {   /* e5m2: not inf/NaN */
            uint8_t b = (uint8_t)(rng >> 24);
            frand();
            if ((b & 0x7c) == 0x7c) b &= 0xbf;
            ((uint8_t *)h.data)[i] = b;
        }
        }
    }
    h.w = nn_w_at(h.data, 0, dt, scale);
    if (nn_w_upload(G, NULL, &h.w, n, &h.d)) { printf("# nn_w_upload: %s\n", iso_errmsg()); exit(1); }
    return h;
}

static void test_gemm(void)
{
    TEST("gemm");
    int M = 37, N = 29, K = 53;
    for (int ta = 0; ta < 2; ta++)
        for (int tb = 0; tb < 2; tb++) {
            int lda = ta ? M + 3 : K + 1, ldb = tb ? K + 2 : N, ldc = N + 5;
            size_t na = (size_t)(ta ? K : M) * lda, nb = (size_t)(tb ? N : K) * ldb, nc = (size_t)M * ldc;
            float *A = rnd(na, 1), *B = rnd(nb, 1), *Cc = rnd(nc, 1);
            float *dA = up(A, na), *dB = up(B, nb), *dC = up(Cc, nc);
            nn_gemm(C, ta, tb, M, N, K, 0.7f, A, lda, B, ldb, 0.3f, Cc, ldc);
            nn_gemm(G, ta, tb, M, N, K, 0.7f, dA, lda, dB, ldb, 0.3f, dC, ldc);
            char what[64];
            snprintf(what, sizeof what, "gemm ta=%d tb=%d 37x29x53 beta 0.3", ta, tb);
            cmp(what, dC, Cc, nc, TOL_F32);
            nn_release(G, &dA); nn_release(G, &dB); nn_release(G, &dC);
            free(A); free(B); free(Cc);
        }
    float *Cc = rnd(12, 1), *dC = up(Cc, 12);
    nn_gemm(C, 0, 0, 3, 4, 0, 1, Cc, 1, Cc, 4, 0.5f, Cc, 4);
    nn_gemm(G, 0, 0, 3, 4, 0, 1, dC, 1, dC, 4, 0.5f, dC, 4);
    cmp("gemm K=0 (C = beta C)", dC, Cc, 12, TOL_EW);
    nn_release(G, &dC);
    free(Cc);
}

static void test_linear(void)
{
    TEST("linear");
    int rows = 45, in = 131, out = 77;
    static const struct { enum wt_dtype dt; float amp, scale; const char *name; } cases[] = {
        { WT_F32, 0.2f, 1.0f, "f32" }, { WT_BF16, 0.2f, 1.0f, "bf16" }, { WT_F16, 0.2f, 1.0f, "f16" },
        { WT_F8_E4M3, 0, 0.01f, "fp8 e4m3, scale 0.01" }, { WT_F8_E5M2, 0, 0.003f, "fp8 e5m2, scale 0.003" },
    };
    float *x = rnd((size_t)rows * in, 2), *dx = up(x, (size_t)rows * in);
    float *y = malloc((size_t)rows * out * sizeof(float)), *dy = nn_alloc(G, (size_t)rows * out);
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        struct hw W = weight((size_t)out * in, cases[c].dt, cases[c].amp, cases[c].scale);
        struct hw b = weight((size_t)out, cases[c].dt == WT_F32 ? WT_F32 : WT_BF16, 0.5f, 1.0f);
        char what[96];
        for (int prec = 0; prec < 3; prec++) {
            static const enum nn_precision ps[] = { NN_PREC_F32, NN_PREC_BF16X2, NN_PREC_BF16 };
            nn_set_precision(G, ps[prec]);
            nn_linear(C, y, x, rows, in, out, &W.w, &b.w);   /* the CPU in its default float32 mode */
            nn_linear(G, dy, dx, rows, in, out, &W.d, &b.d);
            snprintf(what, sizeof what, "linear %s %s", cases[c].name, prec == 0 ? "prec f32" : prec == 1 ? "prec bf16x2" : "prec bf16");
            cmp(what, dy, y, (size_t)rows * out, prec == 2 ? TOL_BF16 : TOL_F32);
            if (cases[c].dt == WT_F32 || cases[c].dt == WT_F16) break;   /* precision applies to bf16 products only */
        }
        nn_set_precision(G, NN_PREC_F32);
        /* staged, not uploaded: a view of the raw bytes on the device (fp8 stays fp8, converted per op) */
        if (cases[c].dt == WT_F8_E4M3) {
            float *raw = nn_alloc(G, ((size_t)out * in + 3) / 4);
            nn_upload(G, raw, W.data, ((size_t)out * in + 3) / 4);   /* byte copy through float slots */
            struct nn_w v = nn_w_at(raw, 0, WT_F8_E4M3, cases[c].scale);
            nn_linear(G, dy, dx, rows, in, out, &v, NULL);
            nn_linear(C, y, x, rows, in, out, &W.w, NULL);
            cmp("linear fp8 e4m3 staged (nn_w_at, no bias)", dy, y, (size_t)rows * out, TOL_F32);
            nn_release(G, &raw);
        }
        free(W.data); free(b.data);
    }
    free(x); free(y);
    nn_release(G, &dx); nn_release(G, &dy);
}

static void test_norms(void)
{
    TEST("norms");
    int rows = 33, d = 777;
    size_t n = (size_t)rows * d;
    float *x = rnd(n, 3), *y = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] += 0.5f;   /* a mean to remove */
    float *dx = up(x, n), *dy = nn_alloc(G, n);
    struct hw w = weight((size_t)d, WT_F32, 1, 1), b = weight((size_t)d, WT_F32, 1, 1);
    struct hw wb = weight((size_t)d, WT_BF16, 1, 1);
    nn_layernorm(C, y, x, rows, d, &w.w, &b.w, 1e-6f);
    nn_layernorm(G, dy, dx, rows, d, &w.d, &b.d, 1e-6f);
    cmp("layernorm w, b", dy, y, n, TOL_EW);
    nn_layernorm(C, y, x, rows, d, NULL, NULL, 1e-5f);
    nn_layernorm(G, dy, dx, rows, d, NULL, NULL, 1e-5f);
    cmp("layernorm no affine", dy, y, n, TOL_EW);
    nn_rmsnorm(C, y, x, rows, d, &wb.w, 1e-6f);
    nn_rmsnorm(G, dy, dx, rows, d, &wb.d, 1e-6f);
    cmp("rmsnorm bf16 w", dy, y, n, TOL_EW);
    nn_rmsnorm(C, y, x, rows, d, NULL, 1e-6f);
    nn_rmsnorm(G, dy, dx, rows, d, NULL, 1e-6f);
    cmp("rmsnorm no w", dy, y, n, TOL_EW);
    free(w.data); free(b.data); free(wb.data);

    int Cn = 37;
    size_t S = 1001;
    struct hw g = weight((size_t)Cn, WT_F32, 1, 1), bb = weight((size_t)Cn, WT_F32, 1, 1);
    nn_rmsnorm_channels(C, y, x, Cn, S, &g.w, &bb.w, 1e-12f);
    nn_rmsnorm_channels(G, dy, dx, Cn, S, &g.d, &bb.d, 1e-12f);
    cmp("rmsnorm_channels C=37 S=1001", dy, y, (size_t)Cn * S, TOL_EW);
    free(g.data); free(bb.data);

    int C2 = 64, Gn = 32;
    size_t S2 = 333;
    struct hw gw = weight((size_t)C2, WT_F32, 1, 1), gb = weight((size_t)C2, WT_F32, 1, 1);
    nn_groupnorm(C, y, x, C2, S2, Gn, &gw.w, &gb.w, 1e-6f);
    nn_groupnorm(G, dy, dx, C2, S2, Gn, &gw.d, &gb.d, 1e-6f);
    cmp("groupnorm C=64 G=32 S=333", dy, y, (size_t)C2 * S2, TOL_EW);
    nn_groupnorm(C, y, x, C2, S2, Gn, NULL, NULL, 1e-6f);
    nn_groupnorm(G, dy, dx, C2, S2, Gn, NULL, NULL, 1e-6f);
    cmp("groupnorm no affine", dy, y, (size_t)C2 * S2, TOL_EW);
    free(gw.data); free(gb.data);
    free(x); free(y);
    nn_release(G, &dx); nn_release(G, &dy);
}

static void test_elementwise(void)
{
    TEST("element-wise");
    size_t n = 100003;
    float *a = rnd(n, 8), *b = rnd(n, 2), *y = malloc(n * sizeof(float));
    float *da = up(a, n), *db = up(b, n), *dy = nn_alloc(G, n);
    static const char *names[] = { "gelu tanh", "gelu erf", "silu", "relu" };
    for (int act = 0; act < 4; act++) {
        nn_act(C, y, a, n, (enum nn_act)act);
        nn_act(G, dy, da, n, (enum nn_act)act);
        char what[48];
        snprintf(what, sizeof what, "act %s", names[act]);
        cmp(what, dy, y, n, TOL_EW);
    }
    nn_scale(C, y, a, n, 0.37f); nn_scale(G, dy, da, n, 0.37f); cmp("scale", dy, y, n, TOL_EW);
    nn_add(C, y, a, b, n); nn_add(G, dy, da, db, n); cmp("add", dy, y, n, TOL_EW);
    nn_mul(C, y, a, b, n); nn_mul(G, dy, da, db, n); cmp("mul", dy, y, n, TOL_EW);
    nn_mul(C, a, a, b, n); nn_mul(G, da, da, db, n); cmp("mul in place", da, a, n, TOL_EW);

    int rows = 41, d = 313;
    size_t m = (size_t)rows * d;
    float *g = rnd((size_t)d, 1), *sh = rnd((size_t)d, 1), *dg = up(g, (size_t)d), *dsh = up(sh, (size_t)d);
    memcpy(y, b, m * sizeof(float));
    nn_upload(G, dy, y, m);
    nn_add_gated(C, y, a, g, rows, d); nn_add_gated(G, dy, da, dg, rows, d);
    cmp("add_gated", dy, y, m, TOL_EW);
    nn_add_gated(C, y, a, NULL, rows, d); nn_add_gated(G, dy, da, NULL, rows, d);
    cmp("add_gated, no gate", dy, y, m, TOL_EW);
    nn_modulate(C, y, a, rows, d, sh, g); nn_modulate(G, dy, da, rows, d, dsh, dg);
    cmp("modulate", dy, y, m, TOL_EW);
    struct hw bias = weight((size_t)d, WT_BF16, 1, 1);
    nn_add_bias(C, y, a, rows, d, &bias.w); nn_add_bias(G, dy, da, rows, d, &bias.d);
    cmp("add_bias bf16", dy, y, m, TOL_EW);
    free(bias.data);
    int sr = 17, sd = 1000;
    memcpy(y, a, (size_t)sr * sd * sizeof(float));
    for (size_t i = 0; i < (size_t)sr * sd; i++) y[i] *= 4;
    nn_upload(G, dy, y, (size_t)sr * sd);
    nn_softmax(C, y, sr, sd); nn_softmax(G, dy, sr, sd);
    cmp("softmax 17 x 1000", dy, y, (size_t)sr * sd, TOL_EW);

    int L = 13, H = 3, D = 64;
    size_t nx = (size_t)L * H * D, nc = (size_t)L * D / 2;
    float *cs = malloc(nc * sizeof(float)), *sn = malloc(nc * sizeof(float));
    for (size_t i = 0; i < nc; i++) { float t = frand() * 3.14159f; cs[i] = cosf(t); sn[i] = sinf(t); }
    float *dcs = up(cs, nc), *dsn = up(sn, nc);
    for (int il = 0; il < 2; il++) {
        memcpy(y, b, nx * sizeof(float));
        nn_upload(G, dy, y, nx);
        nn_rope(C, y, L, H, D, cs, sn, il); nn_rope(G, dy, L, H, D, dcs, dsn, il);
        cmp(il ? "rope interleaved" : "rope half (NeoX)", dy, y, nx, TOL_EW);
    }
    free(a); free(b); free(y); free(g); free(sh); free(cs); free(sn);
    nn_release(G, &da); nn_release(G, &db); nn_release(G, &dy); nn_release(G, &dg); nn_release(G, &dsh);
    nn_release(G, &dcs); nn_release(G, &dsn);
}

static void test_attention(void)
{
    TEST("attention");
    static const struct { int Lq, Lk, H, D, bias, kv; float scale; } cs[] = {
        { 77, 123, 3, 64, 1, 100, 1.0f },         /* T5: bias, no scaling, padding keys */
        { 130, 130, 2, 128, 0, -1, 0.0883883f },  /* Wan self-attention shape, 1/sqrt(128) */
        { 5, 300, 4, 80, 0, 300, 0.1118034f },    /* few queries, D not a multiple of 32 */
        { 40, 70, 1, 256, 1, 33, 0.0625f },       /* D 256 */
        { 33, 40, 2, 128, 0, 0, 0.1f },           /* no valid key: zeros */
        { 1, 1, 1, 64, 0, -1, 0.125f },
        { 70, 70, 1, 384, 0, -1, 0.0510310f },   /* one head past the fused kernel (Wan VAE): products */
        { 50, 90, 1, 384, 0, 90, 0.0510310f },   /* the same with Lq != Lk */
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        int Lq = cs[c].Lq, Lk = cs[c].Lk, H = cs[c].H, D = cs[c].D;
        size_t nq = (size_t)Lq * H * D, nk = (size_t)Lk * H * D, nb = (size_t)H * Lq * Lk;
        float *q = rnd(nq, 2), *k = rnd(nk, 2), *v = rnd(nk, 1), *b = cs[c].bias ? rnd(nb, 3) : NULL;
        float *o = malloc(nq * sizeof(float));
        float *dq = up(q, nq), *dk = up(k, nk), *dv = up(v, nk), *db = b ? up(b, nb) : NULL, *dout = nn_alloc(G, nq);
        nn_attention(C, o, q, k, v, Lq, Lk, H, cs[c].D, cs[c].scale, b, cs[c].kv);
        nn_attention(G, dout, dq, dk, dv, Lq, Lk, H, cs[c].D, cs[c].scale, db, cs[c].kv);
        char what[96];
        snprintf(what, sizeof what, "attention Lq=%d Lk=%d H=%d D=%d%s kv=%d", Lq, Lk, H, D, b ? " bias" : "", cs[c].kv);
        if (cs[c].kv == 0) {
            float *h = malloc(nq * sizeof(float));
            nn_download(G, h, dout, nq);
            int zero = 1;
            for (size_t i = 0; i < nq; i++) zero &= h[i] == 0.0f;
            CHECKF(zero, "%s: not all zero", what);
            free(h);
        } else {
            cmp(what, dout, o, nq, TOL_F32);
        }
        free(q); free(k); free(v); free(b); free(o);
        nn_release(G, &dq); nn_release(G, &dk); nn_release(G, &dv); nn_release(G, &db); nn_release(G, &dout);
    }
}

/* NN_PREC_BF16: the tensor-core kernel where it applies (no bias, D <= 128),
 * the float32 one elsewhere */
static void test_attention_tc(void)
{
    TEST("attention on tensor cores (NN_PREC_BF16)");
    static const struct { int Lq, Lk, H, D, bias, kv; float scale; } cs[] = {
        { 130, 130, 2, 128, 0, -1, 0.0883883f },  /* Wan self-attention head, 1/sqrt(128) */
        { 200, 1000, 12, 128, 0, -1, 0.0883883f }, /* many key tiles, 12 heads (Wan 1.3B) */
        { 77, 123, 3, 64, 0, 100, 0.125f },       /* padding keys, D 64 */
        { 5, 300, 4, 80, 0, 300, 0.1118034f },    /* D 80: zero-padded to 128 */
        { 65, 64, 1, 40, 0, 63, 0.15811388f },    /* rows past one block, the last key masked, D 40 */
        { 1, 1, 1, 64, 0, -1, 0.125f },
        { 77, 123, 3, 64, 1, 100, 1.0f },         /* bias: the float32 kernel */
    };
    nn_set_precision(G, NN_PREC_BF16);
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        int Lq = cs[c].Lq, Lk = cs[c].Lk, H = cs[c].H, D = cs[c].D;
        size_t nq = (size_t)Lq * H * D, nk = (size_t)Lk * H * D, nb = (size_t)H * Lq * Lk;
        float *q = rnd(nq, 2), *k = rnd(nk, 2), *v = rnd(nk, 1), *b = cs[c].bias ? rnd(nb, 3) : NULL;
        float *o = malloc(nq * sizeof(float)), *of = malloc(nq * sizeof(float));
        float *dq = up(q, nq), *dk = up(k, nk), *dv = up(v, nk), *db = b ? up(b, nb) : NULL, *dout = nn_alloc(G, nq);
        nn_attention(C, o, q, k, v, Lq, Lk, H, D, cs[c].scale, b, cs[c].kv);
        nn_attention(G, dout, dq, dk, dv, Lq, Lk, H, D, cs[c].scale, db, cs[c].kv);
        char what[112];
        snprintf(what, sizeof what, "bf16 attention Lq=%d Lk=%d H=%d D=%d%s kv=%d", Lq, Lk, H, D, b ? " bias" : "",
                 cs[c].kv);
        cmp(what, dout, o, nq, b ? TOL_F32 : TOL_ATT_TC);
        if (!b) { /* the tensor cores ran: bf16 operands move the result off the float32 kernel's */
            nn_set_precision(G, NN_PREC_F32);
            nn_attention(G, dout, dq, dk, dv, Lq, Lk, H, D, cs[c].scale, NULL, cs[c].kv);
            nn_download(G, of, dout, nq);
            nn_set_precision(G, NN_PREC_BF16);
            nn_attention(G, dout, dq, dk, dv, Lq, Lk, H, D, cs[c].scale, NULL, cs[c].kv);
            float *h = malloc(nq * sizeof(float));
            nn_download(G, h, dout, nq);
            double d = err_rel(h, of, nq);
            CHECKF(d > 1e-6, "%s: equals the float32 kernel's result (%.3g): the tensor-core path did not run", what, d);
            free(h);
        }
        free(q); free(k); free(v); free(b); free(o); free(of);
        nn_release(G, &dq); nn_release(G, &dk); nn_release(G, &dv); nn_release(G, &db); nn_release(G, &dout);
    }
    nn_set_precision(G, NN_PREC_F32);
}

static void test_conv(void)
{
    TEST("convolutions");
    static const struct { int C, H, W, O, kh, kw, sh, sw, ph, pw, dh, dw, groups; enum wt_dtype dt; } cs[] = {
        { 5, 17, 19, 7, 3, 3, 2, 2, 1, 1, 1, 1, 1, WT_F32 },
        { 5, 17, 19, 7, 3, 3, 1, 1, 2, 2, 2, 2, 1, WT_F16 },     /* dilation 2 */
        { 6, 11, 13, 4, 3, 3, 1, 1, 1, 1, 1, 1, 2, WT_BF16 },    /* groups 2 */
        { 9, 10, 12, 5, 1, 1, 1, 1, 0, 0, 1, 1, 1, WT_F32 },     /* 1x1: one GEMM on the input */
    };
    for (size_t c = 0; c < sizeof cs / sizeof cs[0]; c++) {
        int Ho = (cs[c].H + 2 * cs[c].ph - cs[c].dh * (cs[c].kh - 1) - 1) / cs[c].sh + 1;
        int Wo = (cs[c].W + 2 * cs[c].pw - cs[c].dw * (cs[c].kw - 1) - 1) / cs[c].sw + 1;
        size_t nx = (size_t)cs[c].C * cs[c].H * cs[c].W, ny = (size_t)cs[c].O * Ho * Wo;
        size_t nw = (size_t)cs[c].O * (cs[c].C / cs[c].groups) * cs[c].kh * cs[c].kw;
        float *x = rnd(nx, 1), *y = malloc(ny * sizeof(float)), *dx = up(x, nx), *dy = nn_alloc(G, ny);
        struct hw w = weight(nw, cs[c].dt, 0.3f, 1), b = weight((size_t)cs[c].O, WT_F32, 1, 1);
        nn_conv2d(C, y, x, cs[c].C, cs[c].H, cs[c].W, &w.w, &b.w, cs[c].O, cs[c].kh, cs[c].kw, cs[c].sh, cs[c].sw,
                  cs[c].ph, cs[c].pw, cs[c].dh, cs[c].dw, cs[c].groups);
        nn_conv2d(G, dy, dx, cs[c].C, cs[c].H, cs[c].W, &w.d, &b.d, cs[c].O, cs[c].kh, cs[c].kw, cs[c].sh, cs[c].sw,
                  cs[c].ph, cs[c].pw, cs[c].dh, cs[c].dw, cs[c].groups);
        char what[96];
        snprintf(what, sizeof what, "conv2d %dx%d s%d p%d d%d g%d %s", cs[c].kh, cs[c].kw, cs[c].sh, cs[c].ph, cs[c].dh,
                 cs[c].groups, wt_dtype_name(cs[c].dt));
        cmp(what, dy, y, ny, TOL_F32);
        free(x); free(y); free(w.data); free(b.data);
        nn_release(G, &dx); nn_release(G, &dy);
    }
    {   /* conv3d: x [3, 5, 9, 11], 3x3x3, stride (1, 2, 1), padding 1 */
        int Cc = 3, T = 5, H = 9, W = 11, O = 4, To = T - 3 + 1, Ho = (H + 2 - 3) / 2 + 1, Wo = W;
        size_t nx = (size_t)Cc * T * H * W, ny = (size_t)O * To * Ho * Wo;
        float *x = rnd(nx, 1), *y = malloc(ny * sizeof(float)), *dx = up(x, nx), *dy = nn_alloc(G, ny);
        struct hw w = weight((size_t)O * Cc * 27, WT_BF16, 0.3f, 1), b = weight((size_t)O, WT_F32, 1, 1);
        nn_conv3d(C, y, x, Cc, T, H, W, &w.w, &b.w, O, 3, 3, 3, 1, 2, 1, 1, 1);
        nn_conv3d(G, dy, dx, Cc, T, H, W, &w.d, &b.d, O, 3, 3, 3, 1, 2, 1, 1, 1);
        cmp("conv3d 3x3x3 stride (1,2,1) pad 1 bf16", dy, y, ny, TOL_F32);
        free(x); free(y); free(w.data); free(b.data);
        nn_release(G, &dx); nn_release(G, &dy);
    }
    {   /* conv_transpose2d: 4x4, stride 2, padding 1 (RIFE's upsampling) */
        int Cc = 6, H = 7, W = 9, O = 5, Ho = (H - 1) * 2 - 2 + 4, Wo = (W - 1) * 2 - 2 + 4;
        size_t nx = (size_t)Cc * H * W, ny = (size_t)O * Ho * Wo;
        float *x = rnd(nx, 1), *y = malloc(ny * sizeof(float)), *dx = up(x, nx), *dy = nn_alloc(G, ny);
        for (int dt = 0; dt < 2; dt++) {
            struct hw w = weight((size_t)Cc * O * 16, dt ? WT_F16 : WT_F32, 0.3f, 1), b = weight((size_t)O, WT_F32, 1, 1);
            nn_conv_transpose2d(C, y, x, Cc, H, W, &w.w, &b.w, O, 4, 4, 2, 2, 1, 1);
            nn_conv_transpose2d(G, dy, dx, Cc, H, W, &w.d, &b.d, O, 4, 4, 2, 2, 1, 1);
            cmp(dt ? "conv_transpose2d 4x4 s2 p1 f16" : "conv_transpose2d 4x4 s2 p1 f32", dy, y, ny, TOL_F32);
            free(w.data); free(b.data);
        }
        free(x); free(y);
        nn_release(G, &dx); nn_release(G, &dy);
    }
}

/* lightweight mode's primitive: three blocks of weights packed with
 * nn_w_pack, streamed through common/stream's two-buffer window, used
 * through nn_w_at views on the compute stream; a chain of linears */
static void test_staged(void)
{
    TEST("weights streamed through common/stream");
    enum { NB = 3 };
    int rows = 19, d = 96;
    static const enum wt_dtype dts[NB] = { WT_BF16, WT_F8_E4M3, WT_F16 };
    static const float scales[NB] = { 1.0f, 0.004f, 1.0f };
    struct hw W[NB], B[NB];
    void *host[NB];
    size_t size[NB], off[NB][2], maxb = 0;
    for (int k = 0; k < NB; k++) {
        W[k] = weight((size_t)d * d, dts[k], 0.1f, scales[k]);
        B[k] = weight((size_t)d, WT_F32, 0.2f, 1);
        struct nn_w ws[2] = { W[k].w, B[k].w };
        size_t n[2] = { (size_t)d * d, (size_t)d };
        size[k] = nn_w_pack(ws, n, 2, NULL, off[k]);
        host[k] = malloc(size[k]);
        nn_w_pack(ws, n, 2, host[k], off[k]);
        if (size[k] > maxb) maxb = size[k];
    }
    float *x = rnd((size_t)rows * d, 1), *y = malloc((size_t)rows * d * sizeof(float));
    float *dx = up(x, (size_t)rows * d), *dy = nn_alloc(G, (size_t)rows * d);
    struct stream_set *set = NULL;
    int rc = stream_create(NB, maxb, &set);
    for (int k = 0; !rc && k < NB; k++) rc = stream_set_block(set, (uint64_t)k, host[k], size[k]);
    CHECKF(rc == 0, "stream_create: %s", iso_errmsg());
    if (!rc) {
        nn_set_stream(G, gpu_stream_handle(stream_compute(set)));
        for (int k = 0; k < NB; k++) {
            const void *dev = NULL;
            rc = stream_get(set, (uint64_t)k, &dev);
            CHECKF(rc == 0, "stream_get %d: %s", k, iso_errmsg());
            if (rc) break;
            struct nn_w w = nn_w_at(dev, off[k][0], dts[k], scales[k]), b = nn_w_at(dev, off[k][1], WT_F32, 1);
            nn_linear(G, dy, dx, rows, d, d, &w, &b);
            nn_act(G, dx, dy, (size_t)rows * d, NN_ACT_SILU);
            nn_linear(C, y, x, rows, d, d, &W[k].w, &B[k].w);
            nn_act(C, x, y, (size_t)rows * d, NN_ACT_SILU);
        }
        CHECKF(stream_sync(set) == 0, "stream_sync: %s", iso_errmsg());
        nn_set_stream(G, NULL);
        if (!rc) cmp("3 streamed blocks (bf16, fp8, f16) of linear + SiLU", dx, x, (size_t)rows * d, TOL_F32);
    }
    stream_free(&set);
    for (int k = 0; k < NB; k++) { free(W[k].data); free(B[k].data); free(host[k]); }
    free(x); free(y);
    nn_release(G, &dx); nn_release(G, &dy);
}

/* a convolution large enough to need several weight tiles and position
 * slices when the scratch buffers are small (run_sliced) */
static void test_conv_tiles(void)
{
    TEST("convolution in tiles");
    int Cc = 32, H = 20, W = 20, O = 24;
    size_t nx = (size_t)Cc * H * W, ny = (size_t)O * H * W;
    float *x = rnd(nx, 1), *y = malloc(ny * sizeof(float)), *dx = up(x, nx), *dy = nn_alloc(G, ny);
    struct hw w = weight((size_t)O * Cc * 9, WT_BF16, 0.2f, 1), b = weight((size_t)O, WT_F32, 1, 1);
    nn_conv2d(C, y, x, Cc, H, W, &w.w, &b.w, O, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    nn_conv2d(G, dy, dx, Cc, H, W, &w.d, &b.d, O, 3, 3, 1, 1, 1, 1, 1, 1, 1);
    cmp("conv2d 32->24 3x3 on 20x20 bf16", dy, y, ny, TOL_F32);
    free(x); free(y); free(w.data); free(b.data);
    nn_release(G, &dx); nn_release(G, &dy);
}

/* the same ops on a second CUDA context whose scratch buffers are 8 KiB
 * (ISOPIPE_NN_CUDA_SLICE): linear in row slices and weight tiles,
 * convolutions in position slices and channel tiles, scratch growth */
static void run_sliced(void)
{
    struct nn *full = G;
    setenv("ISOPIPE_NN_CUDA_SLICE", "8192", 1);
    int rc = nn_new(&G, NN_CUDA, 2);
    unsetenv("ISOPIPE_NN_CUDA_SLICE");
    CHECKF(rc == 0, "second CUDA context: %s", iso_errmsg());
    if (rc) { G = full; return; }
    printf("# with 8 KiB scratch buffers (sliced and tiled paths)\n");
    test_linear();
    test_conv();
    test_conv_tiles();
    CHECKF(nn_sync(G) == 0, "sync: %s", iso_errmsg());
    nn_free(&G);
    G = full;
}

/* the backend calls on NN_CPU: copies and views, nothing more */
static void test_cpu_plumbing(void)
{
    TEST("backend calls on NN_CPU");
    float a[5] = { 1, 2, 3, 4, 5 }, b[5] = { 0 };
    CHECK(nn_upload(C, b, a, 5) == 0 && memcmp(a, b, sizeof a) == 0);
    b[2] = 9;
    CHECK(nn_download(C, a, b, 5) == 0 && a[2] == 9);
    CHECK(nn_sync(C) == 0 && nn_reserve(C, 1 << 20) == 0);
    uint16_t wb[3] = { 0x3f80, 0x4000, 0x4040 };
    struct nn_w w = nn_w_at(wb, 2, WT_BF16, 0.5f), u;
    CHECK(w.data == (const void *)(wb + 1) && nn_w_get(&w, 0) == 1.0f && nn_w_get(&w, 1) == 1.5f);
    CHECK(nn_w_upload(C, NULL, &w, 2, &u) == 0 && u.data == w.data && u.dtype == WT_BF16 && u.scale == 0.5f);
    CHECK(nn_w_upload_bytes(WT_F8_E4M3, 10) == 20 && nn_w_upload_bytes(WT_BF16, 10) == 20 &&
          nn_w_upload_bytes(WT_F32, 10) == 40);
    CHECK(strcmp(nn_backend_info(C), "cpu") == 0 && nn_backend_of(C) == NN_CPU);
    CHECK(nn_cuda_fixed_bytes() == NN_CUDA_WORKSPACE + 2 * NN_CUDA_SLICE);
    float c3[3] = { 0 };
    nn_copy(C, c3, a + 1, 3);
    CHECK(c3[0] == 2 && c3[1] == 9 && c3[2] == 4);
    /* packing: aligned offsets, bytes as stored, absent weights take nothing,
     * and a linear through views into the block equals one on the weights */
    int in = 7, out = 5;
    uint16_t wbf[35];
    float bias[5], x[14], y1[10], y2[10];
    for (int i = 0; i < 35; i++) wbf[i] = wt_f32_to_bf16(frand());
    for (int i = 0; i < 5; i++) bias[i] = frand();
    for (int i = 0; i < 14; i++) x[i] = frand();
    struct nn_w ws[3] = { nn_w_at(wbf, 0, WT_BF16, 1.0f), { NULL, WT_F32, 1.0f }, nn_w_at(bias, 0, WT_F32, 1.0f) };
    size_t n[3] = { 35, 9, 5 }, off[3];
    size_t bytes = nn_w_pack(ws, n, 3, NULL, off);
    CHECK(bytes == 512 && off[0] == 0 && off[1] == 0 && off[2] == 256);
    unsigned char *blk = malloc(bytes);
    CHECK(nn_w_pack(ws, n, 3, blk, off) == bytes && memcmp(blk, wbf, sizeof wbf) == 0 && memcmp(blk + 256, bias, sizeof bias) == 0);
    struct nn_w vw = nn_w_at(blk, off[0], WT_BF16, 1.0f), vb = nn_w_at(blk, off[2], WT_F32, 1.0f);
    nn_linear(C, y1, x, 2, in, out, &ws[0], &ws[2]);
    nn_linear(C, y2, x, 2, in, out, &vw, &vb);
    CHECK(memcmp(y1, y2, sizeof y1) == 0);
    free(blk);
}

/* nn_copy_box, nn_add_channels (added for the Wan VAE): the CPU op against
 * a plain loop (everywhere), then CUDA against CPU (exact for the copy,
 * TOL_EW for the bias) */
static void box_ref(float *dst, const size_t ds[4], const float *src, const size_t ss[4], const int n[4])
{
    for (int a = 0; a < n[0]; a++)
        for (int b = 0; b < n[1]; b++)
            for (int c = 0; c < n[2]; c++)
                for (int d = 0; d < n[3]; d++)
                    dst[a * ds[0] + b * ds[1] + c * ds[2] + d * ds[3]] = src[a * ss[0] + b * ss[1] + c * ss[2] + d * ss[3]];
}

/* the shapes: a padded interior (rows), a transpose (inner stride), a 2x
 * nearest repeat (source stride 0) */
static const struct { int n[4]; size_t ds[4], ss[4]; } BOXES[] = {
    { { 5, 3, 7, 9 }, { 3 * 9 * 11, 9 * 11, 11, 1 }, { 3 * 7 * 9, 7 * 9, 9, 1 } },
    { { 1, 1, 37, 23 }, { 0, 0, 1, 37 }, { 0, 0, 23, 1 } },
    { { 4, 6, 2, 5 }, { 12 * 10, 2 * 10, 10, 2 }, { 30, 5, 0, 1 } },
};

static void test_box_cpu(void)
{
    TEST("copy_box and add_channels on NN_CPU");
    for (size_t k = 0; k < sizeof BOXES / sizeof *BOXES; k++) {
        size_t nd = 4 * 12 * 10 * 11 + 64, ns = 5 * 3 * 7 * 9 + 64;
        float *src = rnd(ns, 1), *a = calloc(nd, sizeof(float)), *b = calloc(nd, sizeof(float));
        box_ref(a, BOXES[k].ds, src, BOXES[k].ss, BOXES[k].n);
        nn_copy_box(C, b, BOXES[k].ds, src, BOXES[k].ss, BOXES[k].n);
        CHECKF(memcmp(a, b, nd * sizeof(float)) == 0, "copy_box case %zu differs from the loop", k);
        free(src); free(a); free(b);
    }
    int Cn = 7;
    size_t S = 1001;
    float *x = rnd((size_t)Cn * S, 2), *y = malloc((size_t)Cn * S * sizeof(float));
    uint16_t bb[7];
    for (int c = 0; c < Cn; c++) bb[c] = wt_f32_to_bf16(frand());
    struct nn_w bias = nn_w_at(bb, 0, WT_BF16, 1.0f);
    nn_add_channels(C, y, x, Cn, S, &bias);
    int ok = 1;
    for (int c = 0; c < Cn; c++)
        for (size_t i = 0; i < S; i++) ok &= y[c * S + i] == x[c * S + i] + nn_w_get(&bias, (size_t)c);
    CHECKF(ok, "add_channels: not x + b[c]");
    nn_add_channels(C, y, x, Cn, S, NULL);
    CHECK(memcmp(x, y, (size_t)Cn * S * sizeof(float)) == 0);
    free(x); free(y);
}

static void test_box(void)
{
    TEST("copy_box and add_channels");
    for (size_t k = 0; k < sizeof BOXES / sizeof *BOXES; k++) {
        size_t nd = 4 * 12 * 10 * 11 + 64, ns = 5 * 3 * 7 * 9 + 64;
        float *src = rnd(ns, 1), *a = calloc(nd, sizeof(float));
        float *dsrc = up(src, ns), *dd = nn_alloc(G, nd);
        nn_copy_box(C, a, BOXES[k].ds, src, BOXES[k].ss, BOXES[k].n);
        nn_copy_box(G, dd, BOXES[k].ds, dsrc, BOXES[k].ss, BOXES[k].n);
        char what[48];
        snprintf(what, sizeof what, "copy_box case %zu (exact)", k);
        cmp(what, dd, a, nd, 0.0);
        free(src); free(a);
        nn_release(G, &dsrc); nn_release(G, &dd);
    }
    int Cn = 37;
    size_t S = 4099, n = (size_t)Cn * S;
    float *x = rnd(n, 2), *y = malloc(n * sizeof(float)), *dx = up(x, n), *dy = nn_alloc(G, n);
    static const enum wt_dtype dts[] = { WT_F32, WT_BF16, WT_F16 };
    for (int k = 0; k < 3; k++) {
        struct hw bias = weight((size_t)Cn, dts[k], 1, 1);
        nn_add_channels(C, y, x, Cn, S, &bias.w);
        nn_add_channels(G, dy, dx, Cn, S, &bias.d);
        char what[48];
        snprintf(what, sizeof what, "add_channels %s", wt_dtype_name(dts[k]));
        cmp(what, dy, y, n, TOL_EW);
        free(bias.data);
    }
    free(x); free(y);
    nn_release(G, &dx); nn_release(G, &dy);
}

/* nn_relpos_bias: on NN_CPU against its definition (always), then CUDA
 * against CPU (a copy: exact, tolerance 0) at Lq != Lk and one head */
static void relpos_case(int H, int Lq, int Lk)
{
    size_t nt = (size_t)H * (Lq + Lk - 1), ny = (size_t)H * Lq * Lk;
    float *t = rnd(nt, 1), *y = malloc(ny * sizeof(float));
    nn_relpos_bias(C, y, t, H, Lq, Lk);
    int bad = 0;
    for (int h = 0; h < H; h++)
        for (int i = 0; i < Lq; i++)
            for (int j = 0; j < Lk; j++)
                bad += y[((size_t)h * Lq + i) * Lk + j] != t[(size_t)h * (Lq + Lk - 1) + (size_t)(j - i + Lq - 1)];
    CHECKF(bad == 0, "relpos_bias %dx%dx%d on the CPU: %d elements differ from t[h, j - i + Lq - 1]", H, Lq, Lk, bad);
    if (G) {
        float *dt = up(t, nt), *dy = nn_alloc(G, ny);
        nn_relpos_bias(G, dy, dt, H, Lq, Lk);
        char what[64];
        snprintf(what, sizeof what, "relpos_bias %dx%dx%d (exact)", H, Lq, Lk);
        cmp(what, dy, y, ny, 0.0);
        nn_release(G, &dt); nn_release(G, &dy);
    }
    free(t); free(y);
}

static void test_relpos(void)
{
    TEST("relpos_bias");
    relpos_case(3, 17, 17);
    relpos_case(5, 9, 23);
    relpos_case(1, 31, 4);
    relpos_case(64, 130, 130);
}

int main(void)
{
    if (nn_new(&C, NN_CPU, 2)) { printf("FAIL - cpu nn: %s\n", iso_errmsg()); return 1; }
    test_cpu_plumbing();
    test_box_cpu();
    test_relpos();   /* the CPU half; again below with the CUDA half */
    int rc = nn_new(&G, NN_CUDA, 2);
    if (rc) {
        CHECKF(rc == ISO_EUNAVAIL && iso_errmsg()[0], "nn_new(NN_CUDA) without a usable GPU: rc %d, '%s'", rc,
               iso_errmsg());
        CHECK(G == NULL);
        TEST_SKIP("CUDA backend against CPU backend: %s", iso_errmsg());
    } else {
        printf("# %s\n", nn_backend_info(G));
        CHECK(nn_backend_of(G) == NN_CUDA);
        test_gemm();
        test_linear();
        test_norms();
        test_elementwise();
        test_attention();
        test_attention_tc();
        test_conv();
        test_conv_tiles();
        test_staged();
        test_box();
        test_relpos();
        CHECKF(nn_sync(G) == 0, "sync: %s", iso_errmsg());
        run_sliced();
        nn_free(&G);
    }
    nn_free(&C);
    return test_report();
}
