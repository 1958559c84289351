/* vae_check — compares the vae tool's outputs with the diffusers fixtures of
 * tests/fixtures/wan_vae (tests/ref/wan_vae_ref.py), for tests/cli/t8000-vae.sh.
 *
 *   vae_check frames DIR REF.safetensors MIN_PSNR
 *       DIR/frame_%05d.png against REF's `frames` [3, F, H, W] in [-1, 1] (f32 or f16),
 *       rounded to 8 bits as the tool rounds them: every frame's PSNR >= MIN_PSNR
 *       and exactly F frames
 *   vae_check latents OUT.safetensors REF.safetensors REL
 *       `latents` of both: same shape, max |out - ref| <= REL * max |ref|
 *   vae_check tensor NAME OUT.safetensors REF.safetensors REL
 *       the same for the tensor NAME (vace_context)
 *   vae_check same DIR_A DIR_B MIN_PSNR
 *       two frame directories: same count and sizes, every frame's PSNR >= MIN_PSNR
 *   vae_check mklatents OUT.safetensors NAME C T h w
 *       a float32 tensor NAME [C, T, h, w] of a smooth pattern (bad-input tests)
 *   vae_check mkpng OUT.png W H
 *       an RGB test image
 * Prints what it measured; exit 0 when within tolerance, 1 when not, 2 on bad use. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "image.h"
#include "safetensors.h"
#include "st_write.h"
#include "weights.h"

/* a float32 or float16 [4-d] tensor as float32 (float16: converted into a
 * buffer kept in `owned`, freed at exit) */
static float *owned[8];
static int n_owned;
static void free_owned(void) { while (n_owned) free(owned[--n_owned]); }

static const float *get(const struct safetensors *st, const char *name, uint64_t *shape)
{
    const struct st_tensor *t = st_find(st, name);
    if (!t || (t->dtype != ST_F32 && t->dtype != ST_F16) || t->n_dims != 4) return NULL;
    memcpy(shape, t->shape, 4 * sizeof *shape);
    if (t->dtype == ST_F32) return t->data;
    size_t n = shape[0] * shape[1] * shape[2] * shape[3];
    float *f = malloc(n * sizeof *f);
    const uint16_t *h = t->data;
    for (size_t i = 0; f && i < n; i++) f[i] = wt_f16_to_f32(h[i]);
    if (f && n_owned < 8) owned[n_owned++] = f;
    return f;
}

static int to8(float x)
{
    float v = (x + 1.0f) * 0.5f;
    v = v < 0 ? 0 : v > 1 ? 1 : v;
    return (int)lrintf(v * 255.0f);
}

static int load(const char *dir, int i, struct image *img)
{
    char p[1024];
    snprintf(p, sizeof p, "%s/frame_%05d.png", dir, i);
    return image_load_png(p, img, 3);
}

static double psnr(double se, double n) { return se > 0 ? 10 * log10(255.0 * 255.0 * n / se) : 99.0; }

static int frames(const char *dir, const char *ref_path, double min_psnr)
{
    struct safetensors *st = NULL;
    uint64_t s[4];
    if (st_open(ref_path, &st)) { fprintf(stderr, "vae_check: cannot open '%s'\n", ref_path); return 2; }
    const float *ref = get(st, "frames", s);
    if (!ref) { fprintf(stderr, "vae_check: no frames in '%s'\n", ref_path); return 2; }
    int F = (int)s[1], H = (int)s[2], W = (int)s[3], bad = 0;
    double worst = 1e9;
    size_t hw = (size_t)H * W;
    for (int f = 0; f < F; f++) {
        struct image img;
        if (load(dir, f, &img)) { printf("frame %d missing\n", f); bad = 1; break; }
        if (img.w != W || img.h != H) { printf("frame %d is %dx%d, want %dx%d\n", f, img.w, img.h, W, H); bad = 1; }
        else {
            double se = 0;
            for (size_t i = 0; i < hw; i++)
                for (int c = 0; c < 3; c++) {
                    int e = img.data[i * 3 + c] - to8(ref[((size_t)c * F + f) * hw + i]);
                    se += (double)e * e;
                }
            double p = psnr(se, 3.0 * hw);
            if (p < worst) worst = p;
        }
        image_free(&img);
    }
    struct image extra;
    if (!load(dir, F, &extra)) { printf("more than %d frames\n", F); image_free(&extra); bad = 1; }
    printf("%d frames %dx%d, worst-frame PSNR %.1f dB (min %.1f)\n", F, W, H, worst, min_psnr);
    st_close(&st);
    return bad || worst < min_psnr;
}

static int latents(const char *name, const char *out_path, const char *ref_path, double rel)
{
    struct safetensors *a = NULL, *b = NULL;
    uint64_t sa[4], sb[4];
    int rc = 2;
    if (st_open(out_path, &a) || st_open(ref_path, &b)) { fprintf(stderr, "vae_check: cannot open inputs\n"); goto done; }
    const float *x = get(a, name, sa), *y = get(b, name, sb);
    if (!x || !y) { fprintf(stderr, "vae_check: no float32 [4-d] latents\n"); goto done; }
    if (memcmp(sa, sb, sizeof sa)) {
        printf("shape [%d,%d,%d,%d], want [%d,%d,%d,%d]\n", (int)sa[0], (int)sa[1], (int)sa[2], (int)sa[3],
               (int)sb[0], (int)sb[1], (int)sb[2], (int)sb[3]);
        rc = 1;
        goto done;
    }
    size_t n = sa[0] * sa[1] * sa[2] * sa[3];
    double md = 0, mr = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)x[i] - y[i]);
        if (d > md) md = d;
        if (fabs(y[i]) > mr) mr = fabs(y[i]);
    }
    printf("%s [%d,%d,%d,%d]: max |diff| %.3g, max |ref| %.3g (tolerance %.3g)\n", name, (int)sa[0], (int)sa[1],
           (int)sa[2], (int)sa[3], md, mr, rel * mr);
    rc = md > rel * mr;
done:
    st_close(&a);
    st_close(&b);
    return rc;
}

static int same(const char *da, const char *db, double min_psnr)
{
    double worst = 1e9;
    int n = 0, bad = 0;
    for (;; n++) {
        struct image a, b;
        int ea = load(da, n, &a), eb = load(db, n, &b);
        if (ea || eb) {
            if (!ea) image_free(&a);
            if (!eb) image_free(&b);
            bad = ea != eb;
            break;
        }
        if (a.w != b.w || a.h != b.h) bad = 1;
        else {
            double se = 0;
            for (size_t i = 0; i < (size_t)a.w * a.h * 3; i++) { int e = a.data[i] - b.data[i]; se += (double)e * e; }
            double p = psnr(se, (double)a.w * a.h * 3);
            if (p < worst) worst = p;
        }
        image_free(&a);
        image_free(&b);
    }
    printf("%d frames, worst-frame PSNR %.1f dB (min %.1f)%s\n", n, worst, min_psnr, bad ? ", counts/sizes differ" : "");
    return bad || n == 0 || worst < min_psnr;
}

static int mklatents(char **a)
{
    uint64_t s[4];
    for (int i = 0; i < 4; i++) s[i] = (uint64_t)atoi(a[2 + i]);
    size_t n = s[0] * s[1] * s[2] * s[3];
    float *d = malloc(n * sizeof *d);
    if (!d) return 2;
    for (size_t i = 0; i < n; i++) d[i] = (float)sin(0.37 * (double)i);
    struct st_out o = { a[1], ST_F32, 4, { s[0], s[1], s[2], s[3] }, d };
    int rc = st_write(a[0], &o, 1, NULL);
    free(d);
    return rc ? 2 : 0;
}

static int mkpng(const char *path, int w, int h)
{
    struct image img;
    if (image_alloc(&img, w, h, 3)) return 2;
    for (size_t i = 0; i < (size_t)w * h * 3; i++) img.data[i] = (uint8_t)(i * 7 % 251);
    int rc = image_save_png(path, &img, 0);
    image_free(&img);
    return rc ? 2 : 0;
}

int main(int argc, char **argv)
{
    atexit(free_owned);
    if (argc == 8 && !strcmp(argv[1], "mklatents")) return mklatents(argv + 2);
    if (argc == 5 && !strcmp(argv[1], "mkpng")) return mkpng(argv[2], atoi(argv[3]), atoi(argv[4]));
    if (argc == 5 && !strcmp(argv[1], "frames")) return frames(argv[2], argv[3], atof(argv[4]));
    if (argc == 5 && !strcmp(argv[1], "latents")) return latents("latents", argv[2], argv[3], atof(argv[4]));
    if (argc == 6 && !strcmp(argv[1], "tensor")) return latents(argv[2], argv[3], argv[4], atof(argv[5]));
    if (argc == 5 && !strcmp(argv[1], "same")) return same(argv[2], argv[3], atof(argv[4]));
    fprintf(stderr, "usage: vae_check frames DIR REF MIN_PSNR | latents OUT REF REL | tensor NAME OUT REF REL | same DIR_A DIR_B MIN_PSNR |\n"
                    "       mklatents OUT NAME C T h w | mkpng OUT W H\n");
    return 2;
}
