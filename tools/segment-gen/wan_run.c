/* wan_run.c — segment-gen with a latent diffusion model (segment.h,
 * segment_run_latent): a Wan2.1 T2V DiT denoises latents from text
 * embeddings (a VACE DiT also from --vace-context, the keyframes encoded by
 * vae encode --vace); DIR/latents.safetensors + DIR/segment.json appear
 * together (fs_dir_begin/fs_dir_publish) or not at all.
 *
 * Order of work: resolve the model, check the command line (sizes with the
 * nearest valid values), open the model (its header and shapes: nothing is
 * read but two scalars of scaled fp8 files), plan, admit; read the
 * embeddings and the noise, make the nn context for the mode (cpu: NN_CPU;
 * beefy / lightweight: NN_CUDA, on a pretend device NN_CPU), put the weights
 * where the mode wants them (wan_load: mapped / resident / streamed) and
 * build the state between "before load" and "after load"; sample; write.
 * Latents, noise, velocities, the VACE context and the sampler's state are
 * host memory; the text contexts live on the nn backend. */
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "gpu.h"
#include "jsonio.h"
#include "log.h"
#include "mem.h"
#include "model.h"
#include "nn.h"
#include "nn_heap.h"
#include "runtime.h"
#include "segment.h"
#include "segmodel.h"
#include "sig.h"
#include "st_write.h"
#include "wan.h"
#include "wan_sched.h"
#include "weights.h"

/* Wan2.1's published recommendation for T2V-1.3B (its README's example:
 * --size 832*480 --sample_shift 8 --sample_guide_scale 6; generate.py's
 * default of 50 steps and 81 frames for t2v) */
#define WAN_DEF_WIDTH 832
#define WAN_DEF_HEIGHT 480
#define WAN_DEF_FRAMES 81
#define WAN_DEF_STEPS 50
#define WAN_DEF_GUIDANCE 6.0
#define WAN_DEF_SHIFT 8.0
#define WAN_VAE_T 4      /* the Wan VAE: 4x in time (after the first frame), 8x in space */
#define WAN_VAE_S 8

/* the nearest multiple of m (>= m) */
static long nearest_mult(long v, long m)
{
    long r = (v + m / 2) / m * m;
    return r < m ? m : r;
}

static int check_sizes(long frames, long width, long height)
{
    if (frames < 1 || (frames - 1) % WAN_VAE_T) {
        long lo = frames < 1 ? 1 : (frames - 1) / WAN_VAE_T * WAN_VAE_T + 1, hi = lo + WAN_VAE_T;
        if (frames < 1) return iso_fail(ISO_EDATA, "--frames %ld: Wan needs 4k+1 frames; the nearest valid is 1", frames);
        return iso_fail(ISO_EDATA, "--frames %ld: Wan needs 4k+1 frames; the nearest valid are %ld and %ld", frames, lo,
                        hi);
    }
    if (width < 16 || width % 16 || height < 16 || height % 16)
        return iso_fail(ISO_EDATA, "--width %ld --height %ld: Wan needs multiples of 16; the nearest valid size is "
                        "%ldx%ld", width, height, nearest_mult(width, 16), nearest_mult(height, 16));
    return 0;
}

/* a 2-D float tensor of `file` as f32 [rows, cols]; *data malloc'd */
static int read_text(const struct weights *w, const char *path, const char *name, int text_dim, float **data,
                     int *rows)
{
    const struct wt_tensor *t = weights_find(w, name);
    if (!t) return iso_fail(ISO_EDATA, "--text '%s' has no tensor '%s'", path, name);
    if (t->n_dims != 2 || t->shape[1] != text_dim)
        return iso_fail(ISO_EDATA, "--text '%s': '%s' is %d-D [%lld, %lld], the model needs [L, %d] (its text_dim)",
                        path, name, t->n_dims, (long long)t->shape[0], t->n_dims > 1 ? (long long)t->shape[1] : 0LL,
                        text_dim);
    if (t->shape[0] < 1 || t->shape[0] > WAN_TEXT_LEN)
        return iso_fail(ISO_EDATA, "--text '%s': '%s' has %lld rows; Wan takes 1 to %d", path, name,
                        (long long)t->shape[0], WAN_TEXT_LEN);
    *rows = (int)t->shape[0];
    if (!(*data = malloc(t->nelem * sizeof(float)))) return iso_fail(ISO_EINTERNAL, "out of memory");
    int rc = weights_to_f32(t, 0, t->nelem, *data);
    for (uint64_t i = 0; !rc && i < t->nelem; i++)
        if (!isfinite((*data)[i])) rc = iso_fail(ISO_EDATA, "--text '%s': '%s' holds a NaN or infinity", path, name);
    return rc;
}

static int read_noise(const char *path, const int64_t *shape, float *out)
{
    struct weights *w = NULL;
    int rc = weights_open(path, &w);
    if (rc) return rc;
    const struct wt_tensor *t = weights_find(w, "noise");
    if (!t) { rc = iso_fail(ISO_EDATA, "--noise '%s' has no tensor 'noise'", path); goto done; }
    int ok = t->n_dims == 4;
    for (int i = 0; ok && i < 4; i++) ok = t->shape[i] == shape[i];
    if (!ok) {
        char got[96] = "";
        for (int i = 0, n = 0; i < t->n_dims && n < (int)sizeof got; i++)
            n += snprintf(got + n, sizeof got - n, "%s%lld", i ? ", " : "", (long long)t->shape[i]);
        rc = iso_fail(ISO_EDATA, "--noise '%s': 'noise' is [%s], this run needs [%lld, %lld, %lld, %lld]", path, got,
                      (long long)shape[0], (long long)shape[1], (long long)shape[2], (long long)shape[3]);
        goto done;
    }
    if ((rc = weights_to_f32(t, 0, t->nelem, out))) goto done;
    for (uint64_t i = 0; i < t->nelem; i++)
        if (!isfinite(out[i])) { rc = iso_fail(ISO_EDATA, "--noise '%s' holds a NaN or infinity", path); goto done; }
done:
    weights_close(&w);
    return rc;
}

/* the VACE context file's tensor: 'vace_context' [C, T, h, w] (a leading batch of 1 accepted) */
static int vace_tensor(const struct weights *w, const char *path, const struct wt_tensor **out, int64_t *shape)
{
    const struct wt_tensor *t = weights_find(w, "vace_context");
    if (!t) return iso_fail(ISO_EDATA, "--vace-context '%s' has no tensor 'vace_context' (vae encode --vace writes it)", path);
    int off = t->n_dims == 5 && t->shape[0] == 1;
    if (t->n_dims - off != 4)
        return iso_fail(ISO_EDATA, "--vace-context '%s': 'vace_context' is %d-D, not [C, T, H/8, W/8]", path, t->n_dims);
    for (int i = 0; i < 4; i++) shape[i] = t->shape[off + i];
    if (shape[1] < 1 || shape[2] < 1 || shape[3] < 1 || shape[1] > 100000 || shape[2] > 8192 || shape[3] > 8192)
        return iso_fail(ISO_EDATA, "--vace-context '%s': implausible shape [%lld, %lld, %lld, %lld]", path,
                        (long long)shape[0], (long long)shape[1], (long long)shape[2], (long long)shape[3]);
    *out = t;
    return 0;
}

/* device bytes of a GPU mode's activations: the state's buffers, the two text
 * contexts (as the backend allocates them) and the backend's fixed part */
static uint64_t device_activations(const struct wan_config *c, int F, int H, int W, uint64_t *host_stage)
{
    uint64_t ctx = ((uint64_t)WAN_TEXT_LEN * c->dim * 4 + 255) / 256 * 256;
    return wan_device_activation_bytes(c, F, H, W, host_stage) + 2 * ctx;
}

static int fill_plan(struct wan *m, int F, int H, int W, int threads, struct mem_plan *plan)
{
    const struct wan_config *c = &m->cfg;
    uint64_t n = (uint64_t)c->in_ch * F * H * W;
    uint64_t nb = (uint64_t)c->layers + (uint64_t)c->vace_n;   /* VACE blocks stream like the others */
    /* host memory on every backend: latents, two velocities, the sampler's five buffers, noise
     * (read into the latents: counted once more for the reader) and the VACE context */
    uint64_t host = n * 4 * 9 + (uint64_t)c->vace_in * F * H * W * 4;
    struct plan_blocks b = { 0 };
    b.n_blocks = nb;
    b.block_bytes = (m->block_bytes + nb - 1) / nb;
    b.resident_bytes = m->resident_bytes;
    b.largest_tensor = m->largest_tensor;
    int f32 = m->w.blocks[0].q.w.dtype == WT_F32 && m->w.patch_w.dtype == WT_F32;
    /* cpu: the forward's state and the two text contexts (cond, uncond) beside the host buffers */
    b.activations = wan_activation_bytes(c, F, H, W, f32) + host + 2 * (uint64_t)WAN_TEXT_LEN * c->dim * 4;
    b.kv_cache = 0;
    b.host_base = (UINT64_C(48) << 20) + (uint64_t)threads * (UINT64_C(8) << 20); /* code, OpenBLAS buffers */
#ifdef ISOPIPE_CUDA
    b.gpu_ok = 1;
#else
    b.gpu_ok = gpu_is_fake();   /* a pretend device runs the GPU modes' weight handling on the CPU */
#endif
    b.gpu_explicit_only = !NN_CUDA_MODELS_VERIFIED;
    b.cpu_ok = 1;
    char name[256];
    if (c->vace_n)
        snprintf(name, sizeof name, "Wan2.1 VACE DiT %d blocks + %d VACE x %d (%s, %s)", c->layers, c->vace_n, c->dim,
                 wan_layout_name(m), m->dtype);
    else
        snprintf(name, sizeof name, "Wan2.1 T2V DiT %d blocks x %d (%s, %s)", c->layers, c->dim, wan_layout_name(m),
                 m->dtype);
    int rc = plan_from_blocks(plan, name, &b);
    if (rc) return rc;

    /* beefy and lightweight: the weights as common/nn_wres.h places them (beefy: every weight
     * uploaded, fp8 widened to bf16, 256-byte aligned; lightweight: the resident ones + the stream's
     * two buffers of the largest packed block, the blocks packed in pinned host memory), the
     * activations as the CUDA backend allocates them plus its fixed part; the host keeps the
     * latents, the sampler and the staging buffer */
    struct nn_wres *r = NULL;
    uint64_t stage = 0;
    if ((rc = wan_wres_new(m, NN_WRES_MAPPED, &r))) return rc;
    struct plan_blocks g = b;
    nn_wres_plan_blocks(r, &g);
    nn_wres_free(&r);
    g.activations = nn_act_reserve_bytes(device_activations(c, F, H, W, &stage)) + nn_cuda_fixed_bytes();
    g.host_base = b.host_base + host + stage;
    struct mem_plan gp;
    if ((rc = plan_from_blocks(&gp, name, &g))) return rc;
    plan->mode[MEM_MODE_BEEFY] = gp.mode[MEM_MODE_BEEFY];
    plan->mode[MEM_MODE_LIGHTWEIGHT] = gp.mode[MEM_MODE_LIGHTWEIGHT];
    return 0;
}

/* segment.json's / the plan's "vace": the context file (NULL in a plan), the scale, where the hints act */
static json_t *vace_json(const struct wan *m, const char *file, const char *json_path, double scale)
{
    const struct wan_config *c = &m->cfg;
    json_t *v = json_object(), *layers = json_array();
    if (file) jsonio_set_path(v, "file", json_path, file);
    json_object_set_new(v, "scale", json_real(scale));
    for (int i = 0; i < c->vace_n; i++) json_array_append_new(layers, json_integer(c->vace_layers[i]));
    json_object_set_new(v, "layers", layers);
    json_object_set_new(v, "layers_from", json_string(c->vace_layers_from));
    json_object_set_new(v, "blocks", json_integer(c->vace_n));
    json_object_set_new(v, "context_channels", json_integer(c->vace_in));
    return v;
}

static int write_latents(const char *path, const float *x, const int64_t *shape, const char *const *meta)
{
    struct st_out o = { .name = "latents", .dtype = ST_F32, .n_dims = 4, .data = x };
    for (int i = 0; i < 4; i++) o.shape[i] = (uint64_t)shape[i];
    return st_write(path, &o, 1, meta);
}

int segment_run_latent(const struct segment_args *a, const struct cli_common *c)
{
    static const char *const exts[] = { ".safetensors", NULL };
    struct rt *rt = NULL;
    struct wan *m = NULL;
    struct weights *tw = NULL, *vw = NULL;
    struct nn *nn = NULL;
    struct wan_state *st = NULL;
    struct wan_sched sc = { 0 };
    float *pos = NULL, *neg = NULL, *ctx_c = NULL, *ctx_u = NULL, *x = NULL, *vc = NULL, *vu = NULL, *vctx = NULL;
    double *step_s = NULL;
    char *model_path = NULL, *tmp = NULL, *out = NULL, *lat_tmp = NULL, *json_tmp = NULL, *json_final = NULL;
    json_t *root = NULL;
    struct mem_plan plan;
    enum mem_mode mode = MEM_MODE_CPU;
    enum wan_sampler sampler = WAN_SAMPLER_UNIPC;
    int rc, loading = 0, cleanup_logged = 0, pos_rows = 0, neg_rows = 0, have_sched = 0;
    double t0 = mem_now(), t_gen = 0;
    enum nn_wres_mode wmode = NN_WRES_MAPPED;
    char fallback[512] = "";   /* why a GPU mode went on in cpu mode */

    if ((rc = rt_begin(c, &rt))) goto done;
    long frames = a->frames_set ? a->frames : WAN_DEF_FRAMES;
    long width = a->width ? a->width : WAN_DEF_WIDTH, height = a->height ? a->height : WAN_DEF_HEIGHT;
    int steps = a->steps > 0 ? (int)a->steps : WAN_DEF_STEPS;
    double guidance = a->guidance >= 0 ? a->guidance : WAN_DEF_GUIDANCE;
    double shift = a->shift > 0 ? a->shift : WAN_DEF_SHIFT;
    long index = a->index >= 0 ? a->index : 0;
    int cfg = guidance > 1.0;   /* WanPipeline: guidance only above 1 */
    double vace_scale = a->vace_scale >= 0 ? a->vace_scale : 1.0;
    int64_t vshape[4] = { 0 };
    const struct wt_tensor *vt = NULL;
    if (a->sampler && (rc = wan_sampler_parse(a->sampler, &sampler))) goto done;
    /* first the model: a name that is neither a keyframe model nor a weights file is unknown */
    if ((rc = model_find_dir(c->model, exts, &model_path))) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", iso_errmsg());   /* iso_fail must not read its own buffer */
        rc = iso_fail(rc, "%s (known models: %s, or a Wan2.1 T2V or VACE DiT file or directory)", msg, segmodel_names());
        goto done;
    }
    if (a->start || a->end || a->flow || a->flow_back || a->scenes) {
        rc = iso_fail(ISO_EUSAGE, "-m '%s' is a Wan2.1 DiT: it takes --text, not keyframes, flows or --scenes "
                      "(a VACE checkpoint takes keyframes as --vace-context from vae encode --vace)",
                      c->model);
        goto done;
    }
    if (!a->text) { rc = iso_fail(ISO_EUSAGE, "-m '%s' needs --text EMB.safetensors (from text-encode)", c->model); goto done; }
    if (!c->output && !c->plan_only) { rc = iso_fail(ISO_EUSAGE, "-o DIR is required"); goto done; }
    if (c->output && !(out = strdup(c->output))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if (a->vace_scale >= 0 && !a->vace_context) {
        rc = iso_fail(ISO_EUSAGE, "--vace-scale goes with --vace-context CTX.safetensors");
        goto done;
    }
    /* the VACE context's header: its shape gives the sizes not given */
    if (a->vace_context) {
        if ((rc = weights_open(a->vace_context, &vw)) || (rc = vace_tensor(vw, a->vace_context, &vt, vshape))) goto done;
        if (!a->frames_set) frames = (vshape[1] - 1) * WAN_VAE_T + 1;
        if (!a->width) width = vshape[3] * WAN_VAE_S;
        if (!a->height) height = vshape[2] * WAN_VAE_S;
    }
    if ((rc = check_sizes(frames, width, height))) goto done;
    if ((rc = wan_open(model_path, (int)a->heads, &m))) goto done;
    const struct wan_config *mc = &m->cfg;
    if (mc->vace_n > 0 && !a->vace_context && !c->plan_only) {
        rc = iso_fail(ISO_EUSAGE, "-m '%s' is a Wan2.1 VACE checkpoint (%d VACE blocks): it needs --vace-context "
                      "CTX.safetensors (from vae encode --vace)", c->model, mc->vace_n);
        goto done;
    }
    if (mc->vace_n == 0 && a->vace_context) {
        rc = iso_fail(ISO_EUSAGE, "-m '%s' is a Wan2.1 text-to-video checkpoint (no VACE blocks): --vace-context needs a "
                      "VACE checkpoint (e.g. wan2.1-vace-1.3b)", c->model);
        goto done;
    }
    int F = (int)((frames - 1) / WAN_VAE_T + 1), H = (int)(height / WAN_VAE_S), W = (int)(width / WAN_VAE_S);
    int64_t shape[4] = { mc->in_ch, F, H, W };
    if (wan_tokens(mc, F, H, W) <= 0) {
        rc = iso_fail(ISO_EDATA, "--width %ld --height %ld: latents %dx%d do not divide into the model's %dx%d patches",
                      width, height, H, W, mc->ph, mc->pw);
        goto done;
    }
    if (vt && (vshape[0] != mc->vace_in || vshape[1] != F || vshape[2] != H || vshape[3] != W)) {
        rc = iso_fail(ISO_EDATA, "--vace-context '%s': 'vace_context' is [%lld, %lld, %lld, %lld], the latents of %ld "
                      "frames at %ldx%ld need [%d, %d, %d, %d]", a->vace_context, (long long)vshape[0],
                      (long long)vshape[1], (long long)vshape[2], (long long)vshape[3], frames, width, height,
                      mc->vace_in, F, H, W);
        goto done;
    }
    size_t n = (size_t)mc->in_ch * F * H * W, nv = (size_t)mc->vace_in * F * H * W;
    int threads = cli_threads(c);
    if ((rc = fill_plan(m, F, H, W, threads, &plan))) goto done;
    if (c->plan_only) {
        json_t *extra = json_pack("{s:I, s:[i,i,i,i], s:s, s:s}", "tokens", (json_int_t)wan_tokens(mc, F, H, W),
                                  "latents", (int)shape[0], F, H, W, "weights_dtype", m->dtype, "note",
                                  "beefy and lightweight run the nn core's CUDA backend, which no card has verified "
                                  "for this model yet: auto picks cpu, --memory-mode beefy|lightweight asks for them");
        if (mc->vace_n) json_object_set_new(extra, "vace", vace_json(m, NULL, NULL, vace_scale));
        rc = rt_print_plan(rt, &plan, extra);
        goto done;
    }
    if ((rc = rt_admit(rt, &plan, &mode))) goto done;

    rt_load_begin(rt);
    loading = 1;
    /* the embeddings: prompt.<I> and (CFG) negative */
    if ((rc = weights_open(a->text, &tw))) goto done;
    {
        char pname[32];
        snprintf(pname, sizeof pname, "prompt.%ld", index);
        if ((rc = read_text(tw, a->text, pname, mc->text_dim, &pos, &pos_rows))) goto done;
        if (cfg) {
            if (!weights_find(tw, "negative")) {
                rc = iso_fail(ISO_EDATA, "--text '%s' has no tensor 'negative': --guidance %g needs a negative prompt "
                              "(or --guidance 1)", a->text, guidance);
                goto done;
            }
            if ((rc = read_text(tw, a->text, "negative", mc->text_dim, &neg, &neg_rows))) goto done;
        }
    }
    weights_close(&tw);
    /* the backend: cpu mode NN_CPU; a GPU mode NN_CUDA, or NN_CPU on a pretend device (ISOPIPE_FAKE_GPU:
     * the weights still go through nn_wres in the mode's way, so CI runs the packing and the stream's
     * order), or NN_CPU when the CUDA backend cannot start here (no cuBLAS, ...): said in one line */
    if (mode == MEM_MODE_BEEFY || mode == MEM_MODE_LIGHTWEIGHT) {
        wmode = mode == MEM_MODE_BEEFY ? NN_WRES_RESIDENT : NN_WRES_STREAMED;
        if (gpu_is_fake()) { /* the CPU's shadow of the device's heaps (nn_reserve) */
            log_verbose("pretend device: %s mode computes on the CPU", mem_mode_name(mode));
            if ((rc = nn_new(&nn, NN_CPU, threads)) || (rc = nn_reserve(nn, device_activations(mc, F, H, W, NULL))))
                goto done;
        } else if ((rc = nn_new(&nn, NN_CUDA, threads)) == ISO_EUNAVAIL) {
            snprintf(fallback, sizeof fallback, "%s", iso_errmsg());
            iso_errclear();
            wmode = NN_WRES_MAPPED;
            if ((rc = rt_fallback_cpu(rt, fallback))) goto done; /* the reservation goes back */
        } else if (rc) {
            goto done;
        } else if ((rc = nn_reserve(nn, device_activations(mc, F, H, W, NULL)))) {
            goto done;
        }
    }
    if (!nn && (rc = nn_new(&nn, NN_CPU, threads))) goto done;
    if ((rc = wan_load(m, nn, wmode))) goto done;
    if (vt) {   /* the VACE context (host memory), checked finite */
        if (!(vctx = malloc(nv * sizeof(float)))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        if ((rc = weights_to_f32(vt, 0, nv, vctx))) goto done;
        for (size_t i = 0; i < nv; i++)
            if (!isfinite(vctx[i])) {
                rc = iso_fail(ISO_EDATA, "--vace-context '%s' holds a NaN or infinity", a->vace_context);
                goto done;
            }
        weights_close(&vw);
    }
    if ((rc = wan_state_new(m, nn, F, H, W, &st))) goto done;
    wan_state_set_vace(st, vctx, (float)vace_scale);
    /* the text contexts on the backend; latents and velocities on the host */
    if (!(ctx_c = nn_alloc(nn, (size_t)WAN_TEXT_LEN * mc->dim)) ||
        (cfg && !(ctx_u = nn_alloc(nn, (size_t)WAN_TEXT_LEN * mc->dim)))) {
        rc = ISO_ETEMPFAIL;
        goto done;
    }
    if (!(x = malloc(n * sizeof(float))) || !(vc = malloc(n * sizeof(float))) ||
        (cfg && !(vu = malloc(n * sizeof(float))))) {
        rc = iso_fail(ISO_EINTERNAL, "out of memory (latents)");
        goto done;
    }
    if (a->noise) {
        if ((rc = read_noise(a->noise, shape, x))) goto done;
    } else {
        wan_noise(c->seed, x, n);
    }
    if ((rc = wan_sched_init(&sc, sampler, steps, shift, n))) goto done;
    have_sched = 1;
    if (!(step_s = calloc((size_t)steps, sizeof *step_s))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    rt_load_end(rt);

    /* sampling: the text contexts once, then per step one (two with CFG) forward passes */
    double tg = mem_now();
    if ((rc = wan_embed_text(m, nn, st, pos, pos_rows, ctx_c))) goto done;
    if (cfg && (rc = wan_embed_text(m, nn, st, neg, neg_rows, ctx_u))) goto done;
    if ((rc = wan_sample(m, nn, st, &sc, ctx_c, cfg ? ctx_u : NULL, (float)guidance, x, vc, vu, step_s))) goto done;
    t_gen = mem_now() - tg;
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) { rc = iso_fail(ISO_EDATA, "sampling diverged: the latents hold a NaN or infinity"); goto done; }

    /* outputs into a temporary sibling of DIR, published in one rename */
    {   /* a re-run replaces only an earlier segment-gen output (its segment.json and latents) */
        static const char *const names[] = { "latents.safetensors", NULL };
        struct fs_dir_owner own = { "segment.json", "segment-gen", names, NULL, 0 };
        if ((rc = fs_dir_begin_owned(out, &own, &tmp))) goto done;
    }
    lat_tmp = fs_join(tmp, "latents.safetensors");
    json_tmp = fs_join(tmp, "segment.json");
    json_final = fs_join(out, "segment.json");
    root = jsonio_header_new();
    if (!lat_tmp || !json_tmp || !json_final || !root) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    {
        char sh[32], gd[32], st_[16], sd[32];
        snprintf(sh, sizeof sh, "%.9g", shift);
        snprintf(gd, sizeof gd, "%.9g", guidance);
        snprintf(st_, sizeof st_, "%d", steps);
        snprintf(sd, sizeof sd, "%llu", (unsigned long long)c->seed);
        char vs[32];
        snprintf(vs, sizeof vs, "%.9g", vace_scale);
        const char *meta[] = { "sampler", wan_sampler_name(sampler), "steps", st_, "shift", sh, "guidance", gd,
                               "noise", a->noise ? "file" : "seed", "seed", sd,
                               vctx ? "vace_scale" : NULL, vs, NULL };
        if ((rc = write_latents(lat_tmp, x, shape, meta))) goto done;
    }
    rt_cleanup_begin(rt);
    cleanup_logged = 1;

    json_t *mj = json_pack("{s:s, s:s, s:s, s:i, s:i, s:i, s:i, s:i, s:s, s:i}", "name",
                           mc->vace_n ? "wan2.1-vace" : "wan2.1-t2v", "layout", wan_layout_name(m), "dtype", m->dtype,
                           "dim", mc->dim, "layers", mc->layers, "heads", mc->heads, "ffn", mc->ffn, "text_dim",
                           mc->text_dim, "heads_from", mc->heads_from, "vace_blocks", mc->vace_n);
    jsonio_set_path(mj, "path", json_final, model_path);
    json_object_set_new(root, "model", mj);
    json_t *tx = json_object();
    jsonio_set_path(tx, "file", json_final, a->text);
    json_object_set_new(tx, "index", json_integer(index));
    json_object_set_new(tx, "prompt_rows", json_integer(pos_rows));
    json_object_set_new(tx, "negative_rows", cfg ? json_integer(neg_rows) : json_null());
    json_object_set_new(root, "text", tx);
    if (vctx) json_object_set_new(root, "vace", vace_json(m, a->vace_context, json_final, vace_scale));
    json_object_set_new(root, "frames", json_integer(frames));
    json_object_set_new(root, "width", json_integer(width));
    json_object_set_new(root, "height", json_integer(height));
    json_object_set_new(root, "latents", json_pack("{s:s, s:[i,i,i,i], s:I}", "file", "latents.safetensors", "shape",
                                                   (int)shape[0], F, H, W, "tokens",
                                                   (json_int_t)wan_tokens(mc, F, H, W)));
    json_t *tsj = json_array(), *sg = json_array();
    for (int i = 0; i < steps; i++) {
        json_array_append_new(tsj, json_real(sc.timesteps[i]));
        json_array_append_new(sg, json_real(sc.sigmas[i]));
    }
    json_object_set_new(root, "sampler", json_pack("{s:s, s:i, s:f, s:f, s:b, s:o, s:o}", "name",
                                                   wan_sampler_name(sampler), "steps", steps, "shift", shift,
                                                   "guidance", guidance, "cfg", cfg, "timesteps", tsj, "sigmas", sg));
    if (a->noise) {
        json_t *nz = json_object();
        jsonio_set_path(nz, "file", json_final, a->noise);
        json_object_set_new(root, "noise", nz);
    } else {
        json_object_set_new(root, "noise", json_pack("{s:s}", "generator", "splitmix64-box-muller (docs/wan.md)"));
    }
    json_object_set_new(root, "seed", json_integer((json_int_t)c->seed));
    json_t *per = json_array();
    for (int i = 0; i < steps; i++) json_array_append_new(per, json_real(step_s[i]));
    json_object_set_new(root, "timing", json_pack("{s:f, s:f, s:f, s:o, s:i, s:s}", "load_s", rt_load_seconds(rt),
                                                  "generate_s", t_gen, "per_step_s", t_gen / steps, "steps_s", per,
                                                  "threads", threads, "blas", nn_blas_info()));
    {   /* the mode's record + memory.nn: what computed, where the weights lived (as rife's) */
        json_t *mem = rt_memory_json(rt);
        json_t *o = json_pack("{s:s, s:s}", "backend", nn_backend_info(nn), "weights", nn_wres_mode_name(wmode));
        if (fallback[0]) json_object_set_new(o, "fallback", json_string(fallback));
        struct nn_act_stats ast;
        nn_act_stats(nn, &ast);
        jsonio_set_act_stats(o, &ast);
        if (wmode == NN_WRES_STREAMED) {
            uint64_t copies = 0, hits = 0, bytes = 0;
            nn_wres_stats(m->wres, &copies, &hits, &bytes);
            json_object_set_new(o, "streamed", json_pack("{s:I, s:I, s:I}", "copies", (json_int_t)copies, "hits",
                                                       (json_int_t)hits, "bytes", (json_int_t)bytes));
        }
        json_object_set_new(mem, "nn", o);
        json_object_set_new(root, "memory", mem);
    }
    if ((rc = jsonio_write_atomic(json_tmp, root))) goto done;
    if ((rc = sig_check())) goto done;
    if ((rc = fs_dir_publish(tmp, out))) goto done;
    free(tmp);
    tmp = NULL;
    log_verbose("wrote latents [%d, %d, %d, %d] to '%s' in %.2fs", (int)shape[0], F, H, W, out, mem_now() - t0);
done:
    if (loading && !cleanup_logged) rt_cleanup_begin(rt);
    if (have_sched) wan_sched_free(&sc);
    wan_state_free(nn, &st);
    if (nn) {
        nn_release(nn, &ctx_c);
        nn_release(nn, &ctx_u);
    }
    if (m) wan_unload(m);   /* the weights' device memory before the context */
    nn_free(&nn);
    free(x);
    free(vc);
    free(vu);
    free(vctx);
    weights_close(&tw);
    weights_close(&vw);
    wan_close(&m);
    fs_dir_abort(&tmp);
    json_decref(root);
    free(pos);
    free(neg);
    free(step_s);
    free(model_path);
    free(out);
    free(lat_tmp);
    free(json_tmp);
    free(json_final);
    return rt_end(&rt, rc);
}
