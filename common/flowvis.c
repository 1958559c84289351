/* flowvis.c — Middlebury flow colour coding (see flowvis.h). */
#include "flowvis.h"

#include <math.h>
#include <pthread.h>

#include "err.h"

/* segment lengths around the wheel, in the order red->yellow->green->cyan->blue->magenta->red */
enum { RY = 15, YG = 6, GC = 4, CB = 11, BM = 13, MR = 6 };

void flowvis_wheel(uint8_t wheel[FLOWVIS_NCOLS][3])
{
    int k = 0;
    /* each segment ramps one channel by floor(255 * i / length), as in the reference code */
    for (int i = 0; i < RY; i++, k++) { wheel[k][0] = 255; wheel[k][1] = (uint8_t)(255 * i / RY); wheel[k][2] = 0; }
    for (int i = 0; i < YG; i++, k++) { wheel[k][0] = (uint8_t)(255 - 255 * i / YG); wheel[k][1] = 255; wheel[k][2] = 0; }
    for (int i = 0; i < GC; i++, k++) { wheel[k][0] = 0; wheel[k][1] = 255; wheel[k][2] = (uint8_t)(255 * i / GC); }
    for (int i = 0; i < CB; i++, k++) { wheel[k][0] = 0; wheel[k][1] = (uint8_t)(255 - 255 * i / CB); wheel[k][2] = 255; }
    for (int i = 0; i < BM; i++, k++) { wheel[k][0] = (uint8_t)(255 * i / BM); wheel[k][1] = 0; wheel[k][2] = 255; }
    for (int i = 0; i < MR; i++, k++) { wheel[k][0] = 255; wheel[k][1] = 0; wheel[k][2] = (uint8_t)(255 - 255 * i / MR); }
}

static uint8_t g_wheel[FLOWVIS_NCOLS][3];
static pthread_once_t g_wheel_once = PTHREAD_ONCE_INIT;
static void wheel_init(void) { flowvis_wheel(g_wheel); }

void flowvis_color(float fu, float fv, uint8_t rgb[3])
{
    pthread_once(&g_wheel_once, wheel_init);
    if (!(fabsf(fu) <= FLO_UNKNOWN_THRESH) || !(fabsf(fv) <= FLO_UNKNOWN_THRESH)) {
        rgb[0] = rgb[1] = rgb[2] = 0;
        return;
    }
    float rad = sqrtf(fu * fu + fv * fv);
    float a = atan2f(-fv, -fu) / (float)M_PI;
    float fk = (a + 1.f) / 2.f * (FLOWVIS_NCOLS - 1);
    int k0 = (int)floorf(fk);
    if (k0 < 0) k0 = 0;
    if (k0 > FLOWVIS_NCOLS - 1) k0 = FLOWVIS_NCOLS - 1;
    int k1 = k0 + 1 == FLOWVIS_NCOLS ? 0 : k0 + 1;
    float f = fk - (float)k0;
    for (int c = 0; c < 3; c++) {
        float col = (1.f - f) * (g_wheel[k0][c] / 255.f) + f * (g_wheel[k1][c] / 255.f);
        /* inside the unit circle saturation grows with the radius; outside it is darkened */
        if (rad <= 1.f) col = 1.f - rad * (1.f - col);
        else col *= 0.75f;
        rgb[c] = (uint8_t)floorf(255.f * col);
    }
}

double flowvis_max_magnitude(const struct flow *f)
{
    double mx = 0;
    size_t n = (size_t)f->w * f->h;
    for (size_t i = 0; i < n; i++) {
        float u = f->uv[2 * i], v = f->uv[2 * i + 1];
        if (!(fabsf(u) <= FLO_UNKNOWN_THRESH) || !(fabsf(v) <= FLO_UNKNOWN_THRESH)) continue;
        double m = sqrt((double)u * u + (double)v * v);
        if (m > mx) mx = m;
    }
    return mx;
}

int flowvis_render(const struct flow *f, double max_mag, struct image *out)
{
    int rc = image_alloc(out, f->w, f->h, 3);
    if (rc) return rc;
    if (max_mag <= 0) max_mag = flowvis_max_magnitude(f);
    /* a still field is all white: divide by something positive */
    float inv = (float)(1.0 / (max_mag > 1e-12 ? max_mag : 1.0));
    size_t n = (size_t)f->w * f->h;
    for (size_t i = 0; i < n; i++) {
        float u = f->uv[2 * i], v = f->uv[2 * i + 1];
        int unknown = !(fabsf(u) <= FLO_UNKNOWN_THRESH) || !(fabsf(v) <= FLO_UNKNOWN_THRESH);
        flowvis_color(unknown ? u : u * inv, unknown ? v : v * inv, out->data + 3 * i);
    }
    return 0;
}
