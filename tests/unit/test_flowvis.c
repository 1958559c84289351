/* The Middlebury colour wheel, checked against a float64 computation written
 * here from the definition (Baker et al. 2011, the flowToColor code): six
 * segments RY=15, YG=6, GC=4, CB=11, BM=13, MR=6 between the hues red,
 * yellow, green, cyan, blue, magenta; angle atan2(-v, -u) maps -pi..pi onto
 * the 55 entries, linear interpolation between neighbours, then
 * 1 - r (1 - c) inside the unit circle and 0.75 c outside. */
#include <math.h>
#include <stdint.h>

#include "flowvis.h"
#include "test.h"

/* the six anchor hues and the segment lengths that lead away from them */
static const double anchors[6][3] = { { 1, 0, 0 }, { 1, 1, 0 }, { 0, 1, 0 }, { 0, 1, 1 }, { 0, 0, 1 }, { 1, 0, 1 } };
static const int seglen[6] = { 15, 6, 4, 11, 13, 6 };

/* entry k: position within its segment blends anchor s to anchor s+1, each
 * channel floor(255 * i / len) of the way as the reference code rounds */
static void ref_wheel(double wheel[55][3])
{
    int k = 0;
    for (int s = 0; s < 6; s++)
        for (int i = 0; i < seglen[s]; i++, k++)
            for (int c = 0; c < 3; c++) {
                double a = anchors[s][c], b = anchors[(s + 1) % 6][c];
                double step = floor(255.0 * i / seglen[s]);
                wheel[k][c] = a == b ? 255 * a : a < b ? step : 255 - step;
            }
}

static void ref_color(const double wheel[55][3], double u, double v, double out[3])
{
    double rad = sqrt(u * u + v * v), a = atan2(-v, -u) / M_PI;
    double fk = (a + 1) / 2 * 54;
    int k0 = (int)floor(fk), k1 = k0 + 1 == 55 ? 0 : k0 + 1;
    double f = fk - k0;
    for (int c = 0; c < 3; c++) {
        double col = (1 - f) * wheel[k0][c] / 255 + f * wheel[k1][c] / 255;
        col = rad <= 1 ? 1 - rad * (1 - col) : col * 0.75;
        out[c] = floor(255 * col);
    }
}

int main(void)
{
    double rw[55][3];
    uint8_t w[55][3];
    ref_wheel(rw);
    flowvis_wheel(w);

    TEST("wheel entries equal the definition");
    int same = 1;
    for (int k = 0; k < 55; k++)
        for (int c = 0; c < 3; c++) same &= w[k][c] == (uint8_t)rw[k][c];
    CHECK(same);
    /* anchors sit at the segment starts: 0, 15, 21, 25, 36, 49 */
    CHECK(w[0][0] == 255 && w[0][1] == 0 && w[0][2] == 0);
    CHECK(w[15][0] == 255 && w[15][1] == 255 && w[15][2] == 0);
    CHECK(w[21][0] == 0 && w[21][1] == 255 && w[21][2] == 0);
    CHECK(w[25][0] == 0 && w[25][1] == 255 && w[25][2] == 255);
    CHECK(w[36][0] == 0 && w[36][1] == 0 && w[36][2] == 255);
    CHECK(w[49][0] == 255 && w[49][1] == 0 && w[49][2] == 255);

    TEST("colours on a grid of vectors within one grey level of float64");
    int maxd = 0;
    for (int i = -40; i <= 40; i++)
        for (int j = -40; j <= 40; j++) {
            double u = i / 25.0, v = j / 25.0, ref[3];
            uint8_t got[3];
            ref_color(rw, u, v, ref);
            flowvis_color((float)u, (float)v, got);
            for (int c = 0; c < 3; c++) {
                int d = abs((int)got[c] - (int)ref[c]);
                if (d > maxd) maxd = d;
            }
        }
    CHECKF(maxd <= 1, "max difference %d", maxd);

    TEST("fixed points of the coding");
    uint8_t c[3];
    flowvis_color(0, 0, c);
    CHECK(c[0] == 255 && c[1] == 255 && c[2] == 255);       /* still = white */
    flowvis_color(-1, 0, c);                                  /* angle 0: wheel entry 27 (of 0..54) blended */
    {
        double ref[3];
        ref_color(rw, -1, 0, ref);
        CHECK(c[0] == ref[0] && c[1] == ref[1] && c[2] == ref[2]);
    }
    flowvis_color(2, 0, c);                                   /* beyond the maximum: darkened */
    CHECK(c[0] <= 191 && c[1] <= 191 && c[2] <= 191);
    flowvis_color(2e9f, 0, c);                                /* unknown flow = black */
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0);
    flowvis_color(NAN, 0, c);
    CHECK(c[0] == 0 && c[1] == 0 && c[2] == 0);

    TEST("render normalises by the stated or the field's maximum");
    {
        struct flow f;
        struct image img;
        CHECK(flow_alloc(&f, 4, 1) == 0);
        float vals[8] = { 0, 0, 3, 0, 0, -6, 1e10f, 0 };
        for (int i = 0; i < 8; i++) f.uv[i] = vals[i];
        CHECK_NEAR(flowvis_max_magnitude(&f), 6.0, 1e-9);
        CHECK(flowvis_render(&f, 0, &img) == 0);
        uint8_t e[3];
        flowvis_color(0.5f, 0, e);
        CHECK(img.data[3] == e[0] && img.data[4] == e[1] && img.data[5] == e[2]);
        CHECK(img.data[0] == 255 && img.data[9] == 0);
        image_free(&img);
        CHECK(flowvis_render(&f, 3.0, &img) == 0);
        flowvis_color(1.0f, 0, e);
        CHECK(img.data[3] == e[0] && img.data[4] == e[1] && img.data[5] == e[2]);
        image_free(&img);
        flow_free(&f);
    }
    return test_report();
}
