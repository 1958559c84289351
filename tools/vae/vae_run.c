/* vae_run.c — one `vae decode` or `vae encode` run. Order of work: check
 * the command line and the inputs' headers, open the model (binding reads
 * shapes only), plan, admit; then compute into a temporary sibling of the
 * output and publish it in one rename, so the output is whole or untouched. */
#include "vae_run.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>

#include "err.h"
#include "fs.h"
#include "gpu.h"
#include "image.h"
#include "jsonio.h"
#include "log.h"
#include "mem.h"
#include "model.h"
#include "nn.h"
#include "nn_heap.h"
#include "nn_wres.h"
#include "plan.h"
#include "runtime.h"
#include "safetensors.h"
#include "sig.h"
#include "st_write.h"
#include "wan_vae.h"
#include "weights.h"

#define MIB_ (UINT64_C(1) << 20)

/* -m: a directory (diffusers) as it is, else a file through the model search path */
static int resolve_model(const struct cli_common *c, char **path)
{
    static const char *const exts[] = { ".safetensors", ".pth", NULL };
    const char *name = c->model ? c->model : VAE_DEFAULT_MODEL;
    if (fs_is_dir(name)) {
        *path = strdup(name);
        return *path ? 0 : iso_fail(ISO_EINTERNAL, "out of memory");
    }
    return model_find(name, exts, path);
}

static const char *base_name(const char *p)
{
    const char *s = strrchr(p, '/');
    while (s && s[1] == 0 && s > p) { /* "dir/" */
        const char *t = s - 1;
        while (t > p && *t != '/') t--;
        return *t == '/' ? t + 1 : t;
    }
    return s ? s + 1 : p;
}

/* The GPU modes' numbers, from the weight registration (nn_wres: every
 * weight resident, the stride-1 convolutions' weights re-laid out as float32)
 * and the activations on the device (+ nn_cuda_fixed_bytes: cuBLAS workspace
 * and scratch). mode 0 beefy, 1 lightweight: the same weights; they differ
 * in the decode's tiling only. */
struct gpu_side {
    struct plan_blocks w;    /* weight fields (wan_vae_plan_blocks) */
    uint64_t relaid_host;    /* host bytes of the re-laid copies made at load */
    uint64_t act_bound[2];   /* device activations: the layer-shape bound */
    uint64_t act_dev[2];     /* what nn takes for it on the device: nn_act_reserve_bytes + the fixed bytes */
    uint64_t act_host[2];    /* activations that stay host memory (decode: tiles' output, frames) */
};

static int gpu_possible(void)
{
#ifdef ISOPIPE_CUDA
    return 1;
#else
    return gpu_is_fake(); /* a pretend device runs the GPU modes' code on the CPU in any build */
#endif
}

static uint64_t gpu_weight_bytes(const struct gpu_side *g)
{
    return g->w.resident_bytes + g->w.n_blocks * g->w.block_bytes + g->w.align_slack + g->w.upload_extra;
}

/* the plan: cpu mode as before (the bound half's weights mapped,
 * activations from the layer shapes plus nn's scratch: one 64 MiB im2col
 * slice and the largest weight converted to f32; host_base the inputs/outputs
 * held and the process); beefy and lightweight from g */
/* cpu mode keeps released activation blocks for reuse (nn_set_host_cache):
 * a quarter of the activation bound, counted in the plan's host RSS */
static uint64_t host_cache_of(uint64_t act) { return act / 4; }

static int make_plan(const struct wan_vae *v, int half, const char *model_path, uint64_t act, uint64_t host_io,
                     const struct gpu_side *g, struct mem_plan *plan)
{
    const struct wan_vae_config *cfg = wan_vae_config(v);
    int cmax = 3;
    for (int i = 0; i < cfg->n_levels; i++) {
        if (cfg->enc_ch[i] > cmax) cmax = cfg->enc_ch[i];
        if (cfg->dec_ch[i] > cmax) cmax = cfg->dec_ch[i];
    }
    uint64_t wmax = (uint64_t)cmax * cmax * 27 * 4;
    struct plan_blocks b = { 0 };
    b.resident_bytes = wan_vae_weight_bytes(v, half);
    b.largest_tensor = wmax;
    b.activations = act + host_cache_of(act) + (UINT64_C(64) << 20) + wmax;
    b.host_base = host_io + (UINT64_C(16) << 20);
    b.cpu_ok = 1;
    b.gpu_ok = gpu_possible();
    b.gpu_explicit_only = !NN_CUDA_MODELS_VERIFIED;
    char name[300];
    snprintf(name, sizeof name, "%s (Wan2.1 VAE %s)", base_name(model_path),
             half == WAN_VAE_DECODER ? "decoder" : "encoder");
    int rc = plan_from_blocks(plan, name, &b);
    for (int m = 0; m < 2 && !rc; m++) {
        struct plan_blocks gb = g->w;
        struct mem_plan gp;
        gb.activations = g->act_dev[m];
        gb.host_base = b.host_base + g->relaid_host + g->act_host[m];
        gb.cpu_ok = 1;
        gb.gpu_ok = b.gpu_ok;
        gb.gpu_explicit_only = b.gpu_explicit_only;
        enum mem_mode mm = m ? MEM_MODE_LIGHTWEIGHT : MEM_MODE_BEEFY;
        if (!(rc = plan_from_blocks(&gp, name, &gb))) plan->mode[mm] = gp.mode[mm];
    }
    return rc;
}

/* where the weights live: the VAE is small, so both GPU modes hold every
 * weight on the device (lightweight saves VRAM by tiling, not by streaming) */
static enum nn_wres_mode wres_mode_of(enum mem_mode m)
{
    return m == MEM_MODE_BEEFY || m == MEM_MODE_LIGHTWEIGHT ? NN_WRES_RESIDENT : NN_WRES_MAPPED;
}

/* The backend of the admitted mode and the weights there: cpu -> NN_CPU,
 * weights mapped; beefy / lightweight -> NN_CUDA with every weight resident
 * (the stride-1 convolutions' re-laid copies instead of the stored ones);
 * on a pretend device (ISOPIPE_FAKE_GPU) the same registration and load on
 * NN_CPU. NN_CUDA unavailable (no cuBLAS, ...): one line, then cpu mode
 * (*mode becomes MEM_MODE_CPU, *fallback says why). */
static int open_backend(struct rt *rt, const struct cli_common *c, struct wan_vae *v, int half, enum mem_mode *mode,
                        uint64_t act_bound, uint64_t host_cache, struct nn **nn, struct nn_wres **wr, char *fallback,
                        size_t nfb)
{
    int rc;
    enum nn_backend be = NN_CPU;
    fallback[0] = 0;
    rt_load_begin(rt);
    if (*mode != MEM_MODE_CPU && !gpu_is_fake()) {
        rc = nn_new(nn, NN_CUDA, cli_threads(c));
        if (rc == ISO_EUNAVAIL) {
            snprintf(fallback, nfb, "%s", iso_errmsg());
            iso_errclear();
            *mode = MEM_MODE_CPU;
            if ((rc = rt_fallback_cpu(rt, fallback))) return rc; /* the reservation goes back */
        } else if (rc) {
            return rc;
        } else {
            be = NN_CUDA;
        }
    } else if (*mode != MEM_MODE_CPU) {
        log_verbose("pretend device: %s mode computes on the CPU", mem_mode_name(*mode));
    }
    if (!*nn && (rc = nn_new(nn, NN_CPU, cli_threads(c)))) return rc;
    if (be == NN_CPU) nn_set_host_cache(*nn, host_cache);
    enum nn_wres_mode wm = wres_mode_of(*mode);
    if (wm != NN_WRES_MAPPED && (rc = wan_vae_relay(v, half))) return rc;
    if (!(*wr = nn_wres_new(wm, 0))) return ISO_EINTERNAL;
    if ((rc = wan_vae_register(v, half, *wr, wm != NN_WRES_MAPPED)) || (rc = nn_wres_load(*wr, *nn))) return rc;
    if (be == NN_CUDA) wan_vae_drop_relaid_host(v); /* uploaded: the device copies are what the forward reads */
    /* on a pretend device: the shadow of the device's heaps (nn_reserve) */
    if (*mode != MEM_MODE_CPU && (rc = nn_reserve(*nn, act_bound))) return rc;
    rt_load_end(rt);
    return 0;
}

/* the memory object plus "nn": which backend ran, where the weights lived,
 * why a GPU mode ran on the CPU (as segment-gen's rife reports it) */
static json_t *memory_json(struct rt *rt, struct nn *nn, enum mem_mode mode, const char *fallback)
{
    json_t *m = rt_memory_json(rt);
    if (!m) return NULL;
    json_t *o = json_pack("{s:s, s:s}", "backend", nn ? nn_backend_info(nn) : "none", "weights",
                          nn_wres_mode_name(wres_mode_of(mode)));
    if (fallback && fallback[0]) json_object_set_new(o, "fallback", json_string(fallback));
    if (nn) {
        struct nn_act_stats st;
        nn_act_stats(nn, &st);
        jsonio_set_act_stats(o, &st);
    }
    json_object_set_new(m, "nn", o);
    return m;
}

static json_t *config_json(const struct wan_vae_config *c)
{
    json_t *mult = json_array(), *td = json_array();
    for (int i = 0; i < c->n_levels; i++) json_array_append_new(mult, json_integer(c->enc_ch[i]));
    for (int i = 0; i + 1 < c->n_levels; i++) json_array_append_new(td, json_boolean(c->temporal_down[i]));
    return json_pack("{s:s, s:s, s:s, s:i, s:o, s:i, s:o}", "source", c->source, "latent_stats", c->stats_source,
                     "layout", c->layout, "z_dim", c->z_dim, "channels", mult, "num_res_blocks",
                     c->num_res_blocks, "temporal_downsample", td);
}

/* an isopipe JSON file (our header: "tool" and "version" strings) */
static int is_our_json(const char *path)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    int ok = j && json_is_string(json_object_get(j, "tool")) && json_is_string(json_object_get(j, "version"));
    json_decref(j);
    return ok;
}

/* DIR may be replaced when it does not exist, is empty, or holds a
 * segment.json or vae.json that isopipe wrote */
static int check_out_dir(const char *out)
{
    if (!fs_exists(out)) return 0;
    if (!fs_is_dir(out)) return iso_fail(ISO_ECANTCREAT, "cannot write '%s': it exists and is not a directory", out);
    char *seg = fs_join(out, "segment.json"), *vj = fs_join(out, "vae.json");
    int ours = (seg && fs_exists(seg) && is_our_json(seg)) || (vj && fs_exists(vj) && is_our_json(vj));
    free(seg);
    free(vj);
    if (ours) return 0;
    DIR *d = opendir(out);
    if (!d) return iso_fail(ISO_ECANTCREAT, "cannot read '%s': %s", out, strerror(errno));
    struct dirent *e;
    int empty = 1;
    while ((e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) { empty = 0; break; }
    closedir(d);
    if (!empty)
        return iso_fail(ISO_ECANTCREAT, "will not replace '%s': it is not empty and holds no isopipe segment.json "
                        "or vae.json", out);
    return 0;
}

static int copy_file(const char *src, const char *dst)
{
    FILE *in = fopen(src, "rb"), *out = NULL;
    int rc = 0;
    if (!in) return iso_fail(ISO_ENOINPUT, "cannot read '%s': %s", src, strerror(errno));
    if (!(out = fopen(dst, "wb"))) { rc = iso_fail(ISO_ECANTCREAT, "cannot create '%s': %s", dst, strerror(errno)); goto done; }
    char buf[1 << 16];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        if (fwrite(buf, 1, n, out) != n) { rc = iso_fail(ISO_EIO, "cannot write '%s': %s", dst, strerror(errno)); goto done; }
    if (ferror(in)) rc = iso_fail(ISO_EIO, "cannot read '%s'", src);
done:
    if (out && fclose(out) && !rc) rc = iso_fail(ISO_EIO, "cannot write '%s': %s", dst, strerror(errno));
    fclose(in);
    return rc;
}

/* ------------------------------------------------------------------ decode */

/* a tile-major decode needs `spill` bytes of disk in dir for its tiles'
 * frames (the frames themselves go there too, as PNGs, not counted) */
static int check_spill_room(const char *dir, uint64_t spill)
{
    struct statvfs sv;
    if (!spill || statvfs(dir, &sv)) return 0; /* unknown: the writes will say */
    uint64_t avail = (uint64_t)sv.f_bavail * sv.f_frsize;
    if (avail < spill)
        return iso_fail(ISO_ECANTCREAT, "a tile-major decode spills %.0f MiB of decoded tiles to '%s', which has "
                        "%.0f MiB free; free some space, or decode with --memory-mode cpu or beefy",
                        spill / 1048576.0, dir, avail / 1048576.0);
    return 0;
}

/* --tile N as asked (every mode) */
static int explicit_tiling(const struct vae_args *a, int big, struct wan_vae_tiling *tl, char *why, size_t n)
{
    tl->tile = a->tile >= big ? 0 : (int)a->tile;
    tl->overlap = tl->tile ? (a->tile_overlap >= 0 ? (int)a->tile_overlap : (tl->tile + 3) / 4) : 0;
    if (tl->tile && tl->overlap >= tl->tile)
        return iso_fail(ISO_EUSAGE, "--tile-overlap %d must be smaller than --tile %d", tl->overlap, tl->tile);
    snprintf(why, n, tl->tile ? "--tile %ld" : "--tile %ld covers the whole frame", a->tile);
    return 0;
}

/* The tile for a budget: none when whole frames fit, else the largest
 * square tile (overlap a quarter of it) whose bound fits, else 4. dev:
 * the device's bound (wan_vae_decode_dev_bytes) against the device room,
 * else the host's (wan_vae_decode_act_bytes) against the host budget;
 * `other` is what the budget holds besides the activations. */
static void fit_tiling(const struct wan_vae_config *cfg, int h, int w, int dev, uint64_t other, uint64_t budget,
                       const char *what, struct wan_vae_tiling *tl, char *why, size_t n)
{
    int big = h > w ? h : w;
    uint64_t need = (dev ? nn_act_reserve_bytes(wan_vae_decode_dev_bytes(cfg, h, w, NULL)) : wan_vae_decode_act_bytes(cfg, h, w, NULL)) + other;
    tl->tile = tl->overlap = 0;
    if (need <= budget) {
        snprintf(why, n, "none: whole frames need %.0f MiB, the %s is %.0f MiB", need / 1048576.0, what,
                 budget / 1048576.0);
        return;
    }
    int smallest = 0;
    for (int t = big - 1; t >= 4; t--) {
        struct wan_vae_tiling c = { t, (t + 3) / 4, dev, NULL }; /* the device's tiles go tile-major */
        if (wan_vae_tile_count(h, w, &c) > WAN_VAE_MAX_TILES) break;
        smallest = t;
        uint64_t nt = (dev ? nn_act_reserve_bytes(wan_vae_decode_dev_bytes(cfg, h, w, &c)) : wan_vae_decode_act_bytes(cfg, h, w, &c)) + other;
        if (nt <= budget) {
            *tl = c;
            snprintf(why, n, "whole frames need %.0f MiB, the %s is %.0f MiB: tiles of %d latent pixels need %.0f MiB",
                     need / 1048576.0, what, budget / 1048576.0, t, nt / 1048576.0);
            return;
        }
    }
    if (!smallest) { /* a frame too small to tile at all */
        snprintf(why, n, "none: whole frames need %.0f MiB, over the %s of %.0f MiB, and cannot be tiled",
                 need / 1048576.0, what, budget / 1048576.0);
        return;
    }
    tl->tile = smallest;
    tl->overlap = (smallest + 3) / 4;
    tl->tile_major = dev;
    snprintf(why, n, "even tiles of %d latent pixels (at most %d tiles) exceed the %s of %.0f MiB", smallest,
             WAN_VAE_MAX_TILES, what, budget / 1048576.0);
}

/* cpu mode: --tile as asked, else fitted to the host memory budget */
static int choose_tiling(const struct vae_args *a, const struct wan_vae_config *cfg, int h, int w, uint64_t other,
                         struct wan_vae_tiling *tl, char *why, size_t n)
{
    if (a->tile > 0) return explicit_tiling(a, h > w ? h : w, tl, why, n);
    fit_tiling(cfg, h, w, 0, other, mem_host_budget(), "host budget", tl, why, n);
    return 0;
}

/* lightweight: --tile as asked, else fitted to the device room now (free
 * VRAM - --vram-reserve) with the resident weights and nn's fixed buffers;
 * admission still checks the plan against the room it sees then */
static int choose_gpu_tiling(const struct vae_args *a, const struct cli_common *c, const struct wan_vae_config *cfg,
                             int h, int w, uint64_t other, struct wan_vae_tiling *tl, char *why, size_t n)
{
    if (a->tile > 0) return explicit_tiling(a, h > w ? h : w, tl, why, n);
    uint64_t room = 0, f, t;
    /* a run that may go lightweight creates the CUDA context now (admission
     * would, just after), so that the room is net of it (~520 MiB, not in
     * the plan: docs/memory.md); --plan alone does not */
    int may_run = c->memory_mode == MEM_MODE_LIGHTWEIGHT || (c->memory_mode == MEM_MODE_AUTO && NN_CUDA_MODELS_VERIFIED);
    if (gpu_present() && !gpu_is_fake() && !c->plan_only && may_run && gpu_activate()) iso_errclear();
    if (gpu_present() && gpu_mem_get(&f, &t) == 0) {
        uint64_t res = c->vram_reserve_mib > 0 ? (uint64_t)c->vram_reserve_mib << 20 : 0;
        room = f > res ? f - res : 0;
    }
    fit_tiling(cfg, h, w, 1, other, room, gpu_present() ? "device room" : "device room (no device)", tl, why, n);
    return 0;
}

/* spill_bytes: the disk a tile-major decode of F frames writes its tiles'
 * frames to (in the output's staging directory) */
static json_t *tiling_json(const struct wan_vae_tiling *tl, const struct wan_vae_config *cfg, int h, int w, int F,
                           const char *why)
{
    return json_pack("{s:i, s:i, s:i, s:s, s:I, s:s}", "tile", tl->tile, "tile_pixels", tl->tile * cfg->spatial,
                     "overlap", tl->overlap, "order", tl->tile_major ? "tile-major" : "frame-major", "spill_bytes",
                     (json_int_t)wan_vae_decode_spill_bytes(cfg, h, w, tl, F), "why", why);
}

struct frame_sink {
    const char *dir;
    int level, total, written;
    struct image img;
};

static int sink_emit(void *ctx, int index, const float *rgb, int H, int W)
{
    struct frame_sink *s = ctx;
    int rc;
    if ((rc = sig_check())) return rc;
    if (!s->img.data && (rc = image_alloc(&s->img, W, H, 3))) return rc;
    size_t hw = (size_t)H * W;
    for (size_t i = 0; i < hw; i++)
        for (int c = 0; c < 3; c++) {
            float v = (rgb[c * hw + i] + 1.0f) * 0.5f;
            v = v < 0 ? 0 : v > 1 ? 1 : v;
            s->img.data[i * 3 + c] = (uint8_t)lrintf(v * 255.0f);
        }
    char name[32];
    snprintf(name, sizeof name, "frame_%05d.png", index);
    char *path = fs_join(s->dir, name);
    if (!path) return iso_fail(ISO_EINTERNAL, "out of memory");
    rc = image_save_png(path, &s->img, s->level);
    free(path);
    if (rc) return rc;
    s->written++;
    log_progress("frames", s->written, s->total);
    return 0;
}

int vae_decode_run(const struct vae_args *a, const struct cli_common *c)
{
    struct rt *rt = NULL;
    struct weights *w = NULL;
    struct wan_vae *v = NULL;
    struct safetensors *st = NULL;
    struct nn *nn = NULL;
    struct nn_wres *wr = NULL;
    struct frame_sink sk = { 0 };
    struct mem_plan plan;
    enum mem_mode mode = MEM_MODE_CPU;
    char *model_path = NULL, *lat_path = NULL, *segdir = NULL, *tmp = NULL, *out = NULL, *json_path = NULL;
    json_t *root = NULL, *tiling = NULL, *gtiling = NULL;
    struct wan_vae_tiling tl = { 0 }, gtl[2] = { { 0 }, { 0 } };
    char why[200] = "", gwhy[2][200] = { "", "" }, fallback[300] = "";
    int rc, loading = 0, cleanup = 0;
    double t0 = mem_now(), t_dec = 0;

    if ((rc = rt_begin(c, &rt))) goto done;
    const char *in = a->inputs[0];
    if (!c->output && !c->plan_only) { rc = iso_fail(ISO_EUSAGE, "-o DIR is required"); goto done; }
    if (c->output && !(out = strdup(c->output))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if (fs_is_dir(in)) {
        segdir = strdup(in);
        lat_path = fs_join(in, "latents.safetensors");
    } else {
        lat_path = strdup(in);
    }
    if (!lat_path || (fs_is_dir(in) && !segdir)) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if (!fs_exists(lat_path)) { rc = iso_fail(ISO_ENOINPUT, "cannot read '%s': no such file", lat_path); goto done; }
    if ((rc = st_open(lat_path, &st))) goto done;
    const struct st_tensor *lt = st_find(st, "latents");
    if (!lt) { rc = iso_fail(ISO_EDATA, "'%s' has no tensor 'latents'", lat_path); goto done; }
    uint64_t shp[4];
    int nd = lt->n_dims;
    if (nd == 5 && lt->shape[0] == 1) { memcpy(shp, lt->shape + 1, sizeof shp); nd = 4; }
    else if (nd == 4) memcpy(shp, lt->shape, sizeof shp);
    if (lt->dtype != ST_F32 || nd != 4) {
        rc = iso_fail(ISO_EDATA, "'%s': 'latents' must be float32 [channels, T, h, w], not %s with %d dimensions",
                      lat_path, st_dtype_name(lt->dtype), lt->n_dims);
        goto done;
    }
    if (shp[1] < 1 || shp[2] < 1 || shp[3] < 1 || shp[1] > 100000 || shp[2] > 100000 || shp[3] > 100000) {
        rc = iso_fail(ISO_EDATA, "'%s': 'latents' has an empty or absurd shape", lat_path);
        goto done;
    }
    int T = (int)shp[1], h = (int)shp[2], wl = (int)shp[3];

    if ((rc = resolve_model(c, &model_path))) goto done;
    if ((rc = weights_open(model_path, &w))) goto done;
    if ((rc = wan_vae_open(&v, w, WAN_VAE_DECODER))) goto done;
    const struct wan_vae_config *cfg = wan_vae_config(v);
    if ((int)shp[0] != cfg->z_dim) {
        rc = iso_fail(ISO_EDATA, "'%s': latents have %d channels; the model's z_dim is %d", lat_path, (int)shp[0],
                      cfg->z_dim);
        goto done;
    }
    int F = 1 + cfg->temporal * (T - 1), H = h * cfg->spatial, W = wl * cfg->spatial;
    uint64_t io = lt->nbytes + (uint64_t)H * W * (3 * 4 + 3);
    if ((rc = choose_tiling(a, cfg, h, wl, wan_vae_weight_bytes(v, WAN_VAE_DECODER) + io, &tl, why, sizeof why)))
        goto done;
    uint64_t act = wan_vae_decode_act_bytes(cfg, h, wl, &tl);
    /* beefy: whole frames (or --tile); lightweight: the tile the device room allows */
    struct gpu_side g = { 0 };
    if ((rc = wan_vae_plan_blocks(v, WAN_VAE_DECODER, 1, &g.w, &g.relaid_host))) goto done;
    uint64_t fixed = gpu_weight_bytes(&g) + nn_cuda_fixed_bytes();
    if (a->tile > 0) rc = explicit_tiling(a, h > wl ? h : wl, &gtl[0], gwhy[0], sizeof gwhy[0]);
    else snprintf(gwhy[0], sizeof gwhy[0], "none: beefy decodes whole frames");
    if (rc || (rc = choose_gpu_tiling(a, c, cfg, h, wl, fixed, &gtl[1], gwhy[1], sizeof gwhy[1]))) goto done;
    gtl[1].tile_major = gtl[1].tile > 0; /* lightweight: one tile's caches on the device at a time */
    for (int m = 0; m < 2; m++) {
        g.act_bound[m] = wan_vae_decode_dev_bytes(cfg, h, wl, &gtl[m]);
        g.act_dev[m] = nn_act_reserve_bytes(g.act_bound[m]) + nn_cuda_fixed_bytes();
        g.act_host[m] = wan_vae_decode_host_bytes(cfg, h, wl, &gtl[m]);
    }
    if ((rc = make_plan(v, WAN_VAE_DECODER, model_path, act, io, &g, &plan))) goto done;
    tiling = tiling_json(&tl, cfg, h, wl, F, why);
    gtiling = json_pack("{s:o, s:o}", "beefy", tiling_json(&gtl[0], cfg, h, wl, F, gwhy[0]), "lightweight",
                        tiling_json(&gtl[1], cfg, h, wl, F, gwhy[1]));
    if (c->plan_only) {
        json_t *extra = json_pack("{s:{s:i, s:i, s:i, s:i, s:I, s:O, s:O, s:I, s:o}}", "decode", "latent_frames", T,
                                  "frames", F, "width", W, "height", H, "activations_bound", (json_int_t)act, "tiling",
                                  tiling, "gpu_tiling", gtiling, "relaid_host_bytes", (json_int_t)g.relaid_host,
                                  "config", config_json(cfg));
        rc = rt_print_plan(rt, &plan, extra);
        goto done;
    }
    if ((rc = check_out_dir(out))) goto done;
    if ((rc = rt_admit(rt, &plan, &mode))) goto done;
    loading = 1;
    int gm = mode == MEM_MODE_LIGHTWEIGHT;
    if ((rc = open_backend(rt, c, v, WAN_VAE_DECODER, &mode, g.act_bound[gm], host_cache_of(act), &nn, &wr, fallback, sizeof fallback)))
        goto done;
    if (mode != MEM_MODE_CPU) { /* the GPU mode's tiling (also on a pretend device) */
        tl = gtl[gm];
        json_decref(tiling);
        tiling = json_incref(json_object_get(gtiling, gm ? "lightweight" : "beefy"));
    }

    /* check_out_dir decided above that out may be replaced */
    if ((rc = fs_dir_begin_checked(out, &tmp))) goto done;
    if (segdir) {
        static const char *const keep[] = { "segment.json", "latents.safetensors" };
        for (int i = 0; i < 2; i++) {
            char *src = fs_join(segdir, keep[i]), *dst = fs_join(tmp, keep[i]);
            rc = !src || !dst ? iso_fail(ISO_EINTERNAL, "out of memory") : fs_exists(src) ? copy_file(src, dst) : 0;
            free(src);
            free(dst);
            if (rc) goto done;
        }
    }
    sk.dir = tmp;
    sk.level = a->png_level;
    sk.total = F;
    tl.spill_dir = tmp; /* a tile-major decode spills its tiles' frames beside the frames */
    if ((rc = check_spill_room(tmp, wan_vae_decode_spill_bytes(cfg, h, wl, &tl, F)))) goto done;
    double td = mem_now();
    if ((rc = wan_vae_decode(v, nn, lt->data, T, h, wl, &tl, sink_emit, &sk))) goto done;
    t_dec = mem_now() - td;
    rt_cleanup_begin(rt);
    cleanup = 1;

    json_path = fs_join(tmp, "vae.json");
    char *json_final = fs_join(out, "vae.json");
    root = jsonio_header_new();
    if (!json_path || !json_final || !root) { free(json_final); rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    json_t *m = json_pack("{s:s}", "name", base_name(model_path));
    jsonio_set_path(m, "path", json_final, model_path);
    json_object_set_new(m, "config", config_json(cfg));
    json_object_set_new(root, "command", json_string("decode"));
    json_object_set_new(root, "model", m);
    json_t *li = json_object();
    jsonio_set_path(li, "path", json_final, lat_path);
    json_object_set_new(li, "shape", json_pack("[i,i,i,i]", cfg->z_dim, T, h, wl));
    json_object_set_new(root, "latents", li);
    json_object_set_new(root, "frames", json_integer(F));
    json_object_set_new(root, "width", json_integer(W));
    json_object_set_new(root, "height", json_integer(H));
    json_object_set_new(root, "tiling", json_deep_copy(tiling));
    json_object_set_new(root, "timing", json_pack("{s:f, s:f, s:i}", "decode_s", t_dec, "frames_per_s",
                                                  t_dec > 0 ? F / t_dec : 0.0, "threads", cli_threads(c)));
    json_object_set_new(root, "memory", memory_json(rt, nn, mode, fallback));
    free(json_final);
    if ((rc = jsonio_write_atomic(json_path, root))) goto done;
    if ((rc = sig_check())) goto done;
    if ((rc = fs_dir_publish(tmp, out))) goto done;
    free(tmp);
    tmp = NULL;
    log_verbose("decoded %d latent frames to %d frames of %dx%d in '%s' in %.2fs", T, F, W, H, out, mem_now() - t0);
done:
    if (loading && !cleanup) rt_cleanup_begin(rt);
    fs_dir_abort(&tmp);
    image_free(&sk.img);
    json_decref(root);
    json_decref(tiling);
    json_decref(gtiling);
    nn_wres_free(&wr);
    nn_free(&nn);
    wan_vae_free(&v);
    weights_close(&w);
    st_close(&st);
    free(model_path);
    free(lat_path);
    free(segdir);
    free(out);
    free(json_path);
    return rt_end(&rt, rc);
}

/* ------------------------------------------------------------------ encode */

struct frame_src {
    char **paths;
    int n;
};

static int src_get(void *ctx, int index, float *dst, int H, int W)
{
    struct frame_src *s = ctx;
    struct image img = { 0 };
    int rc;
    if ((rc = sig_check())) return rc;
    if ((rc = image_load_png(s->paths[index], &img, 3))) return rc;
    if (img.w != W || img.h != H) {
        rc = iso_fail(ISO_EDATA, "'%s' is %dx%d, the first frame is %dx%d", s->paths[index], img.w, img.h, W, H);
        image_free(&img);
        return rc;
    }
    size_t hw = (size_t)H * W;
    for (size_t i = 0; i < hw; i++)
        for (int c = 0; c < 3; c++) dst[c * hw + i] = img.data[i * 3 + c] / 255.0f * 2.0f - 1.0f;
    image_free(&img);
    log_progress("frames", index + 1, s->n);
    return 0;
}

static void free_paths(struct frame_src *s)
{
    for (int i = 0; i < s->n; i++) free(s->paths[i]);
    free(s->paths);
    s->paths = NULL;
    s->n = 0;
}

/* DIR/frame_00000.png, frame_00001.png, ... up to the first missing one */
static int list_dir(const char *dir, struct frame_src *s)
{
    if (!fs_is_dir(dir)) return iso_fail(ISO_ENOINPUT, "cannot read '%s': not a directory", dir);
    for (int i = 0;; i++) {
        char name[32];
        snprintf(name, sizeof name, "frame_%05d.png", i);
        char *p = fs_join(dir, name);
        if (!p) return iso_fail(ISO_EINTERNAL, "out of memory");
        if (!fs_exists(p)) { free(p); break; }
        char **np = realloc(s->paths, (size_t)(s->n + 1) * sizeof *np);
        if (!np) { free(p); return iso_fail(ISO_EINTERNAL, "out of memory"); }
        s->paths = np;
        s->paths[s->n++] = p;
        if (s->n > 100000) return iso_fail(ISO_EDATA, "'%s': too many frames", dir);
    }
    if (!s->n) return iso_fail(ISO_ENOINPUT, "'%s' holds no frame_00000.png", dir);
    return 0;
}

/* FRAMES...: PNG files, or one directory of frame_00000.png, frame_00001.png, ... */
static int list_frames(const struct vae_args *a, struct frame_src *s)
{
    if (a->n_inputs == 1 && fs_is_dir(a->inputs[0])) return list_dir(a->inputs[0], s);
    s->paths = calloc((size_t)a->n_inputs, sizeof *s->paths);
    if (!s->paths) return iso_fail(ISO_EINTERNAL, "out of memory");
    for (int i = 0; i < a->n_inputs; i++) {
        if (!fs_exists(a->inputs[i])) return iso_fail(ISO_ENOINPUT, "cannot read '%s': no such file", a->inputs[i]);
        if (!(s->paths[i] = strdup(a->inputs[i]))) return iso_fail(ISO_EINTERNAL, "out of memory");
        s->n = i + 1;
    }
    return 0;
}

/* -o OUT.safetensors may replace only a file vae wrote */
static int check_out_file(const char *path)
{
    if (!fs_exists(path)) return 0;
    struct safetensors *old = NULL;
    int ours = st_open(path, &old) == 0 && st_meta(old, "tool") && !strcmp(st_meta(old, "tool"), "vae");
    st_close(&old);
    iso_errclear();
    if (!ours) return iso_fail(ISO_ECANTCREAT, "will not replace '%s': it exists and was not written by vae", path);
    return 0;
}

static int check_count(int F)
{
    if ((F - 1) % 4 == 0 && F >= 1) return 0;
    int lo = F < 1 ? 1 : 1 + (F - 1) / 4 * 4;
    return iso_fail(ISO_EDATA, "%d frames: the Wan VAE encodes 1 + 4k frames (nearest: %d or %d)", F, lo, lo + 4);
}

static int near8(int x) { int r = (x + 4) / 8 * 8; return r < 8 ? 8 : r; }

int vae_encode_run(const struct vae_args *a, const struct cli_common *c)
{
    struct rt *rt = NULL;
    struct weights *w = NULL;
    struct wan_vae *v = NULL;
    struct nn *nn = NULL;
    struct nn_wres *wr = NULL;
    char fallback[300] = "";
    struct frame_src src = { 0 };
    struct mem_plan plan;
    enum mem_mode mode = MEM_MODE_CPU;
    char *model_path = NULL;
    float *lat = NULL;
    json_t *root = NULL;
    int rc, loading = 0, cleanup = 0, H = 0, W = 0;
    double t_enc = 0;

    if ((rc = rt_begin(c, &rt))) goto done;
    if (!c->output && !c->plan_only) { rc = iso_fail(ISO_EUSAGE, "-o OUT.safetensors is required"); goto done; }
    if ((rc = list_frames(a, &src))) goto done;
    int F = src.n;
    if ((rc = image_png_size(src.paths[0], &W, &H))) goto done;
    if ((rc = check_count(F))) goto done;
    if (W % 8 || H % 8) {
        rc = iso_fail(ISO_EDATA, "'%s' is %dx%d: width and height must be multiples of 8 (nearest: %dx%d)",
                      src.paths[0], W, H, near8(W), near8(H));
        goto done;
    }
    for (int i = 1; i < F; i++) {
        int w2, h2;
        if ((rc = image_png_size(src.paths[i], &w2, &h2))) goto done;
        if (w2 != W || h2 != H) {
            rc = iso_fail(ISO_EDATA, "'%s' is %dx%d, '%s' is %dx%d: frames must share one size", src.paths[i], w2, h2,
                          src.paths[0], W, H);
            goto done;
        }
    }
    if ((rc = resolve_model(c, &model_path))) goto done;
    if ((rc = weights_open(model_path, &w))) goto done;
    if ((rc = wan_vae_open(&v, w, WAN_VAE_ENCODER))) goto done;
    const struct wan_vae_config *cfg = wan_vae_config(v);
    int T = 1 + (F - 1) / cfg->temporal, h = H / cfg->spatial, wl = W / cfg->spatial;
    size_t nlat = (size_t)cfg->z_dim * T * h * wl;
    uint64_t act = wan_vae_encode_act_bytes(cfg, H, W);
    struct gpu_side g = { 0 };
    if ((rc = wan_vae_plan_blocks(v, WAN_VAE_ENCODER, 1, &g.w, &g.relaid_host))) goto done;
    /* the encoder does not tile: lightweight = beefy */
    g.act_bound[0] = g.act_bound[1] = act + nn_attention_products_bytes(cfg->enc_ch[cfg->n_levels - 1], h * wl, h * wl);
    g.act_dev[0] = g.act_dev[1] = nn_act_reserve_bytes(g.act_bound[0]) + nn_cuda_fixed_bytes();
    if ((rc = make_plan(v, WAN_VAE_ENCODER, model_path, act, nlat * 4 + (uint64_t)H * W * 4 * 4, &g, &plan))) goto done;
    if (c->plan_only) {
        json_t *extra = json_pack("{s:{s:i, s:i, s:i, s:i, s:I, s:o}}", "encode", "frames", F, "latent_frames", T,
                                  "width", W, "height", H, "activations_bound", (json_int_t)act, "config",
                                  config_json(cfg));
        rc = rt_print_plan(rt, &plan, extra);
        goto done;
    }
    if ((rc = check_out_file(c->output))) goto done;
    if ((rc = rt_admit(rt, &plan, &mode))) goto done;
    loading = 1;
    if ((rc = open_backend(rt, c, v, WAN_VAE_ENCODER, &mode, g.act_bound[0], host_cache_of(act), &nn, &wr, fallback, sizeof fallback)))
        goto done;
    if (!(lat = malloc(nlat * sizeof *lat))) { rc = iso_fail(ISO_ETEMPFAIL, "out of memory"); goto done; }
    double te = mem_now();
    if ((rc = wan_vae_encode(v, nn, F, H, W, src_get, &src, lat))) goto done;
    t_enc = mem_now() - te;
    rt_cleanup_begin(rt);
    cleanup = 1;
    char frames_s[24];
    snprintf(frames_s, sizeof frames_s, "%d", F);
    const char *meta[] = { "tool", "vae", "command", "encode", "model", base_name(model_path), "frames", frames_s,
                           "config_source", cfg->source, "latent_stats", cfg->stats_source, NULL };
    struct st_out o = { "latents", ST_F32, 4, { (uint64_t)cfg->z_dim, (uint64_t)T, (uint64_t)h, (uint64_t)wl }, lat };
    if ((rc = sig_check())) goto done;
    if ((rc = st_write(c->output, &o, 1, meta))) goto done;
    /* the report on stdout */
    root = jsonio_header_new();
    json_object_set_new(root, "command", json_string("encode"));
    json_object_set_new(root, "output", json_string(c->output));
    json_object_set_new(root, "model", json_pack("{s:s, s:o}", "path", model_path, "config", config_json(cfg)));
    json_object_set_new(root, "frames", json_integer(F));
    json_object_set_new(root, "latents", json_pack("[i,i,i,i]", cfg->z_dim, T, h, wl));
    json_object_set_new(root, "timing", json_pack("{s:f, s:f, s:i}", "encode_s", t_enc, "frames_per_s",
                                                  t_enc > 0 ? F / t_enc : 0.0, "threads", cli_threads(c)));
    json_object_set_new(root, "memory", memory_json(rt, nn, mode, fallback));
    json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    fputc('\n', stdout);
done:
    if (loading && !cleanup) rt_cleanup_begin(rt);
    json_decref(root);
    free(lat);
    nn_wres_free(&wr);
    nn_free(&nn);
    wan_vae_free(&v);
    weights_close(&w);
    free_paths(&src);
    free(model_path);
    return rt_end(&rt, rc);
}

/* ------------------------------------------------------------------ encode --vace */

/* The VACE conditioning, as diffusers' WanVACEPipeline builds it without
 * reference images (prepare_video_latents, prepare_masks): video in [-1, 1],
 * mask in [0, 1] (a PNG's value / 255, channel by channel); the mask
 * binarised at 0.5 splits the video into inactive = video * (1 - mask) and
 * reactive = video * mask, each encoded and normalised (z channels each);
 * then the continuous mask's first channel, pixel-unshuffled 8x8 (channel
 * dy*8 + dx) and resampled in time with nearest-exact to T latent frames. */
struct vace_src {
    int F, H, W;
    struct image *fixed;     /* layout: F entries, data NULL = unknown (video 0, mask 1) */
    struct frame_src video, mask; /* explicit: F paths each */
    float *vbuf, *mbuf;      /* [3, H, W] */
    int reactive;            /* which half get() gives */
};

static int img_to_float(const struct image *img, float *dst, float scale, float offset)
{
    size_t hw = (size_t)img->w * img->h;
    for (size_t i = 0; i < hw; i++)
        for (int c = 0; c < 3; c++) dst[c * hw + i] = img->data[i * 3 + c] * scale + offset;
    return 0;
}

static int load_sized(const char *path, int W, int H, struct image *img)
{
    int rc = image_load_png(path, img, 3);
    if (rc) return rc;
    if (img->w != W || img->h != H) {
        rc = iso_fail(ISO_EDATA, "'%s' is %dx%d, the other frames are %dx%d", path, img->w, img->h, W, H);
        image_free(img);
    }
    return rc;
}

/* frame f: video [3, H, W] in [-1, 1] and mask [3, H, W] in [0, 1] */
static int vace_frame(struct vace_src *s, int f, float *video, float *mask)
{
    size_t n = 3 * (size_t)s->H * s->W;
    int rc;
    if (s->fixed) {
        if (s->fixed[f].data) {
            img_to_float(&s->fixed[f], video, 2.0f / 255.0f, -1.0f);
            for (size_t i = 0; i < n; i++) mask[i] = 0.0f;
        } else {
            for (size_t i = 0; i < n; i++) { video[i] = 0.0f; mask[i] = 1.0f; }
        }
        return 0;
    }
    struct image img = { 0 };
    if ((rc = load_sized(s->video.paths[f], s->W, s->H, &img))) return rc;
    img_to_float(&img, video, 2.0f / 255.0f, -1.0f);
    image_free(&img);
    if ((rc = load_sized(s->mask.paths[f], s->W, s->H, &img))) return rc;
    /* diffusers: clamp((m/255*2-1 + 1)/2, 0, 1) */
    img_to_float(&img, mask, 1.0f / 255.0f, 0.0f);
    image_free(&img);
    return 0;
}

static int vace_get(void *ctx, int index, float *dst, int H, int W)
{
    struct vace_src *s = ctx;
    int rc;
    if ((rc = sig_check())) return rc;
    if ((rc = vace_frame(s, index, s->vbuf, s->mbuf))) return rc;
    size_t n = 3 * (size_t)H * W;
    for (size_t i = 0; i < n; i++) {
        float b = s->mbuf[i] > 0.5f ? 1.0f : 0.0f;
        dst[i] = s->vbuf[i] * (s->reactive ? b : 1.0f - b);
    }
    return 0;
}

static void vace_src_free(struct vace_src *s)
{
    if (s->fixed)
        for (int i = 0; i < s->F; i++) image_free(&s->fixed[i]);
    free(s->fixed);
    free_paths(&s->video);
    free_paths(&s->mask);
    free(s->vbuf);
    free(s->mbuf);
    memset(s, 0, sizeof *s);
}

/* the inputs by layout; sizes and counts checked */
static int vace_inputs(const struct vae_args *a, struct vace_src *s)
{
    int rc;
    if (a->video || a->mask) {
        if (!a->video || !a->mask) return iso_fail(ISO_EUSAGE, "--video and --mask go together");
        if (a->start || a->end || a->keep) return iso_fail(ISO_EUSAGE, "--video/--mask exclude --start, --end and --keep");
        if ((rc = list_dir(a->video, &s->video)) || (rc = list_dir(a->mask, &s->mask))) return rc;
        if (s->video.n != s->mask.n)
            return iso_fail(ISO_EDATA, "'%s' holds %d frames, '%s' %d", a->video, s->video.n, a->mask, s->mask.n);
        s->F = s->video.n;
        if ((rc = image_png_size(s->video.paths[0], &s->W, &s->H))) return rc;
        return check_count(s->F);
    }
    if (!a->end) return iso_fail(ISO_EUSAGE, "--vace needs --end B.png (with --start or --keep), or --video and --mask");
    if (!!a->start == !!a->keep) return iso_fail(ISO_EUSAGE, "--vace takes one of --start A.png and --keep DIR");
    if (a->frames < 2 || a->frames > 100000)
        return iso_fail(ISO_EUSAGE, "--frames N (at least 2) is required with --start/--keep");
    int F = (int)a->frames;
    if ((rc = check_count(F))) return rc;
    s->F = F;
    if (!(s->fixed = calloc((size_t)F, sizeof *s->fixed))) return iso_fail(ISO_EINTERNAL, "out of memory");
    if ((rc = image_png_size(a->end, &s->W, &s->H))) return rc;
    if (a->keep) {
        struct frame_src prev = { 0 };
        if (a->keep_frames < 1 || a->keep_frames > F - 2) {
            return iso_fail(ISO_EUSAGE, "--keep-frames K must be 1..%d (N - 2) with --keep", F - 2);
        }
        if ((rc = list_dir(a->keep, &prev))) { free_paths(&prev); return rc; }
        int K = (int)a->keep_frames;
        if (prev.n < K) {
            rc = iso_fail(ISO_EDATA, "'%s' holds %d frames, --keep-frames is %d", a->keep, prev.n, K);
            free_paths(&prev);
            return rc;
        }
        for (int k = 0; k < K && !rc; k++) rc = load_sized(prev.paths[prev.n - K + k], s->W, s->H, &s->fixed[k]);
        free_paths(&prev);
        if (rc) return rc;
    } else {
        if (a->keep_frames) return iso_fail(ISO_EUSAGE, "--keep-frames goes with --keep");
        if ((rc = load_sized(a->start, s->W, s->H, &s->fixed[0]))) return rc;
    }
    return load_sized(a->end, s->W, s->H, &s->fixed[F - 1]);
}

int vae_vace_run(const struct vae_args *a, const struct cli_common *c)
{
    struct rt *rt = NULL;
    struct weights *w = NULL;
    struct wan_vae *v = NULL;
    struct nn *nn = NULL;
    struct nn_wres *wr = NULL;
    char fallback[300] = "";
    struct vace_src src = { 0 };
    struct mem_plan plan;
    enum mem_mode mode = MEM_MODE_CPU;
    char *model_path = NULL;
    float *ctx = NULL;
    json_t *root = NULL;
    int rc, loading = 0, cleanup = 0;
    double t_enc = 0;

    if ((rc = rt_begin(c, &rt))) goto done;
    if (a->n_inputs) { rc = iso_fail(ISO_EUSAGE, "--vace takes its frames from options, not '%s'", a->inputs[0]); goto done; }
    if (!c->output && !c->plan_only) { rc = iso_fail(ISO_EUSAGE, "-o CTX.safetensors is required"); goto done; }
    if ((rc = vace_inputs(a, &src))) goto done;
    int F = src.F, H = src.H, W = src.W;
    if (W % 8 || H % 8) {
        rc = iso_fail(ISO_EDATA, "frames are %dx%d: width and height must be multiples of 8 (nearest: %dx%d)", W, H,
                      near8(W), near8(H));
        goto done;
    }
    if ((rc = resolve_model(c, &model_path))) goto done;
    if ((rc = weights_open(model_path, &w))) goto done;
    if ((rc = wan_vae_open(&v, w, WAN_VAE_ENCODER))) goto done;
    const struct wan_vae_config *cfg = wan_vae_config(v);
    int z = cfg->z_dim, sp = cfg->spatial, T = 1 + (F - 1) / cfg->temporal, h = H / sp, wl = W / sp;
    int C = 2 * z + sp * sp;
    size_t hw = (size_t)h * wl, nctx = (size_t)C * T * hw;
    uint64_t act = wan_vae_encode_act_bytes(cfg, H, W);
    struct gpu_side g = { 0 };
    if ((rc = wan_vae_plan_blocks(v, WAN_VAE_ENCODER, 1, &g.w, &g.relaid_host))) goto done;
    g.act_bound[0] = g.act_bound[1] = act + nn_attention_products_bytes(cfg->enc_ch[cfg->n_levels - 1], h * wl, h * wl);
    g.act_dev[0] = g.act_dev[1] = nn_act_reserve_bytes(g.act_bound[0]) + nn_cuda_fixed_bytes();
    if ((rc = make_plan(v, WAN_VAE_ENCODER, model_path, act, nctx * 4 + (uint64_t)H * W * 4 * 8, &g, &plan))) goto done;
    if (c->plan_only) {
        json_t *extra = json_pack("{s:{s:i, s:i, s:i, s:i, s:i, s:I, s:o}}", "vace", "frames", F, "latent_frames", T,
                                  "channels", C, "width", W, "height", H, "activations_bound", (json_int_t)act,
                                  "config", config_json(cfg));
        rc = rt_print_plan(rt, &plan, extra);
        goto done;
    }
    if ((rc = check_out_file(c->output))) goto done;
    if ((rc = rt_admit(rt, &plan, &mode))) goto done;
    loading = 1;
    if ((rc = open_backend(rt, c, v, WAN_VAE_ENCODER, &mode, g.act_bound[0], host_cache_of(act), &nn, &wr, fallback, sizeof fallback)))
        goto done;
    ctx = calloc(nctx, sizeof *ctx);
    src.vbuf = malloc(3 * (size_t)H * W * sizeof(float));
    src.mbuf = malloc(3 * (size_t)H * W * sizeof(float));
    if (!ctx || !src.vbuf || !src.mbuf) { rc = iso_fail(ISO_ETEMPFAIL, "out of memory"); goto done; }
    double te = mem_now();
    for (int half = 0; half < 2; half++) { /* inactive, then reactive */
        src.reactive = half;
        if ((rc = wan_vae_encode(v, nn, F, H, W, vace_get, &src, ctx + (size_t)half * z * T * hw))) goto done;
    }
    /* mask channels: frame src = min(floor((t + 0.5) * F / T), F - 1) (PyTorch's nearest-exact) */
    for (int t = 0; t < T; t++) {
        int f = (int)floor((t + 0.5) * (double)F / T);
        if (f > F - 1) f = F - 1;
        if ((rc = vace_frame(&src, f, src.vbuf, src.mbuf))) goto done;
        for (int dy = 0; dy < sp; dy++)
            for (int dx = 0; dx < sp; dx++) {
                float *dst = ctx + ((size_t)(2 * z + dy * sp + dx) * T + t) * hw;
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < wl; x++)
                        dst[(size_t)y * wl + x] = src.mbuf[(size_t)(y * sp + dy) * W + x * sp + dx];
            }
    }
    t_enc = mem_now() - te;
    rt_cleanup_begin(rt);
    cleanup = 1;
    char frames_s[24];
    snprintf(frames_s, sizeof frames_s, "%d", F);
    const char *meta[] = { "tool", "vae", "command", "encode --vace", "model", base_name(model_path), "frames",
                           frames_s, "config_source", cfg->source, "latent_stats", cfg->stats_source, NULL };
    struct st_out o = { "vace_context", ST_F32, 4, { (uint64_t)C, (uint64_t)T, (uint64_t)h, (uint64_t)wl }, ctx };
    if ((rc = sig_check())) goto done;
    if ((rc = st_write(c->output, &o, 1, meta))) goto done;
    root = jsonio_header_new();
    json_object_set_new(root, "command", json_string("encode --vace"));
    json_object_set_new(root, "output", json_string(c->output));
    json_object_set_new(root, "model", json_pack("{s:s, s:o}", "path", model_path, "config", config_json(cfg)));
    json_object_set_new(root, "frames", json_integer(F));
    json_object_set_new(root, "vace_context", json_pack("[i,i,i,i]", C, T, h, wl));
    json_object_set_new(root, "timing", json_pack("{s:f, s:i}", "encode_s", t_enc, "threads", cli_threads(c)));
    json_object_set_new(root, "memory", memory_json(rt, nn, mode, fallback));
    json_dumpf(root, stdout, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    fputc('\n', stdout);
done:
    if (loading && !cleanup) rt_cleanup_begin(rt);
    json_decref(root);
    free(ctx);
    nn_wres_free(&wr);
    nn_free(&nn);
    wan_vae_free(&v);
    weights_close(&w);
    vace_src_free(&src);
    free(model_path);
    return rt_end(&rt, rc);
}
