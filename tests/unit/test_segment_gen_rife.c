/* test_segment_gen_rife.c — segment-gen's RIFE on both nn backends against
 * PyTorch's frames (tests/fixtures/rife/, made by tests/ref/rife_ref.py with
 * the wheel's own IFNet and the same checkpoint).
 *
 * For every case of cases.json (real footage and synthetic, sizes that need
 * padding, --scale 0.5, 1 and 2, t = 1/4, 1/2, 3/4):
 *   cpu mode (everywhere, with models/rife.pkl): each expected frame within
 *     45 dB PSNR of PyTorch's (the bar; t6010 checks the same through
 *     the CLI with Python);
 *   beefy mode on a CUDA device (skipped with the reason elsewhere): the
 *     whole forward on NN_CUDA, weights resident on the device. Asserted per
 *     in-between frame: within 45 dB of PyTorch's (the same bar as the CPU),
 *     and against the CPU's 8-bit frame at most 2 levels apart at any pixel
 *     and PSNR >= 60 dB. Why these tolerances: the image ops are bit-identical
 *     across backends (test_nn_img_cuda), the convolutions are float32 GEMMs
 *     (cuBLAS vs OpenBLAS: the same products summed in another order, about
 *     1e-6 relative each, nn_check's 1e-4 bound per op), so the float frames
 *     differ by far less than one 8-bit level and rounding flips a value by one
 *     level only where it lies near a half level; the CPU vs PyTorch frames
 *     (the same situation) differ by at most one level at a few pixels.
 * The CUDA part runs on a GPU machine via sh tests/gpu/rife_check.sh. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "image.h"
#include "jsonio.h"
#include "segmodel.h"
#include "test.h"

#define MAX_FRAMES 16

struct frames {
    struct image f[MAX_FRAMES];
};

static int keep(void *ctx, int index, const struct image *frame)
{
    struct frames *fr = ctx;
    if (index < 0 || index >= MAX_FRAMES) return iso_fail(ISO_EINTERNAL, "frame %d", index);
    struct image *d = &fr->f[index];
    int rc = image_alloc(d, frame->w, frame->h, frame->c);
    if (!rc) memcpy(d->data, frame->data, (size_t)frame->w * frame->h * frame->c);
    return rc;
}

static void frames_free(struct frames *fr)
{
    for (int i = 0; i < MAX_FRAMES; i++) image_free(&fr->f[i]);
}

/* PSNR and the largest difference of two 8-bit images of one shape */
static double psnr(const struct image *a, const struct image *b, int *maxd)
{
    *maxd = 256;
    if (!a->data || !b->data || a->w != b->w || a->h != b->h || a->c != b->c) return 0;
    size_t n = (size_t)a->w * a->h * a->c;
    double se = 0;
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = (int)a->data[i] - (int)b->data[i];
        se += (double)d * d;
        if (abs(d) > m) m = abs(d);
    }
    *maxd = m;
    return se == 0 ? 99.0 : 10 * log10(255.0 * 255.0 / (se / (double)n));
}

/* one run of the model in `mode`; *backend gets the report's "nn.backend",
 * *fallback its "fallback" (or "") */
static int run(const char *model, enum mem_mode mode, const struct image *A, const struct image *B, int frames,
               double scale, struct frames *out, char *backend, char *fallback, size_t bn)
{
    const struct segmodel_ops *ops = &segmodel_rife;
    struct segmodel_params p = { 0 };
    p.model_path = model;
    p.memory_mode = mode;
    p.threads = 2;
    p.width = A->w;
    p.height = A->h;
    p.channels = A->c;
    p.frames = frames;
    p.scale = scale;
    void *ctx = NULL;
    int rc = ops->open(&p, &ctx);
    if (rc) return rc;
    struct segmodel_request req = { .start = A, .end = B, .frames = frames, .fps = 24 };
    rc = ops->generate(ctx, &req, keep, out);
    json_t *mem = json_object();
    ops->report(ctx, mem);
    json_t *nn = json_object_get(mem, "nn");
    snprintf(backend, bn, "%s", jsonio_str(nn, "backend", "?"));
    snprintf(fallback, bn, "%s", jsonio_str(nn, "fallback", ""));
    json_decref(mem);
    ops->close(&ctx);
    return rc;
}

static const char *first_of(const char *env, const char *sub, char *buf, size_t n)
{
    const char *e = getenv(env);
    snprintf(buf, n, "%s/%s", e && *e ? e : ".", sub);
    return buf;
}

int main(void)
{
    unsetenv("ISOPIPE_FAKE_GPU");   /* beefy must mean the real device here */
    char model[1024], fx[1024], path[1200];
    first_of("ISOPIPE_MODELS", "rife.pkl", model, sizeof model);
    FILE *f = fopen(model, "rb");
    if (!f) {
        first_of("ISOPIPE_ROOT", "models/rife.pkl", model, sizeof model);
        f = fopen(model, "rb");
    }
    if (!f) {
        TEST_SKIP("RIFE on both backends (no rife.pkl in $ISOPIPE_MODELS or models/: make models)");
        return test_report();
    }
    fclose(f);
    first_of("ISOPIPE_ROOT", "tests/fixtures/rife", fx, sizeof fx);
    snprintf(path, sizeof path, "%s/cases.json", fx);
    json_t *root = NULL;
    if (jsonio_load(path, &root)) {
        printf("FAIL - %s: %s\n", path, iso_errmsg());
        return 1;
    }
    json_t *cases = json_object_get(root, "cases");
    CHECK(json_array_size(cases) >= 3);
    int cuda = -1;   /* unknown, 0 skipped, 1 ran */
    size_t ci;
    json_t *cs;
    json_array_foreach(cases, ci, cs) {
        const char *name = jsonio_str(cs, "name", "?");
        int frames = (int)jsonio_int(cs, "frames", 0);
        double scale = jsonio_num(cs, "scale", 1);
        struct image A = { 0 }, B = { 0 };
        char pa[1200], pb[1200];
        snprintf(pa, sizeof pa, "%s/%s", fx, jsonio_str(cs, "start", ""));
        snprintf(pb, sizeof pb, "%s/%s", fx, jsonio_str(cs, "end", ""));
        if (frames < 3 || frames > MAX_FRAMES || image_load_png(pa, &A, 0) || image_load_png(pb, &B, 0)) {
            CHECKF(0, "%s: frames %d, keyframes %s", name, frames, iso_errmsg());
            image_free(&A);
            image_free(&B);
            continue;
        }
        struct frames cpu = { 0 }, dev = { 0 };
        char be[320], fb[320];
        int rc = run(model, MEM_MODE_CPU, &A, &B, frames, scale, &cpu, be, fb, sizeof be);
        CHECKF(rc == 0 && !strcmp(be, "cpu"), "%s: cpu run: rc %d (%s), backend %s", name, rc, iso_errmsg(), be);
        int dev_ok = 0;
        if (cuda != 0) {
            rc = run(model, MEM_MODE_BEEFY, &A, &B, frames, scale, &dev, be, fb, sizeof be);
            if (rc == 0 && strncmp(be, "cuda", 4)) {
                TEST_SKIP("RIFE on the CUDA backend against the CPU backend: %s", fb[0] ? fb : "no CUDA backend");
                cuda = 0;
            } else {
                CHECKF(rc == 0, "%s: beefy run on %s: %s", name, be, iso_errmsg());
                if (cuda < 0 && rc == 0) printf("# %s\n", be);
                cuda = 1;
                dev_ok = rc == 0;
            }
        }
        size_t ei;
        json_t *e;
        json_array_foreach(json_object_get(cs, "expected"), ei, e) {
            int idx = (int)jsonio_int(e, "index", -1);
            struct image ref = { 0 };
            snprintf(path, sizeof path, "%s/%s", fx, jsonio_str(e, "file", ""));
            if (idx < 1 || idx >= frames - 1 || image_load_png(path, &ref, 0)) {
                CHECKF(0, "%s: expected frame %d: %s", name, idx, iso_errmsg());
                continue;
            }
            int md;
            double p = psnr(&cpu.f[idx], &ref, &md);
            printf("# %-14s t=%.2f cpu  vs PyTorch %6.2f dB (max %d levels)\n", name, jsonio_num(e, "t", 0), p, md);
            CHECKF(p >= 45, "%s frame %d: cpu %.2f dB < 45 against PyTorch", name, idx, p);
            if (dev_ok) {
                double pr = psnr(&dev.f[idx], &ref, &md);
                printf("# %-14s t=%.2f cuda vs PyTorch %6.2f dB (max %d levels)\n", name, jsonio_num(e, "t", 0), pr,
                       md);
                CHECKF(pr >= 45, "%s frame %d: cuda %.2f dB < 45 against PyTorch", name, idx, pr);
                double pc = psnr(&dev.f[idx], &cpu.f[idx], &md);
                printf("# %-14s t=%.2f cuda vs cpu     %6.2f dB (max %d levels)\n", name, jsonio_num(e, "t", 0), pc,
                       md);
                CHECKF(pc >= 60 && md <= 2, "%s frame %d: cuda vs cpu %.2f dB, max %d levels (want >= 60 dB, <= 2)",
                       name, idx, pc, md);
            }
            image_free(&ref);
        }
        if (dev_ok) {   /* the keyframes pass through untouched on every backend */
            int m0, m1;
            psnr(&dev.f[0], &A, &m0);
            psnr(&dev.f[frames - 1], &B, &m1);
            CHECKF(m0 == 0 && m1 == 0, "%s: cuda keyframes changed", name);
        }
        frames_free(&cpu);
        frames_free(&dev);
        image_free(&A);
        image_free(&B);
    }
    json_decref(root);
    return test_report();
}
