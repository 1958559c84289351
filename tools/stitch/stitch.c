/* stitch.c — see stitch.h.
 *
 * The crossfade is the fold of ffmpeg's xfade chain: the output stream S
 * starts as segment 0, and each next segment B is joined by blending the
 * last K frames of S with the first K of B, S'[end-K+j] = mix(S[end-K+j],
 * B[j], j/K) for j = 0..K-1, followed by B[K..]. So the output has
 * sum(len) - (n-1)*K frames, and a segment of exactly K frames between two
 * others is blended twice, as a chain of xfade filters would do.
 *
 * Streaming: all segment lengths are known up front, so the output
 * position of every frame, and the blends that will still touch it, are
 * known too. Only the last K frames of S at a segment's end can still
 * change; they wait (at most K), every other frame is encoded as soon as
 * it is final. Decoder threads read ahead into a pool of K+1 frames
 * (2 when K = 0) shared with those waiting, so at most K+1 decoded frames
 * are alive, whatever the segment lengths, and in the middle of a segment
 * the decoders run up to K+1 frames ahead of the encoder. */
#include "stitch.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "err.h"
#include "fs.h"
#include "image.h"
#include "jsonio.h"
#include "log.h"
#include "mem.h"
#include "plan.h"
#include "sig.h"
#include "video.h"

/* numbering is checked with a bitmap sized by the largest index found */
#define MAX_FRAMES_PER_SEGMENT 10000000

void stitch_default_opts(struct stitch_opts *o)
{
    memset(o, 0, sizeof *o);
    o->overlap = -1; /* auto: see stitch_run */
    o->crf = 18;
    o->preset = "medium";
    o->decoders = 2;
}

struct seg {
    const char *dir;
    int nframes;
    double fps;        /* from segment.json, 0 when absent */
    char *prompt;      /* from segment.json, NULL when absent */
    int64_t out_start; /* first output frame that shows this segment */
};

static char *frame_path(const char *dir, int i)
{
    char name[32];
    snprintf(name, sizeof name, "frame_%05d.png", i);
    return fs_join(dir, name);
}

/* frame_<digits>.png -> index, or -1 for any other name */
static long frame_index(const char *name)
{
    if (strncmp(name, "frame_", 6) != 0) return -1;
    const char *p = name + 6, *q = p;
    long v = 0;
    while (*q >= '0' && *q <= '9') {
        if (v > MAX_FRAMES_PER_SEGMENT) return -2;
        v = v * 10 + (*q - '0');
        q++;
    }
    if (q == p || strcmp(q, ".png") != 0) return -1;
    return v;
}

/* Counts frame_NNNNN.png in s->dir and checks they run 0..n-1 with the
 * canonical 5-digit (or wider) names; reads segment.json when present. */
static int scan_segment(struct seg *s)
{
    int rc = 0;
    unsigned char *seen = NULL;
    size_t seen_n = 0;
    long count = 0, maxi = -1;
    json_t *j = NULL;
    char *jpath = NULL;
    DIR *d = opendir(s->dir);
    if (!d) {
        rc = iso_fail(errno == ENOENT || errno == ENOTDIR ? ISO_ENOINPUT : ISO_EIO,
                      "cannot read segment directory '%s': %s", s->dir, strerror(errno));
        goto done;
    }
    struct dirent *e;
    while ((e = readdir(d))) {
        long i = frame_index(e->d_name);
        if (i == -1) continue;
        char canon[32];
        snprintf(canon, sizeof canon, "frame_%05ld.png", i);
        if (i < 0 || i >= MAX_FRAMES_PER_SEGMENT || strcmp(canon, e->d_name) != 0) {
            rc = iso_fail(ISO_EDATA, "bad frame name '%s/%s': frames are named frame_00000.png, frame_00001.png, ...",
                          s->dir, e->d_name);
            goto done;
        }
        if ((size_t)i >= seen_n) {
            size_t nn = seen_n ? seen_n : 256;
            while (nn <= (size_t)i) nn *= 2;
            unsigned char *ns = realloc(seen, nn);
            if (!ns) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
            memset(ns + seen_n, 0, nn - seen_n);
            seen = ns;
            seen_n = nn;
        }
        seen[i] = 1;
        count++;
        if (i > maxi) maxi = i;
    }
    if (count == 0) {
        rc = iso_fail(ISO_EDATA, "segment '%s' is empty: no frame_00000.png", s->dir);
        goto done;
    }
    if (count != maxi + 1) {
        long miss = 0;
        while (seen[miss]) miss++;
        char *p = frame_path(s->dir, (int)miss);
        rc = iso_fail(ISO_EDATA, "gap in frame numbering: '%s' is missing (segment has frames up to %05ld)",
                      p ? p : s->dir, maxi);
        free(p);
        goto done;
    }
    s->nframes = (int)count;

    jpath = fs_join(s->dir, "segment.json");
    if (!jpath) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if (fs_exists(jpath)) {
        if ((rc = jsonio_load(jpath, &j))) goto done;
        json_t *fps = json_object_get(j, "fps");
        if (fps) {
            double f = json_is_number(fps) ? json_number_value(fps) : -1;
            if (!(f > 0 && f <= 1000)) {
                rc = iso_fail(ISO_EDATA, "bad fps in '%s': must be a number in (0, 1000]", jpath);
                goto done;
            }
            s->fps = f;
        }
        const char *prompt = jsonio_str(j, "prompt", NULL);
        if (prompt) s->prompt = strdup(prompt);
    }
done:
    if (d) closedir(d);
    free(seen);
    free(jpath);
    json_decref(j);
    return rc;
}

/* Every frame's size from its PNG header, so a mismatch is found before
 * anything is encoded (a truncated body is still caught while decoding). */
static int check_sizes(struct seg *segs, int nseg, int *w, int *h)
{
    char *first = NULL;
    int rc = 0;
    for (int s = 0; s < nseg && !rc; s++)
        for (int i = 0; i < segs[s].nframes; i++) {
            char *p = frame_path(segs[s].dir, i);
            int fw = 0, fh = 0;
            if (!p) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); break; }
            rc = image_png_size(p, &fw, &fh);
            if (!rc && !first) {
                *w = fw;
                *h = fh;
                first = p;
                p = NULL;
            } else if (!rc && (fw != *w || fh != *h)) {
                rc = iso_fail(ISO_EDATA, "'%s' is %dx%d but '%s' is %dx%d: all frames must have one size", p, fw,
                              fh, first, *w, *h);
            }
            free(p);
            if (rc) break;
        }
    free(first);
    return rc;
}

/* ---- the readers: worker threads decode frames (in any order), the
 * consumer takes them in output order. A worker reserves a place in the
 * pool before it decodes, so at most `pool` frames are alive: queued,
 * being decoded, or held by the consumer. Frame seq lives in slot
 * seq % pool while queued: the frames claimed and not yet taken are
 * fewer than pool, so no two share a slot. */

#define STITCH_MAX_DECODERS 8

struct reader {
    const struct seg *segs;
    int nseg, w, h;
    pthread_t threads[STITCH_MAX_DECODERS];
    int nthreads, running;
    int started;
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int pool;             /* most frames alive at once */
    int alive;
    struct image *slots;  /* pool slots, frame seq in slot seq % pool */
    unsigned char *ready;
    int64_t total, next_claim, next_take;
    int stop;
    int err;              /* status of the first bad frame in order, at err_seq */
    int64_t err_seq;
    char errmsg[1024];
    double decode_s;
    int max_alive;
};

static void *reader_main(void *arg)
{
    struct reader *r = arg;
    pthread_mutex_lock(&r->lock);
    for (;;) {
        while (!r->stop && r->next_claim < r->total && r->alive >= r->pool &&
               !(r->err && r->next_claim >= r->err_seq))
            pthread_cond_wait(&r->cond, &r->lock);
        if (r->stop || r->next_claim >= r->total || (r->err && r->next_claim >= r->err_seq)) break;
        int64_t seq = r->next_claim++;
        r->alive++;
        if (r->alive > r->max_alive) r->max_alive = r->alive;
        pthread_mutex_unlock(&r->lock);

        int s = 0;
        int64_t i = seq;
        while (i >= r->segs[s].nframes) i -= r->segs[s++].nframes;
        double t0 = mem_now();
        struct image img = { 0 };
        char *p = frame_path(r->segs[s].dir, (int)i);
        int rc = p ? image_load_png(p, &img, 3) : iso_fail(ISO_EINTERNAL, "out of memory");
        if (!rc && (img.w != r->w || img.h != r->h))
            rc = iso_fail(ISO_EDATA, "'%s' is %dx%d, expected %dx%d", p, img.w, img.h, r->w, r->h);
        free(p);
        double dt = mem_now() - t0;

        pthread_mutex_lock(&r->lock);
        r->decode_s += dt;
        if (rc) {
            image_free(&img);
            r->alive--;
            if (!r->err || seq < r->err_seq) {
                r->err = rc;
                r->err_seq = seq;
                snprintf(r->errmsg, sizeof r->errmsg, "%s", iso_errmsg());
            }
        } else {
            r->slots[seq % r->pool] = img;
            r->ready[seq % r->pool] = 1;
        }
        pthread_cond_broadcast(&r->cond);
    }
    r->running--;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    return NULL;
}

static void reader_stop(struct reader *r);

static int reader_start(struct reader *r, const struct seg *segs, int nseg, int w, int h, int pool, int nthreads)
{
    memset(r, 0, sizeof *r);
    r->segs = segs;
    r->nseg = nseg;
    r->w = w;
    r->h = h;
    r->pool = pool;
    for (int s = 0; s < nseg; s++) r->total += segs[s].nframes;
    r->slots = calloc((size_t)pool, sizeof *r->slots);
    r->ready = calloc((size_t)pool, 1);
    if (!r->slots || !r->ready) {
        free(r->slots);
        free(r->ready);
        return iso_fail(ISO_EINTERNAL, "out of memory");
    }
    pthread_mutex_init(&r->lock, NULL);
    pthread_cond_init(&r->cond, NULL);
    r->started = 1;
    if (nthreads < 1) nthreads = 1;
    if (nthreads > STITCH_MAX_DECODERS) nthreads = STITCH_MAX_DECODERS;
    pthread_mutex_lock(&r->lock);
    for (int t = 0; t < nthreads; t++) {
        if (pthread_create(&r->threads[t], NULL, reader_main, r) != 0) {
            int e = errno;
            pthread_mutex_unlock(&r->lock);
            reader_stop(r);
            return iso_fail(ISO_EINTERNAL, "cannot start a decoder thread: %s", strerror(e));
        }
        r->nthreads++;
        r->running++;
    }
    pthread_mutex_unlock(&r->lock);
    return 0;
}

/* the next frame in order (the consumer owns it until reader_release) */
static int reader_next(struct reader *r, struct image *out)
{
    int rc = 0;
    pthread_mutex_lock(&r->lock);
    int slot = (int)(r->next_take % r->pool);
    while (!r->ready[slot] && !(r->err && r->err_seq == r->next_take) && r->running > 0)
        pthread_cond_wait(&r->cond, &r->lock);
    if (r->ready[slot]) {
        *out = r->slots[slot];
        memset(&r->slots[slot], 0, sizeof *out);
        r->ready[slot] = 0;
        r->next_take++;
        pthread_cond_broadcast(&r->cond);
    } else if (r->err && r->err_seq == r->next_take) {
        rc = iso_fail(r->err, "%s", r->errmsg);
    } else {
        rc = iso_fail(ISO_EINTERNAL, "decoders stopped early");
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static void reader_release(struct reader *r, struct image *img)
{
    if (!img->data) return;
    image_free(img);
    pthread_mutex_lock(&r->lock);
    r->alive--;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
}

static void reader_stop(struct reader *r)
{
    if (!r->started) return;
    pthread_mutex_lock(&r->lock);
    r->stop = 1;
    pthread_cond_broadcast(&r->cond);
    pthread_mutex_unlock(&r->lock);
    for (int t = 0; t < r->nthreads; t++) pthread_join(r->threads[t], NULL);
    for (int i = 0; i < r->pool; i++) image_free(&r->slots[i]);
    free(r->slots);
    free(r->ready);
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->cond);
    r->started = 0;
}

void stitch_blend(unsigned char *a, const unsigned char *b, size_t n, int j, int k)
{
    /* x / K as (x * M) >> 32 with M = floor(2^32 / K) + 1: the error is
     * below x / 2^32, and x <= 255.5 K, so it stays under 1/K (the gap
     * to the next integer when x/K is not one) for K < 4100; exact. */
    uint32_t wa = (uint32_t)(k - j), wb = (uint32_t)j, half = (uint32_t)k / 2;
    uint64_t m = ((uint64_t)1 << 32) / (uint32_t)k + 1;
    for (size_t i = 0; i < n; i++) {
        uint32_t x = a[i] * wa + b[i] * wb + half;
        a[i] = (unsigned char)(((uint64_t)x * m) >> 32);
    }
}

/* ---- the run */

struct run {
    const struct stitch_opts *o;
    int overlap;          /* --overlap, or what auto chose */
    struct seg *segs;
    int w, h;
    int fps_num, fps_den;
    double fps;
    int64_t total_frames;
    struct video_enc *enc;
    struct video_enc_info info;
    char *mp4_tmp;
    char *frames_tmp;
    char *report;
    struct reader rd;
    int k;                /* effective overlap (0 for a single segment) */
    struct image *fifo;   /* K pending output frames (ring) */
    int f_head, f_count;
    int64_t emitted;
    double t_start, t_load, encode_s, blend_s, frames_out_s, run_s, wait_s, flush_s;
    struct mem_plan plan;
};

/* libx264's rc_lookahead per preset (x264 common/base.c presets): the
 * frames it buffers ahead, the main term of its memory */
static int preset_lookahead(const char *preset)
{
    static const struct { const char *name; int la; } t[] = {
        { "ultrafast", 0 }, { "superfast", 0 }, { "veryfast", 10 }, { "faster", 20 }, { "fast", 30 },
        { "medium", 40 }, { "slow", 50 }, { "slower", 60 }, { "veryslow", 60 }, { "placebo", 60 },
    };
    for (size_t i = 0; i < sizeof t / sizeof *t; i++)
        if (preset && !strcmp(preset, t[i].name)) return t[i].la;
    return 40;
}

/* The memory plan (common/plan.h) of a stitch run: no weights, CPU only.
 * activations: the pool of decoded RGB frames and the encoder's yuv420p
 * input frame; host_base: the process with its libraries (36 MiB measured
 * after load) plus libx264's frame buffers, (lookahead + 14) frames of
 * 4.2 bytes per pixel. Calibrated on 160x120 and 832x480 with presets
 * ultrafast..slower: the measured VmHWM was 0-25 % below the plan. A CUDA
 * build carries the static CUDA runtime, which probes for a driver at start
 * (+3 MiB measured at 320x192: 52.3 MiB against a plan of 49.7 before). */
#ifdef ISOPIPE_CUDA
#define STITCH_PROCESS_BASE ((uint64_t)40 << 20)
#else
#define STITCH_PROCESS_BASE ((uint64_t)36 << 20)
#endif
static int make_plan(struct run *r, int pool)
{
    uint64_t ew = (uint64_t)((r->w + 1) & ~1), eh = (uint64_t)((r->h + 1) & ~1);
    uint64_t frame = (uint64_t)r->w * (uint64_t)r->h * 3;
    struct plan_blocks b = { 0 };
    b.activations = (uint64_t)pool * frame + ew * eh * 3 / 2;
    b.host_base = STITCH_PROCESS_BASE + (uint64_t)(preset_lookahead(r->o->preset) + 14) * (ew * eh * 42 / 10);
    b.cpu_ok = 1;
    return plan_from_blocks(&r->plan, "stitch (no model)", &b);
}

static int emit(struct run *r, struct image *img)
{
    double t0 = mem_now();
    int rc = video_enc_write_rgb(r->enc, img->data, (ptrdiff_t)img->w * 3);
    double t1 = mem_now();
    r->encode_s += t1 - t0;
    if (rc) return rc;
    if (r->frames_tmp) {
        char name[32];
        snprintf(name, sizeof name, "frame_%05lld.png", (long long)r->emitted);
        char *p = fs_join(r->frames_tmp, name);
        if (!p) return iso_fail(ISO_EINTERNAL, "out of memory");
        rc = image_save_png(p, img, 1);
        free(p);
        if (rc) return iso_wrap(rc, "cannot write --frames-out '%s'", r->o->frames_out);
        r->frames_out_s += mem_now() - t1;
    }
    r->emitted++;
    log_progress("stitch", (long)r->emitted, (long)r->total_frames);
    return 0;
}

static int emit_oldest(struct run *r)
{
    int cap = r->k > 0 ? r->k : 1;
    struct image *img = &r->fifo[r->f_head];
    int rc = emit(r, img);
    reader_release(&r->rd, img);
    r->f_head = (r->f_head + 1) % cap;
    r->f_count--;
    return rc;
}

/* Output position before which every frame is final while segment s has
 * had `used` frames consumed: a later blend touches only the last K frames
 * of the video at the end of segment s (positions out_end - K ..), and
 * segment s's own blends only positions out_start + used .. out_start + K. */
static int64_t final_limit(const struct run *r, int s, int used)
{
    const struct seg *g = &r->segs[s];
    int64_t lim = INT64_MAX;
    if (s + 1 < r->o->nseg) lim = g->out_start + g->nframes - r->k;
    if (s > 0 && used < r->k && g->out_start + used < lim) lim = g->out_start + used;
    return lim;
}

static int flush_final(struct run *r, int s, int used)
{
    int64_t lim = final_limit(r, s, used);
    int rc = 0;
    while (!rc && r->f_count > 0 && r->emitted < lim) rc = emit_oldest(r);
    return rc;
}

/* Pending (not yet final) frames wait in r->fifo, oldest first, the
 * oldest at output position r->emitted; there are never more than K of
 * them. Frames are emitted as soon as they are final, before the next
 * frame is awaited, so in the plain middle of a segment nothing is
 * pending and the reader may run up to K+1 frames ahead. */
static int stream(struct run *r)
{
    const int k = r->k, cap = k > 0 ? k : 1;
    const int nseg = r->o->nseg;
    const size_t bytes = (size_t)r->w * (size_t)r->h * 3;
    struct image cur = { 0 };
    int rc = 0;
    for (int s = 0; s < nseg && !rc; s++)
        for (int j = 0; j < r->segs[s].nframes; j++) {
            if ((rc = sig_check())) break;
            if ((rc = flush_final(r, s, j))) break;
            double tw = mem_now();
            rc = reader_next(&r->rd, &cur);
            r->wait_s += mem_now() - tw;
            if (rc) break;
            if (s > 0 && j < k) {
                /* crossfade frame j: blend into the pending frame at its position */
                int64_t idx = r->segs[s].out_start + j - r->emitted;
                if (idx < 0 || idx >= r->f_count) { rc = iso_fail(ISO_EINTERNAL, "crossfade frame not pending"); break; }
                double t0 = mem_now();
                stitch_blend(r->fifo[(r->f_head + idx) % cap].data, cur.data, bytes, j, k);
                r->blend_s += mem_now() - t0;
                reader_release(&r->rd, &cur);
            } else {
                if (r->f_count == cap) { rc = iso_fail(ISO_EINTERNAL, "more than K frames pending"); break; }
                r->fifo[(r->f_head + r->f_count) % cap] = cur;
                r->f_count++;
                memset(&cur, 0, sizeof cur);
            }
        }
    /* the end: everything left is final */
    while (!rc && r->f_count > 0) rc = emit_oldest(r);
    reader_release(&r->rd, &cur);
    return rc;
}

/* fps as a fraction: integers exactly, the NTSC rates as N*1000/1001, else to 1/1000 */
static void fps_fraction(double fps, int *num, int *den)
{
    double ri = floor(fps + 0.5);
    double ntsc = floor(fps * 1.001 + 0.5);
    if (fabs(fps - ri) < 1e-9) { *num = (int)ri; *den = 1; }
    else if (fabs(fps - ntsc * 1000.0 / 1001.0) < 1e-3) { *num = (int)ntsc * 1000; *den = 1001; }
    else { *num = (int)floor(fps * 1000 + 0.5); *den = 1000; }
}

/* stitch writes MP4 whatever the name says: a name promising another
 * container (x.gif, x.webm) is refused rather than silently mislabelled */
static int check_extension(const char *path)
{
    const char *slash = strrchr(path, '/'), *base = slash ? slash + 1 : path, *dot = strrchr(base, '.');
    static const char *const ok[] = { ".mp4", ".m4v", ".mov", NULL };
    for (int i = 0; dot && ok[i]; i++)
        if (!strcasecmp(dot, ok[i])) return 0;
    return iso_fail(ISO_EUSAGE, "-o '%s': stitch writes MP4 (H.264); give a name ending in .mp4 (or .m4v, .mov), or - for "
                    "standard output", path);
}

/* --overlap not given: 1 when every boundary repeats a frame (the last frame
 * of a segment is pixel for pixel the first of the next, as with segments
 * made by segment-gen, which both hold the shared keyframe), so the shared
 * frame is shown once; else 0 (plain concatenation). */
static int auto_overlap(const struct seg *segs, int n, int *overlap)
{
    int rc = 0, same = n > 1;
    for (int s = 0; s + 1 < n && same; s++) {
        struct image a = { 0 }, b = { 0 };
        char *pa = frame_path(segs[s].dir, segs[s].nframes - 1), *pb = frame_path(segs[s + 1].dir, 0);
        if (!pa || !pb) rc = iso_fail(ISO_EINTERNAL, "out of memory");
        if (!rc) rc = image_load_png(pa, &a, 3);
        if (!rc) rc = image_load_png(pb, &b, 3);
        same = !rc && a.w == b.w && a.h == b.h && !memcmp(a.data, b.data, (size_t)a.w * a.h * 3);
        image_free(&a);
        image_free(&b);
        free(pa);
        free(pb);
        if (rc) return rc;
    }
    *overlap = same ? 1 : 0;
    if (n > 1)
        log_verbose("overlap %d: %s", *overlap,
                    same ? "every segment starts with the frame the previous one ends with (shown once)"
                         : "segments do not share their boundary frames (concatenated)");
    return 0;
}

static int check_parent(const char *path, const char *what)
{
    char *dir = fs_dirname(path);
    int rc = 0;
    if (!dir) return iso_fail(ISO_EINTERNAL, "out of memory");
    if (!fs_is_dir(dir)) rc = iso_fail(ISO_ECANTCREAT, "cannot create %s '%s': directory '%s' does not exist", what, path, dir);
    free(dir);
    return rc;
}

static json_t *build_report(struct run *r)
{
    const struct stitch_opts *o = r->o;
    json_t *root = jsonio_header_new();
    if (!strcmp(o->output, "-")) json_object_set_new(root, "output", json_string("-")); /* standard output */
    else jsonio_set_path(root, "output", r->report, o->output);
    if (o->frames_out) jsonio_set_path(root, "frames_out", r->report, o->frames_out);
    json_object_set_new(root, "frames", json_integer(r->total_frames));
    json_object_set_new(root, "width", json_integer(r->w));
    json_object_set_new(root, "height", json_integer(r->h));
    json_object_set_new(root, "fps", json_real(r->fps));
    char fr[32];
    snprintf(fr, sizeof fr, "%d/%d", r->fps_num, r->fps_den);
    json_object_set_new(root, "fps_rational", json_string(fr));
    json_object_set_new(root, "duration_s", json_real((double)r->total_frames * r->fps_den / r->fps_num));
    json_object_set_new(root, "overlap", json_integer(r->overlap));
    json_object_set_new(root, "overlap_auto", json_boolean(o->overlap < 0));
    json_object_set_new(root, "blend", json_string("linear in RGB: out = (a*(K-j) + b*j + K/2) / K, j = 0..K-1"));
    json_t *inputs = json_array();
    for (int s = 0; s < o->nseg; s++) {
        const struct seg *g = &r->segs[s];
        json_t *in = json_object();
        jsonio_set_path(in, "dir", r->report, g->dir);
        json_object_set_new(in, "frames", json_integer(g->nframes));
        if (g->fps > 0) json_object_set_new(in, "fps", json_real(g->fps));
        if (g->prompt) json_object_set_new(in, "prompt", json_string(g->prompt));
        /* [first, end) output frames showing this segment, and the blended parts */
        json_object_set_new(in, "output_range", json_pack("[I, I]", (json_int_t)g->out_start,
                                                          (json_int_t)(g->out_start + g->nframes)));
        if (s > 0 && r->overlap > 0)
            json_object_set_new(in, "blend_in", json_pack("[I, I]", (json_int_t)g->out_start,
                                                          (json_int_t)(g->out_start + r->overlap)));
        if (s + 1 < o->nseg && r->overlap > 0)
            json_object_set_new(in, "blend_out", json_pack("[I, I]", (json_int_t)(g->out_start + g->nframes - r->overlap),
                                                           (json_int_t)(g->out_start + g->nframes)));
        json_array_append_new(inputs, in);
    }
    json_object_set_new(root, "inputs", inputs);
    json_object_set_new(root, "encoder", json_pack("{s:s, s:b, s:s, s:i, s:s?, s:i, s:i, s:i, s:b, s:s}",
        "codec", r->info.codec, "fallback", r->info.fell_back, "pix_fmt", r->info.pix_fmt, "crf", o->crf,
        "preset", r->info.fell_back || strcmp(r->info.codec, "libx264") ? NULL : o->preset,
        "threads", o->threads, "encoded_width", r->info.enc_width, "encoded_height", r->info.enc_height,
        "padded", r->info.padded, "color", "bt601 limited range"));
    json_object_set_new(root, "decoding", json_pack("{s:i, s:i}", "threads", r->rd.nthreads, "pool_frames", r->rd.pool));
    double total = mem_now() - r->t_start;
    /* decode_s: summed over the decoder threads; wait_s: the encoder thread
     * waiting for decoded frames; flush_s: draining the encoder at the end */
    json_object_set_new(root, "timing", json_pack("{s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f, s:f}", "total_s", total,
        "load_s", r->t_load, "decode_s", r->rd.decode_s, "wait_s", r->wait_s, "blend_s", r->blend_s,
        "encode_s", r->encode_s, "flush_s", r->flush_s, "frames_out_s", r->frames_out_s, "frames_per_s",
        r->run_s > 0 ? r->total_frames / r->run_s : 0.0));
    struct mem_sample ms;
    mem_sample(&ms);
    json_t *plan = plan_to_json(&r->plan);
    json_object_set_new(plan, "auto_pick", json_string("cpu"));
    json_object_set_new(root, "memory", json_pack("{s:s, s:o, s:I, s:I, s:f, s:i, s:o}", "mode", "cpu", "plan", plan,
        "peak_rss", (json_int_t)ms.hwm, "peak_vram", (json_int_t)0, "load_time_s", r->t_load,
        "max_frames_alive", r->rd.max_alive, "checkpoints", mem_checkpoints_json()));
    return root;
}

int stitch_run(const struct stitch_opts *o)
{
    struct run R = { 0 }, *r = &R;
    int rc = 0, published = 0, frames_published = 0;
    json_t *report = NULL;
    r->o = o;
    r->t_start = mem_now();
    mem_checkpoint("start");

    if (o->nseg < 1) {
        rc = iso_fail(ISO_EUSAGE, "no segment directories given (usage: stitch [options] -o final.mp4 SEGDIR...)");
        goto done;
    }
    if (!o->output && !o->plan_only) {
        rc = iso_fail(ISO_EUSAGE, "no output given: use -o final.mp4");
        goto done;
    }
    if (o->overlap < -1 || o->overlap > STITCH_MAX_OVERLAP) {
        rc = iso_fail(ISO_EUSAGE, "--overlap: %d is out of range [0, %d]", o->overlap, STITCH_MAX_OVERLAP);
        goto done;
    }
    int to_stdout = o->output && !strcmp(o->output, "-");
    if (o->output && !to_stdout && (rc = check_extension(o->output))) goto done;
    if (to_stdout && !o->plan_only && isatty(STDOUT_FILENO)) {
        rc = iso_fail(ISO_EUSAGE, "-o -: standard output is a terminal; redirect it to a file or a pipe");
        goto done;
    }
    r->report = o->report ? strdup(o->report) : NULL;
    if (!r->report && to_stdout) {
        /* nothing beside a stream: the report is written only where --report says */
    } else if (!r->report) {
        char *dir = fs_dirname(o->output ? o->output : "stitch.mp4");
        r->report = dir ? fs_join(dir, "stitch.json") : NULL;
        free(dir);
    }
    if (!r->report && !to_stdout) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if (!o->plan_only &&
        ((!to_stdout && (rc = check_parent(o->output, "output"))) ||
         (r->report && (rc = check_parent(r->report, "report"))) ||
         (o->frames_out && (rc = check_parent(o->frames_out, "--frames-out directory")))))
        goto done;
    /* outputs never are or hold an input; --frames-out replaces only an
     * earlier stitch --frames-out (its frames.json) */
    static const char *const frame_names[] = { "frame_*.png", NULL };
    struct fs_dir_owner own = { "frames.json", "stitch", frame_names, (const char *const *)o->segdirs, o->nseg };
    if (!o->plan_only &&
        ((!to_stdout && (rc = fs_check_output(o->output, "-o", own.inputs, o->nseg))) ||
         (r->report && (rc = fs_check_output(r->report, "--report", own.inputs, o->nseg))) ||
         (o->frames_out && (rc = fs_dir_check_owned(o->frames_out, &own)))))
        goto done;

    mem_checkpoint("before load");
    r->segs = calloc((size_t)o->nseg, sizeof *r->segs);
    if (!r->segs) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    for (int s = 0; s < o->nseg; s++) {
        r->segs[s].dir = o->segdirs[s];
        if ((rc = scan_segment(&r->segs[s]))) goto done;
        if (o->nseg > 1 && o->overlap > 0 && r->segs[s].nframes < o->overlap) {
            rc = iso_fail(ISO_EDATA, "--overlap %d is larger than segment '%s' (%d frames)", o->overlap,
                          r->segs[s].dir, r->segs[s].nframes);
            goto done;
        }
    }
    if ((rc = check_sizes(r->segs, o->nseg, &r->w, &r->h))) goto done;
    int overlap = o->overlap;
    if (overlap < 0 && (rc = auto_overlap(r->segs, o->nseg, &overlap))) goto done;
    r->overlap = overlap;
    int k = r->k = o->nseg > 1 ? overlap : 0; /* a single segment has nothing to blend */
    int64_t pos = 0;
    for (int s = 0; s < o->nseg; s++) {
        r->segs[s].out_start = pos;
        pos += r->segs[s].nframes - (s + 1 < o->nseg ? k : 0);
    }
    r->total_frames = pos;

    /* frame rate: --fps, else the first segment.json that has one, else 24 */
    r->fps = o->fps;
    const char *fps_from = "--fps";
    for (int s = 0; s < o->nseg && r->fps <= 0; s++)
        if (r->segs[s].fps > 0) { r->fps = r->segs[s].fps; fps_from = r->segs[s].dir; }
    if (r->fps <= 0) { r->fps = 24; fps_from = "the default"; }
    if (o->fps <= 0)
        for (int s = 0; s < o->nseg; s++)
            if (r->segs[s].fps > 0 && fabs(r->segs[s].fps - r->fps) > 1e-6)
                log_warn("segment '%s' has fps %g but the video uses %g (from '%s')", r->segs[s].dir,
                         r->segs[s].fps, r->fps, fps_from);
    fps_fraction(r->fps, &r->fps_num, &r->fps_den);

    int pool = k + 1 < 2 ? 2 : k + 1;
    if ((rc = make_plan(r, pool))) goto done;
    {
        /* stitch has no GPU path: auto and cpu run, beefy/lightweight are refused */
        struct plan_env env = { .host_budget = mem_host_budget() };
        enum mem_mode mode;
        if ((rc = plan_decide(&r->plan, o->memory_mode, &env, &mode))) {
            rc = iso_fail(ISO_EUSAGE, "--memory-mode %s: stitch runs on the CPU only (use auto or cpu)",
                          mem_mode_name(o->memory_mode));
            goto done;
        }
    }
    if (o->plan_only) {
        json_t *pj = plan_to_json(&r->plan);
        json_object_set_new(pj, "auto_pick", json_string("cpu"));
        json_object_set_new(pj, "tool", json_string("stitch"));
        json_dumpf(pj, stdout, JSON_INDENT(2));
        fputc('\n', stdout);
        json_decref(pj);
        mem_checkpoint("end");
        goto done;
    }

    struct video_enc_params vp;
    video_enc_default_params(&vp);
    vp.width = r->w;
    vp.height = r->h;
    vp.fps_num = r->fps_num;
    vp.fps_den = r->fps_den;
    vp.crf = o->crf;
    vp.preset = o->preset;
    vp.threads = o->threads;
    vp.codec = o->codec;
    vp.name = to_stdout ? "standard output" : o->output;
    if (to_stdout) {
        vp.fragmented = 1;
        if ((rc = video_enc_open(&r->enc, "pipe:1", &vp))) goto done;
    } else {
        fs_clean_stale_tmp(o->output); /* a killed run's partial video */
        r->mp4_tmp = fs_tmp_sibling(o->output);
        if (!r->mp4_tmp) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        if ((rc = video_enc_open(&r->enc, r->mp4_tmp, &vp))) goto done;
    }
    video_enc_get_info(r->enc, &r->info);
    if (r->info.fell_back) log_warn("libx264 is not in the linked libavcodec: encoding MPEG-4 part 2 (mpeg4) instead");
    if (r->info.padded)
        log_warn("frames are %dx%d: padded to %dx%d (yuv420p needs even sizes) by repeating the last column/row",
                 r->w, r->h, r->info.enc_width, r->info.enc_height);
    if (o->frames_out && (rc = fs_dir_begin_owned(o->frames_out, &own, &r->frames_tmp))) goto done;
    r->t_load = mem_now() - r->t_start;
    mem_checkpoint("after load");
    log_verbose("%d segments, %dx%d, overlap %d: %lld output frames at %d/%d fps (%s)", o->nseg, r->w, r->h, k,
                (long long)r->total_frames, r->fps_num, r->fps_den, r->info.codec);

    r->fifo = calloc((size_t)(k > 0 ? k : 1), sizeof *r->fifo);
    if (!r->fifo) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    if ((rc = reader_start(&r->rd, r->segs, o->nseg, r->w, r->h, pool, o->decoders))) goto done;
    double t_run = mem_now();
    rc = stream(r);
    reader_stop(&r->rd);
    if (rc) goto done;
    double tf = mem_now();
    if ((rc = video_enc_finish(r->enc))) goto done;
    r->flush_s = mem_now() - tf;
    r->run_s = mem_now() - t_run;
    if (r->emitted != r->total_frames) {
        rc = iso_fail(ISO_EINTERNAL, "encoded %lld frames, expected %lld", (long long)r->emitted,
                      (long long)r->total_frames);
        goto done;
    }
    mem_checkpoint("before cleanup");
    video_enc_free(&r->enc);

    if (!to_stdout) {
        if ((rc = fs_publish_file(r->mp4_tmp, o->output))) goto done;
        published = 1;
    }
    if (r->frames_tmp) {
        /* frames.json: how a later run recognises this folder as its own */
        json_t *fj = jsonio_header_new();
        char *fp = fs_join(r->frames_tmp, "frames.json");
        if (fj) json_object_set_new(fj, "frames", json_integer((json_int_t)r->emitted));
        rc = fj && fp ? jsonio_write_atomic(fp, fj) : iso_fail(ISO_EINTERNAL, "out of memory");
        json_decref(fj);
        free(fp);
        if (rc) goto done;
        if ((rc = fs_dir_publish(r->frames_tmp, o->frames_out))) goto done;
        free(r->frames_tmp);
        r->frames_tmp = NULL;
        frames_published = 1;
    }
    mem_checkpoint("end");
    if (r->report) { /* with -o - and no --report there is none */
        report = build_report(r);
        if (!report) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
        rc = jsonio_write_atomic(r->report, report);
    }
    if (!rc)
        log_info("wrote '%s': %lld frames %dx%d, %.3f s at %d/%d fps (%s, crf %d) in %.2f s", o->output,
                 (long long)r->total_frames, r->info.enc_width, r->info.enc_height,
                 (double)r->total_frames * r->fps_den / r->fps_num, r->fps_num, r->fps_den, r->info.codec, o->crf,
                 mem_now() - r->t_start);
done:
    if (r->rd.started) reader_stop(&r->rd);
    if (r->fifo) {
        for (int i = 0; i < (r->k > 0 ? r->k : 1); i++) image_free(&r->fifo[i]);
        free(r->fifo);
    }
    video_enc_free(&r->enc);
    if (rc) {
        /* a failed run leaves nothing behind, the published parts included */
        if (r->mp4_tmp) unlink(r->mp4_tmp);
        if (published) unlink(o->output);
        fs_dir_abort(&r->frames_tmp);
        if (frames_published) fs_rm_rf(o->frames_out);
        if (!report) mem_checkpoint("end");
    }
    json_decref(report);
    free(r->mp4_tmp);
    free(r->frames_tmp);
    free(r->report);
    if (r->segs)
        for (int s = 0; s < o->nseg; s++) free(r->segs[s].prompt);
    free(r->segs);
    return rc;
}
