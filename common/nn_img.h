/* nn_img.h — image-shaped operations on the nn core's activations (nn.h):
 * bilinear resizing and backward warping with PyTorch's exact sampling
 * rules, pixel shuffle, and the activations and per-channel ops that
 * convolutional image models (RIFE, later the morph on the nn core) need
 * beside nn.h's. Tensors are float32 planes [C, H, W] (channel-first, one
 * image); every function runs on the context's thread pool and writes each
 * output element from exactly one thread, so results do not depend on the
 * thread count. The caller owns every buffer; outputs must not alias inputs
 * unless the comment says so. On an NN_CUDA context every pointer (weights'
 * data too) is device memory and the ops run as CUDA kernels
 * (nn_img_cuda.cu) with the same float arithmetic, designed to give
 * bit-identical results except the sigmoid (the device's expf, within 2 ulp);
 * not yet run on a card (tests/gpu/rife_check.sh is the check). */
#ifndef ISOPIPE_NN_IMG_H
#define ISOPIPE_NN_IMG_H
#include <stddef.h>

#include "nn.h"

/* F.interpolate(x, size=(Ho, Wo), mode="bilinear", align_corners=False,
 * antialias=False): source coordinate (d + 0.5) * in/out - 0.5, clamped at 0
 * below, the upper neighbour clamped to the edge. x [C, H, W] -> y [C, Ho, Wo].
 * (With scale_factor=f PyTorch uses 1/f as the ratio; the two agree when
 * out = in * f exactly, which callers ensure.) */
void nn_resize_bilinear(struct nn *nn, float *y, int Ho, int Wo, const float *x, int C, int H, int W);

/* Backward warp: y[c, i, j] = x[c] sampled bilinearly at (j + u[i, j], i + v[i, j]),
 * as F.grid_sample(x, base_grid + flow normalised, mode="bilinear",
 * padding_mode="border", align_corners=True) computes it: the coordinate is
 * clamped to [0, W-1] x [0, H-1] first. u, v [H, W] (pixels). */
void nn_warp_bilinear(struct nn *nn, float *y, const float *x, int C, int H, int W, const float *u,
                      const float *v);

/* PixelShuffle(r): x [C*r*r, H, W] -> y [C, H*r, W*r],
 * y[c, h*r + i, w*r + j] = x[c*r*r + i*r + j, h, w] */
void nn_pixel_shuffle(struct nn *nn, float *y, const float *x, int C, int H, int W, int r);

/* LeakyReLU: y = x >= 0 ? x : slope * x   (n elements; y may equal x) */
void nn_leaky_relu(struct nn *nn, float *y, const float *x, size_t n, float slope);
/* PReLU with one slope per channel: x, y [C, S], slope [C] (y may equal x) */
void nn_prelu(struct nn *nn, float *y, const float *x, int C, size_t S, const struct nn_w *slope);
/* y[0..n) = v */
void nn_fill(struct nn *nn, float *y, size_t n, float v);
/* logistic sigmoid, n elements (y may equal x) */
void nn_sigmoid(struct nn *nn, float *y, const float *x, size_t n);

/* y[c, s] = x[c, s] * gamma[c] + res[c, s]  ([C, S]; res may be NULL for
 * none; y may equal x or res). A residual branch scaled per channel (RIFE's
 * ResConv beta, layer scale in ConvNeXt-style blocks). */
void nn_scale_channels_add(struct nn *nn, float *y, const float *x, int C, size_t S, const struct nn_w *gamma,
                           const float *res);

/* y = a * w + b * (1 - w): n elements; w is one plane broadcast over `planes`
 * planes of n elements each (a, b, y [planes, n]; w [n]); y may equal a or b */
void nn_lerp_plane(struct nn *nn, float *y, const float *a, const float *b, const float *w, int planes, size_t n);
#endif
