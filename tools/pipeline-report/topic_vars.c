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
#include "topic.h"
#include "travel.h"

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
