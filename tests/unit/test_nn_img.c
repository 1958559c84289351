/* test_nn_img.c — common/nn_img.c against PyTorch: the outputs in
 * tests/fixtures/nn_img/ops.json were computed by tests/ref/nn_img_ref.py
 * (F.interpolate bilinear align_corners=False, F.grid_sample bilinear border
 * align_corners=True with RIFE's grid, PixelShuffle, LeakyReLU, PReLU,
 * sigmoid) on random inputs. Tolerance 2e-5 absolute (float32 rounding of a
 * different summation order; the fixture keeps 7 decimals), and the same
 * bits on 1 and 3 threads. Plus the exact properties the RIFE forward relies
 * on: a resize to the same size and a zero-flow warp are the identity. */
#include <jansson.h>
#include <stdint.h>

#include "nn.h"
#include "nn_img.h"
#include "test.h"

#define TOL 2e-5

static float *floats(json_t *c, const char *key, size_t *n)
{
    json_t *a = json_object_get(c, key);
    size_t k = json_array_size(a);
    float *v = calloc(k ? k : 1, sizeof *v);
    for (size_t i = 0; i < k; i++) v[i] = (float)json_number_value(json_array_get(a, i));
    *n = k;
    return v;
}

static int geti(json_t *c, const char *key) { return (int)json_integer_value(json_object_get(c, key)); }

static double maxdiff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (!(d <= m)) m = d;   /* NaN sticks */
    }
    return m;
}

/* runs case c on nn into y; returns the expected length */
static size_t run_case(struct nn *nn, json_t *c, float *y)
{
    const char *op = json_string_value(json_object_get(c, "op"));
    size_t nx, ny, nu, nv, na;
    float *x = floats(c, "x", &nx), *ref = floats(c, "y", &ny);
    free(ref);
    if (!strcmp(op, "resize")) {
        nn_resize_bilinear(nn, y, geti(c, "Ho"), geti(c, "Wo"), x, geti(c, "C"), geti(c, "H"), geti(c, "W"));
    } else if (!strcmp(op, "warp")) {
        float *u = floats(c, "u", &nu), *v = floats(c, "v", &nv);
        nn_warp_bilinear(nn, y, x, geti(c, "C"), geti(c, "H"), geti(c, "W"), u, v);
        free(u);
        free(v);
    } else if (!strcmp(op, "shuffle")) {
        nn_pixel_shuffle(nn, y, x, geti(c, "C"), geti(c, "H"), geti(c, "W"), geti(c, "r"));
    } else if (!strcmp(op, "leaky")) {
        nn_leaky_relu(nn, y, x, nx, (float)json_number_value(json_object_get(c, "slope")));
    } else if (!strcmp(op, "prelu")) {
        float *a = floats(c, "a", &na);
        struct nn_w w = { .data = a, .dtype = WT_F32, .scale = 1 };
        nn_prelu(nn, y, x, geti(c, "C"), (size_t)geti(c, "S"), &w);
        free(a);
    } else if (!strcmp(op, "sigmoid")) {
        nn_sigmoid(nn, y, x, nx);
    }
    free(x);
    return ny;
}

int main(void)
{
    const char *root = getenv("ISOPIPE_ROOT");
    char fix[1024];
    snprintf(fix, sizeof fix, "%s/tests/fixtures/nn_img/ops.json", root ? root : ".");
    json_error_t err;
    json_t *doc = json_load_file(fix, 0, &err);
    CHECKF(doc != NULL, "cannot read %s: %s", fix, err.text);
    if (!doc) return test_report();
    struct nn *nn1 = NULL, *nn3 = NULL;
    CHECK(nn_new(&nn1, NN_CPU, 1) == 0);
    CHECK(nn_new(&nn3, NN_CPU, 3) == 0);
    if (!nn1 || !nn3) return test_report();

    TEST("PyTorch reference ops");
    json_t *cases = json_object_get(doc, "cases"), *c;
    size_t i;
    int seen_warp = 0, seen_resize = 0;
    json_array_foreach(cases, i, c) {
        const char *op = json_string_value(json_object_get(c, "op"));
        size_t ny;
        float *ref = floats(c, "y", &ny);
        float *y1 = calloc(ny, sizeof *y1), *y3 = calloc(ny, sizeof *y3);
        run_case(nn1, c, y1);
        run_case(nn3, c, y3);
        double d = maxdiff(y1, ref, ny);
        CHECKF(d <= TOL, "case %zu (%s): max |ours - torch| = %.3g", i, op, d);
        CHECKF(memcmp(y1, y3, ny * sizeof *y1) == 0, "case %zu (%s): 1 and 3 threads differ", i, op);
        seen_warp += !strcmp(op, "warp");
        seen_resize += !strcmp(op, "resize");
        free(ref);
        free(y1);
        free(y3);
    }
    CHECK(seen_warp >= 3 && seen_resize >= 5);

    TEST("identities");
    {
        enum { C = 2, H = 9, W = 11 };
        float x[C * H * W], y[C * H * W], u[H * W] = { 0 }, v[H * W] = { 0 };
        for (int k = 0; k < C * H * W; k++) x[k] = (float)((k * 37) % 101) / 101.0f;
        nn_resize_bilinear(nn3, y, H, W, x, C, H, W);
        CHECK(memcmp(x, y, sizeof x) == 0);
        nn_warp_bilinear(nn3, y, x, C, H, W, u, v);
        CHECK(memcmp(x, y, sizeof x) == 0);
        /* a whole-pixel flow moves the image, clamping at the border */
        for (int k = 0; k < H * W; k++) u[k] = 2;
        nn_warp_bilinear(nn3, y, x, C, H, W, u, v);
        CHECK(y[3] == x[5] && y[W - 1] == x[W - 1] && y[H * W + W - 2] == x[H * W + W - 1]);
        float mask[H * W];
        nn_fill(nn3, mask, H * W, 0.25f);
        CHECK(mask[0] == 0.25f && mask[H * W - 1] == 0.25f);
        nn_lerp_plane(nn3, y, x, x + H * W, mask, 1, H * W);
        CHECK_NEAR(y[7], 0.25 * x[7] + 0.75 * x[H * W + 7], 1e-7);
        float beta[C] = { 2, -1 };
        struct nn_w bw = { .data = beta, .dtype = WT_F32, .scale = 1 };
        nn_scale_channels_add(nn3, y, x, C, H * W, &bw, x);
        CHECK(y[4] == 3 * x[4] && y[H * W + 4] == 0);
    }
    nn_free(&nn1);
    nn_free(&nn3);
    json_decref(doc);
    return test_report();
}
