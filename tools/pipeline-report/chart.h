/* chart.h — memory.png: per stage, peak RAM and peak VRAM as horizontal bars,
 * the plan (outlined) right above the measurement (filled), on two panels
 * with their own scales, labelled with the built-in 5x7 font (font.h).
 * Values are bytes; a negative value means unknown (no bar, "n/a"). */
#ifndef ISOPIPE_CHART_H
#define ISOPIPE_CHART_H
#include "image.h"

struct chart_row {
    const char *label;   /* stage name */
    double ram, ram_plan;
    double vram, vram_plan;
};

struct chart_layout {    /* where chart_render put things (for tests) */
    int row_y0, row_h;   /* top of the first row, row pitch */
    int panel_x[2];      /* left edge of the bars: 0 RAM, 1 VRAM */
    int panel_w;         /* bar length of the panel's full scale */
    double scale[2];     /* bytes at full scale */
};

/* gpu: 0 draws the VRAM panel as "no GPU". title and subtitle may be NULL. */
int chart_render(struct image *img, const char *title, const char *subtitle, const struct chart_row *rows,
                 int n, int gpu, struct chart_layout *lay);
int chart_write_png(const char *path, const char *title, const char *subtitle, const struct chart_row *rows,
                    int n, int gpu);
/* the smallest 1, 2 or 5 x 10^k bytes-in-MB step >= v (axis ends) */
double chart_nice_ceil(double v);
#endif
