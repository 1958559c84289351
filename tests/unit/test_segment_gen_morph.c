/* test_segment_gen_morph.c — the morph against closed-form ground truth.
 * Every scene is a smooth analytic texture rendered in float64 at the time
 * asked for, so the true in-between frame is known exactly (not produced by
 * the code under test); flows are the exact motions. */
#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include "err.h"
#include "morph.h"
#include "segmodel.h"
#include "test.h"

/* a smooth colour texture, channel k at (x, y), in [0, 255] */
static double tex(double x, double y, int k)
{
    double v;
    switch (k) {
    case 0: v = 128 + 50 * sin(x * 0.21 + y * 0.05) + 40 * cos(y * 0.17 - x * 0.03) + 20 * sin((x + y) * 0.37); break;
    case 1: v = 128 + 60 * sin(x * 0.11 - y * 0.13 + 1) + 30 * cos(x * 0.29); break;
    default: v = 128 + 55 * cos(y * 0.23 + 2) + 35 * sin(x * 0.07 + y * 0.19); break;
    }
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* a second texture for a foreground layer */
static double tex2(double x, double y, int k)
{
    double v = 128 + 90 * sin(x * 0.45 + k) * cos(y * 0.38 - k);
    return v < 0 ? 0 : v > 255 ? 255 : v;
}

/* scene: background tex moving by bg*t, and (when sq > 0) a square of side sq
 * whose top-left corner is at (sx, sy) + fg*t, textured with tex2 in its own coordinates */
struct scene {
    double bgx, bgy, fgx, fgy, sx, sy, sq;
};

static int in_square(const struct scene *s, double t, double x, double y, double *lx, double *ly)
{
    if (s->sq <= 0) return 0;
    *lx = x - (s->sx + s->fgx * t);
    *ly = y - (s->sy + s->fgy * t);
    return *lx >= 0 && *ly >= 0 && *lx < s->sq && *ly < s->sq;
}

static double scene_at(const struct scene *s, double t, double x, double y, int k)
{
    double lx, ly;
    if (in_square(s, t, x, y, &lx, &ly)) return tex2(lx, ly, k);
    return tex(x - s->bgx * t, y - s->bgy * t, k);
}

static void render(const struct scene *s, double t, struct image *img, double *ref)
{
    for (int y = 0; y < img->h; y++)
        for (int x = 0; x < img->w; x++)
            for (int k = 0; k < 3; k++) {
                double v = scene_at(s, t, x, y, k);
                if (ref) ref[((size_t)y * img->w + x) * 3 + k] = v;
                if (img->data) img->data[((size_t)y * img->w + x) * 3 + k] = (uint8_t)lrint(v);
            }
}

/* exact flows of a scene from t = 0 to 1 (f) and from 1 to 0 (g) */
static void scene_flows(const struct scene *s, struct flow *f, struct flow *g)
{
    double lx, ly;
    for (int y = 0; y < f->h; y++)
        for (int x = 0; x < f->w; x++) {
            size_t i = (size_t)y * f->w + x;
            int fa = in_square(s, 0, x, y, &lx, &ly), fb = in_square(s, 1, x, y, &lx, &ly);
            f->uv[2 * i] = (float)(fa ? s->fgx : s->bgx);
            f->uv[2 * i + 1] = (float)(fa ? s->fgy : s->bgy);
            g->uv[2 * i] = (float)-(fb ? s->fgx : s->bgx);
            g->uv[2 * i + 1] = (float)-(fb ? s->fgy : s->bgy);
        }
}

/* PSNR of an 8-bit image against a float64 reference over [m, w-m) x [m, h-m) */
static double psnr_region(const struct image *img, const double *ref, int m)
{
    double se = 0;
    size_t n = 0;
    for (int y = m; y < img->h - m; y++)
        for (int x = m; x < img->w - m; x++)
            for (int k = 0; k < 3; k++) {
                size_t i = ((size_t)y * img->w + x) * 3 + k;
                double d = img->data[i] - ref[i];
                se += d * d;
                n++;
            }
    double mse = se / (double)n;
    return mse <= 0 ? 99 : 10 * log10(255.0 * 255.0 / mse);
}

struct setup {
    struct image a, b, out;
    struct flow f, g;
    struct morph m;
    struct morph_scratch s;
    double *ref;
};

static int setup_scene(struct setup *u, const struct scene *sc, int w, int h)
{
    memset(u, 0, sizeof *u);
    if (image_alloc(&u->a, w, h, 3) || image_alloc(&u->b, w, h, 3) || image_alloc(&u->out, w, h, 3) ||
        flow_alloc(&u->f, w, h) || flow_alloc(&u->g, w, h) || morph_scratch_alloc(&u->s, w, h))
        return -1;
    u->ref = malloc((size_t)w * h * 3 * sizeof(double));
    if (!u->ref) return -1;
    render(sc, 0, &u->a, NULL);
    render(sc, 1, &u->b, NULL);
    scene_flows(sc, &u->f, &u->g);
    return morph_init(&u->m, &u->a, &u->b, &u->f, &u->g);
}

static void setup_free(struct setup *u)
{
    morph_free(&u->m);
    morph_scratch_free(&u->s);
    image_free(&u->a);
    image_free(&u->b);
    image_free(&u->out);
    flow_free(&u->f);
    flow_free(&u->g);
    free(u->ref);
}

/* the crossfade (1-t) A + t B, for comparison */
static void blend(const struct image *a, const struct image *b, double t, struct image *out)
{
    for (size_t i = 0; i < (size_t)a->w * a->h * 3; i++)
        out->data[i] = (uint8_t)lrint((1 - t) * a->data[i] + t * b->data[i]);
}

static void test_keyframes_exact(void)
{
    TEST("t = 0 and t = 1 give the keyframes byte for byte, even with inconsistent flows");
    struct setup u;
    struct scene sc = { 3.7, -1.3, 0, 0, 0, 0, 0 };
    CHECK(setup_scene(&u, &sc, 64, 48) == 0);
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            /* random flows, random images: nothing is consistent */
            uint32_t r = 12345;
            for (size_t i = 0; i < (size_t)64 * 48 * 3; i++) {
                r = r * 1664525u + 1013904223u;
                u.a.data[i] = (uint8_t)(r >> 24);
                r = r * 1664525u + 1013904223u;
                u.b.data[i] = (uint8_t)(r >> 24);
            }
            for (size_t i = 0; i < (size_t)64 * 48 * 2; i++) {
                r = r * 1664525u + 1013904223u;
                u.f.uv[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 40;
                r = r * 1664525u + 1013904223u;
                u.g.uv[i] = ((float)(r >> 8) / 16777216.0f - 0.5f) * 40;
            }
            morph_free(&u.m);
            CHECK(morph_init(&u.m, &u.a, &u.b, &u.f, &u.g) == 0);
        }
        CHECK(morph_frame(&u.m, &u.s, 0.0, &u.out) == 0);
        CHECKF(memcmp(u.out.data, u.a.data, (size_t)64 * 48 * 3) == 0, "pass %d: t = 0 differs from A", pass);
        CHECK(morph_frame(&u.m, &u.s, 1.0, &u.out) == 0);
        CHECKF(memcmp(u.out.data, u.b.data, (size_t)64 * 48 * 3) == 0, "pass %d: t = 1 differs from B", pass);
    }
    setup_free(&u);
}

static void test_translation(void)
{
    /* A sub-pixel translation: the in-between frames are the texture shifted
     * by t*d. Bilinear sampling of 8-bit frames limits the accuracy; the
     * margin excludes the strip that enters the frame (seen by one side). */
    TEST("pure translation: frames at t = 0.25, 0.5, 0.75 match the true shift");
    struct setup u;
    struct scene sc = { 6.4, -3.2, 0, 0, 0, 0, 0 };
    CHECK(setup_scene(&u, &sc, 160, 120) == 0);
    double occ_a, occ_b;
    morph_occlusion_stats(&u.m, &occ_a, &occ_b);
    /* pixels of A that leave the frame: a 7-column and a 4-row strip (x + 6.4 > 159, y - 3.2 < 0) */
    double expect = (7.0 * 120 + 4.0 * 160 - 7.0 * 4) / (160.0 * 120);
    CHECK_NEAR(occ_a, expect, 1e-9);
    CHECK_NEAR(occ_b, expect, 1e-9);
    for (int k = 1; k <= 3; k++) {
        double t = k / 4.0;
        render(&sc, t, &(struct image){ .w = 160, .h = 120, .c = 3, .data = NULL }, u.ref);
        CHECK(morph_frame(&u.m, &u.s, t, &u.out) == 0);
        double p_in = psnr_region(&u.out, u.ref, 8), p_all = psnr_region(&u.out, u.ref, 0);
        struct image bl = { 0 };
        image_alloc(&bl, 160, 120, 3);
        blend(&u.a, &u.b, t, &bl);
        double p_blend = psnr_region(&bl, u.ref, 8);
        image_free(&bl);
        printf("# t=%.2f psnr interior %.2f dB, whole %.2f dB, crossfade %.2f dB\n", t, p_in, p_all, p_blend);
        CHECKF(p_in >= 45, "t=%.2f interior PSNR %.2f < 45 dB", t, p_in);
        CHECKF(p_all >= 40, "t=%.2f whole-frame PSNR %.2f < 40 dB", t, p_all);
        CHECKF(p_in > p_blend + 10, "t=%.2f morph %.2f dB vs crossfade %.2f dB", t, p_in, p_blend);
    }
    setup_free(&u);
}

static void test_occlusion(void)
{
    /* A textured square moving right over a still background: pixels of the
     * background it uncovers exist only in A, those it covers only in B. A
     * morph without occlusion reasoning ghosts the square's texture into the
     * uncovered strip; this one must fill it from the side that sees it. */
    TEST("moving square over a still background: occlusions, no ghosting");
    struct setup u;
    struct scene sc = { 0, 0, 12, 4, 40, 30, 40 };
    CHECK(setup_scene(&u, &sc, 160, 120) == 0);
    double occ_a, occ_b;
    morph_occlusion_stats(&u.m, &occ_a, &occ_b);
    /* background of A that the square covers in B: the L-shaped region 12 x 40 + 4 x 40 - 12 x 4 */
    double expect = (12.0 * 40 + 4.0 * 40 - 12.0 * 4) / (160.0 * 120);
    CHECK_NEAR(occ_a, expect, 0.5 / 120);
    CHECK_NEAR(occ_b, expect, 0.5 / 120);
    render(&sc, 0.5, &(struct image){ .w = 160, .h = 120, .c = 3, .data = NULL }, u.ref);
    CHECK(morph_frame(&u.m, &u.s, 0.5, &u.out) == 0);
    double p = psnr_region(&u.out, u.ref, 0);
    struct image bl = { 0 };
    image_alloc(&bl, 160, 120, 3);
    blend(&u.a, &u.b, 0.5, &bl);
    double pb = psnr_region(&bl, u.ref, 0);
    image_free(&bl);
    /* ghosting check: mean abs error in the strips the square uncovers (x in [40, 46), its trail) */
    double e = 0;
    int n = 0;
    for (int y = 36; y < 70; y++)
        for (int x = 41; x < 45; x++)
            for (int k = 0; k < 3; k++) {
                size_t i = ((size_t)y * 160 + x) * 3 + k;
                e += fabs(u.out.data[i] - u.ref[i]);
                n++;
            }
    printf("# square: psnr %.2f dB (crossfade %.2f dB), uncovered strip mean abs error %.2f\n", p, pb, e / n);
    CHECKF(p >= 35, "PSNR %.2f < 35 dB", p);
    CHECKF(p > pb + 10, "morph %.2f dB vs crossfade %.2f dB", p, pb);
    CHECKF(e / n < 2.0, "uncovered strip mean abs error %.2f >= 2 (ghosting)", e / n);
    setup_free(&u);
}

static void test_bad_sizes(void)
{
    TEST("sizes that do not match are bad data");
    struct image a = { 0 }, b = { 0 };
    struct flow f = { 0 }, g = { 0 }, f2 = { 0 };
    struct morph m;
    image_alloc(&a, 32, 24, 3);
    image_alloc(&b, 32, 25, 3);
    flow_alloc(&f, 32, 24);
    flow_alloc(&g, 32, 24);
    flow_alloc(&f2, 31, 24);
    CHECK(morph_init(&m, &a, &b, &f, &g) == ISO_EDATA);
    CHECK(morph_init(&m, &a, &a, &f2, &g) == ISO_EDATA);
    CHECK(strstr(iso_errmsg(), "31x24") != NULL);
    CHECK(morph_init(&m, &a, &a, &f, &f2) == ISO_EDATA);
    CHECK(morph_init(&m, &a, &a, &f, &g) == 0);
    morph_free(&m);
    image_free(&a);
    image_free(&b);
    flow_free(&f);
    flow_free(&g);
    flow_free(&f2);
}

struct collect {
    pthread_mutex_t lock;
    int n, calls;
    uint8_t **frames;
    size_t bytes;
};

static int collect_sink(void *ctx, int index, const struct image *fr)
{
    struct collect *c = ctx;
    pthread_mutex_lock(&c->lock);
    c->calls++;
    if (index >= 0 && index < c->n && !c->frames[index]) {
        c->frames[index] = malloc(c->bytes);
        if (c->frames[index]) memcpy(c->frames[index], fr->data, c->bytes);
    }
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static int failing_sink(void *ctx, int index, const struct image *fr)
{
    return index == 3 ? iso_fail(ISO_EIO, "disk full at frame %d", index) : 0;
}

static void test_model_threads(void)
{
    TEST("segmodel morph: every frame once, threads agree with one thread, errors carried back");
    struct setup u;
    struct scene sc = { 0, 0, 9, -5, 50, 20, 30 };
    CHECK(setup_scene(&u, &sc, 96, 72) == 0);
    const struct segmodel_ops *ops = segmodel_find("morph");
    CHECK(ops == &segmodel_morph);
    CHECK(segmodel_find("wan") == NULL);
    int n = 9;
    struct collect c = { .n = n, .bytes = (size_t)96 * 72 * 3 };
    pthread_mutex_init(&c.lock, NULL);
    c.frames = calloc((size_t)n, sizeof *c.frames);
    struct segmodel_params p = { .threads = 3, .width = 96, .height = 72, .channels = 3, .frames = n };
    struct segmodel_request req = { .start = &u.a, .end = &u.b, .flow_fwd = &u.f, .flow_bwd = &u.g, .frames = n };
    void *ctx = NULL;
    CHECK(ops->open(&p, &ctx) == 0);
    CHECK(ops->generate(ctx, &req, collect_sink, &c) == 0);
    CHECK(c.calls == n);
    int same = 1;
    for (int i = 0; i < n; i++) {
        if (!c.frames[i]) { same = 0; break; }
        CHECK(morph_frame(&u.m, &u.s, (double)i / (n - 1), &u.out) == 0);
        if (memcmp(c.frames[i], u.out.data, c.bytes) != 0) same = 0;
    }
    CHECK(same);
    CHECK(memcmp(c.frames[0], u.a.data, c.bytes) == 0);
    CHECK(memcmp(c.frames[n - 1], u.b.data, c.bytes) == 0);
    iso_errclear();
    CHECK(ops->generate(ctx, &req, failing_sink, NULL) == ISO_EIO);
    CHECK_STR(iso_errmsg(), "disk full at frame 3");
    req.frames = 1;
    CHECK(ops->generate(ctx, &req, collect_sink, &c) == ISO_EDATA);
    ops->close(&ctx);
    CHECK(ctx == NULL);
    struct mem_plan plan;
    CHECK(ops->plan(&p, &plan) == 0);
    CHECK(plan.mode[MEM_MODE_CPU].possible && !plan.mode[MEM_MODE_BEEFY].possible);
    CHECK(plan.mode[MEM_MODE_CPU].host_rss >= 3 * morph_scratch_bytes(96, 72));
    for (int i = 0; i < n; i++) free(c.frames[i]);
    free(c.frames);
    pthread_mutex_destroy(&c.lock);
    setup_free(&u);
}

int main(void)
{
    test_keyframes_exact();
    test_translation();
    test_occlusion();
    test_bad_sizes();
    test_model_threads();
    return test_report();
}
