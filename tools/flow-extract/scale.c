#include "scale.h"

#include <math.h>
#include <stdlib.h>

#include "err.h"

/* 1-D area weights: destination i covers source [i*r, (i+1)*r), r = s/d >= 1 */
static void area_1d(const float *src, int sn, size_t sstep, float *dst, int dn, size_t dstep)
{
    double r = (double)sn / dn;
    for (int i = 0; i < dn; i++) {
        double a = i * r, b = (i + 1) * r, acc = 0;
        int k0 = (int)floor(a), k1 = (int)ceil(b);
        if (k1 > sn) k1 = sn;
        for (int k = k0; k < k1; k++) {
            double lo = k > a ? k : a, hi = k + 1 < b ? k + 1 : b;
            acc += (hi - lo) * src[(size_t)k * sstep];
        }
        dst[(size_t)i * dstep] = (float)(acc / r);
    }
}

int scale_area_down(const float *src, int sw, int sh, float *dst, int dw, int dh)
{
    float *tmp = malloc(sizeof(float) * (size_t)dw * sh);
    if (!tmp) return iso_fail(ISO_EINTERNAL, "out of memory");
    for (int y = 0; y < sh; y++) area_1d(src + (size_t)y * sw, sw, 1, tmp + (size_t)y * dw, dw, 1);
    for (int x = 0; x < dw; x++) area_1d(tmp + x, sh, (size_t)dw, dst + x, dh, (size_t)dw);
    free(tmp);
    return 0;
}

static float bilinear(const float *I, int w, int h, float x, float y)
{
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x > w - 1) x = (float)(w - 1);
    if (y > h - 1) y = (float)(h - 1);
    int ix = (int)x, iy = (int)y;
    if (ix > w - 2) ix = w > 1 ? w - 2 : 0;
    if (iy > h - 2) iy = h > 1 ? h - 2 : 0;
    float ax = x - ix, ay = y - iy;
    const float *p = I + (size_t)iy * w + ix;
    int dx = w > 1, dy = h > 1 ? w : 0;
    float a = p[0] + ax * (p[dx] - p[0]);
    float b = p[dy] + ax * (p[dy + dx] - p[dy]);
    return a + ay * (b - a);
}

void scale_flow_up(const float *u, const float *v, int sw, int sh, float *uv, int dw, int dh)
{
    float rx = (float)dw / sw, ry = (float)dh / sh;
    for (int y = 0; y < dh; y++) {
        float sy = (y + 0.5f) / ry - 0.5f;
        for (int x = 0; x < dw; x++) {
            float sx = (x + 0.5f) / rx - 0.5f;
            size_t i = (size_t)y * dw + x;
            uv[2 * i] = rx * bilinear(u, sw, sh, sx, sy);
            uv[2 * i + 1] = ry * bilinear(v, sw, sh, sx, sy);
        }
    }
}
