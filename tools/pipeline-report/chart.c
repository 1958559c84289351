/* chart.c — draws memory.png (chart.h) into an RGB image and saves it with
 * libpng through common/image.h. */
#include "chart.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "err.h"
#include "font.h"

static const uint8_t C_BG[3] = { 255, 255, 255 }, C_TEXT[3] = { 20, 20, 20 }, C_GRID[3] = { 225, 225, 225 },
                     C_AXIS[3] = { 120, 120, 120 }, C_RAM[3] = { 46, 110, 190 }, C_VRAM[3] = { 214, 96, 36 },
                     C_DIM[3] = { 130, 130, 130 };

enum { CH_W = 900, CH_LEFT = 104, CH_PANEL_W = 300, CH_GAP = 92, CH_TOP = 58, CH_ROW_H = 24, CH_BOTTOM = 44 };

static void fill(struct image *img, int x0, int y0, int x1, int y1, const uint8_t c[3])
{
    if (x0 < 0) x0 = 0;
    if (y0 < 0) y0 = 0;
    if (x1 > img->w) x1 = img->w;
    if (y1 > img->h) y1 = img->h;
    for (int y = y0; y < y1; y++)
        for (int x = x0; x < x1; x++) {
            uint8_t *p = img->data + ((size_t)y * (size_t)img->w + (size_t)x) * 3;
            memcpy(p, c, 3);
        }
}

static void outline(struct image *img, int x0, int y0, int x1, int y1, const uint8_t c[3])
{
    fill(img, x0, y0, x1, y0 + 1, c);
    fill(img, x0, y1 - 1, x1, y1, c);
    fill(img, x0, y0, x0 + 1, y1, c);
    fill(img, x1 - 1, y0, x1, y1, c);
}

double chart_nice_ceil(double v)
{
    /* axis ends at 1, 2 or 5 x 10^k MiB (GiB from 1 GiB on), so the grid
     * labels at quarters are round numbers in the unit the logs use */
    const double MiBd = 1048576.0, GiBd = 1073741824.0;
    double unit = v >= GiBd ? GiBd : MiBd, x = v / unit;
    if (!(x > 0)) return MiBd;
    double p = pow(10.0, floor(log10(x)));
    double steps[] = { 1, 2, 5, 10 };
    for (int i = 0; i < 4; i++)
        if (steps[i] * p >= x * (1 - 1e-12)) return steps[i] * p * unit;
    return 10 * p * unit;
}

/* binary units, labelled, as every log line (common/mem.c mem_fmt): "812 MiB", "1.5 GiB" */
static void fmt_mb(char *buf, size_t n, double bytes)
{
    if (bytes < 0) snprintf(buf, n, "n/a");
    else if (bytes == 0) snprintf(buf, n, "0");
    else if (bytes >= 1073741824.0) snprintf(buf, n, "%.3g GiB", bytes / 1073741824.0);
    else snprintf(buf, n, "%.3g MiB", bytes / 1048576.0);
}

/* bar length in pixels for v on a panel whose full width w stands for scale bytes */
static int bar_len(double v, double scale, int w)
{
    if (!(v > 0) || !(scale > 0)) return 0;
    int n = (int)lround(v / scale * w);
    return n < 1 ? 1 : n > w ? w : n;
}

int chart_render(struct image *img, const char *title, const char *subtitle, const struct chart_row *rows,
                 int n, int gpu, struct chart_layout *lay)
{
    if (n < 0 || n > 2000) return iso_fail(ISO_EINTERNAL, "chart: %d rows", n);
    int h = CH_TOP + 14 + (n ? n : 1) * CH_ROW_H + CH_BOTTOM;
    int rc = image_alloc(img, CH_W, h, 3);
    if (rc) return rc;
    fill(img, 0, 0, img->w, img->h, C_BG);
    if (title) font_draw(img, 10, 8, title, 2, C_TEXT);
    if (subtitle) font_draw(img, 10, 30, subtitle, 1, C_DIM);

    double scale[2] = { 0, 0 };
    for (int i = 0; i < n; i++) {
        double r = rows[i].ram > rows[i].ram_plan ? rows[i].ram : rows[i].ram_plan;
        double v = rows[i].vram > rows[i].vram_plan ? rows[i].vram : rows[i].vram_plan;
        if (r > scale[0]) scale[0] = r;
        if (v > scale[1]) scale[1] = v;
    }
    scale[0] = chart_nice_ceil(scale[0]);
    scale[1] = chart_nice_ceil(scale[1]);
    int px[2] = { CH_LEFT, CH_LEFT + CH_PANEL_W + CH_GAP };
    const char *ptitle[2] = { "peak RAM (RSS)", "peak VRAM" };
    const uint8_t *pcol[2] = { C_RAM, C_VRAM };
    int y0 = CH_TOP + 14, y1 = y0 + (n ? n : 1) * CH_ROW_H;
    if (lay) {
        lay->row_y0 = y0;
        lay->row_h = CH_ROW_H;
        lay->panel_x[0] = px[0];
        lay->panel_x[1] = px[1];
        lay->panel_w = CH_PANEL_W;
        lay->scale[0] = scale[0];
        lay->scale[1] = scale[1];
    }
    for (int p = 0; p < 2; p++) {
        font_draw(img, px[p], CH_TOP, ptitle[p], 1, C_TEXT);
        if (p == 1 && !gpu) {
            font_draw(img, px[p], y0 + 6, "no GPU: this run used none,", 1, C_DIM);
            font_draw(img, px[p], y0 + 6 + FONT_LINE, "so there is nothing to plot", 1, C_DIM);
            continue;
        }
        /* grid at quarters of the full scale, labelled below the panel */
        for (int q = 0; q <= 4; q++) {
            int gx = px[p] + q * CH_PANEL_W / 4;
            fill(img, gx, y0 - 2, gx + 1, y1 + 2, q ? C_GRID : C_AXIS);
            char lab[32];
            fmt_mb(lab, sizeof lab, scale[p] * q / 4);
            int tw = font_text_width(lab, 1);
            font_draw(img, gx - tw / 2, y1 + 6, lab, 1, C_DIM);
        }
        for (int i = 0; i < n; i++) {
            double meas = p ? rows[i].vram : rows[i].ram, plan = p ? rows[i].vram_plan : rows[i].ram_plan;
            int ry = y0 + i * CH_ROW_H;
            int lp = bar_len(plan, scale[p], CH_PANEL_W), lm = bar_len(meas, scale[p], CH_PANEL_W);
            if (lp) outline(img, px[p], ry + 3, px[p] + lp, ry + 10, pcol[p]);
            if (lm) fill(img, px[p], ry + 11, px[p] + lm, ry + 21, pcol[p]);
            char a[32], b[64];
            fmt_mb(a, sizeof a, meas);
            if (plan >= 0) {
                char c2[32];
                fmt_mb(c2, sizeof c2, plan);
                snprintf(b, sizeof b, "%s/%s", a, c2);
            } else snprintf(b, sizeof b, "%s", a);
            int lx = px[p] + (lm > lp ? lm : lp) + 4;
            font_draw(img, lx, ry + 8, b, 1, C_TEXT);
        }
    }
    for (int i = 0; i < n; i++) {
        char lab[17];
        snprintf(lab, sizeof lab, "%s", rows[i].label ? rows[i].label : "?");
        font_draw(img, 10, y0 + i * CH_ROW_H + 8, lab, 1, C_TEXT);
    }
    /* legend */
    int ly = img->h - 16;
    outline(img, 10, ly, 34, ly + 7, C_AXIS);
    font_draw(img, 40, ly, "plan", 1, C_TEXT);
    fill(img, 80, ly - 1, 104, ly + 8, C_AXIS);
    font_draw(img, 110, ly, "measured    labels: measured/plan", 1, C_TEXT);
    return 0;
}

int chart_write_png(const char *path, const char *title, const char *subtitle, const struct chart_row *rows,
                    int n, int gpu)
{
    struct image img = { 0 };
    int rc = chart_render(&img, title, subtitle, rows, n, gpu, NULL);
    if (!rc) rc = image_save_png_atomic(path, &img, 0);
    image_free(&img);
    return rc;
}
