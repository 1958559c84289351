/* umt5.c — the umT5 encoder (umt5.h): layouts as name tables, the config,
 * and one forward over nn_* calls. */
#include "umt5.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "err.h"
#include "nn_wres.h"

/* roles of a layer's tensors, and of the rest */
enum { R_NORM1, R_Q, R_K, R_V, R_O, R_RELB, R_NORM2, R_WI0, R_WI1, R_WO, R_NLAYER };
enum { R_EMB, R_FNORM, R_NTOP };

/* a layout: the names a file gives each role ("%d" = the layer) */
struct layout {
    const char *name;
    const char *top[R_NTOP];
    const char *layer[R_NLAYER];
};

static const struct layout layouts[] = {
    { "huggingface", { "shared.weight", "encoder.final_layer_norm.weight" },
      { "encoder.block.%d.layer.0.layer_norm.weight", "encoder.block.%d.layer.0.SelfAttention.q.weight",
        "encoder.block.%d.layer.0.SelfAttention.k.weight", "encoder.block.%d.layer.0.SelfAttention.v.weight",
        "encoder.block.%d.layer.0.SelfAttention.o.weight",
        "encoder.block.%d.layer.0.SelfAttention.relative_attention_bias.weight",
        "encoder.block.%d.layer.1.layer_norm.weight", "encoder.block.%d.layer.1.DenseReluDense.wi_0.weight",
        "encoder.block.%d.layer.1.DenseReluDense.wi_1.weight", "encoder.block.%d.layer.1.DenseReluDense.wo.weight" } },
    /* Wan2.1 wan/modules/t5.py: ffn.gate.0 is the GELU branch (wi_0), fc1 the linear one */
    { "wan", { "token_embedding.weight", "norm.weight" },
      { "blocks.%d.norm1.weight", "blocks.%d.attn.q.weight", "blocks.%d.attn.k.weight", "blocks.%d.attn.v.weight",
        "blocks.%d.attn.o.weight", "blocks.%d.pos_embedding.embedding.weight", "blocks.%d.norm2.weight",
        "blocks.%d.ffn.gate.0.weight", "blocks.%d.ffn.fc1.weight", "blocks.%d.ffn.fc2.weight" } },
    /* llama.cpp's T5 names (city96's umT5 GGUF): ffn_gate is the GELU branch */
    { "gguf", { "token_embd.weight", "enc.output_norm.weight" },
      { "enc.blk.%d.attn_norm.weight", "enc.blk.%d.attn_q.weight", "enc.blk.%d.attn_k.weight",
        "enc.blk.%d.attn_v.weight", "enc.blk.%d.attn_o.weight", "enc.blk.%d.attn_rel_b.weight",
        "enc.blk.%d.ffn_norm.weight", "enc.blk.%d.ffn_gate.weight", "enc.blk.%d.ffn_up.weight",
        "enc.blk.%d.ffn_down.weight" } },
};
/* prefixes single-file exports put before the names */
static const char *const prefixes[] = { "", "encoder.", "text_encoders.umt5xxl.transformer.", "model.", NULL };

struct layer_w {
    struct nn_w norm1;       /* (d_model) */
    struct nn_w q, k, v;     /* (H*d_kv, d_model) */
    struct nn_w o;           /* (d_model, H*d_kv) */
    float *relb;             /* (n_buckets, H), converted once: a gather table, not a matrix */
    struct nn_w norm2;       /* (d_model) */
    struct nn_w wi0, wi1;    /* (d_ff, d_model) */
    struct nn_w wo;          /* (d_model, d_ff) */
};

/* Backend activations of a batch (device memory on NN_CUDA): each
 * sequence's residual stream at its own 256-byte aligned offset of x (the
 * alignment nn_alloc gives), the per-layer tables of relative-position bias
 * likewise in tab, the rest sized for the longest sequence and reused by
 * each in turn. */
struct ws {
    float *x;                /* sum over b of (L_b, d_model) residual streams */
    float *tab;              /* sum over b of (H, 2 L_b - 1): one layer's bias per head and distance */
    float *h;                /* (L, d_model) normed */
    float *q, *k, *v, *att;  /* (L, H*d_kv) */
    float *g, *u;            /* (L, d_ff) */
    float *o;                /* (L, d_model) */
    float *bias;             /* (H, L, L) relative position bias of one layer */
    int Lmax;
    size_t x_n, tab_n;       /* floats */
};

struct umt5 {
    struct umt5_config c;
    const struct layout *lay;
    const char *prefix;
    char layout_name[32];
    struct nn_w emb;         /* (vocab_rows, d_model) */
    struct nn_w fnorm;       /* (d_model) */
    struct layer_w *l;
    uint64_t layer_bytes, resident_bytes, largest, emb_bytes;
    struct nn_wres *wres;    /* where the weights live (umt5_wres_register), or NULL */
    struct ws ws;            /* activations reserved by umt5_reserve on ws_nn */
    struct nn *ws_nn;
};

const struct umt5_config *umt5_config(const struct umt5 *m) { return &m->c; }
const char *umt5_layout(const struct umt5 *m) { return m->layout_name; }

void umt5_sizes(const struct umt5 *m, uint64_t *layer, uint64_t *resident, uint64_t *largest)
{
    *layer = m->layer_bytes;
    *resident = m->resident_bytes;
    *largest = m->largest;
}

int umt5_bucket(int rel, int n_buckets, int max_distance)
{
    /* transformers UMT5Attention._relative_position_bucket, bidirectional:
     * half the buckets per direction, exact below max_exact, logarithmic up
     * to max_distance; the log in float32 as torch computes it */
    int nb = n_buckets / 2;
    int ret = rel > 0 ? nb : 0;
    int a = rel < 0 ? -rel : rel;
    int max_exact = nb / 2;
    if (a < max_exact) return ret + a;
    float lr = logf((float)a / (float)max_exact) / (float)log((double)max_distance / (double)max_exact);
    lr = lr * (float)(nb - max_exact);
    int large = max_exact + (int)lr;
    if (large > nb - 1) large = nb - 1;
    return ret + large;
}

/* find prefix + name(layer) with the given shape (-1: any, written back) */
static int get(const struct weights *w, const struct umt5 *m, const char *pat, int layer, int nd, int64_t *shape,
               const struct wt_tensor **t)
{
    char name[256];
    snprintf(name, sizeof name, pat, layer);
    return weights_expect(w, m->prefix, name, nd, shape, t);
}

/* a weight view; ComfyUI's scaled fp8 keeps the per-tensor scale beside it */
static int view(const struct weights *w, const struct umt5 *m, const struct wt_tensor *t, struct nn_w *out)
{
    *out = nn_w_of(t);
    if (t->dtype != WT_F32 && t->dtype != WT_F16 && t->dtype != WT_BF16 && t->dtype != WT_F8_E4M3 &&
        t->dtype != WT_F8_E5M2)
        return iso_fail(ISO_EUNAVAIL, "'%s': tensor '%s' is %s; text-encode reads float32, float16, bfloat16 and "
                        "scaled fp8 weights (not quantized GGUF types)", weights_path(w), t->name,
                        wt_dtype_name(t->dtype));
    if (t->dtype == WT_F8_E4M3 || t->dtype == WT_F8_E5M2) {
        char sname[300];
        size_t l = strlen(t->name);
        if (l < 6 || strcmp(t->name + l - 6, "weight"))
            return iso_fail(ISO_EDATA, "'%s': fp8 tensor '%s' without a scale", weights_path(w), t->name);
        snprintf(sname, sizeof sname, "%.*sscale_weight", (int)(l - 6), t->name);
        const struct wt_tensor *s = weights_find(w, sname);
        if (!s || s->nelem != 1)
            return iso_fail(ISO_EDATA, "'%s': fp8 tensor '%s' without a one-element '%s'", weights_path(w), t->name, sname);
        float f;
        int rc = weights_to_f32(s, 0, 1, &f);
        if (rc) return rc;
        if (!isfinite(f) || f <= 0) return iso_fail(ISO_EDATA, "'%s': '%s' is %g", weights_path(w), sname, (double)f);
        out->scale = f;
    }
    (void)m;
    return 0;
}

static int read_config(const char *path, struct umt5_config *c)
{
    json_error_t e;
    json_t *j = json_load_file(path, 0, &e);
    if (!j || !json_is_object(j)) {
        json_decref(j);
        return iso_fail(ISO_EDATA, "'%s': not JSON (line %d: %s)", path, e.line, e.text);
    }
    int rc = 0;
    struct { const char *key; int *dst; int req; } ints[] = {
        { "d_model", &c->d_model, 1 }, { "num_heads", &c->n_heads, 1 }, { "d_kv", &c->d_kv, 1 },
        { "num_layers", &c->n_layers, 1 }, { "d_ff", &c->d_ff, 1 },
        { "relative_attention_num_buckets", &c->n_buckets, 0 }, { "relative_attention_max_distance", &c->max_distance, 0 },
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        json_t *v = json_object_get(j, ints[i].key);
        if (!v && !ints[i].req) continue;
        if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > (1 << 20)) {
            rc = iso_fail(ISO_EDATA, "'%s': '%s' missing or out of range", path, ints[i].key);
            goto done;
        }
        *ints[i].dst = (int)json_integer_value(v);
    }
    json_t *eps = json_object_get(j, "layer_norm_epsilon");
    if (eps) {
        if (!json_is_number(eps) || json_number_value(eps) <= 0 || json_number_value(eps) > 1) {
            rc = iso_fail(ISO_EDATA, "'%s': 'layer_norm_epsilon' out of range", path);
            goto done;
        }
        c->eps = (float)json_number_value(eps);
    }
    const char *ff = json_string_value(json_object_get(j, "feed_forward_proj"));
    if (ff && strcmp(ff, "gated-gelu"))
        rc = iso_fail(ISO_EDATA, "'%s': feed_forward_proj '%s' (umT5 is gated-gelu)", path, ff);
    snprintf(c->source, sizeof c->source, "config.json");
done:
    json_decref(j);
    return rc;
}

int umt5_open(const struct weights *w, const char *config_json, struct umt5 **out)
{
    *out = NULL;
    struct umt5 *m = calloc(1, sizeof *m);
    if (!m) return iso_fail(ISO_EINTERNAL, "out of memory");
    int rc = 0;
    /* the layout whose embedding name some prefix completes */
    for (size_t i = 0; i < sizeof layouts / sizeof layouts[0] && !m->lay; i++) {
        char probe[128];
        snprintf(probe, sizeof probe, layouts[i].layer[R_Q], 0);
        const char *p = weights_detect_prefix(w, probe, prefixes);
        if (p) { m->lay = &layouts[i]; m->prefix = p; }
    }
    if (!m->lay) {
        rc = iso_fail(ISO_EDATA, "'%s': not a umT5 encoder (no tensor named like "
                      "'encoder.block.0.layer.0.SelfAttention.q.weight', 'blocks.0.attn.q.weight' or 'enc.blk.0.attn_q.weight')",
                      weights_path(w));
        goto fail;
    }
    snprintf(m->layout_name, sizeof m->layout_name, "%s", m->lay->name);
    if (!strcmp(m->lay->name, "huggingface") && weights_find(w, "scaled_fp8"))
        snprintf(m->layout_name, sizeof m->layout_name, "comfyui-fp8-scaled");
    struct umt5_config *c = &m->c;
    /* T5 defaults (transformers UMT5Config) for what neither file nor shape says */
    c->max_distance = 128;
    c->eps = 1e-6f;
    c->n_buckets = 0;
    snprintf(c->source, sizeof c->source, "tensor shapes + T5 defaults");
    if (config_json && (rc = read_config(config_json, c))) goto fail;
    /* the embedding: HF files may only hold the encoder's tied copy */
    const struct wt_tensor *t;
    int64_t sh[2] = { -1, -1 };
    const char *embname = m->lay->top[R_EMB];
    if (!strcmp(m->lay->name, "huggingface") && !weights_find(w, "shared.weight")) {
        char full[256];
        snprintf(full, sizeof full, "%sshared.weight", m->prefix);
        if (!weights_find(w, full)) embname = "encoder.embed_tokens.weight";
    }
    if (!strcmp(m->lay->name, "huggingface") && !strcmp(m->prefix, "encoder.") && !strcmp(embname, "shared.weight"))
        embname = "embed_tokens.weight";
    if ((rc = weights_expect(w, m->prefix, embname, 2, sh, &t))) goto fail;
    if (sh[0] < 1 || sh[1] < 1 || sh[0] > (1 << 24) || sh[1] > (1 << 16)) { rc = iso_fail(ISO_EDATA, "'%s': embedding of %lldx%lld", weights_path(w), (long long)sh[0], (long long)sh[1]); goto fail; }
    if (config_json && sh[1] != c->d_model) {
        rc = iso_fail(ISO_EDATA, "'%s': embedding width %lld, config.json d_model %d", weights_path(w), (long long)sh[1], c->d_model);
        goto fail;
    }
    c->vocab_rows = (int)sh[0];
    c->d_model = (int)sh[1];
    if ((rc = view(w, m, t, &m->emb))) goto fail;
    m->resident_bytes = t->nbytes;
    m->emb_bytes = t->nbytes;
    m->largest = t->nbytes;
    if (!config_json) {
        /* layers: count them; heads and buckets from the relative bias; d_kv and d_ff from q and wi_0 */
        char nm[256];
        int n = 0;
        for (;; n++) {
            char full[300];
            snprintf(nm, sizeof nm, m->lay->layer[R_Q], n);
            snprintf(full, sizeof full, "%s%s", m->prefix, nm);
            if (!weights_find(w, full) || n > 4096) break;
        }
        c->n_layers = n;
        int64_t rb[2] = { -1, -1 }, q[2] = { -1, c->d_model }, ff[2] = { -1, c->d_model };
        if ((rc = get(w, m, m->lay->layer[R_RELB], 0, 2, rb, &t)) || (rc = get(w, m, m->lay->layer[R_Q], 0, 2, q, &t)) ||
            (rc = get(w, m, m->lay->layer[R_WI0], 0, 2, ff, &t)))
            goto fail;
        c->n_buckets = (int)rb[0];
        c->n_heads = (int)rb[1];
        if (c->n_heads < 1 || q[0] % c->n_heads) {
            rc = iso_fail(ISO_EDATA, "'%s': %lld query rows do not split into %d heads", weights_path(w), (long long)q[0], c->n_heads);
            goto fail;
        }
        c->d_kv = (int)(q[0] / c->n_heads);
        c->d_ff = (int)ff[0];
    } else if (!c->n_buckets) {
        c->n_buckets = 32;
    }
    if (c->n_layers < 1 || c->n_heads < 1 || c->d_kv < 1 || c->d_ff < 1 || c->n_buckets < 2 || c->max_distance < 2 ||
        (int64_t)c->n_heads * c->d_kv > (1 << 20)) {
        rc = iso_fail(ISO_EDATA, "'%s': implausible umT5 config (%d layers, %d heads x %d, %d buckets)", weights_path(w),
                      c->n_layers, c->n_heads, c->d_kv, c->n_buckets);
        goto fail;
    }
    int64_t fn[1] = { c->d_model };
    if ((rc = weights_expect(w, m->prefix, m->lay->top[R_FNORM], 1, fn, &t)) || (rc = view(w, m, t, &m->fnorm))) goto fail;
    m->resident_bytes += t->nbytes;
    m->l = calloc((size_t)c->n_layers, sizeof *m->l);
    if (!m->l) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto fail; }
    int64_t inner = (int64_t)c->n_heads * c->d_kv;
    for (int i = 0; i < c->n_layers; i++) {
        struct layer_w *L = &m->l[i];
        struct { int role; int nd; int64_t s0, s1; struct nn_w *dst; } spec[] = {
            { R_NORM1, 1, c->d_model, 0, &L->norm1 }, { R_Q, 2, inner, c->d_model, &L->q },
            { R_K, 2, inner, c->d_model, &L->k }, { R_V, 2, inner, c->d_model, &L->v },
            { R_O, 2, c->d_model, inner, &L->o }, { R_NORM2, 1, c->d_model, 0, &L->norm2 },
            { R_WI0, 2, c->d_ff, c->d_model, &L->wi0 }, { R_WI1, 2, c->d_ff, c->d_model, &L->wi1 },
            { R_WO, 2, c->d_model, c->d_ff, &L->wo },
        };
        uint64_t bytes = 0;
        for (size_t k = 0; k < sizeof spec / sizeof spec[0]; k++) {
            int64_t s[2] = { spec[k].s0, spec[k].s1 };
            if ((rc = get(w, m, m->lay->layer[spec[k].role], i, spec[k].nd, s, &t)) || (rc = view(w, m, t, spec[k].dst)))
                goto fail;
            bytes += t->nbytes;
            if (t->nbytes > m->largest) m->largest = t->nbytes;
        }
        int64_t rb[2] = { c->n_buckets, c->n_heads };
        if ((rc = get(w, m, m->lay->layer[R_RELB], i, 2, rb, &t))) goto fail;
        bytes += t->nbytes;
        L->relb = malloc((size_t)c->n_buckets * (size_t)c->n_heads * sizeof *L->relb);
        if (!L->relb) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto fail; }
        if ((rc = weights_to_f32(t, 0, t->nelem, L->relb))) goto fail;
        if (bytes > m->layer_bytes) m->layer_bytes = bytes;
    }
    *out = m;
    return 0;
fail:
    umt5_free(&m);
    return rc;
}

void umt5_free(struct umt5 **mp)
{
    struct umt5 *m = *mp;
    if (!m) return;
    for (int i = 0; m->l && i < m->c.n_layers; i++) free(m->l[i].relb);
    free(m->l);
    free(m);
    *mp = NULL;
}

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

/* floats of x and tab for one sequence of L tokens */
static size_t x_floats(const struct umt5_config *c, int L) { return up64((size_t)L * (size_t)c->d_model); }
static size_t tab_floats(const struct umt5_config *c, int L) { return up64((size_t)c->n_heads * (size_t)(2 * L - 1)); }

uint64_t umt5_scratch_bytes(const struct umt5_config *c, int Lmax, int tokens, int B)
{
    uint64_t R = (uint64_t)Lmax, inner = (uint64_t)c->n_heads * (uint64_t)c->d_kv;
    uint64_t f = R * (2 * (uint64_t)c->d_model + 4 * inner + 2 * (uint64_t)c->d_ff) +
                 (uint64_t)c->n_heads * R * R +
                 (uint64_t)tokens * (uint64_t)c->d_model + (uint64_t)c->n_heads * 2 * (uint64_t)tokens +
                 2 * 64 * (uint64_t)B;
    return f * sizeof(float) + 11 * 256;   /* + each of the 11 buffers' 256-byte alignment on NN_CUDA */
}

static void ws_release(struct nn *nn, struct ws *s)
{
    nn_release(nn, &s->x);
    nn_release(nn, &s->tab);
    nn_release(nn, &s->h);
    nn_release(nn, &s->o);
    nn_release(nn, &s->q);
    nn_release(nn, &s->k);
    nn_release(nn, &s->v);
    nn_release(nn, &s->att);
    nn_release(nn, &s->g);
    nn_release(nn, &s->u);
    nn_release(nn, &s->bias);
    memset(s, 0, sizeof *s);
}

static int ws_alloc(const struct umt5_config *c, struct nn *nn, struct ws *s, int Lmax, size_t x_n, size_t tab_n)
{
    size_t L = (size_t)Lmax, d = (size_t)c->d_model, inner = (size_t)c->n_heads * (size_t)c->d_kv, F = (size_t)c->d_ff;
    memset(s, 0, sizeof *s);
    s->x = nn_alloc(nn, x_n);
    s->tab = nn_alloc(nn, tab_n);
    s->h = nn_alloc(nn, L * d);
    s->o = nn_alloc(nn, L * d);
    s->q = nn_alloc(nn, L * inner);
    s->k = nn_alloc(nn, L * inner);
    s->v = nn_alloc(nn, L * inner);
    s->att = nn_alloc(nn, L * inner);
    s->g = nn_alloc(nn, L * F);
    s->u = nn_alloc(nn, L * F);
    s->bias = nn_alloc(nn, (size_t)c->n_heads * L * L);
    if (!s->x || !s->tab || !s->h || !s->o || !s->q || !s->k || !s->v || !s->att || !s->g || !s->u || !s->bias) {
        ws_release(nn, s);
        return iso_wrap(ISO_ETEMPFAIL, "activations of the encoder (%d tokens)", Lmax);
    }
    s->Lmax = Lmax;
    s->x_n = x_n;
    s->tab_n = tab_n;
    return 0;
}

int umt5_reserve(struct umt5 *m, struct nn *nn, int Lmax, int tokens, int B)
{
    umt5_release(m, nn);
    size_t x_n = (size_t)tokens * (size_t)m->c.d_model + 64 * (size_t)B;
    size_t tab_n = (size_t)m->c.n_heads * 2 * (size_t)tokens + 64 * (size_t)B;
    int rc = ws_alloc(&m->c, nn, &m->ws, Lmax, x_n, tab_n);
    if (!rc) m->ws_nn = nn;
    return rc;
}

void umt5_release(struct umt5 *m, struct nn *nn)
{
    if (m->ws_nn == nn && nn) ws_release(nn, &m->ws);
    m->ws_nn = NULL;
}

int umt5_wres_register(struct umt5 *m, struct nn_wres *r)
{
    m->wres = NULL;
    if (!r) return 0;
    const struct umt5_config *c = &m->c;
    size_t d = (size_t)c->d_model, inner = (size_t)c->n_heads * (size_t)c->d_kv, F = (size_t)c->d_ff;
    int rc = nn_wres_add(r, -1, &m->fnorm, d);
    for (int i = 0; i < c->n_layers && !rc; i++) {
        struct layer_w *L = &m->l[i];
        struct { struct nn_w *w; size_t n; } f[] = {
            { &L->norm1, d }, { &L->q, inner * d }, { &L->k, inner * d }, { &L->v, inner * d }, { &L->o, d * inner },
            { &L->norm2, d }, { &L->wi0, F * d }, { &L->wi1, F * d }, { &L->wo, d * F },
        };
        for (size_t k = 0; k < sizeof f / sizeof f[0] && !rc; k++) rc = nn_wres_add(r, i, f[k].w, f[k].n);
    }
    if (!rc) m->wres = r;
    return rc;
}

uint64_t umt5_host_bytes(const struct umt5 *m)
{
    return m->emb_bytes + (uint64_t)m->c.n_layers * (uint64_t)m->c.n_buckets * (uint64_t)m->c.n_heads * sizeof(float);
}

/* The B sequences layer by layer (so that a streamed layer is brought to the
 * device once per batch), each sequence's ops on exactly its own L rows, in
 * the same calls as if it were alone. Host-side work: the embedding rows
 * gathered from the mapping and uploaded, and per layer the bias per head
 * and relative distance gathered from the layer's float32 bucket table
 * (H x (2L - 1) values a sequence) and uploaded; nn_relpos_bias expands it
 * to [H, L, L] on the backend. */
static int encode(struct umt5 *m, struct nn *nn, const int32_t *const *ids, const int *lens, int B, float **out)
{
    const struct umt5_config *c = &m->c;
    int d = c->d_model, H = c->n_heads, D = c->d_kv, inner = H * D, F = c->d_ff;
    int Lmax = 1, rc = 0;
    size_t x_n = 0, tab_n = 0, nbk = 0;
    for (int b = 0; b < B; b++) {
        if (lens[b] > Lmax) Lmax = lens[b];
        x_n += x_floats(c, lens[b]);
        tab_n += tab_floats(c, lens[b]);
        nbk += (size_t)(2 * lens[b] - 1);
    }
    struct ws tmp = { 0 }, *s = &m->ws;
    if (m->ws_nn != nn || m->ws.Lmax < Lmax || m->ws.x_n < x_n || m->ws.tab_n < tab_n) {
        /* no reservation that holds this batch: one for the call */
        if ((rc = ws_alloc(c, nn, &tmp, Lmax, x_n, tab_n))) return rc;
        s = &tmp;
    }
    float *hx = malloc((size_t)Lmax * (size_t)d * sizeof *hx), *htab = malloc(tab_n * sizeof *htab);
    int *bucket = malloc(nbk * sizeof *bucket);
    if (!hx || !htab || !bucket) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    /* the embedding rows, gathered on the host from the mapping */
    size_t xo = 0, bo = 0;
    for (int b = 0; b < B; b++) {
        int L = lens[b];
        for (int i = 0; i < L; i++) nn_w_to_f32(&m->emb, (size_t)ids[b][i] * (size_t)d, (size_t)d, hx + (size_t)i * d);
        if ((rc = nn_upload(nn, s->x + xo, hx, (size_t)L * d))) goto done;
        xo += x_floats(c, L);
        for (int r = 0; r < 2 * L - 1; r++) bucket[bo + (size_t)r] = umt5_bucket(r - (L - 1), c->n_buckets, c->max_distance);
        bo += (size_t)(2 * L - 1);
    }
    for (int l = 0; l < c->n_layers; l++) {
        if (m->wres && (rc = nn_wres_enter(m->wres, l))) goto done;
        const struct layer_w *W = &m->l[l];
        /* htab[b][h][r] = relb[bucket(r - (L_b - 1))][h] */
        size_t to = 0;
        bo = 0;
        for (int b = 0; b < B; b++) {
            int n = 2 * lens[b] - 1;
            for (int h = 0; h < H; h++)
                for (int r = 0; r < n; r++) htab[to + (size_t)h * n + r] = W->relb[(size_t)bucket[bo + (size_t)r] * H + h];
            to += tab_floats(c, lens[b]);
            bo += (size_t)n;
        }
        if ((rc = nn_upload(nn, s->tab, htab, to))) goto done;
        xo = 0;
        to = 0;
        for (int b = 0; b < B; b++) {
            int L = lens[b];
            float *x = s->x + xo;
            nn_relpos_bias(nn, s->bias, s->tab + to, H, L, L);
            nn_rmsnorm(nn, s->h, x, L, d, &W->norm1, c->eps);
            nn_linear(nn, s->q, s->h, L, d, inner, &W->q, NULL);
            nn_linear(nn, s->k, s->h, L, d, inner, &W->k, NULL);
            nn_linear(nn, s->v, s->h, L, d, inner, &W->v, NULL);
            /* T5: no 1/sqrt(d_kv) scaling */
            nn_attention(nn, s->att, s->q, s->k, s->v, L, L, H, D, 1.0f, s->bias, L);
            nn_linear(nn, s->o, s->att, L, inner, d, &W->o, NULL);
            nn_add(nn, x, x, s->o, (size_t)L * d);
            nn_rmsnorm(nn, s->h, x, L, d, &W->norm2, c->eps);
            nn_linear(nn, s->g, s->h, L, d, F, &W->wi0, NULL);
            nn_act(nn, s->g, s->g, (size_t)L * F, NN_ACT_GELU_TANH);
            nn_linear(nn, s->u, s->h, L, d, F, &W->wi1, NULL);
            nn_mul(nn, s->g, s->g, s->u, (size_t)L * F);
            nn_linear(nn, s->o, s->g, L, F, d, &W->wo, NULL);
            nn_add(nn, x, x, s->o, (size_t)L * d);
            xo += x_floats(c, L);
            to += tab_floats(c, L);
        }
    }
    xo = 0;
    for (int b = 0; b < B && !rc; b++) {
        nn_rmsnorm(nn, s->h, s->x + xo, lens[b], d, &m->fnorm, c->eps);
        rc = nn_download(nn, out[b], s->h, (size_t)lens[b] * d);
        xo += x_floats(c, lens[b]);
    }
done:
    free(hx);
    free(htab);
    free(bucket);
    if (s == &tmp) ws_release(nn, &tmp);
    return rc;
}

/* A padded batch is encoded sequence by sequence, each on its own rows
 * only: padding is never computed, so it cannot reach the output. Sharing
 * one GEMM across the batch would not keep that promise bit for bit:
 * OpenBLAS's sgemm rounds a row differently depending on how many rows the
 * call has (measured: the tiny fixtures' states differed in the last bits). */
int umt5_encode_batch(struct umt5 *m, struct nn *nn, const int32_t *const *ids, const int *lens, int B, float **out)
{
    if (B < 1) return iso_fail(ISO_EINTERNAL, "umt5: nothing to encode");
    for (int b = 0; b < B; b++)
        if (lens[b] < 1) return iso_fail(ISO_EINTERNAL, "umt5: an empty sequence");
    return encode(m, nn, ids, lens, B, out);
}
