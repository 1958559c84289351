/* test_nn_img_cuda.c — the CUDA half of the nn_img.h ops against nn_img.c.
 *
 * Two parts, from the same random inputs (odd sizes, channel counts that
 * divide nothing, flows that reach past the border, weights in every dtype a
 * struct nn_w takes):
 *
 * 1. Everywhere (CI, no GPU): the per-element functions the CUDA kernels call
 *    (common/nn_img_kern.h, compiled here by the C compiler) are run over
 *    their whole index range, one call per output element (per pixel for the
 *    warp) exactly as the kernels' grid-stride loops call them, and every
 *    result must equal nn_img.c's BIT FOR BIT. This checks the kernels' index
 *    arithmetic and float arithmetic without a card. The weight decoders are
 *    compared with weights.h's on every f16, bf16 and fp8 code.
 * 2. With a GPU and cuBLAS (a CUDA build): each op on an NN_CUDA context
 *    against the NN_CPU result. Asserted: bit-identical output for the
 *    resize, warp, pixel shuffle, leaky ReLU, PReLU, fill, scale_channels_add
 *    and lerp_plane (the kernels round every product and sum as the host does:
 *    __fmul_rn / __fadd_rn, never contracted into an FMA); the sigmoid within
 *    TOL_SIG = 1e-6 relative (the device's expf is within 2 ulp of glibc's).
 *    Without a GPU this part is ONE skip with the reason.
 * On a GPU machine: sh tests/gpu/rife_check.sh. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "nn.h"
#include "nn_img.h"
#include "nn_img_kern.h"
#include "test.h"
#include "weights.h"

#define TOL_SIG 1e-6

static struct nn *C, *G;   /* cpu, cuda (NULL without a GPU) */
static uint64_t rng = 0x2545f4914f6cdd1dull;
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
static float *zeros(size_t n) { return calloc(n ? n : 1, sizeof(float)); }

/* ---- the device side (only with G) ---- */
static float *up(const float *h, size_t n)
{
    if (!G) return NULL;
    float *d = nn_alloc(G, n);
    if (!d || nn_upload(G, d, h, n)) { printf("# upload: %s\n", iso_errmsg()); exit(1); }
    return d;
}
static void rel(float **d)
{
    if (G && *d) nn_release(G, d);
}

/* kern: the host-compiled kernel functions' result, bit for bit against cpu;
 * dev (NULL without a GPU): the device result, bit for bit (tol 0) or within tol */
static void check(const char *what, const float *cpu, const float *kern, const float *dev, size_t n, double tol)
{
    size_t bad = 0, first = 0;
    for (size_t i = 0; i < n; i++)
        if (memcmp(&cpu[i], &kern[i], sizeof(float))) {
            if (!bad) first = i;
            bad++;
        }
    CHECKF(bad == 0, "%s: kernel functions differ from nn_img.c at %zu of %zu elements (first [%zu]: %.9g vs %.9g)", what,
           bad, n, first, bad ? kern[first] : 0.0, bad ? cpu[first] : 0.0);
    if (!dev) return;
    float *h = malloc(n * sizeof(float));
    int rc = nn_download(G, h, dev, n);
    CHECKF(rc == 0, "%s: %s", what, iso_errmsg());
    double e = 0, m = 0;
    bad = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)h[i] - cpu[i]);
        if (!(d <= e)) e = d;
        if (fabs(cpu[i]) > m) m = fabs(cpu[i]);
        if (memcmp(&h[i], &cpu[i], sizeof(float))) bad++;
    }
    e /= m > 1e-30 ? m : 1e-30;
    if (tol == 0) {
        printf("# %-46s cuda: %zu of %zu elements differ (want 0)\n", what, bad, n);
        CHECKF(bad == 0, "%s: cuda differs from cpu at %zu of %zu elements (rel err %.3g)", what, bad, n, e);
    } else {
        printf("# %-46s cuda: rel err %.3g (tol %.0e)\n", what, e, tol);
        CHECKF(e <= tol, "%s: cuda rel err %.3g > %.3g", what, e, tol);
    }
    free(h);
}

/* ---- weights: host bytes, the cpu view, the kernel view, a device view ---- */
struct hw {
    void *data;
    struct nn_w w;      /* host */
    struct nn_w d;      /* device: nn_w_upload (fp8 becomes bf16 there) */
    struct nn_w draw;   /* device: the bytes as stored (a streamed block holds fp8 as fp8) */
    float *dbuf;
};
static struct hw weight(size_t n, enum wt_dtype dt, float amp, float scale)
{
    struct hw h;
    memset(&h, 0, sizeof h);
    size_t es = wt_dtype_size(dt), nb = n * es;
    h.data = calloc(1, nb + 4);
    for (size_t i = 0; i < n; i++) {
        float v = frand() * amp;
        uint8_t b = (uint8_t)(rng >> 24);
        switch (dt) {
        case WT_F32: ((float *)h.data)[i] = v; break;
        case WT_BF16: ((uint16_t *)h.data)[i] = wt_f32_to_bf16(v); break;
        case WT_F16: ((uint16_t *)h.data)[i] = wt_f32_to_f16(v); break;
        case WT_F8_E4M3: ((uint8_t *)h.data)[i] = (b & 0x7f) == 0x7f ? b ^ 1 : b; break;   /* not NaN */
        default: ((uint8_t *)h.data)[i] = (b & 0x7c) == 0x7c ? b & 0xbf : b;              /* not inf/NaN */
        }
    }
    h.w = nn_w_at(h.data, 0, dt, scale);
    if (G) {
        if (nn_w_upload(G, NULL, &h.w, n, &h.d)) { printf("# nn_w_upload: %s\n", iso_errmsg()); exit(1); }
        size_t nf = (nb + 3) / 4;
        float *tmp = calloc(nf ? nf : 1, sizeof(float));
        memcpy(tmp, h.data, nb);
        h.dbuf = up(tmp, nf);
        free(tmp);
        h.draw = nn_w_at(h.dbuf, 0, dt, scale);
    }
    return h;
}
static void weight_free(struct hw *h)
{
    free(h->data);
    rel(&h->dbuf);
}
static struct nni_w kw(const struct nn_w *w)
{
    struct nni_w k = { w->data, (int)w->dtype, w->scale };
    return k;
}

/* ---- the decoders: every code ---- */
static void test_decoders(void)
{
    TEST("weight decoders of nn_img_kern.h against weights.h, every code");
    size_t bad = 0;
    for (uint32_t c = 0; c < 65536; c++) {
        uint16_t h = (uint16_t)c;
        float a = nni_wraw(&h, WT_F16, 0), b = wt_f16_to_f32(h);
        float p = nni_wraw(&h, WT_BF16, 0), q = wt_bf16_to_f32(h);
        if (memcmp(&a, &b, 4) || memcmp(&p, &q, 4)) bad++;
    }
    CHECKF(bad == 0, "f16/bf16: %zu codes differ", bad);
    bad = 0;
    for (uint32_t c = 0; c < 256; c++) {
        uint8_t b8 = (uint8_t)c;
        float a = nni_wraw(&b8, WT_F8_E4M3, 0), b = wt_e4m3_to_f32(b8);
        float p = nni_wraw(&b8, WT_F8_E5M2, 0), q = wt_e5m2_to_f32(b8);
        if (memcmp(&a, &b, 4) || memcmp(&p, &q, 4)) bad++;
    }
    CHECKF(bad == 0, "fp8: %zu codes differ", bad);
    float f[3] = { 1.5f, -2.25f, 3.0f };
    struct nn_w w = nn_w_at(f, 0, WT_F32, 0.5f);
    CHECK(nni_wget(kw(&w), 1) == nn_w_get(&w, 1) && nni_wget(kw(&w), 1) == -1.125f);
}

/* ---- ops ---- */
static void resize_case(int Cc, int H, int W, int Ho, int Wo)
{
    size_t ni = (size_t)Cc * H * W, no = (size_t)Cc * Ho * Wo;
    float *x = rnd(ni, 3), *y = zeros(no), *k = zeros(no), *dx = up(x, ni), *dy = up(y, no);
    nn_resize_bilinear(C, y, Ho, Wo, x, Cc, H, W);
    float sh = (float)H / (float)Ho, sw = (float)W / (float)Wo;
    for (size_t e = 0; e < no; e++) k[e] = nni_resize_at(x, H, W, Ho, Wo, sh, sw, e);
    if (G) nn_resize_bilinear(G, dy, Ho, Wo, dx, Cc, H, W);
    char what[80];
    snprintf(what, sizeof what, "resize [%d, %dx%d] -> %dx%d", Cc, H, W, Ho, Wo);
    check(what, y, k, dy, no, 0);
    free(x); free(y); free(k); rel(&dx); rel(&dy);
}

static void test_resize(void)
{
    TEST("bilinear resize (align_corners=False)");
    resize_case(5, 37, 29, 13, 71);     /* down in y, up in x, ratios not exact */
    resize_case(7, 64, 48, 16, 12);     /* RIFE's 1/4 */
    resize_case(3, 16, 12, 64, 48);     /* and back up */
    resize_case(28, 32, 40, 2, 5);      /* 1/16 of a 28-plane block input */
    resize_case(13, 9, 11, 9, 11);      /* same size */
    resize_case(1, 1, 1, 3, 5);         /* one pixel */
}

static void warp_case(int Cc, int H, int W, float amp)
{
    size_t P = (size_t)H * W, n = (size_t)Cc * P;
    float *x = rnd(n, 2), *u = rnd(P, amp), *v = rnd(P, amp), *y = zeros(n), *k = zeros(n);
    /* some integer flows and exact border hits */
    for (size_t i = 0; i < P; i += 7) { u[i] = (float)(int)u[i]; v[i] = (float)(int)(v[i] * 2); }
    u[0] = -1e6f; v[P - 1] = 1e6f;
    float *dx = up(x, n), *du = up(u, P), *dv = up(v, P), *dy = up(y, n);
    nn_warp_bilinear(C, y, x, Cc, H, W, u, v);
    for (size_t p = 0; p < P; p++) nni_warp_px(k, x, Cc, H, W, u, v, p);
    if (G) nn_warp_bilinear(G, dy, dx, Cc, H, W, du, dv);
    char what[80];
    snprintf(what, sizeof what, "warp [%d, %dx%d], flow up to %g px", Cc, H, W, amp);
    check(what, y, k, dy, n, 0);
    free(x); free(u); free(v); free(y); free(k);
    rel(&dx); rel(&du); rel(&dv); rel(&dy);
}

static void test_warp(void)
{
    TEST("backward warp (grid_sample bilinear, border, align_corners=True)");
    warp_case(3, 23, 31, 8);
    warp_case(4, 17, 45, 40);    /* much of it clamped at the border */
    warp_case(1, 1, 9, 3);
    warp_case(5, 12, 1, 3);
}

static void shuffle_case(int Cc, int H, int W, int r)
{
    size_t n = (size_t)Cc * r * r * H * W;
    float *x = rnd(n, 1), *y = zeros(n), *k = zeros(n), *dx = up(x, n), *dy = up(y, n);
    nn_pixel_shuffle(C, y, x, Cc, H, W, r);
    for (size_t e = 0; e < n; e++) k[e] = nni_shuffle_at(x, H, W, r, e);
    if (G) nn_pixel_shuffle(G, dy, dx, Cc, H, W, r);
    char what[80];
    snprintf(what, sizeof what, "pixel shuffle [%d, %dx%d] r=%d", Cc * r * r, H, W, r);
    check(what, y, k, dy, n, 0);
    free(x); free(y); free(k); rel(&dx); rel(&dy);
}

static void test_elementwise(void)
{
    TEST("pixel shuffle, leaky ReLU, fill, sigmoid");
    shuffle_case(13, 5, 7, 2);
    shuffle_case(3, 3, 11, 3);
    shuffle_case(1, 1, 1, 1);
    size_t n = 100003;   /* past one CPU chunk (16384), not a multiple of a block */
    float *x = rnd(n, 6), *y = zeros(n), *k = zeros(n);
    x[0] = 0.0f; x[1] = -0.0f;
    float *dx = up(x, n), *dy = up(y, n);
    nn_leaky_relu(C, y, x, n, 0.2f);
    for (size_t e = 0; e < n; e++) k[e] = nni_leaky(x[e], 0.2f);
    if (G) nn_leaky_relu(G, dy, dx, n, 0.2f);
    check("leaky relu 0.2", y, k, dy, n, 0);
    /* in place */
    float *xc = malloc(n * sizeof(float));
    memcpy(xc, x, n * sizeof(float));
    nn_leaky_relu(C, xc, xc, n, 0.01f);
    for (size_t e = 0; e < n; e++) k[e] = nni_leaky(x[e], 0.01f);
    if (G) nn_leaky_relu(G, dx, dx, n, 0.01f);
    check("leaky relu 0.01 in place", xc, k, dx, n, 0);
    if (G) nn_upload(G, dx, x, n);
    nn_fill(C, y, n, 0.4375f);
    for (size_t e = 0; e < n; e++) k[e] = 0.4375f;
    if (G) nn_fill(G, dy, n, 0.4375f);
    check("fill", y, k, dy, n, 0);
    nn_sigmoid(C, y, x, n);
    for (size_t e = 0; e < n; e++) k[e] = nni_sigmoid(x[e]);
    if (G) nn_sigmoid(G, dy, dx, n);
    check("sigmoid", y, k, dy, n, TOL_SIG);
    free(x); free(y); free(k); free(xc); rel(&dx); rel(&dy);
}

static const char *dt_name(enum wt_dtype dt) { return wt_dtype_name(dt); }

static void test_channels(void)
{
    TEST("PReLU and scale_channels_add (every weight dtype), lerp_plane");
    static const enum wt_dtype dts[] = { WT_F32, WT_F16, WT_BF16, WT_F8_E4M3, WT_F8_E5M2 };
    int Cc = 11;
    size_t S = 1237, n = (size_t)Cc * S;
    float *x = rnd(n, 2), *r = rnd(n, 2), *y = zeros(n), *k = zeros(n);
    float *dx = up(x, n), *dr = up(r, n), *dy = up(y, n);
    for (size_t t = 0; t < sizeof dts / sizeof dts[0]; t++) {
        float scale = dts[t] == WT_F8_E4M3 || dts[t] == WT_F8_E5M2 ? 0.0625f : 1.0f;
        struct hw g = weight((size_t)Cc, dts[t], 1.5f, scale);
        for (int view = 0; view < (G ? 2 : 1); view++) {
            const struct nn_w *dw = G ? (view ? &g.draw : &g.d) : NULL;
            const char *vn = view ? " (stored bytes)" : "";
            char what[96];
            nn_prelu(C, y, x, Cc, S, &g.w);
            for (size_t e = 0; e < n; e++) k[e] = nni_prelu_at(x, S, kw(&g.w), e);
            if (G) nn_prelu(G, dy, dx, Cc, S, dw);
            snprintf(what, sizeof what, "prelu [%d, %zu] %s%s", Cc, S, dt_name(dts[t]), vn);
            check(what, y, k, dy, n, 0);
            nn_scale_channels_add(C, y, x, Cc, S, &g.w, r);
            for (size_t e = 0; e < n; e++) k[e] = nni_scale_add_at(x, S, kw(&g.w), r, e);
            if (G) nn_scale_channels_add(G, dy, dx, Cc, S, dw, dr);
            snprintf(what, sizeof what, "scale_channels_add %s%s", dt_name(dts[t]), vn);
            check(what, y, k, dy, n, 0);
            nn_scale_channels_add(C, y, x, Cc, S, &g.w, NULL);
            for (size_t e = 0; e < n; e++) k[e] = nni_scale_add_at(x, S, kw(&g.w), NULL, e);
            if (G) nn_scale_channels_add(G, dy, dx, Cc, S, dw, NULL);
            snprintf(what, sizeof what, "scale_channels (no residual) %s%s", dt_name(dts[t]), vn);
            check(what, y, k, dy, n, 0);
        }
        weight_free(&g);
    }
    /* in place on the residual, as RIFE's ResConv calls it */
    struct hw g = weight((size_t)Cc, WT_F32, 1, 1);
    float *rc = malloc(n * sizeof(float));
    memcpy(rc, r, n * sizeof(float));
    nn_scale_channels_add(C, rc, x, Cc, S, &g.w, rc);
    for (size_t e = 0; e < n; e++) k[e] = nni_scale_add_at(x, S, kw(&g.w), r, e);
    if (G) nn_scale_channels_add(G, dr, dx, Cc, S, &g.d, dr);
    check("scale_channels_add in place (y == res)", rc, k, G ? dr : NULL, n, 0);
    weight_free(&g);
    free(rc);
    /* lerp: 3 planes of an odd plane size; in place on a */
    size_t P = 4099;
    int planes = 3;
    float *a = rnd(planes * P, 1), *b = rnd(planes * P, 1), *w = rnd(P, 4), *ly = zeros(planes * P), *lk = zeros(planes * P);
    for (size_t i = 0; i < P; i++) w[i] = w[i] * 0.25f + 0.5f;
    float *da = up(a, planes * P), *db = up(b, planes * P), *dw = up(w, P), *dly = up(ly, planes * P);
    nn_lerp_plane(C, ly, a, b, w, planes, P);
    for (size_t e = 0; e < planes * P; e++) lk[e] = nni_lerp_at(a, b, w, P, e);
    if (G) nn_lerp_plane(G, dly, da, db, dw, planes, P);
    check("lerp_plane [3, 4099]", ly, lk, dly, planes * P, 0);
    nn_lerp_plane(C, a, a, b, w, planes, P);
    if (G) nn_lerp_plane(G, da, da, db, dw, planes, P);
    check("lerp_plane in place (y == a)", a, lk, da, planes * P, 0);
    free(a); free(b); free(w); free(ly); free(lk);
    rel(&da); rel(&db); rel(&dw); rel(&dly);
    free(x); free(r); free(y); free(k);
    rel(&dx); rel(&dr); rel(&dy);
}

static void run_all(void)
{
    test_resize();
    test_warp();
    test_elementwise();
    test_channels();
    if (G) CHECKF(nn_sync(G) == 0, "sync: %s", iso_errmsg());
}

int main(void)
{
    if (nn_new(&C, NN_CPU, 2)) { printf("FAIL - cpu nn: %s\n", iso_errmsg()); return 1; }
    test_decoders();
    int rc = nn_new(&G, NN_CUDA, 2);
    if (rc) {
        CHECKF(rc == ISO_EUNAVAIL && iso_errmsg()[0], "nn_new(NN_CUDA) without a usable GPU: rc %d, '%s'", rc,
               iso_errmsg());
        TEST_SKIP("nn_img ops on the CUDA backend against the CPU backend: %s", iso_errmsg());
        G = NULL;
    } else {
        printf("# %s\n", nn_backend_info(G));
    }
    run_all();   /* the kernel functions always; the device too when there is one */
    nn_free(&G);
    nn_free(&C);
    return test_report();
}
