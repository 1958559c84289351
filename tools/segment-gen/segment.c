/* segment.c — one segment-gen run (segment.h). Order of work: resolve the
 * model, check the command line, plan (--plan stops here: it needs the
 * keyframe headers only), read the prompt; then load the
 * inputs and open the model between the "before load" and "after load"
 * checkpoints; render into a temporary sibling of DIR; write segment.json
 * there; publish the directory in one rename. Any failure removes the
 * temporary directory, so DIR is either the whole new segment or untouched. */
#include "segment.h"

#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "flo.h"
#include "fs.h"
#include "image.h"
#include "jsonio.h"
#include "log.h"
#include "mem.h"
#include "model.h"
#include "runtime.h"
#include "segmodel.h"
#include "sig.h"

/* SIGINT/SIGTERM: the sink stops at the next frame, the temporary directory
 * is removed and the tool exits 130, leaving nothing behind */
void segment_args_default(struct segment_args *a)
{
    memset(a, 0, sizeof *a);
    a->index = -1;
    a->frames = 25;
    a->fps = 24;
    a->png_level = 1;
    a->guidance = -1;
    a->shift = -1;
    a->vace_scale = -1;
}

/* scenes.json (prompt-expand): {"segments": [{"index": I, "prompt": "..."}]} */
static int scene_prompt(const char *path, long index, char **prompt)
{
    json_t *root = NULL;
    int rc = jsonio_load(path, &root);
    if (rc) return rc;
    json_t *segs = json_object_get(root, "segments");
    if (!json_is_array(segs)) {
        rc = iso_fail(ISO_EDATA, "'%s' has no \"segments\" array", path);
        goto done;
    }
    size_t i;
    json_t *s;
    json_array_foreach(segs, i, s) {
        json_t *ji = json_object_get(s, "index");
        if (!json_is_integer(ji) || json_integer_value(ji) != index) continue;
        const char *p = jsonio_str(s, "prompt", NULL);
        if (!p) {
            rc = iso_fail(ISO_EDATA, "'%s': segment %ld has no \"prompt\" string", path, index);
            goto done;
        }
        *prompt = strdup(p);
        if (!*prompt) rc = iso_fail(ISO_EINTERNAL, "out of memory");
        goto done;
    }
    rc = iso_fail(ISO_EDATA, "'%s' has no segment with index %ld (it has %zu)", path, index, json_array_size(segs));
done:
    json_decref(root);
    return rc;
}

struct sink {
    const char *dir;
    int level, total;
    pthread_mutex_t lock;
    int done;
};

static int sink_frame(void *ctx, int index, const struct image *frame)
{
    struct sink *s = ctx;
    if (sig_interrupted()) return sig_check();
    char name[32];
    snprintf(name, sizeof name, "frame_%05d.png", index);
    char *path = fs_join(s->dir, name);
    if (!path) return iso_fail(ISO_EINTERNAL, "out of memory");
    int rc = image_save_png(path, frame, s->level);
    free(path);
    if (rc) return rc;
    pthread_mutex_lock(&s->lock);
    s->done++;
    log_progress("frames", s->done, s->total);
    pthread_mutex_unlock(&s->lock);
    return 0;
}

static int load_inputs(const struct segment_args *a, unsigned needs, struct image *ka, struct image *kb,
                       struct flow *f, struct flow *g)
{
    int rc;
    if ((rc = image_load_png(a->start, ka, 0)) || (rc = image_load_png(a->end, kb, 0))) return rc;
    if (ka->w != kb->w || ka->h != kb->h)
        return iso_fail(ISO_EDATA, "keyframes differ in size: '%s' is %dx%d, '%s' is %dx%d", a->start, ka->w, ka->h,
                        a->end, kb->w, kb->h);
    if (ka->c != kb->c) {
        /* one layout for both (gray + RGB -> RGB, anything + alpha -> RGBA; image_load_png never
         * gives 2 channels), so the keyframes are written back byte for byte in the layout they share */
        int c = ka->c > kb->c ? ka->c : kb->c;
        image_free(ka);
        image_free(kb);
        if ((rc = image_load_png(a->start, ka, c)) || (rc = image_load_png(a->end, kb, c))) return rc;
    }
    if (!(needs & SEGMODEL_NEEDS_FLOW)) return 0;
    if ((rc = flo_read(a->flow, f)) || (rc = flo_read(a->flow_back, g))) return rc;
    if (f->w != ka->w || f->h != ka->h)
        return iso_fail(ISO_EDATA, "flow '%s' is %dx%d, the keyframes are %dx%d", a->flow, f->w, f->h, ka->w, ka->h);
    if (g->w != ka->w || g->h != ka->h)
        return iso_fail(ISO_EDATA, "flow '%s' is %dx%d, the keyframes are %dx%d", a->flow_back, g->w, g->h, ka->w,
                        ka->h);
    return 0;
}

int segment_run(const struct segment_args *a, const struct cli_common *c)
{
    const char *name = c->model ? c->model : SEGMODEL_DEFAULT;
    const struct segmodel_ops *ops = NULL;
    struct image ka = { 0 }, kb = { 0 };
    struct flow f = { 0 }, g = { 0 };
    struct mem_plan plan;
    struct segmodel_params p = { 0 };
    struct sink sk = { 0 };
    char *prompt = NULL, *model_path = NULL, *tmp = NULL, *json_final = NULL, *json_tmp = NULL, *out = NULL;
    void *ctx = NULL;
    json_t *root = NULL, *model_mem = NULL;
    struct rt *rt = NULL;
    enum mem_mode mode = MEM_MODE_CPU;
    int rc = 0, loading = 0, cleanup_logged = 0;
    double t0 = mem_now(), t_load = 0, t_gen = 0;
    pthread_mutex_init(&sk.lock, NULL);

    if ((rc = rt_begin(c, &rt))) goto done;   /* the "start" checkpoint */
    if (!(ops = segmodel_find(name))) {
        rc = iso_fail(ISO_EUNAVAIL, "unknown model '%s' (known models: %s)", name, segmodel_names());
        goto done;
    }
    if (a->vace_context || a->vace_scale >= 0) {
        rc = iso_fail(ISO_EUSAGE, "model '%s' is a keyframe model: --vace-context and --vace-scale are for a Wan2.1 "
                      "VACE checkpoint (-m wan2.1-vace-1.3b)", ops->name);
        goto done;
    }
    if (!a->start || !a->end) { rc = iso_fail(ISO_EUSAGE, "--start and --end are required"); goto done; }
    if ((ops->needs & SEGMODEL_NEEDS_FLOW) && (!a->flow || !a->flow_back)) {
        rc = iso_fail(ISO_EUSAGE, "model '%s' needs --flow and --flow-back (from flow-extract --backward)", ops->name);
        goto done;
    }
    if (!!a->scenes != (a->index >= 0)) { rc = iso_fail(ISO_EUSAGE, "--scenes and --index go together"); goto done; }
    if ((ops->needs & SEGMODEL_NEEDS_PROMPT) && !a->scenes) {
        rc = iso_fail(ISO_EUSAGE, "model '%s' needs a prompt: --scenes FILE --index I", ops->name);
        goto done;
    }
    if (!(ops->needs & SEGMODEL_NEEDS_FLOW) && (a->flow || a->flow_back)) {
        rc = iso_fail(ISO_EUSAGE, "model '%s' estimates its own motion: --flow and --flow-back mean nothing to it",
                      ops->name);
        goto done;
    }
    if (a->scale > 0 && !(ops->needs & SEGMODEL_TAKES_SCALE)) {
        rc = iso_fail(ISO_EUSAGE, "--scale means nothing to model '%s'", ops->name);
        goto done;
    }
    if (!c->output && !c->plan_only) { rc = iso_fail(ISO_EUSAGE, "-o DIR is required"); goto done; }
    /* "seg_000/" names the directory seg_000: common/fs handles the trailing slash */
    if (c->output && !(out = strdup(c->output))) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if (a->frames < 2) { rc = iso_fail(ISO_EDATA, "--frames %ld: a segment needs at least 2 frames", a->frames); goto done; }
    if (ops->needs & SEGMODEL_NEEDS_WEIGHTS && (rc = model_find(name, ops->exts, &model_path))) goto done;
    /* -o replaces only an earlier segment (its segment.json says segment-gen)
     * and never holds an input; checked before any work, again at creation */
    const char *ins[] = { a->start, a->end, a->flow, a->flow_back, a->scenes, model_path };
    static const char *const seg_names[] = { "frame_*.png", NULL };
    struct fs_dir_owner own = { "segment.json", "segment-gen", seg_names, ins, (int)(sizeof ins / sizeof *ins) };
    if (out && (rc = fs_dir_check_owned(out, &own))) goto done;

    /* plan from the keyframe header alone (nothing is decoded before admission) */
    p.model_path = model_path;
    p.memory_mode = c->memory_mode;
    p.device = c->device;
    p.vram_reserve_mib = c->vram_reserve_mib;
    p.threads = cli_threads(c);
    p.frames = (int)a->frames;
    p.scale = a->scale;
    p.channels = 4;  /* the plan assumes the widest layout */
    if ((rc = image_png_size(a->start, &p.width, &p.height))) goto done;
    if ((rc = ops->plan(&p, &plan))) goto done;
    if (c->plan_only) {
        rc = rt_print_plan(rt, &plan, NULL);
        goto done;
    }
    /* after the plan: --plan needs the keyframe headers only, so a driver can
     * plan a segment before the prompt stage has written --scenes (Slurm) */
    if (a->scenes && (rc = scene_prompt(a->scenes, a->index, &prompt))) goto done;
    if ((rc = rt_admit(rt, &plan, &mode))) goto done;
    p.memory_mode = mode;
    p.rt = rt;

    rt_load_begin(rt);  /* "before load" */
    loading = 1;
    if ((rc = load_inputs(a, ops->needs, &ka, &kb, &f, &g))) goto done;
    p.channels = ka.c;
    if ((rc = ops->open(&p, &ctx))) goto done;
    rt_load_end(rt);    /* "after load" */
    t_load = rt_load_seconds(rt);

    if ((rc = fs_dir_begin_owned(out, &own, &tmp))) goto done;
    sk.dir = tmp;
    sk.level = a->png_level;
    sk.total = (int)a->frames;
    struct segmodel_request req = {
        .start = &ka, .end = &kb, .flow_fwd = f.uv ? &f : NULL, .flow_bwd = g.uv ? &g : NULL,
        .prompt = prompt, .seed = c->seed, .frames = (int)a->frames, .fps = a->fps,
    };
    double tg = mem_now();
    if ((rc = ops->generate(ctx, &req, sink_frame, &sk))) goto done;
    t_gen = mem_now() - tg;
    if (ops->report && (model_mem = json_object())) ops->report(ctx, model_mem);

    rt_cleanup_begin(rt);
    cleanup_logged = 1;
    ops->close(&ctx);

    /* segment.json: paths relative to where it will live, DIR/segment.json */
    json_final = fs_join(out, "segment.json");
    json_tmp = fs_join(tmp, "segment.json");
    root = jsonio_header_new();
    if (!json_final || !json_tmp || !root) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    json_object_set_new(root, "model", json_pack("{s:s, s:s}", "name", ops->name, "summary", ops->summary));
    if (model_path) jsonio_set_path(json_object_get(root, "model"), "path", json_final, model_path);
    json_t *kf = json_object();
    jsonio_set_path(kf, "start", json_final, a->start);
    jsonio_set_path(kf, "end", json_final, a->end);
    json_object_set_new(root, "keyframes", kf);
    if (f.uv) {
        json_t *fl = json_object();
        jsonio_set_path(fl, "forward", json_final, a->flow);
        jsonio_set_path(fl, "backward", json_final, a->flow_back);
        json_object_set_new(root, "flows", fl);
    }
    json_object_set_new(root, "width", json_integer(ka.w));
    json_object_set_new(root, "height", json_integer(ka.h));
    json_object_set_new(root, "channels", json_integer(ka.c));
    json_object_set_new(root, "frames", json_integer(a->frames));
    json_t *files = json_array();
    for (long i = 0; i < a->frames; i++) {
        char nm[32];
        snprintf(nm, sizeof nm, "frame_%05ld.png", i);
        json_array_append_new(files, json_string(nm));
    }
    json_object_set_new(root, "files", files);
    json_object_set_new(root, "fps", json_real(a->fps));
    json_object_set_new(root, "seed", json_integer((json_int_t)c->seed));
    if (prompt) {
        json_t *sc = json_object();
        jsonio_set_path(sc, "file", json_final, a->scenes);
        json_object_set_new(sc, "index", json_integer(a->index));
        json_object_set_new(root, "scenes", sc);
        json_object_set_new(root, "prompt", json_string(prompt));
    }
    json_object_set_new(root, "timing",
                        json_pack("{s:f, s:f, s:f, s:i}", "load_s", t_load, "generate_s", t_gen, "frames_per_s",
                                  t_gen > 0 ? (double)a->frames / t_gen : 0.0, "threads", p.threads));
    json_t *mem = rt_memory_json(rt);
    if (mem && model_mem) json_object_update(mem, model_mem);
    json_object_set_new(root, "memory", mem);
    if ((rc = jsonio_write_atomic(json_tmp, root))) goto done;
    if ((rc = sig_check())) goto done;
    if ((rc = fs_dir_publish(tmp, out))) goto done;
    free(tmp);
    tmp = NULL;
    log_verbose("wrote %ld frames to '%s' in %.2fs", a->frames, out, mem_now() - t0);
done:
    if (loading && !cleanup_logged) rt_cleanup_begin(rt);
    if (ctx) ops->close(&ctx);
    fs_dir_abort(&tmp);
    json_decref(root);
    json_decref(model_mem);
    image_free(&ka);
    image_free(&kb);
    flow_free(&f);
    flow_free(&g);
    free(prompt);
    free(model_path);
    free(json_final);
    free(json_tmp);
    free(out);
    pthread_mutex_destroy(&sk.lock);
    return rt_end(&rt, rc);     /* "end", on the error path too */
}
