/* mkkeyframes — draws the sample keyframes of sample_inputs/ from code, so
 * every image that ships is reproducible and free of third-party licences.
 *
 *   mkkeyframes --scene harbor|forest [--width W] [--height H] [--count N]
 *               [--step PX] [--seed S] -o DIR
 *
 * writes DIR/<scene>_00.png ... : N views of one procedural world seen by a
 * camera that pans right by PX pixels (at the nearest layer) per keyframe.
 * The world is layered with parallax (sky and sun fixed, clouds and far
 * hills slow, the foreground fast) and textured with value noise, so the
 * optical flow between keyframes has real, depth-dependent structure and the
 * morph has edges and occlusions to handle. Everything is integer-hashed
 * noise: the same arguments give the same pixels on any machine. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "image.h"

static uint32_t g_seed;

static uint32_t hash2(int32_t x, int32_t y, uint32_t salt)
{
    /* a 32-bit integer mix (lowbias32-style) of the lattice point */
    uint32_t h = (uint32_t)x * 0x8da6b343u ^ (uint32_t)y * 0xd8163841u ^ (salt + g_seed) * 0xcb1ab31fu;
    h ^= h >> 16;
    h *= 0x7feb352du;
    h ^= h >> 15;
    h *= 0x846ca68bu;
    h ^= h >> 16;
    return h;
}

static double lattice(int32_t x, int32_t y, uint32_t salt) { return (hash2(x, y, salt) & 0xffffff) / 16777215.0; }

/* value noise in [0,1] with smoothstep interpolation */
static double vnoise(double x, double y, uint32_t salt)
{
    double fx = floor(x), fy = floor(y);
    int32_t ix = (int32_t)fx, iy = (int32_t)fy;
    double tx = x - fx, ty = y - fy;
    tx = tx * tx * (3 - 2 * tx);
    ty = ty * ty * (3 - 2 * ty);
    double a = lattice(ix, iy, salt), b = lattice(ix + 1, iy, salt);
    double c = lattice(ix, iy + 1, salt), d = lattice(ix + 1, iy + 1, salt);
    return (a + (b - a) * tx) * (1 - ty) + (c + (d - c) * tx) * ty;
}

static double fbm(double x, double y, int oct, uint32_t salt)
{
    double s = 0, amp = 0.5, norm = 0;
    for (int i = 0; i < oct; i++) {
        s += amp * vnoise(x, y, salt + (uint32_t)i * 101u);
        norm += amp;
        x *= 2.03;
        y *= 2.03;
        amp *= 0.5;
    }
    return s / norm;
}

static double clamp01(double v) { return v < 0 ? 0 : v > 1 ? 1 : v; }
static double mix(double a, double b, double t) { return a + (b - a) * t; }

struct rgb { double r, g, b; };
static struct rgb rgb_mix(struct rgb a, struct rgb b, double t)
{
    struct rgb o = { mix(a.r, b.r, t), mix(a.g, b.g, t), mix(a.b, b.b, t) };
    return o;
}

/* Scene coordinates: v in [0,1] top to bottom, u in units of the image
 * height (so shapes keep their aspect at any size); cam is the pan of the
 * nearest layer in the same units, each layer sees u + cam * parallax. */
static struct rgb sky(double u, double v, double cam, int dusk)
{
    struct rgb top = dusk ? (struct rgb){ 0.18, 0.22, 0.45 } : (struct rgb){ 0.25, 0.48, 0.85 };
    struct rgb hor = dusk ? (struct rgb){ 0.98, 0.62, 0.35 } : (struct rgb){ 0.80, 0.88, 0.95 };
    struct rgb c = rgb_mix(top, hor, clamp01(v / 0.55));
    double su = u - 1.15, sv = v - 0.30;
    double d = sqrt(su * su + sv * sv);
    if (d < 0.07) c = (struct rgb){ 1.0, 0.95, 0.75 };
    else c = rgb_mix(c, (struct rgb){ 1.0, 0.9, 0.7 }, clamp01(0.25 - d) * 1.2);
    double cl = fbm((u + cam * 0.15) * 3.0, v * 7.0, 5, 11);
    double cover = clamp01((cl - 0.52) * 4.0) * clamp01((0.5 - v) * 4);
    return rgb_mix(c, (struct rgb){ 0.97, 0.96, 0.95 }, cover * 0.85);
}

static double ridge(double u, double base, double amp, double freq, uint32_t salt)
{
    return base - amp * fbm(u * freq, 0.5, 5, salt);
}

static struct rgb harbor(double u, double v, double cam)
{
    struct rgb c = sky(u, v, cam, 1);
    /* far hills (parallax 0.3) */
    double uf = u + cam * 0.3;
    if (v > ridge(uf, 0.58, 0.22, 1.6, 21)) {
        double t = fbm(uf * 12, v * 12, 4, 23);
        c = rgb_mix((struct rgb){ 0.30, 0.28, 0.40 }, (struct rgb){ 0.42, 0.36, 0.48 }, t);
    }
    /* town on the shore (parallax 0.55): blocks of houses with windows */
    double ut = u + cam * 0.55;
    double col = floor(ut * 9.0);
    double hh = 0.05 + 0.07 * lattice((int32_t)col, 3, 31);
    if (v > 0.60 - hh && v < 0.62) {
        double tint = lattice((int32_t)col, 5, 33);
        c = rgb_mix((struct rgb){ 0.85, 0.55, 0.40 }, (struct rgb){ 0.95, 0.85, 0.65 }, tint);
        double wx = fmod(ut * 9.0 - col, 1.0), wy = fmod((0.62 - v) * 60.0, 1.0);
        if (wx > 0.25 && wx < 0.45 && wy > 0.3 && wy < 0.7) c = (struct rgb){ 1.0, 0.85, 0.35 };
        if (wx < 0.04) c = rgb_mix(c, (struct rgb){ 0, 0, 0 }, 0.35);
    }
    /* water below the shore line (parallax 0.8), ripples stretched sideways */
    if (v >= 0.62) {
        double uw = u + cam * 0.8;
        double depth = (v - 0.62) / 0.38;
        double rip = fbm(uw * 6.0, v * 40.0, 4, 41);
        c = rgb_mix((struct rgb){ 0.20, 0.30, 0.45 }, (struct rgb){ 0.05, 0.15, 0.30 }, depth);
        c = rgb_mix(c, (struct rgb){ 0.95, 0.70, 0.45 }, clamp01((rip - 0.55) * 3.0) * (1 - depth));
    }
    /* boats (parallax 1): hulls, cabins and masts at fixed world positions */
    double un = u + cam;
    for (int b = 0; b < 5; b++) {
        double bx = 0.25 + b * 0.42 + 0.1 * lattice(b, 7, 51), by = 0.74 + 0.12 * lattice(b, 9, 53);
        double len = 0.16 + 0.06 * lattice(b, 11, 55);
        double dx = un - bx, dy = v - by;
        double half = len / 2 - (dy > 0 ? dy * 0.8 : 0);
        if (dy > -0.035 && dy < 0.035 && fabs(dx) < half) {
            struct rgb hull = lattice(b, 13, 57) > 0.5 ? (struct rgb){ 0.80, 0.15, 0.12 } : (struct rgb){ 0.92, 0.92, 0.90 };
            c = dy < -0.025 ? (struct rgb){ 0.2, 0.2, 0.25 } : hull;
            c = rgb_mix(c, (struct rgb){ 0, 0, 0 }, 0.25 * fbm(un * 40, v * 40, 2, 59));
        } else if (dy > -0.08 && dy <= -0.035 && dx > -len * 0.2 && dx < len * 0.15) {
            c = (struct rgb){ 0.95, 0.93, 0.85 };
            if (fmod((dx + 1) * 60.0, 1.0) < 0.35 && dy > -0.07 && dy < -0.05) c = (struct rgb){ 0.2, 0.3, 0.4 };
        } else if (dy > -0.30 && dy <= -0.035 && fabs(dx - len * 0.05) < 0.006) {
            c = (struct rgb){ 0.35, 0.25, 0.15 };
        }
    }
    /* pier posts in the foreground (parallax 1.3) */
    double up = u + cam * 1.3;
    double pc = fmod(up * 3.0 + 100.0, 1.0);
    if (v > 0.86 && pc < 0.07) c = rgb_mix((struct rgb){ 0.30, 0.20, 0.12 }, (struct rgb){ 0.45, 0.32, 0.2 }, fbm(up * 50, v * 30, 3, 61));
    return c;
}

static struct rgb forest(double u, double v, double cam)
{
    struct rgb c = sky(u, v, cam, 0);
    double layers[3] = { 0.35, 0.65, 1.0 };
    struct rgb dark[3] = { { 0.35, 0.45, 0.50 }, { 0.16, 0.32, 0.20 }, { 0.07, 0.22, 0.08 } };
    struct rgb light[3] = { { 0.50, 0.60, 0.62 }, { 0.30, 0.52, 0.28 }, { 0.22, 0.45, 0.15 } };
    for (int l = 0; l < 3; l++) {
        double ul = u + cam * layers[l];
        double ground = ridge(ul, 0.62 + 0.12 * l, 0.12, 1.2, 71 + (uint32_t)l);
        double t = fbm(ul * (10 + 8 * l), v * (10 + 8 * l), 4, 73 + (uint32_t)l);
        if (v > ground) c = rgb_mix(dark[l], light[l], t * 0.8);
        /* trees: cones on a per-layer lattice standing on the ground line */
        double spacing = 0.10 + 0.04 * (2 - l);
        double cell = floor(ul / spacing);
        for (int k = -1; k <= 1; k++) {
            double cc = cell + k;
            double tx = (cc + 0.2 + 0.6 * lattice((int32_t)cc, l, 77)) * spacing;
            double th = (0.10 + 0.10 * lattice((int32_t)cc, l, 79)) * (0.6 + 0.3 * l);
            double tw = th * 0.35;
            double gy = ridge(tx, 0.62 + 0.12 * l, 0.12, 1.2, 71 + (uint32_t)l);
            double dy = gy - v, dx = fabs(ul - tx);
            if (dy > 0 && dy < th && dx < tw * (1 - dy / th)) {
                double n = fbm(ul * 60, v * 60, 3, 81 + (uint32_t)l);
                c = rgb_mix(dark[l], light[l], 0.2 + 0.6 * n + 0.2 * (dx / tw));
            } else if (dy > -0.02 * (l + 1) && dy <= 0 && dx < 0.004 * (l + 1)) {
                c = (struct rgb){ 0.30, 0.20, 0.10 };
            }
        }
    }
    /* a winding path in the foreground */
    double un = u + cam * 1.2;
    double pathx = 0.5 + 0.25 * sin(un * 2.2);
    if (v > 0.88 && fabs(fmod(un + 50, 1.0) - pathx * 0.5) < 0.04 + (v - 0.88))
        c = rgb_mix((struct rgb){ 0.62, 0.52, 0.38 }, (struct rgb){ 0.75, 0.66, 0.50 }, fbm(un * 30, v * 30, 3, 91));
    return c;
}

int main(int argc, char **argv)
{
    const char *scene = "harbor", *out = NULL;
    int w = 320, h = 192, count = 3;
    double step = 12;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--scene") && v) { scene = v; i++; }
        else if (!strcmp(a, "--width") && v) { w = atoi(v); i++; }
        else if (!strcmp(a, "--height") && v) { h = atoi(v); i++; }
        else if (!strcmp(a, "--count") && v) { count = atoi(v); i++; }
        else if (!strcmp(a, "--step") && v) { step = atof(v); i++; }
        else if (!strcmp(a, "--seed") && v) { g_seed = (uint32_t)strtoul(v, NULL, 10); i++; }
        else if (!strcmp(a, "-o") && v) { out = v; i++; }
        else {
            fprintf(stderr, "usage: mkkeyframes --scene harbor|forest [--width W] [--height H] [--count N] "
                            "[--step PX] [--seed S] -o DIR\n");
            return 64;
        }
    }
    int harb = !strcmp(scene, "harbor");
    if (!out || (!harb && strcmp(scene, "forest")) || w < 8 || h < 8 || w > 4096 || h > 4096 || count < 1 || count > 99) {
        fprintf(stderr, "mkkeyframes: bad arguments (scene '%s', %dx%d, count %d, -o required)\n", scene, w, h, count);
        return 64;
    }
    if (fs_mkdir_p(out)) { fprintf(stderr, "mkkeyframes: cannot create '%s'\n", out); return 73; }
    struct image img = { 0 };
    if (image_alloc(&img, w, h, 3)) return 70;
    for (int k = 0; k < count; k++) {
        double cam = k * step / h;
        /* 2x2 supersampling keeps edges smooth, as a camera's would be */
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double r = 0, g = 0, b = 0;
                for (int s = 0; s < 4; s++) {
                    double u = (x + 0.25 + 0.5 * (s & 1)) / h, v = (y + 0.25 + 0.5 * (s >> 1)) / h;
                    struct rgb c = harb ? harbor(u, v, cam) : forest(u, v, cam);
                    r += c.r; g += c.g; b += c.b;
                }
                uint8_t *p = img.data + ((size_t)y * (size_t)w + (size_t)x) * 3;
                p[0] = (uint8_t)lround(clamp01(r / 4) * 255);
                p[1] = (uint8_t)lround(clamp01(g / 4) * 255);
                p[2] = (uint8_t)lround(clamp01(b / 4) * 255);
            }
        char name[64];
        snprintf(name, sizeof name, "%s_%02d.png", scene, k);
        char *path = fs_join(out, name);
        int rc = path ? image_save_png_atomic(path, &img, 9) : -70;
        free(path);
        if (rc) { fprintf(stderr, "mkkeyframes: cannot write '%s'\n", name); image_free(&img); return 73; }
    }
    image_free(&img);
    return 0;
}
