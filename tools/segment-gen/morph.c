/* morph.c — motion-compensated frame interpolation between two keyframes.
 *
 * Method: the interpolation algorithm of Baker, Scharstein, Lewis, Roth,
 * Black and Szeliski, "A Database and Evaluation Methodology for Optical
 * Flow", IJCV 92(1), 2011, §3 ("Frame interpolation"), made symmetric
 * because we have both flows:
 *   1. Visibility (once per segment): a pixel x of A is visible in B when
 *      it lands inside B and the flows agree, |F(x) + G(x + F(x))|^2 <=
 *      0.01 (|F|^2 + |G|^2) + 0.5 — the forward-backward test of Sundaram,
 *      Brox and Keutzer, "Dense Point Trajectories by GPU-accelerated Large
 *      Displacement Optical Flow", ECCV 2010, eq. 5. The same for B with G.
 *   2. For each t: forward-splat A's motion to time t (x + t F(x)) and B's
 *      (x + (1-t) G(x)) into the pixels of the 2x2 footprint. Where several
 *      sources land on one pixel the z-buffer keeps the best: visible
 *      before occluded (an occluder moves consistently, what it covers does
 *      not), then the lowest photo-consistency error |A(x) - B(x + F(x))|
 *      (Baker's rule), then the nearest.
 *   3. Each pixel then samples A at y - t v and B at y + (1-t) v
 *      (bilinear) and blends them with weights (1-t, t) when both sides see
 *      it; a pixel that only one side sees (its source is occluded in the
 *      other frame, or only that side splatted a visible source) takes
 *      that side alone, so disocclusions are filled from the frame that
 *      shows them and there is no ghosting where the flow is consistent.
 *   4. Pixels no splat reached get the motion of their neighbours, filled
 *      outside-in (Baker §3), and drop a side whose sample lands on a pixel
 *      occluded in the other frame (Baker's occlusion masks O0, O1).
 * Colours are blended in the files' 8-bit sRGB values, as a crossfade and
 * FFmpeg's minterpolate do. */
#include "morph.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"

/* z-buffer tie-break: a source landing far inside a pixel's footprint beats
 * one at its edge by up to this much photo error (8-bit units) */
#define NEAR_WEIGHT 8.0f

static inline int flow_ok(float u, float v)
{
    return isfinite(u) && isfinite(v) && fabsf(u) < FLO_UNKNOWN_THRESH && fabsf(v) < FLO_UNKNOWN_THRESH;
}

/* bilinear sample of all channels of img at (x, y), clamped to the border */
static inline void sample_img(const struct image *img, float x, float y, float *out)
{
    int w = img->w, h = img->h, c = img->c;
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x > (float)(w - 1)) x = (float)(w - 1);
    if (y > (float)(h - 1)) y = (float)(h - 1);
    int x0 = (int)x, y0 = (int)y;
    int x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
    float fx = x - (float)x0, fy = y - (float)y0;
    const uint8_t *p00 = img->data + ((size_t)y0 * w + x0) * c, *p01 = img->data + ((size_t)y0 * w + x1) * c;
    const uint8_t *p10 = img->data + ((size_t)y1 * w + x0) * c, *p11 = img->data + ((size_t)y1 * w + x1) * c;
    float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
    for (int k = 0; k < c; k++)
        out[k] = w00 * p00[k] + w01 * p01[k] + w10 * p10[k] + w11 * p11[k];
}

/* bilinear sample of a flow at (x, y) inside the image; 0 when a corner is unknown */
static inline int sample_flow(const struct flow *f, float x, float y, float *u, float *v)
{
    int w = f->w, h = f->h;
    int x0 = (int)x, y0 = (int)y;
    int x1 = x0 + 1 < w ? x0 + 1 : x0, y1 = y0 + 1 < h ? y0 + 1 : y0;
    float fx = x - (float)x0, fy = y - (float)y0;
    const float *p00 = f->uv + 2 * ((size_t)y0 * w + x0), *p01 = f->uv + 2 * ((size_t)y0 * w + x1);
    const float *p10 = f->uv + 2 * ((size_t)y1 * w + x0), *p11 = f->uv + 2 * ((size_t)y1 * w + x1);
    if (!flow_ok(p00[0], p00[1]) || !flow_ok(p01[0], p01[1]) || !flow_ok(p10[0], p10[1]) || !flow_ok(p11[0], p11[1]))
        return 0;
    float w00 = (1 - fx) * (1 - fy), w01 = fx * (1 - fy), w10 = (1 - fx) * fy, w11 = fx * fy;
    *u = w00 * p00[0] + w01 * p01[0] + w10 * p10[0] + w11 * p11[0];
    *v = w00 * p00[1] + w01 * p01[1] + w10 * p10[1] + w11 * p11[1];
    return 1;
}

/* splat priority of every pixel of src, moving by fl into dst with back-flow bl (step 1) */
static void visibility(const struct image *src, const struct image *dst, const struct flow *fl,
                       const struct flow *bl, float *cost)
{
    int w = src->w, h = src->h, c = src->c;
    float pd[4];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            float u = fl->uv[2 * i], v = fl->uv[2 * i + 1];
            if (!flow_ok(u, v)) { cost[i] = INFINITY; continue; }
            float px = (float)x + u, py = (float)y + v;
            const uint8_t *ps = src->data + i * c;
            float bu, bv;
            if (px < 0 || py < 0 || px > (float)(w - 1) || py > (float)(h - 1) || !sample_flow(bl, px, py, &bu, &bv)) {
                /* leaves the frame (or lands on unknown flow): seen by src only */
                cost[i] = MORPH_OCCLUDED;
                continue;
            }
            float eu = u + bu, ev = v + bv;
            int occ = eu * eu + ev * ev > 0.01f * (u * u + v * v + bu * bu + bv * bv) + 0.5f;
            sample_img(dst, px, py, pd);
            float photo = 0;
            for (int k = 0; k < c; k++) photo += fabsf((float)ps[k] - pd[k]);
            cost[i] = photo / (float)c + (occ ? MORPH_OCCLUDED : 0.0f);
        }
}

int morph_init(struct morph *m, const struct image *a, const struct image *b,
               const struct flow *f, const struct flow *g)
{
    memset(m, 0, sizeof *m);
    if (a->w != b->w || a->h != b->h)
        return iso_fail(ISO_EDATA, "keyframes differ in size: %dx%d and %dx%d", a->w, a->h, b->w, b->h);
    if (a->c != b->c)
        return iso_fail(ISO_EDATA, "keyframes differ in channels: %d and %d", a->c, b->c);
    if (f->w != a->w || f->h != a->h)
        return iso_fail(ISO_EDATA, "forward flow is %dx%d, keyframes are %dx%d", f->w, f->h, a->w, a->h);
    if (g->w != a->w || g->h != a->h)
        return iso_fail(ISO_EDATA, "backward flow is %dx%d, keyframes are %dx%d", g->w, g->h, a->w, a->h);
    size_t n = (size_t)a->w * (size_t)a->h;
    if (n > INT32_MAX) /* hole filling keeps pixel indices in int32 */
        return iso_fail(ISO_EDATA, "keyframes of %dx%d are too large to morph", a->w, a->h);
    m->cost_a = malloc(n * sizeof(float));
    m->cost_b = malloc(n * sizeof(float));
    if (!m->cost_a || !m->cost_b) {
        morph_free(m);
        return iso_fail(ISO_EINTERNAL, "out of memory for a %dx%d morph", a->w, a->h);
    }
    m->w = a->w;
    m->h = a->h;
    m->c = a->c;
    m->a = a;
    m->b = b;
    m->f = f;
    m->g = g;
    visibility(a, b, f, g, m->cost_a);
    visibility(b, a, g, f, m->cost_b);
    return 0;
}

void morph_free(struct morph *m)
{
    if (!m) return;
    free(m->cost_a);
    free(m->cost_b);
    memset(m, 0, sizeof *m);
}

void morph_occlusion_stats(const struct morph *m, double *frac_a, double *frac_b)
{
    size_t n = (size_t)m->w * m->h, oa = 0, ob = 0;
    for (size_t i = 0; i < n; i++) {
        oa += m->cost_a[i] >= MORPH_OCCLUDED;
        ob += m->cost_b[i] >= MORPH_OCCLUDED;
    }
    *frac_a = n ? (double)oa / (double)n : 0;
    *frac_b = n ? (double)ob / (double)n : 0;
}

uint64_t morph_scratch_bytes(int w, int h)
{
    uint64_t n = (uint64_t)w * (uint64_t)h;
    return n * (2 + 2 + 1 + 1 + 2) * sizeof(float) + n * 2 * sizeof(int32_t);
}

uint64_t morph_state_bytes(int w, int h)
{
    return (uint64_t)w * (uint64_t)h * 2 * sizeof(float);
}

int morph_scratch_alloc(struct morph_scratch *s, int w, int h)
{
    memset(s, 0, sizeof *s);
    size_t n = (size_t)w * (size_t)h;
    if (w <= 0 || h <= 0 || n > INT32_MAX) return iso_fail(ISO_EDATA, "bad morph size %dx%d", w, h);
    s->va = malloc(n * 2 * sizeof(float));
    s->vb = malloc(n * 2 * sizeof(float));
    s->za = malloc(n * sizeof(float));
    s->zb = malloc(n * sizeof(float));
    s->vh = malloc(n * 2 * sizeof(float));
    s->level = malloc(n * sizeof(int32_t));
    s->queue = malloc(n * sizeof(int32_t));
    if (!s->va || !s->vb || !s->za || !s->zb || !s->vh || !s->level || !s->queue) {
        morph_scratch_free(s);
        return iso_fail(ISO_EINTERNAL, "out of memory for %dx%d morph buffers", w, h);
    }
    s->w = w;
    s->h = h;
    return 0;
}

void morph_scratch_free(struct morph_scratch *s)
{
    if (!s) return;
    free(s->va);
    free(s->vb);
    free(s->za);
    free(s->zb);
    free(s->vh);
    free(s->level);
    free(s->queue);
    memset(s, 0, sizeof *s);
}

/* step 2: splat each source pixel's motion (sign * fl, as a -> b motion) to x + s * fl */
static void splat(const struct flow *fl, const float *cost, float s, float sign, float *vt, float *z)
{
    int w = fl->w, h = fl->h;
    size_t n = (size_t)w * h;
    for (size_t i = 0; i < n; i++) z[i] = INFINITY;
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            float c0 = cost[i];
            if (c0 == INFINITY) continue;
            float u = fl->uv[2 * i], v = fl->uv[2 * i + 1];
            float qx = (float)x + s * u, qy = (float)y + s * v;
            float fx0 = floorf(qx), fy0 = floorf(qy);
            if (fx0 < -1 || fy0 < -1 || fx0 > (float)w || fy0 > (float)h) continue;
            int x0 = (int)fx0, y0 = (int)fy0;
            float fx = qx - fx0, fy = qy - fy0;
            for (int dy = 0; dy < 2; dy++) {
                int ty = y0 + dy;
                float wy = dy ? fy : 1 - fy;
                if (ty < 0 || ty >= h || wy <= 0) continue;
                for (int dx = 0; dx < 2; dx++) {
                    int tx = x0 + dx;
                    float wgt = wy * (dx ? fx : 1 - fx);
                    if (tx < 0 || tx >= w || wgt <= 0) continue;
                    size_t j = (size_t)ty * w + tx;
                    float zz = c0 + NEAR_WEIGHT * (1 - wgt);
                    if (zz < z[j]) {
                        z[j] = zz;
                        vt[2 * j] = sign * u;
                        vt[2 * j + 1] = sign * v;
                    }
                }
            }
        }
}

enum side { SIDE_NONE = 0, SIDE_BOTH, SIDE_ONLY };

static inline enum side side_of(float z)
{
    return z == INFINITY ? SIDE_NONE : z >= MORPH_OCCLUDED ? SIDE_ONLY : SIDE_BOTH;
}

/* step 4: outside-in fill of the motion of pixels no splat reached (a
 * breadth-first sweep from the reached pixels: each hole pixel takes the
 * mean motion of its already-filled 4-neighbours). Returns the hole count. */
static size_t fill_holes(struct morph_scratch *s)
{
    int w = s->w, h = s->h;
    size_t n = (size_t)w * h, nq = 0, holes = 0;
    for (size_t i = 0; i < n; i++) {
        enum side sa = side_of(s->za[i]), sb = side_of(s->zb[i]);
        if (sa == SIDE_NONE && sb == SIDE_NONE) {
            s->level[i] = -1;
            s->vh[2 * i] = s->vh[2 * i + 1] = 0;
            holes++;
            continue;
        }
        const float *v = (sa == SIDE_BOTH || sb == SIDE_NONE) ? s->va + 2 * i : s->vb + 2 * i;
        s->vh[2 * i] = v[0];
        s->vh[2 * i + 1] = v[1];
        s->level[i] = 0;
    }
    if (!holes || holes == n) return holes;
    static const int dx4[4] = { 1, -1, 0, 0 }, dy4[4] = { 0, 0, 1, -1 };
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            if (s->level[i] != -1) continue;
            for (int k = 0; k < 4; k++) {
                int xx = x + dx4[k], yy = y + dy4[k];
                if (xx >= 0 && yy >= 0 && xx < w && yy < h && s->level[(size_t)yy * w + xx] == 0) {
                    s->level[i] = 1;
                    s->queue[nq++] = (int32_t)i;
                    break;
                }
            }
        }
    for (size_t qi = 0; qi < nq; qi++) {
        int32_t i = s->queue[qi];
        int x = i % w, y = i / w, lv = s->level[i], cnt = 0;
        float su = 0, sv = 0;
        for (int k = 0; k < 4; k++) {
            int xx = x + dx4[k], yy = y + dy4[k];
            if (xx < 0 || yy < 0 || xx >= w || yy >= h) continue;
            size_t j = (size_t)yy * w + xx;
            if (s->level[j] >= 0 && s->level[j] < lv) {
                su += s->vh[2 * j];
                sv += s->vh[2 * j + 1];
                cnt++;
            } else if (s->level[j] == -1) {
                s->level[j] = lv + 1;
                s->queue[nq++] = (int32_t)j;
            }
        }
        if (cnt) {
            s->vh[2 * i] = su / (float)cnt;
            s->vh[2 * i + 1] = sv / (float)cnt;
        }
    }
    return holes;
}

int morph_frame(const struct morph *m, struct morph_scratch *s, double t, struct image *out)
{
    int w = m->w, h = m->h, c = m->c;
    if (s->w != w || s->h != h || out->w != w || out->h != h || out->c != c)
        return iso_fail(ISO_EINTERNAL, "morph_frame: buffer sizes do not match");
    if (!(t >= 0 && t <= 1)) return iso_fail(ISO_EINTERNAL, "morph_frame: t = %g is outside [0, 1]", t);
    float tf = (float)t, wa = 1 - tf, wb = tf;
    splat(m->f, m->cost_a, tf, 1.0f, s->va, s->za);
    splat(m->g, m->cost_b, 1 - tf, -1.0f, s->vb, s->zb);
    fill_holes(s);

    float pa[4], pb[4], px[4];
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++) {
            size_t i = (size_t)y * w + x;
            enum side sa = side_of(s->za[i]), sb = side_of(s->zb[i]);
            const float *vA, *vB;  /* motion used to sample A and B */
            float ka = wa, kb = wb; /* blend weights before normalising */
            if (sa == SIDE_BOTH && sb == SIDE_BOTH) {
                vA = s->va + 2 * i;
                vB = s->vb + 2 * i;
            } else if (sa == SIDE_BOTH) {
                vA = vB = s->va + 2 * i;
            } else if (sb == SIDE_BOTH) {
                vA = vB = s->vb + 2 * i;
            } else if (sa == SIDE_ONLY && sb == SIDE_ONLY) {
                vA = s->va + 2 * i;
                vB = s->vb + 2 * i;
            } else if (sa == SIDE_ONLY) {
                vA = vB = s->va + 2 * i;
                kb = 0;
            } else if (sb == SIDE_ONLY) {
                vA = vB = s->vb + 2 * i;
                ka = 0;
            } else {
                vA = vB = s->vh + 2 * i;
                /* Baker's masks: a sample landing on a pixel the other frame does not see is dropped */
                float ax = (float)x - tf * vA[0], ay = (float)y - tf * vA[1];
                float bx = (float)x + (1 - tf) * vB[0], by = (float)y + (1 - tf) * vB[1];
                int ia = (int)lrintf(ax), ja = (int)lrintf(ay), ib = (int)lrintf(bx), jb = (int)lrintf(by);
                int occa = ia >= 0 && ja >= 0 && ia < w && ja < h && m->cost_a[(size_t)ja * w + ia] >= MORPH_OCCLUDED;
                int occb = ib >= 0 && jb >= 0 && ib < w && jb < h && m->cost_b[(size_t)jb * w + ib] >= MORPH_OCCLUDED;
                if (occa && !occb) kb = 0;
                else if (occb && !occa) ka = 0;
            }
            float ksum = ka + kb;
            uint8_t *o = out->data + i * c;
            if (ksum <= 0) { ka = wa; kb = wb; ksum = 1; }
            ka /= ksum;
            kb /= ksum;
            if (ka > 0) sample_img(m->a, (float)x - tf * vA[0], (float)y - tf * vA[1], pa);
            if (kb > 0) sample_img(m->b, (float)x + (1 - tf) * vB[0], (float)y + (1 - tf) * vB[1], pb);
            for (int k = 0; k < c; k++) {
                px[k] = (ka > 0 ? ka * pa[k] : 0) + (kb > 0 ? kb * pb[k] : 0);
                float r = px[k] + 0.5f;
                o[k] = r <= 0 ? 0 : r >= 255 ? 255 : (uint8_t)r;
            }
        }
    return 0;
}
