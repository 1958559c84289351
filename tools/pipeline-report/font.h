/* font.h — a tiny 5x7 bitmap font for the labels of memory.png, printable
 * ASCII only (other bytes draw as '?'). Glyphs are drawn into an RGB image
 * at an integer scale; the cell is 6x9 pixels at scale 1 (one column and two
 * rows of spacing, which g p q y reach into). */
#ifndef ISOPIPE_FONT_H
#define ISOPIPE_FONT_H
#include <stdint.h>

#include "image.h"

enum { FONT_W = 5, FONT_H = 7, FONT_ADV = 6, FONT_LINE = 9, FONT_DESCENT = 2 };

/* 1 when pixel (x, y) of ch's glyph is set (0 <= x < 5, 0 <= y < 7) */
int font_pixel(int ch, int x, int y);
/* 1 for the letters drawn FONT_DESCENT pixels lower (g p q y) */
int font_descends(int ch);
/* width in pixels of s at scale (no trailing space) */
int font_text_width(const char *s, int scale);
/* draws s with its top-left corner at (x, y); clipped to the image */
void font_draw(struct image *img, int x, int y, const char *s, int scale, const uint8_t rgb[3]);
#endif
