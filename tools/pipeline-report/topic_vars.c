/* topic_vars.c — the topic file, read once with common/topic.h and handed to
 * Make as variables, plus the stamp files the driver's rules depend on. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "fs.h"
#include "image.h"
#include "model.h"
#include "topic.h"
#include "travel.h"
#include "weights.h"

/* defaults when the topic file leaves a key out (docs/DESIGN.md keys) */
enum { TRAVEL_DEF_FRAMES = 24, TRAVEL_DEF_OVERLAP = 1 };
/* the later stages' limits (prompt-expand --segments, DIS's two 8-pixel
 * patches, stitch --overlap and --fps), checked before any stage runs */
enum { TRAVEL_MAX_SEGMENTS = 64, TRAVEL_MIN_SIDE = 16, TRAVEL_MAX_OVERLAP = 1000, TRAVEL_MAX_FPS = 1000 };
#define TRAVEL_DEF_FPS 12.0

int travel_path_ok(const char *p)
{
    /* Make splits prerequisites on blanks and treats : % $ # ; specially, and
     * the recipes hand paths to sh unquoted: allow a plain set and UTF-8. */
    if (!p || !*p) return 0;
    for (const unsigned char *s = (const unsigned char *)p; *s; s++) {
        unsigned c = *s;
        if (c >= 0x80) continue;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) continue;
        if (strchr("._-/+@", (int)c)) continue;
        return 0;
    }
    return 1;
}

struct strbuf { char *s; size_t len, cap; int oom; };

static void sb_printf(struct strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sb_printf(struct strbuf *b, const char *fmt, ...)
{
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        size_t room = b->cap - b->len;
        int n = vsnprintf(b->s ? b->s + b->len : NULL, b->s ? room : 0, fmt, ap);
        va_end(ap);
        if (n < 0) { b->oom = 1; return; }
        if ((size_t)n < room) { b->len += (size_t)n; return; }
        size_t cap = b->cap ? b->cap * 2 : 1024;
        while (cap - b->len <= (size_t)n) cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) { b->oom = 1; return; }
        b->s = ns;
        b->cap = cap;
    }
}

struct wic_ctx { const char *data; size_t len; };

static int wic_writer(FILE *f, void *ctx)
{
    struct wic_ctx *c = ctx;
    if (c->len && fwrite(c->data, 1, c->len, f) != c->len)
        return iso_fail(ISO_EIO, "cannot write: %s", strerror(errno));
    return 0;
}

int travel_write_if_changed(const char *path, const char *data, size_t len)
{
    char *old = NULL;
    size_t oldlen = 0;
    if (fs_exists(path) && fs_read_all(path, &old, &oldlen, (size_t)16 << 20) == 0) {
        int same = oldlen == len && memcmp(old, data, len) == 0;
        free(old);
        if (same) return 0;
    }
    iso_errclear();
    char *dir = fs_dirname(path);
    if (!dir) return iso_fail(ISO_EINTERNAL, "out of memory");
    int rc = fs_mkdir_p(dir);
    free(dir);
    if (rc) return rc;
    struct wic_ctx c = { data, len };
    rc = fs_write_atomic(path, wic_writer, &c);
    if (rc) return iso_wrap(rc, "cannot write '%s'", path);
    return 0;
}

int travel_stamp(const char *path, int nwords, char **words)
{
    struct strbuf b = { 0 };
    sb_printf(&b, "%s", "");
    for (int i = 0; i < nwords; i++) sb_printf(&b, "%s\n", words[i]);
    int rc = b.oom ? iso_fail(ISO_EINTERNAL, "out of memory") : travel_write_if_changed(path, b.s, b.len);
    free(b.s);
    return rc;
}

int travel_topic_vars(const char *topic_path, const char *vars_path, const struct travel_vars_opts *o)
{
    struct topic t;
    struct strbuf vars = { 0 }, pt = { 0 };
    int rc = topic_load(topic_path, &t), w0 = 0, h0 = 0;
    const char *model = o && o->seg_model ? o->seg_model : "morph";
    if (rc) return rc;

    /* both interpolate between keyframes: the morph along flow-extract's flows, rife on its own */
    if (strcmp(model, "morph") != 0 && strcmp(model, "rife") != 0) {
        rc = iso_fail(ISO_EUSAGE, "segment model '%s': the travel driver knows only 'morph' and 'rife' so far", model);
        goto done;
    }
    /* one segment per consecutive pair of keyframes */
    if (t.nkeyframes < 2) {
        rc = iso_fail(ISO_EDATA, "'%s': the morph model needs at least two keyframes, the topic names %d",
                      topic_path, t.nkeyframes);
        goto done;
    }
    if (t.segments && t.segments != t.nkeyframes - 1) {
        rc = iso_fail(ISO_EDATA, "'%s': segments: %d, but the morph model makes one segment per keyframe pair (%d)",
                      topic_path, t.segments, t.nkeyframes - 1);
        goto done;
    }
    for (int i = 0; i < t.nkeyframes; i++) {
        const char *k = t.keyframes[i];
        int w, h;
        if (!travel_path_ok(k)) {
            rc = iso_fail(ISO_EDATA, "'%s': keyframe path '%s' has a character the Make driver cannot carry "
                          "(use letters, digits and ._-/+@)", topic_path, k);
            goto done;
        }
        if (!fs_exists(k)) {
            rc = iso_fail(ISO_ENOINPUT, "'%s': keyframe '%s' does not exist", topic_path, k);
            goto done;
        }
        if ((rc = image_png_size(k, &w, &h))) {
            rc = iso_wrap(rc, "'%s': keyframe %d", topic_path, i);
            goto done;
        }
        if (i == 0) { w0 = w; h0 = h; }
        else if (w != w0 || h != h0) {
            rc = iso_fail(ISO_EDATA, "'%s': keyframe '%s' is %dx%d but '%s' is %dx%d (the morph needs one size)",
                          topic_path, k, w, h, t.keyframes[0], w0, h0);
            goto done;
        }
    }
    if ((t.width && t.width != w0) || (t.height && t.height != h0)) {
        rc = iso_fail(ISO_EDATA, "'%s': width/height %dx%d, but the keyframes are %dx%d (the morph does not resize)",
                      topic_path, t.width ? t.width : w0, t.height ? t.height : h0, w0, h0);
        goto done;
    }
    int nseg = t.nkeyframes - 1;
    int frames = t.frames ? t.frames : TRAVEL_DEF_FRAMES;
    int overlap = t.overlap >= 0 ? t.overlap : TRAVEL_DEF_OVERLAP;
    double fps = t.fps > 0 ? t.fps : TRAVEL_DEF_FPS;
    if (overlap >= frames) {
        rc = iso_fail(ISO_EDATA, "'%s': overlap %d must be smaller than frames %d", topic_path, overlap, frames);
        goto done;
    }
    /* what a later stage would refuse, refused now: a bad topic costs no LLM run */
    if (nseg > TRAVEL_MAX_SEGMENTS) {
        rc = iso_fail(ISO_EDATA, "'%s': %d keyframes make %d segments; the prompt stage writes at most %d",
                      topic_path, t.nkeyframes, nseg, TRAVEL_MAX_SEGMENTS);
        goto done;
    }
    if (w0 < TRAVEL_MIN_SIDE || h0 < TRAVEL_MIN_SIDE) {
        rc = iso_fail(ISO_EDATA, "'%s': keyframes of %dx%d are too small for flow-extract (at least %dx%d)",
                      topic_path, w0, h0, TRAVEL_MIN_SIDE, TRAVEL_MIN_SIDE);
        goto done;
    }
    if (overlap > TRAVEL_MAX_OVERLAP || fps > TRAVEL_MAX_FPS) {
        rc = iso_fail(ISO_EDATA, "'%s': overlap %d / fps %g beyond what stitch takes (at most %d / %d)", topic_path,
                      overlap, fps, TRAVEL_MAX_OVERLAP, TRAVEL_MAX_FPS);
        goto done;
    }
    if (!travel_path_ok(topic_path)) {
        rc = iso_fail(ISO_EDATA, "topic path '%s' has a character the Make driver cannot carry", topic_path);
        goto done;
    }

    sb_printf(&vars, "# generated from '%s' by pipeline-report topic-vars (checked again on every run)\n", topic_path);
    sb_printf(&vars, "TRAVEL_NKEY := %d\nTRAVEL_NSEG := %d\nTRAVEL_SEGS :=", t.nkeyframes, nseg);
    for (int i = 0; i < nseg; i++) sb_printf(&vars, " %03d", i);
    sb_printf(&vars, "\n");
    /* a keyframe named like an option ("--plan") reaches the tools as a path: "./--plan" */
#define KF_PFX(k) ((k)[0] == '-' ? "./" : "")
    for (int i = 0; i < t.nkeyframes; i++)
        sb_printf(&vars, "TRAVEL_KEY_%03d := %s%s\n", i, KF_PFX(t.keyframes[i]), t.keyframes[i]);
    for (int i = 0; i < nseg; i++)
        sb_printf(&vars, "TRAVEL_A_%03d := %s%s\nTRAVEL_B_%03d := %s%s\nTRAVEL_IDX_%03d := %d\n", i,
                  KF_PFX(t.keyframes[i]), t.keyframes[i], i, KF_PFX(t.keyframes[i + 1]), t.keyframes[i + 1], i, i);
#undef KF_PFX
    sb_printf(&vars, "TRAVEL_FRAMES := %d\nTRAVEL_OVERLAP := %d\nTRAVEL_FPS := %.10g\n", frames, overlap, fps);
    sb_printf(&vars, "TRAVEL_SEED := %llu\nTRAVEL_WIDTH := %d\nTRAVEL_HEIGHT := %d\n",
              (unsigned long long)t.seed, w0, h0);
    sb_printf(&vars, "TRAVEL_TOTAL_FRAMES := %lld\n", (long long)nseg * frames - (long long)(nseg - 1) * overlap);

    /* the prompt stage sees only what it uses, so a keyframe edit leaves scenes.json alone */
    sb_printf(&pt, "# the prompt stage's view of '%s' (generated)\ntopic: %s\nsegments: %d\nseed: %llu\n",
              topic_path, t.text, nseg, (unsigned long long)t.seed);
    if (vars.oom || pt.oom) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if ((rc = travel_write_if_changed(vars_path, vars.s, vars.len))) goto done;
    if (o && o->prompt_topic && (rc = travel_write_if_changed(o->prompt_topic, pt.s, pt.len))) goto done;
done:
    free(vars.s);
    free(pt.s);
    topic_free(&t);
    return rc;
}

/* ---- MODEL=wan (docs/pipeline.md, "Wan") */

/* Wan2.1's defaults (segment-gen's, docs/wan.md: its README's T2V-1.3B example
 * and generate.py): 832x480, 81 frames, 50 steps, guidance 6, shift 8, UniPC,
 * 16 fps (Wan2.1's sample_fps) */
enum { WAN_DEF_W = 832, WAN_DEF_H = 480, WAN_DEF_FRAMES = 81, WAN_DEF_STEPS = 50, WAN_DEF_SEGMENTS = 2,
       WAN_SIDE_MULT = 16, WAN_MAX_SIDE = 4096 };
#define WAN_DEF_GUIDANCE 6.0
#define WAN_DEF_SHIFT 8.0
#define WAN_DEF_FPS 16.0

/* 1 when the weights at path hold Wan2.1 VACE tensors (vace_blocks.*, vace_patch_embedding) */
static int wan_is_vace(const char *path, int *is_vace)
{
    struct weights *w = NULL;
    int rc = weights_open(path, &w);
    if (rc) return rc;
    *is_vace = 0;
    for (size_t i = 0; i < weights_count(w) && !*is_vace; i++) {
        const char *n = weights_at(w, i)->name;
        if (strstr(n, "vace_patch_embedding") || strstr(n, "vace_blocks.")) *is_vace = 1;
    }
    weights_close(&w);
    return 0;
}

struct wan_model { const char *role, *name; char *path; };

/* finds every model; one line naming each missing one */
static int wan_find_models(const struct travel_vars_opts *o, int need_t2v, struct wan_model *m, int *nm,
                           struct strbuf *vars)
{
    static const char *const dit_ext[] = { ".safetensors", NULL };
    static const char *const vae_ext[] = { ".safetensors", ".pth", NULL };
    static const char *const te_ext[] = { ".safetensors", ".pth", ".gguf", NULL };
    struct strbuf missing = { 0 };
    int nmiss = 0, rc = 0;
    *nm = 0;
    for (int i = 0; i < o->nmodels && *nm < 16; i++) {
        char *eq = strchr(o->models[i], '=');
        struct wan_model *x = &m[(*nm)++];
        x->role = o->models[i];
        *eq = 0;
        x->name = eq + 1;
        x->path = NULL;
        if (!*x->name) continue;                         /* not given (UMT5_TOKENIZER: found beside UMT5) */
        if (!strcmp(x->role, "WAN_T2V") && !need_t2v) continue;
        if (!strcmp(x->role, "UMT5_TOKENIZER")) {
            if (fs_exists(x->name) && !fs_is_dir(x->name)) x->path = strdup(x->name);
            else { sb_printf(&missing, "%s%s '%s' (no such file)", nmiss++ ? ", " : "", x->role, x->name); continue; }
        } else {
            const char *const *ext = !strcmp(x->role, "WAN_VAE") ? vae_ext : !strcmp(x->role, "UMT5") ? te_ext : dit_ext;
            if (model_find_dir(x->name, ext, &x->path)) {
                iso_errclear();
                sb_printf(&missing, "%s%s '%s'", nmiss++ ? ", " : "", x->role, x->name);
                continue;
            }
        }
        if (!x->path) return iso_fail(ISO_EINTERNAL, "out of memory");
    }
    if (nmiss) {
        char *sp = model_search_path();
        struct strbuf where = { 0 };
        for (const char *d = sp; d && *d; d += strlen(d) + 1) sb_printf(&where, "%s%s", where.len ? ":" : "", d);
        rc = iso_fail(ISO_EUNAVAIL, "MODEL=wan: %d model%s not found: %s (looked on the model path %s); "
                      "`make models-wan` downloads them (docs/pipeline.md, \"Wan models\")",
                      nmiss, nmiss > 1 ? "s" : "", missing.s ? missing.s : "", where.s ? where.s : "?");
        free(sp);
        free(where.s);
        free(missing.s);
        return rc;
    }
    free(missing.s);
    /* the right kind of checkpoint in each place: one line, nothing run */
    for (int i = 0; i < *nm; i++) {
        struct wan_model *x = &m[i];
        if (!x->path) continue;
        int dit = !strcmp(x->role, "WAN_DIT"), t2v = !strcmp(x->role, "WAN_T2V"), vace = 0;
        if (dit || t2v) {
            if ((rc = wan_is_vace(x->path, &vace))) return iso_wrap(rc, "MODEL=wan: %s '%s'", x->role, x->name);
            if (dit && !vace)
                return iso_fail(ISO_EDATA, "MODEL=wan: WAN_DIT '%s' is not a VACE checkpoint (no vace_blocks): travel between "
                                "keyframes needs Wan2.1 VACE (default wan2.1-vace-1.3b); a text-to-video model belongs in WAN_T2V",
                                x->name);
            if (t2v && vace)
                return iso_fail(ISO_EDATA, "MODEL=wan: WAN_T2V '%s' is a VACE checkpoint: keyframes are generated by a Wan2.1 "
                                "text-to-video model (default wan2.1-t2v-1.3b); the VACE model belongs in WAN_DIT", x->name);
        }
        if (!travel_path_ok(x->path))
            return iso_fail(ISO_EDATA, "MODEL=wan: %s '%s' was found at '%s', a path with a character the Make driver cannot "
                            "carry (use letters, digits and ._-/+@, or ISOPIPE_MODELS)", x->role, x->name, x->path);
        sb_printf(vars, "%s_PATH := %s%s\n", x->role, x->path[0] == '-' ? "./" : "", x->path);
    }
    return 0;
}

static int wan_fix16(int v) { int lo = v / WAN_SIDE_MULT * WAN_SIDE_MULT; return lo < WAN_SIDE_MULT ? WAN_SIDE_MULT : lo; }

int travel_topic_vars_wan(const char *topic_path, const char *vars_path, const struct travel_vars_opts *o)
{
    struct topic t;
    struct strbuf vars = { 0 }, pt = { 0 }, kt = { 0 };
    struct wan_model m[16];
    int nm = 0;
    int rc = topic_load(topic_path, &t), w0 = 0, h0 = 0;
    if (rc) return rc;
    memset(m, 0, sizeof m);
    if (!travel_path_ok(topic_path)) {
        rc = iso_fail(ISO_EDATA, "topic path '%s' has a character the Make driver cannot carry", topic_path);
        goto done;
    }
    int gen = t.nkeyframes == 0;
    if (t.nkeyframes == 1) {
        rc = iso_fail(ISO_EDATA, "'%s': MODEL=wan travels between keyframes: give at least two, or none "
                      "(they are then generated from the topic)", topic_path);
        goto done;
    }
    int nseg = gen ? (t.segments ? t.segments : WAN_DEF_SEGMENTS) : t.nkeyframes - 1;
    int nkey = nseg + 1;
    if (!gen && t.segments && t.segments != nseg) {
        rc = iso_fail(ISO_EDATA, "'%s': segments: %d, but MODEL=wan makes one segment per keyframe pair (%d)",
                      topic_path, t.segments, nseg);
        goto done;
    }
    if (nseg > TRAVEL_MAX_SEGMENTS || (gen && nkey > TRAVEL_MAX_SEGMENTS)) {
        rc = iso_fail(ISO_EDATA, "'%s': %d segments (%d keyframes); the prompt stage writes at most %d prompts",
                      topic_path, nseg, nkey, TRAVEL_MAX_SEGMENTS);
        goto done;
    }
    for (int i = 0; i < t.nkeyframes; i++) {
        const char *k = t.keyframes[i];
        int w, h;
        if (!travel_path_ok(k)) {
            rc = iso_fail(ISO_EDATA, "'%s': keyframe path '%s' has a character the Make driver cannot carry "
                          "(use letters, digits and ._-/+@)", topic_path, k);
            goto done;
        }
        if (!fs_exists(k)) { rc = iso_fail(ISO_ENOINPUT, "'%s': keyframe '%s' does not exist", topic_path, k); goto done; }
        if ((rc = image_png_size(k, &w, &h))) { rc = iso_wrap(rc, "'%s': keyframe %d", topic_path, i); goto done; }
        if (i == 0) { w0 = w; h0 = h; }
        else if (w != w0 || h != h0) {
            rc = iso_fail(ISO_EDATA, "'%s': keyframe '%s' is %dx%d but '%s' is %dx%d (Wan needs one size)",
                          topic_path, k, w, h, t.keyframes[0], w0, h0);
            goto done;
        }
    }
    int W = t.width ? t.width : gen ? WAN_DEF_W : w0, H = t.height ? t.height : gen ? WAN_DEF_H : h0;
    if (!gen && (W != w0 || H != h0)) {
        rc = iso_fail(ISO_EDATA, "'%s': width/height %dx%d, but the keyframes are %dx%d (the pipeline does not resize)",
                      topic_path, W, H, w0, h0);
        goto done;
    }
    if (W % WAN_SIDE_MULT || H % WAN_SIDE_MULT || W > WAN_MAX_SIDE || H > WAN_MAX_SIDE) {
        rc = iso_fail(ISO_EDATA, "'%s': %s %dx%d: Wan takes sizes that are multiples of %d up to %d (nearest below: %dx%d)",
                      topic_path, gen ? "width/height" : "keyframes of", W, H, WAN_SIDE_MULT, WAN_MAX_SIDE,
                      wan_fix16(W > WAN_MAX_SIDE ? WAN_MAX_SIDE : W), wan_fix16(H > WAN_MAX_SIDE ? WAN_MAX_SIDE : H));
        goto done;
    }
    int frames = t.frames ? t.frames : WAN_DEF_FRAMES;
    if (frames < 5 || (frames - 1) % 4) {
        int lo = frames < 5 ? 5 : (frames - 1) / 4 * 4 + 1;
        rc = iso_fail(ISO_EDATA, "'%s': frames: %d, but Wan generates 4k+1 frames per segment (at least 5): use %d or %d",
                      topic_path, frames, lo, frames < 5 ? 9 : lo + 4);
        goto done;
    }
    int overlap = t.overlap >= 0 ? t.overlap : TRAVEL_DEF_OVERLAP;
    double fps = t.fps > 0 ? t.fps : WAN_DEF_FPS;
    if (overlap >= frames || overlap > TRAVEL_MAX_OVERLAP || fps > TRAVEL_MAX_FPS) {
        rc = iso_fail(ISO_EDATA, "'%s': overlap %d must be smaller than frames %d (and fps %g at most %d)", topic_path,
                      overlap, frames, fps, TRAVEL_MAX_FPS);
        goto done;
    }
    int steps = t.steps ? t.steps : WAN_DEF_STEPS;
    double guidance = t.guidance > 0 ? t.guidance : WAN_DEF_GUIDANCE, shift = t.shift > 0 ? t.shift : WAN_DEF_SHIFT;
    const char *sampler = t.sampler ? t.sampler : "unipc";

    sb_printf(&vars, "# generated from '%s' by pipeline-report topic-vars --seg-model wan (checked again on every run)\n",
              topic_path);
    if ((rc = wan_find_models(o, gen, m, &nm, &vars))) goto done;
    sb_printf(&vars, "TRAVEL_NKEY := %d\nTRAVEL_NSEG := %d\nTRAVEL_SEGS :=", nkey, nseg);
    for (int i = 0; i < nseg; i++) sb_printf(&vars, " %03d", i);
    sb_printf(&vars, "\nTRAVEL_KEYS :=");
    for (int i = 0; i < nkey; i++) sb_printf(&vars, " %03d", i);
    sb_printf(&vars, "\nWAN_GEN_KEYS := %s\n", gen ? "1" : "");
    /* given keyframes; generated ones are named by wan.mk (OUT/keyframes/key_NNN/frame_00000.png) */
#define KF_PFX(k) ((k)[0] == '-' ? "./" : "")
    for (int i = 0; i < t.nkeyframes; i++) sb_printf(&vars, "TRAVEL_KEY_%03d := %s%s\n", i, KF_PFX(t.keyframes[i]), t.keyframes[i]);
#undef KF_PFX
    /* per segment: its prompt index, the keyframe it ends at, the segment before it, its seed;
     * per keyframe: its prompt index (after the segments') and seed. Seeds wrap like uint64. */
    for (int i = 0; i < nseg; i++) {
        sb_printf(&vars, "TRAVEL_IDX_%03d := %d\nTRAVEL_NEXT_%03d := %03d\nTRAVEL_SEED_%03d := %llu\n", i, i, i, i + 1,
                  i, (unsigned long long)(t.seed + (uint64_t)i));
        if (i) sb_printf(&vars, "TRAVEL_PREV_%03d := %03d\n", i, i - 1);
    }
    if (gen)
        for (int i = 0; i < nkey; i++)
            sb_printf(&vars, "WAN_KEYIDX_%03d := %d\nWAN_KEYSEED_%03d := %llu\n", i, nseg + i, i,
                      (unsigned long long)(t.seed + (uint64_t)i));
    sb_printf(&vars, "TRAVEL_FRAMES := %d\nTRAVEL_OVERLAP := %d\nTRAVEL_FPS := %.10g\n", frames, overlap, fps);
    sb_printf(&vars, "TRAVEL_SEED := %llu\nTRAVEL_WIDTH := %d\nTRAVEL_HEIGHT := %d\n", (unsigned long long)t.seed, W, H);
    sb_printf(&vars, "TRAVEL_TOTAL_FRAMES := %lld\n", (long long)nseg * frames - (long long)(nseg - 1) * overlap);
    sb_printf(&vars, "WAN_STEPS := %d\nWAN_GUIDANCE := %.10g\nWAN_SHIFT := %.10g\nWAN_SAMPLER := %s\nWAN_NEGATIVE_SET := %s\n",
              steps, guidance, shift, sampler, t.negative ? "1" : "");

    sb_printf(&pt, "# the prompt stage's view of '%s' (generated)\ntopic: %s\nsegments: %d\nseed: %llu\n",
              topic_path, t.text, nseg, (unsigned long long)t.seed);
    /* the keyframes' prompts: one per keyframe, their own LLM run and seed stream */
    sb_printf(&kt, "# the keyframe prompts' view of '%s' (generated): one still image per prompt\n"
              "topic: %s\nsegments: %d\nseed: %llu\n", topic_path, t.text, nkey, (unsigned long long)t.seed);
    if (vars.oom || pt.oom || kt.oom) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if ((rc = travel_write_if_changed(vars_path, vars.s, vars.len))) goto done;
    if (o->prompt_topic && (rc = travel_write_if_changed(o->prompt_topic, pt.s, pt.len))) goto done;
    if (o->key_topic && gen && (rc = travel_write_if_changed(o->key_topic, kt.s, kt.len))) goto done;
    if (o->negative) {
        const char *neg = t.negative ? t.negative : "";
        if ((rc = travel_write_if_changed(o->negative, neg, strlen(neg)))) goto done;
    }
done:
    for (int i = 0; i < nm; i++) free(m[i].path);
    free(vars.s);
    free(pt.s);
    free(kt.s);
    topic_free(&t);
    return rc;
}
