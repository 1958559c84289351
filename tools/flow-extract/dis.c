#include "dis.h"
#pragma GCC diagnostic ignored "-Wpsabi"

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gmotion.h"

#define MAX_LEVELS 12
/* a match found by the whole-pixel search must end with an SSD below this
 * share of the one descended from the coarser flow (analytic set, tune part:
 * 1.0, i.e. the lower SSD, took a period of a 640x480 plaid translated 2-8 px
 * for the motion (EPE 40 px); 0.5 still did so once, 0.25 never; flowgen
 * seeds 13-24, medium: EPE 0.6225 -> 0.6202) */
#define SEARCH_WIN 0.25f
/* a match of the whole-pixel search that is better but not by SEARCH_WIN is
 * still taken when the template's SSD against I0 itself, shifted by the
 * offset between the two matches, is above this multiple of its SSD in I1
 * (no periodic alias; flowgen seeds 13-24, medium: EPE 0.614 -> 0.574 clean,
 * 0.686 -> 0.653 noisy; analytic tune part: no pair lost that was not) */
#define ALIAS_SELF 2.f
/* the farthest the whole-pixel search looks, in pixels of the frame */
#define SEARCH_REACH 32
/* The dominant-motion candidate (p.global, gmotion.h; see job_patches),
 * chosen on the analytic set's tune part (seeds 1-8 of the 1920x1080 plaid
 * pairs, seeds 1-2 elsewhere), flowgen seeds 13-24 and 25-40, and the unit
 * test's exact 80 px plaid at 1920x1080. Its descended match replaces the
 * patch's own result unless that ends with an SSD below 1/GLOBAL_WIN of it
 * (GLOBAL_WIN_COARSE at the level the model was estimated on and coarser,
 * where a periodic texture aliases: 1.0 there left the unit test's plaid
 * 0.15 px off, border band 2.1 px; below, the fourth pass's 1.5 pulled fast
 * layers to the background), plus GLOBAL_TIE grey levels squared per pixel
 * (exact float textures: both SSDs near 0, the ratio is noise). Its descent
 * is skipped where the model's start is more than GLOBAL_GATE times worse
 * than the patch's result and the two are not a period apart (periodic()):
 * a layer of its own, one descent fewer on most of its patches. It is only
 * compared where its whole match lies in the frame (GLOBAL_INSIDE; at 0.5 a
 * partly clamped match lost against a wrong period inside the frame);
 * beyond, it replaces results more than GLOBAL_FAR px (of the level) away
 * from it only where the two differ by a period of the texture (replacing
 * every such result, as the fourth pass did, took a fast layer near the
 * border to the background: flowgen seed 18 0.45 -> 0.87 px). Only a model
 * gmotion trusts is used: an untrusted one (compared at 1.0x, and only where
 * the patch's own match was inside the frame) cost the Middlebury pair 2.383
 * -> 2.516 px, and trusting every model made small frames worse (160x120,
 * 20 px translation: 1.47 -> 4.48) */
#define GLOBAL_WIN 1.f
#define GLOBAL_WIN_COARSE 1.5f
#define GLOBAL_TIE 1.f
#define GLOBAL_INSIDE 0.99f
#define GLOBAL_FAR 4.f
#define GLOBAL_GATE 4.f
/* periodic(): the template matches I0 shifted by half the offset between
 * two matches more than PERIOD_HALF times worse than shifted by the whole
 * offset (a smooth texture is more alike at the smaller shift, a periodic one
 * only at a whole period). Comparing the whole-offset match with the patch's
 * own SSD as well (as ALIAS_SELF does) failed on exact textures: the model's
 * flow is a fraction of a pixel off, and on a sharp periodic texture that
 * alone costs more than a perfect match (unit test, 80 px plaid at
 * 1920x1080: border band 0.73 -> 21.5 px). */
#define PERIOD_HALF 2.f
/* the share of a patch whose match must lie inside the frame for its descent to count */
#define BORDER_KEEP 0.5f
#define SMALL_LEVEL 20000 /* pixels */
#define SM_MAXR 8         /* the widest Gaussian of p.smooth, taps on each side */
/* SOR planes per colour: b1 b2 a12 id11 id22 wl wr wu wd u v */
enum { RB_B1, RB_B2, RB_A12, RB_ID11, RB_ID22, RB_WL, RB_WR, RB_WU, RB_WD, RB_U, RB_V, RB_PER_COLOR };
#define RB_PLANES (2 * RB_PER_COLOR)
/* refinement inputs fixed for a level, split the same way: the 8 normalised
 * derivatives and the flow U0, V0 they were taken at */
enum { VD_IX, VD_IY, VD_IZ, VD_IXX, VD_IXY, VD_IYY, VD_IXZ, VD_IYZ, VD_U0, VD_V0, VD_PER_COLOR };
#define VD_PLANES (2 * VD_PER_COLOR)

/* The hot loops are compiled twice, for AVX2+FMA and for the baseline, and
 * the loader picks one by CPU (GCC/clang function multiversioning); the
 * helpers they call are forced inline so they get the same treatment. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__SANITIZE_ADDRESS__) && !defined(ISOPIPE_NO_CLONES)
#define HOT __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define HOT
#endif
#define INL static inline __attribute__((always_inline))

struct level {
    int w, h;
    float *I0, *I1;    /* w*h, grey; level 0 points at the caller's images */
    float *gx, *gy;    /* Sobel gradients of I0 (divided by 8) */
};

struct dis {
    struct dis_params p;
    struct pool *pool;     /* the pool used for the current level (NULL: inline) */
    struct pool *pool_all; /* the caller's pool */
    int w, h, nlev, coarsest, finest;
    int search_level;      /* the level of the whole-pixel search (p.search) */
    int gm_level;          /* the level the dominant motion is estimated on (p.global) */
    struct gmotion gm;     /* the dominant motion of the current pair */
    struct level lev[MAX_LEVELS];
    /* dense flow at the current level and the coarser one (sized for the finest computed level) */
    float *U, *V, *Uc, *Vc;
    /* patch grid */
    float *pu, *pv;        /* per patch flow */
    float *acc;            /* densification accumulators: planes u, v, weight of the level */
    /* variational refinement: derivatives and U0, V0 in red-black split planes (VD_*) */
    float *vbuf;
    /* red-black split planes for SOR (see struct rb) */
    float *rbuf;
    /* cubic B-spline coefficients of I1 and its gradients x, y at the level being refined */
    float *bs[3];
    /* I0, I1 of the level being refined, low-passed for the data terms (p.smooth > 0),
     * and one row of scratch per worker for the filter */
    float *sm[2], *smrow;
};

static const char *preset_names[] = { "fast", "medium", "accurate" };

void dis_params_preset(struct dis_params *p, enum dis_preset preset)
{
    /* fast and medium start from the operating points of the DIS paper
     * (OpenCV uses the same ones); ours differ in the refinement budget */
    memset(p, 0, sizeof *p);
    p->patch = 8;
    p->coarsest = -1;
    p->alpha = 10.f;
    p->delta = 5.f;
    p->gamma = 10.f;
    /* SOR over-relaxation. Where the flow is smooth the smoothness weights
     * (alpha / |grad u|) dwarf the data weights, and each sweep moves a
     * common offset of the whole field only by data / (data + smoothness):
     * a few percent. The patch search (bilinear, which pulls matches
     * towards whole pixels on fine texture) leaves such an offset at the
     * finest level, and with 1.6 the 5 x 5 sweeps removed only 70% of it
     * (analytic set, tune part: 0.04 px left on a 320x240 translation,
     * while 60 fixed-point iterations converged). 1.8 removes it in the
     * same sweeps; flowgen seeds 13-24 (medium) no worse (0.618 -> 0.615
     * clean, 0.685 -> 0.684 noisy). */
    p->omega = 1.8f;
    p->zeta = 1.f;
    /* low-pass of the images the refinement's data terms read (see job_smooth) */
    p->smooth = 0.7f;
    p->mean_norm = 1;
    p->propagate = 1;
    /* measured on flowgen seeds 13-60 (the bench reports seeds 1-12):
     * with the coarsest level one finer than DIS's rule (see dis_new), a
     * +-4 px search there cut mean EPE 12% (clean) and 12% (noisy) against
     * the DIS rule with +-3 px; +-2 px lost, 5-6 px were no better */
    p->search = 4;
    /* on since the fifth pass of issue 13 (docs/bench/flow.md); --no-global-motion turns it off */
    p->global = 1;
    /* chosen on flowgen seeds 13-36 (12 px: EPE -11%, 16: -13%, 20: -12%
     * against none), confirmed on seeds 37-60 (-17% clean, -15% noisy) */
    p->cand = 16;
    p->var_inner = 5;
    switch (preset) {
    case DIS_PRESET_FAST:
        p->stride = 4; p->iters = 16; p->finest = 2; p->var_outer = 5;
        /* the candidates lift fast on flowgen (seeds 13-36: EPE 1.31 -> 1.23)
         * but cost it on the Middlebury pair (3.11 -> 3.45 px, behind DIS-fast):
         * 16 px at its finest level 2 is 64 px of the frame */
        p->cand = 0;
        break;
    case DIS_PRESET_MEDIUM:
        p->stride = 3; p->iters = 25; p->finest = 1; p->var_outer = 5;
        break;
    case DIS_PRESET_ACCURATE:
        p->stride = 2; p->iters = 50; p->finest = 0; p->var_outer = 5;
        break;
    }
}

int dis_preset_parse(const char *name, enum dis_preset *out)
{
    for (int i = 0; i < 3; i++)
        if (strcmp(name, preset_names[i]) == 0) { *out = (enum dis_preset)i; return 0; }
    return iso_fail(ISO_EUSAGE, "--preset: '%s' is not one of fast, medium, accurate", name);
}

const char *dis_preset_name(enum dis_preset preset)
{
    return (unsigned)preset < 3 ? preset_names[preset] : "?";
}

int dis_coarsest(const struct dis *d) { return d->coarsest; }

static void *xalloc(size_t n, size_t sz)
{
    if (n && sz > SIZE_MAX / n) return NULL;
    return malloc(n * sz > 0 ? n * sz : 1);
}

void dis_free(struct dis **dp)
{
    struct dis *d = dp ? *dp : NULL;
    if (!d) return;
    for (int l = 0; l < d->nlev; l++) {
        if (l > 0) {
            free(d->lev[l].I0);
            free(d->lev[l].I1);
        }
        free(d->lev[l].gx);
        free(d->lev[l].gy);
    }
    free(d->U); free(d->V); free(d->Uc); free(d->Vc);
    free(d->pu); free(d->pv);
    free(d->acc);
    free(d->vbuf);
    free(d->rbuf);
    for (int k = 0; k < 3; k++) free(d->bs[k]);
    for (int k = 0; k < 2; k++) free(d->sm[k]);
    free(d->smrow);
    free(d);
    *dp = NULL;
}

static int grid_n(int size, int patch, int stride)
{
    /* positions 0, stride, ..., the last clamped to size - patch so the grid covers the level */
    return (size - patch + stride - 1) / stride + 1;
}

int dis_new(struct dis **out, int w, int h, const struct dis_params *p, struct pool *pool)
{
    *out = NULL;
    if (p->patch != 8 || p->stride < 1 || p->stride > p->patch || p->iters < 0 ||
        p->finest < 0 || p->var_outer < 0 || p->var_inner < 0)
        return iso_fail(ISO_EINTERNAL, "bad DIS parameters");
    if (w < 2 * p->patch || h < 2 * p->patch)
        return iso_fail(ISO_EDATA, "frames of %dx%d are too small for optical flow (at least %dx%d)", w, h,
                        2 * p->patch, 2 * p->patch);
    struct dis *d = calloc(1, sizeof *d);
    if (!d) return iso_fail(ISO_EINTERNAL, "out of memory");
    d->p = *p;
    d->pool = d->pool_all = pool;
    d->w = w;
    d->h = h;
    /* Search level: about 8 patches across the long side, one level finer
     * than the DIS reference implementation's coarsest (4 patches). At the
     * DIS level a small foreground object is under a patch wide and its
     * motion is averaged away by densification and smoothing; one level
     * finer, the whole-pixel search of job_patches keeps it (flowgen seeds
     * 13-60: mean EPE -8 to -13%). Never a level smaller than 2 patches.
     * The coarsest level is the DIS one, above the search level, searched
     * by descent from zero only: a search from zero at the finer level
     * took a period of a periodic texture for the motion (analytic set,
     * tune part: 640x480 plaid translated 2-30 px, EPE 5-39 px), and the
     * coarse level also holds motions the finer one cannot (160x120
     * translated 15-30 px). */
    int c = p->coarsest, cs;
    if (c < 0) {
        double mx = w > h ? w : h;
        c = (int)floor(log2(mx / (4.0 * p->patch)) + 0.5) - 1;
        while (c > 0 && ((w >> c) < 2 * p->patch || (h >> c) < 2 * p->patch)) c--;
        if (c < 0) c = 0;
        cs = c;
        if ((w >> (c + 1)) >= 2 * p->patch && (h >> (c + 1)) >= 2 * p->patch) c++;
    } else {
        while (c > 0 && ((w >> c) < 2 * p->patch || (h >> c) < 2 * p->patch)) c--;
        cs = c;
    }
    if (c >= MAX_LEVELS) c = MAX_LEVELS - 1;
    if (cs > c) cs = c;
    d->search_level = cs;
    int f = p->finest < c ? p->finest : c;
    d->coarsest = c;
    d->finest = f;
    d->nlev = c + 1;
    int rc = 0;
    for (int l = 0; l <= c; l++) {
        struct level *L = &d->lev[l];
        L->w = l ? d->lev[l - 1].w / 2 : w;
        L->h = l ? d->lev[l - 1].h / 2 : h;
        size_t n = (size_t)L->w * L->h;
        if (l > 0) {
            L->I0 = xalloc(n, sizeof(float));
            L->I1 = xalloc(n, sizeof(float));
            if (!L->I0 || !L->I1) goto oom;
        }
        if (l >= f) {
            L->gx = xalloc(n, sizeof(float));
            L->gy = xalloc(n, sizeof(float));
            if (!L->gx || !L->gy) goto oom;
        }
    }
    d->gm_level = 0;
    while (d->gm_level < c && (d->lev[d->gm_level].w > GM_SIDE || d->lev[d->gm_level].h > GM_SIDE)) d->gm_level++;
    {
        struct level *F = &d->lev[f];
        /* refinement below the finest patch level works on the full-size grid */
        size_t n = p->var_below > 0 ? (size_t)w * h : (size_t)F->w * F->h;
        d->U = xalloc(n, sizeof(float));
        d->V = xalloc(n, sizeof(float));
        d->Uc = xalloc(n, sizeof(float));
        d->Vc = xalloc(n, sizeof(float));
        d->acc = xalloc(n, 3 * sizeof(float));
        for (int k = 0; k < 3; k++) d->bs[k] = xalloc(n, sizeof(float));
        if (p->smooth > 0) {
            int lw = p->var_below > 0 ? w : F->w;
            for (int k = 0; k < 2; k++) d->sm[k] = xalloc(n, sizeof(float));
            d->smrow = xalloc((size_t)pool_threads(pool) * (lw + 2 * SM_MAXR), sizeof(float));
        }
        size_t np = (size_t)grid_n(F->w, p->patch, p->stride) * grid_n(F->h, p->patch, p->stride);
        d->pu = xalloc(np, sizeof(float));
        d->pv = xalloc(np, sizeof(float));
        {
            int lw = p->var_below > 0 ? w : F->w, lh = p->var_below > 0 ? h : F->h;
            size_t plane = (size_t)(lh + 2) * (size_t)((lw + 1) / 2 + 2);
            d->vbuf = xalloc(plane, VD_PLANES * sizeof(float));
            d->rbuf = xalloc(plane, RB_PLANES * sizeof(float));
        }
        if (!d->U || !d->V || !d->Uc || !d->Vc || !d->acc || !d->pu || !d->pv || !d->vbuf || !d->rbuf || !d->bs[0] || !d->bs[1] || !d->bs[2] ||
            (p->smooth > 0 && (!d->sm[0] || !d->sm[1] || !d->smrow))) goto oom;
    }
    *out = d;
    return 0;
oom:
    rc = iso_fail(ISO_EINTERNAL, "out of memory for %dx%d optical flow", w, h);
    dis_free(&d);
    return rc;
}

/* ---- pyramid and gradients ---- */

struct lvl_job {
    struct dis *d;
    int l;
};

static void job_downsample(void *ctx, int y0, int y1, int worker)
{
    /* 2x2 box filter ("area" resampling): level l pixel (x, y) covers level
     * l-1 pixels 2x..2x+1, 2y..2y+1, so its centre sits at (2x + 0.5, 2y + 0.5) */
    struct lvl_job *j = ctx;
    struct level *S = &j->d->lev[j->l - 1], *D = &j->d->lev[j->l];
    for (int y = y0; y < y1; y++) {
        const float *a0 = S->I0 + (size_t)(2 * y) * S->w, *a1 = a0 + S->w;
        const float *b0 = S->I1 + (size_t)(2 * y) * S->w, *b1 = b0 + S->w;
        float *da = D->I0 + (size_t)y * D->w, *db = D->I1 + (size_t)y * D->w;
        for (int x = 0; x < D->w; x++) {
            da[x] = 0.25f * (a0[2 * x] + a0[2 * x + 1] + a1[2 * x] + a1[2 * x + 1]);
            db[x] = 0.25f * (b0[2 * x] + b0[2 * x + 1] + b1[2 * x] + b1[2 * x + 1]);
        }
    }
}

typedef float v8f __attribute__((vector_size(32)));

static inline v8f load8(const float *p)
{
    v8f r;
    memcpy(&r, p, sizeof r);
    return r;
}

HOT static void job_gradient(void *ctx, int y0, int y1, int worker)
{
    /* Sobel / 8: a smoothed central difference, in grey levels per pixel */
    struct lvl_job *j = ctx;
    struct level *L = &j->d->lev[j->l];
    int w = L->w, h = L->h;
    for (int y = y0; y < y1; y++) {
        const float *rm = L->I0 + (size_t)(y > 0 ? y - 1 : 0) * w;
        const float *r0 = L->I0 + (size_t)y * w;
        const float *rp = L->I0 + (size_t)(y < h - 1 ? y + 1 : h - 1) * w;
        float *gx = L->gx + (size_t)y * w, *gy = L->gy + (size_t)y * w;
        /* interior columns eight at a time (the same arithmetic), the ends below */
        int x = 1;
        for (; x + 8 < w; x += 8) {
            v8f a = load8(rm + x - 1), b = load8(rm + x), c = load8(rm + x + 1);
            v8f d = load8(r0 + x - 1), f = load8(r0 + x + 1);
            v8f g = load8(rp + x - 1), k = load8(rp + x), m = load8(rp + x + 1);
            v8f ox = 0.125f * ((c - a) + 2.f * (f - d) + (m - g));
            v8f oy = 0.125f * ((g - a) + 2.f * (k - b) + (m - c));
            memcpy(gx + x, &ox, sizeof ox);
            memcpy(gy + x, &oy, sizeof oy);
        }
        for (int t = 0; t < w; t = t == 0 ? x : t + 1) {
            int xm = t > 0 ? t - 1 : 0, xp = t < w - 1 ? t + 1 : w - 1;
            gx[t] = 0.125f * ((rm[xp] - rm[xm]) + 2.f * (r0[xp] - r0[xm]) + (rp[xp] - rp[xm]));
            gy[t] = 0.125f * ((rp[xm] - rm[xm]) + 2.f * (rp[t] - rm[t]) + (rp[xp] - rm[xp]));
        }
    }
}

/* bilinear sample with coordinates clamped to the image */
INL float sample(const float *I, int w, int h, float x, float y)
{
    if (x < 0) x = 0;
    if (y < 0) y = 0;
    if (x > w - 1) x = (float)(w - 1);
    if (y > h - 1) y = (float)(h - 1);
    int ix = (int)x, iy = (int)y;
    if (ix > w - 2) ix = w - 2;
    if (iy > h - 2) iy = h - 2;
    float ax = x - ix, ay = y - iy;
    const float *p = I + (size_t)iy * w + ix;
    float a = p[0] + ax * (p[1] - p[0]);
    float b = p[w] + ax * (p[w + 1] - p[w]);
    return a + ay * (b - a);
}

/* Patches are 8 x 8: one row is one 8-lane vector (GCC/clang vector
 * extensions; the compiler maps them to SSE/AVX), so a patch is 8 vectors. */
typedef int v8i __attribute__((vector_size(32)));
#define P8 8

/* a macro, not a function: a 32-byte vector passed by value draws gcc's ABI note on non-AVX builds */
#define hsum8(a) hsum8_(&(a))
INL float hsum8_(const v8f *p)
{
    v8f a = *p;
    return ((a[0] + a[1]) + (a[2] + a[3])) + ((a[4] + a[5]) + (a[6] + a[7]));
}

/* the 8 x 8 block of I whose top-left corner is at (fx, fy), bilinear */
INL void warp8(const float *I, int w, int h, float fx, float fy, v8f *out)
{
    int ix = (int)floorf(fx), iy = (int)floorf(fy);
    if (ix >= 0 && iy >= 0 && ix + P8 < w && iy + P8 < h) {
        /* one set of bilinear weights serves the whole patch: the flow is constant on it */
        float ax = fx - ix, ay = fy - iy;
        float w00 = (1 - ax) * (1 - ay), w01 = ax * (1 - ay), w10 = (1 - ax) * ay, w11 = ax * ay;
        const float *r = I + (size_t)iy * w + ix;
        v8f a = load8(r), b = load8(r + 1);
        for (int y = 0; y < P8; y++) {
            r += w;
            v8f c = load8(r), d = load8(r + 1);
            out[y] = w00 * a + w01 * b + w10 * c + w11 * d;
            a = c;
            b = d;
        }
        return;
    }
    for (int y = 0; y < P8; y++)
        for (int x = 0; x < P8; x++) out[y][x] = sample(I, w, h, fx + x, fy + y);
}

/* ---- patch inverse search (DIS §2.1) ---- */

struct patch_job {
    struct dis *d;
    struct level *L;
    int nx, ny;        /* patch grid */
    int nstripes;
    int pass;          /* 0: top-left to bottom-right; 1: reverse */
    int search;        /* exhaustive search radius at this level (0: none) */
    int gm;            /* the dominant-motion candidate is tried (p.global, a trusted model: d->gm.sure) */
    float ga[6];       /* its flow at this level: u = ga[0] + ga[1] x + ga[2] y, v = ga[3] + ... */
    float gm_win;      /* GLOBAL_WIN_COARSE at the estimate's level and coarser, GLOBAL_WIN below */
};

static inline int grid_pos(int i, int n, int size, int P, int stride)
{
    int p = i * stride;
    return i == n - 1 || p > size - P ? size - P : p;
}

struct patch_ctx {
    v8f T[P8], GX[P8], GY[P8];
    /* warped samples: W is where the next warp goes; B holds those of the
     * point kept by patch_keep (bu, bv; SSD bssd), which patch_descend then
     * starts from without warping again */
    v8f S[2][P8], *W, *B;
    float meanT, hxx, hxy, hyy, det;
    float bu, bv, bssd;
    int x0, y0, bvalid;
};

INL void patch_load(struct patch_ctx *c, const struct level *L, int x0, int y0, int mean_norm)
{
    v8f s = { 0 }, sx = { 0 }, sy = { 0 }, sxx = { 0 }, sxy = { 0 }, syy = { 0 };
    c->x0 = x0;
    c->y0 = y0;
    c->W = c->S[0];
    c->B = c->S[1];
    c->bvalid = 0;
    for (int y = 0; y < P8; y++) {
        size_t o = (size_t)(y0 + y) * L->w + x0;
        v8f t = load8(L->I0 + o), gx = load8(L->gx + o), gy = load8(L->gy + o);
        c->T[y] = t;
        c->GX[y] = gx;
        c->GY[y] = gy;
        s += t; sx += gx; sy += gy;
        sxx += gx * gx; sxy += gx * gy; syy += gy * gy;
    }
    double n = P8 * P8, Sx = hsum8(sx), Sy = hsum8(sy);
    double Sxx = hsum8(sxx), Sxy = hsum8(sxy), Syy = hsum8(syy);
    c->meanT = hsum8(s) / (float)n;
    if (mean_norm) {
        /* zero-mean SSD: the Hessian of the mean-subtracted gradients */
        Sxx -= Sx * Sx / n; Sxy -= Sx * Sy / n; Syy -= Sy * Sy / n;
    }
    c->hxx = (float)Sxx; c->hxy = (float)Sxy; c->hyy = (float)Syy;
    c->det = (float)(Sxx * Syy - Sxy * Sxy);
}

/* mean difference of the warped patch W from the template (0 without mean normalisation) */
INL float patch_md(const struct patch_ctx *c, const v8f *W, int mean_norm)
{
    if (!mean_norm) return 0.f;
    v8f s = W[0];
    for (int y = 1; y < P8; y++) s += W[y];
    return hsum8(s) * (1.f / (P8 * P8)) - c->meanT;
}

/* zero-mean (or plain) SSD of the patch at flow (u, v); leaves the samples in c->W */
INL float patch_ssd(struct patch_ctx *c, const struct level *L, float u, float v, int mean_norm)
{
    warp8(L->I1, L->w, L->h, c->x0 + u, c->y0 + v, c->W);
    float m = patch_md(c, c->W, mean_norm);
    v8f acc = { 0 };
    for (int y = 0; y < P8; y++) {
        v8f r = c->W[y] - c->T[y] - m;
        acc += r * r;
    }
    return hsum8(acc);
}

/* keep the samples of the last patch_ssd, taken at (u, v) with SSD ssd, as
 * the best point so far (the next warp goes to the other buffer) */
INL void patch_keep(struct patch_ctx *c, float u, float v, float ssd)
{
    v8f *t = c->B;
    c->B = c->W;
    c->W = t;
    c->bu = u;
    c->bv = v;
    c->bssd = ssd;
    c->bvalid = 1;
}

/* the SSD at (u, v): the kept one when it is that point's */
INL float patch_ssd_at(struct patch_ctx *c, const struct level *L, float u, float v, int mean_norm)
{
    if (c->bvalid && c->bu == u && c->bv == v) return c->bssd;
    float ssd = patch_ssd(c, L, u, v, mean_norm);
    patch_keep(c, u, v, ssd);
    return ssd;
}

/* Inverse-compositional Gauss-Newton on a translation (DIS §2.1, eq. 3-4):
 * the Hessian and the template gradients are those of I0, computed once per
 * patch; each iteration samples I1 once and gets both the SSD of the current
 * point and the step from it. A step that raises the SSD is undone and ends
 * the search. */
INL float patch_descend(struct patch_ctx *c, const struct level *L, int iters, int mean_norm, float *pu, float *pv)
{
    float u = *pu, v = *pv, pu0 = u, pv0 = v, best = INFINITY;
    if (!(c->det > 1e-3f * (c->hxx + c->hyy + 1e-6f))) return patch_ssd_at(c, L, u, v, mean_norm); /* textureless: no update */
    float inv = 1.f / c->det;
    for (int it = 0; it <= iters; it++) {
        /* the start point's samples are there already when it was kept */
        const v8f *W = c->B;
        if (!(it == 0 && c->bvalid && c->bu == u && c->bv == v)) {
            warp8(L->I1, L->w, L->h, c->x0 + u, c->y0 + v, c->W);
            W = c->W;
        }
        float m = patch_md(c, W, mean_norm);
        v8f s = { 0 }, bx = { 0 }, by = { 0 };
        for (int y = 0; y < P8; y++) {
            v8f r = W[y] - c->T[y] - m;
            s += r * r;
            bx += c->GX[y] * r;
            by += c->GY[y] * r;
        }
        float ssd = hsum8(s);
        if (!(ssd < best)) {
            u = pu0;
            v = pv0;
            break;
        }
        best = ssd;
        pu0 = u;
        pv0 = v;
        if (it == iters) break;
        float Bx = hsum8(bx), By = hsum8(by);
        float du = (c->hyy * Bx - c->hxy * By) * inv;
        float dv = (c->hxx * By - c->hxy * Bx) * inv;
        u -= du;
        v -= dv;
        if (du * du + dv * dv < 1e-6f) break;
    }
    *pu = u;
    *pv = v;
    return best;
}

/* Is the offset (du, dv) between two matches of the patch a period of the
 * texture (PERIOD_HALF)? Then nothing in I1 can tell the two apart, and a
 * fast layer is not what separates them. */
INL int periodic(struct patch_ctx *c, const struct level *L, float du, float dv, int mn)
{
    struct level L0 = *L;
    L0.I1 = L->I0;
    float self = patch_ssd(c, &L0, du, dv, mn);
    float half = patch_ssd(c, &L0, 0.5f * du, 0.5f * dv, mn);
    return half > PERIOD_HALF * self + GLOBAL_TIE * P8 * P8;
}

HOT static void job_patches(void *ctx, int s0, int s1, int worker)
{
    struct patch_job *j = ctx;
    struct dis *d = j->d;
    const struct level *L = j->L;
    int st = d->p.stride, nx = j->nx, ny = j->ny, mn = d->p.mean_norm;
    int fw = L->w;
    struct patch_ctx c;
    int it0 = d->p.propagate ? (d->p.iters + 1) / 2 : d->p.iters;
    int its = j->pass == 0 ? it0 : d->p.iters - it0;
    for (int s = s0; s < s1; s++) {
        /* stripes of patch rows are independent, so propagation stays inside a stripe */
        int r0 = (int)((long)ny * s / j->nstripes), r1 = (int)((long)ny * (s + 1) / j->nstripes);
        for (int rr = r0; rr < r1; rr++) {
            int r = j->pass == 0 ? rr : r1 - 1 - (rr - r0);
            int y0 = grid_pos(r, ny, L->h, P8, st);
            for (int cc = 0; cc < nx; cc++) {
                int col = j->pass == 0 ? cc : nx - 1 - cc;
                int x0 = grid_pos(col, nx, L->w, P8, st);
                int id = r * nx + col;
                patch_load(&c, L, x0, y0, mn);
                float u, v, gu, gv;
                if (j->pass == 0) {
                    /* initial guess: the coarser level's dense flow at the patch centre */
                    size_t ci = (size_t)(y0 + P8 / 2) * fw + (x0 + P8 / 2);
                    u = d->U[ci];
                    v = d->V[ci];
                    gu = u;
                    gv = v;
                    if (d->p.cand > 0 && j->search == 0) {
                        /* Candidates from the coarser level's flow around the patch
                         * (DIS itself takes only the centre): the dense flow
                         * +-cand px diagonally from the centre, kept when its SSD is
                         * lower. Densification and smoothing at the coarser level
                         * blur a small layer's motion into its surroundings and the
                         * centre sample can miss it; a sample further out recovers
                         * the motion of a layer the patch overlaps. Samples within
                         * half a pixel of the centre's flow add nothing and are
                         * skipped (most of them, where the flow is smooth). */
                        int D = d->p.cand;
                        float best = patch_ssd_at(&c, L, u, v, mn), cu0 = u, cv0 = v;
                        for (int k = 0; k < 4; k++) {
                            int cx = x0 + P8 / 2 + (k & 1 ? D : -D), cy = y0 + P8 / 2 + (k & 2 ? D : -D);
                            cx = cx < 0 ? 0 : cx > L->w - 1 ? L->w - 1 : cx;
                            cy = cy < 0 ? 0 : cy > L->h - 1 ? L->h - 1 : cy;
                            size_t q = (size_t)cy * fw + cx;
                            float du = d->U[q] - cu0, dv = d->V[q] - cv0;
                            if (du * du + dv * dv < 0.25f) continue;
                            float ssd = patch_ssd(&c, L, d->U[q], d->V[q], mn);
                            if (ssd < best) { best = ssd; u = d->U[q]; v = d->V[q]; patch_keep(&c, u, v, ssd); }
                        }
                    }
                } else {
                    u = d->pu[id];
                    v = d->pv[id];
                    gu = u;
                    gv = v;
                }
                if (j->pass == 0 && j->search > 0) {
                    /* At the search level (see dis_new) a small fast object is a few
                     * pixels across and the coarser flow missed it: besides descending
                     * from that flow, also descend from the best whole-pixel offset
                     * within +-search around it (the minimum of the search alone is too
                     * often a false match), and take that result only when it ends
                     * with a clearly lower SSD: on a periodic texture a whole period
                     * away matches about as well (SEARCH_WIN). */
                    float best = patch_ssd(&c, L, u, v, mn), bu = u, bv = v;
                    int R = j->search;
                    for (int oy = -R; oy <= R; oy++)
                        for (int ox = -R; ox <= R; ox++) {
                            if (!ox && !oy) continue;
                            float ssd = patch_ssd(&c, L, u + ox, v + oy, mn);
                            if (ssd < best) { best = ssd; bu = u + ox; bv = v + oy; }
                        }
                    if (bu != u || bv != v) {
                        float au = u, av = v;
                        float sa = patch_descend(&c, L, its, mn, &au, &av);
                        float sb = patch_descend(&c, L, its, mn, &bu, &bv);
                        int take = sb < SEARCH_WIN * sa;
                        if (!take && sb < sa) {
                            /* Better, but not clearly: a period of a periodic texture
                             * or a small fast layer the coarser flow missed? A period
                             * shows in I0 itself: the template matches I0 shifted by
                             * the offset between the two matches about as well as
                             * its match in I1. Take the search's match when I0 is not
                             * that self-similar (ALIAS_SELF). */
                            struct level L0 = *L;
                            L0.I1 = L->I0;
                            take = patch_ssd(&c, &L0, bu - au, bv - av, mn) > ALIAS_SELF * sb;
                        }
                        u = take ? bu : au;
                        v = take ? bv : av;
                    }
                }
                float iu = u, iv = v, gmu = 0, gmv = 0;
                if (d->p.propagate) {
                    /* spatial propagation (the DIS reference code): take a
                     * neighbour's flow from this pass when it fits better */
                    float best = patch_ssd_at(&c, L, u, v, mn);
                    int nb[2][2] = { { r, col + (j->pass ? 1 : -1) }, { r + (j->pass ? 1 : -1), col } };
                    for (int k = 0; k < 2; k++) {
                        int nr = nb[k][0], nc = nb[k][1];
                        if (nc < 0 || nc >= nx || nr < r0 || nr >= r1) continue;
                        float cu = d->pu[nr * nx + nc], cv = d->pv[nr * nx + nc];
                        float ssd = patch_ssd(&c, L, cu, cv, mn);
                        if (ssd < best) { best = ssd; u = cu; v = cv; patch_keep(&c, u, v, ssd); }
                    }
                }
                float sd = patch_descend(&c, L, its, mn, &u, &v);
                /* a patch that wandered off by more than its size lost its match: keep its start */
                if ((u - iu) * (u - iu) + (v - iv) * (v - iv) > (float)(P8 * P8)) { u = iu; v = iv; sd = INFINITY; }
                if (j->gm) {
                    /* The dominant motion of the pair (gmotion.c, a trusted
                     * model) at the patch centre, in both passes. Where its
                     * match lies inside the frame it is descended too and
                     * replaces the patch's own result unless that ends better
                     * (GLOBAL_WIN; GLOBAL_TIE: differences of SSD below one
                     * grey level squared per pixel are ties): on a periodic
                     * texture a match a period off is as good, and the coarse
                     * levels, where such a texture aliases, may have led there
                     * (at a level where the texture's finest harmonic is near 2
                     * px, bilinear warping even makes a near-whole-pixel wrong
                     * period match better than the true fractional shift; the
                     * finer levels, checked again, recover). A start far worse
                     * than the patch's result is not descended (GLOBAL_GATE: a
                     * layer of its own). Where the model's match leaves the
                     * frame nothing can be checked: it replaces a result more
                     * than GLOBAL_FAR px away from it when the two are a period
                     * of the texture apart (not a fast layer: periodic()), and
                     * the border rule below falls back to it on the same test. */
                    float xc = x0 + 0.5f * (P8 - 1), yc = y0 + 0.5f * (P8 - 1);
                    float mu = j->ga[0] + j->ga[1] * xc + j->ga[2] * yc, mv = j->ga[3] + j->ga[4] * xc + j->ga[5] * yc;
                    float du = mu - u, dv = mv - v, far2 = GLOBAL_FAR * GLOBAL_FAR;
                    float mx = fminf(x0 + mu + P8, (float)L->w) - fmaxf(x0 + mu, 0.f);
                    float my = fminf(y0 + mv + P8, (float)L->h) - fmaxf(y0 + mv, 0.f);
                    if (!(mx > 0 && my > 0 && mx * my >= GLOBAL_INSIDE * P8 * P8)) {
                        if (du * du + dv * dv > far2 && (!(sd < INFINITY) || periodic(&c, L, u - mu, v - mv, mn))) {
                            u = mu;
                            v = mv;
                        }
                    } else if (du * du + dv * dv >= 1.f &&
                               !(sd < INFINITY && patch_ssd(&c, L, mu, mv, mn) > GLOBAL_GATE * sd + GLOBAL_TIE * P8 * P8 &&
                                 !periodic(&c, L, u - mu, v - mv, mn))) {
                        float au = mu, av = mv;
                        float sm = patch_descend(&c, L, its, mn, &au, &av);
                        if ((au - mu) * (au - mu) + (av - mv) * (av - mv) <= (float)(P8 * P8) &&
                            sm <= j->gm_win * sd + GLOBAL_TIE * P8 * P8) { u = au; v = av; }
                    }
                    gmu = mu;
                    gmv = mv;
                }
                {
                    /* A patch whose match lies mostly outside the frame compared
                     * clamped border pixels, not I1: what descent found there is
                     * noise (the collapse of a band along the border under large
                     * motion), so it keeps the flow it started from (analytic
                     * set, tune part, translations of 15-30 px at 320x240 and
                     * 640x480: EPE in the 0-16 px border band -10 to -70%), or
                     * the dominant motion where that start is a period of the
                     * texture away from it. */
                    float ax = fminf(x0 + u + P8, (float)L->w) - fmaxf(x0 + u, 0.f);
                    float ay = fminf(y0 + v + P8, (float)L->h) - fmaxf(y0 + v, 0.f);
                    if (!(ax > 0 && ay > 0 && ax * ay >= BORDER_KEEP * P8 * P8)) {
                        if (j->gm && (gu - gmu) * (gu - gmu) + (gv - gmv) * (gv - gmv) > GLOBAL_FAR * GLOBAL_FAR &&
                            periodic(&c, L, gu - gmu, gv - gmv, mn)) { gu = gmu; gv = gmv; }
                        u = gu;
                        v = gv;
                    }
                }
                d->pu[id] = u;
                d->pv[id] = v;
            }
        }
    }
}

/* ---- densification (DIS §2.2, eq. 5): weights 1 / max(1, |I1(x + u_i) - I0(x)|) ---- */

struct dens_job {
    struct dis *d;
    const struct level *L;
    int nx, ny, band;
};

HOT static void job_densify(void *ctx, int b0, int b1, int worker)
{
    struct dens_job *j = ctx;
    struct dis *d = j->d;
    const struct level *L = j->L;
    int P = P8, st = d->p.stride, w = L->w, mn = d->p.mean_norm;
    v8f W[P8];
    for (int b = b0; b < b1; b++) {
        int ya = b * j->band, yb = ya + j->band < L->h ? ya + j->band : L->h;
        size_t np = (size_t)w * L->h;
        float *au = d->acc, *av = au + np, *aw = av + np;
        for (int y = ya; y < yb; y++) {
            memset(au + (size_t)y * w, 0, sizeof(float) * w);
            memset(av + (size_t)y * w, 0, sizeof(float) * w);
            memset(aw + (size_t)y * w, 0, sizeof(float) * w);
        }
        for (int r = 0; r < j->ny; r++) {
            int y0 = grid_pos(r, j->ny, L->h, P, st);
            if (y0 + P <= ya || y0 >= yb) continue;
            int ly0 = y0 < ya ? ya : y0, ly1 = y0 + P > yb ? yb : y0 + P;
            for (int col = 0; col < j->nx; col++) {
                int x0 = grid_pos(col, j->nx, w, P, st), id = r * j->nx + col;
                float u = d->pu[id], v = d->pv[id], md = 0;
                warp8(L->I1, w, L->h, x0 + u, y0 + v, W);
                if (mn) {
                    v8f sw = { 0 }, st8 = { 0 };
                    for (int y = 0; y < P; y++) {
                        sw += W[y];
                        st8 += load8(L->I0 + (size_t)(y0 + y) * w + x0);
                    }
                    md = (hsum8(sw) - hsum8(st8)) * (1.f / (P8 * P8));
                }
                for (int y = ly0; y < ly1; y++) {
                    size_t o = (size_t)y * w + x0;
                    v8f e = W[y - y0] - load8(L->I0 + o) - md;
                    /* weight 1 / max(1, |e|), eight pixels at once */
                    v8i ei, big;
                    memcpy(&ei, &e, sizeof ei);
                    ei &= 0x7fffffff;
                    v8f ae, one = { 1, 1, 1, 1, 1, 1, 1, 1 };
                    memcpy(&ae, &ei, sizeof ae);
                    big = ae > one;
                    v8i oi, mx;
                    memcpy(&oi, &one, sizeof oi);
                    mx = (ei & big) | (oi & ~big);
                    memcpy(&ae, &mx, sizeof ae);
                    v8f wt = one / ae;
                    v8f A = load8(au + o) + wt * u, B = load8(av + o) + wt * v, C = load8(aw + o) + wt;
                    memcpy(au + o, &A, sizeof A);
                    memcpy(av + o, &B, sizeof B);
                    memcpy(aw + o, &C, sizeof C);
                }
            }
        }
        for (int y = ya; y < yb; y++)
            for (int x = 0; x < w; x++) {
                size_t i = (size_t)y * w + x;
                float wt = aw[i];
                d->U[i] = wt > 0 ? au[i] / wt : 0.f;
                d->V[i] = wt > 0 ? av[i] / wt : 0.f;
            }
    }
}

/* ---- variational refinement (DIS §3.3 after Brox et al. 2004) ----
 * Minimises, over increments (du, dv) of the current flow (U0, V0),
 *   sum  delta Psi((Iz + Ix du + Iy dv)^2)
 *      + gamma Psi((Ixz + Ixx du + Ixy dv)^2 + (Iyz + Ixy du + Iyy dv)^2)
 *      + alpha Psi(|grad u|^2 + |grad v|^2),  Psi(s^2) = sqrt(s^2 + eps^2),  u = U0 + du,
 * by lagged-nonlinearity fixed-point iterations (the Psi' weights frozen),
 * each solving the linear system with red-black SOR sweeps. The unknowns
 * are u, v themselves (updated in place in d->U, d->V), so a sweep reads one
 * 32-byte coefficient record per pixel and the flow of its neighbours. */

/* Red-black split layout (what makes the SOR sweep a contiguous, vector-
 * friendly loop): pixel (x, y) of colour k = (x + y) & 1 lives at
 * plane_k[(y + 1) * S + 1 + (x >> 1)], S = (w + 1) / 2 + 2. Its left and right
 * neighbours are entries m + s - 1 and m + s (s = (y + k) & 1) of the other
 * colour's same row, up and down are entry m of its rows y - 1 and y + 1.
 * A zero border of one row/column keeps every neighbour read in bounds;
 * edge weights to absent neighbours are 0. */
struct rb {
    int S;
    float *p[2][RB_PER_COLOR];
};

struct var_job {
    struct dis *d;
    const struct level *L;
    float *vd[2][VD_PER_COLOR];
    int color;
    struct rb rb;
};

#define EPS2 1e-6f

/* ---- data terms on a cubic-spline model of I1 and its gradient ----
 * The refinement compares I1 at x + u with I0 at x, and their gradients
 * (brightness and gradient constancy). How I1 is read between pixels biases
 * the minimiser on a pure translation, more so where the texture sits at a
 * high fraction of the sampling rate, as at the half-resolution level where
 * medium ends (measured on analytic translations, tests/bench/flow/analytic.py):
 *  - bilinear interpolation (and Keys' cubic, whose phase response is nearly
 *    the same) lags behind the signal: at a quarter of the sampling rate it
 *    reads a shift of 0.3 px as 0.28, and the match overshoots towards half
 *    pixels (+0.02 px on a translation of 0.6 px at 640x480);
 *  - the exact derivatives of a spline at a fractional point are a poorer
 *    interpolant still, and the gradient-constancy term locks towards whole
 *    pixels (-0.016 px).
 * So I1 and its two gradient images (central differences, the same operator
 * as for I0) are each interpolated as a cardinal cubic spline (prefiltered
 * B-spline coefficients; Unser, "Splines: a perfect fit for signal and image
 * processing", IEEE SPM 1999), whose phase lag there is 10x smaller: the
 * gradient term becomes brightness constancy on the gradient images. */
#define BS_POLE (-0.26794919243112270f) /* sqrt(3) - 2 */
#define BS_GAIN 6.f                     /* (1 - z)(1 - 1/z) */
#define BS_HORIZON 12                   /* z^12 < 2e-7: the causal start as a truncated sum */

INL int mirror(int i, int n)
{
    if (i < 0) i = -i;
    if (i > n - 1) i = 2 * (n - 1) - i;
    return i < 0 ? 0 : i > n - 1 ? n - 1 : i;
}

struct bs_job {
    struct dis *d;
    const struct level *L;
};

/* bs_prefilter_line on nl lines of n samples each (stride 1) at once: the
 * same arithmetic per line, but the recursions of different lines are
 * independent, so interleaving them lets the CPU overlap their latencies */
#define BS_LINES 24
static void bs_prefilter_lines(float *const *c, int nl, int n)
{
    const float z = BS_POLE;
    if (n < 2) return;
    for (int l = 0; l < nl; l++) {
        float *p = c[l];
        for (int k = 0; k < n; k++) p[k] *= BS_GAIN;
        float acc = p[0], zk = z;
        for (int k = 1; k < n && k < BS_HORIZON; k++, zk *= z) acc += zk * p[k];
        p[0] = acc;
    }
    for (int k = 1; k < n; k++)
        for (int l = 0; l < nl; l++) c[l][k] += z * c[l][k - 1];
    for (int l = 0; l < nl; l++) c[l][n - 1] = (z / (z * z - 1.f)) * (c[l][n - 1] + z * c[l][n - 2]);
    for (int k = n - 2; k >= 0; k--)
        for (int l = 0; l < nl; l++) c[l][k] = z * (c[l][k + 1] - c[l][k]);
}

/* I1 and its central-difference gradients, then the horizontal prefilter,
 * eight rows (24 lines) at a time */
HOT static void job_bs_rows(void *ctx, int y0, int y1, int worker)
{
    struct bs_job *j = ctx;
    int w = j->L->w, h = j->L->h;
    for (int ya = y0; ya < y1; ya += BS_LINES / 3) {
        int yb = ya + BS_LINES / 3 < y1 ? ya + BS_LINES / 3 : y1, nl = 0;
        float *lines[BS_LINES];
        for (int y = ya; y < yb; y++) {
            const float *r = j->L->I1 + (size_t)y * w;
            const float *ru = j->L->I1 + (size_t)mirror(y - 1, h) * w, *rd = j->L->I1 + (size_t)mirror(y + 1, h) * w;
            float *c = j->d->bs[0] + (size_t)y * w, *gx = j->d->bs[1] + (size_t)y * w, *gy = j->d->bs[2] + (size_t)y * w;
            memcpy(c, r, sizeof(float) * w);
            gx[0] = 0.5f * (r[mirror(1, w)] - r[mirror(-1, w)]);
            for (int x = 1; x < w - 1; x++) gx[x] = 0.5f * (r[x + 1] - r[x - 1]);
            if (w > 1) gx[w - 1] = 0.5f * (r[mirror(w, w)] - r[mirror(w - 2, w)]);
            for (int x = 0; x < w; x++) gy[x] = 0.5f * (rd[x] - ru[x]);
            lines[nl++] = c;
            lines[nl++] = gx;
            lines[nl++] = gy;
        }
        bs_prefilter_lines(lines, nl, w);
    }
}

#define BS_COLS 32 /* columns per task of the vertical pass */
HOT static void job_bs_cols(void *ctx, int s0, int s1, int worker)
{
    /* the vertical pass of bs_prefilter_line on up to BS_COLS columns at once, row by row */
    struct bs_job *j = ctx;
    int w = j->L->w, h = j->L->h;
    const float z = BS_POLE;
    if (h < 2) return;
    for (int s = s0; s < s1; s++) {
        int xa = s * BS_COLS, n = xa + BS_COLS < w ? BS_COLS : w - xa;
        for (int im = 0; im < 3; im++) {
            float *c = j->d->bs[im] + xa, acc[BS_COLS];
            for (int y = 0; y < h; y++)
                for (int x = 0; x < n; x++) c[(size_t)y * w + x] *= BS_GAIN;
            for (int x = 0; x < n; x++) acc[x] = c[x];
            float zk = z;
            for (int k = 1; k < h && k < BS_HORIZON; k++, zk *= z)
                for (int x = 0; x < n; x++) acc[x] += zk * c[(size_t)k * w + x];
            for (int x = 0; x < n; x++) c[x] = acc[x];
            for (int y = 1; y < h; y++) {
                float *r = c + (size_t)y * w, *q = r - w;
                for (int x = 0; x < n; x++) r[x] += z * q[x];
            }
            float *rl = c + (size_t)(h - 1) * w, *ql = rl - w;
            for (int x = 0; x < n; x++) rl[x] = (z / (z * z - 1.f)) * (rl[x] + z * ql[x]);
            for (int y = h - 2; y >= 0; y--) {
                float *r = c + (size_t)y * w, *q = r + w;
                for (int x = 0; x < n; x++) r[x] = z * (q[x] - r[x]);
            }
        }
    }
}

/* 1 / sqrt(x) for x > 0 to ~1e-6 relative: the classic bit-level first guess
 * refined by three Newton steps, in plain vector arithmetic (no math-library
 * call, so it stays vectorised at -O2 on every target) */
#define rsqrt8(a) rsqrt8_(&(a))
INL v8f rsqrt8_(const v8f *px)
{
    v8f x = *px;
    v8i xi;
    memcpy(&xi, &x, sizeof xi);
    v8i yi = 0x5f3759df - (xi >> 1);
    v8f y;
    memcpy(&y, &yi, sizeof y);
    v8f hx = 0.5f * x;
    y = y * (1.5f - hx * y * y);
    y = y * (1.5f - hx * y * y);
    y = y * (1.5f - hx * y * y);
    return y;
}

/* B-spline weights of taps -1, 0, 1, 2 at eight fractions t, and of the derivative */
INL void bs_weights8(const v8f *pt, v8f b[4], v8f db[4])
{
    v8f t = *pt, t2 = t * t, t3 = t2 * t, s = 1.f - t;
    b[0] = s * s * s * (1.f / 6);
    b[1] = (3.f * t3 - 6.f * t2 + 4.f) * (1.f / 6);
    b[2] = (-3.f * t3 + 3.f * t2 + 3.f * t + 1.f) * (1.f / 6);
    b[3] = t3 * (1.f / 6);
    db[0] = -0.5f * s * s;
    db[1] = 1.5f * t2 - 2.f * t;
    db[2] = -1.5f * t2 + t + 0.5f;
    db[3] = 0.5f * t2;
}

typedef float v4f __attribute__((vector_size(16)));

INL v4f load4(const float *p)
{
    v4f r;
    memcpy(&r, p, sizeof r);
    return r;
}

/* the three splines (coefficients c[0..2]) at one point with base tap (bx, by)
 * and weights wx, dx (columns), wy, dy (rows): o[3k..3k+2] = { f, df/dx, df/dy }
 * of spline k. The four rows of taps are combined first, four columns at
 * once, then against the column weights; dis_cuda.cu sums in the same order. */
INL void bs_eval3(float *const *c, int w, int h, int bx, int by, v4f X, v4f DX, const float wy[4],
                  const float dy[4], float o[9])
{
    float y0 = wy[0], y1 = wy[1], y2 = wy[2], y3 = wy[3], e0 = dy[0], e1 = dy[1], e2 = dy[2], e3 = dy[3];
    int inside = bx >= 1 && by >= 1 && bx + 2 < w && by + 2 < h;
    size_t o0 = (size_t)(by - 1) * w + (bx - 1);
#pragma GCC unroll 3
    for (int k = 0; k < 3; k++) {
        v4f R0, R1, R2, R3;
        if (inside) {
            const float *r = c[k] + o0;
            R0 = load4(r);
            R1 = load4(r + w);
            R2 = load4(r + 2 * (size_t)w);
            R3 = load4(r + 3 * (size_t)w);
        } else {
            v4f R[4];
            for (int j = 0; j < 4; j++) {
                const float *r = c[k] + (size_t)mirror(by - 1 + j, h) * w;
                R[j] = (v4f){ r[mirror(bx - 1, w)], r[mirror(bx, w)], r[mirror(bx + 1, w)], r[mirror(bx + 2, w)] };
            }
            R0 = R[0]; R1 = R[1]; R2 = R[2]; R3 = R[3];
        }
        v4f V = y0 * R0 + y1 * R1 + y2 * R2 + y3 * R3;
        v4f D = e0 * R0 + e1 * R1 + e2 * R2 + e3 * R3;
        v4f a = X * V, b = DX * V, e = X * D;
        o[3 * k] = (a[0] + a[1]) + (a[2] + a[3]);
        o[3 * k + 1] = (b[0] + b[1]) + (b[2] + b[3]);
        o[3 * k + 2] = (e[0] + e[1]) + (e[2] + e[3]);
    }
}

#define sel8(m, a, b) sel8_(&(m), &(a), &(b))
INL v8f sel8_(const v8i *pm, const v8f *pa, const v8f *pb)
{
    v8f a = *pa, b = *pb;
    v8i m = *pm, ai, bi;
    memcpy(&ai, &a, sizeof ai);
    memcpy(&bi, &b, sizeof bi);
    ai = (ai & m) | (bi & ~m);
    memcpy(&a, &ai, sizeof a);
    return a;
}

/* The refinement's inputs for a level, eight pixels of a row at a time in
 * natural order (each pixel on its own: no order matters), then written to
 * the two colours' split planes: even lanes to one, odd lanes to the other. */
HOT static void job_var_derivs(void *ctx, int y0, int y1, int worker)
{
    struct var_job *j = ctx;
    struct dis *d = j->d;
    const struct level *L = j->L;
    int w = L->w, h = L->h, S = j->rb.S;
    const float *I0 = L->I0;
    float z2 = d->p.zeta * d->p.zeta;
    const v8f iota = { 0, 1, 2, 3, 4, 5, 6, 7 }, zero8 = { 0 };
    for (int y = y0; y < y1; y++) {
        const float *r = I0 + (size_t)y * w;
        const float *ru = I0 + (size_t)mirror(y - 1, h) * w, *rd = I0 + (size_t)mirror(y + 1, h) * w;
        const float *ru2 = I0 + (size_t)mirror(y - 2, h) * w, *rd2 = I0 + (size_t)mirror(y + 2, h) * w;
        const float *Ur = d->U + (size_t)y * w, *Vr = d->V + (size_t)y * w;
        for (int xa = 0; xa < w; xa += 8) {
            int n = w - xa < 8 ? w - xa : 8;
            v8f U0 = { 0 }, V0 = { 0 };
            if (n == 8) { U0 = load8(Ur + xa); V0 = load8(Vr + xa); }
            else for (int l = 0; l < n; l++) { U0[l] = Ur[xa + l]; V0[l] = Vr[xa + l]; }
            /* the warped points; outside the frame (or a lane past the row's
             * end) there is no data term */
            v8f FX = ((float)xa + iota) + U0, FY = (float)y + V0;
            v8i in = (FX >= 0.f) & (FY >= 0.f) & (FX <= (float)(w - 1)) & (FY <= (float)(h - 1)) &
                     (iota < (float)n);
            FX = sel8(in, FX, zero8);
            FY = sel8(in, FY, zero8);
            v8i BX = __builtin_convertvector(FX, v8i), BY = __builtin_convertvector(FY, v8i); /* floor: >= 0 */
            v8f WX[4], DXW[4], WY[4], DYW[4];
            v8f TX = FX - __builtin_convertvector(BX, v8f), TY = FY - __builtin_convertvector(BY, v8f);
            bs_weights8(&TX, WX, DXW);
            bs_weights8(&TY, WY, DYW);
            float wy[4][8], dy[4][8], wx[4][8], dx[4][8];
            memcpy(wy, WY, sizeof wy);
            memcpy(dy, DYW, sizeof dy);
            memcpy(wx, WX, sizeof wx);
            memcpy(dx, DXW, sizeof dx);
            /* I1 and its gradients gx, gy at the warped points (value and derivatives), lane by lane */
            float o[9][8];
            for (int l = 0; l < 8; l++) {
                float ol[9] = { 0 };
                if (in[l]) {
                    float wyl[4] = { wy[0][l], wy[1][l], wy[2][l], wy[3][l] };
                    float dyl[4] = { dy[0][l], dy[1][l], dy[2][l], dy[3][l] };
                    v4f X = { wx[0][l], wx[1][l], wx[2][l], wx[3][l] }, DX = { dx[0][l], dx[1][l], dx[2][l], dx[3][l] };
                    bs_eval3(d->bs, w, h, BX[l], BY[l], X, DX, wyl, dyl, ol);
                }
                for (int f = 0; f < 9; f++) o[f][l] = ol[f];
            }
            /* I0's gradients at the pixel by the same central differences, and their
             * central differences (mirror boundary, as the spline's) */
            v8f C, XP, XM, XP2, XM2, RD, RU, RD2, RU2, RDP, RDM, RUP, RUM;
            if (xa >= 2 && xa + 10 <= w) {
                const float *p = r + xa;
                C = load8(p); XP = load8(p + 1); XM = load8(p - 1); XP2 = load8(p + 2); XM2 = load8(p - 2);
                RD = load8(rd + xa); RU = load8(ru + xa); RD2 = load8(rd2 + xa); RU2 = load8(ru2 + xa);
                RDP = load8(rd + xa + 1); RDM = load8(rd + xa - 1); RUP = load8(ru + xa + 1); RUM = load8(ru + xa - 1);
            } else {
                for (int l = 0; l < 8; l++) {
                    int x = xa + l < w ? xa + l : w - 1;
                    int xm = mirror(x - 1, w), xp = mirror(x + 1, w), xm2 = mirror(x - 2, w), xp2 = mirror(x + 2, w);
                    C[l] = r[x]; XP[l] = r[xp]; XM[l] = r[xm]; XP2[l] = r[xp2]; XM2[l] = r[xm2];
                    RD[l] = rd[x]; RU[l] = ru[x]; RD2[l] = rd2[x]; RU2[l] = ru2[x];
                    RDP[l] = rd[xp]; RDM[l] = rd[xm]; RUP[l] = ru[xp]; RUM[l] = ru[xm];
                }
            }
            v8f g0x = 0.5f * (XP - XM), g0y = 0.5f * (RD - RU);
            v8f g0xx = 0.25f * (XP2 - 2.f * C + XM2);
            v8f g0yy = 0.25f * (RD2 - 2.f * C + RU2);
            v8f g0xy = 0.25f * (RDP - RDM - RUP + RUM);
            v8f O[9];
            memcpy(O, o, sizeof O);
            /* averaging both images' derivatives makes the linearisation symmetric */
            v8f Ix = 0.5f * (g0x + O[1]), Iy = 0.5f * (g0y + O[2]), Iz = O[0] - C;
            v8f Ixx = 0.5f * (g0xx + O[4]), Ixy = 0.25f * (2.f * g0xy + O[5] + O[7]), Iyy = 0.5f * (g0yy + O[8]);
            v8f Ixz = O[3] - g0x, Iyz = O[6] - g0y;
            /* the normalisation of the data terms (see job_var_data) is fixed
             * for the level: fold it into the derivatives once */
            v8f NB = Ix * Ix + Iy * Iy + z2, NG = Ixx * Ixx + 2.f * Ixy * Ixy + Iyy * Iyy + z2;
            v8f SB = rsqrt8(NB), SG = rsqrt8(NG);
            v8f OUT[VD_PER_COLOR] = { Ix * SB, Iy * SB, Iz * SB, Ixx * SG, Ixy * SG, Iyy * SG, Ixz * SG, Iyz * SG, U0, V0 };
            for (int f = VD_IX; f <= VD_IYZ; f++) OUT[f] = sel8(in, OUT[f], zero8);
            /* even lanes (x even) to one colour, odd lanes to the other, at entries xa/2 .. */
            size_t q = (size_t)(y + 1) * S + 1 + (xa >> 1);
            int ke = y & 1;
            float *dst[2][VD_PER_COLOR + 2];
            for (int c = 0; c < 2; c++) {
                int k = c ? 1 - ke : ke;
                for (int f = 0; f < VD_PER_COLOR; f++) dst[c][f] = j->vd[k][f] + q;
                dst[c][VD_PER_COLOR] = j->rb.p[k][RB_U] + q;
                dst[c][VD_PER_COLOR + 1] = j->rb.p[k][RB_V] + q;
            }
            for (int f = 0; f < VD_PER_COLOR + 2; f++) {
                v8f o8 = f < VD_PER_COLOR ? OUT[f] : f == VD_PER_COLOR ? U0 : V0;
                v4f ev = { o8[0], o8[2], o8[4], o8[6] }, od = { o8[1], o8[3], o8[5], o8[7] };
                if (n == 8) {
                    memcpy(dst[0][f], &ev, sizeof ev);
                    memcpy(dst[1][f], &od, sizeof od);
                } else {
                    for (int l = 0; l < n; l++) dst[l & 1][f][l >> 1] = o8[l];
                }
            }
        }
    }
}

/* smoothness weights for the current (u, v), on the split planes: forward
 * differences; the weight of a pixel serves its edges to the right and
 * below, so it is written as its own WR, WD and as the WL of its right
 * neighbour and the WU of the one below (both of the other colour). Weights
 * of edges leaving the frame are never written: they stay 0 from the memset
 * in variational(). */
INL float smooth_w(float al, float ux, float uy, float vx, float vy)
{
    return al / sqrtf(ux * ux + uy * uy + vx * vx + vy * vy + EPS2);
}

HOT static void job_var_smooth(void *ctx, int y0, int y1, int worker)
{
    struct var_job *j = ctx;
    int w = j->L->w, h = j->L->h, S = j->rb.S;
    float al = j->d->p.alpha;
    for (int y = y0; y < y1; y++)
        for (int k = 0; k < 2; k++) {
            int s = (y + k) & 1, cnt = (w - s + 1) / 2, last = y == h - 1;
            size_t row = (size_t)(y + 1) * S + 1;
            float *const *P = j->rb.p[k], *const *O = j->rb.p[1 - k];
            const float *u = P[RB_U] + row, *v = P[RB_V] + row;
            const float *ur = O[RB_U] + row + s, *vr = O[RB_V] + row + s; /* right neighbours */
            const float *ud = O[RB_U] + row + S, *vd = O[RB_V] + row + S; /* neighbours below */
            float *wr = P[RB_WR] + row, *wd = P[RB_WD] + row;
            float *wl = O[RB_WL] + row + s, *wu = O[RB_WU] + row + S;
            /* the pixel at x = w - 1 has no right edge: left to the scalar tail */
            int cv = 2 * (cnt - 1) + s == w - 1 ? cnt - 1 : cnt;
            int m = 0;
            for (; m + 8 <= cv; m += 8) {
                v8f U = load8(u + m), V = load8(v + m);
                v8f ux = load8(ur + m) - U, vx = load8(vr + m) - V;
                v8f n = ux * ux + vx * vx + EPS2;
                if (!last) {
                    v8f uy = load8(ud + m) - U, vy = load8(vd + m) - V;
                    n += uy * uy + vy * vy;
                }
                v8f sm = al * rsqrt8(n);
                memcpy(wr + m, &sm, sizeof sm);
                memcpy(wl + m, &sm, sizeof sm);
                if (!last) {
                    memcpy(wd + m, &sm, sizeof sm);
                    memcpy(wu + m, &sm, sizeof sm);
                }
            }
            for (; m < cnt; m++) {
                int edge = m >= cv;
                float ux = edge ? 0.f : ur[m] - u[m], vx = edge ? 0.f : vr[m] - v[m];
                float uy = last ? 0.f : ud[m] - u[m], vy = last ? 0.f : vd[m] - v[m];
                float sm = smooth_w(al, ux, uy, vx, vy);
                if (!edge) { wr[m] = sm; wl[m] = sm; }
                if (!last) { wd[m] = sm; wu[m] = sm; }
            }
        }
}

/* data-term coefficients for the current (u, v), folded with the
 * smoothness weights into what one SOR update needs; every input and
 * output is a contiguous run of one colour's split planes */
HOT static void job_var_data(void *ctx, int y0, int y1, int worker)
{
    struct var_job *j = ctx;
    struct dis *d = j->d;
    int w = j->L->w, S = j->rb.S;
    float de = d->p.delta, ga = d->p.gamma, om = d->p.omega;
    for (int y = y0; y < y1; y++)
        for (int k = 0; k < 2; k++) {
            int s = (y + k) & 1, cnt = (w - s + 1) / 2;
            size_t row = (size_t)(y + 1) * S + 1;
            const float *const *VD = (const float *const *)j->vd[k];
            float *const *P = j->rb.p[k];
            const float *ix = VD[VD_IX] + row, *iy = VD[VD_IY] + row, *iz = VD[VD_IZ] + row;
            const float *ixx = VD[VD_IXX] + row, *ixy = VD[VD_IXY] + row, *iyy = VD[VD_IYY] + row;
            const float *ixz = VD[VD_IXZ] + row, *iyz = VD[VD_IYZ] + row;
            const float *u0 = VD[VD_U0] + row, *v0 = VD[VD_V0] + row;
            const float *u = P[RB_U] + row, *v = P[RB_V] + row;
            const float *wl = P[RB_WL] + row, *wr = P[RB_WR] + row, *wu = P[RB_WU] + row, *wd = P[RB_WD] + row;
            float *pa12 = P[RB_A12] + row, *pb1 = P[RB_B1] + row, *pb2 = P[RB_B2] + row;
            float *pi11 = P[RB_ID11] + row, *pi22 = P[RB_ID22] + row;
            /* eight pixels per step; the last partial vector goes through copies */
            for (int m = 0; m < cnt; m += 8) {
                int nv = cnt - m < 8 ? cnt - m : 8;
                v8f X[14];
                const float *src[14] = { ix, iy, iz, ixx, ixy, iyy, ixz, iyz, u0, v0, u, v, wl, wr };
                for (int f = 0; f < 14; f++) {
                    if (nv == 8) X[f] = load8(src[f] + m);
                    else {
                        X[f] = (v8f){ 0 };
                        for (int l = 0; l < nv; l++) X[f][l] = src[f][m + l];
                    }
                }
                v8f WU, WD;
                if (nv == 8) { WU = load8(wu + m); WD = load8(wd + m); }
                else {
                    WU = WD = (v8f){ 0 };
                    for (int l = 0; l < nv; l++) { WU[l] = wu[m + l]; WD[l] = wd[m + l]; }
                }
                v8f Ix = X[0], Iy = X[1], Iz = X[2], Ixx = X[3], Ixy = X[4], Iyy = X[5], Ixz = X[6], Iyz = X[7];
                v8f U0 = X[8], V0 = X[9];
                v8f a = X[10] - U0, b = X[11] - V0;
                v8f rb = Iz + Ix * a + Iy * b;
                v8f rgx = Ixz + Ixx * a + Ixy * b, rgy = Iyz + Ixy * a + Iyy * b;
                /* constraint normalisation (Zimmer et al., IJCV 2011): each data term
                 * is divided by the squared norm of its spatial gradient, so its
                 * residual reads as a distance in pixels, not in grey levels; the
                 * derivatives come pre-scaled by that norm (job_var_derivs) */
                v8f nb = rb * rb + EPS2, ng = rgx * rgx + rgy * rgy + EPS2;
                v8f wdt = de * rsqrt8(nb), wg = ga * rsqrt8(ng);
                v8f a11 = wdt * Ix * Ix + wg * (Ixx * Ixx + Ixy * Ixy);
                v8f a12 = wdt * Ix * Iy + wg * (Ixx * Ixy + Ixy * Iyy);
                v8f a22 = wdt * Iy * Iy + wg * (Ixy * Ixy + Iyy * Iyy);
                v8f b1 = -(wdt * Ix * Iz + wg * (Ixx * Ixz + Ixy * Iyz));
                v8f b2 = -(wdt * Iy * Iz + wg * (Ixy * Ixz + Iyy * Iyz));
                v8f sw = X[12] + X[13] + WU + WD;
                /* A [du dv] = b  <=>  A [u v] = b + A [U0 V0] */
                v8f B1 = b1 + a11 * U0 + a12 * V0, B2 = b2 + a12 * U0 + a22 * V0;
                /* om / (a + sw), 0 where a pixel has no equation at all */
                v8f d11 = a11 + sw, d22 = a22 + sw;
                v8i m11 = d11 > 0, m22 = d22 > 0, i11, i22;
                v8f q11 = om / d11, q22 = om / d22;
                memcpy(&i11, &q11, sizeof i11);
                memcpy(&i22, &q22, sizeof i22);
                i11 &= m11;
                i22 &= m22;
                memcpy(&q11, &i11, sizeof q11);
                memcpy(&q22, &i22, sizeof q22);
                v8f O[5] = { a12, B1, B2, q11, q22 };
                float *dst[5] = { pa12, pb1, pb2, pi11, pi22 };
                for (int f = 0; f < 5; f++) {
                    if (nv == 8) memcpy(dst[f] + m, &O[f], sizeof O[f]);
                    else for (int l = 0; l < nv; l++) dst[f][m + l] = O[f][l];
                }
            }
        }
}

/* one SOR half-sweep on row y, colour k */
INL void sor_row(const struct var_job *j, int y, int k)
{
    int w = j->L->w, S = j->rb.S;
    float om1 = 1.f - j->d->p.omega;
    float *const *P = j->rb.p[k], *const *O = j->rb.p[1 - k];
    {
        int s = (y + k) & 1, cnt = (w - s + 1) / 2;
        size_t row = (size_t)(y + 1) * S + 1;
        const float *restrict b1 = P[RB_B1] + row, *restrict b2 = P[RB_B2] + row, *restrict a12 = P[RB_A12] + row;
        const float *restrict i11 = P[RB_ID11] + row, *restrict i22 = P[RB_ID22] + row;
        const float *restrict wl = P[RB_WL] + row, *restrict wr = P[RB_WR] + row;
        const float *restrict wu = P[RB_WU] + row, *restrict wd = P[RB_WD] + row;
        float *restrict u = P[RB_U] + row, *restrict v = P[RB_V] + row;
        const float *restrict ou = O[RB_U] + row, *restrict ov = O[RB_V] + row;
        const float *restrict oul = ou + s - 1, *restrict ovl = ov + s - 1;
        const float *restrict ouu = ou - S, *restrict ovu = ov - S, *restrict oud = ou + S, *restrict ovd = ov + S;
        int m = 0;
        for (; m + 8 <= cnt; m += 8) {
            /* eight pixels of one colour at once: their neighbours are all of the other colour */
            v8f su = load8(wl + m) * load8(oul + m) + load8(wr + m) * load8(oul + m + 1) +
                     load8(wu + m) * load8(ouu + m) + load8(wd + m) * load8(oud + m);
            v8f sv = load8(wl + m) * load8(ovl + m) + load8(wr + m) * load8(ovl + m + 1) +
                     load8(wu + m) * load8(ovu + m) + load8(wd + m) * load8(ovd + m);
            v8f vv = load8(v + m), a = load8(a12 + m);
            v8f nu = om1 * load8(u + m) + load8(i11 + m) * (load8(b1 + m) + su - a * vv);
            v8f nv = om1 * vv + load8(i22 + m) * (load8(b2 + m) + sv - a * nu);
            memcpy(u + m, &nu, sizeof nu);
            memcpy(v + m, &nv, sizeof nv);
        }
        for (; m < cnt; m++) {
            /* neighbours are all of the other colour: this colour's updates are independent */
            float su = wl[m] * oul[m] + wr[m] * oul[m + 1] + wu[m] * ouu[m] + wd[m] * oud[m];
            float sv = wl[m] * ovl[m] + wr[m] * ovl[m + 1] + wu[m] * ovu[m] + wd[m] * ovd[m];
            /* SOR with the relaxation folded into id11, id22: u <- (1-w) u + w (b + s - a12 v) / (a11 + sum w) */
            float nu = om1 * u[m] + i11[m] * (b1[m] + su - a12[m] * v[m]);
            v[m] = om1 * v[m] + i22[m] * (b2[m] + sv - a12[m] * nu);
            u[m] = nu;
        }
    }
}

/* A red-black sweep (colour 0, then colour 1 on every row) over bands of
 * SOR_BAND rows, so that colour 1 of a row follows colour 0 of the row below
 * while both are still in cache: within a band, colour 0 of row y, then
 * colour 1 of row y - 1, whose neighbours (colour 0 of rows y - 2 .. y) are
 * final by then; colour 0 of row y still reads colour 1 of rows y - 1 .. y + 1
 * from the previous half-sweep, as it must. The first and the last row of a
 * band need colour 0 of the neighbouring bands, which other threads may be
 * working on: job_var_sor_edge does their colour 1 afterwards. Every update
 * reads exactly what it reads in two separate half-sweeps, so the result is
 * the same, bit for bit, whatever the thread count. */
#define SOR_BAND 16
HOT static void job_var_sor(void *ctx, int b0, int b1, int worker)
{
    struct var_job *j = ctx;
    int h = j->L->h;
    for (int b = b0; b < b1; b++) {
        int ya = b * SOR_BAND, yb = ya + SOR_BAND < h ? ya + SOR_BAND : h;
        for (int y = ya; y < yb; y++) {
            sor_row(j, y, 0);
            if (y - 1 > ya && y - 1 < yb - 1) sor_row(j, y - 1, 1);
        }
    }
}

HOT static void job_var_sor_edge(void *ctx, int b0, int b1, int worker)
{
    struct var_job *j = ctx;
    int h = j->L->h;
    for (int b = b0; b < b1; b++) {
        int ya = b * SOR_BAND, yb = ya + SOR_BAND < h ? ya + SOR_BAND : h;
        sor_row(j, ya, 1);
        if (yb - 1 > ya) sor_row(j, yb - 1, 1);
    }
}

/* back from the split planes to the full-size flow */
HOT static void job_var_gather(void *ctx, int y0, int y1, int worker)
{
    struct var_job *j = ctx;
    int w = j->L->w, S = j->rb.S;
    for (int y = y0; y < y1; y++)
        for (int x = 0; x < w; x++) {
            int k = (x + y) & 1;
            size_t q = (size_t)(y + 1) * S + 1 + (x >> 1), i = (size_t)y * w + x;
            j->d->U[i] = j->rb.p[k][RB_U][q];
            j->d->V[i] = j->rb.p[k][RB_V][q];
        }
}

/* ---- low-pass of the refinement's inputs ----
 * Whatever interpolates I1 between pixels (the spline of the data terms
 * above) reads texture near the sampling limit of the level wrongly: a
 * sinusoid at 0.4 cycles per pixel shifted by a fraction of a pixel comes
 * back with the wrong phase and amplitude, whichever kernel. Texture finer
 * than 4 px at full resolution sits there at the half-resolution level
 * where medium ends, and with natural (1/f) spectra every octave carries
 * the same gradient energy, so these frequencies weigh as much in the data
 * terms as the well-sampled ones and pull the minimiser off the true shift
 * (analytic set, tune part: the refinement run to convergence ends 0.02 px
 * off on a 320x240 translation). Both images are low-passed with a Gaussian
 * of p.smooth pixels of the level before the data terms are taken (as Brox
 * et al. 2004 pre-smooth); at sigma 0.7 a component at 0.4 cycles/px keeps
 * 21% of its amplitude, one at 0.1 keeps 91%. The patch search still reads
 * the unsmoothed pyramid. */

struct sm_job {
    const struct level *L;
    float *dst[2], *row;
    float k[SM_MAXR + 1];
    int r;
};

/* vertical then horizontal Gaussian of I0 and I1, mirror boundary, one output row per index */
HOT static void job_smooth(void *ctx, int y0, int y1, int worker)
{
    struct sm_job *j = ctx;
    int w = j->L->w, h = j->L->h, r = j->r;
    float *t = j->row + (size_t)worker * (w + 2 * SM_MAXR) + SM_MAXR;
    for (int im = 0; im < 2; im++) {
        const float *I = im ? j->L->I1 : j->L->I0;
        for (int y = y0; y < y1; y++) {
            const float *c = I + (size_t)y * w;
            const float *ra[SM_MAXR + 1], *rb[SM_MAXR + 1];
            for (int i = 1; i <= r; i++) {
                ra[i] = I + (size_t)mirror(y - i, h) * w;
                rb[i] = I + (size_t)mirror(y + i, h) * w;
            }
            /* eight pixels at a time, each summed in the scalar tail's order */
            int x = 0;
            for (; x + 8 <= w; x += 8) {
                v8f a = j->k[0] * load8(c + x);
                for (int i = 1; i <= r; i++) a += j->k[i] * (load8(ra[i] + x) + load8(rb[i] + x));
                memcpy(t + x, &a, sizeof a);
            }
            for (; x < w; x++) {
                float a = j->k[0] * c[x];
                for (int i = 1; i <= r; i++) a += j->k[i] * (ra[i][x] + rb[i][x]);
                t[x] = a;
            }
            for (int i = 1; i <= r; i++) {
                t[-i] = t[mirror(-i, w)];
                t[w - 1 + i] = t[mirror(w - 1 + i, w)];
            }
            float *o = j->dst[im] + (size_t)y * w;
            for (x = 0; x + 8 <= w; x += 8) {
                v8f a = j->k[0] * load8(t + x);
                for (int i = 1; i <= r; i++) a += j->k[i] * (load8(t + x - i) + load8(t + x + i));
                memcpy(o + x, &a, sizeof a);
            }
            for (; x < w; x++) {
                float a = j->k[0] * t[x];
                for (int i = 1; i <= r; i++) a += j->k[i] * (t[x - i] + t[x + i]);
                o[x] = a;
            }
        }
    }
}

/* What the sweeps read at a level but nothing there writes: the padding
 * entries of u, v (read as neighbours, with weight 0: they must be finite)
 * and the weights of the edges that leave the frame (0). Everything else is
 * written (job_var_derivs, job_var_smooth, job_var_data) before it is read. */
static void rb_clear_edges(const struct rb *rb, int w, int h)
{
    int S = rb->S;
    for (int k = 0; k < 2; k++) {
        for (int f = RB_U; f <= RB_V; f++) {
            float *p = rb->p[k][f];
            memset(p, 0, sizeof(float) * S);
            memset(p + (size_t)(h + 1) * S, 0, sizeof(float) * S);
            for (int y = 0; y < h; y++) {
                int cnt = (w - ((y + k) & 1) + 1) / 2;
                float *row = p + (size_t)(y + 1) * S;
                row[0] = 0.f;
                memset(row + 1 + cnt, 0, sizeof(float) * (S - 1 - cnt));
            }
        }
        memset(rb->p[k][RB_WU] + S + 1, 0, sizeof(float) * (S - 1));
        memset(rb->p[k][RB_WD] + (size_t)h * S + 1, 0, sizeof(float) * (S - 1));
        for (int y = 0; y < h; y++) {
            /* x = 0 has colour y & 1 (entry 0); x = w - 1 has colour (w - 1 + y) & 1 */
            if ((y & 1) == k) rb->p[k][RB_WL][(size_t)(y + 1) * S + 1] = 0.f;
            if (((w - 1 + y) & 1) == k) rb->p[k][RB_WR][(size_t)(y + 1) * S + 1 + ((w - 1) >> 1)] = 0.f;
        }
    }
}

static void variational(struct dis *d, const struct level *L)
{
    if (d->p.var_outer <= 0) return;
    struct var_job j = { .d = d, .L = L };
    j.rb.S = (L->w + 1) / 2 + 2;
    size_t plane = (size_t)(L->h + 2) * j.rb.S;
    for (int k = 0; k < 2; k++) {
        for (int f = 0; f < RB_PER_COLOR; f++) j.rb.p[k][f] = d->rbuf + (size_t)(k * RB_PER_COLOR + f) * plane;
        for (int f = 0; f < VD_PER_COLOR; f++) j.vd[k][f] = d->vbuf + (size_t)(k * VD_PER_COLOR + f) * plane;
    }
    rb_clear_edges(&j.rb, L->w, L->h);
    struct level Ls = *L;
    if (d->p.smooth > 0) {
        struct sm_job sj = { .L = L, .dst = { d->sm[0], d->sm[1] }, .row = d->smrow };
        float sg = d->p.smooth, sum = 0;
        sj.r = (int)ceilf(3 * sg);
        if (sj.r > SM_MAXR) sj.r = SM_MAXR;
        for (int i = 0; i <= sj.r; i++) sum += (i ? 2 : 1) * (sj.k[i] = expf(-0.5f * i * i / (sg * sg)));
        for (int i = 0; i <= sj.r; i++) sj.k[i] /= sum;
        pool_for(d->pool, L->h, job_smooth, &sj);
        Ls.I0 = d->sm[0];
        Ls.I1 = d->sm[1];
        j.L = &Ls;
    }
    struct bs_job bj = { d, j.L };
    pool_for(d->pool, L->h, job_bs_rows, &bj);
    pool_for(d->pool, (L->w + BS_COLS - 1) / BS_COLS, job_bs_cols, &bj);
    pool_for(d->pool, L->h, job_var_derivs, &j);
    for (int o = 0; o < d->p.var_outer; o++) {
        pool_for(d->pool, L->h, job_var_smooth, &j);
        pool_for(d->pool, L->h, job_var_data, &j);
        int nb = (L->h + SOR_BAND - 1) / SOR_BAND;
        for (int s = 0; s < d->p.var_inner; s++) {
            pool_for(d->pool, nb, job_var_sor, &j);
            pool_for(d->pool, nb, job_var_sor_edge, &j);
        }
    }
    pool_for(d->pool, L->h, job_var_gather, &j);
}

/* ---- coarse-to-fine driver ---- */

struct up_job {
    const float *su, *sv;
    int sw, sh;
    float *du, *dv;
    int dw, dh;
    float scale; /* size ratio: destination pixel x sits at (x + 0.5) / scale - 0.5 in the source */
};

/* destination pixels xa..xb-1 of row y (source rows o0, o1 at weight ay), bilinear */
INL void job_upsample_span(const struct up_job *j, int y, float ay, size_t o0, size_t o1, int xa, int xb)
{
    float inv = 1.f / j->scale, sc = j->scale;
    int sw = j->sw;
    float *du = j->du + (size_t)y * j->dw, *dv = j->dv + (size_t)y * j->dw;
    for (int x = xa; x < xb; x++) {
        float sx = (x + 0.5f) * inv - 0.5f;
        if (sx < 0) sx = 0;
        if (sx > sw - 1) sx = (float)(sw - 1);
        int ix = (int)sx;
        if (ix > sw - 2) ix = sw > 1 ? sw - 2 : 0;
        float ax = sx - ix;
        int ix1 = sw > 1 ? ix + 1 : ix;
        float a = j->su[o0 + ix] + ax * (j->su[o0 + ix1] - j->su[o0 + ix]);
        float b = j->su[o1 + ix] + ax * (j->su[o1 + ix1] - j->su[o1 + ix]);
        du[x] = sc * (a + ay * (b - a));
        a = j->sv[o0 + ix] + ax * (j->sv[o0 + ix1] - j->sv[o0 + ix]);
        b = j->sv[o1 + ix] + ax * (j->sv[o1 + ix1] - j->sv[o1 + ix]);
        dv[x] = sc * (a + ay * (b - a));
    }
}

HOT static void job_upsample(void *ctx, int y0, int y1, int worker)
{
    struct up_job *j = ctx;
    float inv = 1.f / j->scale, sc = j->scale;
    int sw = j->sw, sh = j->sh;
    for (int y = y0; y < y1; y++) {
        /* the row pair and its weight are fixed along a destination row */
        float sy = (y + 0.5f) * inv - 0.5f;
        if (sy < 0) sy = 0;
        if (sy > sh - 1) sy = (float)(sh - 1);
        int iy = (int)sy;
        if (iy > sh - 2) iy = sh > 1 ? sh - 2 : 0;
        float ay = sy - iy;
        size_t o0 = (size_t)iy * sw, o1 = sh > 1 ? o0 + sw : o0;
        float *du = j->du + (size_t)y * j->dw, *dv = j->dv + (size_t)y * j->dw;
        int xa = 0, xb = j->dw;
        if (sc == 2.f && sw > 1) {
            /* Doubling: destination 2i + 1 and 2i + 2 sit a quarter and three
             * quarters of the way from source i to i + 1 (weights exact in
             * float), so the interior needs no clamping and no per-pixel
             * coordinates; the same arithmetic as the general loop below,
             * which still does the two ends. */
            const float *a0 = j->su + o0, *b0 = j->su + o1, *a1 = j->sv + o0, *b1 = j->sv + o1;
            int n = (j->dw - 1) / 2 < sw - 1 ? (j->dw - 1) / 2 : sw - 1;
            int i = 0;
            for (; i + 8 <= n; i += 8) {
                const float *src[2][2] = { { a0, b0 }, { a1, b1 } };
                float *dst[2] = { du, dv };
                for (int f = 0; f < 2; f++) {
                    v8f A = load8(src[f][0] + i), An = load8(src[f][0] + i + 1);
                    v8f B = load8(src[f][1] + i), Bn = load8(src[f][1] + i + 1);
                    v8f p = A + 0.25f * (An - A), q = B + 0.25f * (Bn - B);
                    v8f r = A + 0.75f * (An - A), s = B + 0.75f * (Bn - B);
                    v8f o1 = sc * (p + ay * (q - p)), o2 = sc * (r + ay * (s - r));
                    float t[16];
                    for (int k = 0; k < 8; k++) {
                        t[2 * k] = o1[k];
                        t[2 * k + 1] = o2[k];
                    }
                    memcpy(dst[f] + 2 * i + 1, t, sizeof t);
                }
            }
            for (; i < n; i++) {
                float p = a0[i] + 0.25f * (a0[i + 1] - a0[i]), q = b0[i] + 0.25f * (b0[i + 1] - b0[i]);
                float r = a0[i] + 0.75f * (a0[i + 1] - a0[i]), s = b0[i] + 0.75f * (b0[i + 1] - b0[i]);
                du[2 * i + 1] = sc * (p + ay * (q - p));
                du[2 * i + 2] = sc * (r + ay * (s - r));
                p = a1[i] + 0.25f * (a1[i + 1] - a1[i]); q = b1[i] + 0.25f * (b1[i + 1] - b1[i]);
                r = a1[i] + 0.75f * (a1[i + 1] - a1[i]); s = b1[i] + 0.75f * (b1[i + 1] - b1[i]);
                dv[2 * i + 1] = sc * (p + ay * (q - p));
                dv[2 * i + 2] = sc * (r + ay * (s - r));
            }
            /* x = 0 and everything from 2n + 1 on take the general path */
            job_upsample_span(j, y, ay, o0, o1, 0, 1);
            xa = 2 * n + 1;
        }
        job_upsample_span(j, y, ay, o0, o1, xa, xb);
    }
}

int dis_compute(struct dis *d, const float *I0, const float *I1, float *u, float *v)
{
    struct dis_params *p = &d->p;
    d->lev[0].I0 = (float *)I0;
    d->lev[0].I1 = (float *)I1;
    for (int l = 1; l < d->nlev; l++) {
        struct lvl_job j = { d, l };
        pool_for(d->pool, d->lev[l].h, job_downsample, &j);
    }
    for (int l = d->finest; l < d->nlev; l++) {
        struct lvl_job j = { d, l };
        pool_for(d->pool, d->lev[l].h, job_gradient, &j);
    }
    d->gm.valid = 0;
    if (p->global) {
        struct level *G = &d->lev[d->gm_level];
        if (gmotion_estimate(G->I0, G->I1, G->w, G->h, d->pool_all, &d->gm) != 0)
            return iso_fail(ISO_EINTERNAL, "out of memory for the dominant motion");
    }
    int pw = 0, ph = 0;
    for (int l = d->coarsest; l >= d->finest; l--) {
        struct level *L = &d->lev[l];
        size_t n = (size_t)L->w * L->h;
        /* a level of a few thousand pixels takes less time than waking the
         * other threads ~70 times (once per parallel loop): run it inline */
        d->pool = n >= SMALL_LEVEL ? d->pool_all : NULL;
        if (l == d->coarsest) {
            memset(d->U, 0, n * sizeof(float));
            memset(d->V, 0, n * sizeof(float));
        } else {
            /* the coarser dense flow, resampled and doubled */
            float *t;
            t = d->U; d->U = d->Uc; d->Uc = t;
            t = d->V; d->V = d->Vc; d->Vc = t;
            struct up_job uj = { d->Uc, d->Vc, pw, ph, d->U, d->V, L->w, L->h, 2.f };
            pool_for(d->pool, L->h, job_upsample, &uj);
        }
        struct patch_job pj = { .d = d, .L = L };
        pj.nx = grid_n(L->w, p->patch, p->stride);
        pj.ny = grid_n(L->h, p->patch, p->stride);
        /* Propagation runs inside horizontal stripes, which is what lets
         * threads work on the patch grid at once. The stripe count depends
         * on the pool only beyond 2 threads, so 1 and 2 threads give
         * bit-identical flow (and every level is striped alike). */
        int nt = pool_threads(d->pool_all);
        pj.nstripes = 2 * nt > 4 ? 2 * nt : 4;
        if (pj.nstripes > pj.ny) pj.nstripes = pj.ny;
        pj.pass = 0;
        /* the search reaches at most SEARCH_REACH px of the frame: at 1280x720
         * and up the search level is 16x or 32x coarser, where +-4 px span a
         * whole period of a 64-96 px periodic texture (analytic set: a plaid
         * translated 2-8 px at 1280x720 came out 58 px off) */
        pj.search = l == d->search_level ? (p->search < (SEARCH_REACH >> l) ? p->search : SEARCH_REACH >> l) : 0;
        /* A +-1 px search adds nothing the descent does not reach by itself
         * (it moves within about a pixel of its start) but false matches: it
         * only happens at 1920x1080 and up, where the search level is 32x
         * coarser and a 64-96 px period sits at 2-3 px, near the box
         * pyramid's aliasing (analytic set, tune part, 1920x1080, medium:
         * combo 13.7 -> 0.057 px mean EPE, lost 2/4 -> 0/4; trans-large 51.9
         * -> 27.0, zoom 13.5 -> 8.0; the other motions unchanged) */
        if (pj.search < 2) pj.search = 0;
        if (d->gm.valid && d->gm.sure) {
            /* level-l pixel x sits at (x + 0.5) 2^(l-g) - 0.5 of the estimate's level g; flow scales by 2^(g-l) */
            double s = ldexp(1.0, l - d->gm_level), o = 0.5 * s - 0.5;
            const double *a = d->gm.a;
            for (int k = 0; k < 2; k++) {
                const double *b = a + 3 * k;
                pj.ga[3 * k] = (float)((b[0] + b[1] * o + b[2] * o) / s);
                pj.ga[3 * k + 1] = (float)b[1];
                pj.ga[3 * k + 2] = (float)b[2];
            }
            pj.gm = 1;
            pj.gm_win = l >= d->gm_level ? GLOBAL_WIN_COARSE : GLOBAL_WIN;
        }
        pool_for(d->pool, pj.nstripes, job_patches, &pj);
        if (p->propagate) {
            pj.pass = 1;
            pool_for(d->pool, pj.nstripes, job_patches, &pj);
        }
        struct dens_job dj = { .d = d, .L = L, .nx = pj.nx, .ny = pj.ny, .band = 16 };
        pool_for(d->pool, (L->h + dj.band - 1) / dj.band, job_densify, &dj);
        variational(d, L);
        pw = L->w;
        ph = L->h;
    }
    d->pool = d->pool_all;
    if (p->var_below > 0) {
        /* finer levels without patches: upsample, then a shorter variational
         * refinement, which restores detail the patch grid cannot resolve */
        struct dis_params keep = *p;
        p->var_outer = p->var_below;
        for (int l = d->finest - 1; l >= 0; l--) {
            struct level *L = &d->lev[l];
            float *t;
            t = d->U; d->U = d->Uc; d->Uc = t;
            t = d->V; d->V = d->Vc; d->Vc = t;
            struct up_job uj = { d->Uc, d->Vc, pw, ph, d->U, d->V, L->w, L->h, 2.f };
            pool_for(d->pool, L->h, job_upsample, &uj);
            variational(d, L);
            pw = L->w;
            ph = L->h;
        }
        *p = keep;
        memcpy(u, d->U, sizeof(float) * d->w * d->h);
        memcpy(v, d->V, sizeof(float) * d->w * d->h);
    } else if (d->finest == 0) {
        memcpy(u, d->U, sizeof(float) * d->w * d->h);
        memcpy(v, d->V, sizeof(float) * d->w * d->h);
    } else {
        struct up_job uj = { d->U, d->V, pw, ph, u, v, d->w, d->h, (float)(1 << d->finest) };
        pool_for(d->pool, d->h, job_upsample, &uj);
    }
    return 0;
}
