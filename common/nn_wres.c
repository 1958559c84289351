/* nn_wres.c — weight residency for the models on the nn core (nn_wres.h).
 *
 * The registry is a flat list of (field, elements, block). Every mode's
 * sizes follow from it by the same rules nn_w_upload and nn_w_pack apply,
 * so a plan made from nn_wres_sizes is what nn_wres_load takes. */
#include "nn_wres.h"

#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "gpu.h"
#include "plan.h"
#include "stream.h"

#define ALIGN 256u

struct wres_item {
    struct nn_w *field;      /* the model's own field, rewritten in place */
    struct nn_w stored;      /* the view as registered (into the mapping) */
    size_t n;
    int block;
};

struct nn_wres {
    enum nn_wres_mode mode;
    int n_blocks;
    struct wres_item *items;
    int n_items, cap;
    int loaded;
    struct nn *nn;
    struct gpu_arena *arena;        /* RESIDENT: everything; STREAMED: the resident part */
    uint8_t *host;                  /* STREAMED: the packed blocks (page-locked) */
    uint64_t host_bytes;
    size_t *offsets;                /* STREAMED: per item, its offset in its block */
    uint64_t *block_off;            /* STREAMED: block b starts at host + block_off[b] */
    struct stream_set *stream;
};

const char *nn_wres_mode_name(enum nn_wres_mode mode)
{
    switch (mode) {
    case NN_WRES_MAPPED: return "mapped";
    case NN_WRES_RESIDENT: return "resident";
    case NN_WRES_STREAMED: return "streamed";
    }
    return "?";
}

struct nn_wres *nn_wres_new(enum nn_wres_mode mode, int n_blocks)
{
    if (n_blocks < 0) { iso_fail(ISO_EUSAGE, "nn_wres: %d blocks", n_blocks); return NULL; }
    struct nn_wres *r = calloc(1, sizeof *r);
    if (!r) { iso_fail(ISO_EINTERNAL, "out of memory"); return NULL; }
    r->mode = mode;
    r->n_blocks = n_blocks;
    return r;
}

int nn_wres_add(struct nn_wres *r, int block, struct nn_w *w, size_t n)
{
    if (r->loaded) return iso_fail(ISO_EUSAGE, "nn_wres: weight registered after load");
    if (block < -1 || block >= r->n_blocks)
        return iso_fail(ISO_EUSAGE, "nn_wres: block %d of %d", block, r->n_blocks);
    if (r->n_items == r->cap) {
        int cap = r->cap ? 2 * r->cap : 64;
        struct wres_item *it = realloc(r->items, (size_t)cap * sizeof *it);
        if (!it) return iso_fail(ISO_EINTERNAL, "out of memory");
        r->items = it;
        r->cap = cap;
    }
    r->items[r->n_items++] = (struct wres_item){ w, *w, n, block };
    return 0;
}

static uint64_t stored_bytes(const struct wres_item *it)
{
    return it->stored.data ? (uint64_t)it->n * wt_dtype_size(it->stored.dtype) : 0;
}

static uint64_t upload_bytes(const struct wres_item *it)
{
    return it->stored.data ? nn_w_upload_bytes(it->stored.dtype, it->n) + ALIGN : 0;
}

/* the items of block b packed as nn_w_pack lays them out: its size */
static uint64_t block_bytes(const struct nn_wres *r, int b)
{
    uint64_t off = 0;
    for (int k = 0; k < r->n_items; k++) {
        const struct wres_item *it = &r->items[k];
        if (it->block != b || !it->stored.data) continue;
        off = (off + stored_bytes(it) + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
    }
    return off;
}

/* STREAMED with no blocks is RESIDENT */
static enum nn_wres_mode effective(const struct nn_wres *r)
{
    return r->mode == NN_WRES_STREAMED && r->n_blocks == 0 ? NN_WRES_RESIDENT : r->mode;
}

void nn_wres_sizes(const struct nn_wres *r, uint64_t *resident, uint64_t *block_max, uint64_t *blocks_total,
                   uint64_t *upload_total, uint64_t *largest)
{
    uint64_t res = 0, all = 0, big = 0, bmax = 0, btot = 0;
    for (int k = 0; k < r->n_items; k++) {
        const struct wres_item *it = &r->items[k];
        all += upload_bytes(it);
        if (it->block < 0) res += upload_bytes(it);
        if (stored_bytes(it) > big) big = stored_bytes(it);
    }
    for (int b = 0; b < r->n_blocks; b++) {
        uint64_t s = block_bytes(r, b);
        btot += s;
        if (s > bmax) bmax = s;
    }
    if (resident) *resident = res;
    if (block_max) *block_max = bmax;
    if (blocks_total) *blocks_total = btot;
    if (upload_total) *upload_total = all;
    if (largest) *largest = big;
}

void nn_wres_plan_blocks(const struct nn_wres *r, struct plan_blocks *b)
{
    uint64_t res, bmax, btot, all, big;
    nn_wres_sizes(r, &res, &bmax, &btot, &all, &big);
    b->n_blocks = (uint64_t)r->n_blocks;
    b->block_bytes = bmax;
    b->resident_bytes = res;
    b->largest_tensor = big;
    b->align_slack = 0;
    uint64_t beefy = res + (uint64_t)r->n_blocks * bmax;
    b->upload_extra = all > beefy ? all - beefy : 0;
}

/* upload (or, on a cpu context, account for) the items of `which`
 * (-2: every item, -1: the resident ones) into r->arena */
static int upload(struct nn_wres *r, int which, uint64_t bytes)
{
    int rc = gpu_arena_create("nn weights", bytes, &r->arena);
    if (rc) return rc;
    int cpu = nn_backend_of(r->nn) == NN_CPU;
    for (int k = 0; k < r->n_items; k++) {
        struct wres_item *it = &r->items[k];
        if (which == -1 && it->block >= 0) continue;
        if (!it->stored.data) continue;
        if (cpu) {
            /* a pretend device: take the room the upload would take (so a
             * plan that under-counts fails here, in CI), read in place */
            void *dev;
            if ((rc = gpu_arena_alloc(r->arena, nn_w_upload_bytes(it->stored.dtype, it->n), ALIGN, &dev))) return rc;
            *it->field = it->stored;
        } else if ((rc = nn_w_upload(r->nn, r->arena, &it->stored, it->n, it->field))) {
            return rc;
        }
    }
    return 0;
}

static int load_streamed(struct nn_wres *r)
{
    uint64_t res, bmax, btot;
    nn_wres_sizes(r, &res, &bmax, &btot, NULL, NULL);
    int rc;
    if ((rc = upload(r, -1, res))) return rc;
    r->offsets = calloc((size_t)r->n_items, sizeof *r->offsets);
    r->block_off = calloc((size_t)r->n_blocks, sizeof *r->block_off);
    if (!r->offsets || !r->block_off) return iso_fail(ISO_EINTERNAL, "out of memory");
    /* + ALIGN: an empty block is registered as ALIGN bytes at the end */
    if ((rc = gpu_host_alloc(btot + ALIGN, (void **)&r->host))) return rc;
    r->host_bytes = btot + ALIGN;
    if ((rc = stream_create((uint64_t)r->n_blocks, bmax ? bmax : ALIGN, &r->stream))) return rc;
    uint64_t at = 0;
    for (int b = 0; b < r->n_blocks; b++) {
        uint64_t off = 0;
        r->block_off[b] = at;
        for (int k = 0; k < r->n_items; k++) {
            struct wres_item *it = &r->items[k];
            if (it->block != b) continue;
            r->offsets[k] = (size_t)off;
            *it->field = it->stored;
            it->field->data = NULL;         /* until nn_wres_enter */
            if (!it->stored.data) continue;
            memcpy(r->host + at + off, it->stored.data, stored_bytes(it));
            off = (off + stored_bytes(it) + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
        }
        if ((rc = stream_set_block(r->stream, (uint64_t)b, r->host + at, off ? off : ALIGN))) return rc;
        at += off;
    }
    return 0;
}

int nn_wres_load(struct nn_wres *r, struct nn *nn)
{
    if (r->loaded) return iso_fail(ISO_EUSAGE, "nn_wres: loaded twice");
    r->loaded = 1;
    r->nn = nn;
    enum nn_wres_mode m = effective(r);
    if (m == NN_WRES_MAPPED) return 0;
    if (nn_backend_of(nn) == NN_CPU && gpu_present() && !gpu_is_fake())
        return iso_fail(ISO_EUSAGE, "nn_wres: %s weights on a cpu context need a pretend device (a real one "
                        "gives device pointers the cpu cannot read)", nn_wres_mode_name(m));
    if (m == NN_WRES_RESIDENT) {
        uint64_t all;
        nn_wres_sizes(r, NULL, NULL, NULL, &all, NULL);
        return upload(r, -2, all);
    }
    return load_streamed(r);
}

int nn_wres_enter(struct nn_wres *r, int block)
{
    if (effective(r) != NN_WRES_STREAMED) return 0;
    if (!r->loaded || block < 0 || block >= r->n_blocks)
        return iso_fail(ISO_EUSAGE, "nn_wres: enter block %d of %d%s", block, r->n_blocks, r->loaded ? "" : " before load");
    const void *base = NULL;
    int rc = stream_get(r->stream, (uint64_t)block, &base);
    if (rc) return rc;
    nn_set_stream(r->nn, gpu_stream_handle(stream_compute(r->stream)));
    for (int k = 0; k < r->n_items; k++) {
        struct wres_item *it = &r->items[k];
        if (it->block != block || !it->stored.data) continue;
        *it->field = nn_w_at(base, r->offsets[k], it->stored.dtype, it->stored.scale);
    }
    return 0;
}

void nn_wres_stats(const struct nn_wres *r, uint64_t *copies, uint64_t *hits, uint64_t *bytes)
{
    uint64_t c = 0, h = 0, b = 0;
    if (r && r->stream) stream_stats(r->stream, &c, &h, &b);
    if (copies) *copies = c;
    if (hits) *hits = h;
    if (bytes) *bytes = b;
}

void nn_wres_free(struct nn_wres **rp)
{
    struct nn_wres *r = *rp;
    if (!r) return;
    if (r->stream) {
        stream_sync(r->stream);
        if (r->nn) nn_set_stream(r->nn, NULL);
        stream_free(&r->stream);
    }
    if (r->host) gpu_host_free(r->host, r->host_bytes);
    gpu_arena_free(&r->arena);
    free(r->offsets);
    free(r->block_off);
    free(r->items);
    free(r);
    *rp = NULL;
}
