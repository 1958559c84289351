/* nn.h — the numerical core every model is written on (the Wan DiT, umT5,
 * the Wan VAE, RIFE, later models): GEMM through OpenBLAS (bf16 and fp8
 * weights on AMX where the CPU has it, see nn_set_precision), attention,
 * LayerNorm/RMSNorm, GELU/SiLU, RoPE, adaLN modulation and convolutions as
 * GEMM, all on one thread pool (common/pool.h).
 *
 * Conventions. Activations are float32, row-major, in memory the context
 * owns or the caller allocated with nn_alloc. A model's forward touches
 * activations only through nn_* calls, so that the same forward can later
 * run on another backend (the context says which: NN_CPU, or NN_CUDA in a
 * CUDA build, where every pointer an op takes is device memory; see
 * "The CUDA backend" below and docs/nn.md). Weights are views into a mapping (struct nn_w): f32, f16,
 * bf16 or fp8 e4m3/e5m2 with a per-tensor scale ("scaled fp8"); non-f32
 * weights are converted tile by tile into per-thread scratch, never whole.
 * Layouts follow PyTorch so that a loader passes weights as they are stored:
 * Linear W is [out, in], Conv2d W is [O, C/groups, kh, kw], Conv3d W is
 * [O, C, kt, kh, kw], ConvTranspose2d W is [C, O, kh, kw].
 *
 * Every function is deterministic for a given thread count and, where it
 * matters (reductions), also across thread counts: each output element is
 * computed by one thread in a fixed order. Errors: functions that can fail
 * (allocation) return 0 or ISO_E*; compute functions check nothing at run
 * time beyond what their comment says — the model checked shapes at load. */
#ifndef ISOPIPE_NN_H
#define ISOPIPE_NN_H
#include <stddef.h>
#include <stdint.h>

#include "weights.h"

struct pool;

enum nn_backend { NN_CPU = 0, NN_CUDA };

struct nn;
struct gpu_arena;

/* threads >= 1: the pool's size and OpenBLAS's thread count (an NN_CUDA
 * context has the pool too, for the model's own host-side work).
 * NN_CUDA succeeds only in a CUDA build (make CUDA=1) on a machine with a
 * CUDA device and a cuBLAS that dlopen finds (libcublas.so.13, .so.12,
 * libcublas.so); it creates the CUDA context (gpu_activate) only once cuBLAS
 * was found. Otherwise ISO_EUNAVAIL with one line saying why (iso_errmsg),
 * and nothing is held: the caller goes on in cpu mode. */
int nn_new(struct nn **out, enum nn_backend backend, int threads);
enum nn_backend nn_backend_of(const struct nn *nn);
void nn_free(struct nn **nn);
int nn_threads(const struct nn *nn);
struct pool *nn_pool(struct nn *nn);
/* Precision of products with bf16 / fp8 weights: NN_PREC_F32 (the
 * default) gives float32 products, NN_PREC_BF16X2 keeps activations to
 * 2^-17 relative (two bf16 parts), NN_PREC_BF16 rounds them to bf16 (2^-9,
 * what PyTorch's bf16 kernels do). The numerics are the same on every CPU;
 * the speed is not: where the CPU multiplies bf16 natively (AMX; see nn.c)
 * NN_PREC_BF16 runs about 3x as fast as NN_PREC_F32, elsewhere the rounded
 * activations go through the float32 sgemm at its speed. Products with
 * float32 weights are float32 in every mode. The environment
 * variable ISOPIPE_NN_PREC=bf16|bf16x2 sets the mode at nn_new (for
 * benchmarks); ISOPIPE_NN_AMX=0 turns the AMX path off. */
enum nn_precision { NN_PREC_F32 = 0, NN_PREC_BF16X2, NN_PREC_BF16 };
void nn_set_precision(struct nn *nn, enum nn_precision p);
enum nn_precision nn_precision(const struct nn *nn);
/* which product path bf16 weights take, in words, for reports */
const char *nn_gemm_info(const struct nn *nn);
/* "openblas 0.3.21 (Haswell, pthreads)" — for reports */
const char *nn_blas_info(void);

/* activation memory (64-byte aligned, zeroed); NULL + iso_fail on failure.
 * NN_CUDA: device memory (256-byte aligned) from the context's chunks (see
 * nn_reserve), carved best-fit and merged again on nn_release
 * (common/nn_heap.h), so what a forward pass frees is one range again; the
 * device memory itself goes back at nn_free. */
float *nn_alloc(struct nn *nn, size_t nfloats);
/* the same for a tensor that outlives many calls (a model's causal caches):
 * on NN_CUDA carved from the top of the reservation, so it does not split
 * the room the short-lived ones reuse; released with nn_release */
float *nn_alloc_keep(struct nn *nn, size_t nfloats);
void nn_release(struct nn *nn, float **p);
/* NN_CPU: keep up to `bytes` of released blocks of 1 MiB or more for reuse
 * by later nn_alloc calls of 4/5 their size or more (a model that frees and
 * allocates the same large tensors every chunk then touches new pages only
 * once: where the process maps such blocks (a low mmap threshold), each
 * allocation otherwise costs page faults and the kernel's zeroing). The
 * cached bytes count towards RSS: plans add `bytes`. 0 (default): none. */
void nn_set_host_cache(struct nn *nn, uint64_t bytes);

/* ---- the CUDA backend (all no-ops or plain copies on NN_CPU) ----
 * Device memory for nn_alloc comes in chunks, each one gpu_arena
 * ("nn-activations"): nn_reserve makes one of `bytes` up front (what the
 * plan computed for activations); when a request does not fit what is
 * there, a new chunk of max(NN_CUDA_CHUNK, request) is made. The fixed part,
 * made at nn_new, is nn_cuda_fixed_bytes(): the cuBLAS workspace
 * (cublasSetWorkspace) and two scratch buffers of NN_CUDA_SLICE bytes (bf16
 * activation terms, converted weight tiles, im2col columns); an op whose
 * smallest slice exceeds a scratch buffer (one input row of a transposed
 * convolution wider than NN_CUDA_SLICE) grows it (a new arena, kept until
 * nn_free). The CUDA context itself (about 520 MiB, docs/memory.md) and cuBLAS's own code and
 * handle state are not included: they are not ours to size. */
/* 0 until tests/gpu/nn_check.sh and each model's CUDA-vs-CPU check have
 * passed on a card: while 0, tools on the nn core plan their GPU modes with
 * gpu_explicit_only (common/plan.h), so `auto` keeps them on the CPU and
 * only an explicit --memory-mode beefy|lightweight runs the CUDA path. */
#define NN_CUDA_MODELS_VERIFIED 0
#define NN_CUDA_WORKSPACE (UINT64_C(32) << 20)
#define NN_CUDA_SLICE (UINT64_C(64) << 20)
#define NN_CUDA_CHUNK (UINT64_C(256) << 20)
/* the chunk made past the reservation for a request that no chunk holds:
 * max(NN_CUDA_CHUNK, request) (the CUDA backend, and its shadow on NN_CPU) */
static inline uint64_t nn_act_chunk_bytes(uint64_t request) { return request > NN_CUDA_CHUNK ? request : NN_CUDA_CHUNK; }
uint64_t nn_cuda_fixed_bytes(void);
/* what nn_reserve(bound) takes: the bound and a fragmentation allowance of
 * 1/16 (carving a bound's worth of tensors in the order a forward asks for
 * them needed up to 0.6% more than the bound in the shadow runs of the test
 * fixtures, docs/memory.md). Plans count this, not the bare bound. */
uint64_t nn_act_reserve_bytes(uint64_t bound);
/* one activation chunk for `bound` bytes of activations now (0, or
 * ISO_ETEMPFAIL): nn_act_reserve_bytes(bound) of it. On NN_CPU (a
 * GPU mode on a pretend device) it starts a shadow of the device: from then
 * on every nn_alloc / nn_release also runs through the same heaps the CUDA
 * backend would carve, without device memory, so nn_act_stats says whether
 * the reservation (the plan's bound) held the real allocation sequence. */
int nn_reserve(struct nn *nn, uint64_t bytes);
/* what the activations took: the reservation, the highest end reached in
 * it, the most allocated at once, and chunks made past it (on NN_CUDA, or
 * the shadow on NN_CPU; all 0 without nn_reserve). nn_heap.h. */
struct nn_act_stats;
void nn_act_stats(const struct nn *nn, struct nn_act_stats *st);
/* host <-> backend copies of n floats (synchronous: done on return; on
 * NN_CPU a memcpy, nothing when dst == src). 0 or a status: on NN_CUDA the
 * first error of any op since the last check is returned here too. */
int nn_upload(struct nn *nn, float *dst, const float *host, size_t n);
int nn_download(struct nn *nn, float *host, const float *src, size_t n);
/* dst = src, n floats, both backend memory (on the context's stream) */
void nn_copy(struct nn *nn, float *dst, const float *src, size_t n);
/* wait for every op queued so far; 0 or the first error since the last check */
int nn_sync(struct nn *nn);
/* ops after this run on `stream` (a cudaStream_t: gpu_stream_handle(), e.g.
 * of stream_compute() for streamed blocks); NULL: the default stream. Waits
 * (on the host) for what was queued on the previous stream first; the same
 * stream again is a no-op. */
void nn_set_stream(struct nn *nn, void *stream);
/* where the backend is, in words, for reports ("cpu", "cuda: cuBLAS 130001
 * on NVIDIA H200") */
const char *nn_backend_info(const struct nn *nn);

/* a weight as stored: data points into the mapping */
struct nn_w {
    const void *data;
    enum wt_dtype dtype;     /* WT_F32, WT_F16, WT_BF16, WT_F8_E4M3, WT_F8_E5M2 */
    float scale;             /* multiplies every element (1 unless "scaled fp8") */
};
/* the view of a tensor (scale 1); a NULL tensor gives data NULL */
struct nn_w nn_w_of(const struct wt_tensor *t);
/* element i of a weight as float (host memory only: not for NN_CUDA weights) */
float nn_w_get(const struct nn_w *w, size_t i);
/* n elements from element `first` into dst (host memory only) */
void nn_w_to_f32(const struct nn_w *w, size_t first, size_t n, float *dst);

/* A weight made resident for the backend (beefy mode): n elements of w
 * copied into arena (or, arena NULL, into the context's own memory). fp8
 * weights become bf16 (exactly; the scale stays in out->scale); f32, f16,
 * bf16 are copied as they are. On NN_CPU *out = *w (read in place). */
int nn_w_upload(struct nn *nn, struct gpu_arena *arena, const struct nn_w *w, size_t n, struct nn_w *out);
/* the device bytes nn_w_upload takes for n elements of dtype (for plans) */
uint64_t nn_w_upload_bytes(enum wt_dtype dtype, size_t n);
/* A view into a staged block (lightweight mode): the weight lies at byte
 * `offset` of `base` (stream_get()'s pointer, or a host pointer on NN_CPU).
 * Any dtype nn_w takes; fp8 and f16 are converted per op into scratch. */
struct nn_w nn_w_at(const void *base, size_t offset, enum wt_dtype dtype, float scale);
/* Lay out `count` weights (n[k] elements of ws[k], as stored: fp8 stays
 * fp8) in one block for streaming, each at a 256-byte aligned offset
 * (offsets[k]; 0 and no bytes for a weight whose data is NULL). With block
 * non-NULL the bytes are copied there (host memory: a pinned block for
 * common/stream). Returns the block's size in bytes. At run time:
 * base = stream_get(...), then nn_w_at(base, offsets[k], ws[k].dtype, ws[k].scale). */
size_t nn_w_pack(const struct nn_w *ws, const size_t *n, int count, void *block, size_t *offsets);

/* ---- matrix products ---- */
/* C[M,N] = alpha * op(A) op(B) + beta * C; op(X) = X or X^T (row-major;
 * lda/ldb/ldc are row strides). Float32 throughout (cblas_sgemm), split
 * between the pool's threads only where the result stays bit-identical to
 * one call (see nn_gemm_split). */
void nn_gemm(struct nn *nn, int trans_a, int trans_b, int M, int N, int K, float alpha,
             const float *A, int lda, const float *B, int ldb, float beta, float *C, int ldc);
/* The granularity in which nn_gemm may slice the rows (*rows) and the
 * columns (*cols) of C between threads without changing a bit of the
 * result, probed once against this CPU's OpenBLAS kernel; 0: that side is
 * never split. */
void nn_gemm_split(int *rows, int *cols);
/* y[rows, out] = x[rows, in] W^T + b  (W [out, in]; b [out] or data NULL).
 * y must not alias x. */
void nn_linear(struct nn *nn, float *y, const float *x, int rows, int in, int out,
               const struct nn_w *W, const struct nn_w *b);

/* ---- normalisation (over the last dimension of [rows, d]) ---- */
/* w, b may be NULL or have data NULL (no affine); y may equal x */
void nn_layernorm(struct nn *nn, float *y, const float *x, int rows, int d,
                  const struct nn_w *w, const struct nn_w *b, float eps);
/* y = x / sqrt(mean(x^2) + eps) * w  (T5/Wan RMSNorm; w may be NULL) */
void nn_rmsnorm(struct nn *nn, float *y, const float *x, int rows, int d, const struct nn_w *w, float eps);
/* over channels of a channel-first [C, S] tensor (Wan VAE's RMS_norm:
 * F.normalize(x, dim=channels) * sqrt(C) * gamma + bias), for each of S
 * positions; gamma [C], bias [C] or NULL */
void nn_rmsnorm_channels(struct nn *nn, float *y, const float *x, int C, size_t S,
                         const struct nn_w *gamma, const struct nn_w *bias, float eps);
/* group norm over [C, S] with G groups (affine w, b [C] or NULL) */
void nn_groupnorm(struct nn *nn, float *y, const float *x, int C, size_t S, int G,
                  const struct nn_w *w, const struct nn_w *b, float eps);

/* ---- element-wise (n elements; y may equal an input) ---- */
enum nn_act { NN_ACT_GELU_TANH, NN_ACT_GELU_ERF, NN_ACT_SILU, NN_ACT_RELU };
void nn_act(struct nn *nn, float *y, const float *x, size_t n, enum nn_act act);
/* y = x * a  */
void nn_scale(struct nn *nn, float *y, const float *x, size_t n, float a);
/* y = a + b */
void nn_add(struct nn *nn, float *y, const float *a, const float *b, size_t n);
/* y = a * b */
void nn_mul(struct nn *nn, float *y, const float *a, const float *b, size_t n);
/* x[rows, d] += y[rows, d] * gate[d]   (gate NULL: x += y) */
void nn_add_gated(struct nn *nn, float *x, const float *y, const float *gate, int rows, int d);
/* y[rows, d] = x * (1 + scale[d]) + shift[d]   (adaLN modulation) */
void nn_modulate(struct nn *nn, float *y, const float *x, int rows, int d, const float *shift,
                 const float *scale);
/* y[rows, d] = x + b[d] */
void nn_add_bias(struct nn *nn, float *y, const float *x, int rows, int d, const struct nn_w *b);
/* in-place softmax over each row of [rows, d] */
void nn_softmax(struct nn *nn, float *x, int rows, int d);

/* ---- attention ----
 * q [Lq, H*D], k and v [Lk, H*D] (token-major, head h at columns h*D..),
 * out [Lq, H*D]: out_h = softmax(scale * q_h k_h^T + bias_h) v_h.
 * bias: NULL or [H, Lq, Lk] (T5's relative position bias); k_valid: the
 * first k_valid keys take part (the rest are padding), k_valid <= Lk.
 * Memory: per thread one [tile, Lk] score block, never [Lq, Lk] per head.
 * NN_CUDA: the fused kernel takes D <= NN_CUDA_ATTN_MAX_D; a larger head
 * (Wan2.1's VAE: one head of 384) with one head, no bias and every key
 * valid (k_valid < 0 or >= Lk) runs as nn_attention_products on a scratch of
 * nn_attention_products_bytes(D, Lq, Lk) taken from the context (plans add
 * it); any other case past the limit is an error at the next nn_sync.
 * With NN_PREC_BF16 (activations rounded to bf16) and no bias, D <= 128,
 * the CUDA backend runs it on tensor cores: q, k, v and the softmax weights
 * rounded to bf16, scores, softmax and sums in fp32 (diffusers' bf16 SDPA
 * rounds the same operands); every other case, and every CPU case, is
 * float32. */
void nn_attention(struct nn *nn, float *out, const float *q, const float *k, const float *v,
                  int Lq, int Lk, int H, int D, float scale, const float *bias, int k_valid);
#define NN_CUDA_ATTN_MAX_D 256
/* One head as products: o [Lq, D] = softmax(scale q k^T) v, with q [Lq, D],
 * k and v [Lk, D], in row slices whose scores (scratch: at least
 * nn_attention_products_bytes bytes, or for any D the slice's rows x Lk) are
 * at most 64 MiB; nn_gemm and nn_softmax on any backend. */
void nn_attention_products(struct nn *nn, float *o, const float *q, const float *k, const float *v, int Lq, int Lk,
                           int D, float scale, float *scores);
/* device scratch nn_attention takes for D past the fused kernel's limit (0 otherwise) */
uint64_t nn_attention_products_bytes(int D, int Lq, int Lk);

/* ---- rotary embeddings ----
 * x [L, H*D]; cos, sin [L, D/2]. Interleaved (Wan, GPT-J): pairs
 * (x[2i], x[2i+1]) rotate by angle i. Half (NeoX, Llama/Qwen HF): pairs
 * (x[i], x[i + D/2]). */
void nn_rope(struct nn *nn, float *x, int L, int H, int D, const float *cos, const float *sin, int interleaved);

/* ---- convolutions (one image / clip; batch is the caller's loop) ----
 * x [C, H, W] -> y [O, Ho, Wo], Ho = (H + 2ph - dh(kh-1) - 1)/sh + 1.
 * W [O, C/groups, kh, kw]; b [O] or NULL. Done as im2col + GEMM (groups 1)
 * with the column matrix built in slices that bound scratch memory. */
void nn_conv2d(struct nn *nn, float *y, const float *x, int C, int H, int W,
               const struct nn_w *w, const struct nn_w *b, int O, int kh, int kw,
               int sh, int sw, int ph, int pw, int dh, int dw, int groups);
/* ConvTranspose2d: W [C, O, kh, kw]; y [O, Ho, Wo],
 * Ho = (H-1)*sh - 2ph + kh (no output padding, no dilation) */
void nn_conv_transpose2d(struct nn *nn, float *y, const float *x, int C, int H, int W,
                         const struct nn_w *w, const struct nn_w *b, int O, int kh, int kw,
                         int sh, int sw, int ph, int pw);
/* Conv3d without temporal padding (causal models pad time themselves):
 * x [C, T, H, W], W [O, C, kt, kh, kw] -> y [O, To, Ho, Wo],
 * To = (T - kt)/st + 1; spatial padding ph, pw (zeros) */
void nn_conv3d(struct nn *nn, float *y, const float *x, int C, int T, int H, int W,
               const struct nn_w *w, const struct nn_w *b, int O, int kt, int kh, int kw,
               int st, int sh, int sw, int ph, int pw);

/* ---- strided copies and per-channel bias (the Wan VAE's padding, causal
 * caches, crops and frame gathers, so that no model code touches backend
 * memory from the host) ---- */
/* A 4-D box copy, n[0] outermost: for every i < n,
 *   dst[i0*ds[0] + i1*ds[1] + i2*ds[2] + i3*ds[3]] = src[i0*ss[0] + ... + i3*ss[3]]
 * (strides in elements). A source stride may be 0 (the element repeats: a
 * nearest upsampling, a broadcast); every destination element is written
 * once, and dst must not overlap src. Unit inner strides copy whole rows. */
void nn_copy_box(struct nn *nn, float *dst, const size_t ds[4], const float *src, const size_t ss[4], const int n[4]);
/* y[c, s] = x[c, s] + b[c] over [C, S] (a convolution's bias on
 * channel-first output; b NULL or data NULL: y = x); y may equal x */
void nn_add_channels(struct nn *nn, float *y, const float *x, int C, size_t S, const struct nn_w *b);
/* ---- relative position bias (umT5) ----
 * y [H, Lq, Lk] with y[h, i, j] = t[h, j - i + Lq - 1], from t [H, Lq + Lk - 1]
 * (one layer's bias per head and relative distance, which the model gathers
 * from its bucket table): the [H, Lq, Lk] bias nn_attention takes, built on
 * the backend from a table about 2/L of its size. A copy: exact on every
 * backend. */
void nn_relpos_bias(struct nn *nn, float *y, const float *t, int H, int Lq, int Lk);
#endif
