/* test_segment_gen_wan.c — segment-gen's Wan2.1 DiT against diffusers.
 * Fixtures: tests/fixtures/wan/{a,b}/ written by tests/ref/wan_ref.py
 * (diffusers' WanTransformer3DModel on tiny random configurations, every
 * weight randomised; FlowMatchEulerDiscreteScheduler and
 * UniPCMultistepScheduler for the sampling). For every layout of each
 * configuration (diffusers directory, sharded or not; Wan checkpoint
 * directory; bare Wan single file; ComfyUI prefix + scaled fp8; bf16):
 *   - one forward pass (velocity) within 1e-4 relative, float32:
 *     max |ours - ref| <= 1e-4 * max |ref|, at two timesteps and both prompts
 *   - 3 Euler steps and 4 UniPC steps with CFG (guidance 5, shift 3) within
 *     1e-3 relative in the same sense
 *   - the sigma schedules and model timesteps equal to diffusers' (1e-6)
 *   - results bit-identical at 1 and 3 threads.
 * And the nn core's CUDA backend against its CPU backend (check_cuda; a skip
 * with the reason where nn_new(NN_CUDA) fails, as on a machine without a
 * GPU): the T2V and VACE fixtures' velocity and 4 UniPC steps with CFG, the
 * weights resident (beefy) and streamed (lightweight), within stated
 * tolerances. tests/gpu/wan_check.sh runs this program on a card. */
#include <stdint.h>

#include "err.h"
#include "nn.h"
#include "nn_wres.h"
#include "fixture.h"
#include "test.h"
#include "wan.h"
#include "wan_sched.h"
#include "weights.h"

struct fix {
    struct weights *text, *noise, *exp, *vctx;
    float *pos, *neg, *x0, *ctx;   /* ctx: the VACE context (set "wan_vace"), else NULL */
    int pos_rows, neg_rows;
    uint64_t n;
    int F, H, W;
    double t_cond, t_neg, scale;
};

/* tests/fixtures/<set>/<cfg>: set "wan" (T2V) or "wan_vace" (+ vace_context, its scale) */
static int fix_open_set(const char *set, const char *cfg, struct fix *f)
{
    char p[600];
    memset(f, 0, sizeof *f);
    snprintf(p, sizeof p, "%s/tests/fixtures/%s/%s/text.safetensors", fixture_root(), set, cfg);
    if (weights_open(p, &f->text)) return -1;
    snprintf(p, sizeof p, "%s/tests/fixtures/%s/%s/noise.safetensors", fixture_root(), set, cfg);
    if (weights_open(p, &f->noise)) return -1;
    snprintf(p, sizeof p, "%s/tests/fixtures/%s/%s/expected.safetensors", fixture_root(), set, cfg);
    if (weights_open(p, &f->exp)) return -1;
    f->scale = 1.0;
    if (strcmp(set, "wan_vace") == 0) {
        snprintf(p, sizeof p, "%s/tests/fixtures/%s/%s/vace_context.safetensors", fixture_root(), set, cfg);
        const char *sc = NULL;
        if (weights_open(p, &f->vctx) || !(f->ctx = fixture_tensor(f->vctx, "vace_context", NULL)) ||
            !(sc = weights_meta(f->exp, "scale")))
            return -1;
        f->scale = atof(sc);
    }
    const struct wt_tensor *tp = weights_find(f->text, "prompt.0"), *tn = weights_find(f->text, "negative");
    const struct wt_tensor *tx = weights_find(f->noise, "noise");
    if (!tp || !tn || !tx || tx->n_dims != 4) return -1;
    f->pos_rows = (int)tp->shape[0];
    f->neg_rows = (int)tn->shape[0];
    f->F = (int)tx->shape[1]; f->H = (int)tx->shape[2]; f->W = (int)tx->shape[3];
    f->pos = fixture_tensor(f->text, "prompt.0", NULL);
    f->neg = fixture_tensor(f->text, "negative", NULL);
    f->x0 = fixture_tensor(f->noise, "noise", &f->n);
    const char *tc = weights_meta(f->exp, "t_cond"), *tn2 = weights_meta(f->exp, "t_neg");
    if (!f->pos || !f->neg || !f->x0 || !tc) return -1;
    f->t_cond = atof(tc);
    f->t_neg = tn2 ? atof(tn2) : f->t_cond;
    return 0;
}

static int fix_open(const char *cfg, struct fix *f)
{
    if (fix_open_set("wan", cfg, f)) return -1;
    return weights_meta(f->exp, "t_neg") ? 0 : -1;
}

static void fix_close(struct fix *f)
{
    weights_close(&f->text);
    weights_close(&f->noise);
    weights_close(&f->exp);
    weights_close(&f->vctx);
    free(f->pos);
    free(f->neg);
    free(f->x0);
    free(f->ctx);
}

/* the latents after sampling, as segment-gen computes them: the text contexts on the nn
 * backend, latents and velocities in host memory (malloc'd result, NULL on failure) */
static float *sample(const struct wan *m, struct nn *nn, struct wan_state *st, const struct fix *f,
                     enum wan_sampler kind, int steps, double shift, float guidance)
{
    struct wan_sched sc;
    size_t T = (size_t)WAN_TEXT_LEN * m->cfg.dim;
    float *cc = nn_alloc(nn, T), *cu = nn_alloc(nn, T), *x = malloc(f->n * sizeof(float)),
          *vc = malloc(f->n * sizeof(float)), *vu = malloc(f->n * sizeof(float));
    int rc = !cc || !cu || !x || !vc || !vu || wan_sched_init(&sc, kind, steps, shift, f->n);
    if (!rc) {
        memcpy(x, f->x0, f->n * sizeof(float));
        rc = wan_embed_text(m, nn, st, f->pos, f->pos_rows, cc) || wan_embed_text(m, nn, st, f->neg, f->neg_rows, cu) ||
             wan_sample(m, nn, st, &sc, cc, cu, guidance, x, vc, vu, NULL);
        wan_sched_free(&sc);
    }
    nn_release(nn, &cc);
    nn_release(nn, &cu);
    free(vc);
    free(vu);
    if (rc) {
        free(x);
        x = NULL;
    }
    return x;
}

static float *velocity(const struct wan *m, struct nn *nn, struct wan_state *st, const float *emb, int rows,
                       const float *x, float t, uint64_t n)
{
    float *ctx = nn_alloc(nn, (size_t)WAN_TEXT_LEN * m->cfg.dim), *v = malloc(n * sizeof(float));
    if (!ctx || !v || wan_embed_text(m, nn, st, emb, rows, ctx) || wan_forward(m, nn, st, x, t, ctx, v)) {
        free(v);
        v = NULL;
    }
    nn_release(nn, &ctx);
    return v;
}

/* one layout of one configuration against the fixture; tag "fp8_"/"bf16_": the reference
   computed on the dequantised / rounded weights ("" for float32) */
static void check_model(const char *cfg, const char *path, int heads, const char *tag, int sampling)
{
    char full[600], label[700];
    struct fix f;
    snprintf(full, sizeof full, "%s/tests/fixtures/wan/%s/%s", fixture_root(), cfg, path);
    snprintf(label, sizeof label, "config %s, %s", cfg, path);
    TEST(label);
    if (fix_open(cfg, &f)) {
        CHECKF(0, "fixture %s unreadable: %s", cfg, iso_errmsg());
        fix_close(&f);
        return;
    }
    struct wan *m = NULL;
    int rc = wan_open(full, heads, &m);
    CHECKF(rc == 0, "wan_open '%s': %s", full, iso_errmsg());
    if (rc) { fix_close(&f); return; }
    float *out[2][4] = { { 0 } };
    for (int ti = 0; ti < 2; ti++) {
        int threads = ti ? 3 : 1;
        struct nn *nn = NULL;
        struct wan_state *st = NULL;
        if (nn_new(&nn, NN_CPU, threads) || wan_state_new(m, nn, f.F, f.H, f.W, &st)) {
            CHECKF(0, "state: %s", iso_errmsg());
            nn_free(&nn);
            break;
        }
        out[ti][0] = velocity(m, nn, st, f.pos, f.pos_rows, f.x0, (float)f.t_cond, f.n);
        if (!*tag) out[ti][1] = velocity(m, nn, st, f.neg, f.neg_rows, f.x0, (float)f.t_neg, f.n);
        if (sampling) {
            if (!*tag) out[ti][2] = sample(m, nn, st, &f, WAN_SAMPLER_EULER, 3, 3.0, 5.0f);
            out[ti][3] = sample(m, nn, st, &f, WAN_SAMPLER_UNIPC, 4, 3.0, 5.0f);
        }
        wan_state_free(nn, &st);
        nn_free(&nn);
    }
    char names[4][48];
    snprintf(names[0], sizeof names[0], "%svelocity_cond", tag);
    snprintf(names[1], sizeof names[1], "velocity_neg");
    snprintf(names[2], sizeof names[2], "euler");
    snprintf(names[3], sizeof names[3], "%sunipc", tag);
    const double tol[4] = { 1e-4, 1e-4, 1e-3, 1e-3 };
    for (int k = 0; k < 4; k++) {
        if (!out[0][k]) continue;
        uint64_t n = 0;
        float *ref = fixture_tensor(f.exp, names[k], &n);
        CHECKF(ref && n == f.n, "expected tensor '%s' in the fixture", names[k]);
        if (ref && n == f.n) {
            double e = fixture_rel_err(out[0][k], ref, n);
            printf("  %-18s rel err %.3g (tol %.0e)\n", names[k], e, tol[k]);
            CHECKF(e <= tol[k], "%s: %s rel err %.3g > %.0e", label, names[k], e, tol[k]);
        }
        free(ref);
        CHECKF(out[1][k] && memcmp(out[0][k], out[1][k], f.n * sizeof(float)) == 0,
               "%s: %s differs between 1 and 3 threads", label, names[k]);
    }
    for (int ti = 0; ti < 2; ti++)
        for (int k = 0; k < 4; k++) free(out[ti][k]);
    wan_close(&m);
    fix_close(&f);
}

/* diffusers' schedules (recorded by wan_ref.py in the fixture's metadata) */
static void check_schedules(void)
{
    TEST("sigma schedules and timesteps as diffusers");
    struct weights *w = NULL;
    char p[600];
    snprintf(p, sizeof p, "%s/tests/fixtures/wan/a/expected.safetensors", fixture_root());
    if (weights_open(p, &w)) { CHECKF(0, "%s", iso_errmsg()); return; }
    struct { const char *sig, *ts; enum wan_sampler k; int steps; } s[] = {
        { "euler_sigmas", "euler_timesteps", WAN_SAMPLER_EULER, 3 },
        { "unipc_sigmas", "unipc_timesteps", WAN_SAMPLER_UNIPC, 4 },
    };
    struct nn *nn = NULL;
    CHECK(nn_new(&nn, NN_CPU, 1) == 0);
    for (int i = 0; i < 2; i++) {
        struct wan_sched sc;
        CHECK(wan_sched_init(&sc, s[i].k, s[i].steps, 3.0, 16) == 0);
        const char *js = weights_meta(w, s[i].sig), *jt = weights_meta(w, s[i].ts);
        CHECK(js && jt);
        if (!js || !jt) continue;
        /* "[1.0, 0.75..., ...]": parse the numbers in order */
        const char *q = js + 1;
        for (int k = 0; k <= s[i].steps; k++) {
            char *e;
            double v = strtod(q, &e);
            CHECKF(e != q && fabs(v - sc.sigmas[k]) <= 1e-6, "%s[%d] = %.9g, ours %.9g", s[i].sig, k, v,
                   (double)sc.sigmas[k]);
            q = e + 1;
        }
        q = jt + 1;
        for (int k = 0; k < s[i].steps; k++) {
            char *e;
            double v = strtod(q, &e);
            CHECKF(e != q && fabs(v - sc.timesteps[k]) <= 1e-3, "%s[%d] = %.9g, ours %.9g", s[i].ts, k, v,
                   (double)sc.timesteps[k]);
            q = e + 1;
        }
        wan_sched_free(&sc);
    }
    nn_free(&nn);
    weights_close(&w);
}

/* the noise generator: fixed values (so a change is seen), moments, independence of n */
static void check_noise(void)
{
    TEST("noise generator");
    enum { N = 200001 };
    float *a = malloc(N * sizeof(float)), *b = malloc(7 * sizeof(float));
    wan_noise(42, a, N);
    wan_noise(42, b, 7);
    CHECK(memcmp(a, b, 7 * sizeof(float)) == 0);
    double s = 0, s2 = 0, s4 = 0;
    for (int i = 0; i < N; i++) { s += a[i]; s2 += (double)a[i] * a[i]; s4 += (double)a[i] * a[i] * a[i] * a[i]; }
    double mean = s / N, var = s2 / N - mean * mean, kurt = s4 / N / (var * var);
    CHECKF(fabs(mean) < 0.01 && fabs(var - 1) < 0.02 && fabs(kurt - 3) < 0.1, "mean %g var %g kurtosis %g", mean, var,
           kurt);
    wan_noise(43, b, 7);
    CHECK(memcmp(a, b, 7 * sizeof(float)) != 0);
    free(a);
    free(b);
}

/* ---- the CUDA backend against the CPU backend ----
 * One fixture's velocity (prompt, t_cond) and 4 UniPC steps with CFG 5 on
 * NN_CPU (weights read in place) and on NN_CUDA with the weights resident
 * (beefy) and streamed (lightweight). Tolerances, max |cuda - cpu| / max |cpu|:
 * velocity 1e-4, latents 1e-3 (CFG 5 multiplies a velocity difference by up
 * to 9 per step). Both hold for every weight dtype: in the default
 * NN_PREC_F32, bf16 and fp8 weights multiply activations split into three
 * bf16 terms with fp32 accumulation (cuBLAS), float32-accurate products as
 * on the CPU; what differs is summation order and fused multiply-adds. */
static void run_backend(const struct wan *m, struct nn *nn, const struct fix *f, float **v, float **lat)
{
    struct wan_state *st = NULL;
    *v = *lat = NULL;
    if (wan_state_new(m, nn, f->F, f->H, f->W, &st)) return;
    wan_state_set_vace(st, f->ctx, (float)f->scale);
    *v = velocity(m, nn, st, f->pos, f->pos_rows, f->x0, (float)f->t_cond, f->n);
    *lat = sample(m, nn, st, f, WAN_SAMPLER_UNIPC, 4, 3.0, 5.0f);
    wan_state_free(nn, &st);
}

static void check_cuda_model(const char *set, const char *cfg, const char *path, int heads)
{
    char full[600], label[700];
    struct fix f;
    snprintf(full, sizeof full, "%s/tests/fixtures/%s/%s/%s", fixture_root(), set, cfg, path);
    snprintf(label, sizeof label, "CUDA vs CPU: %s %s, %s", set, cfg, path);
    TEST(label);
    if (fix_open_set(set, cfg, &f)) {
        CHECKF(0, "fixture %s/%s unreadable: %s", set, cfg, iso_errmsg());
        fix_close(&f);
        return;
    }
    struct wan *m = NULL;
    struct nn *nn = NULL;
    float *v0 = NULL, *l0 = NULL;
    if (wan_open(full, heads, &m) || nn_new(&nn, NN_CPU, 2)) {
        CHECKF(0, "%s: %s", label, iso_errmsg());
    } else {
        run_backend(m, nn, &f, &v0, &l0);
        CHECKF(v0 && l0, "%s: cpu run: %s", label, iso_errmsg());
    }
    nn_free(&nn);
    wan_close(&m);
    const enum nn_wres_mode modes[2] = { NN_WRES_RESIDENT, NN_WRES_STREAMED };
    for (int i = 0; v0 && l0 && i < 2; i++) {
        float *v = NULL, *l = NULL;
        int rc = wan_open(full, heads, &m);
        if (!rc) rc = nn_new(&nn, NN_CUDA, 2);
        if (!rc) rc = wan_load(m, nn, modes[i]);
        CHECKF(rc == 0, "%s, %s: %s", label, nn_wres_mode_name(modes[i]), iso_errmsg());
        if (!rc) {
            run_backend(m, nn, &f, &v, &l);
            CHECKF(v && l, "%s, %s: cuda run: %s", label, nn_wres_mode_name(modes[i]), iso_errmsg());
        }
        if (v && l) {
            double ev = fixture_rel_err(v, v0, f.n), el = fixture_rel_err(l, l0, f.n);
            printf("  %-9s velocity rel err %.3g (tol 1e-4), latents %.3g (tol 1e-3)\n", nn_wres_mode_name(modes[i]),
                   ev, el);
            CHECKF(ev <= 1e-4, "%s, %s: velocity rel err %.3g > 1e-4", label, nn_wres_mode_name(modes[i]), ev);
            CHECKF(el <= 1e-3, "%s, %s: latents rel err %.3g > 1e-3", label, nn_wres_mode_name(modes[i]), el);
            if (modes[i] == NN_WRES_STREAMED) {
                uint64_t copies = 0, hits = 0, bytes = 0;
                nn_wres_stats(m->wres, &copies, &hits, &bytes);
                printf("  stream: %llu copies, %llu prefetched, %llu bytes\n", (unsigned long long)copies,
                       (unsigned long long)hits, (unsigned long long)bytes);
                CHECKF(copies > 0 && bytes > 0, "%s: nothing streamed", label);
            }
        }
        free(v);
        free(l);
        if (m) wan_unload(m);   /* before the context it lives on */
        nn_free(&nn);
        wan_close(&m);
    }
    free(v0);
    free(l0);
    fix_close(&f);
}

static void check_cuda(void)
{
    struct nn *g = NULL;
    int rc = nn_new(&g, NN_CUDA, 1);
    if (rc) {
        CHECKF(rc == ISO_EUNAVAIL && iso_errmsg()[0], "nn_new(NN_CUDA) without a usable GPU: rc %d, '%s'", rc,
               iso_errmsg());
        TEST_SKIP("Wan DiT on the CUDA backend against the CPU backend: %s", iso_errmsg());
        return;
    }
    printf("# %s\n", nn_backend_info(g));
    nn_free(&g);
    check_cuda_model("wan", "a", "diffusers", 0);                 /* f32 */
    check_cuda_model("wan", "a", "comfy_fp8.safetensors", 2);     /* scaled fp8 e4m3 */
    check_cuda_model("wan", "b", "wan_bf16.safetensors", 4);      /* bf16 */
    check_cuda_model("wan_vace", "a", "diffusers", 0);            /* VACE, layers [0, 2] */
    check_cuda_model("wan_vace", "a", "comfy_bf16.safetensors", 2);
    check_cuda_model("wan_vace", "b", "wan", 0);                  /* VACE, layers [0, 1], scale 0.6 */
}

int main(void)
{
    check_schedules();
    check_noise();
    check_model("a", "diffusers", 0, "", 1);
    check_model("a", "wan", 0, "", 1);
    check_model("a", "comfy_fp8.safetensors", 2, "fp8_", 1);
    check_model("b", "diffusers", 0, "", 1);
    check_model("b", "wan.safetensors", 4, "", 1);
    check_model("b", "wan_bf16.safetensors", 4, "bf16_", 1);
    check_cuda();
    return test_report();
}
