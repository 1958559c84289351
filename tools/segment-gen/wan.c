/* wan.c — the Wan2.1 T2V DiT (wan.h): the layouts as name tables, the loader
 * and the forward pass, in the shape of llama2.c's run.c.
 *
 * Forward (Wan2.1 wan/modules/model.py; diffusers transformer_wan.py):
 *   tokens   = Conv3d 1x2x2 patch embedding of the latent (a GEMM over patches)
 *   e        = MLP(sinusoid(t)) (flip_sin_to_cos: [cos | sin]); e6 = Linear(SiLU(e)) -> 6 x dim
 *   ctx      = Linear(GELU_tanh(Linear(text zero-padded to 512 rows)))
 *   block:   x += gate1 * SelfAttn(LN(x) * (1 + scale1) + shift1)   (RMSNorm q, k over all
 *                heads, 3-D RoPE), x += CrossAttn(LN_affine(x), ctx),
 *            x += gate2 * FFN_gelu_tanh(LN(x) * (1 + scale2) + shift2);
 *            (shift1, scale1, gate1, shift2, scale2, gate2) = modulation + e6
 *   head:    Linear(LN(x) * (1 + scale) + shift), (shift, scale) = head modulation + e;
 *            unpatchify.
 *
 * Backends: every buffer of struct wan_state is nn_alloc'ed (device memory
 * on NN_CUDA). What the host builds — the patches of the latents and of
 * VACE's context, the zero-padded text rows, the RoPE tables, the timestep
 * sinusoid — is written into a host staging buffer and nn_upload'ed; the
 * head's output is nn_download'ed and scattered on the host. On NN_CPU the
 * nn buffers are host memory: the host writes them in place (no staging
 * buffer, nn_upload / nn_download of a buffer onto itself do nothing), which
 * is the CPU path as it was, bit for bit. */
#include "wan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "jsonio.h"
#include "log.h"
#include "mem.h"
#include "sig.h"
#include "wan_sched.h"

/* ---- layouts: one name per role and layout ---- */

enum role {
    R_PATCH_W, R_PATCH_B, R_TEXT1_W, R_TEXT1_B, R_TEXT2_W, R_TEXT2_B, R_TIME1_W, R_TIME1_B, R_TIME2_W,
    R_TIME2_B, R_TPROJ_W, R_TPROJ_B, R_HEAD_W, R_HEAD_B, R_HEAD_MOD,
    /* per block ("%d" is the block) */
    R_Q_W, R_Q_B, R_K_W, R_K_B, R_V_W, R_V_B, R_O_W, R_O_B, R_NORM_Q, R_NORM_K,
    R_CQ_W, R_CQ_B, R_CK_W, R_CK_B, R_CV_W, R_CV_B, R_CO_W, R_CO_B, R_CNORM_Q, R_CNORM_K,
    R_CNORM_W, R_CNORM_B, R_FFN1_W, R_FFN1_B, R_FFN2_W, R_FFN2_B, R_MOD,
    /* VACE: the context's patch embedding (once), a VACE block's projections */
    R_VPATCH_W, R_VPATCH_B, R_VIN_W, R_VIN_B, R_VOUT_W, R_VOUT_B,
    R_N
};
#define R_FIRST_BLOCK R_Q_W

/* [role] = { diffusers, Wan2.1 original (also ComfyUI's, under its prefix) } */
static const char *const role_name[R_N][2] = {
    [R_PATCH_W] = { "patch_embedding.weight", "patch_embedding.weight" },
    [R_PATCH_B] = { "patch_embedding.bias", "patch_embedding.bias" },
    [R_TEXT1_W] = { "condition_embedder.text_embedder.linear_1.weight", "text_embedding.0.weight" },
    [R_TEXT1_B] = { "condition_embedder.text_embedder.linear_1.bias", "text_embedding.0.bias" },
    [R_TEXT2_W] = { "condition_embedder.text_embedder.linear_2.weight", "text_embedding.2.weight" },
    [R_TEXT2_B] = { "condition_embedder.text_embedder.linear_2.bias", "text_embedding.2.bias" },
    [R_TIME1_W] = { "condition_embedder.time_embedder.linear_1.weight", "time_embedding.0.weight" },
    [R_TIME1_B] = { "condition_embedder.time_embedder.linear_1.bias", "time_embedding.0.bias" },
    [R_TIME2_W] = { "condition_embedder.time_embedder.linear_2.weight", "time_embedding.2.weight" },
    [R_TIME2_B] = { "condition_embedder.time_embedder.linear_2.bias", "time_embedding.2.bias" },
    [R_TPROJ_W] = { "condition_embedder.time_proj.weight", "time_projection.1.weight" },
    [R_TPROJ_B] = { "condition_embedder.time_proj.bias", "time_projection.1.bias" },
    [R_HEAD_W] = { "proj_out.weight", "head.head.weight" },
    [R_HEAD_B] = { "proj_out.bias", "head.head.bias" },
    [R_HEAD_MOD] = { "scale_shift_table", "head.modulation" },
    [R_Q_W] = { "blocks.%d.attn1.to_q.weight", "blocks.%d.self_attn.q.weight" },
    [R_Q_B] = { "blocks.%d.attn1.to_q.bias", "blocks.%d.self_attn.q.bias" },
    [R_K_W] = { "blocks.%d.attn1.to_k.weight", "blocks.%d.self_attn.k.weight" },
    [R_K_B] = { "blocks.%d.attn1.to_k.bias", "blocks.%d.self_attn.k.bias" },
    [R_V_W] = { "blocks.%d.attn1.to_v.weight", "blocks.%d.self_attn.v.weight" },
    [R_V_B] = { "blocks.%d.attn1.to_v.bias", "blocks.%d.self_attn.v.bias" },
    [R_O_W] = { "blocks.%d.attn1.to_out.0.weight", "blocks.%d.self_attn.o.weight" },
    [R_O_B] = { "blocks.%d.attn1.to_out.0.bias", "blocks.%d.self_attn.o.bias" },
    [R_NORM_Q] = { "blocks.%d.attn1.norm_q.weight", "blocks.%d.self_attn.norm_q.weight" },
    [R_NORM_K] = { "blocks.%d.attn1.norm_k.weight", "blocks.%d.self_attn.norm_k.weight" },
    [R_CQ_W] = { "blocks.%d.attn2.to_q.weight", "blocks.%d.cross_attn.q.weight" },
    [R_CQ_B] = { "blocks.%d.attn2.to_q.bias", "blocks.%d.cross_attn.q.bias" },
    [R_CK_W] = { "blocks.%d.attn2.to_k.weight", "blocks.%d.cross_attn.k.weight" },
    [R_CK_B] = { "blocks.%d.attn2.to_k.bias", "blocks.%d.cross_attn.k.bias" },
    [R_CV_W] = { "blocks.%d.attn2.to_v.weight", "blocks.%d.cross_attn.v.weight" },
    [R_CV_B] = { "blocks.%d.attn2.to_v.bias", "blocks.%d.cross_attn.v.bias" },
    [R_CO_W] = { "blocks.%d.attn2.to_out.0.weight", "blocks.%d.cross_attn.o.weight" },
    [R_CO_B] = { "blocks.%d.attn2.to_out.0.bias", "blocks.%d.cross_attn.o.bias" },
    [R_CNORM_Q] = { "blocks.%d.attn2.norm_q.weight", "blocks.%d.cross_attn.norm_q.weight" },
    [R_CNORM_K] = { "blocks.%d.attn2.norm_k.weight", "blocks.%d.cross_attn.norm_k.weight" },
    /* diffusers swapped Wan's norm2/norm3: its norm2 is the cross-attention norm */
    [R_CNORM_W] = { "blocks.%d.norm2.weight", "blocks.%d.norm3.weight" },
    [R_CNORM_B] = { "blocks.%d.norm2.bias", "blocks.%d.norm3.bias" },
    [R_FFN1_W] = { "blocks.%d.ffn.net.0.proj.weight", "blocks.%d.ffn.0.weight" },
    [R_FFN1_B] = { "blocks.%d.ffn.net.0.proj.bias", "blocks.%d.ffn.0.bias" },
    [R_FFN2_W] = { "blocks.%d.ffn.net.2.weight", "blocks.%d.ffn.2.weight" },
    [R_FFN2_B] = { "blocks.%d.ffn.net.2.bias", "blocks.%d.ffn.2.bias" },
    [R_MOD] = { "blocks.%d.scale_shift_table", "blocks.%d.modulation" },
    /* a VACE block is a block under "vace_blocks.%d." with these two more */
    [R_VPATCH_W] = { "vace_patch_embedding.weight", "vace_patch_embedding.weight" },
    [R_VPATCH_B] = { "vace_patch_embedding.bias", "vace_patch_embedding.bias" },
    [R_VIN_W] = { "vace_blocks.%d.proj_in.weight", "vace_blocks.%d.before_proj.weight" },
    [R_VIN_B] = { "vace_blocks.%d.proj_in.bias", "vace_blocks.%d.before_proj.bias" },
    [R_VOUT_W] = { "vace_blocks.%d.proj_out.weight", "vace_blocks.%d.after_proj.weight" },
    [R_VOUT_B] = { "vace_blocks.%d.proj_out.bias", "vace_blocks.%d.after_proj.bias" },
};
/* roles with a block number ("%d") */
static int role_per_block(int role) { return role >= R_FIRST_BLOCK && role != R_VPATCH_W && role != R_VPATCH_B; }

/* names that mark checkpoints of the Wan family we do not run (either layout) */
static const struct { const char *name, *what; } other_archs[] = {
    { "img_emb.proj.0.weight", "a Wan2.1 image-to-video (I2V/FLF2V) checkpoint" },
    { "blocks.0.cross_attn.k_img.weight", "a Wan2.1 image-to-video (I2V/FLF2V) checkpoint" },
    { "condition_embedder.image_embedder.norm1.weight", "a Wan2.1 image-to-video (I2V/FLF2V) checkpoint" },
    { "blocks.0.attn2.add_k_proj.weight", "a Wan2.1 image-to-video (I2V/FLF2V) checkpoint" },
};

static const char *const prefixes[] = { "", "model.diffusion_model.", "diffusion_model.", "model.", NULL };

/* the name of a role; vace: block `layer` of the VACE blocks ("vace_" + the
 * block's name: vace_blocks.N.self_attn.q ...) */
static void role_fmt(const struct wan *m, int role, int layer, int vace, char *buf, size_t n)
{
    const char *f = role_name[role][m->layout];
    char tmp[160];
    if (role_per_block(role)) snprintf(tmp, sizeof tmp, f, layer);
    else snprintf(tmp, sizeof tmp, "%s", f);
    snprintf(buf, n, "%s%s", vace && role < R_VPATCH_W ? "vace_" : "", tmp);
}

/* expected shape of a role; returns n_dims */
static int role_shape(const struct wan_config *c, int role, int64_t *s)
{
    int64_t d = c->dim;
    switch (role) {
    case R_PATCH_W: s[0] = d; s[1] = c->in_ch; s[2] = c->pt; s[3] = c->ph; s[4] = c->pw; return 5;
    case R_VPATCH_W: s[0] = d; s[1] = c->vace_in; s[2] = c->pt; s[3] = c->ph; s[4] = c->pw; return 5;
    case R_VIN_W: case R_VOUT_W: s[0] = d; s[1] = d; return 2;
    case R_TEXT1_W: s[0] = d; s[1] = c->text_dim; return 2;
    case R_TIME1_W: s[0] = d; s[1] = c->freq_dim; return 2;
    case R_TEXT2_W: case R_TIME2_W:
    case R_Q_W: case R_K_W: case R_V_W: case R_O_W: case R_CQ_W: case R_CK_W: case R_CV_W: case R_CO_W:
        s[0] = d; s[1] = d; return 2;
    case R_TPROJ_W: s[0] = 6 * d; s[1] = d; return 2;
    case R_TPROJ_B: s[0] = 6 * d; return 1;
    case R_HEAD_W: s[0] = (int64_t)c->out_ch * c->pt * c->ph * c->pw; s[1] = d; return 2;
    case R_HEAD_B: s[0] = (int64_t)c->out_ch * c->pt * c->ph * c->pw; return 1;
    case R_HEAD_MOD: s[0] = 1; s[1] = 2; s[2] = d; return 3;
    case R_MOD: s[0] = 1; s[1] = 6; s[2] = d; return 3;
    case R_FFN1_W: s[0] = c->ffn; s[1] = d; return 2;
    case R_FFN1_B: s[0] = c->ffn; return 1;
    case R_FFN2_W: s[0] = d; s[1] = c->ffn; return 2;
    default: s[0] = d; return 1;   /* biases and norm weights of width dim */
    }
}

static int is_float(enum wt_dtype t)
{
    return t == WT_F32 || t == WT_F16 || t == WT_BF16 || t == WT_F8_E4M3 || t == WT_F8_E5M2;
}

/* remember a loaded field for the weight residency (wan_wres_new) */
static int add_field(struct wan *m, struct nn_w *w, size_t n, int main, int vace)
{
    if ((m->n_fields & (m->n_fields - 1)) == 0) {   /* 0, 1, 2, 4, ...: grow to twice */
        struct wan_wfield *f = realloc(m->fields, (size_t)(m->n_fields ? 2 * m->n_fields : 1) * sizeof *f);
        if (!f) return iso_fail(ISO_EINTERNAL, "out of memory");
        m->fields = f;
    }
    m->fields[m->n_fields++] = (struct wan_wfield){ w, n, main, vace };
    return 0;
}

/* one weight by role: shape checked, fp8 "scaled" weights get the scale
 * stored beside them as <name minus "weight">scale_weight (ComfyUI) */
static int load_role(struct wan *m, int role, int layer, int vace, struct nn_w *out)
{
    char name[160];
    int64_t shape[WT_MAX_DIMS];
    const struct wt_tensor *t;
    role_fmt(m, role, layer, vace, name, sizeof name);
    int nd = role_shape(&m->cfg, role, shape);
    int rc = weights_expect(m->file, m->prefix, name, nd, shape, &t);
    if (rc) return rc;
    if (!is_float(t->dtype) || !t->contiguous)
        return iso_fail(ISO_EDATA, "'%s': tensor '%s%s' is %s%s; a Wan DiT needs f32, f16, bf16 or fp8 weights",
                        weights_path(m->file), m->prefix, name, wt_dtype_name(t->dtype),
                        t->contiguous ? "" : " (not contiguous)");
    *out = nn_w_of(t);
    if (t->dtype == WT_F8_E4M3 || t->dtype == WT_F8_E5M2) {
        size_t n = strlen(name);
        if (n > 6 && strcmp(name + n - 6, "weight") == 0) {
            char sname[192];
            snprintf(sname, sizeof sname, "%s%.*sscale_weight", m->prefix, (int)(n - 6), name);
            const struct wt_tensor *st = weights_find(m->file, sname);
            if (st) {
                float sc;
                if (st->nelem != 1 || (rc = weights_to_f32(st, 0, 1, &sc)))
                    return rc ? rc : iso_fail(ISO_EDATA, "'%s': '%s' is not a single scale", weights_path(m->file), sname);
                if (!isfinite(sc) || sc <= 0)
                    return iso_fail(ISO_EDATA, "'%s': '%s' is %g, not a positive scale", weights_path(m->file), sname,
                                    (double)sc);
                out->scale = sc;
            }
        }
    }
    if (role_per_block(role)) m->block_bytes += t->nbytes;
    else m->resident_bytes += t->nbytes;
    if (t->nbytes > m->largest_tensor) m->largest_tensor = t->nbytes;
    int blk = role_per_block(role);
    return add_field(m, out, (size_t)t->nelem, blk && !vace ? layer : -1, blk && vace ? layer : -1);
}

static const struct wt_tensor *find_role(const struct wan *m, int role, int layer, int vace)
{
    char name[160], full[200];
    role_fmt(m, role, layer, vace, name, sizeof name);
    snprintf(full, sizeof full, "%s%s", m->prefix, name);
    return weights_find(m->file, full);
}

/* config.json beside the weights (-m DIR): diffusers' or Wan's field names */
static int read_config(struct wan *m, const char *path, int *heads, double *eps, int *vace_from_config)
{
    if (!fs_is_dir(path)) return 0;
    char *cfgp = fs_join(path, "config.json");
    if (!cfgp) return iso_fail(ISO_EINTERNAL, "out of memory");
    int rc = 0;
    json_t *root = NULL;
    if (!fs_exists(cfgp)) goto done;
    if ((rc = jsonio_load(cfgp, &root))) goto done;
    struct wan_config *c = &m->cfg;
    int64_t h = jsonio_int(root, m->layout == WAN_LAYOUT_DIFFUSERS ? "num_attention_heads" : "num_heads", 0);
    *eps = jsonio_num(root, "eps", *eps);
    /* what config.json says must agree with the tensors */
    struct { const char *key; int64_t want; } chk[] = {
        { "num_layers", c->layers }, { "ffn_dim", c->ffn }, { "freq_dim", c->freq_dim },
        { "text_dim", c->text_dim },
        { m->layout == WAN_LAYOUT_DIFFUSERS ? "in_channels" : "in_dim", c->in_ch },
        { m->layout == WAN_LAYOUT_DIFFUSERS ? "out_channels" : "out_dim", c->out_ch },
        { "dim", c->dim },
    };
    for (size_t i = 0; i < sizeof chk / sizeof chk[0]; i++) {
        int64_t v = jsonio_int(root, chk[i].key, -1);
        if (v >= 0 && v != chk[i].want) {
            rc = iso_fail(ISO_EDATA, "'%s' says %s %lld, the weights have %lld", cfgp, chk[i].key, (long long)v,
                          (long long)chk[i].want);
            goto done;
        }
    }
    if (m->layout == WAN_LAYOUT_DIFFUSERS) {
        int64_t hd = jsonio_int(root, "attention_head_dim", -1);
        if (h > 0 && hd > 0 && h * hd != c->dim) {
            rc = iso_fail(ISO_EDATA, "'%s': %lld heads x %lld is not the weights' width %d", cfgp, (long long)h,
                          (long long)hd, c->dim);
            goto done;
        }
    }
    /* Wan's VaceWanModel says model_type "vace"; diffusers has no model_type */
    const char *mt = jsonio_str(root, "model_type", NULL);
    if (mt && strcmp(mt, "t2v") != 0 && !(strcmp(mt, "vace") == 0 && c->vace_n > 0)) {
        if (strcmp(mt, "vace") == 0)
            rc = iso_fail(ISO_EDATA, "'%s': model_type \"vace\" but the weights have no VACE blocks", cfgp);
        else
            rc = iso_fail(ISO_EDATA, "'%s': model_type \"%s\": only Wan2.1 text-to-video (t2v) and VACE are supported "
                          "yet", cfgp, mt);
        goto done;
    }
    if (c->vace_n > 0) {
        const char *ik = m->layout == WAN_LAYOUT_DIFFUSERS ? "vace_in_channels" : "vace_in_dim";
        int64_t vin = jsonio_int(root, ik, -1);
        if (vin >= 0 && vin != c->vace_in) {
            rc = iso_fail(ISO_EDATA, "'%s' says %s %lld, the weights have %d", cfgp, ik, (long long)vin, c->vace_in);
            goto done;
        }
        json_t *vl = json_object_get(root, "vace_layers");
        if (vl && !json_is_null(vl)) {
            if (!json_is_array(vl) || (int)json_array_size(vl) != c->vace_n) {
                rc = iso_fail(ISO_EDATA, "'%s': vace_layers is not a list of %d block indices (the weights have %d VACE "
                              "blocks)", cfgp, c->vace_n, c->vace_n);
                goto done;
            }
            for (int i = 0; i < c->vace_n; i++) {
                json_t *e = json_array_get(vl, (size_t)i);
                json_int_t v = json_is_integer(e) ? json_integer_value(e) : -1;
                if (v < 0 || v >= c->layers || (i == 0 && v != 0) || (i > 0 && v <= c->vace_layers[i - 1])) {
                    rc = iso_fail(ISO_EDATA, "'%s': vace_layers[%d] is not a block index in 0..%d ascending from 0", cfgp,
                                  i, c->layers - 1);
                    goto done;
                }
                c->vace_layers[i] = (int)v;
            }
            *vace_from_config = 1;
        }
    } else if (json_object_get(root, "vace_layers")) {
        rc = iso_fail(ISO_EDATA, "'%s' has vace_layers but the weights have no VACE blocks ('%s%s')", cfgp, m->prefix,
                      role_name[R_VPATCH_W][m->layout]);
        goto done;
    }
    if (h > 0) *heads = (int)h;
done:
    json_decref(root);
    free(cfgp);
    return rc;
}

int wan_open(const char *path, int heads_override, struct wan **out)
{
    *out = NULL;
    struct wan *m = calloc(1, sizeof *m);
    if (!m) return iso_fail(ISO_EINTERNAL, "out of memory");
    int rc = weights_open(path, &m->file);
    if (rc) goto fail;
    const char *fp = weights_path(m->file);
    struct wan_config *c = &m->cfg;

    /* architecture and layout from the names */
    const char *p;
    if ((p = weights_detect_prefix(m->file, role_name[R_TIME1_W][WAN_LAYOUT_WAN], prefixes))) {
        m->layout = WAN_LAYOUT_WAN;
    } else if ((p = weights_detect_prefix(m->file, role_name[R_TIME1_W][WAN_LAYOUT_DIFFUSERS], prefixes))) {
        m->layout = WAN_LAYOUT_DIFFUSERS;
    } else {
        rc = iso_fail(ISO_EDATA, "'%s' is not a Wan2.1 DiT: it has no '%s' (Wan) or '%s' (diffusers)", fp,
                      role_name[R_TIME1_W][WAN_LAYOUT_WAN], role_name[R_TIME1_W][WAN_LAYOUT_DIFFUSERS]);
        goto fail;
    }
    m->prefix = p;
    for (size_t i = 0; i < sizeof other_archs / sizeof other_archs[0]; i++) {
        char full[200];
        snprintf(full, sizeof full, "%s%s", p, other_archs[i].name);
        if (weights_find(m->file, full)) {
            rc = iso_fail(ISO_EDATA, "'%s' is %s (it has '%s'): not supported yet, only Wan2.1 text-to-video is", fp,
                          other_archs[i].what, full);
            goto fail;
        }
    }

    /* dimensions from the shapes (never from a published default) */
    int64_t s[WT_MAX_DIMS] = { -1, -1, -1, -1, -1 };
    const struct wt_tensor *t;
    char name[160];
    if ((rc = weights_expect(m->file, p, role_name[R_PATCH_W][m->layout], 5, s, &t))) goto fail;
    c->dim = (int)s[0]; c->in_ch = (int)s[1]; c->pt = (int)s[2]; c->ph = (int)s[3]; c->pw = (int)s[4];
    s[0] = c->dim; s[1] = -1;
    if ((rc = weights_expect(m->file, p, role_name[R_TIME1_W][m->layout], 2, s, &t))) goto fail;
    c->freq_dim = (int)s[1];
    s[0] = c->dim; s[1] = -1;
    if ((rc = weights_expect(m->file, p, role_name[R_TEXT1_W][m->layout], 2, s, &t))) goto fail;
    c->text_dim = (int)s[1];
    s[0] = -1; s[1] = c->dim;
    if ((rc = weights_expect(m->file, p, role_name[R_HEAD_W][m->layout], 2, s, &t))) goto fail;
    int64_t patch = (int64_t)c->pt * c->ph * c->pw;
    if (c->dim <= 0 || c->dim > (1 << 16) || patch <= 0 || patch > 64 || s[0] % patch || c->freq_dim % 2 ||
        c->freq_dim <= 0 || c->text_dim <= 0 || c->text_dim > (1 << 16) || c->in_ch <= 0 || c->in_ch > 4096) {
        rc = iso_fail(ISO_EDATA, "'%s': implausible Wan dimensions (dim %d, patch %dx%dx%d, freq_dim %d, text_dim %d)",
                      fp, c->dim, c->pt, c->ph, c->pw, c->freq_dim, c->text_dim);
        goto fail;
    }
    c->out_ch = (int)(s[0] / patch);
    if (c->in_ch != c->out_ch) {
        rc = iso_fail(ISO_EDATA, "'%s' takes %d latent channels in and gives %d out: an image-to-video or "
                      "conditioned Wan checkpoint, not supported yet (text-to-video has %d and %d)",
                      fp, c->in_ch, c->out_ch, c->out_ch, c->out_ch);
        goto fail;
    }
    while (c->layers < 100000) {
        if (!find_role(m, R_Q_W, c->layers, 0)) break;
        c->layers++;
    }
    if (c->layers == 0) {
        role_fmt(m, R_Q_W, 0, 0, name, sizeof name);
        rc = iso_fail(ISO_EDATA, "'%s' has no transformer blocks (no tensor '%s%s')", fp, p, name);
        goto fail;
    }
    s[0] = -1; s[1] = c->dim;
    role_fmt(m, R_FFN1_W, 0, 0, name, sizeof name);
    if ((rc = weights_expect(m->file, p, name, 2, s, &t))) goto fail;
    c->ffn = (int)s[0];
    c->cross_attn_norm = find_role(m, R_CNORM_W, 0, 0) != NULL;

    /* VACE: the context's patch embedding or VACE blocks; the blocks counted */
    if (find_role(m, R_VPATCH_W, 0, 0) || find_role(m, R_Q_W, 0, 1)) {
        while (c->vace_n < c->layers + 1 && find_role(m, R_Q_W, c->vace_n, 1)) c->vace_n++;
        if (c->vace_n == 0) {
            role_fmt(m, R_Q_W, 0, 1, name, sizeof name);
            rc = iso_fail(ISO_EDATA, "'%s' has '%s%s' but no VACE blocks (no tensor '%s%s')", fp, p,
                          role_name[R_VPATCH_W][m->layout], p, name);
            goto fail;
        }
        if (c->vace_n > c->layers) {
            rc = iso_fail(ISO_EDATA, "'%s' has more VACE blocks than its %d transformer blocks", fp, c->layers);
            goto fail;
        }
        int64_t vs[WT_MAX_DIMS] = { c->dim, -1, c->pt, c->ph, c->pw };
        if ((rc = weights_expect(m->file, p, role_name[R_VPATCH_W][m->layout], 5, vs, &t))) goto fail;
        c->vace_in = (int)vs[1];
        if (c->vace_in <= 0 || c->vace_in > 4096) {
            rc = iso_fail(ISO_EDATA, "'%s': implausible VACE context width %d", fp, c->vace_in);
            goto fail;
        }
        if (!(c->vace_layers = calloc((size_t)c->vace_n, sizeof *c->vace_layers))) {
            rc = iso_fail(ISO_EINTERNAL, "out of memory");
            goto fail;
        }
    }

    /* heads: config.json, else --heads, else dim/128 (every released Wan2.1: 1.3B 12 x 128, 14B 40 x 128) */
    int heads = 0, vace_cfg = 0;
    double eps = 1e-6;   /* Wan2.1's eps (config.json "eps" when present) */
    if ((rc = read_config(m, path, &heads, &eps, &vace_cfg))) goto fail;
    /* vace_layers without config.json: every k-th block, k = layers / VACE blocks (Wan2.1-VACE-1.3B:
     * 15 of 30, every 2nd; 14B: 8 of 40, every 5th; ComfyUI infers them so), or Wan's default
     * range(0, layers, 2) when the count is ceil(layers / 2) */
    if (c->vace_n > 0 && vace_cfg) {
        snprintf(c->vace_layers_from, sizeof c->vace_layers_from, "config.json");
    } else if (c->vace_n > 0) {
        int k = c->layers % c->vace_n == 0 ? c->layers / c->vace_n
                                           : (c->vace_n == (c->layers + 1) / 2 ? 2 : 0);
        if (!k) {
            rc = iso_fail(ISO_EDATA, "'%s': cannot tell at which of its %d blocks its %d VACE blocks act (not every "
                          "k-th block); give a directory whose config.json has vace_layers", fp, c->layers, c->vace_n);
            goto fail;
        }
        for (int i = 0; i < c->vace_n; i++) c->vace_layers[i] = i * k;
        if (k == 1)
            snprintf(c->vace_layers_from, sizeof c->vace_layers_from,
                     "tensor names: %d VACE blocks at every one of %d blocks", c->vace_n, c->layers);
        else
            snprintf(c->vace_layers_from, sizeof c->vace_layers_from,
                     "tensor names: %d VACE blocks at every %d%s of %d blocks", c->vace_n, k,
                     k == 2 ? "nd" : k == 3 ? "rd" : "th", c->layers);
    }
    c->heads_from = "config.json";
    if (heads_override > 0) {
        heads = heads_override;
        c->heads_from = "--heads";
    } else if (heads <= 0) {
        heads = c->dim / 128;
        c->heads_from = "dim/128";
    }
    if (heads <= 0 || c->dim % heads || (c->dim / heads) % 2 || c->dim / heads < 6) {
        rc = iso_fail(ISO_EDATA, "'%s': width %d does not split into %d heads (from %s) of an even size >= 6%s", fp,
                      c->dim, heads, c->heads_from,
                      heads_override > 0 ? "" : "; a model whose heads are not 128 wide needs --heads or a config.json");
        goto fail;
    }
    c->heads = heads;
    c->head_dim = c->dim / heads;
    c->eps = (float)eps;

    /* every weight by role */
    struct wan_weights *w = &m->w;
    m->w.blocks = calloc((size_t)c->layers, sizeof *m->w.blocks);
    if (!w->blocks) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto fail; }
    struct { int role; struct nn_w *dst; } top[] = {
        { R_PATCH_W, &w->patch_w }, { R_PATCH_B, &w->patch_b }, { R_TEXT1_W, &w->text1.w }, { R_TEXT1_B, &w->text1.b },
        { R_TEXT2_W, &w->text2.w }, { R_TEXT2_B, &w->text2.b }, { R_TIME1_W, &w->time1.w }, { R_TIME1_B, &w->time1.b },
        { R_TIME2_W, &w->time2.w }, { R_TIME2_B, &w->time2.b }, { R_TPROJ_W, &w->time_proj.w },
        { R_TPROJ_B, &w->time_proj.b }, { R_HEAD_W, &w->head.w }, { R_HEAD_B, &w->head.b },
        { R_HEAD_MOD, &w->head_mod },
    };
    for (size_t i = 0; i < sizeof top / sizeof top[0]; i++)
        if ((rc = load_role(m, top[i].role, 0, 0, top[i].dst))) goto fail;
    if (c->vace_n > 0) {
        if (!(w->vace = calloc((size_t)c->vace_n, sizeof *w->vace))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto fail; }
        if ((rc = load_role(m, R_VPATCH_W, 0, 0, &w->vpatch_w)) || (rc = load_role(m, R_VPATCH_B, 0, 0, &w->vpatch_b)))
            goto fail;
    }
    /* the main blocks, then the VACE blocks (l >= layers: VACE block l - layers) */
    for (int l = 0; l < c->layers + c->vace_n; l++) {
        int vace = l >= c->layers, vl = vace ? l - c->layers : l;
        struct wan_block *b = vace ? &w->vace[vl].b : &w->blocks[l];
        struct { int role; struct nn_w *dst; } blk[] = {
            { R_Q_W, &b->q.w }, { R_Q_B, &b->q.b }, { R_K_W, &b->k.w }, { R_K_B, &b->k.b }, { R_V_W, &b->v.w },
            { R_V_B, &b->v.b }, { R_O_W, &b->o.w }, { R_O_B, &b->o.b }, { R_NORM_Q, &b->norm_q },
            { R_NORM_K, &b->norm_k }, { R_CQ_W, &b->cq.w }, { R_CQ_B, &b->cq.b }, { R_CK_W, &b->ck.w },
            { R_CK_B, &b->ck.b }, { R_CV_W, &b->cv.w }, { R_CV_B, &b->cv.b }, { R_CO_W, &b->co.w },
            { R_CO_B, &b->co.b }, { R_CNORM_Q, &b->cnorm_q }, { R_CNORM_K, &b->cnorm_k }, { R_FFN1_W, &b->ffn1.w },
            { R_FFN1_B, &b->ffn1.b }, { R_FFN2_W, &b->ffn2.w }, { R_FFN2_B, &b->ffn2.b }, { R_MOD, &b->modulation },
            { R_CNORM_W, &b->cnorm_w }, { R_CNORM_B, &b->cnorm_b },
        };
        size_t n = sizeof blk / sizeof blk[0] - (c->cross_attn_norm ? 0 : 2);
        for (size_t i = 0; i < n; i++)
            if ((rc = load_role(m, blk[i].role, vl, vace, blk[i].dst))) goto fail;
        if (vace) {
            struct wan_vace_block *vb = &w->vace[vl];
            if (vl == 0 && ((rc = load_role(m, R_VIN_W, 0, 1, &vb->proj_in.w)) ||
                            (rc = load_role(m, R_VIN_B, 0, 1, &vb->proj_in.b))))
                goto fail;
            if ((rc = load_role(m, R_VOUT_W, vl, 1, &vb->proj_out.w)) ||
                (rc = load_role(m, R_VOUT_B, vl, 1, &vb->proj_out.b)))
                goto fail;
        }
    }
    /* the order the forward uses the blocks in (for streaming): VACE block k
     * just before main block vace_layers[k] (wan_forward) */
    m->order_main = calloc((size_t)c->layers, sizeof *m->order_main);
    m->order_vace = calloc((size_t)c->vace_n + 1, sizeof *m->order_vace);
    if (!m->order_main || !m->order_vace) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto fail; }
    for (int l = 0, k = 0, j = 0; l < c->layers; l++) {
        if (k < c->vace_n && c->vace_layers[k] == l) m->order_vace[k++] = j++;
        m->order_main[l] = j++;
    }
    /* the dtypes, for reports: the one of the block weights and of the rest */
    {
        enum wt_dtype bd = w->blocks[0].q.w.dtype, rd = w->patch_w.dtype;
        int scaled = w->blocks[0].q.w.scale != 1.0f;
        if (bd == rd) snprintf(m->dtype, sizeof m->dtype, "%s%s", wt_dtype_name(bd), scaled ? " (scaled)" : "");
        else snprintf(m->dtype, sizeof m->dtype, "blocks %s%s, rest %s", wt_dtype_name(bd), scaled ? " (scaled)" : "",
                      wt_dtype_name(rd));
    }
    *out = m;
    return 0;
fail:
    wan_close(&m);
    return rc;
}

void wan_close(struct wan **pm)
{
    struct wan *m = pm ? *pm : NULL;
    if (!m) return;
    wan_unload(m);
    weights_close(&m->file);
    free(m->w.blocks);
    free(m->w.vace);
    free(m->cfg.vace_layers);
    free(m->fields);
    free(m->order_main);
    free(m->order_vace);
    free(m);
    *pm = NULL;
}

int wan_wres_new(struct wan *m, enum nn_wres_mode mode, struct nn_wres **out)
{
    const struct wan_config *c = &m->cfg;
    struct nn_wres *r = nn_wres_new(mode, c->layers + c->vace_n);
    *out = NULL;
    if (!r) return ISO_EINTERNAL;
    for (int i = 0; i < m->n_fields; i++) {
        const struct wan_wfield *f = &m->fields[i];
        int block = f->vace >= 0 ? m->order_vace[f->vace] : f->main >= 0 ? m->order_main[f->main] : -1;
        int rc = nn_wres_add(r, block, f->w, f->n);
        if (rc) {
            nn_wres_free(&r);
            return rc;
        }
    }
    *out = r;
    return 0;
}

int wan_load(struct wan *m, struct nn *nn, enum nn_wres_mode mode)
{
    if (m->wres) return iso_fail(ISO_EUSAGE, "wan_load: the weights are loaded already");
    int rc = wan_wres_new(m, mode, &m->wres);
    if (!rc && (rc = nn_wres_load(m->wres, nn))) nn_wres_free(&m->wres);
    return rc;
}

void wan_unload(struct wan *m)
{
    if (m) nn_wres_free(&m->wres);
}

const char *wan_layout_name(const struct wan *m)
{
    if (m->layout == WAN_LAYOUT_DIFFUSERS) return "diffusers";
    return m->prefix[0] ? "wan (ComfyUI prefix)" : "wan";
}

int64_t wan_tokens(const struct wan_config *c, int F, int H, int W)
{
    if (F <= 0 || H <= 0 || W <= 0 || F % c->pt || H % c->ph || W % c->pw) return 0;
    return (int64_t)(F / c->pt) * (H / c->ph) * (W / c->pw);
}

/* ---- state: scratch for one geometry ---- */

struct wan_state {
    int F, H, W, gf, gh, gw, L, kp, kp_out, kp_v;
    float *x;          /* [L, dim] residual stream */
    float *vc, *vh;    /* VACE: [L, dim] control stream, hint (NULL without VACE) */
    const float *vace_ctx;   /* VACE context [vace_in, F, H, W], host memory (wan_state_set_vace) */
    float vace_scale;
    float *h;          /* [L, dim] normed / modulated input */
    float *q, *k, *v, *o;  /* [L, dim] */
    float *ck, *cv;    /* [512, dim] cross-attention keys, values */
    float *f;          /* [L, ffn] */
    float *patches;    /* [L, kp] (also the head's output [L, kp_out], VACE context patches [L, kp_v]) */
    float *rope_cos, *rope_sin; /* [L, head_dim/2] */
    float *tfreq;      /* [freq_dim] sinusoid */
    float *temb, *temb2;  /* e = the time embedding [dim]; scratch [dim] */
    float *tproj, *e6;    /* Linear(SiLU(e)) [6*dim]; + a block's modulation [6*dim] */
    float *hm;            /* head modulation + e [2*dim] */
    float *text_in;    /* [512, text_dim] zero-padded text; text_hid [512, dim] */
    float *text_hid;
    float *stage;      /* host staging of what is uploaded / downloaded (stage_floats), malloc'd; NULL on
                          NN_CPU, where the buffers above are host memory and are written in place */
};

/* the buffers of a state, in floats, in wan_state's order (n[] of WAN_NBUF) */
#define WAN_NBUF 22
static void state_sizes(const struct wan_config *c, int64_t L, size_t *n)
{
    size_t kp = (size_t)c->in_ch * c->pt * c->ph * c->pw, kpo = (size_t)c->out_ch * c->pt * c->ph * c->pw;
    size_t kpv = (size_t)c->vace_in * c->pt * c->ph * c->pw, kpm = kp > kpo ? kp : kpo;
    if (kpv > kpm) kpm = kpv;
    size_t Ld = (size_t)L * c->dim, T = WAN_TEXT_LEN, Lv = c->vace_n > 0 ? Ld : 0;
    size_t a[WAN_NBUF] = {
        Ld, Lv, Lv, Ld, Ld, Ld, Ld, Ld,                           /* x, vc, vh, h, q, k, v, o */
        T * c->dim, T * c->dim, (size_t)L * c->ffn,                /* ck, cv, f */
        (size_t)L * kpm,                                           /* patches */
        (size_t)L * (c->head_dim / 2), (size_t)L * (c->head_dim / 2),   /* rope_cos, rope_sin */
        (size_t)c->freq_dim, (size_t)c->dim, (size_t)c->dim,       /* tfreq, temb, temb2 */
        6 * (size_t)c->dim, 6 * (size_t)c->dim, 2 * (size_t)c->dim,   /* tproj, e6, hm */
        T * c->text_dim, T * c->dim,                               /* text_in, text_hid */
    };
    memcpy(n, a, sizeof a);
}

/* floats of the host staging buffer off the CPU: the largest upload or download
 * (patches in and out, the padded text rows, the sinusoid) */
static size_t stage_floats(const size_t *n)
{
    size_t m = n[11];                       /* patches */
    if (n[20] > m) m = n[20];               /* text_in */
    if (n[14] > m) m = n[14];               /* tfreq */
    return m;
}

uint64_t wan_activation_bytes(const struct wan_config *c, int F, int H, int W, int weights_f32)
{
    uint64_t L = (uint64_t)wan_tokens(c, F, H, W), n = 0;
    size_t sz[WAN_NBUF];
    state_sizes(c, (int64_t)L, sz);
    for (int i = 0; i < WAN_NBUF; i++) n += sz[i];
    /* nn core scratch: one attention score tile ([tile >= 16, Lk], at most 64 MiB unless 16 rows need more),
     * and for non-f32 weights one converted tile of output rows (at most 64 MiB) */
    uint64_t slice = UINT64_C(64) << 20, att = L * L * 4, att16 = 16 * L * 4;
    if (att > slice) att = att16 > slice ? att16 : slice;
    uint64_t conv = 0;
    if (!weights_f32) {
        uint64_t big = (uint64_t)c->ffn * c->dim * 4;
        conv = big < slice ? big : slice;
    }
    return n * 4 + att + conv;
}

uint64_t wan_device_activation_bytes(const struct wan_config *c, int F, int H, int W, uint64_t *host)
{
    size_t sz[WAN_NBUF];
    state_sizes(c, wan_tokens(c, F, H, W), sz);
    uint64_t b = 0;
    for (int i = 0; i < WAN_NBUF; i++)
        if (sz[i]) b += ((uint64_t)sz[i] * 4 + 255) / 256 * 256;   /* the backend's 256-byte blocks */
    if (host) *host = (uint64_t)stage_floats(sz) * 4;
    return b;
}

void wan_state_free(struct nn *nn, struct wan_state **ps)
{
    struct wan_state *s = ps ? *ps : NULL;
    if (!s) return;
    float **bufs[] = { &s->x, &s->vc, &s->vh, &s->h, &s->q, &s->k, &s->v, &s->o, &s->ck, &s->cv, &s->f, &s->patches,
                       &s->rope_cos, &s->rope_sin, &s->tfreq, &s->temb, &s->temb2, &s->tproj, &s->e6, &s->hm,
                       &s->text_in, &s->text_hid };
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) nn_release(nn, bufs[i]);
    free(s->stage);
    free(s);
    *ps = NULL;
}

/* where the host writes what goes into the backend buffer dev (or reads
 * what came from it): dev itself on the CPU, else the staging buffer */
static float *host_side(const struct wan_state *s, float *dev) { return s->stage ? s->stage : dev; }

/* the first error of a sequence */
static int first(int rc, int r) { return rc ? rc : r; }

/* RoPE angles (diffusers WanRotaryPosEmbed; Wan's rope_params): head_dim D
 * splits into t = D - 4*(D/6), h = w = 2*(D/6) channels; pair j of a part of
 * d channels turns by pos * theta^(-2j/d), theta 10000, pos the token's
 * frame, row or column. Computed in double as diffusers does (float64),
 * stored as float into host memory cos_t, sin_t [L, D/2]. */
static void rope_tables(const struct wan_config *c, const struct wan_state *s, float *cos_t, float *sin_t)
{
    int D = c->head_dim, hd = 2 * (D / 6), td = D - 2 * hd, half = D / 2;
    int parts[3] = { td, hd, hd };
    for (int f = 0; f < s->gf; f++)
        for (int y = 0; y < s->gh; y++)
            for (int x = 0; x < s->gw; x++) {
                size_t l = ((size_t)f * s->gh + y) * s->gw + x;
                int pos[3] = { f, y, x }, j0 = 0;
                for (int p = 0; p < 3; p++) {
                    for (int j = 0; j < parts[p] / 2; j++) {
                        double fr = 1.0 / pow(10000.0, (double)(2 * j) / parts[p]);
                        double a = pos[p] * fr;
                        cos_t[l * half + j0 + j] = (float)cos(a);
                        sin_t[l * half + j0 + j] = (float)sin(a);
                    }
                    j0 += parts[p] / 2;
                }
            }
}

int wan_state_new(const struct wan *m, struct nn *nn, int F, int H, int W, struct wan_state **out)
{
    const struct wan_config *c = &m->cfg;
    *out = NULL;
    int64_t L = wan_tokens(c, F, H, W);
    if (L <= 0 || L > (INT64_C(1) << 24))
        return iso_fail(ISO_EDATA, "latent %dx%dx%d does not divide into %dx%dx%d patches", F, H, W, c->pt, c->ph, c->pw);
    struct wan_state *s = calloc(1, sizeof *s);
    if (!s) return iso_fail(ISO_EINTERNAL, "out of memory");
    s->F = F; s->H = H; s->W = W;
    s->gf = F / c->pt; s->gh = H / c->ph; s->gw = W / c->pw;
    s->L = (int)L;
    s->kp = c->in_ch * c->pt * c->ph * c->pw;
    s->kp_out = c->out_ch * c->pt * c->ph * c->pw;
    s->kp_v = c->vace_in * c->pt * c->ph * c->pw;
    s->vace_scale = 1.0f;
    size_t n[WAN_NBUF];
    state_sizes(c, L, n);
    float **bufs[WAN_NBUF] = { &s->x, &s->vc, &s->vh, &s->h, &s->q, &s->k, &s->v, &s->o, &s->ck, &s->cv, &s->f,
                               &s->patches, &s->rope_cos, &s->rope_sin, &s->tfreq, &s->temb, &s->temb2, &s->tproj,
                               &s->e6, &s->hm, &s->text_in, &s->text_hid };
    for (int i = 0; i < WAN_NBUF; i++)
        if (n[i] && !(*bufs[i] = nn_alloc(nn, n[i]))) {
            wan_state_free(nn, &s);
            return ISO_ETEMPFAIL;
        }
    /* the RoPE tables: written in place on the CPU, else built on the host and uploaded once */
    float *tab = NULL;
    int rc = 0;
    if (nn_backend_of(nn) != NN_CPU) {
        if (!(s->stage = malloc(stage_floats(n) * sizeof(float))) || !(tab = malloc(2 * n[12] * sizeof(float)))) {
            wan_state_free(nn, &s);
            return iso_fail(ISO_EINTERNAL, "out of memory (host staging of the Wan state)");
        }
        rope_tables(c, s, tab, tab + n[12]);
        rc = first(nn_upload(nn, s->rope_cos, tab, n[12]), nn_upload(nn, s->rope_sin, tab + n[12], n[13]));
        free(tab);
    } else {
        rope_tables(c, s, s->rope_cos, s->rope_sin);
    }
    if (rc) {
        wan_state_free(nn, &s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- forward ---- */

int wan_embed_text(const struct wan *m, struct nn *nn, struct wan_state *s, const float *emb, int rows, float *ctx)
{
    const struct wan_config *c = &m->cfg;
    size_t n = (size_t)rows * c->text_dim, all = (size_t)WAN_TEXT_LEN * c->text_dim;
    /* zero padding to 512 rows, as Wan and diffusers' WanPipeline do: the
     * padded rows go through the MLP too (their output is not zero) */
    float *in = host_side(s, s->text_in);
    memset(in, 0, all * sizeof(float));
    memcpy(in, emb, n * sizeof(float));
    int rc = nn_upload(nn, s->text_in, in, all);
    nn_linear(nn, s->text_hid, s->text_in, WAN_TEXT_LEN, c->text_dim, c->dim, &m->w.text1.w, &m->w.text1.b);
    nn_act(nn, s->text_hid, s->text_hid, (size_t)WAN_TEXT_LEN * c->dim, NN_ACT_GELU_TANH);
    nn_linear(nn, ctx, s->text_hid, WAN_TEXT_LEN, c->dim, c->dim, &m->w.text2.w, &m->w.text2.b);
    return first(rc, nn_sync(nn));
}

/* diffusers' Timesteps(flip_sin_to_cos=True, downscale_freq_shift=0), in
 * float32 as it computes it: f_i = exp(-ln(10000) * i / half), [cos(t f) | sin(t f)] */
static void time_sinusoid(int freq_dim, float t, float *out)
{
    int half = freq_dim / 2;
    const float lnp = -9.210340371976184f;   /* -ln(10000) */
    for (int i = 0; i < half; i++) {
        float e = lnp * (float)i;
        e = e / (float)half;
        float a = t * expf(e);
        out[i] = cosf(a);
        out[half + i] = sinf(a);
    }
}

/* before the ops of streamed block i (forward order): its weights into place */
static int enter(const struct wan *m, int block) { return m->wres ? nn_wres_enter(m->wres, block) : 0; }

/* one block on the residual stream x [L, dim] (the main stream or VACE's control stream) */
static void block_forward(const struct wan *m, struct nn *nn, struct wan_state *s, const struct wan_block *b,
                          const float *ctx, float *x)
{
    const struct wan_config *c = &m->cfg;
    int L = s->L, d = c->dim, H = c->heads, D = c->head_dim;
    float eps = c->eps, sc = 1.0f / sqrtf((float)D);
    float *e = s->e6;   /* modulation + e6: shift1 scale1 gate1 shift2 scale2 gate2, each [dim] */
    nn_add_bias(nn, e, s->tproj, 1, 6 * d, &b->modulation);

    /* self-attention */
    nn_layernorm(nn, s->h, x, L, d, NULL, NULL, eps);
    nn_modulate(nn, s->h, s->h, L, d, e, e + d);
    nn_linear(nn, s->q, s->h, L, d, d, &b->q.w, &b->q.b);
    nn_linear(nn, s->k, s->h, L, d, d, &b->k.w, &b->k.b);
    nn_linear(nn, s->v, s->h, L, d, d, &b->v.w, &b->v.b);
    nn_rmsnorm(nn, s->q, s->q, L, d, &b->norm_q, eps);   /* over all heads, before the split */
    nn_rmsnorm(nn, s->k, s->k, L, d, &b->norm_k, eps);
    nn_rope(nn, s->q, L, H, D, s->rope_cos, s->rope_sin, 1);
    nn_rope(nn, s->k, L, H, D, s->rope_cos, s->rope_sin, 1);
    nn_attention(nn, s->o, s->q, s->k, s->v, L, L, H, D, sc, NULL, L);
    nn_linear(nn, s->h, s->o, L, d, d, &b->o.w, &b->o.b);
    nn_add_gated(nn, x, s->h, e + 2 * d, L, d);

    /* cross-attention to the 512 text rows (all of them: no mask, as Wan and diffusers) */
    const float *xin = x;
    if (b->cnorm_w.data) {
        nn_layernorm(nn, s->h, x, L, d, &b->cnorm_w, &b->cnorm_b, eps);
        xin = s->h;
    }
    nn_linear(nn, s->q, xin, L, d, d, &b->cq.w, &b->cq.b);
    nn_rmsnorm(nn, s->q, s->q, L, d, &b->cnorm_q, eps);
    nn_linear(nn, s->ck, ctx, WAN_TEXT_LEN, d, d, &b->ck.w, &b->ck.b);
    nn_rmsnorm(nn, s->ck, s->ck, WAN_TEXT_LEN, d, &b->cnorm_k, eps);
    nn_linear(nn, s->cv, ctx, WAN_TEXT_LEN, d, d, &b->cv.w, &b->cv.b);
    nn_attention(nn, s->o, s->q, s->ck, s->cv, L, WAN_TEXT_LEN, H, D, sc, NULL, WAN_TEXT_LEN);
    nn_linear(nn, s->h, s->o, L, d, d, &b->co.w, &b->co.b);
    nn_add_gated(nn, x, s->h, NULL, L, d);

    /* feed-forward */
    nn_layernorm(nn, s->h, x, L, d, NULL, NULL, eps);
    nn_modulate(nn, s->h, s->h, L, d, e + 3 * d, e + 4 * d);
    nn_linear(nn, s->f, s->h, L, d, c->ffn, &b->ffn1.w, &b->ffn1.b);
    nn_act(nn, s->f, s->f, (size_t)L * c->ffn, NN_ACT_GELU_TANH);
    nn_linear(nn, s->h, s->f, L, c->ffn, d, &b->ffn2.w, &b->ffn2.b);
    nn_add_gated(nn, x, s->h, e + 5 * d, L, d);
}

void wan_state_set_vace(struct wan_state *s, const float *vace_ctx, float scale)
{
    s->vace_ctx = vace_ctx;
    s->vace_scale = scale;
}

/* patchify host x [C, F, H, W] into s->patches: row l = token (f, y, x),
 * column (c, kt, ky, kx) as the Conv3d weight is laid out */
static int patchify(const struct wan_config *c, struct nn *nn, struct wan_state *s, const float *x, int C)
{
    int pt = c->pt, ph = c->ph, pw = c->pw, kp = C * pt * ph * pw;
    size_t HW = (size_t)s->H * s->W, FHW = (size_t)s->F * HW;
    float *out = host_side(s, s->patches);
    for (int f = 0; f < s->gf; f++)
        for (int y = 0; y < s->gh; y++)
            for (int xx = 0; xx < s->gw; xx++) {
                float *row = out + (((size_t)f * s->gh + y) * s->gw + xx) * kp;
                for (int ch = 0, i = 0; ch < C; ch++)
                    for (int kt = 0; kt < pt; kt++)
                        for (int ky = 0; ky < ph; ky++)
                            for (int kx = 0; kx < pw; kx++)
                                row[i++] = x[ch * FHW + (size_t)(f * pt + kt) * HW + (size_t)(y * ph + ky) * s->W +
                                             (size_t)(xx * pw + kx)];
            }
    return nn_upload(nn, s->patches, out, (size_t)s->L * kp);
}

/* VACE block k on the control stream s->vc, leaving its hint
 * proj_out(c_k) * scale in s->vh; block 0 starts the stream from
 * proj_in(patch-embedded context) + x, x the patch-embedded latents */
static int vace_block(const struct wan *m, struct nn *nn, struct wan_state *s, int k, const float *ctx)
{
    const struct wan_config *c = &m->cfg;
    const struct wan_vace_block *vb = &m->w.vace[k];
    int L = s->L, d = c->dim, rc = enter(m, m->order_vace[k]);
    if (k == 0) {
        rc = first(rc, patchify(c, nn, s, s->vace_ctx, c->vace_in));
        nn_linear(nn, s->vh, s->patches, L, s->kp_v, d, &m->w.vpatch_w, &m->w.vpatch_b);
        nn_linear(nn, s->vc, s->vh, L, d, d, &vb->proj_in.w, &vb->proj_in.b);
        nn_add(nn, s->vc, s->vc, s->x, (size_t)L * d);
    }
    block_forward(m, nn, s, &vb->b, ctx, s->vc);
    nn_linear(nn, s->vh, s->vc, L, d, d, &vb->proj_out.w, &vb->proj_out.b);
    if (s->vace_scale != 1.0f) nn_scale(nn, s->vh, s->vh, (size_t)L * d, s->vace_scale);
    return rc;
}

int wan_forward(const struct wan *m, struct nn *nn, struct wan_state *s, const float *x, float t, const float *ctx,
                float *v)
{
    const struct wan_config *c = &m->cfg;
    int d = c->dim, pt = c->pt, ph = c->ph, pw = c->pw;
    size_t HW = (size_t)s->H * s->W, FHW = (size_t)s->F * HW;

    int rc = patchify(c, nn, s, x, c->in_ch);
    nn_linear(nn, s->x, s->patches, s->L, s->kp, d, &m->w.patch_w, &m->w.patch_b);

    /* time: e = MLP(sinusoid), e6 = Linear(SiLU(e)) */
    float *tf = host_side(s, s->tfreq);
    time_sinusoid(c->freq_dim, t, tf);
    rc = first(rc, nn_upload(nn, s->tfreq, tf, (size_t)c->freq_dim));
    nn_linear(nn, s->temb2, s->tfreq, 1, c->freq_dim, d, &m->w.time1.w, &m->w.time1.b);
    nn_act(nn, s->temb2, s->temb2, (size_t)d, NN_ACT_SILU);
    nn_linear(nn, s->temb, s->temb2, 1, d, d, &m->w.time2.w, &m->w.time2.b);
    nn_act(nn, s->temb2, s->temb, (size_t)d, NN_ACT_SILU);
    nn_linear(nn, s->tproj, s->temb2, 1, d, 6 * d, &m->w.time_proj.w, &m->w.time_proj.b);

    /* VACE (Wan's vace_model.py, diffusers' WanVACETransformer3DModel): the VACE blocks form a chain of
     * their own from the patch-embedded x; hint k is added after main block vace_layers[k]. Each VACE
     * block runs just before its hint is needed rather than all of them first: the same operations on
     * the same values, with one control stream and one hint in memory instead of vace_n hints (and
     * the blocks streamed in this order: order_main, order_vace). */
    int use_vace = c->vace_n > 0 && s->vace_ctx, k = 0;
    for (int l = 0; l < c->layers; l++) {
        if (use_vace && k < c->vace_n && c->vace_layers[k] == l) rc = first(rc, vace_block(m, nn, s, k, ctx));
        rc = first(rc, enter(m, m->order_main[l]));
        block_forward(m, nn, s, &m->w.blocks[l], ctx, s->x);
        if (use_vace && k < c->vace_n && c->vace_layers[k] == l) {
            nn_add(nn, s->x, s->x, s->vh, (size_t)s->L * d);
            k++;
        }
    }

    /* head: (shift, scale) = head modulation + e (before SiLU) */
    nn_copy(nn, s->hm, s->temb, (size_t)d);
    nn_copy(nn, s->hm + d, s->temb, (size_t)d);
    nn_add_bias(nn, s->hm, s->hm, 1, 2 * d, &m->w.head_mod);
    nn_layernorm(nn, s->h, s->x, s->L, d, NULL, NULL, c->eps);
    nn_modulate(nn, s->h, s->h, s->L, d, s->hm, s->hm + d);
    nn_linear(nn, s->patches, s->h, s->L, d, s->kp_out, &m->w.head.w, &m->w.head.b);

    /* unpatchify on the host: column (kt, ky, kx, c) of token (f, y, x) */
    float *hp = host_side(s, s->patches);
    rc = first(rc, nn_download(nn, hp, s->patches, (size_t)s->L * s->kp_out));
    for (int f = 0; f < s->gf; f++)
        for (int y = 0; y < s->gh; y++)
            for (int xx = 0; xx < s->gw; xx++) {
                const float *row = hp + (((size_t)f * s->gh + y) * s->gw + xx) * s->kp_out;
                for (int kt = 0, i = 0; kt < pt; kt++)
                    for (int ky = 0; ky < ph; ky++)
                        for (int kx = 0; kx < pw; kx++)
                            for (int ch = 0; ch < c->out_ch; ch++)
                                v[ch * FHW + (size_t)(f * pt + kt) * HW + (size_t)(y * ph + ky) * s->W +
                                  (size_t)(xx * pw + kx)] = row[i++];
            }
    return rc;
}

int wan_sample(const struct wan *m, struct nn *nn, struct wan_state *st, struct wan_sched *sc, const float *ctx_c,
               const float *ctx_u, float guidance, float *x, float *vc, float *vu, double *step_s)
{
    size_t n = sc->n;
    int rc;
    for (int i = sc->step; i < sc->steps; i++) {
        double ts = mem_now();
        float t = sc->timesteps[i];
        if ((rc = wan_forward(m, nn, st, x, t, ctx_c, vc)) || (rc = sig_check())) return rc;
        if (ctx_u) {
            if ((rc = wan_forward(m, nn, st, x, t, ctx_u, vu))) return rc;
            /* v = uncond + G (cond - uncond), on the host */
            wan_host_scale(vu, vu, n, -1.0f);
            wan_host_add(vc, vc, vu, n);
            wan_host_scale(vc, vc, n, guidance);
            wan_host_scale(vu, vu, n, -1.0f);
            wan_host_add(vc, vc, vu, n);
        }
        wan_sched_step(sc, vc, x);
        if (step_s) step_s[i] = mem_now() - ts;
        log_progress("steps", i + 1, sc->steps);
        if ((rc = sig_check())) return rc;
    }
    return 0;
}
