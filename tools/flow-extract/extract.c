#include "extract.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "err.h"
#include "flo.h"
#include "flowvis.h"
#include "gpu.h"
#include "fs.h"
#include "sig.h"
#include "image.h"
#include "jsonio.h"
#include "log.h"
#include "mem.h"
#include "pool.h"
#include "plan.h"
#include "runtime.h"
#include "scale.h"
#include "source.h"
#ifdef ISOPIPE_CUDA
#include "dis_cuda.h"
#endif

void fx_default_opts(struct fx_opts *o)
{
    memset(o, 0, sizeof *o);
    o->preset = DIS_PRESET_MEDIUM;
    o->every = 1;
    o->vis = 1;
    o->global = 1;
}

struct run {
    const struct fx_opts *o;
    struct rt *rt;
    struct mem_plan plan;     /* CPU-only: host buffers, no weights */
    struct fsrc *src;
    struct pool *pool;
    struct dis *dis;
#ifdef ISOPIPE_CUDA
    struct dis_cuda *gdis;    /* the CUDA path, when the decided mode is a GPU one */
#endif
    int on_gpu;               /* flows computed by dis_cuda */
    struct dis_params dp;
    int w, h, cw, ch, scaled;
    float *grey;          /* w*h, the frame just read */
    float *cur[2];        /* cw*ch, the previous and the current selected frame */
    float *u, *v;         /* cw*ch */
    struct flow fl;       /* w x h output */
    char *tmp;            /* temporary output directory */
    char *json_path;      /* final DIR/flow.json */
    json_t *pairs;
    int npairs;
    double max_mag, flow_seconds, flow_cpu_seconds;
};

/* CPU seconds of the whole process (all threads): a load-independent cost measure */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int write_flow(struct run *r, const char *prefix, int k, json_t *pair, const char *key)
{
    char name[64];
    snprintf(name, sizeof name, "%s_%05d.flo", prefix, k);
    char *tp = fs_join(r->tmp, name), *fp = fs_join(r->o->output, name);
    int rc = 0;
    if (!tp || !fp) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if ((rc = flo_write(tp, &r->fl))) goto done;
    jsonio_set_path(pair, key, r->json_path, fp);
    double m = flowvis_max_magnitude(&r->fl);
    if (m > r->max_mag) r->max_mag = m;
done:
    free(tp);
    free(fp);
    return rc;
}

/* one flow between the two selected frames in r->cur, a -> b */
static int compute(struct run *r, const float *a, const float *b)
{
    double t0 = mem_now(), c0 = cpu_now();
    int rc;
#ifdef ISOPIPE_CUDA
    if (r->on_gpu) rc = dis_cuda_compute(r->gdis, a, b, r->u, r->v);
    else
#endif
        rc = dis_compute(r->dis, a, b, r->u, r->v);
    if (rc) return rc;
    if (r->scaled) {
        scale_flow_up(r->u, r->v, r->cw, r->ch, r->fl.uv, r->w, r->h);
    } else {
        size_t n = (size_t)r->w * r->h;
        for (size_t i = 0; i < n; i++) {
            r->fl.uv[2 * i] = r->u[i];
            r->fl.uv[2 * i + 1] = r->v[i];
        }
    }
    r->flow_seconds += mem_now() - t0;
    r->flow_cpu_seconds += cpu_now() - c0;
    return 0;
}

/* the next selected frame into r->cur[1]: 1, 0 at the end, or a status; *index gets its frame number */
static int next_selected(struct run *r, int *index)
{
    for (;;) {
        int rc = sig_check(); /* SIGINT/SIGTERM: stop between frames, the temporary folder goes */
        if (rc) return rc;
        rc = fsrc_next(r->src, r->grey);
        if (rc <= 0) return rc;
        int i = fsrc_frames_read(r->src) - 1;
        if (i % r->o->every) continue;
        *index = i;
        if (r->scaled) return scale_area_down(r->grey, r->w, r->h, r->cur[1], r->cw, r->ch) ? ISO_EINTERNAL : 1;
        memcpy(r->cur[1], r->grey, sizeof(float) * (size_t)r->w * r->h);
        return 1;
    }
}

static int render_vis(struct run *r, double vmax)
{
    json_t *p;
    size_t i;
    int rc = 0;
    json_array_foreach(r->pairs, i, p) {
        const char *keys[2][2] = { { "flow", "vis" }, { "flow_bwd", "vis_bwd" } };
        for (int k = 0; k < 2 && !rc; k++) {
            if ((rc = sig_check())) break;
            const char *rel = jsonio_str(p, keys[k][0], NULL);
            if (!rel) continue;
            char name[80];
            snprintf(name, sizeof name, "%.*s.png", (int)(strlen(rel) - 4), rel);
            char *src = fs_join(r->tmp, rel), *dst = fs_join(r->tmp, name), *fin = fs_join(r->o->output, name);
            struct flow f = { 0 };
            struct image img = { 0 };
            if (!src || !dst || !fin) rc = iso_fail(ISO_EINTERNAL, "out of memory");
            if (!rc) rc = flo_read(src, &f);
            if (!rc) rc = flowvis_render(&f, vmax, &img);
            if (!rc) rc = image_save_png(dst, &img, 1);
            if (!rc) jsonio_set_path(p, keys[k][1], r->json_path, fin);
            flow_free(&f);
            image_free(&img);
            free(src);
            free(dst);
            free(fin);
        }
        if (rc) break;
    }
    return rc;
}

static json_t *params_json(const struct dis_params *p, int coarsest)
{
    return json_pack("{s:s, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:f, s:b, s:b, s:i, s:i, s:b}", "algorithm",
                     "DIS (Kroeger et al. 2016) + variational refinement", "patch", p->patch, "stride", p->stride,
                     "iterations", p->iters, "finest_level", p->finest, "coarsest_level", coarsest,
                     "var_fixed_point_iterations", p->var_outer, "var_sor_iterations", p->var_inner,
                     "var_iterations_below_finest", p->var_below, "alpha", (double)p->alpha, "delta",
                     (double)p->delta, "gamma", (double)p->gamma, "zeta", (double)p->zeta, "sor_omega",
                     (double)p->omega, "var_presmooth_sigma", (double)p->smooth, "mean_normalisation", p->mean_norm, "spatial_propagation", p->propagate,
                     "coarsest_search_radius", p->search, "coarser_flow_candidates_offset", p->cand,
                     "global_motion", p->global);
}

static void run_free(struct run *r)
{
    dis_free(&r->dis);
#ifdef ISOPIPE_CUDA
    dis_cuda_free(&r->gdis);
#endif
    pool_free(&r->pool);
    fsrc_free(&r->src);
    free(r->grey);
    free(r->cur[0]);
    free(r->cur[1]);
    free(r->u);
    free(r->v);
    flow_free(&r->fl);
    json_decref(r->pairs);
    r->pairs = NULL;
    free(r->json_path);
    r->json_path = NULL;
}

int fx_run(const struct fx_opts *o)
{
    struct run R = { .o = o }, *r = &R;
    const struct cli_common *c = o->common;
    json_t *root = NULL;
    double t_start = mem_now();
    int rc = rt_begin(c, &r->rt);
    if (rc) goto done;
    if (c->model && strcmp(c->model, "dis") != 0) {
        rc = iso_fail(ISO_EUNAVAIL, "model '%s' is not available: flow-extract has the built-in 'dis' only", c->model);
        goto done;
    }
    /* -o replaces only an earlier flow-extract output (its flow.json) and
     * never holds an input: checked before any work, again at creation */
    const char *ins[] = { o->input, o->pair_b };
    static const char *const flow_names[] = { "flow_*.flo", "flow_*.png", NULL };
    struct fs_dir_owner own = { "flow.json", "flow-extract", flow_names, ins, 2 };
    if (o->output && (rc = fs_dir_check_owned(o->output, &own))) goto done;
    if ((rc = fsrc_open(&r->src, o->input, o->pair_b, o->threads))) goto done;
    fsrc_size(r->src, &r->w, &r->h);
    r->cw = r->w;
    r->ch = r->h;
    int longest = r->w > r->h ? r->w : r->h;
    if (o->max_size > 0 && longest > o->max_size) {
        double s = (double)o->max_size / longest;
        r->cw = (int)lround(r->w * s);
        r->ch = (int)lround(r->h * s);
        if (r->cw < 16) r->cw = 16;
        if (r->ch < 16) r->ch = 16;
        r->scaled = r->cw != r->w || r->ch != r->h;
    }
    dis_params_preset(&r->dp, o->preset);
    r->dp.global = o->global;
    /* No weights: the plan is the host memory of the buffers, as a CPU-only
     * struct mem_plan so --plan, admission and the report read like every
     * other tool's. Bytes: at the finest computed level (1/4^finest of the
     * pixels) U V and their coarse copies (4 floats), densification
     * accumulators (3), refinement derivatives and U0, V0 (10) and red-black
     * planes (11), both in split planes of half a level each, the spline
     * coefficients of I1 and its gradients (3), the low-passed I0, I1 (2,
     * when p.smooth > 0), gradients (2,
     * x4/3 for the coarser levels); the pyramids above level 0 (2 x 1/3); at
     * the computed size the two selected frames and u, v (4); at input size
     * the decoded frame and the output flow (3). */
    {
        double px = (double)r->cw * r->ch, full = (double)r->w * r->h;
        double pf = r->dp.var_below > 0 ? px : px / (double)(1 << (2 * r->dp.finest));
        double per = 28 + 3 + (r->dp.smooth > 0 ? 2 : 0);
        uint64_t bytes = (uint64_t)(4 * (pf * (per + 8 / 3.0) + px * (2 / 3.0 + 4) + full * 3));
        struct plan_blocks b = { 0 };
        b.activations = bytes;
        b.host_base = UINT64_C(32) << 20; /* code, libav, libpng, jansson, output buffers (VmHWM of a 320x192 pair: 31 MiB) */
        b.cpu_ok = 1;
        char name[64];
        snprintf(name, sizeof name, "dis-%s", dis_preset_name(o->preset));
#ifndef ISOPIPE_CUDA
        /* a pretend device (ISOPIPE_FAKE_GPU) plans and admits the GPU modes
         * in a CPU-only build too; the flow is the CPU's either way */
        b.gpu_ok = gpu_is_fake();
#endif
        if ((rc = plan_from_blocks(&r->plan, name, &b))) goto done;
#ifdef ISOPIPE_CUDA
        /* the CUDA path (dis_cuda.cu): its device memory is one arena of
         * exactly dis_cuda_bytes, so the GPU modes' activations are that; the
         * cpu mode keeps the host estimate above. Beefy and lightweight are
         * the same here: there are no weights to stream. */
        struct mem_plan cpu_plan = r->plan;
        uint64_t arena = 0;
        if ((rc = dis_cuda_bytes(r->cw, r->ch, &r->dp, &arena))) goto done;
        b.activations = arena;
        b.gpu_ok = 1;
        if ((rc = plan_from_blocks(&r->plan, name, &b))) goto done;
        r->plan.mode[MEM_MODE_CPU] = cpu_plan.mode[MEM_MODE_CPU];
#endif
    }
    if (c->plan_only) {
        rc = rt_print_plan(r->rt, &r->plan,
                           json_pack("{s:i, s:i, s:i, s:i}", "width", r->w, "height", r->h, "computed_width", r->cw,
                                     "computed_height", r->ch));
        goto done;
    }
    {
        enum mem_mode mode;
        if ((rc = rt_admit(r->rt, &r->plan, &mode))) goto done;
        /* beefy and lightweight both run the CUDA path (no weights, so
         * nothing to stream); a pretend device (ISOPIPE_FAKE_GPU) runs no
         * kernels: it exercises planning and admission, the flow is the CPU's */
        r->on_gpu = mode != MEM_MODE_CPU && !gpu_is_fake();
    }
    /* "load": the model is an algorithm, so loading is setting up its threads and buffers */
    rt_load_begin(r->rt);
    size_t n = (size_t)r->cw * r->ch, nf = (size_t)r->w * r->h;
    if ((rc = pool_new(&r->pool, o->threads))) goto done;
    if (!r->on_gpu && (rc = dis_new(&r->dis, r->cw, r->ch, &r->dp, r->pool))) {
        /* buffers sized by the input: not enough RAM for them now is 75 (issue 11) */
        if (rc == ISO_EINTERNAL && strstr(iso_errmsg(), "out of memory"))
            rc = iso_fail(ISO_ETEMPFAIL, "not enough memory for %dx%d optical flow (the plan says %.1f MiB of RAM)",
                          r->cw, r->ch, r->plan.mode[MEM_MODE_CPU].host_rss / 1048576.0);
        goto done;
    }
#ifdef ISOPIPE_CUDA
    /* the stripes of the CPU path with --threads, so both compute the same flow */
    if (r->on_gpu && (rc = dis_cuda_new(&r->gdis, r->cw, r->ch, &r->dp, o->threads))) goto done;
#endif
    r->grey = malloc(sizeof(float) * nf);
    r->cur[0] = malloc(sizeof(float) * n);
    r->cur[1] = malloc(sizeof(float) * n);
    r->u = malloc(sizeof(float) * n);
    r->v = malloc(sizeof(float) * n);
    r->pairs = json_array();
    if (!r->grey || !r->cur[0] || !r->cur[1] || !r->u || !r->v || !r->pairs) {
        rc = iso_fail(ISO_ETEMPFAIL, "not enough memory for the %dx%d frame buffers (%.1f MiB)", r->w, r->h,
                      (double)(nf + 4 * n) * sizeof(float) / 1048576.0);
        goto done;
    }
    if ((rc = flow_alloc(&r->fl, r->w, r->h))) goto done;
    rt_load_end(r->rt);
    if (r->scaled)
        log_info("computing at %dx%d (--max-size %d); flows are scaled back to %dx%d pixels", r->cw, r->ch,
                 o->max_size, r->w, r->h);

    if ((rc = fs_dir_begin_owned(o->output, &own, &r->tmp))) goto done;
    r->json_path = fs_join(o->output, "flow.json");
    if (!r->json_path) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    int prev_index = -1, index = -1;
    if ((rc = next_selected(r, &prev_index)) < 0) goto done;
    if (rc == 0) { rc = iso_fail(ISO_EDATA, "'%s' has no frames", o->input); goto done; }
    for (;;) {
        float *t = r->cur[0];
        r->cur[0] = r->cur[1];
        r->cur[1] = t;
        rc = next_selected(r, &index);
        if (rc < 0) goto done;
        if (rc == 0) break;
        double t0 = mem_now(), f0 = r->flow_seconds;
        json_t *pair = json_pack("{s:i, s:i, s:i}", "index", r->npairs, "from_frame", prev_index, "to_frame", index);
        if (!pair) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        json_array_append_new(r->pairs, pair);
        if ((rc = compute(r, r->cur[0], r->cur[1])) || (rc = write_flow(r, "flow", r->npairs, pair, "flow"))) goto done;
        if (o->backward &&
            ((rc = compute(r, r->cur[1], r->cur[0])) || (rc = write_flow(r, "flow_bwd", r->npairs, pair, "flow_bwd"))))
            goto done;
        json_object_set_new(pair, "flow_seconds", json_real(r->flow_seconds - f0));
        json_object_set_new(pair, "seconds", json_real(mem_now() - t0));
        log_progress("pairs", r->npairs + 1, r->npairs + 1);
        log_verbose("pair %d: frames %d -> %d in %.3f s", r->npairs, prev_index, index, r->flow_seconds - f0);
        r->npairs++;
        prev_index = index;
    }
    rc = 0;
    if (r->npairs == 0) {
        rc = iso_fail(ISO_EDATA, "'%s' gives one frame%s: flow needs at least two", o->input,
                      o->every > 1 ? " with --every" : "");
        goto done;
    }
    double vmax = o->vis_max > 0 ? o->vis_max : r->max_mag;
    if (o->vis && (rc = render_vis(r, vmax))) goto done;

    root = jsonio_header_new();
    json_t *in = json_pack("{s:s, s:i}", "kind", fsrc_kind_name(r->src), "frames_read", fsrc_frames_read(r->src));
    if (fsrc_kind(r->src) == FSRC_PAIR || fsrc_kind(r->src) == FSRC_VIDEO) {
        json_t *paths = json_array();
        jsonio_set_path(in, "path", r->json_path, o->input);
        if (o->pair_b) {
            json_array_append(paths, json_object_get(in, "path"));
            json_t *tmpo = json_object();
            jsonio_set_path(tmpo, "p", r->json_path, o->pair_b);
            json_array_append(paths, json_object_get(tmpo, "p"));
            json_decref(tmpo);
            json_object_set_new(in, "paths", paths);
        } else {
            json_decref(paths);
        }
    } else {
        jsonio_set_path(in, "path", r->json_path, o->input);
    }
    json_object_set_new(root, "inputs", in);
    json_object_set_new(root, "width", json_integer(r->w));
    json_object_set_new(root, "height", json_integer(r->h));
    json_object_set_new(root, "computed_width", json_integer(r->cw));
    json_object_set_new(root, "computed_height", json_integer(r->ch));
    json_object_set_new(root, "scaled", json_boolean(r->scaled));
    json_object_set_new(root, "units", json_string(r->scaled ? "pixels of the input frames (computed at the smaller size, "
                                                                 "upsampled bilinearly and multiplied by the size ratio)"
                                                               : "pixels of the input frames"));
    json_object_set_new(root, "preset", json_string(dis_preset_name(o->preset)));
    int coarsest = r->dis ? dis_coarsest(r->dis) : -1;
#ifdef ISOPIPE_CUDA
    if (r->gdis) coarsest = dis_cuda_coarsest(r->gdis);
#endif
    json_object_set_new(root, "parameters", params_json(&r->dp, coarsest));
    json_object_set_new(root, "threads", json_integer(o->threads));
    json_object_set_new(root, "compute", json_string(r->on_gpu ? "cuda" : "cpu"));
    json_object_set_new(root, "every", json_integer(o->every));
    json_object_set_new(root, "max_size", json_integer(o->max_size));
    json_object_set_new(root, "backward", json_boolean(o->backward));
    json_object_set_new(root, "vis", json_pack("{s:b, s:s, s:f, s:s, s:f}", "enabled", o->vis, "coding",
                                               "middlebury colour wheel (Baker et al. 2011)", "max", vmax, "max_source",
                                               o->vis_max > 0 ? "--vis-max" : "largest magnitude of the run",
                                               "run_max_magnitude", r->max_mag));
    json_object_set_new(root, "pairs", r->pairs);
    r->pairs = NULL;
    json_object_set_new(root, "timing", json_pack("{s:f, s:f, s:f, s:f}", "total_seconds", mem_now() - t_start,
                                                  "flow_seconds", r->flow_seconds, "flow_cpu_seconds",
                                                  r->flow_cpu_seconds, "pairs_per_second",
                                                  r->flow_seconds > 0 ? r->npairs / r->flow_seconds : 0.0));
    json_t *mem = rt_memory_json(r->rt);
    json_object_set_new(root, "memory", mem);
    {
        char *jp = fs_join(r->tmp, "flow.json");
        rc = jp ? jsonio_write_atomic(jp, root) : iso_fail(ISO_EINTERNAL, "out of memory");
        free(jp);
        if (rc) goto done;
    }
    rt_cleanup_begin(r->rt);
    if ((rc = sig_check())) goto done; /* never publish after a signal */
    if ((rc = fs_dir_publish(r->tmp, o->output))) goto done;
    free(r->tmp);
    r->tmp = NULL;
    log_info("%d flow%s %dx%d -> '%s' (%.2f pairs/s)", r->npairs, r->npairs == 1 ? "" : "s", r->w, r->h, o->output,
             r->flow_seconds > 0 ? r->npairs / r->flow_seconds : 0.0);
done:
    if (r->tmp) fs_dir_abort(&r->tmp);
    json_decref(root);
    run_free(r);
    return rt_end(&r->rt, rc);
}
