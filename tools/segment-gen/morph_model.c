/* morph_model.c — the morph (morph.c) behind the segmodel interface.
 * Weight-free and CPU-only: open() only records the parameters; generate()
 * computes visibility once, then worker threads take frame indices from a
 * shared counter, each rendering into its own scratch and handing the frame
 * to the sink (which encodes it), so PNG encoding runs in parallel too. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "morph.h"
#include "segmodel.h"

struct morph_ctx {
    struct segmodel_params p;
};

struct job {
    const struct morph *m;
    const struct segmodel_request *req;
    segmodel_sink sink;
    void *sink_ctx;
    atomic_int next;
    atomic_int stop;
    pthread_mutex_t lock;   /* guards rc and msg */
    int rc;
    char msg[512];
};

static void job_fail(struct job *j, int rc)
{
    pthread_mutex_lock(&j->lock);
    if (!j->rc) {
        j->rc = rc;
        snprintf(j->msg, sizeof j->msg, "%s", iso_errmsg());
    }
    pthread_mutex_unlock(&j->lock);
    atomic_store(&j->stop, 1);
}

static void *worker(void *arg)
{
    struct job *j = arg;
    const struct morph *m = j->m;
    int n = j->req->frames, rc;
    struct morph_scratch s = { 0 };
    struct image out = { 0 };
    if ((rc = morph_scratch_alloc(&s, m->w, m->h)) || (rc = image_alloc(&out, m->w, m->h, m->c))) {
        job_fail(j, rc);
        goto done;
    }
    while (!atomic_load(&j->stop)) {
        int i = atomic_fetch_add(&j->next, 1);
        if (i >= n) break;
        const struct image *frame;
        if (i == 0) frame = j->req->start;          /* t = 0 and t = 1 are the keyframes, bit for bit */
        else if (i == n - 1) frame = j->req->end;
        else {
            if ((rc = morph_frame(m, &s, (double)i / (double)(n - 1), &out))) { job_fail(j, rc); break; }
            frame = &out;
        }
        if ((rc = j->sink(j->sink_ctx, i, frame))) { job_fail(j, rc); break; }
    }
done:
    morph_scratch_free(&s);
    image_free(&out);
    return NULL;
}

static int morph_plan(const struct segmodel_params *p, struct mem_plan *out)
{
    uint64_t px = (uint64_t)p->width * (uint64_t)p->height;
    int workers = p->threads < p->frames ? p->threads : p->frames;
    if (workers < 1) workers = 1;
    struct plan_blocks b = { 0 };
    /* no weights; per worker: scratch + one output frame; per segment: visibility */
    b.activations = (uint64_t)workers * (morph_scratch_bytes(p->width, p->height) + px * (uint64_t)p->channels) +
                    morph_state_bytes(p->width, p->height);
    /* inputs held for the whole run: two keyframes and two flows */
    b.host_base = 2 * px * (uint64_t)p->channels + 2 * px * 2 * sizeof(float);
    /* the process itself: code, libraries, zlib/libpng state per worker (about 3 MiB RSS measured at "start") */
    b.host_base += (uint64_t)(6 + workers) << 20;
    b.cpu_ok = 1;
    return plan_from_blocks(out, "morph", &b);
}

static int morph_open(const struct segmodel_params *p, void **ctx)
{
    struct morph_ctx *c = calloc(1, sizeof *c);
    if (!c) return iso_fail(ISO_EINTERNAL, "out of memory");
    c->p = *p;
    *ctx = c;
    return 0;
}

static int morph_generate(void *ctxp, const struct segmodel_request *req, segmodel_sink sink, void *sink_ctx)
{
    struct morph_ctx *c = ctxp;
    struct morph m = { 0 };
    struct job j = { .req = req, .sink = sink, .sink_ctx = sink_ctx };
    pthread_t *tid = NULL;
    int started = 0, rc;
    if (!req->flow_fwd || !req->flow_bwd) return iso_fail(ISO_EINTERNAL, "morph: the request has no flows");
    if (req->frames < 2) return iso_fail(ISO_EDATA, "need at least 2 frames, got %d", req->frames);
    if ((rc = morph_init(&m, req->start, req->end, req->flow_fwd, req->flow_bwd))) return rc;
    int nt = c->p.threads < req->frames ? c->p.threads : req->frames;
    if (nt < 1) nt = 1;
    j.m = &m;
    atomic_init(&j.next, 0);
    atomic_init(&j.stop, 0);
    pthread_mutex_init(&j.lock, NULL);
    tid = calloc((size_t)nt, sizeof *tid);
    if (!tid) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    for (; started < nt; started++)
        if (pthread_create(&tid[started], NULL, worker, &j) != 0) {
            if (!started) { rc = iso_fail(ISO_EINTERNAL, "cannot start a worker thread"); goto done; }
            break; /* fewer workers is still correct */
        }
    for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
    /* the worker's message lives in its thread's error slot: carry it over */
    if (j.rc) rc = iso_fail(j.rc, "%s", j.msg);
done:
    free(tid);
    pthread_mutex_destroy(&j.lock);
    morph_free(&m);
    return rc;
}

static void morph_close(void **ctx)
{
    if (!ctx) return;
    free(*ctx);
    *ctx = NULL;
}

const struct segmodel_ops segmodel_morph = {
    .name = "morph",
    .summary = "flow-guided bidirectional warping between the keyframes (no weights)",
    .needs = SEGMODEL_NEEDS_FLOW,
    .exts = NULL,
    .plan = morph_plan,
    .open = morph_open,
    .generate = morph_generate,
    .close = morph_close,
};
