/* dis_cuda.h — the CUDA path of DIS (dis.h): the same algorithm, parameters
 * and arithmetic order as dis.c, one kernel per stage per level (pyramid,
 * gradients, patch search, densification, variational refinement with
 * red-black SOR), every buffer a sub-allocation of ONE device arena
 * (common/gpu.h). Only in CUDA builds (ISOPIPE_CUDA). gpu_init must have
 * found a real device before dis_cuda_new. */
#ifndef FLOW_DIS_CUDA_H
#define FLOW_DIS_CUDA_H
#include <stdint.h>

#include "dis.h"

#ifdef __cplusplus
extern "C" {
#endif
struct dis_cuda;
/* device bytes the arena for w x h frames needs; ISO_EDATA for frames smaller than the patch */
int dis_cuda_bytes(int w, int h, const struct dis_params *p, uint64_t *bytes);
/* cpu_threads: the patch grid is cut into the stripes the CPU path uses with
 * that many threads (propagation stays inside a stripe), so both paths
 * compute the same thing */
int dis_cuda_new(struct dis_cuda **out, int w, int h, const struct dis_params *p, int cpu_threads);
void dis_cuda_free(struct dis_cuda **d);
int dis_cuda_coarsest(const struct dis_cuda *d);
/* flow from I0 to I1 (host, w x h grey floats) into host u, v */
int dis_cuda_compute(struct dis_cuda *d, const float *I0, const float *I1, float *u, float *v);
#ifdef __cplusplus
}
#endif
#endif
