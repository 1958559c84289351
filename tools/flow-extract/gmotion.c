#include "gmotion.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Why: at 1920x1080 the coarsest pyramid level (30x16 px) holds a texture
 * with a 64-96 px period in 1-1.5 px. The 2x2 box pyramid aliases it there,
 * and the aliased pattern (moire) moves at another speed than the texture,
 * so the coarse flow is wrong by several coarse pixels (hundreds of frame
 * pixels), and no finer level can undo an error of several periods. The
 * same texture is well sampled at 1/8 resolution, where phase correlation
 * finds its shift directly. Phase correlation is band-limited to 0.25
 * cycles per pixel (the box filter lets aliased energy through near 0.5)
 * and windowed (Hann), so of the equal peaks of a periodic texture, one a
 * period apart from the next, the one of the smallest shift is the highest.
 * Blocks in I1 are taken displaced by the whole-frame shift, so a block's
 * peak is the lattice point nearest that shift. */

#define GM_FMAX 0.25      /* cycles per pixel kept in the correlation */
#define GM_BLOCKS 3       /* blocks per side */
#define GM_MIN_PEAK 0.08  /* a correlation peak below this (1 = a perfect shift) is no estimate */
#define GM_TIE 0.75       /* peaks within this share of the highest are ties (see correlate) */
#define GM_TRUST 0.25     /* a whole-frame peak this high is a translation to use when the blocks give none */

/* in-place radix-2 complex FFT of n points (a power of 2) spaced by s; sign -1 forward, +1 inverse (unscaled) */
static void fft1(double *re, double *im, int n, int s, int sign)
{
    for (int i = 1, j = 0; i < n; i++) {
        int bit = n >> 1;
        for (; j & bit; bit >>= 1) j ^= bit;
        j ^= bit;
        if (i < j) {
            double t = re[(size_t)i * s]; re[(size_t)i * s] = re[(size_t)j * s]; re[(size_t)j * s] = t;
            t = im[(size_t)i * s]; im[(size_t)i * s] = im[(size_t)j * s]; im[(size_t)j * s] = t;
        }
    }
    for (int len = 2; len <= n; len <<= 1) {
        int half = len / 2;
        for (int k = 0; k < half; k++) {
            double ang = sign * 2 * M_PI * k / len, wr = cos(ang), wi = sin(ang);
            for (int i = 0; i < n; i += len) {
                size_t a = (size_t)(i + k) * s, b = (size_t)(i + k + half) * s;
                double tr = re[b] * wr - im[b] * wi, ti = re[b] * wi + im[b] * wr;
                re[b] = re[a] - tr;
                im[b] = im[a] - ti;
                re[a] += tr;
                im[a] += ti;
            }
        }
    }
}

static void fft2(double *re, double *im, int N, int M, int sign)
{
    for (int y = 0; y < M; y++) fft1(re + (size_t)y * N, im + (size_t)y * N, N, 1, sign);
    for (int x = 0; x < N; x++) fft1(re + x, im + x, M, N, sign);
}

static int pow2_at_least(int n)
{
    int p = 1;
    while (p < n) p <<= 1;
    return p;
}

struct corr_buf {
    int N, M;
    double *r0, *i0, *r1, *i1;
};

/* Hann-windowed, zero-mean block of I (bw x bh at x0, y0, clamped to the
 * frame) into re, zero-padded to N x M; imaginary part 0 */
static void load_block(const float *I, int w, int h, int x0, int y0, int bw, int bh, int N, int M, double *re,
                       double *im)
{
    memset(re, 0, sizeof(double) * N * M);
    memset(im, 0, sizeof(double) * N * M);
    double s = 0, sw = 0;
    for (int y = 0; y < bh; y++) {
        int yy = y0 + y < 0 ? 0 : y0 + y >= h ? h - 1 : y0 + y;
        double wy = 0.5 - 0.5 * cos(2 * M_PI * (y + 0.5) / bh);
        for (int x = 0; x < bw; x++) {
            int xx = x0 + x < 0 ? 0 : x0 + x >= w ? w - 1 : x0 + x;
            double wt = wy * (0.5 - 0.5 * cos(2 * M_PI * (x + 0.5) / bw));
            re[(size_t)y * N + x] = I[(size_t)yy * w + xx];
            s += wt * I[(size_t)yy * w + xx];
            sw += wt;
        }
    }
    double mean = sw > 0 ? s / sw : 0;
    for (int y = 0; y < bh; y++) {
        double wy = 0.5 - 0.5 * cos(2 * M_PI * (y + 0.5) / bh);
        for (int x = 0; x < bw; x++)
            re[(size_t)y * N + x] = (re[(size_t)y * N + x] - mean) * wy * (0.5 - 0.5 * cos(2 * M_PI * (x + 0.5) / bw));
    }
}

/* Band-limited phase correlation of the block of I0 at (x0, y0) with the
 * block of I1 at (x0 + dx, y0 + dy), both bw x bh: the shift of the highest
 * peak within +-maxs (added to dx, dy; sub-pixel by a parabola per axis)
 * and its height (1 = a perfect shift of the kept band) */
static double correlate(const float *I0, const float *I1, int w, int h, int x0, int y0, int dx, int dy, int bw, int bh,
                        int maxs, struct corr_buf *b, double *tx, double *ty)
{
    int N = b->N, M = b->M;
    load_block(I0, w, h, x0, y0, bw, bh, N, M, b->r0, b->i0);
    load_block(I1, w, h, x0 + dx, y0 + dy, bw, bh, N, M, b->r1, b->i1);
    fft2(b->r0, b->i0, N, M, -1);
    fft2(b->r1, b->i1, N, M, -1);
    long kept = 0;
    for (int ky = 0; ky < M; ky++) {
        double fy = (ky <= M / 2 ? ky : ky - M) / (double)M;
        for (int kx = 0; kx < N; kx++) {
            double fx = (kx <= N / 2 ? kx : kx - N) / (double)N;
            size_t i = (size_t)ky * N + kx;
            /* conj(F0) F1: a peak at +t when I1(x) = I0(x - t) */
            double cr = b->r0[i] * b->r1[i] + b->i0[i] * b->i1[i];
            double ci = b->r0[i] * b->i1[i] - b->i0[i] * b->r1[i];
            double m = sqrt(cr * cr + ci * ci);
            if (fx * fx + fy * fy > GM_FMAX * GM_FMAX || (kx == 0 && ky == 0) || !(m > 1e-9)) {
                b->r0[i] = b->i0[i] = 0;
                continue;
            }
            b->r0[i] = cr / m;
            b->i0[i] = ci / m;
            kept++;
        }
    }
    if (kept == 0) return 0;
    fft2(b->r0, b->i0, N, M, +1);
    /* the highest peak, then the one of the smallest shift among the local
     * maxima within GM_TIE of it: a periodic texture has a peak per period,
     * of about equal height, and the smallest motion is the likely one */
    double best = -INFINITY;
    for (int sy = -maxs; sy <= maxs; sy++)
        for (int sx = -maxs; sx <= maxs; sx++) {
            double r = b->r0[(size_t)((sy + M) % M) * N + (sx + N) % N];
            if (r > best) best = r;
        }
    int bx = 0, by = 0;
    long bd = -1;
    for (int sy = -maxs; sy <= maxs; sy++)
        for (int sx = -maxs; sx <= maxs; sx++) {
            double r = b->r0[(size_t)((sy + M) % M) * N + (sx + N) % N];
            if (r < GM_TIE * best) continue;
            int peak = 1;
            for (int ny = -1; ny <= 1 && peak; ny++)
                for (int nx = -1; nx <= 1; nx++)
                    if ((nx || ny) && b->r0[(size_t)((sy + ny + M) % M) * N + (sx + nx + N) % N] > r) { peak = 0; break; }
            long tx = dx + sx, ty = dy + sy, dist = tx * tx + ty * ty;
            if (peak && (bd < 0 || dist < bd)) { bd = dist; bx = sx; by = sy; }
        }
    best = b->r0[(size_t)((by + M) % M) * N + (bx + N) % N];
    double c = best;
    double l = b->r0[(size_t)((by + M) % M) * N + (bx - 1 + N) % N], r = b->r0[(size_t)((by + M) % M) * N + (bx + 1 + N) % N];
    double u = b->r0[(size_t)((by - 1 + M) % M) * N + (bx + N) % N], d = b->r0[(size_t)((by + 1 + M) % M) * N + (bx + N) % N];
    double ox = 0, oy = 0;
    if (l + r - 2 * c < 0) ox = 0.5 * (l - r) / (l + r - 2 * c);
    if (u + d - 2 * c < 0) oy = 0.5 * (u - d) / (u + d - 2 * c);
    if (ox > 0.5) ox = 0.5;
    if (ox < -0.5) ox = -0.5;
    if (oy > 0.5) oy = 0.5;
    if (oy < -0.5) oy = -0.5;
    *tx = dx + bx + ox;
    *ty = dy + by + oy;
    return best / kept;
}

/* weighted least squares of f = c0 + c1 x + c2 y over n points; 0 when singular */
static int fit_plane(int n, const double *x, const double *y, const double *f, const double *wt, double c[3])
{
    double A[3][3] = { { 0 } }, B[3] = { 0 };
    for (int i = 0; i < n; i++) {
        double r[3] = { 1, x[i], y[i] };
        for (int a = 0; a < 3; a++) {
            B[a] += wt[i] * r[a] * f[i];
            for (int b = 0; b < 3; b++) A[a][b] += wt[i] * r[a] * r[b];
        }
    }
    double det = A[0][0] * (A[1][1] * A[2][2] - A[1][2] * A[2][1]) - A[0][1] * (A[1][0] * A[2][2] - A[1][2] * A[2][0]) +
                 A[0][2] * (A[1][0] * A[2][1] - A[1][1] * A[2][0]);
    double sc = A[0][0] * A[1][1] * A[2][2];
    if (!(fabs(det) > 1e-9 * fabs(sc)) || sc == 0) return 0;
    for (int k = 0; k < 3; k++) {
        double T[3][3];
        memcpy(T, A, sizeof T);
        for (int a = 0; a < 3; a++) T[a][k] = B[a];
        c[k] = (T[0][0] * (T[1][1] * T[2][2] - T[1][2] * T[2][1]) - T[0][1] * (T[1][0] * T[2][2] - T[1][2] * T[2][0]) +
                T[0][2] * (T[1][0] * T[2][1] - T[1][1] * T[2][0])) / det;
    }
    return 1;
}

/* GM_BLOCKS x GM_BLOCKS blocks of B x B px, each correlated with the I1 block
 * displaced by (dx, dy), then with it displaced by the shift found (the
 * window pulls a peak towards zero displacement, by ~0.4 px for a shift of
 * 3 px, less the nearer the displacement); an affine fit of the block
 * shifts (least squares weighted by peak height, then again without the
 * blocks more than 1 px off: another layer). Returns the blocks kept (0:
 * fewer than 4) with their mean peak in *peak. */
static int fit_blocks(const float *I0, const float *I1, int w, int h, int B, int dx, int dy, struct corr_buf *b,
                      double a[6], double *peak)
{
    enum { NB = GM_BLOCKS * GM_BLOCKS };
    double X[NB], Y[NB], U[NB], V[NB], W[NB];
    int nb = 0;
    for (int j = 0; j < GM_BLOCKS; j++)
        for (int i = 0; i < GM_BLOCKS; i++) {
            int x0 = (int)lround((double)(w - B) * i / (GM_BLOCKS - 1)), y0 = (int)lround((double)(h - B) * j / (GM_BLOCKS - 1));
            double bu, bv, p = correlate(I0, I1, w, h, x0, y0, dx, dy, B, B, B / 4, b, &bu, &bv);
            if (p >= GM_MIN_PEAK)
                p = correlate(I0, I1, w, h, x0, y0, (int)lround(bu), (int)lround(bv), B, B, 2, b, &bu, &bv);
            if (!(p >= GM_MIN_PEAK)) continue;
            X[nb] = x0 + 0.5 * (B - 1);
            Y[nb] = y0 + 0.5 * (B - 1);
            U[nb] = bu;
            V[nb] = bv;
            W[nb] = p;
            nb++;
        }
    double cu[3], cv[3];
    for (int pass = 0; pass < 2 && nb >= 4; pass++) {
        if (!fit_plane(nb, X, Y, U, W, cu) || !fit_plane(nb, X, Y, V, W, cv)) return 0;
        if (pass == 1) break;
        int k = 0;
        for (int i = 0; i < nb; i++) {
            double eu = cu[0] + cu[1] * X[i] + cu[2] * Y[i] - U[i], ev = cv[0] + cv[1] * X[i] + cv[2] * Y[i] - V[i];
            if (eu * eu + ev * ev > 1.0) continue;
            X[k] = X[i]; Y[k] = Y[i]; U[k] = U[i]; V[k] = V[i]; W[k] = W[i];
            k++;
        }
        nb = k;
    }
    if (nb < 4) return 0;
    double sp = 0;
    for (int i = 0; i < nb; i++) sp += W[i];
    *peak = sp / nb;
    memcpy(a, cu, sizeof cu);
    memcpy(a + 3, cv, sizeof cv);
    return nb;
}

int gmotion_estimate(const float *I0, const float *I1, int w, int h, struct gmotion *g)
{
    memset(g, 0, sizeof *g);
    struct corr_buf b;
    b.N = pow2_at_least(w);
    b.M = pow2_at_least(h);
    size_t n = (size_t)b.N * b.M;
    double *buf = malloc(sizeof(double) * 4 * n);
    if (!buf) return -1;
    b.r0 = buf; b.i0 = buf + n; b.r1 = buf + 2 * n; b.i1 = buf + 3 * n;
    /* the whole frame: a translation */
    double tx, ty;
    double p0 = correlate(I0, I1, w, h, 0, 0, 0, 0, w, h, (w < h ? w : h) / 3, &b, &tx, &ty);
    if (p0 >= GM_TRUST) {
        g->valid = 1;
        g->a[0] = tx;
        g->a[3] = ty;
    }
    /* blocks of about 0.6 of the short side, displaced by nothing and by the
     * whole-frame shift (a weak whole-frame peak may be a wrong one; a large
     * shift is beyond a block's reach): the fit of the higher mean peak */
    int B = 1;
    while (2 * B <= 0.6 * (w < h ? w : h)) B *= 2;
    if (B >= 16) {
        struct corr_buf bb = { B, B, b.r0, b.i0, b.r1, b.i1 };
        double a[6], pk = 0, a2[6], pk2 = 0;
        int nb = fit_blocks(I0, I1, w, h, B, 0, 0, &bb, a, &pk);
        int dx = (int)lround(tx), dy = (int)lround(ty);
        if (p0 >= GM_MIN_PEAK && (dx || dy)) {
            int nb2 = fit_blocks(I0, I1, w, h, B, dx, dy, &bb, a2, &pk2);
            if (nb2 && (!nb || pk2 > pk)) { nb = nb2; pk = pk2; memcpy(a, a2, sizeof a); }
        }
        if (nb) {
            g->valid = 1;
            g->blocks = nb;
            g->peak = pk;
            g->sure = nb >= GM_SURE_BLOCKS && pk >= GM_SURE_PEAK;
            memcpy(g->a, a, sizeof a);
        }
    }
    free(buf);
    return 0;
}
