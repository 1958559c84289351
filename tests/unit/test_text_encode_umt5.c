/* test_text_encode_umt5 — the umT5 encoder (tools/text-encode/umt5.c)
 * against transformers' UMT5EncoderModel in float32 (tests/ref/umt5_ref.py,
 * fixtures in tests/fixtures/umt5/): two tiny random configurations (4 heads
 * x 8 / 3 heads x 10 with inner != d_model, 2 / 3 layers, 32 / 16 buckets,
 * max distance 128 / 20), norms and relative biases random, in each layout
 * text-encode reads (HF f32/bf16, ComfyUI fp16 and scaled fp8, Wan names,
 * llama.cpp's T5 GGUF names). Tolerance: max abs error / max abs value <= 1e-4 (the
 * scaled fp8 file against transformers run on the same dequantised weights).
 * Also: the bucket of every relative position -400..400 equals transformers'
 * exactly, and a prompt encoded alone gives exactly the states it gets in a
 * padded batch. And on a pretend device (ISOPIPE_FAKE_GPU, set here): the
 * weights where beefy (one arena) and lightweight (packed layers streamed in
 * order, twice round: every layer through the stream) keep them give states bit-identical to the mapped
 * weights, f32, bf16 and scaled fp8 files, with a 300-token sequence in the
 * batch. The CUDA path against this one: test_text_encode_cuda.c. */
#include <math.h>

#include "err.h"
#include "gpu.h"
#include "nn.h"
#include "fixture.h"
#include "test.h"
#include "umt5.h"
#include "umt5_modes.h"
#include "weights.h"

#define TOL 1e-4

struct expect {
    struct weights *w;
    int n;                   /* prompts */
    int32_t *ids[8];
    int len[8];
};

static int load_expect(const char *dir, struct expect *e)
{
    char p[1024];
    memset(e, 0, sizeof *e);
    snprintf(p, sizeof p, "%s/expected.safetensors", dir);
    if (weights_open(p, &e->w)) return -1;
    for (e->n = 0; e->n < 8; e->n++) {
        char nm[32];
        snprintf(nm, sizeof nm, "ids_%d", e->n);
        const struct wt_tensor *t = weights_find(e->w, nm);
        if (!t) break;
        float *f = malloc(t->nelem * sizeof *f);
        e->ids[e->n] = malloc(t->nelem * sizeof *e->ids[0]);
        weights_to_f32(t, 0, t->nelem, f);
        for (uint64_t i = 0; i < t->nelem; i++) e->ids[e->n][i] = (int32_t)f[i];
        e->len[e->n] = (int)t->nelem;
        free(f);
    }
    return 0;
}

static void free_expect(struct expect *e)
{
    for (int i = 0; i < e->n; i++) free(e->ids[i]);
    weights_close(&e->w);
}

/* max abs error / max abs value of got against tensor name of e */
static double rel_err(const struct expect *e, const char *name, const float *got, size_t n)
{
    const struct wt_tensor *t = weights_find(e->w, name);
    if (!t || t->nelem != n) return INFINITY;
    float *ref = malloc(n * sizeof *ref);
    weights_to_f32(t, 0, n, ref);
    double r = fixture_rel_err(got, ref, n);
    free(ref);
    return r;
}

static void check_layout(const char *dir, const char *file, const char *config, const char *out_prefix,
                         const char *want_layout, struct nn *nn)
{
    char p[1024], cj[1024];
    struct weights *w = NULL;
    struct umt5 *m = NULL;
    struct expect e;
    snprintf(p, sizeof p, "%s/%s", dir, file);
    int rc = weights_open(p, &w);
    if (rc == ISO_EUNAVAIL) {
        TEST_SKIP("%s: %s (the weights reader cannot read it yet)", p, iso_errmsg());
        return;
    }
    CHECKF(rc == 0, "%s: %s", p, iso_errmsg());
    if (rc) return;
    if (config) snprintf(cj, sizeof cj, "%s/%s", dir, config);
    rc = umt5_open(w, config ? cj : NULL, &m);
    CHECKF(rc == 0, "%s: %s", p, iso_errmsg());
    if (rc || load_expect(dir, &e)) { weights_close(&w); return; }
    CHECK_STR(umt5_layout(m), want_layout);
    const struct umt5_config *c = umt5_config(m);
    float *out[8], *bout[8];
    double worst = 0;
    for (int i = 0; i < e.n; i++) {
        size_t n = (size_t)e.len[i] * c->d_model;
        out[i] = malloc(n * sizeof(float));
        bout[i] = malloc(n * sizeof(float));
        const int32_t *ids = e.ids[i];
        rc = umt5_encode_batch(m, nn, &ids, &e.len[i], 1, &out[i]);
        CHECK(rc == 0);
        char nm[32];
        snprintf(nm, sizeof nm, "%s_%d", out_prefix, i);
        double r = rel_err(&e, nm, out[i], n);
        CHECKF(r <= TOL, "%s %s: relative error %.3g > %g", p, nm, r, TOL);
        if (r > worst) worst = r;
    }
    /* all prompts in one padded batch: bit-identical to each alone */
    rc = umt5_encode_batch(m, nn, (const int32_t *const *)e.ids, e.len, e.n, bout);
    CHECK(rc == 0);
    int same = 1;
    for (int i = 0; i < e.n; i++)
        if (memcmp(out[i], bout[i], (size_t)e.len[i] * c->d_model * sizeof(float))) same = 0;
    CHECKF(same, "%s: a prompt in a padded batch differs from the prompt alone", p);
    printf("ok - %s (%s, config from %s): %d prompts, worst relative error %.2e, batch == alone: %s\n", p,
           umt5_layout(m), c->source, e.n, worst, same ? "yes" : "no");
    for (int i = 0; i < e.n; i++) { free(out[i]); free(bout[i]); }
    free_expect(&e);
    umt5_free(&m);
    weights_close(&w);
}

static void check_buckets(const char *dir, int n_buckets, int max_distance)
{
    struct expect e;
    if (load_expect(dir, &e)) { CHECKF(0, "%s: %s", dir, iso_errmsg()); return; }
    const struct wt_tensor *t = weights_find(e.w, "buckets");
    CHECK(t && t->nelem == 801);
    if (t && t->nelem == 801) {
        float f[801];
        weights_to_f32(t, 0, 801, f);
        int bad = 0;
        for (int r = -400; r <= 400; r++) bad += umt5_bucket(r, n_buckets, max_distance) != (int)f[r + 400];
        CHECKF(bad == 0, "%s: %d relative positions in a different bucket", dir, bad);
    }
    free_expect(&e);
}

/* the weights as beefy and lightweight keep them (on NN_CPU: a pretend
 * device) against the mapped weights: bit for bit */
static void check_modes(const char *dir, const char *file, const char *config, struct nn *nn)
{
    struct mcase c;
    if (mcase_open(&c, dir, file, config)) return;
    const char *p = c.path;
    int rc = mbatch_encode(p, c.config, nn, -1, NN_PREC_F32, 0, &c.b, c.ref, NULL, NULL);
    CHECKF(rc == 0, "%s mapped: %s", p, iso_errmsg());
    static const int modes[3] = { NN_WRES_MAPPED, NN_WRES_RESIDENT, NN_WRES_STREAMED };
    for (int k = 0; k < 3 && !rc; k++) {
        uint64_t copies = 0;
        int e = mbatch_encode(p, c.config, nn, modes[k], NN_PREC_F32, k != 1, &c.b, c.got, c.got2, &copies);
        CHECKF(e == 0, "%s %s: %s", p, nn_wres_mode_name(modes[k]), iso_errmsg());
        if (e) continue;
        int same = 1;
        for (int i = 0; i < c.b.n; i++) {
            size_t n = (size_t)c.b.len[i] * c.d * sizeof(float);
            if (memcmp(c.ref[i], c.got[i], n) || memcmp(c.ref[i], c.got2[i], n)) same = 0;
        }
        CHECKF(same, "%s: weights %s give other states than mapped ones", p, nn_wres_mode_name(modes[k]));
        if (modes[k] == NN_WRES_STREAMED)
            CHECKF(copies >= (uint64_t)c.layers, "%s streamed: %llu layer copies for 2 batches of %d layers", p,
                   (unsigned long long)copies, c.layers);
        printf("ok - %s: weights %s, %d sequences (one of 300 tokens), twice: bit-identical to mapped\n", p,
               nn_wres_mode_name(modes[k]), c.b.n);
    }
    mcase_free(&c);
}

int main(void)
{
    const char *root = getenv("ISOPIPE_ROOT");
    char a[1024], b[1024];
    snprintf(a, sizeof a, "%s/tests/fixtures/umt5/a", root ? root : ".");
    snprintf(b, sizeof b, "%s/tests/fixtures/umt5/b", root ? root : ".");
    check_buckets(a, 32, 128);
    check_buckets(b, 16, 20);
    for (int threads = 1; threads <= 3; threads += 2) {
        struct nn *nn = NULL;
        if (nn_new(&nn, NN_CPU, threads)) { CHECKF(0, "nn_new: %s", iso_errmsg()); return test_report(); }
        printf("# %d thread%s\n", threads, threads > 1 ? "s" : "");
        check_layout(a, "hf", "hf/config.json", "out", "huggingface", nn);
        check_layout(a, "hf", NULL, "out", "huggingface", nn);       /* shapes + T5 defaults */
        check_layout(a, "hf_bf16", "hf_bf16/config.json", "out", "huggingface", nn);
        check_layout(a, "comfy_fp16.safetensors", NULL, "out", "huggingface", nn);
        check_layout(a, "comfy_fp8.safetensors", NULL, "out_fp8", "comfyui-fp8-scaled", nn);
        check_layout(a, "wan.pth", NULL, "out", "wan", nn);
        check_layout(a, "wan_fp16.safetensors", NULL, "out", "wan", nn);
        check_layout(a, "t5.gguf", NULL, "out", "gguf", nn);
        check_layout(b, "hf", "hf/config.json", "out", "huggingface", nn);
        check_layout(b, "hf_bf16", "hf_bf16/config.json", "out", "huggingface", nn);
        nn_free(&nn);
    }
    /* a pretend device, as CI runs beefy and lightweight */
    setenv("ISOPIPE_FAKE_GPU", "8192:8192", 1);
    struct nn *nn = NULL;
    if (gpu_init(0) || !gpu_is_fake()) {
        TEST_SKIP("memory modes on a pretend device: %s", iso_errmsg());
    } else if (nn_new(&nn, NN_CPU, 2)) {
        CHECKF(0, "nn_new: %s", iso_errmsg());
    } else {
        printf("# weights as the memory modes keep them (pretend device)\n");
        check_modes(a, "hf", "hf/config.json", nn);
        check_modes(a, "hf_bf16", "hf_bf16/config.json", nn);
        check_modes(a, "comfy_fp8.safetensors", NULL, nn);
        check_modes(b, "hf", "hf/config.json", nn);
        nn_free(&nn);
    }
    return test_report();
}
