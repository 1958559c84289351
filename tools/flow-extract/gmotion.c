#include "gmotion.h"

#include "pool.h"

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

/* twiddle factors exp(sign 2 pi i k / n), k < n / 2, for fft1 */
static void twiddles(double *wr, double *wi, int n, int sign)
{
    for (int k = 0; k < n / 2; k++) {
        wr[k] = cos(sign * 2 * M_PI * k / n);
        wi[k] = sin(sign * 2 * M_PI * k / n);
    }
}

/* in-place radix-2 complex FFT of n points (a power of 2) spaced by s, with
 * the twiddles of twiddles(n, sign) (sign -1 forward, +1 inverse; unscaled) */
static void fft1(double *re, double *im, int n, int s, const double *twr, const double *twi)
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
        int half = len / 2, step = n / len;
        for (int k = 0; k < half; k++) {
            double wr = twr[k * step], wi = twi[k * step];
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

struct corr_buf {
    int N, M;             /* transform size (powers of 2) */
    double *re, *im;      /* N x M */
    double *col;          /* 2 M: one column, contiguous */
    double *tw;           /* twiddles: forward N, inverse N, forward M, inverse M (N / 2 or M / 2 each, re and im) */
    double *win;          /* Hann windows of the block's width and height (see load_pair) */
    int win_w, win_h;
};

static void corr_setup(struct corr_buf *b, int N, int M)
{
    b->N = N;
    b->M = M;
    double *t = b->tw;
    twiddles(t, t + N / 2, N, -1);
    twiddles(t + N, t + 3 * N / 2, N, +1);
    t += 2 * N;
    twiddles(t, t + M / 2, M, -1);
    twiddles(t + M, t + 3 * M / 2, M, +1);
    b->win_w = b->win_h = 0;
}

/* 2-D FFT of b->re, b->im (N x M); columns go through a contiguous copy */
static void fft2(struct corr_buf *b, int inverse)
{
    int N = b->N, M = b->M;
    const double *tn = b->tw + (inverse ? N : 0), *tm = b->tw + 2 * N + (inverse ? M : 0);
    for (int y = 0; y < M; y++) fft1(b->re + (size_t)y * N, b->im + (size_t)y * N, N, 1, tn, tn + N / 2);
    double *cr = b->col, *ci = b->col + M;
    for (int x = 0; x < N; x++) {
        for (int y = 0; y < M; y++) { cr[y] = b->re[(size_t)y * N + x]; ci[y] = b->im[(size_t)y * N + x]; }
        fft1(cr, ci, M, 1, tm, tm + M / 2);
        for (int y = 0; y < M; y++) { b->re[(size_t)y * N + x] = cr[y]; b->im[(size_t)y * N + x] = ci[y]; }
    }
}

static int pow2_at_least(int n)
{
    int p = 1;
    while (p < n) p <<= 1;
    return p;
}

/* The Hann-windowed, zero-mean blocks of I0 (bw x bh at x0, y0) and of I1
 * (at x0 + dx, y0 + dy), clamped to the frame, into b->re and b->im, zero-
 * padded to N x M: one complex FFT transforms both (real inputs) */
static void load_pair(const float *I0, const float *I1, int w, int h, int x0, int y0, int dx, int dy, int bw, int bh,
                      struct corr_buf *b)
{
    int N = b->N, M = b->M;
    if (b->win_w != bw || b->win_h != bh) {
        for (int x = 0; x < bw; x++) b->win[x] = 0.5 - 0.5 * cos(2 * M_PI * (x + 0.5) / bw);
        for (int y = 0; y < bh; y++) b->win[bw + y] = 0.5 - 0.5 * cos(2 * M_PI * (y + 0.5) / bh);
        b->win_w = bw;
        b->win_h = bh;
    }
    const double *wx = b->win, *wy = b->win + bw;
    memset(b->re, 0, sizeof(double) * N * M);
    memset(b->im, 0, sizeof(double) * N * M);
    for (int k = 0; k < 2; k++) {
        const float *I = k ? I1 : I0;
        double *out = k ? b->im : b->re;
        int xo = x0 + (k ? dx : 0), yo = y0 + (k ? dy : 0);
        double s = 0, sw = 0;
        for (int y = 0; y < bh; y++) {
            int yy = yo + y < 0 ? 0 : yo + y >= h ? h - 1 : yo + y;
            for (int x = 0; x < bw; x++) {
                int xx = xo + x < 0 ? 0 : xo + x >= w ? w - 1 : xo + x;
                double wt = wy[y] * wx[x], g = I[(size_t)yy * w + xx];
                out[(size_t)y * N + x] = g;
                s += wt * g;
                sw += wt;
            }
        }
        double mean = sw > 0 ? s / sw : 0;
        for (int y = 0; y < bh; y++)
            for (int x = 0; x < bw; x++) out[(size_t)y * N + x] = (out[(size_t)y * N + x] - mean) * wy[y] * wx[x];
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
    load_pair(I0, I1, w, h, x0, y0, dx, dy, bw, bh, b);
    fft2(b, 0);
    /* Z = F0 + i F1 of the two real blocks: F0(k) = (Z(k) + conj Z(-k)) / 2,
     * F1(k) = (Z(k) - conj Z(-k)) / 2i. The normalised cross-power spectrum
     * at k and at -k are conjugates, so each pair is computed once (the
     * first of the two in memory order) and written to both. */
    long kept = 0;
    double *re = b->re, *im = b->im;
    for (int ky = 0; ky < M; ky++) {
        int my = ky ? M - ky : 0;
        double fy = (ky <= M / 2 ? ky : ky - M) / (double)M;
        for (int kx = 0; kx < N; kx++) {
            int mx = kx ? N - kx : 0;
            size_t i = (size_t)ky * N + kx, j = (size_t)my * N + mx;
            if (j < i) continue;
            double fx = (kx <= N / 2 ? kx : kx - N) / (double)N;
            double zr = re[i], zi = im[i], qr = re[j], qi = im[j];
            double ar = 0.5 * (zr + qr), ai = 0.5 * (zi - qi); /* F0(k) */
            double br = 0.5 * (zi + qi), bi = -0.5 * (zr - qr); /* F1(k) */
            /* conj(F0) F1: a peak at +t when I1(x) = I0(x - t) */
            double cr = ar * br + ai * bi;
            double ci = ar * bi - ai * br;
            double m = sqrt(cr * cr + ci * ci);
            if (fx * fx + fy * fy > GM_FMAX * GM_FMAX || (kx == 0 && ky == 0) || !(m > 1e-9)) {
                re[i] = im[i] = re[j] = im[j] = 0;
                continue;
            }
            re[i] = cr / m;
            im[i] = ci / m;
            re[j] = cr / m;
            im[j] = -ci / m;
            kept += i == j ? 1 : 2;
        }
    }
    if (kept == 0) return 0;
    fft2(b, 1);
    /* the highest peak, then the one of the smallest shift among the local
     * maxima within GM_TIE of it: a periodic texture has a peak per period,
     * of about equal height, and the smallest motion is the likely one */
    double best = -INFINITY;
    for (int sy = -maxs; sy <= maxs; sy++)
        for (int sx = -maxs; sx <= maxs; sx++) {
            double r = re[(size_t)((sy + M) % M) * N + (sx + N) % N];
            if (r > best) best = r;
        }
    int bx = 0, by = 0;
    long bd = -1;
    for (int sy = -maxs; sy <= maxs; sy++)
        for (int sx = -maxs; sx <= maxs; sx++) {
            double r = re[(size_t)((sy + M) % M) * N + (sx + N) % N];
            if (r < GM_TIE * best) continue;
            int peak = 1;
            for (int ny = -1; ny <= 1 && peak; ny++)
                for (int nx = -1; nx <= 1; nx++)
                    if ((nx || ny) && re[(size_t)((sy + ny + M) % M) * N + (sx + nx + N) % N] > r) { peak = 0; break; }
            long tx = dx + sx, ty = dy + sy, dist = tx * tx + ty * ty;
            if (peak && (bd < 0 || dist < bd)) { bd = dist; bx = sx; by = sy; }
        }
    best = re[(size_t)((by + M) % M) * N + (bx + N) % N];
    double c = best;
    double l = re[(size_t)((by + M) % M) * N + (bx - 1 + N) % N], r = re[(size_t)((by + M) % M) * N + (bx + 1 + N) % N];
    double u = re[(size_t)((by - 1 + M) % M) * N + (bx + N) % N], d = re[(size_t)((by + 1 + M) % M) * N + (bx + N) % N];
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

/* One correlation task of gmotion_estimate: the whole frame, or a block
 * correlated with the I1 block displaced by (dx, dy), then with it displaced
 * by the shift found (the window pulls a peak towards zero displacement, by
 * ~0.4 px for a shift of 3 px, less the nearer the displacement). */
struct corr_task {
    int x0, y0, bw, bh, dx, dy, maxs, twice;
    double peak, tx, ty; /* result */
};

struct gm_job {
    const float *I0, *I1;
    int w, h;
    struct corr_task *t;
    struct corr_buf *buf; /* one per worker */
};

static void job_corr(void *ctx, int i0, int i1, int worker)
{
    struct gm_job *j = ctx;
    struct corr_buf *b = &j->buf[worker];
    for (int i = i0; i < i1; i++) {
        struct corr_task *t = &j->t[i];
        int N = 1, M = 1;
        while (N < t->bw) N <<= 1;
        while (M < t->bh) M <<= 1;
        if (b->N != N || b->M != M) corr_setup(b, N, M);
        t->peak = correlate(j->I0, j->I1, j->w, j->h, t->x0, t->y0, t->dx, t->dy, t->bw, t->bh, t->maxs, b, &t->tx, &t->ty);
        if (t->twice && t->peak >= GM_MIN_PEAK)
            t->peak = correlate(j->I0, j->I1, j->w, j->h, t->x0, t->y0, (int)lround(t->tx), (int)lround(t->ty), t->bw, t->bh,
                                2, b, &t->tx, &t->ty);
    }
}

enum { NB = GM_BLOCKS * GM_BLOCKS };

/* the GM_BLOCKS x GM_BLOCKS tasks of blocks of B x B px displaced by (dx, dy) */
static void block_tasks(struct corr_task *t, int w, int h, int B, int dx, int dy)
{
    for (int j = 0; j < GM_BLOCKS; j++)
        for (int i = 0; i < GM_BLOCKS; i++) {
            struct corr_task *k = &t[j * GM_BLOCKS + i];
            memset(k, 0, sizeof *k);
            k->x0 = (int)lround((double)(w - B) * i / (GM_BLOCKS - 1));
            k->y0 = (int)lround((double)(h - B) * j / (GM_BLOCKS - 1));
            k->bw = k->bh = B;
            k->dx = dx;
            k->dy = dy;
            k->maxs = B / 4;
            k->twice = 1;
        }
}

/* An affine fit of the block shifts of tasks t (least squares weighted by
 * peak height, then again without the blocks more than 1 px off: another
 * layer). Returns the blocks kept (0: fewer than 4) with their mean peak in
 * *peak. */
static int fit_blocks(const struct corr_task *t, double a[6], double *peak)
{
    double X[NB], Y[NB], U[NB], V[NB], W[NB];
    int nb = 0;
    for (int i = 0; i < NB; i++) {
        if (!(t[i].peak >= GM_MIN_PEAK)) continue;
        X[nb] = t[i].x0 + 0.5 * (t[i].bw - 1);
        Y[nb] = t[i].y0 + 0.5 * (t[i].bh - 1);
        U[nb] = t[i].tx;
        V[nb] = t[i].ty;
        W[nb] = t[i].peak;
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

int gmotion_estimate(const float *I0, const float *I1, int w, int h, struct pool *pool, struct gmotion *g)
{
    memset(g, 0, sizeof *g);
    int nt = pool_threads(pool) > 0 ? pool_threads(pool) : 1;
    int N = pow2_at_least(w), M = pow2_at_least(h);
    size_t n = (size_t)N * M, per = 2 * n + 2 * (size_t)M + 2 * (size_t)(N + M) + (size_t)(w + h);
    struct corr_buf *bufs = calloc((size_t)nt, sizeof *bufs);
    double *mem = malloc(sizeof(double) * per * nt);
    if (!bufs || !mem) { free(bufs); free(mem); return -1; }
    for (int k = 0; k < nt; k++) {
        double *m = mem + per * k;
        bufs[k].re = m; bufs[k].im = m + n; bufs[k].col = m + 2 * n;
        bufs[k].tw = m + 2 * n + 2 * M; bufs[k].win = bufs[k].tw + 2 * (N + M);
    }
    struct corr_task t[1 + NB];
    struct gm_job j = { I0, I1, w, h, t, bufs };
    /* blocks of about 0.6 of the short side */
    int B = 1;
    while (2 * B <= 0.6 * (w < h ? w : h)) B *= 2;
    int use_blocks = B >= 16;
    /* the whole frame (a translation) and the undisplaced blocks, in parallel */
    memset(&t[0], 0, sizeof t[0]);
    t[0].bw = w;
    t[0].bh = h;
    t[0].maxs = (w < h ? w : h) / 3;
    if (use_blocks) block_tasks(t + 1, w, h, B, 0, 0);
    pool_for(pool, use_blocks ? 1 + NB : 1, job_corr, &j);
    double p0 = t[0].peak, tx = t[0].tx, ty = t[0].ty;
    if (p0 >= GM_TRUST) {
        g->valid = 1;
        g->a[0] = tx;
        g->a[3] = ty;
    }
    /* then the blocks displaced by the whole-frame shift (a weak whole-frame
     * peak may be a wrong one; a large shift is beyond a block's reach): the
     * fit of the higher mean peak */
    if (use_blocks) {
        double a[6], pk = 0, a2[6], pk2 = 0;
        int nb = fit_blocks(t + 1, a, &pk);
        int dx = (int)lround(tx), dy = (int)lround(ty);
        if (p0 >= GM_MIN_PEAK && (dx || dy)) {
            block_tasks(t + 1, w, h, B, dx, dy);
            pool_for(pool, NB, job_corr, (j.t = t + 1, &j));
            int nb2 = fit_blocks(t + 1, a2, &pk2);
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
    free(mem);
    free(bufs);
    return 0;
}
