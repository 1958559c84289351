/* wan_vae.c — the Wan2.1 VAE on common/nn.h (see wan_vae.h).
 *
 * The model (Wan2.1 wan/modules/vae.py; diffusers AutoencoderKLWan):
 *   encoder: CausalConv3d(3, c0, 3) -> per level i: num_res_blocks
 *            ResidualBlocks, then (not after the last level) a Resample
 *            "downsample2d" (ZeroPad2d(0,1,0,1) + Conv2d 3x3 stride 2 per
 *            frame) or "downsample3d" (the same, then time_conv, a
 *            CausalConv3d (3,1,1) with stride 2 in time) -> middle
 *            (ResidualBlock, AttentionBlock, ResidualBlock) -> head
 *            (RMS_norm, SiLU, CausalConv3d(c, 2z, 3)) -> conv1 (1x1x1, the
 *            "quant_conv"): mean and log-variance, z channels each.
 *   decoder: conv2 (1x1x1, "post_quant_conv") -> CausalConv3d(z, c, 3) ->
 *            middle -> per level num_res_blocks+1 ResidualBlocks, then an
 *            "upsample2d" (nearest-exact 2x + Conv2d 3x3 to c/2 per frame)
 *            or "upsample3d" (time_conv CausalConv3d (3,1,1) to 2c whose
 *            halves become two frames, then the same) -> head (to RGB),
 *            clamped to [-1, 1].
 *   ResidualBlock: shortcut (1x1x1 conv when channels change) +
 *            conv2(silu(norm2(conv1(silu(norm1(x)))))).
 *   RMS_norm: F.normalize over channels * sqrt(C) * gamma (no bias in 2.1).
 *   AttentionBlock: per frame, one head over the h*w positions of
 *            to_qkv(norm(x)) (1x1 conv), proj (1x1 conv), plus x.
 *
 * Streaming (Wan's feat_cache, CACHE_T = 2): every causal 3x3x3 conv keeps
 * the last two frames of its input; a chunk is convolved as
 * cat(cache, chunk), which equals the whole-sequence causal conv with two
 * zero frames in front. Upsample3d passes the first chunk through without
 * time_conv (Wan's "Rep"), then runs it causally over the later frames with
 * zeros in front; downsample3d passes the first chunk through and then
 * convolves cat(last frame of the previous chunk, chunk) with stride 2.
 * The decoder runs one latent frame per chunk (1 output frame, then
 * `temporal` per latent frame), the encoder a first frame and then chunks
 * of `temporal` frames (one latent frame each).
 *
 * Activations are float32 [C, t, H, W] (channel-first, like PyTorch without
 * the batch); per-frame 2-D operations gather one frame. */
#include "wan_vae.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "nn.h"
#include "nn_wres.h"
#include "plan.h"
#include "sig.h"
#include "weights.h"

/* Wan2.1's published latent statistics (wan/modules/vae.py, WanVAE; also
 * diffusers' AutoencoderKLWan defaults) */
static const float WAN21_MEAN[16] = {
    -0.7571f, -0.7089f, -0.9113f, 0.1075f, -0.1745f, 0.9653f, -0.1517f, 1.5508f,
    0.4134f, -0.0715f, 0.5517f, -0.3632f, -0.1922f, -0.9497f, 0.2503f, -0.2921f };
static const float WAN21_STD[16] = {
    2.8184f, 1.4541f, 2.3275f, 2.6558f, 1.2196f, 1.7708f, 2.6052f, 2.0743f,
    3.2687f, 2.1526f, 2.8652f, 1.5579f, 1.6382f, 1.1253f, 2.8251f, 1.9160f };

#define MAX_BLOCKS 64
#define MAX_TILES WAN_VAE_MAX_TILES

/* a convolution: weight [O, C, kt, kh, kw] (3-D) or [O, C, kh, kw] (2-D) */
struct wv_conv {
    struct nn_w w, b;
    int O, C, kt, kh, kw;
    /* stride-1 convolutions run as one GEMM per kernel tap (conv_shift):
     * the weight re-laid out as float32 [taps, O, C], made once by
     * wan_vae_relay (GPU modes; then registered with nn_wres instead of w),
     * else per call from the mapping (data NULL) */
    struct nn_w wk;
};

struct wv_res {
    int in, out;
    struct nn_w norm1, norm2;   /* gamma [in] / [out] */
    struct wv_conv conv1;       /* [out, in, 3, 3, 3] */
    struct wv_conv conv2;       /* [out, out, 3, 3, 3] */
    int has_shortcut;
    struct wv_conv shortcut;    /* [out, in, 1, 1, 1] */
};

struct wv_attn {
    int C;
    struct nn_w norm;           /* gamma [C] */
    struct wv_conv qkv;         /* [3C, C, 1, 1] */
    struct wv_conv proj;        /* [C, C, 1, 1] */
};

enum { RS_DOWN2D, RS_DOWN3D, RS_UP2D, RS_UP3D };
struct wv_resample {
    int mode, C, O;
    struct wv_conv conv;        /* 2-D: [C, C, 3, 3] down, [C/2, C, 3, 3] up */
    struct wv_conv time_conv;   /* down3d [C, C, 3, 1, 1]; up3d [2C, C, 3, 1, 1] */
};

/* one half: conv_in, a flat list of blocks (residual or resample), middle, head */
struct wv_half {
    int present;
    struct wv_conv conv_in;
    int n_blocks;
    int kind[MAX_BLOCKS];       /* 0 residual, 1 resample */
    struct wv_res res[MAX_BLOCKS];
    struct wv_resample rs[MAX_BLOCKS];
    struct wv_res mid0, mid1;
    struct wv_attn attn;
    struct nn_w head_norm;
    struct wv_conv head;
    struct wv_conv quant;       /* encoder: conv1 [2z, 2z, 1,1,1]; decoder: conv2 [z, z, 1,1,1] */
    uint64_t bytes;
};

struct wan_vae {
    struct wan_vae_config cfg;
    struct wv_half enc, dec;
    float **relaid;          /* the host copies wan_vae_relay made (freed at wan_vae_free) */
    int n_relaid;
};

/* ---------------------------------------------------------------- names */

/* the names a layout gives each role */
struct wv_names {
    const char *conv_in, *mid[3], *head_norm, *head_conv, *quant, *post_quant;
    const char *r_norm1, *r_conv1, *r_norm2, *r_conv2, *r_short;
};
static const struct wv_names DIFFUSERS = {
    "conv_in", { "mid_block.resnets.0", "mid_block.attentions.0", "mid_block.resnets.1" },
    "norm_out.gamma", "conv_out", "quant_conv", "post_quant_conv",
    "norm1.gamma", "conv1", "norm2.gamma", "conv2", "conv_shortcut" };
static const struct wv_names ORIGINAL = {
    "conv1", { "middle.0", "middle.1", "middle.2" },
    "head.0.gamma", "head.2", "conv1", "conv2",
    "residual.0.gamma", "residual.2", "residual.3.gamma", "residual.6", "shortcut" };

struct binder {
    const struct weights *w;
    const char *prefix;
    const struct wv_names *n;
    int diffusers;
    uint64_t *bytes;
};

static const struct wt_tensor *find(const struct binder *b, const char *name)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", b->prefix, name);
    return weights_find(b->w, full);
}

static int wt_float_ok(const struct wt_tensor *t)
{
    return t->dtype == WT_F32 || t->dtype == WT_F16 || t->dtype == WT_BF16 ||
           t->dtype == WT_F8_E4M3 || t->dtype == WT_F8_E5M2;
}

/* name.weight / name.bias with the given shape (n_dims 4 or 5) */
static int bind_conv(const struct binder *b, const char *name, struct wv_conv *cv, int O, int C, int kt,
                     int kh, int kw, int n_dims)
{
    char nm[512];
    int64_t shape[5];
    const struct wt_tensor *t;
    shape[0] = O; shape[1] = C;
    if (n_dims == 5) { shape[2] = kt; shape[3] = kh; shape[4] = kw; }
    else { shape[2] = kh; shape[3] = kw; }
    snprintf(nm, sizeof nm, "%s.weight", name);
    int rc = weights_expect(b->w, b->prefix, nm, n_dims, shape, &t);
    if (rc) return rc;
    if (!wt_float_ok(t) || !t->contiguous)
        return iso_fail(ISO_EDATA, "tensor '%s%s' in '%s': %s weights are not supported", b->prefix, nm,
                        weights_path(b->w), wt_dtype_name(t->dtype));
    cv->w = nn_w_of(t);
    *b->bytes += t->nbytes;
    int64_t bs[1] = { O };
    snprintf(nm, sizeof nm, "%s.bias", name);
    rc = weights_expect(b->w, b->prefix, nm, 1, bs, &t);
    if (rc) return rc;
    if (!wt_float_ok(t))
        return iso_fail(ISO_EDATA, "tensor '%s%s' in '%s': %s is not supported", b->prefix, nm,
                        weights_path(b->w), wt_dtype_name(t->dtype));
    cv->b = nn_w_of(t);
    *b->bytes += t->nbytes;
    cv->O = O; cv->C = C; cv->kt = kt; cv->kh = kh; cv->kw = kw;
    return 0;
}

/* an RMS gamma: [C, 1, 1, 1] (3-D norms) or [C, 1, 1] (the attention's);
 * a flat [C] is accepted too (converted files) */
static int bind_gamma(const struct binder *b, const char *name, int C, int n_dims, struct nn_w *g)
{
    const struct wt_tensor *t = find(b, name);
    if (!t)
        return iso_fail(ISO_EDATA, "tensor '%s%s' missing from '%s'", b->prefix, name, weights_path(b->w));
    int ok = wt_float_ok(t) && t->contiguous && t->nelem == (uint64_t)C && t->shape[0] == C &&
             (t->n_dims == 1 || t->n_dims == n_dims);
    if (!ok)
        return iso_fail(ISO_EDATA, "tensor '%s%s' in '%s': expected %d gammas", b->prefix, name,
                        weights_path(b->w), C);
    *g = nn_w_of(t);
    *b->bytes += t->nbytes;
    return 0;
}

static int bind_res(const struct binder *b, const char *base, int in, int out, struct wv_res *r)
{
    char nm[512];
    int rc;
    r->in = in; r->out = out;
    snprintf(nm, sizeof nm, "%s.%s", base, b->n->r_norm1);
    if ((rc = bind_gamma(b, nm, in, 4, &r->norm1))) return rc;
    snprintf(nm, sizeof nm, "%s.%s", base, b->n->r_conv1);
    if ((rc = bind_conv(b, nm, &r->conv1, out, in, 3, 3, 3, 5))) return rc;
    snprintf(nm, sizeof nm, "%s.%s", base, b->n->r_norm2);
    if ((rc = bind_gamma(b, nm, out, 4, &r->norm2))) return rc;
    snprintf(nm, sizeof nm, "%s.%s", base, b->n->r_conv2);
    if ((rc = bind_conv(b, nm, &r->conv2, out, out, 3, 3, 3, 5))) return rc;
    r->has_shortcut = in != out;
    if (r->has_shortcut) {
        snprintf(nm, sizeof nm, "%s.%s", base, b->n->r_short);
        if ((rc = bind_conv(b, nm, &r->shortcut, out, in, 1, 1, 1, 5))) return rc;
    }
    return 0;
}

static int bind_mid(const struct binder *b, const char *half, int C, struct wv_half *h)
{
    char nm[512];
    int rc;
    snprintf(nm, sizeof nm, "%s.%s", half, b->n->mid[0]);
    if ((rc = bind_res(b, nm, C, C, &h->mid0))) return rc;
    snprintf(nm, sizeof nm, "%s.%s", half, b->n->mid[2]);
    if ((rc = bind_res(b, nm, C, C, &h->mid1))) return rc;
    h->attn.C = C;
    snprintf(nm, sizeof nm, "%s.%s.norm.gamma", half, b->n->mid[1]);
    if ((rc = bind_gamma(b, nm, C, 3, &h->attn.norm))) return rc;
    snprintf(nm, sizeof nm, "%s.%s.to_qkv", half, b->n->mid[1]);
    if ((rc = bind_conv(b, nm, &h->attn.qkv, 3 * C, C, 1, 1, 1, 4))) return rc;
    snprintf(nm, sizeof nm, "%s.%s.proj", half, b->n->mid[1]);
    return bind_conv(b, nm, &h->attn.proj, C, C, 1, 1, 1, 4);
}

static int bind_head(const struct binder *b, const char *half, int C, int O, struct wv_half *h)
{
    char nm[512];
    int rc;
    snprintf(nm, sizeof nm, "%s.%s", half, b->n->head_norm);
    if ((rc = bind_gamma(b, nm, C, 4, &h->head_norm))) return rc;
    snprintf(nm, sizeof nm, "%s.%s", half, b->n->head_conv);
    return bind_conv(b, nm, &h->head, O, C, 3, 3, 3, 5);
}

static void enc_block_name(const struct binder *b, int k, char *nm, size_t n)
{
    snprintf(nm, n, b->diffusers ? "encoder.down_blocks.%d" : "encoder.downsamples.%d", k);
}
/* decoder level i, index j within it (j = nrb+1 is the upsampler) */
static void dec_block_name(const struct binder *b, int nrb, int i, int j, char *nm, size_t n)
{
    if (!b->diffusers) snprintf(nm, n, "decoder.upsamples.%d", i * (nrb + 2) + j);
    else if (j <= nrb) snprintf(nm, n, "decoder.up_blocks.%d.resnets.%d", i, j);
    else snprintf(nm, n, "decoder.up_blocks.%d.upsamplers.0", i);
}

static int has(const struct binder *b, const char *base, const char *leaf)
{
    char nm[512];
    snprintf(nm, sizeof nm, "%s.%s", base, leaf);
    return find(b, nm) != NULL;
}

static int64_t dim0(const struct binder *b, const char *base, const char *leaf, int axis)
{
    char nm[512];
    snprintf(nm, sizeof nm, "%s.%s", base, leaf);
    const struct wt_tensor *t = find(b, nm);
    return t && t->n_dims > axis ? t->shape[axis] : -1;
}

/* ---------------------------------------------------------------- config */

static int json_int_list(json_t *a, int *dst, int max, int *n)
{
    if (!json_is_array(a) || json_array_size(a) > (size_t)max) return -1;
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_t *v = json_array_get(a, i);
        if (json_is_integer(v)) dst[i] = (int)json_integer_value(v);
        else if (json_is_boolean(v)) dst[i] = json_is_true(v);
        else return -1;
    }
    *n = (int)json_array_size(a);
    return 0;
}

static int json_float_list(json_t *a, float *dst, int want)
{
    if (!json_is_array(a) || json_array_size(a) != (size_t)want) return -1;
    for (int i = 0; i < want; i++) {
        json_t *v = json_array_get(a, (size_t)i);
        if (!json_is_number(v)) return -1;
        dst[i] = (float)json_number_value(v);
    }
    return 0;
}

/* config.json of a diffusers AutoencoderKLWan: 1 read, 0 none, <0 error */
static int read_config_json(const char *dir, struct wan_vae_config *c)
{
    char *path = fs_join(dir, "config.json");
    int rc = 0;
    json_t *j = NULL;
    if (!path) return iso_fail(ISO_ETEMPFAIL, "vae: out of memory");
    if (!fs_exists(path)) goto done;
    json_error_t e;
    j = json_load_file(path, 0, &e);
    if (!j || !json_is_object(j)) {
        rc = iso_fail(ISO_EDATA, "cannot read '%s': %s", path, j ? "not an object" : e.text);
        goto done;
    }
    json_t *v;
    const char *bad = NULL;
    int base = (int)json_integer_value(json_object_get(j, "base_dim"));
    int dbase = base;
    if ((v = json_object_get(j, "decoder_base_dim")) && json_is_integer(v)) dbase = (int)json_integer_value(v);
    c->z_dim = (int)json_integer_value(json_object_get(j, "z_dim"));
    c->num_res_blocks = (int)json_integer_value(json_object_get(j, "num_res_blocks"));
    int mult[WAN_VAE_MAX_LEVELS], nm = 0, ntd = 0;
    if (base <= 0 || base > 4096) bad = "base_dim";
    else if (dbase <= 0 || dbase > 4096) bad = "decoder_base_dim";
    else if (c->z_dim <= 0 || c->z_dim > WAN_VAE_MAX_Z) bad = "z_dim";
    else if (c->num_res_blocks <= 0 || c->num_res_blocks > 8) bad = "num_res_blocks";
    else if (json_int_list(json_object_get(j, "dim_mult"), mult, WAN_VAE_MAX_LEVELS, &nm) || nm < 1)
        bad = "dim_mult";
    else if (json_int_list(json_object_get(j, "temperal_downsample"), c->temporal_down, WAN_VAE_MAX_LEVELS,
                           &ntd) || ntd != nm - 1)
        bad = "temperal_downsample";
    if (bad) { rc = iso_fail(ISO_EDATA, "'%s': missing or invalid %s", path, bad); goto done; }
    if ((v = json_object_get(j, "is_residual")) && json_is_true(v)) {
        rc = iso_fail(ISO_EUNAVAIL, "'%s': is_residual (the Wan2.2 VAE) is not supported", path);
        goto done;
    }
    if ((v = json_object_get(j, "attn_scales")) && json_is_array(v) && json_array_size(v) > 0) {
        rc = iso_fail(ISO_EUNAVAIL, "'%s': attn_scales (attention outside the middle block) is not supported",
                      path);
        goto done;
    }
    if ((v = json_object_get(j, "patch_size")) && !json_is_null(v)) {
        rc = iso_fail(ISO_EUNAVAIL, "'%s': patch_size is not supported", path);
        goto done;
    }
    c->n_levels = nm;
    for (int i = 0; i < nm; i++) {
        if (mult[i] <= 0 || mult[i] > 64) { rc = iso_fail(ISO_EDATA, "'%s': invalid dim_mult", path); goto done; }
        c->enc_ch[i] = base * mult[i];
        c->dec_ch[i] = dbase * mult[nm - 1 - i];
    }
    c->source = "config.json";
    if (json_object_get(j, "latents_mean") || json_object_get(j, "latents_std")) {
        if (json_float_list(json_object_get(j, "latents_mean"), c->latents_mean, c->z_dim) ||
            json_float_list(json_object_get(j, "latents_std"), c->latents_std, c->z_dim)) {
            rc = iso_fail(ISO_EDATA, "'%s': latents_mean/latents_std must hold z_dim (%d) numbers", path, c->z_dim);
            goto done;
        }
        c->stats_source = "config.json";
    }
    rc = 1;
done:
    json_decref(j);
    free(path);
    return rc;
}

/* the configuration from the tensor shapes (no config.json) */
static int infer_config(const struct binder *b, int halves, struct wan_vae_config *c)
{
    char nm[512];
    const char *wp = weights_path(b->w);
    int nrb = 0, L = 0;
    if (halves & WAN_VAE_ENCODER) {
        /* walk encoder blocks: residual blocks, a resample closes a level */
        int in_level = 0, levels = 0;
        for (int k = 0; k < MAX_BLOCKS; k++) {
            enc_block_name(b, k, nm, sizeof nm);
            if (has(b, nm, "resample.1.weight")) {
                if (levels >= WAN_VAE_MAX_LEVELS - 1) break;
                if (levels == 0) nrb = in_level;
                else if (in_level != nrb) goto irregular;
                c->temporal_down[levels] = has(b, nm, "time_conv.weight");
                levels++;
                in_level = 0;
            } else {
                char leaf[64];
                snprintf(leaf, sizeof leaf, "%s.weight", b->n->r_conv1);
                int64_t out = dim0(b, nm, leaf, 0);
                if (out <= 0) break;
                if (in_level == 0) c->enc_ch[levels] = (int)out;
                else if (c->enc_ch[levels] != out) goto irregular;
                in_level++;
            }
        }
        if (levels == 0) nrb = in_level;
        if (in_level != nrb || nrb == 0) goto irregular;
        L = levels + 1;
        snprintf(nm, sizeof nm, "encoder.%s", b->n->head_conv);
        int64_t z2 = dim0(b, nm, "weight", 0);
        if (z2 <= 0 || z2 % 2) return iso_fail(ISO_EDATA, "tensor '%s%s.weight' missing or odd in '%s'", b->prefix, nm, wp);
        c->z_dim = (int)(z2 / 2);
    }
    if (halves & WAN_VAE_DECODER) {
        /* decoder levels: num_res_blocks + 1 residual blocks, then an upsampler */
        int dn = 0, dL = 0;
        char leaf[64];
        snprintf(leaf, sizeof leaf, "%s.weight", b->n->r_conv1);
        for (int j = 0; j < 16; j++) {
            dec_block_name(b, 99, 0, j, nm, sizeof nm); /* level 0: upsamples.j or resnets.j */
            if (dim0(b, nm, leaf, 0) <= 0) break;
            dn++;
        }
        if (dn < 2) goto irregular;
        if (nrb && dn != nrb + 1) goto irregular;
        nrb = dn - 1;
        for (int i = 0; i < WAN_VAE_MAX_LEVELS; i++) {
            dec_block_name(b, nrb, i, 0, nm, sizeof nm);
            int64_t out = dim0(b, nm, leaf, 0);
            if (out <= 0) break;
            c->dec_ch[i] = (int)out;
            dL = i + 1;
            dec_block_name(b, nrb, i, nrb + 1, nm, sizeof nm);
            if (!has(b, nm, "resample.1.weight")) break;
        }
        if (L && dL != L) goto irregular;
        L = dL;
        /* decoder order is reversed: level i's upsampler is temporal iff downsample L-2-i is */
        for (int i = 0; i + 1 < L; i++) {
            dec_block_name(b, nrb, i, nrb + 1, nm, sizeof nm);
            int t = has(b, nm, "time_conv.weight");
            if ((halves & WAN_VAE_ENCODER) && c->temporal_down[L - 2 - i] != t) goto irregular;
            c->temporal_down[L - 2 - i] = t;
        }
        snprintf(nm, sizeof nm, "decoder.%s", b->n->conv_in);
        int64_t z = dim0(b, nm, "weight", 1);
        if (z <= 0) return iso_fail(ISO_EDATA, "tensor '%s%s.weight' missing from '%s'", b->prefix, nm, wp);
        if ((halves & WAN_VAE_ENCODER) && z != c->z_dim) goto irregular;
        c->z_dim = (int)z;
    }
    if (L < 1 || c->z_dim > WAN_VAE_MAX_Z) goto irregular;
    c->n_levels = L;
    c->num_res_blocks = nrb;
    c->source = "tensor shapes";
    return 0;
irregular:
    return iso_fail(ISO_EDATA, "'%s': not a Wan2.1 VAE layout (the %s blocks do not form regular levels)", wp,
                    (halves & WAN_VAE_ENCODER) ? "encoder" : "decoder");
}

/* ---------------------------------------------------------------- open */

static int bind_encoder(const struct binder *b0, struct wan_vae *v)
{
    struct wan_vae_config *c = &v->cfg;
    struct wv_half *h = &v->enc;
    struct binder b = *b0;
    b.bytes = &h->bytes;
    char nm[512];
    int rc, k = 0;
    snprintf(nm, sizeof nm, "encoder.%s", b.n->conv_in);
    if ((rc = bind_conv(&b, nm, &h->conv_in, c->enc_ch[0], 3, 3, 3, 3, 5))) return rc;
    int prev = h->conv_in.O;
    for (int i = 0; i < c->n_levels; i++) {
        for (int j = 0; j < c->num_res_blocks; j++, k++) {
            if (k >= MAX_BLOCKS) return iso_fail(ISO_EUNAVAIL, "vae: too many encoder blocks");
            enc_block_name(&b, k, nm, sizeof nm);
            h->kind[k] = 0;
            if ((rc = bind_res(&b, nm, prev, c->enc_ch[i], &h->res[k]))) return rc;
            prev = c->enc_ch[i];
        }
        if (i + 1 < c->n_levels) {
            if (k >= MAX_BLOCKS) return iso_fail(ISO_EUNAVAIL, "vae: too many encoder blocks");
            enc_block_name(&b, k, nm, sizeof nm);
            struct wv_resample *r = &h->rs[k];
            h->kind[k] = 1;
            r->mode = c->temporal_down[i] ? RS_DOWN3D : RS_DOWN2D;
            r->C = r->O = prev;
            char sub[560];
            snprintf(sub, sizeof sub, "%s.resample.1", nm);
            if ((rc = bind_conv(&b, sub, &r->conv, prev, prev, 1, 3, 3, 4))) return rc;
            if (r->mode == RS_DOWN3D) {
                snprintf(sub, sizeof sub, "%s.time_conv", nm);
                if ((rc = bind_conv(&b, sub, &r->time_conv, prev, prev, 3, 1, 1, 5))) return rc;
            }
            k++;
        }
    }
    h->n_blocks = k;
    if ((rc = bind_mid(&b, "encoder", prev, h))) return rc;
    if ((rc = bind_head(&b, "encoder", prev, 2 * c->z_dim, h))) return rc;
    if ((rc = bind_conv(&b, b.n->quant, &h->quant, 2 * c->z_dim, 2 * c->z_dim, 1, 1, 1, 5))) return rc;
    h->present = 1;
    return 0;
}

static int bind_decoder(const struct binder *b0, struct wan_vae *v)
{
    struct wan_vae_config *c = &v->cfg;
    struct wv_half *h = &v->dec;
    struct binder b = *b0;
    b.bytes = &h->bytes;
    char nm[512];
    int rc, k = 0, L = c->n_levels, nrb = c->num_res_blocks;
    if ((rc = bind_conv(&b, b.n->post_quant, &h->quant, c->z_dim, c->z_dim, 1, 1, 1, 5))) return rc;
    snprintf(nm, sizeof nm, "decoder.%s", b.n->conv_in);
    if ((rc = bind_conv(&b, nm, &h->conv_in, c->dec_ch[0], c->z_dim, 3, 3, 3, 5))) return rc;
    if ((rc = bind_mid(&b, "decoder", c->dec_ch[0], h))) return rc;
    /* Wan's decoder: level i > 0 starts from half the previous level's
     * channels (the upsampler's 2-D conv halves them) */
    int prev = c->dec_ch[0];
    for (int i = 0; i < L; i++) {
        int in = i == 0 ? prev : prev / 2;
        for (int j = 0; j <= nrb; j++, k++) {
            if (k >= MAX_BLOCKS) return iso_fail(ISO_EUNAVAIL, "vae: too many decoder blocks");
            dec_block_name(&b, nrb, i, j, nm, sizeof nm);
            h->kind[k] = 0;
            if ((rc = bind_res(&b, nm, in, c->dec_ch[i], &h->res[k]))) return rc;
            in = c->dec_ch[i];
        }
        prev = c->dec_ch[i];
        if (i + 1 < L) {
            if (k >= MAX_BLOCKS) return iso_fail(ISO_EUNAVAIL, "vae: too many decoder blocks");
            dec_block_name(&b, nrb, i, nrb + 1, nm, sizeof nm);
            struct wv_resample *r = &h->rs[k];
            h->kind[k] = 1;
            r->mode = c->temporal_down[L - 2 - i] ? RS_UP3D : RS_UP2D;
            r->C = prev;
            r->O = prev / 2; /* dim // 2 in Python */
            char sub[560];
            snprintf(sub, sizeof sub, "%s.resample.1", nm);
            if ((rc = bind_conv(&b, sub, &r->conv, r->O, prev, 1, 3, 3, 4))) return rc;
            if (r->mode == RS_UP3D) {
                snprintf(sub, sizeof sub, "%s.time_conv", nm);
                if ((rc = bind_conv(&b, sub, &r->time_conv, 2 * prev, prev, 3, 1, 1, 5))) return rc;
            }
            k++;
        }
    }
    h->n_blocks = k;
    if ((rc = bind_head(&b, "decoder", c->dec_ch[L - 1], 3, h))) return rc;
    h->present = 1;
    return 0;
}

int wan_vae_open(struct wan_vae **out, const struct weights *w, int halves)
{
    static const char *const prefixes[] = { "", "vae.", "first_stage_model.", "model.", NULL };
    int rc;
    *out = NULL;
    struct wan_vae *v = calloc(1, sizeof *v);
    if (!v) return iso_fail(ISO_ETEMPFAIL, "vae: out of memory");
    struct binder b = { w, NULL, NULL, 0, NULL };
    const char *probe_half = (halves & WAN_VAE_DECODER) ? "decoder" : "encoder";
    char probe[64];
    snprintf(probe, sizeof probe, "%s.conv_in.weight", probe_half);
    if ((b.prefix = weights_detect_prefix(w, probe, prefixes))) {
        b.n = &DIFFUSERS;
        b.diffusers = 1;
        v->cfg.layout = "diffusers";
    } else {
        snprintf(probe, sizeof probe, "%s.conv1.weight", probe_half);
        if (!(b.prefix = weights_detect_prefix(w, probe, prefixes))) {
            rc = iso_fail(ISO_EDATA, "'%s' holds no Wan VAE %s (no %s.conv_in / %s.conv1 weight)",
                          weights_path(w), probe_half, probe_half, probe_half);
            goto fail;
        }
        b.n = &ORIGINAL;
        v->cfg.layout = "original";
    }
    struct wan_vae_config *c = &v->cfg;
    rc = read_config_json(weights_dir(w), c);
    if (rc < 0) goto fail;
    if (rc == 0 && (rc = infer_config(&b, halves, c)) < 0) goto fail;
    int nt = 0;
    for (int i = 0; i + 1 < c->n_levels; i++) nt += c->temporal_down[i] != 0;
    c->spatial = 1 << (c->n_levels - 1);
    c->temporal = 1 << nt;
    if (c->temporal != 4) {
        rc = iso_fail(ISO_EUNAVAIL, "'%s': %d temporal downsamplings; the Wan2.1 VAE has 2", weights_path(w), nt);
        goto fail;
    }
    if (!c->stats_source) {
        if (c->z_dim != 16) {
            rc = iso_fail(ISO_EDATA, "'%s': z_dim %d and no latents_mean/latents_std in a config.json",
                          weights_path(w), c->z_dim);
            goto fail;
        }
        memcpy(c->latents_mean, WAN21_MEAN, sizeof WAN21_MEAN);
        memcpy(c->latents_std, WAN21_STD, sizeof WAN21_STD);
        c->stats_source = "Wan2.1 published";
    }
    for (int i = 0; i < c->z_dim; i++)
        if (!(c->latents_std[i] > 0) || !isfinite(c->latents_mean[i])) {
            rc = iso_fail(ISO_EDATA, "'%s': latents_std must be positive", weights_path(w));
            goto fail;
        }
    if ((halves & WAN_VAE_ENCODER) && (rc = bind_encoder(&b, v))) goto fail;
    if ((halves & WAN_VAE_DECODER) && (rc = bind_decoder(&b, v))) goto fail;
    *out = v;
    return 0;
fail:
    free(v);
    return rc;
}

void wan_vae_free(struct wan_vae **v)
{
    if (!v || !*v) return;
    for (int i = 0; i < (*v)->n_relaid; i++) free((*v)->relaid[i]);
    free((*v)->relaid);
    free(*v);
    *v = NULL;
}

const struct wan_vae_config *wan_vae_config(const struct wan_vae *v) { return &v->cfg; }

uint64_t wan_vae_weight_bytes(const struct wan_vae *v, int half)
{
    return (half == WAN_VAE_ENCODER ? v->enc : v->dec).bytes;
}

/* ---------------------------------------------------------------- weights */

/* Every weight a half's forward reads, in a fixed order: fn(ctx, field, n,
 * cv) with cv the convolution when the field is the weight of a stride-1
 * (conv_shift) convolution, else NULL. */
typedef int (*wv_visit_fn)(void *ctx, struct nn_w *w, size_t n, struct wv_conv *cv);

static int visit_conv(struct wv_conv *cv, int shift, wv_visit_fn fn, void *ctx)
{
    size_t n = (size_t)cv->O * cv->C * cv->kt * cv->kh * cv->kw;
    int rc = fn(ctx, &cv->w, n, shift ? cv : NULL);
    return rc ? rc : fn(ctx, &cv->b, (size_t)cv->O, NULL);
}

static int visit_res(struct wv_res *r, wv_visit_fn fn, void *ctx)
{
    int rc;
    if ((rc = fn(ctx, &r->norm1, (size_t)r->in, NULL)) || (rc = visit_conv(&r->conv1, 1, fn, ctx)) ||
        (rc = fn(ctx, &r->norm2, (size_t)r->out, NULL)) || (rc = visit_conv(&r->conv2, 1, fn, ctx)))
        return rc;
    return r->has_shortcut ? visit_conv(&r->shortcut, 0, fn, ctx) : 0;
}

static int visit_half(struct wv_half *h, wv_visit_fn fn, void *ctx)
{
    int rc;
    if ((rc = visit_conv(&h->conv_in, 1, fn, ctx))) return rc;
    for (int k = 0; k < h->n_blocks; k++) {
        if (!h->kind[k]) {
            if ((rc = visit_res(&h->res[k], fn, ctx))) return rc;
            continue;
        }
        struct wv_resample *rs = &h->rs[k];
        int up = rs->mode == RS_UP2D || rs->mode == RS_UP3D;
        if ((rc = visit_conv(&rs->conv, up, fn, ctx))) return rc;
        if ((rs->mode == RS_UP3D || rs->mode == RS_DOWN3D) && (rc = visit_conv(&rs->time_conv, up, fn, ctx)))
            return rc;
    }
    if ((rc = visit_res(&h->mid0, fn, ctx)) || (rc = fn(ctx, &h->attn.norm, (size_t)h->attn.C, NULL)) ||
        (rc = visit_conv(&h->attn.qkv, 0, fn, ctx)) || (rc = visit_conv(&h->attn.proj, 0, fn, ctx)) ||
        (rc = visit_res(&h->mid1, fn, ctx)) || (rc = fn(ctx, &h->head_norm, (size_t)h->head.C, NULL)) ||
        (rc = visit_conv(&h->head, 1, fn, ctx)))
        return rc;
    return visit_conv(&h->quant, 0, fn, ctx);
}

static struct wv_half *half_of(struct wan_vae *v, int half) { return half == WAN_VAE_ENCODER ? &v->enc : &v->dec; }

/* [O, C, taps] as stored -> float32 [taps, O, C]: tap k's GEMM operand */
static int relay_into(const struct wv_conv *cv, float *wk)
{
    int C = cv->C, O = cv->O, taps = cv->kt * cv->kh * cv->kw;
    size_t nw = (size_t)O * C * taps;
    float *w32 = aligned_alloc(64, (nw * sizeof(float) + 63) & ~(size_t)63);
    if (!w32) return iso_fail(ISO_ETEMPFAIL, "vae: out of memory");
    nn_w_to_f32(&cv->w, 0, nw, w32);
    for (int o = 0; o < O; o++)
        for (int c = 0; c < C; c++)
            for (int k = 0; k < taps; k++) wk[((size_t)k * O + o) * C + c] = w32[((size_t)o * C + c) * taps + k];
    free(w32);
    return 0;
}

static float *relaid_alloc(size_t n) { return aligned_alloc(64, (n * sizeof(float) + 63) & ~(size_t)63); }

static int relay_visit(void *ctx, struct nn_w *w, size_t n, struct wv_conv *cv)
{
    struct wan_vae *v = ctx;
    (void)w;
    if (!cv || cv->wk.data) return 0;
    float **list = realloc(v->relaid, (size_t)(v->n_relaid + 1) * sizeof *list);
    if (!list) return iso_fail(ISO_ETEMPFAIL, "vae: out of memory");
    v->relaid = list;
    float *wk = relaid_alloc(n);
    if (!wk) return iso_fail(ISO_ETEMPFAIL, "vae: out of memory for the re-laid weights");
    v->relaid[v->n_relaid++] = wk;
    int rc = relay_into(cv, wk);
    if (rc) return rc;
    cv->wk = nn_w_at(wk, 0, WT_F32, 1.0f);
    return 0;
}

int wan_vae_relay(struct wan_vae *v, int half)
{
    struct wv_half *h = half_of(v, half);
    if (!h->present) return iso_fail(ISO_EINTERNAL, "vae: relay of a half not loaded");
    return visit_half(h, relay_visit, v);
}

struct reg_ctx { struct nn_wres *r; int relaid; struct nn_w *views; int n; };

static int reg_visit(void *ctx, struct nn_w *w, size_t n, struct wv_conv *cv)
{
    struct reg_ctx *g = ctx;
    struct nn_w *field = cv && g->relaid ? &cv->wk : w;
    if (g->views) { /* sizing only: a view of the dtype the field will have */
        struct nn_w *view = &g->views[g->n];
        *view = cv && g->relaid ? nn_w_at(w->data, 0, WT_F32, 1.0f) : *w;
        field = view;
    } else if (cv && g->relaid && !cv->wk.data) {
        return iso_fail(ISO_EINTERNAL, "vae: registering re-laid weights before wan_vae_relay");
    }
    g->n++;
    return nn_wres_add(g->r, -1, field, n);
}

int wan_vae_register(struct wan_vae *v, int half, struct nn_wres *r, int relaid)
{
    struct wv_half *h = half_of(v, half);
    if (!h->present) return iso_fail(ISO_EINTERNAL, "vae: registering a half not loaded");
    struct reg_ctx g = { r, relaid, NULL, 0 };
    return visit_half(h, reg_visit, &g);
}

static int count_visit(void *ctx, struct nn_w *w, size_t n, struct wv_conv *cv)
{
    (void)w; (void)n; (void)cv;
    ++*(int *)ctx;
    return 0;
}

static int relaid_bytes_visit(void *ctx, struct nn_w *w, size_t n, struct wv_conv *cv)
{
    (void)w;
    if (cv) *(uint64_t *)ctx += (uint64_t)n * sizeof(float);
    return 0;
}

int wan_vae_plan_blocks(struct wan_vae *v, int half, int relaid, struct plan_blocks *b, uint64_t *relaid_host)
{
    struct wv_half *h = half_of(v, half);
    int count = 0, rc;
    uint64_t rb = 0;
    visit_half(h, count_visit, &count);
    visit_half(h, relaid_bytes_visit, &rb);
    struct nn_w *views = calloc((size_t)count + 1, sizeof *views);
    struct nn_wres *r = nn_wres_new(NN_WRES_RESIDENT, 0);
    if (!views || !r) {
        free(views);
        nn_wres_free(&r);
        return iso_fail(ISO_ETEMPFAIL, "vae: out of memory");
    }
    struct reg_ctx g = { r, relaid, views, 0 };
    rc = visit_half(h, reg_visit, &g);
    if (!rc) nn_wres_plan_blocks(r, b);
    if (relaid_host) *relaid_host = relaid ? rb : 0;
    nn_wres_free(&r);
    free(views);
    return rc;
}

void wan_vae_drop_relaid_host(struct wan_vae *v)
{
    for (int i = 0; i < v->n_relaid; i++) free(v->relaid[i]);
    free(v->relaid);
    v->relaid = NULL;
    v->n_relaid = 0;
}

/* ---------------------------------------------------------------- forward */

/* Every tensor below lives in the backend's memory (nn_alloc): host code
 * never reads or writes it; copies go through nn_copy / nn_copy_box,
 * inputs and outputs through nn_upload / nn_download. */

/* the per-run causal caches, visited in a fixed order every chunk (Wan's feat_idx) */
struct slot { float *buf; size_t n; int used; };
struct run {
    struct nn *nn;
    struct slot *slots;
    int n_slots, idx;
    int oom;
};

static struct slot *next_slot(struct run *r)
{
    if (r->idx >= r->n_slots) {
        int n = r->n_slots ? 2 * r->n_slots : 64;
        struct slot *s = realloc(r->slots, (size_t)n * sizeof *s);
        if (!s) { r->oom = 1; return NULL; }
        memset(s + r->n_slots, 0, (size_t)(n - r->n_slots) * sizeof *s);
        r->slots = s;
        r->n_slots = n;
    }
    return &r->slots[r->idx++];
}

static void run_free(struct run *r)
{
    for (int i = 0; i < r->n_slots; i++) nn_release(r->nn, &r->slots[i].buf);
    free(r->slots);
    r->slots = NULL;
    r->n_slots = 0;
}

#define NEW(n) nn_alloc(r->nn, (n))
#define FREE(p) nn_release(r->nn, &(p))

/* a tensor [C, t, HW] */
struct act { float *d; int C, t, H, W; };
static size_t act_hw(const struct act *a) { return (size_t)a->H * a->W; }
static size_t act_n(const struct act *a) { return (size_t)a->C * a->t * act_hw(a); }

/* frames [f0, f0+nf) of src [C, t, hw] into frames [g0, g0+nf) of dst [C, T, hw] */
static void copy_frames(struct nn *nn, float *dst, int T, int g0, const float *src, int t, int f0, int nf, int C,
                        size_t hw)
{
    const size_t ds[4] = { (size_t)T * hw, hw, 0, 1 }, ss[4] = { (size_t)t * hw, hw, 0, 1 };
    const int n[4] = { C, nf, 1, (int)hw };
    nn_copy_box(nn, dst + (size_t)g0 * hw, ds, src + (size_t)f0 * hw, ss, n);
}

/* A stride-1 convolution as one GEMM per kernel tap ("shifted GEMMs"):
 * xp [C, Tin, Hp, Wp] is the input already padded (time: the causal frames
 * in front; space: ph, pw zeros on each side). On the padded grid, tap
 * (dt, dy, dx) of output position p reads xp at p + dt*S + dy*Wp + dx, a
 * constant offset, so y_pad[O, p] += W_tap[O, C] * xp[C, p + offset] is a
 * plain GEMM on a strided view of xp: no im2col copy. The columns past each
 * row's W valid outputs are computed and dropped when cropping. The bias is
 * added after the taps' sum, as always. */
static int conv_shift(struct run *r, const struct wv_conv *cv, const float *xp, int Tin, int H, int W, int ph,
                      int pw, float *y, int To)
{
    int C = cv->C, O = cv->O, taps = cv->kt * cv->kh * cv->kw;
    int Hp = H + 2 * ph, Wp = W + 2 * pw;
    size_t S = (size_t)Hp * Wp, hw = (size_t)H * W, ncols = (size_t)(H - 1) * Wp + (size_t)W;
    size_t nw = (size_t)O * C * taps;
    const float *wk = cv->wk.data;
    float *own = NULL;
    if (!wk) { /* cpu mode: re-laid per call from the mapping (host memory is the backend's) */
        if (nn_backend_of(r->nn) != NN_CPU) return iso_fail(ISO_EINTERNAL, "vae: conv weights not re-laid for the GPU");
        if (!(own = relaid_alloc(nw))) { r->oom = 1; return ISO_ETEMPFAIL; }
        int rc = relay_into(cv, own);
        if (rc) { free(own); return rc; }
        wk = own;
    }
    float *yp = NEW((size_t)O * S);
    if (!yp) { free(own); return ISO_ETEMPFAIL; }
    const size_t ds[4] = { 0, (size_t)To * hw, (size_t)W, 1 }, ss[4] = { 0, S, (size_t)Wp, 1 };
    const int crop[4] = { 1, O, H, W };
    for (int to = 0; to < To; to++) {
        int k = 0;
        for (int dt = 0; dt < cv->kt; dt++)
            for (int dy = 0; dy < cv->kh; dy++)
                for (int dx = 0; dx < cv->kw; dx++, k++) {
                    size_t off = (size_t)(to + dt) * S + (size_t)dy * Wp + (size_t)dx;
                    nn_gemm(r->nn, 0, 0, O, (int)ncols, C, 1.0f, wk + (size_t)k * O * C, C, xp + off,
                            (int)((size_t)Tin * S), k ? 1.0f : 0.0f, yp, (int)S);
                }
        nn_copy_box(r->nn, y + (size_t)to * hw, ds, yp, ss, crop);
    }
    nn_add_channels(r->nn, y, y, O, (size_t)To * hw, &cv->b);
    free(own);
    FREE(yp);
    return 0;
}

/* copy [C, t, H, W] frames into the interior of a padded [C, T, H+2ph, W+2pw] at frame t0 */
static void pad_in(struct nn *nn, float *dst, int T, int t0, const float *src, int C, int t, int H, int W, int ph,
                   int pw)
{
    int Hp = H + 2 * ph, Wp = W + 2 * pw;
    const size_t ds[4] = { (size_t)T * Hp * Wp, (size_t)Hp * Wp, (size_t)Wp, 1 };
    const size_t ss[4] = { (size_t)t * H * W, (size_t)H * W, (size_t)W, 1 };
    const int n[4] = { C, t, H, W };
    nn_copy_box(nn, dst + (size_t)t0 * Hp * Wp + (size_t)ph * Wp + pw, ds, src, ss, n);
}

/* causal conv: kt 3 with the two-frame cache of slot s in front, or kt 1 */
static int causal_conv_slot(struct run *r, const struct wv_conv *cv, const struct act *x, struct act *y,
                            struct slot *s)
{
    size_t hw = act_hw(x);
    int ph = cv->kh / 2, pw = cv->kw / 2;
    *y = (struct act){ NEW((size_t)cv->O * x->t * hw), cv->O, x->t, x->H, x->W };
    if (!y->d) return ISO_ETEMPFAIL;
    if (cv->kt == 1 && cv->kh == 1 && cv->kw == 1) { /* 1x1x1: one GEMM */
        nn_conv3d(r->nn, y->d, x->d, x->C, x->t, x->H, x->W, &cv->w, &cv->b, cv->O, 1, 1, 1, 1, 1, 1, 0, 0);
        return 0;
    }
    int pre = cv->kt - 1; /* causal frames in front: 2 from the cache, or 0 */
    if (pre && !s) return ISO_ETEMPFAIL;
    size_t cn = (size_t)x->C * 2 * hw;
    if (pre && !s->buf) { /* kept across chunks: from the top of the reservation */
        if (!(s->buf = nn_alloc_keep(r->nn, cn))) return ISO_ETEMPFAIL; /* zeros: the causal padding */
        s->n = cn;
    }
    if (pre && s->n != cn) return iso_fail(ISO_EINTERNAL, "vae: cache shape changed between chunks");
    int tt = x->t + pre;
    float *buf = NEW((size_t)x->C * tt * (x->H + 2 * ph) * (x->W + 2 * pw)); /* zeroed: the spatial padding */
    if (!buf) return ISO_ETEMPFAIL;
    if (pre) pad_in(r->nn, buf, tt, 0, s->buf, x->C, 2, x->H, x->W, ph, pw);
    pad_in(r->nn, buf, tt, pre, x->d, x->C, x->t, x->H, x->W, ph, pw);
    int rc = conv_shift(r, cv, buf, tt, x->H, x->W, ph, pw, y->d, x->t);
    FREE(buf);
    if (rc) return rc;
    if (pre) { /* the cache, in place: the last two input frames (cache included when t < 2) */
        for (int f = 0; f < 2; f++) {
            int g = x->t - 2 + f; /* index into x; < 0 reaches back into the cache: frame 1 into frame 0, read
                                   * before frame 1 is written */
            if (g >= 0) copy_frames(r->nn, s->buf, 2, f, x->d, x->t, g, 1, x->C, hw);
            else copy_frames(r->nn, s->buf, 2, f, s->buf, 2, 2 + g, 1, x->C, hw);
        }
    }
    return 0;
}

static int causal_conv(struct run *r, const struct wv_conv *cv, const struct act *x, struct act *y)
{
    return causal_conv_slot(r, cv, x, y, cv->kt == 1 ? NULL : next_slot(r));
}

/* y = silu(rms(x)) into a new tensor */
static int norm_silu(struct run *r, const struct nn_w *g, const struct act *x, struct act *y)
{
    *y = *x;
    y->d = NEW(act_n(x));
    if (!y->d) return ISO_ETEMPFAIL;
    nn_rmsnorm_channels(r->nn, y->d, x->d, x->C, (size_t)x->t * act_hw(x), g, NULL, 1e-12f);
    nn_act(r->nn, y->d, y->d, act_n(x), NN_ACT_SILU);
    return 0;
}

/* x <- ResidualBlock(x) */
static int residual(struct run *r, const struct wv_res *b, struct act *x)
{
    struct act h = { 0 }, a = { 0 }, c = { 0 };
    int rc;
    if (b->has_shortcut) {
        if ((rc = causal_conv(r, &b->shortcut, x, &h))) goto done;
    }
    if ((rc = norm_silu(r, &b->norm1, x, &a))) goto done;
    if ((rc = causal_conv(r, &b->conv1, &a, &c))) goto done;
    FREE(a.d);
    if ((rc = norm_silu(r, &b->norm2, &c, &a))) goto done;
    FREE(c.d);
    if ((rc = causal_conv(r, &b->conv2, &a, &c))) goto done;
    nn_add(r->nn, c.d, c.d, b->has_shortcut ? h.d : x->d, act_n(&c));
    FREE(x->d);
    *x = c;
    c.d = NULL;
done:
    FREE(h.d); FREE(a.d); FREE(c.d);
    return rc;
}

/* x <- x + proj(attention(to_qkv(norm(x)))), per frame, one head
 * (Wan2.1's middle block: 384 channels, past the CUDA kernel's head size:
 * nn_attention runs it as products there, on a scratch the plans count with
 * nn_attention_products_bytes). */
static int attention(struct run *r, const struct wv_attn *at, struct act *x)
{
    int C = at->C, rc = 0;
    size_t hw = act_hw(x), chw = (size_t)C * hw;
    float *g = NEW(chw), *f = NEW(chw), *qkv = NEW(3 * chw), *t3 = NEW(3 * chw), *o = NEW(chw);
    if (!g || !f || !qkv || !t3 || !o) { rc = ISO_ETEMPFAIL; goto done; }
    float *q = t3, *k = t3 + chw, *v = t3 + 2 * chw;
    /* channel-first [3C, hw] to token-major q, k, v [hw, C], and back */
    const size_t tds[4] = { 0, chw, 1, (size_t)C }, tss[4] = { 0, chw, hw, 1 };
    const int tn[4] = { 1, 3, C, (int)hw };
    const size_t bds[4] = { 0, 0, hw, 1 }, bss[4] = { 0, 0, 1, (size_t)C };
    const int bn[4] = { 1, 1, C, (int)hw };
    for (int t = 0; t < x->t; t++) {
        copy_frames(r->nn, g, 1, 0, x->d, x->t, t, 1, C, hw);
        nn_copy(r->nn, f, g, chw);
        nn_rmsnorm_channels(r->nn, f, f, C, hw, &at->norm, NULL, 1e-12f);
        nn_conv2d(r->nn, qkv, f, C, x->H, x->W, &at->qkv.w, &at->qkv.b, 3 * C, 1, 1, 1, 1, 0, 0, 1, 1, 1);
        nn_copy_box(r->nn, t3, tds, qkv, tss, tn);
        nn_attention(r->nn, o, q, k, v, (int)hw, (int)hw, 1, C, 1.0f / sqrtf((float)C), NULL, (int)hw);
        nn_copy_box(r->nn, f, bds, o, bss, bn);
        nn_conv2d(r->nn, qkv, f, C, x->H, x->W, &at->proj.w, &at->proj.b, C, 1, 1, 1, 1, 0, 0, 1, 1, 1);
        nn_add(r->nn, g, g, qkv, chw);
        copy_frames(r->nn, x->d, x->t, t, g, 1, 0, 1, C, hw);
    }
done:
    FREE(g); FREE(f); FREE(qkv); FREE(t3); FREE(o);
    return rc;
}

/* x <- Resample(x) */
static int resample(struct run *r, const struct wv_resample *rs, struct act *x)
{
    int rc = 0;
    struct act y = { 0 };
    float *fin = NULL, *fout = NULL;
    if (rs->mode == RS_UP3D) {
        struct slot *s = next_slot(r);
        if (!s) return ISO_ETEMPFAIL;
        if (!s->used) {
            s->used = 1; /* the first chunk passes through (Wan's "Rep") */
        } else {
            /* the same slot is time_conv's cache: zeros from its first use on */
            struct act tc;
            if ((rc = causal_conv_slot(r, &rs->time_conv, x, &tc, s))) return rc;
            /* [2C, t] -> [C, 2t]: output frame 2i+s is half s of frame i */
            size_t hw = act_hw(x);
            y = (struct act){ NEW(act_n(x) * 2), x->C, 2 * x->t, x->H, x->W };
            if (!y.d) { FREE(tc.d); return ISO_ETEMPFAIL; }
            const size_t ds[4] = { hw, (size_t)y.t * hw, 2 * hw, 1 };
            const size_t ss[4] = { (size_t)x->C * x->t * hw, (size_t)x->t * hw, hw, 1 };
            const int n[4] = { 2, x->C, x->t, (int)hw };
            nn_copy_box(r->nn, y.d, ds, tc.d, ss, n);
            FREE(tc.d);
            FREE(x->d);
            *x = y;
            y.d = NULL;
        }
    }
    /* per-frame 2-D part */
    int up = rs->mode == RS_UP2D || rs->mode == RS_UP3D;
    int H = x->H, W = x->W;
    int Hi = up ? 2 * H : H + 1, Wi = up ? 2 * W : W + 1; /* input of the 2-D conv */
    int Ho = up ? 2 * H : H / 2, Wo = up ? 2 * W : W / 2;
    size_t hw = act_hw(x), hwi = (size_t)Hi * Wi, hwo = (size_t)Ho * Wo;
    y = (struct act){ NEW((size_t)rs->O * x->t * hwo), rs->O, x->t, Ho, Wo };
    /* up: the upsampled frame with the conv's one-pixel zero border; down:
     * ZeroPad2d((0, 1, 0, 1)), one zero column right and one zero row below.
     * Only the interior is ever written: the borders stay the zeros of nn_alloc. */
    size_t hwf = up ? (size_t)(Hi + 2) * (Wi + 2) : hwi;
    fin = NEW((size_t)x->C * hwf);
    fout = NEW((size_t)rs->O * hwo);
    if (!y.d || !fin || !fout) { rc = ISO_ETEMPFAIL; goto done; }
    for (int t = 0; t < x->t; t++) {
        const float *src = x->d + (size_t)t * hw;
        if (up) { /* nearest-exact 2x: output (2y+a, 2x+b) reads input (y, x) */
            size_t row = (size_t)Wi + 2;
            const size_t ds[4] = { hwf, 2 * row, row, 2 }, ss[4] = { (size_t)x->t * hw, (size_t)W, 0, 1 };
            const int n[4] = { x->C, H, 2, W };
            for (int b = 0; b < 2; b++) nn_copy_box(r->nn, fin + row + 1 + b, ds, src, ss, n);
            if ((rc = conv_shift(r, &rs->conv, fin, 1, Hi, Wi, 1, 1, fout, 1))) goto done;
        } else {
            const size_t ds[4] = { 0, hwf, (size_t)Wi, 1 }, ss[4] = { 0, (size_t)x->t * hw, (size_t)W, 1 };
            const int n[4] = { 1, x->C, H, W };
            nn_copy_box(r->nn, fin, ds, src, ss, n);
            nn_conv2d(r->nn, fout, fin, x->C, Hi, Wi, &rs->conv.w, &rs->conv.b, rs->O, 3, 3, 2, 2, 0, 0, 1, 1, 1);
        }
        copy_frames(r->nn, y.d, y.t, t, fout, 1, 0, 1, rs->O, hwo);
    }
    FREE(x->d);
    *x = y;
    y.d = NULL;
    if (rs->mode == RS_DOWN3D) {
        /* time_conv (3,1,1) stride 2 over cat(last frame of the previous
         * chunk, chunk); the first chunk passes through */
        struct slot *s = next_slot(r);
        if (!s) { rc = ISO_ETEMPFAIL; goto done; }
        size_t cn = (size_t)x->C * hwo;
        int first = !s->buf;
        if (first) {
            if (!(s->buf = nn_alloc_keep(r->nn, cn))) { rc = ISO_ETEMPFAIL; goto done; }
            s->n = cn;
        } else if (s->n != cn) {
            rc = iso_fail(ISO_EINTERNAL, "vae: cache shape changed between chunks");
            goto done;
        }
        if (!first) {
            int tt = x->t + 1, to = (tt - 3) / 2 + 1;
            if (tt < 3) { rc = iso_fail(ISO_EINTERNAL, "vae: downsample3d chunk of %d frames", x->t); goto done; }
            float *buf = NEW((size_t)x->C * tt * hwo);
            y = (struct act){ NEW((size_t)x->C * to * hwo), x->C, to, Ho, Wo };
            if (!buf || !y.d) { FREE(buf); rc = ISO_ETEMPFAIL; goto done; }
            copy_frames(r->nn, buf, tt, 0, s->buf, 1, 0, 1, x->C, hwo);
            copy_frames(r->nn, buf, tt, 1, x->d, x->t, 0, x->t, x->C, hwo);
            nn_conv3d(r->nn, y.d, buf, x->C, tt, Ho, Wo, &rs->time_conv.w, &rs->time_conv.b, x->C, 3, 1, 1, 2, 1,
                      1, 0, 0);
            FREE(buf);
        }
        copy_frames(r->nn, s->buf, 1, 0, x->d, x->t, x->t - 1, 1, x->C, hwo);
        if (!first) {
            FREE(x->d);
            *x = y;
            y.d = NULL;
        }
    }
done:
    FREE(fin); FREE(fout); FREE(y.d);
    return rc;
}

/* one chunk through a half's body: conv_in, blocks, middle, head */
static int body(struct run *r, const struct wv_half *h, int decoder, struct act *x)
{
    struct act y;
    int rc;
    r->idx = 0;
    if ((rc = causal_conv(r, &h->conv_in, x, &y))) return rc;
    FREE(x->d);
    *x = y;
    if (decoder) {
        if ((rc = residual(r, &h->mid0, x)) || (rc = attention(r, &h->attn, x)) || (rc = residual(r, &h->mid1, x)))
            return rc;
    }
    for (int k = 0; k < h->n_blocks; k++) {
        rc = h->kind[k] ? resample(r, &h->rs[k], x) : residual(r, &h->res[k], x);
        if (rc) return rc;
    }
    if (!decoder) {
        if ((rc = residual(r, &h->mid0, x)) || (rc = attention(r, &h->attn, x)) || (rc = residual(r, &h->mid1, x)))
            return rc;
    }
    struct act a;
    if ((rc = norm_silu(r, &h->head_norm, x, &a))) return rc;
    FREE(x->d);
    rc = causal_conv(r, &h->head, &a, x);
    FREE(a.d);
    return rc;
}

/* Tiles as diffusers' AutoencoderKLWan.tiled_decode lays them out: starts
 * 0, stride, 2*stride, ... below n (stride = tile - overlap), each tile
 * min(tile, n - start) latent pixels; 1 tile when tiling is off. */
static int tile_starts(int n, int tile, int ov, int *st, int max)
{
    if (tile <= 0 || tile >= n) { st[0] = 0; return 1; }
    int k = 0;
    for (int a = 0; a < n; a += tile - ov) {
        if (k == max) return max + 1;
        st[k++] = a;
    }
    return k;
}

int wan_vae_tile_count(int h, int w, const struct wan_vae_tiling *tl)
{
    int st[MAX_TILES + 1], tile = tl ? tl->tile : 0, ov = tl ? tl->overlap : 0;
    if (tile > 0 && (ov < 0 || ov >= tile)) return MAX_TILES + 1;
    return tile_starts(h, tile, ov, st, MAX_TILES) * tile_starts(w, tile, ov, st, MAX_TILES);
}

/* one decoded tile: [3, t, th, tw] */
struct dtile { float *d; int t, h, w; };

/* diffusers' blend_v / blend_h: the first e rows (columns) of b fade in
 * from the last e rows (columns) of a, e = min(a, b, extent) */
static void blend_v(const struct dtile *a, struct dtile *b, int extent)
{
    int e = extent < a->h ? extent : a->h;
    if (b->h < e) e = b->h;
    for (int c = 0; c < 3; c++)
        for (int f = 0; f < b->t; f++)
            for (int y = 0; y < e; y++) {
                const float *ra = a->d + (((size_t)c * a->t + f) * a->h + a->h - e + y) * a->w;
                float *rb = b->d + (((size_t)c * b->t + f) * b->h + y) * b->w;
                float wb = (float)((double)y / e), wa = (float)(1.0 - (double)y / e);
                int n = a->w < b->w ? a->w : b->w;
                for (int x = 0; x < n; x++) rb[x] = ra[x] * wa + rb[x] * wb;
            }
}

static void blend_h(const struct dtile *a, struct dtile *b, int extent)
{
    int e = extent < a->w ? extent : a->w;
    if (b->w < e) e = b->w;
    for (int c = 0; c < 3; c++)
        for (int f = 0; f < b->t; f++) {
            int n = a->h < b->h ? a->h : b->h;
            for (int y = 0; y < n; y++) {
                const float *ra = a->d + (((size_t)c * a->t + f) * a->h + y) * a->w + a->w - e;
                float *rb = b->d + (((size_t)c * b->t + f) * b->h + y) * b->w;
                for (int x = 0; x < e; x++) {
                    float wb = (float)((double)x / e), wa = (float)(1.0 - (double)x / e);
                    rb[x] = ra[x] * wa + rb[x] * wb;
                }
            }
        }
}


/* blend (diffusers' order: above, then left, mutating in place) */
static void blend_all(struct dtile *dt, int ny, int nx, int extent)
{
    for (int ty = 0; ty < ny; ty++)
        for (int tx = 0; tx < nx; tx++) {
            struct dtile *d = &dt[ty * nx + tx];
            if (ty > 0) blend_v(&dt[(ty - 1) * nx + tx], d, extent);
            if (tx > 0) blend_h(&dt[ty * nx + tx - 1], d, extent);
        }
}

/* frame f of the blended tiles into rgb [3, H, W]: each tile contributes its
 * first sy rows and sx columns; clamped to [-1, 1] */
static void assemble(const struct dtile *dt, int ny, int nx, int f, int sy, int sx, float *rgb, int H, int W)
{
    for (int ty = 0; ty < ny; ty++)
        for (int tx = 0; tx < nx; tx++) {
            const struct dtile *d = &dt[ty * nx + tx];
            int Y0 = ty * sy, X0 = tx * sx;
            int kh = d->h < sy ? d->h : sy, kw = d->w < sx ? d->w : sx;
            if (Y0 + kh > H) kh = H - Y0;
            if (X0 + kw > W) kw = W - X0;
            for (int ch = 0; ch < 3; ch++)
                for (int yy = 0; yy < kh; yy++)
                    memcpy(rgb + ((size_t)ch * H + Y0 + yy) * W + X0, d->d + (((size_t)ch * d->t + f) * d->h + yy) * d->w,
                           (size_t)kw * sizeof(float));
        }
    for (size_t i = 0; i < 3 * (size_t)H * W; i++) rgb[i] = rgb[i] < -1.0f ? -1.0f : rgb[i] > 1.0f ? 1.0f : rgb[i];
}

/* latent frame t of tile (y0, x0, th, tw) through the decoder; its output
 * frames go to frames [fo, fo + n) of the host tile d ([3, d->t, h, w]),
 * *n set. lt: host scratch of z * th * tw. */
static int decode_chunk(struct wan_vae *v, struct run *r, const float *latents, int T, int h, int w, int t, int y0,
                        int x0, int th, int tw, float *lt, struct dtile *d, int fo, int *n)
{
    const struct wan_vae_config *c = &v->cfg;
    struct nn *nn = r->nn;
    int z = c->z_dim, rc;
    for (int ch = 0; ch < z; ch++)
        for (int yy = 0; yy < th; yy++) {
            const float *src = latents + (((size_t)ch * T + t) * h + y0 + yy) * w + x0;
            float *dst = lt + ((size_t)ch * th + yy) * tw;
            for (int xx = 0; xx < tw; xx++) dst[xx] = src[xx] * c->latents_std[ch] + c->latents_mean[ch];
        }
    struct act x = { nn_alloc(nn, (size_t)z * th * tw), z, 1, th, tw }, y = { 0 };
    if (!x.d) return ISO_ETEMPFAIL;
    if ((rc = nn_upload(nn, x.d, lt, (size_t)z * th * tw)) || (rc = causal_conv(r, &v->dec.quant, &x, &y))) goto done;
    nn_release(nn, &x.d);
    x = y;
    y.d = NULL;
    if ((rc = body(r, &v->dec, 1, &x))) goto done;
    if (x.C != 3 || fo + x.t > d->t || x.H != d->h || x.W != d->w) {
        rc = iso_fail(ISO_EINTERNAL, "vae: decoder output shape");
        goto done;
    }
    size_t hw = act_hw(&x);
    for (int ch = 0; ch < 3 && !rc; ch++)
        rc = nn_download(nn, d->d + ((size_t)ch * d->t + fo) * hw, x.d + (size_t)ch * x.t * hw, (size_t)x.t * hw);
    *n = x.t;
done:
    nn_release(nn, &x.d);
    nn_release(nn, &y.d);
    return rc;
}

/* Tile-major decodes spill every tile's decoded frames to an unlinked file
 * in spill_dir (TMPDIR, else /tmp, when NULL), so host memory holds one
 * tile's chunk and one frame of every tile, whatever the frame count; the
 * file goes with the process however it ends. */
static int spill_open(const char *dir, int *fd)
{
    const char *d = dir ? dir : getenv("TMPDIR");
    if (!d || !*d) d = "/tmp";
    char *path = fs_join(d, ".vae-spill-XXXXXX");
    if (!path) return iso_fail(ISO_EINTERNAL, "out of memory");
    *fd = mkstemp(path);
    int e = errno;
    if (*fd >= 0) unlink(path);
    free(path);
    if (*fd < 0) return iso_fail(ISO_ECANTCREAT, "vae: cannot create the tile spill file in '%s': %s", d, strerror(e));
    return 0;
}

static int spill_io(int fd, int out, float *p, size_t n, uint64_t off)
{
    char *b = (char *)p;
    size_t left = n * sizeof(float);
    while (left) {
        ssize_t k = out ? pwrite(fd, b, left, (off_t)off) : pread(fd, b, left, (off_t)off);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0)
            return iso_fail(ISO_EIO, "vae: cannot %s the tile spill file: %s", out ? "write" : "read",
                            k < 0 ? strerror(errno) : "short read");
        b += k;
        left -= (size_t)k;
        off += (uint64_t)k;
    }
    return 0;
}

/* One tile through every latent frame with its own caches, freed before the
 * next tile (one tile's caches on nn's backend); each chunk's frames go to
 * the spill file as [3, th, tw] per frame. Then, frame by frame, every
 * tile's frame is read back into dt (one frame each), blended, assembled
 * and emitted. */
/* a decode's tiles: starts, counts, the largest tile (latent pixels), the
 * output rows/columns each tile keeps, the blend extent (output pixels) */
struct tgrid { const int *ys, *xs; int ny, nx, th0, tw0, sy, sx, extent; };

static int decode_tile_major(struct wan_vae *v, struct run *runs, struct dtile *dt, const float *latents, int T,
                             int h, int w, const struct tgrid *g, int F, const char *spill_dir, float *lt, float *rgb,
                             wan_vae_emit_fn emit, void *ctx)
{
    const struct wan_vae_config *c = &v->cfg;
    int sp = c->spatial, ny = g->ny, nx = g->nx, n_tiles = ny * nx, H = h * sp, W = w * sp, fd = -1, rc;
    uint64_t base[MAX_TILES + 1];
    base[0] = 0;
    for (int i = 0; i < n_tiles; i++) base[i + 1] = base[i] + (uint64_t)F * 3 * dt[i].h * dt[i].w * sizeof(float);
    struct dtile ck = { malloc(3 * (size_t)c->temporal * g->th0 * sp * g->tw0 * sp * sizeof(float)), c->temporal, 0, 0 };
    if (!ck.d) return iso_fail(ISO_ETEMPFAIL, "vae: out of memory");
    if ((rc = spill_open(spill_dir, &fd))) goto done;
    for (int i = 0; i < n_tiles && !rc; i++) {
        int ty = i / nx, tx = i % nx, fo = 0, n = 0;
        size_t hw = (size_t)dt[i].h * dt[i].w;
        ck.h = dt[i].h;
        ck.w = dt[i].w;
        for (int t = 0; t < T && !rc; t++, fo += n) {
            if ((rc = sig_check())) break;
            rc = decode_chunk(v, &runs[i], latents, T, h, w, t, g->ys[ty], g->xs[tx], dt[i].h / sp, dt[i].w / sp, lt,
                              &ck, 0, &n);
            if (!rc && fo + n > F) rc = iso_fail(ISO_EINTERNAL, "vae: tile decoded more than %d frames", F);
            for (int j = 0; j < n && !rc; j++)
                for (int ch = 0; ch < 3 && !rc; ch++)
                    rc = spill_io(fd, 1, ck.d + ((size_t)ch * ck.t + j) * hw, hw,
                                  base[i] + (((uint64_t)(fo + j) * 3 + ch) * hw) * sizeof(float));
        }
        if (!rc && fo != F) rc = iso_fail(ISO_EINTERNAL, "vae: tile decoded %d frames, not %d", fo, F);
        if (rc == ISO_ETEMPFAIL && runs[i].oom) rc = iso_fail(ISO_ETEMPFAIL, "vae: out of memory");
        run_free(&runs[i]);
    }
    for (int f = 0; f < F && !rc; f++) {
        for (int i = 0; i < n_tiles && !rc; i++) {
            size_t n3 = 3 * (size_t)dt[i].h * dt[i].w;
            rc = spill_io(fd, 0, dt[i].d, n3, base[i] + (uint64_t)f * n3 * sizeof(float));
        }
        if (rc) break;
        blend_all(dt, ny, nx, g->extent);
        assemble(dt, ny, nx, 0, g->sy, g->sx, rgb, H, W);
        rc = emit(ctx, f, rgb, H, W);
    }
done:
    if (fd >= 0) close(fd);
    free(ck.d);
    return rc;
}

/* Tiled streaming, frame-major or tile-major (wan_vae.h), each tile with its
 * own causal caches as each tile of diffusers' tiled_decode has its own
 * feat_cache; the tiles are blended in diffusers' order and each
 * contributes its first stride*spatial rows and columns. Without tiling: one
 * tile, no blend. The latents, the tiles' decoded output (downloaded per
 * chunk), the blend and the assembled frames are host memory; the decode
 * itself runs on nn's backend. */
int wan_vae_decode(struct wan_vae *v, struct nn *nn, const float *latents, int T, int h, int w,
                   const struct wan_vae_tiling *tiling, wan_vae_emit_fn emit, void *ctx)
{
    const struct wan_vae_config *c = &v->cfg;
    if (!v->dec.present) return iso_fail(ISO_EINTERNAL, "vae: decoder not loaded");
    int tile = tiling ? tiling->tile : 0, ov = tiling ? tiling->overlap : 0;
    if (tile > 0 && (ov < 0 || ov >= tile)) return iso_fail(ISO_EUSAGE, "vae: tile overlap %d of tile %d", ov, tile);
    int ys[MAX_TILES + 1], xs[MAX_TILES + 1];
    int ny = tile_starts(h, tile, ov, ys, MAX_TILES), nx = tile_starts(w, tile, ov, xs, MAX_TILES);
    if (ny > MAX_TILES || nx > MAX_TILES || ny * nx > MAX_TILES)
        return iso_fail(ISO_EUSAGE, "vae: tile %d makes more than %d tiles of %dx%d latents", tile, MAX_TILES, w, h);
    int n_tiles = ny * nx, sp = c->spatial, H = h * sp, W = w * sp, z = c->z_dim;
    int th0 = ny > 1 ? tile : h, tw0 = nx > 1 ? tile : w;
    int sy = ny > 1 ? (tile - ov) * sp : H, sx = nx > 1 ? (tile - ov) * sp : W; /* output kept per tile */
    int major = tiling && tiling->tile_major && n_tiles > 1;
    int F = 1 + c->temporal * (T - 1), per = major ? 1 : c->temporal; /* frames each host tile holds */
    int rc = 0, index = 0;
    size_t HW = (size_t)H * W;
    struct run *runs = calloc((size_t)n_tiles, sizeof *runs);
    struct dtile *dt = calloc((size_t)n_tiles, sizeof *dt);
    float *rgb = malloc(3 * HW * sizeof(float));
    float *lt = malloc((size_t)z * th0 * tw0 * sizeof(float));
    if (!runs || !dt || !rgb || !lt) { rc = iso_fail(ISO_ETEMPFAIL, "vae: out of memory"); goto done; }
    for (int ty = 0; ty < ny; ty++)
        for (int tx = 0; tx < nx; tx++) {
            int i = ty * nx + tx;
            int th = h - ys[ty] < th0 ? h - ys[ty] : th0, tw = w - xs[tx] < tw0 ? w - xs[tx] : tw0;
            runs[i].nn = nn;
            dt[i] = (struct dtile){ malloc(3 * (size_t)per * th * sp * tw * sp * sizeof(float)), per, th * sp, tw * sp };
            if (!dt[i].d) { rc = iso_fail(ISO_ETEMPFAIL, "vae: out of memory for the decoded tiles"); goto done; }
        }
    if (major) {
        struct tgrid g = { ys, xs, ny, nx, th0, tw0, sy, sx, ov * sp };
        rc = decode_tile_major(v, runs, dt, latents, T, h, w, &g, F, tiling->spill_dir, lt, rgb, emit, ctx);
        goto done;
    }
    for (int t = 0; t < T && !rc; t++) {
        int nf = 0;
        for (int i = 0; i < n_tiles && !rc; i++) {
            int ty = i / nx, tx = i % nx;
            dt[i].t = per;
            rc = decode_chunk(v, &runs[i], latents, T, h, w, t, ys[ty], xs[tx], dt[i].h / sp, dt[i].w / sp, lt, &dt[i],
                              0, &nf);
            dt[i].t = nf; /* this chunk's frames, [3, nf, h, w] as downloaded with stride per */
        }
        if (rc) break;
        /* the chunk's frames were laid out with a frame stride of `per`: compact to nf */
        for (int i = 0; i < n_tiles && nf < per; i++) {
            size_t hw = (size_t)dt[i].h * dt[i].w;
            for (int ch = 1; ch < 3; ch++)
                memmove(dt[i].d + (size_t)ch * nf * hw, dt[i].d + (size_t)ch * per * hw, (size_t)nf * hw * sizeof(float));
        }
        blend_all(dt, ny, nx, ov * sp);
        for (int f = 0; f < nf && !rc; f++) {
            assemble(dt, ny, nx, f, sy, sx, rgb, H, W);
            rc = emit(ctx, index++, rgb, H, W);
        }
    }
done:
    for (int i = 0; runs && dt && i < n_tiles; i++) {
        if (rc == ISO_ETEMPFAIL && runs[i].oom) rc = iso_fail(ISO_ETEMPFAIL, "vae: out of memory");
        run_free(&runs[i]);
        free(dt[i].d);
    }
    free(runs);
    free(dt);
    free(rgb);
    free(lt);
    return rc;
}

/* The frames and the latents are host memory: each frame goes up into the
 * chunk's input, the posterior mean comes down per chunk. */
int wan_vae_encode(struct wan_vae *v, struct nn *nn, int F, int H, int W, wan_vae_get_fn get, void *ctx,
                   float *out)
{
    const struct wan_vae_config *c = &v->cfg;
    if (!v->enc.present) return iso_fail(ISO_EINTERNAL, "vae: encoder not loaded");
    if (F < 1 || (F - 1) % c->temporal || H % c->spatial || W % c->spatial)
        return iso_fail(ISO_EDATA, "vae: %d frames of %dx%d cannot be encoded", F, W, H);
    struct run r = { nn, NULL, 0, 0, 0 };
    int rc = 0, z = c->z_dim, Tl = 1 + (F - 1) / c->temporal, lt = 0;
    int h = H / c->spatial, w = W / c->spatial;
    size_t HW = (size_t)H * W, hw = (size_t)h * w;
    struct act x = { 0 }, y = { 0 };
    float *frame = malloc(3 * HW * sizeof(float)), *mu = NULL;
    if (!frame) return iso_fail(ISO_ETEMPFAIL, "vae: out of memory");
    for (int f0 = 0; f0 < F && !rc;) {
        int n = f0 == 0 ? 1 : c->temporal;
        x = (struct act){ nn_alloc(nn, 3 * (size_t)n * HW), 3, n, H, W };
        if (!x.d) { rc = ISO_ETEMPFAIL; break; }
        for (int i = 0; i < n && !rc; i++) {
            rc = get(ctx, f0 + i, frame, H, W);
            for (int ch = 0; ch < 3 && !rc; ch++) rc = nn_upload(nn, x.d + ((size_t)ch * n + i) * HW, frame + (size_t)ch * HW, HW);
        }
        if (rc) break;
        f0 += n;
        if ((rc = body(&r, &v->enc, 0, &x))) break;
        if ((rc = causal_conv(&r, &v->enc.quant, &x, &y))) break;
        if (lt + y.t > Tl || y.H != h || y.W != w) { rc = iso_fail(ISO_EINTERNAL, "vae: encoder output shape"); break; }
        /* mean = the first z channels; normalised (mu - mean) / std */
        size_t nmu = (size_t)z * y.t * hw;
        free(mu);
        if (!(mu = malloc(nmu * sizeof(float)))) { rc = iso_fail(ISO_ETEMPFAIL, "vae: out of memory"); break; }
        if ((rc = nn_download(nn, mu, y.d, nmu))) break;
        for (int i = 0; i < y.t; i++, lt++)
            for (int ch = 0; ch < z; ch++) {
                const float *src = mu + ((size_t)ch * y.t + i) * hw;
                float *dst = out + ((size_t)ch * Tl + lt) * hw;
                float m = c->latents_mean[ch], is = 1.0f / c->latents_std[ch];
                for (size_t k = 0; k < hw; k++) dst[k] = (src[k] - m) * is;
            }
        nn_release(nn, &x.d);
        nn_release(nn, &y.d);
    }
    if (!rc && lt != Tl) rc = iso_fail(ISO_EINTERNAL, "vae: encoder gave %d latent frames, not %d", lt, Tl);
    if (rc == ISO_ETEMPFAIL && r.oom) rc = iso_fail(ISO_ETEMPFAIL, "vae: out of memory");
    nn_release(nn, &x.d);
    nn_release(nn, &y.d);
    free(frame);
    free(mu);
    run_free(&r);
    return rc;
}

/* ---------------------------------------------------------------- plan */

/* the causal caches of a residual block at c_in -> c_out, HW positions */
static uint64_t res_cache(int cin, int cout, uint64_t hw) { return ((uint64_t)cin + cout) * 2 * hw * 4; }
/* working set of one residual block on t frames: input, shortcut, the
 * norm output, the conv's cat(cache, x) and its output */
static uint64_t res_work(int cin, int cout, int t, uint64_t hw)
{
    return ((uint64_t)cin * t + (uint64_t)cout * t + (uint64_t)cin * t + (uint64_t)cin * (t + 2) +
            (uint64_t)cout * t) * hw * 4;
}

static void dec_act(const struct wan_vae_config *c, int h, int w, uint64_t *caches_out, uint64_t *peak_out)
{
    int L = c->n_levels, nrb = c->num_res_blocks;
    uint64_t hw = (uint64_t)h * w, caches = 0, peak = 0;
    int t = 1; /* frames per chunk after the first */
    caches += (uint64_t)c->z_dim * 2 * hw * 4;
    caches += 2 * res_cache(c->dec_ch[0], c->dec_ch[0], hw);
    peak = res_work(c->dec_ch[0], c->dec_ch[0], t, hw);
    int prev = c->dec_ch[0];
    for (int i = 0; i < L; i++) {
        int in = i == 0 ? prev : prev / 2;
        for (int j = 0; j <= nrb; j++) {
            caches += res_cache(in, c->dec_ch[i], hw);
            uint64_t wk = res_work(in, c->dec_ch[i], t, hw);
            if (wk > peak) peak = wk;
            in = c->dec_ch[i];
        }
        prev = c->dec_ch[i];
        if (i + 1 < L) {
            int t3 = c->temporal_down[L - 2 - i];
            if (t3) caches += (uint64_t)prev * 2 * hw * 4;
            uint64_t t2 = t3 ? 2 * (uint64_t)t : (uint64_t)t;
            /* time_conv output (2C x t), the 2x frames, the upsampled frame in and out */
            uint64_t wk = ((uint64_t)prev * 2 * t + (uint64_t)prev * t2) * hw * 4 + ((uint64_t)prev * t2 * 4 * hw +
                          (uint64_t)prev * 4 * hw + (uint64_t)prev / 2 * (4 * hw) * (t2 + 1)) * 4;
            if (wk > peak) peak = wk;
            t = (int)t2;
            hw *= 4;
        }
    }
    caches += (uint64_t)c->dec_ch[L - 1] * 2 * hw * 4;
    uint64_t head = ((uint64_t)c->dec_ch[L - 1] * (3 * (uint64_t)t + 2) + 3 * ((uint64_t)t + 1)) * hw * 4;
    if (head > peak) peak = head;
    /* conv_shift's per-call scratch: the weight twice in f32 and one padded output frame */
    uint64_t wmax = 0;
    for (int i = 0; i < L; i++) {
        uint64_t ww = (uint64_t)c->dec_ch[i] * c->dec_ch[i] * 27 * 4 * 2;
        if (ww > wmax) wmax = ww;
    }
    *caches_out = caches;
    *peak_out = peak + wmax + (uint64_t)c->dec_ch[L - 1] * (uint64_t)(h * c->spatial + 2) * (w * c->spatial + 2) * 4;
}

/* the tile size (th x tw latent pixels) and the tile counts of a tiling
 * of h x w (tl NULL or tile 0: one whole tile) */
static void tile_grid(int h, int w, const struct wan_vae_tiling *tl, int *th, int *tw, int *ny, int *nx)
{
    int tile = tl ? tl->tile : 0, ov = tl ? tl->overlap : 0, st[MAX_TILES + 1];
    *th = tile > 0 && tile < h ? tile : h;
    *tw = tile > 0 && tile < w ? tile : w;
    *ny = tile > 0 && ov < tile ? tile_starts(h, tile, ov, st, MAX_TILES) : 1;
    *nx = tile > 0 && ov < tile ? tile_starts(w, tile, ov, st, MAX_TILES) : 1;
}

uint64_t wan_vae_decode_act_bytes(const struct wan_vae_config *c, int h, int w, const struct wan_vae_tiling *tl)
{
    int th, tw, ny, nx;
    tile_grid(h, w, tl, &th, &tw, &ny, &nx);
    uint64_t caches, peak, HW = (uint64_t)h * w * c->spatial * c->spatial;
    dec_act(c, th, tw, &caches, &peak);
    /* every tile keeps its own caches; one tile computes at a time; every
     * tile's output of a chunk is kept for the blend, and the assembled frames */
    uint64_t tile_out = (uint64_t)th * tw * c->spatial * c->spatial * 3 * (uint64_t)c->temporal * 4;
    return (uint64_t)ny * nx * (caches + tile_out) + peak + HW * 4 * 3 * (uint64_t)c->temporal;
}

uint64_t wan_vae_decode_dev_bytes(const struct wan_vae_config *c, int h, int w, const struct wan_vae_tiling *tl)
{
    int th, tw, ny, nx;
    tile_grid(h, w, tl, &th, &tw, &ny, &nx);
    uint64_t caches, peak;
    dec_act(c, th, tw, &caches, &peak);
    /* the tiles' caches (tile-major: one tile's), one tile computing, its
     * latents going up, the product attention's scores where the fused
     * kernel lacks the head size */
    uint64_t live = tl && tl->tile_major ? 1 : (uint64_t)ny * nx;
    return live * caches + peak + (uint64_t)c->z_dim * th * tw * 4 + nn_attention_products_bytes(c->dec_ch[0], th * tw, th * tw);
}

uint64_t wan_vae_decode_host_bytes(const struct wan_vae_config *c, int h, int w, const struct wan_vae_tiling *tl)
{
    int th, tw, ny, nx;
    tile_grid(h, w, tl, &th, &tw, &ny, &nx);
    int major = tl && tl->tile_major && ny * nx > 1;
    uint64_t px = (uint64_t)th * tw * c->spatial * c->spatial, frame = (uint64_t)h * w * c->spatial * c->spatial * 3 * 4;
    /* frame-major: every tile's output of a chunk; tile-major: one frame of
     * every tile and one tile's chunk; one frame assembled, the latent tile */
    uint64_t tiles = major ? (uint64_t)ny * nx * 3 * px * 4 + 3 * px * 4 * (uint64_t)c->temporal
                           : (uint64_t)ny * nx * 3 * px * 4 * (uint64_t)c->temporal;
    return tiles + frame + (uint64_t)c->z_dim * th * tw * 4;
}

uint64_t wan_vae_decode_spill_bytes(const struct wan_vae_config *c, int h, int w, const struct wan_vae_tiling *tl, int F)
{
    int th, tw, ny, nx, ys[MAX_TILES + 1], xs[MAX_TILES + 1];
    tile_grid(h, w, tl, &th, &tw, &ny, &nx);
    if (!tl || !tl->tile_major || ny * nx < 2) return 0;
    tile_starts(h, tl->tile, tl->overlap, ys, MAX_TILES);
    tile_starts(w, tl->tile, tl->overlap, xs, MAX_TILES);
    uint64_t px = 0; /* the tiles' output pixels: edge tiles are smaller */
    for (int ty = 0; ty < ny; ty++)
        for (int tx = 0; tx < nx; tx++)
            px += (uint64_t)(h - ys[ty] < th ? h - ys[ty] : th) * (w - xs[tx] < tw ? w - xs[tx] : tw);
    return px * c->spatial * c->spatial * 3 * 4 * (uint64_t)F;
}

uint64_t wan_vae_encode_act_bytes(const struct wan_vae_config *c, int H, int W)
{
    int L = c->n_levels, nrb = c->num_res_blocks;
    uint64_t hw = (uint64_t)H * W, caches = 0, peak = 0;
    int t = c->temporal, prev = c->enc_ch[0];
    caches += 3ull * 2 * hw * 4;
    peak = (3ull * (t + 2) + 3ull * t + (uint64_t)prev * t) * hw * 4;
    for (int i = 0; i < L; i++) {
        for (int j = 0; j < nrb; j++) {
            caches += res_cache(prev, c->enc_ch[i], hw);
            uint64_t wk = res_work(prev, c->enc_ch[i], t, hw);
            if (wk > peak) peak = wk;
            prev = c->enc_ch[i];
        }
        if (i + 1 < L) {
            uint64_t wk = ((uint64_t)prev * t * hw + (uint64_t)prev * (hw + 2 * W + 2 * H + 1) +
                           (uint64_t)prev * t * hw / 4 * 3) * 4;
            if (wk > peak) peak = wk;
            hw /= 4;
            if (c->temporal_down[i]) { caches += (uint64_t)prev * hw * 4; t = t / 2 ? t / 2 : 1; }
            H /= 2; W /= 2;
        }
    }
    caches += 2 * res_cache(prev, prev, hw) + (uint64_t)prev * 2 * hw * 4;
    return caches + peak;
}
