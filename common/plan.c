/* plan.c — memory plans from block descriptions, and the mode decision. */
#include "plan.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "weights.h"

#define MIB (UINT64_C(1) << 20)

/* a + b with an overflow flag (sizes come from model files) */
static uint64_t add(uint64_t a, uint64_t b, int *ovf)
{
    uint64_t r;
    if (__builtin_add_overflow(a, b, &r)) *ovf = 1;
    return r;
}

static uint64_t mul(uint64_t a, uint64_t b, int *ovf)
{
    uint64_t r;
    if (__builtin_mul_overflow(a, b, &r)) *ovf = 1;
    return r;
}

int plan_from_blocks(struct mem_plan *p, const char *model, const struct plan_blocks *b)
{
    memset(p, 0, sizeof *p);
    snprintf(p->model, sizeof p->model, "%s", model ? model : "");
    p->blocks = *b;
    int ovf = 0;
    uint64_t blocks_all = mul(b->n_blocks, b->block_bytes, &ovf);
    p->weights_total = add(b->resident_bytes, blocks_all, &ovf);
    uint64_t chunk = b->largest_tensor < PLAN_UPLOAD_CHUNK ? b->largest_tensor : PLAN_UPLOAD_CHUNK;

    struct plan_mode *m = &p->mode[MEM_MODE_BEEFY];
    m->possible = b->gpu_ok;
    m->weights = add(add(p->weights_total, b->align_slack, &ovf), b->upload_extra, &ovf);
    m->activations = b->activations;
    m->kv_cache = b->kv_cache;
    m->staging = 0;
    m->pinned_host = mul(2, chunk, &ovf);
    /* mmapped tensors are dropped after upload: one tensor resident at a time */
    m->host_rss = add(add(b->host_base, b->largest_tensor, &ovf), m->pinned_host, &ovf);
    m->vram_peak = add(add(m->weights, m->activations, &ovf), m->kv_cache, &ovf);

    m = &p->mode[MEM_MODE_LIGHTWEIGHT];
    /* with a single block there is nothing to stream: lightweight = beefy */
    uint64_t window = b->n_blocks >= 2 ? mul(2, b->block_bytes, &ovf) : blocks_all;
    m->possible = b->gpu_ok;
    m->weights = add(add(b->resident_bytes, window, &ovf), b->align_slack, &ovf);
    m->activations = b->activations;
    m->kv_cache = b->kv_cache;
    m->staging = 0;
    m->pinned_host = blocks_all;
    m->host_rss = add(add(b->host_base, b->largest_tensor, &ovf), blocks_all, &ovf);
    m->vram_peak = add(add(m->weights, m->activations, &ovf), m->kv_cache, &ovf);

    m = &p->mode[MEM_MODE_CPU];
    m->possible = b->cpu_ok;
    m->weights = 0;
    m->activations = b->activations;
    m->kv_cache = b->kv_cache;
    m->host_rss = add(add(add(b->host_base, p->weights_total, &ovf), b->activations, &ovf), b->kv_cache, &ovf);
    m->vram_peak = 0;
    if (ovf) return iso_fail(ISO_EDATA, "memory plan for '%s': sizes overflow 64 bits", p->model);
    return 0;
}

uint64_t plan_room(const struct plan_env *e)
{
    uint64_t take = e->vram_reserve + e->others_pending;
    if (take < e->vram_reserve) return 0;   /* overflow: no room */
    return e->vram_free > take ? e->vram_free - take : 0;
}

static double mib(uint64_t b) { return b / (double)MIB; }

static int fits(const struct mem_plan *p, enum mem_mode m, const struct plan_env *e)
{
    const struct plan_mode *pm = &p->mode[m];
    return pm->possible && pm->vram_peak <= plan_room(e) && pm->pinned_host <= e->host_budget;
}

/* the message for a GPU mode that does not fit */
static int no_room(const struct mem_plan *p, enum mem_mode m, const struct plan_env *e)
{
    const struct plan_mode *pm = &p->mode[m];
    if (pm->pinned_host > e->host_budget)
        return iso_fail(ISO_ETEMPFAIL, "%s mode needs %.1f MiB of pinned host memory, %.1f MiB available",
                        mem_mode_name(m), mib(pm->pinned_host), mib(e->host_budget));
    return iso_fail(ISO_ETEMPFAIL,
                    "%s mode needs %.1f MiB of VRAM, %.1f MiB usable (free %.1f MiB - reserve %.1f MiB - "
                    "other isopipe reservations %.1f MiB)",
                    mem_mode_name(m), mib(pm->vram_peak), mib(plan_room(e)), mib(e->vram_free),
                    mib(e->vram_reserve), mib(e->others_pending));
}

int plan_decide(const struct mem_plan *p, enum mem_mode requested, const struct plan_env *e, enum mem_mode *out)
{
    *out = MEM_MODE_AUTO;
    switch (requested) {
    case MEM_MODE_AUTO:
        if (!e->gpu || (p->blocks.gpu_explicit_only && p->mode[MEM_MODE_CPU].possible)) {
            if (!p->mode[MEM_MODE_CPU].possible)
                return iso_fail(ISO_EUNAVAIL, "no GPU, and '%s' has no CPU path", p->model);
            *out = MEM_MODE_CPU;
            return 0;
        }
        if (fits(p, MEM_MODE_BEEFY, e)) { *out = MEM_MODE_BEEFY; return 0; }
        if (fits(p, MEM_MODE_LIGHTWEIGHT, e)) { *out = MEM_MODE_LIGHTWEIGHT; return 0; }
        if (!p->mode[MEM_MODE_LIGHTWEIGHT].possible) {
            if (p->mode[MEM_MODE_BEEFY].possible) return no_room(p, MEM_MODE_BEEFY, e);
            if (p->mode[MEM_MODE_CPU].possible) { *out = MEM_MODE_CPU; return 0; }
            return iso_fail(ISO_EUNAVAIL, "'%s' has no usable mode", p->model);
        }
        return no_room(p, MEM_MODE_LIGHTWEIGHT, e);
    case MEM_MODE_BEEFY:
    case MEM_MODE_LIGHTWEIGHT:
        if (!p->mode[requested].possible)
            return iso_fail(ISO_EUNAVAIL, "'%s' cannot run in %s mode", p->model, mem_mode_name(requested));
        if (!e->gpu) return iso_fail(ISO_EUNAVAIL, "%s mode needs a GPU and there is none", mem_mode_name(requested));
        if (!fits(p, requested, e)) return no_room(p, requested, e);
        *out = requested;
        return 0;
    case MEM_MODE_CPU:
        if (!p->mode[MEM_MODE_CPU].possible)
            return iso_fail(ISO_EUNAVAIL, "'%s' cannot run in cpu mode", p->model);
        *out = MEM_MODE_CPU;
        return 0;
    }
    return iso_fail(ISO_EINTERNAL, "unknown memory mode %d", (int)requested);
}

static json_t *mode_json(const struct plan_mode *m)
{
    return json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "possible", m->possible, "weights",
                     (json_int_t)m->weights, "activations", (json_int_t)m->activations, "kv_cache",
                     (json_int_t)m->kv_cache, "staging", (json_int_t)m->staging, "pinned_host",
                     (json_int_t)m->pinned_host, "host_rss", (json_int_t)m->host_rss, "vram_peak",
                     (json_int_t)m->vram_peak);
}

json_t *plan_to_json(const struct mem_plan *p)
{
    const struct plan_blocks *b = &p->blocks;
    json_t *blocks = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I}", "n_blocks", (json_int_t)b->n_blocks,
                               "block_bytes", (json_int_t)b->block_bytes, "resident_bytes",
                               (json_int_t)b->resident_bytes, "largest_tensor", (json_int_t)b->largest_tensor,
                               "activations", (json_int_t)b->activations, "kv_cache", (json_int_t)b->kv_cache,
                               "host_base", (json_int_t)b->host_base, "align_slack", (json_int_t)b->align_slack,
                               "upload_extra", (json_int_t)b->upload_extra);
    json_t *modes = json_object();
    for (int m = MEM_MODE_BEEFY; m <= MEM_MODE_CPU; m++)
        json_object_set_new(modes, mem_mode_name((enum mem_mode)m), mode_json(&p->mode[m]));
    return json_pack("{s:s, s:I, s:o, s:o, s:b}", "model", p->model, "weights_total", (json_int_t)p->weights_total,
                     "blocks", blocks, "modes", modes, "gpu_auto", b->gpu_ok && !b->gpu_explicit_only);
}

/* block index from a tensor name: the number after a "blocks." or
 * "layers." component, -1 when there is none */
static int64_t name_block(const char *name)
{
    static const char *const keys[] = { "blocks.", "layers." };
    for (int k = 0; k < 2; k++) {
        size_t kl = strlen(keys[k]);
        for (const char *p = name; (p = strstr(p, keys[k])); p += kl) {
            if (p != name && p[-1] != '.') continue;
            const char *d = p + kl;
            if (*d < '0' || *d > '9') continue;
            int64_t v = 0;
            while (*d >= '0' && *d <= '9' && v <= 1000000) v = v * 10 + (*d++ - '0');
            if (*d != '.' && *d != 0) continue;
            return v;
        }
    }
    return -1;
}

int plan_blocks_from_weights(const struct weights *w, struct plan_blocks *b, int64_t *block_of)
{
    int rc = 0;
    uint64_t *sums = NULL;
    int64_t nb = 0;
    size_t n = weights_count(w);
    memset(b, 0, sizeof *b);
    for (size_t i = 0; i < n; i++) {
        const struct wt_tensor *t = weights_at(w, i);
        int64_t k = name_block(t->name);
        if (k > 1000000) return iso_fail(ISO_EDATA, "tensor '%s': block index too large", t->name);
        if (k + 1 > nb) nb = k + 1;
        if (block_of) block_of[i] = k;
        if (t->nbytes > b->largest_tensor) b->largest_tensor = t->nbytes;
    }
    sums = calloc(nb ? (size_t)nb : 1, sizeof *sums);
    if (!sums) return iso_fail(ISO_EINTERNAL, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const struct wt_tensor *t = weights_at(w, i);
        int64_t k = name_block(t->name);
        uint64_t *acc = k >= 0 ? &sums[k] : &b->resident_bytes;
        if (__builtin_add_overflow(*acc, t->nbytes, acc)) {
            rc = iso_fail(ISO_EDATA, "tensor sizes overflow");
            goto done;
        }
    }
    b->n_blocks = (uint64_t)nb;
    b->align_slack = (uint64_t)n * 256;   /* < 2^32 tensors: no overflow */
    for (int64_t k = 0; k < nb; k++)
        if (sums[k] > b->block_bytes) b->block_bytes = sums[k];
done:
    free(sums);
    return rc;
}
