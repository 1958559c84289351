/* test_prompt_expand_forward.c — the forward pass against two independent
 * references:
 *  1. tiny synthetic llama and qwen2 models (random F32/F16 weights, written
 *     here as GGUF files) against a float64 forward pass written here from the
 *     architecture description (RMSNorm, RoPE normal/NEOX, GQA, SwiGLU, QKV bias);
 *  2. the real default model (SmolLM2-135M Q4_1) teacher-forced over the token
 *     sequences of tests/fixtures/llm/smollm2_forward.json, whose top-5 logits
 *     per position llama.cpp computed (tests/ref/llm_forward_ref.py). Skips when
 *     the model file is absent (make models fetches it).
 * The same for Qwen2.5-Coder 0.5B (tests/fixtures/llm/qwen2.5-0.5b_forward.json)
 * when models/qwen2.5-0.5b.gguf or $ISOPIPE_QWEN_GGUF is that file, and 1.5B
 * (qwen2.5-1.5b_forward.json; models/qwen2.5-1.5b.gguf or $ISOPIPE_QWEN15_GGUF);
 * each fixture records llama.cpp's agreement with itself, which is then the
 * top-1 criterion.
 * On the thresholds of (2): with 8-bit activation blocks this model amplifies
 * last-bit differences (a float summed in another order flips the rounding of
 * an activation, and 30 layers compound it). llama.cpp disagrees with ITSELF
 * (n_batch 1 vs 1024, same file, same machine) on 5.2% of top-1 tokens with a
 * mean |logit difference| of 0.135 over these texts, and our scalar and AVX2
 * kernels differ from each other as much. So the test asks for what an
 * independent implementation can meet: overall top-1 agreement >= 93%,
 * >= 99% at positions where llama.cpp's top-1 leads its runner-up by >= 1
 * logit (the prediction is not a near-tie), our top-1 always among
 * llama.cpp's top-5, and mean |difference| <= 0.25. The figures are printed. */
#include "test.h"
#include "err.h"
#include "fs.h"
#include "gguf.h"
#include "llm.h"
#include "quant.h"
#include "sha256.h"

#include <jansson.h>
#include <math.h>
#include <stdint.h>

/* ---------- a GGUF writer for the synthetic models ---------- */
struct buf { uint8_t *p; size_t n, cap; };
static void put(struct buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) { b->cap = (b->n + n) * 2 + 64; b->p = realloc(b->p, b->cap); }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}
static void u32(struct buf *b, uint32_t v) { put(b, &v, 4); }   /* little-endian host (x86, arm) */
static void u64(struct buf *b, uint64_t v) { put(b, &v, 8); }
static void str(struct buf *b, const char *s) { u64(b, strlen(s)); put(b, s, strlen(s)); }
static void kv_u32(struct buf *b, const char *k, uint32_t v) { str(b, k); u32(b, GGUF_T_UINT32); u32(b, v); }
static void kv_f32(struct buf *b, const char *k, float v) { str(b, k); u32(b, GGUF_T_FLOAT32); put(b, &v, 4); }
static void kv_str(struct buf *b, const char *k, const char *v) { str(b, k); u32(b, GGUF_T_STRING); str(b, v); }

static uint64_t rng = 12345;
static double rnd(void)   /* uniform in [-1, 1) */
{
    rng ^= rng << 13; rng ^= rng >> 7; rng ^= rng << 17;
    return ((rng >> 11) & 0xFFFFFF) / 8388608.0 - 1.0;
}

/* the synthetic model: shapes, and float64 copies of every weight as stored */
enum { V = 50, E = 64, NH = 4, NKV = 2, HD = 16, FF = 96, NL = 2 };
struct tiny {
    int qwen2;
    double emb[V][E], out[V][E], onorm[E];
    double anorm[NL][E], fnorm[NL][E];
    double wq[NL][NH * HD][E], wk[NL][NKV * HD][E], wv[NL][NKV * HD][E], wo[NL][E][NH * HD];
    double bq[NL][NH * HD], bk[NL][NKV * HD], bv[NL][NKV * HD];
    double wg[NL][FF][E], wu[NL][FF][E], wd[NL][E][FF];
    float base, eps;
};

struct tinfo { char name[64]; int ne0, ne1; int f16; const double *src; };

static double half_round(double v) { return quant_f16_to_f32(quant_f32_to_f16((float)v)); }

/* fills a weight with random values (rounded to what is stored) and records its tensor info */
static void weight(struct tinfo *ti, int *nt, const char *name, int ne0, int ne1, int f16, double *dst, double scale, double offset)
{
    for (int i = 0; i < ne0 * ne1; i++) {
        double v = offset + scale * rnd();
        dst[i] = f16 ? half_round(v) : (double)(float)v;
    }
    struct tinfo *t = &ti[(*nt)++];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->ne0 = ne0; t->ne1 = ne1; t->f16 = f16; t->src = dst;
}

static struct buf tiny_gguf(struct tiny *m, const char *arch)
{
    static struct tinfo ti[64];
    int nt = 0;
    char nm[64];
    double s = 1.0 / sqrt(E);
    weight(ti, &nt, "token_embd.weight", E, V, 0, &m->emb[0][0], 1.0, 0);
    weight(ti, &nt, "output.weight", E, V, 1, &m->out[0][0], s, 0);
    weight(ti, &nt, "output_norm.weight", E, 1, 0, m->onorm, 0.2, 1.0);
    for (int l = 0; l < NL; l++) {
#define W(field, suffix, ne0, ne1, f16, sc, off) snprintf(nm, sizeof nm, "blk.%d." suffix, l); \
        weight(ti, &nt, nm, ne0, ne1, f16, (double *)m->field[l], sc, off);
        W(anorm, "attn_norm.weight", E, 1, 0, 0.2, 1.0)
        W(fnorm, "ffn_norm.weight", E, 1, 0, 0.2, 1.0)
        W(wq, "attn_q.weight", E, NH * HD, 1, s, 0)
        W(wk, "attn_k.weight", E, NKV * HD, 0, s, 0)
        W(wv, "attn_v.weight", E, NKV * HD, 1, s, 0)
        W(wo, "attn_output.weight", NH * HD, E, 0, s, 0)
        W(wg, "ffn_gate.weight", E, FF, 1, s, 0)
        W(wu, "ffn_up.weight", E, FF, 0, s, 0)
        W(wd, "ffn_down.weight", FF, E, 1, 1.0 / sqrt(FF), 0)
        if (m->qwen2) {
            W(bq, "attn_q.bias", NH * HD, 1, 0, 0.5, 0)
            W(bk, "attn_k.bias", NKV * HD, 1, 0, 0.5, 0)
            W(bv, "attn_v.bias", NKV * HD, 1, 0, 0.5, 0)
        } else {
            memset(m->bq[l], 0, sizeof m->bq[l]); memset(m->bk[l], 0, sizeof m->bk[l]); memset(m->bv[l], 0, sizeof m->bv[l]);
        }
#undef W
    }
    struct buf b = {0};
    char key[96];
    put(&b, "GGUF", 4); u32(&b, 3); u64(&b, (uint64_t)nt); u64(&b, 9);
    kv_str(&b, "general.architecture", arch);
#define KU(k, v) snprintf(key, sizeof key, "%s." k, arch); kv_u32(&b, key, v);
    KU("embedding_length", E) KU("block_count", NL) KU("feed_forward_length", FF)
    KU("attention.head_count", NH) KU("attention.head_count_kv", NKV) KU("context_length", 128)
#undef KU
    snprintf(key, sizeof key, "%s.rope.freq_base", arch); kv_f32(&b, key, m->base);
    snprintf(key, sizeof key, "%s.attention.layer_norm_rms_epsilon", arch); kv_f32(&b, key, m->eps);
    uint64_t off = 0;
    for (int i = 0; i < nt; i++) {
        str(&b, ti[i].name);
        u32(&b, ti[i].ne1 > 1 ? 2 : 1);
        u64(&b, (uint64_t)ti[i].ne0);
        if (ti[i].ne1 > 1) u64(&b, (uint64_t)ti[i].ne1);
        u32(&b, ti[i].f16 ? GGML_TYPE_F16 : GGML_TYPE_F32);
        u64(&b, off);
        off += ((uint64_t)ti[i].ne0 * ti[i].ne1 * (ti[i].f16 ? 2 : 4) + 31) / 32 * 32;
    }
    while (b.n % 32) put(&b, "", 1);
    for (int i = 0; i < nt; i++) {
        size_t start = b.n;
        for (int k = 0; k < ti[i].ne0 * ti[i].ne1; k++) {
            if (ti[i].f16) { uint16_t h = quant_f32_to_f16((float)ti[i].src[k]); put(&b, &h, 2); }
            else { float f = (float)ti[i].src[k]; put(&b, &f, 4); }
        }
        while ((b.n - start) % 32) put(&b, "", 1);
    }
    return b;
}

/* ---------- the float64 reference forward pass ---------- */
static void ref_rmsnorm(double *o, const double *x, const double *w, int n, double eps)
{
    double ss = 0;
    for (int i = 0; i < n; i++) ss += x[i] * x[i];
    double r = 1.0 / sqrt(ss / n + eps);
    for (int i = 0; i < n; i++) o[i] = x[i] * r * w[i];
}
static void ref_matvec(double *y, const double *w, const double *x, int rows, int cols)
{
    for (int r = 0; r < rows; r++) {
        double s = 0;
        for (int c = 0; c < cols; c++) s += w[(size_t)r * cols + c] * x[c];
        y[r] = s;
    }
}
/* rotary embedding of one head: dimension pairs (2i, 2i+1) for llama's permuted
 * weights, (i, i + d/2) for NEOX (qwen2); frequency base^(-2i/d) */
static void ref_rope(double *v, int pos, double base, int neox)
{
    for (int i = 0; i < HD / 2; i++) {
        double th = pos * pow(base, -2.0 * i / HD);
        int a = neox ? i : 2 * i, b = neox ? i + HD / 2 : 2 * i + 1;
        double x0 = v[a], x1 = v[b];
        v[a] = x0 * cos(th) - x1 * sin(th);
        v[b] = x0 * sin(th) + x1 * cos(th);
    }
}

static void ref_forward(const struct tiny *m, const int32_t *tok, int n, double *logits /* n x V */)
{
    static double K[NL][128][NKV * HD], Vc[NL][128][NKV * HD];
    for (int p = 0; p < n; p++) {
        double x[E], h[E], q[NH * HD], k[NKV * HD], v[NKV * HD], att[NH * HD], o[E], g[FF], u[FF];
        memcpy(x, m->emb[tok[p]], sizeof x);
        for (int l = 0; l < NL; l++) {
            ref_rmsnorm(h, x, m->anorm[l], E, m->eps);
            ref_matvec(q, &m->wq[l][0][0], h, NH * HD, E);
            ref_matvec(k, &m->wk[l][0][0], h, NKV * HD, E);
            ref_matvec(v, &m->wv[l][0][0], h, NKV * HD, E);
            for (int i = 0; i < NH * HD; i++) q[i] += m->bq[l][i];
            for (int i = 0; i < NKV * HD; i++) { k[i] += m->bk[l][i]; v[i] += m->bv[l][i]; }
            for (int hh = 0; hh < NH; hh++) ref_rope(q + hh * HD, p, m->base, m->qwen2);
            for (int hh = 0; hh < NKV; hh++) ref_rope(k + hh * HD, p, m->base, m->qwen2);
            memcpy(K[l][p], k, sizeof k);
            memcpy(Vc[l][p], v, sizeof v);
            for (int hh = 0; hh < NH; hh++) {
                int kv = hh / (NH / NKV);
                double sc[128], mx = -1e300, sum = 0;
                for (int j = 0; j <= p; j++) {
                    double s = 0;
                    for (int d = 0; d < HD; d++) s += q[hh * HD + d] * K[l][j][kv * HD + d];
                    sc[j] = s / sqrt(HD);
                    if (sc[j] > mx) mx = sc[j];
                }
                for (int j = 0; j <= p; j++) { sc[j] = exp(sc[j] - mx); sum += sc[j]; }
                for (int d = 0; d < HD; d++) {
                    double a = 0;
                    for (int j = 0; j <= p; j++) a += sc[j] / sum * Vc[l][j][kv * HD + d];
                    att[hh * HD + d] = a;
                }
            }
            ref_matvec(o, &m->wo[l][0][0], att, E, NH * HD);
            for (int i = 0; i < E; i++) x[i] += o[i];
            ref_rmsnorm(h, x, m->fnorm[l], E, m->eps);
            ref_matvec(g, &m->wg[l][0][0], h, FF, E);
            ref_matvec(u, &m->wu[l][0][0], h, FF, E);
            for (int i = 0; i < FF; i++) g[i] = g[i] / (1 + exp(-g[i])) * u[i];
            ref_matvec(o, &m->wd[l][0][0], g, E, FF);
            for (int i = 0; i < E; i++) x[i] += o[i];
        }
        ref_rmsnorm(h, x, m->onorm, E, m->eps);
        ref_matvec(logits + (size_t)p * V, &m->out[0][0], h, V, E);
    }
}

static void test_tiny(int qwen2)
{
    const char *arch = qwen2 ? "qwen2" : "llama";
    printf("# tiny synthetic %s model vs a float64 forward pass\n", arch);
    struct tiny *m = calloc(1, sizeof *m);
    m->qwen2 = qwen2;
    m->base = qwen2 ? 1000000.0f : 10000.0f;
    m->eps = 1e-6f;
    struct buf b = tiny_gguf(m, arch);
    char *dir = test_tmpdir(), *path = fs_join(dir, "tiny.gguf");
    FILE *f = fopen(path, "wb");
    fwrite(b.p, 1, b.n, f);
    fclose(f);
    enum { N = 40 };
    int32_t tok[N];
    for (int i = 0; i < N; i++) tok[i] = (int32_t)((i * 7 + 3) % V);
    double *ref = malloc(sizeof(double) * N * V);
    ref_forward(m, tok, N, ref);
    struct llm_params p;
    llm_params_default(&p);
    p.n_ctx = 64;
    p.threads = 2;
    struct llm *lm = NULL;
    struct mem_plan plan;
    int rc = llm_plan(path, &p, &plan);
    CHECKF(rc == 0, "plan: %s", iso_errmsg());
    if (rc == 0) {
        /* f16 K and V: 2 tensors x layers x context x kv heads x head size x 2 bytes */
        CHECK(plan.blocks.kv_cache == 2ull * NL * 64 * NKV * HD * 2);
        CHECK(plan.blocks.n_blocks == NL);
        uint64_t layer = (uint64_t)E * 2 * 4 + (uint64_t)E * NH * HD * (2 + 4) + (uint64_t)E * NKV * HD * (4 + 2) +
                         (uint64_t)E * FF * (2 + 4 + 2) + (qwen2 ? (uint64_t)(NH + 2 * NKV) * HD * 4 : 0);
        CHECKF(plan.blocks.block_bytes == layer, "block %llu, want %llu", (unsigned long long)plan.blocks.block_bytes, (unsigned long long)layer);
        CHECK(plan.blocks.resident_bytes == (uint64_t)E * V * (4 + 2) + E * 4);
#ifdef ISOPIPE_CUDA
        CHECK(plan.mode[MEM_MODE_CPU].possible && plan.mode[MEM_MODE_BEEFY].possible && plan.mode[MEM_MODE_LIGHTWEIGHT].possible);
        CHECK(plan.mode[MEM_MODE_LIGHTWEIGHT].vram_peak <= plan.mode[MEM_MODE_BEEFY].vram_peak);   /* 2 layers: both hold all */
#else
        CHECK(plan.mode[MEM_MODE_CPU].possible && !plan.mode[MEM_MODE_BEEFY].possible);
#endif
    }
    rc = llm_open(path, &p, &lm);
    CHECKF(rc == 0, "%s", iso_errmsg());
    if (lm) {
        CHECK_STR(llm_arch(lm), arch);
        CHECK(llm_n_vocab(lm) == V && llm_n_ctx(lm) == 64);
        float *lg = malloc(sizeof(float) * N * V);
        /* teacher forcing in two calls (33 + 7: crosses the 32-token chunk) */
        CHECK(llm_eval_all(lm, tok, 33, 0, lg) == 0);
        CHECK(llm_eval_all(lm, tok + 33, N - 33, 33, lg + 33 * V) == 0);
        double maxd = 0, scale = 0;
        int agree = 0;
        for (int t = 0; t < N; t++) {
            int a = 0, r = 0;
            for (int i = 0; i < V; i++) {
                double d = fabs(lg[t * V + i] - ref[t * V + i]);
                if (d > maxd) maxd = d;
                if (fabs(ref[t * V + i]) > scale) scale = fabs(ref[t * V + i]);
                if (lg[t * V + i] > lg[t * V + a]) a = i;
                if (ref[t * V + i] > ref[t * V + r]) r = i;
            }
            agree += a == r;
        }
        printf("# %s: max |logit - ref| = %.3g (logits up to %.3g), top-1 agreement %d/%d\n", arch, maxd, scale, agree, N);
        /* our KV cache and attention query are half precision: ~1e-3 relative */
        CHECKF(maxd < 0.002 * scale, "%s: max logit difference %g", arch, maxd);
        CHECK(agree >= N - 1);
        /* incremental decoding reuses the cache: the same logits token by token */
        float *one = malloc(sizeof(float) * V);
        double maxi = 0;
        CHECK(llm_eval(lm, tok, 10, 0, one) == 0);
        for (int t = 10; t < 20; t++) {
            CHECK(llm_eval(lm, tok + t, 1, t, one) == 0);
            for (int i = 0; i < V; i++) if (fabs(one[i] - lg[t * V + i]) > maxi) maxi = fabs(one[i] - lg[t * V + i]);
        }
        CHECKF(maxi < 1e-4, "incremental vs batch: %g", maxi);
        int32_t bad = V;
        CHECK(llm_eval(lm, &bad, 1, 0, one) == ISO_EDATA);
        CHECK(llm_eval(lm, tok, 1, 64, one) == ISO_EDATA);     /* beyond the context */
        free(one);
        free(lg);
    }
    llm_close(&lm);
    CHECK(lm == NULL);
    free(ref);

    /* an architecture we do not run: exit 69 naming it */
    memcpy(memmem(b.p, b.n, arch, 5), qwen2 ? "mamba" : "gptj_", 5);
    f = fopen(path, "wb");
    fwrite(b.p, 1, b.n, f);
    fclose(f);
    rc = llm_open(path, &p, &lm);
    CHECKF(rc == ISO_EUNAVAIL && strstr(iso_errmsg(), qwen2 ? "mamba" : "gptj_"), "rc %d: %s", rc, iso_errmsg());
    free(b.p);
    free(path);
    fs_rm_rf(dir);
    free(m);
}

/* ---------- the real models against llama.cpp ---------- */
/* name: the model file under models/ (env: a variable that may name it
 * elsewhere); fixture: under tests/fixtures/llm/. With a fixture written by
 * llm_forward_ref.py --self the top-1 criterion is llama.cpp's agreement
 * with itself across its batch sizes; without, the SmolLM2 figures above. */
static void test_llama_cpp(const char *name, const char *env, const char *fixture, const char *fetch)
{
    printf("# %s teacher-forced vs llama.cpp (fixture %s)\n", name, fixture);
    const char *root = getenv("ISOPIPE_ROOT");
    char model[1024], fix[1024];
    const char *ev = env ? getenv(env) : NULL;
    if (ev && *ev) snprintf(model, sizeof model, "%s", ev);
    else snprintf(model, sizeof model, "%s/models/%s", root ? root : ".", name);
    snprintf(fix, sizeof fix, "%s/tests/fixtures/llm/%s", root ? root : ".", fixture);
    if (!fs_exists(model)) { TEST_SKIP("%s is absent (%s)", model, fetch); return; }
    if (!fs_exists(fix)) { TEST_SKIP("no fixture %s for this model (tests/ref/llm_forward_ref.py --self writes one)", fix); return; }
    json_error_t je;
    json_t *doc = json_load_file(fix, 0, &je);
    CHECKF(doc != NULL, "cannot read '%s': %s", fix, je.text);
    if (!doc) return;
    char hex[65];
    const char *want = json_string_value(json_object_get(doc, "model_sha256"));
    if (sha256_file(model, hex) < 0 || !want || strcmp(hex, want) != 0) {
        TEST_SKIP("%s is not the file the fixture was made with", model);
        json_decref(doc);
        return;
    }
    struct llm_params p;
    llm_params_default(&p);
    p.n_ctx = 1024;
    p.threads = 2;
    struct llm *lm = NULL;
    int rc = llm_open(model, &p, &lm);
    CHECKF(rc == 0, "%s", iso_errmsg());
    if (!lm) { json_decref(doc); return; }
    int nv = llm_n_vocab(lm);
    enum { W = 64 };
    float *lg = malloc(sizeof(float) * W * (size_t)nv);
    json_t *seqs = json_object_get(doc, "sequences");
    size_t si, positions = 0, agree = 0, agree5 = 0, nd = 0, confident = 0, agree_conf = 0;
    double maxd = 0, sumd = 0, max_top1 = 0;
    json_t *seq;
    json_array_foreach(seqs, si, seq) {
        json_t *jt = json_object_get(seq, "tokens"), *j5 = json_object_get(seq, "top5"), *jl = json_object_get(seq, "top5_logits");
        int n = (int)json_array_size(jt);
        int32_t *tok = malloc(sizeof(int32_t) * (size_t)(n ? n : 1));
        for (int i = 0; i < n; i++) tok[i] = (int32_t)json_integer_value(json_array_get(jt, (size_t)i));
        for (int s = 0; s < n; s += W) {
            int nt = n - s < W ? n - s : W;
            rc = llm_eval_all(lm, tok + s, nt, s, lg);
            if (rc < 0) { CHECKF(0, "%s", iso_errmsg()); break; }
            for (int t = 0; t < nt; t++) {
                const float *row = lg + (size_t)t * nv;
                json_t *ids = json_array_get(j5, (size_t)(s + t)), *ls = json_array_get(jl, (size_t)(s + t));
                int best = 0;
                for (int i = 1; i < nv; i++) if (row[i] > row[best]) best = i;
                int r0 = (int)json_integer_value(json_array_get(ids, 0));
                agree += best == r0;
                int in5 = 0;
                for (size_t k = 0; k < 5; k++) {
                    int id = (int)json_integer_value(json_array_get(ids, k));
                    double d = fabs(row[id] - json_number_value(json_array_get(ls, k)));
                    if (k == 0 && d > max_top1) max_top1 = d;
                    if (d > maxd) maxd = d;
                    sumd += d; nd++;
                    in5 |= id == best;
                }
                agree5 += in5;
                positions++;
                double margin = json_number_value(json_array_get(ls, 0)) - json_number_value(json_array_get(ls, 1));
                if (margin >= 1.0) { confident++; agree_conf += best == r0; }
            }
        }
        free(tok);
    }
    double rate = positions ? (double)agree / positions : 0;
    printf("# %zu positions: top-1 agreement %.2f%% (%zu), our top-1 within llama.cpp's top-5 %.2f%%\n",
           positions, 100 * rate, agree, positions ? 100.0 * agree5 / positions : 0);
    printf("# |logit - llama.cpp| over the reference top-5: max %.4f, mean %.4f (top-1 entries: max %.4f)\n",
           maxd, nd ? sumd / nd : 0, max_top1);
    double rate_conf = confident ? (double)agree_conf / confident : 0;
    printf("# positions where llama.cpp's top-1 leads by >= 1 logit: %zu, top-1 agreement there %.2f%%\n",
           confident, 100 * rate_conf);
    double need = 0.93;
    json_t *self = json_object_get(doc, "self_agreement");
    if (self) {
        need = json_number_value(json_object_get(self, "top1"));
        printf("# criterion: top-1 agreement >= llama.cpp's with itself (n_batch 1 vs 1024): %.2f%%\n", 100 * need);
    }
    CHECKF(positions >= 2000, "only %zu positions", positions);
    CHECKF(rate >= need, "top-1 agreement %.4f < %.4f", rate, need);
    CHECKF(confident >= positions / 3 && rate_conf >= 0.99, "top-1 agreement %.4f at %zu clear positions", rate_conf, confident);
    CHECKF(agree5 == positions, "%zu positions where our top-1 is outside llama.cpp's top-5", positions - agree5);
    CHECKF(maxd < 3.0 && sumd / (nd ? nd : 1) < 0.25, "logit differences max %g mean %g", maxd, sumd / (nd ? nd : 1));
    /* threads change the work split, never the arithmetic of a row */
    llm_close(&lm);
    p.threads = 1;
    p.n_ctx = 64;
    float *one = malloc(sizeof(float) * (size_t)nv);
    if (llm_open(model, &p, &lm) == 0) {
        json_t *jt = json_object_get(json_array_get(seqs, 0), "tokens");
        int32_t tok[20];
        for (int i = 0; i < 20; i++) tok[i] = (int32_t)json_integer_value(json_array_get(jt, (size_t)i));
        CHECK(llm_eval(lm, tok, 16, 0, one) == 0);
        llm_close(&lm);
        p.threads = 2;
        CHECK(llm_open(model, &p, &lm) == 0);
        CHECK(llm_eval_all(lm, tok, 20, 0, lg) == 0);
        CHECK(memcmp(one, lg + 15 * (size_t)nv, sizeof(float) * (size_t)nv) == 0);
        /* token-by-token decoding (the one-token matvec kernels) gives the batch's logits bit for bit */
        int same = 1;
        for (int t = 16; t < 20; t++) {
            CHECK(llm_eval(lm, tok + t, 1, t, one) == 0);
            same &= memcmp(one, lg + (size_t)t * nv, sizeof(float) * (size_t)nv) == 0;
        }
        CHECK(same);
        if (strncmp(name, "SmolLM2", 7) == 0) {
            CHECK_STR(llm_quant(lm), "Q4_1");
            CHECK(llm_n_params(lm) > 130000000 && llm_n_params(lm) < 140000000);
        }
    }
    llm_close(&lm);
    free(one);
    free(lg);
    json_decref(doc);
}

int main(void)
{
    struct llm *lm = NULL;
    struct llm_params p;
    llm_params_default(&p);
    TEST("open errors");
    CHECK(llm_open("/nonexistent/model.gguf", &p, &lm) == ISO_ENOINPUT && lm == NULL);
    p.mode = MEM_MODE_BEEFY;   /* a CPU-only build, or no device here: refused, naming CUDA */
    CHECK(llm_open("/nonexistent/model.gguf", &p, &lm) == ISO_EUNAVAIL && strstr(iso_errmsg(), "CUDA"));
    test_tiny(0);
    test_tiny(1);
    test_llama_cpp("SmolLM2-135M-Instruct.Q4_1.gguf", NULL, "smollm2_forward.json", "run make models");
    test_llama_cpp("qwen2.5-0.5b.gguf", "ISOPIPE_QWEN_GGUF", "qwen2.5-0.5b_forward.json",
                   "make models LLM=qwen2.5-0.5b fetches it; or set ISOPIPE_QWEN_GGUF");
    /* the 1.5B (Q4_K, Q6_K): its fixture's criterion is llama.cpp's 96.15% with itself */
    test_llama_cpp("qwen2.5-1.5b.gguf", "ISOPIPE_QWEN15_GGUF", "qwen2.5-1.5b_forward.json",
                   "make models LLM=qwen2.5-1.5b fetches it; or set ISOPIPE_QWEN15_GGUF");
    return test_report();
}
