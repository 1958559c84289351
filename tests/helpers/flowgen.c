/* flowgen — synthetic optical-flow ground truth, in the spirit of FlyingChairs
 * (Dosovitskiy et al., ICCV 2015): a textured background and several textured
 * foreground layers (ellipses and rectangles), each moving with its own
 * similarity transform (translation, rotation about its centre, zoom) at a
 * constant rate per frame, occluding each other in a fixed depth order.
 *
 *   flowgen -o DIR --seed N --width W --height H --frames K
 *           [--noise SIGMA] [--brightness DELTA] [--max-motion PX] [--layers N]
 *
 * writes DIR/frame_00000.png .. frame_{K-1}.png, and for i in 0..K-2
 * DIR/gt_{i}.flo (flow from frame i to frame i+1) and DIR/occ_{i}.png
 * (255 where the pixel of frame i is occluded in frame i+1 or leaves the
 * image, 0 elsewhere).
 *
 * Why it is exact: every texture is a closed-form function of a layer's own
 * coordinates (sinusoids plus smooth value noise), so frame i+1 is rendered
 * from the transform, never by resampling frame i, and the ground truth of
 * pixel x in frame i is A_{i+1}(A_i^{-1}(x)) - x for the layer on top at x.
 * Colours are 2x2 supersampled (the flow is defined at the pixel centre).
 * --brightness adds DELTA*i grey levels to frame i; --noise adds Gaussian
 * noise of SIGMA grey levels, independent per frame and pixel. Motions per
 * layer are log-uniform between 0.15 px and --max-motion (default 40). */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "flo.h"
#include "fs.h"
#include "image.h"

#define NWAVE 7
#define MAXLAYER 12

struct texture {
    double base[3];
    double fx[NWAVE], fy[NWAVE], ph[NWAVE], amp[NWAVE][3];
    double cell;            /* value-noise lattice spacing, px */
    double noise_amp[3];
    uint64_t noise_key;
};

struct layer {
    int shape;              /* 0 background (everywhere), 1 ellipse, 2 rectangle */
    double rx, ry;          /* half extents in layer units */
    double cx, cy, vx, vy;  /* centre at frame 0 and its velocity, px/frame */
    double th, om;          /* angle at frame 0 and per frame, radians */
    double s0, zoom;        /* scale at frame 0 and its factor per frame */
    struct texture tex;
};

static uint64_t rng_state;
static uint64_t rng_next(void)
{
    /* splitmix64 (Steele et al., 2014): tiny and well mixed */
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static double rng_uni(void) { return (double)(rng_next() >> 11) * (1.0 / 9007199254740992.0); }
static double rng_range(double a, double b) { return a + (b - a) * rng_uni(); }
static double rng_gauss(void)
{
    double u1 = rng_uni(), u2 = rng_uni();
    if (u1 < 1e-300) u1 = 1e-300;
    return sqrt(-2.0 * log(u1)) * cos(2.0 * M_PI * u2);
}

static uint64_t hash3(uint64_t key, int64_t i, int64_t j)
{
    uint64_t z = key ^ ((uint64_t)i * 0x9e3779b97f4a7c15ull) ^ ((uint64_t)j * 0xc2b2ae3d27d4eb4full);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

/* smooth value noise in [-1, 1]: random lattice values, quintic interpolation */
static double value_noise(uint64_t key, double x, double y)
{
    double fx = floor(x), fy = floor(y);
    int64_t i = (int64_t)fx, j = (int64_t)fy;
    double tx = x - fx, ty = y - fy;
    tx = tx * tx * tx * (tx * (tx * 6 - 15) + 10);
    ty = ty * ty * ty * (ty * (ty * 6 - 15) + 10);
    double v[4];
    for (int k = 0; k < 4; k++)
        v[k] = (double)(hash3(key, i + (k & 1), j + (k >> 1)) >> 11) * (2.0 / 9007199254740992.0) - 1.0;
    double a = v[0] + (v[1] - v[0]) * tx, b = v[2] + (v[3] - v[2]) * tx;
    return a + (b - a) * ty;
}

static void texture_random(struct texture *t)
{
    for (int c = 0; c < 3; c++) t->base[c] = rng_range(60, 195);
    for (int k = 0; k < NWAVE; k++) {
        /* spatial frequencies 0.01 .. 0.2 cycles per layer unit: below the
         * Nyquist limit of the 2x2 supersampled raster even at 1.3x zoom */
        double f = exp(rng_range(log(0.01), log(0.2))), a = rng_range(0, 2 * M_PI);
        t->fx[k] = 2 * M_PI * f * cos(a);
        t->fy[k] = 2 * M_PI * f * sin(a);
        t->ph[k] = rng_range(0, 2 * M_PI);
        double amp = rng_range(8, 30);
        for (int c = 0; c < 3; c++) t->amp[k][c] = amp * rng_range(0.3, 1.0) * (rng_uni() < 0.5 ? -1 : 1);
    }
    t->cell = rng_range(3, 9);
    for (int c = 0; c < 3; c++) t->noise_amp[c] = rng_range(15, 35);
    t->noise_key = rng_next();
}

static void texture_eval(const struct texture *t, double x, double y, double out[3])
{
    for (int c = 0; c < 3; c++) out[c] = t->base[c];
    for (int k = 0; k < NWAVE; k++) {
        double s = sin(t->fx[k] * x + t->fy[k] * y + t->ph[k]);
        for (int c = 0; c < 3; c++) out[c] += t->amp[k][c] * s;
    }
    double n = value_noise(t->noise_key, x / t->cell, y / t->cell) +
               0.5 * value_noise(t->noise_key ^ 0x5555, x / (2.5 * t->cell), y / (2.5 * t->cell));
    for (int c = 0; c < 3; c++) out[c] += t->noise_amp[c] * n;
}

/* layer coordinates of image point (x, y) at frame f: p = R(-th) (x - c) / s */
static void layer_inverse(const struct layer *L, double f, double x, double y, double *px, double *py)
{
    double cx = L->cx + f * L->vx, cy = L->cy + f * L->vy;
    double th = L->th + f * L->om, s = L->s0 * pow(L->zoom, f);
    double dx = x - cx, dy = y - cy, c = cos(th), sn = sin(th);
    *px = (c * dx + sn * dy) / s;
    *py = (-sn * dx + c * dy) / s;
}

static void layer_forward(const struct layer *L, double f, double px, double py, double *x, double *y)
{
    double cx = L->cx + f * L->vx, cy = L->cy + f * L->vy;
    double th = L->th + f * L->om, s = L->s0 * pow(L->zoom, f);
    double c = cos(th), sn = sin(th);
    *x = cx + s * (c * px - sn * py);
    *y = cy + s * (sn * px + c * py);
}

static int layer_inside(const struct layer *L, double px, double py)
{
    if (L->shape == 0) return 1;
    double u = px / L->rx, v = py / L->ry;
    if (L->shape == 1) return u * u + v * v <= 1.0;
    return fabs(u) <= 1.0 && fabs(v) <= 1.0;
}

/* index of the topmost layer covering (x, y) at frame f; layers[0] is the background */
static int top_layer(const struct layer *ls, int n, double f, double x, double y, double *px, double *py)
{
    for (int k = n - 1; k >= 0; k--) {
        layer_inverse(&ls[k], f, x, y, px, py);
        if (layer_inside(&ls[k], *px, *py)) return k;
    }
    return 0; /* unreachable: the background covers everything */
}

static double log_uniform(double lo, double hi) { return exp(rng_range(log(lo), log(hi))); }

static void make_scene(struct layer *ls, int n, int w, int h, double max_motion)
{
    double dim = w < h ? w : h;
    memset(ls, 0, sizeof *ls * (size_t)n);
    for (int k = 0; k < n; k++) {
        struct layer *L = &ls[k];
        double mag, dir = rng_range(0, 2 * M_PI);
        if (k == 0) {
            L->shape = 0;
            L->cx = w / 2.0;
            L->cy = h / 2.0;
            mag = log_uniform(0.15, max_motion / 3 > 0.2 ? max_motion / 3 : 0.2);
            L->om = rng_range(-1, 1) * M_PI / 180;
            L->zoom = exp(rng_range(-0.01, 0.01));
        } else {
            L->shape = 1 + (int)(rng_next() & 1);
            L->rx = dim * rng_range(0.08, 0.2);
            L->ry = L->rx * rng_range(0.5, 1.4);
            L->cx = rng_range(0.1, 0.9) * w;
            L->cy = rng_range(0.1, 0.9) * h;
            /* one layer always carries the largest motion, one a sub-pixel one */
            mag = k == 1 ? max_motion * rng_range(0.85, 1.0)
                : k == 2 ? rng_range(0.15, 0.9)
                : log_uniform(0.15, max_motion > 0.2 ? max_motion : 0.2);
            L->om = rng_range(-3, 3) * M_PI / 180;
            L->zoom = exp(rng_range(-0.03, 0.03));
        }
        L->vx = mag * cos(dir);
        L->vy = mag * sin(dir);
        L->th = rng_range(0, 2 * M_PI);
        L->s0 = rng_range(0.8, 1.25);
        texture_random(&L->tex);
    }
}

static int render(const struct layer *ls, int n, int f, struct image *img, double brightness, double noise)
{
    static const double off[4][2] = { { -0.25, -0.25 }, { 0.25, -0.25 }, { -0.25, 0.25 }, { 0.25, 0.25 } };
    for (int y = 0; y < img->h; y++)
        for (int x = 0; x < img->w; x++) {
            double acc[3] = { 0, 0, 0 }, col[3], px, py;
            for (int s = 0; s < 4; s++) {
                int k = top_layer(ls, n, f, x + off[s][0], y + off[s][1], &px, &py);
                texture_eval(&ls[k].tex, px, py, col);
                for (int c = 0; c < 3; c++) acc[c] += col[c];
            }
            for (int c = 0; c < 3; c++) {
                double v = acc[c] / 4 + brightness * f + (noise > 0 ? noise * rng_gauss() : 0);
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                img->data[((size_t)y * img->w + x) * 3 + c] = (uint8_t)lrint(v);
            }
        }
    return 0;
}

static int ground_truth(const struct layer *ls, int n, int f, struct flow *fl, struct image *occ)
{
    for (int y = 0; y < fl->h; y++)
        for (int x = 0; x < fl->w; x++) {
            double px, py, x1, y1, qx, qy;
            int k = top_layer(ls, n, f, x, y, &px, &py);
            layer_forward(&ls[k], f + 1, px, py, &x1, &y1);
            size_t i = (size_t)y * fl->w + x;
            fl->uv[2 * i] = (float)(x1 - x);
            fl->uv[2 * i + 1] = (float)(y1 - y);
            int occluded = x1 < 0 || y1 < 0 || x1 > fl->w - 1 || y1 > fl->h - 1 ||
                           top_layer(ls, n, f + 1, x1, y1, &qx, &qy) != k;
            occ->data[i] = occluded ? 255 : 0;
        }
    return 0;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: flowgen -o DIR --seed N --width W --height H --frames K\n"
               "               [--noise SIGMA] [--brightness DELTA] [--max-motion PX] [--layers N]\n");
}

static int parse_num(const char *name, const char *s, double lo, double hi, double *out)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v >= lo && v <= hi)) {
        fprintf(stderr, "flowgen: --%s: '%s' is not a number in [%g, %g]\n", name, s, lo, hi);
        return -1;
    }
    *out = v;
    return 0;
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        { "output", required_argument, 0, 'o' }, { "seed", required_argument, 0, 's' },
        { "width", required_argument, 0, 'W' },  { "height", required_argument, 0, 'H' },
        { "frames", required_argument, 0, 'k' }, { "noise", required_argument, 0, 'n' },
        { "brightness", required_argument, 0, 'b' }, { "max-motion", required_argument, 0, 'm' },
        { "layers", required_argument, 0, 'l' }, { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 },
    };
    const char *out = NULL;
    double seed = 0, w = 320, h = 240, frames = 2, noise = 0, bright = 0, maxm = 40, nlayers = -1;
    int ch, rc = 0;
    while ((ch = getopt_long(argc, argv, "o:h", lo, NULL)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 's': rc = parse_num("seed", optarg, 0, 4294967295.0, &seed); break;
        case 'W': rc = parse_num("width", optarg, 8, 8192, &w); break;
        case 'H': rc = parse_num("height", optarg, 8, 8192, &h); break;
        case 'k': rc = parse_num("frames", optarg, 2, 100000, &frames); break;
        case 'n': rc = parse_num("noise", optarg, 0, 100, &noise); break;
        case 'b': rc = parse_num("brightness", optarg, -100, 100, &bright); break;
        case 'm': rc = parse_num("max-motion", optarg, 0.2, 1000, &maxm); break;
        case 'l': rc = parse_num("layers", optarg, 0, MAXLAYER - 1, &nlayers); break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 64;
        }
        if (rc) return 64;
    }
    if (!out || optind != argc) { usage(stderr); return 64; }
    rng_state = (uint64_t)seed * 0x2545f4914f6cdd1dull + 1;
    int W = (int)w, H = (int)h, K = (int)frames;
    int n = 1 + (nlayers >= 0 ? (int)nlayers : 3 + (int)(rng_next() % 3));
    struct layer ls[MAXLAYER];
    make_scene(ls, n, W, H, maxm);
    struct image img = { 0 }, occ = { 0 };
    struct flow fl = { 0 };
    char name[64];
    if (fs_mkdir_p(out) || image_alloc(&img, W, H, 3) || image_alloc(&occ, W, H, 1) || flow_alloc(&fl, W, H)) {
        rc = 1;
        goto done;
    }
    for (int f = 0; f < K && !rc; f++) {
        char *p;
        render(ls, n, f, &img, bright, noise);
        snprintf(name, sizeof name, "frame_%05d.png", f);
        p = fs_join(out, name);
        rc = image_save_png(p, &img, 1);
        free(p);
        if (rc || f == K - 1) continue;
        ground_truth(ls, n, f, &fl, &occ);
        snprintf(name, sizeof name, "gt_%05d.flo", f);
        p = fs_join(out, name);
        rc = flo_write(p, &fl);
        free(p);
        if (rc) continue;
        snprintf(name, sizeof name, "occ_%05d.png", f);
        p = fs_join(out, name);
        rc = image_save_png(p, &occ, 1);
        free(p);
    }
done:
    if (rc) fprintf(stderr, "flowgen: %s\n", iso_errmsg());
    image_free(&img);
    image_free(&occ);
    flow_free(&fl);
    return rc ? iso_exit_code(rc < 0 ? rc : ISO_EIO) : 0;
}
