/* nn_cuda.h — the CUDA half of the nn core (nn_cuda.cu), called only by
 * nn.c in CUDA builds: nn.c keeps the public API and dispatches every op of
 * an NN_CUDA context here. All pointers are device pointers; weights are
 * passed as struct nn_w whose data is device memory. Compute functions
 * queue work on the context's stream and record the first failure, which
 * nnc_sync (and so nn_sync / nn_download) returns. */
#ifndef ISOPIPE_NN_CUDA_H
#define ISOPIPE_NN_CUDA_H
#ifdef ISOPIPE_CUDA
#include <stddef.h>
#include <stdint.h>

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif
struct nnc;

/* loads cuBLAS (dlopen), activates the CUDA context, makes the fixed
 * buffers; ISO_EUNAVAIL with a one-line reason when it cannot */
int nnc_new(struct nnc **out);
void nnc_free(struct nnc **c);
const char *nnc_info(const struct nnc *c);
void *nnc_alloc(struct nnc *c, size_t bytes, int top); /* zeroed; NULL + iso_fail; top: nn_alloc_keep */
void nnc_release(struct nnc *c, void *p);
int nnc_reserve(struct nnc *c, uint64_t bytes);
struct nn_act_stats;
void nnc_act_stats(const struct nnc *c, struct nn_act_stats *st);
int nnc_copy(struct nnc *c, void *dst, const void *src, size_t bytes, int to_device);
int nnc_sync(struct nnc *c);
void nnc_copy_d2d(struct nnc *c, void *dst, const void *src, size_t bytes);
void nnc_set_stream(struct nnc *c, void *stream);
int nnc_w_upload(struct nnc *c, struct gpu_arena *arena, const struct nn_w *w, size_t n, struct nn_w *out);

void nnc_gemm(struct nnc *c, int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
              const float *B, int ldb, float beta, float *C, int ldc);
void nnc_linear(struct nnc *c, int terms, float *y, const float *x, int rows, int in, int out,
                const struct nn_w *W, const struct nn_w *b);
void nnc_norm(struct nnc *c, float *y, const float *x, int rows, int d, const struct nn_w *w,
              const struct nn_w *b, float eps, int rms);
void nnc_rmsnorm_channels(struct nnc *c, float *y, const float *x, int C, size_t S, const struct nn_w *g,
                          const struct nn_w *b, float eps);
void nnc_groupnorm(struct nnc *c, float *y, const float *x, int C, size_t S, int G, const struct nn_w *w,
                   const struct nn_w *b, float eps);
/* op: 0 act, 1 scale, 2 add, 3 mul */
void nnc_ew(struct nnc *c, int op, float *y, const float *a, const float *b, size_t n, float s, int act);
/* op: 0 gated (v NULL: u is the gate or NULL), 1 modulate (u shift, v scale) */
void nnc_rows(struct nnc *c, int op, float *y, const float *x, const float *u, const float *v, int rows, int d);
void nnc_add_bias(struct nnc *c, float *y, const float *x, int rows, int d, const struct nn_w *b);
void nnc_softmax(struct nnc *c, float *x, int rows, int d);
/* tc: the tensor-core kernel (bf16 operands) where nnc_attention_tc_ok */
int nnc_attention_tc_ok(int D, const float *bias);
void nnc_attention(struct nnc *c, float *out, const float *q, const float *k, const float *v, int Lq, int Lk,
                   int H, int D, float scale, const float *bias, int k_valid, int tc);
void nnc_rope(struct nnc *c, float *x, int L, int H, int D, const float *cos, const float *sin, int interleaved);
/* 3-D convolution as im2col + SGEMM (2-D: kt = T = st = 1) */
void nnc_conv(struct nnc *c, float *y, const float *x, int C, int T, int H, int W, const struct nn_w *w,
              const struct nn_w *b, int O, int kt, int kh, int kw, int st, int sh, int sw, int ph, int pw, int dh,
              int dw, int To, int Ho, int Wo);
void nnc_conv_transpose2d(struct nnc *c, float *y, const float *x, int C, int H, int W, const struct nn_w *w,
                          const struct nn_w *b, int O, int kh, int kw, int sh, int sw, int ph, int pw);
/* 4-D strided copy and per-channel bias (nn_copy_box, nn_add_channels) */
void nnc_copy_box(struct nnc *c, float *dst, const size_t ds[4], const float *src, const size_t ss[4], const int n[4]);
void nnc_add_channels(struct nnc *c, float *y, const float *x, int C, size_t S, const struct nn_w *b);
/* for the image ops of nn_img_cuda.cu: the stream ops are queued on, and
 * "check the launch just made" (records the first failure, as the ops here do) */
void *nnc_stream(struct nnc *c);
void nnc_launched(struct nnc *c, const char *what);
/* nn.c: the device half of an NN_CUDA context (NULL on NN_CPU) */
struct nnc *nn_cuda_of(struct nn *nn);
/* y[h, i, j] = t[h, j - i + Lq - 1] (nn_relpos_bias) */
void nnc_relpos_bias(struct nnc *c, float *y, const float *t, int H, int Lq, int Lk);
#ifdef __cplusplus
}
#endif
#endif
#endif
