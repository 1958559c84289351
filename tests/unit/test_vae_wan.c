/* test_vae_wan.c — the Wan2.1 VAE (tools/vae/wan_vae.c) against diffusers'
 * AutoencoderKLWan on the tiny random models of tests/fixtures/wan_vae
 * (written by tests/ref/wan_vae_ref.py; see its header for what each holds).
 *
 * Tolerances: decoded frames PSNR >= 40 dB on every frame after both sides
 * are rounded to 8 bits as the tool writes them (round(clamp((x+1)/2)*255)),
 * and max |ours - ref| <= 1e-3 on the float frames; encoded latents (the
 * normalised posterior mean) max |ours - ref| <= 1e-3 * max |ref|.
 *
 * The CUDA backend (skipped with the reason where nn_new(NN_CUDA) fails: no
 * GPU, no cuBLAS, a CPU build): each fixture model with every weight resident
 * on the device (nn_wres RESIDENT, the re-laid float32 conv weights), its
 * decodes and encodes against the CPU backend's: max |cuda - cpu| <=
 * 1e-4 * max |cpu| (float32 weights and activations, cuBLAS SGEMM in
 * CUBLAS_DEFAULT_MATH against OpenBLAS: only the summation order differs),
 * and against diffusers with the tolerances above; the product attention
 * (D 384, two slices) against the fused CPU one within 1e-4; a full-size
 * random Wan2.1 VAE (127 M bf16 parameters, written to /tmp) decoding and
 * encoding 5 frames of 120x208 on both, within 1e-3 (a deep random
 * network), with both times printed. On a GPU machine:
 * sh tests/gpu/vae_check.sh. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "err.h"
#include "image.h"
#include "nn.h"
#include "nn_wres.h"
#include "safetensors.h"
#include "st_write.h"
#include "test.h"
#include "wan_vae.h"
#include "weights.h"

#define FIX "tests/fixtures/wan_vae"

static const float *tensor(const struct safetensors *st, const char *name, int n_dims, uint64_t *shape)
{
    const struct st_tensor *t = st_find(st, name);
    if (!t || t->dtype != ST_F32 || t->n_dims != n_dims) return NULL;
    memcpy(shape, t->shape, (size_t)n_dims * sizeof *shape);
    return t->data;
}

struct collect {
    float *frames;     /* [3, F, H, W] as diffusers lays them out */
    int F, H, W, n, bad;
};

static int collect_emit(void *ctx, int index, const float *rgb, int H, int W)
{
    struct collect *c = ctx;
    if (index != c->n || index >= c->F || H != c->H || W != c->W) { c->bad = 1; return ISO_EINTERNAL; }
    size_t hw = (size_t)H * W;
    for (int ch = 0; ch < 3; ch++)
        memcpy(c->frames + ((size_t)ch * c->F + index) * hw, rgb + ch * hw, hw * sizeof(float));
    c->n++;
    return 0;
}

static int to8(float x)
{
    float v = (x + 1.0f) * 0.5f;
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return (int)lrintf(v * 255.0f);
}

static void check_decode(struct wan_vae *v, struct nn *nn, const char *dir, int T)
{
    char path[512];
    snprintf(path, sizeof path, "%s/dec_%d.safetensors", dir, T);
    struct safetensors *st = NULL;
    CHECKF(st_open(path, &st) == 0, "%s: %s", path, iso_errmsg());
    if (!st) return;
    uint64_t ls[4], fs[4];
    const float *lat = tensor(st, "latents", 4, ls), *ref = tensor(st, "frames", 4, fs);
    CHECK(lat && ref);
    if (lat && ref) {
        struct collect c = { NULL, (int)fs[1], (int)fs[2], (int)fs[3], 0, 0 };
        c.frames = calloc(3 * fs[1] * fs[2] * fs[3], sizeof(float));
        int rc = wan_vae_decode(v, nn, lat, (int)ls[1], (int)ls[2], (int)ls[3], NULL, collect_emit, &c);
        CHECKF(rc == 0 && !c.bad && c.n == c.F, "%s: decode rc %d (%s), %d of %d frames", path, rc, iso_errmsg(),
               c.n, c.F);
        size_t hw = fs[2] * fs[3];
        double worst_psnr = 1e9, maxd = 0;
        for (int f = 0; f < c.F; f++) {
            double se = 0;
            for (int ch = 0; ch < 3; ch++)
                for (size_t i = 0; i < hw; i++) {
                    size_t k = ((size_t)ch * c.F + f) * hw + i;
                    double d = fabs((double)c.frames[k] - ref[k]);
                    if (d > maxd) maxd = d;
                    int e = to8(c.frames[k]) - to8(ref[k]);
                    se += (double)e * e;
                }
            double mse = se / (3.0 * hw);
            double psnr = mse > 0 ? 10 * log10(255.0 * 255.0 / mse) : 99.0;
            if (psnr < worst_psnr) worst_psnr = psnr;
        }
        printf("  %s: %d frames %dx%d, worst-frame PSNR %.1f dB, max |diff| %.2e\n", path, c.F, c.W, c.H,
               worst_psnr, maxd);
        CHECKF(worst_psnr >= 40.0, "%s: PSNR %.2f dB", path, worst_psnr);
        CHECKF(maxd <= 1e-3, "%s: max diff %.3g", path, maxd);
        free(c.frames);
    }
    st_close(&st);
}

struct pngs { const char *dir; int bad; };
static int png_get(void *ctx, int index, float *dst, int H, int W)
{
    struct pngs *p = ctx;
    char path[600];
    snprintf(path, sizeof path, "%s/frame_%05d.png", p->dir, index);
    struct image img;
    int rc = image_load_png(path, &img, 3);
    if (rc) { p->bad = 1; return rc; }
    if (img.w != W || img.h != H) { image_free(&img); p->bad = 1; return ISO_EDATA; }
    size_t hw = (size_t)H * W;
    for (size_t i = 0; i < hw; i++)
        for (int ch = 0; ch < 3; ch++) dst[ch * hw + i] = img.data[i * 3 + ch] / 255.0f * 2.0f - 1.0f;
    image_free(&img);
    return 0;
}

static void check_encode(struct wan_vae *v, struct nn *nn, const char *dir, int F, int H, int W)
{
    char path[512], fdir[512];
    snprintf(path, sizeof path, "%s/enc_%d.safetensors", dir, F);
    snprintf(fdir, sizeof fdir, "%s/enc_%d", dir, F);
    struct safetensors *st = NULL;
    CHECKF(st_open(path, &st) == 0, "%s: %s", path, iso_errmsg());
    if (!st) return;
    uint64_t ls[4];
    const float *ref = tensor(st, "latents", 4, ls);
    CHECK(ref != NULL);
    if (ref) {
        size_t n = ls[0] * ls[1] * ls[2] * ls[3];
        float *out = calloc(n, sizeof(float));
        struct pngs p = { fdir, 0 };
        int rc = wan_vae_encode(v, nn, F, H, W, png_get, &p, out);
        CHECKF(rc == 0, "%s: encode rc %d (%s)", path, rc, iso_errmsg());
        double maxd = 0, maxr = 0;
        for (size_t i = 0; i < n; i++) {
            double d = fabs((double)out[i] - ref[i]);
            if (d > maxd) maxd = d;
            if (fabs(ref[i]) > maxr) maxr = fabs(ref[i]);
        }
        printf("  %s: latents [%d,%d,%d,%d], max |diff| %.2e (max |ref| %.2f)\n", path, (int)ls[0], (int)ls[1],
               (int)ls[2], (int)ls[3], maxd, maxr);
        CHECKF(maxd <= 1e-3 * maxr, "%s: max diff %.3g vs max ref %.3g", path, maxd, maxr);
        free(out);
    }
    st_close(&st);
}

struct fixture {
    const char *name, *model, *source, *layout;
    int nrb, td[3], enc_ch0;
    int dec_T[3];
    int enc[3][3]; /* F, H, W */
};

static const struct fixture FIXTURES[] = {
    { "a_diffusers", "model", "config.json", "diffusers", 1, { 0, 1, 1 }, 4, { 1, 3, 0 },
      { { 5, 24, 40 }, { 0 } } },
    { "b_original", "model/wan_vae.safetensors", "tensor shapes", "original", 2, { 1, 1, 0 }, 3, { 3, 0 },
      { { 9, 16, 24 }, { 1, 24, 16 }, { 0 } } },
    { "c_original_f16", "model/wan_vae.safetensors", "tensor shapes", "original", 1, { 0, 1, 1 }, 6, { 1, 2, 0 },
      { { 5, 16, 16 }, { 0 } } },
};

/* ---- the middle block's attention as products (the CUDA path for heads
 * over 256 channels: Wan2.1's 384) against the fused nn_attention on the
 * CPU: max |products - fused| <= 1e-5 * max |fused| (float32, only the
 * summation order and the exp differ) ---- */
static uint64_t rng = 88172645463325252ull;
static float frand(void)
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return (float)((rng >> 40) * (1.0 / 8388608.0)) - 1.0f;
}

static double rel_diff(const float *a, const float *ref, size_t n);

/* q, k, v [L, D] random; *fused = nn_attention on cpu (host memory) */
static void attn_inputs(int L, int D, float **q, float **k, float **v, float **fused, struct nn *cpu)
{
    size_t n = (size_t)L * D;
    *q = malloc(n * sizeof(float)); *k = malloc(n * sizeof(float)); *v = malloc(n * sizeof(float));
    *fused = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) { (*q)[i] = 2 * frand(); (*k)[i] = 2 * frand(); (*v)[i] = frand(); }
    nn_attention(cpu, *fused, *q, *k, *v, L, L, 1, D, 1.0f / sqrtf((float)D), NULL, L);
}

static void test_attention_products_cpu(struct nn *cpu)
{
    TEST("attention as products (D 384) on the CPU");
    int L = 300, D = 384;
    float *q, *k, *v, *fused, *o = malloc((size_t)L * D * sizeof(float)), *sc = malloc((size_t)L * L * sizeof(float));
    attn_inputs(L, D, &q, &k, &v, &fused, cpu);
    nn_attention_products(cpu, o, q, k, v, L, L, D, 1.0f / sqrtf((float)D), sc);
    /* and both against softmax(q k^T / sqrt(D)) v in double */
    float *ref = malloc((size_t)L * D * sizeof(float));
    double *p = malloc((size_t)L * sizeof(double));
    for (int i = 0; i < L; i++) {
        double mx = -1e300, sum = 0;
        for (int j = 0; j < L; j++) {
            double d = 0;
            for (int c = 0; c < D; c++) d += (double)q[(size_t)i * D + c] * k[(size_t)j * D + c];
            p[j] = d / sqrt((double)D);
            if (p[j] > mx) mx = p[j];
        }
        for (int j = 0; j < L; j++) sum += (p[j] = exp(p[j] - mx));
        for (int c = 0; c < D; c++) {
            double acc = 0;
            for (int j = 0; j < L; j++) acc += p[j] * v[(size_t)j * D + c];
            ref[(size_t)i * D + c] = (float)(acc / sum);
        }
    }
    double e = rel_diff(o, fused, (size_t)L * D), ep = rel_diff(o, ref, (size_t)L * D), ef = rel_diff(fused, ref, (size_t)L * D);
    printf("  L %d, D %d: products vs fused rel %.3g; vs double: products %.3g, fused %.3g\n", L, D, e, ep, ef);
    CHECKF(e <= 1e-5 && ep <= 1e-5 && ef <= 1e-5, "products vs fused %.3g, vs double %.3g / %.3g", e, ep, ef);
    free(ref);
    free(p);
    CHECK(nn_attention_products_bytes(384, L, L) == (uint64_t)L * L * 4 && nn_attention_products_bytes(256, L, L) == 0);
    free(q); free(k); free(v); free(fused); free(o); free(sc);
}

/* ---- the CUDA backend against the CPU backend ---- */

static double rel_diff(const float *a, const float *ref, size_t n)
{
    double m = 0, e = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - ref[i]);
        if (!(d <= e)) e = d; /* NaN counts as infinite */
        if (fabs(ref[i]) > m) m = fabs(ref[i]);
    }
    return e / (m > 1e-30 ? m : 1e-30);
}

/* decode (T latent frames) or encode (F frames) of fixture dir on both
 * contexts; vc, vg: the model opened for each */
static void cuda_vs_cpu(struct wan_vae *vc, struct nn *cpu, struct wan_vae *vg, struct nn *gpu, const char *dir,
                        int T, const int *enc)
{
    char path[512];
    struct safetensors *st = NULL;
    uint64_t ls[4], fs[4];
    if (T) {
        snprintf(path, sizeof path, "%s/dec_%d.safetensors", dir, T);
        if (st_open(path, &st)) { CHECKF(0, "%s: %s", path, iso_errmsg()); return; }
        const float *lat = tensor(st, "latents", 4, ls), *ref = tensor(st, "frames", 4, fs);
        CHECK(lat && ref);
        if (lat && ref) {
            size_t n = 3 * fs[1] * fs[2] * fs[3];
            struct collect a = { calloc(n, sizeof(float)), (int)fs[1], (int)fs[2], (int)fs[3], 0, 0 };
            struct collect b = { calloc(n, sizeof(float)), (int)fs[1], (int)fs[2], (int)fs[3], 0, 0 };
            int rc1 = wan_vae_decode(vc, cpu, lat, (int)ls[1], (int)ls[2], (int)ls[3], NULL, collect_emit, &a);
            int rc2 = wan_vae_decode(vg, gpu, lat, (int)ls[1], (int)ls[2], (int)ls[3], NULL, collect_emit, &b);
            CHECKF(rc1 == 0 && rc2 == 0 && a.n == a.F && b.n == b.F, "%s: decode rc %d / %d (%s)", path, rc1, rc2,
                   iso_errmsg());
            double e = rel_diff(b.frames, a.frames, n), er = rel_diff(b.frames, ref, n);
            printf("  %s: cuda vs cpu rel %.3g, cuda vs diffusers rel %.3g\n", path, e, er);
            CHECKF(e <= 1e-4, "%s: cuda vs cpu %.3g", path, e);
            CHECKF(er <= 1e-3, "%s: cuda vs diffusers %.3g", path, er);
            free(a.frames);
            free(b.frames);
        }
        st_close(&st);
        return;
    }
    char fdir[512];
    snprintf(path, sizeof path, "%s/enc_%d.safetensors", dir, enc[0]);
    snprintf(fdir, sizeof fdir, "%s/enc_%d", dir, enc[0]);
    if (st_open(path, &st)) { CHECKF(0, "%s: %s", path, iso_errmsg()); return; }
    const float *ref = tensor(st, "latents", 4, ls);
    CHECK(ref != NULL);
    if (ref) {
        size_t n = ls[0] * ls[1] * ls[2] * ls[3];
        float *a = calloc(n, sizeof(float)), *b = calloc(n, sizeof(float));
        struct pngs p = { fdir, 0 };
        int rc1 = wan_vae_encode(vc, cpu, enc[0], enc[1], enc[2], png_get, &p, a);
        int rc2 = wan_vae_encode(vg, gpu, enc[0], enc[1], enc[2], png_get, &p, b);
        CHECKF(rc1 == 0 && rc2 == 0, "%s: encode rc %d / %d (%s)", path, rc1, rc2, iso_errmsg());
        double e = rel_diff(b, a, n), er = rel_diff(b, ref, n);
        printf("  %s: cuda vs cpu rel %.3g, cuda vs diffusers rel %.3g\n", path, e, er);
        CHECKF(e <= 1e-4, "%s: cuda vs cpu %.3g", path, e);
        CHECKF(er <= 1e-3, "%s: cuda vs diffusers %.3g", path, er);
        free(a);
        free(b);
    }
    st_close(&st);
}

/* ---- a full-size random Wan2.1 VAE (base_dim 96, dim_mult 1,2,4,4, two
 * residual blocks, temporal downsampling in the last two levels, z 16: the
 * real model's shapes, 127 M parameters in bf16, original names), written
 * to a temporary file, for the CUDA case: the real channel counts (the
 * middle block's attention over 384 channels, 384-channel convolutions) that
 * the tiny fixtures do not reach. Weights uniform with variance 1/fan_in,
 * gammas 1 +- 0.1, biases +- 0.01. ---- */
struct gen { struct st_out *t; size_t n, cap; int bad; };

static void gen_add(struct gen *g, const char *name, int n_dims, const uint64_t *shape, float amp, float base)
{
    if (g->n == g->cap) {
        size_t cap = g->cap ? 2 * g->cap : 256;
        struct st_out *t = realloc(g->t, cap * sizeof *t);
        if (!t) { g->bad = 1; return; }
        g->t = t;
        g->cap = cap;
    }
    uint64_t n = 1;
    for (int i = 0; i < n_dims; i++) n *= shape[i];
    uint16_t *d = malloc(n * sizeof *d);
    char *nm = strdup(name);
    if (!d || !nm) { free(d); free(nm); g->bad = 1; return; }
    for (uint64_t i = 0; i < n; i++) d[i] = wt_f32_to_bf16(base + amp * frand());
    struct st_out *o = &g->t[g->n++];
    memset(o, 0, sizeof *o);
    o->name = nm;
    o->dtype = ST_BF16;
    o->n_dims = n_dims;
    memcpy(o->shape, shape, (size_t)n_dims * sizeof *shape);
    o->data = d;
}

static void gen_conv(struct gen *g, const char *name, int O, int C, int kt, int kh, int kw, int dims)
{
    char nm[256];
    uint64_t s5[5] = { (uint64_t)O, (uint64_t)C, (uint64_t)kt, (uint64_t)kh, (uint64_t)kw };
    uint64_t s4[4] = { (uint64_t)O, (uint64_t)C, (uint64_t)kh, (uint64_t)kw }, sb[1] = { (uint64_t)O };
    snprintf(nm, sizeof nm, "%s.weight", name);
    gen_add(g, nm, dims, dims == 5 ? s5 : s4, sqrtf(3.0f / ((float)C * kt * kh * kw)), 0.0f);
    snprintf(nm, sizeof nm, "%s.bias", name);
    gen_add(g, nm, 1, sb, 0.01f, 0.0f);
}

static void gen_gamma(struct gen *g, const char *name, int C)
{
    uint64_t s[1] = { (uint64_t)C };
    gen_add(g, name, 1, s, 0.1f, 1.0f);
}

static void gen_res(struct gen *g, const char *base, int in, int out)
{
    char nm[256];
    snprintf(nm, sizeof nm, "%s.residual.0.gamma", base); gen_gamma(g, nm, in);
    snprintf(nm, sizeof nm, "%s.residual.2", base); gen_conv(g, nm, out, in, 3, 3, 3, 5);
    snprintf(nm, sizeof nm, "%s.residual.3.gamma", base); gen_gamma(g, nm, out);
    snprintf(nm, sizeof nm, "%s.residual.6", base); gen_conv(g, nm, out, out, 3, 3, 3, 5);
    if (in != out) { snprintf(nm, sizeof nm, "%s.shortcut", base); gen_conv(g, nm, out, in, 1, 1, 1, 5); }
}

static void gen_mid(struct gen *g, const char *half, int C)
{
    char nm[256];
    snprintf(nm, sizeof nm, "%s.middle.0", half); gen_res(g, nm, C, C);
    snprintf(nm, sizeof nm, "%s.middle.1.norm.gamma", half); gen_gamma(g, nm, C);
    snprintf(nm, sizeof nm, "%s.middle.1.to_qkv", half); gen_conv(g, nm, 3 * C, C, 1, 1, 1, 4);
    snprintf(nm, sizeof nm, "%s.middle.1.proj", half); gen_conv(g, nm, C, C, 1, 1, 1, 4);
    snprintf(nm, sizeof nm, "%s.middle.2", half); gen_res(g, nm, C, C);
}

static int write_full_model(const char *path)
{
    static const int ch[4] = { 96, 192, 384, 384 }, tdown[3] = { 0, 1, 1 };
    struct gen g = { 0 };
    char nm[256];
    int k = 0, prev = 96;
    gen_conv(&g, "encoder.conv1", 96, 3, 3, 3, 3, 5);
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 2; j++, k++) {
            snprintf(nm, sizeof nm, "encoder.downsamples.%d", k);
            gen_res(&g, nm, prev, ch[i]);
            prev = ch[i];
        }
        if (i < 3) {
            snprintf(nm, sizeof nm, "encoder.downsamples.%d.resample.1", k);
            gen_conv(&g, nm, prev, prev, 1, 3, 3, 4);
            if (tdown[i]) {
                snprintf(nm, sizeof nm, "encoder.downsamples.%d.time_conv", k);
                gen_conv(&g, nm, prev, prev, 3, 1, 1, 5);
            }
            k++;
        }
    }
    gen_mid(&g, "encoder", 384);
    gen_gamma(&g, "encoder.head.0.gamma", 384);
    gen_conv(&g, "encoder.head.2", 32, 384, 3, 3, 3, 5);
    gen_conv(&g, "conv1", 32, 32, 1, 1, 1, 5);
    gen_conv(&g, "conv2", 16, 16, 1, 1, 1, 5);
    gen_conv(&g, "decoder.conv1", 384, 16, 3, 3, 3, 5);
    gen_mid(&g, "decoder", 384);
    static const int dch[4] = { 384, 384, 192, 96 }, tup[3] = { 1, 1, 0 };
    prev = 384;
    for (int i = 0; i < 4; i++) {
        int in = i == 0 ? prev : prev / 2;
        for (int j = 0; j < 3; j++) {
            snprintf(nm, sizeof nm, "decoder.upsamples.%d", i * 4 + j);
            gen_res(&g, nm, in, dch[i]);
            in = dch[i];
        }
        prev = dch[i];
        if (i < 3) {
            snprintf(nm, sizeof nm, "decoder.upsamples.%d.resample.1", i * 4 + 3);
            gen_conv(&g, nm, prev / 2, prev, 1, 3, 3, 4);
            if (tup[i]) {
                snprintf(nm, sizeof nm, "decoder.upsamples.%d.time_conv", i * 4 + 3);
                gen_conv(&g, nm, 2 * prev, prev, 3, 1, 1, 5);
            }
        }
    }
    gen_gamma(&g, "decoder.head.0.gamma", 96);
    gen_conv(&g, "decoder.head.2", 3, 96, 3, 3, 3, 5);
    int rc = g.bad ? ISO_ETEMPFAIL : st_write(path, g.t, g.n, NULL);
    for (size_t i = 0; i < g.n; i++) { free((void *)g.t[i].name); free((void *)g.t[i].data); }
    free(g.t);
    return rc;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* deterministic frames in [-1, 1] for the full-size encode */
static int synth_get(void *ctx, int index, float *dst, int H, int W)
{
    (void)ctx;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < H; y++)
            for (int x = 0; x < W; x++)
                dst[((size_t)c * H + y) * W + x] = sinf(0.05f * x + 0.07f * y + 0.9f * c + 0.3f * index) * 0.9f;
    return 0;
}

/* Full-size random model, 2 latent frames of 15x26 (5 frames of 120x208)
 * decoded and 5 such frames encoded, CUDA (weights resident) against CPU:
 * max |cuda - cpu| <= 1e-3 * max |cpu| (a deep random network; the fixtures
 * hold 1e-4). Prints both times. */
static void test_full_size(struct nn *gpu)
{
    TEST("full-size random Wan2.1 VAE (127 M parameters, bf16) on CUDA against the CPU");
    char dir[] = "/tmp/isopipe-vae-full-XXXXXX", path[64];
    if (!mkdtemp(dir)) { CHECKF(0, "mkdtemp"); return; }
    snprintf(path, sizeof path, "%s/wan_vae.safetensors", dir);
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    struct nn *cpu = NULL;
    struct weights *w = NULL;
    struct wan_vae *vc = NULL, *vg = NULL;
    struct nn_wres *r = NULL;
    const int halves = WAN_VAE_ENCODER | WAN_VAE_DECODER;
    int rc = write_full_model(path);
    if (!rc) rc = nn_new(&cpu, NN_CPU, ncpu > 1 ? (int)(ncpu > 32 ? 32 : ncpu) : 1);
    if (!rc) rc = weights_open(path, &w);
    if (!rc) rc = wan_vae_open(&vc, w, halves);
    if (!rc) rc = wan_vae_open(&vg, w, halves);
    if (!rc) rc = wan_vae_relay(vg, WAN_VAE_DECODER);
    if (!rc) rc = wan_vae_relay(vg, WAN_VAE_ENCODER);
    if (!rc && !(r = nn_wres_new(NN_WRES_RESIDENT, 0))) rc = ISO_EINTERNAL;
    if (!rc) rc = wan_vae_register(vg, WAN_VAE_DECODER, r, 1);
    if (!rc) rc = wan_vae_register(vg, WAN_VAE_ENCODER, r, 1);
    if (!rc) rc = nn_wres_load(r, gpu);
    CHECKF(rc == 0, "full-size model: %s", iso_errmsg());
    if (!rc) {
        const struct wan_vae_config *c = wan_vae_config(vc);
        CHECK(c->enc_ch[3] == 384 && c->dec_ch[0] == 384 && c->num_res_blocks == 2 && c->z_dim == 16);
        wan_vae_drop_relaid_host(vg);
        int T = 2, h = 15, wl = 26, F = 5, H = 120, W = 208;
        size_t nl = (size_t)16 * T * h * wl, nf = 3 * (size_t)F * H * W;
        float *lat = malloc(nl * sizeof(float));
        for (size_t i = 0; i < nl; i++) lat[i] = 1.7f * frand();
        struct collect a = { calloc(nf, sizeof(float)), F, H, W, 0, 0 }, b = { calloc(nf, sizeof(float)), F, H, W, 0, 0 };
        double t0 = now_s();
        int rc1 = wan_vae_decode(vc, cpu, lat, T, h, wl, NULL, collect_emit, &a);
        double t1 = now_s();
        int rc2 = wan_vae_decode(vg, gpu, lat, T, h, wl, NULL, collect_emit, &b);
        int rs = nn_sync(gpu);
        double t2 = now_s();
        CHECKF(rc1 == 0 && rc2 == 0 && rs == 0 && a.n == F && b.n == F, "full-size decode rc %d / %d / %d (%s)", rc1, rc2, rs,
               iso_errmsg());
        double e = rel_diff(b.frames, a.frames, nf), ss = 0;
        size_t inside = 0;
        for (size_t i = 0; i < nf; i++) { inside += fabsf(a.frames[i]) < 0.999f; ss += (double)a.frames[i] * a.frames[i]; }
        printf("  decode %dx%dx%d latents: cuda vs cpu rel %.3g; cpu %.2f s (%d threads), cuda %.2f s; frames rms %.3f, "
               "%.0f%% unclamped\n", T, h, wl, e, t1 - t0, nn_threads(cpu), t2 - t1, sqrt(ss / nf), 100.0 * inside / nf);
        CHECKF(inside > nf / 2, "full-size decode: the random model's frames are mostly clamped (a useless comparison)");
        CHECKF(e <= 1e-3, "full-size decode: cuda vs cpu %.3g", e);
        size_t nz = (size_t)16 * T * h * wl;
        float *za = calloc(nz, sizeof(float)), *zb = calloc(nz, sizeof(float));
        t0 = now_s();
        rc1 = wan_vae_encode(vc, cpu, F, H, W, synth_get, NULL, za);
        t1 = now_s();
        rc2 = wan_vae_encode(vg, gpu, F, H, W, synth_get, NULL, zb);
        t2 = now_s();
        CHECKF(rc1 == 0 && rc2 == 0, "full-size encode rc %d / %d (%s)", rc1, rc2, iso_errmsg());
        e = rel_diff(zb, za, nz);
        printf("  encode %d frames of %dx%d: cuda vs cpu rel %.3g; cpu %.2f s, cuda %.2f s\n", F, W, H, e, t1 - t0,
               t2 - t1);
        CHECKF(e <= 1e-3, "full-size encode: cuda vs cpu %.3g", e);
        free(lat); free(a.frames); free(b.frames); free(za); free(zb);
    }
    nn_wres_free(&r);
    wan_vae_free(&vg);
    wan_vae_free(&vc);
    weights_close(&w);
    nn_free(&cpu);
    unlink(path);
    rmdir(dir);
}

static void test_cuda(struct nn *cpu)
{
    struct nn *gpu = NULL;
    int rc = nn_new(&gpu, NN_CUDA, 2);
    if (rc) {
        CHECKF(rc == ISO_EUNAVAIL, "nn_new(NN_CUDA): rc %d (%s)", rc, iso_errmsg());
        TEST_SKIP("Wan VAE on the CUDA backend against the CPU backend: %s", iso_errmsg());
        return;
    }
    printf("# %s\n", nn_backend_info(gpu));
    {
        TEST("attention as products (D 384, two slices of scores) on CUDA against the fused CPU attention");
        int L = 4500, D = 384;
        size_t n = (size_t)L * D;
        float *q, *k, *v, *fused, *o = malloc(n * sizeof(float));
        attn_inputs(L, D, &q, &k, &v, &fused, cpu);
        float *dq = nn_alloc(gpu, n), *dk = nn_alloc(gpu, n), *dv = nn_alloc(gpu, n), *dout = nn_alloc(gpu, n);
        float *dsc = nn_alloc(gpu, nn_attention_products_bytes(D, L, L) / sizeof(float));
        CHECK(dq && dk && dv && dout && dsc);
        if (dq && dk && dv && dout && dsc && !nn_upload(gpu, dq, q, n) && !nn_upload(gpu, dk, k, n) &&
            !nn_upload(gpu, dv, v, n)) {
            nn_attention_products(gpu, dout, dq, dk, dv, L, L, D, 1.0f / sqrtf((float)D), dsc);
            CHECKF(nn_download(gpu, o, dout, n) == 0, "download: %s", iso_errmsg());
            double e = rel_diff(o, fused, n);
            printf("  L %d, D %d: cuda products vs cpu fused rel %.3g\n", L, D, e);
            CHECKF(e <= 1e-4, "cuda products vs cpu fused %.3g", e);
        }
        nn_release(gpu, &dq); nn_release(gpu, &dk); nn_release(gpu, &dv); nn_release(gpu, &dout); nn_release(gpu, &dsc);
        free(q); free(k); free(v); free(fused); free(o);
    }
    for (size_t i = 0; i < sizeof FIXTURES / sizeof *FIXTURES; i++) {
        const struct fixture *fx = &FIXTURES[i];
        char dir[256], model[300], name[300];
        snprintf(dir, sizeof dir, FIX "/%s", fx->name);
        snprintf(model, sizeof model, "%s/%s", dir, fx->model);
        snprintf(name, sizeof name, "%s on CUDA (weights resident)", fx->name);
        TEST(name);
        struct weights *w = NULL;
        struct wan_vae *vc = NULL, *vg = NULL;
        struct nn_wres *r = NULL;
        const int halves = WAN_VAE_ENCODER | WAN_VAE_DECODER;
        rc = weights_open(model, &w);
        if (!rc) rc = wan_vae_open(&vc, w, halves);
        if (!rc) rc = wan_vae_open(&vg, w, halves);
        if (!rc) rc = wan_vae_relay(vg, WAN_VAE_DECODER);
        if (!rc) rc = wan_vae_relay(vg, WAN_VAE_ENCODER);
        if (!rc && !(r = nn_wres_new(NN_WRES_RESIDENT, 0))) rc = ISO_EINTERNAL;
        if (!rc) rc = wan_vae_register(vg, WAN_VAE_DECODER, r, 1);
        if (!rc) rc = wan_vae_register(vg, WAN_VAE_ENCODER, r, 1);
        if (!rc) rc = nn_wres_load(r, gpu);
        CHECKF(rc == 0, "%s: %s", model, iso_errmsg());
        if (!rc) {
            wan_vae_drop_relaid_host(vg);
            for (int k = 0; k < 3 && fx->dec_T[k]; k++) cuda_vs_cpu(vc, cpu, vg, gpu, dir, fx->dec_T[k], NULL);
            for (int k = 0; k < 3 && fx->enc[k][0]; k++) cuda_vs_cpu(vc, cpu, vg, gpu, dir, 0, fx->enc[k]);
        }
        nn_wres_free(&r);
        wan_vae_free(&vg);
        wan_vae_free(&vc);
        weights_close(&w);
    }
    test_full_size(gpu);
    nn_free(&gpu);
}

/* ---- tile-major decode (lightweight's order: one tile through every frame,
 * its frames spilled to disk) against frame-major (cpu mode's): the same
 * floats, byte for byte, on odd sizes and with one tile column; the spill
 * file leaves nothing behind; the disk it needs is the tiles' pixels
 * (counted here from the tile layout by hand); a spill directory that
 * cannot be written is refused before a frame is emitted ---- */
static void tile_major_case(struct wan_vae *v, struct nn *nn, int T, int h, int w, int tile, int ov,
                            uint64_t tile_px, const char *spill)
{
    int F = 1 + 4 * (T - 1), H = 8 * h, W = 8 * w;
    size_t n = (size_t)16 * T * h * w, fn = 3 * (size_t)F * H * W;
    float *lat = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) lat[i] = 2.0f * frand() - 1.0f;
    struct collect a = { calloc(fn, sizeof(float)), F, H, W, 0, 0 }, b = { calloc(fn, sizeof(float)), F, H, W, 0, 0 };
    struct wan_vae_tiling fm = { tile, ov, 0, NULL }, tm = { tile, ov, 1, spill };
    int rc1 = wan_vae_decode(v, nn, lat, T, h, w, &fm, collect_emit, &a);
    int rc2 = wan_vae_decode(v, nn, lat, T, h, w, &tm, collect_emit, &b);
    CHECKF(rc1 == 0 && rc2 == 0 && a.n == F && b.n == F, "%dx%d tile %d: rc %d %d (%s), frames %d %d", w, h, tile,
           rc1, rc2, iso_errmsg(), a.n, b.n);
    CHECKF(memcmp(a.frames, b.frames, fn * sizeof(float)) == 0, "%dx%d tile %d/%d: tile-major differs", w, h, tile, ov);
    const struct wan_vae_config *c = wan_vae_config(v);
    uint64_t sb = wan_vae_decode_spill_bytes(c, h, w, &tm, F), want = tile_px * 64 * 3 * 4 * (uint64_t)F;
    CHECKF(sb == want, "%dx%d tile %d: spill %llu bytes, want %llu", w, h, tile, (unsigned long long)sb,
           (unsigned long long)want);
    CHECK(wan_vae_decode_spill_bytes(c, h, w, &fm, F) == 0);
    printf("  %dx%d latents, %d frames, tile %d overlap %d: tile-major == frame-major, spill %llu bytes\n", w, h, F,
           tile, ov, (unsigned long long)sb);
    free(lat);
    free(a.frames);
    free(b.frames);
}

static void test_tile_major(struct nn *nn)
{
    TEST("tile-major decode, spilled to disk");
    struct weights *w = NULL;
    struct wan_vae *v = NULL;
    if (weights_open(FIX "/a_diffusers/model", &w) || wan_vae_open(&v, w, WAN_VAE_DECODER)) {
        CHECKF(0, "fixture a: %s", iso_errmsg());
        weights_close(&w);
        return;
    }
    char dir[] = "/tmp/test_vae_spill.XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    /* 13x10, tile 4 overlap 1: rows start 0,3,6,9 (4,4,4,1), columns 0,3,6,9,12 (4,4,4,4,1): 13 * 17 pixels */
    tile_major_case(v, nn, 3, 10, 13, 4, 1, 13 * 17, dir);
    /* 4x11, tile 5 overlap 2: one column; rows 0,3,6,9 (5,5,5,2) */
    tile_major_case(v, nn, 2, 11, 4, 5, 2, 4 * 17, dir);
    CHECKF(rmdir(dir) == 0, "spill directory %s not empty after the decodes", dir);
    /* host memory of a tile-major decode does not depend on the frame count (no F in it) and is below frame-major's */
    const struct wan_vae_config *c = wan_vae_config(v);
    struct wan_vae_tiling fm = { 8, 2, 0, NULL }, tm = { 8, 2, 1, NULL };
    CHECK(wan_vae_decode_host_bytes(c, 60, 104, &tm) < wan_vae_decode_host_bytes(c, 60, 104, &fm));
    /* an unwritable spill directory: refused before any frame */
    float lat[16 * 2 * 6 * 6] = { 0 };
    struct collect k = { calloc(3 * 5 * 48 * 48, sizeof(float)), 5, 48, 48, 0, 0 };
    struct wan_vae_tiling bad = { 4, 1, 1, "/nonexistent/spill" };
    int rc = wan_vae_decode(v, nn, lat, 2, 6, 6, &bad, collect_emit, &k);
    CHECKF(rc == ISO_ECANTCREAT && k.n == 0, "unwritable spill dir: rc %d, %d frames (%s)", rc, k.n, iso_errmsg());
    free(k.frames);
    wan_vae_free(&v);
    weights_close(&w);
}

int main(void)
{
    struct nn *nn = NULL;
    CHECK(nn_new(&nn, NN_CPU, 2) == 0);
    for (size_t i = 0; i < sizeof FIXTURES / sizeof *FIXTURES; i++) {
        const struct fixture *fx = &FIXTURES[i];
        char dir[256], model[300];
        snprintf(dir, sizeof dir, FIX "/%s", fx->name);
        snprintf(model, sizeof model, "%s/%s", dir, fx->model);
        TEST(fx->name);
        struct weights *w = NULL;
        struct wan_vae *v = NULL;
        int rc = weights_open(model, &w);
        CHECKF(rc == 0, "%s: %s", model, iso_errmsg());
        if (rc) continue;
        rc = wan_vae_open(&v, w, WAN_VAE_ENCODER | WAN_VAE_DECODER);
        CHECKF(rc == 0, "%s: %s", model, iso_errmsg());
        if (!rc) {
            const struct wan_vae_config *c = wan_vae_config(v);
            CHECK_STR(c->source, fx->source);
            CHECK_STR(c->layout, fx->layout);
            CHECK(c->z_dim == 16 && c->n_levels == 4 && c->num_res_blocks == fx->nrb && c->spatial == 8 &&
                  c->temporal == 4 && c->enc_ch[0] == fx->enc_ch0);
            CHECK(c->temporal_down[0] == fx->td[0] && c->temporal_down[1] == fx->td[1] &&
                  c->temporal_down[2] == fx->td[2]);
            for (int k = 0; k < 3 && fx->dec_T[k]; k++) check_decode(v, nn, dir, fx->dec_T[k]);
            for (int k = 0; k < 3 && fx->enc[k][0]; k++)
                check_encode(v, nn, dir, fx->enc[k][0], fx->enc[k][1], fx->enc[k][2]);
        }
        wan_vae_free(&v);
        weights_close(&w);
    }
    test_attention_products_cpu(nn);
    test_tile_major(nn);
    test_cuda(nn);
    nn_free(&nn);
    return test_report();
}
