/* flowvis.h — the Middlebury colour coding of optical flow (Baker et al.,
 * "A Database and Evaluation Methodology for Optical Flow", IJCV 2011, and
 * the flowToColor code of its web page): hue from the direction on a
 * 55-entry colour wheel (red-yellow 15, yellow-green 6, green-cyan 4,
 * cyan-blue 11, blue-magenta 13, magenta-red 6), saturation from the
 * magnitude divided by a stated maximum, white at zero motion, darkened by
 * 25% beyond the maximum. Unknown flow (|u| or |v| above 1e9, or NaN) is
 * black. Shared by flow-extract and anyone who wants to look at a .flo. */
#ifndef ISOPIPE_FLOWVIS_H
#define ISOPIPE_FLOWVIS_H
#include <stdint.h>

#include "flo.h"
#include "image.h"

#define FLOWVIS_NCOLS 55

/* the wheel's 55 RGB entries (0..255) */
void flowvis_wheel(uint8_t wheel[FLOWVIS_NCOLS][3]);
/* colour of a flow vector already divided by the maximum magnitude */
void flowvis_color(float fu, float fv, uint8_t rgb[3]);
/* largest magnitude over the known vectors (0 when none) */
double flowvis_max_magnitude(const struct flow *f);
/* an RGB image of f normalised by max_mag (<= 0: the field's own maximum);
 * out is allocated here. */
int flowvis_render(const struct flow *f, double max_mag, struct image *out);
#endif
