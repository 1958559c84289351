/* test_segment_gen_wan_vace.c — segment-gen's Wan2.1 VACE DiT against diffusers.
 * Fixtures: tests/fixtures/wan_vace/{a,b}/ written by tests/ref/wan_vace_ref.py
 * (tiny random WanVACETransformer3DModels, every weight randomised, VACE
 * projections included; the latents from diffusers' own WanVACEPipeline loop,
 * the context it built, captured at the transformer's input). For every
 * layout of each configuration (a: diffusers directory, ComfyUI-prefixed bf16
 * single file whose vace_layers are inferred; b: sharded diffusers directory,
 * Wan checkpoint directory with vace_layers [0, 1] in config.json):
 *   - vace_layers and where they came from
 *   - one forward pass (velocity) within 1e-4 relative, float32:
 *     max |ours - ref| <= 1e-4 * max |ref|
 *   - 4 UniPC steps (and 3 Euler steps for a) with CFG 5, shift 3, the hints at
 *     the configuration's scale (a 1.0, b 0.6), within 1e-3 relative
 *   - results bit-identical at 1 and 3 threads
 *   - the hints matter (no context: another velocity) and the scale is wired
 *     (scale 0 gives exactly the forward without the VACE blocks). */
#include <stdint.h>

#include "err.h"
#include "nn.h"
#include "fixture.h"
#include "test.h"
#include "wan.h"
#include "wan_sched.h"
#include "weights.h"

struct fix {
    struct weights *text, *noise, *vctx, *exp;
    float *pos, *neg, *x0, *ctx;
    int pos_rows, neg_rows;
    uint64_t n, nv;
    int F, H, W;
    double t_cond, scale;
};

static int fix_open(const char *cfg, struct fix *f)
{
    char p[600];
    memset(f, 0, sizeof *f);
    struct { const char *file; struct weights **w; } files[] = {
        { "text", &f->text }, { "noise", &f->noise }, { "vace_context", &f->vctx }, { "expected", &f->exp },
    };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/tests/fixtures/wan_vace/%s/%s.safetensors", fixture_root(), cfg, files[i].file);
        if (weights_open(p, files[i].w)) return -1;
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
    f->ctx = fixture_tensor(f->vctx, "vace_context", &f->nv);
    const char *tc = weights_meta(f->exp, "t_cond"), *sc = weights_meta(f->exp, "scale");
    if (!f->pos || !f->neg || !f->x0 || !f->ctx || !tc || !sc) return -1;
    f->t_cond = atof(tc);
    f->scale = atof(sc);
    return 0;
}

static void fix_close(struct fix *f)
{
    weights_close(&f->text);
    weights_close(&f->noise);
    weights_close(&f->vctx);
    weights_close(&f->exp);
    free(f->pos);
    free(f->neg);
    free(f->x0);
    free(f->ctx);
}

static float *take(struct nn *nn, float **p, uint64_t n)
{
    float *d = *p ? malloc(n * sizeof(float)) : NULL;
    if (d) memcpy(d, *p, n * sizeof(float));
    nn_release(nn, p);
    return d;
}

static float *sample(const struct wan *m, struct nn *nn, struct wan_state *st, const struct fix *f,
                     enum wan_sampler kind, int steps)
{
    struct wan_sched sc;
    size_t T = (size_t)WAN_TEXT_LEN * m->cfg.dim;
    float *cc = nn_alloc(nn, T), *cu = nn_alloc(nn, T), *x = nn_alloc(nn, f->n), *vc = nn_alloc(nn, f->n),
          *vu = nn_alloc(nn, f->n);
    if (!cc || !cu || !x || !vc || !vu || wan_sched_init(&sc, kind, steps, 3.0, f->n)) return NULL;
    memcpy(x, f->x0, f->n * sizeof(float));
    wan_embed_text(m, nn, st, f->pos, f->pos_rows, cc);
    wan_embed_text(m, nn, st, f->neg, f->neg_rows, cu);
    int rc = wan_sample(m, nn, st, &sc, cc, cu, 5.0f, x, vc, vu, NULL);
    wan_sched_free(&sc);
    nn_release(nn, &cc);
    nn_release(nn, &cu);
    nn_release(nn, &vc);
    nn_release(nn, &vu);
    if (rc) nn_release(nn, &x);
    return take(nn, &x, f->n);
}

static float *velocity(const struct wan *m, struct nn *nn, struct wan_state *st, const struct fix *f)
{
    float *ctx = nn_alloc(nn, (size_t)WAN_TEXT_LEN * m->cfg.dim), *v = nn_alloc(nn, f->n);
    if (!ctx || !v) return NULL;
    wan_embed_text(m, nn, st, f->pos, f->pos_rows, ctx);
    wan_forward(m, nn, st, f->x0, (float)f->t_cond, ctx, v);
    nn_release(nn, &ctx);
    return take(nn, &v, f->n);
}

static void check_model(const char *cfg, const char *path, int heads, const char *tag, int euler,
                        const int *want_layers, int n_layers, const char *layers_from)
{
    char full[600], label[700];
    struct fix f;
    snprintf(full, sizeof full, "%s/tests/fixtures/wan_vace/%s/%s", fixture_root(), cfg, path);
    snprintf(label, sizeof label, "VACE config %s, %s", cfg, path);
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
    const struct wan_config *c = &m->cfg;
    int same = c->vace_n == n_layers && c->vace_in == 96;
    for (int i = 0; same && i < n_layers; i++) same = c->vace_layers[i] == want_layers[i];
    CHECKF(same, "%s: %d VACE blocks, context %d channels, layers [%d, %d]", label, c->vace_n, c->vace_in,
           c->vace_n > 0 ? c->vace_layers[0] : -1, c->vace_n > 1 ? c->vace_layers[1] : -1);
    CHECKF(strncmp(c->vace_layers_from, layers_from, strlen(layers_from)) == 0, "%s: layers from '%s', want '%s...'",
           label, c->vace_layers_from, layers_from);
    CHECKF(f.nv == (uint64_t)96 * f.F * f.H * f.W, "%s: context of %llu values", label, (unsigned long long)f.nv);

    float *out[2][3] = { { 0 } }, *v_none = NULL, *v_zero = NULL;
    for (int ti = 0; ti < 2; ti++) {
        int threads = ti ? 3 : 1;
        struct nn *nn = NULL;
        struct wan_state *st = NULL;
        if (nn_new(&nn, NN_CPU, threads) || wan_state_new(m, nn, f.F, f.H, f.W, &st)) {
            CHECKF(0, "state: %s", iso_errmsg());
            nn_free(&nn);
            break;
        }
        wan_state_set_vace(st, f.ctx, (float)f.scale);
        out[ti][0] = velocity(m, nn, st, &f);
        out[ti][1] = sample(m, nn, st, &f, WAN_SAMPLER_UNIPC, 4);
        if (euler) out[ti][2] = sample(m, nn, st, &f, WAN_SAMPLER_EULER, 3);
        if (ti == 0) {
            wan_state_set_vace(st, NULL, 1.0f);
            v_none = velocity(m, nn, st, &f);
            wan_state_set_vace(st, f.ctx, 0.0f);
            v_zero = velocity(m, nn, st, &f);
        }
        wan_state_free(nn, &st);
        nn_free(&nn);
    }
    char names[3][48];
    snprintf(names[0], sizeof names[0], "%svelocity_cond", tag);
    snprintf(names[1], sizeof names[1], "%sunipc", tag);
    snprintf(names[2], sizeof names[2], "euler");
    const double tol[3] = { 1e-4, 1e-3, 1e-3 };
    for (int k = 0; k < 3; k++) {
        if (!out[0][k]) {
            CHECKF(k == 2 && !euler, "%s: no result for %s", label, names[k]);
            continue;
        }
        uint64_t n = 0;
        float *ref = fixture_tensor(f.exp, names[k], &n);
        CHECKF(ref && n == f.n, "expected tensor '%s' in the fixture", names[k]);
        if (ref && n == f.n) {
            double e = fixture_rel_err(out[0][k], ref, n);
            printf("  %-20s rel err %.3g (tol %.0e)\n", names[k], e, tol[k]);
            CHECKF(e <= tol[k], "%s: %s rel err %.3g > %.0e", label, names[k], e, tol[k]);
            if (k == 0 && v_none) {
                double moved = fixture_rel_err(v_none, ref, n);
                printf("  without the context   rel err %.3g (must be far)\n", moved);
                CHECKF(moved > 1e-2, "%s: the velocity without the VACE context is within %.3g of the reference", label,
                       moved);
            }
        }
        free(ref);
        CHECKF(out[1][k] && memcmp(out[0][k], out[1][k], f.n * sizeof(float)) == 0,
               "%s: %s differs between 1 and 3 threads", label, names[k]);
    }
    CHECKF(v_none && v_zero && memcmp(v_none, v_zero, f.n * sizeof(float)) == 0,
           "%s: scale 0 is not exactly the forward without the VACE blocks", label);
    for (int ti = 0; ti < 2; ti++)
        for (int k = 0; k < 3; k++) free(out[ti][k]);
    free(v_none);
    free(v_zero);
    wan_close(&m);
    fix_close(&f);
}

/* the T2V fixtures still open as plain T2V models (no VACE blocks, no layers) */
static void check_t2v_is_not_vace(void)
{
    TEST("a T2V checkpoint has no VACE blocks");
    char p[600];
    snprintf(p, sizeof p, "%s/tests/fixtures/wan/a/diffusers", fixture_root());
    struct wan *m = NULL;
    CHECKF(wan_open(p, 0, &m) == 0, "%s", iso_errmsg());
    if (m) CHECK(m->cfg.vace_n == 0 && m->cfg.vace_layers == NULL && m->w.vace == NULL);
    wan_close(&m);
}

int main(void)
{
    static const int a_layers[] = { 0, 2 }, b_layers[] = { 0, 1 };
    check_t2v_is_not_vace();
    check_model("a", "diffusers", 0, "", 1, a_layers, 2, "config.json");
    check_model("a", "comfy_bf16.safetensors", 2, "bf16_", 0, a_layers, 2, "tensor names: 2 VACE blocks at every 2nd");
    check_model("b", "diffusers", 0, "", 0, b_layers, 2, "config.json");
    check_model("b", "wan", 0, "", 0, b_layers, 2, "config.json");
    return test_report();
}
