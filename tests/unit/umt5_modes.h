/* umt5_modes.h — shared by the umT5 unit tests (test_text_encode_umt5.c,
 * test_text_encode_cuda.c): a batch of a fixture's prompts plus one long
 * random sequence, and one encoding of it with the weights where a memory
 * mode keeps them (common/nn_wres.h) on a given nn context; the setup of one
 * fixture model and its buffers (struct mcase). Include after test.h. */
#ifndef ISOPIPE_TEST_UMT5_MODES_H
#define ISOPIPE_TEST_UMT5_MODES_H
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "err.h"
#include "nn.h"
#include "nn_wres.h"
#include "umt5.h"
#include "weights.h"

#define MB_MAX 9

struct mbatch {
    int n;
    int32_t *ids[MB_MAX];
    int len[MB_MAX];
};

static void mbatch_free(struct mbatch *b)
{
    for (int i = 0; i < b->n; i++) free(b->ids[i]);
    b->n = 0;
}

/* the prompts of dir/expected.safetensors (ids_0, ids_1, ...) and a random
 * sequence of long_len ids below vocab_rows (0: none) */
static int mbatch_load(const char *dir, int long_len, int vocab_rows, struct mbatch *b)
{
    char p[1024];
    struct weights *e = NULL;
    memset(b, 0, sizeof *b);
    snprintf(p, sizeof p, "%s/expected.safetensors", dir);
    if (weights_open(p, &e)) return -1;
    for (; b->n < MB_MAX - 1; b->n++) {
        char nm[32];
        snprintf(nm, sizeof nm, "ids_%d", b->n);
        const struct wt_tensor *t = weights_find(e, nm);
        if (!t) break;
        float *f = malloc(t->nelem * sizeof *f);
        b->ids[b->n] = malloc(t->nelem * sizeof *b->ids[0]);
        weights_to_f32(t, 0, t->nelem, f);
        for (uint64_t i = 0; i < t->nelem; i++) b->ids[b->n][i] = (int32_t)f[i];
        b->len[b->n] = (int)t->nelem;
        free(f);
    }
    weights_close(&e);
    if (long_len > 0) {
        uint32_t s = 12345;
        b->ids[b->n] = malloc((size_t)long_len * sizeof *b->ids[0]);
        for (int i = 0; i < long_len; i++) {
            s = s * 1664525u + 1013904223u;
            b->ids[b->n][i] = (int32_t)((s >> 8) % (uint32_t)vocab_rows);
        }
        b->ids[b->n][long_len - 1] = 1;   /* </s> */
        b->len[b->n++] = long_len;
    }
    return 0;
}

/* Encode batch b with the model at path (config may be NULL) on nn, its
 * weights in `mode` (mapped: not registered at all, as the CPU tests always
 * did), at precision prec; reserve: through umt5_reserve rather than
 * per-call activations; twice: encode the batch a second time (out2), so
 * that a streamed run re-enters layer 0 after the last. out[i] and out2[i]
 * are malloc'ed by the caller. stream copies (streamed) into *copies.
 * 0 or the first error. */
static int mbatch_encode(const char *path, const char *config, struct nn *nn, int mode, enum nn_precision prec,
                         int reserve, const struct mbatch *b, float **out, float **out2, uint64_t *copies)
{
    struct weights *w = NULL;
    struct umt5 *m = NULL;
    struct nn_wres *r = NULL;
    int rc = weights_open(path, &w);
    if (!rc) rc = umt5_open(w, config, &m);
    if (!rc && mode >= 0) {
        if (!(r = nn_wres_new((enum nn_wres_mode)mode, umt5_config(m)->n_layers))) rc = ISO_EINTERNAL;
        if (!rc) rc = umt5_wres_register(m, r);
        if (!rc) rc = nn_wres_load(r, nn);
    }
    if (!rc && reserve) {
        int Lmax = 1, tokens = 0;
        for (int i = 0; i < b->n; i++) {
            tokens += b->len[i];
            if (b->len[i] > Lmax) Lmax = b->len[i];
        }
        rc = umt5_reserve(m, nn, Lmax, tokens, b->n);
    }
    nn_set_precision(nn, prec);
    if (!rc) rc = umt5_encode_batch(m, nn, (const int32_t *const *)b->ids, b->len, b->n, out);
    if (!rc && out2) rc = umt5_encode_batch(m, nn, (const int32_t *const *)b->ids, b->len, b->n, out2);
    if (!rc) rc = nn_sync(nn);
    if (copies) {
        uint64_t h, by;
        nn_wres_stats(r, copies, &h, &by);
    }
    nn_set_precision(nn, NN_PREC_F32);
    if (m) umt5_release(m, nn);
    nn_wres_free(&r);
    umt5_free(&m);
    weights_close(&w);
    return rc;
}

/* One fixture model and its batch, as both tests set them up: the paths,
 * d_model and layers, the batch (the fixture's prompts + 300 random ids)
 * and three output buffers per sequence (ref, got, got2). */
struct mcase {
    char path[1024], cj[1024];
    const char *config;           /* cj, or NULL without a config file */
    int d, layers;
    struct mbatch b;
    float *ref[MB_MAX], *got[MB_MAX], *got2[MB_MAX];
};

/* 0, or -1 after a failed CHECK naming the file */
static int mcase_open(struct mcase *c, const char *dir, const char *file, const char *config)
{
    memset(c, 0, sizeof *c);
    snprintf(c->path, sizeof c->path, "%s/%s", dir, file);
    if (config) {
        snprintf(c->cj, sizeof c->cj, "%s/%s", dir, config);
        c->config = c->cj;
    }
    struct weights *w = NULL;
    struct umt5 *m = NULL;
    if (weights_open(c->path, &w) || umt5_open(w, c->config, &m)) {
        CHECKF(0, "%s: %s", c->path, iso_errmsg());
        weights_close(&w);
        return -1;
    }
    c->d = umt5_config(m)->d_model;
    c->layers = umt5_config(m)->n_layers;
    int rc = mbatch_load(dir, 300, umt5_config(m)->vocab_rows, &c->b);
    umt5_free(&m);
    weights_close(&w);
    CHECKF(rc == 0, "%s: %s", dir, iso_errmsg());
    if (rc) return -1;
    for (int i = 0; i < c->b.n; i++) {
        size_t bytes = (size_t)c->b.len[i] * c->d * sizeof(float);
        c->ref[i] = malloc(bytes);
        c->got[i] = malloc(bytes);
        c->got2[i] = malloc(bytes);
    }
    return 0;
}

static void mcase_free(struct mcase *c)
{
    for (int i = 0; i < c->b.n; i++) { free(c->ref[i]); free(c->got[i]); free(c->got2[i]); }
    mbatch_free(&c->b);
}
#endif
