/* stitch_gen — a synthetic segment for stitch's tests and benchmark:
 *
 *   stitch_gen DIR WIDTH HEIGHT FRAMES SEED [FPS [PROMPT]]
 *
 * writes DIR/frame_00000.png .. frame_{FRAMES-1}.png (DIR is created) and,
 * when FPS is given, DIR/segment.json {"fps": FPS, "prompt": PROMPT}.
 * Content: a slowly drifting colour gradient, a grey sinusoidal texture
 * (periods of 9 to 40 pixels) sliding a few pixels per frame, and three
 * soft-edged coloured discs on their own paths. It is textured and moving
 * (the encoder has real work) but its colour varies smoothly, so yuv420p's
 * halved chroma costs little and a decoded frame can be compared with its
 * source at a PSNR tolerance. SEED changes colours, phases and paths. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "image.h"

static double frand(uint64_t *s)
{
    *s = *s * 6364136223846793005ull + 1442695040888963407ull;
    return (double)(*s >> 11) / 9007199254740992.0;
}

static uint8_t clamp8(double v)
{
    return v < 0 ? 0 : v > 255 ? 255 : (uint8_t)(v + 0.5);
}

int main(int argc, char **argv)
{
    if (argc < 6) {
        fprintf(stderr, "usage: stitch_gen DIR WIDTH HEIGHT FRAMES SEED [FPS [PROMPT]]\n");
        return 64;
    }
    const char *dir = argv[1];
    int w = atoi(argv[2]), h = atoi(argv[3]), n = atoi(argv[4]);
    uint64_t seed = strtoull(argv[5], NULL, 10) * 2654435761u + 12345;
    if (w < 1 || h < 1 || n < 0 || w > 8192 || h > 8192) {
        fprintf(stderr, "stitch_gen: bad size\n");
        return 64;
    }
    if (fs_mkdir_p(dir)) {
        fprintf(stderr, "stitch_gen: %s\n", iso_errmsg());
        return 73;
    }
    double base[3], grad[3], texp[2], texa[2], dx[2], dy[2];
    for (int c = 0; c < 3; c++) { base[c] = 60 + 120 * frand(&seed); grad[c] = 40 * (frand(&seed) - 0.5); }
    for (int t = 0; t < 2; t++) {
        texp[t] = 9 + 31 * frand(&seed);
        texa[t] = 10 + 14 * frand(&seed);
        dx[t] = 3 * (frand(&seed) - 0.5);
        dy[t] = 3 * (frand(&seed) - 0.5);
    }
    double cx[3], cy[3], vx[3], vy[3], rad[3], col[3][3];
    for (int d = 0; d < 3; d++) {
        cx[d] = w * frand(&seed);
        cy[d] = h * frand(&seed);
        vx[d] = 4 * (frand(&seed) - 0.5);
        vy[d] = 4 * (frand(&seed) - 0.5);
        rad[d] = (0.08 + 0.12 * frand(&seed)) * (w < h ? w : h) + 2;
        for (int c = 0; c < 3; c++) col[d][c] = 30 + 200 * frand(&seed);
    }
    struct image img;
    if (image_alloc(&img, w, h, 3)) {
        fprintf(stderr, "stitch_gen: %s\n", iso_errmsg());
        return 70;
    }
    int rc = 0;
    /* the texture is separable (sin x * cos y, plus a function of x + y),
     * so it is tabulated per frame; discs only touch their bounding box */
    double *tx = malloc(sizeof *tx * (size_t)w), *ty = malloc(sizeof *ty * (size_t)h);
    double *txy = malloc(sizeof *txy * (size_t)(w + h));
    if (!tx || !ty || !txy) return 70;
    for (int f = 0; f < n && !rc; f++) {
        for (int x = 0; x < w; x++) tx[x] = texa[0] * sin(2 * M_PI * (x + dx[0] * f) / texp[0]);
        for (int y = 0; y < h; y++) ty[y] = cos(2 * M_PI * (y + dy[0] * f) / (texp[0] * 1.3));
        for (int d = 0; d < w + h; d++) txy[d] = texa[1] * sin(2 * M_PI * (d * 0.7 + (dx[1] + dy[1]) * f) / texp[1]);
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                double gx = (double)x / w, gy = (double)y / h;
                double tex = tx[x] * ty[y] + txy[x + y];
                uint8_t *o = img.data + ((size_t)y * w + x) * 3;
                for (int c = 0; c < 3; c++) o[c] = clamp8(base[c] + grad[c] * (gx - gy + 0.02 * f * (c - 1)) + tex);
            }
        for (int d = 0; d < 3; d++) {
            double ccx = cx[d] + vx[d] * f, ccy = cy[d] + vy[d] * f, reach = rad[d] + 3;
            int x0 = (int)floor(ccx - reach), x1 = (int)ceil(ccx + reach);
            int y0 = (int)floor(ccy - reach), y1 = (int)ceil(ccy + reach);
            if (x0 < 0) x0 = 0;
            if (y0 < 0) y0 = 0;
            if (x1 > w - 1) x1 = w - 1;
            if (y1 > h - 1) y1 = h - 1;
            for (int y = y0; y <= y1; y++)
                for (int x = x0; x <= x1; x++) {
                    double ex = x - ccx, ey = y - ccy, r = sqrt(ex * ex + ey * ey);
                    /* a 4-pixel soft edge: alpha 1 inside, 0 outside */
                    double a = (rad[d] - r) / 4 + 0.5;
                    if (a <= 0) continue;
                    if (a > 1) a = 1;
                    uint8_t *o = img.data + ((size_t)y * w + x) * 3;
                    for (int c = 0; c < 3; c++) o[c] = clamp8(o[c] * (1 - a) + col[d][c] * a);
                }
        }
        char name[64];
        snprintf(name, sizeof name, "frame_%05d.png", f);
        char *path = fs_join(dir, name);
        rc = image_save_png(path, &img, 1);
        if (rc) fprintf(stderr, "stitch_gen: %s\n", iso_errmsg());
        free(path);
    }
    if (!rc && argc > 6) {
        char *path = fs_join(dir, "segment.json");
        FILE *fp = fopen(path, "w");
        if (!fp) rc = 73;
        else {
            fprintf(fp, "{\"fps\": %s, \"prompt\": \"%s\"}\n", argv[6], argc > 7 ? argv[7] : "synthetic segment");
            fclose(fp);
        }
        free(path);
    }
    image_free(&img);
    free(tx);
    free(ty);
    free(txy);
    return rc ? 74 : 0;
}
