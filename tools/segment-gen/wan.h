/* wan.h — the Wan2.1 text-to-video DiT (Wan Team 2025, "Wan: Open and
 * Advanced Large-Scale Video Generative Models"; diffusers'
 * WanTransformer3DModel): one forward pass predicts the flow-matching
 * velocity of a latent video [C, F, H, W] at a timestep, conditioned on text
 * embeddings. The text encoder and the VAE are other processes.
 *
 * A Wan2.1 VACE checkpoint (Jiang et al. 2025, "VACE: All-in-One Video
 * Creation and Editing"; Wan's vace_model.py, diffusers'
 * WanVACETransformer3DModel) is the same DiT plus VACE blocks that read a
 * 96-channel context (what `vae encode --vace` writes) and add a hint into
 * the residual stream after main blocks vace_layers[k].
 *
 * A model is opened from any layout users have (a diffusers directory, a Wan
 * checkpoint directory, a single ComfyUI file with or without the
 * "model.diffusion_model." prefix; f32, f16, bf16 or scaled fp8-e4m3): the
 * layout is a table from names to roles (wan.c), recognised from the names.
 * struct wan owns the weights mapping; weights are views into it, and
 * wan_load hands every one of them to common/nn_wres.h, which leaves them in
 * the mapping (cpu mode), copies them to the device (beefy) or streams the
 * blocks (lightweight). Activations go through the nn core only
 * (common/nn.h) and live on its backend; what the host builds (patches, the
 * zero-padded text rows, RoPE tables, the timestep sinusoid) is uploaded and
 * the head's output downloaded, so the same forward runs on NN_CPU and
 * NN_CUDA. Latents, velocities and the sampler's state are host memory. */
#ifndef ISOPIPE_WAN_H
#define ISOPIPE_WAN_H
#include <stdint.h>

#include "nn.h"
#include "nn_wres.h"
#include "weights.h"

#define WAN_TEXT_LEN 512     /* Wan's text length: embeddings are zero-padded to it */

enum wan_layout { WAN_LAYOUT_DIFFUSERS = 0, WAN_LAYOUT_WAN };

/* where each field comes from is said in wan.c's wan_open */
struct wan_config {
    int dim;            /* model width (heads * head_dim) */
    int heads, head_dim;
    int layers;         /* transformer blocks */
    int ffn;            /* FFN hidden width */
    int text_dim;       /* width of the text embeddings (umT5-XXL: 4096) */
    int freq_dim;       /* sinusoidal timestep embedding width (256) */
    int in_ch, out_ch;  /* latent channels (16) */
    int pt, ph, pw;     /* patch size (1, 2, 2) */
    int cross_attn_norm;/* affine LayerNorm before cross-attention */
    float eps;          /* every norm's epsilon (1e-6) */
    const char *heads_from; /* "config.json", "--heads", "dim/128" */
    /* VACE (vace_n == 0: a plain T2V model) */
    int vace_n;         /* VACE blocks */
    int vace_in;        /* context channels (96) */
    int *vace_layers;   /* [vace_n] ascending main block indices, the first 0 */
    char vace_layers_from[96]; /* "config.json", "tensor names: every 2nd of 30 blocks", ... */
};

struct wan_lin { struct nn_w w, b; };   /* Linear: w [out, in], b [out] */

struct wan_block {
    struct wan_lin q, k, v, o;          /* self-attention, [dim, dim] */
    struct nn_w norm_q, norm_k;         /* RMSNorm over all heads, [dim] */
    struct wan_lin cq, ck, cv, co;      /* cross-attention to the text, [dim, dim] */
    struct nn_w cnorm_q, cnorm_k;       /* [dim] */
    struct nn_w cnorm_w, cnorm_b;       /* cross_attn_norm LayerNorm (Wan norm3, diffusers norm2), [dim]; data NULL without */
    struct wan_lin ffn1, ffn2;          /* [ffn, dim], [dim, ffn] */
    struct nn_w modulation;             /* [1, 6, dim]: shift, scale, gate (attn); shift, scale, gate (ffn) */
};

/* a VACE block: a full Wan block on the control stream, proj_in (first
 * block only; Wan's before_proj) and proj_out (Wan's after_proj), [dim, dim] */
struct wan_vace_block {
    struct wan_block b;
    struct wan_lin proj_in, proj_out;   /* proj_in.w.data NULL after the first block */
};

struct wan_weights {
    struct nn_w patch_w, patch_b;       /* Conv3d [dim, in, pt, ph, pw], [dim] */
    struct wan_lin text1, text2;        /* [dim, text_dim], [dim, dim] (GELU tanh between) */
    struct wan_lin time1, time2;        /* [dim, freq_dim], [dim, dim] (SiLU between) */
    struct wan_lin time_proj;           /* [6*dim, dim] (after SiLU) */
    struct wan_block *blocks;           /* [layers] */
    struct wan_lin head;                /* [out*pt*ph*pw, dim] */
    struct nn_w head_mod;               /* [1, 2, dim]: shift, scale */
    struct nn_w vpatch_w, vpatch_b;     /* VACE: Conv3d [dim, vace_in, pt, ph, pw], [dim] */
    struct wan_vace_block *vace;        /* [vace_n] */
};

/* one weight field of struct wan_weights as wan_open found it: its element
 * count and whose it is (main >= 0: main block `main`; vace >= 0: VACE block
 * `vace`; both -1: resident) */
struct wan_wfield { struct nn_w *w; size_t n; int main, vace; };

struct wan {
    struct wan_config cfg;
    struct wan_weights w;
    enum wan_layout layout;
    const char *prefix;                 /* "" or "model.diffusion_model." ... */
    struct weights *file;
    char dtype[64];                     /* "bf16", "f32 + fp8-e4m3 (scaled)", ... */
    uint64_t block_bytes, resident_bytes, largest_tensor;
    struct wan_wfield *fields;          /* every loaded field of w, [n_fields] */
    int n_fields;
    /* streamed block number of main block l (order_main[l]) and of VACE block
     * k (order_vace[k]): the order the forward uses them in, VACE block k
     * just before main block vace_layers[k] */
    int *order_main, *order_vace;
    struct nn_wres *wres;               /* from wan_load; NULL: read in place */
};

/* Open and check a Wan2.1 T2V or VACE DiT. heads_override > 0 replaces the
 * head count of a file without config.json (dim/128 otherwise). vace_layers
 * come from config.json, else from the count of VACE blocks (every k-th
 * block, k = layers / count; cfg.vace_layers_from says which). ISO_EDATA
 * naming the tensor for a missing or misshapen one, and for an architecture
 * we do not run (I2V: said so); ISO_ENOINPUT / ISO_EUNAVAIL from weights_open. */
int wan_open(const char *path, int heads_override, struct wan **out);
void wan_close(struct wan **m);

/* A weight residency for mode with every field of m->w registered (the
 * resident ones as -1, the blocks by order_main / order_vace): for its
 * nn_wres_sizes before anything is loaded. Free it with nn_wres_free before
 * any wan_load. 0, ISO_EINTERNAL or ISO_EUSAGE. */
int wan_wres_new(struct wan *m, enum nn_wres_mode mode, struct nn_wres **out);
/* Make the weights usable on nn's backend in mode (nn_wres_load; the fields
 * of m->w are rewritten to where they now live). NN_WRES_MAPPED changes
 * nothing. 0, or nn_wres_load's status. */
int wan_load(struct wan *m, struct nn *nn, enum nn_wres_mode mode);
/* give the weights' device memory back (before nn_free); wan_close does it
 * too. The fields are unusable afterwards. */
void wan_unload(struct wan *m);
/* "diffusers" / "wan" (+ prefix) for reports */
const char *wan_layout_name(const struct wan *m);

/* tokens of a latent [in_ch, F, H, W]; 0 when H or W is not a multiple of the patch */
int64_t wan_tokens(const struct wan_config *c, int F, int H, int W);
/* bytes of the activations wan_state_new allocates for F, H, W plus the nn
 * core's CPU scratch (attention score tiles, weight conversion tiles); with
 * VACE (c->vace_n > 0) the control stream, the hint and the context's patches */
uint64_t wan_activation_bytes(const struct wan_config *c, int F, int H, int W, int weights_f32);
/* The same on NN_CUDA: the state's buffers as the backend allocates them
 * (each rounded up to 256 bytes). The backend's attention keeps no score
 * matrix in device memory and its conversion tiles are nn_cuda_fixed_bytes(),
 * which the caller adds. host: the state's host staging buffer on that
 * backend (patches, text rows; NULL is fine) */
uint64_t wan_device_activation_bytes(const struct wan_config *c, int F, int H, int W, uint64_t *host);

/* scratch for one latent geometry */
struct wan_state;
int wan_state_new(const struct wan *m, struct nn *nn, int F, int H, int W, struct wan_state **out);
void wan_state_free(struct nn *nn, struct wan_state **s);

/* VACE: the context [vace_in, F, H, W] (F, H, W of the state; kept by
 * pointer, not copied) and the scale of the hints for the following
 * wan_forward calls. NULL context: the VACE blocks are skipped (as scale 0). */
void wan_state_set_vace(struct wan_state *s, const float *vace_ctx, float scale);

/* ctx [WAN_TEXT_LEN, dim] (backend memory: nn_alloc) = text embedding MLP of
 * emb [rows, text_dim] (host memory) zero-padded to WAN_TEXT_LEN rows
 * (rows <= WAN_TEXT_LEN). 0, or the backend's error (nn_upload). */
int wan_embed_text(const struct wan *m, struct nn *nn, struct wan_state *s, const float *emb, int rows, float *ctx);
/* v [out_ch, F, H, W] = the velocity at timestep t (0..1000, as the model
 * was trained: 1000 * sigma) of x [in_ch, F, H, W], with ctx from
 * wan_embed_text; a VACE model also reads the state's VACE context, its hints
 * computed afresh in every call (they depend on x, t and ctx). x, v and the
 * VACE context are host memory, ctx backend memory. 0, or the first error of
 * the backend or the weight stream (nn_wres_enter, nn_download). */
int wan_forward(const struct wan *m, struct nn *nn, struct wan_state *s, const float *x, float t, const float *ctx,
                float *v);

/* Sample: from x (the noise, overwritten by the latents) through every
 * remaining step of sc (wan_sched.h): per step the velocity with ctx_c and,
 * when ctx_u is not NULL, classifier-free guidance uncond + G (cond - uncond)
 * with ctx_u; vc, vu are scratch of sc->n floats (vu unused without ctx_u);
 * x, vc, vu are host memory, ctx_c, ctx_u backend memory; step_s (NULL or
 * sc->steps entries) gets each step's seconds. 0, ISO_EINTR when
 * SIGINT/SIGTERM arrived, or wan_forward's error. */
struct wan_sched;
int wan_sample(const struct wan *m, struct nn *nn, struct wan_state *st, struct wan_sched *sc, const float *ctx_c,
               const float *ctx_u, float guidance, float *x, float *vc, float *vu, double *step_s);
#endif
