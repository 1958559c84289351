/* nn_img_cuda.h — the CUDA half of the nn_img.h ops (nn_img_cuda.cu), called
 * only by nn_img.c in CUDA builds when the context is NN_CUDA. Arguments mean
 * what they mean in nn_img.h; every pointer (weights' data included) is
 * device memory. The work is queued on the context's stream (nnc_stream) and
 * a failed launch is recorded in the context (nnc_launched), so nn_sync /
 * nn_download report it, as for the ops of nn_cuda.cu. The per-element
 * arithmetic is common/nn_img_kern.h. */
#ifndef ISOPIPE_NN_IMG_CUDA_H
#define ISOPIPE_NN_IMG_CUDA_H
#ifdef ISOPIPE_CUDA
#include <stddef.h>

#include "nn.h"

#ifdef __cplusplus
extern "C" {
#endif
struct nnc;

/* sh = (float)H / (float)Ho, sw = (float)W / (float)Wo, as the caller computes them */
void nnic_resize_bilinear(struct nnc *c, float *y, int Ho, int Wo, const float *x, int C, int H, int W, float sh,
                          float sw);
void nnic_warp_bilinear(struct nnc *c, float *y, const float *x, int C, int H, int W, const float *u, const float *v);
void nnic_pixel_shuffle(struct nnc *c, float *y, const float *x, int C, int H, int W, int r);
void nnic_leaky_relu(struct nnc *c, float *y, const float *x, size_t n, float slope);
void nnic_prelu(struct nnc *c, float *y, const float *x, int C, size_t S, const struct nn_w *slope);
void nnic_fill(struct nnc *c, float *y, size_t n, float v);
void nnic_sigmoid(struct nnc *c, float *y, const float *x, size_t n);
void nnic_scale_channels_add(struct nnc *c, float *y, const float *x, int C, size_t S, const struct nn_w *gamma,
                             const float *res);
void nnic_lerp_plane(struct nnc *c, float *y, const float *a, const float *b, const float *w, int planes, size_t n);
#ifdef __cplusplus
}
#endif
#endif
#endif
