/* llm.c — decoder-only transformer forward pass on the CPU (llama, qwen2).
 * Reading order as in llama2.c: the hyper-parameters (struct llm's scalars,
 * from GGUF metadata), the weights (pointers into the mmapped GGUF, never
 * copied), the run state (scratch, KV cache), then the forward pass.
 *
 * The graph is llama.cpp's build_llama / build_qwen2 (llama-model.cpp):
 *   x = tok_embd[token]
 *   per layer: h = rms_norm(x) * attn_norm
 *              q, k, v = Wq h (+bq), Wk h (+bk), Wv h (+bv)      qwen2 has the biases
 *              rope(q), rope(k)  at the token's position
 *              x += Wo attention(q, K cache, V cache)            grouped-query: n_head / n_head_kv
 *              h = rms_norm(x) * ffn_norm
 *              x += Wdown (silu(Wgate h) * Wup h)                SwiGLU
 *   logits = output (or tok_embd when tied) rms_norm(x) * output_norm
 * RoPE layout: llama.cpp's converter permutes llama's Q/K rows so that the
 * "normal" rope rotates adjacent pairs (2i, 2i+1); qwen2 is converted
 * unpermuted and uses NEOX rope, pairs (i, i + n_rot/2) (llama_model_rope_type).
 * Numerics follow ggml's CPU backend where it is cheap to do so: activations
 * are quantised to 8 bits per block for the quantised matmuls, the KV cache
 * and the attention query are half precision.
 * On the CPU, matrices of Q4_0/Q4_1/Q5_0/Q8_0/Q4_K/Q6_K are repacked at load into
 * the x8 layout (quant.h: eight rows interleaved) and the
 * mapping's pages of the originals are dropped, so the weights stay resident
 * once (ISOPIPE_NO_X8=1 keeps the file's layout). */
#include "llm.h"
#include "err.h"
#include "quant.h"
#include "cli.h"
#include "gpu.h"
#include "log.h"
#ifdef ISOPIPE_CUDA
#include "llm_cuda.h"
#include "stream.h"
#endif
#include <sys/mman.h>
#include <unistd.h>

#include <math.h>
#include <pthread.h>

#include "pool.h"
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#else
#define CPU_RELAX() ((void)0)
#endif

#define LLM_BATCH 32          /* tokens per forward chunk (prompt processing) */
#define LLM_MAX_THREADS 64


/* ---- the model ---- */
struct llm_layer {
    const struct gguf_tensor *attn_norm;   /* (n_embd) f32 */
    const struct gguf_tensor *wq, *wk, *wv;/* (n_embd -> n_head*hd), (n_embd -> n_head_kv*hd) x2 */
    const struct gguf_tensor *bq, *bk, *bv;/* qwen2 only: biases, f32 */
    const struct gguf_tensor *wo;          /* (n_head*hd -> n_embd) */
    const struct gguf_tensor *ffn_norm;    /* (n_embd) f32 */
    const struct gguf_tensor *w_gate, *w_up;/* (n_embd -> n_ff) */
    const struct gguf_tensor *w_down;      /* (n_ff -> n_embd) */
};

struct llm {
    struct gguf *g;
    char arch[32], quant[24];
    enum mem_mode mode;
    /* hyper-parameters (GGUF "<arch>.*" keys) */
    int n_vocab, n_embd, n_layer, n_head, n_head_kv, head_dim, n_ff, n_ctx, n_ctx_train, n_rot;
    int q_dim, kv_dim;
    float rms_eps, rope_base;
    int rope_neox, f32_act;
    const float *rope_freqs;               /* Llama 3.1 frequency factors (n_rot/2) or NULL */
    uint64_t n_params;
    /* weights */
    const struct gguf_tensor *tok_embd;    /* (n_embd, n_vocab) */
    const struct gguf_tensor *out_norm;    /* (n_embd) */
    const struct gguf_tensor *output;      /* (n_embd, n_vocab); tok_embd when tied */
    struct llm_layer *layers;
    /* KV cache, half precision: (layer, n_ctx, kv_dim) */
    uint16_t *kc, *vc;
    /* run state for a chunk of up to LLM_BATCH tokens */
    float *x, *xb, *q, *k, *v, *ao, *hg, *hu;
    void *act[3];                          /* activation buffers per format: Q8_1, Q8_K, F32 */
    size_t act_cap;
    float *scores;                         /* (threads, n_ctx) */
    uint16_t *qh;                          /* (threads, head_dim) the query in half precision */
    struct pool *pool;
    uint8_t **x8;                          /* per GGUF tensor: its x8-packed copy (CPU path) or NULL */
    float **vcopy;                         /* per GGUF tensor: a copy of a norm or bias vector (CPU path) or NULL */
#ifdef ISOPIPE_CUDA
    /* beefy: every weight the GPU uses in one arena; lightweight: the resident
     * ones (output head, norms) there and the layers streamed through ss */
    struct llmc *cu;
    struct gpu_arena *warena;
    struct gpu_stream *gst;
    struct stream_set *ss;
    struct llmc_layer *cl;         /* per layer: device pointers (beefy) or offsets in the block (lightweight) */
    void **hblk;                   /* lightweight: pinned host copy of each layer */
    uint64_t hblk_bytes;
    struct llmc_w c_norm, c_out;
#endif
};

/* a norm or bias vector as the CPU path reads it: the load-time copy (x8
 * models, so that nothing touches the mapping after load) or the mapping */
static const float *vec(const struct llm *m, const struct gguf_tensor *t)
{
    if (!t) return NULL;
    const float *c = m->vcopy ? m->vcopy[t - m->g->tensors] : NULL;
    return c ? c : (const float *)t->data;
}

/* one matrix-vector job: y[t * y_stride + r] = W[r] . x[t] for t < nt, r < rows */
struct mm_job {
    const struct gguf_tensor *w;
    const uint8_t *x8;             /* w in the x8 layout, or NULL */
    const uint8_t *xa; size_t xa_stride;
    float *y; int y_stride;
    const float *bias;
};
struct mm_batch { struct mm_job j[3]; int nj, nt, f32_act; };

static void mm_worker(void *ctx, int ith, int nth)
{
    struct mm_batch *b = ctx;
    int64_t total = 0;
    for (int i = 0; i < b->nj; i++) total += (int64_t)b->j[i].w->ne[1];
    /* contiguous row ranges across the concatenated matrices, in steps of 8
     * rows: threads do not share cache lines of y, and an x8 matrix (8k rows)
     * splits at its row groups */
    int64_t per = (total / nth + 7) & ~(int64_t)7;
    int64_t lo = per * ith, hi = ith == nth - 1 ? total : lo + per;
    if (hi > total) hi = total;
    int64_t base = 0;
    for (int i = 0; i < b->nj; i++) {
        const struct mm_job *j = &b->j[i];
        int64_t rows = (int64_t)j->w->ne[1], cols = (int64_t)j->w->ne[0];
        int64_t r0 = lo > base ? lo - base : 0, r1 = hi - base < rows ? hi - base : rows;
        size_t rb = quant_row_bytes(j->w->type, cols);
        if (!b->f32_act && r1 > r0) {
            int t = 0;
            if (j->x8)   /* eight rows at a time, a group's weights decoded once per 4 tokens */
                quant_x8_rows(j->w->type, j->x8, cols, r0 / 8, r1 / 8, j->xa, j->xa_stride, b->nt, j->y, (size_t)j->y_stride);
            else {
                /* the thread's whole row range in one kernel call per token; a
                 * thread's share of a layer matrix stays in L2 across the tokens */
                for (; t + 4 <= b->nt; t += 4)
                    quant_rows4(j->w->type, j->w->data, rb, r0, r1, j->xa + (size_t)t * j->xa_stride, j->xa_stride, cols,
                                j->y + (size_t)t * j->y_stride, (size_t)j->y_stride);
                for (; t < b->nt; t++)
                    quant_rows(j->w->type, j->w->data, rb, r0, r1, j->xa + (size_t)t * j->xa_stride, cols,
                               j->y + (size_t)t * j->y_stride);
            }
            if (j->bias)
                for (t = 0; t < b->nt; t++)
                    for (int64_t r = r0; r < r1; r++) j->y[(size_t)t * j->y_stride + r] += j->bias[r];
            base += rows;
            continue;
        }
        for (int64_t r = r0; r < r1; r++) {
            const uint8_t *wr = (const uint8_t *)j->w->data + (size_t)r * rb;
            float bias = j->bias ? j->bias[r] : 0.0f;
            for (int t = 0; t < b->nt; t++)
                j->y[(size_t)t * j->y_stride + r] = (b->f32_act ? quant_dot_f32act(j->w->type, wr, (const float *)(const void *)(j->xa + (size_t)t * j->xa_stride), cols)
                                                                : quant_dot(j->w->type, wr, j->xa + (size_t)t * j->xa_stride, cols)) + bias;
        }
        base += rows;
    }
}

/* quantise x (nt rows of n floats) for weights of type t, into the buffer of that activation format */
static const uint8_t *act_quant(struct llm *m, enum ggml_type t, const float *x, int nt, int64_t n, size_t *stride)
{
    if (m->f32_act) t = GGML_TYPE_F32;
    enum ggml_type at = quant_act_type(t);
    int slot = at == GGML_TYPE_Q8_1 ? 0 : at == GGML_TYPE_Q8_K ? 1 : 2;
    size_t rb = quant_act_bytes(t, n);
    uint8_t *buf = m->act[slot];
    for (int i = 0; i < nt; i++) quant_act(t, x + (size_t)i * n, buf + (size_t)i * rb, n);
    *stride = rb;
    return buf;
}

/* y_i = W_i x (+ b_i) for up to three matrices sharing the input x (nt rows of n) */
static void matmul(struct llm *m, int nt, const float *x, int64_t n, int nj,
                   const struct gguf_tensor *const *w, float *const *y, const int *y_stride,
                   const struct gguf_tensor *const *bias)
{
    struct mm_batch b = { .nj = nj, .nt = nt, .f32_act = m->f32_act };
    for (int i = 0; i < nj; i++) {
        b.j[i].w = w[i];
        b.j[i].x8 = m->x8 ? m->x8[w[i] - m->g->tensors] : NULL;
        b.j[i].y = y[i];
        b.j[i].y_stride = y_stride[i];
        b.j[i].bias = bias ? vec(m, bias[i]) : NULL;
        /* matrices whose weights share an activation format share one quantisation */
        int reuse = -1;
        for (int k = 0; k < i; k++)
            if (quant_act_type(w[k]->type) == quant_act_type(w[i]->type)) reuse = k;
        if (reuse >= 0) { b.j[i].xa = b.j[reuse].xa; b.j[i].xa_stride = b.j[reuse].xa_stride; continue; }
        b.j[i].xa = act_quant(m, w[i]->type, x, nt, n, &b.j[i].xa_stride);
    }
    pool_run(m->pool, mm_worker, &b);
}

static void rms_norm(float *o, const float *x, const float *w, int n, float eps)
{
    /* ggml_compute_forward_rms_norm: the sum of squares in double */
    double ss = 0;
    for (int i = 0; i < n; i++) ss += (double)(x[i] * x[i]);
    float scale = 1.0f / sqrtf((float)(ss / n) + eps);
    for (int i = 0; i < n; i++) o[i] = x[i] * scale * w[i];
}

/* RoPE (Su et al. 2021) on one head vector at position pos; theta_i = pos *
 * base^(-2i/n_rot), computed by the running product ggml's rope uses */
static void rope(const struct llm *m, float *v, int pos)
{
    float theta_scale = powf(m->rope_base, -2.0f / (float)m->n_rot);
    float theta = (float)pos;
    int half = m->n_rot / 2;
    for (int i = 0; i < half; i++) {
        float th = m->rope_freqs ? theta / m->rope_freqs[i] : theta;
        float c = cosf(th), s = sinf(th);
        int a = m->rope_neox ? i : 2 * i, b = m->rope_neox ? i + half : 2 * i + 1;
        float x0 = v[a], x1 = v[b];
        v[a] = x0 * c - x1 * s;
        v[b] = x0 * s + x1 * c;
        theta *= theta_scale;
    }
}

struct attn_job { struct llm *m; int layer, nt, pos; };

/* causal attention for every (token, head) of the chunk, heads spread over the threads */
static void attn_worker(void *ctx, int ith, int nth)
{
    struct attn_job *a = ctx;
    struct llm *m = a->m;
    int hd = m->head_dim, group = m->n_head / m->n_head_kv;
    float *sc = m->scores + (size_t)ith * m->n_ctx;
    uint16_t *qh = m->qh + (size_t)ith * hd;
    float scale = 1.0f / sqrtf((float)hd);
    const uint16_t *kl = m->kc + (size_t)a->layer * m->n_ctx * m->kv_dim;
    const uint16_t *vl = m->vc + (size_t)a->layer * m->n_ctx * m->kv_dim;
    int total = a->nt * m->n_head;
    for (int task = ith; task < total; task += nth) {
        int t = task / m->n_head, h = task % m->n_head, kvh = h / group;
        int len = a->pos + t + 1;
        const float *q = m->q + (size_t)t * m->q_dim + (size_t)h * hd;
        float qf[512];
        /* ggml multiplies the f16 K cache with the query converted to f16 */
        quant_f32_to_f16_row(q, qh, hd);
        for (int i = 0; i < hd; i++) qf[i] = quant_f16_to_f32(qh[i]);
        quant_attn_scores_f16(kl + (size_t)kvh * hd, (size_t)m->kv_dim, len, qf, hd, scale, sc);
        float mx = -INFINITY;
        for (int j = 0; j < len; j++)
            if (sc[j] > mx) mx = sc[j];
        float sum = 0;
        for (int j = 0; j < len; j++) { sc[j] = expf(sc[j] - mx); sum += sc[j]; }
        float inv = 1.0f / sum;
        quant_attn_wsum_f16(sc, inv, vl + (size_t)kvh * hd, (size_t)m->kv_dim, len, hd, m->ao + (size_t)t * m->q_dim + (size_t)h * hd);
    }
}

static inline float silu(float x) { return x / (1.0f + expf(-x)); }

/* one chunk of nt <= LLM_BATCH tokens at positions pos..; logits of the
 * rows from `first_out` on are written to logits (row-major, n_vocab each) */
static int forward_chunk(struct llm *m, const int32_t *tok, int nt, int pos, float *logits, int first_out)
{
    int E = m->n_embd;
    size_t rb = quant_row_bytes(m->tok_embd->type, E);
    for (int t = 0; t < nt; t++) {
        if (tok[t] < 0 || tok[t] >= m->n_vocab)
            return iso_fail(ISO_EDATA, "token id %d is outside the vocabulary (%d)", tok[t], m->n_vocab);
        const uint8_t *e8 = m->x8 ? m->x8[m->tok_embd - m->g->tensors] : NULL;
        if (e8) quant_x8_dequant_row(m->tok_embd->type, e8, E, tok[t], m->x + (size_t)t * E);
        else quant_dequant_row(m->tok_embd->type, (const uint8_t *)m->tok_embd->data + (size_t)tok[t] * rb, m->x + (size_t)t * E, E);
    }
    for (int l = 0; l < m->n_layer; l++) {
        const struct llm_layer *L = &m->layers[l];
        for (int t = 0; t < nt; t++)
            rms_norm(m->xb + (size_t)t * E, m->x + (size_t)t * E, vec(m, L->attn_norm), E, m->rms_eps);
        {
            const struct gguf_tensor *w[3] = { L->wq, L->wk, L->wv }, *b[3] = { L->bq, L->bk, L->bv };
            float *y[3] = { m->q, m->k, m->v };
            int ys[3] = { m->q_dim, m->kv_dim, m->kv_dim };
            matmul(m, nt, m->xb, E, 3, w, y, ys, b);
        }
        uint16_t *kl = m->kc + (size_t)l * m->n_ctx * m->kv_dim, *vl = m->vc + (size_t)l * m->n_ctx * m->kv_dim;
        for (int t = 0; t < nt; t++) {
            for (int h = 0; h < m->n_head; h++) rope(m, m->q + (size_t)t * m->q_dim + (size_t)h * m->head_dim, pos + t);
            for (int h = 0; h < m->n_head_kv; h++) rope(m, m->k + (size_t)t * m->kv_dim + (size_t)h * m->head_dim, pos + t);
            quant_f32_to_f16_row(m->k + (size_t)t * m->kv_dim, kl + (size_t)(pos + t) * m->kv_dim, m->kv_dim);
            quant_f32_to_f16_row(m->v + (size_t)t * m->kv_dim, vl + (size_t)(pos + t) * m->kv_dim, m->kv_dim);
        }
        struct attn_job aj = { m, l, nt, pos };
        pool_run(m->pool, attn_worker, &aj);
        {
            const struct gguf_tensor *w[1] = { L->wo };
            float *y[1] = { m->xb };
            int ys[1] = { E };
            matmul(m, nt, m->ao, m->q_dim, 1, w, y, ys, NULL);
        }
        for (size_t i = 0; i < (size_t)nt * E; i++) m->x[i] += m->xb[i];
        for (int t = 0; t < nt; t++)
            rms_norm(m->xb + (size_t)t * E, m->x + (size_t)t * E, vec(m, L->ffn_norm), E, m->rms_eps);
        {
            const struct gguf_tensor *w[2] = { L->w_gate, L->w_up };
            float *y[2] = { m->hg, m->hu };
            int ys[2] = { m->n_ff, m->n_ff };
            matmul(m, nt, m->xb, E, 2, w, y, ys, NULL);
        }
        for (size_t i = 0; i < (size_t)nt * m->n_ff; i++) m->hg[i] = silu(m->hg[i]) * m->hu[i];
        {
            const struct gguf_tensor *w[1] = { L->w_down };
            float *y[1] = { m->xb };
            int ys[1] = { E };
            matmul(m, nt, m->hg, m->n_ff, 1, w, y, ys, NULL);
        }
        for (size_t i = 0; i < (size_t)nt * E; i++) m->x[i] += m->xb[i];
    }
    if (!logits || first_out >= nt) return 0;
    int no = nt - first_out;
    for (int t = 0; t < no; t++)
        rms_norm(m->xb + (size_t)t * E, m->x + (size_t)(first_out + t) * E, vec(m, m->out_norm), E, m->rms_eps);
    const struct gguf_tensor *w[1] = { m->output };
    float *y[1] = { logits };
    int ys[1] = { m->n_vocab };
    matmul(m, no, m->xb, E, 1, w, y, ys, NULL);
    return 0;
}

#ifdef ISOPIPE_CUDA
static int forward_chunk_cuda(struct llm *m, const int32_t *tok, int nt, int pos, float *logits, int first_out);
static int cuda_load(struct llm *m, enum mem_mode mode);
static void cuda_unload(struct llm *m);
static void cuda_dims(const struct llm *m, struct llmc_dims *d);
#endif

static int eval(struct llm *m, const int32_t *tok, int n, int pos, float *logits, int all)
{
    if (!m || n < 0 || pos < 0 || (n > 0 && !tok)) return iso_fail(ISO_EINTERNAL, "llm_eval: bad arguments");
    if ((int64_t)pos + n > m->n_ctx)
        return iso_fail(ISO_EDATA, "context full: %d tokens at position %d exceed the context of %d", n, pos, m->n_ctx);
    for (int i = 0; i < n; i += LLM_BATCH) {
        int nt = n - i < LLM_BATCH ? n - i : LLM_BATCH;
        int rc;
        int (*fwd)(struct llm *, const int32_t *, int, int, float *, int) = forward_chunk;
#ifdef ISOPIPE_CUDA
        if (m->cu) fwd = forward_chunk_cuda;
#endif
        if (all)
            rc = fwd(m, tok + i, nt, pos + i, logits ? logits + (size_t)i * m->n_vocab : NULL, 0);
        else
            rc = fwd(m, tok + i, nt, pos + i, i + nt == n ? logits : NULL, nt - 1);
        if (rc < 0) return rc;
    }
    return 0;
}

int llm_eval(struct llm *m, const int32_t *tok, int n, int pos, float *logits) { return eval(m, tok, n, pos, logits, 0); }
int llm_eval_all(struct llm *m, const int32_t *tok, int n, int pos, float *logits) { return eval(m, tok, n, pos, logits, 1); }

/* ---- loading ---- */
void llm_params_default(struct llm_params *p)
{
    memset(p, 0, sizeof *p);
    p->mode = MEM_MODE_AUTO;
}

static int get_int(const struct gguf *g, const char *arch, const char *suffix, int required, int def, int *out)
{
    char key[128];
    uint64_t v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int rc = gguf_get_u64(g, key, &v);
    if (rc == ISO_ENOINPUT && !required) { *out = def; return 0; }
    if (rc < 0) return iso_fail(ISO_EDATA, "metadata '%s' %s", key, rc == ISO_ENOINPUT ? "is missing" : "is not an integer");
    if (v > (1u << 30)) return iso_fail(ISO_EDATA, "metadata '%s' = %llu is absurd", key, (unsigned long long)v);
    *out = (int)v;
    return 0;
}

static int get_float(const struct gguf *g, const char *arch, const char *suffix, double def, float *out)
{
    char key[128];
    double v;
    snprintf(key, sizeof key, "%s.%s", arch, suffix);
    int rc = gguf_get_f64(g, key, &v);
    if (rc == ISO_ENOINPUT) v = def;
    else if (rc < 0) return iso_fail(ISO_EDATA, "metadata '%s' is not a number", key);
    /* every float hyperparameter read here (norm epsilon, rope base) is a
     * positive scale: NaN, infinities, zero or a negative value would only
     * show up later as NaN logits */
    if (!isfinite(v) || !(v > 0) || !isfinite((float)v))
        return iso_fail(ISO_EDATA, "metadata '%s' = %g: must be a finite positive number", key, v);
    *out = (float)v;
    return 0;
}

/* a weight by name with its expected shape (ne1 = 0 for a vector) */
static int want_tensor(struct llm *m, const char *name, int64_t ne0, int64_t ne1, int optional,
                       const struct gguf_tensor **out)
{
    const struct gguf_tensor *t = gguf_find_tensor(m->g, name);
    *out = t;
    if (!t) return optional ? 0 : iso_fail(ISO_EDATA, "tensor '%s' is missing", name);
    int64_t want_dims = ne1 ? 2 : 1;
    if ((int64_t)t->n_dims != want_dims || (int64_t)t->ne[0] != ne0 || (ne1 && (int64_t)t->ne[1] != ne1))
        return iso_fail(ISO_EDATA, "tensor '%s' has shape [%llu, %llu], want [%lld, %lld]", name,
                        (unsigned long long)t->ne[0], (unsigned long long)t->ne[1], (long long)ne0, (long long)(ne1 ? ne1 : 1));
    if (!ne1 && t->type != GGML_TYPE_F32)
        return iso_fail(ISO_EDATA, "tensor '%s' is %s, want F32", name, ggml_type_name(t->type));
    if (!quant_supported(t->type))
        return iso_fail(ISO_EDATA, "tensor '%s' has type %s, which this engine does not compute with", name, ggml_type_name(t->type));
    m->n_params += gguf_tensor_nelem(t);
    return 0;
}

/* llama_ftype names (llama.h) for general.file_type */
static const char *ftype_name(uint64_t ft)
{
    static const char *const names[] = {
        [0] = "F32", [1] = "F16", [2] = "Q4_0", [3] = "Q4_1", [7] = "Q8_0", [8] = "Q5_0", [9] = "Q5_1",
        [10] = "Q2_K", [11] = "Q3_K_S", [12] = "Q3_K_M", [13] = "Q3_K_L", [14] = "Q4_K_S", [15] = "Q4_K_M",
        [16] = "Q5_K_S", [17] = "Q5_K_M", [18] = "Q6_K", [32] = "BF16",
    };
    if (ft < sizeof names / sizeof names[0] && names[ft]) return names[ft];
    return NULL;
}

static int load(struct llm *m, const struct llm_params *p)
{
    struct gguf *g = m->g;
    struct gguf_str s;
    int rc;
    if (gguf_get_str(g, "general.architecture", &s) < 0) return iso_fail(ISO_EDATA, "metadata 'general.architecture' is missing");
    snprintf(m->arch, sizeof m->arch, "%.*s", (int)(s.len < 31 ? s.len : 31), s.s);
    int is_qwen2 = gguf_str_eq(s, "qwen2");
    if (!gguf_str_eq(s, "llama") && !is_qwen2)
        return iso_fail(ISO_EUNAVAIL, "architecture '%.*s' is not supported (supported: llama, qwen2)", (int)(s.len > 64 ? 64 : s.len), s.s);
    m->rope_neox = is_qwen2;
    const char *a = m->arch;
    if ((rc = get_int(g, a, "embedding_length", 1, 0, &m->n_embd)) < 0 ||
        (rc = get_int(g, a, "block_count", 1, 0, &m->n_layer)) < 0 ||
        (rc = get_int(g, a, "feed_forward_length", 1, 0, &m->n_ff)) < 0 ||
        (rc = get_int(g, a, "attention.head_count", 1, 0, &m->n_head)) < 0 ||
        (rc = get_int(g, a, "attention.head_count_kv", 0, m->n_head, &m->n_head_kv)) < 0 ||
        (rc = get_int(g, a, "context_length", 0, 2048, &m->n_ctx_train)) < 0)
        return rc;
    if (m->n_embd <= 0 || m->n_layer <= 0 || m->n_ff <= 0 || m->n_head <= 0 || m->n_head_kv <= 0 ||
        m->n_head % m->n_head_kv || m->n_layer > 1024)
        return iso_fail(ISO_EDATA, "inconsistent hyper-parameters (n_embd %d, n_layer %d, n_ff %d, n_head %d, n_head_kv %d)",
                        m->n_embd, m->n_layer, m->n_ff, m->n_head, m->n_head_kv);
    if ((rc = get_int(g, a, "attention.key_length", 0, m->n_embd / m->n_head, &m->head_dim)) < 0) return rc;
    if ((rc = get_int(g, a, "rope.dimension_count", 0, m->head_dim, &m->n_rot)) < 0) return rc;
    if (m->head_dim <= 0 || m->head_dim > 512 || m->head_dim % 2 || m->n_rot <= 0 || m->n_rot > m->head_dim || m->n_rot % 2)
        return iso_fail(ISO_EDATA, "unsupported head size %d (rope over %d)", m->head_dim, m->n_rot);
    if ((rc = get_float(g, a, "attention.layer_norm_rms_epsilon", 1e-5, &m->rms_eps)) < 0 ||
        (rc = get_float(g, a, "rope.freq_base", 10000.0, &m->rope_base)) < 0)
        return rc;
    m->q_dim = m->n_head * m->head_dim;
    m->kv_dim = m->n_head_kv * m->head_dim;

    m->tok_embd = gguf_find_tensor(g, "token_embd.weight");
    if (!m->tok_embd) return iso_fail(ISO_EDATA, "tensor 'token_embd.weight' is missing");
    if (m->tok_embd->n_dims != 2 || (int64_t)m->tok_embd->ne[0] != m->n_embd || m->tok_embd->ne[1] > (1u << 24))
        return iso_fail(ISO_EDATA, "tensor 'token_embd.weight' has an unexpected shape");
    if (!quant_supported(m->tok_embd->type))
        return iso_fail(ISO_EDATA, "tensor 'token_embd.weight' has type %s, which this engine does not compute with", ggml_type_name(m->tok_embd->type));
    m->n_vocab = (int)m->tok_embd->ne[1];
    m->n_params += gguf_tensor_nelem(m->tok_embd);
    if ((rc = want_tensor(m, "output_norm.weight", m->n_embd, 0, 0, &m->out_norm)) < 0) return rc;
    if ((rc = want_tensor(m, "output.weight", m->n_embd, m->n_vocab, 1, &m->output)) < 0) return rc;
    if (!m->output) m->output = m->tok_embd;   /* tied embeddings */
    const struct gguf_tensor *rf = gguf_find_tensor(g, "rope_freqs.weight");
    if (rf) {
        if (rf->type != GGML_TYPE_F32 || gguf_tensor_nelem(rf) != (uint64_t)(m->n_rot / 2))
            return iso_fail(ISO_EDATA, "tensor 'rope_freqs.weight' has an unexpected type or shape");
        m->rope_freqs = rf->data;
    }
    m->layers = calloc((size_t)m->n_layer, sizeof *m->layers);
    if (!m->layers) return iso_fail(ISO_EINTERNAL, "out of memory");
    for (int l = 0; l < m->n_layer; l++) {
        struct llm_layer *L = &m->layers[l];
        char nm[96];
#define T(field, suffix, ne0, ne1, opt) \
        snprintf(nm, sizeof nm, "blk.%d." suffix, l); \
        if ((rc = want_tensor(m, nm, ne0, ne1, opt, &L->field)) < 0) return rc;
        T(attn_norm, "attn_norm.weight", m->n_embd, 0, 0)
        T(wq, "attn_q.weight", m->n_embd, m->q_dim, 0)
        T(wk, "attn_k.weight", m->n_embd, m->kv_dim, 0)
        T(wv, "attn_v.weight", m->n_embd, m->kv_dim, 0)
        T(wo, "attn_output.weight", m->q_dim, m->n_embd, 0)
        T(bq, "attn_q.bias", m->q_dim, 0, !is_qwen2)
        T(bk, "attn_k.bias", m->kv_dim, 0, !is_qwen2)
        T(bv, "attn_v.bias", m->kv_dim, 0, !is_qwen2)
        T(ffn_norm, "ffn_norm.weight", m->n_embd, 0, 0)
        T(w_gate, "ffn_gate.weight", m->n_embd, m->n_ff, 0)
        T(w_up, "ffn_up.weight", m->n_embd, m->n_ff, 0)
        T(w_down, "ffn_down.weight", m->n_ff, m->n_embd, 0)
#undef T
    }

    uint64_t ft;
    const char *qn = gguf_get_u64(g, "general.file_type", &ft) == 0 ? ftype_name(ft) : NULL;
    snprintf(m->quant, sizeof m->quant, "%s", qn ? qn : ggml_type_name(m->layers[0].w_gate->type));
    m->n_ctx = p->n_ctx > 0 ? p->n_ctx : (m->n_ctx_train < 4096 ? m->n_ctx_train : 4096);
    if (m->n_ctx <= 0 || m->n_ctx > (1 << 20)) return iso_fail(ISO_EDATA, "context length %d is out of range", m->n_ctx);
    return 0;
}

/* bytes of the scratch alloc_state() allocates (the plan's activations) */
static uint64_t scratch_bytes(const struct llm *m, int threads)
{
    uint64_t B = LLM_BATCH, E = (uint64_t)m->n_embd, F = (uint64_t)m->n_ff, Q = (uint64_t)m->q_dim, KV = (uint64_t)m->kv_dim;
    uint64_t maxn = E > F ? E : F;
    if (Q > maxn) maxn = Q;
    return B * (2 * E + 2 * Q + 2 * KV + 2 * F) * 4 +
           B * (quant_act_bytes(GGML_TYPE_Q8_0, (int64_t)maxn) + quant_act_bytes(GGML_TYPE_Q4_K, (int64_t)maxn) + maxn * 4) + 192 +
           (uint64_t)threads * ((uint64_t)m->n_ctx * 4 + (uint64_t)m->head_dim * 2);
}

static int engine_threads(const struct llm_params *p)
{
    int threads = p->threads > 0 ? p->threads : cli_cpu_count();
    return threads > LLM_MAX_THREADS ? LLM_MAX_THREADS : threads < 1 ? 1 : threads;
}

/* KV cache, scratch and the thread pool */
static int alloc_state(struct llm *m, const struct llm_params *p)
{
    size_t kv_elems = (size_t)m->n_layer * (size_t)m->n_ctx * (size_t)m->kv_dim;
    if (kv_elems / (size_t)m->n_layer / (size_t)m->n_ctx != (size_t)m->kv_dim) return iso_fail(ISO_EDATA, "KV cache size overflows");
    m->kc = malloc(kv_elems * sizeof *m->kc);
    m->vc = malloc(kv_elems * sizeof *m->vc);
    size_t B = LLM_BATCH, E = (size_t)m->n_embd, F = (size_t)m->n_ff, Q = (size_t)m->q_dim, KV = (size_t)m->kv_dim;
    m->x = malloc(B * E * sizeof(float));
    m->xb = malloc(B * E * sizeof(float));
    m->q = malloc(B * Q * sizeof(float));
    m->k = malloc(B * KV * sizeof(float));
    m->v = malloc(B * KV * sizeof(float));
    m->ao = malloc(B * Q * sizeof(float));
    m->hg = malloc(B * F * sizeof(float));
    m->hu = malloc(B * F * sizeof(float));
    size_t maxn = E > F ? E : F;
    if (Q > maxn) maxn = Q;
    m->act[0] = malloc(B * quant_act_bytes(GGML_TYPE_Q8_0, (int64_t)maxn) + 64);
    m->act[1] = malloc(B * quant_act_bytes(GGML_TYPE_Q4_K, (int64_t)maxn) + 64);
    m->act[2] = malloc(B * maxn * sizeof(float) + 64);
    int threads = engine_threads(p);
    m->scores = malloc((size_t)threads * (size_t)m->n_ctx * sizeof(float));
    m->qh = malloc((size_t)threads * (size_t)m->head_dim * sizeof(uint16_t));
    if (!m->kc || !m->vc || !m->x || !m->xb || !m->q || !m->k || !m->v || !m->ao || !m->hg || !m->hu ||
        !m->act[0] || !m->act[1] || !m->act[2] || !m->scores || !m->qh)
        return iso_fail(ISO_ETEMPFAIL, "out of memory for the KV cache and scratch (%zu MiB of cache)",
                        kv_elems * 4 >> 20);
    if (threads > LLM_MAX_THREADS) threads = LLM_MAX_THREADS;
    int prc = pool_new(&m->pool, threads);
    if (prc) return prc;
    /* a decode step dispatches hundreds of small jobs per token: waiters spin
     * long before they sleep (the engine's own pool did the same) */
    pool_set_spin(m->pool, 20000);
    return 0;
}

/* drop the mapping's pages wholly inside [a, e) (MAP_SHARED, clean: the
 * kernel re-reads them from the file if anything touches them again) */
static void drop_pages(uintptr_t a, uintptr_t e)
{
    uintptr_t ps = (uintptr_t)sysconf(_SC_PAGESIZE);
    a = (a + ps - 1) & ~(ps - 1);
    e &= ~(ps - 1);
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

/* one tensor's packing, spread over the pool: thread i packs and drops its
 * own contiguous range of row groups, about a MiB at a time */
struct pack_job { const struct gguf_tensor *t; void *dst; };
static void pack_worker(void *ctx, int ith, int nth)
{
    const struct pack_job *j = ctx;
    const struct gguf_tensor *t = j->t;
    int64_t cols = (int64_t)t->ne[0], groups = (int64_t)t->ne[1] / 8;
    size_t gbytes = 8 * quant_row_bytes(t->type, cols);
    int64_t lo = groups * ith / nth, hi = groups * (ith + 1) / nth;
    int64_t step = (int64_t)((1u << 20) / gbytes) + 1;
    uintptr_t src = (uintptr_t)t->data, ps = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t done = src + (size_t)lo * gbytes;
    for (int64_t g0 = lo; g0 < hi; g0 += step) {
        int64_t g1 = g0 + step < hi ? g0 + step : hi;
        quant_x8_pack(t->type, t->data, cols, g0, g1, j->dst);
        drop_pages(done, src + (size_t)g1 * gbytes);
        done = (src + (size_t)g1 * gbytes) & ~(ps - 1);
        if (done < src) done = src;
    }
}

/* the matrices of layer l (l = -1: the output matrix) the x8 layout takes
 * (quant.h); 0 where a tensor stays as the file has it */
static int x8_list(const struct llm *m, int l, const struct gguf_tensor **list)
{
    int n = 0;
    if (l < 0) list[n++] = m->output;
    else {
        const struct llm_layer *L = &m->layers[l];
        const struct gguf_tensor *w[7] = { L->wq, L->wk, L->wv, L->wo, L->w_gate, L->w_up, L->w_down };
        for (int i = 0; i < 7; i++) list[n++] = w[i];
    }
    for (int i = 0; i < n; i++) {
        const struct gguf_tensor *t = list[i];
        if (!quant_x8_usable(t->type) || t->n_dims != 2 || t->ne[1] % 8 || t->ne[0] % QK ||
            quant_row_bytes(t->type, (int64_t)t->ne[0]) * t->ne[1] != t->nbytes)
            list[i] = NULL;
    }
    return n;
}

/* the CPU path packs unless ISOPIPE_NO_X8 is set or activations are float (reference mode) */
static int x8_enabled(const struct llm *m)
{
    const char *e = getenv("ISOPIPE_NO_X8");
    return !(e && *e && strcmp(e, "0") != 0) && !m->f32_act;
}

/* bytes the packed copies add to the file's (Q4_K grows; the plan counts it) */
static uint64_t x8_growth(const struct llm *m)
{
    if (!x8_enabled(m)) return 0;
    uint64_t g = 0;
    for (int l = -1; l < m->n_layer; l++) {
        const struct gguf_tensor *list[7];
        int n = x8_list(m, l, list);
        for (int i = 0; i < n; i++)
            if (list[i]) g += quant_x8_bytes(list[i]->type, (int64_t)list[i]->ne[0], (int64_t)list[i]->ne[1]) - list[i]->nbytes;
    }
    return g;
}

/* CPU path: every matrix the x8 kernels read (quant.h), repacked with the
 * source pages dropped behind it, so peak memory stays near the file's size
 * plus a chunk per thread. The token embedding is packed only when it is
 * also the output matrix (tied): on its own only the rows of the prompt's
 * tokens are ever read, and packing would make all of it resident. */
/* a load-time copy of a small float tensor, read through vec() from then on */
static const float *keep_vec(struct llm *m, const struct gguf_tensor *t)
{
    float **slot = &m->vcopy[t - m->g->tensors];
    if (!*slot && (*slot = malloc(t->nbytes))) memcpy(*slot, t->data, t->nbytes);
    return *slot;
}

static int x8_pack_all(struct llm *m)
{
    if (!x8_enabled(m)) return 0;
    size_t nt = (size_t)m->g->n_tensors;
    m->x8 = calloc(nt, sizeof *m->x8);
    m->vcopy = calloc(nt, sizeof *m->vcopy);
    if (!m->x8 || !m->vcopy) return iso_fail(ISO_ETEMPFAIL, "out of memory");
    /* the small vectors first: reading one later would fault the mapping back
     * in around it (fault-around, large folios: up to megabytes of the
     * dropped matrices beside it) */
    for (int l = -1; l < m->n_layer; l++) {
        const struct gguf_tensor *v[5] = { m->out_norm, NULL, NULL, NULL, NULL };
        if (l >= 0) {
            const struct llm_layer *L = &m->layers[l];
            v[0] = L->attn_norm; v[1] = L->ffn_norm; v[2] = L->bq; v[3] = L->bk; v[4] = L->bv;
        }
        for (int i = 0; i < 5; i++)
            if (v[i] && !keep_vec(m, v[i])) return iso_fail(ISO_ETEMPFAIL, "out of memory");
    }
    const struct gguf_tensor *rf = gguf_find_tensor(m->g, "rope_freqs.weight");
    if (rf && m->rope_freqs && !(m->rope_freqs = keep_vec(m, rf))) return iso_fail(ISO_ETEMPFAIL, "out of memory");
    for (int l = -1; l < m->n_layer; l++) {
        const struct gguf_tensor *list[7];
        int n = x8_list(m, l, list);
        for (int i = 0; i < n; i++) {
            const struct gguf_tensor *t = list[i];
            if (!t || m->x8[t - m->g->tensors]) continue;
            size_t idx = (size_t)(t - m->g->tensors);
            size_t bytes = quant_x8_bytes(t->type, (int64_t)t->ne[0], (int64_t)t->ne[1]);
            void *dst = NULL;
            if (posix_memalign(&dst, 64, bytes))
                return iso_fail(ISO_ETEMPFAIL, "out of memory repacking '%.*s' (%zu MiB)", (int)t->name.len, t->name.s, bytes >> 20);
            struct pack_job pj = { t, dst };
            pool_run(m->pool, pack_worker, &pj);
            m->x8[idx] = dst;
        }
    }
    return 0;
}

int llm_open(const char *path, const struct llm_params *p, struct llm **out)
{
    struct llm_params def;
    struct llm *m = NULL;
    int rc;
    *out = NULL;
    if (!p) { llm_params_default(&def); p = &def; }
    quant_init();
    /* A pretend device (ISOPIPE_FAKE_GPU) drives planning, admission and the
     * report exactly as a card would, but runs no kernels: its "GPU" modes
     * compute on the CPU (issue 11: the pipeline's decisions testable anywhere). */
    int pretend = gpu_is_fake() && (p->mode == MEM_MODE_BEEFY || p->mode == MEM_MODE_LIGHTWEIGHT);
    if (pretend) log_verbose("pretend device: %s mode computes on the CPU", mem_mode_name(p->mode));
    if (!pretend && (p->mode == MEM_MODE_BEEFY || p->mode == MEM_MODE_LIGHTWEIGHT)) {
#ifndef ISOPIPE_CUDA
        return iso_fail(ISO_EUNAVAIL, "memory mode %s needs a CUDA build (this one is CPU-only; use --memory-mode cpu)",
                        mem_mode_name(p->mode));
#else
        if (!gpu_present() || gpu_is_fake())
            return iso_fail(ISO_EUNAVAIL, "memory mode %s needs a CUDA device (none found; use --memory-mode cpu)",
                            mem_mode_name(p->mode));
#endif
    }
    m = calloc(1, sizeof *m);
    if (!m) return iso_fail(ISO_EINTERNAL, "out of memory");
    m->mode = MEM_MODE_CPU;
    m->f32_act = p->f32_act;
    if ((rc = gguf_open(path, &m->g)) < 0) goto done;
    if ((rc = load(m, p)) < 0 || (rc = alloc_state(m, p)) < 0) { iso_wrap(rc, "'%s'", path); goto done; }
    if ((pretend || !(p->mode == MEM_MODE_BEEFY || p->mode == MEM_MODE_LIGHTWEIGHT)) && (rc = x8_pack_all(m)) < 0) {
        iso_wrap(rc, "'%s'", path);
        goto done;
    }
#ifdef ISOPIPE_CUDA
    if (!pretend && (p->mode == MEM_MODE_BEEFY || p->mode == MEM_MODE_LIGHTWEIGHT) && (rc = cuda_load(m, p->mode)) < 0) {
        iso_wrap(rc, "'%s'", path);
        goto done;
    }
#endif
    *out = m;
    m = NULL;
done:
    llm_close(&m);
    return rc;
}

void llm_close(struct llm **mp)
{
    struct llm *m = mp ? *mp : NULL;
    if (!m) return;
    pool_free(&m->pool);
#ifdef ISOPIPE_CUDA
    cuda_unload(m);
#endif
    free(m->layers);
    if (m->x8 && m->g)
        for (size_t i = 0; i < (size_t)m->g->n_tensors; i++) free(m->x8[i]);

    if (m->vcopy && m->g)
        for (size_t i = 0; i < (size_t)m->g->n_tensors; i++) free(m->vcopy[i]);
    free(m->x8); free(m->vcopy);
    free(m->kc); free(m->vc);
    free(m->x); free(m->xb); free(m->q); free(m->k); free(m->v); free(m->ao); free(m->hg); free(m->hu);
    for (int i = 0; i < 3; i++) free(m->act[i]);
    free(m->scores); free(m->qh);
    gguf_close(&m->g);
    free(m);
    *mp = NULL;
}

#ifdef ISOPIPE_CUDA
/* ---- the CUDA path (llm_cuda.cu does the arithmetic; here: weights in and out) ---- */
static void cuda_dims(const struct llm *m, struct llmc_dims *d)
{
    memset(d, 0, sizeof *d);
    d->n_embd = m->n_embd; d->n_ff = m->n_ff; d->n_head = m->n_head; d->n_head_kv = m->n_head_kv;
    d->head_dim = m->head_dim; d->n_rot = m->n_rot; d->n_vocab = m->n_vocab; d->n_ctx = m->n_ctx;
    d->n_layer = m->n_layer; d->max_batch = LLM_BATCH; d->rope_neox = m->rope_neox;
    d->rms_eps = m->rms_eps; d->rope_base = m->rope_base; d->rope_freqs_host = m->rope_freqs;
    d->f32_act = m->f32_act;
}

static uint64_t up256(uint64_t n) { return (n + 255) & ~(uint64_t)255; }

/* the tensors of one layer, in a fixed order, with the llmc_layer fields they fill */
static int layer_tensors(const struct llm_layer *L, struct llmc_layer *cl, const struct gguf_tensor **t, struct llmc_w **w)
{
    const struct gguf_tensor *src[12] = { L->attn_norm, L->wq, L->wk, L->wv, L->bq, L->bk, L->bv, L->wo, L->ffn_norm,
                                          L->w_gate, L->w_up, L->w_down };
    struct llmc_w *dst[12] = { &cl->attn_norm, &cl->wq, &cl->wk, &cl->wv, &cl->bq, &cl->bk, &cl->bv, &cl->wo,
                               &cl->ffn_norm, &cl->wg, &cl->wu, &cl->wd };
    for (int i = 0; i < 12; i++) { t[i] = src[i]; w[i] = dst[i]; }
    return 12;
}

static void set_w(struct llmc_w *w, const struct gguf_tensor *t, const void *dev)
{
    w->dev = dev;
    w->type = t->type;
    w->ne0 = (int64_t)t->ne[0];
    w->ne1 = (int64_t)t->ne[1];
}

/* copy one mmapped tensor to the device, then let the kernel drop its pages
 * (MAP_SHARED file pages: re-readable), so RSS stays near one tensor */
static int upload(struct llm *m, const struct gguf_tensor *t, void **dev)
{
    int rc = gpu_arena_alloc(m->warena, t->nbytes, 256, dev);
    if (rc < 0) return rc;
    if ((rc = gpu_memcpy_h2d(*dev, t->data, t->nbytes, NULL)) < 0) return rc;
    long pg = sysconf(_SC_PAGESIZE);
    uintptr_t a = ((uintptr_t)t->data + (uintptr_t)pg - 1) & ~((uintptr_t)pg - 1);
    uintptr_t e = ((uintptr_t)t->data + t->nbytes) & ~((uintptr_t)pg - 1);
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
    return 0;
}

static int cuda_load(struct llm *m, enum mem_mode mode)
{
    int rc;
    const struct gguf_tensor *t[12];
    struct llmc_w *w[12];
    uint64_t resident = up256(m->out_norm->nbytes) + up256(m->output->nbytes), block = 0;
    m->cl = calloc((size_t)m->n_layer, sizeof *m->cl);
    if (!m->cl) return iso_fail(ISO_EINTERNAL, "out of memory");
    for (int l = 0; l < m->n_layer; l++) {
        uint64_t b = 0;
        int n = layer_tensors(&m->layers[l], &m->cl[l], t, w);
        for (int i = 0; i < n; i++) if (t[i]) b += up256(t[i]->nbytes);
        if (b > block) block = b;
    }
    uint64_t warena_bytes = mode == MEM_MODE_BEEFY ? resident + block * (uint64_t)m->n_layer : resident;
    if ((rc = gpu_arena_create("weights", warena_bytes, &m->warena)) < 0) return rc;
    void *dev;
    if ((rc = upload(m, m->out_norm, &dev)) < 0) return rc;
    set_w(&m->c_norm, m->out_norm, dev);
    if ((rc = upload(m, m->output, &dev)) < 0) return rc;
    set_w(&m->c_out, m->output, dev);
    if (mode == MEM_MODE_BEEFY) {
        if ((rc = gpu_stream_create(&m->gst)) < 0) return rc;
        for (int l = 0; l < m->n_layer; l++) {
            int n = layer_tensors(&m->layers[l], &m->cl[l], t, w);
            for (int i = 0; i < n; i++) {
                if (!t[i]) continue;
                if ((rc = upload(m, t[i], &dev)) < 0) return rc;
                set_w(w[i], t[i], dev);
            }
        }
    } else {
        /* lightweight: each layer packed into one pinned block; the llmc_w
         * pointers hold offsets into it until stream_get gives the base */
        m->hblk = calloc((size_t)m->n_layer, sizeof *m->hblk);
        if (!m->hblk) return iso_fail(ISO_EINTERNAL, "out of memory");
        m->hblk_bytes = block;
        if ((rc = stream_create((uint64_t)m->n_layer, block, &m->ss)) < 0) return rc;
        for (int l = 0; l < m->n_layer; l++) {
            if ((rc = gpu_host_alloc(block, &m->hblk[l])) < 0) return rc;
            uint64_t off = 0;
            int n = layer_tensors(&m->layers[l], &m->cl[l], t, w);
            for (int i = 0; i < n; i++) {
                if (!t[i]) continue;
                memcpy((uint8_t *)m->hblk[l] + off, t[i]->data, t[i]->nbytes);
                set_w(w[i], t[i], (const void *)(uintptr_t)off);
                off += up256(t[i]->nbytes);
            }
            if ((rc = stream_set_block(m->ss, (uint64_t)l, m->hblk[l], off)) < 0) return rc;
        }
    }
    struct llmc_dims d;
    cuda_dims(m, &d);
    void *st = m->ss ? gpu_stream_handle(stream_compute(m->ss)) : gpu_stream_handle(m->gst);
    if ((rc = llmc_create(&d, st, &m->cu)) < 0) return rc;
    m->mode = mode;
    return 0;
}

static void cuda_unload(struct llm *m)
{
    llmc_free(&m->cu);
    stream_free(&m->ss);
    if (m->hblk) {
        for (int l = 0; l < m->n_layer; l++) if (m->hblk[l]) gpu_host_free(m->hblk[l], m->hblk_bytes);
        free(m->hblk);
        m->hblk = NULL;
    }
    gpu_stream_free(&m->gst);
    gpu_arena_free(&m->warena);
    free(m->cl);
    m->cl = NULL;
}

static int forward_chunk_cuda(struct llm *m, const int32_t *tok, int nt, int pos, float *logits, int first_out)
{
    int E = m->n_embd, rc;
    size_t rb = quant_row_bytes(m->tok_embd->type, E);
    /* the embedding lookup stays on the host: one row per token from the mapping */
    for (int t = 0; t < nt; t++) {
        if (tok[t] < 0 || tok[t] >= m->n_vocab)
            return iso_fail(ISO_EDATA, "token id %d is outside the vocabulary (%d)", tok[t], m->n_vocab);
        quant_dequant_row(m->tok_embd->type, (const uint8_t *)m->tok_embd->data + (size_t)tok[t] * rb, m->x + (size_t)t * E, E);
    }
    if ((rc = llmc_input(m->cu, m->x, nt)) < 0) return rc;
    for (int l = 0; l < m->n_layer; l++) {
        struct llmc_layer L = m->cl[l];
        if (m->ss) {
            const void *base;
            if ((rc = stream_get(m->ss, (uint64_t)l, &base)) < 0) return rc;
            const struct gguf_tensor *t[12];
            struct llmc_w *w[12];
            struct llmc_layer dummy;
            int n = layer_tensors(&m->layers[l], &dummy, t, w);
            struct llmc_w *lw[12] = { &L.attn_norm, &L.wq, &L.wk, &L.wv, &L.bq, &L.bk, &L.bv, &L.wo, &L.ffn_norm, &L.wg, &L.wu, &L.wd };
            for (int i = 0; i < n; i++)
                if (t[i]) lw[i]->dev = (const uint8_t *)base + (uintptr_t)lw[i]->dev;
        }
        if ((rc = llmc_forward_layer(m->cu, l, &L, nt, pos)) < 0) return rc;
    }
    if (!logits || first_out >= nt) {
        if (m->ss) return stream_sync(m->ss);
        return gpu_stream_sync(m->gst);
    }
    return llmc_output(m->cu, &m->c_norm, &m->c_out, nt, first_out, logits);
}
#endif

int llm_plan(const char *path, const struct llm_params *p, struct mem_plan *out)
{
    struct llm_params def;
    struct llm *m = NULL;
    uint64_t *blk = NULL;
    int rc;
    if (!p) { llm_params_default(&def); p = &def; }
    m = calloc(1, sizeof *m);
    if (!m) return iso_fail(ISO_EINTERNAL, "out of memory");
    if ((rc = gguf_open(path, &m->g)) < 0) goto done;
    if ((rc = load(m, p)) < 0) { iso_wrap(rc, "'%s'", path); goto done; }
    struct plan_blocks b;
    memset(&b, 0, sizeof b);
    blk = calloc((size_t)m->n_layer, sizeof *blk);
    if (!blk) { rc = iso_fail(ISO_EINTERNAL, "out of memory"); goto done; }
    uint64_t total = 0, blocks = 0;
    for (uint64_t i = 0; i < m->g->n_tensors; i++) {
        const struct gguf_tensor *t = &m->g->tensors[i];
        unsigned long l = 0;
        int used = 0;
        char nm[32];
        total += t->nbytes;    /* each is bounded by the file size: no overflow */
        if (t->nbytes > b.largest_tensor) b.largest_tensor = t->nbytes;
        snprintf(nm, sizeof nm, "%.*s", (int)(t->name.len < 31 ? t->name.len : 31), t->name.s);
        if (sscanf(nm, "blk.%lu.%n", &l, &used) == 1 && used > 0 && l < (unsigned long)m->n_layer) blk[l] += t->nbytes;
    }
    for (int l = 0; l < m->n_layer; l++) {
        blocks += blk[l];
        if (blk[l] > b.block_bytes) b.block_bytes = blk[l];
    }
    b.n_blocks = (uint64_t)m->n_layer;
    b.resident_bytes = total - blocks;
    b.kv_cache = 2 * (uint64_t)m->n_layer * (uint64_t)m->n_ctx * (uint64_t)m->kv_dim * 2;
    b.activations = scratch_bytes(m, engine_threads(p)) + (uint64_t)m->n_vocab * 4;
    /* the GGUF metadata tables, the tokenizer's copies of vocabulary and merges, jansson, code;
     * and what the CPU path's x8 copies add to the file's bytes (Q4_K: 2.8%) */
    b.host_base = (UINT64_C(48) << 20) + x8_growth(m);
    b.cpu_ok = 1;
    b.gpu_ok = gpu_is_fake(); /* a pretend device plans GPU modes in any build (llm_open runs them on the CPU) */
#ifdef ISOPIPE_CUDA
    /* beefy and lightweight: checked against the CPU path on an H100 with
     * tests/gpu/llm_check.sh (float-activation logits within 6.4e-4, arenas
     * equal to this plan). The activations figure covers both paths. */
    b.gpu_ok = 1;
    struct llmc_dims d;
    cuda_dims(m, &d);
    uint64_t gpu_act = llmc_bytes(&d) - b.kv_cache;   /* llmc's arena holds the KV cache too */
    if (gpu_act > b.activations) b.activations = gpu_act;
#endif
    const char *slash = strrchr(path, '/');
    char name[256];
    snprintf(name, sizeof name, "%s (%s %s)", slash ? slash + 1 : path, m->arch, m->quant);
    rc = plan_from_blocks(out, name, &b);
done:
    free(blk);
    llm_close(&m);
    return rc;
}

const struct gguf *llm_gguf(const struct llm *m) { return m->g; }
int llm_n_vocab(const struct llm *m) { return m->n_vocab; }
int llm_n_ctx(const struct llm *m) { return m->n_ctx; }
int llm_n_ctx_train(const struct llm *m) { return m->n_ctx_train; }
const char *llm_arch(const struct llm *m) { return m->arch; }
const char *llm_quant(const struct llm *m) { return m->quant; }
enum mem_mode llm_mode(const struct llm *m) { return m->mode; }
uint64_t llm_n_params(const struct llm *m) { return m->n_params; }
